/* main.c: chatgwctl's global options, command dispatcher and shared output helpers. */
#ifdef HAVE_CONFIG_H
#include "config.h" /* autoconf's, for PACKAGE_VERSION (not core/config.h) */
#endif

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "ctl/ctl.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "unknown"
#endif

#define PROGRAM "chatgwctl"

extern char **environ;

static const struct ctl_cmd commands[] = {
    {"init", "", "create the database, or migrate it to the latest schema", NULL, NULL, 0, 0,
     cmd_init},
    {"user", NULL, "manage users", ctl_user_cmds, NULL, 0, 0, NULL},
    {"token", NULL, "manage API tokens", ctl_token_cmds, NULL, 0, 0, NULL},
    {"session", NULL, "list sessions", ctl_session_cmds, NULL, 0, 0, NULL},
    {"runs", NULL, "list running runs, reap lost ones", ctl_runs_cmds, NULL, 0, 0, NULL},
    {"rules", NULL, "list and revoke users' remembered permission rules", ctl_rules_cmds, NULL, 0,
     0, NULL},
    {"doctor", "", "check configuration, database, Redis, project roots and provider CLIs", NULL,
     ctl_doctor_opts, 0, 0, cmd_doctor},
    {"chat", "[PROMPT...|-]", "send a prompt over the HTTP API and stream the answer", NULL,
     ctl_chat_opts, 0, 100000, cmd_chat},
    {NULL, NULL, NULL, NULL, NULL, 0, 0, NULL},
};

/* ---- errors -------------------------------------------------------------- */

static const int exit_for_err[CGW_ERR__COUNT] = {
    [CGW_OK] = CTL_EXIT_OK,
    [CGW_ERR_INVALID] = CTL_EXIT_USAGE,
    [CGW_ERR_NOT_FOUND] = CTL_EXIT_NOT_FOUND,
    [CGW_ERR_CONFLICT] = CTL_EXIT_CONFLICT,
};

int ctl_exit_for(enum cgw_err code)
{
    if ((unsigned)code >= CGW_ERR__COUNT)
        return CTL_EXIT_FAILURE;
    if (code != CGW_OK && exit_for_err[code] == CTL_EXIT_OK)
        return CTL_EXIT_FAILURE;
    return exit_for_err[code];
}

static void vmessage(const struct ctl *ctl, const char *fmt, va_list ap)
{
    if (ctl->command[0])
        fprintf(stderr, PROGRAM " %s: ", ctl->command);
    else
        fputs(PROGRAM ": ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

int ctl_fail(struct ctl *ctl, enum cgw_err code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmessage(ctl, fmt, ap);
    va_end(ap);
    return ctl_exit_for(code);
}

int ctl_fail_err(struct ctl *ctl, const struct cgw_error *err)
{
    return ctl_fail(ctl, err->code, "%s", err->text[0] ? err->text : cgw_err_name(err->code));
}

int ctl_usage_error(struct ctl *ctl, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmessage(ctl, fmt, ap);
    va_end(ap);
    fprintf(stderr, "Try '" PROGRAM "%s%s --help'.\n", ctl->command[0] ? " " : "", ctl->command);
    return CTL_EXIT_USAGE;
}

int ctl_check_user_name(struct ctl *ctl, const char *name)
{
    if (store_user_name_valid(name))
        return CTL_EXIT_OK;
    return ctl_usage_error(ctl,
                           "invalid user name '%s': 1 to %d characters of A-Z a-z 0-9 . _ -, "
                           "starting with a letter or digit",
                           name, STORE_NAME_MAX);
}

/* ---- configuration, store, bus --------------------------------------------- */

/* The file config_load reads: -c, else the last non-empty $CHATGW_CONFIG, else the default. */
static const char *config_file_name(const struct ctl *ctl)
{
    const char *file = NULL;
    if (ctl->config_arg)
        return ctl->config_arg;
    for (char *const *e = ctl->envp; e && *e; e++) {
        if (strncmp(*e, "CHATGW_CONFIG=", 14) == 0 && (*e)[14])
            file = *e + 14;
    }
    return file ? file : CGW_DEFAULT_CONFIG_PATH;
}

enum cgw_err ctl_config_load(struct ctl *ctl)
{
    if (ctl->config_loaded)
        return CGW_OK;
    snprintf(ctl->config_file, sizeof ctl->config_file, "%s", config_file_name(ctl));
    enum cgw_err rc = config_load(&ctl->cfg, ctl->config_arg, ctl->envp, &ctl->config_err);
    if (rc != CGW_OK)
        return rc;
    struct stat sb;
    ctl->config_file_found = stat(ctl->config_file, &sb) == 0;
    ctl->config_loaded = true;

    enum log_level level = LOG_LEVEL_INFO;
    if (log_level_parse(ctl->cfg.log_level, &level) < 0)
        level = LOG_LEVEL_INFO;
    log_init(PROGRAM, level);
    return CGW_OK;
}

int ctl_config(struct ctl *ctl)
{
    if (ctl_config_load(ctl) == CGW_OK)
        return CTL_EXIT_OK;
    ctl_fail(ctl, CGW_ERR_INVALID, "configuration: %s", ctl->config_err.text);
    return CTL_EXIT_FAILURE;
}

int ctl_store_open(struct ctl *ctl, struct store **st)
{
    struct cgw_error err;
    struct stat sb;
    int rc = ctl_config(ctl);
    if (rc != CTL_EXIT_OK)
        return rc;

    /* With db.url the messages name "db.url", never the URI (it may hold a password). */
    bool pg = ctl->cfg.db_url[0] != '\0';
    const char *path = pg ? "(db.url)" : ctl->cfg.db_path;
    if (!pg && stat(path, &sb) < 0 && errno == ENOENT)
        return ctl_fail(ctl, CGW_ERR_BACKEND,
                        "database %s does not exist: run '" PROGRAM " init' first", path);
    if (store_open(config_db_target(&ctl->cfg), false, ctl->cfg.db_busy_timeout_ms, st, &err) !=
        CGW_OK)
        return ctl_fail(ctl, CGW_ERR_BACKEND, "database %s: %s", path, err.text);

    int version = 0, latest = store_schema_latest();
    if (store_schema_version(*st, &version, &err) != CGW_OK) {
        rc = ctl_fail(ctl, CGW_ERR_BACKEND, "database %s: %s", path, err.text);
    } else if (version < latest) {
        rc = ctl_fail(ctl, CGW_ERR_BACKEND,
                      "database %s is at schema version %d, this " PROGRAM
                      " needs %d: run '" PROGRAM " init'",
                      path, version, latest);
    } else if (version > latest) {
        rc = ctl_fail(ctl, CGW_ERR_BACKEND,
                      "database %s is at schema version %d, newer than this " PROGRAM
                      " knows (%d): upgrade chatgw",
                      path, version, latest);
    }
    if (rc != CTL_EXIT_OK) {
        store_close(*st);
        *st = NULL;
    }
    return rc;
}

void ctl_bus_config(const struct ctl *ctl, struct bus_config *bc)
{
    bus_config_from(&ctl->cfg, bc);
}

/* ---- output ---------------------------------------------------------------- */

char *ctl_time(int64_t ms, char buf[CGW_ISO_TIME_LEN + 1])
{
    if (ms <= 0) {
        buf[0] = '-';
        buf[1] = '\0';
        return buf;
    }
    return cgw_time_iso(ms, buf);
}

json_t *ctl_json_time(int64_t ms)
{
    char buf[CGW_ISO_TIME_LEN + 1];
    if (ms <= 0)
        return json_null();
    return json_string(cgw_time_iso(ms, buf));
}

int ctl_json_print(struct ctl *ctl, json_t *root)
{
    if (!root)
        return ctl_fail(ctl, CGW_ERR_NOMEM, "out of memory");
    int rc = json_dumpf(root, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (rc < 0 || fputc('\n', stdout) == EOF)
        return ctl_fail(ctl, CGW_ERR_IO, "cannot write the output");
    return CTL_EXIT_OK;
}

struct ctl_table {
    size_t ncols, nrows, cap;
    char **cells; /* (nrows + 1) * ncols, row 0 is the header */
};

/* A printable copy: control bytes become '?', an empty cell "-". */
static char *cell_dup(const char *s)
{
    if (!s || !*s)
        s = "-";
    char *c = strdup(s);
    for (unsigned char *p = (unsigned char *)c; p && *p; p++) {
        if (*p < 0x20 || *p == 0x7f)
            *p = '?';
    }
    return c;
}

/* Display width in characters, counting UTF-8 sequences as one. */
static size_t cell_width(const char *s)
{
    size_t w = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        w += (*p & 0xc0) != 0x80;
    return w;
}

struct ctl_table *ctl_table_new(size_t ncols, const char *const *headers)
{
    struct ctl_table *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->ncols = ncols;
    if (ctl_table_add(t, headers) < 0) {
        ctl_table_free(t);
        return NULL;
    }
    t->nrows = 0; /* the header is row 0, not counted */
    return t;
}

int ctl_table_add(struct ctl_table *t, const char *const *cells)
{
    size_t used = t->cells ? (t->nrows + 1) * t->ncols : 0;
    if (used + t->ncols > t->cap) {
        size_t cap = t->cap ? t->cap * 2 : t->ncols * 16;
        char **grown = realloc(t->cells, cap * sizeof *grown);
        if (!grown)
            return -1;
        t->cells = grown;
        t->cap = cap;
    }
    for (size_t i = 0; i < t->ncols; i++) {
        t->cells[used + i] = cell_dup(cells[i]);
        if (!t->cells[used + i]) {
            while (i-- > 0)
                free(t->cells[used + i]);
            return -1;
        }
    }
    if (used > 0)
        t->nrows++;
    return 0;
}

void ctl_table_print(const struct ctl_table *t, FILE *out)
{
    size_t width[16] = {0};
    size_t ncols = t->ncols < 16 ? t->ncols : 16;
    for (size_t r = 0; r <= t->nrows; r++) {
        for (size_t c = 0; c < ncols; c++) {
            size_t w = cell_width(t->cells[r * t->ncols + c]);
            if (w > width[c])
                width[c] = w;
        }
    }
    for (size_t r = 0; r <= t->nrows; r++) {
        for (size_t c = 0; c < ncols; c++) {
            const char *s = t->cells[r * t->ncols + c];
            if (c + 1 == ncols) {
                fprintf(out, "%s\n", s);
            } else {
                fprintf(out, "%s%*s", s, (int)(width[c] - cell_width(s) + 2), "");
            }
        }
    }
}

struct ctl_table *ctl_table_row(struct ctl_table *t, const char *const *cells)
{
    if (t && ctl_table_add(t, cells) < 0) {
        ctl_table_free(t);
        return NULL;
    }
    return t;
}

int ctl_table_finish(struct ctl *ctl, struct ctl_table *t)
{
    if (!t)
        return ctl_fail(ctl, CGW_ERR_NOMEM, "out of memory");
    ctl_table_print(t, stdout);
    ctl_table_free(t);
    return CTL_EXIT_OK;
}

void ctl_table_free(struct ctl_table *t)
{
    if (!t)
        return;
    size_t n = t->cells ? (t->nrows + 1) * t->ncols : 0;
    for (size_t i = 0; i < n; i++)
        free(t->cells[i]);
    free(t->cells);
    free(t);
}

/* ---- help ------------------------------------------------------------------ */

static void print_synopsis(FILE *out, const char *prefix, const struct ctl_cmd *c)
{
    fprintf(out, "%s%s%s", prefix, prefix[0] ? " " : "", c->name);
    for (const struct ctl_opt *o = c->opts; o && o->name; o++) {
        if (o->arg)
            fprintf(out, " [--%s %s]", o->name, o->arg);
        else
            fprintf(out, " [--%s]", o->name);
    }
    if (c->args && c->args[0])
        fprintf(out, " %s", c->args);
}

/* Lists every leaf under table, one per line, with its summary. */
static void print_commands(FILE *out, const char *prefix, const struct ctl_cmd *table)
{
    for (const struct ctl_cmd *c = table; c->name; c++) {
        if (c->sub) {
            char sub[64];
            snprintf(sub, sizeof sub, "%s%s%s", prefix, prefix[0] ? " " : "", c->name);
            print_commands(out, sub, c->sub);
            continue;
        }
        fputs("  ", out);
        print_synopsis(out, prefix, c);
        fprintf(out, "\n      %s\n", c->summary);
    }
}

static void print_main_help(FILE *out)
{
    fputs("Usage: " PROGRAM " [-c FILE] COMMAND [ARGS...]\n"
          "       " PROGRAM " COMMAND --help\n"
          "\n"
          "Administer chatgw: database, users, API tokens, sessions, health checks;\n"
          "chat with a session over the HTTP API ($CHATGW_URL, $CHATGW_TOKEN).\n"
          "\n"
          "Options:\n"
          "  -c, --config FILE  configuration file (default: $CHATGW_CONFIG, "
          "else " CGW_DEFAULT_CONFIG_PATH ")\n"
          "  -h, --help         show this help\n"
          "  -V, --version      show the version\n"
          "\n"
          "Commands:\n",
          out);
    print_commands(out, "", commands);
    fputs("\nExit status: 0 ok, 1 failure, 2 usage error, 3 not found, 4 conflict;\n"
          "chat: 0 success, 1 the run failed, 2 usage, 3 HTTP error, 130 aborted.\n"
          "See chatgwctl(8) and chatgw.conf(5).\n",
          out);
}

static void print_group_help(FILE *out, const char *prefix, const struct ctl_cmd *table)
{
    fprintf(out, "Usage: " PROGRAM " %s COMMAND [ARGS...]\n\nCommands:\n", prefix);
    print_commands(out, prefix, table);
}

static void print_leaf_help(FILE *out, const char *prefix, const struct ctl_cmd *c)
{
    fputs("Usage: " PROGRAM " ", out);
    print_synopsis(out, prefix, c);
    fprintf(out, "\n\n%s\n\nOptions:\n", c->summary);
    for (const struct ctl_opt *o = c->opts; o && o->name; o++) {
        char left[64];
        if (o->short_name)
            snprintf(left, sizeof left, "-%c, --%s%s%s", o->short_name, o->name, o->arg ? " " : "",
                     o->arg ? o->arg : "");
        else
            snprintf(left, sizeof left, "    --%s%s%s", o->name, o->arg ? " " : "",
                     o->arg ? o->arg : "");
        fprintf(out, "  %-22s %s\n", left, o->help);
    }
    fprintf(out, "  %-22s %s\n", "-h, --help", "show this help");
}

/* ---- dispatch -------------------------------------------------------------- */

#define OPT_LONG_ONLY 0x100

/* Parses a leaf's options and arguments and runs it. argv[0] is the command name. */
static int run_leaf(struct ctl *ctl, const char *group, const struct ctl_cmd *c, int argc,
                    char **argv)
{
    struct option longopts[CTL_MAX_OPTS + 2];
    char shortopts[2 * CTL_MAX_OPTS + 4] = ":h";
    size_t nopts = 0, sl = strlen(shortopts);
    struct ctl_args a;
    memset(&a, 0, sizeof a);

    for (const struct ctl_opt *o = c->opts; o && o->name; o++) {
        if (nopts == CTL_MAX_OPTS)
            return ctl_fail(ctl, CGW_ERR_INTERNAL, "too many options");
        longopts[nopts] =
            (struct option){o->name, o->arg ? required_argument : no_argument, NULL,
                            o->short_name ? o->short_name : (int)(OPT_LONG_ONLY + nopts)};
        if (o->short_name) {
            shortopts[sl++] = (char)o->short_name;
            if (o->arg)
                shortopts[sl++] = ':';
            shortopts[sl] = '\0';
        }
        nopts++;
    }
    longopts[nopts++] = (struct option){"help", no_argument, NULL, 'h'};
    longopts[nopts] = (struct option){NULL, 0, NULL, 0};

    /* Options may also follow the arguments ("token create alice --label x"):
     * getopt_long permutes, up to a "--". */
    opterr = 0;
    optind = 0;
    for (;;) {
        int ch = getopt_long(argc, argv, shortopts, longopts, NULL);
        if (ch == -1)
            break;
        if (ch == 'h') {
            print_leaf_help(stdout, group, c);
            return CTL_EXIT_OK;
        }
        if (ch == '?' || ch == ':') {
            const char *what = argv[optind - 1];
            char shortname[3] = {'-', (char)optopt, '\0'};
            if (optopt && optopt < OPT_LONG_ONLY && strncmp(what, "--", 2) != 0)
                what = shortname;
            return ctl_usage_error(
                ctl, ch == '?' ? "unknown option '%s'" : "option '%s' needs an argument", what);
        }
        size_t i = 0;
        for (const struct ctl_opt *o = c->opts; o && o->name; o++, i++) {
            if (ch != (o->short_name ? o->short_name : (int)(OPT_LONG_ONLY + i)))
                continue;
            a.opt[i] = o->arg ? optarg : "";
            if (a.count[i] < CTL_MAX_REPEAT)
                a.all[i][a.count[i]] = a.opt[i];
            a.count[i]++;
        }
    }
    a.argc = argc - optind;
    a.argv = argv + optind;
    if (a.argc < c->min_args)
        return ctl_usage_error(ctl, "missing argument%s%s", c->args[0] ? ": " : "", c->args);
    if (a.argc > c->max_args)
        return ctl_usage_error(ctl, "unexpected argument '%s'", a.argv[c->max_args]);
    return c->run(ctl, &a);
}

static int dispatch(struct ctl *ctl, const struct ctl_cmd *table, int argc, char **argv)
{
    const char *prefix = ctl->command;
    if (argc < 1) {
        if (!prefix[0]) {
            print_main_help(stderr);
            return CTL_EXIT_USAGE;
        }
        return ctl_usage_error(ctl, "missing command");
    }
    if (strcmp(argv[0], "-h") == 0 || strcmp(argv[0], "--help") == 0 ||
        strcmp(argv[0], "help") == 0) {
        if (prefix[0])
            print_group_help(stdout, prefix, table);
        else
            print_main_help(stdout);
        return CTL_EXIT_OK;
    }
    const struct ctl_cmd *c = table;
    while (c->name && strcmp(c->name, argv[0]) != 0)
        c++;
    if (!c->name)
        return ctl_usage_error(ctl, "unknown command '%s'", argv[0]);

    char group[sizeof ctl->command];
    snprintf(group, sizeof group, "%s", ctl->command);
    int n =
        snprintf(ctl->command, sizeof ctl->command, "%s%s%s", group, group[0] ? " " : "", c->name);
    if (n < 0 || (size_t)n >= sizeof ctl->command)
        return ctl_fail(ctl, CGW_ERR_INTERNAL, "command path too long");
    if (c->sub)
        return dispatch(ctl, c->sub, argc - 1, argv + 1);
    return run_leaf(ctl, group, c, argc, argv);
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    struct ctl ctl = {.envp = environ};
    int rc;

    log_init(PROGRAM, LOG_LEVEL_WARN);
    opterr = 0;
    for (;;) {
        int ch = getopt_long(argc, argv, "+:c:hV", longopts, NULL);
        if (ch == -1)
            break;
        switch (ch) {
        case 'c':
            ctl.config_arg = optarg;
            break;
        case 'h':
            print_main_help(stdout);
            return CTL_EXIT_OK;
        case 'V':
            printf(PROGRAM " (chatgw) %s\n", PACKAGE_VERSION);
            return CTL_EXIT_OK;
        case ':':
            return ctl_usage_error(&ctl, "option '%s' needs an argument", argv[optind - 1]);
        default:
            return ctl_usage_error(&ctl, "unknown option '%s'", argv[optind - 1]);
        }
    }

    rc = dispatch(&ctl, commands, argc - optind, argv + optind);

    if (ctl.config_loaded)
        config_free(&ctl.cfg);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        ctl.command[0] = '\0';
        rc = ctl_fail(&ctl, CGW_ERR_IO, "write error on standard output: %s", strerror(errno));
    }
    return rc;
}
