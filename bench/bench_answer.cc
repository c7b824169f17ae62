// The whole answer path without I/O: parse + zone find + lookup + response build, per query
// kind, on a fixed zone. Items processed = queries answered.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

extern "C" {
#include "compile/emit.h"
#include "dns/answer.h"
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

struct Fixture {
    zj_imgset_t *set = nullptr;
    zj_image_t *img = nullptr;
    zj_image_t *images[1]{};
    zj_answer_cfg_t cfg{};
    zj_responder_t r{};
    Fixture()
    {
        zj_build_opts_t o{};
        o.quiet = true;
        zj_builder_t *b = zj_builder_new(&o);
        zj_builder_add_text(b, "bench.zone", kZone, sizeof(kZone) - 1, nullptr);
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
        zj_answer_cfg_default(&cfg);
        zj_responder_init(&r, &cfg, 1);
    }
    ~Fixture()
    {
        zj_imgset_close(set);
        zj_image_close(img);
    }
};

std::vector<uint8_t> MakeQuery(const char *name, uint16_t type, bool edns)
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
    if (edns) {
        q[11] = 1;
        const uint8_t opt[] = {0, 0, 41, 0x10, 0, 0, 0, 0x80, 0, 0, 0};
        q.insert(q.end(), opt, opt + sizeof(opt));
    }
    return q;
}

void Run(benchmark::State &state, const char *name, uint16_t type, bool edns)
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

} // namespace

BENCHMARK_CAPTURE(Run, hit, "www.example.com.", 1, false);
BENCHMARK_CAPTURE(Run, hit_edns, "www.example.com.", 1, true);
BENCHMARK_CAPTURE(Run, nxdomain, "nope.example.com.", 1, false);
BENCHMARK_CAPTURE(Run, nodata, "www.example.com.", 16, false);
BENCHMARK_CAPTURE(Run, wildcard, "x.wild.example.com.", 1, false);
BENCHMARK_CAPTURE(Run, cname, "alias.example.com.", 1, false);
BENCHMARK_CAPTURE(Run, referral, "host.sub.example.com.", 1, false);
BENCHMARK_CAPTURE(Run, mx_additional, "example.com.", 15, true);
BENCHMARK_CAPTURE(Run, refused, "example.org.", 1, false);

BENCHMARK_MAIN();
