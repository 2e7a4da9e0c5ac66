/* test_opencode.c: the OpenCode adapter against the recorded transcripts
 * (tests/fixtures/opencode/), plus other line types, garbage and partial lines, argv, env and
 * the provider table entry. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapter_harness.h"
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

/* A tool_use also shows its status and title. */
static void opencode_event_line(const json_t *ev, char *line, size_t size)
{
    char b[128], c[128];
    harness_event_line(ev, line, size);
    if (strcmp(harness_str(ev, "kind"), "tool_use") == 0 && json_object_get(ev, "status")) {
        size_t n = strlen(line);
        snprintf(line + n, size - n, " status=%s title=%s", harness_json(ev, "status", b, sizeof b),
                 harness_json(ev, "title", c, sizeof c));
    }
}

static const struct harness h = {&opencode_provider, &ctx, "opencode", opencode_event_line};

static void transcript(const char *file, struct harness_sum *got, struct runner_buf *in)
{
    struct runner_request req = base_req();
    harness_transcript(&h, &req, file, got, in);
}

#define TB "status token_budget used=19 in=12 out=7 cached=0 total=-"
#define TOUCH "{\"command\":\"touch fake_tool_ran.txt\",\"description\":\"Create a marker file\"}"
#define TITLE "title=\"touch fake_tool_ran.txt\""

static void transcripts(void)
{
    struct runner_buf in = {0};
    struct harness_sum got;

    transcript("text.jsonl", &got, &in);
    HARNESS_EXPECT(&got, "text", "native_id ses_debbbdc98ffepxipHg1TMy3Nxm",
                   "text assistant: Hello from the fake model.", TB, "result ok");

    transcript("resume.jsonl", &got, &in);
    HARNESS_EXPECT(&got, "resume", "native_id ses_debbbdc98ffepxipHg1TMy3Nxm",
                   "text assistant: Hello from the fake model.", TB, "result ok");

    transcript("stdin_prompt.jsonl", &got, &in);
    HARNESS_EXPECT(&got, "stdin_prompt", "native_id ses_debbb5599ffenR5Xsq7g7TNeRR",
                   "text assistant: Hello from the fake model.", TB, "result ok");

    transcript("tool_default.jsonl", &got, &in);
    HARNESS_EXPECT(&got, "tool_default", "native_id ses_debbbaaa4ffekCRgdZtVbYXSIv",
                   "tool_use call_d12ef54da1ec bash " TOUCH " status=\"completed\" " TITLE,
                   "tool_result call_d12ef54da1ec ok: (no output)", TB,
                   "text assistant: Tool finished; done.", TB, "result ok");

    transcript("tool_ask_auto.jsonl", &got, &in);
    HARNESS_EXPECT(&got, "tool_ask_auto", "native_id ses_debbb7f62ffeU768AVgKtRxAix",
                   "tool_use call_92d1e818cdd2 bash " TOUCH " status=\"completed\" " TITLE,
                   "tool_result call_92d1e818cdd2 ok: (no output)", TB,
                   "text assistant: Tool finished; done.", TB, "result ok");

    /* Auto-rejected: the tool part errs and the run stops after the tool-calls step
     * (exit 0, no end-of-turn item: the adapter does not need one). */
    transcript("tool_ask.jsonl", &got, &in);
    HARNESS_EXPECT(&got, "tool_ask", "native_id ses_debbb93d2ffeVvaFdIV50cnO0Z",
                   "tool_use call_d22d47cb7ac0 bash " TOUCH " status=\"error\" title=-",
                   "tool_result call_d22d47cb7ac0 error: The user rejected permission to use this "
                   "specific tool call.",
                   TB);

    /* Killed by SIGTERM: stdout ends after step_start. */
    transcript("abort_sigterm.jsonl", &got, &in);
    HARNESS_EXPECT(&got, "abort_sigterm", "native_id ses_debbb10feffeQJG6WUg1xv3Sm7");

    transcript("error400.jsonl", &got, &in);
    HARNESS_EXPECT(&got, "error400", "native_id ses_debbb696affeCuCxs4zSTtMnC8",
                   "result error: opencode: APIError: fake error for testing");

    is_int(in.len, 0, "opencode never writes to stdin");
    runner_buf_free(&in);
}

/* ---- lines the transcripts do not have --------------------------------------------------- */

static void other_lines(void)
{
    struct runner_request req = base_req();
    struct runner_buf in = {0};
    struct harness_sum got = {0};
    void *st = opencode_provider.state_new(&ctx, &req);

    harness_feed(&h, st, "this is not json", &got, &in);
    harness_feed(&h, st, "[1,2,3]", &got, &in);
    harness_feed(&h, st, "{}", &got, &in);
    harness_feed(&h, st, "{\"type\":42,\"sessionID\":\"ses_x\"}", &got, &in);
    harness_feed(&h, st, "\xff\xfe not utf-8", &got, &in);
    /* A partial line: the tail of stdout flushed at EOF, cut inside an object. */
    harness_feed(&h, st, "{\"type\":\"text\",\"sessionID\":\"ses_a\",\"part\":{\"type\":\"te", &got,
                 &in);
    harness_feed(&h, st, "{\"type\":\"brand_new\",\"sessionID\":\"ses_a\"}", &got, &in);
    harness_feed(&h, st, "{\"type\":\"step_start\",\"sessionID\":\"ses_b\",\"part\":{}}", &got,
                 &in);
    harness_feed(&h, st, "{\"type\":\"text\",\"sessionID\":\"ses_a\"}", &got, &in);
    harness_feed(&h, st, "{\"type\":\"text\",\"part\":{\"type\":\"text\",\"text\":\"\"}}", &got,
                 &in);
    harness_feed(&h, st,
                 "{\"type\":\"reasoning\",\"sessionID\":\"ses_a\",\"part\":{\"type\":\"reasoning\","
                 "\"text\":\"**Thinking** about it\"}}",
                 &got, &in);
    harness_feed(
        &h, st,
        "{\"type\":\"tool_use\",\"part\":{\"type\":\"tool\",\"tool\":\"read\",\"callID\":\"c1\","
        "\"state\":{\"status\":\"running\",\"input\":{\"filePath\":\"a.c\"}}}}",
        &got, &in);
    harness_feed(&h, st,
                 "{\"type\":\"tool_use\",\"part\":{\"type\":\"tool\",\"id\":\"prt_1\",\"state\":{"
                 "\"status\":\"error\",\"input\":[1]}}}",
                 &got, &in);
    harness_feed(&h, st, "{\"type\":\"tool_use\"}", &got, &in);
    harness_feed(
        &h, st,
        "{\"type\":\"step_finish\",\"part\":{\"reason\":\"tool-calls\",\"tokens\":{\"input\":5,"
        "\"output\":2}}}",
        &got, &in);
    harness_feed(&h, st, "{\"type\":\"step_finish\",\"part\":{\"reason\":\"stop\"}}", &got, &in);
    harness_feed(&h, st, "{\"type\":\"step_finish\",\"part\":{\"reason\":\"stop\"}}", &got, &in);
    harness_feed(&h, st, "{\"type\":\"error\",\"error\":\"plain string\"}", &got, &in);
    harness_feed(&h, st,
                 "{\"type\":\"error\",\"error\":{\"name\":\"UnknownError\",\"message\":\"m\"}}",
                 &got, &in);
    harness_feed(&h, st, "{\"type\":\"error\",\"error\":{\"name\":\"MessageAbortedError\"}}", &got,
                 &in);
    harness_feed(&h, st, "{\"type\":\"error\"}", &got, &in);
    HARNESS_EXPECT(
        &got, "other lines",
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
        "tool_use prt_1 tool {} status=\"error\" title=-", "tool_result prt_1 error: tool failed",
        "tool_use  tool {}", "status token_budget used=7 in=5 out=2 cached=- total=-", "result ok",
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
        ok(it2.n == 1 && strlen(harness_str(it2.v[0].ev, "content")) == big, "a 200 kB text line");
        runner_items_clear(&it2);
        free(line);
    }
    opencode_provider.state_free(st);
    runner_buf_free(&in);
}

/* ---- argv and the adapter's shape ----------------------------------------------------- */

#define FIXED "run | --format | json"

static void args(void)
{
    struct runner_request req = base_req();
    struct runner_strv sv = {0};
    static const char *const modes[][2] = {
        {NULL, ""},
        {"default", ""},
        {"plan", ""},
        {"acceptEdits", ""},
        {"bypassPermissions", " | --auto"},
        {"rm -rf", ""},
    };

    harness_argv_is(&opencode_provider, &req, FIXED " | say hi", "a new session");

    req.model = "fake/fake-model";
    req.native_id = "ses_debbbdc98ffepxipHg1TMy3Nxm";
    req.content = "-rf go on";
    harness_argv_is(
        &opencode_provider, &req,
        FIXED " | --model=fake/fake-model | --session | ses_debbbdc98ffepxipHg1TMy3Nxm | -- | "
              "-rf go on",
        "resume: --session ID, then the prompt after --");

    req = base_req();
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        char want[256];
        req.permission_mode = (char *)modes[i][0];
        snprintf(want, sizeof want, FIXED "%s | say hi", modes[i][1]);
        harness_argv_is(&opencode_provider, &req, want, "permissionMode %s",
                        modes[i][0] ? modes[i][0] : "(none)");
    }
    req.skip_permissions = true;
    req.permission_mode = NULL;
    harness_argv_is(&opencode_provider, &req, FIXED " | --auto | say hi", "skipPermissions");
    req.permission_mode = "plan";
    harness_argv_is(&opencode_provider, &req, FIXED " | say hi",
                    "skipPermissions does not approve in plan mode");

    ok(opencode_provider.build_env && opencode_provider.build_env(&req, &sv) == 0, "env");
    ok(sv.n == 1 && strcmp(sv.v[0], "OPENCODE_DISABLE_AUTOUPDATE=true") == 0, "no auto-update");
    runner_strv_free(&sv);

    ok(runner_provider_for(PROVIDER_OPENCODE) == &opencode_provider, "the table has opencode");
    is_str(opencode_provider.name, "opencode", "name");
    ok(!opencode_provider.stdin_protocol, "stdin is /dev/null");
    ok(!opencode_provider.needs_result, "no end-of-turn marker is required");
    ok(!opencode_provider.interrupt, "abort by signals");
}

/* Every file with --file=FILE, the prompt after `--`. */
static void attachments(void)
{
    struct runner_request req = base_req();

    harness_attachments(&req);
    harness_argv_is(&opencode_provider, &req,
                    FIXED " | --file=/tmp/att/1-shot.png | --file=/tmp/att/2-notes.txt | -- | "
                          "say hi",
                    "attachments: --file=FILE each");
    ok(opencode_provider.attachments, "opencode takes attachments");
}

int main(void)
{
    plan_lazy();
    transcripts();
    other_lines();
    args();
    attachments();
    return done_testing();
}
