/* http.c: query decoding, JSON bodies with caps, authentication. */
#include "fcgi/http.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/auth.h"
#include "core/auth_cache.h"
#include "core/event.h"
#include "core/log.h"

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Decodes n bytes of s into a new string; NULL on a bad escape, a NUL or no memory. */
static char *url_decode(const char *s, size_t n)
{
    char *out = malloc(n + 1), *o = out;
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '+') {
            *o++ = ' ';
        } else if (s[i] == '%') {
            if (i + 2 >= n) {
                free(out);
                return NULL;
            }
            int a = hexval((unsigned char)s[i + 1]), b = hexval((unsigned char)s[i + 2]);
            if (a < 0 || b < 0 || (a == 0 && b == 0)) {
                free(out);
                return NULL;
            }
            *o++ = (char)(a * 16 + b);
            i += 2;
        } else {
            *o++ = s[i];
        }
    }
    *o = '\0';
    return out;
}

int query_parse(const char *raw, struct query *q)
{
    memset(q, 0, sizeof *q);
    if (!raw || !*raw)
        return 0;
    size_t cap = 1;
    for (const char *p = raw; *p; p++)
        cap += *p == '&';
    q->keys = calloc(cap, sizeof *q->keys);
    q->values = calloc(cap, sizeof *q->values);
    if (!q->keys || !q->values)
        goto fail;
    while (*raw) {
        size_t n = strcspn(raw, "&");
        if (n > 0) {
            const char *eq = memchr(raw, '=', n);
            size_t klen = eq ? (size_t)(eq - raw) : n;
            char *k = url_decode(raw, klen);
            char *v = eq ? url_decode(eq + 1, n - klen - 1) : strdup("");
            if (!k || !v) {
                free(k);
                free(v);
                goto fail;
            }
            q->keys[q->n] = k;
            q->values[q->n] = v;
            q->n++;
        }
        raw += n;
        if (*raw == '&')
            raw++;
    }
    return 0;
fail:
    query_free(q);
    return -1;
}

void query_free(struct query *q)
{
    for (size_t i = 0; i < q->n; i++) {
        free(q->keys[i]);
        free(q->values[i]);
    }
    free(q->keys);
    free(q->values);
    memset(q, 0, sizeof *q);
}

const char *query_get(const struct query *q, const char *key)
{
    for (size_t i = 0; i < q->n; i++) {
        if (strcmp(q->keys[i], key) == 0)
            return q->values[i];
    }
    return NULL;
}

/* Deepest nesting of arrays/objects in JSON text, strings skipped; stops counting once
 * over limit so hostile input costs one pass. */
static int json_depth(const char *s, size_t n, int limit)
{
    int depth = 0, max = 0;
    bool in_string = false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (in_string) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_string = false;
            continue;
        }
        if (c == '"') {
            in_string = true;
        } else if (c == '{' || c == '[') {
            if (++depth > max)
                max = depth;
            if (max > limit)
                return max;
        } else if (c == '}' || c == ']') {
            depth--;
        }
    }
    return max;
}

json_t *http_json_body(const struct request *req, const struct config *cfg, bool empty_ok,
                       struct response *resp)
{
    json_error_t jerr;

    if (req->body_too_large) {
        response_error(resp, CODE_PAYLOAD_TOO_LARGE, NULL, "request body is larger than %lld bytes",
                       (long long)cfg->max_body);
        return NULL;
    }
    if (!req->body || req->body_len == 0) {
        if (empty_ok)
            return json_object();
        response_error(resp, CODE_INVALID_JSON, NULL,
                       "request body is empty; a JSON object "
                       "is expected");
        return NULL;
    }
    /* Also a body without a Content-Type: a browser sends a cross-site form or a
     * text/plain fetch without a preflight, so only application/json is read. */
    {
        const char *ct = req->content_type ? req->content_type : "";
        size_t n = strcspn(ct, "; \t");
        if (!(n == 16 && strncasecmp(ct, "application/json", 16) == 0)) {
            response_error(resp, CODE_UNSUPPORTED_MEDIA_TYPE, NULL,
                           "Content-Type must be application/json");
            return NULL;
        }
    }
    if (json_depth(req->body, req->body_len, (int)cfg->max_json_depth) > cfg->max_json_depth) {
        response_error(resp, CODE_INVALID_JSON, NULL, "JSON nested deeper than %lld levels",
                       (long long)cfg->max_json_depth);
        return NULL;
    }
    json_t *v = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (!v) {
        response_error(resp, CODE_INVALID_JSON, NULL, "invalid JSON at line %d column %d: %s",
                       jerr.line, jerr.column, jerr.text);
        return NULL;
    }
    if (!json_is_object(v)) {
        json_decref(v);
        response_error(resp, CODE_INVALID_REQUEST, NULL, "the body must be a JSON object");
        return NULL;
    }
    return v;
}

int http_only_fields(const json_t *obj, const char *const *allowed, struct response *resp)
{
    const char *key;
    json_t *value;
    json_object_foreach((json_t *)obj, key, value)
    {
        bool known = false;
        for (const char *const *a = allowed; *a && !known; a++)
            known = strcmp(*a, key) == 0;
        if (!known) {
            response_error(resp, CODE_INVALID_REQUEST, NULL, "unknown field \"%s\"", key);
            return -1;
        }
    }
    return 0;
}

const char *http_bearer(const struct request *req)
{
    if (!req->authorization || strncasecmp(req->authorization, "Bearer ", 7) != 0)
        return NULL;
    const char *token = req->authorization + 7;
    while (*token == ' ')
        token++;
    return token;
}

static enum cgw_err ticket_bus(void *ctx, struct bus **out, struct cgw_error *err)
{
    return worker_bus(ctx, out, err);
}

/* The user of a ?ticket= (GET /chat/subscribe only: the router says when). */
static enum cgw_err ticket_user(struct worker *w, struct store *st, const char *ticket,
                                struct store_user *user, char *token_public, struct cgw_error *err)
{
    /* Through the process's cache (core/auth_cache.h), like a bearer token's check. */
    return auth_ticket_verify_cached(w->app->auth_cache, w, ticket_bus, st, ticket, user,
                                     token_public, err);
}

int http_authenticate(struct worker *w, struct request *req, const struct query *q,
                      bool allow_ticket, struct response *resp)
{
    const char *token = http_bearer(req);
    const char *ticket = !token && allow_ticket && q ? query_get(q, "ticket") : NULL;
    struct store *st;
    struct cgw_error err;

    if (!token && !ticket &&
        !(w->app->cfg.auth_trust_remote_user && req->remote_user && *req->remote_user)) {
        /* The long-lived token never goes in a URL (web-server logs keep URLs). */
        if (q && query_get(q, "access_token"))
            response_error(resp, CODE_UNAUTHORIZED, NULL,
                           "access_token in the query string is not accepted; send an "
                           "Authorization header, or a ticket from POST /auth/ticket");
        else
            response_error(resp, CODE_UNAUTHORIZED, NULL, "missing bearer token");
        return -1;
    }
    if (worker_store(w, &st, &err) != CGW_OK) {
        response_from_err(resp, &err, NULL);
        return -1;
    }
    enum cgw_err rc;
    if (token) {
        /* Through the process's cache of token checks (core/auth_cache.h): a re-poll
         * does not read the token from the store; a revocation flushes it. */
        rc = auth_token_verify_cached(w->app->auth_cache, st, token, &req->user, &err);
        if (rc == CGW_OK && auth_token_public_id(token, req->token_public) < 0)
            req->token_public[0] = '\0';
    } else if (ticket) {
        /* The ticket's token is re-checked like a bearer token when a held poll is
         * answered (poller): revoking it ends the ticket's polls too. */
        rc = ticket_user(w, st, ticket, &req->user, req->token_public, &err);
    } else {
        rc = store_user_get(st, req->remote_user, &req->user, &err);
        if (rc == CGW_OK && req->user.disabled)
            rc = cgw_error_set(&err, CGW_ERR_UNAUTHORIZED, "user is disabled");
        else if (rc == CGW_ERR_NOT_FOUND)
            rc = cgw_error_set(&err, CGW_ERR_UNAUTHORIZED, "unknown user");
    }
    if (rc != CGW_OK) {
        if (rc == CGW_ERR_UNAUTHORIZED)
            response_error(resp, CODE_UNAUTHORIZED, NULL, "%s", err.text);
        else
            response_from_err(resp, &err, NULL);
        return -1;
    }
    req->authenticated = true;
    return 0;
}
