/* router.h: the route table of the API and the dispatcher. */
#ifndef CGW_FCGI_ROUTER_H
#define CGW_FCGI_ROUTER_H

#include "fcgi/app.h"
#include "fcgi/http.h"
#include "fcgi/worker.h"

typedef void (*handler_fn)(struct worker *w, struct request *req, const struct query *q,
                           struct response *resp);

/* Routes req: CORS preflight, 404 NOT_FOUND for unknown paths, 405 with Allow for a
 * known path with another method, authentication, then the handler. resp is filled. */
void router_dispatch(struct worker *w, struct request *req, struct response *resp);

#endif
