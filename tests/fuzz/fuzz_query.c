/* fuzz_query.c — query strings and the cursors and ids they carry.
 *
 * The input is a request's query string. It goes the way http.c takes it (evhttp_uri_parse of
 * the request target, evhttp_parse_query_str of its query), and every value, and the whole
 * input, goes through each parser a list route applies to a parameter at HEAD: limit and
 * offset cursors (validate_query_int with the routes' bounds), ids and id cursors (id_valid
 * for every prefix, the market an id names, record_id_ms), and the stream cursors of
 * /v1/feeds/events and of the inbox: both are page_stream_id_parse (page.c) on the text, the
 * event feed's on what precedes its last '-' (the market code after it is a strcmp against
 * the catalogue).
 *
 * Contracts: validate_query_int gives a value within its bounds (or the default for no text);
 * an id id_valid accepts is its prefix and 1-32 of [0-9a-z]; a stream id
 * page_stream_id_parse accepts is within its digit widths and prints back as the same
 * numbers. */
#include "fuzz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "impactd/catalog.h"
#include "impactd/record.h"
#include "impactd/resource.h"
#include "impactd/server.h"
#include "impactd/validate.h"
#include "impactd/ids.h"
#include "impactd/page.h"

/* ids that are not a resource's: tokens, messages; and no prefix at all */
static const char *const OTHER_PREFIXES[] = { "tok_", "msg_", "" };

static void check_int(const char *v, int64_t min, int64_t max, int64_t dflt)
{
    int64_t out = -12345;
    if (validate_query_int(v, min, max, dflt, &out) == 0)
        FUZZ_ASSERT(v ? out >= min && out <= max : out == dflt);
}

static void check_id(const char *v, const char *prefix)
{
    if (!id_valid(v, prefix))
        return;
    size_t pl = strlen(prefix), n = strlen(v) - pl;
    FUZZ_ASSERT(strncmp(v, prefix, pl) == 0 && n >= 1 && n <= 32);
    for (const char *p = v + pl; *p; p++)
        FUZZ_ASSERT((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z'));
}

static void check_stream_id(const char *v, size_t len)
{
    int64_t ms = -1, seq = -1;
    if (page_stream_id_parse(v, len, &ms, &seq) != 0)
        return;
    FUZZ_ASSERT(ms >= 0 && ms < INT64_C(1000000000000000) && seq >= 0 &&
                seq < INT64_C(1000000000000));
    char back[64];
    int n = snprintf(back, sizeof back, "%lld-%lld", (long long)ms, (long long)seq);
    int64_t ms2, seq2;
    FUZZ_ASSERT(n > 0 && page_stream_id_parse(back, (size_t)n, &ms2, &seq2) == 0 &&
                ms2 == ms && seq2 == seq);
}

static void one_value(const struct catalog *cat, const char *v)
{
    check_stream_id(v, strlen(v));
    const char *dash = strrchr(v, '-');
    if (dash)
        check_stream_id(v, (size_t)(dash - v));
    check_int(v, 1, 500, 50);
    check_int(v, 0, 1000000000, 0);
    size_t nres;
    const struct resource *const *all = resource_all(&nres);
    for (size_t i = 0; i < nres; i++) {
        check_id(v, all[i]->prefix);
        (void)record_id_ms(v, all[i]->prefix);
    }
    for (size_t i = 0; i < sizeof OTHER_PREFIXES / sizeof OTHER_PREFIXES[0]; i++)
        check_id(v, OTHER_PREFIXES[i]);
    const struct market *m = catalog_market_of_id(cat, v);
    if (m)
        FUZZ_ASSERT(catalog_market_index(cat, m) < cat->nmarkets);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const struct catalog *cat = &fuzz_server()->catalog;
    char *q = fuzz_cstring(data, size);
    one_value(cat, q);
    check_int(NULL, 1, 500, 50);

    /* the request target as evhttp would hand it over */
    static const char PATH[] = "/v1/offers?";
    size_t n = strlen(q);
    char *target = malloc(sizeof PATH + n);
    FUZZ_ASSERT(target != NULL);
    memcpy(target, PATH, sizeof PATH - 1);
    memcpy(target + sizeof PATH - 1, q, n + 1);
    struct evhttp_uri *uri = evhttp_uri_parse(target);
    const char *query = uri ? evhttp_uri_get_query(uri) : NULL;
    struct evkeyvalq kv;
    TAILQ_INIT(&kv);
    if (query && evhttp_parse_query_str(query, &kv) == 0) {
        struct evkeyval *e;
        TAILQ_FOREACH(e, &kv, next) {
            FUZZ_ASSERT(e->key != NULL && e->value != NULL);
            one_value(cat, e->value);
        }
        /* what req_query answers for the names the routes read */
        static const char *const NAMES[] = { "limit", "cursor", "after", "offer_id", "need_id" };
        for (size_t i = 0; i < sizeof NAMES / sizeof NAMES[0]; i++) {
            const char *v = evhttp_find_header(&kv, NAMES[i]);
            if (v)
                one_value(cat, v);
        }
    }
    evhttp_clear_headers(&kv);
    if (uri)
        evhttp_uri_free(uri);
    free(target);
    free(q);
    return 0;
}
