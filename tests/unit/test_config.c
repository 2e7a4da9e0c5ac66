/* test_config.c: defaults, the file parser, environment overrides and their errors. */
#include "core/bus_sentinel.h"
#include "core/config.h"
#include "tap.h"

#include <unistd.h>

static enum cgw_err parse(struct config *cfg, const char *text, struct cgw_error *err)
{
    return config_parse_text(cfg, text, strlen(text), "test.conf", err);
}

int main(void)
{
    struct config cfg;
    struct cgw_error err = {0};
    char buf[512];

    plan_lazy();
    is_int(config_defaults(&cfg, &err), CGW_OK, "defaults load");
    is_str(cfg.db_path, "/var/lib/chatgw/chatgw.db", "db.path default");
    is_str(cfg.redis_address, "127.0.0.1:6379", "redis.address default");
    is_int(cfg.max_body, 1024 * 1024, "limits.max_body default 1 MiB");
    is_int(cfg.max_frames, 1000, "limits.max_frames default");
    is_int(cfg.wait_ms_max, 55000, "wait max default");
    is_int(cfg.permissions_timeout_s, 600, "permission timeout default");
    is_int(cfg.runner_lease_s, 15, "lease default");
    is_int(cfg.stream_maxlen, 5000, "stream maxlen default");
    is_str(cfg.provider_bin[PROVIDER_CURSOR], "cursor-agent", "cursor binary default");
    ok(!cfg.auth_trust_remote_user, "REMOTE_USER not trusted by default");
    is_int(cfg.n_project_roots, 0, "no project roots by default");

    /* Every key has a documented default that parses, and formats back. */
    int all_ok = 1;
    for (const struct config_key *k = config_keys; k->name; k++) {
        all_ok &= k->doc && *k->doc && k->def != NULL;
        all_ok &= config_format(&cfg, k, buf, sizeof buf) == 0;
        all_ok &= config_set(&cfg, k->name, buf, &err) == CGW_OK;
    }
    ok(all_ok, "every key documented, formats and re-parses its value");

    const char *text = "# comment\n"
                       "; another comment\n"
                       "\n"
                       "db.path = /tmp/x.db\n"
                       "  redis.address=unix:/run/redis.sock  \n"
                       "redis.password = \"p w = #\"\n"
                       "limits.max_body = 2M\n"
                       "auth.trust_remote_user = yes\n"
                       "projects.roots = /srv/a, /srv/b/ : /home\n"
                       "log.level = debug\n";
    is_int(parse(&cfg, text, &err), CGW_OK, "a full file parses: %s", err.text);
    is_str(cfg.db_path, "/tmp/x.db", "string value");
    is_str(cfg.redis_address, "unix:/run/redis.sock", "blanks trimmed");
    is_str(cfg.redis_password, "p w = #", "quoted value kept whole");
    is_int(cfg.max_body, 2 * 1024 * 1024, "size suffix");
    ok(cfg.auth_trust_remote_user, "bool");
    is_int(cfg.n_project_roots, 3, "three roots");
    is_str(cfg.project_roots[1], "/srv/b", "trailing slash dropped");
    is_str(cfg.project_roots[2], "/home", "':' separates too");
    is_str(cfg.log_level, "debug", "log level");

    is_int(parse(&cfg, "db.path = /a\nbogus.key = 1\n", &err), CGW_ERR_INVALID, "unknown key");
    is_str(err.text, "test.conf:2: unknown key \"bogus.key\"", "error names file, line and key");
    is_int(parse(&cfg, "\n\nlimits.max_frames = lots\n", &err), CGW_ERR_INVALID, "bad int");
    ok(strstr(err.text, "test.conf:3: limits.max_frames") == err.text, "names line and key: %s",
       err.text);
    is_int(parse(&cfg, "limits.max_frames = 0\n", &err), CGW_ERR_INVALID, "below range");
    is_int(parse(&cfg, "fcgi.threads = 100000\n", &err), CGW_ERR_INVALID, "above range");
    is_int(parse(&cfg, "auth.trust_remote_user = perhaps\n", &err), CGW_ERR_INVALID, "bad bool");
    is_int(parse(&cfg, "log.level = loud\n", &err), CGW_ERR_INVALID, "bad log level");
    is_int(parse(&cfg, "projects.roots = relative/dir\n", &err), CGW_ERR_INVALID,
           "relative project root");
    is_int(parse(&cfg, "just words\n", &err), CGW_ERR_INVALID, "line without '='");
    ok(strstr(err.text, ":1:") != NULL, "names the line");
    is_int(parse(&cfg, "db.path = \"open\n", &err), CGW_ERR_INVALID, "unterminated quote");
    is_int(parse(&cfg, "limits.max_body = 5K", &err), CGW_OK, "last line without newline");
    is_int(cfg.max_body, 5120, "applied");
    is_int(config_parse_text(&cfg, "db.path = a\0b\n", 14, "t", &err), CGW_ERR_INVALID,
           "NUL byte rejected");
    config_free(&cfg);

    /* Environment overrides beat the file; unrelated CHATGW_ variables are ignored. */
    char dir[] = "/tmp/cgw-test-config-XXXXXX";
    ok(mkdtemp(dir) != NULL, "temp dir");
    char path[256];
    snprintf(path, sizeof path, "%s/chatgw.conf", dir);
    FILE *f = fopen(path, "w");
    fputs("db.path = /from/file.db\nredis.db = 3\n", f);
    fclose(f);
    char *env[] = {"CHATGW_REDIS_DB=5",   "CHATGW_CLAUDE_BIN=/opt/fake-claude",
                   "CHATGW_URL=http://x", "CHATGW_TOKEN=abc",
                   "PATH=/bin",           NULL};
    is_int(config_load(&cfg, path, env, &err), CGW_OK, "load file + env: %s", err.text);
    is_str(cfg.db_path, "/from/file.db", "file value");
    is_int(cfg.redis_db, 5, "env beats file");
    is_str(cfg.provider_bin[PROVIDER_CLAUDE], "/opt/fake-claude", "CHATGW_CLAUDE_BIN");
    config_free(&cfg);

    char *bad_env[] = {"CHATGW_LIMITS_MAX_FRAMES=-3", NULL};
    is_int(config_load(&cfg, path, bad_env, &err), CGW_ERR_INVALID, "bad env value");
    ok(strstr(err.text, "CHATGW_LIMITS_MAX_FRAMES") != NULL, "names the variable: %s", err.text);

    char *cfg_env[2];
    char cfg_var[300];
    snprintf(cfg_var, sizeof cfg_var, "CHATGW_CONFIG=%s", path);
    cfg_env[0] = cfg_var;
    cfg_env[1] = NULL;
    is_int(config_load(&cfg, NULL, cfg_env, &err), CGW_OK, "CHATGW_CONFIG names the file");
    is_int(cfg.redis_db, 3, "read from it");
    config_free(&cfg);

    snprintf(path, sizeof path, "%s/missing.conf", dir);
    is_int(config_load(&cfg, path, NULL, &err), CGW_ERR_NOT_FOUND, "named missing file fails");
    char *none[] = {NULL};
    /* The default path may or may not exist on this machine; either way it must not fail
     * for being missing. */
    if (access(CGW_DEFAULT_CONFIG_PATH, F_OK) != 0) {
        is_int(config_load(&cfg, NULL, none, &err), CGW_OK, "missing default file is fine");
        config_free(&cfg);
    }

    char *inconsistent[] = {"CHATGW_LIMITS_WAIT_MS_DEFAULT=60000", NULL};
    is_int(config_load(&cfg, NULL, inconsistent, &err), CGW_ERR_INVALID,
           "default wait above max is rejected");
    ok(strstr(err.text, "limits.wait_ms_default") != NULL, "names the key");

    /* redis.sentinels: a list of host:port, checked when the configuration loads. */
    struct bus_sentinels sl;
    is_int(bus_sentinels_parse("", &sl), 0, "no sentinels");
    is_int((int)sl.n, 0, "n is 0");
    is_int(bus_sentinels_parse("  ", &sl), 0, "blank: no sentinels");
    is_int(bus_sentinels_parse("127.0.0.1:26379, s2:26380 ,[::1]:5", &sl), 0, "three sentinels");
    is_int((int)sl.n, 3, "n is 3");
    ok(strcmp(sl.at[0].host, "127.0.0.1") == 0 && sl.at[0].port == 26379, "first: %s:%d",
       sl.at[0].host, sl.at[0].port);
    ok(strcmp(sl.at[1].host, "s2") == 0 && sl.at[1].port == 26380, "blanks trimmed: %s:%d",
       sl.at[1].host, sl.at[1].port);
    ok(strcmp(sl.at[2].host, "::1") == 0 && sl.at[2].port == 5, "IPv6: %s:%d", sl.at[2].host,
       sl.at[2].port);
    is_int(bus_sentinels_parse("s1", &sl), 0, "host alone");
    is_int(sl.at[0].port, 26379, "... gets Sentinel's port 26379");
    is_int(bus_sentinels_parse("s1:26379,", &sl), -1, "trailing comma");
    is_int(bus_sentinels_parse("s1:26379,,s2:1", &sl), -1, "empty entry");
    is_int(bus_sentinels_parse("s1:0", &sl), -1, "port 0");
    is_int(bus_sentinels_parse("s1:70000", &sl), -1, "port above 65535");
    is_int(bus_sentinels_parse("unix:/tmp/s.sock", &sl), -1, "unix socket");
    is_int(bus_sentinels_parse("a:1,b:1,c:1,d:1,e:1,f:1,g:1,h:1,i:1,j:1,k:1,l:1,m:1,n:1,o:1,p:1,"
                               "q:1",
                               &sl),
           -1, "more than BUS_SENTINELS_MAX");

    char *sent_env[] = {"CHATGW_REDIS_SENTINELS=127.0.0.1:1,127.0.0.1:2", NULL};
    is_int(config_load(&cfg, NULL, sent_env, &err), CGW_OK, "redis.sentinels from the environment");
    is_str(cfg.redis_sentinels, "127.0.0.1:1,127.0.0.1:2", "kept as written");
    is_str(cfg.redis_master_name, "chatgw", "redis.master_name default");
    is_str(cfg.redis_sentinel_password, "", "no Sentinel password by default");
    struct bus_config bcs;
    bus_config_from(&cfg, &bcs);
    ok(bcs.sentinels == cfg.redis_sentinels && bcs.master_name == cfg.redis_master_name &&
           bcs.sentinel_password == cfg.redis_sentinel_password,
       "bus_config_from carries the Sentinel keys");
    config_free(&cfg);
    char *bad_sent[] = {"CHATGW_REDIS_SENTINELS=s1:1,,s2", NULL};
    is_int(config_load(&cfg, NULL, bad_sent, &err), CGW_ERR_INVALID, "bad redis.sentinels");
    ok(strstr(err.text, "redis.sentinels") != NULL, "names the key: %s", err.text);
    char *no_name[] = {"CHATGW_REDIS_SENTINELS=s1:1", "CHATGW_REDIS_MASTER_NAME=", NULL};
    is_int(config_load(&cfg, NULL, no_name, &err), CGW_ERR_INVALID, "empty redis.master_name");

    config_env_name("limits.max_body", buf, sizeof buf);
    is_str(buf, "CHATGW_LIMITS_MAX_BODY", "env name");

    enum provider_id p;
    ok(provider_from_name("gemini", &p) == 0 && p == PROVIDER_GEMINI, "provider by name");
    ok(provider_from_name("gpt", &p) < 0, "unknown provider");
    is_str(provider_name(PROVIDER_OPENCODE), "opencode", "provider name");

    unlink(path);
    snprintf(path, sizeof path, "%s/chatgw.conf", dir);
    unlink(path);
    rmdir(dir);
    return done_testing();
}
