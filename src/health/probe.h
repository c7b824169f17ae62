/* One health probe in flight, and the HTTP verdict on a response (internal to src/health).
 *
 * A probe is a small state machine on one non-blocking socket: connect, then for HTTPS the TLS
 * handshake, then for HTTP(S) the request and the response. The checker thread (health.c)
 * polls the socket for p->events and calls zj_probe_step when it is ready; the deadline is the
 * caller's business. Everything a probe keeps is bounded by the buffers below, and what it reads
 * by them and ZJ_PROBE_CHUNK_LINE_MAX.
 *
 * The response is read incrementally (zj_http_init/zj_http_feed) rather than judged on one
 * buffer of raw bytes, so that headers and chunk-size lines cannot eat into the body window.
 *
 * Threads: a probe belongs to the thread that started it (the checker thread). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "zonejet/image.h"

struct ssl_st;
struct ssl_ctx_st;

/* Request buffer: request line, Host, User-Agent and Connection headers. A path or host that
 * does not fit is a configuration error reported as the probe's result. */
#define ZJ_PROBE_REQ_CAP 4096u
/* Status line and headers of a response: at most 8 KiB (the usual server limit for a request's
 * headers, so a generous bound for a response's). With match=, a longer header block makes the
 * check unhealthy ("headers too long"); without, only the status line is read. */
#define ZJ_PROBE_HEAD_CAP 8192u
/* A chunk-size line (size and extensions, RFC 9112 §7.1.1) longer than this is malformed: the
 * body ends there. With the body window it bounds the bytes a chunked response makes us read
 * (5,120 one-byte chunks of at most this much overhead each). */
#define ZJ_PROBE_CHUNK_LINE_MAX 1024u
/* Bytes taken from the socket per read (a buffer on the checker thread's stack). */
#define ZJ_PROBE_READ_CAP 4096u
/* Result text: "connect refused", "HTTP 503", "timeout (tls)", "tls: <OpenSSL reason>"... */
#define ZJ_PROBE_RESULT_CAP 64u

/* An HTTP response read as it arrives: the status line and headers kept in head (at most
 * ZJ_PROBE_HEAD_CAP bytes), the body decoded (chunked or not) into body, a window of exactly its
 * first ZJ_CHECK_BODY_MATCH_BYTES bytes whatever the size of the headers or of the chunks, in
 * which match is searched. Whatever comes after is never read. Fields are the reader's own. */
typedef struct zj_http_resp {
    const char *match; /* NULL: the status line decides alone */
    size_t match_len;
    int status; /* 0 until the status line is complete */
    bool is_head_done;
    bool is_chunked;
    bool has_length;
    bool is_body_done; /* the body ended, or the window is full */
    uint64_t left;     /* Content-Length body bytes to come; chunked: of the current chunk */
    int chunk_state;
    unsigned chunk_digits;
    unsigned chunk_line; /* bytes of the current chunk-size line */
    size_t head_len;
    size_t body_len;
    uint8_t head[ZJ_PROBE_HEAD_CAP];
    uint8_t body[ZJ_CHECK_BODY_MATCH_BYTES];
} zj_http_resp_t;

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
    size_t req_len;
    size_t req_sent;
    char result[ZJ_PROBE_RESULT_CAP]; /* set when the probe ends */
    char req[ZJ_PROBE_REQ_CAP];
    zj_http_resp_t resp;
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

/** Start reading a response; match as zj_probe_target_t.match (the caller's, outlives r). */
void zj_http_init(zj_http_resp_t *r, const char *match);

/** Route 53's HTTP rule on the next len bytes of the response (p may be NULL when len is 0):
 *  healthy on status 2xx or 3xx and, when match is not NULL, match found in the first
 *  ZJ_CHECK_BODY_MATCH_BYTES bytes of the body (a chunked body is decoded first). is_end says
 *  no more bytes will come (end of stream). Returns ZJ_PROBE_RUNNING when more bytes could
 *  change the verdict, else ZJ_PROBE_OK or ZJ_PROBE_FAILED with the reason ("HTTP 503", "match
 *  not found", "bad status line", "HTTP 200, headers too long"...) in why; once it has
 *  returned a verdict, r must not be fed again. */
int zj_http_feed(zj_http_resp_t *r, const uint8_t *p, size_t len, bool is_end, char *why,
                 size_t cap);
