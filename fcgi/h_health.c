/* h_health.c: GET /health and GET /providers. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "core/log.h"
#include "fcgi/handlers.h"
#include "fcgi/poller.h"

void h_health(struct worker *w, struct request *req, const struct query *q, struct response *resp)
{
    struct cgw_error err;
    struct store *st;
    struct bus *bus;
    int version = 0;
    bool redis_ok = worker_bus(w, &bus, &err) == CGW_OK && bus_ping(bus, &err) == CGW_OK;
    if (!redis_ok)
        log_warn("health: %s", err.text);
    bool db_ok = worker_store(w, &st, &err) == CGW_OK &&
                 store_schema_version(st, &version, &err) == CGW_OK &&
                 version == store_schema_latest();
    if (!db_ok)
        log_warn("health: database: %s", err.text[0] ? err.text : "schema not migrated");
    /* This process's long-polls: tests wait on "total" to know a subscribe is held. */
    json_int_t held = w->app->poller ? (json_int_t)poller_held(w->app->poller) : 0;
    json_int_t total = w->app->poller ? (json_int_t)poller_total(w->app->poller) : 0;
    response_json(resp, redis_ok && db_ok ? 200 : 503,
                  json_pack("{s:s, s:s, s:s, s:s, s:{s:I, s:I}}", "status",
                            redis_ok && db_ok ? "ok" : "degraded", "redis",
                            redis_ok ? "ok" : "down", "database", db_ok ? "ok" : "down", "version",
                            PACKAGE_VERSION, "polls", "held", held, "total", total));
}

void h_providers(struct worker *w, struct request *req, const struct query *q,
                 struct response *resp)
{
    json_t *list = json_array();
    for (int p = 0; list && p < PROVIDER__COUNT; p++) {
        char found[4096];
        bool ok = provider_find_bin(w->app->cfg.provider_bin[p], getenv("PATH"), found,
                                    sizeof found) == 0;
        if (json_array_append_new(list, provider_caps_json((enum provider_id)p, ok)) < 0) {
            json_decref(list);
            list = NULL;
        }
    }
    response_json(resp, 200, list);
}
