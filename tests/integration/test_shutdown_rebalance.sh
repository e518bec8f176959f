#!/usr/bin/env bash
# test_shutdown_rebalance.sh — the long-running mode: rows still batched when SIGTERM or SIGINT
# arrives are inserted and committed before cdcpipe exits 0; when a second member joins the group,
# the first one flushes and commits before its partitions are revoked. The rebalance runs with both
# protocols: eager (librdkafka's default: every partition is revoked, then all are assigned again)
# and cooperative (-X partition.assignment.strategy=cooperative-sticky: only the partitions that
# move are revoked; incremental assign/unassign), where the partitions of a member that leaves also
# go back to the one that stays. Across all of it no event is lost and none is inserted twice.
. "$(dirname "$0")/lib.sh"

# The scenario: its topic (4 partitions), group, database, member-name suffix and the extra
# options both members get. The first two steps use these; the cooperative step sets its own.
TOPIC="stop_$ID"
GROUP="g_$ID"
SFX=""
KAFKA_X=()
ch_db_create
topic_create "$TOPIC" 4
gen() { # FROM TO: update events, keyed by id (spread over the 4 partitions)
  for ((i = $1; i <= $2; i++)); do
    printf '{"id":%d}\t{"op":"u","after":{"id":%d,"name":"n%d","created_at":1000000}}\n' "$i" "$i" "$i"
  done
}
produce_events() { # FROM TO
  gen "$1" "$2" >"$RUN/events_$1.tsv"
  produce "$TOPIC" "$RUN/events_$1.tsv"
}
start_member() { # NAME: runs cdcpipe in the background with batches that never fill up by themselves
  "$BIN" -v -b "$KAFKA_BROKERS" -t "$TOPIC" -g "$GROUP" "${KAFKA_X[@]}" --clickhouse "$CLICKHOUSE_URL" \
    --database "$DB" --batch-ms 600000 --batch-rows 1000000 --stats-interval 1 "$SRC/pipeline.lua" \
    2>"$RUN/$1.log" &
  echo $! >"$RUN/$1.pid"
}
reached_end() { # LOG N: N partitions reported their end
  (($(grep -c 'reached the end' "$RUN/$1" || true) >= $2))
}
consumed_upto() { # TOTAL: the members' latest end-of-partition offsets in $TOPIC add up to TOTAL events
  local sum
  sum=$(cat "$RUN"/*.log | sed -n "s/.* $TOPIC \[\([0-9]*\)\]: reached the end at offset \([0-9]*\)$/\1 \2/p" |
    awk '{ if ($2 > max[$1]) max[$1] = $2 } END { s = 0; for (p in max) s += max[p]; print s }')
  ((sum == $1))
}
count() { # PATTERN LOG: how many lines of the log contain PATTERN
  grep -c -- "$1" "$RUN/$2" || true
}
partitions() { # EVENT LOG: the partitions of $TOPIC the log says were EVENT (assigned, revoked), sorted
  sed -n "s/.* $1 $TOPIC \[\([0-9]*\)\]$/\1/p" "$RUN/$2" | sort -n | paste -sd' '
}
owned() { # LOG: the partitions of $TOPIC the member owns now (replays its assigns and revokes)
  sed -n "s/.* \(assigned\|revoked\) $TOPIC \[\([0-9]*\)\]$/\1 \2/p" "$RUN/$1" |
    awk '$1 == "assigned" { own[$2] = 1 } $1 == "revoked" { delete own[$2] } END { for (p in own) print p }' |
    sort -n | paste -sd' '
}
split_between() { # LOG LOG: each member owns 2 of the 4 partitions, together all 4
  local a b
  a=$(owned "$1") b=$(owned "$2")
  [[ $a =~ ^[0-9]+\ [0-9]+$ && $b =~ ^[0-9]+\ [0-9]+$ &&
    $(tr ' ' '\n' <<<"$a $b" | sort -n | paste -sd' ') == "0 1 2 3" ]]
}
owns_all() { # LOG
  [[ $(owned "$1") == "0 1 2 3" ]]
}
consumed() { # LOG: the events the member consumed, from the summary it logs when it stops
  sed -n 's/.* stopped: consumed=\([0-9]*\) .*/\1/p' "$RUN/$1"
}
events_in() { # FROM TO PARTITIONS: how many of the events with ids FROM..TO $TOPIC holds in PARTITIONS
  kcat -C -b "$KAFKA_BROKERS" -t "$TOPIC" -o beginning -e -q -f '%p %k\n' |
    awk -v from="$1" -v to="$2" -v parts=" $3 " '{ id = $2; gsub(/[^0-9]/, "", id) }
      id + 0 >= from && id + 0 <= to && index(parts, " " $1 " ") { n++ } END { print n + 0 }'
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
all_committed() { # PROTOCOL: a fresh run in the group consumes nothing
  "$BIN" --once -b "$KAFKA_BROKERS" -t "$TOPIC" -g "$GROUP" "${KAFKA_X[@]}" --clickhouse "$CLICKHOUSE_URL" \
    --database "$DB" "$SRC/pipeline.lua" 2>"$RUN/once$SFX.log" || fail "cdcpipe --once exited $?"
  assert_contains "$1: everything was committed" "cdcpipe: consumed=0 " "$(cat "$RUN/once$SFX.log")"
}

# Rebalance, both protocols: member one takes all partitions and consumes events N+1..N+100 (the
# topic holds N events, committed); member two joins; one must flush before its partitions are
# revoked; they end up with 2 partitions each. Then events N+101..N+200 go to whichever member owns
# each partition: member two consumes exactly those on its partitions.
join() { # PROTOCOL N
  local protocol=$1 n=$2 one=one$SFX two=two$SFX
  produce_events $((n + 1)) $((n + 100))
  start_member $one
  wait_for "$protocol: member one to consume all 4 partitions" 60 reached_end $one.log 4
  start_member $two
  wait_for "$protocol: member one to hand partitions over" 60 grep -q 'revoked' "$RUN/$one.log"
  if [[ $protocol == eager || $WORKERS == 1 ]]; then
    assert_eq "$protocol: the revoke flushed member one's batch" "$((n + 100))	$((n + 100))" "$(rows)"
  else # several workers: only those losing a partition flush (the others keep batching)
    local moved flushed
    moved=$(partitions revoked $one.log)
    flushed=$((n + $(events_in $((n + 1)) $((n + 100)) "$moved")))
    assert_eq "$protocol: the revoke flushed the batches of member one's workers that lost partitions $moved" \
      "$flushed	$flushed" "$(rows)"
  fi
  wait_for "$protocol: the members to own 2 partitions each" 60 split_between $one.log $two.log
  if [[ $protocol == cooperative ]]; then
    assert_eq "$protocol: member one gave up only the partitions member two got" \
      "$(owned $two.log)" "$(partitions revoked $one.log)"
    assert_eq "$protocol: member one kept its other partitions (no second assignment)" \
      4 "$(count "assigned $TOPIC" $one.log)"
  else
    assert_eq "$protocol: member one gave up all its partitions" "0 1 2 3" "$(partitions revoked $one.log)"
  fi
  produce_events $((n + 101)) $((n + 200))
  wait_for "$protocol: the members to consume the new events" 60 consumed_upto $((n + 200))
}

produce_events 1 100
start_member one
wait_for "member one to consume all 4 partitions" 60 reached_end one.log 4
assert_eq "nothing inserted before the batch is due" "0" "$(ch "SELECT count() FROM $DB.changes")"
wait_for "a progress line: 100 consumed, none inserted yet" 10 grep -q \
  'progress: consumed=100 tombstones=0 filtered=0 dead_lettered=0 events_inserted=0 rows_inserted=0 ' "$RUN/one.log"
stop_member one TERM
assert_eq "SIGTERM flushed the batched rows" "100	100" "$(rows)"
assert_contains "the final line counts them inserted" \
  "stopped: consumed=100 tombstones=0 filtered=0 dead_lettered=0 events_inserted=100 rows_inserted=100 " \
  "$(cat "$RUN/one.log")"
assert_contains "SIGTERM: offsets committed" "committed $TOPIC" "$(cat "$RUN/one.log")"

# Eager rebalance, on the same topic (events 101..300), then both members stop.
join eager 100
own_one=$(owned one.log) own_two=$(owned two.log)
stop_member two INT
stop_member one TERM
assert_eq "eager: member two consumed the new events on its partitions" \
  "$(events_in 201 300 "$own_two")" "$(consumed two.log)"
assert_eq "eager: member one consumed its batch and the new events on its partitions" \
  "$((100 + $(events_in 201 300 "$own_one")))" "$(consumed one.log)"
assert_eq "eager: every event once" "300	300" "$(rows)"
all_committed eager
ch "DROP DATABASE $DB" >/dev/null

# Cooperative rebalance, on a topic and in a group and database of its own (events 1..200). Then
# member two leaves (SIGTERM) while member one keeps running: one gets two's partitions back by an
# incremental assignment, without giving up its own, and consumes the events produced after that.
TOPIC="stop_${ID}_coop"
GROUP="g_${ID}_coop"
DB="t_${ID}_coop"
SFX=_coop
KAFKA_X=(-X partition.assignment.strategy=cooperative-sticky)
ch_db_create
topic_create "$TOPIC" 4
join cooperative 0
own_one=$(owned one_coop.log) own_two=$(owned two_coop.log)
stop_member two_coop TERM
assert_eq "cooperative: member two consumed the new events on its partitions" \
  "$(events_in 101 200 "$own_two")" "$(consumed two_coop.log)"
wait_for "cooperative: member one to get member two's partitions back" 60 owns_all one_coop.log
assert_eq "cooperative: member one gave up no partition when member two left" \
  2 "$(count "revoked $TOPIC" one_coop.log)"
assert_eq "cooperative: member one was assigned only member two's 2 partitions (incremental assign)" \
  6 "$(count "assigned $TOPIC" one_coop.log)"
produce_events 201 300
wait_for "cooperative: member one to consume the events produced after member two left" 60 consumed_upto 300
stop_member one_coop TERM
assert_eq "cooperative: member one consumed its batch, its partitions' share and everything after" \
  "$((100 + $(events_in 101 200 "$own_one") + 100))" "$(consumed one_coop.log)"
assert_eq "cooperative: every event once" "300	300" "$(rows)"
all_committed cooperative
ch "DROP DATABASE $DB" >/dev/null
finish
