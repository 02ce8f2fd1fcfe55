/* catalog_api.c — serving the catalogue under /v1/catalog (no token needed).
 *
 * The lists are static for the life of the process, so their cursor is a plain offset. */
#include <stdio.h>
#include <string.h>

#include "impactd/calls.h"
#include "impactd/catalog.h"
#include "impactd/handlers.h"
#include "impactd/reply.h"
#include "impactd/request.h"
#include "impactd/validate.h"
#include "impactd/problem.h"
#include "impactd/server.h"

static const char *const CATEGORIES[] = { "raw_material", "packaging", "finished_good",
                                          "capacity", NULL };

/* Answers one page of `all`, keeping items for which keep() is true (all when NULL). */
static void catalog_page(struct req *r, json_t *all, bool (*keep)(json_t *item, const char *arg),
                       const char *arg)
{
    int64_t limit, offset;
    json_t *errors = problem_errors_new();
    if (validate_query_int(req_query(r, "limit"), 1, 500, 50, &limit) != 0)
        problem_errors_add(errors, "limit", "must be an integer between 1 and 500");
    if (validate_query_int(req_query(r, "cursor"), 0, 1000000000, 0, &offset) != 0)
        problem_errors_add(errors, "cursor", "is not a cursor this server issued");
    if (reply_if_invalid(r, errors))
        return;
    json_t *items = json_array();
    size_t seen = 0, i;
    int64_t next = -1;
    json_t *item;
    json_array_foreach(all, i, item) {
        if (keep && !keep(item, arg))
            continue;
        if ((int64_t)seen >= offset) {
            if ((int64_t)json_array_size(items) == limit) {
                next = (int64_t)seen;
                break;
            }
            json_array_append(items, item);
        }
        seen++;
    }
    char cur[24];
    snprintf(cur, sizeof cur, "%lld", (long long)next);
    req_set_header(r, "Cache-Control", "public, max-age=300");
    reply_page(r, items, next >= 0 ? cur : NULL);
}

static bool same_category(json_t *item, const char *category)
{
    return strcmp(json_string_value(json_object_get(item, "category")), category) == 0;
}

void catalog_list_products(struct req *r)
{
    const char *category = req_query(r, "category");
    if (category) {
        bool known = false;
        for (const char *const *c = CATEGORIES; *c; c++)
            known = known || strcmp(*c, category) == 0;
        if (!known) {
            json_t *errors = problem_errors_new();
            problem_errors_add(errors, "category",
                               "must be one of raw_material, packaging, finished_good, capacity");
            reply_invalid(r, errors);
            return;
        }
    }
    catalog_page(r, r->srv->catalog.products_json, category ? same_category : NULL, category);
}

void catalog_list_regions(struct req *r)
{
    catalog_page(r, r->srv->catalog.regions_json, NULL, NULL);
}

static void reply_item(struct req *r, json_t *item, const char *what)
{
    if (!item) {
        reply_problemf(r, 404, NULL, "no such %s in the catalogue", what);
        return;
    }
    req_set_header(r, "Cache-Control", "public, max-age=300");
    reply_json(r, 200, json_incref(item));
}

void catalog_get_product(struct req *r)
{
    const struct product *p = catalog_product(&r->srv->catalog, req_param(r, 0));
    reply_item(r, p ? p->json : NULL, "product");
}

void catalog_get_region(struct req *r)
{
    const struct region *g = catalog_region(&r->srv->catalog, req_param(r, 0));
    reply_item(r, g ? g->json : NULL, "region");
}
