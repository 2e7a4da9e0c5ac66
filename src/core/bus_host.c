/* bus_host.c: the home hosts' spawn queues and heartbeats (bus_host.h). */
#include "core/bus_host.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/bus_priv.h"

#define HOST_ID_MAX 63 /* config.h's CGW_HOST_ID_MAX: the bus does not include config.h */

enum host_key { HK_ALIVE, HK_SPAWN };

static enum cgw_err host_key(const char *host, enum host_key which, char key[BUS_KEY_MAX],
                             struct cgw_error *err)
{
    if (!bus_id_valid(host, HOST_ID_MAX))
        return cgw_error_set(err, CGW_ERR_INVALID, "bus: invalid host id");
    snprintf(key, BUS_KEY_MAX, "cgw:host:{%s}:%s", host, which == HK_ALIVE ? "alive" : "spawn");
    return CGW_OK;
}

enum cgw_err bus_host_beat(struct bus *b, const char *host, int64_t ttl_ms, struct cgw_error *err)
{
    char key[BUS_KEY_MAX], ttl[24], pid[24];
    redisReply *r;
    enum cgw_err rc;

    if ((rc = host_key(host, HK_ALIVE, key, err)) != CGW_OK)
        return rc;
    if (ttl_ms < 1 || ttl_ms > 86400000)
        return cgw_error_set(err, CGW_ERR_INVALID, "bus: invalid heartbeat ttl");
    snprintf(ttl, sizeof ttl, "%" PRId64, ttl_ms);
    snprintf(pid, sizeof pid, "%ld", (long)getpid()); /* for a human reading the key */
    rc = bus_cmd(b, CMD_RETRY, WANT_STATUS, &r, err, 5, "SET", key, pid, "PX", ttl);
    if (rc == CGW_OK)
        freeReplyObject(r);
    return rc;
}

enum cgw_err bus_host_alive(struct bus *b, const char *host, bool *alive, struct cgw_error *err)
{
    char key[BUS_KEY_MAX];
    redisReply *r;
    enum cgw_err rc;

    *alive = false;
    if ((rc = host_key(host, HK_ALIVE, key, err)) != CGW_OK)
        return rc;
    rc = bus_cmd(b, CMD_RETRY, WANT_INT, &r, err, 2, "EXISTS", key);
    if (rc != CGW_OK)
        return rc;
    *alive = r->integer > 0;
    freeReplyObject(r);
    return CGW_OK;
}

enum cgw_err bus_host_spawn_push(struct bus *b, const char *host, const char *session_id,
                                 const char *run_id, struct cgw_error *err)
{
    char key[BUS_KEY_MAX], entry[CGW_UUID_LEN + 1 + CGW_ID_MAX];
    redisReply *r;
    enum cgw_err rc;

    if ((rc = host_key(host, HK_SPAWN, key, err)) != CGW_OK)
        return rc;
    if (!bus_id_valid(session_id, CGW_UUID_LEN) || !bus_id_valid(run_id, CGW_ID_MAX - 1))
        return cgw_error_set(err, CGW_ERR_INVALID, "bus: invalid spawn request");
    snprintf(entry, sizeof entry, "%s %s", session_id, run_id);
    /* Not retried: a lost reply must not start the runner twice (the second would find
     * the run taken and exit, but it would still be a process for nothing). */
    rc = bus_cmd(b, 0, WANT_INT, &r, err, 3, "RPUSH", key, entry);
    if (rc == CGW_OK)
        freeReplyObject(r);
    return rc;
}

/* Splits "<sessionId> <runId>" into its checked parts. Returns 0 or -1. */
static int spawn_entry_parse(const char *s, size_t len, char session_id[CGW_UUID_LEN + 1],
                             char run_id[CGW_ID_MAX])
{
    const char *sp = memchr(s, ' ', len);
    if (!sp || (size_t)(sp - s) > CGW_UUID_LEN || len - (size_t)(sp - s) - 1 >= CGW_ID_MAX)
        return -1;
    memcpy(session_id, s, (size_t)(sp - s));
    session_id[sp - s] = '\0';
    memcpy(run_id, sp + 1, len - (size_t)(sp - s) - 1);
    run_id[len - (size_t)(sp - s) - 1] = '\0';
    if (!bus_id_valid(session_id, CGW_UUID_LEN) || !bus_id_valid(run_id, CGW_ID_MAX - 1))
        return -1;
    return 0;
}

enum cgw_err bus_host_spawn_pop(struct bus *b, const char *host, int64_t timeout_ms, bool *got,
                                char session_id[CGW_UUID_LEN + 1], char run_id[CGW_ID_MAX],
                                struct cgw_error *err)
{
    char key[BUS_KEY_MAX], secs[32];
    const redisReply *v;
    redisReply *r;
    enum cgw_err rc;

    *got = false;
    session_id[0] = run_id[0] = '\0';
    if ((rc = host_key(host, HK_SPAWN, key, err)) != CGW_OK)
        return rc;
    if (timeout_ms < 1 || timeout_ms > 60000)
        return cgw_error_set(err, CGW_ERR_INVALID, "bus: invalid spawn queue wait");
    snprintf(secs, sizeof secs, "%" PRId64 ".%03" PRId64, timeout_ms / 1000, timeout_ms % 1000);
    /* The socket must outwait BLPOP (as bus_ctl_pop does). Not retried: a request taken
     * by a BLPOP whose reply was lost is gone; its run's lease lapses (runner_lost). */
    b->extra_timeout_ms = timeout_ms;
    if (b->ctx)
        redisSetTimeout(b->ctx, bus_ms_to_tv(b->timeout_ms + b->extra_timeout_ms));
    rc = bus_cmd(b, 0, WANT_ARR | WANT_NIL, &r, err, 3, "BLPOP", key, secs);
    b->extra_timeout_ms = 0;
    if (b->ctx && redisSetTimeout(b->ctx, bus_ms_to_tv(b->timeout_ms)) != REDIS_OK)
        bus_drop(b);
    if (rc != CGW_OK)
        return rc;
    if (r->type == REDIS_REPLY_NIL) {
        freeReplyObject(r);
        return CGW_OK;
    }
    if (!(v = bus_reply_elem(r, 1, WANT_STR))) {
        freeReplyObject(r);
        return cgw_error_set(err, CGW_ERR_INTERNAL, "redis %s: unexpected BLPOP reply", b->address);
    }
    if (spawn_entry_parse(v->str, v->len, session_id, run_id) < 0)
        rc = cgw_error_set(err, CGW_ERR_INTERNAL, "redis %s: malformed spawn request in %s",
                           b->address, key);
    else
        *got = true;
    freeReplyObject(r);
    return rc;
}
