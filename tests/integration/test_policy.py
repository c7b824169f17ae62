"""Route 53-style routing policies without health checks (docs/policies.md), against the real
zonejetd over UDP and TCP, both I/O backends. The zone is tests/integration/policy/pol.test.zone
with its policy file pol.test.policy (compiled by zonejet-compile, which reads the policy file
beside the zone); the expected record sets are read from that same policy file.

Checks:
- weighted 1/3/0 (one server worker, fixed --seed): 4000 answers, each exactly one set's
  records with its TTL; the 1 and 3 shares within 4.5 binomial standard deviations of 1/4 and
  3/4; the zero-weight set never (its non-zero neighbours are healthy); all weights zero: three
  equal shares over 3000 answers; the same over TCP (fewer queries);
- multivalue with 10 sets and no checks: exactly 8 distinct values per answer, all 10 seen;
- a weighted CNAME whose targets are in the zone: the chain is followed (CNAME + target A);
  a plain CNAME into a weighted name gets the CNAME and one weighted set; a plain TXT beside a
  policy A is answered; a type the name lacks is NODATA;
- geolocation from a MaxMind database the test writes (policy/make_geoip.pl; continent,
  country, subdivision as in GeoLite2-City): with ECS from each network the most specific set
  (subdivision > country > continent > default) answers; a network without location data and
  an address outside the database get the default; an ECS address is used with its host bits
  cleared; without ECS the packet's source 127.0.0.1 (in the database as South America) is used;
  a geo policy without a default answers NODATA (NOERROR, SOA in authority) for an unmatched
  client;
- CIDR collections (IPv4 and IPv6, nested prefixes: the longest wins, `*` catches the rest and a
  location without a set); without a default an unmatched client is NODATA; without ECS
  127.0.0.1 matches the collection's 127.0.0.0/8;
- latency table: client prefixes and locations map to region orders; the first region's set
  answers;
- ECS replies echo family, source prefix and address, with the scope prefix length the answer
  depended on: 0 for weighted, multivalue and CNAME-weighted answers; for geo, cidr and latency
  the length of the network that decided, narrowed (RFC 7871 §7.2.1) so the scope block holds
  no more specific network of the map (policylib.prefix_scope computes it from the networks
  written into the database or the policy file);
- policy input errors are reported by zonejet-compile as file:line (weight out of range,
  unknown check, failover without primary, unknown continent, country and subdivision country,
  unknown CIDR location, mixed policies on one name, two primaries, duplicate set id, bad RDATA).
Health checks, failover, reloads: test_policy_health.py.
"""

import ipaddress
import subprocess
import sys
from pathlib import Path

import pytest

import zjtest
from zjtest import ecs, ecs_reply, serve_managed

sys.path.insert(0, str(Path(__file__).resolve().parent / "policy"))
import policylib as pl  # noqa: E402

POLICY_DIR = zjtest.HERE / "policy"
ORIGIN = "pol.test."
ZONE = POLICY_DIR / "pol.test.zone"
POLICY = POLICY_DIR / "pol.test.policy"
SEED = 20240607

# The test's geolocation database: (network, continent, country, subdivision). Networks are
# neither nested nor adjacent with equal locations, so each answer's scope is that network's
# length. 10.58/16 is known to the database but has no location.
GEO_NETS = [
    ("10.51.0.0/16", "EU", "DE", None),
    ("10.52.0.0/16", "NA", "US", "CA"),
    ("10.53.16.0/20", "NA", "US", "NY"),
    ("10.54.0.0/24", "NA", "US", "TX"),
    ("10.55.0.0/16", "AS", "JP", None),
    ("10.56.0.0/17", "EU", "FR", None),
    ("10.57.0.0/16", "OC", "AU", None),
    ("10.58.0.0/16", None, None, None),
    ("127.0.0.0/8", "SA", "BR", None),
    ("2001:db8:1::/48", "EU", "DE", "BY"),
    ("2001:db8:2::/56", "NA", "US", "CA"),
    ("2001:db8:3::/48", "AS", "JP", None),
]
GEO_PREFIXES = [ipaddress.ip_network(n) for n, *_ in GEO_NETS]


@pytest.fixture(scope="session")
def geoip_db(tmp_path_factory):
    out = tmp_path_factory.mktemp("geoip") / "test-city.mmdb"
    specs = [f"{n}=" + ("/".join(x for x in (c, k, s) if x) if c else "-")
             for n, c, k, s in GEO_NETS]
    p = subprocess.run(["/usr/bin/perl", str(POLICY_DIR / "make_geoip.pl"), str(out), *specs],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, f"make_geoip.pl failed ({p.returncode}):\n{p.stderr}"
    return out


@pytest.fixture(scope="session")
def pol_image(workdir):
    return zjtest.compile_image(workdir / "pol.img", [ZONE])


@pytest.fixture(scope="session")
def sets():
    return pl.read_policy(POLICY, ORIGIN)


@pytest.fixture(scope="session")
def pol_server(workdir, backend, pol_image, geoip_db):
    extra = ["--seed", str(SEED), "--geoip", str(geoip_db)]
    # one worker: with --seed the sequence of weighted choices is then reproducible
    yield from serve_managed(workdir, backend, ["--image", pol_image, "--workers", "1", *extra],
                             "policy", ready_name=ORIGIN)


@pytest.fixture
def srv(pol_server):
    pol_server.restart_if_dead()
    return pol_server


def name(owner):
    return f"{owner}.{ORIGIN}"


def check_ecs(resp, prefix, scope):
    """The response echoes the ECS option of `prefix` with this scope."""
    net = ipaddress.ip_network(prefix, strict=False)
    got = ecs_reply(resp)
    want = (1 if net.version == 4 else 2, net.prefixlen, scope, str(net.network_address))
    assert got is not None, f"ECS option missing from the response to ECS {prefix}\n{resp}"
    assert got[:2] == want[:2] and ipaddress.ip_address(got[3]) == net.network_address, (
        f"ECS echo (family, source, scope, address) {got}, want {want}")
    assert got[2] == scope, (
        f"ECS scope {got[2]} for client {prefix}, want {scope}\n--- response ---\n{resp}")


# --------------------------------------------------------------------------------------------
# weighted


def test_weighted_shares(srv, sets, zj_summaries):
    """Weights 1/3/0 over 4000 answers; all-zero weights over 3000."""
    w = sets[(name("w"), "A")]
    n = 4000
    counts = {s.ident: 0 for s in w}
    for r in pl.ask(srv.port, name("w"), n=n):
        counts[pl.chosen_set(r, w, ORIGIN).ident] += 1
    assert counts["zero"] == 0, f"zero-weight set answered {counts['zero']} times while the " \
                                f"weighted sets are healthy: {counts}"
    ok, text = pl.binomial_ok(counts["one"], n, 1 / 4)
    assert ok, f"weight 1 of 1+3: {text}; all counts {counts}"
    ok, text = pl.binomial_ok(counts["three"], n, 3 / 4)
    assert ok, f"weight 3 of 1+3: {text}; all counts {counts}"
    zj_summaries.append(f"policy weighted 1/3/0 ({srv.backend}, seed {SEED}): {counts} of {n}")

    wz = sets[(name("wz"), "A")]
    n = 3000
    counts = {s.ident: 0 for s in wz}
    for r in pl.ask(srv.port, name("wz"), n=n):
        counts[pl.chosen_set(r, wz, ORIGIN).ident] += 1
    for ident, c in counts.items():
        ok, text = pl.binomial_ok(c, n, 1 / 3)
        assert ok, f"all-zero weights must share equally; set {ident}: {text}; {counts}"
    zj_summaries.append(f"policy weighted 0/0/0 ({srv.backend}, seed {SEED}): {counts} of {n}")


def test_weighted_tcp(srv, sets):
    w = sets[(name("w"), "A")]
    seen = {s.ident: 0 for s in w}
    for r in pl.ask(srv.port, name("w"), n=200, tcp=True):
        seen[pl.chosen_set(r, w, ORIGIN).ident] += 1
    assert seen["zero"] == 0 and seen["one"] > 0 and seen["three"] > seen["one"], seen


@pytest.mark.parametrize("owner", ["w", "wz", "mv", "cn"])
def test_non_location_policies_scope_zero(srv, tcp, owner):
    """Weighted, multivalue and weighted-CNAME answers do not depend on the address: scope 0."""
    for prefix in ("10.52.1.0/24", "2001:db8:1:2::/64"):
        r = pl.ask1(srv.port, name(owner), options=[ecs(prefix)], tcp=tcp)
        assert r.answer, f"{owner}: no answer\n{r}"
        check_ecs(r, prefix, 0)


# --------------------------------------------------------------------------------------------
# multivalue


def test_multivalue_eight_of_ten(srv, sets, tcp):
    mv = sets[(name("mv"), "A")]
    allv = frozenset().union(*(s.rdatas(ORIGIN) for s in mv))
    seen = set()
    for r in pl.ask(srv.port, name("mv"), n=150 if not tcp else 60, tcp=tcp):
        vals, ancount = pl.answer_values(r, name("mv"))
        assert ancount == len(vals) == 8, (
            f"multivalue with 10 healthy values: want 8 distinct records, got {ancount} "
            f"records, {len(vals)} distinct\n{r}")
        assert vals <= allv, f"values not in the policy: {sorted(vals - allv)}"
        rrset = pl.find_rrset(r.answer, name("mv"), "A")
        assert rrset.ttl == mv[0].ttl
        seen |= vals
    assert seen == allv, f"values never chosen: {sorted(allv - seen)}"


# --------------------------------------------------------------------------------------------
# CNAME and neighbours


def test_weighted_cname_chain_followed(srv, sets, tcp):
    cn = sets[(name("cn"), "CNAME")]
    seen = set()
    for r in pl.ask(srv.port, name("cn"), "A", n=60, tcp=tcp):
        s = pl.chosen_set(r, cn, ORIGIN, name("cn"), "CNAME")
        target = next(iter(s.rdatas(ORIGIN)))
        a = pl.find_rrset(r.answer, target, "A")
        assert a is not None, f"CNAME to {target} not followed\n{r}"
        want = {"a1.pol.test.": "198.51.100.1", "a2.pol.test.": "198.51.100.2"}[target]
        assert pl.rrset_texts(a) == {want} and a.ttl == 300, r
        assert len(r.answer) == 2, f"answer must be the CNAME and its target only\n{r}"
        seen.add(s.ident)
    assert seen == {"to-a1", "to-a2"}, seen
    # the CNAME itself when asked for
    r = pl.ask1(srv.port, name("cn"), "CNAME", tcp=tcp)
    pl.chosen_set(r, cn, ORIGIN, name("cn"), "CNAME")
    assert len(r.answer) == 1, r


def test_cname_into_policy(srv, sets, tcp):
    w = sets[(name("w"), "A")]
    for r in pl.ask(srv.port, name("towt"), n=20, tcp=tcp):
        c = pl.find_rrset(r.answer, name("towt"), "CNAME")
        assert c is not None and pl.rrset_texts(c) == {name("w")}, r
        assert pl.chosen_set(r, w, ORIGIN).ident != "zero"


def test_policy_name_other_types(srv, tcp):
    r = pl.ask1(srv.port, name("w"), "TXT", tcp=tcp)
    txt = pl.find_rrset(r.answer, name("w"), "TXT")
    assert txt is not None and pl.rrset_texts(txt) == {'"plain text beside a policy"'}, r
    pl.assert_nodata(pl.ask1(srv.port, name("w"), "AAAA", tcp=tcp), ORIGIN)
    r = pl.ask1(srv.port, name("plain"), tcp=tcp)
    assert pl.rrset_texts(pl.find_rrset(r.answer, name("plain"), "A")) == {"192.0.2.80"}, r


# --------------------------------------------------------------------------------------------
# geolocation

GEO_CASES = [
    # ECS prefix, set of policy "geo", set of "geond" (None: NODATA)
    ("10.52.1.0/24", "ca", "us"),
    ("10.52.7.9/32", "ca", "us"),
    ("10.53.17.0/24", "ny", "us"),
    ("10.54.0.0/24", "us", "us"),         # US-TX: no set, the country's
    ("10.51.200.0/24", "de", "eu"),       # country DE; geond has only continent EU
    ("10.56.1.0/24", "eu", "eu"),         # FR: continent
    ("10.55.3.0/24", "as", None),
    ("10.57.0.0/24", "default", None),    # OC/AU: no set for it
    ("10.58.1.0/24", "default", None),    # in the database, no location
    ("10.99.0.0/24", "default", None),    # not in the database
    ("192.0.2.0/24", "default", None),
    ("10.52.0.0/12", "default", None),    # the address is 10.48.0.0: not in 10.52/16
    ("2001:db8:1:ab::/64", "by", "eu"),
    ("2001:db8:2:10::/64", "ca", "us"),
    ("2001:db8:3::/48", "as", None),
    ("2001:db8:ffff::/48", "default", None),
]


def geo_scope(prefix):
    return pl.prefix_scope(pl.ecs_client_addr(prefix), GEO_PREFIXES)[1]


@pytest.mark.parametrize("prefix,want,want_nd", GEO_CASES, ids=[c[0] for c in GEO_CASES])
def test_geo_ecs(srv, sets, tcp, prefix, want, want_nd):
    scope = geo_scope(prefix)
    r = pl.ask1(srv.port, name("geo"), options=[ecs(prefix)], tcp=tcp)
    got = pl.chosen_set(r, sets[(name("geo"), "A")], ORIGIN).ident
    assert got == want, f"client {prefix}: set {got}, want {want}"
    check_ecs(r, prefix, scope)
    r = pl.ask1(srv.port, name("geond"), options=[ecs(prefix)], tcp=tcp)
    if want_nd is None:
        pl.assert_nodata(r, ORIGIN)
    else:
        got = pl.chosen_set(r, sets[(name("geond"), "A")], ORIGIN).ident
        assert got == want_nd, f"client {prefix}, no default: set {got}, want {want_nd}"
    check_ecs(r, prefix, scope)


def test_geo_packet_source(srv, sets, tcp):
    """Without ECS the source address 127.0.0.1 (South America in the database) decides."""
    for edns in (False, True):
        r = pl.ask1(srv.port, name("geo"), tcp=tcp, edns=edns)
        assert pl.chosen_set(r, sets[(name("geo"), "A")], ORIGIN).ident == "sa", r
        assert ecs_reply(r) is None, f"ECS in a response to a query without it\n{r}"
        pl.assert_nodata(pl.ask1(srv.port, name("geond"), tcp=tcp, edns=edns), ORIGIN)


# --------------------------------------------------------------------------------------------
# CIDR collections


def collection_prefixes(coll):
    out = []
    with open(POLICY) as f:
        for line in f:
            toks = line.split("#", 1)[0].split()
            if len(toks) >= 4 and toks[0] == "cidr" and toks[1] == coll:
                out += [(ipaddress.ip_network(p), toks[2]) for p in toks[3:]]
    return out


NETS = collection_prefixes("nets")

CIDR_CASES = [
    # ECS prefix, set of "cidr", set of "cidrnd" (None: NODATA)
    ("10.20.5.7/32", "host", None),
    ("10.20.5.0/24", "lab", "lab"),         # the address 10.20.5.0: lab, next to the host /32
    ("10.20.5.128/25", "lab", "lab"),
    ("10.20.9.0/24", "office", "office"),
    ("10.20.200.0/24", "office", "office"),
    ("10.30.1.0/24", "rest", None),         # location "branch" has no set
    ("10.99.0.0/16", "rest", None),
    ("2001:db8:20:5:1::/80", "lab", "lab"),
    ("2001:db8:20:9::/64", "office", "office"),
    ("2001:db8:20::/56", "office", "office"),
    ("2001:db8:99::/48", "rest", None),
]


@pytest.mark.parametrize("prefix,want,want_nd", CIDR_CASES, ids=[c[0] for c in CIDR_CASES])
def test_cidr_ecs(srv, sets, tcp, prefix, want, want_nd):
    addr = pl.ecs_client_addr(prefix)
    deciding, scope = pl.prefix_scope(addr, [p for p, _ in NETS])
    r = pl.ask1(srv.port, name("cidr"), options=[ecs(prefix)], tcp=tcp)
    got = pl.chosen_set(r, sets[(name("cidr"), "A")], ORIGIN).ident
    assert got == want, f"client {prefix} (longest prefix {deciding}): set {got}, want {want}"
    check_ecs(r, prefix, scope)
    r = pl.ask1(srv.port, name("cidrnd"), options=[ecs(prefix)], tcp=tcp)
    if want_nd is None:
        pl.assert_nodata(r, ORIGIN)
    else:
        got = pl.chosen_set(r, sets[(name("cidrnd"), "A")], ORIGIN).ident
        assert got == want_nd, f"client {prefix}, no default: set {got}, want {want_nd}"
    check_ecs(r, prefix, scope)


def test_cidr_packet_source(srv, sets, tcp):
    """Without ECS, 127.0.0.1 falls in the collection's 127.0.0.0/8."""
    for edns in (False, True):
        r = pl.ask1(srv.port, name("cidr"), tcp=tcp, edns=edns)
        assert pl.chosen_set(r, sets[(name("cidr"), "A")], ORIGIN).ident == "loopback", r
        pl.assert_nodata(pl.ask1(srv.port, name("cidrnd"), tcp=tcp, edns=edns), ORIGIN)


# --------------------------------------------------------------------------------------------
# latency


def latency_prefixes():
    out = []
    with open(POLICY) as f:
        for line in f:
            toks = line.split("#", 1)[0].split()
            if len(toks) == 3 and toks[0] == "latency" and "/" in toks[2]:
                out.append(ipaddress.ip_network(toks[2]))
    return out


LAT_PREFIXES = latency_prefixes()

LAT_CASES = [
    # ECS prefix (None: no ECS, 127.0.0.1), set, decided by a location of the database
    ("10.40.1.0/24", "use", False),
    ("10.41.0.0/24", "euw", False),
    ("2001:db8:41:1::/64", "euw", False),
    ("10.55.1.0/24", "tyo", True),    # AS
    ("10.51.1.0/24", "euw", True),    # DE
    ("10.52.1.0/24", "use", True),    # US: no entry, "*"
    ("10.99.0.0/24", "use", True),    # nowhere, "*"
    (None, "use", True),              # 127.0.0.1, SA: "*"
]


@pytest.mark.parametrize("prefix,want,by_location", LAT_CASES,
                         ids=[str(c[0]) for c in LAT_CASES])
def test_latency(srv, sets, tcp, prefix, want, by_location):
    opts = [ecs(prefix)] if prefix else None
    r = pl.ask1(srv.port, name("lat"), options=opts, tcp=tcp)
    got = pl.chosen_set(r, sets[(name("lat"), "A")], ORIGIN).ident
    assert got == want, f"client {prefix or '127.0.0.1'}: set {got}, want {want}"
    if prefix:
        addr = pl.ecs_client_addr(prefix)
        deciding, scope = pl.prefix_scope(addr, LAT_PREFIXES)
        if deciding is None:  # the database decided too: the narrower of the two blocks
            scope = max(scope, pl.prefix_scope(addr, GEO_PREFIXES)[1])
        check_ecs(r, prefix, scope)


# --------------------------------------------------------------------------------------------
# compile errors

ZONE_TEXT = ("$ORIGIN bad.test.\n$TTL 300\n@ IN SOA ns1 hostmaster 1 3600 900 604800 60\n"
             "  IN NS ns1\nns1 IN A 192.0.2.53\n")
BAD_POLICIES = {
    # case: (policy text, line of the error)
    "weight_256": ("set w A weighted a weight=1\n    10.0.0.1\n"
                   "set w A weighted b weight=256\n    10.0.0.2\n", 3),
    "weight_negative": ("set w A weighted a weight=-1\n    10.0.0.1\n", 1),
    "unknown_check": ("check c tcp 127.0.0.1 80\nset f A failover p role=primary check=nope\n"
                      "    10.0.0.1\n", 2),
    "failover_no_primary": ("set f A failover s role=secondary\n    10.0.0.1\n", 1),
    "two_primaries": ("set f A failover p role=primary\n    10.0.0.1\n"
                      "set f A failover q role=primary\n    10.0.0.2\n", 3),
    "continent_xx": ("set g A geo x location=continent:XX\n    10.0.0.1\n", 1),
    "country_jj": ("set g A geo x location=*\n    10.0.0.1\n"
                   "set g A geo y location=country:JJ\n    10.0.0.2\n", 3),
    "subdivision_country_jj": ("set g A geo x location=subdivision:JJ-CA\n    10.0.0.1\n", 1),
    "cidr_unknown_location": ("cidr c here 10.0.0.0/8\n"
                              "set c A cidr x collection=c location=there\n    10.0.0.1\n", 2),
    "mixed_policies": ("set m A weighted a weight=1\n    10.0.0.1\n"
                       "set m A failover p role=primary\n    10.0.0.2\n", 3),
    "duplicate_set_id": ("set d A weighted a weight=1\n    10.0.0.1\n"
                         "set d A weighted a weight=2\n    10.0.0.2\n", 3),
    "bad_rdata": ("set r A weighted a weight=1\n    10.0.0.300\n", 2),
}


@pytest.mark.parametrize("case", sorted(BAD_POLICIES))
def test_bad_policy_is_compile_error(tmp_path, case):
    text, line = BAD_POLICIES[case]
    (tmp_path / "bad.test.zone").write_text(ZONE_TEXT)
    (tmp_path / "bad.test.policy").write_text(text)
    out = tmp_path / "bad.img"
    p = zjtest.run_compiler("-o", out, tmp_path / "bad.test.zone")
    assert p.returncode != 0, f"{case}: compiled without error\n{text}"
    assert f"bad.test.policy:{line}" in p.stderr, (
        f"{case}: the error must name bad.test.policy:{line}; stderr:\n{p.stderr}")
    assert not out.exists(), f"{case}: an image was written despite the error"
    assert p.returncode in (1, 2), f"{case}: exit {p.returncode} (crash?)\n{p.stderr}"
