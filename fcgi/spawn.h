/* spawn.h: starting chatgw-runner detached from chatgw.fcgi. */
#ifndef CGW_FCGI_SPAWN_H
#define CGW_FCGI_SPAWN_H

#include <stddef.h>
#include <sys/types.h>

#include "fcgi/app.h"

/* Starts `runner.path [-c CONFIG] SESSION_ID RUN_ID` in a new session (double fork +
 * setsid), so it outlives this process and the web server; stdin is /dev/null,
 * stdout/stderr are this process's stderr, every other descriptor is closed, signals are
 * reset. Returns 0 once the runner has been exec'd (it records its own pid in the run),
 * or -1 with a reason in why (exec failed, fork failed). Thread-safe: only
 * async-signal-safe calls happen between fork and exec. */
int spawn_runner(const struct app *app, const char *session_id, const char *run_id, char *why,
                 size_t why_size);

#endif
