/* The answer path in process: no allocation per query (malloc is interposed and counted while
 * queries run), and response invariants checked on every kind of answer, routing policies
 * included (weighted, multivalue, failover, geo with the test database, cidr, latency, a CNAME
 * policy, a policy in additional): ID and question echoed, QR set, size within the limit, and
 * every compression pointer pointing backwards into the message. */
#include <dlfcn.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include "compile/emit.h"
#include "dns/answer.h"
#include "policy/geo.h"
#include "zone/imgset_internal.h"
#include "zonejet/dname.h"
#include "zonejet/wire.h"

#include "asan.h"

/* ---- allocation counter: the executable's malloc family wins over libc's ---------------- */
#ifndef HAVE_ASAN
static volatile int counting;
static volatile unsigned long
    n_allocs; /* volatile: the compiler assumes malloc writes no globals */

extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t m);
extern void *__libc_realloc(void *p, size_t n);
extern void *__libc_memalign(size_t a, size_t n);

void *malloc(size_t n)
{
    n_allocs += counting;
    return __libc_malloc(n);
}

void *calloc(size_t n, size_t m)
{
    n_allocs += counting;
    return __libc_calloc(n, m);
}

void *realloc(void *p, size_t n)
{
    n_allocs += counting;
    return __libc_realloc(p, n);
}
#endif

static const char ZONE[] = "$ORIGIN example.com.\n$TTL 300\n"
                           "@ SOA ns1 host 1 2 3 4 60\n@ NS ns1\n@ NS ns2\n@ MX 5 mail\n"
                           "ns1 A 192.0.2.1\nns2 A 192.0.2.2\nmail A 192.0.2.3\n"
                           "mail AAAA 2001:db8::3\nwww A 192.0.2.4\nalias CNAME www\n"
                           "a1 CNAME a2\na2 CNAME a1\n*.wild A 192.0.2.5\n"
                           "sub NS ns.sub\nns.sub A 192.0.2.6\nd DNAME example.net.\n"
                           "t TXT \"0123456789012345678901234567890123456789012345678901234567\"\n"
                           "t TXT \"1123456789012345678901234567890123456789012345678901234567\"\n"
                           "t TXT \"2123456789012345678901234567890123456789012345678901234567\"\n"
                           "t TXT \"3123456789012345678901234567890123456789012345678901234567\"\n"
                           "t TXT \"4123456789012345678901234567890123456789012345678901234567\"\n"
                           "t TXT \"5123456789012345678901234567890123456789012345678901234567\"\n"
                           "t TXT \"6123456789012345678901234567890123456789012345678901234567\"\n"
                           "t TXT \"7123456789012345678901234567890123456789012345678901234567\"\n"
                           "t TXT \"8123456789012345678901234567890123456789012345678901234567\"\n";

/* A second zone with routing policies (docs/policies.md) */
static const char POLZONE[] = "$ORIGIN pol.example.\n$TTL 300\n"
                              "@ SOA ns1 host 1 2 3 4 60\n@ NS ns1\n@ MX 1 mx\n"
                              "ns1 A 192.0.2.1\na1 A 192.0.2.7\na2 A 192.0.2.8\n";
static const char POLICY[] = "check c tcp 127.0.0.1 9\n"
                             "set w A weighted a weight=1\n    10.0.0.1\n"
                             "set w A weighted b weight=2\n    10.0.0.2\n"
                             "set mv A multivalue m0\n    10.1.0.0\nset mv A multivalue m1\n"
                             "    10.1.0.1\nset mv A multivalue m2\n    10.1.0.2\n"
                             "set mx A failover p role=primary check=c\n    10.2.0.1\n"
                             "set mx A failover s role=secondary\n    10.2.0.2\n"
                             "set geo A geo us location=country:US\n    10.3.0.1\n"
                             "set geo A geo d location=*\n    10.3.0.2\n"
                             "cidr nets a 192.0.2.0/24\n"
                             "set cidr A cidr a collection=nets location=a\n    10.4.0.1\n"
                             "latency r1,r2 192.0.2.0/24\nlatency r2 *\n"
                             "set lat A latency x region=r1\n    10.5.0.1\n"
                             "set lat A latency y region=r2\n    10.5.0.2\n"
                             "set cn CNAME weighted x weight=1\n    a1\n"
                             "set cn CNAME weighted y weight=1\n    a2\n";
static zj_geo_t *geo;

static zj_imgset_t *set;
static zj_image_t *images[1];
static zj_answer_cfg_t cfg;

static int setup(void **state)
{
    (void)state;
    zj_build_opts_t o;
    memset(&o, 0, sizeof(o));
    o.quiet = true;
    zj_builder_t *b = zj_builder_new(&o);
    assert_int_equal(zj_builder_add_text(b, "t.zone", ZONE, sizeof(ZONE) - 1, NULL), 0);
    assert_int_equal(zj_builder_add_text(b, "p.zone", POLZONE, sizeof(POLZONE) - 1, NULL), 0);
    assert_int_equal(zj_builder_add_policy_text(b, "p.policy", POLICY, sizeof(POLICY) - 1, NULL),
                     0);
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(zj_builder_finish(b, &buf, &len), 0);
    zj_builder_free(b);
    char err[256];
    assert_int_equal(zj_image_open_mem(buf, len, &images[0], err, sizeof(err)), 0);
    assert_int_equal(zj_imgset_from_images(images, 1, &set), 0);
    assert_int_equal(zj_geo_open(ZJ_TEST_DATA "/geo_test.mmdb", &geo, err, sizeof(err)), 0);
    set->geo = geo;
    zj_answer_cfg_default(&cfg);
    static const uint8_t nsid[] = "t1";
    cfg.nsid = nsid;
    cfg.nsid_len = 2;
    cfg.version = "v";
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    zj_imgset_close(set);
    zj_image_close(images[0]);
    zj_geo_close(geo);
    return 0;
}

static size_t make_query(uint8_t *q, const char *name, uint16_t type, bool edns)
{
    memset(q, 0, 12);
    q[0] = 0xAB;
    q[1] = 0xCD;
    q[5] = 1;
    uint8_t root = 0;
    int n = zj_dname_from_text(name, strlen(name), &root, q + 12);
    size_t pos = 12 + (size_t)n;
    zj_put16(q + pos, type);
    zj_put16(q + pos + 2, ZJ_C_IN);
    pos += 4;
    if (edns) {
        q[11] = 1;
        /* OPT: NSID, and ECS 192.0.2.0/24 for the policies */
        static const uint8_t opt[] = {0, 0, 41, 0x04, 0xD0, 0, 0, 0x80, 0,  0, 15,  0, 3,
                                      0, 0, 0,  8,    0,    7, 0, 1,    24, 0, 192, 0, 2};
        memcpy(q + pos, opt, sizeof(opt));
        pos += sizeof(opt);
    }
    return pos;
}

/* Every pointer in the response points before itself (RFC 1035 §4.1.4: a prior occurrence). */
static void check_pointers(const uint8_t *m, size_t len)
{
    /* walk the names of all records after the question */
    size_t pos = 12;
    uint16_t counts[4] = {zj_be16(m + 4), zj_be16(m + 6), zj_be16(m + 8), zj_be16(m + 10)};
    for (int sec = 0; sec < 4; sec++) {
        for (uint16_t i = 0; i < counts[sec]; i++) {
            for (;;) {
                assert_true(pos < len);
                uint8_t l = m[pos];
                if ((l & 0xC0) == 0xC0) {
                    assert_true((size_t)(zj_be16(m + pos) & 0x3FFF) < pos);
                    pos += 2;
                    break;
                }
                pos += (size_t)l + 1;
                if (l == 0) {
                    break;
                }
            }
            pos += sec == 0 ? 4 : 10u + zj_be16(m + pos + 8);
        }
    }
    assert_int_equal(pos, len);
}

static void test_answers_allocate_nothing_and_are_well_formed(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        uint16_t type;
    } qs[] = {
        {"www.example.com.", ZJ_T_A},   {"WWW.Example.com.", ZJ_T_AAAA},
        {"nope.example.com.", ZJ_T_A},  {"alias.example.com.", ZJ_T_A},
        {"a1.example.com.", ZJ_T_A},    {"x.y.wild.example.com.", ZJ_T_A},
        {"h.sub.example.com.", ZJ_T_A}, {"sub.example.com.", ZJ_T_DS},
        {"example.com.", ZJ_T_MX},      {"example.com.", ZJ_T_NS},
        {"example.com.", ZJ_T_ANY},     {"q.d.example.com.", ZJ_T_A},
        {"t.example.com.", ZJ_T_TXT},   {"example.org.", ZJ_T_A},
        {"example.com.", ZJ_T_AXFR},    {"example.com.", ZJ_T_SOA},
        {"w.pol.example.", ZJ_T_A},     {"mv.pol.example.", ZJ_T_A},
        {"mx.pol.example.", ZJ_T_A},    {"pol.example.", ZJ_T_MX},
        {"geo.pol.example.", ZJ_T_A},   {"cidr.pol.example.", ZJ_T_A},
        {"lat.pol.example.", ZJ_T_A},   {"cn.pol.example.", ZJ_T_A},
        {"mv.pol.example.", ZJ_T_ANY},  {"cn.pol.example.", ZJ_T_CNAME},
    };
    /* without ECS the policies see the packet's source */
    struct sockaddr_in6 src6 = {.sin6_family = AF_INET6};
    inet_pton(AF_INET6, "::ffff:192.0.2.9", &src6.sin6_addr);
#ifndef HAVE_ASAN
    /* the counter itself works: one allocation while counting is seen */
    counting = 1;
    void *volatile probe = malloc(16);
    counting = 0;
    free(probe);
    assert_int_equal(n_allocs, 1);
    n_allocs = 0;
#endif
    zj_responder_t r;
    zj_responder_init(&r, &cfg, 1);
    uint8_t q[512];
    static uint8_t out[65535];
    for (int tcp = 0; tcp < 2; tcp++) {
        for (int edns = 0; edns < 2; edns++) {
            for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++) {
                size_t ql = make_query(q, qs[i].name, qs[i].type, edns != 0);
                size_t cap = tcp ? sizeof(out) : 4096;
#ifndef HAVE_ASAN
                counting = 1;
#endif
                size_t n =
                    zj_answer(&r, set, q, ql, (const struct sockaddr *)&src6, tcp != 0, out, cap);
#ifndef HAVE_ASAN
                counting = 0;
#endif
                assert_true(n >= 12);
                assert_memory_equal(out, q, 2);
                assert_true(out[2] & 0x80);
                assert_true(n <= (tcp ? 65535u : (edns ? 1232u : 512u)));
                size_t qend = 12 + (size_t)zj_dname_len(q + 12, ql - 12) + 4;
                assert_memory_equal(out + 12, q + 12, qend - 12);
                check_pointers(out, n);
            }
        }
    }
#ifndef HAVE_ASAN
    assert_int_equal(n_allocs, 0);
#endif
    assert_true(r.stats.policy >= 4 * 10); /* every policy query chose through a policy */
}

/* Without EDNS the 9 TXT records do not fit 512 bytes: TC and whole RRsets only. */
static void test_truncation_keeps_whole_rrsets(void **state)
{
    (void)state;
    zj_responder_t r;
    zj_responder_init(&r, &cfg, 1);
    uint8_t q[512];
    uint8_t out[4096];
    size_t ql = make_query(q, "t.example.com.", ZJ_T_TXT, false);
    size_t n = zj_answer(&r, set, q, ql, NULL, false, out, sizeof(out));
    assert_true(n <= 512);
    assert_true(out[2] & 0x02); /* TC */
    assert_int_equal(zj_be16(out + 6), 0);
    ql = make_query(q, "t.example.com.", ZJ_T_TXT, true);
    n = zj_answer(&r, set, q, ql, NULL, false, out, sizeof(out));
    assert_false(out[2] & 0x02);
    assert_int_equal(zj_be16(out + 6), 9);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_answers_allocate_nothing_and_are_well_formed),
        cmocka_unit_test(test_truncation_keeps_whole_rrsets),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
