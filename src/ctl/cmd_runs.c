/* cmd_runs.c: `chatgwctl runs ls|reap`: running runs in Redis, and ending those whose runner died.
 *
 * A runner refreshes its run's lease while it lives. `runs reap` completes every
 * running run whose lease expired with complete {reason:"runner_lost"}, through
 * bus_run_complete with only_if_lease_expired (so a runner that is alive after
 * all is never cut off), and persists that event to SQLite like a runner would.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/event.h"
#include "core/reap.h"
#include "ctl/ctl.h"

enum { LS_OPT_JSON };
enum { REAP_OPT_DRY_RUN };

struct run_row {
    char *session_id; /* borrowed from the id list */
    struct bus_run run;
};

/* Reads every running run. *rows is a new array (free()) of *n rows whose
 * session ids point into *ids (bus_strings_free). */
static enum cgw_err read_runs(struct bus *b, char ***ids, size_t *nids, struct run_row **rows,
                              size_t *n, struct cgw_error *err)
{
    *rows = NULL;
    *n = 0;
    enum cgw_err e = bus_runs_running(b, ids, nids, err);
    if (e != CGW_OK)
        return e;
    *rows = calloc(*nids + 1, sizeof **rows);
    if (!*rows)
        return cgw_error_set(err, CGW_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < *nids; i++) {
        struct run_row *r = &(*rows)[*n];
        e = bus_run_get(b, (*ids)[i], &r->run, NULL, err);
        if (e == CGW_ERR_NOT_FOUND)
            continue; /* completed and expired since the list was read */
        if (e != CGW_OK)
            return e;
        if (r->run.status != RUN_RUNNING)
            continue;
        r->session_id = (*ids)[i];
        (*n)++;
    }
    return CGW_OK;
}

static int open_bus(struct ctl *ctl, struct bus **b)
{
    struct bus_config bc;
    struct cgw_error err;
    int rc = ctl_config(ctl);
    if (rc != CTL_EXIT_OK)
        return rc;
    ctl_bus_config(ctl, &bc);
    if (bus_open(&bc, false, b, &err) != CGW_OK)
        return ctl_fail(ctl, CGW_ERR_BACKEND, "%s", err.text);
    return CTL_EXIT_OK;
}

static int print_runs(struct ctl *ctl, const struct run_row *rows, size_t n, bool json)
{
    static const char *const headers[] = {"SESSION", "RUN",     "PROVIDER", "OWNER",
                                          "RUNNER",  "STARTED", "LAST-SEQ", "LEASE"};
    if (json) {
        json_t *arr = json_array();
        for (size_t i = 0; arr && i < n; i++) {
            const struct bus_run *r = &rows[i].run;
            json_t *o =
                json_pack("{s:s, s:s, s:s, s:I, s:s, s:I, s:o, s:I, s:b}", "sessionId",
                          rows[i].session_id, "runId", r->run_id, "provider", r->provider, "owner",
                          (json_int_t)r->owner, "runnerHost", r->runner_host, "runnerPid",
                          (json_int_t)r->runner_pid, "startedAt", ctl_json_time(r->started_ms),
                          "lastSeq", (json_int_t)r->last_seq, "leaseAlive", r->lease_alive);
            if (!o || json_array_append_new(arr, o) < 0) {
                json_decref(arr);
                arr = NULL;
            }
        }
        return ctl_json_print(ctl, arr);
    }

    struct ctl_table *t = ctl_table_new(8, headers);
    for (size_t i = 0; t && i < n; i++) {
        const struct bus_run *r = &rows[i].run;
        char owner[24], runner[96], started[CGW_ISO_TIME_LEN + 1], seq[24];
        snprintf(owner, sizeof owner, "%lld", (long long)r->owner);
        if (r->runner_pid > 0)
            snprintf(runner, sizeof runner, "%s:%lld", r->runner_host, (long long)r->runner_pid);
        else
            snprintf(runner, sizeof runner, "-");
        snprintf(seq, sizeof seq, "%lld", (long long)r->last_seq);
        const char *row[] = {rows[i].session_id,
                             r->run_id,
                             r->provider,
                             owner,
                             runner,
                             ctl_time(r->started_ms, started),
                             seq,
                             r->lease_alive ? "alive" : "expired"};
        t = ctl_table_row(t, row);
    }
    return ctl_table_finish(ctl, t);
}

static int runs_ls(struct ctl *ctl, const struct ctl_args *a)
{
    struct run_row *rows = NULL;
    struct cgw_error err;
    char **ids = NULL;
    size_t nids = 0, n = 0;
    struct bus *b;

    int rc = open_bus(ctl, &b);
    if (rc != CTL_EXIT_OK)
        return rc;
    enum cgw_err e = read_runs(b, &ids, &nids, &rows, &n, &err);
    bus_close(b);
    if (e != CGW_OK)
        rc = ctl_fail(ctl, CGW_ERR_BACKEND, "%s", err.text);
    else
        rc = print_runs(ctl, rows, n, a->opt[LS_OPT_JSON] != NULL);
    free(rows);
    bus_strings_free(ids, nids);
    return rc;
}

/* Completes one lost run (reap.c) and says what happened; returns 0, or -1 after a
 * backend error (printed). */
static int reap_one(struct ctl *ctl, struct bus *b, struct store *st, const struct run_row *row)
{
    struct cgw_error err;
    int64_t seq = 0;
    enum cgw_err e = reap_run(st, b, ctl->cfg.host_id, row->session_id, &row->run, &seq, &err);
    if (e == CGW_ERR_CONFLICT || e == CGW_ERR_STALE) {
        printf("skipped run %s of session %s: %s\n", row->run.run_id, row->session_id,
               e == CGW_ERR_CONFLICT ? "its lease is alive again" : "it is no longer running");
        return 0;
    }
    if (e != CGW_OK) {
        ctl_fail(ctl, e, "completing run %s: %s", row->run.run_id, err.text);
        return -1;
    }
    printf("reaped run %s of session %s (complete seq %lld, reason runner_lost)\n", row->run.run_id,
           row->session_id, (long long)seq);
    return 0;
}

static int runs_reap(struct ctl *ctl, const struct ctl_args *a)
{
    bool dry_run = a->opt[REAP_OPT_DRY_RUN] != NULL;
    struct run_row *rows = NULL;
    struct store *st = NULL;
    struct cgw_error err;
    struct bus *b = NULL;
    char **ids = NULL;
    size_t nids = 0, n = 0, lost = 0;

    int rc = dry_run ? CTL_EXIT_OK : ctl_store_open(ctl, &st);
    if (rc == CTL_EXIT_OK)
        rc = open_bus(ctl, &b);
    if (rc != CTL_EXIT_OK) {
        store_close(st);
        return rc;
    }
    if (read_runs(b, &ids, &nids, &rows, &n, &err) != CGW_OK)
        rc = ctl_fail(ctl, CGW_ERR_BACKEND, "%s", err.text);
    for (size_t i = 0; rc == CTL_EXIT_OK && i < n; i++) {
        if (rows[i].run.lease_alive)
            continue;
        lost++;
        if (dry_run)
            printf("would reap run %s of session %s\n", rows[i].run.run_id, rows[i].session_id);
        else if (reap_one(ctl, b, st, &rows[i]) < 0)
            rc = CTL_EXIT_FAILURE;
    }
    if (rc == CTL_EXIT_OK && lost == 0)
        printf("no lost runs (%zu running)\n", n);
    bus_close(b);
    store_close(st);
    free(rows);
    bus_strings_free(ids, nids);
    return rc;
}

static const struct ctl_opt ls_opts[] = {
    [LS_OPT_JSON] = {"json", 0, NULL, "print a JSON array"},
    {NULL, 0, NULL, NULL},
};

static const struct ctl_opt reap_opts[] = {
    [REAP_OPT_DRY_RUN] = {"dry-run", 'n', NULL, "only list the runs that would be reaped"},
    {NULL, 0, NULL, NULL},
};

const struct ctl_cmd ctl_runs_cmds[] = {
    {"ls", "", "list running runs (from Redis) with their runner and lease", NULL, ls_opts, 0, 0,
     runs_ls},
    {"reap", "", "complete runs whose runner is gone (lease expired) as runner_lost", NULL,
     reap_opts, 0, 0, runs_reap},
    {NULL, NULL, NULL, NULL, NULL, 0, 0, NULL},
};
