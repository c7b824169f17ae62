/* Image sets: the sources one server serves, each with its image, shared between sets.
 *
 * Key structure: zj_imgsrc_t, one per opened source (an image file, mapped read-only, or a zone
 * path compiled in memory with the builder zonejet-compile uses), holding the image, the
 * source's path and a stamp of the files it was read from, and a count of the sets holding it.
 * A set is two parallel arrays: images[] for the answer path and srcs[] for the control plane.
 * Cloning a set copies the arrays and bumps every count; closing drops them and closes an image
 * at zero. Refresh and add open the new image before touching the set, so a failure leaves the
 * set exactly as it was ("validate, then publish").
 *
 * The stamp (inode, size, mtime, ctime, hashed) is taken before the files are read: if a file
 * is replaced between the stamp and the read, the next reload sees a changed stamp and reads it
 * again, which costs one extra read; the other order could miss an update. The policy file
 * beside each zone file (`<stem>.policy`, docs/policies.md) is stamped with it, present or not,
 * so editing only a policy file recompiles its zones. $INCLUDEd files are not stamped (force a
 * re-read with `zonejet-ctl reload PATH`).
 *
 * Health checks: a source's image is attached to the set's health registry as soon as it is
 * opened, so img->health is in place before any set holding it is published, and detached when
 * the last set holding the source releases it. A set is closed only once no worker can read it
 * (reload.c closes the old set after zj_swap_synchronize; the server closes the last one after
 * joining its workers), so no worker reads a state byte after its check is freed. An image
 * reloaded with unchanged checks shares their states (health.h).
 *
 * Zone lookup goes through the set's directory (zj_imgdir_t, imgset_internal.h): one open-
 * addressing table of every apex of every image, built by zj_imgset_index after the last edit
 * and before the set is published, so finding a query's zone costs one probe per candidate
 * suffix (bounded by the deepest and shallowest apex in the set), not one walk per image. The
 * deepest apex wins (src/dns/answer.c), so a child zone in one image and its parent in another
 * behave as in one image. An apex in two sources would make the answer depend on source order;
 * zj_imgset_check refuses it. Every edit drops the directory (it may point into an image the
 * edit released), so an unindexed set can only miss, never read freed memory.
 *
 * The directory's hash seed is drawn per set: apex names are chosen by whoever supplies zones
 * (possibly many customers), and with a known seed they could pick names that share one long
 * probe run, which every query hashing into it would then walk.
 *
 * Rejected: one image per zone file for --zones directories (cross-zone additional data such as
 * an MX target in a sibling zone of the same directory is resolved inside one image only), and
 * atomic reference counts (only the control thread touches them). */
#include "zone/imgset.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "compile/emit.h"
#include "health/health.h"
#include "dns/anstab.h"
#include "zone/imgset_internal.h"
#include "zonejet/dname.h"
#include "zonejet/err.h"

struct zj_imgsrc {
    zj_image_t *img;
    zj_health_t *health; /* registry img is attached to, or NULL */
    unsigned refs;       /* sets holding this source; control thread only */
    zj_imgsrc_kind_t kind;
    char *path;     /* absolute */
    uint64_t stamp; /* files' identity when img was read (source_stamp) */
};

static FILE *out_of(FILE *diag)
{
    return diag != NULL ? diag : stderr;
}

static bool is_zone_file_name(const char *name)
{
    size_t n = strlen(name);
    if (name[0] == '.') {
        return false;
    }
    return (n > 5 && strcmp(name + n - 5, ".zone") == 0) ||
           (n > 3 && strcmp(name + n - 3, ".db") == 0);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(names[i]);
    }
    free(names);
}

/* The zone files of directory path ("path/name"), sorted by name. */
static int list_zone_dir(const char *path, char ***out, size_t *n_out, FILE *diag)
{
    DIR *d = opendir(path);
    if (d == NULL) {
        fprintf(out_of(diag), "%s: cannot open directory: %s\n", path, strerror(errno));
        return ZJ_ENOENT;
    }
    char **names = NULL;
    size_t n = 0;
    int rc = ZJ_OK;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!is_zone_file_name(e->d_name)) {
            continue;
        }
        char **grown = realloc(names, (n + 1) * sizeof(*names));
        size_t l = strlen(path) + strlen(e->d_name) + 2;
        char *full = grown != NULL ? malloc(l) : NULL;
        if (grown != NULL) {
            names = grown;
        }
        if (full == NULL) {
            rc = ZJ_ENOMEM;
            break;
        }
        snprintf(full, l, "%s/%s", path, e->d_name);
        names[n++] = full;
    }
    closedir(d);
    if (rc != ZJ_OK) {
        free_names(names, n);
        return rc;
    }
    qsort(names, n, sizeof(*names), cmp_str);
    *out = names;
    *n_out = n;
    return ZJ_OK;
}

/* Fold one file's identity into h. */
static uint64_t stamp_add(uint64_t h, const struct stat *st)
{
    const uint64_t rec[] = {
        (uint64_t)st->st_dev,          (uint64_t)st->st_ino,          (uint64_t)st->st_size,
        (uint64_t)st->st_mtim.tv_sec,  (uint64_t)st->st_mtim.tv_nsec, (uint64_t)st->st_ctim.tv_sec,
        (uint64_t)st->st_ctim.tv_nsec,
    };
    return XXH3_64bits_withSeed(rec, sizeof(rec), h);
}

/* Fold a zone file's policy file into h: its identity, or a marker for "none", so that adding,
 * editing or removing only the policy file changes the stamp. */
static uint64_t stamp_policy(uint64_t h, const char *zone_file)
{
    char path[PATH_MAX];
    struct stat st;
    if (!zj_policy_path(zone_file, path, sizeof(path))) {
        return h;
    }
    if (stat(path, &st) == 0) {
        return stamp_add(h, &st);
    }
    static const char none[] = "no policy file";
    return XXH3_64bits_withSeed(none, sizeof(none), h);
}

/* Identity of the files a source reads (see the file head). */
static int source_stamp(zj_imgsrc_kind_t kind, const char *path, uint64_t *stamp, FILE *diag)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(out_of(diag), "%s: %s\n", path, strerror(errno));
        return -errno;
    }
    uint64_t h = stamp_add(0, &st);
    if (kind == ZJ_IMGSRC_ZONES && S_ISDIR(st.st_mode)) {
        char **names = NULL;
        size_t n = 0;
        int rc = list_zone_dir(path, &names, &n, diag);
        if (rc != ZJ_OK) {
            return rc;
        }
        for (size_t i = 0; i < n; i++) {
            if (stat(names[i], &st) == 0) {
                h = stamp_add(h, &st);
            }
            h = XXH3_64bits_withSeed(names[i], strlen(names[i]), h);
            h = stamp_policy(h, names[i]);
        }
        free_names(names, n);
    } else if (kind == ZJ_IMGSRC_ZONES) {
        h = stamp_policy(h, path);
    }
    *stamp = h;
    return ZJ_OK;
}

/* Every *.zone / *.db file of a directory, in name order, or the one file. */
static int add_zone_path(zj_builder_t *b, const char *path, FILE *diag)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(out_of(diag), "%s: cannot read: %s\n", path, strerror(errno));
        return ZJ_ENOENT;
    }
    if (!S_ISDIR(st.st_mode)) {
        return zj_builder_add_file(b, path, NULL);
    }
    char **names = NULL;
    size_t n = 0;
    int rc = list_zone_dir(path, &names, &n, diag);
    if (rc != ZJ_OK) {
        return rc;
    }
    for (size_t i = 0; i < n; i++) {
        if (zj_builder_add_file(b, names[i], NULL) != ZJ_OK) {
            rc = ZJ_EZONE;
        }
    }
    free_names(names, n);
    if (n == 0) {
        fprintf(out_of(diag), "%s: no *.zone or *.db files\n", path);
        return ZJ_ENOENT;
    }
    return rc;
}

/* Compile a zone path into an in-memory image; diagnostics go to diag. */
static int compile_zones(const char *path, FILE *diag, zj_image_t **out)
{
    char err[512];
    uint8_t *buf = NULL;
    size_t len = 0;
    zj_build_opts_t opts = {.diag = out_of(diag)};
    zj_builder_t *b = zj_builder_new(&opts);
    int rc = add_zone_path(b, path, diag);
    if (rc == ZJ_OK && zj_builder_finish(b, &buf, &len) != ZJ_OK) {
        rc = ZJ_EZONE;
    }
    if (rc == ZJ_EZONE) {
        fprintf(out_of(diag), "%s: %u error(s) in zone files\n", path, zj_builder_errors(b));
    }
    zj_builder_free(b);
    if (rc != ZJ_OK) {
        return rc;
    }
    rc = zj_image_open_mem(buf, len, out, err, sizeof(err));
    if (rc != ZJ_OK) {
        fprintf(out_of(diag), "%s: compiled image: %s\n", path, err);
        free(buf);
    }
    return rc;
}

/* Open a source (stamp first, then read), and attach its image's health checks to health. */
static int src_open(zj_imgsrc_kind_t kind, const char *path, zj_health_t *health, FILE *diag,
                    zj_imgsrc_t **out)
{
    char err[512];
    zj_imgsrc_t *src = calloc(1, sizeof(*src));
    int rc = src == NULL ? ZJ_ENOMEM : ZJ_OK;
    if (rc == ZJ_OK) {
        src->kind = kind;
        src->refs = 1;
        src->path = strdup(path);
        rc = src->path == NULL ? ZJ_ENOMEM : source_stamp(kind, path, &src->stamp, diag);
    }
    if (rc == ZJ_OK && kind == ZJ_IMGSRC_IMAGE) {
        rc = zj_image_open(path, &src->img, err, sizeof(err));
        if (rc != ZJ_OK) {
            fprintf(out_of(diag), "%s\n", err);
        }
    } else if (rc == ZJ_OK) {
        rc = compile_zones(path, diag, &src->img);
    }
    if (rc == ZJ_OK && health != NULL) {
        rc = zj_health_attach(health, src->img);
        if (rc == ZJ_OK) {
            src->health = health;
        } else if (rc != ZJ_ENOMEM) {
            fprintf(out_of(diag), "%s: health checks: %s\n", path, zj_strerror(rc));
        }
        if (rc != ZJ_OK) {
            zj_image_close(src->img);
        }
    }
    if (rc == ZJ_ENOMEM) {
        fprintf(out_of(diag), "%s: out of memory\n", path);
    }
    if (rc != ZJ_OK && src != NULL) {
        free(src->path);
        free(src);
        return rc;
    }
    *out = src;
    return rc;
}

static void src_release(zj_imgsrc_t *src)
{
    if (src == NULL || --src->refs > 0) {
        return;
    }
    zj_health_detach(src->health, src->img);
    zj_image_close(src->img);
    free(src->path);
    free(src);
}

static void dir_free(zj_imgset_t *set)
{
    free(set->dir.slots);
    memset(&set->dir, 0, sizeof(set->dir));
}

/* Only needs to be unknown to whoever writes zones (see the file head). getrandom() with
 * GRND_NONBLOCK fails only without kernel support or before the pool is ready at early boot; the
 * fallback (clock and an ASLR address) is weaker but not known in advance. */
static uint64_t draw_seed(const void *salt)
{
    uint64_t seed = 0;
    if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) == (ssize_t)sizeof(seed)) {
        return seed;
    }
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t mix[3] = {(uint64_t)ts.tv_sec, (uint64_t)ts.tv_nsec, (uint64_t)(uintptr_t)salt};
    return XXH3_64bits(mix, sizeof(mix));
}

int zj_imgset_build_dir(zj_imgset_t *set)
{
    size_t n = zj_imgset_zone_count(set);
    /* Capacity: a power of two at least twice the apex count (load factor <= 1/2, so a probe
     * that misses stops at an empty slot after a short run), and at least 16. */
    size_t cap = 16;
    while (cap < 2 * n) {
        cap *= 2;
    }
    zj_imgdir_t d = {.mask = cap - 1, .seed = draw_seed(set), .min_labels = ZJ_DNS_MAX_LABELS};
    d.slots = calloc(cap, sizeof(*d.slots));
    if (d.slots == NULL) {
        return ZJ_ENOMEM;
    }
    for (size_t i = 0; i < set->n_images; i++) {
        const zj_image_t *img = set->images[i];
        for (uint32_t z = 0; z < img->n_zones; z++) {
            const uint8_t *name = img->names + img->zones[z].name_off;
            /* validated by zj_image_open*: a whole name inside names */
            size_t len = (size_t)zj_dname_len(name, img->names_len - img->zones[z].name_off);
            int labels = zj_dname_labels(name);
            uint64_t h = zj_imgdir_hash(d.seed, name, len);
            size_t k = (size_t)h & d.mask;
            bool is_dup = false;
            for (; d.slots[k].img != NULL; k = (k + 1) & d.mask) {
                const zj_imgdir_slot_t *s = &d.slots[k];
                if (s->hash == h && s->name_len == len && memcmp(s->name, name, len) == 0) {
                    is_dup = true; /* only in sets zj_imgset_check did not see: first one wins */
                    break;
                }
            }
            if (is_dup) {
                continue;
            }
            d.slots[k] = (zj_imgdir_slot_t){.hash = h,
                                            .name = name,
                                            .img = img,
                                            .zone = z,
                                            .name_len = (uint8_t)len,
                                            .labels = (uint8_t)labels};
            d.min_labels = labels < d.min_labels ? labels : d.min_labels;
            d.max_labels = labels > d.max_labels ? labels : d.max_labels;
        }
    }
    dir_free(set);
    set->dir = d;
    return ZJ_OK;
}

int zj_imgset_index(zj_imgset_t *set)
{
    int rc = zj_imgset_build_dir(set);
    /* Answer tables, one per image, built the first time an image is indexed (before any set
     * holding it is published) and shared by every later set: a reload builds only the tables
     * of the images it changed. A table that cannot be built leaves its image to the general
     * path. */
    for (size_t i = 0; rc == ZJ_OK && i < set->n_images; i++) {
        zj_image_t *img = set->images[i];
        if (!img->is_anstab_tried) {
            img->is_anstab_tried = true;
            if (zj_anstab_build(img, &img->anstab) != ZJ_OK) {
                img->anstab = NULL;
            }
        }
    }
    return rc;
}

int zj_imgset_from_images(zj_image_t *const *images, size_t n, zj_imgset_t **out)
{
    zj_imgset_t *set = calloc(1, sizeof(*set));
    if (set == NULL) {
        return ZJ_ENOMEM;
    }
    set->images = malloc((n > 0 ? n : 1) * sizeof(*set->images));
    int rc = set->images == NULL ? ZJ_ENOMEM : ZJ_OK;
    if (rc == ZJ_OK) {
        for (size_t i = 0; i < n; i++) {
            set->images[i] = images[i];
        }
        set->n_images = n;
        rc = zj_imgset_index(set);
    }
    if (rc != ZJ_OK) {
        zj_imgset_close(set);
        return rc;
    }
    *out = set;
    return ZJ_OK;
}

size_t zj_imgset_dir_max_run(const zj_imgset_t *set)
{
    const zj_imgdir_t *d = &set->dir;
    if (d->slots == NULL) {
        return 0;
    }
    /* Start after an empty slot (there is one: at most half full) so no run is split. */
    size_t start = 0;
    while (d->slots[start].img != NULL) {
        start++;
    }
    size_t best = 0;
    size_t run = 0;
    for (size_t j = 1; j <= d->mask + 1; j++) {
        run = d->slots[(start + j) & d->mask].img != NULL ? run + 1 : 0;
        best = run > best ? run : best;
    }
    return best + 1;
}

/* Grow the arrays by one slot (keeps the set valid on failure). */
static int reserve_one(zj_imgset_t *set)
{
    zj_image_t **imgs = realloc(set->images, (set->n_images + 1) * sizeof(*imgs));
    if (imgs == NULL) {
        return ZJ_ENOMEM;
    }
    set->images = imgs;
    zj_imgsrc_t **srcs = realloc(set->srcs, (set->n_images + 1) * sizeof(*srcs));
    if (srcs == NULL) {
        return ZJ_ENOMEM;
    }
    set->srcs = srcs;
    return ZJ_OK;
}

int zj_imgset_add(zj_imgset_t *set, zj_imgsrc_kind_t kind, const char *path, FILE *diag)
{
    zj_imgsrc_t *src = NULL;
    int rc = reserve_one(set);
    if (rc == ZJ_OK) {
        rc = src_open(kind, path, set->health, diag, &src);
    }
    if (rc == ZJ_OK) {
        dir_free(set);
        set->images[set->n_images] = src->img;
        set->srcs[set->n_images] = src;
        set->n_images++;
    }
    return rc;
}

int zj_imgset_open(const zj_imgset_spec_t *spec, FILE *diag, zj_imgset_t **out)
{
    int rc = ZJ_OK;
    zj_imgset_t *set = calloc(1, sizeof(*set));
    if (set == NULL) {
        return ZJ_ENOMEM;
    }
    set->health = spec->health;
    set->geo = spec->geo;
    /* Every source is tried, so one start-up reports every broken file at once. */
    for (size_t i = 0; i < spec->n_images; i++) {
        int r = zj_imgset_add(set, ZJ_IMGSRC_IMAGE, spec->images[i], diag);
        rc = rc == ZJ_OK ? r : rc;
    }
    for (size_t i = 0; i < spec->n_zone_paths; i++) {
        int r = zj_imgset_add(set, ZJ_IMGSRC_ZONES, spec->zone_paths[i], diag);
        rc = rc == ZJ_OK ? r : rc;
    }
    if (rc == ZJ_OK && set->n_images == 0) {
        fprintf(out_of(diag), "nothing to serve (no images and no zones)\n");
        rc = ZJ_EINVAL;
    }
    if (rc == ZJ_OK) {
        rc = zj_imgset_check(set, diag);
    }
    if (rc == ZJ_OK && zj_imgset_index(set) != ZJ_OK) {
        fprintf(out_of(diag), "out of memory building the zone directory\n");
        rc = ZJ_ENOMEM;
    }
    if (rc != ZJ_OK) {
        zj_imgset_close(set);
        return rc;
    }
    *out = set;
    return ZJ_OK;
}

void zj_imgset_close(zj_imgset_t *set)
{
    if (set == NULL) {
        return;
    }
    for (size_t i = 0; set->srcs != NULL && i < set->n_images; i++) {
        src_release(set->srcs[i]);
    }
    dir_free(set);
    free(set->images);
    free(set->srcs);
    free(set);
}

int zj_imgset_clone(const zj_imgset_t *base, zj_imgset_t **out)
{
    zj_imgset_t *set = calloc(1, sizeof(*set));
    size_t n = base->n_images;
    if (set == NULL) {
        return ZJ_ENOMEM;
    }
    set->images = malloc((n > 0 ? n : 1) * sizeof(*set->images));
    set->srcs = malloc((n > 0 ? n : 1) * sizeof(*set->srcs));
    if (set->images == NULL || set->srcs == NULL) {
        zj_imgset_close(set);
        return ZJ_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        set->images[i] = base->images[i];
        set->srcs[i] = base->srcs[i];
        set->srcs[i]->refs++;
    }
    set->n_images = n;
    set->health = base->health;
    set->geo = base->geo;
    *out = set;
    return ZJ_OK;
}

int zj_imgset_refresh(zj_imgset_t *set, size_t i, bool force, FILE *diag, bool *is_changed)
{
    zj_imgsrc_t *old = set->srcs[i];
    zj_imgsrc_t *src = NULL;
    if (is_changed != NULL) {
        *is_changed = false;
    }
    if (!force) {
        uint64_t stamp = 0;
        int rc = source_stamp(old->kind, old->path, &stamp, diag);
        if (rc != ZJ_OK) {
            return rc;
        }
        if (stamp == old->stamp) {
            return ZJ_OK;
        }
    }
    int rc = src_open(old->kind, old->path, set->health, diag, &src);
    if (rc != ZJ_OK) {
        return rc;
    }
    dir_free(set);
    set->srcs[i] = src;
    set->images[i] = src->img;
    src_release(old);
    if (is_changed != NULL) {
        *is_changed = true;
    }
    return ZJ_OK;
}

void zj_imgset_set_geo(zj_imgset_t *set, const struct zj_geo *geo)
{
    set->geo = geo;
}

const struct zj_geo *zj_imgset_geo(const zj_imgset_t *set)
{
    return set->geo;
}

void zj_imgset_remove(zj_imgset_t *set, size_t i)
{
    dir_free(set);
    src_release(set->srcs[i]);
    memmove(&set->srcs[i], &set->srcs[i + 1], (set->n_images - i - 1) * sizeof(*set->srcs));
    memmove(&set->images[i], &set->images[i + 1], (set->n_images - i - 1) * sizeof(*set->images));
    set->n_images--;
}

/* One zone apex, for the duplicate check. */
typedef struct apex {
    const uint8_t *name; /* lower-case wire name inside an image */
    size_t src;
} apex_t;

static int cmp_apex(const void *a, const void *b)
{
    const apex_t *x = a;
    const apex_t *y = b;
    int c = zj_dname_cmp(x->name, y->name);
    if (c != 0) {
        return c;
    }
    return x->src < y->src ? -1 : (x->src > y->src ? 1 : 0);
}

int zj_imgset_check(const zj_imgset_t *set, FILE *diag)
{
    size_t n = zj_imgset_zone_count(set);
    apex_t *all = malloc((n > 0 ? n : 1) * sizeof(*all));
    if (all == NULL) {
        return ZJ_ENOMEM;
    }
    size_t k = 0;
    for (size_t i = 0; i < set->n_images; i++) {
        const zj_image_t *img = set->images[i];
        for (uint32_t z = 0; z < img->n_zones; z++) {
            all[k].name = img->names + img->zones[z].name_off;
            all[k].src = i;
            k++;
        }
    }
    qsort(all, k, sizeof(*all), cmp_apex);
    int rc = ZJ_OK;
    char text[1024];
    for (size_t i = 1; i < k; i++) {
        if (all[i].src != all[i - 1].src && zj_dname_cmp(all[i].name, all[i - 1].name) == 0) {
            zj_dname_to_text(all[i].name, text, sizeof(text));
            fprintf(out_of(diag), "zone %s is in both %s and %s\n", text,
                    zj_imgset_path(set, all[i - 1].src), zj_imgset_path(set, all[i].src));
            rc = ZJ_EINVAL;
        }
    }
    free(all);
    return rc;
}

ssize_t zj_imgset_find_path(const zj_imgset_t *set, const char *path)
{
    for (size_t i = 0; i < set->n_images; i++) {
        if (strcmp(set->srcs[i]->path, path) == 0) {
            return (ssize_t)i;
        }
    }
    /* Another spelling of the same file (a symlink, "..", a bind mount). */
    struct stat want;
    struct stat st;
    if (stat(path, &want) != 0) {
        return -1;
    }
    for (size_t i = 0; i < set->n_images; i++) {
        if (stat(set->srcs[i]->path, &st) == 0 && st.st_dev == want.st_dev &&
            st.st_ino == want.st_ino) {
            return (ssize_t)i;
        }
    }
    return -1;
}

ssize_t zj_imgset_find_zone(const zj_imgset_t *set, const char *zone_text, uint32_t *n_zones)
{
    uint8_t wire[256];
    uint8_t lower[256];
    uint8_t root = 0;
    int len = zj_dname_from_text(zone_text, strlen(zone_text), &root, wire);
    if (len < 0) {
        return -1;
    }
    zj_dname_lower(lower, wire);
    for (size_t i = 0; i < set->n_images; i++) {
        const zj_image_t *img = set->images[i];
        for (uint32_t z = 0; z < img->n_zones; z++) {
            if (zj_dname_eq(img->names + img->zones[z].name_off, lower)) {
                if (n_zones != NULL) {
                    *n_zones = img->n_zones;
                }
                return (ssize_t)i;
            }
        }
    }
    return -1;
}

size_t zj_imgset_count(const zj_imgset_t *set)
{
    return set->n_images;
}

const char *zj_imgset_path(const zj_imgset_t *set, size_t i)
{
    if (set->srcs == NULL) {
        return set->images[i]->path;
    }
    return set->srcs[i]->path;
}

zj_imgsrc_kind_t zj_imgset_kind(const zj_imgset_t *set, size_t i)
{
    return set->srcs != NULL ? set->srcs[i]->kind : ZJ_IMGSRC_IMAGE;
}

bool zj_imgset_same_image(const zj_imgset_t *a, size_t i, const zj_imgset_t *b, size_t j)
{
    return a->images[i] == b->images[j];
}

size_t zj_imgset_zone_count(const zj_imgset_t *set)
{
    size_t n = 0;
    for (size_t i = 0; i < set->n_images; i++) {
        n += set->images[i]->n_zones;
    }
    return n;
}

size_t zj_imgset_describe(const zj_imgset_t *set, char *out, size_t cap)
{
    size_t o = 0;
    char name[1024];
    if (cap == 0) {
        return 0;
    }
    out[0] = '\0';
    for (size_t i = 0; i < set->n_images && o + 1 < cap; i++) {
        const zj_image_t *img = set->images[i];
        int n = snprintf(out + o, cap - o, "%s %s checksum %016llx zones %u bytes %zu\n",
                         zj_imgset_kind(set, i) == ZJ_IMGSRC_IMAGE ? "image" : "zones",
                         zj_imgset_path(set, i), (unsigned long long)img->checksum, img->n_zones,
                         img->len);
        o += n > 0 ? (size_t)n : 0;
        for (uint32_t z = 0; z < img->n_zones && o + 1 < cap; z++) {
            zj_dname_to_text(img->names + img->zones[z].name_off, name, sizeof(name));
            n = snprintf(out + o, cap - o, "zone %s serial %u\n", name, img->zones[z].serial);
            o += n > 0 ? (size_t)n : 0;
        }
    }
    size_t names = 0, answers = 0, bytes = 0, tables = 0;
    for (size_t i = 0; i < set->n_images; i++) {
        size_t n1 = 0, a1 = 0, b1 = 0;
        zj_anstab_sizes(set->images[i]->anstab, &n1, &a1, &b1);
        names += n1;
        answers += a1;
        bytes += b1;
        tables += set->images[i]->anstab != NULL;
    }
    if (o + 1 < cap) {
        int n = tables == 0 ? snprintf(out + o, cap - o, "answer-table off\n")
                            : snprintf(out + o, cap - o,
                                       "answer-table images %zu names %zu answers %zu bytes %zu\n",
                                       tables, names, answers, bytes);
        o += n > 0 ? (size_t)n : 0;
    }
    return o < cap ? o : cap - 1;
}

int zj_imgset_abspath(const char *path, char *out, size_t cap)
{
    char cwd[4096];
    char *buf = NULL;
    if (path[0] == '/') {
        buf = strdup(path);
    } else if (getcwd(cwd, sizeof(cwd)) != NULL) {
        size_t l = strlen(cwd) + strlen(path) + 2;
        buf = malloc(l);
        if (buf != NULL) {
            snprintf(buf, l, "%s/%s", cwd, path);
        }
    }
    if (buf == NULL) {
        return ZJ_EINVAL;
    }
    /* Collapse "//" and "/./"; drop a trailing "/" or "/." (except for "/" itself). */
    size_t o = 0;
    for (size_t i = 0; buf[i] != '\0';) {
        if (buf[i] == '/' && (buf[i + 1] == '/' || buf[i + 1] == '\0')) {
            i++;
            continue;
        }
        if (buf[i] == '/' && buf[i + 1] == '.' && (buf[i + 2] == '/' || buf[i + 2] == '\0')) {
            i += 2;
            continue;
        }
        buf[o++] = buf[i++];
    }
    if (o == 0) {
        buf[o++] = '/';
    }
    buf[o] = '\0';
    int rc = o < cap ? ZJ_OK : ZJ_EINVAL;
    if (rc == ZJ_OK) {
        memcpy(out, buf, o + 1);
    }
    free(buf);
    return rc;
}
