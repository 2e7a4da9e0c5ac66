/* fcgi-floor.c: the least a FastCGI program can do to deliver chatgw's events through
 * lighttpd, by long-poll and by Server-Sent Events; make bench's floors for chatgw's
 * POST /chat/subscribe and GET /chat/stream (compare part). libfcgi, no store, no bus, no
 * JSON library, no token: what is left is lighttpd's work per request and per chunk, and
 * libfcgi's reads and writes here.
 *
 *   fcgi-floor SOCKET_PATH TRIGGER_PATH THREADS
 *
 * THREADS threads accept requests on the FastCGI socket SOCKET_PATH (as chatgw.fcgi's
 * workers and the bench's hello-world do). A request whose URI has "/subscribe" is a
 * long-poll: its body's "lastSeq" is its cursor; one with "waitMs":0, or a cursor behind
 * the last event, is answered at once (chatgw's ack frame and the events after the
 * cursor still in a ring of the last RING), any other is held. Any other request is an
 * event stream: chatgw's event-stream head, its retry line and the ack, flushed, then
 * held. Acks say "lastSeq" = the last event's seq.
 *
 * Another thread reads datagrams "SEQ" on the unix datagram socket TRIGGER_PATH (SEQ
 * above the last one): for each it stamps CLOCK_REALTIME in microseconds, builds one
 * event of the shape chatgw delivers for a bench-pub event ("content":"bench:<us>",
 * "seq":SEQ) and writes it to every held stream (one write and flush each) and answers
 * every held long-poll with {"frames":[ack, event],"more":false} (one text for all; one
 * write and finish each), as fast as it can. A request whose write fails is finished and dropped.
 * The session id in the frames is the first request's. */
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

/* The heads chatgw sends (fcgi/adapter.c; no CORS here: the bench sends no Origin). */
#define STREAM_HEAD                                                                                \
    "Status: 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n"                         \
    "Cache-Control: no-store\r\nX-Accel-Buffering: no\r\n\r\n"
#define JSON_HEAD                                                                                  \
    "Status: 200 OK\r\nContent-Type: application/json\r\nCache-Control: no-store\r\n"              \
    "Content-Length: %zu\r\n\r\n"

#define RING 64      /* events kept for long-polls a little behind */
#define FRAME 1024   /* one frame's text at most */
#define ANSWER 16384 /* one long-poll answer at most (ack + RING frames fit) */

struct held {
    FCGX_Request r;
    struct held *next;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
/* Under lock: */
static struct held *streams, *polls;
static char session_id[80];    /* the first request's sessionId */
static long long last_seq;     /* the last event's seq (0: none yet) */
static char ring[RING][FRAME]; /* event JSON of seq s at ring[s % RING] */
static long long ring_seq[RING];
static int listen_fd, trigger_fd;

/* The value of name=... in a query string, or of "name": in a JSON body, into out
 * ("-" when absent). */
static void find_value(const char *text, const char *key, char *out, size_t size)
{
    const char *p = text ? strstr(text, key) : NULL;
    size_t n = 0;
    if (p) {
        p += strlen(key);
        while (*p == ' ' || *p == '"')
            p++;
        n = strcspn(p, "&\",} ");
    }
    if (!p || n == 0 || n >= size) {
        snprintf(out, size, "-");
        return;
    }
    memcpy(out, p, n);
    out[n] = 0;
}

/* ISO 8601 UTC with milliseconds, as chatgw's timestamps. */
static void iso_now(char *out, size_t size)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    snprintf(out, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
}

/* chatgw's chat_subscribed frame for the floor's one session (under lock). */
static int ack_json(char *out, size_t size)
{
    char ts[96];
    iso_now(ts, sizeof ts);
    return snprintf(out, size,
                    "{\"kind\":\"chat_subscribed\",\"sessionId\":\"%s\",\"found\":true,"
                    "\"isProcessing\":false,\"runId\":null,\"lastSeq\":%lld,\"firstSeq\":%lld,"
                    "\"truncated\":false,\"pendingPermissions\":[],\"timestamp\":\"%s\"}",
                    session_id, last_seq, last_seq ? 1LL : 0LL, ts);
}

/* The whole answer (head and body) to a long-poll with cursor: the ack and the events
 * after cursor still in the ring, into out (under lock). Returns its length. */
static int poll_text(char *out, size_t size, long long cursor)
{
    char body[ANSWER];
    size_t n = (size_t)snprintf(body, sizeof body, "{\"frames\":[");
    n += (size_t)ack_json(body + n, sizeof body - n);
    long long from = cursor + 1 > last_seq - RING + 1 ? cursor + 1 : last_seq - RING + 1;
    for (long long s = from; s <= last_seq && s > 0; s++)
        if (ring_seq[s % RING] == s)
            n += (size_t)snprintf(body + n, sizeof body - n, ",%s", ring[s % RING]);
    n += (size_t)snprintf(body + n, sizeof body - n, "],\"more\":false}");
    return snprintf(out, size, JSON_HEAD "%s", n, body);
}

/* Writes an answer to long-poll r and finishes it. */
static void poll_finish(FCGX_Request *r, const char *text, int n)
{
    (void)FCGX_PutStr(text, n, r->out);
    FCGX_Finish_r(r);
}

/* A long-poll with cursor c: answered now (nowait, or events after c), or held (under
 * lock). Returns 1 when held. */
static int poll_start(struct held *h, long long c, int nowait)
{
    if (nowait || c < last_seq) {
        char text[ANSWER + 256];
        poll_finish(&h->r, text, poll_text(text, sizeof text, c));
        return 0;
    }
    h->next = polls;
    polls = h;
    return 1;
}

/* An event stream: head, retry, ack, then held (under lock). Returns 1 when held. */
static int stream_start(struct held *h)
{
    char text[FRAME + 256], ack[FRAME];
    ack_json(ack, sizeof ack);
    int n = snprintf(text, sizeof text,
                     STREAM_HEAD "retry: 2000\n\nid: %s:%lld\nevent: chat_subscribed\n"
                                 "data: %s\n\n",
                     session_id, last_seq, ack);
    if (n < 0 || (size_t)n >= sizeof text || FCGX_PutStr(text, n, h->r.out) < 0 ||
        FCGX_FFlush(h->r.out) < 0) {
        FCGX_Finish_r(&h->r);
        return 0;
    }
    h->next = streams;
    streams = h;
    return 1;
}

static void *acceptor(void *arg)
{
    (void)arg;
    for (;;) {
        struct held *h = calloc(1, sizeof *h);
        if (!h || FCGX_InitRequest(&h->r, listen_fd, 0) != 0) {
            fprintf(stderr, "fcgi-floor: out of memory\n");
            exit(1);
        }
        if (FCGX_Accept_r(&h->r) < 0) {
            fprintf(stderr, "fcgi-floor: accept failed\n");
            exit(1);
        }
        const char *uri = FCGX_GetParam("REQUEST_URI", h->r.envp);
        int is_poll = uri && strstr(uri, "/subscribe");
        char sid[80], body[4096], cursor[32], wait[32];
        const char *query = FCGX_GetParam("QUERY_STRING", h->r.envp);
        long long c = 0;
        int nowait = 0;
        if (is_poll) {
            int n = FCGX_GetStr(body, sizeof body - 1, h->r.in);
            body[n > 0 ? n : 0] = 0;
            find_value(body, "\"sessionId\":", sid, sizeof sid);
            find_value(body, "\"lastSeq\":", cursor, sizeof cursor);
            find_value(body, "\"waitMs\":", wait, sizeof wait);
            c = atoll(cursor);
            nowait = strcmp(wait, "0") == 0;
        } else {
            find_value(query, "sessionId=", sid, sizeof sid);
        }
        pthread_mutex_lock(&lock);
        if (!session_id[0] && strcmp(sid, "-") != 0)
            snprintf(session_id, sizeof session_id, "%s", sid);
        int held = is_poll ? poll_start(h, c, nowait) : stream_start(h);
        pthread_mutex_unlock(&lock);
        if (!held)
            free(h);
    }
    return NULL;
}

/* Event seq to every held stream and long-poll; drops streams whose write fails. */
static void broadcast(long long seq)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    long long us = (long long)now.tv_sec * 1000000 + now.tv_nsec / 1000;
    char ts[96], text[FRAME + 128];
    iso_now(ts, sizeof ts);
    pthread_mutex_lock(&lock);
    if (seq <= last_seq) {
        pthread_mutex_unlock(&lock);
        fprintf(stderr, "fcgi-floor: seq %lld not after %lld\n", seq, last_seq);
        return;
    }
    /* The fields and order of a bench-pub event as chatgw delivers it (ids of the same
     * length as chatgw's UUIDs). */
    char *ev = ring[seq % RING];
    int n = snprintf(ev, FRAME,
                     "{\"id\":\"text_%08llx-0000-4000-8000-%012llx\",\"sessionId\":\"%s\","
                     "\"timestamp\":\"%s\",\"provider\":\"claude\",\"kind\":\"text\","
                     "\"runId\":\"run_00000000-0000-4000-8000-000000000000\","
                     "\"role\":\"assistant\",\"content\":\"bench:%lld\",\"i\":%lld,\"seq\":%lld}",
                     seq & 0xffffffffLL, us & 0xffffffffffffLL, session_id, ts, us, seq - 1, seq);
    if (n < 0 || n >= FRAME) {
        pthread_mutex_unlock(&lock);
        return;
    }
    ring_seq[seq % RING] = seq;
    long long cursor = last_seq;
    last_seq = seq;
    n = snprintf(text, sizeof text, "id: %s:%lld\nevent: text\ndata: %s\n\n", session_id, seq, ev);
    for (struct held **p = &streams; *p;) {
        struct held *h = *p;
        if (FCGX_PutStr(text, n, h->r.out) < 0 || FCGX_FFlush(h->r.out) < 0) {
            *p = h->next;
            FCGX_Finish_r(&h->r);
            free(h);
            continue;
        }
        p = &h->next;
    }
    /* Every held poll's cursor is the event before (a poll behind was answered at
     * once): one text for all. */
    static char answer[ANSWER + 256];
    int an = polls ? poll_text(answer, sizeof answer, cursor) : 0;
    while (polls) {
        struct held *h = polls;
        polls = h->next;
        poll_finish(&h->r, answer, an);
        free(h);
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
            perror("fcgi-floor: trigger");
            exit(1);
        }
        buf[r] = 0;
        char *end;
        errno = 0;
        long long seq = strtoll(buf, &end, 10);
        if (errno || end == buf || seq < 1) {
            fprintf(stderr, "fcgi-floor: bad trigger %s\n", buf);
            continue;
        }
        broadcast(seq);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    int threads = argc == 4 ? atoi(argv[3]) : 0;
    if (argc != 4 || threads < 1 || threads > 64) {
        fprintf(stderr, "usage: fcgi-floor SOCKET_PATH TRIGGER_PATH THREADS\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN); /* a gone web server connection is a failed write */
    FCGX_Init();
    umask(0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    if (strlen(argv[2]) >= sizeof a.sun_path) {
        fprintf(stderr, "fcgi-floor: trigger path too long\n");
        return 2;
    }
    memcpy(a.sun_path, argv[2], strlen(argv[2]) + 1);
    unlink(argv[2]);
    trigger_fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    if (trigger_fd < 0 || bind(trigger_fd, (struct sockaddr *)&a, sizeof a) < 0) {
        perror("fcgi-floor: trigger socket");
        return 1;
    }
    /* The FastCGI socket last: its path appearing says both are ready. */
    listen_fd = FCGX_OpenSocket(argv[1], 1024);
    if (listen_fd < 0) {
        perror("fcgi-floor: socket");
        return 1;
    }
    pthread_t t;
    for (int i = 0; i < threads; i++)
        if (pthread_create(&t, NULL, acceptor, NULL) != 0) {
            fprintf(stderr, "fcgi-floor: pthread_create failed\n");
            return 1;
        }
    if (pthread_create(&t, NULL, trigger, NULL) != 0) {
        fprintf(stderr, "fcgi-floor: pthread_create failed\n");
        return 1;
    }
    pthread_join(t, NULL);
    return 0;
}
