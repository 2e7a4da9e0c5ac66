/* worker.c: a thread's lazily opened SQLite and Redis connections. */
#include "fcgi/worker.h"

#include <stddef.h>

#include "fcgi/metrics.h"

enum cgw_err worker_store(struct worker *w, struct store **out, struct cgw_error *err)
{
    if (!w->store) {
        enum cgw_err rc = store_open(config_db_target(&w->app->cfg), false,
                                     w->app->cfg.db_busy_timeout_ms, &w->store, err);
        if (rc != CGW_OK) {
            metrics_backend_error(w->app->metrics, METRICS_STORE);
            return rc == CGW_ERR_NOMEM ? rc : CGW_ERR_BACKEND;
        }
    }
    *out = w->store;
    return CGW_OK;
}

enum cgw_err worker_bus(struct worker *w, struct bus **out, struct cgw_error *err)
{
    if (!w->bus) {
        enum cgw_err rc = bus_open(&w->app->bus_cfg, true, &w->bus, err);
        if (rc != CGW_OK) {
            metrics_backend_error(w->app->metrics, METRICS_REDIS);
            return rc;
        }
    }
    *out = w->bus;
    return CGW_OK;
}

void worker_close(struct worker *w)
{
    store_close(w->store);
    bus_close(w->bus);
    w->store = NULL;
    w->bus = NULL;
}
