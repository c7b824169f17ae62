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
 *
 * WIRE format of an RRset: for each RR, "C0 0C" (a compression pointer, patched to the owner's
 * position when the owner is not the question name at offset 12), TYPE, CLASS, TTL, RDLENGTH,
 * RDATA: exactly the bytes of the RR in a response. Names inside RDATA are uncompressed. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "zonejet/compiler.h"

#define ZJ_IMG_MAGIC "ZJIMAGE" /* 7 chars + NUL = 8 bytes at offset 0 */
#define ZJ_IMG_VERSION 1u
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
