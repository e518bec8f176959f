#!/usr/bin/env bash
# test_clickhouse_errors.sh — ClickHouse as users meet it: authentication with a password (in
# the URL and in CDCPIPE_CLICKHOUSE_USER/_PASSWORD), a wrong password (exit 1, a message that
# says what to check, the password never printed), a row ClickHouse rejects (dead-lettered with
# its original key/value and the server's code; the run goes on), a missing table (exit 1,
# nothing committed, the event inserted once the table exists); a password without a user (sent
# for user `default`, not dropped); URLs that cannot be used safely (exit 2, the secret never
# printed); secrets in the URL's query never logged; a CA file that cannot be used (exit 2 at
# start, or exit 1 at once: not retried as a network error); and the warning when a password
# would travel over http:// to another machine.
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
assert_not_contains "password in the URL to this machine: no warning" "unencrypted" "$(cat "$RUN/stderr")"

rc=0
CDCPIPE_CLICKHOUSE_USER=tester CDCPIPE_CLICKHOUSE_PASSWORD=secret "$BIN" --once -b "$KAFKA_BROKERS" \
  -t "$TOPIC" -g "g3_$ID" --database "$DB" --clickhouse "$CLICKHOUSE_URL" "$SRC/pipeline.lua" \
  2>"$RUN/stderr" || rc=$?
assert_eq "password from the environment: exit 0" 0 "$rc"
assert_eq "password from the environment: row inserted" 2 "$(ch "SELECT count() FROM $DB.changes")"

# A table whose id column cannot hold the row: ClickHouse rejects the data (Code 6/27/38/41,
# HTTP 500 on 18.16): the event goes to the dead-letter topic, the run goes on and exits 0.
# --format json: with the default (auto, RowBinary) the encoder refuses the value before
# ClickHouse sees it, asserted just below.
ch "CREATE TABLE $DB.strict (id Date, name String) ENGINE = MergeTree() ORDER BY tuple()" >/dev/null
printf 'function transform(e) return { id = "not a date", name = e.after.name } end\n' >"$RUN/strict.lua"
rc=0
"$BIN" --once -b "$KAFKA_BROKERS" -t "$TOPIC" -g "g4_$ID" --database "$DB" --table strict \
  --format json --clickhouse "$CLICKHOUSE_URL" "$RUN/strict.lua" 2>"$RUN/stderr" || rc=$?
assert_eq "rejected row: exit 0" 0 "$rc"
assert_contains "rejected row: counted as dead-lettered" "dead_lettered=1 events_inserted=0" "$(cat "$RUN/stderr")"
assert_contains "rejected row: log names the table and the server's code" "clickhouse error: insert into strict: ClickHouse answered HTTP 500: Code: " "$(cat "$RUN/stderr")"
dlq=$(kcat -C -b "$KAFKA_BROKERS" -t "$TOPIC.dlq" -o beginning -e -q -f '%k|%s|%h\n')
assert_contains "rejected row: dead letter keeps key and value" '{"id":1}|{"op":"u","after":{"id":1,"name":"one","created_at":1000000}}|' "$dlq"
assert_contains "rejected row: dead letter says where it came from" "cdcpipe.source.topic=$TOPIC,cdcpipe.source.partition=0,cdcpipe.source.offset=0,cdcpipe.stage=clickhouse" "$dlq"
assert_contains "rejected row: dead letter has the ClickHouse code" "cdcpipe.clickhouse.code=" "$dlq"

# The same row with the default format: the RowBinary encoder refuses it without a request, a
# lua-stage dead letter naming the column, its type and the value, without a ClickHouse code.
rc=0
"$BIN" --once -b "$KAFKA_BROKERS" -t "$TOPIC" -g "g4b_$ID" --database "$DB" --table strict \
  --dlq-topic none --dlq-file "$RUN/strict.jsonl" --clickhouse "$CLICKHOUSE_URL" "$RUN/strict.lua" \
  2>"$RUN/stderr" || rc=$?
assert_eq "refused by the encoder: exit 0" 0 "$rc"
assert_contains "  ... counted as dead-lettered" "dead_lettered=1 events_inserted=0" "$(cat "$RUN/stderr")"
assert_contains "  ... logged with column, type and value" \
  'offset 0: lua error: row for table strict: column "id" (Date): cannot store "not a date": not a date (YYYY-MM-DD) (dead-lettered)' \
  "$(cat "$RUN/stderr")"
assert_not_contains "  ... ClickHouse never saw it" "ClickHouse answered" "$(cat "$RUN/stderr")"
assert_eq "  ... a lua-stage dead letter without a ClickHouse code" \
  'lua None row for table strict: column "id" (Date): cannot store "not a date": not a date (YYYY-MM-DD)' \
  "$(python3 -c 'import json,sys; d=json.loads(open(sys.argv[1]).readline()); print(d["stage"], d.get("clickhouse_code"), d["reason"])' "$RUN/strict.jsonl")"

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
# A password without a user is meant for user `default` (which has none here): it is sent, and
# refused, instead of silently connecting without it.
rc=0
CDCPIPE_CLICKHOUSE_PASSWORD=only-a-password "$BIN" --once -b "$KAFKA_BROKERS" -t "$TOPIC" \
  -g "g6_$ID" --database "$DB" --clickhouse "$CLICKHOUSE_URL" "$SRC/pipeline.lua" \
  2>"$RUN/stderr" || rc=$?
assert_eq "password without a user: exit 1" 1 "$rc"
assert_contains "password without a user: sent for user default, refused" "check the ClickHouse user and password" "$(cat "$RUN/stderr")"
assert_not_contains "password without a user: never printed" "only-a-password" "$(cat "$RUN/stderr")"

# URLs that cannot be used safely are refused at start, naming the setting, the secret unprinted.
run "http://tester:pa/ss@$hostport" -g "g7_$ID"
assert_eq "a '/' in the URL's password: exit 2" 2 "$rc"
assert_contains "  ... the URL does not parse, says how to write it" "the ClickHouse URL (--clickhouse, CDCPIPE_CLICKHOUSE_URL or clickhouse.url) does not parse" "$(cat "$RUN/stderr")"
assert_not_contains "  ... and the password is not printed" "pa/ss" "$(cat "$RUN/stderr")"
run "http://tester:secret@$hostport/#frag" -g "g7_$ID"
assert_eq "a #fragment: exit 2" 2 "$rc"
assert_contains "  ... saying so" "has a #fragment" "$(cat "$RUN/stderr")"
assert_not_contains "  ... and the password is not printed" ":secret" "$(cat "$RUN/stderr")"

# A password in the URL's query string works but is never printed: the URL is logged as
# scheme://host:port/path only (here while an unreachable server is retried).
printf 'function transform(e) return { id = e.after.id } end\n' >"$RUN/noddl.lua"
"$BIN" --once -b "$KAFKA_BROKERS" -t "$TOPIC" -g "g8_$ID" --database "$DB" --shutdown-timeout 0 \
  --clickhouse "http://127.0.0.1:1/?user=tester&password=s3cret-in-query" "$RUN/noddl.lua" \
  2>"$RUN/stderr" &
pid=$!
wait_for "a retried insert" 30 grep -q "retrying in" "$RUN/stderr"
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
assert_eq "unreachable ClickHouse, stopped: exit 1" 1 "$rc"
assert_contains "the URL is logged without its query" "cannot reach ClickHouse at http://127.0.0.1:1/: " "$(cat "$RUN/stderr")"
assert_not_contains "  ... the password in the query never" "s3cret-in-query" "$(cat "$RUN/stderr")"

# The CA file is a setting: read at start (exit 2), and one libcurl cannot use stops the run at
# once instead of being retried as a network error.
run "https://$hostport" -g "g9_$ID" --clickhouse-ca "$RUN/no-such-ca.pem"
assert_eq "a missing CA file: exit 2" 2 "$rc"
assert_contains "  ... naming the setting" "cannot read the ClickHouse CA file $RUN/no-such-ca.pem (--clickhouse-ca, CDCPIPE_CLICKHOUSE_CA or clickhouse.ca): No such file or directory" "$(cat "$RUN/stderr")"
printf -- '-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n' >"$RUN/bad-ca.pem"
started=$SECONDS
run "https://$hostport" -g "g9_$ID" --clickhouse-ca "$RUN/bad-ca.pem"
assert_eq "a CA file libcurl cannot load: exit 1" 1 "$rc"
((SECONDS - started < 10)) || fail "a CA file libcurl cannot load was retried for $((SECONDS - started)) s"
pass "  ... at once, not retried"
assert_contains "  ... saying what to check" "(check the URL --clickhouse and, for https://, the CA file --clickhouse-ca)" "$(cat "$RUN/stderr")"

# A password over http:// to another machine: a warning at start (the address is a documentation
# address nobody answers on; the run is stopped once the warning is out).
"$BIN" --once -b "$KAFKA_BROKERS" -t "$TOPIC" -g "g10_$ID" --database "$DB" --shutdown-timeout 0 \
  --clickhouse "http://tester:secret@192.0.2.1:8123" "$SRC/pipeline.lua" 2>"$RUN/stderr" &
pid=$!
wait_for "the warning" 30 grep -q "unencrypted" "$RUN/stderr"
kill -TERM "$pid"
wait "$pid" || true
assert_contains "password over http:// to another host: warned" "the ClickHouse password goes unencrypted over http:// to http://192.0.2.1:8123/, which is not this machine: anyone on the network path can read it; use an https:// URL (--clickhouse)" "$(cat "$RUN/stderr")"
assert_not_contains "  ... the password not printed" ":secret" "$(cat "$RUN/stderr")"
ch "DROP DATABASE $DB" >/dev/null
finish
