/* reap.c: the runner_lost completion of runs whose lease expired. */
#include "core/reap.h"

#include <stdlib.h>
#include <string.h>

#include "core/event.h"
#include "core/feed.h"
#include "core/log.h"
#include "core/publish.h"

enum cgw_err reap_run(struct store *st, struct bus *bus, const char *session_id,
                      const struct bus_run *run, int64_t *seq, struct cgw_error *err)
{
    struct event_ctx ctx = {session_id, run->run_id, run->provider};
    json_t *ev = event_new_complete(&ctx, 1, false, REASON_RUNNER_LOST);
    int64_t got = 0;
    struct cgw_error perr;

    if (!ev)
        return cgw_error_set(err, CGW_ERR_NOMEM, "out of memory");
    enum cgw_err rc =
        publish_persist(st, bus, session_id, run->run_id, ev, PUBLISH_REAP, &got, &perr);
    json_decref(ev);
    if (got == 0) {
        if (err)
            *err = perr;
        return rc; /* not published: the lease is alive, or another reaper was first */
    }
    log_warn("run %s of session %s lost its runner (pid %lld): completed as runner_lost "
             "at seq %lld",
             run->run_id, session_id, (long long)run->runner_pid, (long long)got);
    if (seq)
        *seq = got;
    /* Published: what fails from here on is logged, the run is completed either way. */
    if (rc == CGW_OK)
        rc = store_session_touch(st, session_id, &perr);
    if (rc == CGW_OK)
        rc = feed_publish_session(st, bus, session_id, &perr);
    if (rc != CGW_OK)
        log_error("session %s: persisting the runner_lost complete: %s", session_id, perr.text);
    return CGW_OK;
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
