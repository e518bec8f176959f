-- captured_pipeline.lua — test pipeline of test_captured.sh: every change event of the captured
-- Debezium fixtures (tests/fixtures/debezium/captured) as one row of `events` (what the decoder
-- handed to Lua: op, source table, ids, the before image, headers, the TOAST column, a logical
-- message), and the typed row converted with the cdc.* helpers into `typed`, one ClickHouse
-- column per PostgreSQL column. Works for topics written with schemas.enable true and false.
local cdc = require "cdcpipe"

function ddl()
  return {
    [[CREATE TABLE IF NOT EXISTS events (off UInt64, schemas UInt8, op String, tbl String,
      id Nullable(Int64), key_id Nullable(Int64), snapshot UInt8, has_before UInt8,
      before_name Nullable(String), oldkey Nullable(String), toast String, big Nullable(String),
      message String) ENGINE = MergeTree() ORDER BY off]],
    [[CREATE TABLE IF NOT EXISTS typed (variant String, id Int32, i16 Int16, i32 Int32,
      i64 Int64, f32 Float32, f64 Float64, num2_text String,
      num2 Decimal(10, 2) DEFAULT toDecimal64(num2_text, 2), num String, flag UInt8, txt String,
      vc String, ch String, b String, d Date, t String, tz String, ts DateTime('UTC'),
      ts_us Int64, tstz DateTime('UTC'), tstz_us Int64, dur String, dur_s String, u UUID,
      j String, jb String, mood Enum8('sad' = 1, 'ok' = 2, 'happy' = 3), ints Array(Int32),
      tags Array(String), ip String, net String, mac String, cash String, bits String, x String,
      num2_type Nullable(String), auto_num2 Nullable(String), auto_d Nullable(String))
      ENGINE = MergeTree() ORDER BY variant]],
  }
end

local function typed_row(event, schemas)
  local a = event.after
  local row = {
    variant = schemas and "with-schema" or "no-schema",
    id = a.id, i16 = a.i16, i32 = a.i32, i64 = a.i64, f32 = a.f32, f64 = a.f64,
    num2_text = cdc.decimal(a.num2, 2), num = cdc.decimal(a.num), flag = a.flag,
    txt = a.txt, vc = a.vc, ch = a.ch, b = cdc.bytes(a.b, "bytes", "hex"),
    d = cdc.date(a.d), t = cdc.time(a.t, "us"), tz = cdc.time(a.tz),
    ts = cdc.datetime(a.ts, "us"), ts_us = a.ts,
    tstz = cdc.datetime(a.tstz), tstz_us = cdc.epoch(a.tstz, "us"),
    dur = cdc.interval(a.dur), dur_s = cdc.interval(a.dur, "seconds"), u = cdc.uuid(a.u),
    j = a.j, jb = a.jb, mood = a.mood, ints = a.ints, tags = a.tags,
    ip = a.ip, net = a.net, mac = a.mac, cash = cdc.decimal(a.cash, 2), bits = cdc.bits(a.bits, 5),
    x = a.x,
    num2_type = cdc.field_type(event, "after", "num2") or cdc.null,
  }
  if schemas then -- the schema-driven conversion agrees with the explicit helpers
    local auto = cdc.auto(event, "after")
    row.auto_num2, row.auto_d = auto.num2, auto.d
  end
  return row
end

function transform(event, meta)
  local schemas = cdc.schema(event) ~= nil
  local source = event.source or {}
  local image = event.after or event.before or {}
  local key = type(meta.key) == "table" and meta.key or {}
  local row = {
    off = meta.offset, schemas = schemas and 1 or 0, op = event.op, tbl = source.table or "",
    id = math.type(image.id) == "integer" and image.id or cdc.null,
    key_id = math.type(key.id) == "integer" and key.id or cdc.null,
    snapshot = (source.snapshot or "false") ~= "false" and 1 or 0,
    has_before = event.before and 1 or 0,
    before_name = event.before and event.before.name or cdc.null,
    oldkey = meta.headers and meta.headers["__debezium.oldkey"] or cdc.null,
    toast = "", message = "",
  }
  if source.table == "toasted" and event.after then
    if cdc.is_unavailable(event.after.big) then
      row.toast = "unavailable"
    else
      row.big = event.after.big
    end
  end
  if event.op == "m" then
    row.message = event.message.prefix .. ": " .. cdc.bytes(event.message.content)
  end
  if source.table == "typed" and event.after then
    cdc.emit("typed", typed_row(event, schemas))
  end
  return row
end
