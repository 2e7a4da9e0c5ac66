/* test_claude.c: the Claude adapter against the recorded transcripts (tests/fixtures/claude/),
 * plus its argv, stdin protocol, control requests, garbage lines and the run request decoder. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "adapter_harness.h"
#include "runner/attach.h"
#include "runner/provider.h"
#include "tap.h"

static const struct event_ctx ctx = {"2b1f0d6e-1111-4222-8333-444455556666", "run_t", "claude"};

static struct runner_request base_req(void)
{
    struct runner_request req = {0};
    req.session_id = "2b1f0d6e-1111-4222-8333-444455556666";
    req.run_id = "run_t";
    req.project_path = "/srv/ws/claude";
    req.content = "say hi";
    req.owner = 1;
    return req;
}

/* Claude's token budget line also shows the context window (total). */
static void claude_event_line(const json_t *ev, char *line, size_t size)
{
    if (strcmp(harness_str(ev, "kind"), "status") == 0) {
        json_t *tb = json_object_get(ev, "tokenBudget");
        snprintf(line, size, "status %s used=%lld total=%lld in=%lld out=%lld",
                 harness_str(ev, "text"), json_integer_value(json_object_get(tb, "used")),
                 json_integer_value(json_object_get(tb, "total")),
                 json_integer_value(json_object_get(tb, "inputTokens")),
                 json_integer_value(json_object_get(tb, "outputTokens")));
        return;
    }
    harness_event_line(ev, line, size);
}

static const struct harness h = {&claude_provider, &ctx, "claude", claude_event_line};

static void transcript(const char *file, struct harness_sum *got, struct runner_buf *in)
{
    struct runner_request req = base_req();
    harness_transcript(&h, &req, file, got, in);
}

#define BASH_INPUT                                                                                 \
    "{\"command\":\"touch fake_tool_ran.txt\",\"description\":\"Create a marker file\"}"

static void transcripts(void)
{
    struct runner_buf in = {0};
    struct harness_sum got;

    transcript("sdk_text_partial.jsonl", &got, &in);
    HARNESS_EXPECT(&got, "text_partial", "native_id ea1e35d7-f6e5-40a9-81ad-6b725adfa14e",
                   "stream_delta: Hello from th", "stream_delta: e fake model.", "stream_end",
                   "text assistant: Hello from the fake model.",
                   "status token_budget used=19 total=200000 in=12 out=7", "result ok");

    transcript("sdk_text.jsonl", &got, &in);
    HARNESS_EXPECT(&got, "text", "native_id 69d9827d-d1b9-4b2d-8fc6-a4292baab049",
                   "text assistant: Hello from the fake model.",
                   "status token_budget used=19 total=200000 in=12 out=7", "result ok");

    transcript("sdk_resume.jsonl", &got, &in);
    HARNESS_EXPECT(&got, "resume", "native_id ea1e35d7-f6e5-40a9-81ad-6b725adfa14e",
                   "text assistant: Hello from the fake model.",
                   "status token_budget used=19 total=200000 in=12 out=7", "result ok");

    transcript("sdk_tool_allow.jsonl", &got, &in);
    HARNESS_EXPECT(&got, "tool_allow", "native_id 205d67a7-fe51-482c-913b-0a264935f65b",
                   "tool_use toolu_fake1f8cc22cd301 Bash " BASH_INPUT,
                   "permission 2f222972-b883-4439-af90-3860033fedc8 Bash " BASH_INPUT,
                   "tool_result toolu_fake1f8cc22cd301 ok: (Bash completed with no output)",
                   "text assistant: Tool finished; done.",
                   "status token_budget used=38 total=200000 in=24 out=14", "result ok");

    transcript("sdk_tool_allow_updated_input.jsonl", &got, &in);
    HARNESS_EXPECT(&got, "tool_allow_updated_input",
                   "native_id bbfc5b70-a9c8-4254-9062-843a9f4b499b",
                   "tool_use toolu_fake0f2c86ac1555 Bash " BASH_INPUT,
                   "permission ab17100d-36bd-4c1d-a753-eae7f0a362ae Bash " BASH_INPUT,
                   "tool_result toolu_fake0f2c86ac1555 ok: (Bash completed with no output)",
                   "text assistant: Tool finished; done.",
                   "status token_budget used=38 total=200000 in=24 out=14", "result ok");

    transcript("sdk_tool_deny.jsonl", &got, &in);
    HARNESS_EXPECT(&got, "tool_deny", "native_id 0266c6c9-5b06-4d86-8a04-ac35207c6883",
                   "tool_use toolu_fakee540d65c60c7 Bash " BASH_INPUT,
                   "permission 90b49525-d0fe-4018-aa37-f48c51025dee Bash " BASH_INPUT,
                   "tool_result toolu_fakee540d65c60c7 error: User denied tool use",
                   "text assistant: Tool finished; done.",
                   "status token_budget used=38 total=200000 in=24 out=14", "result ok");

    transcript("sdk_tool_allow_partial.jsonl", &got, &in);
    HARNESS_EXPECT(&got, "tool_allow_partial", "native_id 2a4984a7-af1b-42fc-8304-19739a917a15",
                   "tool_use toolu_fake0657787ee44f Bash " BASH_INPUT,
                   "permission 3e2d3d10-2689-407d-888d-0338d4c79a01 Bash " BASH_INPUT,
                   "tool_result toolu_fake0657787ee44f ok: (Bash completed with no output)",
                   "stream_delta: Tool finis", "stream_delta: hed; done.", "stream_end",
                   "text assistant: Tool finished; done.",
                   "status token_budget used=38 total=200000 in=24 out=14", "result ok");

    transcript("sdk_tool_pending_then_interrupt.jsonl", &got, &in);
    HARNESS_EXPECT(
        &got, "pending_then_interrupt", "native_id b038397b-41a0-4c9f-aa3a-dfe602c4d888",
        "tool_use toolu_fake05bcfef86b80 Bash " BASH_INPUT,
        "permission 82131fbe-b99d-4542-b8e6-493e657d2a6c Bash " BASH_INPUT,
        "cancel 82131fbe-b99d-4542-b8e6-493e657d2a6c",
        "tool_result toolu_fake05bcfef86b80 error: The user doesn't want to proceed with this "
        "tool use. The tool use was rejected (eg. if it was a file edit, the new_string was "
        "NOT written to the file). STOP what you are doing and wait for the user to tell you "
        "how to proceed.",
        "status token_budget used=19 total=200000 in=12 out=7",
        "result error: claude: the turn failed (error_during_execution, aborted_tools)");

    transcript("sdk_interrupt_control_request.jsonl", &got, &in);
    HARNESS_EXPECT(
        &got, "interrupt", "native_id 88f62b9f-d36c-4319-b451-194ce5c30844", "stream_delta: tick0 ",
        "stream_delta: tick1 ", "stream_delta: tick2 ", "stream_end",
        "text assistant: tick0 tick1 tick2 ", "status token_budget used=0 total=160000 in=0 out=0",
        "result error: claude: the turn failed (error_during_execution, aborted_streaming)");

    transcript("print_api_error_400.jsonl", &got, &in);
    HARNESS_EXPECT(&got, "api_error", "native_id 1e7faf63-5371-4e76-a4e0-5ab445317c0b",
                   "text assistant: API Error: 400 fake error for testing",
                   "status token_budget used=0 total=160000 in=0 out=0",
                   "result error: API Error: 400 fake error for testing");

    is_int(in.len, 0, "transcripts need no automatic answers");
    runner_buf_free(&in);
}

/* ---- lines the transcripts do not have --------------------------------------------------- */

static void other_lines(void)
{
    struct runner_request req = base_req();
    struct runner_buf in = {0};
    struct harness_sum got = {0};
    void *st = claude_provider.state_new(&ctx, &req);

    harness_feed(&h, st, "this is not json", &got, &in);
    harness_feed(&h, st, "{broken", &got, &in);
    harness_feed(&h, st, "[1,2,3]", &got, &in);
    harness_feed(&h, st, "{}", &got, &in);
    harness_feed(&h, st, "{\"type\":42}", &got, &in);
    harness_feed(&h, st, "\xff\xfe not utf-8", &got, &in);
    harness_feed(&h, st, "{\"type\":\"brand_new_type\"}", &got, &in);
    harness_feed(&h, st, "{\"type\":\"system\",\"subtype\":\"api_retry\",\"attempt\":1}", &got,
                 &in);
    harness_feed(&h, st, "{\"type\":\"system\",\"subtype\":\"init\"}", &got, &in);
    harness_feed(&h, st, "{\"type\":\"assistant\"}", &got, &in);
    harness_feed(
        &h, st,
        "{\"type\":\"assistant\",\"message\":{\"content\":[{\"type\":\"thinking\",\"thinking\":"
        "\"hmm\"},{\"type\":\"redacted_thinking\"},{\"type\":\"text\",\"text\":\"\"}]}}",
        &got, &in);
    harness_feed(&h, st, "{\"type\":\"assistant\",\"message\":{\"content\":\"plain string\"}}",
                 &got, &in);
    harness_feed(&h, st, "{\"type\":\"user\",\"message\":{\"content\":\"typed by someone\"}}", &got,
                 &in);
    harness_feed(&h, st, "{\"type\":\"user\",\"message\":{\"content\":\"<system-reminder>x\"}}",
                 &got, &in);
    harness_feed(
        &h, st,
        "{\"type\":\"user\",\"message\":{\"content\":[{\"type\":\"text\",\"text\":\"Caveat: "
        "x\"},{\"type\":\"text\",\"text\":\"[Request interrupted by user]\"}]}}",
        &got, &in);
    harness_feed(
        &h, st,
        "{\"type\":\"user\",\"message\":{\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":"
        "\"t1\",\"content\":[{\"type\":\"text\",\"text\":\"a\"}]}]}}",
        &got, &in);
    harness_feed(
        &h, st,
        "{\"type\":\"user\",\"message\":{\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":"
        "\"t2\"}]}}",
        &got, &in);
    harness_feed(&h, st, "{\"type\":\"control_cancel_request\"}", &got, &in);
    harness_feed(
        &h, st,
        "{\"type\":\"control_response\",\"response\":{\"subtype\":\"error\",\"request_id\":"
        "\"req_1\",\"error\":\"nope\"}}",
        &got, &in);
    harness_feed(&h, st, "{\"type\":\"result\",\"subtype\":\"success\",\"is_error\":false}", &got,
                 &in);
    HARNESS_EXPECT(&got, "other lines",
                   "error: claude: unreadable output line (invalid JSON): this is not json",
                   "error: claude: unreadable output line (invalid JSON): {broken",
                   "error: claude: unreadable output line (no type): [1,2,3]",
                   "error: claude: unreadable output line (no type): {}",
                   "error: claude: unreadable output line (no type): {\"type\":42}",
                   "error: claude: unreadable output line (invalid JSON): ?? not utf-8",
                   "thinking: hmm", "text assistant: plain string", "text user: typed by someone",
                   "tool_result t1 ok: [{\"type\":\"text\",\"text\":\"a\"}]",
                   "tool_result t2 ok: ", "result ok");
    is_int(in.len, 0, "no answers for these lines");

    /* A text stream that never ends is closed by finish; a second finish adds nothing. */
    memset(&got, 0, sizeof got);
    harness_feed(
        &h, st,
        "{\"type\":\"stream_event\",\"event\":{\"type\":\"content_block_delta\",\"delta\":{"
        "\"type\":\"text_delta\",\"text\":\"par\"}}}",
        &got, &in);
    harness_feed(
        &h, st,
        "{\"type\":\"stream_event\",\"event\":{\"type\":\"content_block_delta\",\"delta\":{"
        "\"type\":\"thinking_delta\",\"thinking\":\"t\"}}}",
        &got, &in);
    struct runner_items it = {0};
    claude_provider.finish(st, &it);
    claude_provider.finish(st, &it);
    harness_summarize(&h, &it, &got);
    runner_items_clear(&it);
    HARNESS_EXPECT(&got, "finish", "stream_delta: par", "stream_end");

    /* A very long line is fine for the adapter (the runner caps lines). */
    size_t big = 200000;
    char *line = malloc(big + 64);
    if (line) {
        int n = snprintf(line, 64, "{\"type\":\"assistant\",\"message\":{\"content\":\"");
        memset(line + n, 'x', big);
        memcpy(line + n + big, "\"}}", 4);
        memset(&got, 0, sizeof got);
        struct runner_items it2 = {0};
        claude_provider.parse_line(st, line, strlen(line), &it2, &in);
        ok(it2.n == 1 && strlen(harness_str(it2.v[0].ev, "content")) == big, "a 200 kB text line");
        runner_items_clear(&it2);
        free(line);
    }
    claude_provider.state_free(st);
    runner_buf_free(&in);
}

/* ---- control requests and the stdin protocol ------------------------------------------- */

/* Splits in into JSON lines; returns how many were parsed into v. */
static size_t lines_of(struct runner_buf *in, json_t **v, size_t max)
{
    size_t n = 0, start = 0;
    for (size_t i = 0; i < in->len && n < max; i++) {
        if (in->data[i] != '\n')
            continue;
        v[n++] = json_loadb(in->data + start, i - start, 0, NULL);
        start = i + 1;
    }
    ok(start == in->len, "answers are whole lines");
    in->len = 0;
    return n;
}

static const char *path_str(json_t *v, const char *a, const char *b, const char *c)
{
    json_t *x = json_object_get(v, a);
    if (b)
        x = json_object_get(x, b);
    if (c)
        x = json_object_get(x, c);
    return json_string_value(x);
}

static void control(void)
{
    struct runner_request req = base_req();
    struct runner_buf in = {0};
    struct harness_sum got = {0};
    json_t *v[8];
    void *st = claude_provider.state_new(&ctx, &req);

    /* start: initialize, then the user message. */
    ok(claude_provider.start(st, &in) == 0, "start");
    size_t n = lines_of(&in, v, 8);
    is_int(n, 2, "start writes two lines");
    is_str(path_str(v[0], "type", NULL, NULL), "control_request", "first: a control_request");
    is_str(path_str(v[0], "request", "subtype", NULL), "initialize", "of subtype initialize");
    ok(json_is_null(json_object_get(json_object_get(v[0], "request"), "hooks")), "hooks null");
    const char *id1 = path_str(v[0], "request_id", NULL, NULL);
    ok(id1 && strncmp(id1, "req_1_", 6) == 0, "request id req_1_<tag>");
    is_str(path_str(v[1], "type", NULL, NULL), "user", "second: the user message");
    is_str(path_str(v[1], "message", "content", NULL), "say hi", "with the prompt");
    is_str(path_str(v[1], "message", "role", NULL), "user", "role user");
    is_str(path_str(v[1], "session_id", NULL, NULL), "", "session_id empty");
    ok(json_is_null(json_object_get(v[1], "parent_tool_use_id")), "parent_tool_use_id null");
    for (size_t i = 0; i < n; i++)
        json_decref(v[i]);

    /* interrupt */
    is_int(claude_provider.interrupt(st, &in), 1, "interrupt writes a request");
    n = lines_of(&in, v, 8);
    is_int(n, 1, "one line");
    is_str(path_str(v[0], "request", "subtype", NULL), "interrupt", "subtype interrupt");
    const char *id2 = path_str(v[0], "request_id", NULL, NULL);
    ok(id2 && strncmp(id2, "req_2_", 6) == 0, "the next request id");
    json_decref(v[0]);

    /* permission answers */
    json_t *input = json_pack("{s:s}", "command", "touch x");
    ok(claude_provider.answer(st, "cli-1", true, input, NULL, &in) == 0, "allow");
    ok(claude_provider.answer(st, "cli-2", false, NULL, NULL, &in) == 0, "deny");
    ok(claude_provider.answer(st, "cli-3", false, NULL, "not now", &in) == 0, "deny with message");
    ok(claude_provider.answer(st, "cli-4", true, NULL, NULL, &in) == 0, "allow without input");
    n = lines_of(&in, v, 8);
    is_int(n, 4, "four answers");
    is_str(path_str(v[0], "type", NULL, NULL), "control_response", "a control_response");
    is_str(path_str(v[0], "response", "subtype", NULL), "success", "success");
    is_str(path_str(v[0], "response", "request_id", NULL), "cli-1", "to the CLI's id");
    json_t *body = json_object_get(json_object_get(v[0], "response"), "response");
    is_str(path_str(body, "behavior", NULL, NULL), "allow", "allow");
    ok(json_equal(json_object_get(body, "updatedInput"), input), "updatedInput is the input");
    body = json_object_get(json_object_get(v[1], "response"), "response");
    is_str(path_str(body, "behavior", NULL, NULL), "deny", "deny");
    is_str(path_str(body, "message", NULL, NULL), "User denied tool use", "default message");
    body = json_object_get(json_object_get(v[2], "response"), "response");
    is_str(path_str(body, "message", NULL, NULL), "not now", "the given message");
    body = json_object_get(json_object_get(v[3], "response"), "response");
    ok(json_is_object(json_object_get(body, "updatedInput")), "updatedInput {} without input");
    for (size_t i = 0; i < n; i++)
        json_decref(v[i]);
    json_decref(input);

    /* control requests the adapter answers itself */
    harness_feed(&h, st,
                 "{\"type\":\"control_request\",\"request_id\":\"h1\",\"request\":{\"subtype\":"
                 "\"hook_callback\",\"callback_id\":\"hook_0\",\"input\":{}}}",
                 &got, &in);
    harness_feed(&h, st,
                 "{\"type\":\"control_request\",\"request_id\":\"m1\",\"request\":{\"subtype\":"
                 "\"mcp_message\"}}",
                 &got, &in);
    harness_feed(&h, st,
                 "{\"type\":\"control_request\",\"request_id\":\"c1\",\"request\":{\"subtype\":"
                 "\"can_use_tool\"}}",
                 &got, &in);
    harness_feed(&h, st,
                 "{\"type\":\"control_request\",\"request\":{\"subtype\":\"can_use_tool\","
                 "\"tool_name\":\"Bash\"}}",
                 &got, &in);
    harness_feed(&h, st,
                 "{\"type\":\"control_request\",\"request_id\":\"c2\",\"request\":{\"subtype\":"
                 "\"can_use_tool\",\"tool_name\":\"Read\"}}",
                 &got, &in);
    HARNESS_EXPECT(&got, "control requests", "permission c2 Read {}");
    n = lines_of(&in, v, 8);
    is_int(n, 3, "three automatic answers");
    is_str(path_str(v[0], "response", "request_id", NULL), "h1", "hook answered");
    is_str(path_str(v[0], "response", "subtype", NULL), "success", "with success");
    ok(json_is_object(json_object_get(json_object_get(v[0], "response"), "response")),
       "and an empty hook output");
    is_str(path_str(v[1], "response", "request_id", NULL), "m1", "unknown request answered");
    is_str(path_str(v[1], "response", "subtype", NULL), "error", "with an error");
    ok(strstr(path_str(v[1], "response", "error", NULL), "mcp_message") != NULL,
       "naming the subtype");
    is_str(path_str(v[2], "response", "request_id", NULL), "c1", "can_use_tool without tool");
    is_str(path_str(v[2], "response", "subtype", NULL), "error", "is an error");
    for (size_t i = 0; i < n; i++)
        json_decref(v[i]);

    claude_provider.state_free(st);
    runner_buf_free(&in);
}

/* ---- argv and environment ------------------------------------------------------------ */

#define FIXED_ARGS                                                                                 \
    "--output-format stream-json --verbose --input-format stream-json --permission-prompt-tool "   \
    "stdio --include-partial-messages"

static void args(void)
{
    struct runner_request req = base_req();
    struct runner_strv sv = {0};
    char buf[1024];

    ok(claude_provider.build_argv(&req, &sv) == 0, "argv");
    harness_join(&sv, " ", buf, sizeof buf);
    is_str(buf, FIXED_ARGS, "a new session");
    ok(sv.v[sv.n] == NULL, "NULL-terminated");
    runner_strv_free(&sv);

    char *allowed[] = {"Bash(git status:*)", "Read"};
    char *disallowed[] = {"WebFetch"};
    req.model = "sonnet";
    req.permission_mode = "acceptEdits";
    req.allowed_tools = allowed;
    req.n_allowed = 2;
    req.disallowed_tools = disallowed;
    req.n_disallowed = 1;
    req.native_id = "ea1e35d7-f6e5-40a9-81ad-6b725adfa14e";
    ok(claude_provider.build_argv(&req, &sv) == 0, "argv with options");
    harness_join(&sv, " ", buf, sizeof buf);
    is_str(buf,
           FIXED_ARGS " --model=sonnet --permission-mode acceptEdits --allowedTools Bash(git "
                      "status:*),Read --disallowedTools WebFetch "
                      "--resume=ea1e35d7-f6e5-40a9-81ad-6b725adfa14e",
           "options and resume");
    runner_strv_free(&sv);

    req = base_req();
    req.skip_permissions = true;
    claude_provider.build_argv(&req, &sv);
    harness_join(&sv, " ", buf, sizeof buf);
    is_str(buf, FIXED_ARGS " --permission-mode bypassPermissions", "skipPermissions");
    runner_strv_free(&sv);
    ok(claude_provider.build_env(&req, &sv) == 0, "env");
    if (geteuid() == 0)
        ok(sv.n == 1 && strcmp(sv.v[0], "IS_SANDBOX=1") == 0, "root + bypass: IS_SANDBOX=1");
    else
        ok(sv.n == 0, "not root: nothing to add");
    runner_strv_free(&sv);

    req.permission_mode = "plan";
    claude_provider.build_argv(&req, &sv);
    harness_join(&sv, " ", buf, sizeof buf);
    is_str(buf, FIXED_ARGS " --permission-mode plan", "skipPermissions keeps plan mode");
    runner_strv_free(&sv);
    claude_provider.build_env(&req, &sv);
    is_int(sv.n, 0, "plan mode: no IS_SANDBOX");
    runner_strv_free(&sv);

    req.skip_permissions = false;
    req.permission_mode = "rm -rf";
    claude_provider.build_argv(&req, &sv);
    harness_join(&sv, " ", buf, sizeof buf);
    is_str(buf, FIXED_ARGS, "an unknown mode is left out");
    runner_strv_free(&sv);
}

/* ---- the run request ------------------------------------------------------------------ */

static void request(void)
{
    struct runner_request req;
    struct cgw_error err;
    const char *good =
        "{\"sessionId\":\"2b1f0d6e-1111-4222-8333-444455556666\",\"runId\":\"run_x\","
        "\"provider\":\"claude\",\"owner\":3,\"projectPath\":\"/p\",\"nativeId\":null,"
        "\"content\":\"hi\",\"options\":{\"model\":\"opus\",\"permissionMode\":\"plan\","
        "\"toolsSettings\":{\"allowedTools\":[\"Read\",\"Bash(ls:*)\"],\"disallowedTools\":[],"
        "\"skipPermissions\":true},\"sessionSummary\":\"x\"}}";
    is_int(runner_request_parse(good, strlen(good), &req, &err), CGW_OK, "a full request");
    is_str(req.run_id, "run_x", "runId");
    is_int(req.provider, PROVIDER_CLAUDE, "provider");
    is_int(req.owner, 3, "owner");
    is_str(req.project_path, "/p", "projectPath");
    ok(req.native_id == NULL, "nativeId null");
    is_str(req.content, "hi", "content");
    is_str(req.model, "opus", "model");
    is_str(req.permission_mode, "plan", "permissionMode");
    ok(req.skip_permissions, "skipPermissions");
    ok(req.n_allowed == 2 && strcmp(req.allowed_tools[1], "Bash(ls:*)") == 0, "allowedTools");
    is_int(req.n_disallowed, 0, "disallowedTools");
    runner_request_free(&req);

    const char *minimal =
        "{\"sessionId\":\"s\",\"runId\":\"r\",\"provider\":\"gemini\","
        "\"owner\":1,\"projectPath\":\"/p\",\"content\":\"c\",\"nativeId\":\"n\"}";
    is_int(runner_request_parse(minimal, strlen(minimal), &req, &err), CGW_OK, "no options");
    is_int(req.provider, PROVIDER_GEMINI, "gemini");
    is_str(req.native_id, "n", "nativeId");
    ok(!req.model && !req.permission_mode && !req.allowed_tools, "no options set");
    runner_request_free(&req);

    static const char *const bad[] = {
        "",
        "[]",
        "{\"runId\":\"r\",\"provider\":\"claude\",\"owner\":1,\"projectPath\":\"/p\",\"content\":"
        "\"c\"}",
        "{\"sessionId\":\"s\",\"runId\":\"r\",\"provider\":\"vim\",\"owner\":1,\"projectPath\":"
        "\"/p\",\"content\":\"c\"}",
        "{\"sessionId\":\"s\",\"runId\":\"r\",\"provider\":\"claude\",\"owner\":0,"
        "\"projectPath\":\"/p\",\"content\":\"c\"}",
        "{\"sessionId\":\"s\",\"runId\":\"r\",\"provider\":\"claude\",\"owner\":1,"
        "\"projectPath\":\"/p\",\"content\":7}",
        "{\"sessionId\":\"s\",\"runId\":\"r\",\"provider\":\"claude\",\"owner\":1,"
        "\"projectPath\":\"/p\",\"content\":\"c\",\"options\":{\"toolsSettings\":{"
        "\"allowedTools\":[1]}}}",
        "{\"sessionId\":\"s\",\"runId\":\"r\",\"provider\":\"claude\",\"owner\":1,"
        "\"projectPath\":\"/p\",\"content\":\"c\",\"options\":[]}",
        "{\"sessionId\":\"s\",\"runId\":\"r\",\"provider\":\"claude\",\"owner\":1,"
        "\"projectPath\":\"/p\",\"content\":\"c\",\"options\":{\"toolsSettings\":{"
        "\"skipPermissions\":\"yes\"}}}",
        /* An option smuggled in as the model (issue 11, item 4): send refuses it too. */
        "{\"sessionId\":\"s\",\"runId\":\"r\",\"provider\":\"gemini\",\"owner\":1,"
        "\"projectPath\":\"/p\",\"content\":\"c\",\"options\":{\"model\":\"--yolo\"}}",
        "{\"sessionId\":\"s\",\"runId\":\"r\",\"provider\":\"claude\",\"owner\":1,"
        "\"projectPath\":\"/p\",\"content\":\"c\",\"options\":{\"model\":\"a b\"}}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        enum cgw_err rc = runner_request_parse(bad[i], strlen(bad[i]), &req, &err);
        ok(rc == CGW_ERR_INVALID && err.text[0], "bad request %zu: %s", i, err.text);
        ok(req.session_id == NULL && req.allowed_tools == NULL, "bad request %zu: nothing kept", i);
    }
}

/* ---- attachments ------------------------------------------------------------------------ */

struct fake_store {
    int reads;
    const char *fail_id; /* this id is not found */
};

static enum cgw_err fake_read(void *store, const struct runner_attachment *a, unsigned char **data,
                              size_t *len, struct cgw_error *err)
{
    struct fake_store *fs = store;
    fs->reads++;
    if (fs->fail_id && strcmp(a->id, fs->fail_id) == 0)
        return cgw_error_set(err, CGW_ERR_NOT_FOUND, "attachment %s: not found", a->id);
    /* The bytes: the id's text, so each file is told apart. */
    *len = strlen(a->id);
    *data = malloc(*len ? *len : 1);
    memcpy(*data, a->id, *len);
    return CGW_OK;
}

static void file_is(const char *path, const char *want, const char *name)
{
    char buf[256] = "";
    FILE *f = fopen(path, "rb");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = '\0';
    is_str(buf, want, "%s", name);
}

static void attachments(void)
{
    const char *json =
        "{\"sessionId\":\"s\",\"runId\":\"r\",\"provider\":\"claude\",\"owner\":1,"
        "\"projectPath\":\"/p\",\"content\":\"look\",\"attachments\":["
        "{\"id\":\"att_png\",\"name\":\"../../etc/passwd\",\"mimeType\":\"image/png\",\"size\":7},"
        "{\"id\":\"att_txt\",\"name\":\"my notes.txt\",\"mimeType\":\"text/plain\",\"size\":7},"
        "{\"id\":\"att_x\"}]}";
    struct runner_request req;
    struct cgw_error err;
    struct fake_store fs = {0};
    char tmp[] = "/tmp/cgw-test-attach-XXXXXX", name[128];
    struct stat sb;

    /* The run request. */
    is_int(runner_request_parse(json, strlen(json), &req, &err), CGW_OK,
           "a request with attachments");
    is_int(req.n_attachments, 3, "three attachments");
    is_str(req.attachments[0].id, "att_png", "id");
    is_str(req.attachments[0].name, "../../etc/passwd", "name as given");
    is_str(req.attachments[0].mime_type, "image/png", "mimeType");
    is_int(req.attachments[1].size, 7, "size");
    is_str(req.attachments[2].name, "attachment", "a missing name");
    is_str(req.attachments[2].mime_type, "application/octet-stream", "a missing mimeType");
    ok(runner_attachment_is_image(&req.attachments[0]), "image/png is an image");
    ok(!runner_attachment_is_image(&req.attachments[1]), "text/plain is not");

    /* Safe file names. */
    runner_attachment_file_name(1, "../../etc/passwd", name, sizeof name);
    is_str(name, "1-.._.._etc_passwd", "no slash survives");
    runner_attachment_file_name(2, "..", name, sizeof name);
    is_str(name, "2-attachment", "dots only");
    runner_attachment_file_name(3, "", name, sizeof name);
    is_str(name, "3-attachment", "empty");
    runner_attachment_file_name(4, "Ünïcode shot.PNG", name, sizeof name);
    is_str(name, "4-__n__code_shot.PNG", "other bytes become _");

    /* Written to a private directory, read back, removed. */
    if (!mkdtemp(tmp)) {
        ok(0, "mkdtemp");
        runner_request_free(&req);
        return;
    }
    is_int(runner_attachments_write(&req, &claude_provider, tmp, fake_read, &fs, &err), CGW_OK,
           "written");
    is_int(fs.reads, 3, "each read once");
    ok(req.attach_dir && strncmp(req.attach_dir, tmp, strlen(tmp)) == 0,
       "the directory is in TMPDIR");
    ok(stat(req.attach_dir, &sb) == 0 && (sb.st_mode & 0777) == 0700, "the directory is 0700");
    snprintf(name, sizeof name, "%s/1-.._.._etc_passwd", req.attach_dir);
    is_str(req.attachments[0].path, name, "the image's path");
    ok(stat(name, &sb) == 0 && (sb.st_mode & 0777) == 0600, "the file is 0600");
    file_is(req.attachments[0].path, "att_png", "its bytes");
    snprintf(name, sizeof name, "%s/2-my_notes.txt", req.attach_dir);
    is_str(req.attachments[1].path, name, "the text file's path");
    file_is(req.attachments[1].path, "att_txt", "its bytes");
    is_int(req.attachments[2].size, 5, "the size is the store's");

    /* The user message: the image as a base64 block, then the prompt naming the rest. */
    struct runner_buf in = {0};
    json_t *v[4];
    void *st = claude_provider.state_new(&ctx, &req);
    ok(claude_provider.start(st, &in) == 0, "start");
    size_t n = lines_of(&in, v, 4);
    is_int(n, 2, "two lines");
    json_t *content = json_object_get(json_object_get(v[1], "message"), "content");
    ok(json_is_array(content) && json_array_size(content) == 2, "content: two blocks");
    json_t *img = json_array_get(content, 0), *txt = json_array_get(content, 1);
    is_str(path_str(img, "type", NULL, NULL), "image", "an image block");
    is_str(path_str(img, "source", "type", NULL), "base64", "base64 source");
    is_str(path_str(img, "source", "media_type", NULL), "image/png", "media_type");
    is_str(path_str(img, "source", "data", NULL), "YXR0X3BuZw==", "data: base64 of the bytes");
    is_str(path_str(txt, "type", NULL, NULL), "text", "then a text block");
    char want[512];
    snprintf(want, sizeof want,
             "look\n\nAttached files (read them from these paths):\n- %s/2-my_notes.txt "
             "(text/plain, 7 bytes, named \"my notes.txt\")\n- %s/3-attachment "
             "(application/octet-stream, 5 bytes, named \"attachment\")",
             req.attach_dir, req.attach_dir);
    is_str(path_str(txt, "text", NULL, NULL), want, "the prompt lists the other files");
    for (size_t i = 0; i < n; i++)
        json_decref(v[i]);
    claude_provider.state_free(st);
    runner_buf_free(&in);

    /* --add-dir for the files the agent reads. */
    struct runner_strv sv = {0};
    char buf[1024];
    ok(claude_provider.build_argv(&req, &sv) == 0, "argv");
    snprintf(want, sizeof want, FIXED_ARGS " --add-dir=%s", req.attach_dir);
    harness_join(&sv, " ", buf, sizeof buf);
    is_str(buf, want, "--add-dir=<the attachment directory>");
    runner_strv_free(&sv);

    char *dir = strdup(req.attach_dir);
    runner_attachments_remove(&req);
    ok(req.attach_dir == NULL && req.attachments[0].path == NULL, "forgotten");
    ok(access(dir, F_OK) < 0, "the directory is gone");
    free(dir);

    /* A failed read leaves nothing behind. */
    fs.fail_id = "att_txt";
    is_int(runner_attachments_write(&req, &claude_provider, tmp, fake_read, &fs, &err),
           CGW_ERR_NOT_FOUND, "a missing attachment fails the run");
    ok(strstr(err.text, "att_txt") != NULL, "naming it: %s", err.text);
    ok(req.attach_dir == NULL && rmdir(tmp) == 0, "nothing left on disk");
    runner_request_free(&req);

    /* Images only: no --add-dir. */
    struct runner_request r2 = base_req();
    harness_attachments(&r2);
    r2.n_attachments = 1;
    ok(claude_provider.build_argv(&r2, &sv) == 0, "argv, images only");
    harness_join(&sv, " ", buf, sizeof buf);
    is_str(buf, FIXED_ARGS, "no --add-dir");
    runner_strv_free(&sv);

    static const char *const bad[] = {
        "\"attachments\":{}",
        "\"attachments\":[1]",
        "\"attachments\":[{\"name\":\"x\"}]",
        "\"attachments\":[{\"id\":\"\"}]",
        "\"attachments\":[{\"id\":\"a\",\"size\":-1}]",
        "\"attachments\":[{\"id\":\"a\",\"size\":\"7\"}]",
        "\"attachments\":[{\"id\":\"a\",\"mimeType\":7}]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[512];
        snprintf(text, sizeof text,
                 "{\"sessionId\":\"s\",\"runId\":\"r\",\"provider\":\"claude\",\"owner\":1,"
                 "\"projectPath\":\"/p\",\"content\":\"c\",%s}",
                 bad[i]);
        ok(runner_request_parse(text, strlen(text), &req, &err) == CGW_ERR_INVALID &&
               strstr(err.text, "attachments"),
           "bad attachments %zu: %s", i, err.text);
        ok(req.attachments == NULL, "bad attachments %zu: nothing kept", i);
    }
    struct runner_buf many = {0};
    const char *head = "{\"sessionId\":\"s\",\"runId\":\"r\",\"provider\":\"claude\",\"owner\":1,"
                       "\"projectPath\":\"/p\",\"content\":\"c\",\"attachments\":[";
    runner_buf_append(&many, head, strlen(head));
    for (int i = 0; i <= RUNNER_MAX_ATTACHMENTS; i++)
        runner_buf_append(&many, i ? ",{\"id\":\"a\"}" : "{\"id\":\"a\"}", i ? 11 : 10);
    runner_buf_append(&many, "]}", 2);
    ok(runner_request_parse(many.data, many.len, &req, &err) == CGW_ERR_INVALID,
       "more than %d attachments: %s", RUNNER_MAX_ATTACHMENTS, err.text);
    runner_buf_free(&many);
}

int main(void)
{
    plan_lazy();
    transcripts();
    other_lines();
    control();
    args();
    request();
    attachments();
    return done_testing();
}
