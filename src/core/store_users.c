/* store_users.c: the store's users and their API tokens. */
#include "core/store_priv.h"

#include <stdlib.h>
#include <string.h>

/* Sizes of fixed text fields of the result structs (a longer input could not be read back). */
#define PUBLIC_ID_SIZE sizeof(((struct store_token *)0)->public_id)

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
    store_col_copy(s, 1, out->name, sizeof out->name);
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
    STORE_PG_DISPATCH(st, pg_user_add(st, name, id, err));
    if ((e = store_txn_check(st, err)) != CGW_OK ||
        (e = store_stmt_get(st, STMT_USER_ADD, &s, err)) != CGW_OK)
        return e;
    store_bind_text(s, 1, name, &rc);
    store_bind_int64(s, 2, cgw_now_ms(), &rc);
    if (rc == SQLITE_OK)
        rc = store_step_once(s);
    if (rc != SQLITE_OK) {
        if (store_code(rc) == CGW_ERR_CONFLICT) {
            store_stmt_done(s);
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
    enum cgw_err e;

    STORE_PG_DISPATCH(st, pg_user_get(st, key_text, key_id, out, err));
    if ((e = store_stmt_get(st, id, &s, err)) != CGW_OK)
        return e;
    if (key_text)
        store_bind_text(s, 1, key_text, &rc);
    else
        store_bind_int64(s, 1, key_id, &rc);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        user_from_row(s, out);
        store_stmt_done(s);
        return CGW_OK;
    }
    if (rc == SQLITE_DONE) {
        store_stmt_done(s);
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
    STORE_PG_DISPATCH(st, pg_user_set_disabled(st, name, disabled, err));
    if ((e = store_txn_check(st, err)) != CGW_OK ||
        (e = store_stmt_get(st, STMT_USER_SET_DISABLED, &s, err)) != CGW_OK)
        return e;
    store_bind_text(s, 1, name, &rc);
    store_bind_int64(s, 2, disabled ? 1 : 0, &rc);
    if (rc == SQLITE_OK)
        rc = store_step_once(s);
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
    enum cgw_err e;

    *out = NULL;
    *n = 0;
    STORE_PG_DISPATCH(st, pg_user_list(st, out, n, err));
    if ((e = store_stmt_get(st, STMT_USER_LIST, &s, err)) != CGW_OK)
        return e;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (store_grow((void **)&list, &cap, count, sizeof *list) < 0) {
            store_stmt_done(s);
            free(list);
            return cgw_error_set(err, CGW_ERR_NOMEM, "store: list users: out of memory");
        }
        user_from_row(s, &list[count++]);
    }
    if (rc != SQLITE_DONE) {
        free(list);
        return store_fail(st, s, rc, err, "list users");
    }
    store_stmt_done(s);
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
    store_col_copy(s, 2, out->user_name, sizeof out->user_name);
    store_col_copy(s, 3, out->public_id, sizeof out->public_id);
    store_col_copy(s, 4, out->label, sizeof out->label);
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
    STORE_PG_DISPATCH(st, pg_token_add(st, user_id, public_id, hash, label, id, err));
    if ((e = store_txn_check(st, err)) != CGW_OK ||
        (e = store_stmt_get(st, STMT_TOKEN_ADD, &s, err)) != CGW_OK)
        return e;
    store_bind_int64(s, 1, user_id, &rc);
    store_bind_text(s, 2, public_id, &rc);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_blob(s, 3, hash, 32, SQLITE_STATIC);
    store_bind_text(s, 4, label, &rc);
    store_bind_int64(s, 5, cgw_now_ms(), &rc);
    if (rc == SQLITE_OK)
        rc = store_step_once(s);
    if (rc != SQLITE_OK) {
        e = store_code(rc);
        if (e != CGW_ERR_CONFLICT && e != CGW_ERR_NOT_FOUND)
            return store_fail(st, s, rc, err, "add token");
        store_stmt_done(s);
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
    STORE_PG_DISPATCH(st, pg_token_find(st, public_id, out, user_disabled, err));
    if ((e = store_stmt_get(st, STMT_TOKEN_FIND, &s, err)) != CGW_OK)
        return e;
    store_bind_text(s, 1, public_id, &rc);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        e = token_from_row(s, out, user_disabled, err);
        store_stmt_done(s);
        return e;
    }
    if (rc == SQLITE_DONE) {
        store_stmt_done(s);
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

    if (st->in_read) {
        st->touch_due = id; /* store_read_end runs it */
        return CGW_OK;
    }
    STORE_PG_DISPATCH(st, pg_token_touch(st, id, err));
    if ((e = store_txn_check(st, err)) != CGW_OK ||
        (e = store_stmt_get(st, STMT_TOKEN_TOUCH, &s, err)) != CGW_OK)
        return e;
    store_bind_int64(s, 1, id, &rc);
    store_bind_int64(s, 2, now, &rc);
    store_bind_int64(s, 3, now - STORE_TOKEN_TOUCH_EVERY_MS, &rc);
    if (rc == SQLITE_OK)
        rc = store_step_once(s);
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
    enum cgw_err e;

    *out = NULL;
    *n = 0;
    STORE_PG_DISPATCH(st, pg_token_list(st, user_id, out, n, err));
    if ((e = store_stmt_get(st, STMT_TOKEN_LIST, &s, err)) != CGW_OK)
        return e;
    store_bind_int64(s, 1, user_id, &rc);
    if (rc != SQLITE_OK)
        return store_fail(st, s, rc, err, "list tokens");
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (store_grow((void **)&list, &cap, count, sizeof *list) < 0) {
            e = cgw_error_set(err, CGW_ERR_NOMEM, "store: list tokens: out of memory");
            break;
        }
        e = token_from_row(s, &list[count++], NULL, err);
        if (e != CGW_OK)
            break;
    }
    if (e == CGW_OK && rc != SQLITE_DONE)
        e = store_fail(st, s, rc, err, "list tokens");
    store_stmt_done(s);
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

    STORE_PG_DISPATCH(st, pg_token_revoke(st, id, err));
    if ((e = store_txn_check(st, err)) != CGW_OK ||
        (e = store_stmt_get(st, STMT_TOKEN_REVOKE, &s, err)) != CGW_OK)
        return e;
    store_bind_int64(s, 1, id, &rc);
    if (rc == SQLITE_OK)
        rc = store_step_once(s);
    if (rc != SQLITE_OK)
        return store_fail(st, s, rc, err, "revoke token %lld", (long long)id);
    if (sqlite3_changes(st->db) == 0)
        return cgw_error_set(err, CGW_ERR_NOT_FOUND, "store: no token with id %lld", (long long)id);
    return CGW_OK;
}
