/* app.h: what every part of chatgw.fcgi shares: the process's configuration and the
 * plain request struct the FastCGI adapter fills (its answer: response.h). */
#ifndef CGW_FCGI_APP_H
#define CGW_FCGI_APP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/auth.h"
#include "core/bus.h"
#include "core/config.h"
#include "core/store.h"
#include "fcgi/response.h"

struct poller;
struct feed_backlog;
struct metrics;
struct auth_cache;

/* Read-only after start; shared by all threads. */
struct app {
    struct config cfg;
    struct bus_config bus_cfg;
    const char *config_path; /* the file the config came from, "" when none (for runners) */
    struct poller *poller;   /* the long-poll event loop of this process (poller.h) */
    struct feed_backlog *feed_backlog; /* feed frames Redis did not take (core/feed.h) */
    struct metrics *metrics;       /* this process's counters (metrics.h; atomic), may be NULL */
    struct auth_cache *auth_cache; /* passed token checks (core/auth_cache.h), may be NULL */
};

enum http_method {
    HTTP_GET = 1 << 0,
    HTTP_POST = 1 << 1,
    HTTP_PATCH = 1 << 2,
    HTTP_DELETE = 1 << 3,
    HTTP_PUT = 1 << 4,
    HTTP_OPTIONS = 1 << 5,
    HTTP_HEAD = 1 << 6,
    HTTP_OTHER = 1 << 7,
};

#define REQUEST_MAX_PARAMS 4 /* path parameters like {id} */

/* A request as the handlers see it: everything copied out of libfcgi at accept. */
struct request {
    enum http_method method;
    char method_name[16];
    char *path;                /* below http.prefix, without the query: "/sessions/abc" */
    char *query;               /* raw QUERY_STRING, "" when none */
    char *content_type;        /* may be NULL */
    char *authorization;       /* may be NULL */
    char *remote_user;         /* may be NULL */
    char *origin;              /* may be NULL */
    char *remote_addr;         /* REMOTE_ADDR, the client as the web server saw it; may be NULL */
    char *last_event_id;       /* the Last-Event-ID header (GET /chat/stream); may be NULL */
    char *content_disposition; /* the Content-Disposition header (uploads); may be NULL */
    char *body;                /* NUL-terminated, body_len bytes; NULL when empty */
    size_t body_len;
    bool body_too_large; /* CONTENT_LENGTH over the route's limit (adapter_body_limit) */
    char request_id[24];
    const char *params[REQUEST_MAX_PARAMS]; /* path parameters, borrowed from path_buf */
    size_t n_params;
    char *path_buf;
    int route;          /* index in the route table (router_route_at), -1: none yet */
    int64_t started_us; /* metrics_now_us() when it was accepted */

    /* Filled by authentication. */
    bool authenticated;
    struct store_user user;
    char token_public[AUTH_PUBLIC_LEN +
                      1]; /* the public part of the token it came with, "" when none */
};

#endif
