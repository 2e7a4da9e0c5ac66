/* failalloc.h: a test allocator that fails the Nth allocation, and the loop over N.
 *
 * Built only with ./configure --enable-alloc-failure, into the tests/unit/alloc_*
 * programs, which are linked with -Wl,--wrap= for malloc, calloc, realloc, strdup and
 * strndup: every call from the project's code (libcore.a, the adapters) and from the
 * test lands in failalloc.c. failalloc_init() also routes Jansson's allocations
 * (json_set_alloc_funcs) and SQLite's (SQLITE_CONFIG_MALLOC, wrapping its default
 * allocator) through the same counter. hiredis 0.14 has no allocator hooks and the C
 * library allocates inside fopen and friends: those allocations never fail here.
 *
 * The loop (SQLite's faultsim, Jansson's test_chaos.c): run the scenario once with no
 * failure for its baseline log, then for N = 1, 2, ... run it again with the Nth
 * counted allocation failing (once; later ones succeed), until a run completes without
 * reaching N. Each run must either report an error (a nonzero return) or succeed with
 * the baseline's log, exactly; it must not crash, and after it nothing may leak
 * (LeakSanitizer is asked after every run in a sanitizer build). Each N that failed an
 * allocation is one failure point.
 *
 *   static int scenario(struct fa_log *log, void *arg) { ... return 0 or an error; }
 *   failalloc_init();
 *   failalloc_test("store", scenario, &fixture);   one TAP test; diag shows the counts
 */
#ifndef CGW_TESTS_FAILALLOC_H
#define CGW_TESTS_FAILALLOC_H

#include <stdbool.h>
#include <stddef.h>

#include "tap.h"

/* What a scenario saw, compared between the baseline and every later run. */
struct fa_log {
    char text[1 << 16];
    size_t len;
    bool overflow;
};

/* Appends one formatted line ("\n" added). Never allocates. */
void fa_logf(struct fa_log *log, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Routes Jansson and SQLite through the counter. Call first in main, before any
 * SQLite use. */
void failalloc_init(void);

/* While held (nesting counts), allocations are neither counted nor failed: for the
 * test's own bookkeeping (building its log) inside a scenario. */
void failalloc_hold(void);
void failalloc_release(void);

/* Runs the loop described above. The scenario returns 0 after success or nonzero after
 * an error it was told of (an error code, -1, ...). Returns the number of failure
 * points, or -1 when a run went wrong (diag says at which N). $CGW_ALLOC_FAIL_AT=N
 * runs the baseline and that N only (to debug one failure point); $CGW_ALLOC_PERSIST=1
 * fails allocation N and every later one (SQLite's "persistent" faults). */
long failalloc_loop(const char *name, int (*scenario)(struct fa_log *log, void *arg), void *arg);

/* The loop as one TAP test of the calling program (tap.h counts per file). */
static inline long failalloc_test(const char *name, int (*scenario)(struct fa_log *log, void *arg),
                                  void *arg)
{
    long n = failalloc_loop(name, scenario, arg);
    ok(n > 0, "%s: %ld failure points, each answered with an error or the same result", name, n);
    return n;
}

/* In a scenario: a core call's failure becomes the scenario's result (rc), then goto out,
 * where the scenario frees what it holds. */
#define TRY(call)                                                                                  \
    do {                                                                                           \
        enum cgw_err e_ = (call);                                                                  \
        if (e_ != CGW_OK) {                                                                        \
            rc = e_;                                                                               \
            goto out;                                                                              \
        }                                                                                          \
    } while (0)

#endif
