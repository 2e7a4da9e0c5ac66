/* test_bus_host.c: the home hosts' heartbeat and spawn queue (core/bus_host.h), against a
 * private redis-server. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "core/bus.h"
#include "core/bus_host.h"
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

static void test_heartbeat(struct bus *b)
{
    struct cgw_error e;
    bool alive = true;

    is_int(bus_host_alive(b, "hostA", &alive, &e), CGW_OK, "ask about a host never seen");
    ok(!alive, "a host without a heartbeat is not alive");
    is_int(bus_host_beat(b, "hostA", 7000, &e), CGW_OK, "beat");
    long long ttl = testenv_redis_int(&R, "PTTL cgw:host:{hostA}:alive");
    ok(ttl > 0 && ttl <= 7000, "the heartbeat key carries the TTL (%lld ms)", ttl);
    is_int(bus_host_alive(b, "hostA", &alive, &e), CGW_OK, "ask again");
    ok(alive, "now it is alive");
    is_int(bus_host_alive(b, "hostB", &alive, &e), CGW_OK, "ask about another host");
    ok(!alive, "which is not");
    is_int(testenv_redis_int(&R, "DEL cgw:host:{hostA}:alive"), 1, "the key lapses");
    is_int(bus_host_alive(b, "hostA", &alive, &e), CGW_OK, "ask once more");
    ok(!alive, "a lapsed heartbeat is a dead host");
    is_int(bus_host_beat(b, "bad{host}", 7000, &e), CGW_ERR_INVALID, "a host id with braces");
    is_int(bus_host_alive(b, "", &alive, &e), CGW_ERR_INVALID, "an empty host id");
    is_int(bus_host_beat(b, "hostA", 0, &e), CGW_ERR_INVALID, "a TTL of 0");
}

static void test_queue(struct bus *b)
{
    struct cgw_error e;
    char sid[CGW_UUID_LEN + 1], sid2[CGW_UUID_LEN + 1], got_sid[CGW_UUID_LEN + 1];
    char rid[CGW_ID_MAX], rid2[CGW_ID_MAX], got_rid[CGW_ID_MAX];
    bool got = true;

    if (cgw_uuid_v4(sid) != 0 || cgw_uuid_v4(sid2) != 0 || cgw_id_new("run", rid, CGW_ID_MAX) ||
        cgw_id_new("run", rid2, CGW_ID_MAX))
        BAIL_OUT("no ids");
    is_int(bus_host_spawn_pop(b, "hostA", 10, &got, got_sid, got_rid, &e), CGW_OK,
           "pop an empty queue");
    ok(!got, "nothing came");
    is_int(bus_host_spawn_push(b, "hostA", sid, rid, &e), CGW_OK, "push a request");
    is_int(bus_host_spawn_push(b, "hostA", sid2, rid2, &e), CGW_OK, "push another");
    is_int(testenv_redis_int(&R, "LLEN cgw:host:{hostA}:spawn"), 2, "both wait in host A's list");
    is_int(bus_host_spawn_pop(b, "hostB", 10, &got, got_sid, got_rid, &e), CGW_OK,
           "host B pops its own queue");
    ok(!got, "and finds nothing of A's");
    is_int(bus_host_spawn_pop(b, "hostA", 1000, &got, got_sid, got_rid, &e), CGW_OK, "pop");
    ok(got && strcmp(got_sid, sid) == 0 && strcmp(got_rid, rid) == 0, "the first, in order");
    is_int(bus_host_spawn_pop(b, "hostA", 1000, &got, got_sid, got_rid, &e), CGW_OK, "pop");
    ok(got && strcmp(got_sid, sid2) == 0 && strcmp(got_rid, rid2) == 0, "then the second");
    is_int(bus_host_spawn_push(b, "hostA", "not a session", rid, &e), CGW_ERR_INVALID,
           "a bad session id is refused");
    is_int(testenv_redis_int(&R, "RPUSH cgw:host:{hostA}:spawn garbage"), 1,
           "a malformed entry in the list");
    is_int(bus_host_spawn_pop(b, "hostA", 1000, &got, got_sid, got_rid, &e), CGW_ERR_INTERNAL,
           "is reported");
    ok(!got, "and not handed out");
    is_int(testenv_redis_int(&R, "LLEN cgw:host:{hostA}:spawn"), 0, "but taken away");
    is_int(bus_host_spawn_pop(b, "hostA", 0, &got, got_sid, got_rid, &e), CGW_ERR_INVALID,
           "a wait of 0 is refused (the pop always blocks a bounded time)");
}

int main(void)
{
    char dir[600];

    if (!testenv_redis_binary())
        skip_all("redis-server not installed");
    if (testenv_tmpdir("bushost", tmp, sizeof(tmp)) != 0)
        BAIL_OUT("tmpdir");
    snprintf(dir, sizeof(dir), "%s/redis", tmp);
    if (testenv_redis_start(&R, dir, false) != 0)
        BAIL_OUT("cannot start redis-server");
    diag("redis-server on %s", R.address);

    struct bus *b = open_bus();
    test_heartbeat(b);
    test_queue(b);
    bus_close(b);

    testenv_redis_stop(&R);
    testenv_rmtree(tmp);
    return done_testing();
}
