/* config.c: the key table, the chatgw.conf parser and CHATGW_* overrides. */
#include "core/config.h"
#include <config.h> /* autoconf's (not core/config.h): HAVE_POSTGRES */

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/bus_sentinel.h"
#include "core/log.h"
#include "core/util.h"

#ifndef CGW_PKGLIBEXECDIR
#define CGW_PKGLIBEXECDIR "/usr/local/libexec/chatgw"
#endif

#define MAX_VALUE 4096
#define MAX_FILE (1024 * 1024)

#define PROVIDER_NAME(ID, name, ...) [PROVIDER_##ID] = #name,
static const char *const provider_names[PROVIDER__COUNT] = {CGW_PROVIDER_LIST(PROVIDER_NAME)};
#undef PROVIDER_NAME

const char *provider_name(enum provider_id p)
{
    if ((unsigned)p >= PROVIDER__COUNT)
        return "unknown";
    return provider_names[p];
}

int provider_from_name(const char *name, enum provider_id *out)
{
    for (int i = 0; name && i < PROVIDER__COUNT; i++) {
        if (strcmp(name, provider_names[i]) == 0) {
            *out = (enum provider_id)i;
            return 0;
        }
    }
    return -1;
}

#define OFF(field) offsetof(struct config, field)
#define PROVIDER_BIN_KEY(ID, name, bin, doc, ...)                                                  \
    {#name ".bin", CONFIG_STRING, OFF(provider_bin[PROVIDER_##ID]), bin, 0, 0, doc},
#define DAY_S (24 * 3600)

const struct config_key config_keys[] = {
    {"db.path", CONFIG_STRING, OFF(db_path), "/var/lib/chatgw/chatgw.db", 0, 0,
     "SQLite database file (users, tokens, sessions, history)"},
    {"db.url", CONFIG_STRING, OFF(db_url), "", 0, 0,
     "PostgreSQL connection URI (postgresql://...); when set it replaces db.path"},
    {"db.busy_timeout_ms", CONFIG_INT, OFF(db_busy_timeout_ms), "5000", 0, 600000,
     "how long a writer waits for a locked database before failing"},
    {"redis.address", CONFIG_STRING, OFF(redis_address), "127.0.0.1:6379", 0, 0,
     "Redis server: host:port, or unix:/path (or /path) for a unix socket"},
    {"redis.password", CONFIG_STRING, OFF(redis_password), "", 0, 0,
     "Redis AUTH password (empty: no AUTH)"},
    {"redis.db", CONFIG_INT, OFF(redis_db), "0", 0, 1000, "Redis database number (SELECT)"},
    {"redis.timeout_ms", CONFIG_INT, OFF(redis_timeout_ms), "2000", 10, 60000,
     "timeout for connecting to Redis and for every command"},
    {"redis.sentinels", CONFIG_STRING, OFF(redis_sentinels), "", 0, 0,
     "Redis Sentinels host:port,host:port,... that name the primary (empty: redis.address)"},
    {"redis.master_name", CONFIG_STRING, OFF(redis_master_name), "chatgw", 0, 0,
     "the name the Sentinels monitor the primary under"},
    {"redis.sentinel_password", CONFIG_STRING, OFF(redis_sentinel_password), "", 0, 0,
     "AUTH password of the Sentinels (empty: no AUTH)"},
    {"stream.maxlen", CONFIG_INT, OFF(stream_maxlen), "5000", 10, 10000000,
     "approximate number of events kept in each session's live stream"},
    {"stream.ttl_s", CONFIG_INT, OFF(stream_ttl_s), "600", 10, 30 * DAY_S,
     "seconds a session's live stream is kept after its run completes"},
    {"http.prefix", CONFIG_STRING, OFF(http_prefix), "/api", 0, 0,
     "URL path the API is mounted at"},
    {"cors.origins", CONFIG_STRING, OFF(cors_origins), "", 0, 0,
     "origins allowed by CORS, separated by spaces or commas (empty: CORS off)"},
    {"auth.trust_remote_user", CONFIG_BOOL, OFF(auth_trust_remote_user), "false", 0, 0,
     "accept REMOTE_USER set by the web server as the authenticated chatgw user"},
    {"auth.ticket_ttl_s", CONFIG_INT, OFF(auth_ticket_ttl_s), "300", 10, 3600,
     "seconds a subscribe ticket (POST /auth/ticket) stays valid"},
    {"metrics.allow", CONFIG_STRING, OFF(metrics_allow), "loopback", 0, 0,
     "who may read GET /metrics: loopback (clients at 127.0.0.0/8 or ::1, as the web server "
     "reports them in REMOTE_ADDR), any, or off (404)"},
    {"metrics.token", CONFIG_STRING, OFF(metrics_token), "", 0, 0,
     "when not empty, GET /metrics also wants \"Authorization: Bearer <this>\" (not a user "
     "token)"},
    {"projects.roots", CONFIG_LIST, OFF(project_roots), "", 0, 0,
     "absolute directories, separated by ':' or ',', that session project paths must lie in"},
    {"projects.shared", CONFIG_BOOL, OFF(projects_shared), "false", 0, 0,
     "the project roots and agent homes are the same on every host: any host runs any "
     "session (false: a session's runner starts on its home host)"},
    {"host.id", CONFIG_STRING, OFF(host_id), "", 0, 0,
     "this host's name in the deployment, recorded as the home host of the sessions made "
     "here (empty: the hostname); letters, digits and . _ : - only, at most 63"},
    /* <name>.bin of every provider, from its row in provider_list.h */
    /* clang-format off */
    CGW_PROVIDER_LIST(PROVIDER_BIN_KEY)
    /* clang-format on */
    {"fcgi.threads", CONFIG_INT, OFF(fcgi_threads), "8", 1, 256,
     "worker threads per chatgw.fcgi process"},
    {"fcgi.owner_cache_ms", CONFIG_INT, OFF(fcgi_owner_cache_ms), "2000", 0, 3600000,
     "how long a chatgw.fcgi process answers subscribes from its copy of a session's owner "
     "and stored high-water seq instead of reading the store; a delete here or a feed "
     "notification from any host forgets it sooner (0: read the store every time)"},
    {"fcgi.socket_mode", CONFIG_STRING, OFF(fcgi_socket_mode), "0660", 0, 0,
     "permissions (octal) of the unix socket chatgw.fcgi creates"},
    {"fcgi.socket", CONFIG_STRING, OFF(fcgi_socket), "", 0, 0,
     "unix socket path or host:port to listen on when no socket is handed over (systemd's "
     "LISTEN_FDS, or fd 0 from spawn-fcgi or mod_fcgid, which win over this key)"},
    {"runner.path", CONFIG_STRING, OFF(runner_path), CGW_PKGLIBEXECDIR "/chatgw-runner", 0, 0,
     "the chatgw-runner program started for each run"},
    {"runner.idle_timeout_s", CONFIG_INT, OFF(runner_idle_timeout_s), "600", 0, 7 * DAY_S,
     "end a run whose provider CLI printed nothing for this long (0: never)"},
    {"runner.lease_s", CONFIG_INT, OFF(runner_lease_s), "15", 2, 3600,
     "a run whose runner stopped refreshing its lease this long is completed as runner_lost"},
    {"runner.abort_wait_ms", CONFIG_INT, OFF(runner_abort_wait_ms), "3000", 0, 60000,
     "how long POST /chat/abort waits for the run's complete before answering 202"},
    {"runner.term_grace_ms", CONFIG_INT, OFF(runner_term_grace_ms), "2000", 0, 60000,
     "abort: time between the interrupt and SIGTERM to the CLI's process group"},
    {"runner.kill_grace_ms", CONFIG_INT, OFF(runner_kill_grace_ms), "5000", 0, 60000,
     "abort: time between SIGTERM and SIGKILL to the CLI's process group"},
    {"runner.sandbox", CONFIG_STRING, OFF(runner_sandbox), "auto", 0, 0,
     "sandbox of the provider CLIs: bwrap, none, or auto (bwrap when it is installed and works)"},
    {"runner.bwrap", CONFIG_STRING, OFF(runner_bwrap), "/usr/bin/bwrap", 0, 0,
     "the bubblewrap program (Debian package bubblewrap)"},
    {"runner.homes", CONFIG_STRING, OFF(runner_homes), "", 0, 0,
     "directory holding one agent home (HOME) per chatgw user, <dir>/<user id> (empty: the "
     "service's own HOME)"},
    {"runner.sandbox_hide", CONFIG_STRING, OFF(runner_sandbox_hide), "", 0, 0,
     "more absolute paths, separated by ':' or ',', that the sandbox hides from the CLIs"},
    {"runner.sandbox_bind", CONFIG_STRING, OFF(runner_sandbox_bind), "", 0, 0,
     "absolute paths, separated by ':' or ',', kept readable in the sandbox even inside a "
     "hidden directory"},
    {"permissions.timeout_s", CONFIG_INT, OFF(permissions_timeout_s), "600", 0, 7 * DAY_S,
     "how long a permission request waits for an answer (0: forever)"},
    {"limits.max_body", CONFIG_SIZE, OFF(max_body), "1M", 1024, 64 * 1024 * 1024,
     "largest request body accepted"},
    {"limits.max_json_depth", CONFIG_INT, OFF(max_json_depth), "32", 2, 1024,
     "deepest nesting accepted in a request's JSON"},
    {"limits.max_frames", CONFIG_INT, OFF(max_frames), "1000", 1, 1000000,
     "most frames in one subscribe answer"},
    {"limits.max_answer_bytes", CONFIG_SIZE, OFF(max_answer_bytes), "1M", 4096, 256 * 1024 * 1024,
     "approximate largest subscribe answer"},
    {"limits.max_subscribe_sessions", CONFIG_INT, OFF(max_subscribe_sessions), "32", 1, 10000,
     "most sessions followed by one subscribe request"},
    {"limits.max_prompt", CONFIG_SIZE, OFF(max_prompt), "256K", 1, 64 * 1024 * 1024,
     "largest prompt (content of chat/send)"},
    {"limits.max_line", CONFIG_SIZE, OFF(max_line), "8M", 4096, 1024 * 1024 * 1024,
     "longest line read from a provider CLI's stdout"},
    {"limits.max_runs_per_user", CONFIG_INT, OFF(max_runs_per_user), "8", 1, 100000,
     "most runs one user may have running at once"},
    {"limits.max_polls_per_user", CONFIG_INT, OFF(max_polls_per_user), "64", 1, 1000000,
     "most requests (subscribes, waiting aborts) one user may have held at once per process"},
    {"limits.max_polls", CONFIG_INT, OFF(max_polls), "3000", 1, 10000000,
     "most requests held at once by one process, all users together (keep it under the web "
     "server's connection limit)"},
    {"limits.wait_ms_default", CONFIG_INT, OFF(wait_ms_default), "25000", 0, 300000,
     "waitMs of a subscribe that does not give one"},
    {"limits.wait_ms_max", CONFIG_INT, OFF(wait_ms_max), "55000", 0, 300000,
     "largest waitMs honoured (keep it under the proxies' idle timeouts)"},
    {"limits.stream_heartbeat_s", CONFIG_INT, OFF(stream_heartbeat_s), "15", 1, 3600,
     "seconds between the comment heartbeats of an idle GET /chat/stream (keep it under the "
     "proxies' idle timeouts)"},
    {"limits.stream_max_s", CONFIG_INT, OFF(stream_max_s), "300", 1, 86400,
     "seconds after which GET /chat/stream ends (the client reconnects with Last-Event-ID)"},
    {"limits.max_attachment_bytes", CONFIG_SIZE, OFF(max_attachment_bytes), "10M", 1,
     256 * 1024 * 1024,
     "largest attachment (POST /sessions/{id}/attachments, an image of chat/send); the upload "
     "route accepts a body this large (plus room for multipart) whatever limits.max_body says"},
    {"limits.max_attachments_per_session", CONFIG_INT, OFF(max_attachments), "20", 1, 10000,
     "most attachments one session holds (also the most one send may name)"},
    {"limits.max_attachment_total_bytes", CONFIG_SIZE, OFF(max_attachment_total), "50M", 1,
     INT64_C(16) * 1024 * 1024 * 1024, "most bytes of attachments one session holds"},
    {"log.level", CONFIG_STRING, OFF(log_level), "info", 0, 0,
     "least severe level logged: debug, info, warn or error"},
    {NULL, 0, 0, NULL, 0, 0, NULL},
};

static const struct config_key *key_find(const char *name)
{
    for (const struct config_key *k = config_keys; k->name; k++) {
        if (strcmp(k->name, name) == 0)
            return k;
    }
    return NULL;
}

static void list_free(struct config *cfg)
{
    for (size_t i = 0; i < cfg->n_project_roots; i++) {
        free(cfg->project_roots[i]);
        cfg->project_roots[i] = NULL;
    }
    cfg->n_project_roots = 0;
}

/* Splits value at ':' and ',' into the project roots; each must be absolute. */
static enum cgw_err list_set(struct config *cfg, const struct config_key *k, const char *value,
                             struct cgw_error *err)
{
    char *roots[CGW_MAX_PROJECT_ROOTS];
    size_t n = 0;
    const char *p = value;

    while (*p) {
        size_t len = strcspn(p, ":,");
        const char *start = p;
        p += len;
        if (*p)
            p++;
        while (len > 0 && isspace((unsigned char)*start)) {
            start++;
            len--;
        }
        while (len > 0 && isspace((unsigned char)start[len - 1]))
            len--;
        if (len == 0)
            continue;
        if (start[0] != '/' || n == CGW_MAX_PROJECT_ROOTS) {
            for (size_t i = 0; i < n; i++)
                free(roots[i]);
            if (n == CGW_MAX_PROJECT_ROOTS)
                return cgw_error_set(err, CGW_ERR_INVALID, "%s: more than %d directories", k->name,
                                     CGW_MAX_PROJECT_ROOTS);
            return cgw_error_set(err, CGW_ERR_INVALID, "%s: \"%.*s\" is not an absolute path",
                                 k->name, (int)len, start);
        }
        /* A trailing slash would make the prefix test in the handlers miss; blanks
         * before it go too, so a value reads back the same after formatting. */
        while (len > 1 && (start[len - 1] == '/' || isspace((unsigned char)start[len - 1])))
            len--;
        roots[n] = strndup(start, len);
        if (!roots[n]) {
            for (size_t i = 0; i < n; i++)
                free(roots[i]);
            return cgw_error_set(err, CGW_ERR_NOMEM, "out of memory");
        }
        n++;
    }
    list_free(cfg);
    memcpy(cfg->project_roots, roots, n * sizeof roots[0]);
    cfg->n_project_roots = n;
    return CGW_OK;
}

/* Checks a value against its key and stores it; nothing changes on error. */
static enum cgw_err key_set(struct config *cfg, const struct config_key *k, const char *value,
                            struct cgw_error *err)
{
    char *base = (char *)cfg;
    int64_t num;
    bool flag;

    switch (k->type) {
    case CONFIG_STRING: {
        if (strcmp(k->name, "log.level") == 0) {
            enum log_level level;
            if (log_level_parse(value, &level) < 0)
                return cgw_error_set(err, CGW_ERR_INVALID,
                                     "%s: \"%s\" is not one of debug, info, warn, error", k->name,
                                     value);
        }
        if (strcmp(k->name, "runner.sandbox") == 0 && strcmp(value, "auto") != 0 &&
            strcmp(value, "bwrap") != 0 && strcmp(value, "none") != 0)
            return cgw_error_set(err, CGW_ERR_INVALID, "%s: \"%s\" is not one of auto, bwrap, none",
                                 k->name, value);
        char *copy = strdup(value);
        if (!copy)
            return cgw_error_set(err, CGW_ERR_NOMEM, "out of memory");
        char **slot = (char **)(base + k->offset);
        free(*slot);
        *slot = copy;
        return CGW_OK;
    }
    case CONFIG_INT:
        if (cgw_parse_int64(value, k->min, k->max, &num) < 0)
            return cgw_error_set(err, CGW_ERR_INVALID,
                                 "%s: \"%s\" is not an integer from %lld to %lld", k->name, value,
                                 (long long)k->min, (long long)k->max);
        *(int64_t *)(base + k->offset) = num;
        return CGW_OK;
    case CONFIG_SIZE:
        if (cgw_parse_size(value, k->min, k->max, &num) < 0)
            return cgw_error_set(err, CGW_ERR_INVALID,
                                 "%s: \"%s\" is not a size from %lld to %lld bytes (suffix K, M "
                                 "or G allowed)",
                                 k->name, value, (long long)k->min, (long long)k->max);
        *(int64_t *)(base + k->offset) = num;
        return CGW_OK;
    case CONFIG_BOOL:
        if (cgw_parse_bool(value, &flag) < 0)
            return cgw_error_set(err, CGW_ERR_INVALID, "%s: \"%s\" is not true or false", k->name,
                                 value);
        *(bool *)(base + k->offset) = flag;
        return CGW_OK;
    case CONFIG_LIST:
        return list_set(cfg, k, value, err);
    }
    return cgw_error_set(err, CGW_ERR_INTERNAL, "%s: bad key type", k->name);
}

enum cgw_err config_set(struct config *cfg, const char *key, const char *value,
                        struct cgw_error *err)
{
    const struct config_key *k = key_find(key);
    if (!k)
        return cgw_error_set(err, CGW_ERR_NOT_FOUND, "unknown key \"%s\"", key);
    return key_set(cfg, k, value, err);
}

enum cgw_err config_defaults(struct config *cfg, struct cgw_error *err)
{
    memset(cfg, 0, sizeof *cfg);
    for (const struct config_key *k = config_keys; k->name; k++) {
        enum cgw_err rc = key_set(cfg, k, k->def, err);
        if (rc != CGW_OK) {
            config_free(cfg);
            return rc;
        }
    }
    return CGW_OK;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *end = s + strlen(s);
    while (end > s && isspace((unsigned char)end[-1]))
        *--end = '\0';
    return s;
}

/* Handles one line of the file; line is modified. */
static enum cgw_err parse_line(struct config *cfg, char *line, const char *path, int lineno,
                               struct cgw_error *err)
{
    char *s = trim(line);
    if (*s == '\0' || *s == '#' || *s == ';')
        return CGW_OK;
    char *eq = strchr(s, '=');
    if (!eq)
        return cgw_error_set(err, CGW_ERR_INVALID, "%s:%d: expected \"key = value\"", path, lineno);
    *eq = '\0';
    char *key = trim(s);
    char *value = trim(eq + 1);
    size_t vlen = strlen(value);
    if (vlen >= 2 && value[0] == '"' && value[vlen - 1] == '"') {
        value[vlen - 1] = '\0';
        value++;
    } else if (vlen >= 1 && value[0] == '"') {
        return cgw_error_set(err, CGW_ERR_INVALID, "%s:%d: %s: unterminated quote", path, lineno,
                             key);
    }
    const struct config_key *k = key_find(key);
    if (!k)
        return cgw_error_set(err, CGW_ERR_INVALID, "%s:%d: unknown key \"%s\"", path, lineno, key);
    struct cgw_error e;
    enum cgw_err rc = key_set(cfg, k, value, &e);
    if (rc != CGW_OK)
        return cgw_error_set(err, rc, "%s:%d: %s", path, lineno, e.text);
    return CGW_OK;
}

enum cgw_err config_parse_text(struct config *cfg, const char *text, size_t len, const char *path,
                               struct cgw_error *err)
{
    size_t at = 0;
    int lineno = 0;

    while (at < len) {
        const char *nl = memchr(text + at, '\n', len - at);
        size_t n = nl ? (size_t)(nl - (text + at)) : len - at;
        char line[MAX_VALUE + 256];

        lineno++;
        if (n >= sizeof line)
            return cgw_error_set(err, CGW_ERR_INVALID, "%s:%d: line too long", path, lineno);
        if (memchr(text + at, '\0', n))
            return cgw_error_set(err, CGW_ERR_INVALID, "%s:%d: NUL byte in line", path, lineno);
        memcpy(line, text + at, n);
        line[n] = '\0';
        enum cgw_err rc = parse_line(cfg, line, path, lineno, err);
        if (rc != CGW_OK)
            return rc;
        at += n + 1;
    }
    return CGW_OK;
}

enum cgw_err config_parse_file(struct config *cfg, const char *path, struct cgw_error *err)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        return cgw_error_set(err, errno == ENOENT ? CGW_ERR_NOT_FOUND : CGW_ERR_IO, "%s: %s", path,
                             strerror(errno));
    }
    char *buf = malloc(MAX_FILE + 1);
    if (!buf) {
        fclose(f);
        return cgw_error_set(err, CGW_ERR_NOMEM, "out of memory");
    }
    size_t n = fread(buf, 1, MAX_FILE + 1, f);
    int bad = ferror(f);
    fclose(f);
    enum cgw_err rc;
    if (bad)
        rc = cgw_error_set(err, CGW_ERR_IO, "%s: read error", path);
    else if (n > MAX_FILE)
        rc = cgw_error_set(err, CGW_ERR_INVALID, "%s: larger than %d bytes", path, MAX_FILE);
    else
        rc = config_parse_text(cfg, buf, n, path, err);
    free(buf);
    return rc;
}

void config_env_name(const char *key, char *buf, size_t size)
{
    size_t o = 0;
    const char prefix[] = "CHATGW_";
    for (size_t i = 0; prefix[i] && o + 1 < size; i++)
        buf[o++] = prefix[i];
    for (size_t i = 0; key[i] && o + 1 < size; i++) {
        char c = key[i];
        buf[o++] = c == '.' ? '_' : (char)toupper((unsigned char)c);
    }
    if (size)
        buf[o] = '\0';
}

enum cgw_err config_apply_env(struct config *cfg, char *const *envp, struct cgw_error *err)
{
    if (!envp)
        return CGW_OK;
    for (const struct config_key *k = config_keys; k->name; k++) {
        char name[128];
        config_env_name(k->name, name, sizeof name);
        size_t nlen = strlen(name);
        for (char *const *e = envp; *e; e++) {
            if (strncmp(*e, name, nlen) != 0 || (*e)[nlen] != '=')
                continue;
            struct cgw_error inner;
            enum cgw_err rc = key_set(cfg, k, *e + nlen + 1, &inner);
            if (rc != CGW_OK)
                return cgw_error_set(err, rc, "environment %s: %s", name, inner.text);
        }
    }
    return CGW_OK;
}

bool config_host_id_valid(const char *id)
{
    size_t n = id ? strlen(id) : 0;
    if (n == 0 || n > CGW_HOST_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)id[i];
        if (!isalnum(c) && c != '.' && c != '_' && c != ':' && c != '-')
            return false;
    }
    return true;
}

/* An empty host.id becomes the hostname (DESIGN 12: the default home host). */
static enum cgw_err host_id_default(struct config *cfg, struct cgw_error *err)
{
    char name[256];
    if (cfg->host_id[0] != '\0')
        return CGW_OK;
    if (gethostname(name, sizeof name) < 0)
        return cgw_error_set(err, CGW_ERR_INVALID, "host.id is empty and gethostname failed: %s",
                             strerror(errno));
    name[sizeof name - 1] = '\0';
    return key_set(cfg, key_find("host.id"), name, err);
}

/* Checks that keys agree with each other once everything is applied. */
static enum cgw_err config_check(const struct config *cfg, struct cgw_error *err)
{
    if (cfg->wait_ms_default > cfg->wait_ms_max)
        return cgw_error_set(err, CGW_ERR_INVALID,
                             "limits.wait_ms_default (%lld) is larger than limits.wait_ms_max "
                             "(%lld)",
                             (long long)cfg->wait_ms_default, (long long)cfg->wait_ms_max);
    if (cfg->max_prompt > cfg->max_body)
        return cgw_error_set(err, CGW_ERR_INVALID,
                             "limits.max_prompt (%lld) is larger than limits.max_body (%lld)",
                             (long long)cfg->max_prompt, (long long)cfg->max_body);
    if (cfg->db_path[0] == '\0')
        return cgw_error_set(err, CGW_ERR_INVALID, "db.path is empty");
    if (cfg->db_url[0] != '\0' && strncmp(cfg->db_url, "postgresql://", 13) != 0 &&
        strncmp(cfg->db_url, "postgres://", 11) != 0)
        return cgw_error_set(err, CGW_ERR_INVALID,
                             "db.url must be a PostgreSQL URI (postgresql://...)");
#ifndef HAVE_POSTGRES
    if (cfg->db_url[0] != '\0')
        return cgw_error_set(err, CGW_ERR_INVALID,
                             "db.url is set, but this chatgw was built without PostgreSQL "
                             "support (apt-get install libpq-dev, then configure --with-postgres)");
#endif
    if (strcmp(cfg->metrics_allow, "loopback") != 0 && strcmp(cfg->metrics_allow, "any") != 0 &&
        strcmp(cfg->metrics_allow, "off") != 0)
        return cgw_error_set(err, CGW_ERR_INVALID,
                             "metrics.allow: \"%s\" is not loopback, any or off",
                             cfg->metrics_allow);
    if (!config_host_id_valid(cfg->host_id))
        return cgw_error_set(err, CGW_ERR_INVALID,
                             "host.id: \"%s\" is not 1 to %d letters, digits, '.', '_', ':' "
                             "or '-' (set host.id when the hostname is not)",
                             cfg->host_id, CGW_HOST_ID_MAX);
    if (cfg->redis_address[0] == '\0' && cfg->redis_sentinels[0] == '\0')
        return cgw_error_set(err, CGW_ERR_INVALID, "redis.address is empty");
    struct bus_sentinels sentinels;
    if (bus_sentinels_parse(cfg->redis_sentinels, &sentinels) != 0)
        return cgw_error_set(err, CGW_ERR_INVALID,
                             "redis.sentinels: \"%s\" is not a list of host:port (at most %d)",
                             cfg->redis_sentinels, BUS_SENTINELS_MAX);
    if (sentinels.n > 0 && cfg->redis_master_name[0] == '\0')
        return cgw_error_set(err, CGW_ERR_INVALID, "redis.master_name is empty");
    if (cfg->runner_homes[0] != '\0' && cfg->runner_homes[0] != '/')
        return cgw_error_set(err, CGW_ERR_INVALID, "runner.homes: \"%s\" is not an absolute path",
                             cfg->runner_homes);
    for (int p = 0; p < PROVIDER__COUNT; p++) {
        if (cfg->provider_bin[p][0] == '\0')
            return cgw_error_set(err, CGW_ERR_INVALID, "%s.bin is empty", provider_name(p));
    }
    return CGW_OK;
}

enum cgw_err config_load(struct config *cfg, const char *path, char *const *envp,
                         struct cgw_error *err)
{
    const char *file = path;
    bool named = path != NULL;
    enum cgw_err rc = config_defaults(cfg, err);
    if (rc != CGW_OK)
        return rc;

    if (!file && envp) {
        for (char *const *e = envp; *e; e++) {
            if (strncmp(*e, "CHATGW_CONFIG=", 14) == 0 && (*e)[14]) {
                file = *e + 14;
                named = true;
            }
        }
    }
    if (!file)
        file = CGW_DEFAULT_CONFIG_PATH;
    rc = config_parse_file(cfg, file, err);
    if (rc == CGW_ERR_NOT_FOUND && !named)
        rc = CGW_OK;
    if (rc == CGW_OK)
        rc = config_apply_env(cfg, envp, err);
    if (rc == CGW_OK)
        rc = host_id_default(cfg, err);
    if (rc == CGW_OK)
        rc = config_check(cfg, err);
    if (rc != CGW_OK)
        config_free(cfg);
    return rc;
}

int config_format(const struct config *cfg, const struct config_key *key, char *buf, size_t size)
{
    const char *base = (const char *)cfg;
    int n = -1;

    switch (key->type) {
    case CONFIG_STRING:
        n = snprintf(buf, size, "%s", *(char *const *)(base + key->offset));
        break;
    case CONFIG_INT:
    case CONFIG_SIZE:
        n = snprintf(buf, size, "%lld", (long long)*(const int64_t *)(base + key->offset));
        break;
    case CONFIG_BOOL:
        n = snprintf(buf, size, "%s", *(const bool *)(base + key->offset) ? "true" : "false");
        break;
    case CONFIG_LIST: {
        size_t at = 0;
        if (size)
            buf[0] = '\0';
        for (size_t i = 0; i < cfg->n_project_roots; i++) {
            int m = snprintf(buf + at, size > at ? size - at : 0, "%s%s", i ? ":" : "",
                             cfg->project_roots[i]);
            if (m < 0 || at + (size_t)m >= size)
                return -1;
            at += (size_t)m;
        }
        return 0;
    }
    }
    return n < 0 || (size_t)n >= size ? -1 : 0;
}

void config_free(struct config *cfg)
{
    for (const struct config_key *k = config_keys; k->name; k++) {
        if (k->type == CONFIG_STRING) {
            char **slot = (char **)((char *)cfg + k->offset);
            free(*slot);
        }
    }
    list_free(cfg);
    memset(cfg, 0, sizeof *cfg);
}

const char *config_db_target(const struct config *cfg)
{
    return cfg->db_url && cfg->db_url[0] ? cfg->db_url : cfg->db_path;
}
