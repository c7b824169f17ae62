/* The published image set and the epochs that say when an old set may be closed (STYLE P3).
 *
 * One global pointer holds the current set. A writer (the server thread) publishes a new set with
 * zj_swap_publish() and then zj_swap_synchronize() waits until no worker can still hold the old
 * one, after which the old set may be closed. Workers never lock: at the start of every batch a
 * worker calls zj_swap_enter() (its quiescent point: it records the global epoch, then loads the
 * pointer), and before it blocks it calls zj_swap_offline(). Each worker's epoch sits on its own
 * cache line so that workers never write to a shared line. */
#pragma once

#include <stdatomic.h>
#include <stdint.h>

#include "zonejet/compiler.h"
#include "zone/imgset.h"

/* Shared state of the scheme, defined in swap.c. Exposed only so that the two worker calls
 * below can be inlined (each runs once per batch: a call and return per batch are a measurable
 * share of a one-datagram batch); touch it through the functions of this header only. */
typedef struct zj_swap_slot {
    _Atomic uint64_t epoch; /* the worker's recorded epoch, or ZJ_SWAP_OFFLINE */
    char pad[ZJ_CACHELINE - sizeof(uint64_t)];
} zj_swap_slot_t;

typedef struct zj_swap_state {
    _Atomic(const zj_imgset_t *) set; /* the current set */
    _Atomic uint64_t epoch;           /* bumped by every publish */
    zj_swap_slot_t *slots;            /* one per worker, each on its own cache line */
    unsigned n_slots;
} zj_swap_state_t;

extern zj_swap_state_t zj_swap_state;

#define ZJ_SWAP_OFFLINE UINT64_MAX

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
 *  store-load fence (swap.c gives the ordering argument). */
static inline const zj_imgset_t *zj_swap_enter(unsigned worker)
{
    /* acquire: if we read the epoch the writer bumped, we also see the pointer it stored
     * first. */
    uint64_t e = atomic_load_explicit(&zj_swap_state.epoch, memory_order_acquire);
    atomic_store(&zj_swap_state.slots[worker].epoch, e);
    return atomic_load(&zj_swap_state.set);
}

/** Mark the worker as holding no set (before it blocks). Hot-path safe. */
static inline void zj_swap_offline(unsigned worker)
{
    atomic_store_explicit(&zj_swap_state.slots[worker].epoch, ZJ_SWAP_OFFLINE,
                          memory_order_release);
}
