/* Per-worker pseudo-random numbers for randomised answers (weighted and multivalue policies).
 *
 * xoroshiro128++ over two words of state owned by the caller (the responder's rng[2]): a few
 * cycles, no shared state, and a fixed seed gives a reproducible sequence, which the
 * statistical tests rely on. Not for anything that needs unpredictability against an attacker:
 * a client that learns which records it was given learns nothing it could exploit. */
#pragma once

#include <stdint.h>

static inline uint64_t zj_rand_rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

/** Next 64 random bits; s is two words, not both zero. Hot-path safe. */
static inline uint64_t zj_rand_next(uint64_t *s)
{
    uint64_t s0 = s[0], s1 = s[1];
    uint64_t r = zj_rand_rotl(s0 + s1, 17) + s0;
    s1 ^= s0;
    s[0] = zj_rand_rotl(s0, 49) ^ s1 ^ (s1 << 21);
    s[1] = zj_rand_rotl(s1, 28);
    return r;
}

/** Uniform-enough value in [0, n), n >= 1: the high half of a 32x32 product (Lemire). The bias
 *  is below n / 2^32, under 1e-4 for every n a policy can produce (at most 65535 x 255). */
static inline uint32_t zj_rand_below(uint64_t *s, uint32_t n)
{
    uint64_t x = zj_rand_next(s) >> 32;
    return (uint32_t)((x * n) >> 32);
}
