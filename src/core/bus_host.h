/* bus_host.h: the home hosts' spawn queues and heartbeats on the bus (DESIGN §12).
 *
 * Keys (host H is a host.id: [A-Za-z0-9._:-], at most 63 characters):
 *   cgw:host:{H}:alive  string  set with a TTL by every chatgw.fcgi of host H that
 *                               consumes its spawn queue, refreshed before each wait;
 *                               gone = no live consumer on H
 *   cgw:host:{H}:spawn  list    spawn requests "<sessionId> <runId>" for host H,
 *                               pushed by any host's send, popped by H's consumers
 *
 * Entry points: bus_host_beat (consumer, each round), bus_host_alive (send, before the
 * claim), bus_host_spawn_push (send, instead of forking), bus_host_spawn_pop (consumer,
 * a bounded BLPOP). Same connection rules as bus.h: one struct bus per thread.
 */
#ifndef CGW_BUS_HOST_H
#define CGW_BUS_HOST_H

#include <stdbool.h>
#include <stdint.h>

#include "core/bus.h"
#include "core/err.h"
#include "core/util.h"

/* Marks host as having a live consumer for ttl_ms (SET ... PX). CGW_ERR_INVALID for a
 * bad host or ttl, CGW_ERR_BACKEND when Redis is unreachable. */
enum cgw_err bus_host_beat(struct bus *b, const char *host, int64_t ttl_ms, struct cgw_error *err);

/* Sets *alive to whether host has a live consumer (its heartbeat key exists). */
enum cgw_err bus_host_alive(struct bus *b, const char *host, bool *alive, struct cgw_error *err);

/* Appends the spawn request of run_id of session_id to host's queue. Not retried after
 * a lost reply (a request must not be queued twice). Borrows its arguments. */
enum cgw_err bus_host_spawn_push(struct bus *b, const char *host, const char *session_id,
                                 const char *run_id, struct cgw_error *err);

/* Takes the oldest spawn request of host, waiting up to timeout_ms (1..60000) for one.
 * On CGW_OK, *got says whether one came; then session_id and run_id hold it. A
 * malformed entry is dropped with CGW_ERR_INTERNAL (the caller logs it and goes on). */
enum cgw_err bus_host_spawn_pop(struct bus *b, const char *host, int64_t timeout_ms, bool *got,
                                char session_id[CGW_UUID_LEN + 1], char run_id[CGW_ID_MAX],
                                struct cgw_error *err);

#endif
