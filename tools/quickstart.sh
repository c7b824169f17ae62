#!/usr/bin/env bash
# One command for a fresh Debian 12 machine: install what is missing, build, and start zonejetd
# on the bundled zones/ (127.0.0.1:5353 unless arguments say otherwise).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"
exec ./build/zonejetd --zones zones "$@"
