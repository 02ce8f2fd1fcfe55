/* test_record.c — stored records: packing by descriptor, decoding, API objects, PATCH sets,
 * ids of market objects, and the hash form of participants. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "impactd/ids.h"
#include "impactd/record.h"
#include "impactd/resource.h"
#include "impactd/store.h"

static json_t *parse(const char *text)
{
    json_error_t je;
    json_t *v = json_loads(text, 0, &je);
    if (!v)
        fail_msg("test JSON does not parse: %s", je.text);
    return v;
}

/* Packs values as an offer of market "hydroalcoholic-gel" and decodes it back. */
static void pack_offer(const char *values, struct record *rec, struct packbuf *pb)
{
    json_t *v = parse(values);
    packbuf_init(pb);
    assert_int_equal(record_pack(&RESOURCE_OFFER, v, "hydroalcoholic-gel", pb), 0);
    json_decref(v);
    assert_int_equal(record_decode(rec, pb->sb.data, pb->sb.size), 0);
}

static void test_pack_puts_each_field_at_its_position(void **state)
{
    (void)state;
    struct record rec;
    struct packbuf pb;
    pack_offer("{\"participant_id\": \"prt_a\", \"product\": \"gel-production-capacity\", "
               "\"quantity\": 300, \"region\": \"11\", \"delivery_scope\": \"national\", "
               "\"ready_at\": \"2026-03-27T08:00:00Z\", \"note\": \"n\"}", &rec, &pb);
    assert_int_equal(rec.n, resource_positions(&RESOURCE_OFFER));
    const char *s;
    size_t len;
    long long v;
    assert_true(record_str(&rec, resource_field(&RESOURCE_OFFER, "participant_id"), &s, &len));
    assert_int_equal(len, 5);
    assert_memory_equal(s, "prt_a", 5);
    assert_true(record_int(&rec, resource_field(&RESOURCE_OFFER, "quantity"), &v));
    assert_int_equal(v, 300);
    /* enums by index, times in ms */
    assert_true(record_int(&rec, resource_field(&RESOURCE_OFFER, "delivery_scope"), &v));
    assert_int_equal(v, 2);
    assert_true(record_int(&rec, resource_field(&RESOURCE_OFFER, "ready_at"), &v));
    assert_int_equal(v, 1774598400000LL);
    /* absent fields are nil */
    assert_false(record_int(&rec, resource_field(&RESOURCE_OFFER, "min_lot"), &v));
    record_release(&rec);
    packbuf_free(&pb);
}

static void test_market_product_is_left_out_and_shown_again(void **state)
{
    (void)state;
    struct record rec;
    struct packbuf pb;
    pack_offer("{\"product\": \"hydroalcoholic-gel\", \"quantity\": 1}", &rec, &pb);
    const char *s;
    assert_false(record_str(&rec, resource_field(&RESOURCE_OFFER, "product"), &s, NULL));
    json_t *api = record_to_api(&RESOURCE_OFFER, "off_x", &rec, NULL);
    assert_null(json_string_value(json_object_get(api, "product")));  /* no catalogue here */
    json_decref(api);
    record_release(&rec);
    packbuf_free(&pb);
}

static void test_api_object_has_every_key_of_the_table(void **state)
{
    (void)state;
    struct record rec;
    struct packbuf pb;
    pack_offer("{\"quantity\": 5, \"status\": \"depleted\", \"updated_at\": 1774598400123, "
               "\"expires_at\": null}", &rec, &pb);
    char id[ID_MAX_LEN];
    id_of_event("off_", 1774598400000LL, 7, "0f5t", id);
    json_t *api = record_to_api(&RESOURCE_OFFER, id, &rec, NULL);
    size_t out = 0;
    for (size_t i = 0; i < RESOURCE_OFFER.nfields; i++)
        if (RESOURCE_OFFER.fields[i].flags & F_OUT) {
            out++;
            assert_non_null(json_object_get(api, RESOURCE_OFFER.fields[i].name));
        }
    assert_int_equal(json_object_size(api), out);
    assert_string_equal(json_string_value(json_object_get(api, "id")), id);
    assert_string_equal(json_string_value(json_object_get(api, "status")), "depleted");
    assert_string_equal(json_string_value(json_object_get(api, "updated_at")),
                        "2026-03-27T08:00:00.123Z");
    /* created_at comes from the id */
    assert_string_equal(json_string_value(json_object_get(api, "created_at")),
                        "2026-03-27T08:00:00Z");
    assert_true(json_is_null(json_object_get(api, "expires_at")));
    assert_int_equal(json_integer_value(json_object_get(api, "quantity")), 5);
    json_decref(api);
    record_release(&rec);
    packbuf_free(&pb);
}

static void test_patch_packs_position_value_pairs(void **state)
{
    (void)state;
    json_t *body = parse("{\"quantity\": 9, \"note\": null}");
    struct packbuf pb;
    packbuf_init(&pb);
    assert_int_equal(record_pack_patch(&RESOURCE_OFFER, body, &pb), 0);
    json_decref(body);
    struct record rec;
    assert_int_equal(record_decode(&rec, pb.sb.data, pb.sb.size), 0);
    assert_int_equal(rec.n, 4);
    assert_int_equal(rec.v[0].via.u64, resource_field(&RESOURCE_OFFER, "quantity")->pos);
    assert_int_equal(rec.v[1].via.u64, 9);
    assert_int_equal(rec.v[2].via.u64, resource_field(&RESOURCE_OFFER, "note")->pos);
    assert_int_equal(rec.v[3].type, MSGPACK_OBJECT_BOOLEAN);   /* cleared: false, not nil */
    assert_false(rec.v[3].via.boolean);
    record_release(&rec);
    packbuf_free(&pb);
}

static void test_unconvertible_value_is_refused(void **state)
{
    (void)state;
    json_t *v = parse("{\"delivery_scope\": \"everywhere\"}");
    struct packbuf pb;
    packbuf_init(&pb);
    assert_int_equal(record_pack(&RESOURCE_OFFER, v, NULL, &pb), -1);
    json_decref(v);
    packbuf_free(&pb);
}

static void test_decode_refuses_what_is_not_a_record(void **state)
{
    (void)state;
    struct record rec;
    assert_int_equal(record_decode(&rec, "\x81\xa1k\x01", 4), -1);     /* a map */
    record_release(&rec);
    assert_int_equal(record_decode(&rec, "", 0), -1);
    record_release(&rec);
    assert_null(record_api_from(&RESOURCE_NEED, "ned_x", "\x92\x01", 2, NULL));  /* truncated */
}

static void test_record_shorter_than_the_table_reads_as_absent(void **state)
{
    (void)state;
    /* a record written before a field was added: the new positions are simply absent */
    struct record rec;
    assert_int_equal(record_decode(&rec, "\x91\xa5prt_a", 7), 0);
    long long v;
    assert_false(record_int(&rec, resource_field(&RESOURCE_NEED, "quantity"), &v));
    json_t *api = record_to_api(&RESOURCE_NEED, "ned_x", &rec, NULL);
    assert_string_equal(json_string_value(json_object_get(api, "participant_id")), "prt_a");
    assert_true(json_is_null(json_object_get(api, "quantity")));
    json_decref(api);
    record_release(&rec);
}

static void test_ids_of_events_sort_and_give_their_time(void **state)
{
    (void)state;
    char a[ID_MAX_LEN], b[ID_MAX_LEN], c[ID_MAX_LEN];
    id_of_event("ned_", 1774598400000LL, 65535, "0f5t", a);
    id_of_event("ned_", 1774598400001LL, 0, "0f5t", b);
    id_of_event("ned_", 1774598400001LL, 1, "aaaa", c);
    assert_int_equal(strlen(a), 4 + 11 + 4 + 4);
    assert_true(strcmp(a, b) < 0 && strcmp(b, c) < 0);
    assert_true(id_valid(a, "ned_"));
    assert_int_equal(record_id_ms(b, "ned_"), 1774598400001LL);
    assert_int_equal(record_id_ms(b, "off_"), -1);
    assert_int_equal(record_id_ms("ned_xyz", "ned_"), -1);
}

static void test_hash_args_of_a_new_record_skip_nulls(void **state)
{
    (void)state;
    json_t *v = parse("{\"id\": \"prt_a\", \"role\": \"hospital\", \"name\": \"CHU\", "
                      "\"webhook_url\": null, \"lat\": 50.5, \"regions\": [\"11\"], "
                      "\"created_at\": 1774598400000}");
    struct cmd c;
    cmd_init(&c);
    assert_int_equal(record_hash_args(&RESOURCE_PARTICIPANT, v, 0, &c), 0);
    /* id, role, name, lat, regions, created_at: 6 pairs, no webhook_url */
    assert_int_equal(c.argc, 12);
    assert_null(memmem(c.buf, c.len, "webhook_url", 11));
    assert_non_null(memmem(c.buf, c.len, "[\"11\"]", 6));
    cmd_free(&c);
    /* a PATCH sends the null, as "" (the field is deleted) */
    cmd_init(&c);
    assert_int_equal(record_hash_args(&RESOURCE_PARTICIPANT, v, F_PATCH, &c), 0);
    assert_int_equal(c.argc, 4);        /* name and webhook_url are the patchable ones */
    assert_non_null(memmem(c.buf, c.len, "$11\r\nwebhook_url\r\n$0\r\n\r\n", 24));
    cmd_free(&c);
    json_decref(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pack_puts_each_field_at_its_position),
        cmocka_unit_test(test_market_product_is_left_out_and_shown_again),
        cmocka_unit_test(test_api_object_has_every_key_of_the_table),
        cmocka_unit_test(test_patch_packs_position_value_pairs),
        cmocka_unit_test(test_unconvertible_value_is_refused),
        cmocka_unit_test(test_decode_refuses_what_is_not_a_record),
        cmocka_unit_test(test_record_shorter_than_the_table_reads_as_absent),
        cmocka_unit_test(test_ids_of_events_sort_and_give_their_time),
        cmocka_unit_test(test_hash_args_of_a_new_record_skip_nulls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
