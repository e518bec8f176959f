-- types_pipeline.lua — the pipeline under test in test_types.sh: every column of the synthetic
-- `typed` table (see types_matrix.py) converted with the cdc.* helpers into a ClickHouse column of
-- the matching type, the way docs/types.md recommends for ClickHouse 18.16 and 24.x alike.
--
-- Decimals go through a String column whose text a DEFAULT expression casts (18.16's JSONEachRow
-- does not read a quoted decimal; 24.x does, and there `num = cdc.decimal(...)` works directly).
-- Date/DateTime columns only take values within their range (18.16: 1970..2105); the *_text,
-- *64 and *_us columns keep every value exactly. Unchanged-TOAST placeholders are never written:
-- the column is left out and its name listed in `unavailable`.
local cdc = require "cdcpipe"

-- Decimal(P,S) column `name` computed from the text in `name_text`, NULL stays NULL.
local function decimal_column(name, p, s)
  local fn = p <= 18 and "toDecimal64" or "toDecimal128"
  return string.format(
    "%s_text Nullable(String), %s Nullable(Decimal(%d,%d)) DEFAULT if(isNull(%s_text), NULL, %s(ifNull(%s_text, '0'), %d))",
    name, name, p, s, name, fn, name, s)
end

function ddl()
  return {
    "CREATE TABLE IF NOT EXISTS types (id Int32, variant String, "
      .. "i16 Nullable(Int16), i32 Nullable(Int32), i64 Nullable(Int64), "
      .. "f32 Nullable(Float32), f64 Nullable(Float64), flag Nullable(UInt8), "
      .. decimal_column("num", 38, 10) .. ", " .. decimal_column("num2", 10, 2) .. ", "
      .. decimal_column("money", 19, 2) .. ", vnum Nullable(String), "
      .. decimal_column("snum", 38, 10) .. ", dnum Nullable(Float64), dnum_text Nullable(String), "
      .. "d Nullable(Date), d_text Nullable(String), "
      .. "t Nullable(String), t3 Nullable(String), tz Nullable(String), "
      .. "ts Nullable(DateTime('UTC')), ts64 Nullable(String), ts_us Nullable(Int64), "
      .. "ts3 Nullable(DateTime('UTC')), ts3_64 Nullable(String), "
      .. "tstz Nullable(DateTime('UTC')), tstz64 Nullable(String), tstz_us Nullable(Int64), "
      .. "dur Nullable(String), dur_s Nullable(String), idur Nullable(String), "
      .. "u Nullable(UUID), j Nullable(String), x Nullable(String), hs Nullable(String), "
      .. "txt Nullable(String), rng Nullable(String), ip Nullable(String), vc String, "
      .. "b Nullable(String), b_hex Nullable(String), b64 Nullable(String), burl Nullable(String), "
      .. "bhex Nullable(String), bits Nullable(String), tags Array(String), ints Array(Int32), "
      .. "mood Nullable(Enum8('sad' = 1, 'ok' = 2, 'happy' = 3)), "
      .. "geom_wkb Nullable(String), geom_srid Nullable(Int32), unavailable Array(String)"
      .. ") ENGINE = MergeTree() ORDER BY (id, variant)",
  }
end

local DATE_MAX_DAYS = 49672          -- 2105-12-31, the end of 18.16's Date
local DATETIME_MAX_SECS = 4291747199 -- 2105-12-31 23:59:59

local function in_datetime_range(secs)
  return secs >= 0 and secs <= DATETIME_MAX_SECS
end

function transform(event)
  local a = event.after
  if not a then return nil end
  local unavailable = {}
  -- the column's value; nil (and listed) when it is an unchanged-TOAST placeholder
  local function v(name)
    local x = a[name]
    if cdc.is_unavailable(x) then
      unavailable[#unavailable + 1] = name
      return nil
    end
    return x
  end

  local row = {
    id = a.id, variant = a.variant,
    i16 = v "i16", i32 = v "i32", i64 = v "i64", f32 = v "f32", f64 = v "f64", flag = v "flag",
    num_text = cdc.decimal(v "num", 10),
    num2_text = cdc.decimal(v "num2", 2),
    money_text = cdc.decimal(v "money", 2),
    vnum = cdc.decimal(v "vnum"),
    snum_text = cdc.decimal(v "snum"),
    dnum = v "dnum", dnum_text = cdc.decimal(v "dnum"),
    d_text = cdc.date(v "d"),
    t = cdc.time(v "t", "us"), t3 = cdc.time(v "t3", "ms"), tz = cdc.time(v "tz"),
    ts64 = cdc.datetime64(v "ts", "us"), ts_us = v "ts",
    ts3_64 = cdc.datetime64(v "ts3", "ms"),
    tstz64 = cdc.datetime64(v "tstz"), tstz_us = cdc.epoch(v "tstz", "us"),
    dur = cdc.interval(v "dur"), dur_s = cdc.interval(v "dur", "seconds"),
    idur = cdc.interval(v "idur"),
    u = cdc.uuid(v "u"),
    j = v "j", x = v "x", hs = v "hs", txt = v "txt", rng = v "rng", ip = v "ip",
    vc = v "vc",
    b = cdc.bytes(v "b"), b_hex = cdc.bytes(v "b", "bytes", "hex"),
    b64 = cdc.bytes(v "b64", "base64"), burl = cdc.bytes(v "burl", "base64-url-safe"),
    bhex = cdc.bytes(v "bhex", "hex"),
    bits = cdc.bits(v "bits", 5),
    tags = v "tags", ints = v "ints",
    mood = v "mood",
  }
  local d = v "d"
  if d and d >= 0 and d <= DATE_MAX_DAYS then row.d = cdc.date(d) end
  local ts = v "ts"
  if ts and in_datetime_range(ts // 1000000) then row.ts = cdc.datetime(ts, "us") end
  local ts3 = v "ts3"
  if ts3 and in_datetime_range(ts3 // 1000) then row.ts3 = cdc.datetime(ts3, "ms") end
  local tstz = v "tstz"
  if tstz and in_datetime_range(cdc.epoch(tstz, "s")) then row.tstz = cdc.datetime(tstz) end
  local g = v "geom"
  if g then
    row.geom_wkb = cdc.bytes(g.wkb, "bytes", "hex")
    row.geom_srid = g.srid
  end
  -- v() was called more than once for some columns: list each once
  local seen, list = {}, {}
  for _, name in ipairs(unavailable) do
    if not seen[name] then seen[name] = true; list[#list + 1] = name end
  end
  table.sort(list)
  row.unavailable = list
  return row
end
