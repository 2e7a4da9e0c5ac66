/* store.h: the system of record in SQLite: users, tokens, sessions, messages, rules.
 *
 * Entry points: store_open (opens, sets WAL, busy_timeout and foreign keys),
 * store_migrate (applies the embedded sql/NNNN_*.sql files forward, version in
 * PRAGMA user_version), the per-table functions below, store_close.
 *
 * Threads and processes: one struct store is one SQLite connection and must be
 * used by one thread at a time (give each worker thread its own). Any number of
 * processes may open the same file and write at once: WAL mode, a busy timeout,
 * and write transactions begun with BEGIN IMMEDIATE so that a busy database waits
 * instead of failing with SQLITE_BUSY inside a transaction.
 *
 * Errors: every function returns enum cgw_err and fills the caller's struct
 * cgw_error with text naming what failed ("store: add user x: database is
 * locked"). A locked database after the busy timeout, a full disk, an I/O error,
 * a file that cannot be opened or is not a database is CGW_ERR_BACKEND; a
 * missing row, or a reference to a missing user or session, is
 * CGW_ERR_NOT_FOUND; a unique-key clash is CGW_ERR_CONFLICT. Only prepared
 * statements with bound parameters; they are prepared once per connection.
 *
 * Times are integer milliseconds since the epoch (UTC).
 */
#ifndef CGW_STORE_H
#define CGW_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/util.h"

struct store;

#define STORE_NAME_MAX 64 /* user names: 1..64 of [A-Za-z0-9._-], starting alnum */

struct store_user {
    int64_t id;
    char name[STORE_NAME_MAX + 1];
    bool disabled;
    int64_t created_ms;
};

struct store_token {
    int64_t id;
    int64_t user_id;
    char user_name[STORE_NAME_MAX + 1];
    char public_id[24]; /* the non-secret part of the token, see auth.h */
    char label[STORE_NAME_MAX + 1];
    unsigned char hash[32]; /* SHA-256 of the whole token */
    bool revoked;
    int64_t created_ms;
    int64_t last_used_ms; /* 0 = never */
};

struct store_session {
    char id[CGW_UUID_LEN + 1]; /* app id, UUID v4 */
    int64_t owner;             /* users.id */
    char provider[16];         /* "claude", ... */
    char *native_id;           /* provider-native session id, NULL until captured */
    char *project_path;        /* realpath of the project directory */
    char *name;                /* display name, "" when unnamed */
    bool archived;
    int64_t created_ms;
    int64_t updated_ms;
    int64_t last_seq; /* high-water mark of persisted events' seq */
    char *host;       /* home host (host.id of the creator), NULL = none: any host runs it */
};

struct store_message {
    int64_t seq;
    char kind[32];
    char *json; /* the event as published, with its seq */
};

struct store_rule {
    int64_t id;
    int64_t user_id;
    char *project_path;
    char *rule; /* e.g. "Bash(git status:*)", "Read" */
    int64_t created_ms;
};

/* ---- lifecycle ---------------------------------------------------------- */

/* Opens (creating when create is true) the database at path and sets WAL
 * mode, busy_timeout (busy_timeout_ms), foreign_keys and synchronous=NORMAL.
 * Does not migrate. On success *out is a new handle the caller closes with
 * store_close; on failure *out is NULL. */
enum cgw_err store_open(const char *path, bool create, int64_t busy_timeout_ms, struct store **out,
                        struct cgw_error *err);

/* Applies every embedded migration newer than PRAGMA user_version, each in its
 * own IMMEDIATE transaction together with the user_version bump, so concurrent
 * migrators and a crash halfway are safe. A database newer than this binary
 * knows is CGW_ERR_CONFLICT. Sets *version (may be NULL) to the final version.
 * Not inside store_begin (CGW_ERR_INVALID). */
enum cgw_err store_migrate(struct store *st, int *version, struct cgw_error *err);

/* The schema version this binary brings (the highest embedded migration) and the
 * version of the open database. */
int store_schema_latest(void);
enum cgw_err store_schema_version(struct store *st, int *version, struct cgw_error *err);

/* Closes the connection and frees st (NULL is fine). */
void store_close(struct store *st);

/* Explicit transactions for batching (the runner commits many events at once).
 * store_begin starts BEGIN IMMEDIATE; nesting is not supported (CGW_ERR_INVALID).
 * Functions called in between join it instead of committing on their own. A
 * failed store_commit has rolled back; after an error that made SQLite roll back
 * by itself, later writes fail (CGW_ERR_BACKEND) until store_rollback. */
enum cgw_err store_begin(struct store *st, struct cgw_error *err);
enum cgw_err store_commit(struct store *st, struct cgw_error *err);
void store_rollback(struct store *st);

/* A read snapshot over several reads (the gateway's token and session lookups of one
 * request): one WAL read lock for all of them instead of one per statement, which
 * the worker threads of a process take in turn under one mutex. Between the two,
 * store_token_touch only notes its token and runs after the snapshot ends (it
 * would otherwise turn the snapshot into a write transaction); other writes are not
 * allowed. store_read_end is a no-op when no snapshot is open. */
enum cgw_err store_read_begin(struct store *st, struct cgw_error *err);
void store_read_end(struct store *st);

/* ---- users ---------------------------------------------------------------- */

/* True when name is a valid user name (see STORE_NAME_MAX). */
bool store_user_name_valid(const char *name);

/* Adds a user; CGW_ERR_CONFLICT when the name exists, CGW_ERR_INVALID for a bad
 * name. *id (may be NULL) receives the new id. */
enum cgw_err store_user_add(struct store *st, const char *name, int64_t *id, struct cgw_error *err);
enum cgw_err store_user_get(struct store *st, const char *name, struct store_user *out,
                            struct cgw_error *err);
enum cgw_err store_user_get_by_id(struct store *st, int64_t id, struct store_user *out,
                                  struct cgw_error *err);
enum cgw_err store_user_set_disabled(struct store *st, const char *name, bool disabled,
                                     struct cgw_error *err);
/* All users ordered by name; *out is a new array of *n entries the caller frees
 * with free(). */
enum cgw_err store_user_list(struct store *st, struct store_user **out, size_t *n,
                             struct cgw_error *err);

/* ---- tokens --------------------------------------------------------------- */

/* Records a token of user_id by its public id and SHA-256 hash (the secret is
 * never stored). CGW_ERR_CONFLICT if public_id exists. */
enum cgw_err store_token_add(struct store *st, int64_t user_id, const char *public_id,
                             const unsigned char hash[32], const char *label, int64_t *id,
                             struct cgw_error *err);

/* Finds the token with public_id, whatever its state (the caller checks hash,
 * revoked, and the user's disabled flag; out->user_name is filled).
 * user_disabled (may be NULL) receives the owner's disabled flag. */
enum cgw_err store_token_find(struct store *st, const char *public_id, struct store_token *out,
                              bool *user_disabled, struct cgw_error *err);

/* Sets last_used_ms = now, at most once every STORE_TOKEN_TOUCH_EVERY_MS per token.
 * An unknown id is not an error. It is a write (it takes the database's write lock even
 * when no row changes): on hot paths call it only when the last_used_ms that
 * store_token_find returned is older than STORE_TOKEN_TOUCH_EVERY_MS. */
#define STORE_TOKEN_TOUCH_EVERY_MS 60000
enum cgw_err store_token_touch(struct store *st, int64_t id, struct cgw_error *err);

/* Tokens of user_id (0 = all users), oldest first; *out freed with free(). */
enum cgw_err store_token_list(struct store *st, int64_t user_id, struct store_token **out,
                              size_t *n, struct cgw_error *err);

/* Revokes by id. CGW_ERR_NOT_FOUND when no such token. Idempotent otherwise. */
enum cgw_err store_token_revoke(struct store *st, int64_t id, struct cgw_error *err);

/* ---- sessions ------------------------------------------------------------- */

/* Inserts s (id, owner, provider, project_path, name, archived, created/updated, host;
 * native_id and last_seq start NULL/0; a NULL or "" host is stored as NULL). s->id must be a UUID;
 * a NULL name is ""; created_ms <= 0 is now, updated_ms <= 0 is created_ms. CGW_ERR_CONFLICT on a
 * duplicate id, CGW_ERR_NOT_FOUND for an unknown owner. Borrows s. */
enum cgw_err store_session_create(struct store *st, const struct store_session *s,
                                  struct cgw_error *err);

/* Loads session id. owner > 0 restricts to that owner: another user's session is
 * CGW_ERR_NOT_FOUND exactly like a missing one. out's strings are new; free with
 * store_session_clear. */
enum cgw_err store_session_get(struct store *st, const char *id, int64_t owner,
                               struct store_session *out, struct cgw_error *err);

/* Sessions of owner (owner <= 0: every user's) with archived == archived
 * (archived < 0: both), newest updated_ms first, then id; limit/offset page them
 * (limit <= 0: no limit). *total (may be NULL) is the count without paging, read
 * in the same transaction as the page. *out is a new array (NULL when empty);
 * free with store_session_list_free. */
enum cgw_err store_session_list(struct store *st, int64_t owner, int archived, int64_t limit,
                                int64_t offset, struct store_session **out, size_t *n,
                                int64_t *total, struct cgw_error *err);

/* Renames and/or (un)archives; NULL name / archived < 0 leave a field alone;
 * bumps updated_ms. Owner-checked like store_session_get. */
enum cgw_err store_session_update(struct store *st, const char *id, int64_t owner, const char *name,
                                  int archived, struct cgw_error *err);

/* Deletes the session and its messages. Owner-checked. */
enum cgw_err store_session_delete(struct store *st, const char *id, int64_t owner,
                                  struct cgw_error *err);

/* Records the provider-native id (first sight wins: a different id later is
 * CGW_ERR_CONFLICT, the same id is OK). */
enum cgw_err store_session_set_native_id(struct store *st, const char *id, const char *native_id,
                                         struct cgw_error *err);

/* Sets updated_ms = now (a run started or ended). */
enum cgw_err store_session_touch(struct store *st, const char *id, struct cgw_error *err);

/* The session's high-water seq (0 for none); CGW_ERR_NOT_FOUND when no session. */
enum cgw_err store_session_last_seq(struct store *st, const char *id, int64_t *seq,
                                    struct cgw_error *err);

void store_session_clear(struct store_session *s);
void store_session_list_free(struct store_session *list, size_t n);

/* ---- messages ------------------------------------------------------------- */

/* Persists one event with its seq and raises sessions.last_seq to it (never
 * lowers it). A second add of the same (session, seq) with the same json is OK
 * (idempotent replay after a crash); with different json it is CGW_ERR_CONFLICT.
 * An unknown session is CGW_ERR_NOT_FOUND; seq must be > 0, kind 1..31 bytes. */
enum cgw_err store_message_add(struct store *st, const char *session_id, int64_t seq,
                               const char *kind, const char *json, struct cgw_error *err);

/* Persists n events of one session (msgs[i].seq, kind and json; borrowed; n == 0 is OK)
 * as n store_message_add calls would, but as one write: one transaction (or the caller's
 * store_begin one) and, on PostgreSQL, one statement, so one round trip per batch. The
 * seqs must increase strictly. sessions.last_seq is raised to the highest seq written.
 * Identical replays are OK. Events whose seq already holds a different event are left
 * as they are and the others are written; the answer is then CGW_ERR_CONFLICT naming the
 * first such seq and how many clash. An unknown session is CGW_ERR_NOT_FOUND and a bad
 * argument (seq <= 0 or not increasing, a bad kind, no json) CGW_ERR_INVALID; neither
 * writes anything. After any other error some events may be written: calling again with
 * the same events is safe (replays are idempotent). */
enum cgw_err store_message_add_batch(struct store *st, const char *session_id,
                                     const struct store_message *msgs, size_t n,
                                     struct cgw_error *err);

/* Messages of a session with after_seq < seq < before_seq (before_seq <= 0: no
 * upper bound), oldest first, at most limit (capped to 1..1000). When before_seq
 * is given and after_seq is 0 the page is the *latest* limit messages below
 * before_seq (still returned oldest first), which is how a UI pages backwards.
 * *has_more (may be NULL) tells whether more rows exist beyond the page in the
 * paging direction. An unknown session has no messages (not an error). *out
 * (NULL when empty) freed with store_message_list_free. */
enum cgw_err store_message_list(struct store *st, const char *session_id, int64_t after_seq,
                                int64_t before_seq, int64_t limit, struct store_message **out,
                                size_t *n, bool *has_more, struct cgw_error *err);
void store_message_list_free(struct store_message *list, size_t n);

/* ---- permission rules ------------------------------------------------------ */

/* Adds a remembered rule for user and project (idempotent: an identical rule is OK).
 * CGW_ERR_NOT_FOUND for an unknown user. */
enum cgw_err store_rule_add(struct store *st, int64_t user_id, const char *project_path,
                            const char *rule, struct cgw_error *err);
/* Rules of user for project, oldest first; *out freed with store_rule_list_free. */
enum cgw_err store_rule_list(struct store *st, int64_t user_id, const char *project_path,
                             struct store_rule **out, size_t *n, struct cgw_error *err);
/* Deletes rule rule_id of user_id; another user's rule is CGW_ERR_NOT_FOUND. */
enum cgw_err store_rule_delete(struct store *st, int64_t user_id, int64_t rule_id,
                               struct cgw_error *err);
void store_rule_list_free(struct store_rule *list, size_t n);
/* (store_rules.c) Every rule of user_id, by project then age, at most max (1..100000);
 * *out freed with store_rule_list_free. For GET /rules and `chatgwctl rules list`. */
enum cgw_err store_rule_list_user(struct store *st, int64_t user_id, int64_t max,
                                  struct store_rule **out, size_t *n, struct cgw_error *err);

/* ---- attachments (store_attachments.c) -------------------------------------- */

/* A file uploaded into a session (POST /sessions/{id}/attachments, options.images of
 * send). The bytes live in the store, so the runner of any host reads them by id. */
#define STORE_ATTACHMENT_ID_LEN (4 + CGW_UUID_LEN) /* "att_<uuid>" */
#define STORE_ATTACHMENT_NAME_MAX 255              /* bytes of the file name */
#define STORE_ATTACHMENT_TYPE_MAX 127              /* bytes of the media type */

struct store_attachment {
    char id[STORE_ATTACHMENT_ID_LEN + 1];
    char session_id[CGW_UUID_LEN + 1];
    int64_t user_id;
    char name[STORE_ATTACHMENT_NAME_MAX + 1];
    char mime_type[STORE_ATTACHMENT_TYPE_MAX + 1];
    int64_t size; /* bytes of data */
    int64_t created_ms;
};

/* True when id has the form "att_<uuid>". */
bool store_attachment_id_valid(const char *id);

/* Stores len bytes of data (borrowed) as attachment meta->id (a valid id, new) of
 * meta->session_id, owned by meta->user_id, with meta->name (1..255 bytes) and
 * meta->mime_type (1..127 bytes); meta->size and created_ms are ignored (len, now).
 * In one transaction with a lock on the session, so concurrent uploads cannot pass
 * the limits together: when the session already holds max_count attachments
 * (max_count <= 0: no limit), or its attachments would total more than max_total
 * bytes (max_total <= 0: no limit), nothing is stored and the answer is
 * CGW_ERR_LIMIT (the text says which limit). CGW_ERR_NOT_FOUND when the session does
 * not exist or is not meta->user_id's; CGW_ERR_CONFLICT when the id exists. */
enum cgw_err store_attachment_put(struct store *st, const struct store_attachment *meta,
                                  const void *data, size_t len, int64_t max_count,
                                  int64_t max_total, struct cgw_error *err);

/* Loads attachment id: *meta, and (when data is not NULL) *data, a new buffer of
 * *len bytes the caller frees with free() (a 0-byte attachment has a 1-byte buffer).
 * CGW_ERR_NOT_FOUND when there is no such attachment. No owner check: the caller
 * compares meta->user_id and meta->session_id. */
enum cgw_err store_attachment_get(struct store *st, const char *id, struct store_attachment *meta,
                                  void **data, size_t *len, struct cgw_error *err);
/* store_attachment_get without the bytes. */
enum cgw_err store_attachment_meta(struct store *st, const char *id, struct store_attachment *meta,
                                   struct cgw_error *err);

/* The attachments of session_id, oldest first, at most max (1..1000); *out is a new
 * array (NULL when empty) freed with free(). An unknown session has none. */
enum cgw_err store_attachment_list(struct store *st, const char *session_id, int64_t max,
                                   struct store_attachment **out, size_t *n, struct cgw_error *err);

/* How many attachments session_id holds and their total size in bytes (0, 0 when none
 * or no session). */
enum cgw_err store_attachments_count_size(struct store *st, const char *session_id, int64_t *count,
                                          int64_t *bytes, struct cgw_error *err);

/* Deletes attachment id of session_id owned by user_id (another user's, or another
 * session's, is CGW_ERR_NOT_FOUND like a missing one). Attachments also go with their
 * session: store_session_delete removes them (ON DELETE CASCADE). */
enum cgw_err store_attachment_delete(struct store *st, const char *id, const char *session_id,
                                     int64_t user_id, struct cgw_error *err);

#endif
