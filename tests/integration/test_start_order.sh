#!/usr/bin/env bash
# test_start_order.sh — start in any order, come back in seconds (real Kafka, default settings):
#  1. --once on a topic that does not exist exits 1 naming the topic (it could never finish);
#  2. a long-running cdcpipe started before its topic exists: the topic is created and filled 3 s
#     later, and every event is in ClickHouse within 15 s of being produced; the wait is logged
#     once, saying what cdcpipe does, and the topic's arrival is logged;
#  3. partitions added to the topic while it runs are consumed within 15 s;
#  4. kill -9, then a restart with the same command line (no extra flags): consumption resumes
#     within 10 s of the restart and nothing is lost;
#  5. two instances on this host in one group with default settings both consume, neither is
#     fenced, and every event lands.
. "$(dirname "$0")/lib.sh"

TOPIC="later_$ID"
GROUP="g_$ID"
PIPELINE="$SRC/tests/integration/faults_kill9.lua" # one row per event: id, partition, offset
ch_db_create
common=(-g "$GROUP" -b "$KAFKA_BROKERS" --clickhouse "$CLICKHOUSE_URL" --database "$DB" --table events
  --stats-interval 0)
args=(-t "$TOPIC" "${common[@]}")
pids=()
trap 'for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done; true' EXIT

# events FIRST LAST [PARTITION]: produce events with ids FIRST..LAST (to one partition, or keyed).
events() {
  local part=${3:-}
  for ((i = $1; i <= $2; i++)); do
    printf '{"id":%d}\t{"op":"c","after":{"id":%d}}\n' "$i" "$i"
  done >"$RUN/events.tsv"
  if [[ -n $part ]]; then
    kcat -P -b "$KAFKA_BROKERS" -t "$TOPIC" -p "$part" -K $'\t' <"$RUN/events.tsv"
  else
    produce "$TOPIC" "$RUN/events.tsv"
  fi
}
rows_are() { [[ $(ch "SELECT uniqExact(id) FROM $DB.events") == "$1" ]]; }
# within WHAT SECONDS ROWS: polls until ClickHouse holds ROWS distinct ids; prints the seconds taken.
within() {
  local start=$SECONDS
  wait_for "$1" "$2" rows_are "$3"
  pass "$1: $3 ids in ClickHouse after $((SECONDS - start)) s (limit $2 s)"
}

# 1. --once cannot finish on a topic that does not exist: exit 1, the topic named.
rc=0
"$BIN" --once -t "missing_$ID" "${common[@]}" "$PIPELINE" 2>"$RUN/once.log" || rc=$?
assert_eq "--once on a missing topic exits 1" 1 "$rc"
assert_contains "--once names the missing topic" \
  "topic missing_$ID does not exist on the brokers (check -t/CDCPIPE_TOPICS)" "$(cat "$RUN/once.log")"

# 2. started first; the topic appears 3 s later (Debezium creates a table's topic at its first change).
"$BIN" "${args[@]}" "$PIPELINE" 2>"$RUN/run1.log" &
pids+=($!)
wait_for "the first run to report the missing topic" 30 grep -q "does not exist" "$RUN/run1.log"
sleep 3 # the scenario: the topic is created a few seconds after cdcpipe started
topic_create "$TOPIC" 2
events 1 200
within "a topic created after the start is consumed" 15 200
log=$(cat "$RUN/run1.log")
assert_contains "the wait is explained" "does not exist on the brokers (check -t/CDCPIPE_TOPICS); waiting for it without a time limit: the brokers are asked again every 5 s" "$log"
assert_eq "the wait is logged once" 1 "$(grep -c 'does not exist on the brokers' "$RUN/run1.log")"
assert_contains "the topic's arrival is logged" "topic $TOPIC exists now; consuming it" "$log"

# 3. partitions added to the topic while cdcpipe runs.
"$SRC/scripts/services.sh" partitions "$(dirname "$SERVICES_ENV")" "$TOPIC" 4 >/dev/null
events 201 250 2
events 251 300 3
within "partitions added while running are consumed" 15 300
assert_contains "the new partitions are assigned" "assigned $TOPIC [3]" "$(cat "$RUN/run1.log")"

# 4. kill -9 and restart with the same command line: back within 10 s, nothing lost.
kill -9 "${pids[0]}"
wait "${pids[0]}" 2>/dev/null || true
events 301 400
"$BIN" "${args[@]}" "$PIPELINE" 2>"$RUN/run2.log" &
pids+=($!)
within "a restart after kill -9 resumes" 10 400

# 5. a second instance on this host, same group, default settings: both consume, no fencing.
"$BIN" "${args[@]}" "$PIPELINE" 2>"$RUN/run3.log" &
pids+=($!)
wait_for "the second instance to get partitions" 30 grep -q "assigned $TOPIC" "$RUN/run3.log"
events 401 800
within "two instances in one group consume everything" 20 800
for f in run2 run3; do
  assert_not_contains "$f is not fenced" "fenced" "$(cat "$RUN/$f.log")"
done
kill -TERM "${pids[1]}" "${pids[2]}"
for p in "${pids[1]}" "${pids[2]}"; do
  rc=0
  wait "$p" || rc=$?
  assert_eq "a member stops cleanly on SIGTERM" 0 "$rc"
done
pids=()
# The group split the 4 partitions: the first instance gave some up to the second.
assert_contains "the first instance handed partitions to the second" "revoked $TOPIC" "$(cat "$RUN/run2.log")"

rc=0
"$BIN" --once "${args[@]}" "$PIPELINE" 2>"$RUN/final.log" || rc=$?
assert_eq "a final --once exits 0" 0 "$rc"
assert_contains "everything was committed" "cdcpipe: consumed=0 " "$(cat "$RUN/final.log")"
assert_eq "no event lost" 800 "$(ch "SELECT uniqExact(id) FROM $DB.events")"
echo "# duplicates after the kill: $(($(ch "SELECT count() FROM $DB.events") - 800))"
ch "DROP DATABASE $DB" >/dev/null
finish
