#!/usr/bin/env python3
"""Interleaved A/B of zonejetd builds or options on compare.py's zone and query mix.

Each configuration is LABEL=BUILD_DIR[:ARGS], ARGS being extra zonejetd arguments separated by
spaces (ENV:NAME=VALUE sets an environment variable instead). All servers start at once, one
worker each, pinned to --server-cpus; then every run measures each configuration in turn
(dnsperf pinned to --client-cpus), so that drift on a shared machine hits every configuration
alike instead of whichever ran last. Per run it prints CPU per query (schedstat), q/s, latency,
lost queries and the average batch (udp_rx / batches from `zonejet-ctl stats`); at the end the
medians.

usage: bench/ab.py [--rate 0] [--runs 5] [--seconds 5] [--names 10000]
                   old=build-old: new=build: "c300=build:--coalesce-us 300" null=build:--bench-echo
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare  # noqa: E402  (the zone, queries, server wrapper and dnsperf runner)


def stats(ctl_bin, ctl_path):
    out = subprocess.run([ctl_bin, "--control", ctl_path, "stats"], capture_output=True,
                         text=True).stdout.split()
    values = {}
    for key, value in zip(out, out[1:]):
        if value.isdigit():
            values.setdefault(key, int(value))
    return values


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=int, default=0, help="offered q/s; 0 = dnsperf's maximum")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--names", type=int, default=10000, help="names in the zone")
    ap.add_argument("--server-cpus", default="0")
    ap.add_argument("--client-cpus", default="1")
    ap.add_argument("configs", nargs="+")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="zjab.")
    zone = os.path.join(tmp, "bench.zone")
    qfile = os.path.join(tmp, "queries.txt")
    compare.gen_zone(zone, args.names)
    compare.gen_queries(qfile, args.names)
    servers = []
    for spec in args.configs:
        label, _, rest = spec.partition("=")
        build, _, extra = rest.partition(":")
        build = os.path.abspath(build)
        img = os.path.join(tmp, label + ".img")
        subprocess.run([os.path.join(build, "zonejet-compile"), "-q", "-o", img, zone], check=True)
        env = dict(os.environ)
        argv_extra = []
        for tok in extra.split():
            if tok.startswith("ENV:"):
                name, _, value = tok[4:].partition("=")
                env[name] = value
            else:
                argv_extra.append(tok)
        port = compare.free_port()
        ctl = os.path.join(tmp, label + ".ctl")
        argv = [os.path.join(build, "zonejetd"), "--listen", f"127.0.0.1:{port}", "--image", img,
                "--workers", "1", "--control", ctl] + argv_extra
        s = compare.Server(label, argv, port, tmp, env)
        s.ctl = (os.path.join(build, "zonejet-ctl"), ctl)
        servers.append(s)
    results = {s.name: [] for s in servers}
    try:
        for s in servers:
            s.start(args.server_cpus)
            compare.dnsperf(s.port, qfile, 2, 0, args.client_cpus, 1)  # warm-up
        for i in range(args.runs):
            for s in servers:
                before = stats(*s.ctl)
                m = compare.measure(s, qfile, args.seconds, args.rate, args.client_cpus, 1)
                after = stats(*s.ctl)
                rx = after.get("udp_rx", 0) - before.get("udp_rx", 0)
                m["batch"] = rx / max(after.get("batches", 0) - before.get("batches", 0), 1)
                results[s.name].append(m)
                print(f"{s.name} run {i}: {m['us_per_q']:.3f} µs/query {m['qps']:.0f} q/s "
                      f"latency {m['lat_ms']:.3f} ms lost {m['lost']} batch {m['batch']:.1f}",
                      flush=True)
    finally:
        for s in servers:
            s.stop()
    for name, runs in results.items():
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        print(f"{name}: median {med['us_per_q']:.3f} µs/query, {med['qps']:.0f} q/s, latency "
              f"{med['lat_ms']:.3f} ms, batch {med['batch']:.1f}")
    subprocess.run(["rm", "-rf", tmp])


if __name__ == "__main__":
    sys.exit(main())
