/* Sockets for the workers: listen addresses, per-worker SO_REUSEPORT UDP and TCP sockets.
 *
 * Every worker owns one UDP socket and one TCP listen socket per listen address, all bound with
 * SO_REUSEPORT so the kernel spreads flows over workers without any shared queue. Sockets are
 * opened by the server thread before workers start, so a bad address fails start-up with one
 * clear line instead of a worker dying later. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/** A socket address with its length; AF_INET or AF_INET6. */
typedef struct zj_addr {
    struct sockaddr_storage ss;
    socklen_t len;
} zj_addr_t;

/** Longest text zj_addr_format writes: "[" + INET6_ADDRSTRLEN (46) + "]:" + 5 digits + NUL. */
#define ZJ_ADDR_TEXT_CAP 64

/** Parse "A.B.C.D:PORT" or "[IPV6]:PORT" (numeric only, no name lookup; port 0..65535, 0 means
 *  "any free port"). Returns 0, or ZJ_EINVAL for anything else. */
int zj_addr_parse(const char *text, zj_addr_t *out);

/** Format an address as zj_addr_parse accepts it; out must hold ZJ_ADDR_TEXT_CAP bytes. */
void zj_addr_format(const zj_addr_t *a, char *out, size_t cap);

/** Port of an address (host order). */
uint16_t zj_addr_port(const zj_addr_t *a);

/** Open a non-blocking UDP socket bound to addr with SO_REUSEPORT and the PKTINFO option of its
 *  family (so replies from a wildcard address leave from the address the query came to).
 *  Returns the fd or a negative zj_err; errno is not meaningful afterwards. */
int zj_sock_open_udp(const zj_addr_t *addr);

/** Open a non-blocking TCP listen socket bound to addr with SO_REUSEPORT. Returns fd or -errno. */
int zj_sock_open_tcp(const zj_addr_t *addr);

/** Check that no other socket holds addr (UDP and TCP): binds a socket of each kind without
 *  SO_REUSEPORT and closes it. Without this check a second server of the same user would
 *  silently share the port through SO_REUSEPORT. Returns 0 or a negative errno (EADDRINUSE). */
int zj_sock_check_free(const zj_addr_t *addr);

/** True if a and b are the same family, address and port. */
bool zj_addr_eq(const zj_addr_t *a, const zj_addr_t *b);

/** The address a socket is bound to (to learn the port chosen for port 0). */
int zj_sock_local(int fd, zj_addr_t *out);

/** True if addr is the wildcard address of its family (0.0.0.0 or ::). */
bool zj_addr_is_any(const zj_addr_t *a);

/* Control-message room for one IP_PKTINFO or IPV6_PKTINFO (the larger, in6_pktinfo: 20 bytes,
 * plus the cmsghdr and alignment). */
#define ZJ_SOCK_CMSG_CAP 64

/** Room for control messages, aligned as CMSG_* expect. */
typedef struct zj_cmsg_buf {
    _Alignas(struct cmsghdr) uint8_t buf[ZJ_SOCK_CMSG_CAP];
} zj_cmsg_buf_t;

/** If cm is the PKTINFO a wildcard socket received with a query, write into out (cap bytes,
 *  cmsghdr-aligned) the control message that makes the reply leave from the address the query
 *  was sent to, and return its length; otherwise return 0. Hot-path safe. */
size_t zj_sock_reply_pktinfo(const struct cmsghdr *cm, void *out, size_t cap);

/** Close fd if it is >= 0. */
void zj_sock_close(int fd);
