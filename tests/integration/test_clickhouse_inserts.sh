#!/usr/bin/env bash
# test_clickhouse_inserts.sh — what an INSERT costs whatever the rows, against the real ClickHouse
# through real Kafka:
# - the statement travels in the POST body: a column list longer than the server's request-line
#   limit (18.16: about 16 KiB; current servers: 1 MiB) is inserted, not refused;
# - at most 1 MiB of an answer is kept: --show of a big table prints at most that.
. "$(dirname "$0")/lib.sh"

ch_db_create
run() { # GROUP TOPIC SCRIPT ARGS...: cdcpipe --once, one batch; $rc, $RUN/stdout, $RUN/stderr
  local group=$1 topic=$2 script=$3
  shift 3
  rc=0
  "$BIN" --once -b "$KAFKA_BROKERS" -t "$topic" -g "$group" --clickhouse "$CLICKHOUSE_URL" \
    --database "$DB" --batch-ms 600000 "$@" "$script" >"$RUN/stdout" 2>"$RUN/stderr" || rc=$?
  cat "$RUN/stderr" >>"$RUN/$group.log"
}
# ---- a column list longer than 18.16's request line
TOPIC="wide_$ID"
topic_create "$TOPIC" 1
x60=$(printf 'x%.0s' {1..60})
cols=$(for i in $(seq -w 0 299); do printf ', c%s_%s String' "$i" "$x60"; done)
ch "CREATE TABLE $DB.wide (id UInt32$cols) ENGINE = MergeTree() ORDER BY id" >/dev/null
cat >"$RUN/wide.lua" <<'EOF'
function transform(e)
  local row = { id = e.after.id }
  for i = 0, 299 do row[string.format("c%03d_%s", i, string.rep("x", 60))] = "v" .. i end
  return row
end
EOF
printf '{"id":1}\t{"op":"c","after":{"id":1}}\n' >"$RUN/wide.tsv"
produce "$TOPIC" "$RUN/wide.tsv"
run "g1_$ID" "$TOPIC" "$RUN/wide.lua" --table wide
assert_eq "a 21 KB column list: exit 0" 0 "$rc"
assert_contains "  ... inserted" "dead_lettered=0 events_inserted=1" "$(cat "$RUN/stderr")"
assert_eq "  ... with every column" "1	v0	v299" \
  "$(ch "SELECT id, c000_$x60, c299_$x60 FROM $DB.wide FORMAT TabSeparated")"


# ---- at most 1 MiB of an answer is kept: --show of a 2 MB table prints 1 MiB
ch "CREATE TABLE $DB.shown (id UInt32, name String) ENGINE = MergeTree() ORDER BY id" >/dev/null
ch "INSERT INTO $DB.shown SELECT number + 10000, '$(printf 'y%.0s' {1..200})' FROM system.numbers LIMIT 10000" >/dev/null
printf 'function transform(e) return { id = e.after.id, name = "shown" } end\n' >"$RUN/show.lua"
TOPIC="show_$ID"
topic_create "$TOPIC" 1
printf '{"id":5000}\t{"op":"c","after":{"id":5000}}\n' >"$RUN/show.tsv"
produce "$TOPIC" "$RUN/show.tsv"
run "g4_$ID" "$TOPIC" "$RUN/show.lua" --table shown --show 100000
assert_eq "--show of a big table: exit 0" 0 "$rc"
assert_eq "  ... prints its title and 1 MiB of the answer" \
  "$(printf 'shown (last 100000 rows):\n' | wc -c) 1048576" \
  "$(head -1 "$RUN/stdout" | wc -c) $(($(wc -c <"$RUN/stdout") - $(head -1 "$RUN/stdout" | wc -c)))"
ch "DROP DATABASE $DB" >/dev/null
finish
