-- examples/audit.lua — a change log of every operation on every captured table.
--
-- One row per Debezium event in `cdc_audit`: the operation (c insert, u update, d delete,
-- r snapshot read, t truncate, m logical-decoding message), the source table, the record key and
-- the before/after row images as exact JSON text (object keys sorted, bigints exact, SQL NULL
-- columns absent), the source LSN, transaction id, commit time and Debezium's processing time,
-- and where the event was in Kafka. Subscribe it to as many topics as you like.
--
--   SELECT op, after FROM cdc_audit WHERE tbl = 'my_table' AND key = '{"id":7}' ORDER BY lsn
--
-- The table is a ReplacingMergeTree keyed on the event's Kafka position, so an event consumed
-- twice (after a crash: at-least-once) is stored once after merges — count with FINAL for exact
-- numbers. Works on ClickHouse 18.16 and 24.x. Tombstones are skipped by cdcpipe itself;
-- heartbeats and transaction-metadata records (no `op`) are not changes and are filtered.
-- The ExtractNewRecordState (unwrap) SMT's flattened records are logged too, when they carry
-- __op or __deleted (delete.tombstone.handling.mode=rewrite, add.fields=op,table,lsn,...).
local cdc = require "cdcpipe"

config = {
  -- input = "json": heartbeats, transaction metadata and flattened records reach transform
  -- (the default, "debezium", dead-letters every record that is not a change event).
  kafka = { topics = { "pgserver.public.my_table" }, group = "cdcpipe-audit", input = "json" },
  clickhouse = { table = "cdc_audit" },
}

function ddl()
  return [[
CREATE TABLE IF NOT EXISTS cdc_audit (
    op              String,
    db              String,
    schema_name     String,
    tbl             String,
    key             Nullable(String),
    before          Nullable(String),
    after           Nullable(String),
    lsn             Nullable(Int64),
    tx_id           Nullable(Int64),
    snapshot        String,
    event_time      DateTime('UTC'),
    source_ts_ms    Int64,
    ts_ms           Nullable(Int64),
    kafka_topic     String,
    kafka_partition Int32,
    kafka_offset    Int64
) ENGINE = ReplacingMergeTree() ORDER BY (kafka_topic, kafka_partition, kafka_offset)]]
end

-- Splits a flattened (unwrap SMT) record into its row image and its __ metadata.
local function unflatten(event)
  local image, extra = {}, {}
  for k, v in pairs(event) do
    if type(k) == "string" and k:sub(1, 2) == "__" then extra[k:sub(3)] = v else image[k] = v end
  end
  local op = extra.deleted == "true" and "d" or extra.op or "u"
  return {
    op = op,
    before = op == "d" and image or nil,
    after = op ~= "d" and image or nil,
    source = { lsn = extra.lsn, table = extra.table, ts_ms = extra.source_ts_ms, db = extra.db,
               schema = extra.schema, txId = extra.txId },
  }
end

function transform(event, meta)
  if event.op == nil then
    if event.__op == nil and event.__deleted == nil then return nil end -- heartbeat, BEGIN/END
    event = unflatten(event)
  end
  local source = event.source or {}
  local image = event.op == "m" and event.message or nil -- m: {prefix, content (base64)}
  return {
    op = event.op,
    db = source.db or "",
    schema_name = source.schema or "",
    tbl = source.table or "",
    key = (meta.key ~= nil and meta.key ~= "") and cdc.json(meta.key) or cdc.null, -- "": no key
    before = cdc.json(event.before) or cdc.null,
    after = cdc.json(event.after or image) or cdc.null,
    lsn = source.lsn or cdc.null,
    tx_id = source.txId or cdc.null,
    snapshot = source.snapshot or "false",
    event_time = cdc.datetime(source.ts_ms or event.ts_ms or meta.timestamp or 0),
    source_ts_ms = source.ts_ms or 0,
    ts_ms = event.ts_ms or cdc.null,
    kafka_topic = meta.topic,
    kafka_partition = meta.partition,
    kafka_offset = meta.offset,
  }
end
