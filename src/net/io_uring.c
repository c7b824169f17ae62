/* Primary backend: one io_uring per worker (STYLE P2).
 *
 * UDP: one multishot recvmsg per socket draws receive buffers from a provided buffer ring
 * (group URING_BGID); each completion is one datagram laid out as io_uring_recvmsg_out + source
 * address + control + payload. A completion takes a tx slot (which keeps the reply's msghdr,
 * address and control message alive until its sendmsg completes); the receive buffer goes back
 * to the ring as soon as the batch is answered. All sendmsg SQEs of a batch, any re-armed
 * receives and TCP operations go to the kernel in the one io_uring_submit_and_wait of the
 * next recv_batch. -ENOBUFS (every receive buffer busy) ends a multishot: it is counted and the
 * receive re-armed once buffers have been returned; the datagrams wait in the socket buffer.
 *
 * TCP: a multishot accept per listen socket; per connection at most one recv and one send in
 * flight (net/tcp.c decides which). Closing a connection with operations in flight shuts the
 * socket down, which completes them, and frees the slot when the last completion arrives.
 *
 * The ring is created on the worker thread with SINGLE_ISSUER | DEFER_TASKRUN (completion work
 * runs only when this thread waits, in batches), falling back to fewer flags on older kernels.
 * Rejected: registered files and fixed buffers for sends (measurable only at >1M qps per core,
 * and they complicate fd lifetime), SQPOLL (burns a core per worker). */
#include "net/io.h"

#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "zonejet/err.h"
#include "zonejet/wire.h"
#include "net/worker.h"
#include "util/log.h"

/* Submission queue: a batch queues at most ZJ_BATCH sends plus re-arms and TCP operations;
 * 1024 leaves room for several batches if the kernel is slow to consume. */
#define URING_SQ_ENTRIES 1024
/* Completion queue: multishot receives post one CQE per datagram; 8192 absorbs a burst of that
 * many datagrams between two waits (the kernel also never drops CQEs: FEAT_NODROP). */
#define URING_CQ_ENTRIES 8192
/* Provided receive buffers (a power of two, as the buffer ring requires). 512 x 4 KiB = 2 MiB
 * per worker: datagrams received but not yet answered; beyond that the socket buffer holds
 * them. */
#define URING_RX_BUFS 512
#define URING_RX_BUF_SIZE 4096
#define URING_BGID 0
/* Replies in flight (each owns its transmit buffer until the send completes). */
#define URING_TX_SLOTS 512

/* user_data: kind in the top byte, index below. */
#define UD_STOP 1ull
#define UD_UDP_RECV 2ull
#define UD_UDP_SEND 3ull
#define UD_ACCEPT 4ull
#define UD_TCP_RECV 5ull
#define UD_TCP_SEND 6ull
#define UD_PROBE 7ull
#define UD_KIND(d) ((d) >> 56)
#define UD_INDEX(d) ((uint32_t)(d))
#define UD_DATA(kind, idx) ((kind) << 56 | (uint64_t)(idx))

typedef struct tx_slot {
    struct msghdr mh;
    struct iovec iov;
    struct sockaddr_storage name;
    zj_cmsg_buf_t ctl;
    uint16_t rx_bid; /* receive buffer of the query, returned after answering */
    uint8_t buf[ZJ_UDP_TX_CAP];
} tx_slot_t;

typedef struct uring_state {
    struct io_uring ring;
    bool has_ring;
    struct io_uring_buf_ring *br;
    size_t br_size;
    bool has_br;
    uint8_t *rx_bufs;
    tx_slot_t *tx;
    uint32_t *tx_free; /* stack of free tx slot ids */
    uint32_t n_tx_free;
    uint32_t n_br_added;     /* buffers added to the ring since the last advance */
    struct msghdr recv_tmpl; /* layout of a received buffer: name and control sizes */
    bool *udp_is_any;
    bool *udp_rearm;
    bool *accept_rearm;
    bool is_stop_armed;
    /* adaptive wake-up coalescing (see uring_recv_batch) */
    bool is_coalescing;
    uint32_t coalesce_us; /* 0: never */
    uint32_t coalesce_min_qps;
    uint32_t window_pkts;  /* datagrams received in the current rate window */
    uint64_t window_start; /* CLOCK_MONOTONIC_COARSE ns at the window's start */
} uring_state_t;

/* Wake-up coalescing. At light load a worker wakes for every datagram: lowest latency, and the
 * CPU is idle anyway. Above coalesce_min_qps (--coalesce-min-qps) it instead waits for a batch
 * of ZJ_BATCH receives or coalesce_us (--coalesce-us), whichever comes first, so one wake-up
 * and one submit serve several queries: the kernel's wake-up and io_uring entry costs are what
 * dominate CPU per query on this path (a null echo server on io_uring: 7.3 µs per reply woken
 * per datagram, 5.0 µs with 64/200 µs coalescing, measured on 2 cores). The delay bounds the
 * latency it adds (server/config.h has the measured default); the rate is re-estimated every
 * COALESCE_WINDOW_NS. */
#define COALESCE_WINDOW_NS 10000000ull

/* Try ring flags from best to most compatible (DEFER_TASKRUN: 6.1, SINGLE_ISSUER: 6.0,
 * SUBMIT_ALL: 5.18). */
static int ring_setup(struct io_uring *ring)
{
    static const unsigned flag_sets[] = {
        IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_SUBMIT_ALL,
        IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_SUBMIT_ALL,
        0,
    };
    int rc = ZJ_EINVAL;
    for (size_t i = 0; i < ZJ_ARRAY_SIZE(flag_sets); i++) {
        struct io_uring_params p;
        memset(&p, 0, sizeof(p));
        p.flags = flag_sets[i] | IORING_SETUP_CQSIZE;
        p.cq_entries = URING_CQ_ENTRIES;
        rc = io_uring_queue_init_params(URING_SQ_ENTRIES, ring, &p);
        if (rc != -EINVAL) {
            return rc;
        }
    }
    return rc;
}

/* Register a buffer ring of n entries; memory from mmap (page-aligned, as required). */
static int buf_ring_setup(struct io_uring *ring, unsigned n, struct io_uring_buf_ring **out,
                          size_t *size_out)
{
    size_t size = n * sizeof(struct io_uring_buf);
    void *mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (mem == MAP_FAILED) {
        return -errno;
    }
    struct io_uring_buf_reg reg;
    memset(&reg, 0, sizeof(reg));
    reg.ring_addr = (uint64_t)(uintptr_t)mem;
    reg.ring_entries = n;
    reg.bgid = URING_BGID;
    int rc = io_uring_register_buf_ring(ring, &reg, 0);
    if (rc != 0) {
        munmap(mem, size);
        return rc;
    }
    *out = mem;
    *size_out = size;
    io_uring_buf_ring_init(*out);
    return ZJ_OK;
}

static struct io_uring_sqe *get_sqe(uring_state_t *st)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&st->ring);
    if (sqe == NULL) {
        /* SQ full: push what is queued and try once more. */
        (void)io_uring_submit(&st->ring);
        sqe = io_uring_get_sqe(&st->ring);
    }
    return sqe;
}

/* Arm a multishot recvmsg on an unbound UDP socket and cancel it: -EINVAL means the kernel
 * lacks multishot recvmsg (before 6.0). */
static int probe_multishot(struct io_uring *ring, char *why, size_t why_cap)
{
    int rc = ZJ_OK;
    struct msghdr tmpl;
    memset(&tmpl, 0, sizeof(tmpl));
    tmpl.msg_namelen = sizeof(struct sockaddr_in6);
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -errno;
    }
    struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
    io_uring_prep_recvmsg_multishot(sqe, fd, &tmpl, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = URING_BGID;
    io_uring_sqe_set_data64(sqe, UD_DATA(UD_PROBE, 0));
    sqe = io_uring_get_sqe(ring);
    io_uring_prep_cancel64(sqe, UD_DATA(UD_PROBE, 0), 0);
    io_uring_sqe_set_data64(sqe, UD_DATA(UD_PROBE, 1));
    rc = io_uring_submit(ring);
    for (int seen = 0; rc >= 0 && seen < 2; seen++) {
        struct io_uring_cqe *cqe = NULL;
        struct __kernel_timespec ts = {.tv_sec = 1, .tv_nsec = 0};
        rc = io_uring_wait_cqe_timeout(ring, &cqe, &ts);
        if (rc < 0) {
            snprintf(why, why_cap, "probe wait: %s", strerror(-rc));
            break;
        }
        if (cqe->user_data == UD_DATA(UD_PROBE, 0) && cqe->res == -EINVAL) {
            snprintf(why, why_cap, "no multishot recvmsg (kernel 6.0+ needed)");
            rc = ZJ_EINVAL;
        }
        io_uring_cqe_seen(ring, cqe);
    }
    close(fd);
    return rc < 0 ? rc : ZJ_OK;
}

int zj_io_uring_probe(char *why, size_t why_cap)
{
    static const int ops[] = {IORING_OP_RECVMSG,     IORING_OP_SENDMSG, IORING_OP_ACCEPT,
                              IORING_OP_RECV,        IORING_OP_SEND,    IORING_OP_POLL_ADD,
                              IORING_OP_ASYNC_CANCEL};
    struct io_uring ring;
    struct io_uring_probe *probe = NULL;
    struct io_uring_buf_ring *br = NULL;
    size_t br_size = 0;
    bool has_ring = false;

    int rc = ring_setup(&ring);
    if (rc < 0) {
        snprintf(why, why_cap, "io_uring_setup: %s", strerror(-rc));
        goto out;
    }
    has_ring = true;
    probe = io_uring_get_probe_ring(&ring);
    if (probe == NULL) {
        rc = ZJ_EINVAL;
        snprintf(why, why_cap, "cannot probe opcodes");
        goto out;
    }
    for (size_t i = 0; i < ZJ_ARRAY_SIZE(ops); i++) {
        if (!io_uring_opcode_supported(probe, ops[i])) {
            rc = ZJ_EINVAL;
            snprintf(why, why_cap, "opcode %d not supported", ops[i]);
            goto out;
        }
    }
    rc = buf_ring_setup(&ring, 8, &br, &br_size);
    if (rc != ZJ_OK) {
        snprintf(why, why_cap, "provided buffer ring: %s", strerror(-rc));
        goto out;
    }
    rc = probe_multishot(&ring, why, why_cap);
out:
    if (probe != NULL) {
        io_uring_free_probe(probe);
    }
    if (has_ring) {
        io_uring_queue_exit(&ring);
    }
    if (br != NULL) {
        munmap(br, br_size);
    }
    return rc < 0 ? rc : ZJ_OK;
}

static void uring_fini(zj_worker_t *w)
{
    uring_state_t *st = w->io_state;
    if (st == NULL) {
        return;
    }
    /* Exiting the ring cancels every operation still in flight. */
    if (st->has_ring) {
        io_uring_queue_exit(&st->ring);
    }
    if (st->br != NULL) {
        munmap(st->br, st->br_size);
    }
    free(st->rx_bufs);
    free(st->tx);
    free(st->tx_free);
    free(st->udp_is_any);
    free(st->udp_rearm);
    free(st->accept_rearm);
    free(st);
    w->io_state = NULL;
}

static void recycle_rx(uring_state_t *st, uint16_t bid)
{
    io_uring_buf_ring_add(st->br, st->rx_bufs + (size_t)bid * URING_RX_BUF_SIZE, URING_RX_BUF_SIZE,
                          bid, io_uring_buf_ring_mask(URING_RX_BUFS), (int)st->n_br_added);
    st->n_br_added++;
}

static void flush_rx(uring_state_t *st)
{
    if (st->n_br_added > 0) {
        io_uring_buf_ring_advance(st->br, (int)st->n_br_added);
        st->n_br_added = 0;
    }
}

static int uring_init(zj_worker_t *w)
{
    int rc = ZJ_OK;
    uring_state_t *st = calloc(1, sizeof(*st));
    if (st == NULL) {
        return ZJ_ENOMEM;
    }
    w->io_state = st;
    st->coalesce_us = w->coalesce_us;
    st->coalesce_min_qps = w->coalesce_min_qps;
    rc = ring_setup(&st->ring);
    if (rc < 0) {
        goto out;
    }
    st->has_ring = true;
    rc = buf_ring_setup(&st->ring, URING_RX_BUFS, &st->br, &st->br_size);
    if (rc != ZJ_OK) {
        goto out;
    }
    st->rx_bufs = malloc((size_t)URING_RX_BUFS * URING_RX_BUF_SIZE);
    st->tx = calloc(URING_TX_SLOTS, sizeof(*st->tx));
    st->tx_free = calloc(URING_TX_SLOTS, sizeof(*st->tx_free));
    st->udp_is_any = calloc(w->n_socks, sizeof(bool));
    st->udp_rearm = calloc(w->n_socks, sizeof(bool));
    st->accept_rearm = calloc(w->n_socks, sizeof(bool));
    if (st->rx_bufs == NULL || st->tx == NULL || st->tx_free == NULL || st->udp_is_any == NULL ||
        st->udp_rearm == NULL || st->accept_rearm == NULL) {
        rc = ZJ_ENOMEM;
        goto out;
    }
    for (uint32_t i = 0; i < URING_RX_BUFS; i++) {
        recycle_rx(st, (uint16_t)i);
    }
    flush_rx(st);
    for (uint32_t i = 0; i < URING_TX_SLOTS; i++) {
        st->tx_free[i] = URING_TX_SLOTS - 1 - i;
    }
    st->n_tx_free = URING_TX_SLOTS;
    /* Room for an IPv6 source and one PKTINFO; the rest of a buffer is payload. The name area
     * is rounded up to 8 bytes because the control messages follow it unaligned otherwise
     * (io_uring_recvmsg_out is 16 bytes; sockaddr_in6 is 28). */
    st->recv_tmpl.msg_namelen = (sizeof(struct sockaddr_in6) + 7u) & ~7u;
    st->recv_tmpl.msg_controllen = ZJ_SOCK_CMSG_CAP;
    for (size_t i = 0; i < w->n_socks; i++) {
        zj_addr_t local;
        st->udp_is_any[i] = zj_sock_local(w->udp_fds[i], &local) == ZJ_OK && zj_addr_is_any(&local);
        st->udp_rearm[i] = true;
        st->accept_rearm[i] = true;
    }
out:
    if (rc != ZJ_OK) {
        zj_log_err("worker %u: io_uring backend: %s", w->id, zj_strerror(rc));
    }
    return rc;
}

/* ---- arming ---- */

static void arm_all(zj_worker_t *w)
{
    uring_state_t *st = w->io_state;
    struct io_uring_sqe *sqe = NULL;

    if (!st->is_stop_armed && (sqe = get_sqe(st)) != NULL) {
        io_uring_prep_poll_add(sqe, w->stop_fd, POLLIN);
        io_uring_sqe_set_data64(sqe, UD_DATA(UD_STOP, 0));
        st->is_stop_armed = true;
    }
    for (uint32_t i = 0; i < w->n_socks; i++) {
        if (st->udp_rearm[i] && (sqe = get_sqe(st)) != NULL) {
            io_uring_prep_recvmsg_multishot(sqe, w->udp_fds[i], &st->recv_tmpl, 0);
            sqe->flags |= IOSQE_BUFFER_SELECT;
            sqe->buf_group = URING_BGID;
            io_uring_sqe_set_data64(sqe, UD_DATA(UD_UDP_RECV, i));
            st->udp_rearm[i] = false;
        }
        if (st->accept_rearm[i] && (sqe = get_sqe(st)) != NULL) {
            io_uring_prep_multishot_accept(sqe, w->tcp_fds[i], NULL, NULL, SOCK_CLOEXEC);
            io_uring_sqe_set_data64(sqe, UD_DATA(UD_ACCEPT, i));
            st->accept_rearm[i] = false;
        }
    }
}

/* ---- TCP ---- */

/* Free a closing connection once nothing refers to it: no operation in flight (the kernel
 * would write into freed buffers) and no query in the current batch (recv_batch takes TCP
 * queries before it handles completions, so an accept or an error in the same batch may close
 * a connection whose query is being answered). Returns true if c was freed. */
static bool maybe_free(zj_worker_t *w, zj_tcp_conn_t *c)
{
    if (c->is_closing && c->n_ops == 0 && !c->has_query_out) {
        zj_tcp_conn_free(&w->tcp, c);
        return true;
    }
    return false;
}

static void conn_close(zj_worker_t *w, zj_tcp_conn_t *c)
{
    if (!c->is_closing) {
        zj_stat_add(&w->stats.tcp_closed, 1);
        zj_tcp_conn_retire(&w->tcp, c);
    }
    if (maybe_free(w, c) || c->n_ops == 0) {
        return;
    }
    /* Completes the operations in flight (recv returns 0, send fails); the last frees c. */
    (void)shutdown(c->fd, SHUT_RDWR);
}

static void post_recv(zj_worker_t *w, zj_tcp_conn_t *c)
{
    uring_state_t *st = w->io_state;
    struct io_uring_sqe *sqe = get_sqe(st);
    if (sqe == NULL) {
        conn_close(w, c);
        return;
    }
    size_t cap = 0;
    uint8_t *p = zj_tcp_read_space(c, &cap);
    io_uring_prep_recv(sqe, c->fd, p, cap, 0);
    io_uring_sqe_set_data64(sqe, UD_DATA(UD_TCP_RECV, c->idx));
    c->is_recv_posted = true;
    c->n_ops++;
}

static void post_send(zj_worker_t *w, zj_tcp_conn_t *c)
{
    uring_state_t *st = w->io_state;
    if (c->is_send_posted || c->woff >= c->wlen) {
        return;
    }
    struct io_uring_sqe *sqe = get_sqe(st);
    if (sqe == NULL) {
        conn_close(w, c);
        return;
    }
    io_uring_prep_send(sqe, c->fd, c->wbuf + c->woff, c->wlen - c->woff, MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, UD_DATA(UD_TCP_SEND, c->idx));
    c->is_send_posted = true;
    c->n_ops++;
}

static void conn_advance(zj_worker_t *w, zj_tcp_conn_t *c)
{
    switch (zj_tcp_next(&w->tcp, c)) {
    case ZJ_TCP_NEXT_QUERY:
        zj_tcp_ready_push(&w->tcp, c);
        return;
    case ZJ_TCP_NEXT_WAIT:
        return;
    case ZJ_TCP_NEXT_READ:
        if (!c->is_recv_posted) {
            post_recv(w, c);
        }
        return;
    case ZJ_TCP_NEXT_CLOSE:
        conn_close(w, c);
        return;
    }
}

static void on_accept(zj_worker_t *w, uint32_t sock, const struct io_uring_cqe *cqe)
{
    uring_state_t *st = w->io_state;
    if ((cqe->flags & IORING_CQE_F_MORE) == 0) {
        st->accept_rearm[sock] = true;
    }
    if (cqe->res < 0) {
        /* EMFILE and the like: the connection stays in the backlog; re-armed next batch. */
        zj_stat_add(&w->stats.tcp_rejected, 1);
        return;
    }
    zj_addr_t peer;
    peer.len = sizeof(peer.ss);
    if (getpeername(cqe->res, (struct sockaddr *)&peer.ss, &peer.len) != 0) {
        close(cqe->res);
        return;
    }
    if (zj_tcp_ip_is_full(&w->tcp, &peer)) {
        close(cqe->res);
        zj_stat_add(&w->stats.tcp_ip_limited, 1);
        return;
    }
    if (zj_tcp_is_full(&w->tcp)) {
        conn_close(w, zj_tcp_oldest(&w->tcp));
        zj_stat_add(&w->stats.tcp_evicted, 1);
    }
    zj_tcp_conn_t *c = zj_tcp_conn_new(&w->tcp, cqe->res, &peer, zj_now_ms());
    if (c == NULL) {
        zj_stat_add(&w->stats.tcp_rejected, 1);
        return;
    }
    zj_stat_add(&w->stats.tcp_accepted, 1);
    conn_advance(w, c);
}

static zj_tcp_conn_t *op_done(zj_worker_t *w, uint32_t idx)
{
    zj_tcp_conn_t *c = w->tcp.slots[idx];
    if (c == NULL) {
        return NULL;
    }
    c->n_ops--;
    if (c->is_closing) {
        maybe_free(w, c);
        return NULL;
    }
    return c;
}

static void on_tcp_recv(zj_worker_t *w, uint32_t idx, int res)
{
    zj_tcp_conn_t *c = w->tcp.slots[idx];
    if (c != NULL) {
        c->is_recv_posted = false;
    }
    c = op_done(w, idx);
    if (c == NULL) {
        return;
    }
    if (res > 0) {
        zj_tcp_received(&w->tcp, c, (size_t)res, zj_now_ms());
    } else if (res == 0) {
        c->is_eof = true;
    } else {
        conn_close(w, c);
        return;
    }
    conn_advance(w, c);
}

static void on_tcp_send(zj_worker_t *w, uint32_t idx, int res)
{
    zj_tcp_conn_t *c = w->tcp.slots[idx];
    if (c != NULL) {
        c->is_send_posted = false;
    }
    c = op_done(w, idx);
    if (c == NULL) {
        return;
    }
    if (res <= 0) {
        conn_close(w, c);
        return;
    }
    zj_tcp_sent(c, (size_t)res);
    zj_tcp_touch(&w->tcp, c, zj_now_ms());
    post_send(w, c);
    conn_advance(w, c);
}

static size_t take_tcp(zj_worker_t *w, zj_msg_t *msgs, size_t n, size_t limit)
{
    return zj_worker_take_tcp(w, msgs, n, limit, conn_advance);
}

/* ---- UDP ---- */

static bool on_udp_recv(zj_worker_t *w, uint32_t sock, const struct io_uring_cqe *cqe, zj_msg_t *m)
{
    uring_state_t *st = w->io_state;
    if ((cqe->flags & IORING_CQE_F_MORE) == 0) {
        st->udp_rearm[sock] = true;
    }
    if (cqe->res < 0) {
        if (cqe->res == -ENOBUFS) {
            zj_stat_add(&w->stats.nobufs, 1);
        }
        return false;
    }
    if ((cqe->flags & IORING_CQE_F_BUFFER) == 0) {
        return false;
    }
    uint16_t bid = (uint16_t)(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
    uint8_t *buf = st->rx_bufs + (size_t)bid * URING_RX_BUF_SIZE;
    zj_stat_add(&w->stats.udp_rx, 1);
    struct io_uring_recvmsg_out *out = io_uring_recvmsg_validate(buf, cqe->res, &st->recv_tmpl);
    if (out == NULL || (out->flags & MSG_TRUNC) != 0 || st->n_tx_free == 0) {
        /* Malformed layout, a datagram too big for a buffer, or every tx slot busy: drop
         * (UDP clients retry). */
        recycle_rx(st, bid);
        zj_stat_add(&w->stats.udp_drops, 1);
        return false;
    }
    uint32_t id = st->tx_free[--st->n_tx_free];
    tx_slot_t *s = &st->tx[id];
    socklen_t namelen =
        out->namelen < st->recv_tmpl.msg_namelen ? out->namelen : st->recv_tmpl.msg_namelen;
    memcpy(&s->name, io_uring_recvmsg_name(out), namelen);
    memset(&s->mh, 0, sizeof(s->mh));
    s->mh.msg_name = &s->name;
    s->mh.msg_namelen = namelen;
    s->mh.msg_iov = &s->iov;
    s->mh.msg_iovlen = 1;
    if (st->udp_is_any[sock]) {
        for (struct cmsghdr *cm = io_uring_recvmsg_cmsg_firsthdr(out, &st->recv_tmpl); cm != NULL;
             cm = io_uring_recvmsg_cmsg_nexthdr(out, &st->recv_tmpl, cm)) {
            size_t len = zj_sock_reply_pktinfo(cm, s->ctl.buf, sizeof(s->ctl.buf));
            if (len > 0) {
                s->mh.msg_control = s->ctl.buf;
                s->mh.msg_controllen = len;
                break;
            }
        }
    }
    s->rx_bid = bid;
    m->rx = io_uring_recvmsg_payload(out, &st->recv_tmpl);
    m->rx_len = io_uring_recvmsg_payload_length(out, cqe->res, &st->recv_tmpl);
    m->tx = s->buf;
    m->tx_cap = sizeof(s->buf);
    m->tx_len = 0;
    m->src = (const struct sockaddr *)&s->name;
    m->is_tcp = false;
    m->ref = id | (sock << 16);
    return true;
}

static void on_udp_send(zj_worker_t *w, uint32_t id, int res)
{
    uring_state_t *st = w->io_state;
    st->tx_free[st->n_tx_free++] = id;
    zj_stat_add(res >= 0 ? &w->stats.udp_tx : &w->stats.udp_drops, 1);
}

/* Handle one completion; returns true if it added a message at msgs[0]. */
static bool on_cqe(zj_worker_t *w, const struct io_uring_cqe *cqe, zj_msg_t *msg)
{
    uint64_t d = io_uring_cqe_get_data64(cqe);
    uint32_t idx = UD_INDEX(d);
    switch (UD_KIND(d)) {
    case UD_UDP_RECV:
        return on_udp_recv(w, idx, cqe, msg);
    case UD_UDP_SEND:
        on_udp_send(w, idx, cqe->res);
        return false;
    case UD_ACCEPT:
        on_accept(w, idx, cqe);
        return false;
    case UD_TCP_RECV:
        on_tcp_recv(w, idx, cqe->res);
        return false;
    case UD_TCP_SEND:
        on_tcp_send(w, idx, cqe->res);
        return false;
    case UD_STOP:
        w->is_stopping = true;
        return false;
    default:
        return false;
    }
}

/* Re-estimate the query rate once per window and choose the wait mode for the next batches. */
static void update_rate(uring_state_t *st, uint32_t n)
{
    st->window_pkts += n;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
    uint64_t t = (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec;
    uint64_t dt = t - st->window_start;
    if (dt < COALESCE_WINDOW_NS) {
        return;
    }
    /* rate = pkts / dt: compare pkts * 1e9 >= MIN_QPS * dt without dividing */
    st->is_coalescing = st->coalesce_us > 0 && (uint64_t)st->window_pkts * 1000000000ull >=
                                                   (uint64_t)st->coalesce_min_qps * dt;
    st->window_pkts = 0;
    st->window_start = t;
}

static int uring_recv_batch(zj_worker_t *w, zj_msg_t *msgs, size_t cap, int timeout_ms)
{
    uring_state_t *st = w->io_state;
    struct io_uring_cqe *cqe = NULL;
    size_t n = 0;
    int rc = 0;

    arm_all(w);
    if (w->tcp.ready_count > 0 || io_uring_cq_ready(&st->ring) > 0) {
        rc = io_uring_submit_and_get_events(&st->ring);
    } else {
        struct __kernel_timespec ts = {.tv_sec = timeout_ms / 1000,
                                       .tv_nsec = (long long)(timeout_ms % 1000) * 1000000};
        unsigned wait_nr = 1;
        /* the previous batch's replies, submitted by this same call; their completions
         * (usually inline) count towards wait_nr */
        unsigned sends = io_uring_sq_ready(&st->ring);
        if (st->is_coalescing) {
            ts.tv_sec = st->coalesce_us / 1000000u;
            ts.tv_nsec = (long long)(st->coalesce_us % 1000000u) * 1000;
            wait_nr = ZJ_BATCH + sends; /* a full batch of receives */
        }
        rc = io_uring_submit_and_wait_timeout(&st->ring, &cqe, wait_nr, &ts, NULL);
        unsigned ready = io_uring_cq_ready(&st->ring);
        if (rc == -ETIME && st->is_coalescing && ready <= sends) {
            /* Nothing but those completions within the coalescing delay: block for the next
             * datagram and answer it at once. Coalescing stays on; only the rate window turns
             * it off. (Turning it off here lasted until the window's end: under dnsperf's
             * bursts at its maximum rate, batches fell from ~40 datagrams to ~4.) */
            ts.tv_sec = timeout_ms / 1000;
            ts.tv_nsec = (long long)(timeout_ms % 1000) * 1000000;
            rc = io_uring_submit_and_wait_timeout(&st->ring, &cqe, ready + 1, &ts, NULL);
        }
    }
    if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) {
        return rc;
    }
    /* TCP queries first, bounded, so a UDP flood cannot starve TCP clients. */
    size_t tcp_first = ZJ_BATCH / 4 < cap ? ZJ_BATCH / 4 : cap;
    n = take_tcp(w, msgs, n, tcp_first);

    unsigned head = 0;
    unsigned seen = 0;
    io_uring_for_each_cqe(&st->ring, head, cqe)
    {
        if (n >= cap) {
            break;
        }
        seen++;
        if (on_cqe(w, cqe, &msgs[n])) {
            n++;
        }
    }
    io_uring_cq_advance(&st->ring, seen);
    flush_rx(st);
    update_rate(st, (uint32_t)n);
    return (int)take_tcp(w, msgs, n, cap);
}

static void tcp_answered(zj_worker_t *w, const zj_msg_t *m)
{
    zj_tcp_conn_t *c = w->tcp.slots[m->ref];
    if (c == NULL) {
        return;
    }
    zj_tcp_commit_answer(c, m->tx_len);
    if (c->is_closing) {
        maybe_free(w, c);
        return;
    }
    if (m->tx_len == 0) {
        /* A query we drop over TCP (junk, or QR set): the stream cannot be trusted further. */
        conn_close(w, c);
        return;
    }
    post_send(w, c);
    conn_advance(w, c);
}

/* The --uring-send sendmmsg variant: the batch's UDP replies leave in one sendmmsg per socket,
 * on this thread, instead of one sendmsg SQE each; the tx slots are free again at once. Same
 * work for the kernel's UDP path, but no SQE, no send completion to reap, and no io_uring send
 * machinery per reply (docs/performance.md compares the two). */
static void flush_direct(zj_worker_t *w, int fd, struct mmsghdr *mm, const uint32_t *ids,
                         unsigned k)
{
    uring_state_t *st = w->io_state;
    zj_worker_sendmmsg(w, fd, mm, k);
    for (unsigned i = 0; i < k; i++) {
        st->tx_free[st->n_tx_free++] = ids[i];
    }
}

static void send_udp_direct(zj_worker_t *w, zj_msg_t *msgs, size_t n)
{
    uring_state_t *st = w->io_state;
    struct mmsghdr mm[ZJ_BATCH];
    uint32_t ids[ZJ_BATCH];
    for (size_t sock = 0; sock < w->n_socks; sock++) {
        unsigned k = 0;
        for (size_t i = 0; i < n; i++) {
            zj_msg_t *m = &msgs[i];
            if (m->is_tcp || m->ref >> 16 != sock) {
                continue;
            }
            uint32_t id = m->ref & 0xffffu;
            tx_slot_t *s = &st->tx[id];
            recycle_rx(st, s->rx_bid);
            if (m->tx_len == 0) {
                st->tx_free[st->n_tx_free++] = id;
                continue;
            }
            s->iov.iov_base = s->buf;
            s->iov.iov_len = m->tx_len;
            mm[k].msg_hdr = s->mh;
            mm[k].msg_len = 0;
            ids[k++] = id;
            if (k == ZJ_BATCH) {
                flush_direct(w, w->udp_fds[sock], mm, ids, k);
                k = 0;
            }
        }
        flush_direct(w, w->udp_fds[sock], mm, ids, k);
    }
}

static void uring_send_batch(zj_worker_t *w, zj_msg_t *msgs, size_t n)
{
    uring_state_t *st = w->io_state;
    if (w->is_uring_sendmmsg) {
        for (size_t i = 0; i < n; i++) {
            if (msgs[i].is_tcp) {
                tcp_answered(w, &msgs[i]);
            }
        }
        send_udp_direct(w, msgs, n);
        flush_rx(st);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        zj_msg_t *m = &msgs[i];
        if (m->is_tcp) {
            tcp_answered(w, m);
            continue;
        }
        uint32_t id = m->ref & 0xffffu;
        uint32_t sock = m->ref >> 16;
        tx_slot_t *s = &st->tx[id];
        recycle_rx(st, s->rx_bid);
        struct io_uring_sqe *sqe = m->tx_len > 0 ? get_sqe(st) : NULL;
        if (sqe == NULL) {
            st->tx_free[st->n_tx_free++] = id;
            continue;
        }
        s->iov.iov_base = s->buf;
        s->iov.iov_len = m->tx_len;
        io_uring_prep_sendmsg(sqe, w->udp_fds[sock], &s->mh, 0);
        io_uring_sqe_set_data64(sqe, UD_DATA(UD_UDP_SEND, id));
    }
    flush_rx(st);
}

static void uring_tick(zj_worker_t *w, uint64_t now_ms)
{
    zj_worker_expire_tcp(w, now_ms, conn_close);
}

static void uring_run(zj_worker_t *w)
{
    zj_worker_loop(w, uring_recv_batch, uring_send_batch);
}

const zj_io_ops_t zj_io_uring_ops = {
    .name = "io_uring",
    .init = uring_init,
    .fini = uring_fini,
    .run = uring_run,
    .tick = uring_tick,
};
