/* test_gemini.c: the Gemini adapter against recorded transcripts, odd lines, argv and env. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapter_harness.h"
#include "runner/provider.h"
#include "tap.h"

static const struct event_ctx ctx = {"2b1f0d6e-1111-4222-8333-444455556666", "run_t", "gemini"};

static struct runner_request base_req(void)
{
    struct runner_request req = {0};
    req.session_id = "2b1f0d6e-1111-4222-8333-444455556666";
    req.run_id = "run_t";
    req.provider = PROVIDER_GEMINI;
    req.project_path = "/srv/ws/gemini";
    req.content = "say hi";
    req.owner = 1;
    return req;
}

static const struct harness h = {&gemini_provider, &ctx, "gemini", NULL};

static void transcript(const char *file, struct harness_sum *got, struct runner_buf *in)
{
    struct runner_request req = base_req();
    harness_transcript(&h, &req, file, got, in);
}

#define TB_12_7 "status token_budget used=19 in=12 out=7 cached=0 total=-"
#define TB_24_14 "status token_budget used=38 in=24 out=14 cached=0 total=-"
#define HELLO                                                                                      \
    "stream_delta: Hello from th", "stream_delta: e fake model.", "stream_end",                    \
        "text assistant: Hello from the fake model."
#define DONE                                                                                       \
    "stream_delta: Tool finis", "stream_delta: hed; done.", "stream_end",                          \
        "text assistant: Tool finished; done."
#define TOUCH "{\"command\":\"touch fake_tool_ran.txt\",\"description\":\"Create a marker file\"}"
#define NOT_FOUND "Tool \"run_shell_command\" not found. Did you mean one of: \"update_topic\", "

static void transcripts(void)
{
    struct runner_buf in = {0};
    struct harness_sum got;

    transcript("text.jsonl", &got, &in);
    HARNESS_EXPECT(&got, "text", "native_id 4767651e-cf6a-4b27-8b4b-279590467afa", HELLO, TB_12_7,
                   "result ok");
    transcript("resume_uuid.jsonl", &got, &in);
    HARNESS_EXPECT(&got, "resume_uuid", "native_id 4767651e-cf6a-4b27-8b4b-279590467afa", HELLO,
                   TB_12_7, "result ok");
    transcript("resume_latest.jsonl", &got, &in);
    HARNESS_EXPECT(&got, "resume_latest", "native_id 4767651e-cf6a-4b27-8b4b-279590467afa", HELLO,
                   TB_12_7, "result ok");
    transcript("preassigned_session_id.jsonl", &got, &in);
    HARNESS_EXPECT(&got, "preassigned", "native_id 3718c7f5-741c-4844-9b47-7f4b0fa576e2", HELLO,
                   TB_12_7, "result ok");
    transcript("stdin_prompt.jsonl", &got, &in);
    HARNESS_EXPECT(&got, "stdin_prompt", "native_id b39380b9-bcae-41b1-967d-b34be136289f", HELLO,
                   TB_12_7, "result ok");

    transcript("tool_yolo.jsonl", &got, &in);
    HARNESS_EXPECT(
        &got, "tool_yolo", "native_id 1bd487ad-7024-4a9f-a54c-974f002e930f",
        "tool_use run_shell_command__run_shell_command_1795636127095_0 run_shell_command " TOUCH,
        "tool_result run_shell_command__run_shell_command_1795636127095_0 ok: ", DONE, TB_24_14,
        "result ok");
    transcript("tool_allowed_tools.jsonl", &got, &in);
    HARNESS_EXPECT(
        &got, "tool_allowed_tools", "native_id 4fb3fd44-9432-4a7c-8077-af17d1ff2473",
        "tool_use run_shell_command__run_shell_command_1795636130690_0 run_shell_command " TOUCH,
        "tool_result run_shell_command__run_shell_command_1795636130690_0 ok: ", DONE, TB_24_14,
        "result ok");
    /* Not offered to the model in these modes: the CLI answers the call with an error. */
    transcript("tool_default.jsonl", &got, &in);
    HARNESS_EXPECT(
        &got, "tool_default", "native_id 5003c649-9c60-44a8-a4b1-7fbaed6f3cb5",
        "tool_use run_shell_command__run_shell_command_1795636120490_0 run_shell_command " TOUCH,
        "tool_result run_shell_command__run_shell_command_1795636120490_0 error: " NOT_FOUND
        "\"grep_search\", \"invoke_agent\"?",
        DONE, TB_24_14, "result ok");
    transcript("tool_auto_edit.jsonl", &got, &in);
    HARNESS_EXPECT(
        &got, "tool_auto_edit", "native_id 8f14e2bc-6abb-443e-90b9-a3bc24eefa54",
        "tool_use run_shell_command__run_shell_command_1795636123847_0 run_shell_command " TOUCH,
        "tool_result run_shell_command__run_shell_command_1795636123847_0 error: " NOT_FOUND
        "\"grep_search\", \"replace\"?",
        DONE, TB_24_14, "result ok");

    transcript("error400.jsonl", &got, &in);
    HARNESS_EXPECT(&got, "error400", "native_id 837b297d-3663-412a-8ab5-51efef586c2d",
                   "status token_budget used=0 in=0 out=0 cached=0 total=-",
                   "result error: gemini: the turn failed: fake error for testing");

    /* Killed: stdout just stops (transcript() does not call finish; see other_lines). */
    transcript("abort_sigterm_process_group.jsonl", &got, &in);
    HARNESS_EXPECT(&got, "abort_group", "native_id 1bc6179b-fe71-4d9f-acb9-9da765acd3dd",
                   "stream_delta: tick0 ", "stream_delta: tick1 ", "stream_delta: tick2 ",
                   "stream_delta: tick3 ");
    transcript("abort_sigterm_norelaunch.jsonl", &got, &in);
    HARNESS_EXPECT(&got, "abort_norelaunch", "native_id 34311f9f-bebb-48ba-909e-bc7a54c66ee4",
                   "stream_delta: tick0 ", "stream_delta: tick1 ", "stream_delta: tick2 ",
                   "stream_delta: tick3 ", "stream_delta: tick4 ");

    is_int(in.len, 0, "gemini never writes to stdin");
    runner_buf_free(&in);
}

/* ---- lines the transcripts do not have --------------------------------------------------- */

static void other_lines(void)
{
    struct runner_request req = base_req();
    struct runner_buf in = {0};
    struct harness_sum got = {0};
    void *st = gemini_provider.state_new(&ctx, &req);

    harness_feed(&h, st, "this is not json", &got, &in);
    harness_feed(&h, st, "[1,2,3]", &got, &in);
    harness_feed(&h, st, "{}", &got, &in);
    harness_feed(&h, st, "{\"type\":42}", &got, &in);
    harness_feed(&h, st, "\xff\xfe not utf-8", &got, &in);
    harness_feed(&h, st, "{\"type\":\"message\",\"role\":\"assistant\",\"content\":\"cut", &got,
                 &in);
    harness_feed(&h, st, "{\"type\":\"brand.new\"}", &got, &in);
    harness_feed(&h, st, "{\"type\":\"init\"}", &got, &in);
    harness_feed(&h, st, "{\"type\":\"message\",\"role\":\"user\",\"content\":\"hi\"}", &got, &in);
    /* A whole (non-delta) message: delta, end, text at once. */
    harness_feed(&h, st, "{\"type\":\"message\",\"role\":\"assistant\",\"content\":\"whole\"}",
                 &got, &in);
    harness_feed(&h, st,
                 "{\"type\":\"message\",\"role\":\"assistant\",\"content\":\"a\",\"delta\":true}",
                 &got, &in);
    harness_feed(&h, st, "{\"type\":\"error\",\"severity\":\"warning\",\"message\":\"slow down\"}",
                 &got, &in);
    harness_feed(&h, st, "{\"type\":\"error\"}", &got, &in);
    harness_feed(&h, st, "{\"type\":\"tool_use\",\"tool_id\":\"t1\"}", &got, &in);
    harness_feed(
        &h, st,
        "{\"type\":\"tool_result\",\"tool_id\":\"t1\",\"status\":\"success\",\"output\":{\"n\":"
        "1}}",
        &got, &in);
    harness_feed(&h, st,
                 "{\"type\":\"tool_result\",\"tool_id\":\"t2\",\"status\":\"error\",\"error\":{"
                 "\"message\":\"denied\"}}",
                 &got, &in);
    harness_feed(&h, st, "{\"type\":\"tool_result\",\"tool_id\":\"t3\",\"status\":\"error\"}", &got,
                 &in);
    harness_feed(&h, st,
                 "{\"type\":\"message\",\"role\":\"assistant\",\"content\":\"b\",\"delta\":true}",
                 &got, &in);
    harness_feed(&h, st,
                 "{\"type\":\"message\",\"role\":\"assistant\",\"content\":\"c\",\"delta\":true}",
                 &got, &in);
    harness_finish(&h, st, &got);
    harness_finish(&h, st, &got);
    harness_feed(&h, st, "{\"type\":\"result\",\"status\":\"success\"}", &got, &in);
    harness_feed(&h, st,
                 "{\"type\":\"result\",\"status\":\"error\",\"error\":{\"message\":\"quota\"}}",
                 &got, &in);
    harness_feed(&h, st, "{\"type\":\"result\",\"status\":\"error\"}", &got, &in);
    HARNESS_EXPECT(&got, "other lines",
                   "error: gemini: unreadable output line (invalid JSON): this is not json",
                   "error: gemini: unreadable output line (no type): [1,2,3]",
                   "error: gemini: unreadable output line (no type): {}",
                   "error: gemini: unreadable output line (no type): {\"type\":42}",
                   "error: gemini: unreadable output line (invalid JSON): ?? not utf-8",
                   "error: gemini: unreadable output line (invalid JSON): "
                   "{\"type\":\"message\",\"role\":\"assistant\",\"content\":\"cut",
                   "stream_delta: whole", "stream_end", "text assistant: whole", "stream_delta: a",
                   "stream_end", "text assistant: a", "error: slow down", "error: gemini: error",
                   "tool_use t1 tool {}", "tool_result t1 ok: {\"n\":1}",
                   "tool_result t2 error: denied", "tool_result t3 error: gemini: the tool failed",
                   "stream_delta: b", "stream_delta: c", "stream_end", "text assistant: bc",
                   "result ok", "result error: quota", "result error: gemini: the turn failed");
    is_int(in.len, 0, "no stdin for these lines");

    /* A very long line is fine for the adapter (the runner caps lines). */
    size_t big = 200000;
    char *line = malloc(big + 128);
    if (line) {
        int n = snprintf(line, 128, "{\"type\":\"message\",\"role\":\"assistant\",\"content\":\"");
        memset(line + n, 'x', big);
        memcpy(line + n + big, "\"}", 3);
        struct runner_items it = {0};
        gemini_provider.parse_line(st, line, strlen(line), &it, &in);
        ok(it.n == 3 && strlen(harness_str(it.v[2].ev, "content")) == big, "a 200 kB text line");
        runner_items_clear(&it);
        free(line);
    }
    gemini_provider.state_free(st);
    runner_buf_free(&in);
}

/* ---- argv, env and the adapter's shape ------------------------------------------------ */

#define FIXED "--output-format | stream-json | --skip-trust"

static void args(void)
{
    struct runner_request req = base_req();
    struct runner_strv sv = {0};
    char buf[1024];
    static const char *const modes[][2] = {
        {NULL, ""},
        {"default", ""},
        {"plan", " | --approval-mode | plan"},
        {"acceptEdits", " | --approval-mode | auto_edit"},
        {"bypassPermissions", " | --yolo"},
        {"rm -rf", ""},
    };

    harness_argv_is(&gemini_provider, &req, "-p | say hi | " FIXED, "a new session");

    char *tools[] = {"run_shell_command", "", "write_file"};
    req.model = "gemini-2.5-flash";
    req.native_id = "4767651e-cf6a-4b27-8b4b-279590467afa";
    req.content = "-rf go on";
    req.allowed_tools = tools;
    req.n_allowed = 3;
    harness_argv_is(
        &gemini_provider, &req,
        "--prompt=-rf go on | " FIXED " | --model=gemini-2.5-flash | --allowed-tools | "
        "run_shell_command,write_file | --resume | 4767651e-cf6a-4b27-8b4b-279590467afa",
        "resume with a model, allowed tools and a prompt that starts with '-'");

    req = base_req();
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        char want[256];
        req.permission_mode = (char *)modes[i][0];
        snprintf(want, sizeof want, "-p | say hi | " FIXED "%s", modes[i][1]);
        harness_argv_is(&gemini_provider, &req, want, "permissionMode %s",
                        modes[i][0] ? modes[i][0] : "(none)");
    }
    req.skip_permissions = true;
    req.permission_mode = NULL;
    harness_argv_is(&gemini_provider, &req, "-p | say hi | " FIXED " | --yolo", "skipPermissions");
    req.permission_mode = "plan";
    harness_argv_is(&gemini_provider, &req, "-p | say hi | " FIXED " | --approval-mode | plan",
                    "skipPermissions keeps plan read-only");

    ok(gemini_provider.build_env && gemini_provider.build_env(&req, &sv) == 0, "env");
    harness_join(&sv, " | ", buf, sizeof buf);
    is_str(buf, "GEMINI_CLI_NO_RELAUNCH=true", "no relaunch: one process to signal");
    runner_strv_free(&sv);

    ok(runner_provider_for(PROVIDER_GEMINI) == &gemini_provider, "the table has gemini");
    is_str(gemini_provider.name, "gemini", "name");
    ok(!gemini_provider.stdin_protocol, "stdin is /dev/null");
    ok(gemini_provider.needs_result, "result ends the turn");
    ok(!gemini_provider.interrupt, "abort by signals");
}

/* @path of every file after the prompt, their directory in the workspace. */
static void attachments(void)
{
    struct runner_request req = base_req();

    harness_attachments(&req);
    harness_argv_is(&gemini_provider, &req,
                    "-p | say hi\n\n@/tmp/att/1-shot.png @/tmp/att/2-notes.txt | " FIXED
                    " | --include-directories=/tmp/att",
                    "attachments: @paths and --include-directories");
    req.content = "-v please";
    harness_argv_is(&gemini_provider, &req,
                    "--prompt=-v please\n\n@/tmp/att/1-shot.png @/tmp/att/2-notes.txt | " FIXED
                    " | --include-directories=/tmp/att",
                    "attachments with a prompt that starts with -");
    ok(gemini_provider.attachments, "gemini takes attachments");
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
