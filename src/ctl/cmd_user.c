/* cmd_user.c: `chatgwctl user add|list|disable|enable`. */
#include <stdio.h>
#include <stdlib.h>

#include "ctl/ctl.h"

static int user_add(struct ctl *ctl, const struct ctl_args *a)
{
    const char *name = a->argv[0];
    struct cgw_error err;
    struct store *st;
    int64_t id = 0;

    int rc = ctl_check_user_name(ctl, name);
    if (rc == CTL_EXIT_OK)
        rc = ctl_store_open(ctl, &st);
    if (rc != CTL_EXIT_OK)
        return rc;
    enum cgw_err e = store_user_add(st, name, &id, &err);
    store_close(st);
    if (e == CGW_ERR_CONFLICT)
        return ctl_fail(ctl, e, "user '%s' already exists", name);
    if (e != CGW_OK)
        return ctl_fail_err(ctl, &err);
    printf("added user %s (id %lld)\n", name, (long long)id);
    return CTL_EXIT_OK;
}

static int print_users_json(struct ctl *ctl, const struct store_user *u, size_t n)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++) {
        json_t *o =
            json_pack("{s:I, s:s, s:b, s:o}", "id", (json_int_t)u[i].id, "name", u[i].name,
                      "disabled", u[i].disabled, "createdAt", ctl_json_time(u[i].created_ms));
        if (!o || json_array_append_new(arr, o) < 0) {
            json_decref(arr);
            arr = NULL;
        }
    }
    return ctl_json_print(ctl, arr);
}

static int print_users_table(struct ctl *ctl, const struct store_user *u, size_t n)
{
    static const char *const headers[] = {"ID", "NAME", "DISABLED", "CREATED"};
    struct ctl_table *t = ctl_table_new(4, headers);
    for (size_t i = 0; t && i < n; i++) {
        char id[24], created[CGW_ISO_TIME_LEN + 1];
        snprintf(id, sizeof id, "%lld", (long long)u[i].id);
        const char *row[] = {id, u[i].name, u[i].disabled ? "yes" : "no",
                             ctl_time(u[i].created_ms, created)};
        t = ctl_table_row(t, row);
    }
    return ctl_table_finish(ctl, t);
}

enum { LIST_OPT_JSON };

static int user_list(struct ctl *ctl, const struct ctl_args *a)
{
    struct cgw_error err;
    struct store *st;
    struct store_user *users = NULL;
    size_t n = 0;

    int rc = ctl_store_open(ctl, &st);
    if (rc != CTL_EXIT_OK)
        return rc;
    enum cgw_err e = store_user_list(st, &users, &n, &err);
    store_close(st);
    if (e != CGW_OK)
        return ctl_fail_err(ctl, &err);
    if (a->opt[LIST_OPT_JSON])
        rc = print_users_json(ctl, users, n);
    else
        rc = print_users_table(ctl, users, n);
    free(users);
    return rc;
}

static int set_disabled(struct ctl *ctl, const char *name, bool disabled)
{
    struct cgw_error err;
    struct store *st;

    int rc = ctl_check_user_name(ctl, name);
    if (rc == CTL_EXIT_OK)
        rc = ctl_store_open(ctl, &st);
    if (rc != CTL_EXIT_OK)
        return rc;
    enum cgw_err e = store_user_set_disabled(st, name, disabled, &err);
    store_close(st);
    if (e == CGW_ERR_NOT_FOUND)
        return ctl_fail(ctl, e, "no user '%s'", name);
    if (e != CGW_OK)
        return ctl_fail_err(ctl, &err);
    if (disabled)
        ctl_auth_revoked(ctl);
    printf("user %s %s\n", name, disabled ? "disabled" : "enabled");
    return CTL_EXIT_OK;
}

static int user_disable(struct ctl *ctl, const struct ctl_args *a)
{
    return set_disabled(ctl, a->argv[0], true);
}

static int user_enable(struct ctl *ctl, const struct ctl_args *a)
{
    return set_disabled(ctl, a->argv[0], false);
}

static const struct ctl_opt list_opts[] = {
    [LIST_OPT_JSON] = {"json", 0, NULL, "print a JSON array"},
    {NULL, 0, NULL, NULL},
};

const struct ctl_cmd ctl_user_cmds[] = {
    {"add", "NAME", "add a user", NULL, NULL, 1, 1, user_add},
    {"list", "", "list users", NULL, list_opts, 0, 0, user_list},
    {"disable", "NAME", "disable a user: their tokens stop working, nothing is deleted", NULL, NULL,
     1, 1, user_disable},
    {"enable", "NAME", "enable a disabled user again", NULL, NULL, 1, 1, user_enable},
    {NULL, NULL, NULL, NULL, NULL, 0, 0, NULL},
};
