/* claude.c: the Claude Code adapter: stream-json over stdin/stdout with the control protocol.
 *
 * The CLI runs in SDK mode (reference/providers.md, "1. Claude Code"):
 *   claude --output-format stream-json --verbose --input-format stream-json
 *          --permission-prompt-tool stdio --include-partial-messages [options]
 * Its stdin gets an `initialize` control_request and the user message, stays open
 * for permission answers and `interrupt`, and is closed by the supervisor after the
 * turn's `result` line. Its stdout lines map to events as follows:
 *   system/init                      native session id (first sight is recorded)
 *   stream_event text_delta          stream_delta
 *   stream_event content_block_stop  stream_end (of a text block that streamed)
 *   assistant text/thinking/tool_use text{assistant} / thinking / tool_use; a text
 *                                    block whose deltas streamed ends its stream first,
 *                                    so a client sees deltas, stream_end, then the text
 *   user tool_result / text          tool_result (non-string content as JSON text) /
 *                                    text{user}, hidden when it starts with
 *                                    "<system-reminder>", "Caveat:" or "[Request interrupted"
 *   result                           status token_budget (from usage) and the end of the
 *                                    turn (is_error: the run fails with exitCode 1)
 *   control_request can_use_tool     a permission request for the supervisor
 *   control_request other            answered here: hook_callback with success {},
 *                                    anything else with an error (the CLI never hangs)
 *   control_cancel_request           the CLI withdrew a permission request
 *   control_response                 answers to our requests: logged
 * Rule for everything else: a line of a type (or subtype) not listed above is ignored
 * with a debug log, so that a newer CLI that adds line types keeps working. A line
 * that is not a JSON object becomes an `error` event.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "runner/provider.h"

/* The context window when the result does not say (claudecodeui's CONTEXT_WINDOW). */
#define CLAUDE_DEFAULT_CONTEXT 160000

/* How much of an unreadable line goes into its error event. */

struct claude_state {
    struct runner_state rs; /* first: made by runner_state_alloc */
    unsigned next_request;  /* our control requests are req_<n>_<tag> */
    char tag[17];
    bool text_streaming; /* stream_delta events went out for a text block not yet ended */
};

/* ---- argv and environment -------------------------------------------------------- */

static const char *const claude_modes[] = {"default",           "acceptEdits", "plan",
                                           "bypassPermissions", "dontAsk",     "auto"};

/* The --permission-mode to pass, or NULL: skipPermissions means bypassPermissions
 * unless the run is in plan mode. */
static const char *claude_mode(const struct runner_request *req)
{
    const char *mode = req->permission_mode;
    if (req->skip_permissions && !(mode && strcmp(mode, "plan") == 0))
        return "bypassPermissions";
    if (!mode)
        return NULL;
    for (size_t i = 0; i < sizeof claude_modes / sizeof claude_modes[0]; i++)
        if (strcmp(mode, claude_modes[i]) == 0)
            return claude_modes[i];
    log_warn("claude: ignoring unknown permission mode '%s'", mode);
    return NULL;
}

/* Appends flag and the comma-joined list (the SDKs' spelling) when the list is not empty. */
static int add_list(struct runner_strv *argv, const char *flag, char *const *list, size_t n)
{
    struct runner_buf b = {0};
    int rc = 0;

    if (n == 0)
        return 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (i > 0)
            rc = runner_buf_append(&b, ",", 1);
        if (rc == 0)
            rc = runner_buf_append(&b, list[i], strlen(list[i]));
    }
    if (rc == 0)
        rc = runner_buf_append(&b, "", 1);
    if (rc == 0)
        rc = runner_strv_add(argv, flag);
    if (rc == 0)
        rc = runner_strv_add(argv, b.data);
    runner_buf_free(&b);
    return rc;
}

static int claude_build_argv(const struct runner_request *req, struct runner_strv *argv)
{
    static const char *const fixed[] = {"--output-format", "stream-json",
                                        "--verbose",       "--input-format",
                                        "stream-json",     "--permission-prompt-tool",
                                        "stdio",           "--include-partial-messages"};
    const char *mode = claude_mode(req);

    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        if (runner_strv_add(argv, fixed[i]) < 0)
            return -1;
    if (req->model && *req->model && runner_strv_add2(argv, "--model=", req->model) < 0)
        return -1;
    if (mode && (runner_strv_add(argv, "--permission-mode") < 0 || runner_strv_add(argv, mode) < 0))
        return -1;
    if (add_list(argv, "--allowedTools", req->allowed_tools, req->n_allowed) < 0 ||
        add_list(argv, "--disallowedTools", req->disallowed_tools, req->n_disallowed) < 0)
        return -1;
    /* Files that are not images are read from their directory by the agent's tools. */
    for (size_t i = 0; i < req->n_attachments; i++) {
        if (req->attach_dir && !runner_attachment_is_image(&req->attachments[i])) {
            if (runner_strv_add2(argv, "--add-dir=", req->attach_dir) < 0)
                return -1;
            break;
        }
    }
    if (req->native_id && runner_strv_add2(argv, "--resume=", req->native_id) < 0)
        return -1;
    return 0;
}

static int claude_build_env(const struct runner_request *req, struct runner_strv *env)
{
    /* As root the CLI refuses bypassPermissions unless it is told it runs in a sandbox. */
    const char *mode = claude_mode(req);
    if (geteuid() == 0 && mode && strcmp(mode, "bypassPermissions") == 0)
        return runner_strv_add(env, "IS_SANDBOX=1");
    return 0;
}

/* ---- state ----------------------------------------------------------------------- */

static void *claude_state_new(const struct event_ctx *ctx, const struct runner_request *req)
{
    unsigned char rnd[8];
    struct claude_state *st = runner_state_alloc(sizeof *st, ctx, req);
    if (!st)
        return NULL;
    st->next_request = 1;
    if (cgw_random_bytes(rnd, sizeof rnd) < 0)
        memset(rnd, 0, sizeof rnd);
    cgw_hex(rnd, sizeof rnd, st->tag);
    return st;
}

/* Appends one control_request {subtype} line with a fresh request id. */
static int control_request(struct claude_state *st, json_t *request, struct runner_buf *in)
{
    char id[48];
    snprintf(id, sizeof id, "req_%u_%s", st->next_request++, st->tag);
    json_t *msg = json_pack("{s:s, s:s, s:o}", "type", "control_request", "request_id", id,
                            "request", request);
    if (!msg)
        return -1;
    int rc = runner_buf_append_json_line(in, msg);
    json_decref(msg);
    return rc;
}

/* The user message's content with attachments: an image block per image (base64, as
 * the Messages API takes it), then the prompt as a text block that lists the other
 * files by path (the CLI's Read tool opens them; --add-dir allows their directory). */
static json_t *content_blocks(const struct runner_request *req)
{
    json_t *blocks = json_array();
    char *text = runner_prompt_with_files(req, runner_attachment_is_image);
    int rc = blocks && text ? 0 : -1;

    for (size_t i = 0; rc == 0 && i < req->n_attachments; i++) {
        const struct runner_attachment *a = &req->attachments[i];
        if (!runner_attachment_is_image(a) || !a->path)
            continue;
        char *b64 = runner_base64(a->data ? a->data : (const unsigned char *)"", a->len);
        json_t *block = b64 ? json_pack("{s:s, s:{s:s, s:s, s:s}}", "type", "image", "source",
                                        "type", "base64", "media_type", a->mime_type, "data", b64)
                            : NULL;
        free(b64);
        rc = json_array_append_new(blocks, block);
    }
    if (rc == 0)
        rc = json_array_append_new(blocks, json_pack("{s:s, s:s}", "type", "text", "text", text));
    free(text);
    if (rc < 0) {
        json_decref(blocks);
        return NULL;
    }
    return blocks;
}

static int claude_start(void *p, struct runner_buf *in)
{
    struct claude_state *st = p;
    const struct runner_request *req = st->rs.req;
    json_t *init = json_pack("{s:s, s:n}", "subtype", "initialize", "hooks");
    if (!init || control_request(st, init, in) < 0)
        return -1;
    json_t *content = req->n_attachments > 0 ? content_blocks(req) : json_string(req->content);
    json_t *user = json_pack("{s:s, s:s, s:{s:s, s:o}, s:n}", "type", "user", "session_id", "",
                             "message", "role", "user", "content", content, "parent_tool_use_id");
    if (!user)
        return -1;
    int rc = runner_buf_append_json_line(in, user);
    json_decref(user);
    return rc;
}

static int claude_interrupt(void *p, struct runner_buf *in)
{
    json_t *req = json_pack("{s:s}", "subtype", "interrupt");
    if (!req || control_request(p, req, in) < 0)
        return -1;
    return 1;
}

/* Appends a control_response to the CLI's request id: success with body (taken;
 * NULL = none) or, when error is not NULL, an error. */
static int control_response(const char *id, json_t *body, const char *error, struct runner_buf *in)
{
    json_t *resp;
    if (error)
        resp = json_pack("{s:s, s:s, s:s}", "subtype", "error", "request_id", id, "error", error);
    else if (body)
        resp =
            json_pack("{s:s, s:s, s:o}", "subtype", "success", "request_id", id, "response", body);
    else
        resp = json_pack("{s:s, s:s}", "subtype", "success", "request_id", id);
    json_t *msg =
        resp ? json_pack("{s:s, s:o}", "type", "control_response", "response", resp) : NULL;
    if (!msg)
        return -1;
    int rc = runner_buf_append_json_line(in, msg);
    json_decref(msg);
    return rc;
}

static int claude_answer(void *p, const char *id, bool allow, json_t *input, const char *message,
                         struct runner_buf *in)
{
    json_t *body;
    (void)p;
    if (allow)
        body = json_pack("{s:s, s:o}", "behavior", "allow", "updatedInput",
                         input ? json_incref(input) : json_object());
    else
        body = json_pack("{s:s, s:s}", "behavior", "deny", "message",
                         message && *message ? message : "User denied tool use");
    if (!body)
        return -1;
    return control_response(id, body, NULL, in);
}

/* ---- stdout lines ---------------------------------------------------------------- */

/* Ends a streamed text block, if one is open. */
static void end_stream(struct claude_state *st, struct runner_items *out)
{
    if (!st->text_streaming)
        return;
    st->text_streaming = false;
    runner_items_event(out, event_new_stream_end(st->rs.ctx));
}

static void on_stream_event(struct claude_state *st, const json_t *msg, struct runner_items *out)
{
    const json_t *event = json_object_get(msg, "event");
    const char *type = runner_json_str(event, "type");

    if (!type)
        return;
    if (strcmp(type, "content_block_delta") == 0) {
        const json_t *delta = json_object_get(event, "delta");
        const char *dtype = runner_json_str(delta, "type");
        const char *text = runner_json_str(delta, "text");
        if (dtype && strcmp(dtype, "text_delta") == 0 && text && *text) {
            st->text_streaming = true;
            runner_items_event(out, event_new_stream_delta(st->rs.ctx, text));
        }
    } else if (strcmp(type, "content_block_stop") == 0) {
        end_stream(st, out);
    }
    /* message_start, content_block_start, other deltas (tool input, thinking),
     * message_delta, message_stop: the complete `assistant` message carries them. */
}

static void on_assistant(struct claude_state *st, const json_t *msg, struct runner_items *out)
{
    const json_t *message = json_object_get(msg, "message");
    const json_t *content = json_object_get(message, "content");
    size_t i;
    json_t *block;

    if (json_is_string(content)) {
        end_stream(st, out);
        runner_items_event(out,
                           event_new_text(st->rs.ctx, "assistant", json_string_value(content)));
        return;
    }
    json_array_foreach(content, i, block)
    {
        const char *type = runner_json_str(block, "type");
        if (!type)
            continue;
        if (strcmp(type, "text") == 0) {
            const char *text = runner_json_str(block, "text");
            end_stream(st, out);
            if (text && *text)
                runner_items_event(out, event_new_text(st->rs.ctx, "assistant", text));
        } else if (strcmp(type, "thinking") == 0) {
            const char *text = runner_json_str(block, "thinking");
            if (text && *text)
                runner_items_event(out, event_new_thinking(st->rs.ctx, text));
        } else if (strcmp(type, "tool_use") == 0) {
            runner_items_event(out, event_new_tool_use(st->rs.ctx, runner_json_str(block, "id"),
                                                       runner_json_str(block, "name"),
                                                       json_object_get(block, "input")));
        } else {
            log_debug("claude: ignoring assistant block of type %s", type);
        }
    }
}

/* User text the CLI injects itself, which claudecodeui hides. */
static bool user_text_hidden(const char *text)
{
    static const char *const prefixes[] = {"<system-reminder>", "Caveat:", "[Request interrupted"};
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++)
        if (strncmp(text, prefixes[i], strlen(prefixes[i])) == 0)
            return true;
    return false;
}

static void user_text(struct claude_state *st, const char *text, struct runner_items *out)
{
    if (text && *text && !user_text_hidden(text))
        runner_items_event(out, event_new_text(st->rs.ctx, "user", text));
}

static void on_tool_result(struct claude_state *st, const json_t *block, struct runner_items *out)
{
    const json_t *content = json_object_get(block, "content");
    char *text = NULL;

    if (content && !json_is_string(content) && !json_is_null(content)) {
        text = event_json_dumps(content, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
        if (!text) {
            out->failed = true;
            return;
        }
    }
    runner_items_event(out,
                       event_new_tool_result(st->rs.ctx, runner_json_str(block, "tool_use_id"),
                                             text ? text : json_string_value(content),
                                             json_is_true(json_object_get(block, "is_error"))));
    free(text);
}

static void on_user(struct claude_state *st, const json_t *msg, struct runner_items *out)
{
    const json_t *content = json_object_get(json_object_get(msg, "message"), "content");
    size_t i;
    json_t *block;

    if (json_is_string(content)) {
        user_text(st, json_string_value(content), out);
        return;
    }
    json_array_foreach(content, i, block)
    {
        const char *type = runner_json_str(block, "type");
        if (type && strcmp(type, "tool_result") == 0)
            on_tool_result(st, block, out);
        else if (type && strcmp(type, "text") == 0)
            user_text(st, runner_json_str(block, "text"), out);
    }
}

/* The context window from modelUsage.<model>.contextWindow, else the default. */
static int64_t context_window(const json_t *msg)
{
    const char *key;
    json_t *model;
    json_object_foreach((json_t *)json_object_get(msg, "modelUsage"), key, model)
    {
        int64_t w = runner_json_int(model, "contextWindow");
        if (w > 0)
            return w;
    }
    return CLAUDE_DEFAULT_CONTEXT;
}

static void on_result(struct claude_state *st, const json_t *msg, struct runner_items *out)
{
    const json_t *usage = json_object_get(msg, "usage");
    bool is_error = json_is_true(json_object_get(msg, "is_error"));
    char text[1024];
    const char *error = NULL;

    end_stream(st, out);
    if (json_is_object(usage)) {
        struct token_budget tb = {
            .input_tokens = runner_json_int(usage, "input_tokens"),
            .output_tokens = runner_json_int(usage, "output_tokens"),
            .cache_read_tokens = runner_json_int(usage, "cache_read_input_tokens"),
            .cache_creation_tokens = runner_json_int(usage, "cache_creation_input_tokens"),
            .total = context_window(msg),
        };
        tb.used =
            tb.input_tokens + tb.output_tokens + tb.cache_read_tokens + tb.cache_creation_tokens;
        runner_items_event(out, event_new_token_budget(st->rs.ctx, &tb));
    }
    if (is_error) {
        /* The result text when there is one ("API Error: 400 ..."); `errors` holds
         * diagnostics, not messages for people. */
        const char *result = runner_json_str(msg, "result");
        const char *subtype = runner_json_str(msg, "subtype");
        const char *reason = runner_json_str(msg, "terminal_reason");
        if (result && *result) {
            error = result;
        } else {
            snprintf(text, sizeof text, "claude: the turn failed (%s%s%s)",
                     subtype ? subtype : "error", reason ? ", " : "", reason ? reason : "");
            error = text;
        }
    }
    runner_items_result(out, is_error, error);
}

static void on_control_request(struct claude_state *st, const json_t *msg, struct runner_items *out,
                               struct runner_buf *in)
{
    const char *id = runner_json_str(msg, "request_id");
    const json_t *request = json_object_get(msg, "request");
    const char *subtype = runner_json_str(request, "subtype");
    char why[128];

    if (!id || !*id) {
        log_warn("claude: control_request without request_id ignored");
        return;
    }
    if (subtype && strcmp(subtype, "can_use_tool") == 0) {
        const char *tool = runner_json_str(request, "tool_name");
        json_t *input = json_object_get(request, "input");
        if (tool && *tool) {
            runner_items_permission(out, id, tool, input ? json_incref(input) : json_object());
            return;
        }
        if (control_response(id, NULL, "can_use_tool without tool_name", in) < 0)
            out->failed = true;
        return;
    }
    if (subtype && strcmp(subtype, "hook_callback") == 0) {
        /* We register no hooks; an empty hook output lets the CLI go on. */
        json_t *body = json_object();
        if (!body || control_response(id, body, NULL, in) < 0)
            out->failed = true;
        return;
    }
    snprintf(why, sizeof why, "unsupported control request: %s", subtype ? subtype : "(none)");
    log_info("claude: answering control_request %s with an error (%s)", id, why);
    if (control_response(id, NULL, why, in) < 0)
        out->failed = true;
}

static void on_control_response(const json_t *msg)
{
    const json_t *resp = json_object_get(msg, "response");
    const char *subtype = runner_json_str(resp, "subtype");
    const char *id = runner_json_str(resp, "request_id");
    if (subtype && strcmp(subtype, "error") == 0)
        log_warn("claude: control request %s failed: %s", id ? id : "?",
                 runner_json_str(resp, "error") ? runner_json_str(resp, "error") : "(no text)");
    else
        log_debug("claude: control request %s answered", id ? id : "?");
}

static void claude_parse_line(void *p, const char *line, size_t len, struct runner_items *out,
                              struct runner_buf *in)
{
    struct claude_state *st = p;
    const char *type;
    json_t *msg = runner_line_decode(out, st->rs.ctx, "claude", line, len, &type);

    if (!msg)
        return;
    if (strcmp(type, "system") == 0) {
        const char *subtype = runner_json_str(msg, "subtype");
        const char *sid = runner_json_str(msg, "session_id");
        if (subtype && strcmp(subtype, "init") == 0 && sid && *sid)
            runner_items_native_id(out, sid);
        else
            log_debug("claude: ignoring system/%s", subtype ? subtype : "?");
    } else if (strcmp(type, "stream_event") == 0) {
        on_stream_event(st, msg, out);
    } else if (strcmp(type, "assistant") == 0) {
        on_assistant(st, msg, out);
    } else if (strcmp(type, "user") == 0) {
        on_user(st, msg, out);
    } else if (strcmp(type, "result") == 0) {
        on_result(st, msg, out);
    } else if (strcmp(type, "control_request") == 0) {
        on_control_request(st, msg, out, in);
    } else if (strcmp(type, "control_cancel_request") == 0) {
        const char *id = runner_json_str(msg, "request_id");
        if (id && *id)
            runner_items_cancel(out, id);
    } else if (strcmp(type, "control_response") == 0) {
        on_control_response(msg);
    } else {
        log_debug("claude: ignoring a line of type %s", type);
    }
    json_decref(msg);
}

static void claude_finish(void *p, struct runner_items *out)
{
    end_stream(p, out);
}

const struct runner_provider claude_provider = {
    .name = "claude",
    .stdin_protocol = true,
    .needs_result = true,
    .attachments = true,
    .state_new = claude_state_new,
    .state_free = runner_state_free,
    .build_argv = claude_build_argv,
    .build_env = claude_build_env,
    .start = claude_start,
    .parse_line = claude_parse_line,
    .finish = claude_finish,
    .interrupt = claude_interrupt,
    .answer = claude_answer,
};
