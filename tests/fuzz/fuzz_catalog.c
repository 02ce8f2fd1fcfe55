/* fuzz_catalog.c — the catalogue files (catalog.c): the input as products.json beside the
 * shipped regions.json, and as regions.json beside the shipped products.json, loaded with the
 * in-memory entry points in catalog_load's order (products, then regions).
 *
 * Contracts: a failure leaves a message; a catalogue that loads answers its own lookups
 * (every product and region is found by its id or code, every market id by its code). */
#include "fuzz.h"

#include <stdlib.h>
#include <string.h>

#include "impactd/catalog.h"
#include "impactd/ids.h"

static void check_loaded(const struct catalog *cat)
{
    for (size_t i = 0; i < cat->nproducts; i++) {
        FUZZ_ASSERT(catalog_product(cat, cat->products[i].id) == &cat->products[i]);
        FUZZ_ASSERT(cat->products[i].market < cat->nmarkets);
        (void)catalog_category_name(cat->products[i].category);
    }
    for (size_t i = 0; i < cat->nregions; i++) {
        FUZZ_ASSERT(catalog_region(cat, cat->regions[i].code) == &cat->regions[i]);
        for (size_t k = 0; k < cat->regions[i].nneighbours; k++)
            (void)catalog_neighbours(&cat->regions[i], cat->regions[i].neighbours[k]);
    }
    for (size_t i = 0; i < cat->nmarkets; i++) {
        char id[ID_MAX_LEN];
        id_of_event("off_", 1767225600000LL, 1, cat->markets[i].code, id);
        FUZZ_ASSERT(catalog_market_of_id(cat, id) == &cat->markets[i]);
    }
}

static void load(const char *products, const char *regions)
{
    struct catalog cat;
    memset(&cat, 0, sizeof cat);
    char err[512] = "";
    int rc = catalog_load_products(&cat, products, "products.json", err, sizeof err);
    if (rc == 0)
        rc = catalog_load_regions(&cat, regions, "regions.json", err, sizeof err);
    if (rc == 0)
        check_loaded(&cat);
    else
        FUZZ_ASSERT(err[0] != '\0');
    catalog_free(&cat);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char *products, *regions;
    if (!products) {
        products = fuzz_read_tree_file("config/products.json");
        regions = fuzz_read_tree_file("config/regions.json");
    }
    char *text = fuzz_cstring(data, size);
    load(text, regions);
    load(products, text);
    free(text);
    return 0;
}
