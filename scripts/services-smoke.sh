#!/usr/bin/env bash
# scripts/services-smoke.sh — end-to-end check of scripts/services.sh with the real services:
# starts ClickHouse, PostgreSQL, Kafka and Kafka Connect in a fresh RUN_DIR, checks ClickHouse
# (default and tester/secret users), creates public.my_table, registers Debezium, inserts,
# updates and deletes rows, waits for the Debezium events on pgserver.public.my_table with kcat,
# checks a kcat consumer group (librdkafka) consume + commit + resume, a timestamp lookup and
# headers, creates a 3-partition topic, prints JVM RSS, and stops everything.
#
# Usage: scripts/services-smoke.sh [RUN_DIR]     (default: a new temp dir, removed on success)
# Exit 0 and a final "services smoke: N passed, 0 failed" line when all checks pass.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SVC="$SCRIPT_DIR/services.sh"
RUN_DIR=${1:-$(mktemp -d "${TMPDIR:-/tmp}/cdcpipe-smoke.XXXXXX")}
passed=0
failed=0

ok() { echo "ok   - $*"; passed=$((passed + 1)); }
bad() { echo "FAIL - $*"; failed=$((failed + 1)); }
check() { # DESCRIPTION CMD...
  local what=$1
  shift
  if "$@"; then ok "$what"; else bad "$what"; fi
}

cleanup() { "$SVC" stop "$RUN_DIR" || true; }
trap cleanup EXIT

t0=$(date +%s.%N)
"$SVC" start "$RUN_DIR" clickhouse connect
echo "# all four services up in $(python3 -c "print(round($(date +%s.%N) - $t0, 1))") s"
set -a
# shellcheck disable=SC1091
. "$RUN_DIR/services.env"
set +a

# ---- ClickHouse
check "clickhouse SELECT 1 (default user)" \
  test "$(curl -sf "$CLICKHOUSE_URL/?query=SELECT%201")" = 1
check "clickhouse user tester/secret" \
  test "$(curl -sf -u tester:secret "$CLICKHOUSE_URL/?query=SELECT%202")" = 2
check "clickhouse rejects a wrong password" \
  bash -c "! curl -sf -u tester:wrong '$CLICKHOUSE_URL/?query=SELECT%201' >/dev/null"

# ---- PostgreSQL + Debezium
psql_() { PGPASSWORD=$PG_PASSWORD psql -X -q -v ON_ERROR_STOP=1 -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d "$PG_DB" -Atc "$1"; }
check "postgres wal_level=logical" test "$(psql_ 'SHOW wal_level')" = logical
psql_ "CREATE TABLE public.my_table (id int PRIMARY KEY, name text, created_at timestamp);
       INSERT INTO public.my_table VALUES (1, 'snapshot row', '2024-01-02 03:04:05.123456');"
t1=$(date +%s.%N)
"$SVC" register-debezium "$RUN_DIR"
echo "# debezium RUNNING $(python3 -c "print(round($(date +%s.%N) - $t1, 1))") s after POST"
psql_ "INSERT INTO public.my_table VALUES (2, 'two', now());
       UPDATE public.my_table SET name = 'TWO' WHERE id = 2;
       DELETE FROM public.my_table WHERE id = 1;"
# r(1) c(2) u(2) d(1) + tombstone(1) = 5 records
events=$(timeout 60 kcat -b "$KAFKA_BROKERS" -C -t pgserver.public.my_table -o beginning -c 5 -Z -f '%s\n' 2>/dev/null || true)
ops=$(python3 -c '
import json, sys
out = []
for line in sys.stdin.read().splitlines():
    out.append("tombstone" if line == "NULL" else json.loads(line)["payload"]["op"])
print(" ".join(out))' <<<"$events")
check "debezium events r c u d tombstone (got: $ops)" test "$ops" = "r c u d tombstone"
check "replication slot debezium_slot active" \
  test "$(psql_ "SELECT active FROM pg_replication_slots WHERE slot_name = 'debezium_slot'")" = t

# ---- Kafka via kcat / librdkafka 2.0.2
B=$KAFKA_BROKERS
printf 'k1:v1\nk2:v2\n' | kcat -b "$B" -P -t smoke -K: -H src=smoke
sleep 0.01
ts=$(date +%s%3N)
printf 'k3:v3\n' | kcat -b "$B" -P -t smoke -K: -H src=smoke
check "headers round-trip" \
  test "$(kcat -b "$B" -C -t smoke -o beginning -c 1 -f '%h' 2>/dev/null)" = src=smoke
check "timestamp lookup -o s@<ms>" \
  test "$(kcat -b "$B" -C -t smoke -o "s@$ts" -c 1 -f '%k' 2>/dev/null)" = k3
group() { timeout 60 kcat -b "$B" -G smoke-group -X auto.offset.reset=earliest -e -f '%k ' smoke 2>/dev/null; }
check "group consume from earliest" test "$(group)" = "k1 k2 k3 "
printf 'k4:v4\n' | kcat -b "$B" -P -t smoke -K:
check "group resumes from the committed offset" test "$(group)" = "k4 "
"$SVC" topic "$RUN_DIR" smoke3 3
check "topic with 3 partitions" \
  bash -c "kcat -b '$B' -L -t smoke3 2>/dev/null | grep -q 'with 3 partitions'"

# ---- memory
for s in clickhouse postgres kafka connect; do
  pid=$(cat "$RUN_DIR/pids/$s.pid")
  echo "# $s pid $pid RSS $(awk '/VmRSS/ {printf "%d MiB", $2 / 1024}' "/proc/$pid/status")"
done

t2=$(date +%s.%N)
trap - EXIT
"$SVC" stop "$RUN_DIR"
echo "# stop took $(python3 -c "print(round($(date +%s.%N) - $t2, 1))") s"
leftovers() { # processes whose command line mentions RUN_DIR (the scanner gets it via env;
  # this script and its subshells are skipped: they carry RUN_DIR as an argument)
  SMOKE_RUN_DIR=$RUN_DIR python3 -c '
import os
d = os.environ["SMOKE_RUN_DIR"].encode()
for p in filter(str.isdigit, os.listdir("/proc")):
    try:
        cmd = open(f"/proc/{p}/cmdline", "rb").read()
        if d in cmd and b"services-smoke.sh" not in cmd: print(p)
    except OSError:
        pass'
}
check "nothing left running" test -z "$(leftovers)"
[[ $# -eq 0 && $failed -eq 0 ]] && rm -rf "$RUN_DIR"
echo "services smoke: $passed passed, $failed failed"
((failed == 0))
