#!/usr/bin/env bash
# scripts/bench.sh — throughput benchmark of cdcpipe against real Kafka and ClickHouse, with
# baselines measured in the same run so the figures compare across machines.
#
# Usage: scripts/bench.sh [-n N] [--keep] [--run-dir DIR] [--binary PATH] [--services-env FILE]
#
#   -n N                 events per variant (default 200000)
#   --keep               leave RUN_DIR (generated events, rows, logs) in place at exit
#   --run-dir DIR        work here (created if missing) instead of a new temp dir
#   --binary PATH        cdcpipe to measure (default: build-bench/cdcpipe, a Release build made
#                        with cmake if it is missing)
#   --services-env FILE  use running services (a services.env written by scripts/services.sh)
#                        instead of starting ClickHouse + Kafka in RUN_DIR and stopping them at exit
#
# For each of two variants of N Debezium UPDATE events on public.my_table (op "u", before/after
# {id, name, created_at µs}, a PostgreSQL source block) — "noschema" (JsonConverter
# schemas.enable=false: the bare payload) and "schema" (schemas.enable=true: the
# {"schema":..., "payload":...} envelope, for keys too) — it produces the events to a fresh
# 1-partition topic with kcat and measures, with /usr/bin/time -v:
#   cdcpipe      cdcpipe --once --from beginning, fresh group, fresh database, the repository's
#                pipeline.lua (after one unmeasured warm-up event through cdcpipe)
#   kcat -C      kcat -C -e -o beginning -q over the same topic to /dev/null (librdkafka's raw
#                consume rate), with -X fetch.wait.max.ms=10 so -e does not idle 500 ms in the
#                broker's empty fetch at the end; the second of two passes
#   curl INSERT  the same N rows, already transformed, in one JSONEachRow INSERT with curl into
#                a fresh database (ClickHouse's raw insert rate)
# and prints, on stdout, events/s, wall seconds, CPU seconds (user+sys of that process only;
# the broker and ClickHouse server are not counted) and peak RSS, then the ratios
# cdcpipe events/s ÷ kcat events/s and cdcpipe wall ÷ (kcat wall + curl wall).
# The only check is correctness: each database must hold exactly N rows, else exit 1.
# Progress goes to stderr. With --services-env the bench databases are dropped at exit (unless
# --keep); the bench topics stay in that Kafka (kcat cannot delete topics).
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$SCRIPT_DIR/.." && pwd)
SVC="$SCRIPT_DIR/services.sh"
PIPELINE="$ROOT/pipeline.lua"
TIME=/usr/bin/time

N=200000
KEEP=0
RUN_DIR=
BINARY=
SERVICES_ENV=

die() { echo "bench.sh: $*" >&2; exit 1; }
log() { echo "bench.sh: $*" >&2; }
usage() {
  sed -n '4,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

while (($#)); do
  case $1 in
    -n) (($# >= 2)) || usage; N=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    --run-dir) (($# >= 2)) || usage; RUN_DIR=$2; shift 2 ;;
    --binary) (($# >= 2)) || usage; BINARY=$2; shift 2 ;;
    --services-env) (($# >= 2)) || usage; SERVICES_ENV=$2; shift 2 ;;
    -h | --help) usage ;;
    *) echo "bench.sh: unknown argument '$1'" >&2; usage ;;
  esac
done
[[ $N =~ ^[1-9][0-9]*$ ]] || die "-n wants a positive number of events, got '$N'"

# ---------------------------------------------------------------- tools

if [[ ! -x $TIME ]]; then
  if ((EUID == 0)) && command -v apt-get >/dev/null; then
    log "installing package 'time' for $TIME"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null ||
      die "apt-get install time failed"
  else
    die "$TIME is missing: install the Debian package 'time'"
  fi
fi
for tool in kcat curl python3; do
  command -v "$tool" >/dev/null || die "$tool is not installed"
done

if [[ -z $BINARY ]]; then
  BINARY="$ROOT/build-bench/cdcpipe"
  if [[ ! -x $BINARY ]]; then
    log "building $BINARY (Release)"
    cmake -S "$ROOT" -B "$ROOT/build-bench" -DCMAKE_BUILD_TYPE=Release >&2
    cmake --build "$ROOT/build-bench" -j2 --target cdcpipe >&2
  fi
fi
[[ -x $BINARY ]] || die "cdcpipe binary $BINARY is missing or not executable"
BINARY=$(cd "$(dirname "$BINARY")" && pwd)/$(basename "$BINARY")

# ---------------------------------------------------------------- run dir, services, cleanup

CREATED_RUN_DIR=0
if [[ -z $RUN_DIR ]]; then
  RUN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/cdcpipe-bench.XXXXXX")
  CREATED_RUN_DIR=1
elif [[ ! -e $RUN_DIR ]]; then
  mkdir -p "$RUN_DIR"
  CREATED_RUN_DIR=1
fi
RUN_DIR=$(cd "$RUN_DIR" && pwd)
WORK="$RUN_DIR/bench"
OWN_SERVICES=0
if [[ -z $SERVICES_ENV ]]; then
  [[ ! -e $RUN_DIR/services.env ]] ||
    die "$RUN_DIR already has services; use --services-env $RUN_DIR/services.env"
  OWN_SERVICES=1
fi
DATABASES=()

cleanup() {
  local rc=$?
  set +e
  if ((OWN_SERVICES)); then
    "$SVC" stop "$RUN_DIR" >&2
  elif ((!KEEP)) && [[ -n ${CLICKHOUSE_URL:-} ]]; then
    local db
    for db in "${DATABASES[@]}"; do
      curl -sS -o /dev/null "$CLICKHOUSE_URL/" --data-binary "DROP DATABASE IF EXISTS $db"
    done
  fi
  if ((KEEP)); then
    log "kept $RUN_DIR"
  elif ((CREATED_RUN_DIR)); then
    rm -rf "$RUN_DIR"
  else
    rm -rf "$WORK"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

rm -rf "$WORK"
mkdir -p "$WORK"
cd "$WORK" # cdcpipe reads ./.env: not the caller's

if ((OWN_SERVICES)); then
  log "starting clickhouse + kafka in $RUN_DIR"
  "$SVC" start "$RUN_DIR" clickhouse kafka >&2
  SERVICES_ENV="$RUN_DIR/services.env"
fi
[[ -r $SERVICES_ENV ]] || die "cannot read $SERVICES_ENV"
SERVICES_ENV=$(cd "$(dirname "$SERVICES_ENV")" && pwd)/$(basename "$SERVICES_ENV")
set -a
# shellcheck disable=SC1090
. "$SERVICES_ENV"
set +a
[[ -n ${CLICKHOUSE_URL:-} && -n ${KAFKA_BROKERS:-} ]] ||
  die "$SERVICES_ENV does not set both CLICKHOUSE_URL and KAFKA_BROKERS"

# ch SQL: run one statement over HTTP, print the result; on failure show ClickHouse's message.
ch() {
  local out code
  out=$(curl -sS -w '\n%{http_code}' "$CLICKHOUSE_URL/" --data-binary "$1") || die "curl: $1"
  code=${out##*$'\n'}
  out=${out%$'\n'*}
  [[ $code == 200 ]] || die "ClickHouse HTTP $code for '$1': $out"
  printf '%s' "$out"
}
ch "SELECT 1" >/dev/null

# ---------------------------------------------------------------- events

ID="$(date +%s)_$$"  # databases: bench_$ID_...; topics and groups: cdcpipe-bench-$TID-...
TID=${ID//_/-}
VARIANTS=(noschema schema)

log "generating $N events per variant in $WORK"
python3 - "$N" "$WORK" <<'EOF'
import json, sys, datetime

n, work = int(sys.argv[1]), sys.argv[2]
dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode

def field(t, fname, optional=True, **extra):
    f = {"type": t, "optional": optional}
    f.update(extra)
    f["field"] = fname
    return f

row_fields = [
    field("int32", "id", optional=False, default=0),
    field("string", "name"),
    field("int64", "created_at", name="io.debezium.time.MicroTimestamp", version=1),
]
source_fields = [
    field("string", "version", False), field("string", "connector", False),
    field("string", "name", False), field("int64", "ts_ms", False),
    field("string", "snapshot", name="io.debezium.data.Enum", version=1,
          parameters={"allowed": "true,last,false,incremental"}, default="false"),
    field("string", "db", False), field("string", "sequence"), field("int64", "ts_us"),
    field("int64", "ts_ns"), field("string", "schema", False), field("string", "table", False),
    field("int64", "txId"), field("int64", "lsn"), field("int64", "xmin"),
]
value_schema = {
    "type": "struct",
    "fields": [
        {"type": "struct", "fields": row_fields, "optional": True,
         "name": "pgserver.public.my_table.Value", "field": "before"},
        {"type": "struct", "fields": row_fields, "optional": True,
         "name": "pgserver.public.my_table.Value", "field": "after"},
        {"type": "struct", "fields": source_fields, "optional": False,
         "name": "io.debezium.connector.postgresql.Source", "field": "source"},
        {"type": "struct", "fields": [field("string", "id", False),
                                      field("int64", "total_order", False),
                                      field("int64", "data_collection_order", False)],
         "optional": True, "name": "event.block", "version": 1, "field": "transaction"},
        field("string", "op", False), field("int64", "ts_ms"), field("int64", "ts_us"),
        field("int64", "ts_ns"),
    ],
    "optional": False, "name": "pgserver.public.my_table.Envelope", "version": 2,
}
key_schema = {"type": "struct", "fields": [field("int32", "id", optional=False, default=0)],
              "optional": False, "name": "pgserver.public.my_table.Key"}
value_prefix = '{"schema":' + dumps(value_schema) + ',"payload":'
key_prefix = '{"schema":' + dumps(key_schema) + ',"payload":'

first_names = ["Alice", "Bob", "Chloé", "Dmitri", "Eve", "François", "Grace", "Hiro", "Ingrid",
               "Jürgen", "Kofi", "Lena", "Mateo", "Nora", "Oskar", "Priya"]
epoch = datetime.datetime(1970, 1, 1)
names = {"noschema": (open(f"{work}/noschema.kv", "w", encoding="utf-8")),
         "schema": (open(f"{work}/schema.kv", "w", encoding="utf-8"))}
rows = open(f"{work}/rows.jsonl", "w", encoding="utf-8")
sizes = {"noschema": 0, "schema": 0}
ts_ms0 = 1718000000000
lsn = 23995360
for i in range(1, n + 1):
    created = 1700000000000000 + i * 1000003 + (i * 7919) % 1000000
    old = f"{first_names[i % 16]} {i}"
    new = f"{first_names[(i * 5) % 16]} {i} (updated)"
    ts_ms = ts_ms0 + i // 10
    src_us = ts_ms * 1000 + (i * 37) % 1000
    ev_us = src_us + 377000 + (i * 13) % 1000
    prev_lsn, lsn = lsn, lsn + 56 + (i % 3) * 8
    payload = (
        '{"before":{"id":%d,"name":%s,"created_at":%d},'
        '"after":{"id":%d,"name":%s,"created_at":%d},'
        '"source":{"version":"2.7.4.Final","connector":"postgresql","name":"pgserver",'
        '"ts_ms":%d,"snapshot":"false","db":"postgres","sequence":"[\\"%d\\",\\"%d\\"]",'
        '"ts_us":%d,"ts_ns":%d,"schema":"public","table":"my_table","txId":%d,"lsn":%d,'
        '"xmin":null},"transaction":null,"op":"u","ts_ms":%d,"ts_us":%d,"ts_ns":%d}'
        % (i, dumps(old), created - 3600000000, i, dumps(new), created,
           src_us // 1000, prev_lsn, lsn, src_us, src_us * 1000 + 123, 770 + i, lsn,
           ev_us // 1000, ev_us, ev_us * 1000 + 789))
    key = '{"id":%d}' % i
    line = "%s\t%s\n" % (key, payload)
    names["noschema"].write(line)
    sizes["noschema"] += len(line.encode()) - 2
    line = "%s%s}\t%s%s}\n" % (key_prefix, key, value_prefix, payload)
    names["schema"].write(line)
    sizes["schema"] += len(line.encode()) - 2
    dt = epoch + datetime.timedelta(seconds=created // 1000000)
    rows.write('{"id":%d,"name":%s,"created_at":"%s","op":"u"}\n'
               % (i, dumps(new), dt.strftime("%Y-%m-%d %H:%M:%S")))
for f in list(names.values()) + [rows]:
    f.close()
with open(f"{work}/sizes", "w") as f:
    for v, s in sizes.items():
        f.write(f"{v} {s / n:.0f}\n")
EOF

# ---------------------------------------------------------------- measuring

# measure NAME CMD...: run CMD under /usr/bin/time -v, stdout to /dev/null, stderr to
# $WORK/NAME.log; sets M_WALL M_CPU M_RSS_MIB (wall from date +%s%N for sub-10 ms resolution).
measure() {
  local name=$1 t0 t1 rc=0
  shift
  t0=$(date +%s%N)
  "$TIME" -v -o "$WORK/$name.time" "$@" >/dev/null 2>"$WORK/$name.log" || rc=$?
  t1=$(date +%s%N)
  if ((rc != 0)); then
    tail -n 20 "$WORK/$name.log" >&2
    die "$name failed (exit $rc): $*"
  fi
  M_WALL=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
  M_CPU=$(awk -F': ' '/User time \(seconds\)|System time \(seconds\)/ { s += $2 }
                      END { printf "%.2f", s }' "$WORK/$name.time")
  M_RSS_MIB=$(awk -F': ' '/Maximum resident set size/ { printf "%.1f", $2 / 1024 }' "$WORK/$name.time")
}

# topic_messages TOPIC: number of messages in TOPIC (sum of end offsets; the topics are fresh).
topic_messages() {
  local parts p total=0 end
  parts=$(kcat -b "$KAFKA_BROKERS" -L -t "$1" 2>/dev/null | awk '/partition [0-9]+,/ { sub(",", "", $2); print $2 }')
  for p in $parts; do
    end=$(kcat -b "$KAFKA_BROKERS" -Q -t "$1:$p:-1" 2>/dev/null | awk '{ print $NF }')
    total=$((total + end))
  done
  echo "$total"
}

# create_topic TOPIC: with 1 partition through services.sh when SERVICES_ENV is in its run dir;
# otherwise the broker auto-creates it on the first produce.
create_topic() {
  if ((OWN_SERVICES)) || [[ -r $(dirname "$SERVICES_ENV")/pids/kafka.pid ]]; then
    "$SVC" topic "$(dirname "$SERVICES_ENV")" "$1" 1 2>"$WORK/topic-$1.log" ||
      { cat "$WORK/topic-$1.log" >&2; die "cannot create topic $1"; }
  else
    log "no services.sh run dir next to $SERVICES_ENV: topic $1 is auto-created by the broker"
  fi
}

# Warm-up, not measured: one event through cdcpipe and kcat, so the first variant does not pay
# for one-time work (the broker creating __consumer_offsets for the first group, ClickHouse's
# first queries, page cache for the binaries).
log "warm-up: one event through cdcpipe"
warm_topic="cdcpipe-bench-$TID-warmup"
create_topic "$warm_topic"
head -n 1 "$WORK/noschema.kv" | kcat -b "$KAFKA_BROKERS" -P -t "$warm_topic" -K $'\t'
DATABASES+=("bench_${ID}_warmup")
ch "CREATE DATABASE bench_${ID}_warmup" >/dev/null
measure warmup "$BINARY" --once --from beginning -b "$KAFKA_BROKERS" -t "$warm_topic" \
  -g "cdcpipe-bench-$TID-warmup" --clickhouse "$CLICKHOUSE_URL" --database "bench_${ID}_warmup" "$PIPELINE"
measure warmup-kcat kcat -b "$KAFKA_BROKERS" -C -e -o beginning -t "$warm_topic" -q -X fetch.wait.max.ms=10
[[ $(ch "SELECT count() FROM bench_${ID}_warmup.changes") == 1 ]] || die "warm-up event not inserted"

RESULTS="$WORK/results"
: >"$RESULTS"

for v in "${VARIANTS[@]}"; do
  topic="cdcpipe-bench-$TID-$v"
  db="bench_${ID}_$v"
  raw_db="bench_${ID}_${v}_raw"
  group="cdcpipe-bench-$TID-$v"

  # --- produce
  create_topic "$topic"
  log "$v: producing $N events to $topic"
  t0=$(date +%s%N)
  kcat -b "$KAFKA_BROKERS" -P -t "$topic" -K $'\t' -X linger.ms=20 -l "$WORK/$v.kv" \
    2>"$WORK/produce-$v.log" || { cat "$WORK/produce-$v.log" >&2; die "kcat -P failed"; }
  produced=$(topic_messages "$topic")
  ((produced == N)) || die "$topic holds $produced messages, expected $N"
  log "$v: produced in $(awk -v a="$t0" -v b="$(date +%s%N)" 'BEGIN { printf "%.1f", (b - a) / 1e9 }') s"

  # --- kcat baseline: raw consume. fetch.wait.max.ms=10: -e exits on the first empty fetch at
  # the end, which the broker otherwise holds for the default 500 ms — a fixed wait, not
  # consume work (cdcpipe --once stops at the end offsets it saw, without an empty fetch).
  log "$v: kcat -C (one unmeasured pass first: broker JIT and page cache warm for every run)"
  measure "kcat-$v-warm" kcat -b "$KAFKA_BROKERS" -C -e -o beginning -t "$topic" -q -X fetch.wait.max.ms=10
  measure "kcat-$v" kcat -b "$KAFKA_BROKERS" -C -e -o beginning -t "$topic" -q -X fetch.wait.max.ms=10
  echo "$v kcat $M_WALL $M_CPU $M_RSS_MIB" >>"$RESULTS"

  # --- cdcpipe
  DATABASES+=("$db")
  ch "CREATE DATABASE $db" >/dev/null
  log "$v: cdcpipe --once into $db"
  measure "cdcpipe-$v" "$BINARY" --once --from beginning -b "$KAFKA_BROKERS" -t "$topic" \
    -g "$group" --clickhouse "$CLICKHOUSE_URL" --database "$db" "$PIPELINE"
  echo "$v cdcpipe $M_WALL $M_CPU $M_RSS_MIB" >>"$RESULTS"
  summary=$(grep -o 'consumed=.*' "$WORK/cdcpipe-$v.log" | tail -n 1 || true)
  log "$v: cdcpipe: ${summary:-no summary line}"
  if grep -qiE 'error|warn' "$WORK/cdcpipe-$v.log"; then
    log "$v: cdcpipe logged warnings/errors:"
    grep -iE 'error|warn' "$WORK/cdcpipe-$v.log" | head -n 10 >&2
  fi
  rows=$(ch "SELECT count() FROM $db.changes")
  ((rows == N)) || die "$v: $db.changes holds $rows rows after cdcpipe, expected $N"

  # --- curl baseline: raw insert of the transformed rows
  DATABASES+=("$raw_db")
  ch "CREATE DATABASE $raw_db" >/dev/null
  ch "CREATE TABLE $raw_db.changes AS $db.changes" >/dev/null
  log "$v: curl INSERT into $raw_db"
  query="INSERT INTO $raw_db.changes (id,name,created_at,op) FORMAT JSONEachRow"
  measure "curl-$v" curl -sS -f -g --data-binary "@$WORK/rows.jsonl" "$CLICKHOUSE_URL/?query=${query// /%20}"
  echo "$v curl $M_WALL $M_CPU $M_RSS_MIB" >>"$RESULTS"
  rows=$(ch "SELECT count() FROM $raw_db.changes")
  ((rows == N)) || die "$v: $raw_db.changes holds $rows rows after curl, expected $N"
  diff=$(ch "SELECT count() FROM (SELECT id, name, created_at, op FROM $db.changes
             UNION ALL SELECT id, name, created_at, op FROM $raw_db.changes)
             GROUP BY id, name, created_at, op HAVING count() != 2")
  [[ -z $diff ]] || log "$v: WARNING: cdcpipe's rows differ from the pre-transformed rows"
done

# ---------------------------------------------------------------- report

echo "# cdcpipe bench: $N events per variant; $(nproc) CPUs; $("$BINARY" --version 2>&1 | head -n 1)"
echo "# ClickHouse $(ch "SELECT version()"); kcat $(kcat -V 2>&1 | sed -n 's/^Version \([^ ]*\).*\(librdkafka [^ ]*\).*/\1 (\2)/p')"
echo "# mean event size (key+value bytes): $(awk '{ printf "%s%s %s", sep, $1, $2; sep = ", " }' "$WORK/sizes")"
echo "# CPU s = user+sys of the client process only (not the broker, not the ClickHouse server)"
awk -v n="$N" '
  BEGIN {
    label["kcat"] = "kcat -C"; label["cdcpipe"] = "cdcpipe"; label["curl"] = "curl INSERT"
    printf "%-9s %-12s %10s %8s %7s %13s\n", "variant", "run", "events/s", "wall s", "CPU s", "peak RSS MiB"
  }
  {
    wall[$1, $2] = $3
    printf "%-9s %-12s %10.0f %8.2f %7.2f %13.1f\n", $1, label[$2], n / $3, $3, $4, $5
    if (!($1 in seen)) { seen[$1] = 1; order[++nv] = $1 }
  }
  END {
    printf "\nvariant   cdcpipe ev/s ÷ kcat ev/s   cdcpipe wall ÷ (kcat wall + curl wall)\n"
    for (i = 1; i <= nv; i++) {
      v = order[i]
      printf "%-9s %24.2f %40.2f\n", v, wall[v, "kcat"] / wall[v, "cdcpipe"],
        wall[v, "cdcpipe"] / (wall[v, "kcat"] + wall[v, "curl"])
    }
  }' "$RESULTS"
