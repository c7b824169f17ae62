"""Builds the differential query corpus from the zone files themselves (fixed seed, so every run
sends the same bytes).

Sources of names: every owner in the zones and every empty non-terminal above them; missing
names beside and below them; names under the wildcards, the delegations and the DNAMEs; names
outside every zone. Each name is asked for many types (A AAAA NS SOA MX TXT CNAME SRV CAA DS
DNAME, ANY over TCP only, and one random type it probably lacks), over UDP or TCP, with or
without EDNS (and DO), some in 0x20 mixed case. A few malformed packets close the corpus.
"""

import random
import struct
from dataclasses import dataclass

import dns.flags
import dns.message
import dns.name
import dns.rdatatype
import dns.zone

TYPES = ["A", "AAAA", "NS", "SOA", "MX", "TXT", "CNAME", "SRV", "CAA", "DS", "DNAME"]
RANDOM_TYPES = ["NAPTR", "HINFO", "PTR", "SSHFP", "TLSA", "LOC", "URI", "SVCB", "HTTPS",
                "DNSKEY", "SPF", "TYPE65000", "TYPE4242"]
# (transport, edns, do) rotations; each (name, type) pair gets one, chosen by the seeded RNG.
MODES = [("udp", False, False), ("udp", True, False), ("tcp", False, False),
         ("tcp", True, True), ("udp", True, True)]


@dataclass
class Case:
    cid: str
    wire: bytes
    tcp: bool
    kind: str  # "query" or "malformed"
    qname: str = ""
    qtype: str = ""
    edns: bool = False
    do: bool = False

    def describe(self):
        if self.kind == "malformed":
            return f"{self.cid} [{('TCP' if self.tcp else 'UDP')}] raw {self.wire.hex()}"
        opts = "EDNS" + ("+DO" if self.do else "") if self.edns else "no EDNS"
        return f"{self.qname} {self.qtype} over {'TCP' if self.tcp else 'UDP'}, {opts}"


def _mixed(name, rnd):
    return "".join(c.upper() if rnd.random() < 0.5 else c.lower() for c in name)


def zone_names(zones):
    """{name text: origin} for owners and empty non-terminals of each zone."""
    out = {}
    for origin, path in zones.items():
        z = dns.zone.from_file(str(path), origin, relativize=False)
        o = dns.name.from_text(origin)
        for name in z.nodes:
            n = name
            while n.is_subdomain(o):
                out.setdefault(n.to_text(), origin)
                if n == o:
                    break
                n = n.parent()
    return out


def extra_names(zones):
    """Hand-picked names for the interesting paths, filtered to zones that are served."""
    names = [
        # missing names beside and below existing ones
        "nope.example.com.", "x.web.example.com.", "a.b.c.nope.example.com.",
        "x._tcp.example.com.", "nope.example.net.", "x.host1.example.net.",
        "nope.sub.example.com.", "x.www.sub.example.com.",
        # wildcards
        "foo.wild.example.com.", "a.b.wild.example.com.", "x.exists.wild.example.com.",
        "any.wc.example.com.", "x.y.wc.example.com.", "other.blk.example.com.",
        "x.ent.blk.example.com.", "x.deep.ent.blk.example.com.", "bob.users.example.net.",
        "x.alice.users.example.net.", "a.b.users.example.net.",
        # delegations
        "www.other.example.com.", "a.b.other.example.com.", "x.ns1.other.example.com.",
        "x.sub.example.com.", "deep.www.sub.example.com.",
        # below DNAMEs
        "www.dname.example.com.", "a.b.dname.example.com.", "mail.dname.example.com.",
        "host.olddept.example.com.", "nope.olddept.example.com.", "x.host.olddept.example.com.",
        ".".join(["x" * 63] * 2) + ".ovf.example.com.",
        ".".join(["x" * 63] * 3) + ".xxxxxx.ovf.example.com.",
        # outside every zone
        "www.example.org.", "example.org.", "com.", ".", "xexample.com.",
    ]
    zs = [dns.name.from_text(z) for z in zones]
    inside = [n for n in names if any(dns.name.from_text(n).is_subdomain(z) for z in zs)]
    outside = [n for n in names if n not in inside]
    return inside + outside


def _query_wire(qname, qtype, edns, do, qid):
    q = dns.message.make_query(qname, qtype, use_edns=False, id=qid, flags=0)
    if edns:
        q.use_edns(0, dns.flags.DO if do else 0, 1232)
    return q.to_wire()


def _hdr(qid, flags=0, qd=1, ar=0):
    return struct.pack("!HHHHHH", qid, flags, qd, 0, 0, ar)


def _qn(name):
    out = b""
    for lb in name.rstrip(".").split("."):
        out += bytes([len(lb)]) + lb.encode()
    return out + b"\x00"


def malformed_cases():
    q = _qn("example.com.") + struct.pack("!HH", 6, 1)
    q2 = _qn("example.net.") + struct.pack("!HH", 6, 1)
    raw = {
        "qdcount-2": _hdr(0x1001, qd=2) + q + q2,
        "qdcount-0": _hdr(0x1002, qd=0),
        "opcode-3": _hdr(0x1003, flags=3 << 11) + q,
        "opcode-1-iquery": _hdr(0x1004, flags=1 << 11) + q,
        "label-64": _hdr(0x1005) + b"\x40" + b"a" * 64 + _qn("example.com.") + b"\x00\x01\x00\x01",
        "name-256": _hdr(0x1006) + b"".join(b"\x3f" + b"a" * 63 for _ in range(4)) +
        b"\x03abc\x00\x00\x01\x00\x01",
        "pointer-in-question": _hdr(0x1007) + b"\x03www\xc0\x0c\x00\x01\x00\x01",
        "two-opt": _hdr(0x1008, ar=2) + q + (b"\x00\x00\x29\x04\xd0" + bytes(6)) * 2,
        "opt-option-overrun": _hdr(0x1009, ar=1) + q + b"\x00\x00\x29\x04\xd0\x00\x00\x00\x00"
        b"\x00\x08\x00\x0a\x00\x10abcd",
        "edns-version-1": _hdr(0x100A, ar=1) + q + b"\x00\x00\x29\x04\xd0\x00\x01\x00\x00\x00\x00",
        "short-header": _hdr(0x100B)[:7],
        "qr-set": _hdr(0x100C, flags=0x8000) + q,
        "truncated-question": _hdr(0x100D) + q[:-3],
    }
    out = []
    for tcp in (False, True):
        for k, w in raw.items():
            if tcp and k in ("short-header",):
                continue
            out.append(Case(f"malformed:{k}:{'tcp' if tcp else 'udp'}", w, tcp, "malformed"))
    return out


def build(zones, seed=8482):
    """The corpus for {origin: zone file}: a list of Case, several hundred long."""
    rnd = random.Random(seed)
    names = list(zone_names(zones)) + extra_names(zones)
    seen = set()
    cases = []
    for name in names:
        if name in seen:
            continue
        seen.add(name)
        types = TYPES + [rnd.choice(RANDOM_TYPES)]
        for t in types + ["ANY"]:
            transport, edns, do = rnd.choice(MODES)
            if t == "ANY":  # RFC 8482 minimal ANY over UDP differs by design: TCP only
                transport = "tcp"
            qname = _mixed(name, rnd) if rnd.random() < 0.25 else name
            qid = rnd.randrange(0x10000)
            cases.append(Case(
                cid=f"{qname}/{t}/{transport}/{'edns' if edns else 'noedns'}{'+do' if do else ''}",
                wire=_query_wire(qname, t, edns, do, qid), tcp=transport == "tcp",
                kind="query", qname=qname, qtype=t, edns=edns, do=do,
            ))
    cases += malformed_cases()
    return cases
