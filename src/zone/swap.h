/* The published image set and the epochs that say when an old set may be closed (STYLE P3).
 *
 * One global pointer holds the current set. A writer (the server thread) publishes a new set with
 * zj_swap_publish() and then zj_swap_synchronize() waits until no worker can still hold the old
 * one, after which the old set may be closed. Workers never lock: at the start of every batch a
 * worker calls zj_swap_enter() (its quiescent point: it records the global epoch, then loads the
 * pointer), and before it blocks it calls zj_swap_offline(). Each worker's epoch sits on its own
 * cache line so that workers never write to a shared line. */
#pragma once

#include <stdint.h>

#include "zone/imgset.h"

/** Prepare n_workers epoch slots (all OFFLINE) and publish set (may be NULL). Start-up only. */
int zj_swap_init(unsigned n_workers, const zj_imgset_t *set);

/** Release the slots and return the last published set (the caller closes it). Call after all
 *  workers have stopped. */
const zj_imgset_t *zj_swap_fini(void);

/** Publish set as current; returns the previous set, which stays in use by workers until
 *  zj_swap_synchronize() returns. Writer thread only (one writer at a time). */
const zj_imgset_t *zj_swap_publish(const zj_imgset_t *set);

/** Wait until every worker has passed a quiescent point after the last publish or is OFFLINE.
 *  Sleeps in short steps; writer thread only. */
void zj_swap_synchronize(void);

/** The current set, for the writer thread (control plane) only. */
const zj_imgset_t *zj_swap_current(void);

/** Worker quiescent point: record the epoch, then load the current set (valid until the
 *  worker's next zj_swap_enter or zj_swap_offline). Hot-path safe: two memory operations and a
 *  store-load fence. */
const zj_imgset_t *zj_swap_enter(unsigned worker);

/** Mark the worker as holding no set (before it blocks). Hot-path safe. */
void zj_swap_offline(unsigned worker);
