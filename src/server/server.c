/* zonejetd's process lifetime (see server.h).
 *
 * Start-up order, each step logged on one line and each failure fatal with its reason: block
 * signals (so every thread inherits the mask), open the image set, choose the backend (probing
 * io_uring for --io auto), open every worker's sockets (all of them before any worker runs, so
 * a taken port fails start-up cleanly), publish the set, start the workers (each reports its
 * backend init before the next starts), open the control socket, then serve signals and
 * control clients on this thread until SIGTERM/SIGINT. Before the set is opened: the
 * geolocation database (--geoip) and the health-check registry, whose thread starts once the
 * set's images are attached to it (so the first probes are spread over each interval).
 *
 * Stop: set the stop flag and signal the stop eventfd (every worker polls it), join the
 * workers, stop the health checker, close the sockets, close the control socket, then close the
 * image set (which detaches its images from the registry), then free the registry and the
 * geolocation database: the set is closed after the workers are joined because nothing can
 * read it then, and the registry and database after the set because the set points at them. */
#include "server/server.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "zonejet/err.h"
#include "dns/anstab.h"
#include "dns/answer.h"
#include "dns/rrl.h"
#include "health/health.h"
#include "net/io.h"
#include "net/sock.h"
#include "net/worker.h"
#include "server/control.h"
#include "server/reload.h"
#include "util/log.h"
#include "zone/imgset.h"
#include "zone/swap.h"

/* Nice value of the server thread once the workers run: a reload opens, validates or compiles
 * on this thread, and where it shares a CPU with a worker (a taskset smaller than workers + 1)
 * the worker must win. At +10 the scheduler gives this thread about a tenth of a CPU that a
 * busy worker also wants, and all of an idle one. Linux nice is per thread, and the workers
 * were created before, so they keep nice 0. */
#define CONTROL_NICE 10

/* A kernel-chosen port (port 0) is learned from worker 0's UDP socket and reused for TCP and the
 * other workers; TCP may find that port taken, so try a few fresh ports. */
#define PORT0_TRIES 8

typedef struct server {
    const zj_config_t *cfg;
    zj_imgset_t *set;
    const zj_io_ops_t *io;
    zj_addr_t *addrs; /* resolved listen addresses (port 0 replaced) */
    size_t n_addrs;
    unsigned n_workers;
    int *cpus;    /* per worker, or -1 */
    int *udp_fds; /* n_workers * n_addrs, worker-major */
    int *tcp_fds;
    zj_worker_t *workers;
    unsigned n_started;
    int stop_fd;
    int sig_fd;
    int control_fd;
    _Atomic bool stop;
    zj_answer_cfg_t acfg;
    zj_rrl_t *rrl;      /* NULL: response rate limiting off */
    zj_reload_t reload; /* also holds the --geoip database */
    zj_health_t *health;
} server_t;

static void fds_init(int *fds, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        fds[i] = -1;
    }
}

/* Workers and their CPUs: one per CPU we may run on (sched_getaffinity honours taskset and
 * cgroup cpusets), pinned round-robin over that set. */
static int plan_workers(server_t *s)
{
    cpu_set_t set;
    int avail[CPU_SETSIZE];
    int n_avail = 0;

    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) == 0) {
        for (int c = 0; c < CPU_SETSIZE; c++) {
            if (CPU_ISSET(c, &set)) {
                avail[n_avail++] = c;
            }
        }
    }
    s->n_workers = s->cfg->workers;
    if (s->n_workers == 0) {
        s->n_workers = n_avail > 0 ? (unsigned)n_avail : 1;
        if (s->n_workers > ZJ_CONFIG_MAX_WORKERS) {
            s->n_workers = ZJ_CONFIG_MAX_WORKERS;
        }
    }
    s->cpus = calloc(s->n_workers, sizeof(int));
    /* Cache-line aligned: each worker's counters sit on their own line (zj_worker_t). */
    s->workers = aligned_alloc(ZJ_CACHELINE, s->n_workers * sizeof(zj_worker_t));
    if (s->cpus == NULL || s->workers == NULL) {
        return ZJ_ENOMEM;
    }
    memset(s->workers, 0, s->n_workers * sizeof(zj_worker_t));
    for (unsigned i = 0; i < s->n_workers; i++) {
        s->cpus[i] = n_avail > 0 ? avail[i % (unsigned)n_avail] : -1;
    }
    return ZJ_OK;
}

/* Absolute copies of paths: a zonejet-ctl request names sources by absolute path. */
static char **abs_paths(char *const *paths, size_t n)
{
    char **out = calloc(n > 0 ? n : 1, sizeof(*out));
    char buf[PATH_MAX];
    for (size_t i = 0; out != NULL && i < n; i++) {
        out[i] = strdup(zj_imgset_abspath(paths[i], buf, sizeof(buf)) == ZJ_OK ? buf : paths[i]);
    }
    return out;
}

static void free_paths(char **paths, size_t n)
{
    for (size_t i = 0; paths != NULL && i < n; i++) {
        free(paths[i]);
    }
    free(paths);
}

/* Log each line of a diagnostics text. */
static void log_lines(zj_log_level_t level, char *text)
{
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        zj_log(level, "%s", line);
    }
}

static int open_set(server_t *s)
{
    const zj_config_t *cfg = s->cfg;
    char *diag_text = NULL;
    size_t diag_len = 0;
    char **images = abs_paths(cfg->images, cfg->n_images);
    char **zones = abs_paths(cfg->zones, cfg->n_zones);
    FILE *diag = open_memstream(&diag_text, &diag_len);
    int rc = images == NULL || zones == NULL || diag == NULL ? ZJ_ENOMEM : ZJ_OK;
    if (rc == ZJ_OK) {
        zj_imgset_spec_t spec = {
            .images = (const char *const *)images,
            .n_images = cfg->n_images,
            .zone_paths = (const char *const *)zones,
            .n_zone_paths = cfg->n_zones,
            .health = s->health,
            .geo = s->reload.geo,
        };
        rc = zj_imgset_open(&spec, diag, &s->set);
    }
    if (diag != NULL) {
        fclose(diag);
    }
    if (diag_text != NULL) {
        log_lines(rc == ZJ_OK ? ZJ_LOG_WARN : ZJ_LOG_ERR, diag_text);
    }
    free(diag_text);
    free_paths(images, cfg->n_images);
    free_paths(zones, cfg->n_zones);
    if (rc != ZJ_OK) {
        zj_log_err("cannot load zones: %s", zj_strerror(rc));
        return rc;
    }
    zj_log_info("serving %zu zones from %zu sources%s", zj_imgset_zone_count(s->set),
                cfg->n_images + cfg->n_zones, cfg->is_default_zones ? " (bundled zones)" : "");
    return ZJ_OK;
}

static int choose_io(server_t *s)
{
    char why[256] = "";
    switch (s->cfg->io) {
    case ZJ_IO_MMSG:
        s->io = &zj_io_mmsg_ops;
        return ZJ_OK;
    case ZJ_IO_URING:
        if (zj_io_uring_probe(why, sizeof(why)) != ZJ_OK) {
            zj_log_err("io_uring unavailable (%s) and --io uring was given", why);
            return ZJ_EINVAL;
        }
        s->io = &zj_io_uring_ops;
        return ZJ_OK;
    case ZJ_IO_AUTO:
        break;
    }
    if (zj_io_uring_probe(why, sizeof(why)) == ZJ_OK) {
        s->io = &zj_io_uring_ops;
    } else {
        zj_log_warn("io_uring unavailable (%s), using recvmmsg/sendmmsg", why);
        s->io = &zj_io_mmsg_ops;
    }
    return ZJ_OK;
}

/* Open worker 0's pair for address a; with port 0, learn the kernel's port and retry if TCP
 * cannot have the same one. */
static int open_first_pair(zj_addr_t *a, int *udp_fd, int *tcp_fd)
{
    bool is_port0 = zj_addr_port(a) == 0;
    int rc = is_port0 ? ZJ_OK : zj_sock_check_free(a);
    if (rc != ZJ_OK) {
        return rc;
    }
    for (int attempt = 0; attempt < (is_port0 ? PORT0_TRIES : 1); attempt++) {
        zj_addr_t try_addr = *a;
        *udp_fd = zj_sock_open_udp(&try_addr);
        if (*udp_fd < 0) {
            return *udp_fd;
        }
        if (is_port0) {
            rc = zj_sock_local(*udp_fd, &try_addr);
            if (rc != ZJ_OK) {
                return rc;
            }
        }
        *tcp_fd = zj_sock_open_tcp(&try_addr);
        if (*tcp_fd >= 0) {
            *a = try_addr;
            return ZJ_OK;
        }
        rc = *tcp_fd;
        zj_sock_close(*udp_fd);
        *udp_fd = -1;
        if (rc != -EADDRINUSE) {
            break;
        }
    }
    return rc;
}

static int open_sockets(server_t *s)
{
    char text[ZJ_ADDR_TEXT_CAP];
    size_t n = (size_t)s->n_workers * s->n_addrs;
    s->udp_fds = malloc(n * sizeof(int));
    s->tcp_fds = malloc(n * sizeof(int));
    if (s->udp_fds == NULL || s->tcp_fds == NULL) {
        return ZJ_ENOMEM;
    }
    fds_init(s->udp_fds, n);
    fds_init(s->tcp_fds, n);
    for (size_t a = 0; a < s->n_addrs; a++) {
        zj_addr_format(&s->addrs[a], text, sizeof(text));
        int rc = open_first_pair(&s->addrs[a], &s->udp_fds[a], &s->tcp_fds[a]);
        for (unsigned w = 1; w < s->n_workers && rc == ZJ_OK; w++) {
            size_t k = (size_t)w * s->n_addrs + a;
            s->udp_fds[k] = zj_sock_open_udp(&s->addrs[a]);
            s->tcp_fds[k] = s->udp_fds[k] < 0 ? -1 : zj_sock_open_tcp(&s->addrs[a]);
            rc = s->udp_fds[k] < 0 ? s->udp_fds[k] : (s->tcp_fds[k] < 0 ? s->tcp_fds[k] : ZJ_OK);
        }
        if (rc != ZJ_OK) {
            zj_log_err("cannot listen on %s: %s", text, zj_strerror(rc));
            return rc;
        }
    }
    return ZJ_OK;
}

static void close_sockets(server_t *s)
{
    size_t n = (size_t)s->n_workers * s->n_addrs;
    for (size_t i = 0; s->udp_fds != NULL && i < n; i++) {
        zj_sock_close(s->udp_fds[i]);
    }
    for (size_t i = 0; s->tcp_fds != NULL && i < n; i++) {
        zj_sock_close(s->tcp_fds[i]);
    }
}

static int answer_cfg(server_t *s)
{
    const zj_config_t *cfg = s->cfg;
    zj_answer_cfg_default(&s->acfg);
    if (cfg->rrl.rate > 0) {
        /* The config was checked at parse time, so NULL here means out of memory. */
        s->rrl = zj_rrl_new(&cfg->rrl);
        if (s->rrl == NULL) {
            zj_log_err("response rate limiting: cannot allocate its table");
            return ZJ_ENOMEM;
        }
        zj_log_info("response rate limiting: %u/s per bucket, slip %u, window %u s, /%u and /%u",
                    cfg->rrl.rate, cfg->rrl.slip, cfg->rrl.window_s, cfg->rrl.ipv4_prefix,
                    cfg->rrl.ipv6_prefix);
    }
    s->acfg.rrl = s->rrl;
    s->acfg.edns_payload = cfg->edns_payload;
    s->acfg.nsid = cfg->nsid;
    s->acfg.nsid_len = cfg->nsid_len;
    if (cfg->identity != NULL) {
        s->acfg.identity = cfg->identity;
    }
    if (cfg->version_string != NULL) {
        s->acfg.version = cfg->version_string;
    }
    return ZJ_OK;
}

static uint64_t base_seed(void)
{
    uint64_t seed = 0;
    if (getrandom(&seed, sizeof(seed), 0) != (ssize_t)sizeof(seed)) {
        seed = (uint64_t)getpid() * 0x9e3779b97f4a7c15ull ^ zj_now_ms();
    }
    return seed;
}

/* The health-check registry, and the geolocation database when configured: both before the
 * image set, which points at them. */
static int open_policy_state(server_t *s)
{
    int rc = ZJ_OK;
    if (s->cfg->geoip_path != NULL) {
        rc = zj_reload_geo_open(&s->reload, s->cfg->geoip_path);
        if (rc != ZJ_OK) {
            return rc;
        }
    }
    rc = zj_health_new(&s->health);
    if (rc != ZJ_OK) {
        zj_log_err("health checks: %s", zj_strerror(rc));
    }
    return rc;
}

static int start_workers(server_t *s)
{
    char text[ZJ_ADDR_TEXT_CAP];
    uint64_t seed = s->cfg->has_seed ? s->cfg->seed : base_seed();
    if (s->cfg->has_seed) {
        zj_log_info("--seed %llu: workers' random choices are reproducible",
                    (unsigned long long)s->cfg->seed);
    }
    for (unsigned i = 0; i < s->n_workers; i++) {
        zj_worker_t *w = &s->workers[i];
        w->id = i;
        w->cpu = s->cpus[i];
        w->io = s->io;
        w->udp_fds = &s->udp_fds[(size_t)i * s->n_addrs];
        w->tcp_fds = &s->tcp_fds[(size_t)i * s->n_addrs];
        w->n_socks = s->n_addrs;
        w->stop_fd = s->stop_fd;
        w->stop = &s->stop;
        w->tcp_limits.max_conns = s->cfg->tcp_max_conns;
        w->tcp_limits.max_conns_per_ip = s->cfg->tcp_max_conns_per_ip;
        w->tcp_limits.idle_ms = s->cfg->tcp_idle_ms;
        w->tcp_limits.msg_timeout_ms = s->cfg->tcp_msg_timeout_ms;
        w->tcp_limits.max_inflight = s->cfg->tcp_max_inflight;
        w->is_bench_echo = s->cfg->is_bench_echo;
        w->is_uring_sendmmsg = s->cfg->is_uring_sendmmsg;
        w->coalesce_us = s->cfg->coalesce_us;
        w->coalesce_min_qps = s->cfg->coalesce_min_qps;
        /* Distinct, reproducible-from-one-value seeds: golden-ratio steps apart. */
        int rc = zj_worker_start(w, &s->acfg, seed + i * 0x9e3779b97f4a7c15ull);
        if (rc != ZJ_OK) {
            zj_log_err("worker %u: cannot start: %s", i, zj_strerror(rc));
            return rc;
        }
        s->n_started++;
        zj_addr_format(&s->addrs[0], text, sizeof(text));
        bool is_sendmmsg = w->is_uring_sendmmsg && s->io == &zj_io_uring_ops;
        zj_log_info("worker %u %s%s on %s%s (cpu %d)", i, s->io->name,
                    is_sendmmsg ? " (sendmmsg sends)" : "", text, s->n_addrs > 1 ? " and more" : "",
                    w->cpu);
    }
    return ZJ_OK;
}

static void stop_workers(server_t *s)
{
    atomic_store(&s->stop, true);
    if (s->stop_fd >= 0) {
        uint64_t one = 1;
        /* The eventfd stays readable (nobody reads it), so every worker sees it. */
        if (write(s->stop_fd, &one, sizeof(one)) != (ssize_t)sizeof(one)) {
            zj_log_warn("stop event: %s", strerror(errno));
        }
    }
    for (unsigned i = 0; i < s->n_started; i++) {
        zj_worker_join(&s->workers[i]);
    }
    s->n_started = 0;
}

static int setup_signals(server_t *s)
{
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    /* Block before any thread exists so all inherit the mask and only the signalfd sees them. */
    int rc = pthread_sigmask(SIG_BLOCK, &mask, NULL);
    if (rc != 0) {
        return -rc;
    }
    signal(SIGPIPE, SIG_IGN);
    s->sig_fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    return s->sig_fd < 0 ? -errno : ZJ_OK;
}

/* SIGHUP: re-read every changed source; the outcome is logged (the reply text is dropped). */
static void reload_on_signal(server_t *s)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    if (out == NULL) {
        zj_log_err("SIGHUP: out of memory; nothing reloaded");
        return;
    }
    (void)zj_reload_apply(&s->reload, ZJ_RELOAD_ALL, NULL, 0, out);
    fclose(out);
    free(text);
}

/* Serve signals and control clients until told to stop. */
static void serve(server_t *s, uint64_t start_ms)
{
    zj_control_view_t view = {
        .workers = s->workers,
        .n_workers = s->n_workers,
        .io_name = s->io->name,
        .start_ms = start_ms,
    };
    view.reload = &s->reload;
    view.health = s->health;
    /* A negative fd is ignored by poll: no control socket, or no --watch. */
    struct pollfd pfd[3] = {
        {.fd = s->sig_fd, .events = POLLIN},
        {.fd = s->control_fd, .events = POLLIN},
        {.fd = zj_reload_watch_fd(&s->reload), .events = POLLIN},
    };
    for (;;) {
        int n = poll(pfd, 3, -1);
        if (n < 0 && errno != EINTR) {
            zj_log_err("poll: %s", strerror(errno));
            return;
        }
        if ((pfd[0].revents & POLLIN) != 0) {
            struct signalfd_siginfo si;
            while (read(s->sig_fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
                if (si.ssi_signo == SIGHUP) {
                    zj_log_info("SIGHUP: re-reading changed sources");
                    reload_on_signal(s);
                    continue;
                }
                zj_log_info("stopping (%s)", si.ssi_signo == SIGINT ? "SIGINT" : "SIGTERM");
                return;
            }
        }
        if (s->control_fd >= 0 && (pfd[1].revents & POLLIN) != 0) {
            zj_control_serve(s->control_fd, &view);
        }
        if ((pfd[2].revents & POLLIN) != 0) {
            zj_reload_watch_handle(&s->reload);
        }
    }
}

int zj_server_run(const zj_config_t *cfg)
{
    char text[ZJ_ADDR_TEXT_CAP];
    server_t s = {.cfg = cfg, .stop_fd = -1, .sig_fd = -1, .control_fd = -1};
    bool is_swap_ready = false;
    uint64_t start_ms = zj_now_ms();
    int rc = setup_signals(&s);
    if (rc != ZJ_OK) {
        zj_log_err("signals: %s", zj_strerror(rc));
        goto out;
    }
    rc = plan_workers(&s);
    if (rc != ZJ_OK) {
        goto out;
    }
    rc = open_policy_state(&s);
    if (rc != ZJ_OK) {
        goto out;
    }
    zj_anstab_set_enabled(cfg->is_answer_table); /* read when each image set is indexed */
    rc = open_set(&s);
    if (rc != ZJ_OK) {
        goto out;
    }
    rc = zj_health_start(s.health);
    if (rc != ZJ_OK) {
        zj_log_err("health checks: cannot start their thread: %s", zj_strerror(rc));
        goto out;
    }
    rc = choose_io(&s);
    if (rc != ZJ_OK) {
        goto out;
    }
    s.n_addrs = cfg->n_listens;
    s.addrs = malloc(s.n_addrs * sizeof(zj_addr_t));
    if (s.addrs == NULL) {
        rc = ZJ_ENOMEM;
        goto out;
    }
    memcpy(s.addrs, cfg->listens, s.n_addrs * sizeof(zj_addr_t));
    rc = open_sockets(&s);
    if (rc != ZJ_OK) {
        goto out;
    }
    rc = zj_swap_init(s.n_workers, s.set);
    if (rc != ZJ_OK) {
        goto out;
    }
    is_swap_ready = true;
    s.stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (s.stop_fd < 0) {
        rc = -errno;
        zj_log_err("eventfd: %s", strerror(errno));
        goto out;
    }
    rc = answer_cfg(&s);
    if (rc != ZJ_OK) {
        goto out;
    }
    /* The control socket exists before any worker answers: a script that sees the server
     * answer can use zonejet-ctl at once (connections wait in the backlog until serve()). */
    if (cfg->control_path != NULL) {
        s.control_fd = zj_control_open(cfg->control_path);
        if (s.control_fd < 0) {
            rc = s.control_fd;
            goto out;
        }
        zj_log_info("control socket %s", cfg->control_path);
    }
    rc = start_workers(&s);
    if (rc != ZJ_OK) {
        goto out;
    }
    if (cfg->is_watch) {
        rc = zj_reload_watch_start(&s.reload);
        if (rc != ZJ_OK) {
            goto out;
        }
    }
    if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), CONTROL_NICE) != 0) {
        zj_log_warn("cannot lower the server thread's priority: %s", strerror(errno));
    }
    if (cfg->is_bench_echo) {
        zj_log_warn("--bench-echo: answering every query with itself (benchmark floor only)");
    }

    for (size_t a = 0; a < s.n_addrs; a++) {
        zj_addr_format(&s.addrs[a], text, sizeof(text));
        zj_log_info("listening on %s (udp, tcp) with %u workers", text, s.n_workers);
    }
    serve(&s, start_ms);
out:
    stop_workers(&s);
    zj_health_stop(s.health);
    zj_control_close(s.control_fd, cfg->control_path);
    close_sockets(&s);
    if (is_swap_ready) {
        s.set = (zj_imgset_t *)zj_swap_fini();
    }
    zj_imgset_close(s.set);
    zj_health_free(s.health);
    zj_reload_fini(&s.reload);
    zj_rrl_free(s.rrl);

    if (s.stop_fd >= 0) {
        close(s.stop_fd);
    }
    if (s.sig_fd >= 0) {
        close(s.sig_fd);
    }
    free(s.udp_fds);
    free(s.tcp_fds);
    free(s.addrs);
    free(s.workers);
    free(s.cpus);
    if (rc == ZJ_OK) {
        zj_log_info("stopped");
    }
    return rc == ZJ_OK ? 0 : 1;
}
