/*
 * test_batch — tests for src/batch.c (include/cdcpipe/batch.h): rows into per-table batches,
 * the column list an INSERT names, mark/rollback (an event's rows land all together or not at
 * all) and the limits on a row's columns; RowBinary batches, one per table and set of columns
 * the rows set, with mark/rollback across them.
 *
 * Rows are Lua tables built from Lua expressions; the batch's own fields (rows text, columns and
 * their lengths) are what the pipeline reads, so the tests compare them exactly.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "cdcpipe/batch.h"
#include "cdcpipe/ch_type.h"
#include "cdcpipe/strbuf.h"

typedef struct {
    lua_State *L;
    batch_set set;
    char err[512];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (!f) return -1;
    f->L = luaL_newstate();
    if (!f->L) return -1;
    luaL_openlibs(f->L);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    batch_set_free(&f->set);
    lua_close(f->L);
    free(f);
    return 0;
}

/* Evaluates the Lua expression (it may use `string`, `table`, loops in a function) and adds the
 * resulting row to `table` as event `event`. Returns batch_set_add_row's result; the Lua stack
 * is left as it was. */
static int add(fixture *f, const char *table, uint32_t event, const char *expr)
{
    strbuf chunk = {0};
    strbuf_printf(&chunk, "return %s", expr);
    if (luaL_dostring(f->L, chunk.data) != LUA_OK) fail_msg("%s: %s", expr, lua_tostring(f->L, -1));
    strbuf_free(&chunk);
    int top = lua_gettop(f->L);
    f->err[0] = '\0';
    int rc = batch_set_add_row(&f->set, table, f->L, -1, event, f->err, sizeof f->err);
    assert_int_equal(lua_gettop(f->L), top);
    if (rc != 0 && !f->err[0]) fail_msg("batch_set_add_row failed without a message");
    lua_pop(f->L, 1);
    return rc;
}

static batch *find(fixture *f, const char *table)
{
    for (size_t i = 0; i < f->set.count; i++)
        if (strcmp(f->set.items[i].table, table) == 0) return &f->set.items[i];
    fail_msg("no batch for %s", table);
    return NULL;
}

/* The batch's columns joined with ",". */
static char *columns(const batch *b)
{
    strbuf s = {0};
    strbuf_puts(&s, "");
    for (size_t i = 0; i < b->ncolumns; i++) {
        if (i) strbuf_putc(&s, ',');
        assert_int_equal(b->column_len[i], strlen(b->columns[i]));
        strbuf_append(&s, b->columns[i], b->column_len[i]);
    }
    return s.data;
}

/* batch_columns_of(first, end) joined with ",". */
static char *columns_of(const batch *b, size_t first, size_t end)
{
    char **names = calloc(b->ncolumns + 1, sizeof *names);
    assert_non_null(names);
    size_t n = batch_columns_of(b, first, end, names);
    strbuf s = {0};
    strbuf_puts(&s, "");
    for (size_t i = 0; i < n; i++) {
        if (i) strbuf_putc(&s, ',');
        strbuf_puts(&s, names[i]);
    }
    free(names);
    return s.data;
}

static void expect_columns(const batch *b, const char *want)
{
    char *got = columns(b);
    assert_string_equal(got, want);
    free(got);
}

static void expect_columns_of(const batch *b, size_t first, size_t end, const char *want)
{
    char *got = columns_of(b, first, end);
    if (strcmp(got, want) != 0)
        fail_msg("columns of rows [%zu, %zu): %s, want %s", first, end, got, want);
    free(got);
}

/* ---- rows, columns, mark/rollback ---- */

/* Rows append as JSONEachRow lines; the columns are the union of their keys in first-seen
 * order, each named once. */
static void test_rows_and_columns(void **state)
{
    fixture *f = *state;
    assert_int_equal(add(f, "t", 0, "{id = 1}"), 0);
    assert_int_equal(add(f, "t", 1, "{id = 2, name = 'b'}"), 0);
    assert_int_equal(add(f, "db.u", 1, "{x = true}"), 0);
    assert_int_equal(add(f, "t", 2, "{name = 'c'}"), 0);
    batch *t = find(f, "t"), *u = find(f, "db.u");
    assert_int_equal(t->nrows, 3);
    assert_int_equal(t->row_event[1], 1);
    expect_columns(t, "id,name");
    expect_columns(u, "x");
    assert_true(t->opened_ms >= 0);
    assert_int_equal(batch_set_rows(&f->set), 4);
    assert_int_equal(batch_set_bytes(&f->set), t->rows.len + u->rows.len);
    /* a key that is a prefix of another, or has one, is a column of its own */
    assert_int_equal(add(f, "t", 3, "{ab = 1}"), 0);
    assert_int_equal(add(f, "t", 3, "{a = 1}"), 0);
    assert_int_equal(add(f, "t", 3, "{abc = 1}"), 0);
    expect_columns(t, "id,name,ab,a,abc");
    assert_int_equal(add(f, "t", 4, "{abc = 2, a = 2, ab = 2}"), 0);
    expect_columns(t, "id,name,ab,a,abc");
    assert_int_equal(t->nrows, 7);
    /* line by line */
    assert_int_equal(batch_row_start(t, 0), 0);
    size_t start = batch_row_start(t, 1);
    assert_memory_equal(t->rows.data, "{\"id\":1}\n", start);
}

/* An event's rows are all-or-nothing: after a mark, rows added to existing and new batches, with
 * new columns, are all taken back by a rollback, and the batches take rows again as before. */
static void test_mark_rollback(void **state)
{
    fixture *f = *state;
    assert_int_equal(add(f, "t", 0, "{id = 1}"), 0); /* one new column a row: a known order */
    assert_int_equal(add(f, "t", 0, "{id = 1, a = 'x'}"), 0);
    char *kept = strdup(find(f, "t")->rows.data);
    batch_set_mark(&f->set);
    assert_int_equal(add(f, "t", 1, "{id = 2, b = 'y'}"), 0);
    assert_int_equal(add(f, "t", 1, "{c = 3}"), 0);
    assert_int_equal(add(f, "other", 1, "{z = 1}"), 0);
    batch *t = find(f, "t");
    expect_columns(t, "id,a,b,c");
    /* the event's next row is refused: the caller rolls the event back */
    assert_int_equal(add(f, "t", 1, "{d = 0/0}"), -1);
    expect_columns(t, "id,a,b,c");
    batch_set_rollback(&f->set);
    t = find(f, "t");
    batch *other = find(f, "other");
    assert_int_equal(t->nrows, 2);
    assert_string_equal(t->rows.data, kept);
    free(kept);
    assert_int_equal(t->ncolumns, 2);
    char *all = columns(t);
    expect_columns_of(t, 0, 2, all); /* every column left is used */
    free(all);
    assert_int_equal(other->nrows, 0);
    assert_int_equal(other->ncolumns, 0);
    assert_int_equal(other->opened_ms, -1);
    assert_int_equal(batch_set_oldest_ms(&f->set), t->opened_ms);
    /* the columns taken back are new again, numbered after the ones kept */
    assert_int_equal(add(f, "t", 2, "{c = 1}"), 0);
    assert_int_equal(add(f, "other", 2, "{y = 1}"), 0);
    expect_columns(t, "id,a,c");
    expect_columns(other, "y");
    expect_columns_of(t, 2, 3, "c");
    /* a rollback without anything added since the mark changes nothing */
    batch_set_mark(&f->set);
    batch_set_rollback(&f->set);
    assert_int_equal(t->nrows, 3);
    expect_columns(t, "id,a,c");
    /* cleared: empty, columns forgotten, reusable */
    batch_clear(t);
    assert_int_equal(t->nrows, 0);
    assert_int_equal(t->rows.len, 0);
    assert_int_equal(t->ncolumns, 0);
    assert_int_equal(add(f, "t", 3, "{c = 1}"), 0);
    assert_int_equal(add(f, "t", 3, "{c = 1, id = 2}"), 0);
    expect_columns(t, "c,id");
    assert_int_equal(add(f, "t", 3, "{id = 3}"), 0);
    assert_int_equal(t->ncolumns, 2);
}

/* A row that fails leaves its batch exactly as it was, even after new columns were noted. */
static void test_failed_row_unchanged(void **state)
{
    fixture *f = *state;
    assert_int_equal(add(f, "t", 0, "{id = 1}"), 0);
    batch *t = find(f, "t");
    size_t len = t->rows.len;
    char *before = strdup(t->rows.data);
    assert_int_equal(add(f, "t", 1, "{n1 = 1, n2 = 2, n3 = 3, n4 = 4, bad = print}"), -1);
    assert_string_equal(f->err, "column \"bad\": a function cannot be written to ClickHouse");
    assert_int_equal(t->nrows, 1);
    assert_int_equal(t->rows.len, len);
    assert_string_equal(t->rows.data, before);
    expect_columns(t, "id");
    assert_int_equal(add(f, "t", 1, "{n3 = 3}"), 0);
    expect_columns(t, "id,n3");
    expect_columns_of(t, 1, 2, "n3");
    free(before);
}

/* Each row's own columns are kept, so an INSERT of any range of rows (bisection after a
 * rejection) names exactly the columns those rows have — also past the 64th column (the batch
 * used to count every column past 63 as present in every row, so one unknown column there made
 * ClickHouse reject every row of the batch). */
static void test_columns_past_64(void **state)
{
    fixture *f = *state;
    char expr[64];
    assert_int_equal(add(f, "t", 0, "{id = 0}"), 0); /* row r + 1 has id and c<r> */
    for (int i = 0; i < 100; i++) {
        snprintf(expr, sizeof expr, "{id = %d, c%d = %d}", i, i, i);
        assert_int_equal(add(f, "t", (uint32_t)i, expr), 0);
    }
    batch *t = find(f, "t");
    assert_int_equal(t->ncolumns, 101);
    for (int i = 0; i < 100; i++) {
        char want[32];
        snprintf(want, sizeof want, "id,c%d", i);
        expect_columns_of(t, (size_t)i + 1, (size_t)i + 2, want);
    }
    strbuf want = {0};
    strbuf_puts(&want, "id");
    for (int i = 70; i < 90; i++)
        strbuf_printf(&want, ",c%d", i);
    expect_columns_of(t, 71, 91, want.data);
    strbuf_reset(&want);
    strbuf_puts(&want, "id");
    for (int i = 0; i < 100; i++)
        strbuf_printf(&want, ",c%d", i);
    expect_columns_of(t, 0, 101, want.data);
    strbuf_free(&want);
}

/* 100,000 distinct columns (rows of 1,000) are each found once: a column seen before is not
 * added again, the order is first-seen, and a rollback of thousands of new columns leaves the
 * set intact. With a linear search per key this took minutes; a hash set takes milliseconds. */
static void test_many_columns(void **state)
{
    fixture *f = *state;
    enum { ROWS = 100, WIDTH = 1000 };
    assert_int_equal(luaL_dostring(f->L, "function wide(from, n, prefix)\n"
                                         "  local r = {}\n"
                                         "  for i = from, from + n - 1 do r[prefix .. i] = i end\n"
                                         "  return r\n"
                                         "end\n"),
                     LUA_OK);
    clock_t started = clock();
    char expr[64];
    for (int r = 0; r < ROWS; r++) {
        snprintf(expr, sizeof expr, "wide(%d, %d, 'col_')", r * WIDTH, WIDTH);
        assert_int_equal(add(f, "t", (uint32_t)r, expr), 0);
    }
    /* the same columns again, overlapping two rows' worth each */
    for (int r = 0; r + 1 < ROWS; r += 10) {
        snprintf(expr, sizeof expr, "wide(%d, %d, 'col_')", r * WIDTH + WIDTH / 2, WIDTH);
        assert_int_equal(add(f, "t", (uint32_t)r, expr), 0);
    }
    batch *t = find(f, "t");
    assert_int_equal(t->ncolumns, ROWS * WIDTH);
    /* first-seen order: within a row the table's order, rows in order */
    for (size_t i = 0; i < t->ncolumns; i++) {
        int n = atoi(t->columns[i] + 4);
        assert_true(n / WIDTH == (int)i / WIDTH);
    }
    /* a rollback of 5,000 new columns, then the old ones are still found and new ones added */
    batch_set_mark(&f->set);
    for (int r = 0; r < 5; r++) {
        snprintf(expr, sizeof expr, "wide(%d, %d, 'new_')", r * WIDTH, WIDTH);
        assert_int_equal(add(f, "t", 1000, expr), 0);
    }
    assert_int_equal(t->ncolumns, ROWS * WIDTH + 5 * WIDTH);
    batch_set_rollback(&f->set);
    assert_int_equal(t->ncolumns, ROWS * WIDTH);
    assert_int_equal(add(f, "t", 1001, "wide(0, 1000, 'col_')"), 0);
    assert_int_equal(add(f, "t", 1002, "wide(4000, 1000, 'new_')"), 0);
    assert_int_equal(t->ncolumns, ROWS * WIDTH + WIDTH);
    assert_int_equal(strncmp(t->columns[ROWS * WIDTH], "new_", 4), 0);
    double seconds = (double)(clock() - started) / CLOCKS_PER_SEC;
    if (seconds > 5) fail_msg("%d columns took %.1f s of CPU", ROWS * WIDTH, seconds);
}

/* ---- what a row may not have ---- */

/* A key with a NUL byte used to be read past its end (strncmp, then col[len]) and cut at the NUL
 * in the column list; it is refused now, the NUL shown escaped, and the batch is unchanged. */
static void test_nul_key(void **state)
{
    fixture *f = *state;
    assert_int_equal(add(f, "t", 0, "{id = 1}"), 0);
    assert_int_equal(add(f, "t", 0, "{id = 1, na = 2}"), 0);
    batch *t = find(f, "t");
    size_t len = t->rows.len;
    assert_int_equal(add(f, "t", 1, "{['na\\0me'] = 'x'}"), -1);
    assert_string_equal(f->err, "row for table t: column name \"na\\x00me\" holds a NUL byte, "
                                "which no ClickHouse column name can");
    assert_int_equal(add(f, "t", 1, "{['\\0'] = 1}"), -1);
    assert_string_equal(f->err, "row for table t: column name \"\\x00\" holds a NUL byte, which "
                                "no ClickHouse column name can");
    /* the audit's case: "a\0b" beside "a" (the column list read "a, a") */
    assert_int_equal(add(f, "t", 2, "{['a\\0b'] = 1, a = 2}"), -1);
    assert_non_null(strstr(f->err, "\"a\\x00b\" holds a NUL byte"));
    assert_int_equal(t->nrows, 2);
    assert_int_equal(t->rows.len, len);
    expect_columns(t, "id,na");
    /* NUL bytes in values are data, not names */
    assert_int_equal(add(f, "t", 3, "{na = 'a\\0b', nested = {['x\\0y'] = 1}}"), 0);
    expect_columns(t, "id,na,nested");
}

/* At most BATCH_MAX_COLUMNS columns per row and BATCH_MAX_COLUMN_NAME bytes per name; the
 * messages name the limit and the column (escaped, cut after 48 bytes). */
static void test_column_caps(void **state)
{
    fixture *f = *state;
    assert_int_equal(BATCH_MAX_COLUMNS, 1000);
    assert_int_equal(BATCH_MAX_COLUMN_NAME, 256);
    assert_int_equal(luaL_dostring(f->L, "function wide(n)\n"
                                         "  local r = {}\n"
                                         "  for i = 1, n do r['c' .. i] = i end\n"
                                         "  return r\n"
                                         "end\n"),
                     LUA_OK);
    assert_int_equal(add(f, "t", 0, "wide(1000)"), 0);
    batch *t = find(f, "t");
    assert_int_equal(t->ncolumns, 1000);
    size_t len = t->rows.len;
    assert_int_equal(add(f, "t", 1, "wide(1001)"), -1);
    static const char prefix[] =
        "row for table t has more than 1000 columns (the limit per row): column 1001 is \"c";
    if (strncmp(f->err, prefix, sizeof prefix - 1) != 0) fail_msg("wrong error: %s", f->err);
    int n = atoi(f->err + sizeof prefix - 1);
    assert_in_range(n, 1, 1001); /* one of the row's columns, whichever the table lists 1001st */
    assert_int_equal(t->nrows, 1);
    assert_int_equal(t->rows.len, len);
    assert_int_equal(t->ncolumns, 1000);
    /* the cap is per row, not per batch */
    assert_int_equal(add(f, "t", 2, "{c1001 = 1, c1002 = 2}"), 0);
    assert_int_equal(t->ncolumns, 1002);

    assert_int_equal(add(f, "u", 0, "{[string.rep('n', 256)] = 1}"), 0);
    assert_int_equal(add(f, "u", 1, "{id = 1, [string.rep('n', 257)] = 1}"), -1);
    char want[512];
    snprintf(want, sizeof want,
             "row for table u: column name \"%.48s...\" is 257 bytes, longer than the limit of "
             "256 bytes",
             "nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn");
    assert_string_equal(f->err, want);
    /* escaped: quotes, backslashes, control and non-ASCII bytes; the table name too */
    assert_int_equal(
        add(f, "we\"ird", 0, "{['q\"b\\\\n\\n\\xc3\\xa9' .. string.rep('x', 300)] = 1}"), -1);
    snprintf(want, sizeof want,
             "row for table we\\\"ird: column name \"q\\\"b\\\\n\\x0a\\xc3\\xa9%.40s...\" is 308 "
             "bytes, longer than the limit of 256 bytes",
             "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
    assert_string_equal(f->err, want);
    find(f, "u");
    assert_int_equal(find(f, "u")->nrows, 1);
}

/* ---- RowBinary: batches per column set ---- */

/* A layout of table t: id UInt32, n UInt8, s String, d Date. */
static batch_layout *layout_t(void)
{
    const char *names[] = {"id", "n", "s", "d"}, *types[] = {"UInt32", "UInt8", "String", "Date"};
    ch_type *parsed[4];
    char err[256];
    for (int i = 0; i < 4; i++)
        assert_int_equal(ch_type_parse(types[i], strlen(types[i]), &parsed[i], err, sizeof err),
                         CH_TYPE_OK);
    return batch_layout_new("t", names, parsed, 4, "UTC");
}

/* Like add(), through batch_set_add_rowbinary. */
static int add_rb(fixture *f, const batch_layout *l, uint32_t event, const char *expr)
{
    strbuf chunk = {0};
    strbuf_printf(&chunk, "return %s", expr);
    if (luaL_dostring(f->L, chunk.data) != LUA_OK) fail_msg("%s: %s", expr, lua_tostring(f->L, -1));
    strbuf_free(&chunk);
    int top = lua_gettop(f->L);
    f->err[0] = '\0';
    int rc = batch_set_add_rowbinary(&f->set, l, f->L, -1, event, f->err, sizeof f->err);
    assert_int_equal(lua_gettop(f->L), top);
    if (rc != 0 && !f->err[0]) fail_msg("batch_set_add_rowbinary failed without a message");
    lua_pop(f->L, 1);
    return rc;
}

/* The RowBinary batch of t whose columns are `cols` (joined with ","). */
static batch *find_rb(fixture *f, const char *cols)
{
    for (size_t i = 0; i < f->set.count; i++) {
        batch *b = &f->set.items[i];
        if (!b->rowbinary) continue;
        char *got = columns(b);
        int same = strcmp(got, cols) == 0;
        free(got);
        if (same) return b;
    }
    fail_msg("no RowBinary batch with columns %s", cols);
    return NULL;
}

/* The bytes of b's rows as hex, rows separated by "|". */
static char *hex_rows(const batch *b)
{
    strbuf s = {0};
    strbuf_puts(&s, "");
    for (size_t r = 0; r < b->nrows; r++) {
        if (r) strbuf_putc(&s, '|');
        for (size_t i = batch_row_start(b, r); i < batch_row_start(b, r + 1); i++)
            strbuf_printf(&s, "%02x", (unsigned char)b->rows.data[i]);
    }
    return s.data;
}

static void expect_hex(const batch *b, const char *want)
{
    char *got = hex_rows(b);
    assert_string_equal(got, want);
    free(got);
}

/* Rows go into one batch per set of columns they set, the columns in the table's order whatever
 * the row's key order; every row of a batch has its columns; an empty row goes as JSONEachRow. */
static void test_rowbinary_column_sets(void **state)
{
    fixture *f = *state;
    batch_layout *l = layout_t();
    assert_int_equal(add_rb(f, l, 0, "{id = 1, n = 2}"), 0);
    assert_int_equal(add_rb(f, l, 1, "{n = 3, id = 2}"), 0);
    assert_int_equal(add_rb(f, l, 2, "{s = 'x', id = 3}"), 0);
    assert_int_equal(add_rb(f, l, 3, "{s = 'y', d = '1970-01-03', n = 5, id = 4}"), 0);
    assert_int_equal(f->set.count, 3);
    batch *a = find_rb(f, "id,n"), *b = find_rb(f, "id,s"), *c = find_rb(f, "id,n,s,d");
    assert_string_equal(a->table, "t");
    expect_hex(a, "0100000002|0200000003");
    expect_hex(b, "030000000178");
    expect_hex(c, "0400000005017902"
                  "00");
    assert_int_equal(a->row_event[1], 1);
    expect_columns_of(a, 1, 2, "id,n");
    expect_columns_of(c, 0, 1, "id,n,s,d");
    assert_int_equal(batch_set_rows(&f->set), 4);

    /* refused rows change nothing */
    size_t len = a->rows.len;
    assert_int_equal(add_rb(f, l, 4, "{id = 5, zzz = 1}"), -1);
    assert_string_equal(f->err, "table t has no column zzz: leave the key out of the row or add "
                                "the column to the table");
    assert_int_equal(add_rb(f, l, 4, "{id = 5, n = 300}"), -1);
    assert_string_equal(f->err,
                        "row for table t: column \"n\" (UInt8): cannot store 300: out of range "
                        "0..255");
    assert_int_equal(add_rb(f, l, 4, "{id = 5, [7] = 1}"), -1);
    assert_string_equal(f->err, "row for table t has a key that is not a string (a number)");
    assert_int_equal(add_rb(f, l, 4, "{id = 5, n = 1, d = '2021-13-45'}"), -1);
    assert_non_null(strstr(f->err, "column \"d\" (Date): cannot store \"2021-13-45\""));
    assert_int_equal(f->set.count, 3);
    assert_int_equal(a->rows.len, len);
    assert_int_equal(batch_set_rows(&f->set), 4);

    /* a row without keys: JSONEachRow, in the table's JSON batch */
    assert_int_equal(add_rb(f, l, 5, "{}"), 0);
    assert_int_equal(f->set.count, 4);
    batch *json = &f->set.items[3];
    assert_false(json->rowbinary);
    assert_string_equal(json->table, "t");
    assert_string_equal(json->rows.data, "{}\n");

    batch_set_free(&f->set);
    batch_layout_free(l);
}

/* mark/rollback spans every batch of every column set, new ones included; a RowBinary batch
 * keeps its columns through rollback and clear. */
static void test_rowbinary_mark_rollback(void **state)
{
    fixture *f = *state;
    batch_layout *l = layout_t();
    assert_int_equal(add_rb(f, l, 0, "{id = 1, n = 1}"), 0);
    batch_set_mark(&f->set);
    assert_int_equal(add_rb(f, l, 1, "{id = 2, n = 2}"), 0);
    assert_int_equal(add_rb(f, l, 1, "{id = 3, s = 'z'}"), 0);
    assert_int_equal(add(f, "other", 1, "{z = 1}"), 0);
    assert_int_equal(add_rb(f, l, 1, "{id = 4, n = -1}"), -1); /* the event's last row fails */
    batch_set_rollback(&f->set);
    batch *a = find_rb(f, "id,n"), *b = find_rb(f, "id,s");
    expect_hex(a, "0100000001");
    assert_int_equal(a->nrows, 1);
    assert_int_equal(b->nrows, 0);
    assert_int_equal(b->rows.len, 0);
    assert_int_equal(b->opened_ms, -1);
    expect_columns(b, "id,s");
    assert_int_equal(find(f, "other")->nrows, 0);
    assert_int_equal(batch_set_rows(&f->set), 1);
    assert_int_equal(batch_set_oldest_ms(&f->set), a->opened_ms);
    /* the batches take rows again */
    assert_int_equal(add_rb(f, l, 2, "{s = 'w', id = 5}"), 0);
    expect_hex(b, "050000000177");
    assert_int_equal(b->row_event[0], 2);
    /* cleared: empty, columns kept, reusable */
    batch_clear(a);
    assert_int_equal(a->nrows, 0);
    assert_int_equal(a->rows.len, 0);
    expect_columns(a, "id,n");
    assert_int_equal(add_rb(f, l, 3, "{id = 6, n = 6}"), 0);
    expect_hex(a, "0600000006");
    expect_columns_of(a, 0, 1, "id,n");
    /* a rollback with nothing new since the mark changes nothing */
    batch_set_mark(&f->set);
    batch_set_rollback(&f->set);
    expect_hex(a, "0600000006");
    expect_hex(b, "050000000177");

    batch_set_free(&f->set);
    batch_layout_free(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_rows_and_columns, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mark_rollback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_row_unchanged, setup, teardown),
        cmocka_unit_test_setup_teardown(test_columns_past_64, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_columns, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nul_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_column_caps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rowbinary_column_sets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rowbinary_mark_rollback, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
