#!/usr/bin/env python3
"""Side-by-side server benchmark: zonejetd, gdnsd, Knot DNS and NSD on the same zone and queries.

Each server runs with one worker pinned to one core, dnsperf runs pinned to another, over UDP on
127.0.0.1. For each server and offered rate the script reports the server's CPU time per answered
query (from /proc/PID/task/*/schedstat: exact run time, not tick-sampled), dnsperf's completed and
lost queries and average latency, as medians of --runs repetitions; then zonejet's ratios to
gdnsd. With --callgrind it also counts user-space instructions per query under valgrind
(zonejetd on its recvmmsg backend), as the difference of two runs of different lengths so that
start-up cost cancels.

usage: bench/compare.py [--build DIR] [--runs 3] [--seconds 10] [--servers zonejet,gdnsd,knot,nsd]
                        [--workers 1] [--server-cpus 0] [--client-cpus 1] [--callgrind]
Servers: zonejet, null (the echo floor on the same I/O), zonejet-sendmmsg and null-sendmmsg (the
io_uring backend with --uring-send sendmmsg), gdnsd, knot, nsd.
On a larger machine: --workers N --server-cpus 0-7 --client-cpus 8-15 (dnsperf gets -T per core).
"""
import argparse
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ORIGIN = "bench.example."


def free_port():
    """A port free for both TCP and UDP on 127.0.0.1 (servers bind both)."""
    for _ in range(100):
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        t.bind(("127.0.0.1", 0))
        port = t.getsockname()[1]
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            u.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            u.close()
            t.close()
    raise RuntimeError("no free port")


def expand_cpus(spec):
    cpus = []
    for part in spec.split(","):
        a, _, b = part.partition("-")
        cpus += list(range(int(a), int(b or a) + 1))
    return cpus


def gen_zone(path, names=10000):
    with open(path, "w") as f:
        f.write(f"$ORIGIN {ORIGIN}\n$TTL 3600\n")
        f.write("@ SOA ns1 hostmaster 1 7200 3600 1209600 300\n@ NS ns1\n@ NS ns2\n")
        f.write("ns1 A 192.0.2.1\nns2 A 192.0.2.2\n@ MX 10 mail\nmail A 192.0.2.3\n")
        for i in range(names):
            f.write(f"h{i} A 10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}\n")
            if i % 4 == 0:
                f.write(f"h{i} AAAA 2001:db8::{i >> 16:x}:{i & 0xFFFF:x}\n")
            if i % 50 == 0:
                f.write(f"c{i} CNAME h{i}\n")
        f.write("*.wild A 192.0.2.9\n")
        for i in range(100):
            f.write(f"d{i} NS ns.d{i}\nns.d{i} A 192.0.2.{10 + i}\n")


def gen_queries(path, names=10000, count=100000):
    """The mix: 60% hits, 10% NODATA, 10% NXDOMAIN, 8% CNAME, 6% wildcard, 6% referral."""
    rnd = random.Random(7)
    with open(path, "w") as f:
        for _ in range(count):
            r = rnd.random()
            i = rnd.randrange(names)
            if r < 0.60:
                f.write(f"h{i}.{ORIGIN} A\n")
            elif r < 0.70:
                f.write(f"h{i}.{ORIGIN} TXT\n")
            elif r < 0.80:
                f.write(f"nx{i}.{ORIGIN} A\n")
            elif r < 0.88:
                f.write(f"c{(i // 50) * 50}.{ORIGIN} A\n")
            elif r < 0.94:
                f.write(f"w{i}.wild.{ORIGIN} A\n")
            else:
                f.write(f"www.d{i % 100}.{ORIGIN} A\n")


class Server:
    def __init__(self, name, argv, port, tmp, env=None):
        self.name, self.argv, self.port, self.tmp, self.env = name, argv, port, tmp, env
        self.proc = None

    def start(self, cpus, wrapper=()):
        log = open(os.path.join(self.tmp, f"{self.name}.log"), "w")
        self.proc = subprocess.Popen(["taskset", "-c", cpus, *wrapper, *self.argv], stdout=log,
                                     stderr=subprocess.STDOUT, env=self.env)
        deadline = time.time() + (60 if wrapper else 15)
        while time.time() < deadline:
            if self.ready():
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{self.name} did not start; see {log.name}")

    def ready(self):
        pkt = b"\xab\xcd\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00" + b"".join(
            bytes([len(l)]) + l.encode() for l in ORIGIN.strip(".").split(".")) + b"\x00\x00\x06\x00\x01"
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(0.3)
        try:
            s.sendto(pkt, ("127.0.0.1", self.port))
            data, _ = s.recvfrom(4096)
            if self.name.startswith("null"):  # the echo server answers with the query itself
                return len(data) >= 12 and data[2] & 0x80
            return len(data) > 12 and (data[3] & 0xF) == 0 and data[7] >= 1
        except OSError:
            return False
        finally:
            s.close()

    def cpu_ns(self):
        """Run time of every thread of the server (and its children, e.g. NSD's workers)."""
        total = 0
        pids, todo = [], [self.proc.pid]
        while todo:  # the server and all its descendants (NSD forks its serving processes)
            pid = todo.pop()
            pids.append(pid)
            out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True,
                                 text=True).stdout
            todo += [int(p) for p in out.split()]
        for pid in pids:
            tdir = f"/proc/{pid}/task"
            try:
                for t in os.listdir(tdir):
                    with open(f"{tdir}/{t}/schedstat") as f:
                        total += int(f.read().split()[0])
            except OSError:
                pass
        return total

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def make_servers(names, build, tmp, zone, workers):
    servers = {}
    if any(n.startswith("zonejet") or n.startswith("null") for n in names):
        img = os.path.join(tmp, "bench.img")
        subprocess.run([os.path.join(build, "zonejetd").replace("zonejetd", "zonejet-compile"),
                        "-q", "-o", img, zone], check=True)
    if "zonejet" in names:
        port = free_port()
        servers["zonejet"] = Server("zonejet", [os.path.join(build, "zonejetd"), "--listen",
                                                f"127.0.0.1:{port}", "--image", img, "--workers",
                                                str(workers)], port, tmp)
    # the io_uring backend with its sendmmsg send path (--uring-send sendmmsg), for comparison
    for base in ("zonejet", "null"):
        if f"{base}-sendmmsg" in names:
            port = free_port()
            argv = [os.path.join(build, "zonejetd"), "--listen", f"127.0.0.1:{port}", "--image",
                    img, "--workers", str(workers), "--io", "uring", "--uring-send", "sendmmsg"]
            if base == "null":
                argv.append("--bench-echo")
            servers[f"{base}-sendmmsg"] = Server(base + "-sendmmsg", argv, port, tmp)
    if "null" in names:
        port = free_port()
        servers["null"] = Server("null", [os.path.join(build, "zonejetd"), "--listen",
                                          f"127.0.0.1:{port}", "--image", img, "--workers",
                                          str(workers), "--bench-echo"], port, tmp)
    if "gdnsd" in names:
        port = free_port()
        d = os.path.join(tmp, "gdnsd")
        os.makedirs(os.path.join(d, "zones"), exist_ok=True)
        shutil.copy(zone, os.path.join(d, "zones", ORIGIN.rstrip(".")))
        with open(os.path.join(d, "config"), "w") as f:
            f.write("options => {\n  listen => [ 127.0.0.1 ]\n"
                    f"  dns_port => {port}\n  udp_threads => {workers}\n  tcp_threads => 1\n"
                    f"  run_dir => {d}/run\n  state_dir => {d}/state\n}}\n")
        servers["gdnsd"] = Server("gdnsd", ["gdnsd", "-c", d, "start"], port, tmp)
    if "knot" in names:
        port = free_port()
        d = os.path.join(tmp, "knot")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "knot.conf"), "w") as f:
            f.write(f"server:\n  rundir: {d}\n  listen: 127.0.0.1@{port}\n"
                    f"  udp-workers: {workers}\n  tcp-workers: 1\n  background-workers: 1\n"
                    f"database:\n  storage: {d}\n"
                    "template:\n  - id: default\n    storage: " + d + "\n"
                    "    zonefile-load: whole\n    journal-content: none\n    semantic-checks: off\n"
                    f"zone:\n  - domain: {ORIGIN}\n    file: {zone}\n")
        servers["knot"] = Server("knot", ["knotd", "-c", os.path.join(d, "knot.conf")], port, tmp)
    if "nsd" in names:
        port = free_port()
        d = os.path.join(tmp, "nsd")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "nsd.conf"), "w") as f:
            f.write(f"server:\n  ip-address: 127.0.0.1@{port}\n  server-count: {workers}\n"
                    f"  zonesdir: \"{d}\"\n  pidfile: \"{d}/nsd.pid\"\n"
                    f"  xfrdfile: \"{d}/xfrd.state\"\n  zonelistfile: \"{d}/zone.list\"\n"
                    "  database: \"\"\n  username: \"\"\n  chroot: \"\"\n  verbosity: 0\n"
                    "  rrl-ratelimit: 0\n  rrl-whitelist-ratelimit: 0\n"
                    "remote-control:\n  control-enable: no\n"
                    f"zone:\n  name: {ORIGIN}\n  zonefile: \"{zone}\"\n")
        servers["nsd"] = Server("nsd", ["nsd", "-d", "-c", os.path.join(d, "nsd.conf")], port,
                                tmp)
    return servers


def dnsperf(port, qfile, seconds, rate, cpus, threads):
    # -b: a 4 MiB socket buffer, so that replies sent in batches do not overflow dnsperf's
    # receive queue (with the default, every batching server showed ~700 "lost" at 50k q/s)
    argv = ["taskset", "-c", cpus, "dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", qfile,
            "-l", str(seconds), "-c", str(threads), "-T", str(threads), "-q", "1000", "-t", "2",
            "-b", "4096"]
    if rate:
        argv += ["-Q", str(rate)]
    out = subprocess.run(argv, capture_output=True, text=True).stdout
    completed = int(re.search(r"Queries completed:\s+(\d+)", out).group(1))
    lost = int(re.search(r"Queries lost:\s+(\d+)", out).group(1))
    lat = float(re.search(r"Average Latency \(s\):\s+([0-9.]+)", out).group(1))
    qps = float(re.search(r"Queries per second:\s+([0-9.]+)", out).group(1))
    return completed, lost, lat, qps


def measure(server, qfile, seconds, rate, cpus, threads):
    before = server.cpu_ns()
    completed, lost, lat, qps = dnsperf(server.port, qfile, seconds, rate, cpus, threads)
    used = server.cpu_ns() - before
    return {"us_per_q": used / 1000.0 / max(completed, 1), "lost": lost, "lat_ms": lat * 1000,
            "qps": qps}


def callgrind_ipq(server, qfile, tmp, cpus):
    """User-space instructions per query: (Ir(2N) - Ir(N)) / N at 2,000 q/s."""
    totals = []
    for seconds in (5, 10):
        out = os.path.join(tmp, f"cg.{server.name}.{seconds}")
        server.start(cpus, wrapper=("valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                                    "--trace-children=no"))
        completed, _, _, _ = dnsperf(server.port, qfile, seconds, 2000, "1", 1)
        server.stop()
        ir = 0
        for fn in os.listdir(tmp):
            if fn.startswith(os.path.basename(out)):
                with open(os.path.join(tmp, fn)) as f:
                    for line in f:
                        if line.startswith("summary:") or line.startswith("totals:"):
                            ir = max(ir, int(line.split()[1]))
        totals.append((completed, ir))
    (q1, i1), (q2, i2) = totals
    return (i2 - i1) / max(q2 - q1, 1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(HERE, "..", "build"))
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--servers", default="zonejet,null,gdnsd,knot,nsd")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--server-cpus", default="0")
    ap.add_argument("--client-cpus", default="1")
    ap.add_argument("--rates", default="50000,0", help="offered q/s; 0 = dnsperf's maximum")
    ap.add_argument("--callgrind", action="store_true")
    args = ap.parse_args()
    names = args.servers.split(",")
    threads = len(expand_cpus(args.client_cpus))
    tmp = tempfile.mkdtemp(prefix="zjbench.")
    zone = os.path.join(tmp, "bench.zone")
    qfile = os.path.join(tmp, "queries.txt")
    gen_zone(zone)
    gen_queries(qfile)
    servers = make_servers(names, os.path.abspath(args.build), tmp, zone, args.workers)
    rates = [int(r) for r in args.rates.split(",")]
    results = {}
    try:
        for name in names:
            s = servers[name]
            s.start(args.server_cpus)
            dnsperf(s.port, qfile, 2, 0, args.client_cpus, threads)  # warm-up
            for rate in rates:
                runs = [measure(s, qfile, args.seconds, rate, args.client_cpus, threads)
                        for _ in range(args.runs)]
                results[(name, rate)] = {k: statistics.median(r[k] for r in runs)
                                         for k in runs[0]}
            s.stop()
        ipq = {}
        if args.callgrind:
            for name in ("zonejet", "gdnsd", "knot"):
                if name in servers:
                    if name == "zonejet":
                        servers[name].argv += ["--io", "mmsg"]
                    ipq[name] = callgrind_ipq(servers[name], qfile, tmp, args.server_cpus)
    finally:
        for s in servers.values():
            s.stop()
    hdr = "| server | " + " | ".join(
        f"CPU/query @ {'max' if r == 0 else f'{r // 1000}k q/s'} | q/s | avg latency | lost"
        for r in rates) + " | instr/query |"
    print(hdr)
    print("|" + "---|" * (2 + 4 * len(rates)))
    for name in names:
        cells = []
        for r in rates:
            m = results[(name, r)]
            cells += [f"{m['us_per_q']:.2f} µs", f"{m['qps']:.0f}", f"{m['lat_ms']:.3f} ms",
                      f"{m['lost']:.0f}"]
        cg = f"{ipq[name]:.0f}" if name in ipq else "-"
        print(f"| {name} | " + " | ".join(cells) + f" | {cg} |")
    if "gdnsd" in names and "zonejet" in names:
        for r in rates:
            ratio = results[("zonejet", r)]["us_per_q"] / results[("gdnsd", r)]["us_per_q"]
            print(f"zonejet/gdnsd CPU per query @ {'max' if r == 0 else r}: {ratio:.2f}x")
    if "null" in names and "zonejet" in names:
        for r in rates:
            ratio = results[("zonejet", r)]["us_per_q"] / results[("null", r)]["us_per_q"]
            print(f"zonejet/null-echo CPU per query @ {'max' if r == 0 else r}: {ratio:.2f}x")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
