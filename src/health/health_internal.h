/* Inspection and injection of one check's state, for tests (tests/unit/test_health.c). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "health/health.h"
#include "health/probe.h"

typedef struct zj_health_info {
    uint8_t state;        /* what the query path reads: 1 healthy, 0 not */
    unsigned streak;      /* consecutive results equal to the last one */
    unsigned flip_streak; /* streak when the state last changed (0: never changed) */
    uint64_t n_results;   /* probe results recorded */
    uint64_t n_flips;     /* state changes */
    unsigned refs;        /* images using the check */
    const uint8_t *byte;  /* address of the state byte */
    char last[ZJ_PROBE_RESULT_CAP];
} zj_health_info_t;

/** Copy check c of attached image img into out. ZJ_ENOENT when img is not attached. */
int zj_health_info(zj_health_t *h, const zj_image_t *img, uint32_t c, zj_health_info_t *out);

/** Record a result for check c of img as if a probe had produced it (is_ok before inversion).
 *  For a registry whose thread is not started, this drives the state machine exactly. */
int zj_health_feed(zj_health_t *h, const zj_image_t *img, uint32_t c, bool is_ok, const char *text);
