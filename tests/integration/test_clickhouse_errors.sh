#!/usr/bin/env bash
# test_clickhouse_errors.sh — ClickHouse as users meet it: authentication with a password (in
# the URL and in CDCPIPE_CLICKHOUSE_USER/_PASSWORD), a wrong password (exit 1, a message that
# says what to check, the password never printed), and an insert ClickHouse rejects (exit 1 with
# the table and the server's Code, nothing committed, so the events are inserted once the table
# is fixed).
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

# A table whose id column cannot hold the rows: ClickHouse rejects the insert.
ch "CREATE TABLE $DB.strict (id Date, name String) ENGINE = MergeTree() ORDER BY tuple()" >/dev/null
printf 'function transform(e) return { id = "not a date", name = e.after.name } end\n' >"$RUN/strict.lua"
rc=0
"$BIN" --once -b "$KAFKA_BROKERS" -t "$TOPIC" -g "g4_$ID" --database "$DB" --table strict \
  --clickhouse "$CLICKHOUSE_URL" "$RUN/strict.lua" 2>"$RUN/stderr" || rc=$?
assert_eq "rejected insert: exit 1" 1 "$rc"
assert_contains "rejected insert: names the table and the server's code" "insert into strict: ClickHouse answered HTTP" "$(cat "$RUN/stderr")"
assert_contains "rejected insert: server code shown" "Code: " "$(cat "$RUN/stderr")"
ch "DROP TABLE $DB.strict" >/dev/null
ch "CREATE TABLE $DB.strict (id String, name String) ENGINE = MergeTree() ORDER BY tuple()" >/dev/null
rc=0
"$BIN" --once -b "$KAFKA_BROKERS" -t "$TOPIC" -g "g4_$ID" --database "$DB" --table strict \
  --clickhouse "$CLICKHOUSE_URL" "$RUN/strict.lua" 2>"$RUN/stderr" || rc=$?
assert_eq "after fixing the table: exit 0" 0 "$rc"
assert_eq "after fixing the table: the event was not lost" "not a date	one" \
  "$(ch "SELECT id, name FROM $DB.strict FORMAT TabSeparated")"
ch "DROP DATABASE $DB" >/dev/null
finish
