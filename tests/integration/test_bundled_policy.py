"""The bundled zones/ directory as tools/quickstart.sh serves it (`zonejetd --zones zones`):
example.org's policy file (zones/example.org.policy) is read beside its zone file and answers as
the README shows.

Checks:
- shop.example.org A (weighted 3:1) answers only its two addresses, both seen, about 3:1;
- office.example.org A (cidr) gives the "lab" address to ECS 10.1.2.0/24 with scope 8, and the
  default address to the packet source 127.0.0.1 (no ECS);
- pool.example.org A (multivalue, 3 sets) answers all three addresses;
- cdn.example.org A (geo) without --geoip answers the default set;
- the plain zones keep answering (mail.example.com A).
"""

import collections

import pytest

import zjtest
from zjtest import ZJServer, ecs, ecs_reply

ORG = "example.org."


@pytest.fixture(scope="module")
def srv(workdir):
    s = ZJServer(["--zones", str(zjtest.ZONES_DIR), "--workers", "1", "--seed", "7"], workdir,
                 name="bundled", ready_name=ORG)
    s.start()
    yield s
    assert s.stop(check=False) == 0


def addrs(resp):
    return sorted(rd.address for rrset in resp.answer for rd in rrset)


def test_weighted_shop(srv):
    c = srv.client()
    seen = collections.Counter()
    for _ in range(400):
        r = c.query("shop." + ORG, "A")
        a = addrs(r)
        assert len(a) == 1
        seen[a[0]] += 1
    assert set(seen) == {"192.0.2.10", "192.0.2.11"}
    # 3:1 over 400 draws: 300 expected, sigma 8.7; 4.5 sigma either side
    assert 261 <= seen["192.0.2.10"] <= 339, seen


def test_cidr_office(srv):
    c = srv.client()
    r = c.query("office." + ORG, "A", edns=0, options=[ecs("10.1.2.0/24")])
    assert addrs(r) == ["10.0.0.5"]
    assert ecs_reply(r)[2] == 8
    r = c.query("office." + ORG, "A")
    assert addrs(r) == ["192.0.2.40"]


@pytest.mark.parametrize("tcp", [False, True])
def test_multivalue_pool(srv, tcp):
    r = srv.client().query("pool." + ORG, "A", tcp=tcp)
    assert addrs(r) == ["192.0.2.61", "192.0.2.62", "192.0.2.63"]


def test_geo_without_database_answers_default(srv):
    assert addrs(srv.client().query("cdn." + ORG, "A")) == ["192.0.2.31"]


def test_plain_zones_unchanged(srv):
    assert addrs(srv.client().query("mail.example.com.", "A")) == ["192.0.2.25"]
