/* reaper.c: periodic runner_lost completion of runs whose lease expired, and the
 * session-feed frames that waited for Redis (core/feed.h's backlog). */
#include "fcgi/reaper.h"

#include <pthread.h>

#include "core/feed.h"
#include "core/log.h"
#include "core/reap.h"
#include "core/util.h"
#include "fcgi/metrics.h"

static void *reaper_main(void *p)
{
    struct worker *w = p;
    const struct app *app = w->app;
    int64_t period_ms = app->cfg.runner_lease_s * 1000 / 3;
    bool was_down = false;

    if (period_ms < 1000)
        period_ms = 1000;
    for (;;) {
        cgw_sleep_ms(period_ms);
        struct store *st;
        struct bus *bus;
        struct cgw_error err;
        size_t reaped = 0;
        enum cgw_err rc = worker_store(w, &st, &err);
        if (rc == CGW_OK)
            rc = worker_bus(w, &bus, &err);
        if (rc == CGW_OK)
            rc = reap_expired(st, bus, app->cfg.host_id, &reaped, &err);
        size_t republished = 0;
        if (rc == CGW_OK)
            rc = feed_backlog_flush(app->feed_backlog, st, bus, &republished, &err);
        metrics_reaper_round(app->metrics, reaped, republished, rc != CGW_OK);
        if (republished)
            log_info("reaper: published %zu delayed feed frame%s", republished,
                     republished == 1 ? "" : "s");
        /* A dead backend is logged once per outage, not every period. */
        if (rc != CGW_OK && !was_down)
            log_warn("reaper: %s", err.text);
        else if (rc == CGW_OK && was_down)
            log_info("reaper: backends reachable again");
        was_down = rc != CGW_OK;
        if (reaped)
            log_info("reaper: completed %zu lost run%s", reaped, reaped == 1 ? "" : "s");
    }
    return NULL;
}

int reaper_start(struct worker *w)
{
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create(&t, &attr, reaper_main, w);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        log_error("cannot start the reaper thread");
        return -1;
    }
    return 0;
}
