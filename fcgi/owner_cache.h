/* owner_cache.h: which user owns a session, as a chatgw.fcgi process last read it.
 *
 * Every subscribe reads each requested session from the store: whether it exists and
 * is the caller's, and the store's high-water seq (the ack's lastSeq is the larger of
 * it and Redis'). With many polls per second that read is most of a no-wait subscribe's
 * cost beyond libfcgi's (SQLite: a WAL read lock, one process-wide mutex and often an
 * fcntl() per read; PostgreSQL: a round trip). This cache keeps, per session id, the
 * owner and that high-water mark, so a re-poll within max_age_ms does not read the store.
 *
 * Why a copy may be used:
 *   - a session's owner never changes and ids are never reused: an entry can only be
 *     wrong by the session having been deleted since, which concerns its owner alone
 *     (a hit needs the caller to be the owner);
 *   - a delete in this process forgets the entry at once (owner_cache_forget), and every
 *     change of a user's sessions in any process publishes a feed notification
 *     ("u:<id> <feedSeq>", bus_notify.h) on which the poller forgets that user's entries
 *     (owner_cache_forget_user): a delete on another host is seen here as soon as its
 *     notification is read, at the latest after max_age_ms;
 *   - the store's high-water mark only grows by runs, which publish each event to Redis
 *     before the store writes it (the ack takes the larger of the two), and whose start
 *     and end are feed notifications too; a stale, smaller copy therefore never hides
 *     an event;
 *   - the cache is off while the poller's notification subscriber is not connected
 *     (owner_cache_live), i.e. whenever Redis may be down and the store alone speaks.
 * An entry offered after a forget that began before it (owner_cache_epoch) is dropped.
 *
 * Thread-safe: one mutex, held only to copy an entry.
 */
#ifndef CGW_FCGI_OWNER_CACHE_H
#define CGW_FCGI_OWNER_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

struct owner_cache;

/* A cache of about slots entries (a power of two, at least 16), each used for at most
 * max_age_ms; off until owner_cache_live(c, true). */
enum cgw_err owner_cache_new(size_t slots, int64_t max_age_ms, struct owner_cache **out,
                             struct cgw_error *err);
void owner_cache_free(struct owner_cache *c);

/* The notification subscriber is connected (true) or lost (false); either way every
 * entry is forgotten. */
void owner_cache_live(struct owner_cache *c, bool live);

/* The epoch to pass to owner_cache_put for a store read that starts now. */
uint64_t owner_cache_epoch(struct owner_cache *c);

/* True when session_id is known to be user_id's; *store_last receives the store's
 * high-water seq as read then. */
bool owner_cache_get(struct owner_cache *c, const char *session_id, int64_t user_id,
                     int64_t *store_last);

/* Offers a store read that found session_id owned by user_id, begun at epoch. */
void owner_cache_put(struct owner_cache *c, const char *session_id, int64_t user_id,
                     int64_t store_last, uint64_t epoch);

/* session_id was deleted (or may have been). */
void owner_cache_forget(struct owner_cache *c, const char *session_id);

/* Something changed in user_id's sessions (a feed notification). */
void owner_cache_forget_user(struct owner_cache *c, int64_t user_id);

/* Lookups answered from the copy and not, since the start. */
void owner_cache_stats(struct owner_cache *c, uint64_t *hits, uint64_t *misses);

#endif
