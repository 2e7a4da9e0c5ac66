/* test_response.c: error mapping at the edge of chatgw.fcgi (fcgi/response.c, DESIGN
 * §3.2): a cgw_code is its status and a protocol_error body; a cgw_err from the core
 * maps through the one table, and a 5xx never shows the client the detail. Plus the
 * request decoders' errors (http.c): 413, 415, 400 INVALID_JSON / INVALID_REQUEST. */
#include <stdlib.h>
#include <string.h>

#include "fcgi/http.h"
#include "fcgi/response.h"
#include "tap.h"

static const char *member(const struct response *r, const char *key)
{
    return json_string_value(json_object_get(r->body, key));
}

static void test_codes(void)
{
    static const struct {
        enum cgw_code code;
        int status;
        const char *name;
    } cases[] = {
        {CODE_INVALID_JSON, 400, "INVALID_JSON"},
        {CODE_SESSION_ID_REQUIRED, 400, "SESSION_ID_REQUIRED"},
        {CODE_UNAUTHORIZED, 401, "UNAUTHORIZED"},
        {CODE_SESSION_NOT_FOUND, 404, "SESSION_NOT_FOUND"},
        {CODE_METHOD_NOT_ALLOWED, 405, "METHOD_NOT_ALLOWED"},
        {CODE_RUN_IN_PROGRESS, 409, "RUN_IN_PROGRESS"},
        {CODE_PAYLOAD_TOO_LARGE, 413, "PAYLOAD_TOO_LARGE"},
        {CODE_UNSUPPORTED_MEDIA_TYPE, 415, "UNSUPPORTED_MEDIA_TYPE"},
        {CODE_TOO_MANY_REQUESTS, 429, "TOO_MANY_REQUESTS"},
        {CODE_INTERNAL_ERROR, 500, "INTERNAL_ERROR"},
        {CODE_BACKEND_UNAVAILABLE, 503, "BACKEND_UNAVAILABLE"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct response r = {0};
        response_error(&r, cases[i].code, i % 2 ? "s-1" : NULL, "text %d", (int)i);
        is_int(r.status, cases[i].status, "%s is %d", cases[i].name, cases[i].status);
        is_str(member(&r, "code"), cases[i].name, "%s in the body", cases[i].name);
        is_str(member(&r, "kind"), "protocol_error", "%s: kind protocol_error", cases[i].name);
        ok(member(&r, "timestamp") != NULL, "%s: timestamp", cases[i].name);
        if (i % 2)
            is_str(member(&r, "sessionId"), "s-1", "%s: sessionId", cases[i].name);
        else
            ok(json_is_null(json_object_get(r.body, "sessionId")), "%s: sessionId null",
               cases[i].name);
        json_decref(r.body);
    }
}

static void test_from_err(void)
{
    static const struct {
        enum cgw_err err;
        int status;
        const char *code, *text; /* the text the client sees */
    } cases[] = {
        {CGW_ERR_INVALID, 400, "INVALID_REQUEST", "the detail"},
        {CGW_ERR_NOT_FOUND, 404, "NOT_FOUND", "the detail"},
        {CGW_ERR_CONFLICT, 409, "RUN_IN_PROGRESS", "the detail"},
        {CGW_ERR_UNAUTHORIZED, 401, "UNAUTHORIZED", "the detail"},
        {CGW_ERR_TOO_LARGE, 413, "PAYLOAD_TOO_LARGE", "the detail"},
        {CGW_ERR_LIMIT, 429, "TOO_MANY_REQUESTS", "the detail"},
        {CGW_ERR_BACKEND, 503, "BACKEND_UNAVAILABLE", "backend unavailable"},
        {CGW_ERR_TIMEOUT, 503, "BACKEND_UNAVAILABLE", "backend unavailable"},
        {CGW_ERR_NOMEM, 500, "INTERNAL_ERROR", "internal error"},
        {CGW_ERR_IO, 500, "INTERNAL_ERROR", "internal error"},
        {CGW_ERR_INTERNAL, 500, "INTERNAL_ERROR", "internal error"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct response r = {0};
        struct cgw_error e;
        cgw_error_set(&e, cases[i].err, "the detail");
        response_from_err(&r, &e, NULL);
        const char *name = cgw_err_name(cases[i].err);
        is_int(r.status, cases[i].status, "%s -> %d", name, cases[i].status);
        is_str(member(&r, "code"), cases[i].code, "%s -> %s", name, cases[i].code);
        is_str(member(&r, "error"), cases[i].text, "%s: the client's text", name);
        json_decref(r.body);
    }
}

static void test_json_replaces(void)
{
    struct response r = {0};
    response_error(&r, CODE_NOT_FOUND, NULL, "first");
    response_json(&r, 200, json_pack("{s:b}", "ok", 1));
    is_int(r.status, 200, "response_json sets the status");
    ok(json_is_true(json_object_get(r.body, "ok")), "and replaces the body (no leak: ASan)");
    json_decref(r.body);
}

static void body_error(struct config *cfg, const char *type, const char *body, bool too_large,
                       int status, const char *code)
{
    struct request req = {0};
    struct response r = {0};
    req.content_type = (char *)type;
    req.body = (char *)body;
    req.body_len = body ? strlen(body) : 0;
    req.body_too_large = too_large;
    json_t *v = http_json_body(&req, cfg, false, &r);
    ok(v == NULL, "%s: refused", code);
    is_int(r.status, status, "%s: %d", code, status);
    is_str(member(&r, "code"), code, "%s: code", code);
    json_decref(v);
    json_decref(r.body);
}

static void test_http_errors(struct config *cfg)
{
    body_error(cfg, "application/json", "{}", true, 413, "PAYLOAD_TOO_LARGE");
    body_error(cfg, "text/plain", "{}", false, 415, "UNSUPPORTED_MEDIA_TYPE");
    body_error(cfg, "application/json", "{", false, 400, "INVALID_JSON");
    body_error(cfg, "application/json", "[1]", false, 400, "INVALID_REQUEST");

    json_t *obj = json_pack("{s:i, s:i}", "sessionId", 1, "cwd", 2);
    static const char *const fields[] = {"sessionId", NULL};
    struct response r = {0};
    ok(http_only_fields(obj, fields, &r) < 0, "an unknown field is refused");
    is_int(r.status, 400, "unknown field: 400");
    ok(strstr(member(&r, "error"), "cwd") != NULL, "the text names the field");
    json_decref(r.body);
    json_decref(obj);
}

int main(void)
{
    struct config cfg;
    struct cgw_error err;
    plan_lazy();
    if (config_defaults(&cfg, &err) != CGW_OK)
        BAIL_OUT("config_defaults: %s", err.text);
    test_codes();
    test_from_err();
    test_json_replaces();
    test_http_errors(&cfg);
    config_free(&cfg);
    return done_testing();
}
