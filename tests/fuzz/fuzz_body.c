/* fuzz_body.c — request bodies: JSON text, decoded as http.c decodes a body, validated by
 * validate_object against every body a route validates (each resource's create and PATCH
 * fields, and the empty table of action and token bodies), with the catalogue's checks.
 *
 * Contracts checked beyond the sanitizers: the fault count is the number of {field, message}
 * objects added, each with two strings; a body without faults can be stored (record_pack,
 * record_pack_patch, record_hash_args succeed) and the packed record reads back as an API
 * object (record_decode, record_to_api). */
#include "fuzz.h"

#include <string.h>

#include "impactd/catalog.h"
#include "impactd/ids.h"
#include "impactd/record.h"
#include "impactd/resource.h"
#include "impactd/server.h"
#include "impactd/store.h"
#include "impactd/validate.h"

static void check_errors(const json_t *errors, int faults)
{
    FUZZ_ASSERT(faults >= 0 && json_array_size(errors) == (size_t)faults);
    size_t i;
    json_t *e;
    json_array_foreach(errors, i, e) {
        FUZZ_ASSERT(json_is_object(e) && json_object_size(e) == 2);
        FUZZ_ASSERT(json_is_string(json_object_get(e, "field")));
        FUZZ_ASSERT(json_is_string(json_object_get(e, "message")));
    }
}

/* A body without faults for a market resource: packed, decoded, shown. */
static void store_market(const struct server *srv, const struct resource *res, unsigned mask,
                         json_t *body)
{
    struct packbuf pb;
    packbuf_init(&pb);
    if (mask == F_PATCH) {
        FUZZ_ASSERT(record_pack_patch(res, body, &pb) == 0);
        packbuf_free(&pb);
        return;
    }
    const char *product = json_string_value(json_object_get(body, "product"));
    const struct product *p = product ? catalog_product(&srv->catalog, product) : NULL;
    const struct market *m = p ? &srv->catalog.markets[p->market] : &srv->catalog.markets[0];
    FUZZ_ASSERT(record_pack(res, body, m->id, &pb) == 0);
    char id[ID_MAX_LEN];
    id_of_event(res->prefix, 1767225600000LL, 1, m->code, id);
    json_t *api = record_api_from(res, id, pb.sb.data, pb.sb.size, &srv->catalog);
    FUZZ_ASSERT(api != NULL);
    json_decref(api);
    packbuf_free(&pb);
}

static void store_participant(unsigned mask, json_t *body)
{
    struct cmd c;
    cmd_init(&c);
    FUZZ_ASSERT(record_hash_args(&RESOURCE_PARTICIPANT, body, mask == F_PATCH ? F_PATCH : 0,
                                 &c) == 0);
    cmd_free(&c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct server *srv = fuzz_server();
    json_error_t je;
    json_t *body = json_loadb((const char *)data, size,
                              JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
    if (!body)
        return 0;
    static const unsigned MASKS[] = { F_CREATE, F_PATCH };
    size_t nres;
    const struct resource *const *all = resource_all(&nres);
    for (size_t r = 0; r <= nres; r++) {
        const struct resource *res = r < nres ? all[r] : NULL;    /* NULL: action bodies */
        for (size_t k = 0; k < sizeof MASKS / sizeof MASKS[0]; k++) {
            /* the validator may not change the body: each pass gets its own copy */
            json_t *copy = json_deep_copy(body);
            json_t *errors = json_array();
            FUZZ_ASSERT(copy != NULL && errors != NULL);
            int faults = validate_object(copy, res ? res->fields : NULL, res ? res->nfields : 0,
                                         MASKS[k], srv, errors);
            check_errors(errors, faults);
            FUZZ_ASSERT(json_equal(copy, body));
            if (faults == 0 && res == &RESOURCE_PARTICIPANT)
                store_participant(MASKS[k], copy);
            else if (faults == 0 && res)
                store_market(srv, res, MASKS[k], copy);
            json_decref(errors);
            json_decref(copy);
        }
    }
    json_decref(body);
    return 0;
}
