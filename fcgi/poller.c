/* poller.c: the long-poll event loop: held subscribe requests, notifications, deadlines.
 *
 * Entry points: poller_start (starts the thread), poller_park_new / park_free (a
 * worker prepares a held request), poller_park (main.c hands the request over),
 * poller_held, poller_total, poller_stop.
 *
 * States of a parked request:
 *   NEW        made by a worker with poller_park_new; holds one of the user's slots
 *              (limits.max_polls_per_user per process).
 *   QUEUED     handed over with poller_park: on the incoming list, the wake eventfd
 *              signalled. From here on only the poller thread touches it.
 *   HELD       registered by the loop: its FastCGI connection is in the epoll set, it
 *              is in the deadline heap and in the waiter list of each of its found
 *              sessions (a "watch" per session id). Registering marks those sessions
 *              dirty, so they are read once more: an event published between the
 *              worker's read and the registration is not missed.
 *   ANSWERING  on this round's answer list: a read showed news for its cursor, its
 *              waitMs passed (acks alone), or the poller is stopping.
 *   DONE       answered (adapter_held_answer: the answer and the FastCGI end-request
 *              written as records, then adapter_held_close), or dropped
 *              without a word when its connection became readable or hung up (the
 *              web server gave up on it because the client went away); the user's
 *              slot is given back and everything is freed.
 *
 * A stream (GET /chat/stream, poller_park_stream_new) goes through the same states, but
 * ANSWERING writes its news (or a heartbeat) and puts it back to HELD with its next
 * deadline; it is DONE only at its end (limits.stream_max_s, the poller stopping, a
 * revoked token, a failed write or a dropped connection). See "streams" below.
 *
 * A round of the loop: epoll_wait (until the next deadline or retry) -> take new
 * requests, notifications (mark their sessions dirty), dropped connections -> read
 * each dirty session once, after the smallest cursor of its waiters, and queue the
 * waiters with news -> queue expired requests -> answer the queue -> free the round's
 * reads. A session is read at most once per round, however many requests wait on it.
 *
 * Redis: one subscriber connection (bus_notify) and one ordinary connection (struct
 * bus) for reads. A lost subscriber is reopened with backoff (100 ms doubling to 5 s)
 * and then every watched session is read again (events may have been published while
 * nobody listened). A failed read marks the bus down for a second: requests answered
 * meanwhile get 503 BACKEND_UNAVAILABLE, and every session is read again after it.
 */
#include "fcgi/poller.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "core/auth.h"
#include "core/auth_cache.h"
#include "core/bus_notify.h"
#include "core/log.h"
#include "core/util.h"
#include "fcgi/adapter.h"
#include "fcgi/metrics.h"

#define USER_BUCKETS 256
#define EPOLL_BATCH 128
#define SUB_BACKOFF_MIN_MS 100
#define SUB_BACKOFF_MAX_MS 5000
#define BUS_RETRY_MS 1000
#define WRITE_TIMEOUT_S 5 /* a stalled web server cannot hold the loop longer per write */
#define NOT_IN_HEAP SIZE_MAX
#define CACHE_RING 64                 /* events kept per session */
#define CACHE_RING_BYTES (256 * 1024) /* ... at most about this many bytes */
#define CACHE_ENTRIES 65536           /* sessions kept */
#define CACHE_MAX_AGE_MS 10000        /* a read is trusted this long */
#define CACHE_IDLE_MS 60000           /* an entry unused this long is dropped */
#define CACHE_SWEEP_MS 10000
#define AUTH_CACHE_SLOTS 4096
#define OWNER_CACHE_SLOTS 4096

struct watch;

/* One found session of a parked request, linked into the session's watch. */
struct waiter {
    struct park *park;
    struct sub_session *ss;
    struct watch *watch; /* NULL when it could not be linked (no memory) */
    struct waiter *prev, *next;
};

struct park {
    struct poller *poller;
    int64_t user_id;
    char token_public[AUTH_PUBLIC_LEN + 1]; /* the token it came with; "" when none */
    bool abort;                             /* an abort waiting for its run's complete */
    char run_id[CGW_ID_MAX];                /* ... of this run */
    enum http_method method;
    int route;          /* of the request, for metrics */
    int64_t started_us; /* ... */
    char *origin;       /* for CORS headers; NULL when none */
    int64_t deadline;   /* cgw_mono_ms */
    struct sub_session *sessions;
    size_t n;
    struct waiter *waiters; /* one per found session, in request order */
    size_t n_waiters;
    struct fcgi_held conn; /* the request, detached from libfcgi (adapter_detach) */
    bool in_epoll;
    bool answering;
    bool stream;        /* GET /chat/stream: written to and kept parked until its end */
    bool stream_open;   /* its head, retry hint and acks are written */
    int64_t stream_end; /* cgw_mono_ms: then it ends (limits.stream_max_s) */
    int64_t next_ping;  /* cgw_mono_ms: a ": ping" comment when nothing was written */
    size_t heap_idx;
    struct park *next; /* incoming list, then answer list */
};

/* The parked requests of one session, and this round's read of it. */
struct watch {
    char id[CGW_UUID_LEN + 1];
    struct watch *hnext;
    struct waiter *head;
    size_t n;
    bool dirty, snapped, snap_failed;
    struct watch *dirty_next, *snap_next;
    struct sub_snapshot snap;
    /* This round's SSE text of snap's events after one cursor, written as it is to
     * every single-session stream at that cursor (stream_shared); freed with snap. */
    struct sse_text frame;
    int64_t frame_from, frame_to;
    bool frame_feed, frame_set;
};

struct user_slot {
    int64_t user;
    int64_t held;
    struct user_slot *next;
};

struct poller {
    const struct config *cfg;
    const struct bus_config *bus_cfg;
    struct metrics *metrics; /* borrowed; may be NULL */
    pthread_t thread;

    /* Shared with the workers, under lock. */
    pthread_mutex_t lock;
    pthread_cond_t idle; /* signalled when stopping and nothing is held */
    struct park *incoming, **incoming_tail;
    struct user_slot *users[USER_BUCKETS];
    size_t held;
    uint64_t total; /* requests ever held: held + answered + dropped (for tests) */
    bool stopping, stopped;

    /* The poller thread's own. */
    int ep, wake_fd;
    struct bus *bus;
    struct store *store; /* opened when a held request's token is re-checked */
    struct poller_cache *cache;
    struct auth_cache *auth;
    struct owner_cache *owners;
    int64_t sweep_at; /* cgw_mono_ms: the next poller_cache_sweep */
    struct bus_notify *sub;
    int64_t sub_retry_at, sub_backoff;
    bool sub_lost_logged;
    bool bus_down;        /* reads fail: none before bus_retry_at, then all re-read */
    int64_t bus_retry_at; /* cgw_mono_ms */
    struct watch **buckets;
    size_t n_buckets, n_watches;
    struct park **heap;
    size_t heap_n, heap_cap;
    struct watch *dirty, *snapped;
    struct park *answer, **answer_tail;
    bool stopping_seen; /* queue_expired saw p->stopping: streams end */
    /* auth_cache_quiet, asked once per round's answers (not a poll() per answer), and
     * again after any Redis read made while answering: what such a read returns may
     * have been published after a revocation that is now waiting unread. */
    bool auth_quiet, auth_asked;
};

/* epoll data for the two fds that are not requests. */
static char wake_token, sub_token;

/* ---- users' slots (any thread) --------------------------------------------------- */

static struct user_slot **user_find(struct poller *p, int64_t user)
{
    struct user_slot **u = &p->users[(uint64_t)user % USER_BUCKETS];
    while (*u && (*u)->user != user)
        u = &(*u)->next;
    return u;
}

static enum cgw_err user_take(struct poller *p, int64_t user, struct cgw_error *err)
{
    enum cgw_err rc = CGW_OK;
    pthread_mutex_lock(&p->lock);
    struct user_slot **u = user_find(p, user);
    if ((int64_t)p->held >= p->cfg->max_polls) {
        rc = cgw_error_set(err, CGW_ERR_BUSY, "this process holds %zu requests (limits.max_polls)",
                           p->held);
    } else if (*u && (*u)->held >= p->cfg->max_polls_per_user) {
        rc = cgw_error_set(err, CGW_ERR_LIMIT, "user %lld holds %lld subscribe requests",
                           (long long)user, (long long)(*u)->held);
    } else if (!*u && !(*u = calloc(1, sizeof **u))) {
        rc = cgw_error_set(err, CGW_ERR_NOMEM, "out of memory");
    } else {
        (*u)->user = user;
        (*u)->held++;
        p->held++;
        p->total++;
    }
    pthread_mutex_unlock(&p->lock);
    return rc;
}

static void user_give(struct poller *p, int64_t user)
{
    pthread_mutex_lock(&p->lock);
    struct user_slot **u = user_find(p, user);
    if (*u && --(*u)->held <= 0) {
        struct user_slot *gone = *u;
        *u = gone->next;
        free(gone);
    }
    p->held--;
    if (p->stopping && p->held == 0) {
        p->stopped = true;
        pthread_cond_broadcast(&p->idle);
    }
    pthread_mutex_unlock(&p->lock);
}

/* ---- parks (any thread until handed over) ------------------------------------------ */

enum cgw_err poller_park_new(struct poller *p, const struct request *req, int64_t wait_ms,
                             struct sub_session *sessions, size_t n, struct park **out,
                             struct cgw_error *err)
{
    struct park *pk = calloc(1, sizeof *pk);
    int64_t user_id = req->user.id;
    const char *origin = req->origin;
    size_t n_found = 0;
    enum cgw_err rc;

    *out = NULL;
    for (size_t i = 0; i < n; i++)
        n_found += sessions[i].found;
    if (!pk || (n_found && !(pk->waiters = calloc(n_found, sizeof *pk->waiters))) ||
        (origin && !(pk->origin = strdup(origin)))) {
        rc = cgw_error_set(err, CGW_ERR_NOMEM, "out of memory");
        goto fail;
    }
    if ((rc = user_take(p, user_id, err)) != CGW_OK)
        goto fail;
    pk->poller = p;
    pk->user_id = user_id;
    snprintf(pk->token_public, sizeof pk->token_public, "%s", req->token_public);
    pk->method = req->method;
    pk->route = req->route;
    pk->started_us = req->started_us;
    pk->deadline = cgw_mono_ms() + (wait_ms > 0 ? wait_ms : 0);
    pk->sessions = sessions;
    pk->n = n;
    pk->conn.fd = -1;
    pk->heap_idx = NOT_IN_HEAP;
    for (size_t i = 0; i < n; i++) {
        if (!sessions[i].found)
            continue;
        struct waiter *wt = &pk->waiters[pk->n_waiters++];
        wt->park = pk;
        wt->ss = &sessions[i];
    }
    *out = pk;
    return CGW_OK;
fail:
    answer_sessions_free(sessions, n);
    if (pk) {
        free(pk->waiters);
        free(pk->origin);
        free(pk);
    }
    return rc;
}

enum cgw_err poller_park_abort_new(struct poller *p, const struct request *req, int64_t wait_ms,
                                   const char *session_id, const char *run_id, int64_t cursor,
                                   struct park **out, struct cgw_error *err)
{
    struct sub_session *ss = calloc(1, sizeof *ss);
    *out = NULL;
    if (!ss || !(ss->id = strdup(session_id))) {
        free(ss);
        return cgw_error_set(err, CGW_ERR_NOMEM, "out of memory");
    }
    ss->cursor = ss->store_last = cursor;
    ss->found = true;
    enum cgw_err rc = poller_park_new(p, req, wait_ms, ss, 1, out, err);
    if (rc == CGW_OK) {
        (*out)->abort = true;
        snprintf((*out)->run_id, sizeof(*out)->run_id, "%s", run_id);
    }
    return rc;
}

enum cgw_err poller_park_stream_new(struct poller *p, const struct request *req,
                                    struct sub_session *sessions, size_t n, struct park **out,
                                    struct cgw_error *err)
{
    enum cgw_err rc = poller_park_new(p, req, 0, sessions, n, out, err);
    if (rc == CGW_OK) {
        (*out)->stream = true;
        (*out)->stream_end = cgw_mono_ms() + p->cfg->stream_max_s * 1000;
    }
    return rc;
}

void park_free(struct park *pk)
{
    if (!pk)
        return;
    user_give(pk->poller, pk->user_id);
    answer_sessions_free(pk->sessions, pk->n);
    free(pk->waiters);
    free(pk->origin);
    free(pk);
}

void poller_park(struct poller *p, const struct fcgi_held *conn, struct park *pk)
{
    pk->conn = *conn;
    pthread_mutex_lock(&p->lock);
    pk->next = NULL;
    *p->incoming_tail = pk;
    p->incoming_tail = &pk->next;
    pthread_mutex_unlock(&p->lock);
    uint64_t one = 1;
    if (write(p->wake_fd, &one, sizeof one) < 0 && errno != EAGAIN)
        log_error("poller: cannot wake the loop: %s", strerror(errno));
}

struct poller_cache *poller_cache(struct poller *p)
{
    return p->cache;
}

struct auth_cache *poller_auth_cache(struct poller *p)
{
    return p->auth;
}

struct owner_cache *poller_owner_cache(struct poller *p)
{
    return p->owners;
}

size_t poller_held(struct poller *p)
{
    pthread_mutex_lock(&p->lock);
    size_t n = p->held;
    pthread_mutex_unlock(&p->lock);
    return n;
}

uint64_t poller_total(struct poller *p)
{
    pthread_mutex_lock(&p->lock);
    uint64_t n = p->total;
    pthread_mutex_unlock(&p->lock);
    return n;
}

/* ---- the deadline heap --------------------------------------------------------------- */

static void heap_set(struct poller *p, size_t i, struct park *pk)
{
    p->heap[i] = pk;
    pk->heap_idx = i;
}

static void heap_up(struct poller *p, size_t i)
{
    struct park *pk = p->heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (p->heap[parent]->deadline <= pk->deadline)
            break;
        heap_set(p, i, p->heap[parent]);
        i = parent;
    }
    heap_set(p, i, pk);
}

static void heap_down(struct poller *p, size_t i)
{
    struct park *pk = p->heap[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= p->heap_n)
            break;
        if (c + 1 < p->heap_n && p->heap[c + 1]->deadline < p->heap[c]->deadline)
            c++;
        if (p->heap[c]->deadline >= pk->deadline)
            break;
        heap_set(p, i, p->heap[c]);
        i = c;
    }
    heap_set(p, i, pk);
}

static int heap_push(struct poller *p, struct park *pk)
{
    if (p->heap_n == p->heap_cap) {
        size_t cap = p->heap_cap ? p->heap_cap * 2 : 64;
        struct park **bigger = realloc(p->heap, cap * sizeof *bigger);
        if (!bigger)
            return -1;
        p->heap = bigger;
        p->heap_cap = cap;
    }
    heap_set(p, p->heap_n++, pk);
    heap_up(p, pk->heap_idx);
    return 0;
}

static void heap_remove(struct poller *p, struct park *pk)
{
    size_t i = pk->heap_idx;
    if (i == NOT_IN_HEAP)
        return;
    pk->heap_idx = NOT_IN_HEAP;
    struct park *last = p->heap[--p->heap_n];
    if (i == p->heap_n)
        return;
    heap_set(p, i, last);
    heap_down(p, i);
    heap_up(p, last->heap_idx);
}

/* ---- watches ------------------------------------------------------------------------- */

static size_t id_hash(const char *s)
{
    return (size_t)cgw_hash_str(s);
}

static struct watch *watch_find(struct poller *p, const char *id)
{
    struct watch *w = p->buckets[id_hash(id) & (p->n_buckets - 1)];
    while (w && strcmp(w->id, id) != 0)
        w = w->hnext;
    return w;
}

static void watches_grow(struct poller *p)
{
    size_t n = p->n_buckets * 2;
    struct watch **b = calloc(n, sizeof *b);
    if (!b)
        return; /* longer chains, still correct */
    for (size_t i = 0; i < p->n_buckets; i++) {
        struct watch *w = p->buckets[i];
        while (w) {
            struct watch *next = w->hnext;
            size_t j = id_hash(w->id) & (n - 1);
            w->hnext = b[j];
            b[j] = w;
            w = next;
        }
    }
    free(p->buckets);
    p->buckets = b;
    p->n_buckets = n;
}

static struct watch *watch_get(struct poller *p, const char *id)
{
    struct watch *w = watch_find(p, id);
    if (w || strlen(id) > CGW_UUID_LEN)
        return w;
    if (!(w = calloc(1, sizeof *w)))
        return NULL;
    memcpy(w->id, id, strlen(id) + 1);
    size_t j = id_hash(id) & (p->n_buckets - 1);
    w->hnext = p->buckets[j];
    p->buckets[j] = w;
    if (++p->n_watches > p->n_buckets)
        watches_grow(p);
    return w;
}

/* Frees w when nobody waits on it and no list of this round refers to it. */
static void watch_maybe_free(struct poller *p, struct watch *w)
{
    if (w->n > 0 || w->dirty || w->snapped)
        return;
    struct watch **at = &p->buckets[id_hash(w->id) & (p->n_buckets - 1)];
    while (*at != w)
        at = &(*at)->hnext;
    *at = w->hnext;
    p->n_watches--;
    free(w);
}

static void mark_dirty(struct poller *p, struct watch *w)
{
    if (w->dirty)
        return;
    w->dirty = true;
    w->dirty_next = p->dirty;
    p->dirty = w;
}

static void mark_all_dirty(struct poller *p)
{
    for (size_t i = 0; i < p->n_buckets; i++)
        for (struct watch *w = p->buckets[i]; w; w = w->hnext)
            mark_dirty(p, w);
}

static void waiter_link(struct poller *p, struct waiter *wt)
{
    struct watch *w = watch_get(p, wt->ss->id);
    if (!w)
        return;
    wt->watch = w;
    wt->prev = NULL;
    wt->next = w->head;
    if (w->head)
        w->head->prev = wt;
    w->head = wt;
    w->n++;
    /* A plain poll whose cursor is the head as far as this process knows (every
     * notification up to now handled) has nothing to read: later publishes notify. */
    struct park *pk = wt->park;
    if (pk->abort || pk->stream ||
        !poller_cache_at_head(p->cache, w->id, wt->ss->cursor, wt->ss->store_last))
        mark_dirty(p, w);
}

static void waiter_unlink(struct poller *p, struct waiter *wt)
{
    struct watch *w = wt->watch;
    if (!w)
        return;
    if (wt->prev)
        wt->prev->next = wt->next;
    else
        w->head = wt->next;
    if (wt->next)
        wt->next->prev = wt->prev;
    wt->watch = NULL;
    w->n--;
    watch_maybe_free(p, w);
}

/* ---- Redis ------------------------------------------------------------------------- */

static bool bus_usable(struct poller *p)
{
    return !p->bus_down || cgw_mono_ms() >= p->bus_retry_at;
}

static void bus_failed(struct poller *p, const struct cgw_error *err)
{
    if (!p->bus_down)
        log_warn("poller: reading from Redis failed: %s", err->text);
    p->bus_down = true;
    p->bus_retry_at = cgw_mono_ms() + BUS_RETRY_MS;
}

/* A read of a session that worked: the bus is up again. */
static void bus_worked(struct poller *p)
{
    if (p->bus_down) {
        log_info("poller: reading from Redis works again");
        p->bus_down = false;
        mark_all_dirty(p); /* requests checked while it was down get their re-read */
    }
}

/* This round's read of w (after the smallest cursor of its waiters), from the process's
 * copy or from Redis, or NULL when Redis cannot be read. */
static struct sub_snapshot *watch_snapshot(struct poller *p, struct watch *w)
{
    struct cgw_error err;
    if (w->snapped)
        return w->snap_failed ? NULL : &w->snap;
    w->snapped = true;
    w->snap_next = p->snapped;
    p->snapped = w;
    if (!bus_usable(p)) {
        w->snap_failed = true;
        return NULL;
    }
    int64_t min = INT64_MAX;
    for (struct waiter *wt = w->head; wt; wt = wt->next)
        if (wt->ss->cursor < min)
            min = wt->ss->cursor;
    if (min == INT64_MAX)
        min = 0;
    /* The process's copy when it is current (a new stream's first acks, an expired
     * poll): no Redis read. After a notification it is not, until this read. */
    if (poller_cache_snapshot(p->cache, w->id, min, p->cfg->max_frames, p->cfg->max_answer_bytes,
                              &w->snap))
        return &w->snap;
    uint64_t gen = poller_cache_gen(p->cache);
    p->auth_asked = false;
    if (answer_snapshot_read(p->bus, w->id, min, p->cfg->max_frames, p->cfg->max_answer_bytes,
                             &w->snap, &err) != CGW_OK) {
        bus_failed(p, &err);
        w->snap_failed = true;
        return NULL;
    }
    bus_worked(p);
    poller_cache_store(p->cache, w->id, &w->snap, gen);
    return &w->snap;
}

static void on_notify(const struct bus_notify_msg *m, void *ctx)
{
    struct poller *p = ctx;
    if (m->kind == BUS_NOTIFY_AUTH) {
        log_debug("poller: token checks forgotten (revocation epoch %lld)", (long long)m->epoch);
        auth_cache_flush(p->auth);
        return;
    }
    if (strncmp(m->session_id, "u:", 2) == 0) /* a user's feed: its sessions changed */
        owner_cache_forget_user(p->owners, strtoll(m->session_id + 2, NULL, 10));
    poller_cache_notified(p->cache, m->session_id, m->seq);
    struct watch *w = watch_find(p, m->session_id);
    if (w)
        mark_dirty(p, w);
}

static void sub_close(struct poller *p)
{
    if (!p->sub)
        return;
    /* Nothing cached may be trusted while nobody listens. */
    auth_cache_live(p->auth, -1);
    poller_cache_live(p->cache, false);
    owner_cache_live(p->owners, false);
    if (epoll_ctl(p->ep, EPOLL_CTL_DEL, bus_notify_fd(p->sub), NULL) < 0)
        log_debug("poller: epoll_ctl: %s", strerror(errno)); /* closing removes it anyway */
    bus_notify_close(p->sub);
    p->sub = NULL;
}

static void sub_open(struct poller *p)
{
    struct cgw_error err;
    if (bus_notify_open(p->bus_cfg, &p->sub, &err) == CGW_OK) {
        struct epoll_event e = {.events = EPOLLIN, .data.ptr = &sub_token};
        if (epoll_ctl(p->ep, EPOLL_CTL_ADD, bus_notify_fd(p->sub), &e) == 0) {
            if (p->sub_lost_logged)
                log_info("poller: Redis notifications are back");
            p->sub_lost_logged = false;
            p->sub_backoff = SUB_BACKOFF_MIN_MS;
            p->bus_down = false;
            mark_all_dirty(p); /* whatever was published while nobody listened */
            auth_cache_live(p->auth, bus_notify_fd(p->sub));
            poller_cache_live(p->cache, true);
            owner_cache_live(p->owners, true);
            return;
        }
        cgw_error_set(&err, CGW_ERR_INTERNAL, "epoll_ctl: %s", strerror(errno));
        bus_notify_close(p->sub);
        p->sub = NULL;
    }
    if (!p->sub_lost_logged)
        log_warn("poller: no Redis notifications (%s); retrying", err.text);
    p->sub_lost_logged = true;
    p->sub_retry_at = cgw_mono_ms() + p->sub_backoff;
    p->sub_backoff =
        p->sub_backoff * 2 > SUB_BACKOFF_MAX_MS ? SUB_BACKOFF_MAX_MS : p->sub_backoff * 2;
}

static void sub_readable(struct poller *p)
{
    struct cgw_error err;
    auth_cache_reading(p->auth, true); /* a revocation may be among what is read */
    enum cgw_err rc = bus_notify_read(p->sub, on_notify, p, &err);
    auth_cache_reading(p->auth, rc == CGW_OK && bus_notify_partial(p->sub));
    if (rc == CGW_OK)
        return;
    log_warn("poller: Redis notifications lost (%s); reconnecting", err.text);
    p->sub_lost_logged = true;
    sub_close(p);
    p->sub_retry_at = cgw_mono_ms() + SUB_BACKOFF_MIN_MS;
}

/* ---- requests ----------------------------------------------------------------------- */

/* Takes pk out of the heap, the epoll set and its watches. */
static void unlink_park(struct poller *p, struct park *pk)
{
    heap_remove(p, pk);
    if (pk->in_epoll && epoll_ctl(p->ep, EPOLL_CTL_DEL, pk->conn.fd, NULL) < 0)
        log_debug("poller: epoll_ctl: %s", strerror(errno)); /* closing removes it anyway */
    pk->in_epoll = false;
    for (size_t i = 0; i < pk->n_waiters; i++)
        waiter_unlink(p, &pk->waiters[i]);
}

/* Takes pk out of every structure, writes resp (when not NULL: the whole answer and
 * the end of the request), closes the connection (adapter_held_close: without
 * libfcgi's shutdown-and-wait, up to 2 s, which would stall the loop) and frees it
 * all. */
static void release(struct poller *p, struct park *pk, const struct response *resp)
{
    unlink_park(p, pk);
    if (resp) {
        struct request req = {.method = pk->method, .origin = pk->origin};
        metrics_answer(p->metrics, pk->route, resp->status, metrics_now_us() - pk->started_us,
                       resp->body);
        if (adapter_held_answer(&pk->conn, p->cfg, &req, resp) < 0)
            log_info("poller: client went away before its subscribe answer");
        else
            log_debug("poller: held request answered: %d", resp->status);
    } else {
        log_debug("poller: held request dropped: the web server closed its connection");
    }
    adapter_held_close(&pk->conn);
    park_free(pk);
}

static void queue_answer(struct poller *p, struct park *pk)
{
    if (pk->answering)
        return;
    pk->answering = true;
    heap_remove(p, pk);
    pk->next = NULL;
    *p->answer_tail = pk;
    p->answer_tail = &pk->next;
}

static void take_incoming(struct poller *p)
{
    uint64_t count;
    if (read(p->wake_fd, &count, sizeof count) < 0 && errno != EAGAIN)
        log_error("poller: reading the wake fd: %s", strerror(errno));
    pthread_mutex_lock(&p->lock);
    struct park *list = p->incoming;
    p->incoming = NULL;
    p->incoming_tail = &p->incoming;
    pthread_mutex_unlock(&p->lock);

    while (list) {
        struct park *pk = list;
        list = pk->next;
        pk->next = NULL;
        struct timeval tv = {.tv_sec = WRITE_TIMEOUT_S};
        if (setsockopt(pk->conn.fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) < 0)
            log_debug("poller: SO_SNDTIMEO: %s", strerror(errno));
        /* Readable or hung up means the web server dropped the request; level-triggered,
         * so a connection that closed before this point shows up at once. */
        struct epoll_event e = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = pk};
        if (epoll_ctl(p->ep, EPOLL_CTL_ADD, pk->conn.fd, &e) == 0)
            pk->in_epoll = true;
        else
            log_error("poller: cannot watch a held request: %s", strerror(errno));
        for (size_t i = 0; i < pk->n_waiters; i++)
            waiter_link(p, &pk->waiters[i]);
        /* Without epoll or a heap slot it cannot wait: answer it in this round. */
        if (!pk->in_epoll || heap_push(p, pk) < 0)
            queue_answer(p, pk);
    }
}

/* Reads every dirty session once and queues the requests it has news for. */
static void check_dirty(struct poller *p)
{
    struct watch *w;
    while ((w = p->dirty)) {
        p->dirty = w->dirty_next;
        w->dirty = false;
        w->dirty_next = NULL;
        if (w->n == 0) {
            watch_maybe_free(p, w);
            continue;
        }
        struct sub_snapshot *s = watch_snapshot(p, w);
        if (!s)
            continue; /* Redis is down: everything is read again when it is back */
        for (struct waiter *wt = w->head; wt; wt = wt->next) {
            struct park *pk = wt->park;
            if (!pk->answering &&
                (pk->abort ? answer_abort_done(s, pk->run_id) : answer_snapshot_news(s, wt->ss)))
                queue_answer(p, pk);
        }
    }
}

static void queue_expired(struct poller *p)
{
    pthread_mutex_lock(&p->lock);
    bool stopping = p->stopping;
    pthread_mutex_unlock(&p->lock);
    int64_t now = cgw_mono_ms();
    p->stopping_seen = stopping;
    while (p->heap_n > 0 && (stopping || p->heap[0]->deadline <= now))
        queue_answer(p, p->heap[0]);
}

/* Answers pk: acks for all its sessions as they are now, and the events after its
 * cursors, from this round's reads (a read of its own when the shared one was cut
 * before its cursor). */
/* An abort's answer (DESIGN §3.4 abort): completed when this round's read of its
 * session shows the run ended, else still stopping (its deadline passed, the poller
 * stops, or Redis cannot be read). */
static void answer_abort(struct poller *p, struct park *pk)
{
    struct response resp = {.status = 500};
    struct waiter *wt = pk->n_waiters ? &pk->waiters[0] : NULL;
    struct sub_snapshot *s = wt && wt->watch ? watch_snapshot(p, wt->watch) : NULL;
    json_t *body = answer_abort_build(pk->sessions[0].id, pk->run_id, s);
    if (body)
        response_json(&resp, answer_abort_done(s, pk->run_id) ? 200 : 202, body);
    else
        response_error(&resp, CODE_INTERNAL_ERROR, pk->sessions[0].id, "internal error");
    release(p, pk, &resp);
    json_decref(resp.body);
}

/* Whether pk's token still holds (chatgwctl token revoke, a disabled user): a held
 * request answers with what its token may see now, not what it could see when it
 * came. Returns 0, or -1 with resp set (401, or 503 when SQLite cannot be read). */
static int token_recheck(struct poller *p, struct park *pk, struct response *resp)
{
    struct cgw_error err;
    if (!pk->token_public[0])
        return 0;
    if (!p->auth_asked) {
        p->auth_quiet = auth_cache_quiet(p->auth);
        p->auth_asked = true;
    }
    if (auth_cache_active_quiet(p->auth, pk->token_public, pk->user_id, p->auth_quiet))
        return 0;
    enum cgw_err rc = CGW_OK;
    if (!p->store)
        rc = store_open(config_db_target(p->cfg), false, p->cfg->db_busy_timeout_ms, &p->store,
                        &err);
    if (rc == CGW_OK)
        rc = auth_token_active(p->store, pk->token_public, pk->user_id, &err);
    if (rc == CGW_OK)
        return 0;
    if (rc == CGW_ERR_UNAUTHORIZED) {
        response_error(resp, CODE_UNAUTHORIZED, NULL, "invalid or revoked token");
    } else {
        log_warn("poller: cannot re-check a held request's token: %s", err.text);
        store_close(p->store);
        p->store = NULL;
        response_error(resp, CODE_BACKEND_UNAVAILABLE, NULL, "backend unavailable");
    }
    return -1;
}

/* ---- streams (GET /chat/stream, Server-Sent Events) ---------------------------------- *
 * A stream is a park that is written to instead of answered: its first turn writes the
 * head, a retry: hint and the acks; every later turn (news for a cursor, or its deadline:
 * the next heartbeat or its end) writes the events after its cursors, advancing them, or
 * a ": ping" comment, flushes, and parks it again with the next deadline. It ends at
 * limits.stream_max_s, when the poller stops, when its token no longer holds, or when a
 * write fails or the web server drops the connection (the client went away). */

#define STREAM_RETRY_MS 2000 /* the retry: hint: EventSource reconnects after it */

/* Writes t (then frees it) to pk's stream; false when the client is gone or memory ran
 * out while t was built. */
static bool stream_put(struct park *pk, struct sse_text *t)
{
    bool ok = !t->failed && adapter_held_stream_put(&pk->conn, t->buf, t->len, false) == 0;
    sse_text_free(t);
    return ok;
}

/* Ends pk's stream: last goes out first, with the end of the request, in one write;
 * NULL when the client is gone (the connection is just closed). */
static void stream_close(struct poller *p, struct park *pk, struct sse_text *last)
{
    unlink_park(p, pk);
    bool ok = last && !last->failed && /* NULL: the client is gone */
              adapter_held_stream_put(&pk->conn, last->buf, last->len, true) == 0;
    if (last)
        sse_text_free(last);
    log_debug("poller: stream ended%s", ok ? "" : ": the client went away");
    adapter_held_close(&pk->conn);
    park_free(pk);
}

/* The last event of a stream: {kind:"chat_stream_end", reason}, with its cursors (not
 * "stream_end": that is a provider event kind, the end of a streamed message). */
static void stream_end(struct poller *p, struct park *pk, const char *reason)
{
    struct sse_text t = {0}, id = {0};
    json_t *f = json_pack("{s:s, s:s}", "kind", "chat_stream_end", "reason", reason);
    sse_cursor_id(&id, pk->sessions, pk->n);
    sse_frame(&t, id.buf, f);
    json_decref(f);
    sse_text_free(&id);
    stream_close(p, pk, &t);
}

/* A stream that cannot go on with resp: the plain answer before its head went out,
 * else resp's error frame as its last event. */
static void stream_fail(struct poller *p, struct park *pk, const struct response *resp)
{
    if (!pk->stream_open) {
        release(p, pk, resp);
        return;
    }
    struct sse_text t = {0};
    sse_frame(&t, NULL, resp->body);
    stream_close(p, pk, &t);
}

/* The first turn: head, retry hint, one chat_subscribed ack per session (this round's
 * reads, with permissions). Returns 1 when written, 0 when the client is gone, -1 with
 * resp set when it cannot begin. */
static int stream_begin(struct poller *p, struct park *pk, struct response *resp)
{
    struct sse_text t = {0}, id = {0};
    struct cgw_error err;
    char retry[32];
    int rc = 1;

    snprintf(retry, sizeof retry, "retry: %d\n\n", STREAM_RETRY_MS);
    sse_append(&t, retry, strlen(retry));
    sse_cursor_id(&id, pk->sessions, pk->n);
    for (size_t i = 0, k = 0; rc == 1 && i < pk->n; i++) {
        struct sub_session *ss = &pk->sessions[i];
        struct sub_snapshot *s = NULL;
        if (ss->found) {
            struct waiter *wt = &pk->waiters[k++];
            p->auth_asked = false;
            if (!wt->watch || !(s = watch_snapshot(p, wt->watch)) || !bus_usable(p) ||
                answer_snapshot_perms(p->bus, ss->id, s, &err) != CGW_OK) {
                if (s && bus_usable(p))
                    bus_failed(p, &err);
                response_error(resp, CODE_BACKEND_UNAVAILABLE, NULL, "backend unavailable");
                rc = -1;
                break;
            }
        }
        if (ss->feed)
            continue; /* the feed has no ack */
        sse_ack(&t, id.buf, ss, s);
    }
    sse_text_free(&id);
    if (rc < 0) {
        sse_text_free(&t);
        return rc;
    }
    struct request req = {.method = pk->method, .origin = pk->origin};
    bool ok = !t.failed && adapter_held_stream_begin(&pk->conn, p->cfg, &req, t.buf, t.len) == 0;
    sse_text_free(&t);
    pk->stream_open = ok;
    return ok ? 1 : 0;
}

/* Appends wt's truncated frame (when events after its cursor are gone) and its events
 * after the cursor, from this round's read or one of its own, advancing the cursor. */
static void stream_session(struct poller *p, struct park *pk, struct waiter *wt, struct sse_text *t)
{
    struct sub_session *ss = wt->ss;
    struct sub_snapshot *s = &wt->watch->snap, own = {0};
    struct sse_text id = {0};
    struct cgw_error err;

    if (!answer_snapshot_covers(s, ss)) {
        if (!bus_usable(p))
            return;
        p->auth_asked = false;
        if (answer_snapshot_read(p->bus, ss->id, ss->cursor, p->cfg->max_frames,
                                 p->cfg->max_answer_bytes, &own, &err) != CGW_OK) {
            bus_failed(p, &err);
            answer_snapshot_free(&own);
            return;
        }
        s = &own;
    }
    if (answer_hole(s, ss)) {
        json_t *f = answer_truncated(ss, s);
        size_t i = answer_first_after(s, ss->cursor);
        ss->cursor = i < s->read.n ? s->read.events[i].seq - 1 : answer_last_seq(s, ss);
        sse_cursor_id(&id, pk->sessions, pk->n);
        sse_frame(t, id.buf, f);
        json_decref(f);
        sse_text_free(&id);
    }
    for (size_t i = answer_first_after(s, ss->cursor); i < s->read.n && !t->failed; i++) {
        const struct bus_event *e = &s->read.events[i];
        ss->cursor = e->seq;
        sse_cursor_id(&id, pk->sessions, pk->n);
        sse_stored(t, id.buf, e->json, e->len, ss->id, e->seq);
        sse_text_free(&id);
    }
    if (s->read.more)
        mark_dirty(p, wt->watch); /* the rest of the backlog: next round */
    answer_snapshot_free(&own);
}

/* A stream of one session whose news is all in this round's read (no hole): the text
 * is the same for every such stream at the same cursor, so it is built once per round
 * and written to each (1000 followers of a session: one build, 1000 writes). Returns as
 * stream_events, or 2 when pk's text must be its own. */
static int stream_shared(struct poller *p, struct park *pk)
{
    struct waiter *wt = &pk->waiters[0];
    struct sub_session *ss = wt->ss;
    struct watch *w = wt->watch;

    if (!w || !w->snapped || w->snap_failed)
        return 0;
    if (!answer_snapshot_covers(&w->snap, ss) || answer_hole(&w->snap, ss))
        return 2;
    if (!w->frame_set) {
        w->frame_from = ss->cursor;
        w->frame_feed = ss->feed;
        stream_session(p, pk, wt, &w->frame); /* advances ss->cursor */
        w->frame_to = ss->cursor;
        w->frame_set = true;
    } else if (w->frame_from == ss->cursor && w->frame_feed == ss->feed) {
        ss->cursor = w->frame_to;
        if (w->snap.read.more)
            mark_dirty(p, w); /* the rest of the backlog: next round */
    } else {
        return 2; /* another cursor: its own text */
    }
    if (w->frame.failed)
        return -1;
    if (w->frame.len == 0)
        return 0;
    return adapter_held_stream_put(&pk->conn, w->frame.buf, w->frame.len, false) == 0 ? 1 : -1;
}

/* Writes the news of every session read this round. Returns 1 when something was
 * written, 0 when nothing was due, -1 when the client is gone. */
static int stream_events(struct poller *p, struct park *pk)
{
    struct sse_text t = {0};
    if (pk->n == 1 && pk->n_waiters == 1) {
        int rc = stream_shared(p, pk);
        if (rc != 2)
            return rc;
    }
    for (size_t k = 0; k < pk->n_waiters; k++) {
        struct waiter *wt = &pk->waiters[k];
        if (wt->watch && wt->watch->snapped && !wt->watch->snap_failed)
            stream_session(p, pk, wt, &t);
    }
    if (t.len == 0 && !t.failed)
        return 0;
    return stream_put(pk, &t) ? 1 : -1;
}

static void stream_answer(struct poller *p, struct park *pk)
{
    struct response resp = {.status = 500};
    int64_t now = cgw_mono_ms();
    int rc = 1;

    if (token_recheck(p, pk, &resp) < 0 ||
        (!pk->stream_open && (rc = stream_begin(p, pk, &resp)) < 0)) {
        stream_fail(p, pk, &resp);
        json_decref(resp.body);
        return;
    }
    if (rc == 0) {
        stream_close(p, pk, NULL); /* gone before its acks */
        return;
    }
    if (!pk->next_ping)
        pk->next_ping = now + p->cfg->stream_heartbeat_s * 1000;
    if (p->stopping_seen || now >= pk->stream_end) {
        stream_end(p, pk, p->stopping_seen ? "shutdown" : "max_duration");
        return;
    }
    int wrote = stream_events(p, pk);
    if (wrote == 0 && now >= pk->next_ping) {
        struct sse_text t = {0};
        sse_append(&t, ": ping\n\n", 8);
        wrote = stream_put(pk, &t) ? 1 : -1;
    }
    if (wrote < 0) {
        stream_close(p, pk, NULL);
        return;
    }
    if (wrote > 0)
        pk->next_ping = now + p->cfg->stream_heartbeat_s * 1000;
    pk->answering = false;
    pk->deadline = pk->next_ping < pk->stream_end ? pk->next_ping : pk->stream_end;
    if (heap_push(p, pk) < 0)
        stream_end(p, pk, "internal_error");
}

static void answer_one(struct poller *p, struct park *pk)
{
    struct response resp = {.status = 500};
    if (pk->abort) {
        answer_abort(p, pk);
        return;
    }
    if (pk->stream) {
        stream_answer(p, pk);
        return;
    }
    if (token_recheck(p, pk, &resp) < 0) {
        release(p, pk, &resp);
        json_decref(resp.body);
        return;
    }
    struct sub_snapshot **snaps = pk->n ? calloc(pk->n, sizeof *snaps) : NULL;
    struct sub_snapshot *own = NULL;
    struct cgw_error err;
    enum cgw_code failed = CODE__COUNT;
    size_t frames = 0;

    if (pk->n && !snaps)
        failed = CODE_INTERNAL_ERROR;
    for (size_t i = 0, k = 0; failed == CODE__COUNT && i < pk->n; i++) {
        struct sub_session *ss = &pk->sessions[i];
        if (!ss->found)
            continue;
        struct waiter *wt = &pk->waiters[k++];
        struct sub_snapshot *s = NULL;
        if (wt->watch && !(s = watch_snapshot(p, wt->watch))) {
            failed = CODE_BACKEND_UNAVAILABLE;
            break;
        }
        if (!s || !answer_snapshot_covers(s, ss)) {
            if (!own && !(own = calloc(pk->n, sizeof *own))) {
                failed = CODE_INTERNAL_ERROR;
                break;
            }
            s = &own[i];
            p->auth_asked = false;
            if (!bus_usable(p) ||
                answer_snapshot_read(p->bus, ss->id, ss->cursor, p->cfg->max_frames,
                                     p->cfg->max_answer_bytes, s, &err) != CGW_OK) {
                if (bus_usable(p))
                    bus_failed(p, &err);
                failed = CODE_BACKEND_UNAVAILABLE;
                break;
            }
        }
        if (!s->have_perms) {
            p->auth_asked = false;
            if (!bus_usable(p) || answer_snapshot_perms(p->bus, ss->id, s, &err) != CGW_OK) {
                if (bus_usable(p))
                    bus_failed(p, &err);
                failed = CODE_BACKEND_UNAVAILABLE;
                break;
            }
            if (wt->watch && s == &wt->watch->snap) /* now with its permissions */
                poller_cache_store(p->cache, ss->id, s, poller_cache_gen(p->cache));
        }
        snaps[i] = s;
    }
    if (failed == CODE_BACKEND_UNAVAILABLE) {
        response_error(&resp, failed, NULL, "backend unavailable");
    } else if (failed != CODE__COUNT) {
        response_error(&resp, failed, NULL, "internal error");
    } else {
        /* As text, as the workers answer (answer_build_text): no Jansson tree. */
        char *text = answer_build_text(p->cfg, pk->sessions, pk->n, snaps, &frames);
        if (text)
            response_text(&resp, 200, "application/json; charset=utf-8", text);
        else
            response_error(&resp, CODE_INTERNAL_ERROR, NULL, "internal error");
    }
    release(p, pk, &resp);
    metrics_frames(p->metrics, frames);
    response_clear(&resp);
    for (size_t i = 0; own && i < pk->n; i++)
        answer_snapshot_free(&own[i]);
    free(own);
    free(snaps);
}

static void answer_queued(struct poller *p)
{
    struct park *pk;
    p->auth_asked = false; /* notifications may have come since the last round */
    while ((pk = p->answer)) {
        p->answer = pk->next;
        if (!p->answer)
            p->answer_tail = &p->answer;
        answer_one(p, pk);
    }
}

/* Frees this round's reads, and the watches nobody waits on any more. */
static void round_end(struct poller *p)
{
    struct watch *w;
    while ((w = p->snapped)) {
        p->snapped = w->snap_next;
        w->snap_next = NULL;
        answer_snapshot_free(&w->snap);
        sse_text_free(&w->frame);
        w->snapped = w->snap_failed = w->frame_set = false;
        watch_maybe_free(p, w);
    }
}

/* Milliseconds until the next deadline or retry, for epoll_wait; -1 = none. */
static int next_timeout(struct poller *p)
{
    int64_t now = cgw_mono_ms(), at = INT64_MAX;
    if (p->dirty)
        return 0; /* a stream that read only part of its backlog continues at once */
    if (p->heap_n > 0)
        at = p->heap[0]->deadline;
    if (!p->sub && p->sub_retry_at < at)
        at = p->sub_retry_at;
    if (p->bus_down && p->n_watches > 0 && p->bus_retry_at < at)
        at = p->bus_retry_at;
    if (at == INT64_MAX)
        return -1;
    if (at <= now)
        return 0;
    return at - now > INT_MAX ? INT_MAX : (int)(at - now);
}

static void *poller_main(void *arg)
{
    struct poller *p = arg;
    struct epoll_event ev[EPOLL_BATCH];

    sub_open(p);
    for (;;) {
        int n = epoll_wait(p->ep, ev, EPOLL_BATCH, next_timeout(p));
        if (n < 0) {
            if (errno != EINTR) {
                log_error("poller: epoll_wait: %s", strerror(errno));
                struct timespec pause = {0, 10 * 1000 * 1000};
                nanosleep(&pause, NULL);
            }
            n = 0;
        }
        for (int i = 0; i < n; i++) {
            void *ptr = ev[i].data.ptr;
            if (ptr == &wake_token)
                take_incoming(p);
            else if (ptr == &sub_token)
                sub_readable(p);
            else
                release(p, ptr, NULL); /* the web server dropped it: no answer */
        }
        int64_t now = cgw_mono_ms();
        if (!p->sub && now >= p->sub_retry_at)
            sub_open(p);
        if (p->bus_down && now >= p->bus_retry_at)
            mark_all_dirty(p); /* try again; bus_worked clears bus_down */
        check_dirty(p);
        queue_expired(p);
        answer_queued(p);
        round_end(p);
        if (now >= p->sweep_at) {
            poller_cache_sweep(p->cache);
            p->sweep_at = now + CACHE_SWEEP_MS;
        }
    }
    return NULL;
}

enum cgw_err poller_start(const struct config *cfg, const struct bus_config *bus_cfg,
                          struct metrics *metrics, struct poller **out, struct cgw_error *err)
{
    struct poller *p = calloc(1, sizeof *p);
    enum cgw_err rc;

    *out = NULL;
    if (!p)
        return cgw_error_set(err, CGW_ERR_NOMEM, "out of memory");
    p->cfg = cfg;
    p->bus_cfg = bus_cfg;
    p->metrics = metrics;
    p->ep = p->wake_fd = -1;
    p->incoming_tail = &p->incoming;
    p->answer_tail = &p->answer;
    p->sub_backoff = SUB_BACKOFF_MIN_MS;
    p->n_buckets = 64;
    if (pthread_mutex_init(&p->lock, NULL) != 0 || pthread_cond_init(&p->idle, NULL) != 0) {
        free(p);
        return cgw_error_set(err, CGW_ERR_INTERNAL, "poller: cannot create a lock");
    }
    if (!(p->buckets = calloc(p->n_buckets, sizeof *p->buckets))) {
        rc = cgw_error_set(err, CGW_ERR_NOMEM, "out of memory");
        goto fail;
    }
    p->ep = epoll_create1(EPOLL_CLOEXEC);
    p->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (p->ep < 0 || p->wake_fd < 0) {
        rc = cgw_error_set(err, CGW_ERR_IO, "poller: %s", strerror(errno));
        goto fail;
    }
    struct epoll_event e = {.events = EPOLLIN, .data.ptr = &wake_token};
    if (epoll_ctl(p->ep, EPOLL_CTL_ADD, p->wake_fd, &e) < 0) {
        rc = cgw_error_set(err, CGW_ERR_IO, "poller: epoll_ctl: %s", strerror(errno));
        goto fail;
    }
    struct poller_cache_limits lim = {.ring = CACHE_RING,
                                      .ring_bytes = CACHE_RING_BYTES,
                                      .entries = CACHE_ENTRIES,
                                      .max_age_ms = CACHE_MAX_AGE_MS,
                                      .idle_ms = CACHE_IDLE_MS};
    if ((rc = poller_cache_new(&lim, &p->cache, err)) != CGW_OK ||
        (rc = auth_cache_new(AUTH_CACHE_SLOTS, AUTH_CACHE_MAX_AGE_MS, &p->auth, err)) != CGW_OK ||
        (rc = owner_cache_new(OWNER_CACHE_SLOTS, cfg->fcgi_owner_cache_ms, &p->owners, err)) !=
            CGW_OK)
        goto fail;
    if ((rc = bus_open(bus_cfg, true, &p->bus, err)) != CGW_OK)
        goto fail;
    if (pthread_create(&p->thread, NULL, poller_main, p) != 0) {
        rc = cgw_error_set(err, CGW_ERR_INTERNAL, "poller: cannot start its thread");
        goto fail;
    }
    *out = p;
    return CGW_OK;
fail:
    bus_close(p->bus);
    poller_cache_free(p->cache);
    auth_cache_free(p->auth);
    owner_cache_free(p->owners);
    if (p->ep >= 0)
        close(p->ep);
    if (p->wake_fd >= 0)
        close(p->wake_fd);
    free(p->buckets);
    pthread_cond_destroy(&p->idle);
    pthread_mutex_destroy(&p->lock);
    free(p);
    return rc;
}

void poller_stop(struct poller *p, int64_t timeout_ms)
{
    struct timespec until = {.tv_sec = time(NULL)};
    if (clock_gettime(CLOCK_REALTIME, &until) != 0)
        until.tv_nsec = 0;
    until.tv_sec += (time_t)(timeout_ms / 1000);
    until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&p->lock);
    p->stopping = true;
    p->stopped = p->held == 0;
    pthread_mutex_unlock(&p->lock);
    uint64_t one = 1;
    if (write(p->wake_fd, &one, sizeof one) < 0 && errno != EAGAIN)
        log_error("poller: cannot wake the loop: %s", strerror(errno));
    pthread_mutex_lock(&p->lock);
    while (!p->stopped)
        if (pthread_cond_timedwait(&p->idle, &p->lock, &until) == ETIMEDOUT)
            break;
    pthread_mutex_unlock(&p->lock);
}
