/* test_fcgi_wire.c: the FastCGI records chatgw writes itself for held requests
 * (fcgi/fcgi_wire.c, the adapter_held_* functions of fcgi/adapter.c), read back from the
 * other end of a socketpair by a record parser of the test's own: content split at
 * 65 535 bytes, padding to 8, the empty STDOUT and FCGI_END_REQUEST at the end. And
 * adapter_detach: the test plays the web server on a unix socket, a request accepted
 * with FCGX_Accept_r is detached, answered with records, and the same FCGX_Request
 * accepts the next one. No web server. */
#include <errno.h>
#include <fcgiapp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "fcgi/adapter.h"
#include "fcgi/fcgi_wire.h"
#include "fcgi/response.h"
#include "tap.h"
#include "testenv.h"

/* Everything one end of a socket receives until EOF (a thread, so the writer never
 * blocks on a full socket buffer). */
struct sink {
    int fd;
    pthread_t thread;
    unsigned char *buf;
    size_t len, cap;
};

static void *sink_main(void *arg)
{
    struct sink *s = arg;
    for (;;) {
        if (s->cap - s->len < 65536) {
            s->cap = s->cap ? s->cap * 2 : 1 << 17;
            s->buf = realloc(s->buf, s->cap);
            if (!s->buf)
                abort();
        }
        ssize_t got = read(s->fd, s->buf + s->len, s->cap - s->len);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        s->len += (size_t)got;
    }
    return NULL;
}

static void sink_start(struct sink *s, int fd)
{
    memset(s, 0, sizeof *s);
    s->fd = fd;
    if (pthread_create(&s->thread, NULL, sink_main, s) != 0)
        abort();
}

static void sink_join(struct sink *s)
{
    pthread_join(s->thread, NULL);
    close(s->fd);
}

/* What a byte stream of records says, checked record by record. */
struct parsed {
    unsigned char *stdout_bytes;
    size_t stdout_len;
    int stdout_records;  /* with content */
    int empty_stdout;    /* records of length 0 */
    int end_requests;    /* FCGI_END_REQUEST records */
    uint32_t app_status; /* of the last one */
    int protocol_status; /* ... */
    bool bad;            /* a record broke a rule below */
    bool after_end;      /* bytes followed the end-request */
    size_t max_content;  /* largest content of a record */
    int request_id;      /* of the first record; -1 when none */
};

static void parse(const unsigned char *p, size_t len, struct parsed *r)
{
    size_t at = 0;
    memset(r, 0, sizeof *r);
    r->request_id = -1;
    r->stdout_bytes = malloc(len + 1);
    while (at + 8 <= len) {
        const unsigned char *h = p + at;
        size_t clen = (size_t)h[4] << 8 | h[5], pad = h[6];
        int id = h[2] << 8 | h[3];
        if (r->request_id < 0)
            r->request_id = id;
        if (h[0] != 1 || id != r->request_id || (clen + pad) % 8 != 0 || pad > 7 ||
            at + 8 + clen + pad > len || r->end_requests)
            r->bad = true;
        if (r->end_requests)
            r->after_end = true;
        if (at + 8 + clen + pad > len)
            break;
        for (size_t i = 0; i < pad; i++)
            if (p[at + 8 + clen + i] != 0)
                r->bad = true;
        if (clen > r->max_content)
            r->max_content = clen;
        if (h[1] == FCGI_WIRE_STDOUT && clen > 0) {
            if (r->empty_stdout)
                r->bad = true; /* content after the end of the stream */
            memcpy(r->stdout_bytes + r->stdout_len, h + 8, clen);
            r->stdout_len += clen;
            r->stdout_records++;
        } else if (h[1] == FCGI_WIRE_STDOUT) {
            r->empty_stdout++;
        } else if (h[1] == FCGI_WIRE_END_REQUEST && clen == 8) {
            const unsigned char *b = h + 8;
            r->end_requests++;
            r->app_status =
                (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
            r->protocol_status = b[4];
        } else {
            r->bad = true;
        }
        at += 8 + clen + pad;
    }
    if (at != len)
        r->bad = true;
}

/* Sends parts through fcgi_wire_stdout over a socketpair and parses what arrives. */
static int roundtrip(const struct iovec *parts, size_t n, bool end, uint32_t status,
                     struct parsed *r)
{
    int sv[2];
    struct sink s;
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
        abort();
    sink_start(&s, sv[1]);
    int rc = fcgi_wire_stdout(sv[0], 0x1234, parts, n, end, status);
    close(sv[0]);
    sink_join(&s);
    parse(s.buf, s.len, r);
    free(s.buf);
    return rc;
}

static void test_small(void)
{
    struct parsed r;
    struct iovec part = {(void *)"hello", 5};
    is_int(roundtrip(&part, 1, true, 7, &r), 0, "a short text is written");
    ok(!r.bad && !r.after_end, "its records are well-formed (version, padding, lengths)");
    is_int(r.request_id, 0x1234, "with the request id, both bytes");
    is_int(r.stdout_records, 1, "one STDOUT record");
    ok(r.stdout_len == 5 && memcmp(r.stdout_bytes, "hello", 5) == 0, "carrying the text");
    is_int(r.empty_stdout, 1, "then the empty STDOUT");
    is_int(r.end_requests, 1, "and FCGI_END_REQUEST");
    ok(r.app_status == 7 && r.protocol_status == FCGI_WIRE_REQUEST_COMPLETE,
       "with appStatus and FCGI_REQUEST_COMPLETE");
    free(r.stdout_bytes);

    is_int(roundtrip(NULL, 0, false, 0, &r), 0, "nothing to write");
    ok(!r.bad && r.request_id == -1, "writes nothing");
    free(r.stdout_bytes);
    is_int(roundtrip(NULL, 0, true, 0, &r), 0, "only the end");
    ok(!r.bad && r.stdout_records == 0 && r.empty_stdout == 1 && r.end_requests == 1,
       "is the empty STDOUT and the end-request");
    free(r.stdout_bytes);
}

/* 2 MB in parts of odd sizes (and empty ones): > 24 records and > 64 iovecs per call. */
static void test_large(void)
{
    static const size_t sizes[] = {1, 0, 70000, 3, 129999, 65535, 65536, 8, 1700000};
    struct iovec parts[sizeof sizes / sizeof sizes[0]];
    size_t total = 0, k = 0;
    unsigned char *all = NULL;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        total += sizes[i];
    all = malloc(total);
    for (size_t i = 0; i < total; i++)
        all[i] = (unsigned char)(i * 131 + i / 251);
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        parts[i] = (struct iovec){all + k, sizes[i]};
        k += sizes[i];
    }
    struct parsed r;
    is_int(roundtrip(parts, sizeof sizes / sizeof sizes[0], true, 0, &r), 0,
           "%zu bytes in 9 parts are written", total);
    ok(!r.bad && !r.after_end, "its records are well-formed");
    ok(r.max_content == FCGI_WIRE_MAX_CONTENT, "no record holds more than 65535 bytes");
    is_int(r.stdout_records, (int)((total + 65534) / 65535), "records of 65535 bytes but the last");
    ok(r.stdout_len == total && memcmp(r.stdout_bytes, all, total) == 0,
       "their content is the parts, in order");
    ok(r.empty_stdout == 1 && r.end_requests == 1, "then the end");
    free(r.stdout_bytes);

    /* 300 one-byte parts: one record from many iovecs. */
    struct iovec small[300];
    for (size_t i = 0; i < 300; i++)
        small[i] = (struct iovec){all + i, 1};
    is_int(roundtrip(small, 300, false, 0, &r), 0, "300 one-byte parts are written");
    ok(!r.bad && r.stdout_records == 1 && r.stdout_len == 300 &&
           memcmp(r.stdout_bytes, all, 300) == 0 && r.end_requests == 0,
       "as one record, without an end");
    free(r.stdout_bytes);
    free(all);
}

static void test_gone(void)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
        abort();
    close(sv[1]);
    struct iovec part = {(void *)"x", 1};
    errno = 0;
    int rc = fcgi_wire_stdout(sv[0], 1, &part, 1, true, 0);
    ok(rc == -1 && errno == EPIPE, "a closed peer: -1, EPIPE, no SIGPIPE");
    close(sv[0]);
}

/* adapter_held_answer / _stream_*: the answer's text inside the records. */
static void test_adapter_held(void)
{
    struct config cfg = {0};
    struct request req = {.method = HTTP_POST};
    struct response resp = {0};
    int sv[2];
    struct sink s;
    struct parsed r;

    response_json(&resp, 200, json_pack("{s:s}", "kind", "chat_subscribed"));
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
        abort();
    sink_start(&s, sv[1]);
    struct fcgi_held h = {.fd = sv[0], .request_id = 9};
    is_int(adapter_held_answer(&h, &cfg, &req, &resp), 0, "a held answer is written");
    adapter_held_close(&h);
    is_int(h.fd, -1, "and its connection closed");
    sink_join(&s);
    parse(s.buf, s.len, &r);
    r.stdout_bytes[r.stdout_len] = '\0';
    ok(!r.bad && r.request_id == 9 && r.empty_stdout == 1 && r.end_requests == 1,
       "as records, with the end of the request");
    ok(strncmp((char *)r.stdout_bytes, "Status: 200 OK\r\n", 16) == 0 &&
           strstr((char *)r.stdout_bytes, "Content-Length: 27\r\n") &&
           strstr((char *)r.stdout_bytes, "\r\n\r\n{\"kind\":\"chat_subscribed\"}\n"),
       "the status line, headers and the JSON body with its newline");
    free(r.stdout_bytes);
    free(s.buf);
    json_decref(resp.body);

    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
        abort();
    sink_start(&s, sv[1]);
    h = (struct fcgi_held){.fd = sv[0], .request_id = 3};
    req.method = HTTP_GET;
    ok(adapter_held_stream_begin(&h, &cfg, &req, "retry: 2000\n\n", 13) == 0 &&
           adapter_held_stream_put(&h, ": ping\n\n", 8, false) == 0 &&
           adapter_held_stream_put(&h, "event: x\n\n", 10, true) == 0,
       "a stream's head, a frame and its last frame are written");
    adapter_held_close(&h);
    sink_join(&s);
    parse(s.buf, s.len, &r);
    r.stdout_bytes[r.stdout_len] = '\0';
    ok(!r.bad && r.stdout_records == 3 && r.empty_stdout == 1 && r.end_requests == 1,
       "one record per write, then the end");
    ok(strncmp((char *)r.stdout_bytes, "Status: 200 OK\r\nContent-Type: text/event-stream", 47) ==
               0 &&
           strstr((char *)r.stdout_bytes, "\r\n\r\nretry: 2000\n\n: ping\n\nevent: x\n\n"),
       "the head, then the frames in order");
    free(r.stdout_bytes);
    free(s.buf);
}

/* ---- adapter_detach against libfcgi: the test is the web server ---------------- */

static void put_record(int fd, int type, int id, const void *body, size_t len)
{
    unsigned char h[8];
    fcgi_wire_header(h, type, id, len, 0);
    if (write(fd, h, 8) != 8 || (len && write(fd, body, len) != (ssize_t)len))
        abort();
}

/* Connects to path and sends one GET request (id, FCGI_KEEP_CONN when keep) with
 * its params and an empty stdin. Returns the connection. */
static int web_server_request(const char *path, int id, bool keep)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (strlen(path) >= sizeof sa.sun_path)
        abort();
    memcpy(sa.sun_path, path, strlen(path) + 1);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
        abort();
    unsigned char begin[8] = {0, 1 /* FCGI_RESPONDER */, keep ? 1 : 0};
    static const char params[] = "\016\003REQUEST_METHOD"
                                 "GET"
                                 "\013\017REQUEST_URI"
                                 "/api/chat/x?a=1"
                                 "\014\003QUERY_STRING"
                                 "a=1";
    put_record(fd, 1 /* FCGI_BEGIN_REQUEST */, id, begin, sizeof begin);
    put_record(fd, 4 /* FCGI_PARAMS */, id, params, sizeof params - 1);
    put_record(fd, 4, id, NULL, 0);
    put_record(fd, 5 /* FCGI_STDIN */, id, NULL, 0);
    return fd;
}

static void test_detach(void)
{
    char dir[256], path[300];
    char prefix[] = "/api";
    struct config cfg = {.http_prefix = prefix, .max_body = 1024};
    FCGX_Request fr;
    struct request req;
    struct fcgi_held h;

    if (FCGX_Init() != 0 || testenv_tmpdir("fcgi_wire", dir, sizeof dir) < 0)
        abort();
    snprintf(path, sizeof path, "%s/s", dir);
    int sock = FCGX_OpenSocket(path, 8);
    ok(sock >= 0, "a FastCGI socket to accept on");
    FCGX_InitRequest(&fr, sock, 0);
    for (int round = 0; round < 2; round++) {
        int id = round ? 300 : 1;
        int web = web_server_request(path, id, round == 1);
        ok(FCGX_Accept_r(&fr) == 0, "request %d accepted%s", round + 1,
           round ? " into the same FCGX_Request" : "");
        ok(adapter_read(&fr, &cfg, &req) == 0 && strcmp(req.path, "/chat/x") == 0 &&
               strcmp(req.query, "a=1") == 0,
           "its params read");
        is_int(fr.keepConnection ? 1 : 0, round, "FCGI_KEEP_CONN %s", round ? "set" : "not set");
        adapter_detach(&fr, &h);
        ok(h.fd >= 0 && h.request_id == id && fr.ipcFd == -1 && !fr.in && !fr.out && !fr.err &&
               !fr.paramsPtr && !fr.keepConnection,
           "detached: the connection and id are h's, libfcgi holds nothing");
        struct response resp = {0};
        response_json(&resp, 200, json_pack("{s:i}", "n", round));
        struct sink s;
        sink_start(&s, web);
        ok(adapter_held_answer(&h, &cfg, &req, &resp) == 0, "answered as records");
        adapter_held_close(&h);
        sink_join(&s);
        struct parsed r;
        parse(s.buf, s.len, &r);
        ok(!r.bad && r.request_id == id && r.end_requests == 1 && r.app_status == 0,
           "the web server reads a well-formed answer and its end, then EOF%s",
           round ? " (a kept connection is closed too)" : "");
        free(r.stdout_bytes);
        free(s.buf);
        json_decref(resp.body);
        request_free(&req);
    }
    close(sock);
    testenv_rmtree(dir);
}

int main(void)
{
    plan_lazy();
    test_small();
    test_large();
    test_gone();
    test_adapter_held();
    test_detach();
    return done_testing();
}
