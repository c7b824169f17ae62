/* zone/swap: a reader never sees a set retired under it; OFFLINE readers never hold up a
 * writer; synchronize returns once every online reader has passed a quiescent point. Meant to
 * run under TSan (STYLE §9 step 4) as well as ASan: the writer poisons and frees each retired
 * set, so a reader still holding one trips the check or the sanitizer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "zonejet/err.h"
#include "zone/imgset_internal.h"
#include "zone/swap.h"

#define READERS 3
#define PUBLISHES 2000
#define POISON ((size_t)0xDEADu)

static _Atomic bool stop;
static _Atomic uint64_t reads;
static _Atomic uint64_t bad;

/* A fake set: n_images carries its generation (swap.c never looks inside a set). Written by
 * the writer only before publishing and after retiring, so any reader access that races with
 * the poisoning is exactly the bug this test is for. */
static zj_imgset_t *new_set(size_t gen)
{
    zj_imgset_t *s = calloc(1, sizeof(*s));
    assert_non_null(s);
    s->n_images = gen;
    return s;
}

static void *reader(void *arg)
{
    unsigned id = (unsigned)(uintptr_t)arg;
    size_t last = 0;
    while (!atomic_load(&stop)) {
        const zj_imgset_t *s = zj_swap_enter(id);
        size_t g = s->n_images;
        for (int i = 0; i < 50; i++) { /* "answer a batch" */
            if (s->n_images != g || g == POISON) {
                atomic_fetch_add(&bad, 1);
            }
        }
        if (g < last) { /* a reader never goes back to an older set */
            atomic_fetch_add(&bad, 1);
        }
        last = g;
        atomic_fetch_add(&reads, 1);
        if (id == 0) {
            /* one reader blocks now and then, OFFLINE, as an idle worker does */
            zj_swap_offline(id);
            struct timespec ts = {.tv_sec = 0, .tv_nsec = 200000};
            nanosleep(&ts, NULL);
        }
    }
    zj_swap_offline(id);
    return NULL;
}

static void test_swap_readers_never_see_a_retired_set(void **state)
{
    (void)state;
    pthread_t th[READERS];
    atomic_store(&stop, false);
    assert_int_equal(zj_swap_init(READERS, new_set(1)), ZJ_OK);
    for (unsigned i = 0; i < READERS; i++) {
        assert_int_equal(pthread_create(&th[i], NULL, reader, (void *)(uintptr_t)i), 0);
    }
    while (atomic_load(&reads) < 100) { /* every reader is running */
        sched_yield();
    }
    uint64_t reads_before = atomic_load(&reads);
    for (size_t gen = 2; gen <= PUBLISHES; gen++) {
        if (gen % 64 == 0) {
            sched_yield(); /* let readers interleave with publishes on a small machine */
        }
        zj_imgset_t *old = (zj_imgset_t *)zj_swap_publish(new_set(gen));
        zj_swap_synchronize();
        old->n_images = POISON;
        free(old);
    }
    atomic_store(&stop, true);
    for (unsigned i = 0; i < READERS; i++) {
        pthread_join(th[i], NULL);
    }
    assert_int_equal(atomic_load(&bad), 0);
    assert_true(atomic_load(&reads) > reads_before);
    zj_imgset_t *last = (zj_imgset_t *)zj_swap_fini();
    assert_int_equal(last->n_images, PUBLISHES);
    free(last);
}

static void test_swap_offline_workers_do_not_block(void **state)
{
    (void)state;
    /* Nobody ever enters: every slot stays OFFLINE, so synchronize returns at once. */
    assert_int_equal(zj_swap_init(4, new_set(1)), ZJ_OK);
    for (size_t gen = 2; gen < 100; gen++) {
        zj_imgset_t *old = (zj_imgset_t *)zj_swap_publish(new_set(gen));
        zj_swap_synchronize();
        free(old);
    }
    /* A worker that entered and then went OFFLINE does not block either. */
    (void)zj_swap_enter(2);
    zj_swap_offline(2);
    free((zj_imgset_t *)zj_swap_publish(new_set(100)));
    zj_swap_synchronize();
    assert_ptr_equal(zj_swap_current(), zj_swap_enter(1));
    zj_swap_offline(1);
    free((zj_imgset_t *)zj_swap_fini());
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_swap_readers_never_see_a_retired_set),
        cmocka_unit_test(test_swap_offline_workers_do_not_block),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
