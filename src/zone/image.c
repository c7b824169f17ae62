/* Zone images: map, validate once, then look up without checks.
 *
 * zj_image_open* is the edge where an image file is trusted: it checks the header, the checksum
 * and every offset, length and index in every section, so that the lookup functions below (used
 * on the query path) can dereference without bounds checks. A file that fails any check is
 * rejected whole with a one-line reason; nothing is served from it.
 *
 * The index is open addressing with linear probing over (zone, lower-case name) keys hashed with
 * XXH3-64 and the image's seed. The slot holds the high 32 bits of the hash as a tag, so a probe
 * compares names only when the tags agree. The compiler keeps the load factor at most 3/4, so an
 * expected lookup touches one or two slots.
 *
 * Policy sections (optional): every index, range and string of POLICIES, PSETS, CHECKS, TABLES
 * and the prefix maps is checked here too, so zj_policy_choose and the health checker index
 * them without checks. */
#include "zonejet/zone.h"

#include <fcntl.h>
#include <stdarg.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "dns/anstab.h"
#include "policy/pmap.h"
#include "util/text.h"
#include "zonejet/dname.h"
#include "zonejet/err.h"

static int fail(char *err, size_t errcap, int rc, const char *fmt, ...) ZJ_PRINTF(4, 5);

static int fail(char *err, size_t errcap, int rc, const char *fmt, ...)
{
    if (err != NULL && errcap > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errcap, fmt, ap);
        va_end(ap);
    }
    return rc;
}

uint64_t zj_image_hash(uint64_t seed, uint32_t zone, const uint8_t *lname, size_t len)
{
    /* The zone index is folded into the seed so that one table holds every zone's names. */
    return XXH3_64bits_withSeed(lname, len, seed ^ ((uint64_t)zone * 0x9E3779B97F4A7C15ull));
}

void zj_qname_init(zj_qname_t *q, const uint8_t *wire_name, size_t len)
{
    q->len = (uint8_t)len;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t x;
        memcpy(&x, wire_name + i, 8);
        x = zj_lower8(x);
        memcpy(q->name + i, &x, 8);
    }
    for (; i < len; i++) {
        uint8_t c = wire_name[i];
        q->name[i] = (uint8_t)(c + ((uint8_t)(c - 'A') < 26u ? 32u : 0u));
    }
    uint8_t o = 0;
    uint8_t n = 0;
    while (q->name[o] != 0) {
        q->off[n++] = o;
        o = (uint8_t)(o + q->name[o] + 1);
    }
    q->off[n] = o; /* the root label */
    q->labels = n;
}

/* Section lookup with size checks. */
static const zj_img_section_d *find_section(const zj_img_section_d *tab, uint32_t n, uint32_t kind)
{
    for (uint32_t i = 0; i < n; i++) {
        if (tab[i].kind == kind) {
            return &tab[i];
        }
    }
    return NULL;
}

bool zj_rdata_layout_ok(uint16_t type, const uint8_t *rd, size_t rdlen)
{
    switch (type) {
    case ZJ_T_NS:
    case ZJ_T_CNAME:
    case ZJ_T_DNAME:
    case ZJ_T_PTR: {
        int n = zj_dname_len(rd, rdlen);
        return n > 0 && (size_t)n == rdlen;
    }
    case ZJ_T_MX: {
        int n = rdlen > 2 ? zj_dname_len(rd + 2, rdlen - 2) : -1;
        return n > 0 && (size_t)n + 2 == rdlen;
    }
    case ZJ_T_SRV: {
        int n = rdlen > 6 ? zj_dname_len(rd + 6, rdlen - 6) : -1;
        return n > 0 && (size_t)n + 6 == rdlen;
    }
    case ZJ_T_SOA: {
        int a = zj_dname_len(rd, rdlen);
        int b = a < 0 ? a : zj_dname_len(rd + a, rdlen - (size_t)a);
        return a > 0 && b > 0 && (size_t)a + (size_t)b + 20 == rdlen;
    }
    default:
        return true;
    }
}

static int check_rrset_wire(const zj_image_t *img, const zj_img_rrset_d *rs)
{
    const uint8_t *p = img->wire + rs->wire_off;
    size_t end = rs->wire_len;
    size_t i = 0;
    for (uint16_t k = 0; k < rs->n_rr; k++) {
        if (i + 12 > end) {
            return -1;
        }
        if (p[i] != 0xC0 || p[i + 1] != 0x0C || zj_be16(p + i + 2) != rs->type) {
            return -1;
        }
        size_t rdlen = zj_be16(p + i + 10);
        if (i + 12 + rdlen > end) {
            return -1;
        }
        /* the answer path reads the names inside these RDATA: they must be whole */
        if (!zj_rdata_layout_ok(rs->type, p + i + 12, rdlen)) {
            return -1;
        }
        i += 12 + rdlen;
    }
    return i == end ? 0 : -1;
}

/* A string offset into STRS; STRS ends in NUL (checked first), so the string does too. */
static bool str_ok(const zj_image_t *img, uint32_t off)
{
    return off < img->strs_len;
}

static bool opt_str_ok(const zj_image_t *img, uint32_t off)
{
    return off == ZJ_IMG_NONE || off < img->strs_len;
}

static bool u32_range_ok(const zj_image_t *img, uint32_t first, uint64_t n)
{
    return (uint64_t)first + n <= img->n_u32;
}

/* Map the optional policy sections; absent ones stay NULL/0. */
static int map_policy_sections(zj_image_t *img, const zj_img_section_d *tab, uint32_t n_sec,
                               char *err, size_t errcap)
{
    static const struct {
        uint32_t kind;
        size_t elem;
    } opt[] = {
        {ZJ_SEC_POLICIES, sizeof(zj_img_policy_d)},
        {ZJ_SEC_PSETS, sizeof(zj_img_pset_d)},
        {ZJ_SEC_CHECKS, sizeof(zj_img_check_d)},
        {ZJ_SEC_U32, sizeof(uint32_t)},
        {ZJ_SEC_STRS, 1},
        {ZJ_SEC_TABLES, sizeof(zj_img_table_d)},
        {ZJ_SEC_PMAP4, sizeof(zj_pmap4_d)},
        {ZJ_SEC_PMAP6, sizeof(zj_pmap6_d)},
    };
    const void *p[ZJ_ARRAY_SIZE(opt)] = {NULL};
    uint32_t n[ZJ_ARRAY_SIZE(opt)] = {0};
    for (size_t i = 0; i < ZJ_ARRAY_SIZE(opt); i++) {
        const zj_img_section_d *s = find_section(tab, n_sec, opt[i].kind);
        if (s == NULL) {
            continue;
        }
        if (s->len != (uint64_t)s->count * opt[i].elem) {
            return fail(err, errcap, ZJ_EIMAGE, "section %u has a bad length", opt[i].kind);
        }
        p[i] = img->base + s->off;
        n[i] = s->count;
    }
    img->policies = p[0];
    img->n_policies = n[0];
    img->psets = p[1];
    img->n_psets = n[1];
    img->checks = p[2];
    img->n_checks = n[2];
    img->u32 = p[3];
    img->n_u32 = n[3];
    img->strs = p[4];
    img->strs_len = n[4];
    img->tables = p[5];
    img->n_tables = n[5];
    img->pmap4 = p[6];
    img->n_pmap4 = n[6];
    img->pmap6 = p[7];
    img->n_pmap6 = n[7];
    if (img->strs_len > 0 && img->strs[img->strs_len - 1] != '\0') {
        return fail(err, errcap, ZJ_EIMAGE, "policy strings not terminated");
    }
    return ZJ_OK;
}

static int check_check(const zj_image_t *img, uint32_t i, char *err, size_t errcap)
{
    const zj_img_check_d *c = &img->checks[i];
    bool ok = c->kind >= ZJ_CHECK_TCP && c->kind <= ZJ_CHECK_CALCULATED &&
              (c->flags & ~(uint16_t)(ZJ_CHECK_INVERTED | ZJ_CHECK_DISABLED)) == 0 &&
              str_ok(img, c->name_off) && c->zone < img->n_zones &&
              u32_range_ok(img, c->children_off, c->n_children);
    if (ok && c->kind == ZJ_CHECK_CALCULATED) {
        ok = c->min_healthy <= c->n_children;
        /* children come first: no cycles, and the checker can evaluate in index order */
        for (uint32_t k = 0; ok && k < c->n_children; k++) {
            ok = img->u32[c->children_off + k] < i;
        }
    } else if (ok) {
        ok = (c->family == AF_INET || c->family == AF_INET6) && c->port != 0 &&
             c->interval_ms > 0 && c->timeout_ms > 0 && c->threshold >= 1 &&
             c->threshold <= ZJ_CHECK_MAX_THRESHOLD && c->n_children == 0 &&
             opt_str_ok(img, c->host_off) && opt_str_ok(img, c->match_off) &&
             (c->kind == ZJ_CHECK_TCP ? opt_str_ok(img, c->path_off) : str_ok(img, c->path_off));
    }
    return ok ? ZJ_OK : fail(err, errcap, ZJ_EIMAGE, "check %u is malformed", i);
}

/* Prefix-map values name an entry below n_values (or nothing). */
static bool maps_ok(const zj_image_t *img, const zj_img_table_d *t)
{
    if ((uint64_t)t->first4 + t->n4 > img->n_pmap4 || (uint64_t)t->first6 + t->n6 > img->n_pmap6 ||
        !zj_pmap4_valid(img->pmap4 + t->first4, t->n4) ||
        !zj_pmap6_valid(img->pmap6 + t->first6, t->n6)) {
        return false;
    }
    for (uint32_t k = 0; k < t->n4; k++) {
        uint32_t v = img->pmap4[t->first4 + k].value;
        if (v != ZJ_IMG_NONE && v >= t->n_values) {
            return false;
        }
    }
    for (uint32_t k = 0; k < t->n6; k++) {
        uint32_t v = img->pmap6[t->first6 + k].value;
        if (v != ZJ_IMG_NONE && v >= t->n_values) {
            return false;
        }
    }
    return true;
}

static int check_table(const zj_image_t *img, uint32_t i, char *err, size_t errcap)
{
    const zj_img_table_d *t = &img->tables[i];
    bool ok = (t->kind == ZJ_TABLE_CIDR || t->kind == ZJ_TABLE_LATENCY) &&
              str_ok(img, t->name_off) && t->zone < img->n_zones && t->n4 >= 1 && t->n6 >= 1;
    ok = ok && maps_ok(img, t);
    if (ok && t->kind == ZJ_TABLE_CIDR) {
        ok = u32_range_ok(img, t->values_off, t->n_values);
        for (uint32_t k = 0; ok && k < t->n_values; k++) {
            ok = str_ok(img, img->u32[t->values_off + k]);
        }
    } else if (ok) {
        /* entries: {level << 16 | code or ZJ_LAT_PREFIX_ENTRY, subdivision, first region,
         * regions} */
        ok = u32_range_ok(img, t->values_off, (uint64_t)t->n_values * ZJ_LAT_ENTRY_WORDS) &&
             u32_range_ok(img, t->regions_off, t->n_regions);
        for (uint32_t k = 0; ok && k < t->n_values; k++) {
            const uint32_t *e = img->u32 + t->values_off + ZJ_LAT_ENTRY_WORDS * (size_t)k;
            ok = (e[0] == ZJ_LAT_PREFIX_ENTRY || (e[0] >> 16) <= ZJ_GEO_SUBDIVISION) &&
                 u32_range_ok(img, e[2], e[3]);
            for (uint32_t r = 0; ok && r < e[3]; r++) {
                ok = img->u32[e[2] + r] < t->n_regions;
            }
        }
        for (uint32_t k = 0; ok && k < t->n_regions; k++) {
            ok = str_ok(img, img->u32[t->regions_off + k]);
        }
    }
    return ok ? ZJ_OK : fail(err, errcap, ZJ_EIMAGE, "table %u is malformed", i);
}

/* One pset's value for its policy's kind. */
static bool pset_ok(const zj_image_t *img, const zj_img_policy_d *p, const zj_img_pset_d *s)
{
    if ((s->check != ZJ_IMG_NONE && s->check >= img->n_checks) || !str_ok(img, s->id_off)) {
        return false;
    }
    switch (p->kind) {
    case ZJ_POL_WEIGHTED:
        return s->value <= 255;
    case ZJ_POL_FAILOVER:
        return s->value == ZJ_FAILOVER_PRIMARY || s->value == ZJ_FAILOVER_SECONDARY;
    case ZJ_POL_GEO:
        return s->geo_level <= ZJ_GEO_SUBDIVISION;
    case ZJ_POL_CIDR:
        return s->value == ZJ_IMG_NONE || s->value < img->tables[p->table].n_values;
    case ZJ_POL_LATENCY:
        return s->value < img->tables[p->table].n_regions;
    default:
        return true;
    }
}

static int check_policy(const zj_image_t *img, uint32_t i, char *err, size_t errcap)
{
    const zj_img_policy_d *p = &img->policies[i];
    bool ok = p->kind >= ZJ_POL_WEIGHTED && p->kind <= ZJ_POL_LATENCY && p->n_sets >= 1 &&
              p->n_sets <= ZJ_POLICY_MAX_SETS &&
              (uint64_t)p->first_pset + p->n_sets <= img->n_psets &&
              (uint64_t)p->first_rrset + p->n_sets <= img->n_rrsets && p->zone < img->n_zones &&
              p->node >= img->zones[p->zone].first_node &&
              p->node - img->zones[p->zone].first_node < img->zones[p->zone].n_nodes;
    if (ok && (p->kind == ZJ_POL_CIDR || p->kind == ZJ_POL_LATENCY)) {
        uint32_t want = p->kind == ZJ_POL_CIDR ? ZJ_TABLE_CIDR : ZJ_TABLE_LATENCY;
        ok = p->table < img->n_tables && img->tables[p->table].kind == want;
    } else if (ok) {
        ok = p->table == ZJ_IMG_NONE;
    }
    unsigned primaries = 0;
    unsigned secondaries = 0;
    uint32_t ttl = 0;
    for (uint32_t k = 0; ok && k < p->n_sets; k++) {
        const zj_img_pset_d *s = &img->psets[p->first_pset + k];
        const zj_img_rrset_d *rs = &img->rrsets[p->first_rrset + k];
        ok = pset_ok(img, p, s) && rs->n_rr >= 1 && (p->kind != ZJ_POL_MULTIVALUE || rs->n_rr == 1);
        /* RFC 1034 §3.6.2, RFC 2181 §10.1: one CNAME per owner, so a CNAME set holds one record
         * and multivalue (several sets in one answer) cannot answer a CNAME */
        ok = ok && (rs->type != ZJ_T_CNAME || (rs->n_rr == 1 && p->kind != ZJ_POL_MULTIVALUE));
        if (ok && p->kind == ZJ_POL_MULTIVALUE) {
            /* the chosen sets answer as one RRset: one TTL (RFC 2181 §5.2). The set's wire was
             * checked above (n_rr >= 1): its first RR's TTL is at offset 6. */
            uint32_t t = zj_be32(img->wire + rs->wire_off + 6);
            ok = k == 0 || t == ttl;
            ttl = t;
        }
        primaries += p->kind == ZJ_POL_FAILOVER && s->value == ZJ_FAILOVER_PRIMARY;
        secondaries += p->kind == ZJ_POL_FAILOVER && s->value == ZJ_FAILOVER_SECONDARY;
    }
    if (ok && p->kind == ZJ_POL_FAILOVER) {
        ok = primaries == 1 && secondaries <= 1;
    }
    return ok ? ZJ_OK : fail(err, errcap, ZJ_EIMAGE, "policy %u is malformed", i);
}

/* A policy RRset at node: a known policy of this node whose sets all have its type. */
static bool policy_rrset_ok(const zj_image_t *img, uint32_t node, const zj_img_rrset_d *rs)
{
    if (rs->wire_off >= img->n_policies || rs->wire_len != 0 || rs->n_addl != 0 ||
        rs->addl_off != 0 || !zj_policy_type_ok(rs->type)) {
        return false;
    }
    const zj_img_policy_d *p = &img->policies[rs->wire_off];
    if (p->node != node) {
        return false;
    }
    for (uint32_t k = 0; k < p->n_sets; k++) {
        if (img->rrsets[p->first_rrset + k].type != rs->type) {
            return false;
        }
    }
    return true;
}

static int validate_policies(zj_image_t *img, char *err, size_t errcap)
{
    for (uint32_t i = 0; i < img->n_checks; i++) {
        int rc = check_check(img, i, err, errcap);
        if (rc != ZJ_OK) {
            return rc;
        }
    }
    for (uint32_t i = 0; i < img->n_tables; i++) {
        int rc = check_table(img, i, err, errcap);
        if (rc != ZJ_OK) {
            return rc;
        }
    }
    for (uint32_t i = 0; i < img->n_policies; i++) {
        int rc = check_policy(img, i, err, errcap);
        if (rc != ZJ_OK) {
            return rc;
        }
    }
    /* policy RRsets: only inside a node's range (a set's RRset is a plain one) */
    for (uint32_t i = 0; i < img->n_nodes; i++) {
        const zj_img_node_d *n = &img->nodes[i];
        for (uint32_t k = n->rrset_first; k < n->rrset_first + n->n_rrsets; k++) {
            const zj_img_rrset_d *rs = &img->rrsets[k];
            if (rs->n_rr == 0 && !policy_rrset_ok(img, i, rs)) {
                return fail(err, errcap, ZJ_EIMAGE, "node %u: bad policy rrset %u", i, k);
            }
        }
    }
    return ZJ_OK;
}

static int validate(zj_image_t *img, char *err, size_t errcap)
{
    const uint8_t *b = img->base;
    size_t len = img->len;
    if (len < sizeof(zj_img_header_d)) {
        return fail(err, errcap, ZJ_EIMAGE, "file too short for an image header (%zu bytes)", len);
    }
    zj_img_header_d h;
    memcpy(&h, b, sizeof(h));
    if (memcmp(h.magic, ZJ_IMG_MAGIC, sizeof(h.magic)) != 0) {
        return fail(err, errcap, ZJ_EIMAGE, "not a zone image (bad magic)");
    }
    if (h.endian != ZJ_IMG_ENDIAN) {
        return fail(err, errcap, ZJ_EIMAGE, "byte order tag mismatch");
    }
    if (h.version != ZJ_IMG_VERSION) {
        return fail(err, errcap, ZJ_EVERSION, "image format version %u, this build reads %u",
                    h.version, ZJ_IMG_VERSION);
    }
    if (h.file_len != len) {
        return fail(err, errcap, ZJ_EIMAGE, "image is %zu bytes, header says %llu (truncated?)",
                    len, (unsigned long long)h.file_len);
    }
    if (h.n_sections > ZJ_IMG_MAX_SECTIONS ||
        h.header_len < sizeof(h) + (size_t)h.n_sections * sizeof(zj_img_section_d) ||
        h.header_len > len || h.header_len % ZJ_IMG_ALIGN != 0) {
        return fail(err, errcap, ZJ_EIMAGE, "bad section table");
    }
    uint64_t sum = XXH3_64bits(b + ZJ_IMG_SUM_FROM, len - ZJ_IMG_SUM_FROM);
    if (sum != h.checksum) {
        return fail(err, errcap, ZJ_ECHECKSUM, "checksum mismatch (file corrupted)");
    }
    img->checksum = h.checksum;
    img->seed = h.hash_seed;
    const zj_img_section_d *tab = (const zj_img_section_d *)(const void *)(b + sizeof(h));
    for (uint32_t i = 0; i < h.n_sections; i++) {
        if (tab[i].off % ZJ_IMG_ALIGN != 0 || tab[i].off < h.header_len || tab[i].off > len ||
            tab[i].len > len - tab[i].off) {
            return fail(err, errcap, ZJ_EIMAGE, "section %u lies outside the file", i);
        }
    }
    static const struct {
        uint32_t kind;
        size_t elem;
    } need[] = {
        {ZJ_SEC_ZONES, sizeof(zj_img_zone_d)},
        {ZJ_SEC_NODES, sizeof(zj_img_node_d)},
        {ZJ_SEC_RRSETS, sizeof(zj_img_rrset_d)},
        {ZJ_SEC_NAMES, 1},
        {ZJ_SEC_WIRE, 1},
        {ZJ_SEC_INDEX, sizeof(zj_img_slot_d)},
        {ZJ_SEC_ADDL, sizeof(uint32_t)},
    };
    const zj_img_section_d *sec[ZJ_ARRAY_SIZE(need)];
    for (size_t i = 0; i < ZJ_ARRAY_SIZE(need); i++) {
        sec[i] = find_section(tab, h.n_sections, need[i].kind);
        if (sec[i] == NULL) {
            return fail(err, errcap, ZJ_EIMAGE, "section %u missing", need[i].kind);
        }
        if (sec[i]->len != (uint64_t)sec[i]->count * need[i].elem) {
            return fail(err, errcap, ZJ_EIMAGE, "section %u has a bad length", need[i].kind);
        }
    }
    img->zones = (const zj_img_zone_d *)(const void *)(b + sec[0]->off);
    img->n_zones = sec[0]->count;
    img->nodes = (const zj_img_node_d *)(const void *)(b + sec[1]->off);
    img->n_nodes = sec[1]->count;
    img->rrsets = (const zj_img_rrset_d *)(const void *)(b + sec[2]->off);
    img->n_rrsets = sec[2]->count;
    img->names = b + sec[3]->off;
    img->names_len = sec[3]->len;
    img->wire = b + sec[4]->off;
    img->wire_len = sec[4]->len;
    img->slots = (const zj_img_slot_d *)(const void *)(b + sec[5]->off);
    uint32_t n_slots = sec[5]->count;
    img->addl = (const uint32_t *)(const void *)(b + sec[6]->off);
    img->n_addl = sec[6]->count;
    if (n_slots == 0 || (n_slots & (n_slots - 1)) != 0) {
        return fail(err, errcap, ZJ_EIMAGE, "index size %u is not a power of two", n_slots);
    }
    img->slot_mask = n_slots - 1;
    int prc = map_policy_sections(img, tab, h.n_sections, err, errcap);
    if (prc != ZJ_OK) {
        return prc;
    }

    /* Nodes: names, rrset ranges, cut links. */
    for (uint32_t i = 0; i < img->n_nodes; i++) {
        const zj_img_node_d *n = &img->nodes[i];
        if (n->name_off >= img->names_len) {
            return fail(err, errcap, ZJ_EIMAGE, "node %u: name outside NAMES", i);
        }
        int nl = zj_dname_len(img->names + n->name_off, img->names_len - n->name_off);
        if (nl < 0 || nl != n->name_len || zj_dname_labels(img->names + n->name_off) != n->labels) {
            return fail(err, errcap, ZJ_EIMAGE, "node %u: bad name", i);
        }
        if ((uint64_t)n->rrset_first + n->n_rrsets > img->n_rrsets) {
            return fail(err, errcap, ZJ_EIMAGE, "node %u: rrsets out of range", i);
        }
        if (n->cut != ZJ_IMG_NONE && n->cut >= img->n_nodes) {
            return fail(err, errcap, ZJ_EIMAGE, "node %u: bad cut link", i);
        }
        if ((n->flags & ZJ_NODE_OCCLUDED) && n->cut == ZJ_IMG_NONE) {
            return fail(err, errcap, ZJ_EIMAGE, "node %u: occluded without a cut", i);
        }
    }
    for (uint32_t i = 0; i < img->n_rrsets; i++) {
        const zj_img_rrset_d *rs = &img->rrsets[i];
        if (rs->n_rr == 0) {
            continue; /* a policy RRset: validate_policies */
        }
        if ((uint64_t)rs->wire_off + rs->wire_len > img->wire_len ||
            (uint64_t)rs->addl_off + rs->n_addl > img->n_addl) {
            return fail(err, errcap, ZJ_EIMAGE, "rrset %u out of range", i);
        }
        if (check_rrset_wire(img, rs) != 0) {
            return fail(err, errcap, ZJ_EIMAGE, "rrset %u: malformed wire data", i);
        }
    }
    /* Flags the lookup acts on must name RRsets that exist: a CNAME, DNAME or delegation
     * answer dereferences them. */
    for (uint32_t i = 0; i < img->n_nodes; i++) {
        const zj_img_node_d *n = &img->nodes[i];
        bool has_ns = false;
        bool has_cname = false;
        bool has_dname = false;
        for (uint32_t k = n->rrset_first; k < n->rrset_first + n->n_rrsets; k++) {
            has_ns |= img->rrsets[k].type == ZJ_T_NS;
            has_cname |= img->rrsets[k].type == ZJ_T_CNAME;
            has_dname |= img->rrsets[k].type == ZJ_T_DNAME;
        }
        if (((n->flags & ZJ_NODE_DELEG) && !has_ns) || ((n->flags & ZJ_NODE_CNAME) && !has_cname) ||
            ((n->flags & ZJ_NODE_DNAME) && !has_dname)) {
            return fail(err, errcap, ZJ_EIMAGE, "node %u: flags without their RRsets", i);
        }
    }
    for (uint32_t i = 0; i < img->n_addl; i++) {
        if (img->addl[i] >= img->n_nodes) {
            return fail(err, errcap, ZJ_EIMAGE, "additional entry %u out of range", i);
        }
    }
    for (uint32_t i = 0; i < img->n_zones; i++) {
        const zj_img_zone_d *z = &img->zones[i];
        if ((uint64_t)z->first_node + z->n_nodes > img->n_nodes || z->apex_node < z->first_node ||
            z->apex_node >= z->first_node + z->n_nodes || z->soa_rrset >= img->n_rrsets ||
            img->rrsets[z->soa_rrset].type != ZJ_T_SOA || img->rrsets[z->soa_rrset].n_rr == 0 ||
            z->name_off != img->nodes[z->apex_node].name_off) {
            return fail(err, errcap, ZJ_EIMAGE, "zone %u: bad layout", i);
        }
        /* cut links stay inside the zone and lead to a delegation (which has NS, checked
         * above) */
        for (uint32_t k = z->first_node; k < z->first_node + z->n_nodes; k++) {
            uint32_t c = img->nodes[k].cut;
            if (c != ZJ_IMG_NONE && (c < z->first_node || c >= z->first_node + z->n_nodes ||
                                     !(img->nodes[c].flags & ZJ_NODE_DELEG))) {
                return fail(err, errcap, ZJ_EIMAGE, "node %u: cut is not a delegation", k);
            }
        }
    }
    img->min_apex_labels = ZJ_DNS_MAX_LABELS;
    img->max_apex_labels = 0;
    for (uint32_t i = 0; i < img->n_zones; i++) {
        uint8_t l = img->nodes[img->zones[i].apex_node].labels;
        img->min_apex_labels = l < img->min_apex_labels ? l : img->min_apex_labels;
        img->max_apex_labels = l > img->max_apex_labels ? l : img->max_apex_labels;
    }
    /* Index: every slot names a node, and at least one slot is empty so probes terminate. */
    uint32_t empty = 0;
    for (uint32_t i = 0; i < n_slots; i++) {
        uint32_t v = img->slots[i].node;
        if (v == 0) {
            empty++;
        } else if (v - 1 >= img->n_nodes && v - 1 >= img->n_zones) {
            return fail(err, errcap, ZJ_EIMAGE, "index slot %u out of range", i);
        }
    }
    if (empty == 0) {
        return fail(err, errcap, ZJ_EIMAGE, "index has no empty slot");
    }
    int vrc = validate_policies(img, err, errcap);
    if (vrc != ZJ_OK) {
        return vrc;
    }
    /* every apex is found through the index: the closest-encloser walk ends there */
    for (uint32_t i = 0; i < img->n_zones; i++) {
        const zj_img_node_d *a = &img->nodes[img->zones[i].apex_node];
        if (zj_image_find_node(img, i, img->names + a->name_off, a->name_len) !=
            img->zones[i].apex_node) {
            return fail(err, errcap, ZJ_EIMAGE, "zone %u: apex missing from the index", i);
        }
    }
    return ZJ_OK;
}

int zj_image_open_mem(uint8_t *buf, size_t len, zj_image_t **out, char *err, size_t errcap)
{
    zj_image_t *img = calloc(1, sizeof(*img));
    if (img == NULL) {
        return fail(err, errcap, ZJ_ENOMEM, "out of memory");
    }
    img->base = buf;
    img->len = len;
    if (((uintptr_t)buf % ZJ_IMG_ALIGN) != 0) {
        free(img);
        return fail(err, errcap, ZJ_EINVAL, "image buffer not aligned");
    }
    int rc = validate(img, err, errcap);
    if (rc != ZJ_OK) {
        free(img);
        return rc;
    }
    *out = img;
    return ZJ_OK;
}

int zj_image_open(const char *path, zj_image_t **out, char *err, size_t errcap)
{
    int rc = ZJ_OK;
    void *map = MAP_FAILED;
    size_t len = 0;
    zj_image_t *img = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = fail(err, errcap, -errno, "%s: %s", path, strerror(errno));
        goto out;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = fail(err, errcap, ZJ_EINVAL, "%s: not a regular file", path);
        goto out;
    }
    len = (size_t)st.st_size;
    if (len == 0) {
        rc = fail(err, errcap, ZJ_EIMAGE, "%s: empty file", path);
        goto out;
    }
    /* MAP_POPULATE: the checksum reads every page anyway; fault them in with one call. */
    map = mmap(NULL, len, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
    if (map == MAP_FAILED) {
        rc = fail(err, errcap, -errno, "%s: mmap: %s", path, strerror(errno));
        goto out;
    }
    img = calloc(1, sizeof(*img));
    if (img == NULL) {
        rc = fail(err, errcap, ZJ_ENOMEM, "out of memory");
        goto out;
    }
    img->base = map;
    img->len = len;
    img->is_mapped = true;
    snprintf(img->path, sizeof(img->path), "%s", path);
    char why[200];
    rc = validate(img, why, sizeof(why));
    if (rc != ZJ_OK) {
        fail(err, errcap, rc, "%s: %s", path, why);
        goto out;
    }
    *out = img;
    img = NULL;
    map = MAP_FAILED;
out:
    free(img);
    if (map != MAP_FAILED) {
        munmap(map, len);
    }
    if (fd >= 0) {
        close(fd);
    }
    return rc;
}

void zj_image_close(zj_image_t *img)
{
    if (img == NULL) {
        return;
    }
    zj_anstab_free(img->anstab);
    if (img->is_mapped) {
        munmap((void *)(uintptr_t)img->base, img->len);
    } else {
        free((void *)(uintptr_t)img->base);
    }
    free(img);
}

/* One probe sequence; match() decides equality for a candidate value. Bounded by the table size,
 * and validation guarantees an empty slot, so it always terminates early. */
static uint32_t probe(const zj_image_t *img, uint64_t h, uint32_t zone, const uint8_t *lname,
                      size_t len)
{
    uint32_t tag = (uint32_t)(h >> 32);
    uint32_t i = (uint32_t)h & img->slot_mask;
    for (uint32_t n = 0; n <= img->slot_mask; n++, i = (i + 1) & img->slot_mask) {
        const zj_img_slot_d *s = &img->slots[i];
        if (s->node == 0) {
            return ZJ_IMG_NONE;
        }
        if (s->tag != tag) {
            continue;
        }
        uint32_t v = s->node - 1;
        if (zone == ZJ_IMG_NONE) {
            /* apex key: the value is a zone index */
            if (v < img->n_zones) {
                const zj_img_node_d *a = &img->nodes[img->zones[v].apex_node];
                if (a->name_len == len && memcmp(img->names + a->name_off, lname, len) == 0) {
                    return v;
                }
            }
            continue;
        }
        const zj_img_zone_d *z = &img->zones[zone];
        if (v < z->first_node || v - z->first_node >= z->n_nodes) {
            continue;
        }
        const zj_img_node_d *nd = &img->nodes[v];
        if (nd->name_len == len && memcmp(img->names + nd->name_off, lname, len) == 0) {
            return v;
        }
    }
    return ZJ_IMG_NONE;
}

uint32_t zj_image_find_node(const zj_image_t *img, uint32_t zone, const uint8_t *lname, size_t len)
{
    return probe(img, zj_image_hash(img->seed, zone, lname, len), zone, lname, len);
}

uint32_t zj_image_find_zone(const zj_image_t *img, const zj_qname_t *q, bool below_apex,
                            int *labels)
{
    /* no apex has more labels than max_apex_labels, nor fewer than min_apex_labels */
    int k = below_apex ? 1 : 0;
    if (q->labels - k > img->max_apex_labels) {
        k = q->labels - img->max_apex_labels;
    }
    for (; k <= q->labels - img->min_apex_labels; k++) {
        const uint8_t *s = q->name + q->off[k];
        size_t len = (size_t)(q->len - q->off[k]);
        uint32_t z = probe(img, zj_image_hash(img->seed, ZJ_IMG_NONE, s, len), ZJ_IMG_NONE, s, len);
        if (z != ZJ_IMG_NONE) {
            *labels = q->labels - k;
            return z;
        }
    }
    return ZJ_IMG_NONE;
}

uint32_t zj_node_find_rrset(const zj_image_t *img, uint32_t node, uint16_t type)
{
    const zj_img_node_d *n = &img->nodes[node];
    for (uint32_t i = n->rrset_first; i < n->rrset_first + n->n_rrsets; i++) {
        if (img->rrsets[i].type == type) {
            return i;
        }
    }
    return ZJ_IMG_NONE;
}

/* The answer at an existing node (exact or wildcard): RRset, CNAME, or NODATA. */
static void answer_at(const zj_image_t *img, uint32_t node, uint16_t qtype, zj_lookup_t *out)
{
    out->node = node;
    out->rrset = zj_node_find_rrset(img, node, qtype);
    if (out->rrset != ZJ_IMG_NONE) {
        out->kind = ZJ_LOOKUP_EXACT;
        return;
    }
    if ((img->nodes[node].flags & ZJ_NODE_CNAME) && qtype != ZJ_T_CNAME) {
        out->kind = ZJ_LOOKUP_CNAME; /* RFC 1034 §4.3.2 step 3a */
        out->rrset = zj_node_find_rrset(img, node, ZJ_T_CNAME);
        return;
    }
    out->kind = ZJ_LOOKUP_NODATA;
    out->ent = img->nodes[node].n_rrsets == 0;
}

static void delegate(const zj_image_t *img, uint32_t cut, zj_lookup_t *out)
{
    out->kind = ZJ_LOOKUP_DELEG; /* RFC 1034 §4.3.2 step 3b */
    out->node = cut;
    out->rrset = zj_node_find_rrset(img, cut, ZJ_T_NS);
}

void zj_zone_lookup(const zj_image_t *img, uint32_t zone, const zj_qname_t *q, uint16_t qtype,
                    zj_lookup_t *out)
{
    const zj_img_zone_d *z = &img->zones[zone];
    int apex_labels = img->nodes[z->apex_node].labels;
    out->wildcard = false;
    out->ent = false;
    out->ce = ZJ_IMG_NONE;
    out->rrset = ZJ_IMG_NONE;

    /* Exact match first: the common case costs one probe. */
    uint32_t n = zj_image_find_node(img, zone, q->name, q->len);
    if (n != ZJ_IMG_NONE) {
        const zj_img_node_d *nd = &img->nodes[n];
        if (nd->flags & ZJ_NODE_OCCLUDED) {
            delegate(img, nd->cut, out);
            return;
        }
        /* DS lives on the parent side of the cut (RFC 4035 §3.1.4.1) */
        if ((nd->flags & ZJ_NODE_DELEG) && qtype != ZJ_T_DS) {
            delegate(img, n, out);
            return;
        }
        answer_at(img, n, qtype, out);
        return;
    }

    /* Closest encloser. The compiler adds every empty non-terminal, so "a node exists" holds
     * for every ancestor of an existing name: existence is monotone in the number of labels
     * stripped, and a binary search finds the encloser in log2(labels) probes (a 127-label
     * query costs 7, not 127). k = labels stripped; the apex (k = hi) always exists and the
     * full name (k = 0) was just found missing. */
    int lo = 0;
    int hi = q->labels - apex_labels;
    uint32_t ce = z->apex_node;
    while (hi - lo > 1) {
        int mid = lo + (hi - lo) / 2;
        uint32_t c =
            zj_image_find_node(img, zone, q->name + q->off[mid], (size_t)(q->len - q->off[mid]));
        if (c != ZJ_IMG_NONE) {
            hi = mid;
            ce = c;
        } else {
            lo = mid;
        }
    }
    int k = hi; /* ce is the node of suffix k */
    out->ce = ce;
    const zj_img_node_d *cd = &img->nodes[ce];
    if (cd->flags & ZJ_NODE_OCCLUDED) {
        delegate(img, cd->cut, out);
        return;
    }
    if (cd->flags & ZJ_NODE_DELEG) {
        delegate(img, ce, out);
        return;
    }
    if (cd->flags & ZJ_NODE_DNAME) {
        out->kind = ZJ_LOOKUP_DNAME; /* RFC 6672 §3.2 */
        out->node = ce;
        out->rrset = zj_node_find_rrset(img, ce, ZJ_T_DNAME);
        return;
    }
    size_t sl = (size_t)(q->len - q->off[k]);
    if ((cd->flags & ZJ_NODE_WILDCHILD) && sl + 2 <= ZJ_DNS_MAX_NAME) {
        /* RFC 4592 §3.3.1: the source of synthesis is "*." + closest encloser */
        uint8_t wname[ZJ_DNS_MAX_NAME];
        wname[0] = 1;
        wname[1] = '*';
        memcpy(wname + 2, q->name + q->off[k], sl);
        uint32_t w = zj_image_find_node(img, zone, wname, sl + 2);
        if (w != ZJ_IMG_NONE) {
            out->wildcard = true;
            answer_at(img, w, qtype, out);
            out->ent = false;
            return;
        }
    }
    out->kind = ZJ_LOOKUP_NXDOMAIN;
    out->node = ce;
}
