/* answer.c: a subscribe's snapshots, its budget and its answer JSON (answer.h). */
#include "fcgi/answer.h"

#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/util.h"

/* ---- the budget ---------------------------------------------------------------------- */

void answer_budget_init(struct answer_budget *b, const struct config *cfg,
                        const struct sub_session *ss, size_t n)
{
    int64_t acks = 0;
    for (size_t i = 0; i < n; i++)
        acks += !ss[i].feed;
    b->frames_left = cfg->max_frames - acks;
    b->bytes_left = cfg->max_answer_bytes;
    b->any = false;
}

bool answer_budget_fits(const struct answer_budget *b, size_t len)
{
    /* At least one event per answer, so that many sessions or one large event cannot
     * stall a client. */
    return !b->any || (b->frames_left > 0 && (int64_t)len <= b->bytes_left);
}

void answer_budget_take(struct answer_budget *b, size_t len)
{
    b->frames_left--;
    b->bytes_left -= (int64_t)len;
    b->any = true;
}

void answer_budget_read_limits(const struct answer_budget *b, int64_t *max_count,
                               int64_t *max_bytes)
{
    if (b->any && (b->frames_left <= 0 || b->bytes_left <= 0)) {
        *max_count = 0;
        *max_bytes = 1; /* 0 would mean "no limit" to the bus */
        return;
    }
    *max_count = b->frames_left > 1 ? b->frames_left : 1;
    *max_bytes = b->bytes_left;
}

/* ---- snapshots ------------------------------------------------------------------ */

enum cgw_err answer_snapshot_read(struct bus *b, const char *id, int64_t after, int64_t max_count,
                                  int64_t max_bytes, struct sub_snapshot *out,
                                  struct cgw_error *err)
{
    memset(out, 0, sizeof *out);
    out->after = after;
    if (max_count < 0)
        max_count = 0;
    if (max_bytes <= 0)
        max_bytes = 1; /* 0 would mean "no limit" to the bus */
    int64_t user;
    if (strncmp(id, "u:", 2) == 0) {
        if (cgw_parse_int64(id + 2, 1, INT64_MAX, &user) < 0)
            return cgw_error_set(err, CGW_ERR_INVALID, "bad feed id %s", id);
        return bus_feed_read(b, user, after, max_count, max_bytes, &out->read, err);
    }
    return bus_events_read(b, id, after, max_count, max_bytes, &out->read, err);
}

enum cgw_err answer_snapshot_perms(struct bus *b, const char *id, struct sub_snapshot *s,
                                   struct cgw_error *err)
{
    /* A feed has none, and open permission requests exist only while a run is running
     * (its complete, also the reaper's, deletes them): an idle session costs no second
     * Redis round trip. s->read is the snapshot's read, made before this call. */
    if (s->have_perms || strncmp(id, "u:", 2) == 0 || s->read.status != RUN_RUNNING) {
        s->have_perms = true;
        return CGW_OK;
    }
    enum cgw_err rc = bus_perm_list(b, id, &s->perms, &s->n_perms, err);
    if (rc == CGW_OK)
        s->have_perms = true;
    return rc;
}

void answer_snapshot_free(struct sub_snapshot *s)
{
    bus_read_free(&s->read);
    bus_strings_free(s->perms, s->n_perms);
    memset(s, 0, sizeof *s);
}

/* Events are in seq order: a binary search. */
size_t answer_first_after(const struct sub_snapshot *s, int64_t c)
{
    size_t lo = 0, hi = s->read.n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->read.events[mid].seq <= c)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* The session's high-water mark: Redis' counter, or SQLite's if Redis lost data. */
static int64_t last_seq(const struct sub_snapshot *s, const struct sub_session *ss)
{
    return s->read.last_seq > ss->store_last ? s->read.last_seq : ss->store_last;
}

/* seq has no gaps, so the first event after the cursor must be exactly cursor + 1. */
bool answer_hole(const struct sub_snapshot *s, const struct sub_session *ss)
{
    if (ss->cursor >= last_seq(s, ss))
        return false;
    size_t i = answer_first_after(s, ss->cursor);
    if (i < s->read.n)
        return s->read.events[i].seq != ss->cursor + 1;
    /* Nothing after the cursor in s: without more, those events are gone; with more (s
     * was cut before them), the start of the live buffer tells. */
    if (!s->read.more)
        return true;
    return s->read.first_seq > 0 && ss->cursor + 1 < s->read.first_seq;
}

bool answer_snapshot_news(const struct sub_snapshot *s, const struct sub_session *ss)
{
    return s->read.more || answer_first_after(s, ss->cursor) < s->read.n || answer_hole(s, ss);
}

bool answer_snapshot_covers(const struct sub_snapshot *s, const struct sub_session *ss)
{
    if (s->after > ss->cursor)
        return false;
    return !s->read.more || (s->read.n > 0 && s->read.events[s->read.n - 1].seq > ss->cursor);
}

/* ---- the answer ------------------------------------------------------------------ */

/* Stored JSON (events, permission requests) as a value; text that does not parse
 * (it never should: the bus stores what publishers encoded) becomes an error event
 * with the same seq, so the client's sequence has no silent gap. */
static json_t *stored_json(const char *text, size_t len, const char *session_id, int64_t seq)
{
    json_error_t jerr;
    json_t *v = json_loadb(text, len, 0, &jerr);
    if (v && json_is_object(v))
        return v;
    json_decref(v);
    log_error("session %s: stored event %lld is not a JSON object: %s", session_id, (long long)seq,
              jerr.text);
    return json_pack("{s:s, s:s, s:I, s:s}", "kind", "error", "sessionId", session_id, "seq",
                     (json_int_t)seq, "content", "this event could not be decoded");
}

static json_t *ack_new(const struct sub_session *ss, const struct sub_snapshot *s, const char *ts)
{
    json_t *perms = json_array();
    bool running = false;
    int64_t last = 0, first = 0;
    bool truncated = false;

    if (!perms)
        return NULL;
    if (ss->found && s) {
        running = s->read.status == RUN_RUNNING;
        last = last_seq(s, ss);
        first = s->read.first_seq;
        truncated = answer_hole(s, ss);
        for (size_t i = 0; i < s->n_perms; i++) {
            json_t *p = json_loads(s->perms[i], 0, NULL);
            if (!json_is_object(p)) {
                log_error("session %s: a stored permission request is not a JSON object", ss->id);
                json_decref(p);
                continue;
            }
            if (json_array_append_new(perms, p) < 0) {
                json_decref(perms);
                return NULL;
            }
        }
    }
    json_t *run_id = running && s->read.run_id[0] ? json_string(s->read.run_id) : json_null();
    return json_pack("{s:s, s:s, s:b, s:b, s:o, s:I, s:I, s:b, s:o, s:s}", "kind",
                     "chat_subscribed", "sessionId", ss->id, "found", ss->found && s,
                     "isProcessing", running, "runId", run_id, "lastSeq", (json_int_t)last,
                     "firstSeq", (json_int_t)first, "truncated", truncated, "pendingPermissions",
                     perms, "timestamp", ts);
}

/* Appends the events of s after ss->cursor that the budget lets in; *more when some
 * were left out (by the budget, or because s itself was cut). Returns 0, or -1 when
 * memory ran out. */
static int add_events(json_t *frames, const struct sub_session *ss, const struct sub_snapshot *s,
                      struct answer_budget *b, bool *more)
{
    size_t j = answer_first_after(s, ss->cursor);
    for (; j < s->read.n; j++) {
        const struct bus_event *e = &s->read.events[j];
        if (!answer_budget_fits(b, e->len)) {
            *more = true;
            return 0;
        }
        json_t *v = stored_json(e->json, e->len, ss->id, e->seq);
        if (!v || json_array_append_new(frames, v) < 0)
            return -1;
        answer_budget_take(b, e->len);
    }
    if (s->read.more)
        *more = true;
    return 0;
}

/* The feed's cursor travels at the top: the client polls again with feed=feedSeq;
 * feedTruncated says frames after its cursor are gone (reload the session list). */
static int add_feed_cursor(json_t *body, const struct sub_session *ss, const struct sub_snapshot *s)
{
    int64_t last = s->read.last_seq > ss->cursor ? s->read.last_seq : ss->cursor;
    if (json_object_set_new(body, "feedSeq", json_integer(last)) < 0 ||
        json_object_set_new(body, "feedTruncated", json_boolean(answer_hole(s, ss))) < 0)
        return -1;
    return 0;
}

json_t *answer_build(const struct config *cfg, const struct sub_session *ss, size_t n,
                     struct sub_snapshot *const *snaps)
{
    char ts[CGW_ISO_TIME_LEN + 1];
    json_t *frames = json_array();
    struct answer_budget budget;
    bool more = false;

    if (!frames)
        return NULL;
    answer_budget_init(&budget, cfg, ss, n);
    cgw_time_iso(cgw_now_ms(), ts);
    for (size_t i = 0; i < n; i++) {
        if (ss[i].feed)
            continue; /* the feed has no ack */
        json_t *ack = ack_new(&ss[i], ss[i].found ? snaps[i] : NULL, ts);
        if (!ack || json_array_append_new(frames, ack) < 0)
            goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        if (ss[i].found && snaps[i] && add_events(frames, &ss[i], snaps[i], &budget, &more) < 0)
            goto fail;
    }
    json_t *body = json_pack("{s:o, s:b}", "frames", frames, "more", more);
    for (size_t i = 0; body && i < n; i++) {
        if (ss[i].feed && snaps[i] && add_feed_cursor(body, &ss[i], snaps[i]) < 0) {
            json_decref(body);
            body = NULL;
        }
    }
    return body;
fail:
    json_decref(frames);
    return NULL;
}

json_t *answer_ack(const struct sub_session *ss, const struct sub_snapshot *s)
{
    char ts[CGW_ISO_TIME_LEN + 1];
    cgw_time_iso(cgw_now_ms(), ts);
    return ack_new(ss, ss->found ? s : NULL, ts);
}

int64_t answer_last_seq(const struct sub_snapshot *s, const struct sub_session *ss)
{
    return last_seq(s, ss);
}

json_t *answer_truncated(const struct sub_session *ss, const struct sub_snapshot *s)
{
    return json_pack("{s:s, s:o, s:b, s:I, s:I, s:I}", "kind", "truncated", "sessionId",
                     ss->feed ? json_null() : json_string(ss->id), "feed", ss->feed, "after",
                     (json_int_t)ss->cursor, "firstSeq", (json_int_t)s->read.first_seq, "lastSeq",
                     (json_int_t)last_seq(s, ss));
}

void sse_append(struct sse_text *t, const char *s, size_t len)
{
    if (t->failed)
        return;
    if (t->len + len + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 1024;
        while (cap < t->len + len + 1)
            cap *= 2;
        char *bigger = realloc(t->buf, cap);
        if (!bigger) {
            t->failed = true;
            return;
        }
        t->buf = bigger;
        t->cap = cap;
    }
    memcpy(t->buf + t->len, s, len);
    t->len += len;
    t->buf[t->len] = '\0';
}

static void sse_puts(struct sse_text *t, const char *s)
{
    sse_append(t, s, strlen(s));
}

void sse_text_free(struct sse_text *t)
{
    free(t->buf);
    memset(t, 0, sizeof *t);
}

void sse_cursor_id(struct sse_text *t, const struct sub_session *ss, size_t n)
{
    char num[32];
    bool first = true;
    for (size_t i = 0; i < n; i++) {
        if (!ss[i].found)
            continue;
        if (!first)
            sse_puts(t, ",");
        first = false;
        sse_puts(t, ss[i].feed ? "f" : ss[i].id);
        snprintf(num, sizeof num, ":%lld", (long long)ss[i].cursor);
        sse_puts(t, num);
    }
}

/* The event name: the frame's kind when it is a plain word, else "message". */
static void sse_event_line(struct sse_text *t, const char *id, json_t *frame)
{
    const char *kind = json_string_value(json_object_get(frame, "kind"));
    if (!kind || !*kind || strlen(kind) > 64 ||
        strspn(kind, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") !=
            strlen(kind))
        kind = "message";
    if (id) {
        sse_puts(t, "id: ");
        sse_puts(t, id);
        sse_puts(t, "\n");
    }
    sse_puts(t, "event: ");
    sse_puts(t, kind);
    sse_puts(t, "\ndata: ");
}

void sse_frame(struct sse_text *t, const char *id, json_t *frame)
{
    /* Compact JSON has no line break: one data: line. */
    char *text = frame ? json_dumps(frame, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    if (!text) {
        t->failed = true;
        return;
    }
    sse_event_line(t, id, frame);
    sse_puts(t, text);
    sse_puts(t, "\n\n");
    free(text);
}

void sse_stored(struct sse_text *t, const char *id, const char *json, size_t len,
                const char *session_id, int64_t seq)
{
    json_t *v = stored_json(json, len, session_id, seq);
    if (!v) {
        t->failed = true;
        return;
    }
    sse_frame(t, id, v); /* re-encoded: one line, also when stored text had breaks */
    json_decref(v);
}

void answer_sessions_free(struct sub_session *ss, size_t n)
{
    for (size_t i = 0; ss && i < n; i++)
        free(ss[i].id);
    free(ss);
}

/* ---- abort ------------------------------------------------------------------------- */

bool answer_abort_done(const struct sub_snapshot *s, const char *run_id)
{
    return s && (strcmp(s->read.run_id, run_id) != 0 || s->read.status != RUN_RUNNING);
}

json_t *answer_abort_build(const char *session_id, const char *run_id, const struct sub_snapshot *s)
{
    bool completed = answer_abort_done(s, run_id);
    json_t *ans = json_pack("{s:s, s:s, s:b}", "sessionId", session_id, "runId", run_id,
                            "completed", completed);
    if (ans && completed) {
        bool same = strcmp(s->read.run_id, run_id) == 0 && s->read.last_seq > 0;
        if (json_object_set_new(ans, "seq", same ? json_integer(s->read.last_seq) : json_null()) <
            0) {
            json_decref(ans);
            ans = NULL;
        }
    }
    return ans;
}
