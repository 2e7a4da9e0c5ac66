/* config.h: chatgw.conf ("key = value" lines) with CHATGW_* environment overrides.
 *
 * Every key has a default (config_defaults), may be set in the file, and may be
 * overridden by the environment variable CHATGW_<KEY> with '.' turned into '_'
 * and upper-cased (db.path -> CHATGW_DB_PATH, claude.bin -> CHATGW_CLAUDE_BIN).
 * Unknown keys and bad values in the file are errors naming the key and line;
 * bad values in the environment are errors naming the variable. The whole table,
 * with defaults and documentation, is config_keys[] (printed by `chatgwctl doctor`
 * and documented in chatgw.conf(5)). A loaded config is read-only and may be shared
 * by all threads.
 */
#ifndef CGW_CONFIG_H
#define CGW_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/provider_list.h"

/* $(sysconfdir)/chatgw/chatgw.conf, where make install puts it: /etc/chatgw/chatgw.conf
 * for --sysconfdir=/etc (doc/hosting.md), /usr/local/etc/chatgw/chatgw.conf by default. */
#ifdef CGW_SYSCONFDIR
#define CGW_DEFAULT_CONFIG_PATH CGW_SYSCONFDIR "/chatgw/chatgw.conf"
#else
#define CGW_DEFAULT_CONFIG_PATH "/etc/chatgw/chatgw.conf"
#endif
#define CGW_MAX_PROJECT_ROOTS 16
#define CGW_HOST_ID_MAX 63 /* host.id: fits bus_run.runner_host and a Redis key */

/* One constant per row of CGW_PROVIDER_LIST (provider_list.h), in its order. */
#define CGW_PROVIDER_ENUM(ID, ...) PROVIDER_##ID,
enum provider_id { CGW_PROVIDER_LIST(CGW_PROVIDER_ENUM) PROVIDER__COUNT };
#undef CGW_PROVIDER_ENUM

/* The provider's name ("claude", ...; the row's name); "unknown" out of range. */
const char *provider_name(enum provider_id p);
/* Returns 0 and sets *out, or -1 when name is not a provider. */
int provider_from_name(const char *name, enum provider_id *out);

struct config;
/* What store_open takes: db.url when set (PostgreSQL), else db.path (SQLite). */
const char *config_db_target(const struct config *cfg);

struct config {
    /* database */
    char *db_path;              /* db.path */
    char *db_url;               /* db.url: "postgresql://..." selects PostgreSQL ("" = db.path) */
    int64_t db_busy_timeout_ms; /* db.busy_timeout_ms */

    /* redis */
    char *redis_address;           /* redis.address: "unix:/path", "/path" or "host:port" */
    char *redis_password;          /* redis.password ("" = none) */
    int64_t redis_db;              /* redis.db */
    int64_t redis_timeout_ms;      /* redis.timeout_ms: connect and per-command timeout */
    char *redis_sentinels;         /* redis.sentinels: "host:port,..." ("" = use redis.address) */
    char *redis_master_name;       /* redis.master_name: the Sentinels' name of the primary */
    char *redis_sentinel_password; /* redis.sentinel_password ("" = none) */
    int64_t stream_maxlen;         /* stream.maxlen: approximate live-buffer length per session */
    int64_t stream_ttl_s;          /* stream.ttl_s: keep a session's stream this long after a run */

    /* http */
    char *http_prefix;           /* http.prefix */
    char *cors_origins;          /* cors.origins: space/comma separated, "" = no CORS */
    bool auth_trust_remote_user; /* auth.trust_remote_user */
    int64_t auth_ticket_ttl_s;   /* auth.ticket_ttl_s: lifetime of a subscribe ticket */
    char *metrics_allow;         /* metrics.allow: "loopback", "any" or "off" */
    char *metrics_token;         /* metrics.token: "" = none */

    /* projects */
    char *project_roots[CGW_MAX_PROJECT_ROOTS]; /* projects.roots: ':' or ',' separated */
    size_t n_project_roots;
    bool projects_shared; /* projects.shared: every host sees every project and agent home */

    /* host */
    char *host_id; /* host.id: this host's name in the deployment ("" in the file: the
                      hostname, filled in by config_load) */

    /* providers */
    char *provider_bin[PROVIDER__COUNT]; /* <name>.bin, indexed by enum provider_id */

    /* fcgi */
    int64_t fcgi_threads;        /* fcgi.threads */
    int64_t fcgi_owner_cache_ms; /* fcgi.owner_cache_ms: 0 = off */
    char *fcgi_socket;           /* fcgi.socket: "" = inherit fd 0 (spawn-fcgi/systemd) */
    char *fcgi_socket_mode;      /* fcgi.socket_mode: octal, "0660" */

    /* runner */
    char *runner_path;             /* runner.path */
    int64_t runner_idle_timeout_s; /* runner.idle_timeout_s */
    int64_t runner_lease_s;        /* runner.lease_s */
    int64_t runner_abort_wait_ms;  /* runner.abort_wait_ms */
    int64_t runner_term_grace_ms;  /* runner.term_grace_ms: interrupt -> SIGTERM */
    int64_t runner_kill_grace_ms;  /* runner.kill_grace_ms: SIGTERM -> SIGKILL */
    int64_t permissions_timeout_s; /* permissions.timeout_s (0 = wait forever) */

    /* runner: the sandbox of the provider CLI (src/runner/sandbox.h, doc/security.md) */
    char *runner_sandbox;      /* runner.sandbox: "auto", "bwrap" or "none" */
    char *runner_bwrap;        /* runner.bwrap: the bubblewrap program */
    char *runner_homes;        /* runner.homes: per-user agent homes ("" = the service's HOME) */
    char *runner_sandbox_hide; /* runner.sandbox_hide: more paths to hide (':' or ',') */
    char *runner_sandbox_bind; /* runner.sandbox_bind: more paths to keep readable */

    /* limits */
    int64_t max_body;               /* limits.max_body (bytes) */
    int64_t max_json_depth;         /* limits.max_json_depth */
    int64_t max_frames;             /* limits.max_frames */
    int64_t max_answer_bytes;       /* limits.max_answer_bytes */
    int64_t max_subscribe_sessions; /* limits.max_subscribe_sessions */
    int64_t max_prompt;             /* limits.max_prompt (bytes) */
    int64_t max_line;               /* limits.max_line: longest provider stdout line */
    int64_t max_runs_per_user;      /* limits.max_runs_per_user */
    int64_t max_polls_per_user;     /* limits.max_polls_per_user */
    int64_t max_polls;              /* limits.max_polls: held requests per process */
    int64_t wait_ms_default;        /* limits.wait_ms_default */
    int64_t wait_ms_max;            /* limits.wait_ms_max */
    int64_t stream_heartbeat_s;     /* limits.stream_heartbeat_s: GET /chat/stream pings */
    int64_t stream_max_s;           /* limits.stream_max_s: GET /chat/stream's longest life */
    int64_t max_attachment_bytes;   /* limits.max_attachment_bytes: one attachment */
    int64_t max_attachments;        /* limits.max_attachments_per_session */
    int64_t max_attachment_total;   /* limits.max_attachment_total_bytes: per session */

    /* log */
    char *log_level; /* log.level */
};

enum config_type { CONFIG_STRING, CONFIG_INT, CONFIG_SIZE, CONFIG_BOOL, CONFIG_LIST };

/* One row of the key table. */
struct config_key {
    const char *name; /* "db.path" */
    enum config_type type;
    size_t offset;    /* offset of the field in struct config */
    const char *def;  /* default, in file syntax */
    int64_t min, max; /* range for INT and SIZE */
    const char *doc;  /* one-line description */
};

/* The key table, ending with a row whose name is NULL. Read-only. */
extern const struct config_key config_keys[];

/* Fills *cfg with every default. Returns CGW_OK or CGW_ERR_NOMEM.
 * The caller frees with config_free. */
enum cgw_err config_defaults(struct config *cfg, struct cgw_error *err);

/* Applies "key = value" lines from text (path is used in messages only).
 * Blank lines and lines starting with '#' or ';' are ignored; a value may be
 * quoted with double quotes. Returns CGW_ERR_INVALID with "path:line: ..." text
 * on the first unknown key or bad value. */
enum cgw_err config_parse_text(struct config *cfg, const char *text, size_t len, const char *path,
                               struct cgw_error *err);

/* Reads and applies the file at path. Missing file: CGW_ERR_NOT_FOUND. */
enum cgw_err config_parse_file(struct config *cfg, const char *path, struct cgw_error *err);

/* Applies CHATGW_<KEY> variables from envp (NULL-terminated "NAME=value" array,
 * normally `environ`). Variables that name no key are ignored (CHATGW_URL and the
 * like belong to scripts). */
enum cgw_err config_apply_env(struct config *cfg, char *const *envp, struct cgw_error *err);

/* Sets one key from its string form (file syntax). CGW_ERR_NOT_FOUND for an
 * unknown key, CGW_ERR_INVALID for a bad value. */
enum cgw_err config_set(struct config *cfg, const char *key, const char *value,
                        struct cgw_error *err);

/* Whether id is a usable host.id: 1..CGW_HOST_ID_MAX of [A-Za-z0-9._:-] (it becomes part
 * of Redis keys). */
bool config_host_id_valid(const char *id);

/* The usual start-up sequence: defaults, then the file (path, or $CHATGW_CONFIG,
 * or CGW_DEFAULT_CONFIG_PATH; a missing file is an error only when path or
 * $CHATGW_CONFIG named it), then the environment; an empty host.id becomes the
 * hostname (gethostname). */
enum cgw_err config_load(struct config *cfg, const char *path, char *const *envp,
                         struct cgw_error *err);

/* Writes the current value of key in file syntax into buf. Returns 0 or -1. */
int config_format(const struct config *cfg, const struct config_key *key, char *buf, size_t size);

/* Environment variable name of a key ("CHATGW_DB_PATH") into buf. */
void config_env_name(const char *key, char *buf, size_t size);

/* Frees everything config_defaults/config_parse_* allocated; *cfg is zeroed. */
void config_free(struct config *cfg);

#endif
