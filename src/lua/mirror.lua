-- cdcpipe.mirror — a whole PostgreSQL database mirrored from Debezium change events, tables
-- created and evolved from the records' Connect schemas (require "cdcpipe.mirror"; built into
-- cdcpipe; see examples/mirror-all.lua and README "Mirror a database in one command").
--
-- Per source table one ReplacingMergeTree(_version) table ORDER BY the key's columns, where
-- _version is the change's source LSN, _is_deleted marks deletes and _src_ts is the source time.
-- A table without a primary key (REPLICA IDENTITY FULL) is keyed by _row_key, the JSON text of the
-- row. Read it with SELECT ... FROM t FINAL WHERE NOT _is_deleted.
local cdc = require "cdcpipe"

local M = {}

local function fail(fmt, ...) error("mirror: " .. string.format(fmt, ...), 0) end

local function quote(name) return "`" .. name:gsub("\\", "\\\\"):gsub("`", "\\`") .. "`" end

-- ClickHouse ≥ 20 has DateTime64 and ADD COLUMN IF NOT EXISTS; 18.16 has neither.
local modern
local function is_modern()
  if modern == nil then
    local v = cdc.clickhouse_version()
    local major = v and tonumber(v:match("^(%d+)")) or 0
    modern = major >= 20
  end
  return modern
end

local TIMESTAMP_DIGITS = {
  ["io.debezium.time.Timestamp"] = 3, ["org.apache.kafka.connect.data.Timestamp"] = 3,
  ["io.debezium.time.MicroTimestamp"] = 6, ["io.debezium.time.NanoTimestamp"] = 9,
  ["io.debezium.time.ZonedTimestamp"] = 6,
}
local PLAIN = { int8 = "Int8", int16 = "Int16", int32 = "Int32", int64 = "Int64", float32 = "Float32",
  float64 = "Float64", boolean = "UInt8", string = "String", bytes = "String" }

-- The ClickHouse type of a Connect field schema, without Nullable (docs/types.md): exactly as
-- DESCRIBE TABLE prints it, so a table's column can be compared with it.
local function base_type(f)
  local name, p = f.name, f.parameters or {}
  if name == "org.apache.kafka.connect.data.Decimal" then
    local prec, scale = tonumber(p["connect.decimal.precision"]), tonumber(p.scale) or 0
    if prec and prec >= scale and prec <= (is_modern() and 76 or 38) and scale >= 0 then
      return string.format("Decimal(%d, %d)", prec, scale)
    end
    return "String"
  elseif TIMESTAMP_DIGITS[name] then
    if is_modern() then return string.format("DateTime64(%d, 'UTC')", TIMESTAMP_DIGITS[name]) end
    return "String" -- 18.16: "YYYY-MM-DD hh:mm:ss.ffffff" text, exact and sortable
  elseif name == "io.debezium.time.Date" or name == "org.apache.kafka.connect.data.Date" then
    return is_modern() and "Date32" or "Date"
  elseif name == "io.debezium.data.Uuid" then
    return "UUID"
  elseif f.type == "array" then
    local item = f.items and base_type(f.items)
    if not item or item:find("^Array") and not is_modern() then return "String" end
    return "Array(" .. item .. ")"
  elseif f.type == "struct" or f.type == "map" then
    return "String" -- as JSON text
  end
  return PLAIN[f.type] or "String"
end

local function column_type(f, is_key)
  local t = base_type(f)
  if f.optional and not is_key and not t:find("^Array") then return "Nullable(" .. t .. ")" end
  return t
end

local function strip_nullable(t) return t:match("^Nullable%((.*)%)$") or t end

-- A SQL literal of a Lua value (strings quoted and escaped, numbers exact).
local function literal(v)
  if math.type(v) == "integer" then return tostring(v) end
  if type(v) == "number" then return string.format("%.17g", v) end
  if type(v) == "boolean" then return v and "1" or "0" end
  return "'" .. tostring(v):gsub("[\\']", "\\%0") .. "'"
end

-- " DEFAULT <literal>" for a field whose schema carries a default that is a plain value (text,
-- numbers, booleans without a logical type): rows PostgreSQL had before an ADD COLUMN ...
-- DEFAULT read it, as they do there. Other defaults (timestamps, decimals, ...) are left out.
local function default_clause(f)
  local d = f.default
  if d == nil or f.name ~= nil or type(d) == "table" or not PLAIN[f.type] or f.type == "bytes" then
    return ""
  end
  if f.type == "boolean" then d = d == true or d == "true" end
  return " DEFAULT " .. literal(d)
end

-- the after/before struct of the envelope's schema
local function row_fields(event)
  local schema = cdc.schema(event)
  if not schema then
    fail("the record has no schema: the mirror needs the Connect schema in every record; set "
      .. "value.converter.schemas.enable=true (and key.converter.schemas.enable=true) on the "
      .. "Debezium connector, or on the worker for JsonConverter")
  end
  for _, f in ipairs(schema.fields or {}) do
    if f.field == "after" or f.field == "before" then return f.fields, schema end
  end
  fail("the record's schema has no after/before struct: not a Debezium change event "
    .. "(flattened records of the unwrap SMT are not supported by the mirror)")
end

local known = {}     -- target -> { schema = the fields table checked, cols = {name = type} }
local reported = {}  -- target -> true once an incompatible change was logged

local function target_name(source, opts)
  local t = source.table or fail("the event's source has no table")
  if opts.naming == "schema_table" then t = (source.schema or "public") .. "_" .. t end
  return (opts.prefix or "") .. t
end

local function add_column(target, name, ctype)
  local sql = string.format("ALTER TABLE %s ADD COLUMN %s%s %s", quote(target),
    is_modern() and "IF NOT EXISTS " or "", quote(name), ctype)
  local ok, err = pcall(cdc.ddl, sql)
  local cols = cdc.columns(target) or {}
  if not ok and not cols[name] then error(err, 0) end -- another worker may have added it
  return cols
end

-- Fails the event with msg (a dead letter), logged as an error once per table.
local function refuse(target, msg)
  if not reported[target] then
    reported[target] = true
    cdc.log("error", "mirror: " .. msg .. " (this table's events are dead-lettered meanwhile)")
  end
  fail("%s", msg)
end

-- Dead-letters the events of a table whose primary key changed (ALTER TABLE ... ADD PRIMARY
-- KEY ...): the ClickHouse table's ORDER BY cannot follow, and rows would collapse by the old
-- key. Asked once per table and key (system.columns' sorting key).
local key_checked = {} -- target -> the key's text last found to match
local function check_key(target, keyset)
  local names = {}
  for k in pairs(keyset) do names[#names + 1] = k end
  if #names == 0 then names[1] = "_row_key" end
  table.sort(names)
  local want = table.concat(names, ", ")
  if key_checked[target] == want then return end
  local rows = cdc.query("SELECT name FROM system.columns WHERE database = currentDatabase() AND "
    .. "table = " .. literal(target) .. " AND is_in_sorting_key ORDER BY name")
  if not rows then return end -- a dry run
  local have = {}
  for i, r in ipairs(rows) do have[i] = r.name end
  have = table.concat(have, ", ")
  if have == want then
    key_checked[target] = want
    return
  end
  local msg = string.format("ClickHouse table %s is ordered by (%s) but the source table's "
    .. "primary key is now (%s): the mirror cannot change a table's key; recreate the table "
    .. "(DROP TABLE %s, then consume the topic again from the beginning, e.g. with a new group), "
    .. "then re-process the dead letters", target, have, want, target)
  refuse(target, msg)
end

-- Makes the target table fit the record's schema (once per schema and target); returns the
-- set of key names.
local function prepare(target, fields, keyset)
  local k = known[target]
  if k and k.schema == fields then return end
  local cols = cdc.columns(target)
  if not cols then
    local defs, order = {}, {}
    for _, f in ipairs(fields) do
      defs[#defs + 1] = quote(f.field) .. " " .. column_type(f, keyset[f.field]) .. default_clause(f)
      if keyset[f.field] then order[#order + 1] = quote(f.field) end
    end
    if #order == 0 then
      defs[#defs + 1] = "`_row_key` String"
      order[1] = "`_row_key`"
    end
    defs[#defs + 1] = "`_version` UInt64"
    defs[#defs + 1] = "`_is_deleted` UInt8"
    defs[#defs + 1] = is_modern() and "`_src_ts` DateTime64(3, 'UTC')" or "`_src_ts` UInt64"
    cdc.ddl(string.format("CREATE TABLE IF NOT EXISTS %s (%s) ENGINE = ReplacingMergeTree(_version) "
      .. "ORDER BY (%s)", quote(target), table.concat(defs, ", "), table.concat(order, ", ")))
    cols = cdc.columns(target) or fail("table %s is still missing after CREATE TABLE", target)
  end
  for _, f in ipairs(fields) do
    local want = column_type(f, keyset[f.field])
    local have = cols[f.field]
    if not have then
      cols = add_column(target, f.field, want .. default_clause(f))
    elseif strip_nullable(have) ~= strip_nullable(want) then
      local msg = string.format("column %s of ClickHouse table %s is %s but the source now sends "
        .. "%s: the mirror does not change column types; apply the change yourself (ALTER TABLE %s "
        .. "MODIFY COLUMN %s %s, or drop the table to have it created again and re-read the "
        .. "topic), then re-process the dead letters", f.field, target, have, want, target,
        f.field, want)
      refuse(target, msg)
    end
  end
  known[target] = { schema = fields }
end

local function version_of(source)
  local lsn = source.lsn
  if lsn == nil then return 0 end
  if math.type(lsn) ~= "integer" or lsn < 0 then fail("source.lsn %s is not an LSN", tostring(lsn)) end
  return lsn
end

local AUTO = { timestamps = "datetime64" }

-- The row of event[section] for the table: values converted by their logical type, structs and
-- maps (not converted by cdc.auto) as JSON text, and NULL written out for optional fields (a
-- column added with a DEFAULT must read NULL where the source has NULL); arrays stay [].
-- Fields whose value Debezium did not send (unchanged TOAST) are left out.
local function convert(event, section, fields)
  local row = cdc.auto(event, section, AUTO)
  if not row then return nil end
  local image = event[section]
  for _, f in ipairs(fields) do
    local v = row[f.field]
    if type(v) == "table" and (f.type == "struct" or f.type == "map") then
      row[f.field] = cdc.json(v)
    elseif v == nil and f.optional and f.type ~= "array" and not cdc.is_unavailable(image[f.field]) then
      row[f.field] = cdc.null
    end
  end
  return row
end

-- The _row_key of a keyless table: the row's JSON without NULLs (so that a column added later
-- without a default does not change the key of the rows written before).
local function row_key(image)
  local copy = {}
  for k, v in pairs(image) do
    if v ~= cdc.null then copy[k] = v end
  end
  return cdc.json(copy)
end

local function unhex(h)
  return (h:gsub("%x%x", function(x) return string.char(tonumber(x, 16)) end))
end

-- How a column's value is read back exactly (cdc.query answers JSON): String as hex (any
-- bytes), 64-bit integers and decimals as text; decode turns the answer into a row value.
local function read_back(name, ctype)
  local t = strip_nullable(ctype)
  local elem = t:match("^Array%((.*)%)$")
  local base = elem or t
  local how, decode
  if base == "String" then
    how, decode = "hex(%s)", unhex
  elseif base:find("^U?Int64$") or base:find("^Decimal") then
    how = "toString(%s)"
  end
  if not how then return quote(name), nil end
  if elem then
    local one = decode
    return "arrayMap(x -> " .. how:format("x") .. ", " .. quote(name) .. ")", one and function(a)
      local out = {}
      for i, x in pairs(a) do out[i] = one(x) end
      return out
    end
  end
  return how:format(quote(name)), decode
end

local last_delete = {} -- target -> { version =, key = {name = value} } of its last delete seen

-- Fills row[name] for every name in `missing` (values Debezium did not send: unchanged TOAST
-- under REPLICA IDENTITY DEFAULT) from the newest earlier version of the row in ClickHouse
-- (cdc.query inserts this worker's pending rows first). A primary-key change arrives as a delete
-- of the old key and a create of the new one at the same LSN: the create's values come from
-- the old key's row. Returns nil, or the reason no value could be had.
local function fill_unchanged(target, row, keyset, missing, version)
  local cols = cdc.columns(target) or {}
  local function lookup(key)
    local conds, exprs, decoders = {}, {}, {}
    for k in pairs(keyset) do
      local v, t = key[k], cols[k]
      if v == nil or v == cdc.null or not t then return nil end
      conds[#conds + 1] = string.format("%s = CAST(%s AS %s)", quote(k), literal(v), t)
    end
    for i, name in ipairs(missing) do
      local expr, decode = read_back(name, cols[name] or "String")
      exprs[i] = expr .. " AS `_v" .. i .. "`"
      decoders[i] = decode
    end
    table.sort(conds)
    local rows = cdc.query(string.format("SELECT _is_deleted, %s FROM %s WHERE %s AND _version < %d "
      .. "ORDER BY _version DESC LIMIT 1", table.concat(exprs, ", "), quote(target),
      table.concat(conds, " AND "), version))
    local r = rows and rows[1]
    if not r or r._is_deleted == 1 or r._is_deleted == "1" then return nil end
    for i, name in ipairs(missing) do
      local v = r["_v" .. i]
      if v == nil then v = cdc.null elseif decoders[i] then v = decoders[i](v) end
      row[name] = v
    end
    return true
  end
  if lookup(row) then return nil end
  local d = last_delete[target]
  if d and d.version == version and lookup(d.key) then return nil end
  return "its previous value is not in ClickHouse either (the row was written before the "
    .. "mirror started, or its key changed in another partition)"
end

-- Handles one event; returns nothing (rows go out with cdc.emit). opts: naming = "table"
-- (default) or "schema_table", prefix = a string before every table name.
function M.apply(event, meta, opts)
  opts = opts or {}
  local op = event.op
  if op == nil then
    if event.__op ~= nil or event.__deleted ~= nil then
      fail("flattened records (the unwrap SMT) are not supported: remove ExtractNewRecordState "
        .. "from the connector")
    end
    return nil -- heartbeats, transaction metadata
  end
  if op == "m" then return nil end
  local source = event.source or fail("the event has no source block")
  local target = target_name(source, opts)
  local version = version_of(source)
  if op == "t" then
    if cdc.columns(target) then cdc.ddl("TRUNCATE TABLE " .. quote(target)) end
    return nil
  end
  local fields = row_fields(event)
  local keyset = {}
  if type(meta.key) == "table" then
    for k in pairs(meta.key) do keyset[k] = true end
  end
  prepare(target, fields, keyset)
  check_key(target, keyset)
  local keyless = next(keyset) == nil
  local src_ts = source.ts_ms or 0
  if is_modern() then src_ts = cdc.datetime64(src_ts, "ms") end
  local function finish(row, deleted, image)
    local key = keyless and row_key(image) or nil -- before row gets the fields below
    row._version, row._is_deleted, row._src_ts = version, deleted, src_ts
    row._row_key = key
    cdc.emit(target, row)
  end
  local before = event.before and convert(event, "before", fields)
  if op == "d" then
    local image = before or {}
    local row = {}
    if keyless then
      if not event.before then fail("a delete without before on a table without key: set REPLICA IDENTITY FULL") end
    else
      for k in pairs(keyset) do
        local v = image[k]
        if v == nil or v == cdc.null then v = meta.key[k] end
        row[k] = v
      end
      local key = {}
      for k, v in pairs(row) do key[k] = v end
      last_delete[target] = { version = version, key = key }
    end
    finish(row, 1, image)
    return nil
  end
  local row = convert(event, "after", fields)
  -- unchanged TOAST values: cdc.auto left them out; from before (REPLICA IDENTITY FULL), else
  -- from the row's previous version in ClickHouse
  local missing = {}
  for _, f in ipairs(fields) do
    local v = event.after[f.field]
    if row[f.field] == nil and v ~= nil and cdc.is_unavailable(v) then
      if before and before[f.field] ~= nil then
        row[f.field] = before[f.field]
      else
        missing[#missing + 1] = f.field
      end
    end
  end
  if #missing > 0 then
    local why = keyless and "the table has no primary key"
      or fill_unchanged(target, row, keyset, missing, version)
    if why then
      fail("column %s of table %s was left unchanged by an UPDATE and is stored out of line "
        .. "(TOAST): Debezium did not send its value and %s; set REPLICA IDENTITY FULL on the "
        .. "source table (ALTER TABLE %s REPLICA IDENTITY FULL) so that it does", missing[1],
        source.table, why, source.table)
    end
  end
  if keyless and op == "u" and before then finish(before, 1, before) end
  local image = keyless and {} or nil
  if keyless then for k, v in pairs(row) do image[k] = v end end
  finish(row, 0, image)
  return nil
end

-- Forgets what was checked (after a reload the script is loaded again anyway).
function M.reset() known, reported, modern, last_delete, key_checked = {}, {}, nil, {}, {} end

return M
