/* control.h: the thread that takes the run's control messages off Redis for the main loop.
 *
 * The thread owns a bus connection of its own and loops on bus_ctl_pop (1 s timeout)
 * over the session's control list (abort, permission decisions; doc/internals.md),
 * passing every message to the main loop through a pipe: the main loop polls
 * runner_control_fd and calls runner_control_read. A message is a 4-byte length and
 * the JSON text.
 *
 * Stopping: runner_control_stop (before the run's complete is published) tells the
 * thread to forward nothing more; a message it pops after that is dropped when it is
 * an abort of this run, else pushed back onto the list for whoever runs next (the
 * next run's claim drops stale ones). runner_control_join closes the main loop's end
 * and waits for the thread (at most about the pop timeout).
 */
#ifndef CGW_RUNNER_CONTROL_H
#define CGW_RUNNER_CONTROL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/bus.h"
#include "core/err.h"
#include "runner/provider.h"

struct runner_control {
    pthread_t thread;
    bool started;
    atomic_bool stop;
    int fds[2]; /* [0] main loop (non-blocking), [1] thread */
    struct bus *bus;
    char session_id[CGW_ID_MAX];
    char run_id[CGW_ID_MAX];
    struct runner_buf rbuf; /* main loop side: bytes of incomplete messages */
};

/* Connects (lazily: a Redis that is down is retried by the thread) and starts the
 * thread. bc's strings are copied. Call with the signals the main loop handles
 * blocked, so the thread never takes them. */
enum cgw_err runner_control_start(struct runner_control *c, const struct bus_config *bc,
                                  const char *session_id, const char *run_id,
                                  struct cgw_error *err);

/* The descriptor to poll for POLLIN, or -1. */
int runner_control_fd(const struct runner_control *c);

/* Reads what is available and returns the complete messages: *msgs is a new array
 * of *n new strings (free each and the array; NULL when none). Returns 0, or -1 when
 * the thread is gone (the pipe closed). */
int runner_control_read(struct runner_control *c, char ***msgs, size_t *n);

/* Asks the thread to forward nothing more (see above). Thread-safe, idempotent. */
void runner_control_stop(struct runner_control *c);

/* Stops the thread if needed, waits for it, and frees everything (safe on a control
 * that never started). */
void runner_control_join(struct runner_control *c);

#endif
