/* run_priv.h: what the files of one run (run.c, publish.c, output.c, perm.c) share.
 *
 * struct run is the whole state of a run; run.c owns its life cycle and the main loop,
 * publish.c publishes and persists events, output.c talks to the CLI's pipes, perm.c
 * handles permission requests. Everything runs on the main thread.
 */
#ifndef CGW_RUNNER_RUN_PRIV_H
#define CGW_RUNNER_RUN_PRIV_H

#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/bus.h"
#include "core/config.h"
#include "core/err.h"
#include "core/event.h"
#include "core/store.h"
#include "runner/child.h"
#include "runner/control.h"
#include "runner/provider.h"

#define RUN_BATCH_MAX 64       /* events per SQLite transaction */
#define RUN_BATCH_MS 50        /* longest a batch stays open */
#define RUN_DRAIN_MS 2000      /* output still open this long after the CLI exited: stop reading */
#define RUN_GONE_MS 10000      /* the group outlives SIGKILL this long: complete anyway */
#define RUN_GROUP_POLL_MS 20   /* polling for the group to be gone */
#define RUN_TAIL 4096          /* stderr bytes kept for the error event */
#define RUN_LOG_LINE 512       /* longest stderr line logged */
#define RUN_READ_CHUNK 65536   /* one read from the CLI's stdout */
#define RUN_RETRY_FIRST_MS 100 /* first pause before retrying a Redis write */

enum stop_step { STEP_NONE = 0, STEP_INTERRUPT, STEP_TERM, STEP_KILL };

/* A permission request waiting for the user. */
struct perm {
    char id[CGW_ID_MAX]; /* perm_<uuid>, the requestId clients answer */
    char *cli_id;        /* the CLI's request id */
    json_t *input;       /* the tool input asked for */
    int64_t deadline;    /* monotonic ms; 0 = none */
};

/* An event in the open SQLite transaction, kept to replay it when the batch fails. */
struct batch_item {
    int64_t seq;
    char kind[32];
    char *json;
};

/* An event waiting to be published with the others read from the same stdout chunk. */
struct pub_item {
    char *id;
    char *json; /* without seq */
    char kind[32];
    bool persist;
};

struct run {
    const struct config *cfg;
    const char *session_id, *run_id;
    struct bus_config bc;
    struct bus *bus;
    struct store *store; /* NULL when the database cannot be opened (events only in Redis) */
    struct event_ctx ctx;
    struct runner_request req;
    const struct runner_provider *prov;
    void *pst; /* adapter state */
    struct runner_child child;
    struct runner_control ctl;
    int sig_fd;
    sigset_t old_mask;

    struct runner_buf in;   /* bytes for the CLI's stdin */
    bool in_close;          /* close stdin once `in` is written */
    struct runner_buf line; /* the stdout line being read */
    bool skipping;          /* inside an over-long stdout line */
    struct runner_buf errline;
    char tail[RUN_TAIL]; /* the last stderr bytes */
    size_t tail_len;

    struct perm *perms;
    size_t n_perms, cap_perms;

    struct pub_item pub[BUS_PUBLISH_BATCH_MAX]; /* see runner_publish */
    size_t n_pub;
    bool deferring; /* runner_publish may queue: a stdout chunk is being handled */

    struct batch_item batch[RUN_BATCH_MAX];
    size_t n_batch;
    bool in_tx; /* a batch is pending (written by runner_batch_commit) */
    int64_t batch_start;

    char *native_id; /* recorded (or resumed) provider-native session id */

    bool result_seen, result_error;
    bool stopping, aborted, timed_out, gave_up;
    enum stop_step step;
    int64_t step_deadline;
    int64_t last_output; /* last stdout line, or the last permission answer */
    int64_t next_lease;
    int64_t drain_deadline;   /* set when the CLI exited */
    bool lost;                /* the run is no longer ours: publish nothing more */
    bool fenced;              /* the lease could have lapsed: the CLI was killed (fencing) */
    int64_t fence_at;         /* monotonic ms: kill the CLI and stop here unless refreshed */
    int64_t floor;            /* the highest seq of the session the runner knows was given */
    int64_t started_ms;       /* the claim's startedMs (wall clock), for a restore */
    char host[64];            /* this host, as recorded in the run hash */
    const char *request_json; /* the run request as loaded (borrowed), for a restore */
    bool failed;              /* Redis stayed unreachable: give up */
    bool completed;
};

/* ---- publish.c -------------------------------------------------------------------- */

/* Monotonic milliseconds. */
int64_t runner_now_ms(void);

/* Pauses before retry number attempt (1, 2, ...) of a Redis write that failed with
 * CGW_ERR_BACKEND; false when the retry budget (2 * runner.lease_s) counted from t0 is
 * spent. */
bool runner_retry_pause(const struct run *r, int64_t t0, int attempt);

/* The fence (doc/internals.md "Leases and fencing"): once the monotonic clock reaches
 * r->fence_at (the last successful lease refresh, taken when it was sent, plus
 * runner.lease_s minus a margin) the CLI's process group is SIGKILLed at once and the run
 * is marked lost and fenced: nothing more is published. Returns true when fenced. */
bool runner_fence_check(struct run *r);

/* Sets r->fence_at after a lease refresh sent at sent_ms succeeded. */
void runner_fence_renew(struct run *r, int64_t sent_ms);

/* Writes the run hash again after Redis lost it (bus_run_restore with what the runner
 * knows), refreshing the lease. CGW_OK renews the fence; CGW_ERR_STALE: another run or
 * a completed one is recorded. */
enum cgw_err runner_restore(struct run *r, struct cgw_error *err);

/* One publish of the run with retries: n events (kind BUS_PUBLISH_EVENTS) or the
 * complete, with the runner's floor; a lost run hash is restored and the publish
 * repeated (the same events land at the same seqs); Redis errors are retried until the
 * fence. Raises r->floor. */
enum cgw_err runner_bus_publish(struct run *r, size_t n, const char *const *ids,
                                const char *const *jsons, enum bus_publish_kind kind,
                                int64_t *last_seq, struct cgw_error *err);

/* Judges the final outcome of a Redis write of the run: CGW_ERR_STALE marks the run
 * lost, CGW_ERR_BACKEND (retries exhausted) marks it failed, anything else is logged.
 * Returns rc. */
enum cgw_err runner_settle(struct run *r, enum cgw_err rc, const struct cgw_error *err,
                           const char *what);

/* Queues one published event (json with its seq) for persisting; runner_batch_commit
 * writes the queued events in one transaction (at RUN_BATCH_MAX events, RUN_BATCH_MS after
 * the first, and at the end of the run). */
void runner_persist(struct run *r, int64_t seq, const char *kind, const char *json);
void runner_batch_commit(struct run *r);

/* Publishes the events runner_publish queued, in one bus call, and persists them. */
void runner_publish_flush(struct run *r);

/* Publishes ev (taken; NULL = a constructor ran out of memory) as an event of the run
 * and persists it unless it is a stream_delta. *stored (may be NULL) receives the
 * stored JSON with its seq (free()). Returns 0, or -1 when nothing was published
 * (r->lost or r->failed may then be set). Nothing is published after the complete.
 * While r->deferring (a chunk of the CLI's stdout is being handled) and stored is
 * NULL, the event is queued instead and published with the rest of the chunk's events
 * by runner_publish_flush: one Redis round trip for up to BUS_PUBLISH_BATCH_MAX events.
 * Queued events always go out before any event published directly. */
int runner_publish(struct run *r, json_t *ev, char **stored);

/* Publishes an `error` event with text (made valid UTF-8) and logs it. */
void runner_publish_error(struct run *r, const char *text);

/* ---- output.c ------------------------------------------------------------------------ */

/* Writes what the CLI's stdin takes now; closes it once r->in is empty and r->in_close. */
void runner_flush_in(struct run *r);

/* Reads the CLI's stdout (lines -> adapter -> events, permission requests, ...). */
void runner_read_stdout(struct run *r);

/* stdout ended (or is abandoned): the last partial line, the adapter's finish, close. */
void runner_stdout_eof(struct run *r);

/* Reads the CLI's stderr into the log and the tail kept for the error event. */
void runner_read_stderr(struct run *r);

/* ---- perm.c -------------------------------------------------------------------------- */

/* The CLI asks whether a tool may run (a RUNNER_ITEM_PERMISSION; its id and input are
 * taken when the request waits for the user). */
void runner_perm_request(struct run *r, struct runner_item *it);

/* A permission decision from the control list. */
void runner_perm_decision(struct run *r, const json_t *msg);

/* The CLI withdrew its request cli_id. */
void runner_perm_withdrawn(struct run *r, const char *cli_id);

/* Cancels requests whose timeout passed. */
void runner_perms_check_timeouts(struct run *r, int64_t now);

/* Cancels every open request with reason ("aborted", "cancelled"), denying it to the
 * CLI when tell_cli. Requests an answer won the race for stay open. */
void runner_perms_cancel_all(struct run *r, const char *reason, bool tell_cli);

#endif
