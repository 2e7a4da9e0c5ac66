/* http_client.h: chatgwctl's HTTP client for the chatgw API (the only module that sees libcurl).
 *
 * One client holds one curl handle (its connection is reused across requests), the
 * base URL ($CHATGW_URL, the API's mount point) and the token sent as
 * "Authorization: Bearer". Requests send and answer JSON; the answer's body is decoded
 * here, at the edge, with a cap on its size. A request can be cut short by a cancel
 * callback the caller gives (checked while the transfer waits, at least once a second),
 * which is how a Ctrl-C ends a held long-poll.
 *
 * Not thread-safe: one client per thread.
 */
#ifndef CGW_CTL_HTTP_CLIENT_H
#define CGW_CTL_HTTP_CLIENT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/err.h"

/* The most an answer body may hold; a larger one is an error (CGW_ERR_TOO_LARGE). */
#define HTTP_CLIENT_MAX_BODY (64u << 20)

struct http_client;

/* What one request got back. */
struct http_answer {
    long status;     /* the HTTP status; 0 when no answer came (transport error) */
    json_t *json;    /* the decoded body (new reference, http_answer_clear), or NULL */
    char code[64];   /* the error body's "code" ("SESSION_NOT_FOUND"), or "" */
    char error[256]; /* the error body's "error" text, or "" */
};

/* Returns true when the transfer in progress should stop (arg is the caller's). */
typedef bool (*http_cancel_fn)(void *arg);

/* Makes a client for base_url (no trailing slash needed); token may be NULL or "" (then
 * no Authorization header is sent, for a server that trusts REMOTE_USER). Returns CGW_OK
 * and *out (free with http_client_free), or an error with text in err. */
enum cgw_err http_client_new(const char *base_url, const char *token, struct http_client **out,
                             struct cgw_error *err);
void http_client_free(struct http_client *c);

/* Sets the callback checked while a transfer runs; NULL removes it. */
void http_client_set_cancel(struct http_client *c, http_cancel_fn fn, void *arg);

/* Sends method to base_url + path (path starts with '/', already URL-encoded) with body
 * as JSON (borrowed; NULL: no body), waiting at most timeout_ms for the whole exchange.
 * Returns CGW_OK when an answer came, whatever its status (ans filled: status, json, and
 * for an error body code/error); CGW_ERR_IO for a transport error (connection refused,
 * reset, timeout; ans->status 0), CGW_ERR_TIMEOUT when the cancel callback stopped it,
 * CGW_ERR_TOO_LARGE or CGW_ERR_INVALID for an answer over the cap or not JSON,
 * CGW_ERR_NOMEM. err holds the text. Clears ans first; the caller clears it after. */
enum cgw_err http_request(struct http_client *c, const char *method, const char *path,
                          const json_t *body, long timeout_ms, struct http_answer *ans,
                          struct cgw_error *err);

/* Releases what ans holds and empties it. */
void http_answer_clear(struct http_answer *ans);

/* Appends s to buf (of size cap, NUL-terminated) percent-encoded for a query value.
 * Returns 0, or -1 when it does not fit (buf is then unchanged). */
int http_query_append(char *buf, size_t cap, const char *s);

#endif
