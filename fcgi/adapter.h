/* adapter.h: FCGX_Request <-> struct request / struct response. The only place besides
 * main.c that sees libfcgi. */
#ifndef CGW_FCGI_ADAPTER_H
#define CGW_FCGI_ADAPTER_H

#include <fcgiapp.h>

#include "fcgi/app.h"

/* Copies method, path (below cfg->http_prefix), query and headers out of fr and reads
 * the body up to cfg->max_body (marking body_too_large past it). Returns 0, or -1 when
 * memory ran out. The request must be released with request_free. */
int adapter_read(FCGX_Request *fr, const struct config *cfg, struct request *req);

/* Writes status line, headers (JSON content type, no-store, CORS for allowed origins,
 * Allow) and the body. Returns 0, or -1 when the client is gone. */
int adapter_write(FCGX_Request *fr, const struct config *cfg, const struct request *req,
                  const struct response *resp);

void request_free(struct request *req);

/* True when origin is one of cfg->cors_origins ("*" allows any). */
bool cors_origin_allowed(const struct config *cfg, const char *origin);

#endif
