/* run.c: one run of chatgw-runner, from the claim fcgi made to the run's single `complete`.
 *
 * Entry point: runner_run (run.h), called by main.c. States of a run:
 *
 *   LOAD      bus_run_get: the run request (JSON) of the session; a run that is not the
 *             running one (reaped, replaced, unknown) ends the process quietly (exit 0).
 *             bus_run_set_runner records host and pid.
 *   SPAWN     the provider CLI starts in the project directory, in its own process
 *             group (child.c). An unsupported provider, a bad request or a CLI that
 *             cannot start ends the run at once: `error` + complete{127, spawn_failed}.
 *   RUNNING   the main loop (poll): CLI stdout lines -> adapter (provider.h) -> events,
 *             published with bus_event_publish and persisted in batches; stderr -> log
 *             and a bounded tail; control messages (control.c) -> abort, permission
 *             decisions; timers: lease refresh (lease_s / 3), idle timeout, permission
 *             timeouts, batch commit.
 *   STOPPING  abort (control list, or SIGTERM/SIGINT/SIGHUP to the runner) or idle
 *             timeout: the adapter's interrupt request, then SIGTERM to the group after
 *             runner.term_grace_ms, then SIGKILL after runner.kill_grace_ms. Pending
 *             permission requests are cancelled.
 *   DRAINING  the CLI exited: the rest of its output is read (bounded by RUN_DRAIN_MS),
 *             then whatever is left of its process group is stopped (SIGTERM, SIGKILL).
 *   COMPLETE  once the group is gone: the exit code is settled, `complete` published
 *             with bus_run_complete (exactly once; CGW_ERR_STALE means the reaper won)
 *             and persisted, the session touched.
 *   LOST      any CGW_ERR_STALE while running (lease, publish): the run was reaped or
 *             replaced; the CLI's group is killed and the process exits without
 *             publishing anything more.
 *
 * Nothing of the run is published after `complete`. Every Redis write is retried on
 * CGW_ERR_BACKEND for a bounded time (they are idempotent); after that the runner
 * gives up like a lost one (exit 1) and the reaper completes the run.
 */
#include "runner/run.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/feed.h"
#include "core/log.h"
#include "core/publish.h"
#include "core/util.h"
#include "runner/attach.h"
#include "runner/run_priv.h"
#include "runner/sandbox.h"

extern char **environ;

/* ---- stopping the CLI ------------------------------------------------------------ */

static void signal_group(struct run *r, int sig)
{
    if (runner_child_signal(&r->child, sig) < 0 && errno != ESRCH)
        log_warn("signalling process group %d: %s", (int)r->child.pid, strerror(errno));
    else
        log_info("sent %s to process group %d", sig == SIGKILL ? "SIGKILL" : "SIGTERM",
                 (int)r->child.pid);
}

/* Starts stopping the CLI: abort (the user or a signal to the runner) or idle timeout. */
static void stop_begin(struct run *r, bool abort)
{
    if (abort && !r->child.exited)
        r->aborted = true;
    if (r->stopping)
        return;
    r->stopping = true;
    r->timed_out = !abort;
    if (r->child.exited)
        return; /* the drain stops what is left of the group */

    int rc = 0;
    if (r->prov->interrupt && r->child.in_fd >= 0)
        rc = r->prov->interrupt(r->pst, &r->in);
    if (rc == 1) {
        runner_flush_in(r);
        r->step = STEP_INTERRUPT;
        r->step_deadline = runner_now_ms() + r->cfg->runner_term_grace_ms;
        log_info("asked %s to stop its turn", r->prov->name);
    } else {
        signal_group(r, SIGTERM);
        r->step = STEP_TERM;
        r->step_deadline = runner_now_ms() + r->cfg->runner_kill_grace_ms;
    }
    /* After the interrupt, so the CLI stops the turn before it reads the denials. */
    runner_perms_cancel_all(r, "aborted", true);
}

/* The next escalation step once the current one's grace period is over. */
static void stop_escalate(struct run *r)
{
    switch (r->step) {
    case STEP_NONE:
        break;
    case STEP_INTERRUPT:
        signal_group(r, SIGTERM);
        r->step = STEP_TERM;
        r->step_deadline = runner_now_ms() + r->cfg->runner_kill_grace_ms;
        break;
    case STEP_TERM:
        signal_group(r, SIGKILL);
        r->step = STEP_KILL;
        r->step_deadline = runner_now_ms() + RUN_GONE_MS;
        break;
    case STEP_KILL:
        log_error("process group %d still exists %d ms after SIGKILL; completing anyway",
                  (int)r->child.pid, RUN_GONE_MS);
        r->gave_up = true;
        r->step_deadline = INT64_MAX;
        break;
    }
}

/* ---- control messages and signals ------------------------------------------------ */

static void handle_control(struct run *r, const char *text)
{
    json_t *msg = json_loads(text, 0, NULL);
    const char *type = json_string_value(json_object_get(msg, "type"));

    if (!type) {
        log_warn("ignoring an unreadable control message");
    } else if (strcmp(type, "abort") == 0) {
        const char *run = json_string_value(json_object_get(msg, "runId"));
        if (run && strcmp(run, r->run_id) == 0) {
            log_info("abort requested");
            stop_begin(r, true);
        } else {
            log_info("ignoring an abort of run %s", run ? run : "(none)");
        }
    } else if (strcmp(type, "permission") == 0) {
        runner_perm_decision(r, msg);
    } else {
        log_warn("ignoring a control message of type %s", type);
    }
    json_decref(msg);
}

static void read_control(struct run *r)
{
    char **msgs;
    size_t n;
    runner_control_read(&r->ctl, &msgs, &n);
    for (size_t i = 0; i < n; i++) {
        if (!r->lost && !r->failed && !r->completed)
            handle_control(r, msgs[i]);
        free(msgs[i]);
    }
    free(msgs);
}

static void child_exited(struct run *r)
{
    int st = r->child.status;
    if (WIFSIGNALED(st))
        log_info("%s (pid %d) was killed by signal %d", r->prov->name, (int)r->child.pid,
                 WTERMSIG(st));
    else
        log_info("%s (pid %d) exited with status %d", r->prov->name, (int)r->child.pid,
                 runner_child_exit_code(&r->child));
    r->drain_deadline = runner_now_ms() + RUN_DRAIN_MS;
}

static void read_signals(struct run *r)
{
    struct signalfd_siginfo si;
    while (read(r->sig_fd, &si, sizeof si) == (ssize_t)sizeof si) {
        if (si.ssi_signo == SIGCHLD) {
            bool was = r->child.exited;
            runner_child_reap(&r->child);
            if (!was && r->child.exited)
                child_exited(r);
        } else {
            log_info("got signal %u: aborting the run", si.ssi_signo);
            stop_begin(r, true);
        }
    }
}

/* ---- timers ---------------------------------------------------------------------- */

/* Refreshes the lease; each attempt is bounded by redis.timeout_ms (the bus's command
 * timeout), and the fence is renewed from the moment the successful one was sent. */
static void refresh_lease(struct run *r)
{
    struct cgw_error err;
    int64_t lease_ms = r->cfg->runner_lease_s * 1000, sent = runner_now_ms();
    if (runner_fence_check(r))
        return;
    enum cgw_err rc = bus_lease_refresh(r->bus, r->session_id, r->run_id, lease_ms, &err);
    if (rc == CGW_ERR_NOT_FOUND)
        rc = runner_restore(r, &err); /* Redis lost the run: write it again */
    if (rc == CGW_OK) {
        runner_fence_renew(r, sent);
        r->next_lease = runner_now_ms() + lease_ms / 3;
    } else if (rc == CGW_ERR_STALE) {
        runner_settle(r, rc, &err, "refreshing the lease");
    } else {
        log_warn("refreshing the lease: %s", err.text);
        r->next_lease = runner_now_ms() + 1000;
    }
}

static bool idle_timer_on(const struct run *r)
{
    return r->cfg->runner_idle_timeout_s > 0 && !r->stopping && !r->child.exited && r->n_perms == 0;
}

static int64_t idle_deadline(const struct run *r)
{
    return r->last_output + r->cfg->runner_idle_timeout_s * 1000;
}

static bool pipes_open(const struct run *r)
{
    return r->child.out_fd >= 0 || r->child.err_fd >= 0;
}

static void run_timers(struct run *r)
{
    int64_t now = runner_now_ms();

    if (runner_fence_check(r))
        return;
    if (now >= r->next_lease)
        refresh_lease(r);
    if (r->lost || r->failed)
        return;
    if (r->in_tx && now >= r->batch_start + RUN_BATCH_MS)
        runner_batch_commit(r);
    runner_perms_check_timeouts(r, now);
    if (idle_timer_on(r) && now >= idle_deadline(r)) {
        char text[160];
        snprintf(text, sizeof text,
                 "%s wrote nothing for %" PRId64 " s (runner.idle_timeout_s); stopping it",
                 r->prov->name, r->cfg->runner_idle_timeout_s);
        runner_publish_error(r, text);
        stop_begin(r, false);
    }
    if (r->step != STEP_NONE && now >= r->step_deadline)
        stop_escalate(r);
    if (r->child.exited && pipes_open(r) && now >= r->drain_deadline) {
        log_warn("%s exited but its output is still open (a process of its group holds it)",
                 r->prov->name);
        if (r->child.out_fd >= 0)
            runner_stdout_eof(r);
        if (r->child.err_fd >= 0) {
            close(r->child.err_fd);
            r->child.err_fd = -1;
        }
    }
}

/* Milliseconds until the nearest timer. */
static int poll_timeout(const struct run *r)
{
    int64_t now = runner_now_ms(), next = r->next_lease;
    if (r->fence_at < next)
        next = r->fence_at;
    if (r->in_tx && r->batch_start + RUN_BATCH_MS < next)
        next = r->batch_start + RUN_BATCH_MS;
    for (size_t i = 0; i < r->n_perms; i++)
        if (r->perms[i].deadline > 0 && r->perms[i].deadline < next)
            next = r->perms[i].deadline;
    if (idle_timer_on(r) && idle_deadline(r) < next)
        next = idle_deadline(r);
    if (r->step != STEP_NONE && r->step_deadline < next)
        next = r->step_deadline;
    if (r->child.exited && pipes_open(r) && r->drain_deadline < next)
        next = r->drain_deadline;
    if (r->child.exited && !pipes_open(r) && now + RUN_GROUP_POLL_MS < next)
        next = now + RUN_GROUP_POLL_MS;
    if (next <= now)
        return 0;
    return next - now > 60000 ? 60000 : (int)(next - now);
}

/* True once the CLI and everything of its group are gone and its output is read. */
static bool run_over(struct run *r)
{
    if (r->gave_up)
        return true;
    if (!r->child.exited || pipes_open(r))
        return false;
    if (!runner_child_group_alive(&r->child))
        return true;
    /* Something the CLI started outlived it: stop it the same way as an abort. */
    if (r->step == STEP_NONE || r->step == STEP_INTERRUPT) {
        log_info("stopping what %s left running in its process group", r->prov->name);
        signal_group(r, SIGTERM);
        r->step = STEP_TERM;
        r->step_deadline = runner_now_ms() + r->cfg->runner_kill_grace_ms;
    }
    return false;
}

static void main_loop(struct run *r)
{
    while (!r->lost && !r->failed && !run_over(r)) {
        struct pollfd pfd[5];
        int n = 0, i_sig, i_ctl = -1, i_out = -1, i_err = -1, i_in = -1;

        pfd[i_sig = n++] = (struct pollfd){.fd = r->sig_fd, .events = POLLIN};
        if (runner_control_fd(&r->ctl) >= 0)
            pfd[i_ctl = n++] = (struct pollfd){.fd = runner_control_fd(&r->ctl), .events = POLLIN};
        if (r->child.out_fd >= 0)
            pfd[i_out = n++] = (struct pollfd){.fd = r->child.out_fd, .events = POLLIN};
        if (r->child.err_fd >= 0)
            pfd[i_err = n++] = (struct pollfd){.fd = r->child.err_fd, .events = POLLIN};
        if (r->child.in_fd >= 0 && r->in.len > 0)
            pfd[i_in = n++] = (struct pollfd){.fd = r->child.in_fd, .events = POLLOUT};

        int rc = poll(pfd, (nfds_t)n, poll_timeout(r));
        if (rc < 0 && errno != EINTR) {
            log_error("poll: %s", strerror(errno));
            cgw_sleep_ms(100);
        }
        if (rc > 0) {
            if (pfd[i_sig].revents)
                read_signals(r);
            if (i_out >= 0 && pfd[i_out].revents && r->child.out_fd >= 0)
                runner_read_stdout(r);
            if (i_err >= 0 && pfd[i_err].revents && r->child.err_fd >= 0)
                runner_read_stderr(r);
            if (i_in >= 0 && pfd[i_in].revents)
                runner_flush_in(r);
            if (i_ctl >= 0 && pfd[i_ctl].revents)
                read_control(r);
        }
        /* A SIGCHLD may predate the signalfd (a CLI that exits at once). */
        if (!r->child.exited) {
            runner_child_reap(&r->child);
            if (r->child.exited)
                child_exited(r);
        }
        run_timers(r);
    }
}

/* ---- the end --------------------------------------------------------------------- */

/* Publishes the run's one `complete` and persists it. */
static void complete(struct run *r, int code, bool aborted, enum complete_reason reason)
{
    struct cgw_error err;
    enum cgw_err rc = CGW_ERR_NOMEM;
    int64_t seq = 0;
    json_t *ev = event_new_complete(&r->ctx, code, aborted, reason);
    char *json = ev ? event_encode(ev) : NULL;
    const char *id = ev ? event_id(ev) : NULL;

    /* From here on, control messages are not ours to take (control.h). */
    runner_control_stop(&r->ctl);
    if (!json || !id) {
        log_error("out of memory building the complete event");
        r->failed = true;
        goto out;
    }
    if (r->lost || r->failed)
        goto out;
    /* Everything before the complete is published and in history first: a client that
     * sees the complete and reads history finds the run's events there (only the
     * complete's own row follows, just after). */
    runner_publish_flush(r);
    runner_batch_commit(r);
    if (runner_fence_check(r) || r->lost || r->failed)
        goto out;
    const char *one = json;
    rc = runner_bus_publish(r, 1, &id, &one, BUS_PUBLISH_COMPLETE, &seq, &err);
    if (r->fenced)
        goto out;
    if (rc == CGW_ERR_STALE) {
        log_info("the run was completed by someone else (reaped): %s", err.text);
        r->lost = true;
        goto out;
    }
    if (runner_settle(r, rc, &err, "completing the run") != CGW_OK) {
        r->failed = true;
        goto out;
    }
    r->completed = true;
    log_info("complete seq %" PRId64 ": exitCode %d%s%s%s", seq, code, aborted ? ", aborted" : "",
             reason != REASON_NONE ? ", reason " : "",
             reason != REASON_NONE ? event_complete_reason_name(reason) : "");
    char *stored = publish_with_seq(json, seq);
    if (stored) {
        runner_persist(r, seq, "complete", stored);
        free(stored);
    } else {
        log_error("out of memory: the complete event is not persisted");
    }
    runner_batch_commit(r);
    if (r->store && store_session_touch(r->store, r->session_id, &err) != CGW_OK)
        log_warn("touching the session: %s", err.text);
    /* The owner's other tabs see the run end in their sidebars (the session feed). */
    if (r->store && feed_publish_session(r->store, r->bus, r->session_id, &err) != CGW_OK)
        log_warn("session feed not updated: %s", err.text);
out:
    free(json);
    json_decref(ev);
}

/* A run that ends before its CLI ran: `error` + complete{127, spawn_failed}. */
static void fail_start(struct run *r, const char *text)
{
    runner_publish_error(r, text);
    complete(r, 127, false, REASON_SPAWN_FAILED);
}

/* Settles the exit code and the error event of a CLI that ran, then completes. */
static void finish(struct run *r)
{
    /* A CLI that outlived SIGKILL (gave_up) counts as killed. */
    int code = r->child.exited ? runner_child_exit_code(&r->child) : 128 + SIGKILL;
    int st = r->child.status;
    enum complete_reason reason = REASON_NONE;
    char text[RUN_TAIL + 256];

    if (r->aborted) {
        reason = REASON_ABORTED;
    } else if (r->timed_out) {
        reason = REASON_TIMEOUT;
        if (code == 0)
            code = 1;
    } else {
        int len = 0;
        if (WIFSIGNALED(st))
            len = snprintf(text, sizeof text, "%s was killed by signal %d (%s)", r->prov->name,
                           WTERMSIG(st), strsignal(WTERMSIG(st)));
        else if (code != 0)
            len = snprintf(text, sizeof text, "%s exited with status %d", r->prov->name, code);
        else if (r->prov->needs_result && !r->result_seen)
            len = snprintf(text, sizeof text, "%s exited without a result", r->prov->name);
        if (len > 0 && code != 0 && r->tail_len > 0 && (size_t)len + 10 < sizeof text) {
            size_t tl = r->tail_len;
            while (tl > 0 && (r->tail[tl - 1] == '\n' || r->tail[tl - 1] == '\r'))
                tl--;
            if (tl > 0)
                snprintf(text + len, sizeof text - (size_t)len, ": %.*s", (int)tl, r->tail);
        }
        /* A failed result was reported already; its exit status adds only stderr. */
        bool said = r->result_error && !WIFSIGNALED(st) && r->tail_len == 0;
        if (len > 0 && !said)
            runner_publish_error(r, text);
        if (code == 0 && (r->result_error || (r->prov->needs_result && !r->result_seen)))
            code = 1;
    }
    /* Requests still open (the CLI died waiting): tell clients before the end. */
    runner_perms_cancel_all(r, "cancelled", false);
    complete(r, code, r->aborted, reason);
}

/* ---- setup ----------------------------------------------------------------------- */

/* The CLI's environment: the runner's own, without chatgw's settings (CHATGW_*: Redis
 * password and the like are not the CLI's business), plus the adapter's additions,
 * CHATGW_RUN_ID (the run's id) and PWD set to the project directory the CLI starts in.
 * An inherited PWD names the directory chatgw.fcgi was started in, and some CLIs
 * believe it over getcwd() (OpenCode 1.18 ran its tools there). */
static int build_env(struct run *r, struct runner_strv *env, const char *home)
{
    struct runner_strv add = {0};
    bool own_home = r->cfg->runner_homes[0] && home;
    int rc = 0;

    if (r->prov->build_env && r->prov->build_env(&r->req, &add) < 0)
        rc = -1;
    if (rc == 0)
        rc = runner_strv_add2(&add, "PWD=", r->req.project_path);
    /* The run's mark on the CLI and everything it starts: the reaper kills the group of
     * a lost run only when a member carries it (core/reap.h). */
    if (rc == 0)
        rc = runner_strv_add2(&add, "CHATGW_RUN_ID=", r->run_id);
    /* A home per user (runner.homes): HOME is it, and the service's XDG directories,
     * which would point into the service's own home, go. */
    if (rc == 0 && own_home)
        rc = runner_strv_add2(&add, "HOME=", home);
    for (char **e = environ; rc == 0 && e && *e; e++) {
        const char *eq = strchr(*e, '=');
        size_t nlen = eq ? (size_t)(eq - *e) : strlen(*e);
        bool replaced = strncmp(*e, "CHATGW_", 7) == 0;
        if (own_home && strncmp(*e, "XDG_", 4) == 0)
            replaced = true;
        for (size_t i = 0; !replaced && i < add.n; i++)
            replaced = strncmp(add.v[i], *e, nlen) == 0 && add.v[i][nlen] == '=';
        if (!replaced)
            rc = runner_strv_add(env, *e);
    }
    for (size_t i = 0; rc == 0 && i < add.n; i++)
        rc = runner_strv_add(env, add.v[i]);
    runner_strv_free(&add);
    bool has_path = false;
    for (size_t i = 0; rc == 0 && i < env->n; i++)
        has_path = has_path || strncmp(env->v[i], "PATH=", 5) == 0;
    if (rc == 0 && !has_path)
        rc = runner_strv_add(env, "PATH=/usr/bin:/bin");
    return rc;
}

/* Blocks the signals the main loop takes through a signalfd (the control thread, created
 * later, inherits the mask; the CLI gets a clean one). */
static int setup_signals(struct run *r)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    if (pthread_sigmask(SIG_BLOCK, &set, &r->old_mask) != 0)
        return -1;
    r->sig_fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    return r->sig_fd < 0 ? -1 : 0;
}

/* The value of PATH in env, or NULL. */
static const char *env_path(const struct runner_strv *env)
{
    for (size_t i = 0; i < env->n; i++) {
        if (strncmp(env->v[i], "PATH=", 5) == 0)
            return env->v[i] + 5;
    }
    return NULL;
}

/* Starts the CLI, in the sandbox runner.sandbox asks for (sandbox.h), in the project
 * directory checked again right now. config_path is the configuration file in use
 * (hidden from the CLI; NULL: the default). Returns 0, or -1 after the run was ended
 * (fail_start). */
static int start_cli(struct run *r, const char *config_path)
{
    struct runner_strv argv = {0}, env = {0};
    struct cgw_error err;
    const char *bin = r->cfg->provider_bin[r->req.provider];
    enum sandbox_mode mode = SANDBOX_NONE;
    char text[1024], why[768];
    char *home = NULL, *prog = NULL, **wrapped = NULL;
    int dir_fd = -1;
    int rc = -1;

    if (!bin || !*bin) {
        snprintf(text, sizeof text, "%s.bin is empty: no %s CLI to run", r->prov->name,
                 r->prov->name);
        fail_start(r, text);
        return -1;
    }
    /* The directory may have been swapped for a symlink since the session was made. */
    if (sandbox_project_open(r->cfg, r->req.project_path, &dir_fd, &err) != CGW_OK ||
        sandbox_home(r->cfg, r->req.owner, &home, &err) != CGW_OK ||
        sandbox_mode_resolve(r->cfg, &mode, why, sizeof why, &err) != CGW_OK) {
        snprintf(text, sizeof text, "%s CLI not started: %s", r->prov->name, err.text);
        fail_start(r, text);
        goto out;
    }
    if (why[0])
        log_warn("%s", why);
    if (runner_strv_add(&argv, bin) < 0 || r->prov->build_argv(&r->req, &argv) < 0 ||
        build_env(r, &env, home) < 0) {
        fail_start(r, "out of memory starting the CLI");
        goto out;
    }
    if (mode == SANDBOX_BWRAP) {
        /* bwrap runs the program by path inside; a missing one is said here, before. */
        if (!(prog = sandbox_which(bin, env_path(&env)))) {
            snprintf(text, sizeof text, "%s CLI not found or not executable (%s.bin): %s: %s",
                     r->prov->name, r->prov->name, bin, strerror(errno));
            fail_start(r, text);
            goto out;
        }
        char *given = argv.v[0];
        argv.v[0] = prog;
        struct sandbox_spec spec = {r->cfg, config_path,    r->req.project_path,
                                    home,   env_path(&env), r->req.attach_dir};
        wrapped = sandbox_argv_build(&spec, argv.v, &err);
        argv.v[0] = given;
        if (!wrapped) {
            snprintf(text, sizeof text, "%s CLI not started: %s", r->prov->name, err.text);
            fail_start(r, text);
            goto out;
        }
    }
    struct runner_spawn sp = {
        .argv = wrapped ? wrapped : argv.v,
        .envp = env.v,
        .cwd = r->req.project_path,
        .dir_fd = dir_fd,
        .pass_dir_fd = wrapped != NULL,
        .stdin_pipe = r->prov->stdin_protocol,
        .wrapped = wrapped != NULL,
    };
    enum cgw_err e = runner_child_spawn(&sp, &r->child, &err);
    if (e == CGW_ERR_NOT_FOUND) {
        snprintf(text, sizeof text, "%s CLI not found or not executable (%s.bin): %s",
                 r->prov->name, r->prov->name, err.text);
        fail_start(r, text);
        goto out;
    }
    if (e != CGW_OK) {
        snprintf(text, sizeof text, "%s CLI could not be started in %s: %s", r->prov->name,
                 r->req.project_path, err.text);
        fail_start(r, text);
        goto out;
    }
    if (bus_run_set_cli(r->bus, r->session_id, r->run_id, (int64_t)r->child.pid, &err) != CGW_OK)
        log_warn("recording the CLI's process group: %s", err.text);
    log_info("started %s (pid %d) in %s, sandbox %s%s%s", bin, (int)r->child.pid,
             r->req.project_path, mode == SANDBOX_BWRAP ? "bwrap" : "none",
             r->req.native_id ? ", resuming " : "", r->req.native_id ? r->req.native_id : "");
    r->last_output = runner_now_ms();
    rc = 0;
out:
    if (dir_fd >= 0)
        close(dir_fd);
    sandbox_argv_free(wrapped);
    free(prog);
    free(home);
    runner_strv_free(&argv);
    runner_strv_free(&env);
    return rc;
}

/* attach.h's reader: the attachment's bytes from the store. */
static enum cgw_err attachment_from_store(void *ctx, const struct runner_attachment *a,
                                          unsigned char **data, size_t *len, struct cgw_error *err)
{
    struct run *r = ctx;
    struct store_attachment meta;
    void *bytes = NULL;
    *data = NULL;
    *len = 0;
    if (!r->store)
        return cgw_error_set(err, CGW_ERR_BACKEND, "attachment %s: the database is not open",
                             a->id);
    enum cgw_err rc = store_attachment_get(r->store, a->id, &meta, &bytes, len, err);
    if (rc != CGW_OK)
        return rc;
    /* Send checked the owner; a request that names another session's file stops here. */
    if (meta.user_id != r->req.owner || strcmp(meta.session_id, r->req.session_id) != 0) {
        free(bytes);
        *len = 0;
        return cgw_error_set(err, CGW_ERR_NOT_FOUND, "attachment %s: not found in this session",
                             a->id);
    }
    *data = bytes;
    return CGW_OK;
}

/* Writes the run's attachments for the CLI (attach.h). Returns 0, or -1 after the run
 * was ended (fail_start). */
static int write_attachments(struct run *r)
{
    struct cgw_error err;
    char text[768];
    if (runner_attachments_write(&r->req, r->prov, NULL, attachment_from_store, r, &err) == CGW_OK)
        return 0;
    snprintf(text, sizeof text, "%s CLI not started: %s", r->prov->name, err.text);
    fail_start(r, text);
    return -1;
}

/* Loads the run; returns 1 when it is ours to run, 0 when not (exit quietly), -1 on
 * failure. On 1, *request_json is the run request (free(); NULL when the run has none). */
static int load_run(struct run *r, char **request_json, struct bus_run *run)
{
    struct cgw_error err;
    enum cgw_err rc = bus_run_get(r->bus, r->session_id, run, request_json, &err);
    if (rc == CGW_ERR_NOT_FOUND) {
        log_info("the session has no run; nothing to do");
        return 0;
    }
    if (rc != CGW_OK) {
        log_error("reading the run: %s", err.text);
        return -1;
    }
    if (run->status != RUN_RUNNING || strcmp(run->run_id, r->run_id) != 0) {
        log_info("run %s is not the running run of the session; nothing to do", r->run_id);
        free(*request_json);
        *request_json = NULL;
        return 0;
    }
    /* host.id (the hostname unless configured): the host of the deployment it runs on. */
    snprintf(r->host, sizeof r->host, "%s", r->cfg->host_id);
    r->started_ms = run->started_ms;
    r->floor = run->last_seq; /* run_started and the prompt are published by now */
    rc = bus_run_set_runner(r->bus, r->session_id, r->run_id, r->host, (int64_t)getpid(), &err);
    if (rc == CGW_ERR_STALE) {
        log_info("run %s ended meanwhile; nothing to do", r->run_id);
        free(*request_json);
        *request_json = NULL;
        return 0;
    }
    if (rc != CGW_OK)
        log_warn("recording the runner: %s", err.text);
    return 1;
}

/* Kills what is left of the CLI's group and waits a little for it (lost or failed run). */
static void kill_group(struct run *r)
{
    if (r->child.pid <= 0)
        return;
    runner_child_signal(&r->child, SIGKILL);
    for (int i = 0; i < 50 && runner_child_group_alive(&r->child); i++)
        cgw_sleep_ms(RUN_GROUP_POLL_MS);
}

static void run_free(struct run *r)
{
    runner_control_join(&r->ctl);
    runner_child_close(&r->child);
    if (r->in_tx)
        runner_batch_commit(r);
    for (size_t i = 0; i < r->n_perms; i++) {
        free(r->perms[i].cli_id);
        json_decref(r->perms[i].input);
    }
    free(r->perms);
    if (r->pst)
        r->prov->state_free(r->pst);
    runner_buf_free(&r->in);
    runner_buf_free(&r->line);
    runner_buf_free(&r->errline);
    free(r->native_id);
    runner_attachments_remove(&r->req);
    runner_request_free(&r->req);
    store_close(r->store);
    bus_close(r->bus);
    if (r->sig_fd >= 0) {
        close(r->sig_fd);
        pthread_sigmask(SIG_SETMASK, &r->old_mask, NULL);
    }
}

int runner_run(const struct config *cfg, const char *config_path, const char *session_id,
               const char *run_id)
{
    struct run r = {.cfg = cfg, .session_id = session_id, .run_id = run_id, .sig_fd = -1};
    struct bus_run brun;
    struct cgw_error err;
    char *request_json = NULL;
    int status = 1;
    char text[512];

    r.ctl.fds[0] = r.ctl.fds[1] = -1;
    r.child.in_fd = r.child.out_fd = r.child.err_fd = -1;
    bus_config_from(cfg, &r.bc);
    if (bus_open(&r.bc, false, &r.bus, &err) != CGW_OK) {
        log_error("%s", err.text);
        goto out;
    }
    int loaded = load_run(&r, &request_json, &brun);
    if (loaded <= 0) {
        status = loaded == 0 ? 0 : 1;
        goto out;
    }
    r.ctx = (struct event_ctx){session_id, run_id, brun.provider};
    if (store_open(config_db_target(cfg), false, cfg->db_busy_timeout_ms, &r.store, &err) != CGW_OK)
        log_error("the database cannot be opened (events are not persisted): %s", err.text);
    status = 0;
    r.request_json = request_json;
    /* The store's high-water mark is a floor too (a Redis that lost writes). */
    int64_t hwm = 0;
    if (r.store && store_session_last_seq(r.store, session_id, &hwm, &err) == CGW_OK &&
        hwm > r.floor)
        r.floor = hwm;
    /* No CLI before a refresh succeeded: the fence counts from it (the claim's lease
     * started earlier, at a moment the runner does not know). */
    for (int attempt = 0; attempt < 5 && !r.lost && r.fence_at == 0; attempt++) {
        if (attempt > 0)
            cgw_sleep_ms(RUN_RETRY_FIRST_MS << attempt);
        r.fence_at = INT64_MAX; /* not yet armed: refresh_lease arms it */
        refresh_lease(&r);
        if (r.fence_at == INT64_MAX)
            r.fence_at = 0;
    }
    if (r.lost)
        goto out;
    if (r.fence_at == 0) {
        log_error("the lease could not be refreshed; not starting the CLI");
        status = 1;
        goto out;
    }

    if (!request_json) {
        fail_start(&r, "invalid run request: the run has none");
        goto out;
    }
    if (runner_request_parse(request_json, strlen(request_json), &r.req, &err) != CGW_OK ||
        strcmp(r.req.session_id, session_id) != 0 || strcmp(r.req.run_id, run_id) != 0) {
        snprintf(text, sizeof text, "invalid run request: %s",
                 err.code != CGW_OK ? err.text : "session or run id differs");
        fail_start(&r, text);
        goto out;
    }
    r.ctx.provider = provider_name(r.req.provider);
    r.prov = runner_provider_for(r.req.provider);
    if (!r.prov) {
        snprintf(text, sizeof text, "provider %s is not supported by this runner yet",
                 provider_name(r.req.provider));
        fail_start(&r, text);
        goto out;
    }
    r.pst = r.prov->state_new(&r.ctx, &r.req);
    if (!r.pst || setup_signals(&r) < 0) {
        fail_start(&r, "runner: out of resources before starting the CLI");
        goto out;
    }
    if (runner_child_become_subreaper() < 0)
        log_warn("cannot become a child subreaper: %s", strerror(errno));
    if (write_attachments(&r) < 0 || start_cli(&r, config_path) < 0)
        goto out;
    if (runner_control_start(&r.ctl, &r.bc, session_id, run_id, &err) != CGW_OK)
        log_error("control messages cannot be read (abort will not work): %s", err.text);
    if (r.prov->stdin_protocol) {
        if (r.prov->start && r.prov->start(r.pst, &r.in) < 0)
            log_error("out of memory writing the prompt");
        runner_flush_in(&r);
    }

    main_loop(&r);
    if (!r.lost && !r.failed)
        finish(&r);
    if (r.lost || r.failed)
        kill_group(&r);
out:
    if (r.failed)
        status = 1;
    if (r.fenced)
        status = RUNNER_EXIT_FENCED; /* did not finish its run, and must not look like it */
    free(request_json);
    run_free(&r);
    return status;
}
