/* fuzz_request.c: libFuzzer target for request decoding at the edge: query strings,
 * JSON bodies with the depth/type/size checks, and unknown-field rejection. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fcgi/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct config cfg;
    static int ready;
    struct cgw_error err;

    if (!ready) {
        if (config_defaults(&cfg, &err) != CGW_OK)
            return 0;
        cfg.max_body = 64 * 1024;
        ready = 1;
    }
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';

    /* The query decoder: every decoded pair is a C string without NULs. */
    struct query q;
    if (query_parse(text, &q) == 0) {
        for (size_t i = 0; i < q.n; i++) {
            if (!q.keys[i] || !q.values[i])
                __builtin_trap();
        }
        (void)query_get(&q, "sessionId");
        query_free(&q);
    }

    /* The body decoder: either a JSON object or a protocol error, never both. */
    struct request req = {0};
    struct response resp = {0};
    req.body = text;
    req.body_len = size;
    req.content_type = size & 1 ? "application/json; charset=utf-8" : NULL;
    json_t *body = http_json_body(&req, &cfg, true, &resp);
    if ((body == NULL) == (resp.body == NULL))
        __builtin_trap();
    if (body) {
        static const char *const fields[] = {"sessionId", "content", "options", NULL};
        struct response r2 = {0};
        if (http_only_fields(body, fields, &r2) < 0 && !r2.body)
            __builtin_trap();
        json_decref(r2.body);
    }
    json_decref(body);
    json_decref(resp.body);
    free(text);
    return 0;
}
