#!/usr/bin/env bash
# scripts/capture-fixtures.sh — capture Debezium fixtures from the REAL connector.
#
#   scripts/capture-fixtures.sh [OUT_DIR]      (default: tests/fixtures/debezium/captured)
#
# Starts PostgreSQL, Kafka and Kafka Connect + Debezium's PostgreSQL connector (the stack
# scripts/services.sh runs, fetched from Maven Central) in a temporary run directory under
# build/ (stopped and removed at exit; CAPTURE_KEEP=1 keeps it for a look at the logs), creates
# tables, registers six connectors (three kinds, each once with JsonConverter schemas.enable=true
# and once with false), runs a fixed list of statements, reads every record of the topics with
# kcat and writes one file per record and part into OUT_DIR:
#
#   NN-WHAT-{with,no}-schema-key.json    the record key, compact JSON exactly as on the wire,
#   NN-WHAT-{with,no}-schema-value.json  then a newline; a Kafka-null key or value (a tombstone,
#                                        a truncate's key) is a file of 0 bytes
#   MANIFEST.tsv     one line per record: number, what, schemas, files, topic, connector, op,
#                    null key/value, headers (JSON object name → value text), source.version,
#                    and the statement that produced it
#   connectors.json  the versions (PostgreSQL, Debezium) and every connector's settings as
#                    registered (host, port and password, which vary per run, left out)
#
# The files written and their names are the same on every run; their contents vary where the
# connector puts run-specific values (timestamps, LSNs, transaction ids, sequence). An expected
# record that has not arrived within CAPTURE_TIMEOUT seconds (120) fails the script (exit 1)
# with a message naming it; OUT_DIR is then left as it was.
#
# Connectors (topic prefix P = withschema | noschema):
#   main-P    P.public.{items,items_full,typed,toasted}, P.message, __debezium-heartbeat.P:
#             heartbeat.interval.ms=1000, skipped.operations=none (truncate events on)
#   txn-P     P_txn.public.txn_demo, P_txn.transaction: provide.transaction.metadata=true
#             (the BEGIN and END records of the two-insert transaction are captured; the
#             connector also writes an empty BEGIN/END pair for the logical message's transaction)
#   unwrap-P  P_unwrap.public.flat: transforms=unwrap (ExtractNewRecordState, add.fields=op)
set -euo pipefail

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${1:-$SRC/tests/fixtures/debezium/captured}
mkdir -p "$SRC/build" "$OUT"
OUT=$(cd "$OUT" && pwd)
RUN=$(mktemp -d "$SRC/build/capture-fixtures.XXXXXX")

cleanup() {
  local rc=$?
  if ((rc != 0)) && [[ -f $RUN/logs/connect.log ]]; then
    echo "---- last 40 lines of $RUN/logs/connect.log ----" >&2
    tail -n 40 "$RUN/logs/connect.log" >&2
  fi
  "$SRC/scripts/services.sh" stop "$RUN" >&2 || true
  if [[ ${CAPTURE_KEEP:-0} == 1 ]]; then
    echo "capture-fixtures.sh: kept $RUN" >&2
  else
    rm -rf "$RUN"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$SRC/scripts/services.sh" start "$RUN" postgres kafka connect

SRC=$SRC RUN=$RUN OUT=$OUT python3 - <<'PY'
import json, os, re, shutil, subprocess, sys, time

SRC, RUN, OUT = os.environ["SRC"], os.environ["RUN"], os.environ["OUT"]
TIMEOUT = int(os.environ.get("CAPTURE_TIMEOUT", "120"))
env = dict(os.environ)
with open(os.path.join(RUN, "services.env")) as f:
    for line in f:
        k, _, v = line.strip().partition("=")
        if k:
            env[k] = v
env.update(PGHOST=env["PG_HOST"], PGPORT=env["PG_PORT"], PGUSER=env["PG_USER"],
           PGDATABASE=env["PG_DB"], PGPASSWORD=env["PG_PASSWORD"])
BROKERS = env["KAFKA_BROKERS"]


def log(msg):
    print("capture-fixtures.sh: " + msg, file=sys.stderr, flush=True)


def die(msg):
    log(msg)
    sys.exit(1)


def psql(statement):
    p = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-At", "-c", statement],
                       env=env, capture_output=True, text=True)
    if p.returncode != 0:
        die("psql failed: %s\n%s" % (statement, p.stderr))
    return p.stdout.strip()


# ------------------------------------------------------------------ tables and statements

SETUP = [
    "CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy')",
    "CREATE TABLE items (id integer PRIMARY KEY, name text)",
    "CREATE TABLE items_full (id integer PRIMARY KEY, name text)",
    "ALTER TABLE items_full REPLICA IDENTITY FULL",
    """CREATE TABLE typed (id integer PRIMARY KEY, i16 smallint, i32 integer, i64 bigint,
       f32 real, f64 double precision, num2 numeric(10,2), num numeric, flag boolean, txt text,
       vc varchar(20), ch char(5), b bytea, d date, t time, tz timetz, ts timestamp,
       tstz timestamptz, dur interval, u uuid, j json, jb jsonb, mood mood, ints integer[],
       tags text[], ip inet, net cidr, mac macaddr, cash money, bits bit(5), x xml)""",
    # EXTERNAL: out of line and uncompressed, whatever the data
    "CREATE TABLE toasted (id integer PRIMARY KEY, big text, note text)",
    "ALTER TABLE toasted ALTER COLUMN big SET STORAGE EXTERNAL",
    "CREATE TABLE txn_demo (id integer PRIMARY KEY, name text)",
    "CREATE TABLE flat (id integer PRIMARY KEY, name text)",
]
SNAPSHOT_ROWS = {
    "items": "INSERT INTO items VALUES (1, 'snapshot row')",
    "items_full": "INSERT INTO items_full VALUES (1, 'snapshot row')",
}
TYPED_INSERT = (
    "INSERT INTO typed VALUES (1, -32768, 2147483647, 9223372036854775807, 1.5, 2.25, "
    "12345678.90, -3.14159265358979323846, true, 'Zoë \"quoted\" \\ back, 中文', 'varchar', 'ab', "
    "'\\x00ff10', '2024-02-29', '13:45:30.123456', '13:45:30.5+02', "
    "'2024-02-29 12:34:56.789012', '2024-02-29 12:34:56.789012+02', "
    "'1 day 2 hours 3 minutes 4.5 seconds', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', "
    "'{\"a\": 1, \"b\": [true, null]}', '{\"b\": [true, null], \"a\": 1}', 'happy', "
    "'{1,-2,3}', '{\"x\",\"y z\"}', '192.168.0.1', '10.0.0.0/8', '08:00:2b:01:02:03', "
    "'1234.56', B'10110', '<a>x</a>')")
# 400 md5 hex digests: 12800 characters, stored out of line (TOAST) without compression
TOAST_INSERT = ("INSERT INTO toasted SELECT 1, string_agg(md5(i::text), '' ORDER BY i), 'before' "
                "FROM generate_series(1, 400) AS i")
TXN = ("BEGIN; INSERT INTO txn_demo VALUES (1, 'first'); "
       "INSERT INTO txn_demo VALUES (2, 'second'); COMMIT")

# The statements run after the connectors stream, in this order; every captured record names
# the statement it comes from.
STATEMENTS = [
    "INSERT INTO items VALUES (2, 'inserted')",
    "UPDATE items SET name = 'updated' WHERE id = 2",
    "DELETE FROM items WHERE id = 2",
    "UPDATE items SET id = 10 WHERE id = 1",
    "TRUNCATE items",
    "UPDATE items_full SET name = 'updated' WHERE id = 1",
    "DELETE FROM items_full WHERE id = 1",
    TYPED_INSERT,
    TOAST_INSERT,
    "UPDATE toasted SET note = 'after' WHERE id = 1",
    "SELECT pg_logical_emit_message(true, 'capture', 'a logical decoding message')",
    TXN,
    "INSERT INTO flat VALUES (1, 'flattened')",
]
S = {i: s for i, s in enumerate(STATEMENTS)}

# ------------------------------------------------------------------ what is captured

MODES = [("with-schema", "withschema", True), ("no-schema", "noschema", False)]


# One entry per captured record: (number, what, topic suffix, matcher, statement).
# A table topic's records are checked in order against its list; `heartbeat` takes the first
# record of the topic; `txn` picks the BEGIN/END record of the transaction of TXN.
def rec(op=None, id=None, tomb=False, key_id=None):
    return {"op": op, "id": id, "tomb": tomb, "key_id": key_id}


SPEC = [
    ("01", "read-snapshot", "main", ".public.items", rec("r", 1), SNAPSHOT_ROWS["items"] + " (before the connector: snapshot)"),
    ("02", "read-snapshot-full", "main", ".public.items_full", rec("r", 1), SNAPSHOT_ROWS["items_full"] + " (before the connector: snapshot)"),
    ("03", "insert", "main", ".public.items", rec("c", 2), S[0]),
    ("04", "update-default", "main", ".public.items", rec("u", 2), S[1]),
    ("05", "delete-default", "main", ".public.items", rec("d", 2), S[2]),
    ("06", "delete-default-tombstone", "main", ".public.items", rec(tomb=True, key_id=2), S[2]),
    ("07", "pk-change-delete", "main", ".public.items", rec("d", 1), S[3]),
    ("08", "pk-change-tombstone", "main", ".public.items", rec(tomb=True, key_id=1), S[3]),
    ("09", "pk-change-create", "main", ".public.items", rec("c", 10), S[3]),
    ("10", "truncate", "main", ".public.items", rec("t"), S[4]),
    ("11", "update-full", "main", ".public.items_full", rec("u", 1), S[5]),
    ("12", "delete-full", "main", ".public.items_full", rec("d", 1), S[6]),
    ("13", "delete-full-tombstone", "main", ".public.items_full", rec(tomb=True, key_id=1), S[6]),
    ("14", "typed-insert", "main", ".public.typed", rec("c", 1), S[7]),
    ("15", "toast-insert", "main", ".public.toasted", rec("c", 1), S[8]),
    ("16", "toast-update-unchanged", "main", ".public.toasted", rec("u", 1), S[9]),
    ("17", "message", "main", ".message", rec("m"), S[10]),
    ("18", "heartbeat", "main", "heartbeat", "heartbeat", "(none: heartbeat.interval.ms=1000)"),
    ("19", "txn-begin", "txn", "_txn.transaction", ("txn", "BEGIN"), TXN),
    ("20", "txn-insert-first", "txn", "_txn.public.txn_demo", rec("c", 1), TXN),
    ("21", "txn-insert-second", "txn", "_txn.public.txn_demo", rec("c", 2), TXN),
    ("22", "txn-end", "txn", "_txn.transaction", ("txn", "END"), TXN),
    ("23", "unwrap-insert", "unwrap", "_unwrap.public.flat", "flat", S[12]),
]

CONVERTER = "org.apache.kafka.connect.json.JsonConverter"


def connectors(mode, prefix, schemas):
    conv = {"key.converter": CONVERTER, "value.converter": CONVERTER,
            "key.converter.schemas.enable": str(schemas).lower(),
            "value.converter.schemas.enable": str(schemas).lower()}
    no_messages = {"message.prefix.exclude.list": ".*"}
    return [
        ("main", "main-" + prefix, prefix, "public.items,public.items_full,public.typed,public.toasted",
         dict(conv, **{"heartbeat.interval.ms": "1000", "skipped.operations": "none"})),
        ("txn", "txn-" + prefix, prefix + "_txn", "public.txn_demo",
         dict(conv, **no_messages, **{"provide.transaction.metadata": "true"})),
        ("unwrap", "unwrap-" + prefix, prefix + "_unwrap", "public.flat",
         dict(conv, **no_messages, **{
             "transforms": "unwrap",
             "transforms.unwrap.type": "io.debezium.transforms.ExtractNewRecordState",
             "transforms.unwrap.add.fields": "op"})),
    ]


# ------------------------------------------------------------------ Kafka

def topic_records(topic):
    """Every record of TOPIC now (kcat -J), [] while the topic does not exist."""
    p = subprocess.run(["kcat", "-C", "-b", BROKERS, "-t", topic, "-o", "beginning", "-e", "-J", "-q",
                        "-m", "10"], capture_output=True, text=True)
    if p.returncode != 0:
        return []
    return [json.loads(line) for line in p.stdout.splitlines() if line.strip()]


def payload(text):
    d = json.loads(text)
    if isinstance(d, dict) and set(d) == {"schema", "payload"}:
        return d["payload"]
    return d


def describe(r):
    if r["payload"] is None:
        return "tombstone key=%s" % r["key"]
    v = payload(r["payload"])
    image = v.get("after") or v.get("before") or {}
    return "op=%s id=%s" % (v.get("op"), image.get("id"))


def matches(r, m):
    if m["tomb"]:
        return r["payload"] is None and r["key"] is not None and payload(r["key"]).get("id") == m["key_id"]
    if r["payload"] is None:
        return False
    v = payload(r["payload"])
    if v.get("op") != m["op"]:
        return False
    if m["id"] is None:
        return True
    image = v.get("after") or v.get("before") or {}
    return image.get("id") == m["id"]


def wait(what, check):
    deadline = time.monotonic() + TIMEOUT
    while True:
        missing = check()
        if not missing:
            return
        if time.monotonic() >= deadline:
            die("%s: not there after %d s:\n  %s" % (what, TIMEOUT, "\n  ".join(missing)))
        time.sleep(0.5)


# ------------------------------------------------------------------ run

for s in SETUP + list(SNAPSHOT_ROWS.values()):
    psql(s)

registered = {}
for mode, prefix, schemas in MODES:
    for kind, name, topic_prefix, tables, extra in connectors(mode, prefix, schemas):
        slot = name.replace("-", "_")
        cenv = dict(env, DBZ_NAME=name, DBZ_TOPIC_PREFIX=topic_prefix, DBZ_SLOT=slot,
                    DBZ_PUBLICATION=slot, DBZ_TABLES=tables, DBZ_EXTRA_CONFIG=json.dumps(extra))
        t0 = time.monotonic()
        p = subprocess.run([os.path.join(SRC, "scripts/services.sh"), "register-debezium", RUN],
                           env=cenv, capture_output=True, text=True)
        if p.returncode != 0:
            die("registering connector %s failed:\n%s" % (name, p.stderr))
        log("connector %s RUNNING (%.1f s)" % (name, time.monotonic() - t0))
        registered[(mode, kind)] = name

# The statements must come after the snapshot (the r records) and after every slot exists.
slots = [n.replace("-", "_") for n in registered.values()]


def slots_missing():
    have = set(psql("SELECT slot_name FROM pg_replication_slots").split())
    return ["replication slot %s" % s for s in slots if s not in have]


def snapshots_missing():
    out = []
    for mode, prefix, _ in MODES:
        for table in SNAPSHOT_ROWS:
            if not any(matches(r, rec("r", 1)) for r in topic_records(prefix + ".public." + table)):
                out.append("snapshot read of %s in %s.public.%s" % (table, prefix, table))
    return out


wait("replication slots", slots_missing)
wait("snapshot records", snapshots_missing)
log("snapshots done; running %d statements" % len(STATEMENTS))
for s in STATEMENTS:
    psql(s)


def topic_name(prefix, suffix):
    return "__debezium-heartbeat." + prefix if suffix == "heartbeat" else prefix + suffix


def select():
    """(missing descriptions, {(mode, number): record})"""
    chosen, missing = {}, []
    for mode, prefix, _ in MODES:
        cache = {}

        def records(suffix):
            t = topic_name(prefix, suffix)
            if t not in cache:
                cache[t] = topic_records(t)
            return cache[t]

        # table topics: their records in order, exactly the expected ones
        by_topic = {}
        for number, what, kind, suffix, m, _ in SPEC:
            if isinstance(m, dict):
                by_topic.setdefault(suffix, []).append((number, what, m))
        for suffix, wanted in by_topic.items():
            got = records(suffix)
            for i, (number, what, m) in enumerate(wanted):
                name = "%s-%s-%s in %s" % (number, what, mode, topic_name(prefix, suffix))
                if i >= len(got):
                    missing.append(name)
                elif not matches(got[i], m):
                    die("%s: record %d of the topic is %s, expected %s" % (name, i, describe(got[i]), m))
                else:
                    chosen[(mode, number)] = got[i]
            if len(got) > len(wanted):
                die("%s has %d records, expected %d: the last is %s" % (
                    topic_name(prefix, suffix), len(got), len(wanted), describe(got[-1])))
        # the transaction of TXN: BEGIN and END records carry ids "TXID:LSN" (the LSN of the
        # first event and of the commit): match the create's source.txId
        first = chosen.get((mode, "20"))
        txid = str(payload(first["payload"])["source"]["txId"]) if first else None
        for number, what, kind, suffix, m, _ in SPEC:
            name = "%s-%s-%s in %s" % (number, what, mode, topic_name(prefix, suffix))
            if m == "heartbeat" or m == "flat":
                got = records(suffix)
                if got:
                    chosen[(mode, number)] = got[0]
                else:
                    missing.append(name)
            elif isinstance(m, tuple):
                hit = [r for r in records(suffix) if r["payload"] is not None and
                       payload(r["payload"]).get("status") == m[1] and
                       payload(r["payload"]).get("id", "").split(":")[0] == txid]
                if txid and hit:
                    chosen[(mode, number)] = hit[0]
                else:
                    missing.append(name + " (transaction %s)" % txid)
    return missing, chosen


result = {}


def check():
    missing, chosen = select()
    result["chosen"] = chosen
    return missing


wait("captured records", check)
chosen = result["chosen"]

# ------------------------------------------------------------------ checks on what arrived

# the TOAST placeholder really is there
toast = payload(chosen[("no-schema", "16")]["payload"])
if toast["after"]["big"] != "__debezium_unavailable_value":
    die("16-toast-update-unchanged: after.big is %r, not the unavailable-value placeholder" % toast["after"]["big"][:40])
flat = payload(chosen[("no-schema", "23")]["payload"])
if "op" in flat or flat.get("__op") != "c":
    die("23-unwrap-insert is not a flattened row: %s" % flat)
for mode, _, _ in MODES:
    h = dict(zip(*[iter(chosen[(mode, "09")].get("headers") or [])] * 2))
    if "__debezium.oldkey" not in h:
        die("09-pk-change-create-%s has no __debezium.oldkey header" % mode)

# ------------------------------------------------------------------ write

stage = os.path.join(RUN, "out")
os.makedirs(stage)
versions = set()
manifest = ["\t".join(["number", "what", "schemas", "key_file", "value_file", "topic", "connector",
                       "op", "key_null", "value_null", "headers", "debezium_version", "statement"])]
for number, what, kind, suffix, m, statement in SPEC:
    for mode, prefix, schemas in MODES:
        r = chosen[(mode, number)]
        stem = "%s-%s-%s" % (number, what, mode)
        files = []
        for part, text in (("key", r["key"]), ("value", r["payload"])):
            fname = "%s-%s.json" % (stem, part)
            with open(os.path.join(stage, fname), "wb") as f:
                if text is not None:
                    json.loads(text)  # valid JSON, or fail here
                    if "\n" in text:
                        die("%s: the record is not single-line JSON" % fname)
                    f.write(text.encode("utf-8") + b"\n")
            files.append(fname)
        v = payload(r["payload"]) if r["payload"] is not None else {}
        version = (v.get("source") or {}).get("version", "")
        if version:
            versions.add(version)
        op = v.get("op") or ("tombstone" if r["payload"] is None else
                             "heartbeat" if kind == "main" else
                             "transaction-" + v.get("status", "?").lower() if "status" in v else
                             "flattened")
        h = r.get("headers") or []
        headers = json.dumps(dict(zip(h[0::2], h[1::2])), ensure_ascii=False, separators=(",", ":"))
        manifest.append("\t".join([
            number, what, str(schemas).lower(), files[0], files[1], r["topic"], registered[(mode, kind)],
            op, str(r["key"] is None).lower(), str(r["payload"] is None).lower(), headers,
            version or "-", " ".join(statement.split())]))
if len(versions) != 1:
    die("expected one Debezium version in source.version, found %s" % sorted(versions))
with open(os.path.join(stage, "MANIFEST.tsv"), "w", encoding="utf-8") as f:
    f.write("\n".join(manifest) + "\n")

# the connectors' settings as Connect holds them, without what varies per run
info = {"debezium": versions.pop(), "postgresql": psql("SHOW server_version"),
        "setup": [" ".join(s.split()) for s in SETUP], "connectors": {}}
for (mode, kind), name in sorted(registered.items(), key=lambda x: x[1]):
    p = subprocess.run(["curl", "-sf", env["CONNECT_URL"] + "/connectors/" + name + "/config"],
                       capture_output=True, text=True)
    if p.returncode != 0:
        die("GET config of connector %s failed" % name)
    cfg = json.loads(p.stdout)
    for k in ("database.hostname", "database.port", "database.password"):
        cfg.pop(k, None)
    info["connectors"][name] = dict(sorted(cfg.items()))
with open(os.path.join(stage, "connectors.json"), "w", encoding="utf-8") as f:
    json.dump(info, f, indent=2, ensure_ascii=False)
    f.write("\n")

# replace what an earlier capture wrote in OUT (nothing else there is touched)
for name in os.listdir(OUT):
    if re.fullmatch(r"\d\d-.*\.json", name) or name in ("MANIFEST.tsv", "connectors.json"):
        os.remove(os.path.join(OUT, name))
for name in sorted(os.listdir(stage)):
    shutil.move(os.path.join(stage, name), os.path.join(OUT, name))
log("wrote %d records (%d files) of Debezium %s into %s" % (
    len(manifest) - 1, 2 * (len(manifest) - 1) + 2, info["debezium"], OUT))
PY
