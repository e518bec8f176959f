/*
 * fuzz_decode — libFuzzer target for the decoder: JSON text and the Kafka Connect envelope into
 * Lua (include/cdcpipe/json_lua.h), and the whole per-event path script_process
 * (include/cdcpipe/script.h) with the fixed transform below, whose rows go through row_json.
 *
 * Input: the record's value, optionally followed by a NUL byte and the record's key (an input
 * without NUL has no key; an empty input is a tombstone). Per input it checks:
 *   - the fast path (json_fast.h) agrees with the general one (JSON_GENERAL_ONLY): same result,
 *     error text, schema span and value; lazy objects (JSON_LAZY) hold the eager values;
 *   - json_decoder_push with each combination of JSON_UNWRAP_ENVELOPE and JSON_OBJECT_ONLY keeps
 *     its stack contract, and the results agree with the plain decode: JSON_OBJECT_ONLY accepts
 *     exactly the objects; an envelope (schema and payload) yields exactly its payload, however
 *     the envelope fast path or the general path found it; a schema without payload fails;
 *   - what a JSON_LAZY decode reports of source.ts_ms (json_decoder_source_ts_ms, read while a
 *     lazy "source" object is skipped) is what the eager table holds;
 *   - script_process leaves the Lua stack as it was, returns a result consistent with the decode
 *     (decode errors exactly when the value is not a JSON object / envelope of one, except that
 *     JSON null and an envelope whose payload is null are tombstones), a message
 *     for every error, and a row count equal to the rows delivered; with --input debezium
 *     (script_set_debezium_only) the same, or a decode refusal naming a non-change event;
 *   - json_skip_container (the envelope schema's structural skip) ends at the same byte with
 *     AVX2 as with SSE2 (json_fast_use_avx2), at a few depth limits.
 *
 * README: built only with -DCDCPIPE_FUZZ=ON and clang (see tests/fuzz/CMakeLists.txt); run it by
 * hand as  build-fuzz/tests/fuzz/fuzz_decode -dict=tests/fuzz/json.dict CORPUS_DIR
 * tests/fuzz/corpus and replay a finding as  build-fuzz/tests/fuzz/fuzz_decode
 * tests/fuzz/crashes/FILE
 */
#include <lauxlib.h>
#include <lualib.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cdcpipe/json_fast.h"
#include "cdcpipe/json_lua.h"
#include "cdcpipe/row_json.h"
#include "cdcpipe/script.h"
#include "cdcpipe/strbuf.h"
#include "fuzz_common.h"

/* The transform: every column of the row image copied, and every cdc.* helper that takes such a
 * value tried on it (argument variants picked by the column name, so the fuzzer chooses them);
 * the schema functions (cdc.auto, cdc.schema, cdc.field_type, cdc.field_schema) on the event's
 * own schema; helper errors are caught so one bad column does not hide the rest. Deletes also emit
 * a row to a second table, snapshot reads return a list of two rows, truncates are filtered.
 * Made-up ops reach the failure paths: "x" raises the event itself as the error, "e" calls a helper
 * with fields of the event unprotected, "emit" emits to a table named by a field, "ret" returns a
 * field as the result, "loop" runs out of instructions, "mem" out of memory (the cap is 8 MiB). */
static const char transform_lua[] =
    "local cdc = require 'cdcpipe'\n"
    "local units = { 's', 'ms', 'us', 'ns', 'days' }\n"
    "local helpers = {\n"
    "  number = {\n"
    "    function(v, n) return cdc.datetime(v, units[n % 5 + 1]) end,\n"
    "    function(v) return cdc.date(v) end,\n"
    "    function(v, n) return cdc.time(v, units[n % 5 + 1], n % 12 - 1) end,\n"
    "    function(v, n) return cdc.datetime64(v, units[n % 5 + 1], n % 12 - 1) end,\n"
    "    function(v, n) return cdc.interval(v, n % 2 == 0 and 'iso' or 'seconds') end,\n"
    "  },\n"
    "  string = {\n"
    "    function(v) return cdc.decimal(v) end,\n"
    "    function(v, n) return cdc.decimal(v, n % 40 - 20) end,\n"
    "    function(v) return cdc.datetime(v) end,\n"
    "    function(v, n) return cdc.datetime64(v, nil, n % 12 - 1) end,\n"
    "    function(v, n) return cdc.time(v, nil, n % 12 - 1) end,\n"
    "    function(v, n) return cdc.epoch(v, units[n % 5 + 1]) end,\n"
    "    function(v) return cdc.interval(v) end,\n"
    "    function(v) return cdc.uuid(v) end,\n"
    "    function(v) return cdc.bytes(v) end,\n"
    "    function(v, n) return cdc.bytes(v, n % 2 == 0 and 'hex' or 'base64-url-safe', 'hex') "
    "end,\n"
    "    function(v, n) return cdc.bits(v, n % 3 == 0 and nil or n) end,\n"
    "    function(v) return cdc.is_unavailable(v) end,\n"
    "  },\n"
    "  table = {\n"
    "    function(v) return cdc.decimal(v) end,\n"
    "    function(v) return cdc.json(v) end,\n"
    "    function(v) return cdc.is_unavailable(v) end,\n"
    "  },\n"
    "}\n"
    "function transform(event, meta)\n"
    "  local op = event.op or event.__op\n"
    "  if op == 't' then return nil end\n"
    "  if op == 'x' then error(event) end\n"
    "  if op == 'e' then return { v = cdc.decimal(event.v, event.scale) } end\n"
    "  if op == 'emit' then cdc.emit(event.table, event.row) return event.ret end\n"
    "  if op == 'ret' then return event.ret end\n"
    "  if op == 'loop' then while true do end end\n"
    "  if op == 'mem' then local t = { 'x' } while true do t[#t + 1] = t[#t] .. t[#t] end end\n"
    "  local section = event.after and 'after' or event.before and 'before' or nil\n"
    "  local image = section and event[section] or event\n"
    "  if type(image) ~= 'table' then image = { value = image } end\n"
    "  local row = { _op = op, _offset = meta.offset, _key = meta.key, _topic = meta.topic }\n"
    "  local ok, auto = pcall(cdc.auto, event, section)\n"
    "  if ok then row._auto = auto end\n"
    "  local ok2, schema = pcall(cdc.schema, event)\n"
    "  if ok2 and type(schema) == 'table' then row._schema = schema.name end\n"
    "  for k, v in pairs(image) do\n"
    "    if type(k) == 'string' then\n"
    "      row[k] = v\n"
    "      local ok3, t = pcall(cdc.field_type, event, section, k)\n"
    "      if ok3 then row[k .. '#type'] = t end\n"
    "      local ok4, fs = pcall(cdc.field_schema, event, section, k)\n"
    "      if ok4 and type(fs) == 'table' then row[k .. '#optional'] = fs.optional end\n"
    "      local fns = helpers[type(v)]\n"
    "      for i = 1, fns and #fns or 0 do\n"
    "        local ok, out = pcall(fns[i], v, #k)\n"
    "        if ok and out ~= nil then row[k .. '#' .. i] = out end\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "  if type(event.source) == 'table' then\n"
    "    local ok, ts = pcall(cdc.datetime, event.source.ts_ms)\n"
    "    if ok then row._ts = ts end\n"
    "  end\n"
    "  if op == 'd' then cdc.emit('deletes', { key = meta.key, before = event.before or cdc.null "
    "}) end\n"
    "  if op == 'r' then return { row, { _op = op, _image = image } } end\n"
    "  return row\n"
    "end\n";

/* libFuzzer runs a slow leak check after every input whose mallocs and frees differ, so what
 * Lua allocates for an input is freed in the same run: the plain state is new per input, the
 * script (costly to load: opened once, like the pipeline does) is fully collected after each. */
static lua_State *plain; /* for json_decoder_push directly */
static json_decoder *decoder;
static script *pipeline; /* transform_lua, for script_process */
static strbuf row_text;  /* rows as row_json_append writes them (unsorted) */
static strbuf row_lines; /* rows as row_json_append_line writes them (sorted) */

static void write_script(const char *path)
{
    FILE *fp = fopen(path, "w");
    if (!fp || fputs(transform_lua, fp) == EOF || fclose(fp) != 0)
        fuzz_fail("cannot write %s", path);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    decoder = json_decoder_new();
    if (!decoder) fuzz_fail("out of memory");
    /* in the working directory (ctest: the build's tests/fuzz), removed again at once */
    char dir[] = "cdcpipe-fuzz-XXXXXX", path[64], err[1024];
    if (!mkdtemp(dir)) fuzz_fail("mkdtemp failed");
    snprintf(path, sizeof path, "%s/pipeline.lua", dir);
    write_script(path);
    pipeline = script_open(path, 8u << 20, err, sizeof err);
    unlink(path);
    rmdir(dir);
    if (!pipeline) fuzz_fail("script_open: %s", err);
    script_set_instruction_limit(pipeline, 1000000);
    return 0;
}

/* ---- json_decoder_push ---- */

/* Exact dump: integers and floats apart, every float bit, strings as bytes, tables as sorted
 * key/value pairs. */
static int dump_exact(strbuf *out, lua_State *L, int idx, int depth, void *ud)
{
    size_t len;
    const char *s;
    switch (lua_type(L, idx)) {
    case LUA_TNIL:
        strbuf_putc(out, 'n');
        return 0;
    case LUA_TBOOLEAN:
        strbuf_putc(out, lua_toboolean(L, idx) ? 't' : 'f');
        return 0;
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx))
            strbuf_printf(out, "i%lld,", (long long)lua_tointeger(L, idx));
        else
            strbuf_printf(out, "d%a,", (double)lua_tonumber(L, idx));
        return 0;
    case LUA_TSTRING:
        s = lua_tolstring(L, idx, &len);
        fuzz_dump_bytes(out, 's', s, len);
        return 0;
    case LUA_TTABLE:
        json_lazy_fill(L, idx); /* JSON_LAZY: built now, compared like any table */
        return fuzz_dump_pairs(out, L, idx, depth, dump_exact, dump_exact, ud);
    default:
        strbuf_printf(out, "?%s", luaL_typename(L, idx));
        return 0;
    }
}

static void dump_at(strbuf *out, lua_State *L, int idx)
{
    strbuf_reset(out);
    if (dump_exact(out, L, idx, 0, NULL) != 0) fuzz_fail("cannot dump a decoded value");
}

/* true when the first byte after JSON whitespace is '{'. */
static bool starts_with_object(const char *text, size_t len)
{
    size_t i = 0;
    while (i < len && strchr(" \t\n\r\v\f", text[i]) && text[i] != '\0')
        i++;
    return i < len && text[i] == '{';
}

enum { PLAIN, UNWRAP, OBJECT, UNWRAP_OBJECT, NFLAGS };
static const int decode_flags[NFLAGS] = {0, JSON_UNWRAP_ENVELOPE, JSON_OBJECT_ONLY,
                                         JSON_UNWRAP_ENVELOPE | JSON_OBJECT_ONLY};
static const char *const flag_names[NFLAGS] = {"0", "UNWRAP", "OBJECT_ONLY", "UNWRAP|OBJECT_ONLY"};

/* Decodes text with flags (one of decode_flags) | extra and checks that the result is the one
 * the decode without extra gave: rc, error text, schema span, value (at value_idx when rc0 is 0,
 * with dump0 its dump). JSON_GENERAL_ONLY: the fast path takes only what the general path takes,
 * to the same values; JSON_LAZY: lazy tables, once built, hold the same values. */
/* event.source.ts_ms of the table at idx read raw, as script_source_ts_ms gives it: an integer,
 * else -1; with build, a lazy source table is built first. */
static int64_t raw_source_ts(lua_State *L, int idx, bool build)
{
    int64_t ts = -1;
    idx = lua_absindex(L, idx);
    lua_pushliteral(L, "source");
    if (lua_type(L, idx) == LUA_TTABLE && lua_rawget(L, idx) == LUA_TTABLE) {
        if (build) json_lazy_fill(L, -1);
        lua_pushliteral(L, "ts_ms");
        if (lua_rawget(L, -2) == LUA_TNUMBER && lua_isinteger(L, -1)) ts = lua_tointeger(L, -1);
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    return ts;
}

/* What the JSON_LAZY decode on top of the stack says of source.ts_ms (json_decoder_source_ts_ms,
 * as script.c takes it) equals what the eager value at value_idx holds. */
static void check_source_ts(lua_State *L, int value_idx)
{
    int64_t got;
    int state = json_decoder_source_ts_ms(decoder, &got);
    if (state != JSON_SOURCE_TS_FOUND) got = raw_source_ts(L, -1, state == JSON_SOURCE_TS_BUILD);
    int64_t want = raw_source_ts(L, value_idx, false);
    if (got != want)
        fuzz_fail("JSON_LAZY: source.ts_ms %lld (state %d), the eager table's %lld", (long long)got,
                  state, (long long)want);
}

static void check_variant(const char *text, size_t len, int flags, int extra, int rc0,
                          const char *err0, const strbuf *dump0, const char *span0, size_t slen0,
                          int value_idx)
{
    static strbuf other;
    lua_State *L = plain;
    char err[256];
    const char *span;
    size_t slen;
    int rc = fuzz_decode(decoder, L, text, len, flags | extra, err, sizeof err);
    json_decoder_schema_span(decoder, &span, &slen);
    const char *what = extra == JSON_GENERAL_ONLY ? "general path" : "JSON_LAZY";
    if (rc != rc0 || (rc != 0 && strcmp(err, err0) != 0))
        fuzz_fail("%s with flags %d: rc %d (%s), fast/eager rc %d (%s)", what, flags, rc,
                  rc ? err : "ok", rc0, rc0 ? err0 : "ok");
    if (span != span0 || slen != slen0) fuzz_fail("%s: another schema span", what);
    if (rc != 0) return;
    if (lua_type(L, -1) != lua_type(L, value_idx)) fuzz_fail("%s: another type", what);
    if (extra == JSON_LAZY) check_source_ts(L, value_idx);
    dump_at(&other, L, -1);
    if (other.len != dump0->len || memcmp(other.data, dump0->data, other.len) != 0)
        fuzz_fail("%s with flags %d: another value", what, flags);
    lua_pop(L, 1);
}

/* Decodes text with every flag combination and checks them against each other. Returns the
 * result of JSON_UNWRAP_ENVELOPE | JSON_OBJECT_ONLY (what script_process decodes with) and sets
 * *kind: 0 not a table, 1 a table without [1], 2 a table with [1] (a JSON array), and
 * *null_record: the value is a null that script_process takes as a tombstone. */
/* The text is `null` with JSON whitespace around it (and nothing else). */
static bool only_null(const char *text, size_t len)
{
    size_t i = 0;
    while (i < len && text[i] && strchr(" \t\n\v\f\r", text[i]))
        i++;
    if (len - i < 4 || memcmp(text + i, "null", 4) != 0) return false;
    for (i += 4; i < len; i++)
        if (!text[i] || !strchr(" \t\n\v\f\r", text[i])) return false;
    return true;
}

static bool names_payload(const char *text, size_t len)
{
    for (size_t i = 0; i + 9 <= len; i++)
        if (memcmp(text + i, "\"payload\"", 9) == 0) return true;
    return false;
}

static int check_decoder(const char *text, size_t len, int *kind, bool *null_record)
{
    static strbuf dump[NFLAGS], expect, whole;
    lua_State *L = plain;
    int rc[NFLAGS];
    char err[NFLAGS][256];
    lua_settop(L, 0);
    for (int i = 0; i < NFLAGS; i++) {
        const char *span;
        size_t slen;
        rc[i] = fuzz_decode(decoder, L, text, len, decode_flags[i], err[i], sizeof err[i]);
        json_decoder_schema_span(decoder, &span, &slen);
        if (rc[i] != 0) lua_pushnil(L); /* keeps value i at index i + 1 */
        if (rc[i] == 0) dump_at(&dump[i], L, i + 1);
        check_variant(text, len, decode_flags[i], JSON_GENERAL_ONLY, rc[i], err[i], &dump[i], span,
                      slen, i + 1);
        check_variant(text, len, decode_flags[i], JSON_LAZY, rc[i], err[i], &dump[i], span, slen,
                      i + 1);
    }
#define SAME(a, b)                                                                                 \
    do {                                                                                           \
        if (rc[a] != 0 || rc[b] != 0 || dump[a].len != dump[b].len ||                              \
            memcmp(dump[a].data, dump[b].data, dump[a].len) != 0)                                  \
            fuzz_fail("decode with %s and with %s differ: rc %d/%d (%s / %s)", flag_names[a],      \
                      flag_names[b], rc[a], rc[b], rc[a] ? err[a] : "ok", rc[b] ? err[b] : "ok");  \
    } while (0)

    /* OBJECT_ONLY with UNWRAP also requires the envelope's payload to be an object: the two may
     * differ only by that refusal */
#define SAME_UNLESS_PAYLOAD_KIND()                                                                 \
    do {                                                                                           \
        if (!(rc[UNWRAP] == 0 && rc[UNWRAP_OBJECT] != 0 &&                                         \
              strncmp(err[UNWRAP_OBJECT], "payload is not a JSON object (", 30) == 0))             \
            SAME(UNWRAP, UNWRAP_OBJECT);                                                           \
    } while (0)

    if (rc[PLAIN] != 0) {
        if (rc[OBJECT] == 0) fuzz_fail("OBJECT_ONLY accepted what the plain decode rejects");
        /* only the envelope fast path may accept it (the schema is skipped unchecked) */
        if (rc[UNWRAP] == 0 || rc[UNWRAP_OBJECT] == 0) SAME_UNLESS_PAYLOAD_KIND();
    } else {
        bool object = starts_with_object(text, len);
        if (object ? rc[OBJECT] != 0 || lua_type(L, 1) != LUA_TTABLE : rc[OBJECT] == 0)
            fuzz_fail("OBJECT_ONLY: rc %d for a %s (%s)", rc[OBJECT],
                      object ? "JSON object" : "non-object", rc[OBJECT] ? err[OBJECT] : "ok");
        if (object) SAME(PLAIN, OBJECT);
        if (!object) {
            SAME(PLAIN, UNWRAP);
            if (rc[UNWRAP_OBJECT] == 0) fuzz_fail("UNWRAP|OBJECT_ONLY accepted a non-object");
        } else {
            bool has_schema = lua_getfield(L, 1, "schema") != LUA_TNIL;
            bool has_payload = lua_getfield(L, 1, "payload") != LUA_TNIL;
            if (has_payload) dump_at(&expect, L, -1);
            lua_pop(L, 2);
            dump_at(&whole, L, 1);
            bool is_payload = rc[UNWRAP] == 0 && has_payload && dump[UNWRAP].len == expect.len &&
                              memcmp(dump[UNWRAP].data, expect.data, expect.len) == 0;
            bool is_whole = rc[UNWRAP] == 0 && dump[UNWRAP].len == whole.len &&
                            memcmp(dump[UNWRAP].data, whole.data, whole.len) == 0;
            /* "schema": null is absent from the plain table but still makes an envelope */
            bool ok = has_schema && has_payload    ? is_payload
                      : has_schema && !has_payload ? rc[UNWRAP] != 0
                      : has_payload                ? is_payload || is_whole
                                                   : is_whole || rc[UNWRAP] != 0;
            if (!ok)
                fuzz_fail("UNWRAP: schema %d payload %d: rc %d (%s), payload %d, whole %d",
                          has_schema, has_payload, rc[UNWRAP], rc[UNWRAP] ? err[UNWRAP] : "ok",
                          is_payload, is_whole);
            if (rc[UNWRAP] == 0 || rc[UNWRAP_OBJECT] == 0) SAME_UNLESS_PAYLOAD_KIND();
        }
    }
#undef SAME
#undef SAME_UNLESS_PAYLOAD_KIND
    /* a null value that is not Kafka-null: JSON text null, or {"schema":{...},"payload":null}
     * (the envelope decode refuses it; decoded whole, the null member is absent) */
    *null_record = rc[PLAIN] == 0 && lua_isnil(L, PLAIN + 1) && only_null(text, len);
    if (rc[OBJECT] == 0 && rc[UNWRAP_OBJECT] != 0 && names_payload(text, len)) {
        lua_pushnil(L);
        if (lua_next(L, OBJECT + 1) != 0) {
            bool only = lua_type(L, -2) == LUA_TSTRING &&
                        strcmp(lua_tostring(L, -2), "schema") == 0 && lua_istable(L, -1);
            lua_pop(L, 1);
            if (lua_next(L, OBJECT + 1) != 0) {
                only = false;
                lua_pop(L, 2);
            }
            *null_record = only;
        }
    }
    *kind = 0;
    if (rc[UNWRAP_OBJECT] == 0 && lua_type(L, UNWRAP_OBJECT + 1) == LUA_TTABLE)
        *kind = lua_rawgeti(L, UNWRAP_OBJECT + 1, 1) == LUA_TNIL ? 1 : 2;
    lua_settop(L, 0);
    return rc[UNWRAP_OBJECT];
}

/* ---- script_process ---- */

typedef struct {
    size_t delivered;
    size_t keys;
} row_count;

static int count_key(void *ud, const char *key, size_t len, char *err, size_t errlen)
{
    (void)key;
    (void)len;
    (void)err;
    (void)errlen;
    ((row_count *)ud)->keys++;
    return 0;
}

/* script_row_fn: the row as the pipeline (unsorted) and as --dry-run (sorted line) writes it. */
static int on_row(void *ud, const char *table, lua_State *L, int idx, char *err, size_t errlen)
{
    row_count *c = ud;
    int top = lua_gettop(L);
    char e[512] = "";
    if (!table) fuzz_fail("row delivered without a table name");
    if (lua_type(L, idx) != LUA_TTABLE) fuzz_fail("row delivered that is not a table");
    size_t text_len = row_text.len, lines_len = row_lines.len;
    c->keys = 0;
    int rc = row_json_append(&row_text, L, idx, false, count_key, c, e, sizeof e);
    if (lua_gettop(L) != top) fuzz_fail("row_json_append changed the stack");
    if (rc != 0) {
        if (!e[0]) fuzz_fail("row_json_append failed without a message");
        snprintf(err, errlen, "%s", e);
        return -1;
    }
    if (row_text.len <= text_len + 1 || row_text.data[text_len] != '{' ||
        row_text.data[row_text.len - 1] != '}')
        fuzz_fail("row_json_append wrote no object");
    e[0] = '\0';
    if (row_json_append_line(&row_lines, table, L, idx, e, sizeof e) != 0) {
        /* the sorted writer has limits of its own; fuzz_row checks them */
        if (!e[0]) fuzz_fail("row_json_append_line failed without a message");
        if (row_lines.len != lines_len) fuzz_fail("row_json_append_line failed but wrote");
    } else if (row_lines.data[row_lines.len - 1] != '\n') {
        fuzz_fail("row_json_append_line wrote no line");
    }
    if (lua_gettop(L) != top) fuzz_fail("row_json_append_line changed the stack");
    c->delivered++;
    return 0;
}

static void check_script(const fuzz_input *in, bool tombstone, bool null_record, int decode_rc,
                         int kind)
{
    script_event ev = {
        .topic = "fuzz.topic",
        .partition = 3,
        .offset = 42,
        .timestamp_ms = in->tail_len % 2 ? -1 : 1700000000000,
        .key = in->tail,
        .key_len = in->tail_len,
        .value = tombstone ? NULL : in->text,
        .value_len = in->text_len,
    };
    lua_State *L = script_lua(pipeline);
    int top = lua_gettop(L);
    row_count c = {0, 0};
    size_t rows = 99;
    char err[2048];
    strbuf_reset(&row_text);
    strbuf_reset(&row_lines);
    script_result r =
        script_process(pipeline, &ev, "fuzz_rows", on_row, &c, &rows, err, sizeof err);
    if (lua_gettop(L) != top) fuzz_fail("script_process left %d values", lua_gettop(L) - top);
    if (rows != c.delivered)
        fuzz_fail("script_process counted %zu rows, %zu delivered", rows, c.delivered);
    switch (r) {
    case SCRIPT_ROWS:
        if (rows == 0) fuzz_fail("SCRIPT_ROWS without rows");
        break;
    case SCRIPT_FILTERED:
        if (rows != 0) fuzz_fail("SCRIPT_FILTERED with %zu rows", rows);
        break;
    case SCRIPT_TOMBSTONE:
        if (!tombstone && !null_record) fuzz_fail("SCRIPT_TOMBSTONE for a value");
        break;
    case SCRIPT_DECODE_ERROR:
    case SCRIPT_LUA_ERROR:
        if (!err[0]) fuzz_fail("script_process failed (%d) without a message", (int)r);
        break;
    default:
        fuzz_fail("script_process returned %d", (int)r);
    }
    if (tombstone || null_record) { /* the script has no tombstone(meta) */
        if (r != SCRIPT_TOMBSTONE)
            fuzz_fail("a %s was not SCRIPT_TOMBSTONE: %d (%s)",
                      tombstone ? "tombstone" : "null value", (int)r, err);
        return;
    }
    /* The Lua state's memory cap (8 MiB here) is a documented outcome for any large input, decoded
     * or not: inputs up to -max_len (4 MiB) can need more once they are Lua values. */
    if (r == SCRIPT_LUA_ERROR && strncmp(err, "out of memory", 13) == 0) return;
    bool decodes = decode_rc == 0 && kind == 1;
    if (decodes == (r == SCRIPT_DECODE_ERROR))
        fuzz_fail("script_process: result %d (%s) but the value %s a JSON object", (int)r, err,
                  decodes ? "decodes to" : "is not");

    /* --input debezium: the same result, or a refusal saying it is not a change event */
    c = (row_count){0, 0};
    strbuf_reset(&row_text);
    strbuf_reset(&row_lines);
    script_set_debezium_only(pipeline, true);
    script_result strict =
        script_process(pipeline, &ev, "fuzz_rows", on_row, &c, &rows, err, sizeof err);
    script_set_debezium_only(pipeline, false);
    if (lua_gettop(L) != top) fuzz_fail("script_process (debezium only) left values");
    if (strict == SCRIPT_DECODE_ERROR && r != SCRIPT_DECODE_ERROR &&
        strncmp(err, "not a Debezium change event: ", 29) != 0)
        fuzz_fail("debezium only: a decodable value refused with %s", err);
    if (strict != SCRIPT_DECODE_ERROR && strict != r &&
        !(r == SCRIPT_LUA_ERROR || strict == SCRIPT_LUA_ERROR))
        fuzz_fail("debezium only: result %d, %d without", (int)strict, (int)r);
    if (r == SCRIPT_DECODE_ERROR && strict != SCRIPT_DECODE_ERROR)
        fuzz_fail("debezium only: accepted a value that does not decode");
}

/* json_skip_container's two scans agree (where the CPU has AVX2; else both are SSE2). */
static void check_skip(const char *text, size_t len)
{
    if (len == 0 || (text[0] != '{' && text[0] != '[')) return;
    static const int limits[] = {1, 3, JSON_MAX_DEPTH};
    for (size_t i = 0; i < sizeof limits / sizeof limits[0]; i++) {
        json_fast_use_avx2(false);
        const char *sse2 = json_skip_container(text, text + len, limits[i]);
        json_fast_use_avx2(true);
        const char *avx2 = json_skip_container(text, text + len, limits[i]);
        if (sse2 != avx2)
            fuzz_fail("json_skip_container (max depth %d): AVX2 ends at %td, SSE2 at %td",
                      limits[i], avx2 ? avx2 - text : -1, sse2 ? sse2 - text : -1);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_input in = fuzz_split(data, size);
    check_skip(in.text, in.text_len);
    int kind;
    bool null_record = false;
    plain = luaL_newstate();
    if (!plain) fuzz_fail("out of memory");
    int rc = check_decoder(in.text, in.text_len, &kind, &null_record);
    check_script(&in, size == 0, null_record && size != 0, rc, kind);
    lua_close(plain);
    lua_gc(script_lua(pipeline), LUA_GCCOLLECT);
    return 0;
}
