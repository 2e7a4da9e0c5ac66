/* run_start.c: a send's sequence: limit, claim, first events, spawn, spawn failure. */
#include "core/run_start.h"

#include <stdlib.h>
#include <string.h>

#include "core/event.h"
#include "core/feed.h"
#include "core/log.h"
#include "core/publish.h"

/* The run request the runner loads from the run hash (doc/internals.md), as JSON text
 * (free()), or NULL when memory ran out. */
static char *run_request_json(const struct run_start_req *req, const char *run_id)
{
    const struct store_session *s = req->session;
    json_t *r = json_pack("{s:s, s:s, s:s, s:I, s:s, s:s?, s:s, s:O}", "sessionId", s->id, "runId",
                          run_id, "provider", s->provider, "owner", (json_int_t)s->owner,
                          "projectPath", s->project_path, "nativeId", s->native_id, "content",
                          req->content, "options", req->options);
    if (r && json_array_size(req->attachments) > 0) {
        json_t *list = json_array(), *a;
        size_t i;
        if (json_object_set_new(r, "attachments", list) < 0)
            list = NULL;
        json_array_foreach(req->attachments, i, a)
        {
            json_t *m =
                json_pack("{s:O, s:O, s:O, s:O}", "id", json_object_get(a, "id"), "name",
                          json_object_get(a, "name"), "mimeType", json_object_get(a, "mimeType"),
                          "size", json_object_get(a, "size"));
            if (!list || json_array_append_new(list, m) < 0) {
                json_decref(r);
                return NULL;
            }
        }
    }
    char *text = r ? json_dumps(r, JSON_COMPACT) : NULL;
    json_decref(r);
    return text;
}

/* The prompt as the user's text event, with its attachments (DESIGN §4; doc/api.md). */
static json_t *user_text(const struct event_ctx *ctx, const struct run_start_req *req)
{
    json_t *ev = event_new_text(ctx, "user", req->content);
    if (ev && json_array_size(req->attachments) > 0 &&
        json_object_set(ev, "attachments", req->attachments) < 0) {
        json_decref(ev);
        return NULL;
    }
    return ev;
}

/* The atomic claim of the session for a new run id, within the owner's limit of running
 * runs (counted and claimed in one script, bus_run_claim). */
static enum cgw_err claim(struct store *st, struct bus *bus, const struct run_start_req *req,
                          struct run_start_res *res, struct cgw_error *err)
{
    const struct store_session *s = req->session;
    int64_t hwm = 0;
    enum cgw_err rc = store_session_last_seq(st, s->id, &hwm, err);
    if (rc != CGW_OK)
        return rc;
    if (cgw_id_new("run", res->run_id, sizeof res->run_id) < 0)
        return cgw_error_set(err, CGW_ERR_INTERNAL, "no randomness for a run id");
    char *request_json = run_request_json(req, res->run_id);
    if (!request_json)
        return cgw_error_set(err, CGW_ERR_NOMEM, "out of memory");
    struct bus_claim c = {
        .session_id = s->id,
        .run_id = res->run_id,
        .provider = s->provider,
        .owner = s->owner,
        .request_json = request_json,
        .hwm_seq = hwm,
        .lease_ms = req->lease_ms,
        .max_running = req->max_runs,
    };
    rc = bus_run_claim(bus, &c, &res->last_seq, NULL, err);
    free(request_json);
    if (rc == CGW_ERR_CONFLICT)
        return cgw_error_set(err, CGW_ERR_CONFLICT, "session already has a run in progress");
    /* CGW_ERR_LIMIT comes with the script's text: "you have N runs running; ...". */
    return rc;
}

/* Publishes and persists ev (taken) as an event of the run. */
static enum cgw_err publish_taken(struct store *st, struct bus *bus, const struct event_ctx *ctx,
                                  json_t *ev, enum publish_mode mode, struct cgw_error *err)
{
    enum cgw_err rc =
        ev ? publish_persist(st, bus, ctx->session_id, ctx->run_id, ev, mode, NULL, err)
           : cgw_error_set(err, CGW_ERR_NOMEM, "out of memory");
    json_decref(ev);
    return rc;
}

/* No runner will ever end this run: it ends here, once, with the reason. */
static void end_unspawned(struct store *st, struct bus *bus, const struct event_ctx *ctx,
                          const char *why)
{
    struct cgw_error err;
    log_error("run %s: %s", ctx->run_id, why);
    if (publish_taken(st, bus, ctx, event_new_error(ctx, why), PUBLISH_EVENT, &err) != CGW_OK ||
        publish_taken(st, bus, ctx, event_new_complete(ctx, 127, false, REASON_SPAWN_FAILED),
                      PUBLISH_COMPLETE, &err) != CGW_OK)
        log_error("run %s: ending it after the failed start: %s", ctx->run_id, err.text);
}

enum cgw_err run_start(struct store *st, struct bus *bus, const struct run_start_req *req,
                       struct run_start_res *res, struct cgw_error *err)
{
    const struct store_session *s = req->session;

    memset(res, 0, sizeof *res);
    enum cgw_err rc = claim(st, bus, req, res, err);
    if (rc != CGW_OK)
        return rc;
    /* The run's first event comes from here, so a run always has one before its runner
     * starts; the prompt is part of the conversation: history and every tab show it. */
    struct event_ctx ctx = {s->id, res->run_id, s->provider};
    rc = publish_taken(st, bus, &ctx, event_new_run_started(&ctx), PUBLISH_EVENT, err);
    if (rc == CGW_OK)
        rc = publish_taken(st, bus, &ctx, user_text(&ctx, req), PUBLISH_EVENT, err);
    if (rc != CGW_OK)
        return rc; /* the lease lapses and the reaper ends the run as runner_lost */
    char why[512] = "";
    if (req->spawn(req->spawn_ctx, s->id, res->run_id, why, sizeof why) < 0) {
        res->spawn_failed = true;
        end_unspawned(st, bus, &ctx, why[0] ? why : "the runner could not be started");
    }
    struct cgw_error terr;
    if (store_session_touch(st, s->id, &terr) != CGW_OK)
        log_warn("session %s: %s", s->id, terr.text);
    if (feed_publish_session(st, bus, s->id, &terr) != CGW_OK)
        log_warn("session %s: feed not updated: %s", s->id, terr.text);
    return CGW_OK;
}
