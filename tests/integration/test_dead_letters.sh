#!/usr/bin/env bash
# test_dead_letters.sh — dead letters whatever happened to the record, through real Kafka and
# ClickHouse:
# - a row ClickHouse rejects whose record can no longer be read (deleted from the topic meanwhile)
#   is dead-lettered with what is known: topic, partition, offset and the reason.
# Each run goes on, exits 0, and commits: a second run consumes nothing.
. "$(dirname "$0")/lib.sh"

ch_db_create
cat >"$RUN/dl.lua" <<'EOF'
function ddl()
  return [[CREATE TABLE IF NOT EXISTS t (id UInt32, name String) ENGINE = MergeTree() ORDER BY id]]
end
function transform(e)
  return { id = e.after.id, name = e.after.name }
end
EOF

run() { # GROUP TOPIC ARGS...: cdcpipe --once; exit status in $rc, stderr in $RUN/stderr
  local group=$1 topic=$2
  shift 2
  rc=0
  "$BIN" --once -b "$KAFKA_BROKERS" -t "$topic" -g "$group" --clickhouse "$CLICKHOUSE_URL" \
    --database "$DB" --table t "$@" "$RUN/dl.lua" 2>"$RUN/stderr" || rc=$?
}
consumes_nothing() { # GROUP TOPIC ARGS...
  run "$@"
  assert_eq "$1: a second run exits 0" 0 "$rc"
  assert_contains "$1: everything was committed, dead letters included" "cdcpipe: consumed=0 " "$(cat "$RUN/stderr")"
}
# ---- a rejected row whose record was deleted from the topic before it could be read again
TOPIC="dlgone_$ID"
topic_create "$TOPIC" 1
printf 'bad\t{"op":"c","after":{"id":"not a number","name":"bad"}}\ngood\t{"op":"c","after":{"id":2,"name":"two"}}\n' >"$RUN/gone.tsv"
produce "$TOPIC" "$RUN/gone.tsv"
"$BIN" -b "$KAFKA_BROKERS" -t "$TOPIC" -g "g3_$ID" --clickhouse "$CLICKHOUSE_URL" --database "$DB" --table t \
  --batch-ms 3600000 --stats-interval 1 "$RUN/dl.lua" 2>"$RUN/gone.log" &
pid=$!
trap 'kill -9 $pid 2>/dev/null || true' EXIT
wait_for "both events to be batched" 60 grep -q "progress: consumed=2 " "$RUN/gone.log"
"$SRC/scripts/services.sh" delete-records "$(dirname "$SERVICES_ENV")" "$TOPIC" 0 2 2>"$RUN/delete.log" ||
  fail "delete-records: $(cat "$RUN/delete.log")"
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
trap - EXIT
assert_eq "record gone before its dead letter: the run ends with exit 0" 0 "$rc"
assert_contains "the dead letter says why it has no payload" \
  "[0] offset 0: clickhouse error: insert into t: ClickHouse answered HTTP 500: Code: " "$(cat "$RUN/gone.log")"
assert_contains "  ... and that the record is gone" \
  "(the record itself could not be read again: cannot read $TOPIC [0] offset 0 again: it is no longer in the topic" "$(cat "$RUN/gone.log")"
dlq=$(kcat -C -b "$KAFKA_BROKERS" -t "$TOPIC.dlq" -o beginning -e -q -f '%K|%S|%h\n')
assert_contains "the dead letter: no key or value, where the record was" \
  "-1|-1|cdcpipe.source.topic=$TOPIC,cdcpipe.source.partition=0,cdcpipe.source.offset=0,cdcpipe.stage=clickhouse,cdcpipe.reason=" "$dlq"
assert_eq "the good row of the same batch is inserted" "2	two" \
  "$(ch "SELECT id, name FROM $DB.t WHERE id = 2 FORMAT TabSeparated")"
consumes_nothing "g3_$ID" "$TOPIC"

ch "DROP DATABASE $DB" >/dev/null
finish
