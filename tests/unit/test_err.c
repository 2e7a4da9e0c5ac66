/* test_err.c: the error vocabulary and the protocol-code table. */
#include "core/err.h"
#include "tap.h"

int main(void)
{
    plan_lazy();
    /* Every code has a distinct name that maps back to it, and a 4xx/5xx status. */
    for (int i = 0; i < CODE__COUNT; i++) {
        enum cgw_code back;
        const char *name = cgw_code_name((enum cgw_code)i);
        ok(cgw_code_from_name(name, &back) == 0 && back == (enum cgw_code)i,
           "%s maps back to itself", name);
        int status = cgw_code_status((enum cgw_code)i);
        ok(status >= 400 && status < 600, "%s has an error status (%d)", name, status);
    }
    enum cgw_code c;
    ok(cgw_code_from_name("NOPE", &c) < 0, "unknown code name is rejected");

    /* The statuses of DESIGN §3.2. */
    is_int(cgw_code_status(CODE_INVALID_JSON), 400, "INVALID_JSON 400");
    is_int(cgw_code_status(CODE_UNAUTHORIZED), 401, "UNAUTHORIZED 401");
    is_int(cgw_code_status(CODE_SESSION_NOT_FOUND), 404, "SESSION_NOT_FOUND 404");
    is_int(cgw_code_status(CODE_METHOD_NOT_ALLOWED), 405, "METHOD_NOT_ALLOWED 405");
    is_int(cgw_code_status(CODE_RUN_IN_PROGRESS), 409, "RUN_IN_PROGRESS 409");
    is_int(cgw_code_status(CODE_PERMISSION_ALREADY_RESOLVED), 409, "ALREADY_RESOLVED 409");
    is_int(cgw_code_status(CODE_PAYLOAD_TOO_LARGE), 413, "PAYLOAD_TOO_LARGE 413");
    is_int(cgw_code_status(CODE_UNSUPPORTED_MEDIA_TYPE), 415, "UNSUPPORTED_MEDIA_TYPE 415");
    is_int(cgw_code_status(CODE_TOO_MANY_REQUESTS), 429, "TOO_MANY_REQUESTS 429");
    is_int(cgw_code_status(CODE_INTERNAL_ERROR), 500, "INTERNAL_ERROR 500");
    is_int(cgw_code_status(CODE_BACKEND_UNAVAILABLE), 503, "BACKEND_UNAVAILABLE 503");
    is_int(cgw_code_status(CODE_HOST_UNAVAILABLE), 503, "HOST_UNAVAILABLE 503");

    /* Every error has a name and a default code. */
    for (int i = 0; i < CGW_ERR__COUNT; i++) {
        const char *name = cgw_err_name((enum cgw_err)i);
        ok(name && *name && strcmp(name, "unknown") != 0, "error %d is named %s", i, name);
    }
    is_str(cgw_code_name(cgw_err_default_code(CGW_ERR_BACKEND)), "BACKEND_UNAVAILABLE",
           "a dead backend is 503");
    is_str(cgw_code_name(cgw_err_default_code(CGW_ERR_NOT_FOUND)), "NOT_FOUND", "not found");
    is_str(cgw_code_name(cgw_err_default_code(CGW_ERR_UNAUTHORIZED)), "UNAUTHORIZED", "401");
    is_str(cgw_code_name(cgw_err_default_code(CGW_ERR_NOMEM)), "INTERNAL_ERROR", "OOM is 500");
    is_str(cgw_err_name((enum cgw_err)999), "unknown", "out-of-range error");
    is_int(cgw_code_status((enum cgw_code)999), 500, "out-of-range code is 500");

    struct cgw_error e;
    enum cgw_err rc = cgw_error_set(&e, CGW_ERR_INVALID, "field %s: %d", "limit", 7);
    is_int(rc, CGW_ERR_INVALID, "cgw_error_set returns its code");
    is_int(e.code, CGW_ERR_INVALID, "code stored");
    is_str(e.text, "field limit: 7", "text formatted");
    char long_text[600];
    memset(long_text, 'x', sizeof long_text - 1);
    long_text[sizeof long_text - 1] = '\0';
    cgw_error_set(&e, CGW_ERR_IO, "%s", long_text);
    is_int(strlen(e.text), sizeof e.text - 1, "long text is cut, not overflowed");
    cgw_error_clear(&e);
    ok(e.code == CGW_OK && e.text[0] == '\0', "clear");
    is_int(cgw_error_set(NULL, CGW_ERR_IO, "x"), CGW_ERR_IO, "NULL error struct is fine");
    return done_testing();
}
