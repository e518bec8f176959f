#!/usr/bin/env python3
"""faults_bad_input.py — the stream of test_bad_input.sh and readers for its dead letters.

  produce TOPIC BROKERS MANIFEST   produce the stream (one partition, offsets from 0) in order and
                                   write MANIFEST (JSON: every record with its offset, kind, key,
                                   value as base64 or null)
  file MANIFEST TOPIC JSONL        one line per dead letter in the --dlq-file JSONL
  topic MANIFEST TOPIC KCAT_JSON   one line per dead letter in `kcat -C -J` output of the DLQ topic

Both readers print, per dead letter, tab-separated:
  KIND  STAGE  ORIGIN  CODE  REASON
where KIND is the bad kind the dead letter's key names (key {"bad": KIND}), STAGE the stage it
reports, ORIGIN "same" when its source topic, partition, offset, key and value are exactly the
original record's (else what differs), CODE the ClickHouse code it carries ("-": none) and
REASON its reason on one line.

Records are produced with kcat from a file with \\x1e between records and \\x1f between key and
value, so values can hold any byte except those two (the generator checks); null values
(tombstones) go in separate kcat -Z runs, which keeps the order on the single partition.
"""
import base64
import json
import subprocess
import sys
import tempfile

REC, KEYSEP = b"\x1e", b"\x1f"


def good(i):
    return ("good", {"id": i}, json.dumps(
        {"op": "c", "after": {"id": i, "name": "good-%d" % i, "score": i + 0.5}}).encode())


def bad(kind, value):
    return (kind, {"bad": kind}, value)


def marker(kind, id_):
    return bad(kind, json.dumps({"op": "c", "after": {"id": id_, "kind": kind}}).encode())


def tombstone(i):
    return ("tombstone", {"id": i}, None)


def stream():
    deep = b'{"op":"c","after":{"id":107,"x":' + b"[" * 200 + b"]" * 200 + b"}}"
    big = json.dumps({"op": "c", "after": {"id": 106, "name": "y" * 20000}}).encode()
    # schemas.enable=true with 300 levels inside the skipped "schema": once accepted whatever
    # its depth (and memory grew with the square of it), now refused like any nesting too deep
    deep_schema = (b'{"schema":' + b"[" * 300 + b"]" * 300 +
                   b',"payload":{"op":"c","after":{"id":116,"name":"deep schema","score":1}}}')
    # a key over --max-event-bytes (10000 in the test) with an ordinary value
    big_key = ("big_key", {"bad": "big_key", "pad": "k" * 12000}, json.dumps(
        {"op": "c", "after": {"id": 117, "name": "big key", "score": 1}}).encode())
    return [
        good(1),
        tombstone(1),
        bad("truncated", b'{"op":"c","after":{"id":100,"name":"cut her'),
        good(2),
        bad("not_json", b"this is not JSON at all"),
        bad("bad_utf8", b'{"op":"c","after":{"id":101,"name":"caf\xc3\x28 \xff\xfe"}}'),
        # well-formed byte structure, but an encoded UTF-16 surrogate and an overlong '/'
        bad("utf8_surrogate", b'{"op":"c","after":{"id":104,"name":"\xed\xa0\x80 \xc0\xaf"}}'),
        good(3),
        bad("array", b'[{"op":"c","after":{"id":102}}]'),
        bad("string", b'"op=c id=103"'),
        tombstone(3),
        bad("empty", b""),
        # JSON objects that are not Debezium change events (--input debezium, the default)
        bad("not_debezium", b'{"id":114,"name":"a flattened row"}'),
        bad("bad_op", b'{"op":"x","after":{"id":115}}'),
        good(4),
        bad("oversized", big),
        bad("deep", deep),
        bad("deep_schema", deep_schema),
        good(5),
        big_key,
        marker("lua_error", 108),
        ("skip", {"id": 200}, json.dumps({"op": "c", "after": {"id": 200, "kind": "skip"}}).encode()),
        marker("return_string", 109),
        good(6),
        marker("endless", 110),
        good(7),
        marker("memory", 111),
        good(8),
        marker("nan", 112),
        marker("ch_reject", 113),
        good(9),
        # rows the batches refuse (lua stage): each event's first row is fine and must be rolled
        # back with it
        marker("nul_key", 118),
        marker("wide", 119),
        good(13),
        marker("long_column", 120),
        ("skip", {"id": 201}, json.dumps({"op": "c", "after": {"id": 201, "kind": "skip"}}).encode()),
        good(10),
        tombstone(10),
        good(11),
        good(12),
    ]


def produce(topic, brokers, manifest_path):
    records = stream()
    manifest = []
    for offset, (kind, key, value) in enumerate(records):
        k = json.dumps(key, separators=(",", ":"))
        if value is not None:
            assert REC not in value and KEYSEP not in value, kind
        manifest.append({"offset": offset, "kind": kind, "key": k,
                         "value": None if value is None else base64.b64encode(value).decode()})

    def send(run, null):
        if not run:
            return
        data = b"".join(k.encode() + KEYSEP + (b"" if null else v) + REC for k, v in run)
        with tempfile.NamedTemporaryFile() as f:
            f.write(data)
            f.flush()
            args = ["kcat", "-P", "-b", brokers, "-t", topic, "-p", "0", "-K", r"\x1f",
                    "-D", r"\x1e", "-l", f.name]
            if null:
                args.append("-Z")
            subprocess.run(args, check=True)

    run, run_null = [], False
    for m, (kind, key, value) in zip(manifest, records):
        null = value is None
        if run and null != run_null:
            send(run, run_null)
            run = []
        run.append((m["key"], value))
        run_null = null
    send(run, run_null)
    with open(manifest_path, "w") as f:
        json.dump(manifest, f)


def load_manifest(path):
    with open(path) as f:
        return {m["kind"]: m for m in json.load(f) if m["kind"] not in ("good", "tombstone", "skip")}


def report(manifest, source, kind_key, stage, topic, partition, offset, key, value, code, reason):
    try:
        kind = json.loads(kind_key)["bad"]
    except (ValueError, TypeError, KeyError):
        kind = "unknown-key:" + repr(kind_key)
    m = manifest.get(kind)
    differs = []
    if m is None:
        differs.append("not a bad record of the stream")
    else:
        if (topic, partition) != (source, 0):
            differs.append("source %r [%r] != %r [0]" % (topic, partition, source))
        if offset != m["offset"]:
            differs.append("offset %r != %r" % (offset, m["offset"]))
        if key != m["key"].encode():
            differs.append("key %r" % key)
        original = None if m["value"] is None else base64.b64decode(m["value"])
        if value != original:
            differs.append("value %r... (%s bytes) != original (%s bytes)" % (
                value[:40] if value else value, len(value) if value is not None else "null",
                len(original) if original is not None else "null"))
    origin = "same" if not differs else "; ".join(differs)
    reason = (reason or "").replace("\n", " ").replace("\t", " ")
    print("%s\t%s\t%s\t%s\t%s" % (kind, stage, origin, "-" if code is None else code, reason))


def read_file(manifest_path, source, jsonl_path):
    manifest = load_manifest(manifest_path)
    with open(jsonl_path, "rb") as f:
        for line in f:
            d = json.loads(line)
            value = d.get("value")
            if value is not None:
                value = (base64.b64decode(value) if d.get("value_encoding") == "base64"
                         else value.encode())
            key = d.get("key")
            if key is not None:
                key = (base64.b64decode(key) if d.get("key_encoding") == "base64" else key.encode())
            report(manifest, source, key.decode() if key else key, d.get("stage"), d.get("topic"),
                   d.get("partition"), d.get("offset"), key, value, d.get("clickhouse_code"),
                   d.get("reason"))


def read_topic(manifest_path, source, kcat_path):
    manifest = load_manifest(manifest_path)
    with open(kcat_path, "rb") as f:
        for line in f:
            if not line.strip():
                continue
            # kcat -J copies payload bytes as they are: keep invalid UTF-8 round-trippable
            d = json.loads(line.decode("utf-8", "surrogateescape"))
            h = d.get("headers") or []
            headers = dict(zip(h[0::2], h[1::2]))
            enc = lambda s: None if s is None else s.encode("utf-8", "surrogateescape")
            num = lambda name: (int(headers[name]) if headers.get(name, "").isdigit()
                                else headers.get(name))
            report(manifest, source, d.get("key"), headers.get("cdcpipe.stage"),
                   headers.get("cdcpipe.source.topic"), num("cdcpipe.source.partition"),
                   num("cdcpipe.source.offset"), enc(d.get("key")), enc(d.get("payload")),
                   num("cdcpipe.clickhouse.code"), headers.get("cdcpipe.reason"))


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    {"produce": produce, "file": read_file, "topic": read_topic}[cmd](*args)
