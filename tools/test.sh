#!/usr/bin/env bash
# The whole test suite, as CI runs it: formatting and cppcheck, a warnings-as-errors gcc build
# with unit, fuzz-replay and integration tests, the same suite built with clang under
# AddressSanitizer + UndefinedBehaviorSanitizer, and the epoch-swap, hot-swap and health-check
# tests under ThreadSanitizer.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/deps.sh
jobs=$(nproc)

echo "== clang-format"
git ls-files '*.c' '*.h' '*.cc' | xargs -r clang-format --dry-run -Werror

echo "== cppcheck"
cppcheck --quiet --error-exitcode=1 --std=c11 -D_GNU_SOURCE -Iinclude -Isrc \
    --suppress=missingIncludeSystem --inline-suppr src tools

echo "== gcc, RelWithDebInfo, -Werror"
cmake -S . -B build-ci -DCMAKE_BUILD_TYPE=RelWithDebInfo -DZJ_WERROR=ON >/dev/null
cmake --build build-ci -j"$jobs"
(cd build-ci && ctest --output-on-failure -j1)

echo "== clang, ASan + UBSan"
CC=clang CXX=clang++ cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DZJ_WERROR=ON \
    -DZJ_SANITIZE=address,undefined >/dev/null
cmake --build build-asan -j"$jobs"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
(cd build-asan && ctest --output-on-failure -j1)

echo "== clang, TSan: epoch publication, hot swap under load, health checks"
CC=clang CXX=clang++ cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=Debug -DZJ_WERROR=ON \
    -DZJ_SANITIZE=thread >/dev/null
cmake --build build-tsan -j"$jobs" --target test_swap test_health zonejetd zonejet-compile \
    zonejet-ctl
export TSAN_OPTIONS=halt_on_error=1
build-tsan/tests/test_swap
(cd tests/unit && ../../build-tsan/tests/test_health)
ZJ_BUILD_DIR="$PWD/build-tsan" /usr/bin/python3 -m pytest -q -p no:cacheprovider \
    tests/integration/test_hotswap.py tests/integration/test_policy_health.py
