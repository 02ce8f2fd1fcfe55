/* records.h — offers, needs and allocations as the market scripts store them (JSON records,
 * times in Unix ms) and as the API serves them; who may see which; reading one and listing
 * many across markets. */
#ifndef IMPACTD_RECORDS_H
#define IMPACTD_RECORDS_H

#include <jansson.h>
#include <stdbool.h>

struct req;
struct principal;

enum record_kind { RECORD_OFFER = 0, RECORD_NEED, RECORD_ALLOC };

/* A new API object for a record (times formatted, scope renamed, nulls filled). */
json_t *record_to_api(enum record_kind kind, const json_t *rec);
/* A new array of API objects for an array of records. */
json_t *record_array_to_api(enum record_kind kind, const json_t *recs);
/* The id prefix ("off_", "ned_", "alc_") and the records hash suffix of a kind. */
const char *record_prefix(enum record_kind kind);
const char *record_name(enum record_kind kind);
/* False only for a ministry token limited to regions that do not include code. */
bool principal_sees_region(const struct principal *who, const char *code);
/* Owner (either party for allocations), admin, or ministry within its regions. */
bool record_visible(const struct principal *who, enum record_kind kind, const json_t *rec);

/* GET /v1/<kind>s/{id}: answers 200 with the object, or 404. */
void record_get(struct req *r, enum record_kind kind);
/* GET /v1/<kind>s: answers one page, oldest first, across markets. Filters come from the
 * query string; who sees what from the caller's role. */
void record_list(struct req *r, enum record_kind kind);

#endif
