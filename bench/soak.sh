#!/usr/bin/env bash
# Bounded soak: zonejetd under dnsperf at full load with hostile packets mixed in and, when the
# build supports `zonejet-ctl reload`, an image reload every second. Stops by itself after
# --minutes (default 10) and reports queries sent/completed/lost, VmRSS at start and end,
# liveness, crashes (must be 0) and the exit code on SIGTERM (must be 0). Exit status 0 = PASS.
# Details: the docstring of bench/soak.py. Needs dnsperf, taskset, python3-dnspython.
# usage: bench/soak.sh [--minutes N] [--build DIR] [--io auto|uring|mmsg]
#                      [--server-cpu N] [--load-cpu N] [--hostile-pps N] [--keep]
#   e.g. bench/soak.sh --minutes 1 --build build-test     (a one-minute smoke run)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
exec /usr/bin/python3 "$here/soak.py" "$@"
