#!/usr/bin/env bash
# scripts/test.sh — the whole test suite, from a fresh Debian 12 machine to a verdict:
#   1. installs missing Debian packages (scripts/deps.sh),
#   2. builds twice with -Werror: normal (build/) and AddressSanitizer+UBSan (build-asan/),
#   3. starts the real services on free loopback ports in build/test-services/
#      (ClickHouse, PostgreSQL, Apache Kafka, Kafka Connect with Debezium; the JVM stack is
#      fetched from Maven Central once and cached),
#   4. runs every test through ctest for both builds (unit, then integration),
#   5. stops the services, also on failure or Ctrl-C,
#   6. builds the libFuzzer targets with clang (build-fuzz/) and runs each for a bounded time
#      (ctest -L fuzz; tests/fuzz/CMakeLists.txt).
# Usage: scripts/test.sh [-R REGEX]   (extra arguments go to ctest, e.g. -R cli)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
JOBS=$(nproc 2>/dev/null || echo 2)

"$ROOT/scripts/deps.sh"

cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCDCPIPE_WERROR=ON >/dev/null
cmake --build build -j"$JOBS"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DCDCPIPE_SANITIZE=ON -DCDCPIPE_WERROR=ON >/dev/null
cmake --build build-asan -j"$JOBS"
CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCDCPIPE_FUZZ=ON \
  -DCDCPIPE_SANITIZE=ON -DCDCPIPE_WERROR=ON >/dev/null
cmake --build build-fuzz -j"$JOBS" --target fuzz_targets

SERVICES=$ROOT/build/test-services
"$ROOT/scripts/services.sh" stop "$SERVICES" >/dev/null 2>&1 || true
rm -rf "$SERVICES"
trap '"$ROOT/scripts/services.sh" stop "$SERVICES"' EXIT
"$ROOT/scripts/services.sh" start "$SERVICES" clickhouse postgres kafka connect
export CDCPIPE_SERVICES_ENV=$SERVICES/services.env

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
status=0
echo "== tests: normal build"
ctest --test-dir build --output-on-failure "$@" || status=1
echo "== tests: AddressSanitizer + UndefinedBehaviorSanitizer build"
ctest --test-dir build-asan --output-on-failure "$@" || status=1
echo "== fuzz: libFuzzer targets (clang, ASan + UBSan)"
ctest --test-dir build-fuzz -L fuzz --output-on-failure "$@" || status=1
exit $status
