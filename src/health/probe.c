/* Health probes: TCP connect, HTTP/1.1 GET and the same over TLS, on non-blocking sockets
 * (see probe.h for the state machine and its bounds).
 *
 * The request is `GET <path> HTTP/1.1` with Host (the check's host, else its address),
 * User-Agent naming zonejet and `Connection: close`, so the server ends the response by closing
 * and no keep-alive state is needed. Without a match string the status line decides and the
 * connection is closed as soon as it has arrived; with one, the body is read until the match is
 * found, ZJ_CHECK_BODY_MATCH_BYTES of it have been seen, or the server closes.
 *
 * HTTPS: SNI is the check's host when it is a name (RFC 6066 §3 forbids address literals);
 * certificates are not verified, as Route 53 does not verify them for HTTPS health checks: a
 * check tests that the endpoint answers, and endpoints are often addressed by IP with
 * certificates for other names. A TLS failure is the probe's result, never the server's.
 *
 * Rejected: a blocking probe per helper thread (one stuck endpoint would hold a thread for its
 * timeout, and thousands of checks would need thousands of threads). */
#include "health/probe.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "zonejet/compiler.h"
#include "zonejet/image.h"

enum phase {
    PHASE_CONNECT = 0,
    PHASE_TLS = 1,
    PHASE_SEND = 2,
    PHASE_RECV = 3,
};

#define USER_AGENT "zonejet-health-check"

static int finish(zj_probe_t *p, int status, const char *fmt, ...) ZJ_PRINTF(3, 4);

static int finish(zj_probe_t *p, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->result, sizeof(p->result), fmt, ap);
    va_end(ap);
    zj_probe_close(p);
    return status;
}

void zj_probe_close(zj_probe_t *p)
{
    if (p->ssl != NULL) {
        SSL_free(p->ssl);
        p->ssl = NULL;
    }
    if (p->fd >= 0) {
        close(p->fd);
        p->fd = -1;
    }
}

const char *zj_probe_phase_name(const zj_probe_t *p)
{
    switch (p->phase) {
    case PHASE_CONNECT:
        return "connect";
    case PHASE_TLS:
        return "tls";
    case PHASE_SEND:
        return "send";
    default:
        return "response";
    }
}

/* The text a failed connect or read reports. */
static int fail_errno(zj_probe_t *p, const char *what, int err)
{
    switch (err) {
    case ECONNREFUSED:
        return finish(p, ZJ_PROBE_FAILED, "%s refused", what);
    case ECONNRESET:
        return finish(p, ZJ_PROBE_FAILED, "%s reset", what);
    case ETIMEDOUT:
        return finish(p, ZJ_PROBE_FAILED, "timeout (%s)", what);
    default:
        return finish(p, ZJ_PROBE_FAILED, "%s: %s", what, strerror(err));
    }
}

/* "tls: <reason>" from OpenSSL's error queue (this thread's), or a generic text. */
static int fail_tls(zj_probe_t *p, const char *what, int ssl_err)
{
    unsigned long e = ERR_peek_last_error();
    const char *reason = e != 0 ? ERR_reason_error_string(e) : NULL;
    if (ssl_err == SSL_ERROR_SYSCALL && reason == NULL) {
        return errno != 0 ? fail_errno(p, what, errno)
                          : finish(p, ZJ_PROBE_FAILED, "%s: connection closed", what);
    }
    ERR_clear_error();
    return finish(p, ZJ_PROBE_FAILED, "%s: %s", what, reason != NULL ? reason : "failed");
}

/* ---- the HTTP verdict ---- */

/* "HTTP/d.d SP ddd", the status code or -1. */
static int parse_status(const uint8_t *s, size_t len)
{
    if (len < 12 || memcmp(s, "HTTP/", 5) != 0 || s[5] < '0' || s[5] > '9' || s[6] != '.' ||
        s[7] < '0' || s[7] > '9' || s[8] != ' ') {
        return -1;
    }
    int code = 0;
    for (size_t i = 9; i < 12; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -1;
        }
        code = code * 10 + (s[i] - '0');
    }
    if (len > 12 && s[12] != ' ') {
        return -1;
    }
    return code;
}

static bool name_is(const uint8_t *line, size_t len, const char *name)
{
    size_t n = strlen(name);
    return len > n && line[n] == ':' && strncasecmp((const char *)line, name, n) == 0;
}

typedef struct http_head {
    bool is_chunked;
    bool has_length;
    size_t length;
} http_head_t;

/* The two headers that say where the body ends: Transfer-Encoding and Content-Length. */
static void parse_headers(const uint8_t *h, size_t len, http_head_t *out)
{
    memset(out, 0, sizeof(*out));
    while (len > 0) {
        const uint8_t *eol = memmem(h, len, "\r\n", 2);
        size_t l = eol != NULL ? (size_t)(eol - h) : len;
        if (name_is(h, l, "transfer-encoding")) {
            for (size_t i = 0; i + 7 <= l; i++) {
                if (strncasecmp((const char *)h + i, "chunked", 7) == 0) {
                    out->is_chunked = true;
                }
            }
        } else if (name_is(h, l, "content-length")) {
            size_t v = 0;
            bool has_digit = false;
            for (size_t i = 15; i < l && v < ((size_t)1 << 40); i++) {
                if (h[i] >= '0' && h[i] <= '9') {
                    v = v * 10 + (size_t)(h[i] - '0');
                    has_digit = true;
                } else if (h[i] != ' ' && h[i] != '\t') {
                    break;
                }
            }
            out->has_length = has_digit;
            out->length = v;
        }
        if (eol == NULL) {
            break;
        }
        len -= l + 2;
        h = eol + 2;
    }
}

static int hex_value(uint8_t c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    c = (uint8_t)(c | 0x20);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Decode a chunked body (RFC 9112 §7.1) into out (cap bytes); *is_done says the body ended (last
 * chunk seen, out full, or malformed: what was decoded is all there will be). Bounded by len. */
static size_t dechunk(const uint8_t *b, size_t len, uint8_t *out, size_t cap, bool *is_done)
{
    size_t o = 0;
    size_t i = 0;
    *is_done = false;
    while (o < cap) {
        size_t size = 0;
        size_t digits = 0;
        for (; i < len && hex_value(b[i]) >= 0; i++, digits++) {
            if (digits == 8) { /* a chunk over 4 GiB: malformed for our purpose */
                *is_done = true;
                return o;
            }
            size = size * 16 + (size_t)hex_value(b[i]);
        }
        const uint8_t *eol = i < len ? memmem(b + i, len - i, "\r\n", 2) : NULL;
        if (eol == NULL) {
            return o; /* the size line is not complete yet */
        }
        if (digits == 0) {
            *is_done = true;
            return o;
        }
        i = (size_t)(eol - b) + 2;
        if (size == 0) {
            *is_done = true;
            return o;
        }
        size_t avail = len - i < size ? len - i : size;
        size_t take = avail < cap - o ? avail : cap - o;
        memcpy(out + o, b + i, take);
        o += take;
        if (avail < size) {
            return o; /* more of this chunk to come */
        }
        i += size;
        if (i + 2 > len) {
            return o;
        }
        i += 2; /* the CRLF after the data */
    }
    *is_done = true;
    return o;
}

int zj_http_verdict(const uint8_t *resp, size_t len, bool is_end, const char *match, char *why,
                    size_t cap)
{
    const uint8_t *eol = memmem(resp, len, "\r\n", 2);
    if (eol == NULL) {
        if (!is_end) {
            return ZJ_PROBE_RUNNING;
        }
        snprintf(why, cap, "%s", len == 0 ? "empty response" : "bad status line");
        return ZJ_PROBE_FAILED;
    }
    int status = parse_status(resp, (size_t)(eol - resp));
    if (status < 0) {
        snprintf(why, cap, "bad status line");
        return ZJ_PROBE_FAILED;
    }
    if (status < 200 || status > 399) {
        snprintf(why, cap, "HTTP %d", status);
        return ZJ_PROBE_FAILED;
    }
    if (match == NULL) {
        snprintf(why, cap, "HTTP %d", status);
        return ZJ_PROBE_OK;
    }
    /* The header block ends at the first empty line; the status line's CRLF may be its start. */
    const uint8_t *hend = memmem(eol, len - (size_t)(eol - resp), "\r\n\r\n", 4);
    if (hend == NULL) {
        if (!is_end) {
            return ZJ_PROBE_RUNNING;
        }
        snprintf(why, cap, "HTTP %d, headers cut short", status);
        return ZJ_PROBE_FAILED;
    }
    http_head_t head;
    parse_headers(eol + 2, (size_t)(hend - eol), &head);
    const uint8_t *body = hend + 4;
    size_t body_len = len - (size_t)(body - resp);
    uint8_t decoded[ZJ_CHECK_BODY_MATCH_BYTES];
    const uint8_t *view = body;
    size_t view_len = body_len < ZJ_CHECK_BODY_MATCH_BYTES ? body_len : ZJ_CHECK_BODY_MATCH_BYTES;
    bool is_done =
        body_len >= ZJ_CHECK_BODY_MATCH_BYTES || (head.has_length && body_len >= head.length);
    if (head.is_chunked) {
        view = decoded;
        view_len = dechunk(body, body_len, decoded, sizeof(decoded), &is_done);
    } else if (head.has_length && head.length < view_len) {
        view_len = head.length;
    }
    size_t mlen = strlen(match);
    if (mlen == 0 || (view_len >= mlen && memmem(view, view_len, match, mlen) != NULL)) {
        snprintf(why, cap, "HTTP %d, match found", status);
        return ZJ_PROBE_OK;
    }
    if (!is_done && !is_end) {
        return ZJ_PROBE_RUNNING;
    }
    snprintf(why, cap, "match not found");
    return ZJ_PROBE_FAILED;
}

/* ---- the state machine ---- */

static bool is_ip_literal(const char *s)
{
    uint8_t buf[16];
    return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

/* A request-line or header value must not end the line early (no header injection from a
 * policy file) nor contain blanks in the path. */
static bool is_clean(const char *s, bool allow_space)
{
    for (const unsigned char *c = (const unsigned char *)s; *c != '\0'; c++) {
        if (*c < 0x20 || *c == 0x7f || (*c == ' ' && !allow_space)) {
            return false;
        }
    }
    return true;
}

static int build_request(zj_probe_t *p, const zj_probe_target_t *t)
{
    char host[ZJ_PROBE_REQ_CAP / 2];
    char port[8] = "";
    const char *path = t->path != NULL && t->path[0] != '\0' ? t->path : "/";
    uint16_t default_port = t->kind == ZJ_CHECK_HTTPS ? 443 : 80;
    if (t->host != NULL) {
        if (strlen(t->host) >= sizeof(host)) {
            return finish(p, ZJ_PROBE_FAILED, "host too long");
        }
        snprintf(host, sizeof(host), "%s", t->host);
    } else {
        char text[INET6_ADDRSTRLEN];
        inet_ntop(t->family, t->addr, text, sizeof(text));
        snprintf(host, sizeof(host), t->family == AF_INET6 ? "[%s]" : "%s", text);
    }
    if (!is_clean(path, false) || path[0] != '/') {
        return finish(p, ZJ_PROBE_FAILED, "bad path");
    }
    if (!is_clean(host, false)) {
        return finish(p, ZJ_PROBE_FAILED, "bad host");
    }
    if (t->port != default_port) {
        snprintf(port, sizeof(port), ":%u", (unsigned)t->port);
    }
    int n = snprintf(p->req, sizeof(p->req),
                     "GET %s HTTP/1.1\r\nHost: %s%s\r\nUser-Agent: " USER_AGENT
                     "\r\nAccept: */*\r\nConnection: close\r\n\r\n",
                     path, host, port);
    if (n < 0 || (size_t)n >= sizeof(p->req)) {
        return finish(p, ZJ_PROBE_FAILED, "request too long");
    }
    p->req_len = (size_t)n;
    return ZJ_PROBE_RUNNING;
}

static int step_recv(zj_probe_t *p)
{
    for (;;) {
        size_t room = sizeof(p->resp) - p->resp_len;
        ssize_t n = 0;
        if (room == 0) {
            break;
        }
        if (p->ssl != NULL) {
            ERR_clear_error();
            int r = SSL_read(p->ssl, p->resp + p->resp_len, (int)room);
            int e = r > 0 ? SSL_ERROR_NONE : SSL_get_error(p->ssl, r);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
                p->events = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
                return ZJ_PROBE_RUNNING;
            }
            if (e != SSL_ERROR_NONE && e != SSL_ERROR_ZERO_RETURN) {
                return fail_tls(p, "tls read", e);
            }
            n = r > 0 ? r : 0;
        } else {
            n = recv(p->fd, p->resp + p->resp_len, room, 0);
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                p->events = POLLIN;
                return ZJ_PROBE_RUNNING;
            }
            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n < 0) {
                return fail_errno(p, "read", errno);
            }
        }
        if (n == 0) {
            break; /* end of stream */
        }
        p->resp_len += (size_t)n;
        int v =
            zj_http_verdict(p->resp, p->resp_len, false, p->match, p->result, sizeof(p->result));
        if (v != ZJ_PROBE_RUNNING) {
            zj_probe_close(p);
            return v;
        }
    }
    int v = zj_http_verdict(p->resp, p->resp_len, true, p->match, p->result, sizeof(p->result));
    zj_probe_close(p);
    return v;
}

static int step_send(zj_probe_t *p)
{
    while (p->req_sent < p->req_len) {
        size_t left = p->req_len - p->req_sent;
        if (p->ssl != NULL) {
            ERR_clear_error();
            int r = SSL_write(p->ssl, p->req + p->req_sent, (int)left);
            int e = r > 0 ? SSL_ERROR_NONE : SSL_get_error(p->ssl, r);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
                p->events = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
                return ZJ_PROBE_RUNNING;
            }
            if (e != SSL_ERROR_NONE) {
                return fail_tls(p, "tls write", e);
            }
            p->req_sent += (size_t)r;
            continue;
        }
        ssize_t n = send(p->fd, p->req + p->req_sent, left, MSG_NOSIGNAL);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            p->events = POLLOUT;
            return ZJ_PROBE_RUNNING;
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return fail_errno(p, "send", errno);
        }
        p->req_sent += (size_t)n;
    }
    p->phase = PHASE_RECV;
    p->events = POLLIN;
    return step_recv(p);
}

static int step_tls(zj_probe_t *p)
{
    ERR_clear_error();
    int r = SSL_do_handshake(p->ssl);
    if (r == 1) {
        p->phase = PHASE_SEND;
        return step_send(p);
    }
    int e = SSL_get_error(p->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        p->events = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
        return ZJ_PROBE_RUNNING;
    }
    return fail_tls(p, "tls", e);
}

/* The socket is connected: TCP checks are done, HTTP(S) ones go on. */
static int connected(zj_probe_t *p, const zj_probe_target_t *t, SSL_CTX *tls)
{
    if (t->kind == ZJ_CHECK_TCP) {
        return finish(p, ZJ_PROBE_OK, "connected");
    }
    if (t->kind == ZJ_CHECK_HTTP) {
        p->phase = PHASE_SEND;
        return step_send(p);
    }
    p->ssl = tls != NULL ? SSL_new(tls) : NULL;
    if (p->ssl == NULL || SSL_set_fd(p->ssl, p->fd) != 1) {
        return finish(p, ZJ_PROBE_FAILED, "tls: cannot set up");
    }
    if (t->host != NULL && !is_ip_literal(t->host) &&
        SSL_set_tlsext_host_name(p->ssl, t->host) != 1) {
        return finish(p, ZJ_PROBE_FAILED, "tls: bad server name");
    }
    SSL_set_connect_state(p->ssl);
    p->phase = PHASE_TLS;
    return step_tls(p);
}

int zj_probe_start(zj_probe_t *p, const zj_probe_target_t *t, struct ssl_ctx_st *tls)
{
    struct sockaddr_storage ss;
    socklen_t sl = 0;

    p->fd = -1;
    p->ssl = NULL;
    p->target = t;
    p->tls = tls;
    p->phase = PHASE_CONNECT;
    p->events = POLLOUT;
    p->match = t->match;
    p->req_len = 0;
    p->req_sent = 0;
    p->resp_len = 0;
    p->result[0] = '\0';
    if (t->kind == ZJ_CHECK_HTTP || t->kind == ZJ_CHECK_HTTPS) {
        int r = build_request(p, t);
        if (r != ZJ_PROBE_RUNNING) {
            return r;
        }
    }
    memset(&ss, 0, sizeof(ss));
    if (t->family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
        sin->sin_family = AF_INET;
        sin->sin_port = htons(t->port);
        memcpy(&sin->sin_addr, t->addr, 4);
        sl = sizeof(*sin);
    } else if (t->family == AF_INET6) {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(t->port);
        memcpy(&sin6->sin6_addr, t->addr, 16);
        sl = sizeof(*sin6);
    } else {
        return finish(p, ZJ_PROBE_FAILED, "bad address family");
    }
    p->fd = socket(t->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (p->fd < 0) {
        return fail_errno(p, "socket", errno);
    }
    if (connect(p->fd, (const struct sockaddr *)&ss, sl) == 0) {
        return connected(p, t, tls);
    }
    if (errno != EINPROGRESS) {
        return fail_errno(p, "connect", errno);
    }
    return ZJ_PROBE_RUNNING;
}

static int step_connect(zj_probe_t *p)
{
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) {
        err = errno;
    }
    if (err == EINPROGRESS || err == EALREADY) {
        return ZJ_PROBE_RUNNING;
    }
    if (err != 0) {
        return fail_errno(p, "connect", err);
    }
    return connected(p, p->target, p->tls);
}

int zj_probe_step(zj_probe_t *p)
{
    switch (p->phase) {
    case PHASE_CONNECT:
        return step_connect(p);
    case PHASE_TLS:
        return step_tls(p);
    case PHASE_SEND:
        return step_send(p);
    default:
        return step_recv(p);
    }
}
