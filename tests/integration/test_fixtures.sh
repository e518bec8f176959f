#!/usr/bin/env bash
# test_fixtures.sh — every synthesized Debezium fixture (both JSON layouts, 2.5 and 2.7, with and
# without schemas) plus int64 edge events and a tombstone (handled by the pipeline's tombstone(meta)), through a real Kafka broker and
# `cdcpipe --once` into a real ClickHouse. Asserts the exact rows (expected values computed
# independently in Python from the same files), the --once summary counts, and that a restart in
# the same consumer group inserts nothing again (offsets were committed).
. "$(dirname "$0")/lib.sh"

FIX=$SRC/tests/fixtures/debezium/handwritten
TOPIC="fixtures_$ID"
ch_db_create

# Build "KEY<TAB>VALUE" lines: every non-key fixture, keyed by the 2.7 key fixture of the same
# schema mode; then int64 edges; then a tombstone.
RUN=$RUN python3 - "$FIX" >"$RUN/records.tsv" 2>"$RUN/expected.tsv" <<'PY'
import json, os, sys
fix = sys.argv[1]
def compact(path):
    with open(path, encoding="utf-8") as f:
        return json.dumps(json.load(f), separators=(",", ":"), ensure_ascii=False)
key_with = compact(os.path.join(fix, "S27-01-key-with-schema.json"))
key_without = compact(os.path.join(fix, "S27-01-key-no-schema.json"))
records = []
for name in sorted(os.listdir(fix)):
    if "-key-" in name or not name.endswith(".json"):
        continue
    value = compact(os.path.join(fix, name))
    records.append((key_with if "with-schema" in name else key_without, value))
edges = [
    {"op": "c", "after": {"id": 9223372036854775807, "name": "max"}, "source": {"table": "edge", "ts_ns": -9223372036854775808}},
    {"op": "u", "after": {"id": 9007199254740993, "name": "2^53+1"}, "source": {"table": "edge", "ts_ns": 9007199254740993}},
    {"schema": {"type": "struct"}, "payload": {"op": "d", "before": {"id": -9223372036854775808, "name": "min \"quoted\" \\ \u00e9\u4e2d"}, "source": {"table": "edge", "ts_ns": 1}}},
]
for e in edges:
    records.append((key_without, json.dumps(e, separators=(",", ":"), ensure_ascii=False)))
records.append((key_without, "NULL"))  # tombstone
for k, v in records:
    print(k + "\t" + v)
# expected rows, as ClickHouse prints TSV
def esc(s):
    return s.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
for off, (k, v) in enumerate(records):
    d = {"op": "tombstone"} if v == "NULL" else json.loads(v)
    if isinstance(d, dict) and "schema" in d and "payload" in d:
        d = d["payload"]
    image = d.get("after") or d.get("before") or d
    src = d.get("source") or {}
    kid = json.loads(k)
    kid = kid.get("payload", kid).get("id")
    ident = image.get("id") if isinstance(image.get("id"), int) else None
    ts = src.get("ts_ns")
    name = image.get("first_name") or image.get("name") or ""
    cols = [off, d.get("op") or "-", src.get("table") or "", ident, kid, ts, name]
    line = "\t".join("\\N" if c is None else esc(str(c)) for c in cols)
    print(line, file=sys.stderr)
    change = d.get("op") in ("c", "u", "d", "r", "t", "m", "tombstone")
    with open(os.environ["RUN"] + ("/expected_changes.tsv" if change else "/not_change_events.txt"), "a") as f:
        print(line if change else off, file=f)
PY
records=$(wc -l <"$RUN/records.tsv")
produce "$TOPIC" "$RUN/records.tsv"

run() { # GROUP [OPTION...]
  local group=$1
  shift
  "$BIN" --once -b "$KAFKA_BROKERS" -t "$TOPIC" -g "$group" --clickhouse "$CLICKHOUSE_URL" \
    --database "$DB" --table events "$@" "$SRC/tests/integration/fixtures_audit.lua" 2>"$RUN/stderr"
}
summary() { grep '^cdcpipe: consumed=' "$RUN/stderr" | sed 's/ seconds=.*//'; }

# --input debezium (the default): the records that are not change events go to the dead letters.
others=$(wc -l <"$RUN/not_change_events.txt")
run "g1_$ID" --dlq-topic none --dlq-file "$RUN/dlq.jsonl" ||
  fail "cdcpipe --once exited $?: $(cat "$RUN/stderr")"
assert_eq "--input debezium: the $others records that are not change events are dead-lettered" \
  "cdcpipe: consumed=$records tombstones=0 filtered=0 dead_lettered=$others events_inserted=$((records - others)) rows_inserted=$((records - others)) retries=0" \
  "$(summary)"
assert_eq "--input debezium: the dead letters are exactly those records, with the reason" \
  "$(sed 's/$/ decode not a Debezium change event/' "$RUN/not_change_events.txt")" \
  "$(python3 -c '
import json, sys
for line in open(sys.argv[1]):
    d = json.loads(line)
    print(d["offset"], d["stage"], d["reason"].split(":")[0])' "$RUN/dlq.jsonl")"
assert_contains "--input debezium: the reason says how to accept them" "need --input json" \
  "$(cat "$RUN/dlq.jsonl")"
assert_eq "--input debezium: the change events' rows are exact" \
  "$(cat "$RUN/expected_changes.tsv")" \
  "$(ch "SELECT off, op, tbl, id, key_id, ts_ns, name FROM $DB.events ORDER BY off FORMAT TabSeparated")"
ch "TRUNCATE TABLE $DB.events" >/dev/null

# --input json: every record reaches transform.
run "g2_$ID" --input json || fail "cdcpipe --once exited $?: $(cat "$RUN/stderr")"
assert_eq "--input json: summary counts every record" \
  "cdcpipe: consumed=$records tombstones=0 filtered=0 dead_lettered=0 events_inserted=$records rows_inserted=$records retries=0" \
  "$(summary)"
assert_eq "rows in ClickHouse equal the fixtures, int64 exact" "$(cat "$RUN/expected.tsv")" \
  "$(ch "SELECT off, op, tbl, id, key_id, ts_ns, name FROM $DB.events ORDER BY off FORMAT TabSeparated")"

run "g2_$ID" --input json || fail "second cdcpipe --once exited $?: $(cat "$RUN/stderr")"
assert_contains "restart in the same group consumes nothing" "cdcpipe: consumed=0 " "$(cat "$RUN/stderr")"
assert_eq "restart re-inserted nothing" "$records" "$(ch "SELECT count() FROM $DB.events")"

ch "DROP DATABASE $DB" >/dev/null
finish
