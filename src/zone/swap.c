/* Epoch-based publication of the image set (STYLE P3; the QSBR scheme of gdnsd and Knot's RCU).
 *
 * Ordering argument: a worker stores its epoch (seq_cst) before it loads the set pointer
 * (seq_cst); the writer stores the new pointer (seq_cst) before it increments the global epoch.
 * If a worker's recorded epoch is the new one, its pointer load follows the pointer store in
 * the single total order and sees the new set; so once every online worker shows the new epoch,
 * nobody can hold the old set. A worker that is OFFLINE holds nothing by contract. */
#include "zone/swap.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "zonejet/compiler.h"
#include "zonejet/err.h"

#define EPOCH_OFFLINE UINT64_MAX

/* How long the writer sleeps between looks at the epochs: workers pass a quiescent point at least
 * once per batch or go OFFLINE before blocking, so 100 µs keeps a reload fast without spinning. */
#define SYNC_SLEEP_NS 100000

typedef struct epoch_slot {
    _Atomic uint64_t epoch;
    char pad[ZJ_CACHELINE - sizeof(uint64_t)];
} epoch_slot_t;

static _Atomic(const zj_imgset_t *) current_set;
static _Atomic uint64_t global_epoch = 1;
static epoch_slot_t *slots;
static unsigned n_slots;

int zj_swap_init(unsigned n_workers, const zj_imgset_t *set)
{
    slots = aligned_alloc(ZJ_CACHELINE, sizeof(*slots) * (n_workers > 0 ? n_workers : 1));
    if (slots == NULL) {
        return ZJ_ENOMEM;
    }
    for (unsigned i = 0; i < n_workers; i++) {
        atomic_init(&slots[i].epoch, EPOCH_OFFLINE);
    }
    n_slots = n_workers;
    atomic_store(&current_set, set);
    return ZJ_OK;
}

const zj_imgset_t *zj_swap_fini(void)
{
    free(slots);
    slots = NULL;
    n_slots = 0;
    return atomic_exchange(&current_set, NULL);
}

const zj_imgset_t *zj_swap_publish(const zj_imgset_t *set)
{
    const zj_imgset_t *old = atomic_exchange(&current_set, set);
    atomic_fetch_add(&global_epoch, 1);
    return old;
}

void zj_swap_synchronize(void)
{
    uint64_t target = atomic_load(&global_epoch);
    for (unsigned i = 0; i < n_slots; i++) {
        for (;;) {
            uint64_t e = atomic_load(&slots[i].epoch);
            if (e == EPOCH_OFFLINE || e >= target) {
                break;
            }
            struct timespec ts = {.tv_sec = 0, .tv_nsec = SYNC_SLEEP_NS};
            nanosleep(&ts, NULL);
        }
    }
}

const zj_imgset_t *zj_swap_current(void)
{
    return atomic_load_explicit(&current_set, memory_order_acquire);
}

const zj_imgset_t *zj_swap_enter(unsigned worker)
{
    /* acquire: if we read the epoch the writer bumped, we also see the pointer it stored first. */
    atomic_store(&slots[worker].epoch, atomic_load_explicit(&global_epoch, memory_order_acquire));
    return atomic_load(&current_set);
}

void zj_swap_offline(unsigned worker)
{
    atomic_store_explicit(&slots[worker].epoch, EPOCH_OFFLINE, memory_order_release);
}
