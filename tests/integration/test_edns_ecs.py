"""EDNS(0) (RFC 6891), NSID (RFC 5001) and Client Subnet (RFC 7871), over UDP and TCP, both
backends.

Checks:
- the response has an OPT record iff the query had one, for answers, NXDOMAIN, NODATA,
  referrals and REFUSED; OPT version 0; payload 1232 by default; the DO bit is echoed (RFC 3225
  §3) and the other EDNS flag bits (Z) are zero in responses;
- EDNS version 1 gets BADVERS (extended rcode 16) with an OPT of version 0 and no answer
  (RFC 6891 §6.1.3);
- two OPT records, an option whose length overruns the OPT rdata, and an OPT rdata overrunning
  the packet are FORMERR (RFC 6891 §6.1.1); so is an OPT whose owner is not the root;
- unknown options are ignored (the answer is normal and the option is not echoed);
- NSID: returned with the configured value when requested with an empty NSID option; absent
  when not requested, and absent when the server has no NSID configured;
- ECS: echoed with the same family, source prefix and address and scope prefix 0 (RFC 7871
  §7.2.1), for IPv4 /24, /32, /0 and IPv6 /56; absent when not sent;
- malformed ECS is FORMERR (RFC 7871 §6, §7.1.1): source prefix beyond the family's width,
  address octets not matching the source prefix (too many, too few), unknown family, an option
  shorter than its fixed part.
"""

import dns.edns
import dns.flags
import dns.rcode
import pytest

from zjtest import expect, packet, opt_rr, ecs_option, soa_neg_line, NSID as NSID_TEXT

COM = "example.com."
NSID = NSID_TEXT.encode()


def options_of(r, code):
    return [o for o in (r.options if r.edns >= 0 else ()) if int(o.otype) == code]


@pytest.mark.parametrize("name,rdtype,rcode", [
    ("web.example.com.", "A", "NOERROR"),
    ("nope.example.com.", "A", "NXDOMAIN"),
    ("web.example.com.", "MX", "NOERROR"),
    ("www.other.example.com.", "A", "NOERROR"),
    ("www.example.org.", "A", "REFUSED"),
])
@pytest.mark.parametrize("edns", [False, 0], ids=["noedns", "edns"])
def test_opt_iff_query_had_opt(query, tcp, edns, name, rdtype, rcode):
    r = query(name, rdtype, tcp=tcp, edns=edns)
    expect(r, rcode=rcode, edns=edns is not False)
    if edns is not False:
        assert r.edns == 0
        assert r.payload == 1232, f"advertised payload {r.payload}, want 1232"


@pytest.mark.parametrize("do", [True, False], ids=["do1", "do0"])
def test_do_echoed(query, tcp, do):
    for name in ("web.example.com.", "nope.example.com."):
        r = query(name, "A", tcp=tcp, edns=0, do=do)
        expect(r, do=do)
        assert r.ednsflags & 0x7FFF == 0, f"Z bits set in response: {r.ednsflags:#x}"


def test_z_bits_in_query_ignored(query, tcp):
    r = query("web.example.com.", "A", tcp=tcp, edns=0, ednsflags=0x1234)
    expect(r, rcode="NOERROR", aa=True, edns=True)
    assert r.ednsflags & 0x7FFF == 0


def test_badvers(query, tcp):
    r = query("web.example.com.", "A", tcp=tcp, edns=1)
    assert r.rcode() == dns.rcode.BADVERS, f"rcode {dns.rcode.to_text(r.rcode())}, want BADVERS"
    assert r.edns == 0, f"BADVERS response must carry OPT version 0, got {r.edns}"
    assert not r.answer


def test_badvers_version_255(client, tcp):
    r = client.query(raw=packet("web.example.com.", 1, additional=[opt_rr(version=255)]), tcp=tcp)
    assert r is not None
    assert r.rcode() == dns.rcode.BADVERS and r.edns == 0


@pytest.mark.parametrize("label,extra", [
    ("two-opt", [opt_rr(), opt_rr()]),
    ("option-overrun", [opt_rr(rdata=b"\x00\x0a\x00\x10abcd")]),
    ("option-header-cut", [opt_rr(rdata=b"\x00\x0a\x00")]),
    ("non-root-owner", [opt_rr(owner=b"\x01a\x00")]),
])
def test_malformed_opt_formerr(client, tcp, label, extra):
    r = client.query(raw=packet("web.example.com.", 1, additional=extra), tcp=tcp)
    expect(r, rcode="FORMERR", qid=0x1234)


def test_opt_rdlen_overruns_packet_formerr(client, tcp):
    opt = b"\x00" + bytes.fromhex("0029 04d0 00000000 0020") + b"\x00\x03\x00\x00"
    r = client.query(raw=packet("web.example.com.", 1, additional=[opt]), tcp=tcp)
    expect(r, rcode="FORMERR")


def test_unknown_option_ignored(query, tcp):
    opt = dns.edns.GenericOption(65001, b"hello")
    r = query("web.example.com.", "A", tcp=tcp, options=[opt])
    expect(r, rcode="NOERROR", aa=True, edns=True)
    assert not options_of(r, 65001), "unknown option must not be echoed"


def test_nsid_returned_when_requested(query, tcp):
    r = query("web.example.com.", "A", tcp=tcp, options=[dns.edns.GenericOption(3, b"")])
    expect(r, rcode="NOERROR", aa=True, edns=True)
    got = options_of(r, 3)
    assert len(got) == 1, f"want one NSID option, got {got}"
    assert got[0].to_wire() == NSID, f"NSID {got[0].to_wire()!r}, want {NSID!r}"


def test_nsid_on_error_responses(query, tcp):
    r = query("nope.example.com.", "A", tcp=tcp, options=[dns.edns.GenericOption(3, b"")])
    expect(r, rcode="NXDOMAIN")
    assert [o.to_wire() for o in options_of(r, 3)] == [NSID]


def test_nsid_absent_when_not_requested(query, tcp):
    r = query("web.example.com.", "A", tcp=tcp, edns=0)
    assert not options_of(r, 3)


def test_nsid_absent_when_not_configured(bare_client, tcp):
    r = bare_client.query("web.example.com.", "A", tcp=tcp,
                          options=[dns.edns.GenericOption(3, b"")])
    expect(r, rcode="NOERROR", edns=True)
    assert not options_of(r, 3)


@pytest.mark.parametrize("family,src,addr", [
    (1, 24, bytes([192, 0, 2])),
    (1, 32, bytes([192, 0, 2, 7])),
    (1, 0, b""),
    (1, 20, bytes([198, 51, 96])),
    (2, 56, bytes.fromhex("20010db8000001")),
    (2, 128, bytes.fromhex("20010db8000000000000000000000001")),
])
def test_ecs_echoed_with_scope_zero(client, tcp, family, src, addr):
    raw = packet("web.example.com.", 1, additional=[opt_rr(options=[ecs_option(family, src, 0, addr)])])
    r = client.query(raw=raw, tcp=tcp)
    expect(r, rcode="NOERROR", aa=True, edns=True)
    ecs = options_of(r, 8)
    assert len(ecs) == 1, f"want one ECS option in the response, got {ecs}"
    wire = ecs[0].to_wire()
    want = bytes([0, family, src, 0]) + addr
    assert wire == want, f"ECS echoed as {wire.hex()}, want {want.hex()}"


def test_ecs_absent_when_not_sent(query, tcp):
    r = query("web.example.com.", "A", tcp=tcp, edns=0)
    assert not options_of(r, 8)


@pytest.mark.parametrize("label,family,src,scope,addr", [
    ("v4-prefix-33", 1, 33, 0, bytes(5)),
    ("v6-prefix-129", 2, 129, 0, bytes(17)),
    ("v4-too-many-octets", 1, 24, 0, bytes([192, 0, 2, 1])),
    ("v4-too-few-octets", 1, 24, 0, bytes([192, 0])),
    ("v6-too-few-octets", 2, 56, 0, bytes(6)),
    ("v4-prefix0-with-octet", 1, 0, 0, bytes([1])),
    ("unknown-family", 3, 24, 0, bytes(3)),
])
def test_malformed_ecs_formerr(client, tcp, label, family, src, scope, addr):
    raw = packet("web.example.com.", 1,
                 additional=[opt_rr(options=[ecs_option(family, src, scope, addr)])])
    r = client.query(raw=raw, tcp=tcp)
    expect(r, rcode="FORMERR")


def test_ecs_option_shorter_than_fixed_part_formerr(client, tcp):
    raw = packet("web.example.com.", 1, additional=[opt_rr(options=[(8, b"\x00\x01\x18")])])
    r = client.query(raw=raw, tcp=tcp)
    expect(r, rcode="FORMERR")


def test_ecs_on_negative_answer(client, tcp):
    raw = packet("nope.example.com.", 1,
                 additional=[opt_rr(options=[ecs_option(1, 24, 0, bytes([192, 0, 2]))])])
    r = client.query(raw=raw, tcp=tcp)
    expect(r, rcode="NXDOMAIN", authority=[soa_neg_line(COM)])
    assert [o.to_wire() for o in options_of(r, 8)] == [bytes([0, 1, 24, 0, 192, 0, 2])]
