"""CHAOS-class server identification (RFC 4892), over UDP and TCP, both backends.

Checks:
- with --version-string, CH TXT version.bind and version.server answer that string;
- with --identity, CH TXT id.server and hostname.bind answer that string;
- each answer is one CH TXT record owned by the query name, NOERROR, ID copied;
- without those options (bare_server) the same queries are REFUSED with no answer;
- other CH names are not answered with data (REFUSED or NXDOMAIN).
"""

import dns.rdataclass
import dns.rdatatype
import pytest

from zjtest import expect, IDENTITY, VERSION

NAMES = {"version.bind.": VERSION, "version.server.": VERSION,
         "id.server.": IDENTITY, "hostname.bind.": IDENTITY}


@pytest.mark.parametrize("name", list(NAMES))
def test_chaos_configured(query, tcp, name):
    r = query(name, "TXT", rdclass="CH", tcp=tcp)
    expect(r, rcode="NOERROR")
    assert len(r.answer) == 1, r
    rrset = r.answer[0]
    assert rrset.rdclass == dns.rdataclass.CH and rrset.rdtype == dns.rdatatype.TXT
    assert rrset.name.to_text().lower() == name
    assert [b"".join(rd.strings) for rd in rrset] == [NAMES[name].encode()]


@pytest.mark.parametrize("name", ["VERSION.BIND.", "Id.Server."])
def test_chaos_case_insensitive(query, name):
    r = query(name, "TXT", rdclass="CH")
    expect(r, rcode="NOERROR")
    assert r.answer and r.answer[0].name.to_text() == name


@pytest.mark.parametrize("name", list(NAMES))
def test_chaos_unconfigured_refused(bare_client, tcp, name):
    r = bare_client.query(name, "TXT", rdclass="CH", tcp=tcp)
    expect(r, rcode="REFUSED", answer=[])


@pytest.mark.parametrize("name", ["foo.bind.", "authors.bind.", "example.com."])
def test_chaos_other_names_not_answered(query, tcp, name):
    r = query(name, "TXT", rdclass="CH", tcp=tcp)
    assert r.rcode() in (5, 3), f"rcode {r.rcode()} for CH TXT {name}"
    assert not r.answer
