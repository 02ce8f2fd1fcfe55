/* schema.c — writing the resource schemas of the OpenAPI document from the descriptors
 * (schema.h). Owns the mapping of field types to JSON Schema; the words around them are
 * src/openapi.json's. */
#include "impactd/schema.h"

#include <stdio.h>
#include <string.h>

#include "impactd/resource.h"
#include "openapi_gen.h"

#define REF "#/components/schemas/"
#define TIMESTAMP_PATTERN "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]+)?Z$"

static json_t *ref(const char *name)
{
    char target[128];
    snprintf(target, sizeof target, REF "%s", name);
    return json_pack("{s:s}", "$ref", target);
}

/* {"type": t} or {"type": [t, "null"]} */
static json_t *typed(const char *t, bool nullable)
{
    return nullable ? json_pack("{s:[s,s]}", "type", t, "null") : json_pack("{s:s}", "type", t);
}

static json_t *or_null(json_t *s, bool nullable)
{
    return nullable ? json_pack("{s:[o,{s:s}]}", "oneOf", s, "type", "null") : s;
}

static void bounds(json_t *s, const struct field *f, const char *lo, const char *hi)
{
    if (f->min == 0 && f->max == 0)
        return;
    json_object_set_new(s, lo, json_real(f->min));
    json_object_set_new(s, hi, json_real(f->max));
    /* whole numbers as integers */
    if (f->min == (double)(long long)f->min)
        json_object_set_new(s, lo, json_integer((json_int_t)f->min));
    if (f->max == (double)(long long)f->max)
        json_object_set_new(s, hi, json_integer((json_int_t)f->max));
}

static json_t *field_schema(const struct field *f, unsigned view)
{
    bool input = view != F_OUT;
    bool nullable = (f->flags & F_NULLABLE) || (view == F_CREATE && (f->flags & F_NULL_DEFAULT));
    const char *named = f->schema;
    json_t *s = NULL;
    switch (f->type) {
    case FT_ID:
    case FT_REF:
    case FT_PRODUCT:
    case FT_REGION:
    case FT_MARKET:
        s = named ? or_null(ref(named), nullable) : typed("string", nullable);
        break;
    case FT_CREATED:
        s = ref("Timestamp");
        break;
    case FT_TIME:
        if (input)
            s = or_null(ref("DateTime"), nullable);
        else if (nullable)
            s = json_pack("{s:[s,s], s:s, s:s}", "type", "string", "null", "format", "date-time",
                          "pattern", TIMESTAMP_PATTERN);
        else
            s = ref("Timestamp");
        break;
    case FT_ENUM:
        s = or_null(ref(f->enumtype->schema), nullable);
        break;
    case FT_INT:
        s = typed("integer", nullable);
        bounds(s, f, "minimum", "maximum");
        break;
    case FT_NUMBER:
        s = typed("number", nullable);
        bounds(s, f, "minimum", "maximum");
        break;
    case FT_BOOL:
        s = typed("boolean", nullable);
        break;
    case FT_STRING:
        s = typed("string", nullable);
        if (f->max)
            json_object_set_new(s, "maxLength", json_integer((json_int_t)f->max));
        if (f->min)
            json_object_set_new(s, "minLength", json_integer((json_int_t)f->min));
        break;
    case FT_JSON:
        if (f->sub && !named) {
            json_t *props = json_object(), *required = json_array();
            for (size_t i = 0; i < f->nsub; i++) {
                json_object_set_new(props, f->sub[i].name, field_schema(&f->sub[i], F_CREATE));
                if (f->sub[i].flags & F_REQUIRED)
                    json_array_append_new(required, json_string(f->sub[i].name));
            }
            s = json_pack("{s:s, s:o, s:o, s:b}", "type", "object", "properties", props,
                          "required", required, "additionalProperties", 0);
            s = or_null(s, nullable);
        } else {
            s = named ? or_null(ref(named), nullable) : typed("object", nullable);
        }
        break;
    case FT_STRING_ARRAY:
        s = typed("array", nullable);
        json_object_set_new(s, "items", named ? ref(named) : json_pack("{s:s}", "type", "string"));
        bounds(s, f, "minItems", "maxItems");
        break;
    }
    if (s && f->doc)
        json_object_set_new(s, "description", json_string(f->doc));
    if (s && input && f->type == FT_ENUM && f->dflt)
        json_object_set_new(s, "default", json_string(f->dflt));
    return s;
}

json_t *schema_of(const struct resource *res, unsigned view)
{
    json_t *props = json_object(), *required = json_array();
    for (size_t i = 0; i < res->nfields; i++) {
        const struct field *f = &res->fields[i];
        if (!(f->flags & view))
            continue;
        json_object_set_new(props, f->name, field_schema(f, view));
        if (view == F_OUT || (view == F_CREATE && (f->flags & F_REQUIRED)))
            json_array_append_new(required, json_string(f->name));
    }
    /* bodies: an unknown field is a 422; objects: every key is the table's */
    return json_pack("{s:s, s:o, s:o, s:b}", "type", "object", "properties", props, "required",
                     required, "additionalProperties", 0);
}

/* An action's body: its fields (all optional unless the action requires a reason), the
 * reason restricted to the action's own. */
static json_t *schema_of_action(const struct action *act)
{
    json_t *props = json_object(), *required = json_array();
    for (size_t i = 0; i < act->nbody; i++) {
        const struct field *f = &act->body[i];
        json_t *fs = field_schema(f, F_CREATE);
        if (!strcmp(f->name, "reason") && act->reasons) {
            json_t *values = json_array();
            for (size_t k = 0; act->reasons[k]; k++)
                json_array_append_new(values, json_string(act->reasons[k]));
            json_decref(fs);
            fs = json_pack("{s:s, s:o}", "type", "string", "enum", values);
            if (act->reason_required)
                json_array_append_new(required, json_string("reason"));
        }
        json_object_set_new(props, f->name, fs);
    }
    return json_pack("{s:s, s:o, s:o, s:b}", "type", "object", "properties", props, "required",
                     required, "additionalProperties", 0);
}

static const struct resource *resource_named(const char *name)
{
    size_t n;
    const struct resource *const *all = resource_all(&n);
    for (size_t i = 0; name && i < n; i++)
        if (!strcmp(all[i]->name, name))
            return all[i];
    return NULL;
}

static const struct enumtype *enum_named(const char *name)
{
    size_t n;
    const struct enumtype *const *all = resource_enums(&n);
    for (size_t i = 0; name && i < n; i++)
        if (!strcmp(all[i]->schema, name))
            return all[i];
    return NULL;
}

json_t *schema_document(char *err, size_t errlen)
{
    json_error_t je;
    json_t *doc = json_loadb(openapi_json, openapi_json_len, 0, &je);
    json_t *schemas = json_object_get(json_object_get(doc, "components"), "schemas");
    if (!schemas) {
        snprintf(err, errlen, "src/openapi.json: %s", doc ? "no components.schemas" : je.text);
        json_decref(doc);
        return NULL;
    }
    const char *name;
    json_t *s;
    json_object_foreach(schemas, name, s) {
        const char *rname = json_string_value(json_object_get(s, "x-impactd-resource"));
        const char *view = json_string_value(json_object_get(s, "x-impactd-view"));
        const char *ename = json_string_value(json_object_get(s, "x-impactd-enum"));
        const char *aname = json_string_value(json_object_get(s, "x-impactd-action"));
        if (aname) {
            const struct action *act = resource_action(&RESOURCE_ALLOCATION, aname);
            if (!act) {
                snprintf(err, errlen, "src/openapi.json: schema %s names action \"%s\": no "
                         "such allocation action", name, aname);
                json_decref(doc);
                return NULL;
            }
            json_t *gen = schema_of_action(act);
            json_object_update(s, gen);
            json_decref(gen);
            json_object_del(s, "x-impactd-action");
        }
        if (rname) {
            const struct resource *res = resource_named(rname);
            unsigned v = !view ? 0 : !strcmp(view, "object") ? F_OUT
                                   : !strcmp(view, "create") ? F_CREATE
                                   : !strcmp(view, "patch") ? F_PATCH : 0;
            if (!res || !v) {
                snprintf(err, errlen, "src/openapi.json: schema %s names resource \"%s\" view "
                         "\"%s\": no such descriptor", name, rname, view ? view : "");
                json_decref(doc);
                return NULL;
            }
            json_t *gen = schema_of(res, v);
            json_object_update(s, gen);
            json_decref(gen);
            json_object_del(s, "x-impactd-resource");
            json_object_del(s, "x-impactd-view");
        }
        if (ename) {
            const struct enumtype *e = enum_named(ename);
            if (!e) {
                snprintf(err, errlen, "src/openapi.json: schema %s names enum \"%s\": no such "
                         "enum type", name, ename);
                json_decref(doc);
                return NULL;
            }
            json_t *values = json_array();
            for (size_t i = 0; e->values[i]; i++)
                json_array_append_new(values, json_string(e->values[i]));
            json_object_set_new(s, "type", json_string("string"));
            json_object_set_new(s, "enum", values);
            if (e->doc && !json_object_get(s, "description"))
                json_object_set_new(s, "description", json_string(e->doc));
            json_object_del(s, "x-impactd-enum");
        }
    }
    return doc;
}
