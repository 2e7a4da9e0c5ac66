/* test_cursor.c: the Cursor adapter against the transcripts of tests/fixtures/cursor/ (built
 * from the documented format, not captured), odd lines, argv and the provider table entry. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "adapter_harness.h"
#include "runner/attach.h"
#include "runner/provider.h"
#include "tap.h"

#define SID "6f1c2a9e-3b4d-4e5f-8a7b-1c2d3e4f5a6b"

static const struct event_ctx ctx = {"2b1f0d6e-1111-4222-8333-444455556666", "run_t", "cursor"};
static const struct harness h = {&cursor_provider, &ctx, "cursor", NULL};

static struct runner_request base_req(void)
{
    struct runner_request req = {0};
    req.session_id = "2b1f0d6e-1111-4222-8333-444455556666";
    req.run_id = "run_t";
    req.provider = PROVIDER_CURSOR;
    req.project_path = "/srv/ws/cursor";
    req.content = "say hi";
    req.owner = 1;
    return req;
}

static void transcripts(void)
{
    struct runner_request req = base_req();
    struct runner_buf in = {0};
    struct harness_sum got;

    harness_transcript(&h, &req, "text.jsonl", &got, &in);
    HARNESS_EXPECT(&got, "text", "native_id " SID, "text assistant: Hello from the fake model.",
                   "result ok");

    harness_transcript(&h, &req, "resume.jsonl", &got, &in);
    HARNESS_EXPECT(&got, "resume", "native_id " SID,
                   "text assistant: Hello again; this chat has two turns.", "result ok");

    harness_transcript(&h, &req, "tool_force.jsonl", &got, &in);
    HARNESS_EXPECT(
        &got, "tool_force", "native_id " SID, "text assistant: I'll read the README first.",
        "tool_use call_read_1 Read {\"path\":\"README.md\"}",
        "tool_result call_read_1 ok: # demo\n",
        "tool_use call_write_1 Write {\"path\":\"/srv/ws/cursor/fake_tool_ran.txt\",\"fileText\":"
        "\"ran\\n\"}",
        "tool_result call_write_1 ok: {\"path\":\"/srv/ws/cursor/fake_tool_ran.txt\","
        "\"linesCreated\":1,\"fileSize\":4}",
        "tool_use call_shell_1 Bash {\"command\":\"ls\"}",
        "tool_result call_shell_1 ok: README.md\nfake_tool_ran.txt\n",
        "text assistant: Created fake_tool_ran.txt.", "result ok");

    harness_transcript(&h, &req, "tool_rejected.jsonl", &got, &in);
    HARNESS_EXPECT(
        &got, "tool_rejected", "native_id " SID,
        "tool_use call_write_2 Write {\"path\":\"fake_tool_ran.txt\",\"fileText\":\"ran\\n\"}",
        "tool_result call_write_2 error: Approval required: run with --force",
        "tool_use call_shell_2 Bash {\"command\":\"false\"}",
        "tool_result call_shell_2 error: ", "tool_use call_grep_2 Grep {\"pattern\":\"TODO\"}",
        "tool_result call_grep_2 error: ripgrep failed",
        "text assistant: I could not write the file without approval.", "result ok");

    harness_transcript(&h, &req, "function.jsonl", &got, &in);
    HARNESS_EXPECT(
        &got, "function", "native_id " SID, "tool_use call_fn_1 web_search {\"query\":\"jansson\"}",
        "tool_result call_fn_1 ok: 3 results",
        "tool_use call_fn_2 function {\"arguments\":\"not json\"}", "tool_result call_fn_2 ok: ",
        "tool_use call_mcp_1 Mcp {\"server\":\"docs\",\"toolName\":\"lookup\"}",
        "tool_result call_mcp_1 ok: {\"content\":[{\"text\":\"found\"}]}",
        "text assistant: Searched.", "result ok");

    /* Deltas and their model_call_id duplicate are dropped: the text comes once. */
    harness_transcript(&h, &req, "partial_output.jsonl", &got, &in);
    HARNESS_EXPECT(&got, "partial_output", "native_id " SID, "text assistant: Hello", "result ok");

    harness_transcript(&h, &req, "error_result.jsonl", &got, &in);
    HARNESS_EXPECT(&got, "error_result", "native_id " SID,
                   "result error: cursor: the turn failed: Model not available: fake error for "
                   "testing");

    /* The CLI died mid-line: the tail flushed at EOF is unreadable, and there is no result
     * (the supervisor reports the exit). */
    harness_transcript(&h, &req, "crash_partial.jsonl", &got, &in);
    HARNESS_EXPECT(&got, "crash_partial", "native_id " SID, "text assistant: Working on it.",
                   "error: cursor: unreadable output line (invalid JSON): "
                   "{\"type\":\"assistant\",\"message\":{\"role\":\"assis");

    is_int(in.len, 0, "cursor never writes to stdin");
    runner_buf_free(&in);
}

static void other_lines(void)
{
    struct runner_request req = base_req();
    struct runner_buf in = {0};
    struct harness_sum got = {0};
    void *st = cursor_provider.state_new(&ctx, &req);

    harness_feed(&h, st, "this is not json", &got, &in);
    harness_feed(&h, st, "[1,2,3]", &got, &in);
    harness_feed(&h, st, "{}", &got, &in);
    harness_feed(&h, st, "{\"type\":42}", &got, &in);
    harness_feed(&h, st, "\xff\xfe not utf-8", &got, &in);
    harness_feed(&h, st, "{\"type\":\"hologram\"}", &got, &in);
    harness_feed(&h, st, "{\"type\":\"system\",\"subtype\":\"status\"}", &got, &in);
    harness_feed(&h, st, "{\"type\":\"system\",\"subtype\":\"init\"}", &got, &in);
    harness_feed(&h, st, "{\"type\":\"system\",\"subtype\":\"init\",\"session_id\":\"\"}", &got,
                 &in);
    harness_feed(&h, st, "{\"type\":\"user\",\"message\":{\"content\":\"hi\"}}", &got, &in);
    harness_feed(&h, st, "{\"type\":\"tool_call\"}", &got, &in);
    harness_feed(&h, st, "{\"type\":\"tool_call\",\"subtype\":\"started\",\"tool_call\":{}}", &got,
                 &in);
    harness_feed(&h, st, "{\"type\":\"tool_call\",\"subtype\":\"started\",\"tool_call\":{\"x\":1}}",
                 &got, &in);
    harness_feed(&h, st,
                 "{\"type\":\"tool_call\",\"subtype\":\"updated\",\"call_id\":\"c\","
                 "\"tool_call\":{\"readToolCall\":{}}}",
                 &got, &in);
    /* No call_id, args not an object, a key without the ToolCall suffix. */
    harness_feed(&h, st,
                 "{\"type\":\"tool_call\",\"subtype\":\"started\",\"tool_call\":{\"lsToolCall\":{"
                 "\"args\":[\"/\"]}}}",
                 &got, &in);
    harness_feed(&h, st,
                 "{\"type\":\"tool_call\",\"subtype\":\"started\",\"call_id\":\"c2\","
                 "\"tool_call\":{\"semanticSearch\":{\"args\":{\"query\":\"q\"}}}}",
                 &got, &in);
    /* A result with two keys: its JSON, not an error. A string result. */
    harness_feed(&h, st,
                 "{\"type\":\"tool_call\",\"subtype\":\"completed\",\"call_id\":\"c2\","
                 "\"tool_call\":{\"semanticSearch\":{\"result\":{\"a\":1,\"b\":2}}}}",
                 &got, &in);
    harness_feed(&h, st,
                 "{\"type\":\"tool_call\",\"subtype\":\"completed\",\"call_id\":\"c3\","
                 "\"tool_call\":{\"shellToolCall\":{\"result\":{\"failure\":\"killed\"}}}}",
                 &got, &in);
    harness_feed(&h, st, "{\"type\":\"assistant\"}", &got, &in);
    harness_feed(&h, st, "{\"type\":\"assistant\",\"message\":{\"content\":\"plain\"}}", &got, &in);
    harness_feed(&h, st,
                 "{\"type\":\"assistant\",\"message\":{\"content\":[{\"type\":\"text\",\"text\":"
                 "\"a\"},{\"type\":\"image\",\"text\":\"no\"},{\"text\":\"b\"},{\"type\":"
                 "\"text\"}]}}",
                 &got, &in);
    harness_feed(&h, st,
                 "{\"type\":\"assistant\",\"message\":{\"content\":[{\"type\":\"text\","
                 "\"text\":\"\"}]}}",
                 &got, &in);
    harness_feed(&h, st, "{\"type\":\"result\",\"subtype\":\"success\",\"is_error\":true}", &got,
                 &in);
    harness_feed(&h, st, "{\"type\":\"result\",\"subtype\":\"error\",\"result\":\"\"}", &got, &in);
    harness_feed(&h, st, "{\"type\":\"result\"}", &got, &in);
    HARNESS_EXPECT(
        &got, "other lines",
        "error: cursor: unreadable output line (invalid JSON): this is not json",
        "error: cursor: unreadable output line (no type): [1,2,3]",
        "error: cursor: unreadable output line (no type): {}",
        "error: cursor: unreadable output line (no type): {\"type\":42}",
        "error: cursor: unreadable output line (invalid JSON): ?? not utf-8",
        "tool_use  LS {\"arguments\":[\"/\"]}", "tool_use c2 SemanticSearch {\"query\":\"q\"}",
        "tool_result c2 ok: {\"a\":1,\"b\":2}", "tool_result c3 error: killed",
        "text assistant: plain", "text assistant: ab", "result error: cursor: the turn failed",
        "result error: cursor: the turn failed", "result ok");

    /* A very long line is fine for the adapter (the runner caps lines). */
    size_t big = 200000;
    char *line = malloc(big + 128);
    if (line) {
        int n = snprintf(line, 128,
                         "{\"type\":\"assistant\",\"message\":{\"content\":[{\"type\":\"text\","
                         "\"text\":\"");
        memset(line + n, 'x', big);
        memcpy(line + n + big, "\"}]}}", 6);
        struct runner_items it = {0};
        cursor_provider.parse_line(st, line, strlen(line), &it, &in);
        ok(it.n == 1 && strlen(harness_str(it.v[0].ev, "content")) == big, "a 200 kB text line");
        runner_items_clear(&it);
        free(line);
    }
    is_int(in.len, 0, "no stdin for these lines");
    cursor_provider.state_free(st);
    runner_buf_free(&in);
}

#define FIXED "--output-format | stream-json | --trust"

static void args(void)
{
    struct runner_request req = base_req();
    static const char *const modes[][2] = {
        {NULL, ""},
        {"default", ""},
        {"acceptEdits", " | -f"},
        {"bypassPermissions", " | -f"},
        {"plan", " | --mode | plan"},
        {"rm -rf", ""},
    };

    harness_argv_is(&cursor_provider, &req, FIXED " | -p | say hi",
                    "a new chat: the prompt last, after -p");

    req.model = "gpt-5";
    req.native_id = SID;
    req.content = "-rf go on";
    harness_argv_is(&cursor_provider, &req,
                    FIXED " | --model=gpt-5 | --resume=" SID " | -p | -- | -rf go on",
                    "resume: --resume=ID in one word, -- before a prompt starting with '-'");

    req = base_req();
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        char want[256];
        req.permission_mode = (char *)modes[i][0];
        snprintf(want, sizeof want, FIXED "%s | -p | say hi", modes[i][1]);
        harness_argv_is(&cursor_provider, &req, want, "permissionMode %s",
                        modes[i][0] ? modes[i][0] : "(none)");
    }
    req.skip_permissions = true;
    req.permission_mode = NULL;
    harness_argv_is(&cursor_provider, &req, FIXED " | -f | -p | say hi", "skipPermissions forces");
    req.permission_mode = "plan";
    harness_argv_is(&cursor_provider, &req, FIXED " | --mode | plan | -p | say hi",
                    "skipPermissions keeps plan read-only");

    ok(runner_provider_for(PROVIDER_CURSOR) == &cursor_provider, "the table has cursor");
    is_str(cursor_provider.name, "cursor", "name");
    ok(!cursor_provider.stdin_protocol, "stdin is /dev/null");
    ok(cursor_provider.needs_result, "result ends the turn");
    ok(!cursor_provider.interrupt, "abort by signals");
    ok(!cursor_provider.build_env, "no environment additions");
}

static enum cgw_err never_read(void *counter, const struct runner_attachment *a,
                               unsigned char **data, size_t *len, struct cgw_error *err)
{
    (void)a, (void)data, (void)len, (void)err;
    *(int *)counter += 1;
    return CGW_ERR_IO;
}

/* cursor-agent cannot take files: a run with attachments is refused before anything is
 * read or written, with an error that says so. */
static void attachments(void)
{
    struct runner_request req = base_req();
    struct runner_attachment a = {"att_1", "shot.png", "image/png", 4, NULL, NULL, 0};
    struct cgw_error err;
    char tmp[] = "/tmp/cgw-test-cursor-XXXXXX";
    int reads = 0;

    ok(!cursor_provider.attachments, "cursor takes no attachments");
    if (!mkdtemp(tmp)) {
        ok(0, "mkdtemp");
        return;
    }
    req.attachments = &a;
    req.n_attachments = 1;
    is_int(runner_attachments_write(&req, &cursor_provider, tmp, never_read, &reads, &err),
           CGW_ERR_INVALID, "refused");
    ok(strstr(err.text, "cursor cannot take attachments") != NULL, "the error says why: %s",
       err.text);
    is_int(reads, 0, "nothing read");
    ok(req.attach_dir == NULL && a.path == NULL, "nothing written");
    ok(rmdir(tmp) == 0, "the temporary directory stayed empty");
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
