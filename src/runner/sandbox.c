/* sandbox.c: the project re-check, agent homes and the bubblewrap command line of a CLI. */
#ifdef HAVE_CONFIG_H
#include "config.h" /* autoconf's: _GNU_SOURCE */
#endif

#include "runner/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"

#define PROBE_WAIT_MS 5000

/* The namespaces and base mounts of every sandbox (the probe uses exactly these). */
static const char *const base_args[] = {
    "--die-with-parent",
    "--unshare-pid",
    "--unshare-ipc",
    "--unshare-uts",
    "--cap-drop",
    "ALL",
    "--ro-bind",
    "/",
    "/",
    "--dev",
    "/dev",
    "--proc",
    "/proc",
    "--tmpfs",
    "/tmp",
    NULL,
};

/* Directories shared with the whole system: a secret file in one of them is hidden as a
 * file, never the directory itself. */
static const char *const shared_dirs[] = {
    "/",        "/etc",     "/usr", "/usr/local", "/usr/local/etc", "/var",
    "/var/lib", "/var/run", "/run", "/var/tmp",   "/tmp",           "/home",
    "/root",    "/srv",     "/opt", "/mnt",       "/media",         NULL,
};

/* ---- small helpers ----------------------------------------------------------------- */

/* Whether p is dir or lies below it (both canonical). */
static bool within(const char *p, const char *dir)
{
    size_t n = strlen(dir);
    if (strcmp(dir, "/") == 0)
        return true;
    return strncmp(p, dir, n) == 0 && (p[n] == '\0' || p[n] == '/');
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A NULL-terminated vector of owned strings. */
struct strv {
    char **v;
    size_t n, cap;
    bool failed; /* an allocation failed: v is incomplete */
};

static void strv_add(struct strv *sv, const char *s)
{
    if (sv->failed)
        return;
    if (sv->n + 2 > sv->cap) {
        size_t cap = sv->cap ? sv->cap * 2 : 64;
        char **v = realloc(sv->v, cap * sizeof *v);
        if (!v) {
            sv->failed = true;
            return;
        }
        sv->v = v;
        sv->cap = cap;
    }
    if (!(sv->v[sv->n] = strdup(s))) {
        sv->failed = true;
        return;
    }
    sv->v[++sv->n] = NULL;
}

void sandbox_argv_free(char **argv)
{
    for (size_t i = 0; argv && argv[i]; i++)
        free(argv[i]);
    free(argv);
}

/* ---- the probe ---------------------------------------------------------------------- */

int sandbox_probe(const char *bwrap, char *why, size_t why_size)
{
    const char *argv[32];
    size_t n = 0;
    int errp[2];
    size_t got = 0;

    if (why_size)
        why[0] = '\0';
    if (access(bwrap, X_OK) < 0) {
        snprintf(why, why_size, "%s: %s", bwrap, strerror(errno));
        return -1;
    }
    argv[n++] = bwrap;
    for (size_t i = 0; base_args[i]; i++)
        argv[n++] = base_args[i];
    argv[n++] = "--";
    argv[n++] = "/bin/true";
    argv[n] = NULL;

    if (pipe2(errp, O_CLOEXEC) < 0) {
        snprintf(why, why_size, "pipe: %s", strerror(errno));
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(why, why_size, "fork: %s", strerror(errno));
        close(errp[0]);
        close(errp[1]);
        return -1;
    }
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR);
        if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(errp[1], 2) < 0)
            _exit(126);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        execv(bwrap, (char *const *)argv);
        _exit(127);
    }
    close(errp[1]);
    /* What bwrap says (its stderr) until it closes, bounded in time. */
    int64_t deadline = now_ms() + PROBE_WAIT_MS;
    for (;;) {
        int64_t left = deadline - now_ms();
        struct pollfd pfd = {errp[0], POLLIN, 0};
        if (left <= 0)
            break;
        int rc = poll(&pfd, 1, (int)left);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc <= 0)
            break;
        char buf[256];
        ssize_t r = read(errp[0], buf, sizeof buf);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        for (ssize_t i = 0; i < r && got + 1 < why_size; i++)
            why[got++] = buf[i] == '\n' ? ' ' : buf[i];
        if (why_size)
            why[got] = '\0';
    }
    close(errp[0]);
    int status = 0;
    pid_t w;
    while ((w = waitpid(pid, &status, WNOHANG)) == 0 && now_ms() < deadline + 100)
        usleep(2000);
    if (w == 0) {
        kill(pid, SIGKILL);
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
        snprintf(why, why_size, "%s did not finish in %d ms", bwrap, PROBE_WAIT_MS);
        return -1;
    }
    if (w < 0) {
        snprintf(why, why_size, "waitpid: %s", strerror(errno));
        return -1;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    while (got > 0 && why[got - 1] == ' ')
        why[--got] = '\0';
    if (got == 0)
        snprintf(why, why_size, "%s exited with status %d", bwrap,
                 WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
    return -1;
}

enum cgw_err sandbox_mode_resolve(const struct config *cfg, enum sandbox_mode *mode, char *why,
                                  size_t why_size, struct cgw_error *err)
{
    char said[512];

    if (why_size)
        why[0] = '\0';
    *mode = SANDBOX_NONE;
    if (strcmp(cfg->runner_sandbox, "none") == 0)
        return CGW_OK;
    if (sandbox_probe(cfg->runner_bwrap, said, sizeof said) == 0) {
        *mode = SANDBOX_BWRAP;
        return CGW_OK;
    }
    if (strcmp(cfg->runner_sandbox, "bwrap") == 0)
        return cgw_error_set(err, CGW_ERR_IO,
                             "runner.sandbox = bwrap, but bubblewrap (runner.bwrap) does not work: "
                             "%s",
                             said);
    snprintf(why, why_size,
             "the provider CLIs run without a sandbox: bubblewrap (runner.bwrap) does not work: "
             "%s (install bubblewrap, or set runner.sandbox = none to say so)",
             said);
    return CGW_OK;
}

/* ---- the project and the home -------------------------------------------------------- */

enum cgw_err sandbox_project_open(const struct config *cfg, const char *path, int *fd,
                                  struct cgw_error *err)
{
    char link[64], real[PATH_MAX];

    *fd = -1;
    if (!path || path[0] != '/')
        return cgw_error_set(err, CGW_ERR_INVALID, "projectPath is not an absolute path");
    int d = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (d < 0)
        return cgw_error_set(err, CGW_ERR_INVALID, "projectPath %s: %s", path, strerror(errno));
    /* Where the opened directory really is, whatever the path went through. */
    snprintf(link, sizeof link, "/proc/self/fd/%d", d);
    ssize_t n = readlink(link, real, sizeof real - 1);
    if (n < 0) {
        int e = errno;
        close(d);
        return cgw_error_set(err, CGW_ERR_IO, "projectPath %s: %s: %s", path, link, strerror(e));
    }
    real[n] = '\0';
    if (strcmp(real, path) != 0) {
        close(d);
        return cgw_error_set(err, CGW_ERR_INVALID,
                             "the run is refused: projectPath %s now leads to %s (a symlink or "
                             "a moved directory)",
                             path, real);
    }
    /* Without roots chatgw.fcgi creates no session at all; the runner then holds the
     * path to what was stored (tests drive the runner alone like that). */
    if (cfg->n_project_roots == 0) {
        *fd = d;
        return CGW_OK;
    }
    for (size_t i = 0; i < cfg->n_project_roots; i++) {
        char root[PATH_MAX];
        if (realpath(cfg->project_roots[i], root) && within(real, root)) {
            *fd = d;
            return CGW_OK;
        }
    }
    close(d);
    return cgw_error_set(err, CGW_ERR_INVALID,
                         "the run is refused: projectPath %s is not inside a configured "
                         "project root (projects.roots)",
                         path);
}

/* Makes directory path with mode unless it exists; it must be a real directory. */
static enum cgw_err make_dir(const char *path, mode_t mode, struct cgw_error *err)
{
    struct stat st;
    if (mkdir(path, mode) < 0 && errno != EEXIST)
        return cgw_error_set(err, CGW_ERR_IO, "agent home %s: %s", path, strerror(errno));
    if (lstat(path, &st) < 0)
        return cgw_error_set(err, CGW_ERR_IO, "agent home %s: %s", path, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return cgw_error_set(err, CGW_ERR_IO, "agent home %s is not a directory", path);
    return CGW_OK;
}

enum cgw_err sandbox_home(const struct config *cfg, int64_t owner, char **home,
                          struct cgw_error *err)
{
    *home = NULL;
    if (!cfg->runner_homes[0]) {
        const char *h = getenv("HOME");
        if (h && h[0] && !(*home = strdup(h)))
            return cgw_error_set(err, CGW_ERR_NOMEM, "out of memory");
        return CGW_OK;
    }
    enum cgw_err rc = make_dir(cfg->runner_homes, 0700, err);
    if (rc != CGW_OK)
        return rc;
    char *p = NULL;
    if (asprintf(&p, "%s/%" PRId64, cfg->runner_homes, owner) < 0)
        return cgw_error_set(err, CGW_ERR_NOMEM, "out of memory");
    if ((rc = make_dir(p, 0700, err)) != CGW_OK) {
        free(p);
        return rc;
    }
    *home = p;
    return CGW_OK;
}

char *sandbox_which(const char *program, const char *path_env)
{
    bool denied = false;

    if (strchr(program, '/')) {
        struct stat st;
        if (stat(program, &st) < 0)
            return NULL;
        if (!S_ISREG(st.st_mode) || access(program, X_OK) < 0) {
            errno = EACCES;
            return NULL;
        }
        return strdup(program);
    }
    const char *p = path_env ? path_env : "/usr/bin:/bin";
    for (;;) {
        size_t len = strcspn(p, ":");
        char *cand = NULL;
        if (asprintf(&cand, "%.*s%s%s", (int)len, p, len ? "/" : "", program) < 0) {
            errno = ENOMEM;
            return NULL;
        }
        struct stat st;
        if (stat(cand, &st) == 0 && S_ISREG(st.st_mode)) {
            if (access(cand, X_OK) == 0)
                return cand;
            denied = true;
        }
        free(cand);
        if (!p[len])
            break;
        p += len + 1;
    }
    errno = denied ? EACCES : ENOENT;
    return NULL;
}

/* ---- the bwrap command line ------------------------------------------------------------ */

/* A path the sandbox hides or keeps; canonical. */
struct spot {
    char *path;
    bool dir;
    bool secret; /* chatgw's own files: hidden even inside the project or the home */
};

struct spots {
    struct spot *v;
    size_t n, cap;
    bool failed;
    bool with_tmp; /* also paths below /tmp (what must stay readable may be there) */
};

static void spots_free(struct spots *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i].path);
    free(s->v);
}

static int spot_cmp(const void *a, const void *b)
{
    return strcmp(((const struct spot *)a)->path, ((const struct spot *)b)->path);
}

/* Adds the canonical form of path, if it exists and is not private anyway (/tmp, /dev,
 * /proc are the sandbox's own; /tmp counts for a list made with_tmp) nor / itself. */
static void spots_add(struct spots *s, const char *path, bool secret)
{
    char real[PATH_MAX];
    struct stat st;

    if (s->failed || !path || path[0] != '/' || !realpath(path, real) || stat(real, &st) < 0)
        return;
    if (strcmp(real, "/") == 0 || (!s->with_tmp && within(real, "/tmp")) || within(real, "/dev") ||
        within(real, "/proc"))
        return;
    for (size_t i = 0; i < s->n; i++) {
        if (strcmp(s->v[i].path, real) == 0) {
            s->v[i].secret = s->v[i].secret || secret;
            return;
        }
    }
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        struct spot *v = realloc(s->v, cap * sizeof *v);
        if (!v) {
            s->failed = true;
            return;
        }
        s->v = v;
        s->cap = cap;
    }
    if (!(s->v[s->n].path = strdup(real))) {
        s->failed = true;
        return;
    }
    s->v[s->n].dir = S_ISDIR(st.st_mode);
    s->v[s->n].secret = secret;
    s->n++;
}

/* Adds each absolute path of a ':' or ',' separated list. */
static void spots_add_list(struct spots *s, const char *list, bool secret)
{
    const char *p = list;
    while (p && *p) {
        size_t len = strcspn(p, ":,");
        char one[PATH_MAX];
        const char *start = p;
        while (len > 0 && (*start == ' ' || *start == '\t')) {
            start++;
            len--;
        }
        while (len > 0 && (start[len - 1] == ' ' || start[len - 1] == '\t'))
            len--;
        if (len > 0 && len < sizeof one) {
            memcpy(one, start, len);
            one[len] = '\0';
            spots_add(s, one, secret);
        }
        p = start + strcspn(start, ":,");
        if (*p)
            p++;
    }
}

static bool is_shared_dir(const char *dir, const char *home)
{
    for (size_t i = 0; shared_dirs[i]; i++) {
        if (strcmp(dir, shared_dirs[i]) == 0)
            return true;
    }
    return home && strcmp(dir, home) == 0;
}

/* A file of chatgw's (the database, the config, a socket): its directory is hidden, or,
 * when that directory is shared with the system or is the agent home, the file and its
 * siblings named by suffixes ("-wal", ...). */
static void spots_add_secret_file(struct spots *s, const char *file, const char *const *suffixes,
                                  const char *home)
{
    char dir[PATH_MAX], real[PATH_MAX];
    if (!file || file[0] != '/' || (size_t)snprintf(dir, sizeof dir, "%s", file) >= sizeof dir)
        return;
    char *slash = strrchr(dir, '/');
    if (slash == dir)
        slash[1] = '\0';
    else
        *slash = '\0';
    if (realpath(dir, real) && !is_shared_dir(real, home)) {
        spots_add(s, real, true);
        return;
    }
    for (size_t i = 0; suffixes[i]; i++) {
        char one[PATH_MAX];
        if ((size_t)snprintf(one, sizeof one, "%s%s", file, suffixes[i]) < sizeof one)
            spots_add(s, one, true);
    }
}

/* A socket address of the configuration ("unix:/path", "/path", "host:port"): its path. */
static const char *socket_path(const char *address)
{
    if (!address)
        return NULL;
    if (strncmp(address, "unix:", 5) == 0)
        return address + 5;
    return address[0] == '/' ? address : NULL;
}

/* Keeps what runs program readable: its directory and, for <prefix>/bin/<name>, the
 * whole prefix (npm's lib/node_modules, nvm's node), for the path and its target. */
static void keep_program(struct spots *keep, const char *program)
{
    char real[PATH_MAX];
    const char *forms[2] = {program, realpath(program, real) ? real : NULL};

    for (int f = 0; f < 2; f++) {
        char dir[PATH_MAX];
        if (!forms[f] || forms[f][0] != '/' ||
            (size_t)snprintf(dir, sizeof dir, "%s", forms[f]) >= sizeof dir)
            continue;
        char *slash = strrchr(dir, '/');
        if (slash == dir)
            continue;
        *slash = '\0';
        char *base = strrchr(dir, '/');
        if (base && strcmp(base, "/bin") == 0 && base != dir)
            *base = '\0';
        spots_add(keep, dir, false);
        /* An npm package finds its dependencies beside it (Codex's native binary is the
         * optional package @openai/codex-linux-x64): the whole node_modules it lies in. */
        char *nm = strstr(dir, "/node_modules/");
        if (nm) {
            nm[strlen("/node_modules")] = '\0';
            spots_add(keep, dir, false);
        }
    }
}

/* The interpreter of a script ("#!/usr/bin/env node", "#!/opt/node/bin/node"), found
 * with path_env. A new string or NULL. */
static char *script_interpreter(const char *program, const char *path_env)
{
    char line[256];
    int fd = open(program, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    ssize_t n = read(fd, line, sizeof line - 1);
    close(fd);
    if (n < 3 || line[0] != '#' || line[1] != '!')
        return NULL;
    line[n] = '\0';
    line[strcspn(line, "\n")] = '\0';
    char *save = NULL, *word = strtok_r(line + 2, " \t", &save);
    if (!word)
        return NULL;
    const char *base = strrchr(word, '/');
    if (!base || strcmp(base, "/env") != 0)
        return strdup(word);
    while ((word = strtok_r(NULL, " \t", &save)) && word[0] == '-')
        ;
    return word ? sandbox_which(word, path_env) : NULL;
}

static void emit_hide(struct strv *a, const struct spot *h)
{
    if (h->dir) {
        strv_add(a, "--tmpfs");
        strv_add(a, h->path);
    } else {
        strv_add(a, "--ro-bind");
        strv_add(a, "/dev/null");
        strv_add(a, h->path);
    }
}

/* Whether p lies in one of the spots (inside or equal). */
static bool in_any(const struct spots *s, const char *p)
{
    for (size_t i = 0; i < s->n; i++) {
        if (within(p, s->v[i].path))
            return true;
    }
    return false;
}

/* After dir was mounted again: hides what it brought back, every hidden spot strictly
 * inside it, and chatgw's own files also when they are dir itself. */
static void rehide_inside(struct strv *a, const struct spots *hide, const char *dir)
{
    for (size_t i = 0; i < hide->n; i++) {
        const struct spot *h = &hide->v[i];
        if (within(h->path, dir) && (h->secret || strcmp(h->path, dir) != 0))
            emit_hide(a, h);
    }
}

char **sandbox_argv_build(const struct sandbox_spec *sp, char *const *cli_argv,
                          struct cgw_error *err)
{
    static const char *const db_suffixes[] = {"", "-wal", "-shm", "-journal", NULL};
    static const char *const plain[] = {"", NULL};
    const struct config *cfg = sp->cfg;
    /* The CLI's install may lie below /tmp (a checkout there, a test's fixture): the
     * private /tmp would take it away like a hidden directory, so it is kept too. */
    struct spots hide = {0}, keep = {.with_tmp = true}, binds = {0};
    struct strv a = {0};
    char home[PATH_MAX];
    char **out = NULL;
    const char *cfg_path =
        sp->config_path && sp->config_path[0] ? sp->config_path : getenv("CHATGW_CONFIG");

    if (!cfg_path || !cfg_path[0])
        cfg_path = CGW_DEFAULT_CONFIG_PATH;
    bool have_home = sp->home && realpath(sp->home, home) && strcmp(home, "/") != 0;

    /* What must be hidden: chatgw's own files first, ... */
    spots_add_secret_file(&hide, cfg->db_path, db_suffixes, have_home ? home : NULL);
    spots_add_secret_file(&hide, cfg_path, plain, have_home ? home : NULL);
    spots_add_secret_file(&hide, socket_path(cfg->redis_address), plain, have_home ? home : NULL);
    spots_add_secret_file(&hide, socket_path(cfg->fcgi_socket), plain, have_home ? home : NULL);
    spots_add(&hide, getenv("CHATGW_STATE_DIR"), true);
    spots_add_list(&hide, cfg->runner_sandbox_hide, true);
    /* ... then everybody's projects and agent homes (this run's come back below). */
    for (size_t i = 0; i < cfg->n_project_roots; i++)
        spots_add(&hide, cfg->project_roots[i], false);
    spots_add(&hide, cfg->runner_homes, false);

    /* What the CLI needs to start, wherever it is installed. */
    keep_program(&keep, cli_argv[0]);
    char *interp = script_interpreter(cli_argv[0], sp->path_env);
    if (interp) {
        keep_program(&keep, interp);
        free(interp);
    }
    spots_add_list(&keep, cfg->runner_sandbox_bind, false);

    spots_add(&binds, sp->project, false);
    if (have_home)
        spots_add(&binds, home, false);
    if (hide.failed || keep.failed || binds.failed) {
        cgw_error_set(err, CGW_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < hide.n; i++) {
        if (hide.v[i].secret && strcmp(sp->project, hide.v[i].path) == 0) {
            cgw_error_set(err, CGW_ERR_INVALID,
                          "projectPath %s is a directory of chatgw's own and stays hidden from "
                          "the CLIs",
                          sp->project);
            goto out;
        }
    }
    if (hide.n > 1)
        qsort(hide.v, hide.n, sizeof *hide.v, spot_cmp);
    if (keep.n > 1)
        qsort(keep.v, keep.n, sizeof *keep.v, spot_cmp);

    strv_add(&a, cfg->runner_bwrap);
    for (size_t i = 0; base_args[i]; i++)
        strv_add(&a, base_args[i]);
    /* 1. Hide (an ancestor already hidden covers its descendants). Sorted, so an
     *    ancestor comes first. */
    for (size_t i = 0; i < hide.n; i++) {
        bool covered = false;
        for (size_t j = 0; j < i && !covered; j++)
            covered = hide.v[j].dir && within(hide.v[i].path, hide.v[j].path);
        if (!covered)
            emit_hide(&a, &hide.v[i]);
    }
    /* 2. Keep readable what the CLI needs and a hidden directory took away, then hide
     *    again what such a directory brought back. */
    for (size_t i = 0; i < keep.n; i++) {
        /* /tmp is a private tmpfs in every sandbox (base_args): a CLI installed below it
         * (a checkout in /tmp, a test's fixture) is taken away like a hidden one. */
        bool taken = in_any(&hide, keep.v[i].path) || within(keep.v[i].path, "/tmp");
        if (!taken || in_any(&binds, keep.v[i].path))
            continue; /* visible anyway, or the project or the home brings it back */
        strv_add(&a, "--ro-bind");
        strv_add(&a, keep.v[i].path);
        strv_add(&a, keep.v[i].path);
        log_debug("sandbox: %s stays readable", keep.v[i].path);
        rehide_inside(&a, &hide, keep.v[i].path);
    }
    /* 3. The agent home and the project, read-write (hiding again what lies in them);
     *    the project from the descriptor that was checked (sandbox_project_open), not
     *    from its path. */
    if (have_home) {
        strv_add(&a, "--bind");
        strv_add(&a, home);
        strv_add(&a, home);
        rehide_inside(&a, &hide, home);
    }
    char fdno[16];
    snprintf(fdno, sizeof fdno, "%d", SANDBOX_DIR_FD);
    strv_add(&a, "--bind-fd");
    strv_add(&a, fdno);
    strv_add(&a, sp->project);
    rehide_inside(&a, &hide, sp->project);
    /* 4. The attachments (below the private /tmp, or a hidden directory): read-only. */
    if (sp->attach_dir) {
        strv_add(&a, "--ro-bind");
        strv_add(&a, sp->attach_dir);
        strv_add(&a, sp->attach_dir);
    }
    strv_add(&a, "--chdir");
    strv_add(&a, sp->project);
    strv_add(&a, "--");
    for (size_t i = 0; cli_argv[i]; i++)
        strv_add(&a, cli_argv[i]);
    if (a.failed) {
        cgw_error_set(err, CGW_ERR_NOMEM, "out of memory");
        goto out;
    }
    out = a.v;
    a.v = NULL;
out:
    sandbox_argv_free(a.v);
    spots_free(&hide);
    spots_free(&keep);
    spots_free(&binds);
    return out;
}
