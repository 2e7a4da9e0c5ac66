/* load.c: make bench's HTTP load client (one thread, epoll, HTTP/1.1 keep-alive).
 *
 *   load hold PORT[,PORT...] TOKEN SESSIONS_FILE POLLS WAIT_MS
 *        Holds POLLS long-polls on /api/chat/subscribe, poll i following session
 *        i % S (S = lines of SESSIONS_FILE), each re-polling at once with its cursor
 *        after every answer. The first request of each poll has waitMs 0; once every
 *        poll has its first answer "ready" is printed. A stdin line
 *        "final {"SESSION": SEQ, ...}" says what was published: the client then waits
 *        (at most 30 s) until every poll has reached its session's final seq and prints
 *        one JSON line: delivery latency of the "bench:<realtime us>" events
 *        (publish -> arrival), events delivered, lost (seq gaps and shortfalls) and
 *        duplicated (seq <= cursor) events, and its own CPU time.
 *   load stream|nchan|nchan-sse PORT[,PORT...] TOKEN SESSIONS_FILE POLLS WAIT_MS
 *        The same, with another protocol and the same accounting (every message is a
 *        JSON frame with "seq" and "content"): "stream" holds GET /api/chat/stream
 *        (Server-Sent Events, one answer per subscriber for the whole run; "ready" once
 *        every stream has its chat_subscribed ack); "nchan" long-polls nginx + nchan's
 *        GET /sub/SESSION (If-Modified-Since / If-None-Match from the last answer),
 *        "nchan-sse" holds nchan's GET /ev/SESSION event stream. For nchan "ready" is
 *        printed once every request is sent (nchan answers nothing before a message:
 *        the driver waits for the channel's subscriber count). TOKEN is unused for nchan.
 *        The environment variables LOAD_SUBSCRIBE_PATH and LOAD_STREAM_PATH replace
 *        the long-poll's path (/api/chat/subscribe) and the stream's (/api/chat/stream;
 *        make bench's floors are at another prefix).
 *   load rate PORT TOKEN METHOD PATH BODIES_FILE CONNS SECS
 *        Closed loop: CONNS connections each send a request and the next one as soon as
 *        the answer is complete, for SECS seconds. Request bodies are the lines of
 *        BODIES_FILE in turn ("-": no body). Prints requests/s and counts per status.
 */
#include "config.h" /* autoconf's: _GNU_SOURCE for memmem */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

struct conn {
    int fd;
    int sess;         /* index into sessions (hold) */
    long long cursor; /* hold: last seq seen */
    bool first_done;  /* hold: the waitMs 0 request was answered */
    int64_t sent_us;  /* rate: when the request went out */
    char *buf;
    size_t len, cap;
    /* Event streams: the response head was read; the body is chunked; bytes left of the
     * current chunk (-1: at a chunk-size line); the de-chunked text not yet parsed. */
    bool head_done, chunked;
    long long chunk_left;
    char *sse;
    size_t sse_len, sse_cap;
    char lastmod[64], etag[64]; /* nchan long-poll: the last answer's validators */
};

enum proto { P_CHATGW, P_STREAM, P_NCHAN, P_NCHAN_SSE };
static enum proto proto = P_CHATGW;

struct vec {
    int64_t *v;
    size_t n, cap;
};

static char **sessions, **bodies;
static size_t n_sessions, n_bodies, next_body;
static long long *final_seq; /* per session; -1 = not known yet */
static int ports[16], n_ports = 1, ep;
static const char *token, *method = "POST", *path;
static const char *stream_path = "/api/chat/stream";
static struct vec lat; /* microseconds */
static long long delivered, lost, dups, errors, bench_events, reconnects;
static long long status_count[600];

static int64_t now_us(clockid_t clk)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void die(const char *what)
{
    fprintf(stderr, "load: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void vec_add(struct vec *v, int64_t x)
{
    if (v->n == v->cap) {
        v->cap = v->cap ? v->cap * 2 : 4096;
        v->v = realloc(v->v, v->cap * sizeof *v->v);
        if (!v->v)
            die("realloc");
    }
    v->v[v->n++] = x;
}

static char **read_lines(const char *file, size_t *n)
{
    char **out = NULL, *line = NULL;
    size_t cap = 0, k = 0;
    ssize_t len;
    *n = 0;
    if (strcmp(file, "-") == 0)
        return NULL;
    FILE *f = fopen(file, "r");
    if (!f)
        die(file);
    while ((len = getline(&line, &cap, f)) > 0) {
        if (line[len - 1] == '\n')
            line[--len] = 0;
        out = realloc(out, (k + 1) * sizeof *out);
        out[k++] = strdup(line);
    }
    free(line);
    fclose(f);
    *n = k;
    return out;
}

static void conn_open(struct conn *c, size_t i)
{
    int port = ports[i % (size_t)n_ports];
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(0x7f000001)};
    int one = 1;
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (c->fd < 0)
        die("socket (raise ulimit -n)");
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(c->fd, (struct sockaddr *)&a, sizeof a) < 0)
        die("connect");
    fcntl(c->fd, F_SETFL, O_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) < 0)
        die("epoll_ctl");
    c->len = 0;
}

static void conn_send(struct conn *c, const char *body)
{
    char req[4096];
    int n;
    if (body)
        n = snprintf(req, sizeof req,
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n"
                     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                     method, path, token, strlen(body), body);
    else
        n = snprintf(req, sizeof req,
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n\r\n",
                     method, path, token);
    c->sent_us = now_us(CLOCK_MONOTONIC);
    for (int off = 0; off < n;) {
        ssize_t w = write(c->fd, req + off, (size_t)(n - off));
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            die("write"); /* a fresh request fits the socket buffer */
        off += (int)w;
    }
}

static int wait_ms_hold;
#define RAMP 256

static void hold_request(struct conn *c)
{
    char body[256], req[1024];
    int n = 0;
    if (proto == P_STREAM) {
        if (c->first_done)
            snprintf(body, sizeof body, "&lastSeq=%lld", c->cursor);
        else
            body[0] = 0;
        n = snprintf(req, sizeof req,
                     "GET %s?sessionId=%s%s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     "Authorization: Bearer %s\r\n\r\n",
                     stream_path, sessions[c->sess], body, token);
    } else if (proto == P_NCHAN) {
        if (c->etag[0])
            snprintf(body, sizeof body, "If-Modified-Since: %s\r\nIf-None-Match: %s\r\n",
                     c->lastmod, c->etag);
        else
            body[0] = 0;
        n = snprintf(req, sizeof req, "GET /sub/%s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\n",
                     sessions[c->sess], body);
    } else if (proto == P_NCHAN_SSE) {
        n = snprintf(req, sizeof req,
                     "GET /ev/%s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     "Accept: text/event-stream\r\n\r\n",
                     sessions[c->sess]);
    }
    if (proto != P_CHATGW) {
        c->head_done = false;
        c->chunk_left = -1;
        c->sse_len = 0;
        c->sent_us = now_us(CLOCK_MONOTONIC);
        for (int off = 0; off < n;) {
            ssize_t w = write(c->fd, req + off, (size_t)(n - off));
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0)
                die("write");
            off += (int)w;
        }
        return;
    }
    snprintf(body, sizeof body,
             "{\"sessions\":[{\"sessionId\":\"%s\",\"lastSeq\":%lld}],\"waitMs\":%d}",
             sessions[c->sess], c->cursor, c->first_done ? wait_ms_hold : 0);
    conn_send(c, body);
}

/* Finds a complete response in c->buf: returns its total length and sets the status
 * and the (de-chunked, in place) body; 0 when more bytes are needed. */
static size_t parse_response(struct conn *c, int *status, char **body, size_t *body_len,
                             bool *closing)
{
    char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
    if (!end)
        return 0;
    size_t hlen = (size_t)(end - c->buf) + 4;
    *status = atoi(c->buf + 9);
    long long clen = -1;
    bool chunked = false;
    *closing = false;
    for (char *l = strstr(c->buf, "\r\n") + 2; l < end; l = strstr(l, "\r\n") + 2) {
        if (strncasecmp(l, "Content-Length:", 15) == 0)
            clen = atoll(l + 15);
        else if (strncasecmp(l, "Transfer-Encoding:", 18) == 0 && strstr(l, "chunked") &&
                 strstr(l, "chunked") < strstr(l, "\r\n"))
            chunked = true;
        else if (strncasecmp(l, "Connection:", 11) == 0 && strncasecmp(l + 12, "close", 5) == 0)
            *closing = true;
    }
    if (!chunked) {
        if (clen < 0)
            clen = 0;
        if (c->len < hlen + (size_t)clen)
            return 0;
        *body = c->buf + hlen;
        *body_len = (size_t)clen;
        return hlen + (size_t)clen;
    }
    /* Chunked: check it is complete first, then compact the chunks in place. */
    size_t p = hlen, out = hlen;
    for (;;) {
        char *nl = memmem(c->buf + p, c->len - p, "\r\n", 2);
        if (!nl)
            return 0;
        size_t sz = strtoul(c->buf + p, NULL, 16);
        size_t data = (size_t)(nl - c->buf) + 2;
        if (c->len < data + sz + 2)
            return 0;
        if (sz == 0) {
            char *fin = memmem(c->buf + data - 2, c->len - (data - 2), "\r\n\r\n", 4);
            if (!fin)
                return 0;
            size_t total = (size_t)(fin - c->buf) + 4;
            /* compact */
            size_t q = hlen;
            for (;;) {
                char *n2 = memmem(c->buf + q, total - q, "\r\n", 2);
                size_t s2 = strtoul(c->buf + q, NULL, 16);
                size_t d2 = (size_t)(n2 - c->buf) + 2;
                if (s2 == 0)
                    break;
                memmove(c->buf + out, c->buf + d2, s2);
                out += s2;
                q = d2 + s2 + 2;
            }
            *body = c->buf + hlen;
            *body_len = out - hlen;
            return total;
        }
        p = data + sz + 2;
    }
}

/* One event (a JSON frame with seq and content) for poll c. */
static void hold_frame(struct conn *c, json_t *f, int64_t now)
{
    json_t *js = json_object_get(f, "seq");
    if (!json_is_integer(js))
        return;
    long long seq = json_integer_value(js);
    if (seq <= c->cursor) {
        dups++;
        return;
    }
    if (seq != c->cursor + 1 && c->first_done)
        lost += seq - c->cursor - 1;
    c->cursor = seq;
    delivered++;
    const char *content = json_string_value(json_object_get(f, "content"));
    if (content && strncmp(content, "bench:", 6) == 0) {
        bench_events++;
        vec_add(&lat, now - atoll(content + 6));
    }
}

static void hold_answer(struct conn *c, int status, const char *body, size_t len, int64_t now)
{
    status_count[status > 0 && status < 600 ? status : 0]++;
    if (status != 200) {
        errors++;
        return;
    }
    json_t *o = json_loadb(body, len, 0, NULL);
    if (proto == P_NCHAN) { /* the message itself */
        hold_frame(c, o, now);
        json_decref(o);
        return;
    }
    json_t *frames = json_object_get(o, "frames");
    size_t i;
    json_t *f;
    json_array_foreach(frames, i, f)
    {
        hold_frame(c, f, now);
    }
    if (!c->first_done) {
        json_array_foreach(frames, i, f)
        {
            json_t *ls = json_object_get(f, "lastSeq");
            if (json_is_integer(ls) && !json_object_get(f, "seq"))
                c->cursor = json_integer_value(ls);
        }
    }
    json_decref(o);
}

/* Copies the value of header NAME (with its colon) of the head [buf, end) into out. */
static void header_copy(const char *buf, const char *end, const char *name, char *out, size_t size)
{
    size_t nl = strlen(name);
    out[0] = 0;
    for (const char *l = strstr(buf, "\r\n"); l && l + 2 < end; l = strstr(l + 2, "\r\n")) {
        const char *h = l + 2;
        if (strncasecmp(h, name, nl) != 0)
            continue;
        h += nl;
        while (*h == ' ')
            h++;
        const char *e = strstr(h, "\r\n");
        size_t k = e ? (size_t)(e - h) : 0;
        if (k >= size)
            k = size - 1;
        memcpy(out, h, k);
        out[k] = 0;
        return;
    }
}

static struct conn *cs;
static size_t n_conns, opened, firsts;

/* Poll c has its first answer (the ack; for nchan's streams the head): the ramp opens
 * the next connection, and "ready" is printed when every poll has one. */
static void first_answer(struct conn *c)
{
    c->first_done = true;
    if (opened < n_conns) {
        conn_open(&cs[opened], opened);
        hold_request(&cs[opened]);
        opened++;
    }
    if (++firsts == n_conns) {
        printf("ready\n");
        fflush(stdout);
    }
}

static void sse_append(struct conn *c, const char *p, size_t n)
{
    if (c->sse_cap - c->sse_len < n + 1) {
        c->sse_cap = c->sse_len + n + 65536;
        c->sse = realloc(c->sse, c->sse_cap);
        if (!c->sse)
            die("realloc");
    }
    memcpy(c->sse + c->sse_len, p, n);
    c->sse_len += n;
    c->sse[c->sse_len] = 0;
}

/* Handles the complete events of c's event stream (one data: line per event). */
static void sse_events(struct conn *c, int64_t now)
{
    size_t off = 0;
    for (;;) {
        char *start = c->sse + off;
        char *end = memmem(start, c->sse_len - off, "\n\n", 2);
        if (!end)
            break;
        *end = 0;
        char event[64] = "";
        const char *data = NULL;
        for (char *l = start; l && *l;) {
            char *nl = strchr(l, '\n');
            if (nl)
                *nl = 0;
            if (strncmp(l, "event:", 6) == 0)
                snprintf(event, sizeof event, "%s", l + 6 + (l[6] == ' '));
            else if (strncmp(l, "data:", 5) == 0)
                data = l + 5 + (l[5] == ' ');
            l = nl ? nl + 1 : NULL;
        }
        off = (size_t)(end - c->sse) + 2;
        if (!data)
            continue;
        json_t *o = json_loads(data, 0, NULL);
        if (strcmp(event, "chat_subscribed") == 0) {
            if (!c->first_done) {
                json_t *ls = json_object_get(o, "lastSeq");
                if (json_is_integer(ls))
                    c->cursor = json_integer_value(ls);
                first_answer(c);
            }
        } else if (o) {
            hold_frame(c, o, now);
        }
        json_decref(o);
    }
    memmove(c->sse, c->sse + off, c->sse_len - off);
    c->sse_len -= off;
}

/* An event stream (chatgw's or nchan's): consumes what arrived in c->buf. Returns false
 * when the answer ended or failed (the caller reconnects). */
static bool stream_read(struct conn *c, int64_t now)
{
    if (!c->head_done) {
        char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
        if (!end)
            return true;
        size_t hlen = (size_t)(end - c->buf) + 4;
        int status = atoi(c->buf + 9);
        status_count[status > 0 && status < 600 ? status : 0]++;
        if (status != 200) {
            errors++;
            return false;
        }
        char te[64];
        header_copy(c->buf, end, "Transfer-Encoding:", te, sizeof te);
        c->chunked = strstr(te, "chunked") != NULL;
        c->head_done = true;
        memmove(c->buf, c->buf + hlen, c->len - hlen);
        c->len -= hlen;
        if (proto == P_NCHAN_SSE && !c->first_done)
            first_answer(c);
    }
    size_t p = 0;
    if (!c->chunked) {
        sse_append(c, c->buf, c->len);
        p = c->len;
    }
    while (c->chunked && p < c->len) {
        if (c->chunk_left < 0) { /* at a chunk-size line */
            char *nl = memmem(c->buf + p, c->len - p, "\r\n", 2);
            if (!nl)
                break;
            long long size = strtoll(c->buf + p, NULL, 16);
            p = (size_t)(nl - c->buf) + 2;
            if (size == 0)
                return false; /* the last chunk: the answer ended */
            c->chunk_left = size;
        } else if (c->chunk_left > 0) {
            size_t k = c->len - p;
            if ((long long)k > c->chunk_left)
                k = (size_t)c->chunk_left;
            sse_append(c, c->buf + p, k);
            p += k;
            c->chunk_left -= (long long)k;
        } else { /* the CRLF after a chunk */
            if (c->len - p < 2)
                break;
            p += 2;
            c->chunk_left = -1;
        }
    }
    memmove(c->buf, c->buf + p, c->len - p);
    c->len -= p;
    sse_events(c, now);
    return true;
}

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static void print_latency(const char *prefix, struct vec *v)
{
    if (v->n == 0) {
        printf("\"%sp50_ms\":null,\"%sp99_ms\":null,\"%smax_ms\":null", prefix, prefix, prefix);
        return;
    }
    qsort(v->v, v->n, sizeof *v->v, cmp64);
    printf("\"%sp50_ms\":%.3f,\"%sp99_ms\":%.3f,\"%smax_ms\":%.3f", prefix,
           (double)v->v[v->n / 2] / 1000, prefix, (double)v->v[v->n * 99 / 100] / 1000, prefix,
           (double)v->v[v->n - 1] / 1000);
}

/* Reads what arrived on c; returns false when the connection is gone. */
static bool conn_read(struct conn *c)
{
    for (;;) {
        if (c->cap - c->len < 65536) {
            c->cap = c->cap ? c->cap * 2 : 131072;
            c->buf = realloc(c->buf, c->cap + 1);
            if (!c->buf)
                die("realloc");
        }
        ssize_t r = read(c->fd, c->buf + c->len, c->cap - c->len);
        if (r > 0) {
            c->len += (size_t)r;
            c->buf[c->len] = 0;
            continue;
        }
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && errno == EAGAIN)
            return true;
        return false;
    }
}

static int run(bool hold, size_t conns, double secs)
{
    n_conns = conns;
    cs = calloc(n_conns, sizeof *cs);
    struct epoll_event evs[256];
    size_t rate_done = 0;
    bool have_final = false;
    int64_t stop_at = 0, final_deadline = 0, start = 0;
    double cpu0 = cpu_s();
    char line[1 << 20];
    size_t line_len = 0;

    ep = epoll_create1(0);
    if (hold) {
        fcntl(0, F_SETFL, O_NONBLOCK);
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
        epoll_ctl(ep, EPOLL_CTL_ADD, 0, &ev);
    }
    /* Hold: connections are opened RAMP at a time (the next one when a first answer
     * arrives), so the web server's connects do not overrun the FastCGI socket's listen
     * backlog (a full backlog makes lighttpd's connect fail: 500s and a retry storm). */
    /* nchan's long-poll answers nothing before a message: every poll is opened at once
     * and counts as answered (nginx accepts fast enough; its backlog is raised). */
    bool no_first = hold && proto == P_NCHAN;
    opened = hold && !no_first ? (n_conns < RAMP ? n_conns : RAMP) : n_conns;
    for (size_t i = 0; i < n_conns; i++)
        cs[i].sess = (int)(i % (n_sessions ? n_sessions : 1));
    for (size_t i = 0; i < opened; i++) {
        conn_open(&cs[i], i);
        if (hold)
            hold_request(&cs[i]);
        if (no_first) {
            cs[i].first_done = true;
            firsts++;
        }
    }
    if (no_first) {
        printf("ready\n");
        fflush(stdout);
    }
    start = now_us(CLOCK_MONOTONIC);
    if (!hold) {
        stop_at = start + (int64_t)(secs * 1e6);
        for (size_t i = 0; i < n_conns; i++)
            conn_send(&cs[i], bodies ? bodies[next_body++ % n_bodies] : NULL);
    }
    for (;;) {
        int64_t now = now_us(CLOCK_MONOTONIC);
        if (!hold && now >= stop_at && rate_done == 0)
            break;
        if (hold && have_final) {
            size_t behind = 0;
            for (size_t i = 0; i < n_conns; i++)
                behind += cs[i].cursor < final_seq[cs[i].sess];
            if (behind == 0 || now >= final_deadline) {
                for (size_t i = 0; i < n_conns; i++)
                    if (cs[i].cursor < final_seq[cs[i].sess])
                        lost += final_seq[cs[i].sess] - cs[i].cursor;
                break;
            }
        }
        int n = epoll_wait(ep, evs, 256, 100);
        if (n < 0 && errno == EINTR)
            continue;
        int64_t arrive = now_us(CLOCK_REALTIME);
        for (int k = 0; k < n; k++) {
            struct conn *c = evs[k].data.ptr;
            if (!c) {
                ssize_t r;
                while ((r = read(0, line + line_len, sizeof line - 1 - line_len)) > 0)
                    line_len += (size_t)r;
                line[line_len] = 0;
                char *nl = strchr(line, '\n');
                if (nl && strncmp(line, "final ", 6) == 0) {
                    json_t *o = json_loads(line + 6, 0, NULL);
                    for (size_t i = 0; i < n_sessions; i++) {
                        json_t *v = json_object_get(o, sessions[i]);
                        final_seq[i] = json_is_integer(v) ? json_integer_value(v) : 0;
                    }
                    json_decref(o);
                    have_final = true;
                    final_deadline = now_us(CLOCK_MONOTONIC) + 30000000;
                    epoll_ctl(ep, EPOLL_CTL_DEL, 0, NULL);
                }
                if (r == 0 && !nl)
                    epoll_ctl(ep, EPOLL_CTL_DEL, 0, NULL);
                continue;
            }
            bool alive = conn_read(c);
            if (hold && (proto == P_STREAM || proto == P_NCHAN_SSE)) {
                if (!stream_read(c, arrive) || !alive) {
                    close(c->fd);
                    reconnects++;
                    conn_open(c, (size_t)(c - cs));
                    hold_request(c);
                }
                continue;
            }
            int status;
            char *body;
            size_t blen, used;
            bool closing;
            while ((used = parse_response(c, &status, &body, &blen, &closing)) > 0) {
                if (hold) {
                    if (proto == P_NCHAN) {
                        char *he = memmem(c->buf, used, "\r\n\r\n", 4);
                        header_copy(c->buf, he, "Last-Modified:", c->lastmod, sizeof c->lastmod);
                        header_copy(c->buf, he, "Etag:", c->etag, sizeof c->etag);
                    }
                    hold_answer(c, status, body, blen, arrive);
                    if (!c->first_done)
                        first_answer(c);
                } else {
                    status_count[status > 0 && status < 600 ? status : 0]++;
                    vec_add(&lat, now_us(CLOCK_MONOTONIC) - c->sent_us);
                }
                memmove(c->buf, c->buf + used, c->len - used);
                c->len -= used;
                if (closing)
                    alive = false;
                if (!alive)
                    break;
                if (hold)
                    hold_request(c);
                else if (now_us(CLOCK_MONOTONIC) < stop_at)
                    conn_send(c, bodies ? bodies[next_body++ % n_bodies] : NULL);
            }
            if (!alive) {
                close(c->fd);
                reconnects++;
                conn_open(c, (size_t)(c - cs));
                if (hold)
                    hold_request(c);
                else if (now_us(CLOCK_MONOTONIC) < stop_at)
                    conn_send(c, bodies ? bodies[next_body++ % n_bodies] : NULL);
            }
        }
    }
    int64_t elapsed = now_us(CLOCK_MONOTONIC) - start;
    double cpu = cpu_s() - cpu0;
    if (hold) {
        printf("{\"polls\":%zu,\"sessions\":%zu,\"delivered\":%lld,\"bench_events\":%lld,"
               "\"lost\":%lld,\"duplicated\":%lld,\"errors\":%lld,\"reconnects\":%lld,"
               "\"client_cpu_s\":%.3f,\"client_wall_s\":%.3f,",
               n_conns, n_sessions, delivered, bench_events, lost, dups, errors, reconnects, cpu,
               (double)elapsed / 1e6);
        print_latency("", &lat);
        printf(",\"status\":{");
        const char *sep = "";
        for (int s = 0; s < 600; s++) {
            if (status_count[s]) {
                printf("%s\"%d\":%lld", sep, s, status_count[s]);
                sep = ",";
            }
        }
        printf("}}\n");
    } else {
        long long total = 0;
        printf("{\"conns\":%zu,\"seconds\":%.3f,\"status\":{", n_conns, (double)elapsed / 1e6);
        const char *sep = "";
        for (int s = 0; s < 600; s++) {
            if (status_count[s]) {
                printf("%s\"%d\":%lld", sep, s, status_count[s]);
                sep = ",";
                total += status_count[s];
            }
        }
        printf("},\"requests\":%lld,\"per_s\":%.1f,\"client_cpu_s\":%.3f,\"reconnects\":%lld,",
               total, (double)total * 1e6 / (double)elapsed, cpu, reconnects);
        print_latency("", &lat);
        printf("}\n");
    }
    return 0;
}

/* "PORT" or "PORT,PORT,...": connection i goes to port i % n (several web servers). */
static void parse_ports(const char *s)
{
    n_ports = 0;
    while (*s && n_ports < 16) {
        char *end;
        ports[n_ports++] = (int)strtol(s, &end, 10);
        s = *end == ',' ? end + 1 : end;
        if (end == s && *s)
            break;
    }
    if (n_ports == 0)
        n_ports = 1;
}

int main(int argc, char **argv)
{
    static const char *const protos[] = {"hold", "stream", "nchan", "nchan-sse"};
    for (int k = 0; argc >= 7 && k < 4; k++)
        if (strcmp(argv[1], protos[k]) == 0)
            proto = (enum proto)k;
    if (argc >= 7 && (proto != P_CHATGW || strcmp(argv[1], "hold") == 0)) {
        parse_ports(argv[2]);
        token = argv[3];
        sessions = read_lines(argv[4], &n_sessions);
        wait_ms_hold = atoi(argv[6]);
        path = "/api/chat/subscribe";
        if (getenv("LOAD_SUBSCRIBE_PATH"))
            path = getenv("LOAD_SUBSCRIBE_PATH");
        if (getenv("LOAD_STREAM_PATH"))
            stream_path = getenv("LOAD_STREAM_PATH");
        final_seq = calloc(n_sessions, sizeof *final_seq);
        for (size_t i = 0; i < n_sessions; i++)
            final_seq[i] = -1;
        return run(true, (size_t)atol(argv[5]), 0);
    }
    if (argc >= 9 && strcmp(argv[1], "rate") == 0) {
        parse_ports(argv[2]);
        token = argv[3];
        method = argv[4];
        path = argv[5];
        bodies = read_lines(argv[6], &n_bodies);
        return run(false, (size_t)atol(argv[7]), atof(argv[8]));
    }
    fprintf(stderr, "usage: load hold|stream|nchan|nchan-sse PORT TOKEN SESSIONS_FILE POLLS "
                    "WAIT_MS\n"
                    "       load rate PORT TOKEN METHOD PATH BODIES_FILE|- CONNS SECS\n");
    return 2;
}
