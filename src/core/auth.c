/* auth.c: API token creation and constant-time verification; subscribe tickets. */
#include "core/auth.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "core/util.h"

#define PUBLIC_BYTES 12
#define SECRET_BYTES 32
#define SECRET_LEN 43

bool auth_equal_ct(const void *a, const void *b, size_t n)
{
    return sodium_memcmp(a, b, n) == 0;
}

int auth_crypto_init(void)
{
    /* Safe to call from several threads and more than once (libsodium's contract). */
    return sodium_init() < 0 ? -1 : 0;
}

enum cgw_err auth_token_hash(const void *data, size_t n, unsigned char out[AUTH_HASH_LEN],
                             struct cgw_error *err)
{
    if (auth_crypto_init() < 0 || crypto_hash_sha256(out, data, n) != 0)
        return cgw_error_set(err, CGW_ERR_INTERNAL, "libsodium could not be initialised");
    return CGW_OK;
}

static bool is_b64url(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

int auth_token_public_id(const char *token, char *public_id)
{
    if (!token || strlen(token) != AUTH_TOKEN_LEN || strncmp(token, "cgw_", 4) != 0)
        return -1;
    /* The public part may itself contain '_', so the split is by position. */
    if (token[4 + AUTH_PUBLIC_LEN] != '_')
        return -1;
    for (size_t i = 4; i < AUTH_TOKEN_LEN; i++) {
        if (i != 4 + AUTH_PUBLIC_LEN && !is_b64url(token[i]))
            return -1;
    }
    memcpy(public_id, token + 4, AUTH_PUBLIC_LEN);
    public_id[AUTH_PUBLIC_LEN] = '\0';
    return 0;
}

enum cgw_err auth_token_create(struct store *st, const char *user, const char *label, char *token,
                               int64_t *id, struct cgw_error *err)
{
    struct store_user u;
    unsigned char pub[PUBLIC_BYTES], secret[SECRET_BYTES], hash[AUTH_HASH_LEN];
    char public_id[AUTH_PUBLIC_LEN + 1], secret_text[SECRET_LEN + 1];
    enum cgw_err rc = store_user_get(st, user, &u, err);

    if (rc != CGW_OK)
        return rc;
    if (u.disabled)
        return cgw_error_set(err, CGW_ERR_CONFLICT, "user %s is disabled", user);
    /* A public id clash is astronomically unlikely; retry a few times anyway. */
    for (int attempt = 0; attempt < 3; attempt++) {
        /* A public id never starts with '-', so it can be given on a command line
         * (chatgwctl token revoke) without looking like an option. */
        do {
            if (cgw_random_bytes(pub, sizeof pub) < 0)
                return cgw_error_set(err, CGW_ERR_INTERNAL, "no randomness available");
            cgw_base64url(pub, sizeof pub, public_id);
        } while (public_id[0] == '-');
        if (cgw_random_bytes(secret, sizeof secret) < 0)
            return cgw_error_set(err, CGW_ERR_INTERNAL, "no randomness available");
        cgw_base64url(secret, sizeof secret, secret_text);
        memcpy(token, "cgw_", 4);
        memcpy(token + 4, public_id, AUTH_PUBLIC_LEN);
        token[4 + AUTH_PUBLIC_LEN] = '_';
        memcpy(token + 5 + AUTH_PUBLIC_LEN, secret_text, SECRET_LEN + 1);
        rc = auth_token_hash(token, AUTH_TOKEN_LEN, hash, err);
        if (rc != CGW_OK)
            break;
        rc = store_token_add(st, u.id, public_id, hash, label ? label : "", id, err);
        if (rc != CGW_ERR_CONFLICT)
            break;
    }
    memset(secret, 0, sizeof secret);
    memset(secret_text, 0, sizeof secret_text);
    if (rc != CGW_OK)
        memset(token, 0, AUTH_TOKEN_LEN + 1);
    return rc;
}

enum cgw_err auth_token_verify(struct store *st, const char *token, struct store_user *user,
                               struct cgw_error *err)
{
    char public_id[AUTH_PUBLIC_LEN + 1];
    unsigned char hash[AUTH_HASH_LEN];
    struct store_token t;
    bool disabled = false;
    struct cgw_error inner;
    enum cgw_err rc;

    if (auth_token_public_id(token, public_id) < 0)
        return cgw_error_set(err, CGW_ERR_UNAUTHORIZED, "invalid or revoked token");
    rc = store_token_find(st, public_id, &t, &disabled, &inner);
    if (rc == CGW_ERR_NOT_FOUND)
        return cgw_error_set(err, CGW_ERR_UNAUTHORIZED, "invalid or revoked token");
    if (rc != CGW_OK)
        return cgw_error_set(err, rc, "%s", inner.text);
    if ((rc = auth_token_hash(token, AUTH_TOKEN_LEN, hash, err)) != CGW_OK)
        return rc;
    /* Compare first, then decide, so every found token costs the same. */
    bool same = auth_equal_ct(hash, t.hash, sizeof hash);
    if (!same || t.revoked || disabled)
        return cgw_error_set(err, CGW_ERR_UNAUTHORIZED, "invalid or revoked token");
    memset(user, 0, sizeof *user);
    user->id = t.user_id;
    snprintf(user->name, sizeof user->name, "%s", t.user_name);
    user->disabled = false;
    /* Best effort: a failed last-used update must not fail the request. Only when it is
     * due: the UPDATE takes the write lock even when it changes nothing, and every
     * request of every worker thread would queue for it (make bench: 1.6 ms busy-handler
     * sleeps and a third of the no-wait subscribe rate). */
    if (cgw_now_ms() - t.last_used_ms >= STORE_TOKEN_TOUCH_EVERY_MS)
        (void)store_token_touch(st, t.id, &inner);
    return CGW_OK;
}

/* ---- subscribe tickets ------------------------------------------------------------ */

#define TICKET_BYTES 32

/* The one place tickets are hashed: SHA-256 of the whole ticket, in hex. */
static enum cgw_err ticket_hash_hex(const char *ticket, char hex[2 * AUTH_HASH_LEN + 1],
                                    struct cgw_error *err)
{
    unsigned char hash[AUTH_HASH_LEN];
    enum cgw_err rc = auth_token_hash(ticket, strlen(ticket), hash, err);
    if (rc == CGW_OK)
        cgw_hex(hash, sizeof hash, hex);
    return rc;
}

enum cgw_err auth_ticket_create(struct bus *bus, const struct store_user *user,
                                const char *token_public_id, int64_t ttl_s, char *ticket,
                                int64_t *expires_ms, struct cgw_error *err)
{
    unsigned char raw[TICKET_BYTES];
    char hex[2 * AUTH_HASH_LEN + 1], value[64];
    enum cgw_err rc = CGW_OK;

    if (!token_public_id || strlen(token_public_id) > AUTH_PUBLIC_LEN)
        return cgw_error_set(err, CGW_ERR_INVALID, "auth: bad token id for a ticket");
    snprintf(value, sizeof value, "%" PRId64 ":%s", user->id, token_public_id);
    for (int attempt = 0; attempt < 3; attempt++) {
        if (cgw_random_bytes(raw, sizeof raw) < 0)
            return cgw_error_set(err, CGW_ERR_INTERNAL, "no randomness available");
        memcpy(ticket, "cgt_", 4);
        cgw_base64url(raw, sizeof raw, ticket + 4);
        rc = ticket_hash_hex(ticket, hex, err);
        if (rc != CGW_OK)
            break;
        *expires_ms = cgw_now_ms() + ttl_s * 1000;
        rc = bus_ticket_put(bus, hex, value, ttl_s, err);
        if (rc != CGW_ERR_CONFLICT) /* a clash of 256 random bits: only in theory */
            break;
    }
    memset(raw, 0, sizeof raw);
    if (rc != CGW_OK)
        memset(ticket, 0, AUTH_TICKET_LEN + 1);
    return rc;
}

/* The user of a ticket's stored value "<user id>:<token public id>", checked against the
 * store now: the token not revoked, the user not disabled. */
static enum cgw_err ticket_owner(struct store *st, const char *value, struct store_user *user,
                                 struct cgw_error *err)
{
    const char *colon = strchr(value, ':');
    char idbuf[24];
    int64_t id;
    struct store_token t;
    bool disabled = false;

    if (!colon || (size_t)(colon - value) >= sizeof idbuf)
        return cgw_error_set(err, CGW_ERR_UNAUTHORIZED, "invalid or expired ticket");
    memcpy(idbuf, value, (size_t)(colon - value));
    idbuf[colon - value] = '\0';
    if (cgw_parse_int64(idbuf, 1, INT64_MAX, &id) < 0)
        return cgw_error_set(err, CGW_ERR_UNAUTHORIZED, "invalid or expired ticket");
    enum cgw_err rc = colon[1] ? store_token_find(st, colon + 1, &t, &disabled, err) : CGW_OK;
    if (rc == CGW_OK && colon[1] && (t.revoked || t.user_id != id))
        rc = CGW_ERR_NOT_FOUND;
    if (rc == CGW_OK)
        rc = store_user_get_by_id(st, id, user, err);
    if (rc == CGW_OK && user->disabled)
        rc = CGW_ERR_NOT_FOUND;
    if (rc == CGW_ERR_NOT_FOUND)
        return cgw_error_set(err, CGW_ERR_UNAUTHORIZED, "invalid or expired ticket");
    return rc;
}

enum cgw_err auth_ticket_verify(struct bus *bus, struct store *st, const char *ticket,
                                struct store_user *user, char *token_public, int64_t *expires_ms,
                                struct cgw_error *err)
{
    char hex[2 * AUTH_HASH_LEN + 1];
    char *value = NULL;
    int64_t asked_ms = cgw_now_ms(), ttl_ms = -1;

    if (expires_ms)
        *expires_ms = 0;
    if (!ticket || strlen(ticket) != AUTH_TICKET_LEN || strncmp(ticket, "cgt_", 4) != 0 ||
        strspn(ticket + 4, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") !=
            AUTH_TICKET_LEN - 4)
        return cgw_error_set(err, CGW_ERR_UNAUTHORIZED, "invalid or expired ticket");
    /* Looked up by its hash: the lookup itself reveals nothing about other tickets. */
    enum cgw_err rc = ticket_hash_hex(ticket, hex, err);
    if (rc == CGW_OK)
        rc = bus_ticket_get(bus, hex, &value, expires_ms ? &ttl_ms : NULL, err);
    if (rc == CGW_ERR_NOT_FOUND)
        return cgw_error_set(err, CGW_ERR_UNAUTHORIZED, "invalid or expired ticket");
    if (rc == CGW_OK)
        rc = ticket_owner(st, value, user, err);
    if (rc == CGW_OK && token_public) {
        const char *colon = strchr(value, ':'); /* checked by ticket_owner */
        snprintf(token_public, AUTH_PUBLIC_LEN + 1, "%s", colon + 1);
    }
    /* Counted from before the read: never later than Redis' own expiry. */
    if (rc == CGW_OK && expires_ms && ttl_ms >= 0)
        *expires_ms = asked_ms + ttl_ms;
    free(value);
    return rc;
}

enum cgw_err auth_token_active(struct store *st, const char *public_id, int64_t user_id,
                               struct cgw_error *err)
{
    struct store_token t;
    bool disabled = false;
    struct cgw_error inner;
    enum cgw_err rc = store_token_find(st, public_id, &t, &disabled, &inner);
    if (rc == CGW_ERR_NOT_FOUND ||
        (rc == CGW_OK && (t.revoked || disabled || t.user_id != user_id)))
        return cgw_error_set(err, CGW_ERR_UNAUTHORIZED, "invalid or revoked token");
    if (rc != CGW_OK)
        return cgw_error_set(err, rc == CGW_ERR_NOMEM ? rc : CGW_ERR_BACKEND, "%s", inner.text);
    return CGW_OK;
}
