"""Findings of the review of the answer path, the image validator and the compiler, end to end
(the cmocka side is tests/unit/test_review.c). Each test states the behaviour that should hold;
while a finding is open its test fails.

- A chain that passes the same DNAME twice with different names is not a loop: after
  x.dn -> x.dtarget (CNAME y.dn) the DNAME applies again to y.dn. Knot and NSD both continue
  (the DNAME RR is not repeated; the second synthesised CNAME and the final A follow). zonejet's
  chain_seen() keys loops on the node and stops at y.dn.
- "MX \\# 0" (RFC 3597 generic RDATA) compiles and validates; the first MX query then makes
  write_rdata_compressed memcpy a negative length: the server dies (ASan: negative-size-param).
- "NS \\# 1 05" compiles (exit 0) into an image that zonejet-compile --verify, and zonejetd,
  reject: the compiler must refuse what the validator refuses.
- A zone with records at the apex only (SOA + NS) makes the compiler compute NULL + 0 (UB): the
  clang UBSan build of zonejet-compile aborts on it.
"""

import dns.rcode
import pytest

import zjtest
from zjtest import REF, expect, serve_managed

pytestmark = pytest.mark.skipif(bool(REF), reason="zonejet-specific (compiler, crafted zones)")

SOA_NS = "$TTL 300\n@ SOA ns1 host 1 3600 600 86400 120\n@ NS ns1\nns1 A 192.0.2.1\n"

DNAME_ZONE = (
    "$ORIGIN chain.test.\n" + SOA_NS +
    "dn DNAME dtarget.chain.test.\n"
    "x.dtarget CNAME y.dn\n"
    "y.dtarget A 192.0.2.14\n"
    "self DNAME s.self.chain.test.\n"
)


@pytest.fixture(scope="module")
def review_workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("review")


@pytest.fixture(scope="module")
def chain_server(review_workdir):
    zdir = review_workdir / "chain"
    zdir.mkdir()
    (zdir / "chain.test.zone").write_text(DNAME_ZONE)
    yield from serve_managed(review_workdir, "mmsg", ["--zones", zdir, "--workers", "1"],
                             "chain", ready_name="chain.test.")


@pytest.fixture
def chain(chain_server):
    chain_server.restart_if_dead()
    return chain_server.client()


def test_dname_applies_again_to_a_new_name(chain, tcp):
    r = chain.query("x.dn.chain.test.", "A", tcp=tcp)
    expect(r, rcode="NOERROR", aa=True, answer=[
        "dn.chain.test. 300 IN DNAME dtarget.chain.test.",
        "x.dn.chain.test. 300 IN CNAME x.dtarget.chain.test.",
        "x.dtarget.chain.test. 300 IN CNAME y.dn.chain.test.",
        "y.dn.chain.test. 300 IN CNAME y.dtarget.chain.test.",
        "y.dtarget.chain.test. 300 IN A 192.0.2.14",
    ], authority=[])


def test_dname_below_itself_still_terminates(chain, tcp):
    # the guard the node-keyed check was written for must survive its fix: each RR once
    r = chain.query("a.self.chain.test.", "A", tcp=tcp)
    assert r.rcode() in (dns.rcode.NOERROR, dns.rcode.YXDOMAIN)
    seen = set()
    for rrset in r.answer:
        for rd in rrset:
            key = (rrset.name, rrset.rdtype, rd.to_text())
            assert key not in seen, f"RR repeated in the answer:\n{r}"
            seen.add(key)


def _serve_zone_text(workdir, name, origin, text):
    """Compile a zone; returns (CompletedProcess, image path)."""
    zf = workdir / f"{name}.zone"
    zf.write_text(text)
    img = workdir / f"{name}.img"
    return zjtest.run_compiler("-o", img, zf), img


def test_generic_mx_rdata_cannot_kill_the_server(review_workdir):
    text = "$ORIGIN gmx.test.\n" + SOA_NS + "mx MX \\# 0\nok A 192.0.2.2\n"
    p, img = _serve_zone_text(review_workdir, "gmx", "gmx.test.", text)
    if p.returncode != 0:
        return  # refused at compile time: the fix we want
    srv = zjtest.ZJServer(["--image", img, "--workers", "1"], review_workdir, backend="mmsg",
                          name="gmx", ready_name="gmx.test.")
    srv.start()
    try:
        c = srv.client()
        for tcp in (False, True):
            try:
                c.query("mx.gmx.test.", "MX", tcp=tcp)
            except zjtest.NoResponse:
                pass
            assert srv.alive(), f"zonejetd died answering MX \\# 0:\n{srv.log_tail()}"
        c.query("ok.gmx.test.", "A")
    finally:
        srv.stop(check=False)


def test_compiled_image_passes_verify(review_workdir):
    text = "$ORIGIN gns.test.\n" + SOA_NS + "bad NS \\# 1 05\n"
    p, img = _serve_zone_text(review_workdir, "gns", "gns.test.", text)
    if p.returncode != 0:
        return  # refused at compile time: the fix we want
    v = zjtest.run_compiler("--verify", img)
    assert v.returncode == 0, (
        f"zonejet-compile wrote an image (exit 0) that --verify rejects:\n{v.stderr}")


def test_apex_only_zone_compiles(review_workdir):
    text = "$ORIGIN apexonly.test.\n$TTL 60\n@ SOA ns.other. host 1 2 3 4 5\n@ NS ns.other.\n"
    p, img = _serve_zone_text(review_workdir, "apexonly", "apexonly.test.", text)
    assert p.returncode == 0, f"zonejet-compile failed ({p.returncode}):\n{p.stderr}"
    v = zjtest.run_compiler("--verify", img)
    assert v.returncode == 0, v.stderr
