"""UDP size limits and truncation (RFC 1035 §4.2.1, RFC 6891 §6.2.5, RFC 2181 §9), both backends.

The bundled zone has TXT RRsets of ~0.7 KB (medium), ~2 KB (large) and ~6.5 KB (huge).
Checks:
- without EDNS a UDP response never exceeds 512 octets: medium gets TC=1;
- with EDNS the limit is min(client payload, server payload); payloads under 512 count as 512;
  the server's default is 1232 (medium fits, large is TC even when the client offers 4096);
- with `--edns-payload 4096` large fits for a 4096 client and is TC for a 1232 client, and the
  OPT advertises 4096;
- a TC=1 response holds only whole RRsets (each RRset in it equals the full one from TCP), keeps
  the question and the OPT (when the query had one), and AA/rcode are those of the full answer;
- the same queries over TCP are complete and TC=0 (huge, > 4 KiB, in one message);
- small answers are never truncated;
- names in RDATA (MX exchange, NS host) are compressed (RFC 1035 §4.1.4), so that an answer of
  20 MX records (zones/bounds.example.zone: ~460 octets compressed, ~1.2 KB not) fits in 512
  octets without TC, as with Knot and NSD;
- a referral whose glue cannot all fit is TC=1 or carries every in-bailiwick glue RRset
  (RFC 9471 §3); with EDNS 1232 it fits whole;
- when only the additional section overflows, TC stays 0, the answer is whole and the
  additional section holds whole RRsets (RFC 2181 §9).
"""

import pytest

from zjtest import expect, section_dict, zone_rrset_lines, raw_records, name_wire

COM = "example.com."
MEDIUM, LARGE, HUGE = "medium.example.com.", "large.example.com.", "huge.example.com."


def assert_whole_rrsets(tc_resp, full_resp):
    full = {**section_dict(full_resp.answer), **section_dict(full_resp.authority)}
    for sec in (tc_resp.answer, tc_resp.authority):
        for k, v in section_dict(sec).items():
            assert k in full, f"TC response holds {k[0]} type {k[2]}, not in the full answer"
            assert v[1] == full[k][1], f"partial RRset {k[0]} type {k[2]} in a TC response"


def check_tc(client, name, rdtype, limit, **kw):
    r = client.query(name, rdtype, tcp=False, **kw)
    expect(r, rcode="NOERROR", tc=True)
    assert len(r.wire) <= limit, f"UDP response of {len(r.wire)} octets > limit {limit}"
    assert len(r.question) == 1 and r.question[0].name.to_text() == name
    full = client.query(name, rdtype, tcp=True, **kw)
    expect(full, rcode="NOERROR", tc=False)
    assert_whole_rrsets(r, full)
    assert bool(r.flags & 0x0400) == bool(full.flags & 0x0400), "AA differs from the full answer"
    e = kw.get("edns")
    had_edns = (e is not None and e is not False) or kw.get("payload") is not None or kw.get("do")
    assert (r.edns >= 0) == bool(had_edns), "OPT in the TC response iff the query had one"
    return r


def test_no_edns_medium_truncated_at_512(client):
    check_tc(client, MEDIUM, "TXT", 512, edns=False)


def test_no_edns_small_not_truncated(client):
    r = client.query("example.com.", "MX", edns=False)
    expect(r, rcode="NOERROR", tc=False, answer=zone_rrset_lines(COM, COM, "MX"))
    assert len(r.wire) <= 512


def test_edns_medium_fits(client):
    r = client.query(MEDIUM, "TXT", payload=1232)
    expect(r, rcode="NOERROR", aa=True, tc=False, answer=zone_rrset_lines(COM, MEDIUM, "TXT"))
    assert 512 < len(r.wire) <= 1232


@pytest.mark.parametrize("payload", [1232, 4096, 65535])
def test_large_truncated_at_server_default_1232(client, payload):
    r = check_tc(client, LARGE, "TXT", 1232, payload=payload)
    assert r.payload == 1232, f"server advertised {r.payload}, default must be 1232"


@pytest.mark.parametrize("payload", [0, 100, 511, 512])
def test_payload_below_512_counts_as_512(client, payload):
    check_tc(client, MEDIUM, "TXT", 512, payload=payload)
    r = client.query("example.com.", "SOA", payload=payload)
    expect(r, rcode="NOERROR", tc=False, answer=zone_rrset_lines(COM, COM, "SOA"))


def test_client_payload_smaller_than_server_honoured(client):
    check_tc(client, MEDIUM, "TXT", 600, payload=600)


def test_configured_payload_4096(big_client):
    r = big_client.query(LARGE, "TXT", payload=4096)
    expect(r, rcode="NOERROR", aa=True, tc=False, answer=zone_rrset_lines(COM, LARGE, "TXT"))
    assert 1232 < len(r.wire) <= 4096
    assert r.payload == 4096, f"server advertised {r.payload}, configured 4096"


def test_configured_payload_client_limit_wins(big_client):
    check_tc(big_client, LARGE, "TXT", 1232, payload=1232)


def test_configured_payload_huge_still_truncated(big_client):
    check_tc(big_client, HUGE, "TXT", 4096, payload=8192)


@pytest.mark.parametrize("name", [MEDIUM, LARGE, HUGE])
def test_tcp_complete(client, name):
    r = client.query(name, "TXT", tcp=True)
    expect(r, rcode="NOERROR", aa=True, tc=False, answer=zone_rrset_lines(COM, name, "TXT"))
    if name == HUGE:
        assert len(r.wire) > 4096


def test_tc_without_edns_has_no_opt(client):
    r = client.query(LARGE, "TXT", edns=False)
    expect(r, tc=True, edns=False)
    assert len(r.wire) <= 512


def test_do_bit_echoed_on_truncated(client):
    r = check_tc(client, LARGE, "TXT", 1232, edns=0, do=True)
    expect(r, do=True)


def test_udp_responses_never_exceed_512_without_edns(client):
    names = [("example.com.", "ANY"), ("example.com.", "NS"), ("example.com.", "TXT"),
             ("_sip._tcp.example.com.", "SRV"), ("www.sub.example.com.", "A"),
             ("www.other.example.com.", "A"), ("chain1.example.com.", "A"),
             ("nope.example.net.", "A"), (MEDIUM, "TXT"), (LARGE, "TXT"), (HUGE, "TXT")]
    for name, rdtype in names:
        r = client.query(name, rdtype, edns=False)
        assert len(r.wire) <= 512, f"{name} {rdtype}: {len(r.wire)} octets without EDNS"


BOUNDS_MX = [f"manymx.bounds.example. 300 IN MX {i} mx{i:02d}.manymx.bounds.example."
             for i in range(1, 21)]
BIGDELEG_NS = [f"bigdeleg.bounds.example. 300 IN NS ns{i:02d}.bigdeleg.bounds.example."
               for i in range(1, 14)]
BIGDELEG_GLUE = [x for i in range(1, 14) for x in (
    f"ns{i:02d}.bigdeleg.bounds.example. 300 IN A 192.0.2.{i}",
    f"ns{i:02d}.bigdeleg.bounds.example. 300 IN AAAA 2001:db8::{i:x}")]


def test_rdata_names_compressed(client):
    """Bytes: each MX of example.com (targets mail, mail2 under the owner) is sent with its
    exchange compressed: RDLENGTH < 2 + the uncompressed name length."""
    r = client.query("example.com.", "MX", tcp=True)
    mx = [rdlen for sec, t, rdlen in raw_records(r.wire) if sec == "answer" and t == 15]
    assert len(mx) == 2
    full = 2 + len(name_wire("mail.example.com."))
    assert all(rdlen < full for rdlen in mx), (
        f"MX RDLENGTHs {mx}: exchange names not compressed (uncompressed would be {full})")


def test_answer_fitting_512_compressed_not_truncated(bounds_client):
    r = bounds_client.query("manymx.bounds.example.", "MX", edns=False)
    expect(r, rcode="NOERROR", aa=True, tc=False, answer=BOUNDS_MX)
    assert len(r.wire) <= 512


def test_referral_glue_whole_or_tc(bounds_client):
    r = bounds_client.query("x.bigdeleg.bounds.example.", "A", edns=False)
    assert len(r.wire) <= 512
    expect(r, rcode="NOERROR", aa=False)
    if not r.flags & 0x0200:
        expect(r, authority=BIGDELEG_NS, additional=BIGDELEG_GLUE)


def test_referral_glue_fits_with_edns(bounds_client, tcp):
    r = bounds_client.query("x.bigdeleg.bounds.example.", "A", payload=1232, tcp=tcp)
    expect(r, rcode="NOERROR", aa=False, tc=False, answer=[], authority=BIGDELEG_NS,
           additional=BIGDELEG_GLUE)


def test_additional_overflow_keeps_tc_clear(bounds_client):
    r = bounds_client.query("manymx.bounds.example.", "MX", payload=1232)
    expect(r, rcode="NOERROR", aa=True, tc=False, answer=BOUNDS_MX)
    full = bounds_client.query("manymx.bounds.example.", "MX", tcp=True)
    want = section_dict(full.additional)
    assert len(want) == 40, "over TCP every MX target's A and AAAA is in additional"
    for k, v in section_dict(r.additional).items():
        assert k in want and want[k] == v, f"additional rrset {k} partial or unexpected"
