/* The answer table (src/dns/anstab.h) against the general answer path, in process.
 *
 * Every query goes to zj_answer (the table first) and to zj_answer_general, each with its own
 * responder. The two responses must be the same DNS message: header flags and counts, the
 * question, and every record with its names decompressed and lower-cased (only compression may
 * differ); the counters must agree except `table`. A test of a case the table holds also asserts
 * that the table answered it (its counter moved), so that it cannot pass by the table handing
 * everything to the general path. Packets and output buffers are heap blocks of exactly their
 * size, so that ASan reports any read or write past them.
 *
 * Cases: wildcard answers whose data names the wildcard itself or a name below it (their
 * pointers to the question must not all stay), a sweep over every owner, names below them,
 * mixed case, every type class of answer, EDNS sizes, DO, cookies, NSID, TCP, in a one-image set,
 * in a set of three images (a root zone, a parent and a child in another image) and with one
 * apex in two images; names of 1 to 127 labels; the bounds of bodies, pointers and types per
 * name at the limit and one past it; every prefix and many one-byte mutations of valid queries;
 * output buffers smaller than a response; a set whose directory was dropped by an edit; a
 * wildcard named like another zone's apex; images the validator accepts but the compiler does
 * not make (a node the index does not find, an apex flagged as a cut); every allocation of a
 * table build failing; rate limiting; the batch prefetch (on every packet above, and following
 * the table's own chain for the names it holds). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <xxhash.h>

#include "compile/emit.h"
#include "dns/anstab.h"
#include "dns/answer.h"
#include "dns/rrl.h"
#include "zone/imgset.h"
#include "zone/imgset_internal.h"
#include "zonejet/compiler.h"
#include "zonejet/dname.h"
#include "zonejet/err.h"
#include "zonejet/image.h"
#include "zonejet/wire.h"
#include "zonejet/zone.h"

#include "asan.h"

/* ---- allocation failures: the executable's malloc family wins over libc's ------------------ */
#ifndef HAVE_ASAN
static volatile int counting;
static volatile long n_calls;     /* allocation calls while counting */
static volatile long fail_at;     /* the call that returns NULL (1-based), 0: none */
static volatile long outstanding; /* blocks allocated and not freed while counting */

extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t m);
extern void *__libc_realloc(void *p, size_t n);
extern void __libc_free(void *p);

void *malloc(size_t n)
{
    if (counting && ++n_calls == fail_at) {
        return NULL;
    }
    void *p = __libc_malloc(n);
    outstanding += counting && p != NULL;
    return p;
}

void *calloc(size_t n, size_t m)
{
    if (counting && ++n_calls == fail_at) {
        return NULL;
    }
    void *p = __libc_calloc(n, m);
    outstanding += counting && p != NULL;
    return p;
}

void *realloc(void *p, size_t n)
{
    if (counting && ++n_calls == fail_at) {
        return NULL;
    }
    void *q = __libc_realloc(p, n);
    outstanding += counting && q != NULL && p == NULL;
    return q;
}

void free(void *p)
{
    outstanding -= counting && p != NULL;
    __libc_free(p);
}
#endif

/* ---- zones ------------------------------------------------------------------------------- */

static const char ZONE[] =
    "$ORIGIN example.com.\n$TTL 300\n"
    "@ SOA ns1 host 1 2 3 4 60\n@ NS ns1\n@ NS ns2.example.net.\n@ MX 10 mail\n"
    "ns1 A 192.0.2.1\nmail A 192.0.2.2\nmail AAAA 2001:db8::2\nwww A 192.0.2.3\n"
    "WwW2 A 192.0.2.4\nalias CNAME www\nalias2 CNAME alias\next CNAME www.example.net.\n"
    "c2d CNAME x.deleg\nc2nx CNAME nothere\nc2w CNAME foo.wild\nloop1 CNAME loop2\n"
    "loop2 CNAME loop1\nsrv._tcp SRV 0 0 53 ns1\n"
    "*.wild A 192.0.2.5\n*.wild MX 5 mail\n*.wild TXT \"wild\"\n*.wc CNAME www\n"
    /* the wildcard's own name in its RDATA, and as an additional-section owner */
    "*.wmx MX 10 *.wmx\n*.wmx A 192.0.2.6\n"
    /* a CNAME from the wildcard to a name below it */
    "*.wx CNAME x.*.wx\nx.*.wx A 192.0.2.7\n"
    "*.wns PTR *.wns\n"
    "deep.a.b.c.ent A 192.0.2.8\n*.ent TXT \"e\"\nent2.a.b A 192.0.2.12\n"
    "dname DNAME example.net.\n"
    "deleg NS ns.deleg\ndeleg NS ns.example.net.\nns.deleg A 192.0.2.9\n"
    "below.ns.deleg A 192.0.2.10\nx.y.deleg A 192.0.2.14\nwdeleg A 192.0.2.13\n"
    "*.wdeleg NS ns1\nq.r.wdeleg TXT \"below a wildcard sibling\"\n"
    "sub NS ns.sub\nns.sub A 192.0.2.11\n"
    "many TYPE65280 \\# 0\nmany TYPE65281 \\# 1 01\nmany TXT \"m\"\n"
    "many CAA 0 issue \"ca.example.net\"\n"
    "big TXT \"0123456789012345678901234567890123456789012345678901234567890123456789\"\n"
    "big TXT \"1123456789012345678901234567890123456789012345678901234567890123456789\"\n"
    "big TXT \"2123456789012345678901234567890123456789012345678901234567890123456789\"\n"
    "big TXT \"3123456789012345678901234567890123456789012345678901234567890123456789\"\n"
    "big TXT \"4123456789012345678901234567890123456789012345678901234567890123456789\"\n"
    "big TXT \"5123456789012345678901234567890123456789012345678901234567890123456789\"\n"
    "big TXT \"6123456789012345678901234567890123456789012345678901234567890123456789\"\n"
    "big TXT \"7123456789012345678901234567890123456789012345678901234567890123456789\"\n";

/* the child of sub.example.com, served from another image */
static const char SUBZONE[] = "$ORIGIN sub.example.com.\n$TTL 60\n"
                              "@ SOA ns host 7 2 3 4 30\n@ NS ns\nns A 192.0.2.11\n"
                              "www A 192.0.2.21\n*.w TXT \"sub\"\n";

/* a root zone: every name has a zone, and deep names reach 127 labels */
static const char ROOTZONE[] = "$ORIGIN .\n$TTL 86400\n"
                               "@ SOA a.root-servers.test. host.test. 1 2 3 4 600\n"
                               "@ NS a.root-servers.test.\na.root-servers.test. A 192.0.2.53\n"
                               "*.wr. TXT \"root wildcard\"\n"
                               "*.a. A 192.0.2.54\n";

/* ---- fixtures ---------------------------------------------------------------------------- */

static zj_answer_cfg_t cfg;
static zj_responder_t rt; /* table first (zj_answer) */
static zj_responder_t rg; /* general path only */

/* One image from zone texts (NULL-terminated). Diagnostics go to stderr. */
static zj_image_t *image_of(const char *const *texts)
{
    zj_build_opts_t o;
    memset(&o, 0, sizeof(o));
    o.quiet = true;
    zj_builder_t *b = zj_builder_new(&o);
    for (size_t i = 0; texts[i] != NULL; i++) {
        assert_int_equal(zj_builder_add_text(b, "t.zone", texts[i], strlen(texts[i]), NULL), 0);
    }
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = zj_builder_finish(b, &buf, &len);
    zj_builder_free(b);
    assert_int_equal(rc, 0);
    zj_image_t *img = NULL;
    char err[256];
    assert_int_equal(zj_image_open_mem(buf, len, &img, err, sizeof(err)), 0);
    return img;
}

typedef struct fx {
    zj_image_t *img[4];
    size_t n;
    zj_imgset_t *set;
} fx_t;

static void fx_add(fx_t *f, const char *const *texts)
{
    f->img[f->n++] = image_of(texts);
}

static void fx_index(fx_t *f)
{
    assert_int_equal(zj_imgset_from_images(f->img, f->n, &f->set), 0);
    for (size_t i = 0; i < f->n; i++) {
        assert_non_null(f->img[i]->anstab);
    }
}

static void fx_close(fx_t *f)
{
    zj_imgset_close(f->set);
    for (size_t i = 0; i < f->n; i++) {
        zj_image_close(f->img[i]);
    }
    memset(f, 0, sizeof(*f));
}

static void responders_reset(void)
{
    zj_answer_cfg_default(&cfg);
    static const uint8_t nsid[] = "t1";
    cfg.nsid = nsid;
    cfg.nsid_len = 2;
    zj_responder_init(&rt, &cfg, 1);
    zj_responder_init(&rg, &cfg, 1);
}

/* A set of the one image that text (zone files, concatenated) compiles to; responders reset. */
static void fx_one_text(fx_t *f, const char *text)
{
    memset(f, 0, sizeof(*f));
    const char *texts[] = {text, NULL};
    fx_add(f, texts);
    fx_index(f);
    responders_reset();
}

/* The start of a generated zone: origin, SOA, NS and its address. Returns the length written. */
static size_t zone_head(char *text, size_t cap, const char *origin)
{
    int n =
        snprintf(text, cap,
                 "$ORIGIN %s\n$TTL 60\n@ SOA ns host 1 2 3 4 5\n@ NS ns\nns A 192.0.2.1\n", origin);
    assert_true(n > 0 && (size_t)n < cap);
    return (size_t)n;
}

/* ---- queries ----------------------------------------------------------------------------- */

typedef struct mode {
    bool tcp;
    int payload; /* EDNS UDP size, or -1: no OPT */
    bool is_do;
    int opt; /* 0 none, 1 a client cookie, 2 NSID, 3 a cookie of a bad length, 4 unknown */
} qmode_t;

static const qmode_t MODES[] = {
    {false, -1, false, 0},   {false, 512, false, 0},  {false, 1232, true, 0},
    {true, -1, false, 0},    {true, 1232, true, 0},   {false, 4096, false, 0},
    {false, 1232, false, 1}, {false, 1232, false, 2}, {false, 1232, false, 3},
    {false, 100, true, 4},
};

static size_t make_query(uint8_t *q, const uint8_t *wname, size_t nlen, uint16_t type,
                         const qmode_t *m)
{
    memset(q, 0, 12);
    q[0] = 0x5A;
    q[1] = 0xA5;
    q[2] = 0x01; /* RD */
    q[3] = 0x10; /* CD */
    q[5] = 1;
    memcpy(q + 12, wname, nlen);
    size_t pos = 12 + nlen;
    zj_put16(q + pos, type);
    zj_put16(q + pos + 2, ZJ_C_IN);
    pos += 4;
    if (m->payload >= 0) {
        q[11] = 1;
        uint8_t *e = q + pos;
        e[0] = 0;
        zj_put16(e + 1, ZJ_T_OPT);
        zj_put16(e + 3, (uint16_t)m->payload);
        zj_put32(e + 5, m->is_do ? ZJ_EDNS_DO : 0);
        size_t ol = 0;
        uint8_t *o = e + 11;
        if (m->opt == 1 || m->opt == 3) {
            size_t cl = m->opt == 1 ? 8 : 9;
            zj_put16(o, ZJ_EDNS_OPT_COOKIE);
            zj_put16(o + 2, (uint16_t)cl);
            memset(o + 4, 0x42, cl);
            ol = 4 + cl;
        } else if (m->opt == 2) {
            zj_put16(o, ZJ_EDNS_OPT_NSID);
            zj_put16(o + 2, 0);
            ol = 4;
        } else if (m->opt == 4) {
            zj_put16(o, 65001);
            zj_put16(o + 2, 3);
            memset(o + 4, 7, 3);
            ol = 7;
        }
        zj_put16(e + 9, (uint16_t)ol);
        pos += 11 + ol;
    }
    return pos;
}

static size_t text_name(const char *name, uint8_t *wname)
{
    uint8_t root = 0;
    int n = zj_dname_from_text(name, strlen(name), &root, wname);
    assert_true(n > 0);
    return (size_t)n;
}

/* ---- responses as text ------------------------------------------------------------------- */

typedef struct sbuf {
    char s[1 << 17];
    size_t len;
    bool is_bad;
} sbuf_t;

static void put(sbuf_t *b, const char *fmt, ...) ZJ_PRINTF(2, 3);

static void put(sbuf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->s + b->len, sizeof(b->s) - b->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(b->s) - b->len) {
        b->is_bad = true;
        return;
    }
    b->len += (size_t)n;
}

/* The name at m[*p], pointers followed and letters lower-cased; *p moves past it. */
static bool put_name(sbuf_t *b, const uint8_t *m, size_t len, size_t *p, size_t end)
{
    size_t o = *p;
    bool jumped = false;
    int hops = 0;
    size_t total = 0;
    for (;;) {
        if (o >= (jumped ? len : end)) {
            return false;
        }
        uint8_t l = m[o];
        if ((l & 0xC0) == 0xC0) {
            if (o + 2 > (jumped ? len : end) || ++hops > 64) {
                return false;
            }
            if (!jumped) {
                *p = o + 2;
            }
            jumped = true;
            o = zj_be16(m + o) & 0x3FFFu;
            continue;
        }
        if ((l & 0xC0) != 0 || o + 1 + l > (jumped ? len : end)) {
            return false;
        }
        total += (size_t)l + 1;
        if (total > ZJ_DNS_MAX_NAME) {
            return false;
        }
        if (l == 0) {
            if (!jumped) {
                *p = o + 1;
            }
            if (total == 1) {
                put(b, ".");
            }
            return true;
        }
        for (size_t k = 1; k <= l; k++) {
            uint8_t c = m[o + k];
            c = (uint8_t)(c >= 'A' && c <= 'Z' ? c + 32 : c);
            if (c > 32 && c < 127 && c != '.' && c != '\\') {
                put(b, "%c", c);
            } else {
                put(b, "\\%03u", c);
            }
        }
        put(b, ".");
        o += (size_t)l + 1;
    }
}

static void put_hex(sbuf_t *b, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        put(b, "%02x", p[i]);
    }
}

/* One line per record: section, owner, type, class, TTL, RDATA with names decompressed. */
static bool canon(sbuf_t *b, const uint8_t *m, size_t len)
{
    b->len = 0;
    b->is_bad = false;
    if (len < 12) {
        return false;
    }
    put(b, "id %02x%02x flags %04x counts %u %u %u %u\n", m[0], m[1], zj_be16(m + 2),
        zj_be16(m + 4), zj_be16(m + 6), zj_be16(m + 8), zj_be16(m + 10));
    size_t p = 12;
    for (unsigned i = 0; i < zj_be16(m + 4); i++) {
        put(b, "Q ");
        if (!put_name(b, m, len, &p, len) || p + 4 > len) {
            return false;
        }
        put(b, " %u %u\n", zj_be16(m + p), zj_be16(m + p + 2));
        p += 4;
    }
    static const char sec[3] = {'A', 'N', 'D'};
    for (int s = 0; s < 3; s++) {
        for (unsigned i = 0; i < zj_be16(m + 6 + 2 * s); i++) {
            put(b, "%c ", sec[s]);
            if (!put_name(b, m, len, &p, len) || p + 10 > len) {
                return false;
            }
            uint16_t type = zj_be16(m + p);
            size_t rdlen = zj_be16(m + p + 8);
            put(b, " %u %u %u ", type, zj_be16(m + p + 2), zj_be32(m + p + 4));
            p += 10;
            size_t end = p + rdlen;
            if (end > len) {
                return false;
            }
            size_t r = p;
            int names =
                type == ZJ_T_SOA ? 2
                : (type == ZJ_T_NS || type == ZJ_T_CNAME || type == ZJ_T_PTR || type == ZJ_T_MX)
                    ? 1
                    : 0;
            if (type == ZJ_T_MX) {
                if (r + 2 > end) {
                    return false;
                }
                put_hex(b, m + r, 2);
                put(b, " ");
                r += 2;
            }
            for (int k = 0; k < names; k++) {
                if (!put_name(b, m, len, &r, end)) {
                    return false;
                }
                put(b, " ");
            }
            put_hex(b, m + r, end - r);
            put(b, "\n");
            p = end;
        }
    }
    return p == len && !b->is_bad;
}

/* ---- the differential ---------------------------------------------------------------------- */

static sbuf_t text_t, text_g;

/* Ask both paths (q is copied to a block of exactly ql bytes, the outputs are blocks of cap
 * bytes); fail on any difference. Returns true when the table answered. */
static bool diff_query(const zj_imgset_t *set, const uint8_t *q, size_t ql, bool tcp, size_t cap)
{
    uint8_t *pq = malloc(ql > 0 ? ql : 1);
    uint8_t *o1 = malloc(cap > 0 ? cap : 1);
    uint8_t *o2 = malloc(cap > 0 ? cap : 1);
    assert_non_null(pq);
    assert_non_null(o1);
    assert_non_null(o2);
    memcpy(pq, q, ql);
    /* the batch prefetch reads the same packet first (ASan checks its reads too) */
    zj_anstab_hint_t hint;
    zj_anstab_prefetch_start(set, pq, ql, &hint);
    for (int r = 0; r < ZJ_ANSTAB_PREFETCH_STEPS + 1; r++) {
        zj_anstab_prefetch_step(&hint);
    }
    assert_true(hint.stage <= ZJ_ANSTAB_PREFETCH_STEPS);
    uint64_t before = rt.stats.table;
    size_t n1 = zj_answer(&rt, set, pq, ql, NULL, tcp, o1, cap);
    size_t n2 = zj_answer_general(&rg, set, pq, ql, NULL, tcp, o2, cap);
    bool used = rt.stats.table != before;
    assert_true(n1 <= cap);
    if (n1 != 0 || n2 != 0) {
        bool ok1 = n1 != 0 && canon(&text_t, o1, n1);
        bool ok2 = n2 != 0 && canon(&text_g, o2, n2);
        if (!ok1 || !ok2 || strcmp(text_t.s, text_g.s) != 0) {
            sbuf_t qt;
            qt.len = 0;
            size_t p = 12;
            bool qok = ql > 12 && put_name(&qt, pq, ql, &p, ql);
            print_error("query %s (len %zu, tcp %d, cap %zu, table %d)\n-- table (%zu bytes, "
                        "parsed %d):\n%s-- general (%zu bytes, parsed %d):\n%s",
                        qok ? qt.s : "?", ql, tcp, cap, used, n1, ok1, ok1 ? text_t.s : "", n2, ok2,
                        ok2 ? text_g.s : "");
            fail();
        }
    }
    zj_answer_stats_t a = rt.stats;
    a.table = 0;
    assert_memory_equal(&a, &rg.stats, sizeof(a));
    free(pq);
    free(o1);
    free(o2);
    return used;
}

static bool diff_name(const zj_imgset_t *set, const char *name, uint16_t type, const qmode_t *m)
{
    uint8_t wname[ZJ_DNS_MAX_NAME];
    uint8_t q[512];
    size_t nl = text_name(name, wname);
    size_t ql = make_query(q, wname, nl, type, m);
    return diff_query(set, q, ql, m->tcp, m->tcp ? ZJ_DNS_MAX_MSG : 4096);
}

/* Rounds of the batch prefetch (zj_anstab_prefetch_start, then steps) a query of name and
 * type gets through: ZJ_ANSTAB_PREFETCH_STEPS when it reached the body the table answers from,
 * which takes the same hash of the lower-cased name as the query path, the same table, the
 * node and the type. */
static unsigned prefetch_rounds(const zj_imgset_t *set, const char *name, uint16_t type)
{
    uint8_t wname[ZJ_DNS_MAX_NAME];
    uint8_t q[512];
    size_t nl = text_name(name, wname);
    size_t ql = make_query(q, wname, nl, type, &MODES[2]);
    zj_anstab_hint_t hint;
    zj_anstab_prefetch_start(set, q, ql, &hint);
    for (int r = 0; r < ZJ_ANSTAB_PREFETCH_STEPS; r++) {
        zj_anstab_prefetch_step(&hint);
    }
    return hint.stage;
}

/* ---- wildcard synthesis ------------------------------------------------------------------ */

static int setup_one(void **state)
{
    static fx_t f;
    fx_one_text(&f, ZONE);
    *state = &f;
    return 0;
}

static int teardown_fx(void **state)
{
    fx_close(*state);
    return 0;
}

/* "*.wmx MX 10 *.wmx": the exchange is the wildcard's own name, which a response for
 * foo.wmx.example.com cannot point at in the question; the additional A of that exchange has
 * the wildcard name as its owner too. Names as long as, longer and shorter than the wildcard. */
static void test_wildcard_rdata_naming_the_wildcard(void **state)
{
    fx_t *f = *state;
    static const char *const names[] = {"a.wmx.example.com.", "foo.wmx.example.com.",
                                        "x.y.wmx.example.com.", "ABC.Wmx.Example.COM."};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        for (size_t m = 0; m < sizeof(MODES) / sizeof(MODES[0]); m++) {
            diff_name(f->set, names[i], ZJ_T_MX, &MODES[m]);
            diff_name(f->set, names[i], ZJ_T_A, &MODES[m]);
        }
        /* the A answer has nothing but owners at the question: the table holds it */
        assert_true(diff_name(f->set, names[i], ZJ_T_A, &MODES[0]));
    }
    diff_name(f->set, "q.wns.example.com.", ZJ_T_PTR, &MODES[0]);
    diff_name(f->set, "qq.wns.example.com.", ZJ_T_PTR, &MODES[3]);
}

/* "*.wx CNAME x.*.wx": the target lies below the wildcard's own name. */
static void test_wildcard_cname_below_the_wildcard(void **state)
{
    fx_t *f = *state;
    static const char *const names[] = {"a.wx.example.com.", "foo.wx.example.com.",
                                        "deep.er.wx.example.com."};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        for (size_t m = 0; m < sizeof(MODES) / sizeof(MODES[0]); m++) {
            diff_name(f->set, names[i], ZJ_T_A, &MODES[m]);
            diff_name(f->set, names[i], ZJ_T_CNAME, &MODES[m]);
            diff_name(f->set, names[i], ZJ_T_AAAA, &MODES[m]);
        }
    }
}

/* Ordinary wildcards are still answered from the table. */
static void test_wildcard_answers_come_from_the_table(void **state)
{
    fx_t *f = *state;
    assert_true(diff_name(f->set, "foo.wild.example.com.", ZJ_T_A, &MODES[0]));
    assert_true(diff_name(f->set, "a.b.c.wild.example.com.", ZJ_T_MX, &MODES[2]));
    assert_true(diff_name(f->set, "x.wc.example.com.", ZJ_T_A, &MODES[1]));
    assert_true(diff_name(f->set, "x.wild.example.com.", ZJ_T_SRV, &MODES[0]));  /* NODATA */
    assert_true(diff_name(f->set, "nope.example.com.", ZJ_T_A, &MODES[0]));      /* NXDOMAIN */
    assert_true(diff_name(f->set, "x.y.deleg.example.com.", ZJ_T_A, &MODES[3])); /* referral */
    /* types above ANY are plain lookups */
    assert_true(diff_name(f->set, "many.example.com.", ZJ_T_CAA, &MODES[0]));
    assert_true(diff_name(f->set, "many.example.com.", 65280, &MODES[0]));
    assert_true(diff_name(f->set, "www.example.com.", ZJ_T_CAA, &MODES[2])); /* NODATA */
}

/* ---- sweep ------------------------------------------------------------------------------- */

static const char *const OWNERS[] = {
    "example.com.",
    "ns1.example.com.",
    "mail.example.com.",
    "www.example.com.",
    "www2.example.com.",
    "alias.example.com.",
    "alias2.example.com.",
    "ext.example.com.",
    "c2d.example.com.",
    "c2nx.example.com.",
    "c2w.example.com.",
    "loop1.example.com.",
    "srv._tcp.example.com",
    "_tcp.example.com.",
    "*.wild.example.com.",
    "wild.example.com.",
    "*.wc.example.com.",
    "*.wmx.example.com.",
    "*.wx.example.com.",
    "x.*.wx.example.com.",
    "*.wns.example.com.",
    "c.ent.example.com.",
    "ent.example.com.",
    "deep.a.b.c.ent.example.com.",
    "a.b.ent2.example.com",
    "ent2.a.b.example.com",
    "a.b.example.com.",
    "dname.example.com.",
    "deleg.example.com.",
    "ns.deleg.example.com.",
    "below.ns.deleg.example.com.",
    "wdeleg.example.com.",
    "*.wdeleg.example.com.",
    "sub.example.com.",
    "ns.sub.example.com.",
    "www.sub.example.com.",
    "*.w.sub.example.com.",
    "many.example.com.",
    "big.example.com.",
    "example.net.",
    ".",
    "a.root-servers.test.",
    "*.wr.",
    "*.a.",
    "a.",
    "com.",
};

static const uint16_t TYPES[] = {ZJ_T_A,     ZJ_T_AAAA, ZJ_T_MX,    ZJ_T_TXT, ZJ_T_NS,   ZJ_T_SOA,
                                 ZJ_T_CNAME, ZJ_T_SRV,  ZJ_T_DNAME, ZJ_T_DS,  ZJ_T_PTR,  65280,
                                 65281,      0,         ZJ_T_OPT,   ZJ_T_ANY, ZJ_T_AXFR, 250,
                                 ZJ_T_RRSIG, 65535,     ZJ_T_CAA,   ZJ_T_URI};

static unsigned sweep(const zj_imgset_t *set, unsigned *n_queries)
{
    static const char *const prefixes[] = {"", "x.", "A.b.", "nx-123.", "*.", "deeper.x.y.z."};
    unsigned used = 0;
    unsigned n = 0;
    unsigned mi = 0;
    for (size_t o = 0; o < sizeof(OWNERS) / sizeof(OWNERS[0]); o++) {
        for (size_t p = 0; p < sizeof(prefixes) / sizeof(prefixes[0]); p++) {
            char name[300];
            const char *owner = OWNERS[o];
            bool has_dot = owner[strlen(owner) - 1] == '.';
            snprintf(name, sizeof(name), "%s%s%s", prefixes[p],
                     strcmp(owner, ".") == 0 && p > 0 ? "" : owner, has_dot ? "" : ".");
            if (strcmp(name, "") == 0) {
                continue;
            }
            for (size_t t = 0; t < sizeof(TYPES) / sizeof(TYPES[0]); t++) {
                const qmode_t *m = &MODES[mi++ % (sizeof(MODES) / sizeof(MODES[0]))];
                used += diff_name(set, name, TYPES[t], m);
                n++;
            }
        }
    }
    *n_queries = n;
    return used;
}

static void test_sweep_one_image(void **state)
{
    fx_t *f = *state;
    unsigned n = 0;
    unsigned used = sweep(f->set, &n);
    print_message("one image: %u queries, %u from the table\n", n, used);
    assert_true(used > n / 3);
}

/* A set of three images: a root zone, example.com, and sub.example.com in its own image. */
static void fx_three_images(fx_t *f)
{
    memset(f, 0, sizeof(*f));
    const char *root[] = {ROOTZONE, NULL};
    const char *parent[] = {ZONE, NULL};
    const char *child[] = {SUBZONE, NULL};
    fx_add(f, root);
    fx_add(f, parent);
    fx_add(f, child);
    fx_index(f);
}

static void test_sweep_three_images(void **state)
{
    (void)state;
    fx_t f;
    fx_three_images(&f);
    responders_reset();
    unsigned n = 0;
    unsigned used = sweep(f.set, &n);
    print_message("three images: %u queries, %u from the table\n", n, used);
    assert_true(used > n / 3);
    /* the child's names come from the child's image, the parent's referral from the parent's */
    assert_true(diff_name(f.set, "www.sub.example.com.", ZJ_T_A, &MODES[0]));
    assert_true(diff_name(f.set, "nx.sub.example.com.", ZJ_T_A, &MODES[0]));
    assert_true(diff_name(f.set, "x.deleg.example.com.", ZJ_T_A, &MODES[0]));
    assert_true(diff_name(f.set, "nothing.test.", ZJ_T_A, &MODES[0]));
    fx_close(&f);
}

/* The batch prefetch follows the chain the query path reads for names the table holds (in
 * mixed case, any type the node has, in whichever image serves the zone) and stops early for
 * the rest: a type the node lacks, a name not in the table, a packet with no question. */
static void test_prefetch_follows_the_table(void **state)
{
    fx_t *f = *state;
    const unsigned all = ZJ_ANSTAB_PREFETCH_STEPS;
    assert_int_equal(prefetch_rounds(f->set, "www.example.com.", ZJ_T_A), all);
    assert_int_equal(prefetch_rounds(f->set, "WwW.ExAmPlE.cOm.", ZJ_T_A), all);
    assert_int_equal(prefetch_rounds(f->set, "mail.example.com.", ZJ_T_AAAA), all);
    assert_int_equal(prefetch_rounds(f->set, "example.com.", ZJ_T_MX), all);
    assert_int_equal(prefetch_rounds(f->set, "www.example.com.", ZJ_T_TXT), 2);
    assert_int_equal(prefetch_rounds(f->set, "nope.example.com.", ZJ_T_A), 0);
    zj_anstab_hint_t hint;
    static const uint8_t header_only[12] = {1, 2, 0, 0, 0, 1};
    zj_anstab_prefetch_start(f->set, header_only, sizeof(header_only), &hint);
    zj_anstab_prefetch_step(&hint);
    assert_null(hint.t);
    assert_int_equal(hint.stage, 0);

    fx_t three;
    fx_three_images(&three);
    assert_int_equal(prefetch_rounds(three.set, "www.sub.example.com.", ZJ_T_A), all);
    assert_int_equal(prefetch_rounds(three.set, "NS1.example.com.", ZJ_T_A), all);
    assert_int_equal(prefetch_rounds(three.set, "a.root-servers.test.", ZJ_T_A), all);
    assert_int_equal(prefetch_rounds(three.set, "nothing.test.", ZJ_T_A), 0);
    fx_close(&three);
}

/* The same apex in two images (a set zj_imgset_check did not see): the set's directory picks
 * the first image, and so must the table; the second image also holds a deeper zone. */
static void test_duplicate_apexes_across_images(void **state)
{
    (void)state;
    static const char alt[] = "$ORIGIN example.com.\n$TTL 100\n@ SOA ns1 alt 9 2 3 4 50\n"
                              "@ NS ns1\nns1 A 198.51.100.1\nwww A 198.51.100.3\n"
                              "*.wild TXT \"alt\"\nonly-alt A 198.51.100.4\n";
    for (int order = 0; order < 2; order++) {
        fx_t f;
        memset(&f, 0, sizeof(f));
        const char *one[] = {ZONE, NULL};
        const char *two[] = {alt, SUBZONE, NULL};
        fx_add(&f, order ? two : one);
        fx_add(&f, order ? one : two);
        fx_index(&f);
        responders_reset();
        unsigned n = 0;
        unsigned used = sweep(f.set, &n);
        assert_true(used > n / 4);
        assert_true(diff_name(f.set, "www.example.com.", ZJ_T_A, &MODES[0]));
        assert_true(diff_name(f.set, "only-alt.example.com.", ZJ_T_A, &MODES[0]));
        assert_true(diff_name(f.set, "x.wild.example.com.", ZJ_T_TXT, &MODES[0]));
        assert_true(diff_name(f.set, "www.sub.example.com.", ZJ_T_A, &MODES[0]));
        fx_close(&f);
    }
}

/* Names of 1 to 127 labels below the root zone's wildcards and below example.com. */
static void test_label_counts_up_to_127(void **state)
{
    (void)state;
    fx_t f;
    memset(&f, 0, sizeof(f));
    const char *root[] = {ROOTZONE, NULL};
    const char *parent[] = {ZONE, NULL};
    fx_add(&f, root);
    fx_add(&f, parent);
    fx_index(&f);
    responders_reset();
    static const char *const tails[] = {"a.", "wr.", "wild.example.com.", "example.com.", "."};
    for (size_t t = 0; t < sizeof(tails) / sizeof(tails[0]); t++) {
        uint8_t tail[ZJ_DNS_MAX_NAME];
        size_t tl = text_name(tails[t], tail);
        for (size_t labels = 0; 2 * labels + tl <= ZJ_DNS_MAX_NAME; labels++) {
            for (int w = 1; w <= 3; w++) {
                uint8_t name[ZJ_DNS_MAX_NAME + 64];
                size_t nl = 0;
                /* labels of 1 byte, then one longer first label while the name still fits */
                for (size_t k = 0; k < labels; k++) {
                    size_t ll = k == 0 ? (size_t)w : 1;
                    if (nl + ll + 1 + (labels - k - 1) * 2 + tl > ZJ_DNS_MAX_NAME) {
                        ll = 1;
                    }
                    name[nl] = (uint8_t)ll;
                    memset(name + nl + 1, k % 2 ? 'B' : 'q', ll);
                    nl += ll + 1;
                }
                memcpy(name + nl, tail, tl);
                nl += tl;
                if (nl > ZJ_DNS_MAX_NAME) {
                    continue;
                }
                uint8_t q[600];
                for (size_t m = 0; m < 4; m++) {
                    size_t ql = make_query(q, name, nl, m % 2 ? ZJ_T_TXT : ZJ_T_A, &MODES[m]);
                    bool used = diff_query(f.set, q, ql, MODES[m].tcp, MODES[m].tcp ? 65535 : 4096);
                    /* 127 labels (the most a name has) below the root zone's "*.a." */
                    if (t == 0 && labels + 1 == 127 && m == 0) {
                        assert_true(used);
                    }
                }
            }
        }
    }
    fx_close(&f);
}

/* ---- bounds ------------------------------------------------------------------------------ */

/* Bodies of AT_BODY_MAX (4000) bytes and one more, answers with 255 compression pointers and
 * one more: the table holds the first of each pair, the general path answers the second. */
static void test_body_and_pointer_bounds(void **state)
{
    (void)state;
    static char text[1 << 16];
    size_t o = zone_head(text, sizeof(text), "bounds.example.");
    /* one TXT record whose RR is 12 + rdlen bytes: rdlen 3988 and 3989 */
    for (int extra = 0; extra < 2; extra++) {
        o += (size_t)snprintf(text + o, sizeof(text) - o, "b%d TXT", 4000 + extra);
        size_t rdlen = 3988 + (size_t)extra;
        while (rdlen > 0) {
            size_t sl = rdlen > 256 ? 255 : rdlen - 1;
            o += (size_t)snprintf(text + o, sizeof(text) - o, " \"");
            memset(text + o, 'x', sl);
            o += sl;
            o += (size_t)snprintf(text + o, sizeof(text) - o, "\"");
            rdlen -= sl + 1;
        }
        o += (size_t)snprintf(text + o, sizeof(text) - o, "\n");
    }
    /* MX sets: one pointer per owner, one per exchange in the zone (an exchange outside it is
     * written in full): 128 + 127 = 255 and 128 + 128 = 256 */
    for (int k = 0; k < 128; k++) {
        if (k < 127) {
            o += (size_t)snprintf(text + o, sizeof(text) - o, "p255 MX %d e%d\n", k, k);
        } else {
            o += (size_t)snprintf(text + o, sizeof(text) - o, "p255 MX %d mx.example.net.\n", k);
        }
        o += (size_t)snprintf(text + o, sizeof(text) - o, "p256 MX %d e%d\n", k, k);
    }
    assert_true(o < sizeof(text) - 1);
    fx_t f;
    fx_one_text(&f, text);
    const qmode_t *tcp = &MODES[3];
    assert_true(diff_name(f.set, "b4000.bounds.example.", ZJ_T_TXT, tcp));
    assert_false(diff_name(f.set, "b4001.bounds.example.", ZJ_T_TXT, tcp));
    assert_true(diff_name(f.set, "p255.bounds.example.", ZJ_T_MX, tcp));
    assert_false(diff_name(f.set, "p256.bounds.example.", ZJ_T_MX, tcp));
    fx_close(&f);
}

/* A node with more types than an answer list holds (253 and the two CNAME follow-ups: 255),
 * and an apex that holds every private-use type (the NODATA probe type of zone_neg). */
static void test_nodes_with_many_types(void **state)
{
    (void)state;
    static char text[1 << 16];
    size_t o = zone_head(text, sizeof(text), "types.example.");
    for (unsigned k = 0; k < 260; k++) {
        o += (size_t)snprintf(text + o, sizeof(text) - o, "many TYPE%u \\# 1 %02x\n", 65000 + k,
                              k & 0xFF);
    }
    for (unsigned k = 65280; k <= 65535; k++) {
        o += (size_t)snprintf(text + o, sizeof(text) - o, "@ TYPE%u \\# 0\n", k);
    }
    assert_true(o < sizeof(text) - 1);
    fx_t f;
    fx_one_text(&f, text);
    unsigned used = 0;
    for (unsigned k = 0; k < 260; k++) {
        used += diff_name(f.set, "many.types.example.", (uint16_t)(65000 + k), &MODES[k % 6]);
    }
    assert_int_equal(used, 253); /* the first 253; the rest from the general path */
    assert_false(diff_name(f.set, "many.types.example.", 65259, &MODES[0]));
    assert_false(diff_name(f.set, "many.types.example.", ZJ_T_A, &MODES[0])); /* no default */
    for (unsigned k = 65270; k <= 65535; k++) {
        diff_name(f.set, "types.example.", (uint16_t)k, &MODES[k % 6]);
    }
    diff_name(f.set, "types.example.", 0, &MODES[0]);
    diff_name(f.set, "nope.types.example.", ZJ_T_A, &MODES[0]);
    diff_name(f.set, "ns.types.example.", ZJ_T_MX, &MODES[0]);
    fx_close(&f);
}

/* Every allocation of a table build fails in turn: ZJ_ENOMEM, no table, nothing leaked; then
 * the build that fails nothing succeeds and its table frees everything it holds. */
static void test_build_fails_cleanly_at_every_allocation(void **state)
{
    (void)state;
#ifdef HAVE_ASAN
    skip(); /* ASan owns malloc; the sanitizer-free build runs this */
#else
    const char *texts[] = {ZONE, NULL};
    zj_image_t *img = image_of(texts);
    long k = 1;
    for (;; k++) {
        zj_anstab_t *t = NULL;
        n_calls = 0;
        outstanding = 0;
        fail_at = k;
        counting = 1;
        int rc = zj_anstab_build(img, &t);
        counting = 0;
        if (n_calls < k) {
            assert_int_equal(rc, 0);
            assert_non_null(t);
            counting = 1;
            zj_anstab_free(t);
            counting = 0;
            assert_int_equal(outstanding, 0);
            break;
        }
        assert_int_equal(rc, ZJ_ENOMEM);
        assert_null(t);
        assert_int_equal(outstanding, 0);
    }
    fail_at = 0;
    print_message("table build: %ld allocations, each failed once\n", k - 1);
    assert_true(k > 5); /* the build allocates: the loop did inject failures */
    zj_image_close(img);
#endif
}

/* ---- packets ----------------------------------------------------------------------------- */

/* Every prefix of a query, and one-byte changes at every position, into exact-size blocks. */
static void test_prefixes_and_mutations(void **state)
{
    fx_t *f = *state;
    static const struct {
        const char *name;
        uint16_t type;
        int mode;
    } base[] = {
        {"www.example.com.", ZJ_T_A, 0},     {"www.example.com.", ZJ_T_A, 2},
        {"x.wild.example.com.", ZJ_T_MX, 6}, {"nope.example.com.", ZJ_T_TXT, 4},
        {"a.deleg.example.com.", ZJ_T_A, 9}, {"abcdefg.example.com.", ZJ_T_A, 1},
    };
    static const uint8_t values[] = {0x00, 0x01, 0x02, 0x07, 0x08, 0x0C, 0x10,
                                     0x29, 0x3F, 0x40, 0x80, 0xC0, 0xFE, 0xFF};
    unsigned used = 0;
    for (size_t i = 0; i < sizeof(base) / sizeof(base[0]); i++) {
        uint8_t wname[ZJ_DNS_MAX_NAME];
        uint8_t q[512];
        size_t nl = text_name(base[i].name, wname);
        const qmode_t *m = &MODES[base[i].mode];
        size_t ql = make_query(q, wname, nl, base[i].type, m);
        for (size_t len = 0; len <= ql; len++) {
            used += diff_query(f->set, q, len, m->tcp, 4096);
        }
        for (size_t pos = 0; pos < ql; pos++) {
            uint8_t keep = q[pos];
            for (size_t v = 0; v < sizeof(values) / sizeof(values[0]) + 2; v++) {
                q[pos] = v < sizeof(values) ? values[v] : (uint8_t)(keep ^ (v % 2 ? 0x20 : 0x01));
                used += diff_query(f->set, q, ql, m->tcp, 4096);
                used += diff_query(f->set, q, ql, !m->tcp, 65535);
            }
            q[pos] = keep;
        }
        /* trailing bytes after the question or the OPT */
        q[ql] = 0;
        diff_query(f->set, q, ql + 1, m->tcp, 4096);
    }
    assert_true(used > 0);
}

/* Output blocks around and below the sizes of responses. */
static void test_small_output_buffers(void **state)
{
    fx_t *f = *state;
    static const size_t caps[] = {0, 1, 12, 40, 100, 511, 512, 513, 600, 1231, 1232};
    static const char *const names[] = {"www.example.com.", "example.com.", "big.example.com.",
                                        "x.deleg.example.com.", "nope.example.com."};
    static const uint16_t types[] = {ZJ_T_A, ZJ_T_NS, ZJ_T_TXT, ZJ_T_MX};
    for (size_t c = 0; c < sizeof(caps) / sizeof(caps[0]); c++) {
        for (size_t n = 0; n < sizeof(names) / sizeof(names[0]); n++) {
            for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
                for (size_t m = 0; m < 6; m++) {
                    uint8_t wname[ZJ_DNS_MAX_NAME];
                    uint8_t q[512];
                    size_t nl = text_name(names[n], wname);
                    size_t ql = make_query(q, wname, nl, types[t], &MODES[m]);
                    diff_query(f->set, q, ql, MODES[m].tcp, caps[c]);
                }
            }
        }
    }
}

/* ---- sets -------------------------------------------------------------------------------- */

static void write_image_file(const char *path, const char *text)
{
    zj_build_opts_t o;
    memset(&o, 0, sizeof(o));
    o.quiet = true;
    zj_builder_t *b = zj_builder_new(&o);
    assert_int_equal(zj_builder_add_text(b, "t.zone", text, strlen(text), NULL), 0);
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(zj_builder_finish(b, &buf, &len), 0);
    zj_builder_free(b);
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(buf, 1, len, fp), len);
    assert_int_equal(fclose(fp), 0);
    free(buf);
}

/* An edit drops the set's directory (zone/imgset.h: until zj_imgset_index runs again, the set
 * answers REFUSED for every name); the images keep their tables, which must not answer for a
 * set that serves nothing. */
static void test_set_without_directory_serves_nothing(void **state)
{
    (void)state;
    char dir[] = "/tmp/zj_anstab_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char p1[64];
    char p2[64];
    snprintf(p1, sizeof(p1), "%s/a.img", dir);
    snprintf(p2, sizeof(p2), "%s/b.img", dir);
    write_image_file(p1, ZONE);
    write_image_file(p2, SUBZONE);
    const char *paths[] = {p1, p2};
    zj_imgset_spec_t spec;
    memset(&spec, 0, sizeof(spec));
    spec.images = paths;
    spec.n_images = 2;
    zj_imgset_t *set = NULL;
    assert_int_equal(zj_imgset_open(&spec, NULL, &set), 0);
    responders_reset();
    assert_true(diff_name(set, "www.example.com.", ZJ_T_A, &MODES[0]));
    zj_imgset_remove(set, 1); /* one image left, no directory */
    diff_name(set, "www.example.com.", ZJ_T_A, &MODES[0]);
    diff_name(set, "nope.example.com.", ZJ_T_A, &MODES[0]);
    assert_int_equal(zj_imgset_index(set), 0);
    assert_true(diff_name(set, "www.example.com.", ZJ_T_A, &MODES[0]));
    zj_imgset_close(set);
    unlink(p1);
    unlink(p2);
    rmdir(dir);
}

/* One image holding wz.example, with a wildcard, and a zone whose apex is that wildcard's name:
 * names below wz.example are synthesized from the parent's "*" node (zj_zone_lookup looks the
 * source of synthesis up in the closest encloser's zone), not from the other zone's apex. */
static void test_wildcard_named_like_another_zone_apex(void **state)
{
    (void)state;
    static const char parent[] = "$ORIGIN wz.example.\n$TTL 300\n@ SOA ns1 host 1 2 3 4 60\n"
                                 "@ NS ns1\nns1 A 192.0.2.1\n* A 192.0.2.31\n* TXT \"parent\"\n";
    static const char child[] = "$ORIGIN *.wz.example.\n$TTL 300\n"
                                "@ SOA ns1.wz.example. host 1 2 3 4 60\n@ NS ns1.wz.example.\n"
                                "@ A 192.0.2.32\n@ TXT \"child\"\n";
    for (int order = 0; order < 2; order++) {
        fx_t f;
        memset(&f, 0, sizeof(f));
        const char *texts[] = {order ? child : parent, order ? parent : child, NULL};
        fx_add(&f, texts);
        fx_index(&f);
        responders_reset();
        for (size_t m = 0; m < 4; m++) {
            diff_name(f.set, "foo.wz.example.", ZJ_T_A, &MODES[m]);
            diff_name(f.set, "a.b.wz.example.", ZJ_T_TXT, &MODES[m]);
            diff_name(f.set, "a.wz.example.", ZJ_T_MX, &MODES[m]);
            diff_name(f.set, "*.wz.example.", ZJ_T_A, &MODES[m]);
            diff_name(f.set, "x.*.wz.example.", ZJ_T_A, &MODES[m]);
        }
        fx_close(&f);
    }
}

/* Images the compiler does not make but the validator accepts: one node of a compiled image
 * changed, the checksum resealed. */
static uint8_t *section(uint8_t *b, uint32_t kind, uint32_t *count)
{
    zj_img_header_d h;
    memcpy(&h, b, sizeof(h));
    for (uint32_t i = 0; i < h.n_sections; i++) {
        zj_img_section_d s;
        memcpy(&s, b + sizeof(h) + i * sizeof(s), sizeof(s));
        if (s.kind == kind) {
            *count = s.count;
            return b + s.off;
        }
    }
    fail();
    return NULL;
}

enum patch { HIDE_NODE, SET_DELEG };

static zj_image_t *image_patched(const char *text, const char *owner, enum patch how)
{
    zj_build_opts_t o;
    memset(&o, 0, sizeof(o));
    o.quiet = true;
    zj_builder_t *bl = zj_builder_new(&o);
    assert_int_equal(zj_builder_add_text(bl, "t.zone", text, strlen(text), NULL), 0);
    uint8_t *b = NULL;
    size_t len = 0;
    assert_int_equal(zj_builder_finish(bl, &b, &len), 0);
    zj_builder_free(bl);
    uint8_t wname[ZJ_DNS_MAX_NAME];
    size_t wl = text_name(owner, wname);
    uint32_t n_nodes = 0;
    uint32_t n_names = 0;
    uint32_t n_slots = 0;
    zj_img_node_d *nodes = (zj_img_node_d *)(void *)section(b, ZJ_SEC_NODES, &n_nodes);
    const uint8_t *names = section(b, ZJ_SEC_NAMES, &n_names);
    zj_img_slot_d *slots = (zj_img_slot_d *)(void *)section(b, ZJ_SEC_INDEX, &n_slots);
    uint32_t node = ZJ_IMG_NONE;
    for (uint32_t i = 0; i < n_nodes; i++) {
        if (nodes[i].name_len == wl && memcmp(names + nodes[i].name_off, wname, wl) == 0) {
            node = i;
        }
    }
    assert_int_not_equal(node, ZJ_IMG_NONE);
    if (how == HIDE_NODE) {
        /* the index no longer finds the node: its slot's tag is wrong, the probe runs on */
        bool is_hidden = false;
        for (uint32_t i = 0; i < n_slots; i++) {
            if (slots[i].node == node + 1) {
                slots[i].tag ^= 1u;
                is_hidden = true;
            }
        }
        assert_true(is_hidden);
    } else {
        nodes[node].flags |= ZJ_NODE_DELEG; /* the node has NS records: a cut */
    }
    uint64_t sum = XXH3_64bits(b + ZJ_IMG_SUM_FROM, len - ZJ_IMG_SUM_FROM);
    memcpy(b + offsetof(zj_img_header_d, checksum), &sum, sizeof(sum));
    zj_image_t *img = NULL;
    char err[256];
    assert_int_equal(zj_image_open_mem(b, len, &img, err, sizeof(err)), 0);
    return img;
}

/* The general path treats a name its index does not find as absent, so the table must too,
 * and its closest-encloser walk must not step on that node either. */
static void test_nodes_the_index_does_not_find(void **state)
{
    (void)state;
    /* an empty non-terminal with a wildcard sibling, an owner with data, a wildcard */
    static const char *const hide[] = {"c.ent.example.com.", "www.example.com.",
                                       "*.wild.example.com.", "a.b.c.ent.example.com."};
    static const char *const ask[] = {
        "c.ent.example.com.",          "x.c.ent.example.com.",
        "deep.a.b.c.ent.example.com.", "x.deep.a.b.c.ent.example.com.",
        "b.c.ent.example.com.",        "www.example.com.",
        "x.www.example.com.",          "foo.wild.example.com.",
        "*.wild.example.com."};
    for (size_t h = 0; h < sizeof(hide) / sizeof(hide[0]); h++) {
        fx_t f;
        memset(&f, 0, sizeof(f));
        f.img[f.n++] = image_patched(ZONE, hide[h], HIDE_NODE);
        assert_int_equal(zj_imgset_from_images(f.img, f.n, &f.set), 0);
        responders_reset();
        for (size_t a = 0; a < sizeof(ask) / sizeof(ask[0]); a++) {
            diff_name(f.set, ask[a], ZJ_T_TXT, &MODES[0]);
            diff_name(f.set, ask[a], ZJ_T_A, &MODES[0]);
        }
        fx_close(&f);
    }
}

/* An apex flagged as a zone cut: the answer the table takes for its zone's NODATA and NXDOMAIN
 * (the apex asked for a type it lacks) is then a referral, while other names of the zone still
 * get NODATA and NXDOMAIN with the SOA from the general path. */
static void test_apex_that_is_a_cut(void **state)
{
    (void)state;
    fx_t f;
    memset(&f, 0, sizeof(f));
    f.img[f.n++] = image_patched(ZONE, "example.com.", SET_DELEG);
    assert_int_equal(zj_imgset_from_images(f.img, f.n, &f.set), 0);
    responders_reset();
    static const char *const ask[] = {"www.example.com.", "x.www.example.com.", "example.com.",
                                      "nope.example.com.", "c.ent.example.com."};
    for (size_t a = 0; a < sizeof(ask) / sizeof(ask[0]); a++) {
        diff_name(f.set, ask[a], ZJ_T_MX, &MODES[0]);
        diff_name(f.set, ask[a], ZJ_T_A, &MODES[0]);
    }
    fx_close(&f);
}

/* With rate limiting on, every query goes through the general path (and its limiter). */
static void test_rate_limiting_bypasses_the_table(void **state)
{
    fx_t *f = *state;
    zj_rrl_cfg_t rc;
    zj_rrl_cfg_default(&rc);
    rc.rate = 5;
    zj_rrl_t *rrl = zj_rrl_new(&rc);
    assert_non_null(rrl);
    responders_reset();
    cfg.rrl = rrl;
    uint8_t wname[ZJ_DNS_MAX_NAME];
    uint8_t q[512];
    uint8_t out[4096];
    size_t ql = make_query(q, wname, text_name("www.example.com.", wname), ZJ_T_A, &MODES[0]);
    for (int i = 0; i < 20; i++) {
        (void)zj_answer(&rt, f->set, q, ql, NULL, false, out, sizeof(out));
    }
    assert_int_equal(rt.stats.table, 0);
    assert_int_equal(rt.stats.queries, 20);
    cfg.rrl = NULL;
    zj_rrl_free(rrl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_wildcard_rdata_naming_the_wildcard, setup_one,
                                        teardown_fx),
        cmocka_unit_test_setup_teardown(test_wildcard_cname_below_the_wildcard, setup_one,
                                        teardown_fx),
        cmocka_unit_test_setup_teardown(test_wildcard_answers_come_from_the_table, setup_one,
                                        teardown_fx),
        cmocka_unit_test_setup_teardown(test_sweep_one_image, setup_one, teardown_fx),
        cmocka_unit_test(test_sweep_three_images),
        cmocka_unit_test(test_duplicate_apexes_across_images),
        cmocka_unit_test_setup_teardown(test_prefetch_follows_the_table, setup_one, teardown_fx),
        cmocka_unit_test(test_label_counts_up_to_127),
        cmocka_unit_test(test_body_and_pointer_bounds),
        cmocka_unit_test(test_nodes_with_many_types),
        cmocka_unit_test(test_build_fails_cleanly_at_every_allocation),
        cmocka_unit_test_setup_teardown(test_prefixes_and_mutations, setup_one, teardown_fx),
        cmocka_unit_test_setup_teardown(test_small_output_buffers, setup_one, teardown_fx),
        cmocka_unit_test(test_set_without_directory_serves_nothing),
        cmocka_unit_test(test_wildcard_named_like_another_zone_apex),
        cmocka_unit_test(test_nodes_the_index_does_not_find),
        cmocka_unit_test(test_apex_that_is_a_cut),
        cmocka_unit_test_setup_teardown(test_rate_limiting_bypasses_the_table, setup_one,
                                        teardown_fx),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
