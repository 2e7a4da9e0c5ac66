/* h_chat.c: POST /chat/send, /chat/abort, /chat/permission and the /chat envelope. */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/event.h"
#include "core/feed.h"
#include "core/log.h"
#include "core/reap.h"
#include "core/util.h"
#include "fcgi/handlers.h"
#include "fcgi/spawn.h"

/* Which top-level members a verb takes; the envelope adds "type". */
static const char *const send_fields[] = {"sessionId", "content", "options", NULL};
static const char *const send_fields_env[] = {"type", "sessionId", "content", "options", NULL};
static const char *const abort_fields[] = {"sessionId", NULL};
static const char *const abort_fields_env[] = {"type", "sessionId", NULL};
static const char *const perm_fields[] = {"requestId", "allow",         "updatedInput",
                                          "message",   "rememberEntry", NULL};
static const char *const perm_fields_env[] = {"type",    "requestId",     "allow", "updatedInput",
                                              "message", "rememberEntry", NULL};

/* Reads a required, non-blank string id member. Returns it (borrowed) or NULL with resp
 * set: missing/blank -> code_missing, wrong type -> INVALID_REQUEST. */
static const char *required_id(json_t *body, const char *key, enum cgw_code code_missing,
                               struct response *resp)
{
    json_t *v = json_object_get(body, key);
    if (v && !json_is_string(v) && !json_is_null(v)) {
        response_error(resp, CODE_INVALID_REQUEST, NULL, "%s must be a string", key);
        return NULL;
    }
    const char *s = json_string_value(v);
    if (!s || !*s || strspn(s, " \t\r\n") == strlen(s)) {
        response_error(resp, code_missing, NULL, "%s is required", key);
        return NULL;
    }
    return s;
}

static bool is_string_array(json_t *v)
{
    size_t i;
    json_t *item;
    if (!json_is_array(v))
        return false;
    json_array_foreach(v, i, item)
    {
        if (!json_is_string(item))
            return false;
    }
    return true;
}

/* Copies the whitelisted options, type-checked (DESIGN §3.4). Unknown keys are dropped.
 * Returns a new object, or NULL with resp set. */
static json_t *send_options(json_t *options, enum provider_id provider, const char *sid,
                            struct response *resp)
{
    json_t *out = json_object();
    if (!options || json_is_null(options))
        return out;
    if (!json_is_object(options)) {
        response_error(resp, CODE_INVALID_REQUEST, sid, "options must be an object");
        goto bad;
    }
    json_t *v;
    if ((v = json_object_get(options, "model"))) {
        if (!json_is_string(v) || json_string_length(v) > 200) {
            response_error(resp, CODE_INVALID_REQUEST, sid, "options.model must be a string");
            goto bad;
        }
        json_object_set(out, "model", v);
    }
    if ((v = json_object_get(options, "sessionSummary"))) {
        if (!json_is_string(v)) {
            response_error(resp, CODE_INVALID_REQUEST, sid,
                           "options.sessionSummary must be a string");
            goto bad;
        }
        json_object_set(out, "sessionSummary", v);
    }
    if ((v = json_object_get(options, "permissionMode"))) {
        if (!provider_mode_known(provider, json_string_value(v))) {
            response_error(resp, CODE_INVALID_REQUEST, sid,
                           "options.permissionMode is not a permission mode of %s",
                           provider_name(provider));
            goto bad;
        }
        json_object_set(out, "permissionMode", v);
    }
    if ((v = json_object_get(options, "toolsSettings")) && !json_is_null(v)) {
        if (!json_is_object(v)) {
            response_error(resp, CODE_INVALID_REQUEST, sid,
                           "options.toolsSettings must be an object");
            goto bad;
        }
        json_t *ts = json_object(), *a;
        json_object_set_new(out, "toolsSettings", ts);
        static const char *const lists[] = {"allowedTools", "disallowedTools"};
        for (int i = 0; i < 2; i++) {
            if ((a = json_object_get(v, lists[i])) && !json_is_null(a)) {
                if (!is_string_array(a)) {
                    response_error(resp, CODE_INVALID_REQUEST, sid,
                                   "options.toolsSettings.%s must be an array of strings",
                                   lists[i]);
                    goto bad;
                }
                json_object_set(ts, lists[i], a);
            }
        }
        if ((a = json_object_get(v, "skipPermissions")) && !json_is_null(a)) {
            if (!json_is_boolean(a)) {
                response_error(resp, CODE_INVALID_REQUEST, sid,
                               "options.toolsSettings.skipPermissions must be a boolean");
                goto bad;
            }
            json_object_set(ts, "skipPermissions", a);
        }
    }
    return out;
bad:
    json_decref(out);
    return NULL;
}

static void chat_send(struct worker *w, struct request *req, json_t *body, bool envelope,
                      struct response *resp)
{
    const struct config *cfg = &w->app->cfg;
    struct store_session s;
    struct store *st;
    struct bus *bus;
    struct cgw_error err;
    enum provider_id provider;
    json_t *options = NULL, *run_req = NULL;
    char run_id[CGW_ID_MAX], running[CGW_ID_MAX] = "";
    int64_t hwm = 0, last_seq = 0;

    memset(&s, 0, sizeof s);
    if (http_only_fields(body, envelope ? send_fields_env : send_fields, resp) < 0)
        return;
    const char *sid = required_id(body, "sessionId", CODE_SESSION_ID_REQUIRED, resp);
    if (!sid)
        return;
    json_t *jc = json_object_get(body, "content");
    if (jc && !json_is_string(jc) && !json_is_null(jc)) {
        response_error(resp, CODE_INVALID_REQUEST, sid, "content must be a string");
        return;
    }
    const char *content = json_string_value(jc);
    if (!content || strspn(content, " \t\r\n") == strlen(content)) {
        response_error(resp, CODE_CONTENT_REQUIRED, sid, "content is required");
        return;
    }
    if ((int64_t)json_string_length(jc) > cfg->max_prompt) {
        response_error(resp, CODE_PAYLOAD_TOO_LARGE, sid, "content is longer than %lld bytes",
                       (long long)cfg->max_prompt);
        return;
    }
    if (session_load_owned(w, req, sid, &s, resp) < 0)
        return;
    if (provider_from_name(s.provider, &provider) < 0) {
        response_error(resp, CODE_UNSUPPORTED_PROVIDER, s.id, "provider \"%s\" is not available",
                       s.provider);
        goto out;
    }
    options = send_options(json_object_get(body, "options"), provider, s.id, resp);
    if (!options)
        goto out;
    if (worker_store(w, &st, &err) != CGW_OK || worker_bus(w, &bus, &err) != CGW_OK ||
        store_session_last_seq(st, s.id, &hwm, &err) != CGW_OK) {
        response_from_err(resp, &err, s.id);
        goto out;
    }
    if (cgw_id_new("run", run_id, sizeof run_id) < 0) {
        response_error(resp, CODE_INTERNAL_ERROR, s.id, "internal error");
        goto out;
    }
    run_req =
        json_pack("{s:s, s:s, s:s, s:I, s:s, s:s?, s:s, s:O}", "sessionId", s.id, "runId", run_id,
                  "provider", s.provider, "owner", (json_int_t)s.owner, "projectPath",
                  s.project_path, "nativeId", s.native_id, "content", content, "options", options);
    char *request_json = run_req ? json_dumps(run_req, JSON_COMPACT) : NULL;
    if (!request_json) {
        response_error(resp, CODE_INTERNAL_ERROR, s.id, "internal error");
        goto out;
    }
    struct bus_claim claim = {
        .session_id = s.id,
        .run_id = run_id,
        .provider = s.provider,
        .owner = s.owner,
        .request_json = request_json,
        .hwm_seq = hwm,
        .lease_ms = cfg->runner_lease_s * 1000,
        .max_running = cfg->max_runs_per_user,
    };
    enum cgw_err rc = bus_run_claim(bus, &claim, &last_seq, running, &err);
    free(request_json);
    if (rc == CGW_ERR_CONFLICT) {
        response_error(resp, CODE_RUN_IN_PROGRESS, s.id, "session already has a run in progress");
        goto out;
    }
    if (rc != CGW_OK) {
        response_from_err(resp, &err, s.id);
        goto out;
    }
    log_context_set(req->request_id, run_id, s.id);

    /* The run's first event comes from here, so a run always has one before its runner
     * starts; then the runner is started detached. */
    struct event_ctx ctx = {s.id, run_id, s.provider};
    json_t *ev = event_new_run_started(&ctx);
    rc = ev ? reap_publish_persist(st, bus, s.id, run_id, ev, false, NULL, &err)
            : cgw_error_set(&err, CGW_ERR_NOMEM, "out of memory");
    json_decref(ev);
    /* The prompt is part of the conversation: history and every tab show it. */
    if (rc == CGW_OK) {
        ev = event_new_text(&ctx, "user", content);
        rc = ev ? reap_publish_persist(st, bus, s.id, run_id, ev, false, NULL, &err)
                : cgw_error_set(&err, CGW_ERR_NOMEM, "out of memory");
        json_decref(ev);
    }
    char why[512] = "";
    if (rc == CGW_OK && spawn_runner(w->app, s.id, run_id, why, sizeof why) < 0) {
        /* No runner will ever end this run: end it here, once, with the reason. */
        log_error("run %s: %s", run_id, why);
        json_t *e1 = event_new_error(&ctx, why);
        json_t *e2 = event_new_complete(&ctx, 127, false, REASON_SPAWN_FAILED);
        if (!e1 || !e2 || reap_publish_persist(st, bus, s.id, run_id, e1, false, NULL, &err) ||
            reap_publish_persist(st, bus, s.id, run_id, e2, true, NULL, &err))
            log_error("run %s: ending it after the failed start: %s", run_id, err.text);
        json_decref(e1);
        json_decref(e2);
    } else if (rc != CGW_OK) {
        /* Redis or SQLite failed right after the claim: the lease will lapse and the
         * reaper end the run as runner_lost; the client gets a 503. */
        response_from_err(resp, &err, s.id);
        goto out;
    }
    struct cgw_error terr;
    if (store_session_touch(st, s.id, &terr) != CGW_OK)
        log_warn("session %s: %s", s.id, terr.text);
    if (feed_publish_session(st, bus, s.id, &terr) != CGW_OK)
        log_warn("session %s: feed not updated: %s", s.id, terr.text);
    log_info("run %s started by %s (%s)", run_id, req->user.name, s.provider);
    response_json(resp, 202,
                  json_pack("{s:s, s:s, s:I}", "sessionId", s.id, "runId", run_id, "lastSeq",
                            (json_int_t)last_seq));
out:
    json_decref(run_req);
    json_decref(options);
    store_session_clear(&s);
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) < 0)
        ;
}

static void chat_abort(struct worker *w, struct request *req, json_t *body, bool envelope,
                       struct response *resp)
{
    struct store_session s;
    struct bus *bus;
    struct bus_run run;
    struct cgw_error err;

    if (http_only_fields(body, envelope ? abort_fields_env : abort_fields, resp) < 0)
        return;
    const char *sid = required_id(body, "sessionId", CODE_SESSION_ID_REQUIRED, resp);
    if (!sid || session_load_owned(w, req, sid, &s, resp) < 0)
        return;
    enum cgw_err rc = worker_bus(w, &bus, &err);
    if (rc == CGW_OK)
        rc = bus_run_get(bus, s.id, &run, NULL, &err);
    if (rc == CGW_ERR_NOT_FOUND || (rc == CGW_OK && run.status != RUN_RUNNING)) {
        response_error(resp, CODE_NO_ACTIVE_RUN, s.id, "session has no active run");
        goto out;
    }
    if (rc != CGW_OK) {
        response_from_err(resp, &err, s.id);
        goto out;
    }
    json_t *msg = json_pack("{s:s, s:s}", "type", "abort", "runId", run.run_id);
    char *text = msg ? json_dumps(msg, JSON_COMPACT) : NULL;
    json_decref(msg);
    rc = text ? bus_ctl_push(bus, s.id, text, &err)
              : cgw_error_set(&err, CGW_ERR_NOMEM, "out of memory");
    free(text);
    if (rc != CGW_OK) {
        response_from_err(resp, &err, s.id);
        goto out;
    }
    log_info("abort of run %s requested by %s", run.run_id, req->user.name);

    /* Wait for the run's complete; the runner publishes it once the CLI's process group
     * is gone, normally well under a second. */
    char run_id[CGW_ID_MAX];
    memcpy(run_id, run.run_id, sizeof run_id);
    int64_t deadline = cgw_mono_ms() + w->app->cfg.runner_abort_wait_ms;
    bool completed = false;
    int64_t seq = 0;
    for (;;) {
        struct bus_run now;
        rc = bus_run_get(bus, s.id, &now, NULL, &err);
        if (rc == CGW_OK && strcmp(now.run_id, run_id) == 0 && now.status != RUN_RUNNING) {
            completed = true;
            seq = now.last_seq;
            break;
        }
        if (rc == CGW_ERR_NOT_FOUND || (rc == CGW_OK && strcmp(now.run_id, run_id) != 0)) {
            completed = true; /* completed and already replaced or expired */
            break;
        }
        if (cgw_mono_ms() >= deadline)
            break;
        sleep_ms(20);
    }
    json_t *ans =
        json_pack("{s:s, s:s, s:b}", "sessionId", s.id, "runId", run_id, "completed", completed);
    if (completed && seq > 0)
        json_object_set_new(ans, "seq", json_integer(seq));
    else if (completed)
        json_object_set_new(ans, "seq", json_null());
    response_json(resp, completed ? 200 : 202, ans);
out:
    store_session_clear(&s);
}

static void chat_permission(struct worker *w, struct request *req, json_t *body, bool envelope,
                            struct response *resp)
{
    struct store_session s;
    struct store *st;
    struct bus *bus;
    struct cgw_error err;
    char sid[CGW_UUID_LEN + 1];

    memset(&s, 0, sizeof s);
    if (http_only_fields(body, envelope ? perm_fields_env : perm_fields, resp) < 0)
        return;
    const char *rid = required_id(body, "requestId", CODE_REQUEST_ID_REQUIRED, resp);
    if (!rid)
        return;
    json_t *allow = json_object_get(body, "allow");
    json_t *updated = json_object_get(body, "updatedInput");
    json_t *message = json_object_get(body, "message");
    json_t *remember = json_object_get(body, "rememberEntry");
    if (!json_is_boolean(allow)) {
        response_error(resp, CODE_INVALID_REQUEST, NULL, "allow must be a boolean");
        return;
    }
    if (updated && !json_is_null(updated) && !json_is_object(updated)) {
        response_error(resp, CODE_INVALID_REQUEST, NULL, "updatedInput must be an object");
        return;
    }
    if (message && !json_is_null(message) && !json_is_string(message)) {
        response_error(resp, CODE_INVALID_REQUEST, NULL, "message must be a string");
        return;
    }
    if (remember && !json_is_null(remember) &&
        (!json_is_string(remember) || json_string_length(remember) == 0 ||
         json_string_length(remember) > 1000)) {
        response_error(resp, CODE_INVALID_REQUEST, NULL,
                       "rememberEntry must be a non-empty string");
        return;
    }
    if (strlen(rid) > 100) {
        response_error(resp, CODE_PERMISSION_NOT_FOUND, NULL, "permission request not found");
        return;
    }
    enum cgw_err rc = worker_bus(w, &bus, &err);
    if (rc == CGW_OK)
        rc = bus_perm_session(bus, rid, sid, &err);
    if (rc == CGW_OK) {
        rc = worker_store(w, &st, &err);
        if (rc == CGW_OK)
            rc = store_session_get(st, sid, req->user.id, &s, &err);
    }
    if (rc == CGW_ERR_NOT_FOUND) {
        response_error(resp, CODE_PERMISSION_NOT_FOUND, NULL, "permission request not found");
        goto out;
    }
    if (rc != CGW_OK) {
        response_from_err(resp, &err, NULL);
        goto out;
    }
    json_t *decision =
        json_pack("{s:s, s:s, s:O, s:O, s:O}", "type", "permission", "requestId", rid, "allow",
                  allow, "updatedInput", updated ? updated : json_null(), "message",
                  message ? message : json_null());
    char *text = decision ? json_dumps(decision, JSON_COMPACT) : NULL;
    json_decref(decision);
    rc = text ? bus_perm_resolve(bus, s.id, rid, json_is_true(allow), text, &err)
              : cgw_error_set(&err, CGW_ERR_NOMEM, "out of memory");
    free(text);
    if (rc == CGW_ERR_CONFLICT) {
        response_error(resp, CODE_PERMISSION_ALREADY_RESOLVED, s.id,
                       "permission request was already answered");
        goto out;
    }
    if (rc == CGW_ERR_NOT_FOUND) {
        response_error(resp, CODE_PERMISSION_NOT_FOUND, NULL, "permission request not found");
        goto out;
    }
    if (rc != CGW_OK) {
        response_from_err(resp, &err, s.id);
        goto out;
    }
    if (json_is_true(allow) && json_is_string(remember)) {
        struct cgw_error rerr;
        if (store_rule_add(st, req->user.id, s.project_path, json_string_value(remember), &rerr) !=
            CGW_OK)
            log_error("remembering rule for %s: %s", req->user.name, rerr.text);
    }
    log_info("permission %s of session %s answered by %s: %s", rid, s.id, req->user.name,
             json_is_true(allow) ? "allow" : "deny");
    response_json(
        resp, 200,
        json_pack("{s:s, s:s, s:O}", "requestId", rid, "sessionId", s.id, "allow", allow));
out:
    store_session_clear(&s);
}

void h_chat_send(struct worker *w, struct request *req, const struct query *q,
                 struct response *resp)
{
    json_t *body = http_json_body(req, &w->app->cfg, false, resp);
    if (body)
        chat_send(w, req, body, false, resp);
    json_decref(body);
}

void h_chat_abort(struct worker *w, struct request *req, const struct query *q,
                  struct response *resp)
{
    json_t *body = http_json_body(req, &w->app->cfg, false, resp);
    if (body)
        chat_abort(w, req, body, false, resp);
    json_decref(body);
}

void h_chat_permission(struct worker *w, struct request *req, const struct query *q,
                       struct response *resp)
{
    json_t *body = http_json_body(req, &w->app->cfg, false, resp);
    if (body)
        chat_permission(w, req, body, false, resp);
    json_decref(body);
}

void h_chat_envelope(struct worker *w, struct request *req, const struct query *q,
                     struct response *resp)
{
    json_t *body = http_json_body(req, &w->app->cfg, false, resp);
    if (!body)
        return;
    const char *type = json_string_value(json_object_get(body, "type"));
    if (type && strcmp(type, "chat.send") == 0)
        chat_send(w, req, body, true, resp);
    else if (type && strcmp(type, "chat.abort") == 0)
        chat_abort(w, req, body, true, resp);
    else if (type && strcmp(type, "chat.permission-response") == 0)
        chat_permission(w, req, body, true, resp);
    else if (type && strcmp(type, "chat.subscribe") == 0)
        subscribe_from_json(w, req, body, resp);
    else
        response_error(resp, CODE_UNKNOWN_MESSAGE_TYPE, NULL, "Unknown message type \"%s\".",
                       type ? type : "");
    json_decref(body);
}
