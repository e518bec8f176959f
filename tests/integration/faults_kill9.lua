-- faults_kill9.lua — test pipeline for test_kill9.sh: one row per event recording where it came
-- from (partition, offset), so that what was committed can be checked against what is in
-- ClickHouse. FAULTS_BUSY_US (environment) makes every event cost that many microseconds of CPU,
-- which stretches the stream over the run time the kills are spread across.
local cdc = require "cdcpipe"

local busy = tonumber(cdc.env("FAULTS_BUSY_US", "0")) / 1e6

function ddl()
  return [[CREATE TABLE IF NOT EXISTS events (id UInt32, p UInt16, off UInt64)
    ENGINE = MergeTree() ORDER BY (p, off)]]
end

function transform(event, meta)
  if busy > 0 then
    local t = os.clock() + busy
    while os.clock() < t do end
  end
  return { id = event.after.id, p = meta.partition, off = meta.offset }
end
