"""The answer table (src/dns/anstab.h) against the general answer path.

Two zonejetd processes serve the same images: one as shipped (the table on), one with
`--answer-table=no`. Every query goes to both, and the responses must be equal as DNS messages:
rcode, flags, OPT presence, and the answer, authority and additional sections as rrsets (TTLs
included; only name compression may differ). The zones are the bundled ones, each in its own
image (so the parent's delegation and the child zone come from different images), plus
tests/integration/zones/table.example.zone, written for the table's cases: wildcards with
every kind of data, a wildcard delegation, CNAME chains into delegations, wildcards and
NXDOMAIN, a DNAME, empty non-terminals with and without a wildcard child, a large RRset that
does not fit 512 bytes, mixed-case owners. Names below every owner, in mixed case, with and
without EDNS (payload 512, 1232 with DO, 4096), over UDP and TCP.

The table must also be in use: the server's `table` counter (zonejet-ctl stats) counts the
responses it answered, and the general-path server's stays 0.
"""

import random
import subprocess
import time

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.rdatatype
import dns.zone
import pytest

import zjtest
from differential import compare
from zjtest import BUNDLED, TEST_ZONES_DIR

CTL = zjtest.BUILD_DIR / "zonejet-ctl"
TABLE_ZONE = TEST_ZONES_DIR / "table.example.zone"
TYPES = ["A", "AAAA", "MX", "TXT", "NS", "SOA", "CNAME", "SRV", "HINFO", "TYPE65280", "DS", "DNAME"]
# (tcp, edns payload or None, DO, EDNS options)
COOKIE = dns.edns.GenericOption(10, bytes(range(8)))
NSID = dns.edns.GenericOption(3, b"")
MODES = [(False, None, False, ()), (False, 512, False, ()), (False, 1232, True, ()),
         (True, None, False, ()), (False, 4096, False, ()), (True, 1232, False, ()),
         (False, 1232, False, (COOKIE,)), (False, 1232, False, (NSID,))]


def _zones():
    z = dict(BUNDLED)
    z["table.example."] = TABLE_ZONE
    return z


def _names(zones):
    """Every owner and every empty non-terminal (the owners' ancestors inside the zone), and
    for each wildcard owner names it synthesizes for, longer and shorter than itself."""
    out = set()
    for origin, path in zones.items():
        zone = dns.zone.from_file(str(path), origin=origin, relativize=False, check_origin=False)
        apex = dns.name.from_text(origin)
        for name in zone.nodes:
            n = name
            while n.is_subdomain(apex):
                out.add(n.to_text())
                if n == apex:
                    break
                n = n.parent()
            if name.labels[0] == b"*":
                parent = name.parent().to_text()
                out.update({"synth-long." + parent, "a.b." + parent, "q." + parent})
    return sorted(out)


def _mixed(name, rnd):
    return "".join(c.upper() if rnd.random() < 0.5 else c for c in name)


def _cases(zones):
    rnd = random.Random(20261130)
    names = _names(zones)
    queries = []
    for name in names:
        below = ["x." + name, "a.b." + name, "nx-" + str(rnd.randrange(1000)) + "." + name]
        for qname in [name] + below:
            for t in TYPES:
                tcp, payload, do, opts = MODES[rnd.randrange(len(MODES))]
                queries.append((qname if rnd.random() < 0.7 else _mixed(qname, rnd), t, tcp,
                                payload, do, opts))
        queries.append((name, "ANY", True, None, False, ()))
    # every mode for a few names of each kind
    for qname in ["www.table.example.", "q.wild.table.example.", "nothing.table.example.",
                  "x.deleg.table.example.", "big.table.example.", "x.big.table.example.",
                  "cname2wild.table.example.", "x.sub.example.com.", "Www.Sub.Example.Com."]:
        for t in ("A", "TXT", "MX"):
            for tcp, payload, do, opts in MODES:
                queries.append((qname, t, tcp, payload, do, opts))
    return queries


def _wire(qname, t, payload, do, qid, opts=()):
    q = dns.message.make_query(qname, t, use_edns=False, id=qid, flags=0)
    if payload is not None:
        q.use_edns(0, dns.flags.DO if do else 0, payload, options=list(opts))
    return q.to_wire()


def _ctl(srv, *args):
    p = subprocess.run([str(CTL), "--control", str(srv.ctl_path), *args], capture_output=True,
                       text=True, timeout=30)
    assert p.returncode == 0, f"zonejet-ctl {' '.join(args)}: {p.returncode}\n{p.stderr}"
    return p.stdout


def _stat(srv, key):
    for line in _ctl(srv, "stats").splitlines():
        k, _, v = line.partition(" ")
        if k == key:
            return int(v)
    raise AssertionError(f"no '{key}' in stats")


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    d = tmp_path_factory.mktemp("anstab")
    images = []
    for origin, path in _zones().items():
        img = d / (origin.rstrip(".") + ".img")
        zjtest.compile_image(img, [path], origins={str(path): origin})
        images += ["--image", img]
    servers = []
    try:
        for name, extra in (("table", []), ("general", ["--answer-table=no"])):
            ctl_path = d / f"{name}.sock"
            srv = zjtest.ZJServer(["--workers", "1", "--control", ctl_path, *images, *extra], d,
                                  name=name)
            srv.ctl_path = ctl_path
            srv.start()
            servers.append(srv)
            deadline = time.monotonic() + 5.0
            while not ctl_path.exists() and time.monotonic() < deadline:
                time.sleep(0.02)
        yield servers[0], servers[1]
    finally:
        for s in servers:
            s.stop(check=False)


def test_status_reports_table(pair):
    table, general = pair
    line = [x for x in _ctl(table, "status").splitlines() if x.startswith("answer-table")]
    assert line and line[0].startswith("answer-table images "), line
    words = line[0].split()
    assert int(words[2]) == len(_zones()), line  # one table per image
    assert int(words[4]) >= 60, line  # the owners and empty non-terminals of the zones
    assert "answer-table off" in _ctl(general, "status")


def test_table_equals_general_path(pair):
    table, general = pair
    cases = _cases(_zones())
    assert len(cases) > 2000
    before = _stat(table, "table")
    diffs = []
    for i, (qname, t, tcp, payload, do, opts) in enumerate(cases):
        wire = _wire(qname, t, payload, do, i & 0xFFFF, opts)
        a = compare.Reduced(compare.send(table.port, wire, tcp, compare.QUERY_TIMEOUT_S))
        b = compare.Reduced(compare.send(general.port, wire, tcp, compare.QUERY_TIMEOUT_S))
        assert not a.none and not b.none, f"no response to {qname} {t} (tcp={tcp})"
        assert a.error is None, a.error
        d = compare.differences(a, b)
        if not d and a.additional != b.additional:
            d = [f"additional {compare._fmt(a.additional)} vs {compare._fmt(b.additional)}"]
        if d:
            diffs.append(f"{qname} {t} tcp={tcp} edns={payload} do={do} options={opts}: "
                         + "; ".join(d))
    used = _stat(table, "table") - before
    print(f"answer table: {len(cases)} queries, {used} answered from the table, "
          f"{len(diffs)} differences")
    assert not diffs, "\n".join(diffs[:40])
    assert used > len(cases) // 2, f"only {used} of {len(cases)} answered from the table"
    assert _stat(general, "table") == 0


def test_table_answers_exact_bytes_for_plain_hits(pair):
    """A plain hit is the image's bytes: the same response, byte for byte, as the general path
    (only responses whose bodies moved may differ in compression)."""
    table, general = pair
    for qname in ("www.table.example.", "WWW.table.EXAMPLE.", "mail.table.example."):
        for t in ("A", "AAAA"):
            wire = _wire(qname, t, 1232, False, 7)
            assert compare.send(table.port, wire, False, 2) == \
                compare.send(general.port, wire, False, 2)


def test_fallback_cases_still_answered_by_general_path(pair):
    """A response that does not fit the client's limit, an ECS option and a DS query go to the
    general path: the table counter does not move for them. A cookie does not change the
    response (none is echoed), so the table answers it."""
    table, _ = pair
    before = _stat(table, "table")
    big = dns.message.from_wire(compare.send(table.port, _wire("big.table.example.", "TXT",
                                                                  None, False, 1), False, 2))
    assert big.flags & dns.flags.TC
    ecs = dns.edns.ECSOption("192.0.2.0", 24)
    q = dns.message.make_query("www.table.example.", "A", use_edns=0, payload=1232, options=[ecs])
    r = dns.message.from_wire(compare.send(table.port, q.to_wire(), False, 2))
    assert r.answer and r.answer[0][0].to_text() == "192.0.2.3"
    r = dns.message.from_wire(compare.send(table.port, _wire("sub.example.com.", "DS", None,
                                                                False, 2), False, 2))
    assert r.rcode() == 0
    assert _stat(table, "table") == before
    r = dns.message.from_wire(compare.send(table.port, _wire("www.table.example.", "A", None,
                                                                False, 3), False, 2))
    assert r.answer and _stat(table, "table") == before + 1
    q = dns.message.make_query("www.table.example.", "A", use_edns=0, payload=1232,
                               options=[COOKIE])
    r = dns.message.from_wire(compare.send(table.port, q.to_wire(), False, 2))
    assert r.answer and r.edns == 0 and not r.options
    assert _stat(table, "table") == before + 2
