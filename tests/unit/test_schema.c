/*
 * test_schema — tests for src/schema.c (include/cdcpipe/schema.h): cdc.schema, cdc.field_type,
 * cdc.field_schema and cdc.auto on events with and without a Connect schema, through the real
 * script runtime (script_open / script_process).
 *
 * Each case is one event for a small pipeline.lua that renders what it computes with cdc.json
 * (or "error: <message>" from a pcall), so every case compares exact text. The per-type cases
 * wrap one field schema and one value into an envelope {"schema":…, "payload":{"after":…}}.
 * The typed fixture is read from $CDCPIPE_SOURCE_DIR/tests/fixtures/debezium/handwritten/.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <lua.h>

#include "cdcpipe/row_json.h"
#include "cdcpipe/schema.h"
#include "cdcpipe/script.h"
#include "cdcpipe/strbuf.h"

#include "support.h"

typedef script_fixture fixture;

static strbuf run_out; /* the text run() returns; freed by teardown */

static int teardown(void **state)
{
    strbuf_free(&run_out);
    return script_fixture_teardown(state);
}

static void open_script(fixture *f, const char *text)
{
    script_fixture_open(f, text, 64 << 20);
}

static int collect_row(void *ud, const char *table, lua_State *L, int idx, char *err, size_t errlen)
{
    strbuf *rows = ud;
    (void)table;
    if (row_json_append(rows, L, idx, true, NULL, NULL, err, errlen) != 0) return -1;
    strbuf_putc(rows, '\n');
    return 0;
}

/* Runs one event; returns the rows as text (in run_out, valid until the next run), or "ERROR
 * <message>". */
static const char *run(fixture *f, const char *value, size_t len)
{
    lua_State *L = script_lua(f->s);
    const int top = lua_gettop(L);
    script_event ev = {"t", 0, 0, -1, NULL, 0, value, len, NULL};
    char err[2048];
    size_t nrows;
    strbuf_reset(&run_out);
    strbuf_puts(&run_out, "");
    script_result r =
        script_process(f->s, &ev, "t", collect_row, &run_out, &nrows, err, sizeof err);
    assert_int_equal(lua_gettop(L), top);
    if (r != SCRIPT_ROWS && r != SCRIPT_FILTERED) {
        strbuf_reset(&run_out);
        strbuf_printf(&run_out, "ERROR %s", err);
    }
    return run_out.data;
}

static const char *run_text(fixture *f, const char *value)
{
    return run(f, value, strlen(value));
}

/* ---- cdc.field_type / cdc.field_schema / cdc.schema ---- */

static const char field_type_script[] =
    "local cdc = require 'cdcpipe'\n"
    "function transform(e)\n"
    "  local fields = {'id','price','ratio','qty','big','r','dp','flag','d','t','ts','ts3',\n"
    "                  'tstz','dur','u','j','b','tags','mood','nope'}\n"
    "  local out = {}\n"
    "  for _, name in ipairs(fields) do\n"
    "    out[#out + 1] = name .. '=' .. tostring(cdc.field_type(e, 'after', name))\n"
    "  end\n"
    "  out[#out + 1] = 'before.d=' .. tostring(cdc.field_type(e, 'before', 'd'))\n"
    "  out[#out + 1] = 'op=' .. tostring(cdc.field_type(e, 'op'))\n"
    "  out[#out + 1] = 'ts_ns=' .. tostring(cdc.field_type(e, nil, 'ts_ns'))\n"
    "  out[#out + 1] = 'source.snapshot=' .. tostring(cdc.field_type(e, 'source', 'snapshot'))\n"
    "  local price = cdc.field_schema(e, 'after', 'price')\n"
    "  out[#out + 1] = 'price.scale=' .. (price and price.parameters.scale or 'nil')\n"
    "  out[#out + 1] = 'nope.schema=' .. tostring(cdc.field_schema(e, 'after', 'nope'))\n"
    "  local s = cdc.schema(e)\n"
    "  out[#out + 1] = 'schema=' .. tostring(s and s.name)\n"
    "  local ok, err = pcall(cdc.field_type, e, 'aftr', 'id')\n"
    "  out[#out + 1] = 'aftr=' .. tostring(err)\n"
    "  return { r = table.concat(out, ' ') }\n"
    "end\n";

static void test_field_type(void **state)
{
    fixture *f = *state;
    open_script(f, field_type_script);
    size_t len;
    char *text = read_fixture("S27-10-typed-create-with-schema.json", &len);
    assert_string_equal(
        run(f, text, len),
        "{\"r\":\"id=int32 price=org.apache.kafka.connect.data.Decimal "
        "ratio=io.debezium.data.VariableScaleDecimal qty=int16 big=int64 r=float dp=double "
        "flag=boolean d=io.debezium.time.Date t=io.debezium.time.MicroTime "
        "ts=io.debezium.time.MicroTimestamp ts3=io.debezium.time.Timestamp "
        "tstz=io.debezium.time.ZonedTimestamp dur=io.debezium.time.MicroDuration "
        "u=io.debezium.data.Uuid j=io.debezium.data.Json b=bytes tags=array "
        "mood=io.debezium.data.Enum nope=nil before.d=io.debezium.time.Date op=string "
        "ts_ns=int64 source.snapshot=io.debezium.data.Enum price.scale=2 nope.schema=nil "
        "schema=dbserver1.inventory.typed.Envelope aftr=cdc.field_type: the event's schema has "
        "no section \\\"aftr\\\" (its fields: before, after, source, transaction, op, ts_ms, "
        "ts_us, ts_ns)\"}\n");
    /* the same script on an event without a schema: nil everywhere */
    static const char noschema[] = "{\"op\":\"c\",\"after\":{\"id\":1,\"d\":16816}}";
    const char *got = run_text(f, noschema);
    assert_non_null(strstr(got, "id=nil price=nil"));
    assert_non_null(strstr(got, "op=nil"));
    assert_non_null(strstr(got, "schema=nil aftr=nil"));
    /* the general parser's span (payload first) gives the same answers */
    strbuf swapped = {0};
    const char *schema_at = strstr(text, "\"schema\":"),
               *payload_at = strstr(text, ",\"payload\":"), *last = strrchr(text, '}');
    assert_true(schema_at && payload_at && last);
    strbuf_puts(&swapped, "{");
    strbuf_append(&swapped, payload_at + 1, (size_t)(last - payload_at - 1)); /* "payload":… */
    strbuf_puts(&swapped, ",");
    strbuf_append(&swapped, schema_at, (size_t)(payload_at - schema_at)); /* "schema":… */
    strbuf_puts(&swapped, "}");
    char want[4096];
    snprintf(want, sizeof want, "%s", run(f, text, len));
    assert_string_equal(run(f, swapped.data, swapped.len), want);
    strbuf_free(&swapped);
    free(text);
}

/* ---- cdc.auto on the typed fixture ---- */

static void test_auto_fixture(void **state)
{
    fixture *f = *state;
    open_script(f, "local cdc = require 'cdcpipe'\n"
                   "function transform(e)\n"
                   "  local before = cdc.json(e)\n"
                   "  local rows = { cdc.auto(e, 'after'),\n"
                   "                 cdc.auto(e, 'after', { timestamps = 'datetime64',\n"
                   "                   bytes = 'hex', intervals = 'seconds' }) }\n"
                   "  assert(cdc.auto(e, 'before') == nil, 'before of a create')\n"
                   "  assert(rows[1] ~= e.after, 'a new table')\n"
                   "  assert(cdc.json(e) == before, 'the event is unchanged')\n"
                   "  return rows\n"
                   "end\n");
    size_t len;
    char *text = read_fixture("S27-10-typed-create-with-schema.json", &len);
    assert_string_equal(
        run(f, text, len),
        "{\"b\":\"\\u0001\\u0002\\u0003\",\"big\":9007199254740993,\"d\":\"2016-01-16\","
        "\"dp\":2.25,\"dur\":\"P1DT2H\",\"flag\":true,\"id\":1,\"j\":\"{\\\"a\\\": 1}\","
        "\"mood\":\"happy\",\"price\":\"1234.50\",\"qty\":7,\"r\":1.5,\"ratio\":\"3.14159\","
        "\"t\":\"13:45:30.123456\",\"tags\":[\"a\",\"b\"],\"ts\":\"2018-06-20 15:13:16\","
        "\"ts3\":\"2018-06-20 15:13:16\",\"tstz\":\"2018-06-20 13:13:16\","
        "\"u\":\"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11\"}\n"
        "{\"b\":\"010203\",\"big\":9007199254740993,\"d\":\"2016-01-16\","
        "\"dp\":2.25,\"dur\":\"93600\",\"flag\":true,\"id\":1,\"j\":\"{\\\"a\\\": 1}\","
        "\"mood\":\"happy\",\"price\":\"1234.50\",\"qty\":7,\"r\":1.5,\"ratio\":\"3.14159\","
        "\"t\":\"13:45:30.123456\",\"tags\":[\"a\",\"b\"],\"ts\":\"2018-06-20 15:13:16.945104\","
        "\"ts3\":\"2018-06-20 15:13:16.945\",\"tstz\":\"2018-06-20 13:13:16.945104\","
        "\"u\":\"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11\"}\n");
    free(text);
}

/* ---- cdc.auto per logical type ---- */

typedef struct {
    const char *schema; /* the field's schema members, without "field" */
    const char *value;  /* JSON */
    const char *opts;   /* JSON object or NULL */
    const char *want;   /* cdc.json of the row, or "error: …" (a prefix) */
} auto_case;

#define DBZ     "\"name\":\"io.debezium."
#define CONNECT "\"name\":\"org.apache.kafka.connect.data."

static const auto_case auto_cases[] = {
    /* decimals */
    {"\"type\":\"bytes\"," CONNECT "Decimal\",\"parameters\":{\"scale\":\"2\"}", "\"AeI6\"", NULL,
     "{\"id\":1,\"v\":\"1234.50\"}"},
    {"\"type\":\"bytes\"," CONNECT "Decimal\",\"parameters\":{\"scale\":3}", "\"AeI6\"", NULL,
     "{\"id\":1,\"v\":\"123.450\"}"},
    {"\"type\":\"bytes\"," CONNECT "Decimal\",\"parameters\":{\"scale\":\"2\"}", "1234.5", NULL,
     "{\"id\":1,\"v\":\"1234.5\"}"},
    {"\"type\":\"bytes\"," CONNECT "Decimal\",\"parameters\":{\"scale\":\"0\"}", "-12", NULL,
     "{\"id\":1,\"v\":\"-12\"}"},
    {"\"type\":\"bytes\"," CONNECT "Decimal\"", "\"AeI6\"", NULL,
     "error: cdc.auto: after.v (org.apache.kafka.connect.data.Decimal): the schema has no "
     "integer \"scale\" parameter"},
    {"\"type\":\"bytes\"," CONNECT "Decimal\",\"parameters\":{\"scale\":\"2\"}", "\"AeI!\"", NULL,
     "error: cdc.auto: after.v (org.apache.kafka.connect.data.Decimal): invalid base64 "
     "\"AeI!\": '!' at position 3"},
    {"\"type\":\"struct\"," DBZ "data.VariableScaleDecimal\"", "{\"scale\":5,\"value\":\"BMsv\"}",
     NULL, "{\"id\":1,\"v\":\"3.14159\"}"},
    {"\"type\":\"struct\"," DBZ "data.VariableScaleDecimal\"", "{\"scale\":5}", NULL,
     "error: cdc.auto: after.v (io.debezium.data.VariableScaleDecimal): a VariableScaleDecimal "
     "table needs a base64 string \"value\", got a nil"},
    {"\"type\":\"string\"", "\"1234.50\"", NULL, "{\"id\":1,\"v\":\"1234.50\"}"}, /* string mode */
    {"\"type\":\"double\"", "0.1", NULL, "{\"id\":1,\"v\":0.1}"},                 /* double mode */
    /* dates and times */
    {"\"type\":\"int32\"," DBZ "time.Date\"", "16816", NULL, "{\"id\":1,\"v\":\"2016-01-16\"}"},
    {"\"type\":\"int32\"," DBZ "time.Date\"", "-1", NULL, "{\"id\":1,\"v\":\"1969-12-31\"}"},
    {"\"type\":\"int32\"," CONNECT "Date\"", "16816", NULL, "{\"id\":1,\"v\":\"2016-01-16\"}"},
    {"\"type\":\"int32\"," DBZ "time.Date\"", "\"2016-01-16\"", NULL,
     "error: cdc.auto: after.v (io.debezium.time.Date): expected whole days since 1970-01-01, "
     "got a string"},
    /* a float with an integral value counts as whole (as the cdc.* helpers take it) */
    {"\"type\":\"int32\"," DBZ "time.Date\"", "16816.0", NULL, "{\"id\":1,\"v\":\"2016-01-16\"}"},
    {"\"type\":\"int32\"," DBZ "time.Date\"", "1.5", NULL,
     "error: cdc.auto: after.v (io.debezium.time.Date): expected whole days since 1970-01-01, "
     "got a fraction"},
    {"\"type\":\"int32\"," DBZ "time.Time\"", "49530123", NULL,
     "{\"id\":1,\"v\":\"13:45:30.123\"}"},
    {"\"type\":\"int32\"," CONNECT "Time\"", "0", NULL, "{\"id\":1,\"v\":\"00:00:00\"}"},
    {"\"type\":\"int64\"," DBZ "time.MicroTime\"", "49530123456", NULL,
     "{\"id\":1,\"v\":\"13:45:30.123456\"}"},
    {"\"type\":\"int64\"," DBZ "time.MicroTime\"", "86400000000", NULL,
     "{\"id\":1,\"v\":\"24:00:00\"}"},
    {"\"type\":\"int64\"," DBZ "time.MicroTime\"", "86400000001", NULL,
     "error: cdc.auto: after.v (io.debezium.time.MicroTime): time of day 86400000001 us is "
     "outside"},
    {"\"type\":\"int64\"," DBZ "time.NanoTime\"", "49530123456789", NULL,
     "{\"id\":1,\"v\":\"13:45:30.123456789\"}"},
    {"\"type\":\"string\"," DBZ "time.ZonedTime\"", "\"11:45:30.5+02:00\"", NULL,
     "{\"id\":1,\"v\":\"09:45:30.5\"}"},
    {"\"type\":\"int64\"," DBZ "time.Timestamp\"", "1529507596945", NULL,
     "{\"id\":1,\"v\":\"2018-06-20 15:13:16\"}"},
    {"\"type\":\"int64\"," DBZ "time.Timestamp\"", "1529507596945",
     "{\"timestamps\":\"datetime64\"}", "{\"id\":1,\"v\":\"2018-06-20 15:13:16.945\"}"},
    {"\"type\":\"int64\"," CONNECT "Timestamp\"", "1529507596945", NULL,
     "{\"id\":1,\"v\":\"2018-06-20 15:13:16\"}"},
    {"\"type\":\"int64\"," DBZ "time.MicroTimestamp\"", "-1", NULL,
     "{\"id\":1,\"v\":\"1969-12-31 23:59:59\"}"},
    {"\"type\":\"int64\"," DBZ "time.MicroTimestamp\"", "-1", "{\"timestamps\":\"datetime64\"}",
     "{\"id\":1,\"v\":\"1969-12-31 23:59:59.999999\"}"},
    {"\"type\":\"int64\"," DBZ "time.MicroTimestamp\"", "9223372036825200000",
     "{\"timestamps\":\"datetime64\"}",
     "error: cdc.auto: after.v (io.debezium.time.MicroTimestamp): epoch value "
     "9223372036825200000 us (PostgreSQL 'infinity') is outside years 0000..9999"},
    {"\"type\":\"int64\"," DBZ "time.NanoTimestamp\"", "1529507596945104123",
     "{\"timestamps\":\"datetime64\"}", "{\"id\":1,\"v\":\"2018-06-20 15:13:16.945104123\"}"},
    {"\"type\":\"string\"," DBZ "time.ZonedTimestamp\"", "\"2018-06-20T13:13:16.945104Z\"", NULL,
     "{\"id\":1,\"v\":\"2018-06-20 13:13:16\"}"},
    {"\"type\":\"string\"," DBZ "time.ZonedTimestamp\"", "\"2018-06-20T13:13:16.945104Z\"",
     "{\"timestamps\":\"datetime64\"}", "{\"id\":1,\"v\":\"2018-06-20 13:13:16.945104\"}"},
    {"\"type\":\"int64\"," DBZ "time.MicroDuration\"", "93600000000", NULL,
     "{\"id\":1,\"v\":\"P1DT2H\"}"},
    {"\"type\":\"int64\"," DBZ "time.MicroDuration\"", "-1", "{\"intervals\":\"seconds\"}",
     "{\"id\":1,\"v\":\"-0.000001\"}"},
    {"\"type\":\"string\"," DBZ "time.Interval\"", "\"P1Y2M3DT4H5M6.78S\"", NULL,
     "{\"id\":1,\"v\":\"P1Y2M3DT4H5M6.78S\"}"},
    {"\"type\":\"string\"," DBZ "time.Interval\"", "\"1 day\"", NULL,
     "error: cdc.auto: after.v (io.debezium.time.Interval): \"1 day\" is not an ISO-8601 "
     "duration"},
    /* other types */
    {"\"type\":\"string\"," DBZ "data.Uuid\"", "\"A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11\"", NULL,
     "{\"id\":1,\"v\":\"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11\"}"},
    {"\"type\":\"string\"," DBZ "data.Uuid\"", "\"nope\"", NULL,
     "error: cdc.auto: after.v (io.debezium.data.Uuid): \"nope\" is not a UUID"},
    {"\"type\":\"string\"," DBZ "data.Json\"", "\"{\\\"a\\\": [1]}\"", NULL,
     "{\"id\":1,\"v\":\"{\\\"a\\\": [1]}\"}"},
    {"\"type\":\"string\"," DBZ "data.Enum\",\"parameters\":{\"allowed\":\"a,b\"}", "\"b\"", NULL,
     "{\"id\":1,\"v\":\"b\"}"},
    {"\"type\":\"bytes\"," DBZ "data.Bits\",\"parameters\":{\"length\":\"5\"}", "\"Fg==\"", NULL,
     "{\"id\":1,\"v\":\"10110\"}"},
    {"\"type\":\"bytes\"," DBZ "data.Bits\"", "\"Fg==\"", NULL, "{\"id\":1,\"v\":\"00010110\"}"},
    {"\"type\":\"bytes\"," DBZ "data.Bits\",\"parameters\":{\"length\":\"3\"}", "\"Fg==\"", NULL,
     "error: cdc.auto: after.v (io.debezium.data.Bits): \"Fg==\": bit 4 is set but the column "
     "has only 3 bits"},
    {"\"type\":\"bytes\"", "\"AQID\"", NULL, "{\"id\":1,\"v\":\"\\u0001\\u0002\\u0003\"}"},
    {"\"type\":\"bytes\"", "\"AQID\"", "{\"bytes\":\"hex\"}", "{\"id\":1,\"v\":\"010203\"}"},
    {"\"type\":\"bytes\"", "\"\"", "{\"bytes\":\"hex\"}", "{\"id\":1,\"v\":\"\"}"},
    {"\"type\":\"bytes\"", "\"AQ!D\"", NULL,
     "error: cdc.auto: after.v (bytes): invalid base64 \"AQ!D\": '!' at position 2"},
    {"\"type\":\"int64\"", "-9223372036854775808", NULL, "{\"id\":1,\"v\":-9223372036854775808}"},
    {"\"type\":\"struct\"," DBZ "data.geometry.Point\"", "{\"x\":1.5,\"y\":2}", NULL,
     "{\"id\":1,\"v\":{\"x\":1.5,\"y\":2}}"},
    {"\"type\":\"map\",\"keys\":{\"type\":\"string\"},\"values\":{\"type\":\"string\"}",
     "{\"k\":\"v\"}", NULL, "{\"id\":1,\"v\":{\"k\":\"v\"}}"},
    /* arrays: items converted by their own logical type */
    {"\"type\":\"array\",\"items\":{\"type\":\"int32\"," DBZ "time.Date\"}", "[16816,0]", NULL,
     "{\"id\":1,\"v\":[\"2016-01-16\",\"1970-01-01\"]}"},
    {"\"type\":\"array\",\"items\":{\"type\":\"string\"," DBZ "data.Uuid\"}",
     "[\"A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11\",\"bad\"]", NULL,
     "error: cdc.auto: after.v[2] (io.debezium.data.Uuid): \"bad\" is not a UUID"},
    {"\"type\":\"array\",\"items\":{\"type\":\"array\",\"items\":{\"type\":\"bytes\"}}",
     "[[\"AQID\"],[]]", "{\"bytes\":\"hex\"}", "{\"id\":1,\"v\":[[\"010203\"],[]]}"},
    {"\"type\":\"array\",\"items\":{\"type\":\"string\"}", "[\"a\",\"b\"]", NULL,
     "{\"id\":1,\"v\":[\"a\",\"b\"]}"},
    /* unchanged-TOAST placeholders: the field is left out */
    {"\"type\":\"string\"", "\"__debezium_unavailable_value\"", NULL, "{\"id\":1}"},
    {"\"type\":\"string\"," DBZ "data.Json\"",
     "\"{\\\"__debezium_unavailable_value\\\":\\\"__debezium_unavailable_value\\\"}\"", NULL,
     "{\"id\":1}"},
    {"\"type\":\"bytes\"", "\"X19kZWJleml1bV91bmF2YWlsYWJsZV92YWx1ZQ==\"", NULL, "{\"id\":1}"},
    {"\"type\":\"array\",\"items\":{\"type\":\"string\"}", "[\"__debezium_unavailable_value\"]",
     NULL, "{\"id\":1}"},
    {"\"type\":\"array\",\"items\":{\"type\":\"string\"," DBZ "data.Uuid\"}",
     "[\"b68a35a7-17ad-35b3-af2a-ae46edb4545a\"]", NULL, "{\"id\":1}"},
    {"\"type\":\"string\"", "\"XX\"", "{\"placeholder\":\"XX\"}", "{\"id\":1}"},
    {"\"type\":\"string\"", "\"XX\"", NULL, "{\"id\":1,\"v\":\"XX\"}"},
    /* options */
    {"\"type\":\"string\"", "\"x\"", "{\"bytes\":\"b64\"}",
     "error: cdc.auto: option bytes = b64 is not one of its values"},
    {"\"type\":\"string\"", "\"x\"", "{\"timestamp\":\"datetime64\"}",
     "error: cdc.auto: unknown option timestamp (options: timestamps, bytes, intervals, "
     "placeholder)"},
};

static const char auto_script[] = "local cdc = require 'cdcpipe'\n"
                                  "function transform(e)\n"
                                  "  local ok, row = pcall(cdc.auto, e, 'after', e.opts)\n"
                                  "  return { r = ok and cdc.json(row) or 'error: ' .. row }\n"
                                  "end\n";

static void test_auto_types(void **state)
{
    fixture *f = *state;
    open_script(f, auto_script);
    int failures = 0;
    strbuf ev = {0}, want = {0};
    for (size_t i = 0; i < sizeof auto_cases / sizeof auto_cases[0]; i++) {
        const auto_case *c = &auto_cases[i];
        strbuf_reset(&ev);
        strbuf_puts(&ev, "{\"schema\":{\"type\":\"struct\",\"fields\":[{\"type\":\"struct\","
                         "\"fields\":[{\"type\":\"int32\",\"field\":\"id\"},{");
        strbuf_puts(&ev, c->schema);
        strbuf_puts(&ev, ",\"field\":\"v\"}],\"optional\":true,\"field\":\"after\"}]},"
                         "\"payload\":{\"after\":{\"id\":1,\"v\":");
        strbuf_puts(&ev, c->value);
        strbuf_puts(&ev, "},\"opts\":");
        strbuf_puts(&ev, c->opts ? c->opts : "null");
        strbuf_puts(&ev, "}}");
        /* the row is {"r": text}: compare the text inside */
        const char *got = run(f, ev.data, ev.len);
        strbuf_reset(&want);
        const bool is_error = strncmp(c->want, "error: ", 7) == 0;
        /* render the expected text the way row_json quotes it */
        strbuf_puts(&want, "{\"r\":\"");
        for (const char *p = c->want; *p; p++) {
            if (*p == '"' || *p == '\\') strbuf_putc(&want, '\\');
            strbuf_putc(&want, *p);
        }
        const bool ok = is_error ? strncmp(got, want.data, want.len) == 0
                                 : (strbuf_puts(&want, "\"}\n"), strcmp(got, want.data) == 0);
        if (!ok) {
            print_error("case %zu (%s = %s):\n got  %s\n want %s\n", i, c->schema, c->value, got,
                        want.data);
            failures++;
        }
    }
    strbuf_free(&ev);
    strbuf_free(&want);
    assert_int_equal(failures, 0);
}

/* ---- sections, flattened records, deletes ---- */

static void test_auto_sections(void **state)
{
    fixture *f = *state;
    open_script(f, "local cdc = require 'cdcpipe'\n"
                   "function transform(e)\n"
                   "  local function try(...)\n"
                   "    local ok, r = pcall(cdc.auto, e, ...)\n"
                   "    return ok and (r == nil and 'nil' or cdc.json(r)) or 'error: ' .. r\n"
                   "  end\n"
                   "  return { top = try(), after = try('after'), before = try('before'),\n"
                   "           op = try('op'), nope = try('nope') }\n"
                   "end\n");
    /* a delete: after is null; before has a date; a member the schema lacks is copied */
    static const char del[] =
        "{\"schema\":{\"type\":\"struct\",\"fields\":["
        "{\"type\":\"struct\",\"fields\":[{\"type\":\"int32\",\"name\":\"io.debezium.time.Date\","
        "\"field\":\"d\"}],\"optional\":true,\"field\":\"before\"},"
        "{\"type\":\"struct\",\"fields\":[{\"type\":\"int32\",\"name\":\"io.debezium.time.Date\","
        "\"field\":\"d\"}],\"optional\":true,\"field\":\"after\"},"
        "{\"type\":\"string\",\"field\":\"op\"}]},"
        "\"payload\":{\"before\":{\"d\":1,\"extra\":\"kept\"},\"after\":null,\"op\":\"d\"}}";
    assert_string_equal(run_text(f, del),
                        "{\"after\":\"nil\",\"before\":\"{\\\"d\\\":\\\"1970-01-02\\\","
                        "\\\"extra\\\":\\\"kept\\\"}\",\"nope\":\"error: cdc.auto: the event's "
                        "schema has no section \\\"nope\\\" (its fields: before, after, op)\","
                        "\"op\":\"error: cdc.auto: \\\"op\\\" is a string in the event's schema, "
                        "not a struct of fields\",\"top\":\"{\\\"before\\\":{\\\"d\\\":1,"
                        "\\\"extra\\\":\\\"kept\\\"},\\\"op\\\":\\\"d\\\"}\"}\n");
    /* a flattened record (unwrap SMT): the top level is the row */
    static const char flat[] =
        "{\"schema\":{\"type\":\"struct\",\"fields\":["
        "{\"type\":\"int32\",\"field\":\"id\"},"
        "{\"type\":\"int64\",\"name\":\"io.debezium.time.MicroTimestamp\",\"field\":\"ts\"},"
        "{\"type\":\"string\",\"optional\":true,\"field\":\"__deleted\"}],"
        "\"name\":\"dbserver1.inventory.t.Value\"},"
        "\"payload\":{\"id\":7,\"ts\":1529507596945104,\"__deleted\":\"false\"}}";
    assert_string_equal(run_text(f, flat),
                        "{\"after\":\"error: cdc.auto: the event's schema has no section "
                        "\\\"after\\\" (its fields: id, ts, __deleted)\",\"before\":\"error: "
                        "cdc.auto: the event's schema has no section \\\"before\\\" (its fields: "
                        "id, ts, __deleted)\",\"nope\":\"error: cdc.auto: the event's schema has "
                        "no section \\\"nope\\\" (its fields: id, ts, __deleted)\",\"op\":\"error: "
                        "cdc.auto: the event's schema has no section \\\"op\\\" (its fields: id, "
                        "ts, __deleted)\",\"top\":\"{\\\"__deleted\\\":\\\"false\\\","
                        "\\\"id\\\":7,\\\"ts\\\":\\\"2018-06-20 15:13:16\\\"}\"}\n");
    /* no schema */
    assert_string_equal(run_text(f, "{\"op\":\"c\",\"after\":{\"id\":1}}"),
                        "{\"after\":\"error: cdc.auto: the event has no schema (its topic is "
                        "written with schemas.enable=false); convert its fields with cdc.decimal, "
                        "cdc.datetime, ... instead\",\"before\":\"error: cdc.auto: the event has "
                        "no schema (its topic is written with schemas.enable=false); convert its "
                        "fields with cdc.decimal, cdc.datetime, ... instead\",\"nope\":\"error: "
                        "cdc.auto: the event has no schema (its topic is written with "
                        "schemas.enable=false); convert its fields with cdc.decimal, "
                        "cdc.datetime, ... instead\",\"op\":\"error: cdc.auto: the event has no "
                        "schema (its topic is written with schemas.enable=false); convert its "
                        "fields with cdc.decimal, cdc.datetime, ... instead\",\"top\":\"error: "
                        "cdc.auto: the event has no schema (its topic is written with "
                        "schemas.enable=false); convert its fields with cdc.decimal, "
                        "cdc.datetime, ... instead\"}\n");
}

/* ---- which event ---- */

static void test_event_identity(void **state)
{
    fixture *f = *state;
    open_script(
        f, "local cdc = require 'cdcpipe'\n"
           "local at_load = select(2, pcall(cdc.schema, {}))\n"
           "local previous\n"
           "function transform(e, meta)\n"
           "  local function try(fn, ...)\n"
           "    local ok, r = pcall(fn, ...)\n"
           "    return ok and tostring(r) or r\n"
           "  end\n"
           "  local out = { at_load = at_load,\n"
           "    after = try(cdc.field_type, e.after, 'after', 'id'),\n"
           "    copy = try(cdc.auto, { after = e.after }, 'after'),\n"
           "    number = try(cdc.schema, 42),\n"
           "    previous = previous and try(cdc.field_type, previous, 'after', 'id') or 'none',\n"
           "    keys = 0 }\n"
           "  previous = e\n"
           "  for _ in pairs(e) do out.keys = out.keys + 1 end\n"
           "  for k in pairs(meta) do out['meta_' .. k] = true end\n"
           "  return out\n"
           "end\n");
    static const char ev[] = "{\"schema\":{\"type\":\"struct\",\"fields\":[{\"type\":\"struct\","
                             "\"fields\":[{\"type\":\"int32\",\"field\":\"id\"}],"
                             "\"field\":\"after\"}]},\"payload\":{\"after\":{\"id\":1}}}";
#define IDENTITY_ROW                                                                               \
    "{\"after\":\"cdc.field_type: argument 1 must be the event table transform(event, meta) "      \
    "received, not another table (event.after or a copy?)\",\"at_load\":\"cdc.schema can "         \
    "only be called while transform runs, with its event\",\"copy\":\"cdc.auto: argument 1 "       \
    "must be the event table transform(event, meta) received, not another table "                  \
    "(event.after or a copy?)\",\"keys\":1,\"meta_offset\":true,"                                  \
    "\"meta_partition\":true,\"meta_topic\":true,\"number\":\"cdc.schema: argument 1 must be "     \
    "the event table transform(event, meta) received, not number\",\"previous\":\"%s\"}\n"
    char want[2048];
    snprintf(want, sizeof want, IDENTITY_ROW, "none");
    assert_string_equal(run_text(f, ev), want);
    /* the event of the call before is no longer "the event" */
    snprintf(want, sizeof want, IDENTITY_ROW,
             "cdc.field_type: argument 1 must be the event table transform(event, meta) "
             "received, not another table (event.after or a copy?)");
    assert_string_equal(run_text(f, ev), want);
#undef IDENTITY_ROW
}

/* ---- the cache ---- */

static void test_cache(void **state)
{
    fixture *f = *state;
    open_script(f, "local cdc = require 'cdcpipe'\n"
                   "local last = {}\n"
                   "function transform(e)\n"
                   "  local s = cdc.schema(e)\n"
                   "  local cached = last[s.name] == s\n"
                   "  last[s.name] = s\n"
                   "  return { name = s.name, cached = cached,\n"
                   "           t = cdc.field_type(e, 'after', 'v') }\n"
                   "end\n");
    char ev[512];
#define EVENT(name)                                                                                \
    (snprintf(ev, sizeof ev,                                                                       \
              "{\"schema\":{\"type\":\"struct\",\"name\":\"%s\",\"fields\":[{\"type\":\"struct\"," \
              "\"fields\":[{\"type\":\"int32\",\"name\":\"%s.v\",\"field\":\"v\"}],"               \
              "\"field\":\"after\"}]},\"payload\":{\"after\":{\"v\":1}}}",                         \
              name, name),                                                                         \
     run_text(f, ev))
    assert_string_equal(EVENT("A"), "{\"cached\":false,\"name\":\"A\",\"t\":\"A.v\"}\n");
    assert_string_equal(EVENT("A"), "{\"cached\":true,\"name\":\"A\",\"t\":\"A.v\"}\n");
    char name[16], want[128];
    for (int i = 1; i < SCHEMA_CACHE_SIZE; i++) {
        snprintf(name, sizeof name, "B%d", i);
        snprintf(want, sizeof want, "{\"cached\":false,\"name\":\"%s\",\"t\":\"%s.v\"}\n", name,
                 name);
        assert_string_equal(EVENT(name), want);
    }
    /* A and 63 others fit: A is still there (and becomes the most recent) */
    assert_string_equal(EVENT("A"), "{\"cached\":true,\"name\":\"A\",\"t\":\"A.v\"}\n");
    /* B1 is now the least recent: one more schema evicts it, and it is parsed again */
    assert_string_equal(EVENT("C"), "{\"cached\":false,\"name\":\"C\",\"t\":\"C.v\"}\n");
    assert_string_equal(EVENT("B1"), "{\"cached\":false,\"name\":\"B1\",\"t\":\"B1.v\"}\n");
    assert_string_equal(EVENT("B2"), "{\"cached\":false,\"name\":\"B2\",\"t\":\"B2.v\"}\n");
    assert_string_equal(EVENT("A"), "{\"cached\":true,\"name\":\"A\",\"t\":\"A.v\"}\n");
    /* same length, different text: told apart */
    assert_string_equal(EVENT("D1"), "{\"cached\":false,\"name\":\"D1\",\"t\":\"D1.v\"}\n");
    assert_string_equal(EVENT("D2"), "{\"cached\":false,\"name\":\"D2\",\"t\":\"D2.v\"}\n");
    assert_string_equal(EVENT("D1"), "{\"cached\":true,\"name\":\"D1\",\"t\":\"D1.v\"}\n");
#undef EVENT
    /* a schema that is not JSON (the decoder only scans it) is an error of the event */
    static const char bad[] = "{\"schema\":{\"a\":tru},\"payload\":{\"after\":{\"v\":1}}}";
    const char *got = run_text(f, bad);
    assert_non_null(strstr(got, "ERROR "));
    assert_non_null(strstr(got, "cdc.schema: the event's schema is not valid JSON: invalid JSON"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_field_type, script_fixture_setup, teardown),
        cmocka_unit_test_setup_teardown(test_auto_fixture, script_fixture_setup, teardown),
        cmocka_unit_test_setup_teardown(test_auto_types, script_fixture_setup, teardown),
        cmocka_unit_test_setup_teardown(test_auto_sections, script_fixture_setup, teardown),
        cmocka_unit_test_setup_teardown(test_event_identity, script_fixture_setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache, script_fixture_setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
