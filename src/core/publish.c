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

static const enum bus_publish_kind publish_kinds[] = {
    [PUBLISH_EVENT] = BUS_PUBLISH_EVENTS,
    [PUBLISH_COMPLETE] = BUS_PUBLISH_COMPLETE,
    [PUBLISH_REAP] = BUS_PUBLISH_REAP,
};

static enum cgw_err publish_one(struct store *st, struct bus *bus, const char *session_id,
                                const char *run_id, const char *id, const char *json,
                                enum publish_mode mode, int64_t *seq, struct cgw_error *err)
{
    /* The floor is the store's high-water mark: a seq that history holds (and a client
     * may have seen) is never handed out again, even after Redis lost its last writes.
     * Unreadable, the bus's own counter is all there is (the write to the store after
     * the publish fails the same way and says so). */
    int64_t floor = 0;
    struct cgw_error ignored;
    if (store_session_last_seq(st, session_id, &floor, &ignored) != CGW_OK)
        floor = 0;
    struct bus_publish p = {session_id, run_id, 1, &id, &json, publish_kinds[mode], floor};
    return bus_publish(bus, &p, seq, err);
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
    enum cgw_err rc = publish_one(st, bus, session_id, run_id, id, json, mode, &got, err);
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
