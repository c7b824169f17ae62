/* Per-core workers: each owns its sockets, responder, buffers and backend state, and runs
 * batch in -> answer each -> batch out -> tick (STYLE P2/P6) with no locks and no allocation per
 * packet. The server thread starts and stops them; the control plane reads their counters. */
#pragma once

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "zonejet/compiler.h"
#include "dns/answer.h"
#include "net/io.h"
#include "net/tcp.h"
#include "zone/swap.h"

/* Messages per batch. Caps the delay added to the first packet of a batch (64 answers at
 * ~1 µs each) while amortising one system call over many packets (gdnsd's MMSG_WIDTH). */
#define ZJ_BATCH 64

/* zj_answer_stats_t as words: it holds only uint64_t counters (checklist: keep it so). */
#define ZJ_ANSWER_STAT_WORDS (sizeof(zj_answer_stats_t) / sizeof(uint64_t))
ZJ_STATIC_ASSERT(sizeof(zj_answer_stats_t) % sizeof(uint64_t) == 0, "answer stats are words");

/* Largest UDP response we build: the maximum configurable EDNS payload (config.h). */
#define ZJ_UDP_TX_CAP 4096

/** One query of a batch, as a backend hands it to the worker. */
struct zj_msg {
    const uint8_t *rx; /* the query; valid until send_batch returns */
    size_t rx_len;
    uint8_t *tx; /* where the answer goes */
    size_t tx_cap;
    size_t tx_len; /* set by the worker; 0 = no answer */
    const struct sockaddr *src;
    bool is_tcp;
    uint32_t ref; /* backend's own reference (tx slot or connection) */
};

/** Counters a worker bumps and the control plane reads (relaxed, no lock-prefixed ops). */
typedef struct zj_io_stats {
    _Atomic uint64_t batches;
    _Atomic uint64_t udp_rx;
    _Atomic uint64_t udp_tx;
    _Atomic uint64_t udp_drops; /* truncated datagrams, no tx slot, send errors */
    _Atomic uint64_t nobufs;    /* io_uring provided-buffer exhaustion (backpressure) */
    _Atomic uint64_t tcp_accepted;
    _Atomic uint64_t tcp_closed;
    _Atomic uint64_t tcp_idle_closed;
    _Atomic uint64_t tcp_evicted; /* closed to make room under tcp-max-conns */
    _Atomic uint64_t tcp_rejected;
    _Atomic uint64_t tcp_ip_limited;   /* closed at accept: tcp-max-conns-per-ip reached */
    _Atomic uint64_t tcp_msg_timeouts; /* closed: a message not finished in tcp-msg-timeout-ms */
    _Atomic uint64_t tcp_queries;
} zj_io_stats_t;

/** Bump a counter owned by the calling worker (plain load + store: one writer). */
static inline void zj_stat_add(_Atomic uint64_t *c, uint64_t n)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

static inline uint64_t zj_stat_get(const _Atomic uint64_t *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

struct zj_worker {
    /* Set by the server before start, read-only afterwards. */
    unsigned id;
    int cpu; /* CPU to pin to, or -1 */
    const zj_io_ops_t *io;
    const int *udp_fds; /* one per listen address (owned by the server) */
    const int *tcp_fds;
    size_t n_socks;
    int stop_fd;              /* eventfd, readable once the server stops */
    const _Atomic bool *stop; /* the server's stop flag */
    zj_tcp_limits_t tcp_limits;
    bool is_bench_echo;        /* --bench-echo: reply with the query itself, QR set */
    bool is_uring_sendmmsg;    /* --uring-send sendmmsg: io_uring receives, sendmmsg sends */
    uint32_t coalesce_us;      /* io_uring wake-up coalescing delay (0: off) ... */
    uint32_t coalesce_min_qps; /* ... above this many queries/s */

    /* Owned by the worker thread. */
    zj_responder_t resp;
    zj_tcp_table_t tcp;
    void *io_state;
    bool is_stopping;
    pthread_t thread;
    int start_rc; /* init result, reported to the server */

    ZJ_ALIGNED_CL zj_io_stats_t stats; /* own cache line: read by the control thread */
};

/** Start w's thread (w fully set up by the caller). Waits until the thread has initialised its
 *  backend; returns its result (0, or a negative zj_err, in which case the thread has exited).
 *  Start-up only. */
int zj_worker_start(zj_worker_t *w, const zj_answer_cfg_t *acfg, uint64_t seed);

/** Join w's thread (after the stop flag and event are set). */
void zj_worker_join(zj_worker_t *w);

/** The part of zj_worker_sendmmsg after a first sendmmsg call that did not send everything
 *  (first: its result, a count or a negative errno). Worker thread only. */
void zj_worker_sendmmsg_rest(zj_worker_t *w, int fd, struct mmsghdr *mm, unsigned count, int first);

/** Send count prepared UDP replies on fd with sendmmsg without blocking (both backends' batch
 *  send): a reply that fails on its own is skipped, a full send buffer gets one more try, the
 *  rest is dropped; udp_tx and udp_drops count the outcome. Inline: the usual case is one call
 *  that sends everything. Worker thread only. */
static inline void zj_worker_sendmmsg(zj_worker_t *w, int fd, struct mmsghdr *mm, unsigned count)
{
    if (count == 0) {
        return;
    }
    int k = zj_io_sendmmsg(fd, mm, count, MSG_DONTWAIT);
    if (likely(k == (int)count)) {
        zj_stat_add(&w->stats.udp_tx, count);
        return;
    }
    zj_worker_sendmmsg_rest(w, fd, mm, count, k);
}

/** Read worker w's answer counters into out: each word as the worker last stored it, read in
 *  place with a relaxed atomic load. Any thread. */
void zj_worker_answer_stats(const zj_worker_t *w, zj_answer_stats_t *out);

/** Monotonic milliseconds. */
uint64_t zj_now_ms(void);

/** Close the TCP connections whose idle or message deadline has passed, counting each kind.
 *  Shared by both backends; worker thread only. */
void zj_worker_expire_tcp(zj_worker_t *w, uint64_t now_ms,
                          void (*close_conn)(zj_worker_t *, zj_tcp_conn_t *));

/** zj_worker_take_tcp's work once the ready ring is not empty. */
size_t zj_worker_take_tcp_ready(zj_worker_t *w, zj_msg_t *msgs, size_t n, size_t limit,
                                void (*advance)(zj_worker_t *, zj_tcp_conn_t *));

/** Move up to limit - n ready TCP queries into msgs (from index n); connections that have no
 *  whole query go to the backend's advance (post a read or a send). Returns the new count.
 *  Inline: under UDP load the ready ring is empty, and the test is all a batch pays.
 *  Shared by both backends; worker thread only. */
static inline size_t zj_worker_take_tcp(zj_worker_t *w, zj_msg_t *msgs, size_t n, size_t limit,
                                        void (*advance)(zj_worker_t *, zj_tcp_conn_t *))
{
    if (likely(w->tcp.ready_count == 0)) {
        return n;
    }
    return zj_worker_take_tcp_ready(w, msgs, n, limit, advance);
}

/* Longest wait inside recv_batch with no TCP deadline pending. The stop event wakes a worker
 * at once; this bound only guards against a missed wake-up. */
#define ZJ_WORKER_MAX_WAIT_MS 1000

/** Warm the cache for the answer table's lookups of a batch (zj_anstab_prefetch_start/step):
 *  the misses of its queries overlap instead of coming one after another. Measured on the
 *  bench mix (10k-name zone, interleaved runs): 5.37 -> 5.00 µs of CPU per query at 50k q/s
 *  (batches of ~11), 3.99 -> 3.71 µs at dnsperf's maximum. */
void zj_worker_prefetch(const zj_imgset_t *set, const zj_msg_t *msgs, size_t n);

/** zj_worker_loop's cold paths (worker.c), out of line so that the loop keeps few registers:
 *  answers for a batch when --bench-echo is on or no image set is published; the tick of
 *  the TCP timers, returning the next wait; the log line of a failed backend. */
void zj_worker_answer_cold(zj_worker_t *w, zj_msg_t *msgs, size_t n);
int zj_worker_tick(zj_worker_t *w);
void zj_worker_fail(zj_worker_t *w, int rc);

/** The per-core loop (STYLE P2/P3/P6), for a backend's run op to instantiate with its own
 *  recv_batch and send_batch (always inlined, so that both become direct calls the compiler can
 *  inline in turn). Each turn: go OFFLINE and wait for a batch; enter the current epoch and load
 *  the image set; answer every message; hand the answers back; with a TCP timer running, tick.
 *  The set is loaded once per batch and dropped (OFFLINE) before the next wait, so a reload
 *  only waits for batches in progress, never for idle workers. With no TCP connection open
 *  a turn reads no clock and walks no timer list: the wait is ZJ_WORKER_MAX_WAIT_MS and the
 *  tick is skipped. Returns when the server stops or the backend fails. Worker thread only. */
static inline __attribute__((always_inline)) void
zj_worker_loop(zj_worker_t *w, zj_io_recv_batch_fn *recv_batch, zj_io_send_batch_fn *send_batch)
{
    zj_msg_t msgs[ZJ_BATCH];
    int timeout_ms = ZJ_WORKER_MAX_WAIT_MS;

    while (!w->is_stopping && !atomic_load_explicit(w->stop, memory_order_relaxed)) {
        zj_swap_offline(w->id);
        int n = recv_batch(w, msgs, ZJ_BATCH, timeout_ms);
        if (unlikely(n < 0)) {
            zj_worker_fail(w, n);
            break;
        }
        if (n > 0) {
            const zj_imgset_t *set = zj_swap_enter(w->id);
            if (likely(set != NULL && !w->is_bench_echo)) {
                if (n > 1 && zj_answer_uses_table(&w->resp, set)) {
                    zj_worker_prefetch(set, msgs, (size_t)n);
                }
                for (int i = 0; i < n; i++) {
                    zj_msg_t *m = &msgs[i];
                    m->tx_len = zj_answer(&w->resp, set, m->rx, m->rx_len, m->src, m->is_tcp, m->tx,
                                          m->tx_cap);
                }
            } else {
                zj_worker_answer_cold(w, msgs, (size_t)n);
            }
            send_batch(w, msgs, (size_t)n);
            zj_stat_add(&w->stats.batches, 1);
        }
        timeout_ms = ZJ_WORKER_MAX_WAIT_MS;
        if (zj_tcp_has_timers(&w->tcp)) {
            timeout_ms = zj_worker_tick(w);
        }
    }
    zj_swap_offline(w->id);
}
