/* test_store.c: the store on temp files: schema, every table, transactions, two writers.
 *
 * With CHATGW_TEST_PG_URL set (tests/unit/test_store_pg.sh starts a private PostgreSQL
 * and sets it), the same tests run against the PostgreSQL backend: every "file" is a
 * fresh database on that server, and the raw_* helpers look behind the store's back
 * through libpq, with the few SQLite-only statements translated (pg_translate). */
#include "config.h" /* autoconf's: _GNU_SOURCE for nftw */

#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#ifdef HAVE_POSTGRES
#include <libpq-fe.h>
#endif

#include "core/store.h"
#include "core/util.h"
#include "tap.h"

static char tmpdir[512];
static const char *pg_url; /* CHATGW_TEST_PG_URL: run against PostgreSQL */

/* ---- helpers ----------------------------------------------------------------- */

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(path);
}

static void make_tmpdir(void)
{
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/test_store.XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(tmpdir))
        BAIL_OUT("mkdtemp %s: %s", tmpdir, strerror(errno));
}

#ifdef HAVE_POSTGRES
static PGconn *pg_connect(const char *url)
{
    PGconn *c = PQconnectdb(url);
    if (PQstatus(c) != CONNECTION_OK)
        BAIL_OUT("connect %s: %s", url, PQerrorMessage(c));
    return c;
}

static PGresult *pg_run(const char *url, const char *sql)
{
    PGconn *c = pg_connect(url);
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
        BAIL_OUT("raw %s: %s", sql, PQerrorMessage(c));
    PQfinish(c);
    return r;
}

/* A fresh database named after the file ("main.db" -> chatgw_t_main); the URL of
 * CHATGW_TEST_PG_URL with its database replaced. */
static void pg_fresh(char *buf, size_t size, const char *name)
{
    char db[64], sql[160];
    const char *slash = strrchr(pg_url, '/');
    size_t k = 0;

    k = (size_t)snprintf(db, sizeof db, "chatgw_t_");
    for (; *name && *name != '.' && k + 1 < sizeof db; name++)
        db[k++] = (*name >= 'a' && *name <= 'z') || (*name >= '0' && *name <= '9') ? *name : '_';
    db[k] = '\0';
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s", db);
    PQclear(pg_run(pg_url, sql));
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", db);
    PQclear(pg_run(pg_url, sql));
    snprintf(buf, size, "%.*s/%s", (int)(slash - pg_url), pg_url, db);
}

/* The SQLite-only statements of these tests in PostgreSQL's words. */
static const char *pg_translate(const char *sql, char *buf, size_t size)
{
    int v;
    if (strcmp(sql, "PRAGMA user_version") == 0)
        return "SELECT coalesce(max(version), 0) FROM chatgw_schema";
    if (sscanf(sql, "PRAGMA user_version = %d", &v) == 1) {
        snprintf(buf, size, "UPDATE chatgw_schema SET version = %d", v);
        return buf;
    }
    if (strstr(sql, "sqlite_master"))
        return "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public' "
               "AND table_name IN ('users','tokens','sessions','messages','rules')";
    if (strstr(sql, "typeof(hash) = 'blob'")) {
        snprintf(buf, size, "SELECT pg_typeof(hash) = 'bytea'::regtype FROM tokens %s",
                 strstr(sql, "WHERE"));
        return buf;
    }
    return sql;
}
#endif

static void path_in_tmp(char *buf, size_t size, const char *name)
{
#ifdef HAVE_POSTGRES
    if (pg_url) {
        pg_fresh(buf, size, name);
        return;
    }
#endif
    snprintf(buf, size, "%s/%s", tmpdir, name);
}

/* The tests' own connection, to look behind the store's back. */
static sqlite3 *raw_open(const char *path)
{
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK)
        BAIL_OUT("raw open %s: %s", path, db ? sqlite3_errmsg(db) : "no memory");
    sqlite3_busy_timeout(db, 5000);
    return db;
}

static long long raw_int(const char *path, const char *sql)
{
    sqlite3 *db;
    sqlite3_stmt *s = NULL;
    long long v = -1;
#ifdef HAVE_POSTGRES
    if (pg_url) {
        char buf[400];
        PGresult *r = pg_run(path, pg_translate(sql, buf, sizeof buf));
        if (PQntuples(r) > 0) {
            const char *t = PQgetvalue(r, 0, 0);
            v = strcmp(t, "t") == 0 ? 1 : strcmp(t, "f") == 0 ? 0 : strtoll(t, NULL, 10);
        }
        PQclear(r);
        return v;
    }
#endif
    db = raw_open(path);
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
        BAIL_OUT("raw prepare %s: %s", sql, sqlite3_errmsg(db));
    if (sqlite3_step(s) == SQLITE_ROW)
        v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return v;
}

static char *raw_text(const char *path, const char *sql, char *buf, size_t size)
{
    sqlite3 *db;
    sqlite3_stmt *s = NULL;
    buf[0] = '\0';
#ifdef HAVE_POSTGRES
    if (pg_url) {
        PGresult *r = pg_run(path, sql);
        if (PQntuples(r) > 0)
            snprintf(buf, size, "%s", PQgetvalue(r, 0, 0));
        PQclear(r);
        return buf;
    }
#endif
    db = raw_open(path);
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
        BAIL_OUT("raw prepare %s: %s", sql, sqlite3_errmsg(db));
    if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_text(s, 0))
        snprintf(buf, size, "%s", (const char *)sqlite3_column_text(s, 0));
    sqlite3_finalize(s);
    sqlite3_close(db);
    return buf;
}

static void raw_exec(const char *path, const char *sql)
{
    sqlite3 *db;
#ifdef HAVE_POSTGRES
    if (pg_url) {
        char buf[400];
        PQclear(pg_run(path, pg_translate(sql, buf, sizeof buf)));
        return;
    }
#endif
    db = raw_open(path);
    if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
        BAIL_OUT("raw exec %s: %s", sql, sqlite3_errmsg(db));
    sqlite3_close(db);
}

static struct store *open_migrated(const char *path)
{
    struct store *st = NULL;
    struct cgw_error err;
    if (store_open(path, true, 5000, &st, &err) != CGW_OK)
        BAIL_OUT("store_open %s: %s", path, err.text);
    if (store_migrate(st, NULL, &err) != CGW_OK)
        BAIL_OUT("store_migrate %s: %s", path, err.text);
    return st;
}

static bool has_text(const struct cgw_error *err, const char *needle)
{
    return strstr(err->text, needle) != NULL;
}

static void new_session(struct store *st, int64_t owner, const char *name, int64_t updated_ms,
                        bool archived, char *id_out)
{
    struct store_session s = {0};
    struct cgw_error err;
    if (cgw_uuid_v4(s.id) < 0)
        BAIL_OUT("no uuid");
    s.owner = owner;
    snprintf(s.provider, sizeof s.provider, "claude");
    s.project_path = "/srv/projects/demo";
    s.name = (char *)name;
    s.archived = archived;
    s.host = "hostA";
    s.created_ms = 1000;
    s.updated_ms = updated_ms;
    if (store_session_create(st, &s, &err) != CGW_OK)
        BAIL_OUT("session create: %s", err.text);
    memcpy(id_out, s.id, sizeof s.id);
}

/* ---- schema --------------------------------------------------------------------- */

static void test_migrate(void)
{
    char path[600], sql[128];
    struct store *st = NULL;
    struct cgw_error err;
    int v = -1, latest = store_schema_latest();

    path_in_tmp(path, sizeof path, "migrate.db");
    ok(latest >= 1, "the binary brings at least one migration (latest %d)", latest);
    is_int(store_open(path, true, 1000, &st, &err), CGW_OK, "open creates the database");
    if (!st)
        BAIL_OUT("open: %s", err.text);
    is_int(store_schema_version(st, &v, &err), CGW_OK, "read version of a fresh file");
    is_int(v, 0, "a fresh file is version 0");
    v = -1;
    is_int(store_migrate(st, &v, &err), CGW_OK, "migrate");
    is_int(v, latest, "migrate reports the latest version");
    is_int(raw_int(path, "PRAGMA user_version"), latest, "user_version on disk is the latest");
    is_int(raw_int(path, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN "
                         "('users','tokens','sessions','messages','rules')"),
           5, "all five tables exist");
    v = -1;
    is_int(store_migrate(st, &v, &err), CGW_OK, "migrating twice is fine");
    is_int(v, latest, "and changes nothing");

    is_int(store_begin(st, &err), CGW_OK, "begin");
    is_int(store_migrate(st, NULL, &err), CGW_ERR_INVALID, "no migration inside a transaction");
    store_rollback(st);
    store_close(st);

    /* A database from a newer binary. */
    snprintf(sql, sizeof sql, "PRAGMA user_version = %d", latest + 1);
    raw_exec(path, sql);
    st = NULL;
    is_int(store_open(path, false, 1000, &st, &err), CGW_OK, "open a newer database");
    is_int(store_migrate(st, &v, &err), CGW_ERR_CONFLICT, "a newer database is a conflict");
    ok(has_text(&err, "newer"), "the text says why: %s", err.text);
    is_int(store_schema_version(st, &v, &err), CGW_OK, "its version is readable");
    is_int(v, latest + 1, "and untouched");
    store_close(st);
}

static void test_wal_and_pragmas(void)
{
    char path[600], mode[32];
    struct store *st;

    if (pg_url) {
        diag("skipped: journal mode is SQLite's");
        return;
    }
    path_in_tmp(path, sizeof path, "wal.db");
    st = open_migrated(path);
    is_str(raw_text(path, "PRAGMA journal_mode", mode, sizeof mode), "wal",
           "journal mode is WAL on disk");
    store_close(st);
    is_str(raw_text(path, "PRAGMA journal_mode", mode, sizeof mode), "wal",
           "and stays WAL after close");
}

static void test_open_errors(void)
{
    char path[600];
    struct store *st = (struct store *)&st;
    struct cgw_error err = {0};
    FILE *f;

    if (pg_url) {
        /* Port 1 on loopback: nothing listens there. */
        is_int(store_open("postgresql://chatgw@127.0.0.1:1/none?connect_timeout=5", true, 100, &st,
                          &err),
               CGW_ERR_BACKEND, "a server that is not there is BACKEND");
        ok(st == NULL, "and no handle");
        ok(has_text(&err, "store: open PostgreSQL"), "the text names it: %s", err.text);
        ok(!has_text(&err, "chatgw@"), "but not the URI (it may hold a password): %s", err.text);
        is_int(store_open("", true, 100, &st, &err), CGW_ERR_INVALID, "an empty path is invalid");
        return;
    }
    path_in_tmp(path, sizeof path, "no/such/dir/x.db");
    is_int(store_open(path, true, 100, &st, &err), CGW_ERR_BACKEND,
           "a missing directory is a backend error");
    ok(st == NULL, "and no handle");
    ok(has_text(&err, "store: open") && has_text(&err, path), "the text names it: %s", err.text);

    path_in_tmp(path, sizeof path, "absent.db");
    is_int(store_open(path, false, 100, &st, &err), CGW_ERR_BACKEND,
           "without create a missing file is a backend error");
    ok(access(path, F_OK) != 0, "and it was not created");

    path_in_tmp(path, sizeof path, "garbage.db");
    f = fopen(path, "w");
    if (!f)
        BAIL_OUT("fopen %s", path);
    for (int i = 0; i < 200; i++)
        fputs("this is not a database file at all. ", f);
    fclose(f);
    is_int(store_open(path, false, 100, &st, &err), CGW_ERR_BACKEND,
           "a file that is not a database is a backend error");
    ok(has_text(&err, "not a database"), "the text says so: %s", err.text);

    is_int(store_open("", true, 100, &st, &err), CGW_ERR_INVALID, "an empty path is invalid");
}

/* ---- users --------------------------------------------------------------------- */

static void test_users(struct store *st)
{
    struct store_user u, *list = NULL;
    struct cgw_error err;
    int64_t id = 0, id2 = 0;
    size_t n = 0;
    char long_name[STORE_NAME_MAX + 2];
    const char *bad[] = {"", "-x", ".x", "_x", "a b", "a/b", "é", "a;drop", "x\n"};

    is_int(store_user_add(st, "alice", &id, &err), CGW_OK, "add alice");
    ok(id > 0, "alice has an id");
    is_int(store_user_add(st, "Bob.smith-2_x", &id2, &err), CGW_OK, "add a name with . - _");
    ok(id2 > id, "ids increase");
    is_int(store_user_add(st, "alice", NULL, &err), CGW_ERR_CONFLICT, "duplicate name");
    ok(has_text(&err, "alice"), "the text names the user: %s", err.text);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        is_int(store_user_add(st, bad[i], NULL, &err), CGW_ERR_INVALID, "invalid name #%zu", i);
    is_int(store_user_add(st, NULL, NULL, &err), CGW_ERR_INVALID, "NULL name");
    memset(long_name, 'a', sizeof long_name);
    long_name[STORE_NAME_MAX + 1] = '\0';
    ok(!store_user_name_valid(long_name), "%d characters is too long", STORE_NAME_MAX + 1);
    long_name[STORE_NAME_MAX] = '\0';
    ok(store_user_name_valid(long_name), "%d characters is fine", STORE_NAME_MAX);
    is_int(store_user_add(st, long_name, NULL, &err), CGW_OK, "add the longest name");

    memset(&u, 0xff, sizeof u);
    is_int(store_user_get(st, "alice", &u, &err), CGW_OK, "get alice");
    is_int(u.id, id, "by name: id");
    is_str(u.name, "alice", "by name: name");
    ok(!u.disabled, "by name: enabled");
    ok(u.created_ms > 1600000000000LL, "by name: created_ms is a time");
    is_int(store_user_get_by_id(st, id2, &u, &err), CGW_OK, "get by id");
    is_str(u.name, "Bob.smith-2_x", "by id: name");
    is_int(store_user_get(st, "carol", &u, &err), CGW_ERR_NOT_FOUND, "unknown user");
    is_int(store_user_get_by_id(st, 999999, &u, &err), CGW_ERR_NOT_FOUND, "unknown id");

    is_int(store_user_set_disabled(st, "alice", true, &err), CGW_OK, "disable alice");
    store_user_get(st, "alice", &u, &err);
    ok(u.disabled, "alice is disabled");
    is_int(store_user_set_disabled(st, "alice", true, &err), CGW_OK, "disable again is fine");
    is_int(store_user_set_disabled(st, "alice", false, &err), CGW_OK, "enable alice");
    store_user_get(st, "alice", &u, &err);
    ok(!u.disabled, "alice is enabled");
    is_int(store_user_set_disabled(st, "carol", true, &err), CGW_ERR_NOT_FOUND,
           "disable an unknown user");

    is_int(store_user_list(st, &list, &n, &err), CGW_OK, "list users");
    is_int(n, 3, "three users");
    if (n == 3) {
        is_str(list[0].name, "Bob.smith-2_x", "ordered by name (1)");
        is_str(list[1].name, long_name, "ordered by name (2)");
        is_str(list[2].name, "alice", "ordered by name (3)");
    }
    free(list);
}

/* ---- tokens -------------------------------------------------------------------- */

static void test_tokens(struct store *st, const char *path)
{
    struct store_token t, *list = NULL;
    struct cgw_error err;
    struct store_user alice, bob;
    unsigned char hash[32], hash2[32];
    int64_t id = 0, id2 = 0, id3 = 0;
    bool disabled = true;
    size_t n = 0;
    char sql[160];

    for (int i = 0; i < 32; i++) {
        hash[i] = (unsigned char)(i * 7 + 1);
        hash2[i] = (unsigned char)(255 - i);
    }
    hash[5] = 0; /* a NUL inside must survive: the hash is a blob, not text */
    if (store_user_get(st, "alice", &alice, &err) != CGW_OK ||
        store_user_get(st, "Bob.smith-2_x", &bob, &err) != CGW_OK)
        BAIL_OUT("users missing: %s", err.text);

    is_int(store_token_add(st, alice.id, "pubAAAAAAAAAAAAA", hash, "laptop", &id, &err), CGW_OK,
           "add a token");
    ok(id > 0, "it has an id");
    is_int(store_token_add(st, alice.id, "pubAAAAAAAAAAAAA", hash2, "", NULL, &err),
           CGW_ERR_CONFLICT, "same public id again");
    is_int(store_token_add(st, 999999, "pubCCCCCCCCCCCCC", hash2, "", NULL, &err),
           CGW_ERR_NOT_FOUND, "token of an unknown user");
    is_int(store_token_add(st, alice.id, "012345678901234567890123456789", hash2, "", NULL, &err),
           CGW_ERR_INVALID, "public id too long");
    is_int(store_token_add(st, alice.id, "pubDDDDDDDDDDDDD", NULL, "", NULL, &err), CGW_ERR_INVALID,
           "no hash");
    is_int(store_token_add(st, alice.id, "pubBBBBBBBBBBBBB", hash2, NULL, &id2, &err), CGW_OK,
           "add a second token without label");
    is_int(store_token_add(st, bob.id, "pubEEEEEEEEEEEEE", hash2, "ci", &id3, &err), CGW_OK,
           "add bob's token");

    snprintf(sql, sizeof sql, "SELECT length(hash) FROM tokens WHERE id = %lld", (long long)id);
    is_int(raw_int(path, sql), 32, "the hash is stored as 32 bytes");
    snprintf(sql, sizeof sql, "SELECT typeof(hash) = 'blob' FROM tokens WHERE id = %lld",
             (long long)id);
    is_int(raw_int(path, sql), 1, "as a blob");

    memset(&t, 0, sizeof t);
    is_int(store_token_find(st, "pubAAAAAAAAAAAAA", &t, &disabled, &err), CGW_OK, "find it");
    is_int(t.id, id, "id");
    is_int(t.user_id, alice.id, "user id");
    is_str(t.user_name, "alice", "user name");
    is_str(t.public_id, "pubAAAAAAAAAAAAA", "public id");
    is_str(t.label, "laptop", "label");
    ok(memcmp(t.hash, hash, 32) == 0, "hash round-trips byte for byte");
    ok(!t.revoked, "not revoked");
    is_int(t.last_used_ms, 0, "never used");
    ok(!disabled, "owner enabled");
    is_int(store_token_find(st, "nope", &t, NULL, &err), CGW_ERR_NOT_FOUND, "unknown public id");

    store_user_set_disabled(st, "alice", true, &err);
    store_token_find(st, "pubAAAAAAAAAAAAA", &t, &disabled, &err);
    ok(disabled, "a disabled owner is reported");
    store_user_set_disabled(st, "alice", false, &err);

    /* Touch: first use writes, then at most once a minute. */
    int64_t before = cgw_now_ms();
    is_int(store_token_touch(st, id, &err), CGW_OK, "touch");
    store_token_find(st, "pubAAAAAAAAAAAAA", &t, NULL, &err);
    ok(t.last_used_ms >= before && t.last_used_ms <= cgw_now_ms(), "last_used_ms set to now");
    int64_t recent = cgw_now_ms() - 30000;
    snprintf(sql, sizeof sql, "UPDATE tokens SET last_used_ms = %lld WHERE id = %lld",
             (long long)recent, (long long)id);
    raw_exec(path, sql);
    is_int(store_token_touch(st, id, &err), CGW_OK, "touch again 30 s later");
    store_token_find(st, "pubAAAAAAAAAAAAA", &t, NULL, &err);
    is_int(t.last_used_ms, recent, "not written within the minute");
    snprintf(sql, sizeof sql, "UPDATE tokens SET last_used_ms = %lld WHERE id = %lld",
             (long long)(cgw_now_ms() - 120000), (long long)id);
    raw_exec(path, sql);
    before = cgw_now_ms();
    store_token_touch(st, id, &err);
    store_token_find(st, "pubAAAAAAAAAAAAA", &t, NULL, &err);
    ok(t.last_used_ms >= before, "written again after two minutes");
    is_int(store_token_touch(st, 999999, &err), CGW_OK, "touching an unknown token is harmless");

    /* A read snapshot (the gateway's token + session lookups): reads join it, a due
     * touch waits for its end, other writes and transactions are refused inside. */
    snprintf(sql, sizeof sql, "UPDATE tokens SET last_used_ms = %lld WHERE id = %lld",
             (long long)(cgw_now_ms() - 120000), (long long)id);
    raw_exec(path, sql);
    is_int(store_read_begin(st, &err), CGW_OK, "read snapshot begins");
    is_int(store_read_begin(st, &err), CGW_ERR_INVALID, "no nested snapshot");
    is_int(store_begin(st, &err), CGW_ERR_INVALID, "no write transaction inside");
    is_int(store_token_find(st, "pubAAAAAAAAAAAAA", &t, NULL, &err), CGW_OK, "a read inside");
    int64_t stale = t.last_used_ms;
    is_int(store_token_touch(st, id, &err), CGW_OK, "touch inside is accepted");
    store_token_find(st, "pubAAAAAAAAAAAAA", &t, NULL, &err);
    is_int(t.last_used_ms, stale, "but not written yet");
    is_int(store_token_revoke(st, id, &err), CGW_ERR_INVALID, "other writes are refused");
    before = cgw_now_ms();
    store_read_end(st);
    store_token_find(st, "pubAAAAAAAAAAAAA", &t, NULL, &err);
    ok(t.last_used_ms >= before, "the touch ran when the snapshot ended");
    ok(!t.revoked, "the refused write did nothing");
    store_read_end(st); /* no snapshot open: nothing happens */
    is_int(store_begin(st, &err), CGW_OK, "transactions work again");
    store_rollback(st);

    is_int(store_token_revoke(st, id, &err), CGW_OK, "revoke");
    store_token_find(st, "pubAAAAAAAAAAAAA", &t, NULL, &err);
    ok(t.revoked, "revoked");
    is_int(store_token_revoke(st, id, &err), CGW_OK, "revoke again is fine");
    is_int(store_token_revoke(st, 999999, &err), CGW_ERR_NOT_FOUND, "revoke an unknown token");

    is_int(store_token_list(st, alice.id, &list, &n, &err), CGW_OK, "list alice's tokens");
    is_int(n, 2, "two");
    if (n == 2) {
        is_int(list[0].id, id, "oldest first (1)");
        is_int(list[1].id, id2, "oldest first (2)");
        is_str(list[1].label, "", "no label is empty");
        ok(list[0].revoked && !list[1].revoked, "revoked flags");
    }
    free(list);
    is_int(store_token_list(st, 0, &list, &n, &err), CGW_OK, "list all tokens");
    is_int(n, 3, "three");
    if (n == 3)
        is_str(list[2].user_name, "Bob.smith-2_x", "with their owners");
    free(list);
}

/* ---- sessions ------------------------------------------------------------------ */

static void test_sessions(struct store *st, const char *path)
{
    struct store_user alice, bob;
    struct store_session s = {0}, got, *list = NULL;
    struct cgw_error err, err2;
    char ids[6][CGW_UUID_LEN + 1], bob_id[CGW_UUID_LEN + 1], sql[200];
    int64_t total = -1, seq = -1;
    size_t n = 0;

    if (store_user_get(st, "alice", &alice, &err) != CGW_OK ||
        store_user_get(st, "Bob.smith-2_x", &bob, &err) != CGW_OK)
        BAIL_OUT("users missing: %s", err.text);

    /* Create and get. */
    cgw_uuid_v4(s.id);
    s.owner = alice.id;
    snprintf(s.provider, sizeof s.provider, "codex");
    s.project_path = "/srv/p";
    s.name = NULL;
    is_int(store_session_create(st, &s, &err), CGW_OK, "create a session");
    is_int(store_session_create(st, &s, &err), CGW_ERR_CONFLICT, "same id again");
    memcpy(ids[5], s.id, sizeof s.id);
    memset(&got, 0, sizeof got);
    is_int(store_session_get(st, s.id, alice.id, &got, &err), CGW_OK, "get it as the owner");
    is_str(got.id, s.id, "id");
    is_int(got.owner, alice.id, "owner");
    is_str(got.provider, "codex", "provider");
    is_str(got.project_path, "/srv/p", "project path");
    is_str(got.name, "", "no name is empty");
    ok(got.native_id == NULL, "no native id yet");
    ok(!got.archived, "not archived");
    ok(got.created_ms > 0 && got.updated_ms == got.created_ms, "times default to now");
    is_int(got.last_seq, 0, "last_seq starts at 0");
    ok(got.host == NULL, "no host given: no home host (NULL)");
    store_session_clear(&got);
    is_int(store_session_get(st, s.id, bob.id, &got, &err), CGW_ERR_NOT_FOUND,
           "another owner gets NOT_FOUND");
    is_int(store_session_get(st, "00000000-0000-4000-8000-000000000000", bob.id, &got, &err2),
           CGW_ERR_NOT_FOUND, "like a missing session");
    is_int(store_session_get(st, s.id, 0, &got, &err), CGW_OK, "owner 0 is unrestricted");
    store_session_clear(&got);

    /* The home host (DESIGN 12): kept as given; "" is no host, like NULL. */
    struct store_session homed = s;
    cgw_uuid_v4(homed.id);
    homed.host = "host-A.example";
    is_int(store_session_create(st, &homed, &err), CGW_OK, "create a session with a home host");
    is_int(store_session_get(st, homed.id, alice.id, &got, &err), CGW_OK, "get it");
    is_str(got.host, "host-A.example", "its home host reads back");
    store_session_clear(&got);
    is_int(store_session_delete(st, homed.id, alice.id, &err), CGW_OK, "delete it");
    cgw_uuid_v4(homed.id);
    homed.host = "";
    is_int(store_session_create(st, &homed, &err), CGW_OK, "create one with host \"\"");
    is_int(store_session_get(st, homed.id, 0, &got, &err), CGW_OK, "get it");
    ok(got.host == NULL, "an empty host is stored as none");
    store_session_clear(&got);
    is_int(store_session_delete(st, homed.id, alice.id, &err), CGW_OK, "delete it");

    struct store_session bad = s;
    snprintf(bad.id, sizeof bad.id, "not-a-uuid");
    is_int(store_session_create(st, &bad, &err), CGW_ERR_INVALID, "id must be a UUID");
    bad = s;
    cgw_uuid_v4(bad.id);
    bad.owner = 999999;
    is_int(store_session_create(st, &bad, &err), CGW_ERR_NOT_FOUND, "owner must exist");
    bad.owner = alice.id;
    bad.project_path = NULL;
    is_int(store_session_create(st, &bad, &err), CGW_ERR_INVALID, "project path required");
    bad.project_path = "/x";
    bad.provider[0] = '\0';
    is_int(store_session_create(st, &bad, &err), CGW_ERR_INVALID, "provider required");

    /* Listing: order by updated_ms desc then id, paging, total, archived filter. */
    new_session(st, alice.id, "a", 1000, false, ids[0]);
    new_session(st, alice.id, "b", 3000, false, ids[1]);
    new_session(st, alice.id, "c", 2000, true, ids[2]);
    new_session(st, alice.id, "d", 3000, false, ids[3]);
    new_session(st, alice.id, "e", 500, true, ids[4]);
    new_session(st, bob.id, "bob's", 9000, false, bob_id);
    /* ids[5] (from above) has updated_ms = now: newest. */
    const char *tie_first = strcmp(ids[1], ids[3]) < 0 ? ids[1] : ids[3];
    const char *tie_second = tie_first == ids[1] ? ids[3] : ids[1];

    is_int(store_session_list(st, alice.id, 0, 50, 0, &list, &n, &total, &err), CGW_OK,
           "list alice's active sessions");
    is_int(total, 4, "total 4");
    is_int(n, 4, "4 on the page");
    if (n == 4) {
        is_str(list[0].id, ids[5], "newest first");
        is_str(list[1].id, tie_first, "equal times ordered by id (1)");
        is_str(list[2].id, tie_second, "equal times ordered by id (2)");
        is_str(list[3].id, ids[0], "oldest last");
        is_str(list[3].name, "a", "names come along");
        is_str(list[3].host, "hostA", "home hosts come along");
        ok(list[0].host == NULL, "and no host where none was given");
    }
    store_session_list_free(list, n);
    is_int(store_session_list(st, alice.id, 0, 2, 1, &list, &n, &total, &err), CGW_OK,
           "a page: limit 2 offset 1");
    is_int(total, 4, "total counts without paging");
    is_int(n, 2, "2 on the page");
    if (n == 2) {
        is_str(list[0].id, tie_first, "page row 1");
        is_str(list[1].id, tie_second, "page row 2");
    }
    store_session_list_free(list, n);
    is_int(store_session_list(st, alice.id, 0, 50, 10, &list, &n, &total, &err), CGW_OK,
           "offset beyond the end");
    ok(n == 0 && total == 4, "empty page, total still 4");
    store_session_list_free(list, n);
    is_int(store_session_list(st, alice.id, 1, 50, 0, &list, &n, &total, &err), CGW_OK,
           "archived only");
    is_int(n, 2, "two archived");
    if (n == 2) {
        is_str(list[0].id, ids[2], "archived, newest first");
        ok(list[0].archived && list[1].archived, "all archived");
    }
    store_session_list_free(list, n);
    is_int(store_session_list(st, alice.id, -1, 0, 0, &list, &n, &total, &err), CGW_OK,
           "both states, no limit");
    ok(n == 6 && total == 6, "six sessions (n %zu, total %lld)", n, (long long)total);
    store_session_list_free(list, n);
    is_int(store_session_list(st, bob.id, -1, 50, 0, &list, &n, NULL, &err), CGW_OK,
           "bob's sessions (total may be NULL)");
    ok(n == 1 && strcmp(list[0].id, bob_id) == 0, "only his own");
    store_session_list_free(list, n);
    is_int(store_session_list(st, 0, -1, 50, 0, &list, &n, &total, &err), CGW_OK,
           "owner 0: everyone's");
    is_int(total, 7, "seven in all");
    store_session_list_free(list, n);

    /* Update. */
    is_int(store_session_update(st, ids[0], alice.id, "renamed", -1, &err), CGW_OK, "rename");
    store_session_get(st, ids[0], alice.id, &got, &err);
    is_str(got.name, "renamed", "name changed");
    ok(!got.archived, "archived untouched");
    ok(got.updated_ms > 1000, "updated_ms bumped");
    store_session_clear(&got);
    is_int(store_session_update(st, ids[0], alice.id, NULL, 1, &err), CGW_OK, "archive");
    store_session_get(st, ids[0], alice.id, &got, &err);
    ok(got.archived, "archived");
    is_str(got.name, "renamed", "name untouched");
    store_session_clear(&got);
    is_int(store_session_update(st, ids[0], bob.id, "mine now", 0, &err), CGW_ERR_NOT_FOUND,
           "another owner cannot update");
    store_session_get(st, ids[0], 0, &got, &err);
    is_str(got.name, "renamed", "and nothing changed");
    store_session_clear(&got);

    /* Native id: first sight wins. */
    is_int(store_session_set_native_id(st, ids[1], "native-1", &err), CGW_OK, "set native id");
    is_int(store_session_set_native_id(st, ids[1], "native-1", &err), CGW_OK, "same again");
    is_int(store_session_set_native_id(st, ids[1], "native-2", &err), CGW_ERR_CONFLICT,
           "a different one is a conflict");
    store_session_get(st, ids[1], alice.id, &got, &err);
    is_str(got.native_id, "native-1", "the first one stays");
    store_session_clear(&got);
    is_int(store_session_set_native_id(st, "00000000-0000-4000-8000-000000000000", "x", &err),
           CGW_ERR_NOT_FOUND, "unknown session");

    /* Touch and last_seq. */
    is_int(store_session_touch(st, ids[4], &err), CGW_OK, "touch");
    store_session_get(st, ids[4], 0, &got, &err);
    ok(got.updated_ms > 500, "updated_ms now");
    store_session_clear(&got);
    is_int(store_session_touch(st, "00000000-0000-4000-8000-000000000000", &err), CGW_ERR_NOT_FOUND,
           "touch an unknown session");
    is_int(store_session_last_seq(st, ids[1], &seq, &err), CGW_OK, "last seq");
    is_int(seq, 0, "0 without messages");
    is_int(store_session_last_seq(st, "00000000-0000-4000-8000-000000000000", &seq, &err),
           CGW_ERR_NOT_FOUND, "last seq of an unknown session");

    /* Delete cascades to messages; owner-checked. */
    is_int(store_message_add(st, ids[2], 1, "text", "{\"seq\":1}", &err), CGW_OK, "a message");
    is_int(store_message_add(st, ids[2], 2, "text", "{\"seq\":2}", &err), CGW_OK, "another");
    snprintf(sql, sizeof sql, "SELECT count(*) FROM messages WHERE session_id = '%s'", ids[2]);
    is_int(raw_int(path, sql), 2, "two rows stored");
    is_int(store_session_delete(st, ids[2], bob.id, &err), CGW_ERR_NOT_FOUND,
           "another owner cannot delete");
    is_int(raw_int(path, sql), 2, "still there");
    is_int(store_session_delete(st, ids[2], alice.id, &err), CGW_OK, "delete");
    is_int(raw_int(path, sql), 0, "its messages are gone");
    is_int(store_session_get(st, ids[2], 0, &got, &err), CGW_ERR_NOT_FOUND, "and so is it");
    is_int(store_session_delete(st, ids[2], alice.id, &err), CGW_ERR_NOT_FOUND,
           "delete twice is NOT_FOUND");
}

/* ---- messages ------------------------------------------------------------------ */

static bool seqs_are(const struct store_message *m, size_t n, int64_t first, size_t want)
{
    if (n != want)
        return false;
    for (size_t i = 0; i < n; i++) {
        char json[64];
        snprintf(json, sizeof json, "{\"seq\":%lld}", (long long)(first + (int64_t)i));
        if (m[i].seq != first + (int64_t)i || strcmp(m[i].json, json) != 0 ||
            strcmp(m[i].kind, "text") != 0)
            return false;
    }
    return true;
}

static void test_messages(struct store *st, const char *path)
{
    struct store_user alice;
    struct store_message *m = NULL;
    struct cgw_error err;
    char sid[CGW_UUID_LEN + 1], json[64], sql[200];
    int64_t seq = 0;
    size_t n = 0;
    bool more = false;
    int fails = 0;

    if (store_user_get(st, "alice", &alice, &err) != CGW_OK)
        BAIL_OUT("alice missing: %s", err.text);
    new_session(st, alice.id, "msgs", 1000, false, sid);

    for (int i = 1; i <= 10; i++) {
        snprintf(json, sizeof json, "{\"seq\":%d}", i);
        if (store_message_add(st, sid, i, "text", json, &err) != CGW_OK)
            fails++;
    }
    is_int(fails, 0, "add seq 1..10");
    store_session_last_seq(st, sid, &seq, &err);
    is_int(seq, 10, "last_seq raised to 10");
    is_int(store_message_add(st, sid, 5, "text", "{\"seq\":5}", &err), CGW_OK,
           "the same event again is an idempotent replay");
    is_int(store_message_add(st, sid, 5, "text", "{\"seq\":5,\"x\":1}", &err), CGW_ERR_CONFLICT,
           "a different event at the same seq is a conflict");
    ok(has_text(&err, "seq 5"), "the text names the seq: %s", err.text);
    snprintf(sql, sizeof sql, "SELECT json FROM messages WHERE session_id = '%s' AND seq = 5", sid);
    is_str(raw_text(path, sql, json, sizeof json), "{\"seq\":5}", "history unchanged");
    snprintf(sql, sizeof sql, "SELECT count(*) FROM messages WHERE session_id = '%s'", sid);
    is_int(raw_int(path, sql), 10, "still ten rows");
    store_session_last_seq(st, sid, &seq, &err);
    is_int(seq, 10, "last_seq still 10");

    is_int(store_message_add(st, sid, 15, "text", "{\"seq\":15}", &err), CGW_OK, "seq 15");
    is_int(store_message_add(st, sid, 12, "text", "{\"seq\":12}", &err), CGW_OK, "seq 12 after 15");
    store_session_last_seq(st, sid, &seq, &err);
    is_int(seq, 15, "last_seq never goes down");

    is_int(store_message_add(st, "00000000-0000-4000-8000-000000000000", 1, "text", "{}", &err),
           CGW_ERR_NOT_FOUND, "a message of an unknown session");
    is_int(store_message_add(st, sid, 0, "text", "{}", &err), CGW_ERR_INVALID, "seq 0");
    is_int(store_message_add(st, sid, 20, "", "{}", &err), CGW_ERR_INVALID, "empty kind");
    is_int(store_message_add(st, sid, 20, "a_kind_that_is_much_too_long_to_fit", "{}", &err),
           CGW_ERR_INVALID, "kind too long");
    is_int(store_message_add(st, sid, 20, "text", NULL, &err), CGW_ERR_INVALID, "no json");

    /* Paging forwards. */
    is_int(store_message_list(st, sid, 0, 0, 5, &m, &n, &more, &err), CGW_OK, "first 5");
    ok(seqs_are(m, n, 1, 5), "seq 1..5 oldest first");
    ok(more, "has more");
    store_message_list_free(m, n);
    is_int(store_message_list(st, sid, 5, 0, 5, &m, &n, &more, &err), CGW_OK, "after 5");
    ok(seqs_are(m, n, 6, 5), "seq 6..10");
    ok(more, "has more (12, 15)");
    store_message_list_free(m, n);
    is_int(store_message_list(st, sid, 10, 0, 100, &m, &n, &more, &err), CGW_OK, "after 10");
    ok(n == 2 && m[0].seq == 12 && m[1].seq == 15, "12 and 15");
    ok(!more, "no more");
    store_message_list_free(m, n);
    is_int(store_message_list(st, sid, 15, 0, 100, &m, &n, &more, &err), CGW_OK, "after 15");
    ok(n == 0 && m == NULL && !more, "nothing");
    store_message_list_free(m, n);
    is_int(store_message_list(st, sid, 5, 5, 100, &m, &n, &more, &err), CGW_OK, "empty window");
    ok(n == 0 && !more, "nothing between 5 and 5");
    store_message_list_free(m, n);

    /* Paging backwards. */
    is_int(store_message_list(st, sid, 0, 10, 3, &m, &n, &more, &err), CGW_OK, "before 10");
    ok(seqs_are(m, n, 7, 3), "the latest 3 below 10, oldest first");
    ok(more, "more below");
    store_message_list_free(m, n);
    is_int(store_message_list(st, sid, 0, 3, 5, &m, &n, &more, &err), CGW_OK, "before 3");
    ok(seqs_are(m, n, 1, 2), "1 and 2");
    ok(!more, "nothing below");
    store_message_list_free(m, n);
    is_int(store_message_list(st, sid, 2, 8, 3, &m, &n, &more, &err), CGW_OK, "between 2 and 8");
    ok(seqs_are(m, n, 3, 3), "3..5 (forwards when after_seq is given)");
    ok(more, "6 and 7 remain");
    store_message_list_free(m, n);
    is_int(store_message_list(st, sid, 0, 0, 0, &m, &n, &more, &err), CGW_OK, "limit 0");
    is_int(n, 1, "is raised to 1");
    store_message_list_free(m, n);
    is_int(store_message_list(st, sid, 0, 0, 10, &m, &n, NULL, &err), CGW_OK,
           "has_more may be NULL");
    store_message_list_free(m, n);

    /* A batch in one transaction, then the cap of 1000. */
    is_int(store_begin(st, &err), CGW_OK, "begin a batch");
    is_int(store_begin(st, &err), CGW_ERR_INVALID, "no nesting");
    fails = 0;
    for (int i = 100; i < 1200; i++) {
        snprintf(json, sizeof json, "{\"seq\":%d}", i);
        if (store_message_add(st, sid, i, "text", json, &err) != CGW_OK)
            fails++;
    }
    is_int(fails, 0, "1100 adds inside the transaction");
    is_int(store_commit(st, &err), CGW_OK, "commit");
    is_int(store_commit(st, &err), CGW_ERR_INVALID, "commit without begin");
    store_session_last_seq(st, sid, &seq, &err);
    is_int(seq, 1199, "last_seq after the batch");
    is_int(store_message_list(st, sid, 99, 0, 5000, &m, &n, &more, &err), CGW_OK, "limit 5000");
    ok(seqs_are(m, n, 100, 1000), "is capped to 1000");
    ok(more, "with more");
    store_message_list_free(m, n);

    /* A rolled-back batch leaves nothing, not even last_seq. */
    is_int(store_begin(st, &err), CGW_OK, "begin another batch");
    store_message_add(st, sid, 1500, "text", "{\"seq\":1500}", &err);
    store_session_update(st, sid, 0, "in txn", -1, &err);
    store_rollback(st);
    store_session_last_seq(st, sid, &seq, &err);
    is_int(seq, 1199, "rollback: last_seq unchanged");
    snprintf(sql, sizeof sql, "SELECT count(*) FROM messages WHERE seq = 1500");
    is_int(raw_int(path, sql), 0, "rollback: message gone");
    struct store_session got;
    store_session_get(st, sid, 0, &got, &err);
    is_str(got.name, "msgs", "rollback: rename undone");
    store_session_clear(&got);
}

/* ---- rules --------------------------------------------------------------------- */

static void test_rules(struct store *st)
{
    struct store_user alice, bob;
    struct store_rule *r = NULL;
    struct cgw_error err;
    size_t n = 0;

    if (store_user_get(st, "alice", &alice, &err) != CGW_OK ||
        store_user_get(st, "Bob.smith-2_x", &bob, &err) != CGW_OK)
        BAIL_OUT("users missing: %s", err.text);
    is_int(store_rule_add(st, alice.id, "/srv/p", "Bash(git status:*)", &err), CGW_OK, "add");
    is_int(store_rule_add(st, alice.id, "/srv/p", "Bash(git status:*)", &err), CGW_OK,
           "the same again is fine");
    is_int(store_rule_add(st, alice.id, "/srv/p", "Read", &err), CGW_OK, "another rule");
    is_int(store_rule_add(st, alice.id, "/srv/q", "Write", &err), CGW_OK, "another project");
    is_int(store_rule_add(st, bob.id, "/srv/p", "Edit", &err), CGW_OK, "another user");
    is_int(store_rule_add(st, 999999, "/srv/p", "Edit", &err), CGW_ERR_NOT_FOUND, "unknown user");
    is_int(store_rule_add(st, alice.id, "/srv/p", "", &err), CGW_ERR_INVALID, "empty rule");

    is_int(store_rule_list(st, alice.id, "/srv/p", &r, &n, &err), CGW_OK, "list");
    is_int(n, 2, "two rules, no duplicate");
    if (n == 2) {
        is_str(r[0].rule, "Bash(git status:*)", "oldest first (1)");
        is_str(r[1].rule, "Read", "oldest first (2)");
        is_str(r[0].project_path, "/srv/p", "project path");
        is_int(r[0].user_id, alice.id, "user id");
        ok(r[0].id > 0 && r[0].created_ms > 0, "id and time");
    }
    int64_t first = n ? r[0].id : 0;
    store_rule_list_free(r, n);
    is_int(store_rule_list(st, alice.id, "/srv/none", &r, &n, &err), CGW_OK, "other project");
    ok(n == 0, "empty");
    store_rule_list_free(r, n);

    is_int(store_rule_delete(st, bob.id, first, &err), CGW_ERR_NOT_FOUND,
           "another user cannot delete it");
    is_int(store_rule_delete(st, alice.id, first, &err), CGW_OK, "delete");
    is_int(store_rule_delete(st, alice.id, first, &err), CGW_ERR_NOT_FOUND, "delete twice");
    store_rule_list(st, alice.id, "/srv/p", &r, &n, &err);
    ok(n == 1 && strcmp(r[0].rule, "Read") == 0, "one left");
    store_rule_list_free(r, n);
}

/* ---- attachments --------------------------------------------------------------- */

static void new_attachment(struct store_attachment *m, const char *sid, int64_t user,
                           const char *name, const char *type)
{
    memset(m, 0, sizeof *m);
    if (cgw_id_new("att", m->id, sizeof m->id) < 0)
        BAIL_OUT("no id");
    snprintf(m->session_id, sizeof m->session_id, "%s", sid);
    m->user_id = user;
    snprintf(m->name, sizeof m->name, "%s", name);
    snprintf(m->mime_type, sizeof m->mime_type, "%s", type);
}

static void test_attachments(struct store *st)
{
    struct store_user alice, bob;
    struct store_attachment m, got, *list = NULL;
    struct cgw_error err;
    char sid[CGW_UUID_LEN + 1], other[CGW_UUID_LEN + 1],
        list_first[STORE_ATTACHMENT_ID_LEN + 1] = "";
    unsigned char png[300];
    void *data = NULL;
    size_t len = 0, n = 0;
    int64_t count = -1, bytes = -1;

    if (store_user_get(st, "alice", &alice, &err) != CGW_OK ||
        store_user_get(st, "Bob.smith-2_x", &bob, &err) != CGW_OK)
        BAIL_OUT("users missing: %s", err.text);
    for (size_t i = 0; i < sizeof png; i++)
        png[i] = (unsigned char)i; /* NUL bytes and all: a blob, not text */
    new_session(st, alice.id, "att", 5000, false, sid);
    new_session(st, alice.id, "att2", 5000, false, other);

    new_attachment(&m, sid, alice.id, "shot.png", "image/png");
    is_int(store_attachment_put(st, &m, png, sizeof png, 3, 1000, &err), CGW_OK, "put");
    ok(store_attachment_id_valid(m.id), "the id has the att_<uuid> form: %s", m.id);
    is_int(store_attachment_put(st, &m, png, 1, 3, 1000, &err), CGW_ERR_CONFLICT, "same id again");
    is_int(store_attachment_get(st, m.id, &got, &data, &len, &err), CGW_OK, "get");
    ok(len == sizeof png && data && memcmp(data, png, len) == 0, "the bytes come back whole");
    free(data);
    is_str(got.session_id, sid, "session id");
    is_int(got.user_id, alice.id, "user id");
    is_str(got.name, "shot.png", "name");
    is_str(got.mime_type, "image/png", "type");
    is_int(got.size, (int64_t)sizeof png, "size");
    ok(got.created_ms > 0, "created");
    memset(&got, 0, sizeof got);
    is_int(store_attachment_meta(st, m.id, &got, &err), CGW_OK, "meta");
    is_int(got.size, (int64_t)sizeof png, "meta has the size");
    is_int(store_attachment_meta(st, "att_00000000-0000-4000-8000-000000000000", &got, &err),
           CGW_ERR_NOT_FOUND, "unknown id");
    is_int(store_attachment_meta(st, "../etc", &got, &err), CGW_ERR_NOT_FOUND, "malformed id");

    new_attachment(&m, sid, bob.id, "b.txt", "text/plain");
    is_int(store_attachment_put(st, &m, "x", 1, 3, 1000, &err), CGW_ERR_NOT_FOUND,
           "another user's session is not found");
    new_attachment(&m, "00000000-0000-4000-8000-000000000000", alice.id, "b.txt", "text/plain");
    is_int(store_attachment_put(st, &m, "x", 1, 3, 1000, &err), CGW_ERR_NOT_FOUND,
           "unknown session");
    new_attachment(&m, sid, alice.id, "", "text/plain");
    is_int(store_attachment_put(st, &m, "x", 1, 3, 1000, &err), CGW_ERR_INVALID, "empty name");

    new_attachment(&m, sid, alice.id, "empty.txt", "text/plain");
    is_int(store_attachment_put(st, &m, NULL, 0, 3, 1000, &err), CGW_OK, "an empty file");
    is_int(store_attachment_get(st, m.id, &got, &data, &len, &err), CGW_OK, "get it");
    ok(len == 0 && data, "0 bytes, a buffer all the same");
    free(data);

    new_attachment(&m, sid, alice.id, "big.bin", "application/octet-stream");
    is_int(store_attachment_put(st, &m, png, 701, 3, 1000, &err), CGW_ERR_LIMIT, "over the total");
    ok(has_text(&err, "total"), "the text names the total: %s", err.text);
    is_int(store_attachment_put(st, &m, png, 300, 3, 1000, &err), CGW_OK, "up to the total");
    new_attachment(&m, sid, alice.id, "more.bin", "application/octet-stream");
    is_int(store_attachment_put(st, &m, png, 1, 3, 0, &err), CGW_ERR_LIMIT, "over the count");
    ok(has_text(&err, "holds 3"), "the text names the count: %s", err.text);
    new_attachment(&m, other, alice.id, "o.txt", "text/plain");
    is_int(store_attachment_put(st, &m, "o", 1, 3, 1000, &err), CGW_OK,
           "the limits are per session");

    is_int(store_attachments_count_size(st, sid, &count, &bytes, &err), CGW_OK, "count");
    is_int(count, 3, "three attachments");
    is_int(bytes, 600, "600 bytes");
    is_int(store_attachment_list(st, sid, 0, &list, &n, &err), CGW_OK, "list");
    is_int(n, 3, "three listed");
    if (n == 3) {
        memcpy(list_first, list[0].id, sizeof list_first);
        is_str(list[0].name, "shot.png", "oldest first");
        is_str(list[2].name, "big.bin", "newest last");
    }
    free(list);
    is_int(store_attachment_list(st, "00000000-0000-4000-8000-000000000000", 0, &list, &n, &err),
           CGW_OK, "unknown session");
    ok(n == 0 && !list, "has none");

    is_int(store_attachment_delete(st, list_first, other, alice.id, &err), CGW_ERR_NOT_FOUND,
           "delete names the session");
    is_int(store_attachment_delete(st, list_first, sid, bob.id, &err), CGW_ERR_NOT_FOUND,
           "and the owner");
    is_int(store_attachment_delete(st, list_first, sid, alice.id, &err), CGW_OK, "delete one");
    is_int(store_attachment_delete(st, list_first, sid, alice.id, &err), CGW_ERR_NOT_FOUND,
           "delete twice");
    is_int(store_attachments_count_size(st, sid, &count, &bytes, &err), CGW_OK, "count");
    ok(count == 2 && bytes == 300, "two left, 300 bytes (%lld, %lld)", (long long)count,
       (long long)bytes);
    is_int(store_session_delete(st, sid, alice.id, &err), CGW_OK, "delete the session");
    is_int(store_attachments_count_size(st, sid, &count, &bytes, &err), CGW_OK, "count again");
    ok(count == 0 && bytes == 0, "its attachments went with it");
    is_int(store_attachments_count_size(st, other, &count, &bytes, &err), CGW_OK, "the other");
    is_int(count, 1, "the other session keeps its own");
}

/* ---- locking ------------------------------------------------------------------- */

static void test_busy(const char *path)
{
    struct store *a = open_migrated(path), *b = NULL;
    struct cgw_error err;
    struct store_user u;

    if (store_open(path, false, 100, &b, &err) != CGW_OK)
        BAIL_OUT("open b: %s", err.text);
    is_int(store_begin(a, &err), CGW_OK, "a holds the write lock");
    is_int(store_user_add(a, "lockholder", NULL, &err), CGW_OK, "a writes");
    /* PostgreSQL locks rows, not the database: b waits only for the row a holds. */
    is_int(store_user_add(b, pg_url ? "lockholder" : "waiter", NULL, &err), CGW_ERR_BACKEND,
           "b gives up after its busy timeout");
    ok(has_text(&err, "store: add user") && has_text(&err, pg_url ? "lock timeout" : "locked"),
       "text: %s", err.text);
    is_int(store_user_get(b, "alice", &u, &err), CGW_OK, "b can still read (WAL)");
    is_int(store_user_get(b, "lockholder", &u, &err), CGW_ERR_NOT_FOUND,
           "but not a's uncommitted row");
    is_int(store_commit(a, &err), CGW_OK, "a commits");
    is_int(store_user_add(b, "waiter", NULL, &err), CGW_OK, "now b can write");
    store_close(a);
    store_close(b);
}

/* ---- two processes --------------------------------------------------------------- */

#define CHILD_MESSAGES 500
#define CHILD_USERS 200

enum child_status { CHILD_OK = 0, CHILD_BACKEND = 10, CHILD_OTHER = 11, CHILD_SETUP = 12 };

static void wait_for_go(int fd)
{
    char c;
    /* The parent closes the pipe to start every child at once. */
    while (read(fd, &c, 1) < 0 && errno == EINTR)
        ;
    close(fd);
}

/* Child k writes odd (k = 0) or even (k = 1) seqs and its own users. */
static int child_writer(const char *path, const char *sid, int k, int go)
{
    struct store *st = NULL;
    struct cgw_error err;
    char json[64], name[32];
    int status = CHILD_OK;

    wait_for_go(go);
    if (store_open(path, false, 20000, &st, &err) != CGW_OK)
        return err.code == CGW_ERR_BACKEND ? CHILD_BACKEND : CHILD_SETUP;
    for (int i = 0; i < CHILD_MESSAGES && status == CHILD_OK; i++) {
        int64_t seq = 2 * i + 1 + k;
        enum cgw_err e;
        snprintf(json, sizeof json, "{\"seq\":%lld}", (long long)seq);
        e = store_message_add(st, sid, seq, "text", json, &err);
        if (e == CGW_OK && i < CHILD_USERS) {
            snprintf(name, sizeof name, "proc%d-user%d", k, i);
            e = store_user_add(st, name, NULL, &err);
        }
        if (e != CGW_OK) {
            fprintf(stderr, "# child %d: %s\n", k, err.text);
            status = e == CGW_ERR_BACKEND ? CHILD_BACKEND : CHILD_OTHER;
        }
    }
    store_close(st);
    return status;
}

static int child_migrator(const char *path, int go)
{
    struct store *st = NULL;
    struct cgw_error err;
    int v = 0;

    /* Opened before the start signal, so that the migrations themselves collide. */
    if (store_open(path, true, 20000, &st, &err) != CGW_OK) {
        fprintf(stderr, "# migrator: %s\n", err.text);
        wait_for_go(go);
        return err.code == CGW_ERR_BACKEND ? CHILD_BACKEND : CHILD_OTHER;
    }
    wait_for_go(go);
    if (store_migrate(st, &v, &err) != CGW_OK) {
        fprintf(stderr, "# migrator: %s\n", err.text);
        store_close(st);
        return err.code == CGW_ERR_BACKEND ? CHILD_BACKEND : CHILD_OTHER;
    }
    store_close(st);
    return v == store_schema_latest() ? CHILD_OK : CHILD_OTHER;
}

/* Forks n children running fn(k) after a common start; returns their statuses. */
static void run_children(int n, int (*fn)(const char *, const char *, int, int), const char *path,
                         const char *sid, int *status)
{
    int go[2];
    pid_t pid[8];

    fflush(stdout);
    if (pipe(go) < 0)
        BAIL_OUT("pipe: %s", strerror(errno));
    if (n > 8)
        BAIL_OUT("too many children");
    for (int k = 0; k < n; k++) {
        pid[k] = fork();
        if (pid[k] < 0)
            BAIL_OUT("fork: %s", strerror(errno));
        if (pid[k] == 0) {
            close(go[1]);
            _exit(fn(path, sid, k, go[0]));
        }
    }
    close(go[0]);
    close(go[1]);
    for (int k = 0; k < n; k++) {
        int ws;
        status[k] = -1;
        while (waitpid(pid[k], &ws, 0) < 0) {
            if (errno != EINTR)
                BAIL_OUT("waitpid: %s", strerror(errno));
        }
        if (WIFEXITED(ws))
            status[k] = WEXITSTATUS(ws);
    }
}

static int migrator_adapter(const char *path, const char *sid, int k, int go)
{
    return child_migrator(path, go);
}

/* ---- message batches ------------------------------------------------------------- */

/* msgs[i] = seq first + i, json {"seq":N} (+ extra), kind "text"; the jsons live in buf. */
static void batch_fill(struct store_message *msgs, char (*buf)[96], size_t n, int64_t first,
                       const char *extra)
{
    for (size_t i = 0; i < n; i++) {
        msgs[i].seq = first + (int64_t)i;
        snprintf(msgs[i].kind, sizeof msgs[i].kind, "text");
        snprintf(buf[i], sizeof buf[i], "{\"seq\":%lld%s}", (long long)msgs[i].seq, extra);
        msgs[i].json = buf[i];
    }
}

static long long count_rows(const char *path, const char *sid)
{
    char sql[200];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM messages WHERE session_id = '%s'", sid);
    return raw_int(path, sql);
}

static int64_t last_seq_of(struct store *st, const char *sid)
{
    struct cgw_error err;
    int64_t seq = -1;
    if (store_session_last_seq(st, sid, &seq, &err) != CGW_OK)
        BAIL_OUT("last seq: %s", err.text);
    return seq;
}

/* A second connection (in a thread: SQLite must not be used across fork with a
 * connection open) writes a batch that overlaps one the first connection's open
 * transaction holds; the first commits once the second waits for it (PostgreSQL: its
 * statement then finds seqs taken by a commit it cannot see, and looks again). */
struct batch_writer {
    const char *path, *sid;
    enum cgw_err rc;
    struct cgw_error err;
};

static void *batch_writer_main(void *arg)
{
    struct batch_writer *w = arg;
    struct store_message msgs[4];
    char buf[4][96];
    struct store *st = NULL;

    if ((w->rc = store_open(w->path, false, 20000, &st, &w->err)) != CGW_OK)
        return NULL;
    batch_fill(msgs, buf, 4, 1001, "");
    w->rc = store_message_add_batch(st, w->sid, msgs, 4, &w->err);
    store_close(st);
    return NULL;
}

static void test_message_batch(struct store *st, const char *path)
{
    struct store_user alice;
    struct store_message msgs[120], *m = NULL;
    static char buf[120][96];
    struct cgw_error err;
    char sid[CGW_UUID_LEN + 1], sql[300], text[96];
    size_t n = 0;
    bool same = true;

    if (store_user_get(st, "alice", &alice, &err) != CGW_OK)
        BAIL_OUT("alice missing: %s", err.text);
    new_session(st, alice.id, "batches", 1000, false, sid);

    /* Order and content: every event at its own seq, listed oldest first. */
    batch_fill(msgs, buf, 100, 1, "");
    for (size_t i = 0; i < 100; i += 3)
        snprintf(msgs[i].kind, sizeof msgs[i].kind, "tool_use");
    is_int(store_message_add_batch(st, sid, msgs, 100, &err), CGW_OK, "a batch of 100");
    is_int(last_seq_of(st, sid), 100, "last_seq is the batch's highest");
    is_int(store_message_list(st, sid, 0, 0, 1000, &m, &n, NULL, &err), CGW_OK, "list");
    for (size_t i = 0; i < n && n == 100; i++)
        same = same && m[i].seq == (int64_t)i + 1 && strcmp(m[i].json, buf[i]) == 0 &&
               strcmp(m[i].kind, i % 3 == 0 ? "tool_use" : "text") == 0;
    ok(n == 100 && same, "the 100 rows in seq order with their kind and json");
    store_message_list_free(m, n);
    is_int(store_message_add_batch(st, sid, msgs, 0, &err), CGW_OK, "an empty batch is OK");
    is_int(store_message_add_batch(st, sid, NULL, 0, &err), CGW_OK, "also without an array");

    /* Replays: identical events are OK and change nothing. */
    is_int(store_message_add_batch(st, sid, msgs, 100, &err), CGW_OK, "the same batch again");
    is_int(count_rows(path, sid), 100, "still 100 rows");
    batch_fill(msgs, buf, 16, 95, "");
    is_int(store_message_add_batch(st, sid, msgs, 16, &err), CGW_OK,
           "95..110: six replays, ten new");
    is_int(count_rows(path, sid), 110, "110 rows");
    is_int(last_seq_of(st, sid), 110, "last_seq 110");

    /* Clashes: kept as they are, the others written, the first named. */
    batch_fill(msgs, buf, 6, 104, "");
    snprintf(buf[1], sizeof buf[1], "{\"seq\":105,\"x\":1}");
    snprintf(buf[3], sizeof buf[3], "{\"seq\":107,\"x\":1}");
    msgs[4].seq = 120;
    snprintf(buf[4], sizeof buf[4], "{\"seq\":120}");
    msgs[5].seq = 121;
    snprintf(buf[5], sizeof buf[5], "{\"seq\":121}");
    is_int(store_message_add_batch(st, sid, msgs, 6, &err), CGW_ERR_CONFLICT,
           "two different events at taken seqs: CONFLICT");
    ok(has_text(&err, "seq 105") && has_text(&err, "2 of 6"), "names the first and the count: %s",
       err.text);
    snprintf(sql, sizeof sql, "SELECT json FROM messages WHERE session_id = '%s' AND seq = 105",
             sid);
    is_str(raw_text(path, sql, text, sizeof text), "{\"seq\":105}", "history kept at 105");
    is_int(count_rows(path, sid), 112, "120 and 121 written");
    is_int(last_seq_of(st, sid), 121, "last_seq 121");
    batch_fill(msgs, buf, 1, 50, ",\"x\":2");
    is_int(store_message_add_batch(st, sid, msgs, 1, &err), CGW_ERR_CONFLICT, "a lone clash");
    is_int(last_seq_of(st, sid), 121, "last_seq never goes down");

    /* Errors write nothing. */
    batch_fill(msgs, buf, 3, 200, "");
    is_int(store_message_add_batch(st, "00000000-0000-4000-8000-000000000000", msgs, 3, &err),
           CGW_ERR_NOT_FOUND, "unknown session: NOT_FOUND");
    ok(has_text(&err, "no session"), "says so: %s", err.text);
    msgs[2].seq = 201;
    is_int(store_message_add_batch(st, sid, msgs, 3, &err), CGW_ERR_INVALID,
           "a repeated seq: INVALID");
    ok(has_text(&err, "must increase"), "says why: %s", err.text);
    msgs[2].seq = 150;
    is_int(store_message_add_batch(st, sid, msgs, 3, &err), CGW_ERR_INVALID,
           "a lower seq: INVALID");
    batch_fill(msgs, buf, 3, 200, "");
    msgs[1].json = NULL;
    is_int(store_message_add_batch(st, sid, msgs, 3, &err), CGW_ERR_INVALID, "no json: INVALID");
    batch_fill(msgs, buf, 3, 200, "");
    msgs[2].kind[0] = '\0';
    is_int(store_message_add_batch(st, sid, msgs, 3, &err), CGW_ERR_INVALID, "no kind: INVALID");
    batch_fill(msgs, buf, 3, 0, "");
    is_int(store_message_add_batch(st, sid, msgs, 3, &err), CGW_ERR_INVALID, "seq 0: INVALID");
    is_int(store_message_add_batch(st, sid, NULL, 3, &err), CGW_ERR_INVALID, "no array: INVALID");
    is_int(store_message_add_batch(st, NULL, msgs, 3, &err), CGW_ERR_INVALID,
           "no session id: INVALID");
    is_int(count_rows(path, sid), 112, "none of them wrote a row");
    is_int(last_seq_of(st, sid), 121, "nor raised last_seq");

    /* Inside store_begin: it joins the transaction. */
    batch_fill(msgs, buf, 5, 300, "");
    is_int(store_begin(st, &err), CGW_OK, "begin");
    is_int(store_message_add_batch(st, sid, msgs, 5, &err), CGW_OK, "a batch inside it");
    store_rollback(st);
    is_int(count_rows(path, sid), 112, "rolled back with it");
    is_int(last_seq_of(st, sid), 121, "last_seq too");
    is_int(store_begin(st, &err), CGW_OK, "begin again");
    is_int(store_message_add_batch(st, sid, msgs, 5, &err), CGW_OK, "the batch");
    is_int(store_commit(st, &err), CGW_OK, "commit");
    is_int(count_rows(path, sid), 117, "committed with it");
    is_int(last_seq_of(st, sid), 304, "last_seq 304");

    /* Big events with every kind of character come back byte for byte. */
    {
        size_t big = 200000;
        char *a = malloc(big + 1), *b = malloc(big + 1);
        struct store_message two[2] = {{.seq = 400}, {.seq = 401}};
        if (!a || !b)
            BAIL_OUT("no memory");
        static const char chars[] = "ab\"\\'{}[],:\t\xc3\xa9\xe2\x82\xac{\"x\":\"\\u0000\"}";
        size_t k = 0;
        /* Whole copies only (never a cut UTF-8 sequence), then plain bytes. */
        for (; k + sizeof chars - 1 <= big; k += sizeof chars - 1)
            memcpy(a + k, chars, sizeof chars - 1);
        memset(a + k, 'z', big - k);
        for (size_t i = 0; i < big; i++)
            b[i] = (char)('A' + i % 26);
        a[big] = b[big] = '\0';
        snprintf(two[0].kind, sizeof two[0].kind, "tool_result");
        snprintf(two[1].kind, sizeof two[1].kind, "text");
        two[0].json = a;
        two[1].json = b;
        is_int(store_message_add_batch(st, sid, two, 2, &err), CGW_OK, "two 200 kB events");
        is_int(store_message_list(st, sid, 399, 0, 10, &m, &n, NULL, &err), CGW_OK, "read back");
        ok(n == 2 && strcmp(m[0].json, a) == 0 && strcmp(m[1].json, b) == 0 &&
               strcmp(m[0].kind, "tool_result") == 0,
           "byte for byte");
        store_message_list_free(m, n);
        free(a);
        free(b);
    }

    /* Two writers of overlapping batches. */
    {
        struct batch_writer w = {.path = path, .sid = sid, .rc = CGW_ERR_INTERNAL};
        pthread_t t;
        batch_fill(msgs, buf, 3, 1000, "");
        is_int(store_begin(st, &err), CGW_OK, "writer 1: begin");
        is_int(store_message_add_batch(st, sid, msgs, 3, &err), CGW_OK, "writer 1: 1000..1002");
        if (pthread_create(&t, NULL, batch_writer_main, &w) != 0)
            BAIL_OUT("pthread_create");
#ifdef HAVE_POSTGRES
        if (pg_url) {
            /* Commit only once writer 2's statement waits for this transaction. */
            snprintf(sql, sizeof sql,
                     "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                     "AND datname = current_database()");
            bool waiting = false;
            for (int i = 0; i < 3000 && !waiting; i++) {
                waiting = raw_int(path, sql) > 0;
                if (!waiting)
                    usleep(10000);
            }
            ok(waiting, "writer 2 waits for writer 1's rows");
        }
#endif
        is_int(store_commit(st, &err), CGW_OK, "writer 1: commit");
        pthread_join(t, NULL);
        is_int(w.rc, CGW_OK, "writer 2: 1001..1004 is OK (two of them replays)");
        if (w.rc != CGW_OK)
            diag("writer 2: %s", w.err.text);
        snprintf(sql, sizeof sql,
                 "SELECT count(*) FROM messages WHERE session_id = '%s' AND seq >= 1000", sid);
        is_int(raw_int(path, sql), 5, "1000..1004 stored once each");
        is_int(last_seq_of(st, sid), 1004, "last_seq 1004");
    }
}

static void test_two_processes(void)
{
    char path[600], sid[CGW_UUID_LEN + 1];
    struct store *st;
    struct store_user alice, *users = NULL;
    struct store_message *m = NULL;
    struct cgw_error err;
    int status[4];
    int64_t seq = 0, expect = 1;
    size_t n = 0, nusers = 0, total = 0;
    bool more = true, in_order = true;

    /* Four processes create and migrate a brand-new file at the same moment. */
    path_in_tmp(path, sizeof path, "concurrent.db");
    run_children(4, migrator_adapter, path, NULL, status);
    for (int k = 0; k < 4; k++)
        is_int(status[k], CHILD_OK, "migrator %d succeeded", k + 1);
    is_int(raw_int(path, "PRAGMA user_version"), store_schema_latest(),
           "the schema is migrated once, to the latest");

    st = open_migrated(path);
    if (store_user_add(st, "alice", &alice.id, &err) != CGW_OK)
        BAIL_OUT("alice: %s", err.text);
    new_session(st, alice.id, "shared", 1000, false, sid);
    /* No connection may cross a fork. */
    store_close(st);

    run_children(2, child_writer, path, sid, status);
    is_int(status[0], CHILD_OK, "writer 1 finished without error (no BACKEND)");
    is_int(status[1], CHILD_OK, "writer 2 finished without error (no BACKEND)");

    st = open_migrated(path);
    store_session_last_seq(st, sid, &seq, &err);
    is_int(seq, 2 * CHILD_MESSAGES, "last_seq is the highest seq of both");
    /* Walk the history page by page: every seq exactly once, in order. */
    for (int64_t after = 0; more;) {
        if (store_message_list(st, sid, after, 0, 1000, &m, &n, &more, &err) != CGW_OK)
            BAIL_OUT("list: %s", err.text);
        for (size_t i = 0; i < n; i++) {
            if (m[i].seq != expect++)
                in_order = false;
        }
        total += n;
        after = n ? m[n - 1].seq : after;
        store_message_list_free(m, n);
        if (n == 0)
            break;
    }
    is_int(total, 2 * CHILD_MESSAGES, "every message of both processes is there");
    ok(in_order, "seq 1..%d without gaps", 2 * CHILD_MESSAGES);
    is_int(store_user_list(st, &users, &nusers, &err), CGW_OK, "list users");
    is_int(nusers, 1 + 2 * CHILD_USERS, "every user of both processes is there");
    free(users);
    store_close(st);
}

int main(void)
{
    char path[600];
    struct store *st;

    plan_lazy();
    make_tmpdir();
    pg_url = getenv("CHATGW_TEST_PG_URL");
    if (pg_url && !*pg_url)
        pg_url = NULL;
#ifndef HAVE_POSTGRES
    if (pg_url)
        BAIL_OUT("CHATGW_TEST_PG_URL is set, but this build has no PostgreSQL backend");
#endif
    if (pg_url)
        diag("store backend: PostgreSQL (CHATGW_TEST_PG_URL)");

    test_migrate();
    test_wal_and_pragmas();
    test_open_errors();

    path_in_tmp(path, sizeof path, "main.db");
    st = open_migrated(path);
    test_users(st);
    test_tokens(st, path);
    test_sessions(st, path);
    test_messages(st, path);
    test_message_batch(st, path);
    test_rules(st);
    test_attachments(st);
    store_close(st);
    store_close(NULL);

    test_busy(path);
    test_two_processes();

    nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return done_testing();
}
