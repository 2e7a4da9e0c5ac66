/* auth.c: API token creation and constant-time verification. */
#include "core/auth.h"

#include <stdio.h>
#include <string.h>

#include "core/sha256.h"
#include "core/util.h"

#define PUBLIC_BYTES 12
#define SECRET_BYTES 32
#define SECRET_LEN 43

bool auth_equal_ct(const void *a, const void *b, size_t n)
{
    const volatile unsigned char *x = a, *y = b;
    unsigned char diff = 0;
    for (size_t i = 0; i < n; i++)
        diff |= x[i] ^ y[i];
    return diff == 0;
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
    unsigned char pub[PUBLIC_BYTES], secret[SECRET_BYTES], hash[SHA256_DIGEST_LEN];
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
        sha256(token, AUTH_TOKEN_LEN, hash);
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
    unsigned char hash[SHA256_DIGEST_LEN];
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
    sha256(token, AUTH_TOKEN_LEN, hash);
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
