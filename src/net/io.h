/* The I/O backend interface (STYLE P6): a worker's loop is recv_batch -> answer each message ->
 * send_batch -> tick, whatever the backend. Two implementations: io_uring (primary) and
 * recvmmsg/sendmmsg + epoll (fallback, and for valgrind). Both serve UDP and TCP.
 *
 * Every op runs on the worker's own thread; state lives in w->io_state. */
#pragma once

#include <stddef.h>
#include <stdint.h>

typedef struct zj_worker zj_worker_t;
typedef struct zj_msg zj_msg_t;

typedef struct zj_io_ops {
    const char *name;
    /** Allocate the backend state for w (ring, buffers, registrations) and arm receives on
     *  w's sockets. Runs on the worker thread. Negative zj_err on failure (logged). */
    int (*init)(zj_worker_t *w);
    /** Release the backend state; closes TCP connections. Accepts a failed init. */
    void (*fini)(zj_worker_t *w);
    /** Block up to timeout_ms (-1: until something happens) and fill at most cap messages.
     *  Returns the count (0 on timeout or wake-up) or a negative zj_err that stops the worker.
     *  Sets w->is_stopping when the server's stop event fires. */
    int (*recv_batch)(zj_worker_t *w, zj_msg_t *msgs, size_t cap, int timeout_ms);
    /** Queue the answers of a batch (tx_len 0 = none) and release its receive buffers. */
    void (*send_batch)(zj_worker_t *w, zj_msg_t *msgs, size_t n);
    /** Housekeeping after a batch: close idle TCP connections. */
    void (*tick)(zj_worker_t *w, uint64_t now_ms);
} zj_io_ops_t;

extern const zj_io_ops_t zj_io_uring_ops;
extern const zj_io_ops_t zj_io_mmsg_ops;

/** Check that io_uring has everything the uring backend needs (ring with our flags, the opcodes,
 *  a provided buffer ring). Returns 0, or a negative zj_err with the reason in why. Start-up. */
int zj_io_uring_probe(char *why, size_t why_cap);
