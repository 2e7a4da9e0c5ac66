/* fcgi_wire.h: FastCGI records written without libfcgi: the answer of a request that
 * was detached from libfcgi while the poller held it (adapter_detach). Only adapter.c
 * uses it; the record layout is the FastCGI 1.0 specification's (section 3.3). */
#ifndef CGW_FCGI_FCGI_WIRE_H
#define CGW_FCGI_FCGI_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define FCGI_WIRE_HEADER_LEN 8
#define FCGI_WIRE_MAX_CONTENT 65535 /* a record's contentLength is 16 bits */
#define FCGI_WIRE_VERSION 1
#define FCGI_WIRE_END_REQUEST 3
#define FCGI_WIRE_STDOUT 6
#define FCGI_WIRE_REQUEST_COMPLETE 0 /* protocolStatus of FCGI_END_REQUEST */

/* The 8-byte header of a record: version 1, type, requestId, contentLength, paddingLength
 * (content_len <= FCGI_WIRE_MAX_CONTENT, padding_len <= 255). */
void fcgi_wire_header(unsigned char out[FCGI_WIRE_HEADER_LEN], int type, int request_id,
                      size_t content_len, size_t padding_len);

/* Padding that brings a record's content of len bytes to a multiple of 8. */
size_t fcgi_wire_padding(size_t len);

/* Writes the bytes of parts[0..n) (one stream: their concatenation) to the socket fd as
 * FCGI_STDOUT records of request_id, each at most FCGI_WIRE_MAX_CONTENT bytes of content
 * padded to a multiple of 8. With end, an empty FCGI_STDOUT (the end of the stream) and
 * FCGI_END_REQUEST {app_status, FCGI_REQUEST_COMPLETE} follow. Nothing is written for
 * n == 0 without end. The records go out in as few sendmsg calls as an iovec batch
 * allows (one for an answer of up to ~1 MiB), restarted after EINTR and partial writes;
 * a socket timeout (SO_SNDTIMEO) ends it. No SIGPIPE (MSG_NOSIGNAL). Returns 0, or -1
 * with errno when the connection failed (part of the records may have gone out). */
int fcgi_wire_stdout(int fd, int request_id, const struct iovec *parts, size_t n, bool end,
                     uint32_t app_status);

#endif
