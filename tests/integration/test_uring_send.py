"""The io_uring backend's second UDP send path: `--uring-send sendmmsg` (one sendmmsg per batch
instead of one sendmsg SQE per reply). The whole suite runs on the default path; this file
checks that the other one answers the same, under a burst, with truncation, beside TCP.

Checks:
- answers equal the zone's data over UDP and TCP;
- a burst of 1,000 queries sent back to back from one socket is answered completely, each
  reply matching its query's ID and name (replies of one batch leave in one sendmmsg);
- an answer too big for 512 bytes comes back truncated (TC) and complete over TCP;
- a bad value is refused at start-up with a reason.
"""

import select
import socket
import subprocess

import dns.message
import pytest

import zjtest
from zjtest import ZJServer, expect, zone_rrset_lines

COM = "example.com."


@pytest.fixture(scope="module")
def srv(workdir, image):
    s = ZJServer(["--image", image, "--workers", "1", "--uring-send", "sendmmsg"], workdir,
                 backend="uring", name="uring-sendmmsg")
    try:
        s.start()
    except zjtest.ServerUnavailable as e:
        pytest.skip(str(e))
    # the worker says which send path it took: without this the tests below would pass on the
    # default path too
    assert "io_uring (sendmmsg sends)" in s.log(), s.log_tail()
    yield s
    assert s.stop(check=False) == 0


@pytest.mark.parametrize("tcp", [False, True])
def test_answers_match_zone(srv, tcp):
    c = srv.client()
    for name in ("web.example.com.", "example.com."):
        r = c.query(name, "A", tcp=tcp)
        expect(r, rcode="NOERROR", aa=True, answer=zone_rrset_lines(COM, name, "A"))


def test_burst_all_answered(srv):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.connect(("127.0.0.1", srv.port))
    sent = {}
    names = ["web.example.com.", "example.com.", "nope.example.com.", "mail.example.com."]
    for i in range(1000):
        q = dns.message.make_query(names[i % len(names)], "A")
        q.id = i
        sent[i] = names[i % len(names)]
        s.send(q.to_wire())
    got = {}
    while len(got) < len(sent):
        ready, _, _ = select.select([s], [], [], 5.0)
        if not ready:
            break
        r = dns.message.from_wire(s.recv(4096))
        got[r.id] = r.question[0].name.to_text()
    s.close()
    assert len(got) == len(sent), f"{len(sent) - len(got)} of {len(sent)} queries unanswered"
    assert all(got[i] == sent[i] for i in sent)


def test_truncation_then_tcp(srv):
    c = srv.client()
    r = c.query("huge.example.com.", "TXT")
    expect(r, tc=True)
    r = c.query("huge.example.com.", "TXT", tcp=True)
    expect(r, rcode="NOERROR", tc=False,
           answer=zone_rrset_lines(COM, "huge.example.com.", "TXT"))


def test_bad_value_refused():
    p = subprocess.run([str(zjtest.ZONEJETD), "--uring-send", "sometimes"], capture_output=True,
                       text=True, timeout=10)
    assert p.returncode != 0
    assert "uring-send must be sqe or sendmmsg" in p.stderr
