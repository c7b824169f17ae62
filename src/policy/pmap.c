/* Prefix maps: a set of possibly nested prefixes flattened into sorted, disjoint pieces that
 * cover the whole address space, so that a longest-prefix match is one binary search.
 *
 * Build: the prefixes of one family are sorted by start address, shorter (enclosing) prefixes
 * first. Because two prefixes are either nested or disjoint, a sweep with a stack of the
 * prefixes that enclose the current address emits the pieces in order: before a prefix opens,
 * the gap up to it belongs to the innermost open prefix (or to no prefix: ZJ_IMG_NONE, len 0);
 * when a prefix ends, the rest of it is emitted and the sweep continues in its parent. At most
 * 2n + 1 pieces come out of n prefixes.
 *
 * Both families go through one sweep over 128-bit integers (an IPv4 address is a 32-bit value
 * in the same type) so that there is one algorithm to test. Pieces are not merged even when
 * neighbours carry the same value: a piece must stay inside the prefix its len describes, which
 * is what zj_pmap*_valid checks and what the scope computation relies on.
 *
 * Lookups are hot-path safe: a binary search and a few bit operations, no allocation. */
#include "policy/pmap.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "zonejet/err.h"

typedef unsigned __int128 u128;

/* Count of leading bits that a and b share, within a width of w bits (w = 32 or 128). */
static unsigned common_prefix(u128 a, u128 b, unsigned w)
{
    u128 x = a ^ b;
    if (x == 0) {
        return w;
    }
    uint64_t hi = (uint64_t)(x >> 64);
    unsigned lz =
        hi != 0 ? (unsigned)__builtin_clzll(hi) : 64u + (unsigned)__builtin_clzll((uint64_t)x);
    return lz - (128u - w);
}

/* Mask of the host bits of a prefix of length len in a w-bit space. */
static u128 host_mask(unsigned len, unsigned w)
{
    unsigned host = w - len;
    if (host == 0) {
        return 0;
    }
    if (host >= 128) {
        return ~(u128)0;
    }
    return ((u128)1 << host) - 1;
}

/* ECS scope of addr x in piece [s, e] whose value came from a prefix of length len: the largest
 * aligned block around x that the piece holds, at least len (pmap.h). */
static uint8_t piece_scope(u128 x, u128 s, u128 e, unsigned len, unsigned w)
{
    u128 hm = host_mask(len, w);
    u128 space_max = host_mask(0, w);
    unsigned scope = len;
    if (s != (x & ~hm)) {
        /* s > 0 here: the block start of x is at most x, and s <= x */
        unsigned k = 1u + common_prefix(x, s - 1, w);
        scope = k > scope ? k : scope;
    }
    if (e != ((x & ~hm) | hm) && e != space_max) {
        unsigned k = 1u + common_prefix(x, e + 1, w);
        scope = k > scope ? k : scope;
    }
    return (uint8_t)scope;
}

/* ---- build ------------------------------------------------------------------------------- */

typedef struct span {
    u128 start, end;
    uint32_t value;
    uint32_t len;
} span_t;

typedef struct piece {
    u128 start;
    uint32_t value;
    uint32_t len;
} piece_t;

static int span_cmp(const void *a, const void *b)
{
    const span_t *x = a, *y = b;
    if (x->start != y->start) {
        return x->start < y->start ? -1 : 1;
    }
    return (x->len > y->len) - (x->len < y->len);
}

static u128 addr_u128(const zj_prefix_t *p)
{
    size_t n = p->family == AF_INET ? 4 : 16;
    u128 v = 0;
    for (size_t i = 0; i < n; i++) {
        v = (v << 8) | p->addr[i];
    }
    return v;
}

/* Sweep sorted spans of one family (w bits) into pieces; out has room for 2n + 1.
 * Returns the number of pieces, or ZJ_EINVAL for a duplicate prefix. */
static int sweep(const span_t *sp, size_t n, unsigned w, piece_t *out, span_t *stack)
{
    const u128 space_max = host_mask(0, w);
    size_t n_out = 0, depth = 0;
    u128 cursor = 0;
    bool done = false; /* cursor went past space_max */

    for (size_t i = 0; i < n; i++) {
        if (i > 0 && sp[i].start == sp[i - 1].start && sp[i].len == sp[i - 1].len) {
            return ZJ_EINVAL;
        }
        /* close the open prefixes that end before this one */
        while (depth > 0 && stack[depth - 1].end < sp[i].start) {
            const span_t *t = &stack[--depth];
            if (cursor <= t->end) {
                out[n_out++] = (piece_t){cursor, t->value, t->len};
                cursor = t->end + 1;
            }
        }
        if (cursor < sp[i].start) {
            out[n_out++] = depth > 0
                               ? (piece_t){cursor, stack[depth - 1].value, stack[depth - 1].len}
                               : (piece_t){cursor, ZJ_IMG_NONE, 0};
        }
        cursor = sp[i].start;
        stack[depth++] = sp[i];
    }
    while (depth > 0) {
        const span_t *t = &stack[--depth];
        if (!done && cursor <= t->end) {
            out[n_out++] = (piece_t){cursor, t->value, t->len};
            if (t->end == space_max) {
                done = true;
            } else {
                cursor = t->end + 1;
            }
        }
    }
    if (!done) {
        out[n_out++] = (piece_t){cursor, ZJ_IMG_NONE, 0};
    }
    return (int)n_out;
}

/* Spans of one family from p, sorted; *count receives how many. NULL on allocation failure. */
static span_t *collect(const zj_prefix_t *p, size_t n, int family, unsigned w, size_t *count,
                       int *rc)
{
    span_t *sp = malloc((n + 1) * sizeof(*sp));
    size_t k = 0;
    if (sp == NULL) {
        *rc = ZJ_ENOMEM;
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        if (p[i].family != family) {
            continue;
        }
        u128 a = addr_u128(&p[i]);
        u128 hm = host_mask(p[i].len, w);
        if ((a & hm) != 0) {
            *rc = ZJ_EINVAL;
            free(sp);
            return NULL;
        }
        sp[k++] = (span_t){a, a | hm, p[i].value, p[i].len};
    }
    qsort(sp, k, sizeof(*sp), span_cmp);
    *count = k;
    return sp;
}

/* Pieces of one family, malloc'ed into *out (2k + 1 entries at most); returns the count or a
 * negative zj_err. */
static int build_family(const zj_prefix_t *p, size_t n, int family, unsigned w, piece_t **out)
{
    int rc = ZJ_OK;
    size_t k = 0;
    span_t *sp = collect(p, n, family, w, &k, &rc);
    span_t *stack = NULL;
    piece_t *pc = NULL;
    if (sp == NULL) {
        return rc;
    }
    stack = malloc((k + 1) * sizeof(*stack));
    pc = malloc((2 * k + 1) * sizeof(*pc));
    if (stack == NULL || pc == NULL) {
        rc = ZJ_ENOMEM;
        goto out;
    }
    rc = sweep(sp, k, w, pc, stack);
    if (rc >= 0) {
        *out = pc;
        pc = NULL;
    }
out:
    free(pc);
    free(stack);
    free(sp);
    return rc;
}

int zj_pmap_build(const zj_prefix_t *p, size_t n, zj_pmap4_d **out4, size_t *n4, zj_pmap6_d **out6,
                  size_t *n6)
{
    int rc = ZJ_OK;
    piece_t *p4 = NULL, *p6 = NULL;
    zj_pmap4_d *m4 = NULL;
    zj_pmap6_d *m6 = NULL;
    int c4 = 0, c6 = 0;

    *out4 = NULL;
    *out6 = NULL;
    *n4 = *n6 = 0;
    for (size_t i = 0; i < n; i++) {
        if (!(p[i].family == AF_INET && p[i].len <= 32) &&
            !(p[i].family == AF_INET6 && p[i].len <= 128)) {
            return ZJ_EINVAL;
        }
    }
    c4 = build_family(p, n, AF_INET, 32, &p4);
    if (c4 < 0) {
        rc = c4;
        goto out;
    }
    c6 = build_family(p, n, AF_INET6, 128, &p6);
    if (c6 < 0) {
        rc = c6;
        goto out;
    }
    m4 = malloc((size_t)c4 * sizeof(*m4));
    m6 = malloc((size_t)c6 * sizeof(*m6));
    if (m4 == NULL || m6 == NULL) {
        rc = ZJ_ENOMEM;
        goto out;
    }
    for (int i = 0; i < c4; i++) {
        m4[i] = (zj_pmap4_d){(uint32_t)p4[i].start, p4[i].value, p4[i].len};
    }
    for (int i = 0; i < c6; i++) {
        m6[i] = (zj_pmap6_d){(uint64_t)(p6[i].start >> 64), (uint64_t)p6[i].start, p6[i].value,
                             p6[i].len};
    }
    *out4 = m4;
    *out6 = m6;
    *n4 = (size_t)c4;
    *n6 = (size_t)c6;
    m4 = NULL;
    m6 = NULL;
out:
    free(m6);
    free(m4);
    free(p6);
    free(p4);
    return rc;
}

/* ---- lookup ------------------------------------------------------------------------------ */

/* piece_scope for IPv4 in 32-bit arithmetic: the query path's common case (a geo or cidr
 * answer for an IPv4 client) without 128-bit shifts and compares. */
static unsigned common_prefix4(uint32_t a, uint32_t b)
{
    uint32_t x = a ^ b;
    return x != 0 ? (unsigned)__builtin_clz(x) : 32u;
}

static uint8_t piece_scope4(uint32_t x, uint32_t s, uint32_t e, unsigned len)
{
    uint32_t hm = (uint32_t)(0xFFFFFFFFull >> len); /* len 0-32: no shift by 64 or more */
    uint32_t block = x & ~hm;
    unsigned scope = len;
    if (s != block) {
        unsigned k = 1u + common_prefix4(x, s - 1u);
        scope = k > scope ? k : scope;
    }
    if (e != (block | hm) && e != UINT32_MAX) {
        unsigned k = 1u + common_prefix4(x, e + 1u);
        scope = k > scope ? k : scope;
    }
    return (uint8_t)scope;
}

uint32_t zj_pmap4_find(const zj_pmap4_d *m, size_t n, uint32_t addr, uint8_t *scope)
{
    return zj_pmap4_find_in(m, n, 0, n, addr, scope);
}

uint32_t zj_pmap4_find_in(const zj_pmap4_d *m, size_t n, size_t lo, size_t hi, uint32_t addr,
                          uint8_t *scope)
{
    /* last piece whose start <= addr (piece lo's start is <= addr) */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (m[mid].start <= addr) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    uint32_t e = lo + 1 < n ? m[lo + 1].start - 1u : UINT32_MAX;
    *scope = piece_scope4(addr, m[lo].start, e, m[lo].len);
    return m[lo].value;
}

static u128 p6_start(const zj_pmap6_d *p)
{
    return ((u128)p->hi << 64) | p->lo;
}

uint32_t zj_pmap6_find(const zj_pmap6_d *m, size_t n, const uint8_t *addr, uint8_t *scope)
{
    u128 x = 0;
    for (size_t i = 0; i < 16; i++) {
        x = (x << 8) | addr[i];
    }
    size_t lo = 0, hi = n;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (p6_start(&m[mid]) <= x) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    u128 e = lo + 1 < n ? p6_start(&m[lo + 1]) - 1 : ~(u128)0;
    *scope = piece_scope(x, p6_start(&m[lo]), e, m[lo].len, 128);
    return m[lo].value;
}

/* ---- validation -------------------------------------------------------------------------- */

/* Piece [s, e] lies inside the prefix of length len that holds s. */
static bool piece_in_prefix(u128 s, u128 e, unsigned len, unsigned w)
{
    return common_prefix(s, e, w) >= len;
}

bool zj_pmap4_valid(const zj_pmap4_d *m, size_t n)
{
    if (n == 0 || m[0].start != 0) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (m[i].len > 32) {
            return false;
        }
        if (i + 1 < n && m[i + 1].start <= m[i].start) {
            return false;
        }
        u128 e = i + 1 < n ? (u128)m[i + 1].start - 1 : (u128)UINT32_MAX;
        if (!piece_in_prefix(m[i].start, e, m[i].len, 32)) {
            return false;
        }
    }
    return true;
}

bool zj_pmap6_valid(const zj_pmap6_d *m, size_t n)
{
    if (n == 0 || m[0].hi != 0 || m[0].lo != 0) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (m[i].len > 128) {
            return false;
        }
        if (i + 1 < n && p6_start(&m[i + 1]) <= p6_start(&m[i])) {
            return false;
        }
        u128 e = i + 1 < n ? p6_start(&m[i + 1]) - 1 : ~(u128)0;
        if (!piece_in_prefix(p6_start(&m[i]), e, m[i].len, 128)) {
            return false;
        }
    }
    return true;
}
