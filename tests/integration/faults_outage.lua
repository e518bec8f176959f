-- faults_outage.lua — test pipeline for test_clickhouse_outage.sh: every event becomes a row of
-- the MergeTree `log` (every delivery kept, so duplicates can be counted) and of the
-- ReplacingMergeTree `latest` (one row per id, the highest version wins), both with cdc.emit.
local cdc = require "cdcpipe"

function ddl()
  return {
    [[CREATE TABLE IF NOT EXISTS log (id UInt32, version UInt64, name String, p UInt16, off UInt64)
      ENGINE = MergeTree() ORDER BY (id, version)]],
    [[CREATE TABLE IF NOT EXISTS latest (id UInt32, version UInt64, name String)
      ENGINE = ReplacingMergeTree(version) ORDER BY id]],
  }
end

function transform(event, meta)
  local a = event.after
  local version = event.source.lsn
  cdc.emit("log", { id = a.id, version = version, name = a.name, p = meta.partition, off = meta.offset })
  cdc.emit("latest", { id = a.id, version = version, name = a.name })
end
