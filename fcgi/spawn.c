/* spawn.c: double fork + setsid + exec of chatgw-runner, with exec errors reported back. */
#include "config.h"

#include "fcgi/spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* Closes every descriptor >= 3 except keep, without allocating (after fork). */
static void close_from_3(int keep)
{
    if (keep > 3)
        syscall(SYS_close_range, 3U, (unsigned)keep - 1, 0U);
    if (syscall(SYS_close_range, (unsigned)keep + 1, ~0U, 0U) < 0) {
        long max = sysconf(_SC_OPEN_MAX);
        for (long fd = keep + 1; fd < (max > 0 ? max : 1024); fd++)
            close((int)fd);
    }
}

/* In the grandchild: becomes the runner or reports errno on the pipe and exits. */
static void become_runner(const char *path, char *const argv[], int status_fd)
{
    sigset_t none;
    int null = open("/dev/null", O_RDWR);
    if (null >= 0) {
        dup2(null, STDIN_FILENO);
        if (null > STDERR_FILENO)
            close(null);
    }
    /* stdout is the FastCGI socket under spawn-fcgi; the runner must never write to it. */
    dup2(STDERR_FILENO, STDOUT_FILENO);
    close_from_3(status_fd);
    for (int sig = 1; sig < NSIG; sig++)
        signal(sig, SIG_DFL);
    signal(SIGPIPE, SIG_IGN);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execv(path, argv);
    int e = errno;
    ssize_t ignored = write(status_fd, &e, sizeof e);
    (void)ignored;
    _exit(127);
}

int spawn_runner(const struct app *app, const char *session_id, const char *run_id, char *why,
                 size_t why_size)
{
    const char *path = app->cfg.runner_path;
    char *argv[8];
    int argc = 0;
    int fds[2];

    /* Everything the children need is built before fork: no malloc after it. */
    argv[argc++] = (char *)"chatgw-runner";
    if (app->config_path && app->config_path[0]) {
        argv[argc++] = (char *)"-c";
        argv[argc++] = (char *)app->config_path;
    }
    argv[argc++] = (char *)session_id;
    argv[argc++] = (char *)run_id;
    argv[argc] = NULL;

    if (pipe2(fds, O_CLOEXEC) < 0) {
        snprintf(why, why_size, "pipe: %s", strerror(errno));
        return -1;
    }
    pid_t child = fork();
    if (child < 0) {
        snprintf(why, why_size, "fork: %s", strerror(errno));
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (child == 0) {
        close(fds[0]);
        if (setsid() < 0)
            _exit(126);
        pid_t grandchild = fork();
        if (grandchild < 0)
            _exit(125);
        if (grandchild == 0)
            become_runner(path, argv, fds[1]);
        /* Leave at once: the runner becomes init's child, never our zombie. */
        _exit(0);
    }
    close(fds[1]);
    int status = 0;
    while (waitpid(child, &status, 0) < 0 && errno == EINTR)
        ;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        snprintf(why, why_size, "could not start the runner (setsid/fork failed, status %d)",
                 status);
        close(fds[0]);
        return -1;
    }
    /* The pipe reaches EOF when exec succeeded (CLOEXEC); it carries an errno if not. */
    int exec_errno = 0;
    ssize_t n;
    while ((n = read(fds[0], &exec_errno, sizeof exec_errno)) < 0 && errno == EINTR)
        ;
    close(fds[0]);
    if (n == (ssize_t)sizeof exec_errno && exec_errno) {
        snprintf(why, why_size, "cannot run %s: %s", path, strerror(exec_errno));
        return -1;
    }
    return 0;
}
