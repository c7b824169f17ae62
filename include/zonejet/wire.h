/* DNS wire constants, header layout and big-endian load/store. */
#pragma once

#include <stdint.h>
#include <string.h>

#define ZJ_DNS_HEADER_LEN 12
#define ZJ_DNS_MAX_NAME 255   /* RFC 1035 §2.3.4 */
#define ZJ_DNS_MAX_LABEL 63   /* RFC 1035 §2.3.4 */
#define ZJ_DNS_MAX_LABELS 128 /* 255-byte name: at most 127 one-byte labels + root */
#define ZJ_DNS_UDP_MIN 512    /* RFC 1035 §4.2.1 */
#define ZJ_DNS_MAX_MSG 65535

enum zj_rrtype {
    ZJ_T_A = 1,
    ZJ_T_NS = 2,
    ZJ_T_CNAME = 5,
    ZJ_T_SOA = 6,
    ZJ_T_PTR = 12,
    ZJ_T_HINFO = 13,
    ZJ_T_MX = 15,
    ZJ_T_TXT = 16,
    ZJ_T_AAAA = 28,
    ZJ_T_LOC = 29,
    ZJ_T_SRV = 33,
    ZJ_T_NAPTR = 35,
    ZJ_T_DNAME = 39,
    ZJ_T_OPT = 41,
    ZJ_T_DS = 43,
    ZJ_T_SSHFP = 44,
    ZJ_T_RRSIG = 46,
    ZJ_T_NSEC = 47,
    ZJ_T_DNSKEY = 48,
    ZJ_T_NSEC3 = 50,
    ZJ_T_NSEC3PARAM = 51,
    ZJ_T_TLSA = 52,
    ZJ_T_SMIMEA = 53,
    ZJ_T_CDS = 59,
    ZJ_T_CDNSKEY = 60,
    ZJ_T_OPENPGPKEY = 61,
    ZJ_T_ZONEMD = 63,
    ZJ_T_SVCB = 64,
    ZJ_T_HTTPS = 65,
    ZJ_T_SPF = 99,
    ZJ_T_IXFR = 251,
    ZJ_T_AXFR = 252,
    ZJ_T_MAILB = 253,
    ZJ_T_MAILA = 254,
    ZJ_T_ANY = 255,
    ZJ_T_URI = 256,
    ZJ_T_CAA = 257,
};

enum zj_rrclass { ZJ_C_IN = 1, ZJ_C_CH = 3, ZJ_C_HS = 4, ZJ_C_NONE = 254, ZJ_C_ANY = 255 };

enum zj_rcode {
    ZJ_RCODE_NOERROR = 0,
    ZJ_RCODE_FORMERR = 1,
    ZJ_RCODE_SERVFAIL = 2,
    ZJ_RCODE_NXDOMAIN = 3,
    ZJ_RCODE_NOTIMP = 4,
    ZJ_RCODE_REFUSED = 5,
    ZJ_RCODE_BADVERS = 16, /* extended, RFC 6891 */
};

enum zj_opcode {
    ZJ_OP_QUERY = 0,
    ZJ_OP_IQUERY = 1,
    ZJ_OP_STATUS = 2,
    ZJ_OP_NOTIFY = 4,
    ZJ_OP_UPDATE = 5
};

/* Header flag bits in the 16-bit flags word (RFC 1035 §4.1.1, RFC 4035 §3.2). */
#define ZJ_F_QR 0x8000u
#define ZJ_F_AA 0x0400u
#define ZJ_F_TC 0x0200u
#define ZJ_F_RD 0x0100u
#define ZJ_F_RA 0x0080u
#define ZJ_F_AD 0x0020u
#define ZJ_F_CD 0x0010u
#define ZJ_F_OPCODE_SHIFT 11
#define ZJ_F_OPCODE_MASK 0x7800u

/* EDNS (RFC 6891) */
#define ZJ_EDNS_DO 0x8000u
#define ZJ_EDNS_OPT_NSID 3
#define ZJ_EDNS_OPT_ECS 8
#define ZJ_EDNS_OPT_COOKIE 10

static inline uint16_t zj_be16(const uint8_t *p)
{
    return (uint16_t)((uint16_t)p[0] << 8 | p[1]);
}

static inline uint32_t zj_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void zj_put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static inline void zj_put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}
