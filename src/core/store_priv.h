/* store_priv.h: the store's internals, shared by store.c and the per-table files.
 *
 * Two backends behind one API: SQLite (st->db, the statements below) and, when built
 * with libpq (HAVE_POSTGRES), PostgreSQL (st->pg; store_pg.c and store_pg_tables.c).
 * Each public function checks its arguments once, then STORE_PG_DISPATCH hands a
 * PostgreSQL handle to its pg_* twin. The transaction bookkeeping (store_begin,
 * store_txn_begin/end/check, read snapshots) is shared: its few SQL steps dispatch
 * inside store.c. Only these files see sqlite3_stmt or PGresult. */
#ifndef CGW_STORE_PRIV_H
#define CGW_STORE_PRIV_H

#include <config.h> /* autoconf's (not core/config.h): HAVE_POSTGRES */

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/store.h"

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
    STMT_RULE_LIST_USER,
    STMT__COUNT
};

struct pg_conn; /* libpq's PGconn */

struct store {
    sqlite3 *db;        /* SQLite backend, or NULL */
    struct pg_conn *pg; /* PostgreSQL backend, or NULL */
    bool in_txn;        /* store_begin is open: inner functions skip their own BEGIN/COMMIT */
    bool in_read;       /* store_read_begin is open */
    int64_t touch_due;  /* a token store_token_touch noted during the read snapshot, or 0 */
    sqlite3_stmt *stmts[STMT__COUNT];
};

/* Errors (store.c). */

/* The cgw_err for an SQLite (extended) result code. */
enum cgw_err store_code(int rc);

/* Fills err with "store: <what>: <SQLite's message>" and resets s (may be NULL) so
 * that it holds no lock. Returns the cgw_err that rc maps to. */
enum cgw_err store_fail(struct store *st, sqlite3_stmt *s, int rc, struct cgw_error *err,
                        const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Statements (store.c). */

/* Sets *out to the cached statement id, preparing it on first use (borrowed). */
enum cgw_err store_stmt_get(struct store *st, enum stmt_id id, sqlite3_stmt **out,
                            struct cgw_error *err);
/* Resets s and clears its bindings. */
void store_stmt_done(sqlite3_stmt *s);
/* Binders that stop at the first failure, so a run of binds needs one check. */
void store_bind_int64(sqlite3_stmt *s, int i, int64_t v, int *rc);
void store_bind_text(sqlite3_stmt *s, int i, const char *v, int *rc);
void store_bind_named_int64(sqlite3_stmt *s, const char *name, int64_t v, int *rc);
/* Copies a text column into a fixed buffer, cut to fit. */
void store_col_copy(sqlite3_stmt *s, int i, char *buf, size_t size);
/* Sets *out to a new copy of a text column (NULL for SQL NULL). Returns 0 or -1. */
int store_col_dup(sqlite3_stmt *s, int i, char **out);
/* Makes room for one more element in a growing result array. Returns 0 or -1. */
int store_grow(void **arr, size_t *cap, size_t n, size_t elem);
/* Steps a statement that returns no rows, then resets it. Returns the step's code. */
int store_step_once(sqlite3_stmt *s);

/* Transactions (store.c). */

/* Fails when the caller's store_begin transaction was rolled back by SQLite. */
enum cgw_err store_txn_check(struct store *st, struct cgw_error *err);
/* Begins a transaction unless store_begin opened one; *own says whether store_txn_end commits. */
enum cgw_err store_txn_begin(struct store *st, enum stmt_id begin, bool *own,
                             struct cgw_error *err);
/* Commits (e == CGW_OK) or rolls back an owned transaction; returns the outcome. */
enum cgw_err store_txn_end(struct store *st, bool own, enum cgw_err e, struct cgw_error *err);

/* Messages (store.c). */

/* Sets err to the CGW_ERR_CONFLICT of a batch in which clashes of n events (the first at
 * seq first) found their seq holding a different event; returns CGW_ERR_CONFLICT. */
enum cgw_err store_message_clash(const char *session_id, int64_t first, size_t clashes, size_t n,
                                 struct cgw_error *err);

/* ---- PostgreSQL backend (store_pg.c, store_pg_tables.c) -------------------------- */

/* True for a db.url that selects PostgreSQL ("postgresql://..." or "postgres://..."). */
bool store_is_pg_url(const char *target);

#ifdef HAVE_POSTGRES
#define STORE_PG_DISPATCH(st, call)                                                                \
    do {                                                                                           \
        if ((st)->pg)                                                                              \
            return call;                                                                           \
    } while (0)

enum cgw_err pg_open(const char *url, int64_t lock_timeout_ms, struct store **out,
                     struct cgw_error *err);
void pg_close(struct store *st);
/* Runs a statement without parameters or rows (BEGIN, COMMIT, ...). */
enum cgw_err pg_simple(struct store *st, const char *sql, struct cgw_error *err, const char *what);
/* Rolls back whatever is open, if anything. */
void pg_rollback_quiet(struct store *st);
/* True when the connection is inside a transaction that failed or was ended. */
bool pg_txn_broken(struct store *st);
enum cgw_err pg_schema_version(struct store *st, int *version, struct cgw_error *err);
enum cgw_err pg_migrate(struct store *st, int latest, struct cgw_error *err);

enum cgw_err pg_user_add(struct store *st, const char *name, int64_t *id, struct cgw_error *err);
enum cgw_err pg_user_get(struct store *st, const char *name, int64_t id, struct store_user *out,
                         struct cgw_error *err);
enum cgw_err pg_user_set_disabled(struct store *st, const char *name, bool disabled,
                                  struct cgw_error *err);
enum cgw_err pg_user_list(struct store *st, struct store_user **out, size_t *n,
                          struct cgw_error *err);
enum cgw_err pg_token_add(struct store *st, int64_t user_id, const char *public_id,
                          const unsigned char hash[32], const char *label, int64_t *id,
                          struct cgw_error *err);
enum cgw_err pg_token_find(struct store *st, const char *public_id, struct store_token *out,
                           bool *user_disabled, struct cgw_error *err);
enum cgw_err pg_token_touch(struct store *st, int64_t id, struct cgw_error *err);
enum cgw_err pg_token_list(struct store *st, int64_t user_id, struct store_token **out, size_t *n,
                           struct cgw_error *err);
enum cgw_err pg_token_revoke(struct store *st, int64_t id, struct cgw_error *err);
enum cgw_err pg_session_create(struct store *st, const struct store_session *s, int64_t created,
                               int64_t updated, struct cgw_error *err);
enum cgw_err pg_session_get(struct store *st, const char *id, int64_t owner,
                            struct store_session *out, struct cgw_error *err);
enum cgw_err pg_session_list(struct store *st, int64_t owner, int archived, int64_t limit,
                             int64_t offset, struct store_session **out, size_t *n, int64_t *total,
                             struct cgw_error *err);
enum cgw_err pg_session_update(struct store *st, const char *id, int64_t owner, const char *name,
                               int archived, struct cgw_error *err);
enum cgw_err pg_session_delete(struct store *st, const char *id, int64_t owner,
                               struct cgw_error *err);
enum cgw_err pg_session_set_native_id(struct store *st, const char *id, const char *native_id,
                                      struct cgw_error *err);
enum cgw_err pg_session_touch(struct store *st, const char *id, struct cgw_error *err);
enum cgw_err pg_session_last_seq(struct store *st, const char *id, int64_t *seq,
                                 struct cgw_error *err);
enum cgw_err pg_message_add(struct store *st, const char *session_id, int64_t seq, const char *kind,
                            const char *json, struct cgw_error *err);
enum cgw_err pg_message_add_batch(struct store *st, const char *session_id,
                                  const struct store_message *msgs, size_t n,
                                  struct cgw_error *err);
enum cgw_err pg_message_list(struct store *st, const char *session_id, int64_t after_seq,
                             int64_t before_seq, int64_t limit, bool backwards,
                             struct store_message **out, size_t *n, bool *has_more,
                             struct cgw_error *err);
enum cgw_err pg_rule_add(struct store *st, int64_t user_id, const char *project_path,
                         const char *rule, struct cgw_error *err);
enum cgw_err pg_rule_list(struct store *st, int64_t user_id, const char *project_path, int64_t max,
                          struct store_rule **out, size_t *n, struct cgw_error *err);
enum cgw_err pg_rule_delete(struct store *st, int64_t user_id, int64_t rule_id,
                            struct cgw_error *err);
#else
#define STORE_PG_DISPATCH(st, call)                                                                \
    do {                                                                                           \
    } while (0)
#endif

#endif
