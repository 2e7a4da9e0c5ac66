/* bus_notify.h: the subscriber side of the bus: session ids published on cgw:notify.
 *
 * publish.lua PUBLISHes the session id on BUS_NOTIFY_CHANNEL after every event it
 * adds (complete included). A struct bus_notify is one Redis connection in
 * subscribed mode, made non-blocking once the subscription is confirmed, for an
 * event loop that watches bus_notify_fd() and calls bus_notify_read() when it is
 * readable. A notification only says "look again": it carries no seq, and one that
 * is lost (the connection dropped) must be made up for by re-reading every watched
 * session after bus_notify_open succeeds again.
 *
 * States: open (subscribed, non-blocking) until bus_notify_read reports
 * CGW_ERR_BACKEND (EOF, I/O or protocol error: Redis restarted, the connection was
 * killed); the caller then closes it and opens a new one. Not thread-safe: one
 * thread owns a struct bus_notify. hiredis stays inside this module.
 */
#ifndef CGW_BUS_NOTIFY_H
#define CGW_BUS_NOTIFY_H

#include "core/bus.h"
#include "core/err.h"

#define BUS_NOTIFY_CHANNEL "cgw:notify"

struct bus_notify;

/* Called once per notification with the session id (borrowed, valid during the
 * call; made of the bus id alphabet, at most CGW_UUID_LEN characters). */
typedef void (*bus_notify_fn)(const char *session_id, void *ctx);

/* Connects to cfg->address (blocking, cfg->timeout_ms), authenticates, subscribes
 * to BUS_NOTIFY_CHANNEL, waits for the confirmation and makes the socket
 * non-blocking. cfg's strings are not kept. *out is a new struct to free with
 * bus_notify_close. CGW_ERR_BACKEND when Redis cannot be reached or refuses. */
enum cgw_err bus_notify_open(const struct bus_config *cfg, struct bus_notify **out,
                             struct cgw_error *err);

/* The socket to watch for readability (never blocks when read). */
int bus_notify_fd(const struct bus_notify *n);

/* Reads what has arrived (without blocking) and calls fn for each notification, in
 * order. Payloads that are not session ids are skipped. CGW_OK when nothing more is
 * buffered; CGW_ERR_BACKEND when the connection is finished (close and reopen);
 * CGW_ERR_NOMEM. Notifications delivered before an error stay delivered. */
enum cgw_err bus_notify_read(struct bus_notify *n, bus_notify_fn fn, void *ctx,
                             struct cgw_error *err);

/* Closes the connection and frees n (NULL is fine). */
void bus_notify_close(struct bus_notify *n);

#endif
