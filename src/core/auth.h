/* auth.h: API tokens: creation (random, shown once) and verification.
 *
 * A token reads "cgw_<public>_<secret>": <public> is 16 URL-safe base64 characters
 * (12 random bytes) that name the row, <secret> 43 characters (32 random bytes).
 * The store keeps the public part and the SHA-256 of the whole token, never the
 * token; verification finds the row by the public part and compares hashes in
 * constant time, so neither the lookup nor the compare leaks the secret.
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

/* Whether the token named by public_id (auth_token_public_id) is still good for
 * user_id: not revoked, its user not disabled. For requests that were verified with
 * auth_token_verify and are answered later (a held subscribe). CGW_OK,
 * CGW_ERR_UNAUTHORIZED, or CGW_ERR_BACKEND when the store cannot be read. */
enum cgw_err auth_token_active(struct store *st, const char *public_id, int64_t user_id,
                               struct cgw_error *err);

/* Splits a token into its public part (AUTH_PUBLIC_LEN + 1 bytes). Returns 0, or
 * -1 when the token is not of the form above. */
int auth_token_public_id(const char *token, char *public_id);

/* Constant-time comparison of n bytes: true when equal. */
bool auth_equal_ct(const void *a, const void *b, size_t n);

#endif
