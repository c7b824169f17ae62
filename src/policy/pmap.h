/* Prefix maps (zj_pmap4_d / zj_pmap6_d, include/zonejet/image.h): longest-prefix match as a
 * binary search over disjoint pieces, and the ECS scope of the result.
 *
 * Built off the query path (the compiler for CIDR collections and latency tables, the server for
 * a geolocation database); looked up on it. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "zonejet/image.h"

typedef struct zj_prefix {
    uint8_t family; /* AF_INET or AF_INET6 */
    uint8_t len;    /* 0-32 or 0-128; host bits of addr are zero */
    uint8_t addr[16];
    uint32_t value;
} zj_prefix_t;

/** Flatten n prefixes (any order, nesting allowed: the longest prefix wins) into two maps that
 *  each cover their whole address space. Two prefixes equal in family, address and length are
 *  ZJ_EINVAL. The arrays are malloc'ed (free() them); ZJ_ENOMEM. */
int zj_pmap_build(const zj_prefix_t *p, size_t n, zj_pmap4_d **out4, size_t *n4, zj_pmap6_d **out6,
                  size_t *n6);

/** Value of the piece holding addr (host order), or ZJ_IMG_NONE; *scope receives the length of
 *  the largest aligned block around addr that lies inside the piece (at least the piece's prefix
 *  length): the ECS scope for which the answer holds. m covers the space (n >= 1). */
uint32_t zj_pmap4_find(const zj_pmap4_d *m, size_t n, uint32_t addr, uint8_t *scope);

/** zj_pmap4_find with the search narrowed to pieces [lo, hi) (lo < hi <= n), which the caller
 *  knows hold addr (e.g. from a first-level index on the high bits, src/policy/geo.c). */
uint32_t zj_pmap4_find_in(const zj_pmap4_d *m, size_t n, size_t lo, size_t hi, uint32_t addr,
                          uint8_t *scope);

/** The same for IPv6; addr is 16 bytes in network order. */
uint32_t zj_pmap6_find(const zj_pmap6_d *m, size_t n, const uint8_t *addr, uint8_t *scope);

/** Check a map read from an image: n >= 1, piece 0 at 0, starts strictly increasing, len within
 *  the family and every piece inside the prefix its len describes. */
bool zj_pmap4_valid(const zj_pmap4_d *m, size_t n);
bool zj_pmap6_valid(const zj_pmap6_d *m, size_t n);
