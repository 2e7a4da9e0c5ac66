/* log.h: log lines to stderr with time, level, program and request/run ids.
 *
 * Format: "2026-11-25T21:14:00.123Z chatgw.fcgi[1234] warn req=… run=… sess=…: text".
 * The web server and systemd collect stderr. The level and program name are set
 * once at start (log_init); the ids are per thread (log_context_set), so a worker
 * thread tags every line of the request it serves.
 */
#ifndef CGW_LOG_H
#define CGW_LOG_H

#include <stdbool.h>

enum log_level { LOG_LEVEL_DEBUG = 0, LOG_LEVEL_INFO, LOG_LEVEL_WARN, LOG_LEVEL_ERROR };

/* Sets the program name (borrowed; must outlive the process) and the minimum level.
 * Call once before threads start. */
void log_init(const char *program, enum log_level level);

/* Parses "debug"/"info"/"warn"/"error". Returns 0 and sets *out, or -1. */
int log_level_parse(const char *s, enum log_level *out);
const char *log_level_name(enum log_level level);

/* True when lines of level are written (level is at least log_init's): for work done
 * only to log (a request dump), never cfg.log_level compared by hand. Thread-safe. */
bool log_enabled(enum log_level level);

/* Sets the calling thread's ids for the following lines (each may be NULL;
 * copied, truncated at 63 bytes). log_context_clear() drops them. */
void log_context_set(const char *request_id, const char *run_id, const char *session_id);
void log_context_clear(void);

/* Writes one line (a trailing newline in fmt is not needed) when level is enabled.
 * Thread-safe: one write(2) per line. */
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)

#endif
