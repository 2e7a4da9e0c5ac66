/* child.c: spawning the provider CLI in its own process group, signalling and reaping it. */
#ifdef HAVE_CONFIG_H
#include "config.h" /* autoconf's: _GNU_SOURCE for pipe2, execvpe */
#endif

#include "runner/child.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* What the child reports through the exec pipe when it cannot start the program. */
enum spawn_stage { STAGE_SETSID = 1, STAGE_CHDIR, STAGE_STDIO, STAGE_EXEC };

struct spawn_report {
    int stage;
    int err;
};

int runner_child_become_subreaper(void)
{
    return prctl(PR_SET_CHILD_SUBREAPER, 1L, 0L, 0L, 0L) == 0 ? 0 : -1;
}

static void close_fd(int *fd)
{
    if (*fd >= 0) {
        close(*fd);
        *fd = -1;
    }
}

static int set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    return fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ? -1 : 0;
}

/* In the child: closes every descriptor from lo to hi (inclusive). Only system calls:
 * this runs between fork and exec. */
static void close_fds(unsigned lo, unsigned hi)
{
    if (lo > hi)
        return;
#ifdef SYS_close_range
    if (syscall(SYS_close_range, lo, hi, 0U) == 0)
        return;
#endif
    long max = sysconf(_SC_OPEN_MAX);
    if (max < 0 || max > 65536)
        max = 65536;
    for (unsigned fd = lo; fd <= hi && fd < (unsigned)max; fd++)
        close((int)fd);
}

/* Reports a failure to the parent and ends the child. */
static _Noreturn void child_fail(int report_fd, int stage)
{
    struct spawn_report rep = {stage, errno};
    ssize_t n;
    do
        n = write(report_fd, &rep, sizeof rep);
    while (n < 0 && errno == EINTR);
    _exit(127);
}

/* The child's side of runner_child_spawn: from fork to exec. */
static _Noreturn void child_exec(const struct runner_spawn *sp, pid_t parent, int in_fd, int out_fd,
                                 int err_fd, int report_fd)
{
    sigset_t none;

    if (setsid() < 0)
        child_fail(report_fd, STAGE_SETSID);
    /* The CLI must not outlive a runner that was killed (the reaper ends the run). */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0L, 0L, 0L) < 0 || getppid() != parent)
        _exit(127);
    /* Undo what the runner changed for itself: a blocked mask and SIGPIPE ignored are
     * inherited across exec. */
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL);

    if ((sp->dir_fd >= 0 ? fchdir(sp->dir_fd) : chdir(sp->cwd)) < 0)
        child_fail(report_fd, STAGE_CHDIR);
    /* The pipe ends are >= 3 (the runner keeps 0-2 open), so dup2 never clobbers one. */
    if (dup2(in_fd, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(err_fd, 2) < 0)
        child_fail(report_fd, STAGE_STDIO);
    if (sp->pass_dir_fd) {
        /* The directory becomes descriptor 3 (without close-on-exec); the report pipe
         * moves above it first, in case it is 3. */
        int rep = fcntl(report_fd, F_DUPFD_CLOEXEC, 4);
        if (rep < 0)
            child_fail(report_fd, STAGE_STDIO);
        report_fd = rep;
        if ((sp->dir_fd == 3 ? fcntl(3, F_SETFD, 0) : dup2(sp->dir_fd, 3)) < 0)
            child_fail(report_fd, STAGE_STDIO);
        close_fds(4, (unsigned)report_fd - 1);
        close_fds((unsigned)report_fd + 1, ~0U);
        execvpe(sp->argv[0], sp->argv, sp->envp);
        child_fail(report_fd, STAGE_EXEC);
    }
    /* Everything else, also descriptors a library opened without O_CLOEXEC (the Redis
     * socket), except the report pipe, which closes itself at exec. */
    if (report_fd > 3)
        close_fds(3, (unsigned)report_fd - 1);
    close_fds((unsigned)report_fd + 1, ~0U);

    execvpe(sp->argv[0], sp->argv, sp->envp);
    child_fail(report_fd, STAGE_EXEC);
}

static const char *stage_name(int stage)
{
    switch (stage) {
    case STAGE_SETSID:
        return "setsid";
    case STAGE_CHDIR:
        return "entering the project directory";
    case STAGE_STDIO:
        return "setting up stdio";
    default:
        return "exec";
    }
}

enum cgw_err runner_child_spawn(const struct runner_spawn *sp, struct runner_child *c,
                                struct cgw_error *err)
{
    int in[2] = {-1, -1}, out[2] = {-1, -1}, errp[2] = {-1, -1}, rep[2] = {-1, -1};
    struct spawn_report report;
    enum cgw_err rc = CGW_ERR_IO;
    ssize_t n;
    pid_t pid;

    memset(c, 0, sizeof *c);
    c->in_fd = c->out_fd = c->err_fd = -1;
    if (!sp->argv || !sp->argv[0] || !sp->argv[0][0])
        return cgw_error_set(err, CGW_ERR_NOT_FOUND, "no program to run");

    if (pipe2(out, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0 || pipe2(rep, O_CLOEXEC) < 0) {
        cgw_error_set(err, CGW_ERR_IO, "pipe: %s", strerror(errno));
        goto fail;
    }
    if (sp->stdin_pipe) {
        if (pipe2(in, O_CLOEXEC) < 0) {
            cgw_error_set(err, CGW_ERR_IO, "pipe: %s", strerror(errno));
            goto fail;
        }
    } else if ((in[0] = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0) {
        cgw_error_set(err, CGW_ERR_IO, "/dev/null: %s", strerror(errno));
        goto fail;
    }

    pid_t parent = getpid();
    pid = fork();
    if (pid < 0) {
        cgw_error_set(err, CGW_ERR_IO, "fork: %s", strerror(errno));
        goto fail;
    }
    if (pid == 0)
        child_exec(sp, parent, in[0], out[1], errp[1], rep[1]);

    close_fd(&in[0]);
    close_fd(&out[1]);
    close_fd(&errp[1]);
    close_fd(&rep[1]);
    /* EOF: the exec succeeded (the pipe closed on exec). A report: it failed. */
    do
        n = read(rep[0], &report, sizeof report);
    while (n < 0 && errno == EINTR);
    close_fd(&rep[0]);
    if (n == (ssize_t)sizeof report) {
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
        if (report.stage == STAGE_EXEC && report.err == E2BIG) {
            /* Not a missing program: argv (the prompt, for most CLIs) is over the kernel's
             * limit (MAX_ARG_STRLEN for one word). */
            rc = cgw_error_set(err, CGW_ERR_TOO_LARGE,
                               "%s: the prompt is too long for the command line (%s)", sp->argv[0],
                               strerror(report.err));
            goto fail;
        }
        if (report.stage == STAGE_EXEC)
            rc = CGW_ERR_NOT_FOUND;
        cgw_error_set(err, rc, "%s: %s: %s", sp->argv[0], stage_name(report.stage),
                      strerror(report.err));
        goto fail;
    }

    c->pid = pid;
    c->wrapped = sp->wrapped;
    c->in_fd = sp->stdin_pipe ? in[1] : -1;
    c->out_fd = out[0];
    c->err_fd = errp[0];
    if (!sp->stdin_pipe)
        close_fd(&in[1]);
    /* Cannot fail on a pipe we own; the main loop polls before every read anyway. */
    if (c->in_fd >= 0)
        (void)set_nonblock(c->in_fd);
    (void)set_nonblock(c->out_fd);
    (void)set_nonblock(c->err_fd);
    return CGW_OK;

fail:
    close_fd(&in[0]);
    close_fd(&in[1]);
    close_fd(&out[0]);
    close_fd(&out[1]);
    close_fd(&errp[0]);
    close_fd(&errp[1]);
    close_fd(&rep[0]);
    close_fd(&rep[1]);
    return rc;
}

void runner_child_reap(struct runner_child *c)
{
    int status;
    pid_t pid;

    for (;;) {
        pid = waitpid(-1, &status, WNOHANG);
        if (pid < 0 && errno == EINTR)
            continue;
        if (pid <= 0)
            return;
        if (pid == c->pid && !c->exited) {
            c->exited = true;
            c->status = status;
            /* bwrap exits with 128 + N when its child died of signal N; a wait status
             * for "killed by N" is N itself on Linux. */
            if (c->wrapped && WIFEXITED(status) && WEXITSTATUS(status) > 128 &&
                WEXITSTATUS(status) < 128 + 65)
                c->status = WEXITSTATUS(status) - 128;
        }
    }
}

int runner_child_signal(const struct runner_child *c, int sig)
{
    if (c->pid <= 0) {
        errno = ESRCH;
        return -1;
    }
    return kill(-c->pid, sig);
}

bool runner_child_group_alive(struct runner_child *c)
{
    if (c->pid <= 0)
        return false;
    runner_child_reap(c);
    if (kill(-c->pid, 0) == 0)
        return true;
    return errno != ESRCH;
}

int runner_child_exit_code(const struct runner_child *c)
{
    if (WIFEXITED(c->status))
        return WEXITSTATUS(c->status);
    if (WIFSIGNALED(c->status))
        return 128 + WTERMSIG(c->status);
    return 1;
}

void runner_child_close_in(struct runner_child *c)
{
    close_fd(&c->in_fd);
}

void runner_child_close(struct runner_child *c)
{
    close_fd(&c->in_fd);
    close_fd(&c->out_fd);
    close_fd(&c->err_fd);
}
