/* reap.h: completing runs whose runner is gone (lease expired), shared by the reaper
 * thread of chatgw.fcgi and `chatgwctl runs --reap`. */
#ifndef CGW_REAP_H
#define CGW_REAP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/bus.h"
#include "core/err.h"
#include "core/store.h"

/* For every running run whose lease expired, publishes complete{exitCode:1,
 * reason:"runner_lost"} exactly once (several reapers may race; one wins) and persists
 * it. *reaped (may be NULL) receives how many this call completed. A run whose lease is
 * alive is left alone. host_id is this host's host.id (see reap_run). */
enum cgw_err reap_expired(struct store *st, struct bus *bus, const char *host_id, size_t *reaped,
                          struct cgw_error *err);

/* Completes one run if its lease is gone: publishes complete{exitCode:1,
 * reason:"runner_lost"} with bus_run_complete(only_if_lease_expired) and persists it with
 * its seq (a session that is no longer in SQLite is only logged). The one that published
 * it also kills what is left of the CLI's process group (run->cli_pgid) when the runner
 * ran on this host (run->runner_host equals host_id, this host's host.id, which runners
 * record): see reap_kill_group.
 * CGW_ERR_CONFLICT when the lease is alive, CGW_ERR_STALE when run->run_id is no longer
 * running (another reaper or the runner itself ended it). *seq (may be NULL) gets the
 * complete's seq. */
enum cgw_err reap_run(struct store *st, struct bus *bus, const char *host_id,
                      const char *session_id, const struct bus_run *run, int64_t *seq,
                      struct cgw_error *err);

/* SIGKILLs process group pgid when it is still run_id's: when one of its members (in
 * /proc) has CHATGW_RUN_ID=<run_id> in its environment, as the runner's CLI and its
 * children do; a group id reused by anything else is left alone. Returns 1 when it
 * signalled the group, 0 when there was nothing of the run's, -1 with errno set when
 * /proc could not be read or kill failed. */
int reap_kill_group(int64_t pgid, const char *run_id);

#endif
