/* store.c: SQLite connection, pragmas, statement cache, transactions, migrations, errors;
 * the backend switch (a db.url selects PostgreSQL, see store_pg.c). */
#include "core/store_priv.h"

#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/embedded.h"

#define SESSION_COLS                                                                               \
    "id, owner, provider, native_id, project_path, name, archived, created_ms, updated_ms, "       \
    "last_seq, host"
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
    /* The age test keeps the row at one change a minute; callers test the age first, as
     * the statement takes the write lock even when it changes nothing. */
    [STMT_TOKEN_TOUCH] = "UPDATE tokens SET last_used_ms = ?2 WHERE id = ?1 AND last_used_ms < ?3",
    [STMT_TOKEN_LIST] = "SELECT " TOKEN_COLS " FROM tokens t JOIN users u ON u.id = t.user_id "
                        "WHERE ?1 <= 0 OR t.user_id = ?1 ORDER BY t.created_ms, t.id",
    [STMT_TOKEN_REVOKE] = "UPDATE tokens SET revoked = 1 WHERE id = ?1",
    [STMT_SESSION_CREATE] = "INSERT INTO sessions (" SESSION_COLS ") "
                            "VALUES (?1, ?2, ?3, NULL, ?4, ?5, ?6, ?7, ?8, 0, ?9)",
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
    [STMT_RULE_LIST_USER] = "SELECT id, user_id, project_path, rule, created_ms FROM rules "
                            "WHERE user_id = ?1 ORDER BY project_path, created_ms, id LIMIT ?2",
};

/* ---- errors ---------------------------------------------------------------- */

enum cgw_err store_code(int rc)
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
enum cgw_err store_fail(struct store *st, sqlite3_stmt *s, int rc, struct cgw_error *err,
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

enum cgw_err store_stmt_get(struct store *st, enum stmt_id id, sqlite3_stmt **out,
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
void store_stmt_done(sqlite3_stmt *s)
{
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
}

/* Binders that stop at the first failure, so a run of binds needs one check. */
void store_bind_int64(sqlite3_stmt *s, int i, int64_t v, int *rc)
{
    if (*rc == SQLITE_OK)
        *rc = sqlite3_bind_int64(s, i, v);
}

void store_bind_text(sqlite3_stmt *s, int i, const char *v, int *rc)
{
    if (*rc == SQLITE_OK)
        *rc = v ? sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC) : sqlite3_bind_null(s, i);
}

void store_bind_named_int64(sqlite3_stmt *s, const char *name, int64_t v, int *rc)
{
    int i = sqlite3_bind_parameter_index(s, name);
    if (i > 0)
        store_bind_int64(s, i, v, rc);
}

/* Copies a text column into a fixed buffer, cut to fit. The columns copied this way
 * are TEXT in a UTF-8 database, so SQLite needs no conversion (and no memory). */
void store_col_copy(sqlite3_stmt *s, int i, char *buf, size_t size)
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
int store_col_dup(sqlite3_stmt *s, int i, char **out)
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
int store_grow(void **arr, size_t *cap, size_t n, size_t elem)
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
int store_step_once(sqlite3_stmt *s)
{
    int rc = sqlite3_step(s);
    if (rc == SQLITE_DONE) {
        store_stmt_done(s);
        return SQLITE_OK;
    }
    return rc; /* store_fail resets it after reading the message */
}

#ifdef HAVE_POSTGRES
/* The PostgreSQL text of the transaction statements. A read snapshot is REPEATABLE
 * READ, so that its several reads agree as they do in SQLite's read transaction. */
static const char *pg_simple_sql(enum stmt_id id)
{
    switch (id) {
    case STMT_BEGIN:
        return "BEGIN";
    case STMT_BEGIN_READ:
        return "BEGIN ISOLATION LEVEL REPEATABLE READ";
    case STMT_COMMIT:
        return "COMMIT";
    default:
        return "ROLLBACK";
    }
}
#endif

static enum cgw_err run_simple(struct store *st, enum stmt_id id, struct cgw_error *err,
                               const char *what)
{
    sqlite3_stmt *s = NULL;
    enum cgw_err e;
    int rc;

    STORE_PG_DISPATCH(st, pg_simple(st, pg_simple_sql(id), err, what));
    if ((e = store_stmt_get(st, id, &s, err)) != CGW_OK)
        return e;
    rc = store_step_once(s);
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

#ifdef HAVE_POSTGRES
    if (st->pg) {
        pg_rollback_quiet(st);
        return;
    }
#endif
    if (sqlite3_get_autocommit(st->db))
        return;
    if (store_stmt_get(st, STMT_ROLLBACK, &s, &ignored) == CGW_OK) {
        if (sqlite3_step(s) == SQLITE_DONE && sqlite3_get_autocommit(st->db)) {
            store_stmt_done(s);
            return;
        }
        store_stmt_done(s);
    }
    /* Last resort when even the cached statement cannot run (no memory). */
    (void)sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
}

/* A caller's transaction that SQLite rolled back after an error must not silently
 * turn the following writes into separate autocommits. */
enum cgw_err store_txn_check(struct store *st, struct cgw_error *err)
{
    if (st->in_read)
        return cgw_error_set(err, CGW_ERR_INVALID, "store: a write inside a read snapshot");
#ifdef HAVE_POSTGRES
    /* PostgreSQL aborts the whole transaction at the first failed statement. */
    if (st->pg && st->in_txn && pg_txn_broken(st))
        return cgw_error_set(err, CGW_ERR_BACKEND,
                             "store: the open transaction was rolled back after an error");
    if (st->pg)
        return CGW_OK;
#endif
    if (st->in_txn && sqlite3_get_autocommit(st->db))
        return cgw_error_set(err, CGW_ERR_BACKEND,
                             "store: the open transaction was rolled back after an error");
    return CGW_OK;
}

/* Begins a write transaction for a function that writes more than once, unless the
 * caller already opened one with store_begin. *own says whether store_txn_end commits. */
enum cgw_err store_txn_begin(struct store *st, enum stmt_id begin, bool *own, struct cgw_error *err)
{
    enum cgw_err e;

    *own = false;
    if (st->in_read) {
        if (begin == STMT_BEGIN_READ)
            return CGW_OK; /* joins the snapshot */
        return cgw_error_set(err, CGW_ERR_INVALID, "store: a write inside a read snapshot");
    }
    if (st->in_txn)
        return store_txn_check(st, err);
    e = run_simple(st, begin, err, begin == STMT_BEGIN ? "begin transaction" : "begin read");
    if (e == CGW_OK)
        *own = true;
    return e;
}

/* Commits (e == CGW_OK) or rolls back an owned transaction; returns the outcome. */
enum cgw_err store_txn_end(struct store *st, bool own, enum cgw_err e, struct cgw_error *err)
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

    if (st->in_txn || st->in_read)
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
    e = store_txn_check(st, err);
    if (e == CGW_OK)
        e = run_simple(st, STMT_COMMIT, err, "commit");
    if (e != CGW_OK)
        txn_rollback_quiet(st);
    st->in_txn = false;
    return e;
}

enum cgw_err store_read_begin(struct store *st, struct cgw_error *err)
{
    enum cgw_err e;

    if (st->in_txn || st->in_read)
        return cgw_error_set(err, CGW_ERR_INVALID, "store: read: a transaction is already open");
    /* BEGIN DEFERRED takes no lock: the first read does, COMMIT releases it. */
    e = run_simple(st, STMT_BEGIN_READ, err, "begin read");
    if (e == CGW_OK)
        st->in_read = true;
    return e;
}

void store_read_end(struct store *st)
{
    struct cgw_error ignored;

    if (!st || !st->in_read)
        return;
    if (run_simple(st, STMT_COMMIT, &ignored, "end read") != CGW_OK)
        txn_rollback_quiet(st);
    st->in_read = false;
    if (st->touch_due) {
        int64_t id = st->touch_due;
        st->touch_due = 0;
        (void)store_token_touch(st, id, &ignored); /* best effort, as always */
    }
}

void store_rollback(struct store *st)
{
    if (!st)
        return;
    txn_rollback_quiet(st);
    st->in_txn = st->in_read = false;
    st->touch_due = 0;
}

/* ---- messages ---------------------------------------------------------------- */

enum cgw_err store_message_clash(const char *session_id, int64_t first, size_t clashes, size_t n,
                                 struct cgw_error *err)
{
    return cgw_error_set(err, CGW_ERR_CONFLICT,
                         "store: seq %lld of session %s already holds a different event "
                         "(%zu of %zu events clash; the others are stored)",
                         (long long)first, session_id, clashes, n);
}

/* ---- lifecycle --------------------------------------------------------------- */

bool store_is_pg_url(const char *target)
{
    return target &&
           (strncmp(target, "postgresql://", 13) == 0 || strncmp(target, "postgres://", 11) == 0);
}

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
            store_col_copy(s, 0, mode, sizeof mode);
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

/* SQLite keeps memory statistics under one process-wide mutex taken by every
 * allocation; chatgw never reads them, and with several worker threads that mutex was
 * contended on every query (make bench, futex profile). Must run before SQLite
 * initializes; if something initialized it already, the call fails harmlessly. */
static void sqlite_setup(void)
{
    (void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

enum cgw_err store_open(const char *path, bool create, int64_t busy_timeout_ms, struct store **out,
                        struct cgw_error *err)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    struct store *st;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (create ? SQLITE_OPEN_CREATE : 0);
    int rc, timeout;
    enum cgw_err e;

    *out = NULL;
    if (store_is_pg_url(path)) {
#ifdef HAVE_POSTGRES
        return pg_open(path, busy_timeout_ms, out, err);
#else
        return cgw_error_set(err, CGW_ERR_INVALID,
                             "store: db.url names a PostgreSQL database, but this chatgw was "
                             "built without PostgreSQL support (apt-get install libpq-dev, then "
                             "configure --with-postgres)");
#endif
    }
    pthread_once(&once, sqlite_setup);
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
#ifdef HAVE_POSTGRES
    if (st->pg) {
        pg_close(st);
        return;
    }
#endif
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
    enum cgw_err e;
    int rc;

    STORE_PG_DISPATCH(st, pg_schema_version(st, version, err));
    if ((e = store_stmt_get(st, STMT_USER_VERSION, &s, err)) != CGW_OK)
        return e;
    rc = sqlite3_step(s);
    if (rc != SQLITE_ROW)
        return store_fail(st, s, rc, err, "read schema version");
    *version = sqlite3_column_int(s, 0);
    store_stmt_done(s);
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
    return store_txn_end(st, true, CGW_OK, err);

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
    if (st->in_txn || st->in_read)
        return cgw_error_set(err, CGW_ERR_INVALID, "store: migrate: a transaction is open");
#ifdef HAVE_POSTGRES
    if (st->pg) {
        /* The two sets move in lockstep: version N is the same schema in both. */
        int pg_latest = 0;
        for (const struct embedded_file *f = cgw_sql_migrations_pg; f->name; f++)
            pg_latest =
                migration_version(f->name) > pg_latest ? migration_version(f->name) : pg_latest;
        if (pg_latest != latest)
            return cgw_error_set(err, CGW_ERR_INTERNAL,
                                 "store: the PostgreSQL migrations end at version %d, the SQLite "
                                 "ones at %d",
                                 pg_latest, latest);
        if ((e = pg_migrate(st, latest, err)) != CGW_OK)
            return e;
        return version ? store_schema_version(st, version, err) : CGW_OK;
    }
#endif
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
