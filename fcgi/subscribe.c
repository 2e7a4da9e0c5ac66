/* subscribe.c: placeholder until the long-poll lands: answers 404 like an unknown route. */
#include "fcgi/handlers.h"

void h_subscribe(struct worker *w, struct request *req, const struct query *q,
                 struct response *resp)
{
    response_error(resp, CODE_NOT_FOUND, NULL, "subscribe is not built yet");
}

void subscribe_from_json(struct worker *w, struct request *req, json_t *body, struct response *resp)
{
    response_error(resp, CODE_NOT_FOUND, NULL, "subscribe is not built yet");
}
