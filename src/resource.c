/* resource.c — the registry of resource descriptors and what reads a descriptor by itself:
 * fields by name, stored positions, enum codes and names.
 *
 * The descriptors are declared in the file of each resource (offers.c, needs.c,
 * allocations.c, participants.c); the generic operations over them are validate.c,
 * record.c, engine.c, schema.c and library.c. */
#include "impactd/resource.h"

#include <stdio.h>
#include <string.h>

static const struct resource *const ALL[] = {
    &RESOURCE_OFFER, &RESOURCE_NEED, &RESOURCE_ALLOCATION, &RESOURCE_PARTICIPANT,
};

static const struct enumtype *const ENUMS[] = {
    &ENUM_URGENCY, &ENUM_OFFER_STATUS, &ENUM_NEED_STATUS, &ENUM_ALLOCATION_STATUS,
    &ENUM_DELIVERY_SCOPE, &ENUM_TIER, &ENUM_ROLE, &ENUM_CLOSE_REASON, &ENUM_OVERDUE,
    &ENUM_LANGUAGE,
};

const struct resource *const *resource_all(size_t *n)
{
    *n = sizeof ALL / sizeof ALL[0];
    return ALL;
}

const struct enumtype *const *resource_enums(size_t *n)
{
    *n = sizeof ENUMS / sizeof ENUMS[0];
    return ENUMS;
}

const struct field *resource_field(const struct resource *res, const char *name)
{
    for (size_t i = 0; i < res->nfields; i++)
        if (strcmp(res->fields[i].name, name) == 0)
            return &res->fields[i];
    return NULL;
}

const struct action *resource_action(const struct resource *res, const char *name)
{
    for (size_t i = 0; i < res->nactions; i++)
        if (strcmp(res->actions[i].name, name) == 0)
            return &res->actions[i];
    return NULL;
}

unsigned resource_positions(const struct resource *res)
{
    unsigned n = 0;
    for (size_t i = 0; i < res->nfields; i++)
        if (res->fields[i].pos > n)
            n = res->fields[i].pos;
    return n;
}

int enum_code(const struct enumtype *e, const char *value)
{
    for (int i = 0; e && value && e->values[i]; i++)
        if (strcmp(e->values[i], value) == 0)
            return i;
    return -1;
}

const char *enum_name(const struct enumtype *e, long long code)
{
    for (long long i = 0; e && e->values[i]; i++)
        if (i == code)
            return e->values[i];
    return NULL;
}

void enum_list(const struct enumtype *e, char *out, size_t outlen)
{
    size_t k = 0;
    out[0] = '\0';
    for (size_t i = 0; e && e->values[i] && k < outlen; i++) {
        int n = snprintf(out + k, outlen - k, "%s%s", i ? ", " : "", e->values[i]);
        if (n < 0)
            break;
        k += (size_t)n;
    }
}
