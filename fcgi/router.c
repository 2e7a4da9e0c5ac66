/* router.c: the route table (method, path pattern, handler, auth) and its dispatcher. */
#include "fcgi/router.h"

#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "fcgi/handlers.h"

enum route_auth { AUTH_NONE, AUTH_TOKEN, AUTH_TOKEN_OR_TICKET };

struct route {
    enum http_method method;
    const char *pattern; /* segments; "{}" matches one segment and becomes a parameter */
    handler_fn fn;
    enum route_auth auth;
    bool one_read; /* the token and the handler's SQLite reads share one read snapshot */
};

static const struct route routes[] = {
    {HTTP_GET, "/health", h_health, AUTH_NONE, false},
    {HTTP_GET, "/providers", h_providers, AUTH_TOKEN, false},
    {HTTP_POST, "/sessions", h_session_create, AUTH_TOKEN, false},
    {HTTP_POST, "/providers/sessions", h_session_create, AUTH_TOKEN, false},
    {HTTP_GET, "/sessions", h_session_list, AUTH_TOKEN, false},
    {HTTP_GET, "/sessions/{}", h_session_get, AUTH_TOKEN, false},
    {HTTP_PATCH, "/sessions/{}", h_session_patch, AUTH_TOKEN, false},
    {HTTP_DELETE, "/sessions/{}", h_session_delete, AUTH_TOKEN, false},
    {HTTP_GET, "/sessions/{}/messages", h_session_messages, AUTH_TOKEN, false},
    {HTTP_POST, "/sessions/{}/attachments", h_attachment_upload, AUTH_TOKEN, false},
    {HTTP_GET, "/sessions/{}/attachments", h_attachment_list, AUTH_TOKEN, false},
    {HTTP_GET, "/sessions/{}/attachments/{}", h_attachment_get, AUTH_TOKEN, false},
    {HTTP_DELETE, "/sessions/{}/attachments/{}", h_attachment_delete, AUTH_TOKEN, false},
    {HTTP_POST, "/chat/send", h_chat_send, AUTH_TOKEN, false},
    {HTTP_POST, "/chat/abort", h_chat_abort, AUTH_TOKEN, false},
    {HTTP_POST, "/chat/permission", h_chat_permission, AUTH_TOKEN, false},
    {HTTP_GET, "/chat/subscribe", h_subscribe, AUTH_TOKEN_OR_TICKET, true},
    {HTTP_POST, "/chat/subscribe", h_subscribe, AUTH_TOKEN, true},
    {HTTP_GET, "/chat/stream", h_stream, AUTH_TOKEN_OR_TICKET, true},
    {HTTP_POST, "/chat", h_chat_envelope, AUTH_TOKEN, false},
    {HTTP_POST, "/auth/ticket", h_auth_ticket, AUTH_TOKEN, false},
    {HTTP_GET, "/rules", h_rules_list, AUTH_TOKEN, false},
    {HTTP_DELETE, "/rules/{}", h_rules_delete, AUTH_TOKEN, false},
    /* metrics.allow and metrics.token decide, not the user tokens (h_metrics.c) */
    {HTTP_GET, "/metrics", h_metrics, AUTH_NONE, false},
    {HTTP_GET, "/openapi.yaml", h_openapi, AUTH_NONE, false},
};

static const struct {
    enum http_method method;
    const char *name;
} method_names[] = {
    {HTTP_GET, "GET"}, {HTTP_POST, "POST"},     {HTTP_PATCH, "PATCH"},
    {HTTP_PUT, "PUT"}, {HTTP_DELETE, "DELETE"}, {HTTP_OPTIONS, "OPTIONS"},
};

#define MAX_SEGMENTS 8

/* Splits a "/a/b/c" path into segments, in place. One trailing slash is forgiven; an
 * empty segment ("//") or too many segments is -1. */
static int split(char *p, char **segs)
{
    int n = 0;
    if (*p != '/')
        return -1;
    p++;
    while (*p) {
        char *end = p + strcspn(p, "/");
        if (end == p || n == MAX_SEGMENTS)
            return -1;
        segs[n++] = p;
        if (*end == '\0')
            break;
        *end = '\0';
        p = end + 1;
    }
    return n;
}

/* Matches the request's segments against pattern, walking the pattern in place (no copy,
 * no formatting: this runs for every route of every request); "{}" segments become
 * parameters. */
static bool match(const char *pattern, char *const *segs, int n, struct request *req)
{
    const char *p = pattern;
    size_t n_params = 0;

    for (int i = 0; i < n; i++) {
        if (*p != '/')
            return false; /* the pattern has fewer segments */
        p++;
        size_t len = strcspn(p, "/");
        if (len == 2 && p[0] == '{' && p[1] == '}') {
            if (n_params == REQUEST_MAX_PARAMS)
                return false;
            req->params[n_params++] = segs[i];
        } else if (strncmp(p, segs[i], len) != 0 || segs[i][len] != '\0') {
            return false;
        }
        p += len;
    }
    if (*p != '\0')
        return false; /* the pattern has more segments */
    req->n_params = n_params;
    return true;
}

/* The route of req's method and path (HEAD is served as GET), with req->params set, or
 * NULL with *allowed the methods the path takes (0: no such path). */
static const struct route *route_find(struct request *req, unsigned *allowed)
{
    char *segs[MAX_SEGMENTS];

    *allowed = 0;
    free(req->path_buf); /* split() cuts it up: a fresh copy each time */
    if (!(req->path_buf = strdup(req->path)))
        return NULL;
    int n_segs = split(req->path_buf, segs);
    for (size_t i = 0; n_segs >= 0 && i < sizeof routes / sizeof routes[0]; i++) {
        if (!match(routes[i].pattern, segs, n_segs, req))
            continue;
        *allowed |= routes[i].method;
        if (routes[i].method == req->method ||
            (req->method == HTTP_HEAD && routes[i].method == HTTP_GET))
            return &routes[i];
    }
    return NULL;
}

int router_route_at(size_t i, const char **method, const char **pattern)
{
    if (i >= sizeof routes / sizeof routes[0])
        return -1;
    *pattern = routes[i].pattern;
    *method = "?";
    for (size_t j = 0; j < sizeof method_names / sizeof method_names[0]; j++) {
        if (method_names[j].method == routes[i].method)
            *method = method_names[j].name;
    }
    return 0;
}

handler_fn router_find(struct request *req, unsigned *allowed)
{
    const struct route *r = route_find(req, allowed);
    return r ? r->fn : NULL;
}

void router_dispatch(struct worker *w, struct request *req, struct response *resp)
{
    unsigned allowed;
    struct query q;

    const struct route *found = route_find(req, &allowed);
    if (!req->path_buf) {
        response_error(resp, CODE_INTERNAL_ERROR, NULL, "internal error");
        return;
    }
    if (!found) {
        if (!allowed) {
            response_error(resp, CODE_NOT_FOUND, NULL, "no route for %s", req->path);
            return;
        }
        if (req->method == HTTP_OPTIONS) {
            /* CORS preflight: the adapter adds the Access-Control headers. */
            resp->status = 204;
            return;
        }
        size_t at = 0;
        for (size_t i = 0; i < sizeof method_names / sizeof method_names[0]; i++) {
            if (!(allowed & method_names[i].method))
                continue;
            int n = snprintf(resp->allow + at, sizeof resp->allow - at, "%s%s", at ? ", " : "",
                             method_names[i].name);
            if (n > 0 && at + (size_t)n < sizeof resp->allow)
                at += (size_t)n;
        }
        response_error(resp, CODE_METHOD_NOT_ALLOWED, NULL, "%s is not allowed on %s",
                       req->method_name, req->path);
        return;
    }
    req->route = (int)(found - routes);
    if (query_parse(req->query, &q) < 0) {
        response_error(resp, CODE_INVALID_REQUEST, NULL, "malformed query string");
        return;
    }
    /* Subscribe reads the token and its sessions' owners: one SQLite read snapshot for
     * both takes the WAL read lock once (make bench: the lock's mutex, shared by the
     * worker threads, was a futex wait per read). Without a snapshot they autocommit.
     * A bearer token's check is almost always answered by the process's cache
     * (auth_cache.h), which leaves one read (one session): that autocommits, without
     * the snapshot's BEGIN and COMMIT; find_owned opens one itself for several. */
    struct store *st = NULL;
    struct cgw_error err;
    if (found->one_read && found->auth != AUTH_NONE && !http_bearer(req) &&
        (worker_store(w, &st, &err) != CGW_OK || store_read_begin(st, &err) != CGW_OK))
        st = NULL;
    if (found->auth == AUTH_NONE ||
        http_authenticate(w, req, &q, found->auth == AUTH_TOKEN_OR_TICKET, resp) == 0)
        found->fn(w, req, &q, resp);
    store_read_end(st);
    query_free(&q);
}
