/* util.h: ids, time, randomness and checked number parsing shared by every program. */
#ifndef CGW_UTIL_H
#define CGW_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CGW_UUID_LEN 36     /* "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx" */
#define CGW_ISO_TIME_LEN 24 /* "2026-11-25T21:14:00.123Z" */
#define CGW_ID_MAX 64       /* "<kind>_<uuid>" with the longest kind */

/* Wall-clock milliseconds since the Unix epoch (CLOCK_REALTIME). Thread-safe. */
int64_t cgw_now_ms(void);

/* Monotonic milliseconds (CLOCK_MONOTONIC), for deadlines and timeouts. Thread-safe. */
int64_t cgw_mono_ms(void);

/* Sleeps ms milliseconds (nanosleep, resumed after a signal); ms <= 0 returns at
 * once. Thread-safe. */
void cgw_sleep_ms(int64_t ms);

/* Formats ms-since-epoch as ISO-8601 UTC with milliseconds and 'Z' into buf
 * (at least CGW_ISO_TIME_LEN + 1 bytes). Returns buf. */
char *cgw_time_iso(int64_t ms, char *buf);

/* Fills buf with n cryptographically random bytes (getrandom(2)).
 * Returns 0, or -1 with errno set. Thread-safe. */
int cgw_random_bytes(void *buf, size_t n);

/* Writes a random RFC 4122 version-4 UUID, lowercase, into buf
 * (at least CGW_UUID_LEN + 1 bytes). Returns 0 or -1 (no randomness). */
int cgw_uuid_v4(char *buf);

/* True when s is a lowercase or uppercase canonical UUID (8-4-4-4-12 hex). */
bool cgw_uuid_valid(const char *s);

/* FNV-1a of a string: the hash of the in-memory tables keyed by session ids and token
 * public ids (not for anything an attacker must not predict). */
uint64_t cgw_hash_str(const char *s);

/* Writes "<prefix>_<uuid v4>" into buf (size bytes). Returns 0 or -1. */
int cgw_id_new(const char *prefix, char *buf, size_t size);

/* URL-safe base64 without padding (RFC 4648 §5). out needs 4*ceil(n/3)+1 bytes;
 * returns the length written (without the NUL). */
size_t cgw_base64url(const void *in, size_t n, char *out);

/* Lowercase hex of n bytes into out (2n+1 bytes). */
void cgw_hex(const void *in, size_t n, char *out);

/* Parses a whole decimal integer in [min, max]. Leading/trailing blanks and
 * anything after the digits make it fail. Returns 0 and sets *out, or -1. */
int cgw_parse_int64(const char *s, int64_t min, int64_t max, int64_t *out);

/* Like cgw_parse_int64 but accepts a size with an optional K, M or G suffix
 * (powers of 1024, case-insensitive, optional trailing 'B' / "iB"). */
int cgw_parse_size(const char *s, int64_t min, int64_t max, int64_t *out);

/* Parses true/false/yes/no/on/off/1/0 (case-insensitive). Returns 0 or -1. */
int cgw_parse_bool(const char *s, bool *out);

/* Replaces every byte that is not part of a valid UTF-8 sequence (overlong forms,
 * surrogates and code points above U+10FFFF included) with '?', in place, so that text
 * from outside (a CLI's stderr, a parser's error message) can go into JSON. Returns s. */
char *cgw_utf8_sanitize(char *s);

/* strdup that returns NULL for a NULL argument. */
char *cgw_strdup(const char *s);

#endif
