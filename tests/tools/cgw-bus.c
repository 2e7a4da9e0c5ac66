/* cgw-bus.c: test tool: claims, publishes and completes runs through the real bus API,
 * so integration tests can produce events without a runner. Prints one seq a line. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/bus.h"
#include "core/config.h"
#include "core/event.h"
#include "core/store.h"
#include "core/util.h"

extern char **environ;

static void usage(FILE *f)
{
    fprintf(f, "usage: cgw-bus [-c CONFIG] COMMAND ...\n"
               "  claim SESSION RUN [OWNER]             claim the session for RUN\n"
               "  publish [-n COUNT] SESSION RUN KIND [JSON-FIELDS]\n"
               "                                        publish COUNT events (field \"i\" counts)\n"
               "  complete SESSION RUN EXITCODE         publish the run's complete\n"
               "  perm SESSION RUN REQUEST_ID TOOL      publish and register a permission request\n"
               "  seq SESSION                           print the session's seq counter\n");
}

static int fail(const struct cgw_error *err)
{
    fprintf(stderr, "cgw-bus: %s (%s)\n", err->text, cgw_err_name(err->code));
    return 1;
}

/* Publishes ev (a run event without seq); prints and returns its seq via *seq. */
static int publish(struct bus *b, const char *sid, const char *run, json_t *ev, bool complete,
                   int64_t *seq)
{
    struct cgw_error err;
    char *json = event_encode(ev);
    enum cgw_err rc;

    if (!json) {
        fprintf(stderr, "cgw-bus: out of memory\n");
        return 1;
    }
    if (complete)
        rc = bus_run_complete(b, sid, run, event_id(ev), json, false, seq, &err);
    else
        rc = bus_event_publish(b, sid, run, event_id(ev), json, seq, &err);
    free(json);
    if (rc != CGW_OK)
        return fail(&err);
    printf("%lld\n", (long long)*seq);
    return 0;
}

static int cmd_claim(struct bus *b, const struct config *cfg, int argc, char **argv)
{
    struct cgw_error err;
    struct store *st;
    int64_t owner = 1, hwm = 0, last = 0;
    char running[CGW_ID_MAX];

    if (argc < 3 || (argc > 3 && cgw_parse_int64(argv[3], 1, INT64_MAX, &owner) < 0)) {
        usage(stderr);
        return 2;
    }
    /* The SQLite high-water mark, as fcgi passes it; 0 when the session is unknown. */
    if (store_open(config_db_target(cfg), false, cfg->db_busy_timeout_ms, &st, &err) == CGW_OK) {
        if (store_session_last_seq(st, argv[1], &hwm, &err) != CGW_OK)
            hwm = 0;
        store_close(st);
    }
    struct bus_claim c = {
        .session_id = argv[1],
        .run_id = argv[2],
        .provider = "claude",
        .owner = owner,
        .request_json = "{}",
        .hwm_seq = hwm,
        .lease_ms = 600000,
    };
    if (bus_run_claim(b, &c, &last, running, &err) != CGW_OK)
        return fail(&err);
    printf("%lld\n", (long long)last);
    return 0;
}

static int cmd_publish(struct bus *b, int argc, char **argv)
{
    int64_t count = 1, seq;
    enum event_kind kind;
    json_t *fields = NULL;
    int opt, rc = 0;

    optind = 0; /* a full rescan: getopt ran on the outer arguments already */
    while ((opt = getopt(argc, argv, "+n:")) != -1) {
        if (opt != 'n' || cgw_parse_int64(optarg, 1, 1000000, &count) < 0) {
            usage(stderr);
            return 2;
        }
    }
    argc -= optind;
    argv += optind;
    if (argc < 3 || event_kind_from_name(argv[2], &kind) < 0 || !event_kind_is_run_event(kind)) {
        usage(stderr);
        return 2;
    }
    if (argc > 3)
        fields = json_loads(argv[3], 0, NULL); /* not inside json_is_object: a macro */
    if (argc > 3 && !json_is_object(fields)) {
        fprintf(stderr, "cgw-bus: JSON-FIELDS must be a JSON object\n");
        json_decref(fields);
        return 2;
    }
    struct event_ctx ctx = {.session_id = argv[0], .run_id = argv[1], .provider = "claude"};
    for (int64_t i = 0; i < count && rc == 0; i++) {
        json_t *ev = event_new(&ctx, kind);
        if (!ev || (fields && json_object_update(ev, fields) < 0) ||
            (count > 1 && json_object_set_new(ev, "i", json_integer(i)) < 0)) {
            fprintf(stderr, "cgw-bus: out of memory\n");
            rc = 1;
        } else {
            rc = publish(b, argv[0], argv[1], ev, false, &seq);
        }
        json_decref(ev);
    }
    json_decref(fields);
    return rc;
}

static int cmd_complete(struct bus *b, int argc, char **argv)
{
    int64_t code, seq;
    if (argc < 4 || cgw_parse_int64(argv[3], 0, 255, &code) < 0) {
        usage(stderr);
        return 2;
    }
    struct event_ctx ctx = {.session_id = argv[1], .run_id = argv[2], .provider = "claude"};
    json_t *ev = event_new_complete(&ctx, (int)code, false, REASON_NONE);
    if (!ev) {
        fprintf(stderr, "cgw-bus: out of memory\n");
        return 1;
    }
    int rc = publish(b, argv[1], argv[2], ev, true, &seq);
    json_decref(ev);
    return rc;
}

static int cmd_perm(struct bus *b, int argc, char **argv)
{
    struct cgw_error err;
    int64_t seq;
    if (argc < 5) {
        usage(stderr);
        return 2;
    }
    struct event_ctx ctx = {.session_id = argv[1], .run_id = argv[2], .provider = "claude"};
    json_t *ev = event_new_permission_request(&ctx, argv[3], argv[4], NULL);
    if (!ev) {
        fprintf(stderr, "cgw-bus: out of memory\n");
        return 1;
    }
    int rc = publish(b, argv[1], argv[2], ev, false, &seq);
    /* The pending entry is the published event, with its seq (doc/internals.md). */
    char *json = NULL;
    if (rc == 0 &&
        (json_object_set_new(ev, "seq", json_integer(seq)) < 0 || !(json = event_encode(ev)))) {
        fprintf(stderr, "cgw-bus: out of memory\n");
        rc = 1;
    }
    if (rc == 0 && bus_perm_add(b, argv[1], argv[2], argv[3], json, &err) != CGW_OK)
        rc = fail(&err);
    free(json);
    json_decref(ev);
    return rc;
}

int main(int argc, char **argv)
{
    struct config cfg;
    struct cgw_error err;
    const char *config_path = NULL;
    int opt;

    while ((opt = getopt(argc, argv, "+c:h")) != -1) {
        if (opt == 'c') {
            config_path = optarg;
        } else {
            usage(opt == 'h' ? stdout : stderr);
            return opt == 'h' ? 0 : 2;
        }
    }
    argc -= optind;
    argv += optind;
    if (argc < 1) {
        usage(stderr);
        return 2;
    }
    if (config_load(&cfg, config_path, environ, &err) != CGW_OK)
        return fail(&err);
    struct bus_config bc;
    bus_config_from(&cfg, &bc); /* redis.sentinels too */
    struct bus *b;
    if (bus_open(&bc, false, &b, &err) != CGW_OK) {
        config_free(&cfg);
        return fail(&err);
    }
    int rc;
    if (strcmp(argv[0], "claim") == 0) {
        rc = cmd_claim(b, &cfg, argc, argv);
    } else if (strcmp(argv[0], "publish") == 0) {
        rc = cmd_publish(b, argc, argv);
    } else if (strcmp(argv[0], "complete") == 0) {
        rc = cmd_complete(b, argc, argv);
    } else if (strcmp(argv[0], "perm") == 0) {
        rc = cmd_perm(b, argc, argv);
    } else if (strcmp(argv[0], "seq") == 0 && argc == 2) {
        int64_t seq;
        rc = bus_seq_get(b, argv[1], &seq, &err) == CGW_OK ? 0 : fail(&err);
        if (rc == 0)
            printf("%lld\n", (long long)seq);
    } else {
        usage(stderr);
        rc = 2;
    }
    bus_close(b);
    config_free(&cfg);
    return rc;
}
