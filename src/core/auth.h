/* auth.h: API tokens: creation (random, shown once) and verification.
 *
 * A token reads "cgw_<public>_<secret>": <public> is 16 URL-safe base64 characters
 * (12 random bytes) that name the row, <secret> 43 characters (32 random bytes).
 * The store keeps the public part and the SHA-256 of the whole token, never the
 * token; verification finds the row by the public part and compares hashes in
 * constant time, so neither the lookup nor the compare leaks the secret. The
 * primitives are libsodium's (crypto_hash_sha256, sodium_memcmp), confined to auth.c.
 *
 * A subscribe ticket reads "cgt_<43 characters>" (32 random bytes): handed out by
 * POST /auth/ticket to a caller that authenticated otherwise, good for GET
 * /chat/subscribe only (never for any other route), for auth.ticket_ttl_s seconds, any
 * number of times. Redis keeps its SHA-256 (key cgw:ticket:{hash}, with that TTL),
 * never the ticket; the value names the user and the token it came from, so revoking
 * that token or disabling the user ends the ticket too. A ticket that leaks with a URL
 * into a log is worthless minutes later.
 */
#ifndef CGW_AUTH_H
#define CGW_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/bus.h"
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

#define AUTH_TICKET_LEN (4 + 43)

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

/* Creates a subscribe ticket for user (authenticated by the caller) valid ttl_s
 * seconds: writes it into ticket (AUTH_TICKET_LEN + 1 bytes) and its expiry (ms since
 * the epoch) into *expires_ms. token_public_id is the public id of the token the user
 * presented, or "" when the web server authenticated the user (REMOTE_USER).
 * CGW_ERR_BACKEND when Redis is down. */
enum cgw_err auth_ticket_create(struct bus *bus, const struct store_user *user,
                                const char *token_public_id, int64_t ttl_s, char *ticket,
                                int64_t *expires_ms, struct cgw_error *err);

/* Verifies a presented ticket and fills *user, and token_public (AUTH_PUBLIC_LEN + 1
 * bytes, may be NULL) with the public id of the token the ticket was made with ("" when
 * the web server had authenticated the user). Any failure — malformed, unknown,
 * expired, its token revoked, the user disabled or gone — is CGW_ERR_UNAUTHORIZED with
 * the same text; CGW_ERR_BACKEND when Redis or the store is down. expires_ms (may be
 * NULL) receives when the ticket expires (cgw_now_ms time), 0 when Redis did not say. */
enum cgw_err auth_ticket_verify(struct bus *bus, struct store *st, const char *ticket,
                                struct store_user *user, char *token_public, int64_t *expires_ms,
                                struct cgw_error *err);

/* Constant-time comparison of n bytes (sodium_memcmp): true when equal. */
bool auth_equal_ct(const void *a, const void *b, size_t n);

#endif
