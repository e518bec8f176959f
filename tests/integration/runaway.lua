-- runaway.lua — test pipeline for test_runaway.sh. A good event becomes a row of `good`; an event
-- whose after.kind names a runaway makes transform run away in that way, each of which today's
-- limits must stop: the event is dead-lettered and the run goes on.
function ddl()
  return [[CREATE TABLE IF NOT EXISTS good (id UInt32, name String) ENGINE = MergeTree() ORDER BY id]]
end

local function spin() while true do end end

function transform(event, meta)
  local a = event.after
  local kind = a.kind
  if kind == "match" then
    -- Lua's matcher is quadratic here and calls no hook: minutes for a.n spaces
    local s = "x" .. string.rep(" ", a.n) .. "y"
    return { id = a.id, name = s:match("^%s*(.-)%s*$") }
  elseif kind == "pcall" then
    while true do pcall(spin) end -- catches the budget's error every time
  elseif kind == "xpcall" then
    while true do xpcall(spin, function(m) while true do end end) end
  elseif kind == "sethook" then
    debug.sethook() -- would remove the budget's hook
    spin()
  elseif kind == "setupvalue" then
    local cdc = require "cdcpipe"
    debug.setupvalue(cdc.decimal, 1, io.stderr) -- aborted the process
    return { id = a.id, name = cdc.decimal("1.5") }
  end
  return { id = a.id, name = a.name }
end
