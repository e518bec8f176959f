# tests/integration/lib.sh — shared helpers for the integration tests (sourced, not run).
#
# The tests talk to the real services that scripts/test.sh started; their addresses are in the
# file named by CDCPIPE_SERVICES_ENV (RUN_DIR/services.env of scripts/services.sh). Each test
# works in its own ClickHouse database, its own topics and consumer groups (names carry the
# test name and a random suffix), and its own scratch directory $RUN, so tests never see each
# other's data and never touch anything outside their run directory.
#
# Provides: $BIN $SRC $RUN $DB $ID, ch SQL, ch_db_create, produce TOPIC FILE, topic_create NAME N,
# assert_eq WHAT EXPECTED ACTUAL, assert_contains WHAT NEEDLE HAYSTACK, fail MSG, pass MSG,
# wait_for DESCRIPTION SECONDS CMD..., and finish (prints "N passed, 0 failed").
set -euo pipefail

BIN=${CDCPIPE_BIN:?CDCPIPE_BIN not set: run the tests through ctest (scripts/test.sh)}
SRC=${CDCPIPE_SOURCE_DIR:?CDCPIPE_SOURCE_DIR not set}
RUN=${CDCPIPE_TEST_RUN_DIR:?CDCPIPE_TEST_RUN_DIR not set}
SERVICES_ENV=${CDCPIPE_SERVICES_ENV:-}
if [[ -z $SERVICES_ENV || ! -f $SERVICES_ENV ]]; then
  echo "FAIL: CDCPIPE_SERVICES_ENV does not name a services.env; run scripts/test.sh, which starts" \
    "ClickHouse, Kafka, PostgreSQL and Kafka Connect first" >&2
  exit 1
fi
set -a
# shellcheck disable=SC1090
. "$SERVICES_ENV"
set +a
# Settings in the caller's environment must not leak into what a test checks.
while IFS= read -r name; do unset "$name"; done < <(compgen -e | grep '^CDCPIPE_' |
  grep -v -e '^CDCPIPE_BIN$' -e '^CDCPIPE_SOURCE_DIR$' -e '^CDCPIPE_TEST_RUN_DIR$' -e '^CDCPIPE_SERVICES_ENV$')

rm -rf "$RUN"
mkdir -p "$RUN"
cd "$RUN" # cdcpipe reads ./.env: make sure it is ours
TEST_NAME=$(basename "$0" .sh)
ID="${TEST_NAME#test_}_$$_$RANDOM"
DB="t_$ID"
passed=0

fail() {
  echo "FAIL: $*" >&2
  exit 1
}
pass() {
  echo "ok - $*"
  passed=$((passed + 1))
}
finish() { echo "$TEST_NAME: $passed passed, 0 failed"; }

# ch SQL: runs SQL on ClickHouse (default user), prints the answer (TSV), fails on error.
ch() {
  local out
  if ! out=$(curl -sS --fail-with-body "$CLICKHOUSE_URL/" --data-binary "$1" 2>&1); then
    fail "ClickHouse query failed: $1: $out"
  fi
  printf '%s' "$out"
}
ch_db_create() {
  ch "CREATE DATABASE IF NOT EXISTS $DB" >/dev/null
}

# produce TOPIC FILE: one record per line "KEY<TAB>VALUE"; KEY may be empty (null key);
# VALUE "NULL" (exactly) produces a tombstone.
produce() {
  local topic=$1 file=$2
  python3 - "$topic" "$file" "$KAFKA_BROKERS" <<'PY'
import subprocess, sys
topic, path, brokers = sys.argv[1:4]
plain, tomb = [], []
with open(path, encoding="utf-8") as f:
    lines = [l.rstrip("\n") for l in f if l.strip()]
# Keep order: send runs of normal records with -K, tombstones one by one with -Z.
def send(batch, null_value):
    if not batch: return
    args = ["kcat", "-P", "-b", brokers, "-t", topic, "-K", "\t", "-c", str(len(batch))]
    if null_value: args.append("-Z")
    data = "".join(k + "\t" + ("" if null_value else v) + "\n" for k, v in batch)
    subprocess.run(args, input=data.encode(), check=True)
run, run_is_tomb = [], False
for line in lines:
    key, _, value = line.partition("\t")
    is_tomb = value == "NULL"
    if run and is_tomb != run_is_tomb:
        send(run, run_is_tomb); run = []
    run.append((key, value)); run_is_tomb = is_tomb
send(run, run_is_tomb)
PY
}

# topic_create NAME PARTITIONS
topic_create() {
  "$SRC/scripts/services.sh" topic "$(dirname "$SERVICES_ENV")" "$1" "$2" >/dev/null
}

assert_eq() {
  if [[ "$2" != "$3" ]]; then
    printf 'FAIL: %s\n--- expected\n%s\n--- actual\n%s\n' "$1" "$2" "$3" >&2
    diff <(printf '%s\n' "$2") <(printf '%s\n' "$3") >&2 || true
    exit 1
  fi
  pass "$1"
}

assert_contains() {
  if [[ "$3" != *"$2"* ]]; then
    printf 'FAIL: %s\n--- expected to contain\n%s\n--- actual\n%s\n' "$1" "$2" "$3" >&2
    exit 1
  fi
  pass "$1"
}

assert_not_contains() {
  if [[ "$3" == *"$2"* ]]; then
    printf 'FAIL: %s\n--- must not contain\n%s\n--- actual\n%s\n' "$1" "$2" "$3" >&2
    exit 1
  fi
  pass "$1"
}

# wait_for DESCRIPTION SECONDS CMD...: polls CMD every 0.2 s until it succeeds or time runs out.
wait_for() {
  local what=$1 deadline=$((SECONDS + $2))
  shift 2
  until "$@"; do
    ((SECONDS < deadline)) || fail "timed out after waiting for $what"
    sleep 0.2
  done
}
