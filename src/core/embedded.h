/* embedded.h: text files (SQL migrations, Lua scripts, the OpenAPI description)
 * compiled into the binaries. */
#ifndef CGW_EMBEDDED_H
#define CGW_EMBEDDED_H

struct embedded_file {
    const char *name; /* basename, e.g. "0001_init.sql" */
    const char *text; /* whole file, NUL-terminated */
};

/* Both arrays end with a {NULL, NULL} entry and are sorted by name (the build sorts them). */
extern const struct embedded_file cgw_sql_migrations[]; /* SQLite: sql/NNNN_name.sql */
extern const struct embedded_file
    cgw_sql_migrations_pg[]; /* PostgreSQL: sql/postgres/NNNN_name.sql */
extern const struct embedded_file cgw_lua_scripts[];
/* doc/openapi.yaml, in chatgw.fcgi only (fcgi/liblayer.a; GET /openapi.yaml). */
extern const struct embedded_file cgw_openapi[];

#endif
