/* zj_config_parse: flags, the config file format, precedence and error reporting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "zonejet/err.h"
#include "server/config.h"

#define ARGC(a) ((int)(sizeof(a) / sizeof((a)[0])))

static char err[512];

/* Write text to a fresh temporary file; returns its path (static buffer). */
static const char *write_tmp(const char *text)
{
    static char path[64];
    snprintf(path, sizeof(path), "/tmp/zj_test_config_XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    size_t len = strlen(text);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    close(fd);
    return path;
}

static void test_config_flags_are_applied(void **state)
{
    (void)state;
    char *argv[] = {"zonejetd",         "--listen",    "127.0.0.1:5300", "--listen=[::1]:5301",
                    "--zones",          "/z",          "--image",        "/i.img",
                    "--workers",        "3",           "--io",           "mmsg",
                    "--control",        "/tmp/c.sock", "--edns-payload", "1400",
                    "--nsid",           "0x6e7331",    "--identity",     "ns1",
                    "--version-string", "v9",          "--tcp-idle-ms",  "2500",
                    "--tcp-max-conns",  "77"};
    zj_config_t cfg;
    assert_int_equal(zj_config_parse(&cfg, ARGC(argv), argv, err, sizeof(err)), ZJ_CONFIG_RUN);
    assert_int_equal(cfg.n_listens, 2);
    assert_int_equal(zj_addr_port(&cfg.listens[0]), 5300);
    assert_int_equal(cfg.listens[1].ss.ss_family, AF_INET6);
    assert_int_equal(zj_addr_port(&cfg.listens[1]), 5301);
    assert_int_equal(cfg.n_zones, 1);
    assert_string_equal(cfg.zones[0], "/z");
    assert_int_equal(cfg.n_images, 1);
    assert_string_equal(cfg.images[0], "/i.img");
    assert_int_equal(cfg.workers, 3);
    assert_int_equal(cfg.io, ZJ_IO_MMSG);
    assert_string_equal(cfg.control_path, "/tmp/c.sock");
    assert_int_equal(cfg.edns_payload, 1400);
    assert_int_equal(cfg.nsid_len, 3);
    assert_memory_equal(cfg.nsid, "ns1", 3);
    assert_string_equal(cfg.identity, "ns1");
    assert_string_equal(cfg.version_string, "v9");
    assert_int_equal(cfg.tcp_idle_ms, 2500);
    assert_int_equal(cfg.tcp_max_conns, 77);
    assert_false(cfg.is_default_zones);
    zj_config_fini(&cfg);
}

static void test_config_defaults_without_flags(void **state)
{
    (void)state;
    /* The bundled zones directory is found relative to the source tree (./zones). */
    char cwd[4096];
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    assert_int_equal(chdir(ZJ_SOURCE_DIR), 0);
    char *argv[] = {"zonejetd"};
    zj_config_t cfg;
    int rc = zj_config_parse(&cfg, ARGC(argv), argv, err, sizeof(err));
    assert_int_equal(chdir(cwd), 0);
    assert_int_equal(rc, ZJ_CONFIG_RUN);
    assert_int_equal(cfg.n_listens, 1);
    char text[ZJ_ADDR_TEXT_CAP];
    zj_addr_format(&cfg.listens[0], text, sizeof(text));
    assert_string_equal(text, "127.0.0.1:5353");
    assert_int_equal(cfg.n_zones, 1);
    assert_true(cfg.is_default_zones);
    assert_int_equal(cfg.workers, 0);
    assert_int_equal(cfg.io, ZJ_IO_AUTO);
    assert_int_equal(cfg.edns_payload, ZJ_CONFIG_DEFAULT_EDNS_PAYLOAD);
    assert_int_equal(cfg.tcp_idle_ms, 10000);
    assert_int_equal(cfg.tcp_max_conns, 512);
    assert_null(cfg.nsid);
    assert_null(cfg.control_path);
    zj_config_fini(&cfg);
}

static void test_config_nsid_string_and_bad_hex(void **state)
{
    (void)state;
    zj_config_t cfg;
    char *ok[] = {"zonejetd", "--zones", "/z", "--nsid", "edge-7"};
    assert_int_equal(zj_config_parse(&cfg, ARGC(ok), ok, err, sizeof(err)), ZJ_CONFIG_RUN);
    assert_int_equal(cfg.nsid_len, 6);
    assert_memory_equal(cfg.nsid, "edge-7", 6);
    zj_config_fini(&cfg);

    char *odd[] = {"zonejetd", "--zones", "/z", "--nsid", "0xabc"};
    assert_int_equal(zj_config_parse(&cfg, ARGC(odd), odd, err, sizeof(err)), ZJ_EINVAL);
    assert_non_null(strstr(err, "--nsid"));
    char *nonhex[] = {"zonejetd", "--zones", "/z", "--nsid", "0xzz"};
    assert_int_equal(zj_config_parse(&cfg, ARGC(nonhex), nonhex, err, sizeof(err)), ZJ_EINVAL);
}

static void test_config_rejects_bad_flags(void **state)
{
    (void)state;
    zj_config_t cfg;
    char *bad_listen[] = {"zonejetd", "--zones", "/z", "--listen", "localhost:53"};
    assert_int_equal(zj_config_parse(&cfg, ARGC(bad_listen), bad_listen, err, sizeof(err)),
                     ZJ_EINVAL);
    assert_non_null(strstr(err, "--listen"));
    char *v6_no_brackets[] = {"zonejetd", "--zones", "/z", "--listen", "::1:53"};
    assert_int_equal(zj_config_parse(&cfg, ARGC(v6_no_brackets), v6_no_brackets, err, sizeof(err)),
                     ZJ_EINVAL);
    char *big_port[] = {"zonejetd", "--zones", "/z", "--listen", "127.0.0.1:65536"};
    assert_int_equal(zj_config_parse(&cfg, ARGC(big_port), big_port, err, sizeof(err)), ZJ_EINVAL);
    char *dup[] = {"zonejetd",     "--zones",  "/z",          "--listen",
                   "127.0.0.1:53", "--listen", "127.0.0.1:53"};
    assert_int_equal(zj_config_parse(&cfg, ARGC(dup), dup, err, sizeof(err)), ZJ_EINVAL);
    assert_non_null(strstr(err, "duplicate"));
    char *workers0[] = {"zonejetd", "--zones", "/z", "--workers", "0"};
    assert_int_equal(zj_config_parse(&cfg, ARGC(workers0), workers0, err, sizeof(err)), ZJ_EINVAL);
    char *payload[] = {"zonejetd", "--zones", "/z", "--edns-payload", "511"};
    assert_int_equal(zj_config_parse(&cfg, ARGC(payload), payload, err, sizeof(err)), ZJ_EINVAL);
    char *coalesce[] = {"zonejetd", "--zones", "/z", "--coalesce-us", "10001"};
    assert_int_equal(zj_config_parse(&cfg, ARGC(coalesce), coalesce, err, sizeof(err)), ZJ_EINVAL);
    assert_non_null(strstr(err, "coalesce-us"));
    char *io[] = {"zonejetd", "--zones", "/z", "--io", "epoll"};
    assert_int_equal(zj_config_parse(&cfg, ARGC(io), io, err, sizeof(err)), ZJ_EINVAL);
    char *unknown[] = {"zonejetd", "--frobnicate", "1"};
    assert_int_equal(zj_config_parse(&cfg, ARGC(unknown), unknown, err, sizeof(err)), ZJ_EINVAL);
    assert_non_null(strstr(err, "--frobnicate"));
    char *missing[] = {"zonejetd", "--zones", "/z", "--workers"};
    assert_int_equal(zj_config_parse(&cfg, ARGC(missing), missing, err, sizeof(err)), ZJ_EINVAL);
    char *junk_num[] = {"zonejetd", "--zones", "/z", "--tcp-idle-ms", "10s"};
    assert_int_equal(zj_config_parse(&cfg, ARGC(junk_num), junk_num, err, sizeof(err)), ZJ_EINVAL);
}

static void test_config_help_and_version(void **state)
{
    (void)state;
    zj_config_t cfg;
    char *help[] = {"zonejetd", "--workers", "2", "--help"};
    assert_int_equal(zj_config_parse(&cfg, ARGC(help), help, err, sizeof(err)), ZJ_CONFIG_HELP);
    zj_config_fini(&cfg);
    char *version[] = {"zonejetd", "--version"};
    assert_int_equal(zj_config_parse(&cfg, ARGC(version), version, err, sizeof(err)),
                     ZJ_CONFIG_VERSION);
    zj_config_fini(&cfg);
    assert_non_null(strstr(zj_config_usage(), "--listen"));
}

static void test_config_file_is_read_and_flags_take_precedence(void **state)
{
    (void)state;
    const char *path = write_tmp("# a comment\n"
                                 "\n"
                                 "listen 127.0.0.1:5300\n"
                                 "  listen   [::1]:5300   # trailing comment\n"
                                 "zones /etc/zones\n"
                                 "workers 4\n"
                                 "io uring\n"
                                 "nsid ab#c\n"
                                 "tcp-max-conns 10\r\n");
    char *argv[] = {"zonejetd", "--config",     (char *)path, "--workers", "2",
                    "--listen", "127.0.0.2:53", "--zones",    "/more"};
    zj_config_t cfg;
    int rc = zj_config_parse(&cfg, ARGC(argv), argv, err, sizeof(err));
    unlink(path);
    assert_int_equal(rc, ZJ_CONFIG_RUN);
    /* Repeatable keys: file values first, then flags. */
    assert_int_equal(cfg.n_listens, 3);
    assert_int_equal(cfg.listens[1].ss.ss_family, AF_INET6);
    assert_int_equal(cfg.n_zones, 2);
    assert_string_equal(cfg.zones[0], "/etc/zones");
    assert_string_equal(cfg.zones[1], "/more");
    /* Single-valued: the flag wins. */
    assert_int_equal(cfg.workers, 2);
    assert_int_equal(cfg.io, ZJ_IO_URING);
    assert_int_equal(cfg.nsid_len, 4);
    assert_memory_equal(cfg.nsid, "ab#c", 4);
    assert_int_equal(cfg.tcp_max_conns, 10);
    assert_non_null(cfg.config_path);
    zj_config_fini(&cfg);
}

static void test_config_file_error_names_file_and_line(void **state)
{
    (void)state;
    const char *path = write_tmp("listen 127.0.0.1:5300\n"
                                 "# fine\n"
                                 "workers many\n");
    char *argv[] = {"zonejetd", "--config", (char *)path};
    zj_config_t cfg;
    int rc = zj_config_parse(&cfg, ARGC(argv), argv, err, sizeof(err));
    char want[128];
    snprintf(want, sizeof(want), "%s:3: ", path);
    unlink(path);
    assert_int_equal(rc, ZJ_EINVAL);
    assert_non_null(strstr(err, want));
    assert_non_null(strstr(err, "workers"));
    /* A failed parse leaves nothing behind. */
    assert_int_equal(cfg.n_listens, 0);
    assert_null(cfg.listens);
}

static void test_config_file_rejects_unknown_key_and_missing_value(void **state)
{
    (void)state;
    zj_config_t cfg;
    const char *path = write_tmp("zones /z\nlisten-on 127.0.0.1:53\n");
    char *argv[] = {"zonejetd", "--config", (char *)path};
    int rc = zj_config_parse(&cfg, ARGC(argv), argv, err, sizeof(err));
    char want[128];
    snprintf(want, sizeof(want), "%s:2: unknown key 'listen-on'", path);
    unlink(path);
    assert_int_equal(rc, ZJ_EINVAL);
    assert_non_null(strstr(err, want));

    path = write_tmp("zones\n");
    char *argv2[] = {"zonejetd", "--config", (char *)path};
    rc = zj_config_parse(&cfg, ARGC(argv2), argv2, err, sizeof(err));
    unlink(path);
    assert_int_equal(rc, ZJ_EINVAL);
    assert_non_null(strstr(err, ":1: zones needs a value"));

    path = write_tmp("config /etc/other.conf\n");
    char *argv3[] = {"zonejetd", "--config", (char *)path};
    rc = zj_config_parse(&cfg, ARGC(argv3), argv3, err, sizeof(err));
    unlink(path);
    assert_int_equal(rc, ZJ_EINVAL);
}

static void test_config_missing_file_is_an_error(void **state)
{
    (void)state;
    zj_config_t cfg;
    char *argv[] = {"zonejetd", "--config", "/nonexistent/zonejet.conf"};
    assert_true(zj_config_parse(&cfg, ARGC(argv), argv, err, sizeof(err)) < 0);
    assert_non_null(strstr(err, "/nonexistent/zonejet.conf"));
}

static void test_config_limits_rrl_and_switches(void **state)
{
    (void)state;
    zj_config_t cfg;
    char *defaults[] = {"zonejetd", "--image", "/i.img"};
    assert_int_equal(zj_config_parse(&cfg, ARGC(defaults), defaults, err, sizeof(err)),
                     ZJ_CONFIG_RUN);
    assert_int_equal(cfg.tcp_msg_timeout_ms, 2000);
    assert_int_equal(cfg.tcp_max_conns_per_ip, 64);
    assert_int_equal(cfg.tcp_max_inflight, 16);
    assert_int_equal(cfg.rrl.rate, 0);
    assert_int_equal(cfg.rrl.slip, 2);
    assert_int_equal(cfg.rrl.window_s, 15);
    assert_int_equal(cfg.rrl.ipv4_prefix, 24);
    assert_int_equal(cfg.rrl.ipv6_prefix, 56);
    assert_false(cfg.is_watch);
    assert_false(cfg.is_bench_echo);
    assert_false(cfg.is_uring_sendmmsg);
    assert_int_equal(cfg.coalesce_us, ZJ_CONFIG_DEFAULT_COALESCE_US);
    assert_int_equal(cfg.coalesce_min_qps, ZJ_CONFIG_DEFAULT_COALESCE_MIN_QPS);
    assert_true(cfg.is_answer_table);
    zj_config_fini(&cfg);

    /* A switch takes no value on the command line: --watch must not swallow --image. */
    char *argv[] = {"zonejetd",
                    "--uring-send",
                    "sendmmsg",
                    "--watch",
                    "--image",
                    "/i.img",
                    "--bench-echo=no",
                    "--tcp-msg-timeout-ms",
                    "150",
                    "--tcp-max-conns-per-ip=3",
                    "--tcp-max-inflight",
                    "4",
                    "--rrl-rate",
                    "20",
                    "--rrl-slip",
                    "0",
                    "--rrl-window",
                    "5",
                    "--rrl-ipv4-prefix",
                    "32",
                    "--rrl-ipv6-prefix",
                    "64",
                    "--coalesce-us",
                    "0",
                    "--coalesce-min-qps=20000",
                    "--answer-table=no"};
    assert_int_equal(zj_config_parse(&cfg, ARGC(argv), argv, err, sizeof(err)), ZJ_CONFIG_RUN);
    assert_int_equal(cfg.coalesce_us, 0);
    assert_int_equal(cfg.coalesce_min_qps, 20000);
    assert_false(cfg.is_answer_table);
    assert_true(cfg.is_watch);
    assert_false(cfg.is_bench_echo);
    assert_true(cfg.is_uring_sendmmsg);
    assert_int_equal(cfg.n_images, 1);
    assert_string_equal(cfg.images[0], "/i.img");
    assert_int_equal(cfg.tcp_msg_timeout_ms, 150);
    assert_int_equal(cfg.tcp_max_conns_per_ip, 3);
    assert_int_equal(cfg.tcp_max_inflight, 4);
    assert_int_equal(cfg.rrl.rate, 20);
    assert_int_equal(cfg.rrl.slip, 0);
    assert_int_equal(cfg.rrl.window_s, 5);
    assert_int_equal(cfg.rrl.ipv4_prefix, 32);
    assert_int_equal(cfg.rrl.ipv6_prefix, 64);
    zj_config_fini(&cfg);

    const char *path = write_tmp("image /i.img\nwatch\nbench-echo yes\ntcp-max-inflight 9\n"
                                 "rrl-rate 7\n");
    char *fargv[] = {"zonejetd", "--config", (char *)path};
    assert_int_equal(zj_config_parse(&cfg, ARGC(fargv), fargv, err, sizeof(err)), ZJ_CONFIG_RUN);
    assert_true(cfg.is_watch);
    assert_true(cfg.is_bench_echo);
    assert_int_equal(cfg.tcp_max_inflight, 9);
    assert_int_equal(cfg.rrl.rate, 7);
    zj_config_fini(&cfg);
    unlink(path);

    char *bad[][3] = {
        {"zonejetd", "--tcp-max-inflight", "0"}, {"zonejetd", "--tcp-msg-timeout-ms", "0"},
        {"zonejetd", "--rrl-ipv4-prefix", "33"}, {"zonejetd", "--rrl-ipv6-prefix", "129"},
        {"zonejetd", "--rrl-window", "0"},       {"zonejetd", "--tcp-max-conns-per-ip", "-1"},
    };
    for (size_t i = 0; i < ARGC(bad); i++) {
        assert_int_equal(zj_config_parse(&cfg, 3, bad[i], err, sizeof(err)), ZJ_EINVAL);
        assert_non_null(strstr(err, bad[i][1] + 2));
    }
    char *bad_switch[] = {"zonejetd", "--watch=maybe"};
    assert_int_equal(zj_config_parse(&cfg, 2, bad_switch, err, sizeof(err)), ZJ_EINVAL);
    assert_non_null(strstr(err, "yes or no"));
}

static void test_config_geoip_and_seed(void **state)
{
    (void)state;
    zj_config_t cfg;
    char *none[] = {"zonejetd", "--image", "/i.img"};
    assert_int_equal(zj_config_parse(&cfg, ARGC(none), none, err, sizeof(err)), ZJ_CONFIG_RUN);
    assert_null(cfg.geoip_path);
    assert_false(cfg.has_seed);
    zj_config_fini(&cfg);

    char *argv[] = {"zonejetd",
                    "--image",
                    "/i.img",
                    "--geoip",
                    "/g/city.mmdb",
                    "--seed",
                    "18446744073709551615"};
    assert_int_equal(zj_config_parse(&cfg, ARGC(argv), argv, err, sizeof(err)), ZJ_CONFIG_RUN);
    assert_string_equal(cfg.geoip_path, "/g/city.mmdb");
    assert_true(cfg.has_seed);
    assert_true(cfg.seed == UINT64_MAX);
    zj_config_fini(&cfg);
    assert_null(cfg.geoip_path);
    assert_false(cfg.has_seed);

    /* The file's keys; a flag overrides them. Seed 0 is a seed, not "unset". */
    const char *path = write_tmp("image /i.img\ngeoip /file/geo.mmdb\nseed 0\n");
    char *fargv[] = {"zonejetd", "--config", (char *)path};
    assert_int_equal(zj_config_parse(&cfg, ARGC(fargv), fargv, err, sizeof(err)), ZJ_CONFIG_RUN);
    assert_string_equal(cfg.geoip_path, "/file/geo.mmdb");
    assert_true(cfg.has_seed);
    assert_true(cfg.seed == 0);
    zj_config_fini(&cfg);
    char *over[] = {"zonejetd", "--config", (char *)path, "--geoip=/flag.mmdb", "--seed=42"};
    assert_int_equal(zj_config_parse(&cfg, ARGC(over), over, err, sizeof(err)), ZJ_CONFIG_RUN);
    assert_string_equal(cfg.geoip_path, "/flag.mmdb");
    assert_true(cfg.seed == 42);
    zj_config_fini(&cfg);
    unlink(path);

    char *bad[][3] = {
        {"zonejetd", "--seed", "-1"},
        {"zonejetd", "--seed", "18446744073709551616"},
        {"zonejetd", "--seed", "12abc"},
        {"zonejetd", "--geoip", ""},
    };
    for (size_t i = 0; i < ARGC(bad); i++) {
        assert_int_equal(zj_config_parse(&cfg, 3, bad[i], err, sizeof(err)), ZJ_EINVAL);
        assert_non_null(strstr(err, bad[i][1]));
    }
    path = write_tmp("image /i.img\nseed lots\n");
    char *bargv[] = {"zonejetd", "--config", (char *)path};
    assert_int_equal(zj_config_parse(&cfg, ARGC(bargv), bargv, err, sizeof(err)), ZJ_EINVAL);
    assert_non_null(strstr(err, ":2: seed must be"));
    unlink(path);

    /* --help lists both. */
    assert_non_null(strstr(zj_config_usage(), "--geoip FILE"));
    assert_non_null(strstr(zj_config_usage(), "--seed N"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_flags_are_applied),
        cmocka_unit_test(test_config_defaults_without_flags),
        cmocka_unit_test(test_config_nsid_string_and_bad_hex),
        cmocka_unit_test(test_config_rejects_bad_flags),
        cmocka_unit_test(test_config_help_and_version),
        cmocka_unit_test(test_config_file_is_read_and_flags_take_precedence),
        cmocka_unit_test(test_config_file_error_names_file_and_line),
        cmocka_unit_test(test_config_file_rejects_unknown_key_and_missing_value),
        cmocka_unit_test(test_config_missing_file_is_an_error),
        cmocka_unit_test(test_config_limits_rrl_and_switches),
        cmocka_unit_test(test_config_geoip_and_seed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
