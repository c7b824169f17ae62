/* The set of zone images one server serves, and the sources they come from.
 *
 * A source is either an image file (--image, `zonejet-ctl add`) or a zone path (--zones: a zone
 * file, or a directory of them, compiled in memory); each source becomes exactly one image. A
 * set is an ordered list of sources with their images. Sets share images: a reload clones the
 * current set (every image gains a reference), replaces or adds only the sources that changed,
 * and publishes the clone (src/zone/swap.c); closing the old set then unmaps only the images no
 * other set holds. So a change to one source costs time and memory in proportion to that source.
 *
 * Threads: a published set is immutable and read by workers without locks. Building, editing,
 * cloning and closing sets (and so every reference count) happen on one thread, the control
 * thread; the counts are plain integers for that reason. Nothing here is for the query path. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

typedef struct zj_imgset zj_imgset_t;

struct zj_health;
struct zj_geo;

typedef enum zj_imgsrc_kind {
    ZJ_IMGSRC_IMAGE = 0, /* a precompiled image file, mapped read-only */
    ZJ_IMGSRC_ZONES = 1, /* a zone file or directory, compiled in memory */
} zj_imgsrc_kind_t;

typedef struct zj_imgset_spec {
    const char *const *images; /* precompiled image files */
    size_t n_images;
    const char *const *zone_paths; /* zone files, or directories of them (*.zone, *.db), each
                                    * compiled into one image */
    size_t n_zone_paths;
    struct zj_health *health; /* every image of the set (and of its clones) is attached to this
                               * health-check registry before the set can be published, and
                               * detached when no set holds it any more; NULL: no health checks
                               * run (every check reads as healthy) */
    const struct zj_geo *geo; /* geolocation database the answer path uses, or NULL; the caller
                               * keeps it alive as long as any set points at it */
} zj_imgset_spec_t;

/** Open every source of spec into a new set (images first, then zone paths, in order). Every
 *  problem is reported to diag (stderr if NULL) as one line, "path: reason" or
 *  "file:line: reason"; then a negative zj_err is returned and *out is left unset. A zone apex
 *  served by two sources is an error (ZJ_EINVAL). Control thread / start-up only. */
int zj_imgset_open(const zj_imgset_spec_t *spec, FILE *diag, zj_imgset_t **out);

/** Release a set: every image loses a reference and is unmapped (or freed) when it has none
 *  left. NULL is accepted. Only once no worker can read the set (zone/swap.h). */
void zj_imgset_close(zj_imgset_t *set);

/** A new, unpublished set with base's sources and images (shared, not reopened), its health
 *  registry and its geolocation database. The clone may be edited with the functions below
 *  until it is published. ZJ_ENOMEM. */
int zj_imgset_clone(const zj_imgset_t *base, zj_imgset_t **out);

/** Re-read source i of an unpublished set if force is set or its files changed (inode, size,
 *  mtime or ctime; for a directory, those of each zone file and of the directory; for zone
 *  files, also those of the policy file beside each, `<stem>.policy`, or its absence). The new
 *  image is opened and validated first; on failure the set keeps its old image and the reason
 *  goes to diag. *is_changed (may be NULL) says whether the image was replaced. */
int zj_imgset_refresh(zj_imgset_t *set, size_t i, bool force, FILE *diag, bool *is_changed);

/** Append a source to an unpublished set (open + validate, or compile). path should be
 *  absolute (zj_imgset_abspath). Failure: reason to diag, the set is unchanged. */
int zj_imgset_add(zj_imgset_t *set, zj_imgsrc_kind_t kind, const char *path, FILE *diag);

/** Make an unpublished set answer with geo (NULL: none). The caller keeps geo alive as long as
 *  any set points at it (a reload closes the old database after the old set). */
void zj_imgset_set_geo(zj_imgset_t *set, const struct zj_geo *geo);

/** The set's geolocation database, or NULL. */
const struct zj_geo *zj_imgset_geo(const zj_imgset_t *set);

/** Drop source i from an unpublished set (its image stays with the sets still holding it). */
void zj_imgset_remove(zj_imgset_t *set, size_t i);

/** Build the set's zone directory, the only thing the answer path looks zones up in (replacing
 *  any). zj_imgset_open does it; after editing a set (refresh, add, remove; a clone starts
 *  without one) call it once, after the last edit and before publishing: every edit drops the
 *  directory, and a set without one answers REFUSED for every name. ZJ_ENOMEM (the set is
 *  unchanged). Time and memory in proportion to the zones of the whole set. */
int zj_imgset_index(zj_imgset_t *set);

/** Check a set before it is published: no zone apex is served by two sources. ZJ_EINVAL with
 *  one line per duplicate to diag. */
int zj_imgset_check(const zj_imgset_t *set, FILE *diag);

/** Index of the source whose path is path (same string, or the same file or directory), or -1. */
ssize_t zj_imgset_find_path(const zj_imgset_t *set, const char *path);

/** Index of the source serving zone_text (a domain name, trailing dot optional, any case), or
 *  -1. *n_zones (may be NULL) receives how many zones that source's image holds. */
ssize_t zj_imgset_find_zone(const zj_imgset_t *set, const char *zone_text, uint32_t *n_zones);

/** Number of sources (= images). */
size_t zj_imgset_count(const zj_imgset_t *set);

/** Path and kind of source i. The path lives as long as the set. */
const char *zj_imgset_path(const zj_imgset_t *set, size_t i);
zj_imgsrc_kind_t zj_imgset_kind(const zj_imgset_t *set, size_t i);

/** True if sets a and b hold the same image for their sources i and j (shared, not reopened). */
bool zj_imgset_same_image(const zj_imgset_t *a, size_t i, const zj_imgset_t *b, size_t j);

/** Number of zones served by the set. */
size_t zj_imgset_zone_count(const zj_imgset_t *set);

/** Write a human-readable description of the set into out: one line per source ("image PATH"
 *  or "zones PATH", its checksum, zone count and bytes), each followed by one line per zone
 *  with its SOA serial. Returns chars written (truncated at cap, never more than cap - 1; out
 *  is NUL-terminated when cap > 0). */
size_t zj_imgset_describe(const zj_imgset_t *set, char *out, size_t cap);

/** Make path absolute against the working directory and tidy it ("//" and "/./" collapse; ".."
 *  and symbolic links stay, so a symlinked image is re-resolved on every reload). Returns
 *  ZJ_OK, or ZJ_EINVAL when it does not fit in cap. */
int zj_imgset_abspath(const char *path, char *out, size_t cap);
