/* main.c: chatgw-runner's options, configuration, logging and process set-up. */
#ifdef HAVE_CONFIG_H
#include "config.h" /* autoconf's, for PACKAGE_VERSION (not core/config.h) */
#endif

#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/bus.h"
#include "core/config.h"
#include "core/log.h"
#include "core/util.h"
#include "runner/run.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "unknown"
#endif

#define PROGRAM "chatgw-runner"

extern char **environ;

static void usage(FILE *f)
{
    fputs("Usage: " PROGRAM " [-c CONFIG] SESSION_ID RUN_ID\n"
          "Runs one claimed run of a chatgw session: starts the provider CLI, publishes\n"
          "its events, obeys abort, answers permission requests, publishes the run's\n"
          "complete. Started detached by chatgw.fcgi; the prompt comes from Redis.\n"
          "\n"
          "  -c, --config FILE  configuration file (\"\" = $CHATGW_CONFIG or the default)\n"
          "  -h, --help         show this help\n"
          "  -V, --version      show the version\n",
          f);
}

/* The runner may be started with stdio closed; pipes must never land on 0-2. */
static int open_std_fds(void)
{
    for (int fd = 0; fd < 3; fd++) {
        if (fcntl(fd, F_GETFD) >= 0)
            continue;
        int n = open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
        if (n < 0)
            return -1;
        if (n != fd) {
            /* open returns the lowest free descriptor, which is fd. */
            close(n);
            return -1;
        }
    }
    return 0;
}

/* Ids become parts of Redis keys: reject anything odd before touching anything. */
static bool id_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= CGW_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.' || c == ':'))
            return false;
    }
    return true;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    const char *config_file = NULL;
    struct cgw_error err;
    struct config cfg;
    int opt;

    while ((opt = getopt_long(argc, argv, "+c:hV", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            config_file = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf(PROGRAM " (chatgw) %s\n", PACKAGE_VERSION);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (argc - optind != 2) {
        fputs(PROGRAM ": expected SESSION_ID and RUN_ID\n", stderr);
        usage(stderr);
        return 2;
    }
    const char *session_id = argv[optind], *run_id = argv[optind + 1];
    if (!id_ok(session_id) || !id_ok(run_id)) {
        fputs(PROGRAM ": invalid session or run id\n", stderr);
        return 2;
    }
    if (open_std_fds() < 0) {
        fputs(PROGRAM ": cannot open /dev/null\n", stderr);
        return 1;
    }

    if (config_load(&cfg, config_file && *config_file ? config_file : NULL, environ, &err) !=
        CGW_OK) {
        fprintf(stderr, PROGRAM ": configuration: %s\n", err.text);
        return 1;
    }
    enum log_level level = LOG_LEVEL_INFO;
    if (log_level_parse(cfg.log_level, &level) < 0)
        level = LOG_LEVEL_INFO;
    log_init(PROGRAM, level);
    log_context_set(NULL, run_id, session_id);

    /* Writes to a CLI that went away must fail with EPIPE, not kill the runner. */
    if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
        log_warn("cannot ignore SIGPIPE");
    else
        bus_sigpipe_ignored();

    int status =
        runner_run(&cfg, config_file && *config_file ? config_file : NULL, session_id, run_id);
    log_context_clear();
    config_free(&cfg);
    return status;
}
