/* alloc_event.c: every allocation of the event constructors and encoder fails in turn. */
#include "core/event.h"
#include "core/log.h"
#include "failalloc.h"
#include "tap.h"

/* Replaces the value of "key":"..." in text with X (ids and timestamps differ per run). */
static void mask(char *text, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":\"", key);
    for (char *p = strstr(text, pat); p; p = strstr(p, pat))
        for (p += strlen(pat); *p && *p != '"'; p++)
            *p = 'X';
}

/* Encodes ev into the log and drops it; a NULL event or encoding is an error. */
static int emit(struct fa_log *log, json_t *ev)
{
    char *text;
    if (!ev)
        return -1;
    text = event_encode(ev);
    json_decref(ev);
    if (!text)
        return -1;
    mask(text, "id");
    mask(text, "timestamp");
    fa_logf(log, "%s", text);
    free(text);
    return 0;
}

static int scenario(struct fa_log *log, void *arg)
{
    const struct event_ctx ctx = {"s_1", "r_1", "claude"};
    const struct token_budget tb = {100, 200, 60, 40, 5, -1};
    json_t *input;
    int rc = 0;

    failalloc_hold();
    input = json_pack("{s:s, s:[i, s]}", "command", "ls -la", "more", 1, "two \xc3\xa9");
    failalloc_release();
    if (!input)
        BAIL_OUT("json_pack");

    rc |= emit(log, event_new_text(&ctx, "assistant", "Hello \xe2\x9c\x93"));
    rc |= emit(log, event_new_thinking(&ctx, "hmm"));
    rc |= emit(log, event_new_tool_use(&ctx, "t1", "Bash", input));
    rc |= emit(log, event_new_tool_use(&ctx, "t2", "Read", NULL));
    rc |= emit(log, event_new_tool_result(&ctx, "t1", "out", true));
    rc |= emit(log, event_new_stream_delta(&ctx, "He"));
    rc |= emit(log, event_new_stream_end(&ctx));
    rc |= emit(log, event_new_error(&ctx, "bad"));
    rc |= emit(log, event_new_status(&ctx, "working"));
    rc |= emit(log, event_new_token_budget(&ctx, &tb));
    rc |= emit(log, event_new_permission_request(&ctx, "p1", "Bash", input));
    rc |= emit(log, event_new_permission_cancelled(&ctx, "p1", "timeout"));
    rc |= emit(log, event_new_permission_resolved(&ctx, "p1", true));
    rc |= emit(log, event_new_run_started(&ctx));
    rc |= emit(log, event_new_complete(&ctx, 0, true, REASON_NONE));
    rc |= emit(log, event_new_complete(&ctx, 127, false, REASON_SPAWN_FAILED));
    rc |= emit(log, event_new_protocol_error(CODE_SESSION_NOT_FOUND, "no", "s_1"));
    rc |= emit(log, event_new_protocol_error(CODE_INVALID_JSON, "bad", NULL));
    for (int k = 0; k < EVENT__COUNT; k++)
        rc |= emit(log, event_new(&ctx, (enum event_kind)k));

    failalloc_hold();
    json_decref(input);
    failalloc_release();
    return rc;
}

int main(void)
{
    failalloc_init();
    log_init("alloc", LOG_LEVEL_ERROR);
    plan(1);
    failalloc_test("event", scenario, NULL);
    return done_testing();
}
