/* bench-pub.c: make bench's publisher straight into the bus (no runner, no SQLite).
 *
 *   bench-pub -c CONFIG rate RATE SECS SESSION...   claim every session, then publish
 *        RATE text events per second round-robin over them for SECS seconds
 *   bench-pub -c CONFIG burst COUNT SESSION         claim, publish COUNT events back to
 *        back: the bus's own events/s for one publisher
 *
 * Every event is a `text` whose content is "bench:<CLOCK_REALTIME microseconds just
 * before the publish>", so the load client can time delivery. Prints one JSON object:
 * what was published, the final seq of each session and the publish call's own times. */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "core/bus.h"
#include "core/config.h"
#include "core/event.h"
#include "core/util.h"

extern char **environ;

struct sess {
    const char *id;
    char run[CGW_ID_MAX];
    int64_t seq;
};

static int64_t now_us(clockid_t clk)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static int claim(struct bus *b, struct sess *s)
{
    struct cgw_error err;
    char running[CGW_ID_MAX];
    int64_t last = 0;
    cgw_id_new("run", s->run, sizeof s->run);
    struct bus_claim c = {.session_id = s->id,
                          .run_id = s->run,
                          .provider = "claude",
                          .owner = 1,
                          .request_json = "{}",
                          .hwm_seq = 0,
                          .lease_ms = 3600000};
    if (bus_run_claim(b, &c, &last, running, &err) != CGW_OK) {
        fprintf(stderr, "bench-pub: claim %s: %s\n", s->id, err.text);
        return -1;
    }
    s->seq = last;
    return 0;
}

/* Publishes one timed text event; returns the call's duration in microseconds or -1. */
static int64_t publish(struct bus *b, struct sess *s, int64_t i)
{
    struct cgw_error err;
    struct event_ctx ctx = {.session_id = s->id, .run_id = s->run, .provider = "claude"};
    char text[64];
    int64_t t0 = now_us(CLOCK_MONOTONIC);
    snprintf(text, sizeof text, "bench:%" PRId64, now_us(CLOCK_REALTIME));
    json_t *ev = event_new_text(&ctx, "assistant", text);
    json_object_set_new(ev, "i", json_integer(i));
    char *json = event_encode(ev);
    int64_t seq;
    enum cgw_err rc = bus_event_publish(b, s->id, s->run, event_id(ev), json, &seq, &err);
    free(json);
    json_decref(ev);
    if (rc != CGW_OK) {
        fprintf(stderr, "bench-pub: publish %s: %s\n", s->id, err.text);
        return -1;
    }
    s->seq = seq;
    return now_us(CLOCK_MONOTONIC) - t0;
}

static void print_result(const char *mode, struct sess *ss, int n, int64_t count, int64_t us,
                         int64_t *dur, int64_t n_dur)
{
    json_t *o = json_object(), *fin = json_object();
    for (int i = 0; i < n; i++)
        json_object_set_new(fin, ss[i].id, json_integer(ss[i].seq));
    qsort(dur, (size_t)n_dur, sizeof *dur, cmp64);
    json_object_set_new(o, "mode", json_string(mode));
    json_object_set_new(o, "published", json_integer(count));
    json_object_set_new(o, "seconds", json_real((double)us / 1e6));
    json_object_set_new(o, "events_per_s", json_real(us > 0 ? (double)count * 1e6 / us : 0));
    if (n_dur > 0) {
        json_object_set_new(o, "publish_us_p50", json_integer(dur[n_dur / 2]));
        json_object_set_new(o, "publish_us_p99", json_integer(dur[n_dur * 99 / 100]));
        json_object_set_new(o, "publish_us_max", json_integer(dur[n_dur - 1]));
    }
    json_object_set_new(o, "final", fin);
    char *s = json_dumps(o, JSON_COMPACT);
    puts(s);
    free(s);
    json_decref(o);
}

int main(int argc, char **argv)
{
    struct config cfg;
    struct cgw_error err;
    const char *config_path = NULL;

    if (argc >= 3 && strcmp(argv[1], "-c") == 0) {
        config_path = argv[2];
        argc -= 2;
        argv += 2;
    }
    if (argc < 4 || (strcmp(argv[1], "rate") == 0 && argc < 5)) {
        fprintf(stderr, "usage: bench-pub [-c CONFIG] rate RATE SECS SESSION... | "
                        "burst COUNT SESSION\n");
        return 2;
    }
    if (config_load(&cfg, config_path, environ, &err) != CGW_OK) {
        fprintf(stderr, "bench-pub: %s\n", err.text);
        return 1;
    }
    struct bus_config bc;
    bus_config_from(&cfg, &bc); /* redis.sentinels too */
    struct bus *b;
    signal(SIGPIPE, SIG_IGN); /* as chatgw-runner: no signal mask around each command */
    bus_sigpipe_ignored();
    if (bus_open(&bc, false, &b, &err) != CGW_OK) {
        fprintf(stderr, "bench-pub: %s\n", err.text);
        return 1;
    }
    bool burst = strcmp(argv[1], "burst") == 0;
    int first = burst ? 3 : 4, n = argc - first;
    struct sess *ss = calloc((size_t)n, sizeof *ss);
    for (int i = 0; i < n; i++) {
        ss[i].id = argv[first + i];
        if (claim(b, &ss[i]) < 0)
            return 1;
    }
    int64_t count = burst ? atoll(argv[2]) : (int64_t)(atof(argv[2]) * atof(argv[3]));
    double rate = burst ? 0 : atof(argv[2]);
    int64_t *dur = calloc((size_t)count + 1, sizeof *dur), n_dur = 0;
    int64_t t0 = now_us(CLOCK_MONOTONIC);
    for (int64_t i = 0; i < count; i++) {
        if (rate > 0) {
            int64_t due = t0 + (int64_t)((double)i * 1e6 / rate);
            struct timespec ts = {(time_t)(due / 1000000), (long)(due % 1000000) * 1000};
            while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) != 0)
                ;
        }
        int64_t d = publish(b, &ss[i % n], i);
        if (d < 0)
            return 1;
        dur[n_dur++] = d;
    }
    print_result(burst ? "burst" : "rate", ss, n, count, now_us(CLOCK_MONOTONIC) - t0, dur, n_dur);
    free(dur);
    free(ss);
    bus_close(b);
    config_free(&cfg);
    return 0;
}
