"""CNAME and DNAME processing, over UDP and TCP, on both backends.

Checks:
- CNAME (RFC 1034 §3.6.2, §4.3.2 step 3a): the chain is followed within the zone and every
  RRset keeps its own TTL (www -> web; chain1 -> chain2 -> chain3 -> web);
- asking for the CNAME type (or a name whose target lacks the type) stops at the CNAME; the
  latter is NOERROR with the SOA in authority;
- a CNAME whose in-zone target does not exist: rcode NXDOMAIN (RFC 6604 §2), the CNAME in the
  answer, the SOA in authority;
- a CNAME leaving the zone (to an unserved name, or to another served zone) is not followed;
- a CNAME loop is cut: the response comes, each CNAME appears once, no answer RRset repeats;
- DNAME (RFC 6672 §3.1): a name below the DNAME owner gets the DNAME plus a synthesised CNAME
  owned by the query name (case kept) with TTL = the DNAME's TTL; the synthesised target is
  followed when it is in the same zone (olddept -> newdept), and not when it leaves it;
- QTYPE=CNAME below a DNAME is answered by the DNAME and the synthesised CNAME alone;
- the DNAME owner itself is not redirected (DNAME type answered; other types NODATA);
- a synthesised name longer than 255 octets gives YXDOMAIN with the DNAME (RFC 6672 §2.2);
- the chain bound (8 steps, STYLE P8) with zones/bounds.example.zone: a chain of 8 CNAMEs is
  followed to the end, a chain of 9 (limit + 1) and of 30 is cut after 8 or 9 CNAMEs without
  the final A; a DNAME whose target lies below itself terminates; no RR is repeated in the
  answer section (RFC 2181 §5).
"""

import struct

import dns.message
import dns.rdatatype
import pytest

from zjtest import expect, soa_neg_line, section_dict

COM = "example.com."

WEB_A = ["web.example.com. 3600 IN A 192.0.2.80", "web.example.com. 3600 IN A 192.0.2.81"]


def test_cname_followed(query, tcp):
    r = query("www.example.com.", "A", tcp=tcp)
    expect(r, rcode="NOERROR", aa=True,
           answer=["www.example.com. 3600 IN CNAME web.example.com.", *WEB_A], authority=[])


def test_cname_chain_followed_with_own_ttls(query, tcp):
    r = query("chain1.example.com.", "A", tcp=tcp, edns=0)
    expect(r, rcode="NOERROR", aa=True, answer=[
        "chain1.example.com. 120 IN CNAME chain2.example.com.",
        "chain2.example.com. 240 IN CNAME chain3.example.com.",
        "chain3.example.com. 360 IN CNAME web.example.com.",
        *WEB_A,
    ])
    # the chain is written in order, each link right after the one that points to it
    assert [rr.name.to_text() for rr in r.answer][:3] == [
        "chain1.example.com.", "chain2.example.com.", "chain3.example.com."]


def test_cname_query_for_cname_type(query, tcp):
    r = query("chain1.example.com.", "CNAME", tcp=tcp)
    expect(r, rcode="NOERROR", aa=True,
           answer=["chain1.example.com. 120 IN CNAME chain2.example.com."])


def test_cname_to_nodata(query, tcp):
    r = query("www.example.com.", "MX", tcp=tcp)
    expect(r, rcode="NOERROR", aa=True,
           answer=["www.example.com. 3600 IN CNAME web.example.com."],
           authority=[soa_neg_line(COM)])


def test_cname_to_nxdomain(query, tcp):
    r = query("dangling.example.com.", "A", tcp=tcp)
    expect(r, rcode="NXDOMAIN", aa=True,
           answer=["dangling.example.com. 3600 IN CNAME nothere.example.com."],
           authority=[soa_neg_line(COM)])


@pytest.mark.parametrize("name,target", [("ext.example.com.", "www.example.org."),
                                         ("tonet.example.com.", "www.example.net.")])
def test_cname_out_of_zone_not_followed(query, tcp, name, target):
    r = query(name, "A", tcp=tcp)
    expect(r, rcode="NOERROR", aa=True, answer=[f"{name} 3600 IN CNAME {target}"], authority=[])


def test_cname_loop_is_cut(query, tcp):
    r = query("loop1.example.com.", "A", tcp=tcp)
    expect(r, aa=True)
    assert r.rcode() in (0, 2), f"loop: rcode {r.rcode()} (want NOERROR or SERVFAIL)"
    got = section_dict(r.answer)  # asserts no RRset is repeated
    allowed = {"loop1.example.com.", "loop2.example.com."}
    for (name, _cls, rdtype, _c) in got:
        assert name.to_text() in allowed and rdtype == dns.rdatatype.CNAME, r
    if r.rcode() == 0:
        assert r.answer and r.answer[0].name.to_text() == "loop1.example.com."
    assert len(r.answer) <= 9, "chain longer than the bound (8 links)"


def test_dname_to_other_zone(query, tcp):
    r = query("www.dname.example.com.", "A", tcp=tcp)
    expect(r, rcode="NOERROR", aa=True, answer=[
        "dname.example.com. 1800 IN DNAME example.net.",
        "www.dname.example.com. 1800 IN CNAME www.example.net.",
    ], authority=[])


def test_dname_multi_label_and_case(query, tcp):
    qname = "A.b.DName.example.com."
    r = query(qname, "TXT", tcp=tcp)
    expect(r, rcode="NOERROR", aa=True, answer=[
        "dname.example.com. 1800 IN DNAME example.net.",
        "a.b.dname.example.com. 1800 IN CNAME a.b.example.net.",
    ])
    cname = [rr for rr in r.answer if rr.rdtype == dns.rdatatype.CNAME][0]
    assert cname.name.to_text() == qname, "the synthesised CNAME is owned by the query name"


def test_dname_within_zone_followed(query, tcp):
    r = query("host.olddept.example.com.", "A", tcp=tcp)
    expect(r, rcode="NOERROR", aa=True, answer=[
        "olddept.example.com. 1200 IN DNAME newdept.example.com.",
        "host.olddept.example.com. 1200 IN CNAME host.newdept.example.com.",
        "host.newdept.example.com. 3600 IN A 192.0.2.90",
    ])


def test_dname_within_zone_to_nxdomain(query, tcp):
    r = query("nope.olddept.example.com.", "A", tcp=tcp)
    expect(r, rcode="NXDOMAIN", aa=True, answer=[
        "olddept.example.com. 1200 IN DNAME newdept.example.com.",
        "nope.olddept.example.com. 1200 IN CNAME nope.newdept.example.com.",
    ], authority=[soa_neg_line(COM)])


@pytest.mark.parametrize("qname", ["host.olddept.example.com.", "nope.olddept.example.com."])
def test_dname_qtype_cname_stops_at_synthesised_cname(query, tcp, qname):
    """QTYPE=CNAME is answered by the synthesised CNAME itself (RFC 6672 §3.1; RFC 1034
    §4.3.2 step 3a): its target is not looked up, so no NXDOMAIN/NODATA from the target."""
    target = qname.replace("olddept", "newdept")
    r = query(qname, "CNAME", tcp=tcp)
    expect(r, rcode="NOERROR", aa=True, answer=[
        "olddept.example.com. 1200 IN DNAME newdept.example.com.",
        f"{qname} 1200 IN CNAME {target}",
    ], authority=[])


def test_dname_owner_not_redirected(query, tcp):
    r = query("dname.example.com.", "DNAME", tcp=tcp)
    expect(r, rcode="NOERROR", aa=True, answer=["dname.example.com. 1800 IN DNAME example.net."])
    r = query("dname.example.com.", "A", tcp=tcp)
    expect(r, rcode="NOERROR", aa=True, answer=[], authority=[soa_neg_line(COM)])


def _long_name(prefix_octets):
    """A name under ovf.example.com whose prefix labels take prefix_octets wire octets."""
    labels = []
    left = prefix_octets
    while left > 0:
        n = min(63, left - 1)
        labels.append("x" * n)
        left -= n + 1
    return ".".join(labels) + ".ovf.example.com."


def test_dname_synthesis_fits(query, tcp):
    qname = _long_name(100)
    r = query(qname, "A", tcp=tcp)
    target = qname.replace("ovf.example.com.",
                           "a-dname-target-much-longer-than-its-owner-for-yxdomain.example.net.")
    expect(r, rcode="NOERROR", aa=True, answer=[
        "ovf.example.com. 3600 IN DNAME "
        "a-dname-target-much-longer-than-its-owner-for-yxdomain.example.net.",
        f"{qname} 3600 IN CNAME {target}",
    ])


def test_dname_synthesis_too_long_is_yxdomain(query, tcp):
    qname = _long_name(200)  # 217 octets; substituted: 269 > 255
    r = query(qname, "A", tcp=tcp)
    expect(r, rcode="YXDOMAIN", aa=True, answer=[
        "ovf.example.com. 3600 IN DNAME "
        "a-dname-target-much-longer-than-its-owner-for-yxdomain.example.net.",
    ])


def raw_answer_rrs(resp):
    """The answer section RR by RR, as sent (dnspython would merge duplicates)."""
    m = dns.message.from_wire(resp.wire, one_rr_per_rrset=True)
    return [(rr.name.to_text().lower(), rr.rdtype, rr[0].to_text()) for rr in m.answer]


def assert_no_repeated_rr(resp):
    rrs = raw_answer_rrs(resp)
    dups = sorted({x for x in rrs if rrs.count(x) > 1})
    assert not dups, (f"answer repeats RRs (ANCOUNT {struct.unpack('!H', resp.wire[6:8])[0]}): "
                      f"{dups}\n{resp}")


def test_chain_at_bound_followed_to_the_end(bounds_client, tcp):
    r = bounds_client.query("a0.bounds.example.", "A", tcp=tcp)
    expect(r, rcode="NOERROR", aa=True, answer=[
        *[f"a{i}.bounds.example. 300 IN CNAME {f'a{i + 1}' if i < 7 else 'final'}.bounds.example."
          for i in range(8)],
        "final.bounds.example. 300 IN A 192.0.2.200",
    ])
    assert_no_repeated_rr(r)


@pytest.mark.parametrize("head,length", [("b", 9), ("c", 30)])
def test_chain_beyond_bound_is_cut(bounds_client, tcp, head, length):
    r = bounds_client.query(f"{head}0.bounds.example.", "A", tcp=tcp)
    assert r.rcode() in (0, 2), f"rcode {r.rcode()}"
    names = [rr.name.to_text() for rr in r.answer]
    types = {rr.rdtype for rr in r.answer}
    assert types <= {dns.rdatatype.CNAME}, f"chain of {length} was not cut:\n{r}"
    assert names == [f"{head}{i}.bounds.example." for i in range(len(names))], r
    assert 8 <= len(names) <= 9, f"{len(names)} CNAMEs followed; the bound is 8 steps"
    assert_no_repeated_rr(r)


def test_dname_below_itself_terminates(bounds_client, tcp):
    r = bounds_client.query("x.d1.bounds.example.", "A", tcp=tcp)
    assert r.rcode() in (0, 2, 6), f"rcode {r.rcode()}"
    assert r.answer and r.answer[0].rdtype == dns.rdatatype.DNAME
    assert len(raw_answer_rrs(r)) <= 2 * 9
    assert_no_repeated_rr(r)
