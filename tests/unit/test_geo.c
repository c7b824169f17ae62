/* policy/geo: the test database (data/make_geo_mmdb.pl, GeoLite2-City layout) loads into prefix
 * maps; lookups give continent, country and subdivision with the network's prefix length as the
 * scope, for nested networks, continent-only records, records without a location, addresses in
 * no network, and both families; the IPv4 aliases of an IPv6 tree (::ffff:0:0/96, 2002::/16,
 * ::/96) give no location instead of a second copy of IPv4; an IPv4-only tree loads too;
 * missing, empty, garbage and truncated files fail with a reason; and lookups agree with
 * libmaxminddb's own lookup over many addresses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <maxminddb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "zonejet/err.h"
#include "zonejet/image.h"
#include "policy/geo.h"

#define DB6 ZJ_TEST_DATA "/geo_test.mmdb"
#define DB4 ZJ_TEST_DATA "/geo_test4.mmdb"

#define SUB(a, b, c) (((uint32_t)(a) << 24) | ((uint32_t)(b) << 16) | ((uint32_t)(c) << 8))

static zj_geo_t *open_db(const char *path)
{
    zj_geo_t *g = NULL;
    char err[256];
    int rc = zj_geo_open(path, &g, err, sizeof(err));
    if (rc != ZJ_OK) {
        fail_msg("%s", err);
    }
    return g;
}

/* Look up text; returns whether a location was found, fills loc and scope. */
static bool look(const zj_geo_t *g, const char *text, zj_geo_loc_t *loc, unsigned *scope)
{
    uint8_t a[16];
    uint8_t sc = 0xEE;
    bool found;
    memset(loc, 0xAB, sizeof(*loc));
    if (strchr(text, ':') != NULL) {
        assert_int_equal(inet_pton(AF_INET6, text, a), 1);
        found = zj_geo_lookup(g, AF_INET6, a, loc, &sc);
    } else {
        assert_int_equal(inet_pton(AF_INET, text, a), 1);
        found = zj_geo_lookup(g, AF_INET, a, loc, &sc);
    }
    *scope = sc;
    return found;
}

static void expect_loc(const zj_geo_t *g, const char *addr, const char *cont, const char *country,
                       uint32_t sub, unsigned scope)
{
    zj_geo_loc_t loc;
    unsigned sc;
    if (!look(g, addr, &loc, &sc)) {
        fail_msg("%s: no location", addr);
    }
    assert_int_equal(loc.continent, ZJ_GEO_CODE2(cont[0], cont[1]));
    if (country != NULL) {
        assert_int_equal(loc.country, ZJ_GEO_CODE2(country[0], country[1]));
    } else {
        assert_int_equal(loc.country, 0);
    }
    assert_int_equal(loc.subdivision, sub);
    if (sc != scope) {
        fail_msg("%s: scope %u, expected %u", addr, sc, scope);
    }
}

static void expect_none(const zj_geo_t *g, const char *addr, unsigned scope)
{
    zj_geo_loc_t loc;
    unsigned sc;
    if (look(g, addr, &loc, &sc)) {
        fail_msg("%s: location %04x/%04x, expected none", addr, loc.continent, loc.country);
    }
    if (sc != scope) {
        fail_msg("%s: scope %u, expected %u", addr, sc, scope);
    }
}

static void test_geo_ipv4_locations_and_scopes(void **state)
{
    (void)state;
    zj_geo_t *g = open_db(DB6);
    expect_loc(g, "192.0.2.5", "NA", "US", SUB('C', 'A', 0), 24);
    expect_loc(g, "198.51.100.255", "EU", "DE", SUB('B', 'Y', 0), 24);
    expect_loc(g, "203.0.113.1", "AS", "JP", 0, 25);
    expect_loc(g, "203.0.113.200", "OC", "AU", SUB('N', 'S', 'W'), 25);
    expect_loc(g, "10.1.2.3", "NA", "CA", SUB('Q', 'C', 0), 16); /* nested inside 10/8 */
    expect_loc(g, "10.0.0.1", "EU", "FR", 0, 16);                /* 10/8 around 10.1/16 */
    expect_loc(g, "10.2.0.0", "EU", "FR", 0, 15);
    expect_loc(g, "10.200.0.0", "EU", "FR", 0, 9);
    expect_loc(g, "100.64.1.1", "AF", NULL, 0, 10); /* continent only */
    expect_none(g, "8.8.8.8", 7);                   /* no data: the empty record's depth */
    expect_none(g, "100.128.1.1", 16);              /* data without a location: its network */
    expect_none(g, "100.129.0.1", 16);              /* the empty sibling of that network */
    expect_none(g, "0.0.0.0", 5);
    assert_true(zj_geo_locations(g) == 10);
    assert_true(zj_geo_networks(g) >= 10);
    zj_geo_close(g);
}

static void test_geo_ipv6_locations_and_aliases(void **state)
{
    (void)state;
    zj_geo_t *g = open_db(DB6);
    expect_loc(g, "2001:db8:1::5", "NA", "US", SUB('T', 'X', 0), 48);
    expect_loc(g, "2001:db8:2::5", "EU", "GB", SUB('E', 'N', 'G'), 47);
    expect_loc(g, "2001:db8:ffff::1", "EU", "GB", SUB('E', 'N', 'G'), 33);
    expect_loc(g, "2400:cb00:1::1", "AS", "SG", 0, 32);
    /* The IPv4 subtree and the prefixes that alias it are not IPv6 data. They merge with the
     * empty records around them into runs without location: [::, 2001:db8::) and
     * [2001:db9::, 2400:cb00::); the scope is the largest block around the address inside
     * its run. */
    expect_none(g, "::c000:205", 3);
    expect_none(g, "::ffff:192.0.2.5", 3);
    expect_none(g, "2001:0:c000:205::1", 21);
    expect_none(g, "2002:c000:0205::1", 15);
    expect_none(g, "2a00::1", 5);
    zj_geo_close(g);
}

static void test_geo_ipv4_only_database(void **state)
{
    (void)state;
    zj_geo_t *g = open_db(DB4);
    expect_loc(g, "192.0.2.5", "NA", "US", SUB('C', 'A', 0), 24);
    expect_loc(g, "10.1.2.3", "NA", "CA", SUB('Q', 'C', 0), 16);
    expect_loc(g, "10.2.0.0", "EU", "FR", 0, 15);
    expect_none(g, "8.8.8.8", 7);
    expect_none(g, "2001:db8:1::5", 0); /* no IPv6 in the file */
    assert_int_equal(zj_geo_locations(g), 7);
    zj_geo_close(g);
}

static void test_geo_unknown_family_has_no_location(void **state)
{
    (void)state;
    zj_geo_t *g = open_db(DB6);
    uint8_t a[16] = {0};
    zj_geo_loc_t loc;
    uint8_t sc = 9;
    assert_false(zj_geo_lookup(g, AF_UNIX, a, &loc, &sc));
    assert_int_equal(sc, 0);
    zj_geo_close(g);
    zj_geo_close(NULL);
}

static void write_bytes(const char *path, const void *p, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, len, f), len);
    fclose(f);
}

static void expect_open_fails(const char *path, int want)
{
    zj_geo_t *g = (zj_geo_t *)1;
    char err[256] = "";
    int rc = zj_geo_open(path, &g, err, sizeof(err));
    if (rc == ZJ_OK) {
        fail_msg("%s opened", path);
    }
    if (want != 0) {
        assert_int_equal(rc, want);
    }
    assert_null(g);
    assert_non_null(strstr(err, path)); /* the reason names the file */
}

static void test_geo_bad_files_fail_with_a_reason(void **state)
{
    (void)state;
    char path[] = "/tmp/zj_geo_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    expect_open_fails("/nonexistent/geo.mmdb", ZJ_ENOENT);
    write_bytes(path, "", 0);
    expect_open_fails(path, 0);
    char junk[4096];
    for (size_t i = 0; i < sizeof(junk); i++) {
        junk[i] = (char)(i * 131u + 7u);
    }
    write_bytes(path, junk, sizeof(junk));
    expect_open_fails(path, 0);

    /* the real file cut short, and with its search tree overwritten */
    FILE *f = fopen(DB6, "rb");
    assert_non_null(f);
    uint8_t buf[8192];
    size_t len = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    assert_true(len > 1000 && len < sizeof(buf));
    write_bytes(path, buf, len / 2);
    expect_open_fails(path, 0);
    for (size_t i = 0; i < 600; i++) {
        buf[i] = 0xFF; /* node records pointing far past the data section */
    }
    write_bytes(path, buf, len);
    expect_open_fails(path, 0);
    for (size_t i = 0; i < 600; i++) {
        buf[i] = 0; /* every record points back at node 0: a loop */
    }
    write_bytes(path, buf, len);
    expect_open_fails(path, ZJ_EMALF);
    unlink(path);
}

/* ---- agreement with libmaxminddb ---------------------------------------------------------- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint32_t rnd32(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}

static bool str_code(MMDB_entry_s *e, const char *a, const char *b, const char *c, char *out)
{
    MMDB_entry_data_s d;
    int st = c ? MMDB_get_value(e, &d, a, b, c, NULL) : MMDB_get_value(e, &d, a, b, NULL);
    if (st != MMDB_SUCCESS || !d.has_data || d.type != MMDB_DATA_TYPE_UTF8_STRING ||
        d.data_size > 3) {
        return false;
    }
    memcpy(out, d.utf8_string, d.data_size);
    out[d.data_size] = 0;
    return true;
}

/* Compare one address with MMDB_lookup_sockaddr. */
static void compare_one(const MMDB_s *mm, const zj_geo_t *g, int family, const uint8_t *a)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    if (family == AF_INET) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        s4->sin_family = AF_INET;
        memcpy(&s4->sin_addr, a, 4);
    } else {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        s6->sin6_family = AF_INET6;
        memcpy(&s6->sin6_addr, a, 16);
    }
    int err = 0;
    MMDB_lookup_result_s r = MMDB_lookup_sockaddr(mm, (struct sockaddr *)&ss, &err);
    assert_int_equal(err, MMDB_SUCCESS);
    zj_geo_loc_t loc;
    uint8_t sc;
    bool found = zj_geo_lookup(g, family, a, &loc, &sc);
    unsigned want_scope = r.netmask - (family == AF_INET ? 96u : 0u);
    char cont[4] = "", country[4] = "", sub[4] = "";
    bool has = r.found_entry && str_code(&r.entry, "continent", "code", NULL, cont);
    assert_int_equal(found, has);
    if (!has) {
        /* neighbouring records without data are one piece: the scope may be wider */
        assert_true(sc <= want_scope);
        return;
    }
    assert_int_equal(sc, want_scope);
    assert_int_equal(loc.continent, ZJ_GEO_CODE2(cont[0], cont[1]));
    if (str_code(&r.entry, "country", "iso_code", NULL, country)) {
        assert_int_equal(loc.country, ZJ_GEO_CODE2(country[0], country[1]));
    } else {
        assert_int_equal(loc.country, 0);
    }
    uint32_t want_sub = 0;
    if (str_code(&r.entry, "subdivisions", "0", "iso_code", sub)) {
        for (int i = 0; sub[i] != 0; i++) {
            want_sub |= (uint32_t)(uint8_t)sub[i] << (24 - 8 * i);
        }
    }
    assert_int_equal(loc.subdivision, want_sub);
}

static void test_geo_agrees_with_libmaxminddb(void **state)
{
    (void)state;
    static const uint8_t bases4[][4] = {
        {192, 0, 2, 0}, {198, 51, 100, 0}, {203, 0, 113, 0}, {10, 0, 0, 0}, {100, 64, 0, 0}};
    static const uint8_t bases6[][4] = {{0x20, 0x01, 0x0d, 0xb8}, {0x24, 0x00, 0xcb, 0x00}};
    MMDB_s mm;
    assert_int_equal(MMDB_open(DB6, MMDB_MODE_MMAP, &mm), MMDB_SUCCESS);
    zj_geo_t *g = open_db(DB6);
    for (int i = 0; i < 20000; i++) {
        uint8_t a[16];
        uint32_t r = rnd32();
        if (i % 2 == 0) {
            memcpy(a, bases4[r % 5], 4);
            uint32_t keep = r % 33; /* leading bits kept from the base */
            for (uint32_t b = keep; b < 32; b++) {
                if (rnd32() & 1) {
                    a[b / 8] ^= (uint8_t)(0x80u >> (b % 8));
                }
            }
            compare_one(&mm, g, AF_INET, a);
        } else {
            for (int k = 0; k < 16; k++) {
                a[k] = (uint8_t)rnd32();
            }
            memcpy(a, bases6[r % 2], 4);
            uint32_t keep = r % 64;
            for (uint32_t b = keep; b < 32; b++) {
                if (rnd32() & 1) {
                    a[b / 8] ^= (uint8_t)(0x80u >> (b % 8));
                }
            }
            /* outside the aliased prefixes, where the two deliberately differ */
            bool alias = (a[0] == 0x20 && a[1] == 0x02) ||
                         (a[0] == 0x20 && a[1] == 0x01 && a[2] == 0 && a[3] == 0) ||
                         (memcmp(a, "\0\0\0\0\0\0\0\0\0\0", 10) == 0);
            if (!alias) {
                compare_one(&mm, g, AF_INET6, a);
            }
        }
    }
    zj_geo_close(g);
    MMDB_close(&mm);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_geo_ipv4_locations_and_scopes),
        cmocka_unit_test(test_geo_ipv6_locations_and_aliases),
        cmocka_unit_test(test_geo_ipv4_only_database),
        cmocka_unit_test(test_geo_unknown_family_has_no_location),
        cmocka_unit_test(test_geo_bad_files_fail_with_a_reason),
        cmocka_unit_test(test_geo_agrees_with_libmaxminddb),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
