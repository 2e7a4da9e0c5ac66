/* reap.c: the runner_lost completion of runs whose lease expired. */
#include "core/reap.h"

#include <stdlib.h>
#include <string.h>

#include "core/event.h"
#include "core/feed.h"
#include "core/log.h"

enum cgw_err reap_publish_persist(struct store *st, struct bus *bus, const char *session_id,
                                  const char *run_id, json_t *ev, bool complete, int64_t *seq,
                                  struct cgw_error *err)
{
    int64_t got = 0;
    char *json = event_encode(ev);
    if (!json)
        return cgw_error_set(err, CGW_ERR_NOMEM, "out of memory encoding an event");
    enum cgw_err rc =
        complete ? bus_run_complete(bus, session_id, run_id, event_id(ev), json, false, &got, err)
                 : bus_event_publish(bus, session_id, run_id, event_id(ev), json, &got, err);
    free(json);
    if (rc != CGW_OK)
        return rc;
    if (seq)
        *seq = got;
    /* The stored text is the event as published: with its seq. */
    json_t *copy = json_deep_copy(ev);
    if (!copy || json_object_set_new(copy, "seq", json_integer(got)) < 0) {
        json_decref(copy);
        return cgw_error_set(err, CGW_ERR_NOMEM, "out of memory");
    }
    char *stored = event_encode(copy);
    const char *kind = json_string_value(json_object_get(copy, "kind"));
    enum event_kind k;
    if (stored && kind && event_kind_from_name(kind, &k) == 0 && event_kind_is_persisted(k))
        rc = store_message_add(st, session_id, got, kind, stored, err);
    else if (!stored)
        rc = cgw_error_set(err, CGW_ERR_NOMEM, "out of memory");
    free(stored);
    json_decref(copy);
    return rc;
}

enum cgw_err reap_run(struct store *st, struct bus *bus, const char *session_id,
                      const struct bus_run *run, int64_t *seq, struct cgw_error *err)
{
    struct event_ctx ctx = {session_id, run->run_id, run->provider};
    json_t *ev = event_new_complete(&ctx, 1, false, REASON_RUNNER_LOST);
    char *json = ev ? event_encode(ev) : NULL;
    int64_t got = 0;
    if (!json) {
        json_decref(ev);
        return cgw_error_set(err, CGW_ERR_NOMEM, "out of memory");
    }
    enum cgw_err rc =
        bus_run_complete(bus, session_id, run->run_id, event_id(ev), json, true, &got, err);
    free(json);
    if (rc == CGW_OK) {
        log_warn("run %s of session %s lost its runner (pid %lld): completed as runner_lost "
                 "at seq %lld",
                 run->run_id, session_id, (long long)run->runner_pid, (long long)got);
        if (seq)
            *seq = got;
        /* The stream keeps the event for stream.ttl_s only; history needs it in SQLite. */
        json_object_set_new(ev, "seq", json_integer(got));
        char *stored = event_encode(ev);
        struct cgw_error e2;
        enum cgw_err prc = stored ? store_message_add(st, session_id, got, "complete", stored, &e2)
                                  : cgw_error_set(&e2, CGW_ERR_NOMEM, "out of memory");
        if (prc == CGW_OK)
            prc = store_session_touch(st, session_id, &e2);
        if (prc == CGW_OK)
            prc = feed_publish_session(st, bus, session_id, &e2);
        if (prc != CGW_OK)
            log_error("session %s: persisting the runner_lost complete: %s", session_id, e2.text);
        free(stored);
    }
    json_decref(ev);
    return rc;
}

enum cgw_err reap_expired(struct store *st, struct bus *bus, size_t *reaped, struct cgw_error *err)
{
    char **ids = NULL;
    size_t n = 0, count = 0;
    enum cgw_err rc = bus_runs_running(bus, &ids, &n, err);
    if (rc != CGW_OK)
        return rc;
    for (size_t i = 0; i < n && rc == CGW_OK; i++) {
        struct bus_run run;
        rc = bus_run_get(bus, ids[i], &run, NULL, err);
        if (rc == CGW_ERR_NOT_FOUND) {
            rc = CGW_OK;
            continue;
        }
        if (rc != CGW_OK || run.status != RUN_RUNNING || run.lease_alive)
            continue;
        rc = reap_run(st, bus, ids[i], &run, NULL, err);
        if (rc == CGW_OK)
            count++;
        else if (rc == CGW_ERR_CONFLICT || rc == CGW_ERR_STALE)
            rc = CGW_OK; /* the runner came back, or another reaper was first */
    }
    bus_strings_free(ids, n);
    if (reaped)
        *reaped = count;
    return rc;
}
