/* metrics.c: the counters of chatgw.fcgi and their Prometheus text exposition. */
#include "fcgi/metrics.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/providers.h"

/* The statuses chatgw answers with; anything else counts as "other". */
static const int statuses[] = {200, 201, 202, 204, 400, 401, 404,
                               405, 409, 413, 415, 429, 500, 503};
#define N_STATUS (sizeof statuses / sizeof statuses[0] + 1)

/* Upper bounds of the latency histogram, in seconds (fixed: a held poll answers after
 * up to limits.wait_ms_max). */
static const double buckets[] = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                 0.5,   1,     2.5,  5,     10,   30,  60};
#define N_BUCKETS (sizeof buckets / sizeof buckets[0])

enum perm_outcome { PERM_ALLOW, PERM_DENY, PERM_NOT_FOUND, PERM_RESOLVED, PERM_ERROR, PERM__N };
static const char *const perm_names[PERM__N] = {"allow", "deny", "not_found", "already_resolved",
                                                "error"};
static const char *const backend_names[METRICS__BACKENDS] = {"redis", "store"};

typedef atomic_uint_fast64_t counter;

struct route_stats {
    counter by_status[N_STATUS];
    counter bucket[N_BUCKETS + 1]; /* not cumulative; the last is +Inf only */
    counter sum_us;
};

struct metrics {
    const char *const *method, *const *pattern;
    size_t n_routes;
    struct route_stats *routes; /* n_routes + 1: the last is route="none" */
    counter runs_started[PROVIDER__COUNT];
    counter runs_spawn_failed[PROVIDER__COUNT];
    counter runs_reaped;
    counter frames;
    counter perms[PERM__N];
    counter backend[METRICS__BACKENDS];
    counter reaper_rounds, reaper_failed, reaper_republished;
};

static void inc(counter *c, uint64_t n)
{
    atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

static uint64_t get(counter *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

struct metrics *metrics_new(const char *const *method, const char *const *pattern, size_t n_routes)
{
    struct metrics *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->routes = calloc(n_routes + 1, sizeof *m->routes);
    if (!m->routes) {
        free(m);
        return NULL;
    }
    m->method = method;
    m->pattern = pattern;
    m->n_routes = n_routes;
    return m;
}

void metrics_free(struct metrics *m)
{
    if (m)
        free(m->routes);
    free(m);
}

/* A permission answer: {requestId, allow, ...} or a protocol_error with its code. */
static void count_permission(struct metrics *m, int status, const json_t *body)
{
    const char *code = json_string_value(json_object_get(body, "code"));
    if (status == 200 && json_object_get(body, "requestId") && json_object_get(body, "allow"))
        inc(&m->perms[json_is_true(json_object_get(body, "allow")) ? PERM_ALLOW : PERM_DENY], 1);
    else if (code && strcmp(code, "PERMISSION_NOT_FOUND") == 0)
        inc(&m->perms[PERM_NOT_FOUND], 1);
    else if (code && strcmp(code, "PERMISSION_ALREADY_RESOLVED") == 0)
        inc(&m->perms[PERM_RESOLVED], 1);
    else if (status >= 500)
        inc(&m->perms[PERM_ERROR], 1);
}

void metrics_answer(struct metrics *m, int route, int status, int64_t dur_us, const json_t *body)
{
    if (!m)
        return;
    struct route_stats *r =
        &m->routes[route >= 0 && (size_t)route < m->n_routes ? (size_t)route : m->n_routes];
    size_t s = 0;
    while (s < N_STATUS - 1 && statuses[s] != status)
        s++;
    inc(&r->by_status[s], 1);
    if (dur_us < 0)
        dur_us = 0;
    size_t b = 0;
    while (b < N_BUCKETS && (double)dur_us / 1e6 > buckets[b])
        b++;
    inc(&r->bucket[b], 1);
    inc(&r->sum_us, (uint64_t)dur_us);
    json_t *frames = json_object_get(body, "frames");
    if (json_is_array(frames))
        inc(&m->frames, json_array_size(frames));
    /* POST /chat/permission, or the POST /chat envelope of a permission answer. */
    if (route >= 0 && (size_t)route < m->n_routes &&
        strcmp(m->pattern[route], "/chat/permission") == 0)
        count_permission(m, status, body);
    else if (json_object_get(body, "requestId") && json_object_get(body, "allow"))
        count_permission(m, status, body);
}

void metrics_frames(struct metrics *m, size_t n)
{
    if (m)
        inc(&m->frames, n);
}

void metrics_run_started(struct metrics *m, int provider, bool spawn_failed)
{
    if (!m || provider < 0 || provider >= PROVIDER__COUNT)
        return;
    inc(&m->runs_started[provider], 1);
    if (spawn_failed)
        inc(&m->runs_spawn_failed[provider], 1);
}

void metrics_reaper_round(struct metrics *m, size_t reaped, size_t republished, bool failed)
{
    if (!m)
        return;
    inc(&m->reaper_rounds, 1);
    inc(&m->runs_reaped, reaped);
    inc(&m->reaper_republished, republished);
    if (failed)
        inc(&m->reaper_failed, 1);
}

void metrics_backend_error(struct metrics *m, enum metrics_backend b)
{
    if (m && b < METRICS__BACKENDS)
        inc(&m->backend[b], 1);
}

int64_t metrics_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

bool metrics_client_allowed(const char *allow, const char *addr)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (allow && strcmp(allow, "any") == 0)
        return true;
    if (!allow || strcmp(allow, "loopback") != 0 || !addr)
        return false;
    if (inet_pton(AF_INET, addr, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, addr, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6) || (IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127);
    return false;
}

/* ---- the text exposition -------------------------------------------------------- */

struct out {
    char *buf;
    size_t len, cap;
    bool failed;
    char process[32]; /* process="<pid>" */
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct out *o, const char *fmt, ...)
{
    va_list ap;
    while (!o->failed) {
        va_start(ap, fmt);
        int n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            o->failed = true;
            return;
        }
        if ((size_t)n < o->cap - o->len) {
            o->len += (size_t)n;
            return;
        }
        size_t cap = (o->cap + (size_t)n) * 2;
        char *bigger = realloc(o->buf, cap);
        if (!bigger) {
            o->failed = true;
            return;
        }
        o->buf = bigger;
        o->cap = cap;
    }
}

static void head(struct out *o, const char *name, const char *type, const char *help)
{
    put(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void route_label(struct out *o, const struct metrics *m, size_t i)
{
    if (i < m->n_routes)
        put(o, "route=\"%s %s\"", m->method[i], m->pattern[i]);
    else
        put(o, "route=\"none\"");
}

static void render_requests(struct out *o, struct metrics *m)
{
    head(o, "chatgw_http_responses_total", "counter",
         "Answers by route (method and pattern of the route table) and HTTP status; held "
         "requests count when the poller answers them.");
    for (size_t i = 0; i <= m->n_routes; i++) {
        for (size_t s = 0; s < N_STATUS; s++) {
            uint64_t v = get(&m->routes[i].by_status[s]);
            if (!v)
                continue;
            put(o, "chatgw_http_responses_total{%s,", o->process);
            route_label(o, m, i);
            if (s < N_STATUS - 1)
                put(o, ",status=\"%d\"} %llu\n", statuses[s], (unsigned long long)v);
            else
                put(o, ",status=\"other\"} %llu\n", (unsigned long long)v);
        }
    }
    head(o, "chatgw_http_request_duration_seconds", "histogram",
         "Time from accepting a request to its answer, by route (a held poll's wait "
         "included).");
    for (size_t i = 0; i <= m->n_routes; i++) {
        uint64_t cum = 0;
        for (size_t b = 0; b <= N_BUCKETS; b++)
            cum += get(&m->routes[i].bucket[b]);
        if (!cum)
            continue;
        uint64_t total = cum;
        cum = 0;
        for (size_t b = 0; b <= N_BUCKETS; b++) {
            cum += get(&m->routes[i].bucket[b]);
            put(o, "chatgw_http_request_duration_seconds_bucket{%s,", o->process);
            route_label(o, m, i);
            if (b < N_BUCKETS)
                put(o, ",le=\"%g\"} %llu\n", buckets[b], (unsigned long long)cum);
            else
                put(o, ",le=\"+Inf\"} %llu\n", (unsigned long long)cum);
        }
        put(o, "chatgw_http_request_duration_seconds_sum{%s,", o->process);
        route_label(o, m, i);
        put(o, "} %.6f\n", (double)get(&m->routes[i].sum_us) / 1e6);
        put(o, "chatgw_http_request_duration_seconds_count{%s,", o->process);
        route_label(o, m, i);
        put(o, "} %llu\n", (unsigned long long)total);
    }
}

static void render_runs(struct out *o, struct metrics *m, const struct metrics_gauges *g)
{
    head(o, "chatgw_runs_started_total", "counter",
         "Runs started by this process's sends (counted where the send was accepted), by "
         "provider.");
    for (int p = 0; p < PROVIDER__COUNT; p++)
        put(o, "chatgw_runs_started_total{%s,provider=\"%s\"} %llu\n", o->process, provider_name(p),
            (unsigned long long)get(&m->runs_started[p]));
    head(o, "chatgw_runs_ended_here_total", "counter",
         "Runs this process ended itself: spawn_failed (its send could not start the runner) "
         "and runner_lost (its reaper completed a run whose lease lapsed; provider "
         "\"unknown\"). Runs that end normally are ended by their runner.");
    for (int p = 0; p < PROVIDER__COUNT; p++)
        put(o, "chatgw_runs_ended_here_total{%s,provider=\"%s\",reason=\"spawn_failed\"} %llu\n",
            o->process, provider_name(p), (unsigned long long)get(&m->runs_spawn_failed[p]));
    put(o, "chatgw_runs_ended_here_total{%s,provider=\"unknown\",reason=\"runner_lost\"} %llu\n",
        o->process, (unsigned long long)get(&m->runs_reaped));
    if (g->runs_running >= 0) {
        head(o, "chatgw_runs_running", "gauge",
             "Sessions in Redis's set of running runs (all processes; absent when Redis is "
             "down).");
        put(o, "chatgw_runs_running{%s} %lld\n", o->process, (long long)g->runs_running);
    }
}

static void render_rest(struct out *o, struct metrics *m, const struct metrics_gauges *g)
{
    head(o, "chatgw_polls_held", "gauge", "Requests held by this process's poller now.");
    put(o, "chatgw_polls_held{%s} %lld\n", o->process, (long long)g->polls_held);
    head(o, "chatgw_polls_parked_total", "counter", "Requests this process's poller has held.");
    put(o, "chatgw_polls_parked_total{%s} %llu\n", o->process, (unsigned long long)g->polls_total);
    head(o, "chatgw_subscribe_frames_total", "counter",
         "Frames (acks and events) delivered in subscribe answers.");
    put(o, "chatgw_subscribe_frames_total{%s} %llu\n", o->process,
        (unsigned long long)get(&m->frames));
    head(o, "chatgw_permission_answers_total", "counter",
         "Answers to permission requests, by outcome.");
    for (int i = 0; i < PERM__N; i++)
        put(o, "chatgw_permission_answers_total{%s,outcome=\"%s\"} %llu\n", o->process,
            perm_names[i], (unsigned long long)get(&m->perms[i]));
    head(o, "chatgw_backend_connect_errors_total", "counter",
         "Connections to Redis or the store a worker could not open (the request got 503).");
    for (int i = 0; i < METRICS__BACKENDS; i++)
        put(o, "chatgw_backend_connect_errors_total{%s,backend=\"%s\"} %llu\n", o->process,
            backend_names[i], (unsigned long long)get(&m->backend[i]));
    head(o, "chatgw_reaper_rounds_total", "counter", "Rounds of this process's reaper, by result.");
    uint64_t rounds = get(&m->reaper_rounds), failed = get(&m->reaper_failed);
    put(o, "chatgw_reaper_rounds_total{%s,result=\"ok\"} %llu\n", o->process,
        (unsigned long long)(rounds > failed ? rounds - failed : 0));
    put(o, "chatgw_reaper_rounds_total{%s,result=\"backend_error\"} %llu\n", o->process,
        (unsigned long long)failed);
    static const char *const caches[METRICS__CACHES] = {"session", "token", "owner"};
    head(o, "chatgw_cache_lookups_total", "counter",
         "Lookups in the process's copies: session (Redis state of a polled session), token "
         "(passed token checks), owner (session owners), by result.");
    for (int i = 0; i < METRICS__CACHES; i++)
        put(o,
            "chatgw_cache_lookups_total{%s,cache=\"%s\",result=\"hit\"} %llu\n"
            "chatgw_cache_lookups_total{%s,cache=\"%s\",result=\"miss\"} %llu\n",
            o->process, caches[i], (unsigned long long)g->cache_hits[i], o->process, caches[i],
            (unsigned long long)g->cache_misses[i]);
    head(o, "chatgw_reaper_feed_republished_total", "counter",
         "Session-feed frames the reaper published after Redis had refused them.");
    put(o, "chatgw_reaper_feed_republished_total{%s} %llu\n", o->process,
        (unsigned long long)get(&m->reaper_republished));
}

char *metrics_render(struct metrics *m, const struct metrics_gauges *g)
{
    struct out o = {.cap = 8192};
    if (!(o.buf = malloc(o.cap)))
        return NULL;
    o.buf[0] = '\0';
    snprintf(o.process, sizeof o.process, "process=\"%ld\"", (long)getpid());
    render_requests(&o, m);
    render_runs(&o, m, g);
    render_rest(&o, m, g);
    if (o.failed) {
        free(o.buf);
        return NULL;
    }
    return o.buf;
}
