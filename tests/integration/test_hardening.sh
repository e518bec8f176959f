#!/usr/bin/env bash
# test_hardening.sh — the built binary carries the hardening CMakeLists.txt asks for: a
# position-independent executable, full RELRO (a read-only GOT bound at start: BIND_NOW and a
# GNU_RELRO segment), stack canaries (-fstack-protector-strong: __stack_chk_fail is imported) and,
# in an optimized build without sanitizers, _FORTIFY_SOURCE=2 (checked __*_chk functions are
# imported). Reads the binary only: no services needed, so it does not source lib.sh.
set -euo pipefail

BIN=${CDCPIPE_BIN:?CDCPIPE_BIN not set: run the tests through ctest (scripts/test.sh)}
CACHE="$(dirname "$BIN")/CMakeCache.txt"
passed=0
fail() {
  echo "FAIL: $*" >&2
  exit 1
}
pass() {
  echo "ok - $*"
  passed=$((passed + 1))
}
[[ -f $CACHE ]] || fail "no CMakeCache.txt beside $BIN"
build_type=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$CACHE")
sanitize=$(sed -n 's/^CDCPIPE_SANITIZE:[A-Z]*=//p' "$CACHE")

header=$(readelf -hW "$BIN")
dynamic=$(readelf -dW "$BIN")
segments=$(readelf -lW "$BIN")
imports=$(nm -D --undefined-only "$BIN")

[[ $header == *"DYN (Position-Independent Executable file)"* ]] ||
  fail "not a position-independent executable: $(grep Type <<<"$header")"
pass "position-independent executable"
[[ $dynamic == *BIND_NOW* && $segments == *GNU_RELRO* ]] ||
  fail "no full RELRO (GNU_RELRO segment and BIND_NOW): $(grep -i flags <<<"$dynamic")"
pass "full RELRO"
grep -q ' __stack_chk_fail' <<<"$imports" || fail "no stack protector (__stack_chk_fail not imported)"
pass "stack protector"
case "$build_type:$sanitize" in
Release:OFF | RelWithDebInfo:OFF | MinSizeRel:OFF)
  n=$(grep -c ' __[a-z_]*_chk@' <<<"$imports" || true)
  ((n > 0)) || fail "optimized build without _FORTIFY_SOURCE: no __*_chk function imported"
  pass "_FORTIFY_SOURCE=2 ($n checked functions)"
  ;;
*) echo "ok - _FORTIFY_SOURCE not expected in a $build_type build (sanitize=$sanitize)" ;;
esac
echo "test_hardening: $passed passed, 0 failed"
