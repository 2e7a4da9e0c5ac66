/* response.h: the plain response struct a handler fills and the adapter writes, and
 * the error answers (DESIGN §3.2): a cgw_code or a cgw_err from the core becomes an
 * HTTP status and a protocol_error body here, through the one table of core/err.h. */
#ifndef CGW_FCGI_RESPONSE_H
#define CGW_FCGI_RESPONSE_H

#include <jansson.h>
#include <stdbool.h>

#include "core/err.h"

struct park;

struct response {
    int status;
    json_t *body;             /* owned; NULL = no body */
    char allow[64];           /* Allow header for 405, "" = none */
    bool cors;                /* add CORS headers for the request's origin */
    struct park *park;        /* set by a handler that holds the request (subscribe): main.c
                               * hands the request to the poller instead of answering it */
    char *text;               /* owned; a body that is not JSON (body is then NULL) */
    const char *content_type; /* of text; static, or type_buf */
    size_t text_len;          /* bytes of text when it is binary; 0: strlen(text) */
    char type_buf[160];       /* a content_type that is not static (an attachment's) */
    char headers[1536];       /* more header lines, each ending in CRLF; "" = none */
};

/* Sets resp to the protocol error of code with printf-style text (DESIGN §3.2).
 * session_id may be NULL. */
void response_error(struct response *resp, enum cgw_code code, const char *session_id,
                    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Sets resp to the error that a cgw_err from the core stands for (backend -> 503, ...);
 * the detail goes to the log, the client gets a generic text for 5xx. */
void response_from_err(struct response *resp, const struct cgw_error *err, const char *session_id);

/* Sets status and takes ownership of body (NULL: no body). */
void response_json(struct response *resp, int status, json_t *body);

/* Sets status and a body that is not JSON: text (takes ownership; NULL, out of memory,
 * is a 500) of content_type (static). */
void response_text(struct response *resp, int status, const char *content_type, char *text);

/* Frees what resp owns (body, text). */
void response_clear(struct response *resp);

#endif
