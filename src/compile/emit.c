/* Zone image builder: records from the parser -> checked zones -> image bytes.
 *
 * add_file/add_text append every parsed record to one flat array (owners and rdata in growable
 * byte arenas, referenced by offset, so there is no allocation per record). finish() then, zone
 * by zone: sorts the records canonically (RFC 4034 §6.1 order, via a byte key that memcmp orders
 * the same way), groups them into nodes and RRsets, drops duplicate RRs, runs the semantic checks
 * (SOA and NS at the apex, CNAME alone, no data below a DNAME, data inside the zone, one TTL per
 * RRset), adds empty non-terminals, marks zone cuts, occluded names and wildcard parents, and
 * resolves additional-section targets to node indices. Last it lays out the sections of
 * include/zonejet/image.h and checksums them.
 *
 * The node index is built while nodes are created, in the final slot format, so the table that
 * finds ENTs and cuts here is the table the server probes.
 *
 * Policy files (docs/policies.md) are parsed and checked by compile/policy.c. Each policy (one
 * per owner and type) enters its zone's build as one placeholder record, so it gets a node, empty
 * non-terminals, wildcard flags and the CNAME and "same type in the zone file" checks like any
 * record; the placeholder becomes a policy RRset (n_rr == 0). After the zone's nodes are done,
 * its policies' record sets are written as ordinary RRSETS entries outside every node's range,
 * and the policy sections are appended (policy.c). An image without policies gets none of those
 * sections and is byte for byte what it was before policies existed.
 *
 * Checklist: the layout written here is validated by src/zone/image.c; change both together. */
#include "compile/emit.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include <xxhash.h>

#include "compile/parse.h"
#include "compile/rdata.h"
#include "compile/policy.h"
#include "zonejet/dname.h"
#include "zonejet/err.h"
#include "zonejet/image.h"
#include "zonejet/wire.h"
#include "zonejet/zone.h"

#define DEFAULT_SEED 0x7a6f6e656a657421ull /* fixed, so the same zones give the same image */
#define DEFAULT_MAX_FILE (1ull << 30)

typedef struct buf {
    uint8_t *p;
    size_t len;
    size_t cap;
} buf_t;

typedef struct rec {
    uint32_t seq;       /* position in input order */
    uint32_t owner_off; /* lower-case owner in b->owners */
    uint32_t key_off;   /* sort key in b->keys (set in finish) */
    uint32_t rdata_off;
    uint32_t ttl;
    uint32_t line;
    uint16_t file;
    uint16_t type;
    uint16_t rdlen;
    uint16_t key_len;
    uint8_t owner_len;
    uint8_t is_policy; /* placeholder of a policy: ttl is its index in the zone's policy file */
} rec_t;

typedef struct zone_in {
    uint8_t origin[ZJ_DNS_MAX_NAME];
    size_t origin_len;
    uint32_t first_rec;
    uint32_t n_recs;
    uint16_t file;
    uint16_t pol_file;
    zj_polfile_t *pol; /* the zone's policy file, or NULL */
} zone_in_t;

/* A policy RRset written by emit_rrset; its record sets and POLICIES entry follow when the
 * zone's nodes are complete. Index in this list = index in POLICIES. */
typedef struct pend {
    uint32_t pol; /* in the zone's policy file */
    uint32_t node;
} pend_t;

struct zj_builder {
    zj_build_opts_t opts;
    zj_parse_opts_t popts;
    buf_t owners, keys, rdata;
    rec_t *recs;
    size_t n_recs, cap_recs;
    zone_in_t *zones;
    size_t n_zones, cap_zones;
    char **files;
    size_t n_files;
    unsigned n_errors, n_warnings;
    size_t n_placeholders; /* policies of every zone */
    long last_zone;        /* zone of the last add_file/add_text, -1 if it failed */
    zj_poltab_t pt;
    pend_t *pend;
    size_t n_pend, cap_pend;
    /* output under construction */
    zj_img_node_d *nodes;
    size_t n_nodes, cap_nodes;
    zj_img_rrset_d *rrsets;
    size_t n_rrsets, cap_rrsets;
    zj_img_zone_d *ozones;
    buf_t names, wire;
    uint32_t *addl;
    size_t n_addl, cap_addl;
    zj_img_slot_d *slots;
    size_t n_slots, used_slots;
    uint64_t seed;
    uint32_t cur_zone; /* zone being built: nodes before its first_node belong to earlier ones */
    /* last owner seen by the parse callback, to share arena space between its records */
    uint8_t last_owner[ZJ_DNS_MAX_NAME];
    size_t last_owner_len;
    uint32_t last_owner_off;
};

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (q == NULL) {
        fprintf(stderr, "zonejet: out of memory\n");
        abort();
    }
    return q;
}

#define GROW(arr, n, cap)                                                                          \
    do {                                                                                           \
        if ((n) >= (cap)) {                                                                        \
            (cap) = (cap) ? (cap)*2 : 1024;                                                        \
            (arr) = xrealloc((arr), (cap) * sizeof(*(arr)));                                       \
        }                                                                                          \
    } while (0)

static uint32_t buf_add(buf_t *b, const void *p, size_t n)
{
    if (b->len + n > b->cap || b->p == NULL) {
        size_t c = b->cap ? b->cap : 65536;
        while (c < b->len + n) {
            c *= 2;
        }
        b->p = xrealloc(b->p, c);
        b->cap = c;
    }
    uint32_t off = (uint32_t)b->len;
    if (n > 0) {
        memcpy(b->p + b->len, p, n);
    }
    b->len += n;
    return off;
}

/* Reserve capacity up front: growing a buffer of hundreds of megabytes by doubling copies it
 * several times and faults every page twice (measured: a third of a 1M-record compile). Large
 * reservations cost only address space until they are written. */
static void buf_reserve(buf_t *b, size_t n)
{
    if (b->len + n > b->cap) {
        b->cap = b->len + n;
        b->p = xrealloc(b->p, b->cap);
    }
}

#define RESERVE(arr, n, cap, more)                                                                 \
    do {                                                                                           \
        if ((n) + (more) > (cap)) {                                                                \
            (cap) = (n) + (more);                                                                  \
            (arr) = xrealloc((arr), (cap) * sizeof(*(arr)));                                       \
        }                                                                                          \
    } while (0)

static void diag(zj_builder_t *b, uint16_t file, unsigned line, bool warn, const char *fmt, ...)
    ZJ_PRINTF(5, 6);

static void diag(zj_builder_t *b, uint16_t file, unsigned line, bool warn, const char *fmt, ...)
{
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (warn) {
        b->n_warnings++;
        if (b->opts.quiet) {
            return;
        }
    } else {
        b->n_errors++;
        if (b->n_errors > b->opts.max_errors) {
            return;
        }
    }
    const char *fname = file < b->n_files ? b->files[file] : "?";
    zj_diag(&b->popts, fname, line, warn, "%s", msg);
}

zj_builder_t *zj_builder_new(const zj_build_opts_t *opts)
{
    zj_builder_t *b = xrealloc(NULL, sizeof(*b));
    memset(b, 0, sizeof(*b));
    if (opts != NULL) {
        b->opts = *opts;
    }
    if (b->opts.max_errors == 0) {
        b->opts.max_errors = 20;
    }
    if (b->opts.max_file_bytes == 0) {
        b->opts.max_file_bytes = DEFAULT_MAX_FILE;
    }
    b->seed = b->opts.seed ? b->opts.seed : DEFAULT_SEED;
    b->last_zone = -1;
    b->popts.diag = b->opts.diag;
    b->popts.max_errors = b->opts.max_errors;
    b->popts.max_file_bytes = b->opts.max_file_bytes;
    b->popts.quiet = b->opts.quiet;
    return b;
}

void zj_builder_free(zj_builder_t *b)
{
    if (b == NULL) {
        return;
    }
    free(b->owners.p);
    free(b->keys.p);
    free(b->rdata.p);
    free(b->recs);
    for (size_t i = 0; i < b->n_zones; i++) {
        zj_polfile_free(b->zones[i].pol);
    }
    free(b->zones);
    zj_poltab_fini(&b->pt);
    free(b->pend);
    for (size_t i = 0; i < b->n_files; i++) {
        free(b->files[i]);
    }
    free(b->files);
    free(b->nodes);
    free(b->rrsets);
    free(b->ozones);
    free(b->names.p);
    free(b->wire.p);
    free(b->addl);
    free(b->slots);
    free(b);
}

unsigned zj_builder_errors(const zj_builder_t *b)
{
    return b->n_errors;
}

unsigned zj_builder_warnings(const zj_builder_t *b)
{
    return b->n_warnings;
}

static uint16_t intern_file(zj_builder_t *b, const char *name)
{
    if (b->n_files > 0 && strcmp(b->files[b->n_files - 1], name) == 0) {
        return (uint16_t)(b->n_files - 1);
    }
    for (size_t i = 0; i < b->n_files; i++) {
        if (strcmp(b->files[i], name) == 0) {
            return (uint16_t)i;
        }
    }
    if (b->n_files >= 0xFFFF) {
        return 0xFFFF; /* diagnostics then say "?" */
    }
    b->files = xrealloc(b->files, (b->n_files + 1) * sizeof(char *));
    size_t n = strlen(name) + 1;
    b->files[b->n_files] = xrealloc(NULL, n);
    memcpy(b->files[b->n_files], name, n);
    return (uint16_t)b->n_files++;
}

static int add_zone_file(zj_builder_t *b, const char *path, const uint8_t *origin);

static int on_rr(void *ctx, const zj_rr_t *rr)
{
    zj_builder_t *b = ctx;
    uint8_t low[ZJ_DNS_MAX_NAME];
    size_t ol = zj_dname_lower(low, rr->owner);
    if (ol != b->last_owner_len || memcmp(low, b->last_owner, ol) != 0) {
        memcpy(b->last_owner, low, ol);
        b->last_owner_len = ol;
        b->last_owner_off = buf_add(&b->owners, low, ol);
    }
    GROW(b->recs, b->n_recs, b->cap_recs);
    rec_t *r = &b->recs[b->n_recs];
    memset(r, 0, sizeof(*r));
    r->seq = (uint32_t)b->n_recs;
    r->owner_off = b->last_owner_off;
    r->owner_len = (uint8_t)ol;
    r->type = rr->type;
    r->ttl = rr->ttl;
    r->rdlen = rr->rdlen;
    /* fold RDATA names before duplicates are found: "NS A.x." and "NS a.x." are one RR
     * (RFC 4034 §6.2, RFC 2181 §5) */
    uint8_t folded[ZJ_DNS_MAX_NAME * 2 + 20];
    const uint8_t *rd = rr->rdata;
    if (zj_rdata_lower_names(rr->type, rr->rdata, rr->rdlen, folded, sizeof(folded))) {
        rd = folded;
    }
    r->rdata_off = buf_add(&b->rdata, rd, rr->rdlen);
    r->line = rr->line;
    r->file = intern_file(b, rr->file ? rr->file : "?");
    b->n_recs++;
    if (b->n_recs >= 0xFFFFFFF0u || b->rdata.len >= 0xF0000000u) {
        return ZJ_ELIMIT; /* offsets are 32-bit */
    }
    return 0;
}

static int add_common(zj_builder_t *b, const char *name, const char *text, size_t len,
                      const uint8_t *origin)
{
    zj_parse_result_t res;
    memset(&res, 0, sizeof(res));
    zj_parse_opts_t po = b->popts;
    po.origin = origin;
    uint32_t first = (uint32_t)b->n_recs;
    b->last_owner_len = 0;
    b->last_zone = -1;
    int rc = text ? zj_parse_text(name, text, len, &po, on_rr, b, &res)
                  : zj_parse_file(name, &po, on_rr, b, &res);
    b->n_errors += res.n_errors;
    b->n_warnings += res.n_warnings;
    if (rc == ZJ_ELIMIT) {
        diag(b, intern_file(b, name), 0, false, "image limits exceeded (too many records)");
    }
    if (rc != 0) {
        if (res.n_errors == 0 && rc != ZJ_ELIMIT) {
            b->n_errors++;
        }
        return ZJ_EZONE;
    }
    if (res.origin_len == 0) {
        diag(b, intern_file(b, name), 1, false,
             "zone origin unknown: no $ORIGIN, --origin or SOA record");
        return ZJ_EZONE;
    }
    GROW(b->zones, b->n_zones, b->cap_zones);
    zone_in_t *z = &b->zones[b->n_zones++];
    memset(z, 0, sizeof(*z));
    z->origin_len = zj_dname_lower(z->origin, res.origin);
    z->first_rec = first;
    z->n_recs = (uint32_t)(b->n_recs - first);
    z->file = intern_file(b, name);
    b->last_zone = (long)(b->n_zones - 1);
    return ZJ_OK;
}

bool zj_policy_path(const char *zone_path, char *out, size_t cap)
{
    size_t n = strlen(zone_path);
    size_t base;
    if (n > 5 && strcmp(zone_path + n - 5, ".zone") == 0) {
        base = n - 5;
    } else if (n > 3 && strcmp(zone_path + n - 3, ".db") == 0) {
        base = n - 3;
    } else {
        return false;
    }
    int w = snprintf(out, cap, "%.*s.policy", (int)base, zone_path);
    return w > 0 && (size_t)w < cap;
}

int zj_builder_add_file(zj_builder_t *b, const char *path, const uint8_t *origin)
{
    int rc = add_zone_file(b, path, origin);
    char pp[PATH_MAX];
    struct stat st;
    if (zj_policy_path(path, pp, sizeof(pp)) && stat(pp, &st) == 0) {
        if (rc != ZJ_OK) {
            /* the zone's errors were reported first */
            diag(b, intern_file(b, pp), 0, false, "not read: its zone file %s has errors", path);
            return rc;
        }
        rc = zj_builder_add_policy_file(b, pp, NULL);
    }
    return rc;
}

static int add_zone_file(zj_builder_t *b, const char *path, const uint8_t *origin)
{
    struct stat st;
    if (stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
        (size_t)st.st_size <= b->opts.max_file_bytes) {
        /* a record line is rarely under 16 bytes; owners and rdata never exceed the text */
        size_t sz = (size_t)st.st_size;
        RESERVE(b->recs, b->n_recs, b->cap_recs, sz / 16 + 16);
        buf_reserve(&b->owners, sz / 2 + 256);
        buf_reserve(&b->rdata, sz / 2 + 256);
    }
    return add_common(b, path, NULL, 0, origin);
}

int zj_builder_add_text(zj_builder_t *b, const char *name, const char *text, size_t len,
                        const uint8_t *origin)
{
    return add_common(b, name, text, len, origin);
}

typedef struct pol_diag_ctx {
    zj_builder_t *b;
    uint16_t file;
} pol_diag_ctx_t;

static void on_pol_diag(void *ctx, unsigned line, const char *msg)
{
    pol_diag_ctx_t *c = ctx;
    diag(c->b, c->file, line, false, "%s", msg);
}

int zj_builder_add_policy_text(zj_builder_t *b, const char *name, const char *text, size_t len,
                               const uint8_t *origin)
{
    uint16_t file = intern_file(b, name);
    long zi = -1;
    char ot[1024];
    if (origin == NULL) {
        if (b->last_zone < 0) {
            diag(b, file, 0, false, "not read: its zone file is missing or has errors");
            return ZJ_EZONE;
        }
        zi = b->last_zone;
    } else {
        uint8_t low[ZJ_DNS_MAX_NAME];
        size_t ol = zj_dname_lower(low, origin);
        for (size_t i = 0; i < b->n_zones && zi < 0; i++) {
            if (b->zones[i].origin_len == ol && memcmp(b->zones[i].origin, low, ol) == 0) {
                zi = (long)i;
            }
        }
        if (zi < 0) {
            zj_dname_to_text(origin, ot, sizeof(ot));
            diag(b, file, 0, false,
                 "not read: no zone %s in this image (its zone file is missing or has errors)", ot);
            return ZJ_EZONE;
        }
    }
    zone_in_t *z = &b->zones[zi];
    if (z->pol != NULL) {
        zj_dname_to_text(z->origin, ot, sizeof(ot));
        diag(b, file, 0, false, "zone %s already has a policy file (%s)", ot,
             b->files[z->pol_file]);
        return ZJ_EZONE;
    }
    if (len > b->opts.max_file_bytes) {
        diag(b, file, 0, false, "%zu bytes, over the limit of %zu bytes", len,
             b->opts.max_file_bytes);
        return ZJ_EZONE;
    }
    pol_diag_ctx_t dc = {.b = b, .file = file};
    zj_polfile_t *f = NULL;
    if (zj_polfile_parse(text, len, z->origin, on_pol_diag, &dc, &f) != ZJ_OK) {
        return ZJ_EZONE;
    }
    z->pol = f;
    z->pol_file = file;
    b->n_placeholders += f->n_pols;
    return ZJ_OK;
}

int zj_builder_add_policy_file(zj_builder_t *b, const char *path, const uint8_t *origin)
{
    int rc = ZJ_OK;
    char *text = NULL;
    size_t got = 0;
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        diag(b, intern_file(b, path), 0, false, "cannot open: %s", strerror(errno));
        return ZJ_EZONE;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        diag(b, intern_file(b, path), 0, false, "not a regular file");
        rc = ZJ_EZONE;
        goto out;
    }
    if ((size_t)st.st_size > b->opts.max_file_bytes) {
        diag(b, intern_file(b, path), 0, false, "%zu bytes, over the limit of %zu bytes",
             (size_t)st.st_size, b->opts.max_file_bytes);
        rc = ZJ_EZONE;
        goto out;
    }
    text = xrealloc(NULL, (size_t)st.st_size + 1);
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, text + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0) {
            diag(b, intern_file(b, path), 0, false, "cannot read: %s", strerror(errno));
            rc = ZJ_EZONE;
            goto out;
        }
        if (r == 0) {
            break; /* the file shrank while we read it: read what is there */
        }
        got += (size_t)r;
    }
    rc = zj_builder_add_policy_text(b, path, text, got, origin);
out:
    free(text);
    close(fd);
    return rc;
}

/* ---- sorting ---------------------------------------------------------------------------- */

/* Sort key of a name below the origin: its labels from the top down, each followed by 0x00,
 * with content bytes 0x00/0x01 escaped as 0x01 0x01 / 0x01 0x02. memcmp on two keys orders the
 * names as RFC 4034 §6.1 does (a shorter label sorts first because 0x00 ends it). */
static uint16_t make_key(uint8_t *out, const uint8_t *name, int skip_labels)
{
    const uint8_t *lab[ZJ_DNS_MAX_LABELS]; /* filled below before any read */
    int n = 0;
    for (const uint8_t *p = name; *p; p += *p + 1) {
        lab[n++] = p;
    }
    n -= skip_labels;
    uint16_t o = 0;
    for (int i = n - 1; i >= 0; i--) {
        // cppcheck-suppress uninitvar
        for (uint8_t k = 1; k <= lab[i][0]; k++) {
            uint8_t c = lab[i][k];
            if (c <= 1) {
                out[o++] = 1;
                out[o++] = (uint8_t)(c + 1);
            } else {
                out[o++] = c;
            }
        }
        out[o++] = 0;
    }
    return o;
}

static const zj_builder_t *sort_ctx; /* qsort has no context argument; finish() is not reentrant
                                      * per builder and tools build one image at a time */

static int cmp_rec(const void *a, const void *b)
{
    const rec_t *x = a;
    const rec_t *y = b;
    const uint8_t *k = sort_ctx->keys.p;
    uint16_t m = x->key_len < y->key_len ? x->key_len : y->key_len;
    if (x->key_off != y->key_off) {
        int d = memcmp(k + x->key_off, k + y->key_off, m);
        if (d != 0) {
            return d;
        }
    }
    if (x->key_len != y->key_len) {
        return x->key_len < y->key_len ? -1 : 1;
    }
    if (x->type != y->type) {
        return x->type < y->type ? -1 : 1;
    }
    const uint8_t *r = sort_ctx->rdata.p;
    uint16_t rm = x->rdlen < y->rdlen ? x->rdlen : y->rdlen;
    int d = memcmp(r + x->rdata_off, r + y->rdata_off, rm);
    if (d != 0) {
        return d;
    }
    if (x->rdlen != y->rdlen) {
        return x->rdlen < y->rdlen ? -1 : 1;
    }
    return x->seq < y->seq ? -1 : (x->seq > y->seq);
}

/* ---- index ------------------------------------------------------------------------------ */

static void index_put(zj_builder_t *b, uint64_t h, uint32_t value);
static void index_resize(zj_builder_t *b, size_t n_slots);

static void index_grow(zj_builder_t *b)
{
    index_resize(b, b->n_slots ? b->n_slots * 2 : 1024);
}

/* Size the index for n entries at a load factor of at most 3/4. */
static void index_reserve(zj_builder_t *b, size_t n)
{
    size_t want = b->n_slots ? b->n_slots : 1024;
    while ((b->used_slots + n) * 4 > want * 3) {
        want *= 2;
    }
    if (want != b->n_slots) {
        index_resize(b, want);
    }
}

static void index_resize(zj_builder_t *b, size_t n_slots)
{
    size_t old_n = b->n_slots;
    zj_img_slot_d *old = b->slots;
    b->n_slots = n_slots;
    b->slots = xrealloc(NULL, b->n_slots * sizeof(*b->slots));
    memset(b->slots, 0, b->n_slots * sizeof(*b->slots));
    b->used_slots = 0;
    /* Re-hash from the names: the slot keeps only the tag. Zone apex entries are added after
     * all nodes, with room reserved first (zj_builder_finish), so only node entries are here. */
    for (size_t i = 0; i < old_n; i++) {
        if (old[i].node == 0) {
            continue;
        }
        uint32_t v = old[i].node - 1;
        const zj_img_node_d *n = &b->nodes[v];
        /* find the zone of the node: zones are laid out in order, the last one may be open */
        /* zones are laid out in order: the last one whose first node is <= v owns v */
        uint32_t lo = 0;
        uint32_t hi = b->cur_zone;
        while (lo < hi) {
            uint32_t mid = lo + (hi - lo + 1) / 2;
            if (b->ozones[mid].first_node <= v) {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        uint32_t zi = lo;
        index_put(b, zj_image_hash(b->seed, zi, b->names.p + n->name_off, n->name_len), v);
    }
    free(old);
}

static void index_put(zj_builder_t *b, uint64_t h, uint32_t value)
{
    /* load factor at most 3/4: expected probes stay near 1 for hits, ~2.5 for misses */
    if ((b->used_slots + 1) * 4 > b->n_slots * 3) {
        index_grow(b);
    }
    size_t mask = b->n_slots - 1;
    size_t i = (uint32_t)h & mask;
    while (b->slots[i].node != 0) {
        i = (i + 1) & mask;
    }
    b->slots[i].tag = (uint32_t)(h >> 32);
    b->slots[i].node = value + 1;
    b->used_slots++;
}

/* Node lookup during the build (same table and hash as the reader). */
static uint32_t index_find(const zj_builder_t *b, uint32_t zone, const uint8_t *name, size_t len)
{
    if (b->n_slots == 0) {
        return ZJ_IMG_NONE;
    }
    uint64_t h = zj_image_hash(b->seed, zone, name, len);
    size_t mask = b->n_slots - 1;
    uint32_t tag = (uint32_t)(h >> 32);
    const zj_img_zone_d *z = &b->ozones[zone];
    for (size_t i = (uint32_t)h & mask;; i = (i + 1) & mask) {
        const zj_img_slot_d *s = &b->slots[i];
        if (s->node == 0) {
            return ZJ_IMG_NONE;
        }
        uint32_t v = s->node - 1;
        if (s->tag == tag && v >= z->first_node && v < b->n_nodes) {
            const zj_img_node_d *n = &b->nodes[v];
            if (n->name_len == len && memcmp(b->names.p + n->name_off, name, len) == 0) {
                return v;
            }
        }
    }
}

static uint32_t new_node(zj_builder_t *b, uint32_t zone, const uint8_t *name, size_t len)
{
    GROW(b->nodes, b->n_nodes, b->cap_nodes);
    uint32_t id = (uint32_t)b->n_nodes++;
    zj_img_node_d *n = &b->nodes[id];
    memset(n, 0, sizeof(*n));
    n->name_off = buf_add(&b->names, name, len);
    n->name_len = (uint8_t)len;
    n->labels = (uint8_t)zj_dname_labels(name);
    n->cut = ZJ_IMG_NONE;
    n->rrset_first = (uint32_t)b->n_rrsets;
    if (len >= 2 && name[0] == 1 && name[1] == '*') {
        n->flags |= ZJ_NODE_WILDCARD;
    }
    index_put(b, zj_image_hash(b->seed, zone, name, len), id);
    return id;
}

/* ---- per-zone build --------------------------------------------------------------------- */

/* Offset of the first domain name in rdata of types whose targets get additional processing
 * (RFC 1035 §3.3.9, §3.3.11; RFC 2782), or -1. */
static int target_offset(uint16_t type)
{
    switch (type) {
    case ZJ_T_NS:
        return 0;
    case ZJ_T_MX:
        return 2;
    case ZJ_T_SRV:
        return 6;
    default:
        return -1;
    }
}

typedef struct zone_ctx {
    zj_builder_t *b;
    zone_in_t *in;
    uint32_t zi;
    uint16_t soa_file;
    uint32_t soa_line;
} zone_ctx_t;

/* A policy among records [i, j) (same owner and type): its RRset (n_rr == 0, wire_off the
 * POLICIES index) on the current node. Returns false if there is no policy placeholder. */
static bool emit_policy_rrset(zone_ctx_t *zc, rec_t *r, size_t i, size_t j)
{
    zj_builder_t *b = zc->b;
    size_t pk = j;
    for (size_t k = i; k < j && pk == j; k++) {
        pk = r[k].is_policy ? k : j;
    }
    if (pk == j) {
        return false;
    }
    if (j - i > 1) {
        size_t zk = pk == i ? i + 1 : i;
        char on[1024];
        char tb[16];
        zj_dname_to_text(b->owners.p + r[pk].owner_off, on, sizeof(on));
        diag(b, r[pk].file, r[pk].line, false,
             "%s %s also has records in the zone file (%s:%u): a name and type has records or "
             "a policy, not both",
             on, zj_rrtype_to_text(r[pk].type, tb, sizeof(tb)),
             r[zk].file < b->n_files ? b->files[r[zk].file] : "?", r[zk].line);
        return true;
    }
    GROW(b->pend, b->n_pend, b->cap_pend);
    b->pend[b->n_pend] = (pend_t){.pol = r[pk].ttl, .node = (uint32_t)b->n_nodes - 1};
    GROW(b->rrsets, b->n_rrsets, b->cap_rrsets);
    zj_img_rrset_d *rs = &b->rrsets[b->n_rrsets++];
    memset(rs, 0, sizeof(*rs));
    rs->type = r[pk].type;
    rs->wire_off = (uint32_t)b->n_pend++;
    zj_img_node_d *n = &b->nodes[b->n_nodes - 1];
    n->n_rrsets++;
    if (rs->type == ZJ_T_CNAME) {
        n->flags |= ZJ_NODE_CNAME;
    }
    return true;
}

/* Emit one RRset from sorted records [i, j) (same owner and type) on the current node. */
static void emit_rrset(zone_ctx_t *zc, rec_t *r, size_t i, size_t j)
{
    zj_builder_t *b = zc->b;
    if (zc->in->pol != NULL && emit_policy_rrset(zc, r, i, j)) {
        return;
    }
    /* RFC 2181 §5.2: one TTL per RRset; use the first in file order, as BIND does */
    size_t first = i;
    for (size_t k = i + 1; k < j; k++) {
        if (r[k].seq < r[first].seq) {
            first = k;
        }
    }
    uint32_t ttl = r[first].ttl;
    uint32_t off = (uint32_t)b->wire.len;
    uint16_t n_rr = 0;
    for (size_t k = i; k < j; k++) {
        const uint8_t *rd = b->rdata.p + r[k].rdata_off;
        if (k > i && r[k].rdlen == r[k - 1].rdlen &&
            memcmp(rd, b->rdata.p + r[k - 1].rdata_off, r[k].rdlen) == 0) {
            continue; /* duplicate RR: dropped silently (RFC 2181 §5) */
        }
        if (!zj_rdata_layout_ok(r[k].type, rd, r[k].rdlen)) {
            char tb[16];
            diag(b, r[k].file, r[k].line, false, "malformed %s rdata",
                 zj_rrtype_to_text(r[k].type, tb, sizeof(tb)));
            continue;
        }
        if (r[k].ttl != ttl) {
            diag(b, r[k].file, r[k].line, true, "TTL %u differs from the RRset's TTL %u; using %u",
                 r[k].ttl, ttl, ttl);
        }
        uint8_t hdr[12];
        hdr[0] = 0xC0;
        hdr[1] = 0x0C;
        zj_put16(hdr + 2, r[k].type);
        zj_put16(hdr + 4, ZJ_C_IN);
        zj_put32(hdr + 6, ttl);
        zj_put16(hdr + 10, r[k].rdlen);
        buf_add(&b->wire, hdr, sizeof(hdr));
        buf_add(&b->wire, rd, r[k].rdlen);
        n_rr++;
    }
    size_t wl = b->wire.len - off;
    if (wl > 0xFFFF) {
        diag(b, r[i].file, r[i].line, false, "RRset larger than 65535 bytes of wire data");
        b->wire.len = off;
        return;
    }
    GROW(b->rrsets, b->n_rrsets, b->cap_rrsets);
    zj_img_rrset_d *rs = &b->rrsets[b->n_rrsets++];
    memset(rs, 0, sizeof(*rs));
    rs->type = r[i].type;
    rs->n_rr = n_rr;
    rs->wire_off = off;
    rs->wire_len = (uint16_t)wl;
    rs->addl_off = (uint32_t)b->n_addl;
    zj_img_node_d *n = &b->nodes[b->n_nodes - 1];
    n->n_rrsets++;
    if (r[i].type == ZJ_T_CNAME) {
        n->flags |= ZJ_NODE_CNAME;
        if (n_rr > 1) {
            diag(b, r[i + 1].file, r[i + 1].line, false, "more than one CNAME at one name");
        }
    } else if (r[i].type == ZJ_T_DNAME) {
        n->flags |= ZJ_NODE_DNAME;
        if (n_rr > 1) {
            diag(b, r[i + 1].file, r[i + 1].line, false, "more than one DNAME at one name");
        }
    } else if (r[i].type == ZJ_T_SOA) {
        zc->soa_file = r[i].file;
        zc->soa_line = r[i].line;
        if (!(n->flags & ZJ_NODE_APEX)) {
            diag(b, r[i].file, r[i].line, false, "SOA record not at the zone apex");
        } else if (n_rr > 1) {
            diag(b, r[i + 1].file, r[i + 1].line, false, "more than one SOA record");
        }
    } else if (r[i].type == ZJ_T_NS && !(n->flags & ZJ_NODE_APEX)) {
        n->flags |= ZJ_NODE_DELEG;
    }
}

/* Names at a CNAME owner: only CNAME and DNSSEC types (RFC 1034 §3.6.2, RFC 4035 §2.5). */
static void check_cname_node(zone_ctx_t *zc, rec_t *r, size_t i, size_t j)
{
    size_t cn = j;
    for (size_t k = i; k < j && cn == j; k++) {
        cn = r[k].type == ZJ_T_CNAME ? k : j;
    }
    if (cn == j) {
        return;
    }
    for (size_t k = i; k < j; k++) {
        uint16_t t = r[k].type;
        if (t != ZJ_T_CNAME && t != ZJ_T_RRSIG && t != ZJ_T_NSEC) {
            char tbuf[16];
            const char *tb = zj_rrtype_to_text(t, tbuf, sizeof(tbuf));
            const char *cf = r[cn].file < zc->b->n_files ? zc->b->files[r[cn].file] : "?";
            const char *kf = r[k].file < zc->b->n_files ? zc->b->files[r[k].file] : "?";
            /* a policy is involved: report at the policy's line, naming the other side */
            if (r[cn].is_policy && !r[k].is_policy) {
                diag(zc->b, r[cn].file, r[cn].line, false, "CNAME policy beside %s records (%s:%u)",
                     tb, kf, r[k].line);
            } else if (r[k].is_policy) {
                diag(zc->b, r[k].file, r[k].line, false, "%s policy beside a CNAME (%s:%u)", tb, cf,
                     r[cn].line);
            } else {
                diag(zc->b, r[k].file, r[k].line, false,
                     "%s record beside a CNAME at the same name", tb);
            }
        }
    }
}

static void build_nodes(zone_ctx_t *zc, rec_t *r, size_t n)
{
    zj_builder_t *b = zc->b;
    size_t i = 0;
    while (i < n) {
        size_t j = i + 1;
        while (j < n && r[j].key_len == r[i].key_len &&
               memcmp(b->keys.p + r[j].key_off, b->keys.p + r[i].key_off, r[i].key_len) == 0) {
            j++;
        }
        /* records [i, j) share an owner */
        const uint8_t *owner = b->owners.p + r[i].owner_off;
        uint32_t id = new_node(b, zc->zi, owner, r[i].owner_len);
        if (r[i].owner_len == zc->in->origin_len &&
            memcmp(owner, zc->in->origin, zc->in->origin_len) == 0) {
            b->nodes[id].flags |= ZJ_NODE_APEX;
            b->ozones[zc->zi].apex_node = id;
        }
        check_cname_node(zc, r, i, j);
        size_t k = i;
        while (k < j) {
            size_t m = k + 1;
            while (m < j && r[m].type == r[k].type) {
                m++;
            }
            emit_rrset(zc, r, k, m);
            k = m;
        }
        i = j;
    }
}

/* Add empty non-terminals: every name between an owner and the apex must exist as a node so
 * that a closest-encloser walk stops at the right name (RFC 4592 §2.2.2). Also reject data
 * below a DNAME (RFC 6672 §2.3). */
static void add_ents(zone_ctx_t *zc, uint32_t first, uint32_t last)
{
    zj_builder_t *b = zc->b;
    int apex_labels = zj_dname_labels(zc->in->origin);
    for (uint32_t id = first; id < last; id++) {
        uint8_t name[ZJ_DNS_MAX_NAME];
        memcpy(name, b->names.p + b->nodes[id].name_off, b->nodes[id].name_len);
        int labels = b->nodes[id].labels;
        const uint8_t *p = name;
        for (int l = labels; l > apex_labels; l--) {
            p += *p + 1; /* parent */
            size_t plen = (size_t)(b->nodes[id].name_len - (size_t)(p - name));
            uint32_t par = index_find(b, zc->zi, p, plen);
            if (par == ZJ_IMG_NONE) {
                par = new_node(b, zc->zi, p, plen);
                b->nodes[par].flags |= ZJ_NODE_ENT;
                b->nodes[par].rrset_first = 0;
                continue; /* its own ancestors are handled when the loop reaches it */
            }
            if (b->nodes[par].flags & ZJ_NODE_DNAME) {
                char t[1024];
                zj_dname_to_text(name, t, sizeof(t));
                diag(b, zc->in->file, 0, false, "%s: name below a DNAME", t);
            }
            break; /* an existing node has its ancestors already */
        }
    }
}

/* Zone cuts: a node at or below the highest NS-owning name under the apex is a delegation or
 * occluded; wildcard parents get a flag so NXDOMAIN paths skip the extra probe. */
static void mark_cuts(zone_ctx_t *zc, uint32_t first, uint32_t last)
{
    zj_builder_t *b = zc->b;
    int apex_labels = zj_dname_labels(zc->in->origin);
    for (uint32_t id = first; id < last; id++) {
        zj_img_node_d *n = &b->nodes[id];
        const uint8_t *name = b->names.p + n->name_off;
        const uint8_t *p = name;
        uint32_t top = (n->flags & ZJ_NODE_DELEG) ? id : ZJ_IMG_NONE;
        for (int l = n->labels; l > apex_labels + 1; l--) {
            p += *p + 1;
            size_t plen = (size_t)(n->name_len - (size_t)(p - name));
            uint32_t par = index_find(b, zc->zi, p, plen);
            if (par != ZJ_IMG_NONE && (b->nodes[par].flags & ZJ_NODE_DELEG)) {
                top = par;
            }
        }
        n->cut = top;
        if (top != ZJ_IMG_NONE && top != id) {
            n->flags |= ZJ_NODE_OCCLUDED;
        }
        if (n->flags & ZJ_NODE_WILDCARD) {
            uint32_t par = index_find(b, zc->zi, name + 2, (size_t)n->name_len - 2);
            if (par != ZJ_IMG_NONE) {
                b->nodes[par].flags |= ZJ_NODE_WILDCHILD;
            }
        }
    }
}

static bool has_address(const zj_builder_t *b, uint32_t node)
{
    const zj_img_node_d *n = &b->nodes[node];
    for (uint32_t i = n->rrset_first; i < n->rrset_first + n->n_rrsets; i++) {
        if (b->rrsets[i].type == ZJ_T_A || b->rrsets[i].type == ZJ_T_AAAA) {
            return true;
        }
    }
    return false;
}

/* Additional-section targets of one NS/MX/SRV RRset that are names in this zone, and the glue
 * check for in-zone name servers. */
static void link_rrset(zone_ctx_t *zc, uint32_t ri)
{
    zj_builder_t *b = zc->b;
    zj_img_rrset_d *rs = &b->rrsets[ri];
    int toff = target_offset(rs->type);
    if (toff < 0 || rs->n_rr == 0) {
        return; /* n_rr == 0: a policy RRset, whose record sets are linked one by one */
    }
    rs->addl_off = (uint32_t)b->n_addl;
    const uint8_t *w = b->wire.p + rs->wire_off;
    size_t pos = 0;
    for (uint16_t k = 0; k < rs->n_rr; k++) {
        uint16_t rdlen = zj_be16(w + pos + 10);
        const uint8_t *rd = w + pos + 12;
        pos += 12u + rdlen;
        if ((int)rdlen <= toff) {
            continue;
        }
        int tl = zj_dname_len(rd + toff, (size_t)(rdlen - toff));
        if (tl < 0) {
            continue;
        }
        uint8_t low[ZJ_DNS_MAX_NAME];
        zj_dname_lower(low, rd + toff);
        if (!zj_dname_is_sub(low, zc->in->origin)) {
            continue;
        }
        uint32_t t = index_find(b, zc->zi, low, (size_t)tl);
        bool addr = t != ZJ_IMG_NONE && has_address(b, t);
        if (rs->type == ZJ_T_NS && !addr) {
            /* RFC 1034 §4.2.1: a name server inside the zone needs glue */
            char tn[1024];
            zj_dname_to_text(low, tn, sizeof(tn));
            diag(b, zc->in->file, 0, true, "no address (glue) for in-zone name server %s", tn);
        }
        if (addr) {
            GROW(b->addl, b->n_addl, b->cap_addl);
            b->addl[b->n_addl++] = t;
            rs->n_addl++;
        }
    }
}

static void link_additional(zone_ctx_t *zc, uint32_t first, uint32_t last)
{
    zj_builder_t *b = zc->b;
    for (uint32_t id = first; id < last; id++) {
        const zj_img_node_d *n = &b->nodes[id];
        for (uint32_t ri = n->rrset_first; ri < n->rrset_first + n->n_rrsets; ri++) {
            link_rrset(zc, ri);
        }
    }
}

/* One record set of a policy as an ordinary RRSETS entry (outside every node's range). */
static void emit_policy_set(zone_ctx_t *zc, const zj_polfile_t *f, uint16_t type,
                            const zj_pol_set_t *s)
{
    zj_builder_t *b = zc->b;
    uint32_t off = (uint32_t)b->wire.len;
    for (uint32_t k = s->first_rr; k < s->first_rr + s->n_rr; k++) {
        const zj_pol_rr_t *rr = &f->rrs[k];
        uint8_t hdr[12];
        hdr[0] = 0xC0;
        hdr[1] = 0x0C;
        zj_put16(hdr + 2, type);
        zj_put16(hdr + 4, ZJ_C_IN);
        zj_put32(hdr + 6, s->ttl);
        zj_put16(hdr + 10, rr->rdlen);
        buf_add(&b->wire, hdr, sizeof(hdr));
        buf_add(&b->wire, f->rdata + rr->rdata_off, rr->rdlen);
    }
    GROW(b->rrsets, b->n_rrsets, b->cap_rrsets);
    uint32_t ri = (uint32_t)b->n_rrsets++;
    zj_img_rrset_d *rs = &b->rrsets[ri];
    memset(rs, 0, sizeof(*rs));
    rs->type = type;
    rs->n_rr = (uint16_t)s->n_rr;                 /* the parser keeps a set within 65535 bytes, */
    rs->wire_len = (uint16_t)(b->wire.len - off); /* so both fit */
    rs->wire_off = off;
    rs->addl_off = (uint32_t)b->n_addl;
    link_rrset(zc, ri);
}

/* The zone's policies once its nodes are complete: zone-cut checks, then the record sets and
 * the policy sections. pend[first_pend, n_pend) are this zone's. */
static void build_policies(zone_ctx_t *zc, size_t first_pend)
{
    zj_builder_t *b = zc->b;
    zj_polfile_t *f = zc->in->pol;
    if (f == NULL) {
        return;
    }
    for (size_t i = first_pend; i < b->n_pend; i++) {
        const zj_pol_policy_t *p = &f->pols[b->pend[i].pol];
        const zj_img_node_d *n = &b->nodes[b->pend[i].node];
        char on[1024];
        zj_dname_to_text(p->owner, on, sizeof(on));
        if (n->flags & ZJ_NODE_OCCLUDED) {
            char cut[1024];
            zj_dname_to_text(b->names.p + b->nodes[n->cut].name_off, cut, sizeof(cut));
            diag(b, zc->in->pol_file, p->line, false,
                 "%s is below the zone cut at %s: a policy there would be occluded", on, cut);
        } else if (n->flags & ZJ_NODE_DELEG) {
            diag(b, zc->in->pol_file, p->line, false,
                 "%s is a delegation (zone cut): it cannot have a policy", on);
        }
    }
    if (b->n_errors > 0) {
        return; /* no image will be written */
    }
    if (zj_polfile_emit_tables(f, zc->zi, &b->pt) != ZJ_OK) {
        diag(b, zc->in->pol_file, 0, false, "image limits exceeded (policy tables too large)");
        return;
    }
    for (size_t i = first_pend; i < b->n_pend; i++) {
        const zj_pol_policy_t *p = &f->pols[b->pend[i].pol];
        uint32_t first_rrset = (uint32_t)b->n_rrsets;
        for (uint32_t k = 0; k < p->n_sets; k++) {
            emit_policy_set(zc, f, p->type, &f->sets[p->first_set + k]);
        }
        zj_polfile_emit_policy(f, b->pend[i].pol, zc->zi, b->pend[i].node, first_rrset, &b->pt);
    }
}

static bool build_zone_recs(zone_ctx_t *zc, rec_t *r, size_t n);

/* A zone with a policy file builds from a copy of its records plus one placeholder per policy
 * (its records need not be the last in b->recs, so they cannot be appended in place). */
static void build_zone(zj_builder_t *b, uint32_t zi)
{
    zone_in_t *in = &b->zones[zi];
    zone_ctx_t zc = {.b = b, .in = in, .zi = zi};
    size_t n = in->n_recs;
    rec_t *r = n > 0 ? b->recs + in->first_rec : NULL; /* no arithmetic on an unset array */
    rec_t *copy = NULL;
    const zj_polfile_t *f = in->pol;
    if (f != NULL && f->n_pols > 0) {
        copy = xrealloc(NULL, (n + f->n_pols) * sizeof(*copy));
        if (n > 0) {
            memcpy(copy, r, n * sizeof(*copy));
        }
        for (size_t i = 0; i < f->n_pols; i++) {
            const zj_pol_policy_t *p = &f->pols[i];
            rec_t *x = &copy[n++];
            memset(x, 0, sizeof(*x));
            x->seq = (uint32_t)(b->n_recs + i); /* after every record of the files */
            x->owner_off = buf_add(&b->owners, p->owner, p->owner_len);
            x->owner_len = p->owner_len;
            x->type = p->type;
            x->ttl = (uint32_t)i;
            x->line = p->line;
            x->file = in->pol_file;
            x->is_policy = 1;
        }
        r = copy;
    }
    size_t first_pend = b->n_pend;
    if (build_zone_recs(&zc, r, n)) {
        build_policies(&zc, first_pend);
    }
    free(copy);
}

/* Returns false when the zone could not be laid out (no apex, no SOA). */
static bool build_zone_recs(zone_ctx_t *zcp, rec_t *r, size_t n)
{
    zone_ctx_t zc = *zcp;
    zj_builder_t *b = zc.b;
    zone_in_t *in = zc.in;
    uint32_t zi = zc.zi;
    int origin_labels = zj_dname_labels(in->origin);
    char otext[1024];
    zj_dname_to_text(in->origin, otext, sizeof(otext));

    /* 1. keys, and data outside the zone */
    uint32_t prev_owner = ZJ_IMG_NONE;
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *owner = b->owners.p + r[i].owner_off;
        if (!zj_dname_is_sub(owner, in->origin)) {
            char t[1024];
            zj_dname_to_text(owner, t, sizeof(t));
            diag(b, r[i].file, r[i].line, false, "%s is outside the zone %s", t, otext);
            continue;
        }
        if (r[i].owner_off != prev_owner) {
            uint8_t key[2 * ZJ_DNS_MAX_NAME];
            uint16_t kl = make_key(key, owner, origin_labels);
            prev_owner = r[i].owner_off;
            r[i].key_off = buf_add(&b->keys, key, kl);
            r[i].key_len = kl;
        } else {
            r[i].key_off = r[w > 0 ? w - 1 : 0].key_off;
            r[i].key_len = r[w > 0 ? w - 1 : 0].key_len;
        }
        r[w++] = r[i];
    }
    n = w;

    /* 2. canonical order */
    sort_ctx = b;
    if (n > 0) {
        qsort(r, n, sizeof(*r), cmp_rec);
    }

    /* 3. nodes and RRsets */
    zj_img_zone_d *oz = &b->ozones[zi];
    memset(oz, 0, sizeof(*oz));
    oz->first_node = (uint32_t)b->n_nodes;
    oz->apex_node = ZJ_IMG_NONE;
    build_nodes(&zc, r, n);
    if (oz->apex_node == ZJ_IMG_NONE) {
        diag(b, in->file, 1, false, "no SOA record at the zone apex %s", otext);
        return false;
    }
    uint32_t last_real = (uint32_t)b->n_nodes;
    add_ents(&zc, oz->first_node, last_real);
    oz->n_nodes = (uint32_t)b->n_nodes - oz->first_node;
    mark_cuts(&zc, oz->first_node, (uint32_t)b->n_nodes);
    link_additional(&zc, oz->first_node, last_real);

    /* 4. the apex */
    uint32_t apex = oz->apex_node;
    oz->name_off = b->nodes[apex].name_off;
    oz->soa_rrset = ZJ_IMG_NONE;
    bool has_ns = false;
    const zj_img_node_d *an = &b->nodes[apex];
    for (uint32_t i = an->rrset_first; i < an->rrset_first + an->n_rrsets; i++) {
        if (b->rrsets[i].type == ZJ_T_SOA) {
            oz->soa_rrset = i;
        }
        has_ns |= b->rrsets[i].type == ZJ_T_NS;
    }
    if (oz->soa_rrset == ZJ_IMG_NONE) {
        diag(b, in->file, 1, false, "no SOA record at the zone apex %s", otext);
        return false;
    }
    if (!has_ns) {
        diag(b, zc.soa_file, zc.soa_line, false, "no NS records at the zone apex %s", otext);
    }
    /* SOA fields: serial and MINIMUM follow the two names (RFC 1035 §3.3.13) */
    const zj_img_rrset_d *soa = &b->rrsets[oz->soa_rrset];
    const uint8_t *rd = b->wire.p + soa->wire_off + 12;
    uint16_t rdlen = zj_be16(rd - 2);
    int a = zj_dname_len(rd, rdlen);
    int c = a < 0 ? a : zj_dname_len(rd + a, (size_t)(rdlen - a));
    if (a < 0 || c < 0 || (size_t)(a + c + 20) != rdlen) {
        diag(b, zc.soa_file, zc.soa_line, false, "malformed SOA rdata");
        return false;
    }
    uint32_t soa_ttl = zj_be32(rd - 6);
    uint32_t minimum = zj_be32(rd + a + c + 16);
    oz->serial = zj_be32(rd + a + c);
    oz->neg_ttl = soa_ttl < minimum ? soa_ttl : minimum; /* RFC 2308 §5 */
    return true;
}

/* ---- layout ----------------------------------------------------------------------------- */

static size_t align8(size_t n)
{
    return (n + 7) & ~(size_t)7;
}

static int build_all(zj_builder_t *b)
{
    if (b->n_errors > 0) {
        return ZJ_EZONE;
    }
    if (b->n_zones == 0) {
        fprintf(b->opts.diag ? b->opts.diag : stderr, "zonejet: no zones to compile\n");
        b->n_errors++;
        return ZJ_EZONE;
    }
    /* two zones with one origin in one image would make the apex key ambiguous */
    for (size_t i = 0; i < b->n_zones; i++) {
        for (size_t j = i + 1; j < b->n_zones; j++) {
            if (b->zones[i].origin_len == b->zones[j].origin_len &&
                memcmp(b->zones[i].origin, b->zones[j].origin, b->zones[i].origin_len) == 0) {
                diag(b, b->zones[j].file, 1, false, "zone defined twice in one image");
            }
        }
    }
    b->ozones = xrealloc(NULL, b->n_zones * sizeof(*b->ozones));
    memset(b->ozones, 0, b->n_zones * sizeof(*b->ozones));
    /* upper bounds known now: a node and an RRset per record at most (ENTs aside) */
    /* policies: one node and RRset each (plus their sets, which grow the arrays as needed) */
    size_t n_in = b->n_recs + b->n_placeholders;
    RESERVE(b->nodes, b->n_nodes, b->cap_nodes, n_in + n_in / 4 + 16);
    RESERVE(b->rrsets, b->n_rrsets, b->cap_rrsets, n_in + 16);
    buf_reserve(&b->names, b->owners.len + b->owners.len / 4 + 256);
    buf_reserve(&b->wire, b->rdata.len + 12 * b->n_recs + 256);
    index_reserve(b, n_in + b->n_zones);
    for (uint32_t zi = 0; zi < b->n_zones; zi++) {
        b->cur_zone = zi;
        build_zone(b, zi);
    }
    if (b->n_errors > 0) {
        return ZJ_EZONE;
    }
    index_reserve(b, b->n_zones + 1);
    for (uint32_t zi = 0; zi < b->n_zones; zi++) {
        const zj_img_node_d *a = &b->nodes[b->ozones[zi].apex_node];
        index_put(b, zj_image_hash(b->seed, ZJ_IMG_NONE, b->names.p + a->name_off, a->name_len),
                  zi);
    }
    return ZJ_OK;
}

/* The image as a list of pieces: header and section table, then each section after its
 * alignment padding. Both outputs (a buffer, a file) walk the same list, so they cannot
 * disagree. */
typedef struct layout {
    uint8_t head[512]; /* header + section table (15 sections: 408 bytes) */
    struct iovec iov[2 + 2 * 15 + 1];
    int n_iov;
    size_t total;
} layout_t;

static const uint8_t zero_pad[ZJ_IMG_ALIGN];

static void make_layout(const zj_builder_t *b, layout_t *l)
{
    const zj_poltab_t *t = &b->pt;
    struct {
        uint32_t kind;
        uint32_t count;
        const void *p;
        size_t len;
    } sec[] = {
        {ZJ_SEC_ZONES, (uint32_t)b->n_zones, b->ozones, b->n_zones * sizeof(zj_img_zone_d)},
        {ZJ_SEC_NODES, (uint32_t)b->n_nodes, b->nodes, b->n_nodes * sizeof(zj_img_node_d)},
        {ZJ_SEC_RRSETS, (uint32_t)b->n_rrsets, b->rrsets, b->n_rrsets * sizeof(zj_img_rrset_d)},
        {ZJ_SEC_NAMES, (uint32_t)b->names.len, b->names.p, b->names.len},
        {ZJ_SEC_WIRE, (uint32_t)b->wire.len, b->wire.p, b->wire.len},
        {ZJ_SEC_INDEX, (uint32_t)b->n_slots, b->slots, b->n_slots * sizeof(zj_img_slot_d)},
        {ZJ_SEC_ADDL, (uint32_t)b->n_addl, b->addl, b->n_addl * sizeof(uint32_t)},
        /* only in images with policy files: */
        {ZJ_SEC_POLICIES, (uint32_t)t->n_pol, t->pol, t->n_pol * sizeof(zj_img_policy_d)},
        {ZJ_SEC_PSETS, (uint32_t)t->n_pset, t->pset, t->n_pset * sizeof(zj_img_pset_d)},
        {ZJ_SEC_CHECKS, (uint32_t)t->n_chk, t->chk, t->n_chk * sizeof(zj_img_check_d)},
        {ZJ_SEC_U32, (uint32_t)t->n_u32, t->u32, t->n_u32 * sizeof(uint32_t)},
        {ZJ_SEC_STRS, (uint32_t)t->strs_len, t->strs, t->strs_len},
        {ZJ_SEC_TABLES, (uint32_t)t->n_tab, t->tab, t->n_tab * sizeof(zj_img_table_d)},
        {ZJ_SEC_PMAP4, (uint32_t)t->n_p4, t->p4, t->n_p4 * sizeof(zj_pmap4_d)},
        {ZJ_SEC_PMAP6, (uint32_t)t->n_p6, t->p6, t->n_p6 * sizeof(zj_pmap6_d)},
    };
    size_t ns = zj_poltab_used(t) ? ZJ_ARRAY_SIZE(sec) : 7;
    size_t header_len = align8(sizeof(zj_img_header_d) + ns * sizeof(zj_img_section_d));
    ZJ_VERIFY(header_len <= sizeof(l->head));
    memset(l->head, 0, sizeof(l->head));
    zj_img_section_d *tab = (zj_img_section_d *)(void *)(l->head + sizeof(zj_img_header_d));
    l->n_iov = 0;
    l->iov[l->n_iov++] = (struct iovec){.iov_base = l->head, .iov_len = header_len};
    size_t pos = header_len;
    for (size_t i = 0; i < ns; i++) {
        size_t pad = align8(pos) - pos;
        if (pad > 0) {
            l->iov[l->n_iov++] = (struct iovec){.iov_base = (void *)zero_pad, .iov_len = pad};
        }
        pos += pad;
        tab[i].kind = sec[i].kind;
        tab[i].count = sec[i].count;
        tab[i].off = pos;
        tab[i].len = sec[i].len;
        if (sec[i].len > 0) {
            l->iov[l->n_iov++] =
                (struct iovec){.iov_base = (void *)sec[i].p, .iov_len = sec[i].len};
        }
        pos += sec[i].len;
    }
    size_t pad = align8(pos) - pos;
    if (pad > 0) {
        l->iov[l->n_iov++] = (struct iovec){.iov_base = (void *)zero_pad, .iov_len = pad};
    }
    l->total = pos + pad;
    zj_img_header_d h;
    memset(&h, 0, sizeof(h));
    memcpy(h.magic, ZJ_IMG_MAGIC, sizeof(h.magic));
    h.version = ZJ_IMG_VERSION;
    h.endian = ZJ_IMG_ENDIAN;
    h.file_len = l->total;
    h.hash_seed = b->seed;
    h.n_sections = (uint32_t)ns;
    h.header_len = (uint32_t)header_len;
    memcpy(l->head, &h, sizeof(h));
    /* the checksum covers every byte after its own field, piece by piece */
    XXH3_state_t *st = XXH3_createState();
    ZJ_VERIFY(st != NULL);
    XXH3_64bits_reset(st);
    XXH3_64bits_update(st, l->head + ZJ_IMG_SUM_FROM, header_len - ZJ_IMG_SUM_FROM);
    for (int i = 1; i < l->n_iov; i++) {
        XXH3_64bits_update(st, l->iov[i].iov_base, l->iov[i].iov_len);
    }
    h.checksum = XXH3_64bits_digest(st);
    XXH3_freeState(st);
    memcpy(l->head, &h, sizeof(h));
}

int zj_builder_check(zj_builder_t *b)
{
    return build_all(b);
}

int zj_builder_finish(zj_builder_t *b, uint8_t **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    int rc = build_all(b);
    if (rc != ZJ_OK) {
        return rc;
    }
    layout_t l;
    make_layout(b, &l);
    uint8_t *img = NULL;
    if (posix_memalign((void **)&img, ZJ_IMG_ALIGN, l.total) != 0) {
        fprintf(stderr, "zonejet: out of memory\n");
        abort();
    }
    size_t pos = 0;
    for (int i = 0; i < l.n_iov; i++) {
        memcpy(img + pos, l.iov[i].iov_base, l.iov[i].iov_len);
        pos += l.iov[i].iov_len;
    }
    *out = img;
    *out_len = l.total;
    return ZJ_OK;
}

int zj_builder_finish_fd(zj_builder_t *b, int fd, size_t *out_len)
{
    *out_len = 0;
    int rc = build_all(b);
    if (rc != ZJ_OK) {
        return rc;
    }
    /* Written straight from the builder's arrays: no second copy of the image in memory. */
    layout_t l;
    make_layout(b, &l);
    struct iovec *iov = l.iov;
    int n = l.n_iov;
    while (n > 0) {
        ssize_t w = writev(fd, iov, n);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -errno;
        }
        size_t left = (size_t)w;
        while (n > 0 && left >= iov->iov_len) {
            left -= iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (uint8_t *)iov->iov_base + left;
            iov->iov_len -= left;
        }
    }
    *out_len = l.total;
    return ZJ_OK;
}
