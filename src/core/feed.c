/* feed.c: building and publishing session_upserted frames. */
#include "core/feed.h"

#include <stdlib.h>
#include <string.h>

#include "core/event.h"
#include "core/util.h"

json_t *feed_session_json(const struct store_session *s, const struct bus_run *run)
{
    char created[CGW_ISO_TIME_LEN + 1], updated[CGW_ISO_TIME_LEN + 1];
    int64_t last_seq = s->last_seq;
    if (run && run->last_seq > last_seq)
        last_seq = run->last_seq;
    return json_pack("{s:s, s:s, s:s, s:s, s:b, s:s, s:s, s:b, s:I}", "id", s->id, "provider",
                     s->provider, "projectPath", s->project_path ? s->project_path : "", "name",
                     s->name ? s->name : "", "archived", s->archived, "createdAt",
                     cgw_time_iso(s->created_ms, created), "updatedAt",
                     cgw_time_iso(s->updated_ms, updated), "isProcessing",
                     run && run->status == RUN_RUNNING, "lastSeq", (json_int_t)last_seq);
}

static enum cgw_err publish_frame(struct bus *bus, int64_t owner, json_t *frame,
                                  struct cgw_error *err)
{
    char *text = frame ? event_json_dumps(frame, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(frame);
    if (!text)
        return cgw_error_set(err, CGW_ERR_NOMEM, "out of memory");
    enum cgw_err rc = bus_feed_publish(bus, owner, text, NULL, err);
    free(text);
    return rc;
}

enum cgw_err feed_publish_session(struct store *st, struct bus *bus, const char *session_id,
                                  struct cgw_error *err)
{
    struct store_session s;
    struct bus_run run;
    char now[CGW_ISO_TIME_LEN + 1];
    enum cgw_err rc = store_session_get(st, session_id, 0, &s, err);
    if (rc != CGW_OK)
        return rc;
    bool have_run = false;
    rc = bus_run_get(bus, session_id, &run, NULL, err);
    if (rc == CGW_OK)
        have_run = true;
    else if (rc != CGW_ERR_NOT_FOUND)
        goto out;
    json_t *frame = json_pack("{s:s, s:s, s:o, s:s}", "kind", "session_upserted", "sessionId", s.id,
                              "session", feed_session_json(&s, have_run ? &run : NULL), "timestamp",
                              cgw_time_iso(cgw_now_ms(), now));
    rc = publish_frame(bus, s.owner, frame, err);
out:
    store_session_clear(&s);
    return rc;
}

enum cgw_err feed_publish_deleted(struct bus *bus, int64_t owner, const char *session_id,
                                  struct cgw_error *err)
{
    char now[CGW_ISO_TIME_LEN + 1];
    json_t *frame =
        json_pack("{s:s, s:s, s:b, s:s}", "kind", "session_upserted", "sessionId", session_id,
                  "deleted", 1, "timestamp", cgw_time_iso(cgw_now_ms(), now));
    return publish_frame(bus, owner, frame, err);
}
