#!/usr/bin/env bash
# test_runaway.sh — events whose transform runs away, through real Kafka into real ClickHouse: a
# pattern match that takes minutes inside one C call (stopped by --lua-timeout), a loop that
# catches the instruction budget's error with pcall or xpcall, debug.sethook to remove the hook,
# debug.setupvalue on a cdc function (it aborted the process). One `cdcpipe --once` run
# dead-letters each of them at the lua stage with a reason naming what stopped it, inserts every
# good event, exits 0 and commits everything: a second run consumes nothing. runaway.lua is the
# pipeline. Nothing here measures time: the run only has to finish, within a generous deadline.
. "$(dirname "$0")/lib.sh"

TOPIC="runaway_$ID"
ch_db_create
topic_create "$TOPIC" 1
{
  printf '{"id":1}\t{"op":"c","after":{"id":1,"name":"one"}}\n'
  printf '{"bad":"match"}\t{"op":"c","after":{"id":100,"kind":"match","n":400000}}\n'
  printf '{"id":2}\t{"op":"c","after":{"id":2,"name":"two"}}\n'
  printf '{"bad":"pcall"}\t{"op":"c","after":{"id":101,"kind":"pcall"}}\n'
  printf '{"bad":"xpcall"}\t{"op":"c","after":{"id":102,"kind":"xpcall"}}\n'
  printf '{"id":3}\t{"op":"c","after":{"id":3,"name":"three"}}\n'
  printf '{"bad":"sethook"}\t{"op":"c","after":{"id":103,"kind":"sethook"}}\n'
  printf '{"bad":"setupvalue"}\t{"op":"c","after":{"id":104,"kind":"setupvalue"}}\n'
  printf '{"id":4}\t{"op":"c","after":{"id":4,"name":"four"}}\n'
} >"$RUN/records.tsv"
produce "$TOPIC" "$RUN/records.tsv"

run() { # LOG: one --once run (the limits as in production, a smaller budget to be quick)
  local rc=0
  timeout 240 "$BIN" --once -b "$KAFKA_BROKERS" -t "$TOPIC" -g "g_$ID" --clickhouse "$CLICKHOUSE_URL" \
    --database "$DB" --table good --dlq-topic none --dlq-file "$RUN/dlq.jsonl" \
    --lua-instructions 1000000 --lua-timeout 1000 "$SRC/tests/integration/runaway.lua" 2>"$1" || rc=$?
  [[ $rc == 0 ]] || fail "cdcpipe --once exited $rc (124: still running after 240 s): $(tail -5 "$1")"
}
run "$RUN/first.log"
pass "cdcpipe --once finishes over runaway events and exits 0"
assert_contains "the summary counts 5 dead letters and 4 inserted events" \
  "cdcpipe: consumed=9 tombstones=0 filtered=0 dead_lettered=5 events_inserted=4 rows_inserted=4 " \
  "$(cat "$RUN/first.log")"
assert_eq "every good row inserted" "$(printf '1\tone\n2\ttwo\n3\tthree\n4\tfour')" \
  "$(ch "SELECT id, name FROM $DB.good ORDER BY id FORMAT TabSeparated")"

declare -A REASON=(
  [match]="transform ran past its time limit of 1000 ms (--lua-timeout)"
  [pcall]="transform used up its budget of 1000000 Lua instructions (--lua-instructions)"
  [xpcall]="transform used up its budget of 1000000 Lua instructions (--lua-instructions)"
  [sethook]="attempt to call a nil value (field 'sethook')"
  [setupvalue]="attempt to call a nil value (field 'setupvalue')"
)
# kind, stage, offset, reason per dead letter (tabs and newlines in the reason escaped, as jq's @tsv)
listing=$(python3 - "$RUN/dlq.jsonl" <<'PY'
import json, sys
esc = lambda v: str(v).replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
for line in open(sys.argv[1], encoding="utf-8"):
    d = json.loads(line)
    print("\t".join(esc(v) for v in (json.loads(d["key"])["bad"], d["stage"], d["offset"], d["reason"])))
PY
)
assert_eq "one dead letter per runaway event, in order, with its offset" \
  "$(printf 'match\tlua\t1\npcall\tlua\t3\nxpcall\tlua\t4\nsethook\tlua\t6\nsetupvalue\tlua\t7')" \
  "$(cut -f1-3 <<<"$listing")"
while IFS=$'\t' read -r kind stage offset reason; do
  assert_contains "$kind: the reason names what stopped it" "${REASON[$kind]}" "$reason"
done <<<"$listing"
assert_contains "the log names the limit too" "(--lua-timeout)" "$(cat "$RUN/first.log")"

run "$RUN/again.log"
assert_contains "everything was committed: a second run consumes nothing" "cdcpipe: consumed=0 " \
  "$(cat "$RUN/again.log")"
ch "DROP DATABASE $DB" >/dev/null
finish
