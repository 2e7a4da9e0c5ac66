/* event.h: the normalized event model of DESIGN §4 and its JSON form.
 *
 * Every constructor returns a new Jansson reference (json_decref when done), or
 * NULL when memory ran out. Provider events carry {id, sessionId, timestamp,
 * provider, kind, runId} from the context plus their own fields; the bus adds
 * "seq" when it publishes them. Gateway frames (chat_subscribed,
 * session_upserted, protocol_error) carry no seq and no run.
 */
#ifndef CGW_EVENT_H
#define CGW_EVENT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/err.h"

enum event_kind {
    EVENT_TEXT = 0,
    EVENT_TOOL_USE,
    EVENT_TOOL_RESULT,
    EVENT_THINKING,
    EVENT_STREAM_DELTA,
    EVENT_STREAM_END,
    EVENT_ERROR,
    EVENT_STATUS,
    EVENT_PERMISSION_REQUEST,
    EVENT_PERMISSION_CANCELLED,
    EVENT_PERMISSION_RESOLVED,
    EVENT_RUN_STARTED,
    EVENT_COMPLETE,
    /* gateway frames */
    EVENT_CHAT_SUBSCRIBED,
    EVENT_SESSION_UPSERTED,
    EVENT_PROTOCOL_ERROR,
    EVENT__COUNT
};

/* "text", "tool_use", ...; never NULL. */
const char *event_kind_name(enum event_kind k);
/* Returns 0 and sets *out, or -1 for an unknown name. */
int event_kind_from_name(const char *name, enum event_kind *out);
/* True for kinds that get a seq and go through a run (not gateway frames). */
bool event_kind_is_run_event(enum event_kind k);
/* True when the kind is persisted to SQLite (every run event but stream_delta). */
bool event_kind_is_persisted(enum event_kind k);

/* Why a run ended without the provider saying so. */
enum complete_reason {
    REASON_NONE = 0,
    REASON_ABORTED,
    REASON_RUNNER_LOST,
    REASON_SPAWN_FAILED,
    REASON_TIMEOUT,
    REASON__COUNT
};
/* NULL for REASON_NONE, else "aborted", "runner_lost", "spawn_failed", "timeout". */
const char *event_complete_reason_name(enum complete_reason r);

/* Who an event belongs to. Strings are borrowed for the duration of a call. */
struct event_ctx {
    const char *session_id; /* app session id */
    const char *run_id;
    const char *provider;
};

/* The envelope alone: id "<kind>_<uuid>", sessionId, timestamp (now), provider,
 * kind, runId. The kind-specific constructors below build on it. */
json_t *event_new(const struct event_ctx *ctx, enum event_kind kind);

json_t *event_new_text(const struct event_ctx *ctx, const char *role, const char *content);
json_t *event_new_thinking(const struct event_ctx *ctx, const char *content);
/* input is borrowed (copied by reference count: json_incref). NULL input -> {}. */
json_t *event_new_tool_use(const struct event_ctx *ctx, const char *tool_id, const char *tool_name,
                           json_t *input);
json_t *event_new_tool_result(const struct event_ctx *ctx, const char *tool_id, const char *content,
                              bool is_error);
json_t *event_new_stream_delta(const struct event_ctx *ctx, const char *content);
json_t *event_new_stream_end(const struct event_ctx *ctx);
json_t *event_new_error(const struct event_ctx *ctx, const char *content);
json_t *event_new_status(const struct event_ctx *ctx, const char *text);

struct token_budget {
    int64_t used, total; /* total 0 = unknown (omitted) */
    int64_t input_tokens, output_tokens;
    int64_t cache_read_tokens, cache_creation_tokens; /* < 0 = omitted */
};
/* status {text:"token_budget", tokenBudget{used, total?, inputTokens, outputTokens,
 * cacheReadTokens?, cacheCreationTokens?, breakdown{input, output}}}. */
json_t *event_new_token_budget(const struct event_ctx *ctx, const struct token_budget *tb);

/* input is borrowed as in event_new_tool_use. */
json_t *event_new_permission_request(const struct event_ctx *ctx, const char *request_id,
                                     const char *tool_name, json_t *input);
/* reason: "timeout", "aborted" or "cancelled". */
json_t *event_new_permission_cancelled(const struct event_ctx *ctx, const char *request_id,
                                       const char *reason);
json_t *event_new_permission_resolved(const struct event_ctx *ctx, const char *request_id,
                                      bool allow);
json_t *event_new_run_started(const struct event_ctx *ctx);

/* complete {exitCode, success = exitCode == 0 && !aborted, aborted, reason?}.
 * An aborted run gets reason "aborted" when reason is REASON_NONE. */
json_t *event_new_complete(const struct event_ctx *ctx, int exit_code, bool aborted,
                           enum complete_reason reason);

/* {kind:"protocol_error", code, error, sessionId (string or null), timestamp}. */
json_t *event_new_protocol_error(enum cgw_code code, const char *text, const char *session_id);

/* The event's "id" member (borrowed), or NULL. */
const char *event_id(const json_t *ev);

/* Compact JSON text of ev (UTF-8, no NUL inside, keys in insertion order) as a
 * new string the caller frees with free(); NULL when memory ran out. */
char *event_encode(const json_t *ev);

/* json_dumps(v, flags) that never returns a damaged text: NULL when memory ran out
 * anywhere (Jansson's own json_dumps drops an object key whose write failed). The
 * caller frees the new string with free(). Use it instead of json_dumps. */
char *event_json_dumps(const json_t *v, size_t flags);

#endif
