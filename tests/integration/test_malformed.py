"""Malformed and unusual queries, sent as raw bytes, over UDP (and TCP where meaningful), both
backends. After every packet that must get no response we wait at most 0.5 s, then check that a
normal query is still answered.

Checks:
- QDCOUNT != 1 is FORMERR (RFC 9619 §2), QDCOUNT=0 and QDCOUNT=2 (with two real questions) and
  a QDCOUNT larger than the questions present; the ID is copied, QR set;
- a packet shorter than the 12-octet header gets no response;
- a packet with QR=1 (a response) gets no response (RFC 1035 §4.1.1, avoids reflection loops);
- unknown or unsupported opcodes (1 IQUERY, 3, 5 UPDATE, 6, 15) get NOTIMP (RFC 1035 §4.1.1)
  with the opcode and ID copied;
- bad question names are FORMERR: a label longer than 63 (0x40/0x80 label types), a compression
  pointer (forward, backward into the header, self loop), a name over 255 octets, a name running
  past the end of the packet, a question without QTYPE/QCLASS;
- AXFR and IXFR over UDP are FORMERR or NOTIMP (RFC 5936 §4.2, RFC 1995: TCP only here);
- meta types MAILA/MAILB and class ANY/NONE do not crash the server (any well-formed response);
- a burst of 300 random packets (fixed seed) never crashes the server; it answers afterwards.
"""

import random
import socket
import struct

import dns.rcode
import pytest

from zjtest import expect, packet, question, header, resp_opcode


def assert_silent(client, raw, tcp=False):
    r = client.query(raw=raw, tcp=tcp)
    assert r is None, f"expected no response, got:\n{r}"
    client.alive_check()


@pytest.mark.parametrize("qd,questions", [
    (0, []),
    (2, [question("example.com.", 6), question("example.net.", 6)]),
    (2, [question("example.com.", 6)]),
    (3, [question("example.com.", 6)] * 3),
], ids=["qd0", "qd2", "qd2-one-present", "qd3"])
def test_qdcount_not_one_formerr(client, tcp, qd, questions):
    raw = packet(questions=questions, qd=qd, qid=0xBEEF)
    r = client.query(raw=raw, tcp=tcp)
    expect(r, rcode="FORMERR", qid=0xBEEF)
    client.alive_check(tcp=tcp)


@pytest.mark.parametrize("n", [0, 1, 2, 11])
def test_short_header_no_response(client, n):
    raw = packet("example.com.", 6)[:n]
    if n == 0:
        raw = b""
    assert_silent(client, raw)


def test_short_header_over_tcp_no_response(client):
    assert_silent(client, packet("example.com.", 6)[:7], tcp=True)


@pytest.mark.parametrize("tcp_", [False, True], ids=["udp", "tcp"])
def test_qr_set_no_response(client, tcp_):
    assert_silent(client, packet("example.com.", 6, flags=0x8000), tcp=tcp_)
    # a response with an error rcode too (never answer answers)
    assert_silent(client, packet("example.com.", 6, flags=0x8000 | 0x0003), tcp=tcp_)


@pytest.mark.parametrize("opcode", [1, 3, 5, 6, 15])
def test_unknown_opcode_notimp(client, tcp, opcode):
    r = client.query(raw=packet("example.com.", 6, opcode=opcode, qid=0x4242), tcp=tcp)
    expect(r, rcode="NOTIMP", qid=0x4242)
    assert resp_opcode(r) == opcode, "the opcode must be copied into the response"


def test_status_opcode_not_answered_as_query(client, tcp):
    r = client.query(raw=packet("example.com.", 6, opcode=2), tcp=tcp)
    if r is not None:
        assert r.rcode() in (dns.rcode.NOTIMP, dns.rcode.FORMERR, dns.rcode.REFUSED)
        assert not r.answer


BAD_NAMES = {
    "label-64": b"\x40" + b"a" * 64 + b"\x07example\x03com\x00",
    "label-type-0x80": b"\x80" + b"a" * 10 + b"\x00",
    "pointer-into-header": b"\x03www\xc0\x00",
    "pointer-self-loop": b"\xc0\x0c",
    "pointer-forward": b"\x03www\xc0\x20",
    "name-256-octets": b"".join(b"\x3f" + b"a" * 63 for _ in range(4)) + b"\x03abc\x00",
    "name-unterminated": b"\x07example\x03com",
    "name-cut-mid-label": b"\x07exam",
}


@pytest.mark.parametrize("label", list(BAD_NAMES))
def test_bad_question_name_formerr(client, tcp, label):
    qname = BAD_NAMES[label]
    if label in ("name-unterminated", "name-cut-mid-label"):
        raw = header(qd=1) + qname  # the packet ends inside the name
    else:
        raw = header(qd=1) + qname + struct.pack("!HH", 1, 1)
    r = client.query(raw=raw, tcp=tcp)
    expect(r, rcode="FORMERR", qid=0x1234)
    client.alive_check(tcp=tcp)


def test_name_255_octets_is_valid(client, tcp):
    """The largest legal name (255 octets) is parsed; it is outside our zones: REFUSED."""
    qname = b"".join(b"\x3f" + b"a" * 63 for _ in range(3)) + b"\x3d" + b"b" * 61 + b"\x00"
    assert len(qname) == 255
    r = client.query(raw=header(qd=1) + qname + struct.pack("!HH", 1, 1), tcp=tcp)
    expect(r, rcode="REFUSED")


@pytest.mark.parametrize("cut", [1, 2, 3])
def test_question_without_type_class_formerr(client, tcp, cut):
    raw = packet("example.com.", 6)[:-cut]
    r = client.query(raw=raw, tcp=tcp)
    expect(r, rcode="FORMERR")


@pytest.mark.parametrize("qtype", [252, 251], ids=["axfr", "ixfr"])
def test_zone_transfer_over_udp_refused_as_formerr_or_notimp(client, qtype):
    r = client.query(raw=packet("example.com.", qtype))
    assert r is not None, "AXFR/IXFR over UDP must be answered with an error"
    assert r.rcode() in (dns.rcode.FORMERR, dns.rcode.NOTIMP), (
        f"rcode {dns.rcode.to_text(r.rcode())}, want FORMERR or NOTIMP"
    )
    assert not r.answer


@pytest.mark.parametrize("qtype,qclass", [(253, 1), (254, 1), (1, 255), (1, 254), (1, 4),
                                          (0, 1), (65535, 1)])
def test_odd_types_and_classes_answered(client, tcp, qtype, qclass):
    r = client.query(raw=packet("web.example.com.", qtype, qclass), tcp=tcp)
    assert r is not None, "the server must answer (any rcode)"
    assert r.id == 0x1234
    client.alive_check(tcp=tcp)


def test_random_packets_never_crash(client):
    rnd = random.Random(4592)
    base = packet("www.example.com.", 1)
    sent = 0
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for i in range(300):
            kind = i % 3
            if kind == 0:  # random bytes
                pkt = bytes(rnd.getrandbits(8) for _ in range(rnd.randint(0, 80)))
            elif kind == 1:  # a valid query with a few bytes flipped
                b = bytearray(base)
                for _ in range(rnd.randint(1, 4)):
                    b[rnd.randrange(len(b))] = rnd.getrandbits(8)
                pkt = bytes(b)
            else:  # a valid header with random counts and a random tail
                pkt = struct.pack("!HHHHHH", i, 0, rnd.randint(0, 3), rnd.randint(0, 3),
                                  rnd.randint(0, 3), rnd.randint(0, 3)) + bytes(
                    rnd.getrandbits(8) for _ in range(rnd.randint(0, 60)))
            s.sendto(pkt, ("127.0.0.1", client.port))
            sent += 1
    finally:
        s.close()
    client.alive_check()
    client.alive_check(tcp=True)
    assert client.server is None or client.server.alive()
