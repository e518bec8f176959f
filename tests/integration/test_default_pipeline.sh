#!/usr/bin/env bash
# test_default_pipeline.sh — the default pipeline.lua on generated my_table events: snapshot
# reads, creates, updates, deletes and tombstones, half of them in the {schema, payload} layout,
# keyed over a 3-partition topic. Only updates land in `changes`, created_at (MicroTimestamp)
# converted to UTC text (leap days, microsecond rounding down; DateTime cannot hold times before
# 1970, so negative epochs are covered by the unit tests), ts filled by
# ClickHouse's DEFAULT now(). A restart in the same group re-inserts nothing.
. "$(dirname "$0")/lib.sh"

TOPIC="my_table_$ID"
ch_db_create
topic_create "$TOPIC" 3

python3 - >"$RUN/records.tsv" 2>"$RUN/expected.tsv" <<'PY'
import datetime, json, random, sys
random.seed(7)
epoch = datetime.datetime(1970, 1, 1)
stamps = [1000000, 951782400123456, 1709251199999999, 1700000000123456, 4102444799999999, 86399999999]
def wrap(payload, with_schema):
    if not with_schema:
        return payload
    return {"schema": {"type": "struct", "name": "pgserver.public.my_table.Envelope", "fields": []},
            "payload": payload}
records, expected = [], []
for i in range(1, 61):
    created = stamps[i % len(stamps)]
    row = {"id": i, "name": f"name-{i}", "created_at": created}
    events = [("r" if i % 4 == 0 else "c", None, row)]
    for rev in range(i % 3):
        new = dict(row, name=f"name-{i}-rev-{rev + 1}")
        events.append(("u", row, new))
        row = new
        secs = created // 1000000  # floor, as Python does for negatives too
        text = (epoch + datetime.timedelta(seconds=secs)).strftime("%Y-%m-%d %H:%M:%S")
        expected.append((i, new["name"], text))
    if i % 5 == 0:
        events.append(("d", row, None))
    for n, (op, before, after) in enumerate(events):
        payload = {"before": before, "after": after,
                   "source": {"version": "2.7.4.Final", "connector": "postgresql", "name": "pgserver",
                              "schema": "public", "table": "my_table", "lsn": 1000 + i * 10 + n,
                              "ts_ns": 1700000000000000000 + i},
                   "op": op, "ts_ms": 1700000000000 + i}
        key = {"id": i}
        with_schema = (i + n) % 2 == 0
        records.append((json.dumps(wrap(key, with_schema)), json.dumps(wrap(payload, with_schema))))
    if i % 5 == 0:
        records.append((json.dumps({"id": i}), "NULL"))
for k, v in records:
    print(k + "\t" + v)
for i, name, text in sorted(expected):
    print(f"{i}\t{name}\t{text}\tu", file=sys.stderr)
PY
records=$(wc -l <"$RUN/records.tsv")
expected_rows=$(wc -l <"$RUN/expected.tsv")
tombstones=$(grep -c $'\tNULL$' "$RUN/records.tsv")
produce "$TOPIC" "$RUN/records.tsv"

run() {
  "$BIN" --once -b "$KAFKA_BROKERS" -t "$TOPIC" -g "g_$ID" --clickhouse "$CLICKHOUSE_URL" \
    --database "$DB" --batch-rows 7 "$SRC/pipeline.lua" 2>"$RUN/stderr"
}
run || fail "cdcpipe --once exited $?: $(cat "$RUN/stderr")"
summary=$(grep '^cdcpipe: consumed=' "$RUN/stderr" | sed 's/ seconds=.*//')
assert_eq "summary: updates inserted, the rest filtered or tombstones" \
  "cdcpipe: consumed=$records tombstones=$tombstones filtered=$((records - tombstones - expected_rows)) dead_lettered=0 events_inserted=$expected_rows rows_inserted=$expected_rows retries=0" \
  "$summary"
assert_eq "changes holds exactly the updates, created_at in UTC" "$(cat "$RUN/expected.tsv")" \
  "$(ch "SELECT id, name, created_at, op FROM $DB.changes ORDER BY id, name FORMAT TabSeparated")"
assert_eq "ts is the insert time (DEFAULT now() evaluated)" "0" \
  "$(ch "SELECT countIf(ts < now() - 3600 OR ts > now() + 60) FROM $DB.changes")"
assert_contains "all three partitions were consumed" "assigned $TOPIC [2]" "$(cat "$RUN/stderr")"

run || fail "second cdcpipe --once exited $?: $(cat "$RUN/stderr")"
assert_contains "restart in the same group consumes nothing" "cdcpipe: consumed=0 " "$(cat "$RUN/stderr")"
assert_eq "restart re-inserted nothing" "$expected_rows" "$(ch "SELECT count() FROM $DB.changes")"

ch "DROP DATABASE $DB" >/dev/null
finish
