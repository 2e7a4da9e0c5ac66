/* adapter_harness.h: replays a provider CLI's stdout through one adapter and compares
 * what came out, one summary line per item, with the lines a test expects.
 *
 *   struct harness h = {&cursor_provider, &ctx, "cursor", NULL};  (tests/fixtures/cursor)
 *   struct harness_sum got;
 *   harness_transcript(&h, &req, "text.jsonl", &got, &in);
 *   HARNESS_EXPECT(&got, "text", "native_id ...", "text assistant: Hello", "result ok");
 *   harness_feed(&h, st, "{...}", &got, &in);          one line by hand
 *   harness_finish(&h, st, &got);                      what the adapter's finish adds
 *   harness_join(&argv, " | ", buf, sizeof buf);       "a | b | c"
 * Summary lines: "text ROLE: CONTENT", "KIND: CONTENT" (thinking, error, stream_delta),
 * "tool_use ID NAME INPUT", "tool_result ID ok|error: CONTENT",
 * "status TEXT used=N in=N out=N cached=J total=J", "native_id ID",
 * "permission ID TOOL INPUT", "cancel ID", "result ok|error[: TEXT]", and the kind alone
 * for the rest. A test may give its own event_line (which can start from
 * harness_event_line and append). Transcript files hold raw stdout lines, or
 * {"dir","t","msg"} records of which the "out" ones are fed. Header-only (static
 * inline) because tap.h keeps its counters per translation unit.
 */
#ifndef CGW_TESTS_ADAPTER_HARNESS_H
#define CGW_TESTS_ADAPTER_HARNESS_H

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runner/provider.h"
#include "tap.h"

#define HARNESS_MAX_LINES 96

struct harness {
    const struct runner_provider *prov;
    const struct event_ctx *ctx;
    const char *fixtures; /* the directory under tests/fixtures/ */
    /* The summary of an event (NULL: harness_event_line). */
    void (*event_line)(const json_t *ev, char *line, size_t size);
};

struct harness_sum {
    char lines[HARNESS_MAX_LINES][512];
    size_t n;
};

static inline const char *harness_str(const json_t *ev, const char *key)
{
    const char *v = json_string_value(json_object_get(ev, key));
    return v ? v : "(null)";
}

/* The compact JSON of ev[key], or "-" when absent (buf of size bytes). */
static inline const char *harness_json(const json_t *ev, const char *key, char *buf, size_t size)
{
    const json_t *v = json_object_get(ev, key);
    char *text = v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    snprintf(buf, size, "%s", text ? text : "-");
    free(text);
    return buf;
}

static inline void harness_event_line(const json_t *ev, char *line, size_t size)
{
    const char *kind = harness_str(ev, "kind");
    char b[64], c[64];

    if (strcmp(kind, "text") == 0) {
        snprintf(line, size, "text %s: %s", harness_str(ev, "role"), harness_str(ev, "content"));
    } else if (strcmp(kind, "thinking") == 0 || strcmp(kind, "error") == 0 ||
               strcmp(kind, "stream_delta") == 0) {
        snprintf(line, size, "%s: %s", kind, harness_str(ev, "content"));
    } else if (strcmp(kind, "tool_use") == 0) {
        char *in = json_dumps(json_object_get(ev, "toolInput"), JSON_COMPACT | JSON_ENCODE_ANY);
        snprintf(line, size, "tool_use %s %s %s", harness_str(ev, "toolId"),
                 harness_str(ev, "toolName"), in ? in : "-");
        free(in);
    } else if (strcmp(kind, "tool_result") == 0) {
        snprintf(line, size, "tool_result %s %s: %s", harness_str(ev, "toolId"),
                 json_is_true(json_object_get(ev, "isError")) ? "error" : "ok",
                 harness_str(ev, "content"));
    } else if (strcmp(kind, "status") == 0) {
        json_t *tb = json_object_get(ev, "tokenBudget");
        snprintf(line, size, "status %s used=%lld in=%lld out=%lld cached=%s total=%s",
                 harness_str(ev, "text"), json_integer_value(json_object_get(tb, "used")),
                 json_integer_value(json_object_get(tb, "inputTokens")),
                 json_integer_value(json_object_get(tb, "outputTokens")),
                 harness_json(tb, "cacheReadTokens", b, sizeof b),
                 harness_json(tb, "total", c, sizeof c));
    } else {
        snprintf(line, size, "%s", kind);
    }
}

static inline void harness_summarize(const struct harness *h, const struct runner_items *it,
                                     struct harness_sum *out)
{
    for (size_t i = 0; i < it->n && out->n < HARNESS_MAX_LINES; i++) {
        const struct runner_item *x = &it->v[i];
        char *line = out->lines[out->n++];
        size_t size = sizeof out->lines[0];
        switch (x->type) {
        case RUNNER_ITEM_EVENT:
            (h->event_line ? h->event_line : harness_event_line)(x->ev, line, size);
            break;
        case RUNNER_ITEM_NATIVE_ID:
            snprintf(line, size, "native_id %s", x->id);
            break;
        case RUNNER_ITEM_PERMISSION: {
            char *in = json_dumps(x->input, JSON_COMPACT);
            snprintf(line, size, "permission %s %s %s", x->id, x->tool_name, in ? in : "?");
            free(in);
            break;
        }
        case RUNNER_ITEM_CANCEL:
            snprintf(line, size, "cancel %s", x->id);
            break;
        case RUNNER_ITEM_RESULT:
            snprintf(line, size, "result %s%s%s", x->is_error ? "error" : "ok", x->text ? ": " : "",
                     x->text ? x->text : "");
            break;
        }
    }
}

/* Feeds one line (NUL-terminated) to the adapter and appends what came out. */
static inline void harness_feed_len(const struct harness *h, void *st, const char *line, size_t len,
                                    struct harness_sum *out, struct runner_buf *in)
{
    struct runner_items it = {0};
    h->prov->parse_line(st, line, len, &it, in);
    ok(!it.failed, "no allocation failed");
    for (size_t i = 0; i < it.n; i++)
        ok(it.v[i].type != RUNNER_ITEM_EVENT || it.v[i].ev, "an event item has its event");
    harness_summarize(h, &it, out);
    runner_items_clear(&it);
}

static inline void harness_feed(const struct harness *h, void *st, const char *line,
                                struct harness_sum *out, struct runner_buf *in)
{
    harness_feed_len(h, st, line, strlen(line), out, in);
}

/* Feeds tests/fixtures/<h->fixtures>/<name>, one stdout line per line (a last line
 * without a newline too, as the runner flushes it at EOF). No finish: a transcript may
 * end as a killed CLI's stdout does. */
static inline int harness_feed_file(const struct harness *h, void *st, const char *name,
                                    struct harness_sum *out, struct runner_buf *in)
{
    char path[1024];
    const char *top = getenv("top_srcdir");
    snprintf(path, sizeof path, "%s/tests/fixtures/%s/%s", top ? top : "..", h->fixtures, name);
    FILE *f = fopen(path, "r");
    if (!f) {
        diag("cannot open %s", path);
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, f)) > 0) {
        if (line[len - 1] == '\n')
            line[--len] = '\0';
        json_t *rec = json_loadb(line, (size_t)len, 0, NULL);
        const char *dir = json_string_value(json_object_get(rec, "dir"));
        if (!dir) {
            harness_feed_len(h, st, line, (size_t)len, out, in);
        } else if (strcmp(dir, "out") == 0) {
            char *text = json_dumps(json_object_get(rec, "msg"), JSON_COMPACT);
            if (text)
                harness_feed(h, st, text, out, in);
            free(text);
        }
        json_decref(rec);
    }
    free(line);
    fclose(f);
    return 0;
}

/* Appends what the adapter's finish (stdout ended) adds, if it has one. */
static inline void harness_finish(const struct harness *h, void *st, struct harness_sum *out)
{
    struct runner_items it = {0};
    if (h->prov->finish)
        h->prov->finish(st, &it);
    ok(!it.failed, "finish: no allocation failed");
    harness_summarize(h, &it, out);
    runner_items_clear(&it);
}

/* A fresh adapter state for req, the whole file fed to it, the state freed. */
static inline void harness_transcript(const struct harness *h, const struct runner_request *req,
                                      const char *file, struct harness_sum *got,
                                      struct runner_buf *in)
{
    void *st = h->prov->state_new(h->ctx, req);
    memset(got, 0, sizeof *got);
    ok(st && harness_feed_file(h, st, file, got, in) == 0, "%s read", file);
    if (st)
        h->prov->state_free(st);
}

static inline void harness_expect(const struct harness_sum *got, const char *const *want, size_t n,
                                  const char *name)
{
    is_int(got->n, n, "%s: number of items", name);
    for (size_t i = 0; i < n && i < got->n; i++)
        is_str(got->lines[i], want[i], "%s: item %zu", name, i);
    for (size_t i = n; i < got->n; i++)
        diag("extra: %s", got->lines[i]);
}

#define HARNESS_EXPECT(got, name, ...)                                                             \
    do {                                                                                           \
        static const char *const want_[] = {__VA_ARGS__};                                          \
        harness_expect(got, want_, sizeof want_ / sizeof want_[0], name);                          \
    } while (0)

/* Builds prov's argv for req (a pointer) and checks that it is built, NULL-terminated,
 * and, joined with " | ", equal to want; the test name as for ok(). */
#define harness_argv_is(prov, req, want, ...)                                                      \
    do {                                                                                           \
        struct runner_strv sv_ = {0};                                                              \
        char buf_[1024];                                                                           \
        ok((prov)->build_argv((req), &sv_) == 0 && sv_.v && sv_.v[sv_.n] == NULL, __VA_ARGS__);    \
        harness_join(&sv_, " | ", buf_, sizeof buf_);                                              \
        is_str(buf_, (want), __VA_ARGS__);                                                         \
        runner_strv_free(&sv_);                                                                    \
    } while (0)

/* The strings of sv joined with sep into buf (size bytes). */
static inline void harness_join(const struct runner_strv *sv, const char *sep, char *buf,
                                size_t size)
{
    size_t off = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < sv->n && off < size; i++)
        off += (size_t)snprintf(buf + off, size - off, "%s%s", i ? sep : "", sv->v[i]);
}

/* Gives req two attachments as attach.c leaves them (the files need not exist for the
 * adapters): an image, "\x89PNG" at /tmp/att/1-shot.png, and a text file, "hello\n" at
 * /tmp/att/2-notes.txt, in the directory /tmp/att. */
static inline void harness_attachments(struct runner_request *req)
{
    static unsigned char png[] = {0x89, 'P', 'N', 'G'};
    static unsigned char txt[] = "hello\n";
    static struct runner_attachment a[2];
    a[0] = (struct runner_attachment){"att_1", "shot.png", "image/png", 4, "/tmp/att/1-shot.png",
                                      png,     4};
    a[1] = (struct runner_attachment){
        "att_2", "notes.txt", "text/plain", 6, "/tmp/att/2-notes.txt", txt, 6};
    req->attachments = a;
    req->n_attachments = 2;
    req->attach_dir = "/tmp/att";
}

/* The prompt runner_prompt_with_files makes of "say hi" and harness_attachments' text file. */
#define HARNESS_NOTES_PROMPT                                                                       \
    "say hi\n\nAttached files (read them from these paths):\n- /tmp/att/2-notes.txt "              \
    "(text/plain, 6 bytes, named \"notes.txt\")"

#endif
