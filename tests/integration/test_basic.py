"""Basic authoritative answers, over UDP and TCP, on both I/O backends.

Checks:
- exact matches are answered with AA=1, NOERROR, the whole RRset with its TTL, an empty
  authority section, for every record type in the bundled zones (A AAAA NS SOA MX TXT CAA SRV
  SSHFP TLSA SVCB HTTPS NAPTR LOC HINFO PTR SPF URI DNSKEY DS);
- additional A/AAAA for the targets of MX, SRV and NS (RFC 1035 §3.3.9/§3.3.11, RFC 2782) when
  the target is in the served data;
- names are matched case-insensitively; the question is echoed byte for byte (0x20 mixed case,
  RFC 1035 §4.1.2 / draft-vixie-dnsext-dns0x20) and the answer's owner keeps the query's case;
- the ID is copied, RD is copied, RA is never set, QR is set, opcode is QUERY (RFC 1035 §4.1.1);
- names outside every served zone get REFUSED with AA=0 and no records (RFC 1035 §4.3.2 step 2);
- a name in the child zone sub.example.com is answered from the child (the deepest zone);
- ANY (RFC 8482): over UDP exactly one of the RRsets at the name, AA=1; over TCP all of them;
- CD is copied (RFC 4035 §3.1.6), AD is never set (unsigned data);
- a burst of 200 different UDP queries sent back to back (so the backend receives and sends
  them in batches) is answered in full, each response matching its query;
- a second listener on [::1] answers over UDP and TCP like 127.0.0.1.
"""

import random
import socket
import time

import dns.flags
import dns.opcode
import dns.rdatatype
import pytest

import zjtest
from zjtest import (expect, zone_rrset_lines, section_dict, parse_rr_lines, mixed_case, name_wire,
                    parse, free_port, Client, ZJServer, ServerUnavailable)

COM, NET, SUB = "example.com.", "example.net.", "sub.example.com."

# (zone, owner, type): exact matches whose answer is the zone's RRset, with no additional check.
EXACT = [
    (COM, "example.com.", "SOA"),
    (COM, "example.com.", "A"),
    (COM, "example.com.", "AAAA"),
    (COM, "example.com.", "TXT"),
    (COM, "example.com.", "CAA"),
    (COM, "web.example.com.", "A"),
    (COM, "web.example.com.", "AAAA"),
    (COM, "web.example.com.", "TXT"),
    (COM, "mail2.example.com.", "A"),
    (COM, "ns1.example.com.", "AAAA"),
    (COM, "newdept.example.com.", "TXT"),
    (COM, "_imap._tcp.example.com.", "SRV"),
    (NET, "example.net.", "SOA"),
    (NET, "example.net.", "CAA"),
    (NET, "example.net.", "HTTPS"),
    (NET, "example.net.", "TXT"),
    (NET, "host1.example.net.", "SSHFP"),
    (NET, "_443._tcp.host1.example.net.", "TLSA"),
    (NET, "_dns.ns1.example.net.", "SVCB"),
    (NET, "sip.example.net.", "NAPTR"),
    (NET, "loc.example.net.", "LOC"),
    (NET, "hinfo.example.net.", "HINFO"),
    (NET, "ptr.example.net.", "PTR"),
    (NET, "spf.example.net.", "SPF"),
    (NET, "uri.example.net.", "URI"),
    (NET, "txt.example.net.", "TXT"),
    (NET, "alice.users.example.net.", "TXT"),
    (SUB, "sub.example.com.", "SOA"),
    (SUB, "sub.example.com.", "DNSKEY"),
    (SUB, "www.sub.example.com.", "AAAA"),
    (SUB, "host.sub.example.com.", "TXT"),
    (SUB, "ns1.sub.example.com.", "A"),
]


@pytest.mark.parametrize("zone,name,rdtype", EXACT, ids=[f"{n}{t}" for _, n, t in EXACT])
def test_exact_match_is_authoritative(query, tcp, zone, name, rdtype):
    r = query(name, rdtype, tcp=tcp, edns=0)
    expect(r, rcode="NOERROR", aa=True, tc=False, answer=zone_rrset_lines(zone, name, rdtype),
           authority=[])


def test_mx_gets_additional_addresses(query, tcp):
    r = query("example.com.", "MX", tcp=tcp)
    expect(
        r, rcode="NOERROR", aa=True,
        answer=zone_rrset_lines(COM, "example.com.", "MX"),
        authority=[],
        additional_subset=[
            "mail.example.com. 3600 IN A 192.0.2.25",
            "mail.example.com. 3600 IN AAAA 2001:db8::25",
            "mail2.example.com. 600 IN A 192.0.2.26",
        ],
    )


def test_srv_gets_additional_addresses(query, tcp):
    r = query("_sip._tcp.example.com.", "SRV", tcp=tcp)
    expect(
        r, rcode="NOERROR", aa=True,
        answer=zone_rrset_lines(COM, "_sip._tcp.example.com.", "SRV"),
        additional_subset=[
            "sip.example.com. 3600 IN A 192.0.2.50",
            "sip.example.com. 3600 IN AAAA 2001:db8::50",
            "web.example.com. 3600 IN A 192.0.2.80",
            "web.example.com. 3600 IN A 192.0.2.81",
            "web.example.com. 3600 IN AAAA 2001:db8::80",
        ],
    )


def test_srv_in_second_zone_gets_additional(query, tcp):
    r = query("_xmpp-client._tcp.example.net.", "SRV", tcp=tcp)
    expect(
        r, rcode="NOERROR", aa=True,
        answer=zone_rrset_lines(NET, "_xmpp-client._tcp.example.net.", "SRV"),
        additional_subset=[
            "host1.example.net. 86400 IN A 198.51.100.31",
            "mx1.example.net. 3600 IN A 198.51.100.25",
        ],
    )


def test_apex_ns_gets_glue_addresses(query, tcp):
    r = query("example.com.", "NS", tcp=tcp)
    expect(
        r, rcode="NOERROR", aa=True,
        answer=zone_rrset_lines(COM, "example.com.", "NS"),
        additional_subset=[
            "ns1.example.com. 3600 IN A 192.0.2.1",
            "ns1.example.com. 3600 IN AAAA 2001:db8::1",
            "ns2.example.com. 3600 IN A 192.0.2.2",
            "ns2.example.com. 3600 IN AAAA 2001:db8::2",
        ],
    )


def test_additional_has_no_duplicates_and_no_answer_copies(query, tcp):
    r = query("example.com.", "MX", tcp=tcp)
    section_dict(r.additional)  # asserts each rrset appears once
    answer_keys = set(section_dict(r.answer))
    assert not answer_keys & set(section_dict(r.additional))


def test_case_insensitive_match(query, tcp):
    r = query("WEB.Example.COM.", "A", tcp=tcp)
    expect(r, rcode="NOERROR", aa=True, answer=zone_rrset_lines(COM, "web.example.com.", "A"))


@pytest.mark.parametrize("qname", ["wEb.ExAmPlE.cOm.", "NS1.EXAMPLE.NET.", "WwW.sUb.ExAmPlE.cOm."])
def test_question_echoed_byte_for_byte(query, tcp, qname):
    """The response's question section is the query's, bytes and case (0x20) unchanged."""
    r = query(qname, "A", tcp=tcp, edns=False)
    qlen = len(name_wire(qname)) + 4
    assert r.wire[4:6] == b"\x00\x01", "QDCOUNT must be 1"
    assert r.wire[12:12 + qlen] == r.query_wire[12:12 + qlen], (
        f"question differs: sent {r.query_wire[12:12 + qlen]!r}, got {r.wire[12:12 + qlen]!r}"
    )
    assert r.answer, f"no answer for {qname}"
    owner = r.answer[0].name.to_text()
    assert owner == qname, f"answer owner {owner!r} lost the query's case {qname!r}"


def test_id_copied(query, tcp):
    for qid in (0, 1, 0x8000, 0xFFFF, random.randint(2, 0xFFFE)):
        r = query("example.com.", "SOA", tcp=tcp, qid=qid)
        expect(r, rcode="NOERROR", qid=qid)


@pytest.mark.parametrize("rd", [True, False], ids=["rd1", "rd0"])
def test_rd_copied_ra_never_set(query, tcp, rd):
    flags = dns.flags.RD if rd else 0
    for name, rdtype in (("web.example.com.", "A"), ("nope.example.com.", "A"),
                         ("www.example.org.", "A")):
        r = query(name, rdtype, tcp=tcp, flags=flags)
        expect(r, rd=rd, ra=False)
        assert r.opcode() == dns.opcode.QUERY


@pytest.mark.parametrize("cd", [True, False], ids=["cd1", "cd0"])
def test_cd_copied_ad_clear(query, tcp, cd):
    flags = dns.flags.AD | (dns.flags.CD if cd else 0)
    for name in ("web.example.com.", "nope.example.com."):
        r = query(name, "A", tcp=tcp, flags=flags, edns=0, do=True)
        assert bool(r.flags & dns.flags.CD) == cd, f"CD not copied: {flags_of(r)}"
        assert not r.flags & dns.flags.AD, f"AD set on unsigned data: {flags_of(r)}"
    expect(r, rcode="NXDOMAIN", aa=True)


def flags_of(r):
    return dns.flags.to_text(r.flags)


@pytest.mark.parametrize("name", ["www.example.org.", "example.org.", "com.", ".",
                                  "notexample.com.", "xexample.net."])
def test_outside_every_zone_is_refused(query, tcp, name):
    r = query(name, "A", tcp=tcp)
    expect(r, rcode="REFUSED", aa=False, answer=[], authority=[])
    assert not r.additional


def test_child_zone_answers_for_its_names(query, tcp):
    r = query("www.sub.example.com.", "A", tcp=tcp)
    expect(r, rcode="NOERROR", aa=True,
           answer=zone_rrset_lines(SUB, "www.sub.example.com.", "A"), authority=[])


def test_child_apex_ns_from_child(query, tcp):
    r = query("sub.example.com.", "NS", tcp=tcp)
    expect(r, rcode="NOERROR", aa=True, answer=zone_rrset_lines(SUB, "sub.example.com.", "NS"))


@pytest.mark.parametrize("zone,name", [(COM, "example.com."), (COM, "web.example.com."),
                                       (NET, "host1.example.net."), (COM, "sip.example.com.")])
def test_any_over_udp_is_one_rrset(query, zone, name):
    """RFC 8482 §4.1: over UDP, ANY gets one RRset that exists at the name, authoritatively."""
    r = query(name, "ANY", tcp=False)
    expect(r, rcode="NOERROR", aa=True, tc=False)
    assert len(r.answer) == 1, f"ANY over UDP returned {len(r.answer)} RRsets:\n{r}"
    full = parse_rr_lines(zone_rrset_lines(zone, name))
    got = section_dict(r.answer)
    (k, v), = got.items()
    assert k in full and full[k][1] == v[1], f"{r.answer[0]} is not an RRset of {name}"


@pytest.mark.parametrize("zone,name", [(COM, "example.com."), (COM, "web.example.com."),
                                       (NET, "host1.example.net."), (NET, "example.net.")])
def test_any_over_tcp_is_all_rrsets(query, zone, name):
    r = query(name, "ANY", tcp=True)
    expect(r, rcode="NOERROR", aa=True, answer=zone_rrset_lines(zone, name))


def test_any_at_cname_returns_the_cname_only(query):
    """RFC 1034 §4.3.2 step 3a: ANY matches the CNAME itself, so it is not chased."""
    r = query("www.example.com.", "ANY", tcp=True)
    expect(r, rcode="NOERROR", aa=True, answer=["www.example.com. 3600 IN CNAME web.example.com."])


def test_mixed_case_many_names(query, tcp):
    """A batch of random-case queries: each matches as if lower case."""
    names = ["example.com.", "web.example.com.", "mail.example.com.", "host1.example.net.",
             "www.sub.example.com."]
    for i, n in enumerate(names):
        zone = SUB if n.endswith(SUB) else (NET if n.endswith(NET) else COM)
        qn = mixed_case(n, seed=i)
        r = query(qn, "A", tcp=tcp)
        expect(r, rcode="NOERROR", aa=True, answer=zone_rrset_lines(zone, n, "A"))
        assert r.answer[0].name.to_text() == qn


BURST = [("web.example.com.", "A"), ("example.com.", "MX"), ("nope.example.com.", "A"),
         ("www.example.com.", "A"), ("host1.example.net.", "SSHFP"), ("foo.wild.example.com.", "A"),
         ("www.other.example.com.", "A"), ("www.example.org.", "A")]


def test_udp_burst_answered_in_full(client):
    """200 queries back to back on one socket: the server reads and answers them in batches."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    s.connect(("127.0.0.1", client.port))
    want = {}
    try:
        for i in range(200):
            name, rdtype = BURST[i % len(BURST)]
            q = client.make(name, rdtype, qid=i)
            want[i] = (name, rdtype)
            s.send(q.to_wire())
        got = {}
        s.settimeout(0.5)
        deadline = time.monotonic() + 5
        while len(got) < len(want) and time.monotonic() < deadline:
            try:
                w = s.recv(65535)
            except socket.timeout:
                continue
            r = parse(w)
            assert r.id in want and r.id not in got, f"unexpected or duplicate ID {r.id}"
            got[r.id] = r
    finally:
        s.close()
    assert len(got) == len(want), f"{len(want) - len(got)} of {len(want)} queries unanswered"
    for i, r in got.items():
        name, rdtype = want[i]
        assert r.question[0].name.to_text() == name and dns.rdatatype.to_text(
            r.question[0].rdtype) == rdtype, f"response {i} answers another question"
        if (name, rdtype) == ("web.example.com.", "A"):
            expect(r, rcode="NOERROR", answer=zone_rrset_lines(COM, name, "A"))


@pytest.fixture(scope="module")
def v6_server(workdir, backend, image):
    if zjtest.REF:
        pytest.skip("zonejetd only")
    try:
        port6 = free_port("::1")
    except OSError:
        pytest.skip("no IPv6 loopback")
    srv = ZJServer(["--listen", f"[::1]:{port6}", "--image", image, "--workers", "1"], workdir,
                   backend=backend, name="v6")
    try:
        srv.start()
    except ServerUnavailable as e:
        pytest.skip(str(e))
    srv.port6 = port6
    yield srv
    srv.stop()


@pytest.mark.parametrize("tcp_", [False, True], ids=["udp", "tcp"])
def test_ipv6_listener(v6_server, tcp_):
    c = Client(v6_server, host="::1", port=v6_server.port6)
    r = c.query("web.example.com.", "A", tcp=tcp_)
    expect(r, rcode="NOERROR", aa=True, answer=zone_rrset_lines(COM, "web.example.com.", "A"))
    r = v6_server.client().query("example.net.", "SOA", tcp=tcp_)
    expect(r, rcode="NOERROR", aa=True)
