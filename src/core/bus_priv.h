/* bus_priv.h: the bus's internals, shared by bus.c, bus_runs.c, bus_ctl.c and bus_notify.c. */
#ifndef CGW_BUS_PRIV_H
#define CGW_BUS_PRIV_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/time.h>

#include <hiredis/hiredis.h>

#include "core/bus.h"
#include "core/bus_sentinel.h"

#define BUS_KEY_MAX 96

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

/* Reply types a caller accepts, as a mask of REDIS_REPLY_* bits. */
#define WANT_STR (1u << REDIS_REPLY_STRING)
#define WANT_ARR (1u << REDIS_REPLY_ARRAY)
#define WANT_INT (1u << REDIS_REPLY_INTEGER)
#define WANT_NIL (1u << REDIS_REPLY_NIL)
#define WANT_STATUS (1u << REDIS_REPLY_STATUS)

/* Command flags. */
#define CMD_RETRY 1u /* running it twice is harmless: retried once on a fresh connection */

struct bus {
    redisContext *ctx;        /* NULL = DOWN */
    struct bus_target target; /* where to connect; target.current names it in messages */
    const char *address;      /* = target.current */
    int64_t db;
    int64_t timeout_ms;
    int64_t extra_timeout_ms; /* added to the socket timeout while a BLPOP waits */
    int64_t stream_maxlen;
    int64_t stream_ttl_s;
    char sha[SCRIPT__COUNT][41];
    bool noscript; /* the last error reply was NOSCRIPT */
    bool readonly; /* the last error reply was READONLY: the server is no primary */
};

/* hiredis 0.14 writes with write(2): a peer that went away raises SIGPIPE, which
 * kills a process that does not ignore it. Keep it blocked around our I/O and
 * swallow one that our write raised, so the library never depends on the caller. */
struct sigpipe_guard {
    sigset_t old;
    bool was_pending;
    bool skipped; /* bus_sigpipe_ignored() was called: nothing to do */
};

/* Helpers (bus.c). */

/* Whether s is a non-empty id of at most max characters from the key-safe alphabet. */
bool bus_id_valid(const char *s, size_t max);
/* Fills k with the keys of session_id; CGW_ERR_INVALID for a bad id. */
enum cgw_err bus_keys_make(const char *session_id, struct bus_keys *k, struct cgw_error *err);
struct timeval bus_ms_to_tv(int64_t ms);
/* Element i of an array reply when its type is one of want, else NULL. */
const redisReply *bus_reply_elem(const redisReply *r, size_t i, unsigned want);
/* A new NUL-terminated copy of s[0..n), or NULL (no memory). */
char *bus_strndup(const char *s, size_t n);

/* Connection and commands (bus.c). */

/* Splits a Redis address: "unix:/path" and "/path" set *unix_path (into address);
 * "host:port", "[v6]:port" or a host alone (port 6379) set *unix_path to NULL and fill
 * host (host_size bytes) and *port. Returns 0, or -1 for a malformed address. */
int bus_address_parse(const char *address, const char **unix_path, char *host, size_t host_size,
                      int *port);
/* Frees the connection, if any (DOWN). */
void bus_drop(struct bus *b);
/* Blocks SIGPIPE around hiredis I/O; restore swallows one that the I/O raised. */
void bus_sigpipe_block(struct sigpipe_guard *g);
void bus_sigpipe_restore(struct sigpipe_guard *g);
/* Runs one command, connecting when DOWN and retrying a CMD_RETRY command once.
 * On success *out is a reply of one of the types in want, for freeReplyObject(). */
enum cgw_err bus_exec(struct bus *b, unsigned flags, unsigned want, int argc, const char **argv,
                      const size_t *lens, redisReply **out, struct cgw_error *err);
/* bus_exec of a command from argc NUL-terminated strings. */
enum cgw_err bus_cmd(struct bus *b, unsigned flags, unsigned want, redisReply **out,
                     struct cgw_error *err, int argc, ...);
/* EVALSHA of script s with KEYS keys[0..nkeys) and ARGV args[0..nargs) (arglens, or NULL
 * for NUL-terminated args); reloads the scripts once on NOSCRIPT. */
enum cgw_err bus_script(struct bus *b, enum bus_script s, unsigned flags, unsigned want, int nkeys,
                        const char *const *keys, int nargs, const char *const *args,
                        const size_t *arglens, redisReply **out, struct cgw_error *err);

#endif
