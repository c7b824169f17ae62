/* policy/pmap: prefix maps built from nested prefixes (the longest wins), gaps (ZJ_IMG_NONE, len
 * 0), /0, /32 and /128, adjacent prefixes, the ECS scope of a lookup, duplicate and malformed
 * prefixes refused, the validator on good and damaged maps, and a randomized comparison of both
 * families against a brute-force longest-prefix match that also recomputes the scope. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "zonejet/err.h"
#include "policy/pmap.h"

typedef struct maps {
    zj_pmap4_d *m4;
    zj_pmap6_d *m6;
    size_t n4, n6;
} maps_t;

static zj_prefix_t pfx(const char *text, unsigned len, uint32_t value)
{
    zj_prefix_t p = {.len = (uint8_t)len, .value = value};
    if (strchr(text, ':') != NULL) {
        p.family = AF_INET6;
        assert_int_equal(inet_pton(AF_INET6, text, p.addr), 1);
    } else {
        p.family = AF_INET;
        assert_int_equal(inet_pton(AF_INET, text, p.addr), 1);
    }
    return p;
}

static void build(maps_t *m, const zj_prefix_t *p, size_t n)
{
    assert_int_equal(zj_pmap_build(p, n, &m->m4, &m->n4, &m->m6, &m->n6), ZJ_OK);
    assert_true(zj_pmap4_valid(m->m4, m->n4));
    assert_true(zj_pmap6_valid(m->m6, m->n6));
}

static void drop(maps_t *m)
{
    free(m->m4);
    free(m->m6);
}

static uint32_t find(const maps_t *m, const char *text, unsigned *scope)
{
    uint8_t a[16];
    uint8_t sc = 0xEE;
    uint32_t v;
    if (strchr(text, ':') != NULL) {
        assert_int_equal(inet_pton(AF_INET6, text, a), 1);
        v = zj_pmap6_find(m->m6, m->n6, a, &sc);
    } else {
        assert_int_equal(inet_pton(AF_INET, text, a), 1);
        uint32_t x = ((uint32_t)a[0] << 24) | ((uint32_t)a[1] << 16) | ((uint32_t)a[2] << 8) | a[3];
        v = zj_pmap4_find(m->m4, m->n4, x, &sc);
    }
    *scope = sc;
    return v;
}

static void expect(const maps_t *m, const char *addr, uint32_t value, unsigned scope)
{
    unsigned sc = 0;
    uint32_t v = find(m, addr, &sc);
    if (v != value || sc != scope) {
        fail_msg("%s: value %u scope %u, expected value %u scope %u", addr, v, sc, value, scope);
    }
}

static void test_pmap_empty_input_is_one_gap_per_family(void **state)
{
    (void)state;
    maps_t m;
    build(&m, NULL, 0);
    assert_int_equal(m.n4, 1);
    assert_int_equal(m.n6, 1);
    assert_int_equal(m.m4[0].value, ZJ_IMG_NONE);
    assert_int_equal(m.m4[0].len, 0);
    assert_int_equal(m.m6[0].value, ZJ_IMG_NONE);
    expect(&m, "1.2.3.4", ZJ_IMG_NONE, 0);
    expect(&m, "2001:db8::1", ZJ_IMG_NONE, 0);
    drop(&m);
}

static void test_pmap_nested_prefixes_longest_wins(void **state)
{
    (void)state;
    /* given in an order that is not sorted, inner first */
    zj_prefix_t p[] = {pfx("10.1.2.0", 24, 3), pfx("10.0.0.0", 8, 1), pfx("10.1.0.0", 16, 2),
                       pfx("2001:db8:1::", 48, 5), pfx("2001:db8::", 32, 4)};
    maps_t m;
    build(&m, p, 5);
    /* gap, 10/8 part, 10.1/16 part, 10.1.2/24, 10.1/16 rest, 10/8 rest, gap */
    assert_int_equal(m.n4, 7);
    unsigned sc;
    assert_int_equal(find(&m, "9.255.255.255", &sc), ZJ_IMG_NONE);
    assert_int_equal(find(&m, "10.0.0.0", &sc), 1);
    assert_int_equal(find(&m, "10.1.0.0", &sc), 2);
    assert_int_equal(find(&m, "10.1.1.255", &sc), 2);
    assert_int_equal(find(&m, "10.1.2.0", &sc), 3);
    assert_int_equal(find(&m, "10.1.2.255", &sc), 3);
    assert_int_equal(find(&m, "10.1.3.0", &sc), 2);
    assert_int_equal(find(&m, "10.2.0.0", &sc), 1);
    assert_int_equal(find(&m, "10.255.255.255", &sc), 1);
    assert_int_equal(find(&m, "11.0.0.0", &sc), ZJ_IMG_NONE);
    assert_int_equal(find(&m, "2001:db8:1:ffff::1", &sc), 5);
    assert_int_equal(find(&m, "2001:db8:2::1", &sc), 4);
    assert_int_equal(find(&m, "2001:db9::", &sc), ZJ_IMG_NONE);
    assert_int_equal(find(&m, "::", &sc), ZJ_IMG_NONE);
    drop(&m);
}

static void test_pmap_gaps_have_no_value_and_len_zero(void **state)
{
    (void)state;
    zj_prefix_t p[] = {pfx("10.0.0.0", 8, 1), pfx("192.168.0.0", 16, 2)};
    maps_t m;
    build(&m, p, 2);
    assert_int_equal(m.n4, 5);
    for (size_t i = 0; i < m.n4; i += 2) {
        assert_int_equal(m.m4[i].value, ZJ_IMG_NONE);
        assert_int_equal(m.m4[i].len, 0);
    }
    assert_int_equal(m.m4[1].start, 0x0A000000u);
    assert_int_equal(m.m4[1].len, 8);
    assert_int_equal(m.m4[2].start, 0x0B000000u);
    assert_int_equal(m.m4[3].start, 0xC0A80000u);
    assert_int_equal(m.m4[4].start, 0xC0A90000u);
    drop(&m);
}

static void test_pmap_zero_and_full_length_prefixes(void **state)
{
    (void)state;
    zj_prefix_t p[] = {pfx("0.0.0.0", 0, 1),
                       pfx("192.0.2.7", 32, 2),
                       pfx("255.255.255.255", 32, 3),
                       pfx("::", 0, 4),
                       pfx("2001:db8::7", 128, 5),
                       pfx("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 128, 6),
                       pfx("::", 128, 7)};
    maps_t m;
    build(&m, p, 7);
    /* /0 covers all: no gap piece anywhere */
    for (size_t i = 0; i < m.n4; i++) {
        assert_int_not_equal(m.m4[i].value, ZJ_IMG_NONE);
    }
    for (size_t i = 0; i < m.n6; i++) {
        assert_int_not_equal(m.m6[i].value, ZJ_IMG_NONE);
    }
    expect(&m, "192.0.2.7", 2, 32);
    expect(&m, "255.255.255.255", 3, 32);
    expect(&m, "192.0.2.6", 1, 32); /* 192.0.2.6/32 is the largest block without .7 */
    expect(&m, "192.0.2.4", 1, 31); /* .4-.5 */
    expect(&m, "0.0.0.0", 1, 1);    /* 0/1 holds neither /32 */
    expect(&m, "128.0.0.0", 1, 2);  /* 128/2 holds neither 192.0.2.7 nor 255.255.255.255 */
    expect(&m, "255.255.255.254", 1, 32);
    expect(&m, "2001:db8::7", 5, 128);
    expect(&m, "::", 7, 128);
    expect(&m, "::1", 4, 128);
    expect(&m, "::2", 4, 127);
    expect(&m, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 6, 128);
    expect(&m, "8000::", 4, 2); /* 8000::/2 excludes ffff...ffff (in c000::/2) */
    drop(&m);
}

static void test_pmap_adjacent_prefixes_stay_separate(void **state)
{
    (void)state;
    zj_prefix_t p[] = {pfx("10.0.0.0", 24, 1), pfx("10.0.1.0", 24, 1), pfx("10.0.2.0", 23, 2)};
    maps_t m;
    build(&m, p, 3);
    /* gap, three prefixes, gap: same values are not merged across prefixes */
    assert_int_equal(m.n4, 5);
    expect(&m, "10.0.0.9", 1, 24);
    expect(&m, "10.0.1.9", 1, 24);
    expect(&m, "10.0.3.9", 2, 23);
    expect(&m, "10.0.4.0", ZJ_IMG_NONE, 22);
    expect(&m, "9.255.255.255", ZJ_IMG_NONE, 7); /* 8/7 holds no prefix, 8/6 holds 10/8 */
    drop(&m);
}

static void test_pmap_scope_is_the_largest_block_inside_the_piece(void **state)
{
    (void)state;
    zj_prefix_t p[] = {pfx("10.0.0.0", 8, 1), pfx("10.1.0.0", 16, 2), pfx("2001:db8::", 32, 3),
                       pfx("2001:db8:8000::", 33, 4)};
    maps_t m;
    build(&m, p, 4);
    expect(&m, "10.1.2.3", 2, 16);  /* the /16 itself */
    expect(&m, "10.0.0.1", 1, 16);  /* 10.0/16 stops short of 10.1/16 */
    expect(&m, "10.2.0.1", 1, 15);  /* 10.2/15 */
    expect(&m, "10.128.0.1", 1, 9); /* 10.128/9 */
    expect(&m, "10.64.0.1", 1, 10); /* 10.64/10 */
    expect(&m, "11.0.0.1", ZJ_IMG_NONE, 8);
    expect(&m, "12.0.0.1", ZJ_IMG_NONE, 6);  /* 12/6 = 12-15 */
    expect(&m, "200.0.0.1", ZJ_IMG_NONE, 1); /* 128/1 */
    expect(&m, "2001:db8:1::", 3, 33);       /* 2001:db8::/33 */
    expect(&m, "2001:db8:9000::", 4, 33);
    drop(&m);
}

static void test_pmap_duplicates_and_bad_prefixes_are_refused(void **state)
{
    (void)state;
    zj_pmap4_d *m4 = (zj_pmap4_d *)1;
    zj_pmap6_d *m6 = (zj_pmap6_d *)1;
    size_t n4 = 9, n6 = 9;
    zj_prefix_t dup[] = {pfx("10.0.0.0", 8, 1), pfx("10.1.0.0", 16, 2), pfx("10.0.0.0", 8, 3)};
    assert_int_equal(zj_pmap_build(dup, 3, &m4, &n4, &m6, &n6), ZJ_EINVAL);
    assert_null(m4);
    assert_null(m6);
    zj_prefix_t dup6[] = {pfx("2001:db8::", 32, 1), pfx("2001:db8::", 32, 1)};
    assert_int_equal(zj_pmap_build(dup6, 2, &m4, &n4, &m6, &n6), ZJ_EINVAL);
    /* the same address with another length is not a duplicate */
    zj_prefix_t same[] = {pfx("10.0.0.0", 8, 1), pfx("10.0.0.0", 9, 2), pfx("10.0.0.0", 32, 3)};
    assert_int_equal(zj_pmap_build(same, 3, &m4, &n4, &m6, &n6), ZJ_OK);
    free(m4);
    free(m6);
    zj_prefix_t host[] = {pfx("10.0.0.1", 8, 1)};
    assert_int_equal(zj_pmap_build(host, 1, &m4, &n4, &m6, &n6), ZJ_EINVAL);
    zj_prefix_t toolong[] = {pfx("10.0.0.0", 33, 1)};
    assert_int_equal(zj_pmap_build(toolong, 1, &m4, &n4, &m6, &n6), ZJ_EINVAL);
    zj_prefix_t fam[] = {pfx("10.0.0.0", 8, 1)};
    fam[0].family = 99;
    assert_int_equal(zj_pmap_build(fam, 1, &m4, &n4, &m6, &n6), ZJ_EINVAL);
}

static void test_pmap_validator_rejects_damaged_maps(void **state)
{
    (void)state;
    zj_pmap4_d good[] = {{0, ZJ_IMG_NONE, 0}, {0x0A000000u, 1, 8}, {0x0B000000u, ZJ_IMG_NONE, 0}};
    assert_true(zj_pmap4_valid(good, 3));
    assert_false(zj_pmap4_valid(good, 0));
    zj_pmap4_d m[3];
    memcpy(m, good, sizeof(m));
    m[0].start = 1;
    assert_false(zj_pmap4_valid(m, 3));
    memcpy(m, good, sizeof(m));
    m[2].start = 0x0A000000u; /* not increasing */
    assert_false(zj_pmap4_valid(m, 3));
    memcpy(m, good, sizeof(m));
    m[1].len = 33;
    assert_false(zj_pmap4_valid(m, 3));
    memcpy(m, good, sizeof(m));
    m[2].start = 0x0C000000u; /* piece 1 spans 10/8 and 11/8: outside its /8 */
    assert_false(zj_pmap4_valid(m, 3));
    memcpy(m, good, sizeof(m));
    m[1].len = 7; /* 10/7 is 10-11: piece [10, 10.255..] is inside it */
    assert_true(zj_pmap4_valid(m, 3));

    zj_pmap6_d g6[] = {{0, 0, ZJ_IMG_NONE, 0},
                       {0x20010db800000000ull, 0, 1, 32},
                       {0x20010db900000000ull, 0, ZJ_IMG_NONE, 0}};
    assert_true(zj_pmap6_valid(g6, 3));
    zj_pmap6_d m6[3];
    memcpy(m6, g6, sizeof(m6));
    m6[0].lo = 1;
    assert_false(zj_pmap6_valid(m6, 3));
    memcpy(m6, g6, sizeof(m6));
    m6[1].len = 129;
    assert_false(zj_pmap6_valid(m6, 3));
    memcpy(m6, g6, sizeof(m6));
    m6[1].len = 33;
    assert_false(zj_pmap6_valid(m6, 3));
    memcpy(m6, g6, sizeof(m6));
    m6[2].hi = m6[1].hi;
    assert_false(zj_pmap6_valid(m6, 3));
}

/* ---- randomized comparison ---------------------------------------------------------------- */

static uint64_t rng_state = 0x243f6a8885a308d3ull;

static uint64_t rnd(void)
{
    /* splitmix64: a fixed sequence, so a failure reproduces */
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static unsigned bit(const uint8_t *a, unsigned i)
{
    return (a[i / 8] >> (7 - i % 8)) & 1u;
}

static unsigned cpl(const uint8_t *a, const uint8_t *b, unsigned w)
{
    unsigned i = 0;
    while (i < w && bit(a, i) == bit(b, i)) {
        i++;
    }
    return i;
}

static void mask_host(uint8_t *a, unsigned len, unsigned w)
{
    for (unsigned i = len; i < w; i++) {
        a[i / 8] &= (uint8_t) ~(0x80u >> (i % 8));
    }
}

/* Longest match of x among p (one family, w bits) and the scope defined from the prefix set
 * alone: the smallest k >= L such that x's k-block holds no longer prefix than the match. */
static void brute(const zj_prefix_t *p, size_t n, const uint8_t *x, unsigned w, uint32_t *value,
                  unsigned *scope)
{
    int best = -1;
    for (size_t i = 0; i < n; i++) {
        if (cpl(p[i].addr, x, w) >= p[i].len && (best < 0 || p[i].len > p[best].len)) {
            best = (int)i;
        }
    }
    unsigned l = best < 0 ? 0 : p[best].len;
    unsigned k = l;
    for (size_t i = 0; i < n; i++) {
        if (p[i].len > l) {
            unsigned c = cpl(p[i].addr, x, w) + 1;
            k = c > k ? c : k;
        }
    }
    *value = best < 0 ? ZJ_IMG_NONE : p[best].value;
    *scope = k;
}

static void random_round(int family, unsigned w, size_t n)
{
    zj_prefix_t *p = calloc(n, sizeof(*p));
    assert_non_null(p);
    uint8_t base[4][16];
    for (int b = 0; b < 4; b++) {
        for (int i = 0; i < 16; i++) {
            base[b][i] = (uint8_t)rnd();
        }
    }
    size_t k = 0;
    while (k < n) {
        /* addresses near a few bases, so that prefixes nest and touch */
        zj_prefix_t q = {.family = (uint8_t)family};
        memcpy(q.addr, base[rnd() % 4], 16);
        unsigned flip = (unsigned)(rnd() % w);
        for (unsigned i = flip; i < w; i++) {
            if (rnd() & 1) {
                q.addr[i / 8] ^= (uint8_t)(0x80u >> (i % 8));
            }
        }
        q.len = (uint8_t)(rnd() % (w + 1));
        mask_host(q.addr, q.len, w);
        if (w == 32) {
            memset(q.addr + 4, 0, 12);
        }
        bool dup = false;
        for (size_t i = 0; i < k; i++) {
            dup = dup || (p[i].len == q.len && memcmp(p[i].addr, q.addr, 16) == 0);
        }
        if (!dup) {
            q.value = (uint32_t)k;
            p[k++] = q;
        }
    }
    maps_t m;
    build(&m, p, n);
    for (int t = 0; t < 4000; t++) {
        uint8_t x[16] = {0};
        if (t % 2 == 0) {
            /* a prefix's address, its neighbours and random bits below it */
            const zj_prefix_t *q = &p[rnd() % n];
            memcpy(x, q->addr, 16);
            unsigned from = (unsigned)(rnd() % (w + 1));
            for (unsigned i = from; i < w; i++) {
                if (rnd() & 1) {
                    x[i / 8] ^= (uint8_t)(0x80u >> (i % 8));
                }
            }
        } else {
            for (unsigned i = 0; i < w / 8; i++) {
                x[i] = (uint8_t)rnd();
            }
        }
        uint32_t want;
        unsigned want_scope;
        brute(p, n, x, w, &want, &want_scope);
        uint8_t sc;
        uint32_t got;
        if (w == 32) {
            uint32_t a =
                ((uint32_t)x[0] << 24) | ((uint32_t)x[1] << 16) | ((uint32_t)x[2] << 8) | x[3];
            got = zj_pmap4_find(m.m4, m.n4, a, &sc);
        } else {
            got = zj_pmap6_find(m.m6, m.n6, x, &sc);
        }
        if (got != want || sc != want_scope) {
            fail_msg("w=%u round %d: value %u scope %u, brute force %u scope %u", w, t, got, sc,
                     want, want_scope);
        }
    }
    assert_true(m.n4 <= 2 * n + 1);
    assert_true(m.n6 <= 2 * n + 1);
    drop(&m);
    free(p);
}

static void test_pmap_matches_brute_force_ipv4(void **state)
{
    (void)state;
    for (size_t n = 1; n <= 300; n = n * 3 + 1) {
        random_round(AF_INET, 32, n);
    }
}

static void test_pmap_matches_brute_force_ipv6(void **state)
{
    (void)state;
    for (size_t n = 1; n <= 300; n = n * 3 + 1) {
        random_round(AF_INET6, 128, n);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pmap_empty_input_is_one_gap_per_family),
        cmocka_unit_test(test_pmap_nested_prefixes_longest_wins),
        cmocka_unit_test(test_pmap_gaps_have_no_value_and_len_zero),
        cmocka_unit_test(test_pmap_zero_and_full_length_prefixes),
        cmocka_unit_test(test_pmap_adjacent_prefixes_stay_separate),
        cmocka_unit_test(test_pmap_scope_is_the_largest_block_inside_the_piece),
        cmocka_unit_test(test_pmap_duplicates_and_bad_prefixes_are_refused),
        cmocka_unit_test(test_pmap_validator_rejects_damaged_maps),
        cmocka_unit_test(test_pmap_matches_brute_force_ipv4),
        cmocka_unit_test(test_pmap_matches_brute_force_ipv6),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
