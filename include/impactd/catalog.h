/* catalog.h — the reference data: products, regions and departments, loaded from JSON files
 * at start-up.
 *
 * catalog_load reads <dir>/products.json, <dir>/regions.json and <dir>/departements.json
 * (departments, to derive a region from a postcode), validates them (a bad file
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

/* A French department (INSEE code "01".."95", "2A", "2B", "971".."976") and its region. */
#define DEPARTEMENT_CODE_LEN 4
struct departement {
    char code[DEPARTEMENT_CODE_LEN];
    char region[REGION_CODE_LEN];
};

struct catalog {
    struct product *products;
    size_t nproducts;
    struct region *regions;
    size_t nregions;
    struct departement *departements; /* owned */
    size_t ndepartements;
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
/* Needs the regions loaded first: every department's region must be one of them. */
int catalog_load_departements(struct catalog *cat, const char *text, const char *name, char *err,
                              size_t errlen) __attribute__((warn_unused_result));
void catalog_free(struct catalog *cat);

const struct product *catalog_product(const struct catalog *cat, const char *id);
const struct region *catalog_region(const struct catalog *cat, const char *code);
/* The department of a French postcode (5 digits): its first two digits, 97xxx its first three,
 * Corsica's 200xx-201xx "2A" and 202xx-206xx "2B"; NULL when the postcode is malformed or
 * names no department of the catalogue (e.g. 975xx, 98xxx, 00xxx). */
const struct departement *catalog_departement_of_postcode(const struct catalog *cat,
                                                          const char *postcode);
/* The region of a postcode through its department; NULL as above. */
const struct region *catalog_region_of_postcode(const struct catalog *cat, const char *postcode);
bool catalog_neighbours(const struct region *a, const char *code);
const char *catalog_category_name(enum product_category c);
/* The market an offer, need or allocation id belongs to (its last 4 characters); NULL when
 * the id names none. */
const struct market *catalog_market_of_id(const struct catalog *cat, const char *id);
size_t catalog_market_index(const struct catalog *cat, const struct market *m);

#endif
