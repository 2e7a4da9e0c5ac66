/* answer.h: the answer of a subscribe (DESIGN §3.4): a session's state as read for one
 * answer, the answer's budget, and the answer JSON. Used by the workers (h_subscribe.c
 * answers at once) and by the poller (poller.c answers held requests); knows neither.
 *
 * An answer is {frames:[ack per session..., events...], more}: one chat_subscribed
 * ack per requested session, in request order, then per session in request order its
 * events with seq > cursor in seq order. The budget (struct answer_budget) is the one
 * rule of both paths: at most limits.max_frames frames, the acks included (the feed has
 * no ack: its session_upserted frames count as events), and about
 * limits.max_answer_bytes of event text, but always at least one event when any is
 * due; more:true when events were left out. Sessions earlier in the request go first,
 * so a long backlog of the first one can fill an answer; the client polls again with
 * its new cursors.
 */
#ifndef CGW_FCGI_ANSWER_H
#define CGW_FCGI_ANSWER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/bus.h"
#include "core/config.h"
#include "core/err.h"

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
 * one answer's worth) and, once answer_snapshot_perms ran, its open permission
 * requests. */
struct sub_snapshot {
    int64_t after;
    struct bus_read read;
    char **perms; /* permission_request events (JSON texts), oldest first */
    size_t n_perms;
    bool have_perms;
};

/* ---- the budget of one answer --------------------------------------------------- */

struct answer_budget {
    int64_t frames_left; /* frames an answer may still carry */
    int64_t bytes_left;  /* bytes of event text it may still carry */
    bool any;            /* an event was taken: the next one may be refused */
};

/* The budget of an answer to ss[0..n): cfg's limits, less one frame per ack (every
 * entry but the feed). */
void answer_budget_init(struct answer_budget *b, const struct config *cfg,
                        const struct sub_session *ss, size_t n);

/* True when an event of len bytes goes into the answer: always the first one, then
 * while frames and bytes are left. */
bool answer_budget_fits(const struct answer_budget *b, size_t len);

/* Counts an event of len bytes as taken. */
void answer_budget_take(struct answer_budget *b, size_t len);

/* How many events, and about how many bytes of them, a read for the next session
 * should fetch so that the answer can carry them: at least one event while none was
 * taken; none (0, and 1 byte) once the budget is spent. */
void answer_budget_read_limits(const struct answer_budget *b, int64_t *max_count,
                               int64_t *max_bytes);

/* ---- snapshots ------------------------------------------------------------------- */

/* Reads the session's counter, run state and up to max_count events after `after`
 * (about max_bytes of them) into *out (zeroed first). id "u:<user>" reads that user's
 * feed. Free with answer_snapshot_free, also after an error. */
enum cgw_err answer_snapshot_read(struct bus *b, const char *id, int64_t after, int64_t max_count,
                                  int64_t max_bytes, struct sub_snapshot *out,
                                  struct cgw_error *err);

/* Reads the open permission requests into s unless it has them already; none (and no
 * Redis command) when s's read found no running run. Call after answer_snapshot_read. */
enum cgw_err answer_snapshot_perms(struct bus *b, const char *id, struct sub_snapshot *s,
                                   struct cgw_error *err);

void answer_snapshot_free(struct sub_snapshot *s);

/* Index of the first event of s with seq > cursor (s->read.n when none). */
size_t answer_first_after(const struct sub_snapshot *s, int64_t cursor);

/* True when events after ss->cursor existed but the next one, cursor + 1, is not in
 * s's live buffer (trimmed, expired, or lost with Redis' data): the ack's truncated. */
bool answer_hole(const struct sub_snapshot *s, const struct sub_session *ss);

/* True when a request for ss must be answered now because of s: an event after its
 * cursor, more events than s holds, or a hole (events after the cursor are gone). */
bool answer_snapshot_news(const struct sub_snapshot *s, const struct sub_session *ss);

/* True when s holds every event after ss->cursor that one answer may carry (s was
 * read after ss->cursor or earlier and was not cut before it). */
bool answer_snapshot_covers(const struct sub_snapshot *s, const struct sub_session *ss);

/* ---- the answer ------------------------------------------------------------------ */

/* Builds the answer body for sessions ss[0..n) with their snapshots (snaps[i] for
 * found sessions, read with permissions; ignored for the others). Returns a new
 * reference, or NULL when memory ran out. */
json_t *answer_build(const struct config *cfg, const struct sub_session *ss, size_t n,
                     struct sub_snapshot *const *snaps);

/* The same answer as JSON text (one line and a line break), written directly; *n_frames
 * (may be NULL) receives the frames it holds. A new string, or NULL when memory ran out. */
char *answer_build_text(const struct config *cfg, const struct sub_session *ss, size_t n,
                        struct sub_snapshot *const *snaps, size_t *n_frames);

/* True when text[0..len) is surely one JSON object that json_loadb accepts, found
 * without building it; false when it is not or when the quick check cannot tell (then
 * ask Jansson). answer_build_text copies such a stored text as it is. */
bool answer_json_object_sure(const char *text, size_t len);

/* ---- the stream (GET /chat/stream, Server-Sent Events) ------------------------------- */

/* Text of a stream being written; failed once memory ran out (nothing is appended then). */
struct sse_text {
    char *buf;
    size_t len, cap;
    bool failed;
};

void sse_append(struct sse_text *t, const char *s, size_t len);
void sse_text_free(struct sse_text *t);

/* The stream's cursors in the id: field, appended to t: "<sessionId>:<seq>" per found
 * session and "f:<feedSeq>" for the feed, in request order, joined by ",". The client's
 * Last-Event-ID gives them back on reconnect (h_subscribe.c parses it). */
void sse_cursor_id(struct sse_text *t, const struct sub_session *ss, size_t n);

/* One event: "id: <id>\n" when id is not NULL, "event: <frame's kind>\n", "data: <the
 * frame as one line of JSON>\n\n". */
void sse_frame(struct sse_text *t, const char *id, json_t *frame);

/* The same for a stored event (JSON text of session_id's event seq, as in an answer):
 * its text as stored when it is one JSON object on one line, else re-encoded. */
void sse_stored(struct sse_text *t, const char *id, const char *json, size_t len,
                const char *session_id, int64_t seq);

/* The chat_subscribed ack of ss as read in s (s read with permissions; NULL for a
 * session that is not the caller's) as one event, written as text: answer_ack's frame. */
void sse_ack(struct sse_text *t, const char *id, const struct sub_session *ss,
             const struct sub_snapshot *s);

/* The chat_subscribed ack of ss as read in s (s read with permissions; NULL for a
 * session that is not the caller's), as in answer_build. New reference or NULL. */
json_t *answer_ack(const struct sub_session *ss, const struct sub_snapshot *s);

/* The stream's truncated frame for ss (events after its cursor are gone, answer_hole):
 * {kind:"truncated", sessionId (null for the feed), feed, after, firstSeq, lastSeq}.
 * New reference or NULL. */
json_t *answer_truncated(const struct sub_session *ss, const struct sub_snapshot *s);

/* The session's high-water mark as s shows it (Redis' counter, or SQLite's). */
int64_t answer_last_seq(const struct sub_snapshot *s, const struct sub_session *ss);

/* ---- abort ------------------------------------------------------------------------ */

/* True when s (may be NULL: not read) shows that run_id is no longer running: it
 * completed, or another run (or none) is the session's now. */
bool answer_abort_done(const struct sub_snapshot *s, const char *run_id);

/* The abort answer {sessionId, runId, completed, seq?} (DESIGN §3.4): completed as
 * answer_abort_done says; seq the session's counter when the run completed and is still
 * the session's, null when it was replaced. Returns a new reference, or NULL (no memory). */
json_t *answer_abort_build(const char *session_id, const char *run_id,
                           const struct sub_snapshot *s);

/* Frees the ids of ss[0..n) and the array. */
void answer_sessions_free(struct sub_session *ss, size_t n);

#endif
