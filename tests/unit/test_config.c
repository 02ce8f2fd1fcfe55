/* test_config.c — the settings table, its parsers, and the order defaults < file < env.
 *
 * Also checks the table against the tree: every setting is in config/impactd.conf and its
 * environment variable in docs/configuration.md, so a new setting cannot go undocumented. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "impactd/config.h"
#include "impactd/log.h"

#define S_MS 1000LL
#define M_MS (60 * S_MS)
#define H_MS (60 * M_MS)
#define D_MS (24 * H_MS)

/* ---- helpers ---- */

/* Writes text to a new temporary file; path must hold 64 bytes. */
static void temp_file_write(char *path, const char *text)
{
    const char *dir = getenv("TMPDIR");
    snprintf(path, 64, "%s/impactd-config-XXXXXX", dir && strlen(dir) < 32 ? dir : "/tmp");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    size_t len = strlen(text);
    assert_int_equal(write(fd, text, len), len);
    assert_int_equal(close(fd), 0);
}

/* Reads a whole file into a new NUL-terminated buffer (caller frees); fails the test if absent. */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s", path);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    assert_true(n >= 0);
    rewind(f);
    char *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void set_ok(struct config *cfg, const char *key, const char *value)
{
    char err[CONFIG_ERR_LEN] = "";
    if (config_set(cfg, key, value, err, sizeof err) != 0)
        fail_msg("config_set(%s, \"%s\") failed: %s", key, value, err);
}

/* Asserts that setting key to value fails, names the key, and changes nothing. */
static void set_rejected(const char *key, const char *value)
{
    struct config before, cfg;
    config_defaults(&before);
    config_defaults(&cfg);
    char err[CONFIG_ERR_LEN] = "";
    if (config_set(&cfg, key, value, err, sizeof err) == 0)
        fail_msg("config_set(%s, \"%s\") was accepted", key, value);
    assert_non_null(strstr(err, key));
    assert_memory_equal(&before, &cfg, sizeof cfg);
}

/* ---- defaults ---- */

static void test_defaults_are_the_documented_values(void **state)
{
    (void)state;
    struct config cfg;
    config_defaults(&cfg);
    assert_string_equal(cfg.listen_host, "127.0.0.1");
    assert_int_equal(cfg.listen_port, 8080);
    assert_string_equal(cfg.redis_url, "redis://127.0.0.1:6379/0");
    assert_false(cfg.redis.is_unix);
    assert_string_equal(cfg.redis.host, "127.0.0.1");
    assert_int_equal(cfg.redis.port, 6379);
    assert_int_equal(cfg.redis.db, 0);
    assert_string_equal(cfg.redis.password, "");
    assert_string_equal(cfg.key_prefix, "impact:");
    assert_string_equal(cfg.admin_token, "");
    assert_string_equal(cfg.data_dir, "var");
    assert_string_equal(cfg.catalog_dir, "config");
    assert_int_equal(cfg.rate_limit, 50);
    assert_int_equal(cfg.log_level, LOG_INFO);
    assert_false(cfg.webhook_allow_private);
    assert_int_equal(cfg.max_body_size, 65536);
    assert_int_equal(cfg.max_header_size, 16384);
    assert_int_equal(cfg.idle_timeout_ms, 60000);
    assert_int_equal(cfg.redis_timeout_ms, 2000);
    assert_int_equal(cfg.redis_reconnect_max_ms, 2000);
    assert_int_equal(cfg.shutdown_timeout_ms, 10000);
    assert_int_equal(cfg.auth_cache_ttl_ms, 2000);
    assert_int_equal(cfg.backlog, 1024);
}

static void test_default_retry_schedule_in_ms(void **state)
{
    (void)state;
    static const int64_t want[] = { 0, 5 * S_MS, 5 * M_MS, 30 * M_MS,
                                    2 * H_MS, 5 * H_MS, 10 * H_MS, 10 * H_MS };
    struct config cfg;
    config_defaults(&cfg);
    assert_int_equal(cfg.retry_count, 8);
    for (size_t i = 0; i < 8; i++)
        assert_int_equal(cfg.retry_schedule_ms[i], want[i]);
}

static void test_default_lapse_after_per_urgency(void **state)
{
    (void)state;
    struct config cfg;
    config_defaults(&cfg);
    assert_int_equal(cfg.lapse_after_ms[URGENCY_STAT], 2 * H_MS);
    assert_int_equal(cfg.lapse_after_ms[URGENCY_ASAP], 6 * H_MS);
    assert_int_equal(cfg.lapse_after_ms[URGENCY_URGENT], 24 * H_MS);
    assert_int_equal(cfg.lapse_after_ms[URGENCY_ROUTINE], 72 * H_MS);
}

static void test_every_default_value_parses(void **state)
{
    (void)state;
    struct config cfg;
    config_defaults(&cfg);      /* aborts on a bad default */
    assert_true(config_count() > 0);
    for (size_t i = 0; i < config_count(); i++) {
        const struct config_info *ci = config_info_at(i);
        assert_non_null(ci);
        set_ok(&cfg, ci->key, ci->default_value);
    }
    assert_null(config_info_at(config_count()));
}

static void test_setting_names_are_unique_and_env_matches_key(void **state)
{
    (void)state;
    for (size_t i = 0; i < config_count(); i++) {
        const struct config_info *a = config_info_at(i);
        char want[128] = "IMPACTD_";
        size_t n = strlen(want);
        for (const char *p = a->key; *p && n + 1 < sizeof want; p++)
            want[n++] = (char)toupper((unsigned char)*p);
        want[n] = '\0';
        assert_string_equal(a->env, want);
        assert_true(a->help && *a->help);
        for (size_t j = i + 1; j < config_count(); j++)
            assert_string_not_equal(a->key, config_info_at(j)->key);
    }
}

/* ---- config_set ---- */

static void test_set_rejects_unknown_key(void **state)
{
    (void)state;
    struct config cfg;
    config_defaults(&cfg);
    char err[CONFIG_ERR_LEN] = "";
    assert_int_equal(config_set(&cfg, "listen_port", "8080", err, sizeof err), -1);
    assert_non_null(strstr(err, "listen_port"));
}

static void test_set_rejects_negative_rate_limit(void **state)
{
    (void)state;
    set_rejected("rate_limit", "-1");
    set_rejected("rate_limit", "1000001");
    set_rejected("rate_limit", "ten");
    set_rejected("rate_limit", "");
}

static void test_set_rejects_ill_formed_listen(void **state)
{
    (void)state;
    set_rejected("listen", "nonsense");
    set_rejected("listen", "1.2.3.4:70000");
    set_rejected("listen", "1.2.3.4:0");
    set_rejected("listen", "1.2.3.4:");
    set_rejected("listen", ":8080");
    set_rejected("listen", "::1:8080");
}

static void test_set_accepts_ipv6_listen(void **state)
{
    (void)state;
    struct config cfg;
    config_defaults(&cfg);
    set_ok(&cfg, "listen", "[::1]:8080");
    assert_string_equal(cfg.listen_host, "::1");
    assert_int_equal(cfg.listen_port, 8080);
    set_ok(&cfg, "listen", "0.0.0.0:65535");
    assert_string_equal(cfg.listen_host, "0.0.0.0");
    assert_int_equal(cfg.listen_port, 65535);
}

static void test_set_rejects_non_redis_url(void **state)
{
    (void)state;
    set_rejected("redis_url", "http://x");
    set_rejected("redis_url", "redis://h/16");
}

static void test_set_rejects_unknown_log_level(void **state)
{
    (void)state;
    set_rejected("log_level", "loud");
    struct config cfg;
    config_defaults(&cfg);
    set_ok(&cfg, "log_level", "warn");
    assert_int_equal(cfg.log_level, LOG_WARN);
}

static void test_set_rejects_bad_durations(void **state)
{
    (void)state;
    set_rejected("idle_timeout", "5x");
    set_rejected("idle_timeout", "500ms");     /* below the 1s minimum */
    set_rejected("redis_timeout", "2 s");
    set_rejected("webhook_retry_schedule", "0s,5x");
    set_rejected("webhook_retry_schedule", "8d");
    set_rejected("lapse_after", "stat=5x");
}

static void test_set_rejects_bad_sizes_and_bools(void **state)
{
    (void)state;
    set_rejected("max_body_size", "64q");
    set_rejected("max_body_size", "2m");        /* above 1m */
    set_rejected("webhook_allow_private", "maybe");
    struct config cfg;
    config_defaults(&cfg);
    set_ok(&cfg, "max_body_size", "1m");
    assert_int_equal(cfg.max_body_size, 1048576);
    set_ok(&cfg, "webhook_allow_private", "yes");
    assert_true(cfg.webhook_allow_private);
}

static void test_set_retry_schedule_replaces_the_list(void **state)
{
    (void)state;
    struct config cfg;
    config_defaults(&cfg);
    set_ok(&cfg, "webhook_retry_schedule", "1s, 2m,3h");
    assert_int_equal(cfg.retry_count, 3);
    assert_int_equal(cfg.retry_schedule_ms[0], 1 * S_MS);
    assert_int_equal(cfg.retry_schedule_ms[1], 2 * M_MS);
    assert_int_equal(cfg.retry_schedule_ms[2], 3 * H_MS);
}

/* ---- parsers ---- */

static void test_parse_duration_units(void **state)
{
    (void)state;
    int64_t ms = -1;
    assert_int_equal(config_parse_duration_ms("250ms", &ms), 0);
    assert_int_equal(ms, 250);
    assert_int_equal(config_parse_duration_ms("5s", &ms), 0);
    assert_int_equal(ms, 5000);
    assert_int_equal(config_parse_duration_ms("5m", &ms), 0);
    assert_int_equal(ms, 5 * M_MS);
    assert_int_equal(config_parse_duration_ms("2h", &ms), 0);
    assert_int_equal(ms, 2 * H_MS);
    assert_int_equal(config_parse_duration_ms("3d", &ms), 0);
    assert_int_equal(ms, 3 * D_MS);
    assert_int_equal(config_parse_duration_ms("10", &ms), 0);
    assert_int_equal(ms, 10000);
    assert_int_equal(config_parse_duration_ms("0s", &ms), 0);
    assert_int_equal(ms, 0);
}

static void test_parse_duration_rejects_malformed(void **state)
{
    (void)state;
    static const char *const BAD[] = { "", "-1s", "5 s", " 5s", "5x", "ms", "s", "1.5s",
                                       "5sec", "99999999999999999999", "9223372036854775807d" };
    for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; i++) {
        int64_t ms = 42;
        if (config_parse_duration_ms(BAD[i], &ms) == 0)
            fail_msg("\"%s\" was accepted as %lld ms", BAD[i], (long long)ms);
        assert_int_equal(ms, 42);
    }
}

static void test_parse_redis_url_host_port_db(void **state)
{
    (void)state;
    struct redis_addr a;
    char err[CONFIG_ERR_LEN] = "";
    assert_int_equal(config_parse_redis_url("redis://h:1234/3", &a, err, sizeof err), 0);
    assert_false(a.is_unix);
    assert_string_equal(a.host, "h");
    assert_int_equal(a.port, 1234);
    assert_int_equal(a.db, 3);
    assert_string_equal(a.username, "");
    assert_string_equal(a.password, "");
}

static void test_parse_redis_url_password_only(void **state)
{
    (void)state;
    struct redis_addr a;
    char err[CONFIG_ERR_LEN] = "";
    assert_int_equal(config_parse_redis_url("redis://:pw@h/0", &a, err, sizeof err), 0);
    assert_string_equal(a.username, "");
    assert_string_equal(a.password, "pw");
    assert_string_equal(a.host, "h");
    assert_int_equal(a.port, 6379);
    assert_int_equal(a.db, 0);
}

static void test_parse_redis_url_user_and_password(void **state)
{
    (void)state;
    struct redis_addr a;
    char err[CONFIG_ERR_LEN] = "";
    assert_int_equal(config_parse_redis_url("redis://user:pw@h:1/2", &a, err, sizeof err), 0);
    assert_string_equal(a.username, "user");
    assert_string_equal(a.password, "pw");
    assert_string_equal(a.host, "h");
    assert_int_equal(a.port, 1);
    assert_int_equal(a.db, 2);
}

static void test_parse_redis_url_unix_socket(void **state)
{
    (void)state;
    struct redis_addr a;
    char err[CONFIG_ERR_LEN] = "";
    assert_int_equal(config_parse_redis_url("unix:///tmp/r.sock?db=4", &a, err, sizeof err), 0);
    assert_true(a.is_unix);
    assert_string_equal(a.path, "/tmp/r.sock");
    assert_int_equal(a.db, 4);
    assert_int_equal(config_parse_redis_url("unix:///tmp/r.sock", &a, err, sizeof err), 0);
    assert_true(a.is_unix);
    assert_int_equal(a.db, 0);
}

static void test_parse_redis_url_rejects_bad_input(void **state)
{
    (void)state;
    static const char *const BAD[] = { "redis://h/16", "redis://h/x", "redis://h:0/0",
                                       "redis://h:99999/0", "redis:///0", "http://x",
                                       "unix://relative.sock", "unix:///tmp/r.sock?db=16",
                                       "unix:///tmp/r.sock?foo=1", "" };
    for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; i++) {
        struct redis_addr a;
        char err[CONFIG_ERR_LEN] = "";
        if (config_parse_redis_url(BAD[i], &a, err, sizeof err) == 0)
            fail_msg("\"%s\" was accepted", BAD[i]);
        assert_true(err[0] != '\0');
    }
}

static void test_lapse_after_changes_only_named_urgencies(void **state)
{
    (void)state;
    struct config cfg;
    config_defaults(&cfg);
    set_ok(&cfg, "lapse_after", "stat=1s");
    assert_int_equal(cfg.lapse_after_ms[URGENCY_STAT], 1000);
    assert_int_equal(cfg.lapse_after_ms[URGENCY_ASAP], 6 * H_MS);
    assert_int_equal(cfg.lapse_after_ms[URGENCY_URGENT], 24 * H_MS);
    assert_int_equal(cfg.lapse_after_ms[URGENCY_ROUTINE], 72 * H_MS);
    set_ok(&cfg, "lapse_after", "routine=3d, asap=30m");
    assert_int_equal(cfg.lapse_after_ms[URGENCY_STAT], 1000);
    assert_int_equal(cfg.lapse_after_ms[URGENCY_ASAP], 30 * M_MS);
    assert_int_equal(cfg.lapse_after_ms[URGENCY_ROUTINE], 3 * D_MS);
}

static void test_lapse_after_rejects_unknown_urgency(void **state)
{
    (void)state;
    set_rejected("lapse_after", "soon=1h");
    set_rejected("lapse_after", "stat=1h,soon=1h");     /* all or nothing */
    set_rejected("lapse_after", "stat");
    set_rejected("lapse_after", "stat=31d");     /* at most 30 days */
    struct config cfg;
    config_defaults(&cfg);
    char err[CONFIG_ERR_LEN] = "";
    assert_int_equal(config_set(&cfg, "lapse_after", "soon=1h", err, sizeof err), -1);
    assert_non_null(strstr(err, "soon"));
}

static void test_urgency_names_round_trip(void **state)
{
    (void)state;
    for (int u = 0; u < URGENCY_COUNT; u++)
        assert_int_equal(urgency_parse(urgency_name((enum urgency)u)), u);
    assert_string_equal(urgency_name(URGENCY_STAT), "stat");
    assert_string_equal(urgency_name(URGENCY_ROUTINE), "routine");
    assert_int_equal(urgency_parse("STAT"), -1);
    assert_int_equal(urgency_parse(""), -1);
}

/* ---- file and environment ---- */

static const char *fake_env_rate_limit(const char *name)
{
    if (strcmp(name, "IMPACTD_RATE_LIMIT") == 0)
        return "20";
    if (strcmp(name, "IMPACTD_KEY_PREFIX") == 0)
        return "env:";
    return NULL;
}

static const char *fake_env_bad_listen(const char *name)
{
    return strcmp(name, "IMPACTD_LISTEN") == 0 ? "nowhere" : NULL;
}

static void test_env_overrides_file(void **state)
{
    (void)state;
    char path[64];
    temp_file_write(path,
                    "# test config\n"
                    "rate_limit = 10\n"
                    "key_prefix = \"file:\"\n"
                    "\n"
                    "   listen   =   127.0.0.1:9000   \n");
    struct config cfg;
    config_defaults(&cfg);
    char err[CONFIG_ERR_LEN] = "";
    int rc = config_load_file(&cfg, path, err, sizeof err);
    unlink(path);
    assert_int_equal(rc, 0);
    assert_int_equal(cfg.rate_limit, 10);
    assert_string_equal(cfg.key_prefix, "file:");
    assert_int_equal(cfg.listen_port, 9000);
    assert_int_equal(config_load_env(&cfg, fake_env_rate_limit, err, sizeof err), 0);
    assert_int_equal(cfg.rate_limit, 20);
    assert_string_equal(cfg.key_prefix, "env:");
    assert_int_equal(cfg.listen_port, 9000);            /* the file's, env did not set it */
    assert_int_equal(cfg.backlog, 1024);                /* the default, set by neither */
}

static void test_env_error_names_the_variable(void **state)
{
    (void)state;
    struct config cfg;
    config_defaults(&cfg);
    char err[CONFIG_ERR_LEN] = "";
    assert_int_equal(config_load_env(&cfg, fake_env_bad_listen, err, sizeof err), -1);
    assert_non_null(strstr(err, "IMPACTD_LISTEN"));
    assert_non_null(strstr(err, "nowhere"));
}

static void test_file_error_names_file_and_line(void **state)
{
    (void)state;
    char path[64];
    temp_file_write(path,
                    "# comment\n"
                    "rate_limit = 10\n"
                    "rate_limt = 10\n");
    struct config cfg;
    config_defaults(&cfg);
    char err[CONFIG_ERR_LEN] = "";
    int rc = config_load_file(&cfg, path, err, sizeof err);
    unlink(path);
    assert_int_equal(rc, -1);
    assert_non_null(strstr(err, path));
    char where[80];
    snprintf(where, sizeof where, "%s:3:", path);
    assert_non_null(strstr(err, where));
    assert_non_null(strstr(err, "rate_limt"));
}

static void test_file_line_without_equals_is_an_error(void **state)
{
    (void)state;
    char path[64];
    temp_file_write(path, "listen 127.0.0.1:8080\n");
    struct config cfg;
    config_defaults(&cfg);
    char err[CONFIG_ERR_LEN] = "";
    int rc = config_load_file(&cfg, path, err, sizeof err);
    unlink(path);
    assert_int_equal(rc, -1);
    char where[80];
    snprintf(where, sizeof where, "%s:1:", path);
    assert_non_null(strstr(err, where));
}

static void test_file_missing_is_an_error_naming_it(void **state)
{
    (void)state;
    struct config cfg;
    config_defaults(&cfg);
    char err[CONFIG_ERR_LEN] = "";
    assert_int_equal(config_load_file(&cfg, "/nonexistent/impactd.conf", err, sizeof err), -1);
    assert_non_null(strstr(err, "/nonexistent/impactd.conf"));
}

/* ---- config_finish ---- */

static void test_finish_accepts_short_admin_token_but_flags_it(void **state)
{
    (void)state;
    struct config cfg;
    config_defaults(&cfg);
    set_ok(&cfg, "admin_token", "fifteen-chars-x");
    char err[CONFIG_ERR_LEN] = "";
    assert_int_equal(config_finish(&cfg, err, sizeof err), 0);
    assert_true(config_weak_admin_token(&cfg));
    config_defaults(&cfg);
    set_ok(&cfg, "admin_token", "sixteen-chars-xx");
    assert_int_equal(config_finish(&cfg, err, sizeof err), 0);
    assert_false(config_weak_admin_token(&cfg));
    config_defaults(&cfg);
    assert_false(config_weak_admin_token(&cfg));
}

static void test_finish_derives_signing_key_file(void **state)
{
    (void)state;
    struct config cfg;
    char err[CONFIG_ERR_LEN] = "";
    config_defaults(&cfg);
    assert_int_equal(config_finish(&cfg, err, sizeof err), 0);
    assert_string_equal(cfg.signing_key_file, "var/signing.key");
    config_defaults(&cfg);
    set_ok(&cfg, "data_dir", "/srv/impactd");
    assert_int_equal(config_finish(&cfg, err, sizeof err), 0);
    assert_string_equal(cfg.signing_key_file, "/srv/impactd/signing.key");
    config_defaults(&cfg);
    set_ok(&cfg, "signing_key_file", "/etc/impactd/key");
    assert_int_equal(config_finish(&cfg, err, sizeof err), 0);
    assert_string_equal(cfg.signing_key_file, "/etc/impactd/key");
}

static void test_finish_rejects_unprintable_token_and_prefix(void **state)
{
    (void)state;
    struct config cfg;
    char err[CONFIG_ERR_LEN] = "";
    config_defaults(&cfg);
    set_ok(&cfg, "admin_token", "sixteen chars xxx");
    assert_int_equal(config_finish(&cfg, err, sizeof err), -1);
    assert_non_null(strstr(err, "admin_token"));
    config_defaults(&cfg);
    set_ok(&cfg, "key_prefix", "{impact}:");    /* braces would pin every key to one slot */
    assert_int_equal(config_finish(&cfg, err, sizeof err), -1);
    assert_non_null(strstr(err, "key_prefix"));
    config_defaults(&cfg);
    set_ok(&cfg, "key_prefix", "my impact:");
    assert_int_equal(config_finish(&cfg, err, sizeof err), -1);
    assert_non_null(strstr(err, "key_prefix"));
}

/* ---- the table against the tree ---- */

/* True when text has a line "key =" or "# key =" (spaces around '#' and '=' optional). */
static int conf_mentions(const char *text, const char *key)
{
    size_t klen = strlen(key);
    const char *line = text;
    while (line) {
        const char *p = line;
        const char *nl = strchr(line, '\n');
        line = nl ? nl + 1 : NULL;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '#') {
            p++;
            while (*p == ' ' || *p == '\t')
                p++;
        }
        if (strncmp(p, key, klen) != 0)
            continue;
        p += klen;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '=')
            return 1;
    }
    return 0;
}

static void test_every_setting_is_in_the_shipped_config(void **state)
{
    (void)state;
    char *text = slurp(SOURCE_ROOT "/config/impactd.conf");
    size_t missing = 0;
    for (size_t i = 0; i < config_count(); i++) {
        const char *key = config_info_at(i)->key;
        if (!conf_mentions(text, key)) {
            print_error("config/impactd.conf has no line '%s =' or '# %s ='\n", key, key);
            missing++;
        }
    }
    free(text);
    assert_int_equal(missing, 0);
}

static void test_every_env_var_is_in_the_docs(void **state)
{
    (void)state;
    char *text = slurp(SOURCE_ROOT "/docs/configuration.md");
    size_t missing = 0;
    for (size_t i = 0; i < config_count(); i++) {
        const char *env = config_info_at(i)->env;
        if (!strstr(text, env)) {
            print_error("docs/configuration.md does not mention %s\n", env);
            missing++;
        }
    }
    free(text);
    assert_int_equal(missing, 0);
}

static void test_shipped_config_loads_to_the_defaults(void **state)
{
    (void)state;
    struct config defaults, cfg;
    config_defaults(&defaults);
    config_defaults(&cfg);
    char err[CONFIG_ERR_LEN] = "";
    if (config_load_file(&cfg, SOURCE_ROOT "/config/impactd.conf", err, sizeof err) != 0)
        fail_msg("%s", err);
    assert_memory_equal(&defaults, &cfg, sizeof cfg);
}

int main(void)
{
    /* cmocka 1.1 reports results on stdout but failures and its summary on stderr: one
     * stream keeps each failure under its test and the summary where scripts read it. */
    if (dup2(STDOUT_FILENO, STDERR_FILENO) < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_are_the_documented_values),
        cmocka_unit_test(test_default_retry_schedule_in_ms),
        cmocka_unit_test(test_default_lapse_after_per_urgency),
        cmocka_unit_test(test_every_default_value_parses),
        cmocka_unit_test(test_setting_names_are_unique_and_env_matches_key),
        cmocka_unit_test(test_set_rejects_unknown_key),
        cmocka_unit_test(test_set_rejects_negative_rate_limit),
        cmocka_unit_test(test_set_rejects_ill_formed_listen),
        cmocka_unit_test(test_set_accepts_ipv6_listen),
        cmocka_unit_test(test_set_rejects_non_redis_url),
        cmocka_unit_test(test_set_rejects_unknown_log_level),
        cmocka_unit_test(test_set_rejects_bad_durations),
        cmocka_unit_test(test_set_rejects_bad_sizes_and_bools),
        cmocka_unit_test(test_set_retry_schedule_replaces_the_list),
        cmocka_unit_test(test_parse_duration_units),
        cmocka_unit_test(test_parse_duration_rejects_malformed),
        cmocka_unit_test(test_parse_redis_url_host_port_db),
        cmocka_unit_test(test_parse_redis_url_password_only),
        cmocka_unit_test(test_parse_redis_url_user_and_password),
        cmocka_unit_test(test_parse_redis_url_unix_socket),
        cmocka_unit_test(test_parse_redis_url_rejects_bad_input),
        cmocka_unit_test(test_lapse_after_changes_only_named_urgencies),
        cmocka_unit_test(test_lapse_after_rejects_unknown_urgency),
        cmocka_unit_test(test_urgency_names_round_trip),
        cmocka_unit_test(test_env_overrides_file),
        cmocka_unit_test(test_env_error_names_the_variable),
        cmocka_unit_test(test_file_error_names_file_and_line),
        cmocka_unit_test(test_file_line_without_equals_is_an_error),
        cmocka_unit_test(test_file_missing_is_an_error_naming_it),
        cmocka_unit_test(test_finish_accepts_short_admin_token_but_flags_it),
        cmocka_unit_test(test_finish_derives_signing_key_file),
        cmocka_unit_test(test_finish_rejects_unprintable_token_and_prefix),
        cmocka_unit_test(test_every_setting_is_in_the_shipped_config),
        cmocka_unit_test(test_every_env_var_is_in_the_docs),
        cmocka_unit_test(test_shipped_config_loads_to_the_defaults),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
