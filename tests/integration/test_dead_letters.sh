#!/usr/bin/env bash
# test_dead_letters.sh — dead letters whatever the topic's writer put in the record, through real
# Kafka and ClickHouse:
# - a record whose key, headers or value would make its dead letter larger than the dead-letter
#   producer's message.max.bytes: the value is cut at --dlq-max-bytes, the key and headers as
#   needed, each cut marked; --dlq-max-bytes that leaves no room within message.max.bytes is
#   refused at start (exit 2);
# - a dead letter the broker refuses as too large (its topic's limit is below the producer's) is
#   sent again with cdcpipe's headers only;
# - a row ClickHouse rejects whose record can no longer be read (deleted from the topic meanwhile)
#   is dead-lettered with what is known: topic, partition, offset and the reason;
# - the dead-letter file: created 0600, never through a symbolic link, values cut like the Kafka
#   copy, and only whole lines even when the file system refuses a write half-way.
# Each run goes on, exits 0, and commits: a second run consumes nothing.
. "$(dirname "$0")/lib.sh"

ch_db_create
cat >"$RUN/dl.lua" <<'EOF'
function ddl()
  return [[CREATE TABLE IF NOT EXISTS t (id UInt32, name String) ENGINE = MergeTree() ORDER BY id]]
end
function transform(e)
  return { id = e.after.id, name = e.after.name }
end
EOF

run() { # GROUP TOPIC ARGS...: cdcpipe --once; exit status in $rc, stderr in $RUN/stderr
  local group=$1 topic=$2
  shift 2
  rc=0
  "$BIN" --once -b "$KAFKA_BROKERS" -t "$topic" -g "$group" --clickhouse "$CLICKHOUSE_URL" \
    --database "$DB" --table t "$@" "$RUN/dl.lua" 2>"$RUN/stderr" || rc=$?
}
consumes_nothing() { # GROUP TOPIC ARGS...
  run "$@"
  assert_eq "$1: a second run exits 0" 0 "$rc"
  assert_contains "$1: everything was committed, dead letters included" "cdcpipe: consumed=0 " "$(cat "$RUN/stderr")"
}
bytes() { python3 -c "import sys; sys.stdout.write(sys.argv[1] * int(sys.argv[2]))" "$1" "$2"; }

# ---- --dlq-max-bytes must leave room within message.max.bytes
TOPIC="dl_$ID"
topic_create "$TOPIC" 1
run "g0_$ID" "$TOPIC" -X message.max.bytes=200000 --dlq-max-bytes 190000
assert_eq "--dlq-max-bytes too close to message.max.bytes: exit 2" 2 "$rc"
assert_contains "the message names both settings and the fix" \
  "--dlq-max-bytes 190000 (CDCPIPE_DLQ_MAX_BYTES, dead_letters.max_bytes) leaves less than 16384 bytes of the dead-letter producer's message.max.bytes 200000 for the key and headers: use at most 183616, or raise -X message.max.bytes" \
  "$(cat "$RUN/stderr")"

# ---- a key, headers or a value too large for a whole dead letter
bytes 'v' 100000 >"$RUN/value100k"
bytes 'w' 180000 >"$RUN/value180k"
big_key=$(bytes 'k' 120000)
header=$(bytes 'h' 40000)
kcat -P -b "$KAFKA_BROKERS" -t "$TOPIC" -p 0 -k "$big_key" "$RUN/value100k"
printf '{"op":"c","after":{"id":1,"name":"one"}}' | kcat -P -b "$KAFKA_BROKERS" -t "$TOPIC" -p 0 -k good
kcat -P -b "$KAFKA_BROKERS" -t "$TOPIC" -p 0 -k headers -H "h1=$header" -H "h2=$header" \
  -H "h3=$header" -H "small=kept" "$RUN/value100k"
kcat -P -b "$KAFKA_BROKERS" -t "$TOPIC" -p 0 -k small-key "$RUN/value180k"
umask 022
run "g1_$ID" "$TOPIC" -X message.max.bytes=200000 --dlq-max-bytes 150000 --dlq-file "$RUN/dlq.jsonl"
assert_eq "oversized dead letters: exit 0" 0 "$rc"
assert_contains "oversized dead letters: counted" "dead_lettered=3 events_inserted=1" "$(cat "$RUN/stderr")"
kcat -C -b "$KAFKA_BROKERS" -t "$TOPIC.dlq" -o beginning -e -q -J >"$RUN/dlq.json"
check_dlq() { # the dead letters of the topic, summarized one per line
  python3 - "$RUN/dlq.json" <<'PY'
import json, sys
for line in open(sys.argv[1], encoding="utf-8"):
    d = json.loads(line)
    h = d.get("headers") or []
    names = h[0::2]
    hd = dict(zip(h[0::2], h[1::2]))
    key, value = d.get("key") or "", d.get("payload") or ""
    size = len(key) + len(value) + sum(len(n) + len(v or "") for n, v in zip(h[0::2], h[1::2]))
    print("offset=%s stage=%s key=%d value=%d key.cut=%s value.cut=%s dropped=%s kept=%s fits=%s" % (
        hd.get("cdcpipe.source.offset"), hd.get("cdcpipe.stage"), len(key), len(value),
        hd.get("cdcpipe.key.truncated.from", "-"), hd.get("cdcpipe.truncated.from", "-"),
        hd.get("cdcpipe.headers.dropped", "-"),
        ",".join(n for n in names if not n.startswith("cdcpipe.")) or "-", size < 200000))
PY
}
summary=$(check_dlq)
assert_contains "a 120 KB key: value whole, key cut to fit, marked" \
  "offset=0 stage=decode key=" "$summary"
assert_contains "  ... its key cut is marked with the original length" \
  "value=100000 key.cut=120000 value.cut=- dropped=- kept=- fits=True" "$summary"
assert_contains "120 KB of headers: the headers that do not fit are dropped, counted" \
  "offset=2 stage=decode key=7 value=100000 key.cut=- value.cut=- dropped=1 kept=h1,h2,small fits=True" "$summary"
assert_contains "a 180 KB value: cut at --dlq-max-bytes, key kept" \
  "offset=3 stage=decode key=9 value=150000 key.cut=- value.cut=180000 dropped=- kept=- fits=True" "$summary"
assert_eq "the dead-letter file is created 0600" 600 "$(stat -c %a "$RUN/dlq.jsonl")"
file_summary=$(python3 -c '
import json, sys
for line in open(sys.argv[1]):
    d = json.loads(line)
    print(d["offset"], len(d["key"]), len(d["value"]), d.get("value_truncated_from", "-"))' "$RUN/dlq.jsonl")
assert_eq "the file copy is cut like the Kafka copy" "0 120000 100000 -
2 7 100000 -
3 9 150000 180000" "$file_summary"
consumes_nothing "g1_$ID" "$TOPIC" -X message.max.bytes=200000 --dlq-max-bytes 150000 --dlq-file "$RUN/dlq.jsonl"

# ---- the broker refuses the dead letter (its topic's limit, 1048588 by default, is below the
# producer's): sent again with cdcpipe's headers only. The record itself is just under the limit.
TOPIC="dlb_$ID"
topic_create "$TOPIC" 1
bytes 'x' 1048400 >"$RUN/value1m"
kcat -P -b "$KAFKA_BROKERS" -t "$TOPIC" -p 0 -X message.max.bytes=1100000 -k near-limit "$RUN/value1m"
run "g2_$ID" "$TOPIC" -X message.max.bytes=1100000 --dlq-max-bytes 1048576
assert_eq "dead letter refused by the broker: exit 0" 0 "$rc"
assert_contains "the resend is logged" "was refused by the broker as too large (1048400 bytes of value, 10 of key); sent again with cdcpipe's headers only" "$(cat "$RUN/stderr")"
kcat -C -b "$KAFKA_BROKERS" -t "$TOPIC.dlq" -o beginning -e -q -J >"$RUN/dlq.json"
assert_contains "the resent dead letter: no key, no value, the cuts marked" \
  "offset=0 stage=decode key=0 value=0 key.cut=10 value.cut=1048400 dropped=- kept=- fits=True" "$(check_dlq)"
consumes_nothing "g2_$ID" "$TOPIC" -X message.max.bytes=1100000 --dlq-max-bytes 1048576

# ---- a rejected row whose record was deleted from the topic before it could be read again
# (--format json: only a row ClickHouse rejects is dead-lettered after its record was released
# and must be read again; with the default, RowBinary, the encoder refuses this row while its
# record is still in hand — test_clickhouse_errors and test_bad_input assert that refusal)
TOPIC="dlgone_$ID"
topic_create "$TOPIC" 1
printf 'bad\t{"op":"c","after":{"id":"not a number","name":"bad"}}\ngood\t{"op":"c","after":{"id":2,"name":"two"}}\n' >"$RUN/gone.tsv"
produce "$TOPIC" "$RUN/gone.tsv"
"$BIN" -b "$KAFKA_BROKERS" -t "$TOPIC" -g "g3_$ID" --clickhouse "$CLICKHOUSE_URL" --database "$DB" --table t \
  --format json --batch-ms 3600000 --stats-interval 1 "$RUN/dl.lua" 2>"$RUN/gone.log" &
pid=$!
trap 'kill -9 $pid 2>/dev/null || true' EXIT
wait_for "both events to be batched" 60 grep -q "progress: consumed=2 " "$RUN/gone.log"
"$SRC/scripts/services.sh" delete-records "$(dirname "$SERVICES_ENV")" "$TOPIC" 0 2 2>"$RUN/delete.log" ||
  fail "delete-records: $(cat "$RUN/delete.log")"
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
trap - EXIT
assert_eq "record gone before its dead letter: the run ends with exit 0" 0 "$rc"
assert_contains "the dead letter says why it has no payload" \
  "[0] offset 0: clickhouse error: insert into t: ClickHouse answered HTTP 500: Code: " "$(cat "$RUN/gone.log")"
assert_contains "  ... and that the record is gone" \
  "(the record itself could not be read again: cannot read $TOPIC [0] offset 0 again: it is no longer in the topic" "$(cat "$RUN/gone.log")"
dlq=$(kcat -C -b "$KAFKA_BROKERS" -t "$TOPIC.dlq" -o beginning -e -q -f '%K|%S|%h\n')
assert_contains "the dead letter: no key or value, where the record was" \
  "-1|-1|cdcpipe.source.topic=$TOPIC,cdcpipe.source.partition=0,cdcpipe.source.offset=0,cdcpipe.stage=clickhouse,cdcpipe.reason=" "$dlq"
assert_eq "the good row of the same batch is inserted" "2	two" \
  "$(ch "SELECT id, name FROM $DB.t WHERE id = 2 FORMAT TabSeparated")"
consumes_nothing "g3_$ID" "$TOPIC"

# ---- the dead-letter file: no symbolic link, whole lines only
TOPIC="dlfile_$ID"
topic_create "$TOPIC" 1
kcat -P -b "$KAFKA_BROKERS" -t "$TOPIC" -p 0 -k one "$RUN/value100k"
ln -s "$RUN/elsewhere.jsonl" "$RUN/link.jsonl"
run "g4_$ID" "$TOPIC" --dlq-topic none --dlq-file "$RUN/link.jsonl"
assert_eq "a symbolic link as --dlq-file: exit 2" 2 "$rc"
assert_contains "  ... saying so" "cannot open dead-letter file $RUN/link.jsonl for appending (--dlq-file): it is a symbolic link (give the real path)" "$(cat "$RUN/stderr")"
[[ ! -e $RUN/elsewhere.jsonl ]] || fail "the link's target was created"
pass "  ... and nothing is written where it points"

printf '{"earlier":"line"}\n' >"$RUN/full.jsonl"
rc=0
( # the file system refuses the write past 64 KiB (RLIMIT_FSIZE: EFBIG, SIGXFSZ ignored)
  ulimit -f 64
  trap '' XFSZ
  exec "$BIN" --once -b "$KAFKA_BROKERS" -t "$TOPIC" -g "g5_$ID" --clickhouse "$CLICKHOUSE_URL" \
    --database "$DB" --table t --dlq-topic none --dlq-file "$RUN/full.jsonl" "$RUN/dl.lua"
) 2>"$RUN/stderr" || rc=$?
assert_eq "a dead letter the file system refuses half-way: exit 1" 1 "$rc"
assert_contains "  ... saying so" "cannot write dead-letter file $RUN/full.jsonl: File too large" "$(cat "$RUN/stderr")"
assert_eq "  ... and the file keeps whole lines only" '{"earlier":"line"}' "$(cat "$RUN/full.jsonl")"
run "g5_$ID" "$TOPIC" --dlq-topic none --dlq-file "$RUN/full.jsonl"
assert_eq "with room again: exit 0" 0 "$rc"
assert_contains "  ... the event was not committed by the failed run" "consumed=1 tombstones=0 filtered=0 dead_lettered=1" "$(cat "$RUN/stderr")"
assert_eq "  ... and its line follows the earlier one" '0 {"earlier":"line"}' \
  "$(python3 -c 'import json,sys; l=open(sys.argv[1]).read().splitlines(); print(json.loads(l[1])["offset"], l[0])' "$RUN/full.jsonl")"
ch "DROP DATABASE $DB" >/dev/null
finish
