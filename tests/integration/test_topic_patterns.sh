#!/usr/bin/env bash
# test_topic_patterns.sh — -t '^regex' subscribes by pattern (librdkafka):
#  1. --once over a pattern consumes every matching topic and its summary counts them all; the
#     dead letters it writes (<topic>.dlq, which the pattern also matches) are never consumed back;
#  2. --once with a pattern that matches no topic exits 2 naming the pattern; a bad pattern too;
#  3. --from works per partition with a pattern (--from end skips everything present);
#  4. a long-running cdcpipe picks up a topic created after its start within 30 s.
. "$(dirname "$0")/lib.sh"

PREFIX="pat_$ID"
PATTERN="^${PREFIX}\\..*"
PIPELINE="$SRC/tests/integration/faults_kill9.lua" # one row per event: id, partition, offset
ch_db_create
common=(-b "$KAFKA_BROKERS" --clickhouse "$CLICKHOUSE_URL" --database "$DB" --table events
  --stats-interval 0)
pid=
trap '[[ -n $pid ]] && kill -9 "$pid" 2>/dev/null; true' EXIT

events() { # TOPIC FIRST LAST: events with ids FIRST..LAST
  for ((i = $2; i <= $3; i++)); do
    printf '{"id":%d}\t{"op":"c","after":{"id":%d}}\n' "$i" "$i"
  done >"$RUN/events.tsv"
  produce "$1" "$RUN/events.tsv"
}
topic_create "$PREFIX.a" 2
topic_create "$PREFIX.b" 1
events "$PREFIX.a" 1 50
events "$PREFIX.b" 51 80
printf '{"id":999}\tnot json\n' >"$RUN/bad.tsv"
produce "$PREFIX.b" "$RUN/bad.tsv"

# 1. --once over the pattern
rc=0
"$BIN" --once -t "$PATTERN" -g "g1_$ID" "${common[@]}" "$PIPELINE" 2>"$RUN/once.log" || rc=$?
assert_eq "--once over a pattern exits 0" 0 "$rc"
assert_eq "every matching topic is consumed" "80" "$(ch "SELECT uniqExact(id) FROM $DB.events")"
assert_contains "the summary counts the events of every topic" "consumed=81" "$(cat "$RUN/once.log")"
assert_contains "the summary counts the dead letter" "dead_lettered=1" "$(cat "$RUN/once.log")"
dlq=$(kcat -C -b "$KAFKA_BROKERS" -t "$PREFIX.b.dlq" -e -q -f '%o\n' 2>/dev/null | wc -l)
assert_eq "the bad event went to $PREFIX.b.dlq" "1" "$dlq"
# the dead-letter topic matches the pattern: a second run must not consume it
rc=0
"$BIN" --once -t "$PATTERN" -g "g2_$ID" "${common[@]}" "$PIPELINE" 2>"$RUN/once2.log" || rc=$?
assert_eq "a second --once over the pattern (dead-letter topic present) exits 0" 0 "$rc"
assert_contains "the dead-letter topic is said to be skipped" \
  "topic $PREFIX.b.dlq matches the -t pattern but holds dead letters: never consumed" "$(cat "$RUN/once2.log")"
assert_not_contains "no partition of the dead-letter topic is assigned" "assigned $PREFIX.b.dlq" "$(cat "$RUN/once2.log")"
assert_contains "the second run also consumed 81 events, not the dead letter" "consumed=81" "$(cat "$RUN/once2.log")"
dlq=$(kcat -C -b "$KAFKA_BROKERS" -t "$PREFIX.b.dlq" -e -q -f '%o\n' 2>/dev/null | wc -l)
assert_eq "the second run dead-lettered the bad event once more, into the same topic" "2" "$dlq"
if kcat -L -b "$KAFKA_BROKERS" 2>/dev/null | grep -q "$PREFIX.b.dlq.dlq"; then
  fail "a dead letter was consumed back: $PREFIX.b.dlq.dlq exists"
fi
pass "no dead letter of a dead letter"

# 2. patterns that cannot work
rc=0
"$BIN" --once -t "^nothing_$ID\\..*" -g "g3_$ID" "${common[@]}" "$PIPELINE" 2>"$RUN/none.log" || rc=$?
assert_eq "--once with a pattern matching no topic exits 2" 2 "$rc"
assert_contains "and says so" "the pattern matches no topic on the brokers" "$(cat "$RUN/none.log")"
rc=0
"$BIN" --once -t "^bad_$ID(" -g "g3_$ID" "${common[@]}" "$PIPELINE" 2>"$RUN/bad.log" || rc=$?
assert_eq "a pattern that is not a regular expression exits 2" 2 "$rc"
assert_contains "and names it" "-t ^bad_$ID(: not a regular expression" "$(cat "$RUN/bad.log")"

# 3. --from with a pattern
out=$("$BIN" --dry-run --once -q -t "$PATTERN" -g "g4_$ID" -b "$KAFKA_BROKERS" --from end "$PIPELINE" 2>"$RUN/from.log")
assert_eq "--from end with a pattern skips everything present" "" "$out"
out=$("$BIN" --dry-run --once -q -t "$PATTERN" -g "g5_$ID" -b "$KAFKA_BROKERS" --from beginning "$PIPELINE" 2>"$RUN/from2.log" | wc -l)
assert_eq "--from beginning with a pattern reads every topic again" "80" "$out"

# 4. a topic created after the start
"$BIN" -t "$PATTERN" -g "g1_$ID" "${common[@]}" "$PIPELINE" 2>"$RUN/long.log" &
pid=$!
wait_for "cdcpipe to be assigned its partitions" 30 grep -q "assigned $PREFIX.b" "$RUN/long.log"
topic_create "$PREFIX.c" 1
events "$PREFIX.c" 101 120
rows_are() { [[ $(ch "SELECT uniqExact(id) FROM $DB.events") == "$1" ]]; }
start=$SECONDS
wait_for "the new topic's events" 30 rows_are 100
pass "a topic created after the start was consumed within $((SECONDS - start)) s"
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
pid=
assert_eq "the long run stops cleanly" 0 "$rc"
ch "DROP DATABASE $DB" >/dev/null
finish
