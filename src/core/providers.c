/* providers.c: the provider capability table and the CLI lookup shared by fcgi and ctl. */
#include "core/providers.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_PATH "/usr/local/bin:/usr/bin:/bin"

/* Cursor's adapter is tested against fixtures only (its CLI cannot be installed offline). */
#define PROVIDER_CAPS(ID, name, bin, doc, flags, argv_prompt, ...)                                 \
    [PROVIDER_##ID] = {.modes = {__VA_ARGS__, NULL},                                               \
                       .permission_requests = ((flags)&PROVIDER_F_PERMISSIONS) != 0,               \
                       .abort = ((flags)&PROVIDER_F_ABORT) != 0,                                   \
                       .resume = ((flags)&PROVIDER_F_RESUME) != 0,                                 \
                       .attach = ((flags)&PROVIDER_F_ATTACH) != 0,                                 \
                       .max_prompt = (argv_prompt)},
const struct provider_caps provider_caps[PROVIDER__COUNT] = {CGW_PROVIDER_LIST(PROVIDER_CAPS)};
#undef PROVIDER_CAPS

bool provider_mode_known(enum provider_id p, const char *mode)
{
    if ((unsigned)p >= PROVIDER__COUNT || !mode)
        return false;
    for (int i = 0; provider_caps[p].modes[i]; i++)
        if (strcmp(provider_caps[p].modes[i], mode) == 0)
            return true;
    return false;
}

bool provider_model_valid(const char *model)
{
    static const char allowed[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                  "0123456789._-:/@+";
    if (!model)
        return false;
    size_t n = strlen(model);
    return n <= PROVIDER_MODEL_MAX && model[0] != '-' && strspn(model, allowed) == n;
}

/* 0 when path is a regular file we may execute, else -1 with errno set. */
static int executable(const char *path)
{
    struct stat sb;
    if (stat(path, &sb) < 0)
        return -1;
    if (!S_ISREG(sb.st_mode)) {
        errno = EISDIR;
        return -1;
    }
    return access(path, X_OK);
}

int provider_find_bin(const char *bin, const char *path_env, char *out, size_t size)
{
    if (strchr(bin, '/')) {
        snprintf(out, size, "%s", bin);
        return executable(bin);
    }
    if (!path_env)
        path_env = DEFAULT_PATH;
    for (const char *p = path_env; p;) {
        const char *colon = strchr(p, ':');
        size_t len = colon ? (size_t)(colon - p) : strlen(p);
        int n = len ? snprintf(out, size, "%.*s/%s", (int)len, p, bin)
                    : snprintf(out, size, "./%s", bin);
        if (n > 0 && (size_t)n < size && executable(out) == 0)
            return 0;
        p = colon ? colon + 1 : NULL;
    }
    errno = ENOENT;
    return -1;
}

json_t *provider_caps_json(enum provider_id p, bool found)
{
    const struct provider_caps *c = &provider_caps[p];
    json_t *modes = json_array();

    for (int m = 0; modes && c->modes[m]; m++) {
        if (json_array_append_new(modes, json_string(c->modes[m])) < 0) {
            json_decref(modes);
            modes = NULL;
        }
    }
    if (!modes)
        return NULL;
    return json_pack("{s:s, s:b, s:o, s:b, s:b, s:b, s:b}", "provider", provider_name(p),
                     "available", found, "permissionModes", modes, "supportsPermissionRequests",
                     c->permission_requests, "supportsAbort", c->abort, "supportsResume", c->resume,
                     "supportsAttachments", c->attach);
}
