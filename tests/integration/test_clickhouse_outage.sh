#!/usr/bin/env bash
# test_clickhouse_outage.sh — ClickHouse goes away for >= 10 s in the middle of a stream and comes
# back. A private ClickHouse (this test stops and restarts it; the shared one stays untouched)
# receives, through faults_outage.lua, every event in a MergeTree `log` and a ReplacingMergeTree
# `latest`, while events are produced continuously and cdcpipe runs long with small batches.
# The server process is really stopped (SIGTERM, process gone, port closed) and restarted with
# the same command line, config and data. The producer's first third goes before the outage, the
# second third while the server is down, the last third after it is back (it waits at those two
# points: on SIGTERM, 18.16 keeps serving busy keep-alive connections for a while before it
# exits, so a purely timed stream could end before the outage begins). cdcpipe retries (logged "retrying in"), does not exit,
# does not dead-letter anything, and once the server is back every event is in `latest FINAL`
# exactly once and in `log` exactly once too (the insert ledger, on by default); SIGTERM then exits 0 with everything committed.
# Two members share the 3 partitions. During the outage member two gets SIGTERM: it cannot flush,
# so it exits 1 after --shutdown-timeout without committing; member one, paused but still
# polling, must take over all partitions while ClickHouse is still down (the group does not wait
# for the outage to end), hand its own uncommitted events back, and later insert member two's
# uncommitted events too.
. "$(dirname "$0")/lib.sh"

N=3000
CHUNK=100 # events per producer round; N / CHUNK rounds, PACE s apart
PACE=0.5
BATCH_ROWS=500
OUTAGE_S=10
TOPIC="outage_$ID"
GROUP="g_$ID"
PIPELINE="$SRC/tests/integration/faults_outage.lua"
CHDIR="$RUN/ch"

cdcpipe_pid='' two_pid='' producer_pid=''
cleanup() {
  [[ -n $cdcpipe_pid ]] && kill -9 "$cdcpipe_pid" 2>/dev/null
  [[ -n $two_pid ]] && kill -9 "$two_pid" 2>/dev/null
  [[ -n $producer_pid ]] && kill "$producer_pid" 2>/dev/null
  ch_private_cleanup
}
trap cleanup EXIT

# A ClickHouse of our own; `ch` and cdcpipe talk to it.
ch_private_start "$CHDIR"
ch_db_create
topic_create "$TOPIC" 3

producer() {
  local round i rounds=$((N / CHUNK))
  for ((round = 0; round < rounds; round++)); do
    ((round != rounds / 3)) || wait_for "the outage to begin" 120 test -e "$RUN/outage.began"
    ((round != 2 * rounds / 3)) || wait_for "ClickHouse to be back" 120 test -e "$RUN/outage.ended"
    for ((i = round * CHUNK + 1; i <= (round + 1) * CHUNK; i++)); do
      printf '{"id":%d}\t{"op":"c","after":{"id":%d,"name":"n%d"},"source":{"lsn":%d}}\n' \
        "$i" "$i" "$i" $((100000 + i))
    done | kcat -P -b "$KAFKA_BROKERS" -t "$TOPIC" -K $'\t'
    sleep "$PACE" # the pace of the stream, not a synchronisation
  done
}
producer >"$RUN/producer.log" 2>&1 &
producer_pid=$!

member() { # LOG: a member of the group in the background
  "$BIN" -v -b "$KAFKA_BROKERS" -t "$TOPIC" -g "$GROUP" --clickhouse "$CLICKHOUSE_URL" --database "$DB" \
    --batch-ms 200 --batch-rows "$BATCH_ROWS" --shutdown-timeout 3 "$PIPELINE" 2>"$RUN/$1" &
}
member cdcpipe.log
cdcpipe_pid=$!
wait_for "member one to get partitions" 60 grep -q "assigned $TOPIC" "$RUN/cdcpipe.log"
member two.log
two_pid=$!
wait_for "member two to get partitions" 60 grep -q "assigned $TOPIC" "$RUN/two.log"

log_rows() { ch "SELECT count() FROM $DB.log"; }
rows_at_least() { # N: (the table may not exist yet)
  local n
  n=$(curl -sf "$CLICKHOUSE_URL/" --data-binary "SELECT count() FROM $DB.log" 2>/dev/null) && ((n >= $1))
}
wait_for "the first rows" 60 rows_at_least 500

# Stop the server for real; remember how it was started.
before_outage=$(log_rows)
ch_private_stop
outage_start=$SECONDS
touch "$RUN/outage.began"
pass "ClickHouse stopped (pid $CH_PID exited) with $before_outage rows in log"

retried() { grep -q 'retrying in' "$RUN/$1"; }
wait_for "member one to retry the insert" 30 retried cdcpipe.log
wait_for "member two to retry the insert" 30 retried two.log

# Member two leaves during the outage: it cannot flush, so it commits nothing and exits 1.
mark=$(wc -l <"$RUN/cdcpipe.log")
kill -TERM "$two_pid"
rc=0
wait "$two_pid" || rc=$?
two_pid=
assert_eq "member two, stopped during the outage, exits 1 (its events are not committed)" 1 "$rc"
assert_contains "member two says it gave up at shutdown" "giving up at shutdown, offsets not committed" \
  "$(cat "$RUN/two.log")"
took_over() { # since then member one handed its pending events back and got all 3 partitions
  local since
  since=$(tail -n +"$((mark + 1))" "$RUN/cdcpipe.log")
  grep -q 'handed back uncommitted' <<<"$since" && (($(grep -c "assigned $TOPIC" <<<"$since") >= 3))
}
wait_for "member one to take over all partitions while ClickHouse is down" 60 took_over
ch_port_closed || fail "ClickHouse came back by itself"
pass "member one took over member two's partitions $((SECONDS - outage_start)) s into the outage, ClickHouse still down"
outage_long_enough() { ((SECONDS - outage_start >= OUTAGE_S)); }
wait_for "$OUTAGE_S s of outage" $((OUTAGE_S + 5)) outage_long_enough
kill -0 "$cdcpipe_pid" 2>/dev/null || fail "cdcpipe exited during the outage: $(tail -5 "$RUN/cdcpipe.log")"
pass "cdcpipe kept running through $((SECONDS - outage_start)) s without ClickHouse"

# Start the same server again: same binary, arguments, working directory, config and data.
ch_private_restart
touch "$RUN/outage.ended"
after_restart=$(log_rows)
((after_restart >= before_outage)) || fail "ClickHouse lost rows over the restart: $before_outage before, $after_restart after"
pass "ClickHouse back after $((SECONDS - outage_start)) s, its data kept ($after_restart rows in log, $before_outage before the stop)"

rc=0
wait "$producer_pid" || rc=$?
producer_pid=
assert_eq "the producer sent all $N events" 0 "$rc"

all_present() {
  [[ $(ch "SELECT uniqExact(id) FROM $DB.log") == "$N" &&
    $(ch "SELECT uniqExact(id) FROM $DB.latest") == "$N" ]]
}
wait_for "all $N events in ClickHouse" 90 all_present
pass "every event arrived $((SECONDS - outage_start)) s after the outage began"

kill -TERM "$cdcpipe_pid"
rc=0
wait "$cdcpipe_pid" || rc=$?
cdcpipe_pid=
assert_eq "cdcpipe exits 0 after SIGTERM" 0 "$rc"
log=$(cat "$RUN/cdcpipe.log")
assert_contains "the outage was retried" "retrying in" "$log"
stopped=$(grep -o 'stopped: consumed=.*' <<<"$log") || fail "no final summary in the log"
read -r consumed inserted < <(sed 's/.*consumed=\([0-9]*\) .* events_inserted=\([0-9]*\) .*/\1 \2/' <<<"$stopped")
assert_contains "member one: nothing dead-lettered or filtered" "tombstones=0 filtered=0 dead_lettered=0 " "$stopped"
assert_eq "member one: every event it consumed (handed-back ones excepted) was inserted" "$consumed" "$inserted"
retries=${stopped##* retries=}
retries=${retries%% *}
((retries > 0)) || fail "the summary counts no retries: $stopped"
pass "the summary counts $retries retries"

assert_eq "latest FINAL: every event exactly once, with its version" "$N	$N	0" \
  "$(ch "SELECT count(), uniqExact(id), countIf(version != 100000 + id) FROM $DB.latest FINAL FORMAT TabSeparated")"
assert_eq "log: every event at least once" "$N" "$(ch "SELECT uniqExact(id) FROM $DB.log")"
total=$(log_rows)
dups=$((total - N))
# An insert in flight when the server went down may have been written but not acknowledged: the
# insert ledger (on by default) looks it up in system.query_log before sending it again, and the
# events member two handed over are not inserted twice either: exactly once, even in `log`.
assert_eq "log (plain MergeTree): no duplicate row across the outage (insert ledger)" 0 "$dups"

rc=0
"$BIN" --once -b "$KAFKA_BROKERS" -t "$TOPIC" -g "$GROUP" --clickhouse "$CLICKHOUSE_URL" \
  --database "$DB" "$PIPELINE" 2>"$RUN/once.log" || rc=$?
assert_eq "a restart in the group exits 0" 0 "$rc"
assert_contains "everything was committed: a restart consumes nothing" "cdcpipe: consumed=0 " "$(cat "$RUN/once.log")"
finish
