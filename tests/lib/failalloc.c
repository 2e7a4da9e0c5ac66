/* failalloc.c: the failing allocator and the loop over N of failalloc.h. */
#include "failalloc.h"

#include "core/err.h"

#include <jansson.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The scenarios run on one thread; so does the counter. */
static long fa_count;   /* counted allocations in this run */
static long fa_fail_at; /* the one to fail (1-based), 0: none */
static bool fa_failed;  /* it was reached and failed */
static int fa_held;
static bool fa_persist; /* $CGW_ALLOC_PERSIST: fail the Nth and every later one */

static bool fa_fail_now(void)
{
    if (fa_held > 0 || fa_fail_at == 0)
        return false;
    if (++fa_count < fa_fail_at || (fa_count > fa_fail_at && !fa_persist))
        return false;
    fa_failed = true;
    return true;
}

/* ---- the wrapped C library functions (-Wl,--wrap=NAME) ------------------------- */

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);
char *__wrap_strdup(const char *s);
char *__wrap_strndup(const char *s, size_t n);

void *__wrap_malloc(size_t n)
{
    return fa_fail_now() ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t size)
{
    return fa_fail_now() ? NULL : __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t n)
{
    return fa_fail_now() ? NULL : __real_realloc(p, n);
}

char *__wrap_strdup(const char *s)
{
    return fa_fail_now() ? NULL : __real_strdup(s);
}

char *__wrap_strndup(const char *s, size_t n)
{
    return fa_fail_now() ? NULL : __real_strndup(s, n);
}

/* Jansson's decoder (2.14 and its master) is not safe when memory runs out: lex_save
 * ignores a failed append, so json_loads drops bytes of a string, or crashes writing
 * through a buffer that did not grow (alloc_parsers found both). Nothing the caller can
 * do about it; the test allocator lets the decoder's allocations succeed. */
json_t *__real_json_loads(const char *input, size_t flags, json_error_t *error);
json_t *__real_json_loadb(const char *buffer, size_t buflen, size_t flags, json_error_t *error);
json_t *__wrap_json_loads(const char *input, size_t flags, json_error_t *error);
json_t *__wrap_json_loadb(const char *buffer, size_t buflen, size_t flags, json_error_t *error);

json_t *__wrap_json_loads(const char *input, size_t flags, json_error_t *error)
{
    fa_held++;
    json_t *v = __real_json_loads(input, flags, error);
    fa_held--;
    return v;
}

json_t *__wrap_json_loadb(const char *buffer, size_t buflen, size_t flags, json_error_t *error)
{
    fa_held++;
    json_t *v = __real_json_loadb(buffer, buflen, flags, error);
    fa_held--;
    return v;
}

/* ---- Jansson and SQLite ------------------------------------------------------------ */

/* Jansson's strings go to callers that free() them: plain malloc underneath. */
static void *fa_json_malloc(size_t n)
{
    return fa_fail_now() ? NULL : __real_malloc(n);
}

static void fa_json_free(void *p)
{
    free(p);
}

static sqlite3_mem_methods fa_sqlite_default;

static void *fa_sqlite_malloc(int n)
{
    return fa_fail_now() ? NULL : fa_sqlite_default.xMalloc(n);
}

static void *fa_sqlite_realloc(void *p, int n)
{
    return fa_fail_now() ? NULL : fa_sqlite_default.xRealloc(p, n);
}

void failalloc_init(void)
{
    sqlite3_mem_methods m;

    json_set_alloc_funcs(fa_json_malloc, fa_json_free);
    if (sqlite3_config(SQLITE_CONFIG_GETMALLOC, &fa_sqlite_default) != SQLITE_OK)
        BAIL_OUT("failalloc: SQLite is initialized already");
    m = fa_sqlite_default;
    m.xMalloc = fa_sqlite_malloc;
    m.xRealloc = fa_sqlite_realloc;
    if (sqlite3_config(SQLITE_CONFIG_MALLOC, &m) != SQLITE_OK)
        BAIL_OUT("failalloc: cannot set SQLite's allocator");
}

void failalloc_hold(void)
{
    fa_held++;
}

void failalloc_release(void)
{
    fa_held--;
}

void fa_logf(struct fa_log *log, const char *fmt, ...)
{
    size_t room = sizeof log->text - log->len;
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(log->text + log->len, room, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n + 1 >= room) {
        log->overflow = true;
        return;
    }
    log->len += (size_t)n;
    log->text[log->len++] = '\n';
    log->text[log->len] = '\0';
}

/* ---- the loop ------------------------------------------------------------------- */

/* In a sanitizer build: ask LeakSanitizer now (nonzero: it printed leaks), and say at
 * which N a run died. Weak: absent in a plain build. */
int __lsan_do_recoverable_leak_check(void) __attribute__((weak));
size_t __sanitizer_get_current_allocated_bytes(void) __attribute__((weak));
void __sanitizer_set_death_callback(void (*callback)(void)) __attribute__((weak));

static const char *fa_name;

static void fa_on_death(void)
{
    fprintf(stderr, "failalloc: %s died with allocation %ld failing (CGW_ALLOC_FAIL_AT=%ld)\n",
            fa_name, fa_fail_at, fa_fail_at);
}

#define FA_MAX_RC 31

/* A scenario's nonzero return: a cgw_err, by name. */
static const char *fa_rc_name(int rc)
{
    return rc < CGW_ERR__COUNT ? cgw_err_name((enum cgw_err)rc) : "an unknown error";
}

/* True when the run that started with live bytes in use left memory behind. The leak
 * check is slow: it runs only when the bytes in use grew (memory a run kept on purpose,
 * a cache, is reachable and no leak). */
static bool fa_leaked(size_t live)
{
    return __sanitizer_get_current_allocated_bytes() > live && __lsan_do_recoverable_leak_check();
}

/* Shows the first line where two logs differ. */
static void fa_log_diff(const struct fa_log *want, const struct fa_log *got)
{
    size_t i = 0, line = 0;
    while (i < want->len && i < got->len && want->text[i] == got->text[i])
        i++;
    while (i > 0 && want->text[i - 1] != '\n')
        i--;
    for (size_t j = 0; j < i; j++)
        line += want->text[j] == '\n';
    diag("  log line %zu: expected \"%.*s\"", line + 1, (int)strcspn(want->text + i, "\n"),
         want->text + i);
    diag("  log line %zu:      got \"%.*s\"", line + 1, (int)strcspn(got->text + i, "\n"),
         got->text + i);
}

long failalloc_loop(const char *name, int (*scenario)(struct fa_log *log, void *arg), void *arg)
{
    static struct fa_log base, run;
    const char *only = getenv("CGW_ALLOC_FAIL_AT");
    long points = 0, absorbed = 0, wrong = 0, leaky = 0, first_bad = 0;
    long by_rc[FA_MAX_RC + 2] = {0}; /* the error returned after a failure; last: others */
    bool check_leaks =
        __lsan_do_recoverable_leak_check != NULL && __sanitizer_get_current_allocated_bytes != NULL;
    size_t live = 0;
    int rc;

    fa_name = name;
    fa_persist = getenv("CGW_ALLOC_PERSIST") != NULL;
    if (__sanitizer_set_death_callback)
        __sanitizer_set_death_callback(fa_on_death);

    memset(&base, 0, sizeof base);
    fa_fail_at = 0;
    if (check_leaks)
        live = __sanitizer_get_current_allocated_bytes();
    rc = scenario(&base, arg);
    if (rc != 0 || base.overflow || (check_leaks && fa_leaked(live))) {
        diag("%s: the scenario fails without any failure injected (returned %d%s)", name, rc,
             base.overflow ? ", log overflow" : "");
        return -1;
    }

    for (long n = only ? strtol(only, NULL, 10) : 1; n > 0; n++) {
        memset(&run, 0, sizeof run);
        fa_count = 0;
        fa_failed = false;
        fa_fail_at = n;
        if (check_leaks)
            live = __sanitizer_get_current_allocated_bytes();
        rc = scenario(&run, arg);
        fa_fail_at = 0;
        if (getenv("CGW_ALLOC_VERBOSE"))
            diag("%s: N=%ld returned %d%s", name, n, rc, fa_failed ? "" : " (no failure)");
        if (!fa_failed) {
            /* Fewer than n allocations: every failure point was tried. */
            if (rc != 0 || run.len != base.len || memcmp(run.text, base.text, base.len) != 0) {
                diag("%s: a run without failure differs from the baseline (returned %d)", name, rc);
                wrong++;
            }
            break;
        }
        points++;
        by_rc[rc >= 0 && rc <= FA_MAX_RC ? rc : FA_MAX_RC + 1]++;
        if (rc == 0) {
            /* The failure was absorbed (a fallback, a retry): the result must be whole. */
            absorbed++;
            if (run.len != base.len || memcmp(run.text, base.text, base.len) != 0) {
                diag("%s: allocation %ld failed, no error was reported, and the result differs",
                     name, n);
                fa_log_diff(&base, &run);
                first_bad = first_bad ? first_bad : n;
                wrong++;
            }
        }
        if (check_leaks && fa_leaked(live)) {
            diag("%s: allocation %ld failed and memory leaked (see the LeakSanitizer report)", name,
                 n);
            first_bad = first_bad ? first_bad : n;
            leaky++;
            check_leaks = false; /* it would report the same leak again */
        }
        if (only)
            break;
    }
    diag("%s: %ld failure points (%ld absorbed with the same result)", name, points, absorbed);
    for (int i = 1; i <= FA_MAX_RC + 1; i++)
        if (by_rc[i])
            diag("%s:   %ld answered with %s", name, by_rc[i],
                 i <= FA_MAX_RC ? fa_rc_name(i) : "-1 (an adapter's out of memory)");
    if (wrong || leaky)
        diag("%s: %ld wrong results, %ld leaks; first at CGW_ALLOC_FAIL_AT=%ld", name, wrong, leaky,
             first_bad);
    return wrong || leaky ? -1 : points;
}
