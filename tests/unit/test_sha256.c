/* test_sha256.c: SHA-256 against the FIPS 180-4 / NIST example vectors. */
#include "core/sha256.h"
#include "core/util.h"
#include "tap.h"

static void check(const char *msg, size_t n, const char *want, const char *name)
{
    unsigned char d[SHA256_DIGEST_LEN];
    char hex[2 * SHA256_DIGEST_LEN + 1];
    sha256(msg, n, d);
    cgw_hex(d, sizeof d, hex);
    is_str(hex, want, "%s", name);
}

int main(void)
{
    plan_lazy();
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

    /* One million 'a', fed in odd-sized pieces to exercise the buffering. */
    struct sha256 s;
    unsigned char d[SHA256_DIGEST_LEN];
    char hex[2 * SHA256_DIGEST_LEN + 1];
    char chunk[997];
    memset(chunk, 'a', sizeof chunk);
    sha256_init(&s);
    size_t left = 1000000;
    while (left) {
        size_t n = left < sizeof chunk ? left : sizeof chunk;
        sha256_update(&s, chunk, n);
        left -= n;
    }
    sha256_final(&s, d);
    cgw_hex(d, sizeof d, hex);
    is_str(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0",
           "one million a");

    /* Lengths around the padding boundary agree between one-shot and bytewise. */
    char buf[130];
    memset(buf, 'z', sizeof buf);
    int agree = 1;
    for (size_t n = 50; n < sizeof buf; n++) {
        unsigned char a[32], b[32];
        sha256(buf, n, a);
        sha256_init(&s);
        for (size_t i = 0; i < n; i++)
            sha256_update(&s, buf + i, 1);
        sha256_final(&s, b);
        agree &= memcmp(a, b, 32) == 0;
    }
    ok(agree, "bytewise and one-shot agree for lengths 50..129");
    return done_testing();
}
