/* main.c — command line, configuration loading, start-up and exit status. Nothing else.
 *
 *   impactd [--config FILE] [--check-config]
 *   impactd [--config FILE] rotate-key
 *   impactd openapi
 *   impactd [--config FILE] library
 *   impactd routes
 *   impactd --help | --version
 * Exit status: 0 after a clean shutdown or a good --check-config, 2 for a usage or
 * configuration error, 1 when the server cannot start or its loop fails. */
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "build_config.h"
#include "impactd/catalog.h"
#include "impactd/config.h"
#include "impactd/library.h"
#include "impactd/log.h"
#include "impactd/routes.h"
#include "impactd/schema.h"
#include "impactd/server.h"
#include "impactd/signing.h"

#define DEFAULT_CONFIG "config/impactd.conf"

static void usage(FILE *out)
{
    fprintf(out,
            "impactd %s — emergency supply-coordination marketplace daemon\n\n"
            "Usage: impactd [--config FILE] [--check-config]\n"
            "       impactd [--config FILE] rotate-key\n"
            "       impactd openapi\n"
            "       impactd [--config FILE] library\n"
            "       impactd routes\n"
            "       impactd --help | --version\n\n"
            "Options:\n"
            "  -c, --config FILE   configuration file (default: %s, relative to the\n"
            "                      working directory)\n"
            "  --check-config      load the configuration and the catalogue, report, exit\n"
            "  rotate-key          add a new current signing key (the previous ones stay\n"
            "                      listed in /v1/keys); send SIGHUP to running daemons\n"
            "  openapi             print the OpenAPI document /openapi.json serves\n"
            "  library             print the Redis function library the daemon loads\n"
            "  routes              print the route table: method, path, roles, flags (JSON)\n"
            "  -h, --help          this text\n"
            "  -V, --version       print the version\n\n"
            "Settings (config-file key, environment variable, default). The environment\n"
            "overrides the file:\n",
            IMPACTD_VERSION, DEFAULT_CONFIG);
    for (size_t i = 0; i < config_count(); i++) {
        const struct config_info *ci = config_info_at(i);
        fprintf(out, "  %-24s %-32s %s\n      %s\n", ci->key, ci->env,
                *ci->default_value ? ci->default_value : "(unset)", ci->help);
    }
    fprintf(out, "\nSignals: SIGTERM or SIGINT stop accepting, finish requests in flight, exit 0.\n");
}

static const char *env_lookup(const char *name) { return getenv(name); }

int main(int argc, char **argv)
{
    const char *config_path = DEFAULT_CONFIG;
    bool check_only = false, rotate = false, openapi = false, library = false, routes = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "-V") || !strcmp(a, "--version")) {
            printf("impactd %s\n", IMPACTD_VERSION);
            return 0;
        } else if (!strcmp(a, "--check-config")) {
            check_only = true;
        } else if (!strcmp(a, "rotate-key")) {
            rotate = true;
        } else if (!strcmp(a, "openapi")) {
            openapi = true;
        } else if (!strcmp(a, "library")) {
            library = true;
        } else if (!strcmp(a, "routes")) {
            routes = true;
        } else if ((!strcmp(a, "-c") || !strcmp(a, "--config")) && i + 1 < argc) {
            config_path = argv[++i];
        } else if (!strncmp(a, "--config=", 9)) {
            config_path = a + 9;
        } else {
            fprintf(stderr, "impactd: unknown argument '%s' (see --help)\n", a);
            return 2;
        }
    }

    static struct server srv;   /* the one server struct; static only for its size */
    char err[CONFIG_ERR_LEN];
    if (routes) {   /* one JSON array, a route per line */
        json_t *table = routes_describe();
        bool ok = table != NULL && fputs("[", stdout) != EOF;
        for (size_t i = 0; ok && i < json_array_size(table); i++)
            ok = fputs(i ? ",\n " : "\n ", stdout) != EOF &&
                 json_dumpf(json_array_get(table, i), stdout, 0) == 0;
        ok = ok && fputs("\n]\n", stdout) != EOF && fflush(stdout) == 0;
        json_decref(table);
        return ok ? 0 : 1;
    }
    if (openapi) {
        json_t *doc = schema_document(err, sizeof err);
        if (!doc) {
            fprintf(stderr, "impactd: %s\n", err);
            return 1;
        }
        int rc = json_dumpf(doc, stdout, JSON_INDENT(1)) == 0 && putchar('\n') != EOF ? 0 : 1;
        json_decref(doc);
        return rc;
    }
    config_defaults(&srv.cfg);
    if (config_load_file(&srv.cfg, config_path, err, sizeof err) != 0 ||
        config_load_env(&srv.cfg, env_lookup, err, sizeof err) != 0 ||
        config_finish(&srv.cfg, err, sizeof err) != 0) {
        fprintf(stderr, "impactd: configuration error: %s\n", err);
        return 2;
    }
    if (sodium_init() < 0) {
        fprintf(stderr, "impactd: libsodium failed to initialise\n");
        return 1;
    }
    if (rotate) {
        struct signing keys;
        if (signing_load(&keys, srv.cfg.signing_key_file, err, sizeof err) != 0 ||
            signing_rotate(&keys, srv.cfg.signing_key_file, err, sizeof err) != 0) {
            fprintf(stderr, "impactd: %s\n", err);
            return 1;
        }
        printf("impactd: new signing key %s in %s (%zu keys); send SIGHUP to running daemons\n",
               keys.keys[0].kid, srv.cfg.signing_key_file, keys.nkeys);
        signing_wipe(&keys);
        return 0;
    }
    if (library) {
        struct catalog cat;
        struct store_library lib;
        if (catalog_load(&cat, srv.cfg.catalog_dir, err, sizeof err) != 0 ||
            library_build(&lib, &cat, err, sizeof err) != 0) {
            fprintf(stderr, "impactd: %s\n", err);
            return 2;
        }
        int rc = fwrite(lib.code, 1, lib.code_len, stdout) == lib.code_len ? 0 : 1;
        library_free(&lib);
        catalog_free(&cat);
        return rc;
    }
    if (check_only) {
        struct catalog cat;
        if (catalog_load(&cat, srv.cfg.catalog_dir, err, sizeof err) != 0) {
            fprintf(stderr, "impactd: catalogue error: %s\n", err);
            return 2;
        }
        printf("impactd: configuration %s OK; catalogue %s: %zu products, %zu regions\n",
               config_path, srv.cfg.catalog_dir, cat.nproducts, cat.nregions);
        catalog_free(&cat);
        return 0;
    }
    signal(SIGPIPE, SIG_IGN);

    log_set_level((enum log_level)srv.cfg.log_level);
    log_info("msg=\"starting\" version=%s config=%s listen=%s:%d redis=\"%s\" prefix=\"%s\"",
             IMPACTD_VERSION, config_path, srv.cfg.listen_host, srv.cfg.listen_port,
             srv.cfg.redis.is_unix ? srv.cfg.redis.path : srv.cfg.redis.host,
             srv.cfg.key_prefix);
    if (config_weak_admin_token(&srv.cfg))
        log_warn("msg=\"IMPACTD_ADMIN_TOKEN is shorter than 16 characters: easy to guess\"");
    int status;
    if (server_init(&srv, err, sizeof err) != 0) {
        log_error("msg=\"cannot start\" error=\"%s\"", err);
        fprintf(stderr, "impactd: cannot start: %s\n", err);
        status = strstr(err, ".json") ? 2 : 1;
    } else {
        status = server_run(&srv);
        log_info("msg=\"stopped\" status=%d", status);
    }
    server_free(&srv);
    return status;
}
