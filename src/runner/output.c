/* output.c: a run's side of the CLI's pipes: prompt and answers in, lines and stderr out. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "runner/run_priv.h"

/* ---- the CLI's stdin ------------------------------------------------------------- */

/* Writes what the CLI can take now; closes its stdin when asked and everything is out. */
void runner_flush_in(struct run *r)
{
    while (r->in.len > 0 && r->child.in_fd >= 0) {
        ssize_t n = write(r->child.in_fd, r->in.data, r->in.len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) {
            log_info("%s closed its stdin (%s)", r->prov->name, strerror(errno));
            runner_child_close_in(&r->child);
            break;
        }
        runner_buf_consume(&r->in, (size_t)n);
    }
    if (r->child.in_fd < 0)
        r->in.len = 0;
    else if (r->in.len == 0 && r->in_close)
        runner_child_close_in(&r->child);
}

/* ---- the CLI's output ------------------------------------------------------------ */

static void native_id_seen(struct run *r, const char *id)
{
    struct cgw_error err;
    if (r->native_id && strcmp(r->native_id, id) == 0)
        return;
    if (r->store) {
        enum cgw_err rc = store_session_set_native_id(r->store, r->session_id, id, &err);
        if (rc == CGW_ERR_CONFLICT)
            log_warn("%s reports session id %s, but another one is recorded; keeping that",
                     r->prov->name, id);
        else if (rc != CGW_OK)
            log_warn("recording the native session id: %s", err.text);
        else
            log_info("native session id %s recorded", id);
    }
    free(r->native_id);
    r->native_id = strdup(id);
}

static void handle_items(struct run *r, struct runner_items *items)
{
    for (size_t i = 0; i < items->n && !r->lost && !r->failed; i++) {
        struct runner_item *it = &items->v[i];
        switch (it->type) {
        case RUNNER_ITEM_EVENT: {
            json_t *ev = it->ev;
            it->ev = NULL;
            runner_publish(r, ev, NULL);
            break;
        }
        case RUNNER_ITEM_NATIVE_ID:
            native_id_seen(r, it->id);
            break;
        case RUNNER_ITEM_PERMISSION:
            runner_perm_request(r, it);
            break;
        case RUNNER_ITEM_CANCEL:
            runner_perm_withdrawn(r, it->id);
            break;
        case RUNNER_ITEM_RESULT:
            r->result_seen = true;
            r->result_error = r->result_error || it->is_error;
            if (it->is_error && it->text && !r->stopping)
                runner_publish_error(r, it->text);
            /* One turn per run: the CLI ends once its stdin closes. */
            if (r->prov->stdin_protocol)
                r->in_close = true;
            break;
        }
    }
    if (items->failed)
        log_error("out of memory reading %s output; some of it is lost", r->prov->name);
}

/* One complete stdout line (r->line, without its newline). */
static void handle_line(struct run *r)
{
    struct runner_items items = {0};
    size_t len = r->line.len;
    char *line = r->line.data;

    r->last_output = runner_now_ms();
    while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == ' ' || line[len - 1] == '\t'))
        len--;
    size_t start = 0;
    while (start < len && (line[start] == ' ' || line[start] == '\t'))
        start++;
    if (start == len)
        return;       /* blank */
    line[len] = '\0'; /* room: the buffer held at least the newline-less line + 1 */
    r->prov->parse_line(r->pst, line + start, len - start, &items, &r->in);
    handle_items(r, &items);
    runner_items_clear(&items);
    runner_flush_in(r);
}

static void line_too_long(struct run *r)
{
    char text[160];
    snprintf(text, sizeof text,
             "%s wrote an output line longer than limits.max_line (%" PRId64 " bytes); skipped",
             r->prov->name, r->cfg->max_line);
    runner_publish_error(r, text);
}

/* Splits a chunk of stdout into lines (bounded by limits.max_line). */
static void feed_stdout(struct run *r, const char *data, size_t n)
{
    size_t max = (size_t)r->cfg->max_line;
    while (n > 0 && !r->lost && !r->failed) {
        const char *nl = memchr(data, '\n', n);
        size_t seg = nl ? (size_t)(nl - data) : n;
        size_t used = nl ? seg + 1 : n;
        if (r->skipping) {
            if (nl)
                r->skipping = false;
        } else if (r->line.len + seg > max) {
            r->line.len = 0;
            r->skipping = nl == NULL;
            line_too_long(r);
        } else if (runner_buf_append(&r->line, data, seg) < 0 ||
                   runner_buf_append(&r->line, "", 1) < 0) {
            log_error("out of memory reading a line; skipped");
            r->line.len = 0;
            r->skipping = nl == NULL;
        } else {
            r->line.len--; /* the NUL stays behind the line */
            if (nl) {
                handle_line(r);
                r->line.len = 0;
            }
        }
        data += used;
        n -= used;
    }
}

void runner_stdout_eof(struct run *r)
{
    struct runner_items items = {0};
    if (r->line.len > 0 && !r->skipping) {
        log_info("%s output ended without a final newline", r->prov->name);
        handle_line(r);
    }
    r->line.len = 0;
    r->skipping = false;
    if (r->prov->finish) {
        r->prov->finish(r->pst, &items);
        handle_items(r, &items);
        runner_items_clear(&items);
    }
    close(r->child.out_fd);
    r->child.out_fd = -1;
}

void runner_read_stdout(struct run *r)
{
    char chunk[RUN_READ_CHUNK];
    ssize_t n = read(r->child.out_fd, chunk, sizeof chunk);
    if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
        return;
    if (n < 0)
        log_warn("reading %s output: %s", r->prov->name, strerror(errno));
    if (n <= 0) {
        runner_stdout_eof(r);
        return;
    }
    /* The events of the whole chunk go to Redis together (runner_publish). */
    r->deferring = true;
    feed_stdout(r, chunk, (size_t)n);
    r->deferring = false;
    runner_publish_flush(r);
}

static void log_stderr_line(struct run *r)
{
    if (r->errline.len == 0)
        return;
    log_info("%s stderr: %.*s%s", r->prov->name,
             (int)(r->errline.len < RUN_LOG_LINE ? r->errline.len : RUN_LOG_LINE), r->errline.data,
             r->errline.len > RUN_LOG_LINE ? "..." : "");
    r->errline.len = 0;
}

void runner_read_stderr(struct run *r)
{
    char chunk[8192];
    ssize_t n = read(r->child.err_fd, chunk, sizeof chunk);
    if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
        return;
    if (n <= 0) {
        log_stderr_line(r);
        close(r->child.err_fd);
        r->child.err_fd = -1;
        return;
    }
    /* The tail keeps the last RUN_TAIL bytes. */
    size_t len = (size_t)n;
    if (len >= RUN_TAIL) {
        memcpy(r->tail, chunk + len - RUN_TAIL, RUN_TAIL);
        r->tail_len = RUN_TAIL;
    } else {
        if (r->tail_len + len > RUN_TAIL) {
            size_t drop = r->tail_len + len - RUN_TAIL;
            memmove(r->tail, r->tail + drop, r->tail_len - drop);
            r->tail_len -= drop;
        }
        memcpy(r->tail + r->tail_len, chunk, len);
        r->tail_len += len;
    }
    for (size_t i = 0; i < len; i++) {
        if (chunk[i] == '\n')
            log_stderr_line(r);
        else if (r->errline.len < RUN_LOG_LINE + 1 &&
                 runner_buf_append(&r->errline, chunk + i, 1) < 0)
            r->errline.len = 0;
    }
}
