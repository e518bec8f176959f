#!/usr/bin/env python3
"""examples_data.py — Debezium event streams and expected ClickHouse contents for test_examples.sh.

  examples_data.py mirror DIR SEED   a scripted random history of public.my_table (id int primary
                                     key, name text, created_at timestamp): an initial snapshot, then
                                     >= 1000 inserts, updates, deletes (each followed by its
                                     tombstone), primary-key changes (delete of the old key + create
                                     of the new one, same LSN) and unchanged-TOAST updates (name sent
                                     as __debezium_unavailable_value; some with a REPLICA IDENTITY
                                     FULL `before`), one TRUNCATE; LSNs increasing; envelope layouts
                                     2.5/2.7 and schemas on/off mixed. Writes DIR/mirror.tsv (in
                                     order), DIR/mirror_shuffled.tsv (the same records in random
                                     order) and DIR/mirror_expected.json (the final table, computed
                                     by replaying the history on a dict)
  examples_data.py audit DIR         fixture-based events of every kind → DIR/audit.tsv and
                                     DIR/audit_expected.json (one row per Kafka offset)
  examples_data.py route DIR         customers and orders streams → DIR/customers.tsv,
                                     DIR/orders.tsv, DIR/route_expected.json
  examples_data.py check KIND DIR TSV  compares ClickHouse's TabSeparated answer with the expectation
"""
import base64
import datetime as dt
import json
import os
import random
import sys

FIX = os.environ.get("DEBEZIUM_FIXTURES") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "debezium", "handwritten")
PLACEHOLDER = "__debezium_unavailable_value"
EPOCH = dt.datetime(1970, 1, 1)


def compact(v):
    return json.dumps(v, separators=(",", ":"), ensure_ascii=False)


def fixture(name):
    with open(os.path.join(FIX, name + ".json"), encoding="utf-8") as f:
        return json.load(f)


def source(layout, table, lsn, ts_ms, snapshot="false", schema="public", tx=900):
    s = {"version": "2.7.4.Final" if layout == "2.7" else "2.5.4.Final", "connector": "postgresql",
         "name": "pgserver", "ts_ms": ts_ms, "snapshot": snapshot, "db": "postgres",
         "sequence": compact([str(lsn - 40), str(lsn)])}
    if layout == "2.7":
        s.update({"ts_us": ts_ms * 1000, "ts_ns": ts_ms * 1000000})
    s.update({"schema": schema, "table": table, "txId": tx, "lsn": lsn, "xmin": None})
    return s


def envelope(layout, op, before, after, src, ts_ms):
    if layout == "2.7":
        return {"before": before, "after": after, "source": src, "transaction": None, "op": op,
                "ts_ms": ts_ms, "ts_us": ts_ms * 1000, "ts_ns": ts_ms * 1000000}
    return {"before": before, "after": after, "source": src, "op": op, "ts_ms": ts_ms,
            "transaction": None}


def with_schema(value):
    """A {schema, payload} envelope; cdcpipe ignores the schema, so a skeleton suffices here."""
    return {"schema": {"type": "struct", "fields": [], "optional": False,
                       "name": "pgserver.public.my_table.Envelope"}, "payload": value}


def tsv_field(s):
    if s == "\\N":
        return None
    table = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "0": "\0"}
    out, i = [], 0
    while i < len(s):
        if s[i] == "\\" and i + 1 < len(s):
            out.append(table.get(s[i + 1], s[i + 1]))
            i += 2
        else:
            out.append(s[i])
            i += 1
    return "".join(out)


def read_tsv(path):
    with open(path, encoding="utf-8") as f:
        return [[tsv_field(x) for x in l.rstrip("\n").split("\t")] for l in f if l.strip()]


# ---- mirror ---------------------------------------------------------------------------------------

def random_name(rng):
    r = rng.random()
    if r < 0.08:
        return None
    if r < 0.13:
        return ""
    if r < 0.30:  # large: stored out of line by PostgreSQL, so it can come back as the placeholder
        return "long-" + "".join(rng.choice("abcdefghij€é中") for _ in range(2500))
    alphabet = "abcdefghijklmnopqrstuvwxyz ÄÖÜäöüß中文🙂\"'\\\t\n,;"
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 24)))


def random_ts(rng):
    if rng.random() < 0.05:
        return None
    lo = (dt.datetime(2000, 1, 1) - EPOCH) // dt.timedelta(microseconds=1)
    hi = (dt.datetime(2030, 1, 1) - EPOCH) // dt.timedelta(microseconds=1)
    return rng.randint(lo, hi)


def mirror(outdir, seed):
    rng = random.Random(int(seed))
    state = {}  # id -> (name, created_at_us)
    records = []
    lsn = 40_000_000
    ts_ms = 1_700_000_000_000
    counts = {}
    kinds = {}
    touched = set()

    def emit(op, key_id, before, after, lsn_, snapshot="false", tombstone=False):
        layout = rng.choice(["2.5", "2.7"])
        value = envelope(layout, op, before, after,
                         source(layout, "my_table", lsn_, ts_ms, snapshot), ts_ms + 7)
        schemas = rng.random() < 0.3
        key = {"id": key_id} if key_id is not None else None
        if schemas:
            value = with_schema(value)
            key = {"schema": {"type": "struct", "fields": [{"type": "int32", "optional": False, "field": "id"}],
                              "optional": False, "name": "pgserver.public.my_table.Key"},
                   "payload": key} if key is not None else None
        records.append(("" if key is None else compact(key), compact(value)))
        if tombstone:
            records.append((compact(key), "NULL"))
        counts[op] = counts.get(op, 0) + 1
        if key_id is not None:
            touched.add(key_id)

    def kind(k):
        kinds[k] = kinds.get(k, 0) + 1

    def row(i):
        name, ts = state[i]
        return {"id": i, "name": name, "created_at": ts}

    # initial snapshot: 45 rows at the snapshot's LSN
    snapshot_lsn = lsn
    for i in range(1, 46):
        state[i] = (random_name(rng), random_ts(rng))
        emit("r", i, None, row(i), snapshot_lsn, snapshot="last" if i == 45 else "true")

    ids = range(1, 81)
    ops = 0
    truncated = False
    while ops < 1100:
        lsn += rng.randint(8, 400)
        ts_ms += rng.randint(1, 5000)
        live = sorted(state)
        free = [i for i in ids if i not in state]
        r = rng.random()
        if not truncated and ops == 500:
            emit("t", None, None, None, lsn)
            state.clear()
            truncated = True
            kind("truncate")
        elif (r < 0.25 or not live) and free:  # insert
            i = rng.choice(free)
            state[i] = (random_name(rng), random_ts(rng))
            emit("c", i, None, row(i), lsn)
            kind("insert")
        elif r < 0.55 and live:  # update: REPLICA IDENTITY DEFAULT, before is null
            i = rng.choice(live)
            name, ts = state[i]
            what = rng.random()
            state[i] = (random_name(rng) if what < 0.7 else name, random_ts(rng) if what > 0.3 else ts)
            emit("u", i, None, row(i), lsn)
            kind("update")
        elif r < 0.70 and live:  # update leaving a large name unchanged (TOAST)
            longs = [i for i in live if state[i][0] and len(state[i][0]) > 2000]
            i = rng.choice(longs or live)
            name, _ts = state[i]
            state[i] = (name, random_ts(rng))
            after = row(i)
            before = None
            if name and len(name) > 2000:
                after["name"] = PLACEHOLDER
                if rng.random() < 0.3:  # REPLICA IDENTITY FULL (before Debezium filled it in)
                    before = {"id": i, "name": name, "created_at": _ts}
                kind("toast_unchanged_update")
            else:
                kind("update")
            emit("u", i, before, after, lsn)
        elif r < 0.85 and live:  # delete (DEFAULT: key only, nullable columns null) + tombstone
            i = rng.choice(live)
            del state[i]
            emit("d", i, {"id": i, "name": None, "created_at": None}, None, lsn, tombstone=True)
            kind("delete")
        elif live and free:  # primary-key change: delete old key + tombstone, create new key
            old, new = rng.choice(live), rng.choice(free)
            name, ts = state.pop(old)
            if rng.random() < 0.5:
                name = random_name(rng)
            state[new] = (name, ts)
            emit("d", old, {"id": old, "name": None, "created_at": None}, None, lsn, tombstone=True)
            emit("c", new, None, row(new), lsn)
            kind("pk_change")
        else:
            continue
        ops += 1

    assert len(touched) >= 50 and ops >= 1000
    with open(os.path.join(outdir, "mirror.tsv"), "w", encoding="utf-8") as f:
        f.writelines(k + "\t" + v + "\n" for k, v in records)
    shuffled = list(records)
    rng.shuffle(shuffled)
    with open(os.path.join(outdir, "mirror_shuffled.tsv"), "w", encoding="utf-8") as f:
        f.writelines(k + "\t" + v + "\n" for k, v in shuffled)
    expected = []
    for i in sorted(state):
        name, ts = state[i]
        at = None if ts is None else (EPOCH + dt.timedelta(microseconds=ts)).strftime("%Y-%m-%d %H:%M:%S")
        expected.append([str(i), name, at])
    with open(os.path.join(outdir, "mirror_expected.json"), "w", encoding="utf-8") as f:
        json.dump(expected, f, ensure_ascii=False)
    print("%d operations (%s, after a %d-row snapshot) on %d keys: %d records, %d rows at the end" % (
        ops, " ".join("%s=%d" % kv for kv in sorted(kinds.items())), 45, len(touched), len(records),
        len(expected)))


# ---- audit ----------------------------------------------------------------------------------------

def strip_nulls(v):
    """What the decoder hands Lua: JSON null members are absent."""
    if isinstance(v, dict):
        return {k: strip_nulls(x) for k, x in v.items() if x is not None}
    if isinstance(v, list):
        return [strip_nulls(x) for x in v]
    return v


def as_json_text(v):
    return None if v is None else json.dumps(strip_nulls(v), separators=(",", ":"), sort_keys=True,
                                              ensure_ascii=False)


def audit(outdir):
    key_plain = fixture("S27-01-key-no-schema")
    key_schema = fixture("S27-01-key-with-schema")
    records = [  # (key, value)
        (key_schema, fixture("S27-02-create-with-schema")),
        (key_plain, fixture("S25-02-create-no-schema")),
        (key_plain, fixture("S27-03-update-full-no-schema")),
        (key_plain, fixture("S27-08-update-default-ri-no-schema")),
        (key_plain, fixture("S27-04-delete-full-no-schema")),
        (key_plain, None),  # its tombstone
        (key_plain, fixture("S27-09-delete-default-ri-no-schema")),
        ({"id": 1001}, fixture("S27-06-read-first-no-schema")),
        (None, fixture("S27-07-truncate-with-schema")),
        (fixture("S27-10-typed-key-with-schema"), fixture("S27-10-typed-create-with-schema")),
        (fixture("S27-11-heartbeat-key-with-schema"), fixture("S27-11-heartbeat-value-with-schema")),
        (fixture("S27-12-txn-begin-key-with-schema"), fixture("S27-12-txn-begin-value-with-schema")),
        (key_plain, fixture("S27-12-create-with-txn-block-no-schema")),
        (fixture("S27-14-message-key-no-schema"), fixture("S27-14-message-transactional-no-schema")),
        (key_plain, fixture("S27-13-unwrap-delete-rewrite")),
        (key_plain, fixture("S27-13-unwrap-default-create")),  # no __op: not distinguishable, filtered
        (key_plain, {"before": None, "after": {"id": 7, "note": "é\t\"q\"\n", "big": 9223372036854775807},
                     "source": {"ts_ms": 0, "db": "postgres", "schema": "public", "table": "edge",
                                "lsn": 9223372036854775807, "txId": 4294967295, "snapshot": "false"},
                     "op": "c", "ts_ms": 1}),
    ]
    lines, expected = [], []
    for offset, (key, value) in enumerate(records):
        lines.append(("" if key is None else compact(key)) + "\t" + ("NULL" if value is None else compact(value)))
        if value is None:
            continue
        ev = value["payload"] if "schema" in value and "payload" in value else value
        k = key["payload"] if isinstance(key, dict) and "schema" in key and "payload" in key else key
        if "op" not in ev:
            if "__op" not in ev and "__deleted" not in ev:
                continue
            image = {a: b for a, b in ev.items() if not a.startswith("__")}
            op = "d" if ev.get("__deleted") == "true" else ev.get("__op", "u")
            src = {"lsn": ev.get("__lsn"), "table": ev.get("__table"), "ts_ms": ev.get("__source_ts_ms")}
            ev = {"op": op, "before": image if op == "d" else None, "after": None if op == "d" else image,
                  "source": src}
        src = ev.get("source") or {}
        # Lua's `a or b` only skips nil (0 counts): mirror it
        ts = next((t for t in (src.get("ts_ms"), ev.get("ts_ms")) if t is not None), 0)
        after = ev.get("after") if ev["op"] != "m" else ev.get("message")
        expected.append([
            ev["op"], src.get("db") or "", src.get("schema") or "", src.get("table") or "",
            as_json_text(k), as_json_text(ev.get("before")), as_json_text(after),
            None if src.get("lsn") is None else str(src["lsn"]),
            None if src.get("txId") is None else str(src["txId"]),
            src.get("snapshot") or "false",
            (EPOCH + dt.timedelta(milliseconds=ts)).strftime("%Y-%m-%d %H:%M:%S") if ts else "ZERO",
            str(src["ts_ms"]) if src.get("ts_ms") is not None else "0", None if ev.get("ts_ms") is None else str(ev["ts_ms"]),
            str(offset),
        ])
    with open(os.path.join(outdir, "audit.tsv"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.join(outdir, "audit_expected.json"), "w", encoding="utf-8") as f:
        json.dump(expected, f, ensure_ascii=False)


# ---- route ----------------------------------------------------------------------------------------

def b64_decimal(text, scale):
    from decimal import Decimal
    u = int(Decimal(text).scaleb(scale))
    n = max(1, (u.bit_length() + 8) // 8 if u >= 0 else ((-u - 1).bit_length() + 8) // 8)
    return base64.b64encode(u.to_bytes(n, "big", signed=True)).decode()


def route(outdir):
    lsn = 50_000_000
    customers, orders = [], []

    def cust(op, before, after, layout="2.7"):
        nonlocal lsn
        lsn += 100
        key = {"id": (after or before)["id"]}
        customers.append(compact(key) + "\t" + compact(envelope(
            layout, op, before, after, source(layout, "customers", lsn, 1700000000000, schema="inventory"),
            1700000000100)))

    def order(op, before, after, layout="2.5", schemas=False):
        nonlocal lsn
        lsn += 100
        key = {"id": (after or before)["id"]}
        value = envelope(layout, op, before, after, source(layout, "orders", lsn, 1700000000000,
                                                           schema="inventory"), 1700000000100)
        if schemas:
            value, key = with_schema(value), {"schema": {"type": "struct", "fields": []}, "payload": key}
        orders.append(compact(key) + "\t" + compact(value))

    c = lambda i, f, l, e: {"id": i, "first_name": f, "last_name": l, "email": e}
    cust("r", None, c(1001, "Sally", "Thomas", "sally.thomas@acme.com"))
    cust("r", None, c(1002, "George", "Bailey", "gbailey@foobar.com"))
    cust("c", None, c(1005, "Bob", "Hopper", "bob@example.com"), layout="2.5")
    cust("u", c(1005, "Bob", "Hopper", "bob@example.com"), c(1005, "Robert", "Hopper", None))
    cust("d", c(1002, "", "", ""), None)
    cust("c", None, c(1006, "Zoë", "D'Arcy \"Jr\"", "zoe@example.com"))
    # the same key again with the same version: a replay, no change
    customers.append(customers[-1])
    # REPLICA IDENTITY FULL: unchanged-TOAST email taken from before
    cust("u", c(1006, "Zoë", "D'Arcy \"Jr\"", "zoe@example.com"), c(1006, "Zoé", "D'Arcy \"Jr\"", PLACEHOLDER))
    # REPLICA IDENTITY DEFAULT: not recoverable → an error, the event is dead-lettered
    cust("u", None, c(1001, "Sal", "Thomas", PLACEHOLDER))

    o = lambda i, day, who, q, amount: {"id": i, "order_date": day, "purchaser": who, "quantity": q,
                                        "product_id": 102, "amount": b64_decimal(amount, 2)}
    order("r", None, o(10001, 16816, 1001, 1, "39.98"))
    order("c", None, o(10002, 16817, 1002, 2, "1234.50"), layout="2.7", schemas=True)
    order("c", None, o(10003, 19782, 1005, 3, "-0.01"))
    order("u", None, o(10003, 19782, 1005, 4, "99999999.99"), layout="2.7")
    order("d", {"id": 10002, "order_date": 0, "purchaser": 0, "quantity": 0, "product_id": 0,
                "amount": "AA=="}, None, schemas=True)
    order("c", None, o(10004, 0, 1006, 5, "0"))
    with open(os.path.join(outdir, "customers.tsv"), "w", encoding="utf-8") as f:
        f.write("\n".join(customers) + "\n")
    with open(os.path.join(outdir, "orders.tsv"), "w", encoding="utf-8") as f:
        f.write("\n".join(orders) + "\n")
    expected = {
        "customers": [["1001", "Sally Thomas", "sally.thomas@acme.com"],
                      ["1005", "Robert Hopper", None],
                      ["1006", "Zoé D'Arcy \"Jr\"", "zoe@example.com"]],
        "orders": [["10001", "1001", "1", "39.98", "3998", "2016-01-16"],
                   ["10003", "1005", "4", "99999999.99", "9999999999", "2024-02-29"],
                   ["10004", "1006", "5", "0.00", "0", "ZERO"]],
    }
    with open(os.path.join(outdir, "route_expected.json"), "w", encoding="utf-8") as f:
        json.dump(expected, f, ensure_ascii=False)


# ---- check ----------------------------------------------------------------------------------------

def check(kind, outdir, tsv, zero=None):
    actual = read_tsv(tsv)
    name = {"mirror": "mirror_expected.json", "audit": "audit_expected.json"}.get(kind, "route_expected.json")
    with open(os.path.join(outdir, name), encoding="utf-8") as f:
        expected = json.load(f)
    if kind in ("customers", "orders"):
        expected = expected[kind]
    expected = [[zero if x == "ZERO" else x for x in row] for row in expected]
    if actual == expected:
        print("%d rows equal" % len(actual))
        return 0
    print("%d rows expected, %d in ClickHouse" % (len(expected), len(actual)), file=sys.stderr)
    shown = 0
    for i in range(max(len(actual), len(expected))):
        a = actual[i] if i < len(actual) else None
        e = expected[i] if i < len(expected) else None
        if a != e and shown < 10:
            print("row %d:\n  expected %r\n  actual   %r" % (i, e, a), file=sys.stderr)
            shown += 1
    return 1


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "mirror":
        mirror(sys.argv[2], sys.argv[3])
    elif cmd == "audit":
        audit(sys.argv[2])
    elif cmd == "route":
        route(sys.argv[2])
    elif cmd == "check":
        sys.exit(check(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5] if len(sys.argv) > 5 else None))
    else:
        sys.exit("unknown command " + cmd)
