/* bus.c: the Redis bus on hiredis 0.14: connection, Lua scripts, runs, streams, permissions.
 *
 * Entry points: bus_open / bus_close; bus_run_claim, bus_run_set_runner, bus_run_get,
 * bus_event_publish, bus_run_complete, bus_lease_refresh, bus_runs_running,
 * bus_seq_get; bus_events_read; bus_ctl_push / bus_ctl_pop; bus_perm_add,
 * bus_perm_session, bus_perm_resolve, bus_perm_cancel, bus_perm_list.
 *
 * Connection states of one struct bus:
 *   DOWN       ctx == NULL. The next command connects: connect (timeout), AUTH,
 *              SELECT, SCRIPT LOAD of every script. Any failure: CGW_ERR_BACKEND, DOWN.
 *   UP         ctx != NULL, scripts loaded. A command that fails with an I/O error,
 *              EOF or timeout frees ctx (DOWN); a command marked retryable that was
 *              sent on a connection from an earlier call is run once more on a fresh
 *              one (a Redis restart between two calls costs the caller nothing).
 *              Before each command an idle connection that the server closed
 *              (readable while no reply is due) is dropped, so non-retryable
 *              commands are not sent into a dead socket either.
 * Run states (cgw:{S}:run status): none -> running (claim) -> completed (complete);
 * a new claim starts over from completed. The scripts in lua/ hold every check-and-set.
 *
 * All replies pass through bus_raw(), which checks the reply type against what the
 * caller expects and turns error replies into cgw_err; no redisReply leaves this file.
 */
#include "core/bus.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include <hiredis/hiredis.h>

#include "core/embedded.h"

#define BUS_DEFAULT_TIMEOUT_MS 2000
#define BUS_DEFAULT_MAXLEN 5000
#define BUS_DEFAULT_TTL_S 600
#define BUS_PERM_TTL_S (7 * 86400) /* cgw:perm:{R}: outlives any permission wait we allow */
#define BUS_PERM_LIST_MAX 1000
#define BUS_KEY_MAX 96
#define BUS_EVENT_ID_MAX 128
#define BUS_REQUEST_ID_MAX 128
#define BUS_SEQ_MAX ((int64_t)1 << 53) /* Lua numbers are doubles */
#define BUS_MAX_ARGS 24
#define BUS_RUNNING_KEY "cgw:running"

/* ---- tables ------------------------------------------------------------------ */

static const char *const run_status_names[] = {
    [RUN_NONE] = "none",
    [RUN_RUNNING] = "running",
    [RUN_COMPLETED] = "completed",
};

const char *run_status_name(enum run_status s)
{
    if ((unsigned)s > RUN_COMPLETED)
        return "none";
    return run_status_names[s];
}

static enum run_status run_status_parse(const char *s)
{
    for (unsigned i = RUN_RUNNING; i <= RUN_COMPLETED; i++)
        if (strcmp(s, run_status_names[i]) == 0)
            return (enum run_status)i;
    return RUN_NONE;
}

/* The keys of one session; claim and publish take all of them as KEYS, in this order. */
enum bus_key {
    K_RUN,
    K_SEQ,
    K_EVENTS,
    K_LEASE,
    K_CTL,
    K_PENDING,
    K_RESOLVED,
    K_PENDORDER,
    K__COUNT
};

static const char *const key_names[K__COUNT] = {
    [K_RUN] = "run",           [K_SEQ] = "seq",
    [K_EVENTS] = "events",     [K_LEASE] = "lease",
    [K_CTL] = "ctl",           [K_PENDING] = "pending",
    [K_RESOLVED] = "resolved", [K_PENDORDER] = "pendorder",
};

struct bus_keys {
    char buf[K__COUNT][BUS_KEY_MAX];
    const char *k[K__COUNT];
};

enum bus_script {
    SCRIPT_CLAIM,
    SCRIPT_PUBLISH,
    SCRIPT_LEASE,
    SCRIPT_READ,
    SCRIPT_PERM_ADD,
    SCRIPT_PERM_RESOLVE,
    SCRIPT_SET_RUNNER,
    SCRIPT_FEED,
    SCRIPT__COUNT
};

static const char *const script_files[SCRIPT__COUNT] = {
    [SCRIPT_CLAIM] = "claim.lua",           [SCRIPT_PUBLISH] = "publish.lua",
    [SCRIPT_LEASE] = "lease.lua",           [SCRIPT_READ] = "read.lua",
    [SCRIPT_PERM_ADD] = "perm_add.lua",     [SCRIPT_PERM_RESOLVE] = "perm_resolve.lua",
    [SCRIPT_SET_RUNNER] = "set_runner.lua", [SCRIPT_FEED] = "feed.lua",
};

/* Error replies by their first word. Our scripts answer STALE, CONFLICT, NOT_FOUND;
 * the others mean Redis is not serving right now (loading the AOF, a script busy,
 * bad credentials, a read-only replica, out of memory). Anything else is a bug. */
static const struct {
    const char *word;
    enum cgw_err code;
} reply_errors[] = {
    {"STALE", CGW_ERR_STALE},         {"CONFLICT", CGW_ERR_CONFLICT},
    {"NOT_FOUND", CGW_ERR_NOT_FOUND}, {"LOADING", CGW_ERR_BACKEND},
    {"BUSY", CGW_ERR_BACKEND},        {"NOAUTH", CGW_ERR_BACKEND},
    {"WRONGPASS", CGW_ERR_BACKEND},   {"MASTERDOWN", CGW_ERR_BACKEND},
    {"READONLY", CGW_ERR_BACKEND},    {"OOM", CGW_ERR_BACKEND},
    {"TRYAGAIN", CGW_ERR_BACKEND},    {"CLUSTERDOWN", CGW_ERR_BACKEND},
};

/* Reply types a caller accepts, as a mask of REDIS_REPLY_* bits. */
#define WANT_STR (1u << REDIS_REPLY_STRING)
#define WANT_ARR (1u << REDIS_REPLY_ARRAY)
#define WANT_INT (1u << REDIS_REPLY_INTEGER)
#define WANT_NIL (1u << REDIS_REPLY_NIL)
#define WANT_STATUS (1u << REDIS_REPLY_STATUS)

/* Command flags. */
#define CMD_RETRY 1u /* running it twice is harmless: retried once on a fresh connection */

struct bus {
    redisContext *ctx; /* NULL = DOWN */
    char *address;
    char *password;
    const char *unix_path; /* into address, or NULL for TCP */
    char host[256];
    int port;
    int64_t db;
    int64_t timeout_ms;
    int64_t extra_timeout_ms; /* added to the socket timeout while a BLPOP waits */
    int64_t stream_maxlen;
    int64_t stream_ttl_s;
    char sha[SCRIPT__COUNT][41];
    bool noscript; /* the last error reply was NOSCRIPT */
};

/* ---- small helpers ------------------------------------------------------------- */

/* Ids become parts of keys and of script error texts: a safe alphabet, no braces
 * (they would move the hash tag) and no blanks. */
static bool id_valid(const char *s, size_t max)
{
    size_t n = 0;
    if (!s)
        return false;
    for (; s[n]; n++) {
        char c = s[n];
        if (n >= max)
            return false;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.' || c == ':'))
            return false;
    }
    return n > 0;
}

static enum cgw_err bus_keys_make(const char *session_id, struct bus_keys *k, struct cgw_error *err)
{
    if (!id_valid(session_id, CGW_UUID_LEN))
        return cgw_error_set(err, CGW_ERR_INVALID, "bus: invalid session id");
    for (int i = 0; i < K__COUNT; i++) {
        snprintf(k->buf[i], sizeof(k->buf[i]), "cgw:{%s}:%s", session_id, key_names[i]);
        k->k[i] = k->buf[i];
    }
    return CGW_OK;
}

/* The position of the final '}' of an event object that has at least one member,
 * or 0 when json is not shaped like that. The script appends ,"seq":N} there. */
static size_t json_object_end(const char *json)
{
    size_t n, i = 0;
    if (!json)
        return 0;
    n = strlen(json);
    while (n > 0 && (json[n - 1] == ' ' || json[n - 1] == '\n' || json[n - 1] == '\r' ||
                     json[n - 1] == '\t'))
        n--;
    while (i < n && (json[i] == ' ' || json[i] == '\n' || json[i] == '\r' || json[i] == '\t'))
        i++;
    if (n < 2 || i >= n || json[i] != '{' || json[n - 1] != '}')
        return 0;
    for (size_t j = i + 1; j < n - 1; j++)
        if (json[j] != ' ' && json[j] != '\n' && json[j] != '\r' && json[j] != '\t')
            return n - 1;
    return 0;
}

static struct timeval ms_to_tv(int64_t ms)
{
    struct timeval tv = {.tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000};
    return tv;
}

static int reply_int64(const redisReply *r, int64_t *out)
{
    if (r->type == REDIS_REPLY_INTEGER) {
        *out = r->integer;
        return 0;
    }
    if (r->type == REDIS_REPLY_STRING)
        return cgw_parse_int64(r->str, INT64_MIN, INT64_MAX, out);
    return -1;
}

/* Element i of an array reply when its type is one of want, else NULL. */
static const redisReply *reply_elem(const redisReply *r, size_t i, unsigned want)
{
    if (r->type != REDIS_REPLY_ARRAY || i >= r->elements || !r->element[i])
        return NULL;
    return (want & (1u << r->element[i]->type)) ? r->element[i] : NULL;
}

/* "<seq>-0" -> seq */
static int entry_seq(const redisReply *id, int64_t *seq)
{
    char buf[32];
    const char *dash = memchr(id->str, '-', id->len);
    size_t n = dash ? (size_t)(dash - id->str) : id->len;
    if (n == 0 || n >= sizeof(buf))
        return -1;
    memcpy(buf, id->str, n);
    buf[n] = '\0';
    return cgw_parse_int64(buf, 1, INT64_MAX, seq);
}

static char *strndup_checked(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

/* ---- connection ------------------------------------------------------------- */

static void bus_drop(struct bus *b)
{
    if (b->ctx) {
        redisFree(b->ctx);
        b->ctx = NULL;
    }
}

/* hiredis 0.14 writes with write(2): a peer that went away raises SIGPIPE, which
 * kills a process that does not ignore it. Keep it blocked around our I/O and
 * swallow one that our write raised, so the library never depends on the caller. */
struct sigpipe_guard {
    sigset_t old;
    bool was_pending;
};

static void sigpipe_block(struct sigpipe_guard *g)
{
    sigset_t set, pending;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, &g->old);
    sigemptyset(&pending);
    sigpending(&pending);
    g->was_pending = sigismember(&pending, SIGPIPE) == 1;
}

static void sigpipe_restore(struct sigpipe_guard *g)
{
    sigset_t set, pending;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    sigemptyset(&pending);
    sigpending(&pending);
    if (!g->was_pending && sigismember(&pending, SIGPIPE) == 1) {
        struct timespec zero = {0, 0};
        while (sigtimedwait(&set, NULL, &zero) < 0 && errno == EINTR)
            ;
    }
    pthread_sigmask(SIG_SETMASK, &g->old, NULL);
}

static enum cgw_err bus_reply_error(struct bus *b, const char *cmd, const redisReply *r,
                                    struct cgw_error *err)
{
    const char *msg = r->str ? r->str : "";
    size_t wlen = strcspn(msg, " ");

    if (wlen == 8 && strncmp(msg, "NOSCRIPT", 8) == 0) {
        b->noscript = true;
        return cgw_error_set(err, CGW_ERR_INTERNAL, "redis %s: %s", b->address, msg);
    }
    for (size_t i = 0; i < sizeof(reply_errors) / sizeof(reply_errors[0]); i++) {
        if (strlen(reply_errors[i].word) == wlen && strncmp(msg, reply_errors[i].word, wlen) == 0) {
            if (reply_errors[i].code == CGW_ERR_BACKEND)
                return cgw_error_set(err, CGW_ERR_BACKEND, "redis %s: %s: %s", b->address, cmd,
                                     msg);
            return cgw_error_set(err, reply_errors[i].code, "%s", msg);
        }
    }
    return cgw_error_set(err, CGW_ERR_INTERNAL, "redis %s: %s: %s", b->address, cmd, msg);
}

/* The one place that runs a command and checks its reply: on the current
 * connection, no reconnect. An I/O error drops the connection (ctx becomes NULL,
 * which tells bus_exec that a retry may help). On success *out is a reply of one
 * of the types in want, for the caller to freeReplyObject(). */
static enum cgw_err bus_raw(struct bus *b, unsigned want, int argc, const char **argv,
                            const size_t *lens, redisReply **out, struct cgw_error *err)
{
    struct sigpipe_guard g;
    redisReply *r;
    enum cgw_err rc;
    int saved_errno;

    *out = NULL;
    b->noscript = false;
    sigpipe_block(&g);
    r = redisCommandArgv(b->ctx, argc, argv, lens);
    saved_errno = errno;
    sigpipe_restore(&g);
    if (!r) {
        const char *why = b->ctx->err ? b->ctx->errstr : "no reply";
        /* hiredis reports a socket timeout as EAGAIN from read(2). */
        if (b->ctx->err == REDIS_ERR_IO && (saved_errno == EAGAIN || saved_errno == EWOULDBLOCK))
            why = "timed out";
        rc = cgw_error_set(err, CGW_ERR_BACKEND, "redis %s: %s: %s", b->address, argv[0], why);
        bus_drop(b);
        return rc;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        rc = bus_reply_error(b, argv[0], r, err);
        freeReplyObject(r);
        return rc;
    }
    if (!(want & (1u << r->type))) {
        rc = cgw_error_set(err, CGW_ERR_INTERNAL, "redis %s: %s: unexpected reply type %d",
                           b->address, argv[0], r->type);
        freeReplyObject(r);
        return rc;
    }
    *out = r;
    return CGW_OK;
}

static const char *script_text(const char *name)
{
    for (const struct embedded_file *f = cgw_lua_scripts; f->name; f++)
        if (strcmp(f->name, name) == 0)
            return f->text;
    return NULL;
}

static enum cgw_err bus_load_scripts(struct bus *b, struct cgw_error *err)
{
    for (int i = 0; i < SCRIPT__COUNT; i++) {
        const char *text = script_text(script_files[i]);
        const char *argv[3] = {"SCRIPT", "LOAD", text};
        size_t lens[3] = {6, 4, 0};
        redisReply *r;
        enum cgw_err rc;

        if (!text)
            return cgw_error_set(err, CGW_ERR_INTERNAL, "bus: script %s is not built in",
                                 script_files[i]);
        lens[2] = strlen(text);
        rc = bus_raw(b, WANT_STR, 3, argv, lens, &r, err);
        if (rc != CGW_OK)
            return rc;
        if (r->len != 40) {
            freeReplyObject(r);
            return cgw_error_set(err, CGW_ERR_INTERNAL, "redis %s: SCRIPT LOAD: bad sha",
                                 b->address);
        }
        memcpy(b->sha[i], r->str, 40);
        b->sha[i][40] = '\0';
        freeReplyObject(r);
    }
    return CGW_OK;
}

static enum cgw_err bus_connect(struct bus *b, struct cgw_error *err)
{
    struct timeval tv = ms_to_tv(b->timeout_ms);
    redisContext *c;
    redisReply *r;
    enum cgw_err rc;

    bus_drop(b);
    c = b->unix_path ? redisConnectUnixWithTimeout(b->unix_path, tv)
                     : redisConnectWithTimeout(b->host, b->port, tv);
    if (!c)
        return cgw_error_set(err, CGW_ERR_BACKEND, "redis %s: out of memory", b->address);
    if (c->err) {
        rc = cgw_error_set(err, CGW_ERR_BACKEND, "redis %s: %s", b->address, c->errstr);
        redisFree(c);
        return rc;
    }
    if (redisSetTimeout(c, ms_to_tv(b->timeout_ms + b->extra_timeout_ms)) != REDIS_OK) {
        redisFree(c);
        return cgw_error_set(err, CGW_ERR_BACKEND, "redis %s: cannot set the timeout", b->address);
    }
    if (!b->unix_path)
        redisEnableKeepAlive(c); /* notice a vanished peer on long-idle connections */
    b->ctx = c;

    if (b->password) {
        const char *argv[2] = {"AUTH", b->password};
        size_t lens[2] = {4, strlen(b->password)};
        rc = bus_raw(b, WANT_STATUS, 2, argv, lens, &r, err);
        if (rc != CGW_OK)
            goto fail;
        freeReplyObject(r);
    }
    if (b->db > 0) {
        char db[24];
        const char *argv[2] = {"SELECT", db};
        size_t lens[2] = {6, 0};
        lens[1] = (size_t)snprintf(db, sizeof(db), "%" PRId64, b->db);
        rc = bus_raw(b, WANT_STATUS, 2, argv, lens, &r, err);
        if (rc != CGW_OK)
            goto fail;
        freeReplyObject(r);
    }
    rc = bus_load_scripts(b, err);
    if (rc != CGW_OK)
        goto fail;
    return CGW_OK;

fail:
    bus_drop(b);
    /* Whatever stopped the setup (bad password, LOADING, ...), Redis is not usable. */
    if (err)
        err->code = CGW_ERR_BACKEND;
    return CGW_ERR_BACKEND;
}

/* An idle connection has no reply due, so anything readable (EOF above all) means
 * the server closed it or broke the protocol: drop it instead of writing into it. */
static bool bus_conn_dead(const struct bus *b)
{
    struct pollfd p = {.fd = b->ctx->fd, .events = POLLIN};
    int n = poll(&p, 1, 0);
    return n > 0 || (n < 0 && errno != EINTR);
}

/* Makes sure there is a connection; *reused tells whether it predates this call. */
static enum cgw_err bus_ensure(struct bus *b, bool *reused, struct cgw_error *err)
{
    if (b->ctx && bus_conn_dead(b))
        bus_drop(b);
    *reused = b->ctx != NULL;
    if (b->ctx)
        return CGW_OK;
    return bus_connect(b, err);
}

/* Runs one command with connection management: connects when DOWN, and retries a
 * CMD_RETRY command once when a connection from an earlier call failed under it. */
static enum cgw_err bus_exec(struct bus *b, unsigned flags, unsigned want, int argc,
                             const char **argv, const size_t *lens, redisReply **out,
                             struct cgw_error *err)
{
    for (int attempt = 0;; attempt++) {
        bool reused;
        enum cgw_err rc = bus_ensure(b, &reused, err);
        if (rc != CGW_OK)
            return rc;
        rc = bus_raw(b, want, argc, argv, lens, out, err);
        if (rc == CGW_OK || b->ctx || !reused || attempt > 0 || !(flags & CMD_RETRY))
            return rc;
    }
}

/* A command from NUL-terminated strings. */
static enum cgw_err bus_cmd(struct bus *b, unsigned flags, unsigned want, redisReply **out,
                            struct cgw_error *err, int argc, ...)
{
    const char *argv[BUS_MAX_ARGS];
    size_t lens[BUS_MAX_ARGS];
    va_list ap;

    if (argc > BUS_MAX_ARGS)
        return cgw_error_set(err, CGW_ERR_INTERNAL, "bus: too many arguments");
    va_start(ap, argc);
    for (int i = 0; i < argc; i++) {
        argv[i] = va_arg(ap, const char *);
        lens[i] = strlen(argv[i]);
    }
    va_end(ap);
    return bus_exec(b, flags, want, argc, argv, lens, out, err);
}

/* EVALSHA of a script with KEYS keys[0..nkeys) and ARGV args[0..nargs) (lens of the
 * args given, or NULL for NUL-terminated ones). NOSCRIPT (SCRIPT FLUSH, a Redis
 * restarted under a kept connection) means nothing ran: reload and run once more. */
static enum cgw_err bus_script(struct bus *b, enum bus_script s, unsigned flags, unsigned want,
                               int nkeys, const char *const *keys, int nargs,
                               const char *const *args, const size_t *arglens, redisReply **out,
                               struct cgw_error *err)
{
    const char *argv[BUS_MAX_ARGS];
    size_t lens[BUS_MAX_ARGS];
    char nk[8];
    int argc = 0;
    enum cgw_err rc;

    if (3 + nkeys + nargs > BUS_MAX_ARGS)
        return cgw_error_set(err, CGW_ERR_INTERNAL, "bus: too many script arguments");
    snprintf(nk, sizeof(nk), "%d", nkeys);
    argv[argc++] = "EVALSHA";
    argv[argc++] = b->sha[s];
    argv[argc++] = nk;
    for (int i = 0; i < nkeys; i++)
        argv[argc++] = keys[i];
    for (int i = 0; i < nargs; i++)
        argv[argc++] = args[i];
    for (int i = 0; i < argc; i++)
        lens[i] = strlen(argv[i]);
    if (arglens)
        for (int i = 0; i < nargs; i++)
            lens[3 + nkeys + i] = arglens[i];

    /* The sha is filled in by the connect that bus_exec may do first. */
    lens[1] = 40;
    rc = bus_exec(b, flags, want, argc, argv, lens, out, err);
    if (rc != CGW_OK && b->noscript && b->ctx) {
        rc = bus_load_scripts(b, err);
        if (rc != CGW_OK) {
            bus_drop(b);
            return rc;
        }
        rc = bus_exec(b, flags, want, argc, argv, lens, out, err);
    }
    return rc;
}

/* ---- open / close / ping --------------------------------------------------------- */

enum cgw_err bus_open(const struct bus_config *cfg, bool lazy, struct bus **out,
                      struct cgw_error *err)
{
    struct bus *b;
    enum cgw_err rc;

    *out = NULL;
    if (!cfg || !cfg->address || !cfg->address[0])
        return cgw_error_set(err, CGW_ERR_INVALID, "bus: no Redis address");
    b = calloc(1, sizeof(*b));
    if (!b)
        return cgw_error_set(err, CGW_ERR_NOMEM, "bus: out of memory");
    b->address = strdup(cfg->address);
    if (cfg->password && cfg->password[0])
        b->password = strdup(cfg->password);
    if (!b->address || (cfg->password && cfg->password[0] && !b->password)) {
        bus_close(b);
        return cgw_error_set(err, CGW_ERR_NOMEM, "bus: out of memory");
    }
    b->db = cfg->db;
    b->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : BUS_DEFAULT_TIMEOUT_MS;
    b->stream_maxlen = cfg->stream_maxlen > 0 ? cfg->stream_maxlen : BUS_DEFAULT_MAXLEN;
    b->stream_ttl_s = cfg->stream_ttl_s >= 0 ? cfg->stream_ttl_s : BUS_DEFAULT_TTL_S;

    if (strncmp(b->address, "unix:", 5) == 0) {
        b->unix_path = b->address + 5;
    } else if (b->address[0] == '/') {
        b->unix_path = b->address;
    } else {
        /* host:port, [v6]:port, or a host alone (port 6379). */
        const char *a = b->address, *colon = strrchr(a, ':'), *hend;
        int64_t port = 6379;
        if (a[0] == '[') {
            const char *close = strchr(a, ']');
            if (!close || (close[1] != '\0' && close[1] != ':'))
                goto bad_address;
            a++;
            hend = close;
            colon = close[1] == ':' ? close + 1 : NULL;
        } else {
            if (colon && strchr(a, ':') != colon)
                colon = NULL; /* a bare IPv6 address */
            hend = colon ? colon : a + strlen(a);
        }
        if (colon && cgw_parse_int64(colon + 1, 1, 65535, &port) != 0)
            goto bad_address;
        if (hend == a || (size_t)(hend - a) >= sizeof(b->host))
            goto bad_address;
        memcpy(b->host, a, (size_t)(hend - a));
        b->host[hend - a] = '\0';
        b->port = (int)port;
    }
    if (b->unix_path && !b->unix_path[0])
        goto bad_address;

    if (!lazy) {
        rc = bus_connect(b, err);
        if (rc != CGW_OK) {
            bus_close(b);
            return rc;
        }
    }
    *out = b;
    return CGW_OK;

bad_address:
    rc = cgw_error_set(err, CGW_ERR_INVALID, "bus: bad Redis address '%s'", b->address);
    bus_close(b);
    return rc;
}

void bus_close(struct bus *b)
{
    if (!b)
        return;
    bus_drop(b);
    free(b->address);
    if (b->password) {
        memset(b->password, 0, strlen(b->password));
        free(b->password);
    }
    free(b);
}

enum cgw_err bus_ping(struct bus *b, struct cgw_error *err)
{
    redisReply *r;
    enum cgw_err rc = bus_cmd(b, CMD_RETRY, WANT_STATUS, &r, err, 1, "PING");
    if (rc == CGW_OK)
        freeReplyObject(r);
    return rc;
}

/* ---- runs ------------------------------------------------------------------------ */

/* Drops the session from cgw:running unless a new run was claimed meanwhile. The
 * claim sets the status before its SADD, so checking the status after the SREM
 * and adding back when it runs again never loses a running session. */
static enum cgw_err bus_running_forget(struct bus *b, const char *session_id,
                                       const struct bus_keys *k, struct cgw_error *err)
{
    redisReply *r;
    enum cgw_err rc;
    bool running;

    rc = bus_cmd(b, CMD_RETRY, WANT_INT, &r, err, 3, "SREM", BUS_RUNNING_KEY, session_id);
    if (rc != CGW_OK)
        return rc;
    freeReplyObject(r);
    rc = bus_cmd(b, CMD_RETRY, WANT_STR | WANT_NIL, &r, err, 3, "HGET", k->k[K_RUN], "status");
    if (rc != CGW_OK)
        return rc;
    running = r->type == REDIS_REPLY_STRING && strcmp(r->str, "running") == 0;
    freeReplyObject(r);
    if (!running)
        return CGW_OK;
    rc = bus_cmd(b, CMD_RETRY, WANT_INT, &r, err, 3, "SADD", BUS_RUNNING_KEY, session_id);
    if (rc == CGW_OK)
        freeReplyObject(r);
    return rc;
}

static enum cgw_err bus_running_add(struct bus *b, const char *session_id, struct cgw_error *err)
{
    redisReply *r;
    enum cgw_err rc =
        bus_cmd(b, CMD_RETRY, WANT_INT, &r, err, 3, "SADD", BUS_RUNNING_KEY, session_id);
    if (rc == CGW_OK)
        freeReplyObject(r);
    return rc;
}

enum cgw_err bus_run_claim(struct bus *b, const struct bus_claim *c, int64_t *last_seq,
                           char running_run_id[CGW_ID_MAX], struct cgw_error *err)
{
    struct bus_keys k;
    char owner[24], hwm[24], lease[24], now[24];
    const char *args[7];
    struct cgw_error e;
    redisReply *r;
    enum cgw_err rc;

    if (running_run_id)
        running_run_id[0] = '\0';
    if (!c)
        return cgw_error_set(err, CGW_ERR_INVALID, "bus: no claim");
    if ((rc = bus_keys_make(c->session_id, &k, err)) != CGW_OK)
        return rc;
    if (!id_valid(c->run_id, CGW_ID_MAX - 1))
        return cgw_error_set(err, CGW_ERR_INVALID, "bus: invalid run id");
    if (!c->provider || !c->provider[0] ||
        strlen(c->provider) >= sizeof(((struct bus_run *)0)->provider))
        return cgw_error_set(err, CGW_ERR_INVALID, "bus: invalid provider");
    if (c->hwm_seq < 0 || c->hwm_seq >= BUS_SEQ_MAX || c->lease_ms <= 0)
        return cgw_error_set(err, CGW_ERR_INVALID, "bus: invalid claim numbers");

    snprintf(owner, sizeof(owner), "%" PRId64, c->owner);
    snprintf(hwm, sizeof(hwm), "%" PRId64, c->hwm_seq);
    snprintf(lease, sizeof(lease), "%" PRId64, c->lease_ms);
    snprintf(now, sizeof(now), "%" PRId64, cgw_now_ms());
    args[0] = c->run_id;
    args[1] = c->provider;
    args[2] = owner;
    args[3] = c->request_json ? c->request_json : "";
    args[4] = hwm;
    args[5] = lease;
    args[6] = now;

    /* In cgw:running before the claim too, so that a failure between the script and
     * the SADD after it cannot hide a running run from the reaper; a stray member is
     * cleaned by bus_runs_running. */
    rc = bus_running_add(b, c->session_id, err);
    if (rc != CGW_OK)
        return rc;
    rc = bus_script(b, SCRIPT_CLAIM, CMD_RETRY, WANT_INT, K__COUNT, k.k, 7, args, NULL, &r, &e);
    if (rc == CGW_ERR_CONFLICT) {
        /* "CONFLICT <runId>" from claim.lua */
        char other[CGW_ID_MAX] = "";
        const char *p = strchr(e.text, ' ');
        if (p) {
            size_t n = strcspn(p + 1, " ");
            if (n < sizeof(other)) {
                memcpy(other, p + 1, n);
                other[n] = '\0';
            }
        }
        if (running_run_id)
            memcpy(running_run_id, other, sizeof(other));
        return cgw_error_set(err, CGW_ERR_CONFLICT, "session %s: run %s is running", c->session_id,
                             other);
    }
    if (rc != CGW_OK) {
        if (err)
            *err = e;
        return rc;
    }
    if (last_seq)
        *last_seq = r->integer;
    freeReplyObject(r);
    return bus_running_add(b, c->session_id, err);
}

enum cgw_err bus_run_set_runner(struct bus *b, const char *session_id, const char *run_id,
                                const char *host, int64_t pid, struct cgw_error *err)
{
    struct bus_keys k;
    char pidbuf[24];
    const char *args[3];
    redisReply *r;
    enum cgw_err rc;

    if ((rc = bus_keys_make(session_id, &k, err)) != CGW_OK)
        return rc;
    if (!id_valid(run_id, CGW_ID_MAX - 1))
        return cgw_error_set(err, CGW_ERR_INVALID, "bus: invalid run id");
    snprintf(pidbuf, sizeof(pidbuf), "%" PRId64, pid);
    args[0] = run_id;
    args[1] = host ? host : "";
    args[2] = pidbuf;
    rc = bus_script(b, SCRIPT_SET_RUNNER, CMD_RETRY, WANT_INT, 1, &k.k[K_RUN], 3, args, NULL, &r,
                    err);
    if (rc == CGW_OK)
        freeReplyObject(r);
    return rc;
}

/* How the run hash's fields land in struct bus_run. */
enum field_kind { F_STR, F_INT, F_STATUS };
#define RUN_FIELD(name, kind, member)                                                              \
    {                                                                                              \
        name, kind, offsetof(struct bus_run, member), sizeof(((struct bus_run *)0)->member)        \
    }
static const struct {
    const char *name;
    enum field_kind kind;
    size_t off;
    size_t size;
} run_fields[] = {
    RUN_FIELD("runId", F_STR, run_id),           RUN_FIELD("status", F_STATUS, status),
    RUN_FIELD("provider", F_STR, provider),      RUN_FIELD("owner", F_INT, owner),
    RUN_FIELD("runnerHost", F_STR, runner_host), RUN_FIELD("runnerPid", F_INT, runner_pid),
    RUN_FIELD("startedMs", F_INT, started_ms),   RUN_FIELD("completedMs", F_INT, completed_ms),
};

enum cgw_err bus_run_get(struct bus *b, const char *session_id, struct bus_run *out,
                         char **request_json, struct cgw_error *err)
{
    struct bus_keys k;
    redisReply *r;
    enum cgw_err rc;
    char *request = NULL;

    memset(out, 0, sizeof(*out));
    if (request_json)
        *request_json = NULL;
    if ((rc = bus_keys_make(session_id, &k, err)) != CGW_OK)
        return rc;
    rc = bus_cmd(b, CMD_RETRY, WANT_ARR, &r, err, 2, "HGETALL", k.k[K_RUN]);
    if (rc != CGW_OK)
        return rc;
    if (r->elements == 0) {
        freeReplyObject(r);
        return cgw_error_set(err, CGW_ERR_NOT_FOUND, "session %s has no run", session_id);
    }
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        const redisReply *name = reply_elem(r, i, WANT_STR);
        const redisReply *val = reply_elem(r, i + 1, WANT_STR);
        if (!name || !val)
            continue;
        if (strcmp(name->str, "request") == 0) {
            if (request_json && !request && !(request = strndup_checked(val->str, val->len))) {
                freeReplyObject(r);
                return cgw_error_set(err, CGW_ERR_NOMEM, "bus: out of memory");
            }
            continue;
        }
        for (size_t f = 0; f < sizeof(run_fields) / sizeof(run_fields[0]); f++) {
            char *dst = (char *)out + run_fields[f].off;
            if (strcmp(name->str, run_fields[f].name) != 0)
                continue;
            if (run_fields[f].kind == F_STR)
                snprintf(dst, run_fields[f].size, "%s", val->str);
            else if (run_fields[f].kind == F_STATUS)
                *(enum run_status *)(void *)dst = run_status_parse(val->str);
            else if (cgw_parse_int64(val->str, INT64_MIN, INT64_MAX, (int64_t *)(void *)dst))
                *(int64_t *)(void *)dst = 0;
            break;
        }
    }
    freeReplyObject(r);

    rc = bus_seq_get(b, session_id, &out->last_seq, err);
    if (rc == CGW_OK)
        rc = bus_cmd(b, CMD_RETRY, WANT_INT, &r, err, 2, "EXISTS", k.k[K_LEASE]);
    if (rc != CGW_OK) {
        free(request);
        return rc;
    }
    out->lease_alive = r->integer > 0;
    freeReplyObject(r);
    if (request_json)
        *request_json = request;
    return CGW_OK;
}

/* publish.lua's modes. */
static const char *const publish_modes[] = {"publish", "complete", "reap"};
enum publish_mode { MODE_PUBLISH, MODE_COMPLETE, MODE_REAP };

static enum cgw_err bus_publish_mode(struct bus *b, const char *session_id, const char *run_id,
                                     const char *event_id, const char *json, enum publish_mode mode,
                                     int64_t *seq, struct cgw_error *err)
{
    struct bus_keys k;
    char maxlen[24], now[24], ttl[24];
    const char *args[8];
    size_t lens[8];
    size_t end;
    redisReply *r;
    enum cgw_err rc;

    if ((rc = bus_keys_make(session_id, &k, err)) != CGW_OK)
        return rc;
    if (!id_valid(run_id, CGW_ID_MAX - 1))
        return cgw_error_set(err, CGW_ERR_INVALID, "bus: invalid run id");
    if (!id_valid(event_id, BUS_EVENT_ID_MAX))
        return cgw_error_set(err, CGW_ERR_INVALID, "bus: invalid event id");
    end = json_object_end(json);
    if (end == 0)
        return cgw_error_set(err, CGW_ERR_INVALID, "bus: event is not a non-empty JSON object");

    snprintf(maxlen, sizeof(maxlen), "%" PRId64, b->stream_maxlen);
    snprintf(now, sizeof(now), "%" PRId64, cgw_now_ms());
    snprintf(ttl, sizeof(ttl), "%" PRId64, b->stream_ttl_s);
    args[0] = run_id;
    args[1] = event_id;
    args[2] = json;
    args[3] = maxlen;
    args[4] = publish_modes[mode];
    args[5] = now;
    args[6] = ttl;
    args[7] = session_id;
    for (int i = 0; i < 8; i++)
        lens[i] = strlen(args[i]);
    lens[2] = end; /* the object without its final '}' */

    rc = bus_script(b, SCRIPT_PUBLISH, CMD_RETRY, WANT_INT, K__COUNT, k.k, 8, args, lens, &r, err);
    if (rc != CGW_OK)
        return rc;
    if (seq)
        *seq = r->integer;
    freeReplyObject(r);
    if (mode != MODE_PUBLISH) {
        /* The run is completed whatever happens here; a stray cgw:running member is
         * only cleaned later by bus_runs_running. */
        struct cgw_error ignored;
        bus_running_forget(b, session_id, &k, &ignored);
    }
    return CGW_OK;
}

enum cgw_err bus_event_publish(struct bus *b, const char *session_id, const char *run_id,
                               const char *event_id, const char *json, int64_t *seq,
                               struct cgw_error *err)
{
    return bus_publish_mode(b, session_id, run_id, event_id, json, MODE_PUBLISH, seq, err);
}

enum cgw_err bus_run_complete(struct bus *b, const char *session_id, const char *run_id,
                              const char *event_id, const char *json, bool only_if_lease_expired,
                              int64_t *seq, struct cgw_error *err)
{
    return bus_publish_mode(b, session_id, run_id, event_id, json,
                            only_if_lease_expired ? MODE_REAP : MODE_COMPLETE, seq, err);
}

enum cgw_err bus_lease_refresh(struct bus *b, const char *session_id, const char *run_id,
                               int64_t lease_ms, struct cgw_error *err)
{
    struct bus_keys k;
    char ms[24];
    const char *keys[2], *args[2];
    redisReply *r;
    enum cgw_err rc;

    if ((rc = bus_keys_make(session_id, &k, err)) != CGW_OK)
        return rc;
    if (!id_valid(run_id, CGW_ID_MAX - 1) || lease_ms <= 0)
        return cgw_error_set(err, CGW_ERR_INVALID, "bus: invalid lease refresh");
    snprintf(ms, sizeof(ms), "%" PRId64, lease_ms);
    keys[0] = k.k[K_RUN];
    keys[1] = k.k[K_LEASE];
    args[0] = run_id;
    args[1] = ms;
    rc = bus_script(b, SCRIPT_LEASE, CMD_RETRY, WANT_INT, 2, keys, 2, args, NULL, &r, err);
    if (rc == CGW_OK)
        freeReplyObject(r);
    return rc;
}

void bus_strings_free(char **list, size_t n)
{
    if (!list)
        return;
    for (size_t i = 0; i < n; i++)
        free(list[i]);
    free(list);
}

enum cgw_err bus_runs_running(struct bus *b, char ***ids, size_t *n, struct cgw_error *err)
{
    redisReply *members;
    char **list;
    size_t count = 0;
    enum cgw_err rc;

    *ids = NULL;
    *n = 0;
    rc = bus_cmd(b, CMD_RETRY, WANT_ARR, &members, err, 2, "SMEMBERS", BUS_RUNNING_KEY);
    if (rc != CGW_OK)
        return rc;
    list = calloc(members->elements + 1, sizeof(*list));
    if (!list) {
        freeReplyObject(members);
        return cgw_error_set(err, CGW_ERR_NOMEM, "bus: out of memory");
    }
    for (size_t i = 0; i < members->elements; i++) {
        const redisReply *m = reply_elem(members, i, WANT_STR);
        struct bus_keys k;
        redisReply *r;
        bool running;

        if (!m)
            continue;
        if (bus_keys_make(m->str, &k, NULL) != CGW_OK) {
            /* Not ours: drop it. */
            rc = bus_cmd(b, CMD_RETRY, WANT_INT, &r, err, 3, "SREM", BUS_RUNNING_KEY, m->str);
            if (rc != CGW_OK)
                goto fail;
            freeReplyObject(r);
            continue;
        }
        rc = bus_cmd(b, CMD_RETRY, WANT_STR | WANT_NIL, &r, err, 3, "HGET", k.k[K_RUN], "status");
        if (rc != CGW_OK)
            goto fail;
        running = r->type == REDIS_REPLY_STRING && strcmp(r->str, "running") == 0;
        freeReplyObject(r);
        if (!running) {
            rc = bus_running_forget(b, m->str, &k, err);
            if (rc != CGW_OK)
                goto fail;
            continue;
        }
        if (!(list[count] = strdup(m->str))) {
            rc = cgw_error_set(err, CGW_ERR_NOMEM, "bus: out of memory");
            goto fail;
        }
        count++;
    }
    freeReplyObject(members);
    *ids = list;
    *n = count;
    return CGW_OK;

fail:
    freeReplyObject(members);
    bus_strings_free(list, count);
    return rc;
}

enum cgw_err bus_seq_get(struct bus *b, const char *session_id, int64_t *seq, struct cgw_error *err)
{
    struct bus_keys k;
    redisReply *r;
    enum cgw_err rc;

    *seq = 0;
    if ((rc = bus_keys_make(session_id, &k, err)) != CGW_OK)
        return rc;
    rc = bus_cmd(b, CMD_RETRY, WANT_STR | WANT_NIL, &r, err, 2, "GET", k.k[K_SEQ]);
    if (rc != CGW_OK)
        return rc;
    if (r->type == REDIS_REPLY_STRING && reply_int64(r, seq) != 0)
        rc = cgw_error_set(err, CGW_ERR_INTERNAL, "redis %s: bad seq counter of %s", b->address,
                           session_id);
    freeReplyObject(r);
    return rc;
}

/* ---- reading ------------------------------------------------------------------- */

void bus_read_free(struct bus_read *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++)
        free(r->events[i].json);
    free(r->events);
    r->events = NULL;
    r->n = 0;
}

/* Reads a stream with read.lua: keys[0] its counter, keys[1] the stream, keys[2] the run
 * hash (a session's; any missing key for a feed). label names it in errors. */
static enum cgw_err read_stream(struct bus *b, const char *const keys[3], const char *label,
                                int64_t after_seq, int64_t max_count, int64_t max_bytes,
                                struct bus_read *out, struct cgw_error *err)
{
    char after[24], count[24], bytes[24];
    const char *args[3];
    const redisReply *last, *first, *status, *run_id, *more, *entries;
    redisReply *r;
    enum cgw_err rc;

    if (after_seq < 0 || after_seq >= BUS_SEQ_MAX || max_count < 0)
        return cgw_error_set(err, CGW_ERR_INVALID, "bus: invalid read range");
    if (max_count > 100000)
        max_count = 100000;
    snprintf(after, sizeof(after), "%" PRId64, after_seq);
    snprintf(count, sizeof(count), "%" PRId64, max_count);
    snprintf(bytes, sizeof(bytes), "%" PRId64, max_bytes > 0 ? max_bytes : 0);
    args[0] = after;
    args[1] = count;
    args[2] = bytes;
    rc = bus_script(b, SCRIPT_READ, CMD_RETRY, WANT_ARR, 3, keys, 3, args, NULL, &r, err);
    if (rc != CGW_OK)
        return rc;

    last = reply_elem(r, 0, WANT_INT);
    first = reply_elem(r, 1, WANT_INT);
    status = reply_elem(r, 2, WANT_STR);
    run_id = reply_elem(r, 3, WANT_STR);
    more = reply_elem(r, 4, WANT_INT);
    entries = reply_elem(r, 5, WANT_ARR);
    if (!last || !first || !status || !run_id || !more || !entries || entries->elements % 2) {
        rc = cgw_error_set(err, CGW_ERR_INTERNAL, "redis %s: unexpected read reply", b->address);
        goto out;
    }
    out->last_seq = last->integer;
    out->first_seq = first->integer;
    out->more = more->integer != 0;
    out->status = run_status_parse(status->str);
    snprintf(out->run_id, sizeof(out->run_id), "%s", run_id->str);
    /* A hole: events after the cursor existed (the counter is past it) but the
     * stream no longer starts right after it, or is gone altogether. */
    if (out->first_seq > 0)
        out->truncated = after_seq < out->first_seq - 1 && after_seq < out->last_seq;
    else
        out->truncated = after_seq < out->last_seq;

    if (entries->elements > 0) {
        out->events = calloc(entries->elements / 2, sizeof(*out->events));
        if (!out->events) {
            rc = cgw_error_set(err, CGW_ERR_NOMEM, "bus: out of memory");
            goto out;
        }
    }
    for (size_t i = 0; i + 1 < entries->elements; i += 2) {
        const redisReply *id = reply_elem(entries, i, WANT_STR);
        const redisReply *json = reply_elem(entries, i + 1, WANT_STR);
        struct bus_event *ev = &out->events[out->n];
        if (!id || !json || entry_seq(id, &ev->seq) != 0) {
            rc = cgw_error_set(err, CGW_ERR_INTERNAL, "redis %s: bad stream entry of %s",
                               b->address, label);
            goto out;
        }
        if (!(ev->json = strndup_checked(json->str, json->len))) {
            rc = cgw_error_set(err, CGW_ERR_NOMEM, "bus: out of memory");
            goto out;
        }
        ev->len = json->len;
        out->n++;
    }

out:
    freeReplyObject(r);
    if (rc != CGW_OK)
        bus_read_free(out);
    return rc;
}

enum cgw_err bus_events_read(struct bus *b, const char *session_id, int64_t after_seq,
                             int64_t max_count, int64_t max_bytes, struct bus_read *out,
                             struct cgw_error *err)
{
    struct bus_keys k;
    enum cgw_err rc;

    memset(out, 0, sizeof(*out));
    if ((rc = bus_keys_make(session_id, &k, err)) != CGW_OK)
        return rc;
    const char *keys[3] = {k.k[K_SEQ], k.k[K_EVENTS], k.k[K_RUN]};
    return read_stream(b, keys, session_id, after_seq, max_count, max_bytes, out, err);
}

/* ---- the per-user session feed ------------------------------------------------ */

#define FEED_MAXLEN "1000"

/* Keys of user's feed: {u:<id>} is the hash tag, so the feed script touches one slot. */
static void feed_keys(int64_t user, char seq[BUS_KEY_MAX], char stream[BUS_KEY_MAX],
                      char none[BUS_KEY_MAX])
{
    snprintf(seq, BUS_KEY_MAX, "cgw:{u:%" PRId64 "}:feedseq", user);
    snprintf(stream, BUS_KEY_MAX, "cgw:{u:%" PRId64 "}:feed", user);
    snprintf(none, BUS_KEY_MAX, "cgw:{u:%" PRId64 "}:norun", user);
}

enum cgw_err bus_feed_publish(struct bus *b, int64_t user, const char *json, int64_t *feed_seq,
                              struct cgw_error *err)
{
    char seq[BUS_KEY_MAX], stream[BUS_KEY_MAX], none[BUS_KEY_MAX], notify[48];
    const char *keys[2], *args[3];
    size_t lens[3];
    size_t end = json_object_end(json);
    redisReply *r;

    if (user <= 0)
        return cgw_error_set(err, CGW_ERR_INVALID, "bus: invalid user id");
    if (end == 0)
        return cgw_error_set(err, CGW_ERR_INVALID, "bus: frame is not a non-empty JSON object");
    feed_keys(user, seq, stream, none);
    snprintf(notify, sizeof(notify), "u:%" PRId64, user);
    keys[0] = seq;
    keys[1] = stream;
    args[0] = json;
    args[1] = FEED_MAXLEN;
    args[2] = notify;
    lens[0] = end;
    lens[1] = strlen(args[1]);
    lens[2] = strlen(args[2]);
    /* Not retried: a retry after a lost reply would add the frame twice. A lost feed
     * frame costs a stale sidebar row until the next change; the caller logs it. */
    enum cgw_err rc = bus_script(b, SCRIPT_FEED, 0, WANT_INT, 2, keys, 3, args, lens, &r, err);
    if (rc != CGW_OK)
        return rc;
    if (feed_seq)
        *feed_seq = r->integer;
    freeReplyObject(r);
    return CGW_OK;
}

enum cgw_err bus_feed_read(struct bus *b, int64_t user, int64_t after_seq, int64_t max_count,
                           int64_t max_bytes, struct bus_read *out, struct cgw_error *err)
{
    char seq[BUS_KEY_MAX], stream[BUS_KEY_MAX], none[BUS_KEY_MAX], label[48];

    memset(out, 0, sizeof(*out));
    if (user <= 0)
        return cgw_error_set(err, CGW_ERR_INVALID, "bus: invalid user id");
    feed_keys(user, seq, stream, none);
    snprintf(label, sizeof(label), "the feed of user %" PRId64, user);
    const char *keys[3] = {seq, stream, none};
    return read_stream(b, keys, label, after_seq, max_count, max_bytes, out, err);
}

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
            redisSetTimeout(b->ctx, ms_to_tv(b->timeout_ms + b->extra_timeout_ms));
        rc = bus_cmd(b, CMD_RETRY, WANT_ARR | WANT_NIL, &r, err, 3, "BLPOP", k.k[K_CTL], secs);
        b->extra_timeout_ms = 0;
        if (b->ctx && redisSetTimeout(b->ctx, ms_to_tv(b->timeout_ms)) != REDIS_OK)
            bus_drop(b);
        if (rc != CGW_OK)
            return rc;
        if (r->type == REDIS_REPLY_ARRAY && !(v = reply_elem(r, 1, WANT_STR))) {
            freeReplyObject(r);
            return cgw_error_set(err, CGW_ERR_INTERNAL, "redis %s: unexpected BLPOP reply",
                                 b->address);
        }
    }
    if (v && !(*json = strndup_checked(v->str, v->len)))
        rc = cgw_error_set(err, CGW_ERR_NOMEM, "bus: out of memory");
    freeReplyObject(r);
    return rc;
}

/* ---- permissions ------------------------------------------------------------------ */

static enum cgw_err perm_key(const char *request_id, char key[BUS_KEY_MAX + 64],
                             struct cgw_error *err)
{
    if (!id_valid(request_id, BUS_REQUEST_ID_MAX))
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
    if (!id_valid(run_id, CGW_ID_MAX - 1) || !json || !json[0])
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
    if (!id_valid(request_id, BUS_REQUEST_ID_MAX))
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
        const redisReply *id = reply_elem(ids, i, WANT_STR);
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
        const redisReply *v = reply_elem(vals, i, WANT_STR);
        if (!v)
            continue;
        if (!(list[count] = strndup_checked(v->str, v->len))) {
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
