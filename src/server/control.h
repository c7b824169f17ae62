/* The control socket: a Unix stream socket, owner-only (mode 0600, and the peer's uid must be
 * ours or root's), one request per connection.
 *
 * Protocol: the client sends the command on the first line and each argument on a line of its
 * own, and ends the request with an empty line or by shutting down its side (`status` and
 * `stats` and `health` also end at their first newline). The server writes the reply and closes.
 * Replies are text; a failure starts with "error: ", and the lines after it give the reasons.
 * Commands:
 *   status                 version, uptime, backend, reload counters and the last reload's
 *                          outcome, the geolocation database (path, networks, locations),
 *                          each source with its checksum and each zone with its SOA
 *                          serial, one counter line per worker
 *   stats                  counters summed over workers, one `name value` per line
 *   health                 one line per health check: zone, name, kind, target, state, the
 *                          streak of equal results, the last result and how long ago
 *   reload                 re-read every source whose files changed (as SIGHUP does)
 *   reload PATH...         re-read these sources (by path), adding any not served yet
 *   add PATH...            serve new sources (an image file; a directory or *.zone / *.db file
 *                          is compiled as text)
 *   remove PATH|ZONE...    stop serving a source, named by path or by the one zone it holds
 * Paths must be absolute (zonejet-ctl makes them so). See src/server/reload.h for what a
 * change guarantees.
 *
 * The control plane runs on the server thread, between signal checks; each client gets a short
 * receive timeout so a stuck client cannot wedge shutdown for long. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "net/worker.h"

struct zj_health;

/** What the control plane may look at; owned by the server, read on the server thread. */
typedef struct zj_control_view {
    const zj_worker_t *workers;
    size_t n_workers;
    const char *io_name;
    uint64_t start_ms;        /* zj_now_ms() at start */
    struct zj_reload *reload; /* reload state (server/reload.h); NULL: changes refused */
    struct zj_health *health; /* health-check registry; NULL: `health` says there is none */
} zj_control_view_t;

/** Create the socket at path (replacing a stale socket file, refusing to replace anything
 *  else), mode 0600. Returns the listening fd or a negative zj_err (logged). */
int zj_control_open(const char *path);

/** Accept one client on fd, read its command, write the reply, close it. Never fails the
 *  server: client errors are logged and dropped. */
void zj_control_serve(int fd, const zj_control_view_t *view);

/** Close fd and remove path. Accepts fd -1 / path NULL. */
void zj_control_close(int fd, const char *path);

/** Carry out request (the protocol text above; modified in place) and format the reply into
 *  out (cap bytes, always NUL-terminated); returns its length. Exposed for tests. */
size_t zj_control_reply(const zj_control_view_t *view, char *request, char *out, size_t cap);
