/* test_poller_cache.c: the poller's copy of sessions (fcgi/poller_cache.c) and the token
 * check cache (src/core/auth_cache.c), without a web server or Redis: when an entry is
 * current (reads, notifications with their seq, reconnects, a read that raced a
 * notification), what the ring answers and how it cuts like read.lua, and when a
 * cached token check may be trusted (a revocation, unread notifications, the subscriber
 * lost). The token checks use a real SQLite store in a temp dir. And the copy of session
 * owners (fcgi/owner_cache.c): for the owner only, forgotten by a delete, a feed
 * notification of its user and the subscriber's loss, a read that raced a forget not
 * kept, off with max age 0. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/auth.h"
#include "core/auth_cache.h"
#include "fcgi/owner_cache.h"
#include "fcgi/poller_cache.h"
#include "tap.h"
#include "testenv.h"

/* A read of session events (after, last] = seqs from..to (none when from > to). */
static void read_make(struct sub_snapshot *s, int64_t after, int64_t from, int64_t to, int64_t last,
                      enum run_status status)
{
    memset(s, 0, sizeof *s);
    s->after = after;
    s->read.last_seq = last;
    s->read.first_seq = 1;
    s->read.status = status;
    snprintf(s->read.run_id, sizeof s->read.run_id, "%s", status == RUN_RUNNING ? "run_x" : "");
    size_t n = from <= to ? (size_t)(to - from + 1) : 0;
    s->read.events = calloc(n ? n : 1, sizeof *s->read.events);
    for (int64_t q = from; q <= to; q++) {
        char *text = malloc(64);
        int len = snprintf(text, 64, "{\"kind\":\"text\",\"seq\":%lld}", (long long)q);
        s->read.events[s->read.n++] = (struct bus_event){q, text, (size_t)len};
    }
}

/* Offers a read of S made now. */
static void store_read(struct poller_cache *c, int64_t after, int64_t from, int64_t to,
                       int64_t last)
{
    struct sub_snapshot s;
    read_make(&s, after, from, to, last, RUN_NONE);
    poller_cache_store(c, "S", &s, poller_cache_gen(c));
    answer_snapshot_free(&s);
}

/* The seqs a snapshot of S after cursor holds, as "a,b,c" ("miss" on a miss, "+" when
 * more). */
static const char *seqs_after(struct poller_cache *c, int64_t cursor, int64_t count, int64_t bytes)
{
    static char buf[256];
    struct sub_snapshot s;
    size_t len = 0;
    buf[0] = '\0';
    if (!poller_cache_snapshot(c, "S", cursor, count, bytes, &s))
        return "miss";
    for (size_t i = 0; i < s.read.n; i++)
        len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%lld", i ? "," : "",
                                (long long)s.read.events[i].seq);
    if (s.read.more)
        snprintf(buf + len, sizeof buf - len, "+");
    answer_snapshot_free(&s);
    return buf;
}

static struct poller_cache *cache_new(size_t ring)
{
    struct poller_cache_limits lim = {
        .ring = ring, .ring_bytes = 1 << 20, .entries = 16, .max_age_ms = 60000, .idle_ms = 60000};
    struct poller_cache *c;
    struct cgw_error err;
    if (poller_cache_new(&lim, &c, &err) != CGW_OK)
        BAIL_OUT("poller_cache_new: %s", err.text);
    return c;
}

static void test_current(void)
{
    struct poller_cache *c = cache_new(8);

    store_read(c, 0, 1, 3, 3);
    ok(!poller_cache_at_head(c, "S", 3, 0), "off until the subscriber is live: nothing kept");
    is_str(seqs_after(c, 0, 100, 1 << 20), "miss", "off: a miss");

    poller_cache_live(c, true);
    store_read(c, 0, 1, 3, 3);
    ok(poller_cache_at_head(c, "S", 3, 0), "a read up to 3: 3 is the head");
    ok(!poller_cache_at_head(c, "S", 2, 0), "2 is not");
    ok(!poller_cache_at_head(c, "S", 3, 4), "SQLite beyond it (Redis lost data): not the head");
    ok(!poller_cache_at_head(c, "T", 0, 0), "an unknown session: not known");
    is_str(seqs_after(c, 3, 100, 1 << 20), "", "at the head: current, no events");
    is_str(seqs_after(c, 1, 100, 1 << 20), "2,3", "just behind: the ring");
    is_str(seqs_after(c, 0, 100, 1 << 20), "1,2,3", "from the ring's start");
    is_str(seqs_after(c, 4, 100, 1 << 20), "miss", "a cursor beyond the head: Redis says");

    poller_cache_notified(c, "S", 4);
    ok(!poller_cache_at_head(c, "S", 3, 0), "notified 4: 3 is no longer the head");
    is_str(seqs_after(c, 3, 100, 1 << 20), "miss", "... and the ring misses until a read");
    store_read(c, 3, 4, 4, 4);
    ok(poller_cache_at_head(c, "S", 4, 0), "a read after 3 up to 4: current again");
    is_str(seqs_after(c, 0, 100, 1 << 20), "1,2,3,4", "the ring grew: 1..4");
    poller_cache_notified(c, "S", 4);
    ok(poller_cache_at_head(c, "S", 4, 0), "a late notification of 4 changes nothing");

    /* A read that began before a notification was handled may not have seen it. */
    uint64_t gen = poller_cache_gen(c);
    poller_cache_notified(c, "S", 5);
    struct sub_snapshot s;
    read_make(&s, 4, 0, -1, 4, RUN_NONE);
    poller_cache_store(c, "S", &s, gen);
    answer_snapshot_free(&s);
    ok(!poller_cache_at_head(c, "S", 4, 0), "a read that raced a notification is not kept");
    /* The same for a session with no entry yet (the sketch remembers the bucket). */
    gen = poller_cache_gen(c);
    poller_cache_notified(c, "U", 2);
    read_make(&s, 0, 1, 1, 1, RUN_NONE);
    poller_cache_store(c, "U", &s, gen);
    ok(!poller_cache_at_head(c, "U", 1, 0), "... also for a session not cached before");
    poller_cache_store(c, "U", &s, poller_cache_gen(c));
    ok(poller_cache_at_head(c, "U", 1, 0), "a read begun after it is kept");
    answer_snapshot_free(&s);

    store_read(c, 4, 5, 5, 5);
    poller_cache_notified(c, "S", 0);
    ok(!poller_cache_at_head(c, "S", 5, 0), "a notification without a seq: stale");
    store_read(c, 5, 0, -1, 5);
    ok(poller_cache_at_head(c, "S", 5, 0), "until the next read");

    store_read(c, 0, 1, 3, 3);
    ok(poller_cache_at_head(c, "S", 5, 0), "an older read does not move the head back");

    poller_cache_live(c, false);
    ok(!poller_cache_at_head(c, "S", 5, 0), "subscriber lost: nothing is current");
    poller_cache_live(c, true);
    ok(!poller_cache_at_head(c, "S", 5, 0), "subscribed again: still nothing until a read");
    is_str(seqs_after(c, 4, 100, 1 << 20), "miss", "... the ring neither");
    store_read(c, 5, 0, -1, 5);
    is_str(seqs_after(c, 4, 100, 1 << 20), "miss", "a new epoch's ring starts at its read");
    is_str(seqs_after(c, 5, 100, 1 << 20), "", "... at the head");
    poller_cache_free(c);
}

static void test_reads_kept(void)
{
    struct poller_cache *c = cache_new(4);
    struct sub_snapshot s;
    poller_cache_live(c, true);

    read_make(&s, 0, 1, 3, 5, RUN_NONE);
    s.read.more = true;
    poller_cache_store(c, "S", &s, poller_cache_gen(c));
    answer_snapshot_free(&s);
    ok(!poller_cache_at_head(c, "S", 5, 0), "a cut read is not kept");
    read_make(&s, 0, 3, 5, 5, RUN_NONE);
    poller_cache_store(c, "S", &s, poller_cache_gen(c));
    answer_snapshot_free(&s);
    ok(!poller_cache_at_head(c, "S", 5, 0), "a read with a hole (trimmed) is not kept");

    store_read(c, 0, 1, 10, 10);
    is_str(seqs_after(c, 6, 100, 1 << 20), "7,8,9,10", "ring of 4: the newest 4");
    is_str(seqs_after(c, 5, 100, 1 << 20), "miss", "older ones: Redis");
    is_str(seqs_after(c, 6, 2, 1 << 20), "7,8+", "max_count cuts, more");
    is_str(seqs_after(c, 6, 0, 0), "+", "max_count 0: more alone");
    is_str(seqs_after(c, 6, 100, 30), "7+", "max_bytes: at least one event");
    is_str(seqs_after(c, 6, 100, 60), "7,8+", "max_bytes: as many as fit");

    read_make(&s, 10, 0, -1, 10, RUN_RUNNING);
    poller_cache_store(c, "S", &s, poller_cache_gen(c));
    ok(poller_cache_at_head(c, "S", 10, 0), "running, permissions unknown: at the head");
    is_str(seqs_after(c, 10, 100, 1 << 20), "miss", "... but no answer (its ack needs them)");
    s.have_perms = true;
    poller_cache_store(c, "S", &s, poller_cache_gen(c));
    is_str(seqs_after(c, 9, 100, 1 << 20), "10", "running with none open: answered");
    struct sub_snapshot a;
    ok(poller_cache_snapshot(c, "S", 9, 100, 0, &a), "a snapshot");
    ok(a.have_perms && a.n_perms == 0 && a.read.status == RUN_RUNNING &&
           strcmp(a.read.run_id, "run_x") == 0 && a.read.last_seq == 10 && a.read.first_seq == 1 &&
           a.after == 9,
       "its ack fields: run, counter, firstSeq, after");
    answer_snapshot_free(&a);
    char *perm = strdup("{}");
    s.perms = &perm;
    s.n_perms = 1;
    poller_cache_store(c, "S", &s, poller_cache_gen(c));
    s.perms = NULL;
    s.n_perms = 0;
    free(perm);
    is_str(seqs_after(c, 9, 100, 1 << 20), "miss", "an open permission request: Redis");
    answer_snapshot_free(&s);

    uint64_t hits, misses;
    poller_cache_stats(c, &hits, &misses);
    ok(hits > 0 && misses > 0, "counted: %llu hits, %llu misses", (unsigned long long)hits,
       (unsigned long long)misses);
    poller_cache_free(c);
}

static void test_auth(void)
{
    char dir[256], path[300], token[AUTH_TOKEN_LEN + 1], pub[AUTH_PUBLIC_LEN + 1];
    struct store *st;
    struct store_user u;
    struct cgw_error err;
    struct auth_cache *c;
    int64_t id;
    int fds[2];

    if (testenv_tmpdir("authcache", dir, sizeof dir) < 0 || pipe(fds) < 0)
        BAIL_OUT("tmpdir or pipe");
    snprintf(path, sizeof path, "%s/db", dir);
    if (store_open(path, true, 1000, &st, &err) != CGW_OK ||
        store_migrate(st, NULL, &err) != CGW_OK || store_user_add(st, "alice", NULL, &err) ||
        auth_token_create(st, "alice", NULL, token, &id, &err) != CGW_OK ||
        auth_token_public_id(token, pub) < 0 || auth_cache_new(64, 60000, &c, &err) != CGW_OK)
        BAIL_OUT("setup: %s", err.text);

    uint64_t hits, misses;
    is_int(auth_token_verify_cached(c, st, token, &u, &err), CGW_OK, "verified (cache off)");
    ok(!auth_cache_active(c, pub, u.id), "off: nothing kept");
    auth_cache_live(c, fds[0]);
    is_int(auth_token_verify_cached(c, st, token, &u, &err), CGW_OK, "verified: kept");
    ok(auth_cache_active(c, pub, u.id), "the check is cached");
    ok(!auth_cache_active(c, pub, u.id + 1), "... for its user only");
    /* The poller's way: one quiet check per round, lookups that trust it. */
    bool quiet = auth_cache_quiet(c);
    ok(quiet, "quiet: nothing waits unread");
    ok(auth_cache_active_quiet(c, pub, u.id, quiet), "... so the entry is trusted");
    ok(!auth_cache_active_quiet(c, pub, u.id, false), "not trusted when the round was not quiet");
    ok(!auth_cache_active_quiet(c, pub, u.id + 1, quiet), "... for its user only");
    auth_cache_reading(c, true);
    ok(!auth_cache_quiet(c), "not quiet while a notification is being handled");
    ok(!auth_cache_active_quiet(c, pub, u.id, true), "... nor trusted then");
    auth_cache_reading(c, false);
    auth_cache_stats(c, &hits, &misses);

    /* Revoked in the store: the cache still says yes until it hears of it. */
    is_int(store_token_revoke(st, id, &err), CGW_OK, "revoked in the store");
    if (write(fds[1], "x", 1) != 1)
        BAIL_OUT("write");
    ok(!auth_cache_active(c, pub, u.id), "a notification waits unread: not trusted");
    ok(!auth_cache_quiet(c), "... and the round is not quiet");
    is_int(auth_token_verify_cached(c, st, token, &u, &err), CGW_ERR_UNAUTHORIZED,
           "... so the store is asked: 401");
    char x;
    if (read(fds[0], &x, 1) != 1)
        BAIL_OUT("read");
    auth_cache_reading(c, true);
    ok(!auth_cache_active(c, pub, u.id), "read but not handled yet: not trusted");
    auth_cache_flush(c); /* the "!auth" notification */
    auth_cache_reading(c, false);
    ok(!auth_cache_active(c, pub, u.id), "flushed: gone");
    is_int(auth_token_verify_cached(c, st, token, &u, &err), CGW_ERR_UNAUTHORIZED,
           "a revoked token is 401, and not cached");

    char token2[AUTH_TOKEN_LEN + 1], pub2[AUTH_PUBLIC_LEN + 1];
    if (auth_token_create(st, "alice", NULL, token2, NULL, &err) != CGW_OK ||
        auth_token_public_id(token2, pub2) < 0)
        BAIL_OUT("token2");
    is_int(auth_token_verify_cached(c, st, token2, &u, &err), CGW_OK, "a second token");
    ok(auth_cache_active(c, pub2, u.id), "cached");
    char wrong[AUTH_TOKEN_LEN + 1];
    memcpy(wrong, token2, sizeof wrong);
    wrong[AUTH_TOKEN_LEN - 1] = wrong[AUTH_TOKEN_LEN - 1] == 'A' ? 'B' : 'A';
    is_int(auth_token_verify_cached(c, st, wrong, &u, &err), CGW_ERR_UNAUTHORIZED,
           "its public id with a wrong secret: 401");
    auth_cache_live(c, -1);
    ok(!auth_cache_active(c, pub2, u.id), "subscriber lost: flushed and off");
    ok(!auth_cache_quiet(c) && !auth_cache_active_quiet(c, pub2, u.id, true),
       "... for the poller's lookups too");
    is_int(auth_token_verify_cached(c, st, token2, &u, &err), CGW_OK, "verified by the store");
    ok(!auth_cache_active(c, pub2, u.id), "... and not kept while off");

    auth_cache_free(c);
    store_close(st);
    close(fds[0]);
    close(fds[1]);
    testenv_rmtree(dir);
}

static void test_owners(void)
{
    static const char *s1 = "11111111-1111-4111-8111-111111111111",
                      *s2 = "22222222-2222-4222-8222-222222222222",
                      *s3 = "33333333-3333-4333-8333-333333333333";
    struct owner_cache *c;
    struct cgw_error err;
    int64_t last = -1;

    if (owner_cache_new(64, 3600 * 1000, &c, &err) != CGW_OK)
        BAIL_OUT("owner_cache_new: %s", err.text);
    owner_cache_put(c, s1, 7, 40, owner_cache_epoch(c));
    ok(!owner_cache_get(c, s1, 7, &last), "off until the subscriber is live: nothing kept");
    owner_cache_live(c, true);
    ok(!owner_cache_get(c, s1, 7, &last), "live: an unknown session is a miss");
    owner_cache_put(c, s1, 7, 40, owner_cache_epoch(c));
    owner_cache_put(c, s2, 7, 0, owner_cache_epoch(c));
    owner_cache_put(c, s3, 8, 5, owner_cache_epoch(c));
    ok(owner_cache_get(c, s1, 7, &last) && last == 40, "a read kept: owner and store high-water");
    ok(!owner_cache_get(c, s1, 8, &last), "another user asking: a miss (the store says 404)");
    ok(!owner_cache_get(c, "S", 7, &last), "not a session id: a miss");

    uint64_t before = owner_cache_epoch(c);
    owner_cache_forget(c, s1);
    ok(!owner_cache_get(c, s1, 7, &last), "deleted here: forgotten");
    owner_cache_put(c, s1, 7, 40, before);
    ok(!owner_cache_get(c, s1, 7, &last), "a read begun before the delete is not kept");
    ok(owner_cache_get(c, s2, 7, &last) && last == 0, "the user's other session is kept");

    owner_cache_forget_user(c, 7);
    ok(!owner_cache_get(c, s2, 7, &last), "a feed notification of its user: forgotten");
    ok(owner_cache_get(c, s3, 8, &last) && last == 5, "another user's sessions are kept");

    owner_cache_live(c, false);
    ok(!owner_cache_get(c, s3, 8, &last), "subscriber lost: everything forgotten");
    owner_cache_live(c, true);
    ok(!owner_cache_get(c, s3, 8, &last), "... and not back after it reconnects");
    uint64_t hits, misses;
    owner_cache_stats(c, &hits, &misses);
    ok(hits == 3 && misses == 8, "hits and misses counted (%llu, %llu)", (unsigned long long)hits,
       (unsigned long long)misses);
    owner_cache_free(c);

    if (owner_cache_new(64, 0, &c, &err) != CGW_OK)
        BAIL_OUT("owner_cache_new: %s", err.text);
    owner_cache_live(c, true);
    owner_cache_put(c, s1, 7, 40, owner_cache_epoch(c));
    ok(!owner_cache_get(c, s1, 7, &last), "max age 0: off (the store is read every time)");
    owner_cache_free(c);
}

int main(void)
{
    plan_lazy();
    test_current();
    test_reads_kept();
    test_auth();
    test_owners();
    return done_testing();
}
