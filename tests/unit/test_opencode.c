/* test_opencode.c: the OpenCode adapter against the recorded transcripts
 * (tests/fixtures/opencode/), plus other line types, garbage and partial lines, argv, env and
 * the provider table entry. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runner/provider.h"
#include "tap.h"

static const struct event_ctx ctx = {"2b1f0d6e-1111-4222-8333-444455556666", "run_t", "opencode"};

static struct runner_request base_req(void)
{
    struct runner_request req = {0};
    req.session_id = "2b1f0d6e-1111-4222-8333-444455556666";
    req.run_id = "run_t";
    req.provider = PROVIDER_OPENCODE;
    req.project_path = "/srv/ws/opencode";
    req.content = "say hi";
    req.owner = 1;
    return req;
}

/* ---- summaries: one line per item, easy to compare ---------------------------------- */

struct sum {
    char lines[64][512];
    size_t n;
};

static const char *s(const json_t *ev, const char *key)
{
    const char *v = json_string_value(json_object_get(ev, key));
    return v ? v : "(null)";
}

/* The compact JSON of ev[key], or "-" when absent (buf of size bytes). */
static const char *j(const json_t *ev, const char *key, char *buf, size_t size)
{
    const json_t *v = json_object_get(ev, key);
    char *text = v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    snprintf(buf, size, "%s", text ? text : "-");
    free(text);
    return buf;
}

static void summarize(struct runner_items *it, struct sum *out)
{
    for (size_t i = 0; i < it->n && out->n < 64; i++) {
        struct runner_item *x = &it->v[i];
        char *line = out->lines[out->n++];
        size_t size = sizeof out->lines[0];
        const char *kind = x->ev ? s(x->ev, "kind") : "";
        char a[128], b[128], c[128];
        switch (x->type) {
        case RUNNER_ITEM_EVENT:
            if (strcmp(kind, "text") == 0) {
                snprintf(line, size, "text %s: %s", s(x->ev, "role"), s(x->ev, "content"));
            } else if (strcmp(kind, "thinking") == 0 || strcmp(kind, "error") == 0) {
                snprintf(line, size, "%s: %s", kind, s(x->ev, "content"));
            } else if (strcmp(kind, "tool_use") == 0) {
                snprintf(line, size, "tool_use %s %s %s", s(x->ev, "toolId"), s(x->ev, "toolName"),
                         j(x->ev, "toolInput", a, sizeof a));
                if (json_object_get(x->ev, "status")) {
                    size_t n = strlen(line);
                    snprintf(line + n, size - n, " status=%s title=%s",
                             j(x->ev, "status", b, sizeof b), j(x->ev, "title", c, sizeof c));
                }
            } else if (strcmp(kind, "tool_result") == 0) {
                snprintf(line, size, "tool_result %s %s: %s", s(x->ev, "toolId"),
                         json_is_true(json_object_get(x->ev, "isError")) ? "error" : "ok",
                         s(x->ev, "content"));
            } else if (strcmp(kind, "status") == 0) {
                json_t *tb = json_object_get(x->ev, "tokenBudget");
                snprintf(line, size, "status %s used=%lld in=%lld out=%lld cached=%s total=%s",
                         s(x->ev, "text"), json_integer_value(json_object_get(tb, "used")),
                         json_integer_value(json_object_get(tb, "inputTokens")),
                         json_integer_value(json_object_get(tb, "outputTokens")),
                         j(tb, "cacheReadTokens", a, sizeof a), j(tb, "total", b, sizeof b));
            } else {
                snprintf(line, size, "%s", kind);
            }
            break;
        case RUNNER_ITEM_NATIVE_ID:
            snprintf(line, size, "native_id %s", x->id);
            break;
        case RUNNER_ITEM_PERMISSION:
            snprintf(line, size, "permission %s", x->id);
            break;
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

/* Feeds one line to the adapter and appends what came out. */
static void feed(void *st, const char *line, struct sum *out, struct runner_buf *in)
{
    struct runner_items it = {0};
    opencode_provider.parse_line(st, line, strlen(line), &it, in);
    ok(!it.failed, "no allocation failed");
    summarize(&it, out);
    runner_items_clear(&it);
}

/* Feeds a transcript: raw stdout lines, or {"dir","t","msg"} records ("out" ones). */
static int feed_transcript(void *st, const char *name, struct sum *out, struct runner_buf *in)
{
    char path[1024];
    const char *top = getenv("top_srcdir");
    snprintf(path, sizeof path, "%s/tests/fixtures/opencode/%s", top ? top : "..", name);
    FILE *f = fopen(path, "r");
    if (!f) {
        diag("cannot open %s", path);
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, f)) > 0) {
        json_t *msg = json_loads(line, 0, NULL);
        json_t *dir = json_object_get(msg, "dir");
        line[strcspn(line, "\n")] = '\0';
        if (!dir) {
            feed(st, line, out, in);
        } else if (strcmp(json_string_value(dir), "out") == 0) {
            char *text = json_dumps(json_object_get(msg, "msg"), JSON_COMPACT);
            if (text)
                feed(st, text, out, in);
            free(text);
        }
        json_decref(msg);
    }
    free(line);
    fclose(f);
    return 0;
}

static void expect(const struct sum *got, const char *const *want, size_t n, const char *name)
{
    is_int(got->n, n, "%s: number of items", name);
    for (size_t i = 0; i < n && i < got->n; i++)
        is_str(got->lines[i], want[i], "%s: item %zu", name, i);
    for (size_t i = n; i < got->n; i++)
        diag("extra: %s", got->lines[i]);
}

#define EXPECT(got, name, ...)                                                                     \
    do {                                                                                           \
        static const char *const want_[] = {__VA_ARGS__};                                          \
        expect(got, want_, sizeof want_ / sizeof want_[0], name);                                  \
    } while (0)

static void transcript(const char *file, struct sum *got, struct runner_buf *in)
{
    struct runner_request req = base_req();
    void *st = opencode_provider.state_new(&ctx, &req);
    memset(got, 0, sizeof *got);
    ok(st && feed_transcript(st, file, got, in) == 0, "%s read", file);
    opencode_provider.state_free(st);
}

#define TB "status token_budget used=19 in=12 out=7 cached=0 total=-"
#define TOUCH "{\"command\":\"touch fake_tool_ran.txt\",\"description\":\"Create a marker file\"}"
#define TITLE "title=\"touch fake_tool_ran.txt\""

static void transcripts(void)
{
    struct runner_buf in = {0};
    struct sum got;

    transcript("text.jsonl", &got, &in);
    EXPECT(&got, "text", "native_id ses_debbbdc98ffepxipHg1TMy3Nxm",
           "text assistant: Hello from the fake model.", TB, "result ok");

    transcript("resume.jsonl", &got, &in);
    EXPECT(&got, "resume", "native_id ses_debbbdc98ffepxipHg1TMy3Nxm",
           "text assistant: Hello from the fake model.", TB, "result ok");

    transcript("stdin_prompt.jsonl", &got, &in);
    EXPECT(&got, "stdin_prompt", "native_id ses_debbb5599ffenR5Xsq7g7TNeRR",
           "text assistant: Hello from the fake model.", TB, "result ok");

    transcript("tool_default.jsonl", &got, &in);
    EXPECT(&got, "tool_default", "native_id ses_debbbaaa4ffekCRgdZtVbYXSIv",
           "tool_use call_d12ef54da1ec bash " TOUCH " status=\"completed\" " TITLE,
           "tool_result call_d12ef54da1ec ok: (no output)", TB,
           "text assistant: Tool finished; done.", TB, "result ok");

    transcript("tool_ask_auto.jsonl", &got, &in);
    EXPECT(&got, "tool_ask_auto", "native_id ses_debbb7f62ffeU768AVgKtRxAix",
           "tool_use call_92d1e818cdd2 bash " TOUCH " status=\"completed\" " TITLE,
           "tool_result call_92d1e818cdd2 ok: (no output)", TB,
           "text assistant: Tool finished; done.", TB, "result ok");

    /* Auto-rejected: the tool part errs and the run stops after the tool-calls step
     * (exit 0, no end-of-turn item: the adapter does not need one). */
    transcript("tool_ask.jsonl", &got, &in);
    EXPECT(&got, "tool_ask", "native_id ses_debbb93d2ffeVvaFdIV50cnO0Z",
           "tool_use call_d22d47cb7ac0 bash " TOUCH " status=\"error\" title=-",
           "tool_result call_d22d47cb7ac0 error: The user rejected permission to use this "
           "specific tool call.",
           TB);

    /* Killed by SIGTERM: stdout ends after step_start. */
    transcript("abort_sigterm.jsonl", &got, &in);
    EXPECT(&got, "abort_sigterm", "native_id ses_debbb10feffeQJG6WUg1xv3Sm7");

    transcript("error400.jsonl", &got, &in);
    EXPECT(&got, "error400", "native_id ses_debbb696affeCuCxs4zSTtMnC8",
           "result error: opencode: APIError: fake error for testing");

    is_int(in.len, 0, "opencode never writes to stdin");
    runner_buf_free(&in);
}

/* ---- lines the transcripts do not have --------------------------------------------------- */

static void other_lines(void)
{
    struct runner_request req = base_req();
    struct runner_buf in = {0};
    struct sum got = {0};
    void *st = opencode_provider.state_new(&ctx, &req);

    feed(st, "this is not json", &got, &in);
    feed(st, "[1,2,3]", &got, &in);
    feed(st, "{}", &got, &in);
    feed(st, "{\"type\":42,\"sessionID\":\"ses_x\"}", &got, &in);
    feed(st, "\xff\xfe not utf-8", &got, &in);
    /* A partial line: the tail of stdout flushed at EOF, cut inside an object. */
    feed(st, "{\"type\":\"text\",\"sessionID\":\"ses_a\",\"part\":{\"type\":\"te", &got, &in);
    feed(st, "{\"type\":\"brand_new\",\"sessionID\":\"ses_a\"}", &got, &in);
    feed(st, "{\"type\":\"step_start\",\"sessionID\":\"ses_b\",\"part\":{}}", &got, &in);
    feed(st, "{\"type\":\"text\",\"sessionID\":\"ses_a\"}", &got, &in);
    feed(st, "{\"type\":\"text\",\"part\":{\"type\":\"text\",\"text\":\"\"}}", &got, &in);
    feed(st,
         "{\"type\":\"reasoning\",\"sessionID\":\"ses_a\",\"part\":{\"type\":\"reasoning\","
         "\"text\":\"**Thinking** about it\"}}",
         &got, &in);
    feed(st,
         "{\"type\":\"tool_use\",\"part\":{\"type\":\"tool\",\"tool\":\"read\",\"callID\":\"c1\","
         "\"state\":{\"status\":\"running\",\"input\":{\"filePath\":\"a.c\"}}}}",
         &got, &in);
    feed(st,
         "{\"type\":\"tool_use\",\"part\":{\"type\":\"tool\",\"id\":\"prt_1\",\"state\":{"
         "\"status\":\"error\",\"input\":[1]}}}",
         &got, &in);
    feed(st, "{\"type\":\"tool_use\"}", &got, &in);
    feed(st,
         "{\"type\":\"step_finish\",\"part\":{\"reason\":\"tool-calls\",\"tokens\":{\"input\":5,"
         "\"output\":2}}}",
         &got, &in);
    feed(st, "{\"type\":\"step_finish\",\"part\":{\"reason\":\"stop\"}}", &got, &in);
    feed(st, "{\"type\":\"step_finish\",\"part\":{\"reason\":\"stop\"}}", &got, &in);
    feed(st, "{\"type\":\"error\",\"error\":\"plain string\"}", &got, &in);
    feed(st, "{\"type\":\"error\",\"error\":{\"name\":\"UnknownError\",\"message\":\"m\"}}", &got,
         &in);
    feed(st, "{\"type\":\"error\",\"error\":{\"name\":\"MessageAbortedError\"}}", &got, &in);
    feed(st, "{\"type\":\"error\"}", &got, &in);
    EXPECT(&got, "other lines",
           "error: opencode: unreadable output line (invalid JSON): this is not json",
           "error: opencode: unreadable output line (no type): [1,2,3]",
           "error: opencode: unreadable output line (no type): {}",
           "error: opencode: unreadable output line (no type): {\"type\":42,\"sessionID\":"
           "\"ses_x\"}",
           "error: opencode: unreadable output line (invalid JSON): ?? not utf-8",
           "error: opencode: unreadable output line (invalid JSON): "
           "{\"type\":\"text\",\"sessionID\":\"ses_a\",\"part\":{\"type\":\"te",
           "native_id ses_a", "thinking: **Thinking** about it",
           "tool_use c1 read {\"filePath\":\"a.c\"} status=\"running\" title=-",
           "tool_use prt_1 tool {} status=\"error\" title=-",
           "tool_result prt_1 error: tool failed", "tool_use  tool {}",
           "status token_budget used=7 in=5 out=2 cached=- total=-", "result ok",
           "result error: opencode: error: plain string", "result error: opencode: UnknownError: m",
           "result error: MessageAbortedError", "result error: opencode: the run failed");
    is_int(in.len, 0, "no stdin for these lines");

    /* A very long line is fine for the adapter (the runner caps lines). */
    size_t big = 200000;
    char *line = malloc(big + 128);
    if (line) {
        int n = snprintf(line, 128, "{\"type\":\"text\",\"part\":{\"type\":\"text\",\"text\":\"");
        memset(line + n, 'x', big);
        memcpy(line + n + big, "\"}}", 4);
        struct runner_items it2 = {0};
        opencode_provider.parse_line(st, line, strlen(line), &it2, &in);
        ok(it2.n == 1 && strlen(s(it2.v[0].ev, "content")) == big, "a 200 kB text line");
        runner_items_clear(&it2);
        free(line);
    }
    opencode_provider.state_free(st);
    runner_buf_free(&in);
}

/* ---- argv and the adapter's shape ----------------------------------------------------- */

static void join(struct runner_strv *sv, char *buf, size_t size)
{
    size_t off = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < sv->n && off < size; i++)
        off += (size_t)snprintf(buf + off, size - off, "%s%s", i ? " | " : "", sv->v[i]);
}

#define FIXED "run | --format | json"

static void args(void)
{
    struct runner_request req = base_req();
    struct runner_strv sv = {0};
    char buf[1024];
    static const char *const modes[][2] = {
        {NULL, ""},
        {"default", ""},
        {"plan", ""},
        {"acceptEdits", ""},
        {"bypassPermissions", " | --auto"},
        {"rm -rf", ""},
    };

    ok(opencode_provider.build_argv(&req, &sv) == 0, "argv");
    join(&sv, buf, sizeof buf);
    is_str(buf, FIXED " | say hi", "a new session");
    ok(sv.v[sv.n] == NULL, "NULL-terminated");
    runner_strv_free(&sv);

    req.model = "fake/fake-model";
    req.native_id = "ses_debbbdc98ffepxipHg1TMy3Nxm";
    req.content = "-rf go on";
    ok(opencode_provider.build_argv(&req, &sv) == 0, "argv to resume");
    join(&sv, buf, sizeof buf);
    is_str(buf,
           FIXED " | --model | fake/fake-model | --session | ses_debbbdc98ffepxipHg1TMy3Nxm | -- | "
                 "-rf go on",
           "resume: --session ID, then the prompt after --");
    runner_strv_free(&sv);

    req = base_req();
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        char want[256];
        req.permission_mode = (char *)modes[i][0];
        ok(opencode_provider.build_argv(&req, &sv) == 0, "argv");
        join(&sv, buf, sizeof buf);
        snprintf(want, sizeof want, FIXED "%s | say hi", modes[i][1]);
        is_str(buf, want, "permissionMode %s", modes[i][0] ? modes[i][0] : "(none)");
        runner_strv_free(&sv);
    }
    req.skip_permissions = true;
    req.permission_mode = NULL;
    ok(opencode_provider.build_argv(&req, &sv) == 0, "argv");
    join(&sv, buf, sizeof buf);
    is_str(buf, FIXED " | --auto | say hi", "skipPermissions");
    runner_strv_free(&sv);
    req.permission_mode = "plan";
    ok(opencode_provider.build_argv(&req, &sv) == 0, "argv");
    join(&sv, buf, sizeof buf);
    is_str(buf, FIXED " | say hi", "skipPermissions does not approve in plan mode");
    runner_strv_free(&sv);

    ok(opencode_provider.build_env && opencode_provider.build_env(&req, &sv) == 0, "env");
    ok(sv.n == 1 && strcmp(sv.v[0], "OPENCODE_DISABLE_AUTOUPDATE=true") == 0, "no auto-update");
    runner_strv_free(&sv);

    ok(runner_provider_for(PROVIDER_OPENCODE) == &opencode_provider, "the table has opencode");
    is_str(opencode_provider.name, "opencode", "name");
    ok(!opencode_provider.stdin_protocol, "stdin is /dev/null");
    ok(!opencode_provider.needs_result, "no end-of-turn marker is required");
    ok(!opencode_provider.interrupt, "abort by signals");
}

int main(void)
{
    plan_lazy();
    transcripts();
    other_lines();
    args();
    return done_testing();
}
