/* The I/O backend interface (STYLE P6): a worker's loop is recv_batch -> answer each message ->
 * send_batch -> tick, whatever the backend. Two implementations: io_uring (primary) and
 * recvmmsg/sendmmsg + epoll (fallback, and for valgrind). Both serve UDP and TCP.
 *
 * The loop itself is zj_worker_loop (net/worker.h), instantiated by each backend's run op with
 * its own recv_batch and send_batch as direct calls, which the compiler inlines: at light load
 * every datagram is its own batch, and two indirect calls with their register saves were ~45
 * of ~250 instructions per batch (callgrind, recvmmsg backend, 2,000 q/s).
 *
 * Every op runs on the worker's own thread; state lives in w->io_state. */
#pragma once

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/socket.h>

typedef struct zj_worker zj_worker_t;
typedef struct zj_msg zj_msg_t;

/** A backend's receive: block up to timeout_ms (-1: until something happens) and fill at most
 *  cap messages. Returns the count (0 on timeout or wake-up) or a negative zj_err that stops
 *  the worker. Sets w->is_stopping when the server's stop event fires. */
typedef int zj_io_recv_batch_fn(zj_worker_t *w, zj_msg_t *msgs, size_t cap, int timeout_ms);

/** A backend's send: queue the answers of a batch (tx_len 0 = none) and release its receive
 *  buffers. */
typedef void zj_io_send_batch_fn(zj_worker_t *w, zj_msg_t *msgs, size_t n);

typedef struct zj_io_ops {
    const char *name;
    /** Allocate the backend state for w (ring, buffers, registrations) and arm receives on
     *  w's sockets. Runs on the worker thread. Negative zj_err on failure (logged). */
    int (*init)(zj_worker_t *w);
    /** Release the backend state; closes TCP connections. Accepts a failed init. */
    void (*fini)(zj_worker_t *w);
    /** Serve until the server stops (or the backend fails): zj_worker_loop with the backend's
     *  recv_batch and send_batch. */
    void (*run)(zj_worker_t *w);
    /** Housekeeping after a batch: close the TCP connections whose idle or message deadline
     *  has passed at now_ms. Called only while a TCP connection has a timer running
     *  (zj_tcp_has_timers), so a UDP-only worker reads no clock per batch. */
    void (*tick)(zj_worker_t *w, uint64_t now_ms);
} zj_io_ops_t;

extern const zj_io_ops_t zj_io_uring_ops;
extern const zj_io_ops_t zj_io_mmsg_ops;

/** Check that io_uring has everything the uring backend needs (ring with our flags, the opcodes,
 *  a provided buffer ring). Returns 0, or a negative zj_err with the reason in why. Start-up. */
int zj_io_uring_probe(char *why, size_t why_cap);

/* The system calls of the backends' per-batch path, without libc's wrappers.
 *
 * epoll_wait, recvmmsg and sendmmsg are cancellation points: glibc brackets each call with
 * __pthread_enable_asynccancel / __pthread_disable_asynccancel, which cost more than the
 * wrappers themselves (callgrind, recvmmsg backend at 2,000 q/s, one datagram per batch: 86 of
 * ~750 I/O instructions per query). Worker threads are never cancelled (nothing calls
 * pthread_cancel; a worker stops on the stop flag and the stop event), so the bracket buys
 * nothing. On x86-64 each call is one inline `syscall` instruction. Elsewhere, and in sanitizer
 * builds (whose interceptors must see the buffers the kernel writes, and TSan's the fd
 * hand-offs), the libc functions are used.
 *
 * Each returns the result (>= 0) or a negative errno; errno itself is left alone on x86-64. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__) /* gcc */
#define ZJ_IO_SANITIZED 1
#elif defined(__has_feature) /* clang */
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) ||                         \
    __has_feature(memory_sanitizer)
#define ZJ_IO_SANITIZED 1
#endif
#endif

#if defined(__x86_64__) && defined(__linux__) && !defined(ZJ_IO_SANITIZED)
#include <sys/syscall.h>

static inline long zj_io_syscall5(long nr, long a1, long a2, long a3, long a4, long a5)
{
    /* x86-64 Linux: number in rax, arguments in rdi rsi rdx r10 r8; the kernel clobbers rcx
     * and r11; the result in rax is -errno on failure. */
    register long r10 __asm__("r10") = a4;
    register long r8 __asm__("r8") = a5;
    long ret;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"(nr), "D"(a1), "S"(a2), "d"(a3), "r"(r10), "r"(r8)
                     : "rcx", "r11", "memory");
    return ret;
}

static inline int zj_io_epoll_wait(int epfd, struct epoll_event *ev, int max, int timeout_ms)
{
    return (int)zj_io_syscall5(SYS_epoll_wait, epfd, (long)ev, max, timeout_ms, 0);
}

static inline int zj_io_recvmmsg(int fd, struct mmsghdr *mm, unsigned n, int flags)
{
    return (int)zj_io_syscall5(SYS_recvmmsg, fd, (long)mm, (long)n, flags, 0);
}

static inline int zj_io_sendmmsg(int fd, struct mmsghdr *mm, unsigned n, int flags)
{
    return (int)zj_io_syscall5(SYS_sendmmsg, fd, (long)mm, (long)n, flags, 0);
}
#else
static inline int zj_io_epoll_wait(int epfd, struct epoll_event *ev, int max, int timeout_ms)
{
    int r = epoll_wait(epfd, ev, max, timeout_ms);
    return r < 0 ? -errno : r;
}

static inline int zj_io_recvmmsg(int fd, struct mmsghdr *mm, unsigned n, int flags)
{
    int r = recvmmsg(fd, mm, n, flags, NULL);
    return r < 0 ? -errno : r;
}

static inline int zj_io_sendmmsg(int fd, struct mmsghdr *mm, unsigned n, int flags)
{
    int r = sendmmsg(fd, mm, n, flags);
    return r < 0 ? -errno : r;
}
#endif
