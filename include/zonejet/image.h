/* The zone image format: one little-endian file, every internal reference an offset or an index,
 * every record a fixed-width struct whose size is pinned below.
 *
 * Layout: zj_img_header_d, then n_sections zj_img_section_d, then the sections, each 8-byte
 * aligned. Readers skip section kinds they do not know, so a new section is a compatible change;
 * changing a struct below or the meaning of a field is not, and bumps ZJ_IMG_VERSION.
 * Checklist: a change here touches src/compile/emit.c (writer), src/zone/image.c (validator) and
 * the dump in tools/compile.c together.
 *
 * Sections:
 *   ZONES   zj_img_zone_d[count]   one per zone; its nodes are contiguous in NODES
 *   NODES   zj_img_node_d[count]   one per owner name, plus empty non-terminals
 *   RRSETS  zj_img_rrset_d[count]  one per (node, type); a node's rrsets are contiguous
 *   NAMES   bytes                  lower-case uncompressed wire names
 *   WIRE    bytes                  RRsets precompiled to response wire format (below)
 *   INDEX   zj_img_slot_d[count]   open-addressing hash of (zone, name) -> node, count = 2^k
 *   ADDL    uint32_t[count]        node indices for additional-section processing
 * Routing policies (docs/policies.md; all optional, absent in images without policy files):
 *   POLICIES zj_img_policy_d[count] one per (owner, type) answered by a policy
 *   PSETS    zj_img_pset_d[count]   one per record set of a policy, in the policy's order
 *   CHECKS   zj_img_check_d[count]  health checks
 *   U32      uint32_t[count]        lists: calculated checks' children, latency entries
 *   STRS     bytes                  NUL-terminated strings (names, HTTP path/host/match)
 *   TABLES   zj_img_table_d[count]  CIDR collections and latency tables
 *   PMAP4    zj_pmap4_d[count]      IPv4 prefix maps of the tables (see zj_pmap4_d)
 *   PMAP6    zj_pmap6_d[count]      IPv6 prefix maps
 *
 * A policy RRset is an RRSETS entry of a node like any other, with n_rr == 0: its wire_off is
 * the index of its POLICIES entry, wire_len, n_addl and addl_off are 0. Each record set of the
 * policy is an ordinary RRSETS entry (with its WIRE bytes and additional links) outside every
 * node's range: set k of policy p is RRSETS[p.first_rrset + k], its parameters PSETS[p.first_pset
 * + k].
 *
 * WIRE format of an RRset: for each RR, "C0 0C" (a compression pointer, patched to the owner's
 * position when the owner is not the question name at offset 12), TYPE, CLASS, TTL, RDLENGTH,
 * RDATA: exactly the bytes of the RR in a response. Names inside RDATA are uncompressed. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "zonejet/compiler.h"

#define ZJ_IMG_MAGIC "ZJIMAGE"    /* 7 chars + NUL = 8 bytes at offset 0 */
#define ZJ_IMG_VERSION 2u         /* 2: policy RRsets (n_rr == 0) and policy sections */
#define ZJ_IMG_ENDIAN 0x01020304u /* read back as this value only on a little-endian reader */
#define ZJ_IMG_NONE 0xFFFFFFFFu   /* "no index" in any uint32_t index field */
#define ZJ_IMG_ALIGN 8u
#define ZJ_IMG_MAX_SECTIONS 64u /* more is a corrupt header, not a bigger image */

enum zj_img_section_kind {
    ZJ_SEC_ZONES = 1,
    ZJ_SEC_NODES = 2,
    ZJ_SEC_RRSETS = 3,
    ZJ_SEC_NAMES = 4,
    ZJ_SEC_WIRE = 5,
    ZJ_SEC_INDEX = 6,
    ZJ_SEC_ADDL = 7,
    ZJ_SEC_POLICIES = 8,
    ZJ_SEC_PSETS = 9,
    ZJ_SEC_CHECKS = 10,
    ZJ_SEC_U32 = 11,
    ZJ_SEC_STRS = 12,
    ZJ_SEC_TABLES = 13,
    ZJ_SEC_PMAP4 = 14,
    ZJ_SEC_PMAP6 = 15,
};

typedef struct zj_img_header_d {
    uint8_t magic[8];
    uint32_t version;
    uint32_t endian;
    uint64_t file_len;
    uint64_t checksum;  /* XXH3-64 of every byte after this field: [ZJ_IMG_SUM_FROM, file_len) */
    uint64_t hash_seed; /* seed of the INDEX hash */
    uint32_t n_sections;
    uint32_t header_len; /* header + section table, rounded up to ZJ_IMG_ALIGN */
} zj_img_header_d;
ZJ_STATIC_SIZE(zj_img_header_d, 48);
#define ZJ_IMG_SUM_FROM 32u /* the first byte after the checksum field */
ZJ_STATIC_ASSERT(offsetof(zj_img_header_d, checksum) + 8 == ZJ_IMG_SUM_FROM, "checksum position");

typedef struct zj_img_section_d {
    uint32_t kind;
    uint32_t count; /* elements (for byte sections: bytes) */
    uint64_t off;   /* from the start of the file */
    uint64_t len;   /* bytes */
} zj_img_section_d;
ZJ_STATIC_SIZE(zj_img_section_d, 24);

typedef struct zj_img_zone_d {
    uint32_t apex_node;
    uint32_t first_node; /* the zone's nodes are [first_node, first_node + n_nodes) */
    uint32_t n_nodes;
    uint32_t soa_rrset;
    uint32_t neg_ttl; /* RFC 2308 §5: min(SOA TTL, SOA MINIMUM) */
    uint32_t serial;
    uint32_t name_off; /* apex name in NAMES */
    uint32_t flags;
} zj_img_zone_d;
ZJ_STATIC_SIZE(zj_img_zone_d, 32);

enum zj_img_node_flags {
    ZJ_NODE_APEX = 1u << 0,
    ZJ_NODE_DELEG = 1u << 1, /* NS below the apex: a zone cut (RFC 1034 §4.2.1) */
    ZJ_NODE_CNAME = 1u << 2,
    ZJ_NODE_DNAME = 1u << 3,
    ZJ_NODE_WILDCHILD = 1u << 4, /* "*.<this name>" exists */
    ZJ_NODE_OCCLUDED = 1u << 5,  /* strictly below a zone cut: glue or occluded data */
    ZJ_NODE_ENT = 1u << 6,       /* empty non-terminal: no RRsets, has descendants */
    ZJ_NODE_WILDCARD = 1u << 7,  /* first label is "*" */
};

typedef struct zj_img_node_d {
    uint32_t name_off;    /* lower-case wire name in NAMES */
    uint32_t rrset_first; /* the node's rrsets are [rrset_first, rrset_first + n_rrsets) */
    uint32_t cut;         /* node of the zone cut at or above this node, or ZJ_IMG_NONE */
    uint16_t n_rrsets;
    uint16_t flags; /* zj_img_node_flags */
    uint8_t name_len;
    uint8_t labels;
    uint16_t reserved;
} zj_img_node_d;
ZJ_STATIC_SIZE(zj_img_node_d, 20);

typedef struct zj_img_rrset_d {
    uint16_t type;
    uint16_t n_rr;
    uint16_t wire_len; /* an RRset larger than a DNS message could never be sent */
    uint16_t n_addl;
    uint32_t wire_off; /* in WIRE */
    uint32_t addl_off; /* first entry in ADDL; the targets whose A/AAAA go to additional */
} zj_img_rrset_d;
ZJ_STATIC_SIZE(zj_img_rrset_d, 16);

typedef struct zj_img_slot_d {
    uint32_t tag;  /* high 32 bits of the name hash */
    uint32_t node; /* node index + 1; 0 = empty */
} zj_img_slot_d;
ZJ_STATIC_SIZE(zj_img_slot_d, 8);

/* ---- Routing policies ---------------------------------------------------------------------- */

enum zj_policy_kind {
    ZJ_POL_WEIGHTED = 1,
    ZJ_POL_FAILOVER = 2,
    ZJ_POL_MULTIVALUE = 3,
    ZJ_POL_GEO = 4,
    ZJ_POL_CIDR = 5,
    ZJ_POL_LATENCY = 6,
};

#define ZJ_POLICY_MAX_ANSWER 8u /* multivalue: records per response (Route 53's rule) */
/* Record sets per policy. Every choice scans a policy's sets (src/policy/policy.c), so this
 * bounds the work a query can cost; the compiler refuses more and the validator rejects more. */
#define ZJ_POLICY_MAX_SETS 255u

typedef struct zj_img_policy_d {
    uint16_t kind;   /* zj_policy_kind */
    uint16_t n_sets; /* 1 to ZJ_POLICY_MAX_SETS */
    uint32_t first_pset;
    uint32_t first_rrset;
    uint32_t table; /* CIDR: the collection, LATENCY: the zone's latency table (TABLES); else
                     * ZJ_IMG_NONE */
    uint32_t zone;
    uint32_t node; /* owner node */
} zj_img_policy_d;
ZJ_STATIC_SIZE(zj_img_policy_d, 24);

enum zj_failover_role { ZJ_FAILOVER_PRIMARY = 0, ZJ_FAILOVER_SECONDARY = 1 };

/* Geolocation levels, most specific last. A location is matched by (level, code, sub). */
enum zj_geo_level {
    ZJ_GEO_DEFAULT = 0, /* "*" */
    ZJ_GEO_CONTINENT = 1,
    ZJ_GEO_COUNTRY = 2,
    ZJ_GEO_SUBDIVISION = 3,
};
/* Two ASCII letters as one number: first letter in the high byte ("EU" = 0x4555). */
#define ZJ_GEO_CODE2(a, b) ((uint16_t)(((unsigned)(uint8_t)(a) << 8) | (uint8_t)(b)))
/* A subdivision code of 1-3 ASCII characters, upper case, left-aligned in the three high bytes:
 * "CA" = 0x43410000. 0 = none. */

typedef struct zj_img_pset_d {
    uint32_t check;     /* CHECKS index, or ZJ_IMG_NONE: always healthy */
    uint32_t id_off;    /* set identifier, in STRS */
    uint32_t value;     /* WEIGHTED: weight 0-255; FAILOVER: zj_failover_role; CIDR: location
                         * index in the collection or ZJ_IMG_NONE for "*"; LATENCY: region index
                         * in the latency table; GEO: subdivision code (SUBDIVISION level) */
    uint16_t geo_level; /* GEO: zj_geo_level */
    uint16_t geo_code;  /* GEO: continent or country, ZJ_GEO_CODE2 */
} zj_img_pset_d;
ZJ_STATIC_SIZE(zj_img_pset_d, 16);

enum zj_check_kind {
    ZJ_CHECK_TCP = 1,
    ZJ_CHECK_HTTP = 2,
    ZJ_CHECK_HTTPS = 3,
    ZJ_CHECK_CALCULATED = 4,
};
enum zj_check_flags {
    ZJ_CHECK_INVERTED = 1u << 0, /* healthy when the probe fails */
    ZJ_CHECK_DISABLED = 1u << 1, /* never probed: healthy, or unhealthy when also inverted
                                  * (Route 53's rule) */
};
#define ZJ_CHECK_MAX_THRESHOLD 10u      /* consecutive results that flip a state: 1 to this */
#define ZJ_CHECK_BODY_MATCH_BYTES 5120u /* match= is searched in this much of the body */

typedef struct zj_img_check_d {
    uint16_t kind;   /* zj_check_kind */
    uint16_t flags;  /* zj_check_flags */
    uint16_t port;   /* TCP/HTTP/HTTPS */
    uint16_t family; /* AF_INET or AF_INET6 (TCP/HTTP/HTTPS) */
    uint8_t addr[16];
    uint32_t interval_ms;
    uint32_t timeout_ms;
    uint32_t threshold;    /* consecutive results that flip the state, 1-10 */
    uint32_t name_off;     /* STRS */
    uint32_t path_off;     /* HTTP(S) request path, STRS */
    uint32_t host_off;     /* HTTP(S) Host header and TLS SNI, STRS, or ZJ_IMG_NONE (the address) */
    uint32_t match_off;    /* HTTP(S) body match, STRS, or ZJ_IMG_NONE */
    uint32_t children_off; /* CALCULATED: U32[children_off, + n_children) are CHECKS indices */
    uint16_t n_children;
    uint16_t min_healthy; /* CALCULATED: healthy when at least this many children are */
    uint32_t zone;        /* zone whose policy file declared it */
} zj_img_check_d;
ZJ_STATIC_SIZE(zj_img_check_d, 64);

enum zj_table_kind {
    ZJ_TABLE_CIDR = 1,
    ZJ_TABLE_LATENCY = 2,
};

/* A CIDR collection: its prefix maps give, for an address, the location index (names in
 * U32[values_off, + n_values], each a STRS offset) or ZJ_IMG_NONE.
 * A latency table: the prefix maps give an entry index or ZJ_IMG_NONE. Entries are U32 records
 * of 4 words at values_off, n_values of them: {geo_level << 16 | geo_code, geo subdivision,
 * first region (U32 index of a list of region indices), number of regions}; client prefixes
 * are entries reached through the maps (their geo_level word is 0xFFFFFFFF), locations are
 * matched most specific first, and the "*" entry has level ZJ_GEO_DEFAULT. Region names are
 * U32[regions_off, + n_regions], each a STRS offset. */
#define ZJ_LAT_ENTRY_WORDS 4u           /* U32 words per latency table entry */
#define ZJ_LAT_PREFIX_ENTRY 0xFFFFFFFFu /* geo_level word of an entry reached by prefix */

typedef struct zj_img_table_d {
    uint32_t kind;     /* zj_table_kind */
    uint32_t name_off; /* STRS */
    uint32_t zone;
    uint32_t first4, n4; /* PMAP4 [first4, + n4) */
    uint32_t first6, n6; /* PMAP6 [first6, + n6) */
    uint32_t values_off, n_values;
    uint32_t regions_off, n_regions; /* LATENCY only */
    uint32_t reserved;
} zj_img_table_d;
ZJ_STATIC_SIZE(zj_img_table_d, 48);

/* Prefix maps: a sorted array of pieces that covers the whole address space (piece 0 starts at
 * 0); piece i spans [start_i, start_{i+1} - 1]. Nested prefixes are flattened so the longest
 * prefix wins; gaps are pieces with value ZJ_IMG_NONE and len 0. len is the length of the
 * prefix the value came from: with the piece's bounds it gives the ECS scope of an answer
 * (src/policy/pmap.h). Also the in-memory form of a geolocation database (src/policy/geo.c). */
typedef struct zj_pmap4_d {
    uint32_t start; /* host byte order */
    uint32_t value;
    uint32_t len; /* 0-32 */
} zj_pmap4_d;
ZJ_STATIC_SIZE(zj_pmap4_d, 12);

typedef struct zj_pmap6_d {
    uint64_t hi, lo; /* the address as two host-order halves */
    uint32_t value;
    uint32_t len; /* 0-128 */
} zj_pmap6_d;
ZJ_STATIC_SIZE(zj_pmap6_d, 24);
