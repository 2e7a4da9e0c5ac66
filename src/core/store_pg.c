/* store_pg.c: the PostgreSQL backend's connection, statement runner, errors and
 * migrations (the tables are in store_pg_tables.c).
 *
 * Every statement goes through PQexecParams with text parameters: no named prepared
 * statements, so the backend works behind pgbouncer in transaction pooling mode
 * (each statement is one round trip and plans with its values). Migrations take a
 * transaction-scoped advisory lock (pg_advisory_xact_lock), also safe there. */
#include "core/store_pg.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/embedded.h"

/* The advisory lock key of chatgw's migrations ("cgw" in ASCII, then 1). */
#define MIGRATE_LOCK_KEY "6514551"

/* ---- parameters ---------------------------------------------------------------- */

void pgp_text(struct pg_params *p, const char *v)
{
    if (p->n >= PG_PARAMS_MAX)
        return;
    p->v[p->n] = v;
    p->len[p->n] = 0;
    p->fmt[p->n] = 0;
    p->n++;
}

void pgp_int(struct pg_params *p, int64_t v)
{
    if (p->n >= PG_PARAMS_MAX)
        return;
    snprintf(p->buf[p->n], sizeof p->buf[p->n], "%lld", (long long)v);
    pgp_text(p, p->buf[p->n]);
}

void pgp_bin(struct pg_params *p, const void *v, int len)
{
    if (p->n >= PG_PARAMS_MAX)
        return;
    p->v[p->n] = v;
    p->len[p->n] = len;
    p->fmt[p->n] = 1;
    p->n++;
}

int64_t pg_int(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? 0 : strtoll(PQgetvalue(r, row, col), NULL, 10);
}

void pg_copy(const PGresult *r, int row, int col, char *buf, size_t size)
{
    snprintf(buf, size, "%s", PQgetisnull(r, row, col) ? "" : PQgetvalue(r, row, col));
}

int pg_dup(const PGresult *r, int row, int col, char **out)
{
    *out = NULL;
    if (PQgetisnull(r, row, col))
        return 0;
    *out = strdup(PQgetvalue(r, row, col));
    return *out ? 0 : -1;
}

int64_t pg_changes(const PGresult *r)
{
    return strtoll(PQcmdTuples((PGresult *)r), NULL, 10);
}

/* ---- errors -------------------------------------------------------------------- */

/* The cgw_err for a failed result (NULL: no result at all, the connection failed). */
static enum cgw_err pg_code(const PGresult *r)
{
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;

    if (!state)
        return CGW_ERR_BACKEND; /* lost connection, or no memory in libpq */
    if (strcmp(state, "23505") == 0)
        return CGW_ERR_CONFLICT;
    if (strcmp(state, "23503") == 0)
        return CGW_ERR_NOT_FOUND; /* a row that points at a missing parent */
    if (strncmp(state, "23", 2) == 0)
        return CGW_ERR_INVALID;
    /* Connection, transaction state, serialization, resources, operator, lock timeout. */
    if (strncmp(state, "08", 2) == 0 || strncmp(state, "25", 2) == 0 ||
        strncmp(state, "40", 2) == 0 || strncmp(state, "53", 2) == 0 ||
        strncmp(state, "55", 2) == 0 || strncmp(state, "57", 2) == 0 ||
        strncmp(state, "58", 2) == 0 || strncmp(state, "3D", 2) == 0 ||
        strncmp(state, "28", 2) == 0)
        return CGW_ERR_BACKEND;
    return CGW_ERR_INTERNAL;
}

/* libpq's messages end with a newline (and may span lines): keep the first line. */
static void first_line(char *buf, size_t size, const char *msg)
{
    size_t n = strcspn(msg ? msg : "", "\n");
    snprintf(buf, size, "%.*s", (int)n, msg ? msg : "");
}

enum cgw_err pg_fail(struct store *st, const PGresult *r, struct cgw_error *err, const char *fmt,
                     ...)
{
    char what[160], msg[200];
    va_list ap;

    first_line(msg, sizeof msg,
               r && *PQresultErrorMessage(r) ? PQresultErrorMessage(r) : PQerrorMessage(st->pg));
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return cgw_error_set(err, pg_code(r), "store: %s: %s", what, msg);
}

/* ---- running statements ------------------------------------------------------------ */

/* A connection that broke (server restart, failover, idle cut) is opened again before
 * the next statement, but never inside a transaction: that one is lost and must fail. */
static void pg_revive(struct store *st)
{
    if (PQstatus(st->pg) == CONNECTION_BAD && !st->in_txn && !st->in_read)
        PQreset(st->pg);
}

enum cgw_err pg_exec(struct store *st, const char *sql, const struct pg_params *p, PGresult **out,
                     struct cgw_error *err, const char *fmt, ...)
{
    PGresult *r;
    ExecStatusType s;
    char what[160];
    va_list ap;

    *out = NULL;
    pg_revive(st);
    r = PQexecParams(st->pg, sql, p ? p->n : 0, NULL, p ? p->v : NULL, p ? p->len : NULL,
                     p ? p->fmt : NULL, 0);
    s = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    if (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK) {
        *out = r;
        return CGW_OK;
    }
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (!r && PQstatus(st->pg) == CONNECTION_OK)
        return cgw_error_set(err, CGW_ERR_NOMEM, "store: %s: out of memory", what);
    {
        enum cgw_err e = pg_fail(st, r, err, "%s", what);
        PQclear(r);
        return e;
    }
}

enum cgw_err pg_simple(struct store *st, const char *sql, struct cgw_error *err, const char *what)
{
    PGresult *r;
    enum cgw_err e = pg_exec(st, sql, NULL, &r, err, "%s", what);
    bool rolled_back;

    if (e != CGW_OK)
        return e;
    /* COMMIT of a failed transaction "succeeds" with the tag ROLLBACK. */
    rolled_back = strcmp(sql, "COMMIT") == 0 && strcmp(PQcmdStatus(r), "ROLLBACK") == 0;
    PQclear(r);
    if (rolled_back)
        return cgw_error_set(err, CGW_ERR_BACKEND,
                             "store: %s: the transaction failed earlier and was rolled back", what);
    return CGW_OK;
}

void pg_rollback_quiet(struct store *st)
{
    PGTransactionStatusType t = PQtransactionStatus(st->pg);

    if (t == PQTRANS_INTRANS || t == PQTRANS_INERROR)
        PQclear(PQexec(st->pg, "ROLLBACK"));
}

bool pg_txn_broken(struct store *st)
{
    PGTransactionStatusType t = PQtransactionStatus(st->pg);
    return t != PQTRANS_INTRANS;
}

/* ---- lifecycle ------------------------------------------------------------------- */

static void pg_ignore_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

enum cgw_err pg_open(const char *url, int64_t lock_timeout_ms, struct store **out,
                     struct cgw_error *err)
{
    struct store *st = calloc(1, sizeof *st);
    char msg[200], set[64];
    enum cgw_err e;

    *out = NULL;
    if (!st)
        return cgw_error_set(err, CGW_ERR_NOMEM, "store: open: out of memory");
    st->pg = PQconnectdb(url);
    if (!st->pg) {
        free(st);
        return cgw_error_set(err, CGW_ERR_NOMEM, "store: open: out of memory");
    }
    if (PQstatus(st->pg) != CONNECTION_OK) {
        /* The URL may hold a password: name the server, not the URL. */
        first_line(msg, sizeof msg, PQerrorMessage(st->pg));
        e = cgw_error_set(err, CGW_ERR_BACKEND, "store: open PostgreSQL database: %s", msg);
        goto fail;
    }
    /* NOTICEs ("relation already exists, skipping") are not errors: not on stderr. */
    PQsetNoticeProcessor(st->pg, pg_ignore_notice, NULL);
    if (PQsetClientEncoding(st->pg, "UTF8") != 0) {
        e = pg_fail(st, NULL, err, "open: set client encoding");
        goto fail;
    }
    /* db.busy_timeout_ms: how long a writer waits for a row lock, as with SQLite. */
    snprintf(set, sizeof set, "SET lock_timeout = %lld",
             (long long)(lock_timeout_ms > 0 ? lock_timeout_ms : 0));
    if ((e = pg_simple(st, set, err, "open: set lock_timeout")) != CGW_OK)
        goto fail;
    *out = st;
    return CGW_OK;

fail:
    pg_close(st);
    return e;
}

void pg_close(struct store *st)
{
    PQfinish(st->pg);
    free(st);
}

/* ---- migrations --------------------------------------------------------------------- */

static int pg_migration_version(const char *name)
{
    int v = atoi(name);
    return v > 0 && strchr(name, '_') ? v : -1;
}

enum cgw_err pg_schema_version(struct store *st, int *version, struct cgw_error *err)
{
    PGresult *r;
    enum cgw_err e = pg_exec(st, "SELECT to_regclass('chatgw_schema') IS NOT NULL", NULL, &r, err,
                             "read schema version");
    bool have;

    if (e != CGW_OK)
        return e;
    have = PQntuples(r) == 1 && strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    PQclear(r);
    *version = 0;
    if (!have)
        return CGW_OK;
    e = pg_exec(st, "SELECT coalesce(max(version), 0) FROM chatgw_schema", NULL, &r, err,
                "read schema version");
    if (e != CGW_OK)
        return e;
    *version = (int)pg_int(r, 0, 0);
    PQclear(r);
    return CGW_OK;
}

/* Applies one migration in its own transaction, under the migration lock, with the
 * version read again under that lock: another process may have migrated meanwhile. */
static enum cgw_err pg_migrate_one(struct store *st, const struct embedded_file *f, int v,
                                   int latest, struct cgw_error *err)
{
    struct pg_params p = {0};
    PGresult *r;
    int now;
    enum cgw_err e = pg_simple(st, "BEGIN", err, "begin migration");

    if (e != CGW_OK)
        return e;
    if ((e = pg_simple(st, "SELECT pg_advisory_xact_lock(" MIGRATE_LOCK_KEY ")", err,
                       "lock for migration")) != CGW_OK ||
        (e = pg_simple(st, "CREATE TABLE IF NOT EXISTS chatgw_schema (version integer NOT NULL)",
                       err, "create chatgw_schema")) != CGW_OK ||
        (e = pg_schema_version(st, &now, err)) != CGW_OK)
        goto fail;
    if (now > latest) {
        e = cgw_error_set(err, CGW_ERR_CONFLICT,
                          "store: database schema version %d is newer than this program's %d", now,
                          latest);
        goto fail;
    }
    if (now >= v) {
        pg_rollback_quiet(st);
        return CGW_OK;
    }
    /* PQexec: a migration is several statements, without parameters. */
    r = PQexec(st->pg, f->text);
    if (!r || PQresultStatus(r) != PGRES_COMMAND_OK) {
        e = pg_fail(st, r, err, "migration postgres/%s", f->name);
        PQclear(r);
        goto fail;
    }
    PQclear(r);
    pgp_int(&p, v);
    if ((e = pg_exec(st, "DELETE FROM chatgw_schema", NULL, &r, err, "migration: set version")) !=
        CGW_OK)
        goto fail;
    PQclear(r);
    if ((e = pg_exec(st, "INSERT INTO chatgw_schema (version) VALUES ($1)", &p, &r, err,
                     "migration: set version")) != CGW_OK)
        goto fail;
    PQclear(r);
    if ((e = pg_simple(st, "COMMIT", err, "commit migration")) == CGW_OK)
        return CGW_OK;
fail:
    pg_rollback_quiet(st);
    return e;
}

enum cgw_err pg_migrate(struct store *st, int latest, struct cgw_error *err)
{
    int current;
    enum cgw_err e = pg_schema_version(st, &current, err);

    if (e != CGW_OK)
        return e;
    if (current > latest)
        return cgw_error_set(err, CGW_ERR_CONFLICT,
                             "store: database schema version %d is newer than this program's %d",
                             current, latest);
    for (const struct embedded_file *f = cgw_sql_migrations_pg; f->name; f++) {
        int v = pg_migration_version(f->name);
        if (v <= current)
            continue;
        if ((e = pg_migrate_one(st, f, v, latest, err)) != CGW_OK)
            return e;
    }
    return CGW_OK;
}
