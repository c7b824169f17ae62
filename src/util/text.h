/* Small text helpers shared by the zone-file and policy-file parsers and the config reader. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

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
