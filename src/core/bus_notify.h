/* bus_notify.h: the subscriber side of the bus: session ids published on cgw:notify.
 *
 * publish.lua PUBLISHes "<session id> <seq>" on BUS_NOTIFY_CHANNEL after every event
 * (or batch) it adds, complete included: seq is the session's new high-water mark, so a
 * reader that keeps a copy of the session knows whether its copy is current. feed.lua
 * does the same for a feed ("u:<user id> <feedSeq>"). bus_notify_auth_revoked (called
 * by chatgwctl after revoking a token or disabling a user) PUBLISHes "!auth <epoch>":
 * every token check cached before it must be made again. A bare "<session id>" (a
 * publisher of an older version) is a notification without a seq.
 *
 * A struct bus_notify is one Redis connection in subscribed mode, made non-blocking
 * once the subscription is confirmed, for an event loop that watches bus_notify_fd()
 * and calls bus_notify_read() when it is readable. A notification that is lost (the
 * connection dropped) must be made up for by re-reading every watched session, and
 * forgetting every cached token check, after bus_notify_open succeeds again.
 *
 * States: open (subscribed, non-blocking) until bus_notify_read reports
 * CGW_ERR_BACKEND (EOF, I/O or protocol error: Redis restarted, the connection was
 * killed); the caller then closes it and opens a new one. Not thread-safe: one
 * thread owns a struct bus_notify. hiredis stays inside this module.
 */
#ifndef CGW_BUS_NOTIFY_H
#define CGW_BUS_NOTIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/bus.h"
#include "core/err.h"

#define BUS_NOTIFY_CHANNEL "cgw:notify"
#define BUS_AUTH_EPOCH_KEY "cgw:auth:epoch"

struct bus_notify;

enum bus_notify_kind {
    BUS_NOTIFY_SESSION, /* a session (or feed) has new events */
    BUS_NOTIFY_AUTH,    /* a token was revoked or a user disabled */
};

/* One notification, as bus_notify_read hands it over. */
struct bus_notify_msg {
    enum bus_notify_kind kind;
    const char *session_id; /* SESSION: borrowed, valid during the call; made of the bus
                             * id alphabet, at most CGW_UUID_LEN characters */
    int64_t seq;            /* SESSION: the new high-water seq (feedSeq); 0 = not carried */
    int64_t epoch;          /* AUTH: the revocation epoch after the change */
};

/* Called once per notification. */
typedef void (*bus_notify_fn)(const struct bus_notify_msg *m, void *ctx);

/* Parses one payload of BUS_NOTIFY_CHANNEL into *m (m->session_id points into a copy
 * in idbuf, CGW_UUID_LEN + 1 bytes). Returns 0, or -1 when it is not one of ours. */
int bus_notify_parse(const char *payload, size_t len, struct bus_notify_msg *m, char *idbuf);

/* The publisher side of revocations: INCRs BUS_AUTH_EPOCH_KEY and PUBLISHes
 * "!auth <epoch>" on BUS_NOTIFY_CHANNEL, so every chatgw.fcgi forgets its cached token
 * checks. Call after the store change (a revoked token, a disabled user). *epoch (may
 * be NULL) receives the new epoch. CGW_ERR_BACKEND when Redis cannot be reached. */
enum cgw_err bus_notify_auth_revoked(struct bus *b, int64_t *epoch, struct cgw_error *err);

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

/* True when n's reader holds bytes of a notification not complete yet (the rest is
 * still on its way): a caller that must know it saw every notification sent so far
 * has to wait for the rest. */
bool bus_notify_partial(const struct bus_notify *n);

/* Closes the connection and frees n (NULL is fine). */
void bus_notify_close(struct bus_notify *n);

#endif
