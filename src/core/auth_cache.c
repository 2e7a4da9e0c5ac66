/* auth_cache.c: the per-process cache of passed token checks (see auth_cache.h). */
#include "core/auth_cache.h"

#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "core/util.h"

#define DIGEST_LEN 32 /* keyed BLAKE2b of a whole token or ticket */

struct auth_entry {
    char public_id[AUTH_PUBLIC_LEN + 1]; /* "" = empty slot */
    unsigned char hash[DIGEST_LEN];
    int64_t user_id;
    char user_name[STORE_NAME_MAX + 1];
    int64_t added_ms; /* cgw_mono_ms */
};

/* A passed ticket check: the slot is the digest's, the token it was made with kept. */
struct ticket_entry {
    bool used;
    unsigned char digest[DIGEST_LEN];
    int64_t user_id;
    char user_name[STORE_NAME_MAX + 1];
    char token_public[AUTH_PUBLIC_LEN + 1];
    int64_t added_ms;   /* cgw_mono_ms */
    int64_t expires_ms; /* cgw_now_ms: the ticket's expiry in Redis */
};

struct auth_cache {
    pthread_mutex_t lock;
    struct auth_entry *slots;
    struct ticket_entry *tickets; /* mask + 1 of them too */
    size_t mask;
    unsigned char key[crypto_generichash_KEYBYTES];
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
    if (!c || !(c->slots = calloc(n, sizeof *c->slots)) ||
        !(c->tickets = calloc(n, sizeof *c->tickets)) || auth_crypto_init() < 0) {
        if (c)
            free(c->slots), free(c->tickets);
        free(c);
        return cgw_error_set(err, CGW_ERR_NOMEM, "out of memory");
    }
    if (pthread_mutex_init(&c->lock, NULL) != 0) {
        free(c->slots);
        free(c->tickets);
        free(c);
        return cgw_error_set(err, CGW_ERR_INTERNAL, "auth cache: cannot create a lock");
    }
    c->mask = n - 1;
    randombytes_buf(c->key, sizeof c->key);
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
    sodium_memzero(c->key, sizeof c->key);
    free(c->slots);
    free(c->tickets);
    free(c);
}

/* Under the lock. */
static void flush_locked(struct auth_cache *c)
{
    memset(c->slots, 0, (c->mask + 1) * sizeof *c->slots);
    memset(c->tickets, 0, (c->mask + 1) * sizeof *c->tickets);
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
    *hits = __atomic_load_n(&c->hits, __ATOMIC_RELAXED);
    *misses = __atomic_load_n(&c->misses, __ATOMIC_RELAXED);
}

static size_t slot_of(const struct auth_cache *c, const char *public_id)
{
    return (size_t)cgw_hash_str(public_id) & c->mask;
}

/* True when no revocation can be waiting unseen, for a lookup that saw epoch and fd
 * (fd >= 0, not reading) under the lock: the subscriber's socket has nothing to read,
 * and then, under the lock again, no flush came, the poller is not reading and the
 * socket is the same. The poll() is outside the lock (every worker's token check goes
 * through here), which is safe because the poller marks itself reading before it takes
 * anything off the socket and flushes (a new epoch) before it stops: a notification
 * that was on the socket before this poll is either still there (readable), or being
 * handled (reading), or handled (another epoch). A closed socket's number reused by
 * then is harmless for the same reason (auth_cache_live flushes before the close). */
static bool quiet_now(struct auth_cache *c, uint64_t epoch, int fd)
{
    struct pollfd pf = {.fd = fd, .events = POLLIN};
    if (poll(&pf, 1, 0) != 0)
        return false;
    pthread_mutex_lock(&c->lock);
    bool quiet = c->epoch == epoch && !c->reading && c->fd == fd;
    pthread_mutex_unlock(&c->lock);
    return quiet;
}

/* The keyed digest of n bytes (the key never leaves the process). */
static void digest(const struct auth_cache *c, const void *data, size_t n,
                   unsigned char out[DIGEST_LEN])
{
    crypto_generichash(out, DIGEST_LEN, data, n, c->key, sizeof c->key);
}

/* Copies the entry of public_id into *out when it may be used; counts the lookup.
 * *epoch receives the epoch to add an entry under after a miss. */
static bool lookup_as(struct auth_cache *c, const char *public_id, struct auth_entry *out,
                      uint64_t *epoch, int quiet)
{
    pthread_mutex_lock(&c->lock);
    const struct auth_entry *e = &c->slots[slot_of(c, public_id)];
    bool hit = e->public_id[0] && strcmp(e->public_id, public_id) == 0 &&
               cgw_mono_ms() - e->added_ms < c->max_age_ms && quiet && c->fd >= 0 && !c->reading;
    if (hit)
        *out = *e;
    int fd = c->fd;
    *epoch = c->epoch;
    pthread_mutex_unlock(&c->lock);
    if (hit && quiet < 0)
        hit = quiet_now(c, *epoch, fd);
    __atomic_fetch_add(hit ? &c->hits : &c->misses, 1, __ATOMIC_RELAXED);
    return hit;
}

/* quiet: -1 = check now (poll), else what auth_cache_quiet said. */
static bool lookup(struct auth_cache *c, const char *public_id, struct auth_entry *out,
                   uint64_t *epoch)
{
    return lookup_as(c, public_id, out, epoch, -1);
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
    unsigned char hash[DIGEST_LEN];
    enum cgw_err rc;

    if (!c || auth_token_public_id(token, public_id) < 0)
        return auth_token_verify(st, token, user, err);
    digest(c, token, AUTH_TOKEN_LEN, hash);
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

bool auth_cache_quiet(struct auth_cache *c)
{
    if (!c)
        return false;
    pthread_mutex_lock(&c->lock);
    bool maybe = c->fd >= 0 && !c->reading;
    int fd = c->fd;
    uint64_t epoch = c->epoch;
    pthread_mutex_unlock(&c->lock);
    return maybe && quiet_now(c, epoch, fd);
}

bool auth_cache_active_quiet(struct auth_cache *c, const char *public_id, int64_t user_id,
                             bool quiet)
{
    struct auth_entry e;
    uint64_t epoch;
    return c && quiet && lookup_as(c, public_id, &e, &epoch, 1) && e.user_id == user_id;
}

/* ---- tickets ---------------------------------------------------------------------------- */

static size_t ticket_slot(const struct auth_cache *c, const unsigned char d[DIGEST_LEN])
{
    uint64_t h;
    memcpy(&h, d, sizeof h); /* a keyed digest: its bytes are as good as any hash */
    return (size_t)h & c->mask;
}

/* Copies the ticket entry of digest d into *out when it may be used; counts the lookup
 * and gives the epoch to add under after a miss. */
static bool ticket_lookup(struct auth_cache *c, const unsigned char d[DIGEST_LEN],
                          struct ticket_entry *out, uint64_t *epoch)
{
    pthread_mutex_lock(&c->lock);
    const struct ticket_entry *e = &c->tickets[ticket_slot(c, d)];
    bool hit = e->used && auth_equal_ct(e->digest, d, DIGEST_LEN) &&
               cgw_mono_ms() - e->added_ms < c->max_age_ms && cgw_now_ms() < e->expires_ms &&
               c->fd >= 0 && !c->reading;
    if (hit)
        *out = *e;
    int fd = c->fd;
    *epoch = c->epoch;
    pthread_mutex_unlock(&c->lock);
    if (hit)
        hit = quiet_now(c, *epoch, fd);
    __atomic_fetch_add(hit ? &c->hits : &c->misses, 1, __ATOMIC_RELAXED);
    return hit;
}

enum cgw_err auth_ticket_verify_cached(struct auth_cache *c, void *ctx, auth_bus_fn get_bus,
                                       struct store *st, const char *ticket,
                                       struct store_user *user, char *token_public,
                                       struct cgw_error *err)
{
    struct ticket_entry e;
    struct bus *bus;
    uint64_t epoch = 0;
    unsigned char d[DIGEST_LEN];
    int64_t expires_ms = 0;

    bool well_formed = ticket && strlen(ticket) == AUTH_TICKET_LEN;
    if (c && well_formed) {
        digest(c, ticket, AUTH_TICKET_LEN, d);
        if (ticket_lookup(c, d, &e, &epoch)) {
            memset(user, 0, sizeof *user);
            user->id = e.user_id;
            snprintf(user->name, sizeof user->name, "%s", e.user_name);
            if (token_public)
                snprintf(token_public, AUTH_PUBLIC_LEN + 1, "%s", e.token_public);
            return CGW_OK;
        }
    }
    enum cgw_err rc = get_bus(ctx, &bus, err);
    if (rc == CGW_OK)
        rc = auth_ticket_verify(bus, st, ticket, user, token_public, &expires_ms, err);
    /* Kept only with the token it came from: the poller re-checks that one. */
    if (rc != CGW_OK || !c || !well_formed || !token_public || expires_ms <= 0)
        return rc;
    memset(&e, 0, sizeof e);
    e.used = true;
    memcpy(e.digest, d, sizeof d);
    e.user_id = user->id;
    snprintf(e.user_name, sizeof e.user_name, "%s", user->name);
    snprintf(e.token_public, sizeof e.token_public, "%s", token_public);
    e.added_ms = cgw_mono_ms();
    e.expires_ms = expires_ms;
    pthread_mutex_lock(&c->lock);
    if (c->fd >= 0 && c->epoch == epoch)
        c->tickets[ticket_slot(c, d)] = e;
    pthread_mutex_unlock(&c->lock);
    return CGW_OK;
}
