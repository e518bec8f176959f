#!/usr/bin/env bash
# test_outage_rebalance.sh — the group scales out while ClickHouse is down, with the cooperative
# protocol (-X partition.assignment.strategy=cooperative-sticky). A private ClickHouse (stopped and
# restarted for real; the shared one stays untouched) receives, through faults_outage.lua, every
# event in a MergeTree `log` and a ReplacingMergeTree `latest`. Member one runs alone on the 4
# partitions and inserts a first chunk; then the server is stopped and a second chunk is produced:
# member one retries with its partitions paused, holding the chunk's first event. Member two joins
# during the outage, with a copy of the pipeline without ddl() (the tables exist already; ddl() would
# wait for ClickHouse): scaling out in the middle of an outage. While ClickHouse is still down:
#  - the group rebalances (it does not wait for the outage to end): member two is assigned some
#    partitions, member one revokes exactly those (not all 4: cooperative) and keeps the others;
#  - member one hands its pending event back uncommitted; if that event's partition is one it keeps,
#    it rewinds it to its first uncommitted offset, if not it leaves it to member two;
#  - member two consumes the partitions it got from their committed offsets and waits for ClickHouse.
# After the restart and a third chunk, every event is in `latest FINAL` exactly once and in `log` at
# least once (duplicates bounded); both members exit 0 on SIGTERM with nothing dead-lettered, each
# consumed exactly what it inserted and together they consumed every event once (handed-back events
# are not counted); a final --once in the group consumes nothing (everything committed).
# Two rounds, each on a topic, group and database of its own, put the held event in partition 3 and
# in partition 0. librdkafka's cooperative-sticky (2.0.2) gives the joining member partitions 0 and
# 1, so member one keeps the first and gives the second away: both sides of the hand-back are seen
# (the checks follow whichever way the assignor decides, and say which).
. "$(dirname "$0")/lib.sh"

CHUNK1=400 CHUNK2=200 CHUNK3=400
N=$((CHUNK1 + CHUNK2 + CHUNK3))
BATCH_ROWS=500
PIPELINE="$SRC/tests/integration/faults_outage.lua"
COOP=(-X partition.assignment.strategy=cooperative-sticky)

one_pid='' two_pid=''
cleanup() {
  [[ -n $one_pid ]] && kill -9 "$one_pid" 2>/dev/null
  [[ -n $two_pid ]] && kill -9 "$two_pid" 2>/dev/null
  ch_private_cleanup
}
trap cleanup EXIT

ch_private_start "$RUN/ch" # `ch` and cdcpipe talk to it

# Member two's pipeline: the same transform, no ddl().
awk '/^function ddl\(\)/ { skip = 1 } !skip { print } skip && /^end$/ { skip = 0 }' "$PIPELINE" >"$RUN/no_ddl.lua"
if ! grep -q 'function transform' "$RUN/no_ddl.lua" || grep -q 'ddl()' "$RUN/no_ddl.lua"; then
  fail "could not derive a pipeline without ddl() from $PIPELINE"
fi

# The round's topic, group and database (set by round).
TOPIC='' GROUP=''
produce_ids() { # FROM TO [PARTITION]: create events keyed by id (spread over the 4 partitions)
  local i
  for ((i = $1; i <= $2; i++)); do
    printf '{"id":%d}\t{"op":"c","after":{"id":%d,"name":"n%d"},"source":{"lsn":%d}}\n' \
      "$i" "$i" "$i" $((100000 + i))
  done | kcat -P -b "$KAFKA_BROKERS" -t "$TOPIC" -K $'\t' ${3:+-p "$3"}
}
member() { # LOG PIPELINE: a cooperative member of the group in the background, small batches
  "$BIN" -v -b "$KAFKA_BROKERS" -t "$TOPIC" -g "$GROUP" "${COOP[@]}" --clickhouse "$CLICKHOUSE_URL" \
    --database "$DB" --batch-ms 200 --batch-rows "$BATCH_ROWS" --shutdown-timeout 3 "$2" 2>"$RUN/$1" &
}
owned() { # LOG: the partitions of $TOPIC the member owns now (replays its assigns and revokes)
  sed -n "s/.* \(assigned\|revoked\) $TOPIC \[\([0-9]*\)\]$/\1 \2/p" "$RUN/$1" |
    awk '$1 == "assigned" { own[$2] = 1 } $1 == "revoked" { delete own[$2] } END { for (p in own) print p }' |
    sort -n | paste -sd' '
}
owns_all() { [[ $(owned "$1") == "0 1 2 3" ]]; } # LOG
since() { tail -n +"$(($2 + 1))" "$RUN/$1"; }     # LOG LINE: the log after its first LINE lines
partitions_since() { # EVENT LOG LINE: partitions of $TOPIC that were EVENT (assigned, revoked) since LINE
  since "$2" "$3" | sed -n "s/.* $1 $TOPIC \[\([0-9]*\)\]$/\1/p" | sort -n | paste -sd' '
}
# LOG: the member retries an insert and its consumer thread has paused the partitions (the pause
# is applied by the consumer thread after the worker asks: until then, a record produced now could
# still be fetched and handled, its insert thread's flight in the air)
retrying() {
  grep -q 'retrying in' "$RUN/$1" && grep -q 'consumption paused' "$RUN/$1" &&
    grep -q 'partitions paused$' "$RUN/$1"
}
took_over() { # ONE TWO MARK: TWO owns partitions, ONE revoked them since MARK and handed its event back
  local got
  got=$(owned "$2")
  [[ -n $got && $(partitions_since revoked "$1" "$3") == "$got" ]] &&
    since "$1" "$3" | grep -q 'handed back uncommitted'
}
present() { [[ $(ch "SELECT uniqExact(id) FROM $DB.$1") == "$2" ]]; } # TABLE N: N distinct ids
all_in() { present log "$1" && present latest "$1"; }                 # N

round() { # NAME P0: the scenario; the event member one holds during the outage goes to partition P0
  local r=$1 P0=$2 one=one_$1.log two=two_$1.log
  TOPIC="orebal_${ID}_$r" GROUP="g_${ID}_$r" DB="t_${ID}_$r"
  ch_db_create
  topic_create "$TOPIC" 4

  member "$one" "$PIPELINE"
  one_pid=$!
  wait_for "$r: member one to own the 4 partitions" 60 owns_all "$one"
  produce_ids 1 $CHUNK1
  wait_for "$r: the first $CHUNK1 events in ClickHouse" 30 all_in $CHUNK1
  pass "$r: member one alone inserted the first $CHUNK1 events"
  # Where each partition ends now: member one committed these offsets with that insert.
  local -A end1
  local n p
  while read -r n p; do end1[$p]=$n; done < <(kcat -C -b "$KAFKA_BROKERS" -t "$TOPIC" -o beginning -e -q -f '%p\n' |
    sort -n | uniq -c)
  ((${#end1[@]} == 4)) || fail "$r: the first chunk did not reach all 4 partitions: ${!end1[*]}"

  ch_private_stop
  local outage_start=$SECONDS
  pass "$r: ClickHouse stopped (pid $CH_PID exited)"
  # The second chunk. Its first event goes alone, into partition P0, and member one flushes it at
  # once (it is the first event after a pause longer than --batch-ms), so what member one holds
  # while ClickHouse is down is known: that event, at offset end1[P0]. It retries with consumption
  # paused; the rest of the chunk waits in Kafka.
  produce_ids $((CHUNK1 + 1)) $((CHUNK1 + 1)) "$P0"
  wait_for "$r: member one to retry the insert with consumption paused" 30 retrying "$one"
  produce_ids $((CHUNK1 + 2)) $((CHUNK1 + CHUNK2))

  # Scale out: member two joins, while ClickHouse is down.
  local mark
  mark=$(wc -l <"$RUN/$one")
  member "$two" "$RUN/no_ddl.lua"
  two_pid=$!
  wait_for "$r: member two to take partitions over while ClickHouse is down" 60 took_over "$one" "$two" "$mark"
  ch_port_closed || fail "$r: ClickHouse came back by itself"
  local two_parts one_parts log_one
  two_parts=$(owned "$two") one_parts=$(owned "$one") log_one=$(since "$one" "$mark")
  pass "$r: member two got partitions $two_parts $((SECONDS - outage_start)) s into the outage, ClickHouse still down"
  assert_eq "$r: member one revoked only the partitions member two got (cooperative)" \
    "$two_parts" "$(partitions_since revoked "$one" "$mark")"
  [[ -n $one_parts ]] || fail "$r: member one kept no partition"
  assert_eq "$r: member one keeps the others, together they own all 4" "0 1 2 3" \
    "$(tr ' ' '\n' <<<"$one_parts $two_parts" | sort -n | paste -sd' ')"
  assert_eq "$r: member one was not assigned anything again" "" "$(partitions_since assigned "$one" "$mark")"
  local rewound
  rewound=$(sed -n "s/.* $TOPIC \[\([0-9]*\)\]: consuming again from offset \([0-9]*\)$/\1 \2/p" <<<"$log_one")
  if [[ $WORKERS == 1 ]]; then
    assert_eq "$r: member one handed its pending event back uncommitted" "1" \
      "$(sed -n 's/.*: \([0-9]*\) events with rows waiting were handed back uncommitted$/\1/p' <<<"$log_one")"
    # A partition member one keeps goes back to its first uncommitted event (the end of chunk 1); one
    # it gave up is not touched (member two starts it from the committed offset). Only P0 held an event.
    if [[ " $one_parts " == *" $P0 "* ]]; then
      assert_eq "$r: member one rewound partition $P0, which it keeps, to its committed offset" "$P0 ${end1[$P0]}" "$rewound"
    else
      assert_eq "$r: member one rewound nothing: partition $P0, with its pending event, went to member two" "" "$rewound"
    fi
  else
    # Several workers: each holds the events of its own partitions, and only the workers losing a
    # partition hand theirs back; a rewound partition is always one member one keeps, and goes
    # back to the end of chunk 1 (its committed offset).
    local p off
    while read -r p off; do
      [[ -z $p ]] && continue
      [[ " $one_parts " == *" $p "* ]] || fail "$r: member one rewound partition $p, which it gave up"
      assert_eq "$r: member one rewound partition $p to its committed offset" "${end1[$p]}" "$off"
    done <<<"$rewound"
    pass "$r: member one rewound only partitions it keeps ($(wc -l <<<"$rewound") line(s))"
  fi
  wait_for "$r: member two to wait for ClickHouse with the events of its partitions" 30 retrying "$two"
  ch_port_closed || fail "$r: ClickHouse came back by itself"
  pass "$r: member two consumed its partitions and retries, ClickHouse still down"
  if ! kill -0 "$one_pid" 2>/dev/null || ! kill -0 "$two_pid" 2>/dev/null; then
    fail "$r: a member exited during the outage"
  fi

  ch_private_restart
  pass "$r: ClickHouse back after $((SECONDS - outage_start)) s"
  produce_ids $((CHUNK1 + CHUNK2 + 1)) $N
  wait_for "$r: all $N events in ClickHouse" 40 all_in $N
  pass "$r: every event arrived $((SECONDS - outage_start)) s after the outage began"

  local m pid_var rc stopped consumed inserted total_consumed=0
  for m in one two; do
    pid_var=${m}_pid
    kill -TERM "${!pid_var}"
    rc=0
    wait "${!pid_var}" || rc=$?
    printf -v "$pid_var" ''
    assert_eq "$r: member $m exits 0 after SIGTERM" 0 "$rc"
    stopped=$(grep -o 'stopped: consumed=.*' "$RUN/${m}_$r.log") || fail "$r: member $m: no final summary"
    read -r consumed inserted < <(sed 's/.*consumed=\([0-9]*\) .* events_inserted=\([0-9]*\) .*/\1 \2/' <<<"$stopped")
    assert_contains "$r: member $m: nothing dead-lettered or filtered" "tombstones=0 filtered=0 dead_lettered=0 " "$stopped"
    assert_eq "$r: member $m: every event it consumed (handed-back ones excepted) was inserted" "$consumed" "$inserted"
    total_consumed=$((total_consumed + consumed))
  done
  assert_eq "$r: together the members consumed every event once (handed-back events not counted)" "$N" "$total_consumed"

  assert_eq "$r: latest FINAL: every event exactly once, with its version" "$N	$N	0" \
    "$(ch "SELECT count(), uniqExact(id), countIf(version != 100000 + id) FROM $DB.latest FINAL FORMAT TabSeparated")"
  assert_eq "$r: log: every event at least once" "$N" "$(ch "SELECT uniqExact(id) FROM $DB.log")"
  local dups
  dups=$(($(ch "SELECT count() FROM $DB.log") - N))
  # ClickHouse was stopped with nothing in flight (chunk 1 fully inserted, chunk 2 not produced
  # yet), so every insert during the outage was refused and wrote nothing, and the flush member one
  # dropped at the hand-back had not written any table. A row can only be repeated by an insert
  # written after the restart whose acknowledgement was lost (a timeout), then retried; the insert
  # ledger (on by default) looks such an insert up in system.query_log first: none.
  assert_eq "$r: log (plain MergeTree): no duplicate row (insert ledger)" 0 "$dups"

  rc=0
  "$BIN" --once -b "$KAFKA_BROKERS" -t "$TOPIC" -g "$GROUP" "${COOP[@]}" --clickhouse "$CLICKHOUSE_URL" \
    --database "$DB" "$PIPELINE" 2>"$RUN/once_$r.log" || rc=$?
  assert_eq "$r: a restart in the group exits 0" 0 "$rc"
  assert_contains "$r: everything was committed, a restart consumes nothing" "cdcpipe: consumed=0 " \
    "$(cat "$RUN/once_$r.log")"
}

round p3 3
round p0 0
finish
