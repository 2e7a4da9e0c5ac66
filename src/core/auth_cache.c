/* auth_cache.c: the per-process cache of passed token checks (see auth_cache.h). */
#include "core/auth_cache.h"

#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"

struct auth_entry {
    char public_id[AUTH_PUBLIC_LEN + 1]; /* "" = empty slot */
    unsigned char hash[AUTH_HASH_LEN];
    int64_t user_id;
    char user_name[STORE_NAME_MAX + 1];
    int64_t added_ms; /* cgw_mono_ms */
};

struct auth_cache {
    pthread_mutex_t lock;
    struct auth_entry *slots;
    size_t mask;
    int64_t max_age_ms;
    int fd;         /* the subscriber's socket; -1: off */
    bool reading;   /* notifications read but not handled yet */
    uint64_t epoch; /* flushes so far: an insert after one is dropped */
    uint64_t hits, misses;
};

enum cgw_err auth_cache_new(size_t slots, int64_t max_age_ms, struct auth_cache **out,
                            struct cgw_error *err)
{
    size_t n = 16;
    while (n < slots && n < ((size_t)1 << 20))
        n *= 2;
    struct auth_cache *c = calloc(1, sizeof *c);
    *out = NULL;
    if (!c || !(c->slots = calloc(n, sizeof *c->slots))) {
        free(c);
        return cgw_error_set(err, CGW_ERR_NOMEM, "out of memory");
    }
    if (pthread_mutex_init(&c->lock, NULL) != 0) {
        free(c->slots);
        free(c);
        return cgw_error_set(err, CGW_ERR_INTERNAL, "auth cache: cannot create a lock");
    }
    c->mask = n - 1;
    c->max_age_ms = max_age_ms;
    c->fd = -1;
    *out = c;
    return CGW_OK;
}

void auth_cache_free(struct auth_cache *c)
{
    if (!c)
        return;
    pthread_mutex_destroy(&c->lock);
    free(c->slots);
    free(c);
}

/* Under the lock. */
static void flush_locked(struct auth_cache *c)
{
    memset(c->slots, 0, (c->mask + 1) * sizeof *c->slots);
    c->epoch++;
}

void auth_cache_live(struct auth_cache *c, int fd)
{
    pthread_mutex_lock(&c->lock);
    flush_locked(c);
    c->fd = fd;
    c->reading = false;
    pthread_mutex_unlock(&c->lock);
}

void auth_cache_flush(struct auth_cache *c)
{
    pthread_mutex_lock(&c->lock);
    flush_locked(c);
    pthread_mutex_unlock(&c->lock);
}

void auth_cache_reading(struct auth_cache *c, bool reading)
{
    pthread_mutex_lock(&c->lock);
    c->reading = reading;
    pthread_mutex_unlock(&c->lock);
}

void auth_cache_stats(struct auth_cache *c, uint64_t *hits, uint64_t *misses)
{
    pthread_mutex_lock(&c->lock);
    *hits = c->hits;
    *misses = c->misses;
    pthread_mutex_unlock(&c->lock);
}

static size_t slot_of(const struct auth_cache *c, const char *public_id)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (const char *s = public_id; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return (size_t)h & c->mask;
}

/* Under the lock: true when no revocation can be waiting unseen. */
static bool quiet_locked(const struct auth_cache *c)
{
    if (c->fd < 0 || c->reading)
        return false;
    struct pollfd pf = {.fd = c->fd, .events = POLLIN};
    return poll(&pf, 1, 0) == 0;
}

/* Copies the entry of public_id into *out when it may be used; counts the lookup.
 * *epoch receives the epoch to add an entry under after a miss. */
static bool lookup(struct auth_cache *c, const char *public_id, struct auth_entry *out,
                   uint64_t *epoch)
{
    pthread_mutex_lock(&c->lock);
    const struct auth_entry *e = &c->slots[slot_of(c, public_id)];
    bool hit = e->public_id[0] && strcmp(e->public_id, public_id) == 0 &&
               cgw_mono_ms() - e->added_ms < c->max_age_ms && quiet_locked(c);
    if (hit)
        *out = *e;
    hit ? c->hits++ : c->misses++;
    *epoch = c->epoch;
    pthread_mutex_unlock(&c->lock);
    return hit;
}

/* Adds a check that passed in the store, unless a flush came since the lookup. */
static void add(struct auth_cache *c, uint64_t epoch, const struct auth_entry *in)
{
    pthread_mutex_lock(&c->lock);
    if (c->fd >= 0 && c->epoch == epoch)
        c->slots[slot_of(c, in->public_id)] = *in;
    pthread_mutex_unlock(&c->lock);
}

enum cgw_err auth_token_verify_cached(struct auth_cache *c, struct store *st, const char *token,
                                      struct store_user *user, struct cgw_error *err)
{
    struct auth_entry e;
    uint64_t epoch;
    char public_id[AUTH_PUBLIC_LEN + 1];
    unsigned char hash[AUTH_HASH_LEN];

    if (!c || auth_token_public_id(token, public_id) < 0)
        return auth_token_verify(st, token, user, err);
    enum cgw_err rc = auth_token_hash(token, AUTH_TOKEN_LEN, hash, err);
    if (rc != CGW_OK)
        return rc;
    if (lookup(c, public_id, &e, &epoch) && auth_equal_ct(hash, e.hash, sizeof hash)) {
        memset(user, 0, sizeof *user);
        user->id = e.user_id;
        snprintf(user->name, sizeof user->name, "%s", e.user_name);
        return CGW_OK;
    }
    if ((rc = auth_token_verify(st, token, user, err)) != CGW_OK)
        return rc;
    memset(&e, 0, sizeof e);
    memcpy(e.public_id, public_id, sizeof e.public_id);
    memcpy(e.hash, hash, sizeof e.hash);
    e.user_id = user->id;
    snprintf(e.user_name, sizeof e.user_name, "%s", user->name);
    e.added_ms = cgw_mono_ms();
    add(c, epoch, &e);
    return CGW_OK;
}

bool auth_cache_active(struct auth_cache *c, const char *public_id, int64_t user_id)
{
    struct auth_entry e;
    uint64_t epoch;
    return c && lookup(c, public_id, &e, &epoch) && e.user_id == user_id;
}
