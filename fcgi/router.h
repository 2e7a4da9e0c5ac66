/* router.h: the route table of the API and the dispatcher. */
#ifndef CGW_FCGI_ROUTER_H
#define CGW_FCGI_ROUTER_H

#include "fcgi/app.h"
#include "fcgi/http.h"
#include "fcgi/worker.h"

typedef void (*handler_fn)(struct worker *w, struct request *req, const struct query *q,
                           struct response *resp);

/* The handler of req's method and path (HEAD is served as GET), with req->params set
 * (borrowed from req->path_buf, which this sets; request_free frees it), or NULL: then
 * *allowed holds the methods (enum http_method bits) the path takes, 0 when no route
 * has that path. For tests and tools: router_dispatch is what serves a request. */
handler_fn router_find(struct request *req, unsigned *allowed);

/* The method ("GET") and path pattern ("/sessions/{}": "{}" is a parameter) of row i
 * of the route table (static strings), for metrics labels and `chatgw.fcgi --routes`.
 * Returns 0, or -1 past the last row. */
int router_route_at(size_t i, const char **method, const char **pattern);

/* Routes req: CORS preflight, 404 NOT_FOUND for unknown paths, 405 with Allow for a
 * known path with another method, authentication, then the handler. resp is filled;
 * req->route is the row of the route found (router_route_at), else -1. */
void router_dispatch(struct worker *w, struct request *req, struct response *resp);

#endif
