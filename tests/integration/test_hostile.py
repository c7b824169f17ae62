"""Hostile traffic: a catalogue of malformed or abusive inputs, each with its defined outcome, and
the server still answering a normal query after each one. Both backends.

Checks:
- CATALOGUE (83 inputs, each sent over UDP and, where it means something, over TCP): bad header
  counts (QDCOUNT 0/2/65535 -> FORMERR, RFC 9619; AN/NS/ARCOUNT claiming absent records ->
  FORMERR), compression pointers in the question (loops, forward, into the header -> FORMERR,
  RFC 1035 §4.1.4) and in later sections (self-pointing owners and RDATA: FORMERR or answered,
  never a hang), extended label types 0x40/0x80 and names over 255 octets (FORMERR, RFC 6891 §5,
  RFC 1035 §2.3.4), opcodes 1..15 other than QUERY (NOTIMP; NOTIFY may be REFUSED), classes the
  server does not serve (REFUSED), EDNS version 1 and 255 (BADVERS, RFC 6891 §6.1.3), two OPTs,
  an OPT with a non-root owner, truncated or overrunning options (FORMERR, RFC 6891 §6.1.1,
  §6.1.2),
  cookies of 0/7/9/15/41 octets (FORMERR, RFC 7873 §5.2.2), malformed ECS (family 0/3, source
  prefix 33 for IPv4 and 129 for IPv6, address longer or shorter than the prefix, bits set past
  the prefix -> FORMERR, RFC 7871 §6/§7.1.2), AXFR/IXFR over UDP (FORMERR), QR=1 (silence,
  RFC 1035 §4.1.1), 0/1/11-octet packets (silence) and 64 KiB of garbage (silence or FORMERR).
  Every input is followed, on the same socket or connection, by a probe (example.com SOA) whose
  answer must be correct. Silence means: nothing but the probe's answer within SILENCE_GRACE_S
  (0.25 s, under the 0.5 s bound) on UDP; on TCP the probe's answer first, or the connection
  closed by the server.
- ANY over UDP is one RRset (RFC 8482 §4.1); over TCP it is complete.
- UDP responses never exceed max(512, min(advertised payload, 1232)) for payloads from none and
  1 up to 65535 on the ~0.7/2/6.5 KB TXT RRsets and ANY; an answer that does not fit is TC=1.
- TCP, on a server started with --tcp-idle-ms 3000 --tcp-msg-timeout-ms 500 --tcp-max-conns 256
  --tcp-max-conns-per-ip 10000 --tcp-max-inflight 16 and one worker (so TCP and UDP share it):
  a zero length prefix closes the connection; a huge length prefix then nothing, half a length
  prefix, a stall in mid-message and a client trickling one byte per 100 ms are closed after the
  message timeout (0.2..1.6 s) while an idle connection stays open (idle timeout is 3 s); a slow
  reader that pipelines 2000 big queries and never reads does not slow UDP (every UDP query
  < 0.3 s) nor other TCP clients; 2000 pipelined small queries on one connection (far over the
  in-flight cap of 16) are answered in order: all of them, or a prefix and then the connection
  is closed.
- 10,000 idle TCP connections against --tcp-max-conns 256 (2 workers): the server evicts the
  oldest (open connections <= 2 * 256, the first 1000 closed, the open ones are recent), UDP is
  answered during and after, and a fresh TCP connection is answered. Needs RLIMIT_NOFILE ~10,100
  (the soft limit is raised, up to the hard one; skipped with a reason otherwise).
Flags not accepted yet by zonejetd (probed with `zonejetd FLAG VALUE --help`) are left out of
the command line, and the tests that depend on them run as xfail(strict=False).
The whole file takes ~15 s on 2 cores (Debug build).
"""

import resource
import select
import socket
import struct
import threading
import time
from collections import namedtuple

import dns.edns
import dns.message
import dns.rcode
import pytest

from zjtest import (
    QUERY_TIMEOUT_S,
    header,
    question,
    packet,
    opt_rr,
    ecs_option,
    name_wire,
    parse,
    expect,
    read_tcp_msg,
    zone_rrset_lines,
    section_dict,
    split_flags,
    xfail_if_missing,
    serve_managed,
)

COM = "example.com."
SILENCE = "silence"
SILENCE_GRACE_S = 0.25  # after the probe's answer; under the brief's 0.5 s bound
PROBE_ID = 0x7E57

# --------------------------------------------------------------------------------------------
# the catalogue

Hostile = namedtuple("Hostile", "name wire udp tcp tcp_wire")


def H(name, wire, udp, tcp="same", tcp_wire=None):
    """udp/tcp: the allowed outcomes (rcode names or SILENCE); tcp None = not sent over TCP."""
    as_set = lambda v: frozenset([v] if isinstance(v, str) else v)
    return Hostile(name, bytes(wire), as_set(udp),
                   None if tcp is None else as_set(udp if tcp == "same" else tcp),
                   None if tcp_wire is None else bytes(tcp_wire))


FORMERR = "FORMERR"
ANSWERED = ("FORMERR", "NOERROR")  # "FORMERR or answered, never a hang or crash"
Q = question(COM, 6)  # example.com SOA, at offset 12


def ptr(off):
    return bytes([0xC0 | (off >> 8), off & 0xFF])


def rr(owner, rtype=1, rdata=b"\x7f\x00\x00\x01", rclass=1, ttl=0):
    return owner + struct.pack("!HHIH", rtype, rclass, ttl, len(rdata)) + rdata


def self_pointer_rr(section):
    """A query whose one record in `section` has an owner pointing at itself."""
    counts = {"an": 0, "ns": 0, "ar": 0, section: 1}
    base = header(**counts) + Q
    return base + rr(ptr(len(base)))


def pointer_pair_ar():
    """Two additional records whose owners point at each other."""
    base = header(ar=2) + Q
    off1 = len(base)
    off2 = off1 + 2 + 10 + 4
    return base + rr(ptr(off2)) + rr(ptr(off1))


def cname_rdata_self_pointer():
    base = header(an=1) + Q
    rdata_off = len(base) + 1 + 10
    return base + rr(b"\x00", rtype=5, rdata=ptr(rdata_off))


def with_opt(**kw):
    return packet(COM, 6, additional=[opt_rr(**kw)])


def cookie(n):
    return with_opt(options=[(10, bytes(range(1, n + 1)))])


def ecs(family, source, addr, scope=0):
    return with_opt(options=[ecs_option(family, source, scope, addr)])


def garbage_counts(size):
    head = header(qd=1, an=0xFFFF, ns=0xFFFF, ar=0xFFFF) + Q
    return head + bytes(size - len(head))


LABEL_64 = b"\x40" + b"a" * 64 + b"\x07example\x03com\x00"
NAME_256 = b"".join(b"\x3f" + b"a" * 63 for _ in range(4)) + b"\x03abc\x00"
UDP_MAX = 65507  # largest IPv4 UDP payload
TCP_MAX = 65535  # largest DNS message over TCP

CATALOGUE = [
    # header counts (RFC 9619: QDCOUNT must be 1; counts must match what is there)
    H("qdcount-0", header(qd=0), FORMERR),
    H("qdcount-0-question-present", header(qd=0) + Q, FORMERR),
    H("qdcount-2", header(qd=2) + Q + question("example.net.", 6), FORMERR),
    H("qdcount-65535", header(qd=65535) + Q, FORMERR),
    H("ancount-1-absent", header(an=1) + Q, FORMERR),
    H("nscount-1-absent", header(ns=1) + Q, FORMERR),
    H("arcount-1-absent", header(ar=1) + Q, FORMERR),
    H("ancount-65535", header(an=65535) + Q, FORMERR),
    H("arcount-65535-one-opt", header(ar=65535) + Q + opt_rr(), FORMERR),
    H("arcount-2-one-opt", header(ar=2) + Q + opt_rr(), FORMERR),
    H("answer-rr-cut", header(an=1) + Q + b"\x00\x00\x01", FORMERR),
    H("answer-rdlength-overrun", header(an=1) + Q + b"\x00" + struct.pack("!HHIH", 1, 1, 0, 100)
      + b"\x7f\x00\x00\x01", FORMERR),
    # the question name (RFC 1035 §4.1.4: pointers point back; §2.3.4: 63/255)
    H("q-pointer-self", header() + ptr(12) + b"\x00\x06\x00\x01", FORMERR),
    H("q-pointer-loop", header() + b"\x03www" + ptr(12) + b"\x00\x06\x00\x01", FORMERR),
    H("q-pointer-forward", header() + b"\x03www" + ptr(22) + b"\x00\x06\x00\x01"
      + name_wire(COM), FORMERR),
    H("q-pointer-into-header", header() + b"\x03www" + ptr(0) + b"\x00\x06\x00\x01", FORMERR),
    H("q-label-type-0x40", header() + LABEL_64 + b"\x00\x06\x00\x01", FORMERR),
    H("q-label-type-0x80", header() + b"\x80" + b"a" * 10 + b"\x00\x00\x06\x00\x01", FORMERR),
    H("q-label-type-0x7f", header() + b"\x7f" + b"a" * 127 + b"\x00\x00\x06\x00\x01", FORMERR),
    H("q-name-256-octets", header() + NAME_256 + b"\x00\x06\x00\x01", FORMERR),
    H("q-name-cut", header() + b"\x07exam", FORMERR),
    H("q-no-qclass", header() + name_wire(COM) + b"\x00\x06", FORMERR),
    # pointers in later sections: FORMERR or answered, never a hang
    H("answer-owner-self-pointer", self_pointer_rr("an"), ANSWERED),
    H("authority-owner-self-pointer", self_pointer_rr("ns"), ANSWERED),
    H("additional-owner-self-pointer", self_pointer_rr("ar"), ANSWERED),
    H("additional-owners-point-at-each-other", pointer_pair_ar(), ANSWERED),
    H("answer-cname-rdata-self-pointer", cname_rdata_self_pointer(), ANSWERED),
    # opcodes (RFC 1035 §4.1.1: NOTIMP; NOTIFY to a server without secondaries may be REFUSED)
    *[H(f"opcode-{op}", packet(COM, 6, opcode=op), "NOTIMP")
      for op in (1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)],
    H("opcode-4-notify", packet(COM, 6, opcode=4), ("NOTIMP", "REFUSED")),
    # classes this server does not serve
    *[H(f"class-{c}", packet(COM, 6, qclass=c), "REFUSED") for c in (2, 4, 42, 1000, 65280)],
    H("class-0", packet(COM, 6, qclass=0), ("REFUSED", "FORMERR")),
    # EDNS (RFC 6891 §6.1.1: one OPT, root owner; §6.1.3: version)
    H("edns-version-1", with_opt(version=1), "BADVERS"),
    H("edns-version-255", with_opt(version=255), "BADVERS"),
    H("opt-twice", packet(COM, 6, additional=[opt_rr(), opt_rr()]), FORMERR),
    H("opt-owner-not-root", with_opt(owner=name_wire("a.")), FORMERR),
    H("opt-owner-pointer-to-qname", with_opt(owner=ptr(12)), FORMERR),
    H("opt-option-header-cut", with_opt(rdata=b"\x00\x0a\x00"), FORMERR),
    H("opt-option-overrun", with_opt(rdata=struct.pack("!HH", 10, 20) + b"\x01" * 8), FORMERR),
    H("opt-rdlength-overruns-packet", header(ar=1) + Q + b"\x00"
      + struct.pack("!HHIH", 41, 1232, 0, 50) + b"\x00\x0a\x00\x00", FORMERR),
    # cookies (RFC 7873 §5.2.2: 8 octets, or 16..40)
    *[H(f"cookie-len-{n}", cookie(n), FORMERR) for n in (0, 7, 9, 15, 41)],
    H("cookie-len-8-valid", cookie(8), "NOERROR"),
    H("cookie-len-24-valid", cookie(24), "NOERROR"),
    # ECS (RFC 7871 §6, §7.1.2)
    H("ecs-family-0", ecs(0, 0, b""), FORMERR),
    H("ecs-family-3", ecs(3, 8, b"\x0a"), FORMERR),
    H("ecs-v4-source-33", ecs(1, 33, b"\xc0\x00\x02\x01\x00"), FORMERR),
    H("ecs-v6-source-129", ecs(2, 129, b"\x20\x01" + bytes(15)), FORMERR),
    H("ecs-v4-address-longer-than-prefix", ecs(1, 24, b"\xc0\x00\x02\x01"), FORMERR),
    H("ecs-v4-address-shorter-than-prefix", ecs(1, 24, b"\xc0\x00"), FORMERR),
    H("ecs-v4-source-0-with-address", ecs(1, 0, b"\xc0"), FORMERR),
    H("ecs-v4-bits-past-prefix", ecs(1, 20, b"\xc0\x00\x0f"), FORMERR),
    H("ecs-v6-bits-past-prefix", ecs(2, 52, b"\x20\x01\x0d\xb8\x00\x00\x01"), FORMERR),
    H("ecs-option-3-octets", with_opt(options=[(8, b"\x00\x01\x18")]), FORMERR),
    H("ecs-v4-valid", ecs(1, 24, b"\xc0\x00\x02"), "NOERROR"),
    # zone transfers: TCP only (RFC 5936 §4.2); over TCP this server offers none
    H("axfr", packet(COM, 252), FORMERR, tcp=("REFUSED", "NOTAUTH", "NOTIMP")),
    H("ixfr", packet(COM, 251), FORMERR, tcp=("REFUSED", "NOTAUTH", "NOTIMP", "FORMERR")),
    # never answer a response (RFC 1035 §4.1.1; reflection loops); runts
    H("qr-set", packet(COM, 6, flags=0x8000), SILENCE),
    H("qr-set-rcode-nxdomain", packet(COM, 6, flags=0x8003), SILENCE),
    H("qr-set-opcode-15", packet(COM, 6, flags=0x8000, opcode=15), SILENCE),
    H("qr-set-qdcount-0", header(flags=0x8000, qd=0), SILENCE),
    H("empty", b"", SILENCE, tcp=None),  # over TCP: test_tcp_zero_length_prefix_closes
    H("1-octet", b"\x12", SILENCE),
    H("11-octets", packet(COM, 6)[:11], SILENCE),
    H("garbage-64k-0xff", b"\xff" * UDP_MAX, SILENCE, tcp_wire=b"\xff" * TCP_MAX),
    H("garbage-64k-huge-counts", garbage_counts(UDP_MAX), (FORMERR, SILENCE),
      tcp_wire=garbage_counts(TCP_MAX)),
]
assert len(CATALOGUE) >= 60 and len({h.name for h in CATALOGUE}) == len(CATALOGUE)

CASES = [pytest.param(h, "udp", id=f"udp-{h.name}") for h in CATALOGUE] + [
    pytest.param(h, "tcp", id=f"tcp-{h.name}") for h in CATALOGUE if h.tcp is not None]


# --------------------------------------------------------------------------------------------
# sending one input and its probe

def probe_wire():
    q = dns.message.make_query(COM, "SOA", use_edns=False, id=PROBE_ID)
    return q.to_wire()


def is_probe(w):
    return len(w) >= 12 and struct.unpack("!H", w[:2])[0] == PROBE_ID


def check_probe(w):
    r = parse(w, "probe response")
    expect(r, rcode="NOERROR", aa=True, qid=PROBE_ID, answer=zone_rrset_lines(COM, COM, "SOA"))


def frame(w):
    return struct.pack("!H", len(w)) + w


def outcome_of(w, sent):
    r = parse(w, "response to the hostile input")
    assert r.flags & 0x8000, "QR not set in a response"
    if len(sent) >= 2:
        assert w[:2] == sent[:2], f"response ID {w[:2].hex()} is not the query's {sent[:2].hex()}"
    return dns.rcode.to_text(r.rcode())


def udp_exchange(port, wire, allowed):
    """-> (outcomes, probe wire). Sends wire then the probe on one socket."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.connect(("127.0.0.1", port))
    others, probe = [], None
    try:
        t0 = time.monotonic()
        s.send(wire)
        s.send(probe_wire())
        while True:
            now = time.monotonic()
            silent_long_enough = SILENCE in allowed and now >= t0 + SILENCE_GRACE_S
            if probe is not None and (others or silent_long_enough):
                break
            until = t0 + QUERY_TIMEOUT_S
            if probe is not None and SILENCE in allowed:
                until = t0 + SILENCE_GRACE_S
            if now >= until:
                break
            s.settimeout(until - now)
            try:
                w = s.recv(65535)
            except (socket.timeout, ConnectionRefusedError):
                break
            if is_probe(w) and probe is None:
                probe = w
            else:
                others.append(w)
    finally:
        s.close()
    return [outcome_of(w, wire) for w in others] or [SILENCE], probe


def tcp_exchange(port, wire, allowed):
    """-> (outcomes, probe wire or None when the server closed the connection)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=QUERY_TIMEOUT_S)
    others, probe, closed = [], None, False
    try:
        try:
            s.sendall(frame(wire) + frame(probe_wire()))
        except (BrokenPipeError, ConnectionResetError):
            closed = True
        while not closed:
            try:
                w = read_tcp_msg(s)
            except socket.timeout:
                break
            except ConnectionError:
                w = None
            if w is None:
                closed = True
            elif is_probe(w):
                probe = w
                break
            else:
                others.append(w)
    finally:
        s.close()
    outcomes = [outcome_of(w, wire) for w in others]
    if not outcomes:
        outcomes = [SILENCE] if (probe is not None or closed) else ["no answer at all"]
    return outcomes, probe


def fresh_probe(port, tcp):
    if tcp:
        s = socket.create_connection(("127.0.0.1", port), timeout=QUERY_TIMEOUT_S)
        try:
            s.sendall(frame(probe_wire()))
            return read_tcp_msg(s)
        finally:
            s.close()
    return udp_exchange(port, b"", {SILENCE})[1]  # an empty datagram is ignored


@pytest.mark.parametrize("h,transport", CASES)
def test_hostile_input(client, h, transport):
    tcp = transport == "tcp"
    allowed = h.tcp if tcp else h.udp
    wire = (h.tcp_wire or h.wire) if tcp else h.wire
    outcomes, probe = (tcp_exchange if tcp else udp_exchange)(client.port, wire, allowed)
    assert len(outcomes) == 1, f"{h.name}: {len(outcomes)} responses to one query: {outcomes}"
    assert outcomes[0] in allowed, (
        f"{h.name} over {transport}: got {outcomes[0]}, want one of {sorted(allowed)}")
    if probe is None:
        probe = fresh_probe(client.port, tcp)
    assert probe is not None, f"after {h.name} the server no longer answers over {transport}"
    check_probe(probe)


# --------------------------------------------------------------------------------------------
# ANY and UDP sizes

def test_any_over_udp_is_one_rrset(client):
    r = client.query(COM, "ANY", edns=0, payload=4096)
    expect(r, rcode="NOERROR", aa=True)
    assert len(r.answer) == 1, f"ANY over UDP gave {len(r.answer)} RRsets (RFC 8482 §4.1: one)"
    assert len(r.wire) <= 512
    full = client.query(COM, "ANY", tcp=True)
    expect(full, rcode="NOERROR", aa=True, tc=False)
    assert len(full.answer) > 1, "ANY over TCP should be complete"
    # the one RRset is a real, whole one
    got = section_dict(r.answer)
    for k, v in got.items():
        assert section_dict(full.answer).get(k, (None, None))[1] == v[1]


SIZE_QUERIES = [("medium.example.com.", "TXT"), ("large.example.com.", "TXT"),
                ("huge.example.com.", "TXT"), (COM, "ANY"), ("huge.example.com.", "ANY")]
PAYLOADS = [None, 1, 511, 512, 513, 600, 1000, 1231, 1232, 1233, 1400, 2048, 4096, 65535]


@pytest.mark.parametrize("name,rdtype", SIZE_QUERIES, ids=[f"{n}{t}" for n, t in SIZE_QUERIES])
def test_udp_response_within_advertised_size(client, name, rdtype):
    full = client.query(name, rdtype, tcp=True)
    expect(full, rcode="NOERROR", tc=False)
    for p in PAYLOADS:
        limit = 512 if p is None else max(512, min(p, 1232))
        r = client.query(name, rdtype, edns=False if p is None else 0, payload=p)
        expect(r, rcode="NOERROR")
        assert len(r.wire) <= limit, (
            f"{name} {rdtype} payload {p}: {len(r.wire)} octets over UDP > {limit}")
        if rdtype != "ANY" and len(full.wire) > limit:
            assert r.flags & 0x0200, f"{name} payload {p}: does not fit {limit} but TC=0"


# --------------------------------------------------------------------------------------------
# TCP abuse (a server with short timeouts, one worker: TCP and UDP share it)

TCP_FLAGS = [("--tcp-idle-ms", 3000), ("--tcp-msg-timeout-ms", 500), ("--tcp-max-conns", 256),
             ("--tcp-max-conns-per-ip", 10000), ("--tcp-max-inflight", 16)]
MSG_TIMEOUT_S = 0.5
IDLE_S = 3.0


@pytest.fixture(scope="module")
def tcp_server(workdir, backend, image):
    extra, missing = split_flags(TCP_FLAGS)
    gen = serve_managed(workdir, backend, ["--image", image, "--workers", "1", *extra], "hostile")
    srv = next(gen)
    srv.missing_flags = missing
    yield srv
    next(gen, None)


@pytest.fixture
def tcp_client(tcp_server):
    tcp_server.restart_if_dead()
    return tcp_server.client()


def closed_by_peer(s):
    """True when the peer closed s (EOF or reset); False if data arrived or it is still open."""
    try:
        return s.recv(65536) == b""
    except (BlockingIOError, socket.timeout):
        return False
    except ConnectionError:
        return True


def test_tcp_zero_length_prefix_closes(tcp_client):
    s = tcp_client.connect()
    try:
        s.sendall(b"\x00\x00" + frame(probe_wire()))
        s.settimeout(1.0)
        got = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                got += chunk
        except socket.timeout:
            pytest.fail("a zero length prefix did not close the connection within 1 s")
        except ConnectionError:
            pass
        assert got == b"", "a message after a zero length prefix must not be answered"
    finally:
        s.close()
    tcp_client.alive_check(tcp=True)
    tcp_client.alive_check()


def test_tcp_stalled_clients_closed_after_message_timeout(request, tcp_server, tcp_client,
                                                         backend, zj_summaries):
    xfail_if_missing(request, tcp_server.missing_flags, "--tcp-msg-timeout-ms")
    # ~80 octets with a 40-octet unknown option: the trickle cannot finish within the window
    pad = dns.edns.GenericOption(65001, b"x" * 40)
    q = frame(tcp_client.make("web.example.com.", "A", edns=0, options=[pad]).to_wire())
    stalls = {
        "huge-prefix-then-nothing": b"\xff\xff",
        "huge-prefix-100-octets": b"\xff\xff" + bytes(100),
        "half-prefix": q[:1],
        "mid-message": q[:12],
        "trickle-1-octet-per-100ms": q[:3],
    }
    window_s = 2.0  # < the 3 s idle timeout: only the message timeout can close these
    socks = {}
    try:
        idle = tcp_client.connect()
        for kind, first in stalls.items():
            socks[kind] = tcp_client.connect()
            socks[kind].sendall(first)
        t0 = time.monotonic()
        for s in [idle, *socks.values()]:
            s.setblocking(False)
        closed_at, trickle_off, next_trickle = {}, 3, t0 + 0.1
        while time.monotonic() < t0 + window_s and len(closed_at) < len(socks):
            now = time.monotonic()
            if now >= next_trickle and "trickle-1-octet-per-100ms" not in closed_at:
                try:
                    socks["trickle-1-octet-per-100ms"].send(q[trickle_off:trickle_off + 1])
                    trickle_off += 1
                except (BlockingIOError, ConnectionError):
                    pass
                next_trickle += 0.1
            for kind, s in socks.items():
                if kind not in closed_at and closed_by_peer(s):
                    closed_at[kind] = time.monotonic() - t0
            time.sleep(0.02)
        idle_open = not closed_by_peer(idle)
        idle.close()
    finally:
        for s in socks.values():
            s.close()
    report = ", ".join(f"{k}: {closed_at[k]:.2f}s" if k in closed_at else f"{k}: open"
                       for k in stalls)
    zj_summaries.append(f"tcp stalls [{backend}]: closed at {report}")
    assert trickle_off < len(q), "the trickle completed its message: make it longer"
    for kind in stalls:
        assert kind in closed_at, f"{kind} not closed within {window_s}s ({report})"
        assert 0.4 * MSG_TIMEOUT_S <= closed_at[kind] <= MSG_TIMEOUT_S + 1.1, (
            f"{kind} closed at {closed_at[kind]:.2f}s, want about {MSG_TIMEOUT_S}s ({report})")
    assert idle_open, "an idle connection was closed before the 3 s idle timeout"
    tcp_client.alive_check(tcp=True)


def test_tcp_slow_reader_does_not_block_udp(tcp_client):
    big = frame(tcp_client.make("huge.example.com.", "TXT", edns=0, payload=1232).to_wire())
    slow = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.settimeout(QUERY_TIMEOUT_S)
    slow.connect(("127.0.0.1", tcp_client.port))
    try:
        slow.setblocking(False)
        data, sent, t_end = big * 2000, 0, time.monotonic() + 1.0
        while sent < len(data) and time.monotonic() < t_end:
            try:
                sent += slow.send(data[sent:sent + 65536])
            except BlockingIOError:
                time.sleep(0.01)
        assert sent >= 40 * len(big), "the server read almost nothing from the slow reader"
        # the server now has answers it cannot send; it must keep serving everyone else
        lat = []
        for i in range(20):
            t = time.monotonic()
            expect(tcp_client.query("web.example.com.", "A", timeout=1.0), rcode="NOERROR")
            lat.append(time.monotonic() - t)
        expect(tcp_client.query("web.example.com.", "A", tcp=True), rcode="NOERROR")
        # A worker blocked on the slow reader would leave these unanswered (each query above
        # must arrive within its 1 s timeout); the latency itself is reported, not asserted,
        # since the machine running the suite may be busy.
        print(f"UDP latency with a slow TCP reader: max {max(lat) * 1000:.1f} ms")
    finally:
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        slow.close()
    tcp_client.alive_check()


def test_tcp_many_pipelined_queries_in_order_or_closed(tcp_client):
    n = 2000
    qs = [frame(tcp_client.make("web.example.com." if i % 2 else COM, "A" if i % 2 else "SOA",
                                qid=i).to_wire()) for i in range(n)]
    s = tcp_client.connect(timeout=5.0)
    send_err = []

    def sender():
        try:
            s.sendall(b"".join(qs))
        except OSError as e:  # the server may close the connection: that is allowed
            send_err.append(e)

    th = threading.Thread(target=sender, daemon=True)
    th.start()
    ids, closed = [], False
    try:
        while len(ids) < n:
            try:
                w = read_tcp_msg(s)
            except ConnectionError:
                w = None
            if w is None:
                closed = True
                break
            r = parse(w)
            assert r.id == len(ids), f"answer {len(ids)} has ID {r.id}: out of order"
            expect(r, rcode="NOERROR", aa=True, tc=False)
            ids.append(r.id)
    except socket.timeout:
        pytest.fail(f"stalled after {len(ids)} of {n} answers (neither answered nor closed)")
    finally:
        th.join(5.0)
        s.close()
    assert closed or len(ids) == n
    tcp_client.alive_check(tcp=True)
    tcp_client.alive_check()


# --------------------------------------------------------------------------------------------
# 10,000 idle TCP connections

N_IDLE = 10000
CAP = 256
WORKERS = 2


@pytest.fixture
def fd_room():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = N_IDLE + 100 + 200  # pytest's own fds and the server's logs
    if hard != resource.RLIM_INFINITY and hard < want:
        pytest.skip(f"RLIMIT_NOFILE hard limit {hard} < {want}: cannot hold {N_IDLE} sockets")
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.fixture
def cap_server(fd_room, workdir, backend, image):
    extra, missing = split_flags([("--tcp-idle-ms", 60000), ("--tcp-max-conns", CAP),
                                  ("--tcp-max-conns-per-ip", N_IDLE * 2)])
    yield from serve_managed(workdir, backend,
                             ["--image", image, "--workers", str(WORKERS), *extra], "cap")


def open_batch(port, n, timeout):
    """n non-blocking connects; -> list of sockets (None where the connect did not complete)."""
    socks = []
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
        socks.append(s)
    p = select.poll()
    for s in socks:
        p.register(s, select.POLLOUT)
    pending, deadline = {s.fileno() for s in socks}, time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        for fd, _ev in p.poll(100):
            if fd in pending:
                pending.discard(fd)
                p.unregister(fd)
    out = []
    for s in socks:
        if s.fileno() in pending or s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) != 0:
            s.close()  # never connected: does not count
            out.append(None)
        else:
            out.append(s)
    return out


def count_closed(socks):
    p = select.poll()
    live = [s for s in socks if s is not None]
    for s in live:
        p.register(s, select.POLLIN | select.POLLHUP | select.POLLERR | select.POLLRDHUP)
    ready = {fd for fd, _ in p.poll(0)}
    return {i for i, s in enumerate(socks) if s is not None and s.fileno() in ready}


def test_10k_idle_tcp_connections_evict_oldest(cap_server):
    client = cap_server.client()
    socks, udp_lat = [], []
    try:
        t0 = time.monotonic()
        while len(socks) < N_IDLE:
            socks += open_batch(cap_server.port, 500, timeout=3.0)
            t = time.monotonic()
            expect(client.query("web.example.com.", "A", timeout=1.0), rcode="NOERROR")
            udp_lat.append(time.monotonic() - t)
            assert time.monotonic() - t0 < 40, "opening the connections takes too long"
        connected = sum(s is not None for s in socks)
        assert connected >= 0.95 * N_IDLE, f"only {connected} of {N_IDLE} connects completed"
        # let the server accept the backlog and evict: stop once at most the cap is open, or
        # when the count has not moved for 1 s (a loaded CI machine can pause the server for
        # a few hundred ms between accepts, so one equal pair of counts proves nothing)
        closed, last, stable = set(), -1, 0
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            closed = count_closed(socks)
            still_open = sum(1 for i, s in enumerate(socks) if s is not None and i not in closed)
            if still_open <= WORKERS * CAP:
                break
            stable = stable + 1 if len(closed) == last else 0
            if stable >= 10:
                break
            last = len(closed)
            time.sleep(0.1)
        open_idx = [i for i, s in enumerate(socks) if s is not None and i not in closed]
        assert len(open_idx) <= WORKERS * CAP, (
            f"{len(open_idx)} connections still open, cap is {CAP} per worker x {WORKERS}")
        assert open_idx, "every connection was closed, even the newest"
        assert not [i for i in range(1000) if i not in closed and socks[i] is not None], (
            "some of the 1000 oldest connections are still open")
        assert min(open_idx) >= N_IDLE - 2000, (
            f"an old connection (#{min(open_idx)}) survived while newer ones were evicted")
        # a fresh connection is served (it evicts an old idle one)
        expect(client.query("web.example.com.", "A", tcp=True), rcode="NOERROR")
        for _ in range(5):
            t = time.monotonic()
            expect(client.query("web.example.com.", "A", timeout=1.0), rcode="NOERROR")
            udp_lat.append(time.monotonic() - t)
    finally:
        for s in socks:
            if s is not None:
                s.close()
    # UDP must not wait for the accept storm. The median catches a server that stalls; the
    # max only a stall, not one scheduling hiccup of a loaded 2-core CI machine under ASan.
    lat = sorted(udp_lat)
    assert lat[len(lat) // 2] < 0.3 and lat[-1] < 1.0, (
        f"UDP slow while connections piled up: median {lat[len(lat) // 2]:.3f}s, "
        f"max {lat[-1]:.3f}s")
    client.alive_check(tcp=True)
    assert cap_server.alive()
