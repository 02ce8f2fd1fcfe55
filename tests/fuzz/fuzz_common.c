/* fuzz_common.c — the shared part of the fuzz targets: the server context with the shipped
 * catalogue, C-string copies of inputs, reading files of the tree, failing loudly. */
#include "fuzz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "impactd/server.h"

#ifndef SOURCE_ROOT
#error "SOURCE_ROOT must name the source tree (tests/fuzz/meson.build sets it)"
#endif

void fuzz_fail(const char *file, int line, const char *what)
{
    fprintf(stderr, "%s:%d: contract broken: %s\n", file, line, what);
    abort();
}

char *fuzz_cstring(const uint8_t *data, size_t size)
{
    size_t n = strnlen((const char *)data, size);
    char *s = malloc(n + 1);
    FUZZ_ASSERT(s != NULL);
    memcpy(s, data, n);
    s[n] = '\0';
    return s;
}

char *fuzz_read_tree_file(const char *relpath)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", SOURCE_ROOT, relpath);
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "fuzz: cannot open %s\n", path);
        abort();
    }
    char *text = NULL;
    size_t len = 0, cap = 0, n;
    char chunk[4096];
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (len + n + 1 > cap) {
            cap = (len + n + 1) * 2;
            char *bigger = realloc(text, cap);
            FUZZ_ASSERT(bigger != NULL);
            text = bigger;
        }
        memcpy(text + len, chunk, n);
        len += n;
    }
    FUZZ_ASSERT(!ferror(f) && text != NULL);
    fclose(f);
    text[len] = '\0';
    return text;
}

struct server *fuzz_server(void)
{
    static struct server srv;
    static int loaded;
    if (!loaded) {
        char err[512];
        config_defaults(&srv.cfg);
        if (catalog_load(&srv.catalog, SOURCE_ROOT "/config", err, sizeof err) != 0) {
            fprintf(stderr, "fuzz: catalog_load: %s\n", err);
            abort();
        }
        loaded = 1;
    }
    return &srv;
}
