/* metrics.h: the counters of one chatgw.fcgi process and their Prometheus text form
 * (GET /metrics, doc/api.md "Metrics").
 *
 * Entry points: metrics_new at start (the route labels come from the router), the
 * metrics_* counting calls from any thread (relaxed atomics: a scrape sees each counter
 * whole, not all of them at one instant), metrics_render for a scrape. Every sample
 * carries process="<pid>": several processes may serve one site (mod_fcgid starts more).
 */
#ifndef CGW_FCGI_METRICS_H
#define CGW_FCGI_METRICS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct metrics;

/* Returns a new metrics for n_routes routes, named by method[i] and pattern[i]
 * (borrowed: they must outlive it; the router's table does), or NULL when out of
 * memory. Answers outside those routes count under route="none". */
struct metrics *metrics_new(const char *const *method, const char *const *pattern, size_t n_routes);
void metrics_free(struct metrics *m);

/* An answer to a request of route (an index given to metrics_new, -1: no route) with
 * status, dur_us after the request was accepted. body (borrowed, may be NULL) is looked
 * at for what it carries: the frames of a subscribe answer, the outcome of a
 * permission answer (allow, deny, or its error code). m may be NULL: nothing. */
void metrics_answer(struct metrics *m, int route, int status, int64_t dur_us, const json_t *body);

/* n frames sent in an answer written as text (metrics_answer counts those of a body). */
void metrics_frames(struct metrics *m, size_t n);

/* A run of provider (enum provider_id) was started by this process's send; spawn_failed:
 * its runner did not start, so the run also ended here (reason spawn_failed). */
void metrics_run_started(struct metrics *m, int provider, bool spawn_failed);

/* One round of the reaper: runs it completed as runner_lost, delayed feed frames it
 * published, whether the round failed on a backend. */
void metrics_reaper_round(struct metrics *m, size_t reaped, size_t republished, bool failed);

enum metrics_backend { METRICS_REDIS, METRICS_STORE, METRICS__BACKENDS };

/* A worker could not open its connection to the backend. */
void metrics_backend_error(struct metrics *m, enum metrics_backend b);

/* What a scrape reads from outside the counters. */
/* The process's copies that spare a store read or a Redis command (doc/internals.md). */
enum metrics_cache {
    METRICS_CACHE_SESSION,
    METRICS_CACHE_TOKEN,
    METRICS_CACHE_OWNER,
    METRICS__CACHES
};

struct metrics_gauges {
    int64_t polls_held;   /* poller_held */
    uint64_t polls_total; /* poller_total */
    int64_t runs_running; /* size of Redis's running set; < 0: Redis not reachable */
    uint64_t cache_hits[METRICS__CACHES], cache_misses[METRICS__CACHES]; /* lookups so far */
};

/* The Prometheus text exposition (version 0.0.4) of m and g: a new string (free()),
 * or NULL when out of memory. Thread-safe. */
char *metrics_render(struct metrics *m, const struct metrics_gauges *g);

/* A monotonic clock in microseconds, for dur_us. */
int64_t metrics_now_us(void);

/* Whether a client at addr (REMOTE_ADDR, may be NULL) may read /metrics under
 * metrics.allow: "any", "loopback" (127.0.0.0/8, ::1, ::ffff:127.0.0.0/104), else no. */
bool metrics_client_allowed(const char *allow, const char *addr);

#endif
