/* Control socket: status and stats over a Unix socket (see control.h for the protocol).
 *
 * Counters are read without stopping anyone: each worker's io counters are relaxed atomics it
 * alone writes, and its responder counters are read from the copy it publishes after every
 * batch (relaxed atomics too), so a reader may see a batch half-counted but never a torn value.
 * Summation happens here, on read, so the hot path never touches a shared line (STYLE util/stats).
 */
#include "server/control.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "zonejet/compiler.h"
#include "zonejet/err.h"
#include "health/health.h"
#include "policy/geo.h"
#include "server/reload.h"
#include "server/server.h"
#include "util/log.h"
#include "zone/swap.h"

/* Longest request we read: a command and its arguments (paths of up to PATH_MAX bytes each),
 * so that one `reload` can name a few dozen images. */
#define CONTROL_CMD_CAP ((size_t)64 * 1024)
/* Most arguments one request may carry. */
#define CONTROL_MAX_ARGS 256
/* Reply buffer: the image set description is a line per zone, the health list a line per
 * check; 1 MiB holds ~10k zones or ~5k checks, beyond which the reply is cut. */
#define CONTROL_REPLY_CAP ((size_t)1024 * 1024)
/* A client must send its command within this time, or is dropped. */
#define CONTROL_TIMEOUT_MS 1000

int zj_control_open(const char *path)
{
    struct sockaddr_un sun;
    int rc = ZJ_OK;
    int fd = -1;

    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sun.sun_path)) {
        zj_log_err("control socket %s: path too long (max %zu bytes)", path,
                   sizeof(sun.sun_path) - 1);
        return ZJ_EINVAL;
    }
    memcpy(sun.sun_path, path, strlen(path));

    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            zj_log_err("control socket %s: exists and is not a socket", path);
            return ZJ_EINVAL;
        }
        unlink(path);
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        rc = -errno;
        goto out;
    }
    /* Create it owner-only from the start: no window in which others could connect. */
    mode_t old_mask = umask(0077);
    int brc = bind(fd, (const struct sockaddr *)&sun, sizeof(sun));
    int bind_errno = errno;
    umask(old_mask);
    if (brc != 0) {
        rc = -bind_errno;
        goto out;
    }
    if (chmod(path, 0600) != 0 || listen(fd, 16) != 0) {
        rc = -errno;
        goto out;
    }
out:
    if (rc != ZJ_OK) {
        zj_log_err("control socket %s: %s", path, zj_strerror(rc));
        if (fd >= 0) {
            close(fd);
        }
        return rc;
    }
    return fd;
}

void zj_control_close(int fd, const char *path)
{
    if (fd >= 0) {
        close(fd);
        if (path != NULL) {
            unlink(path);
        }
    }
}

/* Append to a reply buffer; keeps track of truncation. */
typedef struct reply {
    char *p;
    size_t len;
    size_t cap;
} reply_t;

static void put(reply_t *r, const char *fmt, ...) ZJ_PRINTF(2, 3);

static void put(reply_t *r, const char *fmt, ...)
{
    if (r->len + 1 >= r->cap) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(r->p + r->len, r->cap - r->len, fmt, ap);
    va_end(ap);
    if (n < 0) {
        return;
    }
    r->len += (size_t)n < r->cap - r->len ? (size_t)n : r->cap - r->len - 1;
}

/* Sum of every worker's answer counters (each worker's published copy, worker.h). */
static void sum_answer_stats(const zj_control_view_t *v, zj_answer_stats_t *sum)
{
    uint64_t total[ZJ_ANSWER_STAT_WORDS] = {0};
    for (size_t i = 0; i < v->n_workers; i++) {
        zj_answer_stats_t one;
        uint64_t words[ZJ_ANSWER_STAT_WORDS];
        zj_worker_answer_stats(&v->workers[i], &one);
        memcpy(words, &one, sizeof(words));
        for (size_t k = 0; k < ZJ_ANSWER_STAT_WORDS; k++) {
            total[k] += words[k];
        }
    }
    memcpy(sum, total, sizeof(total));
}

/* Names of rcodes 0..5 (RFC 1035 §4.1.1), for the rcode_* counters. */
static const char *const rcode_names[] = {"noerror",  "formerr", "servfail",
                                          "nxdomain", "notimp",  "refused"};

/* One io counter: its name and where it sits in zj_io_stats_t. */
typedef struct io_field {
    const char *name;
    size_t off;
} io_field_t;

static const io_field_t io_fields[] = {
    {"batches", offsetof(zj_io_stats_t, batches)},
    {"udp_rx", offsetof(zj_io_stats_t, udp_rx)},
    {"udp_tx", offsetof(zj_io_stats_t, udp_tx)},
    {"udp_drops", offsetof(zj_io_stats_t, udp_drops)},
    {"nobufs", offsetof(zj_io_stats_t, nobufs)},
    {"tcp_accepted", offsetof(zj_io_stats_t, tcp_accepted)},
    {"tcp_closed", offsetof(zj_io_stats_t, tcp_closed)},
    {"tcp_idle_closed", offsetof(zj_io_stats_t, tcp_idle_closed)},
    {"tcp_evicted", offsetof(zj_io_stats_t, tcp_evicted)},
    {"tcp_rejected", offsetof(zj_io_stats_t, tcp_rejected)},
    {"tcp_ip_limited", offsetof(zj_io_stats_t, tcp_ip_limited)},
    {"tcp_msg_timeouts", offsetof(zj_io_stats_t, tcp_msg_timeouts)},
    {"tcp_queries", offsetof(zj_io_stats_t, tcp_queries)},
};

static uint64_t io_get(const zj_io_stats_t *s, const io_field_t *f)
{
    const char *base = (const char *)s;
    const _Atomic uint64_t *p = (const _Atomic uint64_t *)(const void *)(base + f->off);
    return zj_stat_get(p);
}

static void reply_stats(const zj_control_view_t *v, reply_t *r)
{
    zj_answer_stats_t a;
    sum_answer_stats(v, &a);
    put(r, "queries %llu\n", (unsigned long long)a.queries);
    put(r, "responses %llu\n", (unsigned long long)a.responses);
    put(r, "dropped %llu\n", (unsigned long long)a.dropped);
    for (size_t k = 0; k < ZJ_ARRAY_SIZE(rcode_names); k++) {
        put(r, "rcode_%s %llu\n", rcode_names[k], (unsigned long long)a.rcode[k]);
    }
    put(r, "badvers %llu\n", (unsigned long long)a.badvers);
    put(r, "truncated %llu\n", (unsigned long long)a.truncated);
    put(r, "referrals %llu\n", (unsigned long long)a.referrals);
    put(r, "edns %llu\n", (unsigned long long)a.edns);
    put(r, "tcp %llu\n", (unsigned long long)a.tcp);
    put(r, "rrl_dropped %llu\n", (unsigned long long)a.rrl_dropped);
    put(r, "rrl_slipped %llu\n", (unsigned long long)a.rrl_slipped);
    put(r, "policy %llu\n", (unsigned long long)a.policy);
    put(r, "table %llu\n", (unsigned long long)a.table);
    for (size_t f = 0; f < ZJ_ARRAY_SIZE(io_fields); f++) {
        uint64_t sum = 0;
        for (size_t i = 0; i < v->n_workers; i++) {
            sum += io_get(&v->workers[i].stats, &io_fields[f]);
        }
        put(r, "%s %llu\n", io_fields[f].name, (unsigned long long)sum);
    }
}

static void reply_status(const zj_control_view_t *v, reply_t *r)
{
    uint64_t up_ms = zj_now_ms() - v->start_ms;
    put(r, "zonejetd %s up %llu.%03llus io %s workers %zu\n", ZJ_VERSION_STRING,
        (unsigned long long)(up_ms / 1000), (unsigned long long)(up_ms % 1000), v->io_name,
        v->n_workers);
    if (v->reload != NULL) {
        put(r, "reloads ok %llu failed %llu last %llu ms: %s\n",
            (unsigned long long)v->reload->n_ok, (unsigned long long)v->reload->n_failed,
            (unsigned long long)v->reload->last_ms,
            v->reload->last[0] != '\0' ? v->reload->last : "none");
        if (v->reload->geo != NULL) {
            put(r, "geoip %s networks %zu locations %zu\n", v->reload->geo_path,
                zj_geo_networks(v->reload->geo), zj_geo_locations(v->reload->geo));
        } else {
            put(r, "geoip none\n");
        }
    }
    const zj_imgset_t *set = zj_swap_current();
    if (set != NULL && r->len + 1 < r->cap) {
        r->len += zj_imgset_describe(set, r->p + r->len, r->cap - r->len);
        if (r->len > 0 && r->p[r->len - 1] != '\n') {
            put(r, "\n");
        }
    }
    for (size_t i = 0; i < v->n_workers; i++) {
        const zj_worker_t *w = &v->workers[i];
        zj_answer_stats_t a;
        zj_worker_answer_stats(w, &a);
        put(r, "worker %u cpu %d queries %llu", w->id, w->cpu, (unsigned long long)a.queries);
        for (size_t f = 0; f < ZJ_ARRAY_SIZE(io_fields); f++) {
            put(r, " %s %llu", io_fields[f].name,
                (unsigned long long)io_get(&w->stats, &io_fields[f]));
        }
        put(r, "\n");
    }
}

static void reply_health(const zj_control_view_t *v, reply_t *r)
{
    if (v->health == NULL) {
        put(r, "no health checks\n");
        return;
    }
    if (r->len + 1 < r->cap) {
        r->len += zj_health_describe(v->health, r->p + r->len, r->cap - r->len);
    }
}

/* reload / add / remove: run the change, copy its reply. */
static void reply_change(const zj_control_view_t *v, reply_t *r, zj_reload_op_t op,
                         const char *const *args, size_t n_args)
{
    char *text = NULL;
    size_t len = 0;
    if (v->reload == NULL) {
        put(r, "error: reload is not available\n");
        return;
    }
    FILE *out = open_memstream(&text, &len);
    if (out == NULL) {
        put(r, "error: out of memory\n");
        return;
    }
    (void)zj_reload_apply(v->reload, op, args, n_args, out);
    fclose(out);
    put(r, "%s", text != NULL ? text : "error: out of memory\n");
    free(text);
}

/* Split a request into its command (first line) and arguments (following non-empty lines,
 * up to the first empty line). Modifies req in place. */
static size_t split_request(char *req, const char **cmd, const char **args, size_t cap)
{
    size_t n = 0;
    char *save = NULL;
    *cmd = "";
    char *line = strtok_r(req, "\n", &save);
    if (line == NULL) {
        return 0;
    }
    line[strcspn(line, "\r")] = '\0';
    *cmd = line;
    /* strtok_r skips empty lines, so find the blank-line terminator by hand first. */
    if (save != NULL && save[0] == '\n') {
        return 0; /* an empty line right after the command: no arguments */
    }
    char *end = strstr(save != NULL ? save : "", "\n\n");
    if (end != NULL) {
        *end = '\0';
    }
    while (n < cap && (line = strtok_r(NULL, "\n", &save)) != NULL) {
        line[strcspn(line, "\r")] = '\0';
        if (line[0] != '\0') {
            args[n++] = line;
        }
    }
    return n;
}

size_t zj_control_reply(const zj_control_view_t *view, char *request, char *out, size_t cap)
{
    reply_t r = {.p = out, .len = 0, .cap = cap};
    const char *args[CONTROL_MAX_ARGS];
    const char *cmd = NULL;
    if (cap == 0) {
        return 0;
    }
    out[0] = '\0';
    size_t n = split_request(request, &cmd, args, CONTROL_MAX_ARGS);
    if (strcmp(cmd, "status") == 0 && n == 0) {
        reply_status(view, &r);
    } else if (strcmp(cmd, "stats") == 0 && n == 0) {
        reply_stats(view, &r);
    } else if (strcmp(cmd, "health") == 0 && n == 0) {
        reply_health(view, &r);
    } else if (strcmp(cmd, "reload") == 0) {
        reply_change(view, &r, n == 0 ? ZJ_RELOAD_ALL : ZJ_RELOAD_PATHS, args, n);
    } else if (strcmp(cmd, "add") == 0 && n > 0) {
        reply_change(view, &r, ZJ_RELOAD_ADD, args, n);
    } else if (strcmp(cmd, "remove") == 0 && n > 0) {
        reply_change(view, &r, ZJ_RELOAD_REMOVE, args, n);
    } else {
        put(&r,
            "error: bad request '%.64s' (try status, stats, health, reload [PATH...], add "
            "PATH..., remove PATH|ZONE...)\n",
            cmd);
    }
    return r.len;
}

/* A request is complete at EOF, at an empty line, or after its first line for commands that
 * take no arguments (so a plain "status\n" needs no shutdown from the client). */
static bool is_request_complete(const char *req, size_t len)
{
    const char *nl = memchr(req, '\n', len);
    if (nl == NULL) {
        return false;
    }
    size_t first = (size_t)(nl - req);
    if ((first == 6 && memcmp(req, "status", 6) == 0) ||
        (first == 6 && memcmp(req, "health", 6) == 0) ||
        (first == 5 && memcmp(req, "stats", 5) == 0)) {
        return true;
    }
    return len >= 2 && memmem(req, len, "\n\n", 2) != NULL;
}

/* Read one request (bounded by CONTROL_CMD_CAP and the receive timeout). A timeout after at
 * least one whole line ends the request; before that it drops the client. */
static int read_request(int fd, char *req, size_t cap)
{
    size_t len = 0;
    while (len + 1 < cap) {
        ssize_t n = recv(fd, req + len, cap - 1 - len, 0);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && memchr(req, '\n', len) == NULL) {
            return -errno;
        }
        if (n <= 0) {
            break;
        }
        len += (size_t)n;
        if (is_request_complete(req, len)) {
            break;
        }
    }
    req[len] = '\0';
    return ZJ_OK;
}

static void write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return;
        }
        p += n;
        len -= (size_t)n;
    }
}

/* Owner-only: the socket file is 0600, and the peer's uid is checked as well (root may too). */
static bool is_peer_allowed(int cfd)
{
    struct ucred cred;
    socklen_t len = sizeof(cred);
    if (getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
        return false;
    }
    return cred.uid == geteuid() || cred.uid == 0;
}

void zj_control_serve(int fd, const zj_control_view_t *view)
{
    char *req = NULL;
    char *reply = NULL;

    int cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
    if (cfd < 0) {
        return;
    }
    if (!is_peer_allowed(cfd)) {
        zj_log_warn("control socket: client of another user refused");
        goto out;
    }
    struct timeval tv = {.tv_sec = CONTROL_TIMEOUT_MS / 1000,
                         .tv_usec = (suseconds_t)(CONTROL_TIMEOUT_MS % 1000) * 1000};
    (void)setsockopt(cfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    (void)setsockopt(cfd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    req = malloc(CONTROL_CMD_CAP);
    reply = malloc(CONTROL_REPLY_CAP);
    if (req == NULL || reply == NULL || read_request(cfd, req, CONTROL_CMD_CAP) != ZJ_OK) {
        goto out;
    }
    size_t len = zj_control_reply(view, req, reply, CONTROL_REPLY_CAP);
    write_all(cfd, reply, len);
out:
    free(req);
    free(reply);
    close(cfd);
}
