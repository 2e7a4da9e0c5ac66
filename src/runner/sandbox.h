/* sandbox.h: where a provider CLI may run and what it may see (DESIGN §13, doc/security.md).
 *
 * Before each start the runner
 *   1. re-checks the session's project directory (sandbox_project_open): opened once,
 *      its real path taken from the open descriptor and compared with the stored path
 *      and the project roots, so a directory swapped for a symlink since the session was
 *      created cannot move the CLI elsewhere; the CLI then enters that very descriptor;
 *   2. settles the agent home (sandbox_home): <runner.homes>/<user id>, made 0700 on
 *      first use, or the service's own HOME;
 *   3. picks the sandbox (sandbox_mode_resolve): bwrap or none, by runner.sandbox;
 *   4. wraps the CLI's argv in bubblewrap (sandbox_argv_build): the system read-only,
 *      /dev, /proc and /tmp private, its own pid namespace, no capabilities; chatgw's
 *      database, config, state directory, Redis and FastCGI sockets, the project roots
 *      and runner.homes hidden (an empty tmpfs over a directory, /dev/null over a
 *      file); then what the CLI needs to start (its program's prefix, its interpreter,
 *      runner.sandbox_bind) read-only again, the project and the agent home
 *      read-write, and the run's attachment directory read-only. The network stays.
 *
 * The CLI stays in the process group the runner made (no --new-session: the group is
 * how abort reaches it; it has no controlling terminal, so TIOCSTI is no concern), and
 * bwrap runs with --die-with-parent: killing the group or the runner ends the sandbox's
 * pid namespace, and with it everything the CLI started. Main thread only.
 */
#ifndef CGW_RUNNER_SANDBOX_H
#define CGW_RUNNER_SANDBOX_H

#include <stddef.h>
#include <stdint.h>

#include "core/config.h"
#include "core/err.h"

/* The descriptor number under which the CLI's child passes the project directory to
 * bwrap (--bind-fd). */
#define SANDBOX_DIR_FD 3

enum sandbox_mode { SANDBOX_NONE = 0, SANDBOX_BWRAP };

/* Runs bwrap (path) with the namespaces and mounts the runner uses on /bin/true and
 * tells whether it works. Returns 0, or -1 with why (what bwrap said) filled. Forks;
 * waits at most a few seconds. */
int sandbox_probe(const char *bwrap, char *why, size_t why_size);

/* Decides the sandbox from runner.sandbox: "none" -> SANDBOX_NONE; "bwrap" ->
 * SANDBOX_BWRAP when the probe works, else CGW_ERR_IO with err saying why;
 * "auto" -> SANDBOX_BWRAP when the probe works, else SANDBOX_NONE with why filled
 * (the caller logs it as a warning; why is "" when nothing is to be said). */
enum cgw_err sandbox_mode_resolve(const struct config *cfg, enum sandbox_mode *mode, char *why,
                                  size_t why_size, struct cgw_error *err);

/* Opens the project directory path (as stored at session creation: absolute, no
 * symlinks) and checks it again: the real path of the opened directory must be path
 * itself and lie inside one of cfg's project roots (when there are any: without roots
 * chatgw.fcgi makes no session). On success *fd is an O_PATH
 * descriptor of it (close-on-exec; the caller closes it). CGW_ERR_INVALID with a
 * message naming the path when it is gone, not a directory, moved or outside the roots. */
enum cgw_err sandbox_project_open(const struct config *cfg, const char *path, int *fd,
                                  struct cgw_error *err);

/* The agent home of user owner: <runner.homes>/<owner>, created with mode 0700 (and
 * runner.homes itself, 0711) when missing; or, when runner.homes is empty, $HOME of the
 * process (NULL when it has none). Returns CGW_OK with *home a new string (free(); may
 * be NULL), or CGW_ERR_IO when the directory cannot be made or is not a directory. */
enum cgw_err sandbox_home(const struct config *cfg, int64_t owner, char **home,
                          struct cgw_error *err);

/* Finds program (argv[0] of the CLI) like execvp does, with path_env as PATH (NULL:
 * "/usr/bin:/bin"). Returns a new string (free()) with the path that would run, or
 * NULL (errno: ENOENT, EACCES, ENOMEM). A name with a '/' is only checked. */
char *sandbox_which(const char *program, const char *path_env);

/* What to wrap. All borrowed. */
struct sandbox_spec {
    const struct config *cfg;
    const char *config_path; /* the configuration file in use, or NULL ($CHATGW_CONFIG or
                                the default path is taken then) */
    const char *project;     /* checked project path, bound read-write from SANDBOX_DIR_FD */
    const char *home;        /* the agent home, bound read-write; NULL: none */
    const char *path_env;    /* PATH of the CLI (finds its script's interpreter) */
    const char *attach_dir;  /* the run's attachment files (attach.h), bound read-only at
                                the same path; NULL: none */
};

/* Builds the bwrap command line that runs cli_argv (NULL-terminated; cli_argv[0] an
 * absolute path from sandbox_which) as spec says. Returns a new NULL-terminated vector
 * (free with sandbox_argv_free), or NULL with err set (CGW_ERR_NOMEM, or
 * CGW_ERR_INVALID when the project lies inside what must stay hidden). */
char **sandbox_argv_build(const struct sandbox_spec *spec, char *const *cli_argv,
                          struct cgw_error *err);

void sandbox_argv_free(char **argv);

#endif
