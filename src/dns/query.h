/* Query parsing: header, question and OPT of one received packet, validated once (STYLE §0.4).
 * The result holds views into the packet buffer, never copies. Hot-path safe. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What to do with a packet, decided by the parser (RFC 1035 §4.1.1, RFC 6891, RFC 9619). */
enum zj_qstatus {
    ZJ_Q_OK,      /* answer it */
    ZJ_Q_DROP,    /* no response: shorter than a header, or QR set (a response) */
    ZJ_Q_FORMERR, /* FORMERR; has_question tells whether the question may be echoed */
    ZJ_Q_NOTIMP,  /* opcode we do not implement */
    ZJ_Q_BADVERS, /* EDNS version above 0 (RFC 6891 §6.1.3) */
    ZJ_Q_REFUSED, /* an opcode we know but do not accept (NOTIFY) */
};

typedef struct zj_query {
    uint16_t id;
    uint16_t flags;
    uint16_t qdcount;
    uint8_t opcode;
    bool has_question;    /* question parsed; bytes [12, question_end) may be echoed */
    const uint8_t *qname; /* wire name inside the packet, case as sent */
    uint8_t qname_len;
    uint16_t qtype;
    uint16_t qclass;
    uint16_t question_end; /* offset just past QTYPE/QCLASS */
    /* EDNS (valid when has_edns) */
    bool has_edns;
    bool edns_do;
    bool nsid_requested;
    uint8_t edns_version;
    uint16_t udp_size; /* requestor's payload size, at least 512 (RFC 6891 §6.2.5) */
    /* EDNS Client Subnet (RFC 7871 §6), valid when has_ecs */
    bool has_ecs;
    uint8_t ecs_source;
    uint8_t ecs_scope;
    uint16_t ecs_family;
    uint8_t ecs_addr_len;
    uint8_t ecs_addr[16];
} zj_query_t;

/** The options of an OPT record's RDATA (p, len bytes) into q: NSID requested, ECS; cookies are
 *  checked for length, unknown options ignored (RFC 6891 §6.1.2). q->has_ecs must be valid on
 *  entry (a second ECS option is malformed). False when malformed. */
bool zj_query_parse_options(const uint8_t *p, uint16_t len, zj_query_t *q);

/** Parse pkt (len bytes). Always fills q as far as it got; returns an enum zj_qstatus. */
int zj_query_parse(const uint8_t *pkt, size_t len, zj_query_t *q);
