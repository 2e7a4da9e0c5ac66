/* h_rules.c: remembered permission rules: GET /rules, DELETE /rules/{id}, and the rule a
 * permission answer may remember (derived from the pending request, never taken on
 * trust from the client). */
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/rules.h"
#include "core/util.h"
#include "fcgi/handlers.h"

#define RULES_LIST_MAX 10000

/* The pending permission_request rid of session sid: a new reference, or NULL with
 * resp set (409 when it is no longer pending: answered or cancelled). */
static json_t *pending_request(struct bus *bus, const char *sid, const char *rid,
                               struct response *resp)
{
    char **jsons = NULL;
    size_t n = 0;
    struct cgw_error err;
    json_t *found = NULL;

    if (bus_perm_list(bus, sid, &jsons, &n, &err) != CGW_OK) {
        response_from_err(resp, &err, sid);
        return NULL;
    }
    for (size_t i = 0; i < n && !found; i++) {
        json_t *ev = json_loads(jsons[i], 0, NULL);
        const char *id = json_string_value(json_object_get(ev, "requestId"));
        if (id && strcmp(id, rid) == 0)
            found = ev;
        else
            json_decref(ev);
    }
    bus_strings_free(jsons, n);
    if (!found)
        response_error(resp, CODE_PERMISSION_ALREADY_RESOLVED, sid,
                       "permission request is no longer pending");
    return found;
}

/* The rule the answer asks for, for the request's tool and input, or NULL with *why. */
static char *remember_rule(json_t *body, const char *tool, json_t *input, const char **why)
{
    const char *mode = json_string_value(json_object_get(body, "remember"));
    const char *entry = json_string_value(json_object_get(body, "rememberEntry"));

    if (mode)
        return rules_derive(strcmp(mode, "prefix") == 0 ? RULES_FORM_PREFIX : RULES_FORM_EXACT,
                            tool, input, why);
    if (!rules_remember_check(entry, tool, input, why))
        return NULL;
    char *copy = strdup(entry);
    if (!copy)
        *why = "out of memory";
    return copy;
}

int rules_remember_prepare(struct bus *bus, const char *sid, const char *rid, json_t *body,
                           char **rule, struct response *resp)
{
    json_t *mode = json_object_get(body, "remember");
    json_t *entry = json_object_get(body, "rememberEntry");
    json_t *updated = json_object_get(body, "updatedInput");
    const char *why = NULL;

    *rule = NULL;
    if ((!mode || json_is_null(mode)) && (!entry || json_is_null(entry)))
        return 0;
    json_t *req = pending_request(bus, sid, rid, resp);
    if (!req)
        return -1;
    const char *tool = json_string_value(json_object_get(req, "toolName"));
    json_t *input = json_object_get(req, "input");
    if (updated && !json_is_null(updated) && !json_equal(updated, input))
        why = "updatedInput changes the request; only what was asked can be remembered";
    else
        *rule = remember_rule(body, tool, input, &why);
    json_decref(req);
    if (!*rule) {
        response_error(resp, CODE_REMEMBER_ENTRY_INVALID, sid, "cannot remember this request: %s",
                       why ? why : "no rule");
        return -1;
    }
    return 0;
}

static json_t *rule_json(const struct store_rule *r)
{
    char created[CGW_ISO_TIME_LEN + 1];
    return json_pack("{s:I, s:s, s:s, s:s}", "id", (json_int_t)r->id, "projectPath",
                     r->project_path, "rule", r->rule, "createdAt",
                     cgw_time_iso(r->created_ms, created));
}

void h_rules_list(struct worker *w, struct request *req, const struct query *q,
                  struct response *resp)
{
    struct store *st;
    struct store_rule *list = NULL;
    size_t n = 0;
    struct cgw_error err;

    if (worker_store(w, &st, &err) != CGW_OK ||
        store_rule_list_user(st, req->user.id, RULES_LIST_MAX, &list, &n, &err) != CGW_OK) {
        response_from_err(resp, &err, NULL);
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++) {
        if (json_array_append_new(arr, rule_json(&list[i])) < 0) {
            json_decref(arr);
            arr = NULL;
        }
    }
    store_rule_list_free(list, n);
    if (!arr)
        response_error(resp, CODE_INTERNAL_ERROR, NULL, "internal error");
    else
        response_json(resp, 200, json_pack("{s:o}", "rules", arr));
}

void h_rules_delete(struct worker *w, struct request *req, const struct query *q,
                    struct response *resp)
{
    struct store *st;
    struct cgw_error err;
    int64_t id;

    /* A malformed id and another user's rule are the same 404 as a missing one. */
    enum cgw_err rc = cgw_parse_int64(req->params[0], 1, INT64_MAX, &id) == 0
                          ? worker_store(w, &st, &err)
                          : CGW_ERR_NOT_FOUND;
    if (rc == CGW_OK)
        rc = store_rule_delete(st, req->user.id, id, &err);
    if (rc == CGW_ERR_NOT_FOUND) {
        response_error(resp, CODE_RULE_NOT_FOUND, NULL, "rule not found");
        return;
    }
    if (rc != CGW_OK) {
        response_from_err(resp, &err, NULL);
        return;
    }
    log_info("rule %lld revoked by %s", (long long)id, req->user.name);
    response_json(resp, 200, json_pack("{s:I, s:b}", "id", (json_int_t)id, "deleted", 1));
}
