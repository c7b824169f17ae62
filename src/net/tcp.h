/* DNS over TCP (RFC 7766) state shared by both I/O backends: the per-worker connection table,
 * the 2-byte length framing, the idle LRU, the abuse limits and the "what next" decision for a
 * connection.
 *
 * Abuse limits (all per worker, from zj_tcp_limits_t): max_conns (at the cap the least recently
 * active connection is closed for a new one), max_conns_per_ip (a new connection from an
 * address that already has that many is closed at once), idle_ms (no traffic), msg_timeout_ms
 * (a message must be complete within this of the moment its first byte was seen: slowloris),
 * and max_inflight (answers queued for a connection but not yet fully written: at the limit the
 * connection is neither read nor answered until its client reads, so a client that never reads
 * costs one fixed buffer and no worker time).
 *
 * A connection owns one read buffer (one whole message fits: 2 + 65535 bytes) and one write
 * buffer (two whole responses fit, so one can be answered while the previous is being sent).
 * Both are allocated at accept time; nothing is allocated per query. At most one query per
 * connection is in a batch at a time, which keeps pipelined answers in order without any
 * reordering logic. The backends own the system calls; this module owns no fds' I/O. Every
 * function here is called by the owning worker only. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/sock.h"

/* One whole message with its length prefix (RFC 1035 §4.2.2: 16-bit length). */
#define ZJ_TCP_MSG_MAX (2 + 65535)
#define ZJ_TCP_RBUF_CAP ZJ_TCP_MSG_MAX
#define ZJ_TCP_WBUF_CAP (2 * ZJ_TCP_MSG_MAX)
/* Slots for connections that are closing but still have kernel operations in flight (io_uring
 * only; they free their slot when the last completion arrives, which with DEFER_TASKRUN is never
 * inside the batch that closed them). A burst of accepts at the cap evicts one old connection
 * per new one within one batch, so up to max_conns may be closing at once: the table holds
 * 2 * max_conns + this many slots. Fewer made a burst reject the newest connections instead of
 * evicting the oldest (test_hostile's 10k-connection case under ASan). */
#define ZJ_TCP_SLOT_SLACK 64

/** The limits above, fixed at start-up. */
typedef struct zj_tcp_limits {
    uint32_t max_conns;
    uint32_t max_conns_per_ip;
    uint32_t idle_ms;
    uint32_t msg_timeout_ms;
    uint32_t max_inflight;
} zj_tcp_limits_t;

typedef struct zj_tcp_conn {
    int fd;
    uint32_t idx; /* slot in the table; stable for the connection's life */
    uint8_t *rbuf;
    uint32_t roff; /* next unparsed byte */
    uint32_t rlen; /* bytes received */
    uint8_t *wbuf;
    uint32_t woff;    /* next unsent byte */
    uint32_t wlen;    /* bytes queued */
    uint64_t last_ms; /* last activity, for the idle timeout and the LRU */
    struct zj_tcp_conn *lru_prev, *lru_next;
    uint64_t msg_start_ms; /* a partial message was first seen then (while in_msg_list) */
    struct zj_tcp_conn *msg_prev, *msg_next;
    uint32_t next_end;   /* wbuf offset where the oldest in-flight answer ends */
    uint32_t n_inflight; /* answers queued in wbuf, not yet fully sent */
    zj_addr_t peer;
    uint32_t events;     /* mmsg backend: the epoll events registered */
    uint8_t n_ops;       /* io_uring backend: operations in flight */
    bool is_closing;     /* no new work; freed when n_ops reaches 0 */
    bool is_eof;         /* peer closed its sending side */
    bool in_ready;       /* queued in the ready ring */
    bool has_query_out;  /* one of its queries is in the current batch */
    bool is_recv_posted; /* io_uring: a recv is in flight */
    bool is_send_posted; /* io_uring: a send is in flight */
    bool in_msg_list;    /* a message is partly received (its timer runs) */
} zj_tcp_conn_t;

/* Per-address connection count (open addressing, linear probing, backward-shift delete). */
typedef struct zj_tcp_ipcount {
    uint8_t addr[16]; /* IPv4: first 4 bytes */
    uint8_t family;   /* 0: empty slot */
    uint32_t count;
} zj_tcp_ipcount_t;

typedef struct zj_tcp_table {
    zj_tcp_conn_t **slots; /* n_slots entries, NULL when free */
    uint32_t n_slots;
    uint32_t *free_ids; /* stack of free slot ids */
    uint32_t n_free;
    uint32_t *ready; /* ring of slot ids with a complete query to answer */
    uint32_t ready_head, ready_count;
    zj_tcp_conn_t *lru_head, *lru_tail; /* open connections, least recently active first */
    zj_tcp_conn_t *msg_head, *msg_tail; /* partial messages, oldest first */
    uint32_t n_open;                    /* connections not closing */
    zj_tcp_ipcount_t *ips;              /* ip_mask + 1 slots, a power of two >= 2 * n_slots */
    uint32_t ip_mask;
    zj_tcp_limits_t lim;
} zj_tcp_table_t;

/** Why zj_tcp_expired chose a connection. */
typedef enum zj_tcp_expiry {
    ZJ_TCP_EXPIRED_IDLE,
    ZJ_TCP_EXPIRED_MSG, /* a message was started and not finished in time */
} zj_tcp_expiry_t;

/** What a connection should do next (zj_tcp_next). */
typedef enum zj_tcp_next {
    ZJ_TCP_NEXT_QUERY, /* a complete query is buffered and its answer fits: answer it */
    ZJ_TCP_NEXT_WAIT,  /* nothing to do until a send completes (or a query comes back) */
    ZJ_TCP_NEXT_READ,  /* need more bytes from the peer */
    ZJ_TCP_NEXT_CLOSE, /* junk framing, or peer done and everything sent */
} zj_tcp_next_t;

/** Allocate the table (slot array, rings and the per-address counts; not connections) for the
 *  limits lim (copied). Start-up; ZJ_ENOMEM. */
int zj_tcp_table_init(zj_tcp_table_t *t, const zj_tcp_limits_t *lim);

/** Close every connection's fd and free everything. */
void zj_tcp_table_fini(zj_tcp_table_t *t);

/** New connection for fd (ownership passes to the table) at time now_ms. Returns NULL (and
 *  closes fd) when no slot or no memory is left. Counts against max_conns; the caller evicts
 *  zj_tcp_oldest() first when zj_tcp_is_full(). */
zj_tcp_conn_t *zj_tcp_conn_new(zj_tcp_table_t *t, int fd, const zj_addr_t *peer, uint64_t now_ms);

/** Free a connection: closes its fd, releases buffers and the slot. */
void zj_tcp_conn_free(zj_tcp_table_t *t, zj_tcp_conn_t *c);

/** Stop counting c as open (takes it off the LRU and the cap); the backend then cancels its
 *  I/O and frees it. Idempotent. */
void zj_tcp_conn_retire(zj_tcp_table_t *t, zj_tcp_conn_t *c);

/** True when open connections have reached max_conns. */
bool zj_tcp_is_full(const zj_tcp_table_t *t);

/** True when peer's address already has max_conns_per_ip open connections (the new one is
 *  then closed at once). */
bool zj_tcp_ip_is_full(const zj_tcp_table_t *t, const zj_addr_t *peer);

/** The least recently active open connection, or NULL. */
zj_tcp_conn_t *zj_tcp_oldest(const zj_tcp_table_t *t);

/** Record activity on c (moves it to the LRU tail). */
void zj_tcp_touch(zj_tcp_table_t *t, zj_tcp_conn_t *c, uint64_t now_ms);

/** True while some connection has a timer running (an open connection has its idle timer;
 *  a partial message its message timer): only then can zj_tcp_expired find anything, and only
 *  then does a worker read the clock after a batch. Inline: asked once per batch. */
static inline bool zj_tcp_has_timers(const zj_tcp_table_t *t)
{
    return t->lru_head != NULL || t->msg_head != NULL;
}

/** Milliseconds until the next idle or message timeout (0 if one is due), or -1 with none. */
int64_t zj_tcp_wait_ms(const zj_tcp_table_t *t, uint64_t now_ms);

/** An open connection whose idle or message timeout has passed at now_ms (*why says which),
 *  or NULL. The caller closes it (which takes it off the timers) and asks again. */
zj_tcp_conn_t *zj_tcp_expired(const zj_tcp_table_t *t, uint64_t now_ms, zj_tcp_expiry_t *why);

/** Account n bytes just received into c's read space at now_ms (activity, message timer). */
void zj_tcp_received(zj_tcp_table_t *t, zj_tcp_conn_t *c, size_t n, uint64_t now_ms);

/** Decide what c does next from its buffers, flags and t's in-flight limit. */
zj_tcp_next_t zj_tcp_next(const zj_tcp_table_t *t, const zj_tcp_conn_t *c);

/** Queue c for answering (no-op if already queued). */
void zj_tcp_ready_push(zj_tcp_table_t *t, zj_tcp_conn_t *c);

/** Pop the next connection to answer (skipping retired ones), or NULL. */
zj_tcp_conn_t *zj_tcp_ready_pop(zj_tcp_table_t *t);

/** Take the buffered query of c (zj_tcp_next must have said QUERY): sets *q and *qlen to the
 *  message in rbuf and returns where its answer goes (wbuf, room for 65535 bytes after a 2-byte
 *  prefix). Marks c as having a query out; starts the message timer if what follows in rbuf is
 *  the start of another message. */
uint8_t *zj_tcp_take_query(zj_tcp_table_t *t, zj_tcp_conn_t *c, const uint8_t **q, size_t *qlen,
                           uint64_t now_ms);

/** Commit the answer of the query taken from c: len bytes were written where take_query said
 *  (len 0 means no answer). Clears has_query_out. */
void zj_tcp_commit_answer(zj_tcp_conn_t *c, size_t len);

/** Make room in rbuf before a read (moves a partial message to the front) and return where to
 *  read and how much (cap). Call only without a query out and without a recv in flight. */
uint8_t *zj_tcp_read_space(zj_tcp_conn_t *c, size_t *cap);

/** Account a completed send of n bytes (and the answers it finished); resets or compacts wbuf
 *  when no send is in flight. */
void zj_tcp_sent(zj_tcp_conn_t *c, size_t n);
