-- fixtures_audit.lua — test pipeline: one row per event, whatever its kind, recording what the
-- decoder handed to Lua (op, source table, id, key id, exact int64 source.ts_ns).
local cdc = require "cdcpipe"

function ddl()
  return {
    [[CREATE TABLE IF NOT EXISTS events (off UInt64, op String, tbl String, id Nullable(Int64),
      key_id Nullable(Int64), ts_ns Nullable(Int64), name String) ENGINE = MergeTree() ORDER BY off]],
  }
end

function transform(event, meta)
  local image = event.after or event.before or event
  local source = event.source or {}
  return {
    off = meta.offset,
    op = event.op or "-",
    tbl = source.table or "",
    id = type(image.id) == "number" and image.id or cdc.null,
    key_id = type(meta.key) == "table" and type(meta.key.id) == "number" and meta.key.id or cdc.null,
    ts_ns = source.ts_ns or cdc.null,
    name = image.first_name or image.name or "",
  }
end

-- Tombstones (null values) come here instead of being skipped: one row with the record's key.
function tombstone(meta)
  return {
    off = meta.offset, op = "tombstone", tbl = "", id = cdc.null,
    key_id = type(meta.key) == "table" and type(meta.key.id) == "number" and meta.key.id or cdc.null,
    ts_ns = cdc.null, name = "",
  }
end
