/* alloc_bus.c: every allocation of the bus fails in turn against a real redis-server:
 * connecting, then a whole run (claim, publish, read, feed, control, permissions,
 * complete) on an open connection, which must go on working after every failure.
 * hiredis 0.14 has no allocator hooks: its own allocations (replies, the reader, the
 * context) never fail here; the bus's copies and Jansson's do. */
#include "core/bus.h"
#include "core/log.h"
#include "failalloc.h"
#include "tap.h"
#include "testenv.h"

struct fixture {
    struct bus_config cfg;
    struct bus *b;
    long round; /* makes the session of each run new */
};

static int open_scenario(struct fa_log *log, void *arg)
{
    const struct fixture *fx = arg;
    struct cgw_error err = {0};
    struct bus *b = NULL;
    enum cgw_err rc = bus_open(&fx->cfg, false, &b, &err);

    if (rc == CGW_OK)
        rc = bus_ping(b, &err);
    fa_logf(log, "open %s", cgw_err_name(rc));
    bus_close(b);
    return rc;
}

static void log_read(struct fa_log *log, const char *what, const struct bus_read *r)
{
    fa_logf(log, "%s: %zu events, status %s, truncated %d, more %d", what, r->n,
            run_status_name(r->status), r->truncated, r->more);
    for (size_t i = 0; i < r->n; i++)
        fa_logf(log, "  %lld %s", (long long)r->events[i].seq, r->events[i].json);
}

static int run_scenario(struct fa_log *log, void *arg)
{
    struct fixture *fx = arg;
    struct bus *b = fx->b;
    struct cgw_error err = {0};
    char sid[CGW_UUID_LEN + 1], running[CGW_ID_MAX] = "", perm_sid[CGW_UUID_LEN + 1];
    const char *ids[2] = {"ev_2", "ev_3"};
    const char *jsons[2] = {"{\"kind\":\"text\",\"content\":\"a\"}",
                            "{\"kind\":\"text\",\"content\":\"b\"}"};
    struct bus_claim claim = {0};
    struct bus_run run;
    struct bus_read rd = {0}, feed = {0};
    char *request = NULL, *ctl = NULL, **perms = NULL, **live = NULL;
    size_t n_perms = 0, n_live = 0;
    int64_t seq = 0, last = 0, feed_seq = 0;
    int64_t user = 1000000 + fx->round;
    enum cgw_err rc = CGW_OK;
    bool listed = false;

    /* Runs that an earlier failure left running would lengthen bus_runs_running's
     * answer, and with it the number of allocations, every round: complete them. */
    failalloc_hold();
    if (bus_runs_running(b, &live, &n_live, &err) == CGW_OK)
        for (size_t i = 0; i < n_live; i++)
            (void)bus_run_complete(b, live[i], "run_1", "ev_9", "{\"kind\":\"complete\"}", false,
                                   &seq, &err);
    bus_strings_free(live, n_live);
    live = NULL;
    n_live = 0;
    failalloc_release();

    fx->round++;
    snprintf(sid, sizeof sid, "2b1f0d6e-1111-4222-8333-%012ld", fx->round % 1000000);
    claim.session_id = sid;
    claim.run_id = "run_1";
    claim.provider = "claude";
    claim.owner = 3;
    claim.request_json = "{\"content\":\"hi\"}";
    claim.lease_ms = 60000;

    TRY(bus_run_claim(b, &claim, &last, running, &err));
    fa_logf(log, "claimed at %lld", (long long)last);
    TRY(bus_run_set_runner(b, sid, "run_1", "host", 42, &err));
    TRY(bus_run_get(b, sid, &run, &request, &err));
    fa_logf(log, "run %s %s %s %lld %s", run.run_id, run_status_name(run.status), run.provider,
            (long long)run.runner_pid, request ? request : "-");
    TRY(bus_event_publish(b, sid, "run_1", "ev_1", "{\"kind\":\"run_started\"}", &seq, &err));
    TRY(bus_events_publish(b, sid, "run_1", 2, ids, jsons, &last, &err));
    fa_logf(log, "published %lld %lld", (long long)seq, (long long)last);
    TRY(bus_lease_refresh(b, sid, "run_1", 60000, &err));
    TRY(bus_seq_get(b, sid, &seq, &err));
    TRY(bus_events_read(b, sid, 0, 10, 1 << 20, &rd, &err));
    log_read(log, "read", &rd);
    TRY(bus_runs_running(b, &live, &n_live, &err));
    for (size_t i = 0; i < n_live; i++)
        listed |= strcmp(live[i], sid) == 0;
    fa_logf(log, "seq %lld, running listed %d", (long long)seq, listed);

    TRY(bus_feed_publish(b, user, "{\"kind\":\"session_upserted\"}", &feed_seq, &err));
    TRY(bus_feed_read(b, user, 0, 10, 1 << 20, &feed, &err));
    log_read(log, "feed", &feed);

    TRY(bus_ctl_push(b, sid, "{\"type\":\"abort\"}", &err));
    TRY(bus_ctl_pop(b, sid, 0, &ctl, &err));
    fa_logf(log, "ctl %s", ctl ? ctl : "-");

    TRY(bus_perm_add(b, sid, "run_1", "perm_1", "{\"toolName\":\"Bash\"}", &err));
    TRY(bus_perm_add(b, sid, "run_1", "perm_2", "{\"toolName\":\"Read\"}", &err));
    TRY(bus_perm_session(b, "perm_1", perm_sid, &err));
    TRY(bus_perm_list(b, sid, &perms, &n_perms, &err));
    fa_logf(log, "perms %d %zu %s", strcmp(perm_sid, sid) == 0, n_perms, n_perms ? perms[0] : "-");
    TRY(bus_perm_resolve(b, sid, "perm_1", true, "{\"allow\":true}", &err));
    TRY(bus_perm_cancel(b, sid, "perm_2", &err));

    TRY(bus_run_complete(b, sid, "run_1", "ev_9", "{\"kind\":\"complete\"}", false, &seq, &err));
    fa_logf(log, "completed at %lld", (long long)seq);
out:
    free(request);
    free(ctl);
    bus_read_free(&rd);
    bus_read_free(&feed);
    bus_strings_free(perms, n_perms);
    bus_strings_free(live, n_live);
    return rc;
}

int main(void)
{
    static struct fixture fx;
    static struct test_redis redis;
    struct cgw_error err = {0};
    char dir[512];

    failalloc_init();
    log_init("alloc", LOG_LEVEL_ERROR);
    if (!testenv_redis_binary())
        skip_all("no redis-server");
    plan(2);
    if (testenv_tmpdir("alloc-bus", dir, sizeof dir) < 0 ||
        testenv_redis_start(&redis, dir, false) < 0)
        BAIL_OUT("cannot start redis-server");
    fx.cfg.address = redis.address;
    fx.cfg.timeout_ms = 5000;
    fx.cfg.stream_maxlen = 1000;
    fx.cfg.stream_ttl_s = 600;

    failalloc_test("bus open", open_scenario, &fx);
    if (bus_open(&fx.cfg, false, &fx.b, &err) != CGW_OK)
        BAIL_OUT("bus_open: %s", err.text);
    failalloc_test("bus run", run_scenario, &fx);
    bus_close(fx.b);

    testenv_redis_stop(&redis);
    testenv_rmtree(dir);
    return done_testing();
}
