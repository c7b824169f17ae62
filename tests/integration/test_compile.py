"""The zonejet-compile command line.

Checks:
- the bundled zones compile (together and one by one) with exit 0 and a non-empty image;
- `--check FILE` exits 0 for good zones, writes nothing, and exits non-zero with
  `file:line: reason` for a bad one;
- every syntax error is reported as `file:line: reason` on stderr with the right line, exit
  status non-zero, and: no output file is created; an existing output file is left byte for
  byte untouched; no temporary file is left beside it (the tool writes tmp + rename);
  several errors in one file are all reported; a missing input file, an $INCLUDE of a missing
  file, a zone without SOA and a CNAME beside other data are refused;
- `--dump IMAGE` prints the zones as text, one RR per line; read back with dnspython, every RR
  equals dnspython's reading of the source zone file, for the bundled zones and for
  zones/alltypes.example.zone (A AAAA NS CNAME DNAME SOA MX TXT SPF PTR HINFO SRV NAPTR CAA
  SSHFP TLSA SMIMEA OPENPGPKEY URI LOC DS CDS DNSKEY CDNSKEY RRSIG NSEC NSEC3 NSEC3PARAM
  ZONEMD SVCB HTTPS and generic TYPE65534); the dump compiles again to the same dump;
- `--origin NAME` before a file sets the origin of a file without $ORIGIN (the same file can
  be compiled twice under two origins), and zonejetd serves such an image;
- running with no arguments is a usage error (non-zero exit, no crash);
- a policy file beside the zone file (`x.zone` or `x.db` -> `x.policy`, docs/policies.md) is
  compiled with it: a good one gives exit 0 and `--dump` shows its policies, sets, checks and
  tables as comments while the plain records still read back as the zone file's; every class of
  bad policy input (syntax, attributes, ranges, references, geo codes, prefixes, failover
  without primary, cycles, conflicts with the zone file, more than one CNAME at an owner,
  multivalue sets with different TTLs, more than 255 sets in a policy) exits non-zero with
  `file.policy:line: reason`, writes nothing and leaves an existing output untouched; a policy
  file beside a zone file with errors is refused after the zone's errors.
"""

import re
import subprocess

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.tokenizer
import dns.zone
import pytest

import zjtest
from zjtest import run_compiler, BUNDLED, TEST_ZONES_DIR, ZJServer, expect

ALLTYPES = TEST_ZONES_DIR / "alltypes.example.zone"


# ---------------------------------------------------------------------------------------------
# helpers


def rr_set_of_zone(path, origin):
    z = dns.zone.from_file(str(path), origin, relativize=False, check_origin=False)
    out = set()
    for name, node in z.items():
        for rds in node:
            for rd in rds:
                out.add((name, rds.ttl, rds.rdclass, rds.rdtype, rd))
    return out


_CLASS_WORDS = {"IN", "CH", "HS", "CS", "NONE", "ANY"}


def rr_set_of_dump(text):
    """Read --dump output: one RR per line, absolute names; $ORIGIN/$TTL lines and ';'
    comments allowed. Returns {(name, ttl, class, type, rdata)} and the RR count."""
    out = set()
    count = 0
    origin = dns.name.root
    ttl_default = None
    for lineno, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        if not s or s.startswith(";"):
            continue
        if s.upper().startswith("$ORIGIN"):
            origin = dns.name.from_text(s.split()[1])
            continue
        if s.upper().startswith("$TTL"):
            ttl_default = int(s.split()[1])
            continue
        try:
            tok = dns.tokenizer.Tokenizer(line)
            owner = tok.get_name(origin)
            ttl, rdclass = ttl_default, dns.rdataclass.IN
            while True:
                t = tok.get_string()
                if t.isdigit():
                    ttl = int(t)
                elif t.upper() in _CLASS_WORDS or re.fullmatch(r"CLASS\d+", t, re.I):
                    rdclass = dns.rdataclass.from_text(t)
                else:
                    rdtype = dns.rdatatype.from_text(t)
                    break
            rd = dns.rdata.from_text(rdclass, rdtype, tok, origin, relativize=False)
        except Exception as e:
            raise AssertionError(f"--dump line {lineno} does not parse ({e}): {line!r}") from e
        assert ttl is not None, f"--dump line {lineno} has no TTL: {line!r}"
        out.add((owner, ttl, rdclass, rdtype, rd))
        count += 1
    return out, count


def fmt_rrs(rrs):
    return "\n".join(sorted(
        f"  {n} {ttl} {dns.rdataclass.to_text(c)} {dns.rdatatype.to_text(t)} {rd.to_text()}"
        for n, ttl, c, t, rd in rrs))


def assert_same_rrs(dumped, source, what):
    missing, extra = source - dumped, dumped - source
    assert not missing and not extra, (
        f"{what}: --dump differs from the zone file\n"
        f"in the file, not in the dump ({len(missing)}):\n{fmt_rrs(missing)}\n"
        f"in the dump, not in the file ({len(extra)}):\n{fmt_rrs(extra)}"
    )


def dump(image):
    p = run_compiler("--dump", image)
    assert p.returncode == 0, f"--dump {image} failed ({p.returncode}):\n{p.stderr}"
    assert p.stdout.strip(), "--dump printed nothing"
    return p.stdout


def assert_diag(stderr, path, line):
    """stderr holds a `file:line: reason` diagnostic for path (as given, or its base name)."""
    pat = re.compile(
        rf"^(?:{re.escape(str(path))}|{re.escape(path.name)}):{line}: \S", re.MULTILINE)
    assert pat.search(stderr), f"no '{path}:{line}: reason' diagnostic in stderr:\n{stderr}"


# ---------------------------------------------------------------------------------------------
# good input


def test_compile_bundled_zones(tmp_path):
    out = tmp_path / "all.img"
    p = run_compiler("-o", out, *BUNDLED.values())
    assert p.returncode == 0, p.stderr
    assert out.is_file() and out.stat().st_size > 0
    assert [f.name for f in tmp_path.iterdir()] == ["all.img"], "temporary files left behind"


@pytest.mark.parametrize("origin", list(BUNDLED))
def test_check_good_zone(tmp_path, origin):
    p = run_compiler("--check", BUNDLED[origin])
    assert p.returncode == 0, f"--check failed:\n{p.stderr}"
    assert not list(tmp_path.iterdir())


def test_check_alltypes_zone():
    p = run_compiler("--check", ALLTYPES)
    assert p.returncode == 0, f"--check failed:\n{p.stderr}"


@pytest.mark.parametrize("origin", list(BUNDLED))
def test_dump_round_trip_bundled(tmp_path, origin):
    img = zjtest.compile_image(tmp_path / "z.img", [BUNDLED[origin]])
    dumped, count = rr_set_of_dump(dump(img))
    source = rr_set_of_zone(BUNDLED[origin], origin)
    assert_same_rrs(dumped, source, origin)
    assert count == len(source), f"--dump printed {count} RRs, the file has {len(source)}"


def test_dump_round_trip_all_bundled_in_one_image(image):
    dumped, _ = rr_set_of_dump(dump(image))
    source = set()
    for origin, path in BUNDLED.items():
        source |= rr_set_of_zone(path, origin)
    assert_same_rrs(dumped, source, "bundled zones in one image")


def test_dump_round_trip_all_types(tmp_path):
    img = zjtest.compile_image(tmp_path / "t.img", [ALLTYPES])
    dumped, count = rr_set_of_dump(dump(img))
    source = rr_set_of_zone(ALLTYPES, "alltypes.example.")
    types = {dns.rdatatype.to_text(t) for _, _, _, t, _ in source}
    assert len(types) >= 32, f"alltypes zone lost types: {sorted(types)}"
    assert_same_rrs(dumped, source, "alltypes.example")
    assert count == len(source)


@pytest.mark.parametrize("src", [BUNDLED["example.com."], ALLTYPES], ids=["example.com", "alltypes"])
def test_dump_recompiles_to_same_dump(tmp_path, src):
    img1 = zjtest.compile_image(tmp_path / "1.img", [src])
    text1 = dump(img1)
    (tmp_path / "dump.zone").write_text(text1)
    img2 = zjtest.compile_image(tmp_path / "2.img", [tmp_path / "dump.zone"])
    text2 = dump(img2)
    assert rr_set_of_dump(text1)[0] == rr_set_of_dump(text2)[0]
    assert text1 == text2, "the dump of a recompiled dump differs (not canonical)"


NO_ORIGIN_ZONE = """$TTL 600
@       IN SOA ns hostmaster 7 3600 600 86400 120
        IN NS  ns
ns      IN A   192.0.2.7
www     IN A   192.0.2.8
"""


def test_origin_option(tmp_path):
    f = tmp_path / "noorigin.zone"
    f.write_text(NO_ORIGIN_ZONE)
    img = tmp_path / "o.img"
    p = run_compiler("-o", img, "--origin", "a.test", f, "--origin", "b.test.", f)
    assert p.returncode == 0, p.stderr
    dumped, _ = rr_set_of_dump(dump(img))
    want = rr_set_of_zone(f, "a.test.") | rr_set_of_zone(f, "b.test.")
    assert_same_rrs(dumped, want, "--origin a.test/b.test")

    srv = ZJServer(["--image", img, "--workers", "1"], tmp_path, backend="mmsg",
                   ready_name="a.test.", name="origin")
    srv.start()
    try:
        c = srv.client()
        for zone in ("a.test.", "b.test."):
            r = c.query(f"www.{zone}", "A")
            expect(r, rcode="NOERROR", aa=True, answer=[f"www.{zone} 600 IN A 192.0.2.8"])
    finally:
        srv.stop()


def test_no_arguments_is_usage_error():
    p = run_compiler()
    assert p.returncode > 0, f"exit {p.returncode}"


# ---------------------------------------------------------------------------------------------
# bad input

HEAD = """$ORIGIN bad.example.
$TTL 300
@       IN SOA ns1 hostmaster 1 7200 3600 1209600 300
@       IN NS  ns1
ns1     IN A   192.0.2.1
"""  # 5 lines: the bad line of each case is line 6

BAD = {
    "bad-ipv4": "www IN A 300.1.1.1",
    "bad-ipv4-short": "www IN A 192.0.2",
    "bad-ipv6": "www IN AAAA 2001:db8::zz",
    "unknown-type": "www IN BOGUS data",
    "label-64": "a" * 64 + " IN A 192.0.2.9",
    "name-over-255": ".".join(["a" * 63] * 4) + ". IN A 192.0.2.9",
    "unterminated-quote": 'www IN TXT "abc',
    "txt-string-256": 'www IN TXT "' + "x" * 256 + '"',
    "mx-no-exchange": "www IN MX 10",
    "mx-bad-preference": "www IN MX 70000 mail",
    "bad-ttl": "www 1x IN A 192.0.2.9",
    "bad-hex": "www IN SSHFP 1 1 zz",
    "bad-base64": "www IN DNSKEY 257 3 13 !!!!",
    "generic-length-mismatch": r"www IN TYPE65534 \# 4 dead",
    "unknown-directive": "$FROBNICATE yes",
    "include-missing": "$INCLUDE /nonexistent/zonejet-test.zone",
    "srv-missing-target": "_x._tcp IN SRV 0 0 80",
    "caa-bad-flags": 'www IN CAA 256 issue "ca.example"',
}


def _write(tmp_path, text, name="bad.zone"):
    f = tmp_path / name
    f.write_text(text)
    return f


@pytest.mark.parametrize("case", list(BAD))
def test_error_reports_file_line_and_writes_nothing(tmp_path, case):
    f = _write(tmp_path, HEAD + BAD[case] + "\nok  IN A 192.0.2.10\n")
    out = tmp_path / "out.img"
    p = run_compiler("-o", out, f)
    assert p.returncode > 0, f"exit {p.returncode} for {case}; stderr:\n{p.stderr}"
    assert_diag(p.stderr, f, 6)
    assert not out.exists(), "an output file was created despite the error"
    assert sorted(x.name for x in tmp_path.iterdir()) == ["bad.zone"], "stray files left"


@pytest.mark.parametrize("case", ["bad-ipv4", "unterminated-quote", "include-missing"])
def test_error_leaves_existing_output_untouched(tmp_path, case):
    out = tmp_path / "out.img"
    old = b"previous image contents \x00\x01\x02" * 10
    out.write_bytes(old)
    f = _write(tmp_path, HEAD + BAD[case] + "\n")
    p = run_compiler("-o", out, f)
    assert p.returncode > 0
    assert_diag(p.stderr, f, 6)
    assert out.read_bytes() == old, "the existing output file was modified"
    assert sorted(x.name for x in tmp_path.iterdir()) == ["bad.zone", "out.img"]


@pytest.mark.parametrize("case", ["bad-ipv6", "unknown-type", "mx-no-exchange"])
def test_check_reports_errors(tmp_path, case):
    f = _write(tmp_path, HEAD + BAD[case] + "\n")
    p = run_compiler("--check", f)
    assert p.returncode > 0
    assert_diag(p.stderr, f, 6)
    assert sorted(x.name for x in tmp_path.iterdir()) == ["bad.zone"]


def test_all_errors_reported(tmp_path):
    f = _write(tmp_path, HEAD + "a IN A 1.2.3\nb IN A 192.0.2.5\nc IN AAAA ::g\n"
                              "d IN TXT \"x\"\ne IN BOGUS 1\n")
    p = run_compiler("-o", tmp_path / "o.img", f)
    assert p.returncode > 0
    for line in (6, 8, 10):
        assert_diag(p.stderr, f, line)
    assert not (tmp_path / "o.img").exists()


def test_error_in_second_file_fails_the_whole_image(tmp_path):
    good = BUNDLED["example.net."]
    bad = _write(tmp_path, HEAD + BAD["bad-ipv4"] + "\n")
    out = tmp_path / "o.img"
    p = run_compiler("-o", out, good, bad)
    assert p.returncode > 0
    assert_diag(p.stderr, bad, 6)
    assert not out.exists()


def test_error_line_in_multiline_record(tmp_path):
    """A record spanning lines (parentheses) is reported at a line it occupies (6..8)."""
    f = _write(tmp_path, HEAD + "www IN SOA ns1 host (\n 1 2 3\n 4 bogus )\n")
    p = run_compiler("-o", tmp_path / "o.img", f)
    assert p.returncode > 0
    assert any(re.search(rf"^(?:{re.escape(str(f))}|bad\.zone):{n}: \S", p.stderr, re.M)
               for n in (6, 7, 8)), p.stderr


def test_missing_input_file(tmp_path):
    out = tmp_path / "o.img"
    missing = tmp_path / "nope.zone"
    p = run_compiler("-o", out, missing)
    assert p.returncode > 0
    assert "nope.zone" in p.stderr
    assert not out.exists()


def test_zone_without_soa_refused(tmp_path):
    f = _write(tmp_path, "$ORIGIN nosoa.example.\n$TTL 300\n@ IN NS ns1\nns1 IN A 192.0.2.1\n")
    out = tmp_path / "o.img"
    p = run_compiler("-o", out, f)
    assert p.returncode > 0, "a zone without SOA cannot be served"
    assert re.search(rf"^(?:{re.escape(str(f))}|bad\.zone)(:\d+)?: \S", p.stderr, re.M), p.stderr
    assert not out.exists()


def test_cname_and_other_data_refused(tmp_path):
    """RFC 1034 §3.6.2 / RFC 2181 §10.1: a CNAME owner has no other data."""
    f = _write(tmp_path, HEAD + "www IN CNAME ns1\nwww IN A 192.0.2.9\n")
    out = tmp_path / "o.img"
    p = run_compiler("-o", out, f)
    assert p.returncode > 0, "CNAME and other data at one name must be refused"
    assert any(re.search(rf"^(?:{re.escape(str(f))}|bad\.zone):{n}: \S", p.stderr, re.M)
               for n in (6, 7)), p.stderr
    assert not out.exists()


def test_compiler_never_killed_by_signal(tmp_path):
    """Odd inputs (binary junk, empty file, huge line) end with a status, not a signal."""
    cases = {"empty.zone": b"", "junk.zone": bytes(range(256)) * 8,
             "longline.zone": b"$ORIGIN x.example.\n" + b"a" * 200000 + b"\n"}
    for name, data in cases.items():
        f = tmp_path / name
        f.write_bytes(data)
        p = subprocess.run([str(zjtest.COMPILER), "-o", str(tmp_path / "o.img"), str(f)],
                           capture_output=True, timeout=60)
        assert p.returncode > 0, f"{name}: exit {p.returncode}"
        assert b"Sanitizer" not in p.stderr and b"runtime error" not in p.stderr, p.stderr


# ---------------------------------------------------------------------------------------------
# policy files (docs/policies.md)

GOOD_POLICY = """$TTL 30
check web tcp 127.0.0.1 80
set www A weighted blue weight=70 check=web
    192.0.2.10
set www A weighted green weight=30
    192.0.2.20
cidr office lab 10.0.0.0/8
set net A cidr lab collection=office location=lab
    192.0.2.30
set net A cidr rest collection=office location=*
    192.0.2.31
"""


def _zone_and_policy(tmp_path, policy, suffix=".zone", zone=HEAD):
    z = _write(tmp_path, zone, "bad" + suffix)
    pf = _write(tmp_path, policy, "bad.policy")
    return z, pf


@pytest.mark.parametrize("suffix", [".zone", ".db"])
def test_policy_file_compiled_and_dumped(tmp_path, suffix):
    z, _ = _zone_and_policy(tmp_path, GOOD_POLICY, suffix)
    out = tmp_path / "o.img"
    p = run_compiler("-o", out, z)
    assert p.returncode == 0, p.stderr
    text = dump(out)
    assert "; policy www.bad.example. A weighted (2 sets)" in text, text
    assert ';   set "blue" weight=70 check=web' in text, text
    assert ";     www.bad.example. 30 IN A 192.0.2.10" in text, text
    assert "; check web tcp 127.0.0.1 80 interval=30000ms timeout=4000ms threshold=3" in text, text
    assert "; cidr collection office: 1 locations" in text, text
    assert ";   10.0.0.0 - 10.255.255.255 (/8) -> lab" in text, text
    # the policies are comments: the records still read back as the zone file's own
    assert_same_rrs(rr_set_of_dump(text)[0], rr_set_of_zone(z, "bad.example."), "policy zone")


# (policy text, line of the error, a fragment of the reason)
BAD_POLICY = {
    "unknown-statement": ("$TTL 30\nfrobnicate x\n", 2, "unknown statement"),
    "unknown-attribute": ("set www A weighted a weight=1 colour=red\n    192.0.2.1\n", 1,
                          "unknown attribute"),
    "weight-256": ("set www A weighted a weight=256\n    192.0.2.1\n", 1, "0 to 255"),
    "no-weight": ("set www A weighted a\n    192.0.2.1\n", 1, "needs weight="),
    "unknown-set-check": ("set www A weighted a weight=1 check=nope\n    192.0.2.1\n", 1,
                          "no check named 'nope'"),
    "failover-no-primary": ("\nset www A failover s role=secondary\n    192.0.2.1\n", 2,
                            "failover without a primary"),
    "two-primaries": ("set www A failover a role=primary\n    192.0.2.1\n"
                      "set www A failover b role=primary\n    192.0.2.2\n", 3,
                      "second primary"),
    "geo-unknown-country": ("set www A geo a location=country:QQ\n    192.0.2.1\n", 1,
                            "unknown country code 'QQ'"),
    "geo-unknown-continent": ("set www A geo a location=continent:XX\n    192.0.2.1\n", 1,
                              "unknown continent"),
    "mixed-kinds": ("set www A weighted a weight=1\n    192.0.2.1\n"
                    "set www A geo b location=*\n    192.0.2.2\n", 3, "uses policy geo"),
    "duplicate-set-id": ("set www A weighted a weight=1\n    192.0.2.1\n"
                         "set www A weighted a weight=2\n    192.0.2.2\n", 3, "already used"),
    "bad-rdata": ("set www A weighted a weight=1\n    192.0.2.300\n", 2, "IPv4"),
    "multivalue-two": ("set www A multivalue a\n    192.0.2.1\n    192.0.2.2\n", 3,
                       "exactly one record"),
    "cname-two-records": ("set www CNAME weighted a weight=1\n    ns1\n    host.example.\n", 3,
                          "a CNAME set holds exactly one record"),
    "cname-multivalue": ("set www CNAME multivalue a\n    ns1\n", 1,
                         "a CNAME cannot have a multivalue policy"),
    "too-many-sets": ("".join(f"set www A weighted s{i} weight=1\n    10.0.{i // 250}.{i % 250}\n"
                              for i in range(256)), 1, "has 256 sets, more than 255"),
    "multivalue-ttl": ("set www A multivalue a\n    192.0.2.1\n"
                       "set www A multivalue b ttl=300\n    192.0.2.2\n", 3,
                       "has TTL 300, its first set (line 1) TTL 60"),
    "outside-zone": ("set www.example.org. A weighted a weight=1\n    192.0.2.1\n", 1,
                     "outside the zone"),
    "beside-zone-records": ("set ns1 A weighted a weight=1\n    192.0.2.1\n", 1,
                            "also has records in the zone file"),
    "type-not-allowed": ("set www NS weighted a weight=1\n    ns1\n", 1,
                         "cannot have a routing policy"),
    "cname-at-apex": ("set @ CNAME weighted a weight=1\n    www\n", 1, "apex"),
    "host-bits": ("cidr c x 10.1.0.0/8\n", 1, "host bits set"),
    "unknown-collection": ("set www A cidr a collection=c location=x\n    192.0.2.1\n", 1,
                           "no CIDR collection"),
    "prefix-twice": ("cidr c x 10.0.0.0/8\ncidr c y 10.0.0.0/8\n", 2, "already in collection"),
    "latency-region": ("latency eu *\nset www A latency a region=us\n    192.0.2.1\n", 2,
                       "not in the zone's latency table"),
    "check-port": ("check c tcp 192.0.2.1 70000\n", 1, "bad port"),
    "check-timeout": ("check c http 192.0.2.1 80 interval=5 timeout=5\n", 1,
                      "not below the interval"),
    "check-cycle": ("check a calculated 1 b\ncheck b calculated 1 a\n", 2, "cycle"),
    "check-min-healthy": ("check a tcp 192.0.2.1 80\ncheck b calculated 2 a\n", 2,
                          "more than the 1 children"),
    "record-outside-set": ("    192.0.2.1\n", 1, "outside a set"),
    "empty-set": ("set www A weighted a weight=1\n", 1, "has no records"),
}


@pytest.mark.parametrize("case", list(BAD_POLICY))
def test_policy_error_reports_file_line_and_writes_nothing(tmp_path, case):
    text, line, reason = BAD_POLICY[case]
    z, pf = _zone_and_policy(tmp_path, text)
    out = tmp_path / "out.img"
    p = run_compiler("-o", out, z)
    assert p.returncode > 0, f"exit {p.returncode} for {case}; stderr:\n{p.stderr}"
    assert_diag(p.stderr, pf, line)
    m = re.search(rf"^(?:{re.escape(str(pf))}|bad\.policy):{line}: (.*)$", p.stderr, re.M)
    assert m and reason in m.group(1), f"{case}: want '{reason}' at line {line}:\n{p.stderr}"
    assert not out.exists(), "an output file was created despite the error"
    assert sorted(x.name for x in tmp_path.iterdir()) == ["bad.policy", "bad.zone"]


@pytest.mark.parametrize("case", ["weight-256", "failover-no-primary", "geo-unknown-country"])
def test_policy_error_with_check_and_existing_output(tmp_path, case):
    text, line, _ = BAD_POLICY[case]
    z, pf = _zone_and_policy(tmp_path, text)
    p = run_compiler("--check", z)
    assert p.returncode > 0
    assert_diag(p.stderr, pf, line)
    out = tmp_path / "out.img"
    old = b"previous image" * 10
    out.write_bytes(old)
    p = run_compiler("-o", out, z)
    assert p.returncode > 0
    assert out.read_bytes() == old, "the existing output file was modified"


def test_policy_beside_bad_zone_refused_after_zone_errors(tmp_path):
    z, pf = _zone_and_policy(tmp_path, GOOD_POLICY, zone=HEAD + BAD["bad-ipv4"] + "\n")
    p = run_compiler("-o", tmp_path / "o.img", z)
    assert p.returncode > 0
    assert_diag(p.stderr, z, 6)
    zone_at = p.stderr.find("bad.zone:6:")
    pol_at = p.stderr.find("bad.policy: not read")
    assert 0 <= zone_at < pol_at, p.stderr
    assert not (tmp_path / "o.img").exists()


def test_policy_never_kills_the_compiler(tmp_path):
    """Binary junk and a huge line as a policy file end with a status, not a signal."""
    for data in (bytes(range(256)) * 8, b"set " + b"a" * 200000 + b" A weighted x\n"):
        z = _write(tmp_path, HEAD, "bad.zone")
        (tmp_path / "bad.policy").write_bytes(data)
        p = subprocess.run([str(zjtest.COMPILER), "-o", str(tmp_path / "o.img"), str(z)],
                           capture_output=True, timeout=60)
        assert p.returncode > 0
        assert b"Sanitizer" not in p.stderr and b"runtime error" not in p.stderr, p.stderr
