/* Reader API of zone images: open and validate, find a query's zone, look a name up inside a
 * zone, iterate RRsets. Shared by zonejetd, zonejet-compile --dump and the tests.
 *
 * An open image is immutable and may be read from any number of threads without locks. Every
 * offset and length was checked by zj_image_open*, so lookups dereference without checks. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "zonejet/image.h"
#include "zonejet/wire.h"

typedef struct zj_image {
    const uint8_t *base;
    size_t len;
    bool is_mapped; /* munmap on close; else free(base) */
    uint64_t checksum;
    uint64_t seed;
    const zj_img_zone_d *zones;
    uint32_t n_zones;
    const zj_img_node_d *nodes;
    uint32_t n_nodes;
    const zj_img_rrset_d *rrsets;
    uint32_t n_rrsets;
    const uint8_t *names;
    size_t names_len;
    const uint8_t *wire;
    size_t wire_len;
    const zj_img_slot_d *slots;
    uint32_t slot_mask;
    const uint32_t *addl;
    uint32_t n_addl;
    /* routing policies (all NULL/0 when the image has none) */
    const zj_img_policy_d *policies;
    uint32_t n_policies;
    const zj_img_pset_d *psets;
    uint32_t n_psets;
    const zj_img_check_d *checks;
    uint32_t n_checks;
    const uint32_t *u32;
    uint32_t n_u32;
    const char *strs;
    size_t strs_len;
    const zj_img_table_d *tables;
    uint32_t n_tables;
    const zj_pmap4_d *pmap4;
    uint32_t n_pmap4;
    const zj_pmap6_d *pmap6;
    uint32_t n_pmap6;
    /* Health of the checks: health[i] points at check i's state byte (1 healthy, 0 not), written
     * by the checker thread and read with a relaxed atomic load. Set by zj_health_attach before
     * the image is published; NULL (images in tests and tools): every check is healthy. */
    const uint8_t *const *health;
    int min_apex_labels; /* label counts of the shallowest and deepest zone apex: bounds the */
    int max_apex_labels; /* suffixes zj_image_find_zone has to try */
    /* The image's answer table (src/dns/anstab.h): built once, when the image first enters an
     * indexed set and before that set is published, never changed after; NULL when switched
     * off or out of memory. Freed with the image. */
    struct zj_anstab *anstab;
    bool is_anstab_tried;
    char path[256]; /* for status and logs; "" for images built in memory */
} zj_image_t;

/** A query name prepared once per query: lower-cased, with the offset of every label. */
typedef struct zj_qname {
    uint8_t name[ZJ_DNS_MAX_NAME];
    uint8_t len;
    uint8_t labels;                 /* not counting the root */
    uint8_t off[ZJ_DNS_MAX_LABELS]; /* off[i] = start of the suffix after skipping i labels */
} zj_qname_t;

/** Fill q from a valid uncompressed wire name (case folded to lower case). */
void zj_qname_init(zj_qname_t *q, const uint8_t *wire_name, size_t len);

/** Map and validate an image file. On failure returns a negative zj_err and writes a one-line
 *  reason into err (errcap bytes). Not for the query path. */
int zj_image_open(const char *path, zj_image_t **out, char *err, size_t errcap);

/** Validate an image held in memory; on success the image owns buf (freed by close with free()),
 *  on failure buf stays the caller's. */
int zj_image_open_mem(uint8_t *buf, size_t len, zj_image_t **out, char *err, size_t errcap);

/** Unmap or free an image. NULL is accepted. */
void zj_image_close(zj_image_t *img);

/** The INDEX hash of a (zone, lower-case name) key; zone ZJ_IMG_NONE keys the zone apexes.
 *  Compiler and reader must agree bit for bit. */
uint64_t zj_image_hash(uint64_t seed, uint32_t zone, const uint8_t *lname, size_t len);

/** Node of the lower-case name in zone, or ZJ_IMG_NONE. Hot-path safe. */
uint32_t zj_image_find_node(const zj_image_t *img, uint32_t zone, const uint8_t *lname, size_t len);

/** Zone whose apex is the longest suffix of q among this image's zones, or ZJ_IMG_NONE; with
 *  below_apex, an apex equal to q itself is skipped (DS is answered by the parent, RFC 4035
 *  §3.1.4.1). *labels receives the apex's label count. Hot-path safe. */
uint32_t zj_image_find_zone(const zj_image_t *img, const zj_qname_t *q, bool below_apex,
                            int *labels);

enum zj_lookup_kind {
    ZJ_LOOKUP_EXACT,    /* node has an RRset of qtype: rrset */
    ZJ_LOOKUP_CNAME,    /* node has a CNAME and qtype is not CNAME: rrset is the CNAME */
    ZJ_LOOKUP_NODATA,   /* name exists (or a wildcard matched) but has no RRset of qtype */
    ZJ_LOOKUP_NXDOMAIN, /* no such name and no wildcard */
    ZJ_LOOKUP_DELEG,    /* at or below a zone cut: node is the cut, rrset its NS */
    ZJ_LOOKUP_DNAME,    /* below a DNAME: node is the DNAME owner, rrset the DNAME */
};

typedef struct zj_lookup {
    int kind;
    bool wildcard;  /* answer synthesised from the wildcard node (RFC 4592 §3.3.1) */
    bool ent;       /* NODATA at an empty non-terminal */
    uint32_t node;  /* node the answer comes from (see kinds) */
    uint32_t rrset; /* RRset index or ZJ_IMG_NONE */
    uint32_t ce;    /* closest encloser, for NXDOMAIN and wildcard answers */
} zj_lookup_t;

/** RFC 1034 §4.3.2 step 3 inside one zone, with RFC 4592 wildcards. q must be at or below the
 *  zone's apex. Bounded: at most q->labels + 2 index probes. Hot-path safe. */
void zj_zone_lookup(const zj_image_t *img, uint32_t zone, const zj_qname_t *q, uint16_t qtype,
                    zj_lookup_t *out);

/** True if the RDATA of a type whose names the answer path reads (NS, CNAME, DNAME, PTR, MX,
 *  SRV, SOA) has exactly its layout: whole names filling the RDATA as the type defines. Other
 *  types are always accepted. The compiler and the image validator both apply it. */
bool zj_rdata_layout_ok(uint16_t type, const uint8_t *rd, size_t rdlen);

/** Types whose RDATA names a response compresses (RFC 3597 §4 allows it for the RFC 1035
 *  types; these are the ones in use). The compiler stores those names in lower case and the
 *  answer path compares them with memcmp: both sides call this one predicate. */
static inline bool zj_rdata_names_compressed(uint16_t type)
{
    return type == ZJ_T_NS || type == ZJ_T_CNAME || type == ZJ_T_PTR || type == ZJ_T_MX ||
           type == ZJ_T_SOA;
}

/** Types a routing policy may answer (docs/policies.md): the compiler accepts only these in
 *  policy files and the image validator only these as policy RRsets, so the answer path never
 *  meets a policy where it needs a plain RRset (SOA, NS, DNAME). */
static inline bool zj_policy_type_ok(uint16_t type)
{
    return type == ZJ_T_A || type == ZJ_T_AAAA || type == ZJ_T_CNAME || type == ZJ_T_MX ||
           type == ZJ_T_TXT || type == ZJ_T_SRV || type == ZJ_T_PTR || type == ZJ_T_CAA ||
           type == ZJ_T_NAPTR || type == ZJ_T_SPF;
}

/** RRset of type at node, or ZJ_IMG_NONE. */
uint32_t zj_node_find_rrset(const zj_image_t *img, uint32_t node, uint16_t type);

static inline const uint8_t *zj_node_name(const zj_image_t *img, uint32_t node)
{
    return img->names + img->nodes[node].name_off;
}
