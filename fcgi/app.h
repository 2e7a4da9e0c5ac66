/* app.h: what every handler of chatgw.fcgi shares: the configuration and per-thread
 * connections, and the plain request/response structs the FastCGI adapter fills. */
#ifndef CGW_FCGI_APP_H
#define CGW_FCGI_APP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/bus.h"
#include "core/config.h"
#include "core/err.h"
#include "core/store.h"

struct poller;
struct park;

/* Read-only after start; shared by all threads. */
struct app {
    struct config cfg;
    struct bus_config bus_cfg;
    const char *config_path; /* the file the config came from, "" when none (for runners) */
    struct poller *poller;   /* the long-poll event loop of this process (poller.h) */
};

/* One per worker thread: its own SQLite and Redis connections (opened lazily, so a
 * dead backend at start-up is a 503 per request, not a failed start). */
struct worker {
    const struct app *app;
    int index;
    struct store *store;
    struct bus *bus;
};

/* Returns the worker's store/bus, opening it when needed; CGW_ERR_BACKEND when the
 * backend cannot be reached (err says why). */
enum cgw_err worker_store(struct worker *w, struct store **out, struct cgw_error *err);
enum cgw_err worker_bus(struct worker *w, struct bus **out, struct cgw_error *err);
void worker_close(struct worker *w);

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
    char *path;          /* below http.prefix, without the query: "/sessions/abc" */
    char *query;         /* raw QUERY_STRING, "" when none */
    char *content_type;  /* may be NULL */
    char *authorization; /* may be NULL */
    char *remote_user;   /* may be NULL */
    char *origin;        /* may be NULL */
    char *body;          /* NUL-terminated, body_len bytes; NULL when empty */
    size_t body_len;
    bool body_too_large; /* CONTENT_LENGTH over limits.max_body */
    char request_id[24];
    const char *params[REQUEST_MAX_PARAMS]; /* path parameters, borrowed from path_buf */
    size_t n_params;
    char *path_buf;

    /* Filled by authentication. */
    bool authenticated;
    struct store_user user;
};

struct response {
    int status;
    json_t *body;      /* owned; NULL = no body */
    char allow[64];    /* Allow header for 405, "" = none */
    bool cors;         /* add CORS headers for the request's origin */
    struct park *park; /* set by a handler that holds the request (subscribe): main.c
                        * hands the request to the poller instead of answering it */
};

/* Sets resp to the protocol error of code with printf-style text (DESIGN §3.2).
 * session_id may be NULL. */
void response_error(struct response *resp, enum cgw_code code, const char *session_id,
                    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Sets resp to the error that a cgw_err from the core stands for (backend -> 503, ...);
 * the detail goes to the log, the client gets a generic text for 5xx. */
void response_from_err(struct response *resp, const struct cgw_error *err, const char *session_id);

/* Sets status and takes ownership of body. */
void response_json(struct response *resp, int status, json_t *body);

#endif
