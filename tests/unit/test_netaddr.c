/* test_netaddr.c — the webhook address classifier against the registries, block by block:
 * for each, its first, last and a middle address, and the neighbours just outside it. Also
 * the IPv4 addresses carried by IPv6 ones (mapped, NAT64, 6to4, Teredo), a resolver's list
 * (one bad address refuses all), URL hosts (bracketed IPv6 literals) and webhook_resolve.
 *
 * The tables below are written from the registries themselves, independently of the ones in
 * src/netaddr.c (as read in 2025):
 *  - https://www.iana.org/assignments/iana-ipv4-special-registry/ (RFC 6890)
 *  - https://www.iana.org/assignments/iana-ipv6-special-registry/ (RFC 6890)
 *  - https://www.iana.org/assignments/ipv4-address-space/ (224/4 multicast, 240/4 reserved)
 *  - https://www.iana.org/assignments/ipv6-address-space/ (2000::/3 global unicast; fec0::/10,
 *    ff00::/8 and the rest reserved or special) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "impactd/netaddr.h"

enum { NONE = -1, REFUSED = 0, ACCEPTED = 1 };

/* One registry entry: inside it (first, middle, last) the verdict is `inside`; the address
 * just below its first and just above its last get `below` and `above` (NONE: no such
 * address, the end of the address space). */
struct row {
    const char *cidr;
    int inside, below, above;
};

static const struct row V4_ROWS[] = {
    { "0.0.0.0/8", REFUSED, NONE, ACCEPTED },               /* "this network" */
    { "0.0.0.0/32", REFUSED, NONE, REFUSED },               /* "this host on this network" */
    { "10.0.0.0/8", REFUSED, ACCEPTED, ACCEPTED },          /* private-use */
    { "100.64.0.0/10", REFUSED, ACCEPTED, ACCEPTED },       /* shared address space */
    { "127.0.0.0/8", REFUSED, ACCEPTED, ACCEPTED },         /* loopback */
    { "169.254.0.0/16", REFUSED, ACCEPTED, ACCEPTED },      /* link local */
    { "172.16.0.0/12", REFUSED, ACCEPTED, ACCEPTED },       /* private-use */
    { "192.0.0.0/24", REFUSED, ACCEPTED, ACCEPTED },        /* IETF protocol assignments */
    { "192.0.0.0/29", REFUSED, ACCEPTED, REFUSED },         /* IPv4 service continuity */
    { "192.0.0.8/32", REFUSED, REFUSED, ACCEPTED },         /* IPv4 dummy address */
    { "192.0.0.9/32", ACCEPTED, REFUSED, ACCEPTED },        /* PCP anycast: global */
    { "192.0.0.10/32", ACCEPTED, ACCEPTED, REFUSED },       /* TURN anycast: global */
    { "192.0.0.170/32", REFUSED, REFUSED, REFUSED },        /* NAT64/DNS64 discovery */
    { "192.0.0.171/32", REFUSED, REFUSED, REFUSED },        /* NAT64/DNS64 discovery */
    { "192.0.2.0/24", REFUSED, ACCEPTED, ACCEPTED },        /* TEST-NET-1 */
    { "192.31.196.0/24", ACCEPTED, ACCEPTED, ACCEPTED },    /* AS112-v4: global */
    { "192.52.193.0/24", ACCEPTED, ACCEPTED, ACCEPTED },    /* AMT: global */
    { "192.88.99.0/24", REFUSED, ACCEPTED, ACCEPTED },      /* 6to4 relay anycast: N/A */
    { "192.168.0.0/16", REFUSED, ACCEPTED, ACCEPTED },      /* private-use */
    { "192.175.48.0/24", ACCEPTED, ACCEPTED, ACCEPTED },    /* AS112 direct delegation */
    { "198.18.0.0/15", REFUSED, ACCEPTED, ACCEPTED },       /* benchmarking */
    { "198.51.100.0/24", REFUSED, ACCEPTED, ACCEPTED },     /* TEST-NET-2 */
    { "203.0.113.0/24", REFUSED, ACCEPTED, ACCEPTED },      /* TEST-NET-3 */
    { "224.0.0.0/4", REFUSED, ACCEPTED, REFUSED },          /* multicast */
    { "240.0.0.0/4", REFUSED, REFUSED, NONE },              /* reserved */
    { "255.255.255.255/32", REFUSED, REFUSED, NONE },       /* limited broadcast */
};

/* Blocks whose verdict depends on an IPv4 address inside (::ffff:0:0/96, 64:ff9b::/96,
 * 2002::/16, 2001::/32) and 2000::/3 itself (whose last address is in 3fff::/20) have tests
 * of their own below. */
static const struct row V6_ROWS[] = {
    { "::/128", REFUSED, NONE, REFUSED },                   /* unspecified */
    { "::1/128", REFUSED, REFUSED, REFUSED },               /* loopback */
    { "::/96", REFUSED, NONE, REFUSED },                    /* IPv4-compatible, deprecated */
    { "64:ff9b:1::/48", REFUSED, REFUSED, REFUSED },        /* local-use translation */
    { "100::/64", REFUSED, REFUSED, REFUSED },              /* discard-only */
    { "2001::/23", REFUSED, ACCEPTED, ACCEPTED },           /* IETF protocol assignments */
    { "2001:1::1/128", ACCEPTED, REFUSED, ACCEPTED },       /* PCP anycast: global */
    { "2001:1::2/128", ACCEPTED, ACCEPTED, ACCEPTED },      /* TURN anycast: global */
    { "2001:1::3/128", ACCEPTED, ACCEPTED, REFUSED },       /* DNS-SD SRP anycast: global */
    { "2001:2::/48", REFUSED, REFUSED, REFUSED },           /* benchmarking */
    { "2001:3::/32", ACCEPTED, REFUSED, REFUSED },          /* AMT: global */
    { "2001:4:112::/48", ACCEPTED, REFUSED, REFUSED },      /* AS112-v6: global */
    { "2001:10::/28", REFUSED, REFUSED, ACCEPTED },         /* ORCHID, deprecated: N/A */
    { "2001:20::/28", ACCEPTED, REFUSED, ACCEPTED },        /* ORCHIDv2: global */
    { "2001:30::/28", ACCEPTED, ACCEPTED, REFUSED },        /* drone remote ID: global */
    { "2001:db8::/32", REFUSED, ACCEPTED, ACCEPTED },       /* documentation */
    { "2620:4f:8000::/48", ACCEPTED, ACCEPTED, ACCEPTED },  /* AS112 direct delegation */
    { "3fff::/20", REFUSED, ACCEPTED, ACCEPTED },           /* documentation */
    { "5f00::/16", REFUSED, REFUSED, REFUSED },             /* SRv6 SIDs */
    { "fc00::/7", REFUSED, REFUSED, REFUSED },              /* unique-local */
    { "fe80::/10", REFUSED, REFUSED, REFUSED },             /* link-local unicast */
    { "fec0::/10", REFUSED, REFUSED, REFUSED },             /* site-local, deprecated */
    { "ff00::/8", REFUSED, REFUSED, NONE },                 /* multicast */
};

/* ---- address arithmetic ---- */

static int parse_cidr(const char *cidr, unsigned char *a, int *len)
{
    char text[64];
    const char *slash = strchr(cidr, '/');
    assert_non_null(slash);
    memcpy(text, cidr, (size_t)(slash - cidr));
    text[slash - cidr] = '\0';
    *len = atoi(slash + 1);
    int family = strchr(text, ':') ? AF_INET6 : AF_INET;
    assert_int_equal(inet_pton(family, text, a), 1);
    return family;
}

/* Adds delta (+1 or -1) to the n-byte number a; false when it wraps. */
static bool step(unsigned char *a, size_t n, int delta)
{
    for (size_t i = n; i-- > 0;) {
        int v = a[i] + delta;
        a[i] = (unsigned char)(v & 0xff);
        if (v >= 0 && v <= 0xff)
            return true;
    }
    return false;
}

static void check(int family, const unsigned char *a, int expected, const char *what,
                  const char *cidr)
{
    char text[INET6_ADDRSTRLEN];
    inet_ntop(family, a, text, sizeof text);
    const char *why = netaddr_nonglobal(family, a);
    if ((why == NULL) != (expected == ACCEPTED))
        fail_msg("%s %s of %s: expected %s, got %s", what, text, cidr,
                 expected == ACCEPTED ? "accepted" : "refused", why ? why : "accepted");
}

static void check_rows(const struct row *rows, size_t n)
{
    for (size_t r = 0; r < n; r++) {
        unsigned char first[16], last[16], mid[16], x[16];
        int len;
        int family = parse_cidr(rows[r].cidr, first, &len);
        size_t bytes = family == AF_INET ? 4 : 16;
        memcpy(last, first, bytes);
        for (size_t bit = (size_t)len; bit < bytes * 8; bit++)
            last[bit / 8] |= (unsigned char)(0x80 >> (bit % 8));
        memcpy(mid, first, bytes);
        if ((size_t)len < bytes * 8)
            mid[len / 8] |= (unsigned char)(0x80 >> (len % 8));
        check(family, first, rows[r].inside, "first", rows[r].cidr);
        check(family, mid, rows[r].inside, "middle", rows[r].cidr);
        check(family, last, rows[r].inside, "last", rows[r].cidr);
        memcpy(x, first, bytes);
        bool below = step(x, bytes, -1);
        assert_int_equal(below, rows[r].below != NONE);
        if (below)
            check(family, x, rows[r].below, "below", rows[r].cidr);
        memcpy(x, last, bytes);
        bool above = step(x, bytes, +1);
        assert_int_equal(above, rows[r].above != NONE);
        if (above)
            check(family, x, rows[r].above, "above", rows[r].cidr);
    }
}

static void expect(const char *text, int expected)
{
    unsigned char a[16];
    int family = strchr(text, ':') ? AF_INET6 : AF_INET;
    assert_int_equal(inet_pton(family, text, a), 1);
    check(family, a, expected, "address", text);
}

/* ---- tests ---- */

static void test_ipv4_registry(void **state)
{
    (void)state;
    check_rows(V4_ROWS, sizeof V4_ROWS / sizeof V4_ROWS[0]);
}

static void test_ipv6_registry(void **state)
{
    (void)state;
    check_rows(V6_ROWS, sizeof V6_ROWS / sizeof V6_ROWS[0]);
}

static void test_ipv4_global(void **state)
{
    (void)state;
    for (const char *const *s = (const char *const[]){ "1.1.1.1", "8.8.8.8", "93.184.216.34",
                                                       "198.17.255.255", "198.20.0.0",
                                                       "223.255.255.255", NULL }; *s; s++)
        expect(*s, ACCEPTED);
}

static void test_ipv6_outside_global_unicast(void **state)
{
    (void)state;
    expect("2000::", ACCEPTED);
    expect("2a00:1450:4007:80e::200e", ACCEPTED);
    expect("2001:4860:4860::8888", ACCEPTED);
    expect("3ffe:ffff:ffff:ffff:ffff:ffff:ffff:ffff", ACCEPTED);
    expect("1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", REFUSED);
    expect("4000::", REFUSED);
    expect("::2", REFUSED);
    expect("::ffff:0:1.2.3.4", REFUSED);        /* IPv4-translated (RFC 2765): not 2000::/3 */
}

static void test_ipv4_mapped(void **state)
{
    (void)state;
    expect("::ffff:127.0.0.1", REFUSED);
    expect("::ffff:10.1.2.3", REFUSED);
    expect("::ffff:169.254.169.254", REFUSED);
    expect("::ffff:198.18.0.1", REFUSED);
    expect("::ffff:192.0.0.1", REFUSED);
    expect("::ffff:0.0.0.0", REFUSED);
    expect("::ffff:255.255.255.255", REFUSED);
    expect("::ffff:8.8.8.8", ACCEPTED);
    expect("::fffe:808:808", REFUSED);          /* next to the mapped block: ::/8 */
}

static void test_ipv4_compatible(void **state)
{
    (void)state;
    expect("::127.0.0.1", REFUSED);
    expect("::169.254.169.254", REFUSED);
    expect("::8.8.8.8", REFUSED);               /* deprecated: never reached */
}

static void test_nat64(void **state)
{
    (void)state;
    expect("64:ff9b::a9fe:a9fe", REFUSED);      /* 169.254.169.254 on a DNS64 host */
    expect("64:ff9b::169.254.169.254", REFUSED);
    expect("64:ff9b::7f00:1", REFUSED);
    expect("64:ff9b::c612:1", REFUSED);         /* 198.18.0.1 */
    expect("64:ff9b::a00:1", REFUSED);
    expect("64:ff9b::", REFUSED);               /* 0.0.0.0 */
    expect("64:ff9b::808:808", ACCEPTED);       /* 8.8.8.8 */
    expect("64:ff9b::1:808:808", REFUSED);      /* outside the /96: ::/8 */
    expect("64:ff9b:1::808:808", REFUSED);      /* local-use /48: refused whatever it holds */
}

static void test_6to4(void **state)
{
    (void)state;
    expect("2002:7f00:1::1", REFUSED);          /* 127.0.0.1 */
    expect("2002:c0a8:101::1", REFUSED);        /* 192.168.1.1 */
    expect("2002:a9fe:a9fe::", REFUSED);
    expect("2002:c612:1::1", REFUSED);          /* 198.18.0.1 */
    expect("2002::", REFUSED);                  /* 0.0.0.0 */
    expect("2002:ffff:ffff:ffff:ffff:ffff:ffff:ffff", REFUSED);
    expect("2002:808:808::1", ACCEPTED);        /* 8.8.8.8 */
    expect("2001:ffff:ffff:ffff:ffff:ffff:ffff:ffff", ACCEPTED);
    expect("2003::", ACCEPTED);
}

static void test_teredo(void **state)
{
    (void)state;
    /* RFC 4380's example: server 65.54.227.120, client 192.0.2.45 (obfuscated 3fff:fdd2). */
    expect("2001:0:4136:e378:8000:63bf:3fff:fdd2", REFUSED);
    /* server 8.8.8.8, client 1.2.3.4 (~ = fefd:fcfb) */
    expect("2001:0:808:808::fefd:fcfb", ACCEPTED);
    /* server 8.8.8.8, client 127.0.0.1 (~ = 80ff:fffe) */
    expect("2001:0:808:808::80ff:fffe", REFUSED);
    /* server 192.168.1.1, client 1.2.3.4 */
    expect("2001:0:c0a8:101::fefd:fcfb", REFUSED);
    /* server 8.8.8.8, client 10.0.0.1 (~ = f5ff:fffe) */
    expect("2001:0:808:808:8000:ffff:f5ff:fffe", REFUSED);
    expect("2001::", REFUSED);
    expect("2001:0:ffff:ffff:ffff:ffff:ffff:ffff", REFUSED);
    expect("2001:1::", REFUSED);                /* just above Teredo: still 2001::/23 */
}

static void test_names(void **state)
{
    (void)state;
    unsigned char a[16];
    assert_int_equal(inet_pton(AF_INET, "198.18.0.1", a), 1);
    assert_non_null(netaddr_nonglobal(AF_INET, a));
    assert_string_equal(netaddr_nonglobal(AF_INET, a), "198.18.0.0/15 benchmarking (RFC 2544)");
    assert_int_equal(inet_pton(AF_INET6, "64:ff9b::a9fe:a9fe", a), 1);
    assert_non_null(netaddr_nonglobal(AF_INET6, a));
    assert_string_equal(netaddr_nonglobal(AF_INET6, a), "169.254.0.0/16 link local (RFC 3927)");
    assert_string_equal(netaddr_nonglobal(AF_UNIX, a), "not an IP address");
}

static struct addrinfo *ai_of(struct addrinfo *ai, struct sockaddr_storage *ss, const char *text)
{
    memset(ai, 0, sizeof *ai);
    memset(ss, 0, sizeof *ss);
    if (strchr(text, ':')) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
        s6->sin6_family = AF_INET6;
        assert_int_equal(inet_pton(AF_INET6, text, &s6->sin6_addr), 1);
        ai->ai_addrlen = sizeof *s6;
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
        s4->sin_family = AF_INET;
        assert_int_equal(inet_pton(AF_INET, text, &s4->sin_addr), 1);
        ai->ai_addrlen = sizeof *s4;
    }
    ai->ai_family = ss->ss_family;
    ai->ai_addr = (struct sockaddr *)ss;
    return ai;
}

static void test_resolved_list_refused_if_any(void **state)
{
    (void)state;
    struct addrinfo a, b, c;
    struct sockaddr_storage sa, sb, sc;
    ai_of(&a, &sa, "8.8.8.8")->ai_next = ai_of(&b, &sb, "2a00:1450::1");
    b.ai_next = ai_of(&c, &sc, "64:ff9b::a9fe:a9fe");
    const char *why = "unset";
    assert_ptr_equal(netaddr_first_nonglobal(&a, &why), &c);
    assert_non_null(why);
    assert_string_equal(why, "169.254.0.0/16 link local (RFC 3927)");
    b.ai_next = NULL;
    assert_null(netaddr_first_nonglobal(&a, &why));
    assert_null(why);
    char ip[INET6_ADDRSTRLEN];
    netaddr_ntop(c.ai_addr, ip, sizeof ip);
    assert_string_equal(ip, "64:ff9b::a9fe:a9fe");
    netaddr_ntop(a.ai_addr, ip, sizeof ip);
    assert_string_equal(ip, "8.8.8.8");
}

static void test_url_host_brackets(void **state)
{
    (void)state;
    char out[256];
    assert_int_equal(netaddr_url_host("[::1]", out, sizeof out), 0);
    assert_string_equal(out, "::1");
    assert_int_equal(netaddr_url_host("[2001:db8::a:b]", out, sizeof out), 0);
    assert_string_equal(out, "2001:db8::a:b");
    assert_int_equal(netaddr_url_host("[::ffff:127.0.0.1]", out, sizeof out), 0);
    assert_string_equal(out, "::ffff:127.0.0.1");
    assert_int_equal(netaddr_url_host("hooks.example.org", out, sizeof out), 0);
    assert_string_equal(out, "hooks.example.org");
    assert_int_equal(netaddr_url_host("127.0.0.1", out, sizeof out), 0);
    assert_string_equal(out, "127.0.0.1");
    assert_int_equal(netaddr_url_host("[v1.future]", out, sizeof out), -1);     /* IPvFuture */
    assert_int_equal(netaddr_url_host("[fe80::1%25eth0]", out, sizeof out), -1);
    assert_int_equal(netaddr_url_host("[::1", out, sizeof out), -1);
    assert_int_equal(netaddr_url_host("[]", out, sizeof out), -1);
    assert_int_equal(netaddr_url_host("[example.org]", out, sizeof out), -1);
    assert_int_equal(netaddr_url_host("", out, sizeof out), -1);
    assert_int_equal(netaddr_url_host("[::1]", out, 3), -1);                    /* too long */
    assert_int_equal(netaddr_url_host("[::1]", out, 4), 0);
    assert_true(netaddr_is_literal("::1"));
    assert_true(netaddr_is_literal("198.18.0.1"));
    assert_false(netaddr_is_literal("[::1]"));
    assert_false(netaddr_is_literal("hook.test"));
    assert_false(netaddr_is_literal("127.1"));
}

static void test_host_literals_and_names(void **state)
{
    (void)state;
    const char *refused[] = { "[::1]", "[::]", "[fe80::1]", "[fec0::1]", "[fc00::1]",
                              "[::ffff:127.0.0.1]", "[::ffff:7f00:1]", "[::127.0.0.1]",
                              "[64:ff9b::a9fe:a9fe]", "[2002:c0a8:101::1]", "[2001:db8::1]",
                              "[ff02::1]", "[v1.future]", "127.0.0.1", "0.0.0.0", "198.18.0.1",
                              "192.0.0.1", "100.64.0.1", "240.0.0.1", "255.255.255.255",
                              "224.0.0.1", "localhost", "LOCALHOST", "localhost.",
                              "hook.localhost", "a.b.LocalHost.", NULL };
    for (const char *const *h = refused; *h; h++)
        if (!netaddr_host_nonglobal(*h))
            fail_msg("%s was accepted", *h);
    const char *accepted[] = { "hooks.example.org", "notlocalhost", "localhost.example.org",
                               "8.8.8.8", "[2001:4860:4860::8888]", "[::ffff:8.8.8.8]",
                               "[64:ff9b::808:808]", "[2002:808:808::1]", NULL };
    for (const char *const *h = accepted; *h; h++)
        if (netaddr_host_nonglobal(*h))
            fail_msg("%s was refused: %s", *h, netaddr_host_nonglobal(*h));
}

static void test_override_syntax(void **state)
{
    (void)state;
    char err[256];
    const char *good[] = { "", "hook.test:80:127.0.0.1",
                           " a.test:443:[::1] , b.test:8080:64:ff9b::a9fe:a9fe ",
                           "x:1:::1", "x:65535:198.18.0.1,", NULL };
    for (const char *const *s = good; *s; s++)
        if (netaddr_override_check(*s, err, sizeof err) != 0)
            fail_msg("\"%s\" refused: %s", *s, err);
    const char *bad[] = { "hook.test", "hook.test:80", "hook.test:80:", ":80:127.0.0.1",
                          "hook.test:x:127.0.0.1", "hook.test:0:127.0.0.1",
                          "hook.test:65536:127.0.0.1", "hook.test:-1:127.0.0.1",
                          "hook.test:80:hook.example", "hook.test:80:[127.0.0.1]",
                          "hook.test:80:[::1", "a.test:80:127.0.0.1,b.test:80", NULL };
    for (const char *const *s = bad; *s; s++) {
        err[0] = '\0';
        if (netaddr_override_check(*s, err, sizeof err) == 0)
            fail_msg("\"%s\" accepted", *s);
        assert_non_null(strstr(err, "webhook_resolve"));
    }
}

static void test_override_find(void **state)
{
    (void)state;
    const char *spec = "a.test:80:198.18.0.1, B.Test:8080:[64:ff9b::a9fe:a9fe],"
                       "a.test:80:127.0.0.1,c.test:443:::1";
    char addr[INET6_ADDRSTRLEN];
    assert_int_equal(netaddr_override_find(spec, "a.test", 80, addr, sizeof addr), 1);
    assert_string_equal(addr, "198.18.0.1");                    /* the first entry wins */
    assert_int_equal(netaddr_override_find(spec, "b.TEST", 8080, addr, sizeof addr), 1);
    assert_string_equal(addr, "64:ff9b::a9fe:a9fe");
    assert_int_equal(netaddr_override_find(spec, "c.test", 443, addr, sizeof addr), 1);
    assert_string_equal(addr, "::1");
    assert_int_equal(netaddr_override_find(spec, "a.test", 81, addr, sizeof addr), 0);
    assert_int_equal(netaddr_override_find(spec, "d.test", 80, addr, sizeof addr), 0);
    assert_int_equal(netaddr_override_find("", "a.test", 80, addr, sizeof addr), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ipv4_registry),
        cmocka_unit_test(test_ipv6_registry),
        cmocka_unit_test(test_ipv4_global),
        cmocka_unit_test(test_ipv6_outside_global_unicast),
        cmocka_unit_test(test_ipv4_mapped),
        cmocka_unit_test(test_ipv4_compatible),
        cmocka_unit_test(test_nat64),
        cmocka_unit_test(test_6to4),
        cmocka_unit_test(test_teredo),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_resolved_list_refused_if_any),
        cmocka_unit_test(test_url_host_brackets),
        cmocka_unit_test(test_host_literals_and_names),
        cmocka_unit_test(test_override_syntax),
        cmocka_unit_test(test_override_find),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
