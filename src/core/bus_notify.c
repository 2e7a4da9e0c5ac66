/* bus_notify.c: a non-blocking Redis subscriber on cgw:notify (hiredis 0.14). */
#include "core/bus_notify.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include <hiredis/hiredis.h>

#include "core/bus_priv.h"
#include "core/util.h"

#define NOTIFY_DEFAULT_TIMEOUT_MS 2000

struct bus_notify {
    redisContext *ctx;
    char address[BUS_HOST_MAX + 16]; /* the server it reached, for messages */
};

/* Session ids are made of the bus id alphabet (bus.h); anything else is not ours. */
static bool session_id_ok(const char *s, size_t len)
{
    if (len == 0 || len > CGW_UUID_LEN)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.' || c == ':'))
            return false;
    }
    return true;
}

/* Runs one blocking command during setup and checks its reply. */
static enum cgw_err setup_cmd(struct bus_notify *n, int argc, const char **argv,
                              bool (*good)(const redisReply *), struct cgw_error *err)
{
    struct sigpipe_guard g;
    size_t lens[4];
    for (int i = 0; i < argc; i++)
        lens[i] = strlen(argv[i]);
    bus_sigpipe_block(&g);
    redisReply *r = redisCommandArgv(n->ctx, argc, argv, lens);
    bus_sigpipe_restore(&g);
    if (!r)
        return cgw_error_set(err, CGW_ERR_BACKEND, "redis %s: %s: %s", n->address, argv[0],
                             n->ctx->err ? n->ctx->errstr : "no reply");
    enum cgw_err rc = CGW_OK;
    if (r->type == REDIS_REPLY_ERROR)
        rc = cgw_error_set(err, CGW_ERR_BACKEND, "redis %s: %s: %s", n->address, argv[0],
                           r->str ? r->str : "");
    else if (!good(r))
        rc = cgw_error_set(err, CGW_ERR_BACKEND, "redis %s: %s: unexpected reply", n->address,
                           argv[0]);
    freeReplyObject(r);
    return rc;
}

static bool subscribe_ok(const redisReply *r)
{
    return r->type == REDIS_REPLY_ARRAY && r->elements == 3 && r->element[0] &&
           r->element[0]->type == REDIS_REPLY_STRING &&
           strcmp(r->element[0]->str, "subscribe") == 0;
}

enum cgw_err bus_notify_open(const struct bus_config *cfg, struct bus_notify **out,
                             struct cgw_error *err)
{
    struct bus_config c;
    struct bus_target t;
    struct bus_notify *n;
    enum cgw_err rc;

    *out = NULL;
    if (!cfg)
        return cgw_error_set(err, CGW_ERR_INVALID, "bus: no Redis address");
    c = *cfg;
    c.timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : NOTIFY_DEFAULT_TIMEOUT_MS;
    if ((rc = bus_target_init(&t, &c, err)) != CGW_OK)
        return rc;
    if (!(n = calloc(1, sizeof *n))) {
        bus_target_free(&t);
        return cgw_error_set(err, CGW_ERR_NOMEM, "bus: out of memory");
    }
    /* The same lookup as the command connection's (the primary through Sentinel, ROLE
     * checked), AUTH included. Setup replies must come within the timeout; afterwards
     * the socket never blocks. */
    rc = bus_target_connect(&t, c.timeout_ms, &n->ctx, err);
    snprintf(n->address, sizeof n->address, "%s", t.current);
    bus_target_free(&t);
    if (rc != CGW_OK)
        goto fail;
    /* Channels are not per database: no SELECT. */
    const char *argv[2] = {"SUBSCRIBE", BUS_NOTIFY_CHANNEL};
    if ((rc = setup_cmd(n, 2, argv, subscribe_ok, err)) != CGW_OK)
        goto fail;

    int flags = fcntl(n->ctx->fd, F_GETFL);
    if (flags < 0 || fcntl(n->ctx->fd, F_SETFL, flags | O_NONBLOCK) < 0) {
        rc =
            cgw_error_set(err, CGW_ERR_BACKEND, "redis %s: fcntl: %s", n->address, strerror(errno));
        goto fail;
    }
    /* redisBufferRead treats EAGAIN as "try later" only without REDIS_BLOCK. */
    n->ctx->flags &= ~REDIS_BLOCK;
    *out = n;
    return CGW_OK;

fail:
    bus_notify_close(n);
    return rc;
}

int bus_notify_fd(const struct bus_notify *n)
{
    return n->ctx->fd;
}

/* A decimal number of at most 18 digits (no sign): 0, or -1 when it is not one. */
static int parse_num(const char *s, size_t len, int64_t *out)
{
    int64_t v = 0;
    if (len == 0 || len > 18)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

int bus_notify_parse(const char *payload, size_t len, struct bus_notify_msg *m, char *idbuf)
{
    memset(m, 0, sizeof *m);
    if (len > 6 && memcmp(payload, "!auth ", 6) == 0) {
        m->kind = BUS_NOTIFY_AUTH;
        return parse_num(payload + 6, len - 6, &m->epoch);
    }
    const char *sp = memchr(payload, ' ', len);
    size_t idlen = sp ? (size_t)(sp - payload) : len;
    if (!session_id_ok(payload, idlen))
        return -1;
    if (sp && parse_num(sp + 1, len - idlen - 1, &m->seq) < 0)
        return -1;
    memcpy(idbuf, payload, idlen);
    idbuf[idlen] = '\0';
    m->kind = BUS_NOTIFY_SESSION;
    m->session_id = idbuf;
    return 0;
}

/* One reply in subscribed mode: a message, or the echo of (un)subscribe/pong. */
static enum cgw_err handle_reply(struct bus_notify *n, const redisReply *r, bus_notify_fn fn,
                                 void *ctx, struct cgw_error *err)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 2 || !r->element[0] ||
        r->element[0]->type != REDIS_REPLY_STRING)
        return cgw_error_set(err, CGW_ERR_BACKEND, "redis %s: unexpected reply in subscribed mode",
                             n->address);
    const char *what = r->element[0]->str;
    if (strcmp(what, "message") == 0) {
        const redisReply *payload = r->elements == 3 ? r->element[2] : NULL;
        struct bus_notify_msg m;
        char id[CGW_UUID_LEN + 1];
        if (!payload || payload->type != REDIS_REPLY_STRING)
            return cgw_error_set(err, CGW_ERR_BACKEND, "redis %s: malformed message", n->address);
        if (bus_notify_parse(payload->str, payload->len, &m, id) == 0)
            fn(&m, ctx);
        return CGW_OK;
    }
    if (strcmp(what, "subscribe") == 0 || strcmp(what, "unsubscribe") == 0 ||
        strcmp(what, "pong") == 0)
        return CGW_OK;
    return cgw_error_set(err, CGW_ERR_BACKEND, "redis %s: unexpected \"%s\" in subscribed mode",
                         n->address, what);
}

enum cgw_err bus_notify_read(struct bus_notify *n, bus_notify_fn fn, void *ctx,
                             struct cgw_error *err)
{
    if (redisBufferRead(n->ctx) != REDIS_OK)
        return cgw_error_set(err, CGW_ERR_BACKEND, "redis %s: subscriber: %s", n->address,
                             n->ctx->errstr[0] ? n->ctx->errstr : "connection lost");
    for (;;) {
        void *reply = NULL;
        if (redisGetReplyFromReader(n->ctx, &reply) != REDIS_OK)
            return cgw_error_set(err, CGW_ERR_BACKEND, "redis %s: subscriber: %s", n->address,
                                 n->ctx->errstr[0] ? n->ctx->errstr : "protocol error");
        if (!reply)
            return CGW_OK;
        enum cgw_err rc = handle_reply(n, reply, fn, ctx, err);
        freeReplyObject(reply);
        if (rc != CGW_OK)
            return rc;
    }
}

bool bus_notify_partial(const struct bus_notify *n)
{
    const redisReader *r = n->ctx->reader;
    return r && r->buf && r->pos < r->len;
}

enum cgw_err bus_notify_auth_revoked(struct bus *b, int64_t *epoch, struct cgw_error *err)
{
    redisReply *r;
    char payload[32];

    /* Not retried: a retry after a lost reply would only count once more, harmless, but
     * the caller reports the failure anyway. */
    enum cgw_err rc = bus_cmd(b, 0, WANT_INT, &r, err, 2, "INCR", BUS_AUTH_EPOCH_KEY);
    if (rc != CGW_OK)
        return rc;
    long long n = r->integer;
    freeReplyObject(r);
    snprintf(payload, sizeof payload, "!auth %lld", n);
    if ((rc = bus_cmd(b, CMD_RETRY, WANT_INT, &r, err, 3, "PUBLISH", BUS_NOTIFY_CHANNEL,
                      payload)) != CGW_OK)
        return rc;
    freeReplyObject(r);
    if (epoch)
        *epoch = n;
    return CGW_OK;
}

void bus_notify_close(struct bus_notify *n)
{
    if (!n)
        return;
    if (n->ctx)
        redisFree(n->ctx);
    free(n);
}
