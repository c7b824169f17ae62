/* Policy files (docs/policies.md): the text beside a zone file that declares routing policies,
 * health checks, CIDR collections and a latency table, parsed and checked into an in-memory
 * model, and the image tables (include/zonejet/image.h) built from that model.
 *
 * The parser checks everything it can know from the policy file and the zone's origin alone
 * (syntax, attributes, ranges, references between statements, cycles among calculated checks).
 * What needs the zone's nodes (a policy beside a record of the same type, at a zone cut, beside
 * a CNAME) is checked by the builder (src/compile/emit.c), which also writes the record sets as
 * RRSETS entries. Compiler only: everything here allocates freely (and aborts on out-of-memory,
 * as the builder does). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "zonejet/image.h"
#include "zonejet/wire.h"

/** Reports one error of the policy file being parsed at line (0: the file as a whole). */
typedef void (*zj_pol_diag_fn)(void *ctx, unsigned line, const char *msg);

typedef struct zj_pol_rr {
    uint32_t rdata_off; /* in zj_polfile_t.rdata: uncompressed wire RDATA, names absolute */
    uint16_t rdlen;
    uint32_t line;
} zj_pol_rr_t;

typedef struct zj_pol_set {
    uint32_t line; /* of its "set" statement */
    uint32_t ttl;
    uint32_t first_rr; /* records: rrs[first_rr, + n_rr), in file order, duplicates dropped */
    uint32_t n_rr;
} zj_pol_set_t;

typedef struct zj_pol_policy {
    uint8_t owner[ZJ_DNS_MAX_NAME]; /* lower case, absolute, at or below the origin */
    uint8_t owner_len;
    uint16_t type;
    uint16_t kind;      /* zj_policy_kind */
    uint32_t line;      /* of its first set */
    uint32_t first_set; /* sets[first_set, + n_sets), in file order */
    uint32_t n_sets;
} zj_pol_policy_t;

struct zj_pol_model; /* checks, collections, latency table, strings: policy.c only */

/** One parsed policy file. pols are sorted by owner (byte order) and type. */
typedef struct zj_polfile {
    zj_pol_policy_t *pols;
    size_t n_pols;
    zj_pol_set_t *sets;
    size_t n_sets;
    zj_pol_rr_t *rrs;
    size_t n_rrs;
    uint8_t *rdata;
    size_t rdata_len;
    size_t n_checks;
    struct zj_pol_model *m;
    uint32_t check_base; /* set by zj_polfile_emit_tables: image index of the file's first */
    uint32_t table_base; /* check and first table */
} zj_polfile_t;

/** The policy sections of an image under construction (one for all zones). */
typedef struct zj_poltab {
    zj_img_policy_d *pol;
    size_t n_pol, cap_pol;
    zj_img_pset_d *pset;
    size_t n_pset, cap_pset;
    zj_img_check_d *chk;
    size_t n_chk, cap_chk;
    uint32_t *u32;
    size_t n_u32, cap_u32;
    char *strs;
    size_t strs_len, strs_cap;
    zj_img_table_d *tab;
    size_t n_tab, cap_tab;
    zj_pmap4_d *p4;
    size_t n_p4, cap_p4;
    zj_pmap6_d *p6;
    size_t n_p6, cap_p6;
} zj_poltab_t;

/** Parse and check the policy file text of the zone whose origin (wire, lower case) is given.
 *  Every error goes to diag with its line. Returns ZJ_OK with *out set (free it with
 *  zj_polfile_free), or ZJ_EZONE when any error was reported (*out NULL). Any bytes are
 *  accepted as input. */
int zj_polfile_parse(const char *text, size_t len, const uint8_t *origin, zj_pol_diag_fn diag,
                     void *ctx, zj_polfile_t **out);

/** NULL is accepted. */
void zj_polfile_free(zj_polfile_t *f);

/** Append the file's checks (children before parents), CIDR collections and latency table to
 *  t, for zone index zone; records their first indices in f->check_base and f->table_base.
 *  Returns ZJ_OK or ZJ_ELIMIT (a section would pass 2^32 - 2 entries). */
int zj_polfile_emit_tables(zj_polfile_t *f, uint32_t zone, zj_poltab_t *t);

/** Append the POLICIES entry of f->pols[i] and its PSETS entries to t. Its record sets are the
 *  RRSETS entries [first_rrset, + n_sets), written by the caller; node is the owner's node.
 *  Call after zj_polfile_emit_tables for the same file. */
void zj_polfile_emit_policy(const zj_polfile_t *f, size_t i, uint32_t zone, uint32_t node,
                            uint32_t first_rrset, zj_poltab_t *t);

/** True if t holds anything (then the image gets the policy sections). */
bool zj_poltab_used(const zj_poltab_t *t);

/** Free t's arrays and zero it. */
void zj_poltab_fini(zj_poltab_t *t);
