/* Fallback backend: epoll + recvmmsg/sendmmsg for UDP, non-blocking sockets for TCP.
 *
 * Used when the io_uring probe fails (--io auto), on request (--io mmsg), and under valgrind,
 * which cannot follow io_uring's memory. One epoll instance per worker watches the stop
 * eventfd, the worker's UDP sockets, its TCP listen sockets and its connections, all
 * level-triggered so a socket left unread because the batch was full is reported again.
 *
 * UDP: a batch has ZJ_BATCH slots, each with its receive buffer, source address, control
 * message and transmit buffer, allocated once, and its receive header, set up once. recvmmsg
 * fills slots socket by socket (the sockets the wait reported readable); sendmmsg sends each
 * socket's answers in one call. The per-batch work is proportional to the events and datagrams
 * of the batch, never to ZJ_BATCH or the number of sockets (callgrind, 2,000 q/s, one datagram
 * per batch: every per-batch instruction is paid per query at light load). TCP: one read per
 * readiness event into the connection's buffer, complete queries go to the ready ring (net/tcp.c),
 * answers are written straight away and EPOLLOUT is armed only while a write is pending. */
#include "net/io.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "zonejet/err.h"
#include "zonejet/wire.h"
#include "net/worker.h"
#include "util/log.h"

/* Largest query accepted over UDP; a larger datagram is truncated by the kernel and dropped.
 * Real queries are one question plus OPT (and maybe a cookie or TSIG): well under 1 KiB. */
#define MMSG_RX_CAP 4096

/* epoll events fetched per wait: as many as a batch can use. */
#define MMSG_EVENTS ZJ_BATCH

/* Connections accepted per listen-socket readiness event: bounds the time spent accepting
 * before the batch is served; level-triggered epoll reports the rest next time. */
#define MMSG_ACCEPT_BURST 16

/* Share of a batch reserved for TCP queries before UDP is read, so a UDP flood cannot starve
 * TCP clients (and the reverse). */
#define MMSG_TCP_FIRST (ZJ_BATCH / 4)

/* epoll data: kind in the top byte, index below. */
#define EV_STOP 1ull
#define EV_UDP 2ull
#define EV_LISTEN 3ull
#define EV_CONN 4ull
#define EV_KIND(d) ((d) >> 56)
#define EV_INDEX(d) ((uint32_t)(d))
#define EV_DATA(kind, idx) ((kind) << 56 | (uint64_t)(idx))

typedef struct udp_slot {
    struct sockaddr_storage name;
    zj_cmsg_buf_t rx_ctl;
    zj_cmsg_buf_t tx_ctl;
    struct iovec rx_iov;
    struct iovec tx_iov;
    uint32_t sock;        /* the socket the query came from */
    size_t rx_controllen; /* as received: the rx header's lengths are reset for reuse */
    uint8_t rx[MMSG_RX_CAP];
    uint8_t tx[ZJ_UDP_TX_CAP];
} udp_slot_t;

typedef struct mmsg_state {
    int epfd;
    uint32_t n_slots_used; /* UDP slots filled in the current batch */
    bool *udp_is_any;      /* per socket: bound to a wildcard address (reply needs PKTINFO) */
    struct mmsghdr rx_hdr[ZJ_BATCH]; /* slot i receives into rx_hdr[i] */
    struct mmsghdr tx_hdr[ZJ_BATCH]; /* slot i's reply header is written to tx_hdr[i] */
    struct epoll_event events[MMSG_EVENTS];
    udp_slot_t slots[ZJ_BATCH];
} mmsg_state_t;

static int ep_add(int epfd, int fd, uint32_t events, uint64_t data)
{
    struct epoll_event ev = {.events = events, .data.u64 = data};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        return -errno;
    }
    return ZJ_OK;
}

static void mmsg_fini(zj_worker_t *w)
{
    mmsg_state_t *st = w->io_state;
    if (st == NULL) {
        return;
    }
    if (st->epfd >= 0) {
        close(st->epfd);
    }
    free(st->udp_is_any);
    free(st);
    w->io_state = NULL;
}

static int mmsg_init(zj_worker_t *w)
{
    int rc = ZJ_OK;
    mmsg_state_t *st = calloc(1, sizeof(*st));
    if (st == NULL) {
        return ZJ_ENOMEM;
    }
    w->io_state = st;
    st->epfd = epoll_create1(EPOLL_CLOEXEC);
    st->udp_is_any = calloc(w->n_socks, sizeof(bool));
    if (st->epfd < 0 || st->udp_is_any == NULL) {
        rc = st->epfd < 0 ? -errno : ZJ_ENOMEM;
        goto out;
    }
    /* Slot i always receives into rx_hdr[i]: the pointers are set once here, and each receive
     * only resets the two lengths the kernel overwrites (measured with callgrind: re-building
     * all 64 headers per recvmmsg call cost ~1,000 instructions per query at light load). */
    for (size_t i = 0; i < ZJ_BATCH; i++) {
        udp_slot_t *s = &st->slots[i];
        struct msghdr *mh = &st->rx_hdr[i].msg_hdr;
        s->rx_iov.iov_base = s->rx;
        s->rx_iov.iov_len = sizeof(s->rx);
        mh->msg_name = &s->name;
        mh->msg_namelen = sizeof(s->name);
        mh->msg_iov = &s->rx_iov;
        mh->msg_iovlen = 1;
        mh->msg_control = s->rx_ctl.buf;
        mh->msg_controllen = sizeof(s->rx_ctl.buf);
        /* the reply side: what a receive or a send does not write (udp_recv, mmsg_send_batch) */
        s->tx_iov.iov_base = s->tx;
        st->tx_hdr[i].msg_hdr.msg_iovlen = 1;
    }
    rc = ep_add(st->epfd, w->stop_fd, EPOLLIN, EV_DATA(EV_STOP, 0));
    for (size_t i = 0; i < w->n_socks && rc == ZJ_OK; i++) {
        zj_addr_t local;
        st->udp_is_any[i] = zj_sock_local(w->udp_fds[i], &local) == ZJ_OK && zj_addr_is_any(&local);
        rc = ep_add(st->epfd, w->udp_fds[i], EPOLLIN, EV_DATA(EV_UDP, i));
        if (rc == ZJ_OK) {
            rc = ep_add(st->epfd, w->tcp_fds[i], EPOLLIN, EV_DATA(EV_LISTEN, i));
        }
    }
out:
    if (rc != ZJ_OK) {
        zj_log_err("worker %u: mmsg backend: %s", w->id, zj_strerror(rc));
    }
    return rc;
}

/* ---- TCP ---- */

static void conn_close(zj_worker_t *w, zj_tcp_conn_t *c)
{
    zj_stat_add(&w->stats.tcp_closed, 1);
    zj_tcp_conn_free(&w->tcp, c); /* close() also removes it from epoll */
}

static void conn_set_events(zj_worker_t *w, zj_tcp_conn_t *c, uint32_t events)
{
    mmsg_state_t *st = w->io_state;
    if (events == c->events) {
        return;
    }
    struct epoll_event ev = {.events = events, .data.u64 = EV_DATA(EV_CONN, c->idx)};
    if (epoll_ctl(st->epfd, EPOLL_CTL_MOD, c->fd, &ev) == 0) {
        c->events = events;
    }
}

/* Act on what the connection needs next (tcp.h's decision). */
static void conn_advance(zj_worker_t *w, zj_tcp_conn_t *c)
{
    uint32_t out = c->wlen > c->woff ? EPOLLOUT : 0;
    switch (zj_tcp_next(&w->tcp, c)) {
    case ZJ_TCP_NEXT_QUERY:
        zj_tcp_ready_push(&w->tcp, c);
        conn_set_events(w, c, out);
        return;
    case ZJ_TCP_NEXT_WAIT:
        conn_set_events(w, c, out);
        return;
    case ZJ_TCP_NEXT_READ:
        conn_set_events(w, c, EPOLLIN | out);
        return;
    case ZJ_TCP_NEXT_CLOSE:
        conn_close(w, c);
        return;
    }
}

static void conn_read(zj_worker_t *w, zj_tcp_conn_t *c)
{
    if (zj_tcp_next(&w->tcp, c) != ZJ_TCP_NEXT_READ) {
        conn_advance(w, c);
        return;
    }
    size_t cap = 0;
    uint8_t *p = zj_tcp_read_space(c, &cap);
    ssize_t n = recv(c->fd, p, cap, MSG_DONTWAIT);
    if (n > 0) {
        zj_tcp_received(&w->tcp, c, (size_t)n, zj_now_ms());
    } else if (n == 0) {
        c->is_eof = true;
    } else if (errno != EAGAIN && errno != EINTR) {
        conn_close(w, c);
        return;
    }
    conn_advance(w, c);
}

static void conn_write(zj_worker_t *w, zj_tcp_conn_t *c)
{
    while (c->woff < c->wlen) {
        ssize_t n = send(c->fd, c->wbuf + c->woff, c->wlen - c->woff, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n > 0) {
            zj_tcp_sent(c, (size_t)n);
            zj_tcp_touch(&w->tcp, c, zj_now_ms());
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            break;
        }
        conn_close(w, c);
        return;
    }
    conn_advance(w, c);
}

static void conn_accept(zj_worker_t *w, uint32_t sock)
{
    mmsg_state_t *st = w->io_state;
    for (int i = 0; i < MMSG_ACCEPT_BURST; i++) {
        zj_addr_t peer;
        peer.len = sizeof(peer.ss);
        int fd = accept4(w->tcp_fds[sock], (struct sockaddr *)&peer.ss, &peer.len,
                         SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            /* EAGAIN: drained. EMFILE and friends: leave the rest in the backlog. */
            return;
        }
        if (zj_tcp_ip_is_full(&w->tcp, &peer)) {
            close(fd);
            zj_stat_add(&w->stats.tcp_ip_limited, 1);
            continue;
        }
        if (zj_tcp_is_full(&w->tcp)) {
            conn_close(w, zj_tcp_oldest(&w->tcp));
            zj_stat_add(&w->stats.tcp_evicted, 1);
        }
        zj_tcp_conn_t *c = zj_tcp_conn_new(&w->tcp, fd, &peer, zj_now_ms());
        if (c == NULL) {
            zj_stat_add(&w->stats.tcp_rejected, 1);
            continue;
        }
        if (ep_add(st->epfd, fd, EPOLLIN, EV_DATA(EV_CONN, c->idx)) != ZJ_OK) {
            conn_close(w, c);
            continue;
        }
        c->events = EPOLLIN;
        zj_stat_add(&w->stats.tcp_accepted, 1);
    }
}

static void conn_event(zj_worker_t *w, uint32_t idx, uint32_t events)
{
    zj_tcp_conn_t *c = w->tcp.slots[idx];
    if (c == NULL) {
        return;
    }
    if ((events & EPOLLOUT) != 0) {
        conn_write(w, c);
        c = w->tcp.slots[idx];
        if (c == NULL) {
            return;
        }
    }
    if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) != 0) {
        conn_read(w, c);
    }
}

static size_t take_tcp(zj_worker_t *w, zj_msg_t *msgs, size_t n, size_t limit)
{
    return zj_worker_take_tcp(w, msgs, n, limit, conn_advance);
}

/* ---- UDP ---- */

/* Receive from a socket the wait reported readable into the next free slots, as messages from
 * msgs[n]; returns the new count (at most cap). A socket still readable when the batch is
 * full is reported again by the next (level-triggered) wait. */
static inline __attribute__((always_inline)) int udp_recv(zj_worker_t *w, uint32_t sock,
                                                          zj_msg_t *msgs, size_t n, size_t cap)
{
    mmsg_state_t *st = w->io_state;
    uint32_t first = st->n_slots_used;
    size_t room = cap - n;
    if (room > ZJ_BATCH - first) {
        room = ZJ_BATCH - first;
    }
    int got = zj_io_recvmmsg(w->udp_fds[sock], &st->rx_hdr[first], (unsigned)room, MSG_DONTWAIT);
    if (got <= 0) {
        return (int)n;
    }
    st->n_slots_used += (uint32_t)got;
    zj_stat_add(&w->stats.udp_rx, (uint64_t)got);
    for (int i = 0; i < got; i++) {
        uint32_t id = first + (uint32_t)i;
        udp_slot_t *s = &st->slots[id];
        struct mmsghdr *h = &st->rx_hdr[id];
        /* The reply's header in the slot's own place: its address and, as sendmmsg wants them
         * the same for every reply of a batch, its buffer (mmsg_send_batch moves the header
         * down over a query that got no answer, so these are written each time). */
        struct msghdr *tx = &st->tx_hdr[id].msg_hdr;
        tx->msg_name = &s->name;
        tx->msg_namelen = h->msg_hdr.msg_namelen;
        tx->msg_iov = &s->tx_iov;
        /* lengths the kernel overwrote, ready for the slot's next receive */
        h->msg_hdr.msg_namelen = sizeof(s->name);
        s->rx_controllen = h->msg_hdr.msg_controllen;
        h->msg_hdr.msg_controllen = sizeof(s->rx_ctl.buf);
        if ((h->msg_hdr.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0) {
            /* Over MMSG_RX_CAP: not a query we could answer; drop. */
            zj_stat_add(&w->stats.udp_drops, 1);
            continue;
        }
        s->sock = sock;
        zj_msg_t *m = &msgs[n++];
        m->rx = s->rx;
        m->rx_len = h->msg_len;
        m->tx = s->tx;
        m->tx_cap = sizeof(s->tx);
        m->tx_len = 0;
        m->src = (const struct sockaddr *)&s->name;
        m->is_tcp = false;
        m->ref = id;
    }
    return (int)n;
}

/* Everything but the usual wake-up: the stop event, accepts, TCP reads and writes, several UDP
 * sockets, a failed or interrupted wait. Out of line, so that the usual path does not pay for
 * its registers. ne is the result of the wait (events in st->events). */
static __attribute__((noinline)) int recv_events(zj_worker_t *w, zj_msg_t *msgs, size_t cap, int ne)
{
    mmsg_state_t *st = w->io_state;
    size_t n = 0;
    uint32_t udp_ready[MMSG_EVENTS]; /* the UDP sockets this wait reported, in its order */
    uint32_t n_udp_ready = 0;

    if (ne < 0) {
        if (ne != -EINTR) {
            return ne;
        }
        ne = 0;
    }
    for (int i = 0; i < ne; i++) {
        uint64_t d = st->events[i].data.u64;
        switch (EV_KIND(d)) {
        case EV_STOP:
            w->is_stopping = true;
            return 0;
        case EV_UDP:
            udp_ready[n_udp_ready++] = EV_INDEX(d);
            break;
        case EV_LISTEN:
            conn_accept(w, EV_INDEX(d));
            break;
        case EV_CONN:
            conn_event(w, EV_INDEX(d), st->events[i].events);
            break;
        default:
            break;
        }
    }
    n = take_tcp(w, msgs, n, MMSG_TCP_FIRST < cap ? MMSG_TCP_FIRST : cap);
    for (uint32_t i = 0; i < n_udp_ready && n < cap; i++) {
        n = (size_t)udp_recv(w, udp_ready[i], msgs, n, cap);
    }
    n = take_tcp(w, msgs, n, cap);
    return (int)n;
}

static int mmsg_recv_batch(zj_worker_t *w, zj_msg_t *msgs, size_t cap, int timeout_ms)
{
    mmsg_state_t *st = w->io_state;

    st->n_slots_used = 0;
    int ne = zj_io_epoll_wait(st->epfd, st->events, MMSG_EVENTS,
                              w->tcp.ready_count > 0 ? 0 : timeout_ms);
    uint64_t d = st->events[0].data.u64;
    if (likely(ne == 1 && EV_KIND(d) == EV_UDP && w->tcp.ready_count == 0)) {
        /* The usual wake-up under UDP load: one readable UDP socket and no TCP work, so
         * recv_events would do just this. */
        return udp_recv(w, EV_INDEX(d), msgs, 0, cap);
    }
    return recv_events(w, msgs, cap, ne);
}

/* Send the run of replies for one socket that a reply for another socket ends (rare: several
 * listen addresses in one batch); the batch's last run is sent inline in mmsg_send_batch. */
static __attribute__((noinline)) void udp_flush(zj_worker_t *w, uint32_t sock, uint32_t first,
                                                uint32_t count)
{
    mmsg_state_t *st = w->io_state;
    zj_worker_sendmmsg(w, w->udp_fds[sock], &st->tx_hdr[first], count);
}

/* A reply on a wildcard socket leaves from the address the query came to: the PKTINFO it
 * arrived with, as the reply's control message (none if the query carried none). */
static __attribute__((noinline)) void reply_pktinfo(udp_slot_t *s, struct msghdr *h)
{
    struct msghdr view = {.msg_control = s->rx_ctl.buf, .msg_controllen = s->rx_controllen};
    struct msghdr *rx = &view;
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(rx); cm != NULL; cm = CMSG_NXTHDR(rx, cm)) {
        size_t len = zj_sock_reply_pktinfo(cm, s->tx_ctl.buf, sizeof(s->tx_ctl.buf));
        if (len > 0) {
            h->msg_control = s->tx_ctl.buf;
            h->msg_controllen = len;
            return;
        }
    }
}

/* Out of line (as the two above): a UDP batch does not pay for their registers. */
static __attribute__((noinline)) void tcp_answered(zj_worker_t *w, zj_msg_t *m)
{
    zj_tcp_conn_t *c = w->tcp.slots[m->ref];
    if (c == NULL) {
        return;
    }
    zj_tcp_commit_answer(c, m->tx_len);
    if (m->tx_len == 0) {
        /* A query we drop over TCP (junk, or QR set): the stream cannot be trusted further. */
        conn_close(w, c);
        return;
    }
    conn_write(w, c);
}

/* UDP replies go out in runs, one sendmmsg per socket's run: the slots of a socket are
 * consecutive (udp_recv fills them in order) and their messages come in slot order, so a run's
 * headers already sit in order in tx_hdr, each in its slot's place, and a reply sets only its
 * length and control message. A query that got no answer leaves a gap, closed by moving the
 * later headers of its run down (the place a header moves to is free: its own slot's reply, if
 * any, was sent from a lower place). */
static void mmsg_send_batch(zj_worker_t *w, zj_msg_t *msgs, size_t n)
{
    mmsg_state_t *st = w->io_state;
    uint32_t first = 0; /* tx_hdr index of the run's first reply */
    uint32_t run = 0;   /* replies in the run */
    uint32_t run_sock = 0;

    for (size_t i = 0; i < n; i++) {
        zj_msg_t *m = &msgs[i];
        if (unlikely(m->is_tcp)) {
            tcp_answered(w, m);
            continue;
        }
        if (unlikely(m->tx_len == 0)) {
            continue;
        }
        uint32_t id = m->ref;
        udp_slot_t *s = &st->slots[id];
        if (unlikely(s->sock != run_sock)) {
            if (run > 0) {
                udp_flush(w, run_sock, first, run);
            }
            first = id;
            run = 0;
            run_sock = s->sock;
        }
        assert(id >= first + run);
        struct msghdr *h = &st->tx_hdr[first + run].msg_hdr;
        if (unlikely(first + run != id)) {
            *h = st->tx_hdr[id].msg_hdr; /* close the gap */
        }
        s->tx_iov.iov_len = m->tx_len;
        h->msg_control = NULL;
        h->msg_controllen = 0;
        if (st->udp_is_any[s->sock]) {
            reply_pktinfo(s, h);
        }
        run++;
    }
    zj_worker_sendmmsg(w, w->udp_fds[run_sock], &st->tx_hdr[first], run); /* none if run is 0 */
}

static void mmsg_tick(zj_worker_t *w, uint64_t now_ms)
{
    zj_worker_expire_tcp(w, now_ms, conn_close);
}

static void mmsg_run(zj_worker_t *w)
{
    zj_worker_loop(w, mmsg_recv_batch, mmsg_send_batch);
}

const zj_io_ops_t zj_io_mmsg_ops = {
    .name = "mmsg",
    .init = mmsg_init,
    .fini = mmsg_fini,
    .run = mmsg_run,
    .tick = mmsg_tick,
};
