/* Run-time changes to the served image set: reload, add, remove, and the --watch file watcher.
 *
 * Every change follows one path: clone the current set (sharing every image), open and fully
 * validate (or compile) only what changed, check the result (no zone in two sources), publish it
 * with one atomic store (zone/swap.h), wait until every worker has passed a quiescent point or
 * is OFFLINE, then close the old set, which unmaps only the images the new set no longer holds.
 * A full reload (SIGHUP, `reload` without paths) also re-reads the --geoip database when its
 * file changed; the new database goes out with the new set, and a database that fails to load
 * refuses the reload like a broken zone file does.
 * A change that fails anywhere before the publish changes nothing: the old set keeps serving
 * and the reason is returned (for zonejet-ctl) and logged.
 *
 * Everything here runs on the server thread (the control thread), one change at a time; the
 * slow part (opening, validating, compiling text zones) never touches the query path. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Longest remembered reason of the last reload, for `zonejet-ctl status`. */
#define ZJ_RELOAD_LAST_CAP 512

typedef enum zj_reload_op {
    ZJ_RELOAD_ALL = 0, /* re-read every source whose files changed (SIGHUP, `reload`) */
    ZJ_RELOAD_PATHS,   /* re-read these paths, adding those not served yet (`reload PATH...`) */
    ZJ_RELOAD_ADD,     /* add new sources (`add PATH...`); a path already served is an error */
    ZJ_RELOAD_REMOVE,  /* drop sources by path or zone name (`remove PATH|ZONE...`) */
} zj_reload_op_t;

typedef struct zj_reload_watch zj_reload_watch_t;

struct zj_geo;

/* Identity of the geolocation file when it was read: a reload re-reads it when any differs. */
typedef struct zj_reload_file_id {
    uint64_t dev, ino, size, mtime_ns;
} zj_reload_file_id_t;

/** Reload bookkeeping, owned by the server thread. */
typedef struct zj_reload {
    uint64_t n_ok;     /* changes published (a reload that found nothing changed counts too) */
    uint64_t n_failed; /* changes refused */
    uint64_t last_ms;  /* duration of the last attempt, request to old set closed */
    char last[ZJ_RELOAD_LAST_CAP]; /* one line: what the last attempt did or why it failed */
    zj_reload_watch_t *watch;      /* NULL without --watch */
    /* --geoip: the database the published set answers with. A new one replaces it only with a
     * new set; the old one is closed after the old set (no set points at it any more). */
    const char *geo_path; /* NULL: no database */
    struct zj_geo *geo;
    zj_reload_file_id_t geo_id;
} zj_reload_t;

/** Read the --geoip database at start-up into r (r->geo, r->geo_path = path, which must outlive
 *  r). Returns ZJ_OK or a negative zj_err, with the reason logged. */
int zj_reload_geo_open(zj_reload_t *r, const char *path);

/** Apply one change (see zj_reload_op_t) with args (absolute paths, or zone names for
 *  REMOVE; none for ALL). Writes the reply to out: on success lines starting "ok: ", on failure
 *  a first line starting "error: " followed by one line per problem ("path: reason",
 *  "file:line: reason"). Logs one line either way. Returns ZJ_OK or a negative zj_err.
 *  Server thread only; blocks for as long as opening or compiling takes. */
int zj_reload_apply(zj_reload_t *r, zj_reload_op_t op, const char *const *args, size_t n_args,
                    FILE *out);

/** Start watching the directories of the served image files with inotify (--watch). Returns
 *  ZJ_OK or a negative zj_err (logged). */
int zj_reload_watch_start(zj_reload_t *r);

/** The inotify fd to poll for POLLIN, or -1 when not watching. */
int zj_reload_watch_fd(const zj_reload_t *r);

/** Read the pending inotify events; every served image file that was replaced (moved into
 *  place, or closed after writing) is re-read, all of them in one change. Server thread. */
void zj_reload_watch_handle(zj_reload_t *r);

/** Release the watcher and the geolocation database (call after the last set is closed).
 *  Accepts a reloader that never watched. */
void zj_reload_fini(zj_reload_t *r);
