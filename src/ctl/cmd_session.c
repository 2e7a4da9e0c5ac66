/* cmd_session.c: `chatgwctl session ls`: sessions of one user or of everyone. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/ctl.h"

#define PAGE 500

enum { LS_OPT_USER, LS_OPT_ARCHIVED, LS_OPT_ALL, LS_OPT_JSON };

/* What was read: pages as the store returned them (freed with
 * store_session_list_free), and one pointer per session for sorting. */
struct listing {
    struct {
        struct store_session *list;
        size_t n;
    } * pages;
    size_t npages;
    const struct store_session **all;
    size_t n;
    const struct store_user *users; /* for owner names, borrowed */
    size_t nusers;
};

static void listing_free(struct listing *l)
{
    for (size_t i = 0; i < l->npages; i++)
        store_session_list_free(l->pages[i].list, l->pages[i].n);
    free(l->pages);
    free(l->all);
}

static enum cgw_err add_page(struct listing *l, struct store_session *list, size_t n,
                             struct cgw_error *err)
{
    void *pages = realloc(l->pages, (l->npages + 1) * sizeof *l->pages);
    void *all = pages ? realloc(l->all, (l->n + n + 1) * sizeof *l->all) : NULL;
    if (pages)
        l->pages = pages;
    if (all)
        l->all = all;
    if (!pages || !all) {
        store_session_list_free(list, n);
        return cgw_error_set(err, CGW_ERR_NOMEM, "out of memory");
    }
    l->pages[l->npages].list = list;
    l->pages[l->npages].n = n;
    l->npages++;
    for (size_t i = 0; i < n; i++)
        l->all[l->n++] = &list[i];
    return CGW_OK;
}

/* Every session of owner with the archived filter, page by page. */
static enum cgw_err read_owner(struct store *st, int64_t owner, int archived, struct listing *l,
                               struct cgw_error *err)
{
    int64_t offset = 0, total = 0;
    for (;;) {
        struct store_session *list = NULL;
        size_t n = 0;
        enum cgw_err e =
            store_session_list(st, owner, archived, PAGE, offset, &list, &n, &total, err);
        if (e != CGW_OK)
            return e;
        if (n == 0) {
            store_session_list_free(list, n);
            return CGW_OK;
        }
        e = add_page(l, list, n, err);
        if (e != CGW_OK)
            return e;
        offset += (int64_t)n;
        if (offset >= total)
            return CGW_OK;
    }
}

/* Newest activity first, then id, as the API lists them. */
static int by_updated(const void *a, const void *b)
{
    const struct store_session *x = *(const struct store_session *const *)a;
    const struct store_session *y = *(const struct store_session *const *)b;
    if (x->updated_ms != y->updated_ms)
        return x->updated_ms > y->updated_ms ? -1 : 1;
    return strcmp(x->id, y->id);
}

static const char *owner_name(const struct listing *l, int64_t id)
{
    for (size_t i = 0; i < l->nusers; i++) {
        if (l->users[i].id == id)
            return l->users[i].name;
    }
    return "?";
}

static int print_json(struct ctl *ctl, const struct listing *l)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < l->n; i++) {
        const struct store_session *s = l->all[i];
        json_t *o = json_pack(
            "{s:s, s:s, s:I, s:s, s:s, s:s, s:b, s:o, s:o, s:I}", "id", s->id, "owner",
            owner_name(l, s->owner), "ownerId", (json_int_t)s->owner, "provider", s->provider,
            "projectPath", s->project_path ? s->project_path : "", "name", s->name ? s->name : "",
            "archived", s->archived, "createdAt", ctl_json_time(s->created_ms), "updatedAt",
            ctl_json_time(s->updated_ms), "lastSeq", (json_int_t)s->last_seq);
        if (!o || json_array_append_new(arr, o) < 0) {
            json_decref(arr);
            arr = NULL;
        }
    }
    return ctl_json_print(ctl, arr);
}

static int print_table(struct ctl *ctl, const struct listing *l)
{
    static const char *const headers[] = {"ID",   "OWNER",    "PROVIDER", "PROJECT",
                                          "NAME", "LAST-SEQ", "UPDATED",  "ARCHIVED"};
    struct ctl_table *t = ctl_table_new(8, headers);
    for (size_t i = 0; t && i < l->n; i++) {
        const struct store_session *s = l->all[i];
        char seq[24], updated[CGW_ISO_TIME_LEN + 1];
        snprintf(seq, sizeof seq, "%lld", (long long)s->last_seq);
        const char *row[] = {s->id,
                             owner_name(l, s->owner),
                             s->provider,
                             s->project_path,
                             s->name,
                             seq,
                             ctl_time(s->updated_ms, updated),
                             s->archived ? "yes" : "no"};
        t = ctl_table_row(t, row);
    }
    return ctl_table_finish(ctl, t);
}

static int session_ls(struct ctl *ctl, const struct ctl_args *a)
{
    const char *name = a->opt[LS_OPT_USER];
    struct listing l = {0};
    struct store_user *users = NULL;
    size_t nusers = 0;
    struct cgw_error err;
    struct store *st;

    if (a->opt[LS_OPT_ARCHIVED] && a->opt[LS_OPT_ALL])
        return ctl_usage_error(ctl, "--archived and --all exclude each other");
    int archived = a->opt[LS_OPT_ALL] ? -1 : a->opt[LS_OPT_ARCHIVED] ? 1 : 0;
    int rc = name ? ctl_check_user_name(ctl, name) : CTL_EXIT_OK;
    if (rc == CTL_EXIT_OK)
        rc = ctl_store_open(ctl, &st);
    if (rc != CTL_EXIT_OK)
        return rc;

    /* Listing user by user keeps to the store's per-owner contract. */
    enum cgw_err e = store_user_list(st, &users, &nusers, &err);
    bool found = !name;
    for (size_t i = 0; e == CGW_OK && i < nusers; i++) {
        if (name && strcmp(users[i].name, name) != 0)
            continue;
        found = true;
        e = read_owner(st, users[i].id, archived, &l, &err);
    }
    store_close(st);
    if (e == CGW_OK && !found)
        rc = ctl_fail(ctl, CGW_ERR_NOT_FOUND, "no user '%s'", name);
    else if (e != CGW_OK)
        rc = ctl_fail_err(ctl, &err);

    if (rc == CTL_EXIT_OK) {
        l.users = users;
        l.nusers = nusers;
        if (l.n > 1)
            qsort(l.all, l.n, sizeof *l.all, by_updated);
        rc = a->opt[LS_OPT_JSON] ? print_json(ctl, &l) : print_table(ctl, &l);
    }
    listing_free(&l);
    free(users);
    return rc;
}

static const struct ctl_opt ls_opts[] = {
    [LS_OPT_USER] = {"user", 'u', "NAME", "only the sessions of user NAME"},
    [LS_OPT_ARCHIVED] = {"archived", 0, NULL, "only archived sessions"},
    [LS_OPT_ALL] = {"all", 'a', NULL, "archived and active sessions"},
    [LS_OPT_JSON] = {"json", 0, NULL, "print a JSON array"},
    {NULL, 0, NULL, NULL},
};

const struct ctl_cmd ctl_session_cmds[] = {
    {"ls", "", "list sessions, newest activity first (active ones unless --archived or --all)",
     NULL, ls_opts, 0, 0, session_ls},
    {NULL, NULL, NULL, NULL, NULL, 0, 0, NULL},
};
