#!/usr/bin/env bash
# test_pipelined_inserts.sh — a worker goes on transforming while its insert is in flight, but no
# further than one batch set ahead. A proxy in front of ClickHouse holds the first INSERT into the
# target table until the test lets it go. Meanwhile cdcpipe (--workers 1, --batch-rows 100, no
# time trigger) consumes the next batch: cdcpipe_events_consumed_total reaches 2 × 100 while the
# table is still empty and only one INSERT has reached the proxy — and no more than one set in
# flight and one filling (each at most --batch-rows plus the 64 records a worker takes at a time).
# Once the INSERT is let go every event lands exactly once, cdcpipe --once exits 0 and the group's
# committed offset is the end of the topic.
. "$(dirname "$0")/lib.sh"

N=1000
BATCH=100
TOPIC="pipelined_$ID"
GROUP="g_$ID"
topic_create "$TOPIC" 1
produce_creates "$TOPIC" "$N"
ch_db_create
cat >"$RUN/p.lua" <<'LUA'
function ddl()
  return [[CREATE TABLE IF NOT EXISTS p (id UInt32) ENGINE = MergeTree() ORDER BY id]]
end
function transform(e) return { id = e.after.id } end
LUA

python3 "$SRC/tests/integration/ch_proxy.py" "$RUN/proxy.port" "$CLICKHOUSE_URL" \
  --hold "INSERT INTO \`$DB\`.\`p\`" "$RUN/release" >"$RUN/proxy.log" 2>&1 &
proxy_pid=$!
cdcpipe_pid=''
cleanup() {
  kill "$proxy_pid" 2>/dev/null || true
  [[ -n $cdcpipe_pid ]] && kill -9 "$cdcpipe_pid" 2>/dev/null
  return 0
}
trap cleanup EXIT
wait_for "the proxy to listen" 10 test -s "$RUN/proxy.port"

"$BIN" --once -b "$KAFKA_BROKERS" -t "$TOPIC" -g "$GROUP" --workers 1 \
  --clickhouse "http://127.0.0.1:$(cat "$RUN/proxy.port")" --database "$DB" \
  --table p --batch-rows "$BATCH" --batch-ms 600000 --metrics 127.0.0.1:0 "$RUN/p.lua" 2>"$RUN/cdcpipe.log" &
cdcpipe_pid=$!
serving() { grep -q "metrics: serving" "$RUN/cdcpipe.log" 2>/dev/null; }
wait_for "cdcpipe to serve its metrics" 30 serving
PORT=$(sed -n 's/.*metrics: serving .* on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$RUN/cdcpipe.log")
consumed() {
  curl -sf --max-time 5 "http://127.0.0.1:$PORT/metrics" |
    awk '/^cdcpipe_events_consumed_total/ { n += $2 } END { print n + 0 }'
}
consumed_at_least() { (($(consumed) >= $1)); }

wait_for "the first INSERT into p to reach the proxy (held there)" 30 test -s "$RUN/release.held"
wait_for "cdcpipe to consume a second batch while the first is in flight" 30 \
  consumed_at_least $((2 * BATCH))
taken=$(consumed)
assert_eq "the target table is still empty (the first INSERT is held)" 0 "$(ch "SELECT count() FROM $DB.p")"
assert_eq "one INSERT in flight" 1 "$(wc -l <"$RUN/release.held")"
((taken <= 2 * (BATCH + 64))) ||
  fail "consumed $taken events with an INSERT in flight: more than one set in flight and one filling (at most $((2 * (BATCH + 64))))"
pass "consumed $taken events with the first INSERT in flight (one set in flight, one filling)"

touch "$RUN/release"
rc=0
wait "$cdcpipe_pid" || rc=$?
cdcpipe_pid=''
assert_eq "cdcpipe --once exits 0" 0 "$rc"
assert_eq "every event in ClickHouse exactly once" "$N	$N" \
  "$(ch "SELECT count(), uniqExact(id) FROM $DB.p FORMAT TSV")"
rc=0
"$BIN" lag -b "$KAFKA_BROKERS" -t "$TOPIC" -g "$GROUP" "$RUN/p.lua" >"$RUN/lag.txt" 2>"$RUN/lag.log" || rc=$?
assert_eq "cdcpipe lag exits 0" 0 "$rc"
assert_eq "the group's committed offset is the end of the topic" 1 \
  "$(grep -cE "^$TOPIC +0 +$N +$N +0\$" "$RUN/lag.txt")"
finish
