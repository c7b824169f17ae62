/* zonejet-compile: zone files -> one zone image, written atomically; --check validates only;
 * --dump prints an image back as canonical zone-file text (one RR per line).
 *
 * The image is written to a temporary file in the output's directory, fsynced, renamed over
 * the output and the directory fsynced, so a reader sees the old image or the new one, never a
 * partial file; a failed compile leaves the previous output untouched. */
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

static int dump_image(const char *path)
{
    zj_image_t *img = NULL;
    char err[512];
    if (zj_image_open(path, &img, err, sizeof(err)) != ZJ_OK) {
        fprintf(stderr, "zonejet-compile: %s\n", err);
        return 1;
    }
    static char text[262144]; /* presentation form of one rdata: 64 KiB in hex is < 256 KiB */
    char owner[1024];
    char tb[16];
    for (uint32_t z = 0; z < img->n_zones; z++) {
        const zj_img_zone_d *zd = &img->zones[z];
        zj_dname_to_text(img->names + zd->name_off, owner, sizeof(owner));
        printf("; zone %s serial %u\n", owner, zd->serial);
        for (uint32_t n = zd->first_node; n < zd->first_node + zd->n_nodes; n++) {
            const zj_img_node_d *nd = &img->nodes[n];
            zj_dname_to_text(img->names + nd->name_off, owner, sizeof(owner));
            for (uint32_t r = nd->rrset_first; r < nd->rrset_first + nd->n_rrsets; r++) {
                const zj_img_rrset_d *rs = &img->rrsets[r];
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
                            o += snprintf(text + o, sizeof(text) - (size_t)o, "%s%02X",
                                          i == 0 ? " " : "", w[pos + 12 + i]);
                        }
                    }
                    printf("%s %u IN %s %s\n", owner, ttl,
                           zj_rrtype_to_text(rs->type, tb, sizeof(tb)), text);
                    pos += 12u + rdlen;
                }
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
