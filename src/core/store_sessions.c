/* store_sessions.c: the store's sessions, their messages, and permission rules. */
#include "core/store_priv.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MESSAGE_LIMIT_MAX 1000
/* Sizes of fixed text fields of the result structs (a longer input could not be read back). */
#define KIND_SIZE sizeof(((struct store_message *)0)->kind)

/* ---- sessions ------------------------------------------------------------------ */

void store_session_clear(struct store_session *s)
{
    if (!s)
        return;
    free(s->native_id);
    free(s->project_path);
    free(s->name);
    free(s->host);
    s->native_id = s->project_path = s->name = s->host = NULL;
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
    store_col_copy(s, 0, out->id, sizeof out->id);
    out->owner = sqlite3_column_int64(s, 1);
    store_col_copy(s, 2, out->provider, sizeof out->provider);
    out->archived = sqlite3_column_int(s, 6) != 0;
    out->created_ms = sqlite3_column_int64(s, 7);
    out->updated_ms = sqlite3_column_int64(s, 8);
    out->last_seq = sqlite3_column_int64(s, 9);
    if (store_col_dup(s, 3, &out->native_id) < 0 || store_col_dup(s, 4, &out->project_path) < 0 ||
        store_col_dup(s, 5, &out->name) < 0 || store_col_dup(s, 10, &out->host) < 0) {
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
    STORE_PG_DISPATCH(st, pg_session_create(st, s, created, updated, err));
    if ((e = store_txn_check(st, err)) != CGW_OK ||
        (e = store_stmt_get(st, STMT_SESSION_CREATE, &q, err)) != CGW_OK)
        return e;
    store_bind_text(q, 1, s->id, &rc);
    store_bind_int64(q, 2, s->owner, &rc);
    store_bind_text(q, 3, s->provider, &rc);
    store_bind_text(q, 4, s->project_path, &rc);
    store_bind_text(q, 5, s->name ? s->name : "", &rc);
    store_bind_int64(q, 6, s->archived ? 1 : 0, &rc);
    store_bind_int64(q, 7, created, &rc);
    store_bind_int64(q, 8, updated, &rc);
    store_bind_text(q, 9, s->host && s->host[0] ? s->host : NULL, &rc);
    if (rc == SQLITE_OK)
        rc = store_step_once(q);
    if (rc != SQLITE_OK) {
        e = store_code(rc);
        if (e == CGW_ERR_CONFLICT) {
            store_stmt_done(q);
            return cgw_error_set(err, e, "store: create session %s: id exists", s->id);
        }
        if (e == CGW_ERR_NOT_FOUND) {
            store_stmt_done(q);
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
    STORE_PG_DISPATCH(st, pg_session_get(st, id, owner, out, err));
    if ((e = store_stmt_get(st, STMT_SESSION_GET, &s, err)) != CGW_OK)
        return e;
    store_bind_text(s, 1, id, &rc);
    store_bind_int64(s, 2, owner, &rc);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        int bad = session_from_row(s, out);
        store_stmt_done(s);
        if (bad < 0)
            return cgw_error_set(err, CGW_ERR_NOMEM, "store: get session %s: out of memory", id);
        return CGW_OK;
    }
    if (rc == SQLITE_DONE) {
        store_stmt_done(s);
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
    store_bind_named_int64(s, ":owner", owner, rc);
    store_bind_named_int64(s, ":archived", archived > 0 ? 1 : 0, rc);
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
    STORE_PG_DISPATCH(st, pg_session_list(st, owner, archived, limit, offset, out, n, total, err));
    /* One read transaction, so that the total and the page agree. */
    if ((e = store_txn_begin(st, STMT_BEGIN_READ, &own, err)) != CGW_OK)
        return e;
    if (total) {
        e = store_stmt_get(
            st, session_list_variant(STMT_SESSION_COUNT_OWNER_ARCHIVED, owner, archived), &s, err);
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
        store_stmt_done(s);
    }
    e = store_stmt_get(st, session_list_variant(STMT_SESSION_PAGE_OWNER_ARCHIVED, owner, archived),
                       &s, err);
    if (e != CGW_OK)
        goto out;
    rc = SQLITE_OK;
    bind_session_filter(s, owner, archived, &rc);
    store_bind_named_int64(s, ":limit", limit > 0 ? limit : -1, &rc);
    store_bind_named_int64(s, ":offset", offset > 0 ? offset : 0, &rc);
    if (rc != SQLITE_OK) {
        e = store_fail(st, s, rc, err, "list sessions");
        goto out;
    }
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (store_grow((void **)&list, &cap, count, sizeof *list) < 0 ||
            session_from_row(s, &list[count]) < 0) {
            e = cgw_error_set(err, CGW_ERR_NOMEM, "store: list sessions: out of memory");
            break;
        }
        count++;
    }
    if (e == CGW_OK && rc != SQLITE_DONE)
        e = store_fail(st, s, rc, err, "list sessions");
    store_stmt_done(s);
out:
    e = store_txn_end(st, own, e, err);
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
        rc = store_step_once(s);
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
    STORE_PG_DISPATCH(st, pg_session_update(st, id, owner, name, archived, err));
    if ((e = store_txn_check(st, err)) != CGW_OK ||
        (e = store_stmt_get(st, STMT_SESSION_UPDATE, &s, err)) != CGW_OK)
        return e;
    store_bind_text(s, 1, id, &rc);
    store_bind_int64(s, 2, owner, &rc);
    store_bind_text(s, 3, name, &rc);
    store_bind_int64(s, 4, archived < 0 ? -1 : archived > 0 ? 1 : 0, &rc);
    store_bind_int64(s, 5, cgw_now_ms(), &rc);
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
    STORE_PG_DISPATCH(st, pg_session_delete(st, id, owner, err));
    /* One statement: the messages go with it through ON DELETE CASCADE. */
    if ((e = store_txn_check(st, err)) != CGW_OK ||
        (e = store_stmt_get(st, STMT_SESSION_DELETE, &s, err)) != CGW_OK)
        return e;
    store_bind_text(s, 1, id, &rc);
    store_bind_int64(s, 2, owner, &rc);
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
    STORE_PG_DISPATCH(st, pg_session_set_native_id(st, id, native_id, err));
    if ((e = store_txn_check(st, err)) != CGW_OK ||
        (e = store_stmt_get(st, STMT_SESSION_SET_NATIVE, &s, err)) != CGW_OK)
        return e;
    store_bind_text(s, 1, id, &rc);
    store_bind_text(s, 2, native_id, &rc);
    if (rc == SQLITE_OK)
        rc = store_step_once(s);
    if (rc != SQLITE_OK)
        return store_fail(st, s, rc, err, "set native id of session %s", id);
    if (sqlite3_changes(st->db) > 0)
        return CGW_OK;
    /* Nothing changed: either no such session or an id is already there. The
     * write was conditional, so reading afterwards cannot lose a race. */
    if ((e = store_stmt_get(st, STMT_SESSION_GET_NATIVE, &s, err)) != CGW_OK)
        return e;
    rc = SQLITE_OK;
    store_bind_text(s, 1, id, &rc);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(s);
    if (rc == SQLITE_DONE) {
        store_stmt_done(s);
        return cgw_error_set(err, CGW_ERR_NOT_FOUND, "store: no session %s", id);
    }
    if (rc != SQLITE_ROW)
        return store_fail(st, s, rc, err, "get native id of session %s", id);
    if (store_col_dup(s, 0, &have) < 0) {
        store_stmt_done(s);
        return cgw_error_set(err, CGW_ERR_NOMEM, "store: set native id: out of memory");
    }
    store_stmt_done(s);
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
    STORE_PG_DISPATCH(st, pg_session_touch(st, id, err));
    if ((e = store_txn_check(st, err)) != CGW_OK ||
        (e = store_stmt_get(st, STMT_SESSION_TOUCH, &s, err)) != CGW_OK)
        return e;
    store_bind_text(s, 1, id, &rc);
    store_bind_int64(s, 2, cgw_now_ms(), &rc);
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
    STORE_PG_DISPATCH(st, pg_session_last_seq(st, id, seq, err));
    if ((e = store_stmt_get(st, STMT_SESSION_LAST_SEQ, &s, err)) != CGW_OK)
        return e;
    store_bind_text(s, 1, id, &rc);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *seq = sqlite3_column_int64(s, 0);
        store_stmt_done(s);
        return CGW_OK;
    }
    if (rc == SQLITE_DONE) {
        store_stmt_done(s);
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
    enum cgw_err e = store_stmt_get(st, STMT_MESSAGE_GET_JSON, &s, err);

    if (e != CGW_OK)
        return e;
    store_bind_text(s, 1, session_id, &rc);
    store_bind_int64(s, 2, seq, &rc);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(s);
    if (rc == SQLITE_DONE) {
        /* Cannot happen inside the write transaction; say so rather than guess. */
        store_stmt_done(s);
        return cgw_error_set(err, CGW_ERR_INTERNAL,
                             "store: add message %lld to session %s: row vanished", (long long)seq,
                             session_id);
    }
    if (rc != SQLITE_ROW)
        return store_fail(st, s, rc, err, "add message %lld to session %s: re-read", (long long)seq,
                          session_id);
    have = (const char *)sqlite3_column_text(s, 0);
    if (!have) {
        store_stmt_done(s);
        return cgw_error_set(err, CGW_ERR_NOMEM, "store: add message: out of memory");
    }
    same = strcmp(have, json) == 0;
    store_stmt_done(s);
    if (!same)
        return cgw_error_set(err, CGW_ERR_CONFLICT,
                             "store: seq %lld of session %s already holds a different event",
                             (long long)seq, session_id);
    return CGW_OK;
}

/* Checks one event's arguments (store_message_add's rules). */
static enum cgw_err message_args(const char *what, const char *session_id, int64_t seq,
                                 const char *kind, const char *json, struct cgw_error *err)
{
    if (!session_id || !json || seq <= 0)
        return cgw_error_set(err, CGW_ERR_INVALID,
                             "store: %s: needs a session, a json and a seq > 0", what);
    if (!kind || !*kind || strlen(kind) >= KIND_SIZE)
        return cgw_error_set(err, CGW_ERR_INVALID, "store: %s: bad kind", what);
    return CGW_OK;
}

/* Inserts one event inside the caller's transaction; *inserted says whether the row went
 * in (false: an identical replay). last_seq is the caller's to raise. */
static enum cgw_err message_insert(struct store *st, const char *session_id, int64_t seq,
                                   const char *kind, const char *json, bool *inserted,
                                   struct cgw_error *err)
{
    sqlite3_stmt *s = NULL;
    int rc = SQLITE_OK;
    enum cgw_err e;

    *inserted = false;
    if ((e = store_stmt_get(st, STMT_MESSAGE_INSERT, &s, err)) != CGW_OK)
        return e;
    store_bind_text(s, 1, session_id, &rc);
    store_bind_int64(s, 2, seq, &rc);
    store_bind_text(s, 3, kind, &rc);
    store_bind_text(s, 4, json, &rc);
    if (rc == SQLITE_OK)
        rc = store_step_once(s);
    if (rc != SQLITE_OK) {
        if (store_code(rc) == CGW_ERR_NOT_FOUND) {
            store_stmt_done(s);
            return cgw_error_set(err, CGW_ERR_NOT_FOUND, "store: add message: no session %s",
                                 session_id);
        }
        return store_fail(st, s, rc, err, "add message %lld to session %s", (long long)seq,
                          session_id);
    }
    if (sqlite3_changes(st->db) == 0)
        return message_check_replay(st, session_id, seq, json, err);
    *inserted = true;
    return CGW_OK;
}

/* Raises sessions.last_seq to seq (never lowers it). */
static enum cgw_err message_raise_seq(struct store *st, const char *session_id, int64_t seq,
                                      struct cgw_error *err)
{
    sqlite3_stmt *s = NULL;
    int rc = SQLITE_OK;
    enum cgw_err e = store_stmt_get(st, STMT_MESSAGE_RAISE_SEQ, &s, err);

    if (e != CGW_OK)
        return e;
    store_bind_text(s, 1, session_id, &rc);
    store_bind_int64(s, 2, seq, &rc);
    if (rc == SQLITE_OK)
        rc = store_step_once(s);
    if (rc != SQLITE_OK)
        return store_fail(st, s, rc, err, "raise last seq of session %s", session_id);
    return CGW_OK;
}

enum cgw_err store_message_add(struct store *st, const char *session_id, int64_t seq,
                               const char *kind, const char *json, struct cgw_error *err)
{
    bool own, inserted;
    enum cgw_err e;

    if ((e = message_args("add message", session_id, seq, kind, json, err)) != CGW_OK)
        return e;
    STORE_PG_DISPATCH(st, pg_message_add(st, session_id, seq, kind, json, err));
    if ((e = store_txn_begin(st, STMT_BEGIN, &own, err)) != CGW_OK)
        return e;
    e = message_insert(st, session_id, seq, kind, json, &inserted, err);
    /* A replay leaves last_seq alone: it was raised when the row went in. */
    if (e == CGW_OK && inserted)
        e = message_raise_seq(st, session_id, seq, err);
    return store_txn_end(st, own, e, err);
}

enum cgw_err store_message_add_batch(struct store *st, const char *session_id,
                                     const struct store_message *msgs, size_t n,
                                     struct cgw_error *err)
{
    int64_t top = 0, first_clash = 0;
    size_t clashes = 0;
    bool own, inserted;
    enum cgw_err e;

    if (!session_id || (n > 0 && !msgs))
        return cgw_error_set(err, CGW_ERR_INVALID, "store: add messages: no session or events");
    for (size_t i = 0; i < n; i++) {
        if ((e = message_args("add messages", session_id, msgs[i].seq, msgs[i].kind, msgs[i].json,
                              err)) != CGW_OK)
            return e;
        if (i > 0 && msgs[i].seq <= msgs[i - 1].seq)
            return cgw_error_set(err, CGW_ERR_INVALID,
                                 "store: add messages: seq %lld after %lld (must increase)",
                                 (long long)msgs[i].seq, (long long)msgs[i - 1].seq);
    }
    if (n == 0)
        return CGW_OK;
    STORE_PG_DISPATCH(st, pg_message_add_batch(st, session_id, msgs, n, err));
    if ((e = store_txn_begin(st, STMT_BEGIN, &own, err)) != CGW_OK)
        return e;
    for (size_t i = 0; i < n && e == CGW_OK; i++) {
        e = message_insert(st, session_id, msgs[i].seq, msgs[i].kind, msgs[i].json, &inserted, err);
        if (e == CGW_ERR_CONFLICT) {
            /* Keep the history that is there, write the others. */
            if (clashes++ == 0)
                first_clash = msgs[i].seq;
            e = CGW_OK;
        } else if (e == CGW_OK && inserted) {
            top = msgs[i].seq; /* seqs increase: the last one inserted is the highest */
        }
    }
    if (e == CGW_OK && top > 0)
        e = message_raise_seq(st, session_id, top, err);
    e = store_txn_end(st, own, e, err);
    if (e == CGW_OK && clashes > 0)
        e = store_message_clash(session_id, first_clash, clashes, n, err);
    return e;
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
    STORE_PG_DISPATCH(st, pg_message_list(st, session_id, after_seq, before_seq, limit, backwards,
                                          out, n, has_more, err));
    e = store_stmt_get(st, backwards ? STMT_MESSAGE_LIST_BEFORE : STMT_MESSAGE_LIST_AFTER, &s, err);
    if (e != CGW_OK)
        return e;
    store_bind_text(s, 1, session_id, &rc);
    store_bind_int64(s, 2, after_seq, &rc);
    store_bind_int64(s, 3, before_seq > 0 ? before_seq : INT64_MAX, &rc);
    /* One row more than asked tells whether there is more, without a count. */
    store_bind_int64(s, 4, limit + 1, &rc);
    if (rc != SQLITE_OK)
        return store_fail(st, s, rc, err, "list messages of session %s", session_id);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (count == (size_t)limit) {
            more = true;
            break;
        }
        if (store_grow((void **)&list, &cap, count, sizeof *list) < 0 ||
            store_col_dup(s, 2, &list[count].json) < 0) {
            e = cgw_error_set(err, CGW_ERR_NOMEM, "store: list messages: out of memory");
            break;
        }
        list[count].seq = sqlite3_column_int64(s, 0);
        store_col_copy(s, 1, list[count].kind, sizeof list[count].kind);
        count++;
    }
    if (e == CGW_OK && rc != SQLITE_DONE && rc != SQLITE_ROW)
        e = store_fail(st, s, rc, err, "list messages of session %s", session_id);
    store_stmt_done(s);
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
    STORE_PG_DISPATCH(st, pg_rule_add(st, user_id, project_path, rule, err));
    if ((e = store_txn_check(st, err)) != CGW_OK ||
        (e = store_stmt_get(st, STMT_RULE_ADD, &s, err)) != CGW_OK)
        return e;
    store_bind_int64(s, 1, user_id, &rc);
    store_bind_text(s, 2, project_path, &rc);
    store_bind_text(s, 3, rule, &rc);
    store_bind_int64(s, 4, cgw_now_ms(), &rc);
    if (rc == SQLITE_OK)
        rc = store_step_once(s);
    if (rc != SQLITE_OK) {
        if (store_code(rc) == CGW_ERR_NOT_FOUND) {
            store_stmt_done(s);
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
    STORE_PG_DISPATCH(st, pg_rule_list(st, user_id, project_path, 0, out, n, err));
    if ((e = store_stmt_get(st, STMT_RULE_LIST, &s, err)) != CGW_OK)
        return e;
    store_bind_int64(s, 1, user_id, &rc);
    store_bind_text(s, 2, project_path, &rc);
    if (rc != SQLITE_OK)
        return store_fail(st, s, rc, err, "list rules");
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        struct store_rule *r;
        if (store_grow((void **)&list, &cap, count, sizeof *list) < 0) {
            e = cgw_error_set(err, CGW_ERR_NOMEM, "store: list rules: out of memory");
            break;
        }
        r = &list[count++]; /* counted first, so that a half-filled entry is freed too */
        r->id = sqlite3_column_int64(s, 0);
        r->user_id = sqlite3_column_int64(s, 1);
        r->created_ms = sqlite3_column_int64(s, 4);
        if (store_col_dup(s, 2, &r->project_path) < 0 || store_col_dup(s, 3, &r->rule) < 0) {
            e = cgw_error_set(err, CGW_ERR_NOMEM, "store: list rules: out of memory");
            break;
        }
    }
    if (e == CGW_OK && rc != SQLITE_DONE)
        e = store_fail(st, s, rc, err, "list rules");
    store_stmt_done(s);
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

    STORE_PG_DISPATCH(st, pg_rule_delete(st, user_id, rule_id, err));
    if ((e = store_txn_check(st, err)) != CGW_OK ||
        (e = store_stmt_get(st, STMT_RULE_DELETE, &s, err)) != CGW_OK)
        return e;
    store_bind_int64(s, 1, user_id, &rc);
    store_bind_int64(s, 2, rule_id, &rc);
    if (rc == SQLITE_OK)
        rc = store_step_once(s);
    if (rc != SQLITE_OK)
        return store_fail(st, s, rc, err, "delete rule %lld", (long long)rule_id);
    if (sqlite3_changes(st->db) == 0)
        return cgw_error_set(err, CGW_ERR_NOT_FOUND, "store: no rule %lld", (long long)rule_id);
    return CGW_OK;
}
