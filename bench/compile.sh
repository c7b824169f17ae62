#!/usr/bin/env bash
# Compiler and image benchmark: a 1,000,000-record zone (70% A, 20% AAAA, 10% TXT).
# Reports compile time and peak memory (median of RUNS), image bytes per record, and the time
# to open and validate the image (median of RUNS).
# usage: bench/compile.sh [BUILD_DIR] [RECORDS] [RUNS]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../build}
n=${2:-1000000}
runs=${3:-3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
/usr/bin/python3 "$here/gen_zone.py" "$n" "$tmp/big.zone"
/usr/bin/python3 - "$build" "$tmp" "$n" "$runs" <<'PY'
import os, re, resource, statistics, subprocess, sys, time
build, tmp, n, runs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
comp = os.path.join(build, "zonejet-compile")
times, rss = [], []
for _ in range(runs):
    img = os.path.join(tmp, "big.img")
    t0 = time.monotonic()
    pid = os.fork()
    if pid == 0:
        os.execv(comp, [comp, "-q", "-o", img, os.path.join(tmp, "big.zone")])
    _, status, ru = os.wait4(pid, 0)
    times.append(time.monotonic() - t0)
    rss.append(ru.ru_maxrss / 1024.0)
    assert os.waitstatus_to_exitcode(status) == 0, "compile failed"
size = os.path.getsize(img)
opens = []
for _ in range(runs):
    out = subprocess.run([comp, "--verify", img], check=True, capture_output=True, text=True).stdout
    opens.append(float(re.search(r"open\+validate ([0-9.]+) ms", out).group(1)))
print(f"records            {n}")
print(f"compile time       {statistics.median(times):.3f} s (median of {runs})")
print(f"compiler peak RSS  {statistics.median(rss):.1f} MiB")
print(f"image size         {size} bytes, {size / n:.1f} bytes/record")
print(f"open+validate      {statistics.median(opens):.2f} ms (median of {runs})")
PY
