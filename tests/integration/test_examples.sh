#!/usr/bin/env bash
# test_examples.sh — the ready-made pipelines in examples/ against a real Kafka broker and a real
# ClickHouse:
#  - mirror.lua: a scripted random history of public.my_table (examples_data.py mirror: a
#    snapshot, then >= 1000 inserts, updates, deletes with tombstones, primary-key changes,
#    unchanged-TOAST updates and a TRUNCATE on >= 50 keys, 2.5/2.7 layouts, schemas on/off) in a
#    3-partition topic. The mirror view must equal the final table computed by replaying the
#    history in Python — after one consumption, after the same events are consumed again by a
#    second group, and after a third group consumes them once more in random order.
#  - audit.lua: every kind of record (fixtures: c, u, d, r, t, m, unwrap SMT, heartbeat,
#    transaction metadata, tombstone) → exact rows in cdc_audit.
#  - route.lua: customers and orders topics → exact rows in the two target views; an
#    unrecoverable unchanged-TOAST value is dead-lettered with the column named.
#  - mirror.lua end to end: PostgreSQL (REPLICA IDENTITY DEFAULT, out-of-line TOAST values) → the
#    real Debezium connector → Kafka → cdcpipe → ClickHouse: snapshot, inserts, updates, updates
#    that leave a TOAST-ed value unchanged (real placeholders), deletes, primary-key changes and a
#    multi-statement transaction; the view must equal the PostgreSQL table, except the one
#    documented case (a key change that leaves a TOAST-ed value unchanged).
. "$(dirname "$0")/lib.sh"

DATA=$SRC/tests/integration/examples_data.py
export DEBEZIUM_FIXTURES=$SRC/tests/fixtures/debezium/handwritten
ch_db_create

once() { # once LABEL SCRIPT GROUP TOPIC... : cdcpipe --once, stderr in $RUN/LABEL.stderr
  local label=$1 script=$2 group=$3
  shift 3
  local topics=()
  for t in "$@"; do topics+=(-t "$t"); done
  "$BIN" --once -b "$KAFKA_BROKERS" "${topics[@]}" -g "$group" --clickhouse "$CLICKHOUSE_URL" \
    --database "$DB" "$SRC/examples/$script" 2>"$RUN/$label.stderr" ||
    fail "cdcpipe --once $script ($label) exited $?: $(tail -5 "$RUN/$label.stderr")"
}
summary() { grep '^cdcpipe: consumed=' "$RUN/$1.stderr" | sed 's/ seconds=.*//'; }
zero_date=$(ch "SELECT toString(toDate(0))")
zero_datetime=$(ch "SELECT toString(toDateTime(0, 'UTC'))")

# ---- mirror.lua -----------------------------------------------------------------------------------
MIRROR="mirror_$ID"
topic_create "$MIRROR" 3
topic_create "${MIRROR}_shuffled" 1
python3 "$DATA" mirror "$RUN" "$RANDOM" >"$RUN/mirror.gen" || fail "generating the history failed"
records=$(wc -l <"$RUN/mirror.tsv")
tombstones=$(grep -c $'\tNULL$' "$RUN/mirror.tsv")
produce "$MIRROR" "$RUN/mirror.tsv"
produce "${MIRROR}_shuffled" "$RUN/mirror_shuffled.tsv"

mirror_check() { # mirror_check WHAT
  ch "SELECT id, name, created_at FROM $DB.my_table ORDER BY id FORMAT TabSeparated" >"$RUN/mirror.actual"
  python3 "$DATA" check mirror "$RUN" "$RUN/mirror.actual" >"$RUN/mirror.check" 2>&1 ||
    fail "$1: the mirror differs from the source table: $(cat "$RUN/mirror.check")"
  pass "$1: $(cat "$RUN/mirror.check") ($(cat "$RUN/mirror.gen"))"
}
once mirror1 mirror.lua "g1_$ID" "$MIRROR"
assert_eq "mirror: every change consumed, none dead-lettered" \
  "cdcpipe: consumed=$records tombstones=$tombstones filtered=0 dead_lettered=0 events_inserted=$((records - tombstones))" \
  "$(summary mirror1 | sed 's/ rows_inserted=.*//')"
mirror_check "mirror equals the source table"
assert_eq "mirror: the storage table, FINAL and filtered, has the same keys as the view" \
  "$(ch "SELECT count() FROM $DB.my_table")" \
  "$(ch "SELECT count() FROM $DB.my_table_versions FINAL WHERE _is_deleted = 0 AND _version > (SELECT max(_version) FROM $DB.my_table_truncates)")"
assert_eq "mirror: no placeholder was written as data" 0 \
  "$(ch "SELECT count() FROM $DB.my_table_toasted WHERE value = '__debezium_unavailable_value'")"

once mirror2 mirror.lua "g2_$ID" "$MIRROR"
assert_contains "mirror: a second group consumes the same events again" "consumed=$records " \
  "$(summary mirror2)"
mirror_check "mirror after consuming every event twice"

once mirror3 mirror.lua "g3_$ID" "${MIRROR}_shuffled"
assert_contains "mirror: a third group consumes them in random order" "consumed=$records " \
  "$(summary mirror3)"
mirror_check "mirror after a third, shuffled consumption"
ch "OPTIMIZE TABLE $DB.my_table_versions FINAL" >/dev/null
ch "OPTIMIZE TABLE $DB.my_table_toasted FINAL" >/dev/null
mirror_check "mirror after merging"

# ---- audit.lua ------------------------------------------------------------------------------------
AUDIT="audit_$ID"
python3 "$DATA" audit "$RUN"
produce "$AUDIT" "$RUN/audit.tsv"
once audit audit.lua "ga_$ID" "$AUDIT"
assert_eq "audit: heartbeat, BEGIN and an unwrap record without __op filtered, tombstone skipped" \
  "cdcpipe: consumed=17 tombstones=1 filtered=3 dead_lettered=0 events_inserted=13 rows_inserted=13 retries=0" \
  "$(summary audit)"
ch "SELECT op, db, schema_name, tbl, key, before, after, lsn, tx_id, snapshot, event_time,
           source_ts_ms, ts_ms, kafka_offset FROM $DB.cdc_audit FINAL ORDER BY kafka_offset
    FORMAT TabSeparated" >"$RUN/audit.actual"
python3 "$DATA" check audit "$RUN" "$RUN/audit.actual" "$zero_datetime" >"$RUN/audit.check" 2>&1 ||
  fail "audit rows differ: $(cat "$RUN/audit.check")"
pass "audit: every operation is one exact row ($(cat "$RUN/audit.check"))"
once audit2 audit.lua "ga2_$ID" "$AUDIT"
assert_eq "audit: a replay is stored once (FINAL)" 13 "$(ch "SELECT count() FROM $DB.cdc_audit FINAL")"

# ---- route.lua ------------------------------------------------------------------------------------
CUSTOMERS="customers_$ID"
ORDERS="orders_$ID"
python3 "$DATA" route "$RUN"
produce "$CUSTOMERS" "$RUN/customers.tsv"
produce "$ORDERS" "$RUN/orders.tsv"
once route route.lua "gr_$ID" "$CUSTOMERS" "$ORDERS"
assert_eq "route: 15 events, the unrecoverable TOAST update dead-lettered" \
  "cdcpipe: consumed=15 tombstones=0 filtered=0 dead_lettered=1 events_inserted=14 rows_inserted=14 retries=0" \
  "$(summary route)"
assert_contains "route: the dead letter names the table and column" \
  "route.lua: customers.email was not sent (unchanged TOAST value under REPLICA IDENTITY DEFAULT)" \
  "$(cat "$RUN/route.stderr")"
ch "SELECT id, full_name, email FROM $DB.customers ORDER BY id FORMAT TabSeparated" >"$RUN/customers.actual"
python3 "$DATA" check customers "$RUN" "$RUN/customers.actual" >"$RUN/customers.check" 2>&1 ||
  fail "route: customers differ: $(cat "$RUN/customers.check")"
pass "route: customers ($(cat "$RUN/customers.check"))"
ch "SELECT order_id, customer_id, quantity, amount_text, toInt64(amount * 100), order_date
    FROM $DB.orders ORDER BY order_id FORMAT TabSeparated" >"$RUN/orders.actual"
python3 "$DATA" check orders "$RUN" "$RUN/orders.actual" "$zero_date" >"$RUN/orders.check" 2>&1 ||
  fail "route: orders differ: $(cat "$RUN/orders.check")"
pass "route: orders, Decimal(10,2) cast exactly ($(cat "$RUN/orders.check"))"

# ---- mirror.lua end to end with the real Debezium connector ---------------------------------------
TABLE="mt_$ID"
PREFIX="pgm_$ID"
CONNECTOR="cm_$ID"
export PGHOST=$PG_HOST PGPORT=$PG_PORT PGUSER=$PG_USER PGDATABASE=$PG_DB PGPASSWORD=${PG_PASSWORD:-postgres}
sql() { psql -v ON_ERROR_STOP=1 -qAt -c "$1" >/dev/null || fail "psql: $1"; }
cleanup() {
  curl -s -o /dev/null -X DELETE "$CONNECT_URL/connectors/$CONNECTOR" || true
  for _ in $(seq 50); do # the slot stays active until the task has stopped
    psql -qAt -c "SELECT pg_drop_replication_slot('sm_$ID') FROM pg_replication_slots WHERE slot_name = 'sm_$ID' AND NOT active" >/dev/null 2>&1 || true
    [[ -z $(psql -qAt -c "SELECT 1 FROM pg_replication_slots WHERE slot_name = 'sm_$ID'" 2>/dev/null) ]] && break
    sleep 0.2
  done
  psql -qAt -c "DROP TABLE IF EXISTS public.$TABLE; DROP PUBLICATION IF EXISTS pm_$ID" >/dev/null 2>&1 || true
}
trap cleanup EXIT
# An incompressible ~9.6 kB text: PostgreSQL stores it out of line (TOAST).
big() { echo "(SELECT string_agg(md5(g::text || '-' || $1), '') FROM generate_series(1, 300) g)"; }
sql "CREATE TABLE public.$TABLE (id int PRIMARY KEY, name text, created_at timestamp)"
sql "INSERT INTO public.$TABLE SELECT i, 'snap-' || i, timestamp '2020-01-01' + i * interval '1 hour 0.123456 sec'
     FROM generate_series(1, 20) i"
sql "UPDATE public.$TABLE SET name = $(big "'snap'||id") WHERE id IN (1, 2, 3, 7)"
sql "UPDATE public.$TABLE SET name = NULL WHERE id = 8"
DBZ_NAME=$CONNECTOR DBZ_TOPIC_PREFIX=$PREFIX DBZ_SLOT="sm_$ID" DBZ_PUBLICATION="pm_$ID" \
  DBZ_TABLES="public.$TABLE" "$SRC/scripts/services.sh" register-debezium "$(dirname "$SERVICES_ENV")" \
  >"$RUN/register.log" 2>&1 || fail "registering Debezium failed: $(tail -20 "$RUN/register.log")"

sql "UPDATE public.$TABLE SET created_at = created_at + interval '1 day' WHERE id IN (1, 2)" # TOAST unchanged
sql "UPDATE public.$TABLE SET name = 'four' WHERE id = 4"
sql "UPDATE public.$TABLE SET name = $(big "'new'") WHERE id = 7"                              # TOAST changed
sql "UPDATE public.$TABLE SET created_at = '1999-12-31 23:59:59.999999' WHERE id = 7"          # and unchanged
sql "DELETE FROM public.$TABLE WHERE id = 5"
sql "UPDATE public.$TABLE SET id = 100 WHERE id = 6"                                          # key change
sql "UPDATE public.$TABLE SET id = 101 WHERE id = 3"                              # key change, TOAST unchanged
sql "INSERT INTO public.$TABLE VALUES (21, 'Zoë', '2024-02-29 12:00:00.5'), (22, NULL, NULL)"
sql "BEGIN; UPDATE public.$TABLE SET name = 'a' WHERE id = 21; UPDATE public.$TABLE SET name = 'b' WHERE id = 21;
     DELETE FROM public.$TABLE WHERE id = 9; INSERT INTO public.$TABLE VALUES (9, 'nine again', NULL); COMMIT"
sql "UPDATE public.$TABLE SET created_at = NULL WHERE id = 2"                                  # TOAST unchanged

pg_rows() {
  psql -qAt -F $'\t' -c "SELECT id, md5(coalesce(name, '')), (name IS NULL)::int,
    coalesce(to_char(date_trunc('second', created_at), 'YYYY-MM-DD HH24:MI:SS'), 'NULL')
    FROM public.$TABLE WHERE id <> 101 ORDER BY id"
}
ch_rows() {
  ch "SELECT id, lower(hex(MD5(ifNull(name, '')))), isNull(name), ifNull(toString(created_at), 'NULL')
      FROM $DB.mt WHERE id <> 101 ORDER BY id FORMAT TabSeparated"
}
expected=$(pg_rows)
mirrored() {
  MIRROR_NAME=mt MIRROR_SOURCE_TABLE=$TABLE "$BIN" --once -q -b "$KAFKA_BROKERS" -t "$PREFIX.public.$TABLE" \
    -g "gm_$ID" --clickhouse "$CLICKHOUSE_URL" --database "$DB" "$SRC/examples/mirror.lua" \
    2>>"$RUN/e2e.stderr" || fail "cdcpipe exited $?: $(tail -5 "$RUN/e2e.stderr")"
  [[ $(ch_rows) == "$expected" ]]
}
wait_for "the mirror to equal the PostgreSQL table" 90 mirrored
assert_eq "mirror end to end: the view equals PostgreSQL (snapshot, TOAST-unchanged updates, deletes, key changes)" \
  "$expected" "$(ch_rows)"
assert_eq "mirror end to end: real unchanged-TOAST placeholders arrived and none was stored" \
  "yes 0" "$(grep -q __debezium_unavailable_value <(kcat -C -b "$KAFKA_BROKERS" -t "$PREFIX.public.$TABLE" -e -q 2>/dev/null) && echo yes) $(ch "SELECT count() FROM $DB.mt_toasted WHERE value = '__debezium_unavailable_value'")"
assert_eq "mirror end to end: the documented limit — a key change leaving a TOAST-ed value unchanged" \
  "101	1	$(psql -qAt -c "SELECT to_char(date_trunc('second', created_at), 'YYYY-MM-DD HH24:MI:SS') FROM public.$TABLE WHERE id = 101")" \
  "$(ch "SELECT id, isNull(name), toString(created_at) FROM $DB.mt WHERE id = 101 FORMAT TabSeparated")"

ch "DROP DATABASE $DB" >/dev/null
finish
