/* config.c — the one table of settings, and their parsers.
 *
 * Each row names a setting once: its config-file key, its IMPACTD_* variable, its type,
 * its default (parsed by the same code as any other value, so defaults are checked too),
 * its bounds and the help line printed by --help. Order of precedence: defaults, then the
 * config file, then the environment. */
#include "impactd/config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "impactd/log.h"
#include "impactd/netaddr.h"

enum ctype {
    C_STRING,       /* char[] field; max = buffer size */
    C_INT,          /* int64_t; min..max */
    C_BOOL,         /* bool: 1/0, true/false, yes/no, on/off */
    C_DURATION,     /* int64_t ms; min..max in ms */
    C_SIZE,         /* int64_t bytes: "64k", "1m" or a number */
    C_LOG_LEVEL,    /* int */
    C_LISTEN,       /* host + port fields */
    C_REDIS_URL,    /* redis_url + redis */
    C_SCHEDULE,     /* retry schedule */
    C_LAPSE,        /* per-urgency durations: int64_t[URGENCY_COUNT] field */
};

struct setting {
    const char *key;
    const char *env;
    enum ctype type;
    size_t offset;
    int64_t min, max;
    const char *dflt;
    const char *help;
};

#define OFF(f) offsetof(struct config, f)
#define SIZE(f) (int64_t)sizeof(((struct config *)0)->f)

static const struct setting SETTINGS[] = {
    { "listen", "IMPACTD_LISTEN", C_LISTEN, 0, 0, 0, "127.0.0.1:8080",
      "host:port to serve HTTP on ([::1]:8080 for IPv6)" },
    { "redis_url", "IMPACTD_REDIS_URL", C_REDIS_URL, 0, 0, 0, "redis://127.0.0.1:6379/0",
      "redis://[user:password@]host:port/db or unix:///path/to/socket[?db=N]" },
    { "key_prefix", "IMPACTD_KEY_PREFIX", C_STRING, OFF(key_prefix), 0, SIZE(key_prefix),
      "impact:", "prefix of every Redis key, so deployments can share one Redis" },
    { "admin_token", "IMPACTD_ADMIN_TOKEN", C_STRING, OFF(admin_token), 0, SIZE(admin_token),
      "", "if set, a bearer token with the admin role (bootstrap); use 16+ random characters" },
    { "data_dir", "IMPACTD_DATA_DIR", C_STRING, OFF(data_dir), 1, SIZE(data_dir), "var",
      "directory for the daemon's own files (signing key)" },
    { "signing_key_file", "IMPACTD_SIGNING_KEY_FILE", C_STRING, OFF(signing_key_file), 0,
      SIZE(signing_key_file), "", "Ed25519 secret key file; empty means <data_dir>/signing.key" },
    { "catalog_dir", "IMPACTD_CATALOG_DIR", C_STRING, OFF(catalog_dir), 1, SIZE(catalog_dir),
      "config", "directory holding products.json, regions.json and departements.json" },
    { "webhook_retry_schedule", "IMPACTD_WEBHOOK_RETRY_SCHEDULE", C_SCHEDULE, 0, 0, 0,
      "0s,5s,5m,30m,2h,5h,10h,10h", "comma-separated delays before each webhook attempt" },
    { "lapse_after", "IMPACTD_LAPSE_AFTER", C_LAPSE, OFF(lapse_after_ms), 0, 0,
      "stat=2h,asap=6h,urgent=24h,routine=72h",
      "how long a proposed allocation waits for confirmation, per urgency" },
    { "ship_within", "IMPACTD_SHIP_WITHIN", C_LAPSE, OFF(ship_within_ms), 0, 0,
      "stat=24h,asap=48h,urgent=72h,routine=7d",
      "how long a confirmed allocation may wait to be shipped, per urgency, before both "
      "parties are told it is overdue" },
    { "receive_within", "IMPACTD_RECEIVE_WITHIN", C_DURATION, OFF(receive_within_ms), 1000,
      INT64_C(365) * 86400000, "7d",
      "how long a shipped allocation may wait to be received before both parties are told it "
      "is overdue" },
    { "log_level", "IMPACTD_LOG_LEVEL", C_LOG_LEVEL, OFF(log_level), 0, 0, "info",
      "debug, info, warn or error" },
    { "webhook_allow_private", "IMPACTD_WEBHOOK_ALLOW_PRIVATE", C_BOOL,
      OFF(webhook_allow_private), 0, 1, "0",
      "1 lets webhook URLs point at loopback and private addresses" },
    { "webhook_timeout", "IMPACTD_WEBHOOK_TIMEOUT", C_DURATION, OFF(webhook_timeout_ms), 100,
      600000, "10s", "how long one webhook attempt may take (connect to answer)" },
    { "webhook_max_per_endpoint", "IMPACTD_WEBHOOK_MAX_PER_ENDPOINT", C_INT,
      OFF(webhook_max_per_endpoint), 1, 1000, "8",
      "webhook deliveries in flight at once per endpoint (scheme, host, port)" },
    { "webhook_ca_file", "IMPACTD_WEBHOOK_CA_FILE", C_STRING, OFF(webhook_ca_file), 0,
      SIZE(webhook_ca_file), "", "PEM file of extra CAs trusted for https webhooks" },
    { "webhook_resolve", "IMPACTD_WEBHOOK_RESOLVE", C_STRING, OFF(webhook_resolve), 0,
      SIZE(webhook_resolve), "",
      "host:port:address,... gives webhook hosts these addresses without DNS (like curl "
      "--resolve); the addresses are checked like resolved ones" },
    { "rate_limit", "IMPACTD_RATE_LIMIT", C_INT, OFF(rate_limit), 0, 1000000, "50",
      "requests per second per token (burst of the same size), 0 for no limit" },
    { "idle_timeout", "IMPACTD_IDLE_TIMEOUT", C_DURATION, OFF(idle_timeout_ms), 1000,
      3600000, "60s", "close a client connection idle or half-sent for this long" },
    { "max_body_size", "IMPACTD_MAX_BODY_SIZE", C_SIZE, OFF(max_body_size), 1024, 1048576,
      "64k", "largest request body accepted (413 beyond)" },
    { "max_header_size", "IMPACTD_MAX_HEADER_SIZE", C_SIZE, OFF(max_header_size), 1024,
      1048576, "16k", "largest request line plus headers accepted" },
    { "redis_timeout", "IMPACTD_REDIS_TIMEOUT", C_DURATION, OFF(redis_timeout_ms), 10, 60000,
      "2s", "how long one Redis call may take before the request gets 503" },
    { "redis_reconnect_max", "IMPACTD_REDIS_RECONNECT_MAX", C_DURATION,
      OFF(redis_reconnect_max_ms), 10, 60000, "2s",
      "longest pause between two reconnection attempts (backoff starts at 50ms)" },
    { "shutdown_timeout", "IMPACTD_SHUTDOWN_TIMEOUT", C_DURATION, OFF(shutdown_timeout_ms), 0,
      600000, "10s", "on SIGTERM, how long requests in flight may take to finish" },
    { "auth_cache_ttl", "IMPACTD_AUTH_CACHE_TTL", C_DURATION, OFF(auth_cache_ttl_ms), 0,
      60000, "2s", "how long a verified token is trusted before Redis is asked again" },
    { "auth_fail_rate", "IMPACTD_AUTH_FAIL_RATE", C_INT, OFF(auth_fail_rate), 0, 1000000, "5",
      "failed authentications per second per client address (IPv6: per /64) before 429, "
      "0 for no limit" },
    { "auth_fail_burst", "IMPACTD_AUTH_FAIL_BURST", C_INT, OFF(auth_fail_burst), 1, 1000000,
      "20", "failed authentications an address may make at once before auth_fail_rate applies" },
    { "auth_negative_ttl", "IMPACTD_AUTH_NEGATIVE_TTL", C_DURATION, OFF(auth_negative_ttl_ms),
      0, 60000, "3s", "how long a token id Redis does not know is answered 401 without asking "
      "Redis again, 0 for never" },
    { "auth_table_size", "IMPACTD_AUTH_TABLE_SIZE", C_INT, OFF(auth_table_size), 64, 1000000,
      "16384", "entries of each fixed-size table of failed authentications (addresses, unknown "
      "token ids); the least recently used entry makes room" },
    { "events_retention", "IMPACTD_EVENTS_RETENTION", C_INT, OFF(events_retention), 1000,
      100000000, "1000000",
      "events kept per market for /v1/feeds/events (older cursors get 410)" },
    { "events_max_age", "IMPACTD_EVENTS_MAX_AGE", C_DURATION, OFF(events_max_age_ms), 0,
      INT64_C(3650) * 86400000, "30d",
      "events older than this are trimmed from each market's stream too (0: by count only)" },
    { "inbox_retention", "IMPACTD_INBOX_RETENTION", C_DURATION, OFF(inbox_retention_ms),
      3600000, INT64_C(3650) * 86400000, "30d",
      "how long a participant's messages (inbox and delivery states) are kept; longer than "
      "the webhook retry schedule" },
    { "inbox_max", "IMPACTD_INBOX_MAX", C_INT, OFF(inbox_max), 100, 10000000, "10000",
      "the most messages kept per participant (the oldest go first; one still owed to a "
      "webhook is then dead-lettered)" },
    { "dead_letter_retention", "IMPACTD_DEAD_LETTER_RETENTION", C_DURATION,
      OFF(dead_letter_retention_ms), 3600000, INT64_C(3650) * 86400000, "30d",
      "how long dead-lettered webhook deliveries are listed and may be redelivered" },
    { "sse_max_streams", "IMPACTD_SSE_MAX_STREAMS", C_INT, OFF(sse_max_streams), 1, 1000000,
      "1000", "notification streams (Server-Sent Events) one process serves at once; one "
      "more answers 503 (a participant's new stream replaces its old one)" },
    { "match_max_candidates", "IMPACTD_MATCH_MAX_CANDIDATES", C_INT,
      OFF(match_max_candidates), 1, 100000, "256",
      "candidates one matching call may examine; the rest of the walk continues in a later "
      "call" },
    { "match_max_allocations", "IMPACTD_MATCH_MAX_ALLOCATIONS", C_INT,
      OFF(match_max_allocations), 1, 10000, "128",
      "allocations one matching call may make; the rest continues in a later call" },
    { "backlog", "IMPACTD_BACKLOG", C_INT, OFF(backlog), 16, 65535, "1024",
      "listen(2) backlog" },
};

#define NSETTINGS (sizeof SETTINGS / sizeof SETTINGS[0])

size_t config_count(void) { return NSETTINGS; }

const struct config_info *config_info_at(size_t i)
{
    static struct config_info infos[NSETTINGS];
    if (i >= NSETTINGS)
        return NULL;
    infos[i] = (struct config_info){ SETTINGS[i].key, SETTINGS[i].env, SETTINGS[i].dflt,
                                     SETTINGS[i].help };
    return &infos[i];
}

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

int config_parse_duration_ms(const char *s, int64_t *out)
{
    char *end;
    if (!isdigit((unsigned char)*s))
        return -1;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || v < 0)
        return -1;
    int64_t mult;
    if (*end == '\0' || strcmp(end, "s") == 0)
        mult = 1000;
    else if (strcmp(end, "ms") == 0)
        mult = 1;
    else if (strcmp(end, "m") == 0)
        mult = 60000;
    else if (strcmp(end, "h") == 0)
        mult = 3600000;
    else if (strcmp(end, "d") == 0)
        mult = 86400000;
    else
        return -1;
    if (v > INT64_MAX / mult)
        return -1;
    *out = v * mult;
    return 0;
}

static int parse_size(const char *s, int64_t *out)
{
    char *end;
    if (!isdigit((unsigned char)*s))
        return -1;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || v < 0 || v > (1LL << 40))
        return -1;
    if (*end == '\0')
        *out = v;
    else if (strcasecmp(end, "k") == 0 || strcasecmp(end, "kb") == 0)
        *out = v * 1024;
    else if (strcasecmp(end, "m") == 0 || strcasecmp(end, "mb") == 0)
        *out = v * 1024 * 1024;
    else
        return -1;
    return 0;
}

static int parse_bool(const char *s, bool *out)
{
    static const char *const T[] = { "1", "true", "yes", "on" };
    static const char *const F[] = { "0", "false", "no", "off" };
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(s, T[i]) == 0)
            return *out = true, 0;
        if (strcasecmp(s, F[i]) == 0)
            return *out = false, 0;
    }
    return -1;
}

static int parse_port(const char *s, int *port)
{
    if (!*s || strlen(s) > 5)
        return -1;
    for (const char *p = s; *p; p++)
        if (!isdigit((unsigned char)*p))
            return -1;
    long v = strtol(s, NULL, 10);
    if (v < 1 || v > 65535)
        return -1;
    *port = (int)v;
    return 0;
}

static int parse_db(const char *s, int *db)
{
    if (!*s || strlen(s) > 2)
        return -1;
    for (const char *p = s; *p; p++)
        if (!isdigit((unsigned char)*p))
            return -1;
    int v = atoi(s);
    if (v > 15)
        return -1;
    *db = v;
    return 0;
}

int config_parse_listen(const char *s, char *host, size_t hostlen, int *port)
{
    const char *colon;
    size_t hlen;
    const char *h = s;
    if (*s == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':')
            return -1;
        h = s + 1;
        hlen = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon || strchr(s, ':') != colon)
            return -1;
        hlen = (size_t)(colon - s);
    }
    if (hlen == 0 || hlen >= hostlen)
        return -1;
    for (size_t i = 0; i < hlen; i++)
        if (!(isalnum((unsigned char)h[i]) || h[i] == '.' || h[i] == '-' || h[i] == ':'))
            return -1;
    if (parse_port(colon + 1, port) != 0)
        return -1;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    return 0;
}

static int copy_bounded(char *dst, size_t dstlen, const char *src, size_t n)
{
    if (n >= dstlen)
        return -1;
    memcpy(dst, src, n);
    dst[n] = '\0';
    return 0;
}

/* The URL with its credentials (user:password@) replaced by "***@", for messages. */
static void redact_url(const char *url, char *out, size_t outlen)
{
    const char *p = strstr(url, "://");
    p = p ? p + 3 : url;
    const char *end = p + strcspn(p, "/?#");
    const char *at = memchr(p, '@', (size_t)(end - p));
    if (at)
        snprintf(out, outlen, "%.*s***%s", (int)(p - url), url, at);
    else
        snprintf(out, outlen, "%s", url);
}

int config_parse_redis_url(const char *s, struct redis_addr *out, char *err, size_t errlen)
{
    struct redis_addr a;
    memset(&a, 0, sizeof a);
    if (strncmp(s, "unix://", 7) == 0) {
        const char *path = s + 7;
        const char *q = strchr(path, '?');
        size_t plen = q ? (size_t)(q - path) : strlen(path);
        if (plen == 0 || path[0] != '/' || copy_bounded(a.path, sizeof a.path, path, plen))
            return fail(err, errlen, "unix:// needs an absolute socket path");
        if (q) {
            if (strncmp(q, "?db=", 4) != 0 || parse_db(q + 4, &a.db) != 0)
                return fail(err, errlen, "unix:// accepts only ?db=N (0-15)");
        }
        a.is_unix = true;
        *out = a;
        return 0;
    }
    if (strncmp(s, "redis://", 8) != 0)
        return fail(err, errlen, "must start with redis:// or unix://");
    const char *p = s + 8;
    const char *slash = strchr(p, '/');
    const char *at = strchr(p, '@');
    if (at && (!slash || at < slash)) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        if (colon) {
            if (copy_bounded(a.username, sizeof a.username, p, (size_t)(colon - p)) ||
                copy_bounded(a.password, sizeof a.password, colon + 1, (size_t)(at - colon - 1)))
                return fail(err, errlen, "credentials too long");
        } else if (copy_bounded(a.password, sizeof a.password, p, (size_t)(at - p))) {
            return fail(err, errlen, "credentials too long");
        }
        p = at + 1;
    }
    size_t hostport = slash ? (size_t)(slash - p) : strlen(p);
    char hp[300];
    if (copy_bounded(hp, sizeof hp, p, hostport))
        return fail(err, errlen, "host too long");
    a.port = 6379;
    char *colon = strrchr(hp, ':');
    if (hp[0] == '[') {
        char *close = strchr(hp, ']');
        if (!close)
            return fail(err, errlen, "unterminated [ in host");
        *close = '\0';
        if (close[1] == ':' && parse_port(close + 2, &a.port) != 0)
            return fail(err, errlen, "bad port");
        if (copy_bounded(a.host, sizeof a.host, hp + 1, strlen(hp + 1)))
            return fail(err, errlen, "host too long");
    } else {
        if (colon) {
            *colon = '\0';
            if (parse_port(colon + 1, &a.port) != 0)
                return fail(err, errlen, "bad port");
        }
        if (copy_bounded(a.host, sizeof a.host, hp, strlen(hp)))
            return fail(err, errlen, "host too long");
    }
    if (!a.host[0])
        return fail(err, errlen, "missing host");
    if (slash && slash[1]) {
        if (parse_db(slash + 1, &a.db) != 0)
            return fail(err, errlen, "database must be a number 0-15");
    }
    *out = a;
    return 0;
}

static int parse_schedule(struct config *cfg, const char *s, char *err, size_t errlen)
{
    int64_t parsed[CONFIG_MAX_RETRIES];     /* all or nothing: cfg changes only on success */
    size_t n = 0;
    char buf[512];
    if (copy_bounded(buf, sizeof buf, s, strlen(s)))
        return fail(err, errlen, "too long");
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (isspace((unsigned char)*tok))
            tok++;
        int64_t ms;
        if (n >= CONFIG_MAX_RETRIES)
            return fail(err, errlen, "at most %d attempts", CONFIG_MAX_RETRIES);
        if (config_parse_duration_ms(tok, &ms) != 0 || ms > 7LL * 86400000)
            return fail(err, errlen, "'%s' is not a duration like 5s, 5m, 2h (at most 7d)", tok);
        parsed[n++] = ms;
    }
    if (n == 0)
        return fail(err, errlen, "needs at least one delay");
    memcpy(cfg->retry_schedule_ms, parsed, n * sizeof parsed[0]);
    cfg->retry_count = n;
    return 0;
}

int urgency_parse(const char *s)
{
    static const char *const NAMES[] = { "stat", "asap", "urgent", "routine" };
    for (int i = 0; i < URGENCY_COUNT; i++)
        if (strcmp(s, NAMES[i]) == 0)
            return i;
    return -1;
}

const char *urgency_name(enum urgency u)
{
    static const char *const NAMES[] = { "stat", "asap", "urgent", "routine" };
    return (u >= 0 && u < URGENCY_COUNT) ? NAMES[u] : "?";
}

/* "stat=2h,asap=6h": named urgencies change, the others keep their value. */
/* "urgency=duration,..." into dst[URGENCY_COUNT]; urgencies not named keep their value. */
static int parse_urgencies(int64_t *dst, const char *s, char *err, size_t errlen)
{
    char buf[256];
    int64_t v[URGENCY_COUNT];
    memcpy(v, dst, sizeof v);
    if (copy_bounded(buf, sizeof buf, s, strlen(s)))
        return fail(err, errlen, "too long");
    char *save = NULL;
    int seen = 0;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (isspace((unsigned char)*tok))
            tok++;
        char *eq = strchr(tok, '=');
        if (!eq)
            return fail(err, errlen, "'%s' is not urgency=duration", tok);
        *eq = '\0';
        int u = urgency_parse(tok);
        int64_t ms;
        if (u < 0)
            return fail(err, errlen, "unknown urgency '%s' (stat, asap, urgent, routine)", tok);
        if (config_parse_duration_ms(eq + 1, &ms) != 0 || ms > 30LL * 86400000)
            return fail(err, errlen, "'%s' is not a duration of at most 30d", eq + 1);
        v[u] = ms;
        seen++;
    }
    if (!seen)
        return fail(err, errlen, "needs at least one urgency=duration");
    memcpy(dst, v, sizeof v);
    return 0;
}

static int setting_apply(struct config *cfg, const struct setting *s, const char *value,
                         char *err, size_t errlen)
{
    char *base = (char *)cfg;
    char msg[CONFIG_ERR_LEN] = "";
    int64_t n;
    switch (s->type) {
    case C_STRING: {
        size_t len = strlen(value);
        if ((int64_t)len < s->min)
            return fail(err, errlen, "must not be empty");
        if ((int64_t)len >= s->max)
            return fail(err, errlen, "is longer than %lld characters", (long long)s->max - 1);
        memcpy(base + s->offset, value, len + 1);
        return 0;
    }
    case C_INT: {
        char *end;
        errno = 0;
        long long v = strtoll(value, &end, 10);
        if (!*value || *end || errno)
            return fail(err, errlen, "'%s' is not an integer", value);
        if (v < s->min || v > s->max)
            return fail(err, errlen, "%lld is outside %lld..%lld", v, (long long)s->min,
                        (long long)s->max);
        *(int64_t *)(void *)(base + s->offset) = v;
        return 0;
    }
    case C_BOOL: {
        bool b;
        if (parse_bool(value, &b) != 0)
            return fail(err, errlen, "'%s' is not a boolean (1/0, true/false)", value);
        *(bool *)(void *)(base + s->offset) = b;
        return 0;
    }
    case C_DURATION:
        if (config_parse_duration_ms(value, &n) != 0)
            return fail(err, errlen, "'%s' is not a duration like 250ms, 5s, 2m, 1h", value);
        if (n < s->min || n > s->max)
            return fail(err, errlen, "%s is outside %lldms..%lldms", value, (long long)s->min,
                        (long long)s->max);
        *(int64_t *)(void *)(base + s->offset) = n;
        return 0;
    case C_SIZE:
        if (parse_size(value, &n) != 0)
            return fail(err, errlen, "'%s' is not a size like 65536, 64k, 1m", value);
        if (n < s->min || n > s->max)
            return fail(err, errlen, "%s is outside %lld..%lld bytes", value, (long long)s->min,
                        (long long)s->max);
        *(int64_t *)(void *)(base + s->offset) = n;
        return 0;
    case C_LOG_LEVEL: {
        int l = log_level_parse(value);
        if (l < 0)
            return fail(err, errlen, "'%s' is not one of debug, info, warn, error", value);
        *(int *)(void *)(base + s->offset) = l;
        return 0;
    }
    case C_LISTEN:
        if (config_parse_listen(value, cfg->listen_host, sizeof cfg->listen_host,
                                &cfg->listen_port) != 0)
            return fail(err, errlen, "'%s' is not host:port (port 1-65535)", value);
        return 0;
    case C_REDIS_URL:
        if (strlen(value) >= sizeof cfg->redis_url)
            return fail(err, errlen, "is too long");
        if (config_parse_redis_url(value, &cfg->redis, msg, sizeof msg) != 0) {
            char shown[sizeof cfg->redis_url];
            redact_url(value, shown, sizeof shown);
            return fail(err, errlen, "'%s': %s", shown, msg);
        }
        memcpy(cfg->redis_url, value, strlen(value) + 1);
        return 0;
    case C_SCHEDULE:
        return parse_schedule(cfg, value, err, errlen);
    case C_LAPSE:
        return parse_urgencies((int64_t *)(void *)(base + s->offset), value, err, errlen);
    }
    return fail(err, errlen, "unknown type");
}

static const struct setting *setting_find(const char *key)
{
    for (size_t i = 0; i < NSETTINGS; i++)
        if (strcmp(SETTINGS[i].key, key) == 0)
            return &SETTINGS[i];
    return NULL;
}

int config_set(struct config *cfg, const char *key, const char *value, char *err, size_t errlen)
{
    const struct setting *s = setting_find(key);
    if (!s)
        return fail(err, errlen, "unknown setting '%s'", key);
    char msg[CONFIG_ERR_LEN];
    if (setting_apply(cfg, s, value, msg, sizeof msg) != 0)
        return fail(err, errlen, "%s: %s", key, msg);
    return 0;
}

void config_defaults(struct config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    /* lapse defaults must exist before the lapse parser merges into them */
    for (size_t i = 0; i < NSETTINGS; i++) {
        char err[CONFIG_ERR_LEN];
        if (setting_apply(cfg, &SETTINGS[i], SETTINGS[i].dflt, err, sizeof err) != 0) {
            /* A bad default is a programming error that the unit tests catch. */
            log_error("msg=\"bad default\" key=%s error=\"%s\"", SETTINGS[i].key, err);
            abort();
        }
    }
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

int config_load_file(struct config *cfg, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return fail(err, errlen, "%s: cannot open: %s", path, strerror(errno));
    char line[1024];
    int lineno = 0;
    int rc = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        if (!strchr(line, '\n') && !feof(f)) {
            rc = fail(err, errlen, "%s:%d: line longer than %zu characters", path, lineno,
                      sizeof line - 2);
            break;
        }
        char *s = trim(line);
        if (*s == '\0' || *s == '#')
            continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            rc = fail(err, errlen, "%s:%d: expected 'key = value'", path, lineno);
            break;
        }
        *eq = '\0';
        char *key = trim(s), *value = trim(eq + 1);
        size_t vlen = strlen(value);
        if (vlen >= 2 && value[0] == '"' && value[vlen - 1] == '"') {
            value[vlen - 1] = '\0';
            value++;
        }
        char msg[CONFIG_ERR_LEN];
        if (config_set(cfg, key, value, msg, sizeof msg) != 0) {
            rc = fail(err, errlen, "%s:%d: %s", path, lineno, msg);
            break;
        }
    }
    if (rc == 0 && ferror(f))
        rc = fail(err, errlen, "%s: read error", path);
    fclose(f);
    return rc;
}

int config_load_env(struct config *cfg, const char *(*getenv_fn)(const char *name), char *err,
                    size_t errlen)
{
    for (size_t i = 0; i < NSETTINGS; i++) {
        const char *v = getenv_fn(SETTINGS[i].env);
        if (!v)
            continue;
        char msg[CONFIG_ERR_LEN];
        if (setting_apply(cfg, &SETTINGS[i], v, msg, sizeof msg) != 0)
            return fail(err, errlen, "environment %s: %s", SETTINGS[i].env, msg);
    }
    return 0;
}

bool config_weak_admin_token(const struct config *cfg)
{
    size_t n = strlen(cfg->admin_token);
    return n > 0 && n < 16;
}

int config_finish(struct config *cfg, char *err, size_t errlen)
{
    /* A short bootstrap token is accepted (deployments and test suites choose their own)
     * but reported at start-up: see config_weak_admin_token. */
    for (const char *p = cfg->admin_token; *p; p++)
        if (!isgraph((unsigned char)*p))
            return fail(err, errlen, "admin_token: must be printable ASCII without spaces");
    for (const char *p = cfg->key_prefix; *p; p++)
        if (!isgraph((unsigned char)*p) || *p == '{' || *p == '}')
            return fail(err, errlen, "key_prefix: printable characters only, no braces");
    if (netaddr_override_check(cfg->webhook_resolve, err, errlen) != 0)
        return -1;
    int64_t schedule_ms = 0;
    for (size_t i = 0; i < cfg->retry_count; i++)
        schedule_ms += cfg->retry_schedule_ms[i];
    if (cfg->inbox_retention_ms <= schedule_ms + schedule_ms / 10)
        return fail(err, errlen, "inbox_retention: must be longer than the webhook retry "
                                 "schedule (%lldh, jitter included)",
                    (long long)((schedule_ms + schedule_ms / 10) / 3600000 + 1));
    if (!cfg->signing_key_file[0]) {
        int n = snprintf(cfg->signing_key_file, sizeof cfg->signing_key_file, "%s/signing.key",
                         cfg->data_dir);
        if (n < 0 || (size_t)n >= sizeof cfg->signing_key_file)
            return fail(err, errlen, "data_dir: too long");
    }
    return 0;
}
