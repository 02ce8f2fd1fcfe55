/* log.c — leveled one-line log records to stderr.
 *
 * The level is the only state: set once at start-up, before the event loop runs. Each record
 * is written with a single write(2) so lines from concurrent processes do not interleave. */
#include "impactd/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "impactd/timeutil.h"

static enum log_level log_threshold = LOG_INFO;

static const char *const LEVEL_NAMES[] = { "debug", "info", "warn", "error" };

int log_level_parse(const char *s)
{
    for (int i = 0; i <= LOG_ERROR; i++)
        if (strcasecmp(s, LEVEL_NAMES[i]) == 0)
            return i;
    return -1;
}

const char *log_level_name(enum log_level level)
{
    return (level >= LOG_DEBUG && level <= LOG_ERROR) ? LEVEL_NAMES[level] : "?";
}

void log_set_level(enum log_level level) { log_threshold = level; }

int log_enabled(enum log_level level) { return level >= log_threshold; }

void log_msg(enum log_level level, const char *fmt, ...)
{
    if (!log_enabled(level))
        return;
    char line[2048];
    char ts[RFC3339_LEN];
    int64_t now = time_now_ms();
    time_format_rfc3339(now - now % 1000, ts);
    /* keep milliseconds always, for request timing correlation */
    ts[strlen(ts) - 1] = '\0';
    int n = snprintf(line, sizeof line, "%s.%03dZ level=%s ", ts, (int)(now % 1000),
                     log_level_name(level));
    if (n < 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    if (m < 0)
        return;
    size_t len = (size_t)n + (size_t)m;
    if (len > sizeof line - 2)
        len = sizeof line - 2;
    line[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;    /* nowhere left to report a failing stderr */
}
