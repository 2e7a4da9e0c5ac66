/* test_bus.c: the Redis bus against a private redis-server: runs, seq, reads, permissions. */
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "core/bus.h"
#include "core/util.h"
#include "tap.h"
#include "testenv.h"

static struct test_redis R; /* the main server, no AOF */
static char tmp[512];

static struct bus_config config_for(const struct test_redis *r)
{
    struct bus_config c = {
        .address = r->address,
        .timeout_ms = 5000,
        .stream_maxlen = 100000,
        .stream_ttl_s = 600,
    };
    return c;
}

static struct bus *open_cfg(const struct bus_config *c)
{
    struct bus *b = NULL;
    struct cgw_error e;
    if (bus_open(c, false, &b, &e) != CGW_OK)
        BAIL_OUT("bus_open %s: %s", c->address, e.text);
    return b;
}

static struct bus *open_bus(const struct test_redis *r)
{
    struct bus_config c = config_for(r);
    return open_cfg(&c);
}

/* ---- raw access for checks, outside the module under test ---- */

static redisReply *rcmd(const struct test_redis *r, const char *fmt, ...)
{
    struct timeval tv = {5, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", r->port, tv);
    redisReply *rep = NULL;
    va_list ap;

    if (!c || c->err) {
        if (c)
            redisFree(c);
        return NULL;
    }
    va_start(ap, fmt);
    rep = redisvCommand(c, fmt, ap);
    va_end(ap);
    redisFree(c);
    return rep;
}

/* The integer (or numeric string) reply of a command; -999 on anything else. */
static void rok(const struct test_redis *r, const char *what, const char *fmt, ...)
{
    struct timeval tv = {5, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", r->port, tv);
    redisReply *rep = NULL;
    va_list ap;

    if (c && !c->err) {
        va_start(ap, fmt);
        rep = redisvCommand(c, fmt, ap);
        va_end(ap);
    }
    if (!rep || rep->type == REDIS_REPLY_ERROR)
        BAIL_OUT("redis %s failed: %s", what, rep ? rep->str : "no reply");
    freeReplyObject(rep);
    redisFree(c);
}

/* blocked_clients of INFO clients: connections waiting in BLPOP; -1 on an error. */
static long long blocked_clients(const struct test_redis *r)
{
    redisReply *rep = rcmd(r, "INFO clients");
    long long n = -1;
    const char *p = NULL;
    if (rep && rep->type == REDIS_REPLY_STRING)
        p = strstr(rep->str, "blocked_clients:");
    if (p)
        n = strtoll(p + strlen("blocked_clients:"), NULL, 10);
    if (rep)
        freeReplyObject(rep);
    return n;
}

static bool some_client_blocked(void *r)
{
    return blocked_clients(r) > 0;
}

static bool key_gone(void *key)
{
    return testenv_redis_int(&R, "EXISTS %s", (const char *)key) == 0;
}

/* What a TTL does, without waiting for it: every key of the session that has one
 * expires now (PEXPIRE 1); returns when they are gone. */
static void expire_now(const char *sid)
{
    redisReply *keys = rcmd(&R, "KEYS cgw:{%s}:*", sid);
    if (!keys || keys->type != REDIS_REPLY_ARRAY)
        BAIL_OUT("KEYS cgw:{%s}:*", sid);
    for (size_t i = 0; i < keys->elements; i++) {
        const char *k = keys->element[i]->str;
        if (testenv_redis_int(&R, "PTTL %s", k) > 0) {
            rok(&R, "PEXPIRE", "PEXPIRE %s 1", k);
            if (!testenv_wait(key_gone, (void *)k))
                BAIL_OUT("%s did not expire", k);
        }
    }
    freeReplyObject(keys);
}

static void new_session(char sid[CGW_UUID_LEN + 1])
{
    if (cgw_uuid_v4(sid) != 0)
        BAIL_OUT("no uuid");
}

static void new_run(char rid[CGW_ID_MAX])
{
    if (cgw_id_new("run", rid, CGW_ID_MAX) != 0)
        BAIL_OUT("no run id");
}

static enum cgw_err claim(struct bus *b, const char *sid, const char *rid, int64_t hwm,
                          int64_t lease_ms, int64_t *last_seq, char other[CGW_ID_MAX])
{
    struct bus_claim c = {
        .session_id = sid,
        .run_id = rid,
        .provider = "claude",
        .owner = 7,
        .request_json = "{\"content\":\"hi\"}",
        .hwm_seq = hwm,
        .lease_ms = lease_ms,
    };
    struct cgw_error e;
    int64_t dummy;
    enum cgw_err rc = bus_run_claim(b, &c, last_seq ? last_seq : &dummy, other, &e);
    if (rc != CGW_OK && rc != CGW_ERR_CONFLICT && rc != CGW_ERR_STALE)
        diag("claim: %s", e.text);
    return rc;
}

static enum cgw_err publish(struct bus *b, const char *sid, const char *rid, const char *evid,
                            const char *json, int64_t *seq)
{
    struct cgw_error e;
    enum cgw_err rc = bus_event_publish(b, sid, rid, evid, json, seq, &e);
    if (rc != CGW_OK && rc != CGW_ERR_STALE)
        diag("publish: %s", e.text);
    return rc;
}

static enum cgw_err complete(struct bus *b, const char *sid, const char *rid, const char *evid,
                             bool reap, int64_t *seq)
{
    struct cgw_error e;
    enum cgw_err rc = bus_run_complete(b, sid, rid, evid, "{\"kind\":\"complete\",\"exitCode\":0}",
                                       reap, seq, &e);
    if (rc != CGW_OK && rc != CGW_ERR_STALE && rc != CGW_ERR_CONFLICT)
        diag("complete: %s", e.text);
    return rc;
}

/* Publishes n text events with fresh event ids; returns the last seq or -1. */
static int64_t publish_n(struct bus *b, const char *sid, const char *rid, int n)
{
    int64_t seq = -1;
    for (int i = 0; i < n; i++) {
        char evid[64];
        snprintf(evid, sizeof(evid), "ev-%d-%ld", i, (long)random());
        if (publish(b, sid, rid, evid, "{\"kind\":\"text\",\"text\":\"x\"}", &seq) != CGW_OK)
            return -1;
    }
    return seq;
}

static long long xlen(const struct test_redis *r, const char *sid)
{
    return testenv_redis_int(r, "XLEN cgw:{%s}:events", sid);
}

/* ---- tests ---- */

static void test_basics(void)
{
    struct bus *b = open_bus(&R);
    struct cgw_error e;
    char sid[CGW_UUID_LEN + 1], rid[CGW_ID_MAX], rid2[CGW_ID_MAX], other[CGW_ID_MAX];
    struct bus_run run;
    struct bus_read rd;
    char *req = NULL;
    int64_t last = -1, seq = -1, s2 = -1;

    diag("basics: claim, publish, read, complete");
    new_session(sid);
    new_run(rid);
    new_run(rid2);
    is_int(bus_ping(b, &e), CGW_OK, "ping");
    is_int(bus_run_get(b, sid, &run, NULL, &e), CGW_ERR_NOT_FOUND, "no run yet: NOT_FOUND");

    is_int(claim(b, sid, rid, 0, 60000, &last, other), CGW_OK, "claim");
    is_int(last, 0, "claim: last_seq 0 for a new session");
    is_int(bus_run_get(b, sid, &run, &req, &e), CGW_OK, "run_get");
    is_str(run.run_id, rid, "run_get: run id");
    is_int(run.status, RUN_RUNNING, "run_get: running");
    is_str(run.provider, "claude", "run_get: provider");
    is_int(run.owner, 7, "run_get: owner");
    ok(run.lease_alive, "run_get: lease alive");
    ok(run.started_ms > 0, "run_get: startedMs");
    is_str(req, "{\"content\":\"hi\"}", "run_get: request json");
    free(req);

    is_int(claim(b, sid, rid, 0, 60000, &last, other), CGW_OK, "claim again, same run id: OK");
    is_int(last, 0, "same claim: same last_seq");
    is_int(claim(b, sid, rid2, 0, 60000, &last, other), CGW_ERR_CONFLICT,
           "claim of another run while running: CONFLICT");
    is_str(other, rid, "CONFLICT names the running run");

    is_int(bus_run_set_runner(b, sid, rid, "hostA", 4242, &e), CGW_OK, "set_runner");
    is_int(bus_run_set_runner(b, sid, rid2, "hostB", 1, &e), CGW_ERR_STALE,
           "set_runner of another run: STALE");
    bus_run_get(b, sid, &run, NULL, &e);
    is_str(run.runner_host, "hostA", "runner host");
    is_int(run.runner_pid, 4242, "runner pid");

    is_int(publish(b, sid, rid, "e1", "{\"kind\":\"text\",\"text\":\"a\"}", &seq), CGW_OK,
           "publish 1");
    is_int(seq, 1, "first seq is 1");
    is_int(publish(b, sid, rid, "e2", "{\"kind\":\"text\",\"text\":\"b\"}", &seq), CGW_OK,
           "publish 2");
    is_int(seq, 2, "seq 2");
    is_int(publish(b, sid, rid, "e2", "{\"kind\":\"text\",\"text\":\"b\"}", &s2), CGW_OK,
           "publish e2 again");
    is_int(s2, 2, "same event id: same seq");
    is_int(xlen(&R, sid), 2, "same event id: nothing added");
    is_int(publish(b, sid, rid, "e3", " {\"kind\":\"text\"}\n", &seq), CGW_OK,
           "publish with blanks around the object");
    is_int(seq, 3, "seq 3");
    is_int(bus_event_publish(b, sid, rid, "e4", "{}", &seq, &e), CGW_ERR_INVALID, "{} rejected");
    is_int(bus_event_publish(b, sid, rid, "e4", "{ }", &seq, &e), CGW_ERR_INVALID, "{ } rejected");
    is_int(bus_event_publish(b, sid, rid, "e4", "[1]", &seq, &e), CGW_ERR_INVALID,
           "array rejected");
    is_int(bus_event_publish(b, sid, rid, "e4", "{\"a\":1", &seq, &e), CGW_ERR_INVALID,
           "unterminated object rejected");
    is_int(bus_event_publish(b, "bad{tag}", rid, "e4", "{\"a\":1}", &seq, &e), CGW_ERR_INVALID,
           "session id with braces rejected");
    is_int(xlen(&R, sid), 3, "rejected events added nothing");

    is_int(bus_events_read(b, sid, 0, 100, 0, &rd, &e), CGW_OK, "read all");
    is_int(rd.n, 3, "3 events");
    if (rd.n == 3) {
        is_int(rd.events[0].seq, 1, "event 1 seq");
        is_str(rd.events[0].json, "{\"kind\":\"text\",\"text\":\"a\",\"seq\":1}",
               "event 1 json has seq appended");
        is_str(rd.events[1].json, "{\"kind\":\"text\",\"text\":\"b\",\"seq\":2}", "event 2 json");
        is_str(rd.events[2].json, " {\"kind\":\"text\",\"seq\":3}", "event 3 json");
        is_int(rd.events[2].len, strlen(rd.events[2].json), "event len");
    }
    is_int(rd.last_seq, 3, "read: last_seq");
    is_int(rd.first_seq, 1, "read: first_seq");
    ok(!rd.truncated && !rd.more, "read: not truncated, no more");
    is_int(rd.status, RUN_RUNNING, "read: status running");
    is_str(rd.run_id, rid, "read: run id");
    bus_read_free(&rd);
    is_int(bus_seq_get(b, sid, &seq, &e), CGW_OK, "seq_get");
    is_int(seq, 3, "seq_get: 3");

    is_int(complete(b, sid, rid, "c1", false, &seq), CGW_OK, "complete");
    is_int(seq, 4, "complete has seq 4");
    is_int(complete(b, sid, rid, "c1", false, &s2), CGW_OK, "the same complete again: OK");
    is_int(s2, 4, "the same complete again: same seq");
    is_int(complete(b, sid, rid, "c2", false, &s2), CGW_ERR_STALE, "a second complete: STALE");
    is_int(publish(b, sid, rid, "e9", "{\"kind\":\"text\"}", &s2), CGW_ERR_STALE,
           "publish after complete: STALE");
    is_int(bus_lease_refresh(b, sid, rid, 1000, &e), CGW_ERR_STALE,
           "lease refresh of a completed run: STALE");
    is_int(xlen(&R, sid), 4, "nothing added after complete");
    is_int(testenv_redis_int(&R, "GET cgw:{%s}:seq", sid), 4,
           "counter unchanged after rejected publishes");
    bus_run_get(b, sid, &run, NULL, &e);
    is_int(run.status, RUN_COMPLETED, "run completed");
    ok(!run.lease_alive, "lease deleted by complete");
    ok(run.completed_ms >= run.started_ms && run.completed_ms > 0, "completedMs");
    ok(testenv_redis_int(&R, "TTL cgw:{%s}:events", sid) > 0, "stream expires after complete");
    is_int(testenv_redis_int(&R, "TTL cgw:{%s}:seq", sid), -1, "seq counter never expires");
    is_int(bus_events_read(b, sid, 3, 100, 0, &rd, &e), CGW_OK, "read after 3");
    ok(rd.n == 1 &&
           strcmp(rd.events[0].json, "{\"kind\":\"complete\",\"exitCode\":0,\"seq\":4}") == 0,
       "complete is the last event, with its seq");
    is_int(rd.status, RUN_COMPLETED, "read: status completed");
    bus_read_free(&rd);

    is_int(claim(b, sid, rid, 0, 60000, &last, other), CGW_ERR_STALE,
           "claiming with the completed run id: STALE");
    is_int(claim(b, sid, rid2, 0, 60000, &last, other), CGW_OK, "next run claims");
    is_int(last, 4, "next run: last_seq is the high-water mark");
    is_int(testenv_redis_int(&R, "TTL cgw:{%s}:events", sid), -1,
           "claim made the stream persistent again");
    is_int(publish(b, sid, rid, "e10", "{\"kind\":\"text\"}", &s2), CGW_ERR_STALE,
           "old run publishes into the new run: STALE");
    is_int(publish(b, sid, rid2, "f1", "{\"kind\":\"text\"}", &seq), CGW_OK, "new run publishes");
    is_int(seq, 5, "seq continues across runs");
    is_int(complete(b, sid, rid2, "fc", false, &seq), CGW_OK, "new run completes");
    bus_close(b);
}

/* Fork n children; each says it is ready (a byte on one pipe), waits at a barrier
 * (the other pipe closing), then runs fn(i) and exits with its result. The barrier
 * opens once all n are ready. Fills codes[i]. */
static void run_children(int n, int (*fn)(int), int *codes)
{
    int fds[2], ready[2];
    pid_t pids[64];

    if (pipe(fds) != 0 || pipe(ready) != 0)
        BAIL_OUT("pipe");
    for (int i = 0; i < n; i++) {
        pids[i] = fork();
        if (pids[i] < 0)
            BAIL_OUT("fork");
        if (pids[i] == 0) {
            char c = 'r';
            close(fds[1]);
            close(ready[0]);
            if (write(ready[1], &c, 1) != 1)
                _exit(99);
            close(ready[1]);
            while (read(fds[0], &c, 1) < 0 && errno == EINTR)
                ;
            _exit(fn(i));
        }
    }
    close(fds[0]);
    close(ready[1]);
    for (int got = 0; got < n;) { /* all of them waiting at the barrier */
        char buf[64];
        ssize_t k = read(ready[0], buf, sizeof buf);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            BAIL_OUT("a child died before the barrier");
        got += (int)k;
    }
    close(ready[0]);
    close(fds[1]);
    for (int i = 0; i < n; i++) {
        int st = 0;
        while (waitpid(pids[i], &st, 0) < 0 && errno == EINTR)
            ;
        codes[i] = WIFEXITED(st) ? WEXITSTATUS(st) : 100 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    }
}

#define CLAIMERS 8
static char claim_sid[CGW_UUID_LEN + 1];
static char claim_rids[CLAIMERS][CGW_ID_MAX];

static int claimer(int i)
{
    struct bus *b = open_bus(&R);
    char other[CGW_ID_MAX];
    enum cgw_err rc = claim(b, claim_sid, claim_rids[i], 0, 60000, NULL, other);
    bus_close(b);
    return rc == CGW_OK ? 0 : rc == CGW_ERR_CONFLICT ? 1 : 2;
}

static void test_concurrent_claims(void)
{
    int codes[CLAIMERS], wins = 0, conflicts = 0, winner = -1;
    struct bus *b;
    struct bus_run run;
    struct cgw_error e;

    diag("%d processes claim one session at once", CLAIMERS);
    new_session(claim_sid);
    for (int i = 0; i < CLAIMERS; i++)
        new_run(claim_rids[i]);
    run_children(CLAIMERS, claimer, codes);
    for (int i = 0; i < CLAIMERS; i++) {
        if (codes[i] == 0) {
            wins++;
            winner = i;
        } else if (codes[i] == 1) {
            conflicts++;
        }
    }
    is_int(wins, 1, "exactly one claim wins");
    is_int(conflicts, CLAIMERS - 1, "all others get CONFLICT");
    b = open_bus(&R);
    is_int(bus_run_get(b, claim_sid, &run, NULL, &e), CGW_OK, "run_get after the race");
    if (winner >= 0)
        is_str(run.run_id, claim_rids[winner], "the running run is the winner's");
    bus_close(b);
}

#define PUBLISHERS 4
#define PER_PUBLISHER 500
static char pub_sid[CGW_UUID_LEN + 1], pub_rid[CGW_ID_MAX];

static int publisher(int i)
{
    struct bus *b = open_bus(&R);
    int bad = 0;
    int64_t prev = 0;
    for (int k = 0; k < PER_PUBLISHER; k++) {
        char evid[64], json[96];
        int64_t seq = 0;
        snprintf(evid, sizeof(evid), "p%d-%d", i, k);
        snprintf(json, sizeof(json), "{\"kind\":\"text\",\"text\":\"p%d-%d\"}", i, k);
        if (publish(b, pub_sid, pub_rid, evid, json, &seq) != CGW_OK || seq <= prev)
            bad = 1;
        prev = seq;
    }
    bus_close(b);
    return bad;
}

static void test_gapless(void)
{
    int codes[PUBLISHERS], bad = 0, gaps = 0, jsonbad = 0;
    struct bus *b = open_bus(&R);
    redisReply *rep;
    int64_t seq = 0;

    diag("%d processes publish %d events each into one run", PUBLISHERS, PER_PUBLISHER);
    new_session(pub_sid);
    new_run(pub_rid);
    if (claim(b, pub_sid, pub_rid, 0, 60000, NULL, NULL) != CGW_OK)
        BAIL_OUT("claim");
    /* Children get no copy of our connection (valgrind would count it as theirs). */
    bus_close(b);
    run_children(PUBLISHERS, publisher, codes);
    b = open_bus(&R);
    for (int i = 0; i < PUBLISHERS; i++)
        bad += codes[i] != 0;
    is_int(bad, 0, "every publisher saw OK and increasing seqs");

    rep = rcmd(&R, "XRANGE cgw:{%s}:events - +", pub_sid);
    ok(rep && rep->type == REDIS_REPLY_ARRAY, "XRANGE");
    if (rep && rep->type == REDIS_REPLY_ARRAY) {
        is_int(rep->elements, PUBLISHERS * PER_PUBLISHER, "stream holds every event");
        for (size_t i = 0; i < rep->elements; i++) {
            redisReply *ent = rep->element[i];
            char want_id[32], want_tail[48];
            const char *json = ent->element[1]->element[1]->str;
            snprintf(want_id, sizeof(want_id), "%zu-0", i + 1);
            snprintf(want_tail, sizeof(want_tail), ",\"seq\":%zu}", i + 1);
            if (strcmp(ent->element[0]->str, want_id) != 0)
                gaps++;
            if (strlen(json) < strlen(want_tail) ||
                strcmp(json + strlen(json) - strlen(want_tail), want_tail) != 0)
                jsonbad++;
        }
        is_int(gaps, 0, "entry ids are exactly 1..N: no gap, no duplicate");
        is_int(jsonbad, 0, "each entry's json carries its own seq");
    }
    if (rep)
        freeReplyObject(rep);
    bus_seq_get(b, pub_sid, &seq, NULL);
    is_int(seq, PUBLISHERS * PER_PUBLISHER, "counter is N");
    complete(b, pub_sid, pub_rid, "done", false, NULL);
    bus_close(b);
}

static void test_flushall_hwm(void)
{
    struct bus *b = open_bus(&R);
    char sid[CGW_UUID_LEN + 1], rid[CGW_ID_MAX], rid2[CGW_ID_MAX], rid3[CGW_ID_MAX];
    int64_t last = -1, seq = -1;

    diag("seq after FLUSHALL and after a lost counter");
    new_session(sid);
    new_run(rid);
    new_run(rid2);
    new_run(rid3);
    claim(b, sid, rid, 0, 60000, NULL, NULL);
    is_int(publish_n(b, sid, rid, 5), 5, "5 events");
    complete(b, sid, rid, "c", false, &seq);
    is_int(seq, 6, "complete at 6 (the SQLite high-water mark)");
    rok(&R, "FLUSHALL", "FLUSHALL");
    is_int(claim(b, sid, rid2, 6, 60000, &last, NULL), CGW_OK, "claim after FLUSHALL with hwm 6");
    is_int(last, 6, "counter raised to the high-water mark");
    is_int(publish(b, sid, rid2, "x", "{\"kind\":\"text\"}", &seq), CGW_OK, "publish");
    is_int(seq, 7, "seq continues at 7, not 1");
    publish_n(b, sid, rid2, 2);
    complete(b, sid, rid2, "c2", false, &seq);
    is_int(seq, 10, "complete at 10");
    /* The counter alone lost: the stream's newest entry still bounds it. */
    rok(&R, "DEL", "DEL cgw:{%s}:seq", sid);
    is_int(claim(b, sid, rid3, 0, 60000, &last, NULL), CGW_OK, "claim with the counter gone");
    is_int(last, 10, "counter raised to the newest stream entry");
    is_int(publish(b, sid, rid3, "y", "{\"kind\":\"text\"}", &seq), CGW_OK, "publish");
    is_int(seq, 11, "seq 11");
    complete(b, sid, rid3, "c3", false, NULL);
    bus_close(b);
}

static void test_aof_restart(void)
{
    struct test_redis A;
    char dir[600], sid[CGW_UUID_LEN + 1], rid[CGW_ID_MAX];
    struct bus *b;
    struct bus_read rd;
    struct cgw_error e;
    int64_t seq = -1;
    int gaps = 0;

    diag("Redis killed and restarted with AOF");
    snprintf(dir, sizeof(dir), "%s/aof", tmp);
    if (testenv_redis_start(&A, dir, true) != 0)
        BAIL_OUT("cannot start the AOF redis-server");
    b = open_bus(&A);
    new_session(sid);
    new_run(rid);
    is_int(claim(b, sid, rid, 0, 600000, NULL, NULL), CGW_OK, "claim");
    is_int(publish_n(b, sid, rid, 3), 3, "3 events");
    testenv_redis_kill(&A);
    is_int(publish(b, sid, rid, "down", "{\"kind\":\"text\"}", &seq), CGW_ERR_BACKEND,
           "publish while Redis is dead: BACKEND");
    if (testenv_redis_restart(&A) != 0)
        BAIL_OUT("cannot restart the AOF redis-server");
    is_int(bus_seq_get(b, sid, &seq, &e), CGW_OK, "seq_get after restart (reconnects)");
    is_int(seq, 3, "counter intact");
    is_int(publish(b, sid, rid, "after", "{\"kind\":\"text\"}", &seq), CGW_OK,
           "the running run publishes after the restart");
    is_int(seq, 4, "seq continues at 4");
    is_int(bus_events_read(b, sid, 0, 100, 0, &rd, &e), CGW_OK, "read");
    is_int(rd.n, 4, "stream intact: 4 events");
    for (size_t i = 0; i < rd.n; i++)
        gaps += rd.events[i].seq != (int64_t)i + 1;
    is_int(gaps, 0, "seqs 1..4");
    bus_read_free(&rd);
    is_int(complete(b, sid, rid, "c", false, &seq), CGW_OK, "complete");
    bus_close(b);
    testenv_redis_stop(&A);
}

static void test_read(void)
{
    struct bus *b = open_bus(&R);
    struct bus_config c = config_for(&R);
    struct bus *small, *shortlived;
    char sid[CGW_UUID_LEN + 1], rid[CGW_ID_MAX];
    struct bus_read rd;
    struct cgw_error e;
    int64_t first;
    long long len;

    diag("read: after_seq, max_count, max_bytes, more, truncated");
    new_session(sid);
    new_run(rid);
    claim(b, sid, rid, 0, 60000, NULL, NULL);
    publish_n(b, sid, rid, 10);
    bus_events_read(b, sid, 0, 3, 0, &rd, &e);
    ok(rd.n == 3 && rd.events[0].seq == 1 && rd.events[2].seq == 3, "count 3: seqs 1..3");
    ok(rd.more && !rd.truncated, "more, not truncated");
    is_int(rd.last_seq, 10, "last_seq 10");
    bus_read_free(&rd);
    bus_events_read(b, sid, 8, 5, 0, &rd, &e);
    ok(rd.n == 2 && rd.events[0].seq == 9 && rd.events[1].seq == 10, "after 8: 9 and 10");
    ok(!rd.more, "no more");
    bus_read_free(&rd);
    bus_events_read(b, sid, 10, 5, 0, &rd, &e);
    ok(rd.n == 0 && !rd.more && !rd.truncated, "after the last: nothing, not truncated");
    bus_read_free(&rd);
    bus_events_read(b, sid, 12, 5, 0, &rd, &e);
    ok(rd.n == 0 && !rd.truncated, "after a seq from the future: nothing");
    bus_read_free(&rd);
    bus_events_read(b, sid, 0, 100, 1, &rd, &e);
    ok(rd.n == 1 && rd.more, "1 byte budget: still one event, more");
    bus_read_free(&rd);
    {
        size_t one = strlen("{\"kind\":\"text\",\"text\":\"x\",\"seq\":1}");
        bus_events_read(b, sid, 0, 100, (int64_t)(2 * one + 1), &rd, &e);
        ok(rd.n == 2 && rd.more, "budget of two events: two, more");
        bus_read_free(&rd);
    }
    bus_events_read(b, sid, 0, 0, 0, &rd, &e);
    ok(rd.n == 0 && rd.more && rd.last_seq == 10, "count 0: no events, more, last_seq");
    bus_read_free(&rd);
    is_int(bus_events_read(b, sid, -1, 5, 0, &rd, &e), CGW_ERR_INVALID, "negative after_seq");
    complete(b, sid, rid, "c", false, NULL);

    /* Trimming: small stream nodes so that MAXLEN ~ 10 trims for sure. */
    rok(&R, "CONFIG SET", "CONFIG SET stream-node-max-entries 10");
    c.stream_maxlen = 10;
    small = open_cfg(&c);
    new_session(sid);
    new_run(rid);
    claim(small, sid, rid, 0, 60000, NULL, NULL);
    publish_n(small, sid, rid, 100);
    len = xlen(&R, sid);
    ok(len >= 10 && len <= 20, "stream trimmed to about 10 (%lld)", len);
    bus_events_read(small, sid, 5, 1000, 0, &rd, &e);
    first = rd.first_seq;
    ok(first > 80 && first <= 91, "first_seq %lld", (long long)first);
    ok(rd.truncated, "cursor far below the stream: truncated");
    ok(rd.n > 0 && rd.events[0].seq == first, "replay starts at first_seq");
    is_int(rd.last_seq, 100, "last_seq 100");
    bus_read_free(&rd);
    bus_events_read(small, sid, first - 1, 1000, 0, &rd, &e);
    ok(!rd.truncated && rd.n == (size_t)(100 - first + 1), "cursor right before the stream: whole");
    bus_read_free(&rd);
    bus_events_read(small, sid, first - 2, 1000, 0, &rd, &e);
    ok(rd.truncated, "one event missing: truncated");
    bus_read_free(&rd);
    bus_events_read(small, sid, 100, 1000, 0, &rd, &e);
    ok(!rd.truncated && rd.n == 0, "cursor at the end: not truncated");
    bus_read_free(&rd);
    complete(small, sid, rid, "c", false, NULL);
    bus_close(small);
    rok(&R, "CONFIG SET", "CONFIG SET stream-node-max-entries 100");

    /* The stream expired after the run: every cursor below the counter is a hole. */
    c.stream_maxlen = 1000;
    c.stream_ttl_s = 3600;
    shortlived = open_cfg(&c);
    new_session(sid);
    new_run(rid);
    claim(shortlived, sid, rid, 0, 60000, NULL, NULL);
    publish_n(shortlived, sid, rid, 2);
    complete(shortlived, sid, rid, "c", false, NULL);
    {
        long long ttl = testenv_redis_int(&R, "TTL cgw:{%s}:events", sid);
        ok(ttl > 600 && ttl <= 3600, "the stream expires in stream_ttl_s (%lld s left)", ttl);
    }
    expire_now(sid);
    is_int(xlen(&R, sid), 0, "stream expired");
    bus_events_read(shortlived, sid, 0, 100, 0, &rd, &e);
    ok(rd.n == 0 && rd.first_seq == 0 && rd.last_seq == 3, "expired: no events, last_seq 3");
    ok(rd.truncated, "expired: truncated");
    is_int(rd.status, RUN_NONE, "expired run: status none");
    bus_read_free(&rd);
    bus_events_read(shortlived, sid, 3, 100, 0, &rd, &e);
    ok(!rd.truncated, "expired, cursor at the end: not truncated");
    bus_read_free(&rd);
    bus_close(shortlived);
    bus_close(b);
}

static void test_lease(void)
{
    struct bus *b = open_bus(&R);
    char sid[CGW_UUID_LEN + 1], rid[CGW_ID_MAX];
    struct bus_run run;
    struct cgw_error e;
    int64_t seq = 0;

    diag("lease refresh, expiry, reaping");
    new_session(sid);
    new_run(rid);
    claim(b, sid, rid, 0, 60000, NULL, NULL);
    publish_n(b, sid, rid, 1);
    ok(testenv_redis_int(&R, "PTTL cgw:{%s}:lease", sid) > 30000, "the claim's lease: 60 s");
    is_int(bus_lease_refresh(b, sid, rid, 30000, &e), CGW_OK, "refresh");
    {
        long long ttl = testenv_redis_int(&R, "PTTL cgw:{%s}:lease", sid);
        ok(ttl > 0 && ttl <= 30000, "refresh set the lease to 30 s (%lld ms left)", ttl);
    }
    is_int(bus_lease_refresh(b, sid, "run_other", 400, &e), CGW_ERR_STALE,
           "refresh of another run: STALE");
    is_int(complete(b, sid, rid, "reap1", true, &seq), CGW_ERR_CONFLICT,
           "reaping while the lease lives: CONFLICT");
    is_int(xlen(&R, sid), 1, "failed reap added nothing");
    bus_run_get(b, sid, &run, NULL, &e);
    ok(run.status == RUN_RUNNING && run.lease_alive, "still running with a live lease");
    {
        char key[128];
        snprintf(key, sizeof key, "cgw:{%s}:lease", sid);
        rok(&R, "PEXPIRE", "PEXPIRE %s 1", key); /* the runner stopped refreshing it */
        ok(testenv_wait(key_gone, key), "the lease lapsed");
    }
    bus_run_get(b, sid, &run, NULL, &e);
    ok(run.status == RUN_RUNNING && !run.lease_alive, "lease expired, run still running");
    is_int(complete(b, sid, rid, "reap2", true, &seq), CGW_OK, "reaping after expiry: OK");
    is_int(seq, 2, "reaper's complete has seq 2");
    is_int(bus_lease_refresh(b, sid, rid, 400, &e), CGW_ERR_STALE,
           "the runner's refresh after the reap: STALE");
    is_int(complete(b, sid, rid, "own", false, &seq), CGW_ERR_STALE,
           "the runner's own complete after the reap: STALE");
    is_int(xlen(&R, sid), 2, "one complete only");
    bus_close(b);
}

static char ctl_sid[CGW_UUID_LEN + 1];

static int pusher(int i)
{
    struct bus *b = open_bus(&R);
    int rc;
    if (!testenv_wait(some_client_blocked, &R)) /* the parent waits in BLPOP */
        return 2;
    rc = bus_ctl_push(b, ctl_sid, "{\"type\":\"late\"}", NULL) == CGW_OK ? 0 : 1;
    bus_close(b);
    return rc;
}

static void test_ctl(void)
{
    struct bus *b = open_bus(&R);
    struct bus_config c = config_for(&R);
    struct bus *quick;
    char sid[CGW_UUID_LEN + 1];
    struct cgw_error e;
    char *msg = NULL;
    int code;

    diag("control list push and pop");
    new_session(sid);
    is_int(bus_ctl_push(b, sid, "{\"type\":\"abort\"}", &e), CGW_OK, "push 1");
    is_int(bus_ctl_push(b, sid, "{\"type\":\"x\"}", &e), CGW_OK, "push 2");
    is_int(bus_ctl_pop(b, sid, 0, &msg, &e), CGW_OK, "pop");
    is_str(msg, "{\"type\":\"abort\"}", "oldest first");
    free(msg);
    bus_ctl_pop(b, sid, 0, &msg, &e);
    is_str(msg, "{\"type\":\"x\"}", "then the next");
    free(msg);
    is_int(bus_ctl_pop(b, sid, 0, &msg, &e), CGW_OK, "pop empty");
    ok(msg == NULL, "nothing: NULL");
    is_int(bus_ctl_pop(b, sid, 200, &msg, &e), CGW_OK, "pop with timeout, nothing comes");
    ok(msg == NULL, "nothing: NULL after the wait");

    /* BLPOP longer than the command timeout: the socket must wait for it. */
    c.timeout_ms = 300;
    quick = open_cfg(&c);
    is_int(bus_ctl_pop(quick, sid, 1000, &msg, &e), CGW_OK,
           "pop waiting longer than the command timeout: OK");
    ok(msg == NULL, "nothing came: NULL, not a timeout error");
    is_int(bus_ping(quick, &e), CGW_OK, "the connection is fine after the wait");

    memcpy(ctl_sid, sid, sizeof(ctl_sid));
    {
        int fds[2];
        pid_t pid;
        if (pipe(fds) != 0)
            BAIL_OUT("pipe");
        pid = fork();
        if (pid == 0) {
            close(fds[0]);
            bus_close(quick);
            bus_close(b);
            _exit(pusher(0));
        }
        close(fds[1]);
        close(fds[0]);
        /* The child pushes once this pop is blocked in Redis. */
        is_int(bus_ctl_pop(quick, sid, TESTENV_LIMIT_MS, &msg, &e), CGW_OK, "pop waits for a push");
        is_str(msg, "{\"type\":\"late\"}", "the pushed message arrives");
        free(msg);
        waitpid(pid, &code, 0);
        ok(WIFEXITED(code) && WEXITSTATUS(code) == 0, "the pusher saw the pop blocked, pushed");
    }
    bus_close(quick);
    bus_close(b);
}

static void test_perm(void)
{
    struct bus *b = open_bus(&R);
    char sid[CGW_UUID_LEN + 1], rid[CGW_ID_MAX], got[CGW_UUID_LEN + 1];
    struct cgw_error e;
    char **list = NULL, *msg = NULL;
    size_t n = 0;

    diag("permissions: first answer wins");
    new_session(sid);
    new_run(rid);
    is_int(bus_perm_add(b, sid, rid, "req-c", "{\"requestId\":\"req-c\"}", &e), CGW_ERR_STALE,
           "perm_add without a running run: STALE");
    claim(b, sid, rid, 0, 60000, NULL, NULL);
    is_int(bus_perm_add(b, sid, rid, "req-c", "{\"requestId\":\"req-c\"}", &e), CGW_OK, "add c");
    is_int(bus_perm_add(b, sid, rid, "req-a", "{\"requestId\":\"req-a\"}", &e), CGW_OK, "add a");
    is_int(bus_perm_add(b, sid, rid, "req-b", "{\"requestId\":\"req-b\"}", &e), CGW_OK, "add b");
    is_int(bus_perm_add(b, sid, rid, "req-c", "{\"requestId\":\"req-c\"}", &e), CGW_OK,
           "add c again (a retry)");
    is_int(bus_perm_list(b, sid, &list, &n, &e), CGW_OK, "list");
    is_int(n, 3, "3 open requests");
    if (n == 3) {
        is_str(list[0], "{\"requestId\":\"req-c\"}", "oldest first");
        is_str(list[1], "{\"requestId\":\"req-a\"}", "then a");
        is_str(list[2], "{\"requestId\":\"req-b\"}", "then b");
    }
    bus_strings_free(list, n);

    is_int(bus_perm_session(b, "req-a", got, &e), CGW_OK, "perm_session");
    is_str(got, sid, "request maps to its session");
    is_int(bus_perm_session(b, "req-unknown", got, &e), CGW_ERR_NOT_FOUND, "unknown: NOT_FOUND");

    is_int(bus_perm_resolve(b, sid, "req-c", true, "{\"type\":\"permission\",\"allow\":true}", &e),
           CGW_OK, "resolve c");
    is_int(
        bus_perm_resolve(b, sid, "req-c", false, "{\"type\":\"permission\",\"allow\":false}", &e),
        CGW_ERR_CONFLICT, "second answer: CONFLICT");
    is_int(bus_perm_resolve(b, sid, "req-zzz", true, "{\"x\":1}", &e), CGW_ERR_NOT_FOUND,
           "unknown request: NOT_FOUND");
    is_int(bus_perm_cancel(b, sid, "req-c", &e), CGW_ERR_CONFLICT,
           "cancel after resolve: CONFLICT");
    is_int(bus_perm_cancel(b, sid, "req-a", &e), CGW_OK, "cancel a");
    is_int(bus_perm_cancel(b, sid, "req-a", &e), CGW_OK, "cancel a again: OK");
    is_int(bus_perm_resolve(b, sid, "req-a", true, "{\"x\":1}", &e), CGW_ERR_CONFLICT,
           "resolve after cancel: CONFLICT");
    is_int(bus_perm_add(b, sid, rid, "req-a", "{\"requestId\":\"req-a\"}", &e), CGW_ERR_CONFLICT,
           "re-adding an answered request: CONFLICT");
    bus_ctl_pop(b, sid, 0, &msg, &e);
    is_str(msg, "{\"type\":\"permission\",\"allow\":true}", "only the winning decision was pushed");
    free(msg);
    bus_ctl_pop(b, sid, 0, &msg, &e);
    ok(msg == NULL, "nothing else on the control list");

    bus_perm_list(b, sid, &list, &n, &e);
    ok(n == 1 && strcmp(list[0], "{\"requestId\":\"req-b\"}") == 0, "b is still open");
    bus_strings_free(list, n);
    is_int(complete(b, sid, rid, "c", false, NULL), CGW_OK, "complete with b open");
    is_int(bus_perm_resolve(b, sid, "req-b", true, "{\"x\":1}", &e), CGW_ERR_CONFLICT,
           "b was cancelled by complete: CONFLICT");
    {
        redisReply *rep = rcmd(&R, "HGET cgw:{%s}:resolved req-b", sid);
        ok(rep && rep->type == REDIS_REPLY_STRING && strcmp(rep->str, "cancelled") == 0,
           "b marked cancelled");
        if (rep)
            freeReplyObject(rep);
    }
    bus_perm_list(b, sid, &list, &n, &e);
    ok(n == 0 && list == NULL, "no open requests after complete");
    bus_close(b);
}

static void test_noscript(void)
{
    struct bus *b = open_bus(&R);
    char sid[CGW_UUID_LEN + 1], rid[CGW_ID_MAX];
    struct bus_read rd;
    struct cgw_error e;
    int64_t seq = 0;

    diag("scripts flushed under a live connection");
    new_session(sid);
    new_run(rid);
    claim(b, sid, rid, 0, 60000, NULL, NULL);
    rok(&R, "SCRIPT FLUSH", "SCRIPT FLUSH");
    is_int(publish(b, sid, rid, "a", "{\"kind\":\"text\"}", &seq), CGW_OK,
           "publish after SCRIPT FLUSH");
    is_int(seq, 1, "seq 1");
    rok(&R, "SCRIPT FLUSH", "SCRIPT FLUSH");
    is_int(bus_events_read(b, sid, 0, 10, 0, &rd, &e), CGW_OK, "read after SCRIPT FLUSH");
    is_int(rd.n, 1, "one event");
    bus_read_free(&rd);
    rok(&R, "SCRIPT FLUSH", "SCRIPT FLUSH");
    is_int(complete(b, sid, rid, "c", false, &seq), CGW_OK, "complete after SCRIPT FLUSH");
    is_int(seq, 2, "seq 2");
    bus_close(b);
}

static void test_runs_running(void)
{
    struct bus *b = open_bus(&R);
    char s1[CGW_UUID_LEN + 1], s2[CGW_UUID_LEN + 1], ghost[CGW_UUID_LEN + 1];
    char r1[CGW_ID_MAX], r2[CGW_ID_MAX];
    struct cgw_error e;
    char **ids = NULL;
    size_t n = 0;

    diag("the set of running sessions");
    rok(&R, "FLUSHALL", "FLUSHALL");
    new_session(s1);
    new_session(s2);
    new_session(ghost);
    new_run(r1);
    new_run(r2);
    claim(b, s1, r1, 0, 60000, NULL, NULL);
    claim(b, s2, r2, 0, 60000, NULL, NULL);
    is_int(testenv_redis_int(&R, "SCARD cgw:running"), 2, "both claimed sessions in cgw:running");
    complete(b, s1, r1, "c", false, NULL);
    is_int(testenv_redis_int(&R, "SISMEMBER cgw:running %s", s1), 0, "complete removed s1");
    rok(&R, "SADD", "SADD cgw:running %s", s1);
    rok(&R, "SADD", "SADD cgw:running %s", ghost);
    rok(&R, "SADD", "SADD cgw:running bad{tag}");
    is_int(bus_runs_running(b, &ids, &n, &e), CGW_OK, "runs_running");
    ok(n == 1 && strcmp(ids[0], s2) == 0, "only s2 runs");
    bus_strings_free(ids, n);
    is_int(testenv_redis_int(&R, "SCARD cgw:running"), 1, "stale members dropped");
    is_int(testenv_redis_int(&R, "SISMEMBER cgw:running %s", s2), 1, "s2 kept");
    complete(b, s2, r2, "c", false, NULL);
    bus_runs_running(b, &ids, &n, &e);
    ok(n == 0, "nothing runs");
    bus_strings_free(ids, n);
    bus_close(b);
}

static void test_addresses(void)
{
    struct bus_config c = config_for(&R);
    struct bus *b = NULL;
    struct cgw_error e;
    char sock[600], addr[620], sid[CGW_UUID_LEN + 1], rid[CGW_ID_MAX];

    diag("unix socket, SELECT, AUTH, bad addresses");
    snprintf(sock, sizeof(sock), "%s/redis.sock", R.dir);
    snprintf(addr, sizeof(addr), "unix:%s", sock);
    c.address = addr;
    is_int(bus_open(&c, false, &b, &e), CGW_OK, "unix: address");
    is_int(bus_ping(b, &e), CGW_OK, "ping over the unix socket");
    bus_close(b);
    c.address = sock;
    is_int(bus_open(&c, false, &b, &e), CGW_OK, "/path address");
    bus_close(b);
    c.address = "127.0.0.1:notaport";
    is_int(bus_open(&c, true, &b, &e), CGW_ERR_INVALID, "bad port: INVALID");
    ok(b == NULL, "no bus");

    c = config_for(&R);
    c.db = 3;
    b = open_cfg(&c);
    new_session(sid);
    new_run(rid);
    is_int(claim(b, sid, rid, 0, 60000, NULL, NULL), CGW_OK, "claim in db 3");
    is_int(testenv_redis_int(&R, "EXISTS cgw:{%s}:run", sid), 0, "not in db 0");
    complete(b, sid, rid, "c", false, NULL);
    bus_close(b);

    rok(&R, "CONFIG SET", "CONFIG SET requirepass s3cret");
    c = config_for(&R);
    c.password = "s3cret";
    is_int(bus_open(&c, false, &b, &e), CGW_OK, "AUTH with the password");
    is_int(bus_ping(b, &e), CGW_OK, "ping after AUTH");
    bus_close(b);
    c.password = "wrong";
    is_int(bus_open(&c, false, &b, &e), CGW_ERR_BACKEND, "wrong password: BACKEND");
    c.password = NULL;
    is_int(bus_open(&c, false, &b, &e), CGW_ERR_BACKEND, "no password: BACKEND");
    diag("%s", e.text);
    {
        struct timeval tv = {5, 0};
        redisContext *rc = redisConnectWithTimeout("127.0.0.1", R.port, tv);
        redisReply *rep = rc && !rc->err ? redisCommand(rc, "AUTH s3cret") : NULL;
        if (rep)
            freeReplyObject(rep);
        rep = rc && !rc->err ? redisCommand(rc, "CONFIG SET requirepass %s", "") : NULL;
        if (!rep || rep->type == REDIS_REPLY_ERROR)
            BAIL_OUT("cannot reset requirepass");
        freeReplyObject(rep);
        redisFree(rc);
    }
}

static void test_timeout(void)
{
    struct sockaddr_in a;
    socklen_t len = sizeof(a);
    struct bus_config c = config_for(&R);
    struct bus *b = NULL;
    struct cgw_error e;
    char addr[64];
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    diag("a server that never answers");
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(fd, 8) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0)
        BAIL_OUT("listen");
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", ntohs(a.sin_port));
    c.address = addr;
    c.timeout_ms = 300;
    /* Without redis.timeout_ms this would never return. */
    is_int(bus_open(&c, false, &b, &e), CGW_ERR_BACKEND, "connect to a mute server: BACKEND");
    diag("%s", e.text);
    close(fd);
}

/* A loopback port nobody listens on (bound, then closed). */
static int closed_port(void)
{
    struct sockaddr_in a;
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port;

    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0)
        BAIL_OUT("bind");
    port = ntohs(a.sin_port);
    close(fd);
    return port;
}

/* Through Sentinel: nothing listening, or a plain Redis that is no Sentinel, gives
 * BACKEND within the bound and says what it asked. */
static void test_sentinel_unreachable(void)
{
    struct bus_config c = config_for(&R);
    struct bus *b = NULL;
    struct cgw_error e;
    char list[64];
    int port;

    diag("redis.sentinels that name no primary");
    c.address = "";
    c.sentinels = "127.0.0.1:notaport";
    is_int(bus_open(&c, true, &b, &e), CGW_ERR_INVALID, "bad sentinel list: INVALID");
    port = closed_port();
    snprintf(list, sizeof list, "127.0.0.1:%d", port);
    c.sentinels = list;
    c.timeout_ms = 200;
    is_int(bus_open(&c, true, &b, &e), CGW_OK, "lazy open through Sentinel");
    ok(bus_via_sentinel(b), "bus_via_sentinel");
    is_str(bus_primary(b), "sentinel:chatgw", "before a lookup it names the master");
    is_int(bus_ping(b, &e), CGW_ERR_BACKEND, "no Sentinel listening: BACKEND");
    ok(strstr(e.text, "sentinel chatgw") != NULL, "the text says why: %s", e.text);
    bus_close(b);
    snprintf(list, sizeof list, "127.0.0.1:%d,127.0.0.1:%d", port, R.port);
    c.master_name = "other";
    is_int(bus_open(&c, false, &b, &e), CGW_ERR_BACKEND, "a Redis that is no Sentinel: BACKEND");
    ok(strstr(e.text, "SENTINEL") != NULL || strstr(e.text, "sentinel") != NULL,
       "the text names the lookup: %s", e.text);
    ok(b == NULL, "no bus");
}

static void test_down(void)
{
    struct bus *b = open_bus(&R);
    struct bus_config c = config_for(&R);
    struct bus *lazy = NULL, *none = NULL;
    char sid[CGW_UUID_LEN + 1], rid[CGW_ID_MAX];
    struct cgw_error e;
    struct bus_read rd;
    int64_t seq;

    diag("Redis down, then back");
    new_session(sid);
    new_run(rid);
    claim(b, sid, rid, 0, 60000, NULL, NULL);
    is_int(bus_ping(b, &e), CGW_OK, "ping");
    testenv_redis_stop(&R);
    is_int(bus_ping(b, &e), CGW_ERR_BACKEND, "ping with Redis down: BACKEND");
    ok(strstr(e.text, R.address) != NULL, "the text names the server: %s", e.text);
    is_int(bus_event_publish(b, sid, rid, "x", "{\"a\":1}", &seq, &e), CGW_ERR_BACKEND,
           "publish with Redis down: BACKEND");
    is_int(bus_events_read(b, sid, 0, 10, 0, &rd, &e), CGW_ERR_BACKEND, "read: BACKEND");
    is_int(bus_ctl_push(b, sid, "{\"a\":1}", &e), CGW_ERR_BACKEND, "ctl_push: BACKEND");
    is_int(bus_open(&c, false, &none, &e), CGW_ERR_BACKEND, "bus_open, not lazy: BACKEND");
    ok(none == NULL, "no bus");
    is_int(bus_open(&c, true, &lazy, &e), CGW_OK, "bus_open lazy: OK");
    is_int(bus_ping(lazy, &e), CGW_ERR_BACKEND, "its first command: BACKEND");
    if (testenv_redis_restart(&R) != 0)
        BAIL_OUT("cannot restart redis-server");
    is_int(bus_ping(b, &e), CGW_OK, "ping after the restart: reconnected");
    is_int(bus_ping(lazy, &e), CGW_OK, "lazy bus connects");
    bus_close(lazy);
    bus_close(b);
}

/* The per-user session feed: its own gapless feedSeq, appended like seq, readable
 * after a cursor, separate per user. */
static void test_feed(void)
{
    struct bus *b = open_bus(&R);
    struct cgw_error err;
    struct bus_read rd;
    int64_t fs = 0;
    int64_t user = 1000 + (random() % 100000);

    is_int(
        bus_feed_publish(b, user, "{\"kind\":\"session_upserted\",\"sessionId\":\"a\"}", &fs, &err),
        CGW_OK, "feed: publish");
    is_int(fs, 1, "feed: first feedSeq is 1");
    is_int(
        bus_feed_publish(b, user, "{\"kind\":\"session_upserted\",\"sessionId\":\"b\"}", &fs, &err),
        CGW_OK, "feed: publish again");
    is_int(fs, 2, "feed: feedSeq 2");
    is_int(bus_feed_publish(b, user + 1, "{\"kind\":\"x\"}", &fs, &err), CGW_OK,
           "feed: another user");
    is_int(fs, 1, "feed: every user has its own sequence");
    is_int(bus_feed_publish(b, user, "{}", &fs, &err), CGW_ERR_INVALID, "feed: empty object");
    is_int(bus_feed_publish(b, 0, "{\"a\":1}", &fs, &err), CGW_ERR_INVALID, "feed: bad user");

    is_int(bus_feed_read(b, user, 0, 100, 0, &rd, &err), CGW_OK, "feed: read from 0");
    is_int(rd.n, 2, "feed: two frames");
    is_int(rd.last_seq, 2, "feed: counter");
    ok(!rd.truncated, "feed: not truncated");
    if (rd.n == 2) {
        is_str(rd.events[1].json,
               "{\"kind\":\"session_upserted\",\"sessionId\":\"b\",\"feedSeq\":2}",
               "feed: feedSeq appended to the frame");
        is_int(rd.events[1].seq, 2, "feed: entry seq");
    }
    bus_read_free(&rd);
    is_int(bus_feed_read(b, user, 1, 100, 0, &rd, &err), CGW_OK, "feed: read after 1");
    is_int(rd.n, 1, "feed: one frame after the cursor");
    bus_read_free(&rd);
    is_int(bus_feed_read(b, user + 2, 0, 100, 0, &rd, &err), CGW_OK, "feed: empty feed");
    ok(rd.n == 0 && rd.last_seq == 0 && !rd.truncated, "feed: nothing, no hole");
    bus_read_free(&rd);
    bus_close(b);
}

/* bus_events_publish: one script call, consecutive seqs, all or none, a repeat adds nothing. */
static void test_batch(void)
{
    struct bus *b = open_bus(&R);
    struct cgw_error e;
    struct bus_read rd;
    char sid[CGW_UUID_LEN + 1], rid[CGW_ID_MAX];
    int64_t seq = 0, last = 0, again = 0;

    new_session(sid);
    new_run(rid);
    if (claim(b, sid, rid, 0, 60000, NULL, NULL) != CGW_OK)
        BAIL_OUT("claim");
    is_int(publish(b, sid, rid, "b0", "{\"kind\":\"text\"}", &seq), CGW_OK, "batch: one alone");
    const char *ids[3] = {"b1", "b2", "b3"};
    const char *jsons[3] = {"{\"kind\":\"text\",\"i\":1}", "{\"kind\":\"text\",\"i\":2}",
                            "{\"kind\":\"text\",\"i\":3}"};
    is_int(bus_events_publish(b, sid, rid, 3, ids, jsons, &last, &e), CGW_OK, "batch of 3");
    is_int(last, 4, "batch: last seq");
    is_int(bus_events_publish(b, sid, rid, 3, ids, jsons, &again, &e), CGW_OK,
           "the same batch again");
    is_int(again, 4, "the same batch again: the same last seq");
    is_int(xlen(&R, sid), 4, "the same batch again: nothing added");
    const char *bad_ids[2] = {"b4", "bad id"};
    is_int(bus_events_publish(b, sid, rid, 2, bad_ids, jsons, &again, &e), CGW_ERR_INVALID,
           "a bad event id: INVALID");
    is_int(bus_events_publish(b, sid, rid, 0, ids, jsons, &again, &e), CGW_ERR_INVALID,
           "an empty batch: INVALID");
    is_int(xlen(&R, sid), 4, "refused batches add nothing");
    is_int(bus_events_read(b, sid, 1, 100, 0, &rd, &e), CGW_OK, "batch: read");
    ok(rd.n == 3 && rd.events[0].seq == 2 && rd.events[2].seq == 4 &&
           strcmp(rd.events[1].json, "{\"kind\":\"text\",\"i\":2,\"seq\":3}") == 0,
       "batch: in order, with consecutive seqs");
    bus_read_free(&rd);
    is_int(complete(b, sid, rid, "bc", false, &seq), CGW_OK, "batch: complete");
    const char *late[1] = {"b9"};
    is_int(bus_events_publish(b, sid, rid, 1, late, jsons, &again, &e), CGW_ERR_STALE,
           "a batch after the complete: STALE");
    bus_close(b);
}

int main(void)
{
    char dir[600];

    if (!testenv_redis_binary())
        skip_all("redis-server not installed");
    signal(SIGPIPE, SIG_DFL); /* the bus must survive a dead peer without our help */
    srandom((unsigned)getpid());
    if (testenv_tmpdir("bus", tmp, sizeof(tmp)) != 0)
        BAIL_OUT("tmpdir");
    snprintf(dir, sizeof(dir), "%s/main", tmp);
    if (testenv_redis_start(&R, dir, false) != 0)
        BAIL_OUT("cannot start redis-server");
    diag("redis-server on %s, files in %s", R.address, tmp);

    test_basics();
    test_concurrent_claims();
    test_gapless();
    test_flushall_hwm();
    test_aof_restart();
    test_read();
    test_lease();
    test_ctl();
    test_perm();
    test_noscript();
    test_runs_running();
    test_feed();
    test_batch();
    test_addresses();
    test_timeout();
    test_sentinel_unreachable();
    test_down();

    testenv_redis_stop(&R);
    testenv_rmtree(tmp);
    return done_testing();
}
