/* Response Rate Limiting (RRL): per (client prefix, response class, name) credit buckets that
 * decide whether a UDP response is sent, dropped, or "slipped" (sent truncated, TC=1, so that a
 * real client retries over TCP). Design and thread rules are in the head comment of rrl.c.
 * Hot-path safe: zj_rrl_decide never allocates, locks, logs or makes a system call. */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* What to do with one response. */
enum zj_rrl_result {
    ZJ_RRL_PASS = 0, /* send it as built */
    ZJ_RRL_DROP = 1, /* send nothing */
    ZJ_RRL_SLIP = 2, /* send a truncated response instead: header + question, TC=1, no records */
};

/* The response class, one bucket family each. The key name the caller passes for each class
 * follows BIND's RRL, so that an attacker cannot spread one flood over many buckets by varying
 * the part of the query that does not change the answer. */
enum zj_rrl_cls {
    ZJ_RRL_CLS_POSITIVE = 0, /* answer records: key = qname */
    ZJ_RRL_CLS_NODATA = 1,   /* NOERROR, empty answer: key = qname */
    ZJ_RRL_CLS_NXDOMAIN = 2, /* key = zone apex (random subdomains must share one bucket) */
    ZJ_RRL_CLS_REFERRAL = 3, /* delegation: key = zone cut */
    ZJ_RRL_CLS_WILDCARD = 4, /* synthesised from a wildcard: key = the wildcard owner (*.x) */
    ZJ_RRL_CLS_ERROR = 5,    /* FORMERR, REFUSED, NOTIMP, SERVFAIL...: key may be empty */
    ZJ_RRL_CLS_COUNT = 6,
};

/* Defaults and bounds (zj_rrl_cfg_default, zj_rrl_cfg_check). */
enum {
    ZJ_RRL_WINDOW_DEFAULT = 15,      /* BIND's default window */
    ZJ_RRL_WINDOW_MAX = 3600,        /* BIND's bound: an hour of debt is already extreme */
    ZJ_RRL_RATE_MAX = 1000000,       /* per bucket per second; far above any sane setting, and
                                      * rate * (window + 1) must still fit the int32 credit */
    ZJ_RRL_SLIP_DEFAULT = 2,         /* BIND and Knot default: half the limited responses slip */
    ZJ_RRL_SLIP_MAX = 100,           /* Knot's bound */
    ZJ_RRL_IPV4_PREFIX_DEFAULT = 24, /* BIND/Knot: one /24 is one client network */
    ZJ_RRL_IPV6_PREFIX_DEFAULT = 56, /* BIND: a typical end-site assignment */
    ZJ_RRL_TABLE_DEFAULT = 65536,    /* 1 MiB of 16-byte buckets */
    ZJ_RRL_TABLE_MAX = 1 << 24,      /* 256 MiB: a bound on a config typo, not a tuning hint */
};

/** RRL settings, fixed at start-up. */
typedef struct zj_rrl_cfg {
    uint32_t rate;       /* responses per second allowed per bucket; 0 = RRL off */
    uint32_t window_s;   /* seconds of history: credit goes at most rate * window_s negative,
                          * so a flood stays limited for up to window_s seconds after it stops */
    uint32_t slip;       /* every slip-th limited response slips; 0 = never, 1 = always */
    uint8_t ipv4_prefix; /* source addresses are grouped by this many leading bits (0..32) */
    uint8_t ipv6_prefix; /* ... (0..128); IPv4-mapped IPv6 sources use ipv4_prefix */
    uint32_t table_size; /* number of buckets, a power of two (1..ZJ_RRL_TABLE_MAX) */
    uint64_t hash_seed;  /* 0 (always, in the server): a random seed drawn at creation. Tests
                          * set it so that which of their keys share a slot is reproducible. */
} zj_rrl_cfg_t;

typedef struct zj_rrl zj_rrl_t;

/** Fill cfg with the defaults above; rate is 0 (off) until the config sets it. */
void zj_rrl_cfg_default(zj_rrl_cfg_t *cfg);

/** Validate cfg once, at config load. Returns ZJ_OK, or ZJ_EINVAL with a one-line reason written
 *  to err (errcap bytes; err may be NULL). rate 0 is valid (RRL off). */
int zj_rrl_cfg_check(const zj_rrl_cfg_t *cfg, char *err, size_t errcap);

/** Create the shared table: allocates and touches table_size * 16 bytes once and draws a random
 *  hash seed. Returns NULL when cfg->rate is 0 (RRL off: callers skip zj_rrl_decide), when cfg
 *  fails zj_rrl_cfg_check, or when memory runs out; check the config first to tell these apart.
 *  Start-up only; the result is owned by the caller and freed with zj_rrl_free. */
zj_rrl_t *zj_rrl_new(const zj_rrl_cfg_t *cfg);

/** Free a table from zj_rrl_new (NULL is accepted). No worker may still use it. */
void zj_rrl_free(zj_rrl_t *rrl);

/** Account one response about to be sent over UDP and say what to do with it.
 *  src: the client's address (AF_INET or AF_INET6; anything else, or NULL, is never limited).
 *  cls: an enum zj_rrl_cls. key_name/key_len: a wire-format name chosen per class (see the enum);
 *  it is compared case-insensitively; key_len 0 is allowed (key_name may then be NULL) and bytes
 *  past 255 are ignored. now_ms: a monotonic clock in milliseconds, from the caller (the worker
 *  reads it once per batch). Returns an enum zj_rrl_result.
 *  Call it only for UDP: a TCP client has proved its address. Any number of workers may call it at
 *  once on one table; races cost precision, never safety. Hot-path safe. */
int zj_rrl_decide(zj_rrl_t *rrl, const struct sockaddr *src, int cls, const uint8_t *key_name,
                  size_t key_len, uint64_t now_ms);
