#!/usr/bin/env bash
# scripts/services.sh — run REAL local services on loopback for cdcpipe's tests, demo and CI.
#
#   services.sh start RUN_DIR SERVICE...     SERVICE: clickhouse | postgres | kafka | connect
#                                            | prometheus (optional: for the metrics tests)
#                                            (connect implies postgres + kafka, started first)
#   services.sh stop RUN_DIR                 stop everything started in RUN_DIR (reverse order)
#   services.sh status RUN_DIR               print which services run (exit 1 if one is down)
#   services.sh topic RUN_DIR NAME PARTITIONS   create a Kafka topic with N partitions
#   services.sh partitions RUN_DIR NAME PARTITIONS  grow an existing topic to N partitions
#   services.sh delete-records RUN_DIR NAME PARTITION OFFSET  delete a partition's records
#                                            before OFFSET (Kafka's DeleteRecords)
#   services.sh reset-offsets RUN_DIR GROUP TOPIC PARTITION OFFSET  commit OFFSET for an empty group
#   services.sh register-debezium RUN_DIR    register Debezium's PostgreSQL connector with Connect
#
# Everything lives in RUN_DIR: data dirs, configs, logs (RUN_DIR/logs), pid files (RUN_DIR/pids).
# Nothing outside it is written, except the read-only JVM stack cache that
# scripts/fetch-jvm-stack.sh fills (kafka/connect only). Every service gets a free loopback
# port chosen at start; RUN_DIR/services.env holds shell assignments for the callers:
#   CLICKHOUSE_URL=http://127.0.0.1:P CLICKHOUSE_HTTP_PORT CLICKHOUSE_TCP_PORT
#   PG_HOST=127.0.0.1 PG_PORT PG_USER=postgres PG_PASSWORD=postgres PG_DB=postgres
#   KAFKA_BROKERS=127.0.0.1:P CONNECT_URL=http://127.0.0.1:P PROMETHEUS_URL=http://127.0.0.1:P
# Use it with: set -a; . RUN_DIR/services.env; set +a
#
# ClickHouse users: `default` (no password) and `tester` / `secret`.
# PostgreSQL: trust auth on loopback; user postgres also has password `postgres`;
#   wal_level=logical. Runs as the `postgres` system user when this script runs as root.
#
# register-debezium: the tables in DBZ_TABLES must EXIST before registering, because the
# publication is created with publication.autocreate.mode=filtered (FOR TABLE ...).
# Environment (defaults in brackets):
#   DBZ_NAME [pg] DBZ_TOPIC_PREFIX [pgserver] DBZ_SLOT [debezium_slot]
#   DBZ_PUBLICATION [debezium_pub] DBZ_TABLES [public.my_table] DBZ_SNAPSHOT_MODE [initial]
#   DBZ_TIMEOUT [120] seconds until connector and task must be RUNNING.
#   DBZ_EXTRA_CONFIG [{}] a JSON object of further connector settings, merged over the ones
#     above (e.g. '{"value.converter.schemas.enable": "false", "heartbeat.interval.ms": "1000"}').
# prometheus: scrapes PROM_TARGETS (comma-separated HOST:PORT, e.g. a cdcpipe --metrics address)
#   every PROM_SCRAPE_INTERVAL [1s], loading the rule files in PROM_RULES (comma-separated, may be
#   empty); its data lives in RUN_DIR/prometheus.
# Other knobs:
#   CONNECT_SCHEMAS [true]  JsonConverter schemas.enable for keys and values
#   KAFKA_HEAP, CONNECT_HEAP  JVM memory/GC flags [-Xms64m -Xmx512m -XX:+UseSerialGC]
#   SERVICES_TIMEOUT  overrides every readiness deadline (defaults: clickhouse 30 s,
#                     postgres 30 s, kafka 90 s, connect 120 s, prometheus 30 s)
#   CDCPIPE_JVM_STACK  use this stack dir (lib/, plugins/) instead of fetch-jvm-stack.sh
#   STOP_TIMEOUT [30]  seconds `stop` waits per service after TERM (INT for postgres) before KILL
#   SERVICES_KEEP_DATA=1  keep a service's data when it is started again in the same RUN_DIR
#                     (default: every start begins with empty data dirs and logs)
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}

die() { echo "services.sh: $*" >&2; exit 1; }
log() { echo "services.sh: $*" >&2; }

usage() {
  sed -n '2,14p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

now() { date +%s; }

# ---------------------------------------------------------------- ports, pids, env

# free_port: print a loopback TCP port that nobody listens on and that this RUN_DIR has not
# handed out yet. Picks from 20000-32767, below Linux's ephemeral range, so outgoing
# connections cannot grab it between the test and the service's bind.
free_port() {
  local port
  for _ in $(seq 200); do
    port=$((20000 + RANDOM % 12768))
    grep -qx "$port" "$RUN_DIR/ports.used" 2>/dev/null && continue
    if python3 - "$port" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
finally:
    s.close()
EOF
    then
      echo "$port" >>"$RUN_DIR/ports.used"
      echo "$port"
      return 0
    fi
  done
  die "no free loopback port found"
}

pid_of() { cat "$RUN_DIR/pids/$1.pid" 2>/dev/null || true; }

# alive SERVICE: its recorded process exists, is not a zombie and belongs to this RUN_DIR
# (guards against pid reuse after a reboot or a crash).
alive() {
  local pid state
  pid=$(pid_of "$1")
  [[ -n $pid && -r /proc/$pid/cmdline ]] || return 1
  state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || echo Z)
  [[ $state != Z ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "$RUN_DIR"
}

# record SERVICE PID: remember a launched process (before readiness, so stop can clean up).
record() {
  echo "$2" >"$RUN_DIR/pids/$1.pid"
  grep -qx "$1" "$RUN_DIR/started" 2>/dev/null || echo "$1" >>"$RUN_DIR/started"
}

# write_env SERVICE LINES...: the service's part of services.env; then rebuild services.env.
write_env() {
  local svc=$1
  shift
  printf '%s\n' "$@" >"$RUN_DIR/env.d/$svc.env"
  local tmp="$RUN_DIR/services.env.tmp"
  : >"$tmp"
  local s
  for s in clickhouse postgres kafka connect prometheus; do
    [[ -f $RUN_DIR/env.d/$s.env ]] && cat "$RUN_DIR/env.d/$s.env" >>"$tmp"
  done
  mv -f "$tmp" "$RUN_DIR/services.env"
}

load_env() {
  [[ -f $RUN_DIR/services.env ]] || die "$RUN_DIR/services.env missing: run start first"
  set -a
  # shellcheck disable=SC1091
  . "$RUN_DIR/services.env"
  set +a
}

# fresh SERVICE DIR...: a service that is (re)started gets empty state and logs, so a reused
# RUN_DIR (e.g. build/test-services) never sees tables, topics or slots of an earlier run.
# SERVICES_KEEP_DATA=1 keeps the data instead.
fresh() {
  local svc=$1
  shift
  rm -f "$RUN_DIR/logs/$svc"*.log
  [[ ${SERVICES_KEEP_DATA:-0} == 1 ]] || rm -rf "$@"
}

log_tail() { # SERVICE LOGFILE...
  local svc=$1 f shown=0
  shift
  for f in "$@"; do
    [[ -s $f ]] || continue
    echo "---- last 30 lines of $f ($svc) ----" >&2
    tail -n 30 "$f" >&2
    shown=1
  done
  ((shown)) || echo "---- $svc wrote nothing yet to: $* ----" >&2
}

# wait_ready SERVICE DEADLINE_S CHECK_FUNC LOGFILE...: poll CHECK_FUNC until it succeeds;
# fail early if the process died; on timeout print the log tail and exit non-zero.
wait_ready() {
  local svc=$1 timeout=${SERVICES_TIMEOUT:-$2} check=$3
  shift 3
  local t0 deadline
  t0=$(date +%s.%N)
  deadline=$(($(now) + timeout))
  while :; do
    if $check; then
      log "$svc ready in $(python3 -c "import sys; print(round($(date +%s.%N) - $t0, 1))") s"
      return 0
    fi
    if ! alive "$svc"; then
      log "$svc exited during start-up"
      log_tail "$svc" "$@"
      kill_service "$svc"
      exit 1
    fi
    if (($(now) >= deadline)); then
      log "$svc not ready after ${timeout} s"
      log_tail "$svc" "$@"
      kill_service "$svc"
      exit 1
    fi
    sleep 0.2
  done
}

# kill_service SERVICE: TERM (INT for postgres = fast shutdown), wait with deadline, KILL.
kill_service() {
  local svc=$1 pid sig=TERM deadline
  pid=$(pid_of "$svc")
  if [[ -n $pid ]] && alive "$svc"; then
    [[ $svc == postgres ]] && sig=INT
    kill "-$sig" "$pid" 2>/dev/null || true
    deadline=$(($(now) + ${STOP_TIMEOUT:-30}))
    while alive "$svc" && (($(now) < deadline)); do sleep 0.1; done
    if alive "$svc"; then
      log "$svc (pid $pid) did not stop in time: KILL"
      kill -KILL "$pid" 2>/dev/null || true
      # postgres children would keep the port; they die with the postmaster's pipe.
      while alive "$svc"; do sleep 0.1; done
    fi
  fi
  rm -f "$RUN_DIR/pids/$svc.pid"
}

# PostgreSQL refuses to run as root: when we are root, run it as the `postgres` system user.
# setpriv execs (no fork), so $! of a background launch is the postmaster's pid.
if ((EUID == 0)); then
  AS_PG=(setpriv --reuid=postgres --regid=postgres --init-groups --)
else
  AS_PG=()
fi

# ---------------------------------------------------------------- ClickHouse

clickhouse_check() {
  [[ $(curl -sf --max-time 2 "http://127.0.0.1:$CH_HTTP/?query=SELECT%201" 2>/dev/null) == 1 ]]
}

start_clickhouse() {
  local d="$RUN_DIR/clickhouse"
  fresh clickhouse "$d"
  mkdir -p "$d"/{data,tmp,user_files,format_schemas}
  CH_HTTP=$(free_port)
  local tcp
  tcp=$(free_port)
  cat >"$d/config.xml" <<EOF
<?xml version="1.0"?>
<!-- written by scripts/services.sh; ClickHouse 18.16 test server on loopback -->
<yandex>
  <logger>
    <level>information</level>
    <log>$RUN_DIR/logs/clickhouse.log</log>
    <errorlog>$RUN_DIR/logs/clickhouse.err.log</errorlog>
    <size>100M</size>
    <count>1</count>
  </logger>
  <listen_host>127.0.0.1</listen_host>
  <http_port>$CH_HTTP</http_port>
  <tcp_port>$tcp</tcp_port>
  <!-- no interserver_http_port: replication is not used, so none is opened -->
  <max_connections>512</max_connections>
  <keep_alive_timeout>3</keep_alive_timeout>
  <max_concurrent_queries>100</max_concurrent_queries>
  <uncompressed_cache_size>67108864</uncompressed_cache_size>
  <mark_cache_size>67108864</mark_cache_size>
  <path>$d/data/</path>
  <tmp_path>$d/tmp/</tmp_path>
  <user_files_path>$d/user_files/</user_files_path>
  <format_schema_path>$d/format_schemas/</format_schema_path>
  <users_config>$d/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <mlock_executable>false</mlock_executable>
</yandex>
EOF
  cat >"$d/users.xml" <<'EOF'
<?xml version="1.0"?>
<!-- written by scripts/services.sh -->
<yandex>
  <profiles>
    <default><max_memory_usage>4000000000</max_memory_usage></default>
  </profiles>
  <users>
    <default>
      <password></password>
      <networks><ip>::/0</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
    </default>
    <tester>
      <password>secret</password>
      <networks><ip>::/0</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
    </tester>
  </users>
  <quotas>
    <default>
      <interval>
        <duration>3600</duration>
        <queries>0</queries><errors>0</errors><result_rows>0</result_rows>
        <read_rows>0</read_rows><execution_time>0</execution_time>
      </interval>
    </default>
  </quotas>
</yandex>
EOF
  local bin=/usr/sbin/clickhouse-server
  [[ -x $bin ]] || bin=/usr/bin/clickhouse-server
  [[ -x $bin ]] || die "clickhouse-server not installed (scripts/deps.sh)"
  # 18.16 runs fine as root; it does not daemonize without --daemon.
  (cd "$d" && exec "$bin" --config-file="$d/config.xml") \
    </dev/null >"$RUN_DIR/logs/clickhouse.stdout.log" 2>&1 9>&- &
  record clickhouse $!
  wait_ready clickhouse 30 clickhouse_check \
    "$RUN_DIR/logs/clickhouse.stdout.log" "$RUN_DIR/logs/clickhouse.err.log" "$RUN_DIR/logs/clickhouse.log"
  write_env clickhouse \
    "CLICKHOUSE_URL=http://127.0.0.1:$CH_HTTP" \
    "CLICKHOUSE_HTTP_PORT=$CH_HTTP" \
    "CLICKHOUSE_TCP_PORT=$tcp"
}

# ---------------------------------------------------------------- PostgreSQL

pg_check() { "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT_NEW" -U postgres -d postgres -t 2; }

start_postgres() {
  local d="$RUN_DIR/pg" sock="$RUN_DIR/pg-socket"
  fresh postgres "$d" "$sock"
  PG_PORT_NEW=$(free_port)
  mkdir -p "$d" "$sock"
  if ((EUID == 0)); then
    chown postgres:postgres "$d" "$sock"
    # postgres needs to reach RUN_DIR/pg: make RUN_DIR itself traversable (not listable).
    chmod o+x "$RUN_DIR"
    # A parent dir may still be closed to others (e.g. RUN_DIR under /root): then give
    # postgres CAP_DAC_READ_SEARCH (search/read only) rather than touching dirs outside RUN_DIR.
    # shellcheck disable=SC2016 # $1 is for the inner bash
    if ! "${AS_PG[@]}" bash -c 'cd "$1"' _ "$d" 2>/dev/null; then
      log "user postgres cannot traverse the parents of $RUN_DIR: running postgres with CAP_DAC_READ_SEARCH"
      AS_PG=(setpriv --reuid=postgres --regid=postgres --init-groups
        --inh-caps=+dac_read_search --ambient-caps=+dac_read_search --)
    fi
  fi
  if [[ ! -f $d/data/PG_VERSION ]]; then
    "${AS_PG[@]}" "$PG_BIN/initdb" -D "$d/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 --no-sync \
      >"$RUN_DIR/logs/postgres-initdb.log" 2>&1 ||
      { log_tail postgres "$RUN_DIR/logs/postgres-initdb.log"; die "initdb failed"; }
  fi
  # Unix socket paths are limited to 107 bytes; without one, TCP on 127.0.0.1 still works.
  local sockdir=$sock
  if ((${#sock} + 20 > 107)); then
    log "RUN_DIR path too long for a unix socket: postgres listens on TCP only"
    sockdir=
  fi
  "${AS_PG[@]}" "$PG_BIN/postgres" -D "$d/data" \
    -c listen_addresses=127.0.0.1 -c port="$PG_PORT_NEW" -c unix_socket_directories="$sockdir" \
    -c wal_level=logical -c max_replication_slots=10 -c max_wal_senders=10 \
    -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
    -c logging_collector=off \
    </dev/null >>"$RUN_DIR/logs/postgres.log" 2>&1 9>&- &
  record postgres $!
  wait_ready postgres 30 pg_check "$RUN_DIR/logs/postgres.log"
  psql_q "$PG_PORT_NEW" "ALTER USER postgres PASSWORD 'postgres'" >/dev/null
  write_env postgres \
    "PG_HOST=127.0.0.1" "PG_PORT=$PG_PORT_NEW" "PG_USER=postgres" "PG_PASSWORD=postgres" "PG_DB=postgres"
}

psql_q() { # PORT SQL
  PGPASSWORD=postgres "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$1" -U postgres -d postgres -Atc "$2"
}

# ---------------------------------------------------------------- JVM stack (Kafka, Connect)

# jvm_stack: the stack the running broker uses (`topic`), else CDCPIPE_JVM_STACK, else fetch
# (instant when cached). `start` clears the recorded path first, so a version bump is seen.
jvm_stack() {
  if [[ -s $RUN_DIR/jvm-stack.path ]]; then
    cat "$RUN_DIR/jvm-stack.path"
  elif [[ -n ${CDCPIPE_JVM_STACK:-} ]]; then
    echo "$CDCPIPE_JVM_STACK"
  else
    "$SCRIPT_DIR/fetch-jvm-stack.sh"
  fi
}

# jvm_prepare: resolve the stack once per RUN_DIR and write the shared log4j2 config.
jvm_prepare() {
  [[ -n ${STACK:-} ]] && return 0
  STACK=$(jvm_stack)
  [[ -d $STACK/lib ]] || die "JVM stack not found at '$STACK'"
  echo "$STACK" >"$RUN_DIR/jvm-stack.path"
  mkdir -p "$RUN_DIR/tmp"
  # Quiet by default; the INFO loggers below give the readiness/progress lines.
  cat >"$RUN_DIR/log4j2.properties" <<EOF
# written by scripts/services.sh
status = error
appender.out.type = Console
appender.out.name = OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = ${JVM_LOG_LEVEL:-warn}
rootLogger.appenderRef.out.ref = OUT
logger.kafkaserver.name = kafka.server.KafkaRaftServer
logger.kafkaserver.level = info
logger.connect.name = org.apache.kafka.connect.runtime.Connect
logger.connect.level = info
logger.debezium.name = io.debezium
logger.debezium.level = info
EOF
  # -XX:-UsePerfData: no /tmp/hsperfdata_* files outside RUN_DIR.
  JOPTS=(-XX:-UsePerfData -XX:+ExitOnOutOfMemoryError -XX:ErrorFile="$RUN_DIR/logs/hs_err_%p.log"
    -Djava.io.tmpdir="$RUN_DIR/tmp" -Djava.awt.headless=true
    -Dlog4j2.configurationFile="$RUN_DIR/log4j2.properties")
  CP="$STACK/lib/*"
}

# ---------------------------------------------------------------- Kafka (KRaft, single node)

# An open port is not enough (the broker must list itself), but probing it first keeps the
# poll fast: kcat waits its whole -m timeout when nothing listens yet.
kafka_check() {
  (: <>"/dev/tcp/127.0.0.1/$KAFKA_PORT") 2>/dev/null || return 1
  kcat -b "127.0.0.1:$KAFKA_PORT" -L -m 5 2>/dev/null | grep -q "broker 1 at"
}

start_kafka() {
  jvm_prepare
  local d="$RUN_DIR/kafka"
  fresh kafka "$d"
  mkdir -p "$d/data"
  KAFKA_PORT=$(free_port)
  local ctl
  ctl=$(free_port)
  # Static quorum (controller.quorum.voters), formatted without --standalone.
  cat >"$d/server.properties" <<EOF
# written by scripts/services.sh
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$ctl
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$ctl
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$d/data
num.partitions=1
default.replication.factor=1
auto.create.topics.enable=true
delete.topic.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
EOF
  if [[ ! -f $d/data/meta.properties ]]; then
    local cid
    # 16 random bytes, base64url without padding (Kafka's Uuid); never starting with '-',
    # which StorageTool's argument parser would take for an option.
    cid=$(python3 -c '
import base64, os
while True:
    c = base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")
    if not c.startswith("-"):
        print(c)
        break')
    (cd "$d" && java "${JOPTS[@]}" -Xmx256m -cp "$CP" kafka.tools.StorageTool format -t "$cid" -c "$d/server.properties") \
      >"$RUN_DIR/logs/kafka-format.log" 2>&1 ||
      { log_tail kafka "$RUN_DIR/logs/kafka-format.log"; die "kafka storage format failed"; }
  fi
  # shellcheck disable=SC2086 # KAFKA_HEAP is a list of JVM flags
  (cd "$d" && exec java ${KAFKA_HEAP:--Xms64m -Xmx512m -XX:+UseSerialGC} "${JOPTS[@]}" -cp "$CP" kafka.Kafka "$d/server.properties") \
    </dev/null >>"$RUN_DIR/logs/kafka.log" 2>&1 9>&- &
  record kafka $!
  wait_ready kafka 90 kafka_check "$RUN_DIR/logs/kafka.log"
  write_env kafka "KAFKA_BROKERS=127.0.0.1:$KAFKA_PORT"
}

# ---------------------------------------------------------------- Kafka Connect + Debezium

connect_check() { curl -sf --max-time 2 "http://127.0.0.1:$CONNECT_PORT/connectors" >/dev/null 2>&1; }

start_connect() {
  jvm_prepare
  load_env
  [[ -n ${KAFKA_BROKERS:-} ]] || die "connect needs kafka"
  local d="$RUN_DIR/connect" schemas=${CONNECT_SCHEMAS:-true}
  fresh connect "$d"
  mkdir -p "$d"
  CONNECT_PORT=$(free_port)
  cat >"$d/worker.properties" <<EOF
# written by scripts/services.sh
bootstrap.servers=$KAFKA_BROKERS
key.converter=org.apache.kafka.connect.json.JsonConverter
value.converter=org.apache.kafka.connect.json.JsonConverter
key.converter.schemas.enable=$schemas
value.converter.schemas.enable=$schemas
offset.storage.file.filename=$d/offsets
offset.flush.interval.ms=1000
listeners=http://127.0.0.1:$CONNECT_PORT
rest.advertised.host.name=127.0.0.1
rest.advertised.port=$CONNECT_PORT
plugin.path=$STACK/plugins
plugin.discovery=service_load
EOF
  # shellcheck disable=SC2086 # CONNECT_HEAP is a list of JVM flags
  (cd "$d" && exec java ${CONNECT_HEAP:--Xms64m -Xmx512m -XX:+UseSerialGC} "${JOPTS[@]}" -cp "$CP" \
    org.apache.kafka.connect.cli.ConnectStandalone "$d/worker.properties") \
    </dev/null >>"$RUN_DIR/logs/connect.log" 2>&1 9>&- &
  record connect $!
  wait_ready connect 120 connect_check "$RUN_DIR/logs/connect.log"
  write_env connect "CONNECT_URL=http://127.0.0.1:$CONNECT_PORT"
}

cmd_register_debezium() {
  load_env
  [[ -n ${CONNECT_URL:-} ]] || die "connect is not running in $RUN_DIR"
  local name=${DBZ_NAME:-pg} body code
  body=$(DBZ_NAME=$name python3 - <<'EOF'
import json, os
e = os.environ
config = {
    "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
    "tasks.max": "1",
    "database.hostname": e["PG_HOST"],
    "database.port": e["PG_PORT"],
    "database.user": e["PG_USER"],
    "database.password": e.get("PG_PASSWORD", "postgres"),
    "database.dbname": e["PG_DB"],
    "database.sslmode": "disable",
    "topic.prefix": e.get("DBZ_TOPIC_PREFIX", "pgserver"),
    "table.include.list": e.get("DBZ_TABLES", "public.my_table"),
    "plugin.name": "pgoutput",
    "slot.name": e.get("DBZ_SLOT", "debezium_slot"),
    "publication.name": e.get("DBZ_PUBLICATION", "debezium_pub"),
    "publication.autocreate.mode": "filtered",
    "snapshot.mode": e.get("DBZ_SNAPSHOT_MODE", "initial"),
}
config.update(json.loads(e.get("DBZ_EXTRA_CONFIG") or "{}"))
print(json.dumps({"name": e["DBZ_NAME"], "config": config}))
EOF
)
  post() {
    curl -s -o "$RUN_DIR/logs/register-debezium.json" -w '%{http_code}' \
      -H 'Content-Type: application/json' -X POST --data "$body" "$CONNECT_URL/connectors"
  }
  code=$(post)
  if [[ $code == 409 ]]; then # registered before (maybe FAILED): replace it
    log "connector $name exists: deleting and registering it again"
    curl -sf -o /dev/null -X DELETE "$CONNECT_URL/connectors/$name" || true
    code=$(post)
  fi
  case $code in
    201) ;;
    *)
      cat "$RUN_DIR/logs/register-debezium.json" >&2
      echo >&2
      log_tail connect "$RUN_DIR/logs/connect.log"
      die "POST $CONNECT_URL/connectors answered HTTP $code"
      ;;
  esac
  local deadline status state t0
  t0=$(now)
  deadline=$(($(now) + ${DBZ_TIMEOUT:-120}))
  while :; do
    status=$(curl -s --max-time 5 "$CONNECT_URL/connectors/$name/status" || true)
    state=$(python3 -c '
import json, sys
try:
    s = json.loads(sys.argv[1])
except ValueError:
    print("PENDING"); sys.exit()
states = [s.get("connector", {}).get("state")] + [t.get("state") for t in s.get("tasks", [])]
if "FAILED" in states: print("FAILED")
elif s.get("tasks") and all(x == "RUNNING" for x in states): print("RUNNING")
else: print("PENDING")' "$status")
    if [[ $state == RUNNING ]]; then
      log "debezium connector $name RUNNING after $(($(now) - t0)) s"
      return 0
    fi
    if [[ $state == FAILED ]] || (($(now) >= deadline)); then
      echo "$status" >&2
      log_tail connect "$RUN_DIR/logs/connect.log"
      die "debezium connector $name not RUNNING (state $state)"
    fi
    sleep 0.5
  done
}

# topic_command ARGS...: Kafka's TopicCommand against this RUN_DIR's broker.
topic_command() {
  load_env
  [[ -n ${KAFKA_BROKERS:-} ]] || die "kafka is not running in $RUN_DIR"
  jvm_prepare
  local cls=org.apache.kafka.tools.TopicCommand listing
  # Read the whole listing first: `unzip | grep -q` under pipefail fails at random when grep
  # exits early and unzip dies of SIGPIPE (then the wrong class was picked).
  listing=$(unzip -l "$STACK"/lib/kafka-tools-[0-9]*.jar 2>/dev/null || true)
  [[ $listing == *org/apache/kafka/tools/TopicCommand.class* ]] || cls=kafka.admin.TopicCommand
  java "${JOPTS[@]}" -Xmx256m -cp "$CP" "$cls" --bootstrap-server "$KAFKA_BROKERS" "$@" >&2
}

cmd_topic() {
  topic_command --create --if-not-exists --topic "$1" --partitions "$2" --replication-factor 1
}

cmd_partitions() {
  topic_command --alter --topic "$1" --partitions "$2"
}

cmd_delete_records() {
  load_env
  [[ -n ${KAFKA_BROKERS:-} ]] || die "kafka is not running in $RUN_DIR"
  jvm_prepare
  local cls=org.apache.kafka.tools.DeleteRecordsCommand listing json="$RUN_DIR/tmp/delete-records.$$.json"
  listing=$(unzip -l "$STACK"/lib/kafka-tools-[0-9]*.jar 2>/dev/null || true)
  [[ $listing == *org/apache/kafka/tools/DeleteRecordsCommand.class* ]] || cls=kafka.admin.DeleteRecordsCommand
  printf '{"version":1,"partitions":[{"topic":"%s","partition":%d,"offset":%d}]}\n' "$1" "$2" "$3" >"$json"
  java "${JOPTS[@]}" -Xmx256m -cp "$CP" "$cls" --bootstrap-server "$KAFKA_BROKERS" \
    --offset-json-file "$json" >&2
  rm -f "$json"
}

# reset-offsets GROUP TOPIC PARTITION OFFSET: commits OFFSET for an empty group (tests plant
# gaps with it: offsets moved forward by hand)
cmd_reset_offsets() {
  load_env
  [[ -n ${KAFKA_BROKERS:-} ]] || die "kafka is not running in $RUN_DIR"
  jvm_prepare
  local cls=org.apache.kafka.tools.consumer.group.ConsumerGroupCommand listing
  listing=$(unzip -l "$STACK"/lib/kafka-tools-[0-9]*.jar 2>/dev/null || true)
  [[ $listing == *org/apache/kafka/tools/consumer/group/ConsumerGroupCommand.class* ]] ||
    cls=kafka.admin.ConsumerGroupCommand
  java "${JOPTS[@]}" -Xmx256m -cp "$CP" "$cls" --bootstrap-server "$KAFKA_BROKERS" \
    --group "$1" --topic "$2:$3" --reset-offsets --to-offset "$4" --execute >&2
}

# ---------------------------------------------------------------- Prometheus

prometheus_check() { curl -sf --max-time 2 "http://127.0.0.1:$PROM_PORT/-/ready" >/dev/null 2>&1; }

start_prometheus() {
  local d="$RUN_DIR/prometheus" targets="" rules="" t list
  fresh prometheus "$d"
  mkdir -p "$d/data"
  command -v prometheus >/dev/null || die "prometheus not installed (scripts/deps.sh)"
  PROM_PORT=$(free_port)
  IFS=, read -ra list <<<"${PROM_TARGETS:-}"
  for t in "${list[@]}"; do [[ -n $t ]] && targets+="\"$t\", "; done
  IFS=, read -ra list <<<"${PROM_RULES:-}"
  for t in "${list[@]}"; do [[ -n $t ]] && rules+="  - \"$t\"
"; done
  cat >"$d/prometheus.yml" <<EOF
# written by scripts/services.sh
global:
  scrape_interval: ${PROM_SCRAPE_INTERVAL:-1s}
  evaluation_interval: ${PROM_SCRAPE_INTERVAL:-1s}
rule_files:
$rules
scrape_configs:
  - job_name: cdcpipe
    scrape_timeout: 1s
    static_configs:
      - targets: [${targets%, }]
EOF
  (cd "$d" && exec prometheus --config.file="$d/prometheus.yml" --storage.tsdb.path="$d/data" \
    --web.listen-address="127.0.0.1:$PROM_PORT") \
    </dev/null >"$RUN_DIR/logs/prometheus.log" 2>&1 9>&- &
  record prometheus $!
  wait_ready prometheus 30 prometheus_check "$RUN_DIR/logs/prometheus.log"
  write_env prometheus "PROMETHEUS_URL=http://127.0.0.1:$PROM_PORT"
}

# ---------------------------------------------------------------- commands

cmd_start() {
  (($# > 0)) || usage
  local want=" $* " s
  for s in "$@"; do
    case $s in clickhouse | postgres | kafka | connect | prometheus) ;; *) die "unknown service '$s'" ;; esac
  done
  [[ $want == *" connect "* ]] && want+=" postgres kafka "
  alive kafka || alive connect || rm -f "$RUN_DIR/jvm-stack.path"
  for s in clickhouse postgres kafka connect prometheus; do
    [[ $want == *" $s "* ]] || continue
    if alive "$s"; then
      log "$s already running"
      continue
    fi
    "start_$s"
  done
}

cmd_stop() {
  local s
  if [[ -f $RUN_DIR/started ]]; then
    for s in $(tac "$RUN_DIR/started"); do kill_service "$s"; done
  fi
  # anything with a pid file but not in the list (should not happen, but be thorough)
  for s in prometheus connect kafka postgres clickhouse; do
    [[ -f $RUN_DIR/pids/$s.pid ]] && kill_service "$s"
  done
  rm -f "$RUN_DIR/started" "$RUN_DIR/services.env" "$RUN_DIR/env.d/"*.env "$RUN_DIR/ports.used"
}

cmd_status() {
  local s rc=0
  [[ -f $RUN_DIR/started ]] || { echo "nothing started in $RUN_DIR"; return 1; }
  while read -r s; do
    if alive "$s"; then echo "$s running (pid $(pid_of "$s"))"; else echo "$s DOWN"; rc=1; fi
  done <"$RUN_DIR/started"
  return $rc
}

main() {
  (($# >= 2)) || usage
  local cmd=$1
  mkdir -p "$2"
  RUN_DIR=$(cd "$2" && pwd)
  shift 2
  mkdir -p "$RUN_DIR"/{logs,pids,env.d}
  case $cmd in
    start)
      exec 9>"$RUN_DIR/.lock"
      flock 9
      cmd_start "$@"
      ;;
    stop)
      exec 9>"$RUN_DIR/.lock"
      flock 9
      cmd_stop
      ;;
    status) cmd_status ;;
    topic) (($# == 2)) || usage; cmd_topic "$@" ;;
    partitions) (($# == 2)) || usage; cmd_partitions "$@" ;;
    delete-records) (($# == 3)) || usage; cmd_delete_records "$@" ;;
    reset-offsets) (($# == 4)) || usage; cmd_reset_offsets "$@" ;;
    register-debezium) cmd_register_debezium ;;
    *) usage ;;
  esac
}

main "$@"
