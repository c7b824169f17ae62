/* Geolocation database: a MaxMind-format file (GeoLite2-City/Country, DB-IP lite) read once with
 * libmaxminddb and turned into two prefix maps (src/policy/pmap.h) whose values index a table of
 * distinct locations. A lookup is then one binary search; the MMDB file is closed after loading.
 *
 * Loading walks the whole binary search tree with MMDB_read_node, depth first, left (0) before
 * right (1), so the records come out in address order and disjoint: every record of the tree is
 * one piece of the map (a data record: its location; an empty record: no location), and the
 * piece's len is the record's depth, which is exactly the ECS scope of an answer drawn from it.
 * Each distinct data record is decoded once (a cache keyed by data-section offset) with
 * MMDB_get_value for continent/code, country/iso_code and subdivisions/0/iso_code; GeoLite2 and
 * DB-IP lite share that layout. Records without a continent or country give no location.
 *
 * IPv6 databases keep IPv4 under ::/96 and alias other prefixes to that subtree (::ffff:0:0/96,
 * 2001::/32 Teredo, 2002::/16 6to4). The IPv4 subtree is walked once as a 32-bit tree; in the
 * IPv6 walk every record that points at the IPv4 start node becomes a piece without location
 * instead of a second copy of the IPv4 data. Clients with IPv4-mapped addresses are looked up as
 * IPv4 by the caller.
 *
 * A damaged file cannot make the walk run away: depth is bounded by the address width and each
 * search node may be entered once (the node count bounds the work), otherwise loading fails.
 *
 * Load and close on the control thread; lookups from any thread, hot-path safe. */
#include "policy/geo.h"

#include <maxminddb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "zonejet/err.h"
#include "zonejet/wire.h"
#include "util/mem.h"
#include "zonejet/image.h"
#include "policy/pmap.h"

/* First-level index of the IPv4 map on the high GEO_IDX_BITS bits: idx4[h] is the piece that
 * holds address h << 16, so every address with those high bits lies in pieces
 * [idx4[h], idx4[h + 1]] and a lookup binary-searches that window only (a handful of pieces
 * instead of log2 of a few hundred thousand dependent loads). 256 KiB per database. */
#define GEO_IDX_BITS 16u
#define GEO_IDX_SIZE ((1u << GEO_IDX_BITS) + 1u)

struct zj_geo {
    zj_pmap4_d *m4;
    size_t n4;
    uint32_t *idx4; /* GEO_IDX_SIZE entries (see above) */
    zj_pmap6_d *m6;
    size_t n6;
    zj_geo_loc_t *locs;
    size_t n_locs;
    size_t n_networks; /* data records (networks with data) in the tree */
};

typedef unsigned __int128 u128;

/* ---- hash tables used while loading ------------------------------------------------------- */

/* Open addressing, keys never 0 (callers add 1), load kept at or under one half. */
typedef struct kv_table {
    uint64_t *keys;
    uint32_t *vals;
    size_t cap, count;
} kv_table_t;

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return x;
}

static size_t kv_slot(const kv_table_t *t, uint64_t key)
{
    size_t i = (size_t)mix64(key) & (t->cap - 1);
    while (t->keys[i] != 0 && t->keys[i] != key) {
        i = (i + 1) & (t->cap - 1);
    }
    return i;
}

static int kv_init(kv_table_t *t, size_t cap)
{
    t->cap = cap;
    t->count = 0;
    t->keys = calloc(cap, sizeof(*t->keys));
    t->vals = calloc(cap, sizeof(*t->vals));
    return t->keys != NULL && t->vals != NULL ? ZJ_OK : ZJ_ENOMEM;
}

static void kv_fini(kv_table_t *t)
{
    free(t->keys);
    free(t->vals);
}

static bool kv_get(const kv_table_t *t, uint64_t key, uint32_t *val)
{
    size_t i = kv_slot(t, key);
    if (t->keys[i] == 0) {
        return false;
    }
    *val = t->vals[i];
    return true;
}

static int kv_put(kv_table_t *t, uint64_t key, uint32_t val)
{
    if (2 * (t->count + 1) > t->cap) {
        kv_table_t n;
        if (kv_init(&n, t->cap * 2) != ZJ_OK) {
            kv_fini(&n);
            return ZJ_ENOMEM;
        }
        for (size_t i = 0; i < t->cap; i++) {
            if (t->keys[i] != 0) {
                size_t j = kv_slot(&n, t->keys[i]);
                n.keys[j] = t->keys[i];
                n.vals[j] = t->vals[i];
                n.count++;
            }
        }
        kv_fini(t);
        *t = n;
    }
    size_t i = kv_slot(t, key);
    t->count += t->keys[i] == 0;
    t->keys[i] = key;
    t->vals[i] = val;
    return ZJ_OK;
}

/* ---- loader state ------------------------------------------------------------------------- */

typedef struct loader {
    MMDB_s mmdb;
    zj_geo_t *g;
    kv_table_t records; /* data offset + 1 -> location index or ZJ_IMG_NONE */
    kv_table_t locs;    /* packed location + 1 -> location index */
    size_t locs_cap;
    size_t cap4, cap6;
    uint64_t visits; /* search nodes entered: at most twice the node count (an alias that
                      * points inside the IPv4 subtree walks part of it again) */
    uint32_t v4_start;
    bool v4_start_is_node;
    char *err;
    size_t errcap;
} loader_t;

static int fail(loader_t *l, int rc, const char *fmt, ...) ZJ_PRINTF(3, 4);

static int fail(loader_t *l, int rc, const char *fmt, ...)
{
    if (l->errcap > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(l->err, l->errcap, fmt, ap);
        va_end(ap);
    }
    return rc;
}

/* Two ASCII letters, upper-cased, as ZJ_GEO_CODE2; 0 if the string is not two letters. */
static uint16_t code2(const MMDB_entry_data_s *d)
{
    if (!d->has_data || d->type != MMDB_DATA_TYPE_UTF8_STRING || d->data_size != 2) {
        return 0;
    }
    uint8_t a = (uint8_t)d->utf8_string[0], b = (uint8_t)d->utf8_string[1];
    a = (uint8_t)(a >= 'a' && a <= 'z' ? a - 32 : a);
    b = (uint8_t)(b >= 'a' && b <= 'z' ? b - 32 : b);
    if (a < 'A' || a > 'Z' || b < 'A' || b > 'Z') {
        return 0;
    }
    return ZJ_GEO_CODE2(a, b);
}

/* An ISO 3166-2 subdivision code of 1-3 letters or digits, packed as image.h describes. */
static uint32_t code_sub(const MMDB_entry_data_s *d)
{
    if (!d->has_data || d->type != MMDB_DATA_TYPE_UTF8_STRING || d->data_size < 1 ||
        d->data_size > 3) {
        return 0;
    }
    uint32_t v = 0;
    for (uint32_t i = 0; i < d->data_size; i++) {
        uint8_t c = (uint8_t)d->utf8_string[i];
        c = (uint8_t)(c >= 'a' && c <= 'z' ? c - 32 : c);
        if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))) {
            return 0;
        }
        v |= (uint32_t)c << (24 - 8 * i);
    }
    return v;
}

static int intern_loc(loader_t *l, const zj_geo_loc_t *loc, uint32_t *idx)
{
    uint64_t key =
        ((uint64_t)loc->continent << 48 | (uint64_t)loc->country << 32 | loc->subdivision) + 1;
    if (kv_get(&l->locs, key, idx)) {
        return ZJ_OK;
    }
    zj_geo_t *g = l->g;
    zj_geo_loc_t *locs = zj_grow(g->locs, &l->locs_cap, g->n_locs + 1, sizeof(*locs), 256);
    if (locs == NULL) {
        return ZJ_ENOMEM;
    }
    g->locs = locs;
    *idx = (uint32_t)g->n_locs;
    g->locs[g->n_locs++] = *loc;
    return kv_put(&l->locs, key, *idx);
}

/* Location index of the data record at offset, decoding it the first time it is seen. */
static int record_loc(loader_t *l, const MMDB_entry_s *entry, uint32_t *idx)
{
    uint64_t key = (uint64_t)entry->offset + 1;
    if (kv_get(&l->records, key, idx)) {
        return ZJ_OK;
    }
    MMDB_entry_s e = *entry;
    MMDB_entry_data_s d;
    zj_geo_loc_t loc = {0, 0, 0};
    if (MMDB_get_value(&e, &d, "continent", "code", NULL) == MMDB_SUCCESS) {
        loc.continent = code2(&d);
    }
    if (MMDB_get_value(&e, &d, "country", "iso_code", NULL) == MMDB_SUCCESS) {
        loc.country = code2(&d);
    }
    if (loc.country != 0 &&
        MMDB_get_value(&e, &d, "subdivisions", "0", "iso_code", NULL) == MMDB_SUCCESS) {
        loc.subdivision = code_sub(&d);
    }
    int rc = ZJ_OK;
    *idx = ZJ_IMG_NONE;
    if (loc.continent != 0 || loc.country != 0) {
        rc = intern_loc(l, &loc, idx);
    }
    return rc != ZJ_OK ? rc : kv_put(&l->records, key, *idx);
}

/* Append piece [start, +2^(w-len)) with value to the family's map (pieces arrive in order).
 *
 * Runs of empty records (and skipped aliases), is_empty, become one piece of len 0: the scope a
 * lookup computes from the run's bounds (the largest aligned block inside it) is the depth of
 * the empty record when its sibling holds data, and larger, still correct, when the sibling is
 * empty or an alias. A data record without a location stays a piece of its own, with its
 * network's length as the scope, like any network of the database.
 * Paths to deep networks leave an empty sibling at every level: 100k random /24 and /48
 * networks are 2.6M records but 200k pieces (2.9 MiB) after this merge. */
static int add_piece(loader_t *l, unsigned w, u128 start, unsigned len, uint32_t value,
                     bool is_empty)
{
    zj_geo_t *g = l->g;
    if (is_empty) {
        len = 0;
        value = ZJ_IMG_NONE;
        if ((w == 32 && g->n4 > 0 && g->m4[g->n4 - 1].value == ZJ_IMG_NONE &&
             g->m4[g->n4 - 1].len == 0) ||
            (w == 128 && g->n6 > 0 && g->m6[g->n6 - 1].value == ZJ_IMG_NONE &&
             g->m6[g->n6 - 1].len == 0)) {
            return ZJ_OK;
        }
    }
    if (w == 32) {
        zj_pmap4_d *m4 = zj_grow(g->m4, &l->cap4, g->n4 + 1, sizeof(*m4), 1024);
        if (m4 == NULL) {
            return ZJ_ENOMEM;
        }
        g->m4 = m4;
        g->m4[g->n4++] = (zj_pmap4_d){(uint32_t)start, value, len};
        return ZJ_OK;
    }
    zj_pmap6_d *m6 = zj_grow(g->m6, &l->cap6, g->n6 + 1, sizeof(*m6), 1024);
    if (m6 == NULL) {
        return ZJ_ENOMEM;
    }
    g->m6 = m6;
    g->m6[g->n6++] = (zj_pmap6_d){(uint64_t)(start >> 64), (uint64_t)start, value, len};
    return ZJ_OK;
}

/* One record met in the walk, at prefix (start, len) of a w-bit space. */
static int take_record(loader_t *l, unsigned w, u128 start, unsigned len, uint8_t type,
                       const MMDB_entry_s *entry)
{
    uint32_t v = ZJ_IMG_NONE;
    if (type == MMDB_RECORD_TYPE_DATA) {
        int rc = record_loc(l, entry, &v);
        if (rc != ZJ_OK) {
            return rc;
        }
        l->g->n_networks++;
    } else if (type != MMDB_RECORD_TYPE_EMPTY) {
        return fail(l, ZJ_EMALF, "invalid record in the search tree");
    }
    return add_piece(l, w, start, len, v, type == MMDB_RECORD_TYPE_EMPTY);
}

/* Record (rec, type, entry) at prefix (start, len) of a w-bit space: a piece, or a subtree. */
static int walk_node(loader_t *l, uint32_t node, unsigned depth, u128 start, unsigned w,
                     bool skip_v4);

static int walk_record(loader_t *l, uint64_t rec, uint8_t type, const MMDB_entry_s *entry,
                       unsigned len, u128 start, unsigned w, bool skip_v4)
{
    if (type != MMDB_RECORD_TYPE_SEARCH_NODE) {
        return take_record(l, w, start, len, type, entry);
    }
    if (skip_v4 && l->v4_start_is_node && rec == l->v4_start) {
        return add_piece(l, w, start, len, ZJ_IMG_NONE, true); /* the IPv4 subtree or an alias */
    }
    return walk_node(l, (uint32_t)rec, len, start, w, skip_v4);
}

/* Depth-first, left before right, so pieces come out sorted. Recursion depth is bounded by the
 * address width (checked), the total work by the node count. */
static int walk_node(loader_t *l, uint32_t node, unsigned depth, u128 start, unsigned w,
                     bool skip_v4)
{
    MMDB_search_node_s n;
    if (depth >= w) {
        return fail(l, ZJ_EMALF, "search tree deeper than %u bits", w);
    }
    if (++l->visits > 2 * (uint64_t)l->mmdb.metadata.node_count) {
        return fail(l, ZJ_EMALF, "search tree enters a node twice");
    }
    int st = MMDB_read_node(&l->mmdb, node, &n);
    if (st != MMDB_SUCCESS) {
        return fail(l, ZJ_EMALF, "node %u: %s", node, MMDB_strerror(st));
    }
    unsigned d = depth + 1;
    int rc = walk_record(l, n.left_record, n.left_record_type, &n.left_record_entry, d, start, w,
                         skip_v4);
    if (rc != ZJ_OK) {
        return rc;
    }
    u128 right = start | ((u128)1 << (w - d));
    return walk_record(l, n.right_record, n.right_record_type, &n.right_record_entry, d, right, w,
                       skip_v4);
}

/* The IPv4 subtree of an IPv6 tree: 96 left turns from the root. If a record on the way is not
 * a search node, all of ::/96 (so all of IPv4) is that one record. */
static int find_v4_start(loader_t *l, uint8_t *type, MMDB_entry_s *entry)
{
    uint32_t node = 0;
    for (int i = 0; i < 96; i++) {
        MMDB_search_node_s n;
        int st = MMDB_read_node(&l->mmdb, node, &n);
        if (st != MMDB_SUCCESS) {
            return fail(l, ZJ_EMALF, "node %u: %s", node, MMDB_strerror(st));
        }
        if (n.left_record_type != MMDB_RECORD_TYPE_SEARCH_NODE) {
            *type = n.left_record_type;
            *entry = n.left_record_entry;
            l->v4_start_is_node = false;
            return ZJ_OK;
        }
        node = (uint32_t)n.left_record;
    }
    l->v4_start = node;
    l->v4_start_is_node = true;
    return ZJ_OK;
}

/* Fill g->idx4 from the (valid, covering) IPv4 map in one pass. */
static int build_idx4(zj_geo_t *g)
{
    g->idx4 = malloc(GEO_IDX_SIZE * sizeof(*g->idx4));
    if (g->idx4 == NULL) {
        return ZJ_ENOMEM;
    }
    size_t p = 0;
    for (uint64_t h = 0; h < (1u << GEO_IDX_BITS); h++) {
        uint32_t at = (uint32_t)(h << (32u - GEO_IDX_BITS));
        while (p + 1 < g->n4 && g->m4[p + 1].start <= at) {
            p++;
        }
        g->idx4[h] = (uint32_t)p;
    }
    g->idx4[1u << GEO_IDX_BITS] = (uint32_t)(g->n4 - 1);
    return ZJ_OK;
}

static int load(loader_t *l)
{
    uint16_t ipv = l->mmdb.metadata.ip_version;
    int rc = kv_init(&l->records, 1024);
    if (rc == ZJ_OK) {
        rc = kv_init(&l->locs, 256);
    }
    if (rc != ZJ_OK) {
        return fail(l, rc, "out of memory");
    }
    if (ipv == 4) {
        rc = walk_node(l, 0, 0, 0, 32, false);
        if (rc == ZJ_OK) {
            rc = add_piece(l, 128, 0, 0, ZJ_IMG_NONE, true);
        }
    } else if (ipv == 6) {
        uint8_t type = 0;
        MMDB_entry_s entry = {0};
        rc = find_v4_start(l, &type, &entry);
        if (rc == ZJ_OK) {
            rc = l->v4_start_is_node ? walk_node(l, l->v4_start, 0, 0, 32, false)
                                     : take_record(l, 32, 0, 0, type, &entry);
        }
        if (rc == ZJ_OK) {
            rc = walk_node(l, 0, 0, 0, 128, true);
        }
    } else {
        return fail(l, ZJ_EMALF, "ip_version %u in the metadata", ipv);
    }
    if (rc == ZJ_ENOMEM) {
        return fail(l, rc, "out of memory");
    }
    if (rc == ZJ_OK &&
        (!zj_pmap4_valid(l->g->m4, l->g->n4) || !zj_pmap6_valid(l->g->m6, l->g->n6))) {
        return fail(l, ZJ_EMALF, "search tree does not cover the address space");
    }
    if (rc == ZJ_OK && build_idx4(l->g) != ZJ_OK) {
        return fail(l, ZJ_ENOMEM, "out of memory");
    }
    return rc;
}

int zj_geo_open(const char *path, zj_geo_t **out, char *err, size_t errcap)
{
    loader_t l;
    memset(&l, 0, sizeof(l));
    l.err = err;
    l.errcap = errcap;
    if (errcap > 0) {
        err[0] = 0;
    }
    *out = NULL;
    l.g = calloc(1, sizeof(*l.g));
    if (l.g == NULL) {
        return fail(&l, ZJ_ENOMEM, "out of memory");
    }
    int st = MMDB_open(path, MMDB_MODE_MMAP, &l.mmdb);
    if (st != MMDB_SUCCESS) {
        zj_geo_close(l.g);
        return fail(&l, st == MMDB_FILE_OPEN_ERROR ? ZJ_ENOENT : ZJ_EMALF, "%s: %s", path,
                    MMDB_strerror(st));
    }
    int rc = load(&l);
    MMDB_close(&l.mmdb);
    kv_fini(&l.records);
    kv_fini(&l.locs);
    if (rc != ZJ_OK) {
        if (errcap > 0) {
            char reason[160];
            snprintf(reason, sizeof(reason), "%s", err);
            snprintf(err, errcap, "%s: %s", path, reason);
        }
        zj_geo_close(l.g);
        return rc;
    }
    *out = l.g;
    return ZJ_OK;
}

void zj_geo_close(zj_geo_t *g)
{
    if (g == NULL) {
        return;
    }
    free(g->m4);
    free(g->idx4);
    free(g->m6);
    free(g->locs);
    free(g);
}

bool zj_geo_lookup(const zj_geo_t *g, int family, const uint8_t *addr, zj_geo_loc_t *loc,
                   uint8_t *scope)
{
    uint32_t v;
    if (family == AF_INET) {
        uint32_t x = zj_be32(addr);
        uint32_t h = x >> (32u - GEO_IDX_BITS);
        v = zj_pmap4_find_in(g->m4, g->n4, g->idx4[h], (size_t)g->idx4[h + 1] + 1, x, scope);
    } else if (family == AF_INET6) {
        v = zj_pmap6_find(g->m6, g->n6, addr, scope);
    } else {
        *scope = 0;
        return false;
    }
    if (v == ZJ_IMG_NONE) {
        return false;
    }
    *loc = g->locs[v];
    return true;
}

size_t zj_geo_networks(const zj_geo_t *g)
{
    return g->n_networks;
}

size_t zj_geo_locations(const zj_geo_t *g)
{
    return g->n_locs;
}
