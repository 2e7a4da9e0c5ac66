/* test_codex.c: the Codex adapter against the recorded transcripts (tests/fixtures/codex/),
 * plus other item types, garbage and partial lines, argv and the provider table entry. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapter_harness.h"
#include "runner/provider.h"
#include "tap.h"

static const struct event_ctx ctx = {"2b1f0d6e-1111-4222-8333-444455556666", "run_t", "codex"};

static struct runner_request base_req(void)
{
    struct runner_request req = {0};
    req.session_id = "2b1f0d6e-1111-4222-8333-444455556666";
    req.run_id = "run_t";
    req.provider = PROVIDER_CODEX;
    req.project_path = "/srv/ws/codex";
    req.content = "say hi";
    req.owner = 1;
    return req;
}

/* A command's tool_use also shows its output, exit code and status. */
static void codex_event_line(const json_t *ev, char *line, size_t size)
{
    char a[128], b[128], c[128];
    harness_event_line(ev, line, size);
    if (strcmp(harness_str(ev, "kind"), "tool_use") == 0 && json_object_get(ev, "status")) {
        size_t n = strlen(line);
        snprintf(line + n, size - n, " output=%s exitCode=%s status=%s",
                 harness_json(ev, "output", a, sizeof a), harness_json(ev, "exitCode", b, sizeof b),
                 harness_json(ev, "status", c, sizeof c));
    }
}

static const struct harness h = {&codex_provider, &ctx, "codex", codex_event_line};

static void transcript(const char *file, struct harness_sum *got, struct runner_buf *in)
{
    struct runner_request req = base_req();
    harness_transcript(&h, &req, file, got, in);
}

#define METADATA                                                                                   \
    "error: Model metadata for `gpt-5.1-codex` not found. Defaulting to fallback metadata; this "  \
    "can degrade performance and cause issues."
#define TB_12_7 "status token_budget used=19 in=12 out=7 cached=0 total=-"
#define TB_24_14 "status token_budget used=38 in=24 out=14 cached=0 total=-"
#define TOUCH "{\"command\":\"/bin/bash -lc 'touch fake_tool_ran.txt'\"}"
#define TOOL_ITEMS(id)                                                                             \
    "tool_use item_1 Bash " TOUCH " output=\"\" exitCode=0 status=\"completed\"",                  \
        "tool_result item_1 ok: ", "text assistant: Tool finished; done."

static void transcripts(void)
{
    struct runner_buf in = {0};
    struct harness_sum got;

    transcript("text.jsonl", &got, &in);
    HARNESS_EXPECT(&got, "text", "native_id 01a2143d-465b-7520-ab2c-eeed8185d8ca", METADATA,
                   "text assistant: Hello from the fake model.", TB_12_7, "result ok");

    transcript("text_known_model_slug.jsonl", &got, &in);
    HARNESS_EXPECT(&got, "text_known_model_slug", "native_id 01a21447-92ac-7e51-a822-dac171740d67",
                   "text assistant: Hello from the fake model.", TB_12_7, "result ok");

    transcript("resume.jsonl", &got, &in);
    HARNESS_EXPECT(&got, "resume", "native_id 01a2143d-465b-7520-ab2c-eeed8185d8ca", METADATA,
                   "text assistant: Hello from the fake model.", TB_24_14, "result ok");

    transcript("resume_sdk_style_tool.jsonl", &got, &in);
    HARNESS_EXPECT(&got, "resume_sdk_style_tool", "native_id 01a21446-e925-7b51-a0f7-96687ae49eab",
                   METADATA, TOOL_ITEMS(1),
                   "status token_budget used=57 in=36 out=21 cached=0 total=-", "result ok");

    static const char *const tools[][2] = {
        {"tool_bypass.jsonl", "01a2143d-8ec3-73f2-95db-d1ce874d3df5"},
        {"tool_never_fullaccess.jsonl", "01a2143d-77c4-7720-b932-6c4a28f5f80e"},
        {"tool_never_ww.jsonl", "01a2143e-1b5c-7db0-98dc-71e4e29f13cc"},
        {"tool_onrequest_ww.jsonl", "01a2143e-0363-7ea2-84a3-74074f486473"},
    };
    for (size_t i = 0; i < sizeof tools / sizeof tools[0]; i++) {
        char id[128];
        snprintf(id, sizeof id, "native_id %s", tools[i][1]);
        transcript(tools[i][0], &got, &in);
        const char *want[] = {id, METADATA, TOOL_ITEMS(1), TB_24_14, "result ok"};
        harness_expect(&got, want, sizeof want / sizeof want[0], tools[i][0]);
    }

    /* The sandbox refused the command: no command_execution item at all. */
    static const char *const refused[][2] = {
        {"escalate_never_ro.jsonl", "01a2143e-c5c8-7f42-a674-c9a6038601ce"},
        {"escalate_onrequest_ro.jsonl", "01a2143e-9633-7d21-9ef2-ddfeb957644a"},
        {"tool_onrequest.jsonl", "01a2143d-a5bc-71d0-a528-b80287757425"},
        {"tool_onrequest_ro.jsonl", "01a2143d-ebcc-7891-a472-15110fa2894b"},
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        char id[128];
        snprintf(id, sizeof id, "native_id %s", refused[i][1]);
        transcript(refused[i][0], &got, &in);
        const char *want[] = {id, METADATA, "text assistant: Tool finished; done.", TB_24_14,
                              "result ok"};
        harness_expect(&got, want, sizeof want / sizeof want[0], refused[i][0]);
    }

    /* Killed: stdout ends after turn.started, no result (the supervisor reports it). */
    transcript("abort_sigINT.jsonl", &got, &in);
    HARNESS_EXPECT(&got, "abort_sigINT", "native_id 01a2143e-de01-7d53-b938-c789b5762225",
                   METADATA);
    transcript("abort_sigTERM.jsonl", &got, &in);
    HARNESS_EXPECT(&got, "abort_sigTERM", "native_id 01a2143e-f732-72e1-a4bb-f7d9445fbcd0",
                   METADATA);

    /* The top-level error line is dropped; turn.failed carries the message. */
    transcript("api_error_400.jsonl", &got, &in);
    HARNESS_EXPECT(&got, "api_error_400", "native_id 01a2143f-a9f3-7912-b29d-b27ad595740f",
                   METADATA, "result error: codex: the turn failed: fake error for testing");

    /* Reconnect notices are dropped; the transport fallback item is an error event. */
    transcript("openai_base_url_websocket_fallback.jsonl", &got, &in);
    HARNESS_EXPECT(
        &got, "websocket_fallback", "native_id 01a2143f-4237-7513-a969-88bc016fd020", METADATA,
        "error: Falling back from WebSockets to HTTPS transport. unexpected status 404 Not "
        "Found: Unknown error, url: ws://127.0.0.1:37977/v1/responses",
        "text assistant: Hello from the fake model.", TB_12_7, "result ok");

    is_int(in.len, 0, "codex never writes to stdin");
    runner_buf_free(&in);
}

/* ---- lines the transcripts do not have --------------------------------------------------- */

static void other_lines(void)
{
    struct runner_request req = base_req();
    struct runner_buf in = {0};
    struct harness_sum got = {0};
    void *st = codex_provider.state_new(&ctx, &req);

    harness_feed(&h, st, "this is not json", &got, &in);
    harness_feed(&h, st, "[1,2,3]", &got, &in);
    harness_feed(&h, st, "{}", &got, &in);
    harness_feed(&h, st, "{\"type\":42}", &got, &in);
    harness_feed(&h, st, "\xff\xfe not utf-8", &got, &in);
    /* A partial line: the tail of stdout flushed at EOF, cut inside an object. */
    harness_feed(&h, st,
                 "{\"type\":\"item.completed\",\"item\":{\"id\":\"item_3\",\"type\":\"agent_m",
                 &got, &in);
    harness_feed(&h, st, "{\"type\":\"brand.new\"}", &got, &in);
    harness_feed(&h, st, "{\"type\":\"turn.started\"}", &got, &in);
    harness_feed(&h, st, "{\"type\":\"thread.started\"}", &got, &in);
    harness_feed(&h, st, "{\"type\":\"error\",\"message\":\"Reconnecting... 1/5\"}", &got, &in);
    harness_feed(
        &h, st,
        "{\"type\":\"item.started\",\"item\":{\"id\":\"item_1\",\"type\":\"command_execution\","
        "\"command\":\"ls\",\"status\":\"in_progress\"}}",
        &got, &in);
    harness_feed(&h, st,
                 "{\"type\":\"item.updated\",\"item\":{\"id\":\"i\",\"type\":\"todo_list\"}}", &got,
                 &in);
    harness_feed(&h, st, "{\"type\":\"item.completed\"}", &got, &in);
    harness_feed(&h, st,
                 "{\"type\":\"item.completed\",\"item\":{\"id\":\"i\",\"type\":\"hologram\"}}",
                 &got, &in);
    harness_feed(&h, st,
                 "{\"type\":\"item.completed\",\"item\":{\"id\":\"item_2\",\"type\":\"reasoning\","
                 "\"text\":\"**Thinking** about it\"}}",
                 &got, &in);
    harness_feed(
        &h, st,
        "{\"type\":\"item.completed\",\"item\":{\"id\":\"item_3\",\"type\":\"command_execution\","
        "\"command\":\"false\",\"aggregated_output\":\"boom\\n\",\"exit_code\":1,\"status\":"
        "\"failed\"}}",
        &got, &in);
    harness_feed(
        &h, st,
        "{\"type\":\"item.completed\",\"item\":{\"id\":\"item_4\",\"type\":\"file_change\","
        "\"changes\":[{\"path\":\"a.txt\",\"kind\":\"add\"},{\"path\":\"b.c\",\"kind\":"
        "\"update\"}],\"status\":\"completed\"}}",
        &got, &in);
    harness_feed(
        &h, st,
        "{\"type\":\"item.completed\",\"item\":{\"id\":\"item_5\",\"type\":\"mcp_tool_call\","
        "\"server\":\"docs\",\"tool\":\"search\",\"arguments\":{\"q\":\"x\"},\"result\":{"
        "\"content\":[]},\"status\":\"completed\"}}",
        &got, &in);
    harness_feed(
        &h, st,
        "{\"type\":\"item.completed\",\"item\":{\"id\":\"item_6\",\"type\":\"mcp_tool_call\","
        "\"server\":\"docs\",\"tool\":\"search\",\"arguments\":null,\"error\":{\"message\":"
        "\"no such server\"},\"status\":\"failed\"}}",
        &got, &in);
    harness_feed(&h, st,
                 "{\"type\":\"item.completed\",\"item\":{\"id\":\"item_7\",\"type\":\"web_search\","
                 "\"query\":\"jansson\"}}",
                 &got, &in);
    harness_feed(&h, st,
                 "{\"type\":\"item.completed\",\"item\":{\"id\":\"item_8\",\"type\":\"todo_list\","
                 "\"items\":[{\"text\":\"a\",\"completed\":false}]}}",
                 &got, &in);
    harness_feed(
        &h, st, "{\"type\":\"item.completed\",\"item\":{\"type\":\"agent_message\",\"text\":\"\"}}",
        &got, &in);
    harness_feed(&h, st, "{\"type\":\"turn.completed\"}", &got, &in);
    harness_feed(&h, st,
                 "{\"type\":\"turn.failed\",\"error\":{\"message\":\"stream disconnected\"}}", &got,
                 &in);
    harness_feed(&h, st, "{\"type\":\"turn.failed\"}", &got, &in);
    HARNESS_EXPECT(
        &got, "other lines",
        "error: codex: unreadable output line (invalid JSON): this is not json",
        "error: codex: unreadable output line (no type): [1,2,3]",
        "error: codex: unreadable output line (no type): {}",
        "error: codex: unreadable output line (no type): {\"type\":42}",
        "error: codex: unreadable output line (invalid JSON): ?? not utf-8",
        "error: codex: unreadable output line (invalid JSON): "
        "{\"type\":\"item.completed\",\"item\":{\"id\":\"item_3\",\"type\":\"agent_m",
        "thinking: **Thinking** about it",
        "tool_use item_3 Bash {\"command\":\"false\"} output=\"boom\\n\" exitCode=1 "
        "status=\"failed\"",
        "tool_result item_3 error: boom\n",
        "tool_use item_4 FileChanges [{\"path\":\"a.txt\",\"kind\":\"add\"},{\"path\":\"b.c\","
        "\"kind\":\"update\"}] output=- exitCode=- status=\"completed\"",
        "tool_result item_4 ok: add a.txt\nupdate b.c",
        "tool_use item_5 search {\"q\":\"x\"} output=- exitCode=- status=\"completed\"",
        "tool_result item_5 ok: {\"content\":[]}",
        "tool_use item_6 search {} output=- exitCode=- status=\"failed\"",
        "tool_result item_6 error: no such server",
        "tool_use item_7 WebSearch {\"query\":"
        "\"jansson\"}",
        "tool_use item_8 TodoList {\"items\":[{\"text\":\"a\",\"completed\":false}]}", "result ok",
        "result error: stream disconnected", "result error: codex: the turn failed");
    is_int(in.len, 0, "no stdin for these lines");

    /* mcp_tool_call extras ride on the tool_use. */
    struct runner_items it = {0};
    const char *mcp = "{\"type\":\"item.completed\",\"item\":{\"id\":\"m\",\"type\":"
                      "\"mcp_tool_call\",\"server\":\"docs\",\"tool\":\"t\",\"arguments\":{}}}";
    codex_provider.parse_line(st, mcp, strlen(mcp), &it, &in);
    ok(it.n == 2 && strcmp(harness_str(it.v[0].ev, "server"), "docs") == 0,
       "mcp: server on the tool_use");
    runner_items_clear(&it);

    /* A very long line is fine for the adapter (the runner caps lines). */
    size_t big = 200000;
    char *line = malloc(big + 128);
    if (line) {
        int n = snprintf(line, 128,
                         "{\"type\":\"item.completed\",\"item\":{\"type\":\"agent_message\","
                         "\"text\":\"");
        memset(line + n, 'x', big);
        memcpy(line + n + big, "\"}}", 4);
        struct runner_items it2 = {0};
        codex_provider.parse_line(st, line, strlen(line), &it2, &in);
        ok(it2.n == 1 && strlen(harness_str(it2.v[0].ev, "content")) == big, "a 200 kB text line");
        runner_items_clear(&it2);
        free(line);
    }
    codex_provider.state_free(st);
    runner_buf_free(&in);
}

/* ---- argv and the adapter's shape ----------------------------------------------------- */

#define FIXED "exec | --json | --skip-git-repo-check | --config | approval_policy=\"never\""

static void args(void)
{
    struct runner_request req = base_req();
    static const char *const modes[][2] = {
        {NULL, "read-only"},
        {"default", "read-only"},
        {"plan", "read-only"},
        {"acceptEdits", "workspace-write"},
        {"bypassPermissions", "danger-full-access"},
        {"rm -rf", "read-only"},
    };

    harness_argv_is(&codex_provider, &req, FIXED " | --sandbox | read-only | say hi",
                    "a new thread");

    req.model = "gpt-5.1-codex";
    req.native_id = "01a2143d-465b-7520-ab2c-eeed8185d8ca";
    req.content = "-rf go on";
    harness_argv_is(&codex_provider, &req,
                    FIXED " | --model=gpt-5.1-codex | --sandbox | read-only | resume | "
                          "01a2143d-465b-7520-ab2c-eeed8185d8ca | -- | -rf go on",
                    "resume: options first, then resume ID, then the prompt after --");

    req = base_req();
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        char want[256];
        req.permission_mode = (char *)modes[i][0];
        snprintf(want, sizeof want, FIXED " | --sandbox | %s | say hi", modes[i][1]);
        harness_argv_is(&codex_provider, &req, want, "permissionMode %s",
                        modes[i][0] ? modes[i][0] : "(none)");
    }
    req.skip_permissions = true;
    req.permission_mode = NULL;
    harness_argv_is(&codex_provider, &req, FIXED " | --sandbox | danger-full-access | say hi",
                    "skipPermissions");
    req.permission_mode = "plan";
    harness_argv_is(&codex_provider, &req, FIXED " | --sandbox | read-only | say hi",
                    "skipPermissions keeps plan read-only");

    ok(runner_provider_for(PROVIDER_CODEX) == &codex_provider, "the table has codex");
    is_str(codex_provider.name, "codex", "name");
    ok(!codex_provider.stdin_protocol, "stdin is /dev/null");
    ok(codex_provider.needs_result, "turn.completed/turn.failed end the turn");
    ok(!codex_provider.interrupt, "abort by signals");
}

/* Images with --image=FILE (after `resume` when resuming), other files named in the
 * prompt, which always follows `--`. */
static void attachments(void)
{
    struct runner_request req = base_req();

    harness_attachments(&req);
    harness_argv_is(
        &codex_provider, &req,
        FIXED " | --sandbox | read-only | --image=/tmp/att/1-shot.png | -- | " HARNESS_NOTES_PROMPT,
        "attachments: --image=FILE, the text file in the prompt");
    req.native_id = "01a2143d-465b-7520-ab2c-eeed8185d8ca";
    harness_argv_is(&codex_provider, &req,
                    FIXED
                    " | --sandbox | read-only | resume | 01a2143d-465b-7520-ab2c-eeed8185d8ca "
                    "| --image=/tmp/att/1-shot.png | -- | " HARNESS_NOTES_PROMPT,
                    "attachments on resume: resume's --image");
    ok(codex_provider.attachments, "codex takes attachments");
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
