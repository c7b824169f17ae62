/* Query parsing with a sticky-error cursor (STYLE P1): reads run straight through and the error
 * is tested once per section. Names in the question must be uncompressed (a pointer there has
 * nothing to point to: RFC 1035 §4.1.4 allows pointers only to earlier names); names of the
 * records after the question may use pointers and are only skipped. */
#include "dns/query.h"

#include <string.h>

#include "zonejet/wire.h"

typedef struct cursor {
    const uint8_t *p;
    const uint8_t *start;
    const uint8_t *end;
    bool err;
} cursor_t;

static inline uint16_t cur_u16(cursor_t *c)
{
    if (c->err || c->end - c->p < 2) {
        c->err = true;
        return 0;
    }
    uint16_t v = zj_be16(c->p);
    c->p += 2;
    return v;
}

static inline uint32_t cur_u32(cursor_t *c)
{
    if (c->err || c->end - c->p < 4) {
        c->err = true;
        return 0;
    }
    uint32_t v = zj_be32(c->p);
    c->p += 4;
    return v;
}

static inline void cur_skip(cursor_t *c, size_t n)
{
    if (c->err || (size_t)(c->end - c->p) < n) {
        c->err = true;
        return;
    }
    c->p += n;
}

/* Skip a possibly compressed name; a pointer ends it (we never follow pointers here). */
static void skip_name(cursor_t *c)
{
    size_t total = 0;
    while (!c->err) {
        if (c->p >= c->end) {
            c->err = true;
            return;
        }
        uint8_t l = *c->p;
        if ((l & 0xC0) == 0xC0) {
            cur_skip(c, 2);
            return;
        }
        if (l & 0xC0) {
            c->err = true; /* extended label types are obsolete (RFC 6891 §5) */
            return;
        }
        total += (size_t)l + 1;
        if (total > ZJ_DNS_MAX_NAME) {
            c->err = true;
            return;
        }
        cur_skip(c, (size_t)l + 1);
        if (l == 0) {
            return;
        }
    }
}

/* RFC 7871 §6: family, source prefix, scope prefix, address cut to the source prefix. */
static bool parse_ecs(const uint8_t *p, uint16_t len, zj_query_t *q)
{
    if (len < 4) {
        return false;
    }
    uint16_t family = zj_be16(p);
    uint8_t source = p[2];
    uint8_t scope = p[3];
    unsigned max_bits = family == 1 ? 32 : family == 2 ? 128 : 0;
    if (max_bits == 0 || source > max_bits || scope > max_bits) {
        return false;
    }
    size_t need = ((size_t)source + 7) / 8;
    if ((size_t)len - 4 != need) {
        return false; /* more or fewer ADDRESS octets than SOURCE PREFIX-LENGTH needs */
    }
    if (need > 0 && (source % 8) != 0) {
        uint8_t mask = (uint8_t)(0xFFu >> (source % 8));
        if (p[4 + need - 1] & mask) {
            return false; /* bits beyond the prefix must be zero */
        }
    }
    q->has_ecs = true;
    q->ecs_family = family;
    q->ecs_source = source;
    q->ecs_scope = scope;
    q->ecs_addr_len = (uint8_t)need;
    memcpy(q->ecs_addr, p + 4, need);
    return true;
}

bool zj_query_parse_options(const uint8_t *p, uint16_t len, zj_query_t *q)
{
    size_t i = 0;
    while (i < len) {
        if (len - i < 4) {
            return false;
        }
        uint16_t code = zj_be16(p + i);
        uint16_t olen = zj_be16(p + i + 2);
        i += 4;
        if (olen > len - i) {
            return false; /* option overruns the OPT rdata */
        }
        const uint8_t *v = p + i;
        switch (code) {
        case ZJ_EDNS_OPT_NSID:
            q->nsid_requested = true; /* RFC 5001 §2.3: payload in a query is ignored */
            break;
        case ZJ_EDNS_OPT_ECS:
            if (q->has_ecs || !parse_ecs(v, olen, q)) {
                return false;
            }
            break;
        case ZJ_EDNS_OPT_COOKIE:
            /* RFC 7873 §5.2.2: a client cookie alone (8) or with a server cookie (16..40) */
            if (olen != 8 && (olen < 16 || olen > 40)) {
                return false;
            }
            break;
        default:
            break; /* RFC 6891 §6.1.2: unknown options are ignored */
        }
        i += olen;
    }
    return true;
}

int zj_query_parse(const uint8_t *pkt, size_t len, zj_query_t *q)
{
    memset(q, 0, offsetof(zj_query_t, ecs_addr));
    if (len < ZJ_DNS_HEADER_LEN) {
        return ZJ_Q_DROP;
    }
    q->id = zj_be16(pkt);
    q->flags = zj_be16(pkt + 2);
    q->qdcount = zj_be16(pkt + 4);
    uint16_t ancount = zj_be16(pkt + 6);
    uint16_t nscount = zj_be16(pkt + 8);
    uint16_t arcount = zj_be16(pkt + 10);
    q->opcode = (uint8_t)((q->flags & ZJ_F_OPCODE_MASK) >> ZJ_F_OPCODE_SHIFT);
    if (q->flags & ZJ_F_QR) {
        return ZJ_Q_DROP; /* never answer a response: that is how reflection loops start */
    }
    if (q->qdcount != 1) {
        return q->opcode == ZJ_OP_QUERY ? ZJ_Q_FORMERR : ZJ_Q_NOTIMP; /* RFC 9619 */
    }
    /* question: the name must be uncompressed and at most 255 bytes */
    cursor_t c = {.p = pkt + ZJ_DNS_HEADER_LEN, .start = pkt, .end = pkt + len};
    const uint8_t *name = c.p;
    size_t nlen = 0;
    for (;;) {
        if (c.p >= c.end) {
            return ZJ_Q_FORMERR;
        }
        uint8_t l = *c.p;
        if (l & 0xC0) {
            return ZJ_Q_FORMERR;
        }
        nlen += (size_t)l + 1;
        if (nlen > ZJ_DNS_MAX_NAME || (size_t)(c.end - c.p) < (size_t)l + 1) {
            return ZJ_Q_FORMERR;
        }
        c.p += l + 1;
        if (l == 0) {
            break;
        }
    }
    q->qtype = cur_u16(&c);
    q->qclass = cur_u16(&c);
    if (c.err) {
        return ZJ_Q_FORMERR;
    }
    q->qname = name;
    q->qname_len = (uint8_t)nlen;
    q->question_end = (uint16_t)(c.p - pkt);
    q->has_question = true;
    if (q->opcode == ZJ_OP_NOTIFY) {
        return ZJ_Q_REFUSED; /* no primary is configured to send us NOTIFY (as NSD answers) */
    }
    if (q->opcode != ZJ_OP_QUERY) {
        return ZJ_Q_NOTIMP;
    }
    /* answer and authority: skipped, but an OPT there is FORMERR (RFC 6891 §6.1.1: OPT only
     * in the additional section), as Knot and NSD answer */
    for (uint32_t i = 0; i < (uint32_t)ancount + nscount && !c.err; i++) {
        skip_name(&c);
        if (cur_u16(&c) == ZJ_T_OPT) {
            return ZJ_Q_FORMERR;
        }
        cur_skip(&c, 6);
        cur_skip(&c, cur_u16(&c));
    }
    /* additional: find the OPT */
    for (uint16_t i = 0; i < arcount && !c.err; i++) {
        const uint8_t *owner = c.p;
        skip_name(&c);
        uint16_t type = cur_u16(&c);
        uint16_t rclass = cur_u16(&c);
        uint32_t ttl = cur_u32(&c);
        uint16_t rdlen = cur_u16(&c);
        const uint8_t *rdata = c.p;
        cur_skip(&c, rdlen);
        if (c.err || type != ZJ_T_OPT) {
            continue;
        }
        if (q->has_edns || *owner != 0) {
            return ZJ_Q_FORMERR; /* RFC 6891 §6.1.1: one OPT, owner root */
        }
        q->has_edns = true;
        q->udp_size = rclass < ZJ_DNS_UDP_MIN ? ZJ_DNS_UDP_MIN : rclass;
        q->edns_version = (uint8_t)(ttl >> 16);
        q->edns_do = (ttl & ZJ_EDNS_DO) != 0;
        if (!zj_query_parse_options(rdata, rdlen, q)) {
            q->has_edns = false; /* answer FORMERR without an OPT we could not read */
            return ZJ_Q_FORMERR;
        }
    }
    if (c.err) {
        return ZJ_Q_FORMERR;
    }
    if (q->has_edns && q->edns_version > 0) {
        return ZJ_Q_BADVERS;
    }
    return ZJ_Q_OK;
}
