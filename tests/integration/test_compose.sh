#!/usr/bin/env bash
# test_compose.sh — static checks of docker-compose.yml (no Docker engine needed).
#
# 1. `docker-compose config -q` accepts the file (schema, interpolation, depends_on conditions).
# 2. The connector that connect-register PUTs is valid JSON with the settings Debezium 2.x needs:
#    topic.prefix (2.x rejects database.server.name alone), pgoutput, debezium_slot, debezium_pub,
#    public.my_table.
# 3. The stack's wiring: wal_level=logical, kafka reachable as kafka:9092, cdcpipe's environment.
#
# Environment: CDCPIPE_SOURCE_DIR (repo), CDCPIPE_TEST_RUN_DIR (scratch, created here).
# Exit 77 (skip) only when docker-compose is not installed.
set -euo pipefail

src=${CDCPIPE_SOURCE_DIR:?CDCPIPE_SOURCE_DIR not set}
run=${CDCPIPE_TEST_RUN_DIR:-$(mktemp -d)}
mkdir -p "$run"
compose=$src/docker-compose.yml

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

if ! command -v docker-compose >/dev/null; then
  echo "SKIP: docker-compose not installed" >&2
  exit 77
fi

[[ -f $compose ]] || fail "$compose missing"
[[ -f $src/Dockerfile ]] || fail "$src/Dockerfile missing (the cdcpipe service builds it)"

# 1. Validation; the resolved form (with $$ still escaped) is kept for the checks below.
docker-compose -f "$compose" config -q || fail "docker-compose config rejects $compose"
docker-compose -f "$compose" config >"$run/resolved.yml" || fail "docker-compose config failed"

# 2. The registration: each setting must appear in the file ...
for needle in '"topic.prefix": "pgserver"' '"plugin.name": "pgoutput"' \
  '"slot.name": "debezium_slot"' '"publication.name": "debezium_pub"' \
  '"table.include.list": "public.my_table"' \
  '"connector.class": "io.debezium.connector.postgresql.PostgresConnector"' \
  '"database.hostname": "postgres"' 'http://connect:8083/connectors/pg/config'; do
  grep -qF -- "$needle" "$compose" || fail "connector registration lacks $needle"
done

# ... and the JSON body the one-shot sends must parse, with exactly these values.
python3 - "$run/resolved.yml" <<'PY' || fail "connector JSON check failed"
import json, re, sys
import yaml

cfg = yaml.safe_load(open(sys.argv[1]))
services = cfg["services"]
script = services["connect-register"]["command"][-1].replace("$$", "$")
m = re.search(r"config='(\{.*?\})'", script, re.S)
if not m:
    sys.exit("no config='{...}' in connect-register's command")
conn = json.loads(m.group(1))
want = {
    "name": "pg",
    "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
    "database.hostname": "postgres",
    "database.port": "5432",
    "database.user": "postgres",
    "database.password": "postgres",
    "database.dbname": "postgres",
    "topic.prefix": "pgserver",
    "plugin.name": "pgoutput",
    "slot.name": "debezium_slot",
    "publication.name": "debezium_pub",
    "table.include.list": "public.my_table",
}
bad = {k: (conn.get(k), v) for k, v in want.items() if conn.get(k) != v}
if bad:
    sys.exit(f"connector settings differ (got, want): {bad}")
if "database.server.name" in conn and "topic.prefix" not in conn:
    sys.exit("database.server.name without topic.prefix is rejected by Debezium 2.x")

# 3. Wiring between the services.
pg_cmd = " ".join(services["postgres"].get("command", []))
if "wal_level=logical" not in pg_cmd:
    sys.exit(f"postgres command lacks wal_level=logical: {pg_cmd}")
if "my_table" not in json.dumps(services["postgres"]):
    sys.exit("postgres has no init SQL creating public.my_table")
if "PLAINTEXT://kafka:9092" not in services["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]:
    sys.exit("kafka does not advertise kafka:9092 to the other containers")
if services["connect"]["environment"]["BOOTSTRAP_SERVERS"] != "kafka:9092":
    sys.exit("connect does not bootstrap from kafka:9092")
env = services["cdcpipe"]["environment"]
for k, v in {"CDCPIPE_BROKERS": "kafka:9092", "CDCPIPE_CLICKHOUSE_URL": "http://clickhouse:8123",
             "CDCPIPE_TOPICS": "pgserver.public.my_table"}.items():
    if env.get(k) != v:
        sys.exit(f"cdcpipe {k}={env.get(k)!r}, want {v!r}")
dep = services["cdcpipe"]["depends_on"]
if dep.get("connect-register", {}).get("condition") != "service_completed_successfully":
    sys.exit("cdcpipe must wait for connect-register to finish")
print("connector and wiring OK:", ", ".join(f"{k}={conn[k]}" for k in
      ("topic.prefix", "plugin.name", "slot.name", "publication.name", "table.include.list")))
PY

echo "PASS: docker-compose.yml"
