/* record.h — stored records: MessagePack arrays positioned by a resource's fields.
 *
 * A record is what the market functions keep in Redis and put in their events: an array
 * whose element i (1-based, as in Lua) is the field with `pos` i; nil or false where a field
 * is absent; enums as their index, times as Unix ms, a product that is the market's own as
 * nil. The id is not in the record (it is the record's key, or its event's position). This
 * module turns bodies into records and records into API objects, by descriptor; the Lua
 * code reads the same positions (library.c writes them into the library). */
#ifndef IMPACTD_RECORD_H
#define IMPACTD_RECORD_H

#include <jansson.h>
#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>

#include "resource.h"

struct catalog;

struct record {
    msgpack_unpacked up;
    const msgpack_object *v;        /* the elements, v[pos - 1] */
    size_t n;
};

/* 0, or -1 when data is not a record (rec is then empty but must still be released). */
int record_decode(struct record *rec, const char *data, size_t len)
    __attribute__((warn_unused_result));
void record_release(struct record *rec);

/* A field's stored value; false when absent (nil, false, or beyond the record's end). */
bool record_str(const struct record *rec, const struct field *f, const char **s, size_t *len);
bool record_int(const struct record *rec, const struct field *f, long long *v);

/* The API object of a record as JSON text, appended to out (every F_OUT field, in table
 * order: absent values null). */
struct buf;
void record_json(const struct resource *res, const char *id, const struct record *rec,
                 const struct catalog *cat, struct buf *out);
/* Decodes and writes in one step; -1 (nothing written) when data is not a record. */
int record_json_from(const struct resource *res, const char *id, const char *data, size_t len,
                     const struct catalog *cat, struct buf *out);
/* The same as a jansson object (parsed from record_json); NULL when out of memory. */
json_t *record_to_api(const struct resource *res, const char *id, const struct record *rec,
                      const struct catalog *cat);
/* Decodes and converts in one step; NULL when data is not a record. */
json_t *record_api_from(const struct resource *res, const char *id, const char *data,
                        size_t len, const struct catalog *cat);

/* A growing MessagePack buffer. */
struct packbuf {
    msgpack_sbuffer sb;
    msgpack_packer pk;
};
void packbuf_init(struct packbuf *b);
void packbuf_free(struct packbuf *b);

/* Packs every stored position from `values` (an object of API names and API values, e.g.
 * a validated body completed by the caller); absent keys pack nil. market_product: the
 * product FT_PRODUCT fields leave out. Returns -1 on a value it cannot convert. */
int record_pack(const struct resource *res, const json_t *values, const char *market_product,
                struct packbuf *out) __attribute__((warn_unused_result));
/* Packs a PATCH body as [pos, value, pos, value, ...] (false for a field set to null), for
 * the F_PATCH fields present. */
int record_pack_patch(const struct resource *res, const json_t *body, struct packbuf *out)
    __attribute__((warn_unused_result));
/* The same for any table of fields (an action's body: each field's pos is the record
 * position it sets), for the fields with a flag of mask. */
int record_pack_set(const struct field *fields, size_t nfields, unsigned mask,
                    const json_t *body, struct packbuf *out) __attribute__((warn_unused_result));

/* Resources kept as Redis hashes (participants): each stored field (pos != 0) is the hash
 * field of the same name, as text — strings as they are, numbers and arrays as JSON, times
 * as Unix ms, enums by name. */
struct redisReply;
/* The API object from an HGETALL reply; NULL when the hash is empty. */
json_t *record_hash_to_api(const struct resource *res, const struct redisReply *hgetall);
/* Appends field, value pairs for the stored fields present in values (API form): with mask
 * 0 every one but nulls (a new record), else those whose flags include mask, a null as ""
 * (the field is deleted: participant_patch). Returns -1 on a value it cannot convert. */
struct cmd;
int record_hash_args(const struct resource *res, const json_t *values, unsigned mask,
                     struct cmd *c) __attribute__((warn_unused_result));

/* The time an id of impactd's markets was created (its hex time after the prefix), or -1. */
long long record_id_ms(const char *id, const char *prefix);

#endif
