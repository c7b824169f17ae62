/* Master-file parser (RFC 1035 §5): directives, $INCLUDE (relative paths, origin, loops, depth,
 * missing files), owner/TTL/class forms, parentheses, comments, escapes, TTL and origin
 * defaulting, and every error with its "file:line: reason" message and recovery. Rdata formats
 * per type are in test_rdata.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "zonejet/dname.h"
#include "zonejet/err.h"
#include "zonejet/wire.h"
#include "compile/parse.h"

#define DATA ZJ_TEST_DATA "/parse/"
#define MAX_RECS 64

static const uint8_t origin_com[] = "\007example\003com";

typedef struct rec {
    char owner[1024];
    uint16_t type;
    uint32_t ttl;
    char rdata[512];
    char file[256];
    unsigned line;
} rec_t;

typedef struct run {
    rec_t recs[MAX_RECS];
    unsigned n;
    int stop_after; /* callback returns ZJ_ELIMIT after this many records; 0 = never */
    int rc;
    zj_parse_result_t res;
    char *diag;
    size_t diag_len;
    char origin[1024];
} run_t;

static int collect(void *ctx, const zj_rr_t *rr)
{
    run_t *r = ctx;
    if (r->n < MAX_RECS) {
        rec_t *x = &r->recs[r->n];
        zj_dname_to_text(rr->owner, x->owner, sizeof(x->owner));
        x->type = rr->type;
        x->ttl = rr->ttl;
        if (zj_rdata_to_text(rr->type, rr->rdata, rr->rdlen, x->rdata, sizeof(x->rdata)) < 0) {
            snprintf(x->rdata, sizeof(x->rdata), "<bad>");
        }
        const char *slash = strrchr(rr->file, '/');
        snprintf(x->file, sizeof(x->file), "%s", slash != NULL ? slash + 1 : rr->file);
        x->line = rr->line;
    }
    r->n++;
    if (r->stop_after > 0 && r->n == (unsigned)r->stop_after) {
        return ZJ_ELIMIT;
    }
    return 0;
}

static void finish(run_t *r)
{
    if (r->res.origin_len > 0) {
        zj_dname_to_text(r->res.origin, r->origin, sizeof(r->origin));
    }
}

static run_t *run_text(const char *text, const zj_parse_opts_t *base)
{
    run_t *r = calloc(1, sizeof(*r));
    zj_parse_opts_t opts = base != NULL ? *base : (zj_parse_opts_t){0};
    FILE *f = open_memstream(&r->diag, &r->diag_len);
    opts.diag = f;
    r->rc = zj_parse_text("t", text, strlen(text), &opts, collect, r, &r->res);
    fclose(f);
    finish(r);
    return r;
}

static run_t *run_file(const char *path, const zj_parse_opts_t *base, int stop_after)
{
    run_t *r = calloc(1, sizeof(*r));
    zj_parse_opts_t opts = base != NULL ? *base : (zj_parse_opts_t){0};
    FILE *f = open_memstream(&r->diag, &r->diag_len);
    opts.diag = f;
    r->stop_after = stop_after;
    r->rc = zj_parse_file(path, &opts, collect, r, &r->res);
    fclose(f);
    finish(r);
    return r;
}

static void run_free(run_t *r)
{
    free(r->diag);
    free(r);
}

static void expect_rec(const run_t *r, unsigned i, const char *owner, uint16_t type, uint32_t ttl,
                       const char *rdata)
{
    assert_true(i < r->n);
    assert_string_equal(r->recs[i].owner, owner);
    assert_int_equal(r->recs[i].type, type);
    assert_int_equal(r->recs[i].ttl, ttl);
    assert_string_equal(r->recs[i].rdata, rdata);
}

static void test_parse_directives_and_nested_include(void **state)
{
    (void)state;
    run_t *r = run_file(DATA "main.zone", NULL, 0);
    assert_string_equal(r->diag != NULL ? r->diag : "", "");
    assert_int_equal(r->rc, 0);
    assert_int_equal(r->n, 8);
    assert_int_equal(r->res.n_records, 8);
    assert_string_equal(r->origin, "example.com.");
    expect_rec(r, 0, "example.com.", ZJ_T_SOA, 300,
               "ns1.example.com. hostmaster.example.com. 2024010101 3600 900 604800 60");
    assert_int_equal(r->recs[0].line, 4);
    expect_rec(r, 1, "example.com.", ZJ_T_NS, 300, "ns1.example.com.");
    assert_int_equal(r->recs[1].line, 7);
    expect_rec(r, 2, "ns1.example.com.", ZJ_T_A, 300, "192.0.2.1");
    /* Included with origin sub.example.com. */
    expect_rec(r, 3, "www.sub.example.com.", ZJ_T_A, 300, "192.0.2.2");
    assert_string_equal(r->recs[3].file, "child.zone");
    assert_int_equal(r->recs[3].line, 2);
    expect_rec(r, 4, "www.sub.example.com.", ZJ_T_AAAA, 300, "2001:db8::2");
    expect_rec(r, 5, "sub.example.com.", ZJ_T_TXT, 300, "\"in child\"");
    /* Nested include, path relative to sub/ */
    expect_rec(r, 6, "deep.sub.example.com.", ZJ_T_A, 300, "192.0.2.3");
    assert_string_equal(r->recs[6].file, "grandchild.zone");
    /* Origin reverts after the include (RFC 1035 §5.1). */
    expect_rec(r, 7, "after.example.com.", ZJ_T_A, 300, "192.0.2.9");
    assert_string_equal(r->recs[7].file, "main.zone");
    assert_int_equal(r->recs[7].line, 10);
    run_free(r);
}

static void test_parse_include_loop_is_reported(void **state)
{
    (void)state;
    run_t *r = run_file(DATA "loop_a.zone", NULL, 0);
    assert_int_equal(r->rc, ZJ_EZONE);
    assert_int_equal(r->res.n_errors, 1);
    assert_int_equal(r->n, 2);
    assert_non_null(strstr(r->diag, "loop_b.zone:2: $INCLUDE loop: '"));
    assert_non_null(strstr(r->diag, "loop_a.zone' is already being read"));
    run_free(r);
}

static void test_parse_include_missing_file_recovers(void **state)
{
    (void)state;
    run_t *r = run_file(DATA "missing_include.zone", NULL, 0);
    assert_int_equal(r->rc, ZJ_EZONE);
    assert_int_equal(r->res.n_errors, 1);
    assert_non_null(strstr(r->diag, "missing_include.zone:3: $INCLUDE: cannot open '"));
    assert_non_null(strstr(r->diag, "does-not-exist.zone': No such file or directory"));
    assert_int_equal(r->n, 2); /* b after the bad $INCLUDE is still read */
    run_free(r);
}

/* P8: the depth limit (16 open files) at the limit and one past it. */
static void write_chain(const char *dir, int n_files)
{
    char path[512];
    for (int i = 0; i < n_files; i++) {
        snprintf(path, sizeof(path), "%s/f%d.zone", dir, i);
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        fprintf(f, "r%d A 192.0.2.1\n", i);
        if (i + 1 < n_files) {
            fprintf(f, "$INCLUDE f%d.zone\n", i + 1);
        }
        fclose(f);
    }
}

static void test_parse_include_depth_limit(void **state)
{
    char dir[] = "/tmp/zj_parse_XXXXXX";
    char path[512];
    zj_parse_opts_t o = {.origin = origin_com};
    (void)state;
    assert_non_null(mkdtemp(dir));
    write_chain(dir, 16);
    snprintf(path, sizeof(path), "%s/f0.zone", dir);
    run_t *r = run_file(path, &o, 0);
    assert_int_equal(r->rc, 0);
    assert_int_equal(r->n, 16);
    run_free(r);
    write_chain(dir, 17);
    r = run_file(path, &o, 0);
    assert_int_equal(r->rc, ZJ_EZONE);
    assert_int_equal(r->n, 16);
    assert_non_null(strstr(r->diag, "f15.zone:2: $INCLUDE '"));
    assert_non_null(strstr(r->diag, "files nested more than 16 deep"));
    run_free(r);
    for (int i = 0; i < 17; i++) {
        snprintf(path, sizeof(path), "%s/f%d.zone", dir, i);
        unlink(path);
    }
    rmdir(dir);
}

static void test_parse_file_limits_and_missing_file(void **state)
{
    zj_parse_opts_t o = {.max_file_bytes = 100};
    (void)state;
    run_t *r = run_file(DATA "main.zone", &o, 0);
    assert_int_equal(r->rc, ZJ_EZONE);
    assert_int_equal(r->n, 0);
    assert_non_null(strstr(r->diag, "main.zone: '"));
    assert_non_null(strstr(r->diag, "bytes, over the limit of 100 bytes"));
    run_free(r);
    /* The limit applies to each $INCLUDEd file too (child.zone is over 120 bytes). */
    o.max_file_bytes = 120;
    o.origin = origin_com;
    r = run_text("a A 192.0.2.1\n$INCLUDE " DATA "sub/child.zone\n", &o);
    assert_int_equal(r->rc, ZJ_EZONE);
    assert_int_equal(r->n, 1);
    assert_non_null(strstr(r->diag, "t:2: $INCLUDE: '"));
    assert_non_null(strstr(r->diag, "child.zone' is 148 bytes, over the limit of 120 bytes"));
    run_free(r);
    o.origin = NULL;
    r = run_file(DATA "no-such.zone", NULL, 0);
    assert_int_equal(r->rc, ZJ_EZONE);
    assert_int_equal(r->res.n_errors, 1);
    assert_non_null(strstr(r->diag, "no-such.zone: cannot open '"));
    run_free(r);
    o.max_file_bytes = 5;
    r = run_text("a A 192.0.2.1\n", &o);
    assert_int_equal(r->rc, ZJ_EZONE);
    assert_string_equal(r->diag, "t: 14 bytes, over the limit of 5 bytes\n");
    run_free(r);
}

static void test_parse_owner_ttl_class_forms(void **state)
{
    zj_parse_opts_t o = {.origin = origin_com};
    (void)state;
    run_t *r = run_text("$TTL 1H30M\n"
                        "a 60 IN A 192.0.2.1 ; TTL then class\n"
                        "b in 2m A 192.0.2.2 ; class then TTL, units\n"
                        "c CLASS1 A 192.0.2.3\n"
                        "\tA 192.0.2.4\n"
                        "d.example.com. TXT \"x;y\" (  \"z\" ; comment inside\n"
                        "\n"
                        "   w )\n"
                        "e\\.dot A 192.0.2.5\n"
                        "\\070\\111o A 192.0.2.6\n"
                        "@ MX 10 @\n"
                        "g TYPE1 \\# 4 C0000207\n"
                        "h type65534 \\# 0\n"
                        "i 1w2d3h4m5s aaaa ::1\n"
                        "j.example.net. 0 A 192.0.2.8\n"
                        "(k A\n 192.0.2.9)\n",
                        &o);
    assert_string_equal(r->diag != NULL ? r->diag : "", "");
    assert_int_equal(r->rc, 0);
    assert_int_equal(r->n, 13);
    expect_rec(r, 0, "a.example.com.", ZJ_T_A, 60, "192.0.2.1");
    expect_rec(r, 1, "b.example.com.", ZJ_T_A, 120, "192.0.2.2");
    expect_rec(r, 2, "c.example.com.", ZJ_T_A, 5400, "192.0.2.3");
    expect_rec(r, 3, "c.example.com.", ZJ_T_A, 5400, "192.0.2.4");
    assert_int_equal(r->recs[3].line, 5);
    expect_rec(r, 4, "d.example.com.", ZJ_T_TXT, 5400, "\"x;y\" \"z\" \"w\"");
    assert_int_equal(r->recs[4].line, 6);
    expect_rec(r, 5, "e\\.dot.example.com.", ZJ_T_A, 5400, "192.0.2.5");
    assert_int_equal(r->recs[5].line, 9);
    expect_rec(r, 6, "Foo.example.com.", ZJ_T_A, 5400, "192.0.2.6");
    expect_rec(r, 7, "example.com.", ZJ_T_MX, 5400, "10 example.com.");
    expect_rec(r, 8, "g.example.com.", ZJ_T_A, 5400, "192.0.2.7");
    expect_rec(r, 9, "h.example.com.", 65534, 5400, "\\# 0");
    expect_rec(r, 10, "i.example.com.", ZJ_T_AAAA, 788645, "::1");
    expect_rec(r, 11, "j.example.net.", ZJ_T_A, 0, "192.0.2.8");
    expect_rec(r, 12, "k.example.com.", ZJ_T_A, 5400, "192.0.2.9");
    assert_int_equal(r->recs[12].line, 16);
    run_free(r);
}

static void test_parse_ttl_defaulting(void **state)
{
    zj_parse_opts_t o = {.origin = origin_com, .default_ttl = 777};
    (void)state;
    /* No $TTL: before the SOA the configured default; the SOA MINIMUM with one warning; then
     * the last explicit TTL (RFC 1035 §5.1); then $TTL wins over it. */
    run_t *r = run_text("pre A 192.0.2.1\n"
                        "@ SOA ns h 1 2 3 4 42\n"
                        "a A 192.0.2.2\n"
                        "b 100 A 192.0.2.3\n"
                        "c A 192.0.2.4\n"
                        "$TTL 200\n"
                        "d A 192.0.2.5\n"
                        "e 50 A 192.0.2.6\n"
                        "f A 192.0.2.7\n",
                        &o);
    assert_int_equal(r->rc, 0);
    assert_int_equal(r->n, 8);
    static const uint32_t want[8] = {777, 42, 42, 100, 100, 200, 50, 200};
    for (unsigned i = 0; i < 8; i++) {
        assert_int_equal(r->recs[i].ttl, want[i]);
    }
    assert_int_equal(r->res.n_warnings, 1);
    assert_string_equal(r->diag, "t:2: warning: no TTL and no $TTL; using the SOA MINIMUM (42)\n");
    run_free(r);
    /* quiet: counted, not printed; default_ttl 0 means 3600. */
    o.quiet = true;
    o.default_ttl = 0;
    r = run_text("pre A 192.0.2.1\n@ SOA ns h 1 2 3 4 42\na A 192.0.2.2\n", &o);
    assert_int_equal(r->recs[0].ttl, 3600);
    assert_int_equal(r->res.n_warnings, 1);
    assert_true(r->diag == NULL || r->diag[0] == '\0');
    run_free(r);
}

static void test_parse_origin_rules(void **state)
{
    zj_parse_opts_t o = {.origin = origin_com};
    (void)state;
    /* opts->origin wins over $ORIGIN for the result; $ORIGIN still applies to names. */
    run_t *r = run_text("$ORIGIN sub.example.com.\na A 192.0.2.1\n", &o);
    assert_string_equal(r->origin, "example.com.");
    expect_rec(r, 0, "a.sub.example.com.", ZJ_T_A, 3600, "192.0.2.1");
    run_free(r);
    /* The first $ORIGIN; a relative $ORIGIN is relative to the current one. */
    r = run_text("$ORIGIN example.org.\n$ORIGIN sub\na A 192.0.2.1\n", NULL);
    assert_string_equal(r->origin, "example.org.");
    expect_rec(r, 0, "a.sub.example.org.", ZJ_T_A, 3600, "192.0.2.1");
    run_free(r);
    /* The owner of the first SOA, which also completes that SOA's own rdata names. */
    r = run_text("example.net. 300 SOA ns h 1 2 3 4 5\nwww A 192.0.2.1\n", NULL);
    assert_int_equal(r->rc, 0);
    assert_string_equal(r->origin, "example.net.");
    expect_rec(r, 0, "example.net.", ZJ_T_SOA, 300, "ns.example.net. h.example.net. 1 2 3 4 5");
    expect_rec(r, 1, "www.example.net.", ZJ_T_A, 300, "192.0.2.1");
    run_free(r);
    /* No origin at all. */
    r = run_text("www A 192.0.2.1\n@ A 192.0.2.1\nx. MX 1 y\n", NULL);
    assert_int_equal(r->rc, ZJ_EZONE);
    assert_int_equal(r->res.origin_len, 0);
    assert_string_equal(r->diag, "t:1: bad owner name 'www': relative name without origin\n"
                                 "t:2: bad owner name '@': relative name without origin\n"
                                 "t:3: MX exchange: relative name without origin in 'y'\n");
    run_free(r);
}

typedef struct errcase {
    const char *text;
    const char *diag; /* the whole diagnostic output */
    unsigned n_records;
} errcase_t;

static const errcase_t errcases[] = {
    {"a A 192.0.2.1 (\nb A 192.0.2.2\n", "t:1: unbalanced parentheses: '(' is never closed\n", 0},
    {"a A 192.0.2.1 )\nb A 192.0.2.2\n", "t:1: ')' without '('\n", 1},
    {"a ( A ( 192.0.2.1 ) )\nb A 192.0.2.2\n", "t:1: nested parentheses\nt:1: ')' without '('\n",
     1},
    {"a TXT \"abc\nb A 192.0.2.2\n", "t:1: unterminated quoted string\n", 1},
    {"a FOO 1\nb A 192.0.2.2\n", "t:1: unknown type 'FOO'\n", 1},
    {"a\n", "t:1: missing type\n", 0},
    {"a 300 IN\n", "t:1: missing type\n", 0},
    {"a MX x mail\n", "t:1: MX preference: 'x' is not a number in 0..65535\n", 0},
    {"a 1x A 192.0.2.1\n", "t:1: bad TTL '1x' (seconds up to 2147483647, or units like 1h30m)\n",
     0},
    {"a 2147483648 A 192.0.2.1\n",
     "t:1: bad TTL '2147483648' (seconds up to 2147483647, or units like 1h30m)\n", 0},
    {"a 1 2 A 192.0.2.1\n", "t:1: TTL given twice\n", 0},
    {"a IN IN A 192.0.2.1\n", "t:1: class given twice\n", 0},
    {"$TTL 1h30\n", "t:1: bad TTL '1h30' (seconds up to 2147483647, or units like 1h30m)\n", 0},
    {"$TTL\n", "t:1: $TTL takes exactly one TTL\n", 0},
    {"$ORIGIN a b\n", "t:1: $ORIGIN takes exactly one domain name\n", 0},
    {"$INCLUDE\n", "t:1: $INCLUDE takes a file name and an optional origin\n", 0},
    {"$GENERATE 1-2 a$ A 192.0.2.1\n", "t:1: $GENERATE is not supported\n", 0},
    {"$FOO\n", "t:1: unknown directive '$FOO'\n", 0},
    {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa A 192.0.2.1\n",
     "t:1: bad owner name 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa': label "
     "longer than 63 bytes\n",
     0},
    {"a\\25x A 192.0.2.1\n", "t:1: bad owner name 'a\\25x': bad escape\n", 0},
    {"a\\256 A 192.0.2.1\n", "t:1: bad owner name 'a\\256': bad escape\n", 0},
    {"a CH A 192.0.2.1\n", "t:1: only class IN is supported (not 'CH')\n", 0},
    {"a 300 CLASS3 A 192.0.2.1\n", "t:1: only class IN is supported (not 'CLASS3')\n", 0},
    {" A 192.0.2.1\n", "t:1: no owner name, and no previous record to take it from\n", 0},
    {"a OPT \\# 0\n", "t:1: type 'OPT' cannot appear in a zone\n", 0},
    {"a A 1\n\nb A 2\nc A 192.0.2.3\n",
     "t:1: A address: '1' is not an IPv4 address\nt:3: A address: '2' is not an IPv4 "
     "address\n",
     1},
    /* A record whose owner failed takes its inheritors with it, without more errors. */
    {"a..b A 192.0.2.1\n A 192.0.2.2\nc A 192.0.2.3\n", "t:1: bad owner name 'a..b': empty label\n",
     1},
};

static void test_parse_errors_have_file_line_and_reason(void **state)
{
    zj_parse_opts_t o = {.origin = origin_com};
    (void)state;
    for (size_t i = 0; i < sizeof(errcases) / sizeof(errcases[0]); i++) {
        const errcase_t *e = &errcases[i];
        run_t *r = run_text(e->text, &o);
        const char *got = r->diag != NULL ? r->diag : "";
        if (r->rc != ZJ_EZONE || strcmp(got, e->diag) != 0 || r->n != e->n_records) {
            fail_msg("case %zu: rc %d, %u records, diag '%s', want '%s'", i, r->rc, r->n, got,
                     e->diag);
        }
        run_free(r);
    }
}

static void test_parse_name_over_255_bytes(void **state)
{
    char text[1024];
    const char *l60 = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    zj_parse_opts_t o = {.origin = origin_com};
    (void)state;
    /* 4 x 61 + 10 (l62.) + 1 = 255 bytes: the longest name, accepted. */
    snprintf(text, sizeof(text), "%s.%s.%s.%s.aaaaaaaaa. A 192.0.2.1\n", l60, l60, l60, l60);
    run_t *r = run_text(text, &o);
    assert_int_equal(r->rc, 0);
    run_free(r);
    snprintf(text, sizeof(text), "%s.%s.%s.%s.aaaaaaaaaa. A 192.0.2.1\n", l60, l60, l60, l60);
    r = run_text(text, &o);
    assert_int_equal(r->rc, ZJ_EZONE);
    assert_non_null(strstr(r->diag, "': name longer than 255 bytes\n"));
    run_free(r);
    /* Relative: the origin's bytes count too. */
    snprintf(text, sizeof(text), "%s.%s.%s.%s A 192.0.2.1\n", l60, l60, l60, l60);
    r = run_text(text, &o);
    assert_int_equal(r->rc, ZJ_EZONE);
    assert_non_null(strstr(r->diag, "': name longer than 255 bytes\n"));
    run_free(r);
}

static void test_parse_stops_at_max_errors(void **state)
{
    char text[4096] = "";
    zj_parse_opts_t o = {.origin = origin_com, .max_errors = 5};
    (void)state;
    for (int i = 0; i < 30; i++) {
        strcat(text, "a A bad\n");
    }
    run_t *r = run_text(text, &o);
    assert_int_equal(r->rc, ZJ_EZONE);
    assert_int_equal(r->res.n_errors, 5);
    assert_non_null(strstr(r->diag, "t:5: too many errors (5), giving up\n"));
    run_free(r);
    o.max_errors = 0; /* default 20 */
    r = run_text(text, &o);
    assert_int_equal(r->res.n_errors, 20);
    run_free(r);
}

static void test_parse_callback_can_stop(void **state)
{
    (void)state;
    run_t *r = run_file(DATA "main.zone", NULL, 2);
    assert_int_equal(r->rc, ZJ_ELIMIT);
    assert_int_equal(r->n, 2);
    run_free(r);
}

static void test_parse_generic_class_and_crlf(void **state)
{
    zj_parse_opts_t o = {.origin = origin_com};
    (void)state;
    run_t *r = run_text("a CLASS1 TYPE1 \\# 4 c0000201\r\nb A 192.0.2.2\r\n", &o);
    assert_int_equal(r->rc, 0);
    assert_int_equal(r->n, 2);
    expect_rec(r, 0, "a.example.com.", ZJ_T_A, 3600, "192.0.2.1");
    expect_rec(r, 1, "b.example.com.", ZJ_T_A, 3600, "192.0.2.2");
    run_free(r);
}

/* Text that ends anywhere (no final newline, inside a quote, an escape or parentheses) and
 * NUL bytes must not read past the end (ASan checks; the copy is exactly len bytes). */
static void test_parse_any_truncation_is_safe(void **state)
{
    static const char text[] = "$ORIGIN example.com.\n$TTL 1h\n@ SOA ns h ( 1 2 3 4 5 )\n"
                               "a TXT \"x\\\"y\" \\0\n"
                               "b HTTPS 1 . alpn=\"h2,h3\" ipv6hint=::1\n"
                               "c\\\\ LOC 52 22 23.000 N 4 53 32.000 E -2m 1m\n"
                               "d TYPE9 \\# 2 abcd\n\0e A 192.0.2.1\n";
    zj_parse_opts_t o = {.max_errors = 1000, .diag = NULL, .quiet = true};
    FILE *devnull = fopen("/dev/null", "w");
    (void)state;
    o.diag = devnull;
    for (size_t len = 0; len <= sizeof(text) - 1; len++) {
        char *copy = malloc(len > 0 ? len : 1);
        memcpy(copy, text, len);
        zj_parse_result_t res;
        int rc = zj_parse_text("t", copy, len, &o, NULL, NULL, &res);
        assert_true(rc == 0 || rc == ZJ_EZONE);
        free(copy);
    }
    fclose(devnull);
}

static void test_parse_diag_format(void **state)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    zj_parse_opts_t o = {.diag = f};
    (void)state;
    zj_diag(&o, "z.zone", 12, false, "CNAME and other data at %s", "www");
    zj_diag(&o, "z.zone", 13, true, "TTL %d differs", 5);
    o.quiet = true;
    zj_diag(&o, "z.zone", 14, true, "hidden");
    zj_diag(&o, "z.zone", 0, false, "no line");
    fclose(f);
    assert_string_equal(buf, "z.zone:12: CNAME and other data at www\n"
                             "z.zone:13: warning: TTL 5 differs\n"
                             "z.zone: no line\n");
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_directives_and_nested_include),
        cmocka_unit_test(test_parse_include_loop_is_reported),
        cmocka_unit_test(test_parse_include_missing_file_recovers),
        cmocka_unit_test(test_parse_include_depth_limit),
        cmocka_unit_test(test_parse_file_limits_and_missing_file),
        cmocka_unit_test(test_parse_owner_ttl_class_forms),
        cmocka_unit_test(test_parse_ttl_defaulting),
        cmocka_unit_test(test_parse_origin_rules),
        cmocka_unit_test(test_parse_errors_have_file_line_and_reason),
        cmocka_unit_test(test_parse_name_over_255_bytes),
        cmocka_unit_test(test_parse_stops_at_max_errors),
        cmocka_unit_test(test_parse_callback_can_stop),
        cmocka_unit_test(test_parse_generic_class_and_crlf),
        cmocka_unit_test(test_parse_any_truncation_is_safe),
        cmocka_unit_test(test_parse_diag_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
