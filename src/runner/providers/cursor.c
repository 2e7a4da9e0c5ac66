/* cursor.c: the Cursor CLI adapter: `cursor-agent -p PROMPT --output-format stream-json` lines.
 *
 * The CLI runs one turn headless (reference/providers.md, "5. Cursor CLI"; documented
 * only: the CLI cannot be installed offline, so this adapter is tested against fixtures):
 *   cursor-agent --output-format stream-json --trust [--model=M] [-f | --mode plan]
 *                [--resume=CHAT_ID] -p [--] PROMPT
 * `-p` (--print) is a flag and the prompt a positional word; it goes last, right after
 * `-p`, with `--` in between when it starts with '-' so that it is not read as options.
 * `--resume=ID` is one word because --resume takes an optional value. stdin is /dev/null.
 * `--trust` is always passed: headless runs otherwise fail on a directory the CLI has not
 * seen ("Workspace Trust Required") and chatgw only runs in projects.roots, which the
 * operator chose, so trusting them is the operator's decision already made. There is no
 * re-run on a trust failure: the failure is reported like any other.
 * Partial output (--stream-partial-output) is never asked for, so every assistant line is
 * a whole message between tool calls.
 * Headless mode has no approval channel, so permissions are chosen up front:
 *   permissionMode default, unset or unknown      (nothing: commands needing approval
 *                                                 are not run)
 *   acceptEdits, bypassPermissions, or            -f (--force: allow commands unless
 *   skipPermissions (not plan)                    explicitly denied; Cursor has no
 *                                                 edits-only mode)
 *   plan                                          --mode plan (read-only)
 * and no permission_request is ever published.
 * Its stdout lines map to events as follows:
 *   system/init          native session id (session_id); model and cwd are logged
 *   user                 dropped (the CLI echoes the prompt)
 *   assistant            text{assistant}: the message's text parts joined. A line with
 *                        timestamp_ms or model_call_id is a partial-output form (a delta,
 *                        or a duplicate of deltas; the whole message follows as a plain
 *                        line) and is dropped, so text is never doubled
 *   tool_call/started    tool_use{toolId call_id, toolName from the call's key, toolInput
 *                        args}; `readToolCall` -> Read, `shellToolCall` -> Bash, ... (table
 *                        below), another `xyzToolCall` -> Xyz, `function{name, arguments}`
 *                        -> name with the arguments (a JSON object text is decoded)
 *   tool_call/completed  tool_result{toolId, content, isError}: the result's single key is
 *                        success (isError unless a shell exitCode is 0 or absent) or
 *                        anything else (error, rejected, ...: isError); content is its
 *                        first string member among content, output, stdout, message,
 *                        reason, error, else its compact JSON
 *   result               the end of the turn (duration_ms logged); is_error or a subtype
 *                        other than success fails it with the result text, which the
 *                        supervisor publishes as the `error` event
 * Rule for everything else: line types and subtypes not listed above are ignored with a
 * debug log, so that a newer CLI keeps working. A line that is not a JSON object with a
 * type becomes an `error` event.
 * Abort: there is no stdin protocol, so the supervisor signals the process group.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "runner/provider.h"

/* The state is a plain struct runner_state (provider.h). */

/* ---- argv ------------------------------------------------------------------------ */

/* The permission flags for the run's permission mode: "-f", "plan" or NULL (none). */
static const char *cursor_permission(const struct runner_request *req)
{
    const char *mode = req->permission_mode;
    bool plan = mode && strcmp(mode, "plan") == 0;

    if (plan)
        return "plan";
    if (req->skip_permissions)
        return "-f";
    if (!mode || strcmp(mode, "default") == 0)
        return NULL;
    if (strcmp(mode, "acceptEdits") == 0 || strcmp(mode, "bypassPermissions") == 0)
        return "-f";
    log_warn("cursor: unknown permission mode '%s': default approval", mode);
    return NULL;
}

static int cursor_build_argv(const struct runner_request *req, struct runner_strv *argv)
{
    static const char *const fixed[] = {"--output-format", "stream-json", "--trust"};
    const char *perm = cursor_permission(req);

    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        if (runner_strv_add(argv, fixed[i]) < 0)
            return -1;
    if (req->model && *req->model && runner_strv_add2(argv, "--model=", req->model) < 0)
        return -1;
    if (perm && strcmp(perm, "plan") == 0) {
        if (runner_strv_add(argv, "--mode") < 0 || runner_strv_add(argv, "plan") < 0)
            return -1;
    } else if (perm && runner_strv_add(argv, perm) < 0) {
        return -1;
    }
    if (req->n_allowed > 0 || req->n_disallowed > 0)
        log_debug("cursor: no flags for allowed/disallowed tools; ignored");
    if (req->native_id && runner_strv_add2(argv, "--resume=", req->native_id) < 0)
        return -1;
    if (runner_strv_add(argv, "-p") < 0)
        return -1;
    if (req->content[0] == '-' && runner_strv_add(argv, "--") < 0)
        return -1;
    return runner_strv_add(argv, req->content);
}

/* ---- state ----------------------------------------------------------------------- */

/* ---- stdout lines ---------------------------------------------------------------- */

static void on_assistant(struct runner_state *st, const json_t *msg, struct runner_items *out)
{
    const json_t *content = json_object_get(json_object_get(msg, "message"), "content");
    struct runner_buf text = {0};
    size_t i;
    json_t *part;
    int rc = 0;

    if (json_object_get(msg, "timestamp_ms") || json_object_get(msg, "model_call_id")) {
        log_debug("cursor: dropping a partial-output assistant line");
        return;
    }
    if (json_is_string(content)) {
        rc = runner_buf_append(&text, json_string_value(content), json_string_length(content));
    } else {
        json_array_foreach(content, i, part)
        {
            const char *type = runner_json_str(part, "type");
            const char *t = runner_json_str(part, "text");
            if (rc == 0 && t && (!type || strcmp(type, "text") == 0))
                rc = runner_buf_append(&text, t, strlen(t));
        }
    }
    if (rc == 0)
        rc = runner_buf_append(&text, "", 1);
    if (rc < 0)
        out->failed = true;
    else if (text.data[0])
        runner_items_event(out, event_new_text(st->ctx, "assistant", text.data));
    runner_buf_free(&text);
}

/* Tool keys with the name Claude Code gives the same tool (the UI knows those names). */
static const struct {
    const char *key, *name;
} tool_names[] = {
    {"shellToolCall", "Bash"},     {"readToolCall", "Read"},
    {"writeToolCall", "Write"},    {"editToolCall", "Edit"},
    {"deleteToolCall", "Delete"},  {"grepToolCall", "Grep"},
    {"globToolCall", "Glob"},      {"lsToolCall", "LS"},
    {"todoToolCall", "TodoWrite"}, {"updateTodosToolCall", "TodoWrite"},
};

/* The tool's display name for its key in tool_call (buf of size bytes). */
static const char *tool_name(const char *key, const json_t *call, char *buf, size_t size)
{
    static const char suffix[] = "ToolCall";
    size_t len = strlen(key), sl = sizeof suffix - 1;

    if (strcmp(key, "function") == 0) {
        const char *name = runner_json_str(call, "name");
        return name && *name ? name : "function";
    }
    for (size_t i = 0; i < sizeof tool_names / sizeof tool_names[0]; i++)
        if (strcmp(key, tool_names[i].key) == 0)
            return tool_names[i].name;
    if (len > sl && strcmp(key + len - sl, suffix) == 0)
        len -= sl;
    snprintf(buf, size, "%.*s", (int)len, key);
    if (buf[0] >= 'a' && buf[0] <= 'z')
        buf[0] = (char)(buf[0] - 'a' + 'A');
    return buf;
}

/* The call's input: args, or a function's arguments (a JSON object text is decoded).
 * Returns a new reference, NULL when memory ran out. */
static json_t *tool_input(const char *key, const json_t *call)
{
    const json_t *v = json_object_get(call, strcmp(key, "function") == 0 ? "arguments" : "args");

    if (json_is_object(v))
        return json_deep_copy(v);
    if (json_is_string(v)) {
        json_t *decoded = json_loads(json_string_value(v), 0, NULL);
        if (json_is_object(decoded))
            return decoded;
        json_decref(decoded);
    }
    if (!v || json_is_null(v))
        return json_object();
    return json_pack("{s:O}", "arguments", v);
}

/* The text of a tool result value (a new string), NULL when memory ran out. */
static char *result_text(const json_t *v)
{
    static const char *const keys[] = {"content", "output", "stdout", "message", "reason", "error"};

    if (json_is_string(v))
        return strdup(json_string_value(v));
    for (size_t i = 0; json_is_object(v) && i < sizeof keys / sizeof keys[0]; i++) {
        const char *s = runner_json_str(v, keys[i]);
        if (s)
            return strdup(s);
    }
    if (!v || json_is_null(v))
        return strdup("");
    return event_json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
}

static void on_tool_call(struct runner_state *st, const json_t *msg, struct runner_items *out)
{
    const char *subtype = runner_json_str(msg, "subtype");
    const char *id = runner_json_str(msg, "call_id");
    const json_t *calls = json_object_get(msg, "tool_call");
    const char *key = NULL;
    const json_t *call = NULL;
    char buf[128];

    if (json_is_object(calls) && json_object_size(calls) > 0) {
        void *iter = json_object_iter((json_t *)calls);
        key = json_object_iter_key(iter);
        call = json_object_iter_value(iter);
    }
    if (!subtype || !key || !json_is_object(call)) {
        log_debug("cursor: ignoring a tool_call without subtype or call");
        return;
    }
    if (strcmp(subtype, "started") == 0) {
        json_t *input = tool_input(key, call);
        if (!input) {
            out->failed = true;
            return;
        }
        runner_items_event(
            out, event_new_tool_use(st->ctx, id, tool_name(key, call, buf, sizeof buf), input));
        json_decref(input);
    } else if (strcmp(subtype, "completed") == 0) {
        const json_t *result = json_object_get(call, "result");
        const char *rkey = NULL;
        const json_t *value = result;
        if (json_is_object(result) && json_object_size(result) == 1) {
            void *iter = json_object_iter((json_t *)result);
            rkey = json_object_iter_key(iter);
            value = json_object_iter_value(iter);
        }
        const json_t *code = json_object_get(value, "exitCode");
        bool failed = (rkey && strcmp(rkey, "success") != 0) ||
                      (json_is_integer(code) && json_integer_value(code) != 0);
        char *text = result_text(value);
        if (!text) {
            out->failed = true;
            return;
        }
        runner_items_event(out, event_new_tool_result(st->ctx, id, text, failed));
        free(text);
    } else {
        log_debug("cursor: ignoring tool_call/%s", subtype);
    }
}

static void on_result(const json_t *msg, struct runner_items *out)
{
    const char *subtype = runner_json_str(msg, "subtype");
    const char *text = runner_json_str(msg, "result");
    bool failed = json_is_true(json_object_get(msg, "is_error")) ||
                  (subtype && strcmp(subtype, "success") != 0);
    char buf[1024];

    log_debug("cursor: turn took %" PRId64 " ms", runner_json_int(msg, "duration_ms"));
    if (!failed) {
        runner_items_result(out, false, NULL);
        return;
    }
    snprintf(buf, sizeof buf, "cursor: the turn failed%s%s", text && *text ? ": " : "",
             text && *text ? text : "");
    runner_items_result(out, true, buf);
}

static void cursor_parse_line(void *p, const char *line, size_t len, struct runner_items *out,
                              struct runner_buf *in)
{
    struct runner_state *st = p;
    const char *type;
    json_t *msg = runner_line_decode(out, st->ctx, "cursor", line, len, &type);

    (void)in;
    if (!msg)
        return;
    if (strcmp(type, "system") == 0) {
        const char *subtype = runner_json_str(msg, "subtype");
        const char *id = runner_json_str(msg, "session_id");
        if (subtype && strcmp(subtype, "init") == 0 && id && *id) {
            runner_items_native_id(out, id);
            log_debug("cursor: chat %s, model %s, cwd %s", id, runner_json_str(msg, "model") ?: "?",
                      runner_json_str(msg, "cwd") ?: "?");
        } else {
            log_debug("cursor: ignoring system/%s", subtype ? subtype : "?");
        }
    } else if (strcmp(type, "user") == 0) {
        log_debug("cursor: dropping the echoed user message");
    } else if (strcmp(type, "assistant") == 0) {
        on_assistant(st, msg, out);
    } else if (strcmp(type, "tool_call") == 0) {
        on_tool_call(st, msg, out);
    } else if (strcmp(type, "result") == 0) {
        on_result(msg, out);
    } else {
        log_debug("cursor: ignoring a line of type %s", type);
    }
    json_decref(msg);
}

const struct runner_provider cursor_provider = {
    .name = "cursor",
    .stdin_protocol = false,
    .needs_result = true,
    /* cursor-agent -p has no flag or input format for images or files (doc/providers.md):
     * a run with attachments fails before it starts, with an error saying so. */
    .attachments = false,
    .state_new = runner_state_new,
    .state_free = runner_state_free,
    .build_argv = cursor_build_argv,
    .build_env = NULL,
    .start = NULL,
    .parse_line = cursor_parse_line,
    .finish = NULL,
    .interrupt = NULL, /* no stdin protocol: the supervisor signals the process group */
};
