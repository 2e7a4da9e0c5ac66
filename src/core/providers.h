/* providers.h: what chatgw can do with each provider CLI, for /providers, send's
 * permission-mode check and `chatgwctl doctor` (one table, read by fcgi and ctl).
 */
#ifndef CGW_CORE_PROVIDERS_H
#define CGW_CORE_PROVIDERS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/config.h"

struct provider_caps {
    const char *modes[8]; /* permission modes a send may ask for, NULL-terminated */
    bool permission_requests, abort, resume;
};

/* Indexed by enum provider_id, made from the rows of provider_list.h; read-only.
 * Every provider has a runner adapter (the runner's table is made from the same rows). */
extern const struct provider_caps provider_caps[PROVIDER__COUNT];

/* True when mode is one of p's permission modes. */
bool provider_mode_known(enum provider_id p, const char *mode);

/* Finds bin like execvp would: a name with a '/' as is, else each entry of path_env
 * (NULL: the default PATH; an empty entry is the current directory). Writes the file
 * found into out (size bytes) and returns 0, or -1 with errno set (ENOENT when no entry
 * has it). A file counts when it is a regular file we may execute. */
int provider_find_bin(const char *bin, const char *path_env, char *out, size_t size);

/* The /providers entry of p: {provider, available, permissionModes,
 * supportsPermissionRequests, supportsAbort, supportsResume}; available is found. Returns a new
 * reference, NULL when memory ran out. */
json_t *provider_caps_json(enum provider_id p, bool found);

#endif
