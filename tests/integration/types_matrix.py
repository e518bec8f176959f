#!/usr/bin/env python3
"""types_matrix.py — the Debezium type matrix of tests/integration/test_types.sh.

One source table `typed` with a column per Debezium encoding of a PostgreSQL type (debezium-format.md §4),
and rows ("cases") that put extremes, zeros, negatives, pre-1970 times, unicode and control characters,
NULL versus empty, and unchanged-TOAST placeholders into those columns. Every case is written in four
variants: Debezium 2.5 and 2.7 envelope layouts, each with schemas.enable=true ({schema, payload}, with
the Connect schema a JsonConverter would write) and =false.

Everything expected is computed here, independently of cdcpipe: decimals with Python's integers and
decimal module, times with datetime, bytes with base64/binascii. types_pipeline.lua is the pipeline
under test; it converts with the cdc.* helpers.

  types_matrix.py gen DIR          writes DIR/records.tsv (KEY<TAB>VALUE lines for `produce`) and
                                   DIR/expected.json
  types_matrix.py sql DB           prints the SELECT whose TSV output `check` compares
  types_matrix.py check DIR TSV ZERO_DATE ZERO_DATETIME DECIMAL_TRAILING_ZEROS
                                   compares ClickHouse's answer with DIR/expected.json value by value;
                                   ZERO_*: how this server prints day/second 0 (18.16: 0000-00-00);
                                   DECIMAL_TRAILING_ZEROS: 1 if it prints 1.50 for Decimal(3,2) 1.5
"""
import base64
import binascii
import datetime as dt
import json
import sys
from decimal import Decimal, getcontext

getcontext().prec = 200  # exact for every value here (the default 28 digits would round)

EPOCH = dt.datetime(1970, 1, 1)
EPOCH_DATE = dt.date(1970, 1, 1)
PLACEHOLDER = "__debezium_unavailable_value"
PLACEHOLDER_UUID = "b68a35a7-17ad-35b3-af2a-ae46edb4545a"  # UUID.nameUUIDFromBytes(placeholder)
DATE_MAX_DAYS = 49672  # 2105-12-31: the last day ClickHouse 18.16's Date prints correctly
DATETIME_MAX_SECS = 4291747199  # 2105-12-31 23:59:59

# ---- Debezium encodings -------------------------------------------------------------------------


def unscaled_b64(unscaled):
    """Connect Decimal bytes: BigInteger.toByteArray (minimal two's complement), base64."""
    n = (unscaled.bit_length() + 8) // 8 if unscaled >= 0 else ((-unscaled - 1).bit_length() + 8) // 8
    return base64.b64encode(unscaled.to_bytes(max(n, 1), "big", signed=True)).decode()


def decimal_b64(text, scale):
    d = Decimal(text)
    unscaled = int(d.scaleb(scale))
    assert Decimal(unscaled).scaleb(-scale) == d, text
    return unscaled_b64(unscaled)


def vsd(text):
    """io.debezium.data.VariableScaleDecimal: the value's own scale."""
    d = Decimal(text)
    scale = max(0, -d.as_tuple().exponent)
    return {"scale": scale, "value": unscaled_b64(int(d.scaleb(scale)))}


def days(date):
    return (date - EPOCH_DATE).days


def micros(ts):
    return (ts - EPOCH) // dt.timedelta(microseconds=1)


def millis(ts):
    return (ts - EPOCH) // dt.timedelta(milliseconds=1)


def ymd_hms(ts, sep):
    return "%04d-%02d-%02d%s%02d:%02d:%02d" % (ts.year, ts.month, ts.day, sep, ts.hour, ts.minute, ts.second)


def zoned(ts):
    """ZonedTimestamp: UTC, 'Z', fraction padded to the column precision (6)."""
    return ymd_hms(ts, "T") + ".%06dZ" % ts.microsecond


def bits_b64(bitstring):
    """io.debezium.data.Bits: the bit string as a binary number, little-endian bytes."""
    n = (len(bitstring) + 7) // 8
    return base64.b64encode(int(bitstring, 2).to_bytes(n, "little")).decode()


def wkb_point(x, y):
    import struct

    return struct.pack("<BIdd", 1, 1, x, y)


# ---- expected ClickHouse text, computed independently ---------------------------------------------


def dec_text(text, scale):
    """Decimal(P, scale) as ClickHouse prints it (trailing zeros kept; see check)."""
    return format(Decimal(text).quantize(Decimal(1).scaleb(-scale)), "f")


def exact_text(text):
    d = Decimal(text)
    return format(d, "f")


def shortest_plain(x):
    d = Decimal(repr(x)).normalize()
    return format(d, "f") if d != 0 else "0"


def time_text(us):
    h, rem = divmod(us, 3600 * 10**6)
    m, rem = divmod(rem, 60 * 10**6)
    s, frac = divmod(rem, 10**6)
    out = "%02d:%02d:%02d" % (h, m, s)
    if frac:
        out += ("." + "%06d" % frac).rstrip("0")
    return out


def dt64_text(ts, digits):
    return ymd_hms(ts, " ") + ("." + ("%06d" % ts.microsecond + "000")[:digits] if digits else "")


def datetime_text(ts):
    return dt64_text(ts, 0)


def interval_iso(us):
    sign = "-" if us < 0 else ""
    td = dt.timedelta(microseconds=abs(us)) if abs(us) < 10**17 else None
    if td is None:  # beyond timedelta: plain integer arithmetic
        total, frac = divmod(abs(us), 10**6)
        d, rem = divmod(total, 86400)
    else:
        d, rem, frac = td.days, td.seconds, td.microseconds
    h, rem = divmod(rem, 3600)
    m, s = divmod(rem, 60)
    out = sign + "P" + ("%dD" % d if d else "")
    if h or m or s or frac or not d:
        out += "T" + ("%dH" % h if h else "") + ("%dM" % m if m else "")
        if s or frac or not (h or m):
            out += str(s) + (("." + "%06d" % frac).rstrip("0") if frac else "") + "S"
    return out


def interval_seconds(us):
    sign = "-" if us < 0 else ""
    s, frac = divmod(abs(us), 10**6)
    return sign + str(s) + (("." + "%06d" % frac).rstrip("0") if frac else "")


def hexup(b):
    return binascii.hexlify(b).decode().upper()


# ---- the source table: column -> (Connect field schema, to-wire, expected columns) ----------------
#
# Each entry: name, Connect schema (type/name/parameters as JsonConverter writes them), and a function
# from the case's Python value to (wire JSON value, {clickhouse_column: expected text or None}).
# None = NULL in ClickHouse.

def sch(t, name=None, params=None, **extra):
    s = {"type": t, "optional": True}
    if name:
        s["name"] = name
        s["version"] = 1
    if params:
        s["parameters"] = params
    s.update(extra)
    return s


COLUMNS = []  # (source column, schema, encode(value) -> (wire, {ch_col: expected}))


def column(name, schema):
    def deco(fn):
        COLUMNS.append((name, schema, fn))
        return fn

    return deco


def nullable(cols):
    """Wraps an encoder so that None becomes JSON null and NULL everywhere."""

    def wrap(fn):
        def enc(v):
            if v is None:
                return None, {c: None for c in cols}
            return fn(v)

        return enc

    return wrap


@column("i16", sch("int16"))
@nullable(["i16"])
def _(v):
    return v, {"i16": str(v)}


@column("i32", sch("int32"))
@nullable(["i32"])
def _(v):
    return v, {"i32": str(v)}


@column("i64", sch("int64"))
@nullable(["i64"])
def _(v):
    return v, {"i64": str(v)}


@column("f32", sch("float"))
@nullable(["f32"])
def _(v):
    return v, {"f32": ("float", v)}


@column("f64", sch("double"))
@nullable(["f64"])
def _(v):
    return v, {"f64": ("float", v)}


@column("flag", sch("boolean"))
@nullable(["flag"])
def _(v):
    return v, {"flag": "1" if v else "0"}


DEC = "org.apache.kafka.connect.data.Decimal"


@column("num", sch("bytes", DEC, {"scale": "10", "connect.decimal.precision": "38"}))
@nullable(["num", "num_text"])
def _(v):
    return decimal_b64(v, 10), {"num": ("decimal", dec_text(v, 10)), "num_text": dec_text(v, 10)}


@column("num2", sch("bytes", DEC, {"scale": "2", "connect.decimal.precision": "10"}))
@nullable(["num2"])
def _(v):
    return decimal_b64(v, 2), {"num2": ("decimal", dec_text(v, 2))}


@column("money", sch("bytes", DEC, {"scale": "2"}))
@nullable(["money"])
def _(v):
    return decimal_b64(v, 2), {"money": ("decimal", dec_text(v, 2))}


VSD_SCHEMA = {
    "type": "struct",
    "fields": [
        {"type": "int32", "optional": False, "field": "scale"},
        {"type": "bytes", "optional": False, "field": "value"},
    ],
    "optional": True,
    "name": "io.debezium.data.VariableScaleDecimal",
    "version": 1,
    "doc": "Variable scaled decimal",
}


@column("vnum", VSD_SCHEMA)
@nullable(["vnum"])
def _(v):
    return vsd(v), {"vnum": exact_text(v)}


@column("snum", sch("string"))  # decimal.handling.mode=string
@nullable(["snum"])
def _(v):
    return v, {"snum": ("decimal", dec_text(v, 10))}


@column("dnum", sch("double"))  # decimal.handling.mode=double
@nullable(["dnum", "dnum_text"])
def _(v):
    return v, {"dnum": ("float", v), "dnum_text": shortest_plain(v)}


@column("d", sch("int32", "io.debezium.time.Date"))
@nullable(["d", "d_text"])
def _(v):
    n = days(v)
    return n, {
        "d": ("date", n) if 0 <= n <= DATE_MAX_DAYS else None,
        "d_text": "%04d-%02d-%02d" % (v.year, v.month, v.day),
    }


@column("t", sch("int64", "io.debezium.time.MicroTime"))
@nullable(["t"])
def _(v):  # v: microseconds past midnight
    return v, {"t": time_text(v)}


@column("t3", sch("int32", "io.debezium.time.Time"))
@nullable(["t3"])
def _(v):  # v: milliseconds past midnight
    return v, {"t3": time_text(v * 1000)}


@column("tz", sch("string", "io.debezium.time.ZonedTime"))
@nullable(["tz"])
def _(v):  # v: (wire text, expected UTC time of day)
    return v[0], {"tz": v[1]}


def in_datetime_range(ts):
    return EPOCH <= ts <= EPOCH + dt.timedelta(seconds=DATETIME_MAX_SECS)


@column("ts", sch("int64", "io.debezium.time.MicroTimestamp"))
@nullable(["ts", "ts64", "ts_us"])
def _(v):
    return micros(v), {
        "ts": ("datetime", datetime_text(v), micros(v) // 10**6) if in_datetime_range(v) else None,
        "ts64": dt64_text(v, 6),
        "ts_us": str(micros(v)),
    }


@column("ts3", sch("int64", "io.debezium.time.Timestamp"))
@nullable(["ts3", "ts3_64"])
def _(v):
    v = v.replace(microsecond=v.microsecond // 1000 * 1000)
    return millis(v), {
        "ts3": ("datetime", datetime_text(v), millis(v) // 1000) if in_datetime_range(v) else None,
        "ts3_64": dt64_text(v, 3),
    }


@column("tstz", sch("string", "io.debezium.time.ZonedTimestamp"))
@nullable(["tstz", "tstz64", "tstz_us"])
def _(v):
    return zoned(v), {
        "tstz": ("datetime", datetime_text(v), micros(v) // 10**6) if in_datetime_range(v) else None,
        "tstz64": dt64_text(v, 6),
        "tstz_us": str(micros(v)),
    }


@column("dur", sch("int64", "io.debezium.time.MicroDuration"))
@nullable(["dur", "dur_s"])
def _(v):
    return v, {"dur": interval_iso(v), "dur_s": interval_seconds(v)}


@column("idur", sch("string", "io.debezium.time.Interval"))  # interval.handling.mode=string
@nullable(["idur"])
def _(v):
    return v, {"idur": v}


@column("u", sch("string", "io.debezium.data.Uuid"))
@nullable(["u"])
def _(v):
    return v, {"u": v.lower()}


for _name, _logical in (("j", "io.debezium.data.Json"), ("x", "io.debezium.data.Xml"),
                        ("hs", "io.debezium.data.Json")):
    def _enc(v, _name=_name):
        return v, {_name: v}

    column(_name, sch("string", _logical))(nullable([_name])(_enc))

for _name in ("txt", "rng", "ip"):
    def _enc(v, _name=_name):
        return v, {_name: v}

    column(_name, sch("string"))(nullable([_name])(_enc))


@column("vc", {"type": "string", "optional": False, "default": "", "field": "vc"})
def _(v):
    return v, {"vc": v}


@column("b", sch("bytes"))  # binary.handling.mode=bytes
@nullable(["b", "b_hex"])
def _(v):
    return base64.b64encode(v).decode(), {"b": hexup(v), "b_hex": binascii.hexlify(v).decode()}


@column("b64", sch("string"))  # binary.handling.mode=base64
@nullable(["b64"])
def _(v):
    return base64.b64encode(v).decode(), {"b64": hexup(v)}


@column("burl", sch("string"))  # binary.handling.mode=base64-url-safe
@nullable(["burl"])
def _(v):
    return base64.urlsafe_b64encode(v).decode(), {"burl": hexup(v)}


@column("bhex", sch("string"))  # binary.handling.mode=hex
@nullable(["bhex"])
def _(v):
    return binascii.hexlify(v).decode(), {"bhex": hexup(v)}


@column("bits", sch("bytes", "io.debezium.data.Bits", {"length": "5"}))
@nullable(["bits"])
def _(v):
    return bits_b64(v), {"bits": v}


@column("tags", {"type": "array", "items": {"type": "string", "optional": True}, "optional": True})
def _(v):  # Array(String): NULL arrives as the empty array
    return v, {"tags": ",".join(hexup(s.encode()) for s in v or [])}


@column("ints", {"type": "array", "items": {"type": "int32", "optional": True}, "optional": True})
def _(v):
    return v, {"ints": ",".join(str(i) for i in v or [])}


@column("mood", sch("string", "io.debezium.data.Enum", {"allowed": "sad,ok,happy"}))
@nullable(["mood"])
def _(v):
    return v, {"mood": v}


GEOM_SCHEMA = {
    "type": "struct",
    "fields": [
        {"type": "bytes", "optional": False, "field": "wkb"},
        {"type": "int32", "optional": True, "field": "srid"},
    ],
    "optional": True,
    "name": "io.debezium.data.geometry.Geometry",
    "version": 1,
    "doc": "Geometry",
}


@column("geom", GEOM_SCHEMA)
@nullable(["geom_wkb", "geom_srid"])
def _(v):
    wkb, srid = v
    return {"wkb": base64.b64encode(wkb).decode(), "srid": srid}, {
        "geom_wkb": binascii.hexlify(wkb).decode(),
        "geom_srid": str(srid),
    }


# ---- the cases ------------------------------------------------------------------------------------

ALL_BYTES = bytes(range(256))
T = dt.datetime

CASES = [
    ("typical", {  # the values of the synthesized S27-10 typed fixture, and friends
        "i16": 7, "i32": 123456, "i64": 9007199254740993, "f32": 1.5, "f64": 2.25, "flag": True,
        "num": "1234.5", "num2": "1234.50", "money": "39.98", "vnum": "3.14159", "snum": "1234.50",
        "dnum": 1234.5, "d": dt.date(2016, 1, 16), "t": 49530123456, "t3": 49530123,
        "tz": ("11:45:30.123456Z", "11:45:30.123456"), "ts": T(2018, 6, 20, 15, 13, 16, 945104),
        "ts3": T(2018, 6, 20, 15, 13, 16, 945000), "tstz": T(2018, 6, 20, 13, 13, 16, 945104),
        "dur": 93600000000, "idur": "P1Y2M3DT4H5M6.78S", "u": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
        "j": '{"a": 1}', "x": "<a>1</a>", "hs": '{"key":"val"}', "txt": "hello", "rng": "[1,10)",
        "ip": "192.168.0.1/32", "vc": "v", "b": b"\x01\x02\x03", "b64": b"\x01\x02\x03",
        "burl": b"\xfb\xff", "bhex": b"\xde\xad\xbe\xef", "bits": "10110", "tags": ["a", "b"],
        "ints": [1, -2, 3], "mood": "happy", "geom": (wkb_point(1.5, -2.25), 4326),
    }),
    ("max", {
        "i16": 32767, "i32": 2147483647, "i64": 9223372036854775807, "f32": 3.5, "f64": 1.7976931348623157e308,
        "flag": True, "num": "9999999999999999999999999999.9999999999", "num2": "99999999.99",
        "money": "92233720368547758.07", "vnum": "9" * 76, "snum": "9999999999999999999999999999.9999999999",
        "dnum": 1e20, "d": dt.date(9999, 12, 31), "t": 86400000000, "t3": 86399999,
        "tz": ("23:59:59.999999Z", "23:59:59.999999"), "ts": T(9999, 12, 31, 23, 59, 59, 999999),
        "ts3": T(9999, 12, 31, 23, 59, 59, 999000), "tstz": T(9999, 12, 31, 23, 59, 59, 999999),
        "dur": 9223372036854775807, "idur": "P178000000Y", "u": "ffffffff-ffff-ffff-ffff-ffffffffffff",
        "txt": "x" * 3000, "vc": "max", "b": ALL_BYTES, "b64": ALL_BYTES, "burl": ALL_BYTES,
        "bhex": ALL_BYTES, "bits": "11111", "tags": ["z"] * 20, "ints": [2147483647, -2147483648],
        "mood": "sad",
    }),
    ("min", {
        # f64: the smallest normal double (18.16 reads subnormals such as 5e-324 as 0)
        "i16": -32768, "i32": -2147483648, "i64": -9223372036854775808, "f32": -0.25, "f64": -2.2250738585072014e-308,
        "flag": False, "num": "-9999999999999999999999999999.9999999999", "num2": "-99999999.99",
        "money": "-92233720368547758.08", "vnum": "-" + "9" * 76, "snum": "-9999999999999999999999999999.9999999999",
        "dnum": -1e-7, "d": dt.date(1, 1, 1), "t": 0, "t3": 0, "tz": ("00:00:00Z", "00:00:00"),
        "ts": T(1, 1, 1), "ts3": T(1, 1, 1), "tstz": T(1, 1, 1), "dur": -9223372036854775808,
        "idur": "P-1Y-2M-3DT-4H-5M-6.78S", "u": "00000000-0000-0000-0000-000000000000", "txt": "m",
        "vc": "min", "bits": "00000", "mood": "ok",
    }),
    ("zero", {
        "i16": 0, "i32": 0, "i64": 0, "f32": 0.0, "f64": 0.0, "flag": False, "num": "0", "num2": "0",
        "money": "0", "vnum": "0", "snum": "0", "dnum": 0.0, "d": dt.date(1970, 1, 1), "t": 0,
        "t3": 0, "tz": ("00:00:00Z", "00:00:00"), "ts": T(1970, 1, 1), "ts3": T(1970, 1, 1),
        "tstz": T(1970, 1, 1), "dur": 0, "idur": "P0Y0M0DT0H0M0S", "j": "{}", "x": "", "hs": "{}",
        "txt": "", "rng": "empty", "ip": "0.0.0.0/0", "vc": "", "b": b"", "b64": b"", "burl": b"",
        "bhex": b"", "bits": "00000", "tags": [], "ints": [], "mood": "sad",
    }),
    ("before_1970", {
        "i64": -1, "num": "-0.0000000001", "num2": "-0.01", "vnum": "-0.005", "snum": "-0.5",
        "dnum": -0.5, "d": dt.date(1969, 12, 31), "t": 1, "t3": 1,
        "tz": ("01:00:00+02:00", "23:00:00"), "ts": T(1969, 12, 31, 23, 59, 59, 999999),
        "ts3": T(1969, 12, 31, 23, 59, 59, 999000), "tstz": T(1969, 12, 31, 23, 59, 59, 999999),
        "dur": -1, "idur": "-P1D", "vc": "neg", "bits": "00001",
    }),
    ("leap_day", {
        "d": dt.date(2024, 2, 29), "ts": T(2024, 2, 29, 12, 0, 0, 500000), "ts3": T(2000, 2, 29, 23, 59, 59, 1000),
        "tstz": T(2024, 2, 29, 23, 59, 59, 999999), "t": 43200500000, "dur": 2629800000000,
        "vnum": "0.00000000000000000001", "num": "0.0000000001", "num2": "0.01", "money": "0.01",
        "snum": "12.3456789012", "dnum": 0.1, "vc": "leap", "u": "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11",
    }),
    ("unicode", {
        "txt": "é中🙂 tab\there nl\nhere cr\rhere \x01\x1f\x7f quote\" apostrophe' back\\slash",
        "vc": "ünïcödé — ✓", "j": '{"k": "é\\n\\u0001", "n": [1, 2.5, null]}', "x": "<a>é &amp; ü</a>",
        "hs": '{"clé":"valeur \\"x\\""}', "tags": ["é", "a,b", "", "NULL", "quo'te", "back\\slash"],
        "mood": "ok", "rng": "[\"a\",\"é\")", "b": "é中🙂".encode(),
    }),
    ("nulls", {"vc": "nulls"}),  # every nullable column NULL
    ("empty", {"txt": "", "vc": "", "j": "", "x": "", "b": b"", "tags": [""], "ints": [0]}),
]

# Unchanged-TOAST placeholders, each column in the shape Debezium gives its type (§2.5), and the
# ClickHouse columns that must then stay NULL / empty: the pipeline never writes a placeholder.
TOAST = {
    "txt": (PLACEHOLDER, {"txt": None}),
    "j": (PLACEHOLDER, {"j": None}),
    "x": (PLACEHOLDER, {"x": None}),
    "hs": ('{"%s":"%s"}' % (PLACEHOLDER, PLACEHOLDER), {"hs": None}),
    "b": (base64.b64encode(PLACEHOLDER.encode()).decode(), {"b": None, "b_hex": None}),
    "b64": (base64.b64encode(PLACEHOLDER.encode()).decode(), {"b64": None}),
    "bhex": (binascii.hexlify(PLACEHOLDER.encode()).decode(), {"bhex": None}),
    "tags": ([PLACEHOLDER], {"tags": ""}),
    "ints": (list(PLACEHOLDER.encode()), {"ints": ""}),
}


def build_row(values):
    wire, expected = {}, {}
    for name, _schema, enc in COLUMNS:
        w, e = enc(values.get(name))
        wire[name] = w
        expected.update(e)
    return wire, expected


def field_schemas():
    out = []
    for name, schema, _enc in COLUMNS:
        s = dict(schema)
        s["field"] = name
        out.append(s)
    return out


def envelope_schema(layout):
    value = {"type": "struct", "fields": [{"type": "int32", "optional": False, "field": "id"},
                                          {"type": "string", "optional": False, "field": "variant"}]
             + field_schemas(), "optional": True, "name": "dbserver1.inventory.typed.Value"}
    source_fields = [("version", "string", False), ("connector", "string", False), ("name", "string", False),
                     ("ts_ms", "int64", False), ("snapshot", "string", True), ("db", "string", False),
                     ("sequence", "string", True)]
    if layout == "2.7":
        source_fields += [("ts_us", "int64", True), ("ts_ns", "int64", True)]
    source_fields += [("schema", "string", False), ("table", "string", False), ("txId", "int64", True),
                      ("lsn", "int64", True), ("xmin", "int64", True)]
    source = {"type": "struct", "fields": [{"type": t, "optional": o, "field": f} for f, t, o in source_fields],
              "optional": False, "name": "io.debezium.connector.postgresql.Source", "field": "source"}
    txn = {"type": "struct", "fields": [{"type": "string", "optional": False, "field": "id"},
                                        {"type": "int64", "optional": False, "field": "total_order"},
                                        {"type": "int64", "optional": False, "field": "data_collection_order"}],
           "optional": True, "name": "event.block", "version": 1, "field": "transaction"}
    tail = [{"type": "string", "optional": False, "field": "op"}, {"type": "int64", "optional": True, "field": "ts_ms"}]
    if layout == "2.7":
        tail += [{"type": "int64", "optional": True, "field": "ts_us"}, {"type": "int64", "optional": True, "field": "ts_ns"}]
        fields = [dict(value, field="before"), dict(value, field="after"), source, txn] + tail
    else:
        fields = [dict(value, field="before"), dict(value, field="after"), source] + tail + [txn]
    return {"type": "struct", "fields": fields, "optional": False, "name": "dbserver1.inventory.typed.Envelope",
            "version": 2 if layout == "2.7" else 1}


def envelope(layout, op, after, lsn):
    source = {"version": "2.7.4.Final" if layout == "2.7" else "2.5.4.Final", "connector": "postgresql",
              "name": "dbserver1", "ts_ms": 1700000600123, "snapshot": "false", "db": "postgres",
              "sequence": '["%d","%d"]' % (lsn - 56, lsn)}
    if layout == "2.7":
        source.update({"ts_us": 1700000600123456, "ts_ns": 1700000600123456000})
    source.update({"schema": "inventory", "table": "typed", "txId": 800, "lsn": lsn, "xmin": None})
    if layout == "2.7":
        return {"before": None, "after": after, "source": source, "transaction": None, "op": op,
                "ts_ms": 1700000600500, "ts_us": 1700000600500321, "ts_ns": 1700000600500321789}
    return {"before": None, "after": after, "source": source, "op": op, "ts_ms": 1700000600500,
            "transaction": None}


VARIANTS = [("2.5", False), ("2.5", True), ("2.7", False), ("2.7", True)]


def compact(v):
    return json.dumps(v, separators=(",", ":"), ensure_ascii=False)


def gen(outdir):
    records, expected = [], []
    cases = CASES + [("toast", {"vc": "toast", "i32": 1})]
    key_schema = {"type": "struct", "fields": [{"type": "int32", "optional": False, "field": "id"},
                                               {"type": "string", "optional": False, "field": "variant"}],
                  "optional": False, "name": "dbserver1.inventory.typed.Key"}
    lsn = 24000000
    for case_id, (name, values) in enumerate(cases, start=1):
        wire, exp = build_row(values)
        unavailable = []
        if name == "toast":  # an UPDATE under REPLICA IDENTITY DEFAULT: before null, TOAST unchanged
            for col, (w, cleared) in TOAST.items():
                wire[col] = w
                exp.update(cleared)
                unavailable.append(col)
        exp["unavailable"] = ",".join(sorted(unavailable))
        for layout, with_schema in VARIANTS:
            variant = "%s-%s" % (layout, "schema" if with_schema else "plain")
            after = {"id": case_id, "variant": variant}
            after.update(wire)
            lsn += 100
            value = envelope(layout, "u" if name == "toast" else "c", after, lsn)
            key = {"id": case_id, "variant": variant}
            if with_schema:
                value = {"schema": envelope_schema(layout), "payload": value}
                key = {"schema": key_schema, "payload": key}
            records.append(compact(key) + "\t" + compact(value))
            row = {"id": str(case_id), "variant": variant}
            row.update(exp)
            expected.append({"case": name, "row": row})
    with open(outdir + "/records.tsv", "w", encoding="utf-8") as f:
        f.write("\n".join(records) + "\n")
    with open(outdir + "/expected.json", "w", encoding="utf-8") as f:
        json.dump(expected, f, ensure_ascii=False, default=str)


# ClickHouse column -> SELECT expression (TSV-friendly: bytes and arrays as hex). Decimals and floats
# are selected bare: ClickHouse 18.16's toString(Decimal128) garbles 38-digit values (its TSV output
# of the column itself is right).
SELECT = [
    ("id", "toString(id)"), ("variant", "variant"),
    ("i16", "i16"), ("i32", "i32"), ("i64", "i64"), ("f32", "f32"), ("f64", "f64"),
    ("flag", "flag"), ("num", "num"), ("num_text", "num_text"), ("num2", "num2"),
    ("money", "money"), ("vnum", "vnum"), ("snum", "snum"), ("dnum", "dnum"),
    ("dnum_text", "dnum_text"), ("d", "toString(d)"), ("d_text", "d_text"), ("t", "t"), ("t3", "t3"),
    ("tz", "tz"), ("ts", "toString(ts)"), ("ts64", "ts64"), ("ts_us", "ts_us"), ("ts3", "toString(ts3)"),
    ("ts3_64", "ts3_64"), ("tstz", "toString(tstz)"), ("tstz64", "tstz64"), ("tstz_us", "tstz_us"),
    ("dur", "dur"), ("dur_s", "dur_s"), ("idur", "idur"), ("u", "toString(u)"), ("j", "j"), ("x", "x"),
    ("hs", "hs"), ("txt", "txt"), ("rng", "rng"), ("ip", "ip"), ("vc", "vc"),
    ("b", "hex(b)"), ("b_hex", "b_hex"), ("b64", "hex(b64)"), ("burl", "hex(burl)"), ("bhex", "hex(bhex)"),
    ("bits", "bits"), ("tags", "arrayStringConcat(arrayMap(x -> hex(x), tags), ',')"),
    ("ints", "arrayStringConcat(arrayMap(x -> toString(x), ints), ',')"), ("mood", "mood"),
    ("geom_wkb", "geom_wkb"), ("geom_srid", "geom_srid"),
    ("unavailable", "arrayStringConcat(unavailable, ',')"),
]


def sql(db):
    return "SELECT %s FROM %s.types ORDER BY id, variant FORMAT TabSeparated" % (
        ", ".join(e for _c, e in SELECT), db)


def tsv_field(s):
    if s == "\\N":
        return None
    out, i = [], 0
    table = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "0": "\0"}
    while i < len(s):
        c = s[i]
        if c == "\\" and i + 1 < len(s):
            out.append(table.get(s[i + 1], s[i + 1]))
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def check(outdir, tsv_path, zero_date, zero_datetime, trailing_zeros):
    with open(outdir + "/expected.json", encoding="utf-8") as f:
        expected = json.load(f)
    with open(tsv_path, encoding="utf-8", errors="surrogateescape") as f:
        lines = [l.rstrip("\n") for l in f if l.strip()]
    errors, compared = [], 0
    if len(lines) != len(expected):
        errors.append("ClickHouse has %d rows, expected %d" % (len(lines), len(expected)))
    for line, exp in zip(lines, expected):
        fields = [tsv_field(x) for x in line.split("\t")]
        got = dict(zip([c for c, _e in SELECT], fields))
        row = exp["row"]
        for col, _e in SELECT:
            want = row.get(col)
            actual = got.get(col)
            ok = False
            if isinstance(want, list):  # typed expectation
                kind = want[0]
                if kind == "float":
                    ok = actual is not None and float(actual) == float(want[1])
                elif kind == "decimal":
                    w = want[1]
                    if trailing_zeros != "1" and "." in w:
                        w = w.rstrip("0").rstrip(".")
                    ok = actual == w
                    want = w
                elif kind == "date":
                    ok = actual == (zero_date if want[1] == 0 else
                                    (dt.date(1970, 1, 1) + dt.timedelta(days=want[1])).isoformat())
                elif kind == "datetime":
                    ok = actual == (zero_datetime if want[2] == 0 else want[1])
            else:
                ok = actual == want
            compared += 1
            if not ok:
                errors.append("case %s (id %s, %s) column %s: expected %r, got %r"
                              % (exp["case"], row["id"], row["variant"], col, want, actual))
    for e in errors[:40]:
        print(e, file=sys.stderr)
    if errors:
        print("%d mismatches" % len(errors), file=sys.stderr)
        return 1
    print("%d rows, %d values equal" % (len(lines), compared))
    return 0


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "gen":
        gen(sys.argv[2])
    elif cmd == "sql":
        print(sql(sys.argv[2]))
    elif cmd == "check":
        sys.exit(check(*sys.argv[2:7]))
    else:
        sys.exit("unknown command " + cmd)
