"""Stand-alone differential run against a running zonejetd:

    cd tests/integration && python3 -m differential --port 5353 [--verbose]

Starts knotd and nsd with the bundled zones in a temporary directory, sends the corpus to all
three, prints the summary line, the knot/nsd disagreements (with -v) and every mismatch.
Exit status 1 if zonejet matched neither reference on some case.
"""

import argparse
import sys
import tempfile

from differential import compare, corpus, refservers
from zjtest import BUNDLED


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True, help="zonejetd's port on 127.0.0.1")
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args()
    missing = refservers.available()
    if missing:
        print(f"missing reference servers: {missing}", file=sys.stderr)
        return 2
    cases = corpus.build(BUNDLED)
    with tempfile.TemporaryDirectory() as d:
        knot = refservers.Knot(BUNDLED, d).start()
        nsd = refservers.Nsd(BUNDLED, d).start()
        try:
            kr = compare.run_corpus(knot.port, cases)
            nr = compare.run_corpus(nsd.port, cases)
        finally:
            knot.stop()
            nsd.stop()
    zr = compare.run_corpus(a.port, cases)
    out = compare.compare_all(cases, zr, kr, nr)
    if a.verbose:
        print(out.disagreement_report())
    if out.mismatches:
        print(out.mismatch_report(limit=10**6))
    print(out.summary(f"port {a.port}"))
    return 1 if out.mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
