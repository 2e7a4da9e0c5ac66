/* h_chat.c: POST /chat/send, /chat/abort, /chat/permission and the /chat envelope. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/bus_host.h"
#include "core/log.h"
#include "core/rules.h"
#include "core/run_start.h"
#include "core/util.h"
#include "fcgi/answer.h"
#include "fcgi/handlers.h"
#include "fcgi/metrics.h"
#include "fcgi/poller.h"
#include "fcgi/poller_cache.h"
#include "fcgi/spawn.h"

/* Which top-level members a verb takes; the envelope adds "type". */
static const char *const send_fields[] = {"sessionId", "content", "options", NULL};
static const char *const send_fields_env[] = {"type", "sessionId", "content", "options", NULL};
static const char *const abort_fields[] = {"sessionId", NULL};
static const char *const abort_fields_env[] = {"type", "sessionId", NULL};
static const char *const perm_fields[] = {
    "requestId", "allow", "updatedInput", "message", "remember", "rememberEntry", NULL};
static const char *const perm_fields_env[] = {
    "type", "requestId", "allow", "updatedInput", "message", "remember", "rememberEntry", NULL};

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

/* Copies options.toolsSettings (v, an object) into out, type-checked. Returns 0, or
 * -1 with resp set. */
static int send_tools_settings(json_t *v, json_t *out, const char *sid, struct response *resp)
{
    static const char *const lists[] = {"allowedTools", "disallowedTools"};
    json_t *ts = json_object(), *a;
    if (json_object_set_new(out, "toolsSettings", ts) < 0)
        goto nomem;
    for (int i = 0; i < 2; i++) {
        if (!(a = json_object_get(v, lists[i])) || json_is_null(a))
            continue;
        if (!is_string_array(a)) {
            response_error(resp, CODE_INVALID_REQUEST, sid,
                           "options.toolsSettings.%s must be an array of strings", lists[i]);
            return -1;
        }
        if (json_object_set(ts, lists[i], a) < 0)
            goto nomem;
    }
    if ((a = json_object_get(v, "skipPermissions")) && !json_is_null(a)) {
        if (!json_is_boolean(a)) {
            response_error(resp, CODE_INVALID_REQUEST, sid,
                           "options.toolsSettings.skipPermissions must be a boolean");
            return -1;
        }
        if (json_object_set(ts, "skipPermissions", a) < 0)
            goto nomem;
    }
    return 0;
nomem:
    response_error(resp, CODE_INTERNAL_ERROR, sid, "internal error");
    return -1;
}

/* Copies the whitelisted options, type-checked (DESIGN §3.4). Unknown keys are dropped.
 * Returns a new object, or NULL with resp set. */
static json_t *send_options(json_t *options, enum provider_id provider, const char *sid,
                            struct response *resp)
{
    json_t *out = json_object(), *v;
    if (!out) {
        response_error(resp, CODE_INTERNAL_ERROR, sid, "internal error");
        return NULL;
    }
    if (!options || json_is_null(options))
        return out;
    if (!json_is_object(options)) {
        response_error(resp, CODE_INVALID_REQUEST, sid, "options must be an object");
        goto bad;
    }
    if ((v = json_object_get(options, "model")) && !json_is_string(v)) {
        response_error(resp, CODE_INVALID_REQUEST, sid, "options.model must be a string");
        goto bad;
    }
    /* It becomes the CLI's --model=VALUE: never an option of its own (issue 11, item 4). */
    if (v && !provider_model_valid(json_string_value(v))) {
        response_error(resp, CODE_INVALID_REQUEST, sid,
                       "options.model must be at most %d letters, digits and . _ - : / @ +, "
                       "not starting with '-'",
                       PROVIDER_MODEL_MAX);
        goto bad;
    }
    if (v && json_object_set(out, "model", v) < 0)
        goto nomem;
    if ((v = json_object_get(options, "sessionSummary")) && !json_is_string(v)) {
        response_error(resp, CODE_INVALID_REQUEST, sid, "options.sessionSummary must be a string");
        goto bad;
    }
    if (v && json_object_set(out, "sessionSummary", v) < 0)
        goto nomem;
    if ((v = json_object_get(options, "permissionMode")) &&
        !provider_mode_known(provider, json_string_value(v))) {
        response_error(resp, CODE_INVALID_REQUEST, sid,
                       "options.permissionMode is not a permission mode of %s",
                       provider_name(provider));
        goto bad;
    }
    if (v && json_object_set(out, "permissionMode", v) < 0)
        goto nomem;
    if ((v = json_object_get(options, "toolsSettings")) && !json_is_null(v)) {
        if (!json_is_object(v)) {
            response_error(resp, CODE_INVALID_REQUEST, sid,
                           "options.toolsSettings must be an object");
            goto bad;
        }
        if (send_tools_settings(v, out, sid, resp) < 0)
            goto bad;
    }
    return out;
nomem:
    response_error(resp, CODE_INTERNAL_ERROR, sid, "internal error");
bad:
    json_decref(out);
    return NULL;
}

/* Where a send's runner starts (DESIGN §12, "Home host"): here, or on the session's home
 * host through its spawn queue (core/bus_host.h, fcgi/hostq.c). */
struct send_spawn {
    const struct app *app;
    struct bus *bus;  /* the worker's, for the push */
    const char *home; /* the home host when it is another one, else NULL */
};

/* Starts chatgw-runner for run_start (core/run_start.h); ctx is a struct send_spawn.
 * A request that cannot be queued is a failed start (run_start ends the run). */
static int spawn_cb(void *ctx, const char *session_id, const char *run_id, char *why,
                    size_t why_size)
{
    const struct send_spawn *sp = ctx;
    struct cgw_error err;

    if (!sp->home)
        return spawn_runner(sp->app, session_id, run_id, why, why_size);
    if (bus_host_spawn_push(sp->bus, sp->home, session_id, run_id, &err) != CGW_OK) {
        snprintf(why, why_size, "cannot queue the run for host %s: %s", sp->home, err.text);
        return -1;
    }
    return 0;
}

/* The session's home host when its runner must start there (another host, and
 * projects.shared off), else NULL: this host runs it. */
static const char *send_home(const struct config *cfg, const struct store_session *s)
{
    if (cfg->projects_shared || !s->host || !s->host[0] || strcmp(s->host, cfg->host_id) == 0)
        return NULL;
    return s->host;
}

/* A home host without a live consumer would never start the runner: refuse before the
 * claim, so that nothing is claimed. Returns 0, or -1 with resp set. */
static int send_home_check(struct bus *bus, const char *home, const char *sid,
                           struct response *resp)
{
    struct cgw_error err;
    bool alive = false;

    if (bus_host_alive(bus, home, &alive, &err) != CGW_OK) {
        response_from_err(resp, &err, sid);
        return -1;
    }
    if (!alive) {
        response_error(resp, CODE_HOST_UNAVAILABLE, sid,
                       "the session's home host %s has no running chatgw.fcgi; try again later",
                       home);
        return -1;
    }
    return 0;
}

/* The prompt: a non-blank string of at most limits.max_prompt bytes. Returns it
 * (borrowed) or NULL with resp set. */
static const char *send_content(json_t *body, const struct config *cfg, const char *sid,
                                struct response *resp)
{
    json_t *jc = json_object_get(body, "content");
    if (jc && !json_is_string(jc) && !json_is_null(jc)) {
        response_error(resp, CODE_INVALID_REQUEST, sid, "content must be a string");
        return NULL;
    }
    const char *content = json_string_value(jc);
    if (!content || strspn(content, " \t\r\n") == strlen(content)) {
        response_error(resp, CODE_CONTENT_REQUIRED, sid, "content is required");
        return NULL;
    }
    if ((int64_t)json_string_length(jc) > cfg->max_prompt) {
        response_error(resp, CODE_PAYLOAD_TOO_LARGE, sid, "content is longer than %lld bytes",
                       (long long)cfg->max_prompt);
        return NULL;
    }
    return content;
}

/* Decodes and checks the send, then hands the run's start to the core (run_start). */
static void chat_send(struct worker *w, struct request *req, json_t *body, bool envelope,
                      struct response *resp)
{
    const struct config *cfg = &w->app->cfg;
    struct store_session s;
    struct store *st;
    struct bus *bus;
    struct cgw_error err;
    enum provider_id provider;
    json_t *options = NULL, *atts = NULL, *created = NULL;

    memset(&s, 0, sizeof s);
    if (http_only_fields(body, envelope ? send_fields_env : send_fields, resp) < 0)
        return;
    const char *sid = required_id(body, "sessionId", CODE_SESSION_ID_REQUIRED, resp);
    const char *content = sid ? send_content(body, cfg, sid, resp) : NULL;
    if (!content || session_load_owned(w, req, sid, &s, resp) < 0)
        return;
    if (provider_from_name(s.provider, &provider) < 0) {
        response_error(resp, CODE_UNSUPPORTED_PROVIDER, s.id, "provider \"%s\" is not available",
                       s.provider);
        goto out;
    }
    if (provider_caps[provider].max_prompt > 0 &&
        strlen(content) > (size_t)provider_caps[provider].max_prompt) {
        /* The CLI takes the prompt as one argv word (provider_list.h). */
        response_error(resp, CODE_PAYLOAD_TOO_LARGE, s.id,
                       "content is longer than %lld bytes, the limit of %s (the prompt goes on "
                       "its command line)",
                       (long long)provider_caps[provider].max_prompt, provider_name(provider));
        goto out;
    }
    options = send_options(json_object_get(body, "options"), provider, s.id, resp);
    if (!options || attachments_for_send(w, req, &s, json_object_get(body, "options"), &atts,
                                         &created, resp) < 0)
        goto out;
    if (worker_store(w, &st, &err) != CGW_OK || worker_bus(w, &bus, &err) != CGW_OK) {
        response_from_err(resp, &err, s.id);
        goto out;
    }
    struct send_spawn sp = {w->app, bus, send_home(cfg, &s)};
    if (sp.home && send_home_check(bus, sp.home, s.id, resp) < 0)
        goto out;
    struct run_start_req rs = {
        .session = &s,
        .content = content,
        .options = options,
        .attachments = atts,
        .max_runs = cfg->max_runs_per_user,
        .lease_ms = cfg->runner_lease_s * 1000,
        .spawn = spawn_cb,
        .spawn_ctx = &sp,
    };
    struct run_start_res started;
    if (run_start(st, bus, &rs, &started, &err) != CGW_OK) {
        response_from_err(resp, &err, s.id);
        attachments_undo(w, &s, req->user.id, created);
        goto out;
    }
    /* Read your own writes: this process's copy of the session (poller_cache.h) learns
     * of the run's first events now, not when their notification comes back, so a
     * no-wait subscribe right after this 202 reads them instead of the old head. */
    if (w->app->poller)
        poller_cache_notified(poller_cache(w->app->poller), s.id, started.last_seq);
    metrics_run_started(w->app->metrics, (int)provider, started.spawn_failed);
    log_context_set(req->request_id, started.run_id, s.id);
    log_info("run %s started by %s (%s%s%s)", started.run_id, req->user.name, s.provider,
             sp.home ? ", queued for host " : "", sp.home ? sp.home : "");
    response_json(resp, 202,
                  json_pack("{s:s, s:s, s:I}", "sessionId", s.id, "runId", started.run_id,
                            "lastSeq", (json_int_t)started.last_seq));
out:
    json_decref(options);
    json_decref(atts);
    json_decref(created);
    store_session_clear(&s);
}

/* The abort's answer: the runner publishes the run's complete once the CLI's process
 * group is gone, normally well under a second. The wait for it is parked in the poller
 * (like a held subscribe, woken by the session's notifications), so an abort costs no
 * worker thread however long the run takes to stop; without a poller (or with no
 * wait), the run's state now decides. */
static void abort_answer(struct worker *w, const struct request *req, const char *sid,
                         const char *run_id, int64_t cursor, struct response *resp)
{
    const struct config *cfg = &w->app->cfg;
    struct park *pk;
    struct bus *bus;
    struct cgw_error err;
    struct sub_snapshot snap;

    if (w->app->poller && cfg->runner_abort_wait_ms > 0) {
        enum cgw_err rc = poller_park_abort_new(w->app->poller, req, cfg->runner_abort_wait_ms, sid,
                                                run_id, cursor, &pk, &err);
        if (rc == CGW_OK) {
            resp->status = 202;
            resp->park = pk;
            return;
        }
        if (rc != CGW_ERR_LIMIT && rc != CGW_ERR_BUSY) {
            response_from_err(resp, &err, sid);
            return;
        }
        /* No slot to wait in: say how it stands now (202 while it is stopping). */
    }
    if (worker_bus(w, &bus, &err) != CGW_OK ||
        answer_snapshot_read(bus, sid, cursor, 0, 0, &snap, &err) != CGW_OK) {
        response_from_err(resp, &err, sid);
        return;
    }
    json_t *ans = answer_abort_build(sid, run_id, &snap);
    if (!ans)
        response_error(resp, CODE_INTERNAL_ERROR, sid, "internal error");
    else
        response_json(resp, answer_abort_done(&snap, run_id) ? 200 : 202, ans);
    answer_snapshot_free(&snap);
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

    abort_answer(w, req, s.id, run.run_id, run.last_seq, resp);
out:
    store_session_clear(&s);
}

/* "remember" is "exact" or "prefix", not together with "rememberEntry", and either
 * only with allow:true. Returns 0, or -1 with resp set. */
static int perm_remember_check(json_t *body, struct response *resp)
{
    json_t *mode = json_object_get(body, "remember");
    json_t *entry = json_object_get(body, "rememberEntry");
    bool has_mode = mode && !json_is_null(mode), has_entry = entry && !json_is_null(entry);
    const char *m = json_string_value(mode);

    if (has_mode && (!m || (strcmp(m, "exact") != 0 && strcmp(m, "prefix") != 0))) {
        response_error(resp, CODE_INVALID_REQUEST, NULL,
                       "remember must be \"exact\" or \"prefix\"");
        return -1;
    }
    if (has_mode && has_entry) {
        response_error(resp, CODE_INVALID_REQUEST, NULL,
                       "give remember or rememberEntry, not both");
        return -1;
    }
    if ((has_mode || has_entry) && !json_is_true(json_object_get(body, "allow"))) {
        response_error(resp, CODE_REMEMBER_ENTRY_INVALID, NULL,
                       "only an allowed request can be remembered");
        return -1;
    }
    return 0;
}

/* Checks the members of a permission answer besides requestId. Returns 0, or -1 with
 * resp set. */
static int perm_fields_check(json_t *body, struct response *resp)
{
    json_t *updated = json_object_get(body, "updatedInput");
    json_t *message = json_object_get(body, "message");
    json_t *remember = json_object_get(body, "rememberEntry");
    if (!json_is_boolean(json_object_get(body, "allow"))) {
        response_error(resp, CODE_INVALID_REQUEST, NULL, "allow must be a boolean");
        return -1;
    }
    if (updated && !json_is_null(updated) && !json_is_object(updated)) {
        response_error(resp, CODE_INVALID_REQUEST, NULL, "updatedInput must be an object");
        return -1;
    }
    if (message && !json_is_null(message) && !json_is_string(message)) {
        response_error(resp, CODE_INVALID_REQUEST, NULL, "message must be a string");
        return -1;
    }
    if (remember && !json_is_null(remember) &&
        (!json_is_string(remember) || json_string_length(remember) == 0 ||
         json_string_length(remember) > RULES_MAX_LEN)) {
        response_error(resp, CODE_INVALID_REQUEST, NULL,
                       "rememberEntry must be a non-empty string");
        return -1;
    }
    return perm_remember_check(body, resp);
}

/* Sends the decision to the run's control list (first answer wins). */
static enum cgw_err perm_resolve(struct bus *bus, const char *sid, const char *rid, json_t *body,
                                 struct cgw_error *err)
{
    json_t *allow = json_object_get(body, "allow");
    json_t *updated = json_object_get(body, "updatedInput");
    json_t *message = json_object_get(body, "message");
    json_t *decision =
        json_pack("{s:s, s:s, s:O, s:O, s:O}", "type", "permission", "requestId", rid, "allow",
                  allow, "updatedInput", updated ? updated : json_null(), "message",
                  message ? message : json_null());
    char *text = decision ? json_dumps(decision, JSON_COMPACT) : NULL;
    json_decref(decision);
    enum cgw_err rc = text ? bus_perm_resolve(bus, sid, rid, json_is_true(allow), text, err)
                           : cgw_error_set(err, CGW_ERR_NOMEM, "out of memory");
    free(text);
    return rc;
}

static void chat_permission(struct worker *w, struct request *req, json_t *body, bool envelope,
                            struct response *resp)
{
    struct store_session s;
    struct store *st = NULL;
    struct bus *bus;
    struct cgw_error err;
    char sid[CGW_UUID_LEN + 1];
    char *rule = NULL;

    memset(&s, 0, sizeof s);
    if (http_only_fields(body, envelope ? perm_fields_env : perm_fields, resp) < 0)
        return;
    const char *rid = required_id(body, "requestId", CODE_REQUEST_ID_REQUIRED, resp);
    if (!rid || perm_fields_check(body, resp) < 0)
        return;
    if (strlen(rid) > 100) {
        response_error(resp, CODE_PERMISSION_NOT_FOUND, NULL, "permission request not found");
        return;
    }
    /* The request's session, and whether it is the caller's: 404 alike. */
    enum cgw_err rc = worker_bus(w, &bus, &err);
    if (rc == CGW_OK)
        rc = bus_perm_session(bus, rid, sid, &err);
    if (rc == CGW_OK)
        rc = worker_store(w, &st, &err);
    if (rc == CGW_OK)
        rc = store_session_get(st, sid, req->user.id, &s, &err);
    if (rc == CGW_ERR_NOT_FOUND) {
        response_error(resp, CODE_PERMISSION_NOT_FOUND, NULL, "permission request not found");
        goto out;
    }
    if (rc != CGW_OK) {
        response_from_err(resp, &err, NULL);
        goto out;
    }
    /* The rule to remember comes from the pending request, checked before answering. */
    if (rules_remember_prepare(bus, s.id, rid, body, &rule, resp) < 0)
        goto out;
    rc = perm_resolve(bus, s.id, rid, body, &err);
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
    json_t *allow = json_object_get(body, "allow");
    json_t *ans = json_pack("{s:s, s:s, s:O}", "requestId", rid, "sessionId", s.id, "allow", allow);
    /* The decision is sent: a rule that cannot be stored only costs a question later. */
    if (rule && store_rule_add(st, req->user.id, s.project_path, rule, &err) != CGW_OK)
        log_error("remembering rule for %s: %s", req->user.name, err.text);
    else if (rule && ans && json_object_set_new(ans, "rememberedRule", json_string(rule)) < 0)
        log_error("out of memory answering permission %s", rid);
    log_info("permission %s of session %s answered by %s: %s%s", rid, s.id, req->user.name,
             json_is_true(allow) ? "allow" : "deny", rule ? " (remembered)" : "");
    response_json(resp, 200, ans);
out:
    free(rule);
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
