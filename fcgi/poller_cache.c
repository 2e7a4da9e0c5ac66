/* poller_cache.c: the process's copy of recently polled sessions (see poller_cache.h).
 *
 * Time here is a logical clock: it ticks at every notification and every change of the
 * subscriber. A read offered with the tick it began at is kept only when no
 * notification for a session hashing like it (sketch[], one slot per hash bucket) and
 * no subscriber change came after that tick: the read then saw every publish that
 * notified before it, so its seq is the head as far as this process can know.
 */
#include "fcgi/poller_cache.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"

#define BUCKETS 1024 /* a power of two */

struct ring_event {
    int64_t seq;
    char *json;
    size_t len;
};

struct entry {
    char id[CGW_UUID_LEN + 1];
    struct entry *next;
    uint64_t epoch;    /* the subscriber's epoch of the read; stale in any other */
    int64_t head;      /* the read's high-water seq */
    int64_t notified;  /* the highest seq notified since (INT64_MAX: unknown) */
    int64_t first_seq; /* the stream's oldest seq at the read */
    enum run_status status;
    char run_id[CGW_ID_MAX];
    bool perms_none;         /* no open permission request can exist at head */
    int64_t ring_from;       /* the ring holds every event with seq in (ring_from, head] */
    struct ring_event *ring; /* n events in seq order */
    size_t n, bytes;
    int64_t read_ms, used_ms; /* cgw_mono_ms */
};

struct poller_cache {
    pthread_mutex_t lock;
    struct poller_cache_limits lim;
    struct entry *buckets[BUCKETS];
    uint64_t sketch[BUCKETS]; /* tick of the last notification per bucket */
    size_t n_entries;
    uint64_t tick, live_tick, epoch;
    bool live;
    uint64_t hits, misses;
};

static size_t bucket_of(const char *id)
{
    return (size_t)cgw_hash_str(id) & (BUCKETS - 1);
}

static struct entry *find(struct poller_cache *c, const char *id)
{
    struct entry *e = c->buckets[bucket_of(id)];
    while (e && strcmp(e->id, id) != 0)
        e = e->next;
    return e;
}

static void ring_drop_front(struct entry *e, size_t k)
{
    for (size_t i = 0; i < k; i++) {
        e->bytes -= e->ring[i].len;
        free(e->ring[i].json);
    }
    if (k > 0) {
        e->ring_from = e->ring[k - 1].seq;
        memmove(e->ring, e->ring + k, (e->n - k) * sizeof *e->ring);
        e->n -= k;
    }
}

static void entry_free(struct entry *e)
{
    ring_drop_front(e, e->n);
    free(e->ring);
    free(e);
}

enum cgw_err poller_cache_new(const struct poller_cache_limits *lim, struct poller_cache **out,
                              struct cgw_error *err)
{
    struct poller_cache *c = calloc(1, sizeof *c);
    *out = NULL;
    if (!c)
        return cgw_error_set(err, CGW_ERR_NOMEM, "out of memory");
    if (pthread_mutex_init(&c->lock, NULL) != 0) {
        free(c);
        return cgw_error_set(err, CGW_ERR_INTERNAL, "poller cache: cannot create a lock");
    }
    c->lim = *lim;
    if (c->lim.ring < 1)
        c->lim.ring = 1;
    *out = c;
    return CGW_OK;
}

void poller_cache_free(struct poller_cache *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < BUCKETS; i++) {
        struct entry *e = c->buckets[i];
        while (e) {
            struct entry *next = e->next;
            entry_free(e);
            e = next;
        }
    }
    pthread_mutex_destroy(&c->lock);
    free(c);
}

void poller_cache_live(struct poller_cache *c, bool live)
{
    pthread_mutex_lock(&c->lock);
    c->live = live;
    c->epoch++;
    c->live_tick = ++c->tick;
    pthread_mutex_unlock(&c->lock);
}

uint64_t poller_cache_gen(struct poller_cache *c)
{
    pthread_mutex_lock(&c->lock);
    uint64_t t = c->tick;
    pthread_mutex_unlock(&c->lock);
    return t;
}

static void entry_unlink(struct poller_cache *c, struct entry *e)
{
    struct entry **at = &c->buckets[bucket_of(e->id)];
    while (*at != e)
        at = &(*at)->next;
    *at = e->next;
    c->n_entries--;
    entry_free(e);
}

void poller_cache_notified(struct poller_cache *c, const char *id, int64_t seq)
{
    pthread_mutex_lock(&c->lock);
    c->sketch[bucket_of(id)] = ++c->tick;
    struct entry *e = find(c, id);
    if (e && seq > 0 && seq < e->head) {
        /* Below the copy's head: the counter went back (Redis lost data, e.g. a flush,
         * and counts again), or an old notification was still on its way. The copy is
         * dropped, not marked: a read after the loss must not be refused as older
         * than it (poller_cache_store). */
        entry_unlink(c, e);
    } else if (e) {
        if (seq <= 0)
            e->notified = INT64_MAX;
        else if (seq > e->notified)
            e->notified = seq;
    }
    pthread_mutex_unlock(&c->lock);
}

/* Events (after, last] all present, in order, without a gap, and not cut. */
static bool read_complete(const struct sub_snapshot *s)
{
    const struct bus_read *r = &s->read;
    if (r->more)
        return false;
    if (s->after >= r->last_seq)
        return r->n == 0;
    if (r->n == 0 || r->events[0].seq != s->after + 1 || r->events[r->n - 1].seq != r->last_seq)
        return false;
    for (size_t i = 1; i < r->n; i++)
        if (r->events[i].seq != r->events[i - 1].seq + 1)
            return false;
    return true;
}

/* Under the lock: appends the events of r with seq > e->head (the ring is contiguous
 * with them), then trims the ring to its limits. false when memory ran out (e is then
 * left with what it had, to be dropped by the caller). */
static bool ring_append(struct poller_cache *c, struct entry *e, const struct bus_read *r)
{
    if (!e->ring && !(e->ring = calloc(c->lim.ring + 1, sizeof *e->ring)))
        return false;
    for (size_t i = 0; i < r->n; i++) {
        const struct bus_event *ev = &r->events[i];
        if (ev->seq <= e->head)
            continue;
        if (e->n == c->lim.ring + 1)
            ring_drop_front(e, 1);
        char *copy = malloc(ev->len + 1);
        if (!copy)
            return false;
        memcpy(copy, ev->json, ev->len);
        copy[ev->len] = '\0';
        e->ring[e->n++] = (struct ring_event){ev->seq, copy, ev->len};
        e->bytes += ev->len;
        e->head = ev->seq;
    }
    size_t k = 0, bytes = e->bytes;
    while (e->n - k > c->lim.ring || (e->n - k > 1 && bytes > c->lim.ring_bytes))
        bytes -= e->ring[k++].len;
    ring_drop_front(e, k);
    return true;
}

void poller_cache_store(struct poller_cache *c, const char *id, const struct sub_snapshot *s,
                        uint64_t gen)
{
    size_t b = bucket_of(id);
    if (strlen(id) > CGW_UUID_LEN || !read_complete(s))
        return;
    pthread_mutex_lock(&c->lock);
    if (!c->live || c->live_tick > gen || c->sketch[b] > gen)
        goto out; /* a notification (or reconnect) the read may not have seen */
    struct entry *e = find(c, id);
    if (e && e->epoch == c->epoch && s->read.last_seq < e->head)
        goto out; /* an older read than the one held */
    if (!e) {
        if (c->n_entries >= c->lim.entries || !(e = calloc(1, sizeof *e)))
            goto out;
        memcpy(e->id, id, strlen(id) + 1);
        e->next = c->buckets[b];
        c->buckets[b] = e;
        c->n_entries++;
    }
    /* Events are facts within an epoch: a ring that reaches the read's start is kept. */
    if (e->epoch != c->epoch || s->after < e->ring_from || s->after > e->head) {
        ring_drop_front(e, e->n);
        e->ring_from = e->head = s->after;
    }
    if (!ring_append(c, e, &s->read)) {
        entry_unlink(c, e);
        goto out;
    }
    e->epoch = c->epoch;
    e->head = e->notified = s->read.last_seq;
    e->first_seq = s->read.first_seq;
    e->status = s->read.status;
    memcpy(e->run_id, s->read.run_id, sizeof e->run_id);
    e->perms_none = s->read.status != RUN_RUNNING || (s->have_perms && s->n_perms == 0);
    e->read_ms = e->used_ms = cgw_mono_ms();
out:
    pthread_mutex_unlock(&c->lock);
}

/* Under the lock: e may be trusted now. */
static bool current(const struct poller_cache *c, const struct entry *e, int64_t now)
{
    return c->live && e->epoch == c->epoch && e->notified <= e->head &&
           now - e->read_ms < c->lim.max_age_ms;
}

bool poller_cache_at_head(struct poller_cache *c, const char *id, int64_t cursor,
                          int64_t store_last)
{
    int64_t now = cgw_mono_ms();
    pthread_mutex_lock(&c->lock);
    struct entry *e = find(c, id);
    bool yes = e && current(c, e, now) && e->head == cursor && store_last <= cursor;
    if (e && yes)
        e->used_ms = now;
    pthread_mutex_unlock(&c->lock);
    return yes;
}

/* Under the lock: copies e's events after cursor into out as read.lua would cut them. */
static bool copy_events(const struct entry *e, int64_t cursor, int64_t max_count, int64_t max_bytes,
                        struct bus_read *out)
{
    size_t i = 0, bytes = 0;
    while (i < e->n && e->ring[i].seq <= cursor)
        i++;
    if (i < e->n && !(out->events = calloc(e->n - i, sizeof *out->events)))
        return false;
    for (; i < e->n; i++) {
        const struct ring_event *r = &e->ring[i];
        if ((int64_t)out->n >= max_count ||
            (out->n > 0 && max_bytes > 0 && bytes + r->len > (size_t)max_bytes)) {
            out->more = true;
            break;
        }
        char *copy = malloc(r->len + 1);
        if (!copy)
            return false;
        memcpy(copy, r->json, r->len + 1);
        out->events[out->n++] = (struct bus_event){r->seq, copy, r->len};
        bytes += r->len;
    }
    return true;
}

bool poller_cache_snapshot(struct poller_cache *c, const char *id, int64_t cursor,
                           int64_t max_count, int64_t max_bytes, struct sub_snapshot *out)
{
    int64_t now = cgw_mono_ms();
    memset(out, 0, sizeof *out);
    if (max_count < 0)
        max_count = 0;
    if (max_bytes <= 0)
        max_bytes = 1;
    pthread_mutex_lock(&c->lock);
    struct entry *e = find(c, id);
    bool hit = e && current(c, e, now) && e->perms_none && cursor >= e->ring_from &&
               cursor <= e->head && (e->first_seq > 0 || e->n == 0);
    if (hit) {
        out->after = cursor;
        out->read.last_seq = e->head;
        out->read.first_seq = e->first_seq;
        out->read.status = e->status;
        memcpy(out->read.run_id, e->run_id, sizeof out->read.run_id);
        out->have_perms = true;
        hit = copy_events(e, cursor, max_count, max_bytes, &out->read);
        e->used_ms = now;
    }
    hit ? c->hits++ : c->misses++;
    pthread_mutex_unlock(&c->lock);
    if (!hit)
        answer_snapshot_free(out);
    return hit;
}

bool poller_cache_head(struct poller_cache *c, const char *id, struct sub_snapshot *out)
{
    int64_t now = cgw_mono_ms();
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&c->lock);
    struct entry *e = find(c, id);
    bool hit = e && current(c, e, now) && e->perms_none && (e->first_seq > 0 || e->n == 0);
    if (hit) {
        out->after = e->head;
        out->read.last_seq = e->head;
        out->read.first_seq = e->first_seq;
        out->read.status = e->status;
        memcpy(out->read.run_id, e->run_id, sizeof out->read.run_id);
        out->have_perms = true;
        e->used_ms = now;
    }
    hit ? c->hits++ : c->misses++;
    pthread_mutex_unlock(&c->lock);
    return hit;
}

void poller_cache_store_head(struct poller_cache *c, const char *id, const struct sub_snapshot *s,
                             uint64_t gen)
{
    if (s->read.n != 0)
        return;
    struct sub_snapshot head = *s; /* shallow: store copies what it keeps */
    head.after = s->read.last_seq;
    head.read.more = false;
    poller_cache_store(c, id, &head, gen);
}

void poller_cache_sweep(struct poller_cache *c)
{
    int64_t now = cgw_mono_ms();
    pthread_mutex_lock(&c->lock);
    for (size_t i = 0; i < BUCKETS; i++) {
        struct entry **at = &c->buckets[i];
        while (*at) {
            struct entry *e = *at;
            if (now - e->used_ms >= c->lim.idle_ms) {
                *at = e->next;
                c->n_entries--;
                entry_free(e);
            } else {
                at = &e->next;
            }
        }
    }
    pthread_mutex_unlock(&c->lock);
}

void poller_cache_stats(struct poller_cache *c, uint64_t *hits, uint64_t *misses)
{
    pthread_mutex_lock(&c->lock);
    *hits = c->hits;
    *misses = c->misses;
    pthread_mutex_unlock(&c->lock);
}
