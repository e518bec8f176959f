#!/usr/bin/env bash
# test_rowbinary_pipeline.sh — --format auto/rowbinary end to end (rowbinary_pipeline.lua):
#   - a table whose types the encoder covers goes as RowBinary, rows grouped by the columns they
#     set (an omitted column gets its DEFAULT); a table with an AggregateFunction column falls back
#     to JSONEachRow, logged once naming the table, the column and the type (info with auto, a
#     warning with rowbinary), and its rows land;
#   - the encoder's refusals are lua-stage dead letters, before any round trip: a key the table
#     has no column for ("table rb has no column zzz"), a value out of its column's range, a
#     malformed date; an event whose third row is refused loses its first two (in two other
#     batches) too; the other events' rows land;
#   - a DESCRIBE TABLE slower than --lua-timeout does not count against the event;
#   - after a reload whose ddl() changes a table, its columns are read again.
. "$(dirname "$0")/lib.sh"

TOPIC="rbp_$ID"
cat >"$RUN/events.tsv" <<'TSV'
{"id":1}	{"op":"c","after":{"id":1,"n":1,"s":"one"}}
{"id":2}	{"op":"c","after":{"id":2,"n":2,"s":"two","zzz":"x"}}
{"id":3}	{"op":"c","after":{"id":3,"n":300,"s":"three"}}
{"id":4}	{"op":"c","after":{"id":4,"n":4,"s":"four","d":"2021-02-03"}}
{"id":5}	{"op":"c","after":{"id":5,"n":5,"s":"five","d":"2021-13-45"}}
{"id":6}	{"op":"c","after":{"rows":[{"id":6,"n":6,"s":"six"},{"id":61,"n":6,"s":"six","d":"2020-01-01"},{"id":62,"n":999}]}}
{"id":7}	{"op":"c","after":{"id":7,"n":7,"s":"seven","fb":true}}
{"id":8}	{"op":"c","after":{"rows":[{"id":8,"n":8,"s":"eight"},{"id":80,"n":8,"s":"eighty","d":"2020-01-01"}]}}
TSV
produce "$TOPIC" "$RUN/events.tsv"

for format in auto rowbinary; do
  db="${DB}_$format"
  ch "CREATE DATABASE $db" >/dev/null
  rc=0
  "$BIN" --once -b "$KAFKA_BROKERS" -t "$TOPIC" -g "g_${format}_$ID" --clickhouse "$CLICKHOUSE_URL" \
    --format "$format" --database "$db" --table rb --dlq-topic none --dlq-file "$RUN/$format.dlq" \
    "$SRC/tests/integration/rowbinary_pipeline.lua" 2>"$RUN/$format.stderr" || rc=$?
  log=$(cat "$RUN/$format.stderr")
  assert_eq "--format $format: exit 0" 0 "$rc"
  assert_contains "--format $format: 4 events dead-lettered, the rest inserted" \
    "consumed=8 tombstones=0 filtered=0 dead_lettered=4 events_inserted=4 rows_inserted=6" "$log"
  assert_contains "--format $format: rb goes as RowBinary" "info  table rb goes as RowBinary (4 columns)" "$log"
  level=info
  [[ $format == rowbinary ]] && level=warn
  assert_contains "--format $format: fb falls back, logged as $level naming the column and type" \
    "$level  table fb goes as JSONEachRow, not RowBinary: column agg of type AggregateFunction(sum, UInt64)" \
    "$log"
  assert_eq "--format $format: the fallback is logged once" 1 "$(grep -c 'table fb goes as JSONEachRow' <<<"$log")"
  assert_eq "--format $format: rb holds the good rows, omitted d got its DEFAULT" \
    "1	1	one	2000-01-02
4	4	four	2021-02-03
7	7	seven	2000-01-02
8	8	eight	2000-01-02
80	8	eighty	2020-01-01" "$(ch "SELECT id, n, s, d FROM $db.rb ORDER BY id FORMAT TSV")"
  assert_eq "--format $format: fb (JSONEachRow) holds its row" "7	seven" \
    "$(ch "SELECT id, s FROM $db.fb ORDER BY id FORMAT TSV")"
  dlq=$(python3 - "$RUN/$format.dlq" <<'PY'
import json, sys
for line in open(sys.argv[1], encoding="utf-8"):
    d = json.loads(line)
    print("%s %s %s" % (d["offset"], d["stage"], d["reason"]))
PY
)
  assert_eq "--format $format: the refused events are lua-stage dead letters with the encoder's reason" \
    "1 lua table rb has no column zzz: leave the key out of the row or add the column to the table
2 lua row for table rb: column \"n\" (UInt8): cannot store 300: out of range 0..255
4 lua row for table rb: column \"d\" (Date): cannot store \"2021-13-45\": not a date (YYYY-MM-DD)
5 lua row for table rb: column \"n\" (UInt8): cannot store 999: out of range 0..255" "$dlq"
  ch "DROP DATABASE $db" >/dev/null
done

# A slow DESCRIBE TABLE (a proxy holds it 1.5 s) is not the event's time: with --lua-timeout 200
# the event is not stopped, and its row goes in as RowBinary.
python3 "$SRC/tests/integration/ch_proxy.py" "$RUN/proxy.port" "$CLICKHOUSE_URL" \
  --slow DESCRIBE 1.5 >"$RUN/proxy.log" 2>&1 &
proxy_pid=$!
trap 'kill $proxy_pid 2>/dev/null || true' EXIT
wait_for "the slow proxy to listen" 10 test -s "$RUN/proxy.port"
SLOW="slow_$ID"
printf '{"id":1}\t{"op":"c","after":{"id":1,"n":1,"s":"one"}}\n' >"$RUN/slow.tsv"
produce "$SLOW" "$RUN/slow.tsv"
db="${DB}_slow"
ch "CREATE DATABASE $db" >/dev/null
rc=0
"$BIN" --once -b "$KAFKA_BROKERS" -t "$SLOW" -g "g_slow_$ID" \
  --clickhouse "http://127.0.0.1:$(cat "$RUN/proxy.port")" --format auto --lua-timeout 200 \
  --database "$db" --table rb --dlq-topic none --dlq-file "$RUN/slow.dlq" \
  "$SRC/tests/integration/rowbinary_pipeline.lua" \
  2>"$RUN/slow.stderr" || rc=$?
assert_eq "a DESCRIBE slower than --lua-timeout: exit 0" 0 "$rc"
assert_contains "  ... the event is inserted, not stopped" \
  "consumed=1 tombstones=0 filtered=0 dead_lettered=0 events_inserted=1 rows_inserted=1" \
  "$(cat "$RUN/slow.stderr")"
assert_contains "  ... as RowBinary" "table rb goes as RowBinary" "$(cat "$RUN/slow.stderr")"
assert_eq "  ... the row landed" "1	1	one" "$(ch "SELECT id, n, s FROM $db.rb FORMAT TSV")"
ch "DROP DATABASE $db" >/dev/null
kill "$proxy_pid" 2>/dev/null || true

# A reload (SIGHUP) whose ddl() changes a table: its columns are read again, so a row setting the
# new column goes in as RowBinary instead of being refused with the old column list.
RELOAD="reload_$ID"
db="${DB}_reload"
ch "CREATE DATABASE $db" >/dev/null
version() { # 1: r (id); 2: r dropped and made again with a column `extra`, which rows then set
  if [[ $1 == 1 ]]; then
    ddl='"CREATE TABLE IF NOT EXISTS r (id UInt32) ENGINE = MergeTree() ORDER BY id"'
    row='{ id = event.after.id }'
  else
    ddl='"DROP TABLE IF EXISTS r", "CREATE TABLE r (id UInt32, extra String) ENGINE = MergeTree() ORDER BY id"'
    row='{ id = event.after.id, extra = "v2" }'
  fi
  printf 'function ddl() return { %s } end\nfunction transform(event) return %s end\n' "$ddl" "$row" \
    >"$RUN/reload.lua.new"
  mv "$RUN/reload.lua.new" "$RUN/reload.lua"
}
gen() { for ((i = $1; i <= $2; i++)); do printf '{"id":%d}\t{"op":"c","after":{"id":%d}}\n' "$i" "$i"; done; }
rows_from() { (($(ch "SELECT count() FROM $db.r WHERE id >= $1") >= 5)); } # 5 rows from id $1 on
topic_create "$RELOAD" 1
version 1
"$BIN" -b "$KAFKA_BROKERS" -t "$RELOAD" -g "g_reload_$ID" --clickhouse "$CLICKHOUSE_URL" \
  --format auto --database "$db" --table r --batch-ms 100 --dlq-topic none \
  --dlq-file "$RUN/reload.dlq" "$RUN/reload.lua" 2>"$RUN/reload.stderr" &
pid=$!
trap 'kill $proxy_pid 2>/dev/null || true; kill -9 $pid 2>/dev/null || true' EXIT
gen 1 5 >"$RUN/r1.tsv"
produce "$RELOAD" "$RUN/r1.tsv"
wait_for "the first 5 rows" 60 rows_from 1
version 2
kill -HUP $pid
wait_for "the reload" 60 grep -q "reloaded $RUN/reload.lua" "$RUN/reload.stderr"
gen 6 10 >"$RUN/r2.tsv"
produce "$RELOAD" "$RUN/r2.tsv"
wait_for "the 5 rows after the reload" 60 rows_from 6
kill -TERM $pid
rc=0
wait $pid || rc=$?
assert_eq "reload: exit 0 after SIGTERM" 0 "$rc"
assert_eq "reload: the rows after it set the new column" "5	v2" \
  "$(ch "SELECT count(), any(extra) FROM $db.r FORMAT TSV")"
assert_eq "reload: the table's columns were read before and after it" 2 \
  "$(grep -c 'table r goes as RowBinary' "$RUN/reload.stderr")"
assert_contains "reload: nothing dead-lettered" "dead_lettered=0" "$(cat "$RUN/reload.stderr")"
ch "DROP DATABASE $db" >/dev/null
finish
