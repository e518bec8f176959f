#!/usr/bin/env bash
# scripts/bench.sh — throughput benchmark of cdcpipe against real Kafka and ClickHouse, with
# baselines and competitors measured in the same run so the figures compare across machines.
#
# Usage: scripts/bench.sh [-n N] [--keep] [--run-dir DIR] [--binary PATH] [--services-env FILE]
#                         [--cdcpipe-variant NAME:ARGS]... [--variant-binary NAME:PATH]...
#                         [--scrape-pairs K] [--no-kafka-engine]
#                         [--no-callgrind] [--kafka-engine-timeout S] [--partitions P] [--null-table]
#
#   -n N                 events per schema mode (default 200000)
#   --keep               leave RUN_DIR (generated events, rows, logs) and the databases in place
#   --run-dir DIR        work here (created if missing) instead of a new temp dir
#   --binary PATH        cdcpipe to measure (default: build-bench/cdcpipe, a Release build made
#                        with cmake if it is missing)
#   --services-env FILE  use running services (a services.env written by scripts/services.sh)
#                        instead of starting ClickHouse + Kafka in RUN_DIR and stopping them at exit
#   --cdcpipe-variant NAME:ARGS  measure cdcpipe with the extra flags ARGS (split on blanks) as
#                        the row "cdcpipe NAME"; repeatable. Default: one variant 'default:' (no
#                        extra flags, the row "cdcpipe"); any --cdcpipe-variant replaces it, so
#                        name 'default:' too to keep it. A variant the binary rejects with exit 2
#                        (an unknown flag) is skipped with a note. E.g. --cdcpipe-variant default:
#                        --cdcpipe-variant gzip:--clickhouse-compression=gzip compares compressed
#                        INSERT bodies with plain ones. A variant whose ARGS hold
#                        --metrics ADDR:PORT is scraped (GET /metrics) 10 times a second while it
#                        runs, and the notes give its throughput ÷ the first variant's: the cost
#                        of the endpoint and of a scraping Prometheus, e.g.
#                          --cdcpipe-variant default: --cdcpipe-variant scraped:'--metrics 127.0.0.1:0'
#   --variant-binary NAME:PATH  variant NAME runs the cdcpipe at PATH instead of --binary: a build of
#                        an earlier commit measured in the same run (e.g. --cdcpipe-variant
#                        base: --variant-binary base:/tmp/base/build-bench/cdcpipe
#                        --cdcpipe-variant default:)
#   --scrape-pairs K     for such a variant, K more pairs of runs (the first variant and it, in
#                        alternating order, each into a fresh database and group) after its own:
#                        the note gives the median of the K+1 pairs' events/s ratios, their range
#                        and the CPU per event ratio; one run's wall time on a shared machine
#                        varies by tens of percent (default 4)
#   --no-kafka-engine    skip ClickHouse's Kafka engine (slow: it may run until the timeout)
#   --kafka-engine-timeout S  give the Kafka engine S seconds per mode (default 600)
#   --no-callgrind       skip the instructions-per-event count (valgrind)
#   --partitions P       give the bench topics P partitions (default 1); the keyed events spread
#                        over them by librdkafka's key hash, and the spread is printed
#   --null-table         every cdcpipe variant inserts into a `changes` table created beforehand
#                        with pipeline.lua's columns but ENGINE = Null (its ddl() says CREATE TABLE
#                        IF NOT EXISTS, so it stays): ClickHouse stores nothing, so the figures show
#                        cdcpipe's own work (e.g. how --workers scales). Those rows cannot be
#                        counted: the check is cdcpipe's --once summary, events_inserted = N
#
# For each of two schema modes of N Debezium UPDATE events on public.my_table (op "u",
# before/after {id, name, created_at µs}, a PostgreSQL source block) — "noschema" (JsonConverter
# schemas.enable=false: the bare payload) and "schema" (schemas.enable=true: the
# {"schema":..., "payload":...} envelope, for keys too) — it produces the events to a fresh
# topic of P partitions (--partitions, default 1) with kcat, keyed by id, and measures each
# contender from its start until all its rows can be counted in ClickHouse:
#   cdcpipe        cdcpipe --once --from beginning, fresh group, fresh database, the repository's
#                  pipeline.lua, once per --cdcpipe-variant (after one unmeasured warm-up event)
#   floor          kcat -C -e -f '%s\n' over the topic piped into ONE streaming curl INSERT of
#                  the raw values (FORMAT CSV with format_csv_delimiter=\x01, which never occurs
#                  in JSON, so every value arrives byte for byte as one String; blocks of 131,072
#                  values, max_insert_block_size, so 1 M schema-mode events fit the server's
#                  per-query memory limit) into a Null table
#                  whose materialized view extracts pipeline.lua's row (id, name, created_at from
#                  the µs value, op; only op "u") into a table like cdcpipe's: ClickHouse does the
#                  transform. Extraction with JSONExtract* where the server has it (19.x+), else
#                  visitParamExtract* (18.16): the raw "after" object first, then its fields
#   Kafka engine   ClickHouse's Kafka table engine (kafka_format TabSeparated, one String column;
#                  JSONAsString where the server has it) with the same materialized view into a
#                  MergeTree; its group's offset 0 is committed first (18.16 never sets
#                  auto.offset.reset, so it would start at the end); measured from CREATE
#                  MATERIALIZED VIEW until count() = N, polled every 0.1 s, "timed out" after S s;
#                  then the Kafka table is dropped
#   kcat -C        kcat -C -e -o beginning -q over the same topic to /dev/null (librdkafka's raw
#                  consume rate); the second of two passes
#   curl INSERT    the same N rows, already transformed, in one JSONEachRow INSERT with curl into
#                  a fresh database (ClickHouse's raw insert rate)
# (every kcat consumer runs with -X fetch.wait.max.ms=10 so -e does not idle 500 ms in the
# broker's empty fetch at the end; cdcpipe --once stops at the end offsets it saw at start).
# Then, unless --no-callgrind, the instructions per event of `cdcpipe test pipeline.lua` over a
# fixed file of the first 20,000 values of each mode: valgrind --tool=callgrind's total Ir ÷
# 20,000 (installs valgrind with apt-get when run as root and it is missing).
#
# Printed on stdout: per mode and contender events/s, wall seconds, CPU seconds of the client
# process(es) (user+sys from /usr/bin/time: cdcpipe; kcat + curl for the floor; none for the
# Kafka engine), CPU seconds of the ClickHouse server (utime+stime from /proc/<pid>/stat, pid from
# the services run dir's pids/clickhouse.pid, over the run window only: merges after it are not
# counted, other clients' queries to that server are), CPU µs per event (process + server) and
# peak RSS; the same side by side per mode; the ratios cdcpipe ÷ floor and cdcpipe ÷ Kafka
# engine (events/s), cdcpipe ÷ the first cdcpipe variant (events/s, e.g. --workers 2 ÷ 1), the
# cores cdcpipe used (its CPU seconds ÷ wall seconds),
# cdcpipe ÷ kcat -C, cdcpipe wall ÷ (kcat wall + curl wall); callgrind's instructions per event.
# Correctness: every database must hold exactly N rows, equal to the first cdcpipe variant's
# (id, name, created_at, op), else exit 1 (a Kafka engine that times out is reported, not fatal);
# with --null-table the cdcpipe variants' summaries must say events_inserted=N instead, and the
# other contenders' rows are compared with the curl INSERT's.
# Progress goes to stderr. With --services-env the bench databases are dropped at exit (unless
# --keep); the bench topics stay in that Kafka (kcat cannot delete topics).
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$SCRIPT_DIR/.." && pwd)
SVC="$SCRIPT_DIR/services.sh"
PIPELINE="$ROOT/pipeline.lua"
TIME=/usr/bin/time
CG_EVENTS=20000

N=200000
KEEP=0
RUN_DIR=
BINARY=
SERVICES_ENV=
KAFKA_ENGINE=1
KE_TIMEOUT=600
CALLGRIND=1
PARTITIONS=1
NULL_TABLE=0
VARIANT_SPECS=()
declare -A VARIANT_BINARY=() # NAME -> PATH (--variant-binary)
SCRAPE_PAIRS=4

die() { echo "bench.sh: $*" >&2; exit 1; }
log() { echo "bench.sh: $*" >&2; }
usage() {
  sed -n '5,41p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

while (($#)); do
  case $1 in
    -n) (($# >= 2)) || usage; N=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    --run-dir) (($# >= 2)) || usage; RUN_DIR=$2; shift 2 ;;
    --binary) (($# >= 2)) || usage; BINARY=$2; shift 2 ;;
    --services-env) (($# >= 2)) || usage; SERVICES_ENV=$2; shift 2 ;;
    --cdcpipe-variant) (($# >= 2)) || usage; VARIANT_SPECS+=("$2"); shift 2 ;;
    --variant-binary)
      (($# >= 2)) && [[ $2 == *:* ]] || usage
      VARIANT_BINARY[${2%%:*}]=${2#*:}
      shift 2
      ;;
    --scrape-pairs) (($# >= 2)) || usage; SCRAPE_PAIRS=$2; shift 2 ;;
    --no-kafka-engine) KAFKA_ENGINE=0; shift ;;
    --kafka-engine-timeout) (($# >= 2)) || usage; KE_TIMEOUT=$2; shift 2 ;;
    --no-callgrind) CALLGRIND=0; shift ;;
    --partitions) (($# >= 2)) || usage; PARTITIONS=$2; shift 2 ;;
    --null-table) NULL_TABLE=1; shift ;;
    -h | --help) usage ;;
    *) echo "bench.sh: unknown argument '$1'" >&2; usage ;;
  esac
done
[[ $N =~ ^[1-9][0-9]*$ ]] || die "-n wants a positive number of events, got '$N'"
[[ $SCRAPE_PAIRS =~ ^[0-9]+$ ]] || die "--scrape-pairs wants a number of pairs, got '$SCRAPE_PAIRS'"
[[ $KE_TIMEOUT =~ ^[1-9][0-9]*$ ]] || die "--kafka-engine-timeout wants seconds, got '$KE_TIMEOUT'"
[[ $PARTITIONS =~ ^[1-9][0-9]*$ ]] || die "--partitions wants a positive number, got '$PARTITIONS'"

# scrape_loop LOG: once LOG names the metrics port, GET /metrics 10 times a second (one status
# code per line) until killed.
scrape_loop() {
  local port='' i=0
  while [[ -z $port ]] && ((i++ < 600)); do
    port=$(sed -n 's/.*metrics: serving .* on [^ ]*:\([0-9]*\)$/\1/p' "$1" 2>/dev/null | head -n 1 || true)
    [[ -n $port ]] || sleep 0.05
  done
  [[ -n $port ]] || return 0
  while :; do
    curl -s -o /dev/null -w '%{http_code}\n' --max-time 1 "http://127.0.0.1:$port/metrics" || true
    sleep 0.1
  done
}
# start_scraper I NAME: a scrape_loop on cdcpipe-NAME.log (answers in scrape-NAME.log) when
# variant I's args hold --metrics; SCRAPER its pid, else ''. stop_scraper ends it.
start_scraper() {
  SCRAPER=''
  [[ " ${VARIANT_ARGS[$1]} " == *" --metrics "* ]] || return 0
  scrape_loop "$WORK/cdcpipe-$2.log" >"$WORK/scrape-$2.log" 2>&1 &
  SCRAPER=$!
}
stop_scraper() {
  [[ -n $SCRAPER ]] || return 0
  kill "$SCRAPER" 2>/dev/null || true
  wait "$SCRAPER" 2>/dev/null || true
}
declare -A FIRST_WALL=() # per schema mode: the first variant's wall time
declare -A FIRST_CPU=()  # and its process CPU seconds

# variant_binary I: the cdcpipe variant I runs (--variant-binary, else --binary).
variant_binary() { printf '%s' "${VARIANT_BINARY[${VARIANT_NAMES[$1]}]:-$BINARY}"; }

# scraped_run MODE TOPIC I TAG: one measured --once run of variant I (scraped 10/s when its args
# hold --metrics) into a fresh database and group; M_WALL, M_CPU as run_measured sets them.
scraped_run() {
  local v=$1 topic=$2 i=$3 tag=$4 db extra=()
  read -r -a extra <<<"${VARIANT_ARGS[i]}"
  db="bench_${ID}_${v}_c${i}_$tag"
  DATABASES+=("$db")
  ch "CREATE DATABASE $db" >/dev/null
  start_scraper "$i" "$v-$i-$tag"
  measure "cdcpipe-$v-$i-$tag" "$(variant_binary "$i")" --once --from beginning -b "$KAFKA_BROKERS" -t "$topic" \
    -g "cdcpipe-bench-$TID-$v-c$i-$tag" --clickhouse "$CLICKHOUSE_URL" --database "$db" \
    "${extra[@]}" "$PIPELINE"
  stop_scraper
  check_rows "$db" "$v: cdcpipe ${VARIANT_NAMES[i]} ($tag)"
  ch "DROP DATABASE $db" >/dev/null
}

# scrape_cost MODE TOPIC I WALL CPU: COST, the note on variant I's scrape cost, from its run (WALL,
# CPU) against the first variant's and SCRAPE_PAIRS more pairs in alternating order.
scrape_cost() {
  local v=$1 topic=$2 i=$3 k w0 c0 w1 c1
  local ratios=("$(python3 -c "print(${FIRST_WALL[$v]} / $4)")")
  local cpu0=${FIRST_CPU[$v]} cpu1=$5
  for ((k = 1; k <= SCRAPE_PAIRS; k++)); do
    log "$v: scrape cost: pair $k of $SCRAPE_PAIRS"
    if ((k % 2)); then
      scraped_run "$v" "$topic" "$i" "p$k"; w1=$M_WALL c1=$M_CPU
      scraped_run "$v" "$topic" 0 "p$k"; w0=$M_WALL c0=$M_CPU
    else
      scraped_run "$v" "$topic" 0 "p$k"; w0=$M_WALL c0=$M_CPU
      scraped_run "$v" "$topic" "$i" "p$k"; w1=$M_WALL c1=$M_CPU
    fi
    ratios+=("$(python3 -c "print($w0 / $w1)")")
    cpu0=$(python3 -c "print($cpu0 + $c0)")
    cpu1=$(python3 -c "print($cpu1 + $c1)")
  done
  COST=$(python3 - "$cpu0" "$cpu1" "${ratios[@]}" <<'PY'
import statistics, sys
cpu0, cpu1 = float(sys.argv[1]), float(sys.argv[2])
r = [float(x) for x in sys.argv[3:]]
print(f"median {statistics.median(r):.3f}× over {len(r)} pairs (range {min(r):.2f}–{max(r):.2f}), "
      f"CPU per event {cpu1 / cpu0:.3f}×")
PY
)
}

# cdcpipe variants: VARIANT_NAMES[i] runs with the words of VARIANT_ARGS[i] added.
((${#VARIANT_SPECS[@]})) || VARIANT_SPECS=("default:")
VARIANT_NAMES=()
VARIANT_ARGS=()
VARIANT_SKIP=()
for spec in "${VARIANT_SPECS[@]}"; do
  [[ $spec == *:* ]] || die "--cdcpipe-variant wants NAME:ARGS, got '$spec'"
  name=${spec%%:*}
  [[ $name =~ ^[A-Za-z0-9._+-]+$ ]] ||
    die "--cdcpipe-variant: NAME must be letters, digits, . _ + -, got '$name'"
  for seen in "${VARIANT_NAMES[@]}"; do
    [[ $seen != "$name" ]] || die "--cdcpipe-variant: '$name' given twice"
  done
  VARIANT_NAMES+=("$name")
  VARIANT_ARGS+=("${spec#*:}")
  VARIANT_SKIP+=(0)
done
for name in "${!VARIANT_BINARY[@]}"; do
  [[ " ${VARIANT_NAMES[*]} " == *" $name "* ]] || die "--variant-binary: no --cdcpipe-variant named '$name'"
  [[ -x ${VARIANT_BINARY[$name]} ]] || die "--variant-binary $name: ${VARIANT_BINARY[$name]} is not an executable"
done
NOTES=()

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
if ((CALLGRIND)) && ! command -v valgrind >/dev/null; then
  if ((EUID == 0)) && command -v apt-get >/dev/null; then
    log "installing package 'valgrind' for the instruction counts"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null ||
      log "apt-get install valgrind failed"
  fi
  if ! command -v valgrind >/dev/null; then
    CALLGRIND=0
    NOTES+=("valgrind is missing (install the Debian package 'valgrind'): no instruction counts")
  fi
fi

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

# ch_try SQL: run one statement over HTTP; print the result, or ClickHouse's message and fail.
ch_try() {
  local out code
  out=$(curl -sS -w '\n%{http_code}' "$CLICKHOUSE_URL/" --data-binary "$1" 2>&1) || { printf '%s' "$out"; return 1; }
  code=${out##*$'\n'}
  out=${out%$'\n'*}
  printf '%s' "$out"
  [[ $code == 200 ]]
}
# ch SQL: as ch_try, but a failure ends the bench.
ch() {
  local out
  out=$(ch_try "$1") || die "ClickHouse failed '$1': $out"
  printf '%s' "$out"
}
ch "SELECT 1" >/dev/null
CH_VERSION=$(ch "SELECT version()")
# What this server has: JSONExtract* (19.x+) for the extraction, JSONAsString for the Kafka engine.
HAS_JSONEXTRACT=$(ch "SELECT count() FROM system.functions WHERE name = 'JSONExtractString'")
HAS_JSONASSTRING=$(ch "SELECT count() FROM system.formats WHERE name = 'JSONAsString'")

# The ClickHouse server's CPU: utime+stime of the pid services.sh recorded (n/a without one).
CH_PID=
pidfile="$(dirname "$SERVICES_ENV")/pids/clickhouse.pid"
if [[ -r $pidfile ]]; then
  CH_PID=$(<"$pidfile")
  [[ $CH_PID =~ ^[0-9]+$ && -r /proc/$CH_PID/stat ]] || CH_PID=
fi
[[ -n $CH_PID ]] || NOTES+=("no readable $pidfile with a live pid: server CPU is n/a")
CLK_TCK=$(getconf CLK_TCK)
# server_ticks: the server's utime+stime in clock ticks, or "-" when unknown.
server_ticks() {
  local stat rest
  if [[ -n $CH_PID ]] && stat=$(<"/proc/$CH_PID/stat") 2>/dev/null; then
    rest=${stat##*) }  # fields from 3 (state) on; comm may hold blanks
    awk '{ print $12 + $13 }' <<<"$rest"
  else
    echo -
  fi
}
# ticks_to_s T0 T1: seconds between two server_ticks readings, or "-".
ticks_to_s() {
  if [[ $1 == - || $2 == - ]]; then echo -; else
    awk -v a="$1" -v b="$2" -v hz="$CLK_TCK" 'BEGIN { printf "%.2f", (b - a) / hz }'
  fi
}

# ---------------------------------------------------------------- events

ID="$(date +%s)_$$"  # databases: bench_$ID_...; topics and groups: cdcpipe-bench-$TID-...
TID=${ID//_/-}
MODES=(noschema schema)

log "generating $N events per mode in $WORK"
python3 - "$N" "$WORK" "$((CALLGRIND ? CG_EVENTS : 0))" <<'EOF'
import json, sys, datetime

n, work, n_cg = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
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
# the fixed files for callgrind: the first n_cg values of each mode, whatever n is
cg = {"noschema": open(f"{work}/cg-noschema.jsonl", "w", encoding="utf-8"),
      "schema": open(f"{work}/cg-schema.jsonl", "w", encoding="utf-8")}
sizes = {"noschema": 0, "schema": 0}
ts_ms0 = 1718000000000
lsn = 23995360
for i in range(1, max(n, n_cg) + 1):
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
    if i <= n_cg:
        cg["noschema"].write(payload + "\n")
        cg["schema"].write("%s%s}\n" % (value_prefix, payload))
    if i > n:
        continue
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
for f in list(names.values()) + list(cg.values()) + [rows]:
    f.close()
with open(f"{work}/sizes", "w") as f:
    for v, s in sizes.items():
        f.write(f"{v} {s / n:.0f}\n")
EOF

# ---------------------------------------------------------------- measuring

# run_measured NAME CMD...: run CMD under /usr/bin/time -v, stdout to /dev/null, stderr to
# $WORK/NAME.log; sets M_RC M_WALL M_CPU M_RSS_MIB (wall from date +%s%N for sub-10 ms
# resolution; CPU and peak RSS cover CMD's children too: both ends of a pipe) and M_SCPU (the
# ClickHouse server's CPU seconds over the same window).
run_measured() {
  local name=$1 t0 t1 s0 s1
  shift
  M_RC=0
  s0=$(server_ticks)
  t0=$(date +%s%N)
  "$TIME" -v -o "$WORK/$name.time" "$@" >/dev/null 2>"$WORK/$name.log" || M_RC=$?
  t1=$(date +%s%N)
  s1=$(server_ticks)
  M_WALL=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
  M_SCPU=$(ticks_to_s "$s0" "$s1")
  M_CPU=$(awk -F': ' '/User time \(seconds\)|System time \(seconds\)/ { s += $2 }
                      END { printf "%.2f", s }' "$WORK/$name.time" 2>/dev/null || echo -)
  M_RSS_MIB=$(awk -F': ' '/Maximum resident set size/ { printf "%.1f", $2 / 1024 }' \
    "$WORK/$name.time" 2>/dev/null || echo -)
}

# measure NAME CMD...: run_measured, and a failure ends the bench.
measure() {
  run_measured "$@"
  if ((M_RC != 0)); then
    tail -n 20 "$WORK/$1.log" >&2
    shift
    die "$1 failed (exit $M_RC): $*"
  fi
}

# result MODE KEY WALL PROC_CPU SERVER_CPU RSS_MIB STATUS: one line of $RESULTS ("-" = none).
result() { echo "$*" >>"$RESULTS"; }

# topic_partitions TOPIC: its partition numbers.
topic_partitions() {
  kcat -b "$KAFKA_BROKERS" -L -t "$1" 2>/dev/null | awk '/partition [0-9]+,/ { sub(",", "", $2); print $2 }'
}

# topic_spread TOPIC: the messages of each partition, "p0:n0 p1:n1 ..." (end offsets; the
# topics are fresh).
topic_spread() {
  local p end out=
  for p in $(topic_partitions "$1"); do
    end=$(kcat -b "$KAFKA_BROKERS" -Q -t "$1:$p:-1" 2>/dev/null | awk '{ print $NF }')
    out+="${out:+ }$p:$end"
  done
  echo "$out"
}

# topic_messages TOPIC: number of messages in TOPIC (the sum of topic_spread).
topic_messages() {
  topic_spread "$1" | awk '{ for (i = 1; i <= NF; i++) { split($i, a, ":"); t += a[2] } } END { print t + 0 }'
}

# create_topic TOPIC [PARTITIONS]: with PARTITIONS (default 1) through services.sh when
# SERVICES_ENV is in its run dir; otherwise the broker auto-creates it on the first produce
# (with its num.partitions), which only --partitions 1 accepts.
create_topic() {
  local parts=${2:-1}
  if ((OWN_SERVICES)) || [[ -r $(dirname "$SERVICES_ENV")/pids/kafka.pid ]]; then
    "$SVC" topic "$(dirname "$SERVICES_ENV")" "$1" "$parts" 2>"$WORK/topic-$1.log" ||
      { cat "$WORK/topic-$1.log" >&2; die "cannot create topic $1"; }
  else
    ((parts == 1)) ||
      die "--partitions $parts needs services.sh's run dir next to $SERVICES_ENV (pids/kafka.pid) to create topics"
    log "no services.sh run dir next to $SERVICES_ENV: topic $1 is auto-created by the broker"
  fi
}

# commit_offset_zero GROUP TOPIC PARTITION...: commit offset 0 for GROUP on those partitions
# (and read it back) with librdkafka through python3's ctypes, without joining the group.
commit_offset_zero() {
  python3 - "$KAFKA_BROKERS" "$@" <<'EOF'
import ctypes, sys
brokers, group, topic = (a.encode() for a in sys.argv[1:4])
parts = [int(p) for p in sys.argv[4:]]
class TP(ctypes.Structure):   # rd_kafka_topic_partition_t
    _fields_ = [("topic", ctypes.c_char_p), ("partition", ctypes.c_int32),
                ("offset", ctypes.c_int64), ("metadata", ctypes.c_void_p),
                ("metadata_size", ctypes.c_size_t), ("opaque", ctypes.c_void_p),
                ("err", ctypes.c_int), ("_private", ctypes.c_void_p)]
class TPList(ctypes.Structure):
    _fields_ = [("cnt", ctypes.c_int), ("size", ctypes.c_int), ("elems", ctypes.POINTER(TP))]
vp, lp = ctypes.c_void_p, ctypes.POINTER(TPList)
rk = ctypes.CDLL("librdkafka.so.1")
rk.rd_kafka_conf_new.restype = vp
rk.rd_kafka_conf_set.argtypes = [vp, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t]
rk.rd_kafka_new.restype = vp
rk.rd_kafka_new.argtypes = [ctypes.c_int, vp, ctypes.c_char_p, ctypes.c_size_t]
rk.rd_kafka_topic_partition_list_new.restype = lp
rk.rd_kafka_topic_partition_list_new.argtypes = [ctypes.c_int]
rk.rd_kafka_topic_partition_list_add.restype = ctypes.POINTER(TP)
rk.rd_kafka_topic_partition_list_add.argtypes = [lp, ctypes.c_char_p, ctypes.c_int32]
rk.rd_kafka_commit.argtypes = [vp, lp, ctypes.c_int]
rk.rd_kafka_committed.argtypes = [vp, lp, ctypes.c_int]
rk.rd_kafka_err2str.restype = ctypes.c_char_p
rk.rd_kafka_destroy.argtypes = [vp]
err = ctypes.create_string_buffer(512)
conf = rk.rd_kafka_conf_new()
for k, v in ((b"bootstrap.servers", brokers), (b"group.id", group)):
    if rk.rd_kafka_conf_set(conf, k, v, err, 512) != 0:
        sys.exit("conf %s: %s" % (k.decode(), err.value.decode()))
h = rk.rd_kafka_new(1, conf, err, 512)  # RD_KAFKA_CONSUMER
if not h:
    sys.exit("rd_kafka_new: " + err.value.decode())
def tplist(offset):
    lst = rk.rd_kafka_topic_partition_list_new(len(parts))
    for p in parts:
        rk.rd_kafka_topic_partition_list_add(lst, topic, p).contents.offset = offset
    return lst
rc = rk.rd_kafka_commit(h, tplist(0), 0)
if rc != 0:
    sys.exit("commit: " + rk.rd_kafka_err2str(rc).decode())
lst = tplist(-1001)
rc = rk.rd_kafka_committed(h, lst, 10000)
if rc != 0:
    sys.exit("committed: " + rk.rd_kafka_err2str(rc).decode())
for i in range(lst.contents.cnt):
    e = lst.contents.elems[i]
    if e.err != 0 or e.offset != 0:
        sys.exit("partition %d: committed offset %d (%s)"
                 % (e.partition, e.offset, rk.rd_kafka_err2str(e.err).decode()))
rk.rd_kafka_destroy(h)
EOF
}

# extract_select MODE SOURCE FUNCTIONS: the SELECT that turns SOURCE's raw values (column v) into
# pipeline.lua's rows, with FUNCTIONS = json (JSONExtract*, paths through "payload" in the schema
# mode) or visitparam (visitParamExtract*: the first "key": anywhere, so the raw "after" object
# first — "before" has the same fields and the schema only names "after" as a value — then its
# fields; the first "op": is the envelope's). ts is named because 18.16 fills no DEFAULT for a
# view's target.
extract_select() {
  local mode=$1 src=$2 p=""
  [[ $mode == schema ]] && p="'payload', "
  if [[ $3 == json ]]; then
    printf '%s' "SELECT toUInt32(JSONExtractUInt(v, ${p}'after', 'id')) AS id,
      JSONExtractString(v, ${p}'after', 'name') AS name,
      toDateTime(intDiv(JSONExtractInt(v, ${p}'after', 'created_at'), 1000000), 'UTC') AS created_at,
      JSONExtractString(v, ${p}'op') AS op, now() AS ts
    FROM $src WHERE op = 'u'"
  else
    printf '%s' "SELECT toUInt32(visitParamExtractUInt(visitParamExtractRaw(v, 'after') AS a, 'id')) AS id,
      visitParamExtractString(a, 'name') AS name,
      toDateTime(intDiv(visitParamExtractInt(a, 'created_at'), 1000000), 'UTC') AS created_at,
      visitParamExtractString(v, 'op') AS op, now() AS ts
    FROM $src WHERE op = 'u'"
  fi
}
FLOOR_FUNCS=visitparam
((HAS_JSONEXTRACT)) && FLOOR_FUNCS=json
# The Kafka engine's values pass TabSeparated unless the server has JSONAsString: TSV unescapes
# \" and \\ (present in source.sequence), which leaves the extracted fields intact for
# visitParamExtract* but is no JSON for JSONExtract*.
KE_FORMAT=TabSeparated
KE_FUNCS=visitparam
if ((HAS_JSONASSTRING)); then
  KE_FORMAT=JSONAsString
  KE_FUNCS=$FLOOR_FUNCS
fi

# check_rows DB LABEL: DB.changes holds exactly N rows, else exit 1.
check_rows() {
  local rows
  rows=$(ch "SELECT count() FROM $1.changes")
  ((rows == N)) || die "$2: $1.changes holds $rows rows, expected $N"
}

# same_rows DB REF LABEL: DB.changes has REF.changes's (id, name, created_at, op), else exit 1.
same_rows() {
  local diff
  diff=$(ch "SELECT count() FROM (SELECT count() FROM
               (SELECT id, name, created_at, op FROM $1.changes
                UNION ALL SELECT id, name, created_at, op FROM $2.changes)
             GROUP BY id, name, created_at, op HAVING count() != 2)")
  ((diff == 0)) || die "$3: $diff distinct rows of $1.changes and $2.changes differ (rerun with --keep to look)"
}

# Warm-up, not measured: one event through cdcpipe and kcat, so the first mode does not pay
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
LOAD0=$(cut -d' ' -f1 /proc/loadavg)

for v in "${MODES[@]}"; do
  topic="cdcpipe-bench-$TID-$v"
  ref_db=

  # --- produce
  create_topic "$topic" "$PARTITIONS"
  log "$v: producing $N events to $topic ($PARTITIONS partitions)"
  t0=$(date +%s%N)
  kcat -b "$KAFKA_BROKERS" -P -t "$topic" -K $'\t' -X linger.ms=20 -l "$WORK/$v.kv" \
    2>"$WORK/produce-$v.log" || { cat "$WORK/produce-$v.log" >&2; die "kcat -P failed"; }
  produced=$(topic_messages "$topic")
  ((produced == N)) || die "$topic holds $produced messages, expected $N"
  spread=$(topic_spread "$topic")
  nparts=$(wc -w <<<"$spread")
  ((nparts == PARTITIONS)) || die "$topic has $nparts partitions, expected $PARTITIONS"
  echo "$v $spread" >>"$WORK/spread"
  # uneven: the fullest partition holds over 1.2 x its share (workers would idle at the end)
  uneven=$(awk -v n="$N" -v p="$PARTITIONS" '{ for (i = 1; i <= NF; i++) { split($i, a, ":")
      if (a[2] > m) m = a[2] } } END { if (m > 1.2 * n / p) printf "%.2f", m / (n / p) }' <<<"$spread")
  [[ -z $uneven ]] || NOTES+=("$v: partitions uneven (fullest $uneven x its share): $spread")
  log "$v: messages per partition: $spread"
  log "$v: produced in $(awk -v a="$t0" -v b="$(date +%s%N)" 'BEGIN { printf "%.1f", (b - a) / 1e9 }') s"

  # --- kcat baseline: raw consume. fetch.wait.max.ms=10: -e exits on the first empty fetch at
  # the end, which the broker otherwise holds for the default 500 ms — a fixed wait, not
  # consume work (cdcpipe --once stops at the end offsets it saw, without an empty fetch).
  log "$v: kcat -C (one unmeasured pass first: broker JIT and page cache warm for every run)"
  measure "kcat-$v-warm" kcat -b "$KAFKA_BROKERS" -C -e -o beginning -t "$topic" -q -X fetch.wait.max.ms=10
  measure "kcat-$v" kcat -b "$KAFKA_BROKERS" -C -e -o beginning -t "$topic" -q -X fetch.wait.max.ms=10
  result "$v" kcat "$M_WALL" "$M_CPU" "$M_SCPU" "$M_RSS_MIB" ok

  # --- cdcpipe, once per variant
  for i in "${!VARIANT_NAMES[@]}"; do
    name=${VARIANT_NAMES[i]}
    if ((VARIANT_SKIP[i])); then
      result "$v" "cdcpipe:$name" - - - - skipped
      continue
    fi
    read -r -a extra <<<"${VARIANT_ARGS[i]}"
    db="bench_${ID}_${v}_c$i"
    DATABASES+=("$db")
    ch "CREATE DATABASE $db" >/dev/null
    into=$db
    if ((NULL_TABLE)); then # pipeline.lua's ddl() (CREATE TABLE IF NOT EXISTS) keeps this one
      ch "CREATE TABLE $db.changes (id UInt32, name String, created_at DateTime('UTC'), op String,
          ts DateTime DEFAULT now()) ENGINE = Null" >/dev/null
      into="$db (changes: ENGINE = Null)"
    fi
    log "$v: cdcpipe $name (${VARIANT_ARGS[i]:-no extra flags}) --once into $into"
    start_scraper "$i" "$v-$name"
    scraper=$SCRAPER
    run_measured "cdcpipe-$v-$name" "$(variant_binary "$i")" --once --from beginning -b "$KAFKA_BROKERS" -t "$topic" \
      -g "cdcpipe-bench-$TID-$v-c$i" --clickhouse "$CLICKHOUSE_URL" --database "$db" \
      "${extra[@]}" "$PIPELINE"
    stop_scraper
    if ((M_RC == 2)); then
      msg=$(grep -v '^$' "$WORK/cdcpipe-$v-$name.log" | head -n 1 || true)
      NOTES+=("cdcpipe variant '$name' skipped: the binary rejects '${VARIANT_ARGS[i]}' (exit 2: ${msg:-no message})")
      log "$v: cdcpipe $name: rejected (exit 2): ${msg:-no message}; skipped"
      VARIANT_SKIP[i]=1
      result "$v" "cdcpipe:$name" - - - - skipped
      continue
    elif ((M_RC != 0)); then
      tail -n 20 "$WORK/cdcpipe-$v-$name.log" >&2
      die "cdcpipe $name failed (exit $M_RC)"
    fi
    if [[ -n $scraper ]]; then
      scrapes=$(grep -c '^200$' "$WORK/scrape-$v-$name.log" || true)
    fi
    [[ -n ${FIRST_WALL[$v]:-} ]] || { FIRST_WALL[$v]=$M_WALL; FIRST_CPU[$v]=$M_CPU; }
    result "$v" "cdcpipe:$name" "$M_WALL" "$M_CPU" "$M_SCPU" "$M_RSS_MIB" ok
    if [[ -n $scraper ]] && ((i > 0)); then
      wall=$M_WALL cpu=$M_CPU
      scrape_cost "$v" "$topic" "$i" "$M_WALL" "$M_CPU"
      NOTES+=("$v: scrape cost: cdcpipe $name, scraped 10/s ($scrapes answers 200 in its first run), events/s ÷ cdcpipe ${VARIANT_NAMES[0]}'s: $COST")
      M_WALL=$wall M_CPU=$cpu
    fi
    summary=$(grep -o 'consumed=.*' "$WORK/cdcpipe-$v-$name.log" | tail -n 1 || true)
    log "$v: cdcpipe $name: ${summary:-no summary line}"
    if grep -qiE 'error|warn' "$WORK/cdcpipe-$v-$name.log"; then
      log "$v: cdcpipe $name logged warnings/errors:"
      grep -iE 'error|warn' "$WORK/cdcpipe-$v-$name.log" | head -n 10 >&2
    fi
    if ((NULL_TABLE)); then # nothing to count: the summary's events_inserted (all N are op "u")
      [[ $(ch "SELECT engine FROM system.tables WHERE database = '$db' AND name = 'changes'") == Null ]] ||
        die "$v: cdcpipe $name: $db.changes is no longer a Null table (does pipeline.lua's ddl() drop it?)"
      inserted=$(sed -n 's/.*events_inserted=\([0-9]*\).*/\1/p' <<<"$summary")
      [[ $inserted == "$N" ]] ||
        die "$v: cdcpipe $name: summary says events_inserted=${inserted:-?}, expected $N"
    else
      check_rows "$db" "$v: cdcpipe $name"
      if [[ -z $ref_db ]]; then ref_db=$db; else same_rows "$db" "$ref_db" "$v: cdcpipe $name"; fi
    fi
  done

  # --- curl baseline: raw insert of the transformed rows
  raw_db="bench_${ID}_${v}_raw"
  DATABASES+=("$raw_db")
  ch "CREATE DATABASE $raw_db" >/dev/null
  if [[ -n $ref_db ]]; then
    ch "CREATE TABLE $raw_db.changes AS $ref_db.changes" >/dev/null
  else # every variant rejected, or --null-table: the same DDL as pipeline.lua's
    ch "CREATE TABLE $raw_db.changes (id UInt32, name String, created_at DateTime('UTC'), op String,
        ts DateTime DEFAULT now()) ENGINE = MergeTree() ORDER BY (id, ts)" >/dev/null
  fi
  log "$v: curl INSERT into $raw_db"
  query="INSERT INTO $raw_db.changes (id,name,created_at,op) FORMAT JSONEachRow"
  measure "curl-$v" curl -sS -f -g --data-binary "@$WORK/rows.jsonl" "$CLICKHOUSE_URL/?query=${query// /%20}"
  result "$v" curl "$M_WALL" "$M_CPU" "$M_SCPU" "$M_RSS_MIB" ok
  check_rows "$raw_db" "$v: curl INSERT"
  if [[ -n $ref_db ]]; then same_rows "$raw_db" "$ref_db" "$v: curl INSERT"; else ref_db=$raw_db; fi

  # --- the floor: kcat | one streaming curl INSERT of the raw values, ClickHouse extracts
  floor_db="bench_${ID}_${v}_floor"
  DATABASES+=("$floor_db")
  ch "CREATE DATABASE $floor_db" >/dev/null
  ch "CREATE TABLE $floor_db.changes AS $raw_db.changes" >/dev/null
  ch "CREATE TABLE $floor_db.raw (v String) ENGINE = Null" >/dev/null
  ch "CREATE MATERIALIZED VIEW $floor_db.extract TO $floor_db.changes AS
      $(extract_select "$v" "$floor_db.raw" "$FLOOR_FUNCS")" >/dev/null
  log "$v: floor: kcat | curl INSERT (raw values) into $floor_db ($FLOOR_FUNCS extraction)"
  # max_insert_block_size: the server's default block of 1,048,576 values needs over 4 GiB for
  # 1,000,000 schema-mode events (2.9 KB each), past 18.16's per-query memory limit (code 241)
  url="$CLICKHOUSE_URL/?format_csv_delimiter=%01&max_insert_block_size=131072&query=INSERT%20INTO%20$floor_db.raw%20FORMAT%20CSV"
  # shellcheck disable=SC2016 # expanded by the inner bash
  measure "floor-$v" bash -c 'set -o pipefail
    kcat -b "$1" -C -e -o beginning -q -t "$2" -f "%s\n" -X fetch.wait.max.ms=10 |
      curl -sS -f -X POST -T - -H "Expect:" "$3"' floor "$KAFKA_BROKERS" "$topic" "$url"
  result "$v" floor "$M_WALL" "$M_CPU" "$M_SCPU" "$M_RSS_MIB" ok
  check_rows "$floor_db" "$v: floor"
  same_rows "$floor_db" "$ref_db" "$v: floor"

  # --- ClickHouse's Kafka engine + the same materialized view into a MergeTree
  if ((KAFKA_ENGINE)); then
    ke_db="bench_${ID}_${v}_ke"
    group="cdcpipe-bench-$TID-$v-ke"
    DATABASES+=("$ke_db")
    ch "CREATE DATABASE $ke_db" >/dev/null
    ch "CREATE TABLE $ke_db.changes AS $raw_db.changes" >/dev/null
    log "$v: Kafka engine ($KE_FORMAT, $KE_FUNCS extraction) into $ke_db, at most $KE_TIMEOUT s"
    status=ok
    # shellcheck disable=SC2046 # one word per partition
    if ! out=$(commit_offset_zero "$group" "$topic" $(topic_partitions "$topic") 2>&1); then
      status=failed
      NOTES+=("$v: Kafka engine not run: cannot commit offset 0 for its group: $out")
    elif ! out=$(ch_try "CREATE TABLE $ke_db.queue (v String) ENGINE = Kafka SETTINGS
        kafka_broker_list = '$KAFKA_BROKERS', kafka_topic_list = '$topic',
        kafka_group_name = '$group', kafka_format = '$KE_FORMAT', kafka_row_delimiter = '\n',
        kafka_num_consumers = 1"); then
      status=failed
      NOTES+=("$v: Kafka engine not run: CREATE TABLE … ENGINE = Kafka failed: ${out:0:300}")
    else
      s0=$(server_ticks)
      t0=$(date +%s%N)
      deadline=$((SECONDS + KE_TIMEOUT))
      ch "CREATE MATERIALIZED VIEW $ke_db.extract TO $ke_db.changes AS
          $(extract_select "$v" "$ke_db.queue" "$KE_FUNCS")" >/dev/null
      rows=0
      while :; do
        rows=$(ch "SELECT count() FROM $ke_db.changes")
        ((rows < N)) || break
        ((SECONDS < deadline)) || { status=timeout; break; }
        sleep 0.1
      done
      t1=$(date +%s%N)
      s1=$(server_ticks)
      ch "DROP TABLE $ke_db.extract" >/dev/null
      ch "DROP TABLE $ke_db.queue" >/dev/null
      ((rows <= N)) || die "$v: Kafka engine: $ke_db.changes holds $rows rows, expected $N"
      if [[ $status == ok ]]; then
        wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
        result "$v" kengine "$wall" 0 "$(ticks_to_s "$s0" "$s1")" - ok
        same_rows "$ke_db" "$ref_db" "$v: Kafka engine"
        log "$v: Kafka engine: $N rows in $wall s"
      else
        NOTES+=("$v: Kafka engine timed out after $KE_TIMEOUT s with $rows of $N rows")
        log "$v: Kafka engine timed out after $KE_TIMEOUT s with $rows of $N rows"
      fi
    fi
    [[ $status == ok ]] || result "$v" kengine - - - - "$status"
  fi
done

# ---------------------------------------------------------------- instructions per event

if ((CALLGRIND)); then
  for v in "${MODES[@]}"; do
    log "$v: callgrind: cdcpipe test pipeline.lua over $CG_EVENTS events (about a minute)"
    if valgrind --tool=callgrind --callgrind-out-file="$WORK/callgrind-$v.out" \
      "$BINARY" test "$PIPELINE" "$WORK/cg-$v.jsonl" >"$WORK/callgrind-$v.rows" 2>"$WORK/callgrind-$v.log"; then
      ir=$(awk '/^(summary|totals):/ { print $2; exit }' "$WORK/callgrind-$v.out")
      rows=$(wc -l <"$WORK/callgrind-$v.rows")
      ((rows == CG_EVENTS)) || die "$v: cdcpipe test printed $rows rows for $CG_EVENTS events"
      echo "$v $ir" >>"$WORK/callgrind"
    else
      tail -n 5 "$WORK/callgrind-$v.log" >&2
      NOTES+=("$v: valgrind failed (see $WORK/callgrind-$v.log with --keep)")
    fi
  done
fi

# ---------------------------------------------------------------- report

echo "# cdcpipe bench: $N events per schema mode; $(nproc) CPUs; $("$BINARY" --version 2>&1 | head -n 1)"
echo "# ClickHouse $CH_VERSION (server pid ${CH_PID:-unknown}); kcat $(kcat -V 2>&1 | sed -n 's/^Version \([^ ]*\).*\(librdkafka [^ ]*\).*/\1 (\2)/p')"
echo "# mean event size (key+value bytes): $(awk '{ printf "%s%s %s", sep, $1, $2; sep = ", " }' "$WORK/sizes")"
echo "# topics: $PARTITIONS partition(s), keyed by id; messages per partition: $(awk '{ m = $1; $1 = ""; printf "%s%s:%s", sep, m, $0; sep = ";" }' "$WORK/spread")"
if ((NULL_TABLE)); then
  echo "# --null-table: cdcpipe inserts into ENGINE = Null tables (ClickHouse stores nothing); its rows are not"
  echo "#   counted: checked by its --once summary events_inserted = N. floor, curl, Kafka engine still store into MergeTree"
fi
for i in "${!VARIANT_NAMES[@]}"; do
  [[ ${VARIANT_NAMES[i]} == default && -z ${VARIANT_ARGS[i]} ]] ||
    echo "# cdcpipe ${VARIANT_NAMES[i]}: extra flags '${VARIANT_ARGS[i]}'"
done
echo "# wall: from start until the rows can be counted (Kafka engine: CREATE MATERIALIZED VIEW until count() = N)"
echo "# proc CPU: user+sys of the client process (floor: kcat + curl; Kafka engine: none)"
echo "# server CPU: clickhouse-server utime+stime in the run window only (no merges after it; any other client counts)"
echo "# floor: kcat | curl, raw values via CSV into Null + MV ($FLOOR_FUNCS); Kafka engine: $KE_FORMAT + MV ($KE_FUNCS), kafka_num_consumers = 1"
echo "# load average (1 min) at the start: $LOAD0, at the end: $(cut -d' ' -f1 /proc/loadavg) on $(nproc) CPUs (other work on the machine slows every contender)"
if [[ $(cat /proc/sys/kernel/sched_autogroup_enabled 2>/dev/null) == 1 ]]; then
  echo "# the kernel's autogroup scheduling is on: busy CPUs are shared between sessions, not threads, so"
  echo "#   while other sessions run, cdcpipe gets its session's share whatever --workers says (see 'cores used')"
fi
for note in "${NOTES[@]}"; do echo "# note: $note"; done
awk -v n="$N" -v order="${MODES[*]}" '
  function label(k) {
    if (k == "kcat") return "kcat -C"
    if (k == "curl") return "curl INSERT"
    if (k == "floor") return "floor kcat|curl"
    if (k == "kengine") return "Kafka engine"
    if (k == "cdcpipe:default") return "cdcpipe"
    sub(/^cdcpipe:/, "cdcpipe ", k); return k
  }
  function rank(k) {
    return k == "floor" ? 1 : k == "kengine" ? 2 : k ~ /^cdcpipe:/ ? 3 : k == "kcat" ? 4 : 5
  }
  function num(x) { return x != "-" }
  # lpad/rpad S W: S padded to W columns (printf counts bytes in mawk; µ and ÷ are two)
  function width(s) { gsub(/µ|÷/, "x", s); return length(s) }
  function spaces(k,  s) { s = ""; while (k-- > 0) s = s " "; return s }
  function lpad(s, w) { return s spaces(w - width(s)) }
  function rpad(s, w) { return spaces(w - width(s)) s }
  function evs(m, k) { return (m, k) in ok ? n / wall[m, k] : "" }
  {
    m = $1; k = $2
    if (!(k in seenk)) { seenk[k] = 1; keys[++nk] = k }
    line[m, k] = $0
    if ($7 == "ok") {
      ok[m, k] = 1; wall[m, k] = $3
      pcpu[m, k] = num($4) ? $4 : 0; scpu[m, k] = $5; rss[m, k] = $6
    } else status[m, k] = $7
  }
  END {
    nm = split(order, modes, " ")
    # keys in print order: floor, Kafka engine, cdcpipe variants (as given), kcat, curl
    for (r = 1; r <= 5; r++) for (i = 1; i <= nk; i++) if (rank(keys[i]) == r) sorted[++ns] = keys[i]
    for (i = 1; i <= nk; i++) keys[i] = sorted[i]

    printf "\n%-9s %-18s %10s %8s %10s %12s %19s %13s\n", "mode", "contender", "events/s",
      "wall s", "proc CPU s", "server CPU s", rpad("CPU µs/ev proc+srv", 19), "peak RSS MiB"
    for (a = 1; a <= nm; a++) {
      m = modes[a]
      for (i = 1; i <= nk; i++) {
        k = keys[i]
        if (!((m, k) in line)) continue
        if (!((m, k) in ok)) {
          s = status[m, k] == "timeout" ? "timed out" : status[m, k]
          printf "%-9s %-18s %10s\n", m, label(k), s
          continue
        }
        pu = pcpu[m, k] / n * 1e6
        if (num(scpu[m, k])) {
          su = scpu[m, k] / n * 1e6; cpu = sprintf("%.1f+%.1f=%.1f", pu, su, pu + su)
          sc = sprintf("%.2f", scpu[m, k])
        } else { cpu = sprintf("%.1f+?", pu); sc = "n/a" }
        r = num(rss[m, k]) ? sprintf("%.1f", rss[m, k]) : "in server"
        pc = k == "kengine" ? "-" : sprintf("%.2f", pcpu[m, k])
        printf "%-9s %-18s %10.0f %8.2f %10s %12s %19s %13s\n", m, label(k), n / wall[m, k],
          wall[m, k], pc, sc, cpu, r
      }
    }

    # side by side: one line per contender, one column group per mode
    printf "\n%-18s", "side by side"
    for (a = 1; a <= nm; a++) printf " | %s", lpad("events/s, CPU µs/ev, RSS MiB: " modes[a], 36)
    printf "\n"
    for (i = 1; i <= nk; i++) {
      k = keys[i]
      printf "%-18s", label(k)
      for (a = 1; a <= nm; a++) {
        m = modes[a]
        if ((m, k) in ok) {
          tot = num(scpu[m, k]) ? sprintf("%.1f", (pcpu[m, k] + scpu[m, k]) / n * 1e6) : "?"
          r = num(rss[m, k]) ? sprintf("%.0f", rss[m, k]) : "server"
          printf " | %10.0f %12s %12s", n / wall[m, k], tot, r
        } else if ((m, k) in line)
          printf " | %10s %12s %12s", status[m, k] == "timeout" ? "timed out" : status[m, k], "", ""
        else printf " | %36s", ""
      }
      printf "\n"
    }

    # ratios, same run
    printf "\n%-48s", "ratios (same run)"
    for (a = 1; a <= nm; a++) printf " %10s", modes[a]
    printf "\n"
    first = ""
    for (i = 1; i <= nk; i++) {
      c = keys[i]
      if (c !~ /^cdcpipe:/) continue
      if (first == "") first = c
      else {  # each further variant against the first (e.g. --workers 2 against --workers 1)
        printf "%s", lpad(label(c) " events/s ÷ " label(first), 48)
        for (a = 1; a <= nm; a++) {
          m = modes[a]
          if (((m, c) in ok) && ((m, first) in ok)) printf " %10.2f", wall[m, first] / wall[m, c]
          else printf " %10s", "-"
        }
        printf "\n"
      }
      for (a = 1; a <= nm; a++) if ((modes[a], c) in ok) break
      if (a > nm) continue  # skipped in every mode
      split("floor kengine kcat", others, " ")
      split("events/s ÷ floor;events/s ÷ Kafka engine;events/s ÷ kcat -C", what, ";")
      printf "%s", lpad(label(c) " cores used (proc CPU ÷ wall)", 48)
      for (a = 1; a <= nm; a++) {
        m = modes[a]
        if ((m, c) in ok) printf " %10.2f", pcpu[m, c] / wall[m, c]
        else printf " %10s", "-"
      }
      printf "\n"
      for (o = 1; o <= 4; o++) {
        if (o < 4) printf "%s", lpad(label(c) " " what[o], 48)
        else printf "%s", lpad(label(c) " wall ÷ (kcat wall + curl wall)", 48)
        for (a = 1; a <= nm; a++) {
          m = modes[a]
          if (!((m, c) in ok)) { printf " %10s", "-"; continue }
          if (o < 4) {
            if ((m, others[o]) in ok) printf " %10.2f", wall[m, others[o]] / wall[m, c]
            else printf " %10s", ((m, others[o]) in line) ? status[m, others[o]] : "-"
          } else if (((m, "kcat") in ok) && ((m, "curl") in ok))
            printf " %10.2f", wall[m, c] / (wall[m, "kcat"] + wall[m, "curl"])
          else printf " %10s", "-"
        }
        printf "\n"
      }
    }
  }' "$RESULTS"
if [[ -s $WORK/callgrind ]]; then
  printf '\ninstructions per event, cdcpipe test pipeline.lua over %d events (callgrind Ir)\n' "$CG_EVENTS"
  awk -v n="$CG_EVENTS" '{ printf "%-9s %10.0f\n", $1, $2 / n }' "$WORK/callgrind"
fi
