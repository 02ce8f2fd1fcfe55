/* catalog_api.c — serving the catalogue under /v1/catalog (no token needed).
 *
 * The lists are static for the life of the process, so their cursor is a plain offset. */
#include <stdio.h>
#include <string.h>

#include "impactd/catalog.h"
#include "impactd/handlers.h"
#include "impactd/http.h"
#include "impactd/problem.h"
#include "impactd/server.h"

static const char *const CATEGORIES[] = { "raw_material", "packaging", "finished_good",
                                          "capacity", NULL };

/* Answers one page of `all`, keeping items for which keep() is true (all when NULL). */
static void reply_page(struct req *r, json_t *all, bool (*keep)(json_t *item, const char *arg),
                       const char *arg)
{
    int64_t limit, offset;
    if (http_page_params(r, &limit, &offset) != 0)
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
    json_t *body = json_pack("{s:o}", "items", items);
    if (next >= 0) {
        char cur[24];
        snprintf(cur, sizeof cur, "%lld", (long long)next);
        json_object_set_new(body, "next_cursor", json_string(cur));
    } else {
        json_object_set_new(body, "next_cursor", json_null());
    }
    http_set_header(r, "Cache-Control", "public, max-age=300");
    http_reply_json(r, 200, body);
}

static bool same_category(json_t *item, const char *category)
{
    return strcmp(json_string_value(json_object_get(item, "category")), category) == 0;
}

void catalog_list_products(struct req *r)
{
    const char *category = http_query(r, "category");
    if (category) {
        bool known = false;
        for (const char *const *c = CATEGORIES; *c; c++)
            known = known || strcmp(*c, category) == 0;
        if (!known) {
            json_t *errors = problem_errors_new();
            problem_errors_add(errors, "category",
                               "must be one of raw_material, packaging, finished_good, capacity");
            http_reply_invalid(r, errors);
            return;
        }
    }
    reply_page(r, r->srv->catalog.products_json, category ? same_category : NULL, category);
}

void catalog_list_regions(struct req *r)
{
    reply_page(r, r->srv->catalog.regions_json, NULL, NULL);
}

static void reply_item(struct req *r, json_t *item, const char *what)
{
    if (!item) {
        http_reply_problemf(r, 404, NULL, "no such %s in the catalogue", what);
        return;
    }
    http_set_header(r, "Cache-Control", "public, max-age=300");
    http_reply_json(r, 200, json_incref(item));
}

void catalog_get_product(struct req *r)
{
    const struct product *p = catalog_product(&r->srv->catalog, http_param(r, 0));
    reply_item(r, p ? p->json : NULL, "product");
}

void catalog_get_region(struct req *r)
{
    const struct region *g = catalog_region(&r->srv->catalog, http_param(r, 0));
    reply_item(r, g ? g->json : NULL, "region");
}
