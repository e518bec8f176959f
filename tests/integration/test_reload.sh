#!/usr/bin/env bash
# test_reload.sh — SIGHUP reloads pipeline.lua under load: events keep arriving while the script
# is replaced; every event is handled exactly once, by the old version before the swap and by
# the new one after it (by offset); a broken new version is refused and the running one stays.
. "$(dirname "$0")/lib.sh"

TOPIC="reload_$ID"
ch_db_create
script_version() { # N: a pipeline that stamps rows with its version
  cat >"$RUN/pipeline.lua.new" <<LUA
function ddl()
  return "CREATE TABLE IF NOT EXISTS seen (id UInt32, off UInt64, version UInt8) ENGINE = MergeTree() ORDER BY off"
end
function transform(event, meta)
  return { id = event.after.id, off = meta.offset, version = $1 }
end
LUA
  mv "$RUN/pipeline.lua.new" "$RUN/pipeline.lua"
}
gen() { for ((i = $1; i <= $2; i++)); do printf '{"id":%d}\t{"op":"u","after":{"id":%d}}\n' "$i" "$i"; done; }
count() { ch "SELECT count() FROM $DB.seen"; }
at_least() { (($(count) >= $1)); }

script_version 1
"$BIN" -b "$KAFKA_BROKERS" -t "$TOPIC" -g "g_$ID" --clickhouse "$CLICKHOUSE_URL" --database "$DB" \
  --table seen --batch-ms 100 "$RUN/pipeline.lua" 2>"$RUN/cdcpipe.log" &
pid=$!
trap 'kill -9 $pid 2>/dev/null || true; kill -9 "${producer:-}" 2>/dev/null || true' EXIT

gen 1 50 >"$RUN/a.tsv"
produce "$TOPIC" "$RUN/a.tsv"
wait_for "the first 50 rows" 60 at_least 50

# Load: 300 more events in small bursts while the script is swapped.
(for ((b = 0; b < 30; b++)); do
  gen $((51 + b * 10)) $((60 + b * 10)) >"$RUN/burst.$b.tsv"
  produce "$TOPIC" "$RUN/burst.$b.tsv"
done) &
producer=$!
wait_for "the load to start" 60 at_least 80
script_version 2
kill -HUP $pid
wait_for "the reload" 60 grep -q "reloaded $RUN/pipeline.lua" "$RUN/cdcpipe.log"
wait "$producer"
wait_for "all 350 rows" 60 at_least 350

printf 'function transform(event, meta)\n  return {\nend\n' >"$RUN/pipeline.lua"
kill -HUP $pid
wait_for "the refused reload" 60 grep -q "still running the previous version" "$RUN/cdcpipe.log"
gen 351 360 >"$RUN/c.tsv"
produce "$TOPIC" "$RUN/c.tsv"
wait_for "all 360 rows" 60 at_least 360
kill -TERM $pid
rc=0
wait $pid || rc=$?
assert_eq "exit 0 after SIGTERM" 0 "$rc"

assert_eq "every event exactly once" "360	360" "$(ch "SELECT count(), uniqExact(id) FROM $DB.seen FORMAT TabSeparated")"
assert_eq "both versions ran" "1	2" "$(ch "SELECT min(version), max(version) FROM $DB.seen FORMAT TabSeparated")"
assert_eq "version 1 before the swap, version 2 after it (by offset)" "1" \
  "$(ch "SELECT (SELECT max(off) FROM $DB.seen WHERE version = 1) < (SELECT min(off) FROM $DB.seen WHERE version = 2)")"
assert_eq "the broken script was refused: the last events ran on version 2" "10" \
  "$(ch "SELECT count() FROM $DB.seen WHERE id > 350 AND version = 2")"
assert_contains "the refusal names the file and line" "pipeline.lua:3:" "$(cat "$RUN/cdcpipe.log")"
ch "DROP DATABASE $DB" >/dev/null
finish
