/* subscribe.c: GET/POST /chat/subscribe: decoding, the answer builder, answer now or park. */
#include "fcgi/subscribe.h"

#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/util.h"
#include "fcgi/handlers.h"
#include "fcgi/poller.h"

#define SEQ_MAX (((int64_t)1 << 53) - 1) /* seqs stay exact in JSON numbers and Lua */
#define SESSION_ID_MAX 128               /* longer ids cannot exist; refused as input */

/* ---- snapshots ------------------------------------------------------------------ */

enum cgw_err sub_snapshot_read(struct bus *b, const char *id, int64_t after, int64_t max_count,
                               int64_t max_bytes, struct sub_snapshot *out, struct cgw_error *err)
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

enum cgw_err sub_snapshot_perms(struct bus *b, const char *id, struct sub_snapshot *s,
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

void sub_snapshot_free(struct sub_snapshot *s)
{
    bus_read_free(&s->read);
    bus_strings_free(s->perms, s->n_perms);
    memset(s, 0, sizeof *s);
}

/* Index of the first event of s with seq > c (s->read.n when none): events are in
 * seq order. */
static size_t first_after(const struct sub_snapshot *s, int64_t c)
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

/* Events after the cursor existed but the next one, cursor + 1, is not in the live
 * buffer (trimmed, expired, or lost with Redis' data): seq has no gaps, so the first
 * event after the cursor must be exactly cursor + 1. */
static bool hole(const struct sub_snapshot *s, const struct sub_session *ss)
{
    if (ss->cursor >= last_seq(s, ss))
        return false;
    size_t i = first_after(s, ss->cursor);
    if (i < s->read.n)
        return s->read.events[i].seq != ss->cursor + 1;
    /* Nothing after the cursor in s: without more, those events are gone; with more (s
     * was cut before them), the start of the live buffer tells. */
    if (!s->read.more)
        return true;
    return s->read.first_seq > 0 && ss->cursor + 1 < s->read.first_seq;
}

bool sub_snapshot_news(const struct sub_snapshot *s, const struct sub_session *ss)
{
    return s->read.more || first_after(s, ss->cursor) < s->read.n || hole(s, ss);
}

bool sub_snapshot_covers(const struct sub_snapshot *s, const struct sub_session *ss)
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
        truncated = hole(s, ss);
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

json_t *sub_answer(const struct config *cfg, const struct sub_session *ss, size_t n,
                   struct sub_snapshot *const *snaps)
{
    char ts[CGW_ISO_TIME_LEN + 1];
    json_t *frames = json_array();
    int64_t frames_left = cfg->max_frames - (int64_t)n, bytes_left = cfg->max_answer_bytes;
    bool any = false, more = false;

    if (!frames)
        return NULL;
    cgw_time_iso(cgw_now_ms(), ts);
    for (size_t i = 0; i < n; i++) {
        if (ss[i].feed) {
            frames_left++; /* the feed has no ack */
            continue;
        }
        json_t *ack = ack_new(&ss[i], ss[i].found ? snaps[i] : NULL, ts);
        if (!ack || json_array_append_new(frames, ack) < 0)
            goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        const struct sub_snapshot *s = ss[i].found ? snaps[i] : NULL;
        if (!s)
            continue;
        size_t j = first_after(s, ss[i].cursor);
        for (; j < s->read.n; j++) {
            const struct bus_event *e = &s->read.events[j];
            /* At least one event per answer, so that many sessions or one large event
             * cannot stall a client. */
            if (any && (frames_left <= 0 || (int64_t)e->len > bytes_left)) {
                more = true;
                break;
            }
            json_t *v = stored_json(e->json, e->len, ss[i].id, e->seq);
            if (!v || json_array_append_new(frames, v) < 0)
                goto fail;
            frames_left--;
            bytes_left -= (int64_t)e->len;
            any = true;
        }
        if (j == s->read.n && s->read.more)
            more = true;
    }
    json_t *body = json_pack("{s:o, s:b}", "frames", frames, "more", more);
    /* The feed's cursor travels at the top: the client polls again with feed=feedSeq;
     * feedTruncated says frames after its cursor are gone (reload the session list). */
    for (size_t i = 0; body && i < n; i++) {
        if (ss[i].feed && snaps[i]) {
            int64_t last =
                snaps[i]->read.last_seq > ss[i].cursor ? snaps[i]->read.last_seq : ss[i].cursor;
            json_object_set_new(body, "feedSeq", json_integer(last));
            json_object_set_new(body, "feedTruncated", json_boolean(hole(snaps[i], &ss[i])));
        }
    }
    return body;
fail:
    json_decref(frames);
    return NULL;
}

void sub_sessions_free(struct sub_session *ss, size_t n)
{
    for (size_t i = 0; ss && i < n; i++)
        free(ss[i].id);
    free(ss);
}

/* ---- decoding ---------------------------------------------------------------------- */

struct sub_request {
    struct sub_session *s;
    size_t n, cap;
    size_t n_given; /* entries as sent, before duplicates were merged */
    int64_t wait_ms;
    bool has_feed;
    int64_t feed; /* the feed cursor (feedSeq) when has_feed */
};

/* waitMs is clamped, not refused: below 0 is 0 (answer at once), above
 * limits.wait_ms_max is the maximum. Only a value that is not an integer is 400. */
static int64_t clamp_wait(const struct config *cfg, int64_t ms)
{
    if (ms < 0)
        return 0;
    return ms > cfg->wait_ms_max ? cfg->wait_ms_max : ms;
}

/* Adds one requested session; the same id twice is one session with the smaller
 * cursor (an absent lastSeq yields to a given one). Returns 0 or -1 with resp set. */
static int add_session(const struct config *cfg, struct sub_request *r, const char *id,
                       bool has_cursor, int64_t cursor, struct response *resp)
{
    if (++r->n_given > (size_t)cfg->max_subscribe_sessions) {
        response_error(resp, CODE_INVALID_REQUEST, NULL, "at most %lld sessions per subscribe",
                       (long long)cfg->max_subscribe_sessions);
        return -1;
    }
    if (!id || !*id || strspn(id, " \t\r\n") == strlen(id)) {
        response_error(resp, CODE_SESSION_ID_REQUIRED, NULL, "sessionId is required");
        return -1;
    }
    if (strlen(id) > SESSION_ID_MAX) {
        response_error(resp, CODE_INVALID_REQUEST, NULL, "sessionId is longer than %d bytes",
                       SESSION_ID_MAX);
        return -1;
    }
    json_t *probe = json_string(id); /* the id is echoed in the ack: it must be UTF-8 */
    if (!probe) {
        response_error(resp, CODE_INVALID_REQUEST, NULL, "sessionId must be UTF-8 text");
        return -1;
    }
    json_decref(probe);
    for (size_t i = 0; i < r->n; i++) {
        struct sub_session *o = &r->s[i];
        if (strcmp(o->id, id) != 0)
            continue;
        if (has_cursor && (o->from_now || cursor < o->cursor)) {
            o->cursor = cursor;
            o->from_now = false;
        }
        return 0;
    }
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 4;
        struct sub_session *bigger = realloc(r->s, cap * sizeof *bigger);
        if (!bigger)
            goto nomem;
        r->s = bigger;
        r->cap = cap;
    }
    struct sub_session *s = &r->s[r->n];
    memset(s, 0, sizeof *s);
    if (!(s->id = strdup(id)))
        goto nomem;
    s->cursor = has_cursor ? cursor : 0;
    s->from_now = !has_cursor;
    r->n++;
    return 0;
nomem:
    response_error(resp, CODE_INTERNAL_ERROR, NULL, "internal error");
    return -1;
}

/* ?sessionId=A&lastSeq=12&sessionId=B&waitMs=25000&feed=N: each lastSeq belongs to
 * the sessionId before it. Other parameters (access_token, cache busters) are ignored. */
static int parse_query(const struct config *cfg, const struct query *q, struct sub_request *r,
                       struct response *resp)
{
    const char *pending = NULL;
    bool has_cursor = false;
    int64_t cursor = 0, v;

    for (size_t i = 0; i < q->n; i++) {
        const char *k = q->keys[i], *val = q->values[i];
        if (strcmp(k, "sessionId") == 0) {
            if (pending && add_session(cfg, r, pending, has_cursor, cursor, resp) < 0)
                return -1;
            pending = val;
            has_cursor = false;
        } else if (strcmp(k, "lastSeq") == 0) {
            if (!pending) {
                response_error(resp, CODE_INVALID_REQUEST, NULL,
                               "lastSeq must follow the sessionId it belongs to");
                return -1;
            }
            if (has_cursor) {
                response_error(resp, CODE_INVALID_REQUEST, NULL,
                               "lastSeq is given twice for one sessionId");
                return -1;
            }
            if (cgw_parse_int64(val, 0, SEQ_MAX, &cursor) < 0) {
                response_error(resp, CODE_INVALID_REQUEST, NULL,
                               "lastSeq must be an integer from 0 to %lld", (long long)SEQ_MAX);
                return -1;
            }
            has_cursor = true;
        } else if (strcmp(k, "waitMs") == 0) {
            if (cgw_parse_int64(val, INT64_MIN, INT64_MAX, &v) < 0) {
                response_error(resp, CODE_INVALID_REQUEST, NULL, "waitMs must be an integer");
                return -1;
            }
            r->wait_ms = clamp_wait(cfg, v);
        } else if (strcmp(k, "feed") == 0) {
            if (cgw_parse_int64(val, 0, INT64_MAX, &v) < 0) {
                response_error(resp, CODE_INVALID_REQUEST, NULL,
                               "feed must be a non-negative integer");
                return -1;
            }
            r->has_feed = true;
            r->feed = v;
        }
    }
    if (pending && add_session(cfg, r, pending, has_cursor, cursor, resp) < 0)
        return -1;
    return 0;
}

/* {sessions:[{sessionId, lastSeq?}], waitMs?, feed?}; other members (the envelope's
 * type, fields of later versions) are ignored, known ones are type-checked. */
static int parse_json(const struct config *cfg, json_t *body, struct sub_request *r,
                      struct response *resp)
{
    json_t *sessions = json_object_get(body, "sessions");
    json_t *wait = json_object_get(body, "waitMs");
    json_t *feed = json_object_get(body, "feed");

    if (wait && !json_is_null(wait)) {
        if (!json_is_integer(wait)) {
            response_error(resp, CODE_INVALID_REQUEST, NULL, "waitMs must be an integer");
            return -1;
        }
        r->wait_ms = clamp_wait(cfg, json_integer_value(wait));
    }
    if (feed && !json_is_null(feed)) {
        if (!json_is_integer(feed) || json_integer_value(feed) < 0) {
            response_error(resp, CODE_INVALID_REQUEST, NULL, "feed must be a non-negative integer");
            return -1;
        }
        r->has_feed = true;
        r->feed = json_integer_value(feed);
    }
    if (!sessions || json_is_null(sessions))
        return 0;
    if (!json_is_array(sessions)) {
        response_error(resp, CODE_INVALID_REQUEST, NULL, "sessions must be an array");
        return -1;
    }
    if (json_array_size(sessions) > (size_t)cfg->max_subscribe_sessions) {
        response_error(resp, CODE_INVALID_REQUEST, NULL, "at most %lld sessions per subscribe",
                       (long long)cfg->max_subscribe_sessions);
        return -1;
    }
    size_t i;
    json_t *e;
    json_array_foreach(sessions, i, e)
    {
        if (!json_is_object(e)) {
            response_error(resp, CODE_INVALID_REQUEST, NULL, "sessions[%zu] must be an object", i);
            return -1;
        }
        json_t *id = json_object_get(e, "sessionId");
        json_t *seq = json_object_get(e, "lastSeq");
        if (id && !json_is_null(id) && !json_is_string(id)) {
            response_error(resp, CODE_INVALID_REQUEST, NULL,
                           "sessions[%zu].sessionId must be a string", i);
            return -1;
        }
        bool has_cursor = seq && !json_is_null(seq);
        if (has_cursor && (!json_is_integer(seq) || json_integer_value(seq) < 0 ||
                           json_integer_value(seq) > SEQ_MAX)) {
            response_error(resp, CODE_INVALID_REQUEST, NULL,
                           "sessions[%zu].lastSeq must be an integer from 0 to %lld", i,
                           (long long)SEQ_MAX);
            return -1;
        }
        if (add_session(cfg, r, json_is_string(id) ? json_string_value(id) : NULL, has_cursor,
                        has_cursor ? json_integer_value(seq) : 0, resp) < 0)
            return -1;
    }
    return 0;
}

/* ---- answer now, or park ----------------------------------------------------------- */

static void answer_or_park(struct worker *w, struct request *req, struct sub_request *r,
                           struct response *resp)
{
    const struct config *cfg = &w->app->cfg;
    struct sub_snapshot *snaps = NULL, **ptrs = NULL;
    struct store *st;
    struct bus *bus = NULL;
    struct cgw_error err;
    bool news = false, any_found = false;
    size_t n = r->n; /* r->s moves into the park below */

    if (r->n == 0 && !r->has_feed) {
        response_error(resp, CODE_SESSION_ID_REQUIRED, NULL, "sessionId is required");
        return;
    }
    /* The caller's session feed (DESIGN §3.4) is followed like one more session whose
     * id is "u:<user id>": read, watched and woken the same way, answered without ack. */
    if (r->has_feed) {
        struct sub_session *bigger = realloc(r->s, (r->n + 1) * sizeof *bigger);
        char id[32];
        snprintf(id, sizeof id, "u:%lld", (long long)req->user.id);
        if (!bigger || !(bigger[r->n].id = strdup(id))) {
            if (bigger)
                r->s = bigger;
            response_error(resp, CODE_INTERNAL_ERROR, NULL, "internal error");
            return;
        }
        r->s = bigger;
        r->cap = r->n + 1;
        struct sub_session *f = &r->s[r->n++];
        f->cursor = r->feed;
        f->store_last = 0;
        f->from_now = false;
        f->found = f->feed = true;
        any_found = true;
        n = r->n;
    }
    if (r->n > (r->has_feed ? 1u : 0u) && worker_store(w, &st, &err) != CGW_OK) {
        response_from_err(resp, &err, NULL);
        return;
    }
    /* Ownership: another user's session is found:false, exactly like an unknown one. */
    for (size_t i = 0; i < r->n; i++) {
        struct store_session row;
        struct sub_session *s = &r->s[i];
        if (s->feed || !cgw_uuid_valid(s->id))
            continue;
        enum cgw_err rc = store_session_get(st, s->id, req->user.id, &row, &err);
        if (rc == CGW_ERR_NOT_FOUND)
            continue;
        if (rc != CGW_OK) {
            response_from_err(resp, &err, NULL);
            return;
        }
        s->found = any_found = true;
        s->store_last = row.last_seq;
        store_session_clear(&row);
    }
    if (r->n > (r->has_feed ? 1u : 0u))
        store_read_end(st); /* the router's snapshot, if any: no SQLite from here on */
    if (any_found && worker_bus(w, &bus, &err) != CGW_OK) {
        response_from_err(resp, &err, NULL);
        return;
    }
    if (r->n > 0 &&
        (!(snaps = calloc(r->n, sizeof *snaps)) || !(ptrs = calloc(r->n, sizeof *ptrs)))) {
        response_error(resp, CODE_INTERNAL_ERROR, NULL, "internal error");
        goto out;
    }

    /* One read per session, sharing one answer's budget (the acks count as frames) in
     * request order. */
    int64_t frames_left = cfg->max_frames - (int64_t)n, bytes_left = cfg->max_answer_bytes;
    bool any_event = false;
    for (size_t i = 0; i < r->n; i++) {
        struct sub_session *s = &r->s[i];
        struct sub_snapshot *snap = &snaps[i];
        if (!s->found)
            continue;
        ptrs[i] = snap;
        enum cgw_err rc;
        if (s->from_now) {
            /* "From now": the cursor is the high-water mark; nothing to replay. */
            rc = sub_snapshot_read(bus, s->id, 0, 0, 0, snap, &err);
            if (rc == CGW_OK) {
                s->cursor = last_seq(snap, s);
                snap->after = s->cursor;
                snap->read.more = false;
            }
        } else {
            bool spent = any_event && (frames_left <= 0 || bytes_left <= 0);
            rc = sub_snapshot_read(bus, s->id, s->cursor,
                                   spent             ? 0
                                   : frames_left > 1 ? frames_left
                                                     : 1,
                                   spent ? 1 : bytes_left, snap, &err);
            for (size_t j = 0; rc == CGW_OK && j < snap->read.n; j++) {
                frames_left--;
                bytes_left -= (int64_t)snap->read.events[j].len;
                any_event = true;
            }
        }
        if (rc != CGW_OK) {
            response_from_err(resp, &err, s->id);
            goto out;
        }
        news = news || sub_snapshot_news(snap, s);
    }

    if (news || r->wait_ms == 0 || !w->app->poller) {
        for (size_t i = 0; i < r->n; i++) {
            if (r->s[i].found && sub_snapshot_perms(bus, r->s[i].id, &snaps[i], &err) != CGW_OK) {
                response_from_err(resp, &err, r->s[i].id);
                goto out;
            }
        }
        json_t *body = sub_answer(cfg, r->s, r->n, ptrs);
        if (!body)
            response_error(resp, CODE_INTERNAL_ERROR, NULL, "internal error");
        else
            response_json(resp, 200, body);
        goto out;
    }

    /* Nothing yet: hold the request in the poller (fcgi/main.c hands it over). */
    struct park *pk;
    enum cgw_err rc = poller_park_new(w->app->poller, req->user.id, req->method, req->origin,
                                      r->wait_ms, r->s, r->n, &pk, &err);
    r->s = NULL; /* the park owns the sessions now, also after a failure */
    r->n = r->cap = 0;
    if (rc == CGW_ERR_LIMIT)
        response_error(resp, CODE_TOO_MANY_REQUESTS, NULL,
                       "too many subscribe requests held for this user (limit %lld)",
                       (long long)cfg->max_polls_per_user);
    else if (rc != CGW_OK)
        response_from_err(resp, &err, NULL);
    else {
        resp->status = 200;
        resp->park = pk;
    }
out:
    for (size_t i = 0; snaps && i < n; i++)
        sub_snapshot_free(&snaps[i]);
    free(snaps);
    free(ptrs);
}

void h_subscribe(struct worker *w, struct request *req, const struct query *q,
                 struct response *resp)
{
    const struct config *cfg = &w->app->cfg;
    struct sub_request r = {.wait_ms = cfg->wait_ms_default};

    if (req->method == HTTP_POST) {
        json_t *body = http_json_body(req, cfg, false, resp);
        if (body) {
            subscribe_from_json(w, req, body, resp);
            json_decref(body);
        }
        return;
    }
    if (parse_query(cfg, q, &r, resp) == 0)
        answer_or_park(w, req, &r, resp);
    sub_sessions_free(r.s, r.n);
}

void subscribe_from_json(struct worker *w, struct request *req, json_t *body, struct response *resp)
{
    const struct config *cfg = &w->app->cfg;
    struct sub_request r = {.wait_ms = cfg->wait_ms_default};

    if (parse_json(cfg, body, &r, resp) == 0)
        answer_or_park(w, req, &r, resp);
    sub_sessions_free(r.s, r.n);
}
