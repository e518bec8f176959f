#!/usr/bin/env bash
# test_clickhouse_compression.sh — --clickhouse-compression against the real ClickHouse:
# - every method this server takes (gzip on every version; zstd and lz4 where the server has
#   them, asked with curl first) inserts 2000 events as RowBinary (the default format) and as
#   JSONEachRow; the rows in ClickHouse are exactly the events, and a proxy in front of the
#   server sees every INSERT body go with `Content-Encoding: <method>`, smaller than the rows in all;
# - the setting comes from the flag, CDCPIPE_CLICKHOUSE_COMPRESSION and config.clickhouse.
#   compression alike;
# - a method the server refuses stops cdcpipe at start: exit 2, a message naming the option,
#   the method and the server's version, and nothing consumed or committed;
# - an unknown method is a usage error (exit 2) listing the choices.
. "$(dirname "$0")/lib.sh"

TOPIC="zip_$ID"
topic_create "$TOPIC" 1
N=2000
python3 - "$N" >"$RUN/events.tsv" <<'PY'
import sys
for i in range(1, int(sys.argv[1]) + 1):
    print('{"id":%d}\t{"op":"c","after":{"id":%d,"name":"name-%d-%s"}}' % (i, i, i, "x" * (i % 50)))
PY
produce "$TOPIC" "$RUN/events.tsv"
EXPECTED="$N	$((N * (N + 1) / 2))	$(python3 -c "import sys; n=int(sys.argv[1]); print(sum(len('name-%d-%s' % (i, 'x' * (i % 50))) for i in range(1, n + 1)))" "$N")"
cat >"$RUN/zip.lua" <<'EOF'
function ddl()
  return [[CREATE TABLE IF NOT EXISTS z (id UInt32, name String) ENGINE = MergeTree() ORDER BY id]]
end
function transform(e) return { id = e.after.id, name = e.after.name } end
EOF
VERSION=$(ch "SELECT version()")

# A proxy that forwards to ClickHouse and writes, per INSERT, its Content-Encoding and the sizes
# of the body as sent and as ClickHouse will read it (decoded with the standard tools).
python3 "$SRC/tests/integration/ch_proxy.py" "$RUN/proxy.port" "$CLICKHOUSE_URL" \
  --log-inserts "$RUN/inserts.log" >"$RUN/proxy.log" 2>&1 &
proxy_pid=$!
trap 'kill $proxy_pid 2>/dev/null || true' EXIT
wait_for "the proxy to listen" 10 test -s "$RUN/proxy.port"
PROXY="http://127.0.0.1:$(cat "$RUN/proxy.port")"

# accepts METHOD: the server decodes a METHOD-compressed `SELECT 1` (asked without cdcpipe)
accepts() {
  local pack=("$1" -c)
  [[ $1 == lz4 || $1 == zstd ]] && pack=("$1" -cq)
  [[ $(printf 'SELECT 1' | "${pack[@]}" | curl -sS --data-binary @- -H "Content-Encoding: $1" "$CLICKHOUSE_URL/") == 1 ]]
}

# inserts NAME DB ARGS...: cdcpipe --once through the proxy into DB.z; exit status in $rc
inserts() {
  local name=$1 db=$2
  shift 2
  ch "CREATE DATABASE $db" >/dev/null
  : >"$RUN/inserts.log"
  rc=0
  "$BIN" --once -b "$KAFKA_BROKERS" -t "$TOPIC" -g "g_${name}_$ID" --clickhouse "$PROXY" \
    --database "$db" --table z --batch-rows 500 "$@" 2>"$RUN/$name.log" || rc=$?
}
check_inserted() { # WHAT METHOD DB [SMALLER]: SMALLER "no" for uncompressed bodies
  assert_eq "$1: exit 0" 0 "$rc"
  assert_contains "$1: every event inserted" "consumed=$N tombstones=0 filtered=0 dead_lettered=0 events_inserted=$N rows_inserted=$N" "$(cat "$RUN/$1.log")"
  assert_eq "$1: the rows in ClickHouse are the events" "$EXPECTED" \
    "$(ch "SELECT count(), sum(id), sum(length(name)) FROM $3.z FORMAT TSV")"
  # smaller in total: a body of a few rows (several workers, a batch cut by --batch-ms under load)
  # can come out larger than its rows once compressed
  assert_eq "$1: every INSERT body went as Content-Encoding: $2, smaller than its rows in all: ${4:-yes}" "$2 ${4:-yes}" \
    "$(awk '{ m[$1] = 1; sent += $2; plain += $3 } END { for (k in m) n++; e = ""; for (k in m) e = k; print (n == 1 ? e : "several"), (sent < plain ? "yes" : "no") }' "$RUN/inserts.log")"
  ch "DROP DATABASE $3" >/dev/null
}

for method in gzip zstd lz4; do
  if [[ $method != gzip ]] && ! accepts "$method"; then
    # ClickHouse $VERSION refuses it: cdcpipe stops at start, before consuming anything.
    inserts "$method" "${DB}_$method" --clickhouse-compression "$method" "$RUN/zip.lua"
    assert_eq "$method, refused by ClickHouse $VERSION: exit 2" 2 "$rc"
    assert_contains "  ... the message names the option, the method and the server's version" \
      "--clickhouse-compression $method: ClickHouse $VERSION at $PROXY/ does not take a $method-compressed request body" \
      "$(cat "$RUN/$method.log")"
    assert_not_contains "  ... nothing consumed (so nothing committed)" "consuming $TOPIC" "$(cat "$RUN/$method.log")"
    ch "DROP DATABASE ${DB}_$method" >/dev/null
    continue
  fi
  inserts "$method" "${DB}_$method" --clickhouse-compression "$method" "$RUN/zip.lua"
  check_inserted "$method" "$method" "${DB}_$method"
  inserts "$method-json" "${DB}_${method}_json" --clickhouse-compression "$method" --format json "$RUN/zip.lua"
  check_inserted "$method-json" "$method" "${DB}_${method}_json"
done

# The same setting from the environment and from pipeline.lua's config.
CDCPIPE_CLICKHOUSE_COMPRESSION=gzip inserts env "${DB}_env" "$RUN/zip.lua"
check_inserted env gzip "${DB}_env"
{ printf 'config = { clickhouse = { compression = "gzip" } }\n'; cat "$RUN/zip.lua"; } >"$RUN/zip_config.lua"
inserts config "${DB}_config" "$RUN/zip_config.lua"
check_inserted config gzip "${DB}_config"
inserts none "${DB}_none" "$RUN/zip.lua"
check_inserted none none "${DB}_none" no

rc=0
"$BIN" --once -b "$KAFKA_BROKERS" -t "$TOPIC" --clickhouse "$PROXY" --clickhouse-compression brotli \
  "$RUN/zip.lua" 2>"$RUN/brotli.log" || rc=$?
assert_eq "an unknown method: exit 2" 2 "$rc"
assert_contains "  ... the choices listed" '--clickhouse-compression: "brotli" is not one of none, gzip, zstd, lz4' "$(cat "$RUN/brotli.log")"
finish
