#!/usr/bin/env bash
# scripts/demo.sh — the whole pipeline for real, on this machine, then everything stopped again:
#
#   PostgreSQL 15 (wal_level=logical) ── Debezium PostgreSQL connector (Kafka Connect, pgoutput)
#     ── Apache Kafka (KRaft) topic pgserver.public.my_table ── cdcpipe pipeline.lua ── ClickHouse
#
# 1. installs missing Debian packages and builds cdcpipe (build/),
# 2. starts every service on free loopback ports in run/demo/ (the JVM stack comes from Maven
#    Central once and is cached),
# 3. creates public.my_table, registers Debezium exactly as docker-compose.yml does (slot
#    debezium_slot, publication debezium_pub, topic.prefix pgserver, plugin.name pgoutput),
# 4. runs scripts/update_postgres.sh (inserts and updates rows),
# 5. runs cdcpipe with the default pipeline.lua and its metrics endpoint until the updates have
#    landed in `changes`, prints a few metrics, stops it (SIGTERM) and prints the last 10 rows,
# 6. stops every service it started (also on failure or Ctrl-C).
# Usage: scripts/demo.sh [-n ROUNDS]     (default 10 rounds of insert + update)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROUNDS=10
if [[ ${1:-} == -n ]]; then ROUNDS=${2:?-n needs a number}; fi
RUN=$ROOT/run/demo
say() { printf '\n== %s\n' "$*" >&2; }

say "installing missing packages and building"
"$ROOT/scripts/deps.sh"
cmake -S "$ROOT" -B "$ROOT/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$ROOT/build" -j"$(nproc)" --target cdcpipe >/dev/null
BIN=$ROOT/build/cdcpipe

say "starting PostgreSQL, Kafka, Kafka Connect + Debezium, ClickHouse in $RUN"
"$ROOT/scripts/services.sh" stop "$RUN" >/dev/null 2>&1 || true
rm -rf "$RUN"
trap '"$ROOT/scripts/services.sh" stop "$RUN"' EXIT
"$ROOT/scripts/services.sh" start "$RUN" clickhouse postgres kafka connect
set -a
. "$RUN/services.env"
set +a

say "creating public.my_table and registering the Debezium connector"
PGPASSWORD=$PG_PASSWORD psql -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d "$PG_DB" -qAt -v ON_ERROR_STOP=1 \
  -c "CREATE TABLE IF NOT EXISTS public.my_table (id int primary key, name text, created_at timestamp)"
"$ROOT/scripts/services.sh" register-debezium "$RUN"

say "simulating changes in PostgreSQL ($ROUNDS rounds of insert + update)"
"$ROOT/scripts/update_postgres.sh" --env "$RUN/services.env" -n "$ROUNDS"

say "running cdcpipe pipeline.lua (metrics on) until the $ROUNDS updates are in ClickHouse"
export CDCPIPE_BROKERS=$KAFKA_BROKERS CDCPIPE_CLICKHOUSE_URL=$CLICKHOUSE_URL
count() { curl -sf "$CLICKHOUSE_URL/" --data-binary "SELECT count() FROM changes" 2>/dev/null || echo 0; }
# Runs until stopped, as in production, with the Prometheus endpoint on a free loopback port
# (port 0: the log line "metrics: serving ... on 127.0.0.1:PORT" says which).
"$BIN" --metrics 127.0.0.1:0 "$ROOT/pipeline.lua" 2>"$RUN/cdcpipe.log" &
cdcpipe_pid=$!
trap 'kill "$cdcpipe_pid" 2>/dev/null || true; "$ROOT/scripts/services.sh" stop "$RUN"' EXIT
deadline=$((SECONDS + 120))
until (($(count) >= ROUNDS)); do
  kill -0 "$cdcpipe_pid" 2>/dev/null || { cat "$RUN/cdcpipe.log" >&2; echo "demo: cdcpipe exited" >&2; exit 1; }
  ((SECONDS < deadline)) || { echo "demo: the updates did not arrive within 120 s" >&2; exit 1; }
  sleep 1 # Debezium publishes asynchronously; poll again
done
metrics_url=$(sed -n 's/.*metrics: serving .* on \([0-9.:]*\).*/http:\/\/\1\/metrics/p' "$RUN/cdcpipe.log" | head -n 1)
say "a few of cdcpipe's metrics ($metrics_url)"
curl -sf "$metrics_url" | grep -E '^cdcpipe_(events_consumed_total|rows_inserted_total|consumer_lag|end_to_end_latency_seconds_(count|sum)|workers|ready)[{ ]' || true
kill -TERM "$cdcpipe_pid"
rc=0
wait "$cdcpipe_pid" || rc=$?
grep -E 'stopped:' "$RUN/cdcpipe.log" >&2 || true
((rc == 0)) || { tail -n 20 "$RUN/cdcpipe.log" >&2; echo "demo: cdcpipe exited $rc after SIGTERM" >&2; exit 1; }

say "the last 10 rows of changes"
curl -sf "$CLICKHOUSE_URL/" --data-binary \
  "SELECT id, name, created_at, op, ts FROM changes ORDER BY ts DESC, id DESC LIMIT 10 FORMAT PrettyCompactNoEscapes"
say "done: stopping the services"
