"""Differential conformance: zonejetd against Knot DNS (knotd 3.2) and NSD (4.6) on loopback.

The three servers serve the bundled zones (zones/*.zone). The corpus (differential/corpus.py)
has several hundred queries built from the zone files: every owner and empty non-terminal x
A AAAA NS SOA MX TXT CNAME SRV CAA DS DNAME + one random type + ANY (TCP only), missing names,
names under wildcards, delegations and DNAMEs, names outside the zones, 0x20 mixed case, with
and without EDNS/DO, over UDP and TCP, and a handful of malformed packets.

For each case zonejet must equal Knot or NSD: rcode, flags AA TC RD RA, OPT presence, answer and
authority as rrsets (order-insensitive, TTL included), and zonejet's additional a subset of the
reference's (ANY over TCP: the reference's single RRset must be among zonejet's, see
differential/compare.py). Cases where Knot and NSD disagree record which one zonejet matched. Prints
"N cases, N match knot, N match nsd, N match both, N mismatch" per backend; fails with a diff
per mismatching case. Skipped only when knotd or nsd is not installed.
"""

import pytest

from differential import compare, corpus, refservers
from zjtest import BUNDLED


@pytest.fixture(scope="session")
def diff_corpus():
    return corpus.build(BUNDLED)


@pytest.fixture(scope="session")
def reference_results(diff_corpus, tmp_path_factory):
    """Knot's and NSD's answers to the corpus, computed once per session."""
    missing = refservers.available()
    if missing:
        pytest.skip(f"reference servers not installed: {', '.join(missing)}")
    d = tmp_path_factory.mktemp("refs")
    knot = refservers.Knot(BUNDLED, d)
    nsd = refservers.Nsd(BUNDLED, d)
    try:
        knot.start()
        nsd.start()
        kr = compare.run_corpus(knot.port, diff_corpus)
        nr = compare.run_corpus(nsd.port, diff_corpus)
    finally:
        knot.stop()
        nsd.stop()
    return kr, nr


def test_differential(client, backend, diff_corpus, reference_results, zj_summaries):
    kr, nr = reference_results
    assert len(diff_corpus) >= 300, f"corpus too small: {len(diff_corpus)}"
    zr = compare.run_corpus(client.port, diff_corpus)
    out = compare.compare_all(diff_corpus, zr, kr, nr)
    line = out.summary(backend)
    zj_summaries.append(line)
    zj_summaries.append(out.disagreement_report().splitlines()[0])
    print(line)
    print(out.disagreement_report())
    assert not out.mismatches, (
        f"{line}\nzonejet matched neither Knot nor NSD on {len(out.mismatches)} cases:\n"
        + out.mismatch_report()
    )
