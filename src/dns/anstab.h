/* The answer table: the responses the answer path (answer.c) gives for the names of an image,
 * worked out once when the image is first indexed in a set, so that a query for an existing
 * name costs a header parse, one hash probe and a copy. With several images in a set, the set's
 * zone directory picks the image first (as the general path does), then its table answers;
 * tables are per image so that a reload rebuilds only the images it changed.
 *
 * Every entry is the body (the sections after the question) that zj_answer itself produced for
 * a query of that name and type, built without EDNS and without a size limit, plus its section
 * counts and flags. A query that does not find its name looks up the name's suffixes: the first
 * one in the table is the closest encloser, and its entry says what names below it get (an
 * NXDOMAIN with the zone's SOA, the referral of a zone cut, or the answers of its wildcard
 * child). Those bodies were built for a shorter question name, so their compression pointers
 * move by the difference in length; a pointer to the question name itself (offset 12) stays
 * when a wildcard answer is synthesized for the query name.
 *
 * What the table does not hold goes to the general path unchanged: DS, ANY, AXFR and IXFR,
 * classes other than IN, EDNS options (NSID, ECS, cookies), anything a routing policy decides,
 * DNAME substitution, answers that do not fit the client's size limit, a query that is not one
 * plain question, and every server with response rate limiting on. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct zj_image;
struct zj_imgset;
struct zj_responder;

typedef struct zj_anstab zj_anstab_t;

/** Returned by zj_anstab_answer for a query the table does not answer. */
#define ZJ_ANSTAB_PASS SIZE_MAX

/** Build the table of img (which has none yet), answering as a set of that image alone: runs
 *  the answer path once per name and type. *out is NULL when tables are switched off. ZJ_OK or
 *  ZJ_ENOMEM. Not for the query path. */
int zj_anstab_build(struct zj_image *img, zj_anstab_t **out);

void zj_anstab_free(zj_anstab_t *t);

/** Process-wide switch (zonejetd --no-answer-table), read when a set is indexed. */
void zj_anstab_set_enabled(bool on);

/** Sizes, for status output and tests: names, answers, and bytes of memory held. */
void zj_anstab_sizes(const zj_anstab_t *t, size_t *names, size_t *answers, size_t *bytes);

/** The response to pkt (len bytes) from the table, written to out (out_cap bytes), with rs's
 *  counters updated as zj_answer updates them; or ZJ_ANSTAB_PASS, with no counter moved (out
 *  may have been written), when the query needs the general path. Hot-path safe: no
 *  allocation, lock or system call. */
size_t zj_anstab_answer(const struct zj_imgset *set, struct zj_responder *rs, const uint8_t *pkt,
                        size_t len, bool is_tcp, uint8_t *out, size_t out_cap);

/** Cache warming for a batch (prefetch only: nothing is answered or counted). A query's table
 *  entries are a chain of dependent loads: the slot its name hashes to, the node, the node's name
 *  and answers, the answer's body. Answered one query after another, a batch waits for each
 *  cache miss in turn; zj_anstab_prefetch_start for every query of the batch, then
 *  ZJ_ANSTAB_PREFETCH_STEPS rounds of zj_anstab_prefetch_step over all of them (each round
 *  loads what the previous one asked the cache for, and asks for the next link), overlaps the
 *  misses of different queries. Any packet is safe to pass; a query the table will not answer
 *  stops early. */
typedef struct zj_anstab_hint {
    const zj_anstab_t *t; /* NULL: nothing (more) to fetch */
    const void *at;       /* the link the last round asked for */
    uint64_t h;           /* hash of the lower-case question name */
    uint16_t qtype;
    uint8_t n_types; /* of the node, for the answers round */
    uint8_t stage;   /* rounds done */
} zj_anstab_hint_t;

/** Rounds after the start: node, name and answers, body. */
#define ZJ_ANSTAB_PREFETCH_STEPS 3

void zj_anstab_prefetch_start(const struct zj_imgset *set, const uint8_t *pkt, size_t len,
                              zj_anstab_hint_t *hint);
void zj_anstab_prefetch_step(zj_anstab_hint_t *hint);
