/* bus_ctl.c: the bus's control lists and permission requests. */
#include "core/bus_priv.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUS_PERM_TTL_S (7 * 86400) /* cgw:perm:{R}: outlives any permission wait we allow */
#define BUS_PERM_LIST_MAX 1000
#define BUS_REQUEST_ID_MAX 128

/* ---- control ------------------------------------------------------------------ */

enum cgw_err bus_ctl_push(struct bus *b, const char *session_id, const char *json,
                          struct cgw_error *err)
{
    struct bus_keys k;
    redisReply *r;
    enum cgw_err rc;

    if ((rc = bus_keys_make(session_id, &k, err)) != CGW_OK)
        return rc;
    if (!json || !json[0])
        return cgw_error_set(err, CGW_ERR_INVALID, "bus: empty control message");
    /* Not retried: a lost reply must not deliver the message twice. */
    rc = bus_cmd(b, 0, WANT_INT, &r, err, 3, "RPUSH", k.k[K_CTL], json);
    if (rc == CGW_OK)
        freeReplyObject(r);
    return rc;
}

enum cgw_err bus_ctl_pop(struct bus *b, const char *session_id, int64_t timeout_ms, char **json,
                         struct cgw_error *err)
{
    struct bus_keys k;
    const redisReply *v = NULL;
    redisReply *r;
    enum cgw_err rc;

    *json = NULL;
    if ((rc = bus_keys_make(session_id, &k, err)) != CGW_OK)
        return rc;
    if (timeout_ms < 0 || timeout_ms > 86400000)
        return cgw_error_set(err, CGW_ERR_INVALID, "bus: invalid control wait");
    if (timeout_ms == 0) {
        rc = bus_cmd(b, CMD_RETRY, WANT_STR | WANT_NIL, &r, err, 2, "LPOP", k.k[K_CTL]);
        if (rc != CGW_OK)
            return rc;
        v = r->type == REDIS_REPLY_STRING ? r : NULL;
    } else {
        char secs[32];
        snprintf(secs, sizeof(secs), "%" PRId64 ".%03" PRId64, timeout_ms / 1000,
                 timeout_ms % 1000);
        /* The socket must outwait BLPOP; a connection made meanwhile gets it too. */
        b->extra_timeout_ms = timeout_ms;
        if (b->ctx)
            redisSetTimeout(b->ctx, bus_ms_to_tv(b->timeout_ms + b->extra_timeout_ms));
        rc = bus_cmd(b, CMD_RETRY, WANT_ARR | WANT_NIL, &r, err, 3, "BLPOP", k.k[K_CTL], secs);
        b->extra_timeout_ms = 0;
        if (b->ctx && redisSetTimeout(b->ctx, bus_ms_to_tv(b->timeout_ms)) != REDIS_OK)
            bus_drop(b);
        if (rc != CGW_OK)
            return rc;
        if (r->type == REDIS_REPLY_ARRAY && !(v = bus_reply_elem(r, 1, WANT_STR))) {
            freeReplyObject(r);
            return cgw_error_set(err, CGW_ERR_INTERNAL, "redis %s: unexpected BLPOP reply",
                                 b->address);
        }
    }
    if (v && !(*json = bus_strndup(v->str, v->len)))
        rc = cgw_error_set(err, CGW_ERR_NOMEM, "bus: out of memory");
    freeReplyObject(r);
    return rc;
}

/* ---- permissions ------------------------------------------------------------------ */

static enum cgw_err perm_key(const char *request_id, char key[BUS_KEY_MAX + 64],
                             struct cgw_error *err)
{
    if (!bus_id_valid(request_id, BUS_REQUEST_ID_MAX))
        return cgw_error_set(err, CGW_ERR_INVALID, "bus: invalid permission request id");
    snprintf(key, BUS_KEY_MAX + 64, "cgw:perm:{%s}", request_id);
    return CGW_OK;
}

enum cgw_err bus_perm_add(struct bus *b, const char *session_id, const char *run_id,
                          const char *request_id, const char *json, struct cgw_error *err)
{
    struct bus_keys k;
    char pkey[BUS_KEY_MAX + 64], ttl[24];
    const char *keys[4], *args[3];
    redisReply *r;
    enum cgw_err rc;

    if ((rc = bus_keys_make(session_id, &k, err)) != CGW_OK ||
        (rc = perm_key(request_id, pkey, err)) != CGW_OK)
        return rc;
    if (!bus_id_valid(run_id, CGW_ID_MAX - 1) || !json || !json[0])
        return cgw_error_set(err, CGW_ERR_INVALID, "bus: invalid permission request");
    /* The mapping first: one left behind by a failed add is harmless (resolve then
     * finds nothing pending), a pending request without it could not be answered. */
    snprintf(ttl, sizeof(ttl), "%d", BUS_PERM_TTL_S);
    rc = bus_cmd(b, CMD_RETRY, WANT_STATUS, &r, err, 5, "SET", pkey, session_id, "EX", ttl);
    if (rc != CGW_OK)
        return rc;
    freeReplyObject(r);

    keys[0] = k.k[K_RUN];
    keys[1] = k.k[K_PENDING];
    keys[2] = k.k[K_RESOLVED];
    keys[3] = k.k[K_PENDORDER];
    args[0] = run_id;
    args[1] = request_id;
    args[2] = json;
    rc = bus_script(b, SCRIPT_PERM_ADD, CMD_RETRY, WANT_INT, 4, keys, 3, args, NULL, &r, err);
    if (rc == CGW_OK)
        freeReplyObject(r);
    return rc;
}

enum cgw_err bus_perm_session(struct bus *b, const char *request_id,
                              char session_id[CGW_UUID_LEN + 1], struct cgw_error *err)
{
    char pkey[BUS_KEY_MAX + 64];
    redisReply *r;
    enum cgw_err rc;

    session_id[0] = '\0';
    if ((rc = perm_key(request_id, pkey, err)) != CGW_OK)
        return rc;
    rc = bus_cmd(b, CMD_RETRY, WANT_STR | WANT_NIL, &r, err, 2, "GET", pkey);
    if (rc != CGW_OK)
        return rc;
    if (r->type == REDIS_REPLY_NIL)
        rc = cgw_error_set(err, CGW_ERR_NOT_FOUND, "permission request %s not found", request_id);
    else if (r->len > CGW_UUID_LEN)
        rc = cgw_error_set(err, CGW_ERR_INTERNAL, "redis %s: bad session of %s", b->address,
                           request_id);
    else
        memcpy(session_id, r->str, r->len + 1);
    freeReplyObject(r);
    return rc;
}

static enum cgw_err perm_finish(struct bus *b, const char *session_id, const char *request_id,
                                const char *outcome, const char *decision_json, unsigned flags,
                                struct cgw_error *err)
{
    struct bus_keys k;
    const char *keys[4], *args[3];
    struct cgw_error e;
    redisReply *r;
    enum cgw_err rc;

    if ((rc = bus_keys_make(session_id, &k, err)) != CGW_OK)
        return rc;
    if (!bus_id_valid(request_id, BUS_REQUEST_ID_MAX))
        return cgw_error_set(err, CGW_ERR_INVALID, "bus: invalid permission request id");
    keys[0] = k.k[K_PENDING];
    keys[1] = k.k[K_RESOLVED];
    keys[2] = k.k[K_CTL];
    keys[3] = k.k[K_PENDORDER];
    args[0] = request_id;
    args[1] = outcome;
    args[2] = decision_json;
    rc = bus_script(b, SCRIPT_PERM_RESOLVE, flags, WANT_INT, 4, keys, 3, args, NULL, &r, &e);
    if (rc == CGW_ERR_CONFLICT) /* "CONFLICT <earlier outcome>" */
        return cgw_error_set(err, CGW_ERR_CONFLICT, "permission request %s was already %s",
                             request_id,
                             strncmp(e.text, "CONFLICT ", 9) == 0 ? e.text + 9 : "answered");
    if (rc != CGW_OK) {
        if (err)
            *err = e;
        return rc;
    }
    freeReplyObject(r);
    return CGW_OK;
}

enum cgw_err bus_perm_resolve(struct bus *b, const char *session_id, const char *request_id,
                              bool allow, const char *decision_json, struct cgw_error *err)
{
    if (!decision_json || !decision_json[0])
        return cgw_error_set(err, CGW_ERR_INVALID, "bus: empty permission decision");
    /* Not retried: after a lost reply the retry would see our own answer as a
     * CONFLICT and tell the caller someone else won. */
    return perm_finish(b, session_id, request_id, allow ? "allow" : "deny", decision_json, 0, err);
}

enum cgw_err bus_perm_cancel(struct bus *b, const char *session_id, const char *request_id,
                             struct cgw_error *err)
{
    /* A repeated cancel is not a conflict (perm_resolve.lua), so this one retries. */
    return perm_finish(b, session_id, request_id, "cancelled", "", CMD_RETRY, err);
}

enum cgw_err bus_perm_list(struct bus *b, const char *session_id, char ***jsons, size_t *n,
                           struct cgw_error *err)
{
    struct bus_keys k;
    char stop[24];
    redisReply *ids = NULL, *vals = NULL;
    const char **argv = NULL;
    size_t *lens = NULL;
    char **list = NULL;
    size_t count = 0;
    enum cgw_err rc;

    *jsons = NULL;
    *n = 0;
    if ((rc = bus_keys_make(session_id, &k, err)) != CGW_OK)
        return rc;
    snprintf(stop, sizeof(stop), "%d", BUS_PERM_LIST_MAX - 1);
    rc = bus_cmd(b, CMD_RETRY, WANT_ARR, &ids, err, 4, "ZRANGE", k.k[K_PENDORDER], "0", stop);
    if (rc != CGW_OK)
        return rc;
    if (ids->elements == 0)
        goto out;

    /* HMGET pending id...: a request answered between the two commands reads as
     * nil and is skipped, as if the list had been taken a moment later. */
    argv = calloc(ids->elements + 2, sizeof(*argv));
    lens = calloc(ids->elements + 2, sizeof(*lens));
    list = calloc(ids->elements, sizeof(*list));
    if (!argv || !lens || !list) {
        rc = cgw_error_set(err, CGW_ERR_NOMEM, "bus: out of memory");
        goto out;
    }
    argv[0] = "HMGET";
    lens[0] = 5;
    argv[1] = k.k[K_PENDING];
    lens[1] = strlen(argv[1]);
    for (size_t i = 0; i < ids->elements; i++) {
        const redisReply *id = bus_reply_elem(ids, i, WANT_STR);
        if (!id) {
            rc = cgw_error_set(err, CGW_ERR_INTERNAL, "redis %s: bad ZRANGE reply", b->address);
            goto out;
        }
        argv[i + 2] = id->str;
        lens[i + 2] = id->len;
    }
    rc = bus_exec(b, CMD_RETRY, WANT_ARR, (int)ids->elements + 2, argv, lens, &vals, err);
    if (rc != CGW_OK)
        goto out;
    for (size_t i = 0; i < vals->elements; i++) {
        const redisReply *v = bus_reply_elem(vals, i, WANT_STR);
        if (!v)
            continue;
        if (!(list[count] = bus_strndup(v->str, v->len))) {
            rc = cgw_error_set(err, CGW_ERR_NOMEM, "bus: out of memory");
            goto out;
        }
        count++;
    }

out:
    if (ids)
        freeReplyObject(ids);
    if (vals)
        freeReplyObject(vals);
    free(argv);
    free(lens);
    if (rc != CGW_OK) {
        bus_strings_free(list, count);
        return rc;
    }
    if (count == 0) {
        free(list);
        list = NULL;
    }
    *jsons = list;
    *n = count;
    return CGW_OK;
}
