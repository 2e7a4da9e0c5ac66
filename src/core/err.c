/* err.c: names of errors and the protocol-code table (DESIGN §3.2). */
#include "core/err.h"

#include <stdio.h>
#include <string.h>

static const char *const err_names[CGW_ERR__COUNT] = {
    [CGW_OK] = "ok",
    [CGW_ERR_NOMEM] = "out_of_memory",
    [CGW_ERR_INVALID] = "invalid",
    [CGW_ERR_NOT_FOUND] = "not_found",
    [CGW_ERR_CONFLICT] = "conflict",
    [CGW_ERR_STALE] = "stale_run",
    [CGW_ERR_UNAUTHORIZED] = "unauthorized",
    [CGW_ERR_TOO_LARGE] = "too_large",
    [CGW_ERR_LIMIT] = "limit",
    [CGW_ERR_TIMEOUT] = "timeout",
    [CGW_ERR_BACKEND] = "backend_unavailable",
    [CGW_ERR_IO] = "io",
    [CGW_ERR_INTERNAL] = "internal",
    [CGW_ERR_BUSY] = "busy",
};

/* The one table: protocol name, HTTP status, and the error it stands for. */
static const struct {
    const char *name;
    int status;
    enum cgw_err err;
} codes[CODE__COUNT] = {
    [CODE_INVALID_JSON] = {"INVALID_JSON", 400, CGW_ERR_INVALID},
    [CODE_INVALID_REQUEST] = {"INVALID_REQUEST", 400, CGW_ERR_INVALID},
    [CODE_SESSION_ID_REQUIRED] = {"SESSION_ID_REQUIRED", 400, CGW_ERR_INVALID},
    [CODE_CONTENT_REQUIRED] = {"CONTENT_REQUIRED", 400, CGW_ERR_INVALID},
    [CODE_PROVIDER_REQUIRED] = {"PROVIDER_REQUIRED", 400, CGW_ERR_INVALID},
    [CODE_UNSUPPORTED_PROVIDER] = {"UNSUPPORTED_PROVIDER", 400, CGW_ERR_INVALID},
    [CODE_PROJECT_PATH_REQUIRED] = {"PROJECT_PATH_REQUIRED", 400, CGW_ERR_INVALID},
    [CODE_PROJECT_PATH_NOT_ALLOWED] = {"PROJECT_PATH_NOT_ALLOWED", 400, CGW_ERR_INVALID},
    [CODE_REQUEST_ID_REQUIRED] = {"REQUEST_ID_REQUIRED", 400, CGW_ERR_INVALID},
    [CODE_UNKNOWN_MESSAGE_TYPE] = {"UNKNOWN_MESSAGE_TYPE", 400, CGW_ERR_INVALID},
    [CODE_REMEMBER_ENTRY_INVALID] = {"REMEMBER_ENTRY_INVALID", 400, CGW_ERR_INVALID},
    [CODE_UNAUTHORIZED] = {"UNAUTHORIZED", 401, CGW_ERR_UNAUTHORIZED},
    [CODE_SESSION_NOT_FOUND] = {"SESSION_NOT_FOUND", 404, CGW_ERR_NOT_FOUND},
    [CODE_PERMISSION_NOT_FOUND] = {"PERMISSION_NOT_FOUND", 404, CGW_ERR_NOT_FOUND},
    [CODE_RULE_NOT_FOUND] = {"RULE_NOT_FOUND", 404, CGW_ERR_NOT_FOUND},
    [CODE_NOT_FOUND] = {"NOT_FOUND", 404, CGW_ERR_NOT_FOUND},
    [CODE_METHOD_NOT_ALLOWED] = {"METHOD_NOT_ALLOWED", 405, CGW_ERR_INVALID},
    [CODE_RUN_IN_PROGRESS] = {"RUN_IN_PROGRESS", 409, CGW_ERR_CONFLICT},
    [CODE_NO_ACTIVE_RUN] = {"NO_ACTIVE_RUN", 409, CGW_ERR_CONFLICT},
    [CODE_PERMISSION_ALREADY_RESOLVED] = {"PERMISSION_ALREADY_RESOLVED", 409, CGW_ERR_CONFLICT},
    [CODE_PAYLOAD_TOO_LARGE] = {"PAYLOAD_TOO_LARGE", 413, CGW_ERR_TOO_LARGE},
    [CODE_UNSUPPORTED_MEDIA_TYPE] = {"UNSUPPORTED_MEDIA_TYPE", 415, CGW_ERR_INVALID},
    [CODE_TOO_MANY_REQUESTS] = {"TOO_MANY_REQUESTS", 429, CGW_ERR_LIMIT},
    [CODE_INTERNAL_ERROR] = {"INTERNAL_ERROR", 500, CGW_ERR_INTERNAL},
    [CODE_BACKEND_UNAVAILABLE] = {"BACKEND_UNAVAILABLE", 503, CGW_ERR_BACKEND},
    [CODE_SERVER_BUSY] = {"SERVER_BUSY", 503, CGW_ERR_BUSY},
    [CODE_HOST_UNAVAILABLE] = {"HOST_UNAVAILABLE", 503, CGW_ERR_BACKEND},
    [CODE_ATTACHMENT_NOT_FOUND] = {"ATTACHMENT_NOT_FOUND", 404, CGW_ERR_NOT_FOUND},
    [CODE_ATTACHMENT_TOO_LARGE] = {"ATTACHMENT_TOO_LARGE", 413, CGW_ERR_TOO_LARGE},
    [CODE_ATTACHMENT_TYPE] = {"ATTACHMENT_TYPE", 415, CGW_ERR_INVALID},
    [CODE_ATTACHMENT_LIMIT] = {"ATTACHMENT_LIMIT", 409, CGW_ERR_LIMIT},
    [CODE_ATTACHMENTS_UNSUPPORTED] = {"ATTACHMENTS_UNSUPPORTED", 400, CGW_ERR_INVALID},
};

/* The code used for an error when the handler has nothing more specific. */
static const enum cgw_code err_default_codes[CGW_ERR__COUNT] = {
    [CGW_OK] = CODE_INTERNAL_ERROR,
    [CGW_ERR_NOMEM] = CODE_INTERNAL_ERROR,
    [CGW_ERR_INVALID] = CODE_INVALID_REQUEST,
    [CGW_ERR_NOT_FOUND] = CODE_NOT_FOUND,
    [CGW_ERR_CONFLICT] = CODE_RUN_IN_PROGRESS,
    [CGW_ERR_STALE] = CODE_NO_ACTIVE_RUN,
    [CGW_ERR_UNAUTHORIZED] = CODE_UNAUTHORIZED,
    [CGW_ERR_TOO_LARGE] = CODE_PAYLOAD_TOO_LARGE,
    [CGW_ERR_LIMIT] = CODE_TOO_MANY_REQUESTS,
    [CGW_ERR_TIMEOUT] = CODE_BACKEND_UNAVAILABLE,
    [CGW_ERR_BACKEND] = CODE_BACKEND_UNAVAILABLE,
    [CGW_ERR_IO] = CODE_INTERNAL_ERROR,
    [CGW_ERR_INTERNAL] = CODE_INTERNAL_ERROR,
    [CGW_ERR_BUSY] = CODE_SERVER_BUSY,
};

const char *cgw_err_name(enum cgw_err err)
{
    if ((unsigned)err >= CGW_ERR__COUNT)
        return "unknown";
    return err_names[err];
}

const char *cgw_code_name(enum cgw_code code)
{
    if ((unsigned)code >= CODE__COUNT)
        return codes[CODE_INTERNAL_ERROR].name;
    return codes[code].name;
}

int cgw_code_status(enum cgw_code code)
{
    if ((unsigned)code >= CODE__COUNT)
        return 500;
    return codes[code].status;
}

int cgw_code_from_name(const char *name, enum cgw_code *out)
{
    for (int i = 0; i < CODE__COUNT; i++) {
        if (strcmp(codes[i].name, name) == 0) {
            *out = (enum cgw_code)i;
            return 0;
        }
    }
    return -1;
}

enum cgw_code cgw_err_default_code(enum cgw_err err)
{
    if ((unsigned)err >= CGW_ERR__COUNT)
        return CODE_INTERNAL_ERROR;
    return err_default_codes[err];
}

enum cgw_err cgw_error_vset(struct cgw_error *e, enum cgw_err code, const char *fmt, va_list ap)
{
    if (e) {
        e->code = code;
        vsnprintf(e->text, sizeof e->text, fmt, ap);
    }
    return code;
}

enum cgw_err cgw_error_set(struct cgw_error *e, enum cgw_err code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cgw_error_vset(e, code, fmt, ap);
    va_end(ap);
    return code;
}

void cgw_error_clear(struct cgw_error *e)
{
    if (e) {
        e->code = CGW_OK;
        e->text[0] = '\0';
    }
}
