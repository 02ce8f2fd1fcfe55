/* fuzz_url.c — webhook URLs and the addresses they may reach.
 *
 * The input goes, as text, through the participant field's check (participants.c, reached
 * through validate_object on a PATCH body, with webhook_allow_private off and on),
 * libevent's URI parser as participants.c and webhook.c call it, the host part of it
 * (netaddr_url_host) and the host classifier (netaddr_host_nonglobal), and the
 * webhook_resolve override parser (netaddr_override_check, netaddr_override_find); and, as
 * bytes, through the address classifier (netaddr_nonglobal) as an IPv4 and an IPv6 address.
 *
 * Contracts: a URL accepted with private addresses refused is accepted with them allowed; an
 * IPv6 address carrying a non-global IPv4 one (IPv4-mapped, NAT64) is not global either; a
 * host netaddr_url_host extracts from a parsed URL's host fits its buffer and has no
 * brackets; an override spec that
 * checks finds only addresses that are literals. */
#include "fuzz.h"

#include <arpa/inet.h>
#include <event2/http.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "impactd/netaddr.h"
#include "impactd/resource.h"
#include "impactd/server.h"
#include "impactd/validate.h"

static int url_faults(struct server *srv, json_t *body, bool allow_private)
{
    srv->cfg.webhook_allow_private = allow_private;
    json_t *errors = json_array();
    FUZZ_ASSERT(errors != NULL);
    int faults = validate_object(body, RESOURCE_PARTICIPANT.fields, RESOURCE_PARTICIPANT.nfields,
                                 F_PATCH, srv, errors);
    FUZZ_ASSERT(json_array_size(errors) == (size_t)faults);
    json_decref(errors);
    return faults;
}

/* from_uri: uri_host is what evhttp's URI parser gave (a name has no brackets, a literal
 * its pair), so the host extracted from it has none */
static void host_check(const char *uri_host, bool from_uri)
{
    char host[256];
    (void)netaddr_host_nonglobal(uri_host);
    if (netaddr_url_host(uri_host, host, sizeof host) == 0) {
        FUZZ_ASSERT(strlen(host) < sizeof host);
        if (from_uri)
            FUZZ_ASSERT(!strchr(host, '[') && !strchr(host, ']'));
        (void)netaddr_is_literal(host);
        (void)netaddr_host_nonglobal(host);
    }
}

static void uri_check(const char *s, unsigned flags)
{
    struct evhttp_uri *u = evhttp_uri_parse_with_flags(s, flags);
    if (!u)
        return;
    const char *host = evhttp_uri_get_host(u);
    if (host)
        host_check(host, true);
    evhttp_uri_free(u);
}

/* The bytes as addresses: v4 alone, and embedded in the v6 forms netaddr.c decodes. */
static void addr_check(const uint8_t *data, size_t size)
{
    if (size >= 4) {
        const char *v4 = netaddr_nonglobal(AF_INET, data);
        unsigned char mapped[16] = { [10] = 0xff, [11] = 0xff };
        memcpy(mapped + 12, data, 4);
        unsigned char nat64[16] = { 0x00, 0x64, 0xff, 0x9b };
        memcpy(nat64 + 12, data, 4);
        if (v4) {
            FUZZ_ASSERT(netaddr_nonglobal(AF_INET6, mapped) != NULL);
            FUZZ_ASSERT(netaddr_nonglobal(AF_INET6, nat64) != NULL);
        }
    }
    if (size >= 16)
        (void)netaddr_nonglobal(AF_INET6, data);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct server *srv = fuzz_server();
    addr_check(data, size);
    char *s = fuzz_cstring(data, size);

    json_t *body = json_object();
    json_t *url = json_string(s);     /* NULL when not UTF-8: a JSON body cannot carry it */
    if (body && url && json_object_set_new(body, "webhook_url", url) == 0) {
        int strict = url_faults(srv, body, false);
        int lax = url_faults(srv, body, true);
        FUZZ_ASSERT(strict >= lax);
    } else {
        json_decref(url);
    }
    json_decref(body);

    uri_check(s, 0);
    uri_check(s, EVHTTP_URI_NONCONFORMANT);
    host_check(s, false);

    char err[200];
    if (netaddr_override_check(s, err, sizeof err) == 0) {
        char addr[64], probe[64];
        for (int port = 0; port <= 443; port += 443)
            if (netaddr_override_find(s, "hooks.example", port, addr, sizeof addr) == 1)
                FUZZ_ASSERT(inet_pton(AF_INET, addr, probe) == 1 ||
                            inet_pton(AF_INET6, addr, probe) == 1);
    }
    free(s);
    return 0;
}
