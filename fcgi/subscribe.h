/* subscribe.h: the long-poll subscribe (DESIGN §3.4): a session's state as read for one
 * answer, and the answer builder shared by the workers (h_subscribe answers at once)
 * and the poller (poller.c answers held requests).
 *
 * An answer is {frames:[ack per session..., events...], more}: one chat_subscribed
 * ack per requested session, in request order, then per session in request order its
 * events with seq > cursor in seq order, at most limits.max_frames frames (acks
 * included) and about limits.max_answer_bytes of event text, but always at least one
 * event when any is due; more:true when events were left out. Sessions earlier in the
 * request go first, so a long backlog of the first one can fill an answer; the client
 * polls again with its new cursors.
 */
#ifndef CGW_FCGI_SUBSCRIBE_H
#define CGW_FCGI_SUBSCRIBE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/bus.h"
#include "core/config.h"

/* One requested session. */
struct sub_session {
    char *id;           /* as the client sent it; owned */
    int64_t cursor;     /* the client wants events with seq > cursor */
    int64_t store_last; /* the SQLite high-water mark when the request came */
    bool from_now;      /* no lastSeq given: cursor is the counter at request time */
    bool found;         /* the caller's session; false = unknown or not the caller's */
    bool feed;          /* not a session: the caller's session feed, id "u:<user id>",
                         * cursor a feedSeq (DESIGN §3.4 "feed") */
};

/* A session as read from Redis for one answer: the events after `after` (at most
 * one answer's worth) and, once sub_snapshot_perms ran, its open permission
 * requests. */
struct sub_snapshot {
    int64_t after;
    struct bus_read read;
    char **perms; /* permission_request events (JSON texts), oldest first */
    size_t n_perms;
    bool have_perms;
};

/* Reads the session's counter, run state and up to max_count events after `after`
 * (about max_bytes of them) into *out (zeroed first). Free with sub_snapshot_free,
 * also after an error. */
enum cgw_err sub_snapshot_read(struct bus *b, const char *id, int64_t after, int64_t max_count,
                               int64_t max_bytes, struct sub_snapshot *out, struct cgw_error *err);

/* Reads the open permission requests into s unless it has them already; none (and no
 * Redis command) when s's read found no running run. Call after sub_snapshot_read. */
enum cgw_err sub_snapshot_perms(struct bus *b, const char *id, struct sub_snapshot *s,
                                struct cgw_error *err);

void sub_snapshot_free(struct sub_snapshot *s);

/* True when a request for ss must be answered now because of s: an event after its
 * cursor, more events than s holds, or a hole (events after the cursor are gone). */
bool sub_snapshot_news(const struct sub_snapshot *s, const struct sub_session *ss);

/* True when s holds every event after ss->cursor that one answer may carry (s was
 * read after ss->cursor or earlier and was not cut before it). */
bool sub_snapshot_covers(const struct sub_snapshot *s, const struct sub_session *ss);

/* Builds the answer body for sessions ss[0..n) with their snapshots (snaps[i] for
 * found sessions, read with permissions; ignored for the others). Returns a new
 * reference, or NULL when memory ran out. */
json_t *sub_answer(const struct config *cfg, const struct sub_session *ss, size_t n,
                   struct sub_snapshot *const *snaps);

/* Frees the ids of ss[0..n) and the array. */
void sub_sessions_free(struct sub_session *ss, size_t n);

#endif
