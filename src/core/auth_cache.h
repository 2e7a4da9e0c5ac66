/* auth_cache.h: a process's cache of token checks, forgotten at every revocation.
 *
 * A token check costs a store read (and, when due, a write). chatgw.fcgi keeps the
 * checks that passed, keyed by the token's public id, with the SHA-256 of the whole
 * token and its owner, so a re-poll does not read the store. A cached check is used
 * only while nothing may have revoked it since:
 *
 *   - revocations (chatgwctl token revoke, user disable) bump the Redis counter
 *     BUS_AUTH_EPOCH_KEY and PUBLISH "!auth <epoch>" on cgw:notify
 *     (bus_notify_auth_revoked); the process's notification subscriber (the poller)
 *     calls auth_cache_flush on it, which forgets every entry;
 *   - the cache is on only while that subscriber is connected (auth_cache_live with
 *     its socket): a revocation published while nobody listened cannot be missed;
 *   - a lookup finds nothing while notifications wait unread: the subscriber's socket
 *     is readable, or the poller is between reading and handling them
 *     (auth_cache_reading), or its reader holds part of one;
 *   - an entry is used for at most max_age_ms, so a revocation whose notification
 *     could not be sent (Redis down for chatgwctl) still lands within that time, and
 *     the token's last-used time keeps being written.
 *
 * A check that misses goes to the store as before and, when it passes, is added, unless
 * a flush happened since the lookup began (an epoch counted here). Thread-safe: one
 * mutex, never held across a system call; the lookup's poll() of the subscriber's
 * socket is the only one, made between two short holds of the mutex (the poller checks
 * once per round: auth_cache_quiet).
 *
 * An entry holds a keyed BLAKE2b digest of the whole token (a key drawn per process),
 * compared in constant time, not its SHA-256: the digest is ~7 times cheaper, and a
 * hit needs no SHA-256 at all (the store's hash is computed on a miss only).
 */
#ifndef CGW_AUTH_CACHE_H
#define CGW_AUTH_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/auth.h"
#include "core/bus.h"
#include "core/err.h"
#include "core/store.h"

#define AUTH_CACHE_MAX_AGE_MS 30000

struct auth_cache;

/* A cache of `slots` entries (rounded up to a power of two; a colliding entry replaces
 * the older), each used for at most max_age_ms. Off until auth_cache_live. *out is new,
 * free it with auth_cache_free. CGW_ERR_NOMEM. */
enum cgw_err auth_cache_new(size_t slots, int64_t max_age_ms, struct auth_cache **out,
                            struct cgw_error *err);

void auth_cache_free(struct auth_cache *c);

/* The subscriber's state, from the thread that owns it: fd >= 0 is its socket, just
 * subscribed (the cache is flushed and turned on); -1: not subscribed (flushed and off). */
void auth_cache_live(struct auth_cache *c, int fd);

/* Forgets every entry (a revocation). */
void auth_cache_flush(struct auth_cache *c);

/* True from before the subscriber's socket is read until its notifications are handled
 * (and while a partial one waits in its reader): lookups miss meanwhile. */
void auth_cache_reading(struct auth_cache *c, bool reading);

/* auth_token_verify through the cache (c may be NULL: the store alone). A hit fills
 * *user (its id and name) without reading the store. */
enum cgw_err auth_token_verify_cached(struct auth_cache *c, struct store *st, const char *token,
                                      struct store_user *user, struct cgw_error *err);

/* Gives a Redis connection (the worker's, opened when first needed). */
typedef enum cgw_err (*auth_bus_fn)(void *ctx, struct bus **out, struct cgw_error *err);

/* A subscribe ticket's check (auth_ticket_verify) through the cache: a hit fills *user
 * (id and name) and token_public without Redis or the store; a miss gets its Redis
 * connection from get_bus(ctx) and checks as before. A passed check is kept, under the
 * same rules as a token's, until the ticket expires in Redis (its PTTL, read with it) or
 * max_age_ms, whichever comes first. Tickets are not single-use (an EventSource comes
 * back with the same URL), so a repeated use is what a cache may answer; a revocation of
 * its token or user flushes it like a token check. c may be NULL: no cache. */
enum cgw_err auth_ticket_verify_cached(struct auth_cache *c, void *ctx, auth_bus_fn get_bus,
                                       struct store *st, const char *ticket,
                                       struct store_user *user, char *token_public,
                                       struct cgw_error *err);

/* True when the cache holds a passed check of the token named public_id for user_id
 * that may be trusted now (then auth_token_active would say CGW_OK); false on a miss:
 * ask the store (c may be NULL: always a miss). */
bool auth_cache_active(struct auth_cache *c, const char *public_id, int64_t user_id);

/* For the thread that reads the notifications (the poller), which knows when it last
 * read them: auth_cache_quiet does the lookup's check once (nothing waits unread, the
 * cache is live), and auth_cache_active_quiet looks up as auth_cache_active but trusts
 * that answer instead of a poll() per lookup. Valid until that thread reads the
 * notifications again; a flush meanwhile (only that thread flushes) empties the cache
 * anyway. */
bool auth_cache_quiet(struct auth_cache *c);
bool auth_cache_active_quiet(struct auth_cache *c, const char *public_id, int64_t user_id,
                             bool quiet);

/* Counters for tests and /metrics: lookups (tokens and tickets) answered from the cache,
 * and misses. */
void auth_cache_stats(struct auth_cache *c, uint64_t *hits, uint64_t *misses);

#endif
