#!/usr/bin/env bash
# test_types.sh — the Debezium type matrix: one row per encoding case (extremes, zeros, pre-1970,
# leap days, µs, unicode and control characters, empty vs NULL, unchanged-TOAST placeholders) of a
# table with a column per Debezium encoding (types_matrix.py), each in four variants — Debezium 2.5
# and 2.7 envelope layouts, with schemas.enable=true and =false — through a real Kafka broker and
# `cdcpipe --once` running types_pipeline.lua (the cdc.* helpers) into a real ClickHouse table of
# matching column types (Decimal(38,10), Int64, Date, DateTime('UTC'), UUID, Enum8, Array, ...).
# Every stored value is compared with the text computed independently in Python. The matrix goes
# in twice, with --format json into one database and --format rowbinary into another: both pass the
# check and `SELECT * … FORMAT TSV` of the two tables is byte-identical. Then: malformed values are
# dead-lettered with an error naming the helper and the input, and the good events of the same run
# still land. (RowBinary's fallback and its lua-stage refusals: test_rowbinary_pipeline.sh.)
. "$(dirname "$0")/lib.sh"

MATRIX=$SRC/tests/integration/types_matrix.py
TOPIC="types_$ID"
ch_db_create
DB_RB="${DB}_rb"
ch "CREATE DATABASE $DB_RB" >/dev/null

python3 "$MATRIX" gen "$RUN"
records=$(wc -l <"$RUN/records.tsv")
produce "$TOPIC" "$RUN/records.tsv"

# run FORMAT DATABASE: the matrix into DATABASE.types, inserted as FORMAT (stderr: $RUN/FORMAT.stderr)
run() {
  "$BIN" --once -b "$KAFKA_BROKERS" -t "$TOPIC" -g "g_${1}_$ID" --clickhouse "$CLICKHOUSE_URL" \
    --format "$1" --database "$2" --table types "$SRC/tests/integration/types_pipeline.lua" \
    2>"$RUN/$1.stderr" || fail "cdcpipe --once --format $1 exited $?: $(cat "$RUN/$1.stderr")"
  summary=$(grep '^cdcpipe: consumed=' "$RUN/$1.stderr" | sed 's/ seconds=.*//')
  assert_eq "--format $1: every type-matrix event is inserted as one row" \
    "cdcpipe: consumed=$records tombstones=0 filtered=0 dead_lettered=0 events_inserted=$records rows_inserted=$records retries=0" \
    "$summary"
}
run json "$DB"
run rowbinary "$DB_RB"
assert_contains "--format rowbinary: the matrix table goes as RowBinary" \
  "table types goes as RowBinary" "$(cat "$RUN/rowbinary.stderr")"
assert_not_contains "--format rowbinary: no fallback to JSONEachRow" "JSONEachRow" \
  "$(cat "$RUN/rowbinary.stderr")"

# How this server prints day/second 0 (18.16: 0000-00-00) and decimals (18.16: 1.50).
zero_date=$(ch "SELECT toString(toDate(0))")
zero_datetime=$(ch "SELECT toString(toDateTime(0, 'UTC'))")
trailing=0
[[ $(ch "SELECT toString(toDecimal32(1.5, 2))") == 1.50 ]] && trailing=1
for db in "$DB" "$DB_RB"; do
  ch "$(python3 "$MATRIX" sql "$db")" >"$RUN/actual.tsv"
  if ! python3 "$MATRIX" check "$RUN" "$RUN/actual.tsv" "$zero_date" "$zero_datetime" "$trailing" \
    >"$RUN/check.out" 2>"$RUN/check.err"; then
    fail "ClickHouse values in $db differ from the expected text:
$(cat "$RUN/check.err")"
  fi
  pass "type matrix in $db: $(cat "$RUN/check.out") (2.5 and 2.7 layouts, with and without schemas)"
done
ch "SELECT * FROM $DB.types ORDER BY id, variant FORMAT TSV" >"$RUN/json.tsv"
ch "SELECT * FROM $DB_RB.types ORDER BY id, variant FORMAT TSV" >"$RUN/rowbinary.tsv"
[[ $(grep -c "" "$RUN/json.tsv") -eq $records ]] || fail "json.tsv has $(grep -c "" "$RUN/json.tsv") rows, not $records"
cmp -s "$RUN/json.tsv" "$RUN/rowbinary.tsv" ||
  fail "SELECT * of the matrix differs between --format json and rowbinary:
$(diff "$RUN/json.tsv" "$RUN/rowbinary.tsv" | head -20)"
pass "the whole matrix ($records rows, every column) is byte-identical inserted as JSONEachRow and as RowBinary"

# Malformed values: each event is dead-lettered with the helper and the input named; the good event
# between them lands.
BAD="bad_types_$ID"
python3 - "$RUN/bad.tsv" <<'PY'
import json, sys
base = {"id": 0, "variant": "bad", "vc": "ok"}
rows = [
    dict(base, id=900, num="AeI!"),                       # invalid base64
    dict(base, id=901, vnum={"scale": 2}),                # VariableScaleDecimal without value
    dict(base, id=902, snum="NAN"),                       # string mode NaN
    dict(base, id=903, t=86400000001),                    # past 24:00:00
    dict(base, id=904, u="not-a-uuid"),
    dict(base, id=905),                                   # a good row
    dict(base, id=906, tstz="2018-02-30T00:00:00Z"),
    dict(base, id=907, bhex="abc"),
]
with open(sys.argv[1], "w") as f:
    for r in rows:
        f.write(json.dumps({"id": r["id"]}) + "\t" +
                json.dumps({"op": "c", "after": r, "source": {"lsn": r["id"]}}) + "\n")
PY
produce "$BAD" "$RUN/bad.tsv"
"$BIN" --once -b "$KAFKA_BROKERS" -t "$BAD" -g "g_bad_$ID" --clickhouse "$CLICKHOUSE_URL" \
  --database "$DB" --table types "$SRC/tests/integration/types_pipeline.lua" 2>"$RUN/bad.stderr" ||
  fail "cdcpipe --once on malformed values exited $?: $(cat "$RUN/bad.stderr")"
assert_contains "malformed values are dead-lettered, the good event lands" \
  "consumed=8 tombstones=0 filtered=0 dead_lettered=7 events_inserted=1 rows_inserted=1" \
  "$(cat "$RUN/bad.stderr")"
for msg in 'cdc.decimal: invalid base64 "AeI!": '"'"'!'"'"' at position 3' \
  'cdc.decimal: a VariableScaleDecimal table needs a base64 string "value", got a nil' \
  'cdc.decimal: "NAN" is not decimal text' \
  'cdc.time: time of day 86400000001 us is outside 00:00:00..24:00:00' \
  'cdc.uuid: "not-a-uuid" is not a UUID' \
  'cdc.datetime64: cannot parse "2018-02-30T00:00:00Z" as an ISO-8601 date-time: day 30 out of range' \
  'cdc.bytes: invalid hex "abc": odd number of digits (3)'; do
  assert_contains "dead letter names the helper and the input: ${msg%%:*}" "$msg" "$(cat "$RUN/bad.stderr")"
done
assert_eq "the good event between the bad ones landed" "905	ok" \
  "$(ch "SELECT id, vc FROM $DB.types WHERE variant = 'bad' FORMAT TabSeparated")"

ch "DROP DATABASE $DB" >/dev/null
ch "DROP DATABASE $DB_RB" >/dev/null
finish
