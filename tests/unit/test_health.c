/* health: the checker against real endpoints on 127.0.0.1 started here (a TCP listener, an HTTP
 * server, a TLS server with a certificate made in the test), with hand-built check tables:
 * states flip after exactly `threshold` results, HTTP status and body match, HTTPS with SNI,
 * inverted, disabled (never probed; healthy, unhealthy when also inverted), calculated N-of-M,
 * state shared by an identical check on re-attach and fresh for a changed one, and no probing
 * after detach. The state machine itself is also driven result by result (zj_health_feed) on a
 * registry whose thread is not started, and the HTTP verdict is tested on raw responses, fed at
 * once and byte by byte: the match window is the first 5,120 body bytes whatever the size of
 * the headers (up to 8 KiB; more is unhealthy) or of the chunks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "zonejet/err.h"
#include "zonejet/zone.h"
#include "health/health.h"
#include "health/health_internal.h"
#include "health/probe.h"

/* Probe interval of the tests' checks: short so that a threshold of 3 flips in ~150 ms. */
#define IVL_MS 50u
/* How long a test waits for a state before it fails. */
#define WAIT_MS 4000u

static const char TOKEN[] = "HEALTHY-TOKEN";

/* ---- hand-built images ---- */

typedef struct test_img {
    zj_image_t img;
    zj_img_zone_d zone;
    uint8_t names[64];
    char strs[2048];
    zj_img_check_d checks[16];
    uint32_t u32[32];
} test_img_t;

static test_img_t *img_new(const char *pad)
{
    test_img_t *t = calloc(1, sizeof(*t));
    assert_non_null(t);
    static const uint8_t apex[] = "\7example\4test";
    memcpy(t->names, apex, sizeof(apex)); /* includes the root's 0 */
    t->zone.name_off = 0;
    t->img.zones = &t->zone;
    t->img.n_zones = 1;
    t->img.names = t->names;
    t->img.names_len = sizeof(apex);
    t->img.checks = t->checks;
    t->img.u32 = t->u32;
    t->img.strs = t->strs;
    if (pad != NULL) { /* shifts every later string: identity must not depend on offsets */
        size_t n = strlen(pad) + 1;
        memcpy(t->strs, pad, n);
        t->img.strs_len = n;
    }
    return t;
}

static uint32_t add_str(test_img_t *t, const char *s)
{
    if (s == NULL) {
        return ZJ_IMG_NONE;
    }
    size_t n = strlen(s) + 1;
    assert_true(t->img.strs_len + n <= sizeof(t->strs));
    uint32_t off = (uint32_t)t->img.strs_len;
    memcpy(t->strs + off, s, n);
    t->img.strs_len += n;
    return off;
}

static uint32_t add_check(test_img_t *t, uint16_t kind, const char *name, uint16_t port,
                          uint32_t threshold, uint16_t flags)
{
    uint32_t i = t->img.n_checks++;
    assert_true(i < 16);
    zj_img_check_d *c = &t->checks[i];
    memset(c, 0, sizeof(*c));
    c->kind = kind;
    c->flags = flags;
    c->port = port;
    c->family = AF_INET;
    c->addr[0] = 127;
    c->addr[3] = 1;
    c->interval_ms = IVL_MS;
    c->timeout_ms = IVL_MS;
    c->threshold = threshold;
    c->name_off = add_str(t, name);
    c->path_off = ZJ_IMG_NONE;
    c->host_off = ZJ_IMG_NONE;
    c->match_off = ZJ_IMG_NONE;
    c->zone = 0;
    return i;
}

static uint32_t add_http(test_img_t *t, uint16_t kind, const char *name, uint16_t port,
                         const char *path, const char *host, const char *match)
{
    uint32_t i = add_check(t, kind, name, port, 1, 0);
    t->checks[i].path_off = add_str(t, path);
    t->checks[i].host_off = add_str(t, host);
    t->checks[i].match_off = add_str(t, match);
    return i;
}

static uint32_t add_calc(test_img_t *t, const char *name, uint16_t min, const uint32_t *kids,
                         uint16_t n, uint16_t flags)
{
    uint32_t i = add_check(t, ZJ_CHECK_CALCULATED, name, 0, 1, flags);
    t->checks[i].family = 0;
    t->checks[i].children_off = t->img.n_u32;
    t->checks[i].n_children = n;
    t->checks[i].min_healthy = min;
    for (uint16_t k = 0; k < n; k++) {
        t->u32[t->img.n_u32++] = kids[k];
    }
    return i;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static zj_health_info_t info_of(zj_health_t *h, test_img_t *t, uint32_t c)
{
    zj_health_info_t info;
    assert_int_equal(zj_health_info(h, &t->img, c, &info), ZJ_OK);
    return info;
}

/* Wait until check c has at least n_results results and the given state. */
static zj_health_info_t wait_for(zj_health_t *h, test_img_t *t, uint32_t c, uint64_t n_results,
                                 uint8_t state)
{
    uint64_t until = now_ms() + WAIT_MS;
    zj_health_info_t info;
    for (;;) {
        info = info_of(h, t, c);
        if (info.n_results >= n_results && info.state == state) {
            return info;
        }
        if (now_ms() > until) {
            fail_msg("check %u: state %u after %llu results (last '%s'), wanted %u", c, info.state,
                     (unsigned long long)info.n_results, info.last, state);
        }
        sleep_ms(5);
    }
}

/* What the query path sees. */
static uint8_t seen(const test_img_t *t, uint32_t c)
{
    return __atomic_load_n(t->img.health[c], __ATOMIC_RELAXED);
}

/* ---- endpoints ---- */

typedef enum ep_kind { EP_TCP, EP_HTTP, EP_HTTPS } ep_kind_t;

typedef struct endpoint {
    ep_kind_t kind;
    int lfd;
    int hold_fd; /* while stopped: the port bound, not listening (connects are refused) */
    uint16_t port;
    pthread_t thread;
    atomic_bool stop;
    atomic_uint n_conns;
    SSL_CTX *tls;
    pthread_mutex_t mu;
    char last_req[1024];
    char last_sni[256];
    int parked[8]; /* /slow connections held open until the endpoint stops */
    int n_parked;
} endpoint_t;

/* A socket bound to 127.0.0.1:port (0: any), listening or not. */
static int bind_on(uint16_t port, uint16_t *bound, bool is_listening)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    if (is_listening) {
        assert_int_equal(listen(fd, 64), 0);
    }
    socklen_t sl = sizeof(sin);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
    *bound = ntohs(sin.sin_port);
    return fd;
}

/* A 200 response whose header block (status line to the empty line) is head_len bytes, and
 * whose body is n_x 'x' bytes then TOKEN, in chunks of chunk bytes (0: with Content-Length).
 * Returns its length (at most cap). */
static size_t make_resp(size_t head_len, size_t n_x, size_t chunk, char *out, size_t cap)
{
    const char *te = chunk > 0 ? "Transfer-Encoding: chunked\r\n" : "";
    size_t body_len = n_x + strlen(TOKEN);
    char cl[64] = "";
    if (chunk == 0) {
        snprintf(cl, sizeof(cl), "Content-Length: %zu\r\n", body_len);
    }
    int n = snprintf(out, cap, "HTTP/1.1 200 OK\r\n%s%sX-Pad: ", te, cl);
    size_t o = (size_t)n;
    assert_true(head_len >= o + 4 && head_len < cap);
    memset(out + o, 'p', head_len - o - 4);
    o = head_len - 4;
    memcpy(out + o, "\r\n\r\n", 4);
    o += 4;
    for (size_t at = 0; at < body_len;) {
        size_t k = chunk > 0 && body_len - at > chunk ? chunk : body_len - at;
        if (chunk > 0) {
            o += (size_t)snprintf(out + o, cap - o, "%zx\r\n", k);
        }
        assert_true(o + k + 16 < cap);
        for (size_t i = 0; i < k; i++, at++) {
            out[o++] = at < n_x ? 'x' : TOKEN[at - n_x];
        }
        if (chunk > 0) {
            memcpy(out + o, "\r\n", 2);
            o += 2;
        }
    }
    if (chunk > 0) {
        memcpy(out + o, "0\r\n\r\n", 5);
        o += 5;
    }
    return o;
}

/* The response for a request path; returns its length. */
static size_t respond(const char *path, char *out, size_t cap)
{
    /* the token's last byte is body byte 5,120 (/window-...) or 5,121 (/late-...) */
    const size_t x_in = ZJ_CHECK_BODY_MATCH_BYTES - strlen(TOKEN);
    if (strcmp(path, "/window-bytes") == 0) { /* one-byte chunks */
        return make_resp(64, x_in, 1, out, cap);
    }
    if (strcmp(path, "/late-bytes") == 0) {
        return make_resp(64, x_in + 1, 1, out, cap);
    }
    if (strcmp(path, "/window-head") == 0) { /* the largest header block, one-byte chunks */
        return make_resp(ZJ_PROBE_HEAD_CAP, x_in, 1, out, cap);
    }
    if (strcmp(path, "/long-head") == 0) { /* ~10 KiB of headers */
        return make_resp(10240, x_in, 0, out, cap);
    }
    if (strcmp(path, "/fail") == 0) {
        snprintf(out, cap, "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\ndown");
    } else if (strcmp(path, "/redirect") == 0) {
        snprintf(out, cap, "HTTP/1.1 302 Found\r\nLocation: /ok\r\nContent-Length: 0\r\n\r\n");
    } else if (strcmp(path, "/chunked") == 0) {
        /* The token is split across two chunks: found only if the body is decoded. */
        snprintf(out, cap,
                 "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                 "9\r\nstatus: H\r\nc\r\nEALTHY-TOKEN\r\n0\r\n\r\n");
    } else if (strcmp(path, "/big") == 0) {
        /* The token starts after 5,120 body bytes: outside what is searched. */
        int n = snprintf(out, cap, "HTTP/1.1 200 OK\r\nContent-Length: %u\r\n\r\n",
                         5120u + (unsigned)strlen(TOKEN));
        memset(out + n, 'x', 5120);
        snprintf(out + n + 5120, cap - (size_t)n - 5120, "%s", TOKEN);
    } else {
        snprintf(out, cap, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall good: %s\n",
                 TOKEN);
    }
    return strlen(out);
}

/* Room for the largest test response: 10 KiB of headers, or 8 KiB of headers and 5,120 body
 * bytes in one-byte chunks (6 bytes each). */
#define RESP_MAX (64u * 1024u)

static void serve_http(endpoint_t *ep, int cfd)
{
    char req[1024];
    char *resp = NULL;
    size_t len = 0;
    SSL *ssl = NULL;
    struct timeval tv = {.tv_sec = 1};
    setsockopt(cfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(cfd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (ep->kind == EP_HTTPS) {
        ssl = SSL_new(ep->tls);
        SSL_set_fd(ssl, cfd);
        if (SSL_accept(ssl) != 1) {
            goto out;
        }
        const char *sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
        pthread_mutex_lock(&ep->mu);
        snprintf(ep->last_sni, sizeof(ep->last_sni), "%s", sni != NULL ? sni : "");
        pthread_mutex_unlock(&ep->mu);
    }
    while (len + 1 < sizeof(req)) {
        int n = ssl != NULL ? SSL_read(ssl, req + len, (int)(sizeof(req) - 1 - len))
                            : (int)recv(cfd, req + len, sizeof(req) - 1 - len, 0);
        if (n <= 0) {
            goto out;
        }
        len += (size_t)n;
        req[len] = '\0';
        if (strstr(req, "\r\n\r\n") != NULL) {
            break;
        }
    }
    pthread_mutex_lock(&ep->mu);
    snprintf(ep->last_req, sizeof(ep->last_req), "%s", req);
    pthread_mutex_unlock(&ep->mu);
    char path[256] = "";
    sscanf(req, "GET %255s ", path);
    pthread_mutex_lock(&ep->mu);
    bool is_parked = strcmp(path, "/slow") == 0 && ep->n_parked < 8;
    if (is_parked) {
        ep->parked[ep->n_parked++] = cfd; /* never answered */
    }
    pthread_mutex_unlock(&ep->mu);
    if (is_parked) {
        SSL_free(ssl);
        return;
    }
    resp = malloc(RESP_MAX);
    assert_non_null(resp);
    size_t rlen = respond(path, resp, RESP_MAX);
    if (ssl != NULL) {
        SSL_write(ssl, resp, (int)rlen);
        SSL_shutdown(ssl);
    } else {
        (void)!send(cfd, resp, rlen, MSG_NOSIGNAL);
    }
out:
    free(resp);
    SSL_free(ssl);
    close(cfd);
}

static void *ep_main(void *arg)
{
    endpoint_t *ep = arg;
    while (!atomic_load(&ep->stop)) {
        struct pollfd pfd = {.fd = ep->lfd, .events = POLLIN};
        if (poll(&pfd, 1, 10) <= 0) {
            continue;
        }
        int cfd = accept4(ep->lfd, NULL, NULL, SOCK_CLOEXEC);
        if (cfd < 0) {
            continue;
        }
        atomic_fetch_add(&ep->n_conns, 1);
        if (ep->kind == EP_TCP) {
            close(cfd);
        } else {
            serve_http(ep, cfd);
        }
    }
    return NULL;
}

/* Start an endpoint on a new port, or (after ep_stop) again on its port. */
static void ep_start(endpoint_t *ep, ep_kind_t kind)
{
    uint16_t port = 0;
    if (ep->hold_fd > 0) {
        close(ep->hold_fd);
        ep->hold_fd = 0;
        port = ep->port;
    }
    ep->kind = kind;
    ep->lfd = bind_on(port, &ep->port, true);
    atomic_store(&ep->stop, false);
    pthread_mutex_init(&ep->mu, NULL);
    assert_int_equal(pthread_create(&ep->thread, NULL, ep_main, ep), 0);
}

/* Stop listening: later connects are refused. The port stays bound (to a socket that does not
 * listen) so that nothing else can take it before ep_start opens it again. */
static void ep_stop(endpoint_t *ep)
{
    atomic_store(&ep->stop, true);
    pthread_join(ep->thread, NULL);
    close(ep->lfd);
    for (int i = 0; i < ep->n_parked; i++) {
        close(ep->parked[i]);
    }
    ep->n_parked = 0;
    pthread_mutex_destroy(&ep->mu);
    uint16_t same = 0;
    ep->hold_fd = bind_on(ep->port, &same, false);
    assert_int_equal(same, ep->port);
}

/* Stop for good and free the port. */
static void ep_free(endpoint_t *ep)
{
    ep_stop(ep);
    close(ep->hold_fd);
    ep->hold_fd = 0;
}

/* A port nothing listens on: bound by a socket that never listens, kept for the whole run. */
static uint16_t dead_port(void)
{
    uint16_t port = 0;
    (void)bind_on(0, &port, false);
    return port;
}

/* A self-signed certificate for the TLS endpoint, made with OpenSSL's own APIs. */
static SSL_CTX *make_server_tls(void)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    assert_non_null(key);
    X509 *x = X509_new();
    assert_non_null(x);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, key);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"zonejet test", -1,
                               -1, 0);
    X509_set_issuer_name(x, name);
    assert_true(X509_sign(x, key, EVP_sha256()) > 0);
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    assert_non_null(ctx);
    assert_int_equal(SSL_CTX_use_certificate(ctx, x), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey(ctx, key), 1);
    X509_free(x);
    EVP_PKEY_free(key);
    return ctx;
}

/* ---- the HTTP verdict on raw bytes ---- */

/* The reader on len bytes: fed at once, and again one byte at a time (a verdict must not
 * depend on how the bytes arrive); then is_end says whether the stream ends there. */
static int verdict_n(const char *resp, size_t len, bool is_end, const char *match, char *why)
{
    static zj_http_resp_t r; /* 13 KiB: not on the stack */
    char why1[ZJ_PROBE_RESULT_CAP] = "";
    zj_http_init(&r, match);
    int v = zj_http_feed(&r, (const uint8_t *)resp, len, is_end, why, ZJ_PROBE_RESULT_CAP);
    zj_http_init(&r, match);
    int v1 = ZJ_PROBE_RUNNING;
    for (size_t i = 0; i < len && v1 == ZJ_PROBE_RUNNING; i++) {
        v1 = zj_http_feed(&r, (const uint8_t *)resp + i, 1, false, why1, sizeof(why1));
    }
    if (v1 == ZJ_PROBE_RUNNING && is_end) {
        v1 = zj_http_feed(&r, NULL, 0, true, why1, sizeof(why1));
    }
    assert_int_equal(v1, v);
    if (v != ZJ_PROBE_RUNNING) {
        assert_string_equal(why1, why);
    }
    return v;
}

static int verdict(const char *resp, bool is_end, const char *match, char *why)
{
    return verdict_n(resp, strlen(resp), is_end, match, why);
}

/* The body window is the first 5,120 decoded bytes whatever the headers and chunks around it:
 * headers up to ZJ_PROBE_HEAD_CAP bytes, one-byte chunks; a longer header block is unhealthy. */
static void test_http_verdict_window_ignores_headers_and_chunking(void **state)
{
    (void)state;
    static char buf[RESP_MAX];
    char why[ZJ_PROBE_RESULT_CAP];
    const size_t x_in = ZJ_CHECK_BODY_MATCH_BYTES - strlen(TOKEN); /* token ends at 5,120 */
    const size_t chunks[] = {0, 1, 7};
    const size_t heads[] = {64, 8000, ZJ_PROBE_HEAD_CAP};
    for (size_t c = 0; c < ZJ_ARRAY_SIZE(chunks); c++) {
        for (size_t k = 0; k < ZJ_ARRAY_SIZE(heads); k++) {
            size_t len = make_resp(heads[k], x_in, chunks[c], buf, sizeof(buf));
            if (verdict_n(buf, len, true, TOKEN, why) != ZJ_PROBE_OK) {
                fail_msg("head %zu, chunks of %zu: %s", heads[k], chunks[c], why);
            }
            assert_string_equal(why, "HTTP 200, match found");
            len = make_resp(heads[k], x_in + 1, chunks[c], buf, sizeof(buf));
            if (verdict_n(buf, len, true, TOKEN, why) != ZJ_PROBE_FAILED) {
                fail_msg("head %zu, chunks of %zu: found one byte past the window", heads[k],
                         chunks[c]);
            }
            assert_string_equal(why, "match not found");
            /* the window fills before the stream ends: decided without waiting for the close */
            assert_int_equal(verdict_n(buf, len, false, TOKEN, why), ZJ_PROBE_FAILED);
        }
    }
    /* one byte more of headers than the cap: unhealthy, with or without the end of stream */
    size_t len = make_resp(ZJ_PROBE_HEAD_CAP + 1, x_in, 0, buf, sizeof(buf));
    assert_int_equal(verdict_n(buf, len, false, TOKEN, why), ZJ_PROBE_FAILED);
    assert_string_equal(why, "HTTP 200, headers too long");
    len = make_resp(10240, 0, 0, buf, sizeof(buf));
    assert_int_equal(verdict_n(buf, len, true, TOKEN, why), ZJ_PROBE_FAILED);
    assert_string_equal(why, "HTTP 200, headers too long");
    /* without match= only the status line counts: long headers do not matter */
    assert_int_equal(verdict_n(buf, len, true, NULL, why), ZJ_PROBE_OK);
    /* a status line that does not end within the cap */
    memset(buf, 'H', ZJ_PROBE_HEAD_CAP + 10);
    assert_int_equal(verdict_n(buf, ZJ_PROBE_HEAD_CAP + 10, false, TOKEN, why), ZJ_PROBE_FAILED);
    assert_string_equal(why, "bad status line");
    /* a chunk-size line longer than ZJ_PROBE_CHUNK_LINE_MAX ends the body */
    int n = snprintf(buf, sizeof(buf),
                     "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "2\r\nab\r\n5;");
    memset(buf + n, 'e', ZJ_PROBE_CHUNK_LINE_MAX);
    n += (int)ZJ_PROBE_CHUNK_LINE_MAX;
    n += snprintf(buf + n, sizeof(buf) - (size_t)n, "\r\n%s\r\n0\r\n\r\n", TOKEN);
    assert_int_equal(verdict_n(buf, (size_t)n, false, TOKEN, why), ZJ_PROBE_FAILED);
    /* a shorter extension is skipped */
    n = snprintf(buf, sizeof(buf),
                 "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                 "2\r\nab\r\nd;name=\"v\"\r\n%s\r\n0\r\n\r\n",
                 TOKEN);
    assert_int_equal(verdict_n(buf, (size_t)n, false, TOKEN, why), ZJ_PROBE_OK);
}

static void test_http_verdict_status_match_and_framing(void **state)
{
    (void)state;
    char why[ZJ_PROBE_RESULT_CAP];
    assert_int_equal(verdict("HTTP/1.1 20", false, NULL, why), ZJ_PROBE_RUNNING);
    assert_int_equal(verdict("", true, NULL, why), ZJ_PROBE_FAILED);
    assert_string_equal(why, "empty response");
    assert_int_equal(verdict("HTTP/1.1 200 OK\r\n", false, NULL, why), ZJ_PROBE_OK);
    assert_string_equal(why, "HTTP 200");
    assert_int_equal(verdict("HTTP/1.0 399\r\n", false, NULL, why), ZJ_PROBE_OK);
    assert_int_equal(verdict("HTTP/1.1 404 Not Found\r\n", false, NULL, why), ZJ_PROBE_FAILED);
    assert_string_equal(why, "HTTP 404");
    assert_int_equal(verdict("HTTP/1.1 199 Odd\r\n", false, NULL, why), ZJ_PROBE_FAILED);
    assert_int_equal(verdict("SSH-2.0-OpenSSH\r\n", false, NULL, why), ZJ_PROBE_FAILED);
    assert_string_equal(why, "bad status line");
    /* A 503 fails even when the body holds the match. */
    assert_int_equal(verdict("HTTP/1.1 503 x\r\n\r\nok", false, "ok", why), ZJ_PROBE_FAILED);
    assert_string_equal(why, "HTTP 503");
    /* match: wait for the body, decide at its end */
    assert_int_equal(verdict("HTTP/1.1 200 OK\r\nA: b\r\n", false, "tok", why), ZJ_PROBE_RUNNING);
    assert_int_equal(verdict("HTTP/1.1 200 OK\r\n\r\nxx to", false, "tok", why), ZJ_PROBE_RUNNING);
    assert_int_equal(verdict("HTTP/1.1 200 OK\r\n\r\nxx tok", false, "tok", why), ZJ_PROBE_OK);
    assert_string_equal(why, "HTTP 200, match found");
    assert_int_equal(verdict("HTTP/1.1 200 OK\r\n\r\nxx to", true, "tok", why), ZJ_PROBE_FAILED);
    assert_string_equal(why, "match not found");
    /* Content-Length ends the body without waiting for the close, and bounds the search. */
    assert_int_equal(verdict("HTTP/1.1 200 OK\r\nContent-length: 3\r\n\r\nabc", false, "tok", why),
                     ZJ_PROBE_FAILED);
    assert_int_equal(verdict("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\ntok", true, "tok", why),
                     ZJ_PROBE_FAILED);
    /* chunked: the match may straddle chunks; the last chunk ends the body */
    assert_int_equal(verdict("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                             "2\r\nto\r\n1;ext=1\r\nk\r\n0\r\n\r\n",
                             false, "tok", why),
                     ZJ_PROBE_OK);
    assert_int_equal(verdict("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nto\r\n",
                             false, "tok", why),
                     ZJ_PROBE_RUNNING);
    assert_int_equal(verdict("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                             "2\r\nto\r\n0\r\n\r\n",
                             false, "tok", why),
                     ZJ_PROBE_FAILED);
    /* Headers that never end. */
    assert_int_equal(verdict("HTTP/1.1 200 OK\r\nA: b", true, "tok", why), ZJ_PROBE_FAILED);
    /* Exactly at the 5,120-byte limit: a match ending at byte 5,120 counts, one byte later not. */
    static char big[ZJ_CHECK_BODY_MATCH_BYTES + 128];
    for (int shift = 0; shift <= 1; shift++) {
        int n = snprintf(big, sizeof(big), "HTTP/1.1 200 OK\r\n\r\n");
        size_t fill = ZJ_CHECK_BODY_MATCH_BYTES - 3 + (size_t)shift;
        memset(big + n, 'x', fill);
        memcpy(big + n + fill, "tok", 4);
        assert_int_equal(verdict(big, true, "tok", why),
                         shift == 0 ? ZJ_PROBE_OK : ZJ_PROBE_FAILED);
    }
}

/* ---- the state machine, result by result ---- */

static void test_health_flips_after_exactly_threshold_results(void **state)
{
    (void)state;
    zj_health_t *h = NULL;
    assert_int_equal(zj_health_new(&h), ZJ_OK); /* no thread: only fed results count */
    test_img_t *t = img_new(NULL);
    uint16_t port = dead_port();
    uint32_t c3 = add_check(t, ZJ_CHECK_TCP, "three", port, 3, 0);
    uint32_t inv = add_check(t, ZJ_CHECK_TCP, "inverted", port, 2, ZJ_CHECK_INVERTED);
    uint32_t dis = add_check(t, ZJ_CHECK_TCP, "disabled", port, 1, ZJ_CHECK_DISABLED);
    assert_int_equal(zj_health_attach(h, &t->img), ZJ_OK);
    assert_non_null(t->img.health);
    assert_int_equal(seen(t, c3), 1); /* new checks start healthy */
    assert_int_equal(seen(t, inv), 1);

    zj_health_feed(h, &t->img, c3, false, "connect refused");
    zj_health_feed(h, &t->img, c3, false, "connect refused");
    assert_int_equal(seen(t, c3), 1);
    zj_health_feed(h, &t->img, c3, true, "connected"); /* breaks the streak */
    zj_health_feed(h, &t->img, c3, false, "connect refused");
    zj_health_feed(h, &t->img, c3, false, "connect refused");
    assert_int_equal(seen(t, c3), 1);
    zj_health_feed(h, &t->img, c3, false, "connect refused");
    assert_int_equal(seen(t, c3), 0);
    zj_health_info_t info = info_of(h, t, c3);
    assert_int_equal(info.flip_streak, 3);
    assert_int_equal(info.n_flips, 1);
    assert_string_equal(info.last, "connect refused");
    zj_health_feed(h, &t->img, c3, true, "connected");
    zj_health_feed(h, &t->img, c3, true, "connected");
    assert_int_equal(seen(t, c3), 0);
    zj_health_feed(h, &t->img, c3, true, "connected");
    assert_int_equal(seen(t, c3), 1);
    assert_int_equal(info_of(h, t, c3).flip_streak, 3);

    /* inverted: successes make it unhealthy */
    zj_health_feed(h, &t->img, inv, true, "connected");
    assert_int_equal(seen(t, inv), 1);
    zj_health_feed(h, &t->img, inv, true, "connected");
    assert_int_equal(seen(t, inv), 0);
    zj_health_feed(h, &t->img, inv, false, "connect refused");
    zj_health_feed(h, &t->img, inv, false, "connect refused");
    assert_int_equal(seen(t, inv), 1);

    /* disabled: healthy whatever happens */
    for (int i = 0; i < 5; i++) {
        zj_health_feed(h, &t->img, dis, false, "connect refused");
    }
    assert_int_equal(seen(t, dis), 1);

    zj_health_detach(h, &t->img);
    assert_null(t->img.health);
    zj_health_free(h);
    free(t);
}

static void test_health_calculated_follows_children(void **state)
{
    (void)state;
    zj_health_t *h = NULL;
    assert_int_equal(zj_health_new(&h), ZJ_OK);
    test_img_t *t = img_new(NULL);
    uint16_t port = dead_port();
    uint32_t a = add_check(t, ZJ_CHECK_TCP, "a", port, 1, 0);
    uint32_t b = add_check(t, ZJ_CHECK_TCP, "b", port, 1, 0);
    uint32_t c = add_check(t, ZJ_CHECK_TCP, "c", port, 1, 0);
    uint32_t d = add_check(t, ZJ_CHECK_TCP, "d", port, 1, ZJ_CHECK_DISABLED);
    const uint32_t abc[] = {a, b, c};
    uint32_t two = add_calc(t, "two-of-three", 2, abc, 3, 0);
    uint32_t one = add_calc(t, "one-of-three", 1, abc, 3, 0);
    uint32_t inv = add_calc(t, "inverted-two", 2, abc, 3, ZJ_CHECK_INVERTED);
    const uint32_t nested_kids[] = {two, d};
    uint32_t nested = add_calc(t, "both", 2, nested_kids, 2, 0); /* a calculated child */
    const uint32_t dc[] = {d, c};
    uint32_t with_disabled = add_calc(t, "disabled-counts", 2, dc, 2, 0);
    assert_int_equal(zj_health_attach(h, &t->img), ZJ_OK);
    assert_int_equal(seen(t, two), 1);
    assert_int_equal(seen(t, inv), 0); /* all children healthy, inverted */

    zj_health_feed(h, &t->img, b, false, "connect refused");
    assert_int_equal(seen(t, two), 1);
    assert_int_equal(seen(t, nested), 1);
    zj_health_feed(h, &t->img, c, false, "connect refused");
    assert_int_equal(seen(t, two), 0);
    assert_int_equal(seen(t, one), 1);
    assert_int_equal(seen(t, inv), 1);
    assert_int_equal(seen(t, nested), 0);        /* follows its calculated child at once */
    assert_int_equal(seen(t, with_disabled), 0); /* d (disabled) is healthy, c is not */
    assert_string_equal(info_of(h, t, two).last, "1 of 3 healthy");
    zj_health_feed(h, &t->img, a, false, "connect refused");
    assert_int_equal(seen(t, one), 0);
    zj_health_feed(h, &t->img, c, true, "connected");
    assert_int_equal(seen(t, one), 1);
    assert_int_equal(seen(t, two), 0);
    assert_int_equal(seen(t, with_disabled), 1);
    zj_health_feed(h, &t->img, b, true, "connected");
    assert_int_equal(seen(t, two), 1);
    assert_int_equal(seen(t, nested), 1);
    assert_int_equal(seen(t, inv), 0);

    char text[4096];
    size_t len = zj_health_describe(h, text, sizeof(text));
    assert_int_equal(len, strlen(text));
    assert_non_null(strstr(text, "example.test. two-of-three calculated 2 of (a,b,c) healthy"));
    assert_non_null(strstr(text, "example.test. d tcp 127.0.0.1:"));
    assert_non_null(strstr(text, " disabled healthy streak 0 last none\n"));

    zj_health_detach(h, &t->img);
    zj_health_free(h);
    free(t);
}

/* Route 53: a disabled check is healthy, and disabled plus inverted is how one stops routing
 * to a resource: unhealthy from the start, whatever the results, and so for a calculated check
 * and for the parents that count it. */
static void test_health_disabled_and_inverted_is_unhealthy(void **state)
{
    (void)state;
    zj_health_t *h = NULL;
    assert_int_equal(zj_health_new(&h), ZJ_OK);
    test_img_t *t = img_new(NULL);
    uint16_t port = dead_port();
    const uint16_t off = ZJ_CHECK_DISABLED | ZJ_CHECK_INVERTED;
    uint32_t a = add_check(t, ZJ_CHECK_TCP, "a", port, 1, 0);
    uint32_t dis = add_check(t, ZJ_CHECK_TCP, "disabled-inverted", port, 1, off);
    const uint32_t ka[] = {a};
    uint32_t calc_off = add_calc(t, "calc-disabled-inverted", 1, ka, 1, off);
    const uint32_t kd[] = {dis};
    uint32_t parent = add_calc(t, "parent", 1, kd, 1, 0);
    const uint32_t kc[] = {calc_off};
    uint32_t parent_of_calc = add_calc(t, "parent-of-calc", 1, kc, 1, 0);
    assert_int_equal(zj_health_attach(h, &t->img), ZJ_OK);
    assert_int_equal(seen(t, a), 1);
    assert_int_equal(seen(t, dis), 0);
    assert_int_equal(seen(t, calc_off), 0);
    assert_int_equal(seen(t, parent), 0);
    assert_int_equal(seen(t, parent_of_calc), 0);
    assert_int_equal(info_of(h, t, dis).n_flips, 0); /* unhealthy from the start, no flip */

    for (int i = 0; i < 3; i++) {
        zj_health_feed(h, &t->img, dis, true, "connected");
        zj_health_feed(h, &t->img, dis, false, "connect refused");
    }
    zj_health_feed(h, &t->img, a, false, "connect refused"); /* the child of calc changes */
    assert_int_equal(seen(t, a), 0);
    zj_health_feed(h, &t->img, a, true, "connected");
    assert_int_equal(seen(t, a), 1);
    assert_int_equal(seen(t, dis), 0);
    assert_int_equal(seen(t, calc_off), 0);
    assert_int_equal(seen(t, parent), 0);
    assert_int_equal(seen(t, parent_of_calc), 0);

    char text[2048];
    zj_health_describe(h, text, sizeof(text));
    assert_non_null(strstr(text, " inverted disabled unhealthy streak "));

    zj_health_detach(h, &t->img);
    zj_health_free(h);
    free(t);
}

static void test_health_reattach_shares_state_and_changed_check_is_fresh(void **state)
{
    (void)state;
    zj_health_t *h = NULL;
    assert_int_equal(zj_health_new(&h), ZJ_OK);
    uint16_t port = dead_port();
    test_img_t *old = img_new(NULL);
    uint32_t x = add_check(old, ZJ_CHECK_TCP, "x", port, 1, 0);
    uint32_t y = add_check(old, ZJ_CHECK_TCP, "y", port, 1, 0);
    const uint32_t kids[] = {x, y};
    uint32_t calc = add_calc(old, "calc", 2, kids, 2, 0);
    assert_int_equal(zj_health_attach(h, &old->img), ZJ_OK);
    zj_health_feed(h, &old->img, x, false, "connect refused");
    assert_int_equal(seen(old, x), 0);
    assert_int_equal(seen(old, calc), 0);

    /* The same checks in a new image (strings at other offsets): same state bytes. */
    test_img_t *same = img_new("padding that moves every string");
    assert_int_equal(add_check(same, ZJ_CHECK_TCP, "x", port, 1, 0), x);
    assert_int_equal(add_check(same, ZJ_CHECK_TCP, "y", port, 1, 0), y);
    assert_int_equal(add_calc(same, "calc", 2, kids, 2, 0), calc);
    assert_int_equal(zj_health_attach(h, &same->img), ZJ_OK);
    assert_ptr_equal(same->img.health[x], old->img.health[x]);
    assert_ptr_equal(same->img.health[calc], old->img.health[calc]);
    assert_int_equal(seen(same, x), 0);
    assert_int_equal(seen(same, calc), 0);
    assert_int_equal(info_of(h, same, x).refs, 3); /* two images and the calculated parent */
    const uint8_t *byte_x = info_of(h, same, x).byte;

    /* The old image goes (a reload's end): the state stays with the new one. */
    zj_health_detach(h, &old->img);
    assert_int_equal(seen(same, x), 0);
    assert_int_equal(info_of(h, same, x).refs, 2);
    assert_ptr_equal(info_of(h, same, x).byte, byte_x);

    /* A changed definition (another port, or another threshold) is a new check, healthy. */
    test_img_t *changed = img_new(NULL);
    add_check(changed, ZJ_CHECK_TCP, "x", (uint16_t)(port + 1), 1, 0);
    add_check(changed, ZJ_CHECK_TCP, "y", port, 2, 0);
    add_calc(changed, "calc", 2, kids, 2, 0);
    assert_int_equal(zj_health_attach(h, &changed->img), ZJ_OK);
    assert_ptr_not_equal(changed->img.health[x], same->img.health[x]);
    assert_ptr_not_equal(changed->img.health[y], same->img.health[y]);
    assert_ptr_not_equal(changed->img.health[calc], same->img.health[calc]);
    assert_int_equal(seen(changed, x), 1);
    assert_int_equal(seen(changed, calc), 1);
    assert_int_equal(seen(same, x), 0);

    /* Another zone with the same check is another check. */
    test_img_t *other = img_new(NULL);
    memcpy(other->names, "\5other\4test", 12);
    other->img.names_len = 12;
    add_check(other, ZJ_CHECK_TCP, "x", port, 1, 0);
    assert_int_equal(zj_health_attach(h, &other->img), ZJ_OK);
    assert_ptr_not_equal(other->img.health[0], same->img.health[x]);

    zj_health_detach(h, &same->img);
    zj_health_detach(h, &changed->img);
    zj_health_detach(h, &other->img);
    char text[256];
    zj_health_describe(h, text, sizeof(text));
    assert_string_equal(text, "no health checks\n");
    zj_health_free(h);
    free(old);
    free(same);
    free(changed);
    free(other);
}

static void test_health_attach_refuses_malformed_checks(void **state)
{
    (void)state;
    zj_health_t *h = NULL;
    assert_int_equal(zj_health_new(&h), ZJ_OK);
    test_img_t *t = img_new(NULL);
    uint32_t a = add_check(t, ZJ_CHECK_TCP, "a", 1, 1, 0);
    const uint32_t self[] = {a + 1}; /* a child that is not before its parent */
    add_calc(t, "loop", 1, self, 1, 0);
    assert_int_equal(zj_health_attach(h, &t->img), ZJ_EINVAL);
    assert_null(t->img.health);
    t->img.n_checks = 1;
    t->checks[0].name_off = (uint32_t)t->img.strs_len; /* past the strings */
    assert_int_equal(zj_health_attach(h, &t->img), ZJ_EINVAL);
    char text[64];
    zj_health_describe(h, text, sizeof(text));
    assert_string_equal(text, "no health checks\n"); /* nothing half-registered */
    zj_health_free(h);
    free(t);
}

/* ---- against real endpoints ---- */

static void test_health_tcp_down_and_up_flip_after_threshold(void **state)
{
    (void)state;
    endpoint_t ep = {0};
    ep_start(&ep, EP_TCP);
    zj_health_t *h = NULL;
    assert_int_equal(zj_health_new(&h), ZJ_OK);
    test_img_t *t = img_new(NULL);
    uint32_t c = add_check(t, ZJ_CHECK_TCP, "tcp", ep.port, 3, 0);
    assert_int_equal(zj_health_attach(h, &t->img), ZJ_OK);
    assert_int_equal(zj_health_start(h), ZJ_OK);

    zj_health_info_t info = wait_for(h, t, c, 2, 1);
    assert_string_equal(info.last, "connected");
    assert_true(atomic_load(&ep.n_conns) >= 1);

    ep_stop(&ep); /* connects are refused from now on */
    info = wait_for(h, t, c, 0, 0);
    assert_int_equal(seen(t, c), 0);
    assert_int_equal(info.flip_streak, 3);
    assert_int_equal(info.n_flips, 1);
    assert_string_equal(info.last, "connect refused");

    ep_start(&ep, EP_TCP);
    info = wait_for(h, t, c, 0, 1);
    assert_int_equal(info.flip_streak, 3);
    assert_int_equal(info.n_flips, 2);
    assert_string_equal(info.last, "connected");

    zj_health_stop(h);
    zj_health_detach(h, &t->img);
    zj_health_free(h);
    ep_free(&ep);
    free(t);
}

static void test_health_http_status_match_and_request(void **state)
{
    (void)state;
    endpoint_t ep = {0};
    ep_start(&ep, EP_HTTP);
    zj_health_t *h = NULL;
    assert_int_equal(zj_health_new(&h), ZJ_OK);
    test_img_t *t = img_new(NULL);
    uint32_t ok = add_http(t, ZJ_CHECK_HTTP, "ok", ep.port, "/ok", "www.example.test", NULL);
    uint32_t fail = add_http(t, ZJ_CHECK_HTTP, "fail", ep.port, "/fail", NULL, NULL);
    uint32_t redir = add_http(t, ZJ_CHECK_HTTP, "redirect", ep.port, "/redirect", NULL, NULL);
    uint32_t found = add_http(t, ZJ_CHECK_HTTP, "found", ep.port, "/ok", NULL, TOKEN);
    uint32_t missing = add_http(t, ZJ_CHECK_HTTP, "missing", ep.port, "/ok", NULL, "absent");
    uint32_t chunked = add_http(t, ZJ_CHECK_HTTP, "chunked", ep.port, "/chunked", NULL, TOKEN);
    uint32_t big = add_http(t, ZJ_CHECK_HTTP, "big", ep.port, "/big", NULL, TOKEN);
    uint32_t slow = add_http(t, ZJ_CHECK_HTTP, "slow", ep.port, "/slow", NULL, NULL);
    t->checks[slow].interval_ms = 200; /* only one parked connection per 200 ms */
    t->checks[slow].timeout_ms = 100;
    /* the body window is the first 5,120 decoded bytes, whatever the headers and chunks */
    uint32_t wbytes =
        add_http(t, ZJ_CHECK_HTTP, "window-bytes", ep.port, "/window-bytes", NULL, TOKEN);
    uint32_t lbytes = add_http(t, ZJ_CHECK_HTTP, "late-bytes", ep.port, "/late-bytes", NULL, TOKEN);
    uint32_t whead =
        add_http(t, ZJ_CHECK_HTTP, "window-head", ep.port, "/window-head", NULL, TOKEN);
    uint32_t lhead = add_http(t, ZJ_CHECK_HTTP, "long-head", ep.port, "/long-head", NULL, TOKEN);
    assert_int_equal(zj_health_attach(h, &t->img), ZJ_OK);
    assert_int_equal(zj_health_start(h), ZJ_OK);

    assert_string_equal(wait_for(h, t, ok, 1, 1).last, "HTTP 200");
    assert_string_equal(wait_for(h, t, fail, 1, 0).last, "HTTP 503");
    assert_string_equal(wait_for(h, t, redir, 1, 1).last, "HTTP 302");
    assert_string_equal(wait_for(h, t, found, 1, 1).last, "HTTP 200, match found");
    assert_string_equal(wait_for(h, t, missing, 1, 0).last, "match not found");
    assert_string_equal(wait_for(h, t, chunked, 1, 1).last, "HTTP 200, match found");
    assert_string_equal(wait_for(h, t, big, 1, 0).last, "match not found");
    assert_string_equal(wait_for(h, t, slow, 1, 0).last, "timeout (response)");
    assert_string_equal(wait_for(h, t, wbytes, 1, 1).last, "HTTP 200, match found");
    assert_string_equal(wait_for(h, t, lbytes, 1, 0).last, "match not found");
    assert_string_equal(wait_for(h, t, whead, 1, 1).last, "HTTP 200, match found");
    assert_string_equal(wait_for(h, t, lhead, 1, 0).last, "HTTP 200, headers too long");
    zj_health_stop(h);

    char text[8192];
    zj_health_describe(h, text, sizeof(text));
    char want[128];
    snprintf(want, sizeof(want), "example.test. ok http 127.0.0.1:%u/ok host=www.example.test ",
             ep.port);
    assert_non_null(strstr(text, want));
    assert_non_null(strstr(text, " unhealthy streak "));
    assert_non_null(strstr(text, "last \"HTTP 503\" "));
    assert_non_null(strstr(text, "s ago\n"));

    zj_health_detach(h, &t->img);
    zj_health_free(h);
    ep_free(&ep);
    free(t);
}

/* Run one check alone against ep until it has a result; returns the request ep saw. */
static void probe_once(endpoint_t *ep, test_img_t *t, char *req, size_t cap)
{
    zj_health_t *h = NULL;
    assert_int_equal(zj_health_new(&h), ZJ_OK);
    assert_int_equal(zj_health_attach(h, &t->img), ZJ_OK);
    assert_int_equal(zj_health_start(h), ZJ_OK);
    wait_for(h, t, 0, 1, 1);
    zj_health_stop(h);
    zj_health_detach(h, &t->img);
    zj_health_free(h);
    pthread_mutex_lock(&ep->mu);
    snprintf(req, cap, "%s", ep->last_req);
    pthread_mutex_unlock(&ep->mu);
}

static void test_health_http_request_line_and_host(void **state)
{
    (void)state;
    char req[1024];
    char want[128];
    endpoint_t ep = {0};
    ep_start(&ep, EP_HTTP);

    test_img_t *t = img_new(NULL);
    add_http(t, ZJ_CHECK_HTTP, "named", ep.port, "/ok?x=1", "www.example.test", NULL);
    probe_once(&ep, t, req, sizeof(req));
    snprintf(want, sizeof(want), "GET /ok?x=1 HTTP/1.1\r\nHost: www.example.test:%u\r\n", ep.port);
    assert_non_null(strstr(req, want));
    assert_non_null(strstr(req, "\r\nConnection: close\r\n"));
    assert_non_null(strstr(req, "\r\nUser-Agent: zonejet"));
    free(t);

    /* Without a host or path: the address, and "/". */
    t = img_new(NULL);
    add_http(t, ZJ_CHECK_HTTP, "bare", ep.port, NULL, NULL, NULL);
    probe_once(&ep, t, req, sizeof(req));
    snprintf(want, sizeof(want), "GET / HTTP/1.1\r\nHost: 127.0.0.1:%u\r\n", ep.port);
    assert_non_null(strstr(req, want));
    free(t);
    ep_free(&ep);
}

static void test_health_https_status_match_and_tls_failure(void **state)
{
    (void)state;
    endpoint_t tls = {0};
    tls.tls = make_server_tls();
    ep_start(&tls, EP_HTTPS);
    endpoint_t plain = {0};
    ep_start(&plain, EP_HTTP);
    zj_health_t *h = NULL;
    assert_int_equal(zj_health_new(&h), ZJ_OK);
    test_img_t *t = img_new(NULL);
    uint32_t ok = add_http(t, ZJ_CHECK_HTTPS, "tls", tls.port, "/ok", "tls.example.test", TOKEN);
    uint32_t fail = add_http(t, ZJ_CHECK_HTTPS, "tls-fail", tls.port, "/fail", NULL, NULL);
    uint32_t notls = add_http(t, ZJ_CHECK_HTTPS, "not-tls", plain.port, "/ok", NULL, NULL);
    assert_int_equal(zj_health_attach(h, &t->img), ZJ_OK);
    assert_int_equal(zj_health_start(h), ZJ_OK);

    assert_string_equal(wait_for(h, t, ok, 2, 1).last, "HTTP 200, match found");
    assert_string_equal(wait_for(h, t, fail, 1, 0).last, "HTTP 503");
    zj_health_info_t info = wait_for(h, t, notls, 1, 0);
    assert_non_null(strstr(info.last, "tls"));
    zj_health_stop(h);

    zj_health_detach(h, &t->img);
    zj_health_free(h);
    ep_free(&tls);
    ep_free(&plain);
    SSL_CTX_free(tls.tls);
    free(t);
}

static void test_health_https_sends_sni(void **state)
{
    (void)state;
    endpoint_t tls = {0};
    tls.tls = make_server_tls();
    ep_start(&tls, EP_HTTPS);
    zj_health_t *h = NULL;
    assert_int_equal(zj_health_new(&h), ZJ_OK);
    test_img_t *t = img_new(NULL);
    uint32_t c = add_http(t, ZJ_CHECK_HTTPS, "sni", tls.port, "/ok", "sni.example.test", NULL);
    assert_int_equal(zj_health_attach(h, &t->img), ZJ_OK);
    assert_int_equal(zj_health_start(h), ZJ_OK);
    wait_for(h, t, c, 1, 1);
    zj_health_stop(h);
    pthread_mutex_lock(&tls.mu);
    assert_string_equal(tls.last_sni, "sni.example.test");
    pthread_mutex_unlock(&tls.mu);
    zj_health_detach(h, &t->img);
    zj_health_free(h);
    ep_free(&tls);
    SSL_CTX_free(tls.tls);
    free(t);
}

static void test_health_inverted_flips_and_disabled_is_never_probed(void **state)
{
    (void)state;
    endpoint_t up = {0};
    ep_start(&up, EP_TCP);
    endpoint_t quiet = {0};
    ep_start(&quiet, EP_TCP);
    zj_health_t *h = NULL;
    assert_int_equal(zj_health_new(&h), ZJ_OK);
    test_img_t *t = img_new(NULL);
    uint32_t inv = add_check(t, ZJ_CHECK_TCP, "inverted", up.port, 2, ZJ_CHECK_INVERTED);
    uint32_t dis = add_check(t, ZJ_CHECK_TCP, "disabled", quiet.port, 1, ZJ_CHECK_DISABLED);
    uint32_t dis_down =
        add_check(t, ZJ_CHECK_TCP, "disabled-down", dead_port(), 1, ZJ_CHECK_DISABLED);
    uint32_t dis_inv = add_check(t, ZJ_CHECK_TCP, "disabled-inverted", quiet.port, 1,
                                 ZJ_CHECK_DISABLED | ZJ_CHECK_INVERTED);
    assert_int_equal(zj_health_attach(h, &t->img), ZJ_OK);
    assert_int_equal(zj_health_start(h), ZJ_OK);

    zj_health_info_t info = wait_for(h, t, inv, 2, 0);
    assert_int_equal(info.flip_streak, 2);
    assert_string_equal(info.last, "connected");
    sleep_ms(6 * IVL_MS);
    assert_int_equal(atomic_load(&quiet.n_conns), 0);
    assert_int_equal(info_of(h, t, dis).n_results, 0);
    assert_int_equal(seen(t, dis), 1);
    assert_int_equal(seen(t, dis_down), 1);
    assert_int_equal(info_of(h, t, dis_inv).n_results, 0);
    assert_int_equal(seen(t, dis_inv), 0); /* Route 53: disabled and inverted is unhealthy */

    zj_health_stop(h);
    zj_health_detach(h, &t->img);
    zj_health_free(h);
    ep_free(&up);
    ep_free(&quiet);
    free(t);
}

static void test_health_detach_stops_probing(void **state)
{
    (void)state;
    endpoint_t ep = {0};
    ep_start(&ep, EP_TCP);
    zj_health_t *h = NULL;
    assert_int_equal(zj_health_new(&h), ZJ_OK);
    assert_int_equal(zj_health_start(h), ZJ_OK);
    test_img_t *a = img_new(NULL);
    test_img_t *b = img_new(NULL);
    add_check(a, ZJ_CHECK_TCP, "shared", ep.port, 1, 0);
    add_check(b, ZJ_CHECK_TCP, "shared", ep.port, 1, 0);
    assert_int_equal(zj_health_attach(h, &a->img), ZJ_OK);
    assert_int_equal(zj_health_attach(h, &b->img), ZJ_OK);
    wait_for(h, a, 0, 2, 1);

    /* One image left: still probed (once per interval, not twice). */
    zj_health_detach(h, &a->img);
    unsigned c0 = atomic_load(&ep.n_conns);
    sleep_ms(10 * IVL_MS);
    unsigned c1 = atomic_load(&ep.n_conns);
    assert_true(c1 > c0);
    assert_true(c1 - c0 <= 12);

    /* No image left: no more connections. */
    zj_health_detach(h, &b->img);
    sleep_ms(2 * IVL_MS); /* a connection in flight at detach may still be accepted */
    unsigned c2 = atomic_load(&ep.n_conns);
    sleep_ms(8 * IVL_MS);
    assert_int_equal(atomic_load(&ep.n_conns), c2);

    zj_health_free(h);
    ep_free(&ep);
    free(a);
    free(b);
}

/* Detach aborts the probes in flight and wakes the checker at once: the socket of a probe
 * waiting for a response that never comes is closed (the endpoint sees the end of the stream)
 * right away, not when the probe's timeout would have woken the checker. */
static void test_health_detach_drops_probes_in_flight_at_once(void **state)
{
    (void)state;
    endpoint_t ep = {0};
    ep_start(&ep, EP_HTTP);
    zj_health_t *h = NULL;
    assert_int_equal(zj_health_new(&h), ZJ_OK);
    test_img_t *t = img_new(NULL);
    uint32_t c = add_http(t, ZJ_CHECK_HTTP, "slow", ep.port, "/slow", NULL, NULL);
    t->checks[c].interval_ms = 3000; /* the first probe comes within this */
    t->checks[c].timeout_ms = 2900;  /* what the checker sleeps on while the probe waits */
    assert_int_equal(zj_health_attach(h, &t->img), ZJ_OK);
    assert_int_equal(zj_health_start(h), ZJ_OK);

    int fd = -1;
    uint64_t until = now_ms() + WAIT_MS;
    while (fd < 0) {
        pthread_mutex_lock(&ep.mu);
        fd = ep.n_parked > 0 ? ep.parked[0] : -1;
        pthread_mutex_unlock(&ep.mu);
        if (fd < 0 && now_ms() > until) {
            fail_msg("the probe never reached the endpoint");
        }
        sleep_ms(5);
    }
    uint64_t t0 = now_ms();
    zj_health_detach(h, &t->img);
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    int rc = poll(&pfd, 1, 1000);
    uint64_t waited = now_ms() - t0;
    char byte;
    if (rc != 1 || recv(fd, &byte, 1, MSG_DONTWAIT) != 0) {
        fail_msg("no end of stream %llu ms after detach (poll %d)", (unsigned long long)waited, rc);
    }

    zj_health_free(h);
    ep_free(&ep);
    free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_http_verdict_status_match_and_framing),
        cmocka_unit_test(test_http_verdict_window_ignores_headers_and_chunking),
        cmocka_unit_test(test_health_flips_after_exactly_threshold_results),
        cmocka_unit_test(test_health_calculated_follows_children),
        cmocka_unit_test(test_health_disabled_and_inverted_is_unhealthy),
        cmocka_unit_test(test_health_reattach_shares_state_and_changed_check_is_fresh),
        cmocka_unit_test(test_health_attach_refuses_malformed_checks),
        cmocka_unit_test(test_health_tcp_down_and_up_flip_after_threshold),
        cmocka_unit_test(test_health_http_status_match_and_request),
        cmocka_unit_test(test_health_http_request_line_and_host),
        cmocka_unit_test(test_health_https_status_match_and_tls_failure),
        cmocka_unit_test(test_health_https_sends_sni),
        cmocka_unit_test(test_health_inverted_flips_and_disabled_is_never_probed),
        cmocka_unit_test(test_health_detach_stops_probing),
        cmocka_unit_test(test_health_detach_drops_probes_in_flight_at_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
