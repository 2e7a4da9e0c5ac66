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

/* The session as clients see it (DESIGN §3.3): {id, provider, projectPath, host, name,
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

/* ---- frames that could not be published ------------------------------------------

 * A change is committed to SQLite before its frame goes to Redis; when Redis is down at
 * that moment the frame would be lost and the followers' sidebars silently stale. The
 * backlog remembers such sessions (at most FEED_BACKLOG_MAX; past that the oldest is
 * dropped, logged) and feed_backlog_flush publishes each one's state as it is then, once
 * Redis is back, so the followers catch up with a later frame instead of none. All
 * functions are thread-safe. */
#define FEED_BACKLOG_MAX 1024

struct feed_backlog;

/* Returns a new, empty backlog, or NULL when memory ran out. */
struct feed_backlog *feed_backlog_new(void);
void feed_backlog_free(struct feed_backlog *fb);

/* Remembers that session_id's frame (owner's feed; deleted: it was deleted) was lost. */
void feed_backlog_add(struct feed_backlog *fb, int64_t owner, const char *session_id, bool deleted);

/* Publishes a frame for each remembered session; those that fail stay. Returns CGW_OK,
 * or the first error (the rest are kept for the next call). *published may be NULL. */
enum cgw_err feed_backlog_flush(struct feed_backlog *fb, struct store *st, struct bus *bus,
                                size_t *published, struct cgw_error *err);

#endif
