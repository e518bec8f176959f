-- ddl_pipeline.lua — test pipeline for test_cdc_ddl.sh: no ddl(); the table is created by the
-- first event (cdc.ddl) and every key of `after` the table lacks becomes a String column first
-- (an ADD COLUMN before the row). Keys starting with "x_" are left to the "no silent column loss"
-- warning instead; `after.bad_sql` makes a statement ClickHouse refuses. cdc.query: `after.bad_query`
-- selects from a table that does not exist (uncaught: the event is dead-lettered);
-- `after.caught_query` sends a syntax error under pcall and writes the error into the row
-- (query_error), then a good query's answer (query_after): the pipeline goes on.
local cdc = require "cdcpipe"

function transform(event, meta)
  local a = event.after
  local cols = cdc.columns("items")
  if not cols then
    cdc.ddl("CREATE TABLE IF NOT EXISTS items (id UInt32) ENGINE = MergeTree() ORDER BY id")
    cols = cdc.columns("items")
  end
  if a.bad_sql then cdc.ddl("ALTER TABLE items ADD COLUMN") end
  if a.bad_query then cdc.query("SELECT id FROM no_such_table_ddl") end
  local values = {}
  for k, v in pairs(a) do values[k] = v end
  if a.caught_query then
    local ok, err = pcall(cdc.query, "SELECT nonsense(")
    values.query_error = ok and "not refused" or err
    values.query_after = cdc.query("SELECT 41 + 1 AS answer")[1].answer
  end
  local row = { id = a.id }
  local names = {}
  for k in pairs(values) do names[#names + 1] = k end
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
      row[k] = tostring(values[k])
    end
  end
  return row
end
