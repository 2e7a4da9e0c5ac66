/* poller.h: the long-poll event loop of a chatgw.fcgi process: held subscribe requests
 * wait here without a thread or a Redis connection each (DESIGN §7, doc/internals.md).
 *
 * A worker whose subscribe has nothing to answer yet creates a park (poller_park_new,
 * which also takes one of the user's limits.max_polls_per_user slots), puts it in
 * resp->park, and main.c detaches the accepted request from libfcgi (adapter_detach:
 * its connection and FastCGI request id are all that is left of it) and hands it and
 * the park over with poller_park; from then on the poller thread alone owns both and
 * answers (adapter_held_*: FastCGI records written by the adapter), or drops, the
 * request.
 */
#ifndef CGW_FCGI_POLLER_H
#define CGW_FCGI_POLLER_H

#include <stddef.h>
#include <stdint.h>

#include "core/bus.h"
#include "core/config.h"
#include "core/err.h"
#include "fcgi/answer.h"
#include "fcgi/app.h"
#include "fcgi/owner_cache.h"
#include "fcgi/poller_cache.h"

struct auth_cache;
struct fcgi_held;

struct poller;
struct park;
struct metrics;

/* Starts the poller thread. cfg, bus_cfg and metrics (may be NULL; it counts the
 * answers of held requests) are borrowed for the life of the process. Redis need not
 * be up: the loop connects and reconnects by itself. */
enum cgw_err poller_start(const struct config *cfg, const struct bus_config *bus_cfg,
                          struct metrics *metrics, struct poller **out, struct cgw_error *err);

/* Answers every held request with its acks, as if its waitMs had passed, and stops
 * the loop; returns when that is done or after timeout_ms. Requests handed over
 * later are answered at once. Thread-safe. */
void poller_stop(struct poller *p, int64_t timeout_ms);

/* The held state of one subscribe: of req, the user and the token it came with (checked
 * again when it is answered: a revoked token's request gets 401) and what its answer
 * needs (method, origin copied); wait_ms from now, and sessions[0..n) (takes ownership
 * of the array and its ids; the cursors of from-now sessions already resolved). n may
 * be 0 (a request held only until wait_ms). CGW_ERR_LIMIT when the user already
 * holds cfg->max_polls_per_user requests in this process, CGW_ERR_BUSY when the
 * process holds cfg->max_polls (sessions are then freed too), CGW_ERR_NOMEM.
 * Thread-safe. */
enum cgw_err poller_park_new(struct poller *p, const struct request *req, int64_t wait_ms,
                             struct sub_session *sessions, size_t n, struct park **out,
                             struct cgw_error *err);

/* The held state of an abort of run_id in session_id that waits for the run's complete
 * (DESIGN §3.4 abort): answered 200 {completed:true, seq} by the poller as soon as a
 * read of the session (woken by its notifications) shows the run ended, or 202
 * {completed:false} after wait_ms. cursor: the session's counter now (the reads start
 * there). Takes one slot like a subscribe; errors as poller_park_new. Thread-safe. */
enum cgw_err poller_park_abort_new(struct poller *p, const struct request *req, int64_t wait_ms,
                                   const char *session_id, const char *run_id, int64_t cursor,
                                   struct park **out, struct cgw_error *err);

/* The held state of a GET /chat/stream (Server-Sent Events): like poller_park_new, but
 * the poller writes the acks and then every event after the cursors as it arrives,
 * keeping the request (and its slot) until limits.stream_max_s, the client going away,
 * its token being revoked or the poller stopping (doc/internals.md). The cursors of
 * from-now sessions must be resolved. Thread-safe. */
enum cgw_err poller_park_stream_new(struct poller *p, const struct request *req,
                                    struct sub_session *sessions, size_t n, struct park **out,
                                    struct cgw_error *err);

/* Frees a park that was not handed over, giving back the user's slot. */
void park_free(struct park *pk);

/* Hands a detached request (adapter_detach; *conn is copied into the park) and its
 * park to the poller thread, which takes ownership of both: it answers the request and
 * closes its connection. Never blocks for long. Thread-safe. */
void poller_park(struct poller *p, const struct fcgi_held *conn, struct park *pk);

/* The process's copy of recently polled sessions (poller_cache.h), fed by this poller's
 * notifications and reads; workers look up and offer their reads. Borrowed, lives as
 * long as p. Thread-safe. */
struct poller_cache *poller_cache(struct poller *p);

/* The process's cache of token checks (core/auth_cache.h), kept honest by this
 * poller's notification subscriber. Borrowed, lives as long as p. Thread-safe. */
struct auth_cache *poller_auth_cache(struct poller *p);

/* The process's copy of session owners (owner_cache.h), kept honest by this poller's
 * feed notifications. Borrowed, lives as long as p. Thread-safe. */
struct owner_cache *poller_owner_cache(struct poller *p);

/* Requests held right now (for logs and tests). Thread-safe. */
size_t poller_held(struct poller *p);

/* Requests held since the start, counted when their park is made (poller_park_new):
 * a test that sees this grow knows its subscribe found nothing and waits for an
 * event or its waitMs (GET /health "polls"). Thread-safe. */
uint64_t poller_total(struct poller *p);

#endif
