"""Helpers of the routing-policy integration tests (test_policy*.py): a reader for policy files
(the expected record sets come from the same file the server compiles), identification of the
record set an answer came from, a fast query loop, and the ECS scope a response must carry.
"""

import ipaddress
import random
import shlex
import socket
import struct
from dataclasses import dataclass, field

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype

from zjtest import parse, read_tcp_msg, QUERY_TIMEOUT_S


# --------------------------------------------------------------------------------------------
# policy files


@dataclass
class PSet:
    owner: str  # absolute, lower case
    rdtype: str
    policy: str
    ident: str
    attrs: dict
    ttl: int
    records: list = field(default_factory=list)  # rdata text as written

    def rdatas(self, origin):
        """The records as a frozenset of comparable texts (names made absolute)."""
        out = set()
        for r in self.records:
            if self.rdtype in ("CNAME", "NS", "PTR"):
                out.add(str(dns.name.from_text(r, dns.name.from_text(origin))).lower())
            else:
                out.add(r.strip())
        return frozenset(out)


def read_policy(path, origin):
    """{(owner, type): [PSet, ...]} in file order, from the `set` statements of a policy file."""
    sets = {}
    ttl = 60
    cur = None
    with open(path) as f:
        for line in f:
            body = line.split("#", 1)[0].rstrip()
            if not body.strip():
                continue
            if body[0] in " \t":
                assert cur is not None, f"{path}: record line outside a set: {line!r}"
                cur.records.append(body.strip())
                continue
            toks = shlex.split(body)
            cur = None
            if toks[0] == "$TTL":
                ttl = int(toks[1])
            elif toks[0] == "set":
                owner, rdtype, policy, ident = toks[1:5]
                attrs = dict(t.split("=", 1) for t in toks[5:])
                owner = owner if owner.endswith(".") else (
                    origin if owner == "@" else f"{owner}.{origin}")
                cur = PSet(owner.lower(), rdtype.upper(), policy, ident, attrs,
                           int(attrs.get("ttl", ttl)))
                sets.setdefault((cur.owner, cur.rdtype), []).append(cur)
    return sets


def rrset_texts(rrset):
    out = set()
    for rd in rrset:
        if rd.rdtype in (dns.rdatatype.CNAME, dns.rdatatype.NS, dns.rdatatype.PTR):
            out.add(str(rd.target).lower())
        else:
            out.add(rd.to_text())
    return frozenset(out)


def find_rrset(section, name, rdtype):
    want = dns.name.from_text(name)
    t = dns.rdatatype.from_text(rdtype)
    found = [r for r in section if r.name == want and r.rdtype == t]
    return found[0] if found else None


def chosen_set(resp, sets, origin, name=None, rdtype=None):
    """The PSet whose records are exactly the answer's RRset of (name, type); asserts that the
    response is a NOERROR answer carrying exactly one whole set, with that set's TTL."""
    name = name or sets[0].owner
    rdtype = rdtype or sets[0].rdtype
    ctx = f"\n--- response ---\n{resp}"
    assert resp.rcode() == dns.rcode.NOERROR, f"rcode {dns.rcode.to_text(resp.rcode())}" + ctx
    assert resp.flags & dns.flags.AA, "AA not set" + ctx
    rrset = find_rrset(resp.answer, name, rdtype)
    assert rrset is not None, f"no {name} {rdtype} in the answer" + ctx
    got = rrset_texts(rrset)
    for s in sets:
        if s.rdatas(origin) == got:
            assert rrset.ttl == s.ttl, f"set {s.ident}: TTL {rrset.ttl}, want {s.ttl}" + ctx
            return s
    raise AssertionError(
        f"{name} {rdtype} answer {sorted(got)} is no set's records; sets: "
        + ", ".join(f"{s.ident}={sorted(s.rdatas(origin))}" for s in sets) + ctx)


def answer_values(resp, name, rdtype="A"):
    """(RDATA texts of the (name, type) RRset in the answer, ANCOUNT read from the wire): a
    duplicate record, which dnspython would merge, shows as ANCOUNT > len(values)."""
    rrset = find_rrset(resp.answer, name, rdtype)
    values = rrset_texts(rrset) if rrset is not None else frozenset()
    return values, struct.unpack("!H", resp.wire[6:8])[0]


def assert_nodata(resp, origin):
    ctx = f"\n--- response ---\n{resp}"
    assert resp.rcode() == dns.rcode.NOERROR, f"rcode {dns.rcode.to_text(resp.rcode())}, " \
                                              "want NOERROR (NODATA)" + ctx
    assert resp.flags & dns.flags.AA, "AA not set" + ctx
    assert not resp.answer, "NODATA expected: answer section not empty" + ctx
    soa = find_rrset(resp.authority, origin, "SOA")
    assert soa is not None, f"NODATA without the SOA of {origin} in authority" + ctx


# --------------------------------------------------------------------------------------------
# queries


def make_wire(name, rdtype="A", options=None, edns=None):
    """Query bytes (RD clear). edns: None = EDNS only with options, True/False = force."""
    use = (edns if edns is not None else bool(options))
    q = dns.message.make_query(name, rdtype, use_edns=False, flags=0)
    if use:
        q.use_edns(0, 0, 1232, options=options)
    return q.to_wire()


def ask(port, name, rdtype="A", n=1, options=None, tcp=False, edns=None):
    """n queries for (name, type) over one socket (UDP, or one TCP connection), one at a time;
    returns the parsed responses (each with .wire). Any timeout or wrong ID fails."""
    base = bytearray(make_wire(name, rdtype, options, edns))
    out = []
    fam = socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM if tcp else socket.SOCK_DGRAM)
    s.settimeout(QUERY_TIMEOUT_S)
    try:
        s.connect(("127.0.0.1", port))
        for _ in range(n):
            qid = random.randint(0, 0xFFFF)
            base[0:2] = struct.pack("!H", qid)
            if tcp:
                s.sendall(struct.pack("!H", len(base)) + bytes(base))
                data = read_tcp_msg(s)
                assert data is not None, f"TCP connection closed before the answer to {name}"
            else:
                s.send(bytes(base))
                try:
                    data = s.recv(65535)
                except socket.timeout:
                    raise AssertionError(f"no UDP answer to {name} {rdtype} within "
                                         f"{QUERY_TIMEOUT_S}s") from None
            assert data[:2] == base[:2], f"answer ID {data[:2].hex()} for query {qid:04x}"
            msg = parse(data, what=f"response to {name} {rdtype}")
            msg.wire = data
            out.append(msg)
    finally:
        s.close()
    return out


def ask1(port, name, rdtype="A", options=None, tcp=False, edns=None):
    return ask(port, name, rdtype, 1, options, tcp, edns)[0]


def binomial_ok(count, n, p, sigmas=4.5):
    """(ok, text): count of n trials within `sigmas` standard deviations of n*p."""
    mean = n * p
    sd = (n * p * (1 - p)) ** 0.5
    ok = abs(count - mean) <= sigmas * sd
    return ok, f"{count}/{n} (expected {mean:.0f} ± {sigmas * sd:.0f}, p={p:.3f})"


# --------------------------------------------------------------------------------------------
# ECS scope expected in a response (RFC 7871 §7.2.1): the answer must hold for every address of
# the returned scope block, so the scope is the shortest prefix length, at least the length of
# the network that decided, whose block around the client's address holds no more specific
# network that could decide differently.


def _block(addr, length):
    return ipaddress.ip_network(f"{addr}/{length}", strict=False)


def prefix_scope(addr, prefixes):
    """(deciding prefix or None, scope) for addr among prefixes (ip_network objects): the longest
    prefix holding addr, and the shortest block around addr, at least that long, which no longer
    prefix overlaps."""
    addr = ipaddress.ip_address(addr)
    fam = [p for p in prefixes if p.version == addr.version]
    holding = [p for p in fam if addr in p]
    deciding = max(holding, key=lambda p: p.prefixlen) if holding else None
    base = deciding.prefixlen if deciding else 0
    longer = [p for p in fam if p.prefixlen > base]
    for length in range(base, addr.max_prefixlen + 1):
        blk = _block(addr, length)
        if not any(blk.overlaps(p) for p in longer):
            return deciding, length
    return deciding, addr.max_prefixlen


def ecs_client_addr(prefix):
    """The address the server must use for an ECS "ADDR/LEN": ADDR with host bits cleared."""
    return ipaddress.ip_network(prefix, strict=False).network_address
