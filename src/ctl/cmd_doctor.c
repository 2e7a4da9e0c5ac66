/* cmd_doctor.c: `chatgwctl doctor`: one line per check of what a chatgw host needs.
 *
 * Required checks (a FAIL makes the exit status 1): the configuration loads, the
 * database opens, is migrated to this binary's schema and is writable, Redis
 * answers PING, every projects.roots directory exists, runner.path is executable, and
 * bubblewrap works when runner.sandbox = bwrap (with auto, a bwrap that does not work
 * is a warning: the CLIs would run unconfined; with none, a warning says so).
 * Provider CLIs that cannot be found are warnings: a host may serve only some. Each
 * provider's line also says what chatgw can do with it (core/providers.h, the table
 * GET /providers reads); --json adds a "providers" array shaped like /providers plus
 * the configured "bin" and the "path" found.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/providers.h"
#include "ctl/ctl.h"
#include "runner/sandbox.h"

enum check_status { CHECK_OK = 0, CHECK_WARN, CHECK_FAIL, CHECK_SKIP, CHECK__COUNT };

static const char *const status_text[CHECK__COUNT] = {"ok", "warn", "FAIL", "skip"};
static const char *const status_json[CHECK__COUNT] = {"ok", "warn", "fail", "skip"};

#define MAX_RESULTS 64

struct result {
    char name[32];
    enum check_status status;
    char detail[512];
};

/* What check_providers found for one provider. */
struct provider_check {
    bool found;
    char path[4096];
};

struct doctor {
    struct ctl *ctl;
    struct store *st; /* the open database, or NULL */
    struct result results[MAX_RESULTS];
    size_t n;
    struct provider_check providers[PROVIDER__COUNT];
    bool providers_checked;
};

static void report(struct doctor *d, enum check_status status, const char *name, const char *fmt,
                   ...) __attribute__((format(printf, 4, 5)));

static void report(struct doctor *d, enum check_status status, const char *name, const char *fmt,
                   ...)
{
    if (d->n == MAX_RESULTS)
        return;
    struct result *r = &d->results[d->n++];
    va_list ap;
    snprintf(r->name, sizeof r->name, "%s", name);
    r->status = status;
    va_start(ap, fmt);
    vsnprintf(r->detail, sizeof r->detail, fmt, ap);
    va_end(ap);
}

/* ---- the checks ----------------------------------------------------------- */

static void check_database(struct doctor *d)
{
    const struct config *cfg = &d->ctl->cfg;
    struct cgw_error err;
    struct stat sb;
    /* db.url: PostgreSQL; named "PostgreSQL (db.url)", never by its URI (a password). */
    bool pg = cfg->db_url[0] != '\0';
    const char *name = pg ? "PostgreSQL (db.url)" : cfg->db_path;

    if (!pg && stat(cfg->db_path, &sb) < 0 && errno == ENOENT) {
        report(d, CHECK_FAIL, "database", "%s does not exist (run 'chatgwctl init')", cfg->db_path);
        return;
    }
    if (store_open(config_db_target(cfg), false, cfg->db_busy_timeout_ms, &d->st, &err) != CGW_OK) {
        report(d, CHECK_FAIL, "database", "%s: %s", name, err.text);
        d->st = NULL;
        return;
    }
    report(d, CHECK_OK, "database", pg ? "%s connects" : "%s opens", name);
}

static void check_schema(struct doctor *d)
{
    struct cgw_error err;
    int version = 0, latest = store_schema_latest();

    if (!d->st) {
        report(d, CHECK_SKIP, "schema", "the database did not open");
    } else if (store_schema_version(d->st, &version, &err) != CGW_OK) {
        report(d, CHECK_FAIL, "schema", "%s", err.text);
    } else if (version < latest) {
        report(d, CHECK_FAIL, "schema", "version %d, this chatgw needs %d (run 'chatgwctl init')",
               version, latest);
    } else if (version > latest) {
        report(d, CHECK_FAIL, "schema", "version %d is newer than this chatgw knows (%d)", version,
               latest);
    } else {
        report(d, CHECK_OK, "schema", "version %d (latest)", version);
    }
}

static void check_writable(struct doctor *d)
{
    const char *path = d->ctl->cfg.db_path;
    struct cgw_error err;

    if (!d->st) {
        report(d, CHECK_SKIP, "writable", "the database did not open");
        return;
    }
    if (d->ctl->cfg.db_url[0]) {
        /* A write that changes no row: fails on a read-only server (a standby). */
        enum cgw_err e = store_begin(d->st, &err);
        if (e == CGW_OK)
            e = store_token_touch(d->st, 0, &err);
        store_rollback(d->st);
        if (e != CGW_OK)
            report(d, CHECK_FAIL, "writable", "PostgreSQL (db.url): %s", err.text);
        else
            report(d, CHECK_OK, "writable", "PostgreSQL (db.url) takes a write");
        return;
    }
    /* BEGIN IMMEDIATE takes the write lock: it fails on a read-only file and
     * waits up to db.busy_timeout_ms for a busy one, like a real writer. */
    if (store_begin(d->st, &err) != CGW_OK) {
        report(d, CHECK_FAIL, "writable", "%s: %s", path, err.text);
        return;
    }
    store_rollback(d->st);
    if (access(path, W_OK) < 0) {
        report(d, CHECK_FAIL, "writable", "%s: %s", path, strerror(errno));
        return;
    }
    report(d, CHECK_OK, "writable", "%s takes a write lock", path);
}

static void check_redis(struct doctor *d)
{
    struct bus_config bc;
    struct cgw_error err;
    struct bus *b = NULL;

    ctl_bus_config(d->ctl, &bc);
    /* The bus's error texts name the address already. */
    if (bus_open(&bc, true, &b, &err) != CGW_OK) {
        report(d, CHECK_FAIL, "redis", "%s", err.text);
        return;
    }
    if (bus_ping(b, &err) != CGW_OK)
        report(d, CHECK_FAIL, "redis", "%s", err.text);
    else if (bus_via_sentinel(b))
        /* The connection looked the primary up and checked ROLE before the PING. */
        report(d, CHECK_OK, "redis",
               "Sentinel %s names primary %s (ROLE master), which answers PING",
               d->ctl->cfg.redis_master_name, bus_primary(b));
    else
        report(d, CHECK_OK, "redis", "%s answers PING", bc.address);
    bus_close(b);
}

static void check_projects(struct doctor *d)
{
    const struct config *cfg = &d->ctl->cfg;
    struct stat sb;

    if (cfg->n_project_roots == 0) {
        report(d, CHECK_WARN, "projects",
               "projects.roots is empty: no session can be created until it names a directory");
        return;
    }
    for (size_t i = 0; i < cfg->n_project_roots; i++) {
        const char *root = cfg->project_roots[i];
        if (stat(root, &sb) < 0)
            report(d, CHECK_FAIL, "projects", "%s: %s", root, strerror(errno));
        else if (!S_ISDIR(sb.st_mode))
            report(d, CHECK_FAIL, "projects", "%s is not a directory", root);
        else
            report(d, CHECK_OK, "projects", "%s is a directory", root);
    }
}

static void check_runner(struct doctor *d)
{
    const char *path = d->ctl->cfg.runner_path;
    char found[4096];
    if (path[0] != '/')
        report(d, CHECK_FAIL, "runner", "runner.path %s is not an absolute path", path);
    else if (provider_find_bin(path, NULL, found, sizeof found) < 0)
        report(d, CHECK_FAIL, "runner", "runner.path %s: %s", path, strerror(errno));
    else
        report(d, CHECK_OK, "runner", "%s is executable", path);
}

/* Which sandbox the runners would put the CLIs in (runner.sandbox), and whether bwrap
 * works for this user (the probe the runner makes). */
static void check_sandbox(struct doctor *d)
{
    const struct config *cfg = &d->ctl->cfg;
    const char *homes = cfg->runner_homes[0] ? cfg->runner_homes : "the service's HOME";
    char why[400];

    if (strcmp(cfg->runner_sandbox, "none") == 0) {
        report(d, CHECK_WARN, "sandbox",
               "none (runner.sandbox = none): the provider CLIs run unconfined; agent homes: %s",
               homes);
        return;
    }
    bool works = sandbox_probe(cfg->runner_bwrap, why, sizeof why) == 0;
    bool auto_mode = strcmp(cfg->runner_sandbox, "auto") == 0;
    if (works)
        report(d, CHECK_OK, "sandbox", "bwrap%s: %s works; agent homes: %s",
               auto_mode ? " (runner.sandbox = auto)" : "", cfg->runner_bwrap, homes);
    else if (auto_mode)
        report(d, CHECK_WARN, "sandbox",
               "none (runner.sandbox = auto): bwrap does not work: %s; the provider CLIs run "
               "unconfined",
               why);
    else
        report(d, CHECK_FAIL, "sandbox", "bwrap (runner.sandbox = bwrap) does not work: %s", why);
}

/* Appends "; modes a, b; supports x, y" (core/providers.h, as GET /providers says). */
static void caps_text(enum provider_id p, char *buf, size_t size)
{
    const struct provider_caps *c = &provider_caps[p];
    size_t off = strlen(buf);

    off += (size_t)snprintf(buf + off, off < size ? size - off : 0, "; modes ");
    for (int m = 0; c->modes[m] && off < size; m++)
        off += (size_t)snprintf(buf + off, size - off, "%s%s", m ? "," : "", c->modes[m]);
    if (off < size)
        snprintf(buf + off, size - off, "; supports abort %s, resume %s, permission requests %s",
                 c->abort ? "yes" : "no", c->resume ? "yes" : "no",
                 c->permission_requests ? "yes" : "no");
}

static void check_providers(struct doctor *d)
{
    const char *path_env = NULL;
    for (char *const *e = d->ctl->envp; e && *e; e++) {
        if (strncmp(*e, "PATH=", 5) == 0)
            path_env = *e + 5;
    }

    for (int p = 0; p < PROVIDER__COUNT; p++) {
        const char *bin = d->ctl->cfg.provider_bin[p];
        const char *name = provider_name((enum provider_id)p);
        struct provider_check *pc = &d->providers[p];
        char found[4096], detail[512];
        bool ok = provider_find_bin(bin, path_env, found, sizeof found) == 0;
        int err = errno;

        pc->found = ok;
        if (ok) {
            memcpy(pc->path, found, sizeof pc->path);
            snprintf(detail, sizeof detail, "%.300s (%s.bin %.100s)", found, name, bin);
        } else if (strchr(bin, '/'))
            snprintf(detail, sizeof detail, "%s.bin %.300s: %s (provider unavailable)", name, bin,
                     strerror(err));
        else
            snprintf(detail, sizeof detail,
                     "%s.bin '%.300s' not found in PATH (provider unavailable)", name, bin);
        caps_text((enum provider_id)p, detail, sizeof detail);
        report(d, ok ? CHECK_OK : CHECK_WARN, name, "%s", detail);
    }
    d->providers_checked = true;
}

/* The providers as GET /providers lists them, plus the binary configured and found. */
static json_t *providers_json(struct doctor *d)
{
    json_t *arr = json_array();
    for (int p = 0; arr && p < PROVIDER__COUNT; p++) {
        const struct provider_check *pc = &d->providers[p];
        json_t *o = provider_caps_json((enum provider_id)p, pc->found);
        if (o &&
            (json_object_set_new(o, "bin", json_string(d->ctl->cfg.provider_bin[p])) < 0 ||
             json_object_set_new(o, "path", pc->found ? json_string(pc->path) : json_null()) < 0)) {
            json_decref(o);
            o = NULL;
        }
        if (json_array_append_new(arr, o) < 0) {
            json_decref(arr);
            arr = NULL;
        }
    }
    return arr;
}

/* In order; each adds one result or more. */
static void (*const checks[])(struct doctor *) = {
    check_database, check_schema, check_writable, check_redis,
    check_projects, check_runner, check_sandbox,  check_providers,
};

/* ---- output --------------------------------------------------------------- */

static json_t *config_json(const struct config *cfg)
{
    json_t *o = json_object();
    for (const struct config_key *k = config_keys; o && k->name; k++) {
        char buf[4096];
        if (config_format(cfg, k, buf, sizeof buf) < 0)
            snprintf(buf, sizeof buf, "?");
        if (strcmp(k->name, "redis.password") == 0 && buf[0])
            snprintf(buf, sizeof buf, "(set)");
        if (json_object_set_new(o, k->name, json_string(buf)) < 0) {
            json_decref(o);
            o = NULL;
        }
    }
    return o;
}

static int print_json(struct doctor *d, bool ok, bool verbose)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < d->n; i++) {
        const struct result *r = &d->results[i];
        if (json_array_append_new(arr, json_pack("{s:s, s:s, s:s}", "check", r->name, "status",
                                                 status_json[r->status], "detail", r->detail)) <
            0) {
            json_decref(arr);
            arr = NULL;
        }
    }
    json_t *root = arr ? json_pack("{s:b, s:o}", "ok", ok, "checks", arr) : NULL;
    if (root && d->providers_checked &&
        json_object_set_new(root, "providers", providers_json(d)) < 0) {
        json_decref(root);
        root = NULL;
    }
    if (root && verbose && d->ctl->config_loaded &&
        json_object_set_new(root, "config", config_json(&d->ctl->cfg)) < 0) {
        json_decref(root);
        root = NULL;
    }
    return ctl_json_print(d->ctl, root);
}

static void print_text(struct doctor *d, size_t failed, size_t warned, bool verbose)
{
    for (size_t i = 0; i < d->n; i++) {
        const struct result *r = &d->results[i];
        printf("%-4s  %-9s %s\n", status_text[r->status], r->name, r->detail);
    }
    if (verbose && d->ctl->config_loaded) {
        printf("\neffective configuration:\n");
        for (const struct config_key *k = config_keys; k->name; k++) {
            char buf[4096];
            if (config_format(&d->ctl->cfg, k, buf, sizeof buf) < 0)
                snprintf(buf, sizeof buf, "?");
            if (strcmp(k->name, "redis.password") == 0 && buf[0])
                snprintf(buf, sizeof buf, "(set)");
            printf("  %s = %s\n", k->name, buf);
        }
    }
    if (failed)
        printf("%zu required check%s failed\n", failed, failed == 1 ? "" : "s");
    else
        printf("all required checks passed (%zu warning%s)\n", warned, warned == 1 ? "" : "s");
}

enum { OPT_JSON, OPT_VERBOSE };

const struct ctl_opt ctl_doctor_opts[] = {
    [OPT_JSON] = {"json", 0, NULL, "print the results as a JSON object"},
    [OPT_VERBOSE] = {"verbose", 'v', NULL, "also print the effective configuration"},
    {NULL, 0, NULL, NULL},
};

int cmd_doctor(struct ctl *ctl, const struct ctl_args *a)
{
    struct doctor *d = calloc(1, sizeof *d);
    size_t failed = 0, warned = 0;

    if (!d)
        return ctl_fail(ctl, CGW_ERR_NOMEM, "out of memory");
    d->ctl = ctl;
    if (ctl_config_load(ctl) != CGW_OK) {
        report(d, CHECK_FAIL, "config", "%s", ctl->config_err.text);
    } else {
        if (ctl->config_file_found)
            report(d, CHECK_OK, "config", "loaded %s", ctl->config_file);
        else
            report(d, CHECK_OK, "config", "defaults and environment (no %s)", ctl->config_file);
        for (size_t i = 0; i < sizeof checks / sizeof checks[0]; i++)
            checks[i](d);
    }
    store_close(d->st);

    for (size_t i = 0; i < d->n; i++) {
        failed += d->results[i].status == CHECK_FAIL;
        warned += d->results[i].status == CHECK_WARN;
    }
    int rc = CTL_EXIT_OK;
    if (a->opt[OPT_JSON])
        rc = print_json(d, failed == 0, a->opt[OPT_VERBOSE] != NULL);
    else
        print_text(d, failed, warned, a->opt[OPT_VERBOSE] != NULL);
    free(d);
    if (rc != CTL_EXIT_OK)
        return rc;
    return failed ? CTL_EXIT_FAILURE : CTL_EXIT_OK;
}
