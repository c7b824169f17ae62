/* Process lifetime of zonejetd: load the image set, open sockets, start one pinned worker per
 * CPU, serve until SIGTERM/SIGINT, then stop workers, close everything and return.
 *
 * The server thread (the process's main thread) owns everything shared: the configuration, the
 * image set and its publication (zone/swap.h), the sockets, the stop event and the control
 * socket. Signals are blocked in every thread and read by the server thread through a
 * signalfd, so no handler ever runs on a worker. SIGHUP is reserved for reload. */
#pragma once

#include "server/config.h"

/* Checklist: keep equal to project(VERSION) in CMakeLists.txt. */
#define ZJ_VERSION_STRING "0.1.0"

/** Run the server until it is told to stop. Logs one line per start-up step and per error.
 *  Returns the process exit status: 0 after a clean stop, 1 when start-up or serving failed. */
int zj_server_run(const zj_config_t *cfg);
