/* bus.h: the Redis bus (hiredis 0.14): runs, event streams, control lists, permissions.
 *
 * Key layout (DESIGN §6); every key of session S carries the hash tag {S}, so each
 * Lua script touches one slot:
 *   cgw:{S}:run      hash   runId, status (running|completed), provider, owner,
 *                           request (JSON), runnerHost, runnerPid, cliPgid, startedMs,
 *                           restoredMs (written again by its runner after a data loss),
 *                           completedMs, lastEventId, lastEventSeq (idempotency of
 *                           publish/complete), claimSeq (the claim's answer, for a
 *                           repeated claim), permSeq (arrival counter of permission
 *                           requests); expires stream.ttl_s after complete
 *   cgw:{S}:seq      string the session's seq counter (last assigned seq); never expires,
 *                           so seq cannot go backwards while Redis keeps its data
 *   cgw:{S}:events   stream entry id "<seq>-0", one field "e" = event JSON with seq;
 *                           MAXLEN ~ stream.maxlen; expires stream.ttl_s after complete
 *   cgw:{S}:ctl      list   control messages for the runner (abort, permission decisions)
 *   cgw:{S}:pending  hash   requestId -> permission_request JSON (open requests)
 *   cgw:{S}:pendorder zset  requestId scored by permSeq: the open requests in arrival order
 *   cgw:{S}:resolved hash   requestId -> "allow"|"deny"|"cancelled" (answered requests);
 *                           expires stream.ttl_s after complete
 *   cgw:{S}:lease    string runId, with a TTL the runner refreshes
 *   cgw:perm:{R}     string session id of permission request R (7 days TTL)
 *   cgw:ticket:{H}   string "<user id>:<token public id>" of the subscribe ticket whose
 *                           SHA-256 is H (hex), with a TTL of auth.ticket_ttl_s
 *   cgw:running      set    session ids with a running run (for the reaper; outside
 *                           the scripts, so the scripts stay single-slot)
 *   cgw:{u:U}:running set   session ids of user U's runs, added by the claim, removed
 *                           by the complete (or reap); members whose run hash expired
 *                           are pruned by the claim when the set reaches the limit
 *                           (a member counts only while its run hash says running)
 *   channel cgw:notify      PUBLISHed by publish/complete with the session id;
 *                           by the feed script with "u:<user id>"
 *   cgw:{u:U}:feed    stream the session feed of user U (session_upserted frames,
 *                           entry id "<feedSeq>-0"), cgw:{u:U}:feedseq its counter
 *
 * Entry points: bus_open / bus_close; run lifecycle bus_run_claim -> bus_event_publish*
 * -> bus_run_complete (exactly once), bus_lease_refresh while running; readers use
 * bus_events_read; control bus_ctl_push / bus_ctl_pop; permissions bus_perm_*.
 *
 * Slots: every script touches the keys of one session (one hash tag), except the
 * claim, which also counts the owner's runs: it touches cgw:{u:U}:running and, when
 * that set is at the limit, the run hashes of its members, and the complete, which
 * removes the session from that set; all declared as KEYS. These are the cross-slot
 * scripts: fine on one Redis or a Sentinel primary (DESIGN §12);
 * a Redis Cluster would need the limit counted apart from the claim.
 *
 * Atomicity: claim, publish, complete, lease refresh and permission resolution are
 * Lua scripts loaded once (SCRIPT LOAD) and called by SHA (EVALSHA), reloaded after
 * NOSCRIPT. publish and complete are idempotent by event id, so a call retried after
 * a lost reply never publishes twice.
 *
 * Connections: one struct bus is one Redis connection, used by one thread at a time.
 * Every command has a timeout (redis.timeout_ms). After an I/O error the connection
 * is dropped and re-made on the next call (a command is retried once on a fresh
 * connection when that is safe). A Redis that cannot be reached, or that refuses
 * to serve (LOADING, bad AUTH), is CGW_ERR_BACKEND. SIGPIPE from a dead peer is
 * kept away from the process by the module itself (a signal mask around each command),
 * unless the program said with bus_sigpipe_ignored() that it ignores SIGPIPE for its
 * whole life. No redisReply escapes this module.
 *
 * Ids: session ids (at most 36 characters), run ids, event ids and permission
 * request ids are made of [A-Za-z0-9_.:-]; anything else is CGW_ERR_INVALID (they
 * become parts of keys, and braces would move the hash tag).
 */
#ifndef CGW_BUS_H
#define CGW_BUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/util.h"

struct bus;

struct bus_config {
    const char *address;   /* "unix:/path", "/path" (unix socket) or "host:port" */
    const char *password;  /* NULL or "" = no AUTH */
    int64_t db;            /* SELECT db when > 0 */
    int64_t timeout_ms;    /* connect and per-command timeout */
    int64_t stream_maxlen; /* approximate MAXLEN of each session's stream */
    int64_t stream_ttl_s;  /* stream/run expiry after complete */
    /* Sentinel (bus_sentinel.h): when sentinels is not NULL or "", every connection
     * asks them for master_name's primary and address is not used. */
    const char *sentinels;         /* "host:port,host:port,..." */
    const char *master_name;       /* NULL or "" = "chatgw" */
    const char *sentinel_password; /* NULL or "" = no AUTH to the Sentinels */
};

struct config;

/* Fills out from the redis.* and stream.* settings of cfg (strings borrowed from cfg):
 * the one place the programs turn their configuration into a bus_config. */
void bus_config_from(const struct config *cfg, struct bus_config *out);

enum run_status { RUN_NONE = 0, RUN_RUNNING, RUN_COMPLETED };

/* "none", "running", "completed". */
const char *run_status_name(enum run_status s);

struct bus_run {
    char run_id[CGW_ID_MAX];
    enum run_status status;
    char provider[16];
    int64_t owner;
    char runner_host[64];
    int64_t runner_pid;
    int64_t cli_pgid; /* the CLI's process group (its pid), 0 before it started */
    int64_t started_ms;
    int64_t completed_ms;
    int64_t last_seq; /* the session's seq counter */
    bool lease_alive; /* the lease key exists (meaningful while running) */
};

struct bus_claim {
    const char *session_id;
    const char *run_id; /* "run_<uuid>" chosen by the caller */
    const char *provider;
    int64_t owner;
    const char *request_json; /* the run request the runner loads (prompt, options) */
    int64_t hwm_seq;          /* SQLite high-water mark of the session */
    int64_t lease_ms;         /* initial lease */
    int64_t max_running;      /* owner's limit of running runs (limits.max_runs_per_user);
                                 0 = no limit */
};

struct bus_event {
    int64_t seq;
    char *json; /* the event JSON with its seq, NUL-terminated */
    size_t len;
};

struct bus_read {
    int64_t last_seq;  /* the session's seq counter at the time of the read */
    int64_t first_seq; /* oldest seq still in the stream, 0 if the stream is empty */
    bool truncated;    /* events after after_seq were trimmed away (a hole) */
    bool more;         /* the answer was cut at max_count / max_bytes */
    enum run_status status;
    char run_id[CGW_ID_MAX];
    struct bus_event *events; /* n events in seq order */
    size_t n;
};

/* Connects (AUTH, SELECT, SCRIPT LOAD). cfg's strings are copied. A Redis that is
 * down is not an error here when lazy is true: the first command connects. */
/* The program has set SIGPIPE to SIG_IGN and keeps it so: the bus skips the signal
 * mask it otherwise puts around every command (four system calls each). Call before
 * the first command, from the main thread. */
void bus_sigpipe_ignored(void);

enum cgw_err bus_open(const struct bus_config *cfg, bool lazy, struct bus **out,
                      struct cgw_error *err);
void bus_close(struct bus *b);

/* The Redis server the last connection reached ("host:port"), or before any
 * connection redis.address ("sentinel:<master_name>" through Sentinel). Borrowed,
 * valid until the next command on b. */
const char *bus_primary(const struct bus *b);

/* Whether b finds its primary through Sentinel (redis.sentinels is set); every
 * connection then checked that ROLE says master. */
bool bus_via_sentinel(const struct bus *b);

/* PING. CGW_OK or CGW_ERR_BACKEND. */
enum cgw_err bus_ping(struct bus *b, struct cgw_error *err);

/* ---- runs ---------------------------------------------------------------- */

/* Claims the session for a new run, atomically: fails with CGW_ERR_CONFLICT (and
 * running_run_id, when not NULL, receives the running run's id) if a run is
 * running. On success the run hash is replaced, the seq counter is raised to
 * max(counter, last stream id, hwm_seq), the lease set, old control messages and
 * pending permissions dropped, and *last_seq receives the counter (the high-water
 * mark before the run). Claiming again with the same run_id while it runs is OK
 * (same *last_seq, lease renewed); claiming with the id of the run that has just
 * completed is CGW_ERR_STALE (run ids are never reused). The session is added to
 * cgw:running and to the owner's running set. When the owner (c->owner) already has
 * c->max_running (> 0) runs running (this session's included, checked before the
 * CGW_ERR_CONFLICT above, as the send handler always answered), nothing is claimed and the
 * answer is CGW_ERR_LIMIT, with err's text "you have N runs running; the limit is
 * L" (counted and claimed in one script: two sends of one user at the same moment
 * cannot both pass the limit). Runs that completed, were reaped or whose run hash
 * expired do not count. */
enum cgw_err bus_run_claim(struct bus *b, const struct bus_claim *c, int64_t *last_seq,
                           char running_run_id[CGW_ID_MAX], struct cgw_error *err);

/* Records which process runs run_id (after the spawn). CGW_ERR_STALE if run_id is
 * not the running run. */
enum cgw_err bus_run_set_runner(struct bus *b, const char *session_id, const char *run_id,
                                const char *host, int64_t pid, struct cgw_error *err);

/* Records the process group of run_id's CLI (the reaper kills what is left of it when
 * the runner is lost, reap.h). CGW_ERR_STALE if run_id is not the running run. */
enum cgw_err bus_run_set_cli(struct bus *b, const char *session_id, const char *run_id,
                             int64_t pgid, struct cgw_error *err);

/* Reads the session's run. CGW_ERR_NOT_FOUND when there is none. request_json
 * (may be NULL) receives a new string (free()) with the run request. */
enum cgw_err bus_run_get(struct bus *b, const char *session_id, struct bus_run *out,
                         char **request_json, struct cgw_error *err);

/* Publishes one event of run_id: assigns the next seq, adds the event to the
 * stream as id "<seq>-0" with ,"seq":N appended to json (json must be a JSON
 * object text with at least one member and no "seq"), notifies cgw:notify.
 * event_id is the event's "id"; publishing the same event_id again returns the
 * same seq without adding anything. CGW_ERR_STALE if run_id is not the running
 * run (never running, completed, or replaced). *seq may be NULL. */
enum cgw_err bus_event_publish(struct bus *b, const char *session_id, const char *run_id,
                               const char *event_id, const char *json, int64_t *seq,
                               struct cgw_error *err);

/* Publishes n (1..BUS_PUBLISH_BATCH_MAX) events of run_id in one script call, like n
 * bus_event_publish calls in order but atomically (all or none) and with one
 * notification: their seqs are *last_seq - n + 1 .. *last_seq. Publishing the same
 * batch again (the same last event id) returns the same *last_seq and adds nothing,
 * so a retry after a lost reply is safe. CGW_ERR_STALE as bus_event_publish. */
#define BUS_PUBLISH_BATCH_MAX 32
enum cgw_err bus_events_publish(struct bus *b, const char *session_id, const char *run_id, size_t n,
                                const char *const *event_ids, const char *const *jsons,
                                int64_t *last_seq, struct cgw_error *err);

/* Publishes the run's `complete` event like bus_event_publish and marks the run
 * completed in the same script, exactly once: a second complete of the run is
 * CGW_ERR_STALE (the same event_id again returns the first seq). Deletes the
 * lease, the pending permissions (marking them "cancelled") and the control list,
 * and sets the stream's TTL. When only_if_lease_expired is true (the reaper), a
 * run whose lease is still alive is CGW_ERR_CONFLICT and nothing happens. */
enum cgw_err bus_run_complete(struct bus *b, const char *session_id, const char *run_id,
                              const char *event_id, const char *json, bool only_if_lease_expired,
                              int64_t *seq, struct cgw_error *err);

/* What a bus_publish call publishes. */
enum bus_publish_kind {
    BUS_PUBLISH_EVENTS,   /* events of the running run (bus_event_publish/bus_events_publish) */
    BUS_PUBLISH_COMPLETE, /* the run's complete (bus_run_complete) */
    BUS_PUBLISH_REAP,     /* the complete, only if the lease expired (the reaper) */
};

struct bus_publish {
    const char *session_id;
    const char *run_id;
    size_t n;                     /* 1..BUS_PUBLISH_BATCH_MAX events; a complete is 1 */
    const char *const *event_ids; /* n event ids (borrowed) */
    const char *const *jsons;     /* n event JSON texts, as for bus_event_publish */
    enum bus_publish_kind kind;
    int64_t floor; /* the highest seq the caller knows was handed out (the runner: its own
                      last published seq; fcgi, the reaper: the store's high-water mark);
                      0 = none. Every new seq is above it, even when Redis lost writes. */
};

/* The one publish: like bus_event_publish (n = 1), bus_events_publish (a batch) or
 * bus_run_complete (kind), with a seq floor: the first new seq is max(the counter, the
 * newest stream entry, p->floor) + 1 (DESIGN §12). Those three are this with floor 0.
 * CGW_ERR_NOT_FOUND when the session has no run hash at all (Redis lost its data; the
 * runner restores its run with bus_run_restore and publishes again); CGW_ERR_STALE,
 * CGW_ERR_CONFLICT as the others. *last_seq (may be NULL) receives the last event's seq. */
enum cgw_err bus_publish(struct bus *b, const struct bus_publish *p, int64_t *last_seq,
                         struct cgw_error *err);

/* Refreshes the lease of run_id to lease_ms. CGW_ERR_STALE if run_id is not the
 * running run (the runner was reaped or replaced and must stop); CGW_ERR_NOT_FOUND when
 * the session has no run hash at all (Redis lost its data: see bus_run_restore). */
enum cgw_err bus_lease_refresh(struct bus *b, const char *session_id, const char *run_id,
                               int64_t lease_ms, struct cgw_error *err);

/* What a runner knows of its run, to write it again after Redis lost it. */
struct bus_restore {
    const char *session_id;
    const char *run_id;
    const char *provider;
    int64_t owner;
    const char *request_json; /* the run request (may be NULL) */
    int64_t started_ms;       /* wall clock, as the claim recorded it */
    const char *runner_host;  /* NULL = not recorded */
    int64_t runner_pid;
    int64_t cli_pgid; /* 0 = not started */
    int64_t floor;    /* the runner's last published seq */
    int64_t lease_ms;
};

/* Refreshes run_id's lease like bus_lease_refresh, but when the session has no run hash
 * at all (a Redis restarted without its data, a replica promoted before it had the
 * claim) first writes it again from rs: run_id running, the seq counter raised to
 * max(counter, newest entry, rs->floor), the owner's running set and cgw:running. A hash
 * that records another run, or this run completed, is never overwritten:
 * CGW_ERR_STALE (the run is not the caller's any more). *seq (may be NULL) receives the
 * seq counter. */
enum cgw_err bus_run_restore(struct bus *b, const struct bus_restore *rs, int64_t *seq,
                             struct cgw_error *err);

/* Session ids that have a running run (the cgw:running set, cleaned of sessions
 * whose run is no longer running). *ids is a new array of new strings; free with
 * bus_strings_free. */
enum cgw_err bus_runs_running(struct bus *b, char ***ids, size_t *n, struct cgw_error *err);
void bus_strings_free(char **list, size_t n);

/* The size of the cgw:running set (SCARD: cheap, not cleaned: a member whose run just
 * ended may still count until bus_runs_running cleans it), for metrics. */
enum cgw_err bus_runs_running_count(struct bus *b, int64_t *n, struct cgw_error *err);

/* The session's seq counter (0 when unknown to Redis). */
enum cgw_err bus_seq_get(struct bus *b, const char *session_id, int64_t *seq,
                         struct cgw_error *err);

/* ---- reading ------------------------------------------------------------- */

/* Reads, in one atomic script, the events of the session with seq > after_seq (at
 * most max_count events and about max_bytes bytes; at least one event when any
 * exists), the counter, the first seq in the stream and the run status. Sets
 * out->truncated when after_seq < first_seq - 1 and after_seq < last_seq, or when
 * the stream is empty (expired) and after_seq < last_seq (some events after the
 * cursor are gone). max_count 0 reads no events (out->more tells whether any
 * exist); max_bytes <= 0 means no byte limit. Free with bus_read_free (also
 * safe after an error). */
enum cgw_err bus_events_read(struct bus *b, const char *session_id, int64_t after_seq,
                             int64_t max_count, int64_t max_bytes, struct bus_read *out,
                             struct cgw_error *err);
void bus_read_free(struct bus_read *r);

/* ---- the per-user session feed --------------------------------------------------- */

/* Appends a session_upserted frame (a JSON object text without "feedSeq") to user's
 * feed (stream cgw:{u:<id>}:feed, about 1000 frames kept), assigning the next feedSeq
 * (",\"feedSeq\":N" is appended), and notifies cgw:notify with "u:<id>". Not retried
 * after a lost reply (it would add the frame twice). *feed_seq may be NULL. */
enum cgw_err bus_feed_publish(struct bus *b, int64_t user, const char *json, int64_t *feed_seq,
                              struct cgw_error *err);

/* Reads user's feed after feed_seq like bus_events_read (out->last_seq is the feed's
 * counter, out->truncated tells that frames after the cursor are gone; status and
 * run_id are empty). Free with bus_read_free. */
enum cgw_err bus_feed_read(struct bus *b, int64_t user, int64_t after_seq, int64_t max_count,
                           int64_t max_bytes, struct bus_read *out, struct cgw_error *err);

/* ---- control ------------------------------------------------------------- */

/* Appends a control message (JSON text) for the session's runner. */
enum cgw_err bus_ctl_push(struct bus *b, const char *session_id, const char *json,
                          struct cgw_error *err);

/* Takes the oldest control message. timeout_ms 0 = do not wait; otherwise waits
 * up to timeout_ms (BLPOP; the socket timeout is stretched for that call only).
 * *json receives a new string (free()) or NULL when nothing came. */
enum cgw_err bus_ctl_pop(struct bus *b, const char *session_id, int64_t timeout_ms, char **json,
                         struct cgw_error *err);

/* ---- permissions --------------------------------------------------------- */

/* Records an open permission request of run_id (json = the permission_request
 * event) and maps request_id to the session. CGW_ERR_STALE if run_id is not running. */
enum cgw_err bus_perm_add(struct bus *b, const char *session_id, const char *run_id,
                          const char *request_id, const char *json, struct cgw_error *err);

/* Session of request_id into session_id. CGW_ERR_NOT_FOUND when unknown/expired. */
enum cgw_err bus_perm_session(struct bus *b, const char *request_id,
                              char session_id[CGW_UUID_LEN + 1], struct cgw_error *err);

/* Answers request_id, first answer wins: moves it from pending to resolved and
 * pushes decision_json onto the control list, atomically. CGW_ERR_CONFLICT when
 * it was already answered (or cancelled), CGW_ERR_NOT_FOUND when unknown. Never
 * retried by the module (a retry would see its own answer as a conflict): a
 * CGW_ERR_BACKEND after the command was sent leaves the outcome unknown. */
enum cgw_err bus_perm_resolve(struct bus *b, const char *session_id, const char *request_id,
                              bool allow, const char *decision_json, struct cgw_error *err);

/* The runner gives up on request_id (timeout, abort): like resolve with outcome
 * "cancelled" and nothing pushed. CGW_ERR_CONFLICT when an answer came first;
 * cancelling an already cancelled request is CGW_OK. */
enum cgw_err bus_perm_cancel(struct bus *b, const char *session_id, const char *request_id,
                             struct cgw_error *err);

/* The open requests of the session (their JSON), oldest first, at most 1000.
 * *jsons is NULL when there are none. Free with bus_strings_free. */
enum cgw_err bus_perm_list(struct bus *b, const char *session_id, char ***jsons, size_t *n,
                           struct cgw_error *err);

/* ---- subscribe tickets (core/auth.c) --------------------------------------- */

/* Stores value under cgw:ticket:{hash_hex} for ttl_s seconds; hash_hex is 64 hex
 * digits. CGW_ERR_CONFLICT when that key exists already. */
enum cgw_err bus_ticket_put(struct bus *b, const char *hash_hex, const char *value, int64_t ttl_s,
                            struct cgw_error *err);

/* The value stored for hash_hex into *value (a new string, free()). CGW_ERR_NOT_FOUND
 * when unknown or expired. ttl_ms (may be NULL) receives the key's remaining lifetime in
 * ms, read right after the value (a second command), or -1 when it is not known. */
enum cgw_err bus_ticket_get(struct bus *b, const char *hash_hex, char **value, int64_t *ttl_ms,
                            struct cgw_error *err);

#endif
