/* catalog.h — the reference data: products and regions, loaded from JSON files at start-up.
 *
 * catalog_load reads <dir>/products.json and <dir>/regions.json, validates them (a bad file
 * stops start-up with a message naming the file and the problem) and keeps both the parsed
 * structs (for lookups) and the JSON objects (to serve the /v1/catalog routes). Read-only after load. */
#ifndef IMPACTD_CATALOG_H
#define IMPACTD_CATALOG_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

enum product_category { CAT_RAW_MATERIAL = 0, CAT_PACKAGING, CAT_FINISHED_GOOD, CAT_CAPACITY };

#define REGION_CODE_LEN 4
#define CATALOG_MAX_NEIGHBOURS 16
#define CATALOG_MAX_REGIONS 100

/* A market: a product other than capacity, with the capacity products that serve it.
 * Matching happens within one market; its `code` ends every offer, need and allocation id. */
#define MARKET_CODE_LEN 4
struct market {
    const char *id;                 /* the product id it is named after, borrowed */
    char code[MARKET_CODE_LEN + 1];
};

struct product {
    const char *id;                 /* borrowed from json */
    size_t market;                  /* index into catalog->markets */
    enum product_category category;
    const char *unit;               /* "L" | "kg" | "unit" */
    const char *serves;             /* capacity: the finished good it produces, else NULL */
    json_t *json;                   /* the object served, borrowed from catalog->products_json */
};

struct region {
    char code[REGION_CODE_LEN];
    bool overseas;
    size_t nneighbours;
    char neighbours[CATALOG_MAX_NEIGHBOURS][REGION_CODE_LEN];
    json_t *json;
};

struct catalog {
    struct product *products;
    size_t nproducts;
    struct region *regions;
    size_t nregions;
    struct market *markets;         /* owned */
    size_t nmarkets;
    json_t *products_json;          /* owned: array of product objects as served */
    json_t *regions_json;           /* owned: array of region objects as served */
};

int catalog_load(struct catalog *cat, const char *dir, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* Same checks on JSON text already in memory; `name` is used in messages. */
int catalog_load_products(struct catalog *cat, const char *text, const char *name, char *err,
                          size_t errlen) __attribute__((warn_unused_result));
int catalog_load_regions(struct catalog *cat, const char *text, const char *name, char *err,
                         size_t errlen) __attribute__((warn_unused_result));
void catalog_free(struct catalog *cat);

const struct product *catalog_product(const struct catalog *cat, const char *id);
const struct region *catalog_region(const struct catalog *cat, const char *code);
bool catalog_neighbours(const struct region *a, const char *code);
const char *catalog_category_name(enum product_category c);
/* The market an offer, need or allocation id belongs to (its last 4 characters); NULL when
 * the id names none. */
const struct market *catalog_market_of_id(const struct catalog *cat, const char *id);
size_t catalog_market_index(const struct catalog *cat, const struct market *m);

#endif
