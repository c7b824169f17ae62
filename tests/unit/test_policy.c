/* Routing policies end to end through zj_answer, on an image compiled from zone and policy text
 * (docs/policies.md), with health bytes owned by the test and the geolocation test database
 * (data/geo_test.mmdb). Route 53's rules: weighted shares within a binomial tolerance with a
 * fixed seed (and the same sequence for the same seed), zero weights only when every non-zero
 * set is unhealthy; failover flipping with the primary's health; multivalue never more than 8,
 * distinct, and only healthy values while any is; geolocation most specific match, the larger
 * region when a match is unhealthy, the default, NODATA without one; CIDR longest prefix and
 * "*"; latency preference order, fallback past unhealthy regions and to the "*" entry; a CNAME
 * policy whose chosen target drives the chain; policies in ANY (NODATA with the SOA when every
 * policy there chose nothing) and in additional records; the client taken from ECS, from the
 * packet source and from an IPv4-mapped source or ECS address; and the ECS scope of the
 * response, including SOURCE PREFIX-LENGTH 0. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "zonejet/dname.h"
#include "zonejet/err.h"
#include "zonejet/wire.h"
#include "zonejet/zone.h"
#include "compile/emit.h"
#include "dns/answer.h"
#include "policy/geo.h"
#include "policy/policy.h"
#include "zone/imgset.h"
#include "zone/imgset_internal.h"

static const char ZONE[] = "$ORIGIN pol.test.\n$TTL 300\n"
                           "@ SOA ns1 hostmaster 1 3600 900 604800 60\n@ NS ns1\n"
                           "@ MX 10 mx\n"
                           "ns1 A 192.0.2.53\na1 A 198.51.100.1\na2 A 198.51.100.2\n"
                           "w TXT \"beside a policy\"\n";

static const char POLICY[] =
    "$TTL 60\n"
    "check ca tcp 127.0.0.1 9\ncheck cb tcp 127.0.0.1 9\ncheck cz tcp 127.0.0.1 9\n"
    "check cp tcp 127.0.0.1 9\ncheck cs tcp 127.0.0.1 9\n"
    "check mva tcp 127.0.0.1 9\ncheck mvb tcp 127.0.0.1 9\n"
    "check gca tcp 127.0.0.1 9\ncheck gus tcp 127.0.0.1 9\n"
    "check luse tcp 127.0.0.1 9\ncheck leuw tcp 127.0.0.1 9\n"
    "check cl tcp 127.0.0.1 9\ncheck cr tcp 127.0.0.1 9\n"
    /* weighted 1/3/0 */
    "set w A weighted one weight=1\n    10.0.1.1\n"
    "set w A weighted three weight=3\n    10.0.3.1\n    10.0.3.2\n"
    "set w A weighted zero weight=0\n    10.0.0.1\n"
    /* all weights zero */
    "set wz A weighted x weight=0\n    10.1.0.1\n"
    "set wz A weighted y weight=0\n    10.1.0.2\n"
    "set wz A weighted z weight=0\n    10.1.0.3\n"
    /* weighted with checks */
    "set hw A weighted a weight=1 check=ca\n    10.8.0.1\n"
    "set hw A weighted b weight=3 check=cb\n    10.8.0.2\n"
    "set hw A weighted z weight=0 check=cz\n    10.8.0.3\n"
    /* failover */
    "set fo A failover p role=primary check=cp\n    10.9.0.1\n"
    "set fo A failover s role=secondary check=cs\n    10.9.0.2\n"
    /* the MX target answers by failover too */
    "set mx A failover p role=primary check=cp\n    10.9.1.1\n"
    "set mx A failover s role=secondary\n    10.9.1.2\n"
    /* multivalue: 10 values without checks, 10 values behind two checks */
    "set mv A multivalue m0\n    10.2.0.0\nset mv A multivalue m1\n    10.2.0.1\n"
    "set mv A multivalue m2\n    10.2.0.2\nset mv A multivalue m3\n    10.2.0.3\n"
    "set mv A multivalue m4\n    10.2.0.4\nset mv A multivalue m5\n    10.2.0.5\n"
    "set mv A multivalue m6\n    10.2.0.6\nset mv A multivalue m7\n    10.2.0.7\n"
    "set mv A multivalue m8\n    10.2.0.8\nset mv A multivalue m9\n    10.2.0.9\n"
    "set mvh A multivalue h0 check=mva\n    10.12.0.0\nset mvh A multivalue h1 check=mva\n"
    "    10.12.0.1\nset mvh A multivalue h2 check=mva\n    10.12.0.2\n"
    "set mvh A multivalue h3 check=mva\n    10.12.0.3\nset mvh A multivalue h4 check=mva\n"
    "    10.12.0.4\nset mvh A multivalue h5 check=mvb\n    10.12.0.5\n"
    "set mvh A multivalue h6 check=mvb\n    10.12.0.6\nset mvh A multivalue h7 check=mvb\n"
    "    10.12.0.7\nset mvh A multivalue h8 check=mvb\n    10.12.0.8\n"
    "set mvh A multivalue h9 check=mvb\n    10.12.0.9\n"
    /* weighted CNAME */
    "set cn CNAME weighted to-a1 weight=1\n    a1\n"
    "set cn CNAME weighted to-a2 weight=1\n    a2.pol.test.\n"
    /* geolocation */
    "set geo A geo ca location=subdivision:US-CA check=gca\n    10.3.0.1\n"
    "set geo A geo us location=country:US check=gus\n    10.3.0.3\n"
    "set geo A geo de location=country:DE\n    10.3.0.4\n"
    "set geo A geo eu location=continent:EU\n    10.3.0.5\n"
    "set geo A geo as location=continent:AS\n    10.3.0.6\n"
    "set geo A geo by location=subdivision:DE-BY\n    10.3.0.8\n"
    "set geo A geo na location=continent:NA\n    10.3.0.10\n"
    "set geo A geo default location=*\n    10.3.0.9\n"
    "set geond A geo us location=country:US\n    10.4.0.1\n"
    "set geond A geo eu location=continent:EU\n    10.4.0.2\n"
    /* CIDR */
    "cidr nets office 10.20.0.0/16 2001:db8:20::/48\n"
    "cidr nets lab 10.20.5.0/24 2001:db8:20:5::/64\n"
    "cidr nets host 10.20.5.7/32\n"
    "cidr nets branch 10.30.0.0/16\n"
    "set cidr A cidr office collection=nets location=office\n    10.5.0.1\n"
    "set cidr A cidr lab collection=nets location=lab check=cl\n    10.5.0.2\n"
    "set cidr A cidr host collection=nets location=host\n    10.5.0.3\n"
    "set cidr A cidr rest collection=nets location=* check=cr\n    10.5.0.9\n"
    "set cidrnd A cidr office collection=nets location=office\n    10.7.0.1\n"
    /* latency */
    "latency us-east,eu-west 10.40.0.0/16\n"
    "latency eu-west,us-east 10.41.0.0/16\n"
    "latency eu-west,us-east 2001:db8:41::/48\n"
    "latency ap-tokyo,eu-west continent:AS\n"
    "latency eu-west,ap-tokyo country:DE\n"
    "latency us-east,eu-west,ap-tokyo *\n"
    "set lat A latency use region=us-east check=luse\n    10.6.0.1\n"
    "set lat A latency euw region=eu-west check=leuw\n    10.6.0.2\n"
    "set lat A latency tyo region=ap-tokyo\n    10.6.0.3\n";

static zj_image_t *images[1];
static zj_imgset_t *set;
static zj_geo_t *geo;
static zj_answer_cfg_t cfg;
#define MAX_CHECKS 64
static uint8_t health_bytes[MAX_CHECKS];
static const uint8_t *health_ptrs[MAX_CHECKS];

static int setup(void **state)
{
    (void)state;
    zj_build_opts_t o;
    memset(&o, 0, sizeof(o));
    o.quiet = true;
    zj_builder_t *b = zj_builder_new(&o);
    assert_int_equal(zj_builder_add_text(b, "pol.test.zone", ZONE, sizeof(ZONE) - 1, NULL), 0);
    assert_int_equal(
        zj_builder_add_policy_text(b, "pol.test.policy", POLICY, sizeof(POLICY) - 1, NULL), 0);
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(zj_builder_finish(b, &buf, &len), 0);
    zj_builder_free(b);
    char err[256];
    if (zj_image_open_mem(buf, len, &images[0], err, sizeof(err)) != 0) {
        fail_msg("%s", err);
    }
    assert_true(images[0]->n_checks <= MAX_CHECKS);
    for (uint32_t i = 0; i < images[0]->n_checks; i++) {
        health_bytes[i] = 1;
        health_ptrs[i] = &health_bytes[i];
    }
    images[0]->health = health_ptrs;
    assert_int_equal(zj_imgset_from_images(images, 1, &set), 0);
    if (zj_geo_open(ZJ_TEST_DATA "/geo_test.mmdb", &geo, err, sizeof(err)) != 0) {
        fail_msg("%s", err);
    }
    set->geo = geo;
    zj_answer_cfg_default(&cfg);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    zj_imgset_close(set);
    images[0]->health = NULL;
    zj_image_close(images[0]);
    zj_geo_close(geo);
    return 0;
}

/* Set the health of check name (by its name in the image). */
static void health(const char *name, bool healthy)
{
    const zj_image_t *img = images[0];
    for (uint32_t i = 0; i < img->n_checks; i++) {
        if (strcmp(img->strs + img->checks[i].name_off, name) == 0) {
            __atomic_store_n(&health_bytes[i], healthy ? 1 : 0, __ATOMIC_RELAXED);
            return;
        }
    }
    fail_msg("no check %s", name);
}

static void all_healthy(void)
{
    for (uint32_t i = 0; i < images[0]->n_checks; i++) {
        health_bytes[i] = 1;
    }
}

/* ---- queries and responses ------------------------------------------------------------------ */

typedef struct ecs {
    int family; /* 0: no ECS option */
    const char *addr;
    uint8_t source;
} ecs_t;

static size_t make_query(uint8_t *q, const char *name, uint16_t type, const ecs_t *e)
{
    memset(q, 0, 12);
    q[0] = 0x12;
    q[1] = 0x34;
    q[5] = 1;
    uint8_t root = 0;
    int n = zj_dname_from_text(name, strlen(name), &root, q + 12);
    assert_true(n > 0);
    size_t pos = 12 + (size_t)n;
    zj_put16(q + pos, type);
    zj_put16(q + pos + 2, ZJ_C_IN);
    pos += 4;
    q[11] = 1; /* an OPT record, with an ECS option when e->family != 0 */
    uint8_t *opt = q + pos;
    opt[0] = 0;
    zj_put16(opt + 1, ZJ_T_OPT);
    zj_put16(opt + 3, 4096);
    zj_put32(opt + 5, 0);
    size_t rdlen = 0;
    if (e != NULL && e->family != 0) {
        uint8_t a[16] = {0};
        int af = e->family == 1 ? AF_INET : AF_INET6;
        assert_int_equal(inet_pton(af, e->addr, a), 1);
        size_t alen = ((size_t)e->source + 7) / 8;
        if (e->source % 8 != 0) {
            a[alen - 1] &= (uint8_t)(0xFF00u >> (e->source % 8));
        }
        uint8_t *o = opt + 11;
        zj_put16(o, ZJ_EDNS_OPT_ECS);
        zj_put16(o + 2, (uint16_t)(4 + alen));
        zj_put16(o + 4, (uint16_t)e->family);
        o[6] = e->source;
        o[7] = 0;
        memcpy(o + 8, a, alen);
        rdlen = 8 + alen;
    }
    zj_put16(opt + 9, (uint16_t)rdlen);
    return pos + 11 + rdlen;
}

typedef struct rr {
    int section; /* 0 answer, 1 authority, 2 additional */
    uint16_t type;
    const uint8_t *rd;
    uint16_t rdlen;
} rr_t;

typedef struct resp {
    uint8_t buf[4096];
    size_t len;
    int rcode;
    rr_t rrs[64];
    unsigned n_rrs;
    unsigned an, ns, ar;
    int scope; /* ECS scope in the response, -1 without ECS */
    uint16_t ecs_family;
    uint8_t ecs_source;
    uint8_t ecs_addr[16];
    size_t ecs_addr_len;
} resp_t;

static size_t skip_name(const uint8_t *m, size_t len, size_t pos)
{
    for (;;) {
        assert_true(pos < len);
        uint8_t l = m[pos];
        if ((l & 0xC0) == 0xC0) {
            return pos + 2;
        }
        pos += (size_t)l + 1;
        if (l == 0) {
            return pos;
        }
    }
}

static void parse(resp_t *r)
{
    const uint8_t *m = r->buf;
    assert_true(r->len >= 12);
    r->rcode = m[3] & 0xF;
    r->an = zj_be16(m + 6);
    r->ns = zj_be16(m + 8);
    r->ar = zj_be16(m + 10);
    r->n_rrs = 0;
    r->scope = -1;
    size_t pos = skip_name(m, r->len, 12) + 4;
    unsigned counts[3] = {r->an, r->ns, r->ar};
    for (int sec = 0; sec < 3; sec++) {
        for (unsigned i = 0; i < counts[sec]; i++) {
            pos = skip_name(m, r->len, pos);
            assert_true(pos + 10 <= r->len);
            uint16_t type = zj_be16(m + pos);
            uint16_t rdlen = zj_be16(m + pos + 8);
            const uint8_t *rd = m + pos + 10;
            assert_true(pos + 10 + rdlen <= r->len);
            pos += 10u + rdlen;
            if (type == ZJ_T_OPT) {
                for (size_t o = 0; o + 4 <= rdlen;) {
                    uint16_t code = zj_be16(rd + o), olen = zj_be16(rd + o + 2);
                    if (code == ZJ_EDNS_OPT_ECS) {
                        assert_true(olen >= 4 && olen <= 4 + 16 && o + 4 + olen <= rdlen);
                        r->ecs_family = zj_be16(rd + o + 4);
                        r->ecs_source = rd[o + 6];
                        r->scope = rd[o + 7];
                        r->ecs_addr_len = olen - 4u;
                        memcpy(r->ecs_addr, rd + o + 8, r->ecs_addr_len);
                    }
                    o += 4u + olen;
                }
                continue;
            }
            assert_true(r->n_rrs < 64);
            r->rrs[r->n_rrs++] = (rr_t){sec, type, rd, rdlen};
        }
    }
    assert_int_equal(pos, r->len);
}

static void ask_from(zj_responder_t *z, resp_t *r, const char *name, uint16_t type, const ecs_t *e,
                     const struct sockaddr *src)
{
    uint8_t q[512];
    size_t ql = make_query(q, name, type, e);
    r->len = zj_answer(z, set, q, ql, src, false, r->buf, sizeof(r->buf));
    parse(r);
}

static void ask(zj_responder_t *z, resp_t *r, const char *name, uint16_t type, const ecs_t *e)
{
    ask_from(z, r, name, type, e, NULL);
}

/* The A records of a section as dotted quads, joined by spaces, in answer order. */
static const char *a_list(const resp_t *r, int section, char *out, size_t cap)
{
    out[0] = 0;
    for (unsigned i = 0; i < r->n_rrs; i++) {
        const rr_t *x = &r->rrs[i];
        if (x->section != section || x->type != ZJ_T_A) {
            continue;
        }
        char t[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, x->rd, t, sizeof(t));
        size_t l = strlen(out);
        snprintf(out + l, cap - l, "%s%s", l ? " " : "", t);
    }
    return out;
}

static void expect_a(zj_responder_t *z, const char *name, const ecs_t *e, const char *want,
                     int scope)
{
    resp_t r;
    char got[512];
    ask(z, &r, name, ZJ_T_A, e);
    assert_int_equal(r.rcode, ZJ_RCODE_NOERROR);
    a_list(&r, 0, got, sizeof(got));
    if (strcmp(got, want) != 0) {
        fail_msg("%s from %s: answer \"%s\", expected \"%s\"", name, e && e->family ? e->addr : "-",
                 got, want);
    }
    if (scope >= 0 && r.scope != scope) {
        fail_msg("%s from %s: scope %d, expected %d", name, e && e->family ? e->addr : "-", r.scope,
                 scope);
    }
}

static void expect_nodata(zj_responder_t *z, const char *name, const ecs_t *e, int scope)
{
    resp_t r;
    ask(z, &r, name, ZJ_T_A, e);
    assert_int_equal(r.rcode, ZJ_RCODE_NOERROR);
    assert_int_equal(r.an, 0);
    assert_int_equal(r.ns, 1);
    assert_int_equal(r.rrs[0].type, ZJ_T_SOA);
    if (scope >= 0) {
        assert_int_equal(r.scope, scope);
    }
}

static ecs_t v4(const char *addr, uint8_t source)
{
    return (ecs_t){1, addr, source};
}

static ecs_t v6(const char *addr, uint8_t source)
{
    return (ecs_t){2, addr, source};
}

/* |observed - n p| within 5 standard deviations of a binomial(n, p): a false alarm about once
 * in 1.7 million runs, and the seed is fixed anyway. */
static void expect_share(unsigned observed, unsigned n, double p, const char *what)
{
    double var = (double)n * p * (1.0 - p);
    double d = (double)observed - (double)n * p;
    if (d * d > 25.0 * var) {
        fail_msg("%s: %u of %u, expected %.0f with variance %.0f", what, observed, n, n * p, var);
    }
}

/* ---- weighted ---------------------------------------------------------------------------------
 */

static void test_weighted_shares_follow_the_weights(void **state)
{
    (void)state;
    all_healthy();
    zj_responder_t z;
    zj_responder_init(&z, &cfg, 42);
    const unsigned n = 4000;
    unsigned one = 0, three = 0;
    for (unsigned i = 0; i < n; i++) {
        resp_t r;
        char got[128];
        ecs_t e = v4("192.0.2.1", 24);
        ask(&z, &r, "w.pol.test.", ZJ_T_A, &e);
        assert_int_equal(r.scope, 0); /* weighted does not depend on the address */
        a_list(&r, 0, got, sizeof(got));
        if (strcmp(got, "10.0.1.1") == 0) {
            one++;
        } else if (strcmp(got, "10.0.3.1 10.0.3.2") == 0) {
            three++;
        } else {
            fail_msg("unexpected answer \"%s\"", got); /* never the zero-weight set */
        }
    }
    expect_share(one, n, 0.25, "weight 1 of 4");
    assert_int_equal(one + three, n);
    assert_true(z.stats.policy == n);
}

static void test_weighted_same_seed_same_sequence(void **state)
{
    (void)state;
    all_healthy();
    zj_responder_t z1, z2, z3;
    zj_responder_init(&z1, &cfg, 7);
    zj_responder_init(&z2, &cfg, 7);
    zj_responder_init(&z3, &cfg, 8);
    unsigned differ = 0;
    for (int i = 0; i < 200; i++) {
        resp_t a, b, c;
        char sa[128], sb[128], sc[128];
        ask(&z1, &a, "w.pol.test.", ZJ_T_A, NULL);
        ask(&z2, &b, "w.pol.test.", ZJ_T_A, NULL);
        ask(&z3, &c, "w.pol.test.", ZJ_T_A, NULL);
        assert_string_equal(a_list(&a, 0, sa, sizeof(sa)), a_list(&b, 0, sb, sizeof(sb)));
        differ += strcmp(sa, a_list(&c, 0, sc, sizeof(sc))) != 0;
    }
    assert_true(differ > 0); /* another seed, another sequence */
}

static void test_weighted_all_zero_is_equal_shares(void **state)
{
    (void)state;
    all_healthy();
    zj_responder_t z;
    zj_responder_init(&z, &cfg, 3);
    const unsigned n = 3000;
    unsigned c[3] = {0, 0, 0};
    for (unsigned i = 0; i < n; i++) {
        resp_t r;
        char got[128];
        ask(&z, &r, "wz.pol.test.", ZJ_T_A, NULL);
        a_list(&r, 0, got, sizeof(got));
        assert_true(strlen(got) == 8 && strncmp(got, "10.1.0.", 7) == 0);
        c[got[7] - '1']++;
    }
    for (int k = 0; k < 3; k++) {
        expect_share(c[k], n, 1.0 / 3.0, "one of three zero weights");
    }
}

static void test_weighted_health_and_zero_weight_fallback(void **state)
{
    (void)state;
    all_healthy();
    zj_responder_t z;
    zj_responder_init(&z, &cfg, 5);
    /* b (weight 3) down: always a */
    health("cb", false);
    for (int i = 0; i < 200; i++) {
        expect_a(&z, "hw.pol.test.", NULL, "10.8.0.1", -1);
    }
    /* every non-zero set down: the zero-weight set */
    health("ca", false);
    for (int i = 0; i < 100; i++) {
        expect_a(&z, "hw.pol.test.", NULL, "10.8.0.3", -1);
    }
    /* everything down: all count as healthy, and the weights apply again (zero never) */
    health("cz", false);
    unsigned a = 0;
    const unsigned n = 2000;
    for (unsigned i = 0; i < n; i++) {
        resp_t r;
        char got[64];
        ask(&z, &r, "hw.pol.test.", ZJ_T_A, NULL);
        a_list(&r, 0, got, sizeof(got));
        assert_true(strcmp(got, "10.8.0.1") == 0 || strcmp(got, "10.8.0.2") == 0);
        a += strcmp(got, "10.8.0.1") == 0;
    }
    expect_share(a, n, 0.25, "weight 1 of 4 with every set unhealthy");
    all_healthy();
}

/* ---- failover ---------------------------------------------------------------------------------
 */

static void test_failover_flips_with_the_primary(void **state)
{
    (void)state;
    all_healthy();
    zj_responder_t z;
    zj_responder_init(&z, &cfg, 1);
    expect_a(&z, "fo.pol.test.", NULL, "10.9.0.1", -1);
    health("cp", false);
    expect_a(&z, "fo.pol.test.", NULL, "10.9.0.2", -1);
    health("cs", false); /* both down: the primary (none healthy: all count as healthy) */
    expect_a(&z, "fo.pol.test.", NULL, "10.9.0.1", -1);
    health("cs", true);
    expect_a(&z, "fo.pol.test.", NULL, "10.9.0.2", -1);
    health("cp", true);
    expect_a(&z, "fo.pol.test.", NULL, "10.9.0.1", -1);
    health("cs", false); /* secondary down, primary up: primary */
    expect_a(&z, "fo.pol.test.", NULL, "10.9.0.1", -1);
    all_healthy();
}

/* ---- multivalue -------------------------------------------------------------------------------
 */

/* The answer's A records as a bit set over the last octet; checks they are distinct. */
static unsigned mv_bits(const resp_t *r, uint8_t net)
{
    unsigned bits = 0, n = 0;
    for (unsigned i = 0; i < r->n_rrs; i++) {
        const rr_t *x = &r->rrs[i];
        if (x->section != 0) {
            continue;
        }
        assert_int_equal(x->type, ZJ_T_A);
        assert_int_equal(x->rd[0], 10);
        assert_int_equal(x->rd[1], net);
        assert_true(x->rd[3] < 10);
        assert_false(bits & (1u << x->rd[3]));
        bits |= 1u << x->rd[3];
        n++;
    }
    assert_int_equal(n, r->an);
    return bits;
}

static void test_multivalue_at_most_eight_distinct_random(void **state)
{
    (void)state;
    all_healthy();
    zj_responder_t z;
    zj_responder_init(&z, &cfg, 11);
    unsigned seen[10] = {0};
    unsigned first[10] = {0};
    const unsigned n = 2000;
    for (unsigned i = 0; i < n; i++) {
        resp_t r;
        ask(&z, &r, "mv.pol.test.", ZJ_T_A, NULL);
        assert_int_equal(r.an, 8);
        unsigned bits = mv_bits(&r, 2);
        for (int k = 0; k < 10; k++) {
            seen[k] += (bits >> k) & 1u;
        }
        first[r.rrs[0].rd[3]]++;
    }
    for (int k = 0; k < 10; k++) {
        expect_share(seen[k], n, 0.8, "a value in a multivalue answer");
        expect_share(first[k], n, 0.1, "a value first in a multivalue answer");
    }
}

/* The chosen sets are one RRset to the client: when they do not all fit, none is sent (TC). */
static void test_multivalue_truncates_whole(void **state)
{
    (void)state;
    all_healthy();
    zj_responder_t z;
    zj_responder_init(&z, &cfg, 13);
    uint8_t q[512];
    resp_t r;
    size_t ql = make_query(q, "mv.pol.test.", ZJ_T_A, NULL);
    /* room for the question, the OPT and about three of the eight records */
    r.len = zj_answer(&z, set, q, ql, NULL, false, r.buf, ql + 11 + 3 * 16 + 8);
    parse(&r);
    assert_true(r.buf[2] & 0x02); /* TC */
    assert_int_equal(r.an, 0);
    r.len = zj_answer(&z, set, q, ql, NULL, false, r.buf, sizeof(r.buf));
    parse(&r);
    assert_false(r.buf[2] & 0x02);
    assert_int_equal(r.an, 8);
}

static void test_multivalue_only_healthy_while_any_is(void **state)
{
    (void)state;
    all_healthy();
    zj_responder_t z;
    zj_responder_init(&z, &cfg, 12);
    resp_t r;
    ask(&z, &r, "mvh.pol.test.", ZJ_T_A, NULL);
    assert_int_equal(r.an, 8);
    health("mva", false); /* h0-h4 down: exactly h5-h9 */
    for (int i = 0; i < 50; i++) {
        ask(&z, &r, "mvh.pol.test.", ZJ_T_A, NULL);
        assert_int_equal(r.an, 5);
        assert_int_equal(mv_bits(&r, 12), 0x3E0u);
    }
    health("mvb", false); /* none healthy: up to 8 of the unhealthy ones */
    unsigned all = 0;
    for (int i = 0; i < 50; i++) {
        ask(&z, &r, "mvh.pol.test.", ZJ_T_A, NULL);
        assert_int_equal(r.an, 8);
        all |= mv_bits(&r, 12);
    }
    assert_int_equal(all, 0x3FFu);
    health("mva", true); /* h0-h4 back: only those */
    ask(&z, &r, "mvh.pol.test.", ZJ_T_A, NULL);
    assert_int_equal(mv_bits(&r, 12), 0x1Fu);
    all_healthy();
}

/* ---- geolocation ------------------------------------------------------------------------------
 */

static void test_geo_most_specific_match(void **state)
{
    (void)state;
    all_healthy();
    zj_responder_t z;
    zj_responder_init(&z, &cfg, 1);
    ecs_t e;
    e = v4("192.0.2.5", 32); /* NA, US, CA */
    expect_a(&z, "geo.pol.test.", &e, "10.3.0.1", 24);
    e = v4("198.51.100.9", 24); /* EU, DE, BY */
    expect_a(&z, "geo.pol.test.", &e, "10.3.0.8", 24);
    e = v4("10.0.0.1", 32); /* EU, FR: the continent */
    expect_a(&z, "geo.pol.test.", &e, "10.3.0.5", 16);
    e = v4("203.0.113.1", 32); /* AS, JP */
    expect_a(&z, "geo.pol.test.", &e, "10.3.0.6", 25);
    e = v4("10.1.2.3", 32); /* NA, CA (Canada), QC: the continent */
    expect_a(&z, "geo.pol.test.", &e, "10.3.0.10", 16);
    e = v4("203.0.113.200", 32); /* OC: no set, the default */
    expect_a(&z, "geo.pol.test.", &e, "10.3.0.9", 25);
    e = v4("8.8.8.8", 32); /* no location: the default */
    expect_a(&z, "geo.pol.test.", &e, "10.3.0.9", 7);
    e = v6("2001:db8:1::5", 56); /* NA, US, TX: the country */
    expect_a(&z, "geo.pol.test.", &e, "10.3.0.3", 48);
    e = v6("2001:db8:2::", 48); /* EU, GB, ENG */
    expect_a(&z, "geo.pol.test.", &e, "10.3.0.5", 47);
}

static void test_geo_unhealthy_match_falls_to_the_larger_region(void **state)
{
    (void)state;
    all_healthy();
    zj_responder_t z;
    zj_responder_init(&z, &cfg, 1);
    ecs_t e = v4("192.0.2.5", 32);
    health("gca", false); /* US-CA down: US */
    expect_a(&z, "geo.pol.test.", &e, "10.3.0.3", 24);
    health("gus", false); /* US down too: NA */
    expect_a(&z, "geo.pol.test.", &e, "10.3.0.10", 24);
    all_healthy();
}

static void test_geo_without_default_is_nodata(void **state)
{
    (void)state;
    all_healthy();
    zj_responder_t z;
    zj_responder_init(&z, &cfg, 1);
    ecs_t e = v4("192.0.2.5", 32);
    expect_a(&z, "geond.pol.test.", &e, "10.4.0.1", 24);
    e = v4("203.0.113.1", 32);
    expect_nodata(&z, "geond.pol.test.", &e, 25);
}

static void test_geo_without_database_answers_the_default(void **state)
{
    (void)state;
    all_healthy();
    zj_responder_t z;
    zj_responder_init(&z, &cfg, 1);
    set->geo = NULL;
    ecs_t e = v4("192.0.2.5", 32);
    expect_a(&z, "geo.pol.test.", &e, "10.3.0.9", 0);
    expect_nodata(&z, "geond.pol.test.", &e, 0);
    set->geo = geo;
}

/* ---- CIDR ----------------------------------------------------------------------------------- */

static void test_cidr_longest_prefix_and_default(void **state)
{
    (void)state;
    all_healthy();
    zj_responder_t z;
    zj_responder_init(&z, &cfg, 1);
    ecs_t e;
    e = v4("10.20.5.7", 32);
    expect_a(&z, "cidr.pol.test.", &e, "10.5.0.3", 32);
    e = v4("10.20.5.8", 32); /* lab around the host /32: 10.20.5.8/29 */
    expect_a(&z, "cidr.pol.test.", &e, "10.5.0.2", 29);
    e = v4("10.20.9.0", 24); /* office, past the lab /24: 10.20.8.0/21 */
    expect_a(&z, "cidr.pol.test.", &e, "10.5.0.1", 21);
    e = v4("10.30.1.0", 24); /* branch has no set: "*" */
    expect_a(&z, "cidr.pol.test.", &e, "10.5.0.9", 16);
    e = v4("10.128.0.0", 16); /* no prefix: "*" */
    expect_a(&z, "cidr.pol.test.", &e, "10.5.0.9", 9);
    e = v6("2001:db8:20:5::1", 64);
    expect_a(&z, "cidr.pol.test.", &e, "10.5.0.2", 64);
    e = v6("2001:db8:20:6::", 64);
    expect_a(&z, "cidr.pol.test.", &e, "10.5.0.1", 63);
    /* no default: NODATA with the scope of the miss */
    e = v4("10.128.0.0", 16);
    expect_nodata(&z, "cidrnd.pol.test.", &e, 9);
    e = v4("10.20.9.0", 24);
    expect_a(&z, "cidrnd.pol.test.", &e, "10.7.0.1", 21);
    e = v4("10.20.5.8", 32); /* lab has no set here: the collection's lab is not office */
    expect_nodata(&z, "cidrnd.pol.test.", &e, 29);
}

static void test_cidr_unhealthy_location_falls_to_default(void **state)
{
    (void)state;
    all_healthy();
    zj_responder_t z;
    zj_responder_init(&z, &cfg, 1);
    ecs_t e = v4("10.20.5.8", 32);
    health("cl", false);
    expect_a(&z, "cidr.pol.test.", &e, "10.5.0.9", 29);
    health("cr", false); /* both down: the location's set */
    expect_a(&z, "cidr.pol.test.", &e, "10.5.0.2", 29);
    all_healthy();
}

static void test_client_from_packet_source(void **state)
{
    (void)state;
    all_healthy();
    zj_responder_t z;
    zj_responder_init(&z, &cfg, 1);
    resp_t r;
    char got[64];
    struct sockaddr_in s4 = {.sin_family = AF_INET};
    inet_pton(AF_INET, "10.20.5.7", &s4.sin_addr);
    ask_from(&z, &r, "cidr.pol.test.", ZJ_T_A, NULL, (struct sockaddr *)&s4);
    assert_string_equal(a_list(&r, 0, got, sizeof(got)), "10.5.0.3");
    assert_int_equal(r.scope, -1); /* no ECS in the query: none in the response */
    struct sockaddr_in6 s6 = {.sin6_family = AF_INET6};
    inet_pton(AF_INET6, "::ffff:10.20.5.7", &s6.sin6_addr);
    ask_from(&z, &r, "cidr.pol.test.", ZJ_T_A, NULL, (struct sockaddr *)&s6);
    assert_string_equal(a_list(&r, 0, got, sizeof(got)), "10.5.0.3");
    inet_pton(AF_INET6, "2001:db8:20:5::9", &s6.sin6_addr);
    ask_from(&z, &r, "cidr.pol.test.", ZJ_T_A, NULL, (struct sockaddr *)&s6);
    assert_string_equal(a_list(&r, 0, got, sizeof(got)), "10.5.0.2");
    /* ECS wins over the source */
    ecs_t e = v4("10.20.9.0", 24);
    ask_from(&z, &r, "cidr.pol.test.", ZJ_T_A, &e, (struct sockaddr *)&s4);
    assert_string_equal(a_list(&r, 0, got, sizeof(got)), "10.5.0.1");
    assert_int_equal(r.scope, 21);
    /* RFC 7871 §7.1.2: source prefix 0 means "do not use my address": the packet's source
     * answers, and the scope is 0 */
    e = v4("0.0.0.0", 0);
    ask_from(&z, &r, "cidr.pol.test.", ZJ_T_A, &e, (struct sockaddr *)&s4);
    assert_string_equal(a_list(&r, 0, got, sizeof(got)), "10.5.0.3");
    assert_int_equal(r.scope, 0);
    /* no address at all: the default */
    ask_from(&z, &r, "cidr.pol.test.", ZJ_T_A, NULL, NULL);
    assert_string_equal(a_list(&r, 0, got, sizeof(got)), "10.5.0.9");
}

/* An ECS address of family 2 in ::ffff:0:0/96 is the IPv4 client it maps: /96 + n is the IPv4
 * /n. The response keeps family 2, the source and the address bytes as sent, with the scope
 * counted from bit 96. */
static void test_ecs_v4_mapped_is_the_ipv4_client(void **state)
{
    (void)state;
    all_healthy();
    zj_responder_t z;
    zj_responder_init(&z, &cfg, 1);
    resp_t r;
    char got[64];
    ecs_t e = v6("::ffff:10.20.9.0", 120); /* 10.20.9.0/24: office, scope 21 */
    ask(&z, &r, "cidr.pol.test.", ZJ_T_A, &e);
    assert_string_equal(a_list(&r, 0, got, sizeof(got)), "10.5.0.1");
    assert_int_equal(r.scope, 96 + 21);
    assert_int_equal(r.ecs_family, 2);
    assert_int_equal(r.ecs_source, 120);
    assert_int_equal(r.ecs_addr_len, 15);
    static const uint8_t sent[15] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 10, 20, 9};
    assert_memory_equal(r.ecs_addr, sent, sizeof(sent));

    e = v6("::ffff:10.20.5.7", 128); /* the host /32 */
    expect_a(&z, "cidr.pol.test.", &e, "10.5.0.3", 128);
    e = v6("::ffff:10.128.0.0", 112); /* no prefix in IPv4: "*", scope 9 of IPv4 */
    expect_a(&z, "cidr.pol.test.", &e, "10.5.0.9", 96 + 9);
    e = v6("::ffff:192.0.2.5", 128); /* geolocation of the IPv4 address: US-CA */
    expect_a(&z, "geo.pol.test.", &e, "10.3.0.1", 96 + 24);
    e = v6("::ffff:203.0.113.1", 128); /* latency: continent AS */
    expect_a(&z, "lat.pol.test.", &e, "10.6.0.3", 96 + 25);
    e = v6("::ffff:10.128.0.0", 112); /* NODATA keeps the scope of the miss */
    expect_nodata(&z, "cidrnd.pol.test.", &e, 96 + 9);
    /* a choice that does not look at the address: scope 0 */
    e = v6("::ffff:10.20.9.0", 120);
    ask(&z, &r, "fo.pol.test.", ZJ_T_A, &e);
    assert_string_equal(a_list(&r, 0, got, sizeof(got)), "10.9.0.1");
    assert_int_equal(r.scope, 0);
    /* not IPv4-mapped: an IPv6 client, which no IPv6 prefix of the collection holds */
    e = v6("::fffe:a14:900", 120);
    expect_a(&z, "cidr.pol.test.", &e, "10.5.0.9", -1);
    /* ::ffff:0:0/96 is all of IPv4: the default of the IPv4 map around 0.0.0.0 */
    e = v6("::ffff:0.0.0.0", 96);
    ask(&z, &r, "cidr.pol.test.", ZJ_T_A, &e);
    assert_string_equal(a_list(&r, 0, got, sizeof(got)), "10.5.0.9");
    assert_true(r.scope >= 96 && r.scope <= 128);
}

/* ---- latency -------------------------------------------------------------------------------- */

static void test_latency_preference_and_fallback(void **state)
{
    (void)state;
    all_healthy();
    zj_responder_t z;
    zj_responder_init(&z, &cfg, 1);
    ecs_t e;
    e = v4("10.40.1.0", 24);
    expect_a(&z, "lat.pol.test.", &e, "10.6.0.1", 16);
    e = v4("10.41.1.0", 24);
    expect_a(&z, "lat.pol.test.", &e, "10.6.0.2", 16);
    e = v6("2001:db8:41::", 48);
    expect_a(&z, "lat.pol.test.", &e, "10.6.0.2", 48);
    e = v4("203.0.113.1", 32); /* continent AS: tokyo; the geo network decides the scope */
    expect_a(&z, "lat.pol.test.", &e, "10.6.0.3", 25);
    e = v4("198.51.100.9", 32); /* country DE */
    expect_a(&z, "lat.pol.test.", &e, "10.6.0.2", 24);
    e = v4("8.8.8.8", 32); /* "*": us-east first */
    expect_a(&z, "lat.pol.test.", &e, "10.6.0.1", -1);
    /* us-east down: the next region of the list */
    health("luse", false);
    e = v4("10.40.1.0", 24);
    expect_a(&z, "lat.pol.test.", &e, "10.6.0.2", 16);
    /* both listed regions down: any healthy set */
    health("leuw", false);
    expect_a(&z, "lat.pol.test.", &e, "10.6.0.3", 16);
    all_healthy();
}

/* ---- CNAME, ANY, additional -------------------------------------------------------------------
 */

static void test_cname_policy_target_drives_the_chain(void **state)
{
    (void)state;
    all_healthy();
    zj_responder_t z;
    zj_responder_init(&z, &cfg, 9);
    unsigned to1 = 0;
    const unsigned n = 400;
    for (unsigned i = 0; i < n; i++) {
        resp_t r;
        char got[64];
        ask(&z, &r, "cn.pol.test.", ZJ_T_A, NULL);
        assert_int_equal(r.an, 2);
        assert_int_equal(r.rrs[0].type, ZJ_T_CNAME);
        a_list(&r, 0, got, sizeof(got));
        /* the CNAME's target and the A that follows agree */
        bool is1 = r.rrs[0].rd[2] == '1'; /* \2a1 or \2a2 */
        assert_string_equal(got, is1 ? "198.51.100.1" : "198.51.100.2");
        to1 += is1;
    }
    expect_share(to1, n, 0.5, "CNAME to a1");
    /* the CNAME itself */
    resp_t r;
    ask(&z, &r, "cn.pol.test.", ZJ_T_CNAME, NULL);
    assert_int_equal(r.an, 1);
    assert_int_equal(r.rrs[0].type, ZJ_T_CNAME);
}

static void test_any_and_additional_use_the_policy(void **state)
{
    (void)state;
    all_healthy();
    zj_responder_t z;
    zj_responder_init(&z, &cfg, 1);
    /* ANY over TCP: the plain TXT and the chosen weighted set */
    uint8_t q[512];
    resp_t r;
    size_t ql = make_query(q, "w.pol.test.", ZJ_T_ANY, NULL);
    r.len = zj_answer(&z, set, q, ql, NULL, true, r.buf, sizeof(r.buf));
    parse(&r);
    unsigned txt = 0, a = 0;
    for (unsigned i = 0; i < r.n_rrs; i++) {
        txt += r.rrs[i].section == 0 && r.rrs[i].type == ZJ_T_TXT;
        a += r.rrs[i].section == 0 && r.rrs[i].type == ZJ_T_A;
    }
    assert_int_equal(txt, 1);
    assert_true(a == 1 || a == 2);
    /* the MX target's address in additional follows its failover policy */
    char got[64];
    ask(&z, &r, "pol.test.", ZJ_T_MX, NULL);
    assert_int_equal(r.an, 1);
    assert_string_equal(a_list(&r, 2, got, sizeof(got)), "10.9.1.1");
    health("cp", false);
    ask(&z, &r, "pol.test.", ZJ_T_MX, NULL);
    assert_string_equal(a_list(&r, 2, got, sizeof(got)), "10.9.1.2");
    all_healthy();
}

/* ANY at a name whose only RRsets are policies that choose nothing for this client (geo or
 * cidr without a match and without a default): NODATA with the SOA (RFC 2308 §2.2), over UDP
 * and TCP; with a match, the chosen set and no SOA. */
static void test_any_with_nothing_chosen_is_nodata_with_soa(void **state)
{
    (void)state;
    all_healthy();
    zj_responder_t z;
    zj_responder_init(&z, &cfg, 1);
    static const char *const names[] = {"cidrnd.pol.test.", "geond.pol.test."};
    static const char *const miss[] = {"10.128.0.0", "203.0.113.1"};
    static const char *const hit[] = {"10.20.9.0", "192.0.2.5"};
    for (int k = 0; k < 2; k++) {
        for (int tcp = 0; tcp <= 1; tcp++) {
            uint8_t q[512];
            resp_t r;
            ecs_t e = v4(miss[k], 24);
            size_t ql = make_query(q, names[k], ZJ_T_ANY, &e);
            r.len = zj_answer(&z, set, q, ql, NULL, tcp == 1, r.buf, sizeof(r.buf));
            parse(&r);
            assert_int_equal(r.rcode, ZJ_RCODE_NOERROR);
            assert_int_equal(r.an, 0);
            if (r.ns != 1 || r.rrs[0].section != 1 || r.rrs[0].type != ZJ_T_SOA) {
                fail_msg("ANY %s from %s over %s: %u authority records", names[k], miss[k],
                         tcp ? "TCP" : "UDP", r.ns);
            }
            e = v4(hit[k], 24);
            ql = make_query(q, names[k], ZJ_T_ANY, &e);
            r.len = zj_answer(&z, set, q, ql, NULL, tcp == 1, r.buf, sizeof(r.buf));
            parse(&r);
            assert_int_equal(r.an, 1);
            assert_int_equal(r.ns, 0);
        }
    }
}

static void test_policy_choose_directly(void **state)
{
    (void)state;
    all_healthy();
    /* zj_policy_choose on its own: a cidr policy for an address, then an unknown client */
    const zj_image_t *img = images[0];
    uint32_t p = ZJ_IMG_NONE;
    for (uint32_t i = 0; i < img->n_policies; i++) {
        if (img->policies[i].kind == ZJ_POL_CIDR && img->policies[i].n_sets == 4) {
            p = i;
        }
    }
    assert_int_not_equal(p, ZJ_IMG_NONE);
    uint64_t rng[2] = {1, 2};
    zj_client_t c = {.family = AF_INET, .source_len = 32};
    inet_pton(AF_INET, "10.20.5.7", c.addr);
    zj_policy_env_t env = {.client = &c, .geo = geo, .rng = rng};
    uint32_t out[ZJ_POLICY_MAX_ANSWER];
    uint8_t scope = 0;
    assert_int_equal(zj_policy_choose(img, p, &env, out, &scope), 1);
    assert_int_equal(scope, 32);
    const zj_img_rrset_d *rs = &img->rrsets[out[0]];
    assert_int_equal(rs->n_rr, 1);
    assert_memory_equal(img->wire + rs->wire_off + 12, "\12\5\0\3", 4);
    env.client = NULL;
    assert_int_equal(zj_policy_choose(img, p, &env, out, &scope), 1);
    assert_int_equal(scope, 0);
    assert_memory_equal(img->wire + img->rrsets[out[0]].wire_off + 12, "\12\5\0\11", 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_weighted_shares_follow_the_weights),
        cmocka_unit_test(test_weighted_same_seed_same_sequence),
        cmocka_unit_test(test_weighted_all_zero_is_equal_shares),
        cmocka_unit_test(test_weighted_health_and_zero_weight_fallback),
        cmocka_unit_test(test_failover_flips_with_the_primary),
        cmocka_unit_test(test_multivalue_at_most_eight_distinct_random),
        cmocka_unit_test(test_multivalue_only_healthy_while_any_is),
        cmocka_unit_test(test_multivalue_truncates_whole),
        cmocka_unit_test(test_geo_most_specific_match),
        cmocka_unit_test(test_geo_unhealthy_match_falls_to_the_larger_region),
        cmocka_unit_test(test_geo_without_default_is_nodata),
        cmocka_unit_test(test_geo_without_database_answers_the_default),
        cmocka_unit_test(test_cidr_longest_prefix_and_default),
        cmocka_unit_test(test_cidr_unhealthy_location_falls_to_default),
        cmocka_unit_test(test_client_from_packet_source),
        cmocka_unit_test(test_ecs_v4_mapped_is_the_ipv4_client),
        cmocka_unit_test(test_latency_preference_and_fallback),
        cmocka_unit_test(test_cname_policy_target_drives_the_chain),
        cmocka_unit_test(test_any_and_additional_use_the_policy),
        cmocka_unit_test(test_any_with_nothing_chosen_is_nodata_with_soa),
        cmocka_unit_test(test_policy_choose_directly),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
