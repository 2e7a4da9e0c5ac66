/* run_start.h: starting a run of a session (DESIGN §3.4 "send", §5): the owner's limit
 * of running runs and the atomic claim, the run's first events (run_started, then the
 * prompt as a user text event), the runner's start, and the run's end when its runner
 * could not be started. chatgw.fcgi's send handler calls it; any program holding a
 * store and a bus can (chatgwctl). How a runner process is started (its path, the
 * config file it is given) is the caller's business: a callback.
 */
#ifndef CGW_RUN_START_H
#define CGW_RUN_START_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/bus.h"
#include "core/err.h"
#include "core/store.h"
#include "core/util.h"

/* Starts the runner of run_id of session_id, detached. Returns 0, or -1 with a reason
 * (UTF-8 text) in why. */
typedef int (*run_spawn_fn)(void *ctx, const char *session_id, const char *run_id, char *why,
                            size_t why_size);

struct run_start_req {
    const struct store_session *session; /* borrowed; the caller checked its owner */
    const char *content;                 /* the prompt, borrowed */
    json_t *options;                     /* the whitelisted send options, borrowed */
    int64_t max_runs;                    /* the owner's limit of running runs */
    int64_t lease_ms;                    /* the runner's first lease */
    run_spawn_fn spawn;
    void *spawn_ctx;
    json_t *attachments; /* borrowed, may be NULL: the send's attachments, an array of
                          * {id, name, mimeType, size, url}, already checked; the user's
                          * text event carries them, the run request their metadata
                          * (without url: the runner reads the bytes from the store) */
};

struct run_start_res {
    char run_id[CGW_ID_MAX];
    int64_t last_seq;  /* the session's high-water mark before the run */
    bool spawn_failed; /* the runner did not start: the run has already ended */
};

/* Starts a run of req->session: counts the owner's running runs, claims the session
 * (bus_run_claim, with SQLite's high-water mark), publishes and persists run_started
 * and the prompt, calls req->spawn, and touches the session and its owner's feed.
 *
 * Returns CGW_OK once the run exists, also when the runner did not start: the run then
 * ended here with an error event and complete{reason:"spawn_failed"}, and
 * res->spawn_failed is set. CGW_ERR_LIMIT when the owner has req->max_runs runs
 * running, CGW_ERR_CONFLICT when the session has a run in progress (err's text is
 * meant for the client). Any other error leaves nothing behind, or, after the claim,
 * a run whose lease lapses and that the reaper ends as runner_lost. Thread-safe with
 * its own store and bus. */
enum cgw_err run_start(struct store *st, struct bus *bus, const struct run_start_req *req,
                       struct run_start_res *res, struct cgw_error *err);

#endif
