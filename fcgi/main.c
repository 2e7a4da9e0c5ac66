/* main.c: chatgw.fcgi: options, the listening socket, worker threads, signals. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <fcgiapp.h>

#include "config.h"
#include "core/feed.h"
#include "core/log.h"
#include "core/util.h"
#include "fcgi/adapter.h"
#include "fcgi/app.h"
#include "fcgi/hostq.h"
#include "fcgi/metrics.h"
#include "fcgi/poller.h"
#include "fcgi/reaper.h"
#include "fcgi/router.h"
#include "fcgi/worker.h"

extern char **environ;

#define EXIT_CONFIG 78 /* sysexits' EX_CONFIG: a configuration that must not run */

struct thread_arg {
    struct worker worker;
    int sock;
    pthread_t thread;
    /* The request this worker accepts into, for its whole life: a held request is
     * detached from it (adapter_detach), so the next accept reuses it. */
    FCGX_Request fr;
    atomic_bool serving; /* between accept and the answer: shutdown waits for it */
};

/* Serves one accepted request. Returns the park when the handler holds the request
 * (the caller hands fr to the poller), else NULL after the answer was written.
 * *read_all says whether the request's body was read to its end. */
static struct park *serve(struct worker *w, FCGX_Request *fr, bool *read_all)
{
    struct request req;
    struct response resp = {.status = 500};
    struct park *park = NULL;
    int64_t started_us = metrics_now_us();

    *read_all = false;
    if (adapter_read(fr, &w->app->cfg, &req) < 0) {
        response_error(&resp, CODE_INTERNAL_ERROR, NULL, "internal error");
    } else {
        *read_all = !req.body_too_large;
        req.started_us = started_us;
        log_context_set(req.request_id, NULL, NULL);
        router_dispatch(w, &req, &resp);
    }
    if (resp.park) {
        park = resp.park;
        if (log_enabled(LOG_LEVEL_DEBUG))
            log_info("%s %s -> held", req.method_name, req.path ? req.path : "?");
    } else {
        metrics_answer(w->app->metrics, req.route, resp.status, metrics_now_us() - started_us,
                       resp.body);
        if (adapter_write(fr, &w->app->cfg, &req, &resp) < 0)
            log_info("client went away before the answer to %s %s", req.method_name,
                     req.path ? req.path : "?");
        if (resp.status >= 500 || log_enabled(LOG_LEVEL_DEBUG))
            log_info("%s %s -> %d", req.method_name, req.path ? req.path : "?", resp.status);
    }
    response_clear(&resp);
    request_free(&req);
    log_context_clear();
    return park;
}

/* A failed accept: out of descriptors (EMFILE, ENFILE: held polls use one each), of
 * buffers or memory. None of it is the worker's fault and all of it
 * passes, so the worker never ends: it waits (10 ms doubling to 1 s, reset by the next
 * request) and tries again, and logs at most every 10 s how often it failed. */
struct backoff {
    int64_t delay_ms;
    int64_t logged_at; /* cgw_mono_ms of the last line, 0 = none yet */
    int64_t failures;  /* since that line */
};

#define BACKOFF_MIN_MS 10
#define BACKOFF_MAX_MS 1000
#define BACKOFF_LOG_EVERY_MS 10000

static void backoff_wait(struct backoff *b, int index, const char *what, int error)
{
    int64_t now = cgw_mono_ms();
    b->failures++;
    if (!b->logged_at || now - b->logged_at >= BACKOFF_LOG_EVERY_MS) {
        log_error("worker %d: %s: %s (%lld time%s; retrying)", index, what, strerror(error),
                  (long long)b->failures, b->failures == 1 ? "" : "s");
        b->logged_at = now;
        b->failures = 0;
    }
    b->delay_ms = b->delay_ms < BACKOFF_MIN_MS       ? BACKOFF_MIN_MS
                  : b->delay_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS
                                                     : b->delay_ms * 2;
    cgw_sleep_ms(b->delay_ms);
}

static void *worker_main(void *p)
{
    struct thread_arg *t = p;
    struct backoff bo = {0};

    for (;;) {
        int arc = FCGX_Accept_r(&t->fr);
        if (arc < 0) {
            /* libfcgi returns -errno; the request stays ready for the next accept. */
            int error = arc < -1 && arc > -4096 ? -arc : errno;
            if (error == EINTR)
                continue;
            backoff_wait(&bo, t->worker.index, "accept failed", error);
            continue;
        }
        bo.delay_ms = 0;
        atomic_store(&t->serving, true);
        bool read_all;
        struct park *park = serve(&t->worker, &t->fr, &read_all);
        if (park) {
            /* Only the connection and request id go on: libfcgi's buffers and the
             * parameters are freed here, and fr serves the next accept. */
            struct fcgi_held held;
            adapter_detach(&t->fr, &held);
            poller_park(t->worker.app->poller, &held, park); /* the poller owns both now */
        } else if (t->fr.keepConnection || !read_all) {
            /* The web server reuses the connection, or may still be sending a body too
             * large to read: libfcgi's close reads it away until the web server closes. */
            FCGX_Finish_r(&t->fr);
        } else {
            adapter_finish(&t->fr, true); /* no shutdown-and-wait for the web server's close */
        }
        atomic_store(&t->serving, false);
    }
    return NULL;
}

/* The listening socket a supervisor handed over, or -1. systemd socket activation passes
 * it as fd 3 (LISTEN_FDS=1, LISTEN_PID ours); spawn-fcgi and mod_fcgid pass it as fd 0,
 * the FastCGI convention (a socket with no peer). The LISTEN_* variables are removed so
 * the runners do not inherit them; the runners close every descriptor from 3 anyway. */
static int inherited_socket(const char **what)
{
    const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
    int64_t listen_pid = 0, listen_fds = 0;
    if (pid && fds && cgw_parse_int64(pid, 1, INT32_MAX, &listen_pid) == 0 &&
        cgw_parse_int64(fds, 1, 1024, &listen_fds) == 0 && listen_pid == (int64_t)getpid()) {
        unsetenv("LISTEN_PID");
        unsetenv("LISTEN_FDS");
        unsetenv("LISTEN_FDNAMES");
        if (listen_fds != 1)
            log_warn("systemd passed %lld sockets; serving the first", (long long)listen_fds);
        fcntl(3, F_SETFD, FD_CLOEXEC);
        *what = "fd 3 (systemd)";
        return 3;
    }
    struct sockaddr_storage peer;
    socklen_t len = sizeof peer;
    int type = 0;
    socklen_t tlen = sizeof type;
    if (getsockopt(0, SOL_SOCKET, SO_TYPE, &type, &tlen) == 0 && type == SOCK_STREAM &&
        getpeername(0, (struct sockaddr *)&peer, &len) < 0 && errno == ENOTCONN) {
        *what = "fd 0";
        return 0;
    }
    return -1;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: chatgw.fcgi [-c CONFIG] [-s SOCKET] [-t THREADS]\n"
            "  -c FILE     configuration file (default $CHATGW_CONFIG or %s)\n"
            "  -s SOCKET   listen on this unix socket path or :PORT (default: a socket\n"
            "              handed over by systemd, spawn-fcgi or mod_fcgid, else fcgi.socket)\n"
            "  -t THREADS  worker threads (default: fcgi.threads)\n"
            "  -R          print the route table (METHOD PATTERN per line) and exit\n"
            "  -h          this help;  -V  version\n",
            CGW_DEFAULT_CONFIG_PATH);
}

struct options {
    const char *config_path; /* NULL: $CHATGW_CONFIG or the default */
    const char *socket_path; /* NULL: handed over, or fcgi.socket */
    int64_t threads;         /* 0: fcgi.threads */
};

/* Parses the command line. Returns -1 to go on, else the exit status. */
static int parse_options(int argc, char **argv, struct options *o)
{
    int c;
    while ((c = getopt(argc, argv, "c:s:t:RhV")) != -1) {
        switch (c) {
        case 'c':
            o->config_path = optarg;
            break;
        case 's':
            o->socket_path = optarg;
            break;
        case 't':
            if (cgw_parse_int64(optarg, 1, 256, &o->threads) < 0) {
                fprintf(stderr, "chatgw.fcgi: -t wants a number from 1 to 256\n");
                return 2;
            }
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("chatgw.fcgi %s\n", PACKAGE_VERSION);
            return 0;
        case 'R': {
            const char *method, *pattern;
            for (size_t i = 0; router_route_at(i, &method, &pattern) == 0; i++)
                printf("%s %s\n", method, pattern);
            return 0;
        }
        default:
            usage(stderr);
            return 2;
        }
    }
    return -1;
}

/* The database is local: a missing or unmigratable one stops the start. Returns the
 * schema version, or -1 (logged). */
static int database_check(const struct config *cfg)
{
    struct store *st;
    struct cgw_error err;
    int version = 0;
    if (store_open(config_db_target(cfg), true, cfg->db_busy_timeout_ms, &st, &err) != CGW_OK ||
        store_migrate(st, &version, &err) != CGW_OK) {
        log_error("database %s: %s", cfg->db_url[0] ? "(db.url)" : cfg->db_path, err.text);
        return -1;
    }
    store_close(st);
    return version;
}

/* The listening socket: -s wins; then a socket the supervisor handed over (the web
 * server connects only to that one); then fcgi.socket. *path is the path the process
 * created (NULL when handed over), *what names it for the log. Returns it or -1
 * (logged). */
static int listen_socket(const struct config *cfg, const char **path, const char **what)
{
    int sock = *path ? -1 : inherited_socket(what);
    if (sock < 0 && !*path && cfg->fcgi_socket[0])
        *path = cfg->fcgi_socket;
    if (sock >= 0)
        return sock;
    if (!*path) {
        log_error("nothing to listen on: give -s or fcgi.socket, or start me from systemd "
                  "(chatgw.socket), spawn-fcgi or mod_fcgid");
        return -1;
    }
    *what = *path;
    long mode = 0;
    char *end = NULL;
    const char *m = cfg->fcgi_socket_mode;
    errno = 0;
    if (m && *m)
        mode = strtol(m, &end, 8);
    if (!m || !*m || *end || errno || mode < 0 || mode > 0777) {
        log_error("fcgi.socket_mode: \"%s\" is not an octal mode such as 0660", m ? m : "");
        return -1;
    }
    mode_t old = umask(077); /* nobody else in the moment before the chmod */
    /* A deep backlog: after a restart every client's long-poll comes back at once,
     * and a web server that finds the queue full fails those requests (capped by
     * net.core.somaxconn). */
    sock = FCGX_OpenSocket(*path, 4096);
    umask(old);
    if (sock < 0) {
        log_error("cannot listen on %s: %s", *path, strerror(errno));
        return -1;
    }
    /* A unix socket: the web server's group may connect (fcgi.socket_mode). */
    if (strchr(*path, ':') == NULL && chmod(*path, (mode_t)mode) < 0) {
        log_error("cannot set the mode of %s: %s", *path, strerror(errno));
        return -1;
    }
    return sock;
}

/* auth.trust_remote_user believes whatever REMOTE_USER the FastCGI peer sends, so the
 * peer must be the web server: a TCP listener reachable from other hosts would let
 * anyone on the network claim any user. Returns 0 when sock is a unix socket or bound
 * to a loopback address, else -1 (logged). */
static int trust_remote_user_check(const struct config *cfg, int sock, const char *what)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (!cfg->auth_trust_remote_user)
        return 0;
    if (getsockname(sock, (struct sockaddr *)&ss, &len) < 0) {
        log_error("auth.trust_remote_user: cannot tell what %s is bound to: %s", what,
                  strerror(errno));
        return -1;
    }
    if (ss.ss_family == AF_UNIX)
        return 0;
    if (ss.ss_family == AF_INET &&
        (ntohl(((struct sockaddr_in *)&ss)->sin_addr.s_addr) >> 24) == 127)
        return 0;
    if (ss.ss_family == AF_INET6 && IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *)&ss)->sin6_addr))
        return 0;
    log_error("auth.trust_remote_user is on, but %s is a TCP socket other hosts can reach: "
              "anyone who connects could claim any user. Listen on a unix socket or a loopback "
              "address, or turn the option off. Not starting.",
              what);
    return -1;
}

/* The process's counters, labelled with the route table. NULL when out of memory. */
static struct metrics *metrics_start(void)
{
    static const char *method[64], *pattern[64];
    size_t n = 0;
    while (n < 64 && router_route_at(n, &method[n], &pattern[n]) == 0)
        n++;
    return metrics_new(method, pattern, n);
}

/* Starts n worker threads accepting on sock. Returns the array (it stays reachable,
 * with each worker's request, until the process exits), or NULL (logged). */
static struct thread_arg *workers_start(const struct app *app, int sock, int64_t n)
{
    struct thread_arg *ta = calloc((size_t)n, sizeof *ta);
    if (!ta) {
        log_error("out of memory");
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        ta[i].worker.app = app;
        ta[i].worker.index = i;
        ta[i].sock = sock;
        FCGX_InitRequest(&ta[i].fr, sock, 0);
        if (pthread_create(&ta[i].thread, NULL, worker_main, &ta[i]) != 0) {
            log_error("cannot start worker thread %d", i);
            return NULL;
        }
    }
    return ta;
}

/* Requests being served (a send between its claim and the runner's spawn, say) get up
 * to 5 s to finish; workers blocked in accept() end with the process. Runs are
 * detached and go on. */
static void workers_drain(struct thread_arg *ta, int64_t n)
{
    for (int waited = 0; waited < 5000; waited += 10) {
        bool busy = false;
        for (int i = 0; i < n && !busy; i++)
            busy = atomic_load(&ta[i].serving);
        if (!busy)
            return;
        cgw_sleep_ms(10);
    }
}

int main(int argc, char **argv)
{
    static struct app app;
    struct options o = {0};
    struct cgw_error err;

    int rc = parse_options(argc, argv, &o);
    if (rc >= 0)
        return rc;
    if (config_load(&app.cfg, o.config_path, environ, &err) != CGW_OK) {
        fprintf(stderr, "chatgw.fcgi: %s\n", err.text);
        return 1;
    }
    enum log_level level = LOG_LEVEL_INFO;
    log_level_parse(app.cfg.log_level, &level);
    log_init("chatgw.fcgi", level);
    if (!o.threads)
        o.threads = app.cfg.fcgi_threads;
    app.config_path = o.config_path; /* NULL: runners find it as we did ($CHATGW_CONFIG) */
    bus_config_from(&app.cfg, &app.bus_cfg);
    if (!(app.feed_backlog = feed_backlog_new())) {
        log_error("out of memory");
        return 1;
    }
    int version = database_check(&app.cfg);
    if (version < 0)
        return 1;
    if (FCGX_Init() != 0) {
        log_error("FCGX_Init failed");
        return 1;
    }
    const char *listening = NULL;
    int sock = listen_socket(&app.cfg, &o.socket_path, &listening);
    if (sock < 0)
        return 1;
    if (trust_remote_user_check(&app.cfg, sock, listening) < 0)
        return EXIT_CONFIG;

    /* Only the main thread takes signals; workers never see EINTR storms. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    if (signal(SIGPIPE, SIG_IGN) != SIG_ERR)
        bus_sigpipe_ignored();

    /* The long-poll loop: one thread, started before the workers can park anything. */
    if (!(app.metrics = metrics_start())) {
        log_error("out of memory");
        return 1;
    }
    if (poller_start(&app.cfg, &app.bus_cfg, app.metrics, &app.poller, &err) != CGW_OK) {
        log_error("cannot start the long-poll loop: %s", err.text);
        return 1;
    }
    app.auth_cache = poller_auth_cache(app.poller); /* kept honest by its subscriber */
    struct thread_arg *ta = workers_start(&app, sock, o.threads);
    if (!ta)
        return 1;
    /* On main's stack, like the workers' (ta): reachable until the process exits. */
    struct worker reaper = {.app = &app, .index = -1};
    reaper_start(&reaper);
    /* Runners that other hosts' sends queue for this host (DESIGN §12). */
    struct hostq *hostq = hostq_start(&app);
    log_info("chatgw.fcgi %s ready: %lld threads on %s, database %s (schema %d), redis %s, "
             "host %s",
             PACKAGE_VERSION, (long long)o.threads, listening, app.cfg.db_path, version,
             app.cfg.redis_address, app.cfg.host_id);
    int sig = 0;
    sigwait(&set, &sig);
    log_info("signal %d: stopping (runs continue in their own processes)", sig);
    FCGX_ShutdownPending();
    if (o.socket_path && o.socket_path[0] == '/')
        unlink(o.socket_path);
    /* Held long-polls get their acks now rather than a dropped connection. */
    poller_stop(app.poller, 2000);
    workers_drain(ta, o.threads);
    /* A spawn request it has taken is started before the process goes. */
    hostq_stop(hostq, HOSTQ_WAIT_MS + app.cfg.redis_timeout_ms + 1000);
    _exit(0);
}
