#!/usr/bin/env bash
# Hot-swap benchmark: zonejetd `zonejet-ctl reload` against Knot's `knotc zone-reload`, on the
# same zones in the same run.
#
# Zones: one big zone (RECORDS records, bench/gen_zone.py, big.example.) and four small zones
# (s0..s3.bench.), each in its own image for zonejetd (served through a symlink that is
# re-pointed at the next precompiled version) and its own zone file for Knot (replaced by a
# rename). Both servers run pinned to CPU 0 (one UDP worker); dnsperf runs pinned to CPU 1.
#
# Reported per server:
#   - steady RSS and PSS of the server (from /proc/PID/smaps_rollup);
#   - swap of a small zone (SMALL_SWAPS times) and of the big zone (BIG_SWAPS times): time from
#     starting the reload command (zonejet-ctl / knotc: process start-up included, and shown
#     apart) to the first answer carrying the changed record (a UDP poll loop on one record);
#     for zonejetd every other swap instead writes the same request straight to the control
#     socket, which times the server alone; peak RSS/PSS while swapping (smaps_rollup sampled
#     in a tight loop by a separate process), and RSS/PSS 1 s after;
#   - queries lost by dnsperf (fixed rate RATE q/s) during SWAPS reloads (every 4th of the big
#     zone, the others of s0), and in a baseline run of the same length without reloads.
# For zonejetd the reload reply's own split (open+validate, publish+quiesce) is shown too.
#
# usage: bench/swap.sh [BUILD_DIR] [RECORDS] [SWAPS]
#   env: RATE (default 20000), SMALL_SWAPS (10), BIG_SWAPS (3), SERVERS (zonejet,knot)
# Needs: dnsperf, knotd/knotc (Debian knot), python3-dnspython, taskset, 2+ CPUs.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:-$here/../build}" && pwd)
records=${2:-1000000}
swaps=${3:-20}
tmp=$(mktemp -d /tmp/zj-swap.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
/usr/bin/python3 - "$build" "$tmp" "$records" "$swaps" "$here" <<'PY'
import os, re, signal, socket, statistics, struct, subprocess, sys, time

build, tmp, records, swaps, here = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
RATE = int(os.environ.get("RATE", "20000"))
SMALL_SWAPS = int(os.environ.get("SMALL_SWAPS", "10"))
BIG_SWAPS = int(os.environ.get("BIG_SWAPS", "3"))
SERVERS = os.environ.get("SERVERS", "zonejet,knot").split(",")
COMPILE = os.path.join(build, "zonejet-compile")
ZONEJETD = os.path.join(build, "zonejetd")
CTL = os.path.join(build, "zonejet-ctl")
SMALL = [f"s{i}.bench." for i in range(4)]
BIG = "big.example."
sys.path.insert(0, here)
from compare import free_port  # noqa: E402  (one free-port helper for the bench scripts)
N_SMALL_VERSIONS = SMALL_SWAPS + swaps + 2
N_BIG_VERSIONS = 2  # the big zone alternates between two versions (serial still increases
                    # for Knot: see big_text)


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# ---- zones ----------------------------------------------------------------------------------

def small_text(origin, k):
    return (f"$ORIGIN {origin}\n$TTL 300\n@ SOA ns1 hostmaster {k} 7200 3600 1209600 300\n"
            f"@ NS ns1\nns1 A 192.0.2.1\nwww A 10.9.{k // 256}.{k % 256}\n"
            + "".join(f"h{i} A 10.8.0.{i}\n" for i in range(50)))


def replace_file(path, text):
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


def repoint(link, target):
    tmpl = link + ".tmp"
    if os.path.lexists(tmpl):
        os.unlink(tmpl)
    os.symlink(os.path.basename(target), tmpl)
    os.replace(tmpl, link)


zd = os.path.join(tmp, "zones")
os.makedirs(zd)
t = time.monotonic()
big1 = os.path.join(zd, "big.1.zone")
subprocess.run([sys.executable, os.path.join(here, "gen_zone.py"), str(records), big1, BIG], check=True)
with open(big1) as f:
    text1 = f.read()
# version 2: a changed serial and a changed ns1 address (the polled record)
text2 = text1.replace("hostmaster 1 ", "hostmaster 2 ", 1).replace("ns1 A 192.0.2.1", "ns1 A 192.0.2.2", 1)
big2 = os.path.join(zd, "big.2.zone")
with open(big2, "w") as f:
    f.write(text2)
log(f"generated {records} records in {time.monotonic() - t:.1f} s")


def big_addr(k):  # what ns1.big.example. answers in version k
    return bytes([192, 0, 2, 1 if k % 2 == 1 else 2])


def small_addr(k):
    return bytes([10, 9, k // 256, k % 256])


# ---- measuring ------------------------------------------------------------------------------

SAMPLER = r'''
import os, re, signal, sys
os.nice(19)  # yield to the reload command and the poller on a 2-CPU machine
pid = int(sys.argv[1]); stop = False
def h(*a):
    global stop; stop = True
signal.signal(signal.SIGTERM, h)
peak_rss = peak_pss = n = 0
print("ready", flush=True)
while not stop:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            t = f.read()
    except OSError:
        break
    rss = int(re.search(r"^Rss:\s+(\d+)", t, re.M).group(1))
    pss = int(re.search(r"^Pss:\s+(\d+)", t, re.M).group(1))
    peak_rss = max(peak_rss, rss); peak_pss = max(peak_pss, pss); n += 1
print(peak_rss, peak_pss, n, flush=True)
'''


def mem(pid):
    with open(f"/proc/{pid}/smaps_rollup") as f:
        t = f.read()
    rss = int(re.search(r"^Rss:\s+(\d+)", t, re.M).group(1))
    pss = int(re.search(r"^Pss:\s+(\d+)", t, re.M).group(1))
    return rss / 1024.0, pss / 1024.0


class Sampler:
    def __init__(self, pid):
        self.p = subprocess.Popen([sys.executable, "-c", SAMPLER, str(pid)], stdout=subprocess.PIPE, text=True)
        self.p.stdout.readline()

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        out = self.p.stdout.read().split()
        self.p.wait()
        return int(out[0]) / 1024.0, int(out[1]) / 1024.0, int(out[2])


def query_wire(name, qtype=1, qid=0x4242):
    q = struct.pack("!HHHHHH", qid, 0, 1, 0, 0, 0)
    for label in name.rstrip(".").split("."):
        q += bytes([len(label)]) + label.encode()
    return q + b"\x00" + struct.pack("!HH", qtype, 1)


class Command:
    """A reload started as a process (zonejet-ctl, knotc)."""

    def __init__(self, argv):
        self.argv = argv
        self.p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def finish(self):
        out = self.p.communicate()[0]
        if self.p.returncode != 0:
            raise RuntimeError(f"{' '.join(self.argv)}: exit {self.p.returncode}: {out}")
        return out


class ControlRequest:
    """The same reload request zonejet-ctl sends, written straight to the control socket (no
    process start-up in the measured time)."""

    def __init__(self, sock_path, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.connect(sock_path)
        self.s.sendall(f"reload\n{path}\n\n".encode())
        self.s.shutdown(socket.SHUT_WR)

    def finish(self):
        out = b""
        while True:
            chunk = self.s.recv(65536)
            if not chunk:
                break
            out += chunk
        self.s.close()
        text = out.decode()
        if not text.startswith("ok"):
            raise RuntimeError(f"reload failed: {text}")
        return text


# Pause between two polls: keeps the poller from starving the reload on a 2-CPU machine while
# bounding the measurement's resolution.
POLL_GAP_S = 0.0002


def first_new_answer(port, name, want, start, timeout=120.0):
    """Start the reload (start() returns a Command or ControlRequest) and poll name/A over UDP
    until an answer holds `want`. Returns (seconds from the start to that answer, the reply)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(1.0)
    q = query_wire(name)
    t0 = time.monotonic()
    req = start()
    found = None
    while time.monotonic() - t0 < timeout:
        s.sendto(q, ("127.0.0.1", port))
        try:
            data, _ = s.recvfrom(4096)
        except socket.timeout:
            continue
        if want in data[12:]:
            found = time.monotonic() - t0
            break
        time.sleep(POLL_GAP_S)
    out = req.finish()
    s.close()
    if found is None:
        raise RuntimeError(f"{name}: new data not served within {timeout} s")
    return found, out


def dnsperf(port, qfile, seconds):
    argv = ["taskset", "-c", "1", "dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", qfile,
            "-l", str(seconds), "-c", "1", "-T", "1", "-q", "500", "-t", "2", "-Q", str(RATE),
            "-b", "4096"]  # 4 MiB socket buffers: a client that loses answers measures itself
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def udp_errors():
    """System-wide UDP receive-buffer overflows (/proc/net/snmp RcvbufErrors)."""
    with open("/proc/net/snmp") as f:
        rows = [line.split() for line in f if line.startswith("Udp:")]
    return int(rows[1][rows[0].index("RcvbufErrors")])


def server_udp(srv):
    """zonejetd's own (udp_rx, udp_tx) counters, or None for other servers."""
    if not hasattr(srv, "sock"):
        return None
    out = subprocess.run([CTL, "--control", srv.sock, "stats"], capture_output=True, text=True).stdout
    get = lambda k: int(re.search(rf"^{k} (\d+)", out, re.M).group(1))
    return get("udp_rx"), get("udp_tx")


def dnsperf_result(p, errs_before, srv, udp_before):
    out = p.communicate()[0]
    sent = int(re.search(r"Queries sent:\s+(\d+)", out).group(1))
    lost = int(re.search(r"Queries lost:\s+(\d+)", out).group(1))
    udp = server_udp(srv)
    seen = (udp[0] - udp_before[0], udp[1] - udp_before[1]) if udp else None
    return sent, lost, udp_errors() - errs_before, seen


qfile = os.path.join(tmp, "queries")
with open(qfile, "w") as f:
    import random
    rnd = random.Random(5)
    for _ in range(100000):
        r = rnd.random()
        if r < 0.7:
            f.write(f"h{rnd.randrange(records)}.{BIG} A\n")
        else:
            f.write(f"{'www' if r < 0.85 else 'h' + str(rnd.randrange(50))}.{rnd.choice(SMALL)} A\n")


def wait_ready(port, proc, name, timeout=300):
    t0 = time.monotonic()
    q = query_wire(name, qtype=6)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(0.2)
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError("server died during start-up")
        try:
            s.sendto(q, ("127.0.0.1", port))
            data, _ = s.recvfrom(4096)
            if (data[3] & 0xF) == 0 and data[7] >= 1:
                return time.monotonic() - t0
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError("server not ready")


# ---- the two servers ------------------------------------------------------------------------

class Zonejet:
    name = "zonejetd"

    def __init__(self):
        self.d = os.path.join(tmp, "zj")
        os.makedirs(self.d)
        t = time.monotonic()
        for k in (1, 2):
            subprocess.run([COMPILE, "-q", "-o", os.path.join(self.d, f"big.{k}.img"),
                            big1 if k == 1 else big2], check=True)
        log(f"zonejet: compiled the big zone twice in {time.monotonic() - t:.1f} s")
        for z in SMALL:
            for k in range(1, N_SMALL_VERSIONS + 1):
                src = os.path.join(self.d, f"{z}{k}.zone")
                with open(src, "w") as f:
                    f.write(small_text(z, k))
                subprocess.run([COMPILE, "-q", "-o", os.path.join(self.d, f"{z}{k}.img"), src], check=True)
                os.unlink(src)
        self.links = {BIG: os.path.join(self.d, "big.img")}
        repoint(self.links[BIG], os.path.join(self.d, "big.1.img"))
        for z in SMALL:
            self.links[z] = os.path.join(self.d, f"{z}img")
            repoint(self.links[z], os.path.join(self.d, f"{z}1.img"))
        self.sock = os.path.join(self.d, "ctl.sock")
        self.port = free_port()
        args = [ZONEJETD, "--listen", f"127.0.0.1:{self.port}", "--control", self.sock]
        for link in self.links.values():
            args += ["--image", link]
        self.log = open(os.path.join(self.d, "log"), "w")
        self.proc = subprocess.Popen(["taskset", "-c", "0", *args], stdout=self.log, stderr=subprocess.STDOUT)
        self.startup = wait_ready(self.port, self.proc, BIG)

    def stage(self, zone, k):
        target = f"big.{2 - k % 2}.img" if zone == BIG else f"{zone}{k}.img"
        repoint(self.links[zone], os.path.join(self.d, target))

    def reload_cmd(self, zone):
        return [CTL, "--control", self.sock, "reload", self.links[zone]]

    def reload_direct(self, zone):
        return ControlRequest(self.sock, self.links[zone])

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(30)


class Knot:
    name = "knotd"

    def __init__(self):
        self.d = os.path.join(tmp, "knot")
        os.makedirs(self.d)
        self.files = {BIG: os.path.join(self.d, "big.zone")}
        with open(self.files[BIG], "w") as f:
            f.write(text1)
        for z in SMALL:
            self.files[z] = os.path.join(self.d, f"{z}zone")
            with open(self.files[z], "w") as f:
                f.write(small_text(z, 1))
        self.port = free_port()
        self.conf = os.path.join(self.d, "knot.conf")
        with open(self.conf, "w") as f:
            f.write(f"server:\n  rundir: {self.d}\n  listen: 127.0.0.1@{self.port}\n"
                    "  udp-workers: 1\n  tcp-workers: 1\n  background-workers: 1\n"
                    f"database:\n  storage: {self.d}\n"
                    f"template:\n  - id: default\n    storage: {self.d}\n"
                    "    zonefile-load: whole\n    zonefile-sync: -1\n    journal-content: none\n"
                    "    semantic-checks: off\n"
                    "zone:\n" + "".join(f"  - domain: {z}\n    file: {p}\n" for z, p in self.files.items()))
        self.log = open(os.path.join(self.d, "log"), "w")
        self.proc = subprocess.Popen(["taskset", "-c", "0", "knotd", "-c", self.conf],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        self.startup = wait_ready(self.port, self.proc, BIG)

    def stage(self, zone, k):
        if zone == BIG:
            # Knot wants a higher serial to take a reloaded zone as new: bump it every time.
            text = (text1 if k % 2 == 1 else text2).replace("hostmaster 1 ", f"hostmaster {k} ", 1) \
                .replace("hostmaster 2 ", f"hostmaster {k} ", 1)
            replace_file(self.files[BIG], text)
        else:
            replace_file(self.files[zone], small_text(zone, k))

    def reload_cmd(self, zone):
        return ["knotc", "-c", self.conf, "zone-reload", zone]

    reload_direct = None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(60)


def swaps_of(srv, zone, name, addr_of, ks, settle):
    """Swap zone through versions ks; returns (ms via command, ms via control socket or [],
    peak RSS, peak PSS, (RSS, PSS) 1 s after, [(open+validate, publish+quiesce)])."""
    pid = srv.proc.pid
    lat_cmd, lat_direct, peaks, split = [], [], [], []
    for i, k in enumerate(ks):
        srv.stage(zone, k)
        direct = srv.reload_direct is not None and i % 2 == 1
        start = (lambda: srv.reload_direct(zone)) if direct else (lambda: Command(srv.reload_cmd(zone)))
        sm = Sampler(pid)
        dt, out = first_new_answer(srv.port, name, addr_of(k), start)
        time.sleep(settle)
        peaks.append(sm.stop())
        (lat_direct if direct else lat_cmd).append(dt * 1000)
        m = re.search(r"open\+validate ([0-9.]+) ms, publish\+quiesce ([0-9.]+) ms", out)
        if m:
            split.append((float(m.group(1)), float(m.group(2))))
        time.sleep(settle)
    time.sleep(1.0)
    return (lat_cmd, lat_direct, max(p[0] for p in peaks), max(p[1] for p in peaks), mem(pid), split)


def run(cls):
    srv = cls()
    try:
        return run_on(srv)
    finally:
        srv.stop()


def run_on(srv):
    pid = srv.proc.pid
    res = {"startup_s": srv.startup}
    time.sleep(1.0)
    res["steady"] = mem(pid)
    res["small"] = swaps_of(srv, SMALL[0], f"www.{SMALL[0]}", small_addr,
                            range(2, SMALL_SWAPS + 2), 0.05)
    res["big"] = swaps_of(srv, BIG, f"ns1.{BIG}", big_addr, range(2, BIG_SWAPS + 2), 0.5)
    big_k = BIG_SWAPS + 1
    # loss under load: baseline, then SWAPS reloads spread over the run
    seconds = max(10, swaps // 2 + 4)
    errs, udp = udp_errors(), server_udp(srv)
    res["baseline"] = dnsperf_result(dnsperf(srv.port, qfile, seconds), errs, srv, udp)
    errs, udp = udp_errors(), server_udp(srv)
    p = dnsperf(srv.port, qfile, seconds)
    time.sleep(1.0)
    small_k = SMALL_SWAPS + 1
    t_start = time.monotonic()
    interval = (seconds - 3.0) / swaps
    for i in range(swaps):
        if i % 4 == 3:
            big_k += 1
            srv.stage(BIG, big_k)
            cmd = srv.reload_cmd(BIG)
        else:
            small_k += 1
            srv.stage(SMALL[0], small_k)
            cmd = srv.reload_cmd(SMALL[0])
        subprocess.run(cmd, check=True, capture_output=True)
        next_t = t_start + (i + 1) * interval
        time.sleep(max(0.0, next_t - time.monotonic()))
    res["swapload"] = dnsperf_result(p, errs, srv, udp)
    time.sleep(1.0)
    res["final"] = mem(pid)
    return res


def fmt_ms(v):
    return f"median {statistics.median(v):.2f} ms, max {max(v):.2f} ms (n={len(v)})"


spawn = []
for _ in range(5):
    t = time.monotonic()
    subprocess.run(["/bin/true"])
    spawn.append((time.monotonic() - t) * 1000)


results = {}
for name in SERVERS:
    log(f"--- {name} ---")
    results[name] = run(Zonejet if name == "zonejet" else Knot)

print(f"zones: {BIG} with {records} records + {len(SMALL)} small zones (56 records each); "
      f"server on CPU 0, dnsperf on CPU 1 at {RATE} q/s")
print(f"process start-up on this machine (/bin/true from Python): median "
      f"{statistics.median(spawn):.2f} ms; it is inside every 'start -> first new answer' figure")
for name, r in results.items():
    print(f"\n== {'zonejetd' if name == 'zonejet' else 'knotd'} ==")
    print(f"start-up to first answer  {r['startup_s']:.2f} s")
    print(f"steady                    RSS {r['steady'][0]:.1f} MiB, PSS {r['steady'][1]:.1f} MiB")
    for label, key in (("small-zone swap", "small"), ("big-zone swap", "big")):
        lat, lat_direct, prss, ppss, after, split = r[key]
        tool = "zonejet-ctl" if name == "zonejet" else "knotc"
        print(f"{label:<26}{tool} start -> first new answer: {fmt_ms(lat)}")
        if lat_direct:
            print(f"{'':<26}request on the control socket -> first new answer: {fmt_ms(lat_direct)}")
        if split:
            print(f"{'':<26}server: open+validate median {statistics.median(s[0] for s in split):.3f} ms, "
                  f"publish+quiesce median {statistics.median(s[1] for s in split):.3f} ms")
        print(f"{'':<26}peak RSS {prss:.1f} MiB ({prss / r['steady'][0]:.2f}x steady), "
              f"peak PSS {ppss:.1f} MiB ({ppss / r['steady'][1]:.2f}x)")
        print(f"{'':<26}1 s after: RSS {after[0]:.1f} MiB, PSS {after[1]:.1f} MiB")
    b, w = r["baseline"], r["swapload"]
    srv_b = f"; server received {b[3][0]}, answered {b[3][1]}" if b[3] else ""
    srv_w = f"; server received {w[3][0]}, answered {w[3][1]}" if w[3] else ""
    print(f"dnsperf, no reloads       sent {b[0]}, lost {b[1]} (UDP receive-buffer overflows, "
          f"system-wide: {b[2]}{srv_b})")
    print(f"dnsperf, {swaps} reloads{' ' * max(0, 6 - len(str(swaps)))}sent {w[0]}, lost {w[1]} "
          f"(overflows {w[2]}{srv_w}; every 4th reload the big zone)")
    print(f"final                     RSS {r['final'][0]:.1f} MiB, PSS {r['final'][1]:.1f} MiB")
PY
