/* perm.c: a run's permission requests: rules first, else ask the user and wait for the answer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/rules.h"
#include "core/util.h"
#include "runner/run_priv.h"

/* Appends the adapter's answer to the CLI's request cli_id and sends it. */
static void answer_cli(struct run *r, const char *cli_id, bool allow, json_t *input,
                       const char *message)
{
    if (!r->prov->answer) {
        log_warn("%s has no approval channel; answer to %s dropped", r->prov->name, cli_id);
        return;
    }
    if (r->child.in_fd < 0) {
        log_info("cannot answer permission request %s: the CLI's stdin is closed", cli_id);
        return;
    }
    if (r->prov->answer(r->pst, cli_id, allow, input, message, &r->in) < 0)
        log_error("out of memory answering permission request %s", cli_id);
    runner_flush_in(r);
}

static void perm_remove(struct run *r, size_t i)
{
    free(r->perms[i].cli_id);
    json_decref(r->perms[i].input);
    r->perms[i] = r->perms[--r->n_perms];
    /* The idle clock restarts once nobody waits for the user. */
    if (r->n_perms == 0)
        r->last_output = runner_now_ms();
}

static struct perm *perm_add(struct run *r)
{
    if (r->n_perms == r->cap_perms) {
        size_t cap = r->cap_perms ? r->cap_perms * 2 : 4;
        struct perm *v = realloc(r->perms, cap * sizeof *v);
        if (!v)
            return NULL;
        r->perms = v;
        r->cap_perms = cap;
    }
    struct perm *p = &r->perms[r->n_perms];
    memset(p, 0, sizeof *p);
    return p;
}

/* Gives up on request i (timeout, abort, or the CLI withdrew it): bus_perm_cancel, a deny
 * to the CLI unless it withdrew the request, permission_cancelled. Returns false when an
 * answer won the race (it is on its way through the control list: request i stays). */
static bool perm_cancel(struct run *r, size_t i, const char *reason, bool tell_cli)
{
    struct perm *p = &r->perms[i];
    struct cgw_error err;
    enum cgw_err rc = bus_perm_cancel(r->bus, r->session_id, p->id, &err);

    if (rc == CGW_ERR_CONFLICT && tell_cli) {
        log_info("permission request %s was answered before it could be cancelled", p->id);
        p->deadline = 0;
        return false;
    }
    if (rc != CGW_OK && rc != CGW_ERR_NOT_FOUND && rc != CGW_ERR_CONFLICT)
        log_warn("cancelling permission request %s: %s", p->id, err.text);
    if (tell_cli)
        answer_cli(r, p->cli_id, false, NULL,
                   strcmp(reason, "timeout") == 0 ? "Permission request timed out"
                                                  : "The run was aborted");
    log_info("permission request %s cancelled (%s)", p->id, reason);
    char id[CGW_ID_MAX];
    snprintf(id, sizeof id, "%s", p->id);
    perm_remove(r, i);
    runner_publish(r, event_new_permission_cancelled(&r->ctx, id, reason), NULL);
    return true;
}

void runner_perms_cancel_all(struct run *r, const char *reason, bool tell_cli)
{
    size_t i = 0;
    while (i < r->n_perms && !r->lost && !r->failed) {
        if (!perm_cancel(r, i, reason, tell_cli))
            i++;
    }
}

/* The decision without asking the user, from the run's toolsSettings and the owner's
 * remembered rules for the project (read each time: a rule remembered a minute ago
 * applies now). */
static enum rules_verdict perm_verdict(struct run *r, const char *tool, const json_t *input)
{
    struct rules_policy pol = {
        .skip_permissions = r->req.skip_permissions,
        .allowed = r->req.allowed_tools,
        .n_allowed = r->req.n_allowed,
        .disallowed = r->req.disallowed_tools,
        .n_disallowed = r->req.n_disallowed,
    };
    struct store_rule *rules = NULL;
    struct cgw_error err;
    char **remembered = NULL;
    size_t n = 0;

    if (r->store &&
        store_rule_list(r->store, r->req.owner, r->req.project_path, &rules, &n, &err) != CGW_OK) {
        log_warn("reading remembered permission rules: %s", err.text);
        n = 0;
    }
    if (n > 0 && (remembered = calloc(n, sizeof *remembered)) != NULL) {
        for (size_t i = 0; i < n; i++)
            remembered[i] = rules[i].rule;
        pol.remembered = remembered;
        pol.n_remembered = n;
    }
    enum rules_verdict v = rules_decide(&pol, tool, input);
    free(remembered);
    store_rule_list_free(rules, n);
    return v;
}

/* The CLI asks whether a tool may run. */
/* bus_perm_add, retried while Redis is unreachable. */
static enum cgw_err perm_register(struct run *r, const char *id, const char *json,
                                  struct cgw_error *err)
{
    enum cgw_err rc;
    int64_t t0 = runner_now_ms();
    for (int attempt = 1;; attempt++) {
        rc = bus_perm_add(r->bus, r->session_id, r->run_id, id, json, err);
        if (rc != CGW_ERR_BACKEND || !runner_retry_pause(r, t0, attempt))
            return rc;
    }
}

void runner_perm_request(struct run *r, struct runner_item *it)
{
    struct cgw_error err;
    char *stored = NULL, *early = NULL;

    switch (perm_verdict(r, it->tool_name, it->input)) {
    case RULES_ALLOW:
        log_info("%s allowed by the run's settings or a remembered rule", it->tool_name);
        answer_cli(r, it->id, true, it->input, NULL);
        return;
    case RULES_DENY:
        log_info("%s denied by the run's disallowedTools", it->tool_name);
        answer_cli(r, it->id, false, NULL, "Denied by the disallowedTools setting");
        return;
    case RULES_ASK:
        break;
    }
    if (r->stopping) {
        answer_cli(r, it->id, false, NULL, "The run was aborted");
        return;
    }

    struct perm *p = perm_add(r);
    json_t *ev = p && cgw_id_new("perm", p->id, sizeof p->id) == 0
                     ? event_new_permission_request(&r->ctx, p->id, it->tool_name, it->input)
                     : NULL;
    early = ev ? event_encode(ev) : NULL;
    if (!early) {
        log_error("out of memory for a permission request; denying it");
        answer_cli(r, it->id, false, NULL, "Internal error");
        json_decref(ev);
        return;
    }
    /* Registered before it is published, so a client that sees the event can answer
     * it at once; the stored JSON gets its seq right after publishing. */
    enum cgw_err rc = perm_register(r, p->id, early, &err);
    free(early);
    if (runner_settle(r, rc, &err, "recording a permission request") != CGW_OK) {
        json_decref(ev);
        if (!r->lost && !r->failed)
            answer_cli(r, it->id, false, NULL, "Internal error");
        return;
    }
    if (runner_publish(r, ev, &stored) < 0) {
        if (!r->lost && !r->failed) { /* else the run ends anyway */
            bus_perm_cancel(r->bus, r->session_id, p->id, &err);
            answer_cli(r, it->id, false, NULL, "Internal error");
        }
        return;
    }
    if (stored) {
        rc = perm_register(r, p->id, stored, &err);
        if (rc != CGW_OK && rc != CGW_ERR_CONFLICT) /* CONFLICT: answered already */
            runner_settle(r, rc, &err, "recording a permission request");
        free(stored);
        if (r->lost || r->failed)
            return;
    }
    /* The request is ours from here: it takes the CLI's id and input. */
    p->cli_id = it->id;
    it->id = NULL;
    p->input = it->input;
    it->input = NULL;
    if (r->cfg->permissions_timeout_s > 0 && !rules_tool_is_interactive(it->tool_name))
        p->deadline = runner_now_ms() + r->cfg->permissions_timeout_s * 1000;
    r->n_perms++;
    log_info("permission request %s for %s waits for the user", p->id, it->tool_name);
}

/* A decision from the control list: {"type":"permission", requestId, allow,
 * updatedInput?, message?}. */
void runner_perm_decision(struct run *r, const json_t *msg)
{
    const char *id = json_string_value(json_object_get(msg, "requestId"));
    const json_t *allow = json_object_get(msg, "allow");
    json_t *updated = json_object_get(msg, "updatedInput");
    const char *message = json_string_value(json_object_get(msg, "message"));
    size_t i;

    if (!id || !json_is_boolean(allow)) {
        log_warn("ignoring a malformed permission decision");
        return;
    }
    for (i = 0; i < r->n_perms; i++)
        if (strcmp(r->perms[i].id, id) == 0)
            break;
    if (i == r->n_perms) {
        log_info("ignoring a decision for permission request %s, which is not pending", id);
        return;
    }
    bool yes = json_is_true(allow);
    struct perm *p = &r->perms[i];
    answer_cli(r, p->cli_id, yes, json_is_object(updated) ? updated : p->input, message);
    log_info("permission request %s %s", id, yes ? "allowed" : "denied");
    char pid[CGW_ID_MAX];
    snprintf(pid, sizeof pid, "%s", p->id);
    perm_remove(r, i);
    runner_publish(r, event_new_permission_resolved(&r->ctx, pid, yes), NULL);
}

/* The CLI withdrew its request cli_id (e.g. after an interrupt). */
void runner_perm_withdrawn(struct run *r, const char *cli_id)
{
    for (size_t i = 0; i < r->n_perms; i++) {
        if (strcmp(r->perms[i].cli_id, cli_id) == 0) {
            perm_cancel(r, i, "cancelled", false);
            return;
        }
    }
    log_debug("the CLI withdrew request %s, which is not pending", cli_id);
}

void runner_perms_check_timeouts(struct run *r, int64_t now)
{
    size_t i = 0;
    while (i < r->n_perms && !r->lost && !r->failed) {
        if (r->perms[i].deadline > 0 && now >= r->perms[i].deadline &&
            perm_cancel(r, i, "timeout", true))
            continue;
        i++;
    }
}
