/* alloc_store.c: every allocation of the store fails in turn, SQLite's own included
 * (SQLITE_CONFIG_MALLOC): opening and migrating a database, then each kind of read and
 * write on an open one, which must go on working after every failure. */
#include <unistd.h>

#include "core/log.h"
#include "core/store.h"
#include "failalloc.h"
#include "tap.h"

struct fixture {
    char path[256]; /* a database file */
    struct store *st;
    long round; /* makes the names and ids of each run new */
};

static void unlink_db(const char *path)
{
    char p[300];
    unlink(path);
    snprintf(p, sizeof p, "%s-wal", path);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", path);
    unlink(p);
}

/* Creating, migrating and closing a database. */
static int open_scenario(struct fa_log *log, void *arg)
{
    const struct fixture *fx = arg;
    struct cgw_error err = {0};
    struct store *st;
    int version = 0;
    enum cgw_err rc;

    failalloc_hold();
    unlink_db(fx->path);
    failalloc_release();
    rc = store_open(fx->path, true, 1000, &st, &err);
    if (rc != CGW_OK)
        return rc;
    rc = store_migrate(st, &version, &err);
    fa_logf(log, "migrated to %d", version);
    if (rc == CGW_OK)
        rc = store_schema_version(st, &version, &err);
    fa_logf(log, "version %d", version);
    store_close(st);
    return rc;
}

/* Users, tokens, sessions, messages and rules on the open database. Names and ids are
 * new in every run; the log holds what does not depend on them. */
static int data_scenario(struct fa_log *log, void *arg)
{
    struct fixture *fx = arg;
    struct store *st = fx->st;
    struct cgw_error err = {0};
    char name[32], sid[CGW_UUID_LEN + 1], pub[24], path[64];
    unsigned char hash[32];
    int64_t uid = 0, tid = 0, seq = 0, total = 0;
    struct store_user user;
    struct store_token tok, *toks = NULL;
    struct store_session s = {0}, got = {0}, gone = {0}, *list = NULL;
    struct store_message *msgs = NULL;
    struct store_rule *rules = NULL;
    size_t n_toks = 0, n_list = 0, n_msgs = 0, n_rules = 0;
    bool disabled = false, more = false;
    enum cgw_err rc = CGW_OK;

    fx->round++;
    snprintf(name, sizeof name, "user%ld", fx->round);
    snprintf(sid, sizeof sid, "2b1f0d6e-1111-4222-8333-%012ld", fx->round % 1000000);
    snprintf(pub, sizeof pub, "pub%ld", fx->round);
    snprintf(path, sizeof path, "/srv/p%ld", fx->round);
    memset(hash, 7, sizeof hash);

    TRY(store_user_add(st, name, &uid, &err));
    TRY(store_user_get(st, name, &user, &err));
    fa_logf(log, "user %d %d", user.id == uid, user.disabled);
    TRY(store_token_add(st, uid, pub, hash, "laptop", &tid, &err));
    TRY(store_token_find(st, pub, &tok, &disabled, &err));
    fa_logf(log, "token %d %s %d %d", tok.id == tid, tok.label, tok.revoked, disabled);
    TRY(store_token_touch(st, tid, &err));
    TRY(store_token_list(st, uid, &toks, &n_toks, &err));
    fa_logf(log, "tokens %zu", n_toks);

    snprintf(s.id, sizeof s.id, "%s", sid);
    s.owner = uid;
    snprintf(s.provider, sizeof s.provider, "claude");
    s.project_path = path;
    s.name = "first";
    TRY(store_session_create(st, &s, &err));
    TRY(store_session_get(st, sid, uid, &got, &err));
    fa_logf(log, "session %s %s %d", got.provider, got.name, got.archived);
    TRY(store_session_update(st, sid, uid, "renamed", 0, &err));
    TRY(store_session_set_native_id(st, sid, "native-1", &err));
    TRY(store_session_touch(st, sid, &err));
    TRY(store_read_begin(st, &err));
    rc = store_session_list(st, uid, -1, 10, 0, &list, &n_list, &total, &err);
    store_read_end(st);
    TRY(rc);
    fa_logf(log, "sessions %zu of %lld: %s %s", n_list, (long long)total,
            n_list ? list[0].name : "-", n_list && list[0].native_id ? list[0].native_id : "-");

    TRY(store_begin(st, &err));
    for (int64_t q = 1; q <= 3 && rc == CGW_OK; q++)
        rc = store_message_add(st, sid, q, "text", "{\"kind\":\"text\",\"content\":\"hi\"}", &err);
    if (rc == CGW_OK)
        rc = store_commit(st, &err);
    else
        store_rollback(st);
    TRY(rc);
    TRY(store_message_add(st, sid, 4, "complete", "{\"kind\":\"complete\"}", &err));
    /* A batch: a replay of 4, then two new events. */
    struct store_message batch[3] = {
        {.seq = 4, .kind = "complete", .json = (char *)"{\"kind\":\"complete\"}"},
        {.seq = 5, .kind = "text", .json = (char *)"{\"kind\":\"text\",\"content\":\"a\"}"},
        {.seq = 6, .kind = "text", .json = (char *)"{\"kind\":\"text\",\"content\":\"b\"}"},
    };
    TRY(store_message_add_batch(st, sid, batch, 3, &err));
    TRY(store_message_list(st, sid, 1, 0, 10, &msgs, &n_msgs, &more, &err));
    fa_logf(log, "messages %zu %d: %s %s", n_msgs, more, n_msgs ? msgs[0].kind : "-",
            n_msgs ? msgs[n_msgs - 1].json : "-");
    TRY(store_session_last_seq(st, sid, &seq, &err));
    fa_logf(log, "last seq %lld", (long long)seq);

    TRY(store_rule_add(st, uid, path, "Bash(git status:*)", &err));
    TRY(store_rule_list(st, uid, path, &rules, &n_rules, &err));
    fa_logf(log, "rules %zu %s", n_rules, n_rules ? rules[0].rule : "-");
    if (n_rules)
        TRY(store_rule_delete(st, uid, rules[0].id, &err));

    TRY(store_session_delete(st, sid, uid, &err));
    TRY(store_token_revoke(st, tid, &err));
    TRY(store_user_set_disabled(st, name, true, &err));
    /* Not found stays not found, whatever memory does. */
    rc = store_session_get(st, sid, uid, &gone, &err);
    fa_logf(log, "deleted: %s", cgw_err_name(rc));
    rc = rc == CGW_ERR_NOT_FOUND ? CGW_OK : rc == CGW_OK ? CGW_ERR_INTERNAL : rc;
out:
    free(toks);
    store_session_clear(&got);
    store_session_clear(&gone);
    store_session_list_free(list, n_list);
    store_message_list_free(msgs, n_msgs);
    store_rule_list_free(rules, n_rules);
    return rc;
}

int main(void)
{
    static struct fixture fx;
    struct cgw_error err = {0};
    /* tmpfs when there is one: the open loop creates ~1600 databases, and fsync on a
     * disk would make it slow. */
    char dir[64];

    failalloc_init();
    log_init("alloc", LOG_LEVEL_ERROR);
    plan(2);
    snprintf(dir, sizeof dir, "%s/cgw-alloc-store-XXXXXX",
             access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
    if (!mkdtemp(dir))
        BAIL_OUT("mkdtemp");
    snprintf(fx.path, sizeof fx.path, "%s/chatgw.db", dir);

    failalloc_test("store open", open_scenario, &fx);

    unlink_db(fx.path);
    if (store_open(fx.path, true, 1000, &fx.st, &err) != CGW_OK ||
        store_migrate(fx.st, NULL, &err) != CGW_OK)
        BAIL_OUT("store: %s", err.text);
    failalloc_test("store data", data_scenario, &fx);
    store_close(fx.st);

    unlink_db(fx.path);
    rmdir(dir);
    return done_testing();
}
