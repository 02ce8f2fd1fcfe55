/* library.c — writing the function library: prelude + embedded Lua (library.h).
 *
 * Owns the library's text and name. The prelude declares, as Lua locals the files after it
 * use: LIB and register(); REGIONS (catalogue order), RIDX, NEIGHBOURS (in REGIONS order),
 * NB, NBIDX, OTHERIDX; MARKETS (code -> market id); for each resource with a Lua name its
 * positions table and size (O, O_SIZE, ...); for each enum its codes and names (URGENCY,
 * URGENCY_NAME, ...); ACTIONS. */
#include "impactd/library.h"

#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "impactd/catalog.h"
#include "impactd/resource.h"

/* A growing string. */
struct text {
    char *s;
    size_t len, cap;
    bool failed;
};

static void text_add(struct text *t, const char *s, size_t n)
{
    if (t->failed)
        return;
    if (t->len + n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 4096;
        while (cap < t->len + n + 1)
            cap *= 2;
        char *grown = realloc(t->s, cap);
        if (!grown) {
            t->failed = true;
            return;
        }
        t->s = grown;
        t->cap = cap;
    }
    memcpy(t->s + t->len, s, n);
    t->len += n;
    t->s[t->len] = '\0';
}

static void text_printf(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void text_printf(struct text *t, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof buf)
        t->failed = true;
    else
        text_add(t, buf, (size_t)n);
}

static void prelude_regions(struct text *t, const struct catalog *cat)
{
    text_printf(t, "local REGIONS = {");
    for (size_t i = 0; i < cat->nregions; i++)
        text_printf(t, "%s'%s'", i ? ", " : "", cat->regions[i].code);
    text_printf(t, "}\nlocal RIDX, NEIGHBOURS, NB, NBIDX, OTHERIDX = {}, {}, {}, {}, {}\n");
    for (size_t i = 0; i < cat->nregions; i++) {
        const struct region *home = &cat->regions[i];
        text_printf(t, "RIDX['%s'] = %zu\n", home->code, i + 1);
        text_printf(t, "NEIGHBOURS['%s'], NB['%s'], NBIDX['%s'], OTHERIDX['%s'] = {", home->code,
                    home->code, home->code, home->code);
        size_t k = 0;
        for (size_t j = 0; j < cat->nregions; j++)
            if (j != i && catalog_neighbours(home, cat->regions[j].code))
                text_printf(t, "%s'%s'", k++ ? ", " : "", cat->regions[j].code);
        text_printf(t, "}, {}, {}, {}\n");
        size_t nb = 0, other = 0;
        for (size_t j = 0; j < cat->nregions; j++) {
            const char *code = cat->regions[j].code;
            if (j == i)
                continue;
            if (catalog_neighbours(home, code))
                text_printf(t, "NB['%s']['%s'], NBIDX['%s']['%s'] = true, %zu\n", home->code,
                            code, home->code, code, ++nb);
            else
                text_printf(t, "OTHERIDX['%s']['%s'] = %zu\n", home->code, code, ++other);
        }
    }
    text_printf(t, "local MARKETS = {}\n");
    for (size_t i = 0; i < cat->nmarkets; i++)
        text_printf(t, "MARKETS['%s'] = '%s'\n", cat->markets[i].code, cat->markets[i].id);
}

static void prelude_resources(struct text *t)
{
    size_t n;
    const struct resource *const *all = resource_all(&n);
    for (size_t i = 0; i < n; i++) {
        const struct resource *res = all[i];
        if (!res->lua)
            continue;
        text_printf(t, "local %s = {", res->lua);
        size_t k = 0;
        for (size_t f = 0; f < res->nfields; f++)
            if (res->fields[f].pos)
                text_printf(t, "%s%s = %u", k++ ? ", " : "", res->fields[f].name,
                            res->fields[f].pos);
        text_printf(t, "}\nlocal %s_SIZE = %u\n", res->lua, resource_positions(res));
    }
    const struct enumtype *const *enums = resource_enums(&n);
    for (size_t i = 0; i < n; i++) {
        const struct enumtype *e = enums[i];
        text_printf(t, "local %s, %s_NAME = {}, {}\n", e->lua, e->lua);
        for (int c = 0; e->values[c]; c++)
            text_printf(t, "%s['%s'], %s_NAME[%d] = %d, '%s'\n", e->lua, e->values[c], e->lua, c,
                        c, e->values[c]);
    }
    const struct resource *alloc = &RESOURCE_ALLOCATION;
    text_printf(t, "local ACTIONS = {}\n");
    for (size_t a = 0; a < alloc->nactions; a++) {
        const struct action *act = &alloc->actions[a];
        const struct field *stamp = act->stamp ? resource_field(alloc, act->stamp) : NULL;
        text_printf(t, "ACTIONS['%s'] = { name = '%s', side = '%s', to = %d, release = %s, "
                    "receive = %s, cancel = %s, close = %s, due_ship = %s, due_receive = %s, "
                    "stamp = %u, from = {", act->name, act->name, act->side,
                    enum_code(alloc->statuses, act->to),
                    act->effects & ACT_RELEASE ? "true" : "false",
                    act->effects & ACT_RECEIVE ? "true" : "false",
                    act->effects & ACT_CANCEL ? "true" : "false",
                    act->effects & ACT_CLOSE ? "true" : "false",
                    act->effects & ACT_DUE_SHIP ? "true" : "false",
                    act->effects & ACT_DUE_RECEIVE ? "true" : "false",
                    stamp ? stamp->pos : 0u);
        for (size_t f = 0; act->from[f]; f++)
            text_printf(t, "%s[%d] = true", f ? ", " : "", enum_code(alloc->statuses, act->from[f]));
        text_printf(t, "} }\n");
    }
}

int library_build(struct store_library *lib, const struct catalog *cat, char *err,
                  size_t errlen)
{
    memset(lib, 0, sizeof *lib);
    struct text body = { 0 };
    text_printf(&body, "local function register(name, fn, flags)\n"
                       "  redis.register_function{ function_name = LIB .. '_' .. name,\n"
                       "    callback = fn, flags = flags or {} }\nend\n");
    prelude_regions(&body, cat);
    prelude_resources(&body);
    for (size_t i = 0; i < LUA_FILE_COUNT; i++) {
        text_printf(&body, "-- ==== src/scripts/%s ====\n", LUA_FILES[i].name);
        text_add(&body, LUA_FILES[i].body, strlen(LUA_FILES[i].body));
        text_add(&body, "\n", 1);
    }
    if (body.failed) {
        free(body.s);
        snprintf(err, errlen, "out of memory building the function library");
        return -1;
    }
    unsigned char d[8];
    char hex[17], name[64];
    crypto_generichash(d, sizeof d, (const unsigned char *)body.s, body.len, NULL, 0);
    sodium_bin2hex(hex, sizeof hex, d, sizeof d);
    snprintf(name, sizeof name, "impactd_%s", hex);
    struct text code = { 0 };
    text_printf(&code, "#!lua name=%s\nlocal LIB = '%s'\n", name, name);
    text_add(&code, body.s, body.len);
    free(body.s);
    if (code.failed) {
        free(code.s);
        snprintf(err, errlen, "out of memory building the function library");
        return -1;
    }
    char *owned_name = strdup(name);
    if (!owned_name) {
        free(code.s);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    lib->name = owned_name;
    lib->code = code.s;
    lib->code_len = code.len;
    for (size_t i = 0; i < FN_COUNT_; i++)
        snprintf(lib->fn[i], sizeof lib->fn[i], "%s_%s", name, FN_NAMES[i]);
    return 0;
}

void library_free(struct store_library *lib)
{
    free(lib->name);
    free(lib->code);
    memset(lib, 0, sizeof *lib);
}
