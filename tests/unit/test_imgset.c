/* zone/imgset: sets share images by reference; refresh, add and remove touch only their own
 * source; a failed refresh changes nothing; duplicate apexes are refused; path helpers; the zone
 * directory finds the deepest apex across thousands of images with a bounded number of probes,
 * and an edit never leaves it pointing at a released image. Run under ASan, a use of an image
 * after its last set closed would be caught here. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "zonejet/dname.h"
#include "zonejet/err.h"
#include "zonejet/wire.h"
#include "zonejet/zone.h"
#include "compile/emit.h"
#include "dns/answer.h"
#include "health/health.h"
#include "health/health_internal.h"
#include "zone/imgset.h"
#include "zone/imgset_internal.h"

static char dir[64];

static void zone_text(char *out, size_t cap, const char *origin, unsigned serial)
{
    snprintf(out, cap,
             "$ORIGIN %s\n$TTL 300\n@ SOA ns1 admin %u 3600 900 604800 60\n@ NS ns1\n"
             "ns1 A 192.0.2.1\nwww A 10.0.0.%u\n",
             origin, serial, serial % 256);
}

static void write_file(const char *path, const void *p, size_t len)
{
    char tmp[256];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, len, f), len);
    fclose(f);
    assert_int_equal(rename(tmp, path), 0); /* a new inode, as zonejet-compile does */
}

/* Compile one zone to an image file named name in dir; returns the path (static buffer). */
static const char *make_image(const char *name, const char *origin, unsigned serial)
{
    static char path[128];
    char text[512];
    uint8_t *buf = NULL;
    size_t len = 0;
    zone_text(text, sizeof(text), origin, serial);
    zj_build_opts_t opts = {.quiet = true};
    zj_builder_t *b = zj_builder_new(&opts);
    assert_int_equal(zj_builder_add_text(b, name, text, strlen(text), NULL), ZJ_OK);
    assert_int_equal(zj_builder_finish(b, &buf, &len), ZJ_OK);
    zj_builder_free(b);
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    write_file(path, buf, len);
    free(buf);
    return path;
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/zj_test_imgset_XXXXXX");
    return mkdtemp(dir) == NULL ? -1 : 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static zj_imgset_t *open_two(char *a, char *b)
{
    strcpy(a, make_image("a.img", "a.test.", 1));
    strcpy(b, make_image("b.img", "b.test.", 1));
    const char *images[] = {a, b};
    zj_imgset_spec_t spec = {.images = images, .n_images = 2};
    zj_imgset_t *set = NULL;
    assert_int_equal(zj_imgset_open(&spec, NULL, &set), ZJ_OK);
    return set;
}

static uint32_t serial_of(const zj_imgset_t *set, size_t i)
{
    return set->images[i]->zones[0].serial;
}

static void test_imgset_refresh_replaces_only_the_changed_image(void **state)
{
    (void)state;
    char a[128], b[128];
    zj_imgset_t *old = open_two(a, b);
    zj_imgset_t *set = NULL;
    bool is_changed = true;

    /* Nothing changed: the clone keeps sharing both images. */
    assert_int_equal(zj_imgset_clone(old, &set), ZJ_OK);
    assert_int_equal(zj_imgset_refresh(set, 0, false, NULL, &is_changed), ZJ_OK);
    assert_false(is_changed);
    assert_true(zj_imgset_same_image(old, 0, set, 0));
    zj_imgset_close(set);

    make_image("a.img", "a.test.", 2);
    assert_int_equal(zj_imgset_clone(old, &set), ZJ_OK);
    assert_int_equal(zj_imgset_refresh(set, 0, false, NULL, &is_changed), ZJ_OK);
    assert_true(is_changed);
    assert_int_equal(zj_imgset_refresh(set, 1, false, NULL, &is_changed), ZJ_OK);
    assert_false(is_changed);
    assert_false(zj_imgset_same_image(old, 0, set, 0));
    assert_true(zj_imgset_same_image(old, 1, set, 1));
    assert_int_equal(serial_of(old, 0), 1);
    assert_int_equal(serial_of(set, 0), 2);
    /* Closing the old set must leave the shared image readable by the new one. */
    zj_imgset_close(old);
    assert_int_equal(serial_of(set, 1), 1);
    assert_int_equal(zj_imgset_zone_count(set), 2);
    zj_imgset_close(set);
}

static void test_imgset_failed_refresh_changes_nothing(void **state)
{
    (void)state;
    char a[128], b[128];
    zj_imgset_t *old = open_two(a, b);
    zj_imgset_t *set = NULL;
    char *text = NULL;
    size_t len = 0;
    write_file(a, "not an image", 12);
    assert_int_equal(zj_imgset_clone(old, &set), ZJ_OK);
    FILE *diag = open_memstream(&text, &len);
    assert_true(zj_imgset_refresh(set, 0, true, diag, NULL) < 0);
    fclose(diag);
    assert_non_null(strstr(text, "a.img"));
    assert_true(zj_imgset_same_image(old, 0, set, 0));
    free(text);
    zj_imgset_close(set);
    zj_imgset_close(old);
}

static void test_imgset_add_remove_find_and_duplicates(void **state)
{
    (void)state;
    char a[128], b[128], c[128], dup[128];
    zj_imgset_t *old = open_two(a, b);
    zj_imgset_t *set = NULL;
    strcpy(c, make_image("c.img", "c.test.", 1));
    strcpy(dup, make_image("dup.img", "a.test.", 7));
    assert_int_equal(zj_imgset_clone(old, &set), ZJ_OK);
    assert_int_equal(zj_imgset_add(set, ZJ_IMGSRC_IMAGE, c, NULL), ZJ_OK);
    assert_int_equal(zj_imgset_count(set), 3);
    assert_int_equal(zj_imgset_check(set, NULL), ZJ_OK);
    assert_int_equal(zj_imgset_find_zone(set, "C.TEST", NULL), 2);
    assert_int_equal(zj_imgset_find_zone(set, "nope.test.", NULL), -1);
    char other[256];
    snprintf(other, sizeof(other), "%s/./b.img", dir); /* another spelling, same file */
    assert_int_equal(zj_imgset_find_path(set, other), 1);
    zj_imgset_remove(set, 1);
    assert_int_equal(zj_imgset_count(set), 2);
    assert_string_equal(zj_imgset_path(set, 1), c);
    assert_true(zj_imgset_same_image(old, 0, set, 0));

    char *text = NULL;
    size_t len = 0;
    FILE *diag = open_memstream(&text, &len);
    assert_int_equal(zj_imgset_add(set, ZJ_IMGSRC_IMAGE, dup, diag), ZJ_OK);
    assert_int_equal(zj_imgset_check(set, diag), ZJ_EINVAL);
    fclose(diag);
    assert_non_null(strstr(text, "zone a.test. is in both"));
    free(text);
    zj_imgset_close(set);
    /* The old set still has its own b.img. */
    assert_int_equal(zj_imgset_find_zone(old, "b.test.", NULL), 1);
    zj_imgset_close(old);
}

static void test_imgset_zone_directory_is_restamped_per_file(void **state)
{
    (void)state;
    char zdir[128], z1[160], z2[160], text[512];
    snprintf(zdir, sizeof(zdir), "%s/zones", dir);
    assert_int_equal(mkdir(zdir, 0700), 0);
    snprintf(z1, sizeof(z1), "%s/one.zone", zdir);
    snprintf(z2, sizeof(z2), "%s/two.zone", zdir);
    zone_text(text, sizeof(text), "one.test.", 1);
    write_file(z1, text, strlen(text));
    zone_text(text, sizeof(text), "two.test.", 1);
    write_file(z2, text, strlen(text));
    const char *zones[] = {zdir};
    zj_imgset_spec_t spec = {.zone_paths = zones, .n_zone_paths = 1};
    zj_imgset_t *old = NULL;
    zj_imgset_t *set = NULL;
    bool is_changed = true;
    assert_int_equal(zj_imgset_open(&spec, NULL, &old), ZJ_OK);
    assert_int_equal(zj_imgset_zone_count(old), 2);
    assert_int_equal(zj_imgset_kind(old, 0), ZJ_IMGSRC_ZONES);
    assert_int_equal(zj_imgset_clone(old, &set), ZJ_OK);
    assert_int_equal(zj_imgset_refresh(set, 0, false, NULL, &is_changed), ZJ_OK);
    assert_false(is_changed);
    zone_text(text, sizeof(text), "two.test.", 2);
    write_file(z2, text, strlen(text));
    assert_int_equal(zj_imgset_refresh(set, 0, false, NULL, &is_changed), ZJ_OK);
    assert_true(is_changed);
    /* A syntax error is reported as file:line and leaves the set as it was. */
    static const char bad[] = "$ORIGIN two.test.\n@ SOA ns1 admin 3 1 1 1 1\nwww A 300.0.0.1\n";
    write_file(z2, bad, strlen(bad));
    char *diag_text = NULL;
    size_t len = 0;
    FILE *diag = open_memstream(&diag_text, &len);
    zj_image_t *before = set->images[0];
    assert_true(zj_imgset_refresh(set, 0, false, diag, &is_changed) < 0);
    fclose(diag);
    assert_ptr_equal(set->images[0], before);
    assert_non_null(strstr(diag_text, "two.zone:3:"));
    free(diag_text);
    zj_imgset_close(set);
    zj_imgset_close(old);
}

/* Refresh source i of set (a clone, edited in place) and say whether it was re-read. */
static bool refreshed(zj_imgset_t *set, size_t i)
{
    bool is_changed = false;
    assert_int_equal(zj_imgset_refresh(set, i, false, NULL, &is_changed), ZJ_OK);
    return is_changed;
}

static void test_imgset_policy_file_beside_a_zone_file_is_stamped(void **state)
{
    (void)state;
    char pdir[128], zfile[160], pfile[160], dbfile[160], dbpolicy[160], text[512];
    snprintf(pdir, sizeof(pdir), "%s/pol", dir);
    assert_int_equal(mkdir(pdir, 0700), 0);
    snprintf(zfile, sizeof(zfile), "%s/p.zone", dir);
    snprintf(pfile, sizeof(pfile), "%s/p.policy", dir);
    snprintf(dbfile, sizeof(dbfile), "%s/q.db", pdir);
    snprintf(dbpolicy, sizeof(dbpolicy), "%s/q.policy", pdir);
    zone_text(text, sizeof(text), "p.test.", 1);
    write_file(zfile, text, strlen(text));
    zone_text(text, sizeof(text), "q.test.", 1);
    write_file(dbfile, text, strlen(text));
    const char *zones[] = {zfile, pdir};
    zj_imgset_spec_t spec = {.zone_paths = zones, .n_zone_paths = 2};
    zj_imgset_t *set = NULL;
    assert_int_equal(zj_imgset_open(&spec, NULL, &set), ZJ_OK);
    assert_false(refreshed(set, 0));
    assert_false(refreshed(set, 1));

    /* A policy file appears, changes, disappears: each time only its own source is re-read. */
    static const char v1[] = "# no policies yet\n";
    static const char v2[] = "# still none, but the file changed\n";
    write_file(pfile, v1, strlen(v1));
    assert_true(refreshed(set, 0));
    assert_false(refreshed(set, 0));
    assert_false(refreshed(set, 1));
    write_file(pfile, v2, strlen(v2));
    assert_true(refreshed(set, 0));
    assert_int_equal(unlink(pfile), 0);
    assert_true(refreshed(set, 0));
    assert_false(refreshed(set, 0));

    /* In a directory, "q.db" has "q.policy". */
    write_file(dbpolicy, v1, strlen(v1));
    assert_true(refreshed(set, 1));
    assert_false(refreshed(set, 1));
    assert_false(refreshed(set, 0));
    write_file(dbpolicy, v2, strlen(v2));
    assert_true(refreshed(set, 1));
    zj_imgset_close(set);
}

static void test_imgset_clone_keeps_health_and_geo(void **state)
{
    (void)state;
    char a[128];
    static const int fake_geo[2]; /* the set never looks inside: any address will do */
    strcpy(a, make_image("g.img", "g.test.", 1));
    const char *images[] = {a};
    zj_imgset_spec_t spec = {
        .images = images, .n_images = 1, .geo = (const struct zj_geo *)(const void *)&fake_geo[0]};
    zj_imgset_t *set = NULL;
    zj_imgset_t *clone = NULL;
    assert_int_equal(zj_imgset_open(&spec, NULL, &set), ZJ_OK);
    assert_ptr_equal(set->geo, &fake_geo[0]);
    assert_ptr_equal(zj_imgset_geo(set), &fake_geo[0]);
    assert_null(set->health);
    assert_int_equal(zj_imgset_clone(set, &clone), ZJ_OK);
    assert_ptr_equal(clone->geo, &fake_geo[0]);
    zj_imgset_set_geo(clone, (const struct zj_geo *)(const void *)&fake_geo[1]);
    assert_ptr_equal(zj_imgset_geo(clone), &fake_geo[1]);
    assert_ptr_equal(zj_imgset_geo(set), &fake_geo[0]); /* the published set is untouched */
    zj_imgset_close(clone);
    zj_imgset_close(set);
}

static void write_policy(const char *path, unsigned port)
{
    char text[512];
    snprintf(text, sizeof(text),
             "check web tcp 127.0.0.1 %u interval=1 timeout=500ms threshold=1\n"
             "set pol A failover p role=primary check=web\n    10.0.0.1\n"
             "set pol A failover s role=secondary\n    10.0.0.2\n",
             port);
    write_file(path, text, strlen(text));
}

static void test_imgset_images_attach_to_health_and_keep_states_across_refresh(void **state)
{
    (void)state;
    char zfile[160], pfile[160], text[512];
    snprintf(zfile, sizeof(zfile), "%s/h.zone", dir);
    snprintf(pfile, sizeof(pfile), "%s/h.policy", dir);
    zone_text(text, sizeof(text), "h.test.", 1);
    write_file(zfile, text, strlen(text));
    write_policy(pfile, 1);
    zj_health_t *h = NULL;
    assert_int_equal(zj_health_new(&h), ZJ_OK); /* not started: only fed results count */
    const char *zones[] = {zfile};
    zj_imgset_spec_t spec = {.zone_paths = zones, .n_zone_paths = 1, .health = h};
    zj_imgset_t *old = NULL;
    zj_imgset_t *set = NULL;
    assert_int_equal(zj_imgset_open(&spec, NULL, &old), ZJ_OK);
    zj_image_t *img = old->images[0];
    assert_int_equal(img->n_checks, 1);
    assert_non_null(img->health); /* attached before the set could be published */
    assert_int_equal(zj_health_feed(h, img, 0, false, "connect refused"), ZJ_OK);
    assert_int_equal(*img->health[0], 0);

    /* The zone changes, the check does not: the new image reads the same state byte. */
    zone_text(text, sizeof(text), "h.test.", 2);
    write_file(zfile, text, strlen(text));
    assert_int_equal(zj_imgset_clone(old, &set), ZJ_OK);
    assert_ptr_equal(set->health, h);
    assert_true(refreshed(set, 0));
    zj_image_t *next = set->images[0];
    assert_ptr_not_equal(next, img);
    assert_ptr_equal(next->health[0], img->health[0]);
    zj_imgset_close(old); /* detaches the old image only */
    assert_int_equal(*next->health[0], 0);
    zj_health_info_t info;
    assert_int_equal(zj_health_info(h, next, 0, &info), ZJ_OK);
    assert_int_equal(info.refs, 1);

    /* The check changes (another port): a new check, healthy; the old one is gone. */
    write_policy(pfile, 2);
    assert_true(refreshed(set, 0));
    assert_int_equal(*set->images[0]->health[0], 1);
    char out[1024];
    zj_health_describe(h, out, sizeof(out));
    assert_non_null(strstr(out, "h.test. web tcp 127.0.0.1:2 healthy"));
    assert_null(strstr(out, "127.0.0.1:1 "));

    zj_imgset_close(set);
    zj_health_describe(h, out, sizeof(out));
    assert_string_equal(out, "no health checks\n");
    zj_health_free(h);
}

/* ---- zone directory ----------------------------------------------------------------------- */

/* Children z0000.test. .. z1999.test., one image each, plus their parent test. in its own. */
#define N_CHILD 2000

static zj_image_t *image_of_text(const char *text)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    char err[256];
    zj_image_t *img = NULL;
    zj_build_opts_t opts = {.quiet = true};
    zj_builder_t *b = zj_builder_new(&opts);
    assert_int_equal(zj_builder_add_text(b, "mem.zone", text, strlen(text), NULL), ZJ_OK);
    assert_int_equal(zj_builder_finish(b, &buf, &len), ZJ_OK);
    zj_builder_free(b);
    assert_int_equal(zj_image_open_mem(buf, len, &img, err, sizeof(err)), ZJ_OK);
    return img;
}

static zj_image_t *child_image(unsigned i)
{
    char text[512];
    snprintf(text, sizeof(text),
             "$ORIGIN z%04u.test.\n$TTL 300\n@ SOA ns1 admin %u 3600 900 604800 60\n@ NS ns1\n"
             "ns1 A 192.0.2.1\nwww A 10.0.%u.%u\n",
             i, i + 1, i / 256, i % 256);
    return image_of_text(text);
}

/* The parent delegates z0007 (NS + DS + glue); the other children have no cut in it. */
static zj_image_t *parent_image(void)
{
    return image_of_text("$ORIGIN test.\n$TTL 300\n@ SOA ns1 admin 99 3600 900 604800 60\n"
                         "@ NS ns1\nns1 A 192.0.2.99\nhost A 192.0.2.98\n"
                         "z0007 NS ns1.z0007\nns1.z0007 A 192.0.2.7\n"
                         "z0007 DS 12345 13 2 "
                         "0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF\n");
}

typedef struct reply {
    size_t len;
    int rcode;
    bool is_aa;
    unsigned an, ns;
    uint16_t an_type;    /* type of the first answer RR, 0 if none */
    uint8_t an_rdata[4]; /* its first 4 RDATA bytes */
    uint32_t soa_serial; /* serial of an authority SOA, 0 if none */
} reply_t;

/* Skip a (possibly compressed) name in a response; returns the offset after it. */
static size_t skip_name(const uint8_t *m, size_t p)
{
    while (m[p] != 0 && (m[p] & 0xC0) != 0xC0) {
        p += (size_t)m[p] + 1;
    }
    return p + (m[p] == 0 ? 1 : 2);
}

static reply_t ask_set(const zj_imgset_t *set, const char *name, uint16_t qtype)
{
    static uint8_t out[4096];
    uint8_t q[512] = {0x12, 0x34, 0, 0, 0, 1};
    uint8_t root = 0;
    int n = zj_dname_from_text(name, strlen(name), &root, q + 12);
    assert_true(n > 0);
    size_t qlen = 12 + (size_t)n;
    zj_put16(q + qlen, qtype);
    zj_put16(q + qlen + 2, ZJ_C_IN);
    qlen += 4;
    zj_answer_cfg_t cfg;
    zj_answer_cfg_default(&cfg);
    zj_responder_t rs;
    zj_responder_init(&rs, &cfg, 1);
    reply_t r = {0};
    r.len = zj_answer(&rs, set, q, qlen, NULL, false, out, sizeof(out));
    assert_true(r.len >= 12);
    r.rcode = out[3] & 0x0F;
    r.is_aa = (out[2] & 0x04) != 0;
    r.an = zj_be16(out + 6);
    r.ns = zj_be16(out + 8);
    size_t p = skip_name(out, 12) + 4;
    for (unsigned i = 0; i < r.an + r.ns; i++) {
        p = skip_name(out, p);
        uint16_t type = zj_be16(out + p);
        size_t rdlen = zj_be16(out + p + 8);
        const uint8_t *rd = out + p + 10;
        if (i == 0 && r.an > 0) {
            r.an_type = type;
            memcpy(r.an_rdata, rd, rdlen < 4 ? rdlen : 4);
        }
        if (i >= r.an && type == ZJ_T_SOA) {
            size_t o = skip_name(rd, skip_name(rd, 0)); /* MNAME, RNAME: uncompressed in images */
            r.soa_serial = zj_be32(rd + o);
        }
        p += 10 + rdlen;
    }
    return r;
}

static void test_imgset_directory_finds_deepest_zone_among_many_images(void **state)
{
    (void)state;
    static zj_image_t *images[N_CHILD + 1];
    images[0] = parent_image();
    for (unsigned i = 0; i < N_CHILD; i++) {
        images[i + 1] = child_image(i);
    }
    zj_imgset_t *set = NULL;
    assert_int_equal(zj_imgset_from_images(images, N_CHILD + 1, &set), ZJ_OK);
    /* Bounded work per query: apexes have 1 or 2 labels, so at most 2 probes, and no probe
     * visits more slots than the longest run. The run length is random (per-set seed); at load
     * factor <= 1/2 with ~2,000 apexes it is typically ~20 and in simulation never near 128. */
    assert_int_equal(set->dir.min_labels, 1);
    assert_int_equal(set->dir.max_labels, 2);
    assert_true(set->dir.mask + 1 >= 2 * (N_CHILD + 1));
    assert_true(zj_imgset_dir_max_run(set) <= 128);

    char name[64];
    for (unsigned i = 0; i < N_CHILD; i++) {
        /* a name in each zone, in mixed case and below the apex by up to 3 labels */
        snprintf(name, sizeof(name), "%sWWW.Z%04u.TEST.", i % 2 ? "a.b." : "", i);
        reply_t r = ask_set(set, name, ZJ_T_A);
        if (i % 2) {
            assert_int_equal(r.rcode, ZJ_RCODE_NXDOMAIN);
            assert_int_equal(r.soa_serial, i + 1); /* the child's SOA, not the parent's */
            continue;
        }
        assert_int_equal(r.rcode, ZJ_RCODE_NOERROR);
        assert_true(r.is_aa);
        assert_int_equal(r.an, 1);
        assert_int_equal(r.an_type, ZJ_T_A);
        const uint8_t want[4] = {10, 0, (uint8_t)(i / 256), (uint8_t)(i % 256)};
        assert_memory_equal(r.an_rdata, want, 4);
    }

    /* The apex itself, for SOA, comes from the child. */
    reply_t r = ask_set(set, "z1234.test.", ZJ_T_SOA);
    assert_int_equal(r.rcode, ZJ_RCODE_NOERROR);
    assert_int_equal(r.an_type, ZJ_T_SOA);
    /* DS at a child apex is the parent's (RFC 4035 §3.1.4.1): the delegated one has a DS... */
    r = ask_set(set, "z0007.test.", ZJ_T_DS);
    assert_int_equal(r.rcode, ZJ_RCODE_NOERROR);
    assert_true(r.is_aa);
    assert_int_equal(r.an, 1);
    assert_int_equal(r.an_type, ZJ_T_DS);
    /* ...and for the others the parent has no such name. */
    r = ask_set(set, "z0042.test.", ZJ_T_DS);
    assert_int_equal(r.rcode, ZJ_RCODE_NXDOMAIN);
    assert_int_equal(r.soa_serial, 99);
    /* DS below a child apex stays in the child. */
    r = ask_set(set, "www.z0042.test.", ZJ_T_DS);
    assert_int_equal(r.rcode, ZJ_RCODE_NOERROR);
    assert_int_equal(r.an, 0);
    assert_int_equal(r.soa_serial, 43);
    /* DS at the parent's own apex: no zone above it is served, so the parent answers. */
    r = ask_set(set, "test.", ZJ_T_DS);
    assert_int_equal(r.rcode, ZJ_RCODE_NOERROR);
    assert_int_equal(r.soa_serial, 99);
    /* Names only the parent covers. */
    r = ask_set(set, "host.test.", ZJ_T_A);
    assert_int_equal(r.rcode, ZJ_RCODE_NOERROR);
    assert_int_equal(r.an, 1);
    r = ask_set(set, "z2000.test.", ZJ_T_A); /* no such child */
    assert_int_equal(r.rcode, ZJ_RCODE_NXDOMAIN);
    assert_int_equal(r.soa_serial, 99);
    /* Names outside every zone. */
    static const char *const outside[] = {
        "example.com.",        "www.z0001.example.",    "test2.", ".",
        "z0001.test.example.", "a.b.c.d.e.f.g.h.i.j.k."};
    for (size_t i = 0; i < sizeof(outside) / sizeof(outside[0]); i++) {
        r = ask_set(set, outside[i], ZJ_T_A);
        assert_int_equal(r.rcode, ZJ_RCODE_REFUSED);
    }

    zj_imgset_close(set); /* borrowed: the images stay open */
    for (unsigned i = 0; i <= N_CHILD; i++) {
        assert_int_equal(images[i]->n_zones, 1);
        zj_image_close(images[i]);
    }
}

/* Every edit drops the directory (it may point into the image the edit released), a set
 * without one refuses everything, and zj_imgset_index makes the new images findable. */
static void test_imgset_edit_drops_directory_until_indexed(void **state)
{
    (void)state;
    char a[128], b[128], c[128];
    zj_imgset_t *old = open_two(a, b);
    zj_imgset_t *set = NULL;
    assert_non_null(old->dir.slots);
    assert_int_equal(ask_set(old, "www.a.test.", ZJ_T_A).rcode, ZJ_RCODE_NOERROR);
    assert_int_equal(ask_set(old, "www.c.test.", ZJ_T_A).rcode, ZJ_RCODE_REFUSED);

    strcpy(c, make_image("c.img", "c.test.", 5));
    assert_int_equal(zj_imgset_clone(old, &set), ZJ_OK);
    assert_null(set->dir.slots);
    assert_int_equal(zj_imgset_index(set), ZJ_OK);
    assert_int_equal(zj_imgset_add(set, ZJ_IMGSRC_IMAGE, c, NULL), ZJ_OK);
    assert_null(set->dir.slots);
    assert_int_equal(ask_set(set, "www.a.test.", ZJ_T_A).rcode, ZJ_RCODE_REFUSED);
    assert_int_equal(zj_imgset_index(set), ZJ_OK);
    reply_t r = ask_set(set, "www.c.test.", ZJ_T_A);
    assert_int_equal(r.rcode, ZJ_RCODE_NOERROR);
    assert_int_equal(r.an_rdata[3], 5);

    make_image("a.img", "a.test.", 9);
    assert_int_equal(zj_imgset_refresh(set, 0, true, NULL, NULL), ZJ_OK);
    assert_null(set->dir.slots);
    assert_int_equal(zj_imgset_index(set), ZJ_OK);
    assert_int_equal(ask_set(set, "www.a.test.", ZJ_T_A).an_rdata[3], 9);
    assert_int_equal(ask_set(old, "www.a.test.", ZJ_T_A).an_rdata[3], 1);

    zj_imgset_remove(set, 1);
    assert_null(set->dir.slots);
    assert_int_equal(zj_imgset_index(set), ZJ_OK);
    assert_int_equal(ask_set(set, "www.b.test.", ZJ_T_A).rcode, ZJ_RCODE_REFUSED);
    assert_int_equal(ask_set(set, "www.c.test.", ZJ_T_A).rcode, ZJ_RCODE_NOERROR);
    zj_imgset_close(set);
    zj_imgset_close(old);
}

static void test_imgset_abspath_tidies_without_resolving(void **state)
{
    (void)state;
    char out[256];
    assert_int_equal(zj_imgset_abspath("/a//b/./c.img", out, sizeof(out)), ZJ_OK);
    assert_string_equal(out, "/a/b/c.img");
    assert_int_equal(zj_imgset_abspath("/a/../b/", out, sizeof(out)), ZJ_OK);
    assert_string_equal(out, "/a/../b");
    assert_int_equal(zj_imgset_abspath("/", out, sizeof(out)), ZJ_OK);
    assert_string_equal(out, "/");
    char cwd[200];
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    assert_int_equal(zj_imgset_abspath("./x.img", out, sizeof(out)), ZJ_OK);
    assert_true(strncmp(out, cwd, strlen(cwd)) == 0);
    assert_string_equal(out + strlen(cwd), strcmp(cwd, "/") == 0 ? "x.img" : "/x.img");
    assert_int_equal(zj_imgset_abspath("/abc", out, 4), ZJ_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_imgset_refresh_replaces_only_the_changed_image),
        cmocka_unit_test(test_imgset_failed_refresh_changes_nothing),
        cmocka_unit_test(test_imgset_add_remove_find_and_duplicates),
        cmocka_unit_test(test_imgset_zone_directory_is_restamped_per_file),
        cmocka_unit_test(test_imgset_policy_file_beside_a_zone_file_is_stamped),
        cmocka_unit_test(test_imgset_clone_keeps_health_and_geo),
        cmocka_unit_test(test_imgset_images_attach_to_health_and_keep_states_across_refresh),
        cmocka_unit_test(test_imgset_directory_finds_deepest_zone_among_many_images),
        cmocka_unit_test(test_imgset_edit_drops_directory_until_indexed),
        cmocka_unit_test(test_imgset_abspath_tidies_without_resolving),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
