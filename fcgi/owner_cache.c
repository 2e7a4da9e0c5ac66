/* owner_cache.c: the per-process copy of session owners (see owner_cache.h). */
#include "fcgi/owner_cache.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"

struct owner_entry {
    char id[CGW_UUID_LEN + 1]; /* "" = empty slot */
    int64_t user_id;
    int64_t store_last;
    int64_t added_ms; /* cgw_mono_ms */
};

struct owner_cache {
    pthread_mutex_t lock;
    struct owner_entry *slots;
    size_t mask;
    int64_t max_age_ms;
    bool live;
    uint64_t epoch; /* forgets so far: a put begun before one is dropped */
    uint64_t hits, misses;
};

enum cgw_err owner_cache_new(size_t slots, int64_t max_age_ms, struct owner_cache **out,
                             struct cgw_error *err)
{
    size_t n = 16;
    while (n < slots && n < ((size_t)1 << 20))
        n *= 2;
    struct owner_cache *c = calloc(1, sizeof *c);
    *out = NULL;
    if (!c || !(c->slots = calloc(n, sizeof *c->slots))) {
        free(c);
        return cgw_error_set(err, CGW_ERR_NOMEM, "out of memory");
    }
    if (pthread_mutex_init(&c->lock, NULL) != 0) {
        free(c->slots);
        free(c);
        return cgw_error_set(err, CGW_ERR_INTERNAL, "owner cache: cannot create a lock");
    }
    c->mask = n - 1;
    c->max_age_ms = max_age_ms;
    *out = c;
    return CGW_OK;
}

void owner_cache_free(struct owner_cache *c)
{
    if (!c)
        return;
    pthread_mutex_destroy(&c->lock);
    free(c->slots);
    free(c);
}

static size_t slot_of(const struct owner_cache *c, const char *id)
{
    return (size_t)cgw_hash_str(id) & c->mask;
}

void owner_cache_live(struct owner_cache *c, bool live)
{
    pthread_mutex_lock(&c->lock);
    memset(c->slots, 0, (c->mask + 1) * sizeof *c->slots);
    c->live = live;
    c->epoch++;
    pthread_mutex_unlock(&c->lock);
}

uint64_t owner_cache_epoch(struct owner_cache *c)
{
    pthread_mutex_lock(&c->lock);
    uint64_t e = c->epoch;
    pthread_mutex_unlock(&c->lock);
    return e;
}

bool owner_cache_get(struct owner_cache *c, const char *session_id, int64_t user_id,
                     int64_t *store_last)
{
    if (c->max_age_ms <= 0 || strlen(session_id) != CGW_UUID_LEN)
        return false;
    pthread_mutex_lock(&c->lock);
    const struct owner_entry *e = &c->slots[slot_of(c, session_id)];
    bool hit = c->live && e->id[0] && strcmp(e->id, session_id) == 0 && e->user_id == user_id &&
               cgw_mono_ms() - e->added_ms < c->max_age_ms;
    if (hit)
        *store_last = e->store_last;
    hit ? c->hits++ : c->misses++;
    pthread_mutex_unlock(&c->lock);
    return hit;
}

void owner_cache_put(struct owner_cache *c, const char *session_id, int64_t user_id,
                     int64_t store_last, uint64_t epoch)
{
    if (c->max_age_ms <= 0 || strlen(session_id) != CGW_UUID_LEN)
        return;
    struct owner_entry e = {.user_id = user_id, .store_last = store_last};
    memcpy(e.id, session_id, sizeof e.id);
    e.added_ms = cgw_mono_ms();
    pthread_mutex_lock(&c->lock);
    if (c->live && c->epoch == epoch)
        c->slots[slot_of(c, session_id)] = e;
    pthread_mutex_unlock(&c->lock);
}

void owner_cache_forget(struct owner_cache *c, const char *session_id)
{
    pthread_mutex_lock(&c->lock);
    struct owner_entry *e = &c->slots[slot_of(c, session_id)];
    if (strcmp(e->id, session_id) == 0)
        memset(e, 0, sizeof *e);
    c->epoch++;
    pthread_mutex_unlock(&c->lock);
}

void owner_cache_forget_user(struct owner_cache *c, int64_t user_id)
{
    pthread_mutex_lock(&c->lock);
    for (size_t i = 0; i <= c->mask; i++)
        if (c->slots[i].id[0] && c->slots[i].user_id == user_id)
            memset(&c->slots[i], 0, sizeof c->slots[i]);
    c->epoch++;
    pthread_mutex_unlock(&c->lock);
}

void owner_cache_stats(struct owner_cache *c, uint64_t *hits, uint64_t *misses)
{
    pthread_mutex_lock(&c->lock);
    *hits = c->hits;
    *misses = c->misses;
    pthread_mutex_unlock(&c->lock);
}
