#!/usr/bin/env bash
# test_debezium_e2e.sh — end to end through real Debezium: SQL statements in PostgreSQL →
# Debezium's PostgreSQL connector (pgoutput, in Kafka Connect) → Apache Kafka → cdcpipe with the
# default pipeline.lua → ClickHouse. The rows in `changes` must be exactly the updates, with the
# post-update name and created_at in UTC to the second, and nothing else (inserts, deletes and
# the snapshot are filtered). A second run re-inserts nothing.
. "$(dirname "$0")/lib.sh"

TABLE="e2e_$ID"
PREFIX="pg_$ID"
TOPIC="$PREFIX.public.$TABLE"
CONNECTOR="c_$ID"
export PGHOST=$PG_HOST PGPORT=$PG_PORT PGUSER=$PG_USER PGDATABASE=$PG_DB PGPASSWORD=${PG_PASSWORD:-postgres}
sql() { psql -v ON_ERROR_STOP=1 -qAt -c "$1" >/dev/null || fail "psql: $1"; }
cleanup() {
  curl -s -o /dev/null -X DELETE "$CONNECT_URL/connectors/$CONNECTOR" || true
  # The slot stays active until the task has stopped: retry dropping it for a few seconds.
  for _ in $(seq 50); do
    psql -qAt -c "SELECT pg_drop_replication_slot('s_$ID') FROM pg_replication_slots WHERE slot_name = 's_$ID' AND NOT active" >/dev/null 2>&1 || true
    [[ -z $(psql -qAt -c "SELECT 1 FROM pg_replication_slots WHERE slot_name = 's_$ID'" 2>/dev/null) ]] && break
    sleep 0.2
  done
  psql -qAt -c "DROP TABLE IF EXISTS public.$TABLE; DROP PUBLICATION IF EXISTS p_$ID" >/dev/null 2>&1 || true
}
trap cleanup EXIT

ch_db_create
sql "CREATE TABLE public.$TABLE (id int primary key, name text, created_at timestamp)"
sql "INSERT INTO public.$TABLE VALUES (1, 'snap', '2020-01-01 00:00:00')"

DBZ_NAME=$CONNECTOR DBZ_TOPIC_PREFIX=$PREFIX DBZ_SLOT="s_$ID" DBZ_PUBLICATION="p_$ID" \
  DBZ_TABLES="public.$TABLE" "$SRC/scripts/services.sh" register-debezium "$(dirname "$SERVICES_ENV")" \
  >"$RUN/register.log" 2>&1 || fail "registering Debezium failed: $(tail -20 "$RUN/register.log")"

sql "INSERT INTO public.$TABLE VALUES (2, 'two', '2024-02-29 12:34:56.789012'), (3, 'three', '1999-12-31 23:59:59.5')"
sql "UPDATE public.$TABLE SET name = 'two-b' WHERE id = 2"
sql "UPDATE public.$TABLE SET name = 'snap-b' WHERE id = 1"
sql "UPDATE public.$TABLE SET name = 'two-c', created_at = '2023-11-14 22:13:20.000001' WHERE id = 2"
sql "DELETE FROM public.$TABLE WHERE id = 3"
sql "INSERT INTO public.$TABLE VALUES (4, 'Zoë \"quoted\" \\ back', '2001-09-09 01:46:40')"
sql "UPDATE public.$TABLE SET name = name || '!' WHERE id = 4"

expected=$(printf '%s\n' \
  $'1\tsnap-b\t2020-01-01 00:00:00\tu' \
  $'2\ttwo-b\t2024-02-29 12:34:56\tu' \
  $'2\ttwo-c\t2023-11-14 22:13:20\tu' \
  $'4\tZoë "quoted" \\\\ back!\t2001-09-09 01:46:40\tu')

# Debezium delivers asynchronously: run --once until all four updates have landed.
landed() {
  "$BIN" --once -q -b "$KAFKA_BROKERS" -t "$TOPIC" -g "g_$ID" --clickhouse "$CLICKHOUSE_URL" \
    --database "$DB" "$SRC/pipeline.lua" 2>>"$RUN/stderr" || fail "cdcpipe exited $?: $(tail "$RUN/stderr")"
  [[ $(ch "SELECT count() FROM $DB.changes") -ge 4 ]]
}
wait_for "the four updates to reach ClickHouse" 90 landed
assert_eq "changes holds exactly the updates made in PostgreSQL" "$expected" \
  "$(ch "SELECT id, name, created_at, op FROM $DB.changes ORDER BY id, name FORMAT TabSeparated")"

"$BIN" --once -q -b "$KAFKA_BROKERS" -t "$TOPIC" -g "g_$ID" --clickhouse "$CLICKHOUSE_URL" \
  --database "$DB" "$SRC/pipeline.lua" 2>"$RUN/stderr" || fail "cdcpipe exited $?"
assert_eq "a second run re-inserts nothing" 4 "$(ch "SELECT count() FROM $DB.changes")"
ch "DROP DATABASE $DB" >/dev/null
finish
