#!/usr/bin/env python3
"""Cost of a routing-policy answer against a plain answer, under dnsperf and under callgrind.

One zonejetd (one worker, pinned) serves one zone whose names come in five kinds: plain A
records, and A records answered by a weighted, a geo, a cidr and a multivalue policy
(docs/policies.md). For each kind a query file asks only names of that kind; the script reports
the server's CPU time per answered query (schedstat, as bench/compare.py) at the offered rates,
and with --callgrind the user-space instructions per query (recvmmsg backend, 2,000 q/s), then
each policy kind's ratio to the plain kind. The geo policy needs a MaxMind database that places
127.0.0.1 (the packet source of dnsperf's queries): by default the script writes one with
tests/integration/policy/make_geoip.pl (Debian's libmaxmind-db-writer-perl); --geoip FILE
uses another.

usage: bench/policy_cost.py [--build DIR] [--runs 3] [--seconds 10] [--rates 50000,0]
                            [--kinds plain,weighted,geo,cidr,multivalue] [--callgrind]
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import compare  # noqa: E402  (Server, free_port, dnsperf, measure, callgrind_ipq)

ORIGIN = compare.ORIGIN
NAMES = 1000  # names per kind


def write_zone(zone, policy):
    with open(zone, "w") as f:
        f.write(f"$ORIGIN {ORIGIN}\n$TTL 3600\n"
                "@ SOA ns1 hostmaster 1 7200 3600 1209600 300\n@ NS ns1\nns1 A 192.0.2.1\n")
        for i in range(NAMES):
            f.write(f"p{i} A 192.0.2.{i % 250 + 1}\n")
    with open(policy, "w") as f:
        f.write("cidr nets lo 127.0.0.0/8\ncidr nets ten 10.0.0.0/8\n")
        for i in range(NAMES):
            for k, w in enumerate((1, 2, 3)):
                f.write(f"set w{i} A weighted s{k} weight={w}\n    198.51.100.{k + 1}\n")
            for k, loc in enumerate(("continent:EU", "country:DE", "continent:NA", "*")):
                f.write(f"set g{i} A geo s{k} location={loc}\n    198.51.101.{k + 1}\n")
            for k, loc in enumerate(("lo", "ten", "*")):
                f.write(f"set c{i} A cidr s{k} collection=nets location={loc}\n"
                        f"    198.51.102.{k + 1}\n")
            for k in range(10):
                f.write(f"set m{i} A multivalue s{k}\n    198.51.103.{k + 1}\n")


def write_queries(path, prefix, count=100000):
    with open(path, "w") as f:
        for i in range(count):
            f.write(f"{prefix}{i % NAMES}.{ORIGIN} A\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(HERE, "..", "build"))
    ap.add_argument("--geoip", help="MaxMind database that places 127.0.0.1 (default: written)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--rates", default="50000,0", help="offered q/s; 0 = dnsperf's maximum")
    ap.add_argument("--kinds", default="plain,weighted,geo,cidr,multivalue")
    ap.add_argument("--server-cpus", default="0")
    ap.add_argument("--client-cpus", default="1")
    ap.add_argument("--callgrind", action="store_true")
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    kinds = args.kinds.split(",")
    prefix = {"plain": "p", "weighted": "w", "geo": "g", "cidr": "c", "multivalue": "m"}
    rates = [int(r) for r in args.rates.split(",")]
    tmp = tempfile.mkdtemp(prefix="zjpolicy.")
    zone = os.path.join(tmp, "bench.zone")
    write_zone(zone, os.path.join(tmp, "bench.policy"))
    img = os.path.join(tmp, "bench.img")
    subprocess.run([os.path.join(build, "zonejet-compile"), "-q", "-o", img, zone], check=True)
    qfiles = {}
    for k in kinds:
        qfiles[k] = os.path.join(tmp, f"q.{k}")
        write_queries(qfiles[k], prefix[k])
    geoip = args.geoip
    if geoip is None:
        geoip = os.path.join(tmp, "geo.mmdb")
        subprocess.run(["/usr/bin/perl", os.path.join(HERE, "..", "tests", "integration",
                                                       "policy", "make_geoip.pl"), geoip,
                        "127.0.0.0/8=EU/DE", "10.0.0.0/8=NA/US/CA"], check=True)
    port = compare.free_port()
    argv = [os.path.join(build, "zonejetd"), "--listen", f"127.0.0.1:{port}", "--image", img,
            "--workers", "1", "--geoip", os.path.abspath(geoip)]
    server = compare.Server("zonejet", argv, port, tmp)
    results, ipq = {}, {}
    try:
        server.start(args.server_cpus)
        compare.dnsperf(port, qfiles[kinds[0]], 2, 0, args.client_cpus, 1)  # warm-up
        for k in kinds:
            for rate in rates:
                runs = [compare.measure(server, qfiles[k], args.seconds, rate, args.client_cpus,
                                        1) for _ in range(args.runs)]
                results[(k, rate)] = {m: statistics.median(r[m] for r in runs) for m in runs[0]}
        server.stop()
        if args.callgrind:
            server.argv += ["--io", "mmsg"]
            for k in kinds:
                ipq[k] = compare.callgrind_ipq(server, qfiles[k], tmp, args.server_cpus)
    finally:
        server.stop()
    print("| answer | " + " | ".join(
        f"CPU/query @ {'max' if r == 0 else f'{r // 1000}k q/s'} | lost" for r in rates) +
        " | instr/query |")
    print("|" + "---|" * (2 + 2 * len(rates)))
    for k in kinds:
        cells = []
        for r in rates:
            m = results[(k, r)]
            ratio = m["us_per_q"] / results[("plain", r)]["us_per_q"] if "plain" in kinds else 0
            cells += [f"{m['us_per_q']:.2f} µs ({ratio:.2f}x)", f"{m['lost']:.0f}"]
        cg = "-"
        if k in ipq:
            cg = f"{ipq[k]:.0f}"
            if "plain" in ipq:
                cg += f" ({ipq[k] / ipq['plain']:.2f}x)"
        print(f"| {k} | " + " | ".join(cells) + f" | {cg} |")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
