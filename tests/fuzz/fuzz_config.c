/* fuzz_config.c: libFuzzer target for the chatgw.conf parser and value parsers. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/auth.h"
#include "core/config.h"
#include "core/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct config cfg;
    struct cgw_error err;
    char buf[4096], value[256];
    int64_t v;
    bool b;

    if (config_defaults(&cfg, &err) != CGW_OK)
        return 0;
    if (config_parse_text(&cfg, (const char *)data, size, "fuzz", &err) == CGW_OK) {
        /* Whatever parsed must format back and re-parse to the same text. */
        for (const struct config_key *k = config_keys; k->name; k++) {
            char again[4096];
            if (config_format(&cfg, k, buf, sizeof buf) == 0 &&
                config_set(&cfg, k->name, buf, &err) == CGW_OK &&
                config_format(&cfg, k, again, sizeof again) == 0 && strcmp(buf, again) != 0)
                __builtin_trap();
        }
    }
    config_free(&cfg);

    size_t n = size < sizeof value - 1 ? size : sizeof value - 1;
    memcpy(value, data, n);
    value[n] = '\0';
    (void)cgw_parse_int64(value, INT64_MIN, INT64_MAX, &v);
    (void)cgw_parse_size(value, 0, INT64_MAX, &v);
    (void)cgw_parse_bool(value, &b);
    (void)cgw_uuid_valid(value);
    char pub[AUTH_PUBLIC_LEN + 1];
    (void)auth_token_public_id(value, pub);
    return 0;
}
