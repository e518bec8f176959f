#!/usr/bin/env bash
# test_schema_aware.sh — schema-aware decoding end to end: the typed Debezium fixture
# (S27-10-typed-create-with-schema.json, schemas.enable=true) and variants of it go through a real
# Kafka broker and `cdcpipe --once` running a pipeline that converts each row with
# cdc.auto(event, "after") — no per-column helper — into a ClickHouse table of matching column
# types; every stored value is compared exactly. Also: the datetime64/hex/seconds options,
# cdc.field_type, a Decimal scale read with cdc.field_schema, an unchanged-TOAST placeholder left
# out, a delete (after = nil), meta.headers carrying __debezium.oldkey, and an event without a
# schema dead-lettered with cdc.auto's message while the others land.
. "$(dirname "$0")/lib.sh"

FIX=$SRC/tests/fixtures/debezium/handwritten
TOPIC="schema_aware_$ID"
ch_db_create

cat >"$RUN/pipeline.lua" <<'LUA'
local cdc = require "cdcpipe"

function ddl()
  return [[
CREATE TABLE IF NOT EXISTS typed (
  id Int32, variant String,
  price Nullable(String),
  price_dec Nullable(Decimal(10, 2)) DEFAULT if(isNull(price), NULL, toDecimal64(ifNull(price, '0'), 2)),
  ratio Nullable(String), qty Nullable(Int16), big Nullable(Int64), r Nullable(Float32),
  dp Nullable(Float64), flag Nullable(UInt8), d Nullable(Date), t Nullable(String),
  ts Nullable(DateTime('UTC')), ts3 Nullable(DateTime('UTC')), tstz Nullable(DateTime('UTC')),
  dur Nullable(String), u Nullable(UUID), j Nullable(String), b Nullable(String),
  tags Array(String), mood Nullable(Enum8('sad' = 1, 'ok' = 2, 'happy' = 3)),
  ts64 Nullable(String), tstz64 Nullable(String), b_hex Nullable(String), dur_s Nullable(String),
  price_type Nullable(String), price_scale Nullable(String), oldkey Nullable(String)
) ENGINE = MergeTree() ORDER BY (id, variant)]]
end

function transform(event, meta)
  local row = cdc.auto(event, "after") or cdc.auto(event, "before")
  local exact = cdc.auto(event, "after", { timestamps = "datetime64", bytes = "hex",
                                            intervals = "seconds" }) or {}
  row.variant = event.op
  row.ts64, row.tstz64, row.b_hex, row.dur_s = exact.ts, exact.tstz, exact.b, exact.dur
  row.price_type = cdc.field_type(event, "after", "price")
  row.price_scale = cdc.field_schema(event, "after", "price").parameters.scale
  row.oldkey = meta.headers and meta.headers["__debezium.oldkey"]
  return row
end
LUA

# Records: the fixture as is (op c); an update of id 2 with an unchanged-TOAST j and tags and a
# NULL price; a delete of id 3 (after null: the row comes from before); an event without a schema.
python3 - "$FIX" "$RUN" <<'PY'
import json, os, sys
fix, run = sys.argv[1:3]
def load(name):
    with open(os.path.join(fix, name), encoding="utf-8") as f:
        return json.load(f)
key = json.dumps(load("S27-10-typed-key-with-schema.json"), separators=(",", ":"))
create = load("S27-10-typed-create-with-schema.json")
def dump(v):
    return json.dumps(v, separators=(",", ":"), ensure_ascii=False)
update = json.loads(dump(create))
update["payload"]["op"] = "u"
a = update["payload"]["after"]
a.update(id=2, price=None, j="__debezium_unavailable_value", tags=["__debezium_unavailable_value"],
         d=1, ts=1000000, dur=-1, b="")
delete = json.loads(dump(create))
delete["payload"]["op"] = "d"
delete["payload"]["before"] = dict(delete["payload"]["after"], id=3, mood="sad", ratio={"scale": 0, "value": "AA=="})
delete["payload"]["after"] = None
noschema = {"op": "c", "after": create["payload"]["after"]}
with open(os.path.join(run, "records.tsv"), "w") as f:
    for v in (create, update, delete, noschema):
        f.write(key + "\t" + dump(v) + "\n")
# the same update again, produced with the header a primary-key change carries
pk = json.loads(dump(update))
pk["payload"]["after"]["id"] = 4
with open(os.path.join(run, "header_record.tsv"), "w") as f:
    f.write(key + "\t" + dump(pk) + "\n")
PY
produce "$TOPIC" "$RUN/records.tsv"
kcat -P -b "$KAFKA_BROKERS" -t "$TOPIC" -K $'\t' -H '__debezium.oldkey={"id":2}' \
  <"$RUN/header_record.tsv"

"$BIN" --once -b "$KAFKA_BROKERS" -t "$TOPIC" -g "g_$ID" --clickhouse "$CLICKHOUSE_URL" \
  --database "$DB" --table typed --dlq-topic none --dlq-file "$RUN/dlq.jsonl" \
  "$RUN/pipeline.lua" 2>"$RUN/stderr" || fail "cdcpipe --once exited $?: $(cat "$RUN/stderr")"
assert_contains "four events land, the one without a schema is dead-lettered" \
  "consumed=5 tombstones=0 filtered=0 dead_lettered=1 events_inserted=4 rows_inserted=4" \
  "$(cat "$RUN/stderr")"
assert_contains "the dead letter says why" \
  "cdc.auto: the event has no schema (its topic is written with schemas.enable=false)" \
  "$(cat "$RUN/dlq.jsonl")"

cols="id, variant, price, price_dec = toDecimal64('1234.50', 2), ratio, qty, big, r, dp, flag,
  toString(d), t, toString(ts), toString(ts3), toString(tstz), dur, toString(u), j, hex(b), tags,
  toString(mood), ts64, tstz64, b_hex, dur_s, price_type, price_scale, oldkey"
actual=$(ch "SELECT $cols FROM $DB.typed ORDER BY id FORMAT TabSeparated")
row() { local IFS=$'\t'; echo "$*"; }
expected=$(
  row 1 c 1234.50 1 3.14159 7 9007199254740993 1.5 2.25 1 2016-01-16 13:45:30.123456 \
    "2018-06-20 15:13:16" "2018-06-20 15:13:16" "2018-06-20 13:13:16" P1DT2H \
    a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11 '{"a": 1}' 010203 "['a','b']" happy \
    "2018-06-20 15:13:16.945104" "2018-06-20 13:13:16.945104" 010203 93600 \
    org.apache.kafka.connect.data.Decimal 2 '\N'
  # update: NULL price, j and tags left out (placeholders), d = 1970-01-02, ts = 1 s, a negative
  # duration, empty bytes
  row 2 u '\N' '\N' 3.14159 7 9007199254740993 1.5 2.25 1 1970-01-02 13:45:30.123456 \
    "1970-01-01 00:00:01" \
    "2018-06-20 15:13:16" "2018-06-20 13:13:16" -PT0.000001S \
    a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11 '\N' '' "[]" happy \
    "1970-01-01 00:00:01.000000" "2018-06-20 13:13:16.945104" '' -0.000001 \
    org.apache.kafka.connect.data.Decimal 2 '\N'
  # delete: the row comes from before, its VariableScaleDecimal 0 with scale 0
  row 3 d 1234.50 1 0 7 9007199254740993 1.5 2.25 1 2016-01-16 13:45:30.123456 \
    "2018-06-20 15:13:16" "2018-06-20 15:13:16" "2018-06-20 13:13:16" P1DT2H \
    a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11 '{"a": 1}' 010203 "['a','b']" sad \
    '\N' '\N' '\N' '\N' org.apache.kafka.connect.data.Decimal 2 '\N'
  # the record with the __debezium.oldkey header
  row 4 u '\N' '\N' 3.14159 7 9007199254740993 1.5 2.25 1 1970-01-02 13:45:30.123456 \
    "1970-01-01 00:00:01" \
    "2018-06-20 15:13:16" "2018-06-20 13:13:16" -PT0.000001S \
    a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11 '\N' '' "[]" happy \
    "1970-01-01 00:00:01.000000" "2018-06-20 13:13:16.945104" '' -0.000001 \
    org.apache.kafka.connect.data.Decimal 2 '{"id":2}'
)
assert_eq "cdc.auto rows in typed ClickHouse columns, exactly" "$expected" "$actual"

ch "DROP DATABASE $DB" >/dev/null
finish
