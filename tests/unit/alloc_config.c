/* alloc_config.c: every allocation of the config module fails in turn (failalloc.h). */
#include "core/config.h"
#include "core/log.h"
#include "failalloc.h"
#include "tap.h"

#include <unistd.h>

struct fixture {
    char path[256]; /* a config file */
};

/* Every key's value, one line each. */
static void log_config(struct fa_log *log, const struct config *cfg)
{
    char buf[1024];
    for (const struct config_key *k = config_keys; k->name; k++) {
        if (config_format(cfg, k, buf, sizeof buf) != 0)
            snprintf(buf, sizeof buf, "(unformattable)");
        fa_logf(log, "%s = %s", k->name, buf);
    }
}

/* Returns 0, or the first error: what a caller would see. */
static int scenario(struct fa_log *log, void *arg)
{
    const struct fixture *fx = arg;
    struct config cfg;
    struct cgw_error err = {0};
    char *env[] = {"CHATGW_REDIS_DB=5", "CHATGW_CLAUDE_BIN=/opt/fake-claude",
                   "CHATGW_PROJECTS_ROOTS=/srv/x:/srv/y", "CHATGW_URL=http://x", NULL};
    const char *text = "# comment\n"
                       "db.path = /tmp/x.db\n"
                       "redis.address=unix:/run/redis.sock\n"
                       "redis.password = \"p w = #\"\n"
                       "limits.max_body = 2M\n"
                       "projects.roots = /srv/a, /srv/b/ : /home\n"
                       "log.level = debug\n";
    enum cgw_err rc;

    rc = config_load(&cfg, fx->path, env, &err);
    if (rc != CGW_OK)
        return rc;
    rc = config_parse_text(&cfg, text, strlen(text), "text.conf", &err);
    if (rc == CGW_OK)
        rc = config_set(&cfg, "cors.origins", "https://a.example https://b.example", &err);
    if (rc == CGW_OK)
        log_config(log, &cfg);
    /* A bad value is an error naming it, whatever memory does. */
    if (rc == CGW_OK) {
        rc = config_parse_text(&cfg, "limits.max_frames = lots\n", 25, "bad.conf", &err);
        fa_logf(log, "bad value: %d %s", rc, err.text);
        rc = rc == CGW_ERR_INVALID ? CGW_OK : rc;
    }
    config_free(&cfg);
    return rc;
}

int main(void)
{
    struct fixture fx;
    char dir[] = "/tmp/cgw-alloc-config-XXXXXX";
    FILE *f;

    failalloc_init();
    log_init("alloc", LOG_LEVEL_ERROR);
    plan(1);
    if (!mkdtemp(dir))
        BAIL_OUT("mkdtemp");
    snprintf(fx.path, sizeof fx.path, "%s/chatgw.conf", dir);
    f = fopen(fx.path, "w");
    if (!f)
        BAIL_OUT("cannot write %s", fx.path);
    fputs("db.path = /from/file.db\nredis.db = 3\nfcgi.threads = 8\n", f);
    fclose(f);

    failalloc_test("config", scenario, &fx);

    unlink(fx.path);
    rmdir(dir);
    return done_testing();
}
