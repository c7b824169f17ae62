/* Server configuration: command-line flags and an optional config file -> one immutable
 * zj_config, validated once at start-up (STYLE §0.4).
 *
 * Config file format (--config FILE): one `key value` per line; `#` starts a comment (at the
 * start of a line or after whitespace); blank lines are ignored; the value is the rest of the
 * line with surrounding whitespace removed. Keys are the long flag names without dashes:
 *
 *     listen 127.0.0.1:5300          # repeatable
 *     listen [::1]:5300
 *     zones /etc/zonejet/zones       # repeatable; `image FILE` likewise
 *     workers 2
 *     io auto                        # auto | uring | mmsg
 *     control /run/zonejet.sock
 *     edns-payload 1232
 *     nsid 0x6e7331                  # or a plain string
 *     identity ns1.example.net
 *     version-string zonejet
 *     tcp-idle-ms 10000
 *     tcp-max-conns 512              # per worker
 *     tcp-max-conns-per-ip 64        # per worker
 *     tcp-msg-timeout-ms 2000
 *     tcp-max-inflight 16
 *     watch yes                      # a switch: yes/no (on the command line: --watch)
 *     rrl-rate 0                     # response rate limiting, 0 = off
 *     rrl-slip 2
 *     rrl-window 15
 *     rrl-ipv4-prefix 24
 *     rrl-ipv6-prefix 56
 *     uring-send sqe                 # sqe | sendmmsg: UDP send path of the io_uring backend
 *     coalesce-us 150                # io_uring: wait up to this long for a batch (0: never)
 *     coalesce-min-qps 5000          # ... when a worker sees more than this many queries/s
 *     answer-table yes               # precomputed answers (no: general path only)
 *     bench-echo no                  # benchmark floor only
 *     geoip /var/lib/GeoIP/GeoLite2-City.mmdb   # geolocation database (MaxMind format)
 *     seed 42                        # fixed base seed of the workers' random choices
 *
 * Flags on the command line are applied after the file: a single-valued flag overrides the
 * file's value, a repeatable one (listen, image, zones) adds to the file's list. With no listen
 * address the server listens on 127.0.0.1:5353; with no image and no zones it serves the bundled
 * zones directory (<dir of the binary>/../zones, else ./zones). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dns/rrl.h"
#include "net/sock.h"

typedef enum zj_io_kind {
    ZJ_IO_AUTO = 0,
    ZJ_IO_URING = 1,
    ZJ_IO_MMSG = 2,
} zj_io_kind_t;

/* Upper bounds on configured values, each with its reason. */
#define ZJ_CONFIG_MAX_WORKERS 256     /* more than any box we target; sizes the epoch table */
#define ZJ_CONFIG_MAX_LISTENS 32      /* each costs 2 fds per worker */
#define ZJ_CONFIG_MAX_NSID 128        /* RFC 5001 sets no limit; keeps NSID well inside 512 B */
#define ZJ_CONFIG_MIN_PAYLOAD 512     /* RFC 6891 §6.2.5: values below 512 are treated as 512 */
#define ZJ_CONFIG_MAX_PAYLOAD 4096    /* the UDP tx slot size; above it fragments anyway */
#define ZJ_CONFIG_MAX_TCP_CONNS 65536 /* per worker; fd limits bite long before */
#define ZJ_CONFIG_DEFAULT_LISTEN "127.0.0.1:5353"
/* io_uring wake-up coalescing (src/net/io_uring.c): above min-qps a worker waits for a batch
 * of datagrams or coalesce-us, whichever comes first. 150 µs measured best on 2 cores: at
 * 50k q/s CPU per query fell 14% from 100 µs with average latency 0.18 ms (200 µs: 0.26 ms). */
#define ZJ_CONFIG_DEFAULT_COALESCE_US 150
#define ZJ_CONFIG_MAX_COALESCE_US 10000
#define ZJ_CONFIG_DEFAULT_COALESCE_MIN_QPS 5000
#define ZJ_CONFIG_DEFAULT_TCP_IDLE_MS 10000 /* RFC 7766 §6.2.3 suggests seconds, not minutes */
#define ZJ_CONFIG_DEFAULT_TCP_MAX_CONNS 512
#define ZJ_CONFIG_DEFAULT_EDNS_PAYLOAD 1232 /* DNS flag day 2020 */
/* A client that starts a message must finish it within this: a real client sends a query in one
 * segment; 2 s absorbs a lost segment's retransmission (RTO 1 s) with room to spare. */
#define ZJ_CONFIG_DEFAULT_TCP_MSG_TIMEOUT_MS 2000
/* Per worker, per client address: enough for a resolver farm behind one NAT address, far below
 * tcp-max-conns so one address cannot take a worker's whole table. */
#define ZJ_CONFIG_DEFAULT_TCP_MAX_CONNS_PER_IP 64
/* Pipelined queries per connection whose answers are not yet written (RFC 7766 §6.2.1.1 allows
 * pipelining); 16 keeps a resolver's pipeline full while a non-reading client can make the
 * worker hold at most 16 answers (and its fixed 128 KiB write buffer) for it. */
#define ZJ_CONFIG_DEFAULT_TCP_MAX_INFLIGHT 16
#define ZJ_CONFIG_MAX_TCP_INFLIGHT 1024 /* the write buffer holds two 64 KiB answers anyway */

typedef struct zj_config {
    zj_addr_t *listens; /* n_listens >= 1 after a successful parse */
    size_t n_listens;
    char **images;
    size_t n_images;
    char **zones;
    size_t n_zones;
    unsigned workers; /* 0: one per available CPU (decided by the server) */
    zj_io_kind_t io;
    char *control_path; /* NULL: no control socket */
    char *config_path;  /* the --config file, or NULL */
    uint16_t edns_payload;
    uint8_t *nsid; /* NULL: no NSID */
    uint16_t nsid_len;
    char *identity;                /* NULL: CH id.server queries are refused */
    char *version_string;          /* NULL: CH version.bind queries are refused */
    uint32_t tcp_idle_ms;          /* close a connection with no traffic for this long */
    uint32_t tcp_max_conns;        /* per worker; at the cap the least recently active goes */
    uint32_t tcp_max_conns_per_ip; /* per worker and client address; over it: closed at once */
    uint32_t tcp_msg_timeout_ms;   /* first byte of a message (length prefix) to its last */
    uint32_t tcp_max_inflight;     /* per connection: queries taken but not fully answered */
    zj_rrl_cfg_t rrl;              /* response rate limiting: rate (0 = off), slip, window_s,
                                    * ipv4_prefix, ipv6_prefix; checked with zj_rrl_cfg_check */
    char *geoip_path;              /* --geoip: MaxMind-format database, or NULL (geo policies
                                    * answer their default set) */
    uint64_t seed;                 /* --seed: base seed of the workers' generators ... */
    bool has_seed;                 /* ... when set; otherwise drawn from getrandom */
    bool is_watch;                 /* --watch: inotify on the image files' directories */
    bool is_uring_sendmmsg;        /* --uring-send sendmmsg: io_uring receives, sendmmsg sends */
    uint32_t coalesce_us;          /* io_uring wake-up coalescing delay; 0: wake per datagram */
    uint32_t coalesce_min_qps;     /* ... used above this rate per worker */
    bool is_answer_table;          /* answer-table (default yes): precomputed answers per set */
    bool is_bench_echo;            /* --bench-echo: answer each query with itself (QR set) */
    bool is_default_zones;         /* zones came from the bundled default, not from the user */
} zj_config_t;

/** What zj_config_parse found besides a configuration. */
enum {
    ZJ_CONFIG_RUN = 0,     /* cfg is ready to serve */
    ZJ_CONFIG_HELP = 1,    /* --help: print zj_config_usage(), exit 0 */
    ZJ_CONFIG_VERSION = 2, /* --version */
};

/** Parse argv (argv[0] is the program name) and the --config file it names into cfg (which the
 *  caller zero-initialises or not; it is overwritten). On success returns ZJ_CONFIG_RUN/HELP/
 *  VERSION and cfg owns heap copies of every string (release with zj_config_fini). On a bad
 *  flag or config line returns ZJ_EINVAL (or ZJ_ENOENT/ZJ_EIO for an unreadable file), writes
 *  one line ("file:line: reason" for the file, "flag: reason" for argv) to err, and leaves cfg
 *  empty (zj_config_fini is still safe). Start-up only; not thread-safe (uses getopt_long). */
int zj_config_parse(zj_config_t *cfg, int argc, char **argv, char *err, size_t err_cap);

/** Release everything cfg owns; cfg becomes empty. Accepts an empty or zeroed cfg. */
void zj_config_fini(zj_config_t *cfg);

/** Usage text (static). */
const char *zj_config_usage(void);
