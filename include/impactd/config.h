/* config.h — every setting of impactd, declared once.
 *
 * config.c holds one table: config-file key, IMPACTD_* variable, type, default, bounds and a
 * help line. Values come from the defaults, then the config file, then the environment (the
 * environment wins). Unknown keys and out-of-range values are errors, never warnings.
 * This module does not open sockets or files other than the config file itself. */
#ifndef IMPACTD_CONFIG_H
#define IMPACTD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONFIG_MAX_RETRIES 32
#define CONFIG_ERR_LEN 512

enum urgency { URGENCY_STAT = 0, URGENCY_ASAP, URGENCY_URGENT, URGENCY_ROUTINE, URGENCY_COUNT };

/* Where Redis is: TCP host:port or a unix socket path, a database number and credentials. */
struct redis_addr {
    bool is_unix;
    char host[256];
    int port;
    char path[256];
    int db;
    char username[128];
    char password[256];
};

struct config {
    char listen_host[256];
    int listen_port;
    char redis_url[600];
    struct redis_addr redis;
    char key_prefix[64];
    char admin_token[256];          /* "" when unset */
    char data_dir[512];
    char signing_key_file[512];     /* "" means <data_dir>/signing.key */
    char catalog_dir[512];
    int64_t retry_schedule_ms[CONFIG_MAX_RETRIES];
    size_t retry_count;
    int64_t lapse_after_ms[URGENCY_COUNT];
    int64_t ship_within_ms[URGENCY_COUNT];  /* confirmed → overdue if not shipped */
    int64_t receive_within_ms;              /* shipped → overdue if not received */
    int log_level;                  /* enum log_level */
    bool webhook_allow_private;
    int64_t webhook_timeout_ms;
    int64_t webhook_max_per_endpoint;
    char webhook_ca_file[512];      /* "" = the system's trusted CAs only */
    char webhook_resolve[1024];     /* "host:port:address,...": no DNS for those (netaddr.h) */
    int64_t rate_limit;             /* requests per second per token, 0 = off */
    int64_t idle_timeout_ms;
    int64_t max_body_size;          /* bytes */
    int64_t max_header_size;        /* bytes */
    int64_t redis_timeout_ms;
    int64_t redis_reconnect_max_ms;
    int64_t shutdown_timeout_ms;
    int64_t auth_cache_ttl_ms;
    int64_t auth_fail_rate;         /* failed authentications per second per address, 0 = off */
    int64_t auth_fail_burst;
    int64_t auth_negative_ttl_ms;   /* 0 = no negative cache */
    int64_t auth_table_size;        /* entries per table */
    int64_t backlog;
    int64_t events_retention;       /* entries kept per market event stream */
    int64_t events_max_age_ms;      /* events older than this are trimmed; 0: by count only */
    int64_t inbox_retention_ms;     /* a participant's messages are kept this long */
    int64_t inbox_max;              /* and at most this many */
    int64_t dead_letter_retention_ms;
    int64_t sse_max_streams;        /* Server-Sent Events streams open at once, per process */
    int64_t match_max_candidates;   /* per market function call */
    int64_t match_max_allocations;  /* per market function call */
};

/* Fills every setting with its default. Cannot fail: defaults are checked by unit tests. */
void config_defaults(struct config *cfg);

/* Sets one setting by its config-file key. Returns 0, or -1 with a message in err. */
int config_set(struct config *cfg, const char *key, const char *value, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Reads `key = value` lines from path ('#' starts a comment line). Errors name file and line. */
int config_load_file(struct config *cfg, const char *path, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Applies every IMPACTD_* variable found through getenv_fn (getenv in production). */
int config_load_env(struct config *cfg, const char *(*getenv_fn)(const char *name),
                    char *err, size_t errlen) __attribute__((warn_unused_result));

/* Checks settings that depend on one another; fills derived values (signing key path). */
int config_finish(struct config *cfg, char *err, size_t errlen) __attribute__((warn_unused_result));

/* True when admin_token is set but shorter than 16 characters (worth a warning). */
bool config_weak_admin_token(const struct config *cfg);

/* The declared settings, for --help, docs checks and tests. */
struct config_info {
    const char *key;
    const char *env;
    const char *default_value;
    const char *help;
};
size_t config_count(void);
const struct config_info *config_info_at(size_t i);

/* Parsers shared with other modules and unit-tested on their own. */
int config_parse_duration_ms(const char *s, int64_t *out);   /* "250ms", "5s", "2h", "3d", "10" */
int config_parse_redis_url(const char *s, struct redis_addr *out, char *err, size_t errlen);
int config_parse_listen(const char *s, char *host, size_t hostlen, int *port);
int urgency_parse(const char *s);                             /* -1 when unknown */
const char *urgency_name(enum urgency u);

#endif
