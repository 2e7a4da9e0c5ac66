/* test_util.c: ids, time formatting, base64url, checked parsing. */
#include "core/util.h"
#include "tap.h"

#include <stdint.h>

int main(void)
{
    char buf[128];
    int64_t v;
    bool b;

    plan_lazy();
    is_str(cgw_time_iso(0, buf), "1970-01-01T00:00:00.000Z", "epoch");
    is_str(cgw_time_iso(1764105240123LL, buf), "2025-11-25T21:14:00.123Z", "milliseconds");
    is_str(cgw_time_iso(951782400999LL, buf), "2000-02-29T00:00:00.999Z", "leap day");
    is_int(strlen(cgw_time_iso(cgw_now_ms(), buf)), CGW_ISO_TIME_LEN, "now has fixed length");
    ok(cgw_now_ms() > 1700000000000LL, "wall clock is sane");
    int64_t m1 = cgw_mono_ms(), m2 = cgw_mono_ms();
    ok(m2 >= m1, "monotonic clock does not go back");

    char u1[CGW_UUID_LEN + 1], u2[CGW_UUID_LEN + 1];
    ok(cgw_uuid_v4(u1) == 0 && cgw_uuid_v4(u2) == 0, "uuids generated");
    ok(cgw_uuid_valid(u1), "uuid is canonical: %s", u1);
    ok(u1[14] == '4', "version nibble is 4");
    ok(strchr("89ab", u1[19]) != NULL, "variant is RFC 4122");
    ok(strcmp(u1, u2) != 0, "two uuids differ");
    ok(!cgw_uuid_valid("not-a-uuid"), "garbage is not a uuid");
    ok(!cgw_uuid_valid("123e4567-e89b-12d3-a456-4266141740000"), "too long is not a uuid");
    ok(!cgw_uuid_valid("123e4567e89b-12d3-a456-4266141740000"), "misplaced dash");
    ok(!cgw_uuid_valid("../../../etc/passwd-aaaa-aaaa-aaaaaaa"), "path is not a uuid");
    ok(!cgw_uuid_valid(NULL), "NULL is not a uuid");

    ok(cgw_id_new("text", buf, sizeof buf) == 0, "id made");
    ok(strncmp(buf, "text_", 5) == 0 && cgw_uuid_valid(buf + 5), "id is <kind>_<uuid>: %s", buf);
    ok(cgw_id_new("text", buf, 10) < 0, "id that does not fit fails");

    is_int(cgw_base64url("", 0, buf), 0, "base64url of nothing");
    cgw_base64url("f", 1, buf);
    is_str(buf, "Zg", "base64url f");
    cgw_base64url("fo", 2, buf);
    is_str(buf, "Zm8", "base64url fo");
    cgw_base64url("foobar", 6, buf);
    is_str(buf, "Zm9vYmFy", "base64url foobar");
    cgw_base64url("\xfb\xff\xbf", 3, buf);
    is_str(buf, "-_-_", "url-safe alphabet");
    cgw_hex("\x00\xab\xff", 3, buf);
    is_str(buf, "00abff", "hex");

    unsigned char r1[32] = {0}, r2[32] = {0};
    ok(cgw_random_bytes(r1, sizeof r1) == 0 && cgw_random_bytes(r2, sizeof r2) == 0 &&
           memcmp(r1, r2, 32) != 0,
       "random bytes differ");

    ok(cgw_parse_int64("42", 0, 100, &v) == 0 && v == 42, "int");
    ok(cgw_parse_int64("-5", -10, 10, &v) == 0 && v == -5, "negative int");
    ok(cgw_parse_int64("101", 0, 100, &v) < 0, "int over max");
    ok(cgw_parse_int64("12abc", 0, 100, &v) < 0, "trailing junk");
    ok(cgw_parse_int64(" 12", 0, 100, &v) < 0, "leading blank");
    ok(cgw_parse_int64("", 0, 100, &v) < 0, "empty");
    ok(cgw_parse_int64("99999999999999999999", 0, INT64_MAX, &v) < 0, "overflow");
    ok(cgw_parse_size("1M", 0, INT64_MAX, &v) == 0 && v == 1048576, "size 1M");
    ok(cgw_parse_size("256k", 0, INT64_MAX, &v) == 0 && v == 262144, "size 256k");
    ok(cgw_parse_size("2GiB", 0, INT64_MAX, &v) == 0 && v == 2147483648LL, "size 2GiB");
    ok(cgw_parse_size("512", 0, INT64_MAX, &v) == 0 && v == 512, "size plain");
    ok(cgw_parse_size("1T", 0, INT64_MAX, &v) < 0, "unknown suffix");
    ok(cgw_parse_size("-1K", INT64_MIN, INT64_MAX, &v) < 0, "negative size");
    ok(cgw_parse_size("9223372036854775807K", 0, INT64_MAX, &v) < 0, "size overflow");
    ok(cgw_parse_bool("Yes", &b) == 0 && b, "bool yes");
    ok(cgw_parse_bool("off", &b) == 0 && !b, "bool off");
    ok(cgw_parse_bool("maybe", &b) < 0, "bool maybe");
    char u[64];
    snprintf(u, sizeof u, "%s", "ok \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
    is_str(cgw_utf8_sanitize(u), "ok \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "valid UTF-8 kept");
    snprintf(u, sizeof u, "%s", "a\xff b\xc0\xaf c\xed\xa0\x80 d\xe2\x82");
    is_str(cgw_utf8_sanitize(u), "a? b?? c??? d??", "invalid bytes become '?'");
    snprintf(u, sizeof u, "%s", "\xf4\x90\x80\x80");
    is_str(cgw_utf8_sanitize(u), "????", "above U+10FFFF");
    return done_testing();
}
