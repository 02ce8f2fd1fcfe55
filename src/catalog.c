/* catalog.c — loading and checking the reference data (products, regions, departments).
 *
 * A catalogue file that cannot be trusted stops start-up: every message names the file and
 * the entry at fault. Once loaded the catalogue is read-only; the served JSON objects are
 * copies of the file's entries without the fields meant for maintainers (`_meta`). */
#include "impactd/catalog.h"

#include <ctype.h>
#include <errno.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "impactd/ids.h"

static int cat_fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int cat_fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

static const char *const CATEGORY_NAMES[] = { "raw_material", "packaging", "finished_good",
                                              "capacity" };

const char *catalog_category_name(enum product_category c)
{
    return (c >= CAT_RAW_MATERIAL && c <= CAT_CAPACITY) ? CATEGORY_NAMES[c] : "?";
}

static bool slug_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64)
        return false;
    for (const char *p = s; *p; p++)
        if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '-'))
            return false;
    return true;
}

static bool region_code_valid(const char *s)
{
    return strlen(s) == 2 && isdigit((unsigned char)s[0]) && isdigit((unsigned char)s[1]);
}

static const char *nonempty_string(const json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return (s && *s) ? s : NULL;
}

/* Parses text and returns the array under `key`, a new reference. */
static json_t *load_array(const char *text, const char *name, const char *key, json_t **root,
                          char *err, size_t errlen)
{
    json_error_t je;
    *root = json_loads(text, JSON_REJECT_DUPLICATES, &je);
    if (!*root) {
        cat_fail(err, errlen, "%s:%d:%d: invalid JSON: %s", name, je.line, je.column, je.text);
        return NULL;
    }
    json_t *arr = json_object_get(*root, key);
    if (!json_is_array(arr) || json_array_size(arr) == 0) {
        cat_fail(err, errlen, "%s: expected a non-empty array \"%s\"", name, key);
        return NULL;
    }
    return arr;
}

/* A market's code: 4 base32 characters of BLAKE2b(market id), stable across restarts and
 * catalogue reorderings. Two markets with one code stop start-up. */
static void market_code(const char *id, char code[MARKET_CODE_LEN + 1])
{
    unsigned char d[8];
    crypto_generichash(d, sizeof d, (const unsigned char *)id, strlen(id), NULL, 0);
    uint32_t v = (uint32_t)d[0] << 16 | (uint32_t)d[1] << 8 | d[2];
    for (int i = 0; i < MARKET_CODE_LEN; i++)
        code[i] = ID_B32[(v >> (5 * i)) & 31];
    code[MARKET_CODE_LEN] = '\0';
}

static int catalog_build_markets(struct catalog *cat, const char *name, char *err, size_t errlen)
{
    cat->markets = calloc(cat->nproducts, sizeof *cat->markets);
    if (!cat->markets)
        return cat_fail(err, errlen, "%s: out of memory", name);
    for (size_t i = 0; i < cat->nproducts; i++) {
        struct product *p = &cat->products[i];
        const char *mid = p->category == CAT_CAPACITY ? p->serves : p->id;
        size_t k = 0;
        while (k < cat->nmarkets && strcmp(cat->markets[k].id, mid) != 0)
            k++;
        if (k == cat->nmarkets) {
            struct market *m = &cat->markets[cat->nmarkets++];
            m->id = catalog_product(cat, mid)->id;
            market_code(m->id, m->code);
            for (size_t j = 0; j + 1 < cat->nmarkets; j++)
                if (strcmp(cat->markets[j].code, m->code) == 0)
                    return cat_fail(err, errlen, "%s: products \"%s\" and \"%s\" hash to the same "
                                    "market code; rename one", name, cat->markets[j].id, m->id);
        }
        p->market = k;
    }
    return 0;
}

const struct market *catalog_market_of_id(const struct catalog *cat, const char *id)
{
    size_t n = strlen(id);
    if (n < MARKET_CODE_LEN)
        return NULL;
    for (size_t i = 0; i < cat->nmarkets; i++)
        if (memcmp(cat->markets[i].code, id + n - MARKET_CODE_LEN, MARKET_CODE_LEN) == 0)
            return &cat->markets[i];
    return NULL;
}

size_t catalog_market_index(const struct catalog *cat, const struct market *m)
{
    return (size_t)(m - cat->markets);
}

int catalog_load_products(struct catalog *cat, const char *text, const char *name, char *err,
                          size_t errlen)
{
    json_t *root = NULL;
    int rc = -1;
    json_t *arr = load_array(text, name, "products", &root, err, errlen);
    if (!arr)
        goto out;
    size_t n = json_array_size(arr);
    cat->products = calloc(n, sizeof *cat->products);
    cat->products_json = json_array();
    if (!cat->products || !cat->products_json) {
        cat_fail(err, errlen, "%s: out of memory", name);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *src = json_array_get(arr, i);
        if (!json_is_object(src)) {
            cat_fail(err, errlen, "%s: products[%zu] is not an object", name, i);
            goto out;
        }
        const char *id = nonempty_string(src, "id");
        if (!id || !slug_valid(id)) {
            cat_fail(err, errlen, "%s: products[%zu]: \"id\" must be a lower-case slug", name, i);
            goto out;
        }
        if (catalog_product(cat, id)) {
            cat_fail(err, errlen, "%s: product \"%s\" appears twice", name, id);
            goto out;
        }
        if (!nonempty_string(src, "name")) {
            cat_fail(err, errlen, "%s: product \"%s\": \"name\" is missing", name, id);
            goto out;
        }
        const char *category = nonempty_string(src, "category");
        int c = -1;
        for (int k = 0; category && k <= CAT_CAPACITY; k++)
            if (strcmp(category, CATEGORY_NAMES[k]) == 0)
                c = k;
        if (c < 0) {
            cat_fail(err, errlen,
                     "%s: product \"%s\": \"category\" must be raw_material, packaging, "
                     "finished_good or capacity", name, id);
            goto out;
        }
        const char *unit = nonempty_string(src, "unit");
        if (!unit || (strcmp(unit, "L") && strcmp(unit, "kg") && strcmp(unit, "unit"))) {
            cat_fail(err, errlen, "%s: product \"%s\": \"unit\" must be L, kg or unit", name, id);
            goto out;
        }
        json_t *copy = json_deep_copy(src);
        if (!copy || json_array_append_new(cat->products_json, copy) != 0) {
            cat_fail(err, errlen, "%s: out of memory", name);
            goto out;
        }
        struct product *p = &cat->products[cat->nproducts++];
        p->json = copy;
        p->id = json_string_value(json_object_get(copy, "id"));
        p->category = (enum product_category)c;
        p->unit = json_string_value(json_object_get(copy, "unit"));
        p->serves = json_string_value(json_object_get(copy, "serves"));
    }
    /* capacity products must serve a finished good of the same catalogue */
    for (size_t i = 0; i < cat->nproducts; i++) {
        struct product *p = &cat->products[i];
        if (p->category != CAT_CAPACITY) {
            if (p->serves) {
                cat_fail(err, errlen, "%s: product \"%s\": only capacity products have \"serves\"",
                         name, p->id);
                goto out;
            }
            continue;
        }
        const struct product *good = p->serves ? catalog_product(cat, p->serves) : NULL;
        if (!good || good->category != CAT_FINISHED_GOOD) {
            cat_fail(err, errlen,
                     "%s: capacity product \"%s\": \"serves\" must name a finished_good", name,
                     p->id);
            goto out;
        }
        if (strcmp(good->unit, p->unit) != 0) {
            cat_fail(err, errlen, "%s: capacity product \"%s\" must share the unit of \"%s\"",
                     name, p->id, good->id);
            goto out;
        }
    }
    if (catalog_build_markets(cat, name, err, errlen) != 0)
        goto out;
    rc = 0;
out:
    json_decref(root);
    return rc;
}

int catalog_load_regions(struct catalog *cat, const char *text, const char *name, char *err,
                         size_t errlen)
{
    json_t *root = NULL;
    int rc = -1;
    json_t *arr = load_array(text, name, "regions", &root, err, errlen);
    if (!arr)
        goto out;
    size_t n = json_array_size(arr);
    if (n == 0 || n > CATALOG_MAX_REGIONS) {
        cat_fail(err, errlen, "%s: %zu regions; a catalogue holds 1 to %d (every market "
                 "function that may match anywhere is passed 4 index keys per region)", name, n,
                 CATALOG_MAX_REGIONS);
        goto out;
    }
    cat->regions = calloc(n, sizeof *cat->regions);
    cat->regions_json = json_array();
    if (!cat->regions || !cat->regions_json) {
        cat_fail(err, errlen, "%s: out of memory", name);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *src = json_array_get(arr, i);
        const char *code = json_is_object(src) ? json_string_value(json_object_get(src, "code"))
                                               : NULL;
        if (!code || !region_code_valid(code)) {
            cat_fail(err, errlen, "%s: regions[%zu]: \"code\" must be a two-digit INSEE code "
                     "string", name, i);
            goto out;
        }
        if (catalog_region(cat, code)) {
            cat_fail(err, errlen, "%s: region \"%s\" appears twice", name, code);
            goto out;
        }
        if (!nonempty_string(src, "name")) {
            cat_fail(err, errlen, "%s: region \"%s\": \"name\" is missing", name, code);
            goto out;
        }
        json_t *overseas = json_object_get(src, "overseas");
        json_t *neigh = json_object_get(src, "neighbours");
        if (!json_is_boolean(overseas) || !json_is_array(neigh) ||
            json_array_size(neigh) > CATALOG_MAX_NEIGHBOURS) {
            cat_fail(err, errlen, "%s: region \"%s\": needs \"overseas\" (boolean) and "
                     "\"neighbours\" (array of codes)", name, code);
            goto out;
        }
        json_t *copy = json_deep_copy(src);
        if (!copy || json_array_append_new(cat->regions_json, copy) != 0) {
            cat_fail(err, errlen, "%s: out of memory", name);
            goto out;
        }
        struct region *r = &cat->regions[cat->nregions++];
        memcpy(r->code, code, 3);
        r->overseas = json_is_true(overseas);
        r->json = copy;
        size_t k;
        json_t *nb;
        json_array_foreach(neigh, k, nb) {
            const char *nc = json_string_value(nb);
            if (!nc || !region_code_valid(nc) || strcmp(nc, code) == 0) {
                cat_fail(err, errlen, "%s: region \"%s\": neighbours[%zu] is not another "
                         "region's code", name, code, k);
                goto out;
            }
            memcpy(r->neighbours[r->nneighbours++], nc, 3);
        }
        if (r->overseas && r->nneighbours) {
            cat_fail(err, errlen, "%s: overseas region \"%s\" cannot have land neighbours", name,
                     code);
            goto out;
        }
    }
    /* every neighbour exists and the relation is symmetric */
    for (size_t i = 0; i < cat->nregions; i++) {
        const struct region *r = &cat->regions[i];
        for (size_t k = 0; k < r->nneighbours; k++) {
            const struct region *o = catalog_region(cat, r->neighbours[k]);
            if (!o) {
                cat_fail(err, errlen, "%s: region \"%s\": unknown neighbour \"%s\"", name,
                         r->code, r->neighbours[k]);
                goto out;
            }
            if (!catalog_neighbours(o, r->code)) {
                cat_fail(err, errlen, "%s: region \"%s\" lists \"%s\" as neighbour but not the "
                         "reverse", name, r->code, o->code);
                goto out;
            }
        }
    }
    rc = 0;
out:
    json_decref(root);
    return rc;
}

static bool departement_code_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 2)
        return (isdigit((unsigned char)s[0]) && isdigit((unsigned char)s[1]) &&
                strcmp(s, "00") != 0 && strcmp(s, "20") != 0) ||
               strcmp(s, "2A") == 0 || strcmp(s, "2B") == 0;
    return n == 3 && s[0] == '9' && s[1] == '7' && isdigit((unsigned char)s[2]);
}

int catalog_load_departements(struct catalog *cat, const char *text, const char *name, char *err,
                              size_t errlen)
{
    json_t *root = NULL;
    int rc = -1;
    json_t *arr = load_array(text, name, "departements", &root, err, errlen);
    if (!arr)
        goto out;
    size_t n = json_array_size(arr);
    if (n == 0 || n > 200) {
        cat_fail(err, errlen, "%s: %zu departements; expected 1 to 200", name, n);
        goto out;
    }
    cat->departements = calloc(n, sizeof *cat->departements);
    if (!cat->departements) {
        cat_fail(err, errlen, "%s: out of memory", name);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *src = json_array_get(arr, i);
        const char *code = json_is_object(src) ? json_string_value(json_object_get(src, "code"))
                                               : NULL;
        if (!code || !departement_code_valid(code)) {
            cat_fail(err, errlen, "%s: departements[%zu]: \"code\" must be an INSEE department "
                     "code string (\"01\"-\"95\", \"2A\", \"2B\", \"97x\")", name, i);
            goto out;
        }
        for (size_t k = 0; k < cat->ndepartements; k++)
            if (strcmp(cat->departements[k].code, code) == 0) {
                cat_fail(err, errlen, "%s: departement \"%s\" appears twice", name, code);
                goto out;
            }
        const char *region = json_string_value(json_object_get(src, "region"));
        if (!region || !catalog_region(cat, region)) {
            cat_fail(err, errlen, "%s: departement \"%s\": \"region\" is not a region of the "
                     "catalogue", name, code);
            goto out;
        }
        struct departement *d = &cat->departements[cat->ndepartements++];
        memcpy(d->code, code, strlen(code) + 1);
        memcpy(d->region, region, 3);
    }
    rc = 0;
out:
    json_decref(root);
    return rc;
}

static char *read_file(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        cat_fail(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len + 4096 + 1 > cap) {
            size_t ncap = cap ? cap * 2 : 16384;
            if (ncap > 16 * 1024 * 1024) {
                cat_fail(err, errlen, "%s: larger than 16 MiB", path);
                goto fail;
            }
            char *nb = realloc(buf, ncap);
            if (!nb) {
                cat_fail(err, errlen, "%s: out of memory", path);
                goto fail;
            }
            buf = nb;
            cap = ncap;
        }
        size_t got = fread(buf + len, 1, 4096, f);
        len += got;
        if (got < 4096) {
            if (ferror(f)) {
                cat_fail(err, errlen, "%s: read error", path);
                goto fail;
            }
            break;
        }
    }
    fclose(f);
    buf[len] = '\0';
    return buf;
fail:
    fclose(f);
    free(buf);
    return NULL;
}

int catalog_load(struct catalog *cat, const char *dir, char *err, size_t errlen)
{
    memset(cat, 0, sizeof *cat);
    char path[1024];
    static const char *const FILES[] = { "products.json", "regions.json", "departements.json" };
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, FILES[i]);
        char *text = read_file(path, err, errlen);
        if (!text)
            goto fail;
        int rc = i == 0   ? catalog_load_products(cat, text, path, err, errlen)
                 : i == 1 ? catalog_load_regions(cat, text, path, err, errlen)
                          : catalog_load_departements(cat, text, path, err, errlen);
        free(text);
        if (rc != 0)
            goto fail;
    }
    return 0;
fail:
    catalog_free(cat);
    return -1;
}

void catalog_free(struct catalog *cat)
{
    free(cat->products);
    free(cat->regions);
    free(cat->departements);
    free(cat->markets);
    json_decref(cat->products_json);
    json_decref(cat->regions_json);
    memset(cat, 0, sizeof *cat);
}

const struct product *catalog_product(const struct catalog *cat, const char *id)
{
    for (size_t i = 0; i < cat->nproducts; i++)
        if (strcmp(cat->products[i].id, id) == 0)
            return &cat->products[i];
    return NULL;
}

const struct region *catalog_region(const struct catalog *cat, const char *code)
{
    for (size_t i = 0; i < cat->nregions; i++)
        if (strcmp(cat->regions[i].code, code) == 0)
            return &cat->regions[i];
    return NULL;
}

const struct departement *catalog_departement_of_postcode(const struct catalog *cat,
                                                          const char *postcode)
{
    if (!postcode || strlen(postcode) != 5)
        return NULL;
    for (int i = 0; i < 5; i++)
        if (!isdigit((unsigned char)postcode[i]))
            return NULL;
    char code[DEPARTEMENT_CODE_LEN] = { postcode[0], postcode[1], '\0', '\0' };
    if (code[0] == '9' && code[1] == '7') {
        code[2] = postcode[2];
    } else if (code[0] == '2' && code[1] == '0') {
        /* Corsica: 200xx-201xx Corse-du-Sud, 202xx-206xx Haute-Corse */
        if (postcode[2] <= '1')
            code[1] = 'A';
        else if (postcode[2] <= '6')
            code[1] = 'B';
        else
            return NULL;
    }
    for (size_t i = 0; i < cat->ndepartements; i++)
        if (strcmp(cat->departements[i].code, code) == 0)
            return &cat->departements[i];
    return NULL;
}

const struct region *catalog_region_of_postcode(const struct catalog *cat, const char *postcode)
{
    const struct departement *d = catalog_departement_of_postcode(cat, postcode);
    return d ? catalog_region(cat, d->region) : NULL;
}

bool catalog_neighbours(const struct region *a, const char *code)
{
    for (size_t i = 0; i < a->nneighbours; i++)
        if (strcmp(a->neighbours[i], code) == 0)
            return true;
    return false;
}
