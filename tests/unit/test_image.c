/* Image builder, validator and lookup: outcomes of zj_zone_lookup on a small zone, and
 * rejection of truncated, corrupted and inconsistent images (run under ASan in CI). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <xxhash.h>

#include "compile/emit.h"
#include "zonejet/dname.h"
#include "zonejet/err.h"
#include "zonejet/zone.h"

static const char ZONE[] = "$ORIGIN example.com.\n"
                           "$TTL 3600\n"
                           "@ IN SOA ns1 hostmaster 2024010101 7200 3600 1209600 300\n"
                           "@ NS ns1\n"
                           "@ NS ns2.example.net.\n"
                           "@ MX 10 mail\n"
                           "ns1 A 192.0.2.1\n"
                           "mail A 192.0.2.2\n"
                           "www A 192.0.2.3\n"
                           "alias CNAME www\n"
                           "*.wild A 192.0.2.4\n"
                           "a.b.ent TXT \"deep\"\n"
                           "*.ent A 192.0.2.5\n"
                           "sub NS ns.sub\n"
                           "sub DS 12345 13 2 "
                           "0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF\n"
                           "ns.sub A 192.0.2.6\n"
                           "dn DNAME example.org.\n";

static uint8_t *build(const char *text, size_t *len)
{
    zj_build_opts_t o;
    memset(&o, 0, sizeof(o));
    o.quiet = true;
    zj_builder_t *b = zj_builder_new(&o);
    assert_int_equal(zj_builder_add_text(b, "test.zone", text, strlen(text), NULL), ZJ_OK);
    uint8_t *img = NULL;
    assert_int_equal(zj_builder_finish(b, &img, len), ZJ_OK);
    zj_builder_free(b);
    return img;
}

static zj_image_t *open_built(void)
{
    size_t len = 0;
    uint8_t *buf = build(ZONE, &len);
    zj_image_t *img = NULL;
    char err[256];
    assert_int_equal(zj_image_open_mem(buf, len, &img, err, sizeof(err)), ZJ_OK);
    return img;
}

static void lookup(const zj_image_t *img, const char *name, uint16_t type, zj_lookup_t *lk)
{
    uint8_t wire[255];
    uint8_t root = 0;
    int n = zj_dname_from_text(name, strlen(name), &root, wire);
    assert_true(n > 0);
    zj_qname_t q;
    zj_qname_init(&q, wire, (size_t)n);
    int labels = 0;
    uint32_t z = zj_image_find_zone(img, &q, false, &labels);
    assert_int_not_equal(z, ZJ_IMG_NONE);
    zj_zone_lookup(img, z, &q, type, lk);
}

static void test_lookup_outcomes(void **state)
{
    (void)state;
    zj_image_t *img = open_built();
    zj_lookup_t lk;

    lookup(img, "WWW.Example.COM.", ZJ_T_A, &lk);
    assert_int_equal(lk.kind, ZJ_LOOKUP_EXACT);
    assert_false(lk.wildcard);

    lookup(img, "www.example.com.", ZJ_T_AAAA, &lk);
    assert_int_equal(lk.kind, ZJ_LOOKUP_NODATA);

    lookup(img, "nope.example.com.", ZJ_T_A, &lk);
    assert_int_equal(lk.kind, ZJ_LOOKUP_NXDOMAIN);

    lookup(img, "alias.example.com.", ZJ_T_A, &lk);
    assert_int_equal(lk.kind, ZJ_LOOKUP_CNAME);
    lookup(img, "alias.example.com.", ZJ_T_CNAME, &lk);
    assert_int_equal(lk.kind, ZJ_LOOKUP_EXACT);

    lookup(img, "x.y.wild.example.com.", ZJ_T_A, &lk);
    assert_int_equal(lk.kind, ZJ_LOOKUP_EXACT);
    assert_true(lk.wildcard);
    lookup(img, "x.wild.example.com.", ZJ_T_MX, &lk);
    assert_int_equal(lk.kind, ZJ_LOOKUP_NODATA);
    assert_true(lk.wildcard);

    /* b.ent exists as an empty non-terminal: it blocks *.ent for names below it */
    lookup(img, "b.ent.example.com.", ZJ_T_A, &lk);
    assert_int_equal(lk.kind, ZJ_LOOKUP_NODATA);
    assert_true(lk.ent);
    lookup(img, "zz.b.ent.example.com.", ZJ_T_A, &lk);
    assert_int_equal(lk.kind, ZJ_LOOKUP_NXDOMAIN);
    lookup(img, "other.ent.example.com.", ZJ_T_A, &lk);
    assert_int_equal(lk.kind, ZJ_LOOKUP_EXACT);
    assert_true(lk.wildcard);

    lookup(img, "host.sub.example.com.", ZJ_T_A, &lk);
    assert_int_equal(lk.kind, ZJ_LOOKUP_DELEG);
    lookup(img, "ns.sub.example.com.", ZJ_T_A, &lk);
    assert_int_equal(lk.kind, ZJ_LOOKUP_DELEG);
    lookup(img, "sub.example.com.", ZJ_T_DS, &lk);
    assert_int_equal(lk.kind, ZJ_LOOKUP_EXACT);
    lookup(img, "sub.example.com.", ZJ_T_NS, &lk);
    assert_int_equal(lk.kind, ZJ_LOOKUP_DELEG);

    lookup(img, "a.b.dn.example.com.", ZJ_T_A, &lk);
    assert_int_equal(lk.kind, ZJ_LOOKUP_DNAME);
    lookup(img, "dn.example.com.", ZJ_T_A, &lk);
    assert_int_equal(lk.kind, ZJ_LOOKUP_NODATA);

    zj_image_close(img);
}

static void test_find_zone_deepest_and_refused(void **state)
{
    (void)state;
    static const char two[] = "$ORIGIN com.\n$TTL 60\n@ SOA a b 1 2 3 4 5\n@ NS a\na A 192.0.2.1\n"
                              "example NS ns.example\nns.example A 192.0.2.2\n";
    zj_build_opts_t o;
    memset(&o, 0, sizeof(o));
    o.quiet = true;
    zj_builder_t *b = zj_builder_new(&o);
    assert_int_equal(zj_builder_add_text(b, "com.zone", two, strlen(two), NULL), ZJ_OK);
    assert_int_equal(zj_builder_add_text(b, "example.zone", ZONE, strlen(ZONE), NULL), ZJ_OK);
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(zj_builder_finish(b, &buf, &len), ZJ_OK);
    zj_builder_free(b);
    zj_image_t *img = NULL;
    char err[256];
    assert_int_equal(zj_image_open_mem(buf, len, &img, err, sizeof(err)), ZJ_OK);
    assert_int_equal(img->n_zones, 2);

    uint8_t wire[255];
    uint8_t root = 0;
    zj_qname_t q;
    int labels = 0;
    int n = zj_dname_from_text("www.example.com.", 16, &root, wire);
    zj_qname_init(&q, wire, (size_t)n);
    uint32_t z = zj_image_find_zone(img, &q, false, &labels);
    assert_int_equal(labels, 2);
    n = zj_dname_from_text("example.com.", 12, &root, wire);
    zj_qname_init(&q, wire, (size_t)n);
    uint32_t parent = zj_image_find_zone(img, &q, true, &labels);
    assert_int_equal(labels, 1);
    assert_int_not_equal(z, parent);
    n = zj_dname_from_text("example.org.", 12, &root, wire);
    zj_qname_init(&q, wire, (size_t)n);
    assert_int_equal(zj_image_find_zone(img, &q, false, &labels), ZJ_IMG_NONE);
    zj_image_close(img);
}

static int try_open(const uint8_t *src, size_t len)
{
    uint8_t *copy = NULL;
    assert_int_equal(posix_memalign((void **)&copy, 8, len ? len : 8), 0);
    memcpy(copy, src, len);
    zj_image_t *img = NULL;
    char err[256];
    int rc = zj_image_open_mem(copy, len, &img, err, sizeof(err));
    if (rc == ZJ_OK) {
        zj_image_close(img); /* frees copy */
    } else {
        free(copy);
    }
    return rc;
}

static void reseal(uint8_t *img, size_t len)
{
    zj_img_header_d h;
    memcpy(&h, img, sizeof(h));
    h.checksum = XXH3_64bits(img + ZJ_IMG_SUM_FROM, len - ZJ_IMG_SUM_FROM);
    memcpy(img, &h, sizeof(h));
}

static void test_image_rejects_truncated_and_flipped(void **state)
{
    (void)state;
    size_t len = 0;
    uint8_t *img = build(ZONE, &len);
    assert_int_equal(try_open(img, len), ZJ_OK);
    for (size_t cut = 0; cut < len; cut += (cut < 64 ? 1 : 37)) {
        assert_int_not_equal(try_open(img, cut), ZJ_OK);
    }
    for (size_t i = 0; i < len; i += 7) {
        img[i] ^= 0x5A;
        assert_int_not_equal(try_open(img, len), ZJ_OK);
        img[i] ^= 0x5A;
    }
    zj_img_header_d h;
    memcpy(&h, img, sizeof(h));
    h.version = ZJ_IMG_VERSION + 1;
    memcpy(img, &h, sizeof(h));
    assert_int_equal(try_open(img, len), ZJ_EVERSION);
    free(img);
}

/* Corruptions that keep a valid checksum: every field the reader trusts must be checked. */
static void test_image_rejects_bad_offsets_with_valid_checksum(void **state)
{
    (void)state;
    size_t len = 0;
    uint8_t *img = build(ZONE, &len);
    zj_img_header_d h;
    memcpy(&h, img, sizeof(h));
    zj_img_section_d *tab = (zj_img_section_d *)(void *)(img + sizeof(h));
    /* Overwrite each 32-bit word of every fixed-size section with a huge value in turn. */
    uint32_t kinds[] = {ZJ_SEC_ZONES, ZJ_SEC_NODES, ZJ_SEC_RRSETS, ZJ_SEC_INDEX, ZJ_SEC_ADDL};
    int rejected = 0;
    int tried = 0;
    for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
        for (uint32_t s = 0; s < h.n_sections; s++) {
            if (tab[s].kind != kinds[k]) {
                continue;
            }
            for (uint64_t off = tab[s].off; off + 4 <= tab[s].off + tab[s].len; off += 4) {
                uint32_t saved;
                memcpy(&saved, img + off, 4);
                uint32_t bad = 0x7FFFFFF0u;
                memcpy(img + off, &bad, 4);
                reseal(img, len);
                tried++;
                int rc = try_open(img, len);
                rejected += rc != ZJ_OK;
                memcpy(img + off, &saved, 4);
            }
        }
    }
    reseal(img, len);
    assert_int_equal(try_open(img, len), ZJ_OK);
    /* Some words (tags, TTL-free fields, flags) may legally hold any value; most may not. */
    assert_true(tried > 0);
    assert_true(rejected * 2 > tried);
    /* A section pointing past the end of the file. */
    for (uint32_t s = 0; s < h.n_sections; s++) {
        uint64_t saved = tab[s].off;
        tab[s].off = len + 8;
        reseal(img, len);
        assert_int_not_equal(try_open(img, len), ZJ_OK);
        tab[s].off = saved;
    }
    free(img);
}

static void test_builder_rejects_semantic_errors(void **state)
{
    (void)state;
    static const char *bad[] = {
        "$ORIGIN x.\n@ 60 NS ns\nns A 192.0.2.1\n",                       /* no SOA */
        "$ORIGIN x.\n@ 60 SOA a b 1 2 3 4 5\nns A 192.0.2.1\n",           /* no NS */
        "$ORIGIN x.\n@ 60 SOA a b 1 2 3 4 5\n@ NS a\na.y. A 192.0.2.1\n", /* out of zone */
        "$ORIGIN x.\n@ 60 SOA a b 1 2 3 4 5\n@ NS a\nc CNAME a\nc A 192.0.2.1\n",
        "$ORIGIN x.\n@ 60 SOA a b 1 2 3 4 5\n@ NS a\nc CNAME a\nc CNAME b\n",
        "$ORIGIN x.\n@ 60 SOA a b 1 2 3 4 5\n@ NS a\nd DNAME y.\ne.d A 192.0.2.1\n",
        "$ORIGIN x.\n@ 60 SOA a b 1 2 3 4 5\n@ NS a\nw SOA a b 1 2 3 4 5\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *diag = NULL;
        size_t dlen = 0;
        FILE *f = open_memstream(&diag, &dlen);
        zj_build_opts_t o;
        memset(&o, 0, sizeof(o));
        o.diag = f;
        o.quiet = true;
        zj_builder_t *b = zj_builder_new(&o);
        (void)zj_builder_add_text(b, "bad.zone", bad[i], strlen(bad[i]), NULL);
        uint8_t *img = NULL;
        size_t len = 0;
        assert_int_equal(zj_builder_finish(b, &img, &len), ZJ_EZONE);
        assert_null(img);
        zj_builder_free(b);
        fclose(f);
        assert_non_null(strstr(diag, "bad.zone:"));
        free(diag);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lookup_outcomes),
        cmocka_unit_test(test_find_zone_deepest_and_refused),
        cmocka_unit_test(test_image_rejects_truncated_and_flipped),
        cmocka_unit_test(test_image_rejects_bad_offsets_with_valid_checksum),
        cmocka_unit_test(test_builder_rejects_semantic_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
