/* test_providers.c: the rows of core/provider_list.h and everything made from them agree:
 * names, <name>.bin keys, capabilities, and the runner's adapters. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"
#include "core/providers.h"
#include "runner/child.h"
#include "runner/provider.h"
#include "tap.h"

static const struct config_key *key_named(const char *name)
{
    for (const struct config_key *k = config_keys; k->name; k++)
        if (strcmp(k->name, name) == 0)
            return k;
    return NULL;
}

/* The text of the RESULT item that runner_items_turn_failed makes of text. */
static void turn_failed_is(const char *text, const char *want, const char *name)
{
    struct runner_items it = {0};
    runner_items_turn_failed(&it, "x", text);
    ok(it.n == 1 && it.v[0].type == RUNNER_ITEM_RESULT && it.v[0].is_error, "%s: one failed RESULT",
       name);
    is_str(it.n == 1 ? it.v[0].text : NULL, want, "%s: text", name);
    runner_items_clear(&it);
}

int main(void)
{
    struct config cfg;
    struct cgw_error err;
    plan_lazy();

    is_int(config_defaults(&cfg, &err), CGW_OK, "defaults");
    size_t nbin = 0;
    for (const struct config_key *k = config_keys; k->name; k++) {
        size_t n = strlen(k->name);
        nbin += n > 4 && strcmp(k->name + n - 4, ".bin") == 0;
    }
    is_int(nbin, PROVIDER__COUNT, "one <name>.bin key per provider");

    for (int i = 0; i < PROVIDER__COUNT; i++) {
        enum provider_id p = (enum provider_id)i, back;
        const char *name = provider_name(p);
        char key[64];
        ok(provider_from_name(name, &back) == 0 && back == p, "%s: the name maps back", name);

        snprintf(key, sizeof key, "%s.bin", name);
        const struct config_key *k = key_named(key);
        ok(k != NULL, "%s: key %s", name, key);
        ok(k && cfg.provider_bin[p] && strcmp(cfg.provider_bin[p], k->def) == 0,
           "%s: provider_bin[%d] holds the key's default (%s)", name, i, k ? k->def : "?");

        const struct runner_provider *a = runner_provider_for(p);
        ok(a != NULL, "%s: the runner has its adapter", name);
        if (!a)
            continue;
        is_str(a->name, name, "%s: the adapter's name is the row's", name);
        is_int(a->answer != NULL, provider_caps[p].permission_requests,
               "%s: supportsPermissionRequests is exactly 'the adapter answers requests'", name);
        ok(a->state_new && a->state_free && a->build_argv && a->parse_line,
           "%s: the adapter has its required functions", name);
        ok(provider_caps[p].modes[0] && strcmp(provider_caps[p].modes[0], "default") == 0,
           "%s: its modes start with default", name);
        ok(provider_mode_known(p, "default") && !provider_mode_known(p, "nope"),
           "%s: provider_mode_known", name);
    }
    /* Model names (options.model): real ones pass, options and odd bytes do not. */
    static const char *const models[] = {"claude-sonnet-4-5",
                                         "gpt-5-codex",
                                         "gemini-2.5-pro",
                                         "anthropic/claude-sonnet-4",
                                         "openrouter/x-ai/grok-4",
                                         "fake/fake-model",
                                         "sonnet",
                                         "a:b@c+d_e",
                                         ""};
    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++)
        ok(provider_model_valid(models[i]), "model '%s' is valid", models[i]);
    static const char *const bad_models[] = {"--yolo", "-m",  "-",     "a b", "a=b",
                                             "a\nb",   "a;b", "$(id)", "a'b", "é"};
    for (size_t i = 0; i < sizeof bad_models / sizeof bad_models[0]; i++)
        ok(!provider_model_valid(bad_models[i]), "model '%s' is refused", bad_models[i]);
    char longest[PROVIDER_MODEL_MAX + 2];
    memset(longest, 'a', sizeof longest - 1);
    longest[PROVIDER_MODEL_MAX] = '\0';
    ok(provider_model_valid(longest), "a model of PROVIDER_MODEL_MAX bytes is valid");
    longest[PROVIDER_MODEL_MAX] = 'a';
    longest[PROVIDER_MODEL_MAX + 1] = '\0';
    ok(!provider_model_valid(longest), "one byte more is refused");
    ok(!provider_model_valid(NULL), "NULL is no model");
    for (int i = 0; i < PROVIDER__COUNT; i++) {
        enum provider_id p = (enum provider_id)i;
        const struct runner_provider *a = runner_provider_for(p);
        /* A CLI reading its prompt on stdin has no argv limit; the others one under 128 KiB. */
        ok(a && (a->stdin_protocol
                     ? provider_caps[p].max_prompt == 0
                     : provider_caps[p].max_prompt > 0 && provider_caps[p].max_prompt < 128 * 1024),
           "%s: the prompt limit fits how the prompt is passed", provider_name(p));
    }

    /* A prompt over the kernel's argv limit is said as such, not as a missing CLI. */
    char *huge = malloc(200 * 1024);
    if (huge) {
        memset(huge, 'x', 200 * 1024 - 1);
        huge[200 * 1024 - 1] = '\0';
        char *av[] = {"true", huge, NULL}, *ev[] = {"PATH=/usr/bin:/bin", NULL};
        struct runner_spawn sp = {.argv = av, .envp = ev, .cwd = "/", .dir_fd = -1};
        struct runner_child ch;
        is_int(runner_child_spawn(&sp, &ch, &err), CGW_ERR_TOO_LARGE, "a 200 KiB argv word: E2BIG");
        ok(strstr(err.text, "prompt is too long for the command line") != NULL, "said so: %s",
           err.text);
        free(huge);
    }

    /* The one "turn failed with an inner API error" rule of the adapters. */
    turn_failed_is("{\"type\":\"error\",\"error\":{\"message\":\"boom\"}}",
                   "x: the turn failed: boom", "an API error's JSON");
    turn_failed_is("[API Error: {\"error\":{\"message\":\"quota\"}}]", "x: the turn failed: quota",
                   "JSON inside text");
    turn_failed_is("stream disconnected", "stream disconnected", "plain text");
    turn_failed_is("{not json}", "{not json}", "braces without JSON");
    turn_failed_is(NULL, "x: the turn failed", "no text");
    turn_failed_is("", "x: the turn failed", "empty text");

    /* Adapters without more state share the plain state functions. */
    struct event_ctx ctx = {"s", "r", "x"};
    struct runner_request req = {0};
    struct runner_state *rs = runner_state_new(&ctx, &req);
    ok(rs && rs->ctx == &ctx && rs->req == &req, "runner_state_new holds ctx and req");
    runner_state_free(rs);
    ok(runner_state_alloc(sizeof *rs - 1, &ctx, &req) == NULL,
       "a state smaller than the base: NULL");

    ok(runner_provider_for(PROVIDER__COUNT) == NULL, "out of range: no adapter");
    is_str(provider_name(PROVIDER__COUNT), "unknown", "out of range: unknown");
    config_free(&cfg);
    return done_testing();
}
