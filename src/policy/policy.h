/* Routing policies at query time: which record sets of a policy RRset answer this client
 * (Route 53's rules, docs/policies.md). Hot-path safe: no allocation, lock, log or system call. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "zonejet/zone.h"

struct zj_geo;

/** Who is asking: the ECS address when the query has one, else the packet's source. */
typedef struct zj_client {
    int family; /* AF_INET, AF_INET6, or 0: unknown (policies that need it use their default) */
    uint8_t addr[16];
    uint8_t source_len; /* ECS source prefix length, or 32/128 for a packet's source */
} zj_client_t;

typedef struct zj_policy_env {
    const zj_client_t *client;
    const struct zj_geo *geo; /* NULL: no database; geo policies answer their default */
    uint64_t *rng;            /* the responder's generator state (2 words) */
} zj_policy_env_t;

/** True if RRSETS entry rs is a policy RRset (its wire_off is a POLICIES index). */
static inline bool zj_rrset_is_policy(const zj_img_rrset_d *rs)
{
    return rs->n_rr == 0;
}

/** Choose the record sets answering policy p of img: writes up to ZJ_POLICY_MAX_ANSWER RRSETS
 *  indices into out (in the order to write them) and returns how many; 0 means NODATA (a geo
 *  or cidr policy with no match and no default). *scope receives the ECS scope prefix length
 *  the choice depended on (0 when it did not depend on the address). */
unsigned zj_policy_choose(const zj_image_t *img, uint32_t p, const zj_policy_env_t *env,
                          uint32_t out[ZJ_POLICY_MAX_ANSWER], uint8_t *scope);

/** Health of check c of img as the query path sees it (inverted/disabled already applied by the
 *  checker; no health attached: healthy). */
static inline bool zj_check_healthy(const zj_image_t *img, uint32_t c)
{
    if (c == ZJ_IMG_NONE || img->health == NULL) {
        return true;
    }
    return __atomic_load_n(img->health[c], __ATOMIC_RELAXED) != 0;
}
