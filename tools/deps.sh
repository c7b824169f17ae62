#!/usr/bin/env bash
# Install what zonejet needs to build, test and benchmark, from Debian's packages only.
# Idempotent: does nothing (no apt-get update) when every package is already installed.
set -euo pipefail

pkgs=(
    build-essential cmake pkg-config clang libclang-rt-14-dev clang-format cppcheck git
    libfuzzer-14-dev  # libFuzzer for the fuzz targets (tests/fuzz)
    liburing-dev      # io_uring: the primary network backend
    libxxhash-dev     # XXH3: image checksum and the name-index hash
    libjemalloc-dev   # allocator for the compiler and control plane
    libmaxminddb-dev  # reads GeoLite2/DB-IP databases for geolocation policies
    libssl-dev        # TLS for HTTPS health checks
    libcmocka-dev     # unit tests
    libbenchmark-dev  # bench/ micro benchmarks
    python3-dnspython python3-pytest  # integration tests
    libmaxmind-db-writer-perl         # writes the small .mmdb files the geo tests use
    knot nsd knot-dnsutils            # differential tests (knotd, nsd) and kdig
    dnsperf           # load benchmarks
)

missing=()
for p in "${pkgs[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done
if [ "${#missing[@]}" -eq 0 ]; then
    exit 0
fi
echo "deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
