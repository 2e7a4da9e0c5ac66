/* bus_runs.c: the bus's runs: claim, publish/complete, lease, running set, seq, reading, feed. */
#include "core/bus_priv.h"

#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUS_EVENT_ID_MAX 128
#define BUS_SEQ_MAX ((int64_t)1 << 53) /* Lua numbers are doubles */
#define BUS_RUNNING_KEY "cgw:running"

/* ---- tables ------------------------------------------------------------------ */

static const char *const run_status_names[] = {
    [RUN_NONE] = "none",
    [RUN_RUNNING] = "running",
    [RUN_COMPLETED] = "completed",
};

const char *run_status_name(enum run_status s)
{
    if ((unsigned)s > RUN_COMPLETED)
        return "none";
    return run_status_names[s];
}

static enum run_status run_status_parse(const char *s)
{
    for (unsigned i = RUN_RUNNING; i <= RUN_COMPLETED; i++)
        if (strcmp(s, run_status_names[i]) == 0)
            return (enum run_status)i;
    return RUN_NONE;
}

/* ---- reply helpers -------------------------------------------------------------- */

/* The position of the final '}' of an event object that has at least one member,
 * or 0 when json is not shaped like that. The script appends ,"seq":N} there. */
static size_t json_object_end(const char *json)
{
    size_t n, i = 0;
    if (!json)
        return 0;
    n = strlen(json);
    while (n > 0 && (json[n - 1] == ' ' || json[n - 1] == '\n' || json[n - 1] == '\r' ||
                     json[n - 1] == '\t'))
        n--;
    while (i < n && (json[i] == ' ' || json[i] == '\n' || json[i] == '\r' || json[i] == '\t'))
        i++;
    if (n < 2 || i >= n || json[i] != '{' || json[n - 1] != '}')
        return 0;
    for (size_t j = i + 1; j < n - 1; j++)
        if (json[j] != ' ' && json[j] != '\n' && json[j] != '\r' && json[j] != '\t')
            return n - 1;
    return 0;
}

static int reply_int64(const redisReply *r, int64_t *out)
{
    if (r->type == REDIS_REPLY_INTEGER) {
        *out = r->integer;
        return 0;
    }
    if (r->type == REDIS_REPLY_STRING)
        return cgw_parse_int64(r->str, INT64_MIN, INT64_MAX, out);
    return -1;
}

/* "<seq>-0" -> seq */
static int entry_seq(const redisReply *id, int64_t *seq)
{
    char buf[32];
    const char *dash = memchr(id->str, '-', id->len);
    size_t n = dash ? (size_t)(dash - id->str) : id->len;
    if (n == 0 || n >= sizeof(buf))
        return -1;
    memcpy(buf, id->str, n);
    buf[n] = '\0';
    return cgw_parse_int64(buf, 1, INT64_MAX, seq);
}

/* ---- runs ------------------------------------------------------------------------ */

/* Drops the session from cgw:running unless a new run was claimed meanwhile. The
 * claim sets the status before its SADD, so checking the status after the SREM
 * and adding back when it runs again never loses a running session. */
static enum cgw_err bus_running_forget(struct bus *b, const char *session_id,
                                       const struct bus_keys *k, struct cgw_error *err)
{
    redisReply *r;
    enum cgw_err rc;
    bool running;

    rc = bus_cmd(b, CMD_RETRY, WANT_INT, &r, err, 3, "SREM", BUS_RUNNING_KEY, session_id);
    if (rc != CGW_OK)
        return rc;
    freeReplyObject(r);
    rc = bus_cmd(b, CMD_RETRY, WANT_STR | WANT_NIL, &r, err, 3, "HGET", k->k[K_RUN], "status");
    if (rc != CGW_OK)
        return rc;
    running = r->type == REDIS_REPLY_STRING && strcmp(r->str, "running") == 0;
    freeReplyObject(r);
    if (!running)
        return CGW_OK;
    rc = bus_cmd(b, CMD_RETRY, WANT_INT, &r, err, 3, "SADD", BUS_RUNNING_KEY, session_id);
    if (rc == CGW_OK)
        freeReplyObject(r);
    return rc;
}

static enum cgw_err bus_running_add(struct bus *b, const char *session_id, struct cgw_error *err)
{
    redisReply *r;
    enum cgw_err rc =
        bus_cmd(b, CMD_RETRY, WANT_INT, &r, err, 3, "SADD", BUS_RUNNING_KEY, session_id);
    if (rc == CGW_OK)
        freeReplyObject(r);
    return rc;
}

/* The key of user's running set (a hint list of the sessions with a running run). */
static void running_set_key(int64_t user, char key[BUS_KEY_MAX])
{
    snprintf(key, BUS_KEY_MAX, "cgw:{u:%" PRId64 "}:running", user);
}

/* The members of a user's running set, with the run hash key of each, for claim.lua
 * to declare. *ids and *run_keys are new arrays of new strings (bus_strings_free). A
 * member that is not a session id (never added by us) is removed and skipped. */
static enum cgw_err running_members(struct bus *b, const char *set_key, char ***ids,
                                    char ***run_keys, size_t *n, struct cgw_error *err)
{
    redisReply *r, *x;
    size_t count = 0;
    enum cgw_err rc = bus_cmd(b, CMD_RETRY, WANT_ARR, &r, err, 2, "SMEMBERS", set_key);

    *ids = *run_keys = NULL;
    *n = 0;
    if (rc != CGW_OK)
        return rc;
    char **list = calloc(r->elements + 1, sizeof(*list));
    char **keys = calloc(r->elements + 1, sizeof(*keys));
    if (!list || !keys) {
        rc = cgw_error_set(err, CGW_ERR_NOMEM, "bus: out of memory");
        goto fail;
    }
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *m = bus_reply_elem(r, i, WANT_STR);
        struct bus_keys k;
        if (!m)
            continue;
        if (bus_keys_make(m->str, &k, NULL) != CGW_OK) {
            rc = bus_cmd(b, CMD_RETRY, WANT_INT, &x, err, 3, "SREM", set_key, m->str);
            if (rc != CGW_OK)
                goto fail;
            freeReplyObject(x);
            continue;
        }
        list[count] = strdup(m->str);
        keys[count] = strdup(k.k[K_RUN]);
        if (!list[count] || !keys[count]) {
            free(list[count]);
            free(keys[count]);
            rc = cgw_error_set(err, CGW_ERR_NOMEM, "bus: out of memory");
            goto fail;
        }
        count++;
    }
    freeReplyObject(r);
    *ids = list;
    *run_keys = keys;
    *n = count;
    return CGW_OK;

fail:
    freeReplyObject(r);
    bus_strings_free(list, count);
    bus_strings_free(keys, count);
    return rc;
}

/* How many times a claim reads the running set again because it changed between the
 * read and the script (other claims of the same user at the same moment). */
#define CLAIM_MEMBER_TRIES 8
#define CLAIM_ARGS 9

/* One claim.lua call; members (n of them, with their run keys) declared when the
 * script asked for them. *answer is the script's integer answer (-1 = declare). */
static enum cgw_err claim_call(struct bus *b, const struct bus_keys *k, const char *set_key,
                               const char *const *args, char **members, char **member_keys,
                               size_t n, int64_t *answer, struct cgw_error *err)
{
    enum cgw_err rc = CGW_OK;
    redisReply *r;
    const char **keys = calloc(K__COUNT + 1 + n, sizeof(*keys));
    const char **argv = calloc(CLAIM_ARGS + n, sizeof(*argv));

    if (!keys || !argv) {
        rc = cgw_error_set(err, CGW_ERR_NOMEM, "bus: out of memory");
        goto out;
    }
    for (int i = 0; i < K__COUNT; i++)
        keys[i] = k->k[i];
    keys[K__COUNT] = set_key;
    for (int i = 0; i < CLAIM_ARGS; i++)
        argv[i] = args[i];
    for (size_t i = 0; i < n; i++) {
        keys[K__COUNT + 1 + i] = member_keys[i];
        argv[CLAIM_ARGS + i] = members[i];
    }
    rc = bus_script(b, SCRIPT_CLAIM, CMD_RETRY, WANT_INT, K__COUNT + 1 + (int)n, keys,
                    CLAIM_ARGS + (int)n, argv, NULL, &r, err);
    if (rc == CGW_OK) {
        *answer = r->integer;
        freeReplyObject(r);
    }
out:
    free(keys);
    free(argv);
    return rc;
}

enum cgw_err bus_run_claim(struct bus *b, const struct bus_claim *c, int64_t *last_seq,
                           char running_run_id[CGW_ID_MAX], struct cgw_error *err)
{
    struct bus_keys k;
    char owner[24], hwm[24], lease[24], now[24], limit[24], set_key[BUS_KEY_MAX];
    const char *args[CLAIM_ARGS];
    char **members = NULL, **member_keys = NULL;
    size_t nmembers = 0;
    int64_t answer = -1;
    struct cgw_error e;
    enum cgw_err rc;

    if (running_run_id)
        running_run_id[0] = '\0';
    if (!c)
        return cgw_error_set(err, CGW_ERR_INVALID, "bus: no claim");
    if ((rc = bus_keys_make(c->session_id, &k, err)) != CGW_OK)
        return rc;
    if (!bus_id_valid(c->run_id, CGW_ID_MAX - 1))
        return cgw_error_set(err, CGW_ERR_INVALID, "bus: invalid run id");
    if (!c->provider || !c->provider[0] ||
        strlen(c->provider) >= sizeof(((struct bus_run *)0)->provider))
        return cgw_error_set(err, CGW_ERR_INVALID, "bus: invalid provider");
    if (c->hwm_seq < 0 || c->hwm_seq >= BUS_SEQ_MAX || c->lease_ms <= 0 || c->max_running < 0)
        return cgw_error_set(err, CGW_ERR_INVALID, "bus: invalid claim numbers");

    snprintf(owner, sizeof(owner), "%" PRId64, c->owner);
    snprintf(hwm, sizeof(hwm), "%" PRId64, c->hwm_seq);
    snprintf(lease, sizeof(lease), "%" PRId64, c->lease_ms);
    snprintf(now, sizeof(now), "%" PRId64, cgw_now_ms());
    snprintf(limit, sizeof(limit), "%" PRId64, c->max_running);
    running_set_key(c->owner, set_key);
    args[0] = c->run_id;
    args[1] = c->provider;
    args[2] = owner;
    args[3] = c->request_json ? c->request_json : "";
    args[4] = hwm;
    args[5] = lease;
    args[6] = now;
    args[7] = limit;
    args[8] = c->session_id;

    /* In cgw:running before the claim too, so that a failure between the script and
     * the SADD after it cannot hide a running run from the reaper; a stray member is
     * cleaned by bus_runs_running. */
    rc = bus_running_add(b, c->session_id, err);
    if (rc != CGW_OK)
        return rc;
    /* First without the members: below the limit the script needs none. When it asks
     * (-1), read them and declare them; -1 again means the set changed meanwhile. */
    for (int attempt = 0; rc == CGW_OK && answer < 0; attempt++) {
        if (attempt > CLAIM_MEMBER_TRIES) {
            rc = cgw_error_set(&e, CGW_ERR_BACKEND, "bus: the running set of user %s kept changing",
                               owner);
            break;
        }
        if (attempt > 0) {
            bus_strings_free(members, nmembers);
            bus_strings_free(member_keys, nmembers);
            rc = running_members(b, set_key, &members, &member_keys, &nmembers, &e);
            if (rc != CGW_OK)
                break;
        }
        rc = claim_call(b, &k, set_key, args, members, member_keys, nmembers, &answer, &e);
    }
    bus_strings_free(members, nmembers);
    bus_strings_free(member_keys, nmembers);

    if (rc == CGW_ERR_CONFLICT) {
        /* "CONFLICT <runId>" from claim.lua */
        char other[CGW_ID_MAX] = "";
        const char *p = strchr(e.text, ' ');
        if (p) {
            size_t n = strcspn(p + 1, " ");
            if (n < sizeof(other)) {
                memcpy(other, p + 1, n);
                other[n] = '\0';
            }
        }
        if (running_run_id)
            memcpy(running_run_id, other, sizeof(other));
        return cgw_error_set(err, CGW_ERR_CONFLICT, "session %s: run %s is running", c->session_id,
                             other);
    }
    if (rc == CGW_ERR_LIMIT) {
        /* "LIMIT <n>" from claim.lua */
        const char *p = strchr(e.text, ' ');
        return cgw_error_set(err, CGW_ERR_LIMIT, "you have %s runs running; the limit is %s",
                             p ? p + 1 : "?", limit);
    }
    if (rc != CGW_OK) {
        if (err)
            *err = e;
        return rc;
    }
    if (last_seq)
        *last_seq = answer;
    return bus_running_add(b, c->session_id, err);
}

/* Sets the run hash's fields (names[i] = values[i], n pairs) if run_id is still running. */
static enum cgw_err run_set_fields(struct bus *b, const char *session_id, const char *run_id,
                                   const char *const *names, const char *const *values, size_t n,
                                   struct cgw_error *err)
{
    struct bus_keys k;
    const char *args[5];
    redisReply *r;
    enum cgw_err rc;

    if ((rc = bus_keys_make(session_id, &k, err)) != CGW_OK)
        return rc;
    if (!bus_id_valid(run_id, CGW_ID_MAX - 1))
        return cgw_error_set(err, CGW_ERR_INVALID, "bus: invalid run id");
    args[0] = run_id;
    for (size_t i = 0; i < n && i < 2; i++) {
        args[1 + 2 * i] = names[i];
        args[2 + 2 * i] = values[i];
    }
    rc = bus_script(b, SCRIPT_SET_RUNNER, CMD_RETRY, WANT_INT, 1, &k.k[K_RUN], (int)(1 + 2 * n),
                    args, NULL, &r, err);
    if (rc == CGW_OK)
        freeReplyObject(r);
    return rc;
}

enum cgw_err bus_run_set_runner(struct bus *b, const char *session_id, const char *run_id,
                                const char *host, int64_t pid, struct cgw_error *err)
{
    static const char *const names[] = {"runnerHost", "runnerPid"};
    char pidbuf[24];
    snprintf(pidbuf, sizeof(pidbuf), "%" PRId64, pid);
    const char *values[] = {host ? host : "", pidbuf};
    return run_set_fields(b, session_id, run_id, names, values, 2, err);
}

enum cgw_err bus_run_set_cli(struct bus *b, const char *session_id, const char *run_id,
                             int64_t pgid, struct cgw_error *err)
{
    static const char *const names[] = {"cliPgid"};
    char buf[24];
    snprintf(buf, sizeof(buf), "%" PRId64, pgid);
    const char *values[] = {buf};
    return run_set_fields(b, session_id, run_id, names, values, 1, err);
}

/* How the run hash's fields land in struct bus_run. */
enum field_kind { F_STR, F_INT, F_STATUS };
#define RUN_FIELD(name, kind, member)                                                              \
    {                                                                                              \
        name, kind, offsetof(struct bus_run, member), sizeof(((struct bus_run *)0)->member)        \
    }
static const struct {
    const char *name;
    enum field_kind kind;
    size_t off;
    size_t size;
} run_fields[] = {
    RUN_FIELD("runId", F_STR, run_id),           RUN_FIELD("status", F_STATUS, status),
    RUN_FIELD("provider", F_STR, provider),      RUN_FIELD("owner", F_INT, owner),
    RUN_FIELD("runnerHost", F_STR, runner_host), RUN_FIELD("runnerPid", F_INT, runner_pid),
    RUN_FIELD("startedMs", F_INT, started_ms),   RUN_FIELD("completedMs", F_INT, completed_ms),
    RUN_FIELD("cliPgid", F_INT, cli_pgid),
};

enum cgw_err bus_run_get(struct bus *b, const char *session_id, struct bus_run *out,
                         char **request_json, struct cgw_error *err)
{
    struct bus_keys k;
    redisReply *r;
    enum cgw_err rc;
    char *request = NULL;

    memset(out, 0, sizeof(*out));
    if (request_json)
        *request_json = NULL;
    if ((rc = bus_keys_make(session_id, &k, err)) != CGW_OK)
        return rc;
    rc = bus_cmd(b, CMD_RETRY, WANT_ARR, &r, err, 2, "HGETALL", k.k[K_RUN]);
    if (rc != CGW_OK)
        return rc;
    if (r->elements == 0) {
        freeReplyObject(r);
        return cgw_error_set(err, CGW_ERR_NOT_FOUND, "session %s has no run", session_id);
    }
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        const redisReply *name = bus_reply_elem(r, i, WANT_STR);
        const redisReply *val = bus_reply_elem(r, i + 1, WANT_STR);
        if (!name || !val)
            continue;
        if (strcmp(name->str, "request") == 0) {
            if (request_json && !request && !(request = bus_strndup(val->str, val->len))) {
                freeReplyObject(r);
                return cgw_error_set(err, CGW_ERR_NOMEM, "bus: out of memory");
            }
            continue;
        }
        for (size_t f = 0; f < sizeof(run_fields) / sizeof(run_fields[0]); f++) {
            char *dst = (char *)out + run_fields[f].off;
            if (strcmp(name->str, run_fields[f].name) != 0)
                continue;
            if (run_fields[f].kind == F_STR)
                snprintf(dst, run_fields[f].size, "%s", val->str);
            else if (run_fields[f].kind == F_STATUS)
                *(enum run_status *)(void *)dst = run_status_parse(val->str);
            else if (cgw_parse_int64(val->str, INT64_MIN, INT64_MAX, (int64_t *)(void *)dst))
                *(int64_t *)(void *)dst = 0;
            break;
        }
    }
    freeReplyObject(r);

    rc = bus_seq_get(b, session_id, &out->last_seq, err);
    if (rc == CGW_OK)
        rc = bus_cmd(b, CMD_RETRY, WANT_INT, &r, err, 2, "EXISTS", k.k[K_LEASE]);
    if (rc != CGW_OK) {
        free(request);
        return rc;
    }
    out->lease_alive = r->integer > 0;
    freeReplyObject(r);
    if (request_json)
        *request_json = request;
    return CGW_OK;
}

/* publish.lua's modes, by enum bus_publish_kind (a batch of more than one event is
 * "batch"). */
static const char *const publish_modes[] = {"publish", "complete", "reap"};
#define PUBLISH_ARGS 9 /* ARGV before a batch's eventId, JSON pairs */

/* The owner's running set of the session's run, for a complete to declare (the owner is
 * read first; a session never changes owner, and the script checks the key against the
 * run it completes). set_key stays "" when the run has no owner. */
static enum cgw_err owner_set_key(struct bus *b, const struct bus_keys *k,
                                  char set_key[BUS_KEY_MAX], struct cgw_error *err)
{
    redisReply *r;
    int64_t owner = 0;
    enum cgw_err rc =
        bus_cmd(b, CMD_RETRY, WANT_STR | WANT_NIL, &r, err, 3, "HGET", k->k[K_RUN], "owner");
    set_key[0] = '\0';
    if (rc != CGW_OK)
        return rc;
    if (r->type == REDIS_REPLY_STRING && cgw_parse_int64(r->str, INT64_MIN, INT64_MAX, &owner) == 0)
        running_set_key(owner, set_key);
    freeReplyObject(r);
    return CGW_OK;
}

enum cgw_err bus_publish(struct bus *b, const struct bus_publish *p, int64_t *last_seq,
                         struct cgw_error *err)
{
    struct bus_keys k;
    char maxlen[24], now[24], ttl[24], floor[24], set_key[BUS_KEY_MAX] = "";
    const char *args[PUBLISH_ARGS + 2 * BUS_PUBLISH_BATCH_MAX], *keys[K__COUNT + 1];
    size_t lens[PUBLISH_ARGS + 2 * BUS_PUBLISH_BATCH_MAX];
    size_t n = p ? p->n : 0;
    bool batch = n > 1;
    int nkeys = K__COUNT, nargs = PUBLISH_ARGS;
    redisReply *r;
    enum cgw_err rc;

    if (!p || n == 0 || n > BUS_PUBLISH_BATCH_MAX || (p->kind != BUS_PUBLISH_EVENTS && n != 1) ||
        (unsigned)p->kind > BUS_PUBLISH_REAP || !p->event_ids || !p->jsons)
        return cgw_error_set(err, CGW_ERR_INVALID, "bus: a batch has 1 to %d events",
                             BUS_PUBLISH_BATCH_MAX);
    if (p->floor < 0 || p->floor >= BUS_SEQ_MAX)
        return cgw_error_set(err, CGW_ERR_INVALID, "bus: invalid seq floor");
    if ((rc = bus_keys_make(p->session_id, &k, err)) != CGW_OK)
        return rc;
    if (!bus_id_valid(p->run_id, CGW_ID_MAX - 1))
        return cgw_error_set(err, CGW_ERR_INVALID, "bus: invalid run id");
    for (size_t i = 0; i < n; i++) {
        size_t end = json_object_end(p->jsons[i]);
        if (!bus_id_valid(p->event_ids[i], BUS_EVENT_ID_MAX))
            return cgw_error_set(err, CGW_ERR_INVALID, "bus: invalid event id");
        if (end == 0)
            return cgw_error_set(err, CGW_ERR_INVALID, "bus: event is not a non-empty JSON object");
        if (batch) {
            args[nargs] = p->event_ids[i];
            lens[nargs++] = strlen(p->event_ids[i]);
            args[nargs] = p->jsons[i];
            lens[nargs++] = end;
        } else {
            args[2] = p->jsons[i];
            lens[2] = end; /* the object without its final '}' */
        }
    }
    memcpy(keys, k.k, sizeof k.k);
    if (p->kind != BUS_PUBLISH_EVENTS) {
        /* The complete also drops the session from its owner's running set. */
        if ((rc = owner_set_key(b, &k, set_key, err)) != CGW_OK)
            return rc;
        if (set_key[0])
            keys[nkeys++] = set_key;
    }

    snprintf(maxlen, sizeof(maxlen), "%" PRId64, b->stream_maxlen);
    snprintf(now, sizeof(now), "%" PRId64, cgw_now_ms());
    snprintf(ttl, sizeof(ttl), "%" PRId64, b->stream_ttl_s);
    snprintf(floor, sizeof(floor), "%" PRId64, p->floor);
    args[0] = p->run_id;
    args[1] = p->event_ids[n - 1]; /* a retried batch is recognised by its last event */
    if (batch)
        args[2] = "";
    args[3] = maxlen;
    args[4] = batch ? "batch" : publish_modes[p->kind];
    args[5] = now;
    args[6] = ttl;
    args[7] = p->session_id;
    args[8] = floor;
    for (int i = 0; i < PUBLISH_ARGS; i++)
        if (i != 2 || batch)
            lens[i] = strlen(args[i]);

    rc =
        bus_script(b, SCRIPT_PUBLISH, CMD_RETRY, WANT_INT, nkeys, keys, nargs, args, lens, &r, err);
    if (rc != CGW_OK)
        return rc;
    if (last_seq)
        *last_seq = r->integer;
    freeReplyObject(r);
    if (p->kind != BUS_PUBLISH_EVENTS) {
        /* The run is completed whatever happens here; a stray cgw:running member is
         * only cleaned later by bus_runs_running. */
        struct cgw_error ignored;
        bus_running_forget(b, p->session_id, &k, &ignored);
    }
    return CGW_OK;
}

enum cgw_err bus_event_publish(struct bus *b, const char *session_id, const char *run_id,
                               const char *event_id, const char *json, int64_t *seq,
                               struct cgw_error *err)
{
    struct bus_publish p = {session_id, run_id, 1, &event_id, &json, BUS_PUBLISH_EVENTS, 0};
    return bus_publish(b, &p, seq, err);
}

enum cgw_err bus_events_publish(struct bus *b, const char *session_id, const char *run_id, size_t n,
                                const char *const *event_ids, const char *const *jsons,
                                int64_t *last_seq, struct cgw_error *err)
{
    struct bus_publish p = {session_id, run_id, n, event_ids, jsons, BUS_PUBLISH_EVENTS, 0};
    return bus_publish(b, &p, last_seq, err);
}

enum cgw_err bus_run_complete(struct bus *b, const char *session_id, const char *run_id,
                              const char *event_id, const char *json, bool only_if_lease_expired,
                              int64_t *seq, struct cgw_error *err)
{
    struct bus_publish p = {
        session_id, run_id, 1,
        &event_id,  &json,  only_if_lease_expired ? BUS_PUBLISH_REAP : BUS_PUBLISH_COMPLETE,
        0};
    return bus_publish(b, &p, seq, err);
}

enum cgw_err bus_lease_refresh(struct bus *b, const char *session_id, const char *run_id,
                               int64_t lease_ms, struct cgw_error *err)
{
    struct bus_keys k;
    char ms[24];
    const char *keys[2], *args[2];
    redisReply *r;
    enum cgw_err rc;

    if ((rc = bus_keys_make(session_id, &k, err)) != CGW_OK)
        return rc;
    if (!bus_id_valid(run_id, CGW_ID_MAX - 1) || lease_ms <= 0)
        return cgw_error_set(err, CGW_ERR_INVALID, "bus: invalid lease refresh");
    snprintf(ms, sizeof(ms), "%" PRId64, lease_ms);
    keys[0] = k.k[K_RUN];
    keys[1] = k.k[K_LEASE];
    args[0] = run_id;
    args[1] = ms;
    rc = bus_script(b, SCRIPT_LEASE, CMD_RETRY, WANT_INT, 2, keys, 2, args, NULL, &r, err);
    if (rc == CGW_OK)
        freeReplyObject(r);
    return rc;
}

#define RESTORE_ARGS 9

enum cgw_err bus_run_restore(struct bus *b, const struct bus_restore *rs, int64_t *seq,
                             struct cgw_error *err)
{
    struct bus_keys k;
    char ms[24], floor[24], owner[24], started[24], now[24], pid[24], pgid[24];
    char set_key[BUS_KEY_MAX];
    const char *keys[5], *args[RESTORE_ARGS + 6];
    int nargs = RESTORE_ARGS;
    redisReply *r;
    enum cgw_err rc;

    if (!rs)
        return cgw_error_set(err, CGW_ERR_INVALID, "bus: no restore");
    if ((rc = bus_keys_make(rs->session_id, &k, err)) != CGW_OK)
        return rc;
    if (!bus_id_valid(rs->run_id, CGW_ID_MAX - 1) || rs->lease_ms <= 0 || rs->floor < 0 ||
        rs->floor >= BUS_SEQ_MAX || !rs->provider || !rs->provider[0])
        return cgw_error_set(err, CGW_ERR_INVALID, "bus: invalid run restore");
    snprintf(ms, sizeof(ms), "%" PRId64, rs->lease_ms);
    snprintf(floor, sizeof(floor), "%" PRId64, rs->floor);
    snprintf(owner, sizeof(owner), "%" PRId64, rs->owner);
    snprintf(started, sizeof(started), "%" PRId64, rs->started_ms);
    snprintf(now, sizeof(now), "%" PRId64, cgw_now_ms());
    snprintf(pid, sizeof(pid), "%" PRId64, rs->runner_pid);
    snprintf(pgid, sizeof(pgid), "%" PRId64, rs->cli_pgid);
    running_set_key(rs->owner, set_key);
    keys[0] = k.k[K_RUN];
    keys[1] = k.k[K_LEASE];
    keys[2] = k.k[K_SEQ];
    keys[3] = k.k[K_EVENTS];
    keys[4] = set_key;
    args[0] = rs->run_id;
    args[1] = ms;
    args[2] = floor;
    args[3] = rs->provider;
    args[4] = owner;
    args[5] = rs->request_json ? rs->request_json : "";
    args[6] = started;
    args[7] = now;
    args[8] = rs->session_id;
    if (rs->runner_host && rs->runner_host[0]) {
        args[nargs++] = "runnerHost";
        args[nargs++] = rs->runner_host;
        args[nargs++] = "runnerPid";
        args[nargs++] = pid;
    }
    if (rs->cli_pgid > 0) {
        args[nargs++] = "cliPgid";
        args[nargs++] = pgid;
    }
    rc = bus_script(b, SCRIPT_LEASE, CMD_RETRY, WANT_INT, 5, keys, nargs, args, NULL, &r, err);
    if (rc != CGW_OK)
        return rc;
    if (seq)
        *seq = r->integer;
    freeReplyObject(r);
    /* The reaper finds running runs through cgw:running, which went with the data. */
    return bus_running_add(b, rs->session_id, err);
}

void bus_strings_free(char **list, size_t n)
{
    if (!list)
        return;
    for (size_t i = 0; i < n; i++)
        free(list[i]);
    free(list);
}

enum cgw_err bus_runs_running(struct bus *b, char ***ids, size_t *n, struct cgw_error *err)
{
    redisReply *members;
    char **list;
    size_t count = 0;
    enum cgw_err rc;

    *ids = NULL;
    *n = 0;
    rc = bus_cmd(b, CMD_RETRY, WANT_ARR, &members, err, 2, "SMEMBERS", BUS_RUNNING_KEY);
    if (rc != CGW_OK)
        return rc;
    list = calloc(members->elements + 1, sizeof(*list));
    if (!list) {
        freeReplyObject(members);
        return cgw_error_set(err, CGW_ERR_NOMEM, "bus: out of memory");
    }
    for (size_t i = 0; i < members->elements; i++) {
        const redisReply *m = bus_reply_elem(members, i, WANT_STR);
        struct bus_keys k;
        redisReply *r;
        bool running;

        if (!m)
            continue;
        if (bus_keys_make(m->str, &k, NULL) != CGW_OK) {
            /* Not ours: drop it. */
            rc = bus_cmd(b, CMD_RETRY, WANT_INT, &r, err, 3, "SREM", BUS_RUNNING_KEY, m->str);
            if (rc != CGW_OK)
                goto fail;
            freeReplyObject(r);
            continue;
        }
        rc = bus_cmd(b, CMD_RETRY, WANT_STR | WANT_NIL, &r, err, 3, "HGET", k.k[K_RUN], "status");
        if (rc != CGW_OK)
            goto fail;
        running = r->type == REDIS_REPLY_STRING && strcmp(r->str, "running") == 0;
        freeReplyObject(r);
        if (!running) {
            rc = bus_running_forget(b, m->str, &k, err);
            if (rc != CGW_OK)
                goto fail;
            continue;
        }
        if (!(list[count] = strdup(m->str))) {
            rc = cgw_error_set(err, CGW_ERR_NOMEM, "bus: out of memory");
            goto fail;
        }
        count++;
    }
    freeReplyObject(members);
    *ids = list;
    *n = count;
    return CGW_OK;

fail:
    freeReplyObject(members);
    bus_strings_free(list, count);
    return rc;
}

enum cgw_err bus_seq_get(struct bus *b, const char *session_id, int64_t *seq, struct cgw_error *err)
{
    struct bus_keys k;
    redisReply *r;
    enum cgw_err rc;

    *seq = 0;
    if ((rc = bus_keys_make(session_id, &k, err)) != CGW_OK)
        return rc;
    rc = bus_cmd(b, CMD_RETRY, WANT_STR | WANT_NIL, &r, err, 2, "GET", k.k[K_SEQ]);
    if (rc != CGW_OK)
        return rc;
    if (r->type == REDIS_REPLY_STRING && reply_int64(r, seq) != 0)
        rc = cgw_error_set(err, CGW_ERR_INTERNAL, "redis %s: bad seq counter of %s", b->address,
                           session_id);
    freeReplyObject(r);
    return rc;
}

/* ---- reading ------------------------------------------------------------------- */

void bus_read_free(struct bus_read *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++)
        free(r->events[i].json);
    free(r->events);
    r->events = NULL;
    r->n = 0;
}

/* Reads a stream with read.lua: keys[0] its counter, keys[1] the stream, keys[2] the run
 * hash (a session's; any missing key for a feed). label names it in errors. */
static enum cgw_err read_stream(struct bus *b, const char *const keys[3], const char *label,
                                int64_t after_seq, int64_t max_count, int64_t max_bytes,
                                struct bus_read *out, struct cgw_error *err)
{
    char after[24], count[24], bytes[24];
    const char *args[3];
    const redisReply *last, *first, *status, *run_id, *more, *entries;
    redisReply *r;
    enum cgw_err rc;

    if (after_seq < 0 || after_seq >= BUS_SEQ_MAX || max_count < 0)
        return cgw_error_set(err, CGW_ERR_INVALID, "bus: invalid read range");
    if (max_count > 100000)
        max_count = 100000;
    snprintf(after, sizeof(after), "%" PRId64, after_seq);
    snprintf(count, sizeof(count), "%" PRId64, max_count);
    snprintf(bytes, sizeof(bytes), "%" PRId64, max_bytes > 0 ? max_bytes : 0);
    args[0] = after;
    args[1] = count;
    args[2] = bytes;
    rc = bus_script(b, SCRIPT_READ, CMD_RETRY, WANT_ARR, 3, keys, 3, args, NULL, &r, err);
    if (rc != CGW_OK)
        return rc;

    last = bus_reply_elem(r, 0, WANT_INT);
    first = bus_reply_elem(r, 1, WANT_INT);
    status = bus_reply_elem(r, 2, WANT_STR);
    run_id = bus_reply_elem(r, 3, WANT_STR);
    more = bus_reply_elem(r, 4, WANT_INT);
    entries = bus_reply_elem(r, 5, WANT_ARR);
    if (!last || !first || !status || !run_id || !more || !entries || entries->elements % 2) {
        rc = cgw_error_set(err, CGW_ERR_INTERNAL, "redis %s: unexpected read reply", b->address);
        goto out;
    }
    out->last_seq = last->integer;
    out->first_seq = first->integer;
    out->more = more->integer != 0;
    out->status = run_status_parse(status->str);
    snprintf(out->run_id, sizeof(out->run_id), "%s", run_id->str);
    /* A hole: events after the cursor existed (the counter is past it) but the
     * stream no longer starts right after it, or is gone altogether. */
    if (out->first_seq > 0)
        out->truncated = after_seq < out->first_seq - 1 && after_seq < out->last_seq;
    else
        out->truncated = after_seq < out->last_seq;

    if (entries->elements > 0) {
        out->events = calloc(entries->elements / 2, sizeof(*out->events));
        if (!out->events) {
            rc = cgw_error_set(err, CGW_ERR_NOMEM, "bus: out of memory");
            goto out;
        }
    }
    for (size_t i = 0; i + 1 < entries->elements; i += 2) {
        const redisReply *id = bus_reply_elem(entries, i, WANT_STR);
        const redisReply *json = bus_reply_elem(entries, i + 1, WANT_STR);
        struct bus_event *ev = &out->events[out->n];
        if (!id || !json || entry_seq(id, &ev->seq) != 0) {
            rc = cgw_error_set(err, CGW_ERR_INTERNAL, "redis %s: bad stream entry of %s",
                               b->address, label);
            goto out;
        }
        if (!(ev->json = bus_strndup(json->str, json->len))) {
            rc = cgw_error_set(err, CGW_ERR_NOMEM, "bus: out of memory");
            goto out;
        }
        ev->len = json->len;
        out->n++;
    }

out:
    freeReplyObject(r);
    if (rc != CGW_OK)
        bus_read_free(out);
    return rc;
}

enum cgw_err bus_events_read(struct bus *b, const char *session_id, int64_t after_seq,
                             int64_t max_count, int64_t max_bytes, struct bus_read *out,
                             struct cgw_error *err)
{
    struct bus_keys k;
    enum cgw_err rc;

    memset(out, 0, sizeof(*out));
    if ((rc = bus_keys_make(session_id, &k, err)) != CGW_OK)
        return rc;
    const char *keys[3] = {k.k[K_SEQ], k.k[K_EVENTS], k.k[K_RUN]};
    return read_stream(b, keys, session_id, after_seq, max_count, max_bytes, out, err);
}

/* ---- the per-user session feed ------------------------------------------------ */

#define FEED_MAXLEN "1000"

/* Keys of user's feed: {u:<id>} is the hash tag, so the feed script touches one slot. */
static void feed_keys(int64_t user, char seq[BUS_KEY_MAX], char stream[BUS_KEY_MAX],
                      char none[BUS_KEY_MAX])
{
    snprintf(seq, BUS_KEY_MAX, "cgw:{u:%" PRId64 "}:feedseq", user);
    snprintf(stream, BUS_KEY_MAX, "cgw:{u:%" PRId64 "}:feed", user);
    snprintf(none, BUS_KEY_MAX, "cgw:{u:%" PRId64 "}:norun", user);
}

enum cgw_err bus_feed_publish(struct bus *b, int64_t user, const char *json, int64_t *feed_seq,
                              struct cgw_error *err)
{
    char seq[BUS_KEY_MAX], stream[BUS_KEY_MAX], none[BUS_KEY_MAX], notify[48];
    const char *keys[2], *args[3];
    size_t lens[3];
    size_t end = json_object_end(json);
    redisReply *r;

    if (user <= 0)
        return cgw_error_set(err, CGW_ERR_INVALID, "bus: invalid user id");
    if (end == 0)
        return cgw_error_set(err, CGW_ERR_INVALID, "bus: frame is not a non-empty JSON object");
    feed_keys(user, seq, stream, none);
    snprintf(notify, sizeof(notify), "u:%" PRId64, user);
    keys[0] = seq;
    keys[1] = stream;
    args[0] = json;
    args[1] = FEED_MAXLEN;
    args[2] = notify;
    lens[0] = end;
    lens[1] = strlen(args[1]);
    lens[2] = strlen(args[2]);
    /* Not retried: a retry after a lost reply would add the frame twice. A lost feed
     * frame costs a stale sidebar row until the next change; the caller logs it. */
    enum cgw_err rc = bus_script(b, SCRIPT_FEED, 0, WANT_INT, 2, keys, 3, args, lens, &r, err);
    if (rc != CGW_OK)
        return rc;
    if (feed_seq)
        *feed_seq = r->integer;
    freeReplyObject(r);
    return CGW_OK;
}

enum cgw_err bus_feed_read(struct bus *b, int64_t user, int64_t after_seq, int64_t max_count,
                           int64_t max_bytes, struct bus_read *out, struct cgw_error *err)
{
    char seq[BUS_KEY_MAX], stream[BUS_KEY_MAX], none[BUS_KEY_MAX], label[48];

    memset(out, 0, sizeof(*out));
    if (user <= 0)
        return cgw_error_set(err, CGW_ERR_INVALID, "bus: invalid user id");
    feed_keys(user, seq, stream, none);
    snprintf(label, sizeof(label), "the feed of user %" PRId64, user);
    const char *keys[3] = {seq, stream, none};
    return read_stream(b, keys, label, after_seq, max_count, max_bytes, out, err);
}

enum cgw_err bus_runs_running_count(struct bus *b, int64_t *n, struct cgw_error *err)
{
    redisReply *r;
    enum cgw_err rc = bus_cmd(b, CMD_RETRY, WANT_INT, &r, err, 2, "SCARD", BUS_RUNNING_KEY);
    if (rc != CGW_OK)
        return rc;
    *n = (int64_t)r->integer;
    freeReplyObject(r);
    return CGW_OK;
}
