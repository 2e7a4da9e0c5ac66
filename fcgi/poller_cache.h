/* poller_cache.h: what a chatgw.fcgi process knows of a session between Redis reads.
 *
 * Per session (or feed) with held or recent polls: what an ack needs (the high-water
 * seq, firstSeq, the run's id and state, whether permission requests are open) and a
 * small ring of its newest events, so that a re-poll whose cursor is at the head parks
 * without reading Redis and one just behind is answered from memory.
 *
 * How the copy knows it is current: every publish notifies "<session> <new seq>"
 * (bus_notify.h). An entry is current when
 *   - it was filled by a read made while the notification subscriber was connected,
 *     and the subscriber has not been lost since (poller_cache_live bumps a generation
 *     that every entry must carry);
 *   - no notification has shown a seq beyond the one the read saw (a notification
 *     without a seq makes it stale until the next read);
 *   - that read is at most max_age_ms old (an expired key, a flushed Redis);
 *   - for an answer with its ack: no run is running, or it runs with no open permission
 *     request (answering one removes it without a notification).
 * Anything else, or an entry that does not hold the events after a cursor, is a miss:
 * the caller reads Redis as before and offers the read back (poller_cache_store).
 *
 * Thread-safe (one mutex): the poller thread feeds it notifications and its reads; the
 * workers look up and offer their reads.
 */
#ifndef CGW_FCGI_POLLER_CACHE_H
#define CGW_FCGI_POLLER_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "fcgi/answer.h"

struct poller_cache;

struct poller_cache_limits {
    size_t ring;        /* events kept per session */
    size_t ring_bytes;  /* ... and at most about this many bytes of them */
    size_t entries;     /* sessions kept */
    int64_t max_age_ms; /* a read is trusted this long */
    int64_t idle_ms;    /* an entry nobody used this long is dropped */
};

/* A new, empty cache, off (nothing is current) until poller_cache_live(c, true). */
enum cgw_err poller_cache_new(const struct poller_cache_limits *lim, struct poller_cache **out,
                              struct cgw_error *err);

void poller_cache_free(struct poller_cache *c);

/* The notification subscriber is connected (true: just subscribed) or lost (false).
 * Either way every entry stops being current. */
void poller_cache_live(struct poller_cache *c, bool live);

/* The generation to pass to poller_cache_store for a read that starts now. */
uint64_t poller_cache_gen(struct poller_cache *c);

/* A notification for id: its high-water seq is now seq (0: not said, unknown). */
void poller_cache_notified(struct poller_cache *c, const char *id, int64_t seq);

/* Offers a read of id, begun at generation gen (poller_cache_gen before the read): kept
 * when it is complete up to its counter (not cut), not older than what the entry holds,
 * and no reconnect happened since gen. s->have_perms with s->n_perms tells whether open
 * permission requests are known to be none. s is not taken (copied). */
void poller_cache_store(struct poller_cache *c, const char *id, const struct sub_snapshot *s,
                        uint64_t gen);

/* True when id's entry is current and its head is cursor (and store_last, SQLite's
 * high-water mark, is not beyond it): a poll there has no news. */
bool poller_cache_at_head(struct poller_cache *c, const char *id, int64_t cursor,
                          int64_t store_last);

/* Fills *out (zeroed first) as answer_snapshot_read(id, cursor, max_count, max_bytes)
 * would, with permissions, when id's entry is current for an answer and holds every
 * event after cursor. Returns true then; false (and *out empty) on a miss. Free *out
 * with answer_snapshot_free. */
bool poller_cache_snapshot(struct poller_cache *c, const char *id, int64_t cursor,
                           int64_t max_count, int64_t max_bytes, struct sub_snapshot *out);

/* The "from now" read of id (no cursor: the counter is the cursor, nothing to replay):
 * fills *out (zeroed first) as answer_snapshot_read(id, 0, 0, 0) would, after = the
 * head, with permissions, when id's entry is current for an answer. false on a miss. */
bool poller_cache_head(struct poller_cache *c, const char *id, struct sub_snapshot *out);

/* Offers a "from now" read (answer_snapshot_read(id, 0, 0, 0), begun at gen): it holds
 * no events, so it is kept as a read after its own counter. */
void poller_cache_store_head(struct poller_cache *c, const char *id, const struct sub_snapshot *s,
                             uint64_t gen);

/* Drops entries unused for idle_ms (call now and then, from one thread). */
void poller_cache_sweep(struct poller_cache *c);

/* Lookups answered from memory and misses, for tests and metrics. */
void poller_cache_stats(struct poller_cache *c, uint64_t *hits, uint64_t *misses);

#endif
