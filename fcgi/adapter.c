/* adapter.c: copies a FastCGI request into a plain struct and writes responses back. */
#include "fcgi/adapter.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "fcgi/fcgi_wire.h"

/* The parameters adapter_read uses. */
enum param_id {
    P_METHOD,
    P_QUERY,
    P_LENGTH,
    P_REQUEST_URI,
    P_DOCUMENT_URI,
    P_CONTENT_TYPE,
    P_AUTHORIZATION,
    P_REMOTE_USER,
    P_ORIGIN,
    P_REMOTE_ADDR,
    P_LAST_EVENT_ID,
    P_CONTENT_DISPOSITION,
    P_COUNT
};

static const char *const param_names[P_COUNT] = {
    [P_METHOD] = "REQUEST_METHOD",
    [P_QUERY] = "QUERY_STRING",
    [P_LENGTH] = "CONTENT_LENGTH",
    [P_REQUEST_URI] = "REQUEST_URI",
    [P_DOCUMENT_URI] = "DOCUMENT_URI",
    [P_CONTENT_TYPE] = "CONTENT_TYPE",
    [P_AUTHORIZATION] = "HTTP_AUTHORIZATION",
    [P_REMOTE_USER] = "REMOTE_USER",
    [P_ORIGIN] = "HTTP_ORIGIN",
    [P_REMOTE_ADDR] = "REMOTE_ADDR",
    [P_LAST_EVENT_ID] = "HTTP_LAST_EVENT_ID",
    [P_CONTENT_DISPOSITION] = "HTTP_CONTENT_DISPOSITION",
};

/* Picks the wanted parameters out of envp ("NAME=value" strings) in one pass: v[i] is
 * the value of param_names[i], or NULL. The first entry of a name wins, as with
 * FCGX_GetParam, which would scan every entry once per name. */
static void params_pick(char **envp, const char *v[P_COUNT])
{
    for (int i = 0; i < P_COUNT; i++)
        v[i] = NULL;
    for (char **e = envp; e && *e; e++) {
        const char *s = *e;
        /* Every wanted name starts with one of these: skip the rest unread. */
        if (s[0] != 'R' && s[0] != 'Q' && s[0] != 'C' && s[0] != 'H' && s[0] != 'D')
            continue;
        const char *eq = strchr(s, '=');
        if (!eq)
            continue;
        size_t len = (size_t)(eq - s);
        for (int i = 0; i < P_COUNT; i++) {
            const char *name = param_names[i];
            if (name[0] == s[0] && strncmp(name, s, len) == 0 && name[len] == '\0') {
                if (!v[i])
                    v[i] = eq + 1;
                break;
            }
        }
    }
}

static char *value_dup(const char *v)
{
    return v ? strdup(v) : NULL;
}

static const struct {
    const char *name;
    enum http_method method;
} methods[] = {
    {"GET", HTTP_GET}, {"POST", HTTP_POST},       {"PATCH", HTTP_PATCH}, {"DELETE", HTTP_DELETE},
    {"PUT", HTTP_PUT}, {"OPTIONS", HTTP_OPTIONS}, {"HEAD", HTTP_HEAD},
};

static enum http_method method_parse(const char *s)
{
    for (size_t i = 0; s && i < sizeof methods / sizeof methods[0]; i++) {
        if (strcmp(s, methods[i].name) == 0)
            return methods[i].method;
    }
    return HTTP_OTHER;
}

/* The path below the mount prefix, from REQUEST_URI (raw, as the client sent it) so the
 * result does not depend on how the web server splits SCRIPT_NAME and PATH_INFO. */
static char *path_below_prefix(const char *uri, const char *document_uri, const char *prefix)
{
    if (!uri)
        uri = document_uri;
    if (!uri)
        uri = "/";
    size_t len = strcspn(uri, "?#");
    size_t plen = strlen(prefix);
    while (plen > 0 && prefix[plen - 1] == '/')
        plen--;
    if (plen > 0 && len >= plen && strncmp(uri, prefix, plen) == 0 &&
        (len == plen || uri[plen] == '/')) {
        uri += plen;
        len -= plen;
    }
    if (len == 0)
        return strdup("/");
    return strndup(uri, len);
}

/* The largest body of a request: limits.max_body, except for an upload (POST
 * /sessions/{id}/attachments), which may carry limits.max_attachment_bytes plus room for
 * a multipart envelope. */
static int64_t adapter_body_limit(const struct config *cfg, const struct request *req)
{
    const char *p = req->path, *slash;
    int64_t upload = cfg->max_attachment_bytes + 64 * 1024;

    if (req->method != HTTP_POST || !p || strncmp(p, "/sessions/", 10) != 0)
        return cfg->max_body;
    slash = strchr(p + 10, '/');
    if (!slash || slash == p + 10 || strcmp(slash, "/attachments") != 0)
        return cfg->max_body;
    return upload > cfg->max_body ? upload : cfg->max_body;
}

int adapter_read(FCGX_Request *fr, const struct config *cfg, struct request *req)
{
    const char *v[P_COUNT];
    unsigned char rnd[9];

    params_pick(fr->envp, v);
    const char *method = v[P_METHOD], *query = v[P_QUERY], *length = v[P_LENGTH];

    memset(req, 0, sizeof *req);
    req->route = -1;
    snprintf(req->method_name, sizeof req->method_name, "%s", method ? method : "");
    req->method = method_parse(method);
    if (cgw_random_bytes(rnd, sizeof rnd) == 0)
        cgw_base64url(rnd, sizeof rnd, req->request_id);
    req->path = path_below_prefix(v[P_REQUEST_URI], v[P_DOCUMENT_URI], cfg->http_prefix);
    req->query = strdup(query ? query : "");
    req->content_type = value_dup(v[P_CONTENT_TYPE]);
    req->authorization = value_dup(v[P_AUTHORIZATION]);
    req->remote_user = value_dup(v[P_REMOTE_USER]);
    req->origin = value_dup(v[P_ORIGIN]);
    req->remote_addr = value_dup(v[P_REMOTE_ADDR]);
    req->last_event_id = value_dup(v[P_LAST_EVENT_ID]);
    req->content_disposition = value_dup(v[P_CONTENT_DISPOSITION]);
    if (!req->path || !req->query)
        return -1;

    int64_t declared = 0, max_body = adapter_body_limit(cfg, req);
    if (length && *length && cgw_parse_int64(length, 0, INT64_MAX, &declared) < 0)
        declared = max_body + 1;
    if (declared > max_body) {
        req->body_too_large = true;
        return 0;
    }
    /* Read to EOF with a cap: CONTENT_LENGTH may be absent (chunked upload). */
    size_t cap = declared > 0 ? (size_t)declared + 1 : 4096, len = 0;
    char *body = malloc(cap);
    if (!body)
        return -1;
    for (;;) {
        if (len + 1 >= cap) {
            if ((int64_t)cap > max_body + 1) {
                req->body_too_large = true;
                free(body);
                return 0;
            }
            char *bigger = realloc(body, cap * 2);
            if (!bigger) {
                free(body);
                return -1;
            }
            body = bigger;
            cap *= 2;
        }
        size_t want = cap - 1 - len;
        int got = FCGX_GetStr(body + len, want > 65536 ? 65536 : (int)want, fr->in);
        if (got <= 0)
            break;
        len += (size_t)got;
        if ((int64_t)len > max_body) {
            req->body_too_large = true;
            free(body);
            return 0;
        }
    }
    if (len == 0) {
        free(body);
        return 0;
    }
    body[len] = '\0';
    req->body = body;
    req->body_len = len;
    return 0;
}

enum cors_match cors_origin_match(const struct config *cfg, const char *origin)
{
    const char *list = cfg->cors_origins;
    enum cors_match m = CORS_NONE;
    size_t olen;
    /* "null" is what sandboxed frames, file: pages and some redirects send: it names no
     * site, so no list can vouch for it. */
    if (!origin || !*origin || !list || !*list || strcmp(origin, "null") == 0)
        return CORS_NONE;
    olen = strlen(origin);
    while (*list) {
        size_t n = strcspn(list, " ,");
        if (n == olen && strncmp(list, origin, n) == 0)
            return CORS_EXACT;
        if (n == 1 && list[0] == '*')
            m = CORS_ANY;
        list += n;
        list += strspn(list, " ,");
    }
    return m;
}

static const char *reason_phrase(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 413:
        return "Payload Too Large";
    case 415:
        return "Unsupported Media Type";
    case 429:
        return "Too Many Requests";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    default:
        return "";
    }
}

/* Appends the CORS headers req's origin gets to head[at..size); returns the new at. */
static size_t cors_headers(const struct config *cfg, const struct request *req, char *head,
                           size_t size, size_t at)
{
    int n;
    enum cors_match cors = req ? cors_origin_match(cfg, req->origin) : CORS_NONE;
    if (at < size && cors != CORS_NONE && strlen(req->origin) < 256) {
        /* A listed origin gets itself back, with credentials; "*" gets "*" without:
         * any site may read the answers, none with the browser's ambient credentials. */
        if (cors == CORS_EXACT)
            n = snprintf(head + at, size - at,
                         "Access-Control-Allow-Origin: %s\r\nVary: Origin\r\n"
                         "Access-Control-Allow-Credentials: true\r\n",
                         req->origin);
        else
            n = snprintf(head + at, size - at, "Access-Control-Allow-Origin: *\r\n");
        at += n > 0 ? (size_t)n : 0;
        if (req->method == HTTP_OPTIONS && at < size) {
            n = snprintf(
                head + at, size - at,
                "Access-Control-Allow-Methods: GET, POST, PATCH, DELETE, OPTIONS\r\n"
                "Access-Control-Allow-Headers: Authorization, Content-Type, Last-Event-ID\r\n"
                "Access-Control-Max-Age: 600\r\n");
            at += n > 0 ? (size_t)n : 0;
        }
    }
    return at;
}

/* Writes len bytes (a body may be larger than one FCGX_PutStr's int). */
static int adapter_put_all(FCGX_Request *fr, const char *p, size_t len)
{
    while (len > 0) {
        int chunk = len > (1u << 20) ? 1 << 20 : (int)len;
        if (FCGX_PutStr(p, chunk, fr->out) < 0)
            return -1;
        p += chunk;
        len -= (size_t)chunk;
    }
    return 0;
}

/* An answer as text: head (status line and headers, the blank line included), then
 * body_len bytes of body and, for a JSON body, a newline. */
struct answer_text {
    char head[4096];
    size_t head_len;
    const char *body; /* NULL when none (or a HEAD request: not sent) */
    size_t body_len;
    bool newline;
    char *owned; /* the encoded JSON body */
};

/* The answer when the response cannot be encoded (out of memory). */
static const char answer_oom[] =
    "Status: 500 Internal Server Error\r\nContent-Type: application/json; "
    "charset=utf-8\r\nCache-Control: no-store\r\n\r\n"
    "{\"kind\":\"protocol_error\",\"code\":\"INTERNAL_ERROR\","
    "\"error\":\"internal error\",\"sessionId\":null}";

/* Formats resp for req into *a (answer_text_free releases it). Returns 0, or -1 when
 * the JSON body cannot be encoded (out of memory: answer_oom is the answer). */
static int answer_format(const struct config *cfg, const struct request *req,
                         const struct response *resp, struct answer_text *a)
{
    const char *type = "application/json; charset=utf-8";
    const char *out = NULL;
    size_t len = 0, at = 0;
    int n;

    a->owned = NULL;
    if (resp->text) {
        out = resp->text; /* borrowed: resp owns it */
        len = resp->text_len ? resp->text_len : strlen(out);
        type = resp->content_type;
    } else if (resp->body) {
        if (!(a->owned = json_dumps(resp->body, JSON_COMPACT | JSON_PRESERVE_ORDER))) {
            log_error("out of memory encoding a response");
            return -1;
        }
        len = strlen(a->owned);
        out = a->owned;
    }
    /* Headers are formatted with snprintf: FCGX_FPrintF knows no %zu. */
    char *head = a->head;
    size_t size = sizeof a->head;
    n = snprintf(head, size, "Status: %d %s\r\nCache-Control: no-store\r\n", resp->status,
                 reason_phrase(resp->status));
    at += n > 0 ? (size_t)n : 0;
    if (out)
        n = snprintf(head + at, size - at, "Content-Type: %s\r\nContent-Length: %zu\r\n", type,
                     resp->text ? len : len + 1);
    else
        n = snprintf(head + at, size - at, "Content-Length: 0\r\n");
    at += n > 0 ? (size_t)n : 0;
    if (resp->allow[0] && at < size) {
        n = snprintf(head + at, size - at, "Allow: %s\r\n", resp->allow);
        at += n > 0 ? (size_t)n : 0;
    }
    if (resp->headers[0] && at < size) {
        n = snprintf(head + at, size - at, "%s", resp->headers);
        at += n > 0 ? (size_t)n : 0;
    }
    at = cors_headers(cfg, req, head, size, at);
    if (at >= size - 2)
        at = size - 3; /* cannot happen with the caps above; stay well-formed */
    memcpy(head + at, "\r\n", 3);
    a->head_len = at + 2;
    bool send_body = out && req && req->method != HTTP_HEAD;
    a->body = send_body ? out : NULL;
    a->body_len = send_body ? len : 0;
    a->newline = send_body && !resp->text;
    return 0;
}

int adapter_write(FCGX_Request *fr, const struct config *cfg, const struct request *req,
                  const struct response *resp)
{
    struct answer_text a;
    if (answer_format(cfg, req, resp, &a) < 0) {
        FCGX_PutS(answer_oom, fr->out);
        return -1;
    }
    int rc = 0;
    FCGX_PutStr(a.head, (int)a.head_len, fr->out);
    if (a.body && (adapter_put_all(fr, a.body, a.body_len) < 0 ||
                   (a.newline && FCGX_PutS("\n", fr->out) < 0)))
        rc = -1;
    free(a.owned);
    return rc;
}

/* The head of a Server-Sent Events answer into head[size]; returns its length. */
static size_t stream_head_format(const struct config *cfg, const struct request *req, char *head,
                                 size_t size)
{
    int n = snprintf(head, size,
                     "Status: 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n"
                     "Cache-Control: no-store\r\nX-Accel-Buffering: no\r\n");
    size_t at = cors_headers(cfg, req, head, size, n > 0 ? (size_t)n : 0);
    if (at >= size - 2)
        at = size - 3;
    memcpy(head + at, "\r\n", 3);
    return at + 2;
}

void request_free(struct request *req)
{
    free(req->path);
    free(req->query);
    free(req->content_type);
    free(req->authorization);
    free(req->remote_user);
    free(req->origin);
    free(req->remote_addr);
    free(req->last_event_id);
    free(req->content_disposition);
    free(req->body);
    free(req->path_buf);
    memset(req, 0, sizeof *req);
}

/* Reads away (up to 8 KiB, without waiting) what the web server sent on fd. */
static void drain(int fd)
{
    char junk[512];
    for (int i = 0; i < 16 && recv(fd, junk, sizeof junk, MSG_DONTWAIT) > 0; i++)
        ;
}

void adapter_finish(FCGX_Request *fr, bool answered)
{
    if (answered) {
        FCGX_FClose(fr->err);
        FCGX_FClose(fr->out);
    }
    if (fr->ipcFd >= 0)
        drain(fr->ipcFd);
    FCGX_Detach(fr); /* fails only for fd 0; libfcgi then shuts down the usual way */
    FCGX_Free(fr, 1);
}

void adapter_detach(FCGX_Request *fr, struct fcgi_held *h)
{
    h->fd = fr->ipcFd;
    h->request_id = fr->requestId;
    /* Streams and parameters go, the connection stays open: it is h's now. The next
     * FCGX_Accept_r finds no connection (ipcFd < 0, nothing to finish: in is NULL)
     * and accepts a new one; a kept connection (FCGI_KEEP_CONN) is closed by
     * adapter_held_close like any other, so the flag is cleared. */
    FCGX_Free(fr, 0);
    fr->ipcFd = -1;
    fr->keepConnection = 0;
    fr->detached = 0;
    fr->envp = NULL;
}

int adapter_held_answer(const struct fcgi_held *h, const struct config *cfg,
                        const struct request *req, const struct response *resp)
{
    struct answer_text a;
    struct iovec parts[3];
    size_t n = 0;

    if (answer_format(cfg, req, resp, &a) < 0) {
        parts[n++] = (struct iovec){(void *)answer_oom, sizeof answer_oom - 1};
    } else {
        parts[n++] = (struct iovec){a.head, a.head_len};
        if (a.body)
            parts[n++] = (struct iovec){(void *)a.body, a.body_len};
        if (a.newline)
            parts[n++] = (struct iovec){(void *)"\n", 1};
    }
    int rc = fcgi_wire_stdout(h->fd, h->request_id, parts, n, true, 0);
    free(a.owned);
    return rc;
}

int adapter_held_stream_begin(const struct fcgi_held *h, const struct config *cfg,
                              const struct request *req, const char *text, size_t len)
{
    char head[1024];
    struct iovec parts[2] = {{head, stream_head_format(cfg, req, head, sizeof head)},
                             {(void *)text, len}};
    return fcgi_wire_stdout(h->fd, h->request_id, parts, 2, false, 0);
}

int adapter_held_stream_put(const struct fcgi_held *h, const char *text, size_t len, bool end)
{
    struct iovec part = {(void *)text, len};
    return fcgi_wire_stdout(h->fd, h->request_id, &part, 1, end, 0);
}

void adapter_held_close(struct fcgi_held *h)
{
    if (h->fd < 0)
        return;
    drain(h->fd);
    close(h->fd);
    h->fd = -1;
}
