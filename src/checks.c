/* checks.c — field checks that need the catalogue or the clock (see validate.h). */
#include "impactd/checks.h"

#include <stdbool.h>
#include <string.h>

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

/* ---- contacts and identifiers ---- */

const char *check_email(const json_t *v, const void *ctx)
{
    (void)ctx;
    const char *s = json_string_value(v);
    const char *at = strchr(s, '@');
    const char *dot = at ? strrchr(at, '.') : NULL;
    bool ok = at && at != s && !strchr(at + 1, '@') && dot && dot > at + 1 && dot[1] &&
              strlen(s) <= 254 && !strpbrk(s, " \t,;<>()[]\\\"");
    return ok ? NULL : "must be an e-mail address, e.g. achats@chu-exemple.fr";
}

const char *check_phone(const json_t *v, const void *ctx)
{
    (void)ctx;
    const char *s = json_string_value(v);
    size_t n = strlen(s);
    bool ok = n >= 9 && n <= 16 && s[0] == '+' && s[1] >= '1' && s[1] <= '9';
    for (size_t i = 1; ok && i < n; i++)
        ok = s[i] >= '0' && s[i] <= '9';
    return ok ? NULL : "must be a phone number in E.164 form: + then the country code and "
                       "number, digits only, e.g. +33320445962";
}

const char *check_siret(const json_t *v, const void *ctx)
{
    (void)ctx;
    const char *s = json_string_value(v);
    if (strlen(s) != 14 || strspn(s, "0123456789") != 14)
        return "must be a SIRET number: 14 digits";
    int sum = 0;
    for (int i = 0; i < 14; i++) {          /* Luhn, from the right */
        int d = s[13 - i] - '0';
        if (i % 2) {
            d *= 2;
            if (d > 9)
                d -= 9;
        }
        sum += d;
    }
    return sum % 10 == 0 ? NULL : "is not a valid SIRET number (its check digit is wrong)";
}

const char *check_finess(const json_t *v, const void *ctx)
{
    (void)ctx;
    const char *s = json_string_value(v);
    bool dept = (s[0] >= '0' && s[0] <= '9' && s[1] >= '0' && s[1] <= '9') ||
                (s[0] == '2' && (s[1] == 'A' || s[1] == 'B'));
    bool ok = strlen(s) == 9 && dept && strspn(s + 2, "0123456789") == 7;
    return ok ? NULL : "must be a FINESS number: 9 characters, the département (2 digits, "
                       "2A or 2B) then 7 digits";
}
