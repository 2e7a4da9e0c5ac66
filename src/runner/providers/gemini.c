/* gemini.c: the Gemini CLI adapter: `gemini -p PROMPT --output-format stream-json` lines.
 *
 * The CLI runs one turn headless (reference/providers.md, "3. Gemini CLI"):
 *   gemini -p PROMPT --output-format stream-json --skip-trust [--model=M]
 *          [--yolo | --approval-mode auto_edit|plan] [--allowed-tools T1,T2]
 *          [--resume SESSION_ID]
 * The prompt is an argv word and stdin is /dev/null (a piped stdin is appended to the
 * prompt). A prompt that starts with '-' goes as `--prompt=PROMPT`, so that it is not
 * read as options. The environment gets GEMINI_CLI_NO_RELAUNCH=true: the CLI then
 * stays one process instead of re-launching itself in a child node process.
 * Headless mode has no approval channel: tools that need one are not even offered
 * to the model, so permissions are chosen up front:
 *   permissionMode default, unset or unknown        (nothing: read-only tools)
 *   acceptEdits                                     --approval-mode auto_edit
 *   plan                                            --approval-mode plan
 *   bypassPermissions or skipPermissions (not plan) --yolo
 *   toolsSettings.allowedTools                      --allowed-tools, comma-separated
 * and no permission_request is ever published (disallowedTools has no flag: ignored).
 * Its stdout lines (JsonStreamEventType) map to events as follows:
 *   init                        native session id (session_id)
 *   message role assistant      stream_delta; the stream ends (stream_end, then the
 *                               whole text as text{assistant}, which is what history
 *                               keeps) at the next tool_use, result or end of stdout,
 *                               or at once for a message without delta:true
 *   message role user           dropped (the CLI echoes the prompt)
 *   tool_use                    tool_use{toolId tool_id, toolName tool_name,
 *                               toolInput parameters}
 *   tool_result                 tool_result{toolId, content output (or the error's
 *                               message), isError status=="error"}
 *   result                      status token_budget (from stats), then the end of the
 *                               turn; status "error" fails it with error.message (the
 *                               inner message of an "[API Error: {json}]"), which the
 *                               supervisor publishes as the `error` event
 *   error                       error{content: message} (warnings too)
 * Rule for everything else: line types not listed above are ignored with a debug log,
 * so that a newer CLI keeps working. A line that is not a JSON object with a type
 * becomes an `error` event.
 * Abort: there is no stdin protocol, so the supervisor signals the process group
 * (SIGTERM: the CLI exits 0 at once, without a result line).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "runner/provider.h"

struct gemini_state {
    struct runner_state rs; /* first: made by runner_state_alloc */
    bool streaming;         /* stream_delta events went out that no stream_end closed */
    struct runner_buf text; /* the streamed assistant text so far */
};

/* ---- argv ------------------------------------------------------------------------ */

/* The permission flag for the run's permission mode (NULL: none). */
static const char *gemini_approval(const struct runner_request *req)
{
    const char *mode = req->permission_mode;
    bool plan = mode && strcmp(mode, "plan") == 0;

    if (req->skip_permissions && !plan)
        return "--yolo";
    if (!mode || strcmp(mode, "default") == 0)
        return NULL;
    if (plan)
        return "plan";
    if (strcmp(mode, "acceptEdits") == 0)
        return "auto_edit";
    if (strcmp(mode, "bypassPermissions") == 0)
        return "--yolo";
    log_warn("gemini: unknown permission mode '%s': default approval", mode);
    return NULL;
}

/* Appends "--allowed-tools" and the tools joined by commas. 0 or -1. */
static int add_allowed_tools(const struct runner_request *req, struct runner_strv *argv)
{
    struct runner_buf list = {0};
    int rc = 0;

    for (size_t i = 0; rc == 0 && i < req->n_allowed; i++) {
        const char *tool = req->allowed_tools[i];
        if (!*tool)
            continue;
        if (list.len > 0)
            rc = runner_buf_append(&list, ",", 1);
        if (rc == 0)
            rc = runner_buf_append(&list, tool, strlen(tool));
    }
    if (rc == 0 && list.len > 0) {
        rc = runner_buf_append(&list, "", 1);
        if (rc == 0)
            rc = runner_strv_add(argv, "--allowed-tools");
        if (rc == 0)
            rc = runner_strv_add(argv, list.data);
    }
    runner_buf_free(&list);
    return rc;
}

/* The prompt, then "@<path>" of every attachment: the CLI's @-command reads them (images
 * as inline data, text as text) before the model sees the prompt. A new string. */
static char *gemini_prompt(const struct runner_request *req)
{
    struct runner_buf b = {0};
    int rc = runner_buf_append(&b, req->content, strlen(req->content));
    for (size_t i = 0; rc == 0 && i < req->n_attachments; i++) {
        const char *path = req->attachments[i].path;
        if (!path)
            continue;
        rc = runner_buf_append(&b, i == 0 ? "\n\n@" : " @", i == 0 ? 3 : 2);
        if (rc == 0)
            rc = runner_buf_append(&b, path, strlen(path));
    }
    if (rc == 0)
        rc = runner_buf_append(&b, "", 1);
    if (rc < 0) {
        runner_buf_free(&b);
        return NULL;
    }
    return b.data;
}

static int gemini_build_argv(const struct runner_request *req, struct runner_strv *argv)
{
    const char *approval = gemini_approval(req);
    char *prompt = gemini_prompt(req);
    int rc;

    if (!prompt)
        return -1;
    if (prompt[0] == '-')
        rc = runner_strv_add2(argv, "--prompt=", prompt);
    else
        rc = runner_strv_add(argv, "-p") < 0 ? -1 : runner_strv_add(argv, prompt);
    free(prompt);
    if (rc < 0)
        return -1;
    if (runner_strv_add(argv, "--output-format") < 0 || runner_strv_add(argv, "stream-json") < 0 ||
        runner_strv_add(argv, "--skip-trust") < 0)
        return -1;
    /* @-paths must lie in the workspace: the attachment directory joins it. */
    if (req->attach_dir && runner_strv_add2(argv, "--include-directories=", req->attach_dir) < 0)
        return -1;
    if (req->model && *req->model && runner_strv_add2(argv, "--model=", req->model) < 0)
        return -1;
    if (approval && strcmp(approval, "--yolo") == 0) {
        if (runner_strv_add(argv, "--yolo") < 0)
            return -1;
    } else if (approval && (runner_strv_add(argv, "--approval-mode") < 0 ||
                            runner_strv_add(argv, approval) < 0)) {
        return -1;
    }
    if (add_allowed_tools(req, argv) < 0)
        return -1;
    if (req->n_disallowed > 0)
        log_debug("gemini: no flag for disallowedTools; %zu ignored", req->n_disallowed);
    if (req->native_id &&
        (runner_strv_add(argv, "--resume") < 0 || runner_strv_add(argv, req->native_id) < 0))
        return -1;
    return 0;
}

static int gemini_build_env(const struct runner_request *req, struct runner_strv *env)
{
    (void)req;
    return runner_strv_add(env, "GEMINI_CLI_NO_RELAUNCH=true");
}

/* ---- state ----------------------------------------------------------------------- */

static void *gemini_state_new(const struct event_ctx *ctx, const struct runner_request *req)
{
    return runner_state_alloc(sizeof(struct gemini_state), ctx, req);
}

static void gemini_state_free(void *p)
{
    struct gemini_state *st = p;
    if (!st)
        return;
    runner_buf_free(&st->text);
    free(st);
}

/* ---- stdout lines ---------------------------------------------------------------- */

/* Ends the streamed assistant text, if one is open: stream_end, then the whole text. */
static void end_stream(struct gemini_state *st, struct runner_items *out)
{
    if (!st->streaming)
        return;
    st->streaming = false;
    runner_items_event(out, event_new_stream_end(st->rs.ctx));
    if (runner_buf_append(&st->text, "", 1) < 0)
        out->failed = true;
    else if (st->text.data[0])
        runner_items_event(out, event_new_text(st->rs.ctx, "assistant", st->text.data));
    st->text.len = 0;
}

static void on_message(struct gemini_state *st, const json_t *msg, struct runner_items *out)
{
    const char *role = runner_json_str(msg, "role");
    const char *content = runner_json_str(msg, "content");

    if (!role || strcmp(role, "assistant") != 0) {
        log_debug("gemini: dropping a %s message", role ? role : "role-less");
        return;
    }
    if (content && *content) {
        st->streaming = true;
        if (runner_buf_append(&st->text, content, strlen(content)) < 0)
            out->failed = true;
        runner_items_event(out, event_new_stream_delta(st->rs.ctx, content));
    }
    if (!json_is_true(json_object_get(msg, "delta")))
        end_stream(st, out);
}

static void on_tool_use(struct gemini_state *st, const json_t *msg, struct runner_items *out)
{
    const json_t *params = json_object_get(msg, "parameters");
    const char *name = runner_json_str(msg, "tool_name");
    json_t *input = json_is_object(params) ? json_deep_copy(params) : json_object();

    end_stream(st, out);
    if (!input) {
        out->failed = true;
        return;
    }
    runner_items_event(out, event_new_tool_use(st->rs.ctx, runner_json_str(msg, "tool_id"),
                                               name && *name ? name : "tool", input));
    json_decref(input);
}

static void on_tool_result(struct gemini_state *st, const json_t *msg, struct runner_items *out)
{
    const json_t *output = json_object_get(msg, "output");
    const char *status = runner_json_str(msg, "status");
    bool failed = status && strcmp(status, "error") == 0;
    char *dumped = NULL;
    const char *text;

    end_stream(st, out);
    if (json_is_string(output) && (json_string_length(output) > 0 || !failed)) {
        text = json_string_value(output);
    } else if (output && !json_is_null(output) && !json_is_string(output)) {
        dumped = event_json_dumps(output, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
        if (!dumped) {
            out->failed = true;
            return;
        }
        text = dumped;
    } else {
        text = runner_json_str(json_object_get(msg, "error"), "message");
        if (!text)
            text = failed ? "gemini: the tool failed" : "";
    }
    runner_items_event(
        out, event_new_tool_result(st->rs.ctx, runner_json_str(msg, "tool_id"), text, failed));
    free(dumped);
}

static void on_result(struct gemini_state *st, const json_t *msg, struct runner_items *out)
{
    const json_t *stats = json_object_get(msg, "stats");
    const char *status = runner_json_str(msg, "status");

    end_stream(st, out);
    if (json_is_object(stats)) {
        /* input_tokens counts the cached input too: used is total_tokens (input + output). */
        struct token_budget tb = {
            .input_tokens = runner_json_int(stats, "input_tokens"),
            .output_tokens = runner_json_int(stats, "output_tokens"),
            .cache_read_tokens =
                json_object_get(stats, "cached") ? runner_json_int(stats, "cached") : -1,
            .cache_creation_tokens = -1,
            .total = 0,
        };
        tb.used = json_object_get(stats, "total_tokens") ? runner_json_int(stats, "total_tokens")
                                                         : tb.input_tokens + tb.output_tokens;
        runner_items_event(out, event_new_token_budget(st->rs.ctx, &tb));
    }
    if (status && strcmp(status, "success") != 0)
        runner_items_turn_failed(out, "gemini",
                                 runner_json_str(json_object_get(msg, "error"), "message"));
    else
        runner_items_result(out, false, NULL);
}

static void gemini_parse_line(void *p, const char *line, size_t len, struct runner_items *out,
                              struct runner_buf *in)
{
    struct gemini_state *st = p;
    const char *type;
    json_t *msg = runner_line_decode(out, st->rs.ctx, "gemini", line, len, &type);

    (void)in;
    if (!msg)
        return;
    if (strcmp(type, "init") == 0) {
        const char *id = runner_json_str(msg, "session_id");
        if (id && *id)
            runner_items_native_id(out, id);
        else
            log_warn("gemini: init without session_id");
    } else if (strcmp(type, "message") == 0) {
        on_message(st, msg, out);
    } else if (strcmp(type, "tool_use") == 0) {
        on_tool_use(st, msg, out);
    } else if (strcmp(type, "tool_result") == 0) {
        on_tool_result(st, msg, out);
    } else if (strcmp(type, "result") == 0) {
        on_result(st, msg, out);
    } else if (strcmp(type, "error") == 0) {
        const char *text = runner_json_str(msg, "message");
        end_stream(st, out);
        runner_items_event(out,
                           event_new_error(st->rs.ctx, text && *text ? text : "gemini: error"));
    } else {
        log_debug("gemini: ignoring a line of type %s", type);
    }
    json_decref(msg);
}

static void gemini_finish(void *p, struct runner_items *out)
{
    end_stream(p, out);
}

const struct runner_provider gemini_provider = {
    .name = "gemini",
    .stdin_protocol = false,
    .needs_result = true,
    .attachments = true,
    .state_new = gemini_state_new,
    .state_free = gemini_state_free,
    .build_argv = gemini_build_argv,
    .build_env = gemini_build_env,
    .start = NULL,
    .parse_line = gemini_parse_line,
    .finish = gemini_finish,
    .interrupt = NULL, /* no stdin protocol: the supervisor signals the process group */
};
