/* fuzz_upload.c: libFuzzer target for the upload decoders (fcgi/upload.c): multipart
 * bodies, Content-Disposition parameters, media types, names, data: URLs. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fcgi/upload.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct upload_part part;
    char why[160], buf[UPLOAD_NAME_MAX + 1], type[UPLOAD_TYPE_MAX + 1], *text;
    void *out = NULL;
    size_t len = 0;

    if (upload_multipart_file((const char *)data, size, "multipart/form-data; boundary=bNd", &part,
                              why, sizeof why) == 0) {
        /* The part lies inside the body. */
        if (part.data < (const char *)data || part.data + part.len > (const char *)data + size)
            __builtin_trap();
        (void)upload_magic_ok(part.type, part.data, part.len);
    }
    if (upload_data_url((const char *)data, size, 4096, type, sizeof type, &out, &len) == 0) {
        if (len > 4096 || !out)
            __builtin_trap();
        free(out);
    }
    if (!(text = malloc(size + 1)))
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    (void)upload_disposition_param(text, "filename", buf, sizeof buf);
    upload_media_type(text, type, sizeof type);
    (void)upload_type_allowed(type);
    (void)upload_is_multipart(text);
    (void)upload_multipart_file((const char *)data, size, text, &part, why, sizeof why);
    snprintf(buf, sizeof buf, "%s", text);
    upload_clean_name(buf, sizeof buf, "attachment");
    if (strlen(buf) > UPLOAD_NAME_MAX || strchr(buf, '/'))
        __builtin_trap();
    free(text);
    return 0;
}
