/* tap.h: a small TAP producer for the C tests (run through automake's tap-driver.sh).
 *
 *   plan(n) / plan_lazy() ... done_testing();  skip_all("reason");
 *   ok(cond, "name", ...);  is_int(a, b, "name");  is_str(a, b, "name");
 *   diag("fmt", ...)
 * A failing check prints both sides as a "#" diagnostic. done_testing() returns
 * the exit status (0 when every test passed), so main ends with
 * `return done_testing();`.
 */
#ifndef CGW_TAP_H
#define CGW_TAP_H

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int tap_run_, tap_failed_, tap_planned_ = -1;

static inline void plan(int n)
{
    tap_planned_ = n;
    printf("1..%d\n", n);
    fflush(stdout);
}

/* The plan is printed by done_testing() after the tests. */
static inline void plan_lazy(void)
{
    tap_planned_ = -1;
}

static inline void skip_all(const char *why)
{
    printf("1..0 # SKIP %s\n", why);
    fflush(stdout);
    exit(0);
}

static inline void diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline void diag(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("# ", stdout);
    vprintf(fmt, ap);
    fputc('\n', stdout);
    fflush(stdout);
    va_end(ap);
}

static inline int tap_ok_(int cond, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static inline int tap_ok_(int cond, const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    tap_run_++;
    if (!cond)
        tap_failed_++;
    printf("%s %d - ", cond ? "ok" : "not ok", tap_run_);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    if (!cond)
        printf("#   Failed at %s:%d\n", file, line);
    fflush(stdout);
    return cond;
}

#define ok(cond, ...) tap_ok_(!!(cond), __FILE__, __LINE__, __VA_ARGS__)

#define is_int(got, want, ...)                                                                     \
    do {                                                                                           \
        long long got_ = (long long)(got), want_ = (long long)(want);                              \
        if (!tap_ok_(got_ == want_, __FILE__, __LINE__, __VA_ARGS__))                              \
            printf("#          got: %lld\n#     expected: %lld\n", got_, want_);                   \
    } while (0)

#define is_str(got, want, ...)                                                                     \
    do {                                                                                           \
        const char *got_ = (got), *want_ = (want);                                                 \
        int same_ = (got_ && want_) ? strcmp(got_, want_) == 0 : got_ == want_;                    \
        if (!tap_ok_(same_, __FILE__, __LINE__, __VA_ARGS__))                                      \
            printf("#          got: %s%s%s\n#     expected: %s%s%s\n", got_ ? "\"" : "",           \
                   got_ ? got_ : "NULL", got_ ? "\"" : "", want_ ? "\"" : "",                      \
                   want_ ? want_ : "NULL", want_ ? "\"" : "");                                     \
    } while (0)

/* Stops the test program when a precondition fails (the rest would only crash). */
#define BAIL_OUT(...)                                                                              \
    do {                                                                                           \
        printf("Bail out! ");                                                                      \
        printf(__VA_ARGS__);                                                                       \
        putchar('\n');                                                                             \
        fflush(stdout);                                                                            \
        exit(1);                                                                                   \
    } while (0)

static inline int done_testing(void)
{
    if (tap_planned_ < 0)
        printf("1..%d\n", tap_run_);
    else if (tap_planned_ != tap_run_)
        printf("# planned %d tests but ran %d\n", tap_planned_, tap_run_);
    fflush(stdout);
    return tap_failed_ || (tap_planned_ >= 0 && tap_planned_ != tap_run_) ? 1 : 0;
}

#endif
