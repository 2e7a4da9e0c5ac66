/* reap.c: the runner_lost completion of runs whose lease expired, and the end of what
 * their CLI left running. */
#include "core/reap.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/event.h"
#include "core/feed.h"
#include "core/log.h"
#include "core/publish.h"

/* True when process pid is in process group pgid and its environment carries marker
 * ("CHATGW_RUN_ID=<run id>", which the runner gives the CLI and its children inherit). */
static bool proc_is_runs(const char *pid, long long pgid, const char *marker)
{
    char path[64], buf[4096];
    ssize_t n;
    int fd;

    snprintf(path, sizeof path, "/proc/%s/stat", pid);
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return false;
    n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return false;
    buf[n] = '\0';
    /* "pid (comm) state ppid pgrp ...": comm may hold anything, so from its last ')'. */
    const char *p = strrchr(buf, ')');
    char state;
    long long ppid, pgrp;
    if (!p || sscanf(p + 1, " %c %lld %lld", &state, &ppid, &pgrp) != 3 || pgrp != pgid)
        return false;

    snprintf(path, sizeof path, "/proc/%s/environ", pid);
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return false;
    size_t mlen = strlen(marker), have = 0;
    bool found = false;
    /* Entries are NUL-terminated; keep the unfinished one across reads. */
    while (!found && (n = read(fd, buf + have, sizeof buf - have)) > 0) {
        have += (size_t)n;
        size_t start = 0;
        for (size_t i = 0; i < have && !found; i++) {
            if (buf[i] != '\0')
                continue;
            found = i - start == mlen && memcmp(buf + start, marker, mlen) == 0;
            start = i + 1;
        }
        if (start == 0 && have == sizeof buf)
            start = have; /* an entry longer than the buffer: not the marker */
        memmove(buf, buf + start, have - start);
        have -= start;
    }
    close(fd);
    return found;
}

int reap_kill_group(int64_t pgid, const char *run_id)
{
    char marker[128];
    struct dirent *de;
    bool ours = false;

    if (pgid <= 1 || !run_id || !*run_id)
        return 0;
    snprintf(marker, sizeof marker, "CHATGW_RUN_ID=%s", run_id);
    DIR *d = opendir("/proc");
    if (!d)
        return -1;
    /* The group id cannot be reused while a member of the group lives, so one member
     * with the run's marker proves the whole group is the run's. */
    while (!ours && (de = readdir(d))) {
        if (de->d_name[0] >= '1' && de->d_name[0] <= '9')
            ours = proc_is_runs(de->d_name, (long long)pgid, marker);
    }
    closedir(d);
    if (!ours)
        return 0;
    if (kill(-(pid_t)pgid, SIGKILL) < 0)
        return errno == ESRCH ? 0 : -1;
    return 1;
}

/* Kills what the lost runner's CLI left (its process group), when it ran on this host:
 * runners record host.id (host_id) as runnerHost. The CLI itself dies with its runner
 * (parent-death signal), its children do not. */
static void reap_cli_group(const char *host_id, const char *session_id, const struct bus_run *run)
{
    if (run->cli_pgid <= 0 || !run->runner_host[0] || !host_id || !host_id[0])
        return;
    if (strcmp(host_id, run->runner_host) != 0)
        return; /* its runner's host reaps it (its reaper or `chatgwctl runs reap`) */
    int k = reap_kill_group(run->cli_pgid, run->run_id);
    if (k > 0)
        log_warn("run %s of session %s: killed what was left of its CLI (process group %lld)",
                 run->run_id, session_id, (long long)run->cli_pgid);
    else if (k < 0)
        log_error("run %s of session %s: killing process group %lld: %s", run->run_id, session_id,
                  (long long)run->cli_pgid, strerror(errno));
}

enum cgw_err reap_run(struct store *st, struct bus *bus, const char *host_id,
                      const char *session_id, const struct bus_run *run, int64_t *seq,
                      struct cgw_error *err)
{
    struct event_ctx ctx = {session_id, run->run_id, run->provider};
    json_t *ev = event_new_complete(&ctx, 1, false, REASON_RUNNER_LOST);
    int64_t got = 0;
    struct cgw_error perr;

    if (!ev)
        return cgw_error_set(err, CGW_ERR_NOMEM, "out of memory");
    enum cgw_err rc =
        publish_persist(st, bus, session_id, run->run_id, ev, PUBLISH_REAP, &got, &perr);
    json_decref(ev);
    if (got == 0) {
        if (err)
            *err = perr;
        return rc; /* not published: the lease is alive, or another reaper was first */
    }
    log_warn("run %s of session %s lost its runner (pid %lld): completed as runner_lost "
             "at seq %lld",
             run->run_id, session_id, (long long)run->runner_pid, (long long)got);
    if (seq)
        *seq = got;
    reap_cli_group(host_id, session_id, run);
    /* Published: what fails from here on is logged, the run is completed either way. */
    if (rc == CGW_OK)
        rc = store_session_touch(st, session_id, &perr);
    if (rc == CGW_OK)
        rc = feed_publish_session(st, bus, session_id, &perr);
    if (rc != CGW_OK)
        log_error("session %s: persisting the runner_lost complete: %s", session_id, perr.text);
    return CGW_OK;
}

enum cgw_err reap_expired(struct store *st, struct bus *bus, const char *host_id, size_t *reaped,
                          struct cgw_error *err)
{
    char **ids = NULL;
    size_t n = 0, count = 0;
    enum cgw_err rc = bus_runs_running(bus, &ids, &n, err);
    if (rc != CGW_OK)
        return rc;
    for (size_t i = 0; i < n && rc == CGW_OK; i++) {
        struct bus_run run;
        rc = bus_run_get(bus, ids[i], &run, NULL, err);
        if (rc == CGW_ERR_NOT_FOUND) {
            rc = CGW_OK;
            continue;
        }
        if (rc != CGW_OK || run.status != RUN_RUNNING || run.lease_alive)
            continue;
        rc = reap_run(st, bus, host_id, ids[i], &run, NULL, err);
        if (rc == CGW_OK)
            count++;
        else if (rc == CGW_ERR_CONFLICT || rc == CGW_ERR_STALE || rc == CGW_ERR_NOT_FOUND)
            rc = CGW_OK; /* the runner came back, another reaper was first, or the run
                          * hash went with a Redis data loss */
    }
    bus_strings_free(ids, n);
    if (reaped)
        *reaped = count;
    return rc;
}
