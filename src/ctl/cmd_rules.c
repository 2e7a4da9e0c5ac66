/* cmd_rules.c: `chatgwctl rules list|revoke`: a user's remembered permission rules. */
#include <stdio.h>
#include <stdlib.h>

#include "ctl/ctl.h"

enum { LIST_OPT_JSON };

#define RULES_LIST_MAX 100000

static json_t *rule_json(const struct store_rule *r, const char *user)
{
    return json_pack("{s:I, s:s, s:s, s:s, s:o}", "id", (json_int_t)r->id, "user", user,
                     "projectPath", r->project_path, "rule", r->rule, "createdAt",
                     ctl_json_time(r->created_ms));
}

static int print_rules(struct ctl *ctl, const struct store_rule *rules, size_t n, const char *user,
                       bool json)
{
    static const char *const headers[] = {"ID", "PROJECT", "CREATED", "RULE"};
    if (json) {
        json_t *arr = json_array();
        for (size_t i = 0; arr && i < n; i++) {
            if (json_array_append_new(arr, rule_json(&rules[i], user)) < 0) {
                json_decref(arr);
                arr = NULL;
            }
        }
        return ctl_json_print(ctl, arr);
    }
    struct ctl_table *t = ctl_table_new(4, headers);
    for (size_t i = 0; t && i < n; i++) {
        char id[24], created[CGW_ISO_TIME_LEN + 1];
        snprintf(id, sizeof id, "%lld", (long long)rules[i].id);
        const char *row[] = {id, rules[i].project_path, ctl_time(rules[i].created_ms, created),
                             rules[i].rule};
        if (ctl_table_add(t, row) < 0) {
            ctl_table_free(t);
            t = NULL;
        }
    }
    if (!t)
        return ctl_fail(ctl, CGW_ERR_NOMEM, "out of memory");
    ctl_table_print(t, stdout);
    ctl_table_free(t);
    return CTL_EXIT_OK;
}

static int rules_list(struct ctl *ctl, const struct ctl_args *a)
{
    const char *name = a->argv[0];
    struct store_rule *rules = NULL;
    struct store_user user;
    struct cgw_error err;
    struct store *st;
    size_t n = 0;

    int rc = ctl_check_user_name(ctl, name);
    if (rc == CTL_EXIT_OK)
        rc = ctl_store_open(ctl, &st);
    if (rc != CTL_EXIT_OK)
        return rc;
    enum cgw_err e = store_user_get(st, name, &user, &err);
    if (e == CGW_OK)
        e = store_rule_list_user(st, user.id, RULES_LIST_MAX, &rules, &n, &err);
    store_close(st);
    if (e == CGW_ERR_NOT_FOUND)
        return ctl_fail(ctl, e, "no user '%s'", name);
    if (e != CGW_OK)
        return ctl_fail_err(ctl, &err);
    rc = print_rules(ctl, rules, n, name, a->opt[LIST_OPT_JSON] != NULL);
    store_rule_list_free(rules, n);
    return rc;
}

static int rules_revoke(struct ctl *ctl, const struct ctl_args *a)
{
    const char *name = a->argv[0];
    struct store_user user;
    struct cgw_error err;
    struct store *st;
    int64_t id;

    int rc = ctl_check_user_name(ctl, name);
    if (rc != CTL_EXIT_OK)
        return rc;
    if (cgw_parse_int64(a->argv[1], 1, INT64_MAX, &id) < 0)
        return ctl_usage_error(ctl, "'%s' is not a rule id", a->argv[1]);
    if ((rc = ctl_store_open(ctl, &st)) != CTL_EXIT_OK)
        return rc;
    enum cgw_err e = store_user_get(st, name, &user, &err);
    bool no_user = e == CGW_ERR_NOT_FOUND;
    if (e == CGW_OK)
        e = store_rule_delete(st, user.id, id, &err);
    store_close(st);
    if (no_user)
        return ctl_fail(ctl, e, "no user '%s'", name);
    if (e == CGW_ERR_NOT_FOUND)
        return ctl_fail(ctl, e, "user %s has no rule %lld", name, (long long)id);
    if (e != CGW_OK)
        return ctl_fail_err(ctl, &err);
    printf("revoked rule %lld of %s\n", (long long)id, name);
    return CTL_EXIT_OK;
}

static const struct ctl_opt list_opts[] = {
    [LIST_OPT_JSON] = {"json", 0, NULL, "print a JSON array"},
    {NULL, 0, NULL, NULL},
};

const struct ctl_cmd ctl_rules_cmds[] = {
    {"list", "USER", "list the permission rules USER chose to remember, in every project", NULL,
     list_opts, 1, 1, rules_list},
    {"revoke", "USER ID", "forget rule ID of USER (its next use asks again)", NULL, NULL, 2, 2,
     rules_revoke},
    {NULL, NULL, NULL, NULL, NULL, 0, 0, NULL},
};
