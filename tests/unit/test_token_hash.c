/* test_token_hash.c: the token hash (libsodium's SHA-256) against the FIPS 180-4 / NIST
 * example vectors, so a change of library or of how the token is fed to it shows. */
#include "core/auth.h"
#include "core/util.h"
#include "tap.h"

static void check(const char *msg, size_t n, const char *want, const char *name)
{
    unsigned char d[AUTH_HASH_LEN];
    char hex[2 * AUTH_HASH_LEN + 1] = "";
    struct cgw_error err;
    is_int(auth_token_hash(msg, n, d, &err), CGW_OK, "%s: hashed", name);
    cgw_hex(d, sizeof d, hex);
    is_str(hex, want, "%s", name);
}

int main(void)
{
    plan_lazy();
    ok(auth_crypto_init() == 0, "libsodium initialises");
    ok(auth_crypto_init() == 0, "and again (idempotent)");
    check("", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "empty");
    check("abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", "abc");
    const char *m448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    check(m448, strlen(m448), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
          "448 bits (two blocks)");
    const char *m896 =
        "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklm"
        "nopqklmnopqrlmnopqrsmnopqrstnopqrstu";
    check(m896, strlen(m896), "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1",
          "896 bits");

    static char million[1000000];
    memset(million, 'a', sizeof million);
    check(million, sizeof million,
          "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0", "one million a");

    /* A token-shaped input: the exact bytes of a token are hashed, nothing more. */
    const char *tok = "cgw_AAAAAAAAAAAAAAAA_BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB";
    is_int(strlen(tok), AUTH_TOKEN_LEN, "token-shaped input has the token length");
    unsigned char a[AUTH_HASH_LEN], b[AUTH_HASH_LEN];
    struct cgw_error err;
    is_int(auth_token_hash(tok, AUTH_TOKEN_LEN, a, &err), CGW_OK, "token hashed");
    is_int(auth_token_hash(tok, AUTH_TOKEN_LEN - 1, b, &err), CGW_OK, "prefix hashed");
    ok(!auth_equal_ct(a, b, sizeof a), "one byte less is another hash");
    ok(auth_equal_ct(a, a, sizeof a), "a hash equals itself");
    return done_testing();
}
