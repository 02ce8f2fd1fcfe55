/* test_resource.c — the descriptors hold together: stored positions, enums, actions, the
 * function library written from them and the OpenAPI schemas. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "impactd/catalog.h"
#include "impactd/library.h"
#include "impactd/resource.h"
#include "impactd/schema.h"

static void test_stored_positions_are_unique_and_dense(void **state)
{
    (void)state;
    size_t n;
    const struct resource *const *all = resource_all(&n);
    assert_true(n >= 4);
    for (size_t r = 0; r < n; r++) {
        const struct resource *res = all[r];
        unsigned count = resource_positions(res);
        for (unsigned pos = 1; pos <= count; pos++) {
            unsigned seen = 0;
            for (size_t i = 0; i < res->nfields; i++)
                seen += res->fields[i].pos == pos;
            if (seen != 1)
                fail_msg("%s: position %u held by %u fields", res->name, pos, seen);
        }
    }
}

static void test_fields_are_described_consistently(void **state)
{
    (void)state;
    size_t n;
    const struct resource *const *all = resource_all(&n);
    for (size_t r = 0; r < n; r++) {
        const struct resource *res = all[r];
        assert_non_null(resource_field(res, "id"));
        for (size_t i = 0; i < res->nfields; i++) {
            const struct field *f = &res->fields[i];
            if (f->type == FT_ENUM && !f->enumtype)
                fail_msg("%s.%s: an enum without values", res->name, f->name);
            if (f->dflt && enum_code(f->enumtype, f->dflt) < 0)
                fail_msg("%s.%s: default %s is not a value", res->name, f->name, f->dflt);
            if ((f->flags & F_OWNER) && f->type != FT_REF)
                fail_msg("%s.%s: an owner must be a participant id", res->name, f->name);
            if ((f->flags & (F_CREATE | F_PATCH)) && (f->type == FT_ID || f->type == FT_CREATED ||
                                                       f->type == FT_MARKET))
                fail_msg("%s.%s: a derived field cannot be set by a body", res->name, f->name);
            if ((f->flags & (F_CREATE | F_PATCH)) && !f->pos)
                fail_msg("%s.%s: a field a body sets must be stored", res->name, f->name);
            for (size_t j = 0; j < i; j++)
                if (!strcmp(res->fields[j].name, f->name))
                    fail_msg("%s.%s: declared twice", res->name, f->name);
        }
        if (res->statuses)
            assert_non_null(resource_field(res, "status"));
    }
}

static void test_actions_name_existing_statuses(void **state)
{
    (void)state;
    const struct resource *a = &RESOURCE_ALLOCATION;
    assert_true(a->nactions >= 5);
    for (size_t i = 0; i < a->nactions; i++) {
        const struct action *act = &a->actions[i];
        assert_true(enum_code(a->statuses, act->to) >= 0);
        assert_non_null(act->from[0]);
        for (size_t f = 0; act->from[f]; f++)
            assert_true(enum_code(a->statuses, act->from[f]) >= 0);
        assert_true(!strcmp(act->side, "offer") || !strcmp(act->side, "need") ||
                    !strcmp(act->side, "platform"));
    }
    assert_non_null(resource_action(a, "lapse"));
    assert_null(resource_action(a, "explode"));
}

static void test_enum_codes_and_names(void **state)
{
    (void)state;
    assert_int_equal(enum_code(&ENUM_URGENCY, "stat"), 0);
    assert_int_equal(enum_code(&ENUM_URGENCY, "routine"), 3);
    assert_int_equal(enum_code(&ENUM_URGENCY, "soon"), -1);
    assert_string_equal(enum_name(&ENUM_TIER, 2), "national");
    assert_null(enum_name(&ENUM_TIER, 3));
    assert_null(enum_name(&ENUM_TIER, -1));
    char list[64];
    enum_list(&ENUM_DELIVERY_SCOPE, list, sizeof list);
    assert_string_equal(list, "region, neighbours, national");
}

static int load_catalog(struct catalog *cat)
{
    char err[512];
    memset(cat, 0, sizeof *cat);
    if (catalog_load(cat, SOURCE_ROOT "/config", err, sizeof err) != 0) {
        print_error("catalog_load: %s\n", err);
        return -1;
    }
    return 0;
}

static void test_library_prelude_and_function_names(void **state)
{
    (void)state;
    struct catalog cat;
    assert_int_equal(load_catalog(&cat), 0);
    struct store_library lib;
    char err[256];
    assert_int_equal(library_build(&lib, &cat, err, sizeof err), 0);
    assert_true(!strncmp(lib.code, "#!lua name=impactd_", 19));
    assert_int_equal(strlen(lib.name), 8 + 16);
    /* every function is named after the library, every position table is there */
    for (size_t i = 0; i < FN_COUNT_; i++) {
        char want[128];
        snprintf(want, sizeof want, "%s_%s", lib.name, FN_NAMES[i]);
        assert_string_equal(lib.fn[i], want);
        char reg[64], reg_market[80];
        snprintf(reg, sizeof reg, "register('%s'", FN_NAMES[i]);
        snprintf(reg_market, sizeof reg_market, "register_market('%s'", FN_NAMES[i]);
        assert_true(strstr(lib.code, reg) || strstr(lib.code, reg_market));
    }
    assert_non_null(strstr(lib.code, "local O = {participant_id = 1"));
    assert_non_null(strstr(lib.code, "URGENCY['stat'], URGENCY_NAME[0] = 0, 'stat'"));
    assert_non_null(strstr(lib.code, "NB['11']['24'], NBIDX['11']['24'] = true, 1"));
    assert_non_null(strstr(lib.code, "ACTIONS['decline'] = { name = 'decline', side = 'offer'"));
    /* the effects and the stamp's position come from the action table */
    assert_non_null(strstr(lib.code, "ACTIONS['cancel'] = { name = 'cancel', side = 'need', "
                                     "to = 6, release = false, receive = false, cancel = true, "
                                     "close = true"));
    char stamp[64];
    snprintf(stamp, sizeof stamp, "due_ship = true, due_receive = false, stamp = %u,",
             resource_field(&RESOURCE_ALLOCATION, "confirmed_at")->pos);
    assert_non_null(strstr(lib.code, stamp));
    /* the same catalogue gives the same library; another catalogue another name */
    struct store_library again;
    assert_int_equal(library_build(&again, &cat, err, sizeof err), 0);
    assert_string_equal(again.name, lib.name);
    library_free(&again);
    for (size_t i = 0; i < cat.nregions; i++)
        if (!strcmp(cat.regions[i].code, "11"))
            cat.regions[i].nneighbours = 0;
    assert_int_equal(library_build(&again, &cat, err, sizeof err), 0);
    assert_string_not_equal(again.name, lib.name);
    library_free(&again);
    library_free(&lib);
    catalog_free(&cat);
}

static void test_schemas_follow_the_tables(void **state)
{
    (void)state;
    char err[256];
    json_t *doc = schema_document(err, sizeof err);
    if (!doc)
        fail_msg("%s", err);
    json_t *schemas = json_object_get(json_object_get(doc, "components"), "schemas");
    json_t *need = json_object_get(schemas, "Need");
    json_t *props = json_object_get(need, "properties");
    size_t out = 0;
    for (size_t i = 0; i < RESOURCE_NEED.nfields; i++)
        if (RESOURCE_NEED.fields[i].flags & F_OUT) {
            out++;
            assert_non_null(json_object_get(props, RESOURCE_NEED.fields[i].name));
        }
    assert_int_equal(json_object_size(props), out);
    assert_int_equal(json_array_size(json_object_get(need, "required")), out);
    json_t *patch = json_object_get(json_object_get(schemas, "NeedPatch"), "properties");
    assert_non_null(json_object_get(patch, "urgency"));
    assert_null(json_object_get(patch, "product"));
    char *text = json_dumps(doc, JSON_COMPACT);
    assert_null(strstr(text, "x-impactd"));
    free(text);
    json_decref(doc);
    /* a field's description and bounds */
    json_t *s = schema_of(&RESOURCE_OFFER, F_CREATE);
    json_t *q = json_object_get(json_object_get(s, "properties"), "quantity");
    assert_int_equal(json_integer_value(json_object_get(q, "minimum")), 1);
    assert_int_equal(json_integer_value(json_object_get(q, "maximum")), 1000000000);
    json_decref(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stored_positions_are_unique_and_dense),
        cmocka_unit_test(test_fields_are_described_consistently),
        cmocka_unit_test(test_actions_name_existing_statuses),
        cmocka_unit_test(test_enum_codes_and_names),
        cmocka_unit_test(test_library_prelude_and_function_names),
        cmocka_unit_test(test_schemas_follow_the_tables),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
