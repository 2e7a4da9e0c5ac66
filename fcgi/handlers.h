/* handlers.h: one function per endpoint; each file holds one resource. */
#ifndef CGW_FCGI_HANDLERS_H
#define CGW_FCGI_HANDLERS_H

#include "fcgi/router.h"

/* h_health.c */
void h_health(struct worker *w, struct request *req, const struct query *q, struct response *resp);
void h_providers(struct worker *w, struct request *req, const struct query *q,
                 struct response *resp);

/* h_sessions.c */
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

#endif
