/* log.h — leveled, one-line log records to stderr.
 *
 * Owns the log level (set once at start-up from the config, before the loop runs) and the
 * record format: `2026-03-27T08:00:00.123Z level=info msg="..." key=value ...`.
 * It does not own what is logged: callers format their own key=value pairs. */
#ifndef IMPACTD_LOG_H
#define IMPACTD_LOG_H

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR };

/* Parses "debug" | "info" | "warn" | "error"; returns -1 on anything else. */
int log_level_parse(const char *s);
const char *log_level_name(enum log_level level);
void log_set_level(enum log_level level);
int log_enabled(enum log_level level);

/* Writes one record; `fmt` is the message body (usually key=value pairs). */
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) do { if (log_enabled(LOG_DEBUG)) log_msg(LOG_DEBUG, __VA_ARGS__); } while (0)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
