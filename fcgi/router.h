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

/* Routes req: CORS preflight, 404 NOT_FOUND for unknown paths, 405 with Allow for a
 * known path with another method, authentication, then the handler. resp is filled. */
void router_dispatch(struct worker *w, struct request *req, struct response *resp);

#endif
