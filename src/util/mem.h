/* Growing arrays off the query path (control plane, loaders, the health registry). */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

/** The array p of capacity *cap (elements of elem bytes) with room for need elements: p itself
 *  when it has room, else p reallocated to the first power-of-two multiple of first (or of
 *  *cap) that holds need, *cap updated. NULL when out of memory (p stays valid, *cap
 *  unchanged). need >= 1. */
static inline void *zj_grow(void *p, size_t *cap, size_t need, size_t elem, size_t first)
{
    if (need <= *cap) {
        return p;
    }
    size_t c = *cap > 0 ? *cap : first;
    while (c < need) {
        if (c > SIZE_MAX / 2 / elem) {
            return NULL;
        }
        c *= 2;
    }
    void *q = realloc(p, c * elem);
    if (q != NULL) {
        *cap = c;
    }
    return q;
}
