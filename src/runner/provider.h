/* provider.h: the interface between the run supervisor and one provider CLI adapter.
 *
 * An adapter (one file in providers/) says how to start its CLI (argv, environment
 * additions, the first bytes on its stdin), turns each line of the CLI's stdout into
 * normalized events (event.h) and control items (native session id, permission
 * requests, end of turn), and writes the CLI's side of interrupts and permission
 * answers. Adapters never do I/O: the supervisor (run.c) owns the process, its
 * pipes, the bus and the store, and writes what an adapter appends to a runner_buf
 * to the CLI's stdin.
 *
 * Adding a provider is one row in core/provider_list.h and one file: providers/<name>.c
 * defines `const struct runner_provider <name>_provider`, declared below and put in the
 * table of provider.c, both made from the rows (doc/internals.md, "Adding a provider").
 *
 * Also here: the run request (the JSON fcgi stores with the claim, doc/internals.md)
 * decoded into a struct, and the small containers adapters fill.
 */
#ifndef CGW_RUNNER_PROVIDER_H
#define CGW_RUNNER_PROVIDER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/config.h"
#include "core/err.h"
#include "core/event.h"

/* ---- the run request --------------------------------------------------------- */

/* One file the user attached to the prompt (run request "attachments": metadata only;
 * the bytes come from the store, written to a file by attach.c before the CLI starts). */
struct runner_attachment {
    char *id;            /* the store's attachment id */
    char *name;          /* the name the user gave it (any text; never used as a path) */
    char *mime_type;     /* "image/png", ...; "application/octet-stream" when not given */
    int64_t size;        /* bytes, as the request says */
    char *path;          /* absolute path of its file in the run's private directory, or
                            NULL before attach.c wrote it */
    unsigned char *data; /* its bytes (len of them), or NULL before attach.c read them */
    size_t len;
};

#define RUNNER_MAX_ATTACHMENTS 64 /* more in a run request: CGW_ERR_INVALID */

struct runner_request {
    char *session_id;
    char *run_id;
    enum provider_id provider;
    int64_t owner;
    char *project_path;
    char *native_id;       /* NULL: a new provider session; else resume it */
    char *content;         /* the prompt */
    char *model;           /* NULL: the CLI's default */
    char *permission_mode; /* NULL: the CLI's default */
    bool skip_permissions; /* toolsSettings.skipPermissions */
    char **allowed_tools;  /* toolsSettings.allowedTools (n_allowed strings) */
    size_t n_allowed;
    char **disallowed_tools; /* toolsSettings.disallowedTools */
    size_t n_disallowed;
    struct runner_attachment *attachments; /* n_attachments of them, in the user's order */
    size_t n_attachments;
    char *attach_dir; /* the run's private directory of attachment files, or NULL */
};

/* Decodes the run request JSON (len bytes). Unknown members are ignored; a missing
 * or mistyped required member (sessionId, runId, provider, owner, projectPath,
 * content) is CGW_ERR_INVALID naming it, and so is a malformed "attachments" (not an
 * array of objects with a non-empty string id, string name and mimeType, non-negative
 * integer size; more than RUNNER_MAX_ATTACHMENTS). On success the caller frees *req
 * with runner_request_free (which frees the attachments too, without touching their
 * files: attach.h removes those). */
enum cgw_err runner_request_parse(const char *json, size_t len, struct runner_request *req,
                                  struct cgw_error *err);
void runner_request_free(struct runner_request *req);

/* Whether the attachment is an image of a type the model APIs take inline (PNG, JPEG,
 * GIF, WebP: what Anthropic, OpenAI and Gemini all accept). */
bool runner_attachment_is_image(const struct runner_attachment *a);

/* A new string (free()): content, then, when some attachment is not passed some other
 * way (pass(a) false; pass NULL: none is), a paragraph listing those files by path,
 * name, type and size, so the agent can read them. NULL when memory ran out. */
char *runner_prompt_with_files(const struct runner_request *req,
                               bool (*pass)(const struct runner_attachment *a));

/* data (len bytes) in standard base64 with padding (RFC 4648 §4): a new string
 * (free()), or NULL when memory ran out. */
char *runner_base64(const unsigned char *data, size_t len);

/* ---- containers ----------------------------------------------------------------- */

/* A growable byte buffer. */
struct runner_buf {
    char *data;
    size_t len, cap;
};

/* Appends n bytes; returns 0 or -1 (out of memory: the buffer is unchanged). */
int runner_buf_append(struct runner_buf *b, const void *data, size_t n);
/* Appends the compact JSON of v and a newline (one NDJSON line). 0 or -1. */
int runner_buf_append_json_line(struct runner_buf *b, const json_t *v);
/* Drops the first n bytes. */
void runner_buf_consume(struct runner_buf *b, size_t n);
void runner_buf_free(struct runner_buf *b);

/* A NULL-terminated vector of owned strings (argv, environment). */
struct runner_strv {
    char **v; /* v[n] == NULL when v != NULL */
    size_t n, cap;
};
/* Appends a copy of s; 0 or -1. */
int runner_strv_add(struct runner_strv *sv, const char *s);
/* Appends "name=value" (or a concatenation of two strings); 0 or -1. */
int runner_strv_add2(struct runner_strv *sv, const char *a, const char *b);
void runner_strv_free(struct runner_strv *sv);

/* What one stdout line meant, besides plain events. */
enum runner_item_type {
    RUNNER_ITEM_EVENT,      /* ev: a normalized event to publish */
    RUNNER_ITEM_NATIVE_ID,  /* id: the provider-native session id */
    RUNNER_ITEM_PERMISSION, /* id: the CLI's request id; tool_name, input: approve a tool */
    RUNNER_ITEM_CANCEL,     /* id: the CLI withdrew its permission request id */
    RUNNER_ITEM_RESULT      /* the turn ended; is_error, text: the error, if any */
};

struct runner_item {
    enum runner_item_type type;
    json_t *ev;      /* EVENT */
    char *id;        /* NATIVE_ID, PERMISSION, CANCEL */
    char *tool_name; /* PERMISSION */
    json_t *input;   /* PERMISSION */
    bool is_error;   /* RESULT */
    char *text;      /* RESULT: error text or NULL */
};

/* Items in order; every member is owned by the list. */
struct runner_items {
    struct runner_item *v;
    size_t n, cap;
    bool failed; /* memory ran out: some items are missing */
};

/* Each adder takes ownership of its json_t arguments (also on failure) and copies
 * strings; a NULL event (a constructor that ran out of memory) sets failed. */
void runner_items_event(struct runner_items *it, json_t *ev);
void runner_items_native_id(struct runner_items *it, const char *id);
void runner_items_permission(struct runner_items *it, const char *id, const char *tool_name,
                             json_t *input);
void runner_items_cancel(struct runner_items *it, const char *id);
void runner_items_result(struct runner_items *it, bool is_error, const char *text);
/* Appends an `error` event for a stdout line the adapter cannot read: "<provider>:
 * unreadable output line (<why>): <the first 160 bytes, unprintable ones as '?'>". */
void runner_items_unreadable(struct runner_items *it, const struct event_ctx *ctx,
                             const char *provider, const char *why, const char *line, size_t len);
/* Decodes one stdout line of a JSON-lines CLI: returns the object (a new reference) with
 * its string member "type" in *type (borrowed from it), or NULL after appending an
 * `error` (runner_items_unreadable) when the line is not JSON or has no "type". */
json_t *runner_line_decode(struct runner_items *it, const struct event_ctx *ctx,
                           const char *provider, const char *line, size_t len, const char **type);
/* Frees every item and empties the list (it stays usable). */
void runner_items_clear(struct runner_items *it);

/* Ends the turn as failed (a RESULT item with is_error): with "<provider>: the turn failed:
 * <message>" when text carries an API error's JSON ({"error":{"message":...}}, alone or
 * inside other text such as "[API Error: {...}]"), else with text itself, or with
 * "<provider>: the turn failed" when text is NULL or empty. */
void runner_items_turn_failed(struct runner_items *it, const char *provider, const char *text);

/* ---- adapter state ---------------------------------------------------------------- */

/* What every adapter's state holds: the run's event context and request (borrowed for
 * the life of the state). An adapter that needs nothing else uses it as its state, with
 * runner_state_new / runner_state_free as its state_new / state_free; one that needs
 * more puts it first in its own struct and allocates with runner_state_alloc. */
struct runner_state {
    const struct event_ctx *ctx;
    const struct runner_request *req;
};

/* A zeroed state of size bytes (at least sizeof(struct runner_state)) beginning with a
 * struct runner_state filled with ctx and req; NULL when memory ran out. */
void *runner_state_alloc(size_t size, const struct event_ctx *ctx,
                         const struct runner_request *req);
/* runner_state_alloc of a plain struct runner_state. */
void *runner_state_new(const struct event_ctx *ctx, const struct runner_request *req);
/* Frees a state made by runner_state_alloc that owns nothing else (NULL is fine). */
void runner_state_free(void *st);

/* ---- helpers for adapters reading JSON lines ------------------------------------- */

/* obj[key] as a string (borrowed), or NULL when absent or not a string. */
const char *runner_json_str(const json_t *obj, const char *key);
/* obj[key] as an integer, or 0 when absent or not an integer. */
int64_t runner_json_int(const json_t *obj, const char *key);
/* Sets key of ev to a deep copy of v when both are there; a failed copy marks out failed. */
void runner_json_set_copy(json_t *ev, const char *key, const json_t *v, struct runner_items *out);

/* ---- the adapter interface ----------------------------------------------------- */

struct runner_provider {
    const char *name; /* "claude": the config key <name>.bin and log text */

    /* The CLI speaks a protocol on stdin that stays open while the turn runs (a pipe
     * the supervisor closes after the RESULT item); otherwise stdin is /dev/null. */
    bool stdin_protocol;

    /* The CLI reports the end of a turn (a RESULT item): ending without one is a
     * failure (exitCode 1 when the process said 0). */
    bool needs_result;

    /* The adapter passes the request's attachments to its CLI. A run with attachments
     * for an adapter without it fails before the CLI starts (attach.h). */
    bool attachments;

    /* New adapter state for one run, NULL when memory ran out. ctx and req are
     * borrowed for the life of the state. */
    void *(*state_new)(const struct event_ctx *ctx, const struct runner_request *req);
    void (*state_free)(void *st);

    /* Appends the CLI's arguments (after argv[0], which the supervisor sets to the
     * configured binary). 0 or -1. */
    int (*build_argv)(const struct runner_request *req, struct runner_strv *argv);

    /* Appends "NAME=value" additions to the CLI's environment (may be NULL). 0 or -1. */
    int (*build_env)(const struct runner_request *req, struct runner_strv *env);

    /* stdin_protocol only: the first bytes for the CLI's stdin. 0 or -1. */
    int (*start)(void *st, struct runner_buf *in);

    /* Turns one stdout line (len bytes, NUL-terminated, no newline) into items.
     * Answers the CLI wants at once (control requests the runner need not decide)
     * are appended to in. Never fails: a line it cannot read becomes an `error`. */
    void (*parse_line)(void *st, const char *line, size_t len, struct runner_items *out,
                       struct runner_buf *in);

    /* stdout ended: items that close what is still open (a `stream_end`). May be NULL. */
    void (*finish)(void *st, struct runner_items *out);

    /* Asks the CLI to stop its turn by appending a request to in: returns 1, or 0 when
     * the adapter has no such request (the supervisor goes on with signals), -1 on
     * out of memory. NULL = 0. */
    int (*interrupt)(void *st, struct runner_buf *in);

    /* Appends the answer to the CLI's permission request id: allow with input
     * (borrowed; the tool runs with it), or deny with message. 0 or -1. NULL: the CLI
     * has no approval channel (it never reports permission requests). */
    int (*answer)(void *st, const char *id, bool allow, json_t *input, const char *message,
                  struct runner_buf *in);
};

/* `<name>_provider` of every row of CGW_PROVIDER_LIST. */
#define RUNNER_PROVIDER_DECL(ID, name, ...) extern const struct runner_provider name##_provider;
CGW_PROVIDER_LIST(RUNNER_PROVIDER_DECL)
#undef RUNNER_PROVIDER_DECL

/* The adapter of p, or NULL when p is out of range. */
const struct runner_provider *runner_provider_for(enum provider_id p);

#endif
