/* h_chat.c: placeholder until send/abort/permission land. */
#include "fcgi/handlers.h"

void h_chat_send(struct worker *w, struct request *req, const struct query *q,
                 struct response *resp)
{
    response_error(resp, CODE_NOT_FOUND, NULL, "not built yet");
}

void h_chat_abort(struct worker *w, struct request *req, const struct query *q,
                  struct response *resp)
{
    response_error(resp, CODE_NOT_FOUND, NULL, "not built yet");
}

void h_chat_permission(struct worker *w, struct request *req, const struct query *q,
                       struct response *resp)
{
    response_error(resp, CODE_NOT_FOUND, NULL, "not built yet");
}

void h_chat_envelope(struct worker *w, struct request *req, const struct query *q,
                     struct response *resp)
{
    response_error(resp, CODE_NOT_FOUND, NULL, "not built yet");
}
