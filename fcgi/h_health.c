/* h_health.c: GET /health and GET /providers. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "core/log.h"
#include "fcgi/handlers.h"

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
    response_json(resp, redis_ok && db_ok ? 200 : 503,
                  json_pack("{s:s, s:s, s:s, s:s}", "status", redis_ok && db_ok ? "ok" : "degraded",
                            "redis", redis_ok ? "ok" : "down", "database", db_ok ? "ok" : "down",
                            "version", PACKAGE_VERSION));
}

/* True when the configured binary is an executable file (a bare name is searched in PATH). */
static bool binary_found(const char *bin)
{
    if (strchr(bin, '/'))
        return access(bin, X_OK) == 0;
    const char *path = getenv("PATH");
    if (!path)
        path = "/usr/local/bin:/usr/bin:/bin";
    while (*path) {
        size_t n = strcspn(path, ":");
        char full[4096];
        if (n > 0 && snprintf(full, sizeof full, "%.*s/%s", (int)n, path, bin) < (int)sizeof full &&
            access(full, X_OK) == 0)
            return true;
        path += n;
        if (*path == ':')
            path++;
    }
    return false;
}

/* What each provider can do through chatgw, and the permission modes a send may ask
 * for (h_chat.c checks options.permissionMode against the same table). The runner has
 * adapters for every provider but Cursor so far; Cursor is listed but not available. */
const struct provider_caps provider_caps[PROVIDER__COUNT] = {
    [PROVIDER_CLAUDE] = {.modes = {"default", "acceptEdits", "plan", "bypassPermissions", "dontAsk",
                                   "auto", NULL},
                         .adapter = true,
                         .permission_requests = true,
                         .abort = true,
                         .resume = true},
    [PROVIDER_CODEX] = {.modes = {"default", "acceptEdits", "plan", "bypassPermissions", NULL},
                        .adapter = true,
                        .abort = true,
                        .resume = true},
    [PROVIDER_CURSOR] = {.modes = {"default", "bypassPermissions", NULL}},
    [PROVIDER_GEMINI] = {.modes = {"default", "acceptEdits", "plan", "bypassPermissions", NULL},
                         .adapter = true,
                         .abort = true,
                         .resume = true},
    [PROVIDER_OPENCODE] = {.modes = {"default", "bypassPermissions", NULL},
                           .adapter = true,
                           .abort = true,
                           .resume = true},
};

void h_providers(struct worker *w, struct request *req, const struct query *q,
                 struct response *resp)
{
    json_t *list = json_array();
    for (int p = 0; list && p < PROVIDER__COUNT; p++) {
        json_t *modes = json_array();
        for (int m = 0; modes && provider_caps[p].modes[m]; m++)
            json_array_append_new(modes, json_string(provider_caps[p].modes[m]));
        json_array_append_new(
            list,
            json_pack("{s:s, s:b, s:o, s:b, s:b, s:b}", "provider", provider_name(p), "available",
                      provider_caps[p].adapter && binary_found(w->app->cfg.provider_bin[p]),
                      "permissionModes", modes, "supportsPermissionRequests",
                      provider_caps[p].permission_requests, "supportsAbort", provider_caps[p].abort,
                      "supportsResume", provider_caps[p].resume));
    }
    response_json(resp, 200, list);
}
