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

/* ---- the answer as text -------------------------------------------------------------- */

/* The same answer as answer_build, written straight into text: no Jansson tree to build,
 * dump and free (make bench, callgrind: those were a third of the instructions of a
 * no-wait subscribe). Stored events and permission requests are still parsed, to check
 * that each is one JSON object as answer_build does, but their text is copied as it is. */

static void jt_puts(struct sse_text *t, const char *s)
{
    sse_append(t, s, strlen(s));
}

static void jt_int(struct sse_text *t, int64_t v)
{
    char buf[24], *p = buf + sizeof buf;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *--p = '-';
    sse_append(t, p, (size_t)(buf + sizeof buf - p));
}

static void jt_bool(struct sse_text *t, bool b)
{
    jt_puts(t, b ? "true" : "false");
}

/* A JSON string as Jansson writes it (JSON_COMPACT): '"', '\\' and control characters
 * escaped, everything else (UTF-8, checked where the text came in) as it is. */
static void jt_str(struct sse_text *t, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    const char *run = s;
    sse_append(t, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        sse_append(t, run, (size_t)(s - run));
        run = s + 1;
        char esc[7] = {'\\', 0};
        switch (c) {
        case '"':
            esc[1] = '"';
            break;
        case '\\':
            esc[1] = '\\';
            break;
        case '\b':
            esc[1] = 'b';
            break;
        case '\f':
            esc[1] = 'f';
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        default:
            memcpy(esc + 1, "u00", 3);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
        }
        jt_puts(t, esc);
    }
    sse_append(t, run, (size_t)(s - run));
    sse_append(t, "\"", 1);
}

/* ---- a quick check of stored JSON --------------------------------------------------
 * Whether a stored text is one JSON object that Jansson (json_loadb, no flags) surely
 * accepts, without building it. Conservative: anything it does not know for sure (a
 * \u0000 or a surrogate escape, a long number, deep nesting) is "not sure", and the
 * caller asks Jansson. It never says yes to a text Jansson refuses. */

struct qj {
    const unsigned char *p, *end;
    int depth;
    const unsigned char *kind; /* the top level's last "kind" when a string: its text */
    size_t kind_len;
};

static void qj_ws(struct qj *q)
{
    while (q->p < q->end && (*q->p == ' ' || *q->p == '\t' || *q->p == '\n' || *q->p == '\r'))
        q->p++;
}

static bool qj_hex4(const unsigned char *h, unsigned *v)
{
    *v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned c = h[i], d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            return false;
        *v = *v << 4 | d;
    }
    return true;
}

/* One UTF-8 sequence of a string at q->p (its lead byte >= 0x80): well-formed, not
 * overlong, no surrogate, at most U+10FFFF. */
static bool qj_utf8(struct qj *q)
{
    const unsigned char *p = q->p;
    unsigned c = *p, n, cp;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 1;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 2;
        cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 3;
        cp = c & 0x07;
    } else {
        return false;
    }
    if ((size_t)(q->end - p) <= n)
        return false;
    for (unsigned i = 1; i <= n; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return false;
        cp = cp << 6 | (p[i] & 0x3F);
    }
    if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return false;
    q->p = p + n + 1;
    return true;
}

static bool qj_string(struct qj *q)
{
    q->p++; /* the opening quote */
    while (q->p < q->end) {
        unsigned c = *q->p;
        if (c == '"') {
            q->p++;
            return true;
        }
        if (c < 0x20)
            return false;
        if (c >= 0x80) {
            if (!qj_utf8(q))
                return false;
            continue;
        }
        if (c != '\\') {
            q->p++;
            continue;
        }
        if (q->end - q->p < 2)
            return false;
        c = q->p[1];
        if (c == 'u') {
            unsigned v;
            if (q->end - q->p < 6 || !qj_hex4(q->p + 2, &v) || v == 0 ||
                (v >= 0xD800 && v <= 0xDFFF))
                return false; /* surrogate pairs and \u0000: Jansson decides */
            q->p += 6;
        } else if (strchr("\"\\/bfnrt", (int)c) && c) {
            q->p += 2;
        } else {
            return false;
        }
    }
    return false;
}

static bool qj_digits(struct qj *q, int *n)
{
    *n = 0;
    while (q->p < q->end && *q->p >= '0' && *q->p <= '9') {
        q->p++;
        (*n)++;
    }
    return *n > 0;
}

static bool qj_number(struct qj *q)
{
    int n, total;
    if (*q->p == '-')
        q->p++;
    if (q->p < q->end && *q->p == '0') {
        q->p++;
        n = 1;
    } else if (!qj_digits(q, &n)) {
        return false;
    }
    total = n;
    bool real = false;
    if (q->p < q->end && *q->p == '.') {
        q->p++;
        if (!qj_digits(q, &n))
            return false;
        total += n;
        real = true;
    }
    if (q->p < q->end && (*q->p == 'e' || *q->p == 'E')) {
        q->p++;
        if (q->p < q->end && (*q->p == '+' || *q->p == '-'))
            q->p++;
        if (!qj_digits(q, &n) || n > 2)
            return false; /* no overflow to think about: at most e99 */
        real = true;
    }
    /* An integer of up to 18 digits fits json_int_t; a real of up to 17 digits and
     * exponent 99 is a finite double. Longer ones: Jansson decides. */
    return real ? total <= 17 : total <= 18;
}

static bool qj_value(struct qj *q);

static bool qj_object(struct qj *q)
{
    if (++q->depth > 64)
        return false;
    q->p++; /* { */
    qj_ws(q);
    if (q->p < q->end && *q->p == '}') {
        q->p++;
        q->depth--;
        return true;
    }
    for (;;) {
        const unsigned char *key = q->p, *value;
        if (q->p >= q->end || *q->p != '"' || !qj_string(q))
            return false;
        bool kind = q->depth == 1 && q->p - key == 6 && memcmp(key, "\"kind\"", 6) == 0;
        qj_ws(q);
        if (q->p >= q->end || *q->p != ':')
            return false;
        q->p++;
        qj_ws(q);
        value = q->p;
        if (!qj_value(q))
            return false;
        if (kind) { /* the last one counts, as in Jansson's object */
            q->kind = *value == '"' ? value + 1 : NULL;
            q->kind_len = *value == '"' ? (size_t)(q->p - value - 2) : 0;
        }
        qj_ws(q);
        if (q->p >= q->end)
            return false;
        if (*q->p == '}') {
            q->p++;
            q->depth--;
            return true;
        }
        if (*q->p != ',')
            return false;
        q->p++;
        qj_ws(q);
    }
}

static bool qj_array(struct qj *q)
{
    if (++q->depth > 64)
        return false;
    q->p++; /* [ */
    qj_ws(q);
    if (q->p < q->end && *q->p == ']') {
        q->p++;
        q->depth--;
        return true;
    }
    for (;;) {
        if (!qj_value(q))
            return false;
        qj_ws(q);
        if (q->p >= q->end)
            return false;
        if (*q->p == ']') {
            q->p++;
            q->depth--;
            return true;
        }
        if (*q->p != ',')
            return false;
        q->p++;
        qj_ws(q);
    }
}

static bool qj_word(struct qj *q, const char *w, size_t n)
{
    if ((size_t)(q->end - q->p) < n || memcmp(q->p, w, n) != 0)
        return false;
    q->p += n;
    return true;
}

static bool qj_value(struct qj *q)
{
    if (q->p >= q->end)
        return false;
    switch (*q->p) {
    case '{':
        return qj_object(q);
    case '[':
        return qj_array(q);
    case '"':
        return qj_string(q);
    case 't':
        return qj_word(q, "true", 4);
    case 'f':
        return qj_word(q, "false", 5);
    case 'n':
        return qj_word(q, "null", 4);
    default:
        return (*q->p == '-' || (*q->p >= '0' && *q->p <= '9')) && qj_number(q);
    }
}

static bool qj_top(struct qj *q, const char *text, size_t len)
{
    *q = (struct qj){.p = (const unsigned char *)text, .end = (const unsigned char *)text + len};
    qj_ws(q);
    if (q->p >= q->end || *q->p != '{' || !qj_object(q))
        return false;
    qj_ws(q);
    return q->p == q->end;
}

bool answer_json_object_sure(const char *text, size_t len)
{
    struct qj q;
    return qj_top(&q, text, len);
}

/* A stored JSON text (event, permission request) when it is one JSON object, else what
 * stored_json makes of it. -1 when memory ran out. */
static int jt_stored(struct sse_text *t, const char *text, size_t len, const char *session_id,
                     int64_t seq)
{
    if (answer_json_object_sure(text, len)) {
        sse_append(t, text, len);
        return 0;
    }
    json_t *v = json_loadb(text, len, 0, NULL);
    if (v && json_is_object(v)) {
        json_decref(v);
        sse_append(t, text, len);
        return 0;
    }
    json_decref(v);
    if (!(v = stored_json(text, len, session_id, seq)))
        return -1;
    char *dumped = json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(v);
    if (!dumped)
        return -1;
    jt_puts(t, dumped);
    free(dumped);
    return 0;
}

/* The ack, as ack_new builds it. */
static int jt_ack(struct sse_text *t, const struct sub_session *ss, const struct sub_snapshot *s,
                  const char *ts)
{
    bool found = ss->found && s;
    bool running = found && s->read.status == RUN_RUNNING;
    jt_puts(t, "{\"kind\":\"chat_subscribed\",\"sessionId\":");
    jt_str(t, ss->id);
    jt_puts(t, ",\"found\":");
    jt_bool(t, found);
    jt_puts(t, ",\"isProcessing\":");
    jt_bool(t, running);
    jt_puts(t, ",\"runId\":");
    if (running && s->read.run_id[0])
        jt_str(t, s->read.run_id);
    else
        jt_puts(t, "null");
    jt_puts(t, ",\"lastSeq\":");
    jt_int(t, found ? last_seq(s, ss) : 0);
    jt_puts(t, ",\"firstSeq\":");
    jt_int(t, found ? s->read.first_seq : 0);
    jt_puts(t, ",\"truncated\":");
    jt_bool(t, found && answer_hole(s, ss));
    jt_puts(t, ",\"pendingPermissions\":[");
    bool first = true;
    for (size_t i = 0; found && i < s->n_perms; i++) {
        json_t *p = json_loads(s->perms[i], 0, NULL);
        bool ok = json_is_object(p);
        json_decref(p);
        if (!ok) {
            log_error("session %s: a stored permission request is not a JSON object", ss->id);
            continue;
        }
        if (!first)
            jt_puts(t, ",");
        first = false;
        jt_puts(t, s->perms[i]);
    }
    jt_puts(t, "],\"timestamp\":\"");
    jt_puts(t, ts);
    jt_puts(t, "\"}");
    return 0;
}

/* The events of s after ss->cursor that the budget lets in, as add_events. */
static int jt_events(struct sse_text *t, bool *first, const struct sub_session *ss,
                     const struct sub_snapshot *s, struct answer_budget *b, bool *more)
{
    for (size_t j = answer_first_after(s, ss->cursor); j < s->read.n; j++) {
        const struct bus_event *e = &s->read.events[j];
        if (!answer_budget_fits(b, e->len)) {
            *more = true;
            return 0;
        }
        if (!*first)
            jt_puts(t, ",");
        *first = false;
        if (jt_stored(t, e->json, e->len, ss->id, e->seq) < 0)
            return -1;
        answer_budget_take(b, e->len);
    }
    if (s->read.more)
        *more = true;
    return 0;
}

/* cgw_time_iso of now, formatted once per second per thread: only the milliseconds
 * change within one. */
static void now_iso(char ts[CGW_ISO_TIME_LEN + 1])
{
    static __thread int64_t sec = -1;
    static __thread char text[CGW_ISO_TIME_LEN + 1];
    int64_t ms = cgw_now_ms();
    if (ms < 0) {
        cgw_time_iso(ms, ts);
        return;
    }
    if (ms / 1000 != sec) {
        cgw_time_iso(ms, text);
        sec = ms / 1000;
    }
    memcpy(ts, text, sizeof text);
    int milli = (int)(ms % 1000); /* "....SS.mmmZ" */
    ts[20] = (char)('0' + milli / 100);
    ts[21] = (char)('0' + milli / 10 % 10);
    ts[22] = (char)('0' + milli % 10);
}

char *answer_build_text(const struct config *cfg, const struct sub_session *ss, size_t n,
                        struct sub_snapshot *const *snaps, size_t *n_frames)
{
    char ts[CGW_ISO_TIME_LEN + 1];
    struct sse_text t = {0};
    struct answer_budget budget;
    bool more = false, first = true;
    size_t frames = 0;

    answer_budget_init(&budget, cfg, ss, n);
    now_iso(ts);
    jt_puts(&t, "{\"frames\":[");
    for (size_t i = 0; i < n; i++) {
        if (ss[i].feed)
            continue;
        if (!first)
            jt_puts(&t, ",");
        first = false;
        jt_ack(&t, &ss[i], ss[i].found ? snaps[i] : NULL, ts);
        frames++;
    }
    for (size_t i = 0; i < n; i++) {
        if (!ss[i].found || !snaps[i])
            continue;
        int64_t left = budget.frames_left;
        if (jt_events(&t, &first, &ss[i], snaps[i], &budget, &more) < 0)
            goto fail;
        frames += (size_t)(left - budget.frames_left);
    }
    jt_puts(&t, "],\"more\":");
    jt_bool(&t, more);
    for (size_t i = 0; i < n; i++) {
        if (!ss[i].feed || !snaps[i])
            continue;
        const struct sub_snapshot *s = snaps[i];
        jt_puts(&t, ",\"feedSeq\":");
        jt_int(&t, s->read.last_seq > ss[i].cursor ? s->read.last_seq : ss[i].cursor);
        jt_puts(&t, ",\"feedTruncated\":");
        jt_bool(&t, answer_hole(s, &ss[i]));
    }
    jt_puts(&t, "}\n"); /* adapter_write ends a JSON body with a line break too */
    if (t.failed)
        goto fail;
    if (n_frames)
        *n_frames = frames;
    return t.buf;
fail:
    sse_text_free(&t);
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
static const char plain_word[] =
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-";

/* "id: ...", "event: <kind>" when kind[0..len) is a plain word (else "message"), "data: ". */
static void sse_event_head(struct sse_text *t, const char *id, const char *kind, size_t len)
{
    size_t plain = 0;
    while (kind && plain < len && kind[plain] && strchr(plain_word, kind[plain]))
        plain++;
    if (!kind || len == 0 || len > 64 || plain != len) {
        kind = "message";
        len = strlen(kind);
    }
    if (id) {
        sse_puts(t, "id: ");
        sse_puts(t, id);
        sse_puts(t, "\n");
    }
    sse_puts(t, "event: ");
    sse_append(t, kind, len);
    sse_puts(t, "\ndata: ");
}

static void sse_event_line(struct sse_text *t, const char *id, json_t *frame)
{
    json_t *kind = json_object_get(frame, "kind");
    sse_event_head(t, id, json_string_value(kind), json_string_length(kind));
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
    /* A stored object on one line goes out as stored, as an answer's events do
     * (answer_build_text); anything else is re-encoded onto one line (stored_json). */
    struct qj q;
    if (!memchr(json, '\n', len) && !memchr(json, '\r', len)) {
        /* Checked without a tree when the quick check is sure (and the kind has no
         * escape: its text is then its value), else by Jansson. */
        if (qj_top(&q, json, len) && !(q.kind && memchr(q.kind, '\\', q.kind_len))) {
            sse_event_head(t, id, (const char *)q.kind, q.kind_len);
            sse_append(t, json, len);
            sse_puts(t, "\n\n");
            return;
        }
        json_t *v = json_loadb(json, len, 0, NULL);
        if (json_is_object(v)) {
            sse_event_line(t, id, v);
            sse_append(t, json, len);
            sse_puts(t, "\n\n");
            json_decref(v);
            return;
        }
        json_decref(v);
    }
    json_t *v;
    if (!(v = stored_json(json, len, session_id, seq))) {
        t->failed = true;
        return;
    }
    sse_frame(t, id, v);
    json_decref(v);
}

void sse_ack(struct sse_text *t, const char *id, const struct sub_session *ss,
             const struct sub_snapshot *s)
{
    char ts[CGW_ISO_TIME_LEN + 1];
    cgw_time_iso(cgw_now_ms(), ts);
    if (id) {
        sse_puts(t, "id: ");
        sse_puts(t, id);
        sse_puts(t, "\n");
    }
    sse_puts(t, "event: chat_subscribed\ndata: ");
    jt_ack(t, ss, ss->found ? s : NULL, ts);
    sse_puts(t, "\n\n");
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
