/* publish.c: publish one event of a run, then persist it with its seq. */
#include "core/publish.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/event.h"

char *publish_with_seq(const char *json, int64_t seq)
{
    size_t len = strlen(json);
    size_t size = len + 32; /* ,"seq": and 20 digits */
    char *out;
    if (len < 2 || json[len - 1] != '}' || !(out = malloc(size)))
        return NULL;
    snprintf(out, size, "%.*s,\"seq\":%" PRId64 "}", (int)(len - 1), json, seq);
    return out;
}

static enum cgw_err publish_one(struct bus *bus, const char *session_id, const char *run_id,
                                const char *id, const char *json, enum publish_mode mode,
                                int64_t *seq, struct cgw_error *err)
{
    if (mode == PUBLISH_EVENT)
        return bus_event_publish(bus, session_id, run_id, id, json, seq, err);
    return bus_run_complete(bus, session_id, run_id, id, json, mode == PUBLISH_REAP, seq, err);
}

enum cgw_err publish_persist(struct store *st, struct bus *bus, const char *session_id,
                             const char *run_id, const json_t *ev, enum publish_mode mode,
                             int64_t *seq, struct cgw_error *err)
{
    const char *kind = json_string_value(json_object_get(ev, "kind"));
    const char *id = event_id(ev);
    enum event_kind k;
    int64_t got = 0;

    if (!kind || !id || event_kind_from_name(kind, &k) < 0)
        return cgw_error_set(err, CGW_ERR_INVALID, "an event without a known kind or an id");
    char *json = event_encode(ev);
    if (!json)
        return cgw_error_set(err, CGW_ERR_NOMEM, "out of memory encoding an event");
    enum cgw_err rc = publish_one(bus, session_id, run_id, id, json, mode, &got, err);
    if (rc == CGW_OK && seq)
        *seq = got;
    if (rc == CGW_OK && event_kind_is_persisted(k)) {
        /* The stream keeps the event for stream.ttl_s only; history needs it in SQLite,
         * as the bus stored it: with its seq. */
        char *stored = publish_with_seq(json, got);
        rc = stored ? store_message_add(st, session_id, got, kind, stored, err)
                    : cgw_error_set(err, CGW_ERR_NOMEM, "out of memory");
        free(stored);
    }
    free(json);
    return rc;
}
