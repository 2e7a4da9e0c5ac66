/* auth.h: API tokens: creation (random, shown once) and verification.
 *
 * A token reads "cgw_<public>_<secret>": <public> is 16 URL-safe base64 characters
 * (12 random bytes) that name the row, <secret> 43 characters (32 random bytes).
 * The store keeps the public part and the SHA-256 of the whole token, never the
 * token; verification finds the row by the public part and compares hashes in
 * constant time, so neither the lookup nor the compare leaks the secret. The
 * primitives are libsodium's (crypto_hash_sha256, sodium_memcmp), confined to auth.c.
 */
#ifndef CGW_AUTH_H
#define CGW_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/store.h"

#define AUTH_TOKEN_LEN (4 + 16 + 1 + 43)
#define AUTH_PUBLIC_LEN 16
#define AUTH_HASH_LEN 32 /* SHA-256, as stored in tokens.hash */

/* Initialises libsodium (sodium_init). Returns 0, or -1 when the library cannot be
 * used. The functions below call it themselves; a program may call it at start-up to
 * fail early. Thread-safe, idempotent. */
int auth_crypto_init(void);

/* The SHA-256 of data[0..n) into out: the hash the store keeps for a token.
 * CGW_ERR_INTERNAL when libsodium cannot be initialised. */
enum cgw_err auth_token_hash(const void *data, size_t n, unsigned char out[AUTH_HASH_LEN],
                             struct cgw_error *err);

/* Creates a token for user name with label (may be NULL or ""); writes the token
 * into token (AUTH_TOKEN_LEN + 1 bytes) and the row id into *id (may be NULL).
 * CGW_ERR_NOT_FOUND for an unknown user, CGW_ERR_CONFLICT for a disabled one. */
enum cgw_err auth_token_create(struct store *st, const char *user, const char *label, char *token,
                               int64_t *id, struct cgw_error *err);

/* Verifies a presented token and fills *user with its owner. Any failure —
 * malformed, unknown, revoked, wrong secret, disabled user — is
 * CGW_ERR_UNAUTHORIZED with the same text; CGW_ERR_BACKEND when the store is down. */
enum cgw_err auth_token_verify(struct store *st, const char *token, struct store_user *user,
                               struct cgw_error *err);

/* Splits a token into its public part (AUTH_PUBLIC_LEN + 1 bytes). Returns 0, or
 * -1 when the token is not of the form above. */
int auth_token_public_id(const char *token, char *public_id);

/* Constant-time comparison of n bytes (sodium_memcmp): true when equal. */
bool auth_equal_ct(const void *a, const void *b, size_t n);

#endif
