/* Connection table, framing and idle LRU for DNS over TCP (RFC 7766); see tcp.h.
 *
 * The table is a fixed slot array (2 * max_conns + slack, tcp.h) with a free-id stack, so a
 * connection's index can travel in io_uring user_data or epoll data and be looked up without
 * hashing. The ready ring has one entry per slot and a connection is in it at most once (in_ready),
 * so it can never overflow. The LRU is a doubly linked list of open connections ordered by last
 * activity: its head is both the next idle-timeout victim and the connection evicted when the
 * cap is reached (RFC 7766 §6.2.2: a server may close idle connections to make room).
 *
 * The message timer is a second list, of connections holding part of a message, in the order
 * their partial messages were first seen; every connection has the same timeout, so the head
 * is always the next to expire and a tick costs O(1) when nothing expires. Per-address counts
 * live in an open-addressing table twice the slot count, so it never fills (at most one entry
 * per connection slot) and probes stay short. Answers in flight are counted by walking the
 * length prefixes in wbuf as sends complete (next_end), so no per-answer record is kept. */
#include "net/tcp.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "zonejet/err.h"
#include "zonejet/wire.h"

int zj_tcp_table_init(zj_tcp_table_t *t, const zj_tcp_limits_t *lim)
{
    memset(t, 0, sizeof(*t));
    t->lim = *lim;
    t->n_slots = 2 * lim->max_conns + ZJ_TCP_SLOT_SLACK;
    uint32_t n_ips = 1;
    while (n_ips < 2 * t->n_slots) {
        n_ips <<= 1;
    }
    t->ip_mask = n_ips - 1;
    t->slots = calloc(t->n_slots, sizeof(*t->slots));
    t->free_ids = calloc(t->n_slots, sizeof(*t->free_ids));
    t->ready = calloc(t->n_slots, sizeof(*t->ready));
    t->ips = calloc(n_ips, sizeof(*t->ips));
    if (t->slots == NULL || t->free_ids == NULL || t->ready == NULL || t->ips == NULL) {
        zj_tcp_table_fini(t);
        return ZJ_ENOMEM;
    }
    /* Lowest ids on top of the stack: keeps the live part of the table dense. */
    for (uint32_t i = 0; i < t->n_slots; i++) {
        t->free_ids[i] = t->n_slots - 1 - i;
    }
    t->n_free = t->n_slots;
    return ZJ_OK;
}

void zj_tcp_table_fini(zj_tcp_table_t *t)
{
    if (t->slots != NULL) {
        for (uint32_t i = 0; i < t->n_slots; i++) {
            if (t->slots[i] != NULL) {
                zj_tcp_conn_free(t, t->slots[i]);
            }
        }
    }
    free(t->slots);
    free(t->free_ids);
    free(t->ready);
    free(t->ips);
    memset(t, 0, sizeof(*t));
}

static void lru_unlink(zj_tcp_table_t *t, zj_tcp_conn_t *c)
{
    if (c->lru_prev != NULL) {
        c->lru_prev->lru_next = c->lru_next;
    } else if (t->lru_head == c) {
        t->lru_head = c->lru_next;
    }
    if (c->lru_next != NULL) {
        c->lru_next->lru_prev = c->lru_prev;
    } else if (t->lru_tail == c) {
        t->lru_tail = c->lru_prev;
    }
    c->lru_prev = NULL;
    c->lru_next = NULL;
}

static void lru_append(zj_tcp_table_t *t, zj_tcp_conn_t *c)
{
    c->lru_prev = t->lru_tail;
    c->lru_next = NULL;
    if (t->lru_tail != NULL) {
        t->lru_tail->lru_next = c;
    } else {
        t->lru_head = c;
    }
    t->lru_tail = c;
}

static void msg_unlink(zj_tcp_table_t *t, zj_tcp_conn_t *c)
{
    if (!c->in_msg_list) {
        return;
    }
    if (c->msg_prev != NULL) {
        c->msg_prev->msg_next = c->msg_next;
    } else {
        t->msg_head = c->msg_next;
    }
    if (c->msg_next != NULL) {
        c->msg_next->msg_prev = c->msg_prev;
    } else {
        t->msg_tail = c->msg_prev;
    }
    c->msg_prev = NULL;
    c->msg_next = NULL;
    c->in_msg_list = false;
}

static void msg_append(zj_tcp_table_t *t, zj_tcp_conn_t *c, uint64_t now_ms)
{
    c->msg_start_ms = now_ms;
    c->msg_prev = t->msg_tail;
    c->msg_next = NULL;
    if (t->msg_tail != NULL) {
        t->msg_tail->msg_next = c;
    } else {
        t->msg_head = c;
    }
    t->msg_tail = c;
    c->in_msg_list = true;
}

/* ---- per-address counts ---- */

/* The key of an address: family and address bytes (the port is not part of it). */
static void ip_key(const zj_addr_t *a, uint8_t addr[16], uint8_t *family)
{
    memset(addr, 0, 16);
    *family = (uint8_t)a->ss.ss_family;
    if (a->ss.ss_family == AF_INET) {
        memcpy(addr, &((const struct sockaddr_in *)(const void *)&a->ss)->sin_addr, 4);
    } else if (a->ss.ss_family == AF_INET6) {
        memcpy(addr, &((const struct sockaddr_in6 *)(const void *)&a->ss)->sin6_addr, 16);
    }
}

/* Slot holding the key, or the empty slot where it would go. */
static uint32_t ip_slot(const zj_tcp_table_t *t, const uint8_t addr[16], uint8_t family)
{
    uint8_t k[17];
    memcpy(k, addr, 16);
    k[16] = family;
    uint32_t i = (uint32_t)XXH3_64bits(k, sizeof(k)) & t->ip_mask;
    /* Terminates: the table has at least twice as many slots as there can be keys. */
    while (t->ips[i].family != 0 &&
           (t->ips[i].family != family || memcmp(t->ips[i].addr, addr, 16) != 0)) {
        i = (i + 1) & t->ip_mask;
    }
    return i;
}

static uint32_t ip_home(const zj_tcp_table_t *t, const zj_tcp_ipcount_t *e)
{
    uint8_t k[17];
    memcpy(k, e->addr, 16);
    k[16] = e->family;
    return (uint32_t)XXH3_64bits(k, sizeof(k)) & t->ip_mask;
}

static void ip_inc(zj_tcp_table_t *t, const zj_addr_t *peer)
{
    uint8_t addr[16];
    uint8_t family = 0;
    ip_key(peer, addr, &family);
    if (family == 0) {
        return;
    }
    zj_tcp_ipcount_t *e = &t->ips[ip_slot(t, addr, family)];
    if (e->family == 0) {
        memcpy(e->addr, addr, 16);
        e->family = family;
        e->count = 0;
    }
    e->count++;
}

/* Decrement; at zero, delete with a backward shift (Knuth 6.4 algorithm R) so that probe
 * chains stay unbroken without tombstones. */
static void ip_dec(zj_tcp_table_t *t, const zj_addr_t *peer)
{
    uint8_t addr[16];
    uint8_t family = 0;
    ip_key(peer, addr, &family);
    uint32_t i = ip_slot(t, addr, family);
    if (family == 0 || t->ips[i].family == 0 || --t->ips[i].count > 0) {
        return;
    }
    for (uint32_t j = (i + 1) & t->ip_mask; t->ips[j].family != 0; j = (j + 1) & t->ip_mask) {
        uint32_t h = ip_home(t, &t->ips[j]);
        /* Entry j may move to the hole at i unless its home lies cyclically in (i, j]. */
        bool stays = i <= j ? (i < h && h <= j) : (i < h || h <= j);
        if (!stays) {
            t->ips[i] = t->ips[j];
            i = j;
        }
    }
    memset(&t->ips[i], 0, sizeof(t->ips[i]));
}

bool zj_tcp_ip_is_full(const zj_tcp_table_t *t, const zj_addr_t *peer)
{
    uint8_t addr[16];
    uint8_t family = 0;
    ip_key(peer, addr, &family);
    if (family == 0) {
        return false;
    }
    const zj_tcp_ipcount_t *e = &t->ips[ip_slot(t, addr, family)];
    return e->family != 0 && e->count >= t->lim.max_conns_per_ip;
}

zj_tcp_conn_t *zj_tcp_conn_new(zj_tcp_table_t *t, int fd, const zj_addr_t *peer, uint64_t now_ms)
{
    zj_tcp_conn_t *c = NULL;
    if (t->n_free == 0) {
        goto fail;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        goto fail;
    }
    /* One allocation for both buffers; large enough that malloc maps it and pages are only
     * touched as far as data is written. */
    c->rbuf = malloc(ZJ_TCP_RBUF_CAP + ZJ_TCP_WBUF_CAP);
    if (c->rbuf == NULL) {
        goto fail;
    }
    c->wbuf = c->rbuf + ZJ_TCP_RBUF_CAP;
    c->fd = fd;
    c->idx = t->free_ids[--t->n_free];
    c->peer = *peer;
    c->last_ms = now_ms;
    t->slots[c->idx] = c;
    t->n_open++;
    lru_append(t, c);
    ip_inc(t, &c->peer);
    return c;
fail:
    free(c);
    close(fd);
    return NULL;
}

/* Marks a ready-ring entry that belongs to a freed connection (so a reused slot id is never
 * queued twice). */
#define READY_GONE UINT32_MAX

void zj_tcp_conn_free(zj_tcp_table_t *t, zj_tcp_conn_t *c)
{
    zj_tcp_conn_retire(t, c);
    if (c->in_ready) {
        /* Rare (a queued connection closed before its turn); bounded by the ring length. */
        for (uint32_t i = 0; i < t->ready_count; i++) {
            uint32_t *e = &t->ready[(t->ready_head + i) % t->n_slots];
            if (*e == c->idx) {
                *e = READY_GONE;
            }
        }
    }
    if (c->fd >= 0) {
        close(c->fd);
    }
    t->slots[c->idx] = NULL;
    t->free_ids[t->n_free++] = c->idx;
    free(c->rbuf);
    free(c);
}

void zj_tcp_conn_retire(zj_tcp_table_t *t, zj_tcp_conn_t *c)
{
    if (c->is_closing) {
        return;
    }
    c->is_closing = true;
    lru_unlink(t, c);
    msg_unlink(t, c);
    ip_dec(t, &c->peer);
    t->n_open--;
}

bool zj_tcp_is_full(const zj_tcp_table_t *t)
{
    return t->n_open >= t->lim.max_conns;
}

zj_tcp_conn_t *zj_tcp_oldest(const zj_tcp_table_t *t)
{
    return t->lru_head;
}

void zj_tcp_touch(zj_tcp_table_t *t, zj_tcp_conn_t *c, uint64_t now_ms)
{
    c->last_ms = now_ms;
    if (c->is_closing || t->lru_tail == c) {
        return;
    }
    lru_unlink(t, c);
    lru_append(t, c);
}

int64_t zj_tcp_wait_ms(const zj_tcp_table_t *t, uint64_t now_ms)
{
    uint64_t deadline = UINT64_MAX;
    if (t->lru_head != NULL) {
        deadline = t->lru_head->last_ms + t->lim.idle_ms;
    }
    if (t->msg_head != NULL && t->msg_head->msg_start_ms + t->lim.msg_timeout_ms < deadline) {
        deadline = t->msg_head->msg_start_ms + t->lim.msg_timeout_ms;
    }
    if (deadline == UINT64_MAX) {
        return -1;
    }
    return deadline > now_ms ? (int64_t)(deadline - now_ms) : 0;
}

zj_tcp_conn_t *zj_tcp_expired(const zj_tcp_table_t *t, uint64_t now_ms, zj_tcp_expiry_t *why)
{
    zj_tcp_conn_t *c = t->msg_head;
    if (c != NULL && now_ms - c->msg_start_ms >= t->lim.msg_timeout_ms) {
        *why = ZJ_TCP_EXPIRED_MSG;
        return c;
    }
    c = t->lru_head;
    if (c != NULL && now_ms - c->last_ms >= t->lim.idle_ms) {
        *why = ZJ_TCP_EXPIRED_IDLE;
        return c;
    }
    return NULL;
}

/* Framing state of the unparsed bytes in rbuf. */
typedef enum frame_state {
    FRAME_PARTIAL,
    FRAME_COMPLETE,
    FRAME_JUNK,
} frame_state_t;

static frame_state_t frame_state(const zj_tcp_conn_t *c)
{
    uint32_t avail = c->rlen - c->roff;
    if (avail < 2) {
        return FRAME_PARTIAL;
    }
    uint16_t len = zj_be16(c->rbuf + c->roff);
    /* A message shorter than a DNS header cannot be a query; a zero length is the classic
     * junk prefix. RFC 7766 §8 leaves the reaction to the server: we close. */
    if (len < ZJ_DNS_HEADER_LEN) {
        return FRAME_JUNK;
    }
    return avail >= 2u + len ? FRAME_COMPLETE : FRAME_PARTIAL;
}

/* Start or stop c's message timer after its unparsed bytes changed. */
static void msg_timer_update(zj_tcp_table_t *t, zj_tcp_conn_t *c, uint64_t now_ms)
{
    bool is_partial = c->rlen > c->roff && frame_state(c) == FRAME_PARTIAL;
    if (is_partial && !c->in_msg_list && !c->is_closing) {
        msg_append(t, c, now_ms);
    } else if (!is_partial) {
        msg_unlink(t, c);
    }
}

void zj_tcp_received(zj_tcp_table_t *t, zj_tcp_conn_t *c, size_t n, uint64_t now_ms)
{
    c->rlen += (uint32_t)n;
    zj_tcp_touch(t, c, now_ms);
    msg_timer_update(t, c, now_ms);
}

zj_tcp_next_t zj_tcp_next(const zj_tcp_table_t *t, const zj_tcp_conn_t *c)
{
    if (c->is_closing || c->has_query_out) {
        return ZJ_TCP_NEXT_WAIT;
    }
    frame_state_t fs = frame_state(c);
    if (fs != FRAME_JUNK && c->n_inflight >= t->lim.max_inflight) {
        /* The client is not reading its answers: neither answer nor read until it does. */
        return ZJ_TCP_NEXT_WAIT;
    }
    switch (fs) {
    case FRAME_JUNK:
        return ZJ_TCP_NEXT_CLOSE;
    case FRAME_COMPLETE:
        /* Answer only if a maximal response fits behind what is still queued. */
        return ZJ_TCP_WBUF_CAP - c->wlen >= ZJ_TCP_MSG_MAX ? ZJ_TCP_NEXT_QUERY : ZJ_TCP_NEXT_WAIT;
    case FRAME_PARTIAL:
        break;
    }
    if (!c->is_eof) {
        return ZJ_TCP_NEXT_READ;
    }
    /* Peer finished sending: flush what we owe, then close (RFC 7766 §6.2.4). A partial
     * message at EOF is dropped. */
    return c->wlen > c->woff ? ZJ_TCP_NEXT_WAIT : ZJ_TCP_NEXT_CLOSE;
}

void zj_tcp_ready_push(zj_tcp_table_t *t, zj_tcp_conn_t *c)
{
    if (c->in_ready) {
        return;
    }
    c->in_ready = true;
    t->ready[(t->ready_head + t->ready_count) % t->n_slots] = c->idx;
    t->ready_count++;
}

zj_tcp_conn_t *zj_tcp_ready_pop(zj_tcp_table_t *t)
{
    while (t->ready_count > 0) {
        uint32_t id = t->ready[t->ready_head];
        t->ready_head = (t->ready_head + 1) % t->n_slots;
        t->ready_count--;
        zj_tcp_conn_t *c = id == READY_GONE ? NULL : t->slots[id];
        if (c == NULL) {
            continue;
        }
        c->in_ready = false;
        if (!c->is_closing) {
            return c;
        }
    }
    return NULL;
}

uint8_t *zj_tcp_take_query(zj_tcp_table_t *t, zj_tcp_conn_t *c, const uint8_t **q, size_t *qlen,
                           uint64_t now_ms)
{
    uint16_t len = zj_be16(c->rbuf + c->roff);
    *q = c->rbuf + c->roff + 2;
    *qlen = len;
    c->roff += 2u + len;
    c->has_query_out = true;
    msg_timer_update(t, c, now_ms);
    return c->wbuf + c->wlen + 2;
}

void zj_tcp_commit_answer(zj_tcp_conn_t *c, size_t len)
{
    c->has_query_out = false;
    if (len == 0) {
        return;
    }
    zj_put16(c->wbuf + c->wlen, (uint16_t)len);
    c->wlen += 2u + (uint32_t)len;
    if (c->n_inflight == 0) {
        c->next_end = c->wlen;
    }
    c->n_inflight++;
}

uint8_t *zj_tcp_read_space(zj_tcp_conn_t *c, size_t *cap)
{
    if (c->roff == c->rlen) {
        c->roff = 0;
        c->rlen = 0;
    } else if (c->roff > 0) {
        memmove(c->rbuf, c->rbuf + c->roff, c->rlen - c->roff);
        c->rlen -= c->roff;
        c->roff = 0;
    }
    *cap = ZJ_TCP_RBUF_CAP - c->rlen;
    return c->rbuf + c->rlen;
}

void zj_tcp_sent(zj_tcp_conn_t *c, size_t n)
{
    c->woff += (uint32_t)n;
    /* Every answer that ends at or before woff is now fully written; the next one's end is
     * found from its length prefix, which lies inside what was queued. */
    while (c->n_inflight > 0 && c->woff >= c->next_end) {
        c->n_inflight--;
        if (c->n_inflight > 0) {
            c->next_end += 2u + zj_be16(c->wbuf + c->next_end);
        }
    }
    if (c->is_send_posted || c->has_query_out) {
        return;
    }
    if (c->woff == c->wlen) {
        c->woff = 0;
        c->wlen = 0;
        c->next_end = 0;
    } else if (c->woff > 0) {
        memmove(c->wbuf, c->wbuf + c->woff, c->wlen - c->woff);
        c->wlen -= c->woff;
        c->next_end -= c->woff;
        c->woff = 0;
    }
}
