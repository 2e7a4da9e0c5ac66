/* handlers.h: one function per endpoint; each file holds one resource. */
#ifndef CGW_FCGI_HANDLERS_H
#define CGW_FCGI_HANDLERS_H

#include "core/providers.h"
#include "fcgi/http.h"
#include "fcgi/worker.h"

/* h_health.c (the provider table is core/providers.h) */

void h_health(struct worker *w, struct request *req, const struct query *q, struct response *resp);
void h_providers(struct worker *w, struct request *req, const struct query *q,
                 struct response *resp);

/* h_sessions.c */

/* Loads the caller's session id into *s (free with store_session_clear); a malformed id
 * or another user's session is the same 404 SESSION_NOT_FOUND as a missing one. Returns
 * 0, or -1 with resp set. */
int session_load_owned(struct worker *w, const struct request *req, const char *id,
                       struct store_session *s, struct response *resp);
void h_session_create(struct worker *w, struct request *req, const struct query *q,
                      struct response *resp);
void h_session_list(struct worker *w, struct request *req, const struct query *q,
                    struct response *resp);
void h_session_get(struct worker *w, struct request *req, const struct query *q,
                   struct response *resp);
void h_session_patch(struct worker *w, struct request *req, const struct query *q,
                     struct response *resp);
void h_session_delete(struct worker *w, struct request *req, const struct query *q,
                      struct response *resp);
void h_session_messages(struct worker *w, struct request *req, const struct query *q,
                        struct response *resp);

/* h_chat.c */
void h_chat_send(struct worker *w, struct request *req, const struct query *q,
                 struct response *resp);
void h_chat_abort(struct worker *w, struct request *req, const struct query *q,
                  struct response *resp);
void h_chat_permission(struct worker *w, struct request *req, const struct query *q,
                       struct response *resp);
void h_chat_envelope(struct worker *w, struct request *req, const struct query *q,
                     struct response *resp);

/* h_attachments.c: files in a session. */
void h_attachment_upload(struct worker *w, struct request *req, const struct query *q,
                         struct response *resp);
void h_attachment_list(struct worker *w, struct request *req, const struct query *q,
                       struct response *resp);
void h_attachment_get(struct worker *w, struct request *req, const struct query *q,
                      struct response *resp);
void h_attachment_delete(struct worker *w, struct request *req, const struct query *q,
                         struct response *resp);
/* The attachments of a send of session s (options.attachments: ids of the caller's
 * attachments of s; options.images: data URLs, stored here as attachments of s), checked
 * against the provider (400 ATTACHMENTS_UNSUPPORTED), the limits and ownership. *list is
 * a new array of {id, name, mimeType, size, url, createdAt} and *created a new array of
 * the ids stored from images (both NULL when the send has none). Returns 0, or -1 with
 * resp set and nothing stored. */
int attachments_for_send(struct worker *w, const struct request *req, const struct store_session *s,
                         json_t *options, json_t **list, json_t **created, struct response *resp);
/* Deletes the attachments stored for a send that was then refused (created: their ids). */
void attachments_undo(struct worker *w, const struct store_session *s, int64_t user_id,
                      json_t *created);
/* h_rules.c: the caller's remembered permission rules. */

/* What a permission answer (body, borrowed) asks to remember for request rid of session
 * sid: "remember" ("exact" | "prefix") derives the rule from the pending request's tool
 * and input; "rememberEntry" is accepted only when it covers exactly that request
 * (rules_remember_check). *rule is a new string (free()), or NULL when nothing is to be
 * remembered. Returns 0, or -1 with resp set (400 REMEMBER_ENTRY_INVALID, 409 when the
 * request is no longer pending, 503). */
int rules_remember_prepare(struct bus *bus, const char *sid, const char *rid, json_t *body,
                           char **rule, struct response *resp);
void h_rules_list(struct worker *w, struct request *req, const struct query *q,
                  struct response *resp);
void h_rules_delete(struct worker *w, struct request *req, const struct query *q,
                    struct response *resp);

/* h_auth.c: POST /auth/ticket (a short-lived ticket for GET /chat/subscribe). */
void h_auth_ticket(struct worker *w, struct request *req, const struct query *q,
                   struct response *resp);

/* h_metrics.c: GET /metrics (metrics.allow, metrics.token: no user token) and GET
 * /openapi.yaml (doc/openapi.yaml, compiled in). */
void h_metrics(struct worker *w, struct request *req, const struct query *q, struct response *resp);
void h_openapi(struct worker *w, struct request *req, const struct query *q, struct response *resp);

/* h_subscribe.c: GET (query form) and POST (body form) /chat/subscribe. */
void h_subscribe(struct worker *w, struct request *req, const struct query *q,
                 struct response *resp);
/* h_subscribe.c: GET /chat/stream, the same query as a Server-Sent Events stream held
 * by the poller; the Last-Event-ID header resumes its cursors. */
void h_stream(struct worker *w, struct request *req, const struct query *q, struct response *resp);
/* The body form, also used by the POST /chat envelope; body is borrowed. */
void subscribe_from_json(struct worker *w, struct request *req, json_t *body,
                         struct response *resp);

#endif
