/* record.c — stored records (MessagePack arrays) to API objects and back, by descriptor.
 *
 * Owns the conversions of record.h: how each field type is stored and shown. Knows nothing
 * of where records live (market.c, the Lua functions) nor of who may see them (resource.c). */
#include "impactd/record.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "impactd/buf.h"
#include "impactd/catalog.h"
#include "impactd/json_util.h"
#include "impactd/store.h"
#include "impactd/timeutil.h"

/* ---- reading ---- */

/* msgpack-c allocates a container's elements when it reads the container's header, before
 * it reads them: six bytes that claim 2^32 elements cost gigabytes. So the first object of
 * data is walked first, and refused when a count promises more objects (with those still
 * promised) than bytes are left, or when it ends early. The formats are the MessagePack
 * specification's: for each byte 0xc4-0xdf, the size of the length or count that follows,
 * the bytes after that, and whether the value counts bytes, array or map elements. */
enum { MP_FIXED, MP_BYTES, MP_ARRAY, MP_MAP };
static const struct { unsigned char lenbytes, extra, kind; } MP_FORMATS[0xe0 - 0xc4] = {
    { 1, 0, MP_BYTES }, { 2, 0, MP_BYTES }, { 4, 0, MP_BYTES },         /* bin 8/16/32 */
    { 1, 1, MP_BYTES }, { 2, 1, MP_BYTES }, { 4, 1, MP_BYTES },         /* ext 8/16/32 */
    { 0, 4, MP_FIXED }, { 0, 8, MP_FIXED },                             /* float 32/64 */
    { 0, 1, MP_FIXED }, { 0, 2, MP_FIXED }, { 0, 4, MP_FIXED }, { 0, 8, MP_FIXED }, /* uint */
    { 0, 1, MP_FIXED }, { 0, 2, MP_FIXED }, { 0, 4, MP_FIXED }, { 0, 8, MP_FIXED }, /* int */
    { 0, 2, MP_FIXED }, { 0, 3, MP_FIXED }, { 0, 5, MP_FIXED }, { 0, 9, MP_FIXED },
    { 0, 17, MP_FIXED },                                                /* fixext 1-16 */
    { 1, 0, MP_BYTES }, { 2, 0, MP_BYTES }, { 4, 0, MP_BYTES },         /* str 8/16/32 */
    { 2, 0, MP_ARRAY }, { 4, 0, MP_ARRAY }, { 2, 0, MP_MAP }, { 4, 0, MP_MAP },
};

static bool counts_plausible(const unsigned char *p, size_t len)
{
    size_t i = 0;
    uint64_t pending = 1;               /* objects still to read */
    while (pending > 0) {
        if (i >= len)
            return false;
        unsigned c = p[i++];
        pending--;
        uint64_t n = 0;
        unsigned kind = MP_FIXED;
        if (c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3)
            continue;                   /* fixint, nil, booleans: the byte itself */
        if (c == 0xc1)
            return false;               /* never used */
        if (c < 0x90) {
            n = c & 0x0f, kind = MP_MAP;
        } else if (c < 0xa0) {
            n = c & 0x0f, kind = MP_ARRAY;
        } else if (c < 0xc0) {
            n = c & 0x1f, kind = MP_BYTES;
        } else {
            unsigned lb = MP_FORMATS[c - 0xc4].lenbytes;
            if (len - i < lb)
                return false;
            for (unsigned k = 0; k < lb; k++)
                n = n << 8 | p[i++];
            n += MP_FORMATS[c - 0xc4].extra;
            kind = MP_FORMATS[c - 0xc4].kind;
        }
        if (kind == MP_FIXED || kind == MP_BYTES) {
            if (n > len - i)
                return false;
            i += (size_t)n;
        } else {
            pending += kind == MP_MAP ? 2 * n : n;
            if (pending > len - i)
                return false;
        }
    }
    return true;
}

int record_decode(struct record *rec, const char *data, size_t len)
{
    msgpack_unpacked_init(&rec->up);
    rec->v = NULL;
    rec->n = 0;
    size_t off = 0;
    if (!data || !counts_plausible((const unsigned char *)data, len) ||
        msgpack_unpack_next(&rec->up, data, len, &off) != MSGPACK_UNPACK_SUCCESS ||
        rec->up.data.type != MSGPACK_OBJECT_ARRAY)
        return -1;
    rec->v = rec->up.data.via.array.ptr;
    rec->n = rec->up.data.via.array.size;
    return 0;
}

void record_release(struct record *rec)
{
    msgpack_unpacked_destroy(&rec->up);
    rec->v = NULL;
    rec->n = 0;
}

static const msgpack_object *element(const struct record *rec, const struct field *f)
{
    if (f->pos == 0 || f->pos > rec->n)
        return NULL;
    const msgpack_object *o = &rec->v[f->pos - 1];
    if (o->type == MSGPACK_OBJECT_NIL ||
        (o->type == MSGPACK_OBJECT_BOOLEAN && !o->via.boolean && f->type != FT_BOOL))
        return NULL;
    return o;
}

bool record_str(const struct record *rec, const struct field *f, const char **s, size_t *len)
{
    const msgpack_object *o = element(rec, f);
    if (!o || o->type != MSGPACK_OBJECT_STR)
        return false;
    *s = o->via.str.ptr;
    if (len)
        *len = o->via.str.size;
    return true;
}

static bool object_int(const msgpack_object *o, long long *v)
{
    switch (o->type) {
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        *v = (long long)o->via.u64;
        return true;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        *v = (long long)o->via.i64;
        return true;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        /* only a float that a long long holds (NaN and out-of-range ones are not numbers
         * of ours: converting them is undefined behaviour) */
        if (!(o->via.f64 >= -9223372036854775808.0 && o->via.f64 < 9223372036854775808.0))
            return false;
        *v = (long long)o->via.f64;
        return true;
    default:
        return false;
    }
}

bool record_int(const struct record *rec, const struct field *f, long long *v)
{
    const msgpack_object *o = element(rec, f);
    return o && object_int(o, v);
}

long long record_id_ms(const char *id, const char *prefix)
{
    size_t plen = strlen(prefix);
    if (strncmp(id, prefix, plen) != 0 || strlen(id) < plen + 11)
        return -1;
    char hex[12];
    memcpy(hex, id + plen, 11);
    hex[11] = '\0';
    char *end;
    long long ms = strtoll(hex, &end, 16);
    return *end ? -1 : ms;
}

static void json_time(struct buf *out, long long ms)
{
    buf_addc(out, '"');
    buf_add_time(out, ms);
    buf_addc(out, '"');
}

/* One stored value as JSON text. */
static void stored_json(struct buf *out, const struct field *f, const msgpack_object *o,
                        const char *market_product)
{
    long long v;
    switch (f->type) {
    case FT_PRODUCT:
        if (!o) {
            if (market_product)
                buf_add_json_string(out, market_product, strlen(market_product));
            else
                buf_adds(out, "null");
            return;
        }
        /* fall through */
    case FT_REF:
    case FT_REGION:
    case FT_STRING:
        if (o && o->type == MSGPACK_OBJECT_STR)
            buf_add_json_string(out, o->via.str.ptr, o->via.str.size);
        else
            buf_adds(out, "null");
        return;
    case FT_INT:
        if (o && object_int(o, &v))
            buf_add_int(out, v);
        else
            buf_adds(out, "null");
        return;
    case FT_NUMBER:
        if (o && (o->type == MSGPACK_OBJECT_FLOAT64 || o->type == MSGPACK_OBJECT_FLOAT32)) {
            char num[40];
            int n = snprintf(num, sizeof num, "%.15g", o->via.f64);
            /* JSON has no inf/nan; an integral double prints without a point, which is fine */
            buf_add(out, num, n > 0 && (size_t)n < sizeof num ? (size_t)n : 0);
        } else if (o && object_int(o, &v)) {
            buf_add_int(out, v);
        } else {
            buf_adds(out, "null");
        }
        return;
    case FT_BOOL:
        buf_adds(out, o && o->type == MSGPACK_OBJECT_BOOLEAN && o->via.boolean ? "true" : "false");
        return;
    case FT_ENUM: {
        const char *name = o && object_int(o, &v) ? enum_name(f->enumtype, v) : NULL;
        if (name)
            buf_add_json_string(out, name, strlen(name));
        else
            buf_adds(out, "null");
        return;
    }
    case FT_TIME:
        if (o && object_int(o, &v))
            json_time(out, v);
        else
            buf_adds(out, "null");
        return;
    case FT_JSON: {
        /* the daemon wrote it, but what Redis holds is checked before it becomes JSON out */
        json_t *j = o && o->type == MSGPACK_OBJECT_STR
                        ? json_loadb(o->via.str.ptr, o->via.str.size, JSON_REJECT_DUPLICATES, NULL)
                        : NULL;
        char *text = json_is_object(j) ? json_dumps(j, JSON_COMPACT) : NULL;
        buf_adds(out, text ? text : "null");
        free(text);
        json_decref(j);
        return;
    }
    case FT_STRING_ARRAY:
        if (!o || o->type != MSGPACK_OBJECT_ARRAY) {
            buf_adds(out, "null");
            return;
        }
        buf_addc(out, '[');
        for (uint32_t i = 0; i < o->via.array.size; i++) {
            const msgpack_object *e = &o->via.array.ptr[i];
            if (i)
                buf_addc(out, ',');
            if (e->type == MSGPACK_OBJECT_STR)
                buf_add_json_string(out, e->via.str.ptr, e->via.str.size);
            else
                buf_adds(out, "null");
        }
        buf_addc(out, ']');
        return;
    case FT_ID:
    case FT_CREATED:
    case FT_MARKET:
        break;
    }
    buf_adds(out, "null");
}

void record_json(const struct resource *res, const char *id, const struct record *rec,
                 const struct catalog *cat, struct buf *out)
{
    const struct market *m = cat ? catalog_market_of_id(cat, id) : NULL;
    const char *market = m ? m->id : NULL;
    bool first = true;
    buf_addc(out, '{');
    for (size_t i = 0; i < res->nfields; i++) {
        const struct field *f = &res->fields[i];
        if (!(f->flags & F_OUT))
            continue;
        if (!first)
            buf_addc(out, ',');
        first = false;
        buf_addc(out, '"');
        buf_adds(out, f->name);
        buf_add(out, "\":", 2);
        switch (f->type) {
        case FT_ID:
            buf_add_json_string(out, id, strlen(id));
            break;
        case FT_CREATED: {
            long long ms = record_id_ms(id, res->prefix);
            if (ms >= 0)
                json_time(out, ms);
            else
                buf_adds(out, "null");
            break;
        }
        case FT_MARKET:
            if (market)
                buf_add_json_string(out, market, strlen(market));
            else
                buf_adds(out, "null");
            break;
        default:
            stored_json(out, f, element(rec, f), market);
            break;
        }
    }
    buf_addc(out, '}');
}

int record_json_from(const struct resource *res, const char *id, const char *data, size_t len,
                     const struct catalog *cat, struct buf *out)
{
    struct record rec;
    int rc = record_decode(&rec, data, len);
    if (rc == 0)
        record_json(res, id, &rec, cat, out);
    record_release(&rec);
    return rc;
}

json_t *record_to_api(const struct resource *res, const char *id, const struct record *rec,
                      const struct catalog *cat)
{
    struct buf out;
    buf_init(&out);
    record_json(res, id, rec, cat, &out);
    json_t *obj = out.failed ? NULL : json_loadb(out.data, out.len, JSON_ALLOW_NUL, NULL);
    buf_free(&out);
    return obj;
}

json_t *record_api_from(const struct resource *res, const char *id, const char *data,
                        size_t len, const struct catalog *cat)
{
    struct record rec;
    json_t *obj = record_decode(&rec, data, len) == 0 ? record_to_api(res, id, &rec, cat) : NULL;
    record_release(&rec);
    return obj;
}

/* ---- writing ---- */

void packbuf_init(struct packbuf *b)
{
    msgpack_sbuffer_init(&b->sb);
    msgpack_packer_init(&b->pk, &b->sb, msgpack_sbuffer_write);
}

void packbuf_free(struct packbuf *b) { msgpack_sbuffer_destroy(&b->sb); }

static int pack_string(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    return msgpack_pack_str(pk, n) || msgpack_pack_str_body(pk, s, n) ? -1 : 0;
}

/* One value, API form → stored form. */
static int pack_value(msgpack_packer *pk, const struct field *f, const json_t *v,
                      const char *market_product)
{
    if (!v || json_is_null(v))
        return msgpack_pack_nil(pk);
    switch (f->type) {
    case FT_PRODUCT:
        if (json_is_string(v) && market_product && !strcmp(json_string_value(v), market_product))
            return msgpack_pack_nil(pk);
        /* fall through */
    case FT_REF:
    case FT_REGION:
    case FT_STRING:
        return json_is_string(v) ? pack_string(pk, json_string_value(v)) : -1;
    case FT_INT:
        return json_is_integer(v) ? msgpack_pack_int64(pk, json_integer_value(v)) : -1;
    case FT_NUMBER:
        return json_is_number(v) ? msgpack_pack_double(pk, json_number_value(v)) : -1;
    case FT_BOOL:
        return json_is_true(v) ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
    case FT_ENUM: {
        int code = json_is_string(v) ? enum_code(f->enumtype, json_string_value(v)) : -1;
        return code < 0 ? -1 : msgpack_pack_int(pk, code);
    }
    case FT_TIME: {
        int64_t ms;
        if (json_is_integer(v))
            return msgpack_pack_int64(pk, json_integer_value(v));
        if (!json_is_string(v) || time_parse_rfc3339(json_string_value(v), &ms) != 0)
            return -1;
        return msgpack_pack_int64(pk, ms);
    }
    case FT_JSON: {
        char *text = json_is_object(v) ? json_dumps(v, JSON_COMPACT) : NULL;
        int rc = text ? pack_string(pk, text) : -1;
        free(text);
        return rc;
    }
    case FT_STRING_ARRAY: {
        if (!json_is_array(v) || msgpack_pack_array(pk, json_array_size(v)))
            return -1;
        size_t i;
        json_t *item;
        json_array_foreach(v, i, item) {
            if (!json_is_string(item) || pack_string(pk, json_string_value(item)))
                return -1;
        }
        return 0;
    }
    case FT_ID:
    case FT_CREATED:
    case FT_MARKET:
        break;
    }
    return -1;
}

static const struct field *field_at(const struct resource *res, unsigned pos)
{
    for (size_t i = 0; i < res->nfields; i++)
        if (res->fields[i].pos == pos)
            return &res->fields[i];
    return NULL;
}

int record_pack(const struct resource *res, const json_t *values, const char *market_product,
                struct packbuf *out)
{
    unsigned n = resource_positions(res);
    if (msgpack_pack_array(&out->pk, n))
        return -1;
    for (unsigned pos = 1; pos <= n; pos++) {
        const struct field *f = field_at(res, pos);
        int rc = f ? pack_value(&out->pk, f, json_object_get(values, f->name), market_product)
                   : msgpack_pack_nil(&out->pk);
        if (rc)
            return -1;
    }
    return 0;
}

int record_pack_set(const struct field *fields, size_t nfields, unsigned mask,
                    const json_t *body, struct packbuf *out)
{
    size_t count = 0;
    for (size_t i = 0; i < nfields; i++)
        if ((fields[i].flags & mask) && json_object_get(body, fields[i].name))
            count++;
    if (msgpack_pack_array(&out->pk, 2 * count))
        return -1;
    for (size_t i = 0; i < nfields; i++) {
        const struct field *f = &fields[i];
        const json_t *v = json_object_get(body, f->name);
        if (!(f->flags & mask) || !v)
            continue;
        /* false, not nil, for a field cleared: a Lua array with holes has no length */
        if (msgpack_pack_uint32(&out->pk, f->pos) ||
            (json_is_null(v) ? msgpack_pack_false(&out->pk) : pack_value(&out->pk, f, v, NULL)))
            return -1;
    }
    return 0;
}

int record_pack_patch(const struct resource *res, const json_t *body, struct packbuf *out)
{
    return record_pack_set(res->fields, res->nfields, F_PATCH, body, out);
}

/* ---- records kept as hashes ---- */

static json_t *text_to_json(const struct field *f, const char *text)
{
    if (!text || !*text)
        return json_null();
    long long ms;
    switch (f->type) {
    case FT_NUMBER:
    case FT_INT:
    case FT_BOOL:
    case FT_STRING_ARRAY:
    case FT_JSON: {
        json_t *v = json_loads(text, JSON_DECODE_ANY, NULL);
        return v ? v : json_null();
    }
    case FT_TIME: {
        if (json_parse_ll(text, &ms) != 0)
            return json_null();
        char buf[RFC3339_LEN];
        time_format_rfc3339(ms, buf);
        return json_string(buf);
    }
    default:
        return json_string(text);
    }
}

json_t *record_hash_to_api(const struct resource *res, const struct redisReply *hgetall)
{
    if (!hgetall || hgetall->type != REDIS_REPLY_ARRAY || hgetall->elements == 0)
        return NULL;
    json_t *obj = json_object();
    for (size_t i = 0; obj && i < res->nfields; i++) {
        const struct field *f = &res->fields[i];
        if (!(f->flags & F_OUT))
            continue;
        const char *text = store_reply_field(hgetall, f->name);
        json_object_set_new(obj, f->name, text_to_json(f, text));
    }
    return obj;
}

int record_hash_args(const struct resource *res, const json_t *values, unsigned mask,
                     struct cmd *c)
{
    for (size_t i = 0; i < res->nfields; i++) {
        const struct field *f = &res->fields[i];
        json_t *v = json_object_get(values, f->name);
        if (!f->pos || !v || (mask && !(f->flags & mask)) || (!mask && json_is_null(v)))
            continue;
        cmd_add(c, f->name);
        if (json_is_null(v)) {
            cmd_add(c, "");
        } else if (json_is_string(v) && f->type == FT_TIME) {
            int64_t ms;
            if (time_parse_rfc3339(json_string_value(v), &ms) != 0)
                return -1;
            cmd_addll(c, ms);
        } else if (json_is_string(v)) {
            cmd_add(c, json_string_value(v));
        } else {
            char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(15));
            if (!text)
                return -1;
            cmd_add(c, text);
            free(text);
        }
    }
    return 0;
}
