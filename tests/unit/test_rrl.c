/* Response rate limiting: the rate, its edges (rate and rate + 1 per second), the slip mix, source
 * prefix grouping for IPv4, IPv6 and IPv4-mapped sources, class and name separation, recovery over
 * time and the debt window, slot collisions, and concurrent callers on one table. The test drives
 * now_ms itself. A short timing loop prints the cost per call (printed, not asserted). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>

#include "zonejet/err.h"
#include "dns/rrl.h"

/* www.example.com. and example.com. */
static const uint8_t www[] = "\3www\7example\3com";
static const uint8_t apex[] = "\7example\3com";
#define WWW_LEN sizeof(www)
#define APEX_LEN sizeof(apex)

/* A fixed hash seed, so that which test keys share a slot does not change from run to run. */
#define TEST_SEED 0x5eed5eed5eed5eedull

typedef struct addr {
    struct sockaddr_storage ss;
} addr_t;

static const struct sockaddr *ip(addr_t *a, const char *text)
{
    memset(a, 0, sizeof(*a));
    if (strchr(text, ':') != NULL) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&a->ss;
        s6->sin6_family = AF_INET6;
        assert_int_equal(inet_pton(AF_INET6, text, &s6->sin6_addr), 1);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&a->ss;
        s4->sin_family = AF_INET;
        assert_int_equal(inet_pton(AF_INET, text, &s4->sin_addr), 1);
    }
    return (const struct sockaddr *)&a->ss;
}

static zj_rrl_t *make(uint32_t rate, uint32_t window_s, uint32_t slip, uint32_t table_size)
{
    zj_rrl_cfg_t cfg;
    zj_rrl_cfg_default(&cfg);
    cfg.rate = rate;
    cfg.window_s = window_s;
    cfg.slip = slip;
    cfg.table_size = table_size;
    cfg.hash_seed = TEST_SEED;
    assert_int_equal(zj_rrl_cfg_check(&cfg, NULL, 0), ZJ_OK);
    zj_rrl_t *rrl = zj_rrl_new(&cfg);
    assert_non_null(rrl);
    return rrl;
}

typedef struct tally {
    unsigned pass, drop, slip;
} tally_t;

/* n responses of one key at one instant */
static tally_t burst(zj_rrl_t *rrl, const struct sockaddr *src, int cls, const uint8_t *name,
                     size_t len, unsigned n, uint64_t now_ms)
{
    tally_t t = {0, 0, 0};
    for (unsigned i = 0; i < n; i++) {
        int r = zj_rrl_decide(rrl, src, cls, name, len, now_ms);
        if (r == ZJ_RRL_PASS) {
            t.pass++;
        } else if (r == ZJ_RRL_DROP) {
            t.drop++;
        } else {
            assert_int_equal(r, ZJ_RRL_SLIP);
            t.slip++;
        }
    }
    return t;
}

static void test_rrl_cfg_defaults_and_bounds(void **state)
{
    (void)state;
    zj_rrl_cfg_t cfg;
    zj_rrl_cfg_default(&cfg);
    assert_int_equal(cfg.rate, 0);
    assert_int_equal(cfg.slip, 2);
    assert_int_equal(cfg.ipv4_prefix, 24);
    assert_int_equal(cfg.ipv6_prefix, 56);
    assert_int_equal(cfg.table_size, 65536);
    assert_int_equal(zj_rrl_cfg_check(&cfg, NULL, 0), ZJ_OK);
    /* rate 0 is valid and means off: no table */
    assert_null(zj_rrl_new(&cfg));

    char err[128];
    zj_rrl_cfg_t bad = cfg;
    bad.rate = 10;
    bad.table_size = 1000;
    assert_int_equal(zj_rrl_cfg_check(&bad, err, sizeof(err)), ZJ_EINVAL);
    assert_non_null(strstr(err, "table-size"));
    assert_null(zj_rrl_new(&bad));
    bad = cfg;
    bad.table_size = 0;
    assert_int_equal(zj_rrl_cfg_check(&bad, NULL, 0), ZJ_EINVAL);
    bad = cfg;
    bad.table_size = ZJ_RRL_TABLE_MAX * 2u;
    assert_int_equal(zj_rrl_cfg_check(&bad, NULL, 0), ZJ_EINVAL);
    /* each bound at the limit and one past it (STYLE P8) */
    bad = cfg;
    bad.ipv4_prefix = 32;
    assert_int_equal(zj_rrl_cfg_check(&bad, NULL, 0), ZJ_OK);
    bad.ipv4_prefix = 33;
    assert_int_equal(zj_rrl_cfg_check(&bad, err, sizeof(err)), ZJ_EINVAL);
    assert_non_null(strstr(err, "ipv4-prefix"));
    bad = cfg;
    bad.ipv6_prefix = 128;
    assert_int_equal(zj_rrl_cfg_check(&bad, NULL, 0), ZJ_OK);
    bad.ipv6_prefix = 129;
    assert_int_equal(zj_rrl_cfg_check(&bad, NULL, 0), ZJ_EINVAL);
    bad = cfg;
    bad.slip = ZJ_RRL_SLIP_MAX;
    assert_int_equal(zj_rrl_cfg_check(&bad, NULL, 0), ZJ_OK);
    bad.slip = ZJ_RRL_SLIP_MAX + 1;
    assert_int_equal(zj_rrl_cfg_check(&bad, NULL, 0), ZJ_EINVAL);
    bad = cfg;
    bad.window_s = ZJ_RRL_WINDOW_MAX;
    assert_int_equal(zj_rrl_cfg_check(&bad, NULL, 0), ZJ_OK);
    bad.window_s = ZJ_RRL_WINDOW_MAX + 1;
    assert_int_equal(zj_rrl_cfg_check(&bad, NULL, 0), ZJ_EINVAL);
    bad.window_s = 0;
    assert_int_equal(zj_rrl_cfg_check(&bad, NULL, 0), ZJ_EINVAL);
    bad = cfg;
    bad.rate = ZJ_RRL_RATE_MAX;
    bad.window_s = 1;
    assert_int_equal(zj_rrl_cfg_check(&bad, NULL, 0), ZJ_OK);
    bad.rate = ZJ_RRL_RATE_MAX + 1;
    assert_int_equal(zj_rrl_cfg_check(&bad, NULL, 0), ZJ_EINVAL);
    /* the credit must hold rate * (window + 1) in an int32 */
    bad.rate = ZJ_RRL_RATE_MAX;
    bad.window_s = ZJ_RRL_WINDOW_MAX;
    assert_int_equal(zj_rrl_cfg_check(&bad, err, sizeof(err)), ZJ_EINVAL);
    assert_non_null(strstr(err, "too large"));
    zj_rrl_free(NULL);
}

static void test_rrl_under_rate_nothing_is_limited(void **state)
{
    (void)state;
    zj_rrl_t *rrl = make(10, 15, 2, 1024);
    addr_t a;
    const struct sockaddr *src = ip(&a, "192.0.2.1");
    /* 10 per second, spread over each second, for 60 seconds */
    for (uint64_t s = 0; s < 60; s++) {
        for (uint64_t i = 0; i < 10; i++) {
            assert_int_equal(zj_rrl_decide(rrl, src, ZJ_RRL_CLS_POSITIVE, www, WWW_LEN,
                                           1000000 + s * 1000 + i * 99),
                             ZJ_RRL_PASS);
        }
    }
    zj_rrl_free(rrl);
}

static void test_rrl_rate_at_limit_and_limit_plus_one(void **state)
{
    (void)state;
    zj_rrl_t *rrl = make(5, 15, 0, 1024);
    addr_t a, b;
    const struct sockaddr *at = ip(&a, "192.0.2.1");
    const struct sockaddr *over = ip(&b, "198.51.100.1");
    /* exactly rate in one second: all pass; rate + 1: the last one is limited */
    tally_t t = burst(rrl, at, ZJ_RRL_CLS_POSITIVE, www, WWW_LEN, 5, 7000);
    assert_int_equal(t.pass, 5);
    t = burst(rrl, over, ZJ_RRL_CLS_POSITIVE, www, WWW_LEN, 6, 7000);
    assert_int_equal(t.pass, 5);
    assert_int_equal(t.drop, 1);
    /* the second boundary refills: 999 ms is still the same second, 1000 ms is not */
    assert_int_equal(zj_rrl_decide(rrl, at, ZJ_RRL_CLS_POSITIVE, www, WWW_LEN, 7999), ZJ_RRL_DROP);
    assert_int_equal(zj_rrl_decide(rrl, at, ZJ_RRL_CLS_POSITIVE, www, WWW_LEN, 8000), ZJ_RRL_PASS);
    /* rate 1 (the smallest): one per second */
    zj_rrl_t *one = make(1, 1, 0, 16);
    assert_int_equal(zj_rrl_decide(one, at, ZJ_RRL_CLS_ERROR, NULL, 0, 0), ZJ_RRL_PASS);
    assert_int_equal(zj_rrl_decide(one, at, ZJ_RRL_CLS_ERROR, NULL, 0, 500), ZJ_RRL_DROP);
    assert_int_equal(zj_rrl_decide(one, at, ZJ_RRL_CLS_ERROR, NULL, 0, 3000), ZJ_RRL_PASS);
    zj_rrl_free(one);
    zj_rrl_free(rrl);
}

static void test_rrl_flood_gets_slip_mix_and_spares_other_prefix(void **state)
{
    (void)state;
    zj_rrl_t *rrl = make(10, 15, 2, 1024);
    addr_t a, n, o;
    const struct sockaddr *attacker = ip(&a, "192.0.2.7");
    const struct sockaddr *neighbour = ip(&n, "192.0.2.200"); /* same /24 */
    const struct sockaddr *other = ip(&o, "192.0.3.7");       /* next /24 */
    tally_t all = {0, 0, 0};
    for (uint64_t s = 0; s < 20; s++) {
        uint64_t now = 50000 + s * 1000;
        for (unsigned i = 0; i < 100; i++) {
            tally_t t = burst(rrl, attacker, ZJ_RRL_CLS_POSITIVE, www, WWW_LEN, 10, now + i);
            all.pass += t.pass;
            all.drop += t.drop;
            all.slip += t.slip;
            /* the other network is untouched in the middle of the flood */
            if (i == 50) {
                assert_int_equal(zj_rrl_decide(rrl, other, ZJ_RRL_CLS_POSITIVE, www, WWW_LEN, now),
                                 ZJ_RRL_PASS);
            }
        }
    }
    /* 1000 per second against rate 10: the first second's 10 pass, then the debt keeps every
     * later second limited (BIND semantics); exactly every second limited response slips */
    assert_int_equal(all.pass, 10);
    assert_int_equal(all.drop + all.slip, 20000 - 10);
    assert_int_equal(all.slip, (20000 - 10) / 2);
    /* the neighbour in the same /24 shares the attacker's bucket */
    int r = zj_rrl_decide(rrl, neighbour, ZJ_RRL_CLS_POSITIVE, www, WWW_LEN, 70000);
    assert_true(r == ZJ_RRL_DROP || r == ZJ_RRL_SLIP);
    zj_rrl_free(rrl);
}

static void test_rrl_slip_zero_never_and_one_always(void **state)
{
    (void)state;
    addr_t a;
    const struct sockaddr *src = ip(&a, "203.0.113.9");
    zj_rrl_t *never = make(3, 5, 0, 64);
    tally_t t = burst(never, src, ZJ_RRL_CLS_NXDOMAIN, apex, APEX_LEN, 100, 1000);
    assert_int_equal(t.pass, 3);
    assert_int_equal(t.drop, 97);
    assert_int_equal(t.slip, 0);
    zj_rrl_free(never);
    zj_rrl_t *always = make(3, 5, 1, 64);
    t = burst(always, src, ZJ_RRL_CLS_NXDOMAIN, apex, APEX_LEN, 100, 1000);
    assert_int_equal(t.pass, 3);
    assert_int_equal(t.drop, 0);
    assert_int_equal(t.slip, 97);
    zj_rrl_free(always);
    /* slip 3: drop, drop, slip, ... */
    zj_rrl_t *three = make(1, 5, 3, 64);
    assert_int_equal(zj_rrl_decide(three, src, ZJ_RRL_CLS_ERROR, NULL, 0, 0), ZJ_RRL_PASS);
    assert_int_equal(zj_rrl_decide(three, src, ZJ_RRL_CLS_ERROR, NULL, 0, 0), ZJ_RRL_DROP);
    assert_int_equal(zj_rrl_decide(three, src, ZJ_RRL_CLS_ERROR, NULL, 0, 0), ZJ_RRL_DROP);
    assert_int_equal(zj_rrl_decide(three, src, ZJ_RRL_CLS_ERROR, NULL, 0, 0), ZJ_RRL_SLIP);
    assert_int_equal(zj_rrl_decide(three, src, ZJ_RRL_CLS_ERROR, NULL, 0, 0), ZJ_RRL_DROP);
    zj_rrl_free(three);
}

static void test_rrl_ipv6_groups_by_56(void **state)
{
    (void)state;
    zj_rrl_t *rrl = make(4, 15, 0, 1024);
    addr_t a, b, c, d;
    const struct sockaddr *first = ip(&a, "2001:db8:0:100::1");
    const struct sockaddr *same56 = ip(&b, "2001:db8:0:1ff:ffff::2");
    const struct sockaddr *next56 = ip(&c, "2001:db8:0:200::1");
    const struct sockaddr *mapped = ip(&d, "::ffff:192.0.2.1");
    tally_t t = burst(rrl, first, ZJ_RRL_CLS_POSITIVE, www, WWW_LEN, 4, 0);
    assert_int_equal(t.pass, 4);
    assert_int_equal(zj_rrl_decide(rrl, same56, ZJ_RRL_CLS_POSITIVE, www, WWW_LEN, 0), ZJ_RRL_DROP);
    assert_int_equal(zj_rrl_decide(rrl, next56, ZJ_RRL_CLS_POSITIVE, www, WWW_LEN, 0), ZJ_RRL_PASS);
    /* an IPv4-mapped source is grouped by the IPv4 prefix, and shares the IPv4 client's bucket */
    addr_t e, f;
    const struct sockaddr *v4 = ip(&e, "192.0.2.99");
    const struct sockaddr *mapped_other = ip(&f, "::ffff:192.0.3.1");
    t = burst(rrl, v4, ZJ_RRL_CLS_POSITIVE, www, WWW_LEN, 4, 0);
    assert_int_equal(t.pass, 4);
    assert_int_equal(zj_rrl_decide(rrl, mapped, ZJ_RRL_CLS_POSITIVE, www, WWW_LEN, 0), ZJ_RRL_DROP);
    assert_int_equal(zj_rrl_decide(rrl, mapped_other, ZJ_RRL_CLS_POSITIVE, www, WWW_LEN, 0),
                     ZJ_RRL_PASS);
    zj_rrl_free(rrl);

    /* a prefix that is not a whole number of bytes: /60 */
    zj_rrl_cfg_t cfg;
    zj_rrl_cfg_default(&cfg);
    cfg.rate = 1;
    cfg.slip = 0;
    cfg.ipv6_prefix = 60;
    cfg.hash_seed = TEST_SEED;
    rrl = zj_rrl_new(&cfg);
    assert_non_null(rrl);
    const struct sockaddr *p = ip(&a, "2001:db8:0:10::1");
    const struct sockaddr *in60 = ip(&b, "2001:db8:0:1f::1");
    const struct sockaddr *out60 = ip(&c, "2001:db8:0:20::1");
    assert_int_equal(zj_rrl_decide(rrl, p, ZJ_RRL_CLS_ERROR, NULL, 0, 0), ZJ_RRL_PASS);
    assert_int_equal(zj_rrl_decide(rrl, in60, ZJ_RRL_CLS_ERROR, NULL, 0, 0), ZJ_RRL_DROP);
    assert_int_equal(zj_rrl_decide(rrl, out60, ZJ_RRL_CLS_ERROR, NULL, 0, 0), ZJ_RRL_PASS);
    zj_rrl_free(rrl);
}

static void test_rrl_classes_and_names_are_separate_buckets(void **state)
{
    (void)state;
    zj_rrl_t *rrl = make(2, 15, 0, 4096);
    addr_t a;
    const struct sockaddr *src = ip(&a, "192.0.2.1");
    for (int cls = 0; cls < ZJ_RRL_CLS_COUNT; cls++) {
        tally_t t = burst(rrl, src, cls, apex, APEX_LEN, 3, 0);
        assert_int_equal(t.pass, 2);
        assert_int_equal(t.drop, 1);
    }
    /* another name in a qname-keyed class is its own bucket; case does not make a new one */
    static const uint8_t www_upper[] = "\3WwW\7EXAMPLE\3cOm";
    tally_t t = burst(rrl, src, ZJ_RRL_CLS_POSITIVE, www, WWW_LEN, 2, 0);
    assert_int_equal(t.pass, 2);
    assert_int_equal(zj_rrl_decide(rrl, src, ZJ_RRL_CLS_POSITIVE, www_upper, WWW_LEN, 0),
                     ZJ_RRL_DROP);
    /* the empty key of the error class */
    t = burst(rrl, src, ZJ_RRL_CLS_ERROR, NULL, 0, 3, 0);
    assert_int_equal(t.pass, 2);
    assert_int_equal(t.drop, 1);
    /* a key longer than a name is cut at 255 bytes, not read past */
    static uint8_t longkey[300];
    memset(longkey, 'a', sizeof(longkey));
    t = burst(rrl, src, ZJ_RRL_CLS_POSITIVE, longkey, sizeof(longkey), 3, 0);
    assert_int_equal(t.pass, 2);
    assert_int_equal(zj_rrl_decide(rrl, src, ZJ_RRL_CLS_POSITIVE, longkey, 255, 0), ZJ_RRL_DROP);
    zj_rrl_free(rrl);
}

/* Key names compare case-insensitively for ASCII letters only: every byte value, both in the
 * first eight bytes of the name and in its tail. */
static void test_rrl_key_case_folds_ascii_letters_only(void **state)
{
    (void)state;
    zj_rrl_t *rrl = make(1, 15, 0, 4096);
    addr_t a;
    const struct sockaddr *src = ip(&a, "192.0.2.1");
    for (unsigned pos = 3; pos < 12; pos += 8) {
        for (unsigned c = 0; c < 256; c++) {
            uint8_t k1[12], k2[12];
            memset(k1, '0', sizeof(k1));
            /* bytes 1-2 tell the values of c apart however case is folded */
            k1[0] = (uint8_t)pos;
            k1[1] = (uint8_t) "0123456789abcdef"[c >> 4];
            k1[2] = (uint8_t) "0123456789abcdef"[c & 15];
            k1[pos] = (uint8_t)c;
            memcpy(k2, k1, sizeof(k1));
            k2[pos] = (uint8_t)(c ^ 0x20);
            bool same = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
            assert_int_equal(zj_rrl_decide(rrl, src, ZJ_RRL_CLS_POSITIVE, k1, sizeof(k1), 0),
                             ZJ_RRL_PASS);
            assert_int_equal(zj_rrl_decide(rrl, src, ZJ_RRL_CLS_POSITIVE, k2, sizeof(k2), 0),
                             same ? ZJ_RRL_DROP : ZJ_RRL_PASS);
        }
    }
    zj_rrl_free(rrl);
}

static void test_rrl_credit_recovers_after_the_window(void **state)
{
    (void)state;
    zj_rrl_t *rrl = make(10, 5, 0, 1024);
    addr_t a;
    const struct sockaddr *src = ip(&a, "192.0.2.1");
    uint64_t t0 = 3600000;
    /* 100 in second 0: 10 pass and the debt reaches the floor, -rate * window = -50 */
    tally_t t = burst(rrl, src, ZJ_RRL_CLS_POSITIVE, www, WWW_LEN, 100, t0);
    assert_int_equal(t.pass, 10);
    /* 3 s later the credit is -50 + 30 = -20: still limited */
    assert_int_equal(zj_rrl_decide(rrl, src, ZJ_RRL_CLS_POSITIVE, www, WWW_LEN, t0 + 3000),
                     ZJ_RRL_DROP);
    /* +2 s more: -21 + 20 = -1: still limited; +1 s: -2 + 10 = 8 available */
    assert_int_equal(zj_rrl_decide(rrl, src, ZJ_RRL_CLS_POSITIVE, www, WWW_LEN, t0 + 5000),
                     ZJ_RRL_DROP);
    t = burst(rrl, src, ZJ_RRL_CLS_POSITIVE, www, WWW_LEN, 10, t0 + 6000);
    assert_int_equal(t.pass, 8);
    /* idle for more than the window: a full second's worth again */
    t = burst(rrl, src, ZJ_RRL_CLS_POSITIVE, www, WWW_LEN, 11, t0 + 12000);
    assert_int_equal(t.pass, 10);
    assert_int_equal(t.drop, 1);
    /* a clock that steps back counts as no time, and a long idle gap still recovers */
    assert_int_equal(zj_rrl_decide(rrl, src, ZJ_RRL_CLS_POSITIVE, www, WWW_LEN, t0), ZJ_RRL_DROP);
    assert_int_equal(zj_rrl_decide(rrl, src, ZJ_RRL_CLS_POSITIVE, www, WWW_LEN, t0 + 86400000),
                     ZJ_RRL_PASS);
    zj_rrl_free(rrl);
}

static void test_rrl_non_ip_source_is_never_limited(void **state)
{
    (void)state;
    zj_rrl_t *rrl = make(1, 1, 0, 16);
    struct sockaddr_un un;
    memset(&un, 0, sizeof(un));
    un.sun_family = AF_UNIX;
    tally_t t = burst(rrl, (const struct sockaddr *)&un, ZJ_RRL_CLS_ERROR, NULL, 0, 10, 0);
    assert_int_equal(t.pass, 10);
    t = burst(rrl, NULL, ZJ_RRL_CLS_ERROR, NULL, 0, 10, 0);
    assert_int_equal(t.pass, 10);
    zj_rrl_free(rrl);
}

static void test_rrl_table_collisions_are_safe(void **state)
{
    (void)state;
    /* one slot: every key collides; each take-over resets the slot, which errs towards answering */
    zj_rrl_t *rrl = make(1, 5, 2, 1);
    addr_t a, b;
    const struct sockaddr *x = ip(&a, "192.0.2.1");
    const struct sockaddr *y = ip(&b, "198.51.100.1");
    for (unsigned i = 0; i < 100; i++) {
        assert_int_equal(zj_rrl_decide(rrl, (i & 1) ? x : y, ZJ_RRL_CLS_POSITIVE, www, WWW_LEN, 0),
                         ZJ_RRL_PASS);
    }
    /* x holds the slot after the loop; once y takes it over, y's second response is limited */
    assert_int_equal(zj_rrl_decide(rrl, x, ZJ_RRL_CLS_POSITIVE, www, WWW_LEN, 0), ZJ_RRL_DROP);
    assert_int_equal(zj_rrl_decide(rrl, y, ZJ_RRL_CLS_POSITIVE, www, WWW_LEN, 0), ZJ_RRL_PASS);
    assert_int_equal(zj_rrl_decide(rrl, y, ZJ_RRL_CLS_POSITIVE, www, WWW_LEN, 0), ZJ_RRL_DROP);
    zj_rrl_free(rrl);

    /* many keys over a small table: every answer is one of the three */
    rrl = make(3, 2, 2, 8);
    for (uint32_t i = 0; i < 20000; i++) {
        struct sockaddr_in s4;
        memset(&s4, 0, sizeof(s4));
        s4.sin_family = AF_INET;
        s4.sin_addr.s_addr = htonl(0xc0000000u + (i % 97) * 256u);
        int r = zj_rrl_decide(rrl, (const struct sockaddr *)&s4, (int)(i % ZJ_RRL_CLS_COUNT), www,
                              WWW_LEN, (uint64_t)i * 3);
        assert_true(r == ZJ_RRL_PASS || r == ZJ_RRL_DROP || r == ZJ_RRL_SLIP);
    }
    zj_rrl_free(rrl);
}

/* Two workers on one table, one hot bucket and many cold ones: under ASan (or TSan) this proves
 * the shared-table rules; the outcome counts only have to add up. */
typedef struct worker_arg {
    zj_rrl_t *rrl;
    unsigned seed;
    unsigned n[3];
} worker_arg_t;

static void *hammer(void *p)
{
    worker_arg_t *w = p;
    for (uint32_t i = 0; i < 200000; i++) {
        struct sockaddr_in s4;
        memset(&s4, 0, sizeof(s4));
        s4.sin_family = AF_INET;
        uint32_t net =
            (i & 1) ? 0xc0000200u : 0x0a000000u + ((i * 2654435761u + w->seed) & 0xffff00u);
        s4.sin_addr.s_addr = htonl(net);
        int r = zj_rrl_decide(w->rrl, (const struct sockaddr *)&s4, ZJ_RRL_CLS_POSITIVE, www,
                              WWW_LEN, 1000 + i / 1000);
        w->n[r]++;
    }
    return NULL;
}

static void test_rrl_concurrent_workers_share_one_table(void **state)
{
    (void)state;
    zj_rrl_t *rrl = make(100, 5, 2, 4096);
    worker_arg_t w[2] = {{rrl, 1, {0, 0, 0}}, {rrl, 2, {0, 0, 0}}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++) {
        assert_int_equal(pthread_create(&th[i], NULL, hammer, &w[i]), 0);
    }
    for (int i = 0; i < 2; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
    }
    unsigned total = 0;
    for (int i = 0; i < 2; i++) {
        total += w[i].n[0] + w[i].n[1] + w[i].n[2];
    }
    assert_int_equal(total, 400000);
    /* the hot /24 sent 200000 in 200 simulated seconds against 100/s: most of it was limited */
    assert_true(w[0].n[ZJ_RRL_DROP] + w[1].n[ZJ_RRL_DROP] > 50000);
    zj_rrl_free(rrl);
}

static double elapsed_ns(const struct timespec *a, const struct timespec *b)
{
    return (double)(b->tv_sec - a->tv_sec) * 1e9 + (double)(b->tv_nsec - a->tv_nsec);
}

/* Cost per call, printed: one flooding prefix mixed with many others over the default table.
 * Every 4th call comes from the flooding 192.0.2.0/24 (limited after its first second); the other
 * 3072 sources are as many /24s, each seen once per simulated second (4096 calls), so each of
 * their calls takes the refill path: a pessimistic mix, two atomic read-modify-writes per pass.
 * Meaningful only in an optimised build without sanitizers. */
static void test_rrl_cost_per_call(void **state)
{
    (void)state;
    zj_rrl_cfg_t cfg;
    zj_rrl_cfg_default(&cfg);
    cfg.rate = 20;
    zj_rrl_t *rrl = zj_rrl_new(&cfg);
    assert_non_null(rrl);
    enum { N = 1000000, NSRC = 4096 };
    static struct sockaddr_in src[NSRC];
    for (uint32_t i = 0; i < NSRC; i++) {
        src[i].sin_family = AF_INET;
        uint32_t a = (i & 3) == 0 ? 0xc0000201u : 0x0a000000u + ((i * 2654435761u) & 0xffffff00u);
        src[i].sin_addr.s_addr = htonl(a);
    }
    /* best of 5 rounds (each a million seconds after the last, so buckets start afresh): the
     * machine may be shared, and the minimum is the code's own cost */
    unsigned n[3] = {0, 0, 0};
    double best_ns = 1e18;
    for (int round = 0; round < 5; round++) {
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (uint32_t i = 0; i < N; i++) {
            int r = zj_rrl_decide(rrl, (const struct sockaddr *)&src[i & (NSRC - 1)],
                                  ZJ_RRL_CLS_POSITIVE, www, WWW_LEN,
                                  ((uint64_t)round * 1000000 + i / 4096) * 1000);
            n[r]++;
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double ns = elapsed_ns(&t0, &t1) / N;
        best_ns = ns < best_ns ? ns : best_ns;
    }
    printf("rrl: %.1f ns per zj_rrl_decide, best of 5 x %u calls (%u pass, %u drop, %u slip)\n",
           best_ns, N, n[0], n[1], n[2]);
    assert_int_equal(n[0] + n[1] + n[2], 5u * N);
    zj_rrl_free(rrl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rrl_cfg_defaults_and_bounds),
        cmocka_unit_test(test_rrl_under_rate_nothing_is_limited),
        cmocka_unit_test(test_rrl_rate_at_limit_and_limit_plus_one),
        cmocka_unit_test(test_rrl_flood_gets_slip_mix_and_spares_other_prefix),
        cmocka_unit_test(test_rrl_slip_zero_never_and_one_always),
        cmocka_unit_test(test_rrl_ipv6_groups_by_56),
        cmocka_unit_test(test_rrl_classes_and_names_are_separate_buckets),
        cmocka_unit_test(test_rrl_key_case_folds_ascii_letters_only),
        cmocka_unit_test(test_rrl_credit_recovers_after_the_window),
        cmocka_unit_test(test_rrl_non_ip_source_is_never_limited),
        cmocka_unit_test(test_rrl_table_collisions_are_safe),
        cmocka_unit_test(test_rrl_concurrent_workers_share_one_table),
        cmocka_unit_test(test_rrl_cost_per_call),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
