/* codex.c: the OpenAI Codex CLI adapter: `codex exec --json`, prompt on argv, ThreadEvent lines.
 *
 * The CLI runs one turn non-interactively (reference/providers.md, "2. OpenAI Codex CLI"):
 *   codex exec --json --skip-git-repo-check --config approval_policy="never"
 *              [--model=M] --sandbox MODE [resume THREAD_ID] [--] PROMPT
 * The prompt is the last argv word and stdin is /dev/null: the interface has no
 * one-shot stdin (a stdin_protocol pipe stays open until the RESULT item, and
 * `codex exec` reads a `-` prompt until EOF, so it would never start). `--` goes
 * before a prompt that starts with '-' so that it is not read as an option.
 * `codex exec` has no approval channel: permissions are the sandbox only,
 *   permissionMode default, plan, unset or unknown  --sandbox read-only
 *   acceptEdits                                     --sandbox workspace-write
 *   bypassPermissions or skipPermissions (not plan) --sandbox danger-full-access
 * always with approval_policy="never" (an escalation request is refused at once,
 * and the model goes on), so no permission_request is ever published.
 * Its stdout lines map to events as follows:
 *   thread.started                   native session id (thread_id)
 *   item.completed agent_message     text{assistant}
 *   item.completed reasoning         thinking
 *   item.completed command_execution tool_use{toolName "Bash", toolInput {command},
 *                                    output, exitCode, status} and tool_result (the
 *                                    output; isError when the command failed)
 *   item.completed file_change       tool_use{toolName "FileChanges", toolInput changes,
 *                                    status} and tool_result ("kind path" per line)
 *   item.completed mcp_tool_call     tool_use{toolName tool, toolInput arguments, server,
 *                                    result, error, status} and tool_result (the result
 *                                    as JSON text, or the error message with isError)
 *   item.completed web_search        tool_use{toolName "WebSearch", toolInput {query}}
 *   item.completed todo_list         tool_use{toolName "TodoList", toolInput {items}}
 *   item.completed error             error{content: message} (CLI warnings such as
 *                                    "Model metadata ... not found")
 *   turn.completed                   status token_budget (from usage), then the end of the
 *                                    turn (the supervisor publishes the one `complete`)
 *   turn.failed                      the end of the turn, failed, with error.message (the
 *                                    inner message when it is an API error's JSON); the
 *                                    supervisor publishes it as the `error` event
 * Rule for everything else: turn.started, item.started, item.updated, top-level `error`
 * lines (reconnect notices; a failure comes as turn.failed), item types and line types
 * not listed above are ignored with a debug log, so that a newer CLI keeps working.
 * A line that is not a JSON object with a type becomes an `error` event.
 * Abort: there is no stdin protocol, so the supervisor signals the process group
 * (SIGTERM: the CLI exits 143 after `turn.started`, without a turn.failed).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "runner/provider.h"

/* The state is a plain struct runner_state (provider.h). */

/* ---- argv ------------------------------------------------------------------------ */

/* The --sandbox mode for the run's permission mode. */
static const char *codex_sandbox(const struct runner_request *req)
{
    const char *mode = req->permission_mode;
    bool plan = mode && strcmp(mode, "plan") == 0;

    if (req->skip_permissions && !plan)
        return "danger-full-access";
    if (!mode || plan || strcmp(mode, "default") == 0)
        return "read-only";
    if (strcmp(mode, "acceptEdits") == 0)
        return "workspace-write";
    if (strcmp(mode, "bypassPermissions") == 0)
        return "danger-full-access";
    log_warn("codex: unknown permission mode '%s': read-only sandbox", mode);
    return "read-only";
}

static int codex_build_argv(const struct runner_request *req, struct runner_strv *argv)
{
    static const char *const fixed[] = {"exec", "--json", "--skip-git-repo-check", "--config",
                                        "approval_policy=\"never\""};

    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        if (runner_strv_add(argv, fixed[i]) < 0)
            return -1;
    if (req->model && *req->model && runner_strv_add2(argv, "--model=", req->model) < 0)
        return -1;
    if (runner_strv_add(argv, "--sandbox") < 0 || runner_strv_add(argv, codex_sandbox(req)) < 0)
        return -1;
    /* Options of exec go before `resume`, which takes the thread id and the prompt. */
    if (req->native_id &&
        (runner_strv_add(argv, "resume") < 0 || runner_strv_add(argv, req->native_id) < 0))
        return -1;
    /* Images with --image=FILE, one each (`-i FILE...` would take the prompt as an image
     * too); after `resume` it is resume's own --image. Other files are named in the
     * prompt (the read-only sandbox still reads them). */
    for (size_t i = 0; i < req->n_attachments; i++) {
        const struct runner_attachment *a = &req->attachments[i];
        if (a->path && runner_attachment_is_image(a) &&
            runner_strv_add2(argv, "--image=", a->path) < 0)
            return -1;
    }
    if ((req->content[0] == '-' || req->n_attachments > 0) && runner_strv_add(argv, "--") < 0)
        return -1;
    if (req->n_attachments == 0)
        return runner_strv_add(argv, req->content);
    char *prompt = runner_prompt_with_files(req, runner_attachment_is_image);
    int rc = prompt ? runner_strv_add(argv, prompt) : -1;
    free(prompt);
    return rc;
}

/* ---- stdout lines ---------------------------------------------------------------- */

/* A tool_use event (input taken), with the extra members of item named in extras. */
static json_t *tool_use(struct runner_state *st, const json_t *item, const char *name,
                        json_t *input, const char *const *extras, const char *const *as,
                        size_t n_extras, struct runner_items *out)
{
    json_t *ev =
        input ? event_new_tool_use(st->ctx, runner_json_str(item, "id"), name, input) : NULL;
    json_decref(input);
    for (size_t i = 0; ev && i < n_extras; i++)
        runner_json_set_copy(ev, as[i], json_object_get(item, extras[i]), out);
    return ev;
}

static void on_command(struct runner_state *st, const json_t *item, struct runner_items *out)
{
    static const char *const extras[] = {"aggregated_output", "exit_code", "status"};
    static const char *const as[] = {"output", "exitCode", "status"};
    const char *status = runner_json_str(item, "status");
    const json_t *code = json_object_get(item, "exit_code");
    const char *output = runner_json_str(item, "aggregated_output");
    json_t *input = json_pack("{s:s}", "command", runner_json_str(item, "command") ?: "");

    runner_items_event(out, tool_use(st, item, "Bash", input, extras, as, 3, out));
    bool failed = (status && strcmp(status, "failed") == 0) ||
                  (json_is_integer(code) && json_integer_value(code) != 0);
    runner_items_event(out, event_new_tool_result(st->ctx, runner_json_str(item, "id"),
                                                  output ? output : "", failed));
}

static void on_file_change(struct runner_state *st, const json_t *item, struct runner_items *out)
{
    static const char *const extras[] = {"status"};
    const json_t *changes = json_object_get(item, "changes");
    const char *status = runner_json_str(item, "status");
    struct runner_buf text = {0};
    size_t i;
    json_t *c;
    int rc = 0;

    json_t *input = changes ? json_deep_copy(changes) : json_array();
    runner_items_event(out, tool_use(st, item, "FileChanges", input, extras, extras, 1, out));
    json_array_foreach(changes, i, c)
    {
        const char *kind = runner_json_str(c, "kind") ?: "update";
        const char *path = runner_json_str(c, "path") ?: "?";
        if (rc == 0 && i > 0)
            rc = runner_buf_append(&text, "\n", 1);
        if (rc == 0)
            rc = runner_buf_append(&text, kind, strlen(kind));
        if (rc == 0)
            rc = runner_buf_append(&text, " ", 1);
        if (rc == 0)
            rc = runner_buf_append(&text, path, strlen(path));
    }
    if (rc == 0)
        rc = runner_buf_append(&text, "", 1);
    if (rc < 0) {
        out->failed = true;
    } else {
        bool failed = status && strcmp(status, "failed") == 0;
        runner_items_event(out, event_new_tool_result(st->ctx, runner_json_str(item, "id"),
                                                      text.data ? text.data : "", failed));
    }
    runner_buf_free(&text);
}

static void on_mcp_call(struct runner_state *st, const json_t *item, struct runner_items *out)
{
    static const char *const extras[] = {"server", "result", "error", "status"};
    const json_t *args = json_object_get(item, "arguments");
    const json_t *result = json_object_get(item, "result");
    const json_t *error = json_object_get(item, "error");
    const char *status = runner_json_str(item, "status");
    const char *tool = runner_json_str(item, "tool");
    char *text = NULL;

    json_t *input = args && json_is_object(args) ? json_deep_copy(args) : json_object();
    runner_items_event(
        out, tool_use(st, item, tool && *tool ? tool : "mcp", input, extras, extras, 4, out));
    if (error && !json_is_null(error)) {
        const char *msg =
            json_is_string(error) ? json_string_value(error) : runner_json_str(error, "message");
        runner_items_event(out, event_new_tool_result(st->ctx, runner_json_str(item, "id"),
                                                      msg ? msg : "MCP tool call failed", true));
        return;
    }
    if (result && !json_is_null(result)) {
        text = event_json_dumps(result, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
        if (!text) {
            out->failed = true;
            return;
        }
    }
    runner_items_event(out,
                       event_new_tool_result(st->ctx, runner_json_str(item, "id"), text ? text : "",
                                             status && strcmp(status, "failed") == 0));
    free(text);
}

static void on_item_completed(struct runner_state *st, const json_t *msg, struct runner_items *out)
{
    const json_t *item = json_object_get(msg, "item");
    const char *type = runner_json_str(item, "type");

    if (!type) {
        log_debug("codex: ignoring item.completed without an item type");
        return;
    }
    if (strcmp(type, "agent_message") == 0) {
        const char *text = runner_json_str(item, "text");
        if (text && *text)
            runner_items_event(out, event_new_text(st->ctx, "assistant", text));
    } else if (strcmp(type, "reasoning") == 0) {
        const char *text = runner_json_str(item, "text");
        if (text && *text)
            runner_items_event(out, event_new_thinking(st->ctx, text));
    } else if (strcmp(type, "command_execution") == 0) {
        on_command(st, item, out);
    } else if (strcmp(type, "file_change") == 0) {
        on_file_change(st, item, out);
    } else if (strcmp(type, "mcp_tool_call") == 0) {
        on_mcp_call(st, item, out);
    } else if (strcmp(type, "web_search") == 0) {
        json_t *input = json_pack("{s:s}", "query", runner_json_str(item, "query") ?: "");
        runner_items_event(out, tool_use(st, item, "WebSearch", input, NULL, NULL, 0, out));
    } else if (strcmp(type, "todo_list") == 0) {
        const json_t *items = json_object_get(item, "items");
        json_t *input = json_pack("{s:o}", "items", items ? json_deep_copy(items) : json_array());
        runner_items_event(out, tool_use(st, item, "TodoList", input, NULL, NULL, 0, out));
    } else if (strcmp(type, "error") == 0) {
        const char *text = runner_json_str(item, "message");
        runner_items_event(out, event_new_error(st->ctx, text && *text ? text : "codex: error"));
    } else {
        log_debug("codex: ignoring an item of type %s", type);
    }
}

static void on_turn_completed(struct runner_state *st, const json_t *msg, struct runner_items *out)
{
    const json_t *usage = json_object_get(msg, "usage");

    if (json_is_object(usage)) {
        /* OpenAI counts cached input inside input_tokens: used is input + output. */
        struct token_budget tb = {
            .input_tokens = runner_json_int(usage, "input_tokens"),
            .output_tokens = runner_json_int(usage, "output_tokens"),
            .cache_read_tokens = json_object_get(usage, "cached_input_tokens")
                                     ? runner_json_int(usage, "cached_input_tokens")
                                     : -1,
            .cache_creation_tokens = json_object_get(usage, "cache_write_input_tokens")
                                         ? runner_json_int(usage, "cache_write_input_tokens")
                                         : -1,
            .total = 0,
        };
        tb.used = tb.input_tokens + tb.output_tokens;
        runner_items_event(out, event_new_token_budget(st->ctx, &tb));
    }
    runner_items_result(out, false, NULL);
}

static void codex_parse_line(void *p, const char *line, size_t len, struct runner_items *out,
                             struct runner_buf *in)
{
    struct runner_state *st = p;
    const char *type;
    json_t *msg = runner_line_decode(out, st->ctx, "codex", line, len, &type);

    (void)in;
    if (!msg)
        return;
    if (strcmp(type, "thread.started") == 0) {
        const char *id = runner_json_str(msg, "thread_id");
        if (id && *id)
            runner_items_native_id(out, id);
        else
            log_warn("codex: thread.started without thread_id");
    } else if (strcmp(type, "item.completed") == 0) {
        on_item_completed(st, msg, out);
    } else if (strcmp(type, "turn.completed") == 0) {
        on_turn_completed(st, msg, out);
    } else if (strcmp(type, "turn.failed") == 0) {
        runner_items_turn_failed(out, "codex",
                                 runner_json_str(json_object_get(msg, "error"), "message"));
    } else if (strcmp(type, "error") == 0) {
        const char *text = runner_json_str(msg, "message");
        log_info("codex: %s", text ? text : "(error line without message)");
    } else {
        log_debug("codex: ignoring a line of type %s", type);
    }
    json_decref(msg);
}

const struct runner_provider codex_provider = {
    .name = "codex",
    .stdin_protocol = false,
    .needs_result = true,
    .attachments = true,
    .state_new = runner_state_new,
    .state_free = runner_state_free,
    .build_argv = codex_build_argv,
    .build_env = NULL,
    .start = NULL,
    .parse_line = codex_parse_line,
    .finish = NULL,
    .interrupt = NULL, /* no stdin protocol: the supervisor signals the process group */
};
