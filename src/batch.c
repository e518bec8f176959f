/*
 * batch — rows waiting to be inserted, per target table (see include/cdcpipe/batch.h).
 *
 * Columns: each batch keeps the union of its rows' keys in first-seen order, with their lengths
 * (compared with memcmp: a key is bytes, not a C string), and a hash set over them so a key is
 * found in constant time whatever the number of columns (up to 8 columns a plain scan is cheaper
 * and the set is not built). The hash is SipHash-1-3 with a key drawn at random per process: the
 * topic's writer chooses column names (a script that copies an event's keys into rows), so
 * collisions must not be predictable. The set uses linear
 * probing; columns only ever leave it newest first (a failed row, a rollback, a clear), and
 * emptying the slot of the newest column keeps every other lookup intact (no column probed past
 * a slot that was empty when it was inserted), so removal needs no tombstones.
 *
 * Per row the batch keeps the numbers of the columns it has, so an INSERT of any range of rows
 * (bisection after a rejection) names exactly the columns those rows use.
 */
#include "cdcpipe/batch.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <lauxlib.h>

#include "cdcpipe/clock.h"
#include "cdcpipe/errbuf.h"
#include "cdcpipe/row_json.h"
#include "cdcpipe/json_fast.h"
#include "cdcpipe/xalloc.h"

/* ---- SipHash-1-3 with a per-process random key ---- */

static uint64_t hash_key[2];
static bool hash_seeded;

static void seed_hash(void)
{
    if (hash_seeded) return;
    if (getrandom(hash_key, sizeof hash_key, GRND_NONBLOCK) != (ssize_t)sizeof hash_key) {
        /* no entropy yet (early boot): still unpredictable enough across processes */
        hash_key[0] = (uint64_t)clock_ms() * 0x9e3779b97f4a7c15ULL;
        hash_key[1] = (uint64_t)(uintptr_t)&hash_key ^ ((uint64_t)rand() << 32);
    }
    hash_seeded = true;
}

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                                   \
    do {                                                                                           \
        v0 += v1;                                                                                  \
        v1 = ROTL(v1, 13);                                                                         \
        v1 ^= v0;                                                                                  \
        v0 = ROTL(v0, 32);                                                                         \
        v2 += v3;                                                                                  \
        v3 = ROTL(v3, 16);                                                                         \
        v3 ^= v2;                                                                                  \
        v0 += v3;                                                                                  \
        v3 = ROTL(v3, 21);                                                                         \
        v3 ^= v0;                                                                                  \
        v2 += v1;                                                                                  \
        v1 = ROTL(v1, 17);                                                                         \
        v1 ^= v2;                                                                                  \
        v2 = ROTL(v2, 32);                                                                         \
    } while (0)

static uint64_t hash_name(const char *s, size_t len)
{
    uint64_t v0 = 0x736f6d6570736575ULL ^ hash_key[0], v1 = 0x646f72616e646f6dULL ^ hash_key[1];
    uint64_t v2 = 0x6c7967656e657261ULL ^ hash_key[0], v3 = 0x7465646279746573ULL ^ hash_key[1];
    const unsigned char *p = (const unsigned char *)s;
    size_t blocks = len & ~(size_t)7;
    for (size_t i = 0; i < blocks; i += 8) {
        uint64_t m = 0;
        for (int j = 0; j < 8; j++)
            m |= (uint64_t)p[i + (size_t)j] << (8 * j);
        v3 ^= m;
        SIPROUND;
        v0 ^= m;
    }
    uint64_t last = (uint64_t)len << 56;
    for (size_t j = 0; j < (len & 7); j++)
        last |= (uint64_t)p[blocks + j] << (8 * j);
    v3 ^= last;
    SIPROUND;
    v0 ^= last;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

/* ---- the column set ---- */

/* The slot holding column `name`, or the empty slot where it would go. */
static size_t probe(const batch *b, const char *name, size_t len, uint64_t hash)
{
    size_t mask = b->nslots - 1, i = (size_t)hash & mask;
    while (b->slots[i]) {
        uint32_t c = b->slots[i] - 1;
        if (b->column_len[c] == len && memcmp(b->columns[c], name, len) == 0) break;
        i = (i + 1) & mask;
    }
    return i;
}

/* Rebuilds the set with nslots slots from the columns, oldest first (so that removing the newest
 * column stays a matter of emptying its slot). */
static void rehash(batch *b, size_t nslots)
{
    free(b->slots);
    b->slots = xcalloc(nslots, sizeof *b->slots);
    b->nslots = nslots;
    for (size_t c = 0; c < b->ncolumns; c++) {
        size_t i =
            probe(b, b->columns[c], b->column_len[c], hash_name(b->columns[c], b->column_len[c]));
        b->slots[i] = (uint32_t)c + 1;
    }
}

/* Removes the newest columns until `keep` are left. */
static void drop_columns_from(batch *b, size_t keep)
{
    if (keep == 0) { /* back to a linear scan until the batch is wide again */
        free(b->slots);
        b->slots = NULL;
        b->nslots = 0;
    }
    while (b->ncolumns > keep) {
        size_t c = --b->ncolumns;
        if (b->nslots) {
            size_t i = probe(b, b->columns[c], b->column_len[c],
                             hash_name(b->columns[c], b->column_len[c]));
            b->slots[i] = 0;
        }
        free(b->columns[c]);
    }
}

/* The column number of name, added to the batch if new. Returns -1 when the batch cannot number
 * another column (not reachable within any batch size, but checked). Up to SCAN_COLUMNS columns
 * a scan (lengths first) is cheaper than hashing the key; past them the hash set is built. */
#define SCAN_COLUMNS 8
static long find_or_add_column(batch *b, const char *name, size_t len)
{
    uint64_t hash = 0;
    if (b->nslots) {
        hash = hash_name(name, len);
        size_t i = probe(b, name, len, hash);
        if (b->slots[i]) return (long)b->slots[i] - 1;
    } else {
        for (size_t c = 0; c < b->ncolumns; c++)
            if (b->column_len[c] == len && memcmp(b->columns[c], name, len) == 0) return (long)c;
    }
    if (b->ncolumns >= UINT32_MAX - 1) return -1;
    bool hashed = b->nslots > 0;
    if (b->ncolumns + 1 > SCAN_COLUMNS && 2 * (b->ncolumns + 1) > b->nslots) {
        rehash(b, b->nslots ? 2 * b->nslots : 64);
        if (!hashed) hash = hash_name(name, len);
    }
    if (b->ncolumns == b->columns_cap) {
        b->columns_cap = b->columns_cap ? b->columns_cap * 2 : 16;
        b->columns = xrealloc(b->columns, b->columns_cap, sizeof *b->columns);
        b->column_len = xrealloc(b->column_len, b->columns_cap, sizeof *b->column_len);
    }
    char *copy = xmalloc(len + 1);
    memcpy(copy, name, len);
    copy[len] = '\0';
    size_t c = b->ncolumns++;
    b->columns[c] = copy;
    b->column_len[c] = len;
    if (b->nslots) b->slots[probe(b, name, len, hash)] = (uint32_t)c + 1;
    return (long)c;
}

/* ---- batches ---- */

static void close_row(batch *b, uint32_t event);
static void free_batch(batch *b);

static batch *append_batch(batch_set *set, const char *table)
{
    if (set->count == set->cap) {
        set->cap = set->cap ? set->cap * 2 : 4;
        set->items = xrealloc(set->items, set->cap, sizeof *set->items);
    }
    seed_hash();
    batch *b = &set->items[set->count++];
    memset(b, 0, sizeof *b);
    b->table = xstrdup(table);
    b->opened_ms = -1;
    return b;
}

/* The JSONEachRow batch of table. */
static batch *find_or_create(batch_set *set, const char *table)
{
    for (size_t i = 0; i < set->count; i++)
        if (!set->items[i].layout && strcmp(set->items[i].table, table) == 0) return &set->items[i];
    return append_batch(set, table);
}

/* s[0..len) for a message: printable ASCII as it is (" and \ escaped), any other byte as \xHH,
 * cut after 48 bytes with "...". */
static void escape_name(const char *s, size_t len, char *out, size_t outlen)
{
    size_t n = 0, shown = len < 48 ? len : 48;
    for (size_t i = 0; i < shown && n + 8 < outlen; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            n += (size_t)snprintf(out + n, outlen - n, "\\%c", c);
        else if (c >= 0x20 && c < 0x7f)
            out[n++] = (char)c;
        else
            n += (size_t)snprintf(out + n, outlen - n, "\\x%02x", c);
    }
    if (shown < len && n + 4 <= outlen) {
        memcpy(out + n, "...", 3);
        n += 3;
    }
    out[n < outlen ? n : outlen - 1] = '\0';
}

typedef struct {
    batch *b;
    size_t count; /* the row's columns so far */
} row_state;

/* row_json key callback: checks the key against the limits, adds it to the batch's columns
 * unless already there, and records it for the row. */
static int note_column(void *ud, const char *key, size_t len, char *err, size_t errlen)
{
    row_state *rs = ud;
    batch *b = rs->b;
    char name[200], table[200];
    if (++rs->count > BATCH_MAX_COLUMNS || len > BATCH_MAX_COLUMN_NAME || memchr(key, 0, len)) {
        escape_name(key, len, name, sizeof name);
        escape_name(b->table, strlen(b->table), table, sizeof table);
        if (rs->count > BATCH_MAX_COLUMNS)
            errbuf_set(err, errlen,
                       "row for table %s has more than %d columns (the limit per row): column "
                       "%zu is \"%s\"",
                       table, BATCH_MAX_COLUMNS, rs->count, name);
        else if (len > BATCH_MAX_COLUMN_NAME)
            errbuf_set(err, errlen,
                       "row for table %s: column name \"%s\" is %zu bytes, longer than the limit "
                       "of %d bytes",
                       table, name, len, BATCH_MAX_COLUMN_NAME);
        else
            errbuf_set(err, errlen,
                       "row for table %s: column name \"%s\" holds a NUL byte, which no ClickHouse "
                       "column name can",
                       table, name);
        return -1;
    }
    long c = find_or_add_column(b, key, len);
    if (c < 0) {
        escape_name(b->table, strlen(b->table), table, sizeof table);
        errbuf_set(err, errlen, "the batch for table %s cannot take another column", table);
        return -1;
    }
    if (b->nrow_cols == b->row_cols_cap) {
        b->row_cols_cap = b->row_cols_cap ? b->row_cols_cap * 2 : 4096;
        b->row_cols = xrealloc(b->row_cols, b->row_cols_cap, sizeof *b->row_cols);
    }
    b->row_cols[b->nrow_cols++] = (uint32_t)c;
    return 0;
}

int batch_set_add_row(batch_set *set, const char *table, lua_State *L, int idx, uint32_t event,
                      char *err, size_t errlen)
{
    batch *b = find_or_create(set, table);
    size_t len = b->rows.len, ncolumns = b->ncolumns, nrow_cols = b->nrow_cols;
    row_state rs = {b, 0};
    if (row_json_append(&b->rows, L, idx, false, note_column, &rs, err, errlen) != 0) {
        strbuf_truncate(&b->rows, len);
        b->nrow_cols = nrow_cols;
        drop_columns_from(b, ncolumns);
        return -1;
    }
    strbuf_putc(&b->rows, '\n');
    close_row(b, event);
    return 0;
}

/* ---- RowBinary ---- */

struct batch_layout {
    char *table;
    rowbinary_column *columns; /* names owned, types owned */
    size_t *name_len;
    size_t ncolumns;
    uint32_t *slots; /* hash set over the names as in a batch (column + 1, 0 = empty) */
    size_t nslots;
    char *server_timezone;
    unsigned char *seen; /* per column, while a row's keys are read (all 0 between rows) */
};

static size_t layout_probe(const batch_layout *l, const char *name, size_t len)
{
    size_t mask = l->nslots - 1, i = (size_t)hash_name(name, len) & mask;
    while (l->slots[i]) {
        uint32_t c = l->slots[i] - 1;
        if (l->name_len[c] == len && memcmp(l->columns[c].name, name, len) == 0) break;
        i = (i + 1) & mask;
    }
    return i;
}

batch_layout *batch_layout_new(const char *table, const char *const *names, ch_type **types,
                               size_t ncolumns, const char *server_timezone)
{
    seed_hash();
    batch_layout *l = xcalloc(1, sizeof *l);
    l->table = xstrdup(table);
    l->ncolumns = ncolumns;
    l->columns = xcalloc(ncolumns ? ncolumns : 1, sizeof *l->columns);
    l->name_len = xcalloc(ncolumns ? ncolumns : 1, sizeof *l->name_len);
    l->seen = xcalloc(ncolumns ? ncolumns : 1, 1);
    l->server_timezone = server_timezone ? xstrdup(server_timezone) : NULL;
    l->nslots = 16;
    while (l->nslots < 2 * ncolumns)
        l->nslots *= 2;
    l->slots = xcalloc(l->nslots, sizeof *l->slots);
    for (size_t c = 0; c < ncolumns; c++) {
        l->columns[c].name = xstrdup(names[c]);
        l->columns[c].type = types[c];
        l->name_len[c] = strlen(names[c]);
        size_t i = layout_probe(l, names[c], l->name_len[c]);
        if (!l->slots[i]) l->slots[i] = (uint32_t)c + 1; /* a repeated name: the first wins */
    }
    return l;
}

void batch_layout_free(batch_layout *l)
{
    if (!l) return;
    for (size_t c = 0; c < l->ncolumns; c++) {
        free((char *)l->columns[c].name);
        ch_type_free((ch_type *)l->columns[c].type);
    }
    free(l->columns);
    free(l->name_len);
    free(l->slots);
    free(l->seen);
    free(l->server_timezone);
    free(l->table);
    free(l);
}

size_t batch_layout_columns(const batch_layout *l)
{
    return l->ncolumns;
}

/* The RowBinary batch of layout's table for columns cols[0..n) (ascending indexes). */
static batch *find_or_create_rowbinary(batch_set *set, const batch_layout *l, const uint32_t *cols,
                                       size_t n)
{
    for (size_t i = 0; i < set->count; i++) {
        batch *b = &set->items[i];
        if (b->layout == l && b->ncolumns == n &&
            memcmp(b->layout_cols, cols, n * sizeof *cols) == 0)
            return b;
    }
    batch *b = append_batch(set, l->table);
    b->layout = l;
    b->rowbinary = true;
    b->layout_cols = xcalloc(n, sizeof *b->layout_cols);
    memcpy(b->layout_cols, cols, n * sizeof *cols);
    b->rb_columns = xcalloc(n, sizeof *b->rb_columns);
    b->columns = xcalloc(n, sizeof *b->columns);
    b->column_len = xcalloc(n, sizeof *b->column_len);
    b->columns_cap = n;
    for (size_t k = 0; k < n; k++) {
        b->rb_columns[k] = l->columns[cols[k]];
        b->columns[k] = xstrdup(l->columns[cols[k]].name);
        b->column_len[k] = l->name_len[cols[k]];
    }
    b->ncolumns = n;
    return b;
}

/* Notes row number nrows of b as ending at the buffer's end, from event. */
static void close_row(batch *b, uint32_t event)
{
    if (b->nrows == b->rows_cap) {
        b->rows_cap = b->rows_cap ? b->rows_cap * 2 : 1024;
        b->row_end = xrealloc(b->row_end, b->rows_cap, sizeof *b->row_end);
        b->row_event = xrealloc(b->row_event, b->rows_cap, sizeof *b->row_event);
        b->row_cols_end = xrealloc(b->row_cols_end, b->rows_cap, sizeof *b->row_cols_end);
    }
    b->row_end[b->nrows] = b->rows.len;
    b->row_event[b->nrows] = event;
    b->row_cols_end[b->nrows] = b->nrow_cols;
    if (b->nrows++ == 0) b->opened_ms = clock_ms();
}

int batch_set_add_rowbinary(batch_set *set, const batch_layout *layout, lua_State *L, int idx,
                            uint32_t event, char *err, size_t errlen)
{
    batch_layout *l = (batch_layout *)layout; /* only its scratch `seen` changes, and is reset */
    idx = lua_absindex(L, idx);
    size_t n = 0;
    int rc = 0;
    char name[200], table[200];
    json_lazy_fill(L, idx);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        if (lua_type(L, -2) != LUA_TSTRING) {
            escape_name(l->table, strlen(l->table), table, sizeof table);
            errbuf_set(err, errlen, "row for table %s has a key that is not a string (a %s)", table,
                       luaL_typename(L, -2));
            lua_pop(L, 2);
            rc = -1;
            break;
        }
        size_t len;
        const char *key = lua_tolstring(L, -2, &len);
        uint32_t slot = l->slots[layout_probe(l, key, len)];
        if (!slot) {
            escape_name(key, len, name, sizeof name);
            escape_name(l->table, strlen(l->table), table, sizeof table);
            errbuf_set(err, errlen,
                       "table %s has no column %s: leave the key out of the row or add the column "
                       "to the table",
                       table, name);
            lua_pop(L, 2);
            rc = -1;
            break;
        }
        if (!l->seen[slot - 1]) {
            l->seen[slot - 1] = 1;
            n++;
        }
        lua_pop(L, 1);
    }
    uint32_t stack_cols[64], *cols = n <= 64 ? stack_cols : xcalloc(n, sizeof *cols);
    size_t k = 0;
    for (size_t c = 0; c < l->ncolumns && k < n; c++)
        if (l->seen[c]) {
            l->seen[c] = 0;
            cols[k++] = (uint32_t)c;
        }
    if (rc == 0 && n == 0) {
        rc = batch_set_add_row(set, l->table, L, idx, event, err, errlen);
    } else if (rc == 0) {
        size_t count = set->count;
        batch *b = find_or_create_rowbinary(set, l, cols, n);
        char why[1024];
        if (rowbinary_append_row(&b->rows, L, idx, b->rb_columns, n, l->server_timezone, why,
                                 sizeof why) == 0) {
            close_row(b, event);
        } else {
            escape_name(l->table, strlen(l->table), table, sizeof table);
            errbuf_set(err, errlen, "row for table %s: %s", table, why);
            rc = -1;
            if (set->count > count) free_batch(&set->items[--set->count]); /* made for it */
        }
    }
    if (cols != stack_cols) free(cols);
    return rc;
}

size_t batch_row_start(const batch *b, size_t row)
{
    return row == 0 ? 0 : b->row_end[row - 1];
}

size_t batch_columns_of(const batch *b, size_t first, size_t end, char **names)
{
    if (first >= end || b->ncolumns == 0) return 0;
    if (b->layout) {
        memcpy(names, b->columns, b->ncolumns * sizeof *names);
        return b->ncolumns;
    }
    size_t from = first == 0 ? 0 : b->row_cols_end[first - 1], to = b->row_cols_end[end - 1];
    unsigned char *used = xcalloc(b->ncolumns, 1);
    for (size_t k = from; k < to; k++)
        used[b->row_cols[k]] = 1;
    size_t n = 0;
    for (size_t i = 0; i < b->ncolumns; i++)
        if (used[i]) names[n++] = b->columns[i];
    free(used);
    return n;
}

void batch_set_mark(batch_set *set)
{
    for (size_t i = 0; i < set->count; i++) {
        batch *b = &set->items[i];
        b->mark_len = b->rows.len;
        b->mark_rows = b->nrows;
        b->mark_columns = b->ncolumns;
    }
}

void batch_set_rollback(batch_set *set)
{
    for (size_t i = 0; i < set->count; i++) {
        batch *b = &set->items[i];
        strbuf_truncate(&b->rows, b->mark_len);
        b->nrows = b->mark_rows;
        b->nrow_cols = b->nrows ? b->row_cols_end[b->nrows - 1] : 0;
        if (!b->layout) drop_columns_from(b, b->mark_columns);
        if (b->nrows == 0) b->opened_ms = -1;
    }
}

size_t batch_set_rows(const batch_set *set)
{
    size_t n = 0;
    for (size_t i = 0; i < set->count; i++)
        n += set->items[i].nrows;
    return n;
}

size_t batch_set_bytes(const batch_set *set)
{
    size_t n = 0;
    for (size_t i = 0; i < set->count; i++)
        n += set->items[i].rows.len;
    return n;
}

int64_t batch_set_oldest_ms(const batch_set *set)
{
    int64_t oldest = -1;
    for (size_t i = 0; i < set->count; i++) {
        int64_t t = set->items[i].opened_ms;
        if (t >= 0 && (oldest < 0 || t < oldest)) oldest = t;
    }
    return oldest;
}

void batch_clear(batch *b)
{
    strbuf_reset(&b->rows);
    b->nrows = 0;
    b->nrow_cols = 0;
    if (!b->layout) drop_columns_from(b, 0);
    b->opened_ms = -1;
    b->mark_len = b->mark_rows = b->mark_columns = 0;
}

static void free_batch(batch *b)
{
    drop_columns_from(b, 0);
    free(b->columns);
    free(b->column_len);
    free(b->slots);
    free(b->row_end);
    free(b->row_event);
    free(b->row_cols_end);
    free(b->row_cols);
    free(b->layout_cols);
    free(b->rb_columns);
    strbuf_free(&b->rows);
    free(b->table);
}

void batch_set_free(batch_set *set)
{
    for (size_t i = 0; i < set->count; i++)
        free_batch(&set->items[i]);
    free(set->items);
    memset(set, 0, sizeof *set);
}
