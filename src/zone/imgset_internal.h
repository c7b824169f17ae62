/* Layout of an image set, for the answer path (src/dns/answer.c) and the control plane. */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <xxhash.h>

#include "zone/imgset.h"
#include "zonejet/zone.h"

typedef struct zj_imgsrc zj_imgsrc_t; /* a source and its image, shared between sets (imgset.c) */

/* One zone apex of the set. An empty slot has img == NULL. */
typedef struct zj_imgdir_slot {
    uint64_t hash;         /* zj_imgdir_hash of the apex */
    const uint8_t *name;   /* the apex, lower-case wire name inside img */
    const zj_image_t *img; /* the image serving the zone */
    uint32_t zone;         /* its index in img */
    uint8_t name_len;      /* bytes of name */
    uint8_t labels;        /* labels of name, not counting the root */
} zj_imgdir_slot_t;

/* Merged zone directory: every apex of every image of the set, so that finding a query's zone
 * costs one probe per candidate suffix however many images there are. Open addressing, linear
 * probing, at most half full; built by zj_imgset_index, off the query path. */
typedef struct zj_imgdir {
    zj_imgdir_slot_t *slots; /* mask + 1 slots; NULL: no directory (every lookup misses) */
    size_t mask;
    uint64_t seed;  /* per set, from getrandom (see imgset.c) */
    int min_labels; /* label counts of the shallowest and deepest apex in the set: */
    int max_labels; /* bound the suffixes a lookup has to try */
} zj_imgdir_t;

struct zj_imgset {
    zj_image_t **images; /* images[i] is srcs[i]'s image */
    size_t n_images;
    zj_imgsrc_t **srcs;       /* n_images entries; NULL in sets made by zj_imgset_from_images */
    zj_imgdir_t dir;          /* what the answer path reads; rebuilt by zj_imgset_index */
    struct zj_health *health; /* registry the set's images are attached to, or NULL */
    const struct zj_geo *geo; /* geolocation database for geo policies and latency tables, or
                               * NULL; owned by the server, which keeps it alive as long as any
                               * set that points at it (src/policy/geo.h) */
};

static inline uint64_t zj_imgdir_hash(uint64_t seed, const uint8_t *lname, size_t len)
{
    return XXH3_64bits_withSeed(lname, len, seed);
}

/** The slot whose apex is the lower-case wire name lname (len bytes), or NULL. Hot-path safe:
 *  no more slot visits than the longest run of full slots (zj_imgset_dir_max_run). */
static inline const zj_imgdir_slot_t *zj_imgdir_find(const zj_imgdir_t *d, const uint8_t *lname,
                                                     size_t len)
{
    uint64_t h = zj_imgdir_hash(d->seed, lname, len);
    for (size_t i = (size_t)h & d->mask;; i = (i + 1) & d->mask) {
        const zj_imgdir_slot_t *s = &d->slots[i];
        if (s->img == NULL) {
            return NULL; /* at most half full: an empty slot always ends the run */
        }
        if (s->hash == h && s->name_len == len && memcmp(s->name, lname, len) == 0) {
            return s;
        }
    }
}

/** The zone serving a name: the slot of the deepest apex among the suffixes of the lower-case
 *  wire name (len bytes) that skip at least k_min labels. off[i] is the offset of the suffix
 *  after i labels (off[labels] the root), as in zj_qname_t. *k_out: labels skipped to reach the
 *  apex. NULL when no suffix is an apex (or the set has no directory). At most
 *  max_labels - min_labels + 1 probes, whatever the number of images. */
static inline const zj_imgdir_slot_t *zj_imgdir_deepest(const zj_imgdir_t *d, const uint8_t *name,
                                                        size_t len, const uint8_t *off, int labels,
                                                        int k_min, int *k_out)
{
    if (d->slots == NULL) {
        return NULL;
    }
    int k = labels - k_min > d->max_labels ? labels - d->max_labels : k_min;
    for (; k <= labels - d->min_labels; k++) {
        const zj_imgdir_slot_t *s = zj_imgdir_find(d, name + off[k], len - off[k]);
        if (s != NULL) {
            *k_out = k;
            return s;
        }
    }
    return NULL;
}

/** A set over images the caller owns (closing the set leaves them open), with its directory
 *  built: for tests, fuzzers and benches that have images but no sources. ZJ_ENOMEM. */
int zj_imgset_from_images(zj_image_t *const *images, size_t n, zj_imgset_t **out);

/** Build only the set's directory (zj_imgset_index also builds the images' answer tables). */
int zj_imgset_build_dir(zj_imgset_t *set);

/** Longest run of full slots in the set's directory plus one: the most slots one probe visits. */
size_t zj_imgset_dir_max_run(const zj_imgset_t *set);
