/* cmd_chat.c: `chatgwctl chat`: send a prompt over the HTTP API and stream the run's answer.
 *
 * The flow: pick the session (--session, or --new creates one), POST /chat/send, then
 * long-poll POST /chat/subscribe from the send's lastSeq, applying each event once
 * (seq > cursor), until the run's complete. A truncated answer is filled from
 * /sessions/{id}/messages?afterSeq=. 5xx answers and transport errors are retried with
 * a growing pause; the cursor keeps the output free of duplicates. Permission requests
 * are answered as chat_perm_decide says. The first Ctrl-C cuts the poll short, posts
 * /chat/abort and goes on polling for the complete; a second one exits at once (130).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ctl/chat.h"
#include "ctl/ctl.h"
#include "ctl/http_client.h"

enum {
    OPT_SESSION,
    OPT_NEW,
    OPT_PROVIDER,
    OPT_PROJECT,
    OPT_MODE,
    OPT_JSON,
    OPT_ALLOW,
    OPT_DENY,
    OPT_ALLOW_ALL,
    OPT_DENY_ALL,
};

const struct ctl_opt ctl_chat_opts[] = {
    {"session", 0, "ID", "the session to send to"},
    {"new", 0, NULL, "create a session (with --provider and --project); its id goes to stderr"},
    {"provider", 0, "NAME", "provider of the new session (claude, codex, ...)"},
    {"project", 0, "PATH", "project directory of the new session (on the server)"},
    {"permission-mode", 0, "MODE", "options.permissionMode of the send"},
    {"json", 0, NULL, "print each event as one JSON line on stdout"},
    {"allow", 0, "RULE", "allow requests RULE covers (Bash, Bash(ls), Bash(git:*)); repeatable"},
    {"deny", 0, "RULE", "deny requests RULE covers; repeatable; wins over --allow"},
    {"allow-all", 0, NULL, "allow every permission request"},
    {"deny-all", 0, NULL, "deny every permission request"},
    {NULL, 0, NULL, NULL},
};

#define WAIT_MS 25000L
#define POLL_TIMEOUT_MS (WAIT_MS + 30000L)
#define SHORT_TIMEOUT_MS 60000L
#define RETRY_FIRST_MS 200L
#define RETRY_MAX_MS 5000L
#define RETRY_GIVE_UP_MS 120000L /* failing this long in a row: exit 3 */
#define PROMPT_MAX (8u << 20)
#define ANSWERED_MAX 256

/* The one piece of global mutable state: Ctrl-Cs seen (the signal handler's). */
static volatile sig_atomic_t interrupts;

static void on_sigint(int sig)
{
    (void)sig;
    if (interrupts >= 1) {
        static const char msg[] = "\nchatgwctl chat: interrupted\n";
        ssize_t w = write(STDERR_FILENO, msg, sizeof msg - 1);
        (void)w;
        _exit(CHAT_EXIT_ABORTED);
    }
    interrupts = interrupts + 1;
}

struct chat {
    struct ctl *ctl;
    struct http_client *http;
    struct chat_out out;
    struct chat_policy policy;
    char session[128];
    char run_id[128];
    int64_t cursor;
    sig_atomic_t handled; /* interrupts already acted on */
    bool abort_sent;
    char *answered[ANSWERED_MAX]; /* permission requests answered, not to answer twice */
    size_t nanswered;
    bool done; /* the run's complete was applied */
    int exit;  /* from the complete */
};

static bool cancel_on_interrupt(void *arg)
{
    const struct chat *c = arg;
    return interrupts > c->handled;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sleeps ms, or less when a signal comes. */
static void pause_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int http_fail(struct chat *c, const char *what, const struct http_answer *ans,
                     const struct cgw_error *err)
{
    if (!ans || ans->status == 0) {
        chat_out_note(&c->out, "%s: %s", what, err->text);
    } else {
        chat_out_note(&c->out, "%s: HTTP %ld %s%s%s%s", what, ans->status,
                      ans->code[0] ? ans->code : "", ans->error[0] ? " (" : "", ans->error,
                      ans->error[0] ? ")" : "");
        if (ans->status == 401)
            chat_out_note(&c->out, "check CHATGW_TOKEN (a token from 'chatgwctl token create')");
    }
    return CHAT_EXIT_HTTP;
}

/* Whether a failed exchange is worth another try: no answer, a 5xx. */
static bool retryable(enum cgw_err rc, const struct http_answer *ans)
{
    if (rc == CGW_ERR_IO)
        return true;
    return rc == CGW_OK && ans->status >= 500;
}

/* ---- permission requests --------------------------------------------------- */

static bool answered_before(struct chat *c, const char *rid)
{
    for (size_t i = 0; i < c->nanswered; i++) {
        if (strcmp(c->answered[i], rid) == 0)
            return true;
    }
    if (c->nanswered < ANSWERED_MAX) {
        char *copy = strdup(rid);
        if (copy)
            c->answered[c->nanswered++] = copy;
    }
    return false;
}

static enum cgw_err post_permission(struct chat *c, const char *rid, bool allow, bool remember,
                                    struct http_answer *ans, struct cgw_error *err)
{
    json_t *body = json_pack("{s:s, s:b}", "requestId", rid, "allow", allow);
    if (body && remember)
        json_object_set_new(body, "remember", json_string("exact"));
    if (!body)
        return cgw_error_set(err, CGW_ERR_NOMEM, "out of memory");
    /* Retried like a poll: a second answer that follows a lost first one is a 409. */
    long backoff = RETRY_FIRST_MS;
    int64_t start = now_ms();
    enum cgw_err rc;
    for (;;) {
        rc = http_request(c->http, "POST", "/chat/permission", body, SHORT_TIMEOUT_MS, ans, err);
        if (!retryable(rc, ans) || now_ms() - start > RETRY_GIVE_UP_MS || interrupts > c->handled)
            break;
        if (backoff == RETRY_FIRST_MS)
            chat_out_note(&c->out, "answering the permission request: %s; retrying",
                          rc == CGW_OK ? "server error" : err->text);
        http_answer_clear(ans);
        pause_ms(backoff);
        backoff = backoff * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : backoff * 2;
    }
    json_decref(body);
    return rc;
}

/* Answers one permission_request event of the run. Returns 0, or an exit status. */
static int on_permission(struct chat *c, const json_t *ev)
{
    const char *rid = json_string_value(json_object_get(ev, "requestId"));
    const char *tool = json_string_value(json_object_get(ev, "toolName"));
    const json_t *input = json_object_get(ev, "input");
    if (!rid || answered_before(c, rid))
        return 0;
    char label[512];
    chat_tool_label(tool, input, label, sizeof label);
    chat_out_note(&c->out, "[permission] %s asks", label);
    const char *why = "";
    enum chat_answer a = chat_perm_decide(&c->policy, tool, input, &why);
    if (a == CHAT_NO_ANSWER)
        return 0; /* Ctrl-C at the prompt: the abort cancels the request */
    if (a == CHAT_DENY)
        chat_out_note(&c->out, "denied %s: %s", label, why);

    struct http_answer ans;
    struct cgw_error err;
    enum cgw_err rc = post_permission(c, rid, a != CHAT_DENY, a == CHAT_ALLOW_ALWAYS, &ans, &err);
    if (rc == CGW_OK && ans.status == 400 && strcmp(ans.code, "REMEMBER_ENTRY_INVALID") == 0) {
        chat_out_note(&c->out, "cannot remember %s (%s): allowing this once", label, ans.error);
        http_answer_clear(&ans);
        rc = post_permission(c, rid, true, false, &ans, &err);
    }
    int status = 0;
    if (rc != CGW_OK && rc != CGW_ERR_TIMEOUT)
        status = http_fail(c, "answering the permission request", NULL, &err);
    else if (rc == CGW_OK && ans.status == 200 && a == CHAT_ALLOW_ALWAYS)
        chat_out_note(&c->out, "remembered %s",
                      json_string_value(json_object_get(ans.json, "rememberedRule"))
                          ? json_string_value(json_object_get(ans.json, "rememberedRule"))
                          : label);
    else if (rc == CGW_OK && ans.status != 200 && ans.status != 404 && ans.status != 409)
        status = http_fail(c, "answering the permission request", &ans, &err);
    /* 404/409: answered elsewhere, expired or withdrawn; the stream says what happened. */
    http_answer_clear(&ans);
    return status;
}

/* ---- applying events ------------------------------------------------------- */

/* Applies one event once. Returns 0, or an exit status that ends the command. */
static int apply(struct chat *c, const json_t *ev)
{
    json_int_t seq = json_integer_value(json_object_get(ev, "seq"));
    if (!json_is_integer(json_object_get(ev, "seq")) || seq <= c->cursor)
        return 0;
    c->cursor = seq;
    if (chat_out_event(&c->out, ev) < 0) {
        chat_out_note(&c->out, "cannot write the output: %s", strerror(errno));
        return CHAT_EXIT_FAILED;
    }
    const char *kind = json_string_value(json_object_get(ev, "kind"));
    if (kind && strcmp(kind, "permission_request") == 0)
        return on_permission(c, ev);
    if (kind && strcmp(kind, "complete") == 0) {
        c->done = true;
        if (json_is_true(json_object_get(ev, "aborted")))
            c->exit = CHAT_EXIT_ABORTED;
        else
            c->exit =
                json_is_true(json_object_get(ev, "success")) ? CHAT_EXIT_SUCCESS : CHAT_EXIT_FAILED;
    }
    return 0;
}

/* Fills the hole between the cursor and first_seq from history (a truncated answer).
 * Returns 0, FILL_INTERRUPTED (Ctrl-C: the caller polls again from the same cursor),
 * or an exit status. */
#define FILL_INTERRUPTED (-1)
static int fill_hole(struct chat *c, int64_t first_seq)
{
    while (c->cursor + 1 < first_seq && !c->done) {
        char path[512] = "/sessions/";
        if (http_query_append(path, sizeof path, c->session) < 0)
            return http_fail(c, "reading history", NULL,
                             &(struct cgw_error){CGW_ERR_INVALID, "session id too long"});
        size_t n = strlen(path);
        snprintf(path + n, sizeof path - n, "/messages?afterSeq=%lld&limit=1000",
                 (long long)c->cursor);
        struct http_answer ans;
        struct cgw_error err;
        enum cgw_err rc = http_request(c->http, "GET", path, NULL, SHORT_TIMEOUT_MS, &ans, &err);
        if (rc != CGW_OK || ans.status != 200) {
            int st = rc == CGW_ERR_TIMEOUT
                         ? FILL_INTERRUPTED
                         : http_fail(c, "reading history", rc == CGW_OK ? &ans : NULL, &err);
            http_answer_clear(&ans);
            return st;
        }
        const json_t *msgs = json_object_get(ans.json, "messages");
        int64_t before = c->cursor;
        size_t i;
        const json_t *ev;
        int st = 0;
        json_array_foreach(msgs, i, ev)
        {
            if (json_integer_value(json_object_get(ev, "seq")) >= first_seq || st || c->done)
                break;
            st = apply(c, ev);
        }
        bool more = json_is_true(json_object_get(ans.json, "hasMore"));
        http_answer_clear(&ans);
        if (st)
            return st;
        if (!more || c->cursor == before)
            break;
    }
    if (c->cursor + 1 < first_seq && !c->done) {
        chat_out_note(&c->out, "events %lld to %lld are lost (neither live nor in history)",
                      (long long)c->cursor + 1, (long long)first_seq - 1);
        c->cursor = first_seq - 1;
    }
    return 0;
}

/* Applies one subscribe answer's frames. */
static int apply_frames(struct chat *c, const json_t *frames)
{
    size_t i;
    const json_t *f;
    json_array_foreach(frames, i, f)
    {
        const char *kind = json_string_value(json_object_get(f, "kind"));
        int st = 0;
        if (kind && strcmp(kind, "chat_subscribed") == 0) {
            if (!json_is_true(json_object_get(f, "found"))) {
                chat_out_note(&c->out, "session %s not found", c->session);
                return CHAT_EXIT_HTTP;
            }
            if (json_is_true(json_object_get(f, "truncated")))
                st = fill_hole(c, json_integer_value(json_object_get(f, "firstSeq")));
            if (st == FILL_INTERRUPTED)
                return 0; /* none of this answer's events: they would leave a hole */
        } else {
            st = apply(c, f);
        }
        if (st || c->done)
            return st;
    }
    return 0;
}

/* ---- abort, poll ----------------------------------------------------------- */

static void post_abort(struct chat *c)
{
    chat_out_note(&c->out, "aborting the run (Ctrl-C again to quit at once)");
    json_t *body = json_pack("{s:s}", "sessionId", c->session);
    struct http_answer ans;
    struct cgw_error err;
    enum cgw_err rc =
        body ? http_request(c->http, "POST", "/chat/abort", body, SHORT_TIMEOUT_MS, &ans, &err)
             : cgw_error_set(&err, CGW_ERR_NOMEM, "out of memory");
    json_decref(body);
    if (rc != CGW_OK)
        chat_out_note(&c->out, "abort: %s", err.text);
    else if (ans.status != 200 && ans.status != 202 && ans.status != 409)
        chat_out_note(&c->out, "abort: HTTP %ld %s", ans.status, ans.code);
    http_answer_clear(&ans);
    c->abort_sent = true;
}

/* Polls until the run's complete. Returns the exit status. */
static int follow(struct chat *c)
{
    long backoff = RETRY_FIRST_MS;
    int64_t failing_since = 0;
    while (!c->done) {
        if (interrupts > c->handled) {
            c->handled = interrupts;
            if (!c->abort_sent)
                post_abort(c);
        }
        json_t *body = json_pack("{s:[{s:s, s:I}], s:I}", "sessions", "sessionId", c->session,
                                 "lastSeq", (json_int_t)c->cursor, "waitMs", (json_int_t)WAIT_MS);
        if (!body) {
            chat_out_note(&c->out, "out of memory");
            return CHAT_EXIT_FAILED;
        }
        struct http_answer ans;
        struct cgw_error err;
        enum cgw_err rc =
            http_request(c->http, "POST", "/chat/subscribe", body, POLL_TIMEOUT_MS, &ans, &err);
        json_decref(body);
        if (rc == CGW_ERR_TIMEOUT) { /* Ctrl-C: abort at the top of the loop */
            http_answer_clear(&ans);
            continue;
        }
        if (retryable(rc, &ans) || (rc == CGW_OK && ans.status == 429)) {
            int64_t now = now_ms();
            if (!failing_since) {
                failing_since = now;
                chat_out_note(&c->out, "subscribe: %s; retrying",
                              rc == CGW_OK ? (ans.code[0] ? ans.code : "server error") : err.text);
            }
            if (now - failing_since > RETRY_GIVE_UP_MS) {
                int st = http_fail(c, "subscribe", rc == CGW_OK ? &ans : NULL, &err);
                http_answer_clear(&ans);
                return st;
            }
            http_answer_clear(&ans);
            pause_ms(backoff);
            backoff = backoff * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : backoff * 2;
            continue;
        }
        if (rc != CGW_OK || ans.status != 200) {
            int st = http_fail(c, "subscribe", rc == CGW_OK ? &ans : NULL, &err);
            http_answer_clear(&ans);
            return st;
        }
        failing_since = 0;
        backoff = RETRY_FIRST_MS;
        int st = apply_frames(c, json_object_get(ans.json, "frames"));
        http_answer_clear(&ans);
        if (st)
            return st;
    }
    return c->exit;
}

/* ---- session, prompt, send ------------------------------------------------- */

static const char *env_get(const struct ctl *ctl, const char *name)
{
    size_t n = strlen(name);
    const char *v = NULL;
    for (char *const *e = ctl->envp; e && *e; e++) {
        if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
            v = *e + n + 1;
    }
    return v;
}

/* The prompt: the arguments joined by blanks, or stdin ("-", or none with stdin not a
 * terminal). Returns a new string, or NULL after printing why (*status set). */
static char *read_prompt(struct chat *c, const struct ctl_args *a, int *status)
{
    bool from_stdin =
        (a->argc == 1 && strcmp(a->argv[0], "-") == 0) || (a->argc == 0 && !isatty(STDIN_FILENO));
    *status = CHAT_EXIT_USAGE;
    if (a->argc == 0 && !from_stdin) {
        ctl_usage_error(c->ctl, "missing prompt (arguments, '-' or a pipe on stdin)");
        return NULL;
    }
    size_t len = 0, cap = 4096;
    char *buf = malloc(cap);
    if (!buf) {
        *status = ctl_fail(c->ctl, CGW_ERR_NOMEM, "out of memory");
        return NULL;
    }
    buf[0] = '\0';
    if (from_stdin) {
        size_t n;
        while ((n = fread(buf + len, 1, cap - len - 1, stdin)) > 0) {
            len += n;
            if (len + 1 == cap) {
                char *grown = cap * 2 <= PROMPT_MAX ? realloc(buf, cap * 2) : NULL;
                if (!grown) {
                    free(buf);
                    ctl_usage_error(c->ctl, "the prompt on stdin is over %u bytes", PROMPT_MAX);
                    return NULL;
                }
                buf = grown;
                cap *= 2;
            }
        }
        buf[len] = '\0';
    } else {
        for (int i = 0; i < a->argc; i++) {
            size_t n = strlen(a->argv[i]) + (i ? 1 : 0);
            if (len + n + 1 > cap) {
                while (len + n + 1 > cap)
                    cap *= 2;
                char *grown = cap <= PROMPT_MAX ? realloc(buf, cap) : NULL;
                if (!grown) {
                    free(buf);
                    ctl_usage_error(c->ctl, "the prompt is over %u bytes", PROMPT_MAX);
                    return NULL;
                }
                buf = grown;
            }
            snprintf(buf + len, cap - len, "%s%s", i ? " " : "", a->argv[i]);
            len += n;
        }
    }
    if (strlen(buf) != len || len == 0) {
        free(buf);
        ctl_usage_error(c->ctl, len ? "the prompt holds a NUL byte" : "the prompt is empty");
        return NULL;
    }
    *status = CHAT_EXIT_SUCCESS;
    return buf;
}

/* POST /sessions for --new; the id goes to c->session and stderr. */
static int create_session(struct chat *c, const char *provider, const char *project)
{
    json_t *body = json_pack("{s:s, s:s}", "provider", provider, "projectPath", project);
    struct http_answer ans;
    struct cgw_error err;
    enum cgw_err rc =
        body ? http_request(c->http, "POST", "/sessions", body, SHORT_TIMEOUT_MS, &ans, &err)
             : cgw_error_set(&err, CGW_ERR_NOMEM, "out of memory");
    json_decref(body);
    const char *id = json_string_value(json_object_get(json_object_get(ans.json, "session"), "id"));
    int st = CHAT_EXIT_SUCCESS;
    if (rc != CGW_OK || ans.status != 201 || !id)
        st = http_fail(c, "creating the session", rc == CGW_OK ? &ans : NULL, &err);
    else
        snprintf(c->session, sizeof c->session, "%s", id);
    if (st == CHAT_EXIT_SUCCESS)
        chat_out_note(&c->out, "new session %s", c->session);
    http_answer_clear(&ans);
    return st;
}

/* POST /chat/send; sets the cursor to the session's seq before the run. 503s (nothing
 * was changed) are retried; anything else is not (a send is not idempotent). */
static int send_prompt(struct chat *c, const char *prompt, const char *mode)
{
    json_t *body = json_pack("{s:s, s:s}", "sessionId", c->session, "content", prompt);
    if (body && mode)
        json_object_set_new(body, "options", json_pack("{s:s}", "permissionMode", mode));
    if (!body)
        return ctl_fail(c->ctl, CGW_ERR_NOMEM, "out of memory");
    struct http_answer ans;
    struct cgw_error err;
    enum cgw_err rc;
    long backoff = RETRY_FIRST_MS;
    int64_t start = now_ms();
    for (;;) {
        rc = http_request(c->http, "POST", "/chat/send", body, SHORT_TIMEOUT_MS, &ans, &err);
        if (rc != CGW_OK || ans.status != 503 || now_ms() - start > RETRY_GIVE_UP_MS || interrupts)
            break;
        http_answer_clear(&ans);
        pause_ms(backoff);
        backoff = backoff * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : backoff * 2;
    }
    json_decref(body);
    const json_t *last = json_object_get(ans.json, "lastSeq");
    const char *run = json_string_value(json_object_get(ans.json, "runId"));
    int st = CHAT_EXIT_SUCCESS;
    if (rc != CGW_OK || ans.status != 202 || !json_is_integer(last))
        st = http_fail(c, "sending", rc == CGW_OK ? &ans : NULL, &err);
    else {
        c->cursor = json_integer_value(last);
        snprintf(c->run_id, sizeof c->run_id, "%s", run ? run : "");
    }
    http_answer_clear(&ans);
    return st;
}

/* Checks the options and copies the rules into the policy. */
static int parse_options(struct chat *c, const struct ctl_args *a)
{
    const char *const *o = a->opt;
    if (o[OPT_NEW] && o[OPT_SESSION])
        return ctl_usage_error(c->ctl, "--session and --new exclude each other");
    if (!o[OPT_NEW] && !o[OPT_SESSION])
        return ctl_usage_error(c->ctl, "give --session ID, or --new --provider P --project PATH");
    if (o[OPT_NEW] && (!o[OPT_PROVIDER] || !o[OPT_PROJECT]))
        return ctl_usage_error(c->ctl, "--new needs --provider and --project");
    if (!o[OPT_NEW] && (o[OPT_PROVIDER] || o[OPT_PROJECT]))
        return ctl_usage_error(c->ctl, "--provider and --project go with --new");
    if (o[OPT_ALLOW_ALL] && o[OPT_DENY_ALL])
        return ctl_usage_error(c->ctl, "--allow-all and --deny-all exclude each other");
    if (a->count[OPT_ALLOW] > CHAT_MAX_RULES || a->count[OPT_DENY] > CHAT_MAX_RULES)
        return ctl_usage_error(c->ctl, "at most %d --allow and %d --deny rules", CHAT_MAX_RULES,
                               CHAT_MAX_RULES);
    for (int i = 0; i < a->count[OPT_ALLOW]; i++)
        c->policy.allow[c->policy.nallow++] = a->all[OPT_ALLOW][i];
    for (int i = 0; i < a->count[OPT_DENY]; i++)
        c->policy.deny[c->policy.ndeny++] = a->all[OPT_DENY][i];
    for (size_t i = 0; i < c->policy.nallow + c->policy.ndeny; i++) {
        const char *r =
            i < c->policy.nallow ? c->policy.allow[i] : c->policy.deny[i - c->policy.nallow];
        const char *open = strchr(r, '(');
        if (!r[0] || r[0] == '(' || (open && r[strlen(r) - 1] != ')'))
            return ctl_usage_error(c->ctl, "invalid rule '%s' (Tool, or Tool(argument))", r);
    }
    c->policy.allow_all = o[OPT_ALLOW_ALL] != NULL;
    c->policy.deny_all = o[OPT_DENY_ALL] != NULL;
    if (o[OPT_SESSION])
        snprintf(c->session, sizeof c->session, "%s", o[OPT_SESSION]);
    c->out.json = o[OPT_JSON] != NULL;
    c->out.out_tty = isatty(STDOUT_FILENO);
    c->out.err_tty = isatty(STDERR_FILENO);
    return CHAT_EXIT_SUCCESS;
}

static int chat_run(struct chat *c, const struct ctl_args *a, const char *prompt)
{
    const char *url = env_get(c->ctl, "CHATGW_URL");
    if (!url || !url[0])
        return ctl_usage_error(c->ctl, "CHATGW_URL is not set (the API's URL, e.g. "
                                       "http://localhost:8080/api)");
    struct cgw_error err;
    if (http_client_new(url, env_get(c->ctl, "CHATGW_TOKEN"), &c->http, &err) != CGW_OK)
        return ctl_fail(c->ctl, err.code, "%s", err.text);
    http_client_set_cancel(c->http, cancel_on_interrupt, c);

    int st = CHAT_EXIT_SUCCESS;
    if (a->opt[OPT_NEW])
        st = create_session(c, a->opt[OPT_PROVIDER], a->opt[OPT_PROJECT]);
    if (interrupts) /* before anything runs: nothing to abort */
        return CHAT_EXIT_ABORTED;
    if (st == CHAT_EXIT_SUCCESS) {
        http_client_set_cancel(c->http, NULL, NULL); /* a send cut short may still start */
        st = send_prompt(c, prompt, a->opt[OPT_MODE]);
        http_client_set_cancel(c->http, cancel_on_interrupt, c);
    }
    if (st == CHAT_EXIT_SUCCESS)
        st = follow(c);
    return st;
}

int cmd_chat(struct ctl *ctl, const struct ctl_args *a)
{
    struct chat c = {.ctl = ctl};
    int st = parse_options(&c, a);
    if (st != CHAT_EXIT_SUCCESS)
        return st;
    char *prompt = read_prompt(&c, a, &st);
    if (!prompt)
        return st;

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: a read of the terminal ends with EINTR */
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    st = chat_run(&c, a, prompt);
    chat_out_finish(&c.out);
    http_client_free(c.http);
    for (size_t i = 0; i < c.nanswered; i++)
        free(c.answered[i]);
    free(prompt);
    return st;
}
