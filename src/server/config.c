/* Flags and config file -> zj_config (see config.h for the file format).
 *
 * Both sources go through one table of keys and one setter (apply_key), so a flag and its
 * config-file line can never disagree about syntax or limits. The file is read first, argv
 * second; single-valued keys overwrite, repeatable keys append. The parser is hand-written
 * rather than getopt_long: getopt keeps global state (tests parse many argvs in one process)
 * and would reorder argv. */
#include "server/config.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "zonejet/compiler.h"
#include "zonejet/err.h"
#include "dns/rrl.h"
#include "util/text.h"

/* Longest config-file line: a path (PATH_MAX) plus key and slack. Longer lines are an error
 * rather than being silently split. */
#define CONFIG_LINE_CAP (PATH_MAX + 128)

typedef enum key_id {
    KEY_LISTEN,
    KEY_IMAGE,
    KEY_ZONES,
    KEY_WORKERS,
    KEY_IO,
    KEY_URING_SEND,
    KEY_COALESCE_US,
    KEY_COALESCE_MIN_QPS,
    KEY_CONTROL,
    KEY_CONFIG,
    KEY_EDNS_PAYLOAD,
    KEY_NSID,
    KEY_IDENTITY,
    KEY_VERSION_STRING,
    KEY_TCP_IDLE_MS,
    KEY_TCP_MAX_CONNS,
    KEY_TCP_MSG_TIMEOUT_MS,
    KEY_TCP_MAX_CONNS_PER_IP,
    KEY_TCP_MAX_INFLIGHT,
    KEY_WATCH,
    KEY_BENCH_ECHO,
    KEY_ANSWER_TABLE,
    KEY_RRL_RATE,
    KEY_RRL_SLIP,
    KEY_RRL_WINDOW,
    KEY_RRL_IPV4_PREFIX,
    KEY_RRL_IPV6_PREFIX,
    KEY_GEOIP,
    KEY_SEED,
} key_id_t;

typedef struct key_def {
    const char *name;
    key_id_t id;
    bool is_switch; /* on the command line takes no value ("--watch"; "--watch=no" also works);
                     * in the file takes yes/no */
} key_def_t;

static const key_def_t keys[] = {
    {"listen", KEY_LISTEN, false},
    {"image", KEY_IMAGE, false},
    {"zones", KEY_ZONES, false},
    {"workers", KEY_WORKERS, false},
    {"io", KEY_IO, false},
    {"uring-send", KEY_URING_SEND, false},
    {"coalesce-us", KEY_COALESCE_US, false},
    {"coalesce-min-qps", KEY_COALESCE_MIN_QPS, false},
    {"control", KEY_CONTROL, false},
    {"config", KEY_CONFIG, false},
    {"edns-payload", KEY_EDNS_PAYLOAD, false},
    {"nsid", KEY_NSID, false},
    {"identity", KEY_IDENTITY, false},
    {"version-string", KEY_VERSION_STRING, false},
    {"tcp-idle-ms", KEY_TCP_IDLE_MS, false},
    {"tcp-max-conns", KEY_TCP_MAX_CONNS, false},
    {"tcp-msg-timeout-ms", KEY_TCP_MSG_TIMEOUT_MS, false},
    {"tcp-max-conns-per-ip", KEY_TCP_MAX_CONNS_PER_IP, false},
    {"tcp-max-inflight", KEY_TCP_MAX_INFLIGHT, false},
    {"watch", KEY_WATCH, true},
    {"bench-echo", KEY_BENCH_ECHO, true},
    {"answer-table", KEY_ANSWER_TABLE, true},
    {"rrl-rate", KEY_RRL_RATE, false},
    {"rrl-slip", KEY_RRL_SLIP, false},
    {"rrl-window", KEY_RRL_WINDOW, false},
    {"rrl-ipv4-prefix", KEY_RRL_IPV4_PREFIX, false},
    {"rrl-ipv6-prefix", KEY_RRL_IPV6_PREFIX, false},
    {"geoip", KEY_GEOIP, false},
    {"seed", KEY_SEED, false},
};

static const char usage_text[] =
    "usage: zonejetd --listen ADDR:PORT [--listen ...]\n"
    "                (--image FILE [--image ...] | --zones PATH [--zones ...])\n"
    "                [--workers N] [--io auto|uring|mmsg] [--uring-send sqe|sendmmsg]\n"
    "                [--coalesce-us N] [--coalesce-min-qps N]\n"
    "                [--control SOCKET_PATH]\n"
    "                [--config FILE] [--edns-payload N] [--nsid STRING|0xHEX]\n"
    "                [--identity STR] [--version-string STR] [--tcp-idle-ms N]\n"
    "                [--tcp-max-conns N] [--tcp-max-conns-per-ip N] [--tcp-msg-timeout-ms N]\n"
    "                [--tcp-max-inflight N] [--watch] [--rrl-rate N] [--rrl-slip N]\n"
    "                [--rrl-window S] [--rrl-ipv4-prefix N] [--rrl-ipv6-prefix N]\n"
    "                [--geoip FILE] [--seed N] [--answer-table=no]\n"
    "                [--bench-echo]\n"
    "  ADDR:PORT is A.B.C.D:PORT or [IPV6]:PORT. With no arguments, serves the bundled zones\n"
    "  on " ZJ_CONFIG_DEFAULT_LISTEN ". The config file holds `key value` lines with the flag\n"
    "  names as keys; command-line flags override (or, for repeatable ones, add to) it.\n"
    "  Each --image and --zones path is one source; reload them at run time with SIGHUP or\n"
    "  zonejet-ctl --control SOCKET reload [PATH...] | add PATH | remove PATH|ZONE | status.\n"
    "  --uring-send sqe|sendmmsg  how the io_uring backend sends UDP replies: one sendmsg SQE\n"
    "                           each (sqe, the default) or one sendmmsg per batch\n"
    "  --coalesce-us N          io_uring: above --coalesce-min-qps queries/s per worker, wait\n"
    "                           up to N µs for a batch of datagrams before answering\n"
    "                           (default 150; 0: wake for every datagram)\n"
    "  --coalesce-min-qps N     rate per worker above which it coalesces (default 5000)\n"
    "  --watch          re-read an image file when it is replaced in its directory (inotify)\n"
    "  --tcp-idle-ms N          close a TCP connection idle this long (default 10000)\n"
    "  --tcp-max-conns N        TCP connections per worker; the oldest idle is closed for a\n"
    "                           new one (default 512)\n"
    "  --tcp-max-conns-per-ip N TCP connections per client address per worker; more are\n"
    "                           closed at once (default 64)\n"
    "  --tcp-msg-timeout-ms N   a started TCP message must be complete within N ms (2000)\n"
    "  --tcp-max-inflight N     queries per TCP connection whose answers are not yet written;\n"
    "                           at the limit the connection is not read (default 16)\n"
    "  --rrl-rate N             response rate limit per client prefix and answer, per second\n"
    "                           (0 = off, the default); --rrl-slip N (2): every Nth limited\n"
    "                           response is sent truncated; --rrl-window S (15) seconds of\n"
    "                           history; --rrl-ipv4-prefix N (24), --rrl-ipv6-prefix N (56)\n"
    "  --geoip FILE             MaxMind-format database (GeoLite2, DB-IP .mmdb) locating\n"
    "                           clients for geo and latency policies; re-read by `reload`\n"
    "                           when the file changed (default: none, geo policies answer\n"
    "                           their default set)\n"
    "  --seed N                 fixed base seed of the workers' random choices (weighted,\n"
    "                           multivalue), for reproducible tests (default: random)\n"
    "  --answer-table=no        answer every query through the general answer path instead of\n"
    "                           the table of precomputed answers (docs/performance.md); for\n"
    "                           comparison and diagnosis (default: yes)\n"
    "  --bench-echo             benchmark floor, not for production: answer every query with\n"
    "                           itself (QR set) without looking at any zone\n";

const char *zj_config_usage(void)
{
    return usage_text;
}

static void set_err(char *err, size_t err_cap, const char *fmt, ...) ZJ_PRINTF(3, 4);

static void set_err(char *err, size_t err_cap, const char *fmt, ...)
{
    if (err == NULL || err_cap == 0) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_cap, fmt, ap);
    va_end(ap);
}

static const key_def_t *find_key(const char *name, size_t len)
{
    for (size_t i = 0; i < ZJ_ARRAY_SIZE(keys); i++) {
        if (strlen(keys[i].name) == len && memcmp(keys[i].name, name, len) == 0) {
            return &keys[i];
        }
    }
    return NULL;
}

/* Parse a decimal in [lo, hi]; no sign, no trailing junk. */
static int parse_uint(const char *s, unsigned long lo, unsigned long hi, unsigned long *out)
{
    if (s[0] < '0' || s[0] > '9') {
        return ZJ_EINVAL;
    }
    errno = 0;
    char *end = NULL;
    unsigned long v = strtoul(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < lo || v > hi) {
        return ZJ_EINVAL;
    }
    *out = v;
    return ZJ_OK;
}

/* A decimal that fits 64 bits; no sign, no trailing junk. */
static int parse_u64(const char *s, uint64_t *out)
{
    if (s[0] < '0' || s[0] > '9') {
        return ZJ_EINVAL;
    }
    errno = 0;
    char *end = NULL;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0') {
        return ZJ_EINVAL;
    }
    *out = (uint64_t)v;
    return ZJ_OK;
}

/* --nsid: "0x" followed by an even number of hex digits, or any other string taken as bytes. */
static int parse_nsid(const char *s, zj_config_t *cfg)
{
    uint8_t buf[ZJ_CONFIG_MAX_NSID];
    size_t n = 0;
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        const char *h = s + 2;
        size_t hl = strlen(h);
        if (hl == 0 || hl % 2 != 0 || hl / 2 > sizeof(buf)) {
            return ZJ_EINVAL;
        }
        for (size_t i = 0; i < hl; i += 2) {
            int hi = zj_hex_digit(h[i]);
            int lo = zj_hex_digit(h[i + 1]);
            if (hi < 0 || lo < 0) {
                return ZJ_EINVAL;
            }
            buf[n++] = (uint8_t)(hi << 4 | lo);
        }
    } else {
        n = strlen(s);
        if (n == 0 || n > sizeof(buf)) {
            return ZJ_EINVAL;
        }
        memcpy(buf, s, n);
    }
    uint8_t *copy = malloc(n);
    if (copy == NULL) {
        return ZJ_ENOMEM;
    }
    memcpy(copy, buf, n);
    free(cfg->nsid);
    cfg->nsid = copy;
    cfg->nsid_len = (uint16_t)n;
    return ZJ_OK;
}

static int replace_str(char **slot, const char *value)
{
    char *copy = strdup(value);
    if (copy == NULL) {
        return ZJ_ENOMEM;
    }
    free(*slot);
    *slot = copy;
    return ZJ_OK;
}

static int append_str(char ***list, size_t *n, const char *value)
{
    char **grown = realloc(*list, (*n + 1) * sizeof(**list));
    if (grown == NULL) {
        return ZJ_ENOMEM;
    }
    *list = grown;
    grown[*n] = strdup(value);
    if (grown[*n] == NULL) {
        return ZJ_ENOMEM;
    }
    (*n)++;
    return ZJ_OK;
}

static int append_listen(zj_config_t *cfg, const char *value, char *why, size_t why_cap)
{
    zj_addr_t addr;
    if (zj_addr_parse(value, &addr) != ZJ_OK) {
        set_err(why, why_cap, "bad address '%s' (want A.B.C.D:PORT or [IPV6]:PORT)", value);
        return ZJ_EINVAL;
    }
    for (size_t i = 0; i < cfg->n_listens; i++) {
        if (zj_addr_port(&addr) != 0 && zj_addr_eq(&cfg->listens[i], &addr)) {
            set_err(why, why_cap, "duplicate listen address '%s'", value);
            return ZJ_EINVAL;
        }
    }
    if (cfg->n_listens >= ZJ_CONFIG_MAX_LISTENS) {
        set_err(why, why_cap, "more than %d listen addresses", ZJ_CONFIG_MAX_LISTENS);
        return ZJ_EINVAL;
    }
    zj_addr_t *grown = realloc(cfg->listens, (cfg->n_listens + 1) * sizeof(*grown));
    if (grown == NULL) {
        return ZJ_ENOMEM;
    }
    cfg->listens = grown;
    grown[cfg->n_listens++] = addr;
    return ZJ_OK;
}

/* A number in [lo, hi] for key name (why names the key and the range on failure). */
static int set_uint(const char *name, const char *value, unsigned long lo, unsigned long hi,
                    uint32_t *out, char *why, size_t why_cap)
{
    unsigned long v = 0;
    if (parse_uint(value, lo, hi, &v) != ZJ_OK) {
        set_err(why, why_cap, "%s must be %lu..%lu, not '%s'", name, lo, hi, value);
        return ZJ_EINVAL;
    }
    *out = (uint32_t)v;
    return ZJ_OK;
}

static int set_switch(const char *name, const char *value, bool *out, char *why, size_t why_cap)
{
    static const char *const yes[] = {"yes", "true", "on", "1"};
    static const char *const no[] = {"no", "false", "off", "0"};
    for (size_t i = 0; i < ZJ_ARRAY_SIZE(yes); i++) {
        if (strcmp(value, yes[i]) == 0 || strcmp(value, no[i]) == 0) {
            *out = strcmp(value, yes[i]) == 0;
            return ZJ_OK;
        }
    }
    set_err(why, why_cap, "%s must be yes or no, not '%s'", name, value);
    return ZJ_EINVAL;
}

/* Apply one key/value. On failure writes the reason (without location) to why. */
static int apply_key(zj_config_t *cfg, key_id_t id, const char *value, char *why, size_t why_cap)
{
    unsigned long v = 0;
    uint32_t v32 = 0;
    int rc = ZJ_OK;

    if (value[0] == '\0' && id != KEY_NSID) {
        set_err(why, why_cap, "empty value");
        return ZJ_EINVAL;
    }
    switch (id) {
    case KEY_LISTEN:
        return append_listen(cfg, value, why, why_cap);
    case KEY_IMAGE:
        return append_str(&cfg->images, &cfg->n_images, value);
    case KEY_ZONES:
        return append_str(&cfg->zones, &cfg->n_zones, value);
    case KEY_WORKERS:
        rc = parse_uint(value, 1, ZJ_CONFIG_MAX_WORKERS, &v);
        if (rc != ZJ_OK) {
            set_err(why, why_cap, "workers must be 1..%d, not '%s'", ZJ_CONFIG_MAX_WORKERS, value);
            return rc;
        }
        cfg->workers = (unsigned)v;
        return ZJ_OK;
    case KEY_COALESCE_US:
        return set_uint("coalesce-us", value, 0, ZJ_CONFIG_MAX_COALESCE_US, &cfg->coalesce_us, why,
                        why_cap);
    case KEY_COALESCE_MIN_QPS:
        return set_uint("coalesce-min-qps", value, 0, 100000000, &cfg->coalesce_min_qps, why,
                        why_cap);
    case KEY_URING_SEND:
        if (strcmp(value, "sqe") == 0 || strcmp(value, "sendmmsg") == 0) {
            cfg->is_uring_sendmmsg = strcmp(value, "sendmmsg") == 0;
            return ZJ_OK;
        }
        set_err(why, why_cap, "uring-send must be sqe or sendmmsg, not '%s'", value);
        return ZJ_EINVAL;
    case KEY_IO:
        if (strcmp(value, "auto") == 0) {
            cfg->io = ZJ_IO_AUTO;
        } else if (strcmp(value, "uring") == 0) {
            cfg->io = ZJ_IO_URING;
        } else if (strcmp(value, "mmsg") == 0) {
            cfg->io = ZJ_IO_MMSG;
        } else {
            set_err(why, why_cap, "io must be auto, uring or mmsg, not '%s'", value);
            return ZJ_EINVAL;
        }
        return ZJ_OK;
    case KEY_CONTROL:
        return replace_str(&cfg->control_path, value);
    case KEY_CONFIG:
        set_err(why, why_cap, "config files do not nest");
        return ZJ_EINVAL;
    case KEY_EDNS_PAYLOAD:
        rc = parse_uint(value, ZJ_CONFIG_MIN_PAYLOAD, ZJ_CONFIG_MAX_PAYLOAD, &v);
        if (rc != ZJ_OK) {
            set_err(why, why_cap, "edns-payload must be %d..%d, not '%s'", ZJ_CONFIG_MIN_PAYLOAD,
                    ZJ_CONFIG_MAX_PAYLOAD, value);
            return rc;
        }
        cfg->edns_payload = (uint16_t)v;
        return ZJ_OK;
    case KEY_NSID:
        rc = parse_nsid(value, cfg);
        if (rc == ZJ_EINVAL) {
            set_err(why, why_cap, "nsid must be 1..%d bytes as a string or 0x + hex digits",
                    ZJ_CONFIG_MAX_NSID);
        }
        return rc;
    case KEY_IDENTITY:
        return replace_str(&cfg->identity, value);
    case KEY_VERSION_STRING:
        return replace_str(&cfg->version_string, value);
    case KEY_TCP_IDLE_MS:
        /* 1 ms .. 1 hour: RFC 7766 §6.2.3 wants idle connections closed within seconds. */
        rc = parse_uint(value, 1, 3600ul * 1000ul, &v);
        if (rc != ZJ_OK) {
            set_err(why, why_cap, "tcp-idle-ms must be 1..3600000, not '%s'", value);
            return rc;
        }
        cfg->tcp_idle_ms = (uint32_t)v;
        return ZJ_OK;
    case KEY_TCP_MAX_CONNS:
        rc = parse_uint(value, 1, ZJ_CONFIG_MAX_TCP_CONNS, &v);
        if (rc != ZJ_OK) {
            set_err(why, why_cap, "tcp-max-conns must be 1..%d, not '%s'", ZJ_CONFIG_MAX_TCP_CONNS,
                    value);
            return rc;
        }
        cfg->tcp_max_conns = (uint32_t)v;
        return ZJ_OK;
    case KEY_TCP_MSG_TIMEOUT_MS:
        /* 1 ms .. 1 minute: a message that takes longer over loopback or the Internet is an
         * attack, not a slow link (RFC 7766 §6.2.3 wants slow clients closed). */
        return set_uint("tcp-msg-timeout-ms", value, 1, 60000, &cfg->tcp_msg_timeout_ms, why,
                        why_cap);
    case KEY_TCP_MAX_CONNS_PER_IP:
        return set_uint("tcp-max-conns-per-ip", value, 1, ZJ_CONFIG_MAX_TCP_CONNS,
                        &cfg->tcp_max_conns_per_ip, why, why_cap);
    case KEY_TCP_MAX_INFLIGHT:
        return set_uint("tcp-max-inflight", value, 1, ZJ_CONFIG_MAX_TCP_INFLIGHT,
                        &cfg->tcp_max_inflight, why, why_cap);
    case KEY_WATCH:
        return set_switch("watch", value, &cfg->is_watch, why, why_cap);
    case KEY_BENCH_ECHO:
        return set_switch("bench-echo", value, &cfg->is_bench_echo, why, why_cap);
    case KEY_ANSWER_TABLE:
        return set_switch("answer-table", value, &cfg->is_answer_table, why, why_cap);
    case KEY_RRL_RATE:
        return set_uint("rrl-rate", value, 0, ZJ_RRL_RATE_MAX, &cfg->rrl.rate, why, why_cap);
    case KEY_RRL_SLIP:
        return set_uint("rrl-slip", value, 0, ZJ_RRL_SLIP_MAX, &cfg->rrl.slip, why, why_cap);
    case KEY_RRL_WINDOW:
        return set_uint("rrl-window", value, 1, ZJ_RRL_WINDOW_MAX, &cfg->rrl.window_s, why,
                        why_cap);
    case KEY_RRL_IPV4_PREFIX:
        rc = set_uint("rrl-ipv4-prefix", value, 0, 32, &v32, why, why_cap);
        cfg->rrl.ipv4_prefix = (uint8_t)v32;
        return rc;
    case KEY_RRL_IPV6_PREFIX:
        rc = set_uint("rrl-ipv6-prefix", value, 0, 128, &v32, why, why_cap);
        cfg->rrl.ipv6_prefix = (uint8_t)v32;
        return rc;
    case KEY_GEOIP:
        return replace_str(&cfg->geoip_path, value);
    case KEY_SEED:
        if (parse_u64(value, &cfg->seed) != ZJ_OK) {
            set_err(why, why_cap, "seed must be 0..18446744073709551615, not '%s'", value);
            return ZJ_EINVAL;
        }
        cfg->has_seed = true;
        return ZJ_OK;
    }
    set_err(why, why_cap, "unknown key");
    return ZJ_EINVAL;
}

/* Trim leading and trailing blanks in place; returns the start. */
static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t') {
        s++;
    }
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n')) {
        s[--n] = '\0';
    }
    return s;
}

/* Cut a comment: '#' at the start or after a blank. '#' inside a word (an NSID string) stays. */
static void cut_comment(char *s)
{
    for (char *p = s; *p != '\0'; p++) {
        if (*p == '#' && (p == s || p[-1] == ' ' || p[-1] == '\t')) {
            *p = '\0';
            return;
        }
    }
}

static int load_file(zj_config_t *cfg, const char *path, char *err, size_t err_cap)
{
    char why[256];
    char *line = NULL;
    unsigned lineno = 0;
    int rc = ZJ_OK;

    FILE *f = fopen(path, "re");
    if (f == NULL) {
        rc = -errno;
        set_err(err, err_cap, "%s: %s", path, strerror(errno));
        goto out;
    }
    line = malloc(CONFIG_LINE_CAP);
    if (line == NULL) {
        rc = ZJ_ENOMEM;
        set_err(err, err_cap, "%s: out of memory", path);
        goto out;
    }
    while (fgets(line, CONFIG_LINE_CAP, f) != NULL) {
        lineno++;
        size_t len = strlen(line);
        if (len == CONFIG_LINE_CAP - 1 && line[len - 1] != '\n') {
            rc = ZJ_EINVAL;
            set_err(err, err_cap, "%s:%u: line too long", path, lineno);
            goto out;
        }
        cut_comment(line);
        char *s = trim(line);
        if (*s == '\0') {
            continue;
        }
        size_t klen = strcspn(s, " \t");
        const key_def_t *key = find_key(s, klen);
        if (key == NULL) {
            rc = ZJ_EINVAL;
            set_err(err, err_cap, "%s:%u: unknown key '%.*s'", path, lineno, (int)klen, s);
            goto out;
        }
        char *value = trim(s + klen);
        if (*value == '\0' && key->is_switch) {
            value = "yes";
        }
        if (*value == '\0') {
            rc = ZJ_EINVAL;
            set_err(err, err_cap, "%s:%u: %s needs a value", path, lineno, key->name);
            goto out;
        }
        why[0] = '\0';
        rc = apply_key(cfg, key->id, value, why, sizeof(why));
        if (rc != ZJ_OK) {
            set_err(err, err_cap, "%s:%u: %s", path, lineno,
                    why[0] != '\0' ? why : zj_strerror(rc));
            goto out;
        }
    }
    if (ferror(f)) {
        rc = ZJ_EIO;
        set_err(err, err_cap, "%s: read error", path);
    }
out:
    free(line);
    if (f != NULL) {
        fclose(f);
    }
    return rc;
}

/* Split "--key=value" / "--key value"; returns the key def or NULL. *value_out may point into
 * argv or be NULL if the value is the next argument. */
static const key_def_t *match_flag(const char *arg, const char **inline_value)
{
    *inline_value = NULL;
    if (strncmp(arg, "--", 2) != 0) {
        return NULL;
    }
    const char *name = arg + 2;
    const char *eq = strchr(name, '=');
    size_t len = eq != NULL ? (size_t)(eq - name) : strlen(name);
    if (eq != NULL) {
        *inline_value = eq + 1;
    }
    return find_key(name, len);
}

static bool path_is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* <dir of /proc/self/exe>/../zones, else ./zones (STYLE: zones/ sits next to the source tree,
 * and build directories live inside it). */
static int default_zones(zj_config_t *cfg, char *err, size_t err_cap)
{
    char exe[PATH_MAX];
    char cand[PATH_MAX + 16];
    char resolved[PATH_MAX];

    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash != NULL) {
            *slash = '\0';
            snprintf(cand, sizeof(cand), "%s/../zones", exe);
            if (path_is_dir(cand) && realpath(cand, resolved) != NULL) {
                cfg->is_default_zones = true;
                return append_str(&cfg->zones, &cfg->n_zones, resolved);
            }
        }
    }
    if (path_is_dir("zones")) {
        cfg->is_default_zones = true;
        return append_str(&cfg->zones, &cfg->n_zones, "zones");
    }
    set_err(err, err_cap,
            "no --image or --zones given and no bundled zones directory found "
            "(tried <binary dir>/../zones and ./zones)");
    return ZJ_ENOENT;
}

static void set_defaults(zj_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->io = ZJ_IO_AUTO;
    cfg->edns_payload = ZJ_CONFIG_DEFAULT_EDNS_PAYLOAD;
    cfg->is_answer_table = true;
    cfg->coalesce_us = ZJ_CONFIG_DEFAULT_COALESCE_US;
    cfg->coalesce_min_qps = ZJ_CONFIG_DEFAULT_COALESCE_MIN_QPS;
    cfg->tcp_idle_ms = ZJ_CONFIG_DEFAULT_TCP_IDLE_MS;
    cfg->tcp_max_conns = ZJ_CONFIG_DEFAULT_TCP_MAX_CONNS;
    cfg->tcp_msg_timeout_ms = ZJ_CONFIG_DEFAULT_TCP_MSG_TIMEOUT_MS;
    cfg->tcp_max_conns_per_ip = ZJ_CONFIG_DEFAULT_TCP_MAX_CONNS_PER_IP;
    cfg->tcp_max_inflight = ZJ_CONFIG_DEFAULT_TCP_MAX_INFLIGHT;
    zj_rrl_cfg_default(&cfg->rrl);
}

/* First pass: find --config (the last one wins) and the value-less flags. */
static int scan_args(int argc, char **argv, const char **config_path, char *err, size_t err_cap)
{
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            return ZJ_CONFIG_HELP;
        }
        if (strcmp(arg, "--version") == 0 || strcmp(arg, "-V") == 0) {
            return ZJ_CONFIG_VERSION;
        }
        const char *inline_value = NULL;
        const key_def_t *key = match_flag(arg, &inline_value);
        if (key == NULL) {
            set_err(err, err_cap, "%s: unknown option (try --help)", arg);
            return ZJ_EINVAL;
        }
        const char *value = inline_value;
        if (value == NULL && key->is_switch) {
            continue;
        }
        if (value == NULL) {
            if (i + 1 >= argc) {
                set_err(err, err_cap, "--%s: needs a value", key->name);
                return ZJ_EINVAL;
            }
            value = argv[++i];
        }
        if (key->id == KEY_CONFIG) {
            *config_path = value;
        }
    }
    return ZJ_CONFIG_RUN;
}

static int apply_args(zj_config_t *cfg, int argc, char **argv, char *err, size_t err_cap)
{
    char why[256];
    for (int i = 1; i < argc; i++) {
        const char *inline_value = NULL;
        const key_def_t *key = match_flag(argv[i], &inline_value);
        const char *value = inline_value;
        if (value == NULL) {
            value = key->is_switch ? "yes" : argv[++i];
        }
        if (key->id == KEY_CONFIG) {
            continue;
        }
        why[0] = '\0';
        int rc = apply_key(cfg, key->id, value, why, sizeof(why));
        if (rc != ZJ_OK) {
            set_err(err, err_cap, "--%s: %s", key->name, why[0] != '\0' ? why : zj_strerror(rc));
            return rc;
        }
    }
    return ZJ_OK;
}

int zj_config_parse(zj_config_t *cfg, int argc, char **argv, char *err, size_t err_cap)
{
    const char *config_path = NULL;

    set_defaults(cfg);
    if (err != NULL && err_cap > 0) {
        err[0] = '\0';
    }
    int rc = scan_args(argc, argv, &config_path, err, err_cap);
    if (rc != ZJ_CONFIG_RUN) {
        goto out;
    }
    if (config_path != NULL) {
        rc = replace_str(&cfg->config_path, config_path);
        if (rc == ZJ_OK) {
            rc = load_file(cfg, config_path, err, err_cap);
        }
        if (rc != ZJ_OK) {
            goto out;
        }
    }
    rc = apply_args(cfg, argc, argv, err, err_cap);
    if (rc != ZJ_OK) {
        goto out;
    }
    if (cfg->n_listens == 0) {
        rc = append_listen(cfg, ZJ_CONFIG_DEFAULT_LISTEN, err, err_cap);
        if (rc != ZJ_OK) {
            goto out;
        }
    }
    if (cfg->n_images == 0 && cfg->n_zones == 0) {
        rc = default_zones(cfg, err, err_cap);
        if (rc != ZJ_OK) {
            goto out;
        }
    }
    char why[256];
    if (zj_rrl_cfg_check(&cfg->rrl, why, sizeof(why)) != ZJ_OK) {
        set_err(err, err_cap, "%s", why);
        rc = ZJ_EINVAL;
    }
out:
    if (rc < 0) {
        if (rc == ZJ_ENOMEM && err != NULL && err_cap > 0 && err[0] == '\0') {
            set_err(err, err_cap, "out of memory");
        }
        zj_config_fini(cfg);
    }
    return rc;
}

static void free_list(char **list, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(list[i]);
    }
    free(list);
}

void zj_config_fini(zj_config_t *cfg)
{
    free(cfg->listens);
    free_list(cfg->images, cfg->n_images);
    free_list(cfg->zones, cfg->n_zones);
    free(cfg->control_path);
    free(cfg->config_path);
    free(cfg->nsid);
    free(cfg->identity);
    free(cfg->version_string);
    free(cfg->geoip_path);
    set_defaults(cfg);
}
