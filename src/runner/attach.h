/* attach.h: the files a user attached to a prompt, on disk for the length of one run.
 *
 * The run request names the attachments (metadata only, provider.h); before the CLI
 * starts, runner_attachments_write reads each one's bytes (through a callback: run.c
 * reads the store) and writes them into a private directory of the run,
 * <TMPDIR>/chatgw-att-XXXXXX (0700, files 0600, named "<n>-<safe name>"), never inside
 * the project. Under bubblewrap the directory is bound read-only at the same path
 * (sandbox.h). The adapters pass the files as their CLI takes them (doc/providers.md);
 * runner_attachments_remove deletes the directory when the run ends. Main thread only.
 */
#ifndef CGW_RUNNER_ATTACH_H
#define CGW_RUNNER_ATTACH_H

#include <stddef.h>

#include "core/err.h"
#include "runner/provider.h"

/* Reads the bytes of attachment a: CGW_OK with *data (malloc'd, the caller frees) and
 * *len, else an error with err set. */
typedef enum cgw_err (*runner_attach_get_fn)(void *ctx, const struct runner_attachment *a,
                                             unsigned char **data, size_t *len,
                                             struct cgw_error *err);

/* Writes the attachments of req (none: CGW_OK, nothing done). An adapter without
 * `attachments` is CGW_ERR_INVALID ("<provider> cannot take attachments ..."); then
 * the directory is made under tmpdir (NULL or "": $TMPDIR, else /tmp), each attachment
 * read with get(ctx, ...) and written; a->path, a->data, a->len and req->attach_dir
 * are filled. On failure err names the attachment and nothing stays on disk. */
enum cgw_err runner_attachments_write(struct runner_request *req,
                                      const struct runner_provider *prov, const char *tmpdir,
                                      runner_attach_get_fn get, void *ctx, struct cgw_error *err);

/* Deletes req->attach_dir with its files and forgets it (NULL: nothing to do). */
void runner_attachments_remove(struct runner_request *req);

/* The file name of attachment number index (from 1) called name: "<index>-" and name
 * with every byte outside [A-Za-z0-9._-] replaced by '_', cut to fit size (at least 32);
 * "<index>-attachment" when name has nothing left. Never "." or "..", never a '/'. */
void runner_attachment_file_name(size_t index, const char *name, char *out, size_t size);

#endif
