#!/usr/bin/env bash
# test_kafka_restart.sh — the real Kafka broker is killed (SIGKILL) in the middle of a stream and
# restarted: no loss, no stall after recovery. A private single-node broker (this test kills and
# restarts it; the shared one stays untouched) carries a 2-partition topic; cdcpipe runs long
# with the default pipeline.lua into the shared ClickHouse. The first half of the events is
# produced in bursts, and once rows have landed the broker JVM gets kill -9 (unclean shutdown:
# its log recovery runs on restart). After >= 5 s down it is started again with exactly the
# same command line, working directory and environment (same data dir, same port, same node
# id 1), the second half is produced, and every event must reach `changes` without cdcpipe
# being restarted, exactly once: an insert whose offsets could not be committed while the broker
# was gone is replayed, and the insert ledger (on by default) keeps its rows from doubling.
# SIGTERM then exits 0 with everything committed.
. "$(dirname "$0")/lib.sh"

N=3000
CHUNK=100 # events per kcat burst
OUTAGE_S=5
KDIR="$RUN/k"
TOPIC="kafka_restart_$ID"
GROUP="g_$ID"
PIPELINE="$SRC/pipeline.lua"

cdcpipe_pid='' producer_pid=''
cleanup() {
  if [[ -n $cdcpipe_pid ]]; then kill -9 "$cdcpipe_pid" 2>/dev/null || true; fi
  if [[ -n $producer_pid ]]; then kill -9 "$producer_pid" 2>/dev/null || true; fi
  "$SRC/scripts/services.sh" stop "$KDIR" >/dev/null 2>&1 || true
  true
}
trap cleanup EXIT

"$SRC/scripts/services.sh" start "$KDIR" kafka 2>"$RUN/kafka-start.log" ||
  fail "cannot start a private Kafka: $(tail -20 "$RUN/kafka-start.log")"
BROKERS=$(sed -n 's/^KAFKA_BROKERS=//p' "$KDIR/services.env")
[[ -n $BROKERS ]] || fail "no KAFKA_BROKERS in $KDIR/services.env"
KPORT=${BROKERS##*:}
# services.sh picks TopicCommand's class with `unzip -l | grep -q` under pipefail: when grep quits
# first, unzip dies of SIGPIPE and the fallback class (absent from Kafka 4) is used. Retry
# (--if-not-exists makes that safe) until that race is fixed in services.sh.
topic_ok() { "$SRC/scripts/services.sh" topic "$KDIR" "$TOPIC" 2 >/dev/null 2>"$RUN/topic.log"; }
for attempt in 1 2 3 4 5; do topic_ok && break; done
((attempt < 5)) || topic_ok || fail "cannot create $TOPIC: $(cat "$RUN/topic.log")"
ch_db_create

# burst FIRST LAST: ids FIRST..LAST in bursts of CHUNK, one kcat per burst (kcat waits for the
# delivery reports before it exits, so a burst that returns 0 is in the broker).
burst() {
  local from=$1 to=$2 lo hi i
  for ((lo = from; lo <= to; lo += CHUNK)); do
    hi=$((lo + CHUNK - 1 > to ? to : lo + CHUNK - 1))
    for ((i = lo; i <= hi; i++)); do
      printf '{"id":%d}\t{"op":"u","after":{"id":%d,"name":"n%d","created_at":1000000}}\n' "$i" "$i" "$i"
    done | kcat -P -b "$BROKERS" -t "$TOPIC" -K $'\t' || return 1
  done
}
HALF=$((N / 2))
burst 1 "$HALF" 2>"$RUN/producer1.log" || fail "producing 1..$HALF failed: $(cat "$RUN/producer1.log")"

"$BIN" -v -b "$BROKERS" -t "$TOPIC" -g "$GROUP" --clickhouse "$CLICKHOUSE_URL" --database "$DB" \
  --batch-ms 200 "$PIPELINE" 2>"$RUN/cdcpipe.log" &
cdcpipe_pid=$!

uniq_ids() { curl -sf "$CLICKHOUSE_URL/" --data-binary "SELECT uniqExact(id) FROM $DB.changes" 2>/dev/null; }
rows_at_least() { # N (the table may not exist yet)
  local n
  n=$(uniq_ids) && ((n >= $1))
}
wait_for "the first rows in ClickHouse" 60 rows_at_least 1

# Kill the broker for real; remember how it was started.
kpid=$(cat "$KDIR/pids/kafka.pid")
mapfile -d '' k_cmd <"/proc/$kpid/cmdline"
mapfile -d '' k_env <"/proc/$kpid/environ"
k_cwd=$(readlink "/proc/$kpid/cwd")
[[ ${k_cmd[*]} == *"kafka.Kafka $KDIR/kafka/server.properties"* ]] ||
  fail "unexpected Kafka command line: ${k_cmd[*]}"
before=$(uniq_ids)
kill -9 "$kpid"
gone() { [[ ! -e /proc/$kpid ]] || [[ $(awk '{print $3}' "/proc/$kpid/stat" 2>/dev/null) == Z ]]; }
wait_for "the broker to die" 30 gone
port_closed() { ! (: <>"/dev/tcp/127.0.0.1/$KPORT") 2>/dev/null; }
wait_for "the broker's port to close" 10 port_closed
outage_start=$SECONDS
pass "broker killed (kill -9 pid $kpid) with $before of $N ids in ClickHouse"

outage_long_enough() { ((SECONDS - outage_start >= OUTAGE_S)); }
wait_for "$OUTAGE_S s of outage" $((OUTAGE_S + 5)) outage_long_enough
kill -0 "$cdcpipe_pid" 2>/dev/null || fail "cdcpipe exited while the broker was down: $(tail -5 "$RUN/cdcpipe.log")"
pass "cdcpipe kept running through $((SECONDS - outage_start)) s without the broker"

# Same binary, arguments, working directory and environment: same data dir, port, node.
(cd "$k_cwd" && exec env -i "${k_env[@]}" "${k_cmd[@]}") </dev/null >>"$KDIR/logs/kafka.log" 2>&1 &
echo $! >"$KDIR/pids/kafka.pid" # so that services.sh stop stops it
same_node() {
  local md
  (: <>"/dev/tcp/127.0.0.1/$KPORT") 2>/dev/null || return 1
  md=$(kcat -b "$BROKERS" -L -t "$TOPIC" -m 5 2>/dev/null) || return 1
  [[ $md == *"1 brokers:"* && $md == *"broker 1 at 127.0.0.1:$KPORT"* && $md == *"2 partitions:"* &&
    $(grep -c "leader 1, .*isrs: 1" <<<"$md") == 2 ]]
}
wait_for "the broker to come back as node 1 leading both partitions" 90 same_node
pass "broker back as node 1 at 127.0.0.1:$KPORT, leading both partitions, after $((SECONDS - outage_start)) s"

burst $((HALF + 1)) "$N" 2>"$RUN/producer2.log" ||
  fail "producing $((HALF + 1))..$N failed: $(cat "$RUN/producer2.log")"
pass "produced $((HALF + 1))..$N after the restart"

all_present() { [[ $(uniq_ids) == "$N" ]]; }
wait_for "all $N ids in ClickHouse" 90 all_present
pass "every id arrived $((SECONDS - outage_start)) s after the kill"

kill -TERM "$cdcpipe_pid"
rc=0
wait "$cdcpipe_pid" || rc=$?
cdcpipe_pid=
assert_eq "cdcpipe exits 0 after SIGTERM" 0 "$rc"

assert_eq "no loss: uniqExact(id) = $N" "$N" "$(ch "SELECT uniqExact(id) FROM $DB.changes")"
total=$(ch "SELECT count() FROM $DB.changes")
dups=$((total - N))
# What was inserted but not committed while the broker was down is consumed again; the insert
# ledger (on by default) keeps its rows from being inserted twice.
assert_eq "no duplicate row across the broker restart (insert ledger): $total rows for $N ids" 0 "$dups"
assert_eq "no row with a wrong name" 0 "$(ch "SELECT countIf(name != concat('n', toString(id))) FROM $DB.changes")"

rc=0
"$BIN" --once -b "$BROKERS" -t "$TOPIC" -g "$GROUP" --clickhouse "$CLICKHOUSE_URL" \
  --database "$DB" "$PIPELINE" 2>"$RUN/once.log" || rc=$?
assert_eq "a --once rerun in the group exits 0" 0 "$rc"
assert_contains "everything was committed: a rerun consumes nothing" "cdcpipe: consumed=0 " "$(cat "$RUN/once.log")"
echo "# duplicates: $dups; outage log: $(grep -c -i -E 'broker|transport|commit' "$RUN/cdcpipe.log" || true) broker/commit lines"
finish
