-- faults_bad.lua — test pipeline for test_bad_input.sh. Good events become rows of `good`; an
-- event whose after.kind is a marker makes transform misbehave in one specific way, so that each
-- kind of Lua-side failure can be told apart in the dead letters.
function ddl()
  return [[CREATE TABLE IF NOT EXISTS good (id UInt32, name String, score Float64)
    ENGINE = MergeTree() ORDER BY id]]
end

function transform(event, meta)
  local a = event.after or {}
  local kind = a.kind
  if kind == "skip" then
    return nil -- deliberately filtered
  elseif kind == "lua_error" then
    error("deliberate failure for event " .. tostring(a.id))
  elseif kind == "return_string" then
    return "a string, not a row"
  elseif kind == "endless" then
    local n = 0
    while true do n = n + 1 end
  elseif kind == "memory" then
    -- doubles a string until the Lua state's memory cap is hit (one concatenation per
    -- instruction, so the cap is reached long before the instruction budget)
    local s, keep = "x", {}
    while true do
      s = s .. s
      keep[#keep + 1] = s
    end
  elseif kind == "nan" then
    return { id = a.id, name = "nan", score = 0 / 0 }
  elseif kind == "nul_key" or kind == "wide" or kind == "long_column" then
    -- a good first row, then one the batch refuses: the event goes whole to the dead letters
    local bad = { id = a.id, name = kind, score = 1 }
    if kind == "nul_key" then
      bad["na\0me"] = "x"
    elseif kind == "wide" then
      for i = 1, 1000 do bad["c" .. i] = i end
    else
      bad[string.rep("n", 300)] = 1
    end
    return { { id = a.id, name = "first row of " .. kind, score = 1 }, bad }
  elseif kind == "ch_reject" then
    return { id = "not a number", name = "rejected", score = 1 } -- a string for a UInt32 column
  end
  return { id = a.id, name = a.name, score = a.score }
end
