/* reaper.h: the thread of chatgw.fcgi that completes runs whose runner is gone. */
#ifndef CGW_FCGI_REAPER_H
#define CGW_FCGI_REAPER_H

#include "fcgi/worker.h"

/* Starts the reaper thread: every runner.lease_s / 3 seconds (at least 1 s) it calls
 * reap_expired (core/reap.h) with w's store and bus connections (w is borrowed: its
 * app set, and it must outlive the process's threads). Every process runs one; the bus
 * makes racing reapers publish each runner_lost complete once. Returns 0 or -1 (thread
 * not started; logged). */
int reaper_start(struct worker *w);

#endif
