/* feed.c: building and publishing session_upserted frames. */
#include "core/feed.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/event.h"
#include "core/log.h"
#include "core/util.h"

json_t *feed_session_json(const struct store_session *s, const struct bus_run *run)
{
    char created[CGW_ISO_TIME_LEN + 1], updated[CGW_ISO_TIME_LEN + 1];
    int64_t last_seq = s->last_seq;
    if (run && run->last_seq > last_seq)
        last_seq = run->last_seq;
    return json_pack("{s:s, s:s, s:s, s:s?, s:s, s:b, s:s, s:s, s:b, s:I}", "id", s->id, "provider",
                     s->provider, "projectPath", s->project_path ? s->project_path : "", "host",
                     s->host, "name", s->name ? s->name : "", "archived", s->archived, "createdAt",
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

/* ---- the backlog of lost frames ------------------------------------------------------ */

struct feed_lost {
    int64_t owner;
    char id[CGW_UUID_LEN + 1];
    bool deleted;
};

struct feed_backlog {
    pthread_mutex_t lock;
    struct feed_lost items[FEED_BACKLOG_MAX]; /* a ring: head, n */
    size_t head, n;
};

struct feed_backlog *feed_backlog_new(void)
{
    struct feed_backlog *fb = calloc(1, sizeof *fb);
    if (fb && pthread_mutex_init(&fb->lock, NULL) != 0) {
        free(fb);
        fb = NULL;
    }
    return fb;
}

void feed_backlog_free(struct feed_backlog *fb)
{
    if (!fb)
        return;
    pthread_mutex_destroy(&fb->lock);
    free(fb);
}

void feed_backlog_add(struct feed_backlog *fb, int64_t owner, const char *session_id, bool deleted)
{
    if (!fb || strlen(session_id) > CGW_UUID_LEN)
        return;
    pthread_mutex_lock(&fb->lock);
    size_t i;
    for (i = 0; i < fb->n; i++) {
        struct feed_lost *l = &fb->items[(fb->head + i) % FEED_BACKLOG_MAX];
        if (strcmp(l->id, session_id) == 0) {
            l->deleted = l->deleted || deleted; /* the later state wins when published */
            break;
        }
    }
    if (i == fb->n) {
        if (fb->n == FEED_BACKLOG_MAX) {
            log_warn("session feed: %s's lost frame dropped (backlog full)",
                     fb->items[fb->head].id);
            fb->head = (fb->head + 1) % FEED_BACKLOG_MAX;
            fb->n--;
        }
        struct feed_lost *l = &fb->items[(fb->head + fb->n) % FEED_BACKLOG_MAX];
        l->owner = owner;
        memcpy(l->id, session_id, strlen(session_id) + 1);
        l->deleted = deleted;
        fb->n++;
    }
    pthread_mutex_unlock(&fb->lock);
}

/* Takes the oldest entry out, or returns false when there is none. */
static bool backlog_take(struct feed_backlog *fb, struct feed_lost *out)
{
    pthread_mutex_lock(&fb->lock);
    bool any = fb->n > 0;
    if (any) {
        *out = fb->items[fb->head];
        fb->head = (fb->head + 1) % FEED_BACKLOG_MAX;
        fb->n--;
    }
    pthread_mutex_unlock(&fb->lock);
    return any;
}

enum cgw_err feed_backlog_flush(struct feed_backlog *fb, struct store *st, struct bus *bus,
                                size_t *published, struct cgw_error *err)
{
    struct feed_lost l;
    size_t done = 0;
    enum cgw_err rc = CGW_OK;

    if (published)
        *published = 0;
    if (!fb)
        return CGW_OK;
    pthread_mutex_lock(&fb->lock);
    size_t todo = fb->n;
    pthread_mutex_unlock(&fb->lock);
    for (size_t i = 0; i < todo && backlog_take(fb, &l); i++) {
        rc = l.deleted ? feed_publish_deleted(bus, l.owner, l.id, err)
                       : feed_publish_session(st, bus, l.id, err);
        if (rc == CGW_ERR_NOT_FOUND) /* deleted since: say so */
            rc = feed_publish_deleted(bus, l.owner, l.id, err);
        if (rc != CGW_OK) {
            feed_backlog_add(fb, l.owner, l.id, l.deleted);
            break;
        }
        done++;
    }
    if (published)
        *published = done;
    return rc;
}
