#!/usr/bin/env bash
# test_clickhouse_inserts.sh — what an INSERT costs whatever the rows, against the real ClickHouse
# through real Kafka:
# - the statement travels in the POST body: a column list longer than the server's request-line
#   limit (18.16: about 16 KiB; current servers: 1 MiB) is inserted, not refused;
# - rows ClickHouse rejects naming their row ("at row N"): each bad row is tried alone and
#   dead-lettered, the rest goes in ONE insert (a materialized view counts the inserts: one row
#   per successful INSERT);
# - rejections that name no row (an unknown column) are narrowed down by halves within a budget:
#   past it the rest is dead-lettered in groups with a reason that says so, the number of inserts
#   stays bounded, and every event is inserted or dead-lettered;
#   (these two run with --format json: with the default, RowBinary, the encoder refuses such rows
#   before ClickHouse sees them;)
# - the same bad rows with the default format: refused by the encoder (lua-stage dead letters
#   naming column, type and value), ClickHouse never answers with an error, the rest in ONE insert;
# - at most 1 MiB of an answer is kept: --show of a big table prints at most that.
# Every run goes on and commits: a second run consumes nothing.
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
consumes_nothing() { # GROUP TOPIC SCRIPT ARGS...
  run "$@"
  assert_eq "$1: a second run exits 0" 0 "$rc"
  assert_contains "$1: everything was committed" "cdcpipe: consumed=0 " "$(cat "$RUN/stderr")"
}
counter() { # TABLE: the table and a materialized view counting its successful INSERTs
  ch "CREATE TABLE $DB.$1 (id UInt32, name String) ENGINE = MergeTree() ORDER BY id" >/dev/null
  ch "CREATE MATERIALIZED VIEW $DB.$1_inserts ENGINE = Log AS SELECT count() AS n FROM $DB.$1" >/dev/null
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

# ---- bad rows that ClickHouse names: one insert for the rest
TOPIC="numbered_$ID"
topic_create "$TOPIC" 1
counter numbered
cat >"$RUN/bad.lua" <<'EOF'
function transform(e)
  local a = e.after
  if a.bad == "type" then return { id = "not a number", name = "bad" } end -- Code 27, at row N
  if a.bad == "column" then return { id = a.id, no_such_column = 1 } end  -- Code 16, no row
  return { id = a.id, name = "n" .. a.id }
end
EOF
events() { # N BAD_KIND BAD_IDS...: N events, those with the listed ids bad
  python3 - "$@" <<'PY'
import sys
n, kind, bad = int(sys.argv[1]), sys.argv[2], {int(i) for i in sys.argv[3:]}
for i in range(1, n + 1):
    extra = ',"bad":"%s"' % kind if i in bad else ""
    print('{"id":%d}\t{"op":"c","after":{"id":%d%s}}' % (i, i, extra))
PY
}
events 1000 type 100 400 600 900 >"$RUN/numbered.tsv"
produce "$TOPIC" "$RUN/numbered.tsv"
run "g2_$ID" "$TOPIC" "$RUN/bad.lua" --table numbered --format json
assert_eq "4 bad rows in 1000, numbered by ClickHouse: exit 0" 0 "$rc"
assert_contains "  ... the 4 dead-lettered, the rest inserted" \
  "consumed=1000 tombstones=0 filtered=0 dead_lettered=4 events_inserted=996 rows_inserted=996" "$(cat "$RUN/stderr")"
assert_eq "  ... in one INSERT" "996	1" \
  "$(ch "SELECT (SELECT count() FROM $DB.numbered), (SELECT count() FROM $DB.numbered_inserts)")"
assert_eq "  ... each bad row dead-lettered with its own reason" \
  "$(printf '%s\n' 99 399 599 899)" \
  "$(kcat -C -b "$KAFKA_BROKERS" -t "$TOPIC.dlq" -o beginning -e -q -f '%h\n' |
    sed -n 's/.*cdcpipe.source.offset=\([0-9]*\),cdcpipe.stage=clickhouse,cdcpipe.reason=insert into numbered: ClickHouse answered HTTP 500: Code: 27.*(at row 1).*/\1/p' | sort -n)"
consumes_nothing "g2_$ID" "$TOPIC" "$RUN/bad.lua" --table numbered --format json

# ---- the same events with the default format: the encoder refuses the bad rows, no round trip
counter numbered_rb
run "g2rb_$ID" "$TOPIC" "$RUN/bad.lua" --table numbered_rb --log-level debug --dlq-topic none \
  --dlq-file "$RUN/numbered_rb.jsonl"
assert_eq "4 bad rows in 1000, default format: exit 0" 0 "$rc"
assert_contains "  ... the 4 dead-lettered, the rest inserted" \
  "consumed=1000 tombstones=0 filtered=0 dead_lettered=4 events_inserted=996 rows_inserted=996" "$(cat "$RUN/stderr")"
assert_eq "  ... in one INSERT" "996	1" \
  "$(ch "SELECT (SELECT count() FROM $DB.numbered_rb), (SELECT count() FROM $DB.numbered_rb_inserts)")"
assert_not_contains "  ... ClickHouse never rejected a request" "ClickHouse answered" "$(cat "$RUN/stderr")"
assert_eq "  ... each refused by the encoder: lua stage, column, type and value, no ClickHouse code" \
  "$(for o in 99 399 599 899; do printf '%s lua None row for table numbered_rb: column "id" (UInt32): cannot store "not a number": not an integer (decimal digits, optional '"'"'-'"'"')\n' $o; done)" \
  "$(python3 -c 'import json,sys
for l in open(sys.argv[1]):
    d = json.loads(l); print(d["offset"], d["stage"], d.get("clickhouse_code"), d["reason"])' "$RUN/numbered_rb.jsonl")"

# ---- rejections without a row number: bounded narrowing
TOPIC="unnumbered_$ID"
topic_create "$TOPIC" 1
counter unnumbered
events 400 column $(seq 10 10 400) >"$RUN/unnumbered.tsv"
produce "$TOPIC" "$RUN/unnumbered.tsv"
run "g3_$ID" "$TOPIC" "$RUN/bad.lua" --table unnumbered --format json
assert_eq "40 bad rows in 400, not numbered by ClickHouse: exit 0" 0 "$rc"
read -r dead inserted < <(sed -n 's/^cdcpipe: .* dead_lettered=\([0-9]*\) events_inserted=\([0-9]*\) .*/\1 \2/p' "$RUN/stderr")
assert_eq "  ... every event inserted or dead-lettered" 400 "$((dead + inserted))"
assert_eq "  ... the inserted ones are in the table, none of the bad ones" "$inserted	0" \
  "$(ch "SELECT count(), countIf(id % 10 = 0) FROM $DB.unnumbered FORMAT TabSeparated")"
inserts=$(ch "SELECT count() FROM $DB.unnumbered_inserts")
((inserts <= 75)) || fail "narrowing made $inserts inserts (at most 64 + the pieces left when the budget ran out)"
pass "  ... the inserts stay bounded ($inserts, budget 64)"
assert_contains "  ... the groups are dead-lettered saying why" \
  "rows of a batch for unnumbered dead-lettered as a group: rejected together with the other" "$(cat "$RUN/stderr")"
assert_contains "  ... their dead letters too" "cdcpipe stopped narrowing this batch down after 64 inserts: insert into unnumbered: ClickHouse answered HTTP 500: Code: 16" \
  "$(kcat -C -b "$KAFKA_BROKERS" -t "$TOPIC.dlq" -o beginning -e -q -f '%h\n')"
consumes_nothing "g3_$ID" "$TOPIC" "$RUN/bad.lua" --table unnumbered --format json

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
