/* Epoch-based publication of the image set (STYLE P3; the QSBR scheme of gdnsd and Knot's RCU).
 *
 * Ordering argument: a worker stores its epoch (seq_cst) before it loads the set pointer
 * (seq_cst); the writer stores the new pointer (seq_cst) before it increments the global epoch.
 * If a worker's recorded epoch is the new one, its pointer load follows the pointer store in
 * the single total order and sees the new set; so once every online worker shows the new epoch,
 * nobody can hold the old set. A worker that is OFFLINE holds nothing by contract.
 *
 * The state (zj_swap_state) is declared in swap.h so that the worker's per-batch calls,
 * zj_swap_enter and zj_swap_offline, are inline there; the writer's side is here. */
#include "zone/swap.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "zonejet/compiler.h"
#include "zonejet/err.h"

/* How long the writer sleeps between looks at the epochs: workers pass a quiescent point at least
 * once per batch or go OFFLINE before blocking, so 100 µs keeps a reload fast without spinning. */
#define SYNC_SLEEP_NS 100000

/* On its own cache line: read by every worker once per batch, written only by a publish. */
ZJ_ALIGNED_CL zj_swap_state_t zj_swap_state = {.epoch = 1};

int zj_swap_init(unsigned n_workers, const zj_imgset_t *set)
{
    zj_swap_state.slots =
        aligned_alloc(ZJ_CACHELINE, sizeof(*zj_swap_state.slots) * (n_workers > 0 ? n_workers : 1));
    if (zj_swap_state.slots == NULL) {
        return ZJ_ENOMEM;
    }
    for (unsigned i = 0; i < n_workers; i++) {
        atomic_init(&zj_swap_state.slots[i].epoch, ZJ_SWAP_OFFLINE);
    }
    zj_swap_state.n_slots = n_workers;
    atomic_store(&zj_swap_state.set, set);
    return ZJ_OK;
}

const zj_imgset_t *zj_swap_fini(void)
{
    free(zj_swap_state.slots);
    zj_swap_state.slots = NULL;
    zj_swap_state.n_slots = 0;
    return atomic_exchange(&zj_swap_state.set, NULL);
}

const zj_imgset_t *zj_swap_publish(const zj_imgset_t *set)
{
    const zj_imgset_t *old = atomic_exchange(&zj_swap_state.set, set);
    atomic_fetch_add(&zj_swap_state.epoch, 1);
    return old;
}

void zj_swap_synchronize(void)
{
    uint64_t target = atomic_load(&zj_swap_state.epoch);
    for (unsigned i = 0; i < zj_swap_state.n_slots; i++) {
        for (;;) {
            uint64_t e = atomic_load(&zj_swap_state.slots[i].epoch);
            if (e == ZJ_SWAP_OFFLINE || e >= target) {
                break;
            }
            struct timespec ts = {.tv_sec = 0, .tv_nsec = SYNC_SLEEP_NS};
            nanosleep(&ts, NULL);
        }
    }
}

const zj_imgset_t *zj_swap_current(void)
{
    return atomic_load_explicit(&zj_swap_state.set, memory_order_acquire);
}
