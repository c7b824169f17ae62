/* Listen addresses and the workers' sockets (see sock.h).
 *
 * Only numeric addresses are accepted: a name lookup at start-up would make the listen set
 * depend on the resolver, and an authoritative server must not depend on DNS to start. Every
 * socket is non-blocking and close-on-exec; IPv6 sockets are V6ONLY so that a v4 and a v6
 * wildcard can be listed side by side. Buffer sizes are best effort (capped by sysctl). */
#include "net/sock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "zonejet/err.h"

/* Socket buffer sizes. 4 MiB of receive buffer absorbs a burst of ~16k small queries while a
 * worker is busy with a batch; the kernel caps it at net.core.rmem_max, which is fine (the call
 * is best effort). The send side needs less: replies leave as soon as they are queued. */
#define SOCK_RCVBUF (4 * 1024 * 1024)
#define SOCK_SNDBUF (1 * 1024 * 1024)

/* TCP accept backlog: SOMAXCONN is capped by the kernel anyway. */
#define SOCK_BACKLOG 1024

int zj_addr_parse(const char *text, zj_addr_t *out)
{
    char host[INET6_ADDRSTRLEN + 1];
    const char *port_s = NULL;
    size_t host_len = 0;

    memset(out, 0, sizeof(*out));
    if (text[0] == '[') {
        const char *end = strchr(text, ']');
        if (end == NULL || end[1] != ':') {
            return ZJ_EINVAL;
        }
        host_len = (size_t)(end - text - 1);
        if (host_len == 0 || host_len >= sizeof(host)) {
            return ZJ_EINVAL;
        }
        memcpy(host, text + 1, host_len);
        port_s = end + 2;
    } else {
        const char *colon = strrchr(text, ':');
        if (colon == NULL || strchr(text, ':') != colon) {
            return ZJ_EINVAL;
        }
        host_len = (size_t)(colon - text);
        if (host_len == 0 || host_len >= sizeof(host)) {
            return ZJ_EINVAL;
        }
        memcpy(host, text, host_len);
        port_s = colon + 1;
    }
    host[host_len] = '\0';

    if (port_s[0] < '0' || port_s[0] > '9') {
        return ZJ_EINVAL;
    }
    char *endp = NULL;
    unsigned long port = strtoul(port_s, &endp, 10);
    if (*endp != '\0' || port > 65535) {
        return ZJ_EINVAL;
    }

    struct sockaddr_in *sin = (struct sockaddr_in *)&out->ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&out->ss;
    if (text[0] != '[' && inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)port);
        out->len = sizeof(*sin);
        return ZJ_OK;
    }
    if (text[0] == '[' && inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)port);
        out->len = sizeof(*sin6);
        return ZJ_OK;
    }
    return ZJ_EINVAL;
}

void zj_addr_format(const zj_addr_t *a, char *out, size_t cap)
{
    char host[INET6_ADDRSTRLEN];
    if (a->ss.ss_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)&a->ss;
        inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
        snprintf(out, cap, "%s:%u", host, (unsigned)ntohs(sin->sin_port));
    } else if (a->ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&a->ss;
        inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
        snprintf(out, cap, "[%s]:%u", host, (unsigned)ntohs(sin6->sin6_port));
    } else {
        snprintf(out, cap, "?");
    }
}

uint16_t zj_addr_port(const zj_addr_t *a)
{
    if (a->ss.ss_family == AF_INET) {
        return ntohs(((const struct sockaddr_in *)&a->ss)->sin_port);
    }
    return ntohs(((const struct sockaddr_in6 *)&a->ss)->sin6_port);
}

bool zj_addr_is_any(const zj_addr_t *a)
{
    if (a->ss.ss_family == AF_INET) {
        return ((const struct sockaddr_in *)&a->ss)->sin_addr.s_addr == htonl(INADDR_ANY);
    }
    const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&a->ss;
    return IN6_IS_ADDR_UNSPECIFIED(&sin6->sin6_addr);
}

static int set_int(int fd, int level, int opt, int val)
{
    if (setsockopt(fd, level, opt, &val, sizeof(val)) != 0) {
        return -errno;
    }
    return ZJ_OK;
}

int zj_sock_check_free(const zj_addr_t *addr)
{
    static const int types[] = {SOCK_DGRAM, SOCK_STREAM};
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        int fd = socket(addr->ss.ss_family, types[i] | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            return -errno;
        }
        int rc = ZJ_OK;
        if (addr->ss.ss_family == AF_INET6) {
            rc = set_int(fd, IPPROTO_IPV6, IPV6_V6ONLY, 1);
        }
        /* SO_REUSEADDR only: lets TCP ignore TIME_WAIT leftovers, never shares a live port. */
        if (rc == ZJ_OK) {
            rc = set_int(fd, SOL_SOCKET, SO_REUSEADDR, 1);
        }
        if (rc == ZJ_OK && bind(fd, (const struct sockaddr *)&addr->ss, addr->len) != 0) {
            rc = -errno;
        }
        close(fd);
        if (rc != ZJ_OK) {
            return rc;
        }
    }
    return ZJ_OK;
}

bool zj_addr_eq(const zj_addr_t *a, const zj_addr_t *b)
{
    return a->len == b->len && a->ss.ss_family == b->ss.ss_family &&
           memcmp(&a->ss, &b->ss, a->len) == 0;
}

/* Common part of both socket kinds: socket(), SO_REUSEADDR/PORT, IPV6_V6ONLY (so that "[::]:53"
 * and "0.0.0.0:53" can both be listed), bind. */
static int open_bound(const zj_addr_t *addr, int type)
{
    int fd = socket(addr->ss.ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -errno;
    }
    int rc = set_int(fd, SOL_SOCKET, SO_REUSEADDR, 1);
    if (rc == ZJ_OK) {
        rc = set_int(fd, SOL_SOCKET, SO_REUSEPORT, 1);
    }
    if (rc == ZJ_OK && addr->ss.ss_family == AF_INET6) {
        rc = set_int(fd, IPPROTO_IPV6, IPV6_V6ONLY, 1);
    }
    if (rc == ZJ_OK && bind(fd, (const struct sockaddr *)&addr->ss, addr->len) != 0) {
        rc = -errno;
    }
    if (rc != ZJ_OK) {
        close(fd);
        return rc;
    }
    return fd;
}

int zj_sock_open_udp(const zj_addr_t *addr)
{
    int fd = open_bound(addr, SOCK_DGRAM);
    if (fd < 0) {
        return fd;
    }
    /* Buffer sizes are best effort (capped by sysctl); failure is not fatal. */
    (void)set_int(fd, SOL_SOCKET, SO_RCVBUF, SOCK_RCVBUF);
    (void)set_int(fd, SOL_SOCKET, SO_SNDBUF, SOCK_SNDBUF);
    int rc = ZJ_OK;
    if (addr->ss.ss_family == AF_INET) {
        rc = set_int(fd, IPPROTO_IP, IP_PKTINFO, 1);
    } else {
        rc = set_int(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, 1);
    }
    if (rc != ZJ_OK) {
        close(fd);
        return rc;
    }
    return fd;
}

int zj_sock_open_tcp(const zj_addr_t *addr)
{
    int fd = open_bound(addr, SOCK_STREAM);
    if (fd < 0) {
        return fd;
    }
    /* Responses are written whole; Nagle would only delay the last segment of each. */
    (void)set_int(fd, IPPROTO_TCP, TCP_NODELAY, 1);
    if (listen(fd, SOCK_BACKLOG) != 0) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    return fd;
}

int zj_sock_local(int fd, zj_addr_t *out)
{
    memset(out, 0, sizeof(*out));
    out->len = sizeof(out->ss);
    if (getsockname(fd, (struct sockaddr *)&out->ss, &out->len) != 0) {
        return -errno;
    }
    return ZJ_OK;
}

size_t zj_sock_reply_pktinfo(const struct cmsghdr *cm, void *out, size_t cap)
{
    struct cmsghdr *rc = out;
    if (cm->cmsg_level == IPPROTO_IP && cm->cmsg_type == IP_PKTINFO &&
        cap >= CMSG_SPACE(sizeof(struct in_pktinfo))) {
        struct in_pktinfo in;
        memcpy(&in, CMSG_DATA(cm), sizeof(in));
        /* Source = the address the query came to; let routing pick the interface. */
        in.ipi_spec_dst = in.ipi_addr;
        in.ipi_ifindex = 0;
        rc->cmsg_level = IPPROTO_IP;
        rc->cmsg_type = IP_PKTINFO;
        rc->cmsg_len = CMSG_LEN(sizeof(in));
        memcpy(CMSG_DATA(rc), &in, sizeof(in));
        return CMSG_SPACE(sizeof(in));
    }
    if (cm->cmsg_level == IPPROTO_IPV6 && cm->cmsg_type == IPV6_PKTINFO &&
        cap >= CMSG_SPACE(sizeof(struct in6_pktinfo))) {
        /* Same address and interface (the interface matters for link-local sources). */
        rc->cmsg_level = IPPROTO_IPV6;
        rc->cmsg_type = IPV6_PKTINFO;
        rc->cmsg_len = CMSG_LEN(sizeof(struct in6_pktinfo));
        memcpy(CMSG_DATA(rc), CMSG_DATA(cm), sizeof(struct in6_pktinfo));
        return CMSG_SPACE(sizeof(struct in6_pktinfo));
    }
    return 0;
}

void zj_sock_close(int fd)
{
    if (fd >= 0) {
        close(fd);
    }
}
