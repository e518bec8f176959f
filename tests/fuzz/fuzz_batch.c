/*
 * fuzz_batch — libFuzzer target for the batches (include/cdcpipe/batch.h): rows with arbitrary
 * keys and values into per-table batches, grouped into events that land all together or not at
 * all, checked against an independent model.
 *
 * Input: JSON text, optionally followed by a NUL byte and a control tail. The text is decoded
 * with json_decoder_push (inputs that do not decode are skipped); a JSON array gives one row per
 * element, anything else is one row. Per row one control byte c is read from the tail (0 once it
 * runs out) and picks:
 *   c & 3    the table: t0, t1, db.t2, t0
 *   c & 4    this row starts a new event (the first row always does)
 *   c & 8    a raw key from the tail: a length byte, then that many bytes (NUL bytes, invalid
 *            UTF-8: what a script can build and JSON cannot carry)
 *   c & 16   a NaN value under "nan" (row_json refuses it, after other columns were noted)
 *   c & 32   wide: a count byte k and a base byte b add k * 8 columns "w<i>" from b * 16 on
 *            (up to 2,040: past BATCH_MAX_COLUMNS)
 *   c & 64   a long key: 200 + a length byte bytes of 'k' (around BATCH_MAX_COLUMN_NAME)
 *   c & 128  at an event's start: every batch is cleared first (a flush)
 * Like the pipeline, each event is marked first, its rows are added until one is refused, and
 * a refused event is rolled back. Checked:
 *   - a row is refused exactly when the model says so: not a table, row_json cannot write it,
 *     more than BATCH_MAX_COLUMNS keys, a key longer than BATCH_MAX_COLUMN_NAME bytes or holding a
 *     NUL byte; a refusal comes with a message, and the Lua stack is left as it was;
 *   - after every event each batch has the model's rows, bytes and columns (a refused event
 *     rolled back exactly); at the end the batches equal the model byte for byte: rows text, line
 *     ends, event numbers, columns (names, lengths, first-seen order, each once), and the columns
 *     batch_columns_of names for single rows and ranges;
 *   - no crash, and ASan/UBSan clean (the batches are freed at the end of every input).
 * The model keeps its column set in a Lua table: independent of batch.c's hash set.
 *
 * README: built only with -DCDCPIPE_FUZZ=ON and clang (see tests/fuzz/CMakeLists.txt); run it by
 * hand as  build-fuzz/tests/fuzz/fuzz_batch -dict=tests/fuzz/json.dict CORPUS_DIR
 * tests/fuzz/corpus and replay a finding as  build-fuzz/tests/fuzz/fuzz_batch FILE
 */
#include <lauxlib.h>
#include <lualib.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cdcpipe/batch.h"
#include "cdcpipe/json_lua.h"
#include "cdcpipe/row_json.h"
#include "cdcpipe/strbuf.h"
#include "fuzz_common.h"

#define NTABLES 3
static const char *const table_names[NTABLES] = {"t0", "t1", "db.t2"};

/* ---- the control tail ---- */

typedef struct {
    const unsigned char *p;
    size_t left;
} tail;

static unsigned next_byte(tail *t)
{
    if (!t->left) return 0;
    t->left--;
    return *t->p++;
}

/* ---- the model: what each batch must hold ---- */

typedef struct {
    strbuf text;
    size_t nrows, rows_cap;
    size_t *row_end;
    uint32_t *row_event;
    size_t *ref_end; /* per row: end of its column numbers in refs */
    uint32_t *refs;
    size_t nrefs, refs_cap;
    strbuf names; /* the columns' names, back to back */
    size_t *name_start, *name_len;
    size_t ncolumns, columns_cap;
    int map; /* stack index of a Lua table: name → column number */
    /* at the event's start */
    size_t s_text, s_rows, s_refs, s_columns, s_names;
} model;

/* Room for index n (at least n + 1 items) in the array p of *cap items. */
static void *grow(void *p, size_t *cap, size_t n, size_t size)
{
    if (n < *cap) return p;
    while (*cap <= n)
        *cap = *cap ? 2 * *cap : 64;
    p = realloc(p, *cap * size);
    if (!p) abort();
    return p;
}

static void model_snapshot(model *m)
{
    m->s_text = m->text.len;
    m->s_rows = m->nrows;
    m->s_refs = m->nrefs;
    m->s_columns = m->ncolumns;
    m->s_names = m->names.len;
}

static void model_rollback(lua_State *L, model *m)
{
    for (size_t c = m->s_columns; c < m->ncolumns; c++) {
        lua_pushlstring(L, m->names.data + m->name_start[c], m->name_len[c]);
        lua_pushnil(L);
        lua_rawset(L, m->map);
    }
    strbuf_truncate(&m->text, m->s_text);
    strbuf_truncate(&m->names, m->s_names);
    m->nrows = m->s_rows;
    m->nrefs = m->s_refs;
    m->ncolumns = m->s_columns;
}

static void model_clear(lua_State *L, model *m)
{
    strbuf_reset(&m->text);
    strbuf_reset(&m->names);
    m->nrows = m->nrefs = m->ncolumns = 0;
    lua_newtable(L);
    lua_replace(L, m->map);
    model_snapshot(m);
}

static void model_free(model *m)
{
    strbuf_free(&m->text);
    strbuf_free(&m->names);
    free(m->row_end);
    free(m->row_event);
    free(m->ref_end);
    free(m->refs);
    free(m->name_start);
    free(m->name_len);
}

/* Does the row at idx pass? With add, also appends it to the model. Decided from the limits in
 * batch.h and row_json's own verdict (no callback), not from batch.c's code. */
static bool model_row(lua_State *L, model *m, int idx, uint32_t event, bool add)
{
    static strbuf line;
    char err[512];
    if (lua_type(L, idx) != LUA_TTABLE) return false;
    strbuf_reset(&line);
    if (row_json_append(&line, L, idx, false, NULL, NULL, err, sizeof err) != 0) return false;
    size_t keys = 0;
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        lua_pop(L, 1);
        size_t len;
        const char *key = lua_tolstring(L, -1, &len); /* a string: row_json wrote it */
        if (++keys > BATCH_MAX_COLUMNS || len > BATCH_MAX_COLUMN_NAME || memchr(key, 0, len)) {
            lua_pop(L, 1);
            return false;
        }
    }
    if (!add) return true;
    strbuf_append(&m->text, line.data ? line.data : "", line.len);
    strbuf_putc(&m->text, '\n');
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) { /* the order row_json met the keys in */
        lua_pop(L, 1);
        size_t len, c;
        const char *key = lua_tolstring(L, -1, &len);
        lua_pushvalue(L, -1);
        if (lua_rawget(L, m->map) == LUA_TNUMBER) {
            c = (size_t)lua_tointeger(L, -1);
            lua_pop(L, 1);
        } else {
            lua_pop(L, 1);
            c = m->ncolumns;
            if (c == m->columns_cap) {
                m->columns_cap = m->columns_cap ? 2 * m->columns_cap : 64;
                m->name_start = realloc(m->name_start, m->columns_cap * sizeof *m->name_start);
                m->name_len = realloc(m->name_len, m->columns_cap * sizeof *m->name_len);
                if (!m->name_start || !m->name_len) abort();
            }
            m->name_start[c] = m->names.len;
            m->name_len[c] = len;
            strbuf_append(&m->names, key, len);
            m->ncolumns++;
            lua_pushvalue(L, -1);
            lua_pushinteger(L, (lua_Integer)c);
            lua_rawset(L, m->map);
        }
        m->refs = grow(m->refs, &m->refs_cap, m->nrefs, sizeof *m->refs);
        m->refs[m->nrefs++] = (uint32_t)c;
    }
    if (m->nrows == m->rows_cap) {
        m->rows_cap = m->rows_cap ? 2 * m->rows_cap : 64;
        m->row_end = realloc(m->row_end, m->rows_cap * sizeof *m->row_end);
        m->row_event = realloc(m->row_event, m->rows_cap * sizeof *m->row_event);
        m->ref_end = realloc(m->ref_end, m->rows_cap * sizeof *m->ref_end);
        if (!m->row_end || !m->row_event || !m->ref_end) abort();
    }
    m->row_end[m->nrows] = m->text.len;
    m->row_event[m->nrows] = event;
    m->ref_end[m->nrows] = m->nrefs;
    m->nrows++;
    return true;
}

/* ---- comparing batches with the model ---- */

static batch *batch_of(batch_set *set, const char *table)
{
    for (size_t i = 0; i < set->count; i++)
        if (strcmp(set->items[i].table, table) == 0) return &set->items[i];
    return NULL;
}

/* Rows, bytes and columns: after every row and rollback. */
static void check_quick(const batch *b, const model *m, const char *table)
{
    size_t nrows = b ? b->nrows : 0, len = b ? b->rows.len : 0, ncolumns = b ? b->ncolumns : 0;
    if (nrows != m->nrows || len != m->text.len || ncolumns != m->ncolumns)
        fuzz_fail("%s: batch has %zu rows, %zu bytes, %zu columns; model %zu, %zu, %zu", table,
                  nrows, len, ncolumns, m->nrows, m->text.len, m->ncolumns);
    if (b && (b->opened_ms < 0) != (b->nrows == 0))
        fuzz_fail("%s: opened_ms %lld with %zu rows", table, (long long)b->opened_ms, b->nrows);
}

/* batch_columns_of(first, end) against the model's columns of those rows, in column order. */
static void check_range(const batch *b, const model *m, size_t first, size_t end)
{
    static char **names;
    static size_t names_cap;
    static unsigned char *used;
    static size_t used_cap;
    names = grow(names, &names_cap, b->ncolumns + 1, sizeof *names);
    used = grow(used, &used_cap, m->ncolumns + 1, 1);
    size_t n = batch_columns_of(b, first, end, names);
    memset(used, 0, m->ncolumns + 1);
    size_t from = first ? m->ref_end[first - 1] : 0, to = end ? m->ref_end[end - 1] : 0;
    for (size_t k = from; k < to && first < end; k++)
        used[m->refs[k]] = 1;
    size_t want = 0;
    for (size_t c = 0; c < m->ncolumns; c++) {
        if (!used[c]) continue;
        if (want >= n || strlen(names[want]) != m->name_len[c] ||
            memcmp(names[want], m->names.data + m->name_start[c], m->name_len[c]) != 0)
            fuzz_fail("%s: batch_columns_of(%zu, %zu): column %zu differs from the model", b->table,
                      first, end, want);
        want++;
    }
    if (want != n)
        fuzz_fail("%s: batch_columns_of(%zu, %zu) named %zu columns, the model %zu", b->table,
                  first, end, n, want);
}

/* Everything, byte for byte (at the end of an input). */
static void check_full(const batch *b, const model *m, const char *table, tail *t)
{
    check_quick(b, m, table);
    if (!b) return;
    if (m->text.len && memcmp(b->rows.data, m->text.data, m->text.len) != 0)
        fuzz_fail("%s: rows differ from the model", table);
    for (size_t r = 0; r < m->nrows; r++)
        if (b->row_end[r] != m->row_end[r] || b->row_event[r] != m->row_event[r])
            fuzz_fail("%s: row %zu ends at %zu (event %u), the model %zu (%u)", table, r,
                      b->row_end[r], b->row_event[r], m->row_end[r], m->row_event[r]);
    for (size_t c = 0; c < m->ncolumns; c++) {
        if (b->column_len[c] != m->name_len[c] ||
            memcmp(b->columns[c], m->names.data + m->name_start[c], m->name_len[c]) != 0 ||
            b->columns[c][b->column_len[c]] != '\0')
            fuzz_fail("%s: column %zu differs from the model", table, c);
    }
    check_range(b, m, 0, m->nrows);
    /* single rows (at most 64, spread out) and ranges chosen by what is left of the tail */
    size_t step = m->nrows / 64 + 1;
    for (size_t r = 0; r < m->nrows; r += step)
        check_range(b, m, r, r + 1);
    for (int i = 0; i < 8 && m->nrows; i++) {
        size_t a = (next_byte(t) * 256u + next_byte(t)) % m->nrows;
        size_t e = a + 1 + (next_byte(t) * 256u + next_byte(t)) % (m->nrows - a);
        check_range(b, m, a, e);
    }
}

/* ---- one input ---- */

/* Applies the row's control bits to the row at idx (a table). */
static void decorate(lua_State *L, int idx, unsigned c, tail *t)
{
    if (c & 8) {
        size_t n = next_byte(t);
        if (n > t->left) n = t->left;
        lua_pushlstring(L, (const char *)t->p, n);
        t->p += n;
        t->left -= n;
        lua_pushinteger(L, 1);
        lua_rawset(L, idx);
    }
    if (c & 16) {
        lua_pushnumber(L, (lua_Number)NAN);
        lua_setfield(L, idx, "nan");
    }
    if (c & 32) {
        unsigned k = next_byte(t) * 8, base = next_byte(t) * 16;
        for (unsigned i = 0; i < k; i++) {
            lua_pushfstring(L, "w%d", (int)(base + i));
            lua_pushinteger(L, (lua_Integer)i);
            lua_rawset(L, idx);
        }
    }
    if (c & 64) {
        size_t n = 200 + next_byte(t);
        char key[512];
        memset(key, 'k', n);
        lua_pushlstring(L, key, n);
        lua_pushboolean(L, 1);
        lua_rawset(L, idx);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_input in = fuzz_split(data, size);
    tail t = {(const unsigned char *)in.tail, in.tail_len};
    char err[512];
    /* a Lua state of its own per input, closed at the end (see fuzz_row.c) */
    lua_State *L = luaL_newstate();
    if (!L) fuzz_fail("out of memory");
    if (fuzz_decode(NULL, L, in.text, in.text_len, 0, err, sizeof err) != 0) {
        lua_close(L);
        return 0;
    }
    /* 1: the decoded value; 2..: the models' maps */
    if (!lua_checkstack(L, NTABLES + 8)) fuzz_fail("Lua stack exhausted");
    model models[NTABLES];
    memset(models, 0, sizeof models);
    for (int i = 0; i < NTABLES; i++) {
        lua_newtable(L);
        models[i].map = lua_gettop(L);
    }
    int base = lua_gettop(L);
    bool list = lua_type(L, 1) == LUA_TTABLE && lua_rawgeti(L, 1, 1) != LUA_TNIL;
    if (lua_type(L, 1) == LUA_TTABLE) lua_pop(L, 1);
    lua_Integer nrows = list ? (lua_Integer)lua_rawlen(L, 1) : 1;

    batch_set set = {0};
    uint32_t event = 0;
    bool refused = false; /* the current event was refused: skip its remaining rows */
    for (lua_Integer r = 1; r <= nrows; r++) {
        unsigned c = next_byte(&t);
        if (r == 1 || (c & 4)) { /* a new event */
            if (r > 1) event++;
            refused = false;
            if (c & 128) {
                for (size_t i = 0; i < set.count; i++)
                    batch_clear(&set.items[i]);
                for (int i = 0; i < NTABLES; i++)
                    model_clear(L, &models[i]);
            }
            batch_set_mark(&set);
            for (int i = 0; i < NTABLES; i++)
                model_snapshot(&models[i]);
        }
        if (list)
            lua_rawgeti(L, 1, r);
        else
            lua_pushvalue(L, 1);
        int row = lua_gettop(L);
        if (lua_type(L, row) == LUA_TTABLE) decorate(L, row, c, &t);
        if (refused) {
            lua_settop(L, base);
            continue;
        }
        int which = (int)(c & 3) % NTABLES;
        model *m = &models[which];
        bool pass = model_row(L, m, row, event, false);
        if (lua_gettop(L) != row) fuzz_fail("the model changed the stack");
        err[0] = '\0';
        int rc = batch_set_add_row(&set, table_names[which], L, row, event, err, sizeof err);
        if (lua_gettop(L) != row) fuzz_fail("batch_set_add_row changed the stack (%d)", rc);
        if (rc != 0 && rc != -1) fuzz_fail("batch_set_add_row returned %d", rc);
        if (rc == 0 && !pass) fuzz_fail("batch_set_add_row took a row the model refuses");
        if (rc != 0 && pass) fuzz_fail("batch_set_add_row refused a valid row: %s", err);
        if (rc != 0 && (!err[0] || strlen(err) >= sizeof err - 1))
            fuzz_fail("batch_set_add_row failed without a message (or a cut one): %s", err);
        if (rc == 0) {
            model_row(L, m, row, event, true);
        } else { /* as the pipeline does: the event's rows go, the event is dead-lettered */
            refused = true;
            batch_set_rollback(&set);
            for (int i = 0; i < NTABLES; i++)
                model_rollback(L, &models[i]);
        }
        for (int i = 0; i < NTABLES; i++)
            check_quick(batch_of(&set, table_names[i]), &models[i], table_names[i]);
        lua_settop(L, base);
    }
    for (int i = 0; i < NTABLES; i++)
        check_full(batch_of(&set, table_names[i]), &models[i], table_names[i], &t);
    batch_set_free(&set);
    for (int i = 0; i < NTABLES; i++)
        model_free(&models[i]);
    lua_close(L);
    return 0;
}
