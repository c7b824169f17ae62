/* net/tcp: the per-address connection cap, the message timer, the in-flight limit and the
 * framing decisions, driven through the table API without sockets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "zonejet/err.h"
#include "net/tcp.h"

#include "addr4.h"

static const zj_tcp_limits_t limits = {
    .max_conns = 64,
    .max_conns_per_ip = 2,
    .idle_ms = 10000,
    .msg_timeout_ms = 100,
    .max_inflight = 2,
};

static zj_tcp_conn_t *conn(zj_tcp_table_t *t, const char *ip, uint64_t now_ms)
{
    static uint16_t port = 1000;
    zj_addr_t a = addr4(ip, port++);
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    zj_tcp_conn_t *c = zj_tcp_conn_new(t, fd, &a, now_ms);
    assert_non_null(c);
    return c;
}

/* Append raw bytes to c's read buffer as if received at now_ms. */
static void feed(zj_tcp_table_t *t, zj_tcp_conn_t *c, const void *p, size_t n, uint64_t now_ms)
{
    size_t cap = 0;
    uint8_t *dst = zj_tcp_read_space(c, &cap);
    assert_true(cap >= n);
    memcpy(dst, p, n);
    zj_tcp_received(t, c, n, now_ms);
}

/* A framed 12-byte message (a bare header is all the framing layer looks at). */
static const uint8_t frame[14] = {0, 12, 0x12, 0x34};

static void test_tcp_per_ip_cap_counts_open_connections(void **state)
{
    (void)state;
    zj_tcp_table_t t;
    assert_int_equal(zj_tcp_table_init(&t, &limits), ZJ_OK);
    zj_addr_t a = addr4("192.0.2.1", 1);
    zj_addr_t b = addr4("192.0.2.2", 1);
    zj_tcp_conn_t *c1 = conn(&t, "192.0.2.1", 0);
    assert_false(zj_tcp_ip_is_full(&t, &a));
    zj_tcp_conn_t *c2 = conn(&t, "192.0.2.1", 0);
    assert_true(zj_tcp_ip_is_full(&t, &a)); /* the port is not part of the key */
    assert_false(zj_tcp_ip_is_full(&t, &b));
    zj_tcp_conn_retire(&t, c1); /* closing: no longer counted */
    assert_false(zj_tcp_ip_is_full(&t, &a));
    zj_tcp_conn_free(&t, c1);
    zj_tcp_conn_free(&t, c2);
    assert_false(zj_tcp_ip_is_full(&t, &a));
    zj_tcp_table_fini(&t);
}

/* Many addresses in a small table, freed out of order: the backward-shift delete must keep
 * every remaining address findable. */
static void test_tcp_per_ip_table_survives_deletes(void **state)
{
    (void)state;
    zj_tcp_limits_t lim = limits;
    lim.max_conns = 40;
    lim.max_conns_per_ip = 1;
    zj_tcp_table_t t;
    assert_int_equal(zj_tcp_table_init(&t, &lim), ZJ_OK);
    zj_tcp_conn_t *cs[40];
    char ip[32];
    for (int i = 0; i < 40; i++) {
        snprintf(ip, sizeof(ip), "198.51.100.%d", i);
        cs[i] = conn(&t, ip, 0);
    }
    for (int i = 0; i < 40; i += 3) {
        zj_tcp_conn_free(&t, cs[i]);
        cs[i] = NULL;
    }
    for (int i = 0; i < 40; i++) {
        snprintf(ip, sizeof(ip), "198.51.100.%d", i);
        zj_addr_t a = addr4(ip, 9);
        assert_int_equal(zj_tcp_ip_is_full(&t, &a), cs[i] != NULL);
    }
    zj_tcp_table_fini(&t);
}

static void test_tcp_message_timer_runs_only_while_partial(void **state)
{
    (void)state;
    zj_tcp_table_t t;
    zj_tcp_expiry_t why = ZJ_TCP_EXPIRED_IDLE;
    assert_int_equal(zj_tcp_table_init(&t, &limits), ZJ_OK);
    zj_tcp_conn_t *c = conn(&t, "192.0.2.1", 1000);
    assert_int_equal(zj_tcp_wait_ms(&t, 1000), 10000); /* idle only */
    feed(&t, c, frame, 1, 1000);                       /* half a length prefix */
    assert_int_equal(zj_tcp_wait_ms(&t, 1000), 100);
    assert_null(zj_tcp_expired(&t, 1099, &why));
    assert_ptr_equal(zj_tcp_expired(&t, 1100, &why), c);
    assert_int_equal(why, ZJ_TCP_EXPIRED_MSG);
    /* Finishing the message in time stops the timer; the idle timer remains. */
    feed(&t, c, frame + 1, sizeof(frame) - 1, 1050);
    assert_null(zj_tcp_expired(&t, 1200, &why));
    assert_int_equal(zj_tcp_next(&t, c), ZJ_TCP_NEXT_QUERY);
    /* A partial message behind a complete one starts its timer when the complete one is
     * taken. */
    feed(&t, c, frame, 5, 1060);
    assert_null(zj_tcp_expired(&t, 1300, &why));
    const uint8_t *q = NULL;
    size_t qlen = 0;
    (void)zj_tcp_take_query(&t, c, &q, &qlen, 1300);
    assert_int_equal(qlen, 12);
    assert_null(zj_tcp_expired(&t, 1399, &why));
    assert_ptr_equal(zj_tcp_expired(&t, 1400, &why), c);
    zj_tcp_commit_answer(c, 0);
    /* Retiring takes it off both timers. */
    zj_tcp_conn_retire(&t, c);
    assert_null(zj_tcp_expired(&t, 100000, &why));
    assert_int_equal(zj_tcp_wait_ms(&t, 1400), -1);
    zj_tcp_conn_free(&t, c);
    zj_tcp_table_fini(&t);
}

static void answer(zj_tcp_table_t *t, zj_tcp_conn_t *c, size_t len)
{
    const uint8_t *q = NULL;
    size_t qlen = 0;
    assert_int_equal(zj_tcp_next(t, c), ZJ_TCP_NEXT_QUERY);
    uint8_t *out = zj_tcp_take_query(t, c, &q, &qlen, 0);
    memset(out, 0xAB, len);
    zj_tcp_commit_answer(c, len);
}

static void test_tcp_inflight_limit_stops_reading_until_sent(void **state)
{
    (void)state;
    zj_tcp_table_t t;
    assert_int_equal(zj_tcp_table_init(&t, &limits), ZJ_OK);
    zj_tcp_conn_t *c = conn(&t, "192.0.2.1", 0);
    for (int i = 0; i < 3; i++) {
        feed(&t, c, frame, sizeof(frame), 0);
    }
    answer(&t, c, 20);
    answer(&t, c, 30);
    /* Two answers queued and none written: the third query waits, nothing is read. */
    assert_int_equal(c->n_inflight, 2);
    assert_int_equal(zj_tcp_next(&t, c), ZJ_TCP_NEXT_WAIT);
    zj_tcp_sent(c, 10); /* part of the first answer */
    assert_int_equal(zj_tcp_next(&t, c), ZJ_TCP_NEXT_WAIT);
    zj_tcp_sent(c, 12); /* the first answer (2 + 20 bytes) is out */
    assert_int_equal(c->n_inflight, 1);
    answer(&t, c, 40);
    assert_int_equal(zj_tcp_next(&t, c), ZJ_TCP_NEXT_WAIT); /* two in flight again */
    zj_tcp_sent(c, 32 + 42);
    assert_int_equal(c->n_inflight, 0);
    assert_int_equal(c->wlen, 0); /* everything sent: the buffer is reset */
    assert_int_equal(zj_tcp_next(&t, c), ZJ_TCP_NEXT_READ);
    zj_tcp_conn_free(&t, c);
    zj_tcp_table_fini(&t);
}

static void test_tcp_junk_prefix_closes_even_at_inflight_limit(void **state)
{
    (void)state;
    zj_tcp_table_t t;
    assert_int_equal(zj_tcp_table_init(&t, &limits), ZJ_OK);
    zj_tcp_conn_t *c = conn(&t, "192.0.2.1", 0);
    static const uint8_t junk[2] = {0, 3}; /* shorter than a DNS header */
    feed(&t, c, junk, sizeof(junk), 0);
    assert_int_equal(zj_tcp_next(&t, c), ZJ_TCP_NEXT_CLOSE);
    zj_tcp_conn_free(&t, c);
    zj_tcp_table_fini(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tcp_per_ip_cap_counts_open_connections),
        cmocka_unit_test(test_tcp_per_ip_table_survives_deletes),
        cmocka_unit_test(test_tcp_message_timer_runs_only_while_partial),
        cmocka_unit_test(test_tcp_inflight_limit_stops_reading_until_sent),
        cmocka_unit_test(test_tcp_junk_prefix_closes_even_at_inflight_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
