/* Small text helpers shared by the zone-file parser and the config reader. */
#pragma once

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
