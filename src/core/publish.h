/* publish.h: publishing one event of a run and persisting it, the one way every writer
 * of a session's stream does it (DESIGN §4 "Persistence").
 *
 * The bus assigns the seq: publish.lua stores the event text with ,"seq":N spliced
 * before its final '}'. The SQLite copy is that same text, made by publish_with_seq, so
 * history and the live stream hold byte-identical events. chatgw.fcgi (a run's first
 * events, a failed spawn), the reaper (runner_lost) and chatgwctl use publish_persist;
 * the runner publishes through the bus in batches with retries and persists in
 * transactions of its own, but builds its stored text with publish_with_seq too.
 */
#ifndef CGW_PUBLISH_H
#define CGW_PUBLISH_H

#include <jansson.h>
#include <stdint.h>

#include "core/bus.h"
#include "core/err.h"
#include "core/store.h"

enum publish_mode {
    PUBLISH_EVENT,    /* an event of the running run (bus_event_publish) */
    PUBLISH_COMPLETE, /* the run's complete: ends the run (bus_run_complete) */
    PUBLISH_REAP,     /* the complete of a run whose lease expired, only if it did:
                       * CGW_ERR_CONFLICT while the lease is alive */
};

/* The event text as the bus stores it: json (an encoded JSON object with at least one
 * member) with ,"seq":N before its final '}', exactly as publish.lua splices it.
 * Returns a new string (free()), or NULL when json does not end in '}' or memory ran
 * out. Thread-safe. */
char *publish_with_seq(const char *json, int64_t seq);

/* Publishes ev (borrowed) as an event of run_id in session_id's stream, with the store's
 * high-water mark of the session as seq floor (bus_publish: no seq history holds is
 * handed out again after Redis lost writes; CGW_ERR_NOT_FOUND when the run hash is gone
 * altogether), then, when its
 * kind is persisted (every kind but stream_delta), writes it with its seq to SQLite.
 * *seq (may be NULL) is set as soon as the event is published, so a caller can tell a
 * failed write to SQLite (*seq set, the error returned) from a failed publish (*seq
 * untouched). Publish errors are the bus's: CGW_ERR_STALE when run_id is not the
 * running run, CGW_ERR_CONFLICT (PUBLISH_REAP) while the lease is alive,
 * CGW_ERR_BACKEND. */
enum cgw_err publish_persist(struct store *st, struct bus *bus, const char *session_id,
                             const char *run_id, const json_t *ev, enum publish_mode mode,
                             int64_t *seq, struct cgw_error *err);

#endif
