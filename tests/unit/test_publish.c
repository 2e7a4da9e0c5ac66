/* test_publish.c: core/publish.c and core/run_start.c against a private redis-server
 * and a SQLite file: the seq splice is the bus's byte for byte, history holds what the
 * stream holds, and a send's sequence (claim, run_started, prompt, spawn, spawn
 * failure) with its limit and conflict errors. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"
#include "core/event.h"
#include "core/publish.h"
#include "core/run_start.h"
#include "tap.h"
#include "testenv.h"

static struct test_redis R;
static char tmp[512];
static struct store *st;
static struct bus *bus;
static int64_t owner;

static void test_splice(void)
{
    char *s = publish_with_seq("{\"kind\":\"text\"}", 42);
    is_str(s, "{\"kind\":\"text\",\"seq\":42}", "seq spliced before the final brace");
    free(s);
    ok(publish_with_seq("[1]", 1) == NULL, "not an object: NULL");
    ok(publish_with_seq("", 1) == NULL, "empty: NULL");
}

static void test_bus_config_from(void)
{
    struct config cfg;
    struct bus_config bc;
    struct cgw_error err;
    if (config_defaults(&cfg, &err) != CGW_OK)
        BAIL_OUT("config_defaults: %s", err.text);
    cfg.redis_db = 3;
    cfg.stream_ttl_s = 77;
    bus_config_from(&cfg, &bc);
    ok(bc.address == cfg.redis_address && bc.password == cfg.redis_password,
       "bus_config_from: address and password borrowed from the config");
    ok(bc.db == 3 && bc.timeout_ms == cfg.redis_timeout_ms &&
           bc.stream_maxlen == cfg.stream_maxlen && bc.stream_ttl_s == 77,
       "bus_config_from: db, timeout, stream limits");
    config_free(&cfg);
}

static void session_new(struct store_session *s)
{
    struct cgw_error err;
    memset(s, 0, sizeof *s);
    if (cgw_uuid_v4(s->id) < 0)
        BAIL_OUT("uuid");
    s->owner = owner;
    snprintf(s->provider, sizeof s->provider, "claude");
    s->project_path = tmp;
    s->name = (char *)"";
    if (store_session_create(st, s, &err) != CGW_OK)
        BAIL_OUT("store_session_create: %s", err.text);
}

/* The stored history of sid equals its live stream, event by event. */
static void same_history(const char *sid, size_t want, const char *what)
{
    struct bus_read rd;
    struct store_message *msgs = NULL;
    size_t n = 0;
    bool more;
    struct cgw_error err;
    ok(bus_events_read(bus, sid, 0, 100, 0, &rd, &err) == CGW_OK, "%s: stream read", what);
    ok(store_message_list(st, sid, 0, 0, 100, &msgs, &n, &more, &err) == CGW_OK, "%s: history read",
       what);
    is_int(rd.n, want, "%s: %zu events in the stream", what, want);
    is_int(n, want, "%s: %zu in the history", what, want);
    for (size_t i = 0; i < n && i < rd.n; i++)
        is_str(msgs[i].json, rd.events[i].json, "%s: event %zu byte-identical", what, i);
    store_message_list_free(msgs, n);
    bus_read_free(&rd);
}

static int spawn_ok(void *ctx, const char *sid, const char *run_id, char *why, size_t size)
{
    (*(int *)ctx)++;
    return 0;
}

static int spawn_fails(void *ctx, const char *sid, const char *run_id, char *why, size_t size)
{
    snprintf(why, size, "no such runner");
    return -1;
}

static void test_run_start(void)
{
    struct store_session s;
    struct run_start_res res;
    struct cgw_error err;
    int spawned = 0;
    json_t *options = json_object();
    session_new(&s);
    struct run_start_req req = {
        .session = &s,
        .content = "hello",
        .options = options,
        .max_runs = 1,
        .lease_ms = 60000,
        .spawn = spawn_ok,
        .spawn_ctx = &spawned,
    };
    ok(run_start(st, bus, &req, &res, &err) == CGW_OK, "run_start");
    is_int(spawned, 1, "the runner was started once");
    ok(!res.spawn_failed, "no spawn failure");
    is_int(res.last_seq, 0, "last_seq: nothing before the run");
    ok(strncmp(res.run_id, "run_", 4) == 0, "a run id");
    same_history(s.id, 2, "run_started and the prompt");

    struct run_start_res again;
    ok(run_start(st, bus, &req, &again, &err) == CGW_ERR_LIMIT, "the owner's limit: LIMIT");
    req.max_runs = 5;
    ok(run_start(st, bus, &req, &again, &err) == CGW_ERR_CONFLICT, "a second run: CONFLICT");
    is_str(err.text, "session already has a run in progress", "the client's text");
    is_int(spawned, 1, "no runner for refused sends");

    struct store_session s2;
    session_new(&s2);
    req.session = &s2;
    req.spawn = spawn_fails;
    ok(run_start(st, bus, &req, &res, &err) == CGW_OK, "a failed spawn is still a run");
    ok(res.spawn_failed, "spawn_failed");
    same_history(s2.id, 4, "run_started, prompt, error, complete");
    struct bus_run run;
    ok(bus_run_get(bus, s2.id, &run, NULL, &err) == CGW_OK && run.status == RUN_COMPLETED,
       "the run has ended");
    json_decref(options);
}

static void test_publish_persist(void)
{
    struct store_session s;
    struct cgw_error err;
    int spawned = 0;
    struct run_start_res res;
    json_t *options = json_object();
    session_new(&s);
    struct run_start_req req = {&s, "x", options, 10, 60000, spawn_ok, &spawned, NULL};
    if (run_start(st, bus, &req, &res, &err) != CGW_OK)
        BAIL_OUT("run_start: %s", err.text);
    struct event_ctx ctx = {s.id, res.run_id, s.provider};
    int64_t seq = 0;
    json_t *ev = event_new_error(&ctx, "an error");
    ok(publish_persist(st, bus, s.id, res.run_id, ev, PUBLISH_EVENT, &seq, &err) == CGW_OK,
       "publish_persist");
    is_int(seq, 3, "its seq");
    json_decref(ev);
    json_t *done = event_new_complete(&ctx, 0, false, REASON_NONE);
    ok(publish_persist(st, bus, s.id, res.run_id, done, PUBLISH_REAP, &seq, &err) ==
           CGW_ERR_CONFLICT,
       "reap mode while the lease lives: CONFLICT");
    seq = 0;
    ok(publish_persist(st, bus, s.id, res.run_id, done, PUBLISH_COMPLETE, &seq, &err) == CGW_OK,
       "complete");
    is_int(seq, 4, "the complete's seq");
    seq = 0;
    ok(publish_persist(st, bus, s.id, "run_other", done, PUBLISH_EVENT, &seq, &err) ==
           CGW_ERR_STALE,
       "another run: STALE");
    is_int(seq, 0, "nothing published: *seq untouched");
    json_decref(done);
    same_history(s.id, 4, "publish_persist");
    json_decref(options);
}

int main(void)
{
    char dir[600], db[600];
    struct cgw_error err;
    int version;

    if (!testenv_redis_binary())
        skip_all("redis-server not installed");
    plan_lazy();
    signal(SIGPIPE, SIG_IGN);
    test_splice();
    test_bus_config_from();
    if (testenv_tmpdir("publish", tmp, sizeof tmp) != 0)
        BAIL_OUT("tmpdir");
    snprintf(dir, sizeof dir, "%s/redis", tmp);
    snprintf(db, sizeof db, "%s/db.sqlite", tmp);
    if (testenv_redis_start(&R, dir, false) != 0)
        BAIL_OUT("cannot start redis-server");
    struct bus_config bc = {.address = R.address, .timeout_ms = 5000, .stream_maxlen = 1000};
    if (bus_open(&bc, false, &bus, &err) != CGW_OK)
        BAIL_OUT("bus_open: %s", err.text);
    if (store_open(db, true, 5000, &st, &err) != CGW_OK ||
        store_migrate(st, &version, &err) != CGW_OK ||
        store_user_add(st, "alice", &owner, &err) != CGW_OK)
        BAIL_OUT("store: %s", err.text);
    test_run_start();
    test_publish_persist();
    bus_close(bus);
    store_close(st);
    testenv_redis_stop(&R);
    testenv_rmtree(tmp);
    return done_testing();
}
