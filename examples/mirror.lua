-- examples/mirror.lua — a live replica of one PostgreSQL table in ClickHouse.
--
-- `SELECT * FROM my_table` (a view) equals the source table after any sequence of inserts,
-- updates, deletes, primary-key changes, snapshots and truncates, however often the events are
-- consumed and in whatever order they arrive:
--
--   my_table_versions   ReplacingMergeTree(_version) ORDER BY key: one row per change, version =
--                       the change's source.lsn, so the newest change of a key wins a merge and
--                       snapshot rows (which carry the snapshot's LSN) lose to streamed changes;
--                       a delete is a row with _is_deleted = 1 and the old key
--   my_table_toasted    the columns that PostgreSQL may store out of line (TOAST, values > ~2 kB),
--                       one row per key, column and version, written only when the value is
--                       known: an UPDATE that leaves such a value unchanged carries Debezium's
--                       __debezium_unavailable_value placeholder instead (REPLICA IDENTITY
--                       DEFAULT), which is never written — the older value keeps winning
--   my_table_truncates  the LSN of each TRUNCATE (Debezium's skipped.operations=none)
--   my_table            the view: newest version per key, not deleted, newer than the last
--                       truncate, with the TOAST-able columns joined back in
--
-- The SQL works on ClickHouse 18.16 and 24.x (24.x could use ReplacingMergeTree(_version,
-- _is_deleted) instead; the view stays the simplest way to filter deleted rows everywhere).
-- Replays are idempotent (same version), and duplicates after a crash disappear on merge — the
-- view reads FINAL, so they never show.
--
-- Limits (see examples/README.md): under REPLICA IDENTITY DEFAULT an UPDATE that changes the
-- primary key *and* leaves a TOAST-ed value unchanged sends the new key without that value; no
-- consumer can recover it (that column of the new key reads NULL). REPLICA IDENTITY FULL on the
-- source table avoids it (Debezium then fills unchanged values from `before`, and so does this
-- script). Incremental-snapshot rows carry no LSN and get version 0.
--
-- Adapt SOURCE_TABLE, KEY and COLUMNS to your table; run with
--   cdcpipe -t pgserver.public.my_table examples/mirror.lua
local cdc = require "cdcpipe"

local NAME = cdc.env("MIRROR_NAME", "my_table")                 -- the view; tables get suffixes
local SOURCE_TABLE = cdc.env("MIRROR_SOURCE_TABLE", "my_table") -- source.table of the events

local KEY = { "id" } -- the primary key columns (composite keys: several names)

-- Every column of the replica, in order: its ClickHouse type, how a Debezium value becomes a
-- ClickHouse value (nil: as it is), and whether PostgreSQL may TOAST it (text, varchar without a
-- small limit, json/jsonb, bytea, arrays: such columns must be String in ClickHouse here).
local COLUMNS = {
  { name = "id", type = "Int32" },
  { name = "name", type = "Nullable(String)", toast = true },
  -- timestamp → MicroTimestamp; on 24.x prefer Nullable(DateTime64(6, 'UTC')) with
  -- cdc.datetime64(v, "us") to keep the microseconds.
  { name = "created_at", type = "Nullable(DateTime('UTC'))",
    convert = function(v) return cdc.datetime(v, "us") end },
}

config = {
  -- input = "json": flattened records of the unwrap SMT reach transform too
  kafka = { topics = { "pgserver.public.my_table" }, group = "cdcpipe-mirror-" .. NAME,
            input = "json" },
  clickhouse = { table = NAME .. "_versions" },
}

local VERSIONS, TOASTED, TRUNCATES = NAME .. "_versions", NAME .. "_toasted", NAME .. "_truncates"

local is_key, toast_columns = {}, {}
for _, k in ipairs(KEY) do is_key[k] = true end
for _, c in ipairs(COLUMNS) do
  if c.toast then
    assert(not is_key[c.name], "mirror.lua: a key column cannot be TOAST-able")
    toast_columns[#toast_columns + 1] = c
  end
end

function ddl()
  local key_list = table.concat(KEY, ", ")
  local cols, plain = {}, {}
  for _, c in ipairs(COLUMNS) do
    if not c.toast then
      cols[#cols + 1] = c.name .. " " .. c.type
      plain[#plain + 1] = c.name
    end
  end
  local stmts = {
    string.format("CREATE TABLE IF NOT EXISTS %s (%s, _version UInt64, _is_deleted UInt8) "
      .. "ENGINE = ReplacingMergeTree(_version) ORDER BY (%s)", VERSIONS, table.concat(cols, ", "), key_list),
    string.format("CREATE TABLE IF NOT EXISTS %s (_version UInt64) ENGINE = MergeTree() ORDER BY _version",
      TRUNCATES),
  }
  -- the view: newest live versions, then one ANY LEFT JOIN per TOAST-able column
  local select = string.format("SELECT %s FROM %s FINAL WHERE _is_deleted = 0 AND _version > "
    .. "(SELECT max(_version) FROM %s)", table.concat(plain, ", "), VERSIONS, TRUNCATES)
  if #toast_columns > 0 then
    local key_cols = {}
    for _, k in ipairs(KEY) do
      for _, c in ipairs(COLUMNS) do
        if c.name == k then key_cols[#key_cols + 1] = k .. " " .. c.type end
      end
    end
    stmts[#stmts + 1] = string.format("CREATE TABLE IF NOT EXISTS %s (%s, col String, value Nullable(String), "
      .. "_version UInt64) ENGINE = ReplacingMergeTree(_version) ORDER BY (%s, col)",
      TOASTED, table.concat(key_cols, ", "), key_list)
    for _, c in ipairs(toast_columns) do
      select = string.format("SELECT * FROM (%s) ANY LEFT JOIN (SELECT %s, value AS %s FROM %s FINAL "
        .. "WHERE col = '%s') USING %s", select, key_list, c.name, TOASTED, c.name, key_list)
    end
  end
  local names = {}
  for _, c in ipairs(COLUMNS) do names[#names + 1] = c.name end
  stmts[#stmts + 1] = string.format("CREATE VIEW IF NOT EXISTS %s AS SELECT %s FROM (%s)", NAME,
    table.concat(names, ", "), select)
  return stmts
end

local UNCHANGED = {} -- marks a value Debezium did not send

local function convert(c, v)
  if v == nil or v == UNCHANGED then return v end
  if c.convert then return c.convert(v) end
  return v
end

local function key_row(image, version)
  local row = { _version = version }
  for _, k in ipairs(KEY) do
    if image[k] == nil then error("mirror.lua: the event has no value for key column " .. k) end
    row[k] = image[k]
  end
  return row
end

-- The change as rows: the version row and, per TOAST-able column whose value is known, a
-- side row. `before` (REPLICA IDENTITY FULL) supplies values the `after` image left unchanged.
local function upsert(after, before, version)
  local row = key_row(after, version)
  row._is_deleted = 0
  for _, c in ipairs(COLUMNS) do
    if not is_key[c.name] then
      local v = after[c.name]
      if cdc.is_unavailable(v) then
        v = UNCHANGED
        if before and before[c.name] ~= nil and not cdc.is_unavailable(before[c.name]) then
          v = before[c.name]
        end
      end
      v = convert(c, v)
      if c.toast then
        if v ~= UNCHANGED then
          local side = key_row(after, version)
          side.col = c.name
          side.value = v == nil and cdc.null or v
          cdc.emit(TOASTED, side)
        end
      elseif v == UNCHANGED then
        error("mirror.lua: column " .. c.name .. " holds an unchanged-TOAST placeholder: mark it "
          .. "toast = true in COLUMNS, or set REPLICA IDENTITY FULL on the source table")
      else
        row[c.name] = v
      end
    end
  end
  cdc.emit(VERSIONS, row)
end

local function version_of(lsn)
  if lsn == nil then return 0 end -- incremental snapshot rows carry no LSN
  if math.type(lsn) ~= "integer" or lsn < 0 then error("mirror.lua: source.lsn " .. tostring(lsn) .. " is not an LSN") end
  return lsn
end

local function apply(op, before, after, source, key)
  if source.table and source.table ~= SOURCE_TABLE then
    error("mirror.lua: an event of table " .. source.table .. " on a mirror of " .. SOURCE_TABLE
      .. " (one table per mirror; see route.lua for several)")
  end
  local version = version_of(source.lsn)
  if op == "c" or op == "u" or op == "r" then
    upsert(after, before, version)
  elseif op == "d" then
    -- the old key: `before` has it under every REPLICA IDENTITY but NOTHING; else the record key
    local row = key_row(before or key or {}, version)
    row._is_deleted = 1
    cdc.emit(VERSIONS, row)
  elseif op == "t" then
    cdc.emit(TRUNCATES, { _version = version })
  end
  return nil -- every row went out through cdc.emit
end

function transform(event, meta)
  if event.op then
    -- Debezium envelope (2.x layouts, schemas on or off); "m" messages are not row changes
    if event.op == "m" then return nil end
    return apply(event.op, event.before, event.after, event.source or {},
      type(meta.key) == "table" and meta.key or nil)
  end
  if event.__deleted ~= nil or event.__op ~= nil then
    -- ExtractNewRecordState output (delete.tombstone.handling.mode=rewrite, add.fields=op,lsn,…)
    if event.__lsn == nil then
      error("mirror.lua: flattened events need the LSN: add lsn to the unwrap SMT's add.fields")
    end
    local op = event.__deleted == "true" and "d" or event.__op or "u"
    local source = { lsn = event.__lsn, table = event.__table }
    if op == "d" then return apply("d", event, nil, source, nil) end
    return apply(op, nil, event, source, nil)
  end
  return nil -- heartbeats, transaction metadata: not row changes
end
