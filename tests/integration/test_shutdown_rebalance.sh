#!/usr/bin/env bash
# test_shutdown_rebalance.sh — the long-running mode: rows still batched when SIGTERM or SIGINT
# arrives are inserted and committed before cdcpipe exits 0; when a second member joins the group,
# the first one flushes and commits before its partitions are revoked; across all of it no event
# is lost and none is inserted twice.
. "$(dirname "$0")/lib.sh"

TOPIC="stop_$ID"
GROUP="g_$ID"
ch_db_create
topic_create "$TOPIC" 4
gen() { # FROM TO: update events, keyed by id (spread over the 4 partitions)
  for ((i = $1; i <= $2; i++)); do
    printf '{"id":%d}\t{"op":"u","after":{"id":%d,"name":"n%d","created_at":1000000}}\n' "$i" "$i" "$i"
  done
}
start_member() { # NAME: runs cdcpipe in the background with batches that never fill up by themselves
  "$BIN" -v -b "$KAFKA_BROKERS" -t "$TOPIC" -g "$GROUP" --clickhouse "$CLICKHOUSE_URL" \
    --database "$DB" --batch-ms 600000 --batch-rows 1000000 "$SRC/pipeline.lua" 2>"$RUN/$1.log" &
  echo $! >"$RUN/$1.pid"
}
reached_end() { # LOG N: N partitions reported their end
  (($(grep -c 'reached the end' "$RUN/$1" || true) >= $2))
}
consumed_upto() { # TOTAL: the members' latest end-of-partition offsets add up to TOTAL events
  local sum
  sum=$(cat "$RUN"/*.log | sed -n 's/.* \[\([0-9]*\)\]: reached the end at offset \([0-9]*\)$/\1 \2/p' |
    awk '{ if ($2 > max[$1]) max[$1] = $2 } END { s = 0; for (p in max) s += max[p]; print s }')
  ((sum == $1))
}
# Members that are still running when the test ends (it failed) must not outlive it.
trap 'for f in "$RUN"/*.pid; do [[ -f $f ]] && kill -9 "$(cat "$f")" 2>/dev/null; done; true' EXIT
stop_member() { # NAME SIGNAL: signal, wait, expect exit 0
  local pid rc=0
  pid=$(cat "$RUN/$1.pid")
  kill "-$2" "$pid"
  wait "$pid" || rc=$?
  rm -f "$RUN/$1.pid"
  assert_eq "$1 exits 0 after SIG$2" 0 "$rc"
}
rows() { ch "SELECT count(), uniqExact(id) FROM $DB.changes FORMAT TabSeparated"; }

gen 1 100 >"$RUN/a.tsv"
produce "$TOPIC" "$RUN/a.tsv"
start_member one
wait_for "member one to consume all 4 partitions" 60 reached_end one.log 4
assert_eq "nothing inserted before the batch is due" "0" "$(ch "SELECT count() FROM $DB.changes")"
stop_member one TERM
assert_eq "SIGTERM flushed the batched rows" "100	100" "$(rows)"
assert_contains "SIGTERM: offsets committed" "committed $TOPIC" "$(cat "$RUN/one.log")"

# Rebalance: member one takes all partitions, consumes; member two joins; one must flush before
# its partitions are revoked. Then more events go to whichever member owns each partition.
gen 101 200 >"$RUN/b.tsv"
produce "$TOPIC" "$RUN/b.tsv"
start_member one
wait_for "member one to consume all 4 partitions" 60 reached_end one.log 4
start_member two
wait_for "member one to hand partitions over" 60 grep -q 'revoked' "$RUN/one.log"
assert_eq "the revoke flushed member one's batch" "200	200" "$(rows)"
wait_for "member two to get partitions" 60 grep -q "assigned $TOPIC" "$RUN/two.log"
gen 201 300 >"$RUN/c.tsv"
produce "$TOPIC" "$RUN/c.tsv"
wait_for "members to consume the new events" 60 consumed_upto 300
stop_member two INT
stop_member one TERM
assert_eq "after the rebalance: every event once" "300	300" "$(rows)"

# Nothing is left uncommitted: a fresh run in the group consumes nothing.
"$BIN" --once -b "$KAFKA_BROKERS" -t "$TOPIC" -g "$GROUP" --clickhouse "$CLICKHOUSE_URL" \
  --database "$DB" "$SRC/pipeline.lua" 2>"$RUN/once.log" || fail "cdcpipe --once exited $?"
assert_contains "everything was committed" "cdcpipe: consumed=0 " "$(cat "$RUN/once.log")"
ch "DROP DATABASE $DB" >/dev/null
finish
