/* schema.h — the OpenAPI 3.1 document impactd serves at /openapi.json.
 *
 * src/openapi.json (embedded at build time) holds everything written by hand: paths,
 * responses, descriptions and examples. Its schemas of resources are left for the
 * descriptors to fill: a schema marked "x-impactd-resource": "<name>" with
 * "x-impactd-view": "object" | "create" | "patch" gets its properties, required list and
 * additionalProperties from that resource's field table (resource.h), and one marked
 * "x-impactd-enum": "<schema name>" gets its values from the enum type of that name. So a
 * field added to a table is in the document too. */
#ifndef IMPACTD_SCHEMA_H
#define IMPACTD_SCHEMA_H

#include <jansson.h>
#include <stddef.h>

/* The document, with the resource schemas written in. NULL (err says why) when the template
 * names a resource, view or enum that does not exist. The caller owns the result. */
json_t *schema_document(char *err, size_t errlen);

/* The schema of one view (F_OUT, F_CREATE or F_PATCH) of a resource's fields. */
struct resource;
json_t *schema_of(const struct resource *res, unsigned view);

#endif
