/* test_bus_claim.c: the per-user limit of running runs, counted and claimed in one script
 * (claim.lua over cgw:{u:U}:running), against a private redis-server. */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "core/bus.h"
#include "core/util.h"
#include "tap.h"
#include "testenv.h"

static struct test_redis R;
static char tmp[512];

static struct bus *open_bus(void)
{
    struct bus_config c = {
        .address = R.address,
        .timeout_ms = 5000,
        .stream_maxlen = 1000,
        .stream_ttl_s = 600,
    };
    struct bus *b = NULL;
    struct cgw_error e;
    if (bus_open(&c, false, &b, &e) != CGW_OK)
        BAIL_OUT("bus_open %s: %s", c.address, e.text);
    return b;
}

/* A raw command, outside the module under test; the integer answer or -999. */
struct sess {
    char sid[CGW_UUID_LEN + 1];
    char rid[CGW_ID_MAX];
};

static void fresh(struct sess *s)
{
    if (cgw_uuid_v4(s->sid) != 0 || cgw_id_new("run", s->rid, CGW_ID_MAX) != 0)
        BAIL_OUT("no ids");
}

static enum cgw_err claim(struct bus *b, const struct sess *s, int64_t owner, int64_t limit,
                          int64_t *last_seq, struct cgw_error *e)
{
    struct bus_claim c = {
        .session_id = s->sid,
        .run_id = s->rid,
        .provider = "claude",
        .owner = owner,
        .request_json = "{}",
        .lease_ms = 60000,
        .max_running = limit,
    };
    int64_t dummy;
    return bus_run_claim(b, &c, last_seq ? last_seq : &dummy, NULL, e);
}

static enum cgw_err complete(struct bus *b, const struct sess *s, bool reap)
{
    struct cgw_error e;
    char evid[CGW_ID_MAX + 8];
    snprintf(evid, sizeof evid, "c-%s", s->rid);
    return bus_run_complete(b, s->sid, s->rid, evid, "{\"kind\":\"complete\"}", reap, NULL, &e);
}

static bool has_run(struct bus *b, const struct sess *s)
{
    struct bus_run run;
    struct cgw_error e;
    return bus_run_get(b, s->sid, &run, NULL, &e) == CGW_OK;
}

static void test_limit(void)
{
    struct bus *b = open_bus();
    struct sess s[4];
    struct cgw_error e;
    int64_t seq = -1, seq2 = -1;
    const int64_t u = 11;

    for (int i = 0; i < 4; i++)
        fresh(&s[i]);
    is_int(claim(b, &s[0], u, 2, NULL, &e), CGW_OK, "first run of the user");
    is_int(claim(b, &s[1], u, 2, &seq, &e), CGW_OK, "second run: at the limit of 2");
    is_int(claim(b, &s[2], u, 2, NULL, &e), CGW_ERR_LIMIT, "third run: LIMIT");
    is_str(e.text, "you have 2 runs running; the limit is 2", "the text counts the runs");
    ok(!has_run(b, &s[2]), "nothing was claimed for the refused session");
    is_int(testenv_redis_int(&R, "SISMEMBER cgw:{u:%lld}:running %s", (long long)u, s[2].sid), 0,
           "the refused session is not in the user's set");
    is_int(claim(b, &s[1], u, 2, &seq2, &e), CGW_OK, "the same claim again at the limit: OK");
    is_int(seq2, seq, "the same claim again: the same last_seq");

    /* The limit is checked first, as the send handler always answered. */
    struct sess other = s[1];
    if (cgw_id_new("run", other.rid, CGW_ID_MAX) != 0)
        BAIL_OUT("no run id");
    is_int(claim(b, &other, u, 2, NULL, &e), CGW_ERR_LIMIT,
           "a running session at the limit: LIMIT");
    is_int(claim(b, &other, u, 3, NULL, &e), CGW_ERR_CONFLICT,
           "a running session below the limit: CONFLICT");

    /* Other users are counted apart. */
    struct sess v;
    fresh(&v);
    is_int(claim(b, &v, 12, 1, NULL, &e), CGW_OK, "another user claims under its own limit");

    /* A completed run no longer counts. */
    is_int(complete(b, &s[0], false), CGW_OK, "complete the first run");
    is_int(testenv_redis_int(&R, "SISMEMBER cgw:{u:%lld}:running %s", (long long)u, s[0].sid), 0,
           "the complete dropped the session from the user's set");
    is_int(claim(b, &s[2], u, 2, NULL, &e), CGW_OK, "after a complete the third run claims");
    is_int(claim(b, &s[3], u, 2, NULL, &e), CGW_ERR_LIMIT, "at the limit again");

    /* A reaped run (lease gone, runner_lost) no longer counts. */
    is_int(testenv_redis_int(&R, "DEL cgw:{%s}:lease", s[1].sid), 1, "the lease of run 2 is gone");
    is_int(complete(b, &s[1], true), CGW_OK, "the reaper completes run 2");
    is_int(testenv_redis_int(&R, "SISMEMBER cgw:{u:%lld}:running %s", (long long)u, s[1].sid), 0,
           "the reap dropped the session from the user's set");
    is_int(claim(b, &s[3], u, 2, NULL, &e), CGW_OK, "after a reap the fourth run claims");

    /* A run whose hash expired (or was lost with Redis data) no longer counts. */
    struct sess w;
    fresh(&w);
    is_int(claim(b, &w, u, 2, NULL, &e), CGW_ERR_LIMIT, "at the limit once more");
    is_int(testenv_redis_int(&R, "DEL cgw:{%s}:run", s[2].sid), 1, "the run hash of run 3 expires");
    is_int(claim(b, &w, u, 2, NULL, &e), CGW_OK, "after the expiry the next run claims");
    is_int(testenv_redis_int(&R, "SCARD cgw:{u:%lld}:running", (long long)u), 2,
           "the set holds the two running sessions");

    /* No limit: claims are not counted against anything, the set still follows. */
    struct sess x;
    fresh(&x);
    is_int(claim(b, &x, u, 0, NULL, &e), CGW_OK, "limit 0: no limit");
    bus_close(b);
}

/* More members than fit the module's fixed argument array: all declared anyway. */
#define MANY 45
static void test_many(void)
{
    struct bus *b = open_bus();
    struct sess s;
    struct cgw_error e;
    const int64_t u = 21;
    int okc = 0;

    for (int i = 0; i < MANY; i++) {
        fresh(&s);
        okc += claim(b, &s, u, MANY, NULL, &e) == CGW_OK;
    }
    is_int(okc, MANY, "%d runs claimed under a limit of %d", MANY, MANY);
    fresh(&s);
    is_int(claim(b, &s, u, MANY, NULL, &e), CGW_ERR_LIMIT, "run %d: LIMIT", MANY + 1);
    ok(strstr(e.text, "you have 45 runs") != NULL, "counted all 45 (%s)", e.text);
    bus_close(b);
}

/* Many processes of one user claim different sessions at once: exactly the limit wins. */
#define CLAIMERS 12
#define RACE_LIMIT 5
static struct sess race[CLAIMERS];

static void test_race(void)
{
    int ready[2], go[2], wins = 0, limits = 0;
    pid_t pids[CLAIMERS];

    for (int i = 0; i < CLAIMERS; i++)
        fresh(&race[i]);
    if (pipe(ready) != 0 || pipe(go) != 0)
        BAIL_OUT("pipe");
    for (int i = 0; i < CLAIMERS; i++) {
        pids[i] = fork();
        if (pids[i] < 0)
            BAIL_OUT("fork");
        if (pids[i] == 0) {
            char c = 'r';
            struct cgw_error e;
            close(ready[0]);
            close(go[1]);
            struct bus *b = open_bus(); /* connected: bus_open is not lazy here */
            if (write(ready[1], &c, 1) != 1)
                _exit(3);
            while (read(go[0], &c, 1) < 0 && errno == EINTR)
                ;
            enum cgw_err rc = claim(b, &race[i], 31, RACE_LIMIT, NULL, &e);
            bus_close(b);
            _exit(rc == CGW_OK ? 0 : rc == CGW_ERR_LIMIT ? 1 : 2);
        }
    }
    close(ready[1]);
    close(go[0]);
    /* Every child is connected and waiting: then all start at once. */
    for (int n = 0; n < CLAIMERS;) {
        char c;
        ssize_t r = read(ready[0], &c, 1);
        if (r == 1)
            n++;
        else if (r == 0 || errno != EINTR)
            BAIL_OUT("a claimer died before it was ready");
    }
    close(go[1]);
    for (int i = 0; i < CLAIMERS; i++) {
        int st = 0;
        while (waitpid(pids[i], &st, 0) < 0 && errno == EINTR)
            ;
        int code = WIFEXITED(st) ? WEXITSTATUS(st) : 9;
        wins += code == 0;
        limits += code == 1;
    }
    close(ready[0]);
    is_int(wins, RACE_LIMIT, "%d claims at once: exactly the limit (%d) win", CLAIMERS, RACE_LIMIT);
    is_int(limits, CLAIMERS - RACE_LIMIT, "all others hear LIMIT");
    is_int(testenv_redis_int(&R, "SCARD cgw:{u:31}:running"), RACE_LIMIT,
           "the set holds the winners");
}

/* Seq floors and the restore of a run hash Redis lost (DESIGN §12): a publish hands out
 * max(counter, newest entry, floor) + 1; with the whole session gone the publish is
 * NOT_FOUND, bus_run_restore writes the run back (never over another run), and seqs go
 * on above the floor. */
static void test_floor_restore(void)
{
    struct bus *b = open_bus();
    struct sess s;
    struct cgw_error e;
    int64_t last = 0, seq = 0;
    const char *id = "ev1", *json = "{\"kind\":\"text\"}";

    fresh(&s);
    is_int(claim(b, &s, 41, 0, &last, &e), CGW_OK, "claim");
    struct bus_publish p = {s.sid, s.rid, 1, &id, &json, BUS_PUBLISH_EVENTS, 0};
    is_int(bus_publish(b, &p, &seq, &e), CGW_OK, "publish without a floor");
    is_int(seq, 1, "seq 1");
    id = "ev2";
    p.floor = 40;
    is_int(bus_publish(b, &p, &seq, &e), CGW_OK, "publish with floor 40");
    is_int(seq, 41, "above the floor: 41");
    id = "ev3";
    p.floor = 5;
    is_int(bus_publish(b, &p, &seq, &e), CGW_OK, "a floor below the counter");
    is_int(seq, 42, "the counter wins: 42");

    /* Redis loses everything of the session (a restart without persistence). */
    testenv_redis_int(&R, "DEL cgw:{%s}:run cgw:{%s}:seq cgw:{%s}:events cgw:{%s}:lease", s.sid,
                      s.sid, s.sid, s.sid);
    id = "ev4";
    p.floor = 42;
    is_int(bus_publish(b, &p, &seq, &e), CGW_ERR_NOT_FOUND, "no run hash: NOT_FOUND");
    is_int(bus_lease_refresh(b, s.sid, s.rid, 60000, &e), CGW_ERR_NOT_FOUND,
           "lease refresh: NOT_FOUND");
    struct bus_restore rs = {.session_id = s.sid,
                             .run_id = s.rid,
                             .provider = "claude",
                             .owner = 41,
                             .request_json = "{}",
                             .started_ms = 1,
                             .runner_host = "h",
                             .runner_pid = 7,
                             .floor = 42,
                             .lease_ms = 60000};
    int64_t counter = 0;
    is_int(bus_run_restore(b, &rs, &counter, &e), CGW_OK, "restore");
    is_int(counter, 42, "the counter is the floor");
    is_int(bus_publish(b, &p, &seq, &e), CGW_OK, "publish after the restore");
    is_int(seq, 43, "seq goes on above the floor: 43");
    struct bus_run run;
    is_int(bus_run_get(b, s.sid, &run, NULL, &e), CGW_OK, "run readable");
    ok(run.status == RUN_RUNNING && strcmp(run.run_id, s.rid) == 0 && run.lease_alive &&
           run.owner == 41 && run.runner_pid == 7,
       "restored: running, ours, leased, owner and runner recorded");
    is_int(testenv_redis_int(&R, "SISMEMBER cgw:{u:41}:running %s", s.sid), 1,
           "in the owner's running set again");
    is_int(testenv_redis_int(&R, "SISMEMBER cgw:running %s", s.sid), 1, "in cgw:running again");

    /* Never over a run that is recorded: completed, or another one. */
    is_int(complete(b, &s, false), CGW_OK, "complete");
    is_int(bus_run_restore(b, &rs, &counter, &e), CGW_ERR_STALE, "no restore of a completed run");
    struct sess other = s;
    if (cgw_id_new("run", other.rid, CGW_ID_MAX) != 0)
        BAIL_OUT("no ids");
    is_int(claim(b, &other, 41, 0, &last, &e), CGW_OK, "another run claims");
    is_int(bus_run_restore(b, &rs, &counter, &e), CGW_ERR_STALE, "no restore over another run");
    bus_close(b);
}

int main(void)
{
    char dir[600];

    if (!testenv_redis_binary())
        skip_all("redis-server not installed");
    if (testenv_tmpdir("busclaim", tmp, sizeof(tmp)) != 0)
        BAIL_OUT("tmpdir");
    snprintf(dir, sizeof(dir), "%s/redis", tmp);
    if (testenv_redis_start(&R, dir, false) != 0)
        BAIL_OUT("cannot start redis-server");
    diag("redis-server on %s", R.address);

    test_limit();
    test_many();
    test_race();
    test_floor_restore();

    testenv_redis_stop(&R);
    testenv_rmtree(tmp);
    return done_testing();
}
