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

/* A Server-Sent Events answer (GET /chat/stream): writes the status line and headers
 * (text/event-stream, no-store, X-Accel-Buffering: no, CORS as adapter_write) without
 * Content-Length; the body follows with adapter_stream_put, the end with
 * adapter_finish(fr, true). Returns 0, or -1 when the client is gone. */
int adapter_stream_head(FCGX_Request *fr, const struct config *cfg, const struct request *req);

/* Writes len bytes of text and flushes them to the web server at once (FCGX_FFlush: one
 * FastCGI stdout record). Returns 0, or -1 when the connection is gone. */
int adapter_stream_put(FCGX_Request *fr, const char *text, size_t len);

void request_free(struct request *req);

/* Ends the FastCGI request (fr stays allocated for the next FCGX_Accept_r). With
 * answered, the end-request record goes out first. The connection is closed without
 * libfcgi's shutdown-and-wait (OS_Close: shutdown, then poll and read until the web
 * server closes its end, up to 2 s): what the web server sent since is read away
 * first, so the close does not reset the connection under the answer. Closes also
 * a connection the web server asked to keep (FCGI_KEEP_CONN). */
void adapter_finish(FCGX_Request *fr, bool answered);

/* Frees what a request that is about to be held no longer needs: libfcgi's stderr
 * stream (its 512-byte buffer and two structs; chatgw never writes to it), telling
 * libfcgi that only stdout is left to close (fr->nWriters), so closing stdout still
 * ends the request with FCGI_END_REQUEST. Call once, before poller_park, which frees
 * the input stream the same way. */
void adapter_park_trim(FCGX_Request *fr);

enum cors_match {
    CORS_NONE,  /* no CORS headers */
    CORS_EXACT, /* listed: Access-Control-Allow-Origin: <origin>, with credentials */
    CORS_ANY,   /* only "*" matched: Access-Control-Allow-Origin: *, no credentials */
};

/* How origin matches cfg->cors_origins. "null" (and an absent origin) never matches,
 * not even "*" or a literal "null" entry. */
enum cors_match cors_origin_match(const struct config *cfg, const char *origin);

#endif
