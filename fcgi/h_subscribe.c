/* h_subscribe.c: GET/POST /chat/subscribe: decoding, then answer now or park. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/log.h"
#include "core/util.h"
#include "fcgi/answer.h"
#include "fcgi/handlers.h"
#include "fcgi/metrics.h"
#include "fcgi/poller.h"

#define SEQ_MAX (((int64_t)1 << 53) - 1) /* seqs stay exact in JSON numbers and Lua */
#define SESSION_ID_MAX 128               /* longer ids cannot exist; refused as input */

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
    /* The id is echoed in the ack: it must be UTF-8 (plain ASCII is; else Jansson says). */
    const char *c = id;
    while (*c && !(*c & 0x80))
        c++;
    json_t *probe = *c ? json_string(id) : NULL;
    if (*c && !probe) {
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
 * the sessionId before it. Other parameters (ticket, cache busters) are ignored. */
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

/* ---- the common body, without Jansson ------------------------------------------------- */

/* Almost every POST body is {"sessions":[{"sessionId":"<uuid>","lastSeq":N},...],
 * "waitMs":N, "feed":N} (make bench, callgrind: Jansson's parse was the largest single
 * cost of a no-wait subscribe). quick_parse reads exactly that shape: those member
 * names at most once each, session ids of [A-Za-z0-9_-] without escapes, integers of
 * at most 15 digits. Anything else — another member, an escape, a duplicate, a
 * fraction, null, a syntax error — is "not quick", and the body goes through
 * http_json_body and parse_json as before, which answer every error. What it accepts
 * it hands to the same add_session and clamp_wait, in parse_json's order, so the
 * result is the same. */
struct quick_session {
    const char *id;
    size_t id_len;
    bool has_cursor;
    int64_t cursor;
};

struct quick {
    const char *p, *end;
    bool has_sessions, has_wait, has_feed;
    int64_t wait, feed;
    struct quick_session s[16];
    size_t n;
};

static void q_ws(struct quick *q)
{
    while (q->p < q->end && (*q->p == ' ' || *q->p == '\t' || *q->p == '\n' || *q->p == '\r'))
        q->p++;
}

static bool q_char(struct quick *q, char c)
{
    q_ws(q);
    if (q->p < q->end && *q->p == c) {
        q->p++;
        return true;
    }
    return false;
}

/* A string of [A-Za-z0-9_-] (no escapes, nothing to check for UTF-8). */
static bool q_word(struct quick *q, const char **w, size_t *len)
{
    if (!q_char(q, '"'))
        return false;
    const char *start = q->p;
    while (q->p < q->end && ((*q->p >= 'a' && *q->p <= 'z') || (*q->p >= 'A' && *q->p <= 'Z') ||
                             (*q->p >= '0' && *q->p <= '9') || *q->p == '-' || *q->p == '_'))
        q->p++;
    if (q->p >= q->end || *q->p != '"')
        return false;
    *w = start;
    *len = (size_t)(q->p - start);
    q->p++;
    return true;
}

/* An integer as JSON writes one: -?(0|[1-9][0-9]*), at most 15 digits, no fraction. */
static bool q_int(struct quick *q, int64_t *v)
{
    q_ws(q);
    bool neg = q->p < q->end && *q->p == '-';
    if (neg)
        q->p++;
    const char *start = q->p;
    int64_t x = 0;
    while (q->p < q->end && *q->p >= '0' && *q->p <= '9' && q->p - start < 16)
        x = x * 10 + (*q->p++ - '0');
    size_t digits = (size_t)(q->p - start);
    if (digits == 0 || digits > 15 || (digits > 1 && *start == '0'))
        return false;
    if (q->p < q->end &&
        (*q->p == '.' || *q->p == 'e' || *q->p == 'E' || (*q->p >= '0' && *q->p <= '9')))
        return false;
    *v = neg ? -x : x;
    return true;
}

static bool q_is(const char *w, size_t len, const char *name)
{
    return strlen(name) == len && memcmp(w, name, len) == 0;
}

static bool q_session(struct quick *q, struct quick_session *out)
{
    const char *k;
    size_t len;
    bool has_id = false;

    memset(out, 0, sizeof *out);
    if (!q_char(q, '{'))
        return false;
    if (q_char(q, '}'))
        return false; /* no sessionId: parse_json's error */
    do {
        if (!q_word(q, &k, &len) || !q_char(q, ':'))
            return false;
        if (q_is(k, len, "sessionId") && !has_id) {
            if (!q_word(q, &out->id, &out->id_len))
                return false;
            has_id = true;
        } else if (q_is(k, len, "lastSeq") && !out->has_cursor) {
            if (!q_int(q, &out->cursor) || out->cursor < 0 || out->cursor > SEQ_MAX)
                return false;
            out->has_cursor = true;
        } else {
            return false;
        }
    } while (q_char(q, ','));
    return has_id && q_char(q, '}');
}

static bool q_sessions(struct quick *q)
{
    if (!q_char(q, '['))
        return false;
    if (q_char(q, ']'))
        return true;
    do {
        if (q->n == sizeof q->s / sizeof q->s[0] || !q_session(q, &q->s[q->n]))
            return false;
        q->n++;
    } while (q_char(q, ','));
    return q_char(q, ']');
}

static bool quick_parse(const struct request *req, struct quick *q)
{
    const char *k;
    size_t len;
    const char *ct = req->content_type ? req->content_type : "";

    /* http_json_body's checks first: what they refuse goes its way, for its error. */
    if (req->body_too_large || !req->body || req->body_len == 0 || strcspn(ct, "; \t") != 16 ||
        strncasecmp(ct, "application/json", 16) != 0)
        return false;
    memset(q, 0, offsetof(struct quick, s));
    q->n = 0;
    q->p = req->body;
    q->end = req->body + req->body_len;
    if (!q_char(q, '{'))
        return false;
    if (!q_char(q, '}')) {
        do {
            if (!q_word(q, &k, &len) || !q_char(q, ':'))
                return false;
            if (q_is(k, len, "sessions") && !q->has_sessions) {
                if (!q_sessions(q))
                    return false;
                q->has_sessions = true;
            } else if (q_is(k, len, "waitMs") && !q->has_wait) {
                if (!q_int(q, &q->wait))
                    return false;
                q->has_wait = true;
            } else if (q_is(k, len, "feed") && !q->has_feed) {
                if (!q_int(q, &q->feed) || q->feed < 0)
                    return false;
                q->has_feed = true;
            } else {
                return false;
            }
        } while (q_char(q, ','));
        if (!q_char(q, '}'))
            return false;
    }
    q_ws(q);
    return q->p == q->end;
}

/* parse_json's work on what quick_parse read. Returns 0 or -1 with resp set. */
static int quick_apply(const struct config *cfg, const struct quick *q, struct sub_request *r,
                       struct response *resp)
{
    char id[SESSION_ID_MAX + 2];

    if (q->has_wait)
        r->wait_ms = clamp_wait(cfg, q->wait);
    if (q->has_feed) {
        r->has_feed = true;
        r->feed = q->feed;
    }
    if (q->n > (size_t)cfg->max_subscribe_sessions) {
        response_error(resp, CODE_INVALID_REQUEST, NULL, "at most %lld sessions per subscribe",
                       (long long)cfg->max_subscribe_sessions);
        return -1;
    }
    for (size_t i = 0; i < q->n; i++) {
        const struct quick_session *qs = &q->s[i];
        size_t len =
            qs->id_len < sizeof id - 1 ? qs->id_len : sizeof id - 1; /* over 128: refused */
        memcpy(id, qs->id, len);
        id[len] = '\0';
        if (add_session(cfg, r, id, qs->has_cursor, qs->cursor, resp) < 0)
            return -1;
    }
    return 0;
}

/* ---- answer now, or park ----------------------------------------------------------- */

/* Stage 1. The caller's session feed (DESIGN §3.4) is followed like one more session
 * whose id is "u:<user id>": read, watched and woken the same way, answered without
 * ack. Returns 0 or -1 with resp set. */
static int add_feed(struct sub_request *r, int64_t user, struct response *resp)
{
    struct sub_session *bigger = realloc(r->s, (r->n + 1) * sizeof *bigger);
    char id[32];
    snprintf(id, sizeof id, "u:%lld", (long long)user);
    if (bigger)
        r->s = bigger;
    if (!bigger || !(bigger[r->n].id = strdup(id))) {
        response_error(resp, CODE_INTERNAL_ERROR, NULL, "internal error");
        return -1;
    }
    r->cap = r->n + 1;
    struct sub_session *f = &r->s[r->n++];
    f->cursor = r->feed;
    f->store_last = 0;
    f->from_now = false;
    f->found = f->feed = true;
    return 0;
}

/* Stage 2: which sessions are the caller's (the store, or the process's copy of what it
 * said: owner_cache.h). Another user's session is found:false, exactly like an unknown
 * one. Returns 0 or -1 with resp set. */
static int find_owned(struct worker *w, const struct request *req, struct sub_request *r,
                      struct response *resp)
{
    struct owner_cache *oc = w->app->poller ? poller_owner_cache(w->app->poller) : NULL;
    struct store *st = NULL;
    struct cgw_error err;
    size_t unknown = 0;

    for (size_t i = 0; i < r->n; i++) {
        struct sub_session *s = &r->s[i];
        if (s->feed || !cgw_uuid_valid(s->id))
            continue;
        if (oc && owner_cache_get(oc, s->id, req->user.id, &s->store_last))
            s->found = true;
        else
            unknown++;
    }
    if (unknown == 0) {           /* only the feed, or all known: no store read at all */
        store_read_end(w->store); /* the router's snapshot, if any */
        return 0;
    }
    uint64_t epoch = oc ? owner_cache_epoch(oc) : 0;
    if (worker_store(w, &st, &err) != CGW_OK) {
        response_from_err(resp, &err, NULL);
        return -1;
    }
    /* Several reads share one snapshot (one WAL read lock), unless the router's is open
     * (store_read_begin refuses then: that one serves). */
    if (unknown > 1)
        (void)store_read_begin(st, &err);
    for (size_t i = 0; i < r->n; i++) {
        struct store_session row;
        struct sub_session *s = &r->s[i];
        if (s->feed || s->found || !cgw_uuid_valid(s->id))
            continue;
        enum cgw_err rc = store_session_get(st, s->id, req->user.id, &row, &err);
        if (rc == CGW_ERR_NOT_FOUND)
            continue;
        if (rc != CGW_OK) {
            store_read_end(st);
            response_from_err(resp, &err, NULL);
            return -1;
        }
        s->found = true;
        s->store_last = row.last_seq;
        store_session_clear(&row);
        if (oc)
            owner_cache_put(oc, s->id, req->user.id, s->store_last, epoch);
    }
    store_read_end(st); /* the router's snapshot, if any: no SQLite from here on */
    return 0;
}

/* One session's read after cursor: from the process's copy (poller_cache.h) when it is
 * current and holds the events after cursor (a re-poll at or just behind the head costs
 * no Redis command), else from Redis, and that read is offered to the copy. */
static enum cgw_err snapshot_read(struct poller *p, struct bus *bus, const char *id, int64_t cursor,
                                  int64_t count, int64_t bytes, struct sub_snapshot *snap,
                                  struct cgw_error *err)
{
    struct poller_cache *c = p ? poller_cache(p) : NULL;
    if (c && poller_cache_snapshot(c, id, cursor, count, bytes, snap))
        return CGW_OK;
    uint64_t gen = c ? poller_cache_gen(c) : 0;
    enum cgw_err rc = answer_snapshot_read(bus, id, cursor, count, bytes, snap, err);
    if (rc == CGW_OK && c)
        poller_cache_store(c, id, snap, gen);
    return rc;
}

/* A session's "from now" read (no cursor given: only its counter and state), from the
 * process's copy when it is current, else from Redis, offered to the copy. */
static enum cgw_err from_now_read(struct poller *p, struct bus *bus, const char *id,
                                  struct sub_snapshot *snap, struct cgw_error *err)
{
    struct poller_cache *c = p ? poller_cache(p) : NULL;
    if (c && poller_cache_head(c, id, snap))
        return CGW_OK;
    uint64_t gen = c ? poller_cache_gen(c) : 0;
    enum cgw_err rc = answer_snapshot_read(bus, id, 0, 0, 0, snap, err);
    if (rc == CGW_OK && c)
        poller_cache_store_head(c, id, snap, gen);
    return rc;
}

/* Stage 3: one read per found session, sharing one answer's budget in request order.
 * *news says whether any of them must be answered now. Returns 0 or -1 with resp set. */
static int read_snapshots(struct poller *p, struct bus *bus, const struct config *cfg,
                          struct sub_request *r, struct sub_snapshot *snaps, bool *news,
                          struct response *resp)
{
    struct answer_budget budget;
    struct cgw_error err;
    int64_t count, bytes;

    answer_budget_init(&budget, cfg, r->s, r->n);
    for (size_t i = 0; i < r->n; i++) {
        struct sub_session *s = &r->s[i];
        struct sub_snapshot *snap = &snaps[i];
        if (!s->found)
            continue;
        enum cgw_err rc;
        if (s->from_now) {
            /* "From now": the cursor is the high-water mark; nothing to replay. */
            rc = from_now_read(p, bus, s->id, snap, &err);
            if (rc == CGW_OK) {
                s->cursor =
                    snap->read.last_seq > s->store_last ? snap->read.last_seq : s->store_last;
                snap->after = s->cursor;
                snap->read.more = false;
            }
        } else {
            answer_budget_read_limits(&budget, &count, &bytes);
            rc = snapshot_read(p, bus, s->id, s->cursor, count, bytes, snap, &err);
            for (size_t j = 0; rc == CGW_OK && j < snap->read.n; j++)
                answer_budget_take(&budget, snap->read.events[j].len);
        }
        if (rc != CGW_OK) {
            response_from_err(resp, &err, s->id);
            return -1;
        }
        *news = *news || answer_snapshot_news(snap, s);
    }
    return 0;
}

/* Stage 4: the answer, from the snapshots and the permission requests. */
static void answer_now(struct worker *w, struct bus *bus, const struct config *cfg,
                       struct sub_request *r, struct sub_snapshot *snaps, struct response *resp)
{
    struct sub_snapshot **ptrs = r->n ? calloc(r->n, sizeof *ptrs) : NULL;
    struct cgw_error err;

    if (r->n && !ptrs) {
        response_error(resp, CODE_INTERNAL_ERROR, NULL, "internal error");
        return;
    }
    for (size_t i = 0; i < r->n; i++) {
        if (!r->s[i].found)
            continue;
        if (answer_snapshot_perms(bus, r->s[i].id, &snaps[i], &err) != CGW_OK) {
            response_from_err(resp, &err, r->s[i].id);
            free(ptrs);
            return;
        }
        ptrs[i] = &snaps[i];
    }
    /* As text: no Jansson tree to build, dump and free (answer_build_text). */
    size_t frames = 0;
    char *text = answer_build_text(cfg, r->s, r->n, ptrs, &frames);
    if (!text) {
        response_error(resp, CODE_INTERNAL_ERROR, NULL, "internal error");
    } else {
        response_text(resp, 200, "application/json; charset=utf-8", text);
        metrics_frames(w->app->metrics, frames);
    }
    free(ptrs);
}

/* Stage 5: nothing yet: hold the request in the poller (fcgi/main.c hands it over).
 * The park takes r's sessions, also when it fails. */
static void park(struct worker *w, const struct request *req, struct sub_request *r, bool stream,
                 struct response *resp)
{
    struct park *pk;
    struct cgw_error err;
    enum cgw_err rc = stream
                          ? poller_park_stream_new(w->app->poller, req, r->s, r->n, &pk, &err)
                          : poller_park_new(w->app->poller, req, r->wait_ms, r->s, r->n, &pk, &err);
    r->s = NULL;
    r->n = r->cap = 0;
    if (rc == CGW_ERR_LIMIT) {
        response_error(resp, CODE_TOO_MANY_REQUESTS, NULL,
                       "too many subscribe requests held for this user (limit %lld)",
                       (long long)w->app->cfg.max_polls_per_user);
    } else if (rc == CGW_ERR_BUSY) {
        log_warn("subscribe refused: %s", err.text);
        response_error(resp, CODE_SERVER_BUSY, NULL,
                       "this server holds as many waiting requests as it may (limit %lld); "
                       "retry later",
                       (long long)w->app->cfg.max_polls);
    } else if (rc != CGW_OK) {
        response_from_err(resp, &err, NULL);
    } else {
        resp->status = 200;
        resp->park = pk;
    }
}

static void answer_or_park(struct worker *w, struct request *req, struct sub_request *r,
                           struct response *resp)
{
    const struct config *cfg = &w->app->cfg;
    struct sub_snapshot *snaps = NULL;
    struct bus *bus = NULL;
    struct cgw_error err;
    bool news = false, any_found = false;

    if (r->n == 0 && !r->has_feed) {
        response_error(resp, CODE_SESSION_ID_REQUIRED, NULL, "sessionId is required");
        return;
    }
    if ((r->has_feed && add_feed(r, req->user.id, resp) < 0) || find_owned(w, req, r, resp) < 0)
        return;
    for (size_t i = 0; i < r->n; i++)
        any_found = any_found || r->s[i].found;
    if (any_found && worker_bus(w, &bus, &err) != CGW_OK) {
        response_from_err(resp, &err, NULL);
        return;
    }
    size_t n = r->n; /* r->s moves into the park */
    if (n > 0 && !(snaps = calloc(n, sizeof *snaps))) {
        response_error(resp, CODE_INTERNAL_ERROR, NULL, "internal error");
        return;
    }
    if (read_snapshots(w->app->poller, bus, cfg, r, snaps, &news, resp) == 0) {
        if (news || r->wait_ms == 0 || !w->app->poller)
            answer_now(w, bus, cfg, r, snaps, resp);
        else
            park(w, req, r, false, resp);
    }
    for (size_t i = 0; i < n; i++)
        answer_snapshot_free(&snaps[i]);
    free(snaps);
}

void h_subscribe(struct worker *w, struct request *req, const struct query *q,
                 struct response *resp)
{
    const struct config *cfg = &w->app->cfg;
    struct sub_request r = {.wait_ms = cfg->wait_ms_default};

    if (req->method == HTTP_POST) {
        struct quick quick;
        if (cfg->max_json_depth >= 3 && quick_parse(req, &quick)) {
            if (quick_apply(cfg, &quick, &r, resp) == 0)
                answer_or_park(w, req, &r, resp);
            answer_sessions_free(r.s, r.n);
            return;
        }
        json_t *body = http_json_body(req, cfg, false, resp);
        if (body) {
            subscribe_from_json(w, req, body, resp);
            json_decref(body);
        }
        return;
    }
    if (parse_query(cfg, q, &r, resp) == 0)
        answer_or_park(w, req, &r, resp);
    answer_sessions_free(r.s, r.n);
}

void subscribe_from_json(struct worker *w, struct request *req, json_t *body, struct response *resp)
{
    const struct config *cfg = &w->app->cfg;
    struct sub_request r = {.wait_ms = cfg->wait_ms_default};

    if (parse_json(cfg, body, &r, resp) == 0)
        answer_or_park(w, req, &r, resp);
    answer_sessions_free(r.s, r.n);
}

/* ---- GET /chat/stream ---------------------------------------------------------------- */

/* Last-Event-ID (or ?lastEventId=) "<sessionId>:<seq>,...,f:<feedSeq>" (answer.h sse_cursor_id):
 * each cursor replaces the one the query gave its session (the feed's, when the query asks for the
 * feed); ids the query does not name are ignored. Returns 0 or -1 with resp set. */
static int resume(const char *last_id, struct sub_request *r, struct response *resp)
{
    char item[SESSION_ID_MAX + 32];
    int64_t seq;

    while (last_id && *last_id) {
        size_t len = strcspn(last_id, ",");
        const char *colon = memchr(last_id, ':', len);
        if (len >= sizeof item || !colon)
            goto bad;
        memcpy(item, last_id, len);
        item[len] = '\0';
        item[colon - last_id] = '\0';
        if (cgw_parse_int64(item + (colon - last_id) + 1, 0, SEQ_MAX, &seq) < 0)
            goto bad;
        if (strcmp(item, "f") == 0 && r->has_feed)
            r->feed = seq;
        for (size_t i = 0; i < r->n; i++) {
            if (strcmp(r->s[i].id, item) == 0) {
                r->s[i].cursor = seq;
                r->s[i].from_now = false;
            }
        }
        last_id += len + (last_id[len] == ',');
    }
    return 0;
bad:
    response_error(resp, CODE_INVALID_REQUEST, NULL,
                   "Last-Event-ID must be <sessionId>:<seq>,...[,f:<feedSeq>]");
    return -1;
}

/* The counter of each found from-now session: the stream starts after it. Returns 0 or
 * -1 with resp set. */
static int resolve_from_now(struct worker *w, struct sub_request *r, struct response *resp)
{
    struct bus *bus = NULL;
    struct cgw_error err;

    for (size_t i = 0; i < r->n; i++) {
        struct sub_session *s = &r->s[i];
        struct sub_snapshot snap = {0};
        if (!s->found || !s->from_now)
            continue;
        if ((!bus && worker_bus(w, &bus, &err) != CGW_OK) ||
            from_now_read(w->app->poller, bus, s->id, &snap, &err) != CGW_OK) {
            answer_snapshot_free(&snap);
            response_from_err(resp, &err, s->id);
            return -1;
        }
        s->cursor = snap.read.last_seq > s->store_last ? snap.read.last_seq : s->store_last;
        s->from_now = false;
        answer_snapshot_free(&snap);
    }
    return 0;
}

void h_stream(struct worker *w, struct request *req, const struct query *q, struct response *resp)
{
    const struct config *cfg = &w->app->cfg;
    struct sub_request r = {.wait_ms = 0};

    if (!w->app->poller) {
        response_error(resp, CODE_BACKEND_UNAVAILABLE, NULL, "streaming is not available");
        return;
    }
    /* ?lastEventId= is the header for a new EventSource (a fresh ticket in a new URL),
     * which cannot send Last-Event-ID itself; the header wins when both are there. */
    const char *last_id = req->last_event_id ? req->last_event_id : query_get(q, "lastEventId");
    if (parse_query(cfg, q, &r, resp) == 0 && resume(last_id, &r, resp) == 0) {
        if (r.n == 0 && !r.has_feed)
            response_error(resp, CODE_SESSION_ID_REQUIRED, NULL, "sessionId is required");
        else if ((!r.has_feed || add_feed(&r, req->user.id, resp) == 0) &&
                 find_owned(w, req, &r, resp) == 0 && resolve_from_now(w, &r, resp) == 0)
            park(w, req, &r, true, resp);
    }
    answer_sessions_free(r.s, r.n);
}
