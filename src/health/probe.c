/* Health probes: TCP connect, HTTP/1.1 GET and the same over TLS, on non-blocking sockets
 * (see probe.h for the state machine and its bounds).
 *
 * The request is `GET <path> HTTP/1.1` with Host (the check's host, else its address),
 * User-Agent naming zonejet and `Connection: close`, so the server ends the response by closing
 * and no keep-alive state is needed. Without a match string the status line decides and the
 * connection is closed as soon as it has arrived; with one, the body is read until the match is
 * found, ZJ_CHECK_BODY_MATCH_BYTES of it have been seen, or the server closes.
 *
 * The response is parsed as it arrives (zj_http_feed): the header block is kept apart (up to
 * ZJ_PROBE_HEAD_CAP; longer is unhealthy) and the body, chunked or not, is decoded into its own
 * window of exactly ZJ_CHECK_BODY_MATCH_BYTES, so neither large headers nor small chunks shrink
 * what match= is searched in. Rejected: buffering the raw response and decoding it afterwards
 * (chunk-size lines and headers would share, and so eat into, the body's buffer).
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
#include "util/text.h"

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

/* Where a chunked body's decoder stands (RFC 9112 §7.1). */
enum chunk_state {
    CHUNK_SIZE = 0, /* hex digits of the chunk size */
    CHUNK_LINE,     /* the rest of the size line: extensions, up to its LF */
    CHUNK_DATA,     /* r->left data bytes to come */
    CHUNK_DATA_CR,  /* the CRLF after the data */
    CHUNK_DATA_LF,
};

/* Append body bytes to the window, at most what the window and the body have left. */
static size_t body_take(zj_http_resp_t *r, const uint8_t *p, size_t len, uint64_t limit)
{
    size_t room = sizeof(r->body) - r->body_len;
    size_t take = len < room ? len : room;
    take = take < limit ? take : (size_t)limit;
    memcpy(r->body + r->body_len, p, take);
    r->body_len += take;
    if (r->body_len == sizeof(r->body)) {
        r->is_body_done = true; /* the window is full: nothing later is searched */
    }
    return take;
}

/* One step of the chunked decoder on p[0, len) (len >= 1); returns the bytes it consumed.
 * Malformed framing ends the body: what was decoded is all there will be. */
static size_t dechunk_step(zj_http_resp_t *r, const uint8_t *p, size_t len)
{
    switch (r->chunk_state) {
    case CHUNK_SIZE: {
        int v = zj_hex_digit((char)p[0]);
        if (v < 0) {
            r->is_body_done = r->chunk_digits == 0; /* a size line without a size */
            r->chunk_state = CHUNK_LINE;
            return 0;
        }
        if (r->chunk_digits == 8) { /* a chunk over 4 GiB: malformed for our purpose */
            r->is_body_done = true;
            return 0;
        }
        r->left = r->left * 16 + (uint64_t)v;
        r->chunk_digits++;
        r->chunk_line++;
        return 1;
    }
    case CHUNK_LINE:
        if (p[0] == '\n') {
            r->chunk_state = CHUNK_DATA;
            r->is_body_done = r->left == 0; /* the last chunk; trailers are not read */
            return 1;
        }
        if (++r->chunk_line > ZJ_PROBE_CHUNK_LINE_MAX) {
            r->is_body_done = true;
        }
        return 1;
    case CHUNK_DATA: {
        size_t n = body_take(r, p, len, r->left);
        r->left -= n;
        if (r->left == 0) {
            r->chunk_state = CHUNK_DATA_CR;
        }
        return n;
    }
    case CHUNK_DATA_CR:
    case CHUNK_DATA_LF:
        if (p[0] == '\r' && r->chunk_state == CHUNK_DATA_CR) {
            r->chunk_state = CHUNK_DATA_LF;
            return 1;
        }
        if (p[0] != '\n') {
            r->is_body_done = true;
            return 0;
        }
        r->chunk_state = CHUNK_SIZE;
        r->chunk_digits = 0;
        r->chunk_line = 0;
        return 1;
    default:
        r->is_body_done = true;
        return 0;
    }
}

/* Body bytes p[0, len) as they came off the wire. */
static void body_feed(zj_http_resp_t *r, const uint8_t *p, size_t len)
{
    size_t i = 0;
    while (i < len && !r->is_body_done) {
        if (!r->is_chunked) {
            /* takes all it can: the rest lies past the window or past the body */
            size_t n = body_take(r, p + i, len - i, r->has_length ? r->left : UINT64_MAX);
            if (r->has_length) {
                r->left -= n;
                r->is_body_done |= r->left == 0;
            }
            break;
        }
        i += dechunk_step(r, p + i, len - i);
    }
}

void zj_http_init(zj_http_resp_t *r, const char *match)
{
    r->match = match;
    r->match_len = match != NULL ? strlen(match) : 0;
    r->status = 0;
    r->is_head_done = false;
    r->is_chunked = false;
    r->has_length = false;
    r->is_body_done = false;
    r->left = 0;
    r->chunk_state = CHUNK_SIZE;
    r->chunk_digits = 0;
    r->chunk_line = 0;
    r->head_len = 0;
    r->body_len = 0;
}

/* The status line and headers from p[0, len); *used says how many bytes they took (the rest
 * is body). Returns a verdict, or ZJ_PROBE_RUNNING with r->is_head_done once the headers are
 * complete (or more bytes are needed). */
static int head_feed(zj_http_resp_t *r, const uint8_t *p, size_t len, bool is_end, char *why,
                     size_t cap, size_t *used)
{
    size_t room = sizeof(r->head) - r->head_len;
    size_t take = len < room ? len : room;
    /* a CRLF or CRLFCRLF may straddle the previous bytes and these */
    size_t from = r->head_len > 3 ? r->head_len - 3 : 0;
    if (take > 0) {
        memcpy(r->head + r->head_len, p, take);
        r->head_len += take;
    }
    *used = take;
    bool is_full = r->head_len == sizeof(r->head);
    if (r->status == 0) {
        const uint8_t *eol = memmem(r->head + from, r->head_len - from, "\r\n", 2);
        if (eol == NULL) {
            if (!is_end && !is_full) {
                return ZJ_PROBE_RUNNING;
            }
            snprintf(why, cap, "%s", r->head_len == 0 ? "empty response" : "bad status line");
            return ZJ_PROBE_FAILED;
        }
        int status = parse_status(r->head, (size_t)(eol - r->head));
        if (status < 0) {
            snprintf(why, cap, "bad status line");
            return ZJ_PROBE_FAILED;
        }
        r->status = status;
        if (status < 200 || status > 399) {
            snprintf(why, cap, "HTTP %d", status);
            return ZJ_PROBE_FAILED;
        }
        if (r->match == NULL) {
            snprintf(why, cap, "HTTP %d", status);
            return ZJ_PROBE_OK;
        }
    }
    /* The header block ends at the first empty line; the status line's CRLF may be its start. */
    const uint8_t *hend = memmem(r->head + from, r->head_len - from, "\r\n\r\n", 4);
    if (hend == NULL) {
        if (is_full) {
            snprintf(why, cap, "HTTP %d, headers too long", r->status);
            return ZJ_PROBE_FAILED;
        }
        if (is_end) {
            snprintf(why, cap, "HTTP %d, headers cut short", r->status);
            return ZJ_PROBE_FAILED;
        }
        return ZJ_PROBE_RUNNING;
    }
    const uint8_t *eol = memmem(r->head, r->head_len, "\r\n", 2); /* the status line's end */
    http_head_t head;
    parse_headers(eol + 2, (size_t)(hend - eol), &head);
    r->is_head_done = true;
    r->is_chunked = head.is_chunked;
    r->has_length = head.has_length && !head.is_chunked; /* RFC 9112 §6.3: chunked wins */
    r->left = r->has_length ? head.length : 0;
    r->is_body_done = r->has_length && r->left == 0;
    /* bytes of this read past the header block are body: give them back */
    size_t head_end = (size_t)(hend + 4 - r->head);
    *used -= r->head_len - head_end;
    r->head_len = head_end;
    return ZJ_PROBE_RUNNING;
}

int zj_http_feed(zj_http_resp_t *r, const uint8_t *p, size_t len, bool is_end, char *why,
                 size_t cap)
{
    if (!r->is_head_done) {
        size_t used = 0;
        int v = head_feed(r, p, len, is_end, why, cap, &used);
        if (v != ZJ_PROBE_RUNNING || !r->is_head_done) {
            return v;
        }
        if (used > 0) {
            p += used;
            len -= used;
        }
    }
    size_t before = r->body_len;
    if (len > 0) {
        body_feed(r, p, len);
    }
    /* search only where a match could end in the new bytes */
    size_t from = before >= r->match_len ? before - r->match_len + 1 : 0;
    from = r->match_len == 0 ? 0 : from;
    if (r->match_len == 0 ||
        (r->body_len >= from + r->match_len &&
         memmem(r->body + from, r->body_len - from, r->match, r->match_len) != NULL)) {
        snprintf(why, cap, "HTTP %d, match found", r->status);
        return ZJ_PROBE_OK;
    }
    if (!r->is_body_done && !is_end) {
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
    uint8_t buf[ZJ_PROBE_READ_CAP];
    /* Each read either ends with a verdict or feeds the reader, whose head, body window and
     * chunk-line bounds end the response after a bounded number of bytes. */
    for (;;) {
        ssize_t n = 0;
        if (p->ssl != NULL) {
            ERR_clear_error();
            int r = SSL_read(p->ssl, buf, (int)sizeof(buf));
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
            n = recv(p->fd, buf, sizeof(buf), 0);
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
        int v = zj_http_feed(&p->resp, n > 0 ? buf : NULL, (size_t)n, n == 0, p->result,
                             sizeof(p->result));
        if (v != ZJ_PROBE_RUNNING || n == 0) {
            zj_probe_close(p);
            return v;
        }
    }
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
    p->req_len = 0;
    p->req_sent = 0;
    zj_http_init(&p->resp, t->match);
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
