/* Response Rate Limiting, after BIND's and Knot's RRL: a spoofed-source flood must not turn this
 * server into an amplifier, yet a real client behind the flooded prefix must still get answers.
 *
 * Accounting (BIND semantics). Each bucket holds a credit: the responses its key may still get.
 * A new bucket starts at rate; each response takes one; every whole second adds rate, capped at
 * rate. While the credit is 0 or less the response is limited, and the credit keeps falling, down
 * to -rate * window. So a source that floods above the rate is limited for as long as it floods
 * and for up to window seconds after, and a bucket idle longer than window starts afresh. Of the
 * limited responses every slip-th one "slips": the caller sends it truncated (TC=1), so a real
 * client sharing the prefix retries over TCP; the others are dropped. Seconds are now_ms / 1000:
 * at most 2 * rate can pass around a second boundary, as in BIND and Knot.
 *
 * Key. A bucket is found by XXH3 over (family, class, name length, source prefix, lower-cased key
 * name zero-padded to 8-byte words) with a seed drawn at creation, so that nobody can aim
 * collisions at a victim's bucket. The low hash bits pick the slot; the high 32 bits are its tag.
 * A slot holding another tag is taken over and reset: the evicted key starts afresh when it
 * returns, which errs towards answering (no probing, no chains: bounded work, and the table is
 * sized so that real keys rarely meet).
 *
 * Threads. One table is shared by every worker with no lock: each field of a bucket is a C11
 * atomic used with relaxed ordering. The debit is an atomic decrement, so no response is lost to a
 * race; the per-second refill is claimed by a compare-exchange on the bucket's time, so one worker
 * adds it (and debits its own response in the same store). What a race can still do (a refill
 * landing on a bucket being taken over, a decrement lost to the refill's store) costs a response
 * of precision, never memory safety: the slot index is always hash & mask. The credit of a bucket
 * at its debt floor is only read, so a one-prefix flood writes just the slip counter.
 *
 * Cost: 14.7 ns per call, best of 5 (test_rrl_cost_per_call: gcc 12 RelWithDebInfo, the 2-core
 * EPYC dev VM, one worker; a quarter of the calls limited, the rest on the refill path).
 *
 * Rejected: a lock per group of buckets (older Knot): it costs atomics even uncontended and
 * serialises the workers under a one-prefix flood; per-worker tables (a flood spread over workers
 * by SO_REUSEPORT would get rate per worker); a random slip roll (Knot: needs per-worker RNG state
 * here, and a counter gives tests an exact pattern); per-class rates (BIND): one rate until someone
 * needs more. */
#include "dns/rrl.h"

#include <netinet/in.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
/* Inlined: a call through the shared library's PLT was a quarter of the cost per call
 * (perf on test_rrl_cost_per_call). */
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "zonejet/compiler.h"
#include "zonejet/err.h"

/* Largest wire name (RFC 1035 §2.3.4); key bytes past it are ignored. */
#define KEY_NAME_MAX 255
/* The key in 64-bit words: a header word (family, class, name length, IPv4 address), two words
 * of IPv6 address, and the name zero-padded to whole words. */
#define KEY_WORDS (3 + (KEY_NAME_MAX + 7) / 8)

/* One slot of the table: 16 bytes, four to a cache line. */
typedef struct zj_rrl_bucket {
    _Atomic uint32_t tag;       /* high 32 bits of the key hash, bit 0 forced on; 0 = empty */
    _Atomic uint32_t time_s;    /* second of the last refill */
    _Atomic int32_t credit;     /* responses left; negative = debt, floor -rate * window */
    _Atomic uint32_t n_limited; /* limited responses since the credit was last full */
} zj_rrl_bucket_t;
ZJ_STATIC_SIZE(zj_rrl_bucket_t, 16);

struct zj_rrl {
    zj_rrl_bucket_t *buckets;
    uint64_t mask; /* table_size - 1 */
    uint64_t seed;
    int32_t rate;
    int32_t floor; /* -rate * window */
    uint32_t window_s;
    uint32_t slip;
    uint32_t v4_mask;    /* in memory order, like the address it masks */
    uint64_t v6_mask[2]; /* ditto */
};

void zj_rrl_cfg_default(zj_rrl_cfg_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->rate = 0;
    cfg->window_s = ZJ_RRL_WINDOW_DEFAULT;
    cfg->slip = ZJ_RRL_SLIP_DEFAULT;
    cfg->ipv4_prefix = ZJ_RRL_IPV4_PREFIX_DEFAULT;
    cfg->ipv6_prefix = ZJ_RRL_IPV6_PREFIX_DEFAULT;
    cfg->table_size = ZJ_RRL_TABLE_DEFAULT;
}

static int reject(char *err, size_t errcap, const char *what, uint32_t value, uint32_t lo,
                  uint32_t hi)
{
    if (err != NULL && errcap > 0) {
        snprintf(err, errcap, "rrl: %s %u out of range %u..%u", what, value, lo, hi);
    }
    return ZJ_EINVAL;
}

int zj_rrl_cfg_check(const zj_rrl_cfg_t *cfg, char *err, size_t errcap)
{
    if (cfg->rate > ZJ_RRL_RATE_MAX) {
        return reject(err, errcap, "rate", cfg->rate, 0, ZJ_RRL_RATE_MAX);
    }
    if (cfg->window_s < 1 || cfg->window_s > ZJ_RRL_WINDOW_MAX) {
        return reject(err, errcap, "window", cfg->window_s, 1, ZJ_RRL_WINDOW_MAX);
    }
    /* The credit is an int32 that must hold rate * (window + 1): the debt floor plus a refill. */
    uint64_t span = (uint64_t)cfg->rate * ((uint64_t)cfg->window_s + 1);
    if (span > INT32_MAX) {
        if (err != NULL && errcap > 0) {
            snprintf(err, errcap, "rrl: rate %u * window %u too large", cfg->rate, cfg->window_s);
        }
        return ZJ_EINVAL;
    }
    if (cfg->slip > ZJ_RRL_SLIP_MAX) {
        return reject(err, errcap, "slip", cfg->slip, 0, ZJ_RRL_SLIP_MAX);
    }
    if (cfg->ipv4_prefix > 32) {
        return reject(err, errcap, "ipv4-prefix", cfg->ipv4_prefix, 0, 32);
    }
    if (cfg->ipv6_prefix > 128) {
        return reject(err, errcap, "ipv6-prefix", cfg->ipv6_prefix, 0, 128);
    }
    uint32_t n = cfg->table_size;
    if (n < 1 || n > ZJ_RRL_TABLE_MAX || (n & (n - 1)) != 0) {
        if (err != NULL && errcap > 0) {
            snprintf(err, errcap, "rrl: table-size %u is not a power of two in 1..%u", n,
                     (unsigned)ZJ_RRL_TABLE_MAX);
        }
        return ZJ_EINVAL;
    }
    return ZJ_OK;
}

/* The seed only has to be unknown to a remote attacker. getrandom() with GRND_NONBLOCK fails only
 * on a kernel without it or before the pool is ready at early boot; the fallback (clock and ASLR
 * addresses) is weaker but still not guessable from outside, and RRL must not fail to start. */
static uint64_t draw_seed(const void *salt)
{
    uint64_t seed = 0;
    if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) == (ssize_t)sizeof(seed)) {
        return seed;
    }
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t mix[3] = {(uint64_t)ts.tv_sec, (uint64_t)ts.tv_nsec, (uint64_t)(uintptr_t)salt};
    return XXH3_64bits(mix, sizeof(mix));
}

zj_rrl_t *zj_rrl_new(const zj_rrl_cfg_t *cfg)
{
    if (cfg->rate == 0 || zj_rrl_cfg_check(cfg, NULL, 0) != ZJ_OK) {
        return NULL;
    }
    zj_rrl_t *rrl = calloc(1, sizeof(*rrl));
    if (rrl == NULL) {
        return NULL;
    }
    void *mem = NULL;
    if (posix_memalign(&mem, ZJ_CACHELINE, (size_t)cfg->table_size * sizeof(zj_rrl_bucket_t)) !=
        0) {
        free(rrl);
        return NULL;
    }
    rrl->buckets = mem;
    /* Initialise every slot now: this also touches every page, so the query path never takes a
     * first-touch page fault. */
    for (uint32_t i = 0; i < cfg->table_size; i++) {
        atomic_init(&rrl->buckets[i].tag, 0);
        atomic_init(&rrl->buckets[i].time_s, 0);
        atomic_init(&rrl->buckets[i].credit, 0);
        atomic_init(&rrl->buckets[i].n_limited, 0);
    }
    rrl->mask = (uint64_t)cfg->table_size - 1;
    rrl->seed = cfg->hash_seed != 0 ? cfg->hash_seed : draw_seed(rrl);
    rrl->rate = (int32_t)cfg->rate;
    rrl->floor = -(int32_t)(cfg->rate * cfg->window_s);
    rrl->window_s = cfg->window_s;
    rrl->slip = cfg->slip;
    /* A shift by 32 is undefined, hence the 64-bit intermediate for prefix 0. */
    uint32_t m4 = (uint32_t)(0xffffffff00000000ull >> cfg->ipv4_prefix);
    rrl->v4_mask = htonl(m4);
    uint8_t m6[16];
    for (unsigned i = 0; i < 16; i++) {
        unsigned bits = cfg->ipv6_prefix > i * 8 ? cfg->ipv6_prefix - i * 8 : 0;
        m6[i] = (uint8_t)(bits >= 8 ? 0xffu : 0xff00u >> bits);
    }
    memcpy(rrl->v6_mask, m6, sizeof(m6));
    return rrl;
}

void zj_rrl_free(zj_rrl_t *rrl)
{
    if (rrl == NULL) {
        return;
    }
    free(rrl->buckets);
    free(rrl);
}

/* Fold ASCII upper case to lower case in the eight bytes of x (RFC 4343 §3); label length bytes
 * are at most 63, below 'A', so they pass unchanged. For each byte b with the high bit clear,
 * bit 7 of (b + 0x80 - 'A') is set when b >= 'A', and of (b + 0x80 - 'Z' - 1) when b > 'Z'; no
 * byte carries into the next because b < 0x80. Where b is in 'A'..'Z', 0x80 >> 2 sets 0x20. */
static inline uint64_t fold_case(uint64_t x)
{
    const uint64_t ones = 0x0101010101010101ull;
    const uint64_t high = 0x8080808080808080ull;
    uint64_t low7 = x & ~high;
    uint64_t ge_a = low7 + ones * (0x80 - 'A');
    uint64_t gt_z = low7 + ones * (0x80 - 'Z' - 1);
    return x | ((ge_a & ~gt_z & ~x & high) >> 2);
}

/* Build the bucket key in whole words; returns the number of words, or 0 for a source that is not
 * IP. Whole words so that XXH3's 8-byte loads forward from the stores that wrote them: with byte
 * stores and a memcpy for the tail, test_rrl_cost_per_call measured 27.5 ns per call, with words
 * 14.7 ns. The name length in the header keeps zero padding from making two names equal. An
 * IPv4-mapped IPv6 address (a dual-stack socket, RFC 4291 §2.5.5.2) is keyed as the IPv4 address it
 * is: under the IPv6 prefix every IPv4 client would share one bucket. */
static size_t build_key(const zj_rrl_t *rrl, const struct sockaddr *src, unsigned cls,
                        const uint8_t *name, size_t name_len, uint64_t *key)
{
    uint64_t family;
    uint32_t v4 = 0;
    size_t n = 1;
    if (src->sa_family == AF_INET) {
        family = 4;
        memcpy(&v4, &((const struct sockaddr_in *)(const void *)src)->sin_addr, 4);
    } else if (src->sa_family == AF_INET6) {
        const uint8_t *a = ((const struct sockaddr_in6 *)(const void *)src)->sin6_addr.s6_addr;
        static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (memcmp(a, mapped, sizeof(mapped)) == 0) {
            family = 4;
            memcpy(&v4, a + 12, 4);
        } else {
            family = 6;
            memcpy(&key[1], a, 16);
            key[1] &= rrl->v6_mask[0];
            key[2] &= rrl->v6_mask[1];
            n = 3;
        }
    } else {
        return 0;
    }
    v4 &= rrl->v4_mask;
    key[0] = family | (uint64_t)cls << 8 | (uint64_t)name_len << 16 | (uint64_t)v4 << 32;

    size_t i = 0;
    for (; i + 8 <= name_len; i += 8) {
        uint64_t x;
        memcpy(&x, name + i, 8);
        key[n++] = fold_case(x);
    }
    if (i < name_len) {
        /* the last 1..7 bytes, without reading past the caller's name */
        uint64_t x = 0;
        for (unsigned j = 0; i + j < name_len; j++) {
            x |= (uint64_t)name[i + j] << (8 * j);
        }
        key[n++] = fold_case(x);
    }
    return n;
}

/* The credit a bucket has after elapsed (> 0) seconds without a refill: rate per whole second,
 * capped at rate; a bucket idle for more than window starts afresh (BIND). */
static int32_t refilled(const zj_rrl_t *rrl, zj_rrl_bucket_t *b, uint32_t elapsed)
{
    int64_t credit = atomic_load_explicit(&b->credit, memory_order_relaxed);
    if (elapsed > rrl->window_s) {
        credit = rrl->rate;
    } else {
        /* a racing decrement may have gone a step below the floor */
        credit = (credit < rrl->floor ? rrl->floor : credit) + (int64_t)rrl->rate * elapsed;
    }
    if (credit >= rrl->rate) {
        credit = rrl->rate;
        atomic_store_explicit(&b->n_limited, 0, memory_order_relaxed);
    }
    return (int32_t)credit;
}

int zj_rrl_decide(zj_rrl_t *rrl, const struct sockaddr *src, int cls, const uint8_t *key_name,
                  size_t key_len, uint64_t now_ms)
{
    uint64_t key[KEY_WORDS];
    if (src == NULL) {
        return ZJ_RRL_PASS;
    }
    assert(cls >= 0 && cls < ZJ_RRL_CLS_COUNT);
    unsigned c = (unsigned)cls < ZJ_RRL_CLS_COUNT ? (unsigned)cls : ZJ_RRL_CLS_ERROR;
    size_t n =
        build_key(rrl, src, c, key_name, key_len > KEY_NAME_MAX ? KEY_NAME_MAX : key_len, key);
    if (n == 0) {
        return ZJ_RRL_PASS;
    }

    uint64_t h = XXH3_64bits_withSeed(key, n * sizeof(key[0]), rrl->seed);
    zj_rrl_bucket_t *b = &rrl->buckets[h & rrl->mask];
    uint32_t tag = (uint32_t)(h >> 32) | 1u;
    uint32_t now_s = (uint32_t)(now_ms / 1000);

    if (unlikely(atomic_load_explicit(&b->tag, memory_order_relaxed) != tag)) {
        /* New key or a collision: take the slot over; this response is its first. */
        atomic_store_explicit(&b->tag, tag, memory_order_relaxed);
        atomic_store_explicit(&b->time_s, now_s, memory_order_relaxed);
        atomic_store_explicit(&b->credit, rrl->rate - 1, memory_order_relaxed);
        atomic_store_explicit(&b->n_limited, 0, memory_order_relaxed);
        return ZJ_RRL_PASS;
    }

    /* A new second: the worker whose compare-exchange moves time_s adds the credit, and debits
     * this response in the same store (the refilled credit is at least floor + rate, so one more
     * response fits). A clock that steps back counts as no time (BIND). Otherwise one atomic
     * decrement, skipped at the floor so that a flood only reads the bucket. */
    int32_t credit;
    uint32_t then = atomic_load_explicit(&b->time_s, memory_order_relaxed);
    if ((int32_t)(now_s - then) > 0 &&
        atomic_compare_exchange_strong_explicit(&b->time_s, &then, now_s, memory_order_relaxed,
                                                memory_order_relaxed)) {
        credit = refilled(rrl, b, now_s - then);
        atomic_store_explicit(&b->credit, credit - 1, memory_order_relaxed);
    } else {
        credit = atomic_load_explicit(&b->credit, memory_order_relaxed);
        if (credit > rrl->floor) {
            credit = atomic_fetch_sub_explicit(&b->credit, 1, memory_order_relaxed);
        }
    }
    if (likely(credit > 0)) {
        return ZJ_RRL_PASS;
    }
    if (rrl->slip == 0) {
        return ZJ_RRL_DROP;
    }
    uint32_t k = atomic_fetch_add_explicit(&b->n_limited, 1, memory_order_relaxed) + 1;
    return k % rrl->slip == 0 ? ZJ_RRL_SLIP : ZJ_RRL_DROP;
}
