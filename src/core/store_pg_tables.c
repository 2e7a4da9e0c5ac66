/* store_pg_tables.c: users, tokens, sessions, messages and rules on PostgreSQL. The
 * public functions in store_users.c, store_sessions.c and store_rules.c check their
 * arguments and hand over here; the answers (codes, texts, orders) are the SQLite
 * backend's. */
#include "core/store_pg.h"

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define SESSION_COLS                                                                               \
    "id, owner, provider, native_id, project_path, name, archived, created_ms, updated_ms, "       \
    "last_seq, host"
#define TOKEN_COLS                                                                                 \
    "t.id, t.user_id, u.name, t.public_id, t.label, encode(t.hash, 'hex'), t.revoked, "            \
    "t.created_ms, t.last_used_ms, u.disabled"

/* ---- users -------------------------------------------------------------------------- */

static void user_from_row(const PGresult *r, int i, struct store_user *out)
{
    memset(out, 0, sizeof *out);
    out->id = pg_int(r, i, 0);
    pg_copy(r, i, 1, out->name, sizeof out->name);
    out->disabled = pg_int(r, i, 2) != 0;
    out->created_ms = pg_int(r, i, 3);
}

enum cgw_err pg_user_add(struct store *st, const char *name, int64_t *id, struct cgw_error *err)
{
    struct pg_params p = {0};
    PGresult *r;
    enum cgw_err e;

    if ((e = store_txn_check(st, err)) != CGW_OK)
        return e;
    pgp_text(&p, name);
    pgp_int(&p, cgw_now_ms());
    e = pg_exec(st,
                "INSERT INTO users (name, disabled, created_ms) VALUES ($1, 0, $2) "
                "ON CONFLICT (name) DO NOTHING RETURNING id",
                &p, &r, err, "add user %s", name);
    if (e != CGW_OK)
        return e;
    /* DO NOTHING keeps a caller's transaction alive, as SQLite's failed statement does. */
    if (PQntuples(r) == 0) {
        PQclear(r);
        return cgw_error_set(err, CGW_ERR_CONFLICT, "store: add user %s: name exists", name);
    }
    if (id)
        *id = pg_int(r, 0, 0);
    PQclear(r);
    return CGW_OK;
}

enum cgw_err pg_user_get(struct store *st, const char *name, int64_t id, struct store_user *out,
                         struct cgw_error *err)
{
    struct pg_params p = {0};
    PGresult *r;
    enum cgw_err e;

    if (name)
        pgp_text(&p, name);
    else
        pgp_int(&p, id);
    e = pg_exec(st,
                name ? "SELECT id, name, disabled, created_ms FROM users WHERE name = $1"
                     : "SELECT id, name, disabled, created_ms FROM users WHERE id = $1",
                &p, &r, err, "get user");
    if (e != CGW_OK)
        return e;
    if (PQntuples(r) == 0) {
        PQclear(r);
        if (name)
            return cgw_error_set(err, CGW_ERR_NOT_FOUND, "store: no user %s", name);
        return cgw_error_set(err, CGW_ERR_NOT_FOUND, "store: no user with id %lld", (long long)id);
    }
    user_from_row(r, 0, out);
    PQclear(r);
    return CGW_OK;
}

enum cgw_err pg_user_set_disabled(struct store *st, const char *name, bool disabled,
                                  struct cgw_error *err)
{
    struct pg_params p = {0};
    PGresult *r;
    int64_t changed;
    enum cgw_err e;

    if ((e = store_txn_check(st, err)) != CGW_OK)
        return e;
    pgp_text(&p, name);
    pgp_int(&p, disabled ? 1 : 0);
    e = pg_exec(st, "UPDATE users SET disabled = $2 WHERE name = $1", &p, &r, err, "%s user %s",
                disabled ? "disable" : "enable", name);
    if (e != CGW_OK)
        return e;
    changed = pg_changes(r);
    PQclear(r);
    if (changed == 0)
        return cgw_error_set(err, CGW_ERR_NOT_FOUND, "store: no user %s", name);
    return CGW_OK;
}

enum cgw_err pg_user_list(struct store *st, struct store_user **out, size_t *n,
                          struct cgw_error *err)
{
    PGresult *r;
    int rows;
    enum cgw_err e = pg_exec(st, "SELECT id, name, disabled, created_ms FROM users ORDER BY name",
                             NULL, &r, err, "list users");

    if (e != CGW_OK)
        return e;
    rows = PQntuples(r);
    if (rows > 0) {
        *out = calloc((size_t)rows, sizeof **out);
        if (!*out) {
            PQclear(r);
            return cgw_error_set(err, CGW_ERR_NOMEM, "store: list users: out of memory");
        }
    }
    for (int i = 0; i < rows; i++)
        user_from_row(r, i, &(*out)[i]);
    *n = (size_t)rows;
    PQclear(r);
    return CGW_OK;
}

/* ---- tokens ------------------------------------------------------------------------- */

static int hex_val(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static enum cgw_err token_from_row(const PGresult *r, int i, struct store_token *out,
                                   bool *user_disabled, struct cgw_error *err)
{
    const char *hex = PQgetvalue(r, i, 5);

    memset(out, 0, sizeof *out);
    out->id = pg_int(r, i, 0);
    out->user_id = pg_int(r, i, 1);
    pg_copy(r, i, 2, out->user_name, sizeof out->user_name);
    pg_copy(r, i, 3, out->public_id, sizeof out->public_id);
    pg_copy(r, i, 4, out->label, sizeof out->label);
    if (strlen(hex) != 2 * sizeof out->hash)
        return cgw_error_set(err, CGW_ERR_INTERNAL, "store: token %lld has a malformed hash",
                             (long long)out->id);
    for (size_t k = 0; k < sizeof out->hash; k++) {
        int hi = hex_val(hex[2 * k]), lo = hex_val(hex[2 * k + 1]);
        if (hi < 0 || lo < 0)
            return cgw_error_set(err, CGW_ERR_INTERNAL, "store: token %lld has a malformed hash",
                                 (long long)out->id);
        out->hash[k] = (unsigned char)(hi << 4 | lo);
    }
    out->revoked = pg_int(r, i, 6) != 0;
    out->created_ms = pg_int(r, i, 7);
    out->last_used_ms = pg_int(r, i, 8);
    if (user_disabled)
        *user_disabled = pg_int(r, i, 9) != 0;
    return CGW_OK;
}

enum cgw_err pg_token_add(struct store *st, int64_t user_id, const char *public_id,
                          const unsigned char hash[32], const char *label, int64_t *id,
                          struct cgw_error *err)
{
    struct pg_params p = {0};
    PGresult *r;
    enum cgw_err e;

    if ((e = store_txn_check(st, err)) != CGW_OK)
        return e;
    pgp_int(&p, user_id);
    pgp_text(&p, public_id);
    pgp_bin(&p, hash, 32);
    pgp_text(&p, label);
    pgp_int(&p, cgw_now_ms());
    /* The user is tested in the statement, so that neither a missing user nor a taken
     * public id is an error that would abort a caller's transaction. */
    e = pg_exec(st,
                "INSERT INTO tokens (user_id, public_id, hash, label, created_ms) "
                "SELECT $1::bigint, $2::text, $3::bytea, $4::text, $5::bigint WHERE EXISTS (SELECT "
                "1 FROM users WHERE id = $1) "
                "ON CONFLICT (public_id) DO NOTHING RETURNING id",
                &p, &r, err, "add token");
    if (e != CGW_OK)
        return e;
    if (PQntuples(r) == 1) {
        if (id)
            *id = pg_int(r, 0, 0);
        PQclear(r);
        return CGW_OK;
    }
    PQclear(r);
    p.n = 1;
    if ((e = pg_exec(st, "SELECT 1 FROM users WHERE id = $1", &p, &r, err, "add token")) != CGW_OK)
        return e;
    e = PQntuples(r) == 0 ? CGW_ERR_NOT_FOUND : CGW_ERR_CONFLICT;
    PQclear(r);
    if (e == CGW_ERR_CONFLICT)
        return cgw_error_set(err, e, "store: add token: public id %s exists", public_id);
    return cgw_error_set(err, e, "store: add token: no user with id %lld", (long long)user_id);
}

enum cgw_err pg_token_find(struct store *st, const char *public_id, struct store_token *out,
                           bool *user_disabled, struct cgw_error *err)
{
    struct pg_params p = {0};
    PGresult *r;
    enum cgw_err e;

    pgp_text(&p, public_id);
    e = pg_exec(st,
                "SELECT " TOKEN_COLS " FROM tokens t JOIN users u ON u.id = t.user_id "
                "WHERE t.public_id = $1",
                &p, &r, err, "find token");
    if (e != CGW_OK)
        return e;
    if (PQntuples(r) == 0) {
        PQclear(r);
        return cgw_error_set(err, CGW_ERR_NOT_FOUND, "store: no token %s", public_id);
    }
    e = token_from_row(r, 0, out, user_disabled, err);
    PQclear(r);
    return e;
}

enum cgw_err pg_token_touch(struct store *st, int64_t id, struct cgw_error *err)
{
    struct pg_params p = {0};
    PGresult *r;
    int64_t now = cgw_now_ms();
    enum cgw_err e;

    if ((e = store_txn_check(st, err)) != CGW_OK)
        return e;
    pgp_int(&p, id);
    pgp_int(&p, now);
    pgp_int(&p, now - STORE_TOKEN_TOUCH_EVERY_MS);
    e = pg_exec(st, "UPDATE tokens SET last_used_ms = $2 WHERE id = $1 AND last_used_ms < $3", &p,
                &r, err, "touch token %lld", (long long)id);
    if (e == CGW_OK)
        PQclear(r);
    return e;
}

enum cgw_err pg_token_list(struct store *st, int64_t user_id, struct store_token **out, size_t *n,
                           struct cgw_error *err)
{
    struct pg_params p = {0};
    PGresult *r;
    int rows;
    enum cgw_err e;

    pgp_int(&p, user_id);
    e = pg_exec(st,
                "SELECT " TOKEN_COLS " FROM tokens t JOIN users u ON u.id = t.user_id "
                "WHERE $1::bigint <= 0 OR t.user_id = $1 ORDER BY t.created_ms, t.id",
                &p, &r, err, "list tokens");
    if (e != CGW_OK)
        return e;
    rows = PQntuples(r);
    if (rows > 0 && !(*out = calloc((size_t)rows, sizeof **out))) {
        PQclear(r);
        return cgw_error_set(err, CGW_ERR_NOMEM, "store: list tokens: out of memory");
    }
    for (int i = 0; i < rows; i++) {
        if ((e = token_from_row(r, i, &(*out)[i], NULL, err)) != CGW_OK) {
            free(*out);
            *out = NULL;
            PQclear(r);
            return e;
        }
    }
    *n = (size_t)rows;
    PQclear(r);
    return CGW_OK;
}

enum cgw_err pg_token_revoke(struct store *st, int64_t id, struct cgw_error *err)
{
    struct pg_params p = {0};
    PGresult *r;
    int64_t changed;
    enum cgw_err e;

    if ((e = store_txn_check(st, err)) != CGW_OK)
        return e;
    pgp_int(&p, id);
    e = pg_exec(st, "UPDATE tokens SET revoked = 1 WHERE id = $1", &p, &r, err, "revoke token %lld",
                (long long)id);
    if (e != CGW_OK)
        return e;
    changed = pg_changes(r);
    PQclear(r);
    if (changed == 0)
        return cgw_error_set(err, CGW_ERR_NOT_FOUND, "store: no token with id %lld", (long long)id);
    return CGW_OK;
}

/* ---- sessions ----------------------------------------------------------------------- */

static int session_from_row(const PGresult *r, int i, struct store_session *out)
{
    memset(out, 0, sizeof *out);
    pg_copy(r, i, 0, out->id, sizeof out->id);
    out->owner = pg_int(r, i, 1);
    pg_copy(r, i, 2, out->provider, sizeof out->provider);
    out->archived = pg_int(r, i, 6) != 0;
    out->created_ms = pg_int(r, i, 7);
    out->updated_ms = pg_int(r, i, 8);
    out->last_seq = pg_int(r, i, 9);
    if (pg_dup(r, i, 3, &out->native_id) < 0 || pg_dup(r, i, 4, &out->project_path) < 0 ||
        pg_dup(r, i, 5, &out->name) < 0 || pg_dup(r, i, 10, &out->host) < 0) {
        store_session_clear(out);
        return -1;
    }
    return 0;
}

enum cgw_err pg_session_create(struct store *st, const struct store_session *s, int64_t created,
                               int64_t updated, struct cgw_error *err)
{
    struct pg_params p = {0};
    PGresult *r;
    enum cgw_err e;

    if ((e = store_txn_check(st, err)) != CGW_OK)
        return e;
    pgp_text(&p, s->id);
    pgp_int(&p, s->owner);
    pgp_text(&p, s->provider);
    pgp_text(&p, s->project_path);
    pgp_text(&p, s->name ? s->name : "");
    pgp_int(&p, s->archived ? 1 : 0);
    pgp_int(&p, created);
    pgp_int(&p, updated);
    pgp_text(&p, s->host && s->host[0] ? s->host : NULL);
    e = pg_exec(
        st,
        "INSERT INTO sessions (" SESSION_COLS ") "
        "SELECT $1::text, $2::bigint, $3::text, NULL, $4::text, $5::text, $6::int, $7::bigint, "
        "$8::bigint, 0, $9::text "
        "WHERE EXISTS (SELECT 1 FROM users WHERE id = $2) "
        "ON CONFLICT (id) DO NOTHING RETURNING 1",
        &p, &r, err, "insert session %s", s->id);
    if (e != CGW_OK)
        return e;
    if (PQntuples(r) == 1) {
        PQclear(r);
        return CGW_OK;
    }
    PQclear(r);
    p.n = 1;
    if ((e = pg_exec(st, "SELECT 1 FROM sessions WHERE id = $1", &p, &r, err, "insert session %s",
                     s->id)) != CGW_OK)
        return e;
    e = PQntuples(r) ? CGW_ERR_CONFLICT : CGW_ERR_NOT_FOUND;
    PQclear(r);
    if (e == CGW_ERR_CONFLICT)
        return cgw_error_set(err, e, "store: create session %s: id exists", s->id);
    return cgw_error_set(err, e, "store: create session %s: no user with id %lld", s->id,
                         (long long)s->owner);
}

enum cgw_err pg_session_get(struct store *st, const char *id, int64_t owner,
                            struct store_session *out, struct cgw_error *err)
{
    struct pg_params p = {0};
    PGresult *r;
    int bad;
    enum cgw_err e;

    pgp_text(&p, id);
    pgp_int(&p, owner);
    e = pg_exec(st,
                "SELECT " SESSION_COLS " FROM sessions "
                "WHERE id = $1 AND ($2::bigint <= 0 OR owner = $2)",
                &p, &r, err, "get session %s", id);
    if (e != CGW_OK)
        return e;
    if (PQntuples(r) == 0) {
        PQclear(r);
        return cgw_error_set(err, CGW_ERR_NOT_FOUND, "store: no session %s", id);
    }
    bad = session_from_row(r, 0, out);
    PQclear(r);
    if (bad < 0)
        return cgw_error_set(err, CGW_ERR_NOMEM, "store: get session %s: out of memory", id);
    return CGW_OK;
}

#define SESSION_FILTER "WHERE ($1::bigint <= 0 OR owner = $1) AND ($2::int < 0 OR archived = $2)"

static enum cgw_err session_page(struct store *st, int64_t owner, int archived, int64_t limit,
                                 int64_t offset, struct store_session **out, size_t *n,
                                 int64_t *total, struct cgw_error *err)
{
    struct pg_params p = {0};
    PGresult *r;
    int rows, i;
    enum cgw_err e;

    pgp_int(&p, owner);
    pgp_int(&p, archived < 0 ? -1 : archived > 0 ? 1 : 0);
    if (total) {
        e = pg_exec(st, "SELECT count(*) FROM sessions " SESSION_FILTER, &p, &r, err,
                    "count sessions");
        if (e != CGW_OK)
            return e;
        *total = pg_int(r, 0, 0);
        PQclear(r);
    }
    if (limit > 0)
        pgp_int(&p, limit);
    else
        pgp_text(&p, NULL); /* LIMIT NULL: no limit */
    pgp_int(&p, offset > 0 ? offset : 0);
    e = pg_exec(st,
                "SELECT " SESSION_COLS " FROM sessions " SESSION_FILTER
                " ORDER BY updated_ms DESC, id LIMIT $3 OFFSET $4",
                &p, &r, err, "list sessions");
    if (e != CGW_OK)
        return e;
    rows = PQntuples(r);
    if (rows > 0 && !(*out = calloc((size_t)rows, sizeof **out))) {
        PQclear(r);
        return cgw_error_set(err, CGW_ERR_NOMEM, "store: list sessions: out of memory");
    }
    for (i = 0; i < rows; i++) {
        if (session_from_row(r, i, &(*out)[i]) < 0)
            break;
    }
    PQclear(r);
    *n = (size_t)i;
    if (i < rows)
        return cgw_error_set(err, CGW_ERR_NOMEM, "store: list sessions: out of memory");
    return CGW_OK;
}

enum cgw_err pg_session_list(struct store *st, int64_t owner, int archived, int64_t limit,
                             int64_t offset, struct store_session **out, size_t *n, int64_t *total,
                             struct cgw_error *err)
{
    bool own;
    enum cgw_err e;

    /* One snapshot (REPEATABLE READ), so that the total and the page agree. */
    if ((e = store_txn_begin(st, STMT_BEGIN_READ, &own, err)) != CGW_OK)
        return e;
    e = session_page(st, owner, archived, limit, offset, out, n, total, err);
    e = store_txn_end(st, own, e, err);
    if (e != CGW_OK) {
        store_session_list_free(*out, *n);
        *out = NULL;
        *n = 0;
        if (total)
            *total = 0;
    }
    return e;
}

/* Runs a one-row write keyed by session id; no row changed is NOT_FOUND. */
static enum cgw_err session_write(struct store *st, const char *sql, const struct pg_params *p,
                                  const char *id, const char *what, struct cgw_error *err)
{
    PGresult *r;
    int64_t changed;
    enum cgw_err e;

    if ((e = store_txn_check(st, err)) != CGW_OK)
        return e;
    if ((e = pg_exec(st, sql, p, &r, err, "%s session %s", what, id)) != CGW_OK)
        return e;
    changed = pg_changes(r);
    PQclear(r);
    if (changed == 0)
        return cgw_error_set(err, CGW_ERR_NOT_FOUND, "store: no session %s", id);
    return CGW_OK;
}

enum cgw_err pg_session_update(struct store *st, const char *id, int64_t owner, const char *name,
                               int archived, struct cgw_error *err)
{
    struct pg_params p = {0};

    pgp_text(&p, id);
    pgp_int(&p, owner);
    pgp_text(&p, name);
    pgp_int(&p, archived < 0 ? -1 : archived > 0 ? 1 : 0);
    pgp_int(&p, cgw_now_ms());
    return session_write(st,
                         "UPDATE sessions SET name = coalesce($3, name), "
                         "archived = CASE WHEN $4::int < 0 THEN archived ELSE $4 END, "
                         "updated_ms = $5 WHERE id = $1 AND ($2::bigint <= 0 OR owner = $2)",
                         &p, id, "update", err);
}

enum cgw_err pg_session_delete(struct store *st, const char *id, int64_t owner,
                               struct cgw_error *err)
{
    struct pg_params p = {0};

    pgp_text(&p, id);
    pgp_int(&p, owner);
    return session_write(st,
                         "DELETE FROM sessions WHERE id = $1 AND ($2::bigint <= 0 OR owner = $2)",
                         &p, id, "delete", err);
}

enum cgw_err pg_session_touch(struct store *st, const char *id, struct cgw_error *err)
{
    struct pg_params p = {0};

    pgp_text(&p, id);
    pgp_int(&p, cgw_now_ms());
    return session_write(st, "UPDATE sessions SET updated_ms = $2 WHERE id = $1", &p, id, "touch",
                         err);
}

enum cgw_err pg_session_set_native_id(struct store *st, const char *id, const char *native_id,
                                      struct cgw_error *err)
{
    struct pg_params p = {0};
    PGresult *r;
    enum cgw_err e;
    int64_t changed;

    if ((e = store_txn_check(st, err)) != CGW_OK)
        return e;
    pgp_text(&p, id);
    pgp_text(&p, native_id);
    e = pg_exec(st, "UPDATE sessions SET native_id = $2 WHERE id = $1 AND native_id IS NULL", &p,
                &r, err, "set native id of session %s", id);
    if (e != CGW_OK)
        return e;
    changed = pg_changes(r);
    PQclear(r);
    if (changed > 0)
        return CGW_OK;
    /* The write was conditional, so reading afterwards cannot lose a race. */
    p.n = 1;
    e = pg_exec(st, "SELECT native_id FROM sessions WHERE id = $1", &p, &r, err,
                "get native id of session %s", id);
    if (e != CGW_OK)
        return e;
    if (PQntuples(r) == 0)
        e = cgw_error_set(err, CGW_ERR_NOT_FOUND, "store: no session %s", id);
    else if (PQgetisnull(r, 0, 0) || strcmp(PQgetvalue(r, 0, 0), native_id) != 0)
        e = cgw_error_set(err, CGW_ERR_CONFLICT, "store: session %s already has another native id",
                          id);
    PQclear(r);
    return e;
}

enum cgw_err pg_session_last_seq(struct store *st, const char *id, int64_t *seq,
                                 struct cgw_error *err)
{
    struct pg_params p = {0};
    PGresult *r;
    enum cgw_err e;

    pgp_text(&p, id);
    e = pg_exec(st, "SELECT last_seq FROM sessions WHERE id = $1", &p, &r, err,
                "last seq of session %s", id);
    if (e != CGW_OK)
        return e;
    if (PQntuples(r) == 0)
        e = cgw_error_set(err, CGW_ERR_NOT_FOUND, "store: no session %s", id);
    else
        *seq = pg_int(r, 0, 0);
    PQclear(r);
    return e;
}

/* ---- messages ----------------------------------------------------------------------- */

/* The insert and the raise of last_seq in one statement (one round trip, and atomic
 * without a transaction of its own): the insert only happens when the session exists,
 * and ON CONFLICT DO NOTHING makes a replay of (session, seq) a no-op. The row tells
 * whether the session exists, whether the row went in, and what the taken seq holds. */
static const char message_add_sql[] =
    "WITH s AS (SELECT id FROM sessions WHERE id = $1), "
    "ins AS (INSERT INTO messages (session_id, seq, kind, json) "
    "SELECT id, $2::bigint, $3::text, $4::text FROM s ON CONFLICT (session_id, seq) DO NOTHING "
    "RETURNING seq), "
    "up AS (UPDATE sessions SET last_seq = $2 WHERE id = $1 AND last_seq < $2 "
    "AND EXISTS (SELECT 1 FROM ins)) "
    "SELECT (SELECT count(*) FROM s), (SELECT count(*) FROM ins), "
    "(SELECT json FROM messages WHERE session_id = $1 AND seq = $2)";

static enum cgw_err message_conflict(const char *session_id, int64_t seq, struct cgw_error *err)
{
    return cgw_error_set(err, CGW_ERR_CONFLICT,
                         "store: seq %lld of session %s already holds a different event",
                         (long long)seq, session_id);
}

enum cgw_err pg_message_add(struct store *st, const char *session_id, int64_t seq, const char *kind,
                            const char *json, struct cgw_error *err)
{
    struct pg_params p = {0};
    PGresult *r;
    enum cgw_err e;

    if ((e = store_txn_check(st, err)) != CGW_OK)
        return e;
    pgp_text(&p, session_id);
    pgp_int(&p, seq);
    pgp_text(&p, kind);
    pgp_text(&p, json);
    e = pg_exec(st, message_add_sql, &p, &r, err, "add message %lld to session %s", (long long)seq,
                session_id);
    if (e != CGW_OK)
        return e;
    if (pg_int(r, 0, 0) == 0)
        e = cgw_error_set(err, CGW_ERR_NOT_FOUND, "store: add message: no session %s", session_id);
    else if (pg_int(r, 0, 1) == 0 && PQgetisnull(r, 0, 2)) {
        /* Taken by a writer that committed after this statement's snapshot: read again. */
        PQclear(r);
        p.n = 2;
        e = pg_exec(st, "SELECT json FROM messages WHERE session_id = $1 AND seq = $2", &p, &r, err,
                    "add message %lld to session %s: re-read", (long long)seq, session_id);
        if (e != CGW_OK)
            return e;
        if (PQntuples(r) != 1 || strcmp(PQgetvalue(r, 0, 0), json) != 0)
            e = message_conflict(session_id, seq, err);
    } else if (pg_int(r, 0, 1) == 0 && strcmp(PQgetvalue(r, 0, 2), json) != 0)
        e = message_conflict(session_id, seq, err);
    PQclear(r);
    return e;
}

/* A batch in one statement: the events arrive as three arrays (seq, kind, json), unnest
 * makes them rows, and the insert, the raise of last_seq and the check of the seqs that
 * were taken already are the single add's, once for all rows. The row tells whether the
 * session exists and how many events did not go in with a different (or not yet
 * visible) event at their seq. */
static const char message_batch_sql[] =
    "WITH s AS (SELECT id FROM sessions WHERE id = $1), "
    "v AS (SELECT * FROM unnest($2::bigint[], $3::text[], $4::text[]) AS v (seq, kind, json)), "
    "ins AS (INSERT INTO messages (session_id, seq, kind, json) "
    "SELECT s.id, v.seq, v.kind, v.json FROM s CROSS JOIN v ORDER BY v.seq "
    "ON CONFLICT (session_id, seq) DO NOTHING RETURNING seq), "
    "up AS (UPDATE sessions SET last_seq = (SELECT max(seq) FROM ins) WHERE id = $1 "
    "AND last_seq < (SELECT max(seq) FROM ins)) "
    "SELECT (SELECT count(*) FROM s), "
    "(SELECT count(*) FROM v LEFT JOIN messages m ON m.session_id = $1 AND m.seq = v.seq "
    "WHERE NOT EXISTS (SELECT 1 FROM ins WHERE ins.seq = v.seq) "
    "AND m.json IS DISTINCT FROM v.json)";

/* The check again in a statement of its own, which sees what writers committed after the
 * batch's snapshot: how many events differ from what their seq holds, and the first. */
static const char message_batch_check_sql[] =
    "SELECT count(*), min(v.seq) FROM unnest($2::bigint[], $3::text[]) AS v (seq, json) "
    "LEFT JOIN messages m ON m.session_id = $1 AND m.seq = v.seq "
    "WHERE m.json IS DISTINCT FROM v.json";

/* Element type oids of the arrays (pg_type.h: int8, text). */
#define PG_INT8_OID 20
#define PG_TEXT_OID 25

static unsigned char *put_u32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
    return p + 4;
}

enum batch_col { COL_SEQ, COL_KIND, COL_JSON };

/* One column of the batch as a one-dimensional array in PostgreSQL's binary format
 * (array_recv): ndim, has-nulls, element type, length, lower bound, then each element
 * as its byte length and bytes (int8: big-endian). Returns a new buffer of *len bytes,
 * or NULL: *len is -1 when the array would not fit a parameter, 0 without memory. */
static unsigned char *batch_array(const struct store_message *msgs, size_t n, enum batch_col col,
                                  int *len)
{
    size_t size = 20;
    unsigned char *buf, *p;

    *len = -1;
    if (n > INT32_MAX)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        size_t el = col == COL_SEQ    ? 8
                    : col == COL_KIND ? strlen(msgs[i].kind)
                                      : strlen(msgs[i].json);
        if (el > INT32_MAX || size > (size_t)INT_MAX - 4 - el)
            return NULL;
        size += 4 + el;
    }
    *len = 0;
    if (!(buf = malloc(size)))
        return NULL;
    p = put_u32(buf, 1);
    p = put_u32(p, 0);
    p = put_u32(p, col == COL_SEQ ? PG_INT8_OID : PG_TEXT_OID);
    p = put_u32(p, (uint32_t)n);
    p = put_u32(p, 1);
    for (size_t i = 0; i < n; i++) {
        if (col == COL_SEQ) {
            uint64_t v = (uint64_t)msgs[i].seq;
            p = put_u32(p, 8);
            p = put_u32(p, (uint32_t)(v >> 32));
            p = put_u32(p, (uint32_t)v);
        } else {
            const char *t = col == COL_KIND ? msgs[i].kind : msgs[i].json;
            size_t el = strlen(t);
            p = put_u32(p, (uint32_t)el);
            memcpy(p, t, el);
            p += el;
        }
    }
    *len = (int)size;
    return buf;
}

enum cgw_err pg_message_add_batch(struct store *st, const char *session_id,
                                  const struct store_message *msgs, size_t n, struct cgw_error *err)
{
    struct pg_params p = {0}, q = {0};
    unsigned char *arr[3] = {NULL, NULL, NULL};
    int len[3];
    PGresult *r = NULL;
    enum cgw_err e;

    if ((e = store_txn_check(st, err)) != CGW_OK)
        return e;
    for (int c = COL_SEQ; c <= COL_JSON; c++) {
        if (!(arr[c] = batch_array(msgs, n, (enum batch_col)c, &len[c]))) {
            e = len[c] < 0
                    ? cgw_error_set(err, CGW_ERR_INVALID,
                                    "store: add messages: the batch is too large")
                    : cgw_error_set(err, CGW_ERR_NOMEM, "store: add messages: out of memory");
            goto out;
        }
    }
    pgp_text(&p, session_id);
    pgp_bin(&p, arr[COL_SEQ], len[COL_SEQ]);
    pgp_bin(&p, arr[COL_KIND], len[COL_KIND]);
    pgp_bin(&p, arr[COL_JSON], len[COL_JSON]);
    if ((e = pg_exec(st, message_batch_sql, &p, &r, err, "add %zu messages to session %s", n,
                     session_id)) != CGW_OK)
        goto out;
    if (pg_int(r, 0, 0) == 0) {
        e = cgw_error_set(err, CGW_ERR_NOT_FOUND, "store: add messages: no session %s", session_id);
        goto out;
    }
    if (pg_int(r, 0, 1) == 0)
        goto out;
    /* Taken seqs with a different or an invisible event: look again. */
    PQclear(r);
    r = NULL;
    pgp_text(&q, session_id);
    pgp_bin(&q, arr[COL_SEQ], len[COL_SEQ]);
    pgp_bin(&q, arr[COL_JSON], len[COL_JSON]);
    if ((e = pg_exec(st, message_batch_check_sql, &q, &r, err,
                     "add %zu messages to session %s: re-read", n, session_id)) != CGW_OK)
        goto out;
    if (pg_int(r, 0, 0) > 0)
        e = store_message_clash(session_id, pg_int(r, 0, 1), (size_t)pg_int(r, 0, 0), n, err);
out:
    PQclear(r);
    for (int c = COL_SEQ; c <= COL_JSON; c++)
        free(arr[c]);
    return e;
}

enum cgw_err pg_message_list(struct store *st, const char *session_id, int64_t after_seq,
                             int64_t before_seq, int64_t limit, bool backwards,
                             struct store_message **out, size_t *n, bool *has_more,
                             struct cgw_error *err)
{
    struct pg_params p = {0};
    PGresult *r;
    int rows, i;
    enum cgw_err e;

    pgp_text(&p, session_id);
    pgp_int(&p, after_seq);
    pgp_int(&p, before_seq > 0 ? before_seq : INT64_MAX);
    pgp_int(&p, limit + 1); /* one row more than asked tells whether there is more */
    e = pg_exec(st,
                backwards ? "SELECT seq, kind, json FROM messages WHERE session_id = $1 "
                            "AND seq > $2 AND seq < $3 ORDER BY seq DESC LIMIT $4"
                          : "SELECT seq, kind, json FROM messages WHERE session_id = $1 "
                            "AND seq > $2 AND seq < $3 ORDER BY seq LIMIT $4",
                &p, &r, err, "list messages of session %s", session_id);
    if (e != CGW_OK)
        return e;
    rows = PQntuples(r);
    if (has_more)
        *has_more = rows > limit;
    if (rows > limit)
        rows = (int)limit;
    if (rows > 0 && !(*out = calloc((size_t)rows, sizeof **out))) {
        PQclear(r);
        return cgw_error_set(err, CGW_ERR_NOMEM, "store: list messages: out of memory");
    }
    for (i = 0; i < rows; i++) {
        /* Backwards pages come newest first: store them oldest first. */
        struct store_message *m = &(*out)[backwards ? rows - 1 - i : i];
        m->seq = pg_int(r, i, 0);
        pg_copy(r, i, 1, m->kind, sizeof m->kind);
        if (pg_dup(r, i, 2, &m->json) < 0) {
            PQclear(r);
            store_message_list_free(*out, (size_t)rows);
            *out = NULL;
            return cgw_error_set(err, CGW_ERR_NOMEM, "store: list messages: out of memory");
        }
    }
    PQclear(r);
    *n = (size_t)rows;
    return CGW_OK;
}

/* ---- rules ---------------------------------------------------------------------------- */

enum cgw_err pg_rule_add(struct store *st, int64_t user_id, const char *project_path,
                         const char *rule, struct cgw_error *err)
{
    struct pg_params p = {0};
    PGresult *r;
    bool user;
    enum cgw_err e;

    if ((e = store_txn_check(st, err)) != CGW_OK)
        return e;
    pgp_int(&p, user_id);
    pgp_text(&p, project_path);
    pgp_text(&p, rule);
    pgp_int(&p, cgw_now_ms());
    e = pg_exec(st,
                "WITH u AS (SELECT id FROM users WHERE id = $1), "
                "ins AS (INSERT INTO rules (user_id, project_path, rule, created_ms) "
                "SELECT id, $2::text, $3::text, $4::bigint FROM u "
                "ON CONFLICT (user_id, project_path, rule) DO NOTHING) "
                "SELECT count(*) FROM u",
                &p, &r, err, "add rule");
    if (e != CGW_OK)
        return e;
    user = pg_int(r, 0, 0) > 0;
    PQclear(r);
    if (!user)
        return cgw_error_set(err, CGW_ERR_NOT_FOUND, "store: add rule: no user with id %lld",
                             (long long)user_id);
    return CGW_OK;
}

/* project_path NULL: every project of the user, at most max rules. */
enum cgw_err pg_rule_list(struct store *st, int64_t user_id, const char *project_path, int64_t max,
                          struct store_rule **out, size_t *n, struct cgw_error *err)
{
    struct pg_params p = {0};
    PGresult *r;
    int rows, i;
    enum cgw_err e;

    pgp_int(&p, user_id);
    if (project_path) {
        pgp_text(&p, project_path);
        e = pg_exec(st,
                    "SELECT id, user_id, project_path, rule, created_ms FROM rules "
                    "WHERE user_id = $1 AND project_path = $2 ORDER BY created_ms, id",
                    &p, &r, err, "list rules");
    } else {
        pgp_int(&p, max);
        e = pg_exec(st,
                    "SELECT id, user_id, project_path, rule, created_ms FROM rules "
                    "WHERE user_id = $1 ORDER BY project_path, created_ms, id LIMIT $2",
                    &p, &r, err, "list rules");
    }
    if (e != CGW_OK)
        return e;
    rows = PQntuples(r);
    if (rows > 0 && !(*out = calloc((size_t)rows, sizeof **out))) {
        PQclear(r);
        return cgw_error_set(err, CGW_ERR_NOMEM, "store: list rules: out of memory");
    }
    for (i = 0; i < rows; i++) {
        struct store_rule *x = &(*out)[i];
        x->id = pg_int(r, i, 0);
        x->user_id = pg_int(r, i, 1);
        x->created_ms = pg_int(r, i, 4);
        if (pg_dup(r, i, 2, &x->project_path) < 0 || pg_dup(r, i, 3, &x->rule) < 0) {
            PQclear(r);
            store_rule_list_free(*out, (size_t)rows);
            *out = NULL;
            return cgw_error_set(err, CGW_ERR_NOMEM, "store: list rules: out of memory");
        }
    }
    PQclear(r);
    *n = (size_t)rows;
    return CGW_OK;
}

enum cgw_err pg_rule_delete(struct store *st, int64_t user_id, int64_t rule_id,
                            struct cgw_error *err)
{
    struct pg_params p = {0};
    PGresult *r;
    int64_t changed;
    enum cgw_err e;

    if ((e = store_txn_check(st, err)) != CGW_OK)
        return e;
    pgp_int(&p, user_id);
    pgp_int(&p, rule_id);
    e = pg_exec(st, "DELETE FROM rules WHERE id = $2 AND user_id = $1", &p, &r, err,
                "delete rule %lld", (long long)rule_id);
    if (e != CGW_OK)
        return e;
    changed = pg_changes(r);
    PQclear(r);
    if (changed == 0)
        return cgw_error_set(err, CGW_ERR_NOT_FOUND, "store: no rule %lld", (long long)rule_id);
    return CGW_OK;
}
