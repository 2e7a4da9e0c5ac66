/* provider.c: the provider table, the run request decoder, and the containers adapters fill. */
#include "runner/provider.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/providers.h"
#include "core/util.h"

/* One adapter per row of core/provider_list.h, one file each in providers/. */
#define PROVIDER_ROW(ID, name, ...) [PROVIDER_##ID] = &name##_provider,
static const struct runner_provider *const provider_table[PROVIDER__COUNT] = {
    CGW_PROVIDER_LIST(PROVIDER_ROW)};
#undef PROVIDER_ROW

const struct runner_provider *runner_provider_for(enum provider_id p)
{
    if ((unsigned)p >= PROVIDER__COUNT)
        return NULL;
    return provider_table[p];
}

/* ---- the run request ------------------------------------------------------------- */

/* A copy of the string member key of obj into *out: required or optional (absent or
 * null leaves *out NULL). Returns 0, or -1 with err set. */
static int take_string(const json_t *obj, const char *key, bool required, char **out,
                       struct cgw_error *err)
{
    const json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (!v || json_is_null(v)) {
        if (!required)
            return 0;
        cgw_error_set(err, CGW_ERR_INVALID, "run request: %s is missing", key);
        return -1;
    }
    if (!json_is_string(v)) {
        cgw_error_set(err, CGW_ERR_INVALID, "run request: %s must be a string", key);
        return -1;
    }
    *out = strdup(json_string_value(v));
    if (!*out) {
        cgw_error_set(err, CGW_ERR_NOMEM, "run request: out of memory");
        return -1;
    }
    return 0;
}

/* The string array member key of obj (absent or null: empty). */
static int take_strings(const json_t *obj, const char *key, char ***out, size_t *n,
                        struct cgw_error *err)
{
    const json_t *arr = json_object_get(obj, key);
    size_t i;
    json_t *v;

    *out = NULL;
    *n = 0;
    if (!arr || json_is_null(arr))
        return 0;
    if (!json_is_array(arr)) {
        cgw_error_set(err, CGW_ERR_INVALID, "run request: %s must be an array", key);
        return -1;
    }
    *out = calloc(json_array_size(arr) + 1, sizeof **out);
    if (!*out) {
        cgw_error_set(err, CGW_ERR_NOMEM, "run request: out of memory");
        return -1;
    }
    json_array_foreach(arr, i, v)
    {
        if (!json_is_string(v)) {
            cgw_error_set(err, CGW_ERR_INVALID, "run request: %s[%zu] must be a string", key, i);
            return -1;
        }
        (*out)[*n] = strdup(json_string_value(v));
        if (!(*out)[*n]) {
            cgw_error_set(err, CGW_ERR_NOMEM, "run request: out of memory");
            return -1;
        }
        (*n)++;
    }
    return 0;
}

/* Decodes the "attachments" member of the run request (absent or null: none). */
static int take_attachments(const json_t *root, struct runner_request *req, struct cgw_error *err)
{
    const json_t *arr = json_object_get(root, "attachments");
    size_t i;
    json_t *v;

    if (!arr || json_is_null(arr))
        return 0;
    if (!json_is_array(arr)) {
        cgw_error_set(err, CGW_ERR_INVALID, "run request: attachments must be an array");
        return -1;
    }
    if (json_array_size(arr) > RUNNER_MAX_ATTACHMENTS) {
        cgw_error_set(err, CGW_ERR_INVALID, "run request: more than %d attachments",
                      RUNNER_MAX_ATTACHMENTS);
        return -1;
    }
    if (json_array_size(arr) == 0)
        return 0;
    req->attachments = calloc(json_array_size(arr), sizeof *req->attachments);
    if (!req->attachments) {
        cgw_error_set(err, CGW_ERR_NOMEM, "run request: out of memory");
        return -1;
    }
    json_array_foreach(arr, i, v)
    {
        struct runner_attachment *a = &req->attachments[i];
        const json_t *size = json_object_get(v, "size");
        if (!json_is_object(v)) {
            cgw_error_set(err, CGW_ERR_INVALID, "run request: attachments[%zu] must be an object",
                          i);
            return -1;
        }
        req->n_attachments = i + 1;
        if (take_string(v, "id", true, &a->id, err) < 0 ||
            take_string(v, "name", false, &a->name, err) < 0 ||
            take_string(v, "mimeType", false, &a->mime_type, err) < 0) {
            if (err->code == CGW_ERR_INVALID) {
                char why[sizeof err->text];
                snprintf(why, sizeof why, "%s", err->text + strlen("run request: "));
                cgw_error_set(err, CGW_ERR_INVALID, "run request: attachments[%zu].%s", i, why);
            }
            return -1;
        }
        if (!*a->id) {
            cgw_error_set(err, CGW_ERR_INVALID, "run request: attachments[%zu].id is empty", i);
            return -1;
        }
        if (size && !json_is_null(size) &&
            (!json_is_integer(size) || json_integer_value(size) < 0)) {
            cgw_error_set(err, CGW_ERR_INVALID,
                          "run request: attachments[%zu].size must be a non-negative integer", i);
            return -1;
        }
        a->size = json_is_integer(size) ? (int64_t)json_integer_value(size) : 0;
        if ((!a->name && !(a->name = strdup("attachment"))) ||
            (!a->mime_type && !(a->mime_type = strdup("application/octet-stream")))) {
            cgw_error_set(err, CGW_ERR_NOMEM, "run request: out of memory");
            return -1;
        }
    }
    return 0;
}

enum cgw_err runner_request_parse(const char *json, size_t len, struct runner_request *req,
                                  struct cgw_error *err)
{
    json_error_t jerr;
    char *provider = NULL;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);

    memset(req, 0, sizeof *req);
    if (!root || !json_is_object(root)) {
        json_decref(root);
        return cgw_error_set(err, CGW_ERR_INVALID, "run request: not a JSON object");
    }
    const json_t *owner = json_object_get(root, "owner");
    const json_t *opts = json_object_get(root, "options");
    const json_t *tools = opts ? json_object_get(opts, "toolsSettings") : NULL;
    const json_t *skip = tools ? json_object_get(tools, "skipPermissions") : NULL;
    if (opts && !json_is_object(opts) && !json_is_null(opts))
        cgw_error_set(err, CGW_ERR_INVALID, "run request: options must be an object");
    else if (tools && !json_is_object(tools) && !json_is_null(tools))
        cgw_error_set(err, CGW_ERR_INVALID, "run request: toolsSettings must be an object");
    else if (skip && !json_is_boolean(skip) && !json_is_null(skip))
        cgw_error_set(err, CGW_ERR_INVALID, "run request: skipPermissions must be a boolean");
    else if (!json_is_integer(owner) || json_integer_value(owner) <= 0)
        cgw_error_set(err, CGW_ERR_INVALID, "run request: owner must be a positive integer");
    else if (take_string(root, "sessionId", true, &req->session_id, err) == 0 &&
             take_string(root, "runId", true, &req->run_id, err) == 0 &&
             take_string(root, "provider", true, &provider, err) == 0 &&
             take_string(root, "projectPath", true, &req->project_path, err) == 0 &&
             take_string(root, "content", true, &req->content, err) == 0 &&
             take_string(root, "nativeId", false, &req->native_id, err) == 0 &&
             take_string(opts, "model", false, &req->model, err) == 0 &&
             take_string(opts, "permissionMode", false, &req->permission_mode, err) == 0 &&
             take_strings(tools, "allowedTools", &req->allowed_tools, &req->n_allowed, err) == 0 &&
             take_strings(tools, "disallowedTools", &req->disallowed_tools, &req->n_disallowed,
                          err) == 0 &&
             take_attachments(root, req, err) == 0) {
        if (provider_from_name(provider, &req->provider) < 0)
            cgw_error_set(err, CGW_ERR_INVALID, "run request: unknown provider '%s'", provider);
        else if (req->model && !provider_model_valid(req->model))
            /* Send refuses these; a request that got into Redis otherwise stops here. */
            cgw_error_set(err, CGW_ERR_INVALID, "run request: options.model is not a model name");
        else
            cgw_error_clear(err);
    }
    req->owner = json_is_integer(owner) ? (int64_t)json_integer_value(owner) : 0;
    req->skip_permissions = json_is_true(skip);
    free(provider);
    json_decref(root);
    if (err->code != CGW_OK) {
        runner_request_free(req);
        return err->code;
    }
    if (req->native_id && !*req->native_id) {
        free(req->native_id);
        req->native_id = NULL;
    }
    return CGW_OK;
}

static void free_strings(char **v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        free(v[i]);
    free(v);
}

void runner_request_free(struct runner_request *req)
{
    free(req->session_id);
    free(req->run_id);
    free(req->project_path);
    free(req->native_id);
    free(req->content);
    free(req->model);
    free(req->permission_mode);
    free_strings(req->allowed_tools, req->n_allowed);
    free_strings(req->disallowed_tools, req->n_disallowed);
    for (size_t i = 0; i < req->n_attachments; i++) {
        struct runner_attachment *a = &req->attachments[i];
        free(a->id);
        free(a->name);
        free(a->mime_type);
        free(a->path);
        free(a->data);
    }
    free(req->attachments);
    free(req->attach_dir);
    memset(req, 0, sizeof *req);
}

bool runner_attachment_is_image(const struct runner_attachment *a)
{
    static const char *const types[] = {"image/png", "image/jpeg", "image/gif", "image/webp"};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (strcasecmp(a->mime_type, types[i]) == 0)
            return true;
    return false;
}

char *runner_base64(const unsigned char *data, size_t len)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    if (len > (SIZE_MAX - 1) / 4 * 3 - 3)
        return NULL;
    char *out = malloc((len + 2) / 3 * 4 + 1), *o = out;
    if (!out)
        return NULL;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)data[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)data[i + 1] << 8;
        if (i + 2 < len)
            v |= data[i + 2];
        *o++ = abc[v >> 18 & 63];
        *o++ = abc[v >> 12 & 63];
        *o++ = i + 1 < len ? abc[v >> 6 & 63] : '=';
        *o++ = i + 2 < len ? abc[v & 63] : '=';
    }
    *o = '\0';
    return out;
}

char *runner_prompt_with_files(const struct runner_request *req,
                               bool (*pass)(const struct runner_attachment *a))
{
    struct runner_buf b = {0};
    bool listed = false;
    int rc = runner_buf_append(&b, req->content, strlen(req->content));

    for (size_t i = 0; rc == 0 && i < req->n_attachments; i++) {
        const struct runner_attachment *a = &req->attachments[i];
        char line[160];
        if (!a->path || (pass && pass(a)))
            continue;
        if (!listed) {
            static const char head[] = "\n\nAttached files (read them from these paths):";
            rc = runner_buf_append(&b, head, sizeof head - 1);
            listed = true;
        }
        snprintf(line, sizeof line, " (%s, %" PRId64 " bytes, named \"", a->mime_type, a->size);
        if (rc == 0)
            rc = runner_buf_append(&b, "\n- ", 3);
        if (rc == 0)
            rc = runner_buf_append(&b, a->path, strlen(a->path));
        if (rc == 0)
            rc = runner_buf_append(&b, line, strlen(line));
        if (rc == 0)
            rc = runner_buf_append(&b, a->name, strlen(a->name));
        if (rc == 0)
            rc = runner_buf_append(&b, "\")", 2);
    }
    if (rc == 0)
        rc = runner_buf_append(&b, "", 1);
    if (rc < 0) {
        runner_buf_free(&b);
        return NULL;
    }
    return b.data;
}

/* ---- buffers --------------------------------------------------------------------- */

int runner_buf_append(struct runner_buf *b, const void *data, size_t n)
{
    if (n == 0)
        return 0;
    if (b->len + n < b->len)
        return -1;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n) {
            if (cap > SIZE_MAX / 2)
                return -1;
            cap *= 2;
        }
        char *p = realloc(b->data, cap);
        if (!p)
            return -1;
        b->data = p;
        b->cap = cap;
    }
    memcpy(b->data + b->len, data, n);
    b->len += n;
    return 0;
}

int runner_buf_append_json_line(struct runner_buf *b, const json_t *v)
{
    char *text = event_json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!text)
        return -1;
    size_t len = strlen(text);
    size_t old = b->len;
    int rc = runner_buf_append(b, text, len);
    if (rc == 0 && runner_buf_append(b, "\n", 1) < 0) {
        b->len = old;
        rc = -1;
    }
    free(text);
    return rc;
}

void runner_buf_consume(struct runner_buf *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
}

void runner_buf_free(struct runner_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

/* ---- string vectors -------------------------------------------------------------- */

/* Appends s (taking ownership; NULL = out of memory). */
static int strv_push(struct runner_strv *sv, char *s)
{
    if (!s)
        return -1;
    if (sv->n + 2 > sv->cap) {
        size_t cap = sv->cap ? sv->cap * 2 : 16;
        char **v = realloc(sv->v, cap * sizeof *v);
        if (!v) {
            free(s);
            return -1;
        }
        sv->v = v;
        sv->cap = cap;
    }
    sv->v[sv->n++] = s;
    sv->v[sv->n] = NULL;
    return 0;
}

int runner_strv_add(struct runner_strv *sv, const char *s)
{
    return strv_push(sv, strdup(s));
}

int runner_strv_add2(struct runner_strv *sv, const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *s = malloc(la + lb + 1);
    if (s) {
        memcpy(s, a, la);
        memcpy(s + la, b, lb + 1);
    }
    return strv_push(sv, s);
}

void runner_strv_free(struct runner_strv *sv)
{
    for (size_t i = 0; i < sv->n; i++)
        free(sv->v[i]);
    free(sv->v);
    memset(sv, 0, sizeof *sv);
}

/* ---- items ----------------------------------------------------------------------- */

static struct runner_item *item_new(struct runner_items *it, enum runner_item_type type)
{
    if (it->n == it->cap) {
        size_t cap = it->cap ? it->cap * 2 : 8;
        struct runner_item *v = realloc(it->v, cap * sizeof *v);
        if (!v) {
            it->failed = true;
            return NULL;
        }
        it->v = v;
        it->cap = cap;
    }
    struct runner_item *item = &it->v[it->n];
    memset(item, 0, sizeof *item);
    item->type = type;
    return item;
}

static void item_free(struct runner_item *item)
{
    json_decref(item->ev);
    json_decref(item->input);
    free(item->id);
    free(item->tool_name);
    free(item->text);
}

/* Keeps a filled item, or drops it when one of its copies failed. */
static void item_commit(struct runner_items *it, struct runner_item *item, bool ok)
{
    if (!ok) {
        item_free(item);
        it->failed = true;
        return;
    }
    it->n++;
}

void runner_items_event(struct runner_items *it, json_t *ev)
{
    if (!ev) {
        it->failed = true;
        return;
    }
    struct runner_item *item = item_new(it, RUNNER_ITEM_EVENT);
    if (!item) {
        json_decref(ev);
        return;
    }
    item->ev = ev;
    item_commit(it, item, true);
}

void runner_items_native_id(struct runner_items *it, const char *id)
{
    struct runner_item *item = item_new(it, RUNNER_ITEM_NATIVE_ID);
    if (!item)
        return;
    item->id = strdup(id);
    item_commit(it, item, item->id != NULL);
}

void runner_items_permission(struct runner_items *it, const char *id, const char *tool_name,
                             json_t *input)
{
    struct runner_item *item = item_new(it, RUNNER_ITEM_PERMISSION);
    if (!item) {
        json_decref(input);
        return;
    }
    item->id = strdup(id);
    item->tool_name = strdup(tool_name);
    item->input = input;
    item_commit(it, item, item->id && item->tool_name && input);
}

void runner_items_cancel(struct runner_items *it, const char *id)
{
    struct runner_item *item = item_new(it, RUNNER_ITEM_CANCEL);
    if (!item)
        return;
    item->id = strdup(id);
    item_commit(it, item, item->id != NULL);
}

void runner_items_result(struct runner_items *it, bool is_error, const char *text)
{
    struct runner_item *item = item_new(it, RUNNER_ITEM_RESULT);
    if (!item)
        return;
    item->is_error = is_error;
    item->text = text ? strdup(text) : NULL;
    item_commit(it, item, !text || item->text);
}

void runner_items_turn_failed(struct runner_items *it, const char *provider, const char *text)
{
    const char *open = text ? strchr(text, '{') : NULL;
    const char *close = text ? strrchr(text, '}') : NULL;
    json_t *inner =
        open && close > open ? json_loadb(open, (size_t)(close - open + 1), 0, NULL) : NULL;
    const char *api = runner_json_str(json_object_get(inner, "error"), "message");
    char buf[1024];

    if (api && *api) {
        snprintf(buf, sizeof buf, "%s: the turn failed: %s", provider, api);
        runner_items_result(it, true, buf);
    } else if (text && *text) {
        runner_items_result(it, true, text);
    } else {
        snprintf(buf, sizeof buf, "%s: the turn failed", provider);
        runner_items_result(it, true, buf);
    }
    json_decref(inner);
}

void *runner_state_alloc(size_t size, const struct event_ctx *ctx, const struct runner_request *req)
{
    struct runner_state *st = size >= sizeof *st ? calloc(1, size) : NULL;
    if (!st)
        return NULL;
    st->ctx = ctx;
    st->req = req;
    return st;
}

void *runner_state_new(const struct event_ctx *ctx, const struct runner_request *req)
{
    return runner_state_alloc(sizeof(struct runner_state), ctx, req);
}

void runner_state_free(void *st)
{
    free(st);
}

const char *runner_json_str(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

int64_t runner_json_int(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : 0;
}

void runner_json_set_copy(json_t *ev, const char *key, const json_t *v, struct runner_items *out)
{
    if (!ev || !v)
        return;
    json_t *copy = json_deep_copy(v);
    if (!copy || json_object_set_new(ev, key, copy) < 0)
        out->failed = true;
}

#define UNREADABLE_SNIPPET 160

void runner_items_unreadable(struct runner_items *it, const struct event_ctx *ctx,
                             const char *provider, const char *why, const char *line, size_t len)
{
    char snippet[UNREADABLE_SNIPPET + 4];
    char text[UNREADABLE_SNIPPET + 256];
    size_t n = len < UNREADABLE_SNIPPET ? len : UNREADABLE_SNIPPET;

    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)line[i];
        snippet[i] = c >= 0x20 && c < 0x7f ? (char)c : '?';
    }
    snippet[n] = '\0';
    if (len > n)
        memcpy(snippet + n, "...", 4);
    snprintf(text, sizeof text, "%s: unreadable output line (%s): %s", provider, why, snippet);
    runner_items_event(it, event_new_error(ctx, text));
}

json_t *runner_line_decode(struct runner_items *it, const struct event_ctx *ctx,
                           const char *provider, const char *line, size_t len, const char **type)
{
    json_error_t jerr;
    json_t *msg = json_loadb(line, len, 0, &jerr);

    if (!msg) {
        runner_items_unreadable(it, ctx, provider, "invalid JSON", line, len);
        return NULL;
    }
    if (!(*type = runner_json_str(msg, "type"))) {
        runner_items_unreadable(it, ctx, provider, "no type", line, len);
        json_decref(msg);
        return NULL;
    }
    return msg;
}

void runner_items_clear(struct runner_items *it)
{
    for (size_t i = 0; i < it->n; i++)
        item_free(&it->v[i]);
    free(it->v);
    memset(it, 0, sizeof *it);
}
