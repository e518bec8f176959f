-- rowbinary_pipeline.lua — test_rowbinary_pipeline.sh: rows for `rb` (RowBinary: every type
-- covered) and `fb` (an AggregateFunction column: JSONEachRow), copied from the event's `after`.
--   after.fb    also emit {id, s} to fb
--   after.rows  a list of rows returned instead of the one row (one event, several rows)
local cdc = require "cdcpipe"

function ddl()
  return {
    "CREATE TABLE IF NOT EXISTS rb (id UInt32, n UInt8, s String, "
      .. "d Date DEFAULT toDate('2000-01-02')) ENGINE = MergeTree() ORDER BY id",
    "CREATE TABLE IF NOT EXISTS fb (id UInt32, s String, agg AggregateFunction(sum, UInt64)) "
      .. "ENGINE = MergeTree() ORDER BY id",
  }
end

function transform(event)
  local a = event.after
  if a.rows then return a.rows end
  local row = {}
  for k, v in pairs(a) do
    if k ~= "fb" then row[k] = v end
  end
  if a.fb then cdc.emit("fb", { id = a.id, s = a.s }) end
  return row
end
