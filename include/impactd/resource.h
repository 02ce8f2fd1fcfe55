/* resource.h — one descriptor per resource: each field declared once.
 *
 * A resource (offer, need, allocation, participant) is a table of fields. Each row says the
 * field's API name, its type, where the stored record keeps it (its position in the record
 * the Lua functions read and write; 0 for a value derived from the id), whether a create or a
 * PATCH body may set it, its bounds and check, the role it plays for visibility and list
 * filters, and its OpenAPI text. Every use reads the table:
 *   validate.c   bodies (create, PATCH)          record.c   stored record <-> API object
 *   resource.c   filters, visibility, create/patch/get/list over any market resource
 *   schema.c     the OpenAPI schemas              library.c  the positions the Lua code uses
 * Adding a field is one row here (and, where the Lua code must act on it, its use there).
 * The tables themselves live in the file of each resource (offers.c, needs.c, ...). */
#ifndef IMPACTD_RESOURCE_H
#define IMPACTD_RESOURCE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

enum ftype {
    FT_ID,          /* the object's own id (derived, never stored) */
    FT_CREATED,     /* when it was created: derived from its id */
    FT_MARKET,      /* its market: derived from its id */
    FT_REF,         /* the id of another object; `ref` is its prefix */
    FT_PRODUCT,     /* a catalogue product id; stored nil when it is the market's own */
    FT_REGION,      /* a catalogue region code */
    FT_STRING,      /* text; min/max bound its length in characters */
    FT_INT,         /* an integer; min/max bound it */
    FT_NUMBER,      /* a number; min/max bound it */
    FT_BOOL,
    FT_ENUM,        /* one of enumtype->values; stored as its index */
    FT_TIME,        /* an RFC 3339 date-time in the API; Unix ms stored */
    FT_STRING_ARRAY,/* an array of strings; min/max bound the item count */
    FT_JSON,        /* a JSON object the daemon makes (never a client's): stored as its
                     * compact text, written out as it is when it parses, else null */
};

enum fflag {
    F_OUT = 1u << 0,        /* part of the API object */
    F_CREATE = 1u << 1,     /* a create body may set it */
    F_REQUIRED = 1u << 2,   /* ... and must */
    F_PATCH = 1u << 3,      /* a PATCH body may set it */
    F_NULLABLE = 1u << 4,   /* may be absent: null in the object; null accepted (PATCH: clears) */
    F_NULL_DEFAULT = 1u << 5, /* null in a create body is taken as "not given" */
    F_OWNER = 1u << 6,      /* a participant the record belongs to (visibility) */
    F_SCOPE = 1u << 7,      /* a region through which a regional ministry token sees it */
    F_FILTER = 1u << 8,     /* a list query parameter of the same name filters on it */
    F_SECRET = 1u << 9,     /* stored, never shown (webhook secrets) */
};

/* A custom check: returns NULL when fine, else a message (static string). ctx: the server. */
typedef const char *(*field_check)(const json_t *value, const void *ctx);

struct enumtype {
    const char *schema;             /* OpenAPI schema name, e.g. "Urgency" */
    const char *lua;                /* its table of codes in the function library: "URGENCY" */
    const char *const *values;      /* NULL-terminated; a value's index is its stored code */
    const char *doc;
};

struct field {
    const char *name;               /* API name */
    unsigned pos;                   /* 1-based position in the stored record; 0: derived */
    enum ftype type;
    unsigned flags;
    double min, max;                /* both 0: unbounded */
    const struct enumtype *enumtype;/* FT_ENUM */
    const char *dflt;               /* FT_ENUM: the value a create body that omits it gets */
    field_check check;              /* run on present, non-null values after the type check */
    const struct field *sub;        /* FT_JSON from a client: its members' table (F_CREATE),
                                     * checked as a whole object; faults name "<f>.<member>" */
    size_t nsub;
    const char *ref;                /* FT_REF, FT_ID: the id prefix, e.g. "prt_" */
    const char *schema;             /* OpenAPI: a named schema to $ref instead of one made here */
    const char *doc;                /* OpenAPI description */
};

/* An action on a record (allocations: confirm, decline, ...): who may take it, from which
 * statuses, to which, what its body may carry; its effects are the Lua code's
 * (src/scripts/allocations.lua), named here so that the library's prelude carries them. */
enum action_effect {
    ACT_PLAIN = 0,
    ACT_RELEASE = 1u << 0,          /* the quantity goes back to the need, matched again */
    ACT_RECEIVE = 1u << 1,          /* the need counts it as received; a shortfall goes back */
    ACT_CANCEL = 1u << 2,           /* the quantity goes back to the offer, off the need */
    ACT_CLOSE = 1u << 3,            /* a last step: closed_at, no more overdue watch */
    ACT_DUE_SHIP = 1u << 4,         /* overdue unless shipped within ship_within[urgency] */
    ACT_DUE_RECEIVE = 1u << 5,      /* overdue unless received within receive_within */
};

struct action {
    const char *name;               /* "confirm" */
    const char *side;               /* "offer" | "need" (its participant acts) | "platform" */
    const char *const *from;        /* statuses it may start from, NULL-terminated */
    const char *to;
    unsigned effects;               /* enum action_effect */
    const char *stamp;              /* the FT_TIME field set to the time it is taken, or NULL */
    /* The body: fields (positions in the record they set), validated with F_CREATE. A
     * "reason" field takes only the values of `reasons` (NULL-terminated), and is required
     * when reason_required. No body fields: only an empty object is accepted. */
    const struct field *body;
    size_t nbody;
    const char *const *reasons;
    bool reason_required;
};

struct resource {
    const char *name;               /* "offer" */
    const char *plural;             /* "offers" (paths, list filters' messages) */
    const char *prefix;             /* id prefix, "off_" */
    const char *lua;                /* its table of positions in the function library: "O" */
    const char *schema;             /* OpenAPI schema of the object: "Offer" */
    const struct field *fields;
    size_t nfields;
    const struct enumtype *statuses;    /* its status field's values, or NULL */
    const struct action *actions;
    size_t nactions;
};

#define FIELDS(table) table, sizeof table / sizeof table[0]

/* The resources and enum types the function library and the OpenAPI document know. */
extern const struct resource RESOURCE_OFFER, RESOURCE_NEED, RESOURCE_ALLOCATION,
    RESOURCE_PARTICIPANT;
extern const struct enumtype ENUM_URGENCY, ENUM_OFFER_STATUS, ENUM_NEED_STATUS,
    ENUM_ALLOCATION_STATUS, ENUM_DELIVERY_SCOPE, ENUM_TIER, ENUM_ROLE, ENUM_CLOSE_REASON,
    ENUM_OVERDUE, ENUM_LANGUAGE;
const struct resource *const *resource_all(size_t *n);
const struct enumtype *const *resource_enums(size_t *n);

const struct field *resource_field(const struct resource *res, const char *name);
const struct action *resource_action(const struct resource *res, const char *name);
/* The number of stored positions (the largest pos). */
unsigned resource_positions(const struct resource *res);
/* The index of value among enumtype's values, or -1. */
int enum_code(const struct enumtype *e, const char *value);
const char *enum_name(const struct enumtype *e, long long code);   /* NULL when out of range */
/* "a, b, c" into out. */
void enum_list(const struct enumtype *e, char *out, size_t outlen);

#endif
