/* log.c: one line per message on stderr, tagged with the thread's request/run ids. */
#include "core/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "core/util.h"

/* Set once by log_init before threads start; read-only afterwards. */
static const char *log_program = "chatgw";
static enum log_level log_min = LOG_LEVEL_INFO;

struct log_context {
    char request[64];
    char run[64];
    char session[64];
};
static _Thread_local struct log_context log_ctx;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void log_init(const char *program, enum log_level level)
{
    if (program)
        log_program = program;
    log_min = level;
}

int log_level_parse(const char *s, enum log_level *out)
{
    for (int i = 0; i <= LOG_LEVEL_ERROR; i++) {
        if (s && strcasecmp(s, level_names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    return -1;
}

const char *log_level_name(enum log_level level)
{
    if ((unsigned)level > LOG_LEVEL_ERROR)
        return "?";
    return level_names[level];
}

bool log_enabled(enum log_level level)
{
    return level >= log_min;
}

static void copy_id(char *dst, const char *src)
{
    if (!src) {
        dst[0] = '\0';
        return;
    }
    snprintf(dst, 64, "%s", src);
}

void log_context_set(const char *request_id, const char *run_id, const char *session_id)
{
    copy_id(log_ctx.request, request_id);
    copy_id(log_ctx.run, run_id);
    copy_id(log_ctx.session, session_id);
}

void log_context_clear(void)
{
    memset(&log_ctx, 0, sizeof log_ctx);
}

/* Appends at most what fits; the line is cut, never overflowed. */
static size_t append(char *buf, size_t size, size_t at, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static size_t append(char *buf, size_t size, size_t at, const char *fmt, ...)
{
    va_list ap;
    if (at >= size)
        return at;
    va_start(ap, fmt);
    int n = vsnprintf(buf + at, size - at, fmt, ap);
    va_end(ap);
    if (n < 0)
        return at;
    return at + (size_t)n >= size ? size - 1 : at + (size_t)n;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    char line[4096];
    char when[CGW_ISO_TIME_LEN + 1];
    size_t at = 0;
    va_list ap;

    if (!log_enabled(level))
        return;
    at = append(line, sizeof line, at, "%s %s[%ld] %s", cgw_time_iso(cgw_now_ms(), when),
                log_program, (long)getpid(), log_level_name(level));
    if (log_ctx.request[0])
        at = append(line, sizeof line, at, " req=%s", log_ctx.request);
    if (log_ctx.run[0])
        at = append(line, sizeof line, at, " run=%s", log_ctx.run);
    if (log_ctx.session[0])
        at = append(line, sizeof line, at, " sess=%s", log_ctx.session);
    at = append(line, sizeof line, at, ": ");
    if (at < sizeof line) {
        va_start(ap, fmt);
        int n = vsnprintf(line + at, sizeof line - at, fmt, ap);
        va_end(ap);
        if (n > 0)
            at = at + (size_t)n >= sizeof line ? sizeof line - 1 : at + (size_t)n;
    }
    /* Newlines inside a message would forge extra log lines. */
    for (size_t i = 0; i < at; i++) {
        if (line[i] == '\n' || line[i] == '\r')
            line[i] = ' ';
    }
    if (at >= sizeof line - 1)
        at = sizeof line - 2;
    line[at++] = '\n';
    /* One write keeps lines whole when threads log at once. */
    ssize_t ignored = write(STDERR_FILENO, line, at);
    (void)ignored;
}
