/* test_answer.c: the subscribe answer builder (fcgi/answer.c) on hand-made snapshots,
 * without Redis: the one frame budget (acks count, the feed does not), at least one
 * event per answer, more, first_after, hole/truncated, feed frames and feedSeq. */
#include <stdlib.h>
#include <string.h>

#include "fcgi/answer.h"
#include "tap.h"

static struct config cfg;

/* A snapshot holding events seqs[0..n) (each {"kind":"text","seq":N,"pad":"..."} with
 * pad bytes of padding), the counter at last, the stream starting at first. */
static void snap_make(struct sub_snapshot *s, const int64_t *seqs, size_t n, int64_t last,
                      int64_t first, size_t pad)
{
    memset(s, 0, sizeof *s);
    s->read.last_seq = last;
    s->read.first_seq = first;
    s->read.status = RUN_RUNNING;
    snprintf(s->read.run_id, sizeof s->read.run_id, "run_x");
    s->read.events = calloc(n ? n : 1, sizeof *s->read.events);
    s->read.n = n;
    s->have_perms = true;
    for (size_t i = 0; i < n; i++) {
        char *text = malloc(pad + 64);
        int len = snprintf(text, pad + 64, "{\"kind\":\"text\",\"seq\":%lld,\"pad\":\"%*s\"}",
                           (long long)seqs[i], (int)pad, "");
        s->read.events[i] = (struct bus_event){seqs[i], text, (size_t)len};
    }
}

static json_t *frames_of(json_t *body)
{
    return json_object_get(body, "frames");
}

static int64_t seq_at(json_t *body, size_t i)
{
    return json_integer_value(json_object_get(json_array_get(frames_of(body), i), "seq"));
}

static const char *kind_at(json_t *body, size_t i)
{
    return json_string_value(json_object_get(json_array_get(frames_of(body), i), "kind"));
}

static void test_first_after_and_hole(void)
{
    struct sub_snapshot s;
    int64_t seqs[] = {3, 4, 5};
    snap_make(&s, seqs, 3, 5, 3, 0);
    is_int(answer_first_after(&s, 0), 0, "first_after before the buffer");
    is_int(answer_first_after(&s, 3), 1, "first_after an event");
    is_int(answer_first_after(&s, 4), 2, "first_after the middle");
    is_int(answer_first_after(&s, 5), 3, "first_after the tail: none");
    is_int(answer_first_after(&s, 9), 3, "first_after past the tail: none");

    struct sub_session ss = {.id = "a", .found = true};
    ss.cursor = 1;
    ok(answer_hole(&s, &ss), "cursor 1, buffer from 3: a hole");
    ss.cursor = 2;
    ok(!answer_hole(&s, &ss), "cursor 2, buffer from 3: no hole");
    ss.cursor = 5;
    ok(!answer_hole(&s, &ss), "at the tail: no hole");
    ok(!answer_snapshot_news(&s, &ss), "at the tail: no news");
    ss.cursor = 4;
    ok(answer_snapshot_news(&s, &ss), "an event after the cursor is news");
    answer_snapshot_free(&s);

    snap_make(&s, NULL, 0, 7, 0, 0); /* the counter says 7, the stream is gone */
    ss.cursor = 5;
    ok(answer_hole(&s, &ss), "events after the cursor expired: a hole");
    ok(answer_snapshot_news(&s, &ss), "a hole is news");
    answer_snapshot_free(&s);
}

static void test_budget_rule(void)
{
    struct sub_session ss[3] = {
        {.id = "a", .found = true}, {.id = "b"}, {.id = "u:1", .found = true, .feed = true}};
    struct answer_budget b;
    int64_t count, bytes;

    cfg.max_frames = 10;
    answer_budget_init(&b, &cfg, ss, 3);
    is_int(b.frames_left, 8, "two acks count, the feed (no ack) does not");
    answer_budget_read_limits(&b, &count, &bytes);
    is_int(count, 8, "a read may fetch what is left");
    is_int(bytes, cfg.max_answer_bytes, "and the bytes left");

    cfg.max_frames = 2;
    answer_budget_init(&b, &cfg, ss, 3);
    ok(b.frames_left == 0, "acks fill the frames");
    answer_budget_read_limits(&b, &count, &bytes);
    is_int(count, 1, "but one event is always read");
    ok(answer_budget_fits(&b, 1 << 20), "and always fits");
    answer_budget_take(&b, 10);
    ok(!answer_budget_fits(&b, 1), "the next one does not");
    answer_budget_read_limits(&b, &count, &bytes);
    is_int(count, 0, "a spent budget reads no events");
    is_int(bytes, 1, "(and asks for 1 byte, never 'no limit')");
    cfg.max_frames = 1000;
}

static void test_answer(void)
{
    struct sub_session ss[2] = {{.id = "a", .cursor = 1, .found = true}, {.id = "zz"}};
    struct sub_snapshot s, *snaps[2] = {&s, NULL};
    int64_t seqs[] = {1, 2, 3, 4};
    snap_make(&s, seqs, 4, 4, 1, 0);

    json_t *body = answer_build(&cfg, ss, 2, snaps);
    ok(body != NULL, "answer built");
    is_int(json_array_size(frames_of(body)), 5, "two acks and three events");
    is_str(kind_at(body, 0), "chat_subscribed", "ack of a first");
    is_str(json_string_value(json_object_get(json_array_get(frames_of(body), 1), "sessionId")),
           "zz", "ack of zz second, in request order");
    ok(json_is_false(json_object_get(json_array_get(frames_of(body), 1), "found")), "zz not found");
    is_int(seq_at(body, 2), 2, "events after the cursor, in order");
    is_int(seq_at(body, 4), 4, "up to the last");
    ok(json_is_false(json_object_get(body, "more")), "more:false");
    json_t *ack = json_array_get(frames_of(body), 0);
    is_int(json_integer_value(json_object_get(ack, "lastSeq")), 4, "ack lastSeq");
    ok(json_is_true(json_object_get(ack, "isProcessing")), "ack isProcessing");
    is_str(json_string_value(json_object_get(ack, "runId")), "run_x", "ack runId");
    ok(json_is_false(json_object_get(ack, "truncated")), "not truncated");
    json_decref(body);

    cfg.max_frames = 3; /* two acks + one event */
    body = answer_build(&cfg, ss, 2, snaps);
    is_int(json_array_size(frames_of(body)), 3, "max_frames counts the acks");
    ok(json_is_true(json_object_get(body, "more")), "more:true when cut");
    json_decref(body);

    cfg.max_frames = 1; /* acks alone overflow it: still one event */
    body = answer_build(&cfg, ss, 2, snaps);
    is_int(json_array_size(frames_of(body)), 3, "at least one event per answer");
    ok(json_is_true(json_object_get(body, "more")), "and more");
    json_decref(body);
    cfg.max_frames = 1000;
    answer_snapshot_free(&s);

    int64_t big[] = {1, 2, 3};
    snap_make(&s, big, 3, 3, 1, 600);
    ss[0].cursor = 0;
    cfg.max_answer_bytes = 1000; /* one 600-byte event fits, two do not */
    body = answer_build(&cfg, ss, 1, snaps);
    is_int(json_array_size(frames_of(body)), 2, "the byte budget cuts too");
    ok(json_is_true(json_object_get(body, "more")), "more after the byte cut");
    json_decref(body);
    cfg.max_answer_bytes = 1 << 20;
    answer_snapshot_free(&s);

    int64_t late[] = {5, 6};
    snap_make(&s, late, 2, 6, 5, 0);
    ss[0].cursor = 2;
    body = answer_build(&cfg, ss, 1, snaps);
    ack = json_array_get(frames_of(body), 0);
    ok(json_is_true(json_object_get(ack, "truncated")), "a hole: truncated:true");
    is_int(json_integer_value(json_object_get(ack, "firstSeq")), 5, "with firstSeq");
    is_int(seq_at(body, 1), 5, "the replay starts at firstSeq");
    json_decref(body);
    answer_snapshot_free(&s);
}

static void test_feed(void)
{
    struct sub_session ss[2] = {{.id = "a", .cursor = 0, .found = true},
                                {.id = "u:7", .cursor = 0, .found = true, .feed = true}};
    struct sub_snapshot a, f, *snaps[2] = {&a, &f};
    int64_t one[] = {1}, two[] = {1, 2};
    snap_make(&a, one, 1, 1, 1, 0);
    snap_make(&f, two, 2, 2, 1, 0);

    cfg.max_frames = 4; /* one ack + three events: the feed takes no ack frame */
    json_t *body = answer_build(&cfg, ss, 2, snaps);
    is_int(json_array_size(frames_of(body)), 4, "ack, the session's event, two feed frames");
    ok(json_is_false(json_object_get(body, "more")), "nothing left out");
    is_int(json_integer_value(json_object_get(body, "feedSeq")), 2, "feedSeq at the top");
    ok(json_is_false(json_object_get(body, "feedTruncated")), "feedTruncated:false");
    json_decref(body);

    ss[1].cursor = 9; /* a cursor past the counter stays the cursor */
    body = answer_build(&cfg, ss, 2, snaps);
    is_int(json_integer_value(json_object_get(body, "feedSeq")), 9, "feedSeq never goes back");
    json_decref(body);
    cfg.max_frames = 1000;
    answer_snapshot_free(&a);
    answer_snapshot_free(&f);
}

static void test_bad_stored_event(void)
{
    struct sub_session ss = {.id = "a", .cursor = 0, .found = true};
    struct sub_snapshot s, *snaps[1] = {&s};
    int64_t seqs[] = {1};
    snap_make(&s, seqs, 1, 1, 1, 0);
    free(s.read.events[0].json);
    s.read.events[0].json = strdup("not json");
    s.read.events[0].len = strlen("not json");
    s.perms = calloc(1, sizeof *s.perms);
    s.perms[0] = strdup("{\"kind\":\"permission_request\",\"requestId\":\"r1\"}");
    s.n_perms = 1;
    json_t *body = answer_build(&cfg, &ss, 1, snaps);
    is_str(kind_at(body, 1), "error", "an undecodable stored event becomes an error event");
    is_int(seq_at(body, 1), 1, "with its seq: no silent gap");
    json_t *perms = json_object_get(json_array_get(frames_of(body), 0), "pendingPermissions");
    is_int(json_array_size(perms), 1, "pendingPermissions from the snapshot");
    json_decref(body);
    answer_snapshot_free(&s);
}

/* The stream's SSE text (GET /chat/stream): one data: line per frame whatever the
 * frame holds, event: the kind only when it is a plain word, the cursor id. */
static void test_sse(void)
{
    struct sse_text t = {0};
    char a[] = "aaaa", b[] = "bbbb", feed[] = "u:7";
    struct sub_session ss[3] = {
        {.id = a, .cursor = 12, .found = true},
        {.id = b, .cursor = 3, .found = false},
        {.id = feed, .cursor = 4, .found = true, .feed = true},
    };
    sse_cursor_id(&t, ss, 3);
    is_str(t.buf, "aaaa:12,f:4", "the id: found sessions then the feed, <id>:<seq>");
    sse_text_free(&t);

    const char *stored = "{\"kind\":\"text\",\n\"seq\":5,\"content\":\"a\\nb\"}";
    sse_stored(&t, "aaaa:5", stored, strlen(stored), "aaaa", 5);
    is_str(t.buf,
           "id: aaaa:5\nevent: text\ndata: {\"kind\":\"text\",\"seq\":5,\"content\":\"a\\nb\"}\n\n",
           "a stored event with a line break goes out on one data: line");
    sse_text_free(&t);

    const char *line = "{\"kind\":\"text\", \"seq\":6,\"content\":\"\\u00e9\"}";
    sse_stored(&t, NULL, line, strlen(line), "aaaa", 6);
    is_str(t.buf, "event: text\ndata: {\"kind\":\"text\", \"seq\":6,\"content\":\"\\u00e9\"}\n\n",
           "a stored event on one line goes out as stored");
    sse_text_free(&t);

    sse_stored(&t, "aaaa:7", "not json", 8, "aaaa", 7);
    const char *data = t.buf ? strstr(t.buf, "\ndata: ") : NULL;
    ok(t.buf && strncmp(t.buf, "id: aaaa:7\nevent: error\n", 24) == 0 && data &&
           strstr(data, "\"seq\":7") && strchr(data + 1, '\n') == t.buf + t.len - 2,
       "an undecodable stored event: an error event with its seq, on one line");
    sse_text_free(&t);

    /* The event name from the stored text (quick check) is the one Jansson's value
     * gives: the last top-level "kind", when a plain word. */
    static const struct {
        const char *text, *event;
    } kinds[] = {
        {"{\"kind\":\"text\",\"seq\":1}", "text"},
        {"{\"seq\":1,\"kind\":\"run_started\"}", "run_started"},
        {"{\"kind\":\"a\",\"kind\":\"b\"}", "b"},
        {"{\"kind\":\"a\",\"kind\":1}", "message"},
        {"{\"x\":{\"kind\":\"inner\"}}", "message"},
        {"{\"kind\":\"\\u0074ext\"}", "text"},
        {"{\"kind\":\"t\\u00e9\"}", "message"},
        {"{\"kind\":\"t\xc3\xa9\"}", "message"},
        {"{\"kind\":\"a b\"}", "message"},
        {"{\"kind\":\"\"}", "message"},
        {"{}", "message"},
    };
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        char want[128];
        snprintf(want, sizeof want, "event: %s\ndata: %s\n\n", kinds[i].event, kinds[i].text);
        sse_stored(&t, NULL, kinds[i].text, strlen(kinds[i].text), "aaaa", 1);
        is_str(t.buf, want, "the event name of %s", kinds[i].text);
        sse_text_free(&t);
    }

    /* The ack as text is answer_ack's frame (timestamps aside). */
    {
        struct sub_snapshot as;
        int64_t aseqs[] = {4, 5};
        snap_make(&as, aseqs, 2, 5, 4, 0);
        as.read.status = RUN_RUNNING;
        snprintf(as.read.run_id, sizeof as.read.run_id, "run_x");
        as.perms = calloc(1, sizeof *as.perms);
        as.perms[0] = strdup("{\"kind\":\"permission_request\",\"requestId\":\"r1\"}");
        as.n_perms = 1;
        as.have_perms = true;
        char odd[] = "q\"\\\x01";
        struct sub_session acks[2] = {{.id = a, .cursor = 2, .found = true},
                                      {.id = odd, .cursor = 0, .found = false}};
        for (int k = 0; k < 2; k++) {
            sse_ack(&t, "aaaa:2", &acks[k], &as);
            const char *pre = "id: aaaa:2\nevent: chat_subscribed\ndata: ";
            ok(t.buf && strncmp(t.buf, pre, strlen(pre)) == 0 &&
                   strcmp(t.buf + t.len - 2, "\n\n") == 0,
               "sse_ack: id, event and one data: line");
            json_t *got =
                t.buf ? json_loadb(t.buf + strlen(pre), t.len - strlen(pre) - 2, 0, NULL) : NULL;
            json_t *want = answer_ack(&acks[k], &as);
            json_object_del(got, "timestamp");
            json_object_del(want, "timestamp");
            ok(got && json_equal(got, want), "sse_ack's frame is answer_ack's (%s session)",
               k == 0 ? "a running" : "an unknown");
            json_decref(got);
            json_decref(want);
            sse_text_free(&t);
        }
        answer_snapshot_free(&as);
    }

    json_t *f = json_pack("{s:s, s:i}", "kind", "x\ndata: forged", "seq", 1);
    sse_frame(&t, NULL, f);
    json_decref(f);
    ok(t.buf && strncmp(t.buf, "event: message\ndata: ", 21) == 0,
       "a kind that is not a plain word is not an event name");
    ok(t.buf && strchr(t.buf + 21, '\n') == t.buf + t.len - 2, "and the frame is one line");
    sse_text_free(&t);

    struct sub_snapshot s;
    int64_t seqs[] = {8, 9};
    snap_make(&s, seqs, 2, 9, 8, 0);
    struct sub_session cut = {.id = a, .cursor = 2, .found = true};
    json_t *tr = answer_truncated(&cut, &s);
    ok(json_integer_value(json_object_get(tr, "after")) == 2 &&
           json_integer_value(json_object_get(tr, "firstSeq")) == 8 &&
           json_integer_value(json_object_get(tr, "lastSeq")) == 9,
       "truncated: after, firstSeq, lastSeq");
    json_decref(tr);
    answer_snapshot_free(&s);
}

/* ---- answer_build_text: the same answer as answer_build --------------------------- */

static void drop_timestamps(json_t *body)
{
    size_t i;
    json_t *f;
    json_array_foreach(frames_of(body), i, f)
    {
        if (json_is_object(f) && json_is_string(json_object_get(f, "kind")) &&
            strcmp(json_string_value(json_object_get(f, "kind")), "chat_subscribed") == 0)
            json_object_del(f, "timestamp");
    }
}

/* answer_build_text parses to answer_build's answer (acks' timestamps aside), and its
 * frame count is the answer's. */
static void same_answer(const struct sub_session *ss, size_t n, struct sub_snapshot *const *snaps,
                        const char *what)
{
    size_t frames = 0;
    json_t *tree = answer_build(&cfg, ss, n, snaps);
    char *text = answer_build_text(&cfg, ss, n, snaps, &frames);
    json_t *parsed = text ? json_loads(text, 0, NULL) : NULL;
    ok(tree && parsed && text[strlen(text) - 1] == '\n', "%s: both built, the text one line", what);
    is_int(frames, json_array_size(frames_of(tree)), "%s: frame count", what);
    drop_timestamps(tree);
    drop_timestamps(parsed);
    if (!ok(json_equal(tree, parsed), "%s: the text is the tree", what)) {
        char *a = json_dumps(tree, JSON_COMPACT), *b = json_dumps(parsed, JSON_COMPACT);
        diag("tree: %s", a ? a : "(null)");
        diag("text: %s", b ? b : "(null)");
        free(a);
        free(b);
    }
    json_decref(tree);
    json_decref(parsed);
    free(text);
}

static void test_text(void)
{
    struct sub_session ss[4] = {{.id = "a", .cursor = 1, .found = true},
                                {.id = "odd \"\\\x01\x1f\t\n/\xc3\xa9 id"},
                                {.id = "b", .cursor = 0, .store_last = 9, .found = true},
                                {.id = "u:1", .cursor = 2, .found = true, .feed = true}};
    struct sub_snapshot s[3], *snaps[4] = {&s[0], NULL, &s[1], &s[2]};
    int64_t seqs[] = {1, 2, 3, 4}, feed_seqs[] = {3, 4};

    snap_make(&s[0], seqs, 4, 4, 1, 10);
    snap_make(&s[1], seqs + 2, 2, 4, 3, 0); /* cursor 0, buffer from 3: truncated */
    s[1].read.status = RUN_COMPLETED;
    snap_make(&s[2], feed_seqs, 2, 4, 3, 0);
    s[0].perms = calloc(2, sizeof *s[0].perms);
    s[0].perms[0] = strdup("{\"kind\":\"permission_request\",\"requestId\":\"r1\"}");
    s[0].perms[1] = strdup("not json");
    s[0].n_perms = 2;
    same_answer(ss, 4, snaps, "acks, events, an odd id, a hole, perms, the feed");

    cfg.max_frames = 5; /* 3 acks: two events, then more */
    same_answer(ss, 4, snaps, "a budget cut");
    cfg.max_frames = 1000;

    free(s[0].read.events[1].json); /* a stored text that is not an object */
    s[0].read.events[1].json = strdup("[1,2");
    s[0].read.events[1].len = 4;
    same_answer(ss, 4, snaps, "a stored event that does not parse");
    same_answer(ss, 2, snaps, "no events for the second, no feed");
    for (size_t i = 0; i < 3; i++)
        answer_snapshot_free(&s[i]);
}

/* ---- answer_json_object_sure: never yes where Jansson says no ----------------------- */

static bool jansson_object(const char *text, size_t len)
{
    json_t *v = json_loadb(text, len, 0, NULL);
    bool yes = json_is_object(v);
    json_decref(v);
    return yes;
}

static void test_quick_check(void)
{
    static const struct {
        const char *text;
        bool sure; /* what the quick check must say */
    } cases[] = {
        {"{\"kind\":\"text\",\"seq\":5,\"content\":\"hello\"}", true},
        {" {\"a\": [1, -2.5, 3e10, 0, -0, true, false, null, {}, []],\r\n\"b\":\"\\u00e9\\n\"} ",
         true},
        {"{\"k\":\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"}", true},
        {"{\"k\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"}", true},
        {"{\"n\":123456789012345678}", true},
        {"{}", true},
        {"[1]", false},
        {"\"x\"", false},
        {"", false},
        {"{", false},
        {"{\"a\":1,}", false},
        {"{\"a\":1}x", false},
        {"{\"a\":01}", false},
        {"{\"a\":1.}", false},
        {"{\"a\":.5}", false},
        {"{\"a\":-}", false},
        {"{\"a\":1e}", false},
        {"{a:1}", false},
        {"{\"a\":tru}", false},
        {"{\"a\":\"\x01\"}", false},
        {"{\"a\":\"\\x\"}", false},
        {"{\"a\":\"\\u12\"}", false},
        {"{\"a\":\"\xc0\xaf\"}", false},         /* overlong */
        {"{\"a\":\"\xed\xa0\x80\"}", false},     /* a surrogate as UTF-8 */
        {"{\"a\":\"\xf4\x90\x80\x80\"}", false}, /* beyond U+10FFFF */
        {"{\"a\":\"\xc3\"}", false},
        {"{\"a\":\"\\u0000\"}", false},        /* Jansson decides */
        {"{\"a\":\"\\ud83d\\ude00\"}", false}, /* Jansson decides */
        {"{\"n\":1234567890123456789012}", false},
        {"{\"n\":1e999}", false},
        {"{\"a\":\"unterminated}", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t len = strlen(cases[i].text);
        bool sure = answer_json_object_sure(cases[i].text, len);
        ok(sure == cases[i].sure, "quick check of %s: %s", cases[i].text,
           cases[i].sure ? "sure" : "not sure");
        if (sure)
            ok(jansson_object(cases[i].text, len), "and Jansson accepts it");
    }
    /* Mutations of a valid event (a byte changed, dropped or cut off): whenever the
     * quick check is sure, Jansson must accept the text as an object. */
    const char *base = "{\"kind\":\"text\",\"seq\":12,\"content\":\"a \\\"q\\\" \xc3\xa9\\u00e9\","
                       "\"x\":[1.5,-3,true,null,{\"y\":\"z\"}]}";
    static const unsigned char bytes[] = {'{', '}', '[', ']', '"',  '\\', ',',  ':',  '0',  '-',
                                          'e', '.', 'u', ' ', 0x00, 0x01, 0x7f, 0x80, 0xc3, 0xff};
    size_t blen = strlen(base), wrong = 0, sure = 0, tried = 0;
    char buf[256];
    for (size_t at = 0; at < blen; at++) {
        for (size_t k = 0; k <= sizeof bytes; k++) {
            memcpy(buf, base, blen);
            size_t len = blen;
            if (k < sizeof bytes) {
                buf[at] = (char)bytes[k];
            } else { /* dropped */
                memmove(buf + at, buf + at + 1, blen - at - 1);
                len--;
            }
            tried++;
            if (answer_json_object_sure(buf, len)) {
                sure++;
                if (!jansson_object(buf, len))
                    wrong++;
            }
            if (answer_json_object_sure(buf, at) && !jansson_object(buf, at))
                wrong++; /* cut off */
        }
    }
    ok(wrong == 0, "%zu mutations (%zu sure): never sure where Jansson refuses", tried, sure);
}

int main(void)
{
    struct cgw_error err;
    plan_lazy();
    if (config_defaults(&cfg, &err) != CGW_OK)
        BAIL_OUT("config_defaults: %s", err.text);
    cfg.max_frames = 1000;
    cfg.max_answer_bytes = 1 << 20;
    test_first_after_and_hole();
    test_budget_rule();
    test_answer();
    test_feed();
    test_bad_stored_event();
    test_sse();
    test_text();
    test_quick_check();
    config_free(&cfg);
    return done_testing();
}
