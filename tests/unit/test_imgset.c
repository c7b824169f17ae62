/* zone/imgset: sets share images by reference; refresh, add and remove touch only their own
 * source; a failed refresh changes nothing; duplicate apexes are refused; path helpers. Run
 * under ASan, a use of an image after its last set closed would be caught here. */
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

#include "zonejet/err.h"
#include "zonejet/zone.h"
#include "compile/emit.h"
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
        cmocka_unit_test(test_imgset_abspath_tidies_without_resolving),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
