"""DNS over TCP (RFC 1035 §4.2.2, RFC 7766), both backends.

Checks:
- every response is framed by a 2-octet length equal to the message length;
- several queries pipelined in one write on one connection are all answered (any order, RFC 7766
  §6.2.1.1), each matched by ID with the right answer;
- queries sent one after another on one connection are all answered;
- a query split across writes (length prefix alone, then the body in two parts) is answered;
- big answers (huge.example.com TXT, > 4 KiB) arrive complete with TC=0;
- 20 concurrent connections, each with a query, are all answered;
- an idle connection does not stop other clients from being served; a client closing in the
  middle of a message does not hurt the server.
"""

import socket
import struct
import time

from zjtest import expect, read_tcp_msg, recv_exact, parse, zone_rrset_lines

COM = "example.com."


def frame(msg):
    w = msg.to_wire()
    return struct.pack("!H", len(w)) + w


def test_length_prefix_matches(client):
    q = client.make("web.example.com.", "A")
    s = client.connect()
    try:
        s.sendall(frame(q))
        hdr = recv_exact(s, 2)
        (n,) = struct.unpack("!H", hdr)
        body = recv_exact(s, n)
        assert body is not None and len(body) == n
        r = parse(body)
        assert r.id == q.id
        expect(r, rcode="NOERROR", aa=True, answer=zone_rrset_lines(COM, "web.example.com.", "A"))
    finally:
        s.close()


PIPELINE = [
    ("web.example.com.", "A", "NOERROR"),
    ("example.com.", "MX", "NOERROR"),
    ("nope.example.com.", "A", "NXDOMAIN"),
    ("www.example.com.", "A", "NOERROR"),
    ("huge.example.com.", "TXT", "NOERROR"),
    ("example.net.", "SOA", "NOERROR"),
    ("www.example.org.", "A", "REFUSED"),
    ("www.sub.example.com.", "A", "NOERROR"),
    ("foo.wild.example.com.", "A", "NOERROR"),
    ("host1.example.net.", "SSHFP", "NOERROR"),
]


def test_pipelined_queries_one_write(client):
    qs = [client.make(n, t, qid=0x100 + i) for i, (n, t, _) in enumerate(PIPELINE)]
    s = client.connect()
    try:
        s.sendall(b"".join(frame(q) for q in qs))
        got = {}
        for _ in qs:
            w = read_tcp_msg(s)
            assert w is not None, f"connection closed after {len(got)} of {len(qs)} answers"
            r = parse(w)
            got[r.id] = r
    finally:
        s.close()
    assert sorted(got) == [q.id for q in qs]
    for i, (n, t, rcode) in enumerate(PIPELINE):
        r = got[0x100 + i]
        expect(r, rcode=rcode, tc=False)
        assert r.question[0].name.to_text() == n
    expect(got[0x104], answer=zone_rrset_lines(COM, "huge.example.com.", "TXT"))


def test_sequential_queries_one_connection(client):
    s = client.connect()
    try:
        for i in range(20):
            q = client.make("web.example.com." if i % 2 else "example.com.",
                            "A" if i % 2 else "SOA", qid=i)
            s.sendall(frame(q))
            w = read_tcp_msg(s)
            assert w is not None, f"connection closed before answer {i}"
            r = parse(w)
            assert r.id == i
            expect(r, rcode="NOERROR", aa=True)
    finally:
        s.close()


def test_split_writes(client):
    q = client.make("web.example.com.", "A", qid=777)
    f = frame(q)
    s = client.connect()
    try:
        s.sendall(f[:1])
        time.sleep(0.05)
        s.sendall(f[1:2])
        time.sleep(0.05)
        s.sendall(f[2:9])
        time.sleep(0.05)
        s.sendall(f[9:])
        w = read_tcp_msg(s)
        assert w is not None
        r = parse(w)
        assert r.id == 777
        expect(r, rcode="NOERROR", aa=True, answer=zone_rrset_lines(COM, "web.example.com.", "A"))
    finally:
        s.close()


def test_big_answer_complete(client):
    r = client.query("huge.example.com.", "TXT", tcp=True, edns=0)
    expect(r, rcode="NOERROR", aa=True, tc=False,
           answer=zone_rrset_lines(COM, "huge.example.com.", "TXT"))
    assert len(r.wire) > 4096


def test_many_concurrent_connections(client):
    socks = []
    try:
        for i in range(20):
            s = client.connect()
            socks.append(s)
            s.sendall(frame(client.make("web.example.com.", "A", qid=i)))
        for i, s in enumerate(socks):
            w = read_tcp_msg(s)
            assert w is not None, f"connection {i} got no answer"
            assert parse(w).id == i
    finally:
        for s in socks:
            s.close()


def test_idle_connection_does_not_block_others(client):
    idle = client.connect()
    half = client.connect()
    try:
        half.sendall(b"\x00\x40\x12\x34")  # announces 64 octets, sends 2
        for _ in range(3):
            r = client.query("web.example.com.", "A", tcp=True)
            expect(r, rcode="NOERROR")
            r = client.query("web.example.com.", "A", tcp=False)
            expect(r, rcode="NOERROR")
    finally:
        idle.close()
        half.close()


def test_client_closing_mid_message(client):
    for cut in (1, 2, 10):
        s = client.connect()
        s.sendall(frame(client.make("web.example.com.", "A"))[:cut])
        s.close()
    # and a client that sends a query, then resets before reading the answer
    s = client.connect()
    s.sendall(frame(client.make("huge.example.com.", "TXT")))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
    client.alive_check(tcp=True)
    client.alive_check(tcp=False)
