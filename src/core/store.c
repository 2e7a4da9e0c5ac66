/* store.c: the SQLite system of record: connection setup, migrations, and one query per verb. */
#include "core/store.h"

#include <limits.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/embedded.h"

#define MESSAGE_LIMIT_MAX 1000
#define TOKEN_TOUCH_EVERY_MS 60000
/* Sizes of fixed text fields of the result structs (a longer input could not be read back). */
#define PUBLIC_ID_SIZE sizeof(((struct store_token *)0)->public_id)
#define KIND_SIZE sizeof(((struct store_message *)0)->kind)

/* Every statement the store runs; prepared on first use (the tables do not exist
 * before store_migrate) and kept until store_close, so hot paths never re-prepare. */
enum stmt_id {
    STMT_BEGIN,
    STMT_BEGIN_READ,
    STMT_COMMIT,
    STMT_ROLLBACK,
    STMT_USER_VERSION,
    STMT_USER_ADD,
    STMT_USER_GET,
    STMT_USER_GET_BY_ID,
    STMT_USER_SET_DISABLED,
    STMT_USER_LIST,
    STMT_TOKEN_ADD,
    STMT_TOKEN_FIND,
    STMT_TOKEN_TOUCH,
    STMT_TOKEN_LIST,
    STMT_TOKEN_REVOKE,
    STMT_SESSION_CREATE,
    STMT_SESSION_GET,
    /* The four list variants are in the order session_list_variant() computes. */
    STMT_SESSION_COUNT_OWNER_ARCHIVED,
    STMT_SESSION_COUNT_OWNER,
    STMT_SESSION_COUNT_ARCHIVED,
    STMT_SESSION_COUNT_ALL,
    STMT_SESSION_PAGE_OWNER_ARCHIVED,
    STMT_SESSION_PAGE_OWNER,
    STMT_SESSION_PAGE_ARCHIVED,
    STMT_SESSION_PAGE_ALL,
    STMT_SESSION_UPDATE,
    STMT_SESSION_DELETE,
    STMT_SESSION_SET_NATIVE,
    STMT_SESSION_GET_NATIVE,
    STMT_SESSION_TOUCH,
    STMT_SESSION_LAST_SEQ,
    STMT_MESSAGE_INSERT,
    STMT_MESSAGE_GET_JSON,
    STMT_MESSAGE_RAISE_SEQ,
    STMT_MESSAGE_LIST_AFTER,
    STMT_MESSAGE_LIST_BEFORE,
    STMT_RULE_ADD,
    STMT_RULE_LIST,
    STMT_RULE_DELETE,
    STMT__COUNT
};

#define SESSION_COLS                                                                               \
    "id, owner, provider, native_id, project_path, name, archived, created_ms, updated_ms, "       \
    "last_seq"
#define SESSION_PAGE " ORDER BY updated_ms DESC, id LIMIT :limit OFFSET :offset"
#define TOKEN_COLS                                                                                 \
    "t.id, t.user_id, u.name, t.public_id, t.label, t.hash, t.revoked, t.created_ms, "             \
    "t.last_used_ms, u.disabled"

static const char *const stmt_sql[STMT__COUNT] = {
    [STMT_BEGIN] = "BEGIN IMMEDIATE",
    [STMT_BEGIN_READ] = "BEGIN DEFERRED",
    [STMT_COMMIT] = "COMMIT",
    [STMT_ROLLBACK] = "ROLLBACK",
    [STMT_USER_VERSION] = "PRAGMA user_version",
    [STMT_USER_ADD] = "INSERT INTO users (name, disabled, created_ms) VALUES (?1, 0, ?2)",
    [STMT_USER_GET] = "SELECT id, name, disabled, created_ms FROM users WHERE name = ?1",
    [STMT_USER_GET_BY_ID] = "SELECT id, name, disabled, created_ms FROM users WHERE id = ?1",
    [STMT_USER_SET_DISABLED] = "UPDATE users SET disabled = ?2 WHERE name = ?1",
    [STMT_USER_LIST] = "SELECT id, name, disabled, created_ms FROM users ORDER BY name",
    [STMT_TOKEN_ADD] = "INSERT INTO tokens (user_id, public_id, hash, label, created_ms) "
                       "VALUES (?1, ?2, ?3, ?4, ?5)",
    [STMT_TOKEN_FIND] = "SELECT " TOKEN_COLS " FROM tokens t JOIN users u ON u.id = t.user_id "
                        "WHERE t.public_id = ?1",
    /* The age test in the WHERE clause makes a busy token cost one write a minute. */
    [STMT_TOKEN_TOUCH] = "UPDATE tokens SET last_used_ms = ?2 WHERE id = ?1 AND last_used_ms < ?3",
    [STMT_TOKEN_LIST] = "SELECT " TOKEN_COLS " FROM tokens t JOIN users u ON u.id = t.user_id "
                        "WHERE ?1 <= 0 OR t.user_id = ?1 ORDER BY t.created_ms, t.id",
    [STMT_TOKEN_REVOKE] = "UPDATE tokens SET revoked = 1 WHERE id = ?1",
    [STMT_SESSION_CREATE] = "INSERT INTO sessions (" SESSION_COLS ") "
                            "VALUES (?1, ?2, ?3, NULL, ?4, ?5, ?6, ?7, ?8, 0)",
    [STMT_SESSION_GET] = "SELECT " SESSION_COLS " FROM sessions "
                         "WHERE id = ?1 AND (?2 <= 0 OR owner = ?2)",
    [STMT_SESSION_COUNT_OWNER_ARCHIVED] =
        "SELECT count(*) FROM sessions WHERE owner = :owner AND archived = :archived",
    [STMT_SESSION_COUNT_OWNER] = "SELECT count(*) FROM sessions WHERE owner = :owner",
    [STMT_SESSION_COUNT_ARCHIVED] = "SELECT count(*) FROM sessions WHERE archived = :archived",
    [STMT_SESSION_COUNT_ALL] = "SELECT count(*) FROM sessions",
    [STMT_SESSION_PAGE_OWNER_ARCHIVED] =
        "SELECT " SESSION_COLS " FROM sessions "
        "WHERE owner = :owner AND archived = :archived" SESSION_PAGE,
    [STMT_SESSION_PAGE_OWNER] = "SELECT " SESSION_COLS " FROM sessions "
                                "WHERE owner = :owner" SESSION_PAGE,
    [STMT_SESSION_PAGE_ARCHIVED] = "SELECT " SESSION_COLS " FROM sessions "
                                   "WHERE archived = :archived" SESSION_PAGE,
    [STMT_SESSION_PAGE_ALL] = "SELECT " SESSION_COLS " FROM sessions" SESSION_PAGE,
    [STMT_SESSION_UPDATE] = "UPDATE sessions SET name = coalesce(?3, name), "
                            "archived = CASE WHEN ?4 < 0 THEN archived ELSE ?4 END, "
                            "updated_ms = ?5 WHERE id = ?1 AND (?2 <= 0 OR owner = ?2)",
    [STMT_SESSION_DELETE] = "DELETE FROM sessions WHERE id = ?1 AND (?2 <= 0 OR owner = ?2)",
    [STMT_SESSION_SET_NATIVE] =
        "UPDATE sessions SET native_id = ?2 WHERE id = ?1 AND native_id IS NULL",
    [STMT_SESSION_GET_NATIVE] = "SELECT native_id FROM sessions WHERE id = ?1",
    [STMT_SESSION_TOUCH] = "UPDATE sessions SET updated_ms = ?2 WHERE id = ?1",
    [STMT_SESSION_LAST_SEQ] = "SELECT last_seq FROM sessions WHERE id = ?1",
    /* DO NOTHING (not OR IGNORE) so that only the (session, seq) clash is tolerated. */
    [STMT_MESSAGE_INSERT] = "INSERT INTO messages (session_id, seq, kind, json) "
                            "VALUES (?1, ?2, ?3, ?4) ON CONFLICT (session_id, seq) DO NOTHING",
    [STMT_MESSAGE_GET_JSON] = "SELECT json FROM messages WHERE session_id = ?1 AND seq = ?2",
    [STMT_MESSAGE_RAISE_SEQ] = "UPDATE sessions SET last_seq = ?2 WHERE id = ?1 AND last_seq < ?2",
    [STMT_MESSAGE_LIST_AFTER] = "SELECT seq, kind, json FROM messages WHERE session_id = ?1 "
                                "AND seq > ?2 AND seq < ?3 ORDER BY seq LIMIT ?4",
    [STMT_MESSAGE_LIST_BEFORE] = "SELECT seq, kind, json FROM messages WHERE session_id = ?1 "
                                 "AND seq > ?2 AND seq < ?3 ORDER BY seq DESC LIMIT ?4",
    [STMT_RULE_ADD] =
        "INSERT INTO rules (user_id, project_path, rule, created_ms) "
        "VALUES (?1, ?2, ?3, ?4) ON CONFLICT (user_id, project_path, rule) DO NOTHING",
    [STMT_RULE_LIST] = "SELECT id, user_id, project_path, rule, created_ms FROM rules "
                       "WHERE user_id = ?1 AND project_path = ?2 ORDER BY created_ms, id",
    [STMT_RULE_DELETE] = "DELETE FROM rules WHERE id = ?2 AND user_id = ?1",
};

struct store {
    sqlite3 *db;
    bool in_txn; /* store_begin is open: inner functions skip their own BEGIN/COMMIT */
    sqlite3_stmt *stmts[STMT__COUNT];
};

/* ---- errors ---------------------------------------------------------------- */

static enum cgw_err store_code(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_NOMEM:
        return CGW_ERR_NOMEM;
    case SQLITE_CONSTRAINT:
        if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY)
            return CGW_ERR_CONFLICT;
        /* A row that points at a missing parent: the parent is what was not found. */
        if (rc == SQLITE_CONSTRAINT_FOREIGNKEY)
            return CGW_ERR_NOT_FOUND;
        return CGW_ERR_INVALID;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
    case SQLITE_PROTOCOL:
    case SQLITE_PERM:
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
    case SQLITE_NOLFS:
        return CGW_ERR_BACKEND;
    default:
        return CGW_ERR_INTERNAL;
    }
}

/* Fills err with "store: <what>: <SQLite's message>" and resets s (may be NULL) so
 * that it holds no lock. The message is taken before the reset can replace it. */
static enum cgw_err store_fail(struct store *st, sqlite3_stmt *s, int rc, struct cgw_error *err,
                               const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static enum cgw_err store_fail(struct store *st, sqlite3_stmt *s, int rc, struct cgw_error *err,
                               const char *fmt, ...)
{
    char what[160], msg[160];
    va_list ap;

    /* The connection's message is more precise ("no such table: x"), but only if it
     * is about this failure. */
    snprintf(msg, sizeof msg, "%s",
             st && st->db && (sqlite3_extended_errcode(st->db) & 0xff) == (rc & 0xff)
                 ? sqlite3_errmsg(st->db)
                 : sqlite3_errstr(rc));
    if (s) {
        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
    }
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return cgw_error_set(err, store_code(rc), "store: %s: %s", what, msg);
}

/* ---- statements ------------------------------------------------------------ */

static enum cgw_err stmt_get(struct store *st, enum stmt_id id, sqlite3_stmt **out,
                             struct cgw_error *err)
{
    if (!st->stmts[id]) {
        int rc = sqlite3_prepare_v2(st->db, stmt_sql[id], -1, &st->stmts[id], NULL);
        if (rc != SQLITE_OK) {
            st->stmts[id] = NULL;
            return store_fail(st, NULL, rc, err, "prepare \"%.60s\"", stmt_sql[id]);
        }
    }
    *out = st->stmts[id];
    return CGW_OK;
}

/* Returns the statement to its initial state; the caller's strings are bound
 * SQLITE_STATIC, so the bindings must go before the caller returns. */
static void stmt_done(sqlite3_stmt *s)
{
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
}

/* Binders that stop at the first failure, so a run of binds needs one check. */
static void bind_int64(sqlite3_stmt *s, int i, int64_t v, int *rc)
{
    if (*rc == SQLITE_OK)
        *rc = sqlite3_bind_int64(s, i, v);
}

static void bind_text(sqlite3_stmt *s, int i, const char *v, int *rc)
{
    if (*rc == SQLITE_OK)
        *rc = v ? sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC) : sqlite3_bind_null(s, i);
}

static void bind_named_int64(sqlite3_stmt *s, const char *name, int64_t v, int *rc)
{
    int i = sqlite3_bind_parameter_index(s, name);
    if (i > 0)
        bind_int64(s, i, v, rc);
}

/* Copies a text column into a fixed buffer, cut to fit. The columns copied this way
 * are TEXT in a UTF-8 database, so SQLite needs no conversion (and no memory). */
static void col_copy(sqlite3_stmt *s, int i, char *buf, size_t size)
{
    const char *t = (const char *)sqlite3_column_text(s, i);
    size_t n = t ? (size_t)sqlite3_column_bytes(s, i) : 0;

    if (n >= size)
        n = size - 1;
    if (n > 0)
        memcpy(buf, t, n);
    buf[n] = '\0';
}

/* Sets *out to a new copy of a text column (NULL for SQL NULL). Returns 0 or -1 (no
 * memory). */
static int col_dup(sqlite3_stmt *s, int i, char **out)
{
    const char *t;
    size_t n;

    *out = NULL;
    if (sqlite3_column_type(s, i) == SQLITE_NULL)
        return 0;
    t = (const char *)sqlite3_column_text(s, i);
    if (!t && sqlite3_errcode(sqlite3_db_handle(s)) == SQLITE_NOMEM)
        return -1;
    n = t ? (size_t)sqlite3_column_bytes(s, i) : 0;
    *out = malloc(n + 1);
    if (!*out)
        return -1;
    if (n > 0)
        memcpy(*out, t, n);
    (*out)[n] = '\0';
    return 0;
}

/* Makes room for one more element in a growing result array. Returns 0 or -1. */
static int grow(void **arr, size_t *cap, size_t n, size_t elem)
{
    size_t want;
    void *p;

    if (n < *cap)
        return 0;
    want = *cap ? *cap * 2 : 16;
    if (want > SIZE_MAX / elem)
        return -1;
    p = realloc(*arr, want * elem);
    if (!p)
        return -1;
    memset((char *)p + *cap * elem, 0, (want - *cap) * elem);
    *arr = p;
    *cap = want;
    return 0;
}

/* Steps a statement that returns no rows, then resets it. Returns the step's code. */
static int step_once(sqlite3_stmt *s)
{
    int rc = sqlite3_step(s);
    if (rc == SQLITE_DONE) {
        stmt_done(s);
        return SQLITE_OK;
    }
    return rc; /* store_fail resets it after reading the message */
}

static enum cgw_err run_simple(struct store *st, enum stmt_id id, struct cgw_error *err,
                               const char *what)
{
    sqlite3_stmt *s = NULL;
    enum cgw_err e = stmt_get(st, id, &s, err);
    int rc;

    if (e != CGW_OK)
        return e;
    rc = step_once(s);
    if (rc != SQLITE_OK)
        return store_fail(st, s, rc, err, "%s", what);
    return CGW_OK;
}

/* ---- transactions ------------------------------------------------------------ */

/* Rolls back whatever is open, if anything: SQLite may already have rolled back by
 * itself after a full disk or an I/O error. */
static void txn_rollback_quiet(struct store *st)
{
    sqlite3_stmt *s = NULL;
    struct cgw_error ignored;

    if (sqlite3_get_autocommit(st->db))
        return;
    if (stmt_get(st, STMT_ROLLBACK, &s, &ignored) == CGW_OK) {
        if (sqlite3_step(s) == SQLITE_DONE && sqlite3_get_autocommit(st->db)) {
            stmt_done(s);
            return;
        }
        stmt_done(s);
    }
    /* Last resort when even the cached statement cannot run (no memory). */
    (void)sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
}

/* A caller's transaction that SQLite rolled back after an error must not silently
 * turn the following writes into separate autocommits. */
static enum cgw_err txn_check(struct store *st, struct cgw_error *err)
{
    if (st->in_txn && sqlite3_get_autocommit(st->db))
        return cgw_error_set(err, CGW_ERR_BACKEND,
                             "store: the open transaction was rolled back after an error");
    return CGW_OK;
}

/* Begins a write transaction for a function that writes more than once, unless the
 * caller already opened one with store_begin. *own says whether txn_end commits. */
static enum cgw_err txn_begin(struct store *st, enum stmt_id begin, bool *own,
                              struct cgw_error *err)
{
    enum cgw_err e;

    *own = false;
    if (st->in_txn)
        return txn_check(st, err);
    e = run_simple(st, begin, err, begin == STMT_BEGIN ? "begin transaction" : "begin read");
    if (e == CGW_OK)
        *own = true;
    return e;
}

/* Commits (e == CGW_OK) or rolls back an owned transaction; returns the outcome. */
static enum cgw_err txn_end(struct store *st, bool own, enum cgw_err e, struct cgw_error *err)
{
    if (!own)
        return e;
    if (e == CGW_OK) {
        e = run_simple(st, STMT_COMMIT, err, "commit");
        if (e == CGW_OK)
            return CGW_OK;
    }
    txn_rollback_quiet(st);
    return e;
}

enum cgw_err store_begin(struct store *st, struct cgw_error *err)
{
    enum cgw_err e;

    if (st->in_txn)
        return cgw_error_set(err, CGW_ERR_INVALID, "store: begin: a transaction is already open");
    e = run_simple(st, STMT_BEGIN, err, "begin transaction");
    if (e == CGW_OK)
        st->in_txn = true;
    return e;
}

enum cgw_err store_commit(struct store *st, struct cgw_error *err)
{
    enum cgw_err e;

    if (!st->in_txn)
        return cgw_error_set(err, CGW_ERR_INVALID, "store: commit: no transaction is open");
    e = txn_check(st, err);
    if (e == CGW_OK)
        e = run_simple(st, STMT_COMMIT, err, "commit");
    if (e != CGW_OK)
        txn_rollback_quiet(st);
    st->in_txn = false;
    return e;
}

void store_rollback(struct store *st)
{
    if (!st)
        return;
    txn_rollback_quiet(st);
    st->in_txn = false;
}

/* ---- lifecycle --------------------------------------------------------------- */

/* Sets WAL mode and checks that it took: a database on a file system without
 * shared memory would silently stay in rollback-journal mode otherwise. Switching
 * a new file to WAL fails with SQLITE_BUSY at once, without the busy handler, when
 * another process is doing the same; so this waits by itself, up to timeout_ms. */
static enum cgw_err store_set_wal(struct store *st, const char *path, int timeout_ms,
                                  struct cgw_error *err)
{
    sqlite3_stmt *s = NULL;
    char mode[16] = "";
    int64_t deadline = cgw_mono_ms() + timeout_ms;
    int rc = sqlite3_prepare_v2(st->db, "PRAGMA journal_mode = WAL", -1, &s, NULL);

    if (rc == SQLITE_OK) {
        while ((rc = sqlite3_step(s)) == SQLITE_BUSY && cgw_mono_ms() < deadline) {
            sqlite3_reset(s);
            sqlite3_sleep(5);
        }
        if (rc == SQLITE_ROW) {
            col_copy(s, 0, mode, sizeof mode);
            rc = SQLITE_OK;
        }
    }
    if (rc != SQLITE_OK) {
        enum cgw_err e = store_fail(st, NULL, rc, err, "set WAL mode on %s", path);
        sqlite3_finalize(s);
        return e;
    }
    sqlite3_finalize(s);
    /* An in-memory database (tests) has no WAL; it has no second process either. */
    if (strcmp(mode, "wal") != 0 && strcmp(mode, "memory") != 0)
        return cgw_error_set(err, CGW_ERR_BACKEND, "store: set WAL mode on %s: journal mode is %s",
                             path, mode);
    return CGW_OK;
}

enum cgw_err store_open(const char *path, bool create, int64_t busy_timeout_ms, struct store **out,
                        struct cgw_error *err)
{
    struct store *st;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (create ? SQLITE_OPEN_CREATE : 0);
    int rc, timeout;
    enum cgw_err e;

    *out = NULL;
    if (!path || !*path)
        return cgw_error_set(err, CGW_ERR_INVALID, "store: open: no database path");
    st = calloc(1, sizeof *st);
    if (!st)
        return cgw_error_set(err, CGW_ERR_NOMEM, "store: open %s: out of memory", path);
    rc = sqlite3_open_v2(path, &st->db, flags, NULL);
    if (rc != SQLITE_OK) {
        e = st->db ? store_fail(st, NULL, rc, err, "open %s", path)
                   : cgw_error_set(err, CGW_ERR_NOMEM, "store: open %s: out of memory", path);
        goto fail;
    }
    sqlite3_extended_result_codes(st->db, 1);
    timeout = busy_timeout_ms < 0 ? 0 : busy_timeout_ms > INT_MAX ? INT_MAX : (int)busy_timeout_ms;
    rc = sqlite3_busy_timeout(st->db, timeout);
    if (rc != SQLITE_OK) {
        e = store_fail(st, NULL, rc, err, "set busy timeout on %s", path);
        goto fail;
    }
    e = store_set_wal(st, path, timeout, err);
    if (e != CGW_OK)
        goto fail;
    /* NORMAL is durable enough in WAL mode: a power cut loses at most the last
     * commits, never consistency, and it saves an fsync per transaction. */
    rc = sqlite3_exec(st->db, "PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL", NULL, NULL,
                      NULL);
    if (rc != SQLITE_OK) {
        e = store_fail(st, NULL, rc, err, "set pragmas on %s", path);
        goto fail;
    }
    *out = st;
    return CGW_OK;

fail:
    store_close(st);
    return e;
}

void store_close(struct store *st)
{
    if (!st)
        return;
    for (int i = 0; i < STMT__COUNT; i++)
        sqlite3_finalize(st->stmts[i]); /* returns the last step's error; nothing to do */
    /* Every statement is finalized, so close cannot be busy; an open transaction
     * is rolled back by SQLite. */
    sqlite3_close(st->db);
    free(st);
}

/* ---- migrations ---------------------------------------------------------------- */

/* The version of a migration: the number before the first '_' of its name
 * ("0001_init.sql" is 1). Returns -1 for a name without one. */
static int migration_version(const char *name)
{
    const char *p = name;
    int v = 0;

    for (; *p >= '0' && *p <= '9'; p++) {
        if (v > (INT_MAX - (*p - '0')) / 10)
            return -1;
        v = v * 10 + (*p - '0');
    }
    if (p == name || *p != '_' || v <= 0)
        return -1;
    return v;
}

int store_schema_latest(void)
{
    int latest = 0;

    for (const struct embedded_file *f = cgw_sql_migrations; f->name; f++) {
        int v = migration_version(f->name);
        if (v > latest)
            latest = v;
    }
    return latest;
}

enum cgw_err store_schema_version(struct store *st, int *version, struct cgw_error *err)
{
    sqlite3_stmt *s = NULL;
    enum cgw_err e = stmt_get(st, STMT_USER_VERSION, &s, err);
    int rc;

    if (e != CGW_OK)
        return e;
    rc = sqlite3_step(s);
    if (rc != SQLITE_ROW)
        return store_fail(st, s, rc, err, "read schema version");
    *version = sqlite3_column_int(s, 0);
    stmt_done(s);
    return CGW_OK;
}

/* Applies one migration inside its own IMMEDIATE transaction. The version is read
 * again under the write lock: another process may have migrated in the meantime. */
static enum cgw_err migrate_one(struct store *st, const struct embedded_file *f, int v, int latest,
                                struct cgw_error *err)
{
    char pragma[48];
    int now, rc;
    enum cgw_err e = run_simple(st, STMT_BEGIN, err, "begin migration");

    if (e != CGW_OK)
        return e;
    e = store_schema_version(st, &now, err);
    if (e != CGW_OK)
        goto fail;
    if (now > latest) {
        e = cgw_error_set(err, CGW_ERR_CONFLICT,
                          "store: database schema version %d is newer than this program's %d", now,
                          latest);
        goto fail;
    }
    if (now >= v) {
        txn_rollback_quiet(st);
        return CGW_OK;
    }
    rc = sqlite3_exec(st->db, f->text, NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        e = store_fail(st, NULL, rc, err, "migration %s", f->name);
        goto fail;
    }
    /* PRAGMA takes no bound parameters; v is a number parsed from an embedded file
     * name, never outside input. */
    snprintf(pragma, sizeof pragma, "PRAGMA user_version = %d", v);
    rc = sqlite3_exec(st->db, pragma, NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        e = store_fail(st, NULL, rc, err, "migration %s: set version", f->name);
        goto fail;
    }
    return txn_end(st, true, CGW_OK, err);

fail:
    txn_rollback_quiet(st);
    return e;
}

enum cgw_err store_migrate(struct store *st, int *version, struct cgw_error *err)
{
    int latest = 0, current;
    enum cgw_err e;

    for (const struct embedded_file *f = cgw_sql_migrations; f->name; f++) {
        int v = migration_version(f->name);
        if (v <= latest)
            return cgw_error_set(err, CGW_ERR_INTERNAL,
                                 "store: migration %s: no version number, or out of order",
                                 f->name);
        latest = v;
    }
    if (st->in_txn)
        return cgw_error_set(err, CGW_ERR_INVALID, "store: migrate: a transaction is open");
    e = store_schema_version(st, &current, err);
    if (e != CGW_OK)
        return e;
    if (current > latest)
        return cgw_error_set(err, CGW_ERR_CONFLICT,
                             "store: database schema version %d is newer than this program's %d",
                             current, latest);
    for (const struct embedded_file *f = cgw_sql_migrations; f->name; f++) {
        int v = migration_version(f->name);
        if (v <= current)
            continue;
        e = migrate_one(st, f, v, latest, err);
        if (e != CGW_OK)
            return e;
    }
    if (version)
        return store_schema_version(st, version, err);
    return CGW_OK;
}

/* ---- users ------------------------------------------------------------------- */

static bool is_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool store_user_name_valid(const char *name)
{
    size_t n;

    if (!name || !is_alnum(name[0]))
        return false;
    for (n = 0; name[n]; n++) {
        if (n >= STORE_NAME_MAX)
            return false;
        if (!is_alnum(name[n]) && name[n] != '.' && name[n] != '_' && name[n] != '-')
            return false;
    }
    return true;
}

static void user_from_row(sqlite3_stmt *s, struct store_user *out)
{
    memset(out, 0, sizeof *out);
    out->id = sqlite3_column_int64(s, 0);
    col_copy(s, 1, out->name, sizeof out->name);
    out->disabled = sqlite3_column_int(s, 2) != 0;
    out->created_ms = sqlite3_column_int64(s, 3);
}

enum cgw_err store_user_add(struct store *st, const char *name, int64_t *id, struct cgw_error *err)
{
    sqlite3_stmt *s = NULL;
    int rc = SQLITE_OK;
    enum cgw_err e;

    if (!store_user_name_valid(name))
        return cgw_error_set(err, CGW_ERR_INVALID,
                             "store: add user: invalid name (1-%d of A-Z a-z 0-9 . _ -, "
                             "starting with a letter or digit)",
                             STORE_NAME_MAX);
    if ((e = txn_check(st, err)) != CGW_OK || (e = stmt_get(st, STMT_USER_ADD, &s, err)) != CGW_OK)
        return e;
    bind_text(s, 1, name, &rc);
    bind_int64(s, 2, cgw_now_ms(), &rc);
    if (rc == SQLITE_OK)
        rc = step_once(s);
    if (rc != SQLITE_OK) {
        if (store_code(rc) == CGW_ERR_CONFLICT) {
            stmt_done(s);
            return cgw_error_set(err, CGW_ERR_CONFLICT, "store: add user %s: name exists", name);
        }
        return store_fail(st, s, rc, err, "add user %s", name);
    }
    if (id)
        *id = sqlite3_last_insert_rowid(st->db);
    return CGW_OK;
}

/* Runs a one-row user query bound to key_text or key_id. */
static enum cgw_err user_get(struct store *st, enum stmt_id id, const char *key_text,
                             int64_t key_id, struct store_user *out, struct cgw_error *err)
{
    sqlite3_stmt *s = NULL;
    int rc = SQLITE_OK;
    enum cgw_err e = stmt_get(st, id, &s, err);

    if (e != CGW_OK)
        return e;
    if (key_text)
        bind_text(s, 1, key_text, &rc);
    else
        bind_int64(s, 1, key_id, &rc);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        user_from_row(s, out);
        stmt_done(s);
        return CGW_OK;
    }
    if (rc == SQLITE_DONE) {
        stmt_done(s);
        if (key_text)
            return cgw_error_set(err, CGW_ERR_NOT_FOUND, "store: no user %s", key_text);
        return cgw_error_set(err, CGW_ERR_NOT_FOUND, "store: no user with id %lld",
                             (long long)key_id);
    }
    return store_fail(st, s, rc, err, "get user");
}

enum cgw_err store_user_get(struct store *st, const char *name, struct store_user *out,
                            struct cgw_error *err)
{
    if (!name)
        return cgw_error_set(err, CGW_ERR_INVALID, "store: get user: no name");
    return user_get(st, STMT_USER_GET, name, 0, out, err);
}

enum cgw_err store_user_get_by_id(struct store *st, int64_t id, struct store_user *out,
                                  struct cgw_error *err)
{
    return user_get(st, STMT_USER_GET_BY_ID, NULL, id, out, err);
}

enum cgw_err store_user_set_disabled(struct store *st, const char *name, bool disabled,
                                     struct cgw_error *err)
{
    sqlite3_stmt *s = NULL;
    int rc = SQLITE_OK;
    enum cgw_err e;

    if (!name)
        return cgw_error_set(err, CGW_ERR_INVALID, "store: disable user: no name");
    if ((e = txn_check(st, err)) != CGW_OK ||
        (e = stmt_get(st, STMT_USER_SET_DISABLED, &s, err)) != CGW_OK)
        return e;
    bind_text(s, 1, name, &rc);
    bind_int64(s, 2, disabled ? 1 : 0, &rc);
    if (rc == SQLITE_OK)
        rc = step_once(s);
    if (rc != SQLITE_OK)
        return store_fail(st, s, rc, err, "%s user %s", disabled ? "disable" : "enable", name);
    if (sqlite3_changes(st->db) == 0)
        return cgw_error_set(err, CGW_ERR_NOT_FOUND, "store: no user %s", name);
    return CGW_OK;
}

enum cgw_err store_user_list(struct store *st, struct store_user **out, size_t *n,
                             struct cgw_error *err)
{
    sqlite3_stmt *s = NULL;
    struct store_user *list = NULL;
    size_t cap = 0, count = 0;
    int rc;
    enum cgw_err e = stmt_get(st, STMT_USER_LIST, &s, err);

    *out = NULL;
    *n = 0;
    if (e != CGW_OK)
        return e;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (grow((void **)&list, &cap, count, sizeof *list) < 0) {
            stmt_done(s);
            free(list);
            return cgw_error_set(err, CGW_ERR_NOMEM, "store: list users: out of memory");
        }
        user_from_row(s, &list[count++]);
    }
    if (rc != SQLITE_DONE) {
        free(list);
        return store_fail(st, s, rc, err, "list users");
    }
    stmt_done(s);
    *out = list;
    *n = count;
    return CGW_OK;
}

/* ---- tokens -------------------------------------------------------------------- */

/* Fills a token (and the owner's disabled flag) from a TOKEN_COLS row. */
static enum cgw_err token_from_row(sqlite3_stmt *s, struct store_token *out, bool *user_disabled,
                                   struct cgw_error *err)
{
    const void *hash;

    memset(out, 0, sizeof *out);
    out->id = sqlite3_column_int64(s, 0);
    out->user_id = sqlite3_column_int64(s, 1);
    col_copy(s, 2, out->user_name, sizeof out->user_name);
    col_copy(s, 3, out->public_id, sizeof out->public_id);
    col_copy(s, 4, out->label, sizeof out->label);
    hash = sqlite3_column_blob(s, 5);
    if (!hash || sqlite3_column_bytes(s, 5) != (int)sizeof out->hash)
        return cgw_error_set(err, CGW_ERR_INTERNAL, "store: token %lld has a malformed hash",
                             (long long)out->id);
    memcpy(out->hash, hash, sizeof out->hash);
    out->revoked = sqlite3_column_int(s, 6) != 0;
    out->created_ms = sqlite3_column_int64(s, 7);
    out->last_used_ms = sqlite3_column_int64(s, 8);
    if (user_disabled)
        *user_disabled = sqlite3_column_int(s, 9) != 0;
    return CGW_OK;
}

enum cgw_err store_token_add(struct store *st, int64_t user_id, const char *public_id,
                             const unsigned char hash[32], const char *label, int64_t *id,
                             struct cgw_error *err)
{
    sqlite3_stmt *s = NULL;
    int rc = SQLITE_OK;
    enum cgw_err e;

    if (!label)
        label = "";
    if (!public_id || !*public_id || strlen(public_id) >= PUBLIC_ID_SIZE)
        return cgw_error_set(err, CGW_ERR_INVALID, "store: add token: bad public id");
    if (!hash)
        return cgw_error_set(err, CGW_ERR_INVALID, "store: add token: no hash");
    if (strlen(label) > STORE_NAME_MAX)
        return cgw_error_set(err, CGW_ERR_INVALID, "store: add token: label longer than %d bytes",
                             STORE_NAME_MAX);
    if ((e = txn_check(st, err)) != CGW_OK || (e = stmt_get(st, STMT_TOKEN_ADD, &s, err)) != CGW_OK)
        return e;
    bind_int64(s, 1, user_id, &rc);
    bind_text(s, 2, public_id, &rc);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_blob(s, 3, hash, 32, SQLITE_STATIC);
    bind_text(s, 4, label, &rc);
    bind_int64(s, 5, cgw_now_ms(), &rc);
    if (rc == SQLITE_OK)
        rc = step_once(s);
    if (rc != SQLITE_OK) {
        e = store_code(rc);
        if (e != CGW_ERR_CONFLICT && e != CGW_ERR_NOT_FOUND)
            return store_fail(st, s, rc, err, "add token");
        stmt_done(s);
        if (e == CGW_ERR_CONFLICT)
            return cgw_error_set(err, e, "store: add token: public id %s exists", public_id);
        return cgw_error_set(err, e, "store: add token: no user with id %lld", (long long)user_id);
    }
    if (id)
        *id = sqlite3_last_insert_rowid(st->db);
    return CGW_OK;
}

enum cgw_err store_token_find(struct store *st, const char *public_id, struct store_token *out,
                              bool *user_disabled, struct cgw_error *err)
{
    sqlite3_stmt *s = NULL;
    int rc = SQLITE_OK;
    enum cgw_err e;

    if (!public_id)
        return cgw_error_set(err, CGW_ERR_INVALID, "store: find token: no public id");
    if ((e = stmt_get(st, STMT_TOKEN_FIND, &s, err)) != CGW_OK)
        return e;
    bind_text(s, 1, public_id, &rc);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        e = token_from_row(s, out, user_disabled, err);
        stmt_done(s);
        return e;
    }
    if (rc == SQLITE_DONE) {
        stmt_done(s);
        return cgw_error_set(err, CGW_ERR_NOT_FOUND, "store: no token %s", public_id);
    }
    return store_fail(st, s, rc, err, "find token");
}

enum cgw_err store_token_touch(struct store *st, int64_t id, struct cgw_error *err)
{
    sqlite3_stmt *s = NULL;
    int rc = SQLITE_OK;
    int64_t now = cgw_now_ms();
    enum cgw_err e;

    if ((e = txn_check(st, err)) != CGW_OK ||
        (e = stmt_get(st, STMT_TOKEN_TOUCH, &s, err)) != CGW_OK)
        return e;
    bind_int64(s, 1, id, &rc);
    bind_int64(s, 2, now, &rc);
    bind_int64(s, 3, now - TOKEN_TOUCH_EVERY_MS, &rc);
    if (rc == SQLITE_OK)
        rc = step_once(s);
    if (rc != SQLITE_OK)
        return store_fail(st, s, rc, err, "touch token %lld", (long long)id);
    return CGW_OK;
}

enum cgw_err store_token_list(struct store *st, int64_t user_id, struct store_token **out,
                              size_t *n, struct cgw_error *err)
{
    sqlite3_stmt *s = NULL;
    struct store_token *list = NULL;
    size_t cap = 0, count = 0;
    int rc = SQLITE_OK;
    enum cgw_err e = stmt_get(st, STMT_TOKEN_LIST, &s, err);

    *out = NULL;
    *n = 0;
    if (e != CGW_OK)
        return e;
    bind_int64(s, 1, user_id, &rc);
    if (rc != SQLITE_OK)
        return store_fail(st, s, rc, err, "list tokens");
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (grow((void **)&list, &cap, count, sizeof *list) < 0) {
            e = cgw_error_set(err, CGW_ERR_NOMEM, "store: list tokens: out of memory");
            break;
        }
        e = token_from_row(s, &list[count++], NULL, err);
        if (e != CGW_OK)
            break;
    }
    if (e == CGW_OK && rc != SQLITE_DONE)
        e = store_fail(st, s, rc, err, "list tokens");
    stmt_done(s);
    if (e != CGW_OK) {
        free(list);
        return e;
    }
    *out = list;
    *n = count;
    return CGW_OK;
}

enum cgw_err store_token_revoke(struct store *st, int64_t id, struct cgw_error *err)
{
    sqlite3_stmt *s = NULL;
    int rc = SQLITE_OK;
    enum cgw_err e;

    if ((e = txn_check(st, err)) != CGW_OK ||
        (e = stmt_get(st, STMT_TOKEN_REVOKE, &s, err)) != CGW_OK)
        return e;
    bind_int64(s, 1, id, &rc);
    if (rc == SQLITE_OK)
        rc = step_once(s);
    if (rc != SQLITE_OK)
        return store_fail(st, s, rc, err, "revoke token %lld", (long long)id);
    if (sqlite3_changes(st->db) == 0)
        return cgw_error_set(err, CGW_ERR_NOT_FOUND, "store: no token with id %lld", (long long)id);
    return CGW_OK;
}

/* ---- sessions ------------------------------------------------------------------ */

void store_session_clear(struct store_session *s)
{
    if (!s)
        return;
    free(s->native_id);
    free(s->project_path);
    free(s->name);
    s->native_id = s->project_path = s->name = NULL;
}

void store_session_list_free(struct store_session *list, size_t n)
{
    if (!list)
        return;
    for (size_t i = 0; i < n; i++)
        store_session_clear(&list[i]);
    free(list);
}

/* Fills out from a SESSION_COLS row. Returns 0 or -1 (no memory; out is cleared). */
static int session_from_row(sqlite3_stmt *s, struct store_session *out)
{
    memset(out, 0, sizeof *out);
    col_copy(s, 0, out->id, sizeof out->id);
    out->owner = sqlite3_column_int64(s, 1);
    col_copy(s, 2, out->provider, sizeof out->provider);
    out->archived = sqlite3_column_int(s, 6) != 0;
    out->created_ms = sqlite3_column_int64(s, 7);
    out->updated_ms = sqlite3_column_int64(s, 8);
    out->last_seq = sqlite3_column_int64(s, 9);
    if (col_dup(s, 3, &out->native_id) < 0 || col_dup(s, 4, &out->project_path) < 0 ||
        col_dup(s, 5, &out->name) < 0) {
        store_session_clear(out);
        return -1;
    }
    return 0;
}

enum cgw_err store_session_create(struct store *st, const struct store_session *s,
                                  struct cgw_error *err)
{
    sqlite3_stmt *q = NULL;
    int rc = SQLITE_OK;
    int64_t created, updated;
    enum cgw_err e;

    if (!s || !cgw_uuid_valid(s->id))
        return cgw_error_set(err, CGW_ERR_INVALID, "store: create session: id is not a UUID");
    if (!s->provider[0] || !memchr(s->provider, '\0', sizeof s->provider))
        return cgw_error_set(err, CGW_ERR_INVALID, "store: create session: no provider");
    if (!s->project_path || !*s->project_path)
        return cgw_error_set(err, CGW_ERR_INVALID, "store: create session: no project path");
    created = s->created_ms > 0 ? s->created_ms : cgw_now_ms();
    updated = s->updated_ms > 0 ? s->updated_ms : created;
    if ((e = txn_check(st, err)) != CGW_OK ||
        (e = stmt_get(st, STMT_SESSION_CREATE, &q, err)) != CGW_OK)
        return e;
    bind_text(q, 1, s->id, &rc);
    bind_int64(q, 2, s->owner, &rc);
    bind_text(q, 3, s->provider, &rc);
    bind_text(q, 4, s->project_path, &rc);
    bind_text(q, 5, s->name ? s->name : "", &rc);
    bind_int64(q, 6, s->archived ? 1 : 0, &rc);
    bind_int64(q, 7, created, &rc);
    bind_int64(q, 8, updated, &rc);
    if (rc == SQLITE_OK)
        rc = step_once(q);
    if (rc != SQLITE_OK) {
        e = store_code(rc);
        if (e == CGW_ERR_CONFLICT) {
            stmt_done(q);
            return cgw_error_set(err, e, "store: create session %s: id exists", s->id);
        }
        if (e == CGW_ERR_NOT_FOUND) {
            stmt_done(q);
            return cgw_error_set(err, e, "store: create session %s: no user with id %lld", s->id,
                                 (long long)s->owner);
        }
        return store_fail(st, q, rc, err, "insert session %s", s->id);
    }
    return CGW_OK;
}

enum cgw_err store_session_get(struct store *st, const char *id, int64_t owner,
                               struct store_session *out, struct cgw_error *err)
{
    sqlite3_stmt *s = NULL;
    int rc = SQLITE_OK;
    enum cgw_err e;

    if (!id)
        return cgw_error_set(err, CGW_ERR_INVALID, "store: get session: no id");
    if ((e = stmt_get(st, STMT_SESSION_GET, &s, err)) != CGW_OK)
        return e;
    bind_text(s, 1, id, &rc);
    bind_int64(s, 2, owner, &rc);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        int bad = session_from_row(s, out);
        stmt_done(s);
        if (bad < 0)
            return cgw_error_set(err, CGW_ERR_NOMEM, "store: get session %s: out of memory", id);
        return CGW_OK;
    }
    if (rc == SQLITE_DONE) {
        stmt_done(s);
        /* The same answer for a missing and a foreign session: no existence leak. */
        return cgw_error_set(err, CGW_ERR_NOT_FOUND, "store: no session %s", id);
    }
    return store_fail(st, s, rc, err, "get session %s", id);
}

/* Index of the count (page: + 4) statement for a combination of filters. */
static enum stmt_id session_list_variant(enum stmt_id base, int64_t owner, int archived)
{
    return (enum stmt_id)(base + (owner > 0 ? 0 : 2) + (archived >= 0 ? 0 : 1));
}

static void bind_session_filter(sqlite3_stmt *s, int64_t owner, int archived, int *rc)
{
    bind_named_int64(s, ":owner", owner, rc);
    bind_named_int64(s, ":archived", archived > 0 ? 1 : 0, rc);
}

enum cgw_err store_session_list(struct store *st, int64_t owner, int archived, int64_t limit,
                                int64_t offset, struct store_session **out, size_t *n,
                                int64_t *total, struct cgw_error *err)
{
    sqlite3_stmt *s = NULL;
    struct store_session *list = NULL;
    size_t cap = 0, count = 0;
    int rc = SQLITE_OK;
    bool own;
    enum cgw_err e;

    *out = NULL;
    *n = 0;
    if (total)
        *total = 0;
    /* One read transaction, so that the total and the page agree. */
    if ((e = txn_begin(st, STMT_BEGIN_READ, &own, err)) != CGW_OK)
        return e;
    if (total) {
        e = stmt_get(st, session_list_variant(STMT_SESSION_COUNT_OWNER_ARCHIVED, owner, archived),
                     &s, err);
        if (e != CGW_OK)
            goto out;
        bind_session_filter(s, owner, archived, &rc);
        if (rc == SQLITE_OK)
            rc = sqlite3_step(s);
        if (rc != SQLITE_ROW) {
            e = store_fail(st, s, rc, err, "count sessions");
            goto out;
        }
        *total = sqlite3_column_int64(s, 0);
        stmt_done(s);
    }
    e = stmt_get(st, session_list_variant(STMT_SESSION_PAGE_OWNER_ARCHIVED, owner, archived), &s,
                 err);
    if (e != CGW_OK)
        goto out;
    rc = SQLITE_OK;
    bind_session_filter(s, owner, archived, &rc);
    bind_named_int64(s, ":limit", limit > 0 ? limit : -1, &rc);
    bind_named_int64(s, ":offset", offset > 0 ? offset : 0, &rc);
    if (rc != SQLITE_OK) {
        e = store_fail(st, s, rc, err, "list sessions");
        goto out;
    }
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (grow((void **)&list, &cap, count, sizeof *list) < 0 ||
            session_from_row(s, &list[count]) < 0) {
            e = cgw_error_set(err, CGW_ERR_NOMEM, "store: list sessions: out of memory");
            break;
        }
        count++;
    }
    if (e == CGW_OK && rc != SQLITE_DONE)
        e = store_fail(st, s, rc, err, "list sessions");
    stmt_done(s);
out:
    e = txn_end(st, own, e, err);
    if (e != CGW_OK) {
        store_session_list_free(list, count);
        if (total)
            *total = 0;
        return e;
    }
    *out = list;
    *n = count;
    return CGW_OK;
}

/* Runs a one-row write keyed by session id and owner; no row changed is NOT_FOUND. */
static enum cgw_err session_write(struct store *st, sqlite3_stmt *s, int rc, const char *id,
                                  const char *what, struct cgw_error *err)
{
    if (rc == SQLITE_OK)
        rc = step_once(s);
    if (rc != SQLITE_OK)
        return store_fail(st, s, rc, err, "%s session %s", what, id);
    if (sqlite3_changes(st->db) == 0)
        return cgw_error_set(err, CGW_ERR_NOT_FOUND, "store: no session %s", id);
    return CGW_OK;
}

enum cgw_err store_session_update(struct store *st, const char *id, int64_t owner, const char *name,
                                  int archived, struct cgw_error *err)
{
    sqlite3_stmt *s = NULL;
    int rc = SQLITE_OK;
    enum cgw_err e;

    if (!id)
        return cgw_error_set(err, CGW_ERR_INVALID, "store: update session: no id");
    if ((e = txn_check(st, err)) != CGW_OK ||
        (e = stmt_get(st, STMT_SESSION_UPDATE, &s, err)) != CGW_OK)
        return e;
    bind_text(s, 1, id, &rc);
    bind_int64(s, 2, owner, &rc);
    bind_text(s, 3, name, &rc);
    bind_int64(s, 4, archived < 0 ? -1 : archived > 0 ? 1 : 0, &rc);
    bind_int64(s, 5, cgw_now_ms(), &rc);
    return session_write(st, s, rc, id, "update", err);
}

enum cgw_err store_session_delete(struct store *st, const char *id, int64_t owner,
                                  struct cgw_error *err)
{
    sqlite3_stmt *s = NULL;
    int rc = SQLITE_OK;
    enum cgw_err e;

    if (!id)
        return cgw_error_set(err, CGW_ERR_INVALID, "store: delete session: no id");
    /* One statement: the messages go with it through ON DELETE CASCADE. */
    if ((e = txn_check(st, err)) != CGW_OK ||
        (e = stmt_get(st, STMT_SESSION_DELETE, &s, err)) != CGW_OK)
        return e;
    bind_text(s, 1, id, &rc);
    bind_int64(s, 2, owner, &rc);
    return session_write(st, s, rc, id, "delete", err);
}

enum cgw_err store_session_set_native_id(struct store *st, const char *id, const char *native_id,
                                         struct cgw_error *err)
{
    sqlite3_stmt *s = NULL;
    int rc = SQLITE_OK;
    char *have = NULL;
    enum cgw_err e;

    if (!id || !native_id || !*native_id)
        return cgw_error_set(err, CGW_ERR_INVALID, "store: set native id: no id");
    if ((e = txn_check(st, err)) != CGW_OK ||
        (e = stmt_get(st, STMT_SESSION_SET_NATIVE, &s, err)) != CGW_OK)
        return e;
    bind_text(s, 1, id, &rc);
    bind_text(s, 2, native_id, &rc);
    if (rc == SQLITE_OK)
        rc = step_once(s);
    if (rc != SQLITE_OK)
        return store_fail(st, s, rc, err, "set native id of session %s", id);
    if (sqlite3_changes(st->db) > 0)
        return CGW_OK;
    /* Nothing changed: either no such session or an id is already there. The
     * write was conditional, so reading afterwards cannot lose a race. */
    if ((e = stmt_get(st, STMT_SESSION_GET_NATIVE, &s, err)) != CGW_OK)
        return e;
    rc = SQLITE_OK;
    bind_text(s, 1, id, &rc);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(s);
    if (rc == SQLITE_DONE) {
        stmt_done(s);
        return cgw_error_set(err, CGW_ERR_NOT_FOUND, "store: no session %s", id);
    }
    if (rc != SQLITE_ROW)
        return store_fail(st, s, rc, err, "get native id of session %s", id);
    if (col_dup(s, 0, &have) < 0) {
        stmt_done(s);
        return cgw_error_set(err, CGW_ERR_NOMEM, "store: set native id: out of memory");
    }
    stmt_done(s);
    e = have && strcmp(have, native_id) == 0
            ? CGW_OK
            : cgw_error_set(err, CGW_ERR_CONFLICT,
                            "store: session %s already has another native id", id);
    free(have);
    return e;
}

enum cgw_err store_session_touch(struct store *st, const char *id, struct cgw_error *err)
{
    sqlite3_stmt *s = NULL;
    int rc = SQLITE_OK;
    enum cgw_err e;

    if (!id)
        return cgw_error_set(err, CGW_ERR_INVALID, "store: touch session: no id");
    if ((e = txn_check(st, err)) != CGW_OK ||
        (e = stmt_get(st, STMT_SESSION_TOUCH, &s, err)) != CGW_OK)
        return e;
    bind_text(s, 1, id, &rc);
    bind_int64(s, 2, cgw_now_ms(), &rc);
    return session_write(st, s, rc, id, "touch", err);
}

enum cgw_err store_session_last_seq(struct store *st, const char *id, int64_t *seq,
                                    struct cgw_error *err)
{
    sqlite3_stmt *s = NULL;
    int rc = SQLITE_OK;
    enum cgw_err e;

    if (!id)
        return cgw_error_set(err, CGW_ERR_INVALID, "store: last seq: no session id");
    if ((e = stmt_get(st, STMT_SESSION_LAST_SEQ, &s, err)) != CGW_OK)
        return e;
    bind_text(s, 1, id, &rc);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *seq = sqlite3_column_int64(s, 0);
        stmt_done(s);
        return CGW_OK;
    }
    if (rc == SQLITE_DONE) {
        stmt_done(s);
        return cgw_error_set(err, CGW_ERR_NOT_FOUND, "store: no session %s", id);
    }
    return store_fail(st, s, rc, err, "last seq of session %s", id);
}

/* ---- messages -------------------------------------------------------------------- */

/* Called when the insert found (session, seq) taken: the same event again is a
 * replay and fine, anything else would rewrite history. */
static enum cgw_err message_check_replay(struct store *st, const char *session_id, int64_t seq,
                                         const char *json, struct cgw_error *err)
{
    sqlite3_stmt *s = NULL;
    int rc = SQLITE_OK;
    const char *have;
    bool same;
    enum cgw_err e = stmt_get(st, STMT_MESSAGE_GET_JSON, &s, err);

    if (e != CGW_OK)
        return e;
    bind_text(s, 1, session_id, &rc);
    bind_int64(s, 2, seq, &rc);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(s);
    if (rc == SQLITE_DONE) {
        /* Cannot happen inside the write transaction; say so rather than guess. */
        stmt_done(s);
        return cgw_error_set(err, CGW_ERR_INTERNAL,
                             "store: add message %lld to session %s: row vanished", (long long)seq,
                             session_id);
    }
    if (rc != SQLITE_ROW)
        return store_fail(st, s, rc, err, "add message %lld to session %s: re-read", (long long)seq,
                          session_id);
    have = (const char *)sqlite3_column_text(s, 0);
    if (!have) {
        stmt_done(s);
        return cgw_error_set(err, CGW_ERR_NOMEM, "store: add message: out of memory");
    }
    same = strcmp(have, json) == 0;
    stmt_done(s);
    if (!same)
        return cgw_error_set(err, CGW_ERR_CONFLICT,
                             "store: seq %lld of session %s already holds a different event",
                             (long long)seq, session_id);
    return CGW_OK;
}

enum cgw_err store_message_add(struct store *st, const char *session_id, int64_t seq,
                               const char *kind, const char *json, struct cgw_error *err)
{
    sqlite3_stmt *s = NULL;
    int rc = SQLITE_OK;
    bool own;
    enum cgw_err e;

    if (!session_id || !json || seq <= 0)
        return cgw_error_set(err, CGW_ERR_INVALID,
                             "store: add message: needs a session, a json and a seq > 0");
    if (!kind || !*kind || strlen(kind) >= KIND_SIZE)
        return cgw_error_set(err, CGW_ERR_INVALID, "store: add message: bad kind");
    if ((e = txn_begin(st, STMT_BEGIN, &own, err)) != CGW_OK)
        return e;
    if ((e = stmt_get(st, STMT_MESSAGE_INSERT, &s, err)) != CGW_OK)
        goto out;
    bind_text(s, 1, session_id, &rc);
    bind_int64(s, 2, seq, &rc);
    bind_text(s, 3, kind, &rc);
    bind_text(s, 4, json, &rc);
    if (rc == SQLITE_OK)
        rc = step_once(s);
    if (rc != SQLITE_OK) {
        if (store_code(rc) == CGW_ERR_NOT_FOUND) {
            stmt_done(s);
            e = cgw_error_set(err, CGW_ERR_NOT_FOUND, "store: add message: no session %s",
                              session_id);
        } else {
            e = store_fail(st, s, rc, err, "add message %lld to session %s", (long long)seq,
                           session_id);
        }
        goto out;
    }
    if (sqlite3_changes(st->db) == 0) {
        e = message_check_replay(st, session_id, seq, json, err);
        goto out; /* a replay: last_seq was raised when the row went in */
    }
    if ((e = stmt_get(st, STMT_MESSAGE_RAISE_SEQ, &s, err)) != CGW_OK)
        goto out;
    bind_text(s, 1, session_id, &rc);
    bind_int64(s, 2, seq, &rc);
    if (rc == SQLITE_OK)
        rc = step_once(s);
    if (rc != SQLITE_OK)
        e = store_fail(st, s, rc, err, "raise last seq of session %s", session_id);
out:
    return txn_end(st, own, e, err);
}

void store_message_list_free(struct store_message *list, size_t n)
{
    if (!list)
        return;
    for (size_t i = 0; i < n; i++)
        free(list[i].json);
    free(list);
}

enum cgw_err store_message_list(struct store *st, const char *session_id, int64_t after_seq,
                                int64_t before_seq, int64_t limit, struct store_message **out,
                                size_t *n, bool *has_more, struct cgw_error *err)
{
    sqlite3_stmt *s = NULL;
    struct store_message *list = NULL;
    size_t cap = 0, count = 0;
    bool more = false, backwards;
    int rc = SQLITE_OK;
    enum cgw_err e;

    *out = NULL;
    *n = 0;
    if (has_more)
        *has_more = false;
    if (!session_id)
        return cgw_error_set(err, CGW_ERR_INVALID, "store: list messages: no session id");
    if (limit < 1)
        limit = 1;
    if (limit > MESSAGE_LIMIT_MAX)
        limit = MESSAGE_LIMIT_MAX;
    if (after_seq < 0)
        after_seq = 0;
    backwards = before_seq > 0 && after_seq == 0;
    e = stmt_get(st, backwards ? STMT_MESSAGE_LIST_BEFORE : STMT_MESSAGE_LIST_AFTER, &s, err);
    if (e != CGW_OK)
        return e;
    bind_text(s, 1, session_id, &rc);
    bind_int64(s, 2, after_seq, &rc);
    bind_int64(s, 3, before_seq > 0 ? before_seq : INT64_MAX, &rc);
    /* One row more than asked tells whether there is more, without a count. */
    bind_int64(s, 4, limit + 1, &rc);
    if (rc != SQLITE_OK)
        return store_fail(st, s, rc, err, "list messages of session %s", session_id);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (count == (size_t)limit) {
            more = true;
            break;
        }
        if (grow((void **)&list, &cap, count, sizeof *list) < 0 ||
            col_dup(s, 2, &list[count].json) < 0) {
            e = cgw_error_set(err, CGW_ERR_NOMEM, "store: list messages: out of memory");
            break;
        }
        list[count].seq = sqlite3_column_int64(s, 0);
        col_copy(s, 1, list[count].kind, sizeof list[count].kind);
        count++;
    }
    if (e == CGW_OK && rc != SQLITE_DONE && rc != SQLITE_ROW)
        e = store_fail(st, s, rc, err, "list messages of session %s", session_id);
    stmt_done(s);
    if (e != CGW_OK) {
        store_message_list_free(list, count);
        return e;
    }
    if (backwards) {
        for (size_t i = 0; i < count / 2; i++) {
            struct store_message t = list[i];
            list[i] = list[count - 1 - i];
            list[count - 1 - i] = t;
        }
    }
    *out = list;
    *n = count;
    if (has_more)
        *has_more = more;
    return CGW_OK;
}

/* ---- permission rules ------------------------------------------------------------ */

enum cgw_err store_rule_add(struct store *st, int64_t user_id, const char *project_path,
                            const char *rule, struct cgw_error *err)
{
    sqlite3_stmt *s = NULL;
    int rc = SQLITE_OK;
    enum cgw_err e;

    if (!project_path || !*project_path || !rule || !*rule)
        return cgw_error_set(err, CGW_ERR_INVALID, "store: add rule: needs a project and a rule");
    if ((e = txn_check(st, err)) != CGW_OK || (e = stmt_get(st, STMT_RULE_ADD, &s, err)) != CGW_OK)
        return e;
    bind_int64(s, 1, user_id, &rc);
    bind_text(s, 2, project_path, &rc);
    bind_text(s, 3, rule, &rc);
    bind_int64(s, 4, cgw_now_ms(), &rc);
    if (rc == SQLITE_OK)
        rc = step_once(s);
    if (rc != SQLITE_OK) {
        if (store_code(rc) == CGW_ERR_NOT_FOUND) {
            stmt_done(s);
            return cgw_error_set(err, CGW_ERR_NOT_FOUND, "store: add rule: no user with id %lld",
                                 (long long)user_id);
        }
        return store_fail(st, s, rc, err, "add rule");
    }
    return CGW_OK;
}

void store_rule_list_free(struct store_rule *list, size_t n)
{
    if (!list)
        return;
    for (size_t i = 0; i < n; i++) {
        free(list[i].project_path);
        free(list[i].rule);
    }
    free(list);
}

enum cgw_err store_rule_list(struct store *st, int64_t user_id, const char *project_path,
                             struct store_rule **out, size_t *n, struct cgw_error *err)
{
    sqlite3_stmt *s = NULL;
    struct store_rule *list = NULL;
    size_t cap = 0, count = 0;
    int rc = SQLITE_OK;
    enum cgw_err e;

    *out = NULL;
    *n = 0;
    if (!project_path)
        return cgw_error_set(err, CGW_ERR_INVALID, "store: list rules: no project path");
    if ((e = stmt_get(st, STMT_RULE_LIST, &s, err)) != CGW_OK)
        return e;
    bind_int64(s, 1, user_id, &rc);
    bind_text(s, 2, project_path, &rc);
    if (rc != SQLITE_OK)
        return store_fail(st, s, rc, err, "list rules");
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct store_rule *r;
        if (grow((void **)&list, &cap, count, sizeof *list) < 0) {
            e = cgw_error_set(err, CGW_ERR_NOMEM, "store: list rules: out of memory");
            break;
        }
        r = &list[count++]; /* counted first, so that a half-filled entry is freed too */
        r->id = sqlite3_column_int64(s, 0);
        r->user_id = sqlite3_column_int64(s, 1);
        r->created_ms = sqlite3_column_int64(s, 4);
        if (col_dup(s, 2, &r->project_path) < 0 || col_dup(s, 3, &r->rule) < 0) {
            e = cgw_error_set(err, CGW_ERR_NOMEM, "store: list rules: out of memory");
            break;
        }
    }
    if (e == CGW_OK && rc != SQLITE_DONE)
        e = store_fail(st, s, rc, err, "list rules");
    stmt_done(s);
    if (e != CGW_OK) {
        store_rule_list_free(list, count);
        return e;
    }
    *out = list;
    *n = count;
    return CGW_OK;
}

enum cgw_err store_rule_delete(struct store *st, int64_t user_id, int64_t rule_id,
                               struct cgw_error *err)
{
    sqlite3_stmt *s = NULL;
    int rc = SQLITE_OK;
    enum cgw_err e;

    if ((e = txn_check(st, err)) != CGW_OK ||
        (e = stmt_get(st, STMT_RULE_DELETE, &s, err)) != CGW_OK)
        return e;
    bind_int64(s, 1, user_id, &rc);
    bind_int64(s, 2, rule_id, &rc);
    if (rc == SQLITE_OK)
        rc = step_once(s);
    if (rc != SQLITE_OK)
        return store_fail(st, s, rc, err, "delete rule %lld", (long long)rule_id);
    if (sqlite3_changes(st->db) == 0)
        return cgw_error_set(err, CGW_ERR_NOT_FOUND, "store: no rule %lld", (long long)rule_id);
    return CGW_OK;
}
