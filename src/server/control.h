/* The control socket: a Unix stream socket, owner-only (0600), one command per connection.
 *
 * Protocol: the client sends one line (the command, at most 255 bytes, newline-terminated or
 * ended by shutting down its side); the server writes the reply and closes. Replies are text;
 * a failure starts with "error: ". Commands: `status` (version, uptime, backend, the image set
 * description, one counter line per worker) and `stats` (counters summed over workers, one
 * `name value` per line). `reload` is reserved (answers an error until implemented).
 *
 * The control plane runs on the server thread, between signal checks; each client gets a short
 * receive timeout so a stuck client cannot wedge shutdown for long. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "net/worker.h"

/** What the control plane may look at; owned by the server, read on the server thread. */
typedef struct zj_control_view {
    const zj_worker_t *workers;
    size_t n_workers;
    const char *io_name;
    uint64_t start_ms; /* zj_now_ms() at start */
} zj_control_view_t;

/** Create the socket at path (replacing a stale socket file, refusing to replace anything
 *  else), mode 0600. Returns the listening fd or a negative zj_err (logged). */
int zj_control_open(const char *path);

/** Accept one client on fd, read its command, write the reply, close it. Never fails the
 *  server: client errors are logged and dropped. */
void zj_control_serve(int fd, const zj_control_view_t *view);

/** Close fd and remove path. Accepts fd -1 / path NULL. */
void zj_control_close(int fd, const char *path);

/** Format the reply to cmd into out (cap bytes, always NUL-terminated); returns its length.
 *  Exposed for tests. */
size_t zj_control_reply(const zj_control_view_t *view, const char *cmd, char *out, size_t cap);
