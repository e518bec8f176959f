-- ddl_pipeline.lua — test pipeline for test_cdc_ddl.sh: no ddl(); the table is created by the
-- first event (cdc.ddl) and every key of `after` the table lacks becomes a String column first
-- (an ADD COLUMN before the row). Keys starting with "x_" are left to the "no silent column loss"
-- warning instead; `after.bad_sql` makes a statement ClickHouse refuses.
local cdc = require "cdcpipe"

function transform(event, meta)
  local a = event.after
  local cols = cdc.columns("items")
  if not cols then
    cdc.ddl("CREATE TABLE IF NOT EXISTS items (id UInt32) ENGINE = MergeTree() ORDER BY id")
    cols = cdc.columns("items")
  end
  if a.bad_sql then cdc.ddl("ALTER TABLE items ADD COLUMN") end
  local row = { id = a.id }
  local names = {}
  for k in pairs(a) do names[#names + 1] = k end
  table.sort(names)
  for _, k in ipairs(names) do
    if k ~= "id" then
      if not cols[k] and k:sub(1, 2) ~= "x_" then
        -- another worker may have added it meanwhile (18.16 has no ADD COLUMN IF NOT EXISTS):
        -- a refusal is fine when the column is there now (cdc.columns asks again after cdc.ddl)
        local ok, err = pcall(cdc.ddl, string.format("ALTER TABLE items ADD COLUMN %s String", k))
        cols = cdc.columns("items")
        if not ok and not cols[k] then error(err, 0) end
      end
      row[k] = tostring(a[k])
    end
  end
  return row
end
