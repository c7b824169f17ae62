/* The per-core worker (STYLE P2/P3/P6): thread start and stop, and the loop's cold paths.
 *
 * Each worker thread pins itself to its CPU, initialises its backend on its own thread (an
 * io_uring ring created with SINGLE_ISSUER must be submitted from the thread that made it),
 * then runs the backend's run op: zj_worker_loop (worker.h) with the backend's batch functions.
 * The loop goes OFFLINE and waits for a batch; enters the current epoch and loads the image set;
 * answers every message; hands the answers back; closes idle TCP connections. The image set
 * pointer is loaded once per batch and dropped (OFFLINE) before the next wait, so a reload only
 * waits for batches in progress, never for idle workers. */
#include "net/worker.h"

#include <errno.h>
#include <sched.h>
#include <semaphore.h>
#include <string.h>
#include <time.h>

#include "zonejet/err.h"
#include "zonejet/wire.h"
#include "util/log.h"

typedef struct worker_boot {
    zj_worker_t *w;
    const zj_answer_cfg_t *acfg;
    uint64_t seed;
    sem_t ready;
} worker_boot_t;

uint64_t zj_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void pin_cpu(zj_worker_t *w)
{
    if (w->cpu < 0) {
        return;
    }
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(w->cpu, &set);
    int rc = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
    if (rc != 0) {
        zj_log_warn("worker %u: cannot pin to cpu %d: %s", w->id, w->cpu, strerror(rc));
    }
}

/* --bench-echo: the query back with QR set, through the same I/O path; a measure of the
 * server without the answer path (bench/compare.py's floor). A packet shorter than a DNS header
 * is dropped, as zj_answer drops it. */
static void echo_batch(zj_msg_t *msgs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        zj_msg_t *m = &msgs[i];
        m->tx_len = 0;
        if (m->rx_len >= ZJ_DNS_HEADER_LEN && m->rx_len <= m->tx_cap) {
            memcpy(m->tx, m->rx, m->rx_len);
            m->tx[2] |= (uint8_t)(ZJ_F_QR >> 8);
            m->tx_len = m->rx_len;
        }
    }
}

void zj_worker_answer_cold(zj_worker_t *w, zj_msg_t *msgs, size_t n)
{
    if (w->is_bench_echo) {
        echo_batch(msgs, n);
        return;
    }
    /* No image set published (cannot happen after start-up): drop the batch. */
    for (size_t i = 0; i < n; i++) {
        msgs[i].tx_len = 0;
    }
}

void zj_worker_prefetch(const zj_imgset_t *set, const zj_msg_t *msgs, size_t n)
{
    zj_anstab_hint_t hints[ZJ_BATCH];
    n = n < ZJ_BATCH ? n : ZJ_BATCH;
    for (size_t i = 0; i < n; i++) {
        zj_anstab_prefetch_start(set, msgs[i].rx, msgs[i].rx_len, &hints[i]);
    }
    for (int round = 0; round < ZJ_ANSTAB_PREFETCH_STEPS; round++) {
        for (size_t i = 0; i < n; i++) {
            zj_anstab_prefetch_step(&hints[i]);
        }
    }
}

int zj_worker_tick(zj_worker_t *w)
{
    /* One clock read serves the tick and the wait that follows it. */
    uint64_t now_ms = zj_now_ms();
    w->io->tick(w, now_ms);
    int64_t idle = zj_tcp_wait_ms(&w->tcp, now_ms);
    if (idle < 0 || idle > ZJ_WORKER_MAX_WAIT_MS) {
        return ZJ_WORKER_MAX_WAIT_MS;
    }
    /* CLOCK_MONOTONIC_COARSE ticks every few ms; +1 avoids waking just before the deadline. */
    return (int)idle + 1;
}

void zj_worker_fail(zj_worker_t *w, int rc)
{
    zj_log_err("worker %u: %s backend failed: %s; worker stops", w->id, w->io->name,
               zj_strerror(rc));
}

void zj_worker_answer_stats(const zj_worker_t *w, zj_answer_stats_t *out)
{
    /* the counters in place: the worker writes them with relaxed atomic stores (answer.h) */
    const uint64_t *live = (const uint64_t *)&w->resp.stats;
    uint64_t words[ZJ_ANSWER_STAT_WORDS] = {0};
    for (size_t i = 0; i < ZJ_ANSWER_STAT_WORDS; i++) {
        words[i] = __atomic_load_n(&live[i], __ATOMIC_RELAXED);
    }
    memcpy(out, words, sizeof(words));
}

static void *worker_main(void *arg)
{
    worker_boot_t *boot = arg;
    zj_worker_t *w = boot->w;

    pin_cpu(w);
    zj_responder_init(&w->resp, boot->acfg, boot->seed);
    int rc = zj_tcp_table_init(&w->tcp, &w->tcp_limits);
    if (rc == ZJ_OK) {
        rc = w->io->init(w);
    }
    w->start_rc = rc;
    /* boot lives on the starter's stack: do not touch it after posting. */
    sem_post(&boot->ready);
    if (rc == ZJ_OK) {
        w->io->run(w);
    }
    w->io->fini(w);
    zj_tcp_table_fini(&w->tcp);
    return NULL;
}

int zj_worker_start(zj_worker_t *w, const zj_answer_cfg_t *acfg, uint64_t seed)
{
    worker_boot_t boot = {.w = w, .acfg = acfg, .seed = seed};
    if (sem_init(&boot.ready, 0, 0) != 0) {
        return -errno;
    }
    int rc = pthread_create(&w->thread, NULL, worker_main, &boot);
    if (rc != 0) {
        sem_destroy(&boot.ready);
        return -rc;
    }
    while (sem_wait(&boot.ready) != 0 && errno == EINTR) {
    }
    sem_destroy(&boot.ready);
    if (w->start_rc != ZJ_OK) {
        pthread_join(w->thread, NULL);
    }
    return w->start_rc;
}

void zj_worker_join(zj_worker_t *w)
{
    pthread_join(w->thread, NULL);
}

size_t zj_worker_take_tcp_ready(zj_worker_t *w, zj_msg_t *msgs, size_t n, size_t limit,
                                void (*advance)(zj_worker_t *, zj_tcp_conn_t *))
{
    uint64_t now_ms = zj_now_ms();
    while (n < limit) {
        zj_tcp_conn_t *c = zj_tcp_ready_pop(&w->tcp);
        if (c == NULL) {
            break;
        }
        if (zj_tcp_next(&w->tcp, c) != ZJ_TCP_NEXT_QUERY) {
            advance(w, c);
            continue;
        }
        zj_msg_t *m = &msgs[n++];
        m->tx = zj_tcp_take_query(&w->tcp, c, &m->rx, &m->rx_len, now_ms);
        m->tx_cap = ZJ_DNS_MAX_MSG;
        m->tx_len = 0;
        m->src = (const struct sockaddr *)&c->peer.ss;
        m->is_tcp = true;
        m->ref = c->idx;
        zj_stat_add(&w->stats.tcp_queries, 1);
    }
    return n;
}

void zj_worker_sendmmsg_rest(zj_worker_t *w, int fd, struct mmsghdr *mm, unsigned count, int first)
{
    unsigned done = 0; /* sent or skipped */
    unsigned sent = 0;
    int k = first;
    /* Two tries: the second catches a send buffer that filled mid-batch; after that, drop
     * (UDP clients retry) rather than block the worker. */
    for (int attempt = 0;;) {
        if (k > 0) {
            done += (unsigned)k;
            sent += (unsigned)k;
        } else if (k < 0 && k != -EAGAIN && k != -EINTR) {
            done++; /* the first message failed for a reason of its own (unreachable): skip it */
        }
        if (++attempt == 2 || done >= count) {
            break;
        }
        k = zj_io_sendmmsg(fd, mm + done, count - done, MSG_DONTWAIT);
    }
    zj_stat_add(&w->stats.udp_tx, sent);
    zj_stat_add(&w->stats.udp_drops, count - sent);
}

void zj_worker_expire_tcp(zj_worker_t *w, uint64_t now_ms,
                          void (*close_conn)(zj_worker_t *, zj_tcp_conn_t *))
{
    zj_tcp_expiry_t why = ZJ_TCP_EXPIRED_IDLE;
    zj_tcp_conn_t *c = NULL;
    /* Bounded: each pass closes one connection, which leaves both timer lists. */
    while ((c = zj_tcp_expired(&w->tcp, now_ms, &why)) != NULL) {
        _Atomic uint64_t *counter =
            why == ZJ_TCP_EXPIRED_MSG ? &w->stats.tcp_msg_timeouts : &w->stats.tcp_idle_closed;
        zj_stat_add(counter, 1);
        close_conn(w, c);
    }
}
