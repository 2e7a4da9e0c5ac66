/* h_metrics.c: GET /metrics (Prometheus text) and GET /openapi.yaml (the API's
 * description, doc/openapi.yaml compiled in). Neither takes a user token: /metrics is
 * guarded by metrics.allow and metrics.token, the description is public. */
#include <string.h>

#include "core/auth.h"
#include "core/auth_cache.h"
#include "core/embedded.h"
#include "core/log.h"
#include "fcgi/handlers.h"
#include "fcgi/metrics.h"
#include "fcgi/poller.h"

void h_metrics(struct worker *w, struct request *req, const struct query *q, struct response *resp)
{
    const struct config *cfg = &w->app->cfg;
    struct metrics_gauges g = {.runs_running = -1};
    struct cgw_error err;
    struct bus *bus;

    (void)q;
    /* Refused like a path that does not exist: a scanner learns nothing. */
    if (!metrics_client_allowed(cfg->metrics_allow, req->remote_addr)) {
        response_error(resp, CODE_NOT_FOUND, NULL, "no route for %s", req->path);
        return;
    }
    if (cfg->metrics_token[0]) {
        const char *bearer = http_bearer(req);
        size_t n = strlen(cfg->metrics_token);
        if (!bearer || strlen(bearer) != n || !auth_equal_ct(bearer, cfg->metrics_token, n)) {
            response_error(resp, CODE_UNAUTHORIZED, NULL, "/metrics wants metrics.token");
            return;
        }
    }
    if (w->app->poller) {
        struct poller *p = w->app->poller;
        g.polls_held = (int64_t)poller_held(p);
        g.polls_total = poller_total(p);
        poller_cache_stats(poller_cache(p), &g.cache_hits[METRICS_CACHE_SESSION],
                           &g.cache_misses[METRICS_CACHE_SESSION]);
        auth_cache_stats(poller_auth_cache(p), &g.cache_hits[METRICS_CACHE_TOKEN],
                         &g.cache_misses[METRICS_CACHE_TOKEN]);
        owner_cache_stats(poller_owner_cache(p), &g.cache_hits[METRICS_CACHE_OWNER],
                          &g.cache_misses[METRICS_CACHE_OWNER]);
    }
    if (worker_bus(w, &bus, &err) != CGW_OK ||
        bus_runs_running_count(bus, &g.runs_running, &err) != CGW_OK) {
        log_warn("metrics: %s", err.text);
        g.runs_running = -1;
    }
    if (!w->app->metrics) {
        response_error(resp, CODE_NOT_FOUND, NULL, "no route for %s", req->path);
        return;
    }
    response_text(resp, 200, "text/plain; version=0.0.4; charset=utf-8",
                  metrics_render(w->app->metrics, &g));
}

void h_openapi(struct worker *w, struct request *req, const struct query *q, struct response *resp)
{
    (void)w, (void)req, (void)q;
    response_text(resp, 200, "application/yaml; charset=utf-8", strdup(cgw_openapi[0].text));
}
