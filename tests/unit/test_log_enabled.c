/* test_log_enabled.c: log_enabled follows log_init's level (callers ask it instead of
 * comparing the configured level's text). */
#include "core/log.h"
#include "tap.h"

int main(void)
{
    plan_lazy();
    log_init("test", LOG_LEVEL_INFO);
    ok(!log_enabled(LOG_LEVEL_DEBUG), "info: debug off");
    ok(log_enabled(LOG_LEVEL_INFO) && log_enabled(LOG_LEVEL_WARN) && log_enabled(LOG_LEVEL_ERROR),
       "info: info, warn, error on");
    log_init("test", LOG_LEVEL_DEBUG);
    ok(log_enabled(LOG_LEVEL_DEBUG), "debug: debug on");
    log_init("test", LOG_LEVEL_ERROR);
    ok(!log_enabled(LOG_LEVEL_WARN) && log_enabled(LOG_LEVEL_ERROR), "error: only error on");
    enum log_level l;
    ok(log_level_parse("debug", &l) == 0 && l == LOG_LEVEL_DEBUG, "parse debug");
    return done_testing();
}
