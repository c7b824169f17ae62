/* Health checks (docs/policies.md): TCP connect, HTTP and HTTPS probes and calculated checks,
 * run by one checker thread; their states reach the query path through state bytes the thread
 * writes and workers read with relaxed atomic loads (zj_check_healthy, src/policy/policy.h).
 *
 * A registry holds every check of every image attached to it. Checks are identified by their
 * zone, name and definition: an image reloaded with an unchanged check shares the old one's
 * state (no reset to healthy on reload); a changed check starts afresh.
 *
 * Threads: new/start/stop/free/attach/detach/describe on the control thread; the checker thread
 * is internal.
 *
 * Interface change: zj_health_stop was added so that a server can stop probing before it closes
 * its images (and so detaches them), then free the registry. */
#pragma once

#include <stddef.h>

#include "zonejet/zone.h"

typedef struct zj_health zj_health_t;

/** A registry with no checks and no thread. ZJ_ENOMEM. */
int zj_health_new(zj_health_t **out);

/** Start the checker thread (once; ZJ_EINVAL the second time). The thread inherits the
 *  caller's signal mask. */
int zj_health_start(zj_health_t *h);

/** Stop the checker thread (probes in flight are abandoned); states stay as they are. Safe to
 *  call more than once and on a registry never started. */
void zj_health_stop(zj_health_t *h);

/** Stop the thread, free everything. Images still attached keep dangling pointers: detach or
 *  close them first. NULL is accepted. */
void zj_health_free(zj_health_t *h);

/** Register img's checks and set img->health (left NULL for an image without checks). A check
 *  new to the registry starts healthy (Route 53 treats a new check as healthy until it has
 *  results). ZJ_ENOMEM, or ZJ_EINVAL for a check whose strings or children do not resolve
 *  inside img (img unchanged either way). */
int zj_health_attach(zj_health_t *h, zj_image_t *img);

/** Release img's checks (a check no image uses any more stops being probed) and clear
 *  img->health. Only when no worker can read img any more. */
void zj_health_detach(zj_health_t *h, zj_image_t *img);

/** One line per check: zone, name, kind, target, state, consecutive results, last result and
 *  when. Returns chars written (at most cap - 1, NUL-terminated when cap > 0). */
size_t zj_health_describe(zj_health_t *h, char *out, size_t cap);
