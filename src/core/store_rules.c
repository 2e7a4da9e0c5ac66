/* store_rules.c: the remembered permission rules of a user, over all projects (the
 * per-project list the runner reads and add/delete are in store_sessions.c). */
#include <stdlib.h>

#include "core/store_priv.h"

enum cgw_err store_rule_list_user(struct store *st, int64_t user_id, int64_t max,
                                  struct store_rule **out, size_t *n, struct cgw_error *err)
{
    sqlite3_stmt *s = NULL;
    struct store_rule *list = NULL;
    size_t cap = 0, count = 0;
    int rc = SQLITE_OK;
    enum cgw_err e;

    *out = NULL;
    *n = 0;
    if (max < 1 || max > 100000)
        return cgw_error_set(err, CGW_ERR_INVALID, "store: list rules: bad limit");
    STORE_PG_DISPATCH(st, pg_rule_list(st, user_id, NULL, max, out, n, err));
    if ((e = store_stmt_get(st, STMT_RULE_LIST_USER, &s, err)) != CGW_OK)
        return e;
    store_bind_int64(s, 1, user_id, &rc);
    store_bind_int64(s, 2, max, &rc);
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
        r->project_path = r->rule = NULL;
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
