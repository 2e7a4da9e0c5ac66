/* bus_sentinel.h: where the bus connects: one Redis address, or the primary that Redis
 * Sentinel names (hiredis 0.14).
 *
 * A struct bus_target is filled once from a bus_config (bus_target_init) and then
 * makes connections (bus_target_connect) for bus.c's command connection and for
 * bus_notify.c's subscriber alike. Without sentinels it connects to redis.address
 * as always. With sentinels (redis.sentinels) every connect looks the primary up:
 *
 *   LOOKUP   ask each Sentinel in order SENTINEL get-master-addr-by-name <name>;
 *            the first that answers with an address wins.
 *   CONNECT  connect to that address, AUTH (redis.password), ROLE: it must say
 *            "master". A refused connection, an error or another role (a demoted
 *            primary, a replica not yet promoted) starts the next round.
 * Rounds are separated by a backoff (BUS_TARGET_BACKOFF_MIN_MS doubling up to
 * BUS_TARGET_BACKOFF_MAX_MS) and no new round starts once timeout_ms has passed since
 * the first, so a connect waits at most about two timeouts (every network step has
 * timeout_ms on its own). Not thread-safe: one thread owns a target.
 */
#ifndef CGW_BUS_SENTINEL_H
#define CGW_BUS_SENTINEL_H

#include <stddef.h>
#include <stdint.h>

#include "core/bus.h"
#include "core/err.h"

#define BUS_SENTINELS_MAX 16
#define BUS_HOST_MAX 256
#define BUS_MASTER_NAME_MAX 128
#define BUS_TARGET_BACKOFF_MIN_MS 25
#define BUS_TARGET_BACKOFF_MAX_MS 400

struct redisContext; /* hiredis's, seen only by the bus files */

struct bus_hostport {
    char host[BUS_HOST_MAX];
    int port;
};

struct bus_sentinels {
    size_t n;
    struct bus_hostport at[BUS_SENTINELS_MAX];
};

struct bus_target {
    const char *unix_path;          /* direct: into address, or NULL for TCP */
    struct bus_hostport direct;     /* direct TCP address */
    char *address;                  /* redis.address as configured (owned) */
    char *password;                 /* NULL = no AUTH (owned, wiped on free) */
    char *sentinel_password;        /* NULL = no AUTH to the Sentinels (owned, wiped) */
    struct bus_sentinels sentinels; /* n == 0: direct */
    char master_name[BUS_MASTER_NAME_MAX];
    int64_t timeout_ms;
    char current[BUS_HOST_MAX + 16]; /* what the last connect reached, for messages */
};

/* Parses redis.sentinels: "host:port,host:port,..." (blanks around entries allowed,
 * "[v6]:port" too, the port is required). "" gives n == 0. Returns 0, or -1 for a
 * malformed list or more than BUS_SENTINELS_MAX entries. */
int bus_sentinels_parse(const char *list, struct bus_sentinels *out);

/* Fills t from cfg (strings copied; cfg->timeout_ms must be > 0). CGW_ERR_INVALID
 * for a bad address, sentinel list or master name; CGW_ERR_NOMEM. On error t holds
 * nothing to free. */
enum cgw_err bus_target_init(struct bus_target *t, const struct bus_config *cfg,
                             struct cgw_error *err);

/* Frees what t owns (passwords wiped); t may be zeroed or half-initialized. */
void bus_target_free(struct bus_target *t);

/* Whether t finds its primary through Sentinel. */
static inline int bus_target_sentinel(const struct bus_target *t)
{
    return t->sentinels.n > 0;
}

/* Connects to the primary (see above), authenticated, its socket timeout set to
 * rw_timeout_ms. *out is a new context for redisFree. Sets t->current. CGW_ERR_BACKEND
 * when no primary could be reached within the bound, CGW_ERR_NOMEM. */
enum cgw_err bus_target_connect(struct bus_target *t, int64_t rw_timeout_ms,
                                struct redisContext **out, struct cgw_error *err);

#endif
