/* response.c: setting a response: a JSON body, or a protocol error. */
#include "fcgi/response.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/event.h"
#include "core/log.h"

void response_json(struct response *resp, int status, json_t *body)
{
    json_decref(resp->body);
    free(resp->text);
    resp->text = NULL;
    resp->status = status;
    resp->body = body;
}

void response_error(struct response *resp, enum cgw_code code, const char *session_id,
                    const char *fmt, ...)
{
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    response_json(resp, cgw_code_status(code), event_new_protocol_error(code, text, session_id));
}

void response_from_err(struct response *resp, const struct cgw_error *err, const char *session_id)
{
    enum cgw_code code = cgw_err_default_code(err->code);
    int status = cgw_code_status(code);
    if (status >= 500) {
        /* The client learns what is down, never how: the log has the detail. */
        log_error("%s", err->text);
        response_error(resp, code, session_id, "%s",
                       code == CODE_BACKEND_UNAVAILABLE ? "backend unavailable" : "internal error");
        return;
    }
    response_error(resp, code, session_id, "%s", err->text);
}

void response_text(struct response *resp, int status, const char *content_type, char *text)
{
    json_decref(resp->body);
    resp->body = NULL;
    free(resp->text);
    resp->text = NULL;
    if (!text) {
        response_error(resp, CODE_INTERNAL_ERROR, NULL, "internal error");
        return;
    }
    resp->status = status;
    resp->text = text;
    resp->content_type = content_type;
}

void response_clear(struct response *resp)
{
    json_decref(resp->body);
    free(resp->text);
    resp->body = NULL;
    resp->text = NULL;
}
