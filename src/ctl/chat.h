/* chat.h: what the files of `chatgwctl chat` share: its state, rendering and permission rules.
 *
 * cmd_chat.c  options, session, send, the long-poll loop, Ctrl-C and abort, exit status
 * chat_out.c  one event to the terminal: assistant text on stdout, the rest on stderr,
 *             or NDJSON with --json
 * chat_perm.c deciding a permission request: --allow/--deny rules, --allow-all/--deny-all,
 *             a prompt on /dev/tty, or deny
 * http_client.c the HTTP (libcurl) under all of it
 */
#ifndef CGW_CTL_CHAT_H
#define CGW_CTL_CHAT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Exit status of chatgwctl chat (chatgwctl(8)). */
enum chat_exit {
    CHAT_EXIT_SUCCESS = 0, /* the run's complete says success */
    CHAT_EXIT_FAILED = 1,  /* the run failed */
    CHAT_EXIT_USAGE = 2,   /* bad command line, CHATGW_URL missing */
    CHAT_EXIT_HTTP = 3,    /* HTTP error answer or transport failure */
    CHAT_EXIT_ABORTED = 130,
};

/* The most --allow (or --deny) rules. */
#define CHAT_MAX_RULES 16

/* How permission requests are answered, from the command line. */
struct chat_policy {
    const char *allow[CHAT_MAX_RULES], *deny[CHAT_MAX_RULES]; /* borrowed from argv */
    size_t nallow, ndeny;
    bool allow_all, deny_all;
};

/* What the output has shown so far (chat_out.c). */
struct chat_out {
    bool json;      /* --json: NDJSON events on stdout */
    bool out_tty;   /* stdout is a terminal: control characters are neutralized */
    bool err_tty;   /* stderr is a terminal */
    bool midline;   /* stdout's last byte is not a newline */
    char *streamed; /* stream_delta text since the last assistant text (capped) */
    size_t streamed_len, streamed_cap;
    bool streamed_over; /* more was streamed than the cap kept */
};

/* The cap on the stream_delta text kept to compare with the final text. */
#define CHAT_STREAM_KEEP (4u << 20)

/* Shows one event (borrowed). Returns 0, or -1 when stdout cannot be written. */
int chat_out_event(struct chat_out *o, const json_t *ev);

/* Prints a line on stderr ("chatgwctl chat: ..."), ending stdout's line first when both
 * are one terminal. */
void chat_out_note(struct chat_out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Ends stdout's line if the text shown so far did not; frees what o holds. */
void chat_out_finish(struct chat_out *o);

/* "Bash(ls -l)" for a Bash request, "Read(/etc/hosts)" for a tool with a file_path,
 * else "Tool(<input as JSON>)", into buf (cut to cap, control characters as '?'). */
void chat_tool_label(const char *tool, const json_t *input, char *buf, size_t cap);

/* The answer to a permission request. */
enum chat_answer {
    CHAT_DENY,
    CHAT_ALLOW,
    CHAT_ALLOW_ALWAYS, /* allow and remember the exact rule on the server */
    CHAT_NO_ANSWER,    /* the prompt was interrupted (Ctrl-C): answer nothing */
};

/* Whether rule ("Bash", "Bash(ls -l)", "Bash(git:*)", "Read(/path)") covers the request
 * labelled label (chat_tool_label) of tool with command (Bash's, or NULL). A prefix rule
 * never covers a command line with ; & | ` $( < > or a newline. */
bool chat_rule_matches(const char *rule, const char *tool, const char *command, const char *label);

/* Decides a permission request: a --deny rule, then an --allow rule, then --deny-all,
 * --allow-all, then a prompt on /dev/tty when there is one ("Allow Bash(ls)?
 * [y/N/a(lways)]"), else deny. *why gets a static text for the deny lines. */
enum chat_answer chat_perm_decide(const struct chat_policy *p, const char *tool,
                                  const json_t *input, const char **why);

#endif
