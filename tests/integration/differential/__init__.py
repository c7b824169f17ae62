"""Differential testing: the same zones and queries sent to zonejetd, Knot and NSD.

refservers.py starts knotd and nsd on loopback, corpus.py builds the queries from the zone
files, compare.py sends them and compares the answers. test_differential.py drives it under
pytest; `python3 -m differential --port N` (from tests/integration) runs it against an already
running zonejetd that serves the bundled zones.
"""
