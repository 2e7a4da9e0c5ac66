/* fuzz_provider.c: libFuzzer target for one provider adapter's line parser, chosen at
 * build time with -DFUZZ_PROVIDER=<name>_provider: the input is a CLI's stdout, split
 * into lines as the runner does. Seeds: that CLI's recorded transcripts. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "runner/provider.h"

#ifndef FUZZ_PROVIDER
#error "build with -DFUZZ_PROVIDER=<name>_provider"
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct event_ctx ctx = {"2b1f0d6e-1111-4222-8333-444455556666", "run_f", "fuzz"};
    struct runner_request req = {0};
    struct runner_items items = {0};
    struct runner_buf in = {0};

    req.session_id = (char *)ctx.session_id;
    req.run_id = (char *)ctx.run_id;
    req.project_path = "/srv/ws";
    req.content = "fuzz";
    req.owner = 1;
    void *st = FUZZ_PROVIDER.state_new(&ctx, &req);
    if (!st)
        return 0;
    if (FUZZ_PROVIDER.start)
        FUZZ_PROVIDER.start(st, &in);
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
        FUZZ_PROVIDER.parse_line(st, line, strlen(line), &items, &in);
        for (size_t i = 0; i < items.n; i++) {
            if (items.v[i].type == RUNNER_ITEM_EVENT && !items.v[i].ev)
                __builtin_trap();
        }
        runner_items_clear(&items);
        free(line);
        at += n + 1;
    }
    if (FUZZ_PROVIDER.finish)
        FUZZ_PROVIDER.finish(st, &items);
    runner_items_clear(&items);
    runner_buf_free(&in);
    FUZZ_PROVIDER.state_free(st);
    return 0;
}
