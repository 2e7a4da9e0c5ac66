/* alloc_parsers.c: every allocation of each provider adapter fails in turn: the run request
 * decoder, argv and environment, the stdin protocol, every recorded transcript of
 * tests/fixtures/<provider>/, finish, interrupt and permission answers. */
#include <dirent.h>

#include "core/log.h"
#include "failalloc.h"
#include "runner/provider.h"
#include "tap.h"

#define MAX_LINES 4096

struct fixture {
    const struct runner_provider *prov;
    const char *request;    /* run request JSON */
    char *lines[MAX_LINES]; /* every "out" line of every transcript; NULL separates files */
    size_t n;
    char files[64][300]; /* the transcripts' names, in order */
    size_t n_files;
};

/* Replaces the value of "key":"..." in text with X (event ids and timestamps). */
static void mask(char *text, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":\"", key);
    for (char *p = strstr(text, pat); p; p = strstr(p, pat))
        for (p += strlen(pat); *p && *p != '"'; p++)
            *p = 'X';
}

static void log_json(struct fa_log *log, const char *what, const json_t *v)
{
    char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (text) {
        mask(text, "id");
        mask(text, "timestamp");
    }
    fa_logf(log, "%s %s", what, text ? text : "(null)");
    free(text);
}

/* The items into the log (held: the test's own allocations never fail); 0, or -1 when
 * the adapter said memory ran out. */
static int log_items(struct fa_log *log, struct runner_items *it)
{
    int rc = it->failed ? -1 : 0;
    failalloc_hold();
    for (size_t i = 0; i < it->n; i++) {
        const struct runner_item *x = &it->v[i];
        switch (x->type) {
        case RUNNER_ITEM_EVENT:
            if (!x->ev) {
                fa_logf(log, "event NULL");
                rc = -1;
            } else {
                log_json(log, "event", x->ev);
            }
            break;
        case RUNNER_ITEM_NATIVE_ID:
            fa_logf(log, "native_id %s", x->id);
            break;
        case RUNNER_ITEM_PERMISSION:
            fa_logf(log, "permission %s %s", x->id, x->tool_name);
            log_json(log, "  input", x->input);
            break;
        case RUNNER_ITEM_CANCEL:
            fa_logf(log, "cancel %s", x->id);
            break;
        case RUNNER_ITEM_RESULT:
            fa_logf(log, "result %d %s", x->is_error, x->text ? x->text : "-");
            break;
        }
    }
    runner_items_clear(it);
    failalloc_release();
    return rc;
}

static void log_strv(struct fa_log *log, const char *what, const struct runner_strv *sv)
{
    for (size_t i = 0; i < sv->n; i++)
        fa_logf(log, "%s[%zu] %s", what, i, sv->v[i]);
}

/* What the CLI's stdin got (request ids carry a random tag: masked by length only). */
static void log_in(struct fa_log *log, struct runner_buf *in)
{
    if (in->len)
        fa_logf(log, "stdin %zu bytes", in->len);
    runner_buf_consume(in, in->len);
}

/* One transcript from lines[*at] to the next NULL, through a fresh state. */
static int transcript(struct fa_log *log, const struct fixture *fx,
                      const struct runner_request *req, size_t *at)
{
    const struct event_ctx ctx = {req->session_id, req->run_id, fx->prov->name};
    const struct runner_provider *p = fx->prov;
    struct runner_buf in = {0};
    struct runner_items it = {0};
    int rc = 0, r;
    void *st = p->state_new(&ctx, req);

    if (!st) {
        while (*at < fx->n && fx->lines[*at])
            (*at)++;
        return -1;
    }
    if (p->stdin_protocol && p->start && p->start(st, &in) < 0)
        rc = -1;
    log_in(log, &in);
    for (; *at < fx->n && fx->lines[*at]; (*at)++) {
        p->parse_line(st, fx->lines[*at], strlen(fx->lines[*at]), &it, &in);
        rc |= log_items(log, &it);
        log_in(log, &in);
    }
    if (p->finish) {
        p->finish(st, &it);
        rc |= log_items(log, &it);
    }
    if (p->answer) {
        json_t *input = json_object();
        if (!input || p->answer(st, "req_1", true, input, NULL, &in) < 0 ||
            p->answer(st, "req_2", false, NULL, "denied by rule", &in) < 0)
            rc = -1;
        json_decref(input);
        log_in(log, &in);
    }
    if (p->interrupt) {
        r = p->interrupt(st, &in);
        fa_logf(log, "interrupt %d", r);
        rc |= r < 0 ? -1 : 0;
        log_in(log, &in);
    }
    p->state_free(st);
    runner_buf_free(&in);
    return rc;
}

/* The run request, argv and environment. */
static int setup_scenario(struct fa_log *log, void *arg)
{
    const struct fixture *fx = arg;
    const struct runner_provider *p = fx->prov;
    struct runner_request req;
    struct runner_strv argv = {0}, env = {0};
    struct cgw_error err = {0};
    enum cgw_err e;
    int rc = 0;

    e = runner_request_parse(fx->request, strlen(fx->request), &req, &err);
    if (e != CGW_OK)
        return e;
    fa_logf(log, "request %s %s %zu %zu", req.session_id, req.content, req.n_allowed,
            req.n_disallowed);
    if (p->build_argv(&req, &argv) < 0)
        rc = -1;
    log_strv(log, "argv", &argv);
    if (p->build_env && p->build_env(&req, &env) < 0)
        rc = -1;
    log_strv(log, "env", &env);
    runner_strv_free(&argv);
    runner_strv_free(&env);
    runner_request_free(&req);
    return rc;
}

/* One transcript: a loop of its own, so that the loop's cost grows with the square of
 * a transcript's allocations, not of all of them. */
struct one_file {
    const struct fixture *fx;
    const struct runner_request *req;
    size_t first; /* index of its first line in fx->lines */
};

static int file_scenario(struct fa_log *log, void *arg)
{
    const struct one_file *of = arg;
    size_t at = of->first;
    return transcript(log, of->fx, of->req, &at);
}

/* Reads every *.jsonl of tests/fixtures/<name>/ in name order: raw stdout lines, or
 * {"dir","msg"} records of which the "out" ones are the CLI's lines. */
static void load(struct fixture *fx, const char *name)
{
    const char *top = getenv("top_srcdir");
    char dir[1024], path[1280];
    struct dirent **names;
    int n;

    snprintf(dir, sizeof dir, "%s/tests/fixtures/%s", top ? top : "..", name);
    n = scandir(dir, &names, NULL, alphasort);
    if (n < 0)
        BAIL_OUT("cannot read %s", dir);
    for (int i = 0; i < n; i++) {
        size_t len = strlen(names[i]->d_name);
        if (len > 6 && strcmp(names[i]->d_name + len - 6, ".jsonl") == 0) {
            snprintf(path, sizeof path, "%s/%s", dir, names[i]->d_name);
            FILE *f = fopen(path, "r");
            char *line = NULL;
            size_t cap = 0;
            ssize_t got;
            if (!f || fx->n_files == 64)
                BAIL_OUT("cannot open %s", path);
            snprintf(fx->files[fx->n_files++], sizeof fx->files[0], "%s %s", name,
                     names[i]->d_name);
            while ((got = getline(&line, &cap, f)) > 0 && fx->n < MAX_LINES - 1) {
                if (line[got - 1] == '\n')
                    line[--got] = '\0';
                json_t *rec = json_loadb(line, (size_t)got, 0, NULL);
                const char *d = json_string_value(json_object_get(rec, "dir"));
                if (!d)
                    fx->lines[fx->n++] = strdup(line);
                else if (strcmp(d, "out") == 0)
                    fx->lines[fx->n++] = json_dumps(json_object_get(rec, "msg"), JSON_COMPACT);
                json_decref(rec);
            }
            free(line);
            fclose(f);
            fx->lines[fx->n++] = NULL;
        }
        free(names[i]);
    }
    free(names);
}

/* The loops of one provider: setup, then each transcript. True when all passed. */
static bool provider_loops(const struct fixture *fx, const char *name)
{
    struct runner_request req;
    struct cgw_error err = {0};
    long points = 0, n;
    bool good = true;
    size_t files = 0;

    n = failalloc_loop(name, setup_scenario, (void *)fx);
    good &= n > 0;
    points += n > 0 ? n : 0;
    if (runner_request_parse(fx->request, strlen(fx->request), &req, &err) != CGW_OK)
        BAIL_OUT("request: %s", err.text);
    for (size_t at = 0; at < fx->n; at++) {
        struct one_file of = {fx, &req, at};
        n = failalloc_loop(fx->files[files], file_scenario, &of);
        good &= n > 0;
        points += n > 0 ? n : 0;
        files++;
        while (at < fx->n && fx->lines[at])
            at++;
    }
    runner_request_free(&req);
    diag("%s: %ld failure points in all (argv, environment and %zu transcripts)", name, points,
         files);
    return good;
}

int main(void)
{
    static const char *const names[] = {"claude", "codex", "cursor", "gemini", "opencode"};
    static const struct runner_provider *const provs[] = {
        &claude_provider, &codex_provider, &cursor_provider, &gemini_provider, &opencode_provider};
    static struct fixture fx;
    char request[1024];

    failalloc_init();
    log_init("alloc", LOG_LEVEL_ERROR);
    plan(5);
    for (size_t i = 0; i < 5; i++) {
        memset(&fx, 0, sizeof fx);
        fx.prov = provs[i];
        snprintf(request, sizeof request,
                 "{\"sessionId\":\"2b1f0d6e-1111-4222-8333-444455556666\",\"runId\":\"run_x\","
                 "\"provider\":\"%s\",\"owner\":3,\"projectPath\":\"/srv/p\",\"nativeId\":"
                 "\"n-1\",\"content\":\"hi there\",\"options\":{\"model\":\"m-1\","
                 "\"permissionMode\":\"default\",\"toolsSettings\":{\"allowedTools\":[\"Read\","
                 "\"Bash(ls:*)\"],\"disallowedTools\":[\"Write\"],\"skipPermissions\":false}}}",
                 names[i]);
        fx.request = request;
        load(&fx, names[i]);
        ok(provider_loops(&fx, names[i]),
           "%s: every failure answered with an error or the same "
           "result",
           names[i]);
        for (size_t k = 0; k < fx.n; k++)
            free(fx.lines[k]);
    }
    return done_testing();
}
