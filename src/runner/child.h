/* child.h: the provider CLI as a child process leading its own process group.
 *
 * runner_child_spawn forks; the child calls setsid (so its pid is the group id and
 * signals to -pid reach everything it starts), asks for SIGKILL when the runner dies,
 * enters the project directory (by descriptor when it has one: the runner checked that
 * very directory), wires its stdio to pipes (stdin: a pipe or /dev/null), closes every
 * other descriptor (except the directory as descriptor 3 when bwrap is to mount it)
 * and execs argv with the given environment, searching
 * PATH like execvp. An exec that fails is reported through a close-on-exec pipe, so
 * the parent knows at once whether the program started. Never a shell.
 *
 * The runner should be a child subreaper (runner_child_become_subreaper) so that the
 * CLI's orphans are reparented to it: runner_child_reap then reaps them too, and
 * runner_child_group_alive can tell when the whole group is gone (zombies count as
 * alive until reaped). Not thread-safe; used by the runner's main thread only.
 */
#ifndef CGW_RUNNER_CHILD_H
#define CGW_RUNNER_CHILD_H

#include <stdbool.h>
#include <sys/types.h>

#include "core/err.h"

struct runner_child {
    pid_t pid;   /* also the process group id; 0 before a spawn */
    int in_fd;   /* write end of its stdin pipe, -1 when none or closed */
    int out_fd;  /* read end of its stdout, -1 when closed */
    int err_fd;  /* read end of its stderr, -1 when closed */
    bool exited; /* the CLI itself was reaped; status is its wait status */
    int status;
    bool wrapped; /* the program is a wrapper (bwrap) that reports its child's death by
                     signal N as exit status 128 + N: status is turned back into that */
};

struct runner_spawn {
    char *const *argv; /* argv[0] is the program (searched in PATH when it has no '/') */
    char *const *envp; /* the whole environment of the program */
    const char *cwd;   /* working directory (for messages only when dir_fd >= 0) */
    int dir_fd;        /* >= 0: the working directory, entered with fchdir; -1: cwd */
    bool pass_dir_fd;  /* the program also gets dir_fd as descriptor 3 (bwrap --bind-fd) */
    bool stdin_pipe;   /* a pipe for stdin; else /dev/null */
    bool wrapped;      /* see runner_child.wrapped */
};

/* Makes the calling process the subreaper of its descendants (PR_SET_CHILD_SUBREAPER).
 * Returns 0 or -1 (the runner still works, but may wait for zombies it cannot reap). */
int runner_child_become_subreaper(void);

/* Starts the program. On success c is filled (pipe ends non-blocking and close-on-exec).
 * When the program cannot be started: CGW_ERR_NOT_FOUND (exec failed: missing, not
 * executable), CGW_ERR_TOO_LARGE (exec failed with E2BIG: the arguments are over the
 * kernel's limit) or CGW_ERR_IO (the working directory, pipes, fork), err naming what
 * failed; nothing is left running. */
enum cgw_err runner_child_spawn(const struct runner_spawn *sp, struct runner_child *c,
                                struct cgw_error *err);

/* Reaps every child that has exited, without waiting; records the CLI's status. */
void runner_child_reap(struct runner_child *c);

/* Sends sig to the whole process group. Returns 0, or -1 (errno) when the group is gone. */
int runner_child_signal(const struct runner_child *c, int sig);

/* Reaps, then tells whether any process of the group still exists. */
bool runner_child_group_alive(struct runner_child *c);

/* The exit code of the reaped CLI: its exit status, or 128 + signal number. */
int runner_child_exit_code(const struct runner_child *c);

/* Closes the stdin pipe (the CLI sees EOF). */
void runner_child_close_in(struct runner_child *c);

/* Closes every pipe end still open. */
void runner_child_close(struct runner_child *c);

#endif
