/* The set of zone images one server serves: opened, validated, and merged into one zone
 * directory so that a query finds its zone with one walk over its labels.
 *
 * A set is immutable once built. Workers read it without locks; a reload builds a new set and
 * publishes it (src/zone/swap.c), and the old one is closed after every worker has moved on. */
#pragma once

#include <stddef.h>
#include <stdint.h>

typedef struct zj_imgset zj_imgset_t;

typedef struct zj_imgset_spec {
    const char *const *images; /* precompiled image files */
    size_t n_images;
    const char *const *zone_paths; /* zone files, or directories of them (*.zone, *.db, and
                                    * any file whose first record parses), compiled in memory */
    size_t n_zone_paths;
} zj_imgset_spec_t;

/** Open every image and compile every zone path into a new set. On failure, logs one line per
 *  problem to stderr ("path: reason" or "file:line: reason"), returns a negative zj_err and
 *  leaves *out unset. Not for the query path (allocates, reads files). */
int zj_imgset_open(const zj_imgset_spec_t *spec, zj_imgset_t **out);

/** Release a set (unmaps its images). NULL is accepted. */
void zj_imgset_close(zj_imgset_t *set);

/** Number of zones served by the set. */
size_t zj_imgset_zone_count(const zj_imgset_t *set);

/** Write a human-readable description of the set (one line per image with its checksum, one line
 *  per zone with its SOA serial) into out; returns chars written (truncated at cap). */
size_t zj_imgset_describe(const zj_imgset_t *set, char *out, size_t cap);
