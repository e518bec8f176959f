-- pipeline.lua — the default cdcpipe pipeline: an audit log of UPDATEs on public.my_table.
--
-- Every UPDATE captured by Debezium from PostgreSQL's public.my_table becomes one row in
-- ClickHouse's `changes` table: the row's id and name after the update, its created_at
-- (Debezium sends a timestamp column as microseconds since 1970 = MicroTimestamp) as a
-- DateTime in UTC, and the operation. `ts` is filled by ClickHouse with the insert time.
-- Edit freely; check with `cdcpipe check pipeline.lua` and `cdcpipe test pipeline.lua events.jsonl`.

local cdc = require "cdcpipe"

config = {
  kafka      = { brokers = "localhost:9092", topics = { "pgserver.public.my_table" }, group = "cdcpipe" },
  clickhouse = { url = "http://localhost:8123", database = "default", table = "changes" },
  batch      = { max_rows = 50000, max_bytes = 16 * 1024 * 1024, max_ms = 1000 },
}

function ddl()
  return [[
CREATE TABLE IF NOT EXISTS changes (
    id         UInt32,
    name       String,
    created_at DateTime('UTC'),
    op         String,
    ts         DateTime DEFAULT now()
) ENGINE = MergeTree() ORDER BY (id, ts)]]
end

function transform(event, meta)
  if event.op ~= "u" then
    return nil                      -- only updates; everything else is counted as filtered
  end
  local a = event.after
  return {
    id         = a.id,
    name       = a.name,
    created_at = cdc.datetime(a.created_at, "us"),
    op         = event.op,
  }
end
