/* event.c: constructors and JSON encoding of the normalized events (DESIGN §4). */
#include "core/event.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"

static const char *const kind_names[EVENT__COUNT] = {
    [EVENT_TEXT] = "text",
    [EVENT_TOOL_USE] = "tool_use",
    [EVENT_TOOL_RESULT] = "tool_result",
    [EVENT_THINKING] = "thinking",
    [EVENT_STREAM_DELTA] = "stream_delta",
    [EVENT_STREAM_END] = "stream_end",
    [EVENT_ERROR] = "error",
    [EVENT_STATUS] = "status",
    [EVENT_PERMISSION_REQUEST] = "permission_request",
    [EVENT_PERMISSION_CANCELLED] = "permission_cancelled",
    [EVENT_PERMISSION_RESOLVED] = "permission_resolved",
    [EVENT_RUN_STARTED] = "run_started",
    [EVENT_COMPLETE] = "complete",
    [EVENT_CHAT_SUBSCRIBED] = "chat_subscribed",
    [EVENT_SESSION_UPSERTED] = "session_upserted",
    [EVENT_PROTOCOL_ERROR] = "protocol_error",
};

static const char *const reason_names[REASON__COUNT] = {
    [REASON_NONE] = NULL,
    [REASON_ABORTED] = "aborted",
    [REASON_RUNNER_LOST] = "runner_lost",
    [REASON_SPAWN_FAILED] = "spawn_failed",
    [REASON_TIMEOUT] = "timeout",
};

const char *event_kind_name(enum event_kind k)
{
    if ((unsigned)k >= EVENT__COUNT)
        return "unknown";
    return kind_names[k];
}

int event_kind_from_name(const char *name, enum event_kind *out)
{
    for (int i = 0; name && i < EVENT__COUNT; i++) {
        if (strcmp(kind_names[i], name) == 0) {
            *out = (enum event_kind)i;
            return 0;
        }
    }
    return -1;
}

bool event_kind_is_run_event(enum event_kind k)
{
    return (unsigned)k < EVENT_CHAT_SUBSCRIBED;
}

bool event_kind_is_persisted(enum event_kind k)
{
    return event_kind_is_run_event(k) && k != EVENT_STREAM_DELTA;
}

const char *event_complete_reason_name(enum complete_reason r)
{
    if ((unsigned)r >= REASON__COUNT)
        return NULL;
    return reason_names[r];
}

/* Sets key to a new string value; a NULL value becomes "". Returns -1 on OOM. */
static int set_str(json_t *obj, const char *key, const char *value)
{
    return json_object_set_new(obj, key, json_string(value ? value : ""));
}

static json_t *timestamp_now(void)
{
    char when[CGW_ISO_TIME_LEN + 1];
    return json_string(cgw_time_iso(cgw_now_ms(), when));
}

json_t *event_new(const struct event_ctx *ctx, enum event_kind kind)
{
    char id[CGW_ID_MAX];
    json_t *ev = json_object();

    if (!ev || cgw_id_new(event_kind_name(kind), id, sizeof id) < 0)
        goto fail;
    if (set_str(ev, "id", id) < 0 || set_str(ev, "sessionId", ctx->session_id) < 0 ||
        json_object_set_new(ev, "timestamp", timestamp_now()) < 0 ||
        set_str(ev, "provider", ctx->provider) < 0 ||
        set_str(ev, "kind", event_kind_name(kind)) < 0 || set_str(ev, "runId", ctx->run_id) < 0)
        goto fail;
    return ev;
fail:
    json_decref(ev);
    return NULL;
}

/* Finishes a constructor: drops the event when any member failed to set. */
static json_t *done(json_t *ev, int failed)
{
    if (failed) {
        json_decref(ev);
        return NULL;
    }
    return ev;
}

json_t *event_new_text(const struct event_ctx *ctx, const char *role, const char *content)
{
    json_t *ev = event_new(ctx, EVENT_TEXT);
    if (!ev)
        return NULL;
    return done(ev, set_str(ev, "role", role) | set_str(ev, "content", content));
}

json_t *event_new_thinking(const struct event_ctx *ctx, const char *content)
{
    json_t *ev = event_new(ctx, EVENT_THINKING);
    if (!ev)
        return NULL;
    return done(ev, set_str(ev, "content", content));
}

/* A borrowed input, or {} when there is none. Returns a new reference. */
static json_t *input_ref(json_t *input)
{
    return input ? json_incref(input) : json_object();
}

json_t *event_new_tool_use(const struct event_ctx *ctx, const char *tool_id, const char *tool_name,
                           json_t *input)
{
    json_t *ev = event_new(ctx, EVENT_TOOL_USE);
    if (!ev)
        return NULL;
    return done(ev, set_str(ev, "toolName", tool_name) |
                        json_object_set_new(ev, "toolInput", input_ref(input)) |
                        set_str(ev, "toolId", tool_id));
}

json_t *event_new_tool_result(const struct event_ctx *ctx, const char *tool_id, const char *content,
                              bool is_error)
{
    json_t *ev = event_new(ctx, EVENT_TOOL_RESULT);
    if (!ev)
        return NULL;
    return done(ev, set_str(ev, "toolId", tool_id) | set_str(ev, "content", content) |
                        json_object_set_new(ev, "isError", json_boolean(is_error)));
}

json_t *event_new_stream_delta(const struct event_ctx *ctx, const char *content)
{
    json_t *ev = event_new(ctx, EVENT_STREAM_DELTA);
    if (!ev)
        return NULL;
    return done(ev, set_str(ev, "content", content));
}

json_t *event_new_stream_end(const struct event_ctx *ctx)
{
    return event_new(ctx, EVENT_STREAM_END);
}

json_t *event_new_error(const struct event_ctx *ctx, const char *content)
{
    json_t *ev = event_new(ctx, EVENT_ERROR);
    if (!ev)
        return NULL;
    return done(ev, set_str(ev, "content", content));
}

json_t *event_new_status(const struct event_ctx *ctx, const char *text)
{
    json_t *ev = event_new(ctx, EVENT_STATUS);
    if (!ev)
        return NULL;
    return done(ev, set_str(ev, "text", text));
}

json_t *event_new_token_budget(const struct event_ctx *ctx, const struct token_budget *tb)
{
    json_t *ev = event_new_status(ctx, "token_budget");
    json_t *budget = json_object();
    json_t *breakdown = json_object();
    int failed = !ev || !budget || !breakdown;

    if (!failed) {
        failed |= json_object_set_new(budget, "used", json_integer(tb->used));
        if (tb->total > 0)
            failed |= json_object_set_new(budget, "total", json_integer(tb->total));
        failed |= json_object_set_new(budget, "inputTokens", json_integer(tb->input_tokens));
        failed |= json_object_set_new(budget, "outputTokens", json_integer(tb->output_tokens));
        if (tb->cache_read_tokens >= 0)
            failed |=
                json_object_set_new(budget, "cacheReadTokens", json_integer(tb->cache_read_tokens));
        if (tb->cache_creation_tokens >= 0)
            failed |= json_object_set_new(budget, "cacheCreationTokens",
                                          json_integer(tb->cache_creation_tokens));
        failed |= json_object_set_new(breakdown, "input", json_integer(tb->input_tokens));
        failed |= json_object_set_new(breakdown, "output", json_integer(tb->output_tokens));
        failed |= json_object_set(budget, "breakdown", breakdown);
        failed |= json_object_set(ev, "tokenBudget", budget);
    }
    json_decref(breakdown);
    json_decref(budget);
    if (!ev)
        return NULL;
    return done(ev, failed);
}

json_t *event_new_permission_request(const struct event_ctx *ctx, const char *request_id,
                                     const char *tool_name, json_t *input)
{
    json_t *ev = event_new(ctx, EVENT_PERMISSION_REQUEST);
    if (!ev)
        return NULL;
    return done(ev, set_str(ev, "requestId", request_id) | set_str(ev, "toolName", tool_name) |
                        json_object_set_new(ev, "input", input_ref(input)));
}

json_t *event_new_permission_cancelled(const struct event_ctx *ctx, const char *request_id,
                                       const char *reason)
{
    json_t *ev = event_new(ctx, EVENT_PERMISSION_CANCELLED);
    if (!ev)
        return NULL;
    return done(ev, set_str(ev, "requestId", request_id) | set_str(ev, "reason", reason));
}

json_t *event_new_permission_resolved(const struct event_ctx *ctx, const char *request_id,
                                      bool allow)
{
    json_t *ev = event_new(ctx, EVENT_PERMISSION_RESOLVED);
    if (!ev)
        return NULL;
    return done(ev, set_str(ev, "requestId", request_id) |
                        json_object_set_new(ev, "allow", json_boolean(allow)));
}

json_t *event_new_run_started(const struct event_ctx *ctx)
{
    return event_new(ctx, EVENT_RUN_STARTED);
}

json_t *event_new_complete(const struct event_ctx *ctx, int exit_code, bool aborted,
                           enum complete_reason reason)
{
    json_t *ev = event_new(ctx, EVENT_COMPLETE);
    if (!ev)
        return NULL;
    if (aborted && reason == REASON_NONE)
        reason = REASON_ABORTED;
    int failed = json_object_set_new(ev, "exitCode", json_integer(exit_code)) |
                 json_object_set_new(ev, "success", json_boolean(exit_code == 0 && !aborted)) |
                 json_object_set_new(ev, "aborted", json_boolean(aborted));
    if (event_complete_reason_name(reason))
        failed |= set_str(ev, "reason", event_complete_reason_name(reason));
    return done(ev, failed);
}

json_t *event_new_protocol_error(enum cgw_code code, const char *text, const char *session_id)
{
    /* The text may quote client input (a parser's message): keep it valid UTF-8. */
    char clean[512];
    snprintf(clean, sizeof clean, "%s", text ? text : "");
    cgw_utf8_sanitize(clean);
    text = clean;
    json_t *ev = json_object();
    if (!ev)
        return NULL;
    return done(ev, set_str(ev, "kind", "protocol_error") |
                        set_str(ev, "code", cgw_code_name(code)) | set_str(ev, "error", text) |
                        json_object_set_new(ev, "sessionId",
                                            session_id ? json_string(session_id) : json_null()) |
                        json_object_set_new(ev, "timestamp", timestamp_now()));
}

const char *event_id(const json_t *ev)
{
    return json_string_value(json_object_get(ev, "id"));
}

/* The text being dumped. failed stays set once an append ran out of memory: Jansson
 * (2.14 and its master) ignores the result of writing an object key, so json_dumps can
 * return a text without a key when memory runs out (found by tests/unit/alloc_event). */
struct dump_buf {
    char *data;
    size_t len, cap;
    bool failed;
};

static int dump_append(const char *text, size_t n, void *arg)
{
    struct dump_buf *b = arg;
    if (b->failed)
        return -1;
    if (n >= b->cap - b->len) {
        size_t cap = b->cap ? b->cap : 256;
        while (n >= cap - b->len)
            cap *= 2;
        char *data = realloc(b->data, cap);
        if (!data) {
            b->failed = true;
            return -1;
        }
        b->data = data;
        b->cap = cap;
    }
    memcpy(b->data + b->len, text, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

char *event_json_dumps(const json_t *v, size_t flags)
{
    struct dump_buf b = {0};
    if (json_dump_callback(v, dump_append, &b, flags) != 0 || b.failed || !b.data) {
        free(b.data);
        return NULL;
    }
    return b.data;
}

char *event_encode(const json_t *ev)
{
    return event_json_dumps(ev, JSON_COMPACT | JSON_PRESERVE_ORDER);
}
