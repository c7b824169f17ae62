"""Bounded soak of zonejetd (run through bench/soak.sh; see there for usage).

Starts zonejetd (one worker, pinned to --server-cpu) on an image compiled from the bundled zones,
then for --minutes runs at once:
- dnsperf at full load (no QPS cap, 500 outstanding), pinned to --load-cpu, on a query mix read
  from the zones (hits, NXDOMAIN, wildcard, referral, big TXT, ANY, out-of-zone REFUSED);
- a sender of the hostile catalogue (tests/integration/test_hostile.py) over UDP at
  --hostile-pps, one hostile TCP connection every 0.25 s (the catalogue's TCP inputs in turn) and
  up to 40 stalled TCP connections (huge length prefix, then nothing) replaced as the server
  closes them;
- if `zonejet-ctl --control SOCK reload` works, a reload every second: example.com is recompiled
  alternately with SOA serial S and S+1 into a new file renamed over the served image, and the
  served serial is checked after each reload.
This process and its threads stay on --load-cpu. At the end it reports dnsperf's sent/completed/
lost, zonejetd's VmRSS at start, after warm-up and at the end, whether it is alive and answering
(UDP and TCP), crashes (must be 0) and its exit code on SIGTERM (must be 0). Exit status 0 only
if all of those hold and no reload failed. All traffic goes to 127.0.0.1.
"""

import argparse
import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
IT = REPO / "tests" / "integration"


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0, help="load duration (default 10)")
    ap.add_argument("--build", default=os.environ.get("ZJ_BUILD_DIR", str(REPO / "build")),
                    help="build directory with zonejetd, zonejet-compile, zonejet-ctl")
    ap.add_argument("--io", default="auto", help="zonejetd --io (auto, uring, mmsg)")
    ap.add_argument("--server-cpu", type=int, default=0)
    ap.add_argument("--load-cpu", type=int, default=1)
    ap.add_argument("--hostile-pps", type=float, default=200.0,
                    help="hostile UDP packets per second (default 200)")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    a = ap.parse_args()
    if not 0 < a.minutes <= 24 * 60:
        ap.error("--minutes must be in (0, 1440]")
    return a


ARGS = parse_args()
os.environ["ZJ_BUILD_DIR"] = str(Path(ARGS.build).resolve())
sys.path.insert(0, str(IT))
import dns.message  # noqa: E402
import dns.rcode  # noqa: E402
import dns.zone  # noqa: E402

import zjtest  # noqa: E402
from test_hostile import CATALOGUE  # noqa: E402

BIN = Path(os.environ["ZJ_BUILD_DIR"])
ZONEJETD, COMPILER, CTL = BIN / "zonejetd", BIN / "zonejet-compile", BIN / "zonejet-ctl"
SERIAL_RE = re.compile(r"(\d+)(\s*;\s*serial)")


def log(msg):
    print(f"[soak {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def vmrss_kib(pid):
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


# --------------------------------------------------------------------------------------------
# zones, images, queries

def make_zone_versions(work):
    """Two copies of the bundled zones differing only in example.com's SOA serial."""
    src = (zjtest.ZONES_DIR / "example.com.zone").read_text()
    m = SERIAL_RE.search(src)
    serial = int(m.group(1))
    versions = []
    for i, s in enumerate((serial, serial + 1)):
        d = work / f"zones-{'ab'[i]}"
        d.mkdir()
        for p in zjtest.BUNDLED.values():
            shutil.copy(p, d / p.name)
        (d / "example.com.zone").write_text(SERIAL_RE.sub(rf"{s}\2", src, count=1))
        versions.append((s, sorted(d.glob("*.zone"))))
    return versions


def compile_to(out, files):
    tmp = out.with_suffix(".tmp")
    p = subprocess.run([str(COMPILER), "-o", str(tmp), *map(str, files)], capture_output=True,
                       text=True, timeout=60)
    if p.returncode != 0:
        raise RuntimeError(f"zonejet-compile failed ({p.returncode}): {p.stderr.strip()}")
    os.replace(tmp, out)  # the served path always names a whole image


def write_queries(path):
    """dnsperf input: every (owner, type) of the zones, plus misses, wildcards, ANY, REFUSED."""
    rnd = random.Random(20240101)
    lines = []
    for origin, zpath in zjtest.BUNDLED.items():
        z = dns.zone.from_file(str(zpath), origin, relativize=False)
        for name, node in z.nodes.items():
            for rds in node:
                lines.append(f"{name} {dns.rdatatype.to_text(rds.rdtype)}")
        lines += [f"nx{rnd.randrange(10**6)}.{origin} A" for _ in range(20)]
    lines += [f"q{i}.wild.example.com. TXT" for i in range(10)]
    lines += ["example.com. ANY", "huge.example.com. TXT", "www.example.org. A",
              "deep.below.other.example.com. A"] * 3
    rnd.shuffle(lines)
    path.write_text("\n".join(lines) + "\n")
    return len(lines)


# --------------------------------------------------------------------------------------------
# checks against the running server

def query(port, name, rdtype, tcp=False, timeout=1.0):
    q = dns.message.make_query(name, rdtype, use_edns=False)
    c = zjtest.Client(port=port)
    w = c.exchange(q.to_wire(), tcp=tcp, timeout=timeout)
    return dns.message.from_wire(w) if w else None


def served_serial(port):
    r = query(port, "example.com.", "SOA")
    if r is None or r.rcode() != dns.rcode.NOERROR or not r.answer:
        return None
    return r.answer[0][0].serial


def answering(port):
    out = {}
    for tcp in (False, True):
        try:
            r = query(port, "web.example.com.", "A", tcp=tcp, timeout=2.0)
            out["tcp" if tcp else "udp"] = bool(r and r.rcode() == dns.rcode.NOERROR and r.answer)
        except OSError:
            out["tcp" if tcp else "udp"] = False
    return out


def ctl(sock, *cmd, timeout=10):
    p = subprocess.run([str(CTL), "--control", str(sock), *cmd], capture_output=True, text=True,
                       timeout=timeout)
    return p.returncode, (p.stdout + p.stderr).strip()


# --------------------------------------------------------------------------------------------
# load generators (threads; they stop when `stop` is set)

class Counters:
    def __init__(self):
        self.lock = threading.Lock()
        self.c = {}

    def add(self, key, n=1):
        with self.lock:
            self.c[key] = self.c.get(key, 0) + n


def hostile_udp(port, pps, stop, cnt):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setblocking(False)
    i, t0 = 0, time.monotonic()
    try:
        while not stop.is_set():
            due = t0 + i / pps
            now = time.monotonic()
            if now < due:
                stop.wait(min(due - now, 0.05))
            else:
                h = CATALOGUE[i % len(CATALOGUE)]
                try:
                    s.sendto(h.wire, ("127.0.0.1", port))
                    cnt.add("hostile_udp_sent")
                except OSError:
                    cnt.add("hostile_udp_send_errors")
                i += 1
            while True:
                try:
                    s.recv(65535)
                    cnt.add("hostile_udp_responses")
                except (BlockingIOError, ConnectionRefusedError):
                    break
    finally:
        s.close()


def hostile_tcp(port, stop, cnt):
    tcp_cases = [h for h in CATALOGUE if h.tcp is not None]
    stalled = []
    i = 0
    while not stop.wait(0.25):
        h = tcp_cases[i % len(tcp_cases)]
        i += 1
        w = h.tcp_wire or h.wire
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=1.0)
            try:
                s.settimeout(0.3)
                s.sendall(struct.pack("!H", len(w)) + w)
                cnt.add("hostile_tcp_sent")
                if zjtest.read_tcp_msg(s) is not None:
                    cnt.add("hostile_tcp_responses")
            except (socket.timeout, ConnectionError):
                pass
            finally:
                s.close()
        except OSError:
            cnt.add("hostile_tcp_connect_errors")
        # stalled connections: keep up to 40, replace the ones the server closed
        live = []
        for st in stalled:
            try:
                st.setblocking(False)
                if st.recv(1) == b"":
                    cnt.add("stalled_closed_by_server")
                    st.close()
                    continue
            except BlockingIOError:
                pass
            except OSError:
                cnt.add("stalled_closed_by_server")
                st.close()
                continue
            live.append(st)
        stalled = live
        if len(stalled) < 40:
            try:
                st = socket.create_connection(("127.0.0.1", port), timeout=1.0)
                st.sendall(b"\xff\xff")
                stalled.append(st)
                cnt.add("stalled_opened")
            except OSError:
                cnt.add("hostile_tcp_connect_errors")
    for st in stalled:
        st.close()


def reloader(port, sock, image, versions, stop, cnt, problems):
    k = 1  # the version to serve next (version 0 is being served)
    t0, slot = time.monotonic(), 1
    while not stop.wait(max(0.0, t0 + slot - time.monotonic())):  # on a 1 s grid
        slot = max(slot + 1, int(time.monotonic() - t0) + 1)  # skip slots a slow reload used
        serial, files = versions[k % 2]
        try:
            compile_to(image, files)
            rc, out = ctl(sock, "reload")
        except (RuntimeError, subprocess.TimeoutExpired) as e:
            rc, out = -1, str(e)
        if rc != 0 or "error" in out.lower():
            cnt.add("reload_failed")
            if len(problems) < 5:
                problems.append(f"reload {k}: rc {rc}: {out[-200:]}")
            continue
        cnt.add("reload_ok")
        got = served_serial(port)
        cnt.add("serial_ok" if got == serial else "serial_mismatch")
        k += 1


# --------------------------------------------------------------------------------------------

def parse_dnsperf(text):
    out = {}
    for key, pat in (("sent", r"Queries sent:\s+(\d+)"),
                     ("completed", r"Queries completed:\s+(\d+)"),
                     ("lost", r"Queries lost:\s+(\d+)"),
                     ("qps", r"Queries per second:\s+([\d.]+)"),
                     ("latency_avg_s", r"Average Latency \(s\):\s+([\d.]+)")):
        m = re.search(pat, text)
        out[key] = m.group(1) if m else "?"
    return out


def main():
    for tool in ("dnsperf", "taskset"):
        if shutil.which(tool) is None:
            sys.exit(f"soak: {tool} not found (apt-get install {tool})")
    for b in (ZONEJETD, COMPILER, CTL):
        if not b.is_file():
            sys.exit(f"soak: {b} not found (build first, or pass --build DIR)")
    ncpu = os.cpu_count() or 1
    if max(ARGS.server_cpu, ARGS.load_cpu) >= ncpu:
        sys.exit(f"soak: --server-cpu/--load-cpu must be < {ncpu}")
    if ARGS.server_cpu == ARGS.load_cpu:
        log("warning: server and load share a CPU")
    os.sched_setaffinity(0, {ARGS.load_cpu})
    secs = max(1, int(round(ARGS.minutes * 60)))

    work = Path(tempfile.mkdtemp(prefix="zj-soak-"))
    ok = False
    proc = None
    try:
        versions = make_zone_versions(work)
        image = work / "served.img"
        compile_to(image, versions[0][1])
        qfile = work / "queries.txt"
        n_q = write_queries(qfile)
        sock = work / "ctl.sock"
        port = zjtest.free_port()
        extra, missing = zjtest.split_flags([("--tcp-idle-ms", 3000),
                                             ("--tcp-msg-timeout-ms", 1000)])
        cmd = ["taskset", "-c", str(ARGS.server_cpu), str(ZONEJETD),
               "--listen", f"127.0.0.1:{port}", "--image", str(image), "--workers", "1",
               "--io", ARGS.io, "--control", str(sock), *extra]
        srv_log = open(work / "zonejetd.log", "wb")
        proc = subprocess.Popen(cmd, stdout=srv_log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while served_serial(port) is None:
            if proc.poll() is not None or time.monotonic() > deadline:
                log_text = (work / "zonejetd.log").read_text()
                raise RuntimeError(f"zonejetd did not start:\n{log_text}")
            time.sleep(0.05)
        rss_start = vmrss_kib(proc.pid)
        log(f"zonejetd pid {proc.pid} on cpu {ARGS.server_cpu}, port {port}, "
            f"{' '.join(extra) or 'no optional flags'}"
            + (f" (not supported yet: {', '.join(sorted(missing))})" if missing else ""))

        rc, out = ctl(sock, "reload")
        can_reload = rc == 0 and "error" not in out.lower()
        log("reloads: every 1 s" if can_reload else f"reloads: skipped ({out or rc})")

        stop = threading.Event()
        cnt = Counters()
        problems = []
        threads = [threading.Thread(target=hostile_udp, args=(port, ARGS.hostile_pps, stop, cnt)),
                   threading.Thread(target=hostile_tcp, args=(port, stop, cnt))]
        if can_reload:
            threads.append(threading.Thread(target=reloader, args=(
                port, sock, image, versions, stop, cnt, problems)))
        for t in threads:
            t.daemon = True
            t.start()

        log(f"dnsperf on cpu {ARGS.load_cpu} for {secs} s ({n_q} query lines), "
            f"hostile {ARGS.hostile_pps:g} pkt/s UDP + 4 conn/s TCP")
        perf = subprocess.Popen(
            ["taskset", "-c", str(ARGS.load_cpu), "dnsperf", "-s", "127.0.0.1", "-p", str(port),
             "-d", str(qfile), "-l", str(secs), "-c", "8", "-T", "1", "-q", "500", "-t", "2"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        rss_warm, rss_max, crashed_at = None, 0, None
        t_start = time.monotonic()
        while perf.poll() is None:
            time.sleep(0.5)
            r = vmrss_kib(proc.pid)
            if r:
                rss_max = max(rss_max, r)
                if rss_warm is None and time.monotonic() - t_start >= min(10, secs / 6):
                    rss_warm = r
            if proc.poll() is not None and crashed_at is None:
                crashed_at = time.monotonic() - t_start
                log(f"zonejetd died after {crashed_at:.1f} s with {proc.returncode}")
                perf.terminate()
            if time.monotonic() - t_start > secs + 60:
                perf.kill()
                log("dnsperf overran its time limit; killed")
        perf_out = perf.communicate()[0]
        stop.set()
        for t in threads:
            t.join(15)
        rss_end = vmrss_kib(proc.pid)
        alive = proc.poll() is None
        ans = answering(port) if alive else {"udp": False, "tcp": False}
        stats = ctl(sock, "stats")[1] if alive else ""

        term_rc = None
        if alive:
            proc.send_signal(signal.SIGTERM)
            try:
                term_rc = proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                term_rc = "ignored SIGTERM for 10 s (killed)"
        crashes = 0 if crashed_at is None else 1

        d = parse_dnsperf(perf_out)
        c = cnt.c
        print()
        print("=== zonejet soak report ===")
        print(f"duration           {secs} s of load ({ARGS.minutes:g} min), io {ARGS.io}, "
              f"server cpu {ARGS.server_cpu}, load cpu {ARGS.load_cpu}")
        print(f"dnsperf            sent {d['sent']}, completed {d['completed']}, lost {d['lost']}, "
              f"{d['qps']} qps, avg latency {d['latency_avg_s']} s")
        print(f"hostile UDP        sent {c.get('hostile_udp_sent', 0)}, responses "
              f"{c.get('hostile_udp_responses', 0)}")
        print(f"hostile TCP        sent {c.get('hostile_tcp_sent', 0)}, responses "
              f"{c.get('hostile_tcp_responses', 0)}, connect errors "
              f"{c.get('hostile_tcp_connect_errors', 0)}; stalled opened "
              f"{c.get('stalled_opened', 0)}, closed by server "
              f"{c.get('stalled_closed_by_server', 0)}")
        if can_reload:
            print(f"reloads            ok {c.get('reload_ok', 0)}, failed "
                  f"{c.get('reload_failed', 0)}; served serial as expected "
                  f"{c.get('serial_ok', 0)}, mismatched {c.get('serial_mismatch', 0)}")
            for p in problems:
                print(f"  {p}")
        else:
            print("reloads            not run (zonejet-ctl reload not supported by this build)")
        print(f"VmRSS              start {rss_start} KiB, after warm-up {rss_warm} KiB, "
              f"end {rss_end} KiB, max {rss_max} KiB")
        print(f"alive at end       {alive}; answering udp {ans['udp']}, tcp {ans['tcp']}")
        print(f"crashes            {crashes}"
              + (f" (died after {crashed_at:.1f} s, exit {proc.returncode})" if crashes else ""))
        print(f"exit on SIGTERM    {term_rc}")
        keep = ("queries ", "responses ", "dropped ", "rcode_formerr ", "rcode_notimp ",
                "rcode_refused ", "badvers ", "truncated ", "udp_drops ", "nobufs ",
                "tcp_accepted ", "tcp_closed ", "tcp_idle_closed ", "tcp_evicted ",
                "tcp_rejected ", "tcp_ip_limited ", "tcp_msg_timeouts ", "rrl_")
        picked = [ln for ln in stats.splitlines() if ln.startswith(keep)]
        if picked:
            print("server stats       " + ", ".join(picked))
        ok = (crashes == 0 and term_rc == 0 and alive and ans["udp"] and ans["tcp"]
              and c.get("reload_failed", 0) == 0 and c.get("serial_mismatch", 0) == 0)
        print(f"result             {'PASS' if ok else 'FAIL'}")
        if not ok:
            print("--- dnsperf output ---\n" + perf_out[-3000:])
            print("--- zonejetd log (tail) ---\n" + (work / "zonejetd.log").read_text()[-3000:])
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        if ARGS.keep or not ok:
            print(f"work directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
