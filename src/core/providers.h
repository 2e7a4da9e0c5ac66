/* providers.h: what chatgw can do with each provider CLI, for /providers, send's
 * permission-mode check and `chatgwctl doctor` (one table, read by fcgi and ctl).
 */
#ifndef CGW_CORE_PROVIDERS_H
#define CGW_CORE_PROVIDERS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/config.h"

struct provider_caps {
    const char *modes[8]; /* permission modes a send may ask for, NULL-terminated */
    bool permission_requests, abort, resume;
    bool attach;        /* a send may carry attachments (PROVIDER_F_ATTACH) */
    int64_t max_prompt; /* the longest prompt in bytes (argv CLIs), 0: no limit of its own */
};

/* The longest model name a send may give (options.model). */
#define PROVIDER_MODEL_MAX 128

/* Indexed by enum provider_id, made from the rows of provider_list.h; read-only.
 * Every provider has a runner adapter (the runner's table is made from the same rows). */
extern const struct provider_caps provider_caps[PROVIDER__COUNT];

/* True when mode is one of p's permission modes. */
bool provider_mode_known(enum provider_id p, const char *mode);

/* True when model may go to a CLI as the value of its model option: an empty string (the
 * CLI's default), or at most PROVIDER_MODEL_MAX bytes of ASCII letters, digits and
 * . _ - : / @ + that do not start with '-' (so that it is never read as an option).
 * Real names fit: "claude-sonnet-4-5", "gpt-5-codex", "gemini-2.5-pro",
 * "anthropic/claude-sonnet-4", "openrouter/x-ai/grok-4", "bedrock:claude@2025". NULL is
 * not a model. Used by send (400) and by the runner before it builds the argv. */
bool provider_model_valid(const char *model);

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
