#!/usr/bin/env bash
# test_bad_input.sh — one topic mixing 22 kinds of bad input with good events, tombstones and
# filtered events (faults_bad_input.py builds the stream, faults_bad.lua is the pipeline): one
# `cdcpipe --once` run inserts exactly the good rows, dead-letters every bad event once — to the
# JSONL file and to the Kafka topic <topic>.dlq — at the right stage with a reason that names
# the problem and with the original source offset, key and value, and its summary reconciles:
# consumed = tombstones + filtered + dead_lettered + events_inserted, each number exact.
# The stream goes through twice: with --format json, so that ClickHouse itself sees (and
# rejects) ch_reject's row and the clickhouse stage is part of the mix; and with the default
# format (auto: RowBinary), where the encoder refuses ch_reject's text for UInt32 and nan's NaN
# for Float64 before any request, as lua-stage dead letters naming column, type and value.
. "$(dirname "$0")/lib.sh"

TOPIC="bad_$ID"
HERE="$SRC/tests/integration"
ch_db_create
topic_create "$TOPIC" 1
python3 "$HERE/faults_bad_input.py" produce "$TOPIC" "$KAFKA_BROKERS" "$RUN/manifest.json"

# kind → stage and a fragment its reason must contain
declare -A STAGE=(
  [truncated]=decode [not_json]=decode [bad_utf8]=decode [utf8_surrogate]=decode [array]=decode [string]=decode
  [empty]=decode [not_debezium]=decode [bad_op]=decode [oversized]=decode [deep]=decode
  [deep_schema]=decode [big_key]=decode
  [lua_error]=lua [return_string]=lua [endless]=lua [memory]=lua [nan]=lua
  [nul_key]=lua [wide]=lua [long_column]=lua
  [ch_reject]=clickhouse
)
declare -A REASON=(
  [truncated]="invalid JSON" [not_json]="invalid JSON" [bad_utf8]="not valid UTF-8"
  [utf8_surrogate]="not valid UTF-8"
  [array]="not an object" [string]="not an object" [empty]="empty value"
  [not_debezium]='no "op" field' [bad_op]='"op" is "x"'
  [oversized]="larger than --max-event-bytes" [deep]="nesting deeper"
  [lua_error]="deliberate failure for event 108" [return_string]="it returned a string"
  [endless]="budget" [memory]="out of memory" [nan]="NaN" [ch_reject]="Code: "
  [deep_schema]="nesting deeper than 128 levels (inside the envelope's \"schema\")"
  [big_key]="key of 12026 bytes is larger than --max-event-bytes 10000 (the limit applies to the key"
  [nul_key]='row for table good: column name "na\x00me" holds a NUL byte'
  [wide]="row for table good has more than 1000 columns (the limit per row): column 1001 is"
  [long_column]="row for table good: column name \"nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn...\" is 300 bytes, longer than the limit of 256 bytes"
)
KINDS=(truncated not_json bad_utf8 utf8_surrogate array string empty not_debezium bad_op oversized deep
  deep_schema big_key lua_error return_string endless memory nan nul_key wide long_column ch_reject)
GOOD=13 TOMBSTONES=3 FILTERED=2 BAD=${#KINDS[@]}
CONSUMED=$((GOOD + TOMBSTONES + FILTERED + BAD))

# run_once GROUP DATABASE ARGS...: one `cdcpipe --once` over the stream; exit status in $rc
run_once() {
  local group=$1 db=$2
  shift 2
  rc=0
  "$BIN" --once -b "$KAFKA_BROKERS" -t "$TOPIC" -g "$group" --clickhouse "$CLICKHOUSE_URL" \
    --database "$db" --table good --max-event-bytes 10000 --lua-instructions 100000 \
    --lua-memory-mb 16 "$@" "$HERE/faults_bad.lua" || rc=$?
}
expected_rows=$(for ((i = 1; i <= GOOD; i++)); do printf '%d\tgood-%d\t%d.5\n' "$i" "$i" "$i"; done)
check_run() { # WHAT DATABASE STDERR
  assert_eq "$1: cdcpipe --once exits 0 over bad input" 0 "$rc"
  assert_contains "$1: the summary reconciles, each number exact" \
    "cdcpipe: consumed=$CONSUMED tombstones=$TOMBSTONES filtered=$FILTERED dead_lettered=$BAD events_inserted=$GOOD rows_inserted=$GOOD " \
    "$(cat "$3")"
  assert_eq "$1: every good row inserted, exactly once" "$expected_rows" \
    "$(ch "SELECT id, name, score FROM $2.good ORDER BY id FORMAT TabSeparated")"
}

# --format json: ch_reject's row reaches ClickHouse, which rejects it (the clickhouse stage).
run_once "g_$ID" "$DB" --format json --dlq-file "$RUN/dlq.jsonl" 2>"$RUN/stderr"
check_run "--format json" "$DB" "$RUN/stderr"

# check_sink WHAT LISTING: LISTING has one line per dead letter "kind stage origin code reason"
check_sink() {
  local what=$1 listing=$2 kind stage origin code reason
  assert_eq "$what: one dead letter per bad event" "$(printf '%s\n' "${KINDS[@]}" | sort)" \
    "$(cut -f1 <<<"$listing" | sort)"
  while IFS=$'\t' read -r kind stage origin code reason; do
    assert_eq "$what: $kind at stage ${STAGE[$kind]}" "${STAGE[$kind]}" "$stage"
    assert_contains "$what: $kind reason names the problem (${REASON[$kind]})" "${REASON[$kind]}" "$reason"
    assert_eq "$what: $kind keeps its source topic/partition/offset, key and value" same "$origin"
    [[ $kind != lua_error ]] ||
      assert_contains "$what: the Lua error comes with its traceback" "stack traceback:" "$reason"
    if [[ ${STAGE[$kind]} == clickhouse ]]; then
      [[ $code =~ ^[0-9]+$ && $code != 0 ]] || fail "$what: ch_reject carries no ClickHouse code ($code)"
      pass "$what: ch_reject carries ClickHouse code $code"
    else
      assert_eq "$what: $kind carries no ClickHouse code" - "$code"
    fi
  done <<<"$listing"
}

check_sink "dead-letter file" "$(python3 "$HERE/faults_bad_input.py" file "$RUN/manifest.json" "$TOPIC" "$RUN/dlq.jsonl")"

kcat -C -b "$KAFKA_BROKERS" -t "$TOPIC.dlq" -o beginning -e -q -J >"$RUN/dlq-topic.json"
check_sink "dead-letter topic $TOPIC.dlq" "$(python3 "$HERE/faults_bad_input.py" topic "$RUN/manifest.json" "$TOPIC" "$RUN/dlq-topic.json")"

# Nothing is left uncommitted: the group consumes nothing more.
run_once "g_$ID" "$DB" --format json --dlq-file "$RUN/dlq.jsonl" 2>"$RUN/again.log"
assert_eq "a second run exits 0" 0 "$rc"
assert_contains "everything was committed, dead letters included" "cdcpipe: consumed=0 " "$(cat "$RUN/again.log")"

# The default format (auto): the good table's types are all covered, so rows go as RowBinary and
# the encoder refuses ch_reject's and nan's values itself, before any request: lua-stage dead
# letters without a ClickHouse code, naming the column, its type and the value; ClickHouse never
# answers with an error. (nul_key, wide and long_column are refused for their key the table has
# no column for.)
STAGE[ch_reject]=lua
REASON[ch_reject]='row for table good: column "id" (UInt32): cannot store "not a number"'
REASON[nan]='row for table good: column "score" (Float64): cannot store nan: not a finite number'
# a key the table has no column for is refused first (before the JSON writer's name limits)
REASON[nul_key]='table good has no column na\x00me: leave the key out of the row or add the column'
REASON[wide]='table good has no column c'
REASON[long_column]="table good has no column nnnnnnnnnn"
ch "CREATE DATABASE ${DB}_auto" >/dev/null
run_once "g_auto_$ID" "${DB}_auto" --dlq-topic none --dlq-file "$RUN/auto.jsonl" 2>"$RUN/auto.log"
check_run "default format" "${DB}_auto" "$RUN/auto.log"
assert_contains "default format: the table goes as RowBinary" "table good goes as RowBinary" "$(cat "$RUN/auto.log")"
assert_not_contains "default format: no request was rejected by ClickHouse" "ClickHouse answered" "$(cat "$RUN/auto.log")"
check_sink "default format, dead-letter file" "$(python3 "$HERE/faults_bad_input.py" file "$RUN/manifest.json" "$TOPIC" "$RUN/auto.jsonl")"
ch "DROP DATABASE ${DB}_auto" >/dev/null
ch "DROP DATABASE $DB" >/dev/null
finish
