/* http.h: decoding at the edge: query strings, JSON bodies with depth and type checks,
 * authentication of a request. */
#ifndef CGW_FCGI_HTTP_H
#define CGW_FCGI_HTTP_H

#include "fcgi/app.h"
#include "fcgi/worker.h"

/* A decoded query string: n pairs in the order given. */
struct query {
    char **keys;
    char **values;
    size_t n;
};

/* Decodes application/x-www-form-urlencoded text ('+' is a space, %XX escapes). A bad
 * escape or a decoded NUL is -1 (the caller answers 400). */
int query_parse(const char *raw, struct query *q);
void query_free(struct query *q);

/* The first value of key, or NULL. */
const char *query_get(const struct query *q, const char *key);

/* Parses the body as a JSON object: checks the media type (415), size (413), nesting
 * depth (cfg limits.max_json_depth) and syntax (400 INVALID_JSON), and that the top is
 * an object (400 INVALID_REQUEST). Returns a new reference, or NULL with resp set. An
 * empty body is {} when empty_ok. */
json_t *http_json_body(const struct request *req, const struct config *cfg, bool empty_ok,
                       struct response *resp);

/* Rejects members of obj not in allowed (NULL-terminated): 400 INVALID_REQUEST naming
 * the first unknown one. Returns 0, or -1 with resp set. */
int http_only_fields(const json_t *obj, const char *const *allowed, struct response *resp);

/* The token of an "Authorization: Bearer <token>" header (borrowed), or NULL. */
const char *http_bearer(const struct request *req);

/* Authenticates req (Bearer token; a subscribe ticket, ?ticket=, when allow_ticket;
 * REMOTE_USER when trusted) and fills req->user. A token in the query string
 * (?access_token=) is never accepted. Returns 0, or -1 with resp set (401 or 503). */
int http_authenticate(struct worker *w, struct request *req, const struct query *q,
                      bool allow_ticket, struct response *resp);

#endif
