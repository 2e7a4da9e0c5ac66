/* h_attachments.c: files in a session (POST/GET /sessions/{id}/attachments, GET/DELETE
 * /sessions/{id}/attachments/{aid}) and the attachments of a send (options.attachments,
 * options.images).
 *
 * An attachment belongs to a session and its owner; another user's is answered like a
 * missing one (404). The bytes live in the store (store_attachment_*), so the runner of
 * any host reads them by id. Uploads are checked before anything is stored: the media
 * type against the allowed list (upload_type_allowed), an image's first bytes against
 * its type, the size against limits.max_attachment_bytes; the per-session count and
 * total are checked by the store under a lock on the session. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/util.h"
#include "fcgi/handlers.h"
#include "fcgi/upload.h"

/* {id, name, mimeType, size, url, createdAt} of a, a new reference (NULL: no memory). */
static json_t *attachment_json(const struct config *cfg, const struct store_attachment *a)
{
    char url[512], when[CGW_ISO_TIME_LEN + 1];

    snprintf(url, sizeof url, "%s/sessions/%s/attachments/%s", cfg->http_prefix, a->session_id,
             a->id);
    return json_pack("{s:s, s:s, s:s, s:I, s:s, s:s}", "id", a->id, "name", a->name, "mimeType",
                     a->mime_type, "size", (json_int_t)a->size, "url", url, "createdAt",
                     cgw_time_iso(a->created_ms, when));
}

/* Checks and stores one file of session s. On success *out is filled. Returns 0, or -1
 * with resp set; nothing is stored then. */
static int attachment_store(struct worker *w, const struct request *req,
                            const struct store_session *s, const char *name, const char *type,
                            const void *data, size_t len, struct store_attachment *out,
                            struct response *resp)
{
    const struct config *cfg = &w->app->cfg;
    struct store *st;
    struct cgw_error err;
    enum cgw_err rc;

    if (!upload_type_allowed(type)) {
        response_error(resp, CODE_ATTACHMENT_TYPE, s->id,
                       "attachments of type \"%.80s\" are not accepted (images: png, jpeg, gif, "
                       "webp; text/*, application/pdf, application/json, "
                       "application/octet-stream)",
                       type);
        return -1;
    }
    if ((int64_t)len > cfg->max_attachment_bytes) {
        response_error(resp, CODE_ATTACHMENT_TOO_LARGE, s->id,
                       "the attachment is larger than %lld bytes",
                       (long long)cfg->max_attachment_bytes);
        return -1;
    }
    if (len == 0) {
        response_error(resp, CODE_INVALID_REQUEST, s->id, "the attachment is empty");
        return -1;
    }
    if (!upload_magic_ok(type, data, len)) {
        response_error(resp, CODE_ATTACHMENT_TYPE, s->id, "the file is not a %s image", type);
        return -1;
    }
    memset(out, 0, sizeof *out);
    if (cgw_id_new("att", out->id, sizeof out->id) < 0) {
        response_error(resp, CODE_INTERNAL_ERROR, s->id, "internal error");
        return -1;
    }
    snprintf(out->session_id, sizeof out->session_id, "%s", s->id);
    out->user_id = req->user.id;
    snprintf(out->name, sizeof out->name, "%s", name);
    snprintf(out->mime_type, sizeof out->mime_type, "%s", type);
    rc = worker_store(w, &st, &err);
    if (rc == CGW_OK)
        rc = store_attachment_put(st, out, data, len, cfg->max_attachments,
                                  cfg->max_attachment_total, &err);
    if (rc == CGW_ERR_LIMIT) {
        response_error(resp, CODE_ATTACHMENT_LIMIT, s->id, "%s", err.text);
        return -1;
    }
    if (rc == CGW_ERR_NOT_FOUND) { /* deleted in the meantime */
        response_error(resp, CODE_SESSION_NOT_FOUND, s->id, "session not found");
        return -1;
    }
    if (rc != CGW_OK) {
        response_from_err(resp, &err, s->id);
        return -1;
    }
    out->size = (int64_t)len;
    out->created_ms = cgw_now_ms();
    return 0;
}

/* The caller's session of the route (params[0]) that can take attachments. */
static int session_for_attachments(struct worker *w, const struct request *req,
                                   struct store_session *s, struct response *resp)
{
    enum provider_id p;

    if (session_load_owned(w, req, req->params[0], s, resp) < 0)
        return -1;
    if (provider_from_name(s->provider, &p) < 0 || !provider_caps[p].attach) {
        response_error(resp, CODE_ATTACHMENTS_UNSUPPORTED, s->id, "the %s CLI takes no attachments",
                       s->provider);
        store_session_clear(s);
        return -1;
    }
    return 0;
}

void h_attachment_upload(struct worker *w, struct request *req, const struct query *q,
                         struct response *resp)
{
    struct store_session s;
    struct store_attachment a;
    struct upload_part part;
    char name[UPLOAD_NAME_MAX + 1] = "", type[UPLOAD_TYPE_MAX + 1] = "", why[160];
    const char *data = req->body, *qname;
    size_t len = req->body_len;

    if (session_for_attachments(w, req, &s, resp) < 0)
        return;
    if (req->body_too_large) {
        response_error(resp, CODE_ATTACHMENT_TOO_LARGE, s.id,
                       "the attachment is larger than %lld bytes",
                       (long long)w->app->cfg.max_attachment_bytes);
        goto out;
    }
    if (upload_is_multipart(req->content_type)) {
        if (upload_multipart_file(req->body, req->body_len, req->content_type, &part, why,
                                  sizeof why) < 0) {
            response_error(resp, CODE_INVALID_REQUEST, s.id, "%s", why);
            goto out;
        }
        data = part.data;
        len = part.len;
        snprintf(name, sizeof name, "%s", part.filename);
        snprintf(type, sizeof type, "%s", part.type[0] ? part.type : "application/octet-stream");
    } else {
        upload_media_type(req->content_type, type, sizeof type);
        if ((qname = query_get(q, "name")) != NULL)
            snprintf(name, sizeof name, "%s", qname);
        else if (upload_disposition_param(req->content_disposition, "filename", name, sizeof name) <
                 0)
            name[0] = '\0';
    }
    upload_clean_name(name, sizeof name, "attachment");
    if (attachment_store(w, req, &s, name, type, data, len, &a, resp) < 0)
        goto out;
    log_info("attachment %s (%s, %zu bytes) added to session %s by %s", a.id, a.mime_type, len,
             s.id, req->user.name);
    response_json(resp, 201, json_pack("{s:o}", "attachment", attachment_json(&w->app->cfg, &a)));
out:
    store_session_clear(&s);
}

void h_attachment_list(struct worker *w, struct request *req, const struct query *q,
                       struct response *resp)
{
    struct store_session s;
    struct store_attachment *list = NULL;
    struct store *st;
    struct cgw_error err;
    size_t n = 0;
    json_t *arr;

    (void)q;
    if (session_load_owned(w, req, req->params[0], &s, resp) < 0)
        return;
    if (worker_store(w, &st, &err) != CGW_OK ||
        store_attachment_list(st, s.id, 0, &list, &n, &err) != CGW_OK) {
        response_from_err(resp, &err, s.id);
        goto out;
    }
    arr = json_array();
    for (size_t i = 0; arr && i < n; i++)
        if (json_array_append_new(arr, attachment_json(&w->app->cfg, &list[i])) < 0) {
            json_decref(arr);
            arr = NULL;
        }
    free(list);
    if (!arr)
        response_error(resp, CODE_INTERNAL_ERROR, s.id, "internal error");
    else
        response_json(resp, 200, json_pack("{s:o}", "attachments", arr));
out:
    store_session_clear(&s);
}

/* The filename of a Content-Disposition header: ASCII only (the rest as '_'), for the
 * plain parameter; the full name goes percent-encoded in filename*. */
static void disposition(const struct store_attachment *a, bool inline_ok, char *buf, size_t size)
{
    char plain[UPLOAD_NAME_MAX + 1], enc[3 * UPLOAD_NAME_MAX + 1];
    size_t i, k = 0;

    for (i = 0; a->name[i] && i < sizeof plain - 1; i++) {
        unsigned char c = (unsigned char)a->name[i];
        plain[i] = (c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == ';') ? '_' : (char)c;
    }
    plain[i] = '\0';
    for (i = 0; a->name[i] && k + 4 < sizeof enc; i++) {
        unsigned char c = (unsigned char)a->name[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            strchr("!#$&+-.^_`|~", c))
            enc[k++] = (char)c;
        else
            k += (size_t)snprintf(enc + k, sizeof enc - k, "%%%02X", c);
    }
    enc[k] = '\0';
    int n = snprintf(buf, size,
                     "X-Content-Type-Options: nosniff\r\n"
                     "Content-Security-Policy: sandbox; default-src 'none'\r\n"
                     "Content-Disposition: %s; filename=\"%s\"; filename*=UTF-8''%s\r\n",
                     inline_ok ? "inline" : "attachment", plain, enc);
    if (n < 0 || (size_t)n >= size) /* cannot happen with the sizes of response.h */
        snprintf(buf, size,
                 "X-Content-Type-Options: nosniff\r\nContent-Disposition: attachment\r\n");
}

/* The caller's attachment of the route (params[0], params[1]) into *a. */
static int attachment_load(struct worker *w, const struct request *req, bool with_data,
                           struct store_attachment *a, void **data, size_t *len,
                           struct response *resp)
{
    struct store *st;
    struct cgw_error err;
    enum cgw_err rc = worker_store(w, &st, &err);

    if (rc == CGW_OK)
        rc = store_attachment_get(st, req->params[1], a, with_data ? data : NULL, len, &err);
    if (rc == CGW_OK && (strcmp(a->session_id, req->params[0]) != 0 || a->user_id != req->user.id))
        rc = CGW_ERR_NOT_FOUND;
    if (rc == CGW_ERR_NOT_FOUND) {
        if (with_data) {
            free(*data);
            *data = NULL;
        }
        response_error(resp, CODE_ATTACHMENT_NOT_FOUND, NULL, "attachment not found");
        return -1;
    }
    if (rc != CGW_OK) {
        response_from_err(resp, &err, NULL);
        return -1;
    }
    return 0;
}

void h_attachment_get(struct worker *w, struct request *req, const struct query *q,
                      struct response *resp)
{
    struct store_session s;
    struct store_attachment a;
    void *data = NULL;
    size_t len = 0;

    (void)q;
    if (session_load_owned(w, req, req->params[0], &s, resp) < 0)
        return;
    store_session_clear(&s);
    if (attachment_load(w, req, true, &a, &data, &len, resp) < 0)
        return;
    if (len == 0) { /* response_text takes a NUL-terminated text then */
        free(data);
        data = strdup("");
    }
    snprintf(resp->type_buf, sizeof resp->type_buf, "%s", a.mime_type);
    response_text(resp, 200, resp->type_buf, data);
    if (resp->status == 200) {
        resp->text_len = len;
        disposition(&a, upload_type_is_image(a.mime_type), resp->headers, sizeof resp->headers);
    }
}

void h_attachment_delete(struct worker *w, struct request *req, const struct query *q,
                         struct response *resp)
{
    struct store_session s;
    struct store *st;
    struct cgw_error err;
    enum cgw_err rc;

    (void)q;
    if (session_load_owned(w, req, req->params[0], &s, resp) < 0)
        return;
    rc = worker_store(w, &st, &err);
    if (rc == CGW_OK)
        rc = store_attachment_delete(st, req->params[1], s.id, req->user.id, &err);
    if (rc == CGW_ERR_NOT_FOUND)
        response_error(resp, CODE_ATTACHMENT_NOT_FOUND, s.id, "attachment not found");
    else if (rc != CGW_OK)
        response_from_err(resp, &err, s.id);
    else
        response_json(resp, 200,
                      json_pack("{s:s, s:s, s:b}", "sessionId", s.id, "attachmentId",
                                req->params[1], "deleted", 1));
    store_session_clear(&s);
}

/* ---- send ------------------------------------------------------------------------- */

/* Decodes and stores options.images[i] (the reference's {name, data: data URL, size,
 * mimeType}); appends its JSON to list and its id to created. */
static int send_image(struct worker *w, const struct request *req, const struct store_session *s,
                      json_t *img, size_t i, json_t *list, json_t *created, struct response *resp)
{
    const struct config *cfg = &w->app->cfg;
    json_t *jd = json_object_get(img, "data"), *jn = json_object_get(img, "name");
    char type[UPLOAD_TYPE_MAX + 1], name[UPLOAD_NAME_MAX + 1];
    struct store_attachment a;
    void *data = NULL;
    size_t len = 0;
    int rc;

    if (!json_is_object(img) || !json_is_string(jd) || (jn && !json_is_string(jn))) {
        response_error(resp, CODE_INVALID_REQUEST, s->id,
                       "options.images[%zu] must be {name?, data: a data: URL}", i);
        return -1;
    }
    rc = upload_data_url(json_string_value(jd), json_string_length(jd),
                         (size_t)cfg->max_attachment_bytes, type, sizeof type, &data, &len);
    if (rc == -2) {
        response_error(resp, CODE_ATTACHMENT_TOO_LARGE, s->id,
                       "options.images[%zu] is larger than %lld bytes", i,
                       (long long)cfg->max_attachment_bytes);
        return -1;
    }
    if (rc < 0) {
        response_error(resp, CODE_INVALID_REQUEST, s->id,
                       "options.images[%zu].data must be a data:<type>;base64,... URL", i);
        return -1;
    }
    if (!upload_type_is_image(type)) {
        free(data);
        response_error(resp, CODE_ATTACHMENT_TYPE, s->id,
                       "options.images[%zu] is not a png, jpeg, gif or webp image", i);
        return -1;
    }
    snprintf(name, sizeof name, "%s", jn ? json_string_value(jn) : "");
    upload_clean_name(name, sizeof name, "image");
    rc = attachment_store(w, req, s, name, type, data, len, &a, resp);
    free(data);
    if (rc < 0)
        return -1;
    if (json_array_append_new(created, json_string(a.id)) < 0 ||
        json_array_append_new(list, attachment_json(cfg, &a)) < 0) {
        response_error(resp, CODE_INTERNAL_ERROR, s->id, "internal error");
        return -1;
    }
    return 0;
}

/* Appends options.attachments[i], an id of the caller's attachment of s, to list. */
static int send_attachment_id(struct worker *w, const struct request *req,
                              const struct store_session *s, json_t *id, size_t i, json_t *list,
                              struct response *resp)
{
    struct store_attachment a;
    struct store *st;
    struct cgw_error err;
    enum cgw_err rc;
    size_t k;
    json_t *have;

    if (!json_is_string(id)) {
        response_error(resp, CODE_INVALID_REQUEST, s->id,
                       "options.attachments must be an array of attachment ids");
        return -1;
    }
    json_array_foreach(list, k, have)
    {
        if (strcmp(json_string_value(json_object_get(have, "id")), json_string_value(id)) == 0) {
            response_error(resp, CODE_INVALID_REQUEST, s->id,
                           "options.attachments names %.60s twice", json_string_value(id));
            return -1;
        }
    }
    rc = worker_store(w, &st, &err);
    if (rc == CGW_OK)
        rc = store_attachment_meta(st, json_string_value(id), &a, &err);
    if (rc == CGW_ERR_NOT_FOUND ||
        (rc == CGW_OK && (strcmp(a.session_id, s->id) != 0 || a.user_id != req->user.id))) {
        response_error(resp, CODE_ATTACHMENT_NOT_FOUND, s->id,
                       "options.attachments[%zu]: no attachment %.60s in this session", i,
                       json_string_value(id));
        return -1;
    }
    if (rc != CGW_OK) {
        response_from_err(resp, &err, s->id);
        return -1;
    }
    if (json_array_append_new(list, attachment_json(&w->app->cfg, &a)) < 0) {
        response_error(resp, CODE_INTERNAL_ERROR, s->id, "internal error");
        return -1;
    }
    return 0;
}

void attachments_undo(struct worker *w, const struct store_session *s, int64_t user_id,
                      json_t *created)
{
    struct store *st;
    struct cgw_error err;
    size_t i;
    json_t *id;

    if (json_array_size(created) == 0 || worker_store(w, &st, &err) != CGW_OK)
        return;
    json_array_foreach(created, i, id)
    {
        if (store_attachment_delete(st, json_string_value(id), s->id, user_id, &err) != CGW_OK)
            log_warn("session %s: attachment %s of a refused send stays: %s", s->id,
                     json_string_value(id), err.text);
    }
}

int attachments_for_send(struct worker *w, const struct request *req, const struct store_session *s,
                         json_t *options, json_t **list, json_t **created, struct response *resp)
{
    const struct config *cfg = &w->app->cfg;
    json_t *ids = json_object_get(options, "attachments");
    json_t *imgs = json_object_get(options, "images");
    enum provider_id p;
    size_t i, n;
    json_t *v;

    *list = *created = NULL;
    if (json_is_null(ids))
        ids = NULL;
    if (json_is_null(imgs))
        imgs = NULL;
    if ((ids && !json_is_array(ids)) || (imgs && !json_is_array(imgs))) {
        response_error(resp, CODE_INVALID_REQUEST, s->id, "options.%s must be an array",
                       ids && !json_is_array(ids) ? "attachments" : "images");
        return -1;
    }
    n = json_array_size(ids) + json_array_size(imgs);
    if (n == 0)
        return 0;
    if (provider_from_name(s->provider, &p) < 0 || !provider_caps[p].attach) {
        response_error(resp, CODE_ATTACHMENTS_UNSUPPORTED, s->id, "the %s CLI takes no attachments",
                       s->provider);
        return -1;
    }
    if ((int64_t)n > cfg->max_attachments) {
        response_error(resp, CODE_ATTACHMENT_LIMIT, s->id,
                       "a send may carry at most %lld attachments",
                       (long long)cfg->max_attachments);
        return -1;
    }
    if (!(*list = json_array()) || !(*created = json_array())) {
        response_error(resp, CODE_INTERNAL_ERROR, s->id, "internal error");
        goto fail;
    }
    json_array_foreach(ids, i, v)
    {
        if (send_attachment_id(w, req, s, v, i, *list, resp) < 0)
            goto fail;
    }
    json_array_foreach(imgs, i, v)
    {
        if (send_image(w, req, s, v, i, *list, *created, resp) < 0)
            goto fail;
    }
    return 0;
fail:
    attachments_undo(w, s, req->user.id, *created);
    json_decref(*list);
    json_decref(*created);
    *list = *created = NULL;
    return -1;
}
