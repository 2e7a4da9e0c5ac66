/* test_auth.c: token creation and verification against a real SQLite store. */
#include "core/auth.h"
#include "core/store.h"
#include "tap.h"
#include "testenv.h"

int main(void)
{
    char dir[256], path[300];
    struct store *st = NULL;
    struct cgw_error err;
    char token[AUTH_TOKEN_LEN + 1], token2[AUTH_TOKEN_LEN + 1];
    struct store_user user;
    int64_t id = 0, id2 = 0;

    plan_lazy();
    if (testenv_tmpdir("auth", dir, sizeof dir) < 0)
        BAIL_OUT("no temp dir");
    snprintf(path, sizeof path, "%s/auth.db", dir);
    if (store_open(path, true, 1000, &st, &err) != CGW_OK ||
        store_migrate(st, NULL, &err) != CGW_OK)
        BAIL_OUT("store: %s", err.text);
    is_int(store_user_add(st, "alice", NULL, &err), CGW_OK, "user alice");
    is_int(store_user_add(st, "bob", NULL, &err), CGW_OK, "user bob");

    is_int(auth_token_create(st, "alice", "laptop", token, &id, &err), CGW_OK, "token created");
    is_int(strlen(token), AUTH_TOKEN_LEN, "token length");
    ok(strncmp(token, "cgw_", 4) == 0, "token prefix");
    int dash = 0;
    for (int i = 0; i < 200; i++) {
        char t[AUTH_TOKEN_LEN + 1];
        if (auth_token_create(st, "bob", NULL, t, NULL, &err) == CGW_OK)
            dash |= t[4] == '-';
    }
    ok(!dash, "public ids never start with '-' (they are given on command lines)");
    is_int(auth_token_create(st, "alice", NULL, token2, &id2, &err), CGW_OK, "second token");
    ok(strcmp(token, token2) != 0 && id != id2, "tokens differ");
    is_int(auth_token_create(st, "nobody", NULL, token2, NULL, &err), CGW_ERR_NOT_FOUND,
           "token for unknown user");

    /* Only the SHA-256 of the token is stored, next to its public part. */
    char pub[AUTH_PUBLIC_LEN + 1];
    ok(auth_token_public_id(token, pub) == 0, "public part parsed");
    struct store_token row;
    bool disabled = true;
    is_int(store_token_find(st, pub, &row, &disabled, &err), CGW_OK, "row by public id");
    unsigned char hash[AUTH_HASH_LEN];
    is_int(auth_token_hash(token, strlen(token), hash, &err), CGW_OK, "token hashed");
    ok(memcmp(hash, row.hash, 32) == 0, "row holds the SHA-256 of the token");
    is_str(row.label, "laptop", "label stored");
    ok(!disabled, "owner enabled");

    memset(&user, 0, sizeof user);
    is_int(auth_token_verify(st, token, &user, &err), CGW_OK, "token verifies");
    is_str(user.name, "alice", "owner is alice");

    /* Every kind of bad token is the same 401. */
    char wrong[AUTH_TOKEN_LEN + 1];
    memcpy(wrong, token, sizeof wrong);
    wrong[AUTH_TOKEN_LEN - 1] = wrong[AUTH_TOKEN_LEN - 1] == 'A' ? 'B' : 'A';
    is_int(auth_token_verify(st, wrong, &user, &err), CGW_ERR_UNAUTHORIZED, "wrong secret");
    char forged[AUTH_TOKEN_LEN + 1];
    memcpy(forged, token, sizeof forged);
    forged[5] = forged[5] == 'A' ? 'B' : 'A';
    is_int(auth_token_verify(st, forged, &user, &err), CGW_ERR_UNAUTHORIZED, "unknown public part");
    is_int(auth_token_verify(st, "", &user, &err), CGW_ERR_UNAUTHORIZED, "empty");
    is_int(auth_token_verify(st, "cgw_short", &user, &err), CGW_ERR_UNAUTHORIZED, "short");
    char spaced[AUTH_TOKEN_LEN + 1];
    memcpy(spaced, token, sizeof spaced);
    spaced[30] = ' ';
    is_int(auth_token_verify(st, spaced, &user, &err), CGW_ERR_UNAUTHORIZED, "bad alphabet");
    is_str(err.text, "invalid or revoked token", "one text for every failure");

    is_int(store_token_revoke(st, id, &err), CGW_OK, "revoke");
    is_int(auth_token_verify(st, token, &user, &err), CGW_ERR_UNAUTHORIZED, "revoked token");
    is_int(auth_token_verify(st, token2, &user, &err), CGW_OK, "the other token still works");

    is_int(store_user_set_disabled(st, "alice", true, &err), CGW_OK, "disable alice");
    is_int(auth_token_verify(st, token2, &user, &err), CGW_ERR_UNAUTHORIZED,
           "disabled user's token");
    is_int(auth_token_create(st, "alice", NULL, token2, NULL, &err), CGW_ERR_CONFLICT,
           "no new token for a disabled user");

    ok(auth_equal_ct("abc", "abc", 3) && !auth_equal_ct("abc", "abd", 3), "constant-time equal");

    store_close(st);
    testenv_rmtree(dir);
    return done_testing();
}
