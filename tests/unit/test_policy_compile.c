/* Policy files through the image builder (src/compile/policy.c, emit.c) and the image
 * validator (src/zone/image.c): a policy file with every policy kind, check kind, a CIDR
 * collection with nested prefixes and a latency table compiles into tables holding the expected
 * values; every class of bad input is an error at the right line with no image; corrupted policy
 * sections are rejected even with a valid checksum. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <cmocka.h>
#include <xxhash.h>

#include "compile/emit.h"
#include "zonejet/dname.h"
#include "zonejet/err.h"
#include "zonejet/zone.h"
#include "policy/pmap.h"

static const char ZONE[] = "$ORIGIN example.com.\n"
                           "$TTL 3600\n"
                           "@ IN SOA ns1 hostmaster 1 7200 3600 1209600 300\n"
                           "@ NS ns1\n"
                           "ns1 A 192.0.2.1\n"
                           "mail A 192.0.2.25\n"
                           "plain A 192.0.2.26\n"
                           "sub NS ns.sub\n"
                           "ns.sub A 192.0.2.53\n";

static const char GOOD[] =
    "# every policy kind\n"
    "$TTL 30\n"
    "check web1 http 192.0.2.10 80 path=/health host=www.example.com match=\"all good\" "
    "interval=10 timeout=2500ms\n"
    "check web2 tcp 2001:db8::1 443 threshold=5 inverted\n"
    "check both calculated 1 web1,web2\n"
    "check any calculated 2 both,tls,web1 disabled\n"
    "\n"
    "cidr office berlin 10.0.0.0/8 2001:db8::/32\n"
    "cidr office paris 10.1.0.0/16\n"
    "cidr office berlin 10.1.2.0/24\n"
    "latency eu-west,us-east 192.0.2.0/24\n"
    "latency us-east * \n"
    "latency eu-west continent:EU\n"
    "latency us-east country:US\n"
    "latency eu-west subdivision:US-NY\n"
    "\n"
    "set www A weighted blue weight=70 check=web1\n"
    "    192.0.2.10\n"
    "    192.0.2.11\n"
    "set www A weighted green weight=30 ttl=120\n"
    "\t192.0.2.20\n"
    "set fo AAAA failover p role=primary check=both\n"
    "    2001:db8::10\n"
    "set fo AAAA failover s role=secondary\n"
    "    2001:db8::20\n"
    "set mv TXT multivalue one\n"
    "    \"one\"\n"
    "set mv TXT multivalue two check=any\n"
    "    \"two words\"\n"
    "set geo A geo de location=country:DE\n"
    "    192.0.2.30\n"
    "set geo A geo eu location=continent:EU\n"
    "    192.0.2.31\n"
    "set geo A geo ca location=subdivision:US-CA\n"
    "    192.0.2.32\n"
    "set geo A geo def location=*\n"
    "    192.0.2.33\n"
    "set net A cidr b collection=office location=berlin\n"
    "    192.0.2.40\n"
    "set net A cidr p collection=office location=paris check=tls\n"
    "    192.0.2.42\n"
    "set net A cidr d collection=office location=*\n"
    "    192.0.2.41\n"
    "set lat A latency e region=eu-west\n"
    "    192.0.2.50\n"
    "set lat A latency u region=us-east\n"
    "    192.0.2.51\n"
    "set *.wild MX weighted a weight=0\n"
    "    10 mail\n"
    "set alias CNAME failover p role=primary\n"
    "    www\n"
    "set alias CNAME failover s role=secondary\n"
    "    mail\n"
    "set a.b.deep TXT weighted only weight=1 ; comment\n"
    "    \"deep\"\n"
    "check tls https 192.0.2.11 443 # declared after its first use\n";

typedef struct result {
    int rc;
    char *diag;
    zj_image_t *img;
} result_t;

/* Build ZONE (plus extra zone lines) with policy text; diagnostics are captured. */
static result_t compile(const char *zone_extra, const char *policy)
{
    result_t r = {0};
    size_t dlen = 0;
    FILE *d = open_memstream(&r.diag, &dlen);
    assert_non_null(d);
    zj_build_opts_t o;
    memset(&o, 0, sizeof(o));
    o.diag = d;
    o.quiet = true;
    o.max_errors = 100;
    zj_builder_t *b = zj_builder_new(&o);
    size_t zl = strlen(ZONE) + strlen(zone_extra) + 1;
    char *zone = malloc(zl);
    assert_non_null(zone);
    snprintf(zone, zl, "%s%s", ZONE, zone_extra);
    assert_int_equal(zj_builder_add_text(b, "t.zone", zone, strlen(zone), NULL), ZJ_OK);
    free(zone);
    uint8_t *buf = NULL;
    size_t len = 0;
    r.rc = zj_builder_add_policy_text(b, "t.policy", policy, strlen(policy), NULL);
    int frc = zj_builder_finish(b, &buf, &len);
    if (r.rc == ZJ_OK) {
        r.rc = frc;
    }
    if (frc == ZJ_OK) {
        char err[256];
        int orc = zj_image_open_mem(buf, len, &r.img, err, sizeof(err));
        if (orc != ZJ_OK) {
            fprintf(stderr, "validator: %s\n", err);
        }
        assert_int_equal(orc, ZJ_OK);
    } else {
        assert_null(buf);
    }
    zj_builder_free(b);
    fclose(d);
    return r;
}

static void result_free(result_t *r)
{
    zj_image_close(r->img);
    free(r->diag);
}

static uint32_t node_of(const zj_image_t *img, const char *name)
{
    uint8_t w[ZJ_DNS_MAX_NAME];
    uint8_t low[ZJ_DNS_MAX_NAME];
    int n = zj_dname_from_text(name, strlen(name), NULL, w);
    assert_true(n > 0);
    size_t l = zj_dname_lower(low, w);
    uint32_t node = zj_image_find_node(img, 0, low, l);
    assert_int_not_equal(node, ZJ_IMG_NONE);
    return node;
}

/* The policy answering (name, type). */
static const zj_img_policy_d *policy_at(const zj_image_t *img, const char *name, uint16_t type)
{
    uint32_t node = node_of(img, name);
    uint32_t rs = zj_node_find_rrset(img, node, type);
    assert_int_not_equal(rs, ZJ_IMG_NONE);
    assert_int_equal(img->rrsets[rs].n_rr, 0);
    assert_true(img->rrsets[rs].wire_off < img->n_policies);
    const zj_img_policy_d *p = &img->policies[img->rrsets[rs].wire_off];
    assert_int_equal(p->node, node);
    return p;
}

static const zj_img_pset_d *pset(const zj_image_t *img, const zj_img_policy_d *p, uint32_t k)
{
    assert_true(k < p->n_sets);
    return &img->psets[p->first_pset + k];
}

static const zj_img_rrset_d *set_rrset(const zj_image_t *img, const zj_img_policy_d *p, uint32_t k)
{
    return &img->rrsets[p->first_rrset + k];
}

static uint32_t rr_ttl(const zj_image_t *img, const zj_img_rrset_d *rs)
{
    return zj_be32(img->wire + rs->wire_off + 6);
}

static const char *str(const zj_image_t *img, uint32_t off)
{
    assert_true(off < img->strs_len);
    return img->strs + off;
}

static uint32_t check_named(const zj_image_t *img, const char *name)
{
    for (uint32_t i = 0; i < img->n_checks; i++) {
        if (strcmp(str(img, img->checks[i].name_off), name) == 0) {
            return i;
        }
    }
    fail_msg("no check %s", name);
    return ZJ_IMG_NONE;
}

static uint32_t v4(const char *a)
{
    struct in_addr x;
    assert_int_equal(inet_pton(AF_INET, a, &x), 1);
    return ntohl(x.s_addr);
}

static void test_good_policy_weighted_failover_multivalue(void **state)
{
    (void)state;
    result_t r = compile("", GOOD);
    assert_int_equal(r.rc, ZJ_OK);
    const zj_image_t *img = r.img;
    assert_int_equal(img->n_policies, 9);

    const zj_img_policy_d *p = policy_at(img, "www.example.com.", ZJ_T_A);
    assert_int_equal(p->kind, ZJ_POL_WEIGHTED);
    assert_int_equal(p->n_sets, 2);
    assert_int_equal(p->table, ZJ_IMG_NONE);
    assert_int_equal(pset(img, p, 0)->value, 70);
    assert_string_equal(str(img, pset(img, p, 0)->id_off), "blue");
    assert_int_equal(pset(img, p, 0)->check, check_named(img, "web1"));
    assert_int_equal(pset(img, p, 1)->value, 30);
    assert_int_equal(pset(img, p, 1)->check, ZJ_IMG_NONE);
    assert_int_equal(set_rrset(img, p, 0)->n_rr, 2);
    assert_int_equal(set_rrset(img, p, 0)->type, ZJ_T_A);
    assert_int_equal(rr_ttl(img, set_rrset(img, p, 0)), 30); /* $TTL */
    assert_int_equal(set_rrset(img, p, 1)->n_rr, 1);
    assert_int_equal(rr_ttl(img, set_rrset(img, p, 1)), 120); /* ttl= */

    p = policy_at(img, "fo.example.com.", ZJ_T_AAAA);
    assert_int_equal(p->kind, ZJ_POL_FAILOVER);
    assert_int_equal(pset(img, p, 0)->value, ZJ_FAILOVER_PRIMARY);
    assert_int_equal(pset(img, p, 0)->check, check_named(img, "both"));
    assert_int_equal(pset(img, p, 1)->value, ZJ_FAILOVER_SECONDARY);
    assert_int_equal(set_rrset(img, p, 1)->type, ZJ_T_AAAA);

    p = policy_at(img, "mv.example.com.", ZJ_T_TXT);
    assert_int_equal(p->kind, ZJ_POL_MULTIVALUE);
    assert_int_equal(p->n_sets, 2);
    assert_int_equal(set_rrset(img, p, 0)->n_rr, 1);
    assert_int_equal(set_rrset(img, p, 1)->n_rr, 1);
    assert_int_equal(pset(img, p, 1)->check, check_named(img, "any"));

    /* a CNAME policy flags its node; a wildcard owner is a wildcard node; a new deep owner gets
     * empty non-terminals */
    assert_true(img->nodes[node_of(img, "alias.example.com.")].flags & ZJ_NODE_CNAME);
    p = policy_at(img, "alias.example.com.", ZJ_T_CNAME);
    assert_int_equal(p->kind, ZJ_POL_FAILOVER);
    assert_true(img->nodes[node_of(img, "*.wild.example.com.")].flags & ZJ_NODE_WILDCARD);
    assert_true(img->nodes[node_of(img, "wild.example.com.")].flags & ZJ_NODE_WILDCHILD);
    p = policy_at(img, "*.wild.example.com.", ZJ_T_MX);
    assert_int_equal(pset(img, p, 0)->value, 0);
    assert_int_equal(set_rrset(img, p, 0)->n_addl, 1); /* mail's A goes to additional */
    assert_true(img->nodes[node_of(img, "b.deep.example.com.")].flags & ZJ_NODE_ENT);
    assert_true(img->nodes[node_of(img, "deep.example.com.")].flags & ZJ_NODE_ENT);
    policy_at(img, "a.b.deep.example.com.", ZJ_T_TXT);

    /* plain records are untouched */
    uint32_t rs = zj_node_find_rrset(img, node_of(img, "plain.example.com."), ZJ_T_A);
    assert_int_equal(img->rrsets[rs].n_rr, 1);

    /* every set RRset lies outside every node's range */
    for (uint32_t i = 0; i < img->n_policies; i++) {
        const zj_img_policy_d *q = &img->policies[i];
        for (uint32_t n = 0; n < img->n_nodes; n++) {
            const zj_img_node_d *nd = &img->nodes[n];
            assert_true(q->first_rrset >= nd->rrset_first + nd->n_rrsets ||
                        q->first_rrset + q->n_sets <= nd->rrset_first);
        }
    }
    result_free(&r);
}

static void test_good_policy_geo_codes(void **state)
{
    (void)state;
    result_t r = compile("", GOOD);
    assert_int_equal(r.rc, ZJ_OK);
    const zj_image_t *img = r.img;
    const zj_img_policy_d *p = policy_at(img, "geo.example.com.", ZJ_T_A);
    assert_int_equal(p->kind, ZJ_POL_GEO);
    assert_int_equal(p->n_sets, 4);
    assert_int_equal(pset(img, p, 0)->geo_level, ZJ_GEO_COUNTRY);
    assert_int_equal(pset(img, p, 0)->geo_code, ZJ_GEO_CODE2('D', 'E'));
    assert_int_equal(pset(img, p, 1)->geo_level, ZJ_GEO_CONTINENT);
    assert_int_equal(pset(img, p, 1)->geo_code, ZJ_GEO_CODE2('E', 'U'));
    assert_int_equal(pset(img, p, 2)->geo_level, ZJ_GEO_SUBDIVISION);
    assert_int_equal(pset(img, p, 2)->geo_code, ZJ_GEO_CODE2('U', 'S'));
    assert_int_equal(pset(img, p, 2)->value, 0x43410000u); /* "CA" left-aligned */
    assert_int_equal(pset(img, p, 3)->geo_level, ZJ_GEO_DEFAULT);
    assert_string_equal(str(img, pset(img, p, 3)->id_off), "def");
    result_free(&r);
}

static void test_good_policy_checks(void **state)
{
    (void)state;
    result_t r = compile("", GOOD);
    assert_int_equal(r.rc, ZJ_OK);
    const zj_image_t *img = r.img;
    assert_int_equal(img->n_checks, 5);
    const zj_img_check_d *c = &img->checks[check_named(img, "web1")];
    assert_int_equal(c->kind, ZJ_CHECK_HTTP);
    assert_int_equal(c->family, AF_INET);
    assert_memory_equal(c->addr, "\xc0\x00\x02\x0a", 4);
    assert_int_equal(c->port, 80);
    assert_int_equal(c->interval_ms, 10000);
    assert_int_equal(c->timeout_ms, 2500);
    assert_int_equal(c->threshold, 3);
    assert_int_equal(c->flags, 0);
    assert_string_equal(str(img, c->path_off), "/health");
    assert_string_equal(str(img, c->host_off), "www.example.com");
    assert_string_equal(str(img, c->match_off), "all good");
    assert_int_equal(c->zone, 0);

    c = &img->checks[check_named(img, "web2")];
    assert_int_equal(c->kind, ZJ_CHECK_TCP);
    assert_int_equal(c->family, AF_INET6);
    assert_int_equal(c->addr[0], 0x20);
    assert_int_equal(c->addr[15], 0x01);
    assert_int_equal(c->port, 443);
    assert_int_equal(c->interval_ms, 30000); /* defaults */
    assert_int_equal(c->timeout_ms, 4000);
    assert_int_equal(c->threshold, 5);
    assert_int_equal(c->flags, ZJ_CHECK_INVERTED);

    c = &img->checks[check_named(img, "tls")];
    assert_int_equal(c->kind, ZJ_CHECK_HTTPS);
    assert_string_equal(str(img, c->path_off), "/");
    assert_int_equal(c->host_off, ZJ_IMG_NONE);
    assert_int_equal(c->match_off, ZJ_IMG_NONE);

    uint32_t both = check_named(img, "both");
    c = &img->checks[both];
    assert_int_equal(c->kind, ZJ_CHECK_CALCULATED);
    assert_int_equal(c->min_healthy, 1);
    assert_int_equal(c->n_children, 2);
    assert_int_equal(img->u32[c->children_off], check_named(img, "web1"));
    assert_int_equal(img->u32[c->children_off + 1], check_named(img, "web2"));

    uint32_t any = check_named(img, "any");
    c = &img->checks[any];
    assert_int_equal(c->flags, ZJ_CHECK_DISABLED);
    assert_int_equal(c->min_healthy, 2);
    assert_int_equal(c->n_children, 3);
    assert_int_equal(img->u32[c->children_off], both); /* in the order written */
    assert_int_equal(img->u32[c->children_off + 1], check_named(img, "tls"));
    assert_int_equal(img->u32[c->children_off + 2], check_named(img, "web1"));
    for (uint32_t i = 0; i < img->n_checks; i++) {
        for (uint32_t k = 0; k < img->checks[i].n_children; k++) {
            assert_true(img->u32[img->checks[i].children_off + k] < i); /* children first */
        }
    }
    result_free(&r);
}

static void test_good_policy_cidr_collection(void **state)
{
    (void)state;
    result_t r = compile("", GOOD);
    assert_int_equal(r.rc, ZJ_OK);
    const zj_image_t *img = r.img;
    const zj_img_policy_d *p = policy_at(img, "net.example.com.", ZJ_T_A);
    assert_int_equal(p->kind, ZJ_POL_CIDR);
    assert_true(p->table < img->n_tables);
    const zj_img_table_d *t = &img->tables[p->table];
    assert_int_equal(t->kind, ZJ_TABLE_CIDR);
    assert_string_equal(str(img, t->name_off), "office");
    assert_int_equal(t->n_values, 2);
    assert_string_equal(str(img, img->u32[t->values_off + 0]), "berlin");
    assert_string_equal(str(img, img->u32[t->values_off + 1]), "paris");
    assert_int_equal(pset(img, p, 0)->value, 0);
    assert_int_equal(pset(img, p, 1)->value, 1);
    assert_int_equal(pset(img, p, 1)->check, check_named(img, "tls"));
    assert_int_equal(pset(img, p, 2)->value, ZJ_IMG_NONE);

    /* nested prefixes: the longest wins */
    const zj_pmap4_d *m4 = img->pmap4 + t->first4;
    uint8_t scope = 0;
    assert_int_equal(zj_pmap4_find(m4, t->n4, v4("10.200.0.1"), &scope), 0);
    assert_int_equal(zj_pmap4_find(m4, t->n4, v4("10.1.200.1"), &scope), 1);
    assert_int_equal(zj_pmap4_find(m4, t->n4, v4("10.1.2.3"), &scope), 0);
    assert_int_equal(scope, 24);
    assert_int_equal(zj_pmap4_find(m4, t->n4, v4("11.0.0.1"), &scope), ZJ_IMG_NONE);
    uint8_t a6[16];
    assert_int_equal(inet_pton(AF_INET6, "2001:db8:1::5", a6), 1);
    assert_int_equal(zj_pmap6_find(img->pmap6 + t->first6, t->n6, a6, &scope), 0);
    assert_int_equal(inet_pton(AF_INET6, "2001:db9::5", a6), 1);
    assert_int_equal(zj_pmap6_find(img->pmap6 + t->first6, t->n6, a6, &scope), ZJ_IMG_NONE);
    result_free(&r);
}

static void test_good_policy_latency_table(void **state)
{
    (void)state;
    result_t r = compile("", GOOD);
    assert_int_equal(r.rc, ZJ_OK);
    const zj_image_t *img = r.img;
    const zj_img_policy_d *p = policy_at(img, "lat.example.com.", ZJ_T_A);
    assert_int_equal(p->kind, ZJ_POL_LATENCY);
    const zj_img_table_d *t = &img->tables[p->table];
    assert_int_equal(t->kind, ZJ_TABLE_LATENCY);
    assert_int_equal(t->n_regions, 2);
    assert_string_equal(str(img, img->u32[t->regions_off]), "eu-west");
    assert_string_equal(str(img, img->u32[t->regions_off + 1]), "us-east");
    assert_int_equal(pset(img, p, 0)->value, 0);
    assert_int_equal(pset(img, p, 1)->value, 1);
    assert_int_equal(t->n_values, 5);

    /* the prefix client through the maps: regions eu-west then us-east */
    uint8_t scope = 0;
    uint32_t e = zj_pmap4_find(img->pmap4 + t->first4, t->n4, v4("192.0.2.77"), &scope);
    assert_true(e < t->n_values);
    const uint32_t *w = img->u32 + t->values_off + 4 * e;
    assert_int_equal(w[0], 0xFFFFFFFFu);
    assert_int_equal(w[3], 2);
    assert_int_equal(img->u32[w[2]], 0);
    assert_int_equal(img->u32[w[2] + 1], 1);
    assert_int_equal(zj_pmap4_find(img->pmap4 + t->first4, t->n4, v4("198.51.100.1"), &scope),
                     ZJ_IMG_NONE);

    /* locations most specific first, "*" last */
    w = img->u32 + t->values_off + 4;
    assert_int_equal(w[0], (ZJ_GEO_SUBDIVISION << 16) | ZJ_GEO_CODE2('U', 'S'));
    assert_int_equal(w[1], 0x4e590000u); /* NY */
    assert_int_equal(img->u32[w[2]], 0);
    w += 4;
    assert_int_equal(w[0], (ZJ_GEO_COUNTRY << 16) | ZJ_GEO_CODE2('U', 'S'));
    assert_int_equal(img->u32[w[2]], 1);
    w += 4;
    assert_int_equal(w[0], (ZJ_GEO_CONTINENT << 16) | ZJ_GEO_CODE2('E', 'U'));
    w += 4;
    assert_int_equal(w[0], ZJ_GEO_DEFAULT << 16);
    assert_int_equal(w[3], 1);
    assert_int_equal(img->u32[w[2]], 1);
    result_free(&r);
}

/* A zone without a policy file gets no policy sections; an image is reproducible. */
static void test_plain_zone_has_no_policy_sections(void **state)
{
    (void)state;
    uint8_t *img[2] = {NULL, NULL};
    size_t len[2] = {0, 0};
    for (int i = 0; i < 2; i++) {
        zj_build_opts_t o;
        memset(&o, 0, sizeof(o));
        o.quiet = true;
        zj_builder_t *b = zj_builder_new(&o);
        assert_int_equal(zj_builder_add_text(b, "t.zone", ZONE, strlen(ZONE), NULL), ZJ_OK);
        if (i == 1) { /* a policy file of comments only declares nothing */
            const char *pol = "# nothing\n\n; here\n";
            assert_int_equal(zj_builder_add_policy_text(b, "t.policy", pol, strlen(pol), NULL),
                             ZJ_OK);
        }
        assert_int_equal(zj_builder_finish(b, &img[i], &len[i]), ZJ_OK);
        zj_builder_free(b);
    }
    assert_int_equal(len[0], len[1]);
    assert_memory_equal(img[0], img[1], len[0]);
    zj_img_header_d h;
    memcpy(&h, img[0], sizeof(h));
    assert_int_equal(h.n_sections, 7);
    zj_image_t *im = NULL;
    char err[256];
    assert_int_equal(zj_image_open_mem(img[0], len[0], &im, err, sizeof(err)), ZJ_OK);
    assert_null(im->policies);
    assert_int_equal(im->n_checks, 0);
    zj_image_close(im);
    free(img[1]);
}

typedef struct bad_case {
    const char *zone_extra;
    const char *policy;
    unsigned line;
    const char *reason; /* a fragment of the message */
} bad_case_t;

#define SET_A(owner, kind, id, attrs) "set " owner " A " kind " " id " " attrs "\n    192.0.2.1\n"

static const bad_case_t BAD[] = {
    /* statements and attributes */
    {"", "bogus x y\n", 1, "unknown statement 'bogus'"},
    {"", "\n" SET_A("www", "weighted", "a", "weight=1 color=red"), 2, "unknown attribute"},
    {"", SET_A("www", "weighted", "a", "role=primary"), 1, "unknown attribute 'role=primary'"},
    {"", SET_A("www", "weighted", "a", ""), 1, "needs weight="},
    {"", SET_A("www", "weighted", "a", "weight=1 weight=2"), 1, "given twice"},
    {"", "set www A weighted\n    192.0.2.1\n", 1, "needs an owner, a type"},
    {"", "set www A weighted weight=1\n    192.0.2.1\n", 1, "set id missing"},
    {"", "    192.0.2.1\n", 1, "record line outside a set"},
    {"", "$TTL x\n", 1, "bad TTL"},
    {"", "set www A weighted a weight=1 \"unterminated\n", 1, "unterminated quoted string"},
    /* owners and types */
    {"", SET_A("www.example.org.", "weighted", "a", "weight=1"), 1, "outside the zone"},
    {"", SET_A("sub", "weighted", "a", "weight=1"), 1, "delegation"},
    {"", "\n" SET_A("x.sub", "weighted", "a", "weight=1"), 2, "below the zone cut"},
    {"", "set www NS weighted a weight=1\n    ns1\n", 1, "cannot have a routing policy"},
    {"", "set www BOGUS weighted a weight=1\n    ns1\n", 1, "unknown type"},
    {"", SET_A("plain", "weighted", "a", "weight=1"), 1, "also has records in the zone file"},
    {"", "set @ CNAME weighted a weight=1\n    www\n", 1, "apex"},
    {"", "set cn CNAME weighted a weight=1\n    www\n" SET_A("cn", "weighted", "a", "weight=1"), 3,
     "beside a CNAME"},
    {"", "set mail CNAME weighted a weight=1\n    www\n", 1,
     "CNAME policy beside A records (t.zone:6)"},
    {"cn2 CNAME www\n", SET_A("cn2", "weighted", "a", "weight=1"), 1,
     "A policy beside a CNAME (t.zone:10)"},
    /* sets */
    {"", SET_A("www", "weighted", "a", "weight=1") SET_A("www", "failover", "b", "role=primary"), 3,
     "uses policy failover"},
    {"", SET_A("www", "weighted", "a", "weight=1") SET_A("www", "weighted", "a", "weight=2"), 3,
     "set id 'a'"},
    {"", "set www A weighted a weight=1\nset www A weighted b weight=1\n    192.0.2.1\n", 1,
     "has no records"},
    {"", "set www A weighted a weight=1\n    192.0.2.300\n", 2, "IPv4"},
    {"", "set www MX weighted a weight=1\n    10\n", 2, ""},
    {"", "set www A policy a\n    192.0.2.1\n", 1, "unknown policy 'policy'"},
    /* weighted */
    {"", SET_A("www", "weighted", "a", "weight=256"), 1, "0 to 255"},
    {"", SET_A("www", "weighted", "a", "weight=-1"), 1, "0 to 255"},
    /* failover */
    {"", SET_A("www", "failover", "a", "role=secondary"), 1, "failover without a primary"},
    {"",
     SET_A("www", "failover", "a", "role=primary") SET_A("www", "failover", "b", "role=primary"), 3,
     "second primary"},
    {"",
     SET_A("www", "failover", "a", "role=primary") SET_A("www", "failover", "b", "role=secondary")
         SET_A("www", "failover", "c", "role=secondary"),
     5, "second secondary"},
    {"", SET_A("www", "failover", "a", "role=main"), 1, "neither primary nor secondary"},
    /* multivalue */
    {"", "set www A multivalue a\n    192.0.2.1\n    192.0.2.2\n", 3, "exactly one record"},
    /* CNAME: one record per owner (RFC 2181 §10.1), so one per set and never multivalue */
    {"", "set cn CNAME weighted a weight=1\n    www\n    ns1\n", 3,
     "a CNAME set holds exactly one record"},
    {"", "set cn CNAME failover a role=primary\n    www\n\n    www.example.com.\n    ns1\n", 5,
     "a CNAME set holds exactly one record"},
    {"", "\nset cn CNAME multivalue a\n    www\n", 2, "a CNAME cannot have a multivalue policy"},
    /* multivalue sets answer as one RRset: one TTL (RFC 2181 §5.2) */
    {"", "set mv A multivalue a ttl=30\n    192.0.2.1\nset mv A multivalue b\n    192.0.2.2\n", 3,
     "set 'b' of mv.example.com. A has TTL 60, its first set (line 1) TTL 30"},
    {"",
     "set mv A multivalue a\n    192.0.2.1\nset mv A multivalue b\n    192.0.2.2\n$TTL 120\n"
     "set mv A multivalue c\n    192.0.2.3\n",
     6, "has TTL 120, its first set (line 1) TTL 60"},
    /* geo */
    {"", SET_A("www", "geo", "a", ""), 1, "needs location="},
    {"", SET_A("www", "geo", "a", "location=continent:XX"), 1, "unknown continent"},
    {"", SET_A("www", "geo", "a", "location=country:ZZ"), 1, "unknown country code 'ZZ'"},
    {"", SET_A("www", "geo", "a", "location=country:USA"), 1, "unknown country code"},
    {"", SET_A("www", "geo", "a", "location=subdivision:XX-CA"), 1, "unknown country code"},
    {"", SET_A("www", "geo", "a", "location=subdivision:US-ABCD"), 1, "bad subdivision"},
    {"", SET_A("www", "geo", "a", "location=subdivision:US-"), 1, "bad subdivision"},
    {"", SET_A("www", "geo", "a", "location=planet:EA"), 1, "bad location"},
    {"",
     SET_A("www", "geo", "a", "location=country:DE")
         SET_A("www", "geo", "b", "location=country:de"),
     3, "location country:DE used twice"},
    /* cidr */
    {"", SET_A("www", "cidr", "a", "collection=none location=x"), 1, "no CIDR collection"},
    {"", "cidr c x 10.0.0.0/8\n" SET_A("www", "cidr", "a", "collection=c location=y"), 2,
     "location 'y' is not in CIDR collection 'c'"},
    {"", SET_A("www", "cidr", "a", "location=*"), 1, "needs collection="},
    {"",
     "cidr c x 10.0.0.0/8\ncidr d x 11.0.0.0/8\n" SET_A("www", "cidr", "a",
                                                        "collection=c location=x")
         SET_A("www", "cidr", "b", "collection=d location=x"),
     5, "uses collection 'd'"},
    {"",
     "cidr c x 10.0.0.0/8\n" SET_A("www", "cidr", "a", "collection=c location=x")
         SET_A("www", "cidr", "b", "collection=c location=x"),
     4, "location x used twice"},
    {"", "cidr c x 10.1.2.3/16\n", 1, "host bits set (0.0.2.3 beyond the /16"},
    {"", "cidr c x 2001:db8::1/32\n", 1, "host bits set (::1 beyond the /32"},
    {"", "cidr c x 10.0.0.0/33\n", 1, "bad prefix length"},
    {"", "cidr c x 10.0.0/8\n", 1, "not an IPv4 or IPv6 address"},
    {"", "cidr c x 10.0.0.0/8\n\ncidr c y 10.0.0.0/8\n", 3,
     "already in collection 'c' for location 'x' (line 1)"},
    {"", "cidr c * 10.0.0.0/8\n", 1, "'*' is the default"},
    {"", "cidr c x\n", 1, "at least one prefix"},
    /* latency */
    {"", SET_A("www", "latency", "a", "region=eu"), 1, "not in the zone's latency table"},
    {"", "latency eu 10.0.0.0/8\n" SET_A("www", "latency", "a", "region=us"), 2,
     "region 'us' is not in"},
    {"", "latency eu 10.0.0.0/8\nlatency us 10.0.0.0/8\n", 2, "already listed at line 1"},
    {"", "latency eu country:DE\nlatency us country:DE\n", 2, "already listed at line 1"},
    {"", "latency eu *\nlatency us *\n", 2, "already listed"},
    {"", "latency eu,eu *\n", 1, "listed twice"},
    {"", "latency eu country:QQ\n", 1, "unknown country"},
    {"", "latency eu\n", 1, "latency needs"},
    {"", "latency eu 10.0.0.1/8\n", 1, "host bits"},
    {"",
     "latency eu 10.0.0.0/8\n" SET_A("www", "latency", "a", "region=eu")
         SET_A("www", "latency", "b", "region=eu"),
     4, "region eu used twice"},
    /* checks */
    {"", "check c tcp 192.0.2.300 80\n", 1, "bad address"},
    {"", "check c tcp example.com 80\n", 1, "bad address"},
    {"", "check c tcp 192.0.2.1 0\n", 1, "bad port"},
    {"", "check c tcp 192.0.2.1 65536\n", 1, "bad port"},
    {"", "check c tcp 192.0.2.1\n", 1, "needs an address and a port"},
    {"", "check c tcp 192.0.2.1 80 interval=0\n", 1, "bad interval"},
    {"", "check c tcp 192.0.2.1 80 interval=3601\n", 1, "bad interval"},
    {"", "check c tcp 192.0.2.1 80 timeout=30\n", 1, "not below the interval"},
    {"", "check c tcp 192.0.2.1 80 interval=5 timeout=5000ms\n", 1, "not below the interval"},
    {"", "check c tcp 192.0.2.1 80 threshold=11\n", 1, "bad threshold"},
    {"", "check c tcp 192.0.2.1 80 threshold=0\n", 1, "bad threshold"},
    {"", "check c tcp 192.0.2.1 80 path=/x\n", 1, "unknown attribute 'path=/x'"},
    {"", "check c http 192.0.2.1 80 path=x\n", 1, "bad path"},
    {"", "check c http 192.0.2.1 80 host=\"a b\"\n", 1, "bad host"},
    {"", "check c http 192.0.2.1 80 inverted inverted\n", 1, "given twice"},
    {"", "check c udp 192.0.2.1 80\n", 1, "unknown check kind"},
    {"", "check c tcp 192.0.2.1 80\ncheck c tcp 192.0.2.2 80\n", 2, "already declared at line 1"},
    {"", "check bad/name tcp 192.0.2.1 80\n", 1, "bad check name"},
    {"", "check a tcp 192.0.2.1 80\ncheck c calculated 2 a\n", 2, "more than the 1 children"},
    {"", "check c calculated 1 a\n", 1, "no check named 'a'"},
    {"", "check a tcp 192.0.2.1 80\ncheck c calculated 1 a,a\n", 2, "listed twice"},
    {"", "check a calculated 1 b\ncheck b calculated 1 c\ncheck c calculated 1 a\n", 3,
     "in a cycle"},
    {"", "check a calculated 1 a\n", 1, "in a cycle"},
    {"", "check a tcp 192.0.2.1 80\ncheck c calculated 1 a interval=5\n", 2,
     "unknown attribute 'interval=5'"},
    {"", SET_A("www", "weighted", "a", "weight=1 check=missing"), 1, "no check named 'missing'"},
    {"", "\n\n" SET_A("www", "weighted", "a", "weight=1 check=later") "check later tcp 1.2.3.4\n",
     5, "needs an address and a port"},
};

static void test_bad_policy_reports_line(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(BAD) / sizeof(BAD[0]); i++) {
        result_t r = compile(BAD[i].zone_extra, BAD[i].policy);
        char want[64];
        snprintf(want, sizeof(want), "t.policy:%u: ", BAD[i].line);
        const char *hit = strstr(r.diag, want);
        if (r.rc != ZJ_EZONE || r.img != NULL || hit == NULL ||
            strstr(hit, BAD[i].reason) == NULL) {
            fail_msg("case %zu (%s): rc %d, diagnostics:\n%s", i, BAD[i].reason, r.rc, r.diag);
        }
        result_free(&r);
    }
}

/* Errors of the zone file come first and the policy file is refused; a policy file for a zone
 * that is not in the image is refused. */
static void test_policy_without_its_zone(void **state)
{
    (void)state;
    char *diag = NULL;
    size_t dlen = 0;
    FILE *d = open_memstream(&diag, &dlen);
    zj_build_opts_t o;
    memset(&o, 0, sizeof(o));
    o.diag = d;
    zj_builder_t *b = zj_builder_new(&o);
    const char *bad_zone = "$ORIGIN example.com.\n@ SOA ns1 h 1 2 3 4 5\n@ BOGUS x\n";
    assert_int_equal(zj_builder_add_text(b, "t.zone", bad_zone, strlen(bad_zone), NULL), ZJ_EZONE);
    const char *pol = SET_A("www", "weighted", "a", "weight=1");
    assert_int_equal(zj_builder_add_policy_text(b, "t.policy", pol, strlen(pol), NULL), ZJ_EZONE);
    uint8_t origin[] = "\7example\3org";
    assert_int_equal(zj_builder_add_policy_text(b, "u.policy", pol, strlen(pol), origin), ZJ_EZONE);
    uint8_t *img = NULL;
    size_t len = 0;
    assert_int_equal(zj_builder_finish(b, &img, &len), ZJ_EZONE);
    zj_builder_free(b);
    fclose(d);
    const char *z = strstr(diag, "t.zone:3:");
    const char *p = strstr(diag, "t.policy: not read");
    assert_non_null(z);
    assert_non_null(p);
    assert_true(z < p);
    assert_non_null(strstr(diag, "u.policy: not read: no zone example.org."));
    free(diag);
}

/* A second policy file for one zone is refused; an explicit origin picks the zone. */
static void test_policy_by_origin_and_once(void **state)
{
    (void)state;
    FILE *d = fopen("/dev/null", "w");
    zj_build_opts_t o;
    memset(&o, 0, sizeof(o));
    o.diag = d;
    o.quiet = true;
    zj_builder_t *b = zj_builder_new(&o);
    assert_int_equal(zj_builder_add_text(b, "t.zone", ZONE, strlen(ZONE), NULL), ZJ_OK);
    const char *other = "$ORIGIN example.net.\n@ SOA ns1 h 1 2 3 4 5\n@ NS ns1\nns1 A 1.2.3.4\n";
    assert_int_equal(zj_builder_add_text(b, "o.zone", other, strlen(other), NULL), ZJ_OK);
    const char *pol = SET_A("www", "weighted", "a", "weight=1");
    uint8_t origin[] = "\7EXAMPLE\3com";
    assert_int_equal(zj_builder_add_policy_text(b, "t.policy", pol, strlen(pol), origin), ZJ_OK);
    assert_int_equal(zj_builder_add_policy_text(b, "t2.policy", pol, strlen(pol), origin),
                     ZJ_EZONE);
    zj_builder_free(b);
    fclose(d);
}

/* ---- corrupted policy sections ----------------------------------------------------------- */

/* The image bytes of ZONE with a policy file that compiles. */
static uint8_t *image_of(const char *policy, size_t *len)
{
    zj_build_opts_t o;
    memset(&o, 0, sizeof(o));
    o.quiet = true;
    zj_builder_t *b = zj_builder_new(&o);
    assert_int_equal(zj_builder_add_text(b, "t.zone", ZONE, strlen(ZONE), NULL), ZJ_OK);
    assert_int_equal(zj_builder_add_policy_text(b, "t.policy", policy, strlen(policy), NULL),
                     ZJ_OK);
    uint8_t *img = NULL;
    assert_int_equal(zj_builder_finish(b, &img, len), ZJ_OK);
    zj_builder_free(b);
    return img;
}

static uint8_t *good_image(size_t *len)
{
    return image_of(GOOD, len);
}

static zj_img_section_d *section(uint8_t *img, uint32_t kind)
{
    zj_img_header_d h;
    memcpy(&h, img, sizeof(h));
    zj_img_section_d *tab = (zj_img_section_d *)(void *)(img + sizeof(h));
    for (uint32_t i = 0; i < h.n_sections; i++) {
        if (tab[i].kind == kind) {
            return &tab[i];
        }
    }
    fail_msg("no section %u", kind);
    return NULL;
}

static void *sec_at(uint8_t *img, uint32_t kind)
{
    return img + section(img, kind)->off;
}

static void resum(uint8_t *img, size_t len)
{
    zj_img_header_d h;
    memcpy(&h, img, sizeof(h));
    h.checksum = XXH3_64bits(img + ZJ_IMG_SUM_FROM, len - ZJ_IMG_SUM_FROM);
    memcpy(img, &h, sizeof(h));
}

enum corruption {
    BAD_POLICY_INDEX,
    BAD_STRS_END,
    BAD_CHILD_ORDER,
    BAD_PSET_RANGE,
    BAD_PSET_CHECK,
    BAD_POLICY_KIND,
    BAD_TWO_PRIMARIES,
    BAD_TABLE_RANGE,
    BAD_PMAP_START,
    BAD_PMAP_VALUE,
    BAD_CIDR_VALUE,
    BAD_LATENCY_REGION,
    BAD_SET_TYPE,
    BAD_POLICY_NODE,
    BAD_CHECK_FAMILY,
    BAD_STR_OFFSET,
    BAD_SECTION_LENGTH,
    BAD_CNAME_MULTIVALUE,
    BAD_CNAME_TWO_RECORDS,
    BAD_MULTIVALUE_TTL,
    BAD_N
};

static void corrupt(uint8_t *img, int what)
{
    zj_img_rrset_d *rrsets = sec_at(img, ZJ_SEC_RRSETS);
    uint32_t n_rrsets = section(img, ZJ_SEC_RRSETS)->count;
    zj_img_policy_d *pol = sec_at(img, ZJ_SEC_POLICIES);
    uint32_t n_pol = section(img, ZJ_SEC_POLICIES)->count;
    zj_img_pset_d *ps = sec_at(img, ZJ_SEC_PSETS);
    zj_img_check_d *chk = sec_at(img, ZJ_SEC_CHECKS);
    uint32_t n_chk = section(img, ZJ_SEC_CHECKS)->count;
    zj_img_table_d *tab = sec_at(img, ZJ_SEC_TABLES);
    uint32_t *u32 = sec_at(img, ZJ_SEC_U32);
    char *strs = sec_at(img, ZJ_SEC_STRS);
    zj_pmap4_d *p4 = sec_at(img, ZJ_SEC_PMAP4);
    uint32_t pr = ZJ_IMG_NONE;
    for (uint32_t i = 0; i < n_rrsets && pr == ZJ_IMG_NONE; i++) {
        pr = rrsets[i].n_rr == 0 ? i : ZJ_IMG_NONE;
    }
    uint32_t fo = ZJ_IMG_NONE;
    uint32_t cidr = ZJ_IMG_NONE;
    uint32_t lat = ZJ_IMG_NONE;
    for (uint32_t i = 0; i < n_pol; i++) {
        fo = pol[i].kind == ZJ_POL_FAILOVER && pol[i].n_sets == 2 ? i : fo;
        cidr = pol[i].kind == ZJ_POL_CIDR ? i : cidr;
        lat = pol[i].kind == ZJ_POL_LATENCY ? i : lat;
    }
    uint32_t calc = ZJ_IMG_NONE;
    for (uint32_t i = 0; i < n_chk; i++) {
        calc = chk[i].kind == ZJ_CHECK_CALCULATED ? i : calc;
    }
    uint32_t cname = ZJ_IMG_NONE; /* alias CNAME: failover, two sets of one record each */
    for (uint32_t i = 0; i < n_pol; i++) {
        cname = rrsets[pol[i].first_rrset].type == ZJ_T_CNAME ? i : cname;
    }
    assert_int_not_equal(cname, ZJ_IMG_NONE);
    assert_int_equal(pol[cname].n_sets, 2);
    zj_img_rrset_d *cs = &rrsets[pol[cname].first_rrset];
    uint8_t *wire = sec_at(img, ZJ_SEC_WIRE);
    uint32_t mv = ZJ_IMG_NONE;
    for (uint32_t i = 0; i < n_pol; i++) {
        mv = pol[i].kind == ZJ_POL_MULTIVALUE ? i : mv;
    }
    assert_int_not_equal(mv, ZJ_IMG_NONE);
    switch (what) {
    case BAD_POLICY_INDEX:
        rrsets[pr].wire_off = n_pol;
        break;
    case BAD_STRS_END:
        strs[section(img, ZJ_SEC_STRS)->count - 1] = 'x';
        break;
    case BAD_CHILD_ORDER:
        u32[chk[calc].children_off] = calc;
        break;
    case BAD_PSET_RANGE:
        pol[n_pol - 1].first_pset = section(img, ZJ_SEC_PSETS)->count;
        break;
    case BAD_PSET_CHECK:
        ps[0].check = n_chk;
        break;
    case BAD_POLICY_KIND:
        pol[0].kind = 0;
        break;
    case BAD_TWO_PRIMARIES:
        ps[pol[fo].first_pset + 1].value = ZJ_FAILOVER_PRIMARY;
        break;
    case BAD_TABLE_RANGE:
        tab[0].first4 = section(img, ZJ_SEC_PMAP4)->count;
        break;
    case BAD_PMAP_START:
        p4[tab[0].first4].start = 1;
        break;
    case BAD_PMAP_VALUE:
        p4[tab[0].first4 + 1].value = 77;
        break;
    case BAD_CIDR_VALUE:
        ps[pol[cidr].first_pset].value = 2;
        break;
    case BAD_LATENCY_REGION:
        ps[pol[lat].first_pset].value = 2;
        break;
    case BAD_SET_TYPE:
        rrsets[pol[0].first_rrset].type = ZJ_T_NS;
        break;
    case BAD_POLICY_NODE:
        pol[rrsets[pr].wire_off].node = 0;
        break;
    case BAD_CHECK_FAMILY:
        chk[0].family = 3;
        break;
    case BAD_STR_OFFSET:
        ps[1].id_off = section(img, ZJ_SEC_STRS)->count;
        break;
    case BAD_SECTION_LENGTH:
        section(img, ZJ_SEC_PSETS)->count++;
        break;
    case BAD_CNAME_MULTIVALUE: /* each set still holds one record */
        pol[cname].kind = ZJ_POL_MULTIVALUE;
        break;
    case BAD_CNAME_TWO_RECORDS:
        /* the primary's RRset swallows the secondary's record (its wire follows), so the one
         * set left holds two well-formed CNAME records */
        assert_int_equal(cs[1].wire_off, cs[0].wire_off + cs[0].wire_len);
        assert_int_equal(ps[pol[cname].first_pset].value, ZJ_FAILOVER_PRIMARY);
        cs[0].n_rr = 2;
        cs[0].wire_len = (uint16_t)(cs[0].wire_len + cs[1].wire_len);
        pol[cname].n_sets = 1;
        break;
    case BAD_MULTIVALUE_TTL: /* the second set's only record: TTL 31, the first's 30 */
        assert_int_equal(zj_be32(wire + rrsets[pol[mv].first_rrset].wire_off + 6), 30);
        zj_put32(wire + rrsets[pol[mv].first_rrset + 1].wire_off + 6, 31);
        break;
    default:
        break;
    }
}

static void test_corrupted_policy_sections_rejected(void **state)
{
    (void)state;
    size_t len = 0;
    uint8_t *good = good_image(&len);
    for (int what = 0; what < BAD_N; what++) {
        uint8_t *img = NULL;
        assert_int_equal(posix_memalign((void **)&img, ZJ_IMG_ALIGN, len), 0);
        memcpy(img, good, len);
        corrupt(img, what);
        resum(img, len);
        zj_image_t *im = NULL;
        char err[256];
        int rc = zj_image_open_mem(img, len, &im, err, sizeof(err));
        if (rc == ZJ_OK) {
            zj_image_close(im);
            fail_msg("corruption %d accepted", what);
        }
        assert_int_equal(rc, ZJ_EIMAGE);
        free(img);
    }
    /* the unmodified image passes */
    zj_image_t *im = NULL;
    char err[256];
    assert_int_equal(zj_image_open_mem(good, len, &im, err, sizeof(err)), ZJ_OK);
    zj_image_close(im);
}

/* ---- the number of sets of a policy -------------------------------------------------------- */

/* n weighted A sets at "big" (set k on line 2k + 1), then one set at "next". */
static char *many_sets(unsigned n)
{
    size_t cap = (size_t)n * 64 + 128;
    char *t = malloc(cap);
    assert_non_null(t);
    size_t o = 0;
    for (unsigned i = 0; i < n; i++) {
        o += (size_t)snprintf(t + o, cap - o, "set big A weighted s%u weight=1\n    10.0.%u.%u\n",
                              i, i / 256, i % 256);
    }
    snprintf(t + o, cap - o, "set next A weighted only weight=1\n    192.0.2.99\n");
    return t;
}

/* ZJ_POLICY_MAX_SETS sets compile; one more is an error at the policy's first line. */
static void test_policy_set_limit_in_the_compiler(void **state)
{
    (void)state;
    char *t = many_sets(ZJ_POLICY_MAX_SETS);
    result_t r = compile("", t);
    assert_int_equal(r.rc, ZJ_OK);
    assert_int_equal(policy_at(r.img, "big.example.com.", ZJ_T_A)->n_sets, ZJ_POLICY_MAX_SETS);
    result_free(&r);
    free(t);

    t = many_sets(ZJ_POLICY_MAX_SETS + 1);
    r = compile("", t);
    assert_int_equal(r.rc, ZJ_EZONE);
    assert_null(r.img);
    if (strstr(r.diag, "t.policy:1: big.example.com. A has 256 sets, more than 255") == NULL) {
        fail_msg("diagnostics:\n%s", r.diag);
    }
    result_free(&r);
    free(t);
}

/* An image whose policy claims ZJ_POLICY_MAX_SETS + 1 sets, every index in range (it reaches
 * into the neighbouring policy's set, of the same kind and type), is rejected. */
static void test_policy_set_limit_in_the_validator(void **state)
{
    (void)state;
    char *t = many_sets(ZJ_POLICY_MAX_SETS);
    size_t len = 0;
    uint8_t *good = image_of(t, &len);
    free(t);
    uint8_t *img = NULL;
    assert_int_equal(posix_memalign((void **)&img, ZJ_IMG_ALIGN, len), 0);
    memcpy(img, good, len);
    zj_img_policy_d *pol = sec_at(img, ZJ_SEC_POLICIES);
    assert_int_equal(section(img, ZJ_SEC_POLICIES)->count, 2);
    zj_img_policy_d *big = pol[0].n_sets == ZJ_POLICY_MAX_SETS ? &pol[0] : &pol[1];
    zj_img_policy_d *next = big == &pol[0] ? &pol[1] : &pol[0];
    assert_int_equal(next->n_sets, 1);
    if (big->first_pset + ZJ_POLICY_MAX_SETS == next->first_pset &&
        big->first_rrset + ZJ_POLICY_MAX_SETS == next->first_rrset) {
        big->n_sets = ZJ_POLICY_MAX_SETS + 1;
    } else {
        assert_int_equal(next->first_pset + 1, big->first_pset);
        assert_int_equal(next->first_rrset + 1, big->first_rrset);
        next->n_sets = ZJ_POLICY_MAX_SETS + 1;
    }
    resum(img, len);
    zj_image_t *im = NULL;
    char err[256];
    int rc = zj_image_open_mem(img, len, &im, err, sizeof(err));
    if (rc == ZJ_OK) {
        zj_image_close(im);
        fail_msg("a policy of %u sets accepted", ZJ_POLICY_MAX_SETS + 1);
    }
    assert_int_equal(rc, ZJ_EIMAGE);
    free(img);
    assert_int_equal(zj_image_open_mem(good, len, &im, err, sizeof(err)), ZJ_OK);
    zj_image_close(im);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_policy_weighted_failover_multivalue),
        cmocka_unit_test(test_good_policy_geo_codes),
        cmocka_unit_test(test_good_policy_checks),
        cmocka_unit_test(test_good_policy_cidr_collection),
        cmocka_unit_test(test_good_policy_latency_table),
        cmocka_unit_test(test_plain_zone_has_no_policy_sections),
        cmocka_unit_test(test_bad_policy_reports_line),
        cmocka_unit_test(test_policy_without_its_zone),
        cmocka_unit_test(test_policy_by_origin_and_once),
        cmocka_unit_test(test_corrupted_policy_sections_rejected),
        cmocka_unit_test(test_policy_set_limit_in_the_compiler),
        cmocka_unit_test(test_policy_set_limit_in_the_validator),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
