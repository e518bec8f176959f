#!/usr/bin/env bash
# test_mirror.sh — the built-in mirror (examples/mirror-all.lua, require "cdcpipe.mirror")
# against real Debezium 3.x: a PostgreSQL database of mixed-type tables mirrored from nothing
# into an empty ClickHouse database by one long-running cdcpipe (-t '^<prefix>\.public\..*',
# --workers 2) while a workload runs, then, for every table,
#   SELECT … FROM t FINAL WHERE NOT _is_deleted   equals PostgreSQL's table, column by column.
#
# The PostgreSQL side is a private database (mir_<id>) with a FOR ALL TABLES publication (the
# connector's publication.autocreate.mode=all_tables), so a table created mid-stream is captured
# without touching the connector, and the pattern picks its topic up. Truncates are streamed
# (skipped.operations=none). Records carry schemas (JsonConverter schemas.enable=true), and
# NULLs stay NULLs in columns with a default (value.converter.replace.null.with.default=false:
# otherwise JsonConverter writes the default instead, and no consumer can tell).
#
# Workload: a snapshot of initial rows, then random inserts/updates/deletes (seeded; the seed is
# printed) around these mid-stream changes, in order: ADD COLUMN without default, ADD COLUMN with
# a default (text, and int NOT NULL; old rows read the default, NULL stays NULL), CREATE TABLE
# (picked up by the pattern), DROP COLUMN, primary-key changes (UPDATE of key columns, single and
# composite keys), updates leaving a TOAST-ed text unchanged under REPLICA IDENTITY DEFAULT (rows
# from the snapshot, rows inserted moments before, and a key change), TRUNCATE, deletes, and last
# a column type change the mirror cannot
# apply (text → integer): that table's later events are dead-lettered with a reason that says
# what to do, the error is logged once, and every other table stays equal.
#
# Canonical text of each type (both sides print it in TSV: PostgreSQL COPY … TO STDOUT and
# ClickHouse FORMAT TabSeparated escape alike; NULL is \N on both):
#   integers, text, enum labels, uuid, date, jsonb (as PostgreSQL prints it)   as printed
#   numeric(p,s)           PostgreSQL's text ("12.50"): ClickHouse Decimal(p, s) prints its scale
#   numeric (no scale)     PostgreSQL's text: the mirror stores VariableScaleDecimal as that text
#   boolean                0/1 (ClickHouse UInt8)
#   double precision       values chosen exact in binary (0.5, 2.25): both print the shortest form
#   timestamp(3)           "YYYY-MM-DD hh:mm:ss.mmm"       } UTC (timestamptz: AT TIME ZONE 'UTC');
#   timestamp, timestamptz "YYYY-MM-DD hh:mm:ss.uuuuuu"    } ClickHouse: toString(column)
#   text[] / int[]         JSON array text (["a","b c"], [1,-2]); PostgreSQL array_to_json, a
#                          NULL array as [] (the mirror writes NULL arrays as []); ClickHouse
#                          built from the elements (test strings have no quote or backslash)
#   the TOAST-ed body      md5 hex of the text on both sides
#   the table without primary key: compared as a sorted multiset minus _row_key (no identical
#                          rows in the data: the mirror keys such rows by their JSON and
#                          collapses duplicates, a documented limit)
. "$(dirname "$0")/lib.sh"

PGDB="mir_$ID"
PREFIX="mir_$ID"
CONNECTOR="c_$ID"
SLOT="s_$ID"
export PGHOST=$PG_HOST PGPORT=$PG_PORT PGUSER=$PG_USER PGPASSWORD=${PG_PASSWORD:-postgres}
SEED=${MIRROR_TEST_SEED:-$((RANDOM * 32768 + RANDOM))}
echo "# workload seed $SEED (MIRROR_TEST_SEED=$SEED repeats it)"
RANDOM=$SEED

pgsql() { psql -X -d "$PGDB" -v ON_ERROR_STOP=1 -qAt -c "$1" >/dev/null 2>>"$RUN/psql.err" || fail "psql: $1: $(tail -3 "$RUN/psql.err")"; }
pid=
cleanup() {
  [[ -n $pid ]] && kill -9 "$pid" 2>/dev/null
  curl -s -o /dev/null -X DELETE "$CONNECT_URL/connectors/$CONNECTOR" || true
  # The slot stays active until the task has stopped: retry dropping it for a few seconds.
  for _ in $(seq 50); do
    psql -X -d "$PG_DB" -qAt -c "SELECT pg_drop_replication_slot('$SLOT') FROM pg_replication_slots WHERE slot_name = '$SLOT' AND NOT active" >/dev/null 2>&1 || true
    [[ -z $(psql -X -d "$PG_DB" -qAt -c "SELECT 1 FROM pg_replication_slots WHERE slot_name = '$SLOT'" 2>/dev/null) ]] && break
    sleep 0.2
  done
  psql -X -d "$PG_DB" -qAt -c "DROP DATABASE IF EXISTS $PGDB WITH (FORCE)" >/dev/null 2>&1 || true
  true
}
trap cleanup EXIT

# ---------------------------------------------------------------- schema and snapshot rows
psql -X -d "$PG_DB" -v ON_ERROR_STOP=1 -qAt -c "CREATE DATABASE $PGDB" >/dev/null || fail "cannot create database $PGDB"
ch_db_create
pgsql "CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy')"
pgsql "CREATE TABLE accounts (id int PRIMARY KEY, name text NOT NULL, balance numeric(12,2),
  exact numeric, created timestamptz, born date, uid uuid, doc jsonb, tags text[], scores int[],
  mood mood, active boolean, small smallint, big bigint, ratio double precision, seen timestamp(3))"
pgsql "CREATE TABLE orders (account_id int, seq int, amount numeric(10,2) NOT NULL, note varchar(40),
  placed timestamp, PRIMARY KEY (account_id, seq))"
pgsql "CREATE TABLE events_log (kind text NOT NULL, n int, at timestamp)" # no primary key
pgsql "ALTER TABLE events_log REPLICA IDENTITY FULL"
pgsql "CREATE TABLE docs (id int PRIMARY KEY, title text, body text)"
pgsql "ALTER TABLE docs ALTER COLUMN body SET STORAGE EXTERNAL" # out of line, uncompressed
pgsql "CREATE TABLE evolve (id int PRIMARY KEY, a text, n int)"
pgsql "CREATE TABLE wipe (id int PRIMARY KEY, v text)"
pgsql "CREATE TABLE retype (id int PRIMARY KEY, code text)"
pgsql "CREATE TABLE rekey (id int PRIMARY KEY, code int NOT NULL)"

# a TOAST-sized text: 400 md5 digests (12,800 characters), different per SEED
big() { echo "(SELECT string_agg(md5(i::text || '$1'), '' ORDER BY i) FROM generate_series(1, 400) AS i)"; }

MOODS=(sad ok happy)
TAGS=("{}" "{a}" "{a,\"b c\"}" "{x,y,z}")
SCORES=("{}" "{1}" "{1,-2,3}" "{2147483647,-7}")
ACC_COLS="name, balance, exact, created, born, uid, doc, tags, scores, mood, active, small, big, ratio, seen"
acc_fields() { # R: the non-key columns of an accounts row drawn from R (ACC_COLS order)
  local r=$1
  printf "'name %d', %d.%02d, %s, '%s', '%s', '%s', '{\"k\": %d, \"l\": [true, null]}', '%s', '%s', %s, %s, %d, %d, %s, '2024-02-29 12:34:%02d.%03d'" \
    "$r" "$((r % 100000 - 50000))" "$((r % 100))" \
    "$( ((r % 5 == 0)) && echo NULL || echo "-3.14159$((r % 1000))")" \
    "2024-0$((r % 9 + 1))-1$((r % 10)) 0$((r % 10)):34:56.$((100000 + r % 900000))+02" \
    "20$((r % 3 + 10))-0$((r % 9 + 1))-2$((r % 9))" \
    "$(printf 'a0eebc99-9c0b-4ef8-bb6d-%012x' "$r")" "$r" \
    "${TAGS[r % 4]}" "${SCORES[r % 4]}" \
    "$( ((r % 7 == 0)) && echo NULL || echo "'${MOODS[r % 3]}'")" \
    "$( ((r % 3 == 0)) && echo NULL || echo "$((r % 2 == 0))::boolean")" \
    "$((r % 65536 - 32768))" "$((r * 1000003 - 9000000000))" \
    "$( ((r % 4 == 0)) && echo NULL || echo "$((r % 50)).25")" "$((r % 60))" "$((r % 1000))"
}
# (random numbers are drawn here, not in $(...) subshells, so that a seed repeats the workload)
order_values() { printf "(%d, %d, %d.%02d, 'note %d', '2023-11-14 22:13:20.%06d')" "$1" "$2" "$(($3 % 1000))" "$(($3 % 100))" "$4" "$(($4 * 7 % 1000000))"; }
N_LOG=0
log_row() { printf "('kind%d', %d, '2020-01-0%d 00:00:0%d.5')" "$(($2 % 3))" "$1" "$(($2 % 9 + 1))" "$(($2 % 10))"; }
next_log() { N_LOG=$((N_LOG + 1)); }

for i in $(seq 1 8); do r=$RANDOM; pgsql "INSERT INTO accounts VALUES ($i, $(acc_fields "$r"))"; done
for i in 1 2 3; do for s in 1 2; do r=$RANDOM r2=$RANDOM; pgsql "INSERT INTO orders VALUES $(order_values "$i" "$s" "$r" "$r2")"; done; done
for _ in 1 2 3 4; do next_log; r=$RANDOM; pgsql "INSERT INTO events_log VALUES $(log_row $N_LOG "$r")"; done
for i in 1 2 3; do pgsql "INSERT INTO docs SELECT $i, 'title $i', $(big "s$i$SEED")"; done
for i in 1 2 3; do pgsql "INSERT INTO evolve VALUES ($i, 'a$i', $i)"; done
for i in 1 2 3; do pgsql "INSERT INTO wipe VALUES ($i, 'before truncate')"; done
for i in 1 2; do pgsql "INSERT INTO retype VALUES ($i, '$((i * 11))')"; done
for i in 1 2; do pgsql "INSERT INTO rekey VALUES ($i, $i)"; done

DBZ_NAME=$CONNECTOR DBZ_TOPIC_PREFIX=$PREFIX DBZ_SLOT=$SLOT DBZ_PUBLICATION="p_$ID" DBZ_TABLES='public\..*' \
  DBZ_EXTRA_CONFIG="{\"database.dbname\": \"$PGDB\", \"publication.autocreate.mode\": \"all_tables\",
    \"skipped.operations\": \"none\", \"key.converter\": \"org.apache.kafka.connect.json.JsonConverter\",
    \"value.converter\": \"org.apache.kafka.connect.json.JsonConverter\",
    \"key.converter.schemas.enable\": \"true\", \"value.converter.schemas.enable\": \"true\",
    \"value.converter.replace.null.with.default\": \"false\"}" \
  "$SRC/scripts/services.sh" register-debezium "$(dirname "$SERVICES_ENV")" >"$RUN/register.log" 2>&1 ||
  fail "registering Debezium failed: $(tail -20 "$RUN/register.log")"

# ---------------------------------------------------------------- the mirror, from nothing
"$BIN" -t "^$PREFIX\\.public\\..*" -g "g_$ID" -b "$KAFKA_BROKERS" --clickhouse "$CLICKHOUSE_URL" \
  --database "$DB" --workers 2 --dlq-topic none --dlq-file "$RUN/dlq" --stats-interval 0 \
  --batch-ms 200 "$SRC/examples/mirror-all.lua" 2>"$RUN/cdcpipe.log" &
pid=$!

# ---------------------------------------------------------------- the workload
NEXT_ACC=9
random_dml() { # N: N random statements over accounts, orders, events_log, wipe
  local n=$1 k r r2
  for _ in $(seq "$n"); do
    k=$((RANDOM % 10)) r=$RANDOM r2=$RANDOM
    case $k in
      0 | 1) pgsql "INSERT INTO accounts ($ACC_COLS, id) VALUES ($(acc_fields "$r"), $NEXT_ACC)"; NEXT_ACC=$((NEXT_ACC + 1)) ;;
      2 | 3) pgsql "UPDATE accounts SET ($ACC_COLS) = ROW($(acc_fields "$r"))
               WHERE id = (SELECT id FROM accounts ORDER BY id OFFSET $((RANDOM % 5)) LIMIT 1)" ;;
      4) pgsql "DELETE FROM accounts WHERE id = (SELECT id FROM accounts ORDER BY id DESC OFFSET $((RANDOM % 3)) LIMIT 1) AND id > 8" ;;
      5) pgsql "INSERT INTO orders VALUES $(order_values $((r % 5 + 1)) $((r2 % 1000 + 10)) "$r" "$r2") ON CONFLICT DO NOTHING" ;;
      6) pgsql "UPDATE orders SET amount = amount + 1, note = NULLIF(note || 'u', 'never') WHERE account_id = $((RANDOM % 5 + 1))" ;;
      7) next_log; pgsql "INSERT INTO events_log VALUES $(log_row $N_LOG "$r")" ;;
      8) pgsql "UPDATE events_log SET at = at + interval '1 hour' WHERE n = (SELECT n FROM events_log ORDER BY n OFFSET $((RANDOM % 3)) LIMIT 1)" ;;
      9) pgsql "DELETE FROM events_log WHERE n = (SELECT n FROM events_log ORDER BY n DESC LIMIT 1)" ;;
    esac
  done
}

random_dml 30
# ADD COLUMN without default, then with defaults (old rows read the default in PostgreSQL)
pgsql "ALTER TABLE evolve ADD COLUMN b int"
pgsql "INSERT INTO evolve VALUES (4, 'a4', 4, 40)"
pgsql "UPDATE evolve SET b = 20 WHERE id = 2"
pgsql "ALTER TABLE evolve ADD COLUMN c text DEFAULT 'dflt'"
pgsql "ALTER TABLE accounts ADD COLUMN tier int NOT NULL DEFAULT 7"
pgsql "INSERT INTO evolve VALUES (5, 'a5', 5, 50, 'given'), (6, 'a6', 6, 60, NULL)"
pgsql "UPDATE accounts SET tier = 1 WHERE id = 2"
random_dml 20
# a table created mid-stream: the pattern picks its topic up
pgsql "CREATE TABLE late (id int PRIMARY KEY, label text, amount numeric(8,3))"
pgsql "INSERT INTO late VALUES (1, 'first', 1.5), (2, 'second', NULL)"
# DROP COLUMN: the field disappears from the records
pgsql "ALTER TABLE evolve DROP COLUMN a"
pgsql "INSERT INTO evolve VALUES (7, 7, 70, 'after drop'), (8, 8, 80, NULL)"
pgsql "UPDATE evolve SET n = n + 100 WHERE id IN (1, 5)"
# primary-key changes (Debezium: a delete of the old key and a create of the new one)
pgsql "UPDATE accounts SET id = 1000 + id WHERE id IN (3, 4)"
pgsql "UPDATE orders SET seq = seq + 100 WHERE account_id = 1"
pgsql "UPDATE late SET id = 20 WHERE id = 2"
# unchanged TOAST values (REPLICA IDENTITY DEFAULT: Debezium sends a placeholder): a snapshot row,
# and a row inserted just before (its row may still be in the worker's batch)
pgsql "UPDATE docs SET title = 'retitled 1' WHERE id = 1"
pgsql "INSERT INTO docs SELECT 4, 'title 4', $(big "s4$SEED")"
pgsql "UPDATE docs SET title = 'retitled 4' WHERE id = 4"
pgsql "UPDATE docs SET title = 'retitled 4 again' WHERE id = 4"
pgsql "UPDATE docs SET body = $(big "n2$SEED") WHERE id = 2"
pgsql "UPDATE docs SET title = NULL WHERE id = 2"
# a key change leaving the TOAST value unchanged: the new key's value comes from the old key's row
pgsql "UPDATE docs SET id = 40, title = 'rekeyed' WHERE id = 4"
random_dml 20
# TRUNCATE, then rows again
pgsql "INSERT INTO wipe VALUES (4, 'also before')"
pgsql "TRUNCATE wipe"
pgsql "INSERT INTO wipe VALUES (1, 'after truncate'), (10, 'ten')"
pgsql "UPDATE wipe SET v = 'after truncate, updated' WHERE id = 1"
# deletes
pgsql "DELETE FROM docs WHERE id = 3"
pgsql "DELETE FROM accounts WHERE id = 1"
pgsql "DELETE FROM orders WHERE account_id = 2 AND seq = 1"
pgsql "DELETE FROM events_log WHERE n = 2"
pgsql "DELETE FROM evolve WHERE id = 6"
# a type change the mirror cannot apply: text → integer
pgsql "ALTER TABLE retype ALTER COLUMN code TYPE integer USING code::integer"
pgsql "INSERT INTO retype VALUES (3, 33)"
pgsql "UPDATE retype SET code = 12 WHERE id = 1"
# and a primary key the table cannot follow (ORDER BY cannot change)
pgsql "ALTER TABLE rekey DROP CONSTRAINT rekey_pkey, ADD PRIMARY KEY (id, code)"
pgsql "INSERT INTO rekey VALUES (1, 2)"
# the other tables go on
random_dml 10
pgsql "INSERT INTO late VALUES (3, 'last', -0.001)"

# ---------------------------------------------------------------- compare
# compare TABLE PG_COLUMNS CH_COLUMNS ORDER: both sides' canonical TSV into $RUN/TABLE.{pg,ch}
compare() {
  psql -X -d "$PGDB" -qAt -c "COPY (SELECT $2 FROM $1 ORDER BY $4) TO STDOUT" >"$RUN/$1.pg" 2>>"$RUN/psql.err" || return 1
  curl -sS --fail-with-body "$CLICKHOUSE_URL/" --data-binary \
    "SELECT $3 FROM $DB.$1 FINAL WHERE NOT _is_deleted ORDER BY $4 FORMAT TabSeparated" >"$RUN/$1.ch" 2>&1 || return 1
  cmp -s "$RUN/$1.pg" "$RUN/$1.ch"
}
ts6() { echo "to_char($1, 'YYYY-MM-DD HH24:MI:SS.US')"; }
json_array() { echo "coalesce(array_to_json($1)::text, '[]')"; }
ch_str_array() { echo "concat('[', arrayStringConcat(arrayMap(x -> concat('\"', x, '\"'), $1), ','), ']')"; }
ch_num_array() { echo "concat('[', arrayStringConcat(arrayMap(x -> toString(x), $1), ','), ']')"; }
TABLES=(accounts orders events_log docs evolve wipe late)
declare -A PG_COLS CH_COLS ORDER
PG_COLS[accounts]="id, name, balance, exact, $(ts6 "created AT TIME ZONE 'UTC'"), born, uid, doc::text, $(json_array tags),
  $(json_array scores), mood::text, active::int, small, big, ratio, to_char(seen, 'YYYY-MM-DD HH24:MI:SS.MS'), tier"
CH_COLS[accounts]="id, name, balance, exact, toString(created), born, uid, doc, $(ch_str_array tags),
  $(ch_num_array scores), mood, active, small, big, ratio, toString(seen), tier"
ORDER[accounts]=id
cols() { ORDER[$1]=$2 PG_COLS[$1]=$3 CH_COLS[$1]=${4:-$3}; } # TABLE ORDER PG [CH (default: PG)]
cols orders "account_id, seq" "account_id, seq, amount, note, $(ts6 placed)" "account_id, seq, amount, note, toString(placed)"
cols events_log n "kind, n, $(ts6 at)" "kind, n, toString(at)"
cols docs id "id, title, md5(body)" "id, title, lower(hex(MD5(body)))"
cols evolve id "id, n, b, c"
cols wipe id "id, v"
cols late id "id, label, amount"
all_equal() {
  local t
  for t in "${TABLES[@]}"; do compare "$t" "${PG_COLS[$t]}" "${CH_COLS[$t]}" "${ORDER[$t]}" || return 1; done
}
deadline=$((SECONDS + 90))
until all_equal; do
  if ((SECONDS >= deadline)) || ! kill -0 "$pid" 2>/dev/null; then
    for t in "${TABLES[@]}"; do
      compare "$t" "${PG_COLS[$t]}" "${CH_COLS[$t]}" "${ORDER[$t]}" && continue
      echo "---- $t: PostgreSQL (<) vs ClickHouse FINAL WHERE NOT _is_deleted (>)" >&2
      diff "$RUN/$t.pg" "$RUN/$t.ch" | cut -c1-400 >&2 || true
    done
    echo "---- cdcpipe log (last 30 lines)" >&2
    tail -30 "$RUN/cdcpipe.log" >&2
    fail "ClickHouse does not equal PostgreSQL after 90 s (seed $SEED)"
  fi
  sleep 0.5
done
for t in "${TABLES[@]}"; do
  pass "$t: ClickHouse FINAL WHERE NOT _is_deleted equals PostgreSQL ($(wc -l <"$RUN/$t.pg") rows)"
done

# ---------------------------------------------------------------- changes the mirror cannot apply
dead() { [[ $(grep -c "\"topic\":\"$PREFIX.public.$1\"" "$RUN/dlq" 2>/dev/null) -ge $2 ]]; }
wait_for "retype's two events after the type change to be dead-lettered" 30 dead retype 2
wait_for "rekey's event after the key change to be dead-lettered" 30 dead rekey 1
dlq=$(grep "\"topic\":\"$PREFIX.public.retype\"" "$RUN/dlq")
assert_contains "the dead letter says what to do" \
  'column code of ClickHouse table retype is Nullable(String) but the source now sends Nullable(Int32)' "$dlq"
assert_contains "naming the statement to run" 'ALTER TABLE retype MODIFY COLUMN code Nullable(Int32)' "$dlq"
assert_contains "a key change is dead-lettered with what to do" \
  'ClickHouse table rekey is ordered by (id) but the source table'"'"'s primary key is now (code, id)' \
  "$(grep "\"topic\":\"$PREFIX.public.rekey\"" "$RUN/dlq")"
assert_eq "no other table's event was dead-lettered" "$(grep -c . "$RUN/dlq")" \
  "$(grep -c -e "\"topic\":\"$PREFIX.public.retype\"" -e "\"topic\":\"$PREFIX.public.rekey\"" "$RUN/dlq")"
assert_eq "the rows before the type change stayed" "$(printf '1\t11\n2\t22')" \
  "$(ch "SELECT id, code FROM $DB.retype FINAL WHERE NOT _is_deleted ORDER BY id FORMAT TabSeparated")"
assert_eq "the rows before the key change stayed" "$(printf '1\t1\n2\t2')" \
  "$(ch "SELECT id, code FROM $DB.rekey FINAL WHERE NOT _is_deleted ORDER BY id FORMAT TabSeparated")"
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
pid=
assert_eq "cdcpipe stops cleanly on SIGTERM" 0 "$rc"
log=$(cat "$RUN/cdcpipe.log")
# (every dead letter is logged too, as cdcpipe logs each; the mirror's own explanation once)
for t in retype rekey; do
  explained=$(grep "table $t .*table's events are dead-lettered meanwhile" "$RUN/cdcpipe.log" || true)
  assert_eq "the mirror explains $t's change once" 1 "$(grep -c . <<<"$explained")"
  assert_contains "as an error" " error pipeline.lua: mirror: " "$explained"
done
assert_not_contains "no event of the other tables failed" "REPLICA IDENTITY" "$log"
ch "DROP DATABASE $DB" >/dev/null
finish
