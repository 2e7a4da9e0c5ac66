/* fcgi_wire.c: FCGI_STDOUT and FCGI_END_REQUEST records straight to a socket. */
#include "fcgi/fcgi_wire.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#define BATCH_IOV 64     /* iovecs per sendmsg */
#define BATCH_HEADERS 24 /* record headers per sendmsg (a record is >= 2 iovecs) */

void fcgi_wire_header(unsigned char out[FCGI_WIRE_HEADER_LEN], int type, int request_id,
                      size_t content_len, size_t padding_len)
{
    out[0] = FCGI_WIRE_VERSION;
    out[1] = (unsigned char)type;
    out[2] = (unsigned char)((request_id >> 8) & 0xff);
    out[3] = (unsigned char)(request_id & 0xff);
    out[4] = (unsigned char)((content_len >> 8) & 0xff);
    out[5] = (unsigned char)(content_len & 0xff);
    out[6] = (unsigned char)padding_len;
    out[7] = 0;
}

size_t fcgi_wire_padding(size_t len)
{
    return (8 - len % 8) % 8;
}

/* The iovecs of one sendmsg, and the headers they point into. */
struct batch {
    int fd;
    struct iovec iov[BATCH_IOV];
    int n;
    unsigned char headers[BATCH_HEADERS][FCGI_WIRE_HEADER_LEN];
    int n_headers;
    int failed; /* errno of the failed send, 0 while all went out */
};

/* Sends every queued iovec (advancing over partial writes) and empties the batch. */
static void batch_flush(struct batch *b)
{
    struct iovec *iov = b->iov;
    int n = b->n;
    while (n > 0 && !b->failed) {
        struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)n};
        ssize_t sent = sendmsg(b->fd, &msg, MSG_NOSIGNAL);
        if (sent < 0) {
            if (errno != EINTR)
                b->failed = errno;
            continue;
        }
        while (n > 0 && (size_t)sent >= iov->iov_len) {
            sent -= (ssize_t)iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (char *)iov->iov_base + sent;
            iov->iov_len -= (size_t)sent;
        }
    }
    b->n = 0;
    b->n_headers = 0;
}

static void batch_add(struct batch *b, const void *p, size_t len)
{
    if (len == 0)
        return;
    if (b->n == BATCH_IOV)
        batch_flush(b);
    b->iov[b->n].iov_base = (void *)p;
    b->iov[b->n].iov_len = len;
    b->n++;
}

/* Queues a record header; flushes first when the batch has no header left. */
static void batch_header(struct batch *b, int type, int request_id, size_t len, size_t pad)
{
    if (b->n_headers == BATCH_HEADERS)
        batch_flush(b);
    unsigned char *h = b->headers[b->n_headers++];
    fcgi_wire_header(h, type, request_id, len, pad);
    batch_add(b, h, FCGI_WIRE_HEADER_LEN);
}

int fcgi_wire_stdout(int fd, int request_id, const struct iovec *parts, size_t n, bool end,
                     uint32_t app_status)
{
    static const unsigned char zeros[8];
    struct batch b = {.fd = fd};
    size_t left = 0, part = 0, off = 0;
    unsigned char tail[3 * FCGI_WIRE_HEADER_LEN];

    for (size_t i = 0; i < n; i++)
        left += parts[i].iov_len;
    while (left > 0 && !b.failed) {
        size_t len = left > FCGI_WIRE_MAX_CONTENT ? FCGI_WIRE_MAX_CONTENT : left;
        size_t pad = fcgi_wire_padding(len);
        batch_header(&b, FCGI_WIRE_STDOUT, request_id, len, pad);
        left -= len;
        while (len > 0) { /* this record's content: pieces of one or more parts */
            size_t take = parts[part].iov_len - off;
            if (take > len)
                take = len;
            batch_add(&b, (const char *)parts[part].iov_base + off, take);
            off += take;
            len -= take;
            if (off == parts[part].iov_len) {
                part++;
                off = 0;
            }
        }
        batch_add(&b, zeros, pad);
    }
    if (end) {
        /* The empty FCGI_STDOUT, then FCGI_END_REQUEST with its 8-byte body. */
        fcgi_wire_header(tail, FCGI_WIRE_STDOUT, request_id, 0, 0);
        fcgi_wire_header(tail + 8, FCGI_WIRE_END_REQUEST, request_id, 8, 0);
        tail[16] = (unsigned char)(app_status >> 24);
        tail[17] = (unsigned char)(app_status >> 16);
        tail[18] = (unsigned char)(app_status >> 8);
        tail[19] = (unsigned char)app_status;
        tail[20] = FCGI_WIRE_REQUEST_COMPLETE;
        memset(tail + 21, 0, 3);
        batch_add(&b, tail, sizeof tail);
    }
    batch_flush(&b);
    if (b.failed) {
        errno = b.failed;
        return -1;
    }
    return 0;
}
