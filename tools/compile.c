/* zonejet-compile: zone files -> one zone image, written atomically; --check validates only;
 * --dump prints an image back as canonical zone-file text (one RR per line), with routing
 * policies, their record sets, health checks and tables as ';' comment lines (so the text still
 * reads as the zone's plain records).
 *
 * The image is written to a temporary file in the output's directory, fsynced, renamed over
 * the output and the directory fsynced, so a reader sees the old image or the new one, never a
 * partial file; a failed compile leaves the previous output untouched. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "compile/emit.h"
#include "compile/parse.h"
#include "zonejet/dname.h"
#include "zonejet/err.h"
#include "zonejet/zone.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: zonejet-compile [options] -o OUT.img [--origin NAME] ZONEFILE...\n"
               "       zonejet-compile --check [--origin NAME] ZONEFILE...\n"
               "       zonejet-compile --dump IMAGE\n"
               "options:\n"
               "  -o, --output FILE     image to write (atomically: temp file, fsync, rename)\n"
               "  --origin NAME         origin of the zone file that follows\n"
               "  --check               parse and check only, write nothing\n"
               "  --dump IMAGE          print an image as zone-file text\n"
               "  --verify IMAGE        open and validate an image, print its size and timing\n"
               "  --max-errors N        errors to print before stopping (default 20)\n"
               "  --max-size BYTES      largest zone file accepted (default 1 GiB)\n"
               "  -q, --quiet           no warnings\n");
}

/* Check, then write the image to a temporary file beside path, fsync, rename over path and
 * fsync the directory. Returns 0; on any failure the temporary file is removed and path is
 * untouched. */
static int write_atomic(const char *path, zj_builder_t *b)
{
    char tmp[4096];
    int n = snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
    if (n < 0 || (size_t)n >= sizeof(tmp)) {
        fprintf(stderr, "%s: path too long\n", path);
        return -1;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        fprintf(stderr, "%s: %s\n", tmp, strerror(errno));
        return -1;
    }
    size_t len = 0;
    int rc = zj_builder_finish_fd(b, fd, &len);
    if (rc == ZJ_EZONE) {
        fprintf(stderr, "zonejet-compile: %u error(s), no image written\n", zj_builder_errors(b));
        goto fail;
    }
    if (rc != ZJ_OK) {
        fprintf(stderr, "%s: write: %s\n", tmp, strerror(-rc));
        goto fail;
    }
    if (fsync(fd) != 0) {
        fprintf(stderr, "%s: fsync: %s\n", tmp, strerror(errno));
        goto fail;
    }
    close(fd);
    fd = -1;
    if (rename(tmp, path) != 0) {
        fprintf(stderr, "%s: rename: %s\n", path, strerror(errno));
        goto fail;
    }
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s", path);
    int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
    return 0;
fail:
    if (fd >= 0) {
        close(fd);
    }
    unlink(tmp);
    return -1;
}

/* One RR per line, each prefixed with lead. */
static void dump_rrset(const zj_image_t *img, const char *lead, const char *owner,
                       const zj_img_rrset_d *rs)
{
    static char text[262144]; /* presentation form of one rdata: 64 KiB in hex is < 256 KiB */
    char tb[16];
    const uint8_t *w = img->wire + rs->wire_off;
    size_t pos = 0;
    for (uint16_t k = 0; k < rs->n_rr; k++) {
        uint32_t ttl = zj_be32(w + pos + 6);
        uint16_t rdlen = zj_be16(w + pos + 10);
        int tl = zj_rdata_to_text(rs->type, w + pos + 12, rdlen, text, sizeof(text));
        if (tl < 0) {
            /* RFC 3597 generic form for rdata the type printer rejects */
            int o = snprintf(text, sizeof(text), "\\# %u", rdlen);
            for (uint16_t i = 0; i < rdlen && (size_t)o + 4 < sizeof(text); i++) {
                o += snprintf(text + o, sizeof(text) - (size_t)o, "%s%02X", i == 0 ? " " : "",
                              w[pos + 12 + i]);
            }
        }
        printf("%s%s %u IN %s %s\n", lead, owner, ttl, zj_rrtype_to_text(rs->type, tb, sizeof(tb)),
               text);
        pos += 12u + rdlen;
    }
}

static const char *const policy_kinds[] = {"?",   "weighted", "failover", "multivalue",
                                           "geo", "cidr",     "latency"};

static const char *str_of(const zj_image_t *img, uint32_t off)
{
    return off == ZJ_IMG_NONE ? "" : img->strs + off;
}

/* "*", "continent:EU", "country:DE", "subdivision:US-CA" */
static void location_text(uint32_t level, uint32_t code, uint32_t sub, char *out, size_t cap)
{
    char s[4] = {(char)(sub >> 24), (char)(sub >> 16), (char)(sub >> 8), 0};
    switch (level) {
    case ZJ_GEO_CONTINENT:
        snprintf(out, cap, "continent:%c%c", (char)(code >> 8), (char)code);
        break;
    case ZJ_GEO_COUNTRY:
        snprintf(out, cap, "country:%c%c", (char)(code >> 8), (char)code);
        break;
    case ZJ_GEO_SUBDIVISION:
        snprintf(out, cap, "subdivision:%c%c-%s", (char)(code >> 8), (char)code, s);
        break;
    default:
        snprintf(out, cap, "*");
    }
}

static void dump_policy(const zj_image_t *img, const char *owner, const zj_img_rrset_d *prs)
{
    const zj_img_policy_d *p = &img->policies[prs->wire_off];
    char tb[16];
    printf("; policy %s %s %s (%u sets)\n", owner, zj_rrtype_to_text(prs->type, tb, sizeof(tb)),
           policy_kinds[p->kind], p->n_sets);
    for (uint32_t k = 0; k < p->n_sets; k++) {
        const zj_img_pset_d *s = &img->psets[p->first_pset + k];
        char attr[600];
        char loc[64];
        switch (p->kind) {
        case ZJ_POL_WEIGHTED:
            snprintf(attr, sizeof(attr), " weight=%u", s->value);
            break;
        case ZJ_POL_FAILOVER:
            snprintf(attr, sizeof(attr), " role=%s",
                     s->value == ZJ_FAILOVER_PRIMARY ? "primary" : "secondary");
            break;
        case ZJ_POL_GEO:
            location_text(s->geo_level, s->geo_code, s->value, loc, sizeof(loc));
            snprintf(attr, sizeof(attr), " location=%s", loc);
            break;
        case ZJ_POL_CIDR: {
            const zj_img_table_d *t = &img->tables[p->table];
            snprintf(attr, sizeof(attr), " collection=%s location=%s", str_of(img, t->name_off),
                     s->value == ZJ_IMG_NONE ? "*"
                                             : str_of(img, img->u32[t->values_off + s->value]));
            break;
        }
        case ZJ_POL_LATENCY: {
            const zj_img_table_d *t = &img->tables[p->table];
            snprintf(attr, sizeof(attr), " region=%s",
                     str_of(img, img->u32[t->regions_off + s->value]));
            break;
        }
        default:
            attr[0] = '\0';
        }
        printf(";   set \"%s\"%s", str_of(img, s->id_off), attr);
        if (s->check != ZJ_IMG_NONE) {
            printf(" check=%s", str_of(img, img->checks[s->check].name_off));
        }
        printf("\n");
        dump_rrset(img, ";     ", owner, &img->rrsets[p->first_rrset + k]);
    }
}

static void dump_check(const zj_image_t *img, const zj_img_check_d *c)
{
    static const char *const kinds[] = {"?", "tcp", "http", "https", "calculated"};
    printf("; check %s %s", str_of(img, c->name_off), kinds[c->kind]);
    if (c->kind == ZJ_CHECK_CALCULATED) {
        printf(" %u ", c->min_healthy);
        for (uint16_t k = 0; k < c->n_children; k++) {
            printf("%s%s", k ? "," : "",
                   str_of(img, img->checks[img->u32[c->children_off + k]].name_off));
        }
    } else {
        char a[INET6_ADDRSTRLEN];
        inet_ntop(c->family, c->addr, a, sizeof(a));
        printf(" %s %u", a, c->port);
        if (c->kind != ZJ_CHECK_TCP) {
            printf(" path=%s", str_of(img, c->path_off));
            if (c->host_off != ZJ_IMG_NONE) {
                printf(" host=%s", str_of(img, c->host_off));
            }
            if (c->match_off != ZJ_IMG_NONE) {
                printf(" match=\"%s\"", str_of(img, c->match_off));
            }
        }
        printf(" interval=%ums timeout=%ums threshold=%u", c->interval_ms, c->timeout_ms,
               c->threshold);
    }
    printf("%s%s\n", (c->flags & ZJ_CHECK_INVERTED) ? " inverted" : "",
           (c->flags & ZJ_CHECK_DISABLED) ? " disabled" : "");
}

/* The name of value v of table t, for a prefix-map piece. */
static void table_value(const zj_image_t *img, const zj_img_table_d *t, uint32_t v, char *out,
                        size_t cap)
{
    if (t->kind == ZJ_TABLE_CIDR) {
        snprintf(out, cap, "%s", str_of(img, img->u32[t->values_off + v]));
        return;
    }
    const uint32_t *e = img->u32 + t->values_off + ZJ_LAT_ENTRY_WORDS * (size_t)v;
    size_t o = 0;
    out[0] = '\0';
    for (uint32_t r = 0; r < e[3] && o < cap; r++) {
        int n = snprintf(out + o, cap - o, "%s%s", r ? "," : "",
                         str_of(img, img->u32[t->regions_off + img->u32[e[2] + r]]));
        o += n > 0 ? (size_t)n : 0;
    }
}

static void dump_table(const zj_image_t *img, const zj_img_table_d *t)
{
    char a[INET6_ADDRSTRLEN];
    char b[INET6_ADDRSTRLEN];
    char v[512];
    if (t->kind == ZJ_TABLE_CIDR) {
        printf("; cidr collection %s: %u locations\n", str_of(img, t->name_off), t->n_values);
    } else {
        printf("; latency table: %u regions:", t->n_regions);
        for (uint32_t r = 0; r < t->n_regions; r++) {
            printf(" %s", str_of(img, img->u32[t->regions_off + r]));
        }
        printf("\n");
        for (uint32_t k = 0; k < t->n_values; k++) {
            const uint32_t *e = img->u32 + t->values_off + ZJ_LAT_ENTRY_WORDS * (size_t)k;
            if (e[0] == ZJ_LAT_PREFIX_ENTRY) {
                continue; /* a prefix: listed with the maps below */
            }
            char loc[64];
            location_text(e[0] >> 16, e[0] & 0xFFFF, e[1], loc, sizeof(loc));
            table_value(img, t, k, v, sizeof(v));
            printf(";   client %s -> %s\n", loc, v);
        }
    }
    /* prefix-map pieces that hold a value: first - last address, the prefix length behind it */
    for (uint32_t k = 0; k < t->n4; k++) {
        const zj_pmap4_d *m = &img->pmap4[t->first4 + k];
        if (m->value == ZJ_IMG_NONE) {
            continue;
        }
        uint32_t last = k + 1 < t->n4 ? img->pmap4[t->first4 + k + 1].start - 1 : 0xFFFFFFFFu;
        uint32_t s4 = htonl(m->start);
        uint32_t e4 = htonl(last);
        inet_ntop(AF_INET, &s4, a, sizeof(a));
        inet_ntop(AF_INET, &e4, b, sizeof(b));
        table_value(img, t, m->value, v, sizeof(v));
        printf(";   %s - %s (/%u) -> %s\n", a, b, m->len, v);
    }
    for (uint32_t k = 0; k < t->n6; k++) {
        const zj_pmap6_d *m = &img->pmap6[t->first6 + k];
        if (m->value == ZJ_IMG_NONE) {
            continue;
        }
        uint8_t s6[16];
        uint8_t e6[16];
        uint64_t hi = m->hi;
        uint64_t lo = m->lo;
        uint64_t ehi = UINT64_MAX;
        uint64_t elo = UINT64_MAX;
        if (k + 1 < t->n6) {
            const zj_pmap6_d *nx = &img->pmap6[t->first6 + k + 1];
            ehi = nx->lo == 0 ? nx->hi - 1 : nx->hi;
            elo = nx->lo - 1;
        }
        for (int i = 0; i < 8; i++) {
            s6[i] = (uint8_t)(hi >> (56 - 8 * i));
            s6[8 + i] = (uint8_t)(lo >> (56 - 8 * i));
            e6[i] = (uint8_t)(ehi >> (56 - 8 * i));
            e6[8 + i] = (uint8_t)(elo >> (56 - 8 * i));
        }
        inet_ntop(AF_INET6, s6, a, sizeof(a));
        inet_ntop(AF_INET6, e6, b, sizeof(b));
        table_value(img, t, m->value, v, sizeof(v));
        printf(";   %s - %s (/%u) -> %s\n", a, b, m->len, v);
    }
}

static int dump_image(const char *path)
{
    zj_image_t *img = NULL;
    char err[512];
    if (zj_image_open(path, &img, err, sizeof(err)) != ZJ_OK) {
        fprintf(stderr, "zonejet-compile: %s\n", err);
        return 1;
    }
    char owner[1024];
    for (uint32_t z = 0; z < img->n_zones; z++) {
        const zj_img_zone_d *zd = &img->zones[z];
        zj_dname_to_text(img->names + zd->name_off, owner, sizeof(owner));
        printf("; zone %s serial %u\n", owner, zd->serial);
        for (uint32_t n = zd->first_node; n < zd->first_node + zd->n_nodes; n++) {
            const zj_img_node_d *nd = &img->nodes[n];
            zj_dname_to_text(img->names + nd->name_off, owner, sizeof(owner));
            for (uint32_t r = nd->rrset_first; r < nd->rrset_first + nd->n_rrsets; r++) {
                const zj_img_rrset_d *rs = &img->rrsets[r];
                if (rs->n_rr == 0) {
                    dump_policy(img, owner, rs);
                } else {
                    dump_rrset(img, "", owner, rs);
                }
            }
        }
        for (uint32_t c = 0; c < img->n_checks; c++) {
            if (img->checks[c].zone == z) {
                dump_check(img, &img->checks[c]);
            }
        }
        for (uint32_t t = 0; t < img->n_tables; t++) {
            if (img->tables[t].zone == z) {
                dump_table(img, &img->tables[t]);
            }
        }
    }
    zj_image_close(img);
    return 0;
}

static int verify_image(const char *path)
{
    struct timespec t0;
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    zj_image_t *img = NULL;
    char err[512];
    if (zj_image_open(path, &img, err, sizeof(err)) != ZJ_OK) {
        fprintf(stderr, "zonejet-compile: %s\n", err);
        return 1;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    uint64_t rrs = 0;
    for (uint32_t i = 0; i < img->n_rrsets; i++) {
        rrs += img->rrsets[i].n_rr;
    }
    printf("%s: ok, %u zones, %u nodes, %u rrsets, %llu records, %zu bytes, "
           "open+validate %.2f ms\n",
           path, img->n_zones, img->n_nodes, img->n_rrsets, (unsigned long long)rrs, img->len, ms);
    zj_image_close(img);
    return 0;
}

int main(int argc, char **argv)
{
    enum { OPT_ORIGIN = 256, OPT_CHECK, OPT_DUMP, OPT_VERIFY, OPT_MAXERR, OPT_MAXSIZE };
    static const struct option longopts[] = {
        {"output", required_argument, NULL, 'o'},
        {"origin", required_argument, NULL, OPT_ORIGIN},
        {"check", no_argument, NULL, OPT_CHECK},
        {"dump", required_argument, NULL, OPT_DUMP},
        {"verify", required_argument, NULL, OPT_VERIFY},
        {"max-errors", required_argument, NULL, OPT_MAXERR},
        {"max-size", required_argument, NULL, OPT_MAXSIZE},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *output = NULL;
    bool check = false;
    zj_build_opts_t bo;
    memset(&bo, 0, sizeof(bo));
    /* Options and files are interleaved ("--origin X file"), so parse in order ('-' mode). */
    struct {
        const char *file;
        const char *origin;
    } *inputs = calloc((size_t)argc, sizeof(*inputs));
    size_t n_inputs = 0;
    const char *pending_origin = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "-o:qh", longopts, NULL)) != -1) {
        switch (c) {
        case 1:
            inputs[n_inputs].file = optarg;
            inputs[n_inputs].origin = pending_origin;
            n_inputs++;
            pending_origin = NULL;
            break;
        case 'o':
            output = optarg;
            break;
        case OPT_ORIGIN:
            pending_origin = optarg;
            break;
        case OPT_CHECK:
            check = true;
            break;
        case OPT_DUMP:
            free(inputs);
            return dump_image(optarg);
        case OPT_VERIFY:
            free(inputs);
            return verify_image(optarg);
        case OPT_MAXERR:
            bo.max_errors = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case OPT_MAXSIZE:
            bo.max_file_bytes = (size_t)strtoull(optarg, NULL, 10);
            break;
        case 'q':
            bo.quiet = true;
            break;
        case 'h':
            usage(stdout);
            free(inputs);
            return 0;
        default:
            usage(stderr);
            free(inputs);
            return 2;
        }
    }
    if (n_inputs == 0 || (!check && output == NULL)) {
        usage(stderr);
        free(inputs);
        return 2;
    }
    int rc = 1;
    zj_builder_t *b = zj_builder_new(&bo);
    for (size_t i = 0; i < n_inputs; i++) {
        uint8_t origin[ZJ_DNS_MAX_NAME];
        const uint8_t *op = NULL;
        if (inputs[i].origin != NULL) {
            const char *o = inputs[i].origin;
            uint8_t root = 0;
            if (zj_dname_from_text(o, strlen(o), &root, origin) < 0) {
                fprintf(stderr, "zonejet-compile: --origin %s: not a domain name\n", o);
                goto out;
            }
            op = origin;
        }
        (void)zj_builder_add_file(b, inputs[i].file, op);
    }
    if (check) {
        if (zj_builder_check(b) != ZJ_OK) {
            fprintf(stderr, "zonejet-compile: %u error(s)\n", zj_builder_errors(b));
            goto out;
        }
    } else if (write_atomic(output, b) != 0) {
        goto out;
    }
    rc = 0;
out:
    zj_builder_free(b);
    free(inputs);
    return rc;
}
