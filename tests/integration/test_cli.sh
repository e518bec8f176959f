#!/usr/bin/env bash
# test_cli.sh — what a user sees at the command line: --help/--version, exit status 2 with a
# message naming the bad option, file and line, setting or value; `cdcpipe check`; `cdcpipe test`
# output; --dry-run against a real Kafka topic (no ClickHouse needed, nothing committed); the
# .env file and environment variables taking effect.
. "$(dirname "$0")/lib.sh"

# expect_exit CODE OUTFILE CMD...: runs CMD capturing stdout+stderr into OUTFILE.
expect_exit() {
  local code=$1 out=$2 rc=0
  shift 2
  "$@" >"$out" 2>&1 || rc=$?
  [[ $rc == "$code" ]] || fail "expected exit $code, got $rc from: $* — output: $(cat "$out")"
}

expect_exit 0 "$RUN/out" "$BIN" --help
assert_contains "--help prints usage" "Usage: cdcpipe [options] pipeline.lua" "$(cat "$RUN/out")"
expect_exit 0 "$RUN/out" "$BIN" --version
assert_contains "--version" "cdcpipe " "$(cat "$RUN/out")"

expect_exit 2 "$RUN/out" "$BIN" --bogus "$SRC/pipeline.lua"
assert_contains "unknown option is named" "unknown option --bogus" "$(cat "$RUN/out")"
# A bad argument is shown only up to its '=': what follows may be a password.
expect_exit 2 "$RUN/out" "$BIN" --clickhouse-passwd=S3cret "$SRC/pipeline.lua"
assert_eq "misspelled flag: named without its value" \
  "cdcpipe: unknown option --clickhouse-passwd (see cdcpipe --help)" "$(cat "$RUN/out")"
expect_exit 2 "$RUN/out" "$BIN" -X sasl.password:S3cret "$SRC/pipeline.lua"
assert_eq "-X name:value: the name without the value" \
  "cdcpipe: -X sasl.password…: expected -X name=value (a librdkafka property)" "$(cat "$RUN/out")"
expect_exit 2 "$RUN/out" "$BIN" --clickhouse-password S3cret -vZq "$SRC/pipeline.lua"
assert_eq "a bad short option in a group: the option, not the argument before it" \
  "cdcpipe: unknown option -Z (see cdcpipe --help)" "$(cat "$RUN/out")"
expect_exit 2 "$RUN/out" "$BIN" --clickhouse-password-file "$RUN/no-such-file" -t x "$SRC/pipeline.lua"
assert_eq "unreadable password file: exit 2 naming it" \
  "cdcpipe: --clickhouse-password-file: cannot read the password file $RUN/no-such-file: No such file or directory" \
  "$(cat "$RUN/out")"
expect_exit 2 "$RUN/out" "$BIN"
assert_contains "missing script" "expected a pipeline script" "$(cat "$RUN/out")"
expect_exit 2 "$RUN/out" "$BIN" "$RUN/nope.lua"
assert_contains "unreadable script is named" "nope.lua" "$(cat "$RUN/out")"

printf 'local x = 1\n\nfunction transform(e, m)\n  return {id = }\nend\n' >"$RUN/syntax.lua"
expect_exit 2 "$RUN/out" "$BIN" check "$RUN/syntax.lua"
assert_contains "syntax error names file and line" "syntax.lua:4:" "$(cat "$RUN/out")"
printf 'function transform() end\nerror("boom at load")\n' >"$RUN/raises.lua"
expect_exit 2 "$RUN/out" "$BIN" -t x "$RUN/raises.lua"
assert_contains "error while loading names file and line" "raises.lua:2: boom at load" "$(cat "$RUN/out")"
printf 'config = {}\n' >"$RUN/notransform.lua"
expect_exit 2 "$RUN/out" "$BIN" check "$RUN/notransform.lua"
assert_contains "missing transform" "does not define a global function transform(event, meta)" "$(cat "$RUN/out")"
printf 'config = { kafka = { brokres = "x" } }\nfunction transform() end\n' >"$RUN/typo.lua"
expect_exit 2 "$RUN/out" "$BIN" check "$RUN/typo.lua"
assert_contains "unknown config key is named" "config.kafka.brokres is not a known setting" "$(cat "$RUN/out")"

expect_exit 2 "$RUN/out" "$BIN" --batch-rows 2000000 "$SRC/pipeline.lua"
assert_contains "batch rows capped at 1,000,000" "--batch-rows: \"2000000\" is not a whole number from 1 to 1000000" "$(cat "$RUN/out")"
expect_exit 2 "$RUN/out" env CDCPIPE_BATCH_MS=soon "$BIN" "$SRC/pipeline.lua"
assert_contains "bad environment value is named" "CDCPIPE_BATCH_MS: \"soon\"" "$(cat "$RUN/out")"
expect_exit 2 "$RUN/out" "$BIN" --from yesterday "$SRC/pipeline.lua"
assert_contains "bad --from" "--from \"yesterday\" is not a start position" "$(cat "$RUN/out")"
printf 'function transform() end\n' >"$RUN/notopic.lua"
expect_exit 2 "$RUN/out" "$BIN" "$RUN/notopic.lua"
assert_contains "no topic" "no Kafka topic to consume" "$(cat "$RUN/out")"
printf '# settings\nCDCPIPE_GROUP=ok\nCDCPIPE_BATCH_ROWZ=5\n' >"$RUN/bad.env"
expect_exit 2 "$RUN/out" "$BIN" --env-file "$RUN/bad.env" "$SRC/pipeline.lua"
assert_contains "unknown .env name with file and line" "bad.env:3: CDCPIPE_BATCH_ROWZ is not a known setting" "$(cat "$RUN/out")"

expect_exit 0 "$RUN/out" "$BIN" check "$SRC/pipeline.lua"
assert_contains "check prints the DDL" "CREATE TABLE IF NOT EXISTS changes (" "$(cat "$RUN/out")"

# .env lines are read whole: a value past 4 KiB does not spill into a setting of its own;
# `export` with a tab, inline comments; an unclosed quote names file and line, not the value.
{
  printf 'export\tCDCPIPE_DATABASE=analytics # where rows go\n'
  printf 'CDCPIPE_GROUP=%s%s\n' "$(printf 'g%.0s' $(seq 4081))" 'CDCPIPE_TABLE=injected'
} >"$RUN/long.env"
expect_exit 0 "$RUN/out" "$BIN" check --env-file "$RUN/long.env" "$SRC/pipeline.lua"
assert_contains "a long .env value stays one value; export<TAB> and # comments" \
  "rows go to analytics.changes;" "$(head -1 "$RUN/out")"
printf 'CDCPIPE_GROUP=g\nCDCPIPE_CLICKHOUSE_PASSWORD="S3cret\n' >"$RUN/quote.env"
expect_exit 2 "$RUN/out" "$BIN" check --env-file "$RUN/quote.env" "$SRC/pipeline.lua"
assert_eq "an unclosed quote: file and line, not the value" \
  "cdcpipe: $RUN/quote.env:2: CDCPIPE_CLICKHOUSE_PASSWORD: the value opens a double quote that the line never closes (close it at the end of the value)" \
  "$(cat "$RUN/out")"
printf 'CDCPIPE_CLICKHOUSE_PASSWORD=S3cret\n' >"$RUN/secret.env"
chmod 644 "$RUN/secret.env"
expect_exit 0 "$RUN/out" "$BIN" check --env-file "$RUN/secret.env" "$SRC/pipeline.lua"
assert_contains "a .env with a password that others may read: a warning saying how to fix it" \
  "warn  $RUN/secret.env holds CDCPIPE_CLICKHOUSE_PASSWORD but group or others may read it (mode 0644): chmod 600 $RUN/secret.env" \
  "$(cat "$RUN/out")"
chmod 600 "$RUN/secret.env"
expect_exit 0 "$RUN/out" "$BIN" check --env-file "$RUN/secret.env" "$SRC/pipeline.lua"
assert_not_contains "mode 600: no warning" "warn" "$(cat "$RUN/out")"

# cdcpipe test: one event per line, both layouts; rows as "table TAB json" with sorted keys.
cat >"$RUN/events.jsonl" <<'JSON'
{"op":"u","before":null,"after":{"id":7,"name":"Zoë \"z\"\tx","created_at":1700000000123456},"source":{"table":"my_table"}}
{"op":"c","before":null,"after":{"id":8,"name":"new","created_at":1}}

{"schema":{"type":"struct"},"payload":{"op":"u","after":{"id":4294967295,"name":"","created_at":951782400000000}}}
JSON
expect_exit 0 "$RUN/out" "$BIN" test "$SRC/pipeline.lua" "$RUN/events.jsonl"
assert_eq "cdcpipe test prints the rows" \
  "$(printf '%s\t%s\n' changes '{"created_at":"2023-11-14 22:13:20","id":7,"name":"Zoë \"z\"\tx","op":"u"}' changes '{"created_at":"2000-02-29 00:00:00","id":4294967295,"name":"","op":"u"}' | sed 's/\t\([^{]\)/\\t\1/')" \
  "$(cat "$RUN/out")"
printf '{"op":"u","after":{"id":1,"name":"a","created_at":1}}\n{"op":"u", broken\n[1,2]\n' | {
  expect_exit 1 "$RUN/out" "$BIN" test "$SRC/pipeline.lua" -
}
assert_contains "cdcpipe test reports the bad line" "line 2: decode error: invalid JSON" "$(cat "$RUN/out")"
assert_contains "cdcpipe test reports a non-object" "line 3: decode error: value is JSON but not an object" "$(cat "$RUN/out")"
printf 'local cdc = require "cdcpipe"\nfunction transform(e)\n  return {x = cdc.datetime("not a date")}\nend\n' >"$RUN/luaerr.lua"
echo '{"op":"u"}' | { expect_exit 1 "$RUN/out" "$BIN" test "$RUN/luaerr.lua" -; }
assert_contains "Lua error with file, line and reason" "luaerr.lua:3: cdc.datetime: cannot parse \"not a date\"" "$(cat "$RUN/out")"

# Event data in an error reaches the terminal escaped: no control byte, one line per error.
printf 'function transform(e)\n  error("bad name " .. e.after.name)\nend\n' >"$RUN/names.lua"
printf '{"op":"u","after":{"name":"\\u001b]0;owned\\u0007\\u001b[2J\\nline 9: forged"}}\n' |
  { expect_exit 1 "$RUN/out" "$BIN" test "$RUN/names.lua" -; }
assert_contains "a Lua error quoting the event: control bytes escaped" \
  'bad name \x1b]0;owned\x07\x1b[2J|line 9: forged' "$(cat "$RUN/out")"
assert_eq "... and no control byte reaches the terminal" 0 "$(tr -d '\n' <"$RUN/out" | tr -cd '\000-\037\177' | wc -c)"

# --dry-run against real Kafka: no ClickHouse (a closed port), nothing committed, .env honoured.
TOPIC="cli_$ID"
cut -f1 "$RUN/events.jsonl" | grep . | sed 's/^/{"id":1}\t/' >"$RUN/records.tsv"
produce "$TOPIC" "$RUN/records.tsv"
printf 'CDCPIPE_TABLE=from_dotenv\nCDCPIPE_GROUP="g_%s"\n' "$ID" >"$RUN/.env"
for attempt in 1 2; do
  expect_exit 0 "$RUN/out" env CDCPIPE_BROKERS="$KAFKA_BROKERS" "$BIN" --dry-run --once -q \
    --clickhouse http://127.0.0.1:1 -t "$TOPIC" "$SRC/pipeline.lua"
  assert_eq "dry run $attempt prints rows to the .env table and commits nothing" \
    "$(printf '%s\t%s\n' from_dotenv '{"created_at":"2023-11-14 22:13:20","id":7,"name":"Zoë \"z\"\tx","op":"u"}' from_dotenv '{"created_at":"2000-02-29 00:00:00","id":4294967295,"name":"","op":"u"}' | sed 's/\t\([^{]\)/\\t\1/')
cdcpipe: consumed=3 tombstones=0 filtered=1 dead_lettered=0 events_inserted=2 rows_inserted=2 retries=0" \
    "$(sed 's/ seconds=.*//' "$RUN/out")"
done
# The ClickHouse password from a file (user tester, password secret): the file's text less its
# trailing newline is sent; a file with a wrong password fails authentication.
ch_db_create
printf 'secret\n' >"$RUN/ch-password"
chmod 600 "$RUN/ch-password"
expect_exit 0 "$RUN/out" env CDCPIPE_CLICKHOUSE_PASSWORD_FILE="$RUN/ch-password" "$BIN" --once -q \
  -b "$KAFKA_BROKERS" -t "$TOPIC" -g "pw_$ID" --clickhouse "$CLICKHOUSE_URL" --clickhouse-user tester \
  --database "$DB" --table changes "$SRC/pipeline.lua"
assert_eq "password file: the rows are inserted as tester" 2 "$(ch "SELECT count() FROM $DB.changes")"
printf 'wrong\n' >"$RUN/ch-password"
expect_exit 1 "$RUN/out" "$BIN" --once -q -b "$KAFKA_BROKERS" -t "$TOPIC" -g "pw2_$ID" \
  --clickhouse "$CLICKHOUSE_URL" --clickhouse-user tester --clickhouse-password-file "$RUN/ch-password" \
  --database "$DB" --table changes "$SRC/pipeline.lua"
assert_contains "password file with a wrong password: authentication fails" "check the ClickHouse user and password" "$(cat "$RUN/out")"
# --show prints rows that hold event data: escaped, the table's own lines kept.
SHOW_TOPIC="show_$ID"
printf '{"id":5}\t{"op":"u","after":{"id":5,"name":"\\u001b[31mred\\u001b[0m","created_at":1}}\n' >"$RUN/show.tsv"
produce "$SHOW_TOPIC" "$RUN/show.tsv"
expect_exit 0 "$RUN/out" "$BIN" --once -q -b "$KAFKA_BROKERS" -t "$SHOW_TOPIC" -g "show_$ID" \
  --clickhouse "$CLICKHOUSE_URL" --database "$DB" --table changes --show 5 "$SRC/pipeline.lua"
assert_contains "--show: the row, its escape sequence shown, not sent" '\x1b[31mred\x1b[0m' "$(cat "$RUN/out")"
assert_eq "--show: no control byte but newlines" 0 "$(tr -d '\n' <"$RUN/out" | tr -cd '\000-\037\177' | wc -c)"
ch "DROP DATABASE $DB" >/dev/null
finish
