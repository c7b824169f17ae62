/* Small text helpers shared by the zone-file and policy-file parsers, the config reader and
 * the name folding of the query path. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** ASCII upper case; other bytes unchanged (zone files are not locale text). */
static inline char zj_upper(char c)
{
    return c >= 'a' && c <= 'z' ? (char)(c - 32) : c;
}

/** True if the alen bytes at a equal the NUL-terminated b, ignoring ASCII case. */
static inline bool zj_eq_nocase(const char *a, size_t alen, const char *b)
{
    size_t i = 0;
    for (; i < alen; i++) {
        if (b[i] == '\0' || zj_upper(a[i]) != zj_upper(b[i])) {
            return false;
        }
    }
    return b[i] == '\0';
}

/** Value of a hexadecimal digit (either case), or -1. */
static inline int zj_hex_digit(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/** Lower-case 8 ASCII bytes at once (SWAR): a byte gets 0x20 added when it lies in 'A'..'Z'.
 *  DNS label length bytes are below 64 and so never change: a wire name folds word by word. */
static inline uint64_t zj_lower8(uint64_t x)
{
    const uint64_t ones7 = 0x7F7F7F7F7F7F7F7Full;
    uint64_t h = x & ones7;
    uint64_t ge_a = h + 0x3F3F3F3F3F3F3F3Full; /* high bit set where byte >= 'A' */
    uint64_t gt_z = h + 0x2525252525252525ull; /* high bit set where byte > 'Z' */
    uint64_t upper = (ge_a ^ gt_z) & ~x & 0x8080808080808080ull;
    return x | (upper >> 2);
}
