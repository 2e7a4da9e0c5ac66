/* worker.h: the context of one thread of chatgw.fcgi that talks to the backends (a
 * worker, the reaper): the process's app and its own SQLite and Redis connections. */
#ifndef CGW_FCGI_WORKER_H
#define CGW_FCGI_WORKER_H

#include "core/bus.h"
#include "core/err.h"
#include "core/store.h"
#include "fcgi/app.h"

/* One per thread: its own connections, opened lazily, so a dead backend at start-up is
 * a 503 per request, not a failed start. Not shared between threads. */
struct worker {
    const struct app *app; /* borrowed */
    int index;             /* for logs; -1 for the reaper */
    struct store *store;
    struct bus *bus;
};

/* Returns the worker's store/bus (borrowed: the worker keeps it), opening it when
 * needed; CGW_ERR_BACKEND when the backend cannot be reached (err says why),
 * CGW_ERR_NOMEM. */
enum cgw_err worker_store(struct worker *w, struct store **out, struct cgw_error *err);
enum cgw_err worker_bus(struct worker *w, struct bus **out, struct cgw_error *err);

/* Closes both connections; the next worker_store/worker_bus opens them again. */
void worker_close(struct worker *w);

#endif
