/* The health-check registry and its checker thread (see health.h).
 *
 * Key structures: one hcheck_t per distinct check, allocated on its own and never moved, so
 * its state byte (the first field) keeps its address for as long as any image points at it;
 * a hash table from the check's identity (zone apex, name, definition; for a calculated check
 * its children's entries) to the entry; a list of entries in creation order, which puts every
 * calculated check after its children (an image lists children first, and a parent's identity
 * names its children's entries, so they exist before it); a min-heap of probe checks by next
 * probe time; at most HEALTH_MAX_INFLIGHT probes in flight (health/probe.h). One attachment per
 * image with checks holds its entries and the pointer array img->health points at.
 *
 * Threads and locking: one mutex guards everything. The control thread takes it to attach,
 * detach and describe; the checker thread holds it except while it sleeps in poll(). An entry
 * is freed only by detach (the last image using it is gone); detach bumps a generation count,
 * and the checker ignores what poll() reported when the count moved while it slept (its fds
 * may belong to freed probes) and polls again. The state byte is written with a relaxed atomic
 * store; workers read it with a relaxed load (zj_check_healthy): a flip reaches them within a
 * batch or so, and nothing else is published through it.
 *
 * State machine (Route 53's): each probe result counts toward a streak of equal results (after
 * inversion); the state flips when a streak of `threshold` results disagrees with it. Disabled
 * checks are never probed and keep a fixed state: healthy, or unhealthy when also inverted
 * (Route 53: a disabled check is considered healthy, and inverting it is how one stops routing
 * to the resource). A calculated check is healthy when at least min_healthy
 * of its children are (their final states), re-evaluated in list order after every change.
 * New checks start healthy; the first probe of each check comes at a random point within its
 * interval so that a reload of many checks does not probe them all at once.
 *
 * Rejected: a thread per check (thousands of threads for thousands of checks), epoll (the
 * in-flight set is small and changes with every probe; rebuilding a poll array is simpler and
 * as cheap), and lock-free registry edits (attach and detach are rare and off the query path). */
#include "health/health.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <xxhash.h>

#include <openssl/ssl.h>

#include "zonejet/dname.h"
#include "zonejet/err.h"
#include "health/health_internal.h"
#include "health/probe.h"
#include "util/log.h"
#include "util/mem.h"

/* Probes in flight at once: each holds one socket and a zj_probe_t (~17 KiB: request, header
 * block and body window, health/probe.h), so 256 bound the checker to 256 fds and ~4.5 MiB. A
 * check due while all slots are busy waits for a free slot; 1,000 checks at the 10 s fast
 * interval with 1 s answers use ~100. */
#define HEALTH_MAX_INFLIGHT 256
/* Shortest interval honoured: the compiler allows 1 s and up; 10 ms lets unit tests run fast
 * without letting a zero turn the checker into a busy loop. */
#define HEALTH_MIN_INTERVAL_MS 10u
/* Hash buckets to start with; doubled when there are more checks than buckets. */
#define HEALTH_BUCKETS_MIN 64u
/* A zone apex or name in the describe output (RFC 1035 text of a wire name fits in 1,024). */
#define HEALTH_NAME_CAP 1024

typedef struct hcheck hcheck_t;

struct hcheck {
    uint8_t state;         /* the byte images point at: 1 healthy, 0 not (read by workers) */
    hcheck_t *prev, *next; /* registry list, creation order */
    hcheck_t *hnext;       /* hash chain */
    uint64_t hash;
    uint8_t *key;
    size_t key_len;
    unsigned refs; /* images (and calculated parents) using this entry */
    /* definition */
    uint16_t kind;
    uint16_t flags;
    uint32_t interval_ms;
    uint32_t timeout_ms; /* at most the interval */
    uint32_t threshold;  /* >= 1 */
    uint16_t min_healthy;
    uint16_t n_children;
    hcheck_t **children;      /* calculated: entries, each holding a reference */
    zj_probe_target_t target; /* strings point into text */
    const char *zone;         /* apex, text */
    const char *name;
    char *text; /* one allocation: zone, name, path, host, match */
    /* run state */
    size_t heap_i; /* SIZE_MAX: not in the heap (in flight, disabled or calculated) */
    size_t inflight_i;
    zj_probe_t *probe; /* in flight, or NULL */
    uint64_t next_ms;
    uint64_t started_ms;
    bool has_last;
    bool last_want; /* healthy-looking (after inversion) */
    unsigned streak;
    unsigned flip_streak;
    uint64_t n_results;
    uint64_t n_flips;
    uint64_t last_ms; /* when last was set, 0: never */
    char last[ZJ_PROBE_RESULT_CAP];
};

typedef struct attachment attachment_t;

struct attachment {
    attachment_t *next;
    const zj_image_t *img;
    uint32_t n;
    hcheck_t **checks;     /* n entries: check i of img */
    const uint8_t **bytes; /* n pointers: what img->health points at */
};

struct zj_health {
    pthread_mutex_t mu;
    pthread_t thread;
    bool is_started;
    bool is_stopping;
    int wake_fd;
    uint64_t gen; /* bumped by every attach and detach */
    uint64_t rng;
    SSL_CTX *tls; /* made at the first HTTPS probe */
    bool is_tls_failed;
    hcheck_t *head, *tail;
    size_t n_checks;
    hcheck_t **buckets;
    size_t n_buckets; /* a power of two */
    hcheck_t **heap;
    size_t heap_len, heap_cap;
    hcheck_t *inflight[HEALTH_MAX_INFLIGHT];
    size_t n_inflight;
    attachment_t *attached;
};

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* xorshift64*: spreads first probes over the interval; quality hardly matters. */
static uint64_t next_rand(zj_health_t *h)
{
    h->rng ^= h->rng >> 12;
    h->rng ^= h->rng << 25;
    h->rng ^= h->rng >> 27;
    return h->rng * 0x2545F4914F6CDD1Dull;
}

static void wake(zj_health_t *h)
{
    uint64_t one = 1;
    if (h->wake_fd >= 0 && write(h->wake_fd, &one, sizeof(one)) != (ssize_t)sizeof(one)) {
        /* The counter is already non-zero (EAGAIN at its maximum): the thread will wake. */
    }
}

/* ---- the heap of probe checks by next_ms ---- */

static void heap_set(zj_health_t *h, size_t i, hcheck_t *e)
{
    h->heap[i] = e;
    e->heap_i = i;
}

static void heap_up(zj_health_t *h, size_t i)
{
    hcheck_t *e = h->heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (h->heap[parent]->next_ms <= e->next_ms) {
            break;
        }
        heap_set(h, i, h->heap[parent]);
        i = parent;
    }
    heap_set(h, i, e);
}

static void heap_down(zj_health_t *h, size_t i)
{
    hcheck_t *e = h->heap[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->heap_len) {
            break;
        }
        if (c + 1 < h->heap_len && h->heap[c + 1]->next_ms < h->heap[c]->next_ms) {
            c++;
        }
        if (h->heap[c]->next_ms >= e->next_ms) {
            break;
        }
        heap_set(h, i, h->heap[c]);
        i = c;
    }
    heap_set(h, i, e);
}

/* The heap has room for every probe check (reserved when the check was created). */
static void heap_push(zj_health_t *h, hcheck_t *e)
{
    heap_set(h, h->heap_len++, e);
    heap_up(h, e->heap_i);
}

static void heap_remove(zj_health_t *h, hcheck_t *e)
{
    size_t i = e->heap_i;
    if (i == SIZE_MAX) {
        return;
    }
    e->heap_i = SIZE_MAX;
    hcheck_t *last = h->heap[--h->heap_len];
    if (i == h->heap_len) {
        return;
    }
    heap_set(h, i, last);
    heap_up(h, i);
    heap_down(h, last->heap_i);
}

static bool is_probed(const hcheck_t *e)
{
    return e->kind != ZJ_CHECK_CALCULATED && (e->flags & ZJ_CHECK_DISABLED) == 0;
}

static bool is_disabled(const hcheck_t *e)
{
    return (e->flags & ZJ_CHECK_DISABLED) != 0;
}

/* The fixed state of a disabled check: healthy, inverted to unhealthy (Route 53's rule). */
static bool disabled_state(const hcheck_t *e)
{
    return (e->flags & ZJ_CHECK_INVERTED) == 0;
}

/* ---- state changes ---- */

static const char *kind_name(uint16_t kind)
{
    switch (kind) {
    case ZJ_CHECK_TCP:
        return "tcp";
    case ZJ_CHECK_HTTP:
        return "http";
    case ZJ_CHECK_HTTPS:
        return "https";
    case ZJ_CHECK_CALCULATED:
        return "calculated";
    }
    return "?";
}

static void set_state(hcheck_t *e, bool is_healthy)
{
    __atomic_store_n(&e->state, (uint8_t)(is_healthy ? 1 : 0), __ATOMIC_RELAXED);
    e->flip_streak = e->streak;
    e->n_flips++;
    zj_log_info("health check %s %s (%s): %s (%s)", e->zone, e->name, kind_name(e->kind),
                is_healthy ? "healthy" : "unhealthy", e->last);
}

/* A calculated check from its children's states; true if its state changed. */
static bool evaluate(hcheck_t *e, uint64_t now)
{
    unsigned n_ok = 0;
    for (uint16_t i = 0; i < e->n_children; i++) {
        n_ok += __atomic_load_n(&e->children[i]->state, __ATOMIC_RELAXED) != 0;
    }
    char text[ZJ_PROBE_RESULT_CAP];
    snprintf(text, sizeof(text), "%u of %u healthy", n_ok, (unsigned)e->n_children);
    if (strcmp(text, e->last) != 0) {
        memcpy(e->last, text, sizeof(text));
        e->last_ms = now;
        e->n_results++;
    }
    bool want = n_ok >= e->min_healthy;
    want = want != ((e->flags & ZJ_CHECK_INVERTED) != 0);
    if (is_disabled(e)) {
        want = disabled_state(e);
    }
    if (want == (e->state != 0)) {
        return false;
    }
    e->streak = 1;
    set_state(e, want);
    return true;
}

/* Every calculated check, children first (list order). */
static void reevaluate(zj_health_t *h, uint64_t now)
{
    for (hcheck_t *e = h->head; e != NULL; e = e->next) {
        if (e->kind == ZJ_CHECK_CALCULATED) {
            (void)evaluate(e, now);
        }
    }
}

static void record(zj_health_t *h, hcheck_t *e, bool is_ok, const char *text, uint64_t now)
{
    bool want = is_ok != ((e->flags & ZJ_CHECK_INVERTED) != 0);
    if (e->has_last && want == e->last_want) {
        e->streak += e->streak < UINT_MAX;
    } else {
        e->streak = 1;
        e->last_want = want;
        e->has_last = true;
    }
    e->n_results++;
    e->last_ms = now;
    snprintf(e->last, sizeof(e->last), "%s", text);
    if (is_disabled(e) || want == (e->state != 0) || e->streak < e->threshold) {
        return;
    }
    set_state(e, want);
    reevaluate(h, now);
}

/* ---- probes ---- */

static SSL_CTX *tls_context(zj_health_t *h)
{
    if (h->tls != NULL || h->is_tls_failed) {
        return h->tls;
    }
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL) {
        h->is_tls_failed = true;
        zj_log_err("health checks: cannot create a TLS context; HTTPS checks will fail");
        return NULL;
    }
    /* Route 53 does not validate certificates of HTTPS health checks (see probe.c). */
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    /* `Connection: close` servers often close without close_notify: that is the end of the
     * body, not a failure. */
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
    h->tls = ctx;
    return ctx;
}

static void inflight_remove(zj_health_t *h, hcheck_t *e)
{
    size_t i = e->inflight_i;
    h->inflight[i] = h->inflight[--h->n_inflight];
    h->inflight[i]->inflight_i = i;
    free(e->probe);
    e->probe = NULL;
}

/* A probe ended (or never started): record it and schedule the next one. */
static void probe_done(zj_health_t *h, hcheck_t *e, bool is_ok, const char *text, uint64_t now)
{
    if (e->probe != NULL) {
        inflight_remove(h, e);
    }
    record(h, e, is_ok, text, now);
    e->next_ms = e->started_ms + e->interval_ms;
    if (e->next_ms <= now) {
        e->next_ms = now + 1;
    }
    heap_push(h, e);
}

static void probe_start(zj_health_t *h, hcheck_t *e, uint64_t now)
{
    heap_remove(h, e);
    e->started_ms = now;
    zj_probe_t *p = malloc(sizeof(*p));
    if (p == NULL) {
        probe_done(h, e, false, "out of memory", now);
        return;
    }
    SSL_CTX *tls = e->kind == ZJ_CHECK_HTTPS ? tls_context(h) : NULL;
    int r = zj_probe_start(p, &e->target, tls);
    if (r != ZJ_PROBE_RUNNING) {
        probe_done(h, e, r == ZJ_PROBE_OK, p->result, now);
        free(p);
        return;
    }
    e->probe = p;
    e->inflight_i = h->n_inflight;
    h->inflight[h->n_inflight++] = e;
}

static void probe_abort(zj_health_t *h, hcheck_t *e)
{
    if (e->probe == NULL) {
        return;
    }
    zj_probe_close(e->probe);
    inflight_remove(h, e);
}

/* Time out probes past their deadline and start those that are due. Returns the poll timeout
 * in ms until the next deadline or due probe (-1: none). */
static int run_timers(zj_health_t *h, uint64_t now)
{
    char text[ZJ_PROBE_RESULT_CAP];
    for (size_t i = h->n_inflight; i-- > 0;) {
        hcheck_t *e = h->inflight[i];
        if (now >= e->started_ms + e->timeout_ms) {
            snprintf(text, sizeof(text), "timeout (%s)", zj_probe_phase_name(e->probe));
            zj_probe_close(e->probe);
            probe_done(h, e, false, text, now);
        }
    }
    while (h->heap_len > 0 && h->heap[0]->next_ms <= now && h->n_inflight < HEALTH_MAX_INFLIGHT) {
        probe_start(h, h->heap[0], now);
    }
    uint64_t until = UINT64_MAX;
    for (size_t i = 0; i < h->n_inflight; i++) {
        uint64_t d = h->inflight[i]->started_ms + h->inflight[i]->timeout_ms;
        until = d < until ? d : until;
    }
    if (h->heap_len > 0 && h->n_inflight < HEALTH_MAX_INFLIGHT && h->heap[0]->next_ms < until) {
        until = h->heap[0]->next_ms;
    }
    if (until == UINT64_MAX) {
        return -1;
    }
    uint64_t wait = until > now ? until - now : 0;
    return wait > INT_MAX ? INT_MAX : (int)wait;
}

static void *checker_main(void *arg)
{
    zj_health_t *h = arg;
    struct pollfd pfd[HEALTH_MAX_INFLIGHT + 1];
    hcheck_t *polled[HEALTH_MAX_INFLIGHT];

    (void)pthread_setname_np(pthread_self(), "zj-health"); /* for top -H and gdb */
    pthread_mutex_lock(&h->mu);
    while (!h->is_stopping) {
        int timeout = run_timers(h, mono_ms());
        size_t n = h->n_inflight;
        pfd[0] = (struct pollfd){.fd = h->wake_fd, .events = POLLIN};
        for (size_t i = 0; i < n; i++) {
            polled[i] = h->inflight[i];
            pfd[i + 1] =
                (struct pollfd){.fd = polled[i]->probe->fd, .events = polled[i]->probe->events};
        }
        uint64_t gen = h->gen;
        pthread_mutex_unlock(&h->mu);
        int rc = poll(pfd, n + 1, timeout);
        pthread_mutex_lock(&h->mu);
        if ((pfd[0].revents & POLLIN) != 0) {
            uint64_t count;
            (void)!read(h->wake_fd, &count, sizeof(count));
        }
        if (rc <= 0 || gen != h->gen || h->is_stopping) {
            continue; /* an edit may have freed what was polled: look again */
        }
        uint64_t now = mono_ms();
        for (size_t i = 0; i < n; i++) {
            hcheck_t *e = polled[i];
            if (pfd[i + 1].revents == 0 || e->probe == NULL) {
                continue;
            }
            int r = zj_probe_step(e->probe);
            if (r != ZJ_PROBE_RUNNING) {
                char text[ZJ_PROBE_RESULT_CAP];
                memcpy(text, e->probe->result, sizeof(text));
                probe_done(h, e, r == ZJ_PROBE_OK, text, now);
            }
        }
    }
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

/* ---- registry ---- */

int zj_health_new(zj_health_t **out)
{
    zj_health_t *h = calloc(1, sizeof(*h));
    if (h == NULL) {
        return ZJ_ENOMEM;
    }
    h->n_buckets = HEALTH_BUCKETS_MIN;
    h->buckets = calloc(h->n_buckets, sizeof(*h->buckets));
    h->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (h->buckets == NULL || h->wake_fd < 0 || pthread_mutex_init(&h->mu, NULL) != 0) {
        int rc = h->wake_fd < 0 && h->buckets != NULL ? -errno : ZJ_ENOMEM;
        if (h->wake_fd >= 0) {
            close(h->wake_fd);
        }
        free(h->buckets);
        free(h);
        return rc;
    }
    if (getrandom(&h->rng, sizeof(h->rng), GRND_NONBLOCK) != (ssize_t)sizeof(h->rng)) {
        h->rng = mono_ms() * 0x9e3779b97f4a7c15ull;
    }
    h->rng |= 1; /* xorshift must not start at 0 */
    *out = h;
    return ZJ_OK;
}

int zj_health_start(zj_health_t *h)
{
    pthread_mutex_lock(&h->mu);
    bool is_started = h->is_started;
    pthread_mutex_unlock(&h->mu);
    if (is_started) {
        return ZJ_EINVAL;
    }
    /* Signals stay with the server thread: the checker inherits the caller's mask. */
    int rc = pthread_create(&h->thread, NULL, checker_main, h);
    if (rc != 0) {
        return -rc;
    }
    pthread_mutex_lock(&h->mu);
    h->is_started = true;
    pthread_mutex_unlock(&h->mu);
    return ZJ_OK;
}

void zj_health_stop(zj_health_t *h)
{
    if (h == NULL) {
        return;
    }
    pthread_mutex_lock(&h->mu);
    bool is_started = h->is_started && !h->is_stopping;
    h->is_stopping = true;
    pthread_mutex_unlock(&h->mu);
    if (!is_started) {
        return;
    }
    wake(h);
    pthread_join(h->thread, NULL);
    pthread_mutex_lock(&h->mu);
    while (h->n_inflight > 0) {
        hcheck_t *e = h->inflight[h->n_inflight - 1];
        probe_abort(h, e);
        heap_push(h, e);
    }
    pthread_mutex_unlock(&h->mu);
}

static void entry_free(hcheck_t *e)
{
    free(e->children);
    free(e->key);
    free(e->text);
    free(e);
}

/* Drop one reference; at zero the entry leaves every structure and is freed (and releases its
 * children). */
static void release(zj_health_t *h, hcheck_t *e)
{
    if (--e->refs > 0) {
        return;
    }
    probe_abort(h, e);
    heap_remove(h, e);
    hcheck_t **pp = &h->buckets[e->hash & (h->n_buckets - 1)];
    while (*pp != e) {
        pp = &(*pp)->hnext;
    }
    *pp = e->hnext;
    if (e->prev != NULL) {
        e->prev->next = e->next;
    } else {
        h->head = e->next;
    }
    if (e->next != NULL) {
        e->next->prev = e->prev;
    } else {
        h->tail = e->prev;
    }
    h->n_checks--;
    for (uint16_t i = 0; i < e->n_children; i++) {
        release(h, e->children[i]);
    }
    entry_free(e);
}

void zj_health_free(zj_health_t *h)
{
    if (h == NULL) {
        return;
    }
    zj_health_stop(h);
    while (h->attached != NULL) {
        attachment_t *a = h->attached;
        h->attached = a->next;
        for (uint32_t i = 0; i < a->n; i++) {
            release(h, a->checks[i]);
        }
        free(a->checks);
        free(a->bytes);
        free(a);
    }
    if (h->tls != NULL) {
        SSL_CTX_free(h->tls);
    }
    free(h->heap);
    free(h->buckets);
    close(h->wake_fd);
    pthread_mutex_destroy(&h->mu);
    free(h);
}

/* ---- identity of a check ---- */

typedef struct keybuf {
    uint8_t *p;
    size_t len, cap;
    bool is_failed;
} keybuf_t;

static void key_put(keybuf_t *k, const void *data, size_t len)
{
    if (k->is_failed) {
        return;
    }
    uint8_t *grown = zj_grow(k->p, &k->cap, k->len + len, 1, 256);
    if (grown == NULL) {
        k->is_failed = true;
        return;
    }
    k->p = grown;
    memcpy(k->p + k->len, data, len);
    k->len += len;
}

/* A string with its length, or a marker for "none". */
static void key_str(keybuf_t *k, const char *s)
{
    uint32_t len = s != NULL ? (uint32_t)strlen(s) : UINT32_MAX;
    key_put(k, &len, sizeof(len));
    if (s != NULL) {
        key_put(k, s, len);
    }
}

/* A STRS string of img, NULL for ZJ_IMG_NONE; ZJ_EINVAL when off is not a string. */
static int img_str(const zj_image_t *img, uint32_t off, const char **out)
{
    *out = NULL;
    if (off == ZJ_IMG_NONE) {
        return ZJ_OK;
    }
    if (img->strs == NULL || off >= img->strs_len ||
        memchr(img->strs + off, '\0', img->strs_len - off) == NULL) {
        return ZJ_EINVAL;
    }
    *out = img->strs + off;
    return ZJ_OK;
}

/* Everything one check of an image is, with strings resolved. */
typedef struct check_view {
    const zj_img_check_d *d;
    const uint8_t *zone_wire;
    size_t zone_len;
    const char *name, *path, *host, *match;
} check_view_t;

static int view_check(const zj_image_t *img, uint32_t i, check_view_t *v)
{
    const zj_img_check_d *d = &img->checks[i];
    memset(v, 0, sizeof(*v));
    v->d = d;
    if (d->zone >= img->n_zones || img->zones[d->zone].name_off >= img->names_len) {
        return ZJ_EINVAL;
    }
    v->zone_wire = img->names + img->zones[d->zone].name_off;
    int len = zj_dname_len(v->zone_wire, img->names_len - img->zones[d->zone].name_off);
    if (len <= 0) {
        return ZJ_EINVAL;
    }
    v->zone_len = (size_t)len;
    if (img_str(img, d->name_off, &v->name) != ZJ_OK || v->name == NULL) {
        return ZJ_EINVAL;
    }
    if (d->kind == ZJ_CHECK_CALCULATED) {
        /* Children come before their parent (the compiler's order; a cycle is impossible). */
        if ((uint64_t)d->children_off + d->n_children > img->n_u32) {
            return ZJ_EINVAL;
        }
        for (uint16_t c = 0; c < d->n_children; c++) {
            if (img->u32[d->children_off + c] >= i) {
                return ZJ_EINVAL;
            }
        }
        return ZJ_OK;
    }
    if (d->kind != ZJ_CHECK_TCP && d->kind != ZJ_CHECK_HTTP && d->kind != ZJ_CHECK_HTTPS) {
        return ZJ_EINVAL;
    }
    if (d->family != AF_INET && d->family != AF_INET6) {
        return ZJ_EINVAL;
    }
    if (d->kind != ZJ_CHECK_TCP && (img_str(img, d->path_off, &v->path) != ZJ_OK ||
                                    img_str(img, d->host_off, &v->host) != ZJ_OK ||
                                    img_str(img, d->match_off, &v->match) != ZJ_OK)) {
        return ZJ_EINVAL;
    }
    return ZJ_OK;
}

/* The identity: zone apex, name and every field that changes what is probed or how results
 * count; for a calculated check, its children's entries (so a changed child makes a new
 * parent). Fields are written one by one, never as struct bytes, so padding cannot differ. */
static void build_key(keybuf_t *k, const check_view_t *v, hcheck_t *const *children)
{
    const zj_img_check_d *d = v->d;
    k->len = 0;
    key_put(k, v->zone_wire, v->zone_len);
    key_str(k, v->name);
    const uint32_t words[] = {d->kind,      d->flags,       d->port,
                              d->family,    d->interval_ms, d->timeout_ms,
                              d->threshold, d->n_children,  d->min_healthy};
    key_put(k, words, sizeof(words));
    if (d->kind == ZJ_CHECK_CALCULATED) {
        for (uint16_t c = 0; c < d->n_children; c++) {
            key_put(k, &children[c], sizeof(children[c]));
        }
        return;
    }
    key_put(k, d->addr, sizeof(d->addr));
    key_str(k, v->path);
    key_str(k, v->host);
    key_str(k, v->match);
}

static hcheck_t *find_entry(const zj_health_t *h, uint64_t hash, const keybuf_t *k)
{
    for (hcheck_t *e = h->buckets[hash & (h->n_buckets - 1)]; e != NULL; e = e->hnext) {
        if (e->hash == hash && e->key_len == k->len && memcmp(e->key, k->p, k->len) == 0) {
            return e;
        }
    }
    return NULL;
}

/* Room for one more entry: buckets (rehash when full) and a heap slot. */
static int reserve_entry(zj_health_t *h)
{
    if (h->n_checks + 1 > h->n_buckets) {
        size_t nb = h->n_buckets * 2;
        hcheck_t **b = calloc(nb, sizeof(*b));
        if (b == NULL) {
            return ZJ_ENOMEM;
        }
        for (hcheck_t *e = h->head; e != NULL; e = e->next) {
            e->hnext = b[e->hash & (nb - 1)];
            b[e->hash & (nb - 1)] = e;
        }
        free(h->buckets);
        h->buckets = b;
        h->n_buckets = nb;
    }
    /* The heap holds probe checks only, but one slot per entry keeps the arithmetic simple. */
    hcheck_t **heap = zj_grow(h->heap, &h->heap_cap, h->n_checks + 1, sizeof(*heap), 64);
    if (heap == NULL) {
        return ZJ_ENOMEM;
    }
    h->heap = heap;
    return ZJ_OK;
}

/* Append s (or nothing for NULL) to the text block; returns its copy. */
static const char *text_put(char **o, const char *s)
{
    if (s == NULL) {
        return NULL;
    }
    size_t n = strlen(s) + 1;
    memcpy(*o, s, n);
    const char *copy = *o;
    *o += n;
    return copy;
}

static hcheck_t *entry_new(zj_health_t *h, const check_view_t *v, hcheck_t *const *children,
                           const keybuf_t *k, uint64_t hash, uint64_t now)
{
    const zj_img_check_d *d = v->d;
    char zone[HEALTH_NAME_CAP];
    if (zj_dname_to_text(v->zone_wire, zone, sizeof(zone)) < 0) {
        snprintf(zone, sizeof(zone), "?");
    }
    const char *strs[] = {zone, v->name, v->path, v->host, v->match};
    size_t text_len = 0;
    for (size_t i = 0; i < ZJ_ARRAY_SIZE(strs); i++) {
        text_len += strs[i] != NULL ? strlen(strs[i]) + 1 : 0;
    }
    hcheck_t *e = calloc(1, sizeof(*e));
    if (e == NULL || reserve_entry(h) != ZJ_OK) {
        free(e);
        return NULL;
    }
    e->key = malloc(k->len);
    e->text = malloc(text_len);
    e->children = d->n_children > 0 && d->kind == ZJ_CHECK_CALCULATED
                      ? malloc(d->n_children * sizeof(*e->children))
                      : NULL;
    if (e->key == NULL || e->text == NULL ||
        (e->children == NULL && d->n_children > 0 && d->kind == ZJ_CHECK_CALCULATED)) {
        entry_free(e);
        return NULL;
    }
    memcpy(e->key, k->p, k->len);
    e->key_len = k->len;
    e->hash = hash;
    e->refs = 1;
    e->kind = d->kind;
    e->flags = d->flags;
    /* New checks are healthy until results say otherwise (Route 53); a disabled one has its
     * fixed state from the start, so no worker ever sees it healthy when it is not. */
    e->state = is_disabled(e) ? (uint8_t)disabled_state(e) : 1;
    e->interval_ms =
        d->interval_ms > HEALTH_MIN_INTERVAL_MS ? d->interval_ms : HEALTH_MIN_INTERVAL_MS;
    e->timeout_ms =
        d->timeout_ms > 0 && d->timeout_ms < e->interval_ms ? d->timeout_ms : e->interval_ms;
    e->threshold = d->threshold > 0 ? d->threshold : 1;
    e->min_healthy = d->min_healthy;
    e->heap_i = SIZE_MAX;
    char *o = e->text;
    e->zone = text_put(&o, zone);
    e->name = text_put(&o, v->name);
    e->target = (zj_probe_target_t){.kind = d->kind, .port = d->port, .family = d->family};
    memcpy(e->target.addr, d->addr, sizeof(d->addr));
    e->target.path = text_put(&o, v->path);
    e->target.host = text_put(&o, v->host);
    e->target.match = text_put(&o, v->match);
    if (d->kind == ZJ_CHECK_CALCULATED) {
        e->n_children = d->n_children;
        for (uint16_t c = 0; c < d->n_children; c++) {
            e->children[c] = children[c];
            children[c]->refs++;
        }
    }
    /* Link it in: list tail (after its children), hash chain, heap. */
    e->prev = h->tail;
    if (h->tail != NULL) {
        h->tail->next = e;
    } else {
        h->head = e;
    }
    h->tail = e;
    e->hnext = h->buckets[hash & (h->n_buckets - 1)];
    h->buckets[hash & (h->n_buckets - 1)] = e;
    h->n_checks++;
    if (is_probed(e)) {
        e->next_ms = now + next_rand(h) % e->interval_ms;
        heap_push(h, e);
    }
    return e;
}

int zj_health_attach(zj_health_t *h, zj_image_t *img)
{
    int rc = ZJ_OK;
    uint32_t n = img->n_checks;
    uint32_t done = 0;
    keybuf_t k = {0};
    hcheck_t **children = NULL;
    if (n == 0) {
        return ZJ_OK;
    }
    attachment_t *a = calloc(1, sizeof(*a));
    if (a == NULL) {
        return ZJ_ENOMEM;
    }
    a->img = img;
    a->n = n;
    a->checks = calloc(n, sizeof(*a->checks));
    a->bytes = calloc(n, sizeof(*a->bytes));
    size_t max_children = 1;
    for (uint32_t i = 0; i < n; i++) {
        if (img->checks[i].n_children > max_children) {
            max_children = img->checks[i].n_children;
        }
    }
    children = malloc(max_children * sizeof(*children));
    if (a->checks == NULL || a->bytes == NULL || children == NULL) {
        rc = ZJ_ENOMEM;
        goto out;
    }
    pthread_mutex_lock(&h->mu);
    uint64_t now = mono_ms();
    for (; done < n; done++) {
        check_view_t v;
        rc = view_check(img, done, &v);
        if (rc != ZJ_OK) {
            break;
        }
        if (v.d->kind == ZJ_CHECK_CALCULATED) {
            for (uint16_t c = 0; c < v.d->n_children; c++) {
                children[c] = a->checks[img->u32[v.d->children_off + c]];
            }
        }
        build_key(&k, &v, children);
        if (k.is_failed) {
            rc = ZJ_ENOMEM;
            break;
        }
        uint64_t hash = XXH3_64bits(k.p, k.len);
        hcheck_t *e = find_entry(h, hash, &k);
        if (e != NULL) {
            e->refs++;
        } else {
            e = entry_new(h, &v, children, &k, hash, now);
        }
        if (e == NULL) {
            rc = ZJ_ENOMEM;
            break;
        }
        a->checks[done] = e;
        a->bytes[done] = &e->state;
    }
    if (rc != ZJ_OK) {
        while (done-- > 0) {
            release(h, a->checks[done]);
        }
    } else {
        reevaluate(h, now);
        a->next = h->attached;
        h->attached = a;
        img->health = a->bytes;
        h->gen++;
    }
    pthread_mutex_unlock(&h->mu);
    if (rc == ZJ_OK) {
        wake(h); /* new checks may be due before the thread's current timeout */
        a = NULL;
    }
out:
    if (a != NULL) {
        free(a->checks);
        free(a->bytes);
        free(a);
    }
    free(children);
    free(k.p);
    return rc;
}

void zj_health_detach(zj_health_t *h, zj_image_t *img)
{
    if (h == NULL || img->health == NULL) {
        return;
    }
    pthread_mutex_lock(&h->mu);
    attachment_t **pp = &h->attached;
    while (*pp != NULL && (*pp)->img != img) {
        pp = &(*pp)->next;
    }
    attachment_t *a = *pp;
    if (a != NULL) {
        *pp = a->next;
        for (uint32_t i = 0; i < a->n; i++) {
            release(h, a->checks[i]);
        }
        h->gen++;
    }
    pthread_mutex_unlock(&h->mu);
    img->health = NULL;
    if (a != NULL) {
        /* The thread may sleep in poll() on sockets of probes just aborted: until it returns,
         * poll keeps them open (the endpoint sees no close) and it would only notice the new
         * generation at its next deadline. */
        wake(h);
        free(a->checks);
        free(a->bytes);
        free(a);
    }
}

/* ---- output ---- */

static void describe_target(const hcheck_t *e, char *out, size_t cap)
{
    if (e->kind == ZJ_CHECK_CALCULATED) {
        /* "2 of (a,b,c)": a child's name never stands alone as a word on its parent's line. */
        size_t o = (size_t)snprintf(out, cap, "%u of (", (unsigned)e->min_healthy);
        for (uint16_t c = 0; c < e->n_children && o < cap; c++) {
            int n = snprintf(out + o, cap - o, "%s%s", c == 0 ? "" : ",", e->children[c]->name);
            o += n > 0 ? (size_t)n : 0;
        }
        if (o < cap) {
            snprintf(out + o, cap - o, ")");
        }
        return;
    }
    char addr[INET6_ADDRSTRLEN];
    inet_ntop(e->target.family, e->target.addr, addr, sizeof(addr));
    int n = snprintf(out, cap, e->target.family == AF_INET6 ? "[%s]:%u" : "%s:%u", addr,
                     (unsigned)e->target.port);
    size_t o = n > 0 ? (size_t)n : 0;
    if (e->kind != ZJ_CHECK_TCP && o < cap) {
        n = snprintf(out + o, cap - o, "%s",
                     e->target.path != NULL && e->target.path[0] != '\0' ? e->target.path : "/");
        o += n > 0 ? (size_t)n : 0;
    }
    if (e->target.host != NULL && o < cap) {
        n = snprintf(out + o, cap - o, " host=%s", e->target.host);
        o += n > 0 ? (size_t)n : 0;
    }
    if (e->target.match != NULL && o < cap) {
        snprintf(out + o, cap - o, " match=\"%s\"", e->target.match);
    }
}

size_t zj_health_describe(zj_health_t *h, char *out, size_t cap)
{
    char target[512];
    char last[ZJ_PROBE_RESULT_CAP + 48];
    size_t o = 0;
    if (cap == 0) {
        return 0;
    }
    out[0] = '\0';
    pthread_mutex_lock(&h->mu);
    uint64_t now = mono_ms();
    for (const hcheck_t *e = h->head; e != NULL && o + 1 < cap; e = e->next) {
        describe_target(e, target, sizeof(target));
        if (e->last_ms != 0) {
            uint64_t ms = now - e->last_ms;
            snprintf(last, sizeof(last), "\"%s\" %llu.%01llus ago", e->last,
                     (unsigned long long)(ms / 1000), (unsigned long long)(ms % 1000 / 100));
        } else {
            snprintf(last, sizeof(last), "none");
        }
        int n = snprintf(
            out + o, cap - o, "%s %s %s %s%s%s %s streak %u last %s\n", e->zone, e->name,
            kind_name(e->kind), target, (e->flags & ZJ_CHECK_INVERTED) != 0 ? " inverted" : "",
            (e->flags & ZJ_CHECK_DISABLED) != 0 ? " disabled" : "",
            __atomic_load_n(&e->state, __ATOMIC_RELAXED) != 0 ? "healthy" : "unhealthy", e->streak,
            last);
        o += n > 0 ? (size_t)n : 0;
    }
    if (h->head == NULL && o + 1 < cap) {
        int n = snprintf(out + o, cap - o, "no health checks\n");
        o += n > 0 ? (size_t)n : 0;
    }
    pthread_mutex_unlock(&h->mu);
    return o < cap ? o : cap - 1;
}

/* ---- for tests ---- */

static hcheck_t *lookup(zj_health_t *h, const zj_image_t *img, uint32_t c)
{
    for (attachment_t *a = h->attached; a != NULL; a = a->next) {
        if (a->img == img) {
            return c < a->n ? a->checks[c] : NULL;
        }
    }
    return NULL;
}

int zj_health_info(zj_health_t *h, const zj_image_t *img, uint32_t c, zj_health_info_t *out)
{
    pthread_mutex_lock(&h->mu);
    const hcheck_t *e = lookup(h, img, c);
    if (e != NULL) {
        out->state = __atomic_load_n(&e->state, __ATOMIC_RELAXED);
        out->streak = e->streak;
        out->flip_streak = e->flip_streak;
        out->n_results = e->n_results;
        out->n_flips = e->n_flips;
        out->refs = e->refs;
        out->byte = &e->state;
        memcpy(out->last, e->last, sizeof(out->last));
    }
    pthread_mutex_unlock(&h->mu);
    return e != NULL ? ZJ_OK : ZJ_ENOENT;
}

int zj_health_feed(zj_health_t *h, const zj_image_t *img, uint32_t c, bool is_ok, const char *text)
{
    pthread_mutex_lock(&h->mu);
    hcheck_t *e = lookup(h, img, c);
    if (e != NULL) {
        record(h, e, is_ok, text, mono_ms());
    }
    pthread_mutex_unlock(&h->mu);
    return e != NULL ? ZJ_OK : ZJ_ENOENT;
}
