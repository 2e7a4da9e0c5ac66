/* cmd_init.c: `chatgwctl init`: create the database, or migrate it to the latest schema. */
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctl/ctl.h"

/* The database's directory must exist: init creates the file, never directories,
 * because their owner and mode are the administrator's decision. */
static int check_directory(struct ctl *ctl, const char *path)
{
    char *copy = strdup(path);
    struct stat sb;
    int rc = CTL_EXIT_OK;

    if (!copy)
        return ctl_fail(ctl, CGW_ERR_NOMEM, "out of memory");
    const char *dir = dirname(copy);
    if (stat(dir, &sb) < 0) {
        if (errno == ENOENT)
            rc = ctl_fail(ctl, CGW_ERR_IO,
                          "the directory %s of db.path %s does not exist: create it first "
                          "(mkdir -p %s), owned by the user chatgw runs as",
                          dir, path, dir);
        else
            rc = ctl_fail(ctl, CGW_ERR_IO, "directory %s of db.path: %s", dir, strerror(errno));
    } else if (!S_ISDIR(sb.st_mode)) {
        rc = ctl_fail(ctl, CGW_ERR_IO, "%s (the directory of db.path %s) is not a directory", dir,
                      path);
    }
    free(copy);
    return rc;
}

int cmd_init(struct ctl *ctl, const struct ctl_args *a)
{
    struct cgw_error err;
    struct store *st = NULL;
    struct stat sb;
    int before = 0, after = 0;

    int rc = ctl_config(ctl);
    if (rc != CTL_EXIT_OK)
        return rc;
    /* db.url (PostgreSQL): the database exists already (createdb); init makes the
     * tables. Messages name "(db.url)", never the URI (it may hold a password). */
    bool pg = ctl->cfg.db_url[0] != '\0';
    const char *path = pg ? "(db.url)" : ctl->cfg.db_path;
    rc = pg ? CTL_EXIT_OK : check_directory(ctl, path);
    if (rc != CTL_EXIT_OK)
        return rc;

    bool existed = pg || stat(path, &sb) == 0;
    if (store_open(config_db_target(&ctl->cfg), true, ctl->cfg.db_busy_timeout_ms, &st, &err) !=
        CGW_OK)
        return ctl_fail(ctl, CGW_ERR_BACKEND, "cannot open database %s: %s", path, err.text);
    if (store_schema_version(st, &before, &err) != CGW_OK) {
        store_close(st);
        return ctl_fail(ctl, CGW_ERR_BACKEND, "database %s: %s", path, err.text);
    }
    enum cgw_err e = store_migrate(st, &after, &err);
    store_close(st);
    if (e == CGW_ERR_CONFLICT)
        return ctl_fail(ctl, CGW_ERR_BACKEND,
                        "database %s has schema version %d, newer than this chatgwctl knows "
                        "(%d): upgrade chatgw",
                        path, before, store_schema_latest());
    if (e != CGW_OK)
        return ctl_fail(ctl, CGW_ERR_BACKEND, "cannot migrate database %s: %s", path, err.text);

    if (!existed)
        printf("created database %s at schema version %d\n", path, after);
    else if (before < after)
        printf("migrated database %s from schema version %d to %d\n", path, before, after);
    else
        printf("database %s is up to date (schema version %d)\n", path, after);
    if (!existed && !pg && geteuid() == 0)
        fprintf(stderr, "chatgwctl init: note: the database was created by root; make it and its "
                        "directory writable by the user chatgw.fcgi and chatgw-runner run as\n");
    return CTL_EXIT_OK;
}
