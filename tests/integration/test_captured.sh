#!/usr/bin/env bash
# test_captured.sh — the Debezium fixtures captured from the real connector
# (tests/fixtures/debezium/captured, written by scripts/capture-fixtures.sh) through a real Kafka
# broker and `cdcpipe --once` into a real ClickHouse. Every record of MANIFEST.tsv is produced
# in its order to a fresh topic: key and value as captured, Kafka-null where the file is empty
# (tombstones, a truncate's key), with the headers the manifest lists. The pipeline
# (captured_pipeline.lua) writes one row per change event and the typed row through the cdc.*
# helpers. Asserts: each change event (r c u d t m) is exactly one row with its op, table and
# primary key, the before images of REPLICA IDENTITY DEFAULT and FULL, the __debezium.oldkey
# header of a primary-key change, the unchanged-TOAST placeholder and the TOASTed text itself;
# the non-change records (heartbeat, transaction BEGIN/END, the unwrap-flattened row) and only
# they are dead-lettered with the documented reason; the typed row holds the values inserted in
# PostgreSQL (both schema modes); the summary counts reconcile; a second run consumes nothing.
# Nothing depends on the run-specific timestamps, LSNs or transaction ids of the capture.
. "$(dirname "$0")/lib.sh"

FIX=$SRC/tests/fixtures/debezium/captured
TOPIC="captured_$ID"
[[ -s $FIX/MANIFEST.tsv ]] || fail "$FIX/MANIFEST.tsv missing: run scripts/capture-fixtures.sh"
ch_db_create

# Produce in manifest order (one partition: offset = manifest line - 2) and write
# $RUN/offsets.tsv: offset, number, what, schemas.
topic_create "$TOPIC" 1
python3 - "$FIX" "$KAFKA_BROKERS" "$TOPIC" >"$RUN/offsets.tsv" <<'PY' || fail "producing the captured records failed"
import csv, json, os, subprocess, sys
fix, brokers, topic = sys.argv[1:4]

def part(name):
    with open(os.path.join(fix, name), "rb") as f:
        data = f.read()
    if not data:
        return b""  # Kafka-null: kcat -Z sends an empty key or value as null
    assert data.endswith(b"\n") and b"\n" not in data[:-1] and b"\t" not in data, name
    return data[:-1]

with open(os.path.join(fix, "MANIFEST.tsv"), encoding="utf-8", newline="") as f:
    rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
for off, r in enumerate(rows):
    args = ["kcat", "-P", "-b", brokers, "-t", topic, "-p", "0", "-K", "\t", "-Z"]
    for name, value in json.loads(r["headers"]).items():
        args += ["-H", name + "=" + value]
    subprocess.run(args, input=part(r["key_file"]) + b"\t" + part(r["value_file"]) + b"\n", check=True)
    print("\t".join([str(off), r["number"], r["what"], r["schemas"]]))
PY
records=$(wc -l <"$RUN/offsets.tsv")
assert_eq "every manifest record has its key and value files" 46 "$records"
assert_eq "the produced topic holds them all, in order" "$(cut -f1 "$RUN/offsets.tsv" | tr '\n' ' ')" \
  "$(kcat -C -b "$KAFKA_BROKERS" -t "$TOPIC" -o beginning -e -q -f '%o ')"

run() { # GROUP [OPTION...]
  "$BIN" --once -b "$KAFKA_BROKERS" -t "$TOPIC" -g "$1" --clickhouse "$CLICKHOUSE_URL" \
    --database "$DB" --table events --dlq-topic none --dlq-file "$RUN/dlq.jsonl" \
    "${@:2}" "$SRC/tests/integration/captured_pipeline.lua" 2>"$RUN/stderr"
}
summary() { grep '^cdcpipe: consumed=' "$RUN/stderr" | sed 's/ seconds=.*//'; }

run "g_$ID" || fail "cdcpipe --once exited $?: $(cat "$RUN/stderr")"

# What each captured record must become (the same for both schema modes). Columns: number,
# op, table, id, key id, snapshot, has before, before.name, oldkey header, toast, message.
# Tombstones (06 08 13) are skipped and counted; 18 19 22 23 are not change events.
cat >"$RUN/expected_by_number.tsv" <<'EOF'
01	r	items	1	1	1	0	\N	\N		
02	r	items_full	1	1	1	0	\N	\N		
03	c	items	2	2	0	0	\N	\N		
04	u	items	2	2	0	0	\N	\N		
05	d	items	2	2	0	1	\N	\N		
07	d	items	1	1	0	1	\N	\N		
09	c	items	10	10	0	0	\N	{"id":1}		
10	t	items	\N	\N	0	0	\N	\N		
11	u	items_full	1	1	0	1	snapshot row	\N		
12	d	items_full	1	1	0	1	updated	\N		
14	c	typed	1	1	0	0	\N	\N		
15	c	toasted	1	1	0	0	\N	\N		
16	u	toasted	1	1	0	0	\N	\N	unavailable	
17	m		\N	\N	0	0	\N	\N		capture: a logical decoding message
20	c	txn_demo	1	1	0	0	\N	\N		
21	c	txn_demo	2	2	0	0	\N	\N		
EOF
expected=$(python3 - "$RUN" <<'PY'
import sys
run = sys.argv[1]
want = {}
for line in open(run + "/expected_by_number.tsv", encoding="utf-8"):
    f = line.rstrip("\n").split("\t")
    want[f[0]] = f[1:]
for line in open(run + "/offsets.tsv"):
    off, number, what, schemas = line.rstrip("\n").split("\t")
    if number in want:
        print("\t".join([off, "1" if schemas == "true" else "0"] + want[number]))
PY
)
assert_eq "each change event is one row: op, table, primary key, before image, oldkey, TOAST, message" \
  "$expected" \
  "$(ch "SELECT off, schemas, op, tbl, id, key_id, snapshot, has_before, before_name, oldkey, toast,
           message FROM $DB.events ORDER BY off FORMAT TabSeparated")"

changes=$(grep -c . <<<"$expected")
tombstones=$(grep -cE $'\t(06|08|13)\t' "$RUN/offsets.tsv")
others=$(grep -E $'\t(18|19|22|23)\t' "$RUN/offsets.tsv" | cut -f1)
n_others=$(grep -c . <<<"$others")
assert_eq "the counts cover every record" "$records" "$((changes + tombstones + n_others))"
assert_eq "summary: the change events inserted (and the typed rows), tombstones skipped, the rest dead-lettered" \
  "cdcpipe: consumed=$records tombstones=$tombstones filtered=0 dead_lettered=$n_others events_inserted=$changes rows_inserted=$((changes + 2)) retries=0" \
  "$(summary)"

assert_eq "dead letters: exactly the heartbeat, transaction BEGIN/END and flattened records, with the reason" \
  "$(sed 's/$/ decode not a Debezium change event/' <<<"$others")" \
  "$(python3 -c '
import json, sys
for line in open(sys.argv[1]):
    d = json.loads(line)
    print(d["offset"], d["stage"], d["reason"].split(":")[0])' "$RUN/dlq.jsonl")"
assert_contains "the reason says how to accept them" "need --input json" "$(cat "$RUN/dlq.jsonl")"

# The TOASTed text: 400 md5 digests, exactly as inserted
toast=$(python3 -c '
import hashlib
s = "".join(hashlib.md5(str(i).encode()).hexdigest() for i in range(1, 401))
print("%d\t%s" % (len(s), hashlib.md5(s.encode()).hexdigest().upper()))')
assert_eq "the TOASTed text of the insert lands whole (both schema modes)" "$toast"$'\n'"$toast" \
  "$(ch "SELECT length(big), hex(MD5(big)) FROM $DB.events WHERE tbl = 'toasted' AND op = 'c'
           ORDER BY off FORMAT TabSeparated")"

# The typed row: the values inserted in PostgreSQL (see scripts/capture-fixtures.sh)
row() { local IFS=$'\t'; echo "$*"; }
typed() { # VARIANT NUM2_TYPE AUTO_NUM2 AUTO_D
  row "$1" 1 -32768 2147483647 9223372036854775807 1.5 2.25 12345678.90 1 \
    -3.14159265358979323846 1 'Zoë "quoted" \\ back, 中文' varchar 'ab   ' 00ff10 2024-02-29 \
    13:45:30.123456 11:45:30.5 '2024-02-29 12:34:56' 1709210096789012 '2024-02-29 10:34:56' \
    1709202896789012 P1DT2H3M4.5S 93784.5 a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11 \
    '{"a": 1, "b": [true, null]}' '{"a": 1, "b": [true, null]}' happy '[1,-2,3]' "['x','y z']" \
    192.168.0.1 10.0.0.0/8 08:00:2b:01:02:03 1234.56 10110 '<a>x</a>' "$2" "$3" "$4"
}
assert_eq "the typed row holds the PostgreSQL values (numeric exact, timestamptz in UTC, uuid, date, bytea, enum, arrays)" \
  "$(typed no-schema '\N' '\N' '\N')"$'\n'"$(typed with-schema org.apache.kafka.connect.data.Decimal 12345678.90 2024-02-29)" \
  "$(ch "SELECT variant, id, i16, i32, i64, f32, f64, num2_text, num2 = toDecimal64('12345678.90', 2),
           num, flag, txt, vc, ch, b, toString(d), t, tz, toString(ts), ts_us, toString(tstz),
           tstz_us, dur, dur_s, toString(u), j, jb, toString(mood), ints, tags, ip, net, mac, cash,
           bits, x, num2_type, auto_num2, auto_d FROM $DB.typed ORDER BY variant FORMAT TabSeparated")"

run "g_$ID" || fail "second cdcpipe --once exited $?: $(cat "$RUN/stderr")"
assert_contains "a second run in the same group consumes nothing (all committed)" \
  "cdcpipe: consumed=0 " "$(cat "$RUN/stderr")"
assert_eq "nothing was inserted again" "$changes 2" \
  "$(ch "SELECT (SELECT count() FROM $DB.events), (SELECT count() FROM $DB.typed) FORMAT TabSeparated" | tr '\t' ' ')"

ch "DROP DATABASE $DB" >/dev/null
finish
