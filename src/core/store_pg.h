/* store_pg.h: helpers of the PostgreSQL backend, shared by store_pg.c and
 * store_pg_tables.c only (they see libpq's PGresult; nothing else does). */
#ifndef CGW_STORE_PG_H
#define CGW_STORE_PG_H

#include "core/store_priv.h"

#include <libpq-fe.h>

/* Parameters of one statement, all sent as text except pgp_bin's (bytea). */
#define PG_PARAMS_MAX 10
struct pg_params {
    int n;
    const char *v[PG_PARAMS_MAX];
    int len[PG_PARAMS_MAX];
    int fmt[PG_PARAMS_MAX];
    char buf[PG_PARAMS_MAX][24];
};
void pgp_text(struct pg_params *p, const char *v); /* NULL is SQL NULL; borrowed */
void pgp_int(struct pg_params *p, int64_t v);
void pgp_bin(struct pg_params *p, const void *v, int len);

/* Runs sql with p (may be NULL); on success *out is the result the caller PQclears.
 * On failure fills err with "store: <what>: <server's message>". */
enum cgw_err pg_exec(struct store *st, const char *sql, const struct pg_params *p, PGresult **out,
                     struct cgw_error *err, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
enum cgw_err pg_fail(struct store *st, const PGresult *r, struct cgw_error *err, const char *fmt,
                     ...) __attribute__((format(printf, 4, 5)));

/* Column readers of a text-format result. pg_dup returns 0 or -1 (no memory). */
int64_t pg_int(const PGresult *r, int row, int col);
void pg_copy(const PGresult *r, int row, int col, char *buf, size_t size);
int pg_dup(const PGresult *r, int row, int col, char **out);
/* Rows changed by an INSERT/UPDATE/DELETE. */
int64_t pg_changes(const PGresult *r);

#endif
