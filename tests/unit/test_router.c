/* test_router.c: the route table and the dispatcher of chatgw.fcgi, without a web
 * server or a backend: which handler a method and path reach, path parameters, 404
 * NOT_FOUND, 405 METHOD_NOT_ALLOWED with Allow, the CORS preflight, and 401 before any
 * handler runs. */
#include <stdlib.h>
#include <string.h>

#include "fcgi/handlers.h"
#include "fcgi/router.h"
#include "tap.h"

static struct app app;

static void req_init(struct request *req, enum http_method m, const char *name, const char *path)
{
    memset(req, 0, sizeof *req);
    req->method = m;
    snprintf(req->method_name, sizeof req->method_name, "%s", name);
    req->path = (char *)path;
    req->query = (char *)"";
}

/* The handler router_find gives method + path, and the methods the path takes. */
static handler_fn find(enum http_method m, const char *path, unsigned *allowed, struct request *req)
{
    req_init(req, m, "X", path);
    return router_find(req, allowed);
}

static void test_routes(void)
{
    static const struct {
        enum http_method m;
        const char *path;
        handler_fn fn;
    } cases[] = {
        {HTTP_GET, "/health", h_health},
        {HTTP_GET, "/providers", h_providers},
        {HTTP_POST, "/sessions", h_session_create},
        {HTTP_POST, "/providers/sessions", h_session_create},
        {HTTP_GET, "/sessions", h_session_list},
        {HTTP_GET, "/sessions/abc", h_session_get},
        {HTTP_PATCH, "/sessions/abc", h_session_patch},
        {HTTP_DELETE, "/sessions/abc", h_session_delete},
        {HTTP_GET, "/sessions/abc/messages", h_session_messages},
        {HTTP_POST, "/chat/send", h_chat_send},
        {HTTP_POST, "/chat/abort", h_chat_abort},
        {HTTP_POST, "/chat/permission", h_chat_permission},
        {HTTP_GET, "/chat/subscribe", h_subscribe},
        {HTTP_POST, "/chat/subscribe", h_subscribe},
        {HTTP_POST, "/chat", h_chat_envelope},
        {HTTP_HEAD, "/health", h_health},         /* HEAD is served as GET */
        {HTTP_GET, "/sessions/", h_session_list}, /* one trailing slash is forgiven */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct request req;
        unsigned allowed;
        handler_fn fn = find(cases[i].m, cases[i].path, &allowed, &req);
        ok(fn == cases[i].fn, "route %s (method %d)", cases[i].path, (int)cases[i].m);
        free(req.path_buf);
    }
}

static void test_params(void)
{
    struct request req;
    unsigned allowed;
    ok(find(HTTP_GET, "/sessions/5e1f/messages", &allowed, &req) == h_session_messages,
       "messages route");
    is_int(req.n_params, 1, "one path parameter");
    is_str(req.params[0], "5e1f", "the parameter is the {} segment");
    free(req.path_buf);
    ok(find(HTTP_GET, "/health", &allowed, &req) == h_health, "health route");
    is_int(req.n_params, 0, "no parameter on a fixed path");
    free(req.path_buf);
}

static void test_unknown(void)
{
    static const char *const unknown[] = {
        "/nope", "/sessions/a/b", "//sessions", "/sessions//messages", "/a/b/c/d/e/f/g/h/i/j",
        "",      "health",
    };
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        struct request req;
        unsigned allowed = 99;
        ok(!find(HTTP_GET, unknown[i], &allowed, &req) && allowed == 0, "no route: \"%s\"",
           unknown[i]);
        free(req.path_buf);
    }
    struct request req;
    unsigned allowed;
    ok(!find(HTTP_PUT, "/sessions/x", &allowed, &req), "PUT on a session: no handler");
    is_int(allowed, HTTP_GET | HTTP_PATCH | HTTP_DELETE, "the methods the path takes");
    free(req.path_buf);
}

/* router_dispatch up to the point where a backend would be needed. */
static void dispatch(enum http_method m, const char *name, const char *path, struct response *resp)
{
    struct worker w = {.app = &app};
    struct request req;
    req_init(&req, m, name, path);
    memset(resp, 0, sizeof *resp);
    router_dispatch(&w, &req, resp);
    free(req.path_buf);
}

static const char *body_code(const struct response *resp)
{
    return json_string_value(json_object_get(resp->body, "code"));
}

static void test_dispatch(void)
{
    struct response resp;

    dispatch(HTTP_GET, "GET", "/nope", &resp);
    is_int(resp.status, 404, "unknown path: 404");
    is_str(body_code(&resp), "NOT_FOUND", "unknown path: NOT_FOUND");
    is_str(json_string_value(json_object_get(resp.body, "kind")), "protocol_error",
           "a protocol_error body");
    json_decref(resp.body);

    dispatch(HTTP_PUT, "PUT", "/sessions/x", &resp);
    is_int(resp.status, 405, "known path, other method: 405");
    is_str(body_code(&resp), "METHOD_NOT_ALLOWED", "METHOD_NOT_ALLOWED");
    is_str(resp.allow, "GET, PATCH, DELETE", "Allow lists the path's methods");
    json_decref(resp.body);

    dispatch(HTTP_GET, "GET", "/chat/send", &resp);
    is_int(resp.status, 405, "GET /chat/send: 405");
    is_str(resp.allow, "POST", "Allow: POST");
    json_decref(resp.body);

    dispatch(HTTP_OPTIONS, "OPTIONS", "/chat/send", &resp);
    is_int(resp.status, 204, "CORS preflight on a known path: 204");
    ok(resp.body == NULL, "without a body");

    dispatch(HTTP_OPTIONS, "OPTIONS", "/nope", &resp);
    is_int(resp.status, 404, "preflight on an unknown path: 404");
    json_decref(resp.body);

    dispatch(HTTP_POST, "POST", "/chat/send", &resp);
    is_int(resp.status, 401, "no token: 401 before the handler");
    is_str(body_code(&resp), "UNAUTHORIZED", "UNAUTHORIZED");
    json_decref(resp.body);
}

int main(void)
{
    struct cgw_error err;
    plan_lazy();
    if (config_defaults(&app.cfg, &err) != CGW_OK)
        BAIL_OUT("config_defaults: %s", err.text);
    test_routes();
    test_params();
    test_unknown();
    test_dispatch();
    config_free(&app.cfg);
    return done_testing();
}
