"""Negative answers (RFC 2308), over UDP and TCP, with and without EDNS, on both backends.

Checks:
- NXDOMAIN: AA=1, empty answer, the zone's SOA (owner = apex) alone in authority with
  TTL = min(SOA TTL, SOA MINIMUM) (RFC 2308 §3, §5): 300 for example.com (TTL 300 < MINIMUM
  3600), 600 for example.net (TTL 7200 > MINIMUM 600), 60 for sub.example.com;
- NODATA (name exists, type does not): NOERROR, AA=1, empty answer, the same SOA;
- empty non-terminals (_tcp.example.com, ent.blk.example.com) are NODATA, not NXDOMAIN
  (RFC 8020 §2);
- a name below an existing leaf, and below an empty non-terminal, is NXDOMAIN;
- an unknown type number (TYPE65000) at an existing name is NODATA;
- the negative SOA does not leak into additional; nothing but the SOA is in authority.
"""

import pytest

from zjtest import expect, soa_neg_line

COM, NET, SUB = "example.com.", "example.net.", "sub.example.com."

NXDOMAIN = [
    (COM, "nope.example.com."),
    (COM, "x.web.example.com."),
    (COM, "a.b.c.nope.example.com."),
    (COM, "x.deep.ent.blk.example.com."),
    (COM, "x._tcp.example.com."),
    (NET, "nope.example.net."),
    (NET, "x.host1.example.net."),
    (SUB, "nope.sub.example.com."),
    (SUB, "x.www.sub.example.com."),
]

NODATA = [
    (COM, "web.example.com.", "MX"),
    (COM, "example.com.", "SRV"),
    (COM, "example.com.", "DS"),
    (COM, "mail.example.com.", "TXT"),
    (COM, "_tcp.example.com.", "A"),
    (COM, "ent.blk.example.com.", "A"),
    (COM, "newdept.example.com.", "A"),
    (COM, "web.example.com.", "TYPE65000"),
    (NET, "host1.example.net.", "AAAA"),
    (NET, "loc.example.net.", "A"),
    (NET, "_tcp.host1.example.net.", "TLSA"),
    (SUB, "www.sub.example.com.", "MX"),
    (SUB, "sub.example.com.", "AAAA"),
]


@pytest.mark.parametrize("edns", [False, 0], ids=["noedns", "edns"])
@pytest.mark.parametrize("zone,name", NXDOMAIN, ids=[n for _, n in NXDOMAIN])
def test_nxdomain(query, tcp, edns, zone, name):
    r = query(name, "A", tcp=tcp, edns=edns)
    expect(r, rcode="NXDOMAIN", aa=True, tc=False, answer=[], authority=[soa_neg_line(zone)],
           additional=[], edns=edns is not False)


@pytest.mark.parametrize("zone,name,rdtype", NODATA, ids=[f"{n}{t}" for _, n, t in NODATA])
def test_nodata(query, tcp, zone, name, rdtype):
    r = query(name, rdtype, tcp=tcp, edns=0)
    expect(r, rcode="NOERROR", aa=True, tc=False, answer=[], authority=[soa_neg_line(zone)],
           additional=[])


def test_negative_ttl_is_min_of_soa_ttl_and_minimum(query):
    """Both directions of the min(): example.com has TTL < MINIMUM, example.net TTL > MINIMUM."""
    com = query("nope.example.com.", "A")
    net = query("nope.example.net.", "A")
    assert com.authority[0].ttl == 300
    assert net.authority[0].ttl == 600


def test_nxdomain_mixed_case(query, tcp):
    r = query("NoPe.ExAmPlE.cOm.", "AAAA", tcp=tcp)
    expect(r, rcode="NXDOMAIN", aa=True, answer=[], authority=[soa_neg_line(COM)])
    assert r.question[0].name.to_text() == "NoPe.ExAmPlE.cOm."
