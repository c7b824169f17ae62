/* Routing policies at query time: which record sets of a policy RRset answer this client, by
 * Route 53's rules (docs/policies.md). The compiler resolved every name to an index; here we
 * only read the POLICIES/PSETS/TABLES/U32/PMAP sections, health bytes and the responder's
 * generator. Each choice is one pass (two for weighted) over the policy's sets, plus at most
 * one prefix-map search and one geolocation search.
 *
 * Health (Route 53, "How Amazon Route 53 chooses records when health checking is configured"):
 * a set without a check is healthy; when no set of the policy is healthy, every set counts as
 * healthy and the policy chooses as if nothing were checked. Health bytes are read with relaxed
 * loads while the checker thread may flip them, so two reads of one byte can disagree; every
 * loop below therefore ends with a defined fallback instead of assuming that a second pass sees
 * what the first one counted.
 *
 * ECS scope: 0 when the choice did not look at the address (weighted, failover, multivalue, or
 * no usable address); otherwise the scope of the prefix-map or geolocation lookup that decided
 * it, the larger of the two when both were consulted.
 *
 * Hot-path safe: no allocation, lock, log or system call. */
#include "policy/policy.h"

#include <string.h>
#include <sys/socket.h>

#include "zonejet/wire.h"
#include "policy/geo.h"
#include "policy/pmap.h"
#include "util/rand.h"

typedef struct pol_ctx {
    const zj_image_t *img;
    const zj_img_pset_d *ps;
    uint32_t n;
    bool all_healthy; /* no set is healthy: treat every set as healthy */
} pol_ctx_t;

static bool set_checked_healthy(const pol_ctx_t *c, uint32_t k)
{
    return zj_check_healthy(c->img, c->ps[k].check);
}

/* Healthy under the common rule (a set without a check is healthy; none healthy: all are). */
static bool set_healthy(const pol_ctx_t *c, uint32_t k)
{
    return c->all_healthy || set_checked_healthy(c, k);
}

static void ctx_init(pol_ctx_t *c, const zj_image_t *img, const zj_img_policy_d *pol)
{
    c->img = img;
    c->ps = img->psets + pol->first_pset;
    c->n = pol->n_sets;
    c->all_healthy = true;
    for (uint32_t k = 0; k < c->n; k++) {
        if (set_checked_healthy(c, k)) {
            c->all_healthy = false;
            break;
        }
    }
}

/* ---- weighted, failover, multivalue: the address plays no part ---------------------------- */

/* Route 53: probability weight / sum over the healthy sets; sets of weight 0 only when every
 * set of non-zero weight is unhealthy (then equally among the healthy zero-weight sets); all
 * weights 0: equal shares. */
static uint32_t choose_weighted(const pol_ctx_t *c, uint64_t *rng)
{
    uint32_t total = 0, n_zero = 0;
    for (uint32_t k = 0; k < c->n; k++) {
        if (set_healthy(c, k)) {
            total += c->ps[k].value;
            n_zero += c->ps[k].value == 0;
        }
    }
    uint32_t fallback = 0;
    if (total > 0) {
        uint32_t r = zj_rand_below(rng, total);
        for (uint32_t k = 0; k < c->n; k++) {
            uint32_t w = c->ps[k].value;
            if (w == 0 || !set_healthy(c, k)) {
                continue;
            }
            if (r < w) {
                return k;
            }
            r -= w;
            fallback = k; /* a flip between the passes: the last candidate seen */
        }
        return fallback;
    }
    if (n_zero > 0) {
        uint32_t r = zj_rand_below(rng, n_zero);
        for (uint32_t k = 0; k < c->n; k++) {
            if (c->ps[k].value != 0 || !set_healthy(c, k)) {
                continue;
            }
            if (r == 0) {
                return k;
            }
            r--;
            fallback = k;
        }
    }
    return fallback;
}

/* The primary unless it is unhealthy and the secondary is healthy. Both unhealthy means none
 * is, so both count as healthy and the primary answers (Route 53's rule). */
static uint32_t choose_failover(const pol_ctx_t *c)
{
    uint32_t primary = ZJ_IMG_NONE, secondary = ZJ_IMG_NONE;
    for (uint32_t k = 0; k < c->n; k++) {
        if (c->ps[k].value == ZJ_FAILOVER_PRIMARY && primary == ZJ_IMG_NONE) {
            primary = k;
        } else if (c->ps[k].value == ZJ_FAILOVER_SECONDARY && secondary == ZJ_IMG_NONE) {
            secondary = k;
        }
    }
    if (primary == ZJ_IMG_NONE) {
        return secondary != ZJ_IMG_NONE ? secondary : 0; /* the compiler requires a primary */
    }
    if (!set_healthy(c, primary) && secondary != ZJ_IMG_NONE && set_healthy(c, secondary)) {
        return secondary;
    }
    return primary;
}

/* Up to ZJ_POLICY_MAX_ANSWER healthy sets, a uniform random subset in random order (reservoir
 * sampling, then a shuffle). None healthy: the same over all sets (the common rule). */
static unsigned choose_multivalue(const pol_ctx_t *c, uint64_t *rng, uint32_t *out)
{
    unsigned m = 0;
    uint32_t seen = 0;
    for (uint32_t k = 0; k < c->n; k++) {
        if (!set_healthy(c, k)) {
            continue;
        }
        if (m < ZJ_POLICY_MAX_ANSWER) {
            out[m++] = k;
        } else {
            uint32_t j = zj_rand_below(rng, seen + 1);
            if (j < ZJ_POLICY_MAX_ANSWER) {
                out[j] = k;
            }
        }
        seen++;
    }
    for (unsigned i = m; i > 1; i--) {
        uint32_t j = zj_rand_below(rng, i);
        uint32_t t = out[i - 1];
        out[i - 1] = out[j];
        out[j] = t;
    }
    if (m == 0 && c->n > 0) {
        out[m++] = 0; /* every set flipped to unhealthy between reads */
    }
    return m;
}

/* ---- address-driven policies --------------------------------------------------------------- */

/* Value of the client's address in a table's prefix maps, or ZJ_IMG_NONE (also when the
 * client's address is unknown: *scope = 0 then). */
static uint32_t table_find(const zj_image_t *img, const zj_img_table_d *t, const zj_client_t *cl,
                           uint8_t *scope)
{
    *scope = 0;
    if (cl->family == AF_INET && t->n4 > 0) {
        return zj_pmap4_find(img->pmap4 + t->first4, t->n4, zj_be32(cl->addr), scope);
    }
    if (cl->family == AF_INET6 && t->n6 > 0) {
        return zj_pmap6_find(img->pmap6 + t->first6, t->n6, cl->addr, scope);
    }
    return ZJ_IMG_NONE;
}

static bool geo_locate(const zj_policy_env_t *env, zj_geo_loc_t *loc, uint8_t *scope)
{
    const zj_client_t *cl = env->client;
    *scope = 0;
    memset(loc, 0, sizeof(*loc));
    if (env->geo == NULL || (cl->family != AF_INET && cl->family != AF_INET6)) {
        return false;
    }
    return zj_geo_lookup(env->geo, cl->family, cl->addr, loc, scope);
}

/* Does a location (level, code, subdivision) hold loc? The default matches everything. */
static bool geo_matches(unsigned level, uint16_t code, uint32_t sub, const zj_geo_loc_t *loc,
                        bool located)
{
    switch (level) {
    case ZJ_GEO_DEFAULT:
        return true;
    case ZJ_GEO_CONTINENT:
        return located && loc->continent != 0 && code == loc->continent;
    case ZJ_GEO_COUNTRY:
        return located && loc->country != 0 && code == loc->country;
    case ZJ_GEO_SUBDIVISION:
        return located && loc->country != 0 && code == loc->country && loc->subdivision != 0 &&
               sub == loc->subdivision;
    default:
        return false;
    }
}

/* Geolocation: the most specific matching set (subdivision, country, continent, default).
 *
 * Unhealthy matches follow Route 53's geolocation rule ("Values specific for geolocation
 * records", health check): when the most specific record's endpoint is unhealthy, Route 53 looks
 * at the records for the larger regions that hold it (country, then continent, then the
 * default) and answers with the first healthy one. That documented rule is implemented as such.
 * When every matching set is unhealthy while some set elsewhere is healthy, the documentation
 * says nothing; answering a set for another region would send clients where the operator did not
 * route them, and NODATA would take the name away, so the most specific match answers (the
 * fail-open choice Route 53 documents for its other location policies, e.g. AZ affinity:
 * "If every record that matches a query is unhealthy, Route 53 responds with the most specific
 * one"). No match and no default: 0 sets, NODATA. */
static unsigned choose_geo(const pol_ctx_t *c, const zj_policy_env_t *env, uint32_t *out,
                           uint8_t *scope)
{
    zj_geo_loc_t loc;
    bool located = geo_locate(env, &loc, scope);
    uint32_t best[4] = {ZJ_IMG_NONE, ZJ_IMG_NONE, ZJ_IMG_NONE, ZJ_IMG_NONE}; /* by level */
    for (uint32_t k = 0; k < c->n; k++) {
        const zj_img_pset_d *s = &c->ps[k];
        if (s->geo_level <= ZJ_GEO_SUBDIVISION && best[s->geo_level] == ZJ_IMG_NONE &&
            geo_matches(s->geo_level, s->geo_code, s->value, &loc, located)) {
            best[s->geo_level] = k;
        }
    }
    uint32_t first = ZJ_IMG_NONE;
    for (int level = ZJ_GEO_SUBDIVISION; level >= ZJ_GEO_DEFAULT; level--) {
        uint32_t k = best[level];
        if (k == ZJ_IMG_NONE) {
            continue;
        }
        if (set_healthy(c, k)) {
            out[0] = k;
            return 1;
        }
        if (first == ZJ_IMG_NONE) {
            first = k;
        }
    }
    if (first == ZJ_IMG_NONE) {
        return 0;
    }
    out[0] = first;
    return 1;
}

/* CIDR: the set for the location the collection's longest prefix gives, else the "*" set, else
 * NODATA. An unhealthy location set falls back to "*" as an unhealthy geolocation record falls
 * back to its larger region; when both are unhealthy the location set answers (as for geo). */
static unsigned choose_cidr(const pol_ctx_t *c, const zj_img_policy_d *pol,
                            const zj_policy_env_t *env, uint32_t *out, uint8_t *scope)
{
    const zj_image_t *img = c->img;
    uint32_t loc = ZJ_IMG_NONE;
    *scope = 0;
    if (pol->table < img->n_tables) {
        loc = table_find(img, &img->tables[pol->table], env->client, scope);
    }
    uint32_t match = ZJ_IMG_NONE, dflt = ZJ_IMG_NONE;
    for (uint32_t k = 0; k < c->n; k++) {
        uint32_t v = c->ps[k].value;
        if (v == ZJ_IMG_NONE) {
            dflt = dflt == ZJ_IMG_NONE ? k : dflt;
        } else if (v == loc) {
            match = match == ZJ_IMG_NONE ? k : match;
        }
    }
    if (match != ZJ_IMG_NONE &&
        (set_healthy(c, match) || dflt == ZJ_IMG_NONE || !set_healthy(c, dflt))) {
        out[0] = match;
        return 1;
    }
    if (dflt != ZJ_IMG_NONE) {
        out[0] = dflt;
        return 1;
    }
    return 0;
}

/* The latency table entry for the client: a client-prefix entry through the prefix maps, else
 * the most specific matching location entry, else the "*" entry; ZJ_IMG_NONE if none. */
static uint32_t latency_entry(const zj_image_t *img, const zj_img_table_d *t,
                              const zj_policy_env_t *env, uint8_t *scope)
{
    uint32_t e = table_find(img, t, env->client, scope);
    if (e != ZJ_IMG_NONE && e < t->n_values) {
        return e;
    }
    zj_geo_loc_t loc;
    uint8_t geo_scope = 0;
    bool located = geo_locate(env, &loc, &geo_scope);
    /* the choice below depends on both lookups having missed or matched as they did */
    *scope = geo_scope > *scope ? geo_scope : *scope;
    const uint32_t *v = img->u32 + t->values_off;
    uint32_t best = ZJ_IMG_NONE;
    int best_level = -1;
    for (uint32_t i = 0; i < t->n_values; i++) {
        uint32_t w0 = v[i * ZJ_LAT_ENTRY_WORDS];
        if (w0 == ZJ_LAT_PREFIX_ENTRY) {
            continue;
        }
        int level = (int)(w0 >> 16);
        if (level > best_level && geo_matches((unsigned)level, (uint16_t)w0,
                                              v[i * ZJ_LAT_ENTRY_WORDS + 1], &loc, located)) {
            best = i;
            best_level = level;
        }
    }
    return best;
}

/* Latency: walk the client's region preference list and take the first region whose set is
 * healthy; then any healthy set in declaration order. */
static unsigned choose_latency(const pol_ctx_t *c, const zj_img_policy_d *pol,
                               const zj_policy_env_t *env, uint32_t *out, uint8_t *scope)
{
    const zj_image_t *img = c->img;
    *scope = 0;
    if (pol->table < img->n_tables) {
        const zj_img_table_d *t = &img->tables[pol->table];
        uint32_t e = latency_entry(img, t, env, scope);
        if (e != ZJ_IMG_NONE) {
            const uint32_t *ent = img->u32 + t->values_off + e * ZJ_LAT_ENTRY_WORDS;
            const uint32_t *regions = img->u32 + ent[2];
            for (uint32_t j = 0; j < ent[3]; j++) {
                for (uint32_t k = 0; k < c->n; k++) {
                    if (c->ps[k].value == regions[j] && set_healthy(c, k)) {
                        out[0] = k;
                        return 1;
                    }
                }
            }
        }
    }
    for (uint32_t k = 0; k < c->n; k++) {
        if (set_healthy(c, k)) {
            out[0] = k;
            return 1;
        }
    }
    out[0] = 0; /* every set flipped to unhealthy between reads */
    return c->n > 0 ? 1 : 0;
}

unsigned zj_policy_choose(const zj_image_t *img, uint32_t p, const zj_policy_env_t *env,
                          uint32_t out[ZJ_POLICY_MAX_ANSWER], uint8_t *scope)
{
    static const zj_client_t no_client = {.family = 0};
    const zj_img_policy_d *pol = &img->policies[p];
    zj_policy_env_t e = *env;
    pol_ctx_t c;
    unsigned n = 0;
    *scope = 0;
    if (e.client == NULL) {
        e.client = &no_client;
    }
    ctx_init(&c, img, pol);
    if (c.n == 0) {
        return 0;
    }
    switch (pol->kind) {
    case ZJ_POL_WEIGHTED:
        out[0] = choose_weighted(&c, e.rng);
        n = 1;
        break;
    case ZJ_POL_FAILOVER:
        out[0] = choose_failover(&c);
        n = 1;
        break;
    case ZJ_POL_MULTIVALUE:
        n = choose_multivalue(&c, e.rng, out);
        break;
    case ZJ_POL_GEO:
        n = choose_geo(&c, &e, out, scope);
        break;
    case ZJ_POL_CIDR:
        n = choose_cidr(&c, pol, &e, out, scope);
        break;
    case ZJ_POL_LATENCY:
        n = choose_latency(&c, pol, &e, out, scope);
        break;
    default:
        return 0; /* image validation admits no other kind */
    }
    for (unsigned i = 0; i < n; i++) {
        out[i] += pol->first_rrset;
    }
    return n;
}
