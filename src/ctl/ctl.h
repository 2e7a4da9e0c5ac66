/* ctl.h: what chatgwctl's command files share: context, command table, output helpers.
 *
 * main.c parses the global options, walks the command table (groups such as
 * "user" hold a table of their own), parses the leaf command's options from its
 * ctl_opt table and calls its run function. Each cmd_*.c file defines one group.
 * Configuration, the store and the bus are opened on demand by the commands
 * through ctl_config/ctl_store_open/ctl_bus_open, so `--help` and usage errors
 * never need a working configuration.
 */
#ifndef CGW_CTL_H
#define CGW_CTL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/bus.h"
#include "core/config.h"
#include "core/err.h"
#include "core/store.h"
#include "core/util.h"

/* Exit status of chatgwctl (documented in chatgwctl(8)). */
enum ctl_exit {
    CTL_EXIT_OK = 0,
    CTL_EXIT_FAILURE = 1,   /* runtime or backend failure; doctor: a required check failed */
    CTL_EXIT_USAGE = 2,     /* bad command line or invalid argument */
    CTL_EXIT_NOT_FOUND = 3, /* no such user or token */
    CTL_EXIT_CONFLICT = 4,  /* already exists, or the state forbids it (disabled user) */
};

#define CTL_MAX_OPTS 16
#define CTL_MAX_REPEAT 32 /* values kept of an option given several times */

/* The process-wide context, passed to every command. */
struct ctl {
    char *const *envp;      /* the environment (borrowed) */
    const char *config_arg; /* -c FILE, or NULL */
    char command[64];       /* "user add", for messages */

    /* Set by ctl_config. */
    bool config_loaded;
    struct config cfg;
    char config_file[4096]; /* the file read, or the default that was looked for */
    bool config_file_found; /* false: defaults and environment only */
    struct cgw_error config_err;
};

/* One option of a leaf command (besides -h/--help, which every command has). */
struct ctl_opt {
    const char *name; /* long name without "--" */
    int short_name;   /* 0: long form only */
    const char *arg;  /* argument name shown in help; NULL: a flag */
    const char *help; /* one line */
};

/* What a leaf command gets: opt[i] is the value of its opts[i] (a flag given
 * reads ""), or NULL when absent (the last one when given several times: all[i]
 * holds the first CTL_MAX_REPEAT values, count[i] how many were given); then the
 * positional arguments. */
struct ctl_args {
    const char *opt[CTL_MAX_OPTS];
    const char *all[CTL_MAX_OPTS][CTL_MAX_REPEAT];
    int count[CTL_MAX_OPTS];
    int argc;
    char **argv;
};

/* A row of a command table; a table ends with a row whose name is NULL.
 * A group has sub set; a leaf has run. */
struct ctl_cmd {
    const char *name;
    const char *args;    /* positional arguments for the synopsis, "" for none */
    const char *summary; /* one line */
    const struct ctl_cmd *sub;
    const struct ctl_opt *opts; /* NULL-name terminated, or NULL */
    int min_args, max_args;
    int (*run)(struct ctl *ctl, const struct ctl_args *a);
};

/* The command groups, one per file. */
extern const struct ctl_cmd ctl_user_cmds[];    /* cmd_user.c */
extern const struct ctl_cmd ctl_token_cmds[];   /* cmd_token.c */
extern const struct ctl_cmd ctl_session_cmds[]; /* cmd_session.c */
extern const struct ctl_cmd ctl_runs_cmds[];    /* cmd_runs.c */
extern const struct ctl_cmd ctl_rules_cmds[];   /* cmd_rules.c */

/* Leaf commands without a group. */
int cmd_init(struct ctl *ctl, const struct ctl_args *a);   /* cmd_init.c */
int cmd_doctor(struct ctl *ctl, const struct ctl_args *a); /* cmd_doctor.c */
extern const struct ctl_opt ctl_doctor_opts[];             /* cmd_doctor.c */
int cmd_chat(struct ctl *ctl, const struct ctl_args *a);   /* cmd_chat.c */
extern const struct ctl_opt ctl_chat_opts[];               /* cmd_chat.c */

/* ---- helpers (main.c) ---------------------------------------------------- */

/* The exit status for an error code: INVALID 2, NOT_FOUND 3, CONFLICT 4, else 1. */
int ctl_exit_for(enum cgw_err code);

/* Prints "chatgwctl <command>: <text>" on stderr and returns ctl_exit_for(code). */
int ctl_fail(struct ctl *ctl, enum cgw_err code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Like ctl_fail with err's code and text. */
int ctl_fail_err(struct ctl *ctl, const struct cgw_error *err);

/* Prints the message and a hint to --help on stderr; returns CTL_EXIT_USAGE. */
int ctl_usage_error(struct ctl *ctl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Returns CTL_EXIT_OK for a valid user name, else prints why and returns
 * CTL_EXIT_USAGE (a name that cannot exist is a usage error for every command). */
int ctl_check_user_name(struct ctl *ctl, const char *name);

/* Loads the configuration once (-c FILE, else $CHATGW_CONFIG, else the default
 * file, then CHATGW_* variables) and sets the log level. Returns CGW_OK, or the
 * error with its text in ctl->config_err; prints nothing. */
enum cgw_err ctl_config_load(struct ctl *ctl);

/* ctl_config_load for commands: returns CTL_EXIT_OK, or prints the error and
 * returns CTL_EXIT_FAILURE. */
int ctl_config(struct ctl *ctl);

/* Opens the configured database for a command that needs it migrated: a missing
 * file or an old schema is an error telling to run `chatgwctl init`. On
 * CTL_EXIT_OK *st is a new handle (store_close); otherwise the error is printed. */
int ctl_store_open(struct ctl *ctl, struct store **st);

/* Fills a bus_config from the configuration (strings borrowed from ctl->cfg). */
void ctl_bus_config(const struct ctl *ctl, struct bus_config *bc);

/* After a revocation in the store (a token revoked, a user disabled): tells every
 * running chatgw.fcgi through Redis to forget its cached token checks
 * (bus_notify_auth_revoked). When Redis cannot be reached it warns on stderr: cached
 * checks then end within AUTH_CACHE_MAX_AGE_MS. Defined in cmd_token.c. */
void ctl_auth_revoked(struct ctl *ctl);

/* ISO-8601 time of ms into buf, or "-" when ms is 0. Returns buf. */
char *ctl_time(int64_t ms, char buf[CGW_ISO_TIME_LEN + 1]);

/* ISO-8601 time as a JSON string, or JSON null when ms is 0 (new reference). */
json_t *ctl_json_time(int64_t ms);

/* Prints root (takes ownership; NULL means memory ran out) indented on stdout.
 * Returns an exit status. */
int ctl_json_print(struct ctl *ctl, json_t *root);

/* A text table with aligned columns. Cells are copied; control characters are
 * shown as '?' and empty cells as '-', so that each row is one line of words. */
struct ctl_table;
struct ctl_table *ctl_table_new(size_t ncols, const char *const *headers);
/* Adds a row of ncols cells. Returns 0, or -1 when memory ran out. */
int ctl_table_add(struct ctl_table *t, const char *const *cells);
/* Adds a row to t, for a loop that builds a table: returns t, or NULL after freeing t
 * when memory ran out (t NULL: NULL). */
struct ctl_table *ctl_table_row(struct ctl_table *t, const char *const *cells);
/* Prints the header and the rows to out. */
void ctl_table_print(const struct ctl_table *t, FILE *out);
void ctl_table_free(struct ctl_table *t);
/* The end of a listing: prints t on stdout and frees it (CTL_EXIT_OK), or reports that
 * memory ran out when t is NULL. Returns the exit status. */
int ctl_table_finish(struct ctl *ctl, struct ctl_table *t);

#endif
