/* control.c: the runner's control-list thread and the pipe that feeds its messages to the main
 * loop. */
#ifdef HAVE_CONFIG_H
#include "config.h" /* autoconf's: _GNU_SOURCE for pipe2, execvpe */
#endif

#include "runner/control.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "core/log.h"

#define CONTROL_POP_MS 1000         /* BLPOP timeout: also the longest join wait */
#define CONTROL_RETRY_MS 500        /* pause after a Redis error */
#define CONTROL_MAX_MSG (16u << 20) /* larger messages are dropped (fcgi caps bodies at 1 MiB) */

static void sleep_unless_stopped(struct runner_control *c, int64_t ms)
{
    struct timespec step = {0, 50 * 1000 * 1000};
    for (int64_t slept = 0; slept < ms && !atomic_load(&c->stop); slept += 50)
        nanosleep(&step, NULL);
}

/* Writes all of data to the pipe. 0, or -1 when the main loop closed its end. */
static int write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int forward(struct runner_control *c, const char *msg)
{
    size_t len = strlen(msg);
    uint32_t n = (uint32_t)len;
    if (len > CONTROL_MAX_MSG) {
        log_warn("control: dropping a control message of %zu bytes", len);
        return 0;
    }
    if (write_all(c->fds[1], &n, sizeof n) < 0 || write_all(c->fds[1], msg, len) < 0)
        return -1;
    return 0;
}

/* A message popped after the run stopped listening: an abort of this run is moot;
 * anything else is not ours to drop, so it goes back onto the list. */
static void late(struct runner_control *c, const char *msg)
{
    struct cgw_error err;
    json_t *v = json_loads(msg, 0, NULL);
    const char *type = json_string_value(json_object_get(v, "type"));
    const char *run = json_string_value(json_object_get(v, "runId"));
    bool ours = type && strcmp(type, "abort") == 0 && run && strcmp(run, c->run_id) == 0;
    json_decref(v);
    if (ours) {
        log_debug("control: dropping a late abort of this run");
        return;
    }
    if (bus_ctl_push(c->bus, c->session_id, msg, &err) != CGW_OK)
        log_warn("control: could not push back a late control message: %s", err.text);
    else
        log_debug("control: pushed back a control message that came after the run ended");
}

static void *control_main(void *arg)
{
    struct runner_control *c = arg;
    struct cgw_error err;
    bool failing = false;

    log_context_set(NULL, c->run_id, c->session_id);
    while (!atomic_load(&c->stop)) {
        char *msg = NULL;
        if (bus_ctl_pop(c->bus, c->session_id, CONTROL_POP_MS, &msg, &err) != CGW_OK) {
            if (!failing)
                log_warn("control: reading the control list: %s", err.text);
            failing = true;
            sleep_unless_stopped(c, CONTROL_RETRY_MS);
            continue;
        }
        if (failing)
            log_info("control: the control list can be read again");
        failing = false;
        if (!msg)
            continue;
        if (atomic_load(&c->stop) || forward(c, msg) < 0) {
            late(c, msg);
            free(msg);
            break;
        }
        free(msg);
    }
    log_context_clear();
    return NULL;
}

enum cgw_err runner_control_start(struct runner_control *c, const struct bus_config *bc,
                                  const char *session_id, const char *run_id, struct cgw_error *err)
{
    memset(c, 0, sizeof *c);
    c->fds[0] = c->fds[1] = -1;
    atomic_init(&c->stop, false);
    snprintf(c->session_id, sizeof c->session_id, "%s", session_id);
    snprintf(c->run_id, sizeof c->run_id, "%s", run_id);

    enum cgw_err rc = bus_open(bc, true, &c->bus, err);
    if (rc != CGW_OK)
        return rc;
    if (pipe2(c->fds, O_CLOEXEC) < 0) {
        rc = cgw_error_set(err, CGW_ERR_IO, "control pipe: %s", strerror(errno));
        goto fail;
    }
    int fl = fcntl(c->fds[0], F_GETFL);
    if (fl < 0 || fcntl(c->fds[0], F_SETFL, fl | O_NONBLOCK) < 0) {
        rc = cgw_error_set(err, CGW_ERR_IO, "control pipe: %s", strerror(errno));
        goto fail;
    }
    int e = pthread_create(&c->thread, NULL, control_main, c);
    if (e != 0) {
        rc = cgw_error_set(err, CGW_ERR_IO, "control thread: %s", strerror(e));
        goto fail;
    }
    c->started = true;
    return CGW_OK;
fail:
    runner_control_join(c);
    return rc;
}

int runner_control_fd(const struct runner_control *c)
{
    return c->started ? c->fds[0] : -1;
}

/* Appends the complete messages of c->rbuf to the list; 0 or -1 (out of memory). */
static int take_messages(struct runner_control *c, char ***msgs, size_t *n)
{
    size_t off = 0;
    int rc = 0;

    while (c->rbuf.len - off >= sizeof(uint32_t)) {
        uint32_t len;
        memcpy(&len, c->rbuf.data + off, sizeof len);
        if (c->rbuf.len - off - sizeof len < len)
            break;
        char *m = strndup(c->rbuf.data + off + sizeof len, len);
        char **v = m ? realloc(*msgs, (*n + 1) * sizeof **msgs) : NULL;
        if (!v) {
            free(m);
            log_error("control: out of memory; a control message is lost");
            rc = -1;
        } else {
            *msgs = v;
            v[(*n)++] = m;
        }
        off += sizeof len + len;
    }
    runner_buf_consume(&c->rbuf, off);
    return rc;
}

int runner_control_read(struct runner_control *c, char ***msgs, size_t *n)
{
    char chunk[16384];
    int rc = 0;

    *msgs = NULL;
    *n = 0;
    if (!c->started || c->fds[0] < 0)
        return -1;
    for (;;) {
        ssize_t got = read(c->fds[0], chunk, sizeof chunk);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (got <= 0) {
            rc = -1; /* the thread ended */
            break;
        }
        if (runner_buf_append(&c->rbuf, chunk, (size_t)got) < 0) {
            log_error("control: out of memory reading control messages");
            break;
        }
        if ((size_t)got < sizeof chunk)
            break;
    }
    take_messages(c, msgs, n);
    return rc;
}

void runner_control_stop(struct runner_control *c)
{
    atomic_store(&c->stop, true);
}

void runner_control_join(struct runner_control *c)
{
    atomic_store(&c->stop, true);
    /* A thread blocked writing to the pipe gets EPIPE once our end is closed. */
    if (c->fds[0] >= 0) {
        close(c->fds[0]);
        c->fds[0] = -1;
    }
    if (c->started) {
        pthread_join(c->thread, NULL);
        c->started = false;
    }
    if (c->fds[1] >= 0) {
        close(c->fds[1]);
        c->fds[1] = -1;
    }
    bus_close(c->bus);
    c->bus = NULL;
    runner_buf_free(&c->rbuf);
}
