/* Compiler attributes and small helpers shared by every module. */
#pragma once

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>

#define ZJ_NONNULL __attribute__((nonnull))
#define ZJ_WUR __attribute__((warn_unused_result))
#define ZJ_HOT __attribute__((hot))
#define ZJ_COLD __attribute__((cold))
#define ZJ_UNUSED __attribute__((unused))
#define ZJ_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define ZJ_CACHELINE 64
#define ZJ_ALIGNED_CL __attribute__((aligned(ZJ_CACHELINE)))
#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#define ZJ_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#ifdef __cplusplus
#define ZJ_STATIC_ASSERT(cond, msg) static_assert(cond, msg)
#else
#define ZJ_STATIC_ASSERT(cond, msg) _Static_assert(cond, msg)
#endif
#define ZJ_STATIC_SIZE(type, size) ZJ_STATIC_ASSERT(sizeof(type) == (size), #type " size is pinned")

/* Always-on check for conditions whose failure means memory corruption (STYLE §3). */
#define ZJ_VERIFY(x)                                                                               \
    do {                                                                                           \
        if (unlikely(!(x))) {                                                                      \
            fprintf(stderr, "%s:%d: verify failed: %s\n", __FILE__, __LINE__, #x);                 \
            abort();                                                                               \
        }                                                                                          \
    } while (0)
