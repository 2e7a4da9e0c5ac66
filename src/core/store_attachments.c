/* store_attachments.c: files uploaded into a session, in both backends.
 *
 * The statements are prepared per call (uploads and downloads are rare next to
 * events), so this file adds nothing to the statement cache of store.c. A put runs
 * in one write transaction that first locks the session (SQLite: BEGIN IMMEDIATE
 * holds the database's write lock; PostgreSQL: SELECT ... FOR UPDATE on the session
 * row), then counts and inserts, so two uploads at once cannot both pass a limit. Under
 * the same lock created_ms is made larger than the session's newest, so "oldest first"
 * is the upload order even within one millisecond. */
#include "core/store_priv.h"
#ifdef HAVE_POSTGRES
#include "core/store_pg.h"
#endif

#include <stdlib.h>
#include <string.h>

#define ATT_COLS "id, session_id, user_id, name, mime_type, size, created_ms"
#define ATT_LIST_MAX 1000

bool store_attachment_id_valid(const char *id)
{
    return id && strncmp(id, "att_", 4) == 0 && cgw_uuid_valid(id + 4);
}

static enum cgw_err check_meta(const struct store_attachment *m, struct cgw_error *err)
{
    size_t nl, tl;

    if (!m || !store_attachment_id_valid(m->id) || !cgw_uuid_valid(m->session_id))
        return cgw_error_set(err, CGW_ERR_INVALID, "store: put attachment: bad id");
    nl = strnlen(m->name, sizeof m->name);
    tl = strnlen(m->mime_type, sizeof m->mime_type);
    if (nl == 0 || nl >= sizeof m->name || tl == 0 || tl >= sizeof m->mime_type)
        return cgw_error_set(err, CGW_ERR_INVALID, "store: put attachment: bad name or type");
    return CGW_OK;
}

/* The limits, given what the session holds; CGW_OK or CGW_ERR_LIMIT. */
static enum cgw_err check_limits(int64_t count, int64_t bytes, size_t len, int64_t max_count,
                                 int64_t max_total, struct cgw_error *err)
{
    if (max_count > 0 && count >= max_count)
        return cgw_error_set(err, CGW_ERR_LIMIT,
                             "the session already holds %lld attachments (the limit)",
                             (long long)count);
    if (max_total > 0 && (uint64_t)bytes + len > (uint64_t)max_total)
        return cgw_error_set(err, CGW_ERR_LIMIT,
                             "the session's attachments would total %llu bytes, over %lld",
                             (unsigned long long)((uint64_t)bytes + len), (long long)max_total);
    return CGW_OK;
}

/* ---- SQLite ---------------------------------------------------------------------- */

static enum cgw_err sq_prepare(struct store *st, const char *sql, sqlite3_stmt **s,
                               struct cgw_error *err)
{
    int rc = sqlite3_prepare_v2(st->db, sql, -1, s, NULL);

    if (rc != SQLITE_OK) {
        *s = NULL;
        return store_fail(st, NULL, rc, err, "prepare attachment statement");
    }
    return CGW_OK;
}

static void meta_from_row(sqlite3_stmt *s, struct store_attachment *m)
{
    memset(m, 0, sizeof *m);
    store_col_copy(s, 0, m->id, sizeof m->id);
    store_col_copy(s, 1, m->session_id, sizeof m->session_id);
    m->user_id = sqlite3_column_int64(s, 2);
    store_col_copy(s, 3, m->name, sizeof m->name);
    store_col_copy(s, 4, m->mime_type, sizeof m->mime_type);
    m->size = sqlite3_column_int64(s, 5);
    m->created_ms = sqlite3_column_int64(s, 6);
}

static enum cgw_err sq_count_size(struct store *st, const char *sid, int64_t *count, int64_t *bytes,
                                  int64_t *newest, struct cgw_error *err)
{
    sqlite3_stmt *s;
    int rc = SQLITE_OK;
    enum cgw_err e = sq_prepare(
        st, "SELECT count(*), coalesce(sum(size), 0) FROM attachments WHERE session_id = ?1", &s,
        err);

    if (e != CGW_OK)
        return e;
    store_bind_text(s, 1, sid, &rc);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(s);
    if (rc != SQLITE_ROW) {
        e = store_fail(st, s, rc, err, "count attachments of %s", sid);
        sqlite3_finalize(s);
        return e;
    }
    *count = sqlite3_column_int64(s, 0);
    *bytes = sqlite3_column_int64(s, 1);
    if (newest)
        *newest = sqlite3_column_int64(s, 2);
    sqlite3_finalize(s);
    return CGW_OK;
}

/* Inside the caller's write transaction: the session check, the limits, the insert. */
static enum cgw_err sq_put_locked(struct store *st, const struct store_attachment *m,
                                  const void *data, size_t len, int64_t max_count,
                                  int64_t max_total, struct cgw_error *err)
{
    sqlite3_stmt *s;
    int rc = SQLITE_OK;
    int64_t count, bytes, newest, now;
    enum cgw_err e = sq_prepare(st, "SELECT 1 FROM sessions WHERE id = ?1 AND owner = ?2", &s, err);

    if (e != CGW_OK)
        return e;
    store_bind_text(s, 1, m->session_id, &rc);
    store_bind_int64(s, 2, m->user_id, &rc);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(s);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        e = store_fail(st, s, rc, err, "find session %s", m->session_id);
        sqlite3_finalize(s);
        return e;
    }
    sqlite3_finalize(s);
    if (rc == SQLITE_DONE)
        return cgw_error_set(err, CGW_ERR_NOT_FOUND, "store: put attachment: no session %s",
                             m->session_id);
    if ((e = sq_count_size(st, m->session_id, &count, &bytes, &newest, err)) != CGW_OK ||
        (e = check_limits(count, bytes, len, max_count, max_total, err)) != CGW_OK)
        return e;
    if ((e = sq_prepare(st,
                        "INSERT INTO attachments (id, session_id, user_id, name, mime_type, size, "
                        "data, created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                        &s, err)) != CGW_OK)
        return e;
    rc = SQLITE_OK;
    store_bind_text(s, 1, m->id, &rc);
    store_bind_text(s, 2, m->session_id, &rc);
    store_bind_int64(s, 3, m->user_id, &rc);
    store_bind_text(s, 4, m->name, &rc);
    store_bind_text(s, 5, m->mime_type, &rc);
    store_bind_int64(s, 6, (int64_t)len, &rc);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_blob64(s, 7, len ? data : "", len, SQLITE_STATIC);
    now = cgw_now_ms();
    store_bind_int64(s, 8, now > newest ? now : newest + 1, &rc);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(s);
    if (rc != SQLITE_DONE) {
        e = store_code(rc);
        if (e == CGW_ERR_CONFLICT)
            e = cgw_error_set(err, e, "store: put attachment %s: id exists", m->id);
        else
            e = store_fail(st, s, rc, err, "insert attachment %s", m->id);
        sqlite3_finalize(s);
        return e;
    }
    sqlite3_finalize(s);
    return CGW_OK;
}

static enum cgw_err sq_get(struct store *st, const char *id, struct store_attachment *meta,
                           void **data, size_t *len, struct cgw_error *err)
{
    sqlite3_stmt *s;
    int rc = SQLITE_OK;
    enum cgw_err e = sq_prepare(st,
                                data ? "SELECT " ATT_COLS ", data FROM attachments WHERE id = ?1"
                                     : "SELECT " ATT_COLS " FROM attachments WHERE id = ?1",
                                &s, err);

    if (e != CGW_OK)
        return e;
    store_bind_text(s, 1, id, &rc);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(s);
    if (rc == SQLITE_DONE) {
        sqlite3_finalize(s);
        return cgw_error_set(err, CGW_ERR_NOT_FOUND, "store: no attachment %s", id);
    }
    if (rc != SQLITE_ROW) {
        e = store_fail(st, s, rc, err, "get attachment %s", id);
        sqlite3_finalize(s);
        return e;
    }
    meta_from_row(s, meta);
    if (data) {
        const void *b = sqlite3_column_blob(s, 7);
        size_t n = (size_t)sqlite3_column_bytes(s, 7);
        *data = malloc(n ? n : 1);
        if (!*data) {
            sqlite3_finalize(s);
            return cgw_error_set(err, CGW_ERR_NOMEM, "store: get attachment %s: out of memory", id);
        }
        if (n)
            memcpy(*data, b, n);
        if (len)
            *len = n;
    }
    sqlite3_finalize(s);
    return CGW_OK;
}

static enum cgw_err sq_list(struct store *st, const char *sid, int64_t max,
                            struct store_attachment **out, size_t *n, struct cgw_error *err)
{
    sqlite3_stmt *s;
    int rc = SQLITE_OK;
    size_t cap = 0;
    enum cgw_err e = sq_prepare(st,
                                "SELECT " ATT_COLS " FROM attachments WHERE session_id = ?1 "
                                "ORDER BY created_ms, rowid LIMIT ?2",
                                &s, err);

    if (e != CGW_OK)
        return e;
    store_bind_text(s, 1, sid, &rc);
    store_bind_int64(s, 2, max, &rc);
    while (rc == SQLITE_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (store_grow((void **)out, &cap, *n, sizeof **out) < 0) {
            sqlite3_finalize(s);
            return cgw_error_set(err, CGW_ERR_NOMEM, "store: list attachments: out of memory");
        }
        meta_from_row(s, &(*out)[(*n)++]);
        rc = SQLITE_OK;
    }
    if (rc != SQLITE_DONE) {
        e = store_fail(st, s, rc, err, "list attachments of %s", sid);
        sqlite3_finalize(s);
        return e;
    }
    sqlite3_finalize(s);
    return CGW_OK;
}

/* ---- PostgreSQL -------------------------------------------------------------------- */

#ifdef HAVE_POSTGRES
static void pg_meta_from_row(const PGresult *r, int row, struct store_attachment *m)
{
    memset(m, 0, sizeof *m);
    pg_copy(r, row, 0, m->id, sizeof m->id);
    pg_copy(r, row, 1, m->session_id, sizeof m->session_id);
    m->user_id = pg_int(r, row, 2);
    pg_copy(r, row, 3, m->name, sizeof m->name);
    pg_copy(r, row, 4, m->mime_type, sizeof m->mime_type);
    m->size = pg_int(r, row, 5);
    m->created_ms = pg_int(r, row, 6);
}

static enum cgw_err pq_count_size(struct store *st, const char *sid, int64_t *count, int64_t *bytes,
                                  int64_t *newest, struct cgw_error *err)
{
    struct pg_params p = {0};
    PGresult *r;
    enum cgw_err e;

    pgp_text(&p, sid);
    e = pg_exec(st,
                "SELECT count(*), coalesce(sum(size), 0) FROM attachments WHERE session_id = $1",
                &p, &r, err, "count attachments of %s", sid);
    if (e != CGW_OK)
        return e;
    *count = pg_int(r, 0, 0);
    *bytes = pg_int(r, 0, 1);
    if (newest)
        *newest = pg_int(r, 0, 2);
    PQclear(r);
    return CGW_OK;
}

static enum cgw_err pq_put_locked(struct store *st, const struct store_attachment *m,
                                  const void *data, size_t len, int64_t max_count,
                                  int64_t max_total, struct cgw_error *err)
{
    struct pg_params p = {0};
    PGresult *r;
    int64_t count, bytes, newest, now;
    int rows;
    enum cgw_err e;

    pgp_text(&p, m->session_id);
    pgp_int(&p, m->user_id);
    e = pg_exec(st, "SELECT 1 FROM sessions WHERE id = $1 AND owner = $2 FOR UPDATE", &p, &r, err,
                "lock session %s", m->session_id);
    if (e != CGW_OK)
        return e;
    rows = PQntuples(r);
    PQclear(r);
    if (rows == 0)
        return cgw_error_set(err, CGW_ERR_NOT_FOUND, "store: put attachment: no session %s",
                             m->session_id);
    if ((e = pq_count_size(st, m->session_id, &count, &bytes, &newest, err)) != CGW_OK ||
        (e = check_limits(count, bytes, len, max_count, max_total, err)) != CGW_OK)
        return e;
    if (len > (size_t)INT32_MAX)
        return cgw_error_set(err, CGW_ERR_TOO_LARGE, "store: put attachment: too large");
    memset(&p, 0, sizeof p);
    pgp_text(&p, m->id);
    pgp_text(&p, m->session_id);
    pgp_int(&p, m->user_id);
    pgp_text(&p, m->name);
    pgp_text(&p, m->mime_type);
    pgp_int(&p, (int64_t)len);
    pgp_bin(&p, len ? data : "", (int)len);
    now = cgw_now_ms();
    pgp_int(&p, now > newest ? now : newest + 1);
    e = pg_exec(st,
                "INSERT INTO attachments (id, session_id, user_id, name, mime_type, size, data, "
                "created_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
                &p, &r, err, "insert attachment %s", m->id);
    if (e != CGW_OK)
        return e;
    rows = (int)pg_changes(r);
    PQclear(r);
    if (rows == 0)
        return cgw_error_set(err, CGW_ERR_CONFLICT, "store: put attachment %s: id exists", m->id);
    return CGW_OK;
}

static enum cgw_err pq_get(struct store *st, const char *id, struct store_attachment *meta,
                           void **data, size_t *len, struct cgw_error *err)
{
    struct pg_params p = {0};
    PGresult *r;
    enum cgw_err e;

    pgp_text(&p, id);
    e = pg_exec(st,
                data ? "SELECT " ATT_COLS ", data FROM attachments WHERE id = $1"
                     : "SELECT " ATT_COLS " FROM attachments WHERE id = $1",
                &p, &r, err, "get attachment %s", id);
    if (e != CGW_OK)
        return e;
    if (PQntuples(r) == 0) {
        PQclear(r);
        return cgw_error_set(err, CGW_ERR_NOT_FOUND, "store: no attachment %s", id);
    }
    pg_meta_from_row(r, 0, meta);
    if (data) {
        size_t n = 0;
        unsigned char *b = PQunescapeBytea((const unsigned char *)PQgetvalue(r, 0, 7), &n);
        PQclear(r);
        if (!b)
            return cgw_error_set(err, CGW_ERR_NOMEM, "store: get attachment %s: out of memory", id);
        *data = malloc(n ? n : 1);
        if (*data && n)
            memcpy(*data, b, n);
        PQfreemem(b);
        if (!*data)
            return cgw_error_set(err, CGW_ERR_NOMEM, "store: get attachment %s: out of memory", id);
        if (len)
            *len = n;
        return CGW_OK;
    }
    PQclear(r);
    return CGW_OK;
}

static enum cgw_err pq_list(struct store *st, const char *sid, int64_t max,
                            struct store_attachment **out, size_t *n, struct cgw_error *err)
{
    struct pg_params p = {0};
    PGresult *r;
    int rows;
    enum cgw_err e;

    pgp_text(&p, sid);
    pgp_int(&p, max);
    e = pg_exec(st,
                "SELECT " ATT_COLS " FROM attachments WHERE session_id = $1 "
                "ORDER BY created_ms, n LIMIT $2",
                &p, &r, err, "list attachments of %s", sid);
    if (e != CGW_OK)
        return e;
    rows = PQntuples(r);
    if (rows > 0) {
        *out = calloc((size_t)rows, sizeof **out);
        if (!*out) {
            PQclear(r);
            return cgw_error_set(err, CGW_ERR_NOMEM, "store: list attachments: out of memory");
        }
        for (int i = 0; i < rows; i++)
            pg_meta_from_row(r, i, &(*out)[i]);
        *n = (size_t)rows;
    }
    PQclear(r);
    return CGW_OK;
}
#endif

/* ---- the API ----------------------------------------------------------------------- */

enum cgw_err store_attachment_put(struct store *st, const struct store_attachment *meta,
                                  const void *data, size_t len, int64_t max_count,
                                  int64_t max_total, struct cgw_error *err)
{
    bool own = false;
    enum cgw_err e;

    if ((e = check_meta(meta, err)) != CGW_OK)
        return e;
    if (len && !data)
        return cgw_error_set(err, CGW_ERR_INVALID, "store: put attachment: no data");
    if ((e = store_txn_begin(st, STMT_BEGIN, &own, err)) != CGW_OK)
        return e;
#ifdef HAVE_POSTGRES
    if (st->pg)
        e = pq_put_locked(st, meta, data, len, max_count, max_total, err);
    else
#endif
        e = sq_put_locked(st, meta, data, len, max_count, max_total, err);
    return store_txn_end(st, own, e, err);
}

enum cgw_err store_attachment_get(struct store *st, const char *id, struct store_attachment *meta,
                                  void **data, size_t *len, struct cgw_error *err)
{
    if (data)
        *data = NULL;
    if (len)
        *len = 0;
    if (!id || !meta)
        return cgw_error_set(err, CGW_ERR_INVALID, "store: get attachment: no id");
    if (!store_attachment_id_valid(id))
        return cgw_error_set(err, CGW_ERR_NOT_FOUND, "store: no attachment %.80s", id);
    STORE_PG_DISPATCH(st, pq_get(st, id, meta, data, len, err));
    return sq_get(st, id, meta, data, len, err);
}

enum cgw_err store_attachment_meta(struct store *st, const char *id, struct store_attachment *meta,
                                   struct cgw_error *err)
{
    return store_attachment_get(st, id, meta, NULL, NULL, err);
}

enum cgw_err store_attachment_list(struct store *st, const char *session_id, int64_t max,
                                   struct store_attachment **out, size_t *n, struct cgw_error *err)
{
    enum cgw_err e;

    *out = NULL;
    *n = 0;
    if (!session_id)
        return cgw_error_set(err, CGW_ERR_INVALID, "store: list attachments: no session");
    if (max <= 0 || max > ATT_LIST_MAX)
        max = ATT_LIST_MAX;
#ifdef HAVE_POSTGRES
    if (st->pg)
        e = pq_list(st, session_id, max, out, n, err);
    else
#endif
        e = sq_list(st, session_id, max, out, n, err);
    if (e != CGW_OK) {
        free(*out);
        *out = NULL;
        *n = 0;
    }
    return e;
}

enum cgw_err store_attachments_count_size(struct store *st, const char *session_id, int64_t *count,
                                          int64_t *bytes, struct cgw_error *err)
{
    *count = *bytes = 0;
    if (!session_id)
        return cgw_error_set(err, CGW_ERR_INVALID, "store: count attachments: no session");
    STORE_PG_DISPATCH(st, pq_count_size(st, session_id, count, bytes, NULL, err));
    return sq_count_size(st, session_id, count, bytes, NULL, err);
}

enum cgw_err store_attachment_delete(struct store *st, const char *id, const char *session_id,
                                     int64_t user_id, struct cgw_error *err)
{
    int64_t changed = 0;
    enum cgw_err e;

    if (!id || !session_id)
        return cgw_error_set(err, CGW_ERR_INVALID, "store: delete attachment: no id");
    if (!store_attachment_id_valid(id))
        return cgw_error_set(err, CGW_ERR_NOT_FOUND, "store: no attachment %.80s", id);
#ifdef HAVE_POSTGRES
    if (st->pg) {
        struct pg_params p = {0};
        PGresult *r;
        pgp_text(&p, id);
        pgp_text(&p, session_id);
        pgp_int(&p, user_id);
        e = pg_exec(st,
                    "DELETE FROM attachments WHERE id = $1 AND session_id = $2 AND user_id = $3",
                    &p, &r, err, "delete attachment %s", id);
        if (e != CGW_OK)
            return e;
        changed = pg_changes(r);
        PQclear(r);
    } else
#endif
    {
        sqlite3_stmt *s;
        int rc = SQLITE_OK;
        if ((e = store_txn_check(st, err)) != CGW_OK ||
            (e = sq_prepare(st,
                            "DELETE FROM attachments WHERE id = ?1 AND session_id = ?2 AND "
                            "user_id = ?3",
                            &s, err)) != CGW_OK)
            return e;
        store_bind_text(s, 1, id, &rc);
        store_bind_text(s, 2, session_id, &rc);
        store_bind_int64(s, 3, user_id, &rc);
        if (rc == SQLITE_OK)
            rc = sqlite3_step(s);
        if (rc != SQLITE_DONE) {
            e = store_fail(st, s, rc, err, "delete attachment %s", id);
            sqlite3_finalize(s);
            return e;
        }
        sqlite3_finalize(s);
        changed = sqlite3_changes(st->db);
    }
    if (changed == 0)
        return cgw_error_set(err, CGW_ERR_NOT_FOUND, "store: no attachment %s", id);
    return CGW_OK;
}
