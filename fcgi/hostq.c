/* hostq.c: the consumer thread of this host's spawn queue (hostq.h). */
#include "config.h" /* autoconf's: _GNU_SOURCE for pthread_timedjoin_np */

#include "fcgi/hostq.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#include "core/bus_host.h"
#include "core/log.h"
#include "core/util.h"
#include "fcgi/spawn.h"

struct hostq {
    const struct app *app;
    pthread_t thread;
    atomic_bool stop;
};

int64_t hostq_alive_ms(const struct config *cfg)
{
    return 2 * (HOSTQ_WAIT_MS + cfg->redis_timeout_ms) + 1000;
}

/* Starts the runner of one request, as a local send's spawn would. A failure leaves
 * the claimed run without a runner: its lease lapses and the reaper ends it as
 * runner_lost. */
static void hostq_spawn(const struct app *app, const char *session_id, const char *run_id)
{
    char why[512] = "";
    if (spawn_runner(app, session_id, run_id, why, sizeof why) < 0)
        log_error("run %s of session %s, queued for this host: %s (the reaper will end it)", run_id,
                  session_id, why[0] ? why : "the runner could not be started");
    else
        log_info("run %s of session %s: runner started for another host's send", run_id,
                 session_id);
}

static void *hostq_main(void *p)
{
    struct hostq *q = p;
    const char *host = q->app->cfg.host_id;
    int64_t alive_ms = hostq_alive_ms(&q->app->cfg);
    struct bus *bus = NULL;
    struct cgw_error err;
    bool was_down = false;

    if (bus_open(&q->app->bus_cfg, true, &bus, &err) != CGW_OK) {
        log_error("spawn queue of host %s: %s", host, err.text);
        return NULL;
    }
    while (!atomic_load(&q->stop)) {
        char sid[CGW_UUID_LEN + 1], rid[CGW_ID_MAX];
        bool got = false;
        enum cgw_err rc = bus_host_beat(bus, host, alive_ms, &err);
        if (rc == CGW_OK)
            rc = bus_host_spawn_pop(bus, host, HOSTQ_WAIT_MS, &got, sid, rid, &err);
        if (rc == CGW_OK && got)
            hostq_spawn(q->app, sid, rid);
        if (rc == CGW_ERR_INTERNAL) {
            log_error("spawn queue of host %s: %s", host, err.text);
            continue;
        }
        /* A dead Redis is logged once per outage; the next round reconnects. */
        if (rc != CGW_OK && !was_down)
            log_warn("spawn queue of host %s: %s", host, err.text);
        else if (rc == CGW_OK && was_down)
            log_info("spawn queue of host %s: Redis reachable again", host);
        was_down = rc != CGW_OK;
        if (rc != CGW_OK)
            cgw_sleep_ms(HOSTQ_WAIT_MS);
    }
    bus_close(bus);
    return NULL;
}

struct hostq *hostq_start(const struct app *app)
{
    struct hostq *q = calloc(1, sizeof *q);
    if (!q) {
        log_error("spawn queue: out of memory");
        return NULL;
    }
    q->app = app;
    atomic_init(&q->stop, false);
    if (pthread_create(&q->thread, NULL, hostq_main, q) != 0) {
        log_error("cannot start the spawn queue thread");
        free(q);
        return NULL;
    }
    return q;
}

void hostq_stop(struct hostq *q, int64_t wait_ms)
{
    struct timespec until;

    if (!q)
        return;
    atomic_store(&q->stop, true);
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += wait_ms / 1000;
    until.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    if (pthread_timedjoin_np(q->thread, NULL, &until) != 0) {
        /* Still in a Redis command: it keeps q, the process is about to exit. */
        pthread_detach(q->thread);
        return;
    }
    free(q);
}
