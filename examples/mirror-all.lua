-- examples/mirror-all.lua — every table of a PostgreSQL database in ClickHouse, no SQL to write:
--
--   cdcpipe -t '^pgserver\.public\..*' --database mirror examples/mirror-all.lua
--
-- Each source table gets a ClickHouse table of the same name (MIRROR_NAMING=schema_table:
-- <schema>_<table>), created on its first event from the record's Connect schema (the connector
-- needs value.converter.schemas.enable=true and replace.null.with.default=false), new columns
-- added as they appear. Read a table with
--   SELECT * FROM t FINAL WHERE NOT _is_deleted
-- See README "Mirror a database in one command" for what it creates, evolution and limits.
local cdc = require "cdcpipe"
local mirror = require "cdcpipe.mirror"

local opts = { naming = cdc.env("MIRROR_NAMING", "table"), prefix = cdc.env("MIRROR_PREFIX", "") }

config = { kafka = { group = "cdcpipe-mirror" } }

function transform(event, meta)
  -- add your own filters or rows here; the mirror emits its rows with cdc.emit
  return mirror.apply(event, meta, opts)
end
