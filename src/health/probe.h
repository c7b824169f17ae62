/* One health probe in flight, and the HTTP verdict on a response (internal to src/health).
 *
 * A probe is a small state machine on one non-blocking socket: connect, then for HTTPS the TLS
 * handshake, then for HTTP(S) the request and the response. The checker thread (health.c)
 * polls the socket for p->events and calls zj_probe_step when it is ready; the deadline is the
 * caller's business. Everything a probe reads is bounded by the buffers below.
 *
 * Threads: a probe belongs to the thread that started it (the checker thread). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ssl_st;
struct ssl_ctx_st;

/* Request buffer: request line, Host, User-Agent and Connection headers. A path or host that
 * does not fit is a configuration error reported as the probe's result. */
#define ZJ_PROBE_REQ_CAP 4096u
/* Response bytes read at most: status line and headers (8 KiB, the usual server limit for a
 * request's headers, so a generous bound for a response's) plus the body bytes the match is
 * searched in (ZJ_CHECK_BODY_MATCH_BYTES) plus chunk-size lines. Whatever comes after is never
 * read: the connection is closed. */
#define ZJ_PROBE_HEAD_CAP 8192u
#define ZJ_PROBE_RESP_CAP (ZJ_PROBE_HEAD_CAP + 5120u + 1024u)
/* Result text: "connect refused", "HTTP 503", "timeout (tls)", "tls: <OpenSSL reason>"... */
#define ZJ_PROBE_RESULT_CAP 64u

typedef struct zj_probe_target {
    uint16_t kind; /* ZJ_CHECK_TCP, _HTTP or _HTTPS */
    uint16_t port;
    int family; /* AF_INET or AF_INET6 */
    uint8_t addr[16];
    const char *path;  /* NULL or "": "/" */
    const char *host;  /* Host header and TLS SNI; NULL: the address */
    const char *match; /* searched in the body; NULL: the status decides alone */
} zj_probe_target_t;

enum zj_probe_status {
    ZJ_PROBE_RUNNING = 0,
    ZJ_PROBE_OK = 1,
    ZJ_PROBE_FAILED = 2,
};

typedef struct zj_probe {
    int fd;
    struct ssl_st *ssl;              /* HTTPS only */
    const zj_probe_target_t *target; /* the caller's, outlives the probe */
    struct ssl_ctx_st *tls;
    int phase;
    short events; /* what to poll fd for while RUNNING */
    const char *match;
    size_t req_len;
    size_t req_sent;
    size_t resp_len;
    char result[ZJ_PROBE_RESULT_CAP]; /* set when the probe ends */
    char req[ZJ_PROBE_REQ_CAP];
    uint8_t resp[ZJ_PROBE_RESP_CAP];
} zj_probe_t;

/** Start probing t: open the socket and begin connecting. tls is the client context for HTTPS
 *  (certificates are not verified; see probe.c). t and its strings must outlive the probe.
 *  Returns ZJ_PROBE_RUNNING (poll p->fd for p->events, then call zj_probe_step) or the result
 *  (p->result says why; the probe is already closed). */
int zj_probe_start(zj_probe_t *p, const zj_probe_target_t *t, struct ssl_ctx_st *tls);

/** Advance after poll reported p->fd ready. Returns as zj_probe_start; a finished probe is
 *  closed. */
int zj_probe_step(zj_probe_t *p);

/** Close the probe's socket and TLS state (idempotent). */
void zj_probe_close(zj_probe_t *p);

/** What the probe is waiting for, for a timeout's text: "connect", "tls", "send", "response". */
const char *zj_probe_phase_name(const zj_probe_t *p);

/** Route 53's HTTP rule on the len response bytes received so far: healthy on status 2xx or
 *  3xx and, when match is not NULL, match found in the first ZJ_CHECK_BODY_MATCH_BYTES bytes
 *  of the body (a chunked body is decoded first). is_end says no more bytes will come (end of
 *  stream, or the buffer is full). Returns ZJ_PROBE_RUNNING when more bytes could change the
 *  verdict, else ZJ_PROBE_OK or ZJ_PROBE_FAILED with the reason ("HTTP 503", "match not found",
 *  "bad status line"...) in why. */
int zj_http_verdict(const uint8_t *resp, size_t len, bool is_end, const char *match, char *why,
                    size_t cap);
