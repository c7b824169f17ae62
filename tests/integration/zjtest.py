"""Helpers shared by the integration tests: paths to the binaries, a zonejetd process wrapper,
a DNS client that keeps the raw bytes, raw packet builders, and the declarative `expect()`.

Everything talks to 127.0.0.1 only. Every wait is bounded (see the *_S constants).
"""

import http.server
import ipaddress
import os
import random
import re
import signal
import socket
import struct
import subprocess
import threading
import time
from pathlib import Path

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.zone

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
ZONES_DIR = REPO / "zones"
TEST_ZONES_DIR = HERE / "zones"
BUILD_DIR = Path(os.environ.get("ZJ_BUILD_DIR", str(REPO / "build")))
ZONEJETD = BUILD_DIR / "zonejetd"
COMPILER = BUILD_DIR / "zonejet-compile"
# ZJ_IT_REF=knot|nsd: run the query tests against a reference server (see conftest.py)
REF = os.environ.get("ZJ_IT_REF", "")

# The bundled zones, by origin. Tests read the same files with dnspython for expectations.
BUNDLED = {
    "example.com.": ZONES_DIR / "example.com.zone",
    "example.net.": ZONES_DIR / "example.net.zone",
    "sub.example.com.": ZONES_DIR / "sub.example.com.zone",
}

# What the main test server is configured with (--nsid, --identity, --version-string).
NSID = "zj-test-nsid"
IDENTITY = "zj-test-identity"
VERSION = "zonejet-test 1.0"

START_TIMEOUT_S = 20.0  # a sanitizer Debug build needs a few seconds to map and index images
STOP_TIMEOUT_S = 10.0
QUERY_TIMEOUT_S = 2.0  # loopback answers take < 1 ms; 2 s only absorbs a loaded CI machine
SILENCE_S = 0.5  # how long we wait to conclude "no response" (brief: at most 0.5 s)

# Lines in zonejetd's stderr that mean "io_uring cannot be used here" (kernel too old, seccomp,
# sysctl kernel.io_uring_disabled): the uring-parametrised tests are skipped, not failed.
URING_UNAVAILABLE_RE = re.compile(
    r"uring.*(unavailable|not available|unsupported|not supported|disabled|ENOSYS|EPERM|"
    r"Operation not permitted|Function not implemented)",
    re.IGNORECASE,
)


class ServerUnavailable(Exception):
    """zonejetd could not start for a reason that is not the server's fault (skip, not fail)."""


def have_binaries():
    return ZONEJETD.is_file() and COMPILER.is_file()


def run_compiler(*args, timeout=60):
    """Run zonejet-compile with args (strings or Paths); returns CompletedProcess (text)."""
    return subprocess.run(
        [str(COMPILER), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def compile_image(out, files, origins=None):
    """Compile zone files into image `out`; raise AssertionError with the diagnostics on failure.
    origins: optional {file: origin} passed as `--origin NAME` before that file."""
    args = ["-o", str(out)]
    for f in files:
        if origins and str(f) in origins:
            args += ["--origin", origins[str(f)]]
        args.append(str(f))
    p = run_compiler(*args)
    assert p.returncode == 0, f"zonejet-compile {' '.join(args)} failed ({p.returncode}):\n{p.stderr}"
    assert Path(out).is_file()
    return Path(out)


def free_port(host="127.0.0.1"):
    """A port free for both UDP and TCP on host (the kernel picks; we check both)."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    for _ in range(50):
        t = socket.socket(fam, socket.SOCK_STREAM)
        u = socket.socket(fam, socket.SOCK_DGRAM)
        try:
            t.bind((host, 0))
            port = t.getsockname()[1]
            u.bind((host, port))
            return port
        except OSError:
            continue
        finally:
            t.close()
            u.close()
    raise RuntimeError("no free port found")


# --------------------------------------------------------------------------------------------
# zonejetd process


class ZJServer:
    """One zonejetd process on 127.0.0.1:<port>; stderr goes to a log file kept for reports."""

    def __init__(self, args, workdir, backend=None, ready_name="example.com.", name="zonejetd"):
        self.args = list(map(str, args))
        self.workdir = Path(workdir)
        self.backend = backend
        self.ready_name = ready_name
        self.name = name
        self.proc = None
        self.port = None
        self.log_path = None
        self.crashes = []  # (returncode, log tail) of deaths seen while the fixture was live
        self.starts = 0

    # -- lifecycle
    def cmdline(self):
        cmd = [str(ZONEJETD), "--listen", f"127.0.0.1:{self.port}"]
        if self.backend:
            cmd += ["--io", self.backend]
        return cmd + self.args

    def start(self):
        self.starts += 1
        self.port = free_port()
        self.log_path = self.workdir / f"{self.name}-{self.backend or 'default'}-{self.starts}.log"
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            self.cmdline(), stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            rc = self.proc.poll()
            if rc is not None:
                log = self.log()
                if self.backend == "uring" and URING_UNAVAILABLE_RE.search(log):
                    raise ServerUnavailable(f"io_uring unavailable: {log.strip()[-300:]}")
                raise AssertionError(
                    f"zonejetd exited during start-up with {rc}\ncmd: {' '.join(self.cmdline())}\n"
                    f"--- stderr ---\n{log}"
                )
            if self._probe():
                log = self.log()
                if self.backend == "uring" and re.search(r"fall(ing)? ?back", log, re.I):
                    self.stop(check=False)
                    raise ServerUnavailable(f"--io uring fell back: {log.strip()[-300:]}")
                return self
            time.sleep(0.05)
        self.stop(check=False)
        raise AssertionError(
            f"zonejetd not ready within {START_TIMEOUT_S}s\n--- stderr ---\n{self.log()}"
        )

    def _probe(self):
        q = dns.message.make_query(self.ready_name, "SOA", flags=0)
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.settimeout(0.2)
            s.sendto(q.to_wire(), ("127.0.0.1", self.port))
            data, _ = s.recvfrom(65535)
            return len(data) >= 12 and data[:2] == q.to_wire()[:2]
        except OSError:
            return False
        finally:
            s.close()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, check=True):
        """SIGTERM, wait, return the exit code. check: assert it is 0."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                if check:
                    raise AssertionError(
                        f"zonejetd ignored SIGTERM for {STOP_TIMEOUT_S}s\n{self.log_tail()}"
                    )
        rc = self.proc.returncode
        self._log.close()
        if check:
            assert rc == 0, f"zonejetd exited with {rc} after SIGTERM\n{self.log_tail()}"
        return rc

    def restart_if_dead(self):
        """Record a death (crash) and start again, so that one crash fails one test, not all."""
        if self.alive():
            return False
        self.crashes.append((self.proc.returncode, self.log_tail()))
        self._log.close()
        self.start()
        return True

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, n=6000):
        text = self.log()
        return text if len(text) <= n else "...\n" + text[-n:]

    def client(self):
        return Client(self)


# --------------------------------------------------------------------------------------------
# flags that are still being added (tests of a missing flag run without it, as xfail)

_flag_cache = {}


def flag_supported(flag, value="1"):
    """True when zonejetd knows `flag`: probed with `zonejetd FLAG VALUE --help`, which exits 0
    for a known option and 2 with "unknown option" otherwise. Cached per flag."""
    if flag not in _flag_cache:
        p = subprocess.run([str(ZONEJETD), flag, str(value), "--help"], capture_output=True,
                           text=True, timeout=10)
        _flag_cache[flag] = not (p.returncode != 0 and "unknown option" in p.stderr)
    return _flag_cache[flag]


def split_flags(optional):
    """optional: [(flag, value)] -> (argv of the supported ones, set of unsupported flags)."""
    args, missing = [], set()
    for flag, value in optional:
        if flag_supported(flag, value):
            args += [flag, str(value)]
        else:
            missing.add(flag)
    return args, missing


def xfail_if_missing(request, missing, *needed):
    """Mark the running test xfail(strict=False) when a flag it depends on is not accepted yet:
    the test still runs (against a server started without the flag) and XPASSes if it holds.
    Only an AssertionError counts as the expected failure: a bug in the test still fails."""
    import pytest  # only the test process needs it

    lacking = sorted(f for f in needed if f in missing)
    if lacking:
        request.node.add_marker(pytest.mark.xfail(
            reason=f"flag not implemented yet: {', '.join(lacking)}", strict=False,
            raises=AssertionError))


def serve_managed(workdir, backend, args, name, ready_name="example.com."):
    """Generator for fixtures: start zonejetd, yield it, then stop it and assert that it never
    died during the tests and exited 0 on SIGTERM (as conftest's servers do)."""
    import pytest

    srv = ZJServer(args, workdir, backend=backend, name=name, ready_name=ready_name)
    try:
        srv.start()
    except ServerUnavailable as e:
        pytest.skip(str(e))
    yield srv
    rc = srv.stop(check=False)
    assert not srv.crashes, "zonejetd died during the tests:\n" + "\n\n".join(
        f"exit {c}:\n{log}" for c, log in srv.crashes)
    assert rc == 0, f"zonejetd exited with {rc} on SIGTERM\n{srv.log_tail()}"


# --------------------------------------------------------------------------------------------
# client


class NoResponse(AssertionError):
    pass


class Client:
    """Sends queries to one server; every response is parsed with dnspython and keeps .wire."""

    def __init__(self, server=None, host="127.0.0.1", port=None):
        self.server = server
        self.host = host
        self._port = port

    @property
    def port(self):
        return self._port if self._port is not None else self.server.port

    @property
    def family(self):
        return socket.AF_INET6 if ":" in self.host else socket.AF_INET

    def _dead_note(self):
        if isinstance(self.server, ZJServer) and not self.server.alive():
            return (
                f"\n*** zonejetd is dead (exit {self.server.proc.returncode}) ***\n"
                f"{self.server.log_tail()}"
            )
        return ""

    def make(self, name, rdtype="A", rdclass="IN", edns=None, payload=None, do=False,
             flags=None, options=None, qid=None, opcode=None, ednsflags=0):
        """Build a dnspython query. edns: None = EDNS only if payload/do/options given,
        False = never, int = that EDNS version. flags: header flags (default RD)."""
        use_edns = edns
        if edns is None:
            use_edns = 0 if (payload is not None or do or options or ednsflags) else -1
        elif edns is False:
            use_edns = -1
        elif edns is True:
            use_edns = 0
        q = dns.message.make_query(
            name,
            rdtype,
            rdclass,
            use_edns=False,
            id=qid if qid is not None else random.randint(0, 0xFFFF),
            flags=dns.flags.RD if flags is None else flags,
        )
        if use_edns >= 0:
            # set after make_query: its want_dnssec(False) clears the whole EDNS flags word
            # (version included) under Python 3.11's IntFlag semantics
            q.use_edns(
                use_edns,
                (dns.flags.DO if do else 0) | ednsflags,
                payload if payload is not None else 1232,
                options=options,
            )
        if opcode is not None:
            q.set_opcode(opcode)
        return q

    def query(self, name=None, rdtype="A", tcp=False, edns=None, payload=None, do=False,
              flags=None, raw=None, rdclass="IN", options=None, qid=None, opcode=None,
              timeout=None, ednsflags=0):
        """Send one query; return the parsed response (dns.message.Message) with attributes
        .wire (response bytes) and .query_wire. With raw=bytes, send those bytes instead and
        return None when nothing came back within SILENCE_S (or `timeout`)."""
        if raw is not None:
            wire = bytes(raw)
            timeout = SILENCE_S if timeout is None else timeout
        else:
            q = self.make(name, rdtype, rdclass, edns, payload, do, flags, options, qid, opcode,
                          ednsflags)
            wire = q.to_wire()
            timeout = QUERY_TIMEOUT_S if timeout is None else timeout
        resp = self.exchange(wire, tcp=tcp, timeout=timeout)
        if resp is None:
            if raw is not None:
                return None
            raise NoResponse(
                f"no response within {timeout}s to {name} {rdtype} over "
                f"{'TCP' if tcp else 'UDP'}{self._dead_note()}"
            )
        msg = parse(resp, what=f"response to {name} {rdtype}" if raw is None else "response")
        msg.wire = resp
        msg.query_wire = wire
        return msg

    def exchange(self, wire, tcp=False, timeout=QUERY_TIMEOUT_S):
        """Send raw bytes, return raw response bytes or None on timeout / closed connection."""
        if tcp:
            return self._tcp(wire, timeout)
        s = socket.socket(self.family, socket.SOCK_DGRAM)
        try:
            s.settimeout(timeout)
            s.connect((self.host, self.port))
            s.send(wire)
            deadline = time.monotonic() + timeout
            while True:
                try:
                    data = s.recv(65535)
                except (socket.timeout, ConnectionRefusedError):
                    return None
                # a late answer to an earlier query cannot reach this fresh socket, but an
                # answer with the wrong ID would be a server bug: return it for the test to see
                if data:
                    return data
                if time.monotonic() > deadline:
                    return None
        finally:
            s.close()

    def _tcp(self, wire, timeout):
        s = self.connect(timeout)
        try:
            s.sendall(struct.pack("!H", len(wire)) + wire)
            return read_tcp_msg(s)
        except (socket.timeout, ConnectionError):
            return None
        finally:
            s.close()

    def connect(self, timeout=QUERY_TIMEOUT_S):
        s = socket.create_connection((self.host, self.port), timeout=timeout)
        s.settimeout(timeout)
        return s

    def alive_check(self, tcp=False):
        """A normal query still works (used after packets that must get no response)."""
        r = self.query("example.com.", "SOA", tcp=tcp)
        assert r.rcode() == dns.rcode.NOERROR and r.answer, f"server unhealthy: {r}"
        return r


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def read_tcp_msg(s):
    """One length-prefixed DNS message from a TCP socket, or None at EOF."""
    hdr = recv_exact(s, 2)
    if hdr is None:
        return None
    (n,) = struct.unpack("!H", hdr)
    return recv_exact(s, n)


def parse(wire, what="response"):
    """dnspython's reading of a response. dnspython refuses opcodes it does not know (3, 6..15):
    such a response is read with the opcode bits cleared; resp_opcode() reads the real one."""
    try:
        if len(wire) >= 4 and ((wire[2] >> 3) & 0xF) in (3, *range(6, 16)):
            return dns.message.from_wire(wire[:2] + bytes([wire[2] & 0x87]) + wire[3:])
        return dns.message.from_wire(wire)
    except Exception as e:  # any parse failure is a malformed response: show the bytes
        raise AssertionError(f"{what} does not parse ({e!r}): {wire.hex()}") from e


def resp_opcode(resp):
    return (resp.wire[2] >> 3) & 0xF


# --------------------------------------------------------------------------------------------
# raw packet builders (for malformed-input tests; these bypass dnspython on purpose)


def name_wire(name):
    """Wire form of a dotted name, case kept; no validation (so tests can build bad names).
    Accepts a str or a list of raw label bytes."""
    if isinstance(name, (list, tuple)):
        labels = [bytes(lb) for lb in name]
    else:
        name = name.rstrip(".")
        labels = [lb.encode() for lb in name.split(".")] if name else []
    out = b""
    for lb in labels:
        out += bytes([len(lb) & 0xFF]) + lb
    return out + b"\x00"


def header(qid=0x1234, flags=0x0000, qd=1, an=0, ns=0, ar=0, opcode=0):
    flags = (flags & ~0x7800) | ((opcode & 0xF) << 11)
    return struct.pack("!HHHHHH", qid, flags, qd, an, ns, ar)


def question(name="example.com.", qtype=6, qclass=1):
    qn = name if isinstance(name, (bytes, bytearray)) else name_wire(name)
    return bytes(qn) + struct.pack("!HH", qtype, qclass)


def opt_rr(payload=1232, ext_rcode=0, version=0, do=False, options=(), rdata=None, owner=b"\x00"):
    """An OPT pseudo-RR. options: [(code, bytes)], or rdata=raw bytes to build bad ones."""
    if rdata is None:
        rdata = b"".join(struct.pack("!HH", c, len(v)) + v for c, v in options)
    ttl = (ext_rcode << 24) | (version << 16) | (0x8000 if do else 0)
    return owner + struct.pack("!HHIH", 41, payload, ttl, len(rdata)) + rdata


def packet(name="example.com.", qtype=6, qclass=1, qid=0x1234, flags=0x0000, opcode=0, qd=None,
           additional=(), questions=None):
    """A query packet with header counts matching what is appended (qd may be overridden)."""
    qs = questions if questions is not None else [question(name, qtype, qclass)]
    body = b"".join(qs) + b"".join(additional)
    return header(qid, flags, len(qs) if qd is None else qd, 0, 0, len(additional), opcode) + body


def skip_name(wire, off):
    """Offset just past the (possibly compressed) name at off."""
    while True:
        n = wire[off]
        if n == 0:
            return off + 1
        if n & 0xC0 == 0xC0:
            return off + 2
        off += 1 + n


def raw_records(wire):
    """[(section, type, rdlen)] for every RR in a response, read straight from the bytes."""
    qd, an, ns, ar = struct.unpack("!HHHH", wire[4:12])
    off = 12
    for _ in range(qd):
        off = skip_name(wire, off) + 4
    out = []
    for sec, count in (("answer", an), ("authority", ns), ("additional", ar)):
        for _ in range(count):
            off = skip_name(wire, off)
            rdtype, _cls, _ttl, rdlen = struct.unpack("!HHIH", wire[off:off + 10])
            out.append((sec, rdtype, rdlen))
            off += 10 + rdlen
    return out


def ecs_option(family, source, scope, addr_bytes):
    """RFC 7871 §6 ECS option payload (code 8), raw: no validation."""
    return (8, struct.pack("!HBB", family, source, scope) + bytes(addr_bytes))


def ecs(prefix):
    """A dnspython ECS option for "ADDR/LEN" (host bits cleared, as RFC 7871 §6 requires)."""
    net = ipaddress.ip_network(prefix, strict=False)
    return dns.edns.ECSOption(str(net.network_address), net.prefixlen, 0)


def ecs_reply(resp):
    """The ECS option of a response as (family, source, scope, address text), or None."""
    for o in resp.options if resp.edns >= 0 else ():
        if int(o.otype) == 8:
            return (o.family, o.srclen, o.scopelen, o.address)
    return None


# --------------------------------------------------------------------------------------------
# local endpoints (targets of health checks)


def closed_port():
    """(socket, port): a TCP socket bound on 127.0.0.1 that never listens, so connections to the
    port are refused and no other program can take it while the socket is open."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    return s, s.getsockname()[1]


class TcpEndpoint:
    """A TCP listener on 127.0.0.1 that accepts connections and closes them. stop() closes the
    listening socket (connections are refused from then on; a bound socket keeps the port);
    start() listens on the same port again. close() releases the port."""

    def __init__(self, port=None):
        self.port = port or free_port()
        self._sock = None
        self._hold = None
        self._thread = None
        self._stop = threading.Event()

    def start(self):
        if self._hold is not None:
            self._hold.close()
            self._hold = None
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        s.listen(64)
        s.settimeout(0.05)
        self._sock, self._stop = s, threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(s, self._stop), daemon=True)
        self._thread.start()
        return self

    @staticmethod
    def _serve(s, stop):
        while not stop.is_set():
            try:
                c, _ = s.accept()
                c.close()
            except OSError:
                continue

    def stop(self):
        if self._sock is not None:
            self._stop.set()
            self._thread.join(5)
            self._sock.close()
            self._sock = None
            hold = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            hold.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            hold.bind(("127.0.0.1", self.port))
            self._hold = hold

    def close(self):
        self.stop()
        if self._hold is not None:
            self._hold.close()
            self._hold = None


class HttpEndpoint:
    """An HTTP/1.1 server on 127.0.0.1 (one request per connection); routes maps a path to
    (status, body text) and may be changed while it runs (a missing path is 404). close() stops
    it."""

    def __init__(self, routes=None):
        self.routes = dict(routes or {})
        self.hits = {}
        endpoint = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):  # noqa: N802 (the http.server naming)
                path = self.path.split("?", 1)[0]
                endpoint.hits[path] = endpoint.hits.get(path, 0) + 1
                status, body = endpoint.routes.get(path, (404, "not found"))
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(data)
                self.close_connection = True

            do_HEAD = do_GET

            def log_message(self, *args):
                pass

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,),
                                        daemon=True)
        self._thread.start()

    def close(self):
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)


# --------------------------------------------------------------------------------------------
# expectations

_CLASSES = {"IN", "CH", "HS", "ANY", "NONE"}


def rr_key(name, rdclass, rdtype, covers=0):
    return (dns.name.from_text(str(name)).canonicalize(), int(rdclass), int(rdtype), int(covers))


def parse_rr_lines(lines):
    """["name ttl [class] type rdata", ...] -> {key: (ttl, frozenset(rdata))}; names absolute."""
    out = {}
    for line in lines:
        toks = line.split(None, 4)
        name, ttl = toks[0], int(toks[1])
        if toks[2].upper() in _CLASSES:
            rdclass, rdtype, rest = toks[2], toks[3], (toks[4] if len(toks) > 4 else "")
        else:
            rdclass = "IN"
            rdtype = toks[2]
            rest = line.split(None, 3)[3] if len(line.split(None, 3)) > 3 else ""
        rdc = dns.rdataclass.from_text(rdclass)
        rdt = dns.rdatatype.from_text(rdtype)
        rd = dns.rdata.from_text(rdc, rdt, rest, origin=dns.name.root, relativize=False)
        key = rr_key(name, rdc, rdt, rd.covers())
        if key in out:
            assert out[key][0] == ttl, f"expected rrset {key} lists two TTLs"
            out[key] = (ttl, out[key][1] | {rd})
        else:
            out[key] = (ttl, frozenset([rd]))
    return out


def section_dict(section):
    out = {}
    for rrset in section:
        key = rr_key(rrset.name, rrset.rdclass, rrset.rdtype, rrset.covers)
        assert key not in out, f"rrset {rrset.name} {rrset.rdtype} appears twice in a section"
        out[key] = (rrset.ttl, frozenset(rrset))
    return out


def fmt_section(d):
    lines = []
    for (name, rdc, rdt, _cov), (ttl, rds) in sorted(d.items(), key=lambda kv: str(kv[0])):
        for rd in sorted(rds, key=lambda r: r.to_text()):
            lines.append(
                f"  {name} {ttl} {dns.rdataclass.to_text(rdc)} {dns.rdatatype.to_text(rdt)} "
                f"{rd.to_text()}"
            )
    return "\n".join(lines) if lines else "  (empty)"


def diff_sections(got, want, ttl=True):
    """Human-readable difference between two {key: (ttl, rdatas)} dicts; '' if equal."""
    problems = []
    for k in sorted(set(got) | set(want), key=str):
        if k not in got:
            problems.append(f"missing rrset {k[0]} {dns.rdatatype.to_text(k[2])}")
        elif k not in want:
            problems.append(f"unexpected rrset {k[0]} {dns.rdatatype.to_text(k[2])}")
        else:
            (gt, gr), (wt, wr) = got[k], want[k]
            if gr != wr:
                problems.append(f"rrset {k[0]} {dns.rdatatype.to_text(k[2])}: rdata differ")
            elif ttl and gt != wt:
                problems.append(f"rrset {k[0]} {dns.rdatatype.to_text(k[2])}: TTL {gt} != {wt}")
    if not problems:
        return ""
    return "; ".join(problems) + f"\n got:\n{fmt_section(got)}\n want:\n{fmt_section(want)}"


def flags_text(resp):
    return dns.flags.to_text(resp.flags) or "(none)"


def expect(resp, rcode=None, aa=None, tc=None, rd=None, ra=False, qid=None, answer=None,
           authority=None, additional=None, additional_subset=None, edns=None, do=None,
           ttl=True, question=True):
    """Declarative checks on a response. Sections are lists of "name ttl [class] type rdata"
    lines compared as rrsets (dnspython equality, order-insensitive, TTL included unless
    ttl=False). additional_subset: these rrsets must be in the additional section (others may
    be too). edns: True/False = OPT present or not. ra defaults to False (RA is never set)."""
    assert resp is not None, "expected a response, got none"
    ctx = f"\n--- response ---\n{resp}\n"
    assert resp.flags & dns.flags.QR, "QR not set" + ctx
    if rcode is not None:
        want = dns.rcode.from_text(rcode) if isinstance(rcode, str) else rcode
        assert resp.rcode() == want, (
            f"rcode {dns.rcode.to_text(resp.rcode())}, want {dns.rcode.to_text(want)}" + ctx
        )
    for flag, want, label in (
        (dns.flags.AA, aa, "AA"),
        (dns.flags.TC, tc, "TC"),
        (dns.flags.RD, rd, "RD"),
        (dns.flags.RA, ra, "RA"),
    ):
        if want is not None:
            got = bool(resp.flags & flag)
            assert got == want, f"{label}={int(got)}, want {int(want)} (flags {flags_text(resp)})" + ctx
    if qid is not None:
        assert resp.id == qid, f"id {resp.id:#06x}, want {qid:#06x}"
    if question and hasattr(resp, "query_wire") and resp.rcode() == dns.rcode.NOERROR:
        assert len(resp.question) == 1, "a NOERROR response must echo the question" + ctx
    for sec, want, label in (
        (resp.answer, answer, "answer"),
        (resp.authority, authority, "authority"),
        (resp.additional, additional, "additional"),
    ):
        if want is not None:
            d = diff_sections(section_dict(sec), parse_rr_lines(want), ttl=ttl)
            assert not d, f"{label} section: {d}" + ctx
    if additional_subset is not None:
        got = section_dict(resp.additional)
        for k, (wt, wr) in parse_rr_lines(additional_subset).items():
            assert k in got, f"additional lacks {k[0]} {dns.rdatatype.to_text(k[2])}" + ctx
            assert got[k][1] == wr and (not ttl or got[k][0] == wt), (
                f"additional rrset {k[0]} {dns.rdatatype.to_text(k[2])} differs" + ctx
            )
    if edns is not None:
        assert (resp.edns >= 0) == edns, f"OPT {'missing' if edns else 'unexpected'}" + ctx
    if do is not None:
        assert resp.edns >= 0, "no OPT in response" + ctx
        assert bool(resp.ednsflags & dns.flags.DO) == do, f"DO={int(not do)}, want {int(do)}" + ctx
    return resp


# --------------------------------------------------------------------------------------------
# the source of truth: the bundled zones as dnspython reads them


_zone_cache = {}


def load_zone(origin, path=None):
    key = (origin, str(path))
    if key not in _zone_cache:
        _zone_cache[key] = dns.zone.from_file(
            str(path or BUNDLED[origin]), origin, relativize=False, check_origin=True
        )
    return _zone_cache[key]


def zone_rrset_lines(origin, name, rdtype=None):
    """Text lines ("name ttl IN type rdata") for the rrsets at name (one type or all)."""
    z = load_zone(origin)
    node = z.get_node(name)
    assert node is not None, f"{name} not in {origin}"
    lines = []
    for rds in node:
        if rdtype is not None and rds.rdtype != dns.rdatatype.from_text(rdtype):
            continue
        for rd in rds:
            lines.append(
                f"{name} {rds.ttl} {dns.rdataclass.to_text(rds.rdclass)} "
                f"{dns.rdatatype.to_text(rds.rdtype)} {rd.to_text(origin=dns.name.root, relativize=False)}"
            )
    return lines


def soa_neg_line(origin):
    """The SOA line a negative answer carries: TTL = min(SOA TTL, MINIMUM) (RFC 2308 §3)."""
    z = load_zone(origin)
    rds = z.find_rdataset(origin, "SOA")
    soa = rds[0]
    return f"{origin} {min(rds.ttl, soa.minimum)} IN SOA {soa.to_text(origin=dns.name.root, relativize=False)}"


def mixed_case(name, seed=0):
    rnd = random.Random(seed)
    return "".join(c.upper() if rnd.random() < 0.5 else c.lower() for c in name)
