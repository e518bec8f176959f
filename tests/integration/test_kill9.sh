#!/usr/bin/env bash
# test_kill9.sh — crash safety: N events on a 3-partition topic; cdcpipe (long-running, batches of
# 200 rows) is killed with SIGKILL at >= 10 random points (0.2–1.5 s after each start: while it
# joins the group, processes, inserts or commits) and restarted in the same group each time; a
# final --once run finishes the stream. After every kill, everything below the offsets it logged
# as committed is in ClickHouse; at the end no event is missing and none is there twice (the
# insert ledger, on by default, keeps re-read events from being inserted again).
#
# Each event costs FAULTS_BUSY_US of Lua CPU time (faults_kill9.lua), so the stream lasts longer
# than the kills and they land in the middle of it. The members use static membership
# (group.instance.id): a restarted member takes the killed one's place at once, instead of the
# group waiting for the dead member's session (45 s) to expire before every restart.
. "$(dirname "$0")/lib.sh"

N=5000
KILLS=12
TOPIC="kill9_$ID"
GROUP="g_$ID"
PIPELINE="$SRC/tests/integration/faults_kill9.lua"
export FAULTS_BUSY_US=1500
ch_db_create
topic_create "$TOPIC" 3
produce_creates "$TOPIC" "$N"

pid=
trap '[[ -n $pid ]] && kill -9 "$pid" 2>/dev/null; true' EXIT
cdcpipe_args=(-b "$KAFKA_BROKERS" -t "$TOPIC" -g "$GROUP" -X "group.instance.id=kill9-$ID"
  --clickhouse "$CLICKHOUSE_URL" --database "$DB" --table events --batch-rows 200 --batch-ms 500)

# committed_rows_present LOG: for each partition, the highest offset LOG says was committed (X):
# offsets 0..X-1 of that partition are all in ClickHouse. Prints a line per partition.
committed_rows_present() {
  local p x have
  sed -n "s/.* committed $TOPIC \[\([0-9]*\)\] at \([0-9]*\)$/\1 \2/p" "$@" |
    sort -k1,1n -k2,2n | awk '{ max[$1] = $2 } END { for (p in max) print p, max[p] }' |
    while read -r p x; do
      have=$(ch "SELECT uniqExact(off) FROM $DB.events WHERE p = $p AND off < $x")
      echo "[$p] committed $x, present $have"
      [[ $have == "$x" ]] || return 1
    done
}

rows_before=0
progress=0
for ((k = 1; k <= KILLS; k++)); do
  "$BIN" -v "${cdcpipe_args[@]}" "$PIPELINE" 2>"$RUN/run$k.log" &
  pid=$!
  delay=$(awk -v r="$RANDOM" 'BEGIN { printf "%.2f", 0.2 + 1.3 * r / 32767 }')
  sleep "$delay" # the kill point: this is the fault being injected, not a synchronisation
  kill -0 "$pid" 2>/dev/null || fail "run $k: cdcpipe exited before the kill: $(tail -5 "$RUN/run$k.log")"
  kill -9 "$pid"
  rc=0
  wait "$pid" || rc=$?
  pid=
  [[ $rc == 137 ]] || fail "run $k: expected death by SIGKILL (137), got $rc"
  rows=$(ch "SELECT count() FROM $DB.events")
  ((rows > rows_before)) && progress=$((progress + 1))
  check=$(committed_rows_present "$RUN"/run*.log) ||
    fail "run $k: an offset was committed before its rows were in ClickHouse: $check"
  pass "kill -9 #$k after ${delay} s: $rows rows so far; committed offsets all backed by rows (${check//$'\n'/; })"
  rows_before=$rows
done
((progress >= 3)) || fail "the killed runs inserted rows only $progress times: the kills missed the stream"
pass "rows were inserted between $progress of the $KILLS kills"

rc=0
"$BIN" --once "${cdcpipe_args[@]}" "$PIPELINE" 2>"$RUN/once.log" || rc=$?
assert_eq "the final --once run exits 0" 0 "$rc"
summary=$(grep '^cdcpipe: consumed=' "$RUN/once.log") || fail "no --once summary: $(tail -5 "$RUN/once.log")"
remaining=${summary#cdcpipe: consumed=}
remaining=${remaining%% *}
((remaining < N)) || fail "the final run consumed all $N events: the killed runs committed nothing"
pass "the killed runs committed progress: the final run consumed $remaining of $N"

assert_eq "no event missing: every id in ClickHouse" "$N" "$(ch "SELECT uniqExact(id) FROM $DB.events")"
assert_eq "no offset missing" "$N" "$(ch "SELECT uniqExact(p, off) FROM $DB.events")"
total=$(ch "SELECT count() FROM $DB.events")
# re-read after a kill, but never inserted twice: the insert ledger (on by default)
assert_eq "no duplicate row after the kills (insert ledger): $total rows" 0 "$((total - N))"
ch "DROP DATABASE $DB" >/dev/null
finish
