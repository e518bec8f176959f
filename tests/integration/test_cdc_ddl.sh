#!/usr/bin/env bash
# test_cdc_ddl.sh — cdc.ddl and cdc.columns from transform, and no silent column loss:
#  1. the target table is created by the first event and each new key becomes a column before
#     its row is inserted (every value lands, in order, with --format auto and json, 1 and 4
#     workers, one topic of 4 partitions: several workers add the same column);
#  2. a statement ClickHouse refuses dead-letters its event with ClickHouse's message; the others
#     go on; the same for cdc.query (a SELECT from a table that does not exist), whose refusal a
#     script can also catch with pcall (the error text lands in the row, a later query answers);
#  3. a key the table has no column for is reported once per table and column (warning) and
#     counted (unknown_columns=) with --format json, and dead-letters the event with RowBinary;
#  4. a second run over the same events (restart) runs no statement again (ddl= absent).
. "$(dirname "$0")/lib.sh"

PIPELINE="$SRC/tests/integration/ddl_pipeline.lua"
event() { printf '{"id":%d}\t{"op":"c","after":{"id":%d%s}}\n' "$1" "$1" "$2"; }
run_case() { # NAME FORMAT WORKERS
  local topic="ddl_${ID}_$1" db="${DB}_$1"
  ch "CREATE DATABASE IF NOT EXISTS $db" >/dev/null
  topic_create "$topic" 4
  {
    for i in $(seq 1 40); do event "$i" ""; done
    for i in $(seq 41 80); do event "$i" ",\"color\":\"c$i\""; done
    event 81 ',"bad_sql":1'
    for i in $(seq 82 120); do event "$i" ",\"color\":\"c$i\",\"size\":$i"; done
    for i in $(seq 121 130); do event "$i" ",\"x_lost\":$i"; done
    event 131 ',"bad_query":1'
    event 132 ',"caught_query":1'
  } >"$RUN/$1.tsv"
  produce "$topic" "$RUN/$1.tsv"
  local args=(--once -t "$topic" -g "g_$ID" -b "$KAFKA_BROKERS" --clickhouse "$CLICKHOUSE_URL" --database "$db"
    --table items --format "$2" --workers "$3" --dlq-topic none --dlq-file "$RUN/$1.dlq" --stats-interval 0 "$PIPELINE")
  local rc=0
  "$BIN" "${args[@]}" 2>"$RUN/$1.log" || rc=$?
  assert_eq "$1: exits 0" 0 "$rc"
  assert_eq "$1: every value landed in the column added for it" "40	79	39	39" \
    "$(ch "SELECT countIf(color = ''), countIf(color = concat('c', toString(id))), countIf(size = toString(id)), countIf(color != '' AND size != '') FROM $db.items WHERE id <= 120")"
  assert_contains "$1: the refused statement dead-lettered its event" '"offset"' "$(cat "$RUN/$1.dlq")"
  assert_contains "$1: with ClickHouse's reason" 'cdc.ddl: ClickHouse refused \"ALTER TABLE items ADD COLUMN\"' "$(cat "$RUN/$1.dlq")"
  local dl; dl=$(grep '"offset"' "$RUN/$1.dlq" | grep 'no_such_table_ddl')
  assert_contains "$1: the refused cdc.query dead-lettered its event (a lua dead letter)" '"stage":"lua"' "$dl"
  assert_contains "$1: naming the statement" 'cdc.query: ClickHouse refused \"SELECT id FROM no_such_table_ddl\"' "$dl"
  assert_contains "$1: with ClickHouse's message (unknown table)" 'Code: 60' "$dl"
  assert_eq "$1: its event has no row; the caught refusal's event has" "0	1" \
    "$(ch "SELECT countIf(id = 131), countIf(id = 132) FROM $db.items")"
  local caught; caught=$(ch "SELECT query_error FROM $db.items WHERE id = 132")
  assert_contains "$1: pcall caught the refusal, naming the statement" 'cdc.query: ClickHouse refused "SELECT nonsense("' "$caught"
  assert_contains "$1: with ClickHouse's message (syntax error)" 'Code: 62' "$caught"
  assert_eq "$1: and the next cdc.query answered" "42" "$(ch "SELECT query_after FROM $db.items WHERE id = 132")"
  local log; log=$(cat "$RUN/$1.log")
  if [[ $2 == json ]]; then
    assert_contains "$1: the unknown key is reported" "table items has no column x_lost: ClickHouse drops its values" "$log"
    assert_eq "$1: once per worker at most" "ok" "$(grep -c "has no column x_lost" "$RUN/$1.log" | awk -v w="$3" '{print ($1 >= 1 && $1 <= w) ? "ok" : $1}')"
    assert_contains "$1: and counted" "unknown_columns=10" "$log"
    # 18.16 refuses a JSONEachRow row naming an unknown column; current servers skip the key
    assert_eq "$1: ClickHouse took the rows or refused them (dead letters)" "10" \
      "$(($(ch "SELECT count() FROM $db.items WHERE id > 120 AND id <= 130") + $(grep -c '"offset"' "$RUN/$1.dlq") - 2))"
  else
    assert_contains "$1: RowBinary refuses the unknown key (dead letters)" "dead_lettered=12" "$log"
  fi
  assert_contains "$1: the statements run are counted" " ddl=" "$log"
  # a restart over the same events: nothing to do, no statement runs
  rc=0
  "$BIN" "${args[@]/g_$ID/g2_$ID}" 2>"$RUN/$1.again.log" || rc=$?
  assert_eq "$1: a second run exits 0" 0 "$rc"
  assert_not_contains "$1: and runs no statement that succeeds" " ddl=" "$(cat "$RUN/$1.again.log")"
  ch "DROP DATABASE $db" >/dev/null
}
run_case auto1 auto 1
run_case json4 json 4
run_case auto4 auto 4
finish
