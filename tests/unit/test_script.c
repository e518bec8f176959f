/*
 * test_script — tests for src/script.c (include/cdcpipe/script.h): loading pipeline.lua,
 * transform(event, meta) per event, cdc.emit, ddl(), errors and recovery.
 *
 * Scripts are written into a fresh directory under /tmp. Rows are collected through the
 * script_row_fn callback as "table TAB row-json(sorted) NL", so every case compares exact text.
 * The schema-aware functions (cdc.schema, cdc.field_type, cdc.auto) are tested in test_schema.c.
 * The events of one script run table-driven in one Lua state, so each case also proves that the
 * state is usable after the cases before it (errors included). The default pipeline.lua is read
 * from $CDCPIPE_SOURCE_DIR (set by ctest).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <cmocka.h>

#include <librdkafka/rdkafka.h>
#include <lua.h>

#include "cdcpipe/config.h"
#include "cdcpipe/row_json.h"
#include "cdcpipe/script.h"
#include "cdcpipe/strbuf.h"

#include "support.h"

typedef script_fixture fixture; /* each test runs with a fresh one: script_fixture_test */

/* Writes text as the fixture's pipeline.lua and opens it (must succeed). */
static script *open_script(fixture *f, const char *text, size_t memory_limit)
{
    script *s = script_fixture_open(f, text, memory_limit);
    assert_string_equal(script_path(s), f->path);
    return s;
}

/* Opens the default pipeline.lua of the source tree into the fixture; path gets its path. */
static void open_default_pipeline(fixture *f, char *path, size_t len)
{
    char err[1024];
    snprintf(path, len, "%s/pipeline.lua", source_dir());
    f->s = script_open(path, 0, err, sizeof err);
    if (!f->s) fail_msg("%s", err);
}

/* 1-based line of the first occurrence of needle in text. */
static int line_of(const char *text, const char *needle)
{
    const char *at = strstr(text, needle);
    if (!at) fail_msg("%s not in the script", needle);
    int line = 1;
    for (const char *p = text; p < at; p++)
        line += *p == '\n';
    return line;
}

/* ---- row collection ---- */

static int collect_row(void *ud, const char *table, lua_State *L, int idx, char *err, size_t errlen)
{
    strbuf *rows = ud;
    size_t len = rows->len;
    strbuf_puts(rows, table);
    strbuf_putc(rows, '\t');
    if (row_json_append(rows, L, idx, true, NULL, NULL, err, errlen) != 0) {
        strbuf_truncate(rows, len);
        return -1;
    }
    strbuf_putc(rows, '\n');
    return 0;
}

typedef struct {
    script_result result;
    size_t nrows;
    char err[2048];
    strbuf rows; /* "" when none */
} outcome;

static void process(script *s, const script_event *ev, outcome *o)
{
    lua_State *L = script_lua(s);
    int top = lua_gettop(L);
    strbuf_reset(&o->rows);
    strbuf_puts(&o->rows, ""); /* data is never NULL */
    memset(o->err, 'x', sizeof o->err);
    o->err[sizeof o->err - 1] = '\0';
    o->nrows = 999;
    o->result =
        script_process(s, ev, "events", collect_row, &o->rows, &o->nrows, o->err, sizeof o->err);
    assert_int_equal(lua_gettop(L), top); /* the stack is as it was */
}

static script_event event_of(const char *value)
{
    script_event ev = {"topic.a", 2, 17, 1700000000123LL, NULL, 0, value, value ? strlen(value) : 0,
                       NULL};
    return ev;
}

static const char *result_name(script_result r)
{
    static const char *const names[] = {"ROWS", "FILTERED", "TOMBSTONE", "DECODE_ERROR",
                                        "LUA_ERROR"};
    return r <= SCRIPT_LUA_ERROR ? names[r] : "?";
}

/* ---- one script, many events ---- */

static const char dispatch_script[] =
    "local cdc = require 'cdcpipe'\n"
    "function transform(event, meta)\n"
    "  local k = event.kind\n"
    "  if k == 'row' then return { id = event.id, v = event.v } end\n"
    "  if k == 'list' then return { { id = 1 }, { id = 2, s = 'two' }, { id = 3 } } end\n"
    "  if k == 'emit' then\n"
    "    cdc.emit('audit', { what = 'emitted', id = event.id })\n"
    "    cdc.emit('db2.other', { n = 1 })\n"
    "    return { id = event.id }\n"
    "  end\n"
    "  if k == 'emit_only' then cdc.emit('audit', { id = event.id }) return nil end\n"
    "  if k == 'nil' then return nil end\n"
    "  if k == 'false' then return false end\n"
    "  if k == 'nothing' then return end\n"
    "  if k == 'empty' then return {} end\n"
    "  if k == 'error' then error('bad event ' .. tostring(event.id)) end\n"
    "  if k == 'index' then return { v = event.missing.field } end\n"
    "  if k == 'string' then return 'not a row' end\n"
    "  if k == 'true' then return true end\n"
    "  if k == 'list_bad' then return { { id = 1 }, 5 } end\n"
    "  if k == 'nan' then return { x = 0/0 } end\n"
    "  if k == 'fn' then return { f = print } end\n"
    "  if k == 'emit_bad' then cdc.emit('t', 5) end\n"
    "  if k == 'emit_then_error' then cdc.emit('audit', { id = 1 }) error('after emit') end\n"
    "  if k == 'emit_bad_row' then cdc.emit('audit', { x = 1/0 }) return { id = 1 } end\n"
    "  if k == 'types' then\n"
    "    return { big = event.big, mt = math.type(event.big), f = event.f,\n"
    "             before_is_nil = event.before == nil, n = #event.list }\n"
    "  end\n"
    "  if k == 'null' then return { a = cdc.null, b = event.absent } end\n"
    "  if k == 'loop' then local t = {} for i = 1, event.n do t[i] = { i = i } end return t end\n"
    "  if k == 'alloc' then local t = {} for i = 1, 1e8 do t[i] = i end return nil end\n"
    "  if k == 'spin' then while true do end end\n"
    "  return { unknown = k }\n"
    "end\n";

typedef struct {
    const char *value;
    script_result result;
    const char *rows; /* exact collected text */
    size_t nrows;
    const char *err; /* exact error, or a prefix when it ends in '*'; "%P" is the script path,
                        "%L" the line of `marker` in the script */
    const char *marker;
} event_case;

static const event_case dispatch_cases[] = {
    {"{\"kind\":\"row\",\"id\":1,\"v\":\"x\"}", SCRIPT_ROWS, "events\t{\"id\":1,\"v\":\"x\"}\n", 1,
     "", NULL},
    {"{\"kind\":\"list\"}", SCRIPT_ROWS,
     "events\t{\"id\":1}\nevents\t{\"id\":2,\"s\":\"two\"}\nevents\t{\"id\":3}\n", 3, "", NULL},
    /* emitted rows follow the returned ones, in emit order */
    {"{\"kind\":\"emit\",\"id\":5}", SCRIPT_ROWS,
     "events\t{\"id\":5}\naudit\t{\"id\":5,\"what\":\"emitted\"}\ndb2.other\t{\"n\":1}\n", 3, "",
     NULL},
    {"{\"kind\":\"emit_only\",\"id\":6}", SCRIPT_ROWS, "audit\t{\"id\":6}\n", 1, "", NULL},
    /* nothing returned */
    {"{\"kind\":\"nil\"}", SCRIPT_FILTERED, "", 0, "", NULL},
    {"{\"kind\":\"false\"}", SCRIPT_FILTERED, "", 0, "", NULL},
    {"{\"kind\":\"nothing\"}", SCRIPT_FILTERED, "", 0, "", NULL},
    {"{\"kind\":\"empty\"}", SCRIPT_FILTERED, "", 0, "", NULL}, /* an empty list, not a row */
    /* emits of a failed event are dropped: the next event does not see them */
    {"{\"kind\":\"emit_then_error\"}", SCRIPT_LUA_ERROR, "", 0,
     "%P:%L: after emit|stack traceback:*", "error('after emit')"},
    {"{\"kind\":\"nil\"}", SCRIPT_FILTERED, "", 0, "", NULL},
    /* Lua errors: file and line, traceback on one line */
    {"{\"kind\":\"error\",\"id\":7}", SCRIPT_LUA_ERROR, "", 0,
     "%P:%L: bad event 7|stack traceback:*", "error('bad event"},
    {"{\"kind\":\"index\"}", SCRIPT_LUA_ERROR, "", 0,
     "%P:%L: attempt to index a nil value (field 'missing')|stack traceback:*", "event.missing"},
    {"{\"kind\":\"string\"}", SCRIPT_LUA_ERROR, "", 0,
     "transform must return a row table, a list of row tables, nil or false; it returned a string",
     NULL},
    {"{\"kind\":\"true\"}", SCRIPT_LUA_ERROR, "", 0,
     "transform must return a row table, a list of row tables, nil or false; it returned a "
     "boolean",
     NULL},
    {"{\"kind\":\"list_bad\"}", SCRIPT_LUA_ERROR, "events\t{\"id\":1}\n", 1,
     "transform produced a row for events that is a number, not a table", NULL},
    {"{\"kind\":\"nan\"}", SCRIPT_LUA_ERROR, "", 0,
     "column \"x\": NaN cannot be written to ClickHouse", NULL},
    {"{\"kind\":\"fn\"}", SCRIPT_LUA_ERROR, "", 0,
     "column \"f\": a function cannot be written to ClickHouse", NULL},
    {"{\"kind\":\"emit_bad\"}", SCRIPT_LUA_ERROR, "", 0,
     "%P:%L: bad argument #2 to 'emit' (table expected, got number)|stack traceback:*",
     "cdc.emit('t', 5)"},
    {"{\"kind\":\"emit_bad_row\"}", SCRIPT_LUA_ERROR, "events\t{\"id\":1}\n", 1,
     "column \"x\": an infinite number cannot be written to ClickHouse", NULL},
    /* values as decoded */
    {"{\"kind\":\"types\",\"big\":9223372036854775807,\"f\":0.5,\"before\":null,\"list\":[1,2,3]}",
     SCRIPT_ROWS,
     "events\t{\"before_is_nil\":true,\"big\":9223372036854775807,\"f\":0.5,\"mt\":\"integer\","
     "\"n\":3}\n",
     1, "", NULL},
    {"{\"kind\":\"null\"}", SCRIPT_ROWS, "events\t{\"a\":null}\n", 1, "", NULL},
    /* the {schema, payload} envelope is unwrapped */
    {"{\"schema\":{\"type\":\"struct\",\"fields\":[]},\"payload\":{\"kind\":\"row\",\"id\":9}}",
     SCRIPT_ROWS, "events\t{\"id\":9}\n", 1, "", NULL},
    {"{\"payload\":{\"kind\":\"row\",\"id\":10},\"schema\":null}", SCRIPT_ROWS,
     "events\t{\"id\":10}\n", 1, "", NULL},
    /* decode errors */
    {"{\"kind\":\"row\"", SCRIPT_DECODE_ERROR, "", 0,
     "invalid JSON at byte 13: parse error: premature EOF*", NULL},
    {"{\"kind\":row}", SCRIPT_DECODE_ERROR, "", 0, "invalid JSON at byte *", NULL},
    {"{\"kind\":\"row\"} trailing", SCRIPT_DECODE_ERROR, "", 0,
     "invalid JSON at byte 17: parse error: trailing garbage*", NULL},
    {"", SCRIPT_DECODE_ERROR, "", 0, "invalid JSON at byte 0: parse error: premature EOF*", NULL},
    {"[{\"kind\":\"row\"}]", SCRIPT_DECODE_ERROR, "", 0,
     "value is JSON but not an object (a JSON array)", NULL},
    {"\"text\"", SCRIPT_DECODE_ERROR, "", 0, "value is JSON but not an object (a JSON string)",
     NULL},
    /* a null value that is not Kafka-null (the unwrap SMT's delete with delete.handling.mode=none
     * or delete.tombstone.handling.mode=tombstone): a tombstone, without and with schemas */
    {"null", SCRIPT_TOMBSTONE, "", 0, "", NULL},
    {" null\n", SCRIPT_TOMBSTONE, "", 0, "", NULL},
    {"{\"schema\":{\"type\":\"struct\",\"optional\":true},\"payload\":null}", SCRIPT_TOMBSTONE, "",
     0, "", NULL},
    {"nullx", SCRIPT_DECODE_ERROR, "", 0, "invalid JSON at byte *", NULL},
    {"{\"schema\":{\"type\":\"struct\"}}", SCRIPT_DECODE_ERROR, "", 0,
     "JSON object has a \"schema\" member but no \"payload\"", NULL},
    {"{\"schema\":{},\"payload\":null,\"x\":1}", SCRIPT_DECODE_ERROR, "", 0, "*", NULL},
    {"{\"schema\":\"s\",\"payload\":null}", SCRIPT_DECODE_ERROR, "", 0, "*", NULL},
    {"{\"schema\":{},\"payload\":\"str\"}", SCRIPT_DECODE_ERROR, "", 0,
     "payload is not a JSON object (a string)", NULL},
    {"{\"schema\":{},\"payload\":[{\"kind\":\"row\"}]}", SCRIPT_DECODE_ERROR, "", 0,
     "payload is not a JSON object (a JSON array)", NULL},
    {"{\"schema\":{},\"payload\":12}", SCRIPT_DECODE_ERROR, "", 0,
     "payload is not a JSON object (a number)", NULL},
    /* a transform that fails for some events keeps working for the next ones */
    {"{\"kind\":\"loop\",\"n\":2}", SCRIPT_ROWS, "events\t{\"i\":1}\nevents\t{\"i\":2}\n", 2, "",
     NULL},
    {"{\"kind\":\"other\"}", SCRIPT_ROWS, "events\t{\"unknown\":\"other\"}\n", 1, "", NULL},
};

static void expand(char *out, size_t len, const char *pattern, const char *path, int line)
{
    size_t n = 0;
    for (const char *p = pattern; *p && n + 1 < len; p++) {
        if (p[0] == '%' && p[1] == 'P') {
            n += (size_t)snprintf(out + n, len - n, "%s", path);
            p++;
        } else if (p[0] == '%' && p[1] == 'L') {
            n += (size_t)snprintf(out + n, len - n, "%d", line);
            p++;
        } else {
            out[n++] = *p;
        }
    }
    out[n < len ? n : len - 1] = '\0';
}

static int check_case(const event_case *c, const outcome *o, const char *path,
                      const char *script_text, size_t i)
{
    char want[1024];
    expand(want, sizeof want, c->err, path, c->marker ? line_of(script_text, c->marker) : 0);
    size_t wlen = strlen(want);
    int prefix = wlen > 0 && want[wlen - 1] == '*';
    int err_ok = prefix ? strncmp(o->err, want, wlen - 1) == 0 : strcmp(o->err, want) == 0;
    if (c->result != SCRIPT_ROWS && c->result != SCRIPT_FILTERED && !err_ok) {
        print_error("case %zu %s:\n got  %s\n want %s\n", i, c->value, o->err, want);
        return 1;
    }
    if (o->result != c->result || strcmp(o->rows.data, c->rows) != 0 || o->nrows != c->nrows) {
        print_error("case %zu %s:\n got  %s %zu rows [%s] %s\n want %s %zu rows [%s]\n", i,
                    c->value, result_name(o->result), o->nrows, o->rows.data, o->err,
                    result_name(c->result), c->nrows, c->rows);
        return 1;
    }
    if (strstr(want, "|stack traceback:") && !strstr(o->err, "|stack traceback:|")) {
        print_error("case %zu: no traceback in %s\n", i, o->err);
        return 1;
    }
    if (strchr(o->err, '\n')) { /* one line */
        print_error("case %zu: error has a newline: %s\n", i, o->err);
        return 1;
    }
    return 0;
}

static void test_dispatch(void **state)
{
    fixture *f = *state;
    script *s = open_script(f, dispatch_script, 0);
    outcome o = {0};
    int failures = 0;
    for (int round = 0; round < 2; round++) { /* twice: nothing carries over between events */
        for (size_t i = 0; i < sizeof dispatch_cases / sizeof dispatch_cases[0]; i++) {
            script_event ev = event_of(dispatch_cases[i].value);
            process(s, &ev, &o);
            failures += check_case(&dispatch_cases[i], &o, f->path, dispatch_script, i);
        }
    }
    /* the traceback names transform at the failing line */
    script_event ev = event_of("{\"kind\":\"error\",\"id\":8}");
    process(s, &ev, &o);
    char where[1024];
    snprintf(where, sizeof where, "%s:%d: in function 'transform'", f->path,
             line_of(dispatch_script, "error('bad event"));
    if (!strstr(o.err, where)) fail_msg("no \"%s\" in %s", where, o.err);
    strbuf_free(&o.rows);
    assert_int_equal(failures, 0);
}

/* A tombstone never reaches transform. */
static void test_tombstone(void **state)
{
    fixture *f = *state;
    script *s = open_script(f,
                            "calls = 0\n"
                            "function transform(e) calls = calls + 1 return { n = calls } end\n",
                            0);
    outcome o = {0};
    script_event ev = event_of(NULL);
    ev.key = "{\"id\":1}";
    ev.key_len = strlen(ev.key);
    process(s, &ev, &o);
    assert_int_equal(o.result, SCRIPT_TOMBSTONE);
    assert_int_equal(o.nrows, 0);
    assert_string_equal(o.rows.data, "");
    ev = event_of("{}");
    process(s, &ev, &o);
    assert_int_equal(o.result, SCRIPT_ROWS);
    assert_string_equal(o.rows.data, "events\t{\"n\":1}\n"); /* the first call */
    strbuf_free(&o.rows);
}

/* A script that defines tombstone(meta) gets the tombstones: rows, cdc.emit, nil, errors and
 * wrong return types as for transform; --input debezium does not refuse them. */
static void test_tombstone_handler(void **state)
{
    fixture *f = *state;
    script *s = open_script(f,
                            "local cdc = require 'cdcpipe'\n"
                            "function transform(e) return { op = e.op } end\n"
                            "function tombstone(meta)\n"
                            "  local id = type(meta.key) == 'table' and meta.key.id\n"
                            "  if id == 1 then return { deleted = id, offset = meta.offset } end\n"
                            "  if id == 2 then cdc.emit('gone', { id = id }) return nil end\n"
                            "  if id == 3 then return 'deleted' end\n"
                            "  if id == 4 then error('no key ' .. id) end\n"
                            "  return nil\n"
                            "end\n",
                            0);
    script_set_debezium_only(s, true);
    static const struct {
        const char *key;
        script_result result;
        const char *rows;
        const char *err; /* start */
    } cases[] = {
        {"{\"id\":1}", SCRIPT_ROWS, "events\t{\"deleted\":1,\"offset\":17}\n", ""},
        {"{\"schema\":{},\"payload\":{\"id\":2}}", SCRIPT_ROWS, "gone\t{\"id\":2}\n", ""},
        {"{\"id\":3}", SCRIPT_LUA_ERROR, "",
         "tombstone must return a row table, a list of row tables, nil or false; it returned a "
         "string"},
        {"{\"id\":4}", SCRIPT_LUA_ERROR, "", ": no key 4|stack traceback:"},
        {"{\"id\":5}", SCRIPT_FILTERED, "", ""},
        {NULL, SCRIPT_FILTERED, "", ""},
    };
    /* each case as a Kafka-null value, as JSON text null and as a null-payload envelope */
    static const char *const values[] = {NULL, "null",
                                         "{\"schema\":{\"type\":\"struct\"},\"payload\":null}"};
    outcome o = {0};
    for (size_t v = 0; v < sizeof values / sizeof values[0]; v++) {
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            script_event ev = event_of(values[v]);
            ev.key = cases[i].key;
            ev.key_len = cases[i].key ? strlen(cases[i].key) : 0;
            process(s, &ev, &o);
            if (o.result != cases[i].result || strcmp(o.rows.data, cases[i].rows) != 0 ||
                (cases[i].err[0] && !strstr(o.err, cases[i].err)))
                fail_msg("value %zu, case %zu: got %d [%s] [%s]", v, i, (int)o.result, o.rows.data,
                         o.err);
        }
    }
    script_event ev = event_of(NULL);
    ev.key = "{\"id\":4}";
    ev.key_len = strlen(ev.key);
    process(s, &ev, &o);
    if (!strstr(o.err, ": no key 4|stack traceback:") || !strstr(o.err, "in function 'tombstone'"))
        fail_msg("no traceback through tombstone in %s", o.err);
    ev = event_of("{\"op\":\"d\"}"); /* and transform still gets the change events */
    process(s, &ev, &o);
    assert_int_equal(o.result, SCRIPT_ROWS);
    assert_string_equal(o.rows.data, "events\t{\"op\":\"d\"}\n");
    strbuf_free(&o.rows);

    char err[1024];
    write_file(f->path, "function transform(e) end\ntombstone = 5\n");
    assert_null(script_open(f->path, 0, err, sizeof err));
    if (!strstr(err, ": tombstone must be a function (meta) returning rows, found a number"))
        fail_msg("wrong error: %s", err);
}

/* ---- meta ---- */

typedef struct {
    const char *key; /* NULL: no key */
    size_t key_len;  /* 0: strlen */
    int64_t timestamp_ms;
    const char *rows;
} meta_case;

static const meta_case meta_cases[] = {
    {"{\"id\":1005}", 0, 1700000000123LL,
     "events\t{\"key\":{\"id\":1005},\"keytype\":\"table\",\"offset\":9007199254740993,"
     "\"partition\":3,\"timestamp\":1700000000123,\"topic\":\"dbserver1.inventory.customers\"}\n"},
    /* a key with the {schema, payload} envelope is unwrapped */
    {"{\"schema\":{\"type\":\"struct\",\"fields\":[{\"type\":\"int32\",\"optional\":false,"
     "\"field\":\"id\"}],\"optional\":false,\"name\":\"dbserver1.inventory.customers.Key\"},"
     "\"payload\":{\"id\":1005}}",
     0, 0,
     "events\t{\"key\":{\"id\":1005},\"keytype\":\"table\",\"offset\":9007199254740993,"
     "\"partition\":3,\"timestamp\":0,\"topic\":\"dbserver1.inventory.customers\"}\n"},
    /* not JSON: the raw bytes as a string */
    {"plain-key", 0, -1,
     "events\t{\"key\":\"plain-key\",\"keytype\":\"string\",\"offset\":9007199254740993,"
     "\"partition\":3,\"timestamp\":\"none\",\"topic\":\"dbserver1.inventory.customers\"}\n"},
    {"{\"id\":", 0, -1,
     "events\t{\"key\":\"{\\\"id\\\":\",\"keytype\":\"string\",\"offset\":9007199254740993,"
     "\"partition\":3,\"timestamp\":\"none\",\"topic\":\"dbserver1.inventory.customers\"}\n"},
    {"a\0b", 3, -1,
     "events\t{\"key\":\"a\\u0000b\",\"keytype\":\"string\",\"offset\":9007199254740993,"
     "\"partition\":3,\"timestamp\":\"none\",\"topic\":\"dbserver1.inventory.customers\"}\n"},
    /* JSON scalars are decoded too */
    {"42", 0, -1,
     "events\t{\"key\":42,\"keytype\":\"number\",\"offset\":9007199254740993,\"partition\":3,"
     "\"timestamp\":\"none\",\"topic\":\"dbserver1.inventory.customers\"}\n"},
    {"\"quoted\"", 0, -1,
     "events\t{\"key\":\"quoted\",\"keytype\":\"string\",\"offset\":9007199254740993,"
     "\"partition\":3,\"timestamp\":\"none\",\"topic\":\"dbserver1.inventory.customers\"}\n"},
    /* no key */
    {NULL, 0, -1,
     "events\t{\"keytype\":\"nil\",\"offset\":9007199254740993,\"partition\":3,"
     "\"timestamp\":\"none\",\"topic\":\"dbserver1.inventory.customers\"}\n"},
};

static void test_meta(void **state)
{
    fixture *f = *state;
    script *s =
        open_script(f,
                    "function transform(event, meta)\n"
                    "  return { topic = meta.topic, partition = meta.partition,\n"
                    "           offset = meta.offset, timestamp = meta.timestamp or 'none',\n"
                    "           key = meta.key, keytype = type(meta.key) }\n"
                    "end\n",
                    0);
    outcome o = {0};
    int failures = 0;
    for (size_t i = 0; i < sizeof meta_cases / sizeof meta_cases[0]; i++) {
        const meta_case *c = &meta_cases[i];
        script_event ev = {"dbserver1.inventory.customers",
                           3,
                           9007199254740993LL,
                           c->timestamp_ms,
                           c->key,
                           c->key ? (c->key_len ? c->key_len : strlen(c->key)) : 0,
                           "{\"op\":\"c\"}",
                           10,
                           NULL};
        process(s, &ev, &o);
        if (o.result != SCRIPT_ROWS || strcmp(o.rows.data, c->rows) != 0) {
            print_error("case %zu: %s %s\n got  %s want %s", i, result_name(o.result), o.err,
                        o.rows.data, c->rows);
            failures++;
        }
    }
    strbuf_free(&o.rows);
    assert_int_equal(failures, 0);
}

/* The value is bounded by value_len, not by a NUL. */
/* meta.headers: name → value for the record's headers (false without a value, the last of
 * repeated names); absent when the record has none. */
static void test_meta_headers(void **state)
{
    fixture *f = *state;
    script *s = open_script(f,
                            "local cdc = require 'cdcpipe'\n"
                            "function transform(event, meta)\n"
                            "  return { h = meta.headers and cdc.json(meta.headers) or 'none' }\n"
                            "end\n",
                            0);
    outcome o = {0};
    script_event ev = event_of("{\"op\":\"c\"}");
    process(s, &ev, &o);
    assert_string_equal(o.rows.data, "events\t{\"h\":\"none\"}\n");

    rd_kafka_headers_t *hdrs = rd_kafka_headers_new(4);
    ev.headers = hdrs;
    process(s, &ev, &o); /* a header list without headers is no headers */
    assert_string_equal(o.rows.data, "events\t{\"h\":\"none\"}\n");
    rd_kafka_header_add(hdrs, "__debezium.oldkey", -1, "Struct{id=1}", -1);
    rd_kafka_header_add(hdrs, "empty", -1, NULL, 0);
    rd_kafka_header_add(hdrs, "twice", -1, "first", -1);
    rd_kafka_header_add(hdrs, "twice", -1, "second", -1);
    rd_kafka_header_add(hdrs, "bin", -1, "a\0b", 3);
    process(s, &ev, &o);
    assert_int_equal(o.result, SCRIPT_ROWS);
    assert_string_equal(o.rows.data,
                        "events\t{\"h\":\"{\\\"__debezium.oldkey\\\":\\\"Struct{id=1}\\\","
                        "\\\"bin\\\":\\\"a\\\\u0000b\\\",\\\"empty\\\":false,"
                        "\\\"twice\\\":\\\"second\\\"}\"}\n");
    rd_kafka_headers_destroy(hdrs);
    strbuf_free(&o.rows);
}

static void test_value_length(void **state)
{
    fixture *f = *state;
    script *s = open_script(f, "function transform(e) return { id = e.id } end\n", 0);
    static const char buf[] = "{\"id\":12}{\"id\":13}";
    script_event ev = {"t", 0, 0, -1, NULL, 0, buf, 9, NULL};
    outcome o = {0};
    process(s, &ev, &o);
    assert_int_equal(o.result, SCRIPT_ROWS);
    assert_string_equal(o.rows.data, "events\t{\"id\":12}\n");
    strbuf_free(&o.rows);
}

/* --input debezium: records that are not change events fail at decode, naming what they are;
 * change events (also inside the schemas envelope) pass; off again, anything goes through. */
static void test_debezium_only(void **state)
{
    fixture *f = *state;
    script *s = open_script(f, "function transform(e) return { op = e.op or '-' } end\n", 0);
    static const struct {
        const char *value;
        script_result result;
        const char *out; /* rows, or the error's start */
    } cases[] = {
        {"{\"op\":\"c\",\"after\":{}}", SCRIPT_ROWS, "events\t{\"op\":\"c\"}\n"},
        {"{\"op\":\"m\"}", SCRIPT_ROWS, "events\t{\"op\":\"m\"}\n"},
        {"{\"schema\":{},\"payload\":{\"op\":\"t\"}}", SCRIPT_ROWS, "events\t{\"op\":\"t\"}\n"},
        {"{\"id\":1}", SCRIPT_DECODE_ERROR,
         "not a Debezium change event: no \"op\" field (it has id); records of the unwrap SMT "
         "(ExtractNewRecordState), heartbeats, transaction metadata and other JSON need --input "
         "json"},
        {"{}", SCRIPT_DECODE_ERROR,
         "not a Debezium change event: no \"op\" field (it has no fields)"},
        {"{\"schema\":{},\"payload\":{\"ts_ms\":5}}", SCRIPT_DECODE_ERROR,
         "not a Debezium change event: no \"op\" field (it has ts_ms)"},
        {"{\"op\":\"x\"}", SCRIPT_DECODE_ERROR,
         "not a Debezium change event: \"op\" is \"x\", not one of c u d r t m"},
        {"{\"op\":\"cu\"}", SCRIPT_DECODE_ERROR,
         "not a Debezium change event: \"op\" is \"cu\", not one of c u d r t m"},
        {"{\"op\":\"\\u0000\"}", SCRIPT_DECODE_ERROR, "not a Debezium change event: \"op\" is \""},
        {"{\"op\":1}", SCRIPT_DECODE_ERROR,
         "not a Debezium change event: \"op\" is a number, not a string"},
        {"{\"op\":null}", SCRIPT_DECODE_ERROR, "not a Debezium change event: no \"op\" field"},
    };
    outcome o = {0};
    script_set_debezium_only(s, true);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        script_event ev = event_of(cases[i].value);
        process(s, &ev, &o);
        const char *got = cases[i].result == SCRIPT_ROWS ? o.rows.data : o.err;
        if (o.result != cases[i].result || strncmp(got, cases[i].out, strlen(cases[i].out)) != 0)
            fail_msg("case %zu %s: got %d [%s] [%s]", i, cases[i].value, (int)o.result, o.rows.data,
                     o.err);
    }
    script_set_debezium_only(s, false);
    script_event ev = event_of("{\"id\":1}");
    process(s, &ev, &o);
    assert_int_equal(o.result, SCRIPT_ROWS);
    assert_string_equal(o.rows.data, "events\t{\"op\":\"-\"}\n");
    strbuf_free(&o.rows);
}

/* ---- the default pipeline.lua ---- */

static void test_default_pipeline(void **state)
{
    fixture *f = *state;
    char path[1024], err[1024];
    open_default_pipeline(f, path, sizeof path);
    outcome o = {0};

    static const struct {
        const char *value;
        script_result result;
        const char *rows;
    } cases[] = {
        {"{\"op\":\"u\",\"after\":{\"id\":7,\"name\":\"x\",\"created_at\":1700000000123456}}",
         SCRIPT_ROWS,
         "events\t{\"created_at\":\"2023-11-14 22:13:20\",\"id\":7,\"name\":\"x\",\"op\":\"u\"}\n"},
        {"{\"schema\":{\"type\":\"struct\"},\"payload\":{\"op\":\"u\",\"before\":null,\"after\":{"
         "\"id\":4294967295,\"name\":\"caf\xc3\xa9 \\\"q\\\"\",\"created_at\":-1}}}",
         SCRIPT_ROWS,
         "events\t{\"created_at\":\"1969-12-31 23:59:59\",\"id\":4294967295,\"name\":\"caf\xc3\xa9 "
         "\\\"q\\\"\",\"op\":\"u\"}\n"},
        {"{\"op\":\"u\",\"after\":{\"id\":8,\"name\":\"y\",\"created_at\":null}}", SCRIPT_ROWS,
         "events\t{\"id\":8,\"name\":\"y\",\"op\":\"u\"}\n"},
        {"{\"op\":\"c\",\"after\":{\"id\":7,\"name\":\"x\",\"created_at\":1700000000123456}}",
         SCRIPT_FILTERED, ""},
        {"{\"op\":\"d\",\"before\":{\"id\":7},\"after\":null}", SCRIPT_FILTERED, ""},
        {"{\"op\":\"r\",\"after\":{\"id\":7}}", SCRIPT_FILTERED, ""},
        /* an update without `after` is a Lua error with the script's line */
        {"{\"op\":\"u\"}", SCRIPT_LUA_ERROR, ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        script_event ev = event_of(cases[i].value);
        process(f->s, &ev, &o);
        if (o.result != cases[i].result || strcmp(o.rows.data, cases[i].rows) != 0)
            fail_msg("case %zu: %s %s [%s]", i, result_name(o.result), o.err, o.rows.data);
    }
    char want[1100];
    snprintf(want, sizeof want, "%s:", path);
    assert_int_equal(strncmp(o.err, want, strlen(want)), 0);
    assert_non_null(strstr(o.err, "attempt to index a nil value (local 'a')"));

    /* ddl() is the changes table */
    char **stmts;
    assert_int_equal(script_ddl(f->s, &stmts, err, sizeof err), 0);
    assert_non_null(stmts[0]);
    assert_null(stmts[1]);
    assert_int_equal(strncmp(stmts[0], "CREATE TABLE IF NOT EXISTS changes (", 36), 0);
    script_free_ddl(stmts);
    strbuf_free(&o.rows);
}

/* The synthesized Debezium update, with and without its envelope, through the default script. */
static void test_default_pipeline_fixture(void **state)
{
    fixture *f = *state;
    char path[1024];
    open_default_pipeline(f, path, sizeof path);
    static const struct {
        const char *file;
        script_result result;
        const char *rows;
    } cases[] = {
        {"S27-03-update-full-no-schema.json", SCRIPT_ROWS, "events\t{\"id\":1005,\"op\":\"u\"}\n"},
        {"S27-02-create-with-schema.json", SCRIPT_FILTERED, ""},
        {"S27-02-create-no-schema.json", SCRIPT_FILTERED, ""},
        {"S27-04-delete-full-no-schema.json", SCRIPT_FILTERED, ""},
    };
    outcome o = {0};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n;
        char *text = read_fixture(cases[i].file, &n);
        script_event ev = {"dbserver1.inventory.customers", 0, 0, -1, NULL, 0, text, n, NULL};
        process(f->s, &ev, &o);
        free(text);
        if (o.result != cases[i].result || strcmp(o.rows.data, cases[i].rows) != 0)
            fail_msg("%s: %s %s [%s]", cases[i].file, result_name(o.result), o.err, o.rows.data);
    }
    strbuf_free(&o.rows);
}

/* Objects below the event's top level are built on first use (json_fast.h): whatever the script
 * does with them, it sees the plain tables it always saw — pairs, next, #, raw access,
 * metatables, writes, cdc.json, rows holding them, and a table kept past its event. */
static const char lazy_script[] =
    "local cdc = require 'cdcpipe'\n"
    "function transform(event, meta)\n"
    "  if event.first then keep = event.j return nil end\n"
    "  local out, keys = {}, {}\n"
    "  for k, v in pairs(event.a) do keys[#keys + 1] = k .. '=' .. tostring(v) end\n"
    "  table.sort(keys)\n"
    "  out.pairs = table.concat(keys, ',')\n"
    "  local n = 0\n"
    "  for k in next, event.b do n = n + 1 end\n"
    "  out.next = n\n"
    "  out.next_empty = next(event.empty) == nil\n"
    "  out.rawget = rawget(event.c, 'x')\n"
    "  out.rawlen = rawlen(event.arr[1])\n"
    "  out.len = #event.arr .. '/' .. #event.a\n"
    "  out.getmt = getmetatable(event.d) == nil\n"
    "  setmetatable(event.e, { __index = function() return 'dflt' end })\n"
    "  out.setmt = event.e.zzz .. event.e.x\n"
    "  event.f.y = 5\n"
    "  out.newindex = event.f.x + event.f.y\n"
    "  rawset(event.g, 'z', 1)\n"
    "  out.rawset = event.g.x + event.g.z\n"
    "  out.json = cdc.json(event.h)\n"
    "  out.nested = event.i\n"
    "  out.kept = keep.x .. '/' .. event.j.x\n"
    "  out.type = type(event.k) .. tostring(event.k.missing)\n"
    "  local m = 0\n"
    "  for i, v in ipairs(event.arr) do m = m + i end\n"
    "  out.ipairs = m\n"
    "  return out\n"
    "end\n";

static void test_lazy_event(void **state)
{
    fixture *f = *state;
    script *s = open_script(f, lazy_script, 0);
    outcome o = {0};
    script_event ev = event_of("{\"first\":true,\"j\":{\"x\":\"first\"}}");
    process(s, &ev, &o);
    assert_int_equal(o.result, SCRIPT_FILTERED);
    ev = event_of("{\"a\":{\"x\":1,\"y\":\"s\",\"n\":null},\"b\":{\"p\":1,\"q\":2,\"r\":3},"
                  "\"c\":{\"x\":7},\"d\":{\"x\":1},\"e\":{\"x\":\"e\"},\"f\":{\"x\":1},"
                  "\"g\":{\"x\":2},\"h\":{\"b\":[1,{\"c\":null,\"d\":{}}],\"a\":\"t\"},"
                  "\"i\":{\"n\":{\"m\":1}},\"j\":{\"x\":\"second\"},\"k\":{},\"empty\":{},"
                  "\"arr\":[{\"u\":1,\"v\":2},{\"w\":3}]}");
    process(s, &ev, &o);
    if (o.result != SCRIPT_ROWS) fail_msg("%s: %s", result_name(o.result), o.err);
    assert_string_equal(
        o.rows.data, "events\t{\"getmt\":true,\"ipairs\":3,\"json\":\"{\\\"a\\\":\\\"t\\\","
                     "\\\"b\\\":[1,{\\\"d\\\":[]}]}\",\"kept\":\"first/second\",\"len\":\"2/0\","
                     "\"nested\":{\"n\":{\"m\":1}},\"newindex\":6,\"next\":3,\"next_empty\":true,"
                     "\"pairs\":\"x=1,y=s\",\"rawget\":7,\"rawlen\":0,\"rawset\":3,"
                     "\"setmt\":\"dflte\",\"type\":\"tablenil\"}\n");
    strbuf_free(&o.rows);
}

/* script_source_ts_ms: event.source.ts_ms as the script would see it, whether or not anything
 * built the (lazy) source object: the last non-null member of that name, escaped names too;
 * -1 without one, for a non-integer, or a member of a nested object. */
static void test_source_ts_ms(void **state)
{
    fixture *f = *state;
    script *s = open_script(f,
                            "function transform(e)\n"
                            "  if e.touch then local _ = e.source.x end\n"
                            "  return nil\n"
                            "end\n",
                            0);
    static const struct {
        const char *value;
        int64_t want;
    } cases[] = {
        {"{\"op\":\"u\",\"source\":{\"db\":\"d\",\"ts_ms\":1718000000123,\"x\":[1]}}",
         1718000000123},
        {"{\"touch\":true,\"source\":{\"ts_ms\":-5}}", -5},
        {"{\"source\":{\"ts_ms\":1,\"ts_ms\":2}}", 2},
        {"{\"source\":{\"ts_ms\":1,\"ts_ms\":null}}", 1},
        {"{\"source\":{ \"ts\\u005fms\" : 7 , \"a\":{\"ts_ms\":8}}}", 7},
        {"{\"source\":{\"a\":{\"ts_ms\":8},\"b\":\"ts_ms\"}}", -1},
        {"{\"source\":{\"ts_ms\":1.5}}", -1},
        {"{\"source\":{\"ts_ms\":\"9\"}}", -1},
        {"{\"source\":{}}", -1},
        {"{\"source\":[1]}", -1},
        {"{\"op\":\"u\"}", -1},
        {"{\"schema\":{\"type\":\"struct\"},\"payload\":{\"source\":{\"ts_ms\":42}}}", 42},
        /* the fast path gives up past the first source (a lone surrogate): the general one
         * decodes it all, the second source counts */
        {"{\"source\":{\"ts_ms\":1},\"x\":\"\\ud800\",\"source\":{\"ts_ms\":2}}", 2},
    };
    outcome o = {0};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        script_event ev = event_of(cases[i].value);
        process(s, &ev, &o);
        if (o.result != SCRIPT_FILTERED)
            fail_msg("%s: %s %s", cases[i].value, result_name(o.result), o.err);
        if (script_source_ts_ms(s) != cases[i].want)
            fail_msg("%s: source.ts_ms %lld, want %lld", cases[i].value,
                     (long long)script_source_ts_ms(s), (long long)cases[i].want);
    }
    strbuf_free(&o.rows);
}

/* ---- ddl() ---- */

typedef struct {
    const char *script;
    int rc;
    const char *stmts[3]; /* expected, NULL-terminated */
    const char *err;      /* exact or prefix ending in '*'; "%P" the path, "%L" the marker line */
    const char *marker;
} ddl_case;

#define TRANSFORM "function transform(e) return nil end\n"

static const ddl_case ddl_cases[] = {
    {TRANSFORM "function ddl() return 'CREATE TABLE a (x Int8)' end\n",
     0,
     {"CREATE TABLE a (x Int8)", NULL},
     NULL,
     NULL},
    {TRANSFORM "function ddl() return { 'CREATE TABLE a (x Int8)', 'CREATE TABLE b (y String)' } "
               "end\n",
     0,
     {"CREATE TABLE a (x Int8)", "CREATE TABLE b (y String)", NULL},
     NULL,
     NULL},
    {TRANSFORM "function ddl() end\n", 0, {NULL}, NULL, NULL},
    {TRANSFORM "function ddl() return {} end\n", 0, {NULL}, NULL, NULL},
    {TRANSFORM, 0, {NULL}, NULL, NULL}, /* no ddl at all */
    {TRANSFORM "function ddl() return 42 end\n",
     -1,
     {NULL},
     "%P: ddl() must return a SQL string or a list of them, not a number",
     NULL},
    {TRANSFORM "function ddl() return { 'CREATE TABLE a (x Int8)', 2 } end\n",
     -1,
     {NULL},
     "%P: ddl() returned a list whose item 2 is a number, not SQL",
     NULL},
    {TRANSFORM "\nfunction ddl()\n  error('no ddl today')\nend\n",
     -1,
     {NULL},
     "%P: ddl() failed: %P:%L: no ddl today|stack traceback:*",
     "error('no ddl"},
};

static void test_ddl(void **state)
{
    fixture *f = *state;
    int failures = 0;
    for (size_t i = 0; i < sizeof ddl_cases / sizeof ddl_cases[0]; i++) {
        const ddl_case *c = &ddl_cases[i];
        script *s = open_script(f, c->script, 0);
        for (int twice = 0; twice < 2; twice++) { /* ddl can run again */
            char **stmts = NULL, err[1024] = "";
            int top = lua_gettop(script_lua(s));
            int rc = script_ddl(s, &stmts, err, sizeof err);
            assert_int_equal(lua_gettop(script_lua(s)), top);
            if (rc != c->rc) {
                print_error("case %zu: rc %d (%s)\n", i, rc, err);
                failures++;
            } else if (rc == 0) {
                size_t n = 0;
                for (; c->stmts[n]; n++)
                    if (!stmts[n] || strcmp(stmts[n], c->stmts[n]) != 0) break;
                if (c->stmts[n] || stmts[n]) {
                    print_error("case %zu: statement %zu differs\n", i, n);
                    failures++;
                }
            } else {
                char want[1024];
                expand(want, sizeof want, c->err, f->path,
                       c->marker ? line_of(c->script, c->marker) : 0);
                size_t wlen = strlen(want);
                int ok = want[wlen - 1] == '*' ? strncmp(err, want, wlen - 1) == 0
                                               : strcmp(err, want) == 0;
                if (!ok) {
                    print_error("case %zu:\n got  %s\n want %s\n", i, err, want);
                    failures++;
                }
            }
            script_free_ddl(stmts);
        }
        /* and transform still works after ddl, failed or not */
        outcome o = {0};
        script_event ev = event_of("{}");
        process(s, &ev, &o);
        assert_int_equal(o.result, SCRIPT_FILTERED);
        strbuf_free(&o.rows);
    }
    assert_int_equal(failures, 0);
}

/* ---- script_open errors ---- */

typedef struct {
    const char *script;
    const char *err; /* exact or prefix ending in '*'; "%P" the path, "%L" the marker line */
    const char *marker;
} open_case;

static const open_case open_cases[] = {
    {"function transform(e)\n  return {\nend\n", "%P:3: unexpected symbol near 'end'", NULL},
    {"local x = = 1\n", "%P:1: unexpected symbol near '='", NULL},
    {"-- nothing\n", "%P does not define a global function transform(event, meta) (found a nil)",
     NULL},
    {"transform = {}\n",
     "%P does not define a global function transform(event, meta) (found a table)", NULL},
    {"local function transform(e) return e end\n",
     "%P does not define a global function transform(event, meta) (found a nil)", NULL},
    {TRANSFORM "ddl = 'CREATE TABLE x'\n",
     "%P: ddl must be a function returning SQL, found a string", NULL},
    {TRANSFORM "\nerror('load failed')\n", "%P:%L: load failed|stack traceback:*", "error("},
    {TRANSFORM "local cdc = require 'cdcpipe'\ncdc.emit('t', {})\n",
     "%P:%L: cdc.emit can only be called while transform runs|stack traceback:*", "cdc.emit("},
    {"require 'no_such_module'\n" TRANSFORM, "%P:1: module 'no_such_module' not found:*", NULL},
};

static void test_open_errors(void **state)
{
    fixture *f = *state;
    int failures = 0;
    for (size_t i = 0; i < sizeof open_cases / sizeof open_cases[0]; i++) {
        const open_case *c = &open_cases[i];
        write_file(f->path, c->script);
        char err[2048], want[1024];
        script *s = script_open(f->path, 0, err, sizeof err);
        if (s) {
            print_error("case %zu: opened\n", i);
            script_close(s);
            failures++;
            continue;
        }
        expand(want, sizeof want, c->err, f->path, c->marker ? line_of(c->script, c->marker) : 0);
        size_t wlen = strlen(want);
        int ok = want[wlen - 1] == '*' ? strncmp(err, want, wlen - 1) == 0 : strcmp(err, want) == 0;
        if (!ok || strchr(err, '\n')) {
            print_error("case %zu:\n got  %s\n want %s\n", i, err, want);
            failures++;
        }
    }
    char missing[1024], err[1024], want[2048];
    snprintf(missing, sizeof missing, "%s/missing.lua", f->dir);
    assert_null(script_open(missing, 0, err, sizeof err));
    snprintf(want, sizeof want,
             "cannot open %s: No such file or directory (check the pipeline script path)", missing);
    assert_string_equal(err, want);
    assert_int_equal(failures, 0);
}

/* Modules beside pipeline.lua can be required; cdcpipe's own module is there too. */
static void test_require_beside(void **state)
{
    fixture *f = *state;
    char helper[700];
    snprintf(helper, sizeof helper, "%s/helper.lua", f->dir);
    write_file(helper, "return { double = function(x) return 2 * x end }\n");
    script *s = open_script(f,
                            "local h = require 'helper'\n"
                            "local cdc = require 'cdcpipe'\n"
                            "function transform(e)\n"
                            "  return { d = h.double(e.n), day = cdc.date(e.days),\n"
                            "           at = cdc.datetime(e.ms), v = type(cdc.version) }\n"
                            "end\n",
                            0);
    outcome o = {0};
    script_event ev = event_of("{\"n\":21,\"days\":19675,\"ms\":1700000000123}");
    process(s, &ev, &o);
    assert_int_equal(o.result, SCRIPT_ROWS);
    assert_string_equal(o.rows.data, "events\t{\"at\":\"2023-11-14 22:13:20\",\"d\":42,"
                                     "\"day\":\"2023-11-14\",\"v\":\"string\"}\n");
    strbuf_free(&o.rows);
}

/* Nothing is loaded from the working directory (Lua's default "./?.lua", "./?.so"): a module
 * there does not shadow an installed one. The script's own folder comes first in package.path. */
static void test_require_not_from_cwd(void **state)
{
    fixture *f = *state;
    write_file("cwd_only_module.lua", "return { loaded = true }\n");
    script *s =
        open_script(f,
                    "function transform(e)\n"
                    "  local ok, msg = pcall(require, 'cwd_only_module')\n"
                    "  local relative = {}\n"
                    "  for t in (package.path .. ';' .. package.cpath):gmatch('[^;]+') do\n"
                    "    if t:sub(1, 1) ~= '/' then relative[#relative + 1] = t end\n"
                    "  end\n"
                    "  return { loaded = ok, relative = table.concat(relative, ';'),\n"
                    "           said = msg:match(\"module 'cwd_only_module' not found\") }\n"
                    "end\n",
                    0);
    outcome o = {0};
    script_event ev = event_of("{}");
    process(s, &ev, &o);
    unlink("cwd_only_module.lua");
    assert_int_equal(o.result, SCRIPT_ROWS);
    char want[1024];
    snprintf(want, sizeof want,
             "events\t{\"loaded\":false,\"relative\":\"%s/?.lua\","
             "\"said\":\"module 'cwd_only_module' not found\"}\n",
             f->dir);
    assert_string_equal(o.rows.data, want);
    strbuf_free(&o.rows);
}

/* load() takes text only: a precompiled chunk (which Lua does not verify) is refused, while text
 * chunks, chunk names and environments work as in stock Lua. */
static void test_load_text_only(void **state)
{
    fixture *f = *state;
    script *s = open_script(f,
                            "function transform(e)\n"
                            "  local f, binary = load(string.dump(function() return 1 end))\n"
                            "  local plain = load('return 41 + 1')()\n"
                            "  local with_env = load('return x', 'chunk', 'bt', { x = 5 })()\n"
                            "  local globals = load('return type(print)')()\n"
                            "  return { refused = f == nil, binary = binary, plain = plain,\n"
                            "           with_env = with_env, globals = globals }\n"
                            "end\n",
                            0);
    outcome o = {0};
    script_event ev = event_of("{}");
    process(s, &ev, &o);
    assert_int_equal(o.result, SCRIPT_ROWS);
    assert_string_equal(o.rows.data,
                        "events\t{\"binary\":\"attempt to load a binary chunk (mode is 't')\","
                        "\"globals\":\"function\",\"plain\":42,\"refused\":true,"
                        "\"with_env\":5}\n");
    strbuf_free(&o.rows);
}

/* The memory cap turns a runaway allocation into an event error; the state goes on. */
static void test_memory_limit(void **state)
{
    fixture *f = *state;
    script *s = open_script(f, dispatch_script, 8u << 20);
    outcome o = {0};
    script_event ev = event_of("{\"kind\":\"alloc\"}");
    process(s, &ev, &o);
    assert_int_equal(o.result, SCRIPT_LUA_ERROR);
    assert_string_equal(o.err, "out of memory while decoding or transforming the event: the Lua "
                               "state may use 8 MiB (--lua-memory-mb)");
    assert_int_equal(o.nrows, 0);
    ev = event_of("{\"kind\":\"loop\",\"n\":3}");
    process(s, &ev, &o);
    assert_int_equal(o.result, SCRIPT_ROWS);
    assert_string_equal(o.rows.data, "events\t{\"i\":1}\nevents\t{\"i\":2}\nevents\t{\"i\":3}\n");
    /* a value too big to decode under the cap */
    strbuf big = {0};
    strbuf_puts(&big, "{\"kind\":\"row\",\"v\":[");
    for (int i = 0; i < 400000; i++)
        strbuf_puts(&big, i ? ",\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"" : "\"x\"");
    strbuf_puts(&big, "]}");
    ev = (script_event){"t", 0, 0, -1, NULL, 0, big.data, big.len, NULL};
    process(s, &ev, &o);
    assert_int_equal(o.result, SCRIPT_LUA_ERROR);
    assert_string_equal(o.err, "out of memory while decoding or transforming the event: the Lua "
                               "state may use 8 MiB (--lua-memory-mb)");
    ev = event_of("{\"kind\":\"row\",\"id\":1}");
    process(s, &ev, &o);
    assert_int_equal(o.result, SCRIPT_ROWS);
    assert_string_equal(o.rows.data, "events\t{\"id\":1}\n");
    strbuf_free(&big);
    strbuf_free(&o.rows);
}

/* The instruction budget stops a runaway transform; the state goes on. */
static void test_instruction_limit(void **state)
{
    fixture *f = *state;
    script *s = open_script(f, dispatch_script, 0);
    script_set_instruction_limit(s, 1000000);
    outcome o = {0};
    script_event ev = event_of("{\"kind\":\"spin\"}");
    process(s, &ev, &o);
    assert_int_equal(o.result, SCRIPT_LUA_ERROR);
    assert_non_null(strstr(o.err, "transform used up its budget of 1000000 Lua instructions "
                                  "(--lua-instructions)"));
    ev = event_of("{\"kind\":\"loop\",\"n\":2}");
    process(s, &ev, &o);
    assert_int_equal(o.result, SCRIPT_ROWS);
    assert_string_equal(o.rows.data, "events\t{\"i\":1}\nevents\t{\"i\":2}\n");
    strbuf_free(&o.rows);
}

/* Once the budget is spent the event fails whatever the script does: catching the error with
 * pcall or xpcall, running in a coroutine made before any event, removing the hook with
 * debug.sethook. debug keeps only traceback (debug.setupvalue on a cdc function aborted the
 * process). The budget is charged in steps of 1,000 instructions, not 10,000: a loop of ~3,000
 * instructions exceeds a budget of 1,000. After each failure the state goes on. */
static const char escape_script[] =
    "local cdc = require 'cdcpipe'\n"
    "local spinner = coroutine.wrap(function() for i = 1, 3e6 do end return 'done' end)\n"
    "local function spin() while true do end end\n"
    "function transform(event)\n"
    "  local k = event.kind\n"
    "  if k == 'small' then local n = 0 for i = 1, 1500 do n = n + i end return { n = n } end\n"
    "  if k == 'pcall' then for i = 1, 300 do pcall(spin) end return { survived = 'pcall' } end\n"
    "  if k == 'xpcall' then\n"
    "    for i = 1, 300 do xpcall(spin, function(m) while true do end end) end\n"
    "    return { survived = 'xpcall' }\n"
    "  end\n"
    "  if k == 'coroutine' then return { survived = spinner() } end\n"
    "  if k == 'sethook' then\n"
    "    debug.sethook() for i = 1, 3e6 do end return { survived = 'sethook' }\n"
    "  end\n"
    "  if k == 'setupvalue' then\n"
    "    debug.setupvalue(cdc.decimal, 1, io.stderr) return { d = cdc.decimal('1.5') }\n"
    "  end\n"
    "  if k == 'debug' then\n"
    "    local names = {} for name in pairs(debug) do names[#names + 1] = name end\n"
    "    return { names = table.concat(names, ','), same = require('debug') == debug }\n"
    "  end\n"
    "  return { ok = k }\n"
    "end\n";

static void test_budget_cannot_be_escaped(void **state)
{
    fixture *f = *state;
    script *s = open_script(f, escape_script, 0);
    static const struct {
        const char *kind;
        long budget;
        const char *want; /* in the error */
    } cases[] = {
        {"small", 1000,
         "transform used up its budget of 1000 Lua instructions (--lua-instructions)"},
        {"pcall", 1000000, "budget of 1000000 Lua instructions (--lua-instructions)"},
        {"xpcall", 1000000, "budget of 1000000 Lua instructions (--lua-instructions)"},
        {"coroutine", 1000000, "budget of 1000000 Lua instructions (--lua-instructions)"},
        {"sethook", 1000000, "attempt to call a nil value (field 'sethook')"},
        {"setupvalue", 1000000, "attempt to call a nil value (field 'setupvalue')"},
    };
    outcome o = {0};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char event[64];
        script_set_instruction_limit(s, cases[i].budget);
        snprintf(event, sizeof event, "{\"kind\":\"%s\"}", cases[i].kind);
        script_event ev = event_of(event);
        process(s, &ev, &o);
        if (o.result != SCRIPT_LUA_ERROR || !strstr(o.err, cases[i].want))
            fail_msg("%s: got %s, rows \"%s\", error \"%s\"; want an error with \"%s\"",
                     cases[i].kind, result_name(o.result), o.rows.data, o.err, cases[i].want);
        assert_int_equal(o.nrows, 0);
        ev = event_of("{\"kind\":\"next\"}");
        process(s, &ev, &o);
        assert_int_equal(o.result, SCRIPT_ROWS);
        assert_string_equal(o.rows.data, "events\t{\"ok\":\"next\"}\n");
    }
    script_event ev = event_of("{\"kind\":\"debug\"}");
    process(s, &ev, &o);
    assert_int_equal(o.result, SCRIPT_ROWS);
    assert_string_equal(o.rows.data, "events\t{\"names\":\"traceback\",\"same\":true}\n");
    strbuf_free(&o.rows);
}

/* --lua-timeout stops what the instruction budget cannot: C functions that run long (a pattern
 * match quadratic in a 200 KB subject took minutes; plain find; few instructions each calling a
 * long C function) and, with no budget at all, Lua loops, caught errors included. The event fails
 * naming the limit and the state goes on; events within the limit are not affected. No timing is
 * asserted: only that the event stopped (the runaways below would take minutes or forever). */
static const char runaway_script[] =
    "local function spin() while true do end end\n"
    "local spaces = 'x' .. string.rep(' ', 200000) .. 'y'\n"
    "function transform(event)\n"
    "  local k = event.kind\n"
    "  if k == 'trim' then return { v = spaces:match('^%s*(.-)%s*$') } end\n"
    "  if k == 'gsub' then return { v = spaces:gsub('%s*(.-)%s*$', function(x) return x end) } "
    "end\n"
    "  if k == 'find' then\n"
    "    local hay = string.rep('a', 2e6)\n"
    "    for i = 1, 1e9 do hay:find(string.rep('a', 1e5) .. 'b', 1, true) end\n"
    "  end\n"
    "  if k == 'rep' then while true do local big = string.rep('x', 1 << 22) end end\n"
    "  if k == 'spin' then spin() end\n"
    "  if k == 'pcall' then while true do pcall(spin) end end\n"
    "  if k == 'coroutine' then return { v = coroutine.wrap(spin)() } end\n"
    "  return { ok = k }\n"
    "end\n";

static void test_time_limit(void **state)
{
    fixture *f = *state;
    script *s = open_script(f, runaway_script, 64u << 20);
    script_set_instruction_limit(s, 0); /* only the time limit */
    script_set_timeout(s, 100);
    static const char *const kinds[] = {"trim", "gsub",  "find",     "rep",
                                        "spin", "pcall", "coroutine"};
    outcome o = {0};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        char event[64];
        snprintf(event, sizeof event, "{\"kind\":\"%s\"}", kinds[i]);
        script_event ev = event_of(event);
        process(s, &ev, &o);
        if (o.result != SCRIPT_LUA_ERROR ||
            !strstr(o.err, "transform ran past its time limit of 100 ms (--lua-timeout)"))
            fail_msg("%s: got %s, error \"%s\"", kinds[i], result_name(o.result), o.err);
        assert_int_equal(o.nrows, 0);
        ev = event_of("{\"kind\":\"next\"}");
        process(s, &ev, &o);
        assert_int_equal(o.result, SCRIPT_ROWS);
        assert_string_equal(o.rows.data, "events\t{\"ok\":\"next\"}\n");
    }
    /* many short events in a row: none is stopped */
    for (int i = 0; i < 20000; i++) {
        script_event ev = event_of("{\"kind\":\"short\"}");
        process(s, &ev, &o);
        assert_int_equal(o.result, SCRIPT_ROWS);
    }
    strbuf_free(&o.rows);
}

/* An on_row failure fails the event with the callback's message. */
static int refuse_audit(void *ud, const char *table, lua_State *L, int idx, char *err,
                        size_t errlen)
{
    if (strcmp(table, "audit") == 0) {
        snprintf(err, errlen, "table %s is not allowed", table);
        return -1;
    }
    return collect_row(ud, table, L, idx, err, errlen);
}

static void test_row_callback_error(void **state)
{
    fixture *f = *state;
    script *s = open_script(f, dispatch_script, 0);
    strbuf rows = {0};
    strbuf_puts(&rows, "");
    char err[256];
    size_t n = 0;
    script_event ev = event_of("{\"kind\":\"emit\",\"id\":5}");
    assert_int_equal(script_process(s, &ev, "events", refuse_audit, &rows, &n, err, sizeof err),
                     SCRIPT_LUA_ERROR);
    assert_string_equal(err, "table audit is not allowed");
    assert_int_equal(n, 1); /* delivered before the failure: the caller discards them */
    assert_string_equal(rows.data, "events\t{\"id\":5}\n");
    strbuf_reset(&rows);
    ev = event_of("{\"kind\":\"row\",\"id\":6}");
    assert_int_equal(script_process(s, &ev, "other", refuse_audit, &rows, &n, err, sizeof err),
                     SCRIPT_ROWS);
    assert_int_equal(n, 1);
    assert_string_equal(rows.data, "other\t{\"id\":6}\n");
    strbuf_free(&rows);
}

/* ---- the key's size limit ---- */

/* --max-event-bytes covers the key as well as the value: a larger key is not decoded and the
 * event is a decode error naming the key and the limit, for transform and tombstone(meta)
 * alike; a key within the limit is decoded as before. A key deep inside a "schema" envelope is
 * refused by the decoder's depth limit and arrives as its raw bytes, without the memory that
 * used to grow with the square of its depth. */
static void test_key_limit(void **state)
{
    fixture *f = *state;
    script *s = open_script(f,
                            "function transform(event, meta)\n"
                            "  return { t = type(meta.key), n = #tostring(meta.key) }\n"
                            "end\n"
                            "function tombstone(meta) return { gone = type(meta.key) } end\n",
                            0);
    config cfg;
    config_init(&cfg);
    cfg.max_event_bytes = 1024;
    script_apply_config(s, &cfg); /* how the CLI and a reload set it */
    config_free(&cfg);
    strbuf key = {0};
    strbuf_putc(&key, '"');
    for (int i = 0; i < 1022; i++)
        strbuf_putc(&key, 'k');
    strbuf_putc(&key, '"');
    outcome o = {0};
    script_event ev = event_of("{\"op\":\"c\"}");
    ev.key = key.data;
    ev.key_len = key.len; /* 1024: the limit itself */
    process(s, &ev, &o);
    assert_int_equal(o.result, SCRIPT_ROWS);
    assert_string_equal(o.rows.data, "events\t{\"n\":1022,\"t\":\"string\"}\n");

    strbuf_puts(&key, " "); /* 1025 bytes (JSON whitespace: it would still decode) */
    ev.key = key.data;
    ev.key_len = key.len;
    static const char want[] = "key of 1025 bytes is larger than --max-event-bytes 1024 (the limit "
                               "applies to the key and to the value)";
    process(s, &ev, &o);
    assert_int_equal(o.result, SCRIPT_DECODE_ERROR);
    assert_string_equal(o.err, want);
    assert_int_equal(o.nrows, 0);
    assert_string_equal(o.rows.data, "");
    ev.value = NULL; /* a tombstone's key too */
    process(s, &ev, &o);
    assert_int_equal(o.result, SCRIPT_DECODE_ERROR);
    assert_string_equal(o.err, want);

    /* no cap: decoded again */
    script_set_max_key_bytes(s, 0);
    process(s, &ev, &o);
    assert_int_equal(o.result, SCRIPT_ROWS);
    assert_string_equal(o.rows.data, "events\t{\"gone\":\"string\"}\n");

    /* 400,000 levels inside a key's envelope schema (800 KB): raw bytes, memory flat */
    strbuf_reset(&key);
    strbuf_puts(&key, "{\"payload\":{\"id\":1},\"schema\":");
    for (int i = 0; i < 400000; i++)
        strbuf_putc(&key, '[');
    for (int i = 0; i < 400000; i++)
        strbuf_putc(&key, ']');
    strbuf_putc(&key, '}');
    script_set_max_key_bytes(s, 1u << 20);
    ev = event_of("{\"op\":\"c\"}");
    ev.key = key.data;
    ev.key_len = key.len;
    struct rusage before, after;
    getrusage(RUSAGE_SELF, &before);
    process(s, &ev, &o);
    getrusage(RUSAGE_SELF, &after);
    assert_int_equal(o.result, SCRIPT_ROWS);
    char want_rows[80];
    snprintf(want_rows, sizeof want_rows, "events\t{\"n\":%zu,\"t\":\"string\"}\n", key.len);
    assert_string_equal(o.rows.data, want_rows);
    if (after.ru_maxrss - before.ru_maxrss > 32 * 1024)
        fail_msg("a deep key raised the peak RSS by %ld KiB", after.ru_maxrss - before.ru_maxrss);
    strbuf_free(&key);
    strbuf_free(&o.rows);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        script_fixture_test(test_dispatch),
        script_fixture_test(test_tombstone),
        script_fixture_test(test_tombstone_handler),
        script_fixture_test(test_meta),
        script_fixture_test(test_meta_headers),
        script_fixture_test(test_key_limit),
        script_fixture_test(test_value_length),
        script_fixture_test(test_debezium_only),
        script_fixture_test(test_default_pipeline),
        script_fixture_test(test_default_pipeline_fixture),
        script_fixture_test(test_lazy_event),
        script_fixture_test(test_source_ts_ms),
        script_fixture_test(test_ddl),
        script_fixture_test(test_open_errors),
        script_fixture_test(test_require_beside),
        script_fixture_test(test_require_not_from_cwd),
        script_fixture_test(test_load_text_only),
        script_fixture_test(test_memory_limit),
        script_fixture_test(test_instruction_limit),
        script_fixture_test(test_budget_cannot_be_escaped),
        script_fixture_test(test_time_limit),
        script_fixture_test(test_row_callback_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
