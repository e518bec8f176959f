-- examples/route.lua — several PostgreSQL tables into several ClickHouse tables, one pipeline.
--
-- Each source table (Debezium's source.table) has a route: the ClickHouse table it goes to and how
-- each target column is made from the row — a source column renamed, converted with a cdc.*
-- helper, or computed from the whole row. Rows go out with cdc.emit(target, row). Every target is
-- kept as a replica the way mirror.lua keeps one: `<target>_versions` is a
-- ReplacingMergeTree(_version) with version = source.lsn and _is_deleted, `<target>_truncates`
-- records TRUNCATEs, and the view `<target>` shows the live rows.
--
-- Unlike mirror.lua there is no side table for TOAST-ed values: with REPLICA IDENTITY DEFAULT an
-- UPDATE that leaves a large value unchanged fails with an error naming the column (the event is
-- dead-lettered and logged) instead of writing a wrong value. Set REPLICA IDENTITY FULL on such
-- tables (Debezium then sends the value), or use mirror.lua for them.
--
-- Events of tables without a route are filtered (counted in the summary). Works on ClickHouse
-- 18.16 and 24.x. Run with, e.g.:
--   cdcpipe -t pgserver.inventory.customers -t pgserver.inventory.orders examples/route.lua
local cdc = require "cdcpipe"

-- A column: { name, ClickHouse type, from = source column or function(row) → value,
--             convert = function(value) → ClickHouse value, default = ClickHouse DEFAULT expr }
local ROUTES = {
  customers = {
    target = "customers",
    key = { "id" },
    columns = {
      { "id", "Int32", from = "id" },
      { "full_name", "String", from = function(r) return (r.first_name or "") .. " " .. (r.last_name or "") end },
      { "email", "Nullable(String)", from = "email" },
    },
  },
  orders = {
    target = "orders",
    key = { "order_id" },
    columns = {
      { "order_id", "Int64", from = "id" },
      { "customer_id", "Int32", from = "purchaser" },
      { "quantity", "Int32", from = "quantity" },
      -- numeric(10,2): exact text, cast by ClickHouse (18.16 does not read a quoted decimal into
      -- a Decimal column; on 24.x `{ "amount", "Decimal(10,2)", from = "amount", convert = … }`
      -- works directly)
      { "amount_text", "String", from = "amount", convert = function(v) return cdc.decimal(v, 2) end },
      { "amount", "Decimal(10,2)", default = "toDecimal64(if(amount_text = '', '0', amount_text), 2)" },
      -- date → days since 1970
      { "order_date", "Date", from = "order_date", convert = cdc.date },
    },
  },
}

config = {
  -- input = "json": flattened records of the unwrap SMT reach transform too
  kafka = { topics = { "pgserver.inventory.customers", "pgserver.inventory.orders" },
            group = "cdcpipe-route", input = "json" },
}

function ddl()
  local stmts, names_sorted = {}, {}
  for tbl in pairs(ROUTES) do names_sorted[#names_sorted + 1] = tbl end
  table.sort(names_sorted) -- a stable order for `cdcpipe check`
  for _, tbl in ipairs(names_sorted) do
    local route = ROUTES[tbl]
    local defs, names = {}, {}
    for _, c in ipairs(route.columns) do
      defs[#defs + 1] = c[1] .. " " .. c[2] .. (c.default and " DEFAULT " .. c.default or "")
      names[#names + 1] = c[1]
    end
    local t = route.target
    stmts[#stmts + 1] = string.format("CREATE TABLE IF NOT EXISTS %s_versions (%s, _version UInt64, "
      .. "_is_deleted UInt8) ENGINE = ReplacingMergeTree(_version) ORDER BY (%s)",
      t, table.concat(defs, ", "), table.concat(route.key, ", "))
    stmts[#stmts + 1] = string.format("CREATE TABLE IF NOT EXISTS %s_truncates (_version UInt64) "
      .. "ENGINE = MergeTree() ORDER BY _version", t)
    stmts[#stmts + 1] = string.format("CREATE VIEW IF NOT EXISTS %s AS SELECT %s FROM %s_versions FINAL "
      .. "WHERE _is_deleted = 0 AND _version > (SELECT max(_version) FROM %s_truncates)",
      t, table.concat(names, ", "), t, t)
  end
  return stmts
end

-- The row image with unchanged-TOAST placeholders replaced from `before`, or an error.
local function complete(after, before, tbl)
  local image = {}
  for k, v in pairs(after) do
    if cdc.is_unavailable(v) then
      if not (before and before[k] ~= nil and not cdc.is_unavailable(before[k])) then
        error(string.format("route.lua: %s.%s was not sent (unchanged TOAST value under REPLICA "
          .. "IDENTITY DEFAULT): set REPLICA IDENTITY FULL on %s or mirror it with mirror.lua",
          tbl, k, tbl))
      end
      v = before[k]
    end
    image[k] = v
  end
  return image
end

local function value_of(c, image)
  local v
  if type(c.from) == "function" then
    v = c.from(image)
  else
    v = image[c.from]
  end
  if v ~= nil and c.convert then v = c.convert(v) end
  return v
end

function transform(event, meta)
  local op = event.op
  if op == nil or op == "m" then return nil end -- heartbeats, transaction metadata, messages
  local source = event.source or {}
  local tbl = source.table or meta.topic:match("([^.]+)$")
  local route = ROUTES[tbl]
  if not route then return nil end
  local version = source.lsn or 0
  local t = route.target
  if op == "t" then
    cdc.emit(t .. "_truncates", { _version = version })
  elseif op == "d" then
    local old = event.before or (type(meta.key) == "table" and meta.key) or {}
    local row = { _version = version, _is_deleted = 1 }
    for _, c in ipairs(route.columns) do
      for _, k in ipairs(route.key) do
        if c[1] == k then row[k] = value_of(c, old) end
      end
    end
    cdc.emit(t .. "_versions", row)
  else -- c, u, r
    local image = complete(event.after, event.before, tbl)
    local row = { _version = version, _is_deleted = 0 }
    for _, c in ipairs(route.columns) do
      if c.from ~= nil then row[c[1]] = value_of(c, image) end
    end
    cdc.emit(t .. "_versions", row)
  end
  return nil
end
