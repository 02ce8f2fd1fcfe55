/* checks.c — field checks that need the catalogue or the clock (see validate.h). */
#include "impactd/checks.h"

#include "impactd/catalog.h"
#include "impactd/server.h"
#include "impactd/timeutil.h"

const char *check_region(const json_t *v, const void *ctx)
{
    const struct server *srv = ctx;
    return catalog_region(&srv->catalog, json_string_value(v))
               ? NULL : "is not a region code of the catalogue (see /v1/catalog/regions)";
}

const char *check_regions(const json_t *v, const void *ctx)
{
    size_t i;
    json_t *item;
    json_array_foreach(v, i, item) {
        if (check_region(item, ctx))
            return "must hold only region codes of the catalogue (see /v1/catalog/regions)";
    }
    return NULL;
}

const char *check_product(const json_t *v, const void *ctx)
{
    const struct server *srv = ctx;
    return catalog_product(&srv->catalog, json_string_value(v))
               ? NULL : "is not a product of the catalogue (see /v1/catalog/products)";
}

const char *check_future(const json_t *v, const void *ctx)
{
    (void)ctx;
    int64_t ms;
    if (time_parse_rfc3339(json_string_value(v), &ms) != 0)
        return "must be an RFC 3339 date-time";
    return ms > time_now_ms() ? NULL : "must be in the future";
}
