/* test_metrics.c: fcgi/metrics.c without a web server: who metrics.allow lets in (the
 * integration test's client is always 127.0.0.1, so the refusals are tested here), and
 * what an answer counts (route and status, histogram, frames, permission outcomes). */
#include <stdlib.h>
#include <string.h>

#include "fcgi/metrics.h"
#include "tap.h"

static void test_allow(void)
{
    static const struct {
        const char *allow, *addr;
        bool want;
    } cases[] = {
        {"loopback", "127.0.0.1", true},
        {"loopback", "127.8.9.10", true},
        {"loopback", "::1", true},
        {"loopback", "::ffff:127.0.0.1", true},
        {"loopback", "10.0.0.1", false},
        {"loopback", "128.0.0.1", false},
        {"loopback", "::ffff:10.0.0.1", false},
        {"loopback", "2001:db8::1", false},
        {"loopback", "", false},
        {"loopback", NULL, false},
        {"loopback", "localhost", false},
        {"any", "192.0.2.7", true},
        {"any", NULL, true},
        {"off", "127.0.0.1", false},
        {"bogus", "127.0.0.1", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        is_int(metrics_client_allowed(cases[i].allow, cases[i].addr), cases[i].want,
               "metrics.allow=%s, client %s", cases[i].allow,
               cases[i].addr ? cases[i].addr : "(none)");
}

static void test_render(void)
{
    static const char *const method[] = {"GET", "POST"};
    static const char *const pattern[] = {"/health", "/chat/permission"};
    struct metrics *m = metrics_new(method, pattern, 2);
    struct metrics_gauges g = {.polls_held = 2,
                               .polls_total = 5,
                               .runs_running = -1,
                               .cache_hits = {[METRICS_CACHE_OWNER] = 9},
                               .cache_misses = {[METRICS_CACHE_TOKEN] = 4}};
    json_t *frames = json_pack("{s:[{s:s},{s:s}]}", "frames", "kind", "a", "kind", "b");
    json_t *deny = json_pack("{s:s, s:b}", "requestId", "perm_1", "allow", 0);
    json_t *gone = json_pack("{s:s}", "code", "PERMISSION_NOT_FOUND");

    ok(m != NULL, "metrics_new");
    metrics_answer(m, 0, 200, 3000, NULL);
    metrics_answer(m, 0, 200, 2000000, frames);
    metrics_answer(m, 1, 200, 10, deny);
    metrics_answer(m, 1, 404, 10, gone);
    metrics_answer(m, -1, 418, 10, NULL);
    metrics_answer(NULL, 0, 200, 1, NULL); /* no metrics: nothing, no crash */
    char *text = metrics_render(m, &g);
    ok(text != NULL, "rendered");
    const char *want[] = {
        "chatgw_http_responses_total{process=\"",
        ",route=\"GET /health\",status=\"200\"} 2\n",
        ",route=\"none\",status=\"other\"} 1\n",
        ",route=\"GET /health\",le=\"0.005\"} 1\n",
        ",route=\"GET /health\",le=\"2.5\"} 2\n",
        ",route=\"GET /health\",le=\"+Inf\"} 2\n",
        "chatgw_http_request_duration_seconds_count{",
        "chatgw_subscribe_frames_total{process=\"",
        "\"} 2\n# HELP chatgw_permission_answers_total",
        ",outcome=\"deny\"} 1\n",
        ",outcome=\"not_found\"} 1\n",
        ",outcome=\"allow\"} 0\n",
        "chatgw_polls_held{process=\"",
        "# TYPE chatgw_http_request_duration_seconds histogram\n",
        "# TYPE chatgw_cache_lookups_total counter\n",
        ",cache=\"owner\",result=\"hit\"} 9\n",
        ",cache=\"token\",result=\"miss\"} 4\n",
        ",cache=\"session\",result=\"hit\"} 0\n",
    };
    for (size_t i = 0; text && i < sizeof want / sizeof want[0]; i++)
        ok(strstr(text, want[i]) != NULL, "the exposition has %s", want[i]);
    ok(text && !strstr(text, "chatgw_runs_running{"), "no running gauge while Redis is down");
    ok(text && text[strlen(text) - 1] == '\n', "ends with a newline");
    free(text);
    json_decref(frames);
    json_decref(deny);
    json_decref(gone);
    metrics_free(m);
}

int main(void)
{
    test_allow();
    test_render();
    return done_testing();
}
