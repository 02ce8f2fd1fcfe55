/* checks.c — field checks that need the catalogue or the clock (see validate.h). */
#include "impactd/checks.h"

#include <arpa/inet.h>
#include <string.h>
#include <strings.h>

#include "impactd/catalog.h"
#include "impactd/server.h"
#include "impactd/timeutil.h"

const char *check_region(const json_t *v, const void *ctx)
{
    const struct server *srv = ctx;
    return catalog_region(&srv->catalog, json_string_value(v))
               ? NULL : "is not a region code of the catalogue (see /v1/catalog/regions)";
}

const char *check_regions(const json_t *v, const void *ctx)
{
    size_t i;
    json_t *item;
    json_array_foreach(v, i, item) {
        if (check_region(item, ctx))
            return "must hold only region codes of the catalogue (see /v1/catalog/regions)";
    }
    return NULL;
}

const char *check_product(const json_t *v, const void *ctx)
{
    const struct server *srv = ctx;
    return catalog_product(&srv->catalog, json_string_value(v))
               ? NULL : "is not a product of the catalogue (see /v1/catalog/products)";
}

const char *check_future(const json_t *v, const void *ctx)
{
    (void)ctx;
    int64_t ms;
    if (time_parse_rfc3339(json_string_value(v), &ms) != 0)
        return "must be an RFC 3339 date-time";
    return ms > time_now_ms() ? NULL : "must be in the future";
}

/* Loopback, private, link-local, CGNAT, multicast and unspecified addresses, and localhost
 * names: what a webhook may not reach unless IMPACTD_WEBHOOK_ALLOW_PRIVATE=1. */
bool checks_host_private(const char *host)
{
    if (strcasecmp(host, "localhost") == 0)
        return true;
    size_t n = strlen(host);
    if (n > 10 && strcasecmp(host + n - 10, ".localhost") == 0)
        return true;
    unsigned char a[16];
    if (inet_pton(AF_INET, host, a) == 1) {
        return a[0] == 0 || a[0] == 10 || a[0] == 127 || (a[0] == 169 && a[1] == 254) ||
               (a[0] == 172 && (a[1] & 0xf0) == 16) || (a[0] == 192 && a[1] == 168) ||
               (a[0] == 100 && (a[1] & 0xc0) == 64) || a[0] >= 224;
    }
    char v6[64];
    bool bracketed = n >= 2 && host[0] == '[';
    if (n - 2 * (size_t)bracketed < sizeof v6) {
        memcpy(v6, host + bracketed, n - 2 * bracketed);
        v6[n - 2 * bracketed] = '\0';
        if (inet_pton(AF_INET6, v6, a) == 1) {
            static const unsigned char ZERO[15] = { 0 };
            bool loop_or_any = memcmp(a, ZERO, 15) == 0 && (a[15] == 1 || a[15] == 0);
            return loop_or_any || (a[0] & 0xfe) == 0xfc || (a[0] == 0xfe && (a[1] & 0xc0) == 0x80) ||
                   (memcmp(a, ZERO, 10) == 0 && a[10] == 0xff && a[11] == 0xff);
        }
    }
    return false;
}

