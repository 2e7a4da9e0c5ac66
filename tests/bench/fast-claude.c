/* fast-claude.c: a stand-in for the `claude` CLI (SDK stream-json mode) for make bench.
 *
 * Unlike tests/fixtures/fake-claude (Python, ~30 ms to start) it answers at once, so the
 * bench measures chatgw and not the fixture. It answers `initialize`, reads the user
 * message, prints system/init, then n assistant text messages, each with the text
 * "bench:<CLOCK_REALTIME in microseconds at print time>", then a result, and exits once
 * its stdin closes (like the real CLI). The prompt sets n and the pace:
 * "bench n=1000 rate=0" (rate in messages per second; 0 = all at once). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#define SESSION "0f9ab2c4-6c55-4c1e-9a3e-000000b3e4c1"

static long long now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void sleep_until_mono(double t)
{
    struct timespec ts = {(time_t)t, (long)((t - (double)(time_t)t) * 1e9)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) != 0)
        ;
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long arg(const char *prompt, const char *key, long dflt)
{
    const char *p = strstr(prompt, key);
    return p ? strtol(p + strlen(key), NULL, 10) : dflt;
}

int main(void)
{
    char *line = NULL;
    size_t cap = 0;
    char prompt[512] = "";
    bool have_prompt = false;

    while (!have_prompt && getline(&line, &cap, stdin) > 0) {
        json_t *msg = json_loads(line, 0, NULL);
        const char *type = json_string_value(json_object_get(msg, "type"));
        if (type && strcmp(type, "control_request") == 0) {
            const char *rid = json_string_value(json_object_get(msg, "request_id"));
            printf("{\"type\":\"control_response\",\"response\":{\"subtype\":\"success\","
                   "\"request_id\":\"%s\",\"response\":{}}}\n",
                   rid ? rid : "");
            fflush(stdout);
        } else if (type && strcmp(type, "user") == 0) {
            const char *c =
                json_string_value(json_object_get(json_object_get(msg, "message"), "content"));
            snprintf(prompt, sizeof prompt, "%s", c ? c : "");
            have_prompt = true;
        }
        json_decref(msg);
    }
    if (!have_prompt)
        return 2;
    long n = arg(prompt, "n=", 1), rate = arg(prompt, "rate=", 0);
    printf("{\"type\":\"system\",\"subtype\":\"init\",\"session_id\":\"" SESSION "\","
           "\"model\":\"claude-bench\",\"permissionMode\":\"default\",\"tools\":[]}\n");
    fflush(stdout);
    double t0 = mono_s();
    for (long i = 0; i < n; i++) {
        if (rate > 0)
            sleep_until_mono(t0 + (double)i / (double)rate);
        printf("{\"type\":\"assistant\",\"session_id\":\"" SESSION "\",\"message\":{\"id\":"
               "\"msg_bench%ld\",\"type\":\"message\",\"role\":\"assistant\",\"content\":"
               "[{\"type\":\"text\",\"text\":\"bench:%lld\"}]}}\n",
               i, now_us());
        if (rate > 0 || i == 0)
            fflush(stdout);
    }
    printf("{\"type\":\"result\",\"subtype\":\"success\",\"is_error\":false,\"session_id\":"
           "\"" SESSION "\",\"result\":\"done\",\"num_turns\":1,\"duration_ms\":1}\n");
    fflush(stdout);
    while (getline(&line, &cap, stdin) > 0)
        ;
    free(line);
    return 0;
}
