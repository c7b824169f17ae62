/* Reload, add, remove and --watch (see reload.h for the sequence and its guarantees).
 *
 * Diagnostics of a change are collected in a memory stream (open_memstream) as the imgset
 * functions write them, then become the reply (for zonejet-ctl) and, condensed to one line, the
 * log and the `status` output. Timing is measured at each step with CLOCK_MONOTONIC so that the
 * reply says where the time went: opening and validating the new data, publishing and waiting
 * for the workers to pass a quiescent point, and unmapping what the old set alone held.
 *
 * The watcher keeps one inotify watch per directory that holds a served image file (added as
 * sources appear; a directory no longer needed keeps its watch, whose events are then ignored).
 * It reacts to IN_MOVED_TO (an atomic replace: `zonejet-compile -o` writes a temporary file and
 * renames it) and IN_CLOSE_WRITE (a file written in place and closed). Events on other names
 * in the same directory, such as the compiler's temporary file, match no source and are
 * ignored. On IN_Q_OVERFLOW (events were lost) every source is checked, as for SIGHUP. */
#include "server/reload.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "zonejet/err.h"
#include "policy/geo.h"
#include "util/log.h"
#include "zone/imgset.h"
#include "zone/swap.h"

/* inotify read buffer: many events per read(); each is 16 bytes + the name (NAME_MAX + 1). */
#define WATCH_BUF_CAP 16384
/* Image files changed by one read of events: more are handled by the next read. */
#define WATCH_MAX_PATHS 64
#define WATCH_MASK (IN_MOVED_TO | IN_CLOSE_WRITE | IN_ONLYDIR)

typedef struct watch_dir {
    int wd;
    char *dir;
} watch_dir_t;

struct zj_reload_watch {
    int fd;
    watch_dir_t *dirs;
    size_t n_dirs;
};

/* What one change did, for the reply and the log. */
typedef struct change {
    unsigned replaced;
    unsigned added;
    unsigned removed;
    unsigned unchanged;
    unsigned geo; /* 1: a new geolocation database goes out with the new set */
} change_t;

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* A new path is compiled as text when it is a directory or named *.zone / *.db; anything else
 * is opened as an image (so a corrupt image is reported as one, not as a zone file). */
static zj_imgsrc_kind_t kind_of(const char *path)
{
    struct stat st;
    size_t n = strlen(path);
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        return ZJ_IMGSRC_ZONES;
    }
    if ((n > 5 && strcmp(path + n - 5, ".zone") == 0) ||
        (n > 3 && strcmp(path + n - 3, ".db") == 0)) {
        return ZJ_IMGSRC_ZONES;
    }
    return ZJ_IMGSRC_IMAGE;
}

static int file_id(const char *path, zj_reload_file_id_t *id)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        return -errno;
    }
    *id = (zj_reload_file_id_t){
        .dev = (uint64_t)st.st_dev,
        .ino = (uint64_t)st.st_ino,
        .size = (uint64_t)st.st_size,
        .mtime_ns = (uint64_t)st.st_mtim.tv_sec * 1000000000u + (uint64_t)st.st_mtim.tv_nsec,
    };
    return ZJ_OK;
}

int zj_reload_geo_open(zj_reload_t *r, const char *path)
{
    char err[512];
    zj_reload_file_id_t id;
    int rc = file_id(path, &id);
    if (rc != ZJ_OK) {
        zj_log_err("geoip %s: %s", path, zj_strerror(rc));
        return rc;
    }
    rc = zj_geo_open(path, &r->geo, err, sizeof(err));
    if (rc != ZJ_OK) {
        zj_log_err("geoip: %s", err); /* the reason names the file */
        return rc;
    }
    r->geo_path = path;
    r->geo_id = id;
    zj_log_info("geoip %s: %zu networks, %zu locations", path, zj_geo_networks(r->geo),
                zj_geo_locations(r->geo));
    return ZJ_OK;
}

/* Re-read the geolocation database if its file changed; *out receives the new one (NULL: keep
 * the current one). A file that cannot be read refuses the change. */
static int refresh_geo(const zj_reload_t *r, FILE *diag, FILE *out, zj_geo_t **geo,
                       zj_reload_file_id_t *id)
{
    char err[512];
    *geo = NULL;
    int rc = file_id(r->geo_path, id);
    if (rc != ZJ_OK) {
        fprintf(diag, "geoip %s: %s\n", r->geo_path, zj_strerror(rc));
        return rc;
    }
    if (memcmp(id, &r->geo_id, sizeof(*id)) == 0) {
        return ZJ_OK;
    }
    rc = zj_geo_open(r->geo_path, geo, err, sizeof(err));
    if (rc != ZJ_OK) {
        fprintf(diag, "geoip: %s\n", err);
        return rc;
    }
    fprintf(out, "ok: geoip %s re-read: %zu networks, %zu locations\n", r->geo_path,
            zj_geo_networks(*geo), zj_geo_locations(*geo));
    return ZJ_OK;
}

static int apply_all(zj_imgset_t *draft, FILE *diag, FILE *out, change_t *ch)
{
    int rc = ZJ_OK;
    /* Every source is looked at, so one reply names every broken file. */
    for (size_t i = 0; i < zj_imgset_count(draft); i++) {
        bool is_changed = false;
        int r = zj_imgset_refresh(draft, i, false, diag, &is_changed);
        if (r != ZJ_OK) {
            rc = rc == ZJ_OK ? r : rc;
        } else if (is_changed) {
            ch->replaced++;
            fprintf(out, "ok: replaced %s\n", zj_imgset_path(draft, i));
        } else {
            ch->unchanged++;
        }
    }
    return rc;
}

static int apply_paths(zj_imgset_t *draft, zj_reload_op_t op, const char *const *args,
                       size_t n_args, FILE *diag, FILE *out, change_t *ch)
{
    int rc = ZJ_OK;
    for (size_t a = 0; a < n_args; a++) {
        const char *path = args[a];
        ssize_t i = zj_imgset_find_path(draft, path);
        int r = ZJ_OK;
        if (i >= 0 && op == ZJ_RELOAD_ADD) {
            fprintf(diag, "%s: already served (use reload to re-read it)\n", path);
            r = ZJ_EINVAL;
        } else if (i >= 0) {
            r = zj_imgset_refresh(draft, (size_t)i, true, diag, NULL);
            if (r == ZJ_OK) {
                ch->replaced++;
                fprintf(out, "ok: replaced %s\n", path);
            }
        } else {
            r = zj_imgset_add(draft, kind_of(path), path, diag);
            if (r == ZJ_OK) {
                ch->added++;
                fprintf(out, "ok: added %s\n", path);
            }
        }
        rc = rc == ZJ_OK ? r : rc;
    }
    return rc;
}

static int apply_remove(zj_imgset_t *draft, const char *const *args, size_t n_args, FILE *diag,
                        FILE *out, change_t *ch)
{
    int rc = ZJ_OK;
    for (size_t a = 0; a < n_args; a++) {
        const char *what = args[a];
        uint32_t n_zones = 0;
        ssize_t i = what[0] == '/' ? zj_imgset_find_path(draft, what)
                                   : zj_imgset_find_zone(draft, what, &n_zones);
        if (i < 0) {
            fprintf(diag, "%s: not served (give an image path or a zone name)\n", what);
            rc = ZJ_ENOENT;
            continue;
        }
        if (what[0] != '/' && n_zones > 1) {
            fprintf(diag, "%s: its image %s holds %u zones; remove that image by path\n", what,
                    zj_imgset_path(draft, (size_t)i), n_zones);
            rc = ZJ_EINVAL;
            continue;
        }
        if (zj_imgset_count(draft) == 1) {
            fprintf(diag, "%s: the last source; refusing to serve nothing\n", what);
            rc = ZJ_EINVAL;
            continue;
        }
        fprintf(out, "ok: removed %s\n", zj_imgset_path(draft, (size_t)i));
        zj_imgset_remove(draft, (size_t)i);
        ch->removed++;
    }
    return rc;
}

static const char *op_name(zj_reload_op_t op)
{
    switch (op) {
    case ZJ_RELOAD_ALL:
    case ZJ_RELOAD_PATHS:
        return "reload";
    case ZJ_RELOAD_ADD:
        return "add";
    case ZJ_RELOAD_REMOVE:
        return "remove";
    }
    return "change";
}

/* Condense diagnostics to one line for the log and status (newlines become "; "). */
static void one_line(char *dst, size_t cap, const char *prefix, const char *text)
{
    size_t o = (size_t)snprintf(dst, cap, "%s", prefix);
    for (const char *p = text; *p != '\0' && o + 3 < cap; p++) {
        if (*p != '\n') {
            dst[o++] = *p;
        } else if (p[1] != '\0') {
            dst[o++] = ';';
            dst[o++] = ' ';
        }
    }
    dst[o < cap ? o : cap - 1] = '\0';
}

static void sync_watches(zj_reload_t *r);

int zj_reload_apply(zj_reload_t *r, zj_reload_op_t op, const char *const *args, size_t n_args,
                    FILE *out)
{
    char *diag_text = NULL;
    size_t diag_len = 0;
    char *ok_text = NULL;
    size_t ok_len = 0;
    zj_imgset_t *draft = NULL;
    change_t ch = {0};
    zj_geo_t *new_geo = NULL;
    zj_reload_file_id_t new_geo_id = {0};
    uint64_t t0 = now_us();
    uint64_t t_ready = 0, t_swapped = 0, t_done = 0;

    FILE *diag = open_memstream(&diag_text, &diag_len);
    FILE *oks = open_memstream(&ok_text, &ok_len);
    int rc = diag == NULL || oks == NULL ? ZJ_ENOMEM : ZJ_OK;
    if (rc == ZJ_OK) {
        rc = zj_imgset_clone(zj_swap_current(), &draft);
    }
    if (rc == ZJ_OK && op == ZJ_RELOAD_ALL) {
        rc = apply_all(draft, diag, oks, &ch);
        /* The database too (after the sources, so one reply names every problem). */
        int g = r->geo_path != NULL ? refresh_geo(r, diag, oks, &new_geo, &new_geo_id) : ZJ_OK;
        rc = rc == ZJ_OK ? g : rc;
        if (new_geo != NULL) {
            zj_imgset_set_geo(draft, new_geo);
            ch.geo = 1;
        }
    } else if (rc == ZJ_OK && op == ZJ_RELOAD_REMOVE) {
        rc = apply_remove(draft, args, n_args, diag, oks, &ch);
    } else if (rc == ZJ_OK) {
        rc = apply_paths(draft, op, args, n_args, diag, oks, &ch);
    }
    if (rc == ZJ_OK && ch.replaced + ch.added + ch.removed + ch.geo > 0) {
        rc = zj_imgset_check(draft, diag);
    }
    if (rc == ZJ_OK && ch.replaced + ch.added + ch.removed + ch.geo > 0) {
        rc = zj_imgset_index(draft); /* after the last edit: what the workers will look up in */
        if (rc != ZJ_OK) {
            fprintf(diag, "out of memory building the zone directory\n");
        }
    }
    t_ready = now_us();
    if (rc == ZJ_OK && ch.replaced + ch.added + ch.removed + ch.geo > 0) {
        const zj_imgset_t *old = zj_swap_publish(draft);
        draft = NULL;
        zj_swap_synchronize();
        t_swapped = now_us();
        zj_imgset_close((zj_imgset_t *)old);
        if (new_geo != NULL) { /* the old set was the last one pointing at the old database */
            zj_geo_close(r->geo);
            r->geo = new_geo;
            r->geo_id = new_geo_id;
            new_geo = NULL;
        }
    } else {
        t_swapped = t_ready;
    }
    t_done = now_us();
    zj_imgset_close(draft); /* a refused or empty change: unmaps what it opened */
    zj_geo_close(new_geo);  /* likewise: a database read for a refused change */
    if (diag != NULL) {
        fclose(diag);
    }
    if (oks != NULL) {
        fclose(oks);
    }
    const char *dtext = diag_text != NULL ? diag_text : "out of memory\n";
    r->last_ms = (t_done - t0) / 1000u;
    if (rc != ZJ_OK) {
        r->n_failed++;
        fprintf(out, "error: %s refused; still serving the previous data\n%s", op_name(op), dtext);
        one_line(r->last, sizeof(r->last), "failed: ", dtext);
        zj_log_err("%s refused, still serving the previous data: %s", op_name(op), r->last + 8);
    } else {
        r->n_ok++;
        const zj_imgset_t *cur = zj_swap_current();
        fputs(ok_text != NULL ? ok_text : "", out);
        fprintf(out,
                "ok: %s: %u replaced, %u added, %u removed, %u unchanged%s; serving %zu zones "
                "from %zu sources; open+validate %.3f ms, publish+quiesce %.3f ms, unmap %.3f "
                "ms\n",
                op_name(op), ch.replaced, ch.added, ch.removed, ch.unchanged,
                ch.geo != 0 ? ", geoip re-read" : "", zj_imgset_zone_count(cur),
                zj_imgset_count(cur), (double)(t_ready - t0) / 1e3,
                (double)(t_swapped - t_ready) / 1e3, (double)(t_done - t_swapped) / 1e3);
        snprintf(r->last, sizeof(r->last),
                 "ok: %u replaced, %u added, %u removed in %.3f ms (open+validate %.3f ms)",
                 ch.replaced, ch.added, ch.removed, (double)(t_done - t0) / 1e3,
                 (double)(t_ready - t0) / 1e3);
        zj_log_info("%s: %u replaced, %u added, %u removed, %u unchanged%s in %.3f ms "
                    "(open+validate %.3f ms, publish+quiesce %.3f ms, unmap %.3f ms)",
                    op_name(op), ch.replaced, ch.added, ch.removed, ch.unchanged,
                    ch.geo != 0 ? ", geoip re-read" : "", (double)(t_done - t0) / 1e3,
                    (double)(t_ready - t0) / 1e3, (double)(t_swapped - t_ready) / 1e3,
                    (double)(t_done - t_swapped) / 1e3);
        if (r->watch != NULL && ch.added > 0) {
            sync_watches(r);
        }
    }
    free(diag_text);
    free(ok_text);
    return rc;
}

/* ---- --watch ---- */

static void watch_dir_of(zj_reload_watch_t *w, const char *path)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == NULL) {
        return;
    }
    *(slash == dir ? slash + 1 : slash) = '\0';
    for (size_t i = 0; i < w->n_dirs; i++) {
        if (strcmp(w->dirs[i].dir, dir) == 0) {
            return;
        }
    }
    int wd = inotify_add_watch(w->fd, dir, WATCH_MASK);
    if (wd < 0) {
        zj_log_warn("watch %s: %s (changes there need zonejet-ctl reload)", dir, strerror(errno));
        return;
    }
    watch_dir_t *grown = realloc(w->dirs, (w->n_dirs + 1) * sizeof(*grown));
    char *copy = strdup(dir);
    if (grown != NULL) {
        w->dirs = grown;
    }
    if (grown == NULL || copy == NULL) {
        free(copy);
        (void)inotify_rm_watch(w->fd, wd);
        return;
    }
    w->dirs[w->n_dirs].wd = wd;
    w->dirs[w->n_dirs].dir = copy;
    w->n_dirs++;
    zj_log_info("watching %s for replaced images", dir);
}

static void sync_watches(zj_reload_t *r)
{
    const zj_imgset_t *set = zj_swap_current();
    for (size_t i = 0; i < zj_imgset_count(set); i++) {
        if (zj_imgset_kind(set, i) == ZJ_IMGSRC_IMAGE) {
            watch_dir_of(r->watch, zj_imgset_path(set, i));
        }
    }
}

int zj_reload_watch_start(zj_reload_t *r)
{
    zj_reload_watch_t *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        return ZJ_ENOMEM;
    }
    w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (w->fd < 0) {
        int rc = -errno;
        zj_log_err("--watch: inotify: %s", strerror(errno));
        free(w);
        return rc;
    }
    r->watch = w;
    sync_watches(r);
    return ZJ_OK;
}

int zj_reload_watch_fd(const zj_reload_t *r)
{
    return r->watch != NULL ? r->watch->fd : -1;
}

static const char *dir_of_wd(const zj_reload_watch_t *w, int wd)
{
    for (size_t i = 0; i < w->n_dirs; i++) {
        if (w->dirs[i].wd == wd) {
            return w->dirs[i].dir;
        }
    }
    return NULL;
}

/* Add path to the list if it names a served image file and is not listed yet. */
static void collect(char **paths, size_t *n, const char *path)
{
    const zj_imgset_t *set = zj_swap_current();
    ssize_t i = zj_imgset_find_path(set, path);
    if (i < 0 || zj_imgset_kind(set, (size_t)i) != ZJ_IMGSRC_IMAGE || *n >= WATCH_MAX_PATHS) {
        return;
    }
    const char *src = zj_imgset_path(set, (size_t)i);
    for (size_t k = 0; k < *n; k++) {
        if (strcmp(paths[k], src) == 0) {
            return;
        }
    }
    paths[*n] = strdup(src);
    if (paths[*n] != NULL) {
        (*n)++;
    }
}

void zj_reload_watch_handle(zj_reload_t *r)
{
    zj_reload_watch_t *w = r->watch;
    _Alignas(struct inotify_event) char buf[WATCH_BUF_CAP];
    char *paths[WATCH_MAX_PATHS];
    char full[PATH_MAX + NAME_MAX + 2];
    size_t n = 0;
    bool is_overflow = false;

    if (w == NULL) {
        return;
    }
    for (;;) {
        ssize_t len = read(w->fd, buf, sizeof(buf));
        if (len <= 0) {
            break;
        }
        for (ssize_t off = 0; off < len;) {
            const struct inotify_event *ev = (const struct inotify_event *)(void *)(buf + off);
            off += (ssize_t)(sizeof(*ev) + ev->len);
            if ((ev->mask & IN_Q_OVERFLOW) != 0) {
                is_overflow = true;
                continue;
            }
            const char *dir = dir_of_wd(w, ev->wd);
            if (dir == NULL || ev->len == 0) {
                continue;
            }
            snprintf(full, sizeof(full), "%s%s%s", dir, strcmp(dir, "/") == 0 ? "" : "/", ev->name);
            collect(paths, &n, full);
        }
    }
    char *reply = NULL;
    size_t reply_len = 0;
    FILE *sink = open_memstream(&reply, &reply_len);
    if (sink != NULL && is_overflow) {
        zj_log_warn("--watch: inotify queue overflowed; checking every source");
        (void)zj_reload_apply(r, ZJ_RELOAD_ALL, NULL, 0, sink);
    } else if (sink != NULL && n > 0) {
        zj_log_info("--watch: %zu image file(s) replaced", n);
        (void)zj_reload_apply(r, ZJ_RELOAD_PATHS, (const char *const *)paths, n, sink);
    }
    if (sink != NULL) {
        fclose(sink);
    }
    free(reply);
    for (size_t i = 0; i < n; i++) {
        free(paths[i]);
    }
}

void zj_reload_fini(zj_reload_t *r)
{
    zj_reload_watch_t *w = r->watch;
    zj_geo_close(r->geo);
    r->geo = NULL;
    if (w == NULL) {
        return;
    }
    close(w->fd);
    for (size_t i = 0; i < w->n_dirs; i++) {
        free(w->dirs[i].dir);
    }
    free(w->dirs);
    free(w);
    r->watch = NULL;
}
