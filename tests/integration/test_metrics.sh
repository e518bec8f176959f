#!/usr/bin/env bash
# test_metrics.sh — a real Prometheus (scripts/services.sh prometheus, a private one on a free
# loopback port) scrapes a running cdcpipe's --metrics endpoint every second while it streams
# events of 3 partitions with 2 partition workers into a private ClickHouse, which this test stops
# and starts again.
# Asked through Prometheus' HTTP API: the lag of every partition reaches 0 after catch-up;
# cdcpipe_ready goes 0 during the ClickHouse outage and 1 after (and /readyz answers 503 with the
# reason, then 200) and cdcpipe_paused counts the workers waiting for it; the counters, which
# every worker updates in one shared instance, equal the summary cdcpipe prints when it stops; the
# end-to-end
# latency histogram counts every row inserted. `promtool check metrics` accepts the page and
# `promtool check rules` the shipped alert rules; every metric the dashboard and the rules name
# is on the page.
. "$(dirname "$0")/lib.sh"

N=300
TOPIC="metrics_$ID"
GROUP="g_$ID"
PIPELINE="$SRC/tests/integration/faults_outage.lua"

cdcpipe_pid=''
cleanup() {
  [[ -n $cdcpipe_pid ]] && kill -9 "$cdcpipe_pid" 2>/dev/null
  "$SRC/scripts/services.sh" stop "$RUN/prom" >/dev/null 2>&1
  ch_private_cleanup
}
trap cleanup EXIT

ch_private_start "$RUN/ch"
ch_db_create
topic_create "$TOPIC" 3

events() { # FROM TO: change events with a source commit time of now
  local i now
  now=$(date +%s%3N)
  for ((i = $1; i <= $2; i++)); do
    printf '{"id":%d}\t{"op":"c","after":{"id":%d,"name":"n%d"},"source":{"lsn":%d,"ts_ms":%d}}\n' \
      "$i" "$i" "$i" $((100000 + i)) "$now"
  done
}
events 1 $N >"$RUN/events.tsv"
printf '{"id":1}\tNULL\n{"id":2}\tNULL\n{"id":3}\tnot json\n' >>"$RUN/events.tsv"
produce "$TOPIC" "$RUN/events.tsv"

"$BIN" -b "$KAFKA_BROKERS" -t "$TOPIC" -g "$GROUP" --clickhouse "$CLICKHOUSE_URL" --database "$DB" \
  --batch-ms 200 --workers 2 --metrics 127.0.0.1:0 --dlq-topic none --dlq-file "$RUN/dlq.jsonl" \
  --shutdown-timeout 3 "$PIPELINE" 2>"$RUN/cdcpipe.log" &
cdcpipe_pid=$!
serving() { grep -q 'metrics: serving' "$RUN/cdcpipe.log"; }
wait_for "cdcpipe to serve its metrics" 30 serving
PORT=$(sed -n 's/.*metrics: serving .* on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$RUN/cdcpipe.log")
[[ -n $PORT ]] || fail "no metrics port in the log: $(cat "$RUN/cdcpipe.log")"
M="http://127.0.0.1:$PORT"

PROM_TARGETS="127.0.0.1:$PORT" PROM_RULES="$SRC/prometheus/alerts.yml" \
  "$SRC/scripts/services.sh" start "$RUN/prom" prometheus 2>"$RUN/prom-start.log" ||
  fail "cannot start Prometheus: $(cat "$RUN/prom-start.log")"
PROMETHEUS_URL=$(sed -n 's/^PROMETHEUS_URL=//p' "$RUN/prom/services.env")

# prom QUERY: the value of an instant query's single result ("" when it has none).
prom() {
  curl -sf --max-time 5 "$PROMETHEUS_URL/api/v1/query" --data-urlencode "query=$1" | python3 -c '
import json, sys
r = json.load(sys.stdin)["data"]["result"]
print(r[0]["value"][1] if len(r) == 1 else "")'
}
prom_is() { [[ $(prom "$1") == "$2" ]]; }
status() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$M$1"; }
status_is() { [[ $(status "$1") == "$2" ]]; }

ids_in_clickhouse() { [[ $(curl -sf "$CLICKHOUSE_URL/" --data-binary "SELECT uniqExact(id) FROM $DB.log" 2>/dev/null) == "$1" ]]; }
wait_for "the $N events in ClickHouse" 90 ids_in_clickhouse $N
pass "cdcpipe inserted the $N events"

curl -sf "$M/metrics" >"$RUN/metrics.txt" || fail "GET /metrics failed"
promtool check metrics <"$RUN/metrics.txt" >"$RUN/promtool.log" 2>&1 ||
  fail "promtool check metrics: $(cat "$RUN/promtool.log")"
pass "promtool check metrics accepts /metrics"
promtool check rules "$SRC/prometheus/alerts.yml" >"$RUN/promtool-rules.log" 2>&1 ||
  fail "promtool check rules: $(cat "$RUN/promtool-rules.log")"
pass "promtool check rules accepts prometheus/alerts.yml"

# every cdcpipe_* name in the dashboard and the rules is a family on the page
missing=$(python3 - "$RUN/metrics.txt" "$SRC/dashboards/cdcpipe.json" "$SRC/prometheus/alerts.yml" <<'PY'
import re, sys
page = open(sys.argv[1]).read()
families = {m[0] for m in re.findall(r"^# TYPE (\S+) (\S+)", page, re.M)}
names = set()
for path in sys.argv[2:]:
    names |= set(re.findall(r"\b((?:cdcpipe|process)_[a-z0-9_]+)", open(path).read()))
def known(n):
    return n in families or any(n == f + s for f in families for s in ("_bucket", "_sum", "_count"))
print(" ".join(sorted(n for n in names if not known(n))))
PY
)
assert_eq "every metric the dashboard and the alert rules name is on /metrics" "" "$missing"

assert_eq "/healthz answers 200" 200 "$(status /healthz)"
assert_eq "unknown paths answer 404" 404 "$(status /nothing)"
assert_eq "other methods answer 405" 405 "$(curl -s -o /dev/null -w '%{http_code}' -X POST "$M/metrics")"

lag_zero() { prom_is "count(cdcpipe_consumer_lag{topic=\"$TOPIC\"} == 0)" 3; }
wait_for "Prometheus to see the lag of all 3 partitions at 0" 60 lag_zero
pass "Prometheus: the lag of every partition reached 0 after catch-up"
wait_for "Prometheus to see cdcpipe ready" 30 prom_is 'cdcpipe_ready' 1
pass "Prometheus: cdcpipe_ready is 1"
assert_eq "Prometheus: cdcpipe_workers is 2" 2 "$(prom cdcpipe_workers)"
assert_eq "Prometheus: no worker paused while ClickHouse answers" 0 "$(prom cdcpipe_paused)"
assert_eq "/readyz answers 200 while ClickHouse answers" 200 "$(status /readyz)"

# ClickHouse goes away: the next insert fails, /readyz says why
ch_private_stop
events $((N + 1)) $((N + 30)) >"$RUN/more.tsv"
produce "$TOPIC" "$RUN/more.tsv"
wait_for "/readyz to answer 503 during the outage" 60 status_is /readyz 503
assert_contains "/readyz names ClickHouse" "ClickHouse unreachable" "$(curl -s "$M/readyz")"
wait_for "Prometheus to see cdcpipe not ready" 30 prom_is 'cdcpipe_ready' 0
pass "Prometheus: cdcpipe_ready is 0 during the outage"
paused_some() { local v; v=$(prom cdcpipe_paused); [[ -n $v ]] && ((v >= 1 && v <= 2)); }
wait_for "Prometheus to see workers paused during the outage" 30 paused_some
pass "Prometheus: cdcpipe_paused counts the workers retrying their insert ($(prom cdcpipe_paused) of 2)"
assert_eq "/healthz stays 200 during the outage (every thread still turns)" 200 "$(status /healthz)"
ch_private_restart
wait_for "/readyz to answer 200 after the outage" 60 status_is /readyz 200
pass "/readyz answers 200 once ClickHouse takes the rows again"
wait_for "all $((N + 30)) events in ClickHouse" 90 ids_in_clickhouse $((N + 30))
wait_for "Prometheus to see the lag back at 0" 60 lag_zero
wait_for "Prometheus to see cdcpipe ready again" 30 prom_is 'cdcpipe_ready' 1
wait_for "Prometheus to see no worker paused any more" 30 prom_is 'cdcpipe_paused' 0
pass "Prometheus: ready again and no lag after the outage"

# Prometheus has the final figures once its last scrape equals the page now (nothing moves)
inserted_now() { curl -sf "$M/metrics" | sed -n 's/^cdcpipe_events_inserted_total //p'; }
caught_up() { local n; n=$(inserted_now) && [[ -n $n ]] && prom_is 'cdcpipe_events_inserted_total' "$n"; }
wait_for "Prometheus to scrape the final counters" 30 caught_up
declare -A P
P[consumed]=$(prom "sum(cdcpipe_events_consumed_total) - sum(cdcpipe_events_handed_back_total)")
P[tombstones]=$(prom 'cdcpipe_tombstones_total')
P[filtered]=$(prom 'cdcpipe_events_filtered_total')
P[dead_lettered]=$(prom 'sum(cdcpipe_events_dead_lettered_total)')
P[events_inserted]=$(prom 'cdcpipe_events_inserted_total')
P[rows_inserted]=$(prom 'sum(cdcpipe_rows_inserted_total)')
P[retries]=$(prom 'cdcpipe_retries_total{class="transient"}')
e2e_count=$(prom 'sum(cdcpipe_end_to_end_latency_seconds_count)')
decode_dl=$(prom 'cdcpipe_events_dead_lettered_total{stage="decode"}')

# cdcpipe lag, same options as the run: every partition at lag 0, the running member and its
# partitions
rc=0
"$BIN" lag -b "$KAFKA_BROKERS" -t "$TOPIC" -g "$GROUP" "$PIPELINE" >"$RUN/lag.txt" 2>"$RUN/lag.log" || rc=$?
assert_eq "cdcpipe lag exits 0" 0 "$rc"
lag=$(cat "$RUN/lag.txt")
assert_eq "cdcpipe lag: 3 partitions at lag 0" 3 "$(grep -cE "^$TOPIC +[0-2] +[0-9]+ +[0-9]+ +0\$" <<<"$lag")"
assert_contains "cdcpipe lag: the total" "total lag 0 of group $GROUP" "$lag"
assert_contains "cdcpipe lag: the member and its partitions" "$TOPIC[0,1,2]" "$lag"

kill -TERM "$cdcpipe_pid"
rc=0
wait "$cdcpipe_pid" || rc=$?
cdcpipe_pid=
assert_eq "cdcpipe exits 0 after SIGTERM" 0 "$rc"
summary=$(grep -o 'stopped: consumed=.*' "$RUN/cdcpipe.log") || fail "no final summary in the log"
for key in consumed tombstones filtered dead_lettered events_inserted rows_inserted retries; do
  want=${summary##* $key=}
  want=${want##*: $key=}
  want=${want%% *}
  assert_eq "Prometheus' $key equals the summary's" "$want" "${P[$key]}"
done
# what the two workers handled, added up in the one shared instance: every record exactly once
assert_eq "consumed: every record of the topic, across both workers" $((N + 33)) "${P[consumed]}"
assert_eq "events inserted: every change event" $((N + 30)) "${P[events_inserted]}"
assert_eq "tombstones: both" 2 "${P[tombstones]}"
((P[retries] > 0)) || fail "no transient retry counted across the outage"
assert_eq "the bad event is a decode-stage dead letter" 1 "$decode_dl"
assert_eq "the end-to-end latency histogram counts every row inserted" "${P[rows_inserted]}" "$e2e_count"

# --log-format json: every log line is one JSON object with time, level and message, plus the
# event (topic, partition, offset) where a worker logs about one: a dry run of a fresh group reads
# the topic again and logs the bad event's dead letter
rc=0
"$BIN" --once --dry-run --from beginning --log-format json -b "$KAFKA_BROKERS" -t "$TOPIC" -g "${GROUP}_json" \
  --clickhouse "$CLICKHOUSE_URL" --database "$DB" "$PIPELINE" >/dev/null 2>"$RUN/json.log" || rc=$?
assert_eq "a --once run with --log-format json exits 0" 0 "$rc"
bad=$(python3 - "$RUN/json.log" "$TOPIC" <<'PY'
import json, sys
lines = [l for l in open(sys.argv[1]) if not l.startswith("cdcpipe: consumed=")]
base, context = {"time", "level", "message"}, {"topic", "partition", "offset", "table", "code"}
objs = [json.loads(l) for l in lines]
bad = [o for o in objs if not base <= set(o) <= base | context]
events = [o for o in objs if o.get("topic") == sys.argv[2] and isinstance(o.get("partition"), int)
          and isinstance(o.get("offset"), int) and "error" in o["message"]]
print(("bad: %s" % bad[0]) if bad else ("no line names its event" if not events else len(lines)))
PY
)
[[ $bad =~ ^[0-9]+$ ]] && ((bad > 0)) || fail "--log-format json: $bad"
pass "--log-format json: $bad log lines, each a JSON object with time, level and message, the event's topic, partition and offset where one is handled"
finish
