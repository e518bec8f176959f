#!/usr/bin/env bash
# test_clickhouse_errors.sh — ClickHouse as users meet it: authentication with a password (in
# the URL and in CDCPIPE_CLICKHOUSE_USER/_PASSWORD), a wrong password (exit 1, a message that
# says what to check, the password never printed), a row ClickHouse rejects (dead-lettered with
# its original key/value and the server's code; the run goes on), and a missing table (exit 1,
# nothing committed, the event inserted once the table exists).
. "$(dirname "$0")/lib.sh"

TOPIC="cherr_$ID"
ch_db_create
printf '{"id":1}\t{"op":"u","after":{"id":1,"name":"one","created_at":1000000}}\n' >"$RUN/a.tsv"
produce "$TOPIC" "$RUN/a.tsv"
hostport=${CLICKHOUSE_URL#http://}

run() { # URL ARGS... → exit status in $rc, stderr in $RUN/stderr
  rc=0
  "$BIN" --once -b "$KAFKA_BROKERS" -t "$TOPIC" --database "$DB" --clickhouse "$@" \
    "$SRC/pipeline.lua" 2>"$RUN/stderr" || rc=$?
}

run "http://tester:wrong-secret@$hostport" -g "g1_$ID"
assert_eq "wrong password: exit 1" 1 "$rc"
assert_contains "wrong password: says what to check" "check the ClickHouse user and password" "$(cat "$RUN/stderr")"
assert_not_contains "wrong password: never printed" "wrong-secret" "$(cat "$RUN/stderr")"

run "http://tester:secret@$hostport" -g "g2_$ID"
assert_eq "password in the URL: exit 0" 0 "$rc"
assert_eq "password in the URL: row inserted" 1 "$(ch "SELECT count() FROM $DB.changes")"

rc=0
CDCPIPE_CLICKHOUSE_USER=tester CDCPIPE_CLICKHOUSE_PASSWORD=secret "$BIN" --once -b "$KAFKA_BROKERS" \
  -t "$TOPIC" -g "g3_$ID" --database "$DB" --clickhouse "$CLICKHOUSE_URL" "$SRC/pipeline.lua" \
  2>"$RUN/stderr" || rc=$?
assert_eq "password from the environment: exit 0" 0 "$rc"
assert_eq "password from the environment: row inserted" 2 "$(ch "SELECT count() FROM $DB.changes")"

# A table whose id column cannot hold the row: ClickHouse rejects the data (Code 6/27/38/41,
# HTTP 500 on 18.16): the event goes to the dead-letter topic, the run goes on and exits 0.
ch "CREATE TABLE $DB.strict (id Date, name String) ENGINE = MergeTree() ORDER BY tuple()" >/dev/null
printf 'function transform(e) return { id = "not a date", name = e.after.name } end\n' >"$RUN/strict.lua"
rc=0
"$BIN" --once -b "$KAFKA_BROKERS" -t "$TOPIC" -g "g4_$ID" --database "$DB" --table strict \
  --clickhouse "$CLICKHOUSE_URL" "$RUN/strict.lua" 2>"$RUN/stderr" || rc=$?
assert_eq "rejected row: exit 0" 0 "$rc"
assert_contains "rejected row: counted as dead-lettered" "dead_lettered=1 events_inserted=0" "$(cat "$RUN/stderr")"
assert_contains "rejected row: log names the table and the server's code" "clickhouse error: insert into strict: ClickHouse answered HTTP 500: Code: " "$(cat "$RUN/stderr")"
dlq=$(kcat -C -b "$KAFKA_BROKERS" -t "$TOPIC.dlq" -o beginning -e -q -f '%k|%s|%h\n')
assert_contains "rejected row: dead letter keeps key and value" '{"id":1}|{"op":"u","after":{"id":1,"name":"one","created_at":1000000}}|' "$dlq"
assert_contains "rejected row: dead letter says where it came from" "cdcpipe.source.topic=$TOPIC,cdcpipe.source.partition=0,cdcpipe.source.offset=0,cdcpipe.stage=clickhouse" "$dlq"
assert_contains "rejected row: dead letter has the ClickHouse code" "cdcpipe.clickhouse.code=" "$dlq"

# A table that does not exist is the deployment's fault: exit 1, nothing committed, and the
# event is inserted once the table is there.
printf 'function transform(e) return { id = e.after.id, name = e.after.name } end\n' >"$RUN/missing.lua"
run_missing() {
  rc=0
  "$BIN" --once -b "$KAFKA_BROKERS" -t "$TOPIC" -g "g5_$ID" --database "$DB" --table missing \
    --clickhouse "$CLICKHOUSE_URL" "$RUN/missing.lua" 2>"$RUN/stderr" || rc=$?
}
run_missing
assert_eq "missing table: exit 1" 1 "$rc"
assert_contains "missing table: the server's message" "Code: 60" "$(cat "$RUN/stderr")"
ch "CREATE TABLE $DB.missing (id UInt32, name String) ENGINE = MergeTree() ORDER BY id" >/dev/null
run_missing
assert_eq "after creating the table: exit 0" 0 "$rc"
assert_eq "after creating the table: the event was not lost" "1	one" \
  "$(ch "SELECT id, name FROM $DB.missing FORMAT TabSeparated")"
ch "DROP DATABASE $DB" >/dev/null
finish
