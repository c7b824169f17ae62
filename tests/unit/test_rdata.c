/* Rdata text <-> wire for every type with a presentation format: each case is parsed from text
 * and checked against wire bytes and canonical text produced by dnspython 2.3 (an independent
 * implementation; regenerate with rdata.from_text(...).to_wire().hex() / .to_text()), then the
 * printed text is parsed again and must give the same wire. Also: per-field error messages,
 * type mnemonics, and to_text on malformed wire. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "zonejet/err.h"
#include "zonejet/wire.h"
#include "compile/parse.h"

/* example.com. */
static const uint8_t origin[] = "\007example\003com";

typedef struct rdcase {
    const char *type;
    const char *text;
    const char *wire_hex;
    const char *canon;
} rdcase_t;

static const rdcase_t cases[] = {
    {"A", "192.0.2.1", "c0000201", "192.0.2.1"},
    {"AAAA", "2001:db8::1", "20010db8000000000000000000000001", "2001:db8::1"},
    {"AAAA", "::ffff:192.0.2.1", "00000000000000000000ffffc0000201", "::ffff:192.0.2.1"},
    {"AAAA", "2001:db8:0:1:0:0:0:1", "20010db8000000010000000000000001", "2001:db8:0:1::1"},
    {"AAAA", "::", "00000000000000000000000000000000", "::"},
    {"NS", "ns1", "036e7331076578616d706c6503636f6d00", "ns1.example.com."},
    {"CNAME", "www.example.net.", "03777777076578616d706c65036e657400", "www.example.net."},
    {"DNAME", "example.org.", "076578616d706c65036f726700", "example.org."},
    {"SOA", "ns1 hostmaster 2024010101 1h 15m 1w 300",
     "036e7331076578616d706c6503636f6d000a686f73746d6173746572076578616d706c6503636f6d0078a3f175000"
     "00e100000038400093a800000012c",
     "ns1.example.com. hostmaster.example.com. 2024010101 3600 900 604800 300"},
    {"MX", "10 mail", "000a046d61696c076578616d706c6503636f6d00", "10 mail.example.com."},
    {"TXT", "\"hello world\" unquoted \"q\\\"uote\\\\ \\010 end\"",
     "0b68656c6c6f20776f726c6408756e71756f7465640d7122756f74655c200a20656e64",
     "\"hello world\" \"unquoted\" \"q\\\"uote\\\\ \\010 end\""},
    {"TXT", "\"\"", "00", "\"\""},
    {"SPF", "\"v=spf1 -all\"", "0b763d73706631202d616c6c", "\"v=spf1 -all\""},
    {"PTR", "host.example.net.", "04686f7374076578616d706c65036e657400", "host.example.net."},
    {"HINFO", "\"PC-Intel\" \"Linux\"", "0850432d496e74656c054c696e7578", "\"PC-Intel\" \"Linux\""},
    {"SRV", "10 60 5060 sip", "000a003c13c403736970076578616d706c6503636f6d00",
     "10 60 5060 sip.example.com."},
    {"NAPTR", "100 10 \"U\" \"E2U+sip\" \"!^.*$!sip:info@example.com!\" .",
     "0064000a0155074532552b7369701b215e2e2a24217369703a696e666f406578616d706c652e636f6d2100",
     "100 10 \"U\" \"E2U+sip\" \"!^.*$!sip:info@example.com!\" ."},
    {"CAA", "0 issue \"letsencrypt.org\"", "000569737375656c657473656e63727970742e6f7267",
     "0 issue \"letsencrypt.org\""},
    {"CAA", "128 tbs \"Unknown \\\"x\\\"\"", "8003746273556e6b6e6f776e20227822",
     "128 tbs \"Unknown \\\"x\\\"\""},
    {"SSHFP", "1 1 dd465c09cfa51fb45020cc83316fff21 b8c31b6c",
     "0101dd465c09cfa51fb45020cc83316fff21b8c31b6c",
     "1 1 dd465c09cfa51fb45020cc83316fff21b8c31b6c"},
    {"TLSA", "3 1 1 0c72ac70b745ac19998811b131d662c9 ac69dbdbe7cb23e5b514b56664c5d3d6",
     "0301010c72ac70b745ac19998811b131d662c9ac69dbdbe7cb23e5b514b56664c5d3d6",
     "3 1 1 0c72ac70b745ac19998811b131d662c9ac69dbdbe7cb23e5b514b56664c5d3d6"},
    {"SMIMEA", "3 1 1 0c72ac70b745ac19998811b131d662c9ac69dbdbe7cb23e5b514b56664c5d3d6",
     "0301010c72ac70b745ac19998811b131d662c9ac69dbdbe7cb23e5b514b56664c5d3d6",
     "3 1 1 0c72ac70b745ac19998811b131d662c9ac69dbdbe7cb23e5b514b56664c5d3d6"},
    {"OPENPGPKEY", "AQID BAUG", "010203040506", "AQIDBAUG"},
    {"URI", "10 1 \"ftp://ftp1.example.com/public\"",
     "000a00016674703a2f2f667470312e6578616d706c652e636f6d2f7075626c6963",
     "10 1 \"ftp://ftp1.example.com/public\""},
    {"LOC", "52 22 23.000 N 4 53 32.000 E -2.00m 0.00m 10000m 10m",
     "000016138b3cf018810cbce0009895b8",
     "52 22 23.000 N 4 53 32.000 E -2.00m 0.00m 10000.00m 10.00m"},
    {"LOC", "42 21 54 N 71 06 18 W -24m 30m", "0033161389172dd070be15f000988d20",
     "42 21 54.000 N 71 6 18.000 W -24.00m 30.00m 10000.00m 10.00m"},
    {"LOC", "1 S 2 W 3", "001216137fc911807f922300009897ac", "1 0 0.000 S 2 0 0.000 W 3.00m"},
    {"LOC", "90 0 0 N 180 0 0 E 42849672.95m 90000000m 90000000m 90000000m",
     "00999999934fd900a69fb200ffffffff",
     "90 0 0.000 N 180 0 0.000 E 42849672.95m 90000000.00m 90000000.00m 90000000.00m"},
    {"DS", "60485 5 1 2BB183AF5F22588179A53B0A98631FAD1A292118",
     "ec4505012bb183af5f22588179a53b0a98631fad1a292118",
     "60485 5 1 2bb183af5f22588179a53b0a98631fad1a292118"},
    {"CDS", "60485 8 2 2BB183AF2BB183AF2BB183AF2BB183AF 98631FAD98631FAD98631FAD98631FAD",
     "ec4508022bb183af2bb183af2bb183af2bb183af98631fad98631fad98631fad98631fad",
     "60485 8 2 2bb183af2bb183af2bb183af2bb183af98631fad98631fad98631fad98631fad"},
    {"DNSKEY",
     "256 3 8 AwEAAbOFAxl+Lkt0UMglZizKEC1AxUu8zlj65KYatR5wBWMrh18TYzK/ "
     "ig6Y1t5YTWCO68bynorpNu9fqNFALX7bVl9/gybA0v0EhF+dgXmoUfRX",
     "0100030803010001b38503197e2e4b7450c825662cca102d40c54bbcce58fae4a61ab51e7005632b875f136332bf8"
     "a0e98d6de584d608eebc6f29e8ae936ef5fa8d1402d7edb565f7f8326c0d2fd04845f9d8179a851f457",
     "256 3 8 AwEAAbOFAxl+Lkt0UMglZizKEC1AxUu8 zlj65KYatR5wBWMrh18TYzK/ig6Y1t5Y "
     "TWCO68bynorpNu9fqNFALX7bVl9/gybA 0v0EhF+dgXmoUfRX"},
    {"CDNSKEY", "0 3 0 AA==", "0000030000", "0 3 0 AA=="},
    {"RRSIG",
     "A 8 3 86400 20240201000000 20240101000000 12345 example.com. "
     "AwEAAbOFAxl+Lkt0UMglZizKEC1AxUu8zlj65KYatR5wBWMrh18TYzK/ "
     "ig6Y1t5YTWCO68bynorpNu9fqNFALX7bVl9/gybA0v0EhF+dgXmoUfRX",
     "000108030001518065badf00659200803039076578616d706c6503636f6d0003010001b38503197e2e4b7450c8256"
     "62cca102d40c54bbcce58fae4a61ab51e7005632b875f136332bf8a0e98d6de584d608eebc6f29e8ae936ef5fa8d1"
     "402d7edb565f7f8326c0d2fd04845f9d8179a851f457",
     "A 8 3 86400 20240201000000 20240101000000 12345 example.com. "
     "AwEAAbOFAxl+Lkt0UMglZizKEC1AxUu8 zlj65KYatR5wBWMrh18TYzK/ig6Y1t5Y "
     "TWCO68bynorpNu9fqNFALX7bVl9/gybA 0v0EhF+dgXmoUfRX"},
    {"RRSIG", "NSEC 13 2 300 1706745600 1704067200 1 . AAAA",
     "002f0d020000012c65badf0065920080000100000000",
     "NSEC 13 2 300 20240201000000 20240101000000 1 . AAAA"},
    {"NSEC", "host.example.com. A MX RRSIG NSEC TYPE1234",
     "04686f7374076578616d706c6503636f6d000006400100000003041b0000000000000000000000000000000000000"
     "00000000000000020",
     "host.example.com. A MX RRSIG NSEC TYPE1234"},
    {"NSEC", "host.example.com.", "04686f7374076578616d706c6503636f6d00", "host.example.com."},
    {"NSEC3", "1 1 12 aabbccdd 2vptu5timamqttgl4luu9kg21e0aor3s A RRSIG",
     "0101000c04aabbccdd1417f3df17b2b2adaef615257de4d2020b80ac6c7c0006400000000002",
     "1 1 12 aabbccdd 2vptu5timamqttgl4luu9kg21e0aor3s A RRSIG"},
    {"NSEC3", "1 0 0 - 2VPTU5TIMAMQTTGL4LUU9KG21E0AOR3S",
     "01000000001417f3df17b2b2adaef615257de4d2020b80ac6c7c",
     "1 0 0 - 2vptu5timamqttgl4luu9kg21e0aor3s"},
    {"NSEC3PARAM", "1 0 10 d399eaab", "0100000a04d399eaab", "1 0 10 d399eaab"},
    {"NSEC3PARAM", "1 0 0 -", "0100000000", "1 0 0 -"},
    {"ZONEMD",
     "2018031500 1 1 FEBE3D4CE2EC2FFA4BA99D46CD69D6D29711E55217057BEE "
     "7EB1A7B641A47BA7FED2DD5B97AE499FAFA4F22C6BD647DE",
     "7848b78c0101febe3d4ce2ec2ffa4ba99d46cd69d6d29711e55217057bee7eb1a7b641a47ba7fed2dd5b97ae499fa"
     "fa4f22c6bd647de",
     "2018031500 1 1 "
     "febe3d4ce2ec2ffa4ba99d46cd69d6d29711e55217057bee7eb1a7b641a47ba7fed2dd5b97ae499fafa4f22c6bd64"
     "7de"},
    {"SVCB",
     "1 . alpn=\"h2,h3\" port=8443 ipv4hint=192.0.2.1,192.0.2.2 mandatory=port,alpn "
     "key65000=\"x\\\"y\" ech=AAAA ipv6hint=\"2001:db8::1,::1\" no-default-alpn",
     "000100000000040001000300010006026832026833000200000003000220fb00040008c0000201c00002020005000"
     "30000000006002020010db800000000000000000000000100000000000000000000000000000001fde8000378227"
     "9",
     "1 . mandatory=\"alpn,port\" alpn=\"h2,h3\" no-default-alpn port=\"8443\" "
     "ipv4hint=\"192.0.2.1,192.0.2.2\" ech=\"AAAA\" ipv6hint=\"2001:db8::1,::1\" "
     "key65000=\"x\\\"y\""},
    {"SVCB", "0 svc.example.net.", "000003737663076578616d706c65036e657400", "0 svc.example.net."},
    {"HTTPS", "1 . alpn=h2\\\\,x key667", "000100000100050468322c78029b0000",
     "1 . alpn=\"h2\\\\,x\" key667"},
    {"HTTPS", "16 foo.example.org. alpn=\"h3\" port=\"443\"",
     "001003666f6f076578616d706c65036f726700000100030268330003000201bb",
     "16 foo.example.org. alpn=\"h3\" port=\"443\""},
    {"RP", "mbox txt", "046d626f78076578616d706c6503636f6d0003747874076578616d706c6503636f6d00",
     "mbox.example.com. txt.example.com."},
    {"AFSDB", "1 host", "000104686f7374076578616d706c6503636f6d00", "1 host.example.com."},
    {"KX", "5 kx", "0005026b78076578616d706c6503636f6d00", "5 kx.example.com."},
    {"RT", "5 rt", "0005027274076578616d706c6503636f6d00", "5 rt.example.com."},
    {"CSYNC", "66 3 A NS AAAA", "000000420003000460000008", "66 3 A NS AAAA"},
    {"TYPE65534", "\\# 4 0A000001", "0a000001", "\\# 4 0a000001"},
    {"A", "\\# 4 0A000002", "0a000002", "10.0.0.2"},
    {"MX", "\\# 3 000A 00", "000a00", "10 ."},
    {"TYPE999", "\\# 0", "", "\\# 0"},
};

typedef struct capture {
    uint16_t type;
    uint8_t rdata[65535];
    size_t rdlen;
    unsigned n;
} capture_t;

static int capture_cb(void *ctx, const zj_rr_t *rr)
{
    capture_t *c = ctx;
    c->type = rr->type;
    memcpy(c->rdata, rr->rdata, rr->rdlen);
    c->rdlen = rr->rdlen;
    c->n++;
    return 0;
}

/* Parse "x.example.com. 3600 IN <type> <text>"; returns the parse result code; the diagnostic
 * (if any) goes to diag. */
static int parse_one(const char *type, const char *text, capture_t *cap, char *diag,
                     size_t cap_diag)
{
    char line[4096];
    char *buf = NULL;
    size_t blen = 0;
    FILE *f = open_memstream(&buf, &blen);
    zj_parse_opts_t opts = {.origin = origin, .diag = f};
    zj_parse_result_t res;
    snprintf(line, sizeof(line), "x.example.com. 3600 IN %s %s\n", type, text);
    memset(cap, 0, sizeof(*cap));
    int rc = zj_parse_text("t", line, strlen(line), &opts, capture_cb, cap, &res);
    fclose(f);
    snprintf(diag, cap_diag, "%s", buf != NULL ? buf : "");
    free(buf);
    return rc;
}

static void hex(const uint8_t *p, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) {
        sprintf(out + 2 * i, "%02x", p[i]);
    }
    out[2 * n] = '\0';
}

static capture_t cap1;
static capture_t cap2;

static void test_rdata_every_type_matches_reference(void **state)
{
    static char h[2 * 65535 + 1];
    static char text[200000];
    char diag[1024];
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const rdcase_t *c = &cases[i];
        int rc = parse_one(c->type, c->text, &cap1, diag, sizeof(diag));
        if (rc != 0) {
            fail_msg("%s %s: %s", c->type, c->text, diag);
        }
        assert_int_equal(cap1.n, 1);
        hex(cap1.rdata, cap1.rdlen, h);
        if (strcmp(h, c->wire_hex) != 0) {
            fail_msg("%s %s: wire %s, want %s", c->type, c->text, h, c->wire_hex);
        }
        int n = zj_rdata_to_text(cap1.type, cap1.rdata, cap1.rdlen, text, sizeof(text));
        if (n < 0 && strncmp(c->text, "\\#", 2) == 0) {
            continue; /* generic data that is not valid for its type: printed generically */
        }
        assert_true(n >= 0);
        assert_int_equal((size_t)n, strlen(text));
        if (strcmp(text, c->canon) != 0) {
            fail_msg("%s %s: text '%s', want '%s'", c->type, c->text, text, c->canon);
        }
        char tb[16];
        rc = parse_one(zj_rrtype_to_text(cap1.type, tb, sizeof(tb)), text, &cap2, diag,
                       sizeof(diag));
        if (rc != 0 || cap2.rdlen != cap1.rdlen ||
            memcmp(cap1.rdata, cap2.rdata, cap1.rdlen) != 0) {
            fail_msg("%s '%s' does not read back: %s", c->type, text, diag);
        }
    }
}

typedef struct errcase {
    const char *type;
    const char *text;
    const char *msg; /* expected substring of the diagnostic */
} errcase_t;

static const errcase_t errcases[] = {
    {"A", "192.0.2", "A address: '192.0.2' is not an IPv4 address"},
    {"A", "192.0.2.01", "is not an IPv4 address"},
    {"A", "", "A address: missing"},
    {"A", "1.2.3.4 5.6.7.8", "A: unexpected '5.6.7.8' after the last field"},
    {"AAAA", "2001:db8::g", "AAAA address: '2001:db8::g' is not an IPv6 address"},
    {"MX", "x mail", "MX preference: 'x' is not a number in 0..65535"},
    {"MX", "70000 mail", "MX preference: '70000' is not a number"},
    {"MX", "10", "MX exchange: missing"},
    {"NS", "a..b", "NS nsdname: empty label"},
    {"NS", "a\\3", "NS nsdname: bad escape"},
    {"SOA", "ns h 1 2 3 4 5x", "SOA minimum: '5x' is not a time value"},
    {"TXT", "", "TXT text: missing"},
    {"TXT",
     "\"0123456789012345678901234567890123456789012345678901234567890123456789012345678901234"
     "5678901234567890123456789012345678901234567890123456789012345678901234567890123456789"
     "01234567890123456789012345678901234567890123456789012345678901234567890123456789012345\"",
     "is longer than 255 bytes"},
    {"TXT", "\"a\\300\"", "TXT text: bad escape"},
    {"SSHFP", "1 1 abc", "odd number of hex digits"},
    {"SSHFP", "1 1 zz", "bad hex digit"},
    {"DNSKEY", "256 3 8 AAA", "base64 length is not a multiple of 4"},
    {"DNSKEY", "256 3 FOO AAAA", "DNSKEY algorithm: 'FOO' is not an algorithm"},
    {"DS", "1 8 2 0011", "DS digest: 2 bytes, but digest type 2 needs 32"},
    {"RRSIG", "A 8 2 300 2024013100000 20240101000000 1 . AAAA", "RRSIG expiration"},
    {"RRSIG", "BOGUS 8 2 300 1 2 1 . AAAA", "RRSIG type covered: unknown type 'BOGUS'"},
    {"NSEC", "a. A BOGUS", "NSEC type bitmap: unknown type 'BOGUS'"},
    {"NSEC3", "1 0 0 - 2vptu5timamqttgl4luu9kg21e0aor3z", "bad base32hex digit"},
    {"NSEC3PARAM", "1 0 0 abc", "NSEC3PARAM salt"},
    {"CAA", "0 is-sue \"x\"", "CAA tag: tag 'is-sue' is not alphanumeric"},
    {"CAA", "0 issue", "CAA value: missing"},
    {"LOC", "91 N 0 E 0", "LOC latitude"},
    {"LOC", "10 60 N 0 E 0", "LOC latitude: '60' is not minutes"},
    {"LOC", "10 X 0 E 0", "LOC latitude: 'X' is not minutes"},
    {"LOC", "10 N 0 E 0 90000001m", "LOC size"},
    {"URI", "1 2 \"\"", "URI target: empty"},
    {"SVCB", "1 . alpn=h2 alpn=h3", "duplicate SvcParamKey 'alpn'"},
    {"SVCB", "1 . mandatory=mandatory", "must not list itself"},
    {"SVCB", "1 . mandatory=port", "lists 'port', which the record does not have"},
    {"SVCB", "1 . bogus=1", "'bogus=1' is not a SvcParamKey"},
    {"SVCB", "1 . port=x", "SVCB port: 'x' is not a number"},
    {"SVCB", "1 . no-default-alpn", "no-default-alpn without alpn"},
    {"SVCB", "0 . port=1", "AliasMode"},
    {"SVCB", "1 . ipv4hint=1.2.3", "SVCB ipv4hint: bad address"},
    {"SVCB", "1 . alpn=", "SVCB alpn: value missing"},
    {"SVCB", "1 . key65535=x", "is not a SvcParamKey"},
    {"TYPE65534", "\\# 2 00", "length 2 does not match the 1 bytes of hex"},
    {"TYPE65534", "1 2 3", "no presentation format known"},
    {"WKS", "1.2.3.4 6 25", "no presentation format known"},
    {"A", "\\# x", "generic rdata length: 'x' is not a number"},
};

static void test_rdata_errors_name_type_and_field(void **state)
{
    char diag[1024];
    (void)state;
    for (size_t i = 0; i < sizeof(errcases) / sizeof(errcases[0]); i++) {
        const errcase_t *e = &errcases[i];
        int rc = parse_one(e->type, e->text, &cap1, diag, sizeof(diag));
        if (rc != ZJ_EZONE || cap1.n != 0 || strstr(diag, e->msg) == NULL ||
            strncmp(diag, "t:1: ", 5) != 0) {
            fail_msg("%s %s: rc %d, diag '%s', want '%s'", e->type, e->text, rc, diag, e->msg);
        }
    }
}

static void test_rdata_rrtype_mnemonics(void **state)
{
    char buf[16];
    (void)state;
    assert_int_equal(zj_rrtype_from_text("a", 1), ZJ_T_A);
    assert_int_equal(zj_rrtype_from_text("aAaA", 4), ZJ_T_AAAA);
    assert_int_equal(zj_rrtype_from_text("nsec3param", 10), ZJ_T_NSEC3PARAM);
    assert_int_equal(zj_rrtype_from_text("NSAP-PTR", 8), 23);
    assert_int_equal(zj_rrtype_from_text("TYPE65534", 9), 65534);
    assert_int_equal(zj_rrtype_from_text("type1", 5), 1);
    assert_int_equal(zj_rrtype_from_text("TYPE65536", 9), -1);
    assert_int_equal(zj_rrtype_from_text("TYPE", 4), -1);
    assert_int_equal(zj_rrtype_from_text("BOGUS", 5), -1);
    assert_int_equal(zj_rrtype_from_text("AX", 1), ZJ_T_A); /* length, not NUL, ends it */
    assert_string_equal(zj_rrtype_to_text(ZJ_T_HTTPS, buf, sizeof(buf)), "HTTPS");
    assert_string_equal(zj_rrtype_to_text(65534, buf, sizeof(buf)), "TYPE65534");
    assert_true(zj_rrtype_compressible(ZJ_T_MX));
    assert_true(zj_rrtype_compressible(ZJ_T_SOA));
    assert_false(zj_rrtype_compressible(ZJ_T_SRV)); /* RFC 2782: no compression */
    assert_false(zj_rrtype_compressible(ZJ_T_DNAME));
}

static void test_rdata_to_text_rejects_malformed_wire(void **state)
{
    char out[256];
    (void)state;
    static const uint8_t a5[5] = {1, 2, 3, 4, 5};
    static const uint8_t mx_bad[4] = {0, 10, 3, 'a'}; /* name runs past the end */
    static const uint8_t txt_bad[3] = {5, 'a', 'b'};
    static const uint8_t svcb_unsorted[] = {0, 1, 0, 0, 3, 0, 2, 1, 187, 0, 1, 0, 3, 2, 'h', '2'};
    static const uint8_t loc_bad[16] = {1};      /* version 1 */
    static const uint8_t nsec_bad[] = {0, 0, 0}; /* window with length 0 */
    assert_int_equal(zj_rdata_to_text(ZJ_T_A, a5, 5, out, sizeof(out)), ZJ_EMALF);
    assert_int_equal(zj_rdata_to_text(ZJ_T_A, a5, 3, out, sizeof(out)), ZJ_EMALF);
    assert_int_equal(zj_rdata_to_text(ZJ_T_MX, mx_bad, 4, out, sizeof(out)), ZJ_EMALF);
    assert_int_equal(zj_rdata_to_text(ZJ_T_TXT, txt_bad, 3, out, sizeof(out)), ZJ_EMALF);
    assert_int_equal(zj_rdata_to_text(ZJ_T_TXT, txt_bad, 0, out, sizeof(out)), ZJ_EMALF);
    assert_int_equal(
        zj_rdata_to_text(ZJ_T_SVCB, svcb_unsorted, sizeof(svcb_unsorted), out, sizeof(out)),
        ZJ_EMALF);
    assert_int_equal(zj_rdata_to_text(ZJ_T_LOC, loc_bad, 16, out, sizeof(out)), ZJ_EMALF);
    assert_int_equal(zj_rdata_to_text(ZJ_T_NSEC, nsec_bad, 3, out, sizeof(out)), ZJ_EMALF);
    /* Too small a buffer, and the exact fit. */
    assert_int_equal(zj_rdata_to_text(ZJ_T_A, a5, 4, out, 7), ZJ_ESPACE);
    assert_int_equal(zj_rdata_to_text(ZJ_T_A, a5, 4, out, 8), 7);
    assert_string_equal(out, "1.2.3.4");
    /* Unknown types print generically (RFC 3597 §5), in 32-digit chunks like dnspython. */
    uint8_t big[20];
    for (int i = 0; i < 20; i++) {
        big[i] = (uint8_t)i;
    }
    assert_true(zj_rdata_to_text(4000, big, 20, out, sizeof(out)) > 0);
    assert_string_equal(out, "\\# 20 000102030405060708090a0b0c0d0e0f 10111213");
    assert_int_equal(zj_rdata_to_text(4000, big, 0, out, sizeof(out)), 4);
    assert_string_equal(out, "\\# 0");
}

/* Every prefix of every valid rdata either prints or is rejected; never reads past rdlen
 * (ASan checks the reads: the copy is exactly rdlen bytes). */
static void test_rdata_to_text_truncations_are_safe(void **state)
{
    static char text[200000];
    char diag[1024];
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(parse_one(cases[i].type, cases[i].text, &cap1, diag, sizeof(diag)), 0);
        for (size_t len = 0; len <= cap1.rdlen; len++) {
            uint8_t *copy = malloc(len + 1);
            memcpy(copy, cap1.rdata, len);
            int n = zj_rdata_to_text(cap1.type, copy, len, text, sizeof(text));
            assert_true(n >= 0 || n == ZJ_EMALF);
            free(copy);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rdata_every_type_matches_reference),
        cmocka_unit_test(test_rdata_errors_name_type_and_field),
        cmocka_unit_test(test_rdata_rrtype_mnemonics),
        cmocka_unit_test(test_rdata_to_text_rejects_malformed_wire),
        cmocka_unit_test(test_rdata_to_text_truncations_are_safe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
