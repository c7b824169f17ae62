/* Connection table, framing and idle LRU for DNS over TCP (RFC 7766); see tcp.h.
 *
 * The table is a fixed slot array (max_conns + slack) with a free-id stack, so a connection's
 * index can travel in io_uring user_data or epoll data and be looked up without hashing. The
 * ready ring has one entry per slot and a connection is in it at most once (in_ready), so it
 * can never overflow. The LRU is a doubly linked list of open connections ordered by last
 * activity: its head is both the next idle-timeout victim and the connection evicted when the
 * cap is reached (RFC 7766 §6.2.2: a server may close idle connections to make room). */
#include "net/tcp.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "zonejet/err.h"
#include "zonejet/wire.h"

int zj_tcp_table_init(zj_tcp_table_t *t, uint32_t max_conns, uint32_t idle_ms)
{
    memset(t, 0, sizeof(*t));
    t->n_slots = max_conns + ZJ_TCP_SLOT_SLACK;
    t->max_conns = max_conns;
    t->idle_ms = idle_ms;
    t->slots = calloc(t->n_slots, sizeof(*t->slots));
    t->free_ids = calloc(t->n_slots, sizeof(*t->free_ids));
    t->ready = calloc(t->n_slots, sizeof(*t->ready));
    if (t->slots == NULL || t->free_ids == NULL || t->ready == NULL) {
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
    t->n_open--;
}

bool zj_tcp_is_full(const zj_tcp_table_t *t)
{
    return t->n_open >= t->max_conns;
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

int64_t zj_tcp_idle_wait_ms(const zj_tcp_table_t *t, uint64_t now_ms)
{
    if (t->lru_head == NULL) {
        return -1;
    }
    uint64_t deadline = t->lru_head->last_ms + t->idle_ms;
    return deadline > now_ms ? (int64_t)(deadline - now_ms) : 0;
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

zj_tcp_next_t zj_tcp_next(const zj_tcp_conn_t *c)
{
    if (c->is_closing || c->has_query_out) {
        return ZJ_TCP_NEXT_WAIT;
    }
    switch (frame_state(c)) {
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

uint8_t *zj_tcp_take_query(zj_tcp_conn_t *c, const uint8_t **q, size_t *qlen)
{
    uint16_t len = zj_be16(c->rbuf + c->roff);
    *q = c->rbuf + c->roff + 2;
    *qlen = len;
    c->roff += 2u + len;
    c->has_query_out = true;
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
    if (c->is_send_posted || c->has_query_out) {
        return;
    }
    if (c->woff == c->wlen) {
        c->woff = 0;
        c->wlen = 0;
    } else if (c->woff > 0) {
        memmove(c->wbuf, c->wbuf + c->woff, c->wlen - c->woff);
        c->wlen -= c->woff;
        c->woff = 0;
    }
}
