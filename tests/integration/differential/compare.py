"""Sending the corpus and comparing answers.

A response is reduced to what the comparison looks at: rcode (with the EDNS extended bits),
the flags AA TC RD RA, OPT presence, and the answer, authority and additional sections as
rrsets {(owner lower-cased, class, type, covers): (ttl, {rdata})} (dnspython equality,
order-insensitive, TTL included). "No response" is a result of its own.

zonejet matches a reference when rcode, flags, OPT presence, answer and authority are equal and
zonejet's additional section is a subset of the reference's (every zonejet additional rrset is
in the reference's, equal).

One rule differs by design: ANY over TCP. Knot 3.2 and NSD 4.6 answer ANY with a single RRset
on every transport (RFC 8482 §4.1 allows it), zonejet gives all RRsets over TCP (and one over
UDP, which the corpus does not send). For ANY over TCP the answer section matches when the
reference's answer is a subset of zonejet's; everything else is compared as usual.
"""

import socket
import struct
import time
from concurrent.futures import ThreadPoolExecutor

import dns.flags
import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype

QUERY_TIMEOUT_S = 2.0
SILENCE_S = 0.5  # malformed packets: how long we wait before concluding "no response"
FLAGS = [("AA", dns.flags.AA), ("TC", dns.flags.TC), ("RD", dns.flags.RD), ("RA", dns.flags.RA)]


def send(port, wire, tcp, timeout):
    if tcp:
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        except OSError:
            return None
        try:
            s.settimeout(timeout)
            s.sendall(struct.pack("!H", len(wire)) + wire)
            buf = b""
            deadline = time.monotonic() + timeout
            need = 2
            while len(buf) < need and time.monotonic() < deadline:
                chunk = s.recv(65537)
                if not chunk:
                    break
                buf += chunk
                if len(buf) >= 2:
                    need = 2 + struct.unpack("!H", buf[:2])[0]
            return buf[2:need] if len(buf) >= need and need > 2 else None
        except (socket.timeout, ConnectionError):
            return None
        finally:
            s.close()
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.settimeout(timeout)
        s.connect(("127.0.0.1", port))
        s.send(wire)
        return s.recv(65535)
    except (socket.timeout, ConnectionError):
        return None
    finally:
        s.close()


def _section(sec):
    out = {}
    for rrset in sec:
        key = (rrset.name.to_text().lower(), int(rrset.rdclass), int(rrset.rdtype),
               int(rrset.covers))
        if key in out:  # same rrset twice in one section: keep it visible in the diff
            key = key + ("dup",)
        out[key] = (rrset.ttl, frozenset(rrset))
    return out


class Reduced:
    def __init__(self, wire):
        self.wire = wire
        self.none = wire is None
        self.error = None
        if self.none:
            return
        try:
            w = wire
            if len(w) >= 4 and ((w[2] >> 3) & 0xF) in (3, *range(6, 16)):
                w = w[:2] + bytes([w[2] & 0x87]) + w[3:]  # opcodes dnspython cannot represent
            m = dns.message.from_wire(w)
        except Exception as e:  # unparsable: compare bytes-level failure
            self.error = f"unparsable response ({e!r}): {wire.hex()}"
            return
        self.msg = m
        self.rcode = int(m.rcode())
        self.flags = {n for n, f in FLAGS if m.flags & f}
        self.opt = m.edns >= 0
        self.answer = _section(m.answer)
        self.authority = _section(m.authority)
        self.additional = _section(m.additional)

    def summary(self):
        if self.none:
            return "(no response)"
        if self.error:
            return self.error
        return self.msg.to_text()


def _fmt(d):
    lines = []
    for k, (ttl, rds) in sorted(d.items(), key=lambda kv: str(kv[0])):
        for rd in sorted(rds, key=lambda r: r.to_text()):
            lines.append(f"{k[0]} {ttl} {dns.rdataclass.to_text(k[1])} "
                         f"{dns.rdatatype.to_text(k[2])} {rd.to_text()}")
    return lines


def differences(zj, ref, answer_superset=False):
    """List of human-readable differences of zonejet's reduced response from ref's ([] = match).
    answer_superset: zonejet's answer need only contain ref's (ANY over TCP)."""
    if zj.none or ref.none:
        if zj.none and ref.none:
            return []
        return ["response: " + ("none from zonejet" if zj.none else "zonejet answered, ref did not")]
    if zj.error or ref.error:
        return [zj.error or ref.error] if (zj.error or "") != (ref.error or "") else []
    out = []
    if zj.rcode != ref.rcode:
        out.append(f"rcode {dns.rcode.to_text(zj.rcode)} vs {dns.rcode.to_text(ref.rcode)}")
    if zj.flags != ref.flags:
        out.append(f"flags {sorted(zj.flags)} vs {sorted(ref.flags)}")
    if zj.opt != ref.opt:
        out.append(f"OPT {'present' if zj.opt else 'absent'} vs {'present' if ref.opt else 'absent'}")
    for name in ("answer", "authority"):
        a, b = getattr(zj, name), getattr(ref, name)
        if name == "answer" and answer_superset:
            missing = {k: v for k, v in b.items() if a.get(k) != v}
            if missing:
                out.append(f"answer (ANY/TCP): zonejet lacks {_fmt(missing)}")
            continue
        if a != b:
            only_zj = sorted(set(_fmt({k: v for k, v in a.items() if b.get(k) != v})))
            only_ref = sorted(set(_fmt({k: v for k, v in b.items() if a.get(k) != v})))
            out.append(f"{name}: zonejet-only {only_zj} / ref-only {only_ref}")
    extra = {k: v for k, v in zj.additional.items() if ref.additional.get(k) != v}
    if extra:
        out.append(f"additional: zonejet has {_fmt(extra)} not in ref's")
    return out


def run_corpus(port, cases, workers=1):
    """Send every case to 127.0.0.1:port; returns [Reduced] in case order."""
    def one(c):
        timeout = SILENCE_S if c.kind == "malformed" else QUERY_TIMEOUT_S
        return Reduced(send(port, c.wire, c.tcp, timeout))

    if workers <= 1:
        return [one(c) for c in cases]
    with ThreadPoolExecutor(workers) as ex:
        return list(ex.map(one, cases))


class Outcome:
    def __init__(self):
        self.cases = 0
        self.match_knot = 0
        self.match_nsd = 0
        self.match_both = 0
        self.mismatches = []  # (case, zj, knot, nsd, diffs_knot, diffs_nsd)
        self.ref_disagreements = []  # (case, "knot"|"nsd"|"neither")

    def summary(self, label):
        return (f"differential [{label}]: {self.cases} cases, {self.match_knot} match knot, "
                f"{self.match_nsd} match nsd, {self.match_both} match both, "
                f"{len(self.mismatches)} mismatch")

    def disagreement_report(self):
        by = {}
        for c, who in self.ref_disagreements:
            by.setdefault(who, []).append(c)
        lines = [f"knot and nsd disagree on {len(self.ref_disagreements)} cases; zonejet matched: "
                 + ", ".join(f"{k}={len(v)}" for k, v in sorted(by.items()))]
        for who, cs in sorted(by.items()):
            for c in cs:
                lines.append(f"  [{who}] {c.describe()}")
        return "\n".join(lines)

    def mismatch_report(self, limit=40):
        lines = []
        for case, zj, knot, nsd, dk, dn in self.mismatches[:limit]:
            lines.append(f"=== {case.describe()}")
            lines.append("  vs knot: " + "; ".join(dk))
            lines.append("  vs nsd:  " + "; ".join(dn))
            lines.append("  --- zonejet ---\n" + _indent(zj.summary()))
            lines.append("  --- knot ---\n" + _indent(knot.summary()))
            lines.append("  --- nsd ---\n" + _indent(nsd.summary()))
        if len(self.mismatches) > limit:
            lines.append(f"... and {len(self.mismatches) - limit} more mismatches")
        return "\n".join(lines)


def _indent(text):
    return "\n".join("    " + line for line in text.splitlines())


def compare_all(cases, zj_results, knot_results, nsd_results):
    out = Outcome()
    for c, zj, kn, ns in zip(cases, zj_results, knot_results, nsd_results):
        out.cases += 1
        sup = c.kind == "query" and c.qtype == "ANY" and c.tcp
        dk, dn = differences(zj, kn, sup), differences(zj, ns, sup)
        mk, mn = not dk, not dn
        out.match_knot += mk
        out.match_nsd += mn
        out.match_both += mk and mn
        refs_agree = not differences(kn, ns) and not differences(ns, kn)
        if not refs_agree:
            out.ref_disagreements.append((c, "both" if mk and mn else "knot" if mk else
                                          "nsd" if mn else "neither"))
        if not (mk or mn):
            out.mismatches.append((c, zj, kn, ns, dk, dn))
    return out
