/* cmd_token.c: `chatgwctl token create|list|revoke`; a token's secret is printed once. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/auth.h"
#include "core/auth_cache.h"
#include "core/bus_notify.h"
#include "ctl/ctl.h"

enum { CREATE_OPT_LABEL };
enum { LIST_OPT_JSON };

static int check_label(struct ctl *ctl, const char *label)
{
    if (strlen(label) > STORE_NAME_MAX)
        return ctl_usage_error(ctl, "label longer than %d bytes", STORE_NAME_MAX);
    for (const unsigned char *p = (const unsigned char *)label; *p; p++) {
        if (*p < 0x20 || *p == 0x7f)
            return ctl_usage_error(ctl, "label contains a control character");
    }
    return CTL_EXIT_OK;
}

static int token_create(struct ctl *ctl, const struct ctl_args *a)
{
    const char *user = a->argv[0];
    const char *label = a->opt[CREATE_OPT_LABEL] ? a->opt[CREATE_OPT_LABEL] : "";
    char token[AUTH_TOKEN_LEN + 1];
    struct cgw_error err;
    struct store *st;
    int64_t id = 0;

    int rc = ctl_check_user_name(ctl, user);
    if (rc == CTL_EXIT_OK)
        rc = check_label(ctl, label);
    if (rc == CTL_EXIT_OK)
        rc = ctl_store_open(ctl, &st);
    if (rc != CTL_EXIT_OK)
        return rc;
    enum cgw_err e = auth_token_create(st, user, label, token, &id, &err);
    store_close(st);
    if (e == CGW_ERR_NOT_FOUND)
        return ctl_fail(ctl, e, "no user '%s'", user);
    if (e == CGW_ERR_CONFLICT)
        return ctl_fail(ctl, e, "user '%s' is disabled (enable it with 'chatgwctl user enable %s')",
                        user, user);
    if (e != CGW_OK)
        return ctl_fail_err(ctl, &err);

    /* stdout gets the token alone, so that TOKEN=$(chatgwctl token create u) works. */
    printf("%s\n", token);
    rc = fflush(stdout) == 0 ? CTL_EXIT_OK : ctl_fail(ctl, CGW_ERR_IO, "cannot write the token");
    explicit_bzero(token, sizeof token);
    if (rc == CTL_EXIT_OK)
        fprintf(stderr,
                "chatgwctl %s: created token %lld for user %s; it is shown only this once, "
                "only its SHA-256 hash is stored\n",
                ctl->command, (long long)id, user);
    return rc;
}

static json_t *token_json(const struct store_token *t)
{
    return json_pack("{s:I, s:s, s:s, s:s, s:b, s:o, s:o}", "id", (json_int_t)t->id, "user",
                     t->user_name, "publicId", t->public_id, "label", t->label, "revoked",
                     t->revoked, "createdAt", ctl_json_time(t->created_ms), "lastUsedAt",
                     ctl_json_time(t->last_used_ms));
}

static int print_tokens(struct ctl *ctl, const struct store_token *tok, size_t n, bool json)
{
    static const char *const headers[] = {"ID",      "USER",      "PUBLIC-ID", "LABEL",
                                          "CREATED", "LAST-USED", "REVOKED"};
    if (json) {
        json_t *arr = json_array();
        for (size_t i = 0; arr && i < n; i++) {
            if (json_array_append_new(arr, token_json(&tok[i])) < 0) {
                json_decref(arr);
                arr = NULL;
            }
        }
        return ctl_json_print(ctl, arr);
    }

    struct ctl_table *t = ctl_table_new(7, headers);
    for (size_t i = 0; t && i < n; i++) {
        char id[24], created[CGW_ISO_TIME_LEN + 1], used[CGW_ISO_TIME_LEN + 1];
        snprintf(id, sizeof id, "%lld", (long long)tok[i].id);
        const char *row[] = {id,
                             tok[i].user_name,
                             tok[i].public_id,
                             tok[i].label,
                             ctl_time(tok[i].created_ms, created),
                             ctl_time(tok[i].last_used_ms, used),
                             tok[i].revoked ? "yes" : "no"};
        t = ctl_table_row(t, row);
    }
    return ctl_table_finish(ctl, t);
}

static int token_list(struct ctl *ctl, const struct ctl_args *a)
{
    const char *name = a->argc > 0 ? a->argv[0] : NULL;
    struct store_token *tok = NULL;
    struct store_user user = {0};
    struct cgw_error err;
    struct store *st;
    size_t n = 0;

    int rc = name ? ctl_check_user_name(ctl, name) : CTL_EXIT_OK;
    if (rc == CTL_EXIT_OK)
        rc = ctl_store_open(ctl, &st);
    if (rc != CTL_EXIT_OK)
        return rc;
    enum cgw_err e = name ? store_user_get(st, name, &user, &err) : CGW_OK;
    if (e == CGW_OK)
        e = store_token_list(st, user.id, &tok, &n, &err);
    store_close(st);
    if (e == CGW_ERR_NOT_FOUND && name)
        return ctl_fail(ctl, e, "no user '%s'", name);
    if (e != CGW_OK)
        return ctl_fail_err(ctl, &err);
    rc = print_tokens(ctl, tok, n, a->opt[LIST_OPT_JSON] != NULL);
    free(tok);
    return rc;
}

/* The public id of a "cgw_..." token or of a bare public id; -1 if arg is neither. */
static int public_id_of(const char *arg, char pub[AUTH_PUBLIC_LEN + 1])
{
    if (auth_token_public_id(arg, pub) == 0)
        return 0;
    if (strlen(arg) != AUTH_PUBLIC_LEN ||
        strspn(arg, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") !=
            AUTH_PUBLIC_LEN)
        return -1;
    memcpy(pub, arg, AUTH_PUBLIC_LEN + 1);
    return 0;
}

void ctl_auth_revoked(struct ctl *ctl)
{
    struct bus_config bc;
    struct bus *b = NULL;
    struct cgw_error err;
    ctl_bus_config(ctl, &bc);
    if (bus_open(&bc, false, &b, &err) != CGW_OK ||
        bus_notify_auth_revoked(b, NULL, &err) != CGW_OK)
        fprintf(stderr,
                "chatgwctl: warning: running servers were not told (%s); they may accept "
                "the token for up to %d s more\n",
                err.text, AUTH_CACHE_MAX_AGE_MS / 1000);
    bus_close(b);
}

static int token_revoke(struct ctl *ctl, const struct ctl_args *a)
{
    const char *arg = a->argv[0];
    char pub[AUTH_PUBLIC_LEN + 1];
    struct store_token tok;
    struct cgw_error err;
    struct store *st;
    int64_t id = 0;

    bool by_id = cgw_parse_int64(arg, 1, INT64_MAX, &id) == 0;
    if (!by_id && public_id_of(arg, pub) < 0)
        return ctl_usage_error(ctl, "'%s' is neither a token id nor a public id", arg);
    int rc = ctl_store_open(ctl, &st);
    if (rc != CTL_EXIT_OK)
        return rc;
    enum cgw_err e = CGW_OK;
    if (!by_id) {
        e = store_token_find(st, pub, &tok, NULL, &err);
        id = tok.id;
    }
    if (e == CGW_OK)
        e = store_token_revoke(st, id, &err);
    store_close(st);
    if (e == CGW_ERR_NOT_FOUND && by_id)
        return ctl_fail(ctl, e, "no token with id %lld", (long long)id);
    if (e == CGW_ERR_NOT_FOUND)
        return ctl_fail(ctl, e, "no token with public id %s", pub);
    if (e != CGW_OK)
        return ctl_fail_err(ctl, &err);
    ctl_auth_revoked(ctl);
    printf("revoked token %lld\n", (long long)id);
    return CTL_EXIT_OK;
}

static const struct ctl_opt create_opts[] = {
    [CREATE_OPT_LABEL] = {"label", 'l', "LABEL", "a note on what the token is for"},
    {NULL, 0, NULL, NULL},
};

static const struct ctl_opt list_opts[] = {
    [LIST_OPT_JSON] = {"json", 0, NULL, "print a JSON array"},
    {NULL, 0, NULL, NULL},
};

const struct ctl_cmd ctl_token_cmds[] = {
    {"create", "USER", "create an API token for USER and print it (once) on standard output", NULL,
     create_opts, 1, 1, token_create},
    {"list", "[USER]", "list tokens (of USER, or of everyone); secrets are never shown", NULL,
     list_opts, 0, 1, token_list},
    {"revoke", "ID|PUBLIC-ID", "revoke a token, named by its id or public id", NULL, NULL, 1, 1,
     token_revoke},
    {NULL, NULL, NULL, NULL, NULL, 0, 0, NULL},
};
