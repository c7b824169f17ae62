/* addr4: an IPv4 zj_addr_t from text and a port, for the socket tests (test_tcp, test_worker).
 * Include after <cmocka.h>: a bad address fails the test. */
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "net/sock.h"

static inline zj_addr_t addr4(const char *ip, uint16_t port)
{
    zj_addr_t a;
    memset(&a, 0, sizeof(a));
    struct sockaddr_in *sin = (struct sockaddr_in *)(void *)&a.ss;
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    assert_int_equal(inet_pton(AF_INET, ip, &sin->sin_addr), 1);
    a.len = sizeof(*sin);
    return a;
}
