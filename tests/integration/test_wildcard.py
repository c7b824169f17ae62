"""Wildcard synthesis (RFC 4592), over UDP and TCP, on both backends.

Checks:
- a name below *.wild.example.com gets the wildcard's RRset with the owner = query name, case
  kept (RFC 4592 §3.3.1), AA=1, the wildcard's TTL; also two labels below (a.b.wild);
- types other than A: TXT, and MX with the MX target's addresses in additional;
- a type the wildcard lacks is NODATA with the SOA (RFC 4592 §3.3.1, §4.1);
- the closest encloser rule: a name that exists (exists.wild) is never synthesised: its other
  types are NODATA, and names below it are NXDOMAIN (no *.exists.wild);
- the wildcard's parent with no data of its own (wild.example.com) is an empty non-terminal;
- the literal owner "*.wild" is an ordinary match;
- a wildcard CNAME (*.wc) synthesises a CNAME owned by the query name, then the chain is
  followed in the zone; asking for CNAME returns just the synthesised CNAME;
- an empty non-terminal blocks the wildcard above it (RFC 4592 §2.2.2): with *.blk and
  deep.ent.blk, "other.blk" is synthesised but ent.blk is NODATA and x.ent.blk is NXDOMAIN;
- a 254-octet query name is synthesised in full; a 255-octet missing name is NXDOMAIN;
- the wildcard in example.net (*.users) answers A and AAAA with TTL 300, but not for
  alice.users (exists) or below it.
"""

import dns.name
import pytest

from zjtest import expect, soa_neg_line

COM, NET = "example.com.", "example.net."


@pytest.mark.parametrize("qname", ["foo.wild.example.com.", "a.b.wild.example.com.",
                                   "FoO.WiLd.ExAmPlE.CoM.", "x-y_z.wild.example.com."])
def test_wildcard_a_owner_is_query_name(query, tcp, qname):
    r = query(qname, "A", tcp=tcp)
    expect(r, rcode="NOERROR", aa=True, answer=[f"{qname} 3600 IN A 192.0.2.100"], authority=[])
    assert r.answer[0].name.to_text() == qname, "synthesised owner must keep the query's case"


def test_wildcard_txt(query, tcp):
    r = query("bar.wild.example.com.", "TXT", tcp=tcp)
    expect(r, rcode="NOERROR", aa=True, answer=['bar.wild.example.com. 3600 IN TXT "wildcard"'])


def test_wildcard_mx_gets_additional(query, tcp):
    r = query("m.wild.example.com.", "MX", tcp=tcp)
    expect(r, rcode="NOERROR", aa=True,
           answer=["m.wild.example.com. 3600 IN MX 10 mail.example.com."],
           additional_subset=["mail.example.com. 3600 IN A 192.0.2.25",
                              "mail.example.com. 3600 IN AAAA 2001:db8::25"])


def test_wildcard_nodata(query, tcp):
    r = query("foo.wild.example.com.", "AAAA", tcp=tcp)
    expect(r, rcode="NOERROR", aa=True, answer=[], authority=[soa_neg_line(COM)])


def test_existing_name_is_not_synthesised(query, tcp):
    r = query("exists.wild.example.com.", "A", tcp=tcp)
    expect(r, rcode="NOERROR", aa=True, answer=[], authority=[soa_neg_line(COM)])
    r = query("exists.wild.example.com.", "TXT", tcp=tcp)
    expect(r, rcode="NOERROR", aa=True, answer=['exists.wild.example.com. 3600 IN TXT "exists"'])


def test_below_existing_name_is_nxdomain(query, tcp):
    """Closest encloser is exists.wild; *.exists.wild does not exist."""
    r = query("x.exists.wild.example.com.", "A", tcp=tcp)
    expect(r, rcode="NXDOMAIN", aa=True, answer=[], authority=[soa_neg_line(COM)])


def test_wildcard_parent_is_empty_non_terminal(query, tcp):
    r = query("wild.example.com.", "A", tcp=tcp)
    expect(r, rcode="NOERROR", aa=True, answer=[], authority=[soa_neg_line(COM)])


def test_literal_asterisk_owner(query, tcp):
    r = query("*.wild.example.com.", "A", tcp=tcp)
    expect(r, rcode="NOERROR", aa=True, answer=["*.wild.example.com. 3600 IN A 192.0.2.100"])


def test_wildcard_cname_followed(query, tcp):
    r = query("Any.Wc.example.com.", "A", tcp=tcp)
    expect(r, rcode="NOERROR", aa=True, answer=[
        "any.wc.example.com. 3600 IN CNAME web.example.com.",
        "web.example.com. 3600 IN A 192.0.2.80",
        "web.example.com. 3600 IN A 192.0.2.81",
    ])
    assert r.answer[0].name.to_text() == "Any.Wc.example.com."


def test_wildcard_cname_type_cname(query, tcp):
    r = query("x.y.wc.example.com.", "CNAME", tcp=tcp)
    expect(r, rcode="NOERROR", aa=True,
           answer=["x.y.wc.example.com. 3600 IN CNAME web.example.com."])


def test_wildcard_cname_to_nodata(query, tcp):
    r = query("z.wc.example.com.", "MX", tcp=tcp)
    expect(r, rcode="NOERROR", aa=True,
           answer=["z.wc.example.com. 3600 IN CNAME web.example.com."],
           authority=[soa_neg_line(COM)])


def test_wildcard_beside_empty_non_terminal(query, tcp):
    r = query("other.blk.example.com.", "A", tcp=tcp)
    expect(r, rcode="NOERROR", aa=True, answer=["other.blk.example.com. 3600 IN A 192.0.2.101"])


def test_empty_non_terminal_blocks_wildcard(query, tcp):
    r = query("ent.blk.example.com.", "A", tcp=tcp)
    expect(r, rcode="NOERROR", aa=True, answer=[], authority=[soa_neg_line(COM)])


def test_below_empty_non_terminal_is_nxdomain(query, tcp):
    r = query("x.ent.blk.example.com.", "A", tcp=tcp)
    expect(r, rcode="NXDOMAIN", aa=True, answer=[], authority=[soa_neg_line(COM)])


def test_data_below_empty_non_terminal(query, tcp):
    r = query("deep.ent.blk.example.com.", "TXT", tcp=tcp)
    expect(r, rcode="NOERROR", aa=True,
           answer=['deep.ent.blk.example.com. 3600 IN TXT "below the empty non-terminal ent.blk"'])


@pytest.mark.parametrize("rdtype,data", [("A", "198.51.100.200"), ("AAAA", "2001:db8:100::200")])
def test_second_zone_wildcard(query, tcp, rdtype, data):
    r = query("Bob.users.example.net.", rdtype, tcp=tcp, edns=0)
    expect(r, rcode="NOERROR", aa=True, answer=[f"bob.users.example.net. 300 IN {rdtype} {data}"])


def test_second_zone_wildcard_not_for_existing(query, tcp):
    r = query("alice.users.example.net.", "A", tcp=tcp)
    expect(r, rcode="NOERROR", aa=True, answer=[], authority=[soa_neg_line(NET)])
    r = query("x.alice.users.example.net.", "A", tcp=tcp)
    expect(r, rcode="NXDOMAIN", aa=True, answer=[], authority=[soa_neg_line(NET)])


def test_wildcard_with_longest_name(query, tcp):
    """A 254-octet query name (118 one-octet labels below wild.example.com) is synthesised with
    that owner, written in full or compressed to the question."""
    qname = "a." * 118 + "wild.example.com."
    assert len(dns.name.from_text(qname).to_wire()) == 254
    r = query(qname, "A", tcp=tcp, edns=0)
    expect(r, rcode="NOERROR", aa=True, answer=[f"{qname} 3600 IN A 192.0.2.100"])


def test_nxdomain_with_longest_name(query, tcp):
    qname = "b." * 121 + "example.com."  # 255 octets
    assert len(dns.name.from_text(qname).to_wire()) == 255
    r = query(qname, "A", tcp=tcp)
    expect(r, rcode="NXDOMAIN", aa=True, authority=[soa_neg_line(COM)])
