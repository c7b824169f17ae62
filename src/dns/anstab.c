/* The answer table (see anstab.h for what it holds and why).
 *
 * Layout: an open-addressing hash of lower-case names (tag + node index, at most half full), a
 * node per name with its answers by type, an answer per (name, type) and an arena of bodies and
 * pointer lists. A body that is exactly one RRset of an image, as the image stores it (the
 * common A/AAAA/TXT answer), points into the image instead of the arena.
 *
 * Build: for each node of each image that the set's directory says serves it, zj_answer is asked
 * for every type the node has (plus A and AAAA after a CNAME); the "any other type" answer of a
 * node is its zone's NODATA body (one per zone) or, at a zone cut, the referral. Answers the
 * general path must keep making per query (a policy chose, the response was truncated, the
 * compression work bound was hit, an rcode other than NOERROR/NXDOMAIN) are stored as "ask the
 * general path" so that the type does not fall through to the NODATA answer. An image whose
 * index does not find its nodes as the closest-encloser walk assumes (never one the compiler
 * made) gets no table (add_node). */
#include "dns/anstab.h"

#include <stdlib.h>
#include <string.h>

#include "dns/answer.h"
#include "dns/query.h"
#include "util/mem.h"
#include "util/text.h"
#include "zone/imgset_internal.h"
#include "zonejet/dname.h"
#include "zonejet/err.h"
#include "zonejet/wire.h"
#include "zonejet/zone.h"

#define AT_NONE 0xFFFFFFFFu
/* add_node: the image's index breaks an assumption of the table (see there); no table */
#define AT_NO_TABLE 1
/* Bodies larger than this stay with the general path: keeps every moved pointer below 0x4000
 * (12 + 255 + AT_BODY_MAX) and the table small. */
#define AT_BODY_MAX 4000u
/* Compression pointers per body (the ones a moved body has to patch). */
#define AT_PTRS_MAX 255u
/* Suffixes a query that misses may look up before the general path takes over. */
#define AT_WALK_MAX 8
/* Flags of an answer. */
#define AT_AA 0x10u
#define AT_REFERRAL 0x20u
/* The body names the question itself other than as an answer owner (a wildcard whose data
 * names "*.<encloser>" or a name below it): a synthesized answer cannot point there. */
#define AT_NO_SYNTH 0x40u
#define AT_RCODE_MASK 0x0Fu

enum at_below {
    AT_BELOW_SLOW = 0, /* the general path (DNAME, or anything the table could not hold) */
    AT_BELOW_NX,       /* NXDOMAIN: below = the zone's NODATA answer, rcode replaced */
    AT_BELOW_REFERRAL, /* below = the referral answer */
    AT_BELOW_WILD,     /* below = node index of the "*" child */
};

typedef struct at_ans {
    const uint8_t *body; /* NULL: this type goes to the general path */
    uint16_t qtype;
    uint16_t len;
    uint16_t an, ns, ar;
    uint8_t n_ptrs;   /* pointer positions (uint16_t each) follow the body, 2-byte aligned */
    uint8_t n_ptrs12; /* the first n_ptrs12 of them are answer owners that are just a pointer
                       * to offset 12 (the question name) */
    uint8_t base_len; /* length of the question name the body was built for */
    uint8_t flags;    /* rcode | AT_AA | AT_REFERRAL | AT_NO_SYNTH */
} at_ans_t;

typedef struct at_node {
    const uint8_t *name; /* lower-case wire name, inside an image */
    uint32_t first;      /* answers by type: ans[first, first + n_types) */
    uint32_t dflt;       /* answer for every other type, or AT_NONE (general path) */
    uint32_t below;      /* see enum at_below */
    uint8_t name_len;
    uint8_t n_types;
    uint8_t below_kind;
    uint8_t is_cut; /* a zone cut or below one: every type gets the referral */
} at_node_t;

typedef struct at_slot {
    uint32_t tag;  /* high half of the hash */
    uint32_t node; /* node index + 1; 0 = empty */
} at_slot_t;

struct zj_anstab {
    size_t mask;
    at_slot_t *slots;
    at_node_t *nodes;
    size_t n_nodes, cap_nodes;
    at_ans_t *ans;
    size_t n_ans, cap_ans;
    uint8_t *arena;
    size_t n_arena, cap_arena;
    int min_labels; /* label counts of the shallowest and deepest name in the table */
    int max_labels;
};

static bool g_enabled = true;

void zj_anstab_set_enabled(bool on)
{
    g_enabled = on;
}

/* The table's hash: each 8-byte word of the name (the last one zero-padded) folded in with a
 * multiply, then a final mix (the MurmurHash3 finalizer) so that both the slot (low bits) and
 * the tag (high bits) depend on every byte. The query path folds words in as it lower-cases
 * them, before it knows which image's table to look in, so every table uses the same seed.
 * The names come from zone files, not from queries: a query cannot add names to a table, so
 * there is no flooding to guard against with a secret seed. */
#define AT_MUL 0x9E3779B97F4A7C15ull
#define AT_SEED 0x5851F42D4C957F2Dull

static inline uint64_t fold(uint64_t h, uint64_t w)
{
    return (h ^ w) * AT_MUL;
}

static inline uint64_t finish(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xFF51AFD7ED558CCDull;
    h ^= h >> 33;
    h *= 0xC4CEB9FE1A85EC53ull;
    return h ^ (h >> 33);
}

/* Bits of the last word that belong to a name of len bytes (little-endian loads). */
static inline uint64_t tail_mask(size_t len)
{
    return ~0ull >> (8u * ((0u - (unsigned)len) & 7u)); /* len % 8 == 0: all 64 bits */
}

/* name must be readable for len rounded up to 8 bytes (the bytes past len are ignored). */
static inline uint64_t hash_padded(uint64_t seed, const uint8_t *name, size_t len)
{
    uint64_t h = seed ^ len;
    size_t i = 0;
    for (; i + 8 < len; i += 8) {
        uint64_t w;
        memcpy(&w, name + i, 8);
        h = fold(h, w);
    }
    uint64_t w;
    memcpy(&w, name + i, 8);
    return finish(fold(h, w & tail_mask(len)));
}

static uint64_t at_hash(uint64_t seed, const uint8_t *name, size_t len)
{
    uint8_t buf[ZJ_DNS_MAX_NAME + 8];
    memcpy(buf, name, len);
    memset(buf + len, 0, 8);
    return hash_padded(seed, buf, len);
}

static inline uint64_t load8(const uint8_t *p)
{
    uint64_t x;
    memcpy(&x, p, 8);
    return x;
}

/* Names of 8 bytes or more compare as words, the last word overlapping the one before. */
static inline bool name_eq(const uint8_t *a, const uint8_t *b, size_t len)
{
    if (len < 8) {
        return memcmp(a, b, len) == 0;
    }
    uint64_t diff = load8(a + len - 8) ^ load8(b + len - 8);
    for (size_t i = 0; i + 8 < len; i += 8) {
        diff |= load8(a + i) ^ load8(b + i);
    }
    return diff == 0;
}

static inline const at_node_t *find_h(const zj_anstab_t *t, uint64_t h, const uint8_t *name,
                                      size_t len)
{
    uint32_t tag = (uint32_t)(h >> 32);
    for (size_t i = (size_t)h & t->mask;; i = (i + 1) & t->mask) {
        const at_slot_t *s = &t->slots[i];
        if (s->node == 0) {
            return NULL; /* at most half full: a run always ends */
        }
        if (s->tag == tag) {
            const at_node_t *n = &t->nodes[s->node - 1];
            if (n->name_len == len && name_eq(n->name, name, len)) {
                return n;
            }
        }
    }
}

/* Off the query path (or with a name that has no 8 bytes of slack after it). */
static const at_node_t *find(const zj_anstab_t *t, const uint8_t *name, size_t len)
{
    return find_h(t, at_hash(AT_SEED, name, len), name, len);
}

/* ---- Build ------------------------------------------------------------------------------- */

typedef struct builder {
    zj_anstab_t *t;
    const zj_imgset_t *set; /* the image alone */
    const zj_image_t *img;
    zj_answer_cfg_t cfg;
    zj_responder_t rs;
    uint32_t *arena_off; /* per answer: its body's arena offset, or AT_NONE (fixed up at end) */
    size_t cap_arena_off;
    uint32_t *neg; /* per zone: the zone's NODATA answer, or AT_NONE */
    uint8_t pkt[ZJ_DNS_HEADER_LEN + ZJ_DNS_MAX_NAME + 4];
    uint8_t out[ZJ_DNS_MAX_MSG];
} builder_t;

/* Record the compression pointers of one name at msg[*p]; false if it is malformed. */
static bool walk_name(const uint8_t *msg, size_t end, size_t *p, size_t body, uint16_t *pos,
                      unsigned *n)
{
    while (*p < end) {
        uint8_t l = msg[*p];
        if ((l & 0xC0) == 0xC0) {
            if (*p + 2 > end || *n >= AT_PTRS_MAX) {
                return false;
            }
            pos[(*n)++] = (uint16_t)(*p - body);
            *p += 2;
            return true;
        }
        if (l == 0) {
            *p += 1;
            return true;
        }
        *p += (size_t)l + 1;
    }
    return false;
}

/* Positions of every compression pointer in the body msg[body, end) of rrs records: in owner
 * names and in the RDATA names the answer path compresses (zj_rdata_names_compressed).
 * is_owner[i]: pointer i is the whole owner name of one of the first an records (the answer
 * section). */
static bool find_ptrs(const uint8_t *msg, size_t body, size_t end, unsigned rrs, unsigned an,
                      uint16_t *pos, bool *is_owner, unsigned *n)
{
    size_t p = body;
    *n = 0;
    memset(is_owner, 0, AT_PTRS_MAX * sizeof(*is_owner));
    for (unsigned i = 0; i < rrs; i++) {
        size_t owner = p;
        unsigned was = *n;
        if (!walk_name(msg, end, &p, body, pos, n) || p + 10 > end) {
            return false;
        }
        if (i < an && *n == was + 1 && pos[was] == owner - body) {
            is_owner[was] = true;
        }
        uint16_t type = zj_be16(msg + p);
        size_t rd_end = p + 10 + zj_be16(msg + p + 8);
        if (rd_end > end) {
            return false;
        }
        p += 10;
        if (zj_rdata_names_compressed(type)) {
            p += type == ZJ_T_MX ? 2 : 0;
            for (int k = 0; k < (type == ZJ_T_SOA ? 2 : 1); k++) {
                if (!walk_name(msg, rd_end, &p, body, pos, n)) {
                    return false;
                }
            }
        }
        p = rd_end;
    }
    return p == end;
}

static uint32_t add_ans(builder_t *b, const at_ans_t *a, uint32_t arena_off)
{
    zj_anstab_t *t = b->t;
    at_ans_t *na = zj_grow(t->ans, &t->cap_ans, t->n_ans + 1, sizeof(*na), 64);
    if (na == NULL) {
        return AT_NONE;
    }
    t->ans = na;
    uint32_t *no = zj_grow(b->arena_off, &b->cap_arena_off, t->n_ans + 1, sizeof(*no), 64);
    if (no == NULL) {
        return AT_NONE;
    }
    b->arena_off = no;
    t->ans[t->n_ans] = *a;
    b->arena_off[t->n_ans] = arena_off;
    return (uint32_t)t->n_ans++;
}

/* Ask the answer path for (name, qtype) and keep what it said. rrset is the RRset of that type
 * at the node, or AT_NONE: a body equal to its image bytes points there. Returns the answer's
 * index (its body NULL when the type must go to the general path), or AT_NONE out of memory. */
static uint32_t build_ans(builder_t *b, const zj_image_t *img, const uint8_t *name, size_t len,
                          uint16_t qtype, uint32_t rrset)
{
    at_ans_t a = {.qtype = qtype, .base_len = (uint8_t)len};
    uint8_t *q = b->pkt;
    memset(q, 0, ZJ_DNS_HEADER_LEN);
    q[5] = 1; /* QDCOUNT */
    memcpy(q + ZJ_DNS_HEADER_LEN, name, len);
    size_t qend = ZJ_DNS_HEADER_LEN + len;
    zj_put16(q + qend, qtype);
    zj_put16(q + qend + 2, ZJ_C_IN);
    qend += 4;
    uint64_t policy = b->rs.stats.policy;
    uint64_t exhausted = b->rs.stats.comp_work_exhausted;
    /* over "TCP": no size limit short of 65535, so nothing is left out of additional */
    size_t n = zj_answer(&b->rs, b->set, q, qend, NULL, true, b->out, sizeof(b->out));
    uint16_t flags = n >= ZJ_DNS_HEADER_LEN ? zj_be16(b->out + 2) : 0;
    unsigned rcode = flags & 0xFu;
    bool ok = n >= qend && n - qend <= AT_BODY_MAX && !(flags & ZJ_F_TC) &&
              (rcode == ZJ_RCODE_NOERROR || rcode == ZJ_RCODE_NXDOMAIN) &&
              b->rs.stats.policy == policy && b->rs.stats.comp_work_exhausted == exhausted;
    uint16_t pos[AT_PTRS_MAX];
    bool is_owner[AT_PTRS_MAX];
    unsigned n_pos = 0;
    if (ok) {
        a.an = zj_be16(b->out + 6);
        a.ns = zj_be16(b->out + 8);
        a.ar = zj_be16(b->out + 10);
        ok = find_ptrs(b->out, qend, n, (unsigned)a.an + a.ns + a.ar, a.an, pos, is_owner, &n_pos);
    }
    if (!ok) {
        return add_ans(b, &a, AT_NONE); /* body NULL: the general path */
    }
    a.len = (uint16_t)(n - qend);
    a.flags = (uint8_t)(rcode | ((flags & ZJ_F_AA) ? AT_AA : 0) |
                        (a.ns > 0 && a.an == 0 && !(flags & ZJ_F_AA) ? AT_REFERRAL : 0));
    const uint8_t *body = b->out + qend;
    if (rrset != AT_NONE && a.ns == 0 && a.ar == 0) {
        const zj_img_rrset_d *rs = &img->rrsets[rrset];
        if (rs->n_rr == a.an && rs->wire_len == a.len &&
            memcmp(img->wire + rs->wire_off, body, a.len) == 0) {
            /* the image's own bytes; their pointers are all to the question name, which such
             * an answer never moves (only NODATA and referral bodies are shared by other
             * names) */
            a.body = img->wire + rs->wire_off;
            return add_ans(b, &a, AT_NONE);
        }
    }
    /* Answer owners that are the question name first: a wildcard answer synthesized for
     * another name keeps those at offset 12, where that name is. Any other pointer to offset
     * 12 means the name "*.<encloser>" itself (an MX exchange, a CNAME target below it, an
     * additional owner): the synthesized response must spell it out, so such a body only
     * answers the wildcard's own name (tests/unit/test_anstab.c, test_wildcard_*). */
    unsigned n12 = 0;
    for (unsigned i = 0; i < n_pos; i++) {
        if ((zj_be16(body + pos[i]) & 0x3FFFu) != ZJ_DNS_HEADER_LEN) {
            continue;
        }
        if (!is_owner[i]) {
            a.flags |= AT_NO_SYNTH;
            continue;
        }
        uint16_t x = pos[n12];
        pos[n12++] = pos[i];
        pos[i] = x;
    }
    a.n_ptrs = (uint8_t)n_pos;
    a.n_ptrs12 = (uint8_t)n12;
    zj_anstab_t *t = b->t;
    size_t need = t->n_arena + a.len + 1 + 2 * (size_t)n_pos;
    if (need > UINT32_MAX) {
        return AT_NONE; /* tested before growing: a moved arena must be stored in t */
    }
    uint8_t *ar = zj_grow(t->arena, &t->cap_arena, need, 1, 4096);
    if (ar == NULL) {
        return AT_NONE;
    }
    t->arena = ar;
    uint32_t off = (uint32_t)t->n_arena;
    memcpy(ar + off, body, a.len);
    size_t p = off + a.len + ((off + a.len) & 1u); /* pointer list 2-byte aligned */
    memcpy(ar + p, pos, 2 * (size_t)n_pos);
    t->n_arena = p + 2 * (size_t)n_pos;
    a.body = body; /* non-NULL placeholder; the arena pointer is set when the arena is final */
    return add_ans(b, &a, off);
}

/* The zone's NODATA answer: asked at the apex for a type the apex does not have. */
static uint32_t zone_neg(builder_t *b, uint32_t zone)
{
    uint32_t *slot = &b->neg[zone];
    if (*slot != AT_NONE) {
        return *slot;
    }
    const zj_image_t *img = b->img;
    uint32_t apex = img->zones[zone].apex_node;
    uint16_t type = 65280; /* private use (RFC 6895): a zone rarely has it */
    while (type != 0 && zj_node_find_rrset(img, apex, type) != ZJ_IMG_NONE) {
        type++;
    }
    if (type == 0) {
        /* every private type is there: past 65535 the count would wrap into types whose
         * answer is not NODATA (DS, ANY), so the general path keeps these answers */
        at_ans_t none = {.qtype = 0};
        *slot = add_ans(b, &none, AT_NONE);
        return *slot;
    }
    const zj_img_node_d *an = &img->nodes[apex];
    *slot = build_ans(b, img, img->names + an->name_off, an->name_len, type, AT_NONE);
    /* It stands for every NODATA and NXDOMAIN of the zone, which carry the SOA: if the apex
     * answered otherwise (an apex flagged as a cut or a CNAME, in an image the compiler did
     * not make), those go to the general path. */
    at_ans_t *a = *slot != AT_NONE ? &b->t->ans[*slot] : NULL;
    if (a != NULL && a->body != NULL &&
        (a->an != 0 || a->ar != 0 || !(a->flags & AT_AA) || (a->flags & AT_RCODE_MASK) != 0)) {
        a->body = NULL;
        b->arena_off[*slot] = AT_NONE;
    }
    return *slot;
}

/* The directory slot of the zone that serves name (the deepest apex above or at it). */
static const zj_imgdir_slot_t *serving(const zj_imgdir_t *d, const uint8_t *name, size_t len)
{
    zj_qname_t q;
    zj_qname_init(&q, name, len);
    int k = 0;
    return zj_imgdir_deepest(d, q.name, q.len, q.off, q.labels, 0, &k);
}

static int add_node(builder_t *b, uint32_t zone, uint32_t node)
{
    const zj_image_t *img = b->img;
    const zj_img_node_d *nd = &img->nodes[node];
    const uint8_t *name = img->names + nd->name_off;
    const zj_imgdir_slot_t *s = serving(&b->set->dir, name, nd->name_len);
    if (s == NULL || s->img != img || s->zone != zone) {
        return ZJ_OK; /* a deeper zone of the image answers for this name */
    }
    /* The table holds what the general path's lookups find (checked for any image the
     * validator accepts, not just the compiler's): the node the image's index gives for its
     * zone and name, and no other node of that name. And the closest-encloser walk (the first
     * suffix in the table) agrees with zj_zone_lookup's binary search only if existence is
     * monotone: every node's parent must be found too (the compiler adds every empty
     * non-terminal). An image that breaks this gets no table. */
    if (zj_image_find_node(img, zone, name, nd->name_len) != node) {
        return ZJ_OK;
    }
    if (node != img->zones[zone].apex_node) {
        size_t first = (size_t)name[0] + 1;
        if (zj_image_find_node(img, zone, name + first, nd->name_len - first) == ZJ_IMG_NONE) {
            return AT_NO_TABLE;
        }
    }
    zj_anstab_t *t = b->t;
    at_node_t *nn = zj_grow(t->nodes, &t->cap_nodes, t->n_nodes + 1, sizeof(*nn), 64);
    if (nn == NULL) {
        return ZJ_ENOMEM;
    }
    t->nodes = nn;
    at_node_t n = {.name = name,
                   .first = (uint32_t)t->n_ans,
                   .dflt = AT_NONE,
                   .below = AT_NONE,
                   .name_len = nd->name_len};
    if (nd->flags & (ZJ_NODE_DELEG | ZJ_NODE_OCCLUDED)) {
        /* every type but DS (which the table never answers) gets the referral, and so does
         * every name below */
        n.is_cut = 1;
        n.dflt = build_ans(b, img, name, nd->name_len, ZJ_T_A, AT_NONE);
        if (n.dflt == AT_NONE) {
            return ZJ_ENOMEM;
        }
        bool is_ref = t->ans[n.dflt].body != NULL && (t->ans[n.dflt].flags & AT_REFERRAL);
        n.below_kind = is_ref ? AT_BELOW_REFERRAL : AT_BELOW_SLOW;
        n.below = n.dflt;
    } else {
        bool is_all = true; /* every type has its answer (the default is then safe) */
        for (uint32_t r = nd->rrset_first; r < nd->rrset_first + nd->n_rrsets; r++) {
            uint16_t type = img->rrsets[r].type;
            if (type == ZJ_T_DS) {
                continue;
            }
            if (n.n_types >= UINT8_MAX - 2) {
                is_all = false;
                continue;
            }
            if (build_ans(b, img, name, nd->name_len, type, r) == AT_NONE) {
                return ZJ_ENOMEM;
            }
            n.n_types++;
        }
        if (nd->flags & ZJ_NODE_CNAME) {
            /* any other type follows the chain: only the common ones are kept */
            static const uint16_t chase[2] = {ZJ_T_A, ZJ_T_AAAA};
            for (int k = 0; k < 2; k++) {
                if (build_ans(b, img, name, nd->name_len, chase[k], AT_NONE) == AT_NONE) {
                    return ZJ_ENOMEM;
                }
                n.n_types++;
            }
        } else if (is_all) {
            n.dflt = zone_neg(b, zone);
            if (n.dflt == AT_NONE) {
                return ZJ_ENOMEM;
            }
        }
        if (nd->flags & ZJ_NODE_DNAME) {
            n.below_kind = AT_BELOW_SLOW;
        } else if (nd->flags & ZJ_NODE_WILDCHILD) {
            n.below_kind = AT_BELOW_WILD; /* resolved to the child's node at the end */
        } else {
            n.below = zone_neg(b, zone);
            if (n.below == AT_NONE) {
                return ZJ_ENOMEM;
            }
            n.below_kind = t->ans[n.below].body != NULL ? AT_BELOW_NX : AT_BELOW_SLOW;
        }
    }
    t->nodes[t->n_nodes++] = n;
    int labels = nd->labels;
    t->min_labels = labels < t->min_labels ? labels : t->min_labels;
    t->max_labels = labels > t->max_labels ? labels : t->max_labels;
    return ZJ_OK;
}

static int index_nodes(zj_anstab_t *t)
{
    size_t cap = 16;
    while (cap < 2 * t->n_nodes) {
        cap *= 2;
    }
    t->slots = calloc(cap, sizeof(*t->slots));
    if (t->slots == NULL) {
        return ZJ_ENOMEM;
    }
    t->mask = cap - 1;
    for (size_t i = 0; i < t->n_nodes; i++) {
        const at_node_t *n = &t->nodes[i];
        uint64_t h = at_hash(AT_SEED, n->name, n->name_len);
        if (find_h(t, h, n->name, n->name_len) != NULL) {
            continue; /* the same name in two zones of one image: the first one serves */
        }
        size_t k = (size_t)h & t->mask;
        while (t->slots[k].node != 0) {
            k = (k + 1) & t->mask;
        }
        t->slots[k] = (at_slot_t){.tag = (uint32_t)(h >> 32), .node = (uint32_t)i + 1};
    }
    return ZJ_OK;
}

/* "*" + name for every node with a wildcard child: the child's node, if the table has it. */
static void link_wildcards(zj_anstab_t *t, const zj_imgdir_t *dir)
{
    uint8_t w[ZJ_DNS_MAX_NAME + 2];
    for (size_t i = 0; i < t->n_nodes; i++) {
        at_node_t *n = &t->nodes[i];
        if (n->below_kind != AT_BELOW_WILD) {
            continue;
        }
        n->below_kind = AT_BELOW_SLOW;
        if ((size_t)n->name_len + 2 > ZJ_DNS_MAX_NAME) {
            continue;
        }
        w[0] = 1;
        w[1] = '*';
        memcpy(w + 2, n->name, n->name_len);
        const at_node_t *c = find(t, w, (size_t)n->name_len + 2);
        /* a wildcard that is also a zone cut is answered from its own data when synthesized
         * (as the general path does), unlike a query for its literal name: general path.
         * When "*.<name>" is the apex of another zone of the image, the table's node is that
         * zone's, while synthesis uses the encloser's zone's "*" node (zj_zone_lookup), which
         * the table does not hold: general path. */
        if (c != NULL && !c->is_cut && zj_imgdir_find(dir, w, (size_t)n->name_len + 2) == NULL) {
            n->below_kind = AT_BELOW_WILD;
            n->below = (uint32_t)(c - t->nodes);
        }
    }
}

void zj_anstab_free(zj_anstab_t *t)
{
    if (t == NULL) {
        return;
    }
    free(t->slots);
    free(t->nodes);
    free(t->ans);
    free(t->arena);
    free(t);
}

int zj_anstab_build(zj_image_t *img, zj_anstab_t **out)
{
    *out = NULL;
    if (!g_enabled) {
        return ZJ_OK;
    }
    /* the image alone: which of its zones serves a name does not depend on other images (the
     * query path asks the set's directory for the zone first when there are several) */
    zj_image_t *one[1] = {img};
    zj_imgset_t alone = {.images = one, .n_images = 1};
    int rc = zj_imgset_build_dir(&alone);
    builder_t *b = rc == ZJ_OK ? calloc(1, sizeof(*b)) : NULL;
    zj_anstab_t *t = rc == ZJ_OK ? calloc(1, sizeof(*t)) : NULL;
    rc = ZJ_ENOMEM;
    if (b == NULL || t == NULL || alone.dir.slots == NULL) {
        goto out;
    }
    t->min_labels = ZJ_DNS_MAX_LABELS;
    b->t = t;
    b->set = &alone;
    b->img = img;
    zj_answer_cfg_default(&b->cfg);
    zj_responder_init(&b->rs, &b->cfg, 0);
    b->neg = malloc((img->n_zones > 0 ? img->n_zones : 1) * sizeof(uint32_t));
    if (b->neg == NULL) {
        goto out;
    }
    memset(b->neg, 0xFF, img->n_zones * sizeof(uint32_t)); /* AT_NONE */
    for (uint32_t z = 0; z < img->n_zones; z++) {
        const zj_img_zone_d *zd = &img->zones[z];
        for (uint32_t k = 0; k < zd->n_nodes; k++) {
            int arc = add_node(b, z, zd->first_node + k);
            if (arc == AT_NO_TABLE) {
                rc = ZJ_OK; /* *out stays NULL: the general path answers for the image */
                goto out;
            }
            if (arc != ZJ_OK) {
                goto out;
            }
        }
    }
    for (size_t i = 0; i < t->n_ans; i++) {
        if (b->arena_off[i] != AT_NONE) {
            t->ans[i].body = t->arena + b->arena_off[i];
        }
    }
    if (index_nodes(t) != ZJ_OK) {
        goto out;
    }
    link_wildcards(t, &alone.dir);
    *out = t;
    t = NULL;
    rc = ZJ_OK;
out:
    if (b != NULL) {
        free(b->neg);
        free(b->arena_off);
    }
    free(b);
    free(alone.dir.slots);
    zj_anstab_free(t);
    return rc;
}

void zj_anstab_sizes(const zj_anstab_t *t, size_t *names, size_t *answers, size_t *bytes)
{
    *names = t != NULL ? t->n_nodes : 0;
    *answers = t != NULL ? t->n_ans : 0;
    *bytes = t != NULL ? (t->mask + 1) * sizeof(at_slot_t) + t->cap_nodes * sizeof(at_node_t) +
                             t->cap_ans * sizeof(at_ans_t) + t->cap_arena
                       : 0;
}

/* ---- Query path -------------------------------------------------------------------------- */

/* EDNS options that leave the response as it is: well-formed (the general parser's rules), no
 * NSID request, no ECS. */
static bool plain_options(const uint8_t *p, size_t len)
{
    zj_query_t q;
    q.has_ecs = false;
    q.nsid_requested = false;
    return zj_query_parse_options(p, (uint16_t)len, &q) && !q.has_ecs && !q.nsid_requested;
}

static inline const at_ans_t *by_type(const zj_anstab_t *t, const at_node_t *n, uint16_t qtype,
                                      bool *is_own)
{
    const at_ans_t *a = &t->ans[n->first];
    for (unsigned i = 0; i < n->n_types; i++) {
        if (a[i].qtype == qtype) {
            *is_own = true;
            return &a[i];
        }
    }
    *is_own = false;
    return n->dflt != AT_NONE ? &t->ans[n->dflt] : NULL;
}

/* The question name as the table reads it: label offsets from the name's start in
 * off[0..labels), the root's offset in off[labels]. Every length byte read lies below
 * ZJ_DNS_HEADER_LEN + 255, so the name (root byte included) is at most 255 bytes and has at most
 * 127 labels; a label length above 63 (a pointer, or an extended label type) is not one the
 * table holds. Returns the name's length, or 0 for such a name or one that runs past len. */
static inline size_t scan_qname(const uint8_t *pkt, size_t len, uint8_t off[ZJ_DNS_MAX_LABELS],
                                unsigned *labels)
{
    unsigned n = 0;
    size_t o = ZJ_DNS_HEADER_LEN;
    size_t lim =
        len < ZJ_DNS_HEADER_LEN + ZJ_DNS_MAX_NAME ? len : ZJ_DNS_HEADER_LEN + ZJ_DNS_MAX_NAME;
    for (;;) {
        if (o >= lim) {
            return 0;
        }
        uint8_t l = pkt[o];
        if (l == 0) {
            break;
        }
        if (l > ZJ_DNS_MAX_LABEL) {
            return 0;
        }
        off[n++] = (uint8_t)(o - ZJ_DNS_HEADER_LEN);
        o += (size_t)l + 1;
    }
    size_t qlen = o + 1 - ZJ_DNS_HEADER_LEN;
    off[n] = (uint8_t)(qlen - 1);
    *labels = n;
    return qlen;
}

size_t zj_anstab_answer(const zj_imgset_t *set, zj_responder_t *rs, const uint8_t *pkt, size_t len,
                        bool is_tcp, uint8_t *out, size_t out_cap)
{
    /* a query (QR 0, opcode QUERY); counts: one question, nothing in answer or authority, at
     * most one additional (the OPT), i.e. bytes 4-11 are 0 1 0 0 0 0 0 0|1 (one 8-byte compare,
     * in either byte order) */
    static const uint8_t counts[8] = {0, 1, 0, 0, 0, 0, 0, 0};
    static const uint8_t counts_mask[8] = {0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFE};
    if (len < ZJ_DNS_HEADER_LEN + 5 || (pkt[2] & 0xF8) != 0 ||
        (load8(pkt + 4) & load8(counts_mask)) != load8(counts)) {
        return ZJ_ANSTAB_PASS;
    }
    uint8_t off[ZJ_DNS_MAX_LABELS];
    unsigned labels = 0;
    size_t qlen = scan_qname(pkt, len, off, &labels);
    if (qlen == 0) {
        return ZJ_ANSTAB_PASS;
    }
    size_t o = ZJ_DNS_HEADER_LEN + qlen - 1; /* the root byte */
    size_t qend = o + 5;
    if (qend > len || zj_be16(pkt + o + 3) != ZJ_C_IN) {
        return ZJ_ANSTAB_PASS;
    }
    uint16_t qtype = zj_be16(pkt + o + 1);
    /* DS, and the meta-types the general path treats apart (IXFR, AXFR, MAILB, MAILA, ANY);
     * the types above ANY (URI, CAA, private use) are plain lookups there, as in the table */
    if (qtype == ZJ_T_DS || (qtype >= ZJ_T_IXFR && qtype <= ZJ_T_ANY)) {
        return ZJ_ANSTAB_PASS;
    }
    bool has_edns = pkt[11] == 1;
    size_t limit = ZJ_DNS_UDP_MIN;
    if (has_edns) {
        /* exactly one OPT: root owner, version 0, and options the response does not depend
         * on (a cookie is checked and ignored, as the general path does; NSID and ECS change
         * the response, so they and anything malformed go to the general path) */
        const uint8_t *e = pkt + qend;
        if (len < qend + 11 || e[0] != 0 || zj_be16(e + 1) != ZJ_T_OPT || e[6] != 0 ||
            len != qend + 11 + zj_be16(e + 9) || !plain_options(e + 11, len - qend - 11)) {
            return ZJ_ANSTAB_PASS;
        }
        uint16_t theirs = zj_be16(e + 3);
        uint16_t ours = rs->cfg->edns_payload;
        limit = theirs < ours ? theirs : ours;
        if (limit < ZJ_DNS_UDP_MIN) {
            limit = ZJ_DNS_UDP_MIN;
        }
    } else if (len != qend) {
        return ZJ_ANSTAB_PASS;
    }
    if (is_tcp) {
        limit = ZJ_DNS_MAX_MSG;
    }
    if (limit > out_cap) {
        limit = out_cap;
    }

    /* Copy the question to out, lower-case the name and hash it, in one pass of 8-byte words;
     * the last word is read whole when QTYPE and QCLASS leave room (the extra bytes are masked
     * off), else byte by byte. out is ours to write: when the table does not answer, the
     * general path writes it again. */
    uint8_t lname[ZJ_DNS_MAX_NAME + 16];
    const uint8_t *qn = pkt + ZJ_DNS_HEADER_LEN;
    uint8_t *oq = out + ZJ_DNS_HEADER_LEN;
    if (out_cap < ZJ_DNS_UDP_MIN) {
        return ZJ_ANSTAB_PASS;
    }
    memcpy(out, pkt, ZJ_DNS_HEADER_LEN);
    uint64_t h = AT_SEED ^ qlen;
    size_t i = 0;
    for (; i + 8 < qlen; i += 8) {
        uint64_t x;
        memcpy(&x, qn + i, 8);
        memcpy(oq + i, &x, 8);
        x = zj_lower8(x);
        memcpy(lname + i, &x, 8);
        h = fold(h, x);
    }
    uint64_t x = 0;
    if (i + 8 <= qlen + 4) {
        memcpy(&x, qn + i, 8); /* the rest of the name, then part of QTYPE/QCLASS */
        memcpy(oq + i, &x, 8);
        x = zj_lower8(x) & tail_mask(qlen);
    } else {
        for (size_t k = qlen; k-- > i;) {
            x = x << 8 | qn[k];
        }
        memcpy(oq + i, &x, 8);
        x = zj_lower8(x);
    }
    memcpy(oq + qlen, qn + qlen, 4); /* QTYPE, QCLASS */
    memcpy(lname + i, &x, 8);
    memset(lname + i + 8, 0, 8); /* a suffix's last word may reach here (hash_padded) */
    h = finish(fold(h, x));

    const at_ans_t *a;
    bool is_own = false;
    bool keep12 = false;
    unsigned rcode_over = 0;
    /* The table to look in: the only image's, or that of the image serving the zone (the
     * deepest apex among the name's suffixes, as the general path finds it). last: the
     * shortest suffix that may be the closest encloser. */
    const zj_anstab_t *t;
    int last;
    if (set->n_images == 1) {
        t = set->images[0]->anstab;
        /* no directory (an edited set not yet indexed): the general path answers REFUSED */
        if (t == NULL || set->dir.slots == NULL) {
            return ZJ_ANSTAB_PASS;
        }
        last = (int)labels - t->min_labels;
    } else {
        const zj_imgdir_slot_t *s =
            zj_imgdir_deepest(&set->dir, lname, qlen, off, (int)labels, 0, &last);
        if (s == NULL || s->img->anstab == NULL) {
            return ZJ_ANSTAB_PASS;
        }
        t = s->img->anstab;
    }
    const at_node_t *n = find_h(t, h, lname, qlen);
    if (n != NULL) {
        a = by_type(t, n, qtype, &is_own);
    } else {
        /* the closest encloser: the first suffix in the table */
        int k = (int)labels - t->max_labels;
        k = k < 1 ? 1 : k;
        if (last - k >= AT_WALK_MAX) {
            return ZJ_ANSTAB_PASS;
        }
        for (; k <= last; k++) {
            size_t sl = qlen - off[k];
            n = find_h(t, hash_padded(AT_SEED, lname + off[k], sl), lname + off[k], sl);
            if (n != NULL) {
                break;
            }
        }
        if (n == NULL) {
            return ZJ_ANSTAB_PASS;
        }
        switch (n->below_kind) {
        case AT_BELOW_NX:
            a = &t->ans[n->below];
            rcode_over = ZJ_RCODE_NXDOMAIN;
            break;
        case AT_BELOW_REFERRAL:
            a = &t->ans[n->below];
            break;
        case AT_BELOW_WILD:
            a = by_type(t, &t->nodes[n->below], qtype, &is_own);
            keep12 = is_own;
            break;
        default:
            return ZJ_ANSTAB_PASS;
        }
    }
    size_t reserve = has_edns ? 11 : 0;
    if (a == NULL || a->body == NULL || qend + a->len + reserve > limit ||
        (keep12 && (a->flags & AT_NO_SYNTH))) {
        return ZJ_ANSTAB_PASS;
    }

    uint8_t *body = out + qend;
    memcpy(body, a->body, a->len);
    unsigned shift = (unsigned)(qlen - a->base_len);
    if (shift != 0) {
        const uint8_t *pl = a->body + a->len + ((uintptr_t)(a->body + a->len) & 1u);
        for (unsigned j = keep12 ? a->n_ptrs12 : 0; j < a->n_ptrs; j++) {
            uint16_t p;
            memcpy(&p, pl + 2 * j, 2);
            zj_put16(body + p, (uint16_t)(zj_be16(body + p) + shift));
        }
    }
    size_t pos = qend + a->len;
    unsigned rcode = rcode_over ? rcode_over : (a->flags & AT_RCODE_MASK);
    out[2] = (uint8_t)(0x80u | (pkt[2] & 0x01u) | ((a->flags & AT_AA) ? 0x04u : 0u));
    out[3] = (uint8_t)((pkt[3] & 0x10u) | rcode);
    zj_put16(out + 6, a->an);
    zj_put16(out + 8, a->ns);
    zj_put16(out + 10, (uint16_t)(a->ar + has_edns));
    if (has_edns) {
        uint8_t *e = out + pos;
        e[0] = 0;
        zj_put16(e + 1, ZJ_T_OPT);
        zj_put16(e + 3, rs->cfg->edns_payload);
        zj_put32(e + 5, pkt[qend + 7] & 0x80u ? ZJ_EDNS_DO : 0u);
        zj_put16(e + 9, 0);
        pos += 11;
    }
    /* the counters zj_answer_general would move (the conditional ones only when they move) */
    ZJ_ANSWER_STAT(rs->stats.queries, 1);
    ZJ_ANSWER_STAT(rs->stats.responses, 1);
    ZJ_ANSWER_STAT(rs->stats.table, 1);
    ZJ_ANSWER_STAT(rs->stats.rcode[rcode], 1);
    if (unlikely(is_tcp)) {
        ZJ_ANSWER_STAT(rs->stats.tcp, 1);
    }
    if (has_edns) {
        ZJ_ANSWER_STAT(rs->stats.edns, 1);
    }
    if (unlikely(a->flags & AT_REFERRAL)) {
        ZJ_ANSWER_STAT(rs->stats.referrals, 1);
    }
    return pos;
}

/* ---- Cache warming ----------------------------------------------------------------------- */

void zj_anstab_prefetch_start(const zj_imgset_t *set, const uint8_t *pkt, size_t len,
                              zj_anstab_hint_t *hint)
{
    hint->t = NULL;
    hint->stage = 0;
    uint8_t off[ZJ_DNS_MAX_LABELS];
    unsigned labels = 0;
    size_t qlen = scan_qname(pkt, len, off, &labels);
    size_t o = ZJ_DNS_HEADER_LEN + qlen - 1; /* the root byte */
    if (qlen == 0 || o + 3 > len) {
        return; /* no name the table holds, or no QTYPE */
    }
    /* lower-cased and zero-padded to whole words, as hash_padded reads it */
    uint8_t lname[ZJ_DNS_MAX_NAME + 16];
    memcpy(lname, pkt + ZJ_DNS_HEADER_LEN, qlen);
    memset(lname + qlen, 0, 16);
    for (size_t i = 0; i < qlen; i += 8) {
        uint64_t x;
        memcpy(&x, lname + i, 8);
        x = zj_lower8(x);
        memcpy(lname + i, &x, 8);
    }
    const zj_anstab_t *t = NULL;
    if (set->n_images == 1) {
        t = set->images[0]->anstab;
    } else if (set->dir.slots != NULL) {
        int last;
        const zj_imgdir_slot_t *d =
            zj_imgdir_deepest(&set->dir, lname, qlen, off, (int)labels, 0, &last);
        t = d != NULL ? d->img->anstab : NULL;
    }
    if (t == NULL) {
        return;
    }
    hint->t = t;
    hint->h = hash_padded(AT_SEED, lname, qlen);
    hint->qtype = zj_be16(pkt + o + 1);
    hint->at = &t->slots[(size_t)hint->h & t->mask];
    __builtin_prefetch(hint->at);
}

void zj_anstab_prefetch_step(zj_anstab_hint_t *hint)
{
    const zj_anstab_t *t = hint->t;
    if (t == NULL) {
        return;
    }
    const void *next = NULL;
    switch (hint->stage) {
    case 0: { /* the slots: the node of the first tag that matches, as find_h probes */
        uint32_t tag = (uint32_t)(hint->h >> 32);
        for (size_t i = (size_t)hint->h & t->mask; t->slots[i].node != 0; i = (i + 1) & t->mask) {
            if (t->slots[i].tag == tag) {
                next = &t->nodes[t->slots[i].node - 1];
                break;
            }
        }
        break;
    }
    case 1: { /* the node: its name (compared) and its answers */
        const at_node_t *n = hint->at;
        __builtin_prefetch(n->name);
        if (n->n_types > 0) {
            hint->n_types = n->n_types;
            next = &t->ans[n->first];
        }
        break;
    }
    case 2: { /* the answers: the body of the query's type */
        const at_ans_t *a = hint->at;
        for (unsigned i = 0; i < hint->n_types; i++) {
            if (a[i].qtype == hint->qtype) {
                next = a[i].body;
                break;
            }
        }
        break;
    }
    default:
        break;
    }
    if (next == NULL) {
        hint->t = NULL;
        return;
    }
    __builtin_prefetch(next);
    hint->at = next;
    hint->stage++;
}
