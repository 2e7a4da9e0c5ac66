/* h_auth.c: POST /auth/ticket: a short-lived subscribe ticket for clients that cannot set
 * an Authorization header on GET /chat/subscribe (the token never goes in a URL). */
#include <string.h>

#include "core/auth.h"
#include "core/log.h"
#include "core/util.h"
#include "fcgi/handlers.h"

void h_auth_ticket(struct worker *w, struct request *req, const struct query *q,
                   struct response *resp)
{
    static const char *const fields[] = {NULL};
    char ticket[AUTH_TICKET_LEN + 1], pub[AUTH_PUBLIC_LEN + 1] = "";
    char expires[CGW_ISO_TIME_LEN + 1];
    struct cgw_error err;
    struct bus *bus;
    int64_t expires_ms = 0;

    json_t *body = http_json_body(req, &w->app->cfg, true, resp);
    int bad = !body || http_only_fields(body, fields, resp) < 0;
    json_decref(body);
    if (bad)
        return;
    /* The ticket dies with the token it came from (none for REMOTE_USER). */
    const char *token = http_bearer(req);
    if (token && auth_token_public_id(token, pub) < 0)
        pub[0] = '\0';
    enum cgw_err rc = worker_bus(w, &bus, &err);
    if (rc == CGW_OK)
        rc = auth_ticket_create(bus, &req->user, pub, w->app->cfg.auth_ticket_ttl_s, ticket,
                                &expires_ms, &err);
    if (rc != CGW_OK) {
        response_from_err(resp, &err, NULL);
        return;
    }
    log_debug("subscribe ticket for %s", req->user.name);
    response_json(resp, 200,
                  json_pack("{s:s, s:s, s:I}", "ticket", ticket, "expiresAt",
                            cgw_time_iso(expires_ms, expires), "ttlS",
                            (json_int_t)w->app->cfg.auth_ticket_ttl_s));
    explicit_bzero(ticket, sizeof ticket);
}
