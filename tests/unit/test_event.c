/* test_event.c: event constructors, field names and the complete invariant. */
#include "core/event.h"
#include "core/util.h"
#include "tap.h"

static const struct event_ctx ctx = {"2b1f0d6e-1111-4222-8333-444455556666", "run_x", "claude"};

static const char *str(json_t *ev, const char *key)
{
    return json_string_value(json_object_get(ev, key));
}

static void check_envelope(json_t *ev, const char *kind)
{
    const char *id = str(ev, "id");
    size_t klen = strlen(kind);
    ok(id && strncmp(id, kind, klen) == 0 && id[klen] == '_' && cgw_uuid_valid(id + klen + 1),
       "%s: id is <kind>_<uuid>", kind);
    is_str(str(ev, "kind"), kind, "%s: kind", kind);
    is_str(str(ev, "sessionId"), ctx.session_id, "%s: sessionId", kind);
    is_str(str(ev, "provider"), "claude", "%s: provider", kind);
    is_str(str(ev, "runId"), "run_x", "%s: runId", kind);
    const char *ts = str(ev, "timestamp");
    ok(ts && strlen(ts) == CGW_ISO_TIME_LEN && ts[23] == 'Z' && ts[19] == '.',
       "%s: ISO timestamp with ms", kind);
    ok(json_object_get(ev, "seq") == NULL, "%s: no seq before publishing", kind);
}

int main(void)
{
    plan_lazy();
    for (int i = 0; i < EVENT__COUNT; i++) {
        enum event_kind back;
        ok(event_kind_from_name(event_kind_name(i), &back) == 0 && (int)back == i,
           "kind %s round-trips", event_kind_name(i));
    }
    enum event_kind k;
    ok(event_kind_from_name("session_created", &k) < 0, "session_created is not ours");
    ok(event_kind_is_persisted(EVENT_TEXT) && !event_kind_is_persisted(EVENT_STREAM_DELTA),
       "stream_delta is not persisted");
    ok(event_kind_is_persisted(EVENT_COMPLETE), "complete is persisted");
    ok(!event_kind_is_run_event(EVENT_CHAT_SUBSCRIBED) &&
           !event_kind_is_run_event(EVENT_PROTOCOL_ERROR),
       "gateway frames are not run events");

    json_t *ev = event_new_text(&ctx, "assistant", "hello \"world\"");
    check_envelope(ev, "text");
    is_str(str(ev, "role"), "assistant", "text role");
    is_str(str(ev, "content"), "hello \"world\"", "text content");
    char *json = event_encode(ev);
    ok(json && json[0] == '{' && json[strlen(json) - 1] == '}' && !strchr(json, '\n'),
       "compact encoding");
    ok(strncmp(json, "{\"id\":", 6) == 0, "id comes first (insertion order)");
    free(json);
    json_decref(ev);

    json_t *input = json_pack("{s:s}", "command", "ls -la");
    ev = event_new_tool_use(&ctx, "toolu_1", "Bash", input);
    check_envelope(ev, "tool_use");
    is_str(str(ev, "toolName"), "Bash", "toolName");
    is_str(str(ev, "toolId"), "toolu_1", "toolId");
    is_str(json_string_value(json_object_get(json_object_get(ev, "toolInput"), "command")),
           "ls -la", "toolInput kept");
    json_decref(ev);
    is_int(input->refcount, 1, "input is borrowed, not stolen");

    ev = event_new_tool_use(&ctx, "t", "Read", NULL);
    ok(json_is_object(json_object_get(ev, "toolInput")), "missing input becomes {}");
    json_decref(ev);

    ev = event_new_tool_result(&ctx, "toolu_1", "out", true);
    check_envelope(ev, "tool_result");
    ok(json_is_true(json_object_get(ev, "isError")), "isError");
    json_decref(ev);

    ev = event_new_permission_request(&ctx, "req_1", "Bash", input);
    check_envelope(ev, "permission_request");
    is_str(str(ev, "requestId"), "req_1", "requestId");
    ok(json_object_get(ev, "input") != NULL, "input");
    json_decref(ev);
    json_decref(input);

    ev = event_new_permission_cancelled(&ctx, "req_1", "timeout");
    is_str(str(ev, "reason"), "timeout", "cancel reason");
    json_decref(ev);
    ev = event_new_permission_resolved(&ctx, "req_1", false);
    ok(json_is_false(json_object_get(ev, "allow")), "resolved allow=false");
    json_decref(ev);

    struct token_budget tb = {.used = 1200,
                              .total = 200000,
                              .input_tokens = 1000,
                              .output_tokens = 200,
                              .cache_read_tokens = 5,
                              .cache_creation_tokens = -1};
    ev = event_new_token_budget(&ctx, &tb);
    check_envelope(ev, "status");
    is_str(str(ev, "text"), "token_budget", "status text");
    json_t *b = json_object_get(ev, "tokenBudget");
    is_int(json_integer_value(json_object_get(b, "used")), 1200, "used");
    is_int(json_integer_value(json_object_get(b, "cacheReadTokens")), 5, "cache read");
    ok(json_object_get(b, "cacheCreationTokens") == NULL, "omitted field absent");
    is_int(json_integer_value(json_object_get(json_object_get(b, "breakdown"), "output")), 200,
           "breakdown");
    json_decref(ev);

    /* complete: success = exitCode == 0 && !aborted, reason only when set. */
    ev = event_new_complete(&ctx, 0, false, REASON_NONE);
    check_envelope(ev, "complete");
    ok(json_is_true(json_object_get(ev, "success")), "exit 0 -> success");
    ok(json_object_get(ev, "reason") == NULL, "no reason for a normal end");
    json_decref(ev);
    ev = event_new_complete(&ctx, 0, true, REASON_NONE);
    ok(json_is_false(json_object_get(ev, "success")), "aborted -> not success");
    is_str(str(ev, "reason"), "aborted", "aborted reason filled in");
    json_decref(ev);
    ev = event_new_complete(&ctx, 1, false, REASON_RUNNER_LOST);
    ok(json_is_false(json_object_get(ev, "success")), "exit 1 -> not success");
    is_int(json_integer_value(json_object_get(ev, "exitCode")), 1, "exitCode");
    is_str(str(ev, "reason"), "runner_lost", "runner_lost reason");
    json_decref(ev);
    ev = event_new_complete(&ctx, 127, false, REASON_SPAWN_FAILED);
    is_str(str(ev, "reason"), "spawn_failed", "spawn_failed reason");
    json_decref(ev);

    ev = event_new_protocol_error(CODE_SESSION_NOT_FOUND, "no such session", NULL);
    is_str(str(ev, "kind"), "protocol_error", "protocol_error kind");
    is_str(str(ev, "code"), "SESSION_NOT_FOUND", "code");
    is_str(str(ev, "error"), "no such session", "error text");
    ok(json_is_null(json_object_get(ev, "sessionId")), "sessionId null");
    ok(json_object_get(ev, "id") == NULL && json_object_get(ev, "seq") == NULL,
       "gateway frame has no id or seq");
    ok(event_id(ev) == NULL, "event_id of a frame without id");
    json_decref(ev);

    ev = event_new_protocol_error(CODE_INVALID_JSON, "bad \xff byte", NULL);
    is_str(str(ev, "error"), "bad ? byte", "protocol error text is made valid UTF-8");
    json_decref(ev);

    ev = event_new_text(&ctx, "assistant", "bad \xff utf8");
    ok(ev == NULL, "invalid UTF-8 is refused, not published");
    return done_testing();
}
