/* publish.c: publishing a run's events to Redis and persisting them to the store in batches. */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "core/publish.h"
#include "core/util.h"
#include "runner/run_priv.h"

int64_t runner_now_ms(void)
{
    return cgw_mono_ms();
}

/* How long Redis writes are retried before the runner gives up. */
static int64_t backend_budget_ms(const struct run *r)
{
    return 2 * r->cfg->runner_lease_s * 1000;
}

/* Pauses before retry number attempt (1, 2, ...) of a Redis write; false when the
 * budget that started at t0 is spent. */
bool runner_retry_pause(const struct run *r, int64_t t0, int attempt)
{
    int64_t pause = RUN_RETRY_FIRST_MS << (attempt < 5 ? attempt - 1 : 4);
    int64_t now = runner_now_ms();
    if (now + pause - t0 > backend_budget_ms(r))
        return false;
    /* Never sleep past the fence: the CLI must be killed on time. */
    if (now + pause >= r->fence_at)
        pause = r->fence_at > now ? r->fence_at - now : 0;
    cgw_sleep_ms(pause);
    return now + pause < r->fence_at;
}

/* ---- fencing --------------------------------------------------------------------- */

/* The margin between the fence and the earliest moment the lease can lapse in Redis:
 * a fifth of the lease, at least a second (a third of the lease when that is less). It
 * covers the kill itself and the clocks of two hosts running at slightly different
 * rates; the refresh's own send time is already on the safe side (Redis set the TTL
 * after it). */
static int64_t fence_margin_ms(const struct run *r)
{
    int64_t lease_ms = r->cfg->runner_lease_s * 1000;
    int64_t m = lease_ms / 5, floor = lease_ms / 3 < 1000 ? lease_ms / 3 : 1000;
    return m > floor ? m : floor;
}

void runner_fence_renew(struct run *r, int64_t sent_ms)
{
    r->fence_at = sent_ms + r->cfg->runner_lease_s * 1000 - fence_margin_ms(r);
}

bool runner_fence_check(struct run *r)
{
    if (r->fenced)
        return true;
    if (runner_now_ms() < r->fence_at)
        return false;
    r->fenced = r->lost = true;
    if (r->child.pid > 0 && runner_child_signal(&r->child, SIGKILL) == 0)
        log_error("no lease refresh succeeded for runner.lease_s minus %" PRId64
                  " ms: killed the CLI's process group %d (fencing); publishing nothing more",
                  fence_margin_ms(r), (int)r->child.pid);
    else
        log_error("no lease refresh succeeded in time (fencing): publishing nothing more");
    return true;
}

enum cgw_err runner_restore(struct run *r, struct cgw_error *err)
{
    int64_t sent = runner_now_ms(), seq = 0;
    struct bus_restore rs = {
        .session_id = r->session_id,
        .run_id = r->run_id,
        .provider = r->ctx.provider,
        .owner = r->req.owner,
        .request_json = r->request_json,
        .started_ms = r->started_ms,
        .runner_host = r->host,
        .runner_pid = (int64_t)getpid(),
        .cli_pgid = r->child.pid > 0 ? (int64_t)r->child.pid : 0,
        .floor = r->floor,
        .lease_ms = r->cfg->runner_lease_s * 1000,
    };
    if (runner_fence_check(r))
        return cgw_error_set(err, CGW_ERR_STALE, "fenced");
    enum cgw_err rc = bus_run_restore(r->bus, &rs, &seq, err);
    if (rc == CGW_OK) {
        runner_fence_renew(r, sent);
        log_warn(
            "the run hash was gone from Redis (data lost): wrote it again, seq counter %" PRId64,
            seq);
    }
    return rc;
}

enum cgw_err runner_bus_publish(struct run *r, size_t n, const char *const *ids,
                                const char *const *jsons, enum bus_publish_kind kind,
                                int64_t *last_seq, struct cgw_error *err)
{
    int64_t t0 = runner_now_ms();
    enum cgw_err rc;
    bool restored = false;

    for (int attempt = 1;; attempt++) {
        if (runner_fence_check(r))
            return cgw_error_set(err, CGW_ERR_STALE, "fenced: the lease may have lapsed");
        struct bus_publish p = {r->session_id, r->run_id, n, ids, jsons, kind, r->floor};
        rc = bus_publish(r->bus, &p, last_seq, err);
        if (rc == CGW_ERR_NOT_FOUND && !restored) {
            /* Redis lost the run: write it again (only if nothing else is recorded),
             * then the same events again, above the floor. */
            restored = true;
            rc = runner_restore(r, err);
            if (rc == CGW_OK)
                continue;
        }
        if (rc != CGW_ERR_BACKEND || !runner_retry_pause(r, t0, attempt))
            break;
    }
    if (rc == CGW_OK && *last_seq > r->floor)
        r->floor = *last_seq;
    if (rc == CGW_ERR_NOT_FOUND)
        rc = cgw_error_set(err, CGW_ERR_STALE, "the run hash is gone again after its restore");
    if (rc == CGW_ERR_BACKEND)
        runner_fence_check(r);
    return rc;
}

/* ---- persistence ----------------------------------------------------------------- */

/* Events are collected in memory (r->batch, in_tx = a batch is pending) and written with
 * one store_message_add_batch (one short transaction; on PostgreSQL one statement, one
 * round trip) when the batch is full, RUN_BATCH_MS after its first event, or at the end
 * of the run. The write lock is held only while the batch is
 * written, never while the runner waits for the CLI: SQLite allows one writer at a time,
 * and with many runners of slow CLIs a transaction left open for RUN_BATCH_MS per event
 * kept the others (and chatgw.fcgi's sends) waiting into their busy timeouts. */

static void batch_clear(struct run *r)
{
    for (size_t i = 0; i < r->n_batch; i++)
        free(r->batch[i].json);
    r->n_batch = 0;
    r->in_tx = false;
}

/* The session row is gone: nothing of this run can be persisted any more. */
static void store_gone(struct run *r)
{
    log_error("the session is not in the database: events are no longer persisted");
    batch_clear(r);
    store_close(r->store);
    r->store = NULL;
}

/* After a failed batch: adds its events one by one (store_message_add is idempotent). */
static void batch_replay(struct run *r)
{
    struct cgw_error err;
    for (size_t i = 0; i < r->n_batch; i++) {
        struct batch_item *b = &r->batch[i];
        enum cgw_err rc =
            store_message_add(r->store, r->session_id, b->seq, b->kind, b->json, &err);
        if (rc == CGW_ERR_NOT_FOUND) {
            store_gone(r);
            return;
        }
        if (rc != CGW_OK)
            log_error("event seq %" PRId64 " is not persisted: %s", b->seq, err.text);
    }
    batch_clear(r);
}

void runner_batch_commit(struct run *r)
{
    struct store_message msgs[RUN_BATCH_MAX];
    struct cgw_error err;
    enum cgw_err rc;

    if (!r->in_tx || !r->store) {
        batch_clear(r);
        return;
    }
    for (size_t i = 0; i < r->n_batch; i++) {
        msgs[i].seq = r->batch[i].seq;
        snprintf(msgs[i].kind, sizeof msgs[i].kind, "%s", r->batch[i].kind);
        msgs[i].json = r->batch[i].json;
    }
    rc = store_message_add_batch(r->store, r->session_id, msgs, r->n_batch, &err);
    if (rc == CGW_ERR_NOT_FOUND) {
        store_gone(r);
    } else if (rc == CGW_ERR_CONFLICT) {
        /* The others are stored; history keeps what it had at the clashing seqs. */
        log_error("events not persisted: %s", err.text);
        batch_clear(r);
    } else if (rc != CGW_OK) {
        log_warn("writing %zu events: %s; adding them one by one", r->n_batch, err.text);
        batch_replay(r);
    } else {
        batch_clear(r);
    }
}

/* Queues one published event (json with its seq) for the next batch. */
void runner_persist(struct run *r, int64_t seq, const char *kind, const char *json)
{
    struct cgw_error err;

    if (!r->store)
        return;
    struct batch_item *b = &r->batch[r->n_batch];
    b->seq = seq;
    snprintf(b->kind, sizeof b->kind, "%s", kind);
    b->json = strdup(json);
    if (!b->json) {
        /* No memory for the queue: write this one alone, now. */
        if (store_message_add(r->store, r->session_id, seq, kind, json, &err) != CGW_OK)
            log_error("event seq %" PRId64 " is not persisted: %s", seq, err.text);
        return;
    }
    if (!r->in_tx) {
        r->in_tx = true;
        r->batch_start = runner_now_ms();
    }
    if (++r->n_batch >= RUN_BATCH_MAX)
        runner_batch_commit(r);
}

/* ---- publishing ------------------------------------------------------------------ */

/* The outcome of a Redis write for the run: retried on CGW_ERR_BACKEND; STALE marks the
 * run lost, an exhausted retry budget marks it failed. */
enum cgw_err runner_settle(struct run *r, enum cgw_err rc, const struct cgw_error *err,
                           const char *what)
{
    if (rc == CGW_ERR_STALE) {
        if (!r->lost)
            log_warn("%s: the run is no longer running (reaped or replaced): %s", what, err->text);
        r->lost = true;
    } else if (rc == CGW_ERR_BACKEND) {
        log_error("%s: Redis stayed unreachable: %s; giving up", what, err->text);
        r->failed = true;
    } else if (rc != CGW_OK) {
        log_error("%s: %s", what, err->text);
    }
    return rc;
}

/* Queues an encoded event for runner_publish_flush (json is taken on success);
 * -1 when there is no memory for it (then it is published at once). */
static int queue(struct run *r, const char *id, const char *kname, enum event_kind kind, char *json)
{
    struct pub_item *p = &r->pub[r->n_pub];
    if (!(p->id = strdup(id)))
        return -1;
    p->json = json;
    snprintf(p->kind, sizeof p->kind, "%s", kname);
    p->persist = event_kind_is_persisted(kind);
    if (++r->n_pub == BUS_PUBLISH_BATCH_MAX)
        runner_publish_flush(r);
    return 0;
}

void runner_publish_flush(struct run *r)
{
    struct cgw_error err;
    const char *ids[BUS_PUBLISH_BATCH_MAX], *jsons[BUS_PUBLISH_BATCH_MAX];
    size_t n = r->n_pub;
    int64_t last = 0;
    enum cgw_err rc;

    if (n == 0)
        return;
    r->n_pub = 0;
    if (!r->lost && !r->failed && !r->completed) {
        for (size_t i = 0; i < n; i++) {
            ids[i] = r->pub[i].id;
            jsons[i] = r->pub[i].json;
        }
        rc = runner_bus_publish(r, n, ids, jsons, BUS_PUBLISH_EVENTS, &last, &err);
        if (runner_settle(r, rc, &err, "publishing events") == CGW_OK) {
            for (size_t i = 0; i < n; i++) {
                int64_t seq = last - (int64_t)(n - 1 - i);
                char *text = publish_with_seq(r->pub[i].json, seq);
                if (!text)
                    log_error("out of memory: event seq %" PRId64 " is not persisted", seq);
                else if (r->pub[i].persist)
                    runner_persist(r, seq, r->pub[i].kind, text);
                free(text);
            }
        }
    }
    for (size_t i = 0; i < n; i++) {
        free(r->pub[i].id);
        free(r->pub[i].json);
    }
}

/* Publishes ev (taken) as an event of the run and persists it. *stored (may be NULL)
 * receives the stored JSON (with seq; free()). Returns 0, or -1 when it was not
 * published (then r->lost or r->failed may be set). */
int runner_publish(struct run *r, json_t *ev, char **stored)
{
    struct cgw_error err;
    enum cgw_err rc = CGW_ERR_NOMEM;
    enum event_kind kind;
    int64_t seq = 0;
    char *json = NULL, *text = NULL;
    int ret = -1;

    if (stored)
        *stored = NULL;
    if (!ev) {
        log_error("out of memory building an event; it is lost");
        return -1;
    }
    if (runner_fence_check(r) || r->lost || r->failed || r->completed)
        goto out;
    const char *id = event_id(ev);
    const char *kname = json_string_value(json_object_get(ev, "kind"));
    json = event_encode(ev);
    if (!json || !id || !kname || event_kind_from_name(kname, &kind) < 0) {
        log_error("out of memory encoding an event; it is lost");
        goto out;
    }
    if (r->deferring && !stored && queue(r, id, kname, kind, json) == 0) {
        json = NULL; /* the queue owns it */
        ret = 0;
        goto out;
    }
    runner_publish_flush(r); /* what was queued goes first */
    if (r->lost || r->failed)
        goto out;
    const char *one = json;
    rc = runner_bus_publish(r, 1, &id, &one, BUS_PUBLISH_EVENTS, &seq, &err);
    if (runner_settle(r, rc, &err, "publishing an event") != CGW_OK)
        goto out;
    text = publish_with_seq(json, seq);
    if (!text) {
        log_error("out of memory: event seq %" PRId64 " is not persisted", seq);
    } else if (event_kind_is_persisted(kind)) {
        runner_persist(r, seq, kname, text);
    }
    if (stored) {
        *stored = text;
        text = NULL;
    }
    ret = 0;
out:
    free(text);
    free(json);
    json_decref(ev);
    return ret;
}

/* Publishes an `error` event with text (made valid UTF-8). */
void runner_publish_error(struct run *r, const char *text)
{
    char *copy = strdup(text);
    if (copy)
        cgw_utf8_sanitize(copy);
    log_info("error event: %s", copy ? copy : text);
    runner_publish(r, event_new_error(&r->ctx, copy ? copy : "error"), NULL);
    free(copy);
}
