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
# wait_for DESCRIPTION SECONDS CMD..., finish (prints "N passed, 0 failed"), and a private
# ClickHouse that a test may stop and restart: ch_private_start/stop/restart/cleanup (at the end).
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
  grep -v -e '^CDCPIPE_BIN$' -e '^CDCPIPE_SOURCE_DIR$' -e '^CDCPIPE_TEST_RUN_DIR$' -e '^CDCPIPE_SERVICES_ENV$' \
    -e '^CDCPIPE_TEST_WORKERS$')
# The fault tests run with 1 and with 4 partition workers (tests/CMakeLists.txt); WORKERS is the
# count (empty: cdcpipe's default, one per CPU).
WORKERS=${CDCPIPE_TEST_WORKERS:-}
[[ -n $WORKERS ]] && export CDCPIPE_WORKERS=$WORKERS

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
produce_creates() { # TOPIC N: "c" events {"id": i} for i = 1..N, keyed by id, into TOPIC
  local i
  for ((i = 1; i <= $2; i++)); do
    printf '{"id":%d}\t{"op":"c","after":{"id":%d}}\n' "$i" "$i"
  done >"$RUN/events.tsv"
  produce "$1" "$RUN/events.tsv"
}
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

# ---- A private ClickHouse, for tests that stop and restart the server (the shared one stays up).
# ch_private_start DIR: starts a ClickHouse of the test's own with scripts/services.sh in DIR
#   (under $RUN); from then on `ch` and $CLICKHOUSE_URL point at it, $CH_PORT is its HTTP port.
#   The test's EXIT trap should call ch_private_cleanup.
# ch_private_stop: stops it for real (SIGTERM; waits until the process is gone and its port is
#   closed), remembering its command line and working directory; $CH_PID is the stopped pid.
# ch_private_restart: starts it again with the same binary, arguments, working directory, config
#   and data, and waits until it answers.
# ch_port_closed / ch_answers / ch_exited: the port accepts no connection / the server answers
#   SELECT 1 / the process $CH_PID is gone (or a zombie).
# ch_private_cleanup: stops whatever runs in DIR (services.sh stop), never fails.
CH_DIR='' CH_PORT='' CH_PID='' CH_CWD=''
CH_CMD=()
ch_private_start() {
  CH_DIR=$1
  "$SRC/scripts/services.sh" start "$CH_DIR" clickhouse 2>"$RUN/ch-start.log" ||
    fail "cannot start a private ClickHouse: $(cat "$RUN/ch-start.log")"
  CLICKHOUSE_URL=$(sed -n 's/^CLICKHOUSE_URL=//p' "$CH_DIR/services.env")
  CH_PORT=$(sed -n 's/^CLICKHOUSE_HTTP_PORT=//p' "$CH_DIR/services.env")
  [[ -n $CLICKHOUSE_URL && -n $CH_PORT ]] || fail "no ClickHouse address in $CH_DIR/services.env"
}
ch_port_closed() { ! (: <>"/dev/tcp/127.0.0.1/$CH_PORT") 2>/dev/null; }
ch_answers() { [[ $(curl -sf --max-time 2 "$CLICKHOUSE_URL/?query=SELECT%201" 2>/dev/null) == 1 ]]; }
ch_exited() { [[ ! -e /proc/$CH_PID ]] || [[ $(awk '{print $3}' "/proc/$CH_PID/stat" 2>/dev/null) == Z ]]; }
ch_private_stop() {
  CH_PID=$(cat "$CH_DIR/pids/clickhouse.pid")
  mapfile -d '' CH_CMD <"/proc/$CH_PID/cmdline"
  CH_CWD=$(readlink "/proc/$CH_PID/cwd")
  [[ ${CH_CMD[*]} == *"--config-file=$CH_DIR/clickhouse/config.xml"* ]] ||
    fail "unexpected ClickHouse command line: ${CH_CMD[*]}"
  kill -TERM "$CH_PID"
  # On SIGTERM, 18.16 keeps serving busy keep-alive connections for a while before it exits.
  wait_for "ClickHouse to exit" 60 ch_exited
  wait_for "ClickHouse's port to close" 10 ch_port_closed
}
ch_private_restart() {
  ((${#CH_CMD[@]})) || fail "ch_private_restart without ch_private_stop"
  (cd "$CH_CWD" && exec "${CH_CMD[@]}") </dev/null >>"$CH_DIR/logs/clickhouse.stdout.log" 2>&1 &
  echo $! >"$CH_DIR/pids/clickhouse.pid" # so that services.sh stop stops it
  wait_for "ClickHouse to come back" 60 ch_answers
}
ch_private_cleanup() {
  [[ -z $CH_DIR ]] || "$SRC/scripts/services.sh" stop "$CH_DIR" >/dev/null 2>&1
  true
}
