/* stream-floor.c: the least a FastCGI program can do to stream Server-Sent Events
 * through lighttpd; make bench's floor for chatgw's GET /chat/stream (compare part).
 * libfcgi, no store, no bus, no JSON library: what is left is lighttpd reading FastCGI
 * records and writing chunks to TCP, and one write per subscriber here.
 *
 *   stream-floor SOCKET_PATH TRIGGER_PATH
 *
 * One thread accepts requests on the FastCGI socket SOCKET_PATH, one after the other,
 * answers each with chatgw's event-stream head, its retry line and a chat_subscribed
 * ack ("lastSeq":0), flushes, and holds the request. A second thread reads datagrams
 * "SEQ" on the unix datagram socket TRIGGER_PATH: for each it stamps CLOCK_REALTIME in
 * microseconds and writes one event of the shape chatgw streams for a bench-pub event
 * ("content":"bench:<us>", "seq":SEQ) to every held request, FCGX_PutStr and
 * FCGX_FFlush each (one write per subscriber). A request whose write fails is finished
 * and dropped. No pacing, no batching: it writes as fast as it can. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <fcgiapp.h>

/* The head chatgw sends for /chat/stream (fcgi/adapter.c, stream_head_format; no CORS
 * here: the bench sends no Origin). */
#define HEAD                                                                                       \
    "Status: 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n"                         \
    "Cache-Control: no-store\r\nX-Accel-Buffering: no\r\n\r\n"

struct held {
    FCGX_Request r;
    struct held *next;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct held *list;   /* under lock */
static char session_id[80]; /* the first request's sessionId (under lock) */
static int listen_fd, trigger_fd;

/* sessionId=... of a query string into out ("-" when absent). */
static void query_session(const char *q, char *out, size_t size)
{
    const char *p = q ? strstr(q, "sessionId=") : NULL;
    size_t n = 0;
    if (p) {
        p += strlen("sessionId=");
        n = strcspn(p, "&");
    }
    if (!p || n == 0 || n >= size) {
        snprintf(out, size, "-");
        return;
    }
    memcpy(out, p, n);
    out[n] = 0;
}

/* ISO 8601 UTC with milliseconds, as chatgw's timestamps. */
static void iso_now(char *out, size_t size, const struct timespec *ts)
{
    struct tm tm;
    gmtime_r(&ts->tv_sec, &tm);
    snprintf(out, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts->tv_nsec / 1000000);
}

static void *acceptor(void *arg)
{
    (void)arg;
    for (;;) {
        struct held *h = calloc(1, sizeof *h);
        if (!h || FCGX_InitRequest(&h->r, listen_fd, 0) != 0) {
            fprintf(stderr, "stream-floor: out of memory\n");
            exit(1);
        }
        if (FCGX_Accept_r(&h->r) < 0) {
            fprintf(stderr, "stream-floor: accept failed\n");
            exit(1);
        }
        char sid[80], ts[96], text[1024];
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        iso_now(ts, sizeof ts, &now);
        query_session(FCGX_GetParam("QUERY_STRING", h->r.envp), sid, sizeof sid);
        int n =
            snprintf(text, sizeof text,
                     HEAD "retry: 2000\n\n"
                          "id: %s:0\nevent: chat_subscribed\ndata: {\"kind\":\"chat_subscribed\","
                          "\"sessionId\":\"%s\",\"found\":true,\"isProcessing\":false,"
                          "\"runId\":null,\"lastSeq\":0,\"firstSeq\":0,\"truncated\":false,"
                          "\"pendingPermissions\":[],\"timestamp\":\"%s\"}\n\n",
                     sid, sid, ts);
        if (n < 0 || (size_t)n >= sizeof text || FCGX_PutStr(text, n, h->r.out) < 0 ||
            FCGX_FFlush(h->r.out) < 0) {
            FCGX_Finish_r(&h->r);
            free(h);
            continue;
        }
        pthread_mutex_lock(&lock);
        if (!session_id[0])
            snprintf(session_id, sizeof session_id, "%s", sid);
        h->next = list;
        list = h;
        pthread_mutex_unlock(&lock);
    }
    return NULL;
}

/* One event to every held request; drops those whose write fails. */
static void broadcast(long long seq)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    long long us = (long long)now.tv_sec * 1000000 + now.tv_nsec / 1000;
    char ts[96], text[1024];
    iso_now(ts, sizeof ts, &now);
    pthread_mutex_lock(&lock);
    /* The fields and order of a bench-pub event as chatgw streams it (ids of the same
     * length as chatgw's UUIDs). */
    int n = snprintf(text, sizeof text,
                     "id: %s:%lld\nevent: text\ndata: {\"id\":\"text_%08llx-0000-4000-8000-"
                     "%012llx\",\"sessionId\":\"%s\",\"timestamp\":\"%s\",\"provider\":\"claude\","
                     "\"kind\":\"text\",\"runId\":\"run_00000000-0000-4000-8000-000000000000\","
                     "\"role\":\"assistant\",\"content\":\"bench:%lld\",\"i\":%lld,\"seq\":%lld}"
                     "\n\n",
                     session_id, seq, seq & 0xffffffffLL, us & 0xffffffffffffLL, session_id, ts, us,
                     seq - 1, seq);
    if (n < 0 || (size_t)n >= sizeof text) {
        pthread_mutex_unlock(&lock);
        return;
    }
    for (struct held **p = &list; *p;) {
        struct held *h = *p;
        if (FCGX_PutStr(text, n, h->r.out) < 0 || FCGX_FFlush(h->r.out) < 0) {
            *p = h->next;
            FCGX_Finish_r(&h->r);
            free(h);
            continue;
        }
        p = &h->next;
    }
    pthread_mutex_unlock(&lock);
}

static void *trigger(void *arg)
{
    (void)arg;
    for (;;) {
        char buf[32];
        ssize_t r = recv(trigger_fd, buf, sizeof buf - 1, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            perror("stream-floor: trigger");
            exit(1);
        }
        buf[r] = 0;
        char *end;
        errno = 0;
        long long seq = strtoll(buf, &end, 10);
        if (errno || end == buf || seq < 1) {
            fprintf(stderr, "stream-floor: bad trigger %s\n", buf);
            continue;
        }
        broadcast(seq);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: stream-floor SOCKET_PATH TRIGGER_PATH\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN); /* a gone web server connection is a failed write */
    FCGX_Init();
    umask(0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    if (strlen(argv[2]) >= sizeof a.sun_path) {
        fprintf(stderr, "stream-floor: trigger path too long\n");
        return 2;
    }
    memcpy(a.sun_path, argv[2], strlen(argv[2]) + 1);
    unlink(argv[2]);
    trigger_fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    if (trigger_fd < 0 || bind(trigger_fd, (struct sockaddr *)&a, sizeof a) < 0) {
        perror("stream-floor: trigger socket");
        return 1;
    }
    /* The FastCGI socket last: its path appearing says both are ready. */
    listen_fd = FCGX_OpenSocket(argv[1], 1024);
    if (listen_fd < 0) {
        perror("stream-floor: socket");
        return 1;
    }
    pthread_t t[2];
    if (pthread_create(&t[0], NULL, acceptor, NULL) != 0 ||
        pthread_create(&t[1], NULL, trigger, NULL) != 0) {
        fprintf(stderr, "stream-floor: pthread_create failed\n");
        return 1;
    }
    pthread_join(t[0], NULL);
    pthread_join(t[1], NULL);
    return 0;
}
