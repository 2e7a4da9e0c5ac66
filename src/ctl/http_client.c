/* http_client.c: JSON over HTTP to the chatgw API through libcurl, for chatgwctl chat. */
#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/http_client.h"

struct http_client {
    CURL *curl;
    char *base;                   /* without a trailing '/' */
    struct curl_slist *headers;   /* Accept, Content-Type, Authorization */
    struct curl_slist *no_body_h; /* the same without Content-Type */
    http_cancel_fn cancel;
    void *cancel_arg;
    char curl_error[CURL_ERROR_SIZE];
};

struct body_buf {
    char *data;
    size_t len, cap;
    bool too_big;
};

static size_t on_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct body_buf *b = userdata;
    size_t n = size * nmemb;
    if (n > HTTP_CLIENT_MAX_BODY - b->len) {
        b->too_big = true;
        return 0; /* makes curl fail with CURLE_WRITE_ERROR */
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *grown = realloc(b->data, cap);
        if (!grown)
            return 0;
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

static int on_progress(void *clientp, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    const struct http_client *c = clientp;
    return c->cancel && c->cancel(c->cancel_arg) ? 1 : 0;
}

static bool global_init_done;

enum cgw_err http_client_new(const char *base_url, const char *token, struct http_client **out,
                             struct cgw_error *err)
{
    *out = NULL;
    if (!global_init_done) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
            return cgw_error_set(err, CGW_ERR_INTERNAL, "libcurl failed to initialize");
        global_init_done = true;
    }
    struct http_client *c = calloc(1, sizeof *c);
    if (!c)
        return cgw_error_set(err, CGW_ERR_NOMEM, "out of memory");
    size_t n = strlen(base_url);
    while (n > 0 && base_url[n - 1] == '/')
        n--;
    c->base = strndup(base_url, n);
    c->curl = curl_easy_init();
    c->headers = curl_slist_append(NULL, "Accept: application/json");
    c->no_body_h = curl_slist_append(NULL, "Accept: application/json");
    if (c->headers)
        c->headers = curl_slist_append(c->headers, "Content-Type: application/json");
    if (token && token[0] && c->headers && c->no_body_h) {
        size_t len = strlen(token) + sizeof "Authorization: Bearer ";
        char *h = malloc(len);
        if (h) {
            snprintf(h, len, "Authorization: Bearer %s", token);
            struct curl_slist *a = curl_slist_append(c->headers, h);
            struct curl_slist *b = a ? curl_slist_append(c->no_body_h, h) : NULL;
            c->headers = a ? a : c->headers;
            c->no_body_h = b ? b : c->no_body_h;
            if (!a || !b)
                c->headers = NULL; /* reported below */
            free(h);
        } else {
            c->headers = NULL;
        }
    }
    if (!c->base || !c->curl || !c->headers || !c->no_body_h) {
        http_client_free(c);
        return cgw_error_set(err, CGW_ERR_NOMEM, "out of memory");
    }
    CURL *h = c->curl;
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, c->curl_error);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, c);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "chatgwctl-chat");
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#endif
    *out = c;
    return CGW_OK;
}

void http_client_free(struct http_client *c)
{
    if (!c)
        return;
    if (c->curl)
        curl_easy_cleanup(c->curl);
    curl_slist_free_all(c->headers);
    curl_slist_free_all(c->no_body_h);
    free(c->base);
    free(c);
}

void http_client_set_cancel(struct http_client *c, http_cancel_fn fn, void *arg)
{
    c->cancel = fn;
    c->cancel_arg = arg;
}

void http_answer_clear(struct http_answer *ans)
{
    json_decref(ans->json);
    memset(ans, 0, sizeof *ans);
}

/* Fills ans->code/error from an error body {code, error, ...}. */
static void take_error_body(struct http_answer *ans)
{
    const char *code = json_string_value(json_object_get(ans->json, "code"));
    const char *text = json_string_value(json_object_get(ans->json, "error"));
    snprintf(ans->code, sizeof ans->code, "%s", code ? code : "");
    snprintf(ans->error, sizeof ans->error, "%s", text ? text : "");
}

enum cgw_err http_request(struct http_client *c, const char *method, const char *path,
                          const json_t *body, long timeout_ms, struct http_answer *ans,
                          struct cgw_error *err)
{
    memset(ans, 0, sizeof *ans);
    char *payload = body ? json_dumps(body, JSON_COMPACT) : NULL;
    size_t ulen = strlen(c->base) + strlen(path) + 1;
    char *url = malloc(ulen);
    if ((body && !payload) || !url) {
        free(payload);
        free(url);
        return cgw_error_set(err, CGW_ERR_NOMEM, "out of memory");
    }
    snprintf(url, ulen, "%s%s", c->base, path);

    struct body_buf b = {NULL, 0, 0, false};
    CURL *h = c->curl;
    c->curl_error[0] = '\0';
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_HTTPGET, 1L); /* resets a POST body of a previous request */
    if (payload) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, payload);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(payload));
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, payload ? c->headers : c->no_body_h);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);

    CURLcode cc = curl_easy_perform(h);
    free(payload);
    free(url);

    enum cgw_err rc = CGW_OK;
    if (cc == CURLE_ABORTED_BY_CALLBACK) {
        rc = cgw_error_set(err, CGW_ERR_TIMEOUT, "interrupted");
    } else if (b.too_big) {
        rc = cgw_error_set(err, CGW_ERR_TOO_LARGE, "the answer is larger than %u bytes",
                           HTTP_CLIENT_MAX_BODY);
    } else if (cc != CURLE_OK) {
        rc = cgw_error_set(err, CGW_ERR_IO, "%s",
                           c->curl_error[0] ? c->curl_error : curl_easy_strerror(cc));
    } else {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &ans->status);
        json_error_t jerr;
        ans->json = b.len ? json_loadb(b.data, b.len, JSON_REJECT_DUPLICATES, &jerr) : NULL;
        if (ans->json && ans->status >= 400)
            take_error_body(ans);
        if (!ans->json && ans->status < 400)
            rc = cgw_error_set(err, CGW_ERR_INVALID, "HTTP %ld with an answer that is not JSON",
                               ans->status);
    }
    free(b.data);
    if (rc != CGW_OK && rc != CGW_ERR_INVALID)
        ans->status = 0;
    return rc;
}

int http_query_append(char *buf, size_t cap, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(buf), start = n;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        bool plain = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
                     (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.' || *p == '~';
        if (n + (plain ? 1 : 3) >= cap) {
            buf[start] = '\0';
            return -1;
        }
        if (plain) {
            buf[n++] = (char)*p;
        } else {
            buf[n++] = '%';
            buf[n++] = hex[*p >> 4];
            buf[n++] = hex[*p & 15];
        }
    }
    buf[n] = '\0';
    return 0;
}
