/* Image sets: the images and in-memory compiled zones one server instance serves.
 *
 * --image files are mapped read-only; --zones paths (files or directories) are compiled with the
 * same builder zonejet-compile uses, into one image held in memory. Zone lookup walks the images
 * in order and keeps the deepest apex, so a child zone in one image and its parent in another
 * behave as in one image. */
#include "zone/imgset.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "compile/emit.h"
#include "zone/imgset_internal.h"
#include "zonejet/dname.h"
#include "zonejet/err.h"

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

/* Add a file, or every *.zone / *.db file of a directory in name order. */
static int add_zone_path(zj_builder_t *b, const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "zonejetd: %s: cannot read\n", path);
        return ZJ_ENOENT;
    }
    if (!S_ISDIR(st.st_mode)) {
        return zj_builder_add_file(b, path, NULL);
    }
    DIR *d = opendir(path);
    if (d == NULL) {
        fprintf(stderr, "zonejetd: %s: cannot open directory\n", path);
        return ZJ_ENOENT;
    }
    char **names = NULL;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!is_zone_file_name(e->d_name)) {
            continue;
        }
        names = realloc(names, (n + 1) * sizeof(*names));
        size_t l = strlen(path) + strlen(e->d_name) + 2;
        names[n] = malloc(l);
        if (names == NULL || names[n] == NULL) {
            abort();
        }
        snprintf(names[n], l, "%s/%s", path, e->d_name);
        n++;
    }
    closedir(d);
    qsort(names, n, sizeof(*names), cmp_str);
    int rc = ZJ_OK;
    for (size_t i = 0; i < n; i++) {
        if (zj_builder_add_file(b, names[i], NULL) != ZJ_OK) {
            rc = ZJ_EZONE;
        }
        free(names[i]);
    }
    free(names);
    if (n == 0) {
        fprintf(stderr, "zonejetd: %s: no *.zone or *.db files\n", path);
        return ZJ_ENOENT;
    }
    return rc;
}

static void add_image(zj_imgset_t *set, zj_image_t *img)
{
    set->images = realloc(set->images, (set->n_images + 1) * sizeof(*set->images));
    if (set->images == NULL) {
        abort();
    }
    set->images[set->n_images++] = img;
}

int zj_imgset_open(const zj_imgset_spec_t *spec, zj_imgset_t **out)
{
    int rc = ZJ_OK;
    zj_builder_t *b = NULL;
    uint8_t *buf = NULL;
    zj_imgset_t *set = calloc(1, sizeof(*set));
    if (set == NULL) {
        return ZJ_ENOMEM;
    }
    char err[512];
    for (size_t i = 0; i < spec->n_images; i++) {
        zj_image_t *img = NULL;
        rc = zj_image_open(spec->images[i], &img, err, sizeof(err));
        if (rc != ZJ_OK) {
            fprintf(stderr, "zonejetd: %s\n", err);
            goto out;
        }
        add_image(set, img);
    }
    if (spec->n_zone_paths > 0) {
        b = zj_builder_new(NULL);
        for (size_t i = 0; i < spec->n_zone_paths; i++) {
            if (add_zone_path(b, spec->zone_paths[i]) != ZJ_OK) {
                rc = ZJ_EZONE;
            }
        }
        size_t len = 0;
        if (rc != ZJ_OK || zj_builder_finish(b, &buf, &len) != ZJ_OK) {
            fprintf(stderr, "zonejetd: %u error(s) in zone files\n", zj_builder_errors(b));
            rc = ZJ_EZONE;
            goto out;
        }
        zj_image_t *img = NULL;
        rc = zj_image_open_mem(buf, len, &img, err, sizeof(err));
        if (rc != ZJ_OK) {
            fprintf(stderr, "zonejetd: compiled image: %s\n", err);
            goto out;
        }
        buf = NULL; /* owned by img now */
        add_image(set, img);
    }
    if (set->n_images == 0) {
        fprintf(stderr, "zonejetd: nothing to serve (no images and no zones)\n");
        rc = ZJ_EINVAL;
        goto out;
    }
    *out = set;
    set = NULL;
out:
    free(buf);
    zj_builder_free(b);
    zj_imgset_close(set);
    return rc;
}

void zj_imgset_close(zj_imgset_t *set)
{
    if (set == NULL) {
        return;
    }
    for (size_t i = 0; i < set->n_images; i++) {
        zj_image_close(set->images[i]);
    }
    free(set->images);
    free(set);
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
    for (size_t i = 0; i < set->n_images && o < cap; i++) {
        const zj_image_t *img = set->images[i];
        int n = snprintf(out + o, cap - o, "image %s checksum %016llx zones %u bytes %zu\n",
                         img->path[0] ? img->path : "(compiled zones)",
                         (unsigned long long)img->checksum, img->n_zones, img->len);
        o += n > 0 ? (size_t)n : 0;
        for (uint32_t z = 0; z < img->n_zones && o < cap; z++) {
            zj_dname_to_text(img->names + img->zones[z].name_off, name, sizeof(name));
            n = snprintf(out + o, cap - o, "zone %s serial %u\n", name, img->zones[z].serial);
            o += n > 0 ? (size_t)n : 0;
        }
    }
    return o < cap ? o : cap;
}
