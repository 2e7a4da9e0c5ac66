/* err.h: the one error vocabulary of chatgw, and the protocol codes of DESIGN §3.2. */
#ifndef CGW_ERR_H
#define CGW_ERR_H

#include <stdarg.h>

/* What went wrong, as every function of src/core reports it. */
enum cgw_err {
    CGW_OK = 0,
    CGW_ERR_NOMEM,        /* allocation failed */
    CGW_ERR_INVALID,      /* bad input from a caller or a client */
    CGW_ERR_NOT_FOUND,    /* no such user, token, session, run, request */
    CGW_ERR_CONFLICT,     /* state forbids it: run in progress, already resolved, exists */
    CGW_ERR_STALE,        /* the run id is not (or no longer) the running one */
    CGW_ERR_UNAUTHORIZED, /* missing, unknown, disabled or revoked credentials */
    CGW_ERR_TOO_LARGE,    /* an input is over its configured cap */
    CGW_ERR_LIMIT,        /* a per-user limit was reached */
    CGW_ERR_TIMEOUT,      /* a deadline passed */
    CGW_ERR_BACKEND,      /* Redis or SQLite unavailable; nothing was changed */
    CGW_ERR_IO,           /* a file, pipe or socket operation failed */
    CGW_ERR_INTERNAL,     /* a bug or an unexpected reply; the log has the detail */
    CGW_ERR_BUSY,         /* a process-wide capacity is reached (limits.max_polls) */
    CGW_ERR__COUNT
};

/* Caller-owned detail of an error: the code and a human text naming what failed. */
struct cgw_error {
    enum cgw_err code;
    char text[256];
};

/* Protocol error codes of the HTTP API (DESIGN §3.2). */
enum cgw_code {
    CODE_INVALID_JSON = 0,
    CODE_INVALID_REQUEST,
    CODE_SESSION_ID_REQUIRED,
    CODE_CONTENT_REQUIRED,
    CODE_PROVIDER_REQUIRED,
    CODE_UNSUPPORTED_PROVIDER,
    CODE_PROJECT_PATH_REQUIRED,
    CODE_PROJECT_PATH_NOT_ALLOWED,
    CODE_REQUEST_ID_REQUIRED,
    CODE_UNKNOWN_MESSAGE_TYPE,
    CODE_REMEMBER_ENTRY_INVALID,
    CODE_UNAUTHORIZED,
    CODE_SESSION_NOT_FOUND,
    CODE_PERMISSION_NOT_FOUND,
    CODE_RULE_NOT_FOUND,
    CODE_NOT_FOUND,
    CODE_METHOD_NOT_ALLOWED,
    CODE_RUN_IN_PROGRESS,
    CODE_NO_ACTIVE_RUN,
    CODE_PERMISSION_ALREADY_RESOLVED,
    CODE_PAYLOAD_TOO_LARGE,
    CODE_UNSUPPORTED_MEDIA_TYPE,
    CODE_TOO_MANY_REQUESTS,
    CODE_INTERNAL_ERROR,
    CODE_BACKEND_UNAVAILABLE,
    CODE_SERVER_BUSY,
    CODE_HOST_UNAVAILABLE, /* the session's home host has no live chatgw.fcgi */
    /* attachments (POST /sessions/{id}/attachments, options.attachments/images) */
    CODE_ATTACHMENT_NOT_FOUND,
    CODE_ATTACHMENT_TOO_LARGE,
    CODE_ATTACHMENT_TYPE,
    CODE_ATTACHMENT_LIMIT,
    CODE_ATTACHMENTS_UNSUPPORTED,
    CODE__COUNT
};

/* Returns the constant name of an error ("not_found"); never NULL. */
const char *cgw_err_name(enum cgw_err err);

/* Returns the protocol name of a code ("SESSION_NOT_FOUND"); never NULL. */
const char *cgw_code_name(enum cgw_code code);

/* Returns the HTTP status of a code (400, 404, ...). */
int cgw_code_status(enum cgw_code code);

/* Looks a protocol name up; returns 0 and sets *out, or -1 when unknown. */
int cgw_code_from_name(const char *name, enum cgw_code *out);

/* The protocol code an error maps to when the caller has no more specific one
 * (CGW_ERR_NOT_FOUND -> NOT_FOUND, CGW_ERR_BACKEND -> BACKEND_UNAVAILABLE, ...). */
enum cgw_code cgw_err_default_code(enum cgw_err err);

/* Fills *e (when e is not NULL) with code and printf-style text; returns code,
 * so that `return cgw_error_set(e, CGW_ERR_INVALID, "...")` reads naturally. */
enum cgw_err cgw_error_set(struct cgw_error *e, enum cgw_err code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
enum cgw_err cgw_error_vset(struct cgw_error *e, enum cgw_err code, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

/* Clears *e to CGW_OK with empty text. */
void cgw_error_clear(struct cgw_error *e);

#endif
