"""Referrals at zone cuts (RFC 1034 §4.3.2 step 3b, RFC 9471), over UDP and TCP, both backends.

Checks, with the parent example.com served alone (child sub.example.com not served):
- a name at or below the cut (sub, www.sub, a.b.sub, the glue name ns1.sub) gets a referral:
  NOERROR, AA=0, empty answer, the cut's NS RRset in authority (TTL 86400), and the in-bailiwick
  glue A/AAAA in additional;
- NS at the cut is a referral too, not an authoritative answer;
- DS at the cut is answered from the parent, authoritatively (RFC 4035 §3.1.4.1), and a cut
  without DS gives NODATA with the parent's SOA;
With the main server (child also served):
- DS at the cut still comes from the parent; other names below the cut come from the child.
With the three zones in three separate images (`--image` three times), the same: the child
answers below the cut, the parent answers DS at the cut, the third zone is served.
For the cut `other.example.com` (child not served anywhere):
- the referral lists both NS, the in-bailiwick one with its glue; the out-of-bailiwick NS
  target (ns.example.org) brings no additional records.
"""

import pytest

import zjtest
from zjtest import expect, soa_neg_line, zone_rrset_lines, ZJServer, ServerUnavailable, BUNDLED

COM = "example.com."

SUB_NS = ["sub.example.com. 86400 IN NS ns1.sub.example.com.",
          "sub.example.com. 86400 IN NS ns2.sub.example.com."]
SUB_GLUE = ["ns1.sub.example.com. 86400 IN A 192.0.2.53",
            "ns1.sub.example.com. 86400 IN AAAA 2001:db8:53::1",
            "ns2.sub.example.com. 86400 IN A 192.0.2.54"]
SUB_DS = ["sub.example.com. 86400 IN DS 12345 13 2 "
          "f9c7af7ebcbf098b9f5f37361d1b168bb2e5b98d930ceef0f055377a8c94db61"]
OTHER_NS = ["other.example.com. 86400 IN NS ns1.other.example.com.",
            "other.example.com. 86400 IN NS ns.example.org."]
OTHER_GLUE = ["ns1.other.example.com. 86400 IN A 192.0.2.60"]


@pytest.fixture
def pquery(parent_client):
    return parent_client.query


@pytest.mark.parametrize("qname,rdtype", [
    ("www.sub.example.com.", "A"),
    ("a.b.sub.example.com.", "AAAA"),
    ("sub.example.com.", "A"),
    ("sub.example.com.", "NS"),
    ("sub.example.com.", "SOA"),
    ("ns1.sub.example.com.", "A"),
    ("WWW.SUB.example.com.", "MX"),
])
def test_referral_to_unserved_child(pquery, tcp, qname, rdtype):
    r = pquery(qname, rdtype, tcp=tcp)
    expect(r, rcode="NOERROR", aa=False, tc=False, answer=[], authority=SUB_NS,
           additional=SUB_GLUE)


def test_referral_with_edns_keeps_glue(pquery, tcp):
    r = pquery("www.sub.example.com.", "A", tcp=tcp, edns=0, do=True)
    expect(r, rcode="NOERROR", aa=False, answer=[], additional_subset=SUB_GLUE, edns=True,
           do=True)
    # with DO, a DS may accompany the NS in authority (RFC 4035 §3.1.4): allow exactly that
    auth = {(rr.rdtype, rr.name.to_text().lower()) for rr in r.authority}
    assert (2, "sub.example.com.") in auth and auth <= {(2, "sub.example.com."),
                                                       (43, "sub.example.com.")}


def test_ds_at_cut_from_parent(pquery, tcp):
    r = pquery("sub.example.com.", "DS", tcp=tcp)
    expect(r, rcode="NOERROR", aa=True, answer=SUB_DS, authority=[])


def test_ds_at_cut_from_parent_when_child_served(query, tcp):
    r = query("sub.example.com.", "DS", tcp=tcp)
    expect(r, rcode="NOERROR", aa=True, answer=SUB_DS)


def test_ds_at_cut_without_ds_is_nodata(query, tcp):
    r = query("other.example.com.", "DS", tcp=tcp)
    expect(r, rcode="NOERROR", aa=True, answer=[], authority=[soa_neg_line(COM)])


def test_ds_below_cut_is_referral(pquery, tcp):
    r = pquery("x.sub.example.com.", "DS", tcp=tcp)
    expect(r, rcode="NOERROR", aa=False, answer=[], authority=SUB_NS)


@pytest.mark.parametrize("qname,rdtype", [
    ("www.other.example.com.", "A"),
    ("other.example.com.", "NS"),
    ("ns1.other.example.com.", "A"),
    ("deep.under.other.example.com.", "TXT"),
])
def test_referral_other(query, tcp, qname, rdtype):
    r = query(qname, rdtype, tcp=tcp)
    expect(r, rcode="NOERROR", aa=False, answer=[], authority=OTHER_NS, additional=OTHER_GLUE)


def test_child_served_answers_below_cut(query, tcp):
    r = query("www.sub.example.com.", "A", tcp=tcp)
    expect(r, rcode="NOERROR", aa=True,
           answer=zone_rrset_lines("sub.example.com.", "www.sub.example.com.", "A"))
    r = query("nope.sub.example.com.", "A", tcp=tcp)
    expect(r, rcode="NXDOMAIN", aa=True, authority=[soa_neg_line("sub.example.com.")])


def test_parent_data_outside_cut_unaffected(pquery, tcp):
    r = pquery("web.example.com.", "A", tcp=tcp)
    expect(r, rcode="NOERROR", aa=True, answer=zone_rrset_lines(COM, "web.example.com.", "A"))
    r = pquery("foo.wild.example.com.", "A", tcp=tcp)
    expect(r, rcode="NOERROR", aa=True, answer=["foo.wild.example.com. 3600 IN A 192.0.2.100"])


@pytest.fixture(scope="module")
def split_client(workdir, backend):
    if zjtest.REF:
        pytest.skip("zonejetd only")
    imgs = []
    for origin in ("sub.example.com.", "example.com.", "example.net."):
        imgs += ["--image", zjtest.compile_image(workdir / f"split-{origin}img", [BUNDLED[origin]])]
    srv = ZJServer([*imgs, "--workers", "1"], workdir, backend=backend, name="split")
    try:
        srv.start()
    except ServerUnavailable as e:
        pytest.skip(str(e))
    yield srv.client()
    srv.stop()


def test_split_images_child_parent_and_ds(split_client, tcp):
    q = split_client.query
    expect(q("www.sub.example.com.", "A", tcp=tcp), rcode="NOERROR", aa=True,
           answer=zone_rrset_lines("sub.example.com.", "www.sub.example.com.", "A"))
    expect(q("sub.example.com.", "DS", tcp=tcp), rcode="NOERROR", aa=True, answer=SUB_DS)
    expect(q("sub.example.com.", "SOA", tcp=tcp), rcode="NOERROR", aa=True,
           answer=zone_rrset_lines("sub.example.com.", "sub.example.com.", "SOA"))
    expect(q("www.other.example.com.", "A", tcp=tcp), rcode="NOERROR", aa=False,
           authority=OTHER_NS, additional=OTHER_GLUE)
    expect(q("host1.example.net.", "A", tcp=tcp), rcode="NOERROR", aa=True,
           answer=zone_rrset_lines("example.net.", "host1.example.net.", "A"))
