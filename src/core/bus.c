/* bus.c: the Redis bus on hiredis 0.14: connection, replies, Lua scripts, open/close/ping, keys.
 *
 * Entry points: bus_open / bus_close / bus_ping here; bus_run_claim, bus_run_set_runner,
 * bus_run_get, bus_event_publish, bus_run_complete, bus_lease_refresh, bus_runs_running,
 * bus_seq_get, bus_events_read, bus_feed_publish, bus_feed_read in bus_runs.c;
 * bus_ctl_push / bus_ctl_pop, bus_perm_add, bus_perm_session, bus_perm_resolve,
 * bus_perm_cancel, bus_perm_list in bus_ctl.c. bus_priv.h holds what they share.
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
 * caller expects and turns error replies into cgw_err; no redisReply leaves the bus
 * files (bus*.c).
 */
#include "core/bus_priv.h"

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

#include "core/config.h"
#include "core/embedded.h"

#define BUS_DEFAULT_TIMEOUT_MS 2000
#define BUS_DEFAULT_MAXLEN 5000
#define BUS_DEFAULT_TTL_S 600
#define BUS_MAX_ARGS (3 + K__COUNT + 8 + 2 * BUS_PUBLISH_BATCH_MAX)
#define BUS_SCRIPT_MAX_ARGS 1000000 /* keys or args of one script call, at the most */

/* ---- tables ------------------------------------------------------------------ */

static const char *const key_names[K__COUNT] = {
    [K_RUN] = "run",           [K_SEQ] = "seq",
    [K_EVENTS] = "events",     [K_LEASE] = "lease",
    [K_CTL] = "ctl",           [K_PENDING] = "pending",
    [K_RESOLVED] = "resolved", [K_PENDORDER] = "pendorder",
};

static const char *const script_files[SCRIPT__COUNT] = {
    [SCRIPT_CLAIM] = "claim.lua",           [SCRIPT_PUBLISH] = "publish.lua",
    [SCRIPT_LEASE] = "lease.lua",           [SCRIPT_READ] = "read.lua",
    [SCRIPT_PERM_ADD] = "perm_add.lua",     [SCRIPT_PERM_RESOLVE] = "perm_resolve.lua",
    [SCRIPT_SET_RUNNER] = "set_runner.lua", [SCRIPT_FEED] = "feed.lua",
};

/* Error replies by their first word. Our scripts answer STALE, CONFLICT, NOT_FOUND, LIMIT;
 * the others mean Redis is not serving right now (loading the AOF, a script busy,
 * bad credentials, a read-only replica, too few replicas, out of memory). Anything else
 * is a bug. */
static const struct {
    const char *word;
    enum cgw_err code;
} reply_errors[] = {
    {"STALE", CGW_ERR_STALE},         {"CONFLICT", CGW_ERR_CONFLICT},
    {"NOT_FOUND", CGW_ERR_NOT_FOUND}, {"LIMIT", CGW_ERR_LIMIT},
    {"LOADING", CGW_ERR_BACKEND},     {"BUSY", CGW_ERR_BACKEND},
    {"NOAUTH", CGW_ERR_BACKEND},      {"WRONGPASS", CGW_ERR_BACKEND},
    {"MASTERDOWN", CGW_ERR_BACKEND},  {"READONLY", CGW_ERR_BACKEND},
    {"OOM", CGW_ERR_BACKEND},         {"TRYAGAIN", CGW_ERR_BACKEND},
    {"CLUSTERDOWN", CGW_ERR_BACKEND}, {"NOREPLICAS", CGW_ERR_BACKEND},
};

/* ---- small helpers ------------------------------------------------------------- */

/* Ids become parts of keys and of script error texts: a safe alphabet, no braces
 * (they would move the hash tag) and no blanks. */
bool bus_id_valid(const char *s, size_t max)
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

enum cgw_err bus_keys_make(const char *session_id, struct bus_keys *k, struct cgw_error *err)
{
    if (!bus_id_valid(session_id, CGW_UUID_LEN))
        return cgw_error_set(err, CGW_ERR_INVALID, "bus: invalid session id");
    for (int i = 0; i < K__COUNT; i++) {
        snprintf(k->buf[i], sizeof(k->buf[i]), "cgw:{%s}:%s", session_id, key_names[i]);
        k->k[i] = k->buf[i];
    }
    return CGW_OK;
}

struct timeval bus_ms_to_tv(int64_t ms)
{
    struct timeval tv = {.tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000};
    return tv;
}

/* Element i of an array reply when its type is one of want, else NULL. */
const redisReply *bus_reply_elem(const redisReply *r, size_t i, unsigned want)
{
    if (r->type != REDIS_REPLY_ARRAY || i >= r->elements || !r->element[i])
        return NULL;
    return (want & (1u << r->element[i]->type)) ? r->element[i] : NULL;
}

char *bus_strndup(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

/* ---- connection ------------------------------------------------------------- */

void bus_drop(struct bus *b)
{
    if (b->ctx) {
        redisFree(b->ctx);
        b->ctx = NULL;
    }
}

/* Set once by bus_sigpipe_ignored(): the process ignores SIGPIPE for good, so the
 * guard's four system calls per command are not needed. */
static volatile bool sigpipe_off;

void bus_sigpipe_ignored(void)
{
    sigpipe_off = true;
}

void bus_sigpipe_block(struct sigpipe_guard *g)
{
    sigset_t set, pending;
    g->skipped = sigpipe_off;
    if (g->skipped)
        return;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, &g->old);
    sigemptyset(&pending);
    sigpending(&pending);
    g->was_pending = sigismember(&pending, SIGPIPE) == 1;
}

void bus_sigpipe_restore(struct sigpipe_guard *g)
{
    sigset_t set, pending;
    if (g->skipped)
        return;
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

    /* A demoted primary (READONLY), or one that lost its replicas to a failover under
     * min-replicas-to-write (NOREPLICAS): no write ran; look the primary up again. */
    if ((wlen == 8 && strncmp(msg, "READONLY", 8) == 0) ||
        (wlen == 10 && strncmp(msg, "NOREPLICAS", 10) == 0))
        b->readonly = true;
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
    b->readonly = false;
    bus_sigpipe_block(&g);
    r = redisCommandArgv(b->ctx, argc, argv, lens);
    saved_errno = errno;
    bus_sigpipe_restore(&g);
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
    redisReply *r;
    enum cgw_err rc;

    bus_drop(b);
    /* Finds the primary (through Sentinel when configured), connects, AUTH. */
    rc = bus_target_connect(&b->target, b->timeout_ms + b->extra_timeout_ms, &b->ctx, err);
    if (rc != CGW_OK)
        return rc == CGW_ERR_NOMEM ? rc : CGW_ERR_BACKEND;
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
    /* Whatever stopped the setup (LOADING, ...), Redis is not usable. */
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
 * CMD_RETRY command once when a connection from an earlier call failed under it.
 * A READONLY reply (the server was demoted to a replica by a failover) drops the
 * connection; through Sentinel the command is then sent once more to the primary
 * looked up again: a read-only replica executed nothing, so any command may be. */
enum cgw_err bus_exec(struct bus *b, unsigned flags, unsigned want, int argc, const char **argv,
                      const size_t *lens, redisReply **out, struct cgw_error *err)
{
    for (int attempt = 0;; attempt++) {
        bool reused;
        enum cgw_err rc = bus_ensure(b, &reused, err);
        if (rc != CGW_OK)
            return rc;
        rc = bus_raw(b, want, argc, argv, lens, out, err);
        if (rc != CGW_OK && b->readonly) {
            bus_drop(b);
            if (attempt == 0 && bus_target_sentinel(&b->target))
                continue;
            return rc;
        }
        if (rc == CGW_OK || b->ctx || !reused || attempt > 0 || !(flags & CMD_RETRY))
            return rc;
    }
}

/* A command from NUL-terminated strings. */
enum cgw_err bus_cmd(struct bus *b, unsigned flags, unsigned want, redisReply **out,
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
enum cgw_err bus_script(struct bus *b, enum bus_script s, unsigned flags, unsigned want, int nkeys,
                        const char *const *keys, int nargs, const char *const *args,
                        const size_t *arglens, redisReply **out, struct cgw_error *err)
{
    const char *argv_small[BUS_MAX_ARGS];
    size_t lens_small[BUS_MAX_ARGS];
    const char **argv = argv_small;
    size_t *lens = lens_small;
    char nk[16];
    int argc = 0;
    enum cgw_err rc;

    if (nkeys < 0 || nargs < 0 || nkeys > BUS_SCRIPT_MAX_ARGS || nargs > BUS_SCRIPT_MAX_ARGS)
        return cgw_error_set(err, CGW_ERR_INTERNAL, "bus: too many script arguments");
    if (3 + nkeys + nargs > BUS_MAX_ARGS) {
        /* Only a claim that declares the members of a large running set comes here. */
        argv = malloc((size_t)(3 + nkeys + nargs) * sizeof(*argv));
        lens = malloc((size_t)(3 + nkeys + nargs) * sizeof(*lens));
        if (!argv || !lens) {
            free(argv);
            free(lens);
            return cgw_error_set(err, CGW_ERR_NOMEM, "bus: out of memory");
        }
    }
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
        if (rc != CGW_OK)
            bus_drop(b);
        else
            rc = bus_exec(b, flags, want, argc, argv, lens, out, err);
    }
    if (argv != argv_small) {
        free(argv);
        free(lens);
    }
    return rc;
}

/* ---- open / close / ping --------------------------------------------------------- */

int bus_address_parse(const char *address, const char **unix_path, char *host, size_t host_size,
                      int *port)
{
    *unix_path = NULL;
    if (strncmp(address, "unix:", 5) == 0) {
        *unix_path = address + 5;
    } else if (address[0] == '/') {
        *unix_path = address;
    } else {
        /* host:port, [v6]:port, or a host alone (port 6379). */
        const char *a = address, *colon = strrchr(a, ':'), *hend;
        int64_t p = 6379;
        if (a[0] == '[') {
            const char *close = strchr(a, ']');
            if (!close || (close[1] != '\0' && close[1] != ':'))
                return -1;
            a++;
            hend = close;
            colon = close[1] == ':' ? close + 1 : NULL;
        } else {
            if (colon && strchr(a, ':') != colon)
                colon = NULL; /* a bare IPv6 address */
            hend = colon ? colon : a + strlen(a);
        }
        if (colon && cgw_parse_int64(colon + 1, 1, 65535, &p) != 0)
            return -1;
        if (hend == a || (size_t)(hend - a) >= host_size)
            return -1;
        memcpy(host, a, (size_t)(hend - a));
        host[hend - a] = '\0';
        *port = (int)p;
    }
    if (*unix_path && !(*unix_path)[0])
        return -1;
    return 0;
}

void bus_config_from(const struct config *cfg, struct bus_config *out)
{
    *out = (struct bus_config){
        .address = cfg->redis_address,
        .password = cfg->redis_password,
        .db = cfg->redis_db,
        .timeout_ms = cfg->redis_timeout_ms,
        .stream_maxlen = cfg->stream_maxlen,
        .stream_ttl_s = cfg->stream_ttl_s,
        .sentinels = cfg->redis_sentinels,
        .master_name = cfg->redis_master_name,
        .sentinel_password = cfg->redis_sentinel_password,
    };
}

enum cgw_err bus_open(const struct bus_config *cfg, bool lazy, struct bus **out,
                      struct cgw_error *err)
{
    struct bus_config c;
    struct bus *b;
    enum cgw_err rc;

    *out = NULL;
    if (!cfg)
        return cgw_error_set(err, CGW_ERR_INVALID, "bus: no Redis address");
    b = calloc(1, sizeof(*b));
    if (!b)
        return cgw_error_set(err, CGW_ERR_NOMEM, "bus: out of memory");
    b->db = cfg->db;
    b->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : BUS_DEFAULT_TIMEOUT_MS;
    b->stream_maxlen = cfg->stream_maxlen > 0 ? cfg->stream_maxlen : BUS_DEFAULT_MAXLEN;
    b->stream_ttl_s = cfg->stream_ttl_s >= 0 ? cfg->stream_ttl_s : BUS_DEFAULT_TTL_S;
    c = *cfg;
    c.timeout_ms = b->timeout_ms;
    rc = bus_target_init(&b->target, &c, err);
    if (rc != CGW_OK) {
        free(b);
        return rc;
    }
    b->address = b->target.current;

    if (!lazy) {
        rc = bus_connect(b, err);
        if (rc != CGW_OK) {
            bus_close(b);
            return rc;
        }
    }
    *out = b;
    return CGW_OK;
}

void bus_close(struct bus *b)
{
    if (!b)
        return;
    bus_drop(b);
    bus_target_free(&b->target);
    free(b);
}

const char *bus_primary(const struct bus *b)
{
    return b->target.current;
}

bool bus_via_sentinel(const struct bus *b)
{
    return bus_target_sentinel(&b->target);
}

enum cgw_err bus_ping(struct bus *b, struct cgw_error *err)
{
    redisReply *r;
    enum cgw_err rc = bus_cmd(b, CMD_RETRY, WANT_STATUS, &r, err, 1, "PING");
    if (rc == CGW_OK)
        freeReplyObject(r);
    return rc;
}
