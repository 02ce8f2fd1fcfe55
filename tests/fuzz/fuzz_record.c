/* fuzz_record.c — stored records (record.c): MessagePack as Redis hands it back, read as each
 * market resource's record and written as its API object.
 *
 * Contracts: whatever decodes is shown as valid JSON (record_to_api is NULL only when out of
 * memory); the field accessors stay within the record. */
#include "fuzz.h"

#include "impactd/buf.h"
#include "impactd/catalog.h"
#include "impactd/ids.h"
#include "impactd/record.h"
#include "impactd/resource.h"
#include "impactd/server.h"

static const struct resource *const MARKET_RESOURCES[] = {
    &RESOURCE_OFFER, &RESOURCE_NEED, &RESOURCE_ALLOCATION,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const struct catalog *cat = &fuzz_server()->catalog;
    struct record rec;
    int rc = record_decode(&rec, (const char *)data, size);
    for (size_t r = 0; rc == 0 && r < sizeof MARKET_RESOURCES / sizeof MARKET_RESOURCES[0]; r++) {
        const struct resource *res = MARKET_RESOURCES[r];
        for (size_t i = 0; i < res->nfields; i++) {
            const char *s;
            size_t len;
            long long v;
            if (record_str(&rec, &res->fields[i], &s, &len))
                FUZZ_ASSERT(s != NULL || len == 0);
            (void)record_int(&rec, &res->fields[i], &v);
        }
        char id[ID_MAX_LEN];
        id_of_event(res->prefix, 1767225600000LL, 7, cat->markets[r % cat->nmarkets].code, id);
        json_t *api = record_to_api(res, id, &rec, cat);
        FUZZ_ASSERT(api != NULL);
        json_decref(api);
    }
    record_release(&rec);
    /* the one-step form the list and event paths use */
    struct buf out;
    buf_init(&out);
    if (record_json_from(&RESOURCE_OFFER, "off_x", (const char *)data, size, cat, &out) == 0)
        FUZZ_ASSERT(out.failed || out.len > 0);
    buf_free(&out);
    return 0;
}
