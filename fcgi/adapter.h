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

/* Ends the FastCGI request (fr stays allocated for the next FCGX_Accept_r). With
 * answered, the end-request record goes out first. The connection is closed without
 * libfcgi's shutdown-and-wait (OS_Close: shutdown, then poll and read until the web
 * server closes its end, up to 2 s): what the web server sent since is read away
 * first, so the close does not reset the connection under the answer. Closes also
 * a connection the web server asked to keep (FCGI_KEEP_CONN). */
void adapter_finish(FCGX_Request *fr, bool answered);

/* A request detached from libfcgi while the poller holds it: its connection and
 * FastCGI request id, all that writing its answer as FastCGI records needs (the
 * answer's own inputs, method and origin, were copied out of the parsed request). */
struct fcgi_held {
    int fd;         /* the FastCGI connection; -1 once closed */
    int request_id; /* FastCGI requestId of the request */
};

/* Detaches fr's accepted request into *h: frees all libfcgi holds for it (the three
 * streams and their buffers, the parameters; their strings must no longer be in use:
 * adapter_read copied what is needed) and leaves fr without a connection, ready for
 * the next FCGX_Accept_r, which then accepts a new one. The request's body must have
 * been read. From here on only the adapter_held_* functions write to h. */
void adapter_detach(FCGX_Request *fr, struct fcgi_held *h);

/* adapter_write for a detached request: status line, headers and body as FCGI_STDOUT
 * records, then the end of the request (empty FCGI_STDOUT, FCGI_END_REQUEST), in one
 * write for any ordinary answer. Returns 0, or -1 when the connection is gone. */
int adapter_held_answer(const struct fcgi_held *h, const struct config *cfg,
                        const struct request *req, const struct response *resp);

/* A Server-Sent Events answer (GET /chat/stream) of a detached request: the status line
 * and headers (text/event-stream, no-store, X-Accel-Buffering: no, CORS as
 * adapter_write; no Content-Length) and then len bytes of text, together. Returns 0, or
 * -1 when the connection is gone. */
int adapter_held_stream_begin(const struct fcgi_held *h, const struct config *cfg,
                              const struct request *req, const char *text, size_t len);

/* Writes len bytes of a stream's text at once (one FCGI_STDOUT record per 64 KiB, so a
 * frame is one record); with end, the end of the request follows. Returns 0, or -1 when
 * the connection is gone. */
int adapter_held_stream_put(const struct fcgi_held *h, const char *text, size_t len, bool end);

/* Closes a detached request's connection the way adapter_finish does (what the web
 * server sent is read away first, no shutdown-and-wait; FCGI_KEEP_CONN or not). Without
 * an answer before it, the web server sees the connection end without one. */
void adapter_held_close(struct fcgi_held *h);

enum cors_match {
    CORS_NONE,  /* no CORS headers */
    CORS_EXACT, /* listed: Access-Control-Allow-Origin: <origin>, with credentials */
    CORS_ANY,   /* only "*" matched: Access-Control-Allow-Origin: *, no credentials */
};

/* How origin matches cfg->cors_origins. "null" (and an absent origin) never matches,
 * not even "*" or a literal "null" entry. */
enum cors_match cors_origin_match(const struct config *cfg, const char *origin);

#endif
