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
. "$(dirname "$0")/lib.sh"

DATA=$SRC/tests/integration/examples_data.py
export DEBEZIUM_FIXTURES=$SRC/../shared/debezium-fixtures/synthesized
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

ch "DROP DATABASE $DB" >/dev/null
finish
