/* runctl.c: a test tool that drives runs in Redis the way chatgw.fcgi does (claim, abort,
 * permission answers) and reads them back, so script tests need not reimplement the bus.
 *
 *   runctl -c CONFIG claim SESSION RUN < REQUEST_JSON   claim (hwm from SQLite); prints lastSeq
 *   runctl -c CONFIG abort SESSION RUN                  push {"type":"abort","runId":RUN}
 *   runctl -c CONFIG perm SESSION REQUEST allow|deny [UPDATED_INPUT_JSON|- [MESSAGE]]
 *                                                       bus_perm_resolve; exit 3 conflict, 4
 * unknown runctl -c CONFIG events SESSION [AFTER_SEQ]         the stream's events, one JSON per
 * line runctl -c CONFIG run SESSION                        the run hash as one JSON object runctl
 * -c CONFIG pending SESSION                    open permission requests, one per line Exit status 0
 * on success, 1 on errors, 2 on usage errors.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/bus.h"
#include "core/config.h"
#include "core/log.h"
#include "core/store.h"

extern char **environ;

static int usage(void)
{
    fputs("usage: runctl -c CONFIG claim|abort|perm|events|run|pending ARGS...\n", stderr);
    return 2;
}

static int fail(const char *what, const struct cgw_error *err)
{
    fprintf(stderr, "runctl: %s: %s (%s)\n", what, err->text, cgw_err_name(err->code));
    return err->code == CGW_ERR_CONFLICT ? 3 : err->code == CGW_ERR_NOT_FOUND ? 4 : 1;
}

static char *read_stdin(void)
{
    size_t len = 0, cap = 4096;
    char *buf = malloc(cap);
    size_t n;
    while (buf && (n = fread(buf + len, 1, cap - len - 1, stdin)) > 0) {
        len += n;
        if (cap - len < 2) {
            char *p = realloc(buf, cap * 2);
            if (!p) {
                free(buf);
                return NULL;
            }
            buf = p;
            cap *= 2;
        }
    }
    if (buf)
        buf[len] = '\0';
    return buf;
}

static int cmd_claim(const struct config *cfg, struct bus *b, char **argv)
{
    struct cgw_error err;
    struct store *st = NULL;
    int64_t hwm = 0, last = 0;
    char running[CGW_ID_MAX] = "";
    char *req = read_stdin();
    json_t *j = req ? json_loads(req, 0, NULL) : NULL;
    int rc = 1;

    if (!j) {
        fputs("runctl: claim: the run request on stdin is not JSON\n", stderr);
        goto out;
    }
    if (store_open(config_db_target(cfg), false, cfg->db_busy_timeout_ms, &st, &err) == CGW_OK &&
        store_session_last_seq(st, argv[0], &hwm, &err) != CGW_OK)
        hwm = 0;
    struct bus_claim c = {
        .session_id = argv[0],
        .run_id = argv[1],
        .provider = json_string_value(json_object_get(j, "provider")),
        .owner = json_integer_value(json_object_get(j, "owner")),
        .request_json = req,
        .hwm_seq = hwm,
        .lease_ms = cfg->runner_lease_s * 1000,
    };
    if (!c.provider)
        c.provider = "claude";
    if (bus_run_claim(b, &c, &last, running, &err) != CGW_OK) {
        rc = fail("claim", &err);
        goto out;
    }
    printf("%" PRId64 "\n", last);
    rc = 0;
out:
    json_decref(j);
    free(req);
    store_close(st);
    return rc;
}

static int cmd_abort(struct bus *b, char **argv)
{
    struct cgw_error err;
    json_t *m = json_pack("{s:s, s:s}", "type", "abort", "runId", argv[1]);
    char *text = m ? json_dumps(m, JSON_COMPACT) : NULL;
    int rc = 1;
    if (text)
        rc = bus_ctl_push(b, argv[0], text, &err) == CGW_OK ? 0 : fail("abort", &err);
    free(text);
    json_decref(m);
    return rc;
}

static int cmd_perm(struct bus *b, int argc, char **argv)
{
    struct cgw_error err;
    bool allow = strcmp(argv[2], "allow") == 0;
    json_t *input = NULL;
    if (argc > 3 && strcmp(argv[3], "-") != 0 && !(input = json_loads(argv[3], 0, NULL))) {
        fputs("runctl: perm: UPDATED_INPUT is not JSON\n", stderr);
        return 2;
    }
    json_t *m = json_pack("{s:s, s:s, s:b, s:o, s:s?}", "type", "permission", "requestId", argv[1],
                          "allow", allow, "updatedInput", input ? input : json_null(), "message",
                          argc > 4 ? argv[4] : NULL);
    char *text = m ? json_dumps(m, JSON_COMPACT) : NULL;
    int rc = 1;
    if (text)
        rc = bus_perm_resolve(b, argv[0], argv[1], allow, text, &err) == CGW_OK
                 ? 0
                 : fail("perm", &err);
    free(text);
    json_decref(m);
    return rc;
}

static int cmd_events(struct bus *b, int argc, char **argv)
{
    struct cgw_error err;
    struct bus_read rd;
    int64_t after = 0;
    if (argc > 1 && cgw_parse_int64(argv[1], 0, INT64_MAX, &after) < 0)
        return usage();
    for (;;) {
        if (bus_events_read(b, argv[0], after, 1000, 0, &rd, &err) != CGW_OK) {
            bus_read_free(&rd);
            return fail("events", &err);
        }
        for (size_t i = 0; i < rd.n; i++) {
            printf("%s\n", rd.events[i].json);
            after = rd.events[i].seq;
        }
        bool more = rd.more && rd.n > 0;
        bus_read_free(&rd);
        if (!more)
            return 0;
    }
}

static int cmd_run(struct bus *b, char **argv)
{
    struct cgw_error err;
    struct bus_run r;
    enum cgw_err e = bus_run_get(b, argv[0], &r, NULL, &err);
    if (e == CGW_ERR_NOT_FOUND) {
        puts("null");
        return 0;
    }
    if (e != CGW_OK)
        return fail("run", &err);
    json_t *o = json_pack("{s:s, s:s, s:s, s:I, s:I, s:b}", "runId", r.run_id, "status",
                          run_status_name(r.status), "runnerHost", r.runner_host, "runnerPid",
                          (json_int_t)r.runner_pid, "lastSeq", (json_int_t)r.last_seq, "leaseAlive",
                          r.lease_alive);
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    if (text)
        puts(text);
    free(text);
    json_decref(o);
    return text ? 0 : 1;
}

static int cmd_pending(struct bus *b, char **argv)
{
    struct cgw_error err;
    char **jsons = NULL;
    size_t n = 0;
    if (bus_perm_list(b, argv[0], &jsons, &n, &err) != CGW_OK)
        return fail("pending", &err);
    for (size_t i = 0; i < n; i++)
        puts(jsons[i]);
    bus_strings_free(jsons, n);
    return 0;
}

int main(int argc, char **argv)
{
    const char *config_file = NULL;
    struct cgw_error err;
    struct config cfg;
    struct bus *b = NULL;
    int rc = 2;

    if (argc >= 3 && strcmp(argv[1], "-c") == 0) {
        config_file = argv[2];
        argc -= 2;
        argv += 2;
    }
    if (argc < 3)
        return usage();
    const char *cmd = argv[1];
    argc -= 2;
    argv += 2;

    if (config_load(&cfg, config_file, environ, &err) != CGW_OK) {
        fprintf(stderr, "runctl: configuration: %s\n", err.text);
        return 1;
    }
    log_init("runctl", LOG_LEVEL_WARN);
    struct bus_config bc;
    bus_config_from(&cfg, &bc); /* redis.sentinels too */
    if (bus_open(&bc, false, &b, &err) != CGW_OK) {
        config_free(&cfg);
        return fail("redis", &err);
    }
    if (strcmp(cmd, "claim") == 0 && argc == 2)
        rc = cmd_claim(&cfg, b, argv);
    else if (strcmp(cmd, "abort") == 0 && argc == 2)
        rc = cmd_abort(b, argv);
    else if (strcmp(cmd, "perm") == 0 && argc >= 3 && argc <= 5 &&
             (strcmp(argv[2], "allow") == 0 || strcmp(argv[2], "deny") == 0))
        rc = cmd_perm(b, argc, argv);
    else if (strcmp(cmd, "events") == 0 && argc >= 1 && argc <= 2)
        rc = cmd_events(b, argc, argv);
    else if (strcmp(cmd, "run") == 0 && argc == 1)
        rc = cmd_run(b, argv);
    else if (strcmp(cmd, "pending") == 0 && argc == 1)
        rc = cmd_pending(b, argv);
    else
        rc = usage();
    bus_close(b);
    config_free(&cfg);
    return rc;
}
