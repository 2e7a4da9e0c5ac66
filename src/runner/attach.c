/* attach.c: a run's attachment files: written before the CLI starts, removed at the end. */
#ifdef HAVE_CONFIG_H
#include "config.h" /* autoconf's: _GNU_SOURCE */
#endif
#include "runner/attach.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"

#define SAFE_NAME_MAX 80 /* bytes of the user's name kept in a file name */

void runner_attachment_file_name(size_t index, const char *name, char *out, size_t size)
{
    int n = snprintf(out, size, "%zu-", index);
    size_t at = n > 0 && (size_t)n < size ? (size_t)n : 0, start = at;

    for (const char *p = name ? name : ""; *p && at + 1 < size && at - start < SAFE_NAME_MAX; p++) {
        unsigned char c = (unsigned char)*p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
        out[at++] = ok ? (char)c : '_';
    }
    out[at] = '\0';
    /* Nothing usable, or only dots and underscores: a neutral name. */
    if (strspn(out + start, "._") == at - start)
        snprintf(out + start, size - start, "attachment");
}

/* Writes len bytes to a new file path (0600); 0 or -1 with errno. */
static int write_file(const char *path, const unsigned char *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    for (size_t off = 0; off < len;) {
        ssize_t w = write(fd, data + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int e = w < 0 ? errno : EIO;
            close(fd);
            errno = e;
            return -1;
        }
        off += (size_t)w;
    }
    return close(fd);
}

void runner_attachments_remove(struct runner_request *req)
{
    if (!req->attach_dir)
        return;
    for (size_t i = 0; i < req->n_attachments; i++) {
        struct runner_attachment *a = &req->attachments[i];
        if (a->path && unlink(a->path) < 0 && errno != ENOENT)
            log_warn("removing attachment file %s: %s", a->path, strerror(errno));
        free(a->path);
        a->path = NULL;
    }
    if (rmdir(req->attach_dir) < 0 && errno != ENOENT)
        log_warn("removing attachment directory %s: %s", req->attach_dir, strerror(errno));
    free(req->attach_dir);
    req->attach_dir = NULL;
}

enum cgw_err runner_attachments_write(struct runner_request *req,
                                      const struct runner_provider *prov, const char *tmpdir,
                                      runner_attach_get_fn get, void *ctx, struct cgw_error *err)
{
    char dir[PATH_MAX], name[SAFE_NAME_MAX + 32];
    enum cgw_err rc = CGW_OK;

    if (req->n_attachments == 0)
        return CGW_OK;
    if (!prov->attachments)
        return cgw_error_set(err, CGW_ERR_INVALID,
                             "%s cannot take attachments (images or files): the %s CLI has no "
                             "way to receive them; send the prompt without attachments",
                             prov->name, prov->name);
    if (!tmpdir || !*tmpdir)
        tmpdir = getenv("TMPDIR");
    if (!tmpdir || !*tmpdir)
        tmpdir = "/tmp";
    int n = snprintf(dir, sizeof dir, "%s/chatgw-att-XXXXXX", tmpdir);
    if (n < 0 || (size_t)n >= sizeof dir)
        return cgw_error_set(err, CGW_ERR_INVALID, "attachments: TMPDIR %s is too long", tmpdir);
    if (!mkdtemp(dir)) /* mode 0700 */
        return cgw_error_set(err, CGW_ERR_IO, "attachments: cannot make a directory in %s: %s",
                             tmpdir, strerror(errno));
    if (!(req->attach_dir = strdup(dir))) {
        rmdir(dir);
        return cgw_error_set(err, CGW_ERR_NOMEM, "attachments: out of memory");
    }
    for (size_t i = 0; i < req->n_attachments && rc == CGW_OK; i++) {
        struct runner_attachment *a = &req->attachments[i];
        free(a->data);
        a->data = NULL;
        rc = get(ctx, a, &a->data, &a->len, err);
        if (rc != CGW_OK)
            break;
        if (a->size != (int64_t)a->len) {
            log_warn("attachment %s: the request says %lld bytes, the store has %zu", a->id,
                     (long long)a->size, a->len);
            a->size = (int64_t)a->len;
        }
        runner_attachment_file_name(i + 1, a->name, name, sizeof name);
        if (asprintf(&a->path, "%s/%s", dir, name) < 0) {
            a->path = NULL;
            rc = cgw_error_set(err, CGW_ERR_NOMEM, "attachments: out of memory");
        } else if (write_file(a->path, a->data ? a->data : (const unsigned char *)"", a->len) < 0) {
            rc = cgw_error_set(err, CGW_ERR_IO, "attachment %s (%s): writing %s: %s", a->id,
                               a->name, a->path, strerror(errno));
        }
    }
    if (rc != CGW_OK)
        runner_attachments_remove(req);
    return rc;
}
