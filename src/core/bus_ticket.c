/* bus_ticket.c: the Redis side of subscribe tickets: a key per ticket hash, with a TTL. */
#include <stdio.h>
#include <string.h>

#include "core/bus_priv.h"

/* cgw:ticket:{<64 hex digits>}; -1 when hash_hex is not that. */
static int ticket_key(const char *hash_hex, char *key, size_t size)
{
    if (!hash_hex || strlen(hash_hex) != 64 || strspn(hash_hex, "0123456789abcdef") != 64)
        return -1;
    snprintf(key, size, "cgw:ticket:{%s}", hash_hex);
    return 0;
}

enum cgw_err bus_ticket_put(struct bus *b, const char *hash_hex, const char *value, int64_t ttl_s,
                            struct cgw_error *err)
{
    char key[BUS_KEY_MAX], ttl[24];
    redisReply *r;

    if (ticket_key(hash_hex, key, sizeof key) < 0 || !value || ttl_s < 1)
        return cgw_error_set(err, CGW_ERR_INVALID, "bus: invalid ticket");
    snprintf(ttl, sizeof ttl, "%lld", (long long)ttl_s);
    /* Not retried: after a lost reply the retry would find its own key (NX). */
    enum cgw_err rc =
        bus_cmd(b, 0, WANT_STATUS | WANT_NIL, &r, err, 6, "SET", key, value, "EX", ttl, "NX");
    if (rc != CGW_OK)
        return rc;
    if (r->type == REDIS_REPLY_NIL)
        rc = cgw_error_set(err, CGW_ERR_CONFLICT, "bus: ticket exists");
    freeReplyObject(r);
    return rc;
}

enum cgw_err bus_ticket_get(struct bus *b, const char *hash_hex, char **value, int64_t *ttl_ms,
                            struct cgw_error *err)
{
    char key[BUS_KEY_MAX];
    redisReply *r;

    *value = NULL;
    if (ttl_ms)
        *ttl_ms = -1;
    if (ticket_key(hash_hex, key, sizeof key) < 0)
        return cgw_error_set(err, CGW_ERR_INVALID, "bus: invalid ticket");
    enum cgw_err rc = bus_cmd(b, CMD_RETRY, WANT_STR | WANT_NIL, &r, err, 2, "GET", key);
    if (rc != CGW_OK)
        return rc;
    if (r->type == REDIS_REPLY_NIL)
        rc = cgw_error_set(err, CGW_ERR_NOT_FOUND, "ticket not found");
    else if (!(*value = bus_strndup(r->str, r->len)))
        rc = cgw_error_set(err, CGW_ERR_NOMEM, "bus: out of memory");
    freeReplyObject(r);
    /* The lifetime left, for a cache of the check (auth_cache.h): read after the value,
     * so it can only be shorter than the value's. Any failure leaves it unknown. */
    struct cgw_error ignored;
    if (rc == CGW_OK && ttl_ms &&
        bus_cmd(b, CMD_RETRY, WANT_INT, &r, &ignored, 2, "PTTL", key) == CGW_OK) {
        *ttl_ms = r->integer >= 0 ? (int64_t)r->integer : -1;
        freeReplyObject(r);
    }
    return rc;
}
