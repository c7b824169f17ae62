/* The answer path: parse, find the zone, resolve (RFC 1034 §4.3.2), copy precompiled RRsets.
 *
 * Each RRset in the image is already in response wire format with a compression pointer to the
 * question name as its owner, so an answer for the query name is one memcpy; other owners
 * (CNAME targets, the zone apex, glue) get their pointer patched per RR. Names are compressed
 * only against the question and against names this response wrote in full (a 64-entry table,
 * below); RDATA names stay as the image has them (uncompressed), which costs a few bytes per
 * NS/MX/CNAME and saves all per-query name encoding.
 *
 * Size rules: the whole response is built against a limit (512, the EDNS size the client sent
 * capped at ours, or 65535 on TCP) with room reserved for our OPT. An answer or authority RRset
 * that does not fit sets TC and ends the message (whole RRsets only, RFC 2181 §9); an
 * additional RRset that does not fit is left out, except glue a referral needs (RFC 9471).
 *
 * Routing policies (docs/policies.md): wherever a looked-up RRset is written (exact and wildcard
 * answers, CNAME steps, ANY, the A/AAAA of additional targets) a policy RRset is replaced by the
 * record sets zj_policy_choose picks for the client, each an ordinary precompiled RRset. The
 * client is the ECS address when the query has one, else the packet's source; the ECS option of
 * the response carries the largest scope of a policy choice in the answer section (RFC 7871
 * §7.2.1), and the random choices draw on the responder's own generator.
 *
 * Nothing here allocates, locks, logs or makes a system call. */
#include "dns/answer.h"

#include <string.h>
#include <time.h>

#include <netinet/in.h>

#include "dns/anstab.h"
#include "dns/query.h"
#include "dns/rrl.h"
#include "policy/policy.h"
#include "zonejet/dname.h"
#include "zonejet/wire.h"
#include "zonejet/zone.h"
#include "zone/imgset_internal.h"

/* Compression targets per response. Each RRset owner written in full or RDATA target that an
 * additional record may point at takes one entry; 64 covers a referral with 13 NS names and
 * their glue, and a full 8-step CNAME chain, with room to spare. A name that finds no free entry
 * is simply not a compression target. */
#define COMP_MAX 64
/* CNAME/DNAME chain bound (RFC 1034 §3.6.2 warns of loops; Knot and NSD stop near here). */
#define CHAIN_MAX 8
/* Additional records: at most this many targets per response (bounds the work per query). */
#define ADDL_MAX 32
/* "keep the TTLs of the image" for put_rrset's ttl argument (TTLs are below 2^31, RFC 2181 §8) */
#define TTL_KEEP 0xFFFFFFFFu
/* Label comparisons one name may spend searching earlier names for compression. An ordinary
 * name costs about one comparison per table entry and suffix (a few hundred at most); zone
 * content with many deep names that differ only near the root could otherwise cost
 * labels x entries x depth per name (an MX answer of 240 such names took 216 ms). Past the
 * budget the name is still compressed against the question, just not against the table. */
#define COMP_WORK_MAX 512

typedef struct resp {
    uint8_t *buf;
    size_t pos;
    size_t limit; /* message size limit minus the room reserved for our OPT */
    uint16_t an, ns, ar;
    bool tc;
    const zj_qname_t *q; /* the question name (lower case), written at offset 12 */
    uint8_t n_comp;
    uint16_t comp_off[COMP_MAX]; /* offsets of uncompressed names inside buf */
    uint32_t comp_work;          /* label comparisons left for the name being written */
    bool is_comp_exhausted;      /* some name ran out of comp_work */
    /* response class and key name for rate limiting (src/dns/rrl.h) */
    int rrl_cls;
    const uint8_t *rrl_key;
    size_t rrl_key_len;
    /* routing policies: who asks (worked out at the first policy RRset), the generator, and
     * the largest ECS scope of a choice in the answer section */
    const zj_query_t *qp;
    const struct sockaddr *src;
    const struct zj_geo *geo;
    uint64_t *rng;
    zj_client_t client;
    bool has_client;
    bool used_policy;
    bool is_ecs_mapped;    /* the client is the IPv4 address of an IPv4-mapped ECS prefix */
    bool is_scope_by_addr; /* a choice in the answer section looked at the client's address */
    uint8_t scope;         /* in the client's family (IPv4 bits for a mapped ECS address) */
} resp_t;

static void rrl_class(resp_t *r, int cls, const uint8_t *key, size_t len)
{
    r->rrl_cls = cls;
    r->rrl_key = key;
    r->rrl_key_len = len;
}

void zj_answer_cfg_default(zj_answer_cfg_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->edns_payload = 1232;
}

void zj_responder_init(zj_responder_t *r, const zj_answer_cfg_t *cfg, uint64_t seed)
{
    memset(r, 0, sizeof(*r));
    r->cfg = cfg;
    r->rng[0] = seed ^ 0x9E3779B97F4A7C15ull;
    r->rng[1] = (seed << 1) | 1;
}

static inline uint8_t lower(uint8_t c)
{
    return (uint8_t)(c + ((uint8_t)(c - 'A') < 26u ? 32u : 0u));
}

/* Does the name at response offset o (possibly ending in pointers) equal the uncompressed
 * lower-case name s? Offsets in the table are label starts this response wrote, so the walk
 * stays inside what was written; the hop bound guards against a bug, not against input. */
static bool name_eq_resp(resp_t *r, size_t o, const uint8_t *s)
{
    for (int hops = 0; hops < 16 && r->comp_work > 0;) {
        r->comp_work--;
        uint8_t l = r->buf[o];
        if ((l & 0xC0) == 0xC0) {
            o = (size_t)(zj_be16(r->buf + o) & 0x3FFF);
            hops++;
            continue;
        }
        if (l != *s) {
            return false;
        }
        if (l == 0) {
            return true;
        }
        for (uint8_t k = 1; k <= l; k++) {
            if (lower(r->buf[o + k]) != s[k]) {
                return false;
            }
        }
        o += (size_t)l + 1;
        s += l + 1;
    }
    return false;
}

/* Pointer to the question name's tail when it equals the lower-case suffix s (len bytes).
 * Only label starts are targets: a pointer into the middle of a label would decode to the
 * same bytes, but decoders that check label boundaries deserve a plain message. */
static uint16_t qname_ptr(const resp_t *r, const uint8_t *s, size_t len)
{
    const zj_qname_t *q = r->q;
    if (len > q->len) {
        return 0;
    }
    size_t off = (size_t)q->len - len;
    int k = 0;
    while (k < q->labels && q->off[k] < off) {
        k++;
    }
    if (q->off[k] != off || memcmp(q->name + off, s, len) != 0) {
        return 0;
    }
    return (uint16_t)(0xC000u | (ZJ_DNS_HEADER_LEN + off));
}

static uint16_t table_ptr(resp_t *r, const uint8_t *s)
{
    for (uint8_t i = 0; i < r->n_comp && r->comp_work > 0; i++) {
        if (name_eq_resp(r, r->comp_off[i], s)) {
            return (uint16_t)(0xC000u | r->comp_off[i]);
        }
    }
    return 0;
}

/* Write the uncompressed lower-case name at r->pos, compressed (RFC 1035 §4.1.4): the longest
 * suffix found in the question or among names this response wrote becomes a pointer. The
 * question is tried first (one compare per label, and it usually holds the zone apex); the
 * table only for the labels in front of that. Returns bytes written, or 0 (nothing written)
 * if it does not fit. */
static size_t write_name(resp_t *r, const uint8_t *name, size_t len)
{
    size_t i = len - 1; /* the root label */
    uint16_t ptr = 0;
    r->comp_work = COMP_WORK_MAX;
    for (size_t k = 0; name[k] != 0; k += (size_t)name[k] + 1) {
        uint16_t p = qname_ptr(r, name + k, len - k);
        if (p != 0) {
            i = k;
            ptr = p;
            break;
        }
    }
    if (r->n_comp > 0) {
        for (size_t k = 0; k < i; k += (size_t)name[k] + 1) {
            uint16_t p = table_ptr(r, name + k);
            if (p != 0) {
                i = k;
                ptr = p;
                break;
            }
        }
    }
    r->is_comp_exhausted |= r->comp_work == 0;
    size_t need = ptr ? i + 2 : len;
    if (r->pos + need > r->limit) {
        return 0;
    }
    uint8_t *out = r->buf + r->pos;
    memcpy(out, name, i);
    /* the literal labels become compression targets for later names */
    for (size_t k = 0; k < i; k += (size_t)name[k] + 1) {
        if (r->n_comp < COMP_MAX && r->pos + k < 0x3FFF) {
            r->comp_off[r->n_comp++] = (uint16_t)(r->pos + k);
        }
    }
    if (ptr) {
        zj_put16(out + i, ptr);
    } else {
        out[i] = 0;
    }
    r->pos += need;
    return need;
}

/* RDATA of a compressible type, rewritten with compressed names. Returns false if it does
 * not fit. The image validated these RDATA layouts at open (names are whole). */
static bool write_rdata_compressed(resp_t *r, uint16_t type, const uint8_t *rd, size_t rdlen)
{
    size_t fixed = type == ZJ_T_MX ? 2 : 0;
    if (fixed > rdlen || r->pos + fixed > r->limit) {
        return false;
    }
    memcpy(r->buf + r->pos, rd, fixed);
    r->pos += fixed;
    size_t i = fixed;
    int names = type == ZJ_T_SOA ? 2 : 1;
    for (int n = 0; n < names; n++) {
        int nl = zj_dname_len(rd + i, rdlen - i);
        if (nl < 0) {
            return false;
        }
        if (write_name(r, rd + i, (size_t)nl) == 0) {
            return false;
        }
        i += (size_t)nl;
    }
    size_t rest = rdlen - i; /* SOA's five counters */
    if (r->pos + rest > r->limit) {
        return false;
    }
    memcpy(r->buf + r->pos, rd + i, rest);
    r->pos += rest;
    return true;
}

/* Append one RRset with owner lname (lower case). Returns false, writing nothing, when it does
 * not fit. ttl_override other than TTL_KEEP replaces every RR's TTL (negative answers' SOA). */
static bool put_rrset(resp_t *r, const zj_image_t *img, uint32_t rrset, const uint8_t *lname,
                      size_t lname_len, uint32_t ttl_override)
{
    const zj_img_rrset_d *rs = &img->rrsets[rrset];
    const uint8_t *w = img->wire + rs->wire_off;
    bool compress = zj_rdata_names_compressed(rs->type);
    bool at_qname = lname_len == r->q->len && memcmp(lname, r->q->name, lname_len) == 0;
    size_t start = r->pos;
    uint8_t saved_comp = r->n_comp;
    if (at_qname && !compress) {
        /* the fast path: owner is the question, RDATA as stored: one copy */
        if (r->pos + rs->wire_len > r->limit) {
            return false;
        }
        memcpy(r->buf + r->pos, w, rs->wire_len);
        r->pos += rs->wire_len;
        if (ttl_override != TTL_KEEP) {
            for (size_t p = start; p < r->pos; p += 12u + zj_be16(r->buf + p + 10)) {
                zj_put32(r->buf + p + 6, ttl_override);
            }
        }
        return true;
    }
    uint16_t owner_ptr = 0;
    size_t i = 0;
    for (uint16_t k = 0; k < rs->n_rr; k++) {
        size_t rdlen = zj_be16(w + i + 10);
        /* owner: the first RR writes it (compressed), the others point at the first */
        if (owner_ptr == 0) {
            size_t at = r->pos;
            size_t n = write_name(r, lname, lname_len);
            if (n == 0) {
                goto undo;
            }
            owner_ptr = n == 2 ? zj_be16(r->buf + at) : (uint16_t)(0xC000u | at);
            if (at >= 0x3FFF && n != 2) {
                owner_ptr = 0; /* beyond pointer range: every RR writes its owner */
            }
        } else {
            if (r->pos + 2 > r->limit) {
                goto undo;
            }
            zj_put16(r->buf + r->pos, owner_ptr);
            r->pos += 2;
        }
        if (r->pos + 10 > r->limit) {
            goto undo;
        }
        uint8_t *hdr = r->buf + r->pos;
        memcpy(hdr, w + i + 2, 10);
        if (ttl_override != TTL_KEEP) {
            zj_put32(hdr + 4, ttl_override);
        }
        r->pos += 10;
        if (compress) {
            size_t rd_start = r->pos;
            if (!write_rdata_compressed(r, rs->type, w + i + 12, rdlen)) {
                goto undo;
            }
            zj_put16(hdr + 8, (uint16_t)(r->pos - rd_start));
        } else {
            if (r->pos + rdlen > r->limit) {
                goto undo;
            }
            memcpy(r->buf + r->pos, w + i + 12, rdlen);
            r->pos += rdlen;
        }
        i += 12 + rdlen;
    }
    return true;
undo:
    r->pos = start;
    r->n_comp = saved_comp;
    return false;
}

/* An ECS address of family 2 inside ::ffff:0:0/96 (RFC 4291 §2.5.5.2), with at least those 96
 * bits given: it names an IPv4 client (or network). */
static bool ecs_is_v4_mapped(const zj_query_t *qp)
{
    static const uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};
    return qp->ecs_family == 2 && qp->ecs_source >= 96 && qp->ecs_addr_len >= 12 &&
           memcmp(qp->ecs_addr, prefix, sizeof(prefix)) == 0;
}

/* The client a policy answers (docs/policies.md): the ECS address when the query carries one,
 * else the packet's source; an IPv4-mapped IPv6 address, from either, is the IPv4 client it
 * stands for (an ECS ::ffff:a.b.c.d/96+n is a.b.c.d/n; put_opt then reports the scope back in
 * the query's terms, 96 + the IPv4 scope).
 * RFC 7871 §7.1.2: a SOURCE PREFIX-LENGTH of 0 means the client's address must not be used; the
 * query then carries no address to tailor on, so the packet's source (the resolver) is used as
 * for a query without the option, and put_opt answers with scope 0 (§7.3.1: such an answer is
 * cached for other /0 queries only). Worked out once per response, at the first policy RRset. */
static const zj_client_t *policy_client(resp_t *r)
{
    zj_client_t *c = &r->client;
    const zj_query_t *qp = r->qp;
    if (r->has_client) {
        return c;
    }
    r->has_client = true;
    memset(c, 0, sizeof(*c));
    if (qp->has_ecs && qp->ecs_source > 0 && ecs_is_v4_mapped(qp)) {
        c->family = AF_INET;
        memcpy(c->addr, qp->ecs_addr + 12, qp->ecs_addr_len - 12u);
        c->source_len = (uint8_t)(qp->ecs_source - 96u);
        r->is_ecs_mapped = true;
    } else if (qp->has_ecs && qp->ecs_source > 0) {
        /* query.c admitted families 1 and 2 only, the address cut to the source prefix */
        c->family = qp->ecs_family == 1 ? AF_INET : AF_INET6;
        memcpy(c->addr, qp->ecs_addr, qp->ecs_addr_len);
        c->source_len = qp->ecs_source;
    } else if (r->src != NULL && r->src->sa_family == AF_INET) {
        struct sockaddr_in s4;
        memcpy(&s4, r->src, sizeof(s4));
        c->family = AF_INET;
        memcpy(c->addr, &s4.sin_addr, 4);
        c->source_len = 32;
    } else if (r->src != NULL && r->src->sa_family == AF_INET6) {
        struct sockaddr_in6 s6;
        memcpy(&s6, r->src, sizeof(s6));
        if (IN6_IS_ADDR_V4MAPPED(&s6.sin6_addr)) {
            c->family = AF_INET;
            memcpy(c->addr, s6.sin6_addr.s6_addr + 12, 4);
            c->source_len = 32;
        } else {
            c->family = AF_INET6;
            memcpy(c->addr, s6.sin6_addr.s6_addr, 16);
            c->source_len = 128;
        }
    }
    return c;
}

/* The record sets that answer for RRSETS entry rs: rs itself, or the sets its policy chooses
 * for the client (0: none, NODATA). in_answer: the choice's ECS scope counts for the response
 * (RFC 7871 §7.3.1: additional records are never tied to a network, so theirs does not). */
static unsigned pick_sets(resp_t *r, const zj_image_t *img, uint32_t rs, bool in_answer,
                          uint32_t out[ZJ_POLICY_MAX_ANSWER])
{
    const zj_img_rrset_d *d = &img->rrsets[rs];
    if (!zj_rrset_is_policy(d)) {
        out[0] = rs;
        return 1;
    }
    if (d->wire_off >= img->n_policies) {
        return 0; /* image validation rules this out; answer NODATA rather than read past */
    }
    zj_policy_env_t env = {.client = policy_client(r), .geo = r->geo, .rng = r->rng};
    uint8_t scope = 0;
    unsigned n = zj_policy_choose(img, d->wire_off, &env, out, &scope);
    r->used_policy = true;
    uint16_t kind = img->policies[d->wire_off].kind;
    if (in_answer && (kind == ZJ_POL_GEO || kind == ZJ_POL_CIDR || kind == ZJ_POL_LATENCY)) {
        r->is_scope_by_addr = true;
    }
    if (in_answer && scope > r->scope) {
        r->scope = scope;
    }
    return n;
}

/* Answer/authority RRset: on overflow set TC (the message ends here). */
static bool put_section(resp_t *r, uint16_t *count, const zj_image_t *img, uint32_t rrset,
                        const uint8_t *lname, size_t len, uint32_t ttl_override)
{
    if (r->tc) {
        return false;
    }
    if (!put_rrset(r, img, rrset, lname, len, ttl_override)) {
        r->tc = true;
        return false;
    }
    *count = (uint16_t)(*count + img->rrsets[rrset].n_rr);
    return true;
}

/* The record sets a policy chose for one owner and type (or one plain RRset): to the client they
 * are one RRset, so they go in whole or not at all (RFC 2181 §9). Returns false, with nothing
 * written, when they do not fit. */
static bool put_sets_whole(resp_t *r, uint16_t *count, const zj_image_t *img, const uint32_t *sets,
                           unsigned n, const uint8_t *lname, size_t len)
{
    size_t pos = r->pos;
    uint16_t was = *count;
    uint8_t n_comp = r->n_comp;
    for (unsigned i = 0; i < n; i++) {
        if (!put_rrset(r, img, sets[i], lname, len, TTL_KEEP)) {
            r->pos = pos;
            *count = was;
            r->n_comp = n_comp;
            return false;
        }
        *count = (uint16_t)(*count + img->rrsets[sets[i]].n_rr);
    }
    return true;
}

/* Answer/authority: on overflow TC is set and the message ends here. */
static void put_sets(resp_t *r, uint16_t *count, const zj_image_t *img, const uint32_t *sets,
                     unsigned n, const uint8_t *lname, size_t len)
{
    if (!r->tc && !put_sets_whole(r, count, img, sets, n, lname, len)) {
        r->tc = true;
    }
}

static void put_node_rrset(resp_t *r, uint16_t *count, const zj_image_t *img, uint32_t node,
                           uint32_t rrset)
{
    const zj_img_node_d *n = &img->nodes[node];
    put_section(r, count, img, rrset, img->names + n->name_off, n->name_len, TTL_KEEP);
}

/* The zone's SOA in authority with the negative TTL (RFC 2308 §3, §5). */
static void put_soa(resp_t *r, const zj_image_t *img, uint32_t zone)
{
    const zj_img_zone_d *z = &img->zones[zone];
    const zj_img_node_d *a = &img->nodes[z->apex_node];
    if (r->tc) {
        return;
    }
    if (!put_rrset(r, img, z->soa_rrset, img->names + a->name_off, a->name_len, z->neg_ttl)) {
        r->tc = true;
        return;
    }
    r->ns = (uint16_t)(r->ns + img->rrsets[z->soa_rrset].n_rr);
}

/* A and AAAA of one additional target (a policy RRset: the sets chosen for the client). With
 * required (referral glue below the cut, RFC 9471 §3), overflow sets TC; otherwise it silently
 * leaves records out. */
static void put_target(resp_t *r, const zj_image_t *img, uint32_t t, bool required)
{
    static const uint16_t types[2] = {ZJ_T_A, ZJ_T_AAAA};
    const zj_img_node_d *tn = &img->nodes[t];
    for (int k = 0; k < 2; k++) {
        uint32_t ar = zj_node_find_rrset(img, t, types[k]);
        if (ar == ZJ_IMG_NONE) {
            continue;
        }
        uint32_t sets[ZJ_POLICY_MAX_ANSWER];
        unsigned n = pick_sets(r, img, ar, false, sets);
        if (!put_sets_whole(r, &r->ar, img, sets, n, img->names + tn->name_off, tn->name_len)) {
            r->tc |= required; /* glue a referral needs (RFC 9471); other records stay out */
        }
    }
}

/* A and AAAA of the targets of the RRsets rrsets[0, n) into additional, each target once. */
static void put_additional(resp_t *r, const zj_image_t *img, const uint32_t *rrsets, unsigned n,
                           uint32_t cut)
{
    uint32_t seen[ADDL_MAX];
    unsigned n_seen = 0;
    for (unsigned s = 0; s < n; s++) {
        const zj_img_rrset_d *rs = &img->rrsets[rrsets[s]];
        for (uint16_t i = 0; i < rs->n_addl && n_seen < ADDL_MAX; i++) {
            uint32_t t = img->addl[rs->addl_off + i];
            bool dup = false;
            for (unsigned k = 0; k < n_seen; k++) {
                dup |= seen[k] == t;
            }
            if (dup) {
                continue;
            }
            seen[n_seen++] = t;
            bool required = false;
            if (cut != ZJ_IMG_NONE) {
                const zj_img_node_d *cn = &img->nodes[cut];
                required = zj_dname_is_sub(zj_node_name(img, t), img->names + cn->name_off);
            }
            put_target(r, img, t, required);
        }
    }
}

/* RFC 8482 §4.1: over UDP answer ANY with one RRset; over TCP with all of them. When nothing is
 * left to answer with (every RRset is a policy that chose no set for this client), the answer
 * is NODATA and carries the zone's SOA (RFC 2308 §2.2). Returns false for NODATA. */
static bool answer_any(resp_t *r, const zj_image_t *img, uint32_t zone, uint32_t node,
                       const uint8_t *lname, size_t len, bool is_tcp)
{
    const zj_img_node_d *n = &img->nodes[node];
    bool has_answer = false;
    for (uint32_t i = n->rrset_first; i < n->rrset_first + n->n_rrsets; i++) {
        if (img->rrsets[i].type == ZJ_T_RRSIG) {
            continue;
        }
        uint32_t sets[ZJ_POLICY_MAX_ANSWER];
        unsigned k = pick_sets(r, img, i, true, sets);
        put_sets(r, &r->an, img, sets, k, lname, len);
        if (k > 0) {
            has_answer = true;
            if (!is_tcp) {
                break;
            }
        }
    }
    if (!has_answer) {
        put_soa(r, img, zone);
    }
    return has_answer;
}

/* DNAME substitution (RFC 6672 §2.2): qname = prefix + owner  ->  prefix + target.
 * Returns the new name's length, or 0 if it would exceed 255 bytes (YXDOMAIN). */
static size_t dname_substitute(const zj_qname_t *q, const zj_image_t *img, uint32_t node,
                               uint32_t rrset, uint8_t *out)
{
    const zj_img_node_d *n = &img->nodes[node];
    const zj_img_rrset_d *rs = &img->rrsets[rrset];
    const uint8_t *target = img->wire + rs->wire_off + 12;
    size_t tlen = zj_be16(target - 2);
    size_t prefix = q->off[q->labels - n->labels];
    if (prefix + tlen > ZJ_DNS_MAX_NAME) {
        return 0;
    }
    memcpy(out, q->name, prefix);
    zj_dname_lower(out + prefix, target);
    return prefix + tlen;
}

/* Write a synthesized CNAME (owner lname -> target) with the DNAME's TTL (RFC 6672 §3.1). */
static bool put_synth_cname(resp_t *r, const uint8_t *lname, size_t len, uint32_t ttl,
                            const uint8_t *target, size_t tlen)
{
    size_t start = r->pos;
    uint8_t saved_comp = r->n_comp;
    if (r->tc || write_name(r, lname, len) == 0 || r->pos + 10 > r->limit) {
        goto full;
    }
    uint8_t *hdr = r->buf + r->pos;
    zj_put16(hdr, ZJ_T_CNAME);
    zj_put16(hdr + 2, ZJ_C_IN);
    zj_put32(hdr + 4, ttl);
    r->pos += 10;
    size_t n = write_name(r, target, tlen);
    if (n == 0) {
        goto full;
    }
    zj_put16(hdr + 8, (uint16_t)n);
    r->an++;
    return true;
full:
    r->pos = start;
    r->n_comp = saved_comp;
    r->tc = true;
    return false;
}

/* Find the serving zone: the deepest apex that is a suffix of the name, across all images.
 * DS is answered by the parent side of a cut (RFC 4035 §3.1.4.1), so for DS an apex equal to
 * the name is used only when no zone above it is served. One directory probe per candidate
 * suffix (zone/imgset_internal.h), deepest first: no suffix has more labels than the deepest
 * apex of the set nor fewer than the shallowest, so at most max - min + 1 probes, whatever the
 * number of images. */
static bool find_zone_in(const zj_imgset_t *set, const zj_qname_t *q, bool below_apex,
                         const zj_image_t **img_out, uint32_t *zone_out)
{
    int k = 0;
    const zj_imgdir_slot_t *s =
        zj_imgdir_deepest(&set->dir, q->name, q->len, q->off, q->labels, below_apex ? 1 : 0, &k);
    if (s == NULL) {
        return false; /* no apex above the name, or an unindexed set (zj_imgset_index) */
    }
    *img_out = s->img;
    *zone_out = s->zone;
    return true;
}

static bool find_zone(const zj_imgset_t *set, const zj_qname_t *q, uint16_t qtype,
                      const zj_image_t **img_out, uint32_t *zone_out)
{
    if (qtype == ZJ_T_DS && find_zone_in(set, q, true, img_out, zone_out)) {
        return true;
    }
    return find_zone_in(set, q, false, img_out, zone_out);
}

/* Loop check for CNAME/DNAME chains: true if node was used at an earlier step. Every step
 * records its node, seen or not, so that later steps only ever read recorded entries. */
static bool chain_seen(uint32_t *visited, int step, uint32_t node)
{
    bool seen = false;
    for (int k = 0; k < step && k < CHAIN_MAX; k++) {
        seen |= visited[k] == node;
    }
    if (step < CHAIN_MAX) {
        visited[step] = node;
    }
    return seen;
}

/* RFC 1034 §4.3.2 from step 3, following CNAME and DNAME within the zone. Returns the rcode. */
static int resolve(resp_t *r, const zj_image_t *img, uint32_t zone, const zj_qname_t *q0,
                   uint16_t qtype, bool is_tcp, bool *aa, zj_answer_stats_t *st)
{
    zj_qname_t qbuf;
    const zj_qname_t *q = q0;
    const uint8_t *apex = img->names + img->zones[zone].name_off;
    uint32_t visited[CHAIN_MAX];
    for (int step = 0; step <= CHAIN_MAX; step++) {
        zj_lookup_t lk;
        zj_zone_lookup(img, zone, q, qtype, &lk);
        if (qtype == ZJ_T_ANY && (lk.kind == ZJ_LOOKUP_NODATA || lk.kind == ZJ_LOOKUP_CNAME) &&
            img->nodes[lk.node].n_rrsets > 0) {
            if (!answer_any(r, img, zone, lk.node, q->name, q->len, is_tcp)) {
                rrl_class(r, ZJ_RRL_CLS_NODATA, q0->name, q0->len);
            }
            return ZJ_RCODE_NOERROR;
        }
        if (lk.rrset == ZJ_IMG_NONE && lk.kind != ZJ_LOOKUP_NODATA &&
            lk.kind != ZJ_LOOKUP_NXDOMAIN) {
            return ZJ_RCODE_SERVFAIL; /* unreachable with a validated image; never read past */
        }
        switch (lk.kind) {
        case ZJ_LOOKUP_EXACT: {
            if (lk.wildcard) {
                rrl_class(r, ZJ_RRL_CLS_WILDCARD, zj_node_name(img, lk.node),
                          img->nodes[lk.node].name_len);
            } else {
                rrl_class(r, ZJ_RRL_CLS_POSITIVE, q0->name, q0->len);
            }
            uint32_t sets[ZJ_POLICY_MAX_ANSWER];
            unsigned n = pick_sets(r, img, lk.rrset, true, sets);
            if (n == 0) {
                /* a geo or cidr policy with no match and no default */
                rrl_class(r, ZJ_RRL_CLS_NODATA, q0->name, q0->len);
                put_soa(r, img, zone);
                return ZJ_RCODE_NOERROR;
            }
            put_sets(r, &r->an, img, sets, n, q->name, q->len);
            if (!r->tc) {
                put_additional(r, img, sets, n, ZJ_IMG_NONE);
            }
            return ZJ_RCODE_NOERROR;
        }
        case ZJ_LOOKUP_NODATA:
            rrl_class(r, ZJ_RRL_CLS_NODATA, q0->name, q0->len);
            put_soa(r, img, zone);
            return ZJ_RCODE_NOERROR;
        case ZJ_LOOKUP_NXDOMAIN:
            /* one bucket per zone: random subdomains must not each get their own */
            rrl_class(r, ZJ_RRL_CLS_NXDOMAIN, apex,
                      img->nodes[img->zones[zone].apex_node].name_len);
            put_soa(r, img, zone); /* RFC 6604: rcode is that of the last name in a chain */
            return ZJ_RCODE_NXDOMAIN;
        case ZJ_LOOKUP_DELEG:
            rrl_class(r, ZJ_RRL_CLS_REFERRAL, zj_node_name(img, lk.node),
                      img->nodes[lk.node].name_len);
            if (step == 0) {
                *aa = false; /* a referral is not authoritative (RFC 1034 §4.3.2 step 3b) */
                ZJ_ANSWER_STAT(st->referrals, 1);
            }
            put_node_rrset(r, &r->ns, img, lk.node, lk.rrset);
            if (!r->tc) {
                put_additional(r, img, &lk.rrset, 1, lk.node);
            }
            return ZJ_RCODE_NOERROR;
        case ZJ_LOOKUP_CNAME: {
            if (chain_seen(visited, step, lk.node)) {
                return ZJ_RCODE_NOERROR; /* loop: stop with what we have */
            }
            /* a CNAME policy: the chosen set's target drives the chain (a CNAME set holds one
             * record, so only the first choice counts) */
            uint32_t sets[ZJ_POLICY_MAX_ANSWER];
            if (pick_sets(r, img, lk.rrset, true, sets) == 0) {
                rrl_class(r, ZJ_RRL_CLS_NODATA, q0->name, q0->len);
                put_soa(r, img, zone);
                return ZJ_RCODE_NOERROR;
            }
            if (!put_section(r, &r->an, img, sets[0], q->name, q->len, TTL_KEEP)) {
                return ZJ_RCODE_NOERROR;
            }
            const zj_img_rrset_d *rs = &img->rrsets[sets[0]];
            const uint8_t *target = img->wire + rs->wire_off + 12;
            size_t tlen = zj_be16(target - 2);
            zj_qname_init(&qbuf, target, tlen);
            if (!zj_dname_is_sub(qbuf.name, apex)) {
                return ZJ_RCODE_NOERROR; /* out of zone: the resolver follows it */
            }
            q = &qbuf;
            break;
        }
        case ZJ_LOOKUP_DNAME: {
            const zj_img_node_d *dn = &img->nodes[lk.node];
            /* The same DNAME may apply again to a different name later in the chain (as Knot
             * and NSD continue); its RR goes into the answer once. CHAIN_MAX and the 255-byte
             * name limit bound a DNAME that points below itself. */
            if (!chain_seen(visited, step, lk.node) &&
                !put_section(r, &r->an, img, lk.rrset, img->names + dn->name_off, dn->name_len,
                             TTL_KEEP)) {
                return ZJ_RCODE_NOERROR;
            }
            uint8_t target[ZJ_DNS_MAX_NAME];
            size_t tlen = dname_substitute(q, img, lk.node, lk.rrset, target);
            if (tlen == 0) {
                return 6; /* YXDOMAIN (RFC 6672 §2.2) */
            }
            uint32_t ttl = zj_be32(img->wire + img->rrsets[lk.rrset].wire_off + 6);
            if (!put_synth_cname(r, q->name, q->len, ttl, target, tlen)) {
                return ZJ_RCODE_NOERROR;
            }
            if (qtype == ZJ_T_CNAME) {
                return ZJ_RCODE_NOERROR; /* the synthesized CNAME is the answer */
            }
            zj_qname_init(&qbuf, target, tlen);
            if (!zj_dname_is_sub(qbuf.name, apex)) {
                return ZJ_RCODE_NOERROR;
            }
            q = &qbuf;
            break;
        }
        default:
            return ZJ_RCODE_SERVFAIL;
        }
    }
    return ZJ_RCODE_NOERROR; /* chain longer than CHAIN_MAX: stop with what we have */
}

/* CH-class identity queries (RFC 4892 §2, and the BIND names operators expect). */
static int answer_chaos(resp_t *r, const zj_answer_cfg_t *cfg, const zj_query_t *qp,
                        const zj_qname_t *q)
{
    static const uint8_t version_bind[] = "\7version\4bind";
    static const uint8_t version_server[] = "\7version\6server";
    static const uint8_t id_server[] = "\2id\6server";
    static const uint8_t hostname_bind[] = "\10hostname\4bind";
    const char *text = NULL;
    if (qp->qtype != ZJ_T_TXT && qp->qtype != ZJ_T_ANY) {
        return ZJ_RCODE_REFUSED;
    }
    if ((q->len == sizeof(version_bind) && memcmp(q->name, version_bind, q->len) == 0) ||
        (q->len == sizeof(version_server) && memcmp(q->name, version_server, q->len) == 0)) {
        text = cfg->version;
    } else if ((q->len == sizeof(id_server) && memcmp(q->name, id_server, q->len) == 0) ||
               (q->len == sizeof(hostname_bind) && memcmp(q->name, hostname_bind, q->len) == 0)) {
        text = cfg->identity;
    }
    if (text == NULL) {
        return ZJ_RCODE_REFUSED;
    }
    size_t tl = strlen(text);
    if (tl > 255) {
        tl = 255;
    }
    if (r->pos + 12 + 1 + tl > r->limit) {
        r->tc = true;
        return ZJ_RCODE_NOERROR;
    }
    uint8_t *p = r->buf + r->pos;
    zj_put16(p, 0xC00C);
    zj_put16(p + 2, ZJ_T_TXT);
    zj_put16(p + 4, ZJ_C_CH);
    zj_put32(p + 6, 0);
    zj_put16(p + 10, (uint16_t)(tl + 1));
    p[12] = (uint8_t)tl;
    memcpy(p + 13, text, tl);
    r->pos += 13 + tl;
    r->an = 1;
    return ZJ_RCODE_NOERROR;
}

/* The ECS scope to answer with: that of the policy choices, capped at the family's width. For
 * an IPv4-mapped ECS address the choices were made on the IPv4 address, so their scope counts
 * from bit 96 of the query's address: even IPv4 scope 0 (all of IPv4) is ::ffff:0:0/96, not all
 * of IPv6, whose clients an address-driven policy may answer differently. */
static uint8_t ecs_scope(const resp_t *r, const zj_query_t *qp)
{
    uint8_t max = qp->ecs_family == 1 ? 32 : 128;
    if (qp->ecs_source == 0) {
        return 0;
    }
    if (r->is_ecs_mapped && r->is_scope_by_addr) {
        return (uint8_t)(96u + (r->scope < 32 ? r->scope : 32u));
    }
    return r->scope < max ? r->scope : max;
}

/* Room our OPT needs: 11 bytes of RR, plus NSID and ECS options when we will send them. */
static size_t opt_size(const zj_answer_cfg_t *cfg, const zj_query_t *qp)
{
    size_t n = 11;
    if (qp->nsid_requested && cfg->nsid != NULL) {
        n += 4 + cfg->nsid_len;
    }
    if (qp->has_ecs) {
        n += 4 + 4 + qp->ecs_addr_len;
    }
    return n;
}

static void put_opt(resp_t *r, const zj_answer_cfg_t *cfg, const zj_query_t *qp, int rcode)
{
    uint8_t *p = r->buf + r->pos;
    p[0] = 0; /* root owner */
    zj_put16(p + 1, ZJ_T_OPT);
    zj_put16(p + 3, cfg->edns_payload);
    uint32_t ttl = ((uint32_t)(rcode >> 4) << 24) | (qp->edns_do ? ZJ_EDNS_DO : 0);
    zj_put32(p + 5, ttl);
    size_t o = 11;
    if (qp->nsid_requested && cfg->nsid != NULL) {
        zj_put16(p + o, ZJ_EDNS_OPT_NSID);
        zj_put16(p + o + 2, cfg->nsid_len);
        memcpy(p + o + 4, cfg->nsid, cfg->nsid_len);
        o += 4u + cfg->nsid_len;
    }
    if (qp->has_ecs) {
        /* RFC 7871 §7.2.1: echo family, source prefix and address; the scope is the longest
         * prefix any policy choice in the answer depended on, 0 when none did (it may exceed the
         * source prefix: the resolver should then ask with a longer one). Source prefix 0: the
         * address was not used (policy_client), scope 0. */
        zj_put16(p + o, ZJ_EDNS_OPT_ECS);
        zj_put16(p + o + 2, (uint16_t)(4 + qp->ecs_addr_len));
        zj_put16(p + o + 4, qp->ecs_family);
        p[o + 6] = qp->ecs_source;
        p[o + 7] = ecs_scope(r, qp);
        memcpy(p + o + 8, qp->ecs_addr, qp->ecs_addr_len);
        o += 8u + qp->ecs_addr_len;
    }
    zj_put16(p + 9, (uint16_t)(o - 11));
    r->pos += o;
    r->ar++;
}

/* A response with the header (and the question when it parsed) and nothing else. */
static size_t answer_error(zj_responder_t *rs, const uint8_t *pkt, const zj_query_t *qp, int rcode,
                           uint8_t *out, size_t out_cap)
{
    size_t qlen = qp->has_question ? qp->question_end - ZJ_DNS_HEADER_LEN : 0;
    bool edns = qp->has_edns && rcode != ZJ_RCODE_FORMERR;
    size_t need = ZJ_DNS_HEADER_LEN + qlen + (edns ? 11 : 0);
    if (need > out_cap) {
        return 0;
    }
    uint16_t flags =
        (uint16_t)(ZJ_F_QR | (qp->flags & (ZJ_F_OPCODE_MASK | ZJ_F_RD | ZJ_F_CD)) | (rcode & 0xF));
    zj_put16(out, qp->id);
    zj_put16(out + 2, flags);
    zj_put16(out + 4, qp->has_question ? 1 : 0);
    zj_put16(out + 6, 0);
    zj_put16(out + 8, 0);
    zj_put16(out + 10, edns ? 1 : 0);
    memcpy(out + ZJ_DNS_HEADER_LEN, pkt + ZJ_DNS_HEADER_LEN, qlen);
    size_t pos = ZJ_DNS_HEADER_LEN + qlen;
    if (edns) {
        out[pos] = 0;
        zj_put16(out + pos + 1, ZJ_T_OPT);
        zj_put16(out + pos + 3, rs->cfg->edns_payload);
        zj_put32(out + pos + 5, ((uint32_t)(rcode >> 4) << 24) | (qp->edns_do ? ZJ_EDNS_DO : 0));
        zj_put16(out + pos + 9, 0);
        pos += 11;
    }
    if (rcode < 6) {
        ZJ_ANSWER_STAT(rs->stats.rcode[rcode], 1);
    }
    ZJ_ANSWER_STAT(rs->stats.badvers, rcode == ZJ_RCODE_BADVERS);
    ZJ_ANSWER_STAT(rs->stats.responses, 1);
    return pos;
}

/* Response rate limiting (UDP only: a TCP client has proven its address). A limited response
 * is dropped, or "slips" out as header + question with TC=1 so that a real client behind a
 * spoofed flood retries over TCP (the BIND/Knot RRL scheme). */
static size_t rrl_apply(zj_responder_t *rs, const struct sockaddr *src, const zj_query_t *qp,
                        int cls, const uint8_t *key, size_t key_len, uint8_t *out, size_t len)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts); /* vDSO: no system call */
    uint64_t now_ms = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
    int d = zj_rrl_decide(rs->cfg->rrl, src, cls, key, key_len, now_ms);
    if (d == ZJ_RRL_PASS) {
        return len;
    }
    if (d == ZJ_RRL_DROP) {
        ZJ_ANSWER_STAT(rs->stats.rrl_dropped, 1);
        return 0;
    }
    ZJ_ANSWER_STAT(rs->stats.rrl_slipped, 1);
    size_t qend = qp->has_question ? qp->question_end : ZJ_DNS_HEADER_LEN;
    uint16_t flags = (uint16_t)(zj_be16(out + 2) | ZJ_F_TC);
    flags &= (uint16_t)~ZJ_F_AA;
    zj_put16(out + 2, flags);
    zj_put16(out + 6, 0);
    zj_put16(out + 8, 0);
    zj_put16(out + 10, 0);
    return qend;
}

static size_t error_limited(zj_responder_t *rs, const struct sockaddr *src, bool limit_rate,
                            const uint8_t *pkt, const zj_query_t *qp, int rcode, uint8_t *out,
                            size_t out_cap)
{
    size_t n = answer_error(rs, pkt, qp, rcode, out, out_cap);
    if (n == 0 || !limit_rate) {
        return n;
    }
    return rrl_apply(rs, src, qp, ZJ_RRL_CLS_ERROR, NULL, 0, out, n);
}

size_t zj_answer_general(zj_responder_t *rs, const zj_imgset_t *set, const uint8_t *pkt, size_t len,
                         const struct sockaddr *src, bool is_tcp, uint8_t *out, size_t out_cap)
{
    zj_query_t qp;
    bool limit_rate = rs->cfg->rrl != NULL && !is_tcp && src != NULL;
    ZJ_ANSWER_STAT(rs->stats.queries, 1);
    ZJ_ANSWER_STAT(rs->stats.tcp, is_tcp);
    int st = zj_query_parse(pkt, len, &qp);
    ZJ_ANSWER_STAT(rs->stats.edns, qp.has_edns);
    switch (st) {
    case ZJ_Q_OK:
        break;
    case ZJ_Q_DROP:
        ZJ_ANSWER_STAT(rs->stats.dropped, 1);
        return 0;
    case ZJ_Q_NOTIMP:
        return error_limited(rs, src, limit_rate, pkt, &qp, ZJ_RCODE_NOTIMP, out, out_cap);
    case ZJ_Q_BADVERS:
        return error_limited(rs, src, limit_rate, pkt, &qp, ZJ_RCODE_BADVERS, out, out_cap);
    case ZJ_Q_REFUSED:
        return error_limited(rs, src, limit_rate, pkt, &qp, ZJ_RCODE_REFUSED, out, out_cap);
    default:
        return error_limited(rs, src, limit_rate, pkt, &qp, ZJ_RCODE_FORMERR, out, out_cap);
    }
    /* Zone transfers are TCP-only (RFC 5936 §4.2): over UDP an AXFR is FORMERR; over TCP they
     * are refused until transfers are served. Other meta-types (OPT, MAILA, MAILB) get NODATA
     * from the zone data, as Knot and NSD answer. */
    if (qp.qtype == ZJ_T_AXFR || qp.qtype == ZJ_T_IXFR) {
        return error_limited(rs, src, limit_rate, pkt, &qp,
                             is_tcp ? ZJ_RCODE_REFUSED : ZJ_RCODE_FORMERR, out, out_cap);
    }

    /* size limit: RFC 1035 §4.2.1 (512), RFC 6891 §6.2.5 (the smaller of theirs and ours) */
    size_t limit = ZJ_DNS_UDP_MIN;
    if (is_tcp) {
        limit = ZJ_DNS_MAX_MSG;
    } else if (qp.has_edns) {
        limit = qp.udp_size < rs->cfg->edns_payload ? qp.udp_size : rs->cfg->edns_payload;
        if (limit < ZJ_DNS_UDP_MIN) {
            limit = ZJ_DNS_UDP_MIN;
        }
    }
    if (limit > out_cap) {
        limit = out_cap;
    }
    size_t reserve = qp.has_edns ? opt_size(rs->cfg, &qp) : 0;
    if (qp.question_end + reserve > limit) {
        return error_limited(rs, src, limit_rate, pkt, &qp, ZJ_RCODE_FORMERR, out, out_cap);
    }

    zj_qname_t q;
    zj_qname_init(&q, qp.qname, qp.qname_len);
    resp_t r;
    r.buf = out;
    r.pos = qp.question_end;
    r.limit = limit - reserve;
    r.an = r.ns = r.ar = 0;
    r.tc = false;
    r.q = &q;
    r.n_comp = 0;
    r.comp_work = COMP_WORK_MAX;
    r.is_comp_exhausted = false;
    rrl_class(&r, ZJ_RRL_CLS_ERROR, NULL, 0);
    r.qp = &qp;
    r.src = src;
    r.geo = set != NULL ? set->geo : NULL;
    r.rng = rs->rng;
    r.has_client = false;
    r.used_policy = false;
    r.is_ecs_mapped = false;
    r.is_scope_by_addr = false;
    r.scope = 0;
    memcpy(out, pkt, qp.question_end); /* header (rewritten below) and question, byte for byte */

    bool aa = false;
    int rcode;
    const zj_image_t *img = NULL;
    uint32_t zone = 0;
    if (qp.qclass == ZJ_C_CH) {
        rcode = answer_chaos(&r, rs->cfg, &qp, &q);
        aa = rcode == ZJ_RCODE_NOERROR;
    } else if (qp.qclass != ZJ_C_IN && qp.qclass != ZJ_C_ANY) {
        rcode = ZJ_RCODE_REFUSED;
    } else if (set == NULL || !find_zone(set, &q, qp.qtype, &img, &zone)) {
        rcode = ZJ_RCODE_REFUSED; /* not authoritative for the name */
    } else {
        aa = true;
        rcode = resolve(&r, img, zone, &q, qp.qtype, is_tcp, &aa, &rs->stats);
    }

    uint16_t flags = (uint16_t)(ZJ_F_QR | (qp.flags & (ZJ_F_OPCODE_MASK | ZJ_F_RD | ZJ_F_CD)) |
                                (aa ? ZJ_F_AA : 0) | (r.tc ? ZJ_F_TC : 0) | (rcode & 0xF));
    zj_put16(out + 2, flags);
    zj_put16(out + 4, 1);
    zj_put16(out + 6, r.an);
    zj_put16(out + 8, r.ns);
    if (qp.has_edns) {
        put_opt(&r, rs->cfg, &qp, rcode);
    }
    zj_put16(out + 10, r.ar);
    ZJ_ANSWER_STAT(rs->stats.responses, 1);
    ZJ_ANSWER_STAT(rs->stats.truncated, r.tc);
    ZJ_ANSWER_STAT(rs->stats.comp_work_exhausted, r.is_comp_exhausted);
    ZJ_ANSWER_STAT(rs->stats.policy, r.used_policy);
    if (rcode < 6) {
        ZJ_ANSWER_STAT(rs->stats.rcode[rcode], 1);
    }
    if (limit_rate) {
        return rrl_apply(rs, src, &qp, r.rrl_cls, r.rrl_key, r.rrl_key_len, out, r.pos);
    }
    return r.pos;
}
