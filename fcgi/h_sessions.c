/* h_sessions.c: the session resource: create, list, get, patch, delete, messages. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/feed.h"
#include "core/log.h"
#include "core/util.h"
#include "fcgi/handlers.h"
#include "fcgi/poller.h"

/* Tells the owner's other tabs (the session feed). The change is committed already, so
 * a failure does not fail the request: the session goes to the backlog, whose frames
 * the reaper thread publishes once Redis is back (core/feed.h). */
static void feed_changed(struct worker *w, const char *id, bool deleted, int64_t owner)
{
    struct store *st;
    struct bus *bus;
    struct cgw_error err;
    enum cgw_err rc = worker_bus(w, &bus, &err);
    if (rc == CGW_OK && deleted)
        rc = feed_publish_deleted(bus, owner, id, &err);
    else if (rc == CGW_OK && (rc = worker_store(w, &st, &err)) == CGW_OK)
        rc = feed_publish_session(st, bus, id, &err);
    if (rc != CGW_OK) {
        log_warn("session %s: feed frame delayed: %s", id, err.text);
        feed_backlog_add(w->app->feed_backlog, owner, id, deleted);
    }
}

/* Reads the run of a session from Redis; a session Redis never saw has none. */
static enum cgw_err session_run(struct worker *w, const char *id, struct bus_run *run,
                                struct cgw_error *err)
{
    struct bus *bus;
    enum cgw_err rc = worker_bus(w, &bus, err);
    if (rc != CGW_OK)
        return rc;
    rc = bus_run_get(bus, id, run, NULL, err);
    if (rc == CGW_ERR_NOT_FOUND) {
        memset(run, 0, sizeof *run);
        return CGW_OK;
    }
    return rc;
}

int session_load_owned(struct worker *w, const struct request *req, const char *id,
                       struct store_session *s, struct response *resp)
{
    struct store *st;
    struct cgw_error err;
    memset(s, 0, sizeof *s);
    if (!cgw_uuid_valid(id)) {
        response_error(resp, CODE_SESSION_NOT_FOUND, NULL, "session not found");
        return -1;
    }
    enum cgw_err rc = worker_store(w, &st, &err);
    if (rc == CGW_OK)
        rc = store_session_get(st, id, req->user.id, s, &err);
    if (rc == CGW_ERR_NOT_FOUND) {
        response_error(resp, CODE_SESSION_NOT_FOUND, id, "session not found");
        return -1;
    }
    if (rc != CGW_OK) {
        response_from_err(resp, &err, id);
        return -1;
    }
    return 0;
}

/* Resolves path and checks it is a directory inside one of the project roots. Returns a
 * new string with the real path, or NULL with resp set. */
static char *project_path_check(const struct config *cfg, const char *path, struct response *resp)
{
    char real[PATH_MAX];
    struct stat st;

    if (path[0] != '/' || strlen(path) >= PATH_MAX || !realpath(path, real) ||
        stat(real, &st) != 0 || !S_ISDIR(st.st_mode)) {
        response_error(resp, CODE_PROJECT_PATH_NOT_ALLOWED, NULL,
                       "projectPath must be an existing directory inside a configured "
                       "project root");
        return NULL;
    }
    for (size_t i = 0; i < cfg->n_project_roots; i++) {
        char root[PATH_MAX];
        if (!realpath(cfg->project_roots[i], root))
            continue;
        size_t n = strlen(root);
        if (strcmp(root, "/") == 0 ||
            (strncmp(real, root, n) == 0 && (real[n] == '\0' || real[n] == '/')))
            return strdup(real);
    }
    response_error(resp, CODE_PROJECT_PATH_NOT_ALLOWED, NULL,
                   "projectPath must be an existing directory inside a configured project "
                   "root");
    return NULL;
}

void h_session_create(struct worker *w, struct request *req, const struct query *q,
                      struct response *resp)
{
    static const char *const fields[] = {"provider", "projectPath", "name", NULL};
    struct store_session s;
    struct store *st;
    struct cgw_error err;
    enum provider_id provider;
    json_t *body = http_json_body(req, &w->app->cfg, false, resp);

    if (!body)
        return;
    memset(&s, 0, sizeof s);
    if (http_only_fields(body, fields, resp) < 0)
        goto out;
    json_t *jp = json_object_get(body, "provider");
    json_t *jpath = json_object_get(body, "projectPath");
    json_t *jname = json_object_get(body, "name");
    if (!jp || json_is_null(jp) || (json_is_string(jp) && !*json_string_value(jp))) {
        response_error(resp, CODE_PROVIDER_REQUIRED, NULL, "provider is required");
        goto out;
    }
    if (!json_is_string(jp)) {
        response_error(resp, CODE_INVALID_REQUEST, NULL, "provider must be a string");
        goto out;
    }
    if (provider_from_name(json_string_value(jp), &provider) < 0) {
        response_error(resp, CODE_UNSUPPORTED_PROVIDER, NULL, "provider \"%s\" is not supported",
                       json_string_value(jp));
        goto out;
    }
    if (!jpath || json_is_null(jpath) || (json_is_string(jpath) && !*json_string_value(jpath))) {
        response_error(resp, CODE_PROJECT_PATH_REQUIRED, NULL, "projectPath is required");
        goto out;
    }
    if (!json_is_string(jpath)) {
        response_error(resp, CODE_INVALID_REQUEST, NULL, "projectPath must be a string");
        goto out;
    }
    if (jname && !json_is_null(jname) && !json_is_string(jname)) {
        response_error(resp, CODE_INVALID_REQUEST, NULL, "name must be a string");
        goto out;
    }
    if (jname && json_is_string(jname) && json_string_length(jname) > 200) {
        response_error(resp, CODE_INVALID_REQUEST, NULL, "name is longer than 200 bytes");
        goto out;
    }
    s.project_path = project_path_check(&w->app->cfg, json_string_value(jpath), resp);
    if (!s.project_path)
        goto out;
    if (cgw_uuid_v4(s.id) < 0) {
        response_error(resp, CODE_INTERNAL_ERROR, NULL, "internal error");
        goto out;
    }
    s.owner = req->user.id;
    snprintf(s.provider, sizeof s.provider, "%s", provider_name(provider));
    s.name = strdup(jname && json_is_string(jname) ? json_string_value(jname) : "");
    /* Its home host: the project directory was checked here (DESIGN §12). */
    s.host = strdup(w->app->cfg.host_id);
    s.created_ms = s.updated_ms = cgw_now_ms();
    if (!s.name || !s.host) {
        response_error(resp, CODE_INTERNAL_ERROR, NULL, "internal error");
        goto out;
    }
    if (worker_store(w, &st, &err) != CGW_OK || store_session_create(st, &s, &err) != CGW_OK) {
        response_from_err(resp, &err, NULL);
        goto out;
    }
    log_info("session %s created by %s (%s, %s)", s.id, req->user.name, s.provider, s.project_path);
    feed_changed(w, s.id, false, s.owner);
    response_json(resp, 201, json_pack("{s:o}", "session", feed_session_json(&s, NULL)));
out:
    store_session_clear(&s);
    json_decref(body);
}

/* Parses an optional integer query parameter in [min, max]. Returns 0, or -1 with resp set. */
static int query_int(const struct query *q, const char *key, int64_t def, int64_t min, int64_t max,
                     int64_t *out, struct response *resp)
{
    const char *v = query_get(q, key);
    if (!v || !*v) {
        *out = def;
        return 0;
    }
    if (cgw_parse_int64(v, min, max, out) < 0) {
        response_error(resp, CODE_INVALID_REQUEST, NULL, "%s must be an integer from %lld to %lld",
                       key, (long long)min, (long long)max);
        return -1;
    }
    return 0;
}

void h_session_list(struct worker *w, struct request *req, const struct query *q,
                    struct response *resp)
{
    int64_t limit, offset, total = 0;
    int archived = 0;
    struct store_session *list = NULL;
    size_t n = 0;
    struct store *st;
    struct cgw_error err;
    const char *a = query_get(q, "archived");

    if (query_int(q, "limit", 50, 1, 500, &limit, resp) < 0 ||
        query_int(q, "offset", 0, 0, INT32_MAX, &offset, resp) < 0)
        return;
    if (a && strcmp(a, "true") == 0)
        archived = 1;
    else if (a && strcmp(a, "all") == 0)
        archived = -1;
    else if (a && *a && strcmp(a, "false") != 0) {
        response_error(resp, CODE_INVALID_REQUEST, NULL, "archived must be true, false or all");
        return;
    }
    if (worker_store(w, &st, &err) != CGW_OK ||
        store_session_list(st, req->user.id, archived, limit, offset, &list, &n, &total, &err) !=
            CGW_OK) {
        response_from_err(resp, &err, NULL);
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        struct bus_run run;
        if (session_run(w, list[i].id, &run, &err) != CGW_OK) {
            json_decref(arr);
            store_session_list_free(list, n);
            response_from_err(resp, &err, NULL);
            return;
        }
        json_array_append_new(arr, feed_session_json(&list[i], &run));
    }
    store_session_list_free(list, n);
    response_json(resp, 200,
                  json_pack("{s:o, s:I, s:b}", "sessions", arr, "total", (json_int_t)total,
                            "hasMore", offset + (int64_t)n < total));
}

void h_session_get(struct worker *w, struct request *req, const struct query *q,
                   struct response *resp)
{
    struct store_session s;
    struct bus_run run;
    struct cgw_error err;

    if (session_load_owned(w, req, req->params[0], &s, resp) < 0)
        return;
    if (session_run(w, s.id, &run, &err) != CGW_OK)
        response_from_err(resp, &err, s.id);
    else
        response_json(resp, 200, json_pack("{s:o}", "session", feed_session_json(&s, &run)));
    store_session_clear(&s);
}

void h_session_patch(struct worker *w, struct request *req, const struct query *q,
                     struct response *resp)
{
    static const char *const fields[] = {"name", "archived", NULL};
    struct store_session s;
    struct store *st;
    struct cgw_error err;
    struct bus_run run;
    json_t *body;

    if (session_load_owned(w, req, req->params[0], &s, resp) < 0)
        return;
    body = http_json_body(req, &w->app->cfg, false, resp);
    if (!body || http_only_fields(body, fields, resp) < 0)
        goto out;
    json_t *jname = json_object_get(body, "name");
    json_t *jarch = json_object_get(body, "archived");
    if (jname && !json_is_string(jname)) {
        response_error(resp, CODE_INVALID_REQUEST, s.id, "name must be a string");
        goto out;
    }
    if (jname && json_string_length(jname) > 200) {
        response_error(resp, CODE_INVALID_REQUEST, s.id, "name is longer than 200 bytes");
        goto out;
    }
    if (jarch && !json_is_boolean(jarch)) {
        response_error(resp, CODE_INVALID_REQUEST, s.id, "archived must be a boolean");
        goto out;
    }
    /* Redis before the change: a 503 must mean that nothing changed. Once the row is
     * written the answer is 200, whatever Redis does next (the run state is then read
     * before the change, the feed frame may go through the backlog). */
    if (session_run(w, s.id, &run, &err) != CGW_OK) {
        response_from_err(resp, &err, s.id);
        goto out;
    }
    if (worker_store(w, &st, &err) != CGW_OK ||
        store_session_update(st, s.id, req->user.id, jname ? json_string_value(jname) : NULL,
                             jarch ? json_is_true(jarch) : -1, &err) != CGW_OK) {
        response_from_err(resp, &err, s.id);
        goto out;
    }
    store_session_clear(&s);
    if (session_load_owned(w, req, req->params[0], &s, resp) < 0)
        goto out;
    feed_changed(w, s.id, false, s.owner);
    struct bus_run now;
    if (session_run(w, s.id, &now, &err) == CGW_OK)
        run = now;
    response_json(resp, 200, json_pack("{s:o}", "session", feed_session_json(&s, &run)));
out:
    json_decref(body);
    store_session_clear(&s);
}

void h_session_delete(struct worker *w, struct request *req, const struct query *q,
                      struct response *resp)
{
    struct store_session s;
    struct store *st;
    struct bus_run run;
    struct cgw_error err;

    if (session_load_owned(w, req, req->params[0], &s, resp) < 0)
        return;
    if (session_run(w, s.id, &run, &err) != CGW_OK) {
        response_from_err(resp, &err, s.id);
    } else if (run.status == RUN_RUNNING) {
        response_error(resp, CODE_RUN_IN_PROGRESS, s.id, "session has a run in progress");
    } else if (worker_store(w, &st, &err) != CGW_OK ||
               store_session_delete(st, s.id, req->user.id, &err) != CGW_OK) {
        response_from_err(resp, &err, s.id);
    } else {
        log_info("session %s deleted by %s", s.id, req->user.name);
        if (w->app->poller) /* this process's polls see it gone at once */
            owner_cache_forget(poller_owner_cache(w->app->poller), s.id);
        feed_changed(w, s.id, true, s.owner);
        response_json(resp, 200, json_pack("{s:s, s:b}", "sessionId", s.id, "deleted", 1));
    }
    store_session_clear(&s);
}

/* One page of history under the answer budget (limits.max_answer_bytes of event
 * text, always at least one event). Rows are read in small batches so that a few huge
 * events never sit in memory together: forwards (afterSeq, or neither) the oldest first
 * until the budget is spent; backwards (beforeSeq alone) the newest first. */
struct msg_page {
    json_t *arr;   /* the events, oldest first */
    int64_t bytes; /* event text taken */
    bool has_more; /* rows exist beyond the page in the paging direction */
    bool backward; /* beforeSeq alone */
    int64_t after; /* the next batch's bounds */
    int64_t before;
    int64_t left; /* events the page may still take (limit) */
};

#define MSG_BATCH 16

/* Takes the rows of one batch into pg (in paging order) while the budget lasts.
 * Returns true when the page is full. */
static bool msg_take(struct msg_page *pg, const struct config *cfg, const char *sid,
                     struct store_message *list, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        struct store_message *m = &list[pg->backward ? n - 1 - k : k];
        int64_t len = (int64_t)strlen(m->json);
        if (pg->left <= 0 ||
            (json_array_size(pg->arr) > 0 && pg->bytes + len > cfg->max_answer_bytes)) {
            pg->has_more = true;
            return true;
        }
        json_t *v = json_loads(m->json, 0, NULL);
        if (!v)
            log_error("session %s: stored message %lld is not JSON", sid, (long long)m->seq);
        else if (pg->backward)
            json_array_insert_new(pg->arr, 0, v);
        else
            json_array_append_new(pg->arr, v);
        pg->bytes += len;
        pg->left--;
        if (pg->backward)
            pg->before = m->seq;
        else
            pg->after = m->seq;
    }
    return false;
}

static enum cgw_err msg_page_read(struct store *st, const struct config *cfg, const char *sid,
                                  struct msg_page *pg, struct cgw_error *err)
{
    for (;;) {
        struct store_message *list = NULL;
        size_t n = 0;
        bool more = false;
        int64_t batch = pg->left < MSG_BATCH ? pg->left : MSG_BATCH;
        enum cgw_err rc = store_message_list(st, sid, pg->backward ? 0 : pg->after, pg->before,
                                             batch, &list, &n, &more, err);
        if (rc != CGW_OK)
            return rc;
        bool full = msg_take(pg, cfg, sid, list, n);
        store_message_list_free(list, n);
        if (full)
            return CGW_OK;
        if (!more || n == 0)
            return CGW_OK;
        if (pg->left <= 0) {
            pg->has_more = true;
            return CGW_OK;
        }
    }
}

void h_session_messages(struct worker *w, struct request *req, const struct query *q,
                        struct response *resp)
{
    struct store_session s;
    struct store *st;
    struct cgw_error err;
    int64_t after, before, limit;

    if (session_load_owned(w, req, req->params[0], &s, resp) < 0)
        return;
    if (query_int(q, "afterSeq", 0, 0, INT64_MAX, &after, resp) < 0 ||
        query_int(q, "beforeSeq", 0, 0, INT64_MAX, &before, resp) < 0 ||
        query_int(q, "limit", 200, 1, 1000, &limit, resp) < 0)
        goto out;
    struct msg_page pg = {.arr = json_array(),
                          .backward = before > 0 && after == 0,
                          .after = after,
                          .before = before,
                          .left = limit};
    if (!pg.arr) {
        response_error(resp, CODE_INTERNAL_ERROR, s.id, "internal error");
        goto out;
    }
    if (worker_store(w, &st, &err) != CGW_OK ||
        msg_page_read(st, &w->app->cfg, s.id, &pg, &err) != CGW_OK) {
        json_decref(pg.arr);
        response_from_err(resp, &err, s.id);
        goto out;
    }
    response_json(resp, 200,
                  json_pack("{s:o, s:I, s:b}", "messages", pg.arr, "lastSeq",
                            (json_int_t)s.last_seq, "hasMore", pg.has_more));
out:
    store_session_clear(&s);
}
