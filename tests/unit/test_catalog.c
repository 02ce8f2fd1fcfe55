/* test_catalog.c — the shipped catalogue loads and answers lookups; each kind of bad catalogue
 * text is refused with a message naming the file it came from. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "impactd/catalog.h"

#define BAD_NAME "test/bad-catalog.json"

/* ---- the shipped catalogue ---- */

static int load_shipped(void **state)
{
    static struct catalog cat;
    char err[512] = "";
    if (catalog_load(&cat, SOURCE_ROOT "/config", err, sizeof err) != 0) {
        print_error("catalog_load: %s\n", err);
        return -1;
    }
    *state = &cat;
    return 0;
}

static int free_shipped(void **state)
{
    catalog_free(*state);
    return 0;
}

static void test_shipped_catalog_counts(void **state)
{
    const struct catalog *cat = *state;
    assert_int_equal(cat->nproducts, 19);
    assert_int_equal(cat->nregions, 18);
    assert_int_equal(json_array_size(cat->products_json), 19);
    assert_int_equal(json_array_size(cat->regions_json), 18);
}

static void test_raw_material_lookup(void **state)
{
    const struct catalog *cat = *state;
    const struct product *p = catalog_product(cat, "ethanol-96");
    assert_non_null(p);
    assert_string_equal(p->id, "ethanol-96");
    assert_int_equal(p->category, CAT_RAW_MATERIAL);
    assert_string_equal(catalog_category_name(p->category), "raw_material");
    assert_string_equal(p->unit, "L");
    assert_null(p->serves);
    assert_string_equal(json_string_value(json_object_get(p->json, "id")), "ethanol-96");
    assert_null(catalog_product(cat, "ethanol"));
    assert_null(catalog_product(cat, ""));
}

static void test_capacity_serves_finished_good(void **state)
{
    const struct catalog *cat = *state;
    const struct product *p = catalog_product(cat, "gel-production-capacity");
    assert_non_null(p);
    assert_int_equal(p->category, CAT_CAPACITY);
    assert_non_null(p->serves);
    assert_string_equal(p->serves, "hydroalcoholic-gel");
    const struct product *good = catalog_product(cat, p->serves);
    assert_non_null(good);
    assert_int_equal(good->category, CAT_FINISHED_GOOD);
    assert_string_equal(good->unit, p->unit);
}

static void test_every_capacity_serves_a_finished_good(void **state)
{
    const struct catalog *cat = *state;
    size_t capacities = 0;
    for (size_t i = 0; i < cat->nproducts; i++) {
        const struct product *p = &cat->products[i];
        if (p->category != CAT_CAPACITY) {
            assert_null(p->serves);
            continue;
        }
        capacities++;
        const struct product *good = catalog_product(cat, p->serves);
        assert_non_null(good);
        assert_int_equal(good->category, CAT_FINISHED_GOOD);
    }
    assert_int_equal(capacities, 2);
}

static void test_region_neighbours(void **state)
{
    const struct catalog *cat = *state;
    const struct region *idf = catalog_region(cat, "11");
    assert_non_null(idf);
    assert_false(idf->overseas);
    assert_true(catalog_neighbours(idf, "24"));
    assert_false(catalog_neighbours(idf, "94"));
    assert_false(catalog_neighbours(idf, "11"));
    const struct region *cvl = catalog_region(cat, "24");
    assert_non_null(cvl);
    assert_true(catalog_neighbours(cvl, "11"));
    assert_null(catalog_region(cat, "99"));
    assert_null(catalog_region(cat, "1"));
}

static void test_corse_and_overseas_have_no_neighbours(void **state)
{
    const struct catalog *cat = *state;
    const struct region *corse = catalog_region(cat, "94");
    assert_non_null(corse);
    assert_false(corse->overseas);
    assert_int_equal(corse->nneighbours, 0);
    const struct region *reunion = catalog_region(cat, "04");
    assert_non_null(reunion);
    assert_true(reunion->overseas);
    assert_int_equal(reunion->nneighbours, 0);
    size_t overseas = 0;
    for (size_t i = 0; i < cat->nregions; i++)
        if (cat->regions[i].overseas) {
            overseas++;
            assert_int_equal(cat->regions[i].nneighbours, 0);
        }
    assert_int_equal(overseas, 5);
}

static bool is_crockford(const char *s)
{
    for (; *s; s++)
        if (!strchr("0123456789abcdefghjkmnpqrstvwxyz", *s))
            return false;
    return true;
}

static void test_one_market_per_non_capacity_product(void **state)
{
    const struct catalog *cat = *state;
    assert_int_equal(cat->nmarkets, 17);    /* 19 products, 2 of them capacities */
    for (size_t i = 0; i < cat->nmarkets; i++) {
        const struct market *m = &cat->markets[i];
        assert_int_equal(strlen(m->code), MARKET_CODE_LEN);
        if (!is_crockford(m->code))
            fail_msg("market %s code \"%s\" is not base32", m->id, m->code);
        const struct product *p = catalog_product(cat, m->id);
        assert_non_null(p);
        assert_int_not_equal(p->category, CAT_CAPACITY);
        assert_int_equal(p->market, i);
        for (size_t j = i + 1; j < cat->nmarkets; j++)
            assert_string_not_equal(m->code, cat->markets[j].code);
    }
}

static void test_capacity_shares_the_market_it_serves(void **state)
{
    const struct catalog *cat = *state;
    const struct product *cap = catalog_product(cat, "gel-production-capacity");
    const struct product *gel = catalog_product(cat, "hydroalcoholic-gel");
    assert_non_null(cap);
    assert_non_null(gel);
    assert_int_equal(cap->market, gel->market);
    assert_string_equal(cat->markets[gel->market].id, "hydroalcoholic-gel");
    const struct product *ethanol = catalog_product(cat, "ethanol-96");
    assert_int_not_equal(ethanol->market, gel->market);
}

static void test_market_of_id_reads_the_last_four_chars(void **state)
{
    const struct catalog *cat = *state;
    const struct product *gel = catalog_product(cat, "hydroalcoholic-gel");
    const struct market *m = &cat->markets[gel->market];
    char id[64];
    snprintf(id, sizeof id, "off_01hzzzzzzzzzzzzzzzzzzzzz%s", m->code);
    assert_ptr_equal(catalog_market_of_id(cat, id), m);
    assert_int_equal(catalog_market_index(cat, catalog_market_of_id(cat, id)), gel->market);
    assert_ptr_equal(catalog_market_of_id(cat, m->code), m);
    assert_null(catalog_market_of_id(cat, "off_0123iiii"));    /* 'i' is never in a code */
    assert_null(catalog_market_of_id(cat, "abc"));
    assert_null(catalog_market_of_id(cat, ""));
}

static void assert_postcode_region(const struct catalog *cat, const char *postcode,
                                   const char *departement, const char *region)
{
    const struct departement *d = catalog_departement_of_postcode(cat, postcode);
    assert_non_null(d);
    assert_string_equal(d->code, departement);
    const struct region *r = catalog_region_of_postcode(cat, postcode);
    assert_non_null(r);
    assert_string_equal(r->code, region);
}

static void test_shipped_departements(void **state)
{
    const struct catalog *cat = *state;
    assert_int_equal(cat->ndepartements, 101);
    for (size_t i = 0; i < cat->ndepartements; i++)
        assert_non_null(catalog_region(cat, cat->departements[i].region));
}

static void test_postcode_to_region(void **state)
{
    const struct catalog *cat = *state;
    assert_postcode_region(cat, "75001", "75", "11");   /* Paris, Île-de-France */
    assert_postcode_region(cat, "01000", "01", "84");   /* leading zero kept */
    assert_postcode_region(cat, "35000", "35", "53");
    assert_postcode_region(cat, "59000", "59", "32");
    assert_postcode_region(cat, "95000", "95", "11");
    /* Corsica: 200xx-201xx Corse-du-Sud, 202xx-206xx Haute-Corse, both region 94 */
    assert_postcode_region(cat, "20000", "2A", "94");   /* Ajaccio */
    assert_postcode_region(cat, "20167", "2A", "94");
    assert_postcode_region(cat, "20200", "2B", "94");   /* Bastia */
    assert_postcode_region(cat, "20600", "2B", "94");
    /* overseas: the first three digits */
    assert_postcode_region(cat, "97100", "971", "01");
    assert_postcode_region(cat, "97200", "972", "02");
    assert_postcode_region(cat, "97300", "973", "03");
    assert_postcode_region(cat, "97400", "974", "04");
    assert_postcode_region(cat, "97600", "976", "06");
}

static void test_bad_postcodes_have_no_region(void **state)
{
    const struct catalog *cat = *state;
    static const char *const BAD[] = { "",      "7500",  "750011", "7500a", " 7500", "00100",
                                       "20700", "20900", "97500",  "97800", "98000", "9 100" };
    for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; i++) {
        assert_null(catalog_departement_of_postcode(cat, BAD[i]));
        assert_null(catalog_region_of_postcode(cat, BAD[i]));
    }
    assert_null(catalog_region_of_postcode(cat, NULL));
}

static void departements_refused(const char *text, const char *part)
{
    struct catalog cat;
    memset(&cat, 0, sizeof cat);
    char err[512] = "";
    assert_int_equal(catalog_load_regions(&cat, "{\"regions\": [{\"code\": \"11\", \"name\": "
                                          "\"x\", \"overseas\": false, \"neighbours\": []}]}",
                                          BAD_NAME, err, sizeof err), 0);
    int rc = catalog_load_departements(&cat, text, BAD_NAME, err, sizeof err);
    catalog_free(&cat);
    assert_int_equal(rc, -1);
    assert_non_null(strstr(err, BAD_NAME));
    if (!strstr(err, part))
        fail_msg("\"%s\" not in \"%s\"", part, err);
}

static void test_bad_departements_refused(void **state)
{
    (void)state;
    departements_refused("[", "invalid JSON");
    departements_refused("{\"departements\": [{\"code\": \"20\", \"region\": \"11\"}]}",
                         "code");
    departements_refused("{\"departements\": [{\"code\": \"975x\", \"region\": \"11\"}]}",
                         "code");
    departements_refused("{\"departements\": [{\"code\": \"75\", \"region\": \"12\"}]}",
                         "region");
    departements_refused("{\"departements\": [{\"code\": \"75\", \"region\": \"11\"}, "
                         "{\"code\": \"75\", \"region\": \"11\"}]}", "twice");
}

static void test_missing_catalog_dir_names_the_file(void **state)
{
    (void)state;
    struct catalog cat;
    char err[512] = "";
    assert_int_equal(catalog_load(&cat, "/nonexistent-dir", err, sizeof err), -1);
    assert_non_null(strstr(err, "/nonexistent-dir/products.json"));
    assert_int_equal(cat.nproducts, 0);
}

/* ---- bad texts ---- */

/* Asserts that the products text is refused with a message naming BAD_NAME and `part`. */
static void products_refused(const char *text, const char *part)
{
    struct catalog cat;
    memset(&cat, 0, sizeof cat);
    char err[512] = "";
    int rc = catalog_load_products(&cat, text, BAD_NAME, err, sizeof err);
    catalog_free(&cat);
    if (rc == 0)
        fail_msg("accepted: %s", text);
    if (!strstr(err, BAD_NAME) || !strstr(err, part))
        fail_msg("message \"%s\" lacks \"%s\" or \"%s\"", err, BAD_NAME, part);
}

static void regions_refused(const char *text, const char *part)
{
    struct catalog cat;
    memset(&cat, 0, sizeof cat);
    char err[512] = "";
    int rc = catalog_load_regions(&cat, text, BAD_NAME, err, sizeof err);
    catalog_free(&cat);
    if (rc == 0)
        fail_msg("accepted: %s", text);
    if (!strstr(err, BAD_NAME) || !strstr(err, part))
        fail_msg("message \"%s\" lacks \"%s\" or \"%s\"", err, BAD_NAME, part);
}

#define GEL "{\"id\": \"gel\", \"name\": \"Gel\", \"category\": \"finished_good\", \"unit\": \"L\"}"
#define ETHANOL \
    "{\"id\": \"ethanol\", \"name\": \"E\", \"category\": \"raw_material\", \"unit\": \"L\"}"
#define REG(code, overseas, neigh) \
    "{\"code\": \"" code "\", \"name\": \"R" code "\", \"overseas\": " overseas \
    ", \"neighbours\": [" neigh "]}"

static void test_small_valid_texts_load(void **state)
{
    (void)state;
    struct catalog cat;
    memset(&cat, 0, sizeof cat);
    char err[512] = "";
    int rc = catalog_load_products(&cat, "{\"products\": [" GEL ", {\"id\": \"gel-cap\", "
                                   "\"name\": \"Cap\", \"category\": \"capacity\", \"unit\": \"L\","
                                   " \"serves\": \"gel\"}]}", BAD_NAME, err, sizeof err);
    if (rc != 0)
        fail_msg("%s", err);
    rc = catalog_load_regions(&cat, "{\"regions\": [" REG("11", "false", "\"24\"") ", "
                              REG("24", "false", "\"11\"") ", " REG("01", "true", "") "]}",
                              BAD_NAME, err, sizeof err);
    if (rc != 0)
        fail_msg("%s", err);
    assert_int_equal(cat.nproducts, 2);
    assert_int_equal(cat.nregions, 3);
    assert_string_equal(catalog_product(&cat, "gel-cap")->serves, "gel");
    catalog_free(&cat);
}

static void test_market_codes_do_not_depend_on_order(void **state)
{
    (void)state;
    static const char *const TEXTS[] = {
        "{\"products\": [" GEL ", " ETHANOL "]}",
        "{\"products\": [" ETHANOL ", " GEL "]}",
    };
    char codes[2][MARKET_CODE_LEN + 1];
    for (size_t t = 0; t < 2; t++) {
        struct catalog cat;
        memset(&cat, 0, sizeof cat);
        char err[512] = "";
        if (catalog_load_products(&cat, TEXTS[t], BAD_NAME, err, sizeof err) != 0)
            fail_msg("%s", err);
        assert_int_equal(cat.nmarkets, 2);
        const struct product *gel = catalog_product(&cat, "gel");
        memcpy(codes[t], cat.markets[gel->market].code, sizeof codes[t]);
        catalog_free(&cat);
    }
    assert_string_equal(codes[0], codes[1]);
}


static void test_invalid_json_refused(void **state)
{
    (void)state;
    products_refused("{\"products\": [", "invalid JSON");
    regions_refused("not json", "invalid JSON");
    products_refused("{\"products\": []}", "products");
    products_refused("{\"items\": [" GEL "]}", "products");
}

static void test_unknown_category_refused(void **state)
{
    (void)state;
    products_refused("{\"products\": [{\"id\": \"x\", \"name\": \"X\", \"category\": \"tool\","
                     " \"unit\": \"L\"}]}", "category");
}

static void test_bad_unit_refused(void **state)
{
    (void)state;
    products_refused("{\"products\": [{\"id\": \"x\", \"name\": \"X\", \"category\": \"packaging\","
                     " \"unit\": \"ml\"}]}", "unit");
}

static void test_duplicate_product_id_refused(void **state)
{
    (void)state;
    products_refused("{\"products\": [" GEL ", " GEL "]}", "\"gel\" appears twice");
}

static void test_bad_product_id_refused(void **state)
{
    (void)state;
    products_refused("{\"products\": [{\"id\": \"Gel\", \"name\": \"G\", \"category\": "
                     "\"finished_good\", \"unit\": \"L\"}]}", "id");
}

static void test_capacity_serving_non_finished_good_refused(void **state)
{
    (void)state;
    products_refused("{\"products\": [{\"id\": \"ethanol\", \"name\": \"E\", \"category\": "
                     "\"raw_material\", \"unit\": \"L\"}, {\"id\": \"cap\", \"name\": \"C\", "
                     "\"category\": \"capacity\", \"unit\": \"L\", \"serves\": \"ethanol\"}]}",
                     "serves");
    products_refused("{\"products\": [{\"id\": \"cap\", \"name\": \"C\", \"category\": "
                     "\"capacity\", \"unit\": \"L\", \"serves\": \"nothing\"}]}", "serves");
    products_refused("{\"products\": [{\"id\": \"cap\", \"name\": \"C\", \"category\": "
                     "\"capacity\", \"unit\": \"L\"}]}", "serves");
}

static void test_serves_on_non_capacity_refused(void **state)
{
    (void)state;
    products_refused("{\"products\": [" GEL ", {\"id\": \"g2\", \"name\": \"G\", \"category\": "
                     "\"finished_good\", \"unit\": \"L\", \"serves\": \"gel\"}]}", "serves");
}

static void test_non_symmetric_neighbour_refused(void **state)
{
    (void)state;
    regions_refused("{\"regions\": [" REG("11", "false", "\"24\"") ", "
                    REG("24", "false", "") "]}", "reverse");
}

static void test_unknown_neighbour_refused(void **state)
{
    (void)state;
    regions_refused("{\"regions\": [" REG("11", "false", "\"99\"") "]}",
                    "unknown neighbour \"99\"");
}

static void test_overseas_region_with_neighbours_refused(void **state)
{
    (void)state;
    regions_refused("{\"regions\": [" REG("01", "true", "\"02\"") ", "
                    REG("02", "true", "\"01\"") "]}", "overseas");
}

static void test_region_code_not_two_digits_refused(void **state)
{
    (void)state;
    regions_refused("{\"regions\": [" REG("1", "false", "") "]}", "code");
    regions_refused("{\"regions\": [" REG("1a", "false", "") "]}", "code");
    regions_refused("{\"regions\": [" REG("111", "false", "") "]}", "code");
    regions_refused("{\"regions\": [{\"code\": 11, \"name\": \"R\", \"overseas\": false, "
                    "\"neighbours\": []}]}", "code");
    regions_refused("{\"regions\": [" REG("11", "false", "\"2\"") "]}", "neighbours[0]");
}

static void test_duplicate_region_refused(void **state)
{
    (void)state;
    regions_refused("{\"regions\": [" REG("11", "false", "") ", " REG("11", "false", "") "]}",
                    "appears twice");
}

int main(void)
{
    /* cmocka 1.1 reports results on stdout but failures and its summary on stderr: one
     * stream keeps each failure under its test and the summary where scripts read it. */
    if (dup2(STDOUT_FILENO, STDERR_FILENO) < 0)
        return 1;
    const struct CMUnitTest shipped[] = {
        cmocka_unit_test(test_shipped_catalog_counts),
        cmocka_unit_test(test_raw_material_lookup),
        cmocka_unit_test(test_capacity_serves_finished_good),
        cmocka_unit_test(test_every_capacity_serves_a_finished_good),
        cmocka_unit_test(test_region_neighbours),
        cmocka_unit_test(test_corse_and_overseas_have_no_neighbours),
        cmocka_unit_test(test_one_market_per_non_capacity_product),
        cmocka_unit_test(test_capacity_shares_the_market_it_serves),
        cmocka_unit_test(test_market_of_id_reads_the_last_four_chars),
        cmocka_unit_test(test_shipped_departements),
        cmocka_unit_test(test_postcode_to_region),
        cmocka_unit_test(test_bad_postcodes_have_no_region),
    };
    const struct CMUnitTest texts[] = {
        cmocka_unit_test(test_missing_catalog_dir_names_the_file),
        cmocka_unit_test(test_bad_departements_refused),
        cmocka_unit_test(test_small_valid_texts_load),
        cmocka_unit_test(test_market_codes_do_not_depend_on_order),
        cmocka_unit_test(test_invalid_json_refused),
        cmocka_unit_test(test_unknown_category_refused),
        cmocka_unit_test(test_bad_unit_refused),
        cmocka_unit_test(test_duplicate_product_id_refused),
        cmocka_unit_test(test_bad_product_id_refused),
        cmocka_unit_test(test_capacity_serving_non_finished_good_refused),
        cmocka_unit_test(test_serves_on_non_capacity_refused),
        cmocka_unit_test(test_non_symmetric_neighbour_refused),
        cmocka_unit_test(test_unknown_neighbour_refused),
        cmocka_unit_test(test_overseas_region_with_neighbours_refused),
        cmocka_unit_test(test_region_code_not_two_digits_refused),
        cmocka_unit_test(test_duplicate_region_refused),
    };
    int failed = cmocka_run_group_tests_name("shipped catalogue", shipped, load_shipped,
                                             free_shipped);
    failed += cmocka_run_group_tests_name("catalogue texts", texts, NULL, NULL);
    return failed;
}
