/* bus_sentinel.c: finds and connects to the Redis primary, directly or through Sentinel. */
#include "core/bus_sentinel.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/bus_priv.h"
#include "core/util.h"

#define SENTINEL_DEFAULT_PORT 26379
#define ENTRY_MAX (BUS_HOST_MAX + 16)

/* ---- parsing --------------------------------------------------------------------- */

static bool blank(char c)
{
    return c == ' ' || c == '\t';
}

/* One entry: "host:port", "[v6]:port" or a host alone (port 26379). */
static int sentinel_entry_parse(const char *s, size_t n, struct bus_hostport *out)
{
    char entry[ENTRY_MAX];
    const char *unix_path, *colon, *bracket;

    if (n == 0 || n >= sizeof entry)
        return -1;
    memcpy(entry, s, n);
    entry[n] = '\0';
    if (bus_address_parse(entry, &unix_path, out->host, sizeof out->host, &out->port) != 0 ||
        unix_path)
        return -1;
    colon = strrchr(entry, ':');
    bracket = strchr(entry, ']');
    if (!colon || (entry[0] == '[' && bracket && colon < bracket) ||
        (entry[0] != '[' && strchr(entry, ':') != colon))
        out->port = SENTINEL_DEFAULT_PORT; /* no port given */
    return 0;
}

int bus_sentinels_parse(const char *list, struct bus_sentinels *out)
{
    const char *p = list ? list : "";

    out->n = 0;
    while (blank(*p))
        p++;
    if (*p == '\0')
        return 0; /* no Sentinels: redis.address is used */
    for (;;) {
        const char *start = p, *end = strchr(p, ',');
        if (!end)
            end = p + strlen(p);
        while (start < end && blank(*start))
            start++;
        const char *stop = end;
        while (stop > start && blank(stop[-1]))
            stop--;
        if (out->n >= BUS_SENTINELS_MAX ||
            sentinel_entry_parse(start, (size_t)(stop - start), &out->at[out->n]) != 0)
            return -1; /* too many, malformed, or empty ("a,,b", a trailing comma) */
        out->n++;
        if (*end == '\0')
            return 0;
        p = end + 1;
    }
}

/* ---- setup ----------------------------------------------------------------------- */

static bool master_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= BUS_MASTER_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= ' ' || s[i] == 0x7f)
            return false;
    return true;
}

static char *dup_secret(const char *s, bool *nomem)
{
    char *d;
    if (!s || !s[0])
        return NULL;
    if (!(d = strdup(s)))
        *nomem = true;
    return d;
}

enum cgw_err bus_target_init(struct bus_target *t, const struct bus_config *cfg,
                             struct cgw_error *err)
{
    bool nomem = false;

    memset(t, 0, sizeof *t);
    t->timeout_ms = cfg->timeout_ms;
    if (bus_sentinels_parse(cfg->sentinels, &t->sentinels) != 0)
        return cgw_error_set(err, CGW_ERR_INVALID, "bus: bad redis.sentinels '%s'", cfg->sentinels);
    if (t->sentinels.n > 0) {
        const char *name = cfg->master_name && cfg->master_name[0] ? cfg->master_name : "chatgw";
        if (!master_name_ok(name))
            return cgw_error_set(err, CGW_ERR_INVALID, "bus: bad redis.master_name '%s'", name);
        snprintf(t->master_name, sizeof t->master_name, "%s", name);
    } else if (!cfg->address || !cfg->address[0]) {
        return cgw_error_set(err, CGW_ERR_INVALID, "bus: no Redis address");
    }
    t->address = strdup(cfg->address && cfg->address[0] ? cfg->address : t->master_name);
    t->password = dup_secret(cfg->password, &nomem);
    t->sentinel_password = dup_secret(cfg->sentinel_password, &nomem);
    if (!t->address || nomem) {
        bus_target_free(t);
        return cgw_error_set(err, CGW_ERR_NOMEM, "bus: out of memory");
    }
    if (t->sentinels.n == 0 && bus_address_parse(t->address, &t->unix_path, t->direct.host,
                                                 sizeof t->direct.host, &t->direct.port) != 0) {
        enum cgw_err rc =
            cgw_error_set(err, CGW_ERR_INVALID, "bus: bad Redis address '%s'", t->address);
        bus_target_free(t);
        return rc;
    }
    if (t->sentinels.n > 0)
        snprintf(t->current, sizeof t->current, "sentinel:%s", t->master_name);
    else
        snprintf(t->current, sizeof t->current, "%s", t->address);
    return CGW_OK;
}

static void wipe_free(char *s)
{
    if (s) {
        memset(s, 0, strlen(s));
        free(s);
    }
}

void bus_target_free(struct bus_target *t)
{
    free(t->address);
    wipe_free(t->password);
    wipe_free(t->sentinel_password);
    t->address = t->password = t->sentinel_password = NULL;
    t->unix_path = NULL;
}

/* ---- connecting ------------------------------------------------------------------ */

/* One command on a blocking context; NULL on I/O error (c->errstr says why). */
static redisReply *command(redisContext *c, int argc, const char **argv)
{
    struct sigpipe_guard g;
    size_t lens[4];
    redisReply *r;

    for (int i = 0; i < argc; i++)
        lens[i] = strlen(argv[i]);
    bus_sigpipe_block(&g);
    r = redisCommandArgv(c, argc, argv, lens);
    bus_sigpipe_restore(&g);
    return r;
}

/* Connects (timeout ms for connect and replies) and authenticates; NULL with err set. */
static redisContext *open_conn(const char *unix_path, const struct bus_hostport *hp,
                               const char *password, int64_t ms, const char *name,
                               struct cgw_error *err)
{
    /* err is never NULL: callers pass their own to read the code. */
    struct timeval tv = bus_ms_to_tv(ms);
    redisContext *c = unix_path ? redisConnectUnixWithTimeout(unix_path, tv)
                                : redisConnectWithTimeout(hp->host, hp->port, tv);
    redisReply *r;

    if (!c) {
        cgw_error_set(err, CGW_ERR_NOMEM, "redis %s: out of memory", name);
        return NULL;
    }
    if (c->err) {
        cgw_error_set(err, CGW_ERR_BACKEND, "redis %s: %s", name, c->errstr);
        redisFree(c);
        return NULL;
    }
    if (redisSetTimeout(c, tv) != REDIS_OK) {
        cgw_error_set(err, CGW_ERR_BACKEND, "redis %s: cannot set the timeout", name);
        redisFree(c);
        return NULL;
    }
    if (!unix_path)
        redisEnableKeepAlive(c); /* notice a vanished peer on long-idle connections */
    if (password) {
        const char *argv[2] = {"AUTH", password};
        if (!(r = command(c, 2, argv))) {
            cgw_error_set(err, CGW_ERR_BACKEND, "redis %s: AUTH: %s", name,
                          c->err ? c->errstr : "no reply");
            redisFree(c);
            return NULL;
        }
        if (r->type != REDIS_REPLY_STATUS) {
            cgw_error_set(err, CGW_ERR_BACKEND, "redis %s: AUTH: %s", name,
                          r->type == REDIS_REPLY_ERROR && r->str ? r->str : "unexpected reply");
            freeReplyObject(r);
            redisFree(c);
            return NULL;
        }
        freeReplyObject(r);
    }
    return c;
}

static void hostport_name(const struct bus_hostport *hp, char *buf, size_t n)
{
    snprintf(buf, n, strchr(hp->host, ':') ? "[%s]:%d" : "%s:%d", hp->host, hp->port);
}

/* Asks the Sentinels in order for the primary's address; CGW_OK with *out filled. */
static enum cgw_err lookup(const struct bus_target *t, struct bus_hostport *out,
                           struct cgw_error *err)
{
    enum cgw_err rc = CGW_ERR_BACKEND;
    char last[1024] = "no Sentinel configured";

    for (size_t i = 0; i < t->sentinels.n; i++) {
        const struct bus_hostport *s = &t->sentinels.at[i];
        const char *argv[3] = {"SENTINEL", "get-master-addr-by-name", t->master_name};
        char name[ENTRY_MAX + 16];
        struct cgw_error e;
        redisContext *c;
        redisReply *r;
        int64_t port;

        hostport_name(s, name, sizeof name);
        if (!(c = open_conn(NULL, s, t->sentinel_password, t->timeout_ms, name, &e))) {
            if (e.code == CGW_ERR_NOMEM)
                return cgw_error_set(err, e.code, "%s", e.text);
            snprintf(last, sizeof last, "%s", e.text);
            continue;
        }
        r = command(c, 3, argv);
        if (!r) {
            snprintf(last, sizeof last, "sentinel %s: %s", name, c->err ? c->errstr : "no reply");
        } else if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
                   r->element[0]->type == REDIS_REPLY_STRING &&
                   r->element[1]->type == REDIS_REPLY_STRING && r->element[0]->len > 0 &&
                   r->element[0]->len < sizeof out->host &&
                   cgw_parse_int64(r->element[1]->str, 1, 65535, &port) == 0) {
            memcpy(out->host, r->element[0]->str, r->element[0]->len + 1);
            out->port = (int)port;
            rc = CGW_OK;
        } else if (r->type == REDIS_REPLY_NIL) {
            snprintf(last, sizeof last, "sentinel %s does not know master %s", name,
                     t->master_name);
        } else {
            snprintf(last, sizeof last, "sentinel %s: %s", name,
                     r->type == REDIS_REPLY_ERROR && r->str ? r->str : "unexpected reply");
        }
        if (r)
            freeReplyObject(r);
        redisFree(c);
        if (rc == CGW_OK)
            return CGW_OK;
    }
    return cgw_error_set(err, CGW_ERR_BACKEND, "redis sentinel %s: no primary (%s)", t->master_name,
                         last);
}

/* Whether the server on c says ROLE master; err set when not. */
static bool role_master(redisContext *c, const char *name, struct cgw_error *err)
{
    const char *argv[1] = {"ROLE"};
    redisReply *r = command(c, 1, argv);
    bool ok;

    if (!r) {
        cgw_error_set(err, CGW_ERR_BACKEND, "redis %s: ROLE: %s", name,
                      c->err ? c->errstr : "no reply");
        return false;
    }
    ok = r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
         r->element[0]->type == REDIS_REPLY_STRING && strcmp(r->element[0]->str, "master") == 0;
    if (!ok)
        cgw_error_set(err, CGW_ERR_BACKEND, "redis %s: ROLE is %s, not master", name,
                      r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
                              r->element[0]->type == REDIS_REPLY_STRING
                          ? r->element[0]->str
                          : "unknown");
    freeReplyObject(r);
    return ok;
}

/* One round: look up, connect, check ROLE. */
static enum cgw_err sentinel_round(struct bus_target *t, redisContext **out, struct cgw_error *err)
{
    struct bus_hostport primary;
    struct cgw_error e;
    char name[ENTRY_MAX];
    redisContext *c;
    enum cgw_err rc = lookup(t, &primary, err);

    if (rc != CGW_OK)
        return rc;
    hostport_name(&primary, name, sizeof name);
    if (!(c = open_conn(NULL, &primary, t->password, t->timeout_ms, name, &e)))
        return cgw_error_set(err, e.code, "%s", e.text);
    if (!role_master(c, name, err)) {
        redisFree(c);
        return CGW_ERR_BACKEND;
    }
    snprintf(t->current, sizeof t->current, "%s", name);
    *out = c;
    return CGW_OK;
}

enum cgw_err bus_target_connect(struct bus_target *t, int64_t rw_timeout_ms,
                                struct redisContext **out, struct cgw_error *err)
{
    redisContext *c = NULL;
    enum cgw_err rc;

    *out = NULL;
    if (t->sentinels.n == 0) {
        struct cgw_error e;
        if (!(c = open_conn(t->unix_path, &t->direct, t->password, t->timeout_ms, t->address, &e)))
            return cgw_error_set(err, e.code, "%s", e.text);
    } else {
        int64_t start = cgw_mono_ms(), backoff = BUS_TARGET_BACKOFF_MIN_MS;
        for (;;) {
            rc = sentinel_round(t, &c, err);
            if (rc == CGW_OK)
                break;
            if (rc == CGW_ERR_NOMEM || cgw_mono_ms() - start + backoff >= t->timeout_ms)
                return rc;
            cgw_sleep_ms(backoff);
            backoff =
                backoff * 2 > BUS_TARGET_BACKOFF_MAX_MS ? BUS_TARGET_BACKOFF_MAX_MS : backoff * 2;
        }
    }
    if (rw_timeout_ms != t->timeout_ms &&
        redisSetTimeout(c, bus_ms_to_tv(rw_timeout_ms)) != REDIS_OK) {
        redisFree(c);
        return cgw_error_set(err, CGW_ERR_BACKEND, "redis %s: cannot set the timeout", t->current);
    }
    *out = c;
    return CGW_OK;
}
