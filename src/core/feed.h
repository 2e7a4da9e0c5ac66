/* feed.h: session_upserted frames on each user's session feed (DESIGN §3.4 "feed"), so
 * sidebars in every tab follow creates, renames, archives, deletes, run starts and ends. */
#ifndef CGW_FEED_H
#define CGW_FEED_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/bus.h"
#include "core/err.h"
#include "core/store.h"

/* The session as clients see it (DESIGN §3.3): {id, provider, projectPath, name,
 * archived, createdAt, updatedAt, isProcessing, lastSeq}; run (may be NULL) gives
 * isProcessing and a lastSeq newer than SQLite's. The provider-native id is never in
 * it. Returns a new reference, or NULL when memory ran out. */
json_t *feed_session_json(const struct store_session *s, const struct bus_run *run);

/* Publishes {kind:"session_upserted", sessionId, session, timestamp} (+ feedSeq) for
 * session_id to its owner's feed, with the session as it is now in SQLite and Redis. */
enum cgw_err feed_publish_session(struct store *st, struct bus *bus, const char *session_id,
                                  struct cgw_error *err);

/* Publishes {kind:"session_upserted", sessionId, deleted:true, timestamp} to owner's feed. */
enum cgw_err feed_publish_deleted(struct bus *bus, int64_t owner, const char *session_id,
                                  struct cgw_error *err);

#endif
