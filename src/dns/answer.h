/* The answer path: one query packet in, one response packet out, against an image set.
 *
 * zj_answer() is the whole per-query work of the server. It never allocates, locks, logs or
 * blocks; every bound is fixed at compile time. A worker owns one zj_responder_t and calls
 * zj_answer() for each packet of a batch. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "dns/anstab.h"
#include "zone/imgset.h"

/** Server-wide answer settings, fixed at start-up (from flags or the config file). */
typedef struct zj_answer_cfg {
    uint16_t edns_payload; /* UDP payload size we advertise and cap responses at; default 1232
                            * (DNS flag day 2020: avoids IP fragmentation on common paths) */
    const uint8_t *nsid;   /* RFC 5001 NSID payload, or NULL for no NSID */
    uint16_t nsid_len;
    const char *identity; /* CH TXT id.server / hostname.bind answer; NULL: REFUSED */
    const char *version;  /* CH TXT version.bind / version.server answer; NULL: REFUSED */
    struct zj_rrl *rrl;   /* response rate limiting (src/dns/rrl.h), shared by workers; NULL:
                           * off */
} zj_answer_cfg_t;

/** Per-worker counters (summed by the control plane on read). The worker is the only writer and
 *  bumps them with ZJ_ANSWER_STAT; the control thread reads them in place with relaxed atomic
 *  loads (zj_worker_answer_stats). */
typedef struct zj_answer_stats {
    uint64_t queries;   /* packets handed to zj_answer */
    uint64_t responses; /* packets that got a response */
    uint64_t dropped;   /* packets dropped (truncated header, QR set) */
    uint64_t rcode[6];  /* responses by rcode 0..5 */
    uint64_t badvers;
    uint64_t truncated; /* TC set */
    uint64_t referrals;
    uint64_t edns;
    uint64_t tcp;
    uint64_t rrl_dropped;         /* responses withheld by rate limiting */
    uint64_t rrl_slipped;         /* responses sent truncated by rate limiting */
    uint64_t comp_work_exhausted; /* responses where a name hit the compression work bound */
    uint64_t policy;              /* responses in which a routing policy chose record sets */
    uint64_t table;               /* responses taken from the answer table (dns/anstab.h) */
} zj_answer_stats_t;

/* A relaxed atomic store of a plain read-add: the single writer needs no locked instruction,
 * and a concurrent reader (using __atomic_load_n) sees whole values (C11 and TSan agree). */
#define ZJ_ANSWER_STAT(field, v)                                                                   \
    __atomic_store_n(&(field), (field) + (uint64_t)(v), __ATOMIC_RELAXED)

/** One per worker: settings, counters and the responder's private scratch. */
typedef struct zj_responder {
    const zj_answer_cfg_t *cfg;
    zj_answer_stats_t stats;
    uint64_t rng[2]; /* policy choices (src/util/rand.h); never both zero */
} zj_responder_t;

/** Defaults for the answer settings. */
void zj_answer_cfg_default(zj_answer_cfg_t *cfg);

/** Prepare a responder; cfg must outlive it. seed makes randomised choices reproducible. */
void zj_responder_init(zj_responder_t *r, const zj_answer_cfg_t *cfg, uint64_t seed);

/** zj_answer without the answer table. */
size_t zj_answer_general(zj_responder_t *r, const zj_imgset_t *set, const uint8_t *q, size_t qlen,
                         const struct sockaddr *src, bool is_tcp, uint8_t *out, size_t out_cap);

/** Whether zj_answer tries the set's answer tables first: not with response rate limiting on
 *  (each response must pass the limiter, which the general path applies). */
static inline bool zj_answer_uses_table(const zj_responder_t *r, const zj_imgset_t *set)
{
    return set != NULL && r->cfg->rrl == NULL;
}

/** Answer one query. q/qlen is the received packet; src the client's address (for policies and
 *  ECS; may be NULL); is_tcp selects the size limit (65535 over TCP, else the EDNS/512 rules).
 *  The response is written to out (out_cap bytes; 4096 is enough for UDP, 65535 for TCP).
 *  Returns the response length, or 0 when the packet must be dropped (RFC-mandated silence).
 *  Hot-path safe: no allocation, lock, log or system call.
 *  The set's answer tables (dns/anstab.h) answer what they hold; zj_answer_general the rest
 *  (and every query when response rate limiting is on). Inline, so that a table answer costs
 *  one call. */
static inline size_t zj_answer(zj_responder_t *r, const zj_imgset_t *set, const uint8_t *q,
                               size_t qlen, const struct sockaddr *src, bool is_tcp, uint8_t *out,
                               size_t out_cap)
{
    if (zj_answer_uses_table(r, set)) {
        size_t n = zj_anstab_answer(set, r, q, qlen, is_tcp, out, out_cap);
        if (n != ZJ_ANSTAB_PASS) {
            return n;
        }
    }
    return zj_answer_general(r, set, q, qlen, src, is_tcp, out, out_cap);
}
