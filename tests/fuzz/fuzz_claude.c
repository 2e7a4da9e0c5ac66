/* fuzz_claude.c: libFuzzer target for the Claude stream-json line parser: the input is
 * a CLI's stdout, split into lines as the runner does. Seeds: the recorded transcripts. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "runner/provider.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct event_ctx ctx = {"2b1f0d6e-1111-4222-8333-444455556666", "run_f", "claude"};
    struct runner_request req = {0};
    struct runner_items items = {0};
    struct runner_buf in = {0};

    req.session_id = (char *)ctx.session_id;
    req.run_id = (char *)ctx.run_id;
    req.project_path = "/srv/ws";
    req.content = "fuzz";
    req.owner = 1;
    void *st = claude_provider.state_new(&ctx, &req);
    if (!st)
        return 0;
    if (claude_provider.start)
        claude_provider.start(st, &in);
    size_t at = 0;
    while (at < size) {
        const uint8_t *nl = memchr(data + at, '\n', size - at);
        size_t n = nl ? (size_t)(nl - (data + at)) : size - at;
        char *line = malloc(n + 1);
        if (!line)
            break;
        memcpy(line, data + at, n);
        line[n] = '\0';
        /* Lines with a NUL inside are cut there, as the runner's reader does. */
        claude_provider.parse_line(st, line, strlen(line), &items, &in);
        for (size_t i = 0; i < items.n; i++) {
            if (items.v[i].type == RUNNER_ITEM_EVENT && !items.v[i].ev)
                __builtin_trap();
        }
        runner_items_clear(&items);
        free(line);
        at += n + 1;
    }
    if (claude_provider.finish)
        claude_provider.finish(st, &items);
    runner_items_clear(&items);
    runner_buf_free(&in);
    claude_provider.state_free(st);
    return 0;
}
