/* test_log.c: the log line format, levels, and that ids and newlines are handled. */
#include "core/log.h"
#include "tap.h"

#include <fcntl.h>
#include <unistd.h>

/* Runs fn with stderr redirected into a temp file; returns what was written. */
static char *capture(void (*fn)(void))
{
    static char out[8192];
    char path[] = "/tmp/cgw-test-log-XXXXXX";
    int fd = mkstemp(path);
    int saved = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);
    fn();
    dup2(saved, STDERR_FILENO);
    close(saved);
    lseek(fd, 0, SEEK_SET);
    ssize_t n = read(fd, out, sizeof out - 1);
    out[n > 0 ? n : 0] = '\0';
    close(fd);
    unlink(path);
    return out;
}

static void emit_levels(void)
{
    log_debug("hidden %d", 1);
    log_info("shown %d", 2);
    log_error("bad\nline");
}

static void emit_context(void)
{
    log_context_set("req-1", "run_abc", "sess-9");
    log_warn("with ids");
    log_context_clear();
    log_warn("without ids");
}

static void emit_long(void)
{
    char big[10000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    log_error("%s", big);
}

int main(void)
{
    enum log_level l;
    plan_lazy();
    ok(log_level_parse("warn", &l) == 0 && l == LOG_LEVEL_WARN, "parse warn");
    ok(log_level_parse("DEBUG", &l) == 0 && l == LOG_LEVEL_DEBUG, "parse is case-insensitive");
    ok(log_level_parse("loud", &l) < 0, "unknown level");

    log_init("test_log", LOG_LEVEL_INFO);
    ok(!log_enabled(LOG_LEVEL_DEBUG) && log_enabled(LOG_LEVEL_INFO) && log_enabled(LOG_LEVEL_ERROR),
       "log_enabled follows the level given to log_init");
    char *out = capture(emit_levels);
    ok(strstr(out, "hidden") == NULL, "debug suppressed at info");
    ok(strstr(out, "test_log[") && strstr(out, "] info: shown 2\n"),
       "info line has program, pid and level");
    ok(strstr(out, "error: bad line\n") != NULL, "newline in message cannot forge a line");
    int lines = 0;
    for (char *p = out; *p; p++)
        lines += *p == '\n';
    is_int(lines, 2, "two lines written");
    ok(out[4] == '-' && out[10] == 'T' && out[23] == 'Z', "line starts with ISO time");

    out = capture(emit_context);
    ok(strstr(out, "warn req=req-1 run=run_abc sess=sess-9: with ids\n") != NULL,
       "ids tag the line");
    ok(strstr(out, "warn: without ids\n") != NULL, "cleared context");

    out = capture(emit_long);
    size_t len = strlen(out);
    ok(len > 1000 && len <= 4096 && out[len - 1] == '\n', "long message cut to one line");
    return done_testing();
}
