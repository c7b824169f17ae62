"""Hot swap of zone images under load, per-image reloads, add/remove, --watch and SIGHUP.

Checks:
- under a steady UDP load (3 client threads, one query outstanding each, plus one TCP thread
  asking ANY at the apex), 60 reloads through `zonejet-ctl reload` step the served zone through
  61 versions (each compiled to its own file, served through a symlink that is re-pointed):
  no query is lost (every one answered within its timeout, no retries), none gets SERVFAIL,
  every response is consistent with exactly one version (SOA serial, apex A, www A, CNAME
  target data all agree), a client thread never sees the version go backwards, and after every
  reload /proc/PID/maps holds only the current version's file (old ones are unmapped);
- a corrupt image (one flipped byte), a truncated image and a missing file are refused by
  reload (exit 1, the reason on stderr) while the old data keeps serving, unchanged mapping;
- --zones: a zone file with an error is refused with its file:line error in the reply, the old
  data keeps serving; the fixed file reloads;
- reloading one image leaves the other image's mapping untouched (same address range), and a
  `reload` that finds nothing changed remaps nothing;
- --watch picks up `zonejet-compile -o` writing a new version into place;
- SIGHUP re-reads changed sources;
- add (a new zone is answered), remove by zone name and by path (REFUSED afterwards), and
  `status` shows each image's checksum and each zone's serial; the control socket is 0600.
"""

import os
import re
import signal
import socket
import stat
import struct
import subprocess
import threading
import time

import dns.message
import dns.rcode
import dns.rdatatype
import pytest

import zjtest
from zjtest import ZJServer, ServerUnavailable, serve_managed

CTL = zjtest.BUILD_DIR / "zonejet-ctl"
ORIGIN = "swap.test."
N_VERSIONS = 61  # 60 swaps
SERIAL_BASE = 1000
POLL_S = 5.0  # longest wait for a reload triggered by --watch or SIGHUP to show


def zone_text(k, origin=ORIGIN):
    """Version k of the test zone: SOA serial, apex A and www A all encode k."""
    return (
        f"$ORIGIN {origin}\n$TTL 300\n"
        f"@ IN SOA ns1 admin {SERIAL_BASE + k} 3600 900 604800 60\n"
        f"  IN NS ns1\n"
        f"  IN A 10.0.{k}.1\n"
        f"ns1 IN A 192.0.2.1\n"
        f"www IN A 10.1.{k}.1\n"
        f"alias IN CNAME www\n"
    )


def compile_version(d, k, name=None):
    src = d / f"swap{k:03d}.zone"
    src.write_text(zone_text(k))
    return zjtest.compile_image(d / (name or f"v{k:03d}.img"), [src])


def point(link, target):
    """Atomically re-point symlink `link` at `target` (a name in the same directory)."""
    tmp = link.with_name(link.name + ".tmp")
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(target.name, tmp)
    os.replace(tmp, link)


def ctl(srv, *args, timeout=60):
    return subprocess.run([str(CTL), "--control", str(srv.ctl_path), *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)


def ctl_ok(srv, *args):
    p = ctl(srv, *args)
    assert p.returncode == 0, f"zonejet-ctl {' '.join(map(str, args))}: exit {p.returncode}\n" \
                              f"{p.stdout}{p.stderr}\n--- server ---\n{srv.log_tail()}"
    return p.stdout


def image_maps(pid, directory):
    """{file name: set of address ranges} of files of `directory` mapped by pid."""
    out = {}
    prefix = str(directory) + "/"
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            parts = line.split(None, 5)
            if len(parts) == 6 and parts[5].strip().startswith(prefix):
                name = parts[5].strip()[len(prefix):]
                out.setdefault(name, set()).add(parts[0])
    return out


def versions_of(resp):
    """Every version number a response carries (SOA serials and the encoded A records)."""
    vs = set()
    for rrset in resp.answer + resp.authority:
        for rd in rrset:
            if rd.rdtype == dns.rdatatype.SOA:
                vs.add(rd.serial - SERIAL_BASE)
            elif rd.rdtype == dns.rdatatype.A and rd.address.startswith(("10.0.", "10.1.")):
                vs.add(int(rd.address.split(".")[2]))
    return vs


def start(workdir, args, name, backend=None):
    srv = ZJServer(args, workdir, backend=backend, name=name, ready_name=ORIGIN)
    try:
        srv.start()
    except ServerUnavailable as e:
        pytest.skip(str(e))
    return srv


def serial(client, name=ORIGIN):
    r = client.query(name, "SOA")
    assert r.rcode() == dns.rcode.NOERROR and r.answer, f"no SOA for {name}: {r}"
    return r.answer[0][0].serial - SERIAL_BASE


def wait_for_version(client, k, what="reload"):
    deadline = time.monotonic() + POLL_S
    got = None
    while time.monotonic() < deadline:
        got = serial(client)
        if got == k:
            return
        time.sleep(0.02)
    raise AssertionError(f"{what}: still serving version {got}, want {k} after {POLL_S}s")


@pytest.fixture
def versions(tmp_path):
    d = tmp_path / "img"
    d.mkdir()
    return d


def _swap_server(tmp_path, versions, name, extra=(), backend=None, image_args=None):
    ctl_path = tmp_path / "ctl.sock"
    args = ["--workers", "2", "--control", ctl_path, *extra]
    args += image_args if image_args is not None else ["--image", versions / "cur.img"]
    srv = start(tmp_path, args, name, backend)
    srv.ctl_path = ctl_path
    # the server creates the socket before it answers; a short bounded wait keeps slow
    # (sanitizer) builds from racing a filesystem that is late to show it
    deadline = time.monotonic() + 5.0
    while not ctl_path.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    return srv


# --------------------------------------------------------------------------------------------
# the swap under load


class Load:
    """Query threads: UDP ones cycle through names whose answers carry a version; a TCP one asks
    ANY at the apex (all RRsets: SOA and A in one response). Each thread keeps one query
    outstanding, waits up to QUERY_TIMEOUT_S for it and never retries."""

    UDP_QUERIES = [("www", "A"), (ORIGIN, "SOA"), ("nx", "A"), ("alias", "A"), ("www", "AAAA")]

    def __init__(self, port, n_udp=3):
        self.port = port
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.sent = 0
        self.problems = []
        self.seen = []  # per thread: versions in order
        self.threads = [threading.Thread(target=self._udp, args=(i,)) for i in range(n_udp)]
        self.threads.append(threading.Thread(target=self._tcp, args=(n_udp,)))
        self.seen = [[] for _ in self.threads]

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(10)

    def _problem(self, text):
        with self.lock:
            if len(self.problems) < 20:
                self.problems.append(text)

    def _check(self, idx, q, resp):
        if resp.rcode() == dns.rcode.SERVFAIL:
            self._problem(f"SERVFAIL for {q.question[0]}")
            return
        vs = versions_of(resp)
        if len(vs) != 1:
            self._problem(f"versions {sorted(vs)} in one response to {q.question[0]}:\n{resp}")
            return
        v = vs.pop()
        seen = self.seen[idx]
        if seen and v < seen[-1]:
            self._problem(f"thread {idx}: version went back from {seen[-1]} to {v}")
        if not seen or seen[-1] != v:
            seen.append(v)
        with self.lock:
            self.sent += 1

    def _udp(self, idx):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(zjtest.QUERY_TIMEOUT_S)
        i = 0
        try:
            while not self.stop.is_set():
                name, rdtype = self.UDP_QUERIES[i % len(self.UDP_QUERIES)]
                i += 1
                qname = name if name.endswith(".") else f"{name}.{ORIGIN}"
                q = dns.message.make_query(qname, rdtype)
                s.sendto(q.to_wire(), ("127.0.0.1", self.port))
                deadline = time.monotonic() + zjtest.QUERY_TIMEOUT_S
                while True:
                    try:
                        data, _ = s.recvfrom(65535)
                    except socket.timeout:
                        self._problem(f"thread {idx}: no answer to {qname} {rdtype} (lost)")
                        return
                    if data[:2] == q.to_wire()[:2] or time.monotonic() > deadline:
                        break
                self._check(idx, q, dns.message.from_wire(data))
        finally:
            s.close()

    def _tcp(self, idx):
        try:
            s = socket.create_connection(("127.0.0.1", self.port), timeout=zjtest.QUERY_TIMEOUT_S)
        except OSError as e:
            self._problem(f"tcp connect: {e}")
            return
        try:
            while not self.stop.is_set():
                q = dns.message.make_query(ORIGIN, "ANY")
                w = q.to_wire()
                s.sendall(struct.pack("!H", len(w)) + w)
                try:
                    data = zjtest.read_tcp_msg(s)
                except socket.timeout:
                    data = None
                if data is None:
                    self._problem("tcp: no answer to ANY (lost)")
                    return
                r = dns.message.from_wire(data)
                types = {rs.rdtype for rs in r.answer}
                if not {dns.rdatatype.SOA, dns.rdatatype.A} <= types:
                    self._problem(f"tcp ANY lacks SOA or A:\n{r}")
                    return
                self._check(idx, q, r)
        finally:
            s.close()


def test_swap_under_load_60_reloads(tmp_path, versions, backend):
    for k in range(1, N_VERSIONS + 1):
        compile_version(versions, k)
    link = versions / "cur.img"
    point(link, versions / "v001.img")
    srv = _swap_server(tmp_path, versions, "hotswap", backend=backend)
    pid = srv.proc.pid
    try:
        assert set(image_maps(pid, versions)) == {"v001.img"}
        with Load(srv.port) as load:
            for k in range(2, N_VERSIONS + 1):
                # let some queries through on the old version before each swap
                target = load.sent + 20
                t_end = time.monotonic() + 2.0
                while load.sent < target and time.monotonic() < t_end and not load.problems:
                    time.sleep(0.002)
                point(link, versions / f"v{k:03d}.img")
                out = ctl_ok(srv, "reload") if k % 2 == 0 else ctl_ok(srv, "reload", link)
                assert "1 replaced" in out, out
                maps = image_maps(pid, versions)
                assert set(maps) == {f"v{k:03d}.img"}, f"after swap to v{k}: mapped {maps}"
                assert not load.problems, "\n".join(load.problems)
            time.sleep(0.2)
        assert not load.problems, "\n".join(load.problems)
        assert load.sent > 60 * 20, f"only {load.sent} answered queries under load"
        for idx, seen in enumerate(load.seen):
            assert seen and seen[-1] == N_VERSIONS, f"thread {idx} saw versions {seen}"
            assert len(seen) > 10, f"thread {idx} saw too few versions: {seen}"
        status = ctl_ok(srv, "status")
        assert f"zone {ORIGIN} serial {SERIAL_BASE + N_VERSIONS}" in status, status
        assert re.search(r"reloads ok 6\d failed 0", status), status
    finally:
        rc = srv.stop(check=False)
    assert rc == 0, f"zonejetd exited {rc}\n{srv.log_tail()}"


# --------------------------------------------------------------------------------------------
# refused reloads


def test_corrupt_truncated_missing_image_refused(tmp_path, versions):
    v1 = compile_version(versions, 1)
    v2 = compile_version(versions, 2)
    link = versions / "cur.img"
    point(link, v1)
    srv = _swap_server(tmp_path, versions, "refuse")
    client = srv.client()
    try:
        before = image_maps(srv.proc.pid, versions)
        data = v2.read_bytes()
        corrupt = versions / "corrupt.img"
        corrupt.write_bytes(data[: len(data) // 2] + bytes([data[len(data) // 2] ^ 0x40])
                            + data[len(data) // 2 + 1:])
        truncated = versions / "truncated.img"
        truncated.write_bytes(data[: len(data) // 2])
        for bad, why in ((corrupt, "checksum"), (truncated, "truncated")):
            point(link, bad)
            for args in (("reload", link), ("reload",)):
                p = ctl(srv, *args)
                assert p.returncode == 1, f"{bad.name} {args}: exit {p.returncode}\n{p.stdout}"
                assert p.stderr.startswith("error: reload refused"), p.stderr
                assert why in p.stderr, p.stderr
                assert serial(client) == 1
                assert image_maps(srv.proc.pid, versions) == before
        p = ctl(srv, "reload", versions / "missing.img")
        assert p.returncode == 1 and "missing.img" in p.stderr, p.stderr
        assert "reload refused, still serving the previous data" in srv.log()
        point(link, v2)
        ctl_ok(srv, "reload")
        assert serial(client) == 2
        status = ctl_ok(srv, "status")
        assert re.search(r"reloads ok 1 failed 5", status), status
    finally:
        assert srv.stop(check=False) == 0, srv.log_tail()


def test_zone_file_error_refused(tmp_path):
    zdir = tmp_path / "zones"
    zdir.mkdir()
    zfile = zdir / "swap.zone"
    zfile.write_text(zone_text(1))
    srv = _swap_server(tmp_path, zdir, "zones", image_args=["--zones", zfile])
    client = srv.client()
    try:
        bad = zone_text(2).replace("www IN A 10.1.2.1", "www IN A 10.1.2.300")
        tmp = zdir / "swap.zone.tmp"
        tmp.write_text(bad)
        os.replace(tmp, zfile)
        line = bad.splitlines().index("www IN A 10.1.2.300") + 1
        p = ctl(srv, "reload", zfile)
        assert p.returncode == 1, p.stdout + p.stderr
        assert f"swap.zone:{line}:" in p.stderr, p.stderr
        p = ctl(srv, "reload")
        assert p.returncode == 1 and f"swap.zone:{line}:" in p.stderr, p.stderr
        assert serial(client) == 1
        r = client.query(f"www.{ORIGIN}", "A")
        assert r.answer[0][0].address == "10.1.1.1"
        tmp.write_text(zone_text(2))
        os.replace(tmp, zfile)
        ctl_ok(srv, "reload")
        assert serial(client) == 2
        assert client.query(f"www.{ORIGIN}", "A").answer[0][0].address == "10.1.2.1"
    finally:
        assert srv.stop(check=False) == 0, srv.log_tail()


# --------------------------------------------------------------------------------------------
# per-image reloads, add, remove


def test_reload_one_image_leaves_other_mapping(tmp_path, versions):
    v1 = compile_version(versions, 1)
    compile_version(versions, 2)
    other = zjtest.compile_image(versions / "other.img", [zjtest.BUNDLED["example.net."]])
    link = versions / "cur.img"
    point(link, v1)
    srv = _swap_server(tmp_path, versions, "perimage",
                       image_args=["--image", link, "--image", other])
    client = srv.client()
    try:
        m0 = image_maps(srv.proc.pid, versions)
        assert set(m0) == {"v001.img", "other.img"}, m0
        out = ctl_ok(srv, "reload")
        assert "0 replaced" in out and "2 unchanged" in out, out
        assert image_maps(srv.proc.pid, versions) == m0
        point(link, versions / "v002.img")
        out = ctl_ok(srv, "reload", link)
        assert "1 replaced" in out, out
        m1 = image_maps(srv.proc.pid, versions)
        assert m1["other.img"] == m0["other.img"], f"other.img remapped: {m0} -> {m1}"
        assert set(m1) == {"v002.img", "other.img"}, m1
        assert serial(client) == 2
        r = client.query("example.net.", "SOA")
        assert r.rcode() == dns.rcode.NOERROR and r.answer
    finally:
        assert srv.stop(check=False) == 0, srv.log_tail()


def test_add_remove_status(tmp_path, versions):
    v1 = compile_version(versions, 1)
    other = zjtest.compile_image(versions / "other.img", [zjtest.BUNDLED["example.net."]])
    srv = _swap_server(tmp_path, versions, "addremove", image_args=["--image", v1])
    client = srv.client()
    try:
        mode = stat.S_IMODE(os.stat(srv.ctl_path).st_mode)
        assert mode == 0o600, f"control socket mode {mode:o}"
        assert client.query("example.net.", "SOA").rcode() == dns.rcode.REFUSED
        out = ctl_ok(srv, "add", other)
        assert "added" in out, out
        assert client.query("example.net.", "SOA").rcode() == dns.rcode.NOERROR
        p = ctl(srv, "add", other)
        assert p.returncode == 1 and "already served" in p.stderr, p.stderr
        status = ctl_ok(srv, "status")
        assert re.search(rf"image {re.escape(str(v1))} checksum [0-9a-f]{{16}} zones 1", status)
        assert f"zone {ORIGIN} serial {SERIAL_BASE + 1}" in status, status
        assert re.search(r"zone example\.net\. serial \d+", status), status
        assert re.search(r"worker 1 cpu -?\d+ queries \d+", status), status
        ctl_ok(srv, "remove", "example.net")
        assert client.query("example.net.", "SOA").rcode() == dns.rcode.REFUSED
        assert "other.img" not in image_maps(srv.proc.pid, versions)
        p = ctl(srv, "remove", v1)
        assert p.returncode == 1 and "last source" in p.stderr, p.stderr
        ctl_ok(srv, "add", other)
        ctl_ok(srv, "remove", other)
        assert client.query("example.net.", "SOA").rcode() == dns.rcode.REFUSED
        assert serial(client) == 1
    finally:
        assert srv.stop(check=False) == 0, srv.log_tail()


# --------------------------------------------------------------------------------------------
# --watch and SIGHUP


def test_watch_picks_up_atomic_replace(tmp_path, versions):
    cur = compile_version(versions, 1, name="cur.img")
    srv = _swap_server(tmp_path, versions, "watch", extra=["--watch"])
    client = srv.client()
    try:
        assert serial(client) == 1
        for k in (2, 3):
            compile_version(versions, k, name="cur.img")  # zonejet-compile: tmp + rename
            wait_for_version(client, k, "--watch")
        # a truncated file moved into place is refused; the last good version keeps serving
        data = cur.read_bytes()
        tmp = versions / "cur.tmp"
        tmp.write_bytes(data[:100])
        os.replace(tmp, cur)
        deadline = time.monotonic() + POLL_S
        while "refused" not in srv.log() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert "refused" in srv.log(), srv.log_tail()
        assert serial(client) == 3
        compile_version(versions, 4, name="cur.img")
        wait_for_version(client, 4, "--watch")
    finally:
        assert srv.stop(check=False) == 0, srv.log_tail()


def test_sighup_reloads(tmp_path, versions):
    v1 = compile_version(versions, 1)
    compile_version(versions, 2)
    link = versions / "cur.img"
    point(link, v1)
    srv = _swap_server(tmp_path, versions, "sighup")
    client = srv.client()
    try:
        point(link, versions / "v002.img")
        srv.proc.send_signal(signal.SIGHUP)
        wait_for_version(client, 2, "SIGHUP")
        assert set(image_maps(srv.proc.pid, versions)) == {"v002.img"}
    finally:
        assert srv.stop(check=False) == 0, srv.log_tail()
