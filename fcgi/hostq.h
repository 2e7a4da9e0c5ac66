/* hostq.h: the consumer of this host's spawn queue (DESIGN §12, "Home host").
 *
 * A send accepted by another host for a session whose home is this host (host.id) is
 * not forked there: it pushes "<sessionId> <runId>" on cgw:host:{H}:spawn
 * (core/bus_host.h). Each chatgw.fcgi runs one consumer thread with its own Redis
 * connection (the process's only extra one): it refreshes the heartbeat key
 * cgw:host:{H}:alive (TTL HOSTQ_ALIVE_MS), waits up to HOSTQ_WAIT_MS in BLPOP for a
 * request, and starts the runner with spawn_runner, as a local send would. States:
 * running -> stopping (hostq_stop: the flag is seen after the current wait) -> joined.
 */
#ifndef CGW_FCGI_HOSTQ_H
#define CGW_FCGI_HOSTQ_H

#include <stdint.h>

#include "fcgi/app.h"

#define HOSTQ_WAIT_MS 1000 /* longest BLPOP: the heartbeat's refresh period */

struct hostq;

/* The heartbeat's TTL for this configuration: long enough to outlive one round (a wait
 * plus a command that may take redis.timeout_ms, twice), short enough that a host
 * whose every chatgw.fcgi died is seen as down within seconds. */
int64_t hostq_alive_ms(const struct config *cfg);

/* Starts the consumer of app->cfg.host_id's queue (app borrowed: it must outlive the
 * thread). A Redis that is down is no error: the thread retries each round. Returns a
 * new handle for hostq_stop, or NULL (no memory, no thread; logged). */
struct hostq *hostq_start(const struct app *app);

/* Stops the consumer: a request it has taken is started; requests still queued
 * wait for another consumer of this host (or lapse: doc/internals.md). Waits up to wait_ms for the
 * thread, then frees the handle (a thread that did not end is left detached). */
void hostq_stop(struct hostq *q, int64_t wait_ms);

#endif
