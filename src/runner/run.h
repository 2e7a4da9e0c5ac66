/* run.h: supervision of one run by chatgw-runner, from the claim to its single `complete`. */
#ifndef CGW_RUNNER_RUN_H
#define CGW_RUNNER_RUN_H

#include "core/config.h"

/* The exit status of a runner that fenced itself (doc/chatgw-runner.8). */
#define RUNNER_EXIT_FENCED 3

/* Runs run_id of session_id (see run.c for the states): loads the run request from
 * Redis, starts the provider CLI, publishes and persists its events, obeys abort and
 * answers permission requests, and publishes the run's one `complete`. cfg is
 * borrowed and read-only; config_path names the file it was read from (NULL: the
 * default or $CHATGW_CONFIG), which the CLI's sandbox hides. Expects SIGPIPE to be
 * ignored and file descriptors 0-2 to be open. Returns the process exit status: 0 when
 * the run ended with its complete, or was not this runner's to run (not the running
 * run, reaped meanwhile); 1 when it could not be run or finished for another reason
 * (Redis unreachable before the first lease refresh; the reaper then ends it once the
 * lease expires); RUNNER_EXIT_FENCED when it fenced itself (no lease refresh for
 * runner.lease_s minus the margin, Redis cut off or gone: it killed the CLI's process
 * group and published nothing more; the reaper ends the run). */
int runner_run(const struct config *cfg, const char *config_path, const char *session_id,
               const char *run_id);

#endif
