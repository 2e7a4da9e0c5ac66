/* opencode.c: the OpenCode CLI adapter: `opencode run --format json`, prompt on argv, part lines.
 *
 * The CLI runs one turn non-interactively (reference/providers.md, "4. OpenCode"):
 *   opencode run --format json [--model=provider/model] [--session ses_ID] [--auto]
 *                [--] PROMPT
 * The prompt is the last argv word and stdin is /dev/null (`opencode run` reads the
 * prompt from a piped stdin when argv has none). `--` goes before a prompt that starts
 * with '-' so that it is not read as an option.
 * `opencode run` has no approval channel: a tool the config marks "ask" is
 * auto-rejected by the CLI (stderr "permission requested ...; auto-rejecting", the
 * tool part ends with status "error", exit 0), unless --auto approves every ask:
 *   bypassPermissions or skipPermissions (not plan)  --auto
 *   anything else                                    no flag: the CLI's config decides
 *                                                    (its default allows bash and edits;
 *                                                    asks are auto-rejected)
 * so no permission_request is ever published.
 * Each stdout line is {type, timestamp, sessionID, part|error}; only completed parts are
 * printed (no token deltas), so text is published whole:
 *   sessionID (first line that has it)  native session id
 *   text                                text{assistant} (part.text)
 *   reasoning (with --thinking)         thinking (part.text)
 *   tool_use                            tool_use{toolName part.tool, toolId part.callID,
 *                                       toolInput part.state.input, status, title} and
 *                                       tool_result (state.output, or state.error with
 *                                       isError); a part not completed/errored: tool_use only
 *   step_finish                         status token_budget (part.tokens); a reason other
 *                                       than "tool-calls" also ends the turn (RESULT)
 *   error                               the end of the turn, failed, with error.data.message
 *                                       (or error.message, or the error string); the
 *                                       supervisor publishes it as the `error` event
 * step_start and line types not listed above are ignored with a debug log, so that a
 * newer CLI keeps working. A line that is not a JSON object with a type becomes an
 * `error` event. The CLI prints no end-of-turn marker (it exits when the session goes
 * idle; after an auto-rejected tool it stops after a "tool-calls" step), so a RESULT
 * is not required: the exit status decides.
 * Abort: there is no stdin protocol, so the supervisor signals the process group
 * (SIGTERM/SIGINT kill the CLI at once, with no further output).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "runner/provider.h"

struct opencode_state {
    struct runner_state rs; /* first: made by runner_state_alloc */
    bool native_seen;       /* the native session id was reported */
    bool result_seen;       /* a step ended the turn */
};

/* ---- argv and environment -------------------------------------------------------- */

/* Whether the run approves every permission ask (--auto). */
static bool opencode_auto(const struct runner_request *req)
{
    const char *mode = req->permission_mode;
    bool plan = mode && strcmp(mode, "plan") == 0;

    if (req->skip_permissions && !plan)
        return true;
    if (mode && strcmp(mode, "bypassPermissions") == 0)
        return true;
    if (mode && strcmp(mode, "default") != 0 && strcmp(mode, "plan") != 0 &&
        strcmp(mode, "acceptEdits") != 0)
        log_warn("opencode: unknown permission mode '%s': the CLI's config decides", mode);
    return false;
}

static int opencode_build_argv(const struct runner_request *req, struct runner_strv *argv)
{
    static const char *const fixed[] = {"run", "--format", "json"};

    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        if (runner_strv_add(argv, fixed[i]) < 0)
            return -1;
    if (req->model && *req->model && runner_strv_add2(argv, "--model=", req->model) < 0)
        return -1;
    if (req->native_id &&
        (runner_strv_add(argv, "--session") < 0 || runner_strv_add(argv, req->native_id) < 0))
        return -1;
    if (opencode_auto(req) && runner_strv_add(argv, "--auto") < 0)
        return -1;
    /* Every file with --file=FILE (its array option would take the prompt too when
     * spaced; `--` below ends it); opencode makes file parts of them. */
    for (size_t i = 0; i < req->n_attachments; i++) {
        const struct runner_attachment *a = &req->attachments[i];
        if (a->path && runner_strv_add2(argv, "--file=", a->path) < 0)
            return -1;
    }
    if ((req->content[0] == '-' || req->n_attachments > 0) && runner_strv_add(argv, "--") < 0)
        return -1;
    return runner_strv_add(argv, req->content);
}

static int opencode_build_env(const struct runner_request *req, struct runner_strv *env)
{
    (void)req;
    /* A run must not update the binary under the runner's feet. */
    return runner_strv_add(env, "OPENCODE_DISABLE_AUTOUPDATE=true");
}

/* ---- state ----------------------------------------------------------------------- */

static void *opencode_state_new(const struct event_ctx *ctx, const struct runner_request *req)
{
    return runner_state_alloc(sizeof(struct opencode_state), ctx, req);
}

/* ---- stdout lines ---------------------------------------------------------------- */

static void on_tool(struct opencode_state *st, const json_t *part, struct runner_items *out)
{
    const json_t *state = json_object_get(part, "state");
    const json_t *input = json_object_get(state, "input");
    const char *tool = runner_json_str(part, "tool");
    const char *id = runner_json_str(part, "callID") ?: runner_json_str(part, "id");
    const char *status = runner_json_str(state, "status");

    json_t *in = json_is_object(input) ? json_deep_copy(input) : json_object();
    json_t *ev = in ? event_new_tool_use(st->rs.ctx, id, tool && *tool ? tool : "tool", in) : NULL;
    json_decref(in);
    runner_json_set_copy(ev, "status", json_object_get(state, "status"), out);
    runner_json_set_copy(ev, "title", json_object_get(state, "title"), out);
    runner_items_event(out, ev);
    if (status && strcmp(status, "completed") == 0) {
        const char *output = runner_json_str(state, "output");
        runner_items_event(out, event_new_tool_result(st->rs.ctx, id, output ? output : "", false));
    } else if (status && strcmp(status, "error") == 0) {
        const char *error = runner_json_str(state, "error");
        runner_items_event(out, event_new_tool_result(
                                    st->rs.ctx, id, error && *error ? error : "tool failed", true));
    }
}

static void on_step_finish(struct opencode_state *st, const json_t *part, struct runner_items *out)
{
    const json_t *tokens = json_object_get(part, "tokens");
    const char *reason = runner_json_str(part, "reason");

    if (json_is_object(tokens)) {
        const json_t *cache = json_object_get(tokens, "cache");
        const json_t *total = json_object_get(tokens, "total");
        struct token_budget tb = {
            .input_tokens = runner_json_int(tokens, "input"),
            .output_tokens = runner_json_int(tokens, "output"),
            .cache_read_tokens =
                json_object_get(cache, "read") ? runner_json_int(cache, "read") : -1,
            .cache_creation_tokens =
                json_object_get(cache, "write") ? runner_json_int(cache, "write") : -1,
            .total = 0,
        };
        tb.used = json_is_integer(total) ? (int64_t)json_integer_value(total)
                                         : tb.input_tokens + tb.output_tokens;
        runner_items_event(out, event_new_token_budget(st->rs.ctx, &tb));
    }
    /* "tool-calls": the model goes on with another step (unless a tool was rejected). */
    if (reason && strcmp(reason, "tool-calls") == 0)
        return;
    if (!st->result_seen) {
        st->result_seen = true;
        runner_items_result(out, false, NULL);
    }
}

/* The run failed: error.data.message (an APIError), error.message, or the error string. */
static void on_error(const json_t *msg, struct runner_items *out)
{
    const json_t *error = json_object_get(msg, "error");
    const char *name = runner_json_str(error, "name");
    const char *text = json_string_value(error);
    char buf[1024];

    if (!text)
        text = runner_json_str(json_object_get(error, "data"), "message");
    if (!text)
        text = runner_json_str(error, "message");
    if (text && *text) {
        snprintf(buf, sizeof buf, "opencode: %s: %s", name && *name ? name : "error", text);
        runner_items_result(out, true, buf);
    } else {
        runner_items_result(out, true, name && *name ? name : "opencode: the run failed");
    }
}

static void opencode_parse_line(void *p, const char *line, size_t len, struct runner_items *out,
                                struct runner_buf *in)
{
    struct opencode_state *st = p;
    const char *type;
    json_t *msg = runner_line_decode(out, st->rs.ctx, "opencode", line, len, &type);

    (void)in;
    if (!msg)
        return;
    const char *sid = runner_json_str(msg, "sessionID");
    if (sid && *sid && !st->native_seen) {
        st->native_seen = true;
        runner_items_native_id(out, sid);
    }
    const json_t *part = json_object_get(msg, "part");
    if (strcmp(type, "text") == 0 || strcmp(type, "reasoning") == 0) {
        const char *text = runner_json_str(part, "text");
        if (text && *text)
            runner_items_event(out, type[0] == 't' ? event_new_text(st->rs.ctx, "assistant", text)
                                                   : event_new_thinking(st->rs.ctx, text));
    } else if (strcmp(type, "tool_use") == 0) {
        on_tool(st, part, out);
    } else if (strcmp(type, "step_finish") == 0) {
        on_step_finish(st, part, out);
    } else if (strcmp(type, "error") == 0) {
        on_error(msg, out);
    } else {
        log_debug("opencode: ignoring a line of type %s", type);
    }
    json_decref(msg);
}

const struct runner_provider opencode_provider = {
    .name = "opencode",
    .stdin_protocol = false,
    .needs_result = false,
    .attachments = true,
    .state_new = opencode_state_new,
    .state_free = runner_state_free,
    .build_argv = opencode_build_argv,
    .build_env = opencode_build_env,
    .start = NULL,
    .parse_line = opencode_parse_line,
    .finish = NULL,
    .interrupt = NULL, /* no stdin protocol: the supervisor signals the process group */
};
