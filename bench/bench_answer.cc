// The whole answer path without I/O: parse + zone find + lookup + response build, per query
// kind, on a fixed zone. Items processed = queries answered. The policy cases (weighted, geo
// with the unit tests' .mmdb, cidr, multivalue) sit beside plain answers of the same shape
// (plain_a, plain_a_ecs) so that their cost can be read as a ratio.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

extern "C" {
#include "compile/emit.h"
#include "dns/answer.h"
#include "policy/geo.h"
#include "zone/imgset_internal.h"
#include "zonejet/dname.h"
#include "zonejet/zone.h"
}

namespace
{

const char kZone[] = "$ORIGIN example.com.\n$TTL 3600\n"
                     "@ SOA ns1 hostmaster 1 7200 3600 1209600 300\n"
                     "@ NS ns1\n@ NS ns2\n@ MX 10 mail\n"
                     "ns1 A 192.0.2.1\nns2 A 192.0.2.2\nmail A 192.0.2.3\n"
                     "www A 192.0.2.10\nwww AAAA 2001:db8::10\n"
                     "alias CNAME www\n"
                     "*.wild A 192.0.2.20\n"
                     "sub NS ns.sub\nns.sub A 192.0.2.30\n";

// Routing policies of pol.example (docs/policies.md); plain is the same answer without one.
const char kPolZone[] = "$ORIGIN pol.example.\n$TTL 300\n"
                        "@ SOA ns1 hostmaster 1 7200 3600 1209600 300\n@ NS ns1\n"
                        "ns1 A 192.0.2.1\nplain A 10.0.0.1\n";
const char kPolicy[] = "set w A weighted a weight=1\n    10.0.0.1\n"
                       "set w A weighted b weight=2\n    10.0.0.2\n"
                       "set w A weighted c weight=3\n    10.0.0.3\n"
                       "set geo A geo ca location=subdivision:US-CA\n    10.1.0.1\n"
                       "set geo A geo us location=country:US\n    10.1.0.2\n"
                       "set geo A geo eu location=continent:EU\n    10.1.0.3\n"
                       "set geo A geo d location=*\n    10.1.0.4\n"
                       "cidr nets a 192.0.2.0/24\ncidr nets b 198.51.100.0/24\n"
                       "cidr nets c 10.0.0.0/8\n"
                       "set cidr A cidr a collection=nets location=a\n    10.2.0.1\n"
                       "set cidr A cidr b collection=nets location=b\n    10.2.0.2\n"
                       "set cidr A cidr d collection=nets location=*\n    10.2.0.3\n"
                       "set mv A multivalue m0\n    10.3.0.0\nset mv A multivalue m1\n"
                       "    10.3.0.1\nset mv A multivalue m2\n    10.3.0.2\n"
                       "set mv A multivalue m3\n    10.3.0.3\n";

struct Fixture {
    zj_imgset_t *set = nullptr;
    zj_image_t *img = nullptr;
    zj_geo_t *geo = nullptr;
    zj_image_t *images[1]{};
    zj_answer_cfg_t cfg{};
    zj_responder_t r{};
    Fixture()
    {
        zj_build_opts_t o{};
        o.quiet = true;
        zj_builder_t *b = zj_builder_new(&o);
        zj_builder_add_text(b, "bench.zone", kZone, sizeof(kZone) - 1, nullptr);
        zj_builder_add_text(b, "pol.zone", kPolZone, sizeof(kPolZone) - 1, nullptr);
        zj_builder_add_policy_text(b, "pol.policy", kPolicy, sizeof(kPolicy) - 1, nullptr);
        uint8_t *buf = nullptr;
        size_t len = 0;
        if (zj_builder_finish(b, &buf, &len) != 0) {
            abort();
        }
        zj_builder_free(b);
        char err[256];
        if (zj_image_open_mem(buf, len, &img, err, sizeof(err)) != 0) {
            abort();
        }
        images[0] = img;
        if (zj_imgset_from_images(images, 1, &set) != 0) {
            abort();
        }
        if (zj_geo_open(ZJ_SOURCE_DIR "/tests/unit/data/geo_test.mmdb", &geo, err, sizeof(err)) !=
            0) {
            abort();
        }
        set->geo = geo;
        zj_answer_cfg_default(&cfg);
        zj_responder_init(&r, &cfg, 1);
    }
    ~Fixture()
    {
        zj_imgset_close(set);
        zj_image_close(img);
        zj_geo_close(geo);
    }
};

// edns 2: with an ECS option for 192.0.2.0/24 (US-CA in the test database, "a" in nets)
std::vector<uint8_t> MakeQuery(const char *name, uint16_t type, int edns)
{
    std::vector<uint8_t> q(12, 0);
    q[0] = 0x12;
    q[1] = 0x34;
    q[5] = 1;
    uint8_t wire[255];
    uint8_t root = 0;
    int n = zj_dname_from_text(name, strlen(name), &root, wire);
    q.insert(q.end(), wire, wire + n);
    q.push_back(static_cast<uint8_t>(type >> 8));
    q.push_back(static_cast<uint8_t>(type));
    q.push_back(0);
    q.push_back(1);
    if (edns == 1) {
        q[11] = 1;
        const uint8_t opt[] = {0, 0, 41, 0x10, 0, 0, 0, 0x80, 0, 0, 0};
        q.insert(q.end(), opt, opt + sizeof(opt));
    } else if (edns == 2) {
        q[11] = 1;
        const uint8_t opt[] = {0, 0, 41, 0x10, 0, 0, 0,  0x80, 0,   0, 11,
                               0, 8, 0,  7,    0, 1, 24, 0,    192, 0, 2};
        q.insert(q.end(), opt, opt + sizeof(opt));
    }
    return q;
}

void Run(benchmark::State &state, const char *name, uint16_t type, int edns)
{
    static Fixture fx;
    std::vector<uint8_t> q = MakeQuery(name, type, edns);
    uint8_t out[4096];
    for (auto _ : state) {
        size_t n = zj_answer(&fx.r, fx.set, q.data(), q.size(), nullptr, false, out, sizeof(out));
        benchmark::DoNotOptimize(n);
        benchmark::DoNotOptimize(out);
    }
    state.SetItemsProcessed(state.iterations());
}

// The same queries through the general path only (as with --answer-table=no).
void General(benchmark::State &state, const char *name, uint16_t type, int edns)
{
    static Fixture fx;
    std::vector<uint8_t> q = MakeQuery(name, type, edns);
    uint8_t out[4096];
    for (auto _ : state) {
        size_t n =
            zj_answer_general(&fx.r, fx.set, q.data(), q.size(), nullptr, false, out, sizeof(out));
        benchmark::DoNotOptimize(n);
        benchmark::DoNotOptimize(out);
    }
    state.SetItemsProcessed(state.iterations());
}

} // namespace

BENCHMARK_CAPTURE(Run, hit, "www.example.com.", 1, 0);
BENCHMARK_CAPTURE(Run, hit_edns, "www.example.com.", 1, 1);
BENCHMARK_CAPTURE(Run, nxdomain, "nope.example.com.", 1, 0);
BENCHMARK_CAPTURE(Run, nodata, "www.example.com.", 16, 0);
BENCHMARK_CAPTURE(Run, wildcard, "x.wild.example.com.", 1, 0);
BENCHMARK_CAPTURE(Run, cname, "alias.example.com.", 1, 0);
BENCHMARK_CAPTURE(Run, referral, "host.sub.example.com.", 1, 0);
BENCHMARK_CAPTURE(Run, mx_additional, "example.com.", 15, 1);
BENCHMARK_CAPTURE(Run, refused, "example.org.", 1, 0);
BENCHMARK_CAPTURE(General, hit, "www.example.com.", 1, 0);
BENCHMARK_CAPTURE(General, hit_edns, "www.example.com.", 1, 1);
BENCHMARK_CAPTURE(General, nxdomain, "nope.example.com.", 1, 0);
BENCHMARK_CAPTURE(General, nodata, "www.example.com.", 16, 0);
BENCHMARK_CAPTURE(General, wildcard, "x.wild.example.com.", 1, 0);
BENCHMARK_CAPTURE(General, cname, "alias.example.com.", 1, 0);
BENCHMARK_CAPTURE(General, referral, "host.sub.example.com.", 1, 0);
BENCHMARK_CAPTURE(General, mx_additional, "example.com.", 15, 1);
// routing policies, each beside the plain answer of the same shape
BENCHMARK_CAPTURE(Run, plain_a, "plain.pol.example.", 1, 1);
BENCHMARK_CAPTURE(Run, weighted, "w.pol.example.", 1, 1);
BENCHMARK_CAPTURE(Run, multivalue4, "mv.pol.example.", 1, 1);
BENCHMARK_CAPTURE(Run, plain_a_ecs, "plain.pol.example.", 1, 2);
BENCHMARK_CAPTURE(Run, geo_ecs, "geo.pol.example.", 1, 2);
BENCHMARK_CAPTURE(Run, cidr_ecs, "cidr.pol.example.", 1, 2);

BENCHMARK_MAIN();
