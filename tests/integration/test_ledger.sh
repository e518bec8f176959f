#!/usr/bin/env bash
# test_ledger.sh — exactly-once into a plain MergeTree table with the insert ledger (ledger.h):
# - cdcpipe killed (SIGKILL, CDCPIPE_TEST_CRASH) at each named point of a flush and of the DDL,
#   then at random points (start, wait a random short time, kill -9), with 3 partitions and 2
#   workers: no event missing, no row doubled, `cdcpipe verify` exits 0;
# - two members with two workers each, started one after the other (a rebalance), the first
#   killed inside its revoke's flush: no row doubled;
# - verify reports a planted gap (offsets committed forward by hand) and a planted overlap (one
#   batch inserted twice by hand, with a copied ledger row), naming partition, offsets and table;
# - rewind to the start and a replay: verify clean, no row doubled (the replay skips them).
. "$(dirname "$0")/lib.sh"

N=3000
TOPIC="ledger_$ID"
GROUP="g_$ID"
PIPELINE="$SRC/tests/integration/faults_kill9.lua"
export FAULTS_BUSY_US=300
ch_db_create
topic_create "$TOPIC" 3
produce_creates "$TOPIC" "$N"

pid=
trap '[[ -n $pid ]] && kill -9 "$pid" 2>/dev/null; true' EXIT
# static membership: a restarted member takes the killed one's place at once; a short session so
# that the group is empty soon after the last run (rewind and the planted gap need that)
args=(-b "$KAFKA_BROKERS" -t "$TOPIC" -g "$GROUP" -X "group.instance.id=ledger-$ID"
  -X session.timeout.ms=6000 --clickhouse "$CLICKHOUSE_URL" --database "$DB" --table events --batch-rows 100 --batch-ms 200
  --workers 2)

exactly_once() { # WHAT: every event once
  assert_eq "$1: no event missing, none doubled" "$N $N" \
    "$(ch "SELECT uniqExact(p, off), count() FROM $DB.events" | tr '\t' ' ')"
}
verify_clean() { # WHAT
  local rc=0
  "$BIN" verify "${args[@]}" "$PIPELINE" >"$RUN/verify.out" 2>&1 || rc=$?
  assert_eq "$1: cdcpipe verify exits 0 ($(tail -1 "$RUN/verify.out"))" 0 "$rc"
}

# ---- named crash points: each run dies at its point, the next one goes on
for point in in_ddl after_intent after_insert:2 after_done:2 after_commit:2 after_insert:5 \
  after_intent:4 after_done:5; do
  rc=0
  CDCPIPE_TEST_CRASH=$point "$BIN" --once "${args[@]}" "$PIPELINE" 2>"$RUN/crash-$point.log" || rc=$?
  assert_eq "killed at $point (exit 137)" 137 "$rc"
done
rc=0
"$BIN" --once "${args[@]}" "$PIPELINE" 2>"$RUN/final1.log" || rc=$?
assert_eq "the run after the crashes exits 0" 0 "$rc"
grep -h "had landed" "$RUN"/crash-*.log "$RUN/final1.log" | sed 's/^/# /' | head -5
exactly_once "after kills at every named point"
verify_clean "after kills at every named point"

# ---- random kills: more events, each run killed after 0.2-1.2 s
for ((i = N + 1; i <= 2 * N; i++)); do
  printf '{"id":%d}\t{"op":"c","after":{"id":%d}}\n' "$i" "$i"
done >"$RUN/more.tsv"
produce "$TOPIC" "$RUN/more.tsv"
N=$((2 * N))
KILLS=${LEDGER_KILLS:-20}
for ((k = 1; k <= KILLS; k++)); do
  "$BIN" "${args[@]}" "$PIPELINE" 2>"$RUN/kill$k.log" &
  pid=$!
  sleep "$(awk -v r="$RANDOM" 'BEGIN { printf "%.2f", 0.2 + 1.0 * r / 32767 }')" # the fault
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  pid=
done
rc=0
"$BIN" --once "${args[@]}" "$PIPELINE" 2>"$RUN/final2.log" || rc=$?
assert_eq "the run after $KILLS random kills exits 0" 0 "$rc"
exactly_once "after $KILLS random kills"
verify_clean "after $KILLS random kills"

# ---- a rebalance: two members, two workers each; the first is killed inside its revoke
T2="ledger2_$ID"
G2="g2_$ID"
topic_create "$T2" 4
sed 's/"id":\([0-9]*\)/"id":\1/' "$RUN/events.tsv" >"$RUN/t2.tsv"
produce "$T2" "$RUN/t2.tsv"
m=(-b "$KAFKA_BROKERS" -t "$T2" -g "$G2" --clickhouse "$CLICKHOUSE_URL" --database "$DB"
  --table events2 --batch-rows 100 --batch-ms 200 --workers 2 -X session.timeout.ms=6000)
ch "CREATE TABLE $DB.events2 (id UInt32, p UInt16, off UInt64) ENGINE = MergeTree() ORDER BY (p, off)" >/dev/null
FAULTS_BUSY_US=3000 CDCPIPE_TEST_CRASH=in_revoke "$BIN" "${m[@]}" "$PIPELINE" 2>"$RUN/member1.log" &
pid=$!
wait_for "member 1 to insert" 60 bash -c "[[ \$(curl -s '$CLICKHOUSE_URL/' --data-binary 'SELECT count() FROM $DB.events2') -gt 0 ]]"
FAULTS_BUSY_US=3000 "$BIN" "${m[@]}" "$PIPELINE" 2>"$RUN/member2.log" &
pid2=$!
wait_for "member 2 to insert every event" 120 bash -c "[[ \$(curl -s '$CLICKHOUSE_URL/' --data-binary 'SELECT uniqExact(p, off) FROM $DB.events2') == 3000 ]]"
grep -q "SIGKILL at in_revoke" "$RUN/member1.log" && echo "# member 1 was killed inside its revoke's flush"
kill -TERM "$pid2" "$pid" 2>/dev/null || true
wait "$pid2" || true
wait "$pid" || true
pid=
assert_eq "rebalance with a crash in the revoke: every event once" "3000 3000" \
  "$(ch "SELECT uniqExact(p, off), count() FROM $DB.events2" | tr '\t' ' ')"

# ---- planted overlap: partition 0's first done batch inserted again by hand, its ledger row copied
range=$(ch "SELECT first_offset, last_offset FROM $DB.cdcpipe_ledger WHERE consumer_group = '$GROUP' AND partition = 0 AND state = 'done' AND length(rows) > 0 AND rows[1] > 0 ORDER BY first_offset LIMIT 1")
first=${range%%$'\t'*}
last=${range##*$'\t'}
ch "INSERT INTO $DB.events SELECT id, p, off FROM $DB.events WHERE p = 0 AND off BETWEEN $first AND $last" >/dev/null
ch "INSERT INTO $DB.cdcpipe_ledger SELECT time, consumer_group, topic, partition, first_offset, last_offset, state, concat(insert_id, '-copy'), instance, worker, inserted, filtered, dead_lettered, tombstones, skipped, tables, rows FROM $DB.cdcpipe_ledger WHERE consumer_group = '$GROUP' AND partition = 0 AND state = 'done' AND first_offset = $first" >/dev/null
rc=0
"$BIN" verify "${args[@]}" "$PIPELINE" >"$RUN/verify-overlap.out" 2>&1 || rc=$?
assert_eq "verify exits 1 with the planted overlap" 1 "$rc"
assert_contains "verify names the overlap: partition, offsets, table" \
  "OVERLAP $TOPIC [0] offsets $first-$last table events" "$(cat "$RUN/verify-overlap.out")"
assert_contains "... and counts it" "verify: 3 partitions, 0 gaps, 1 overlaps" "$(cat "$RUN/verify-overlap.out")"
# undo it: the ledger's copy goes, the range keeps one copy of its rows
ch "ALTER TABLE $DB.cdcpipe_ledger DELETE WHERE insert_id LIKE '%-copy'" >/dev/null
ch "CREATE TABLE $DB.keep (id UInt32, p UInt16, off UInt64) ENGINE = MergeTree() ORDER BY (p, off)" >/dev/null
ch "INSERT INTO $DB.keep SELECT any(id), p, off FROM $DB.events WHERE p = 0 AND off BETWEEN $first AND $last GROUP BY p, off" >/dev/null
ch "ALTER TABLE $DB.events DELETE WHERE p = 0 AND off BETWEEN $first AND $last" >/dev/null
ch_zero() { [[ $(ch "$1") == 0 ]]; }
wait_for "the mutations" 30 ch_zero "SELECT (SELECT count() FROM $DB.events WHERE p = 0 AND off BETWEEN $first AND $last) + (SELECT count() FROM $DB.cdcpipe_ledger WHERE insert_id LIKE '%-copy')"
ch "INSERT INTO $DB.events SELECT id, p, off FROM $DB.keep" >/dev/null

# ---- planted gap: partition 1 committed 50 events ahead by hand (those events never inserted)
for ((i = N + 1; i <= N + 300; i++)); do
  printf '{"id":%d}\t{"op":"c","after":{"id":%d}}\n' "$i" "$i"
done >"$RUN/gap.tsv"
produce "$TOPIC" "$RUN/gap.tsv"
committed=$(ch "SELECT max(last_offset) + 1 FROM $DB.cdcpipe_ledger WHERE consumer_group = '$GROUP' AND partition = 1 AND state = 'done'")
reset() { "$SRC/scripts/services.sh" reset-offsets "$(dirname "$SERVICES_ENV")" "$GROUP" "$TOPIC" 1 $((committed + 50)) 2>"$RUN/reset.log"; }
wait_for "the group to be empty, and the offsets moved" 60 reset
rc=0
"$BIN" verify "${args[@]}" "$PIPELINE" >"$RUN/verify-gap.out" 2>&1 || rc=$?
assert_eq "verify exits 1 with the planted gap" 1 "$rc"
assert_contains "verify names the gap: partition and offsets" \
  "GAP $TOPIC [1] offsets $committed-$((committed + 49)): 50 events" "$(cat "$RUN/verify-gap.out")"
assert_contains "... and only it (the overlap's rows are still there, its ledger row is gone)" \
  "verify: 3 partitions, 1 gaps, 0 overlaps" "$(cat "$RUN/verify-gap.out")"

# ---- rewind to the start and replay: the gap's events come in, nothing is doubled
rc=0
"$BIN" rewind "${args[@]}" "$PIPELINE" --to -1d >"$RUN/rewind.out" 2>&1 || rc=$?
assert_eq "rewind exits 0 ($(tail -1 "$RUN/rewind.out"))" 0 "$rc"
assert_contains "rewind says what moved" "$TOPIC [1]: committed $((committed + 50)) -> 0" "$(cat "$RUN/rewind.out")"
rc=0
"$BIN" --once "${args[@]}" "$PIPELINE" 2>"$RUN/replay.log" || rc=$?
assert_eq "the replay exits 0" 0 "$rc"
assert_contains "the replay skipped what was in ClickHouse" "skipped=" "$(grep '^cdcpipe: consumed=' "$RUN/replay.log")"
N=$((N + 300))
exactly_once "after rewind and replay"
verify_clean "after rewind and replay"

ch "DROP DATABASE $DB" >/dev/null
finish
