/*
 * ch_type — ClickHouse type text → type tree (see include/cdcpipe/ch_type.h).
 *
 * A recursive-descent parser over a cursor. Every parse function returns CH_TYPE_OK,
 * CH_TYPE_INVALID or CH_TYPE_UNSUPPORTED and, on failure, fills p->why (the reason) and
 * p->at (the offset); ch_type_parse adds the whole type text around it.
 */
#include "cdcpipe/ch_type.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cdcpipe/errbuf.h"
#include "cdcpipe/xalloc.h"

typedef struct {
    const char *s;
    size_t len;
    size_t pos;
    int depth;
    char why[160]; /* reason of the first failure */
} parser;

static int fail(parser *p, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(parser *p, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->why, sizeof p->why, fmt, ap);
    va_end(ap);
    return rc;
}

static void skip_space(parser *p)
{
    while (p->pos < p->len && (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' ||
                               p->s[p->pos] == '\n' || p->s[p->pos] == '\r'))
        p->pos++;
}

/* Consumes c (after whitespace) or fails. */
static int expect(parser *p, char c)
{
    skip_space(p);
    if (p->pos < p->len && p->s[p->pos] == c) {
        p->pos++;
        return CH_TYPE_OK;
    }
    return fail(p, CH_TYPE_INVALID, "'%c' expected at offset %zu", c, p->pos);
}

/* True (and consumed) when the next token is c. */
static bool accept(parser *p, char c)
{
    skip_space(p);
    if (p->pos < p->len && p->s[p->pos] == c) {
        p->pos++;
        return true;
    }
    return false;
}

static bool is_ident_start(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

static bool is_ident_char(char c)
{
    return is_ident_start(c) || (c >= '0' && c <= '9');
}

/* An identifier [A-Za-z_][A-Za-z0-9_]*: its start and length (0 when there is none). */
static size_t read_ident(parser *p, const char **start)
{
    skip_space(p);
    *start = p->s + p->pos;
    size_t n = 0;
    if (p->pos < p->len && is_ident_start(p->s[p->pos]))
        while (p->pos + n < p->len && is_ident_char(p->s[p->pos + n]))
            n++;
    p->pos += n;
    return n;
}

/* A non-negative decimal integer up to `max`. */
static int read_uint(parser *p, unsigned max, unsigned *out, const char *what)
{
    skip_space(p);
    size_t start = p->pos;
    unsigned long v = 0;
    while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9') {
        v = v * 10 + (unsigned long)(p->s[p->pos] - '0');
        if (v > max) {
            p->pos = start;
            return fail(p, CH_TYPE_INVALID, "%s greater than %u at offset %zu", what, max, start);
        }
        p->pos++;
    }
    if (p->pos == start) return fail(p, CH_TYPE_INVALID, "%s expected at offset %zu", what, start);
    *out = (unsigned)v;
    return CH_TYPE_OK;
}

/* A quoted string ('…' or `…`) with ClickHouse's backslash escapes or a doubled quote, into a
 * new NUL-terminated copy. */
static int read_quoted(parser *p, char quote, char **out, size_t *out_len, const char *what)
{
    skip_space(p);
    size_t start = p->pos;
    if (p->pos >= p->len || p->s[p->pos] != quote)
        return fail(p, CH_TYPE_INVALID, "%s in %c quotes expected at offset %zu", what, quote,
                    start);
    p->pos++;
    strbuf b = {0};
    strbuf_append(&b, "", 0); /* allocated and NUL-terminated even when empty */
    for (;;) {
        if (p->pos >= p->len) {
            strbuf_free(&b);
            p->pos = start;
            return fail(p, CH_TYPE_INVALID, "%s without its closing quote at offset %zu", what,
                        start);
        }
        char c = p->s[p->pos++];
        if (c == quote) {
            if (p->pos < p->len && p->s[p->pos] == quote) { /* doubled quote */
                p->pos++;
                strbuf_putc(&b, quote);
                continue;
            }
            break;
        }
        if (c != '\\') {
            strbuf_putc(&b, c);
            continue;
        }
        if (p->pos >= p->len) continue; /* reported as unterminated above */
        char e = p->s[p->pos++];
        switch (e) {
        case 'n':
            c = '\n';
            break;
        case 't':
            c = '\t';
            break;
        case 'r':
            c = '\r';
            break;
        case 'b':
            c = '\b';
            break;
        case 'f':
            c = '\f';
            break;
        case 'a':
            c = '\a';
            break;
        case 'v':
            c = '\v';
            break;
        case '0':
            c = '\0';
            break;
        case 'x': {
            int v = 0, digits = 0;
            while (digits < 2 && p->pos < p->len) {
                char h = p->s[p->pos];
                int d = h >= '0' && h <= '9'   ? h - '0'
                        : h >= 'a' && h <= 'f' ? h - 'a' + 10
                        : h >= 'A' && h <= 'F' ? h - 'A' + 10
                                               : -1;
                if (d < 0) break;
                v = v * 16 + d;
                digits++;
                p->pos++;
            }
            if (digits == 0) {
                strbuf_free(&b);
                return fail(p, CH_TYPE_INVALID, "\\x without hex digits at offset %zu", p->pos);
            }
            c = (char)v;
            break;
        }
        default:
            c = e;
            break; /* \' \\ \" \` and any other character: itself */
        }
        strbuf_putc(&b, c);
    }
    *out_len = b.len;
    *out = b.data; /* strbuf data is malloc'ed and NUL-terminated */
    return CH_TYPE_OK;
}

/* A quoted string that must not contain a NUL byte (it is kept as a C string). */
static int read_name(parser *p, char quote, char **out, const char *what)
{
    size_t start = p->pos, len = 0;
    int rc = read_quoted(p, quote, out, &len, what);
    if (rc == CH_TYPE_OK && memchr(*out, '\0', len)) {
        free(*out);
        *out = NULL;
        p->pos = start;
        rc = fail(p, CH_TYPE_INVALID, "%s with a NUL byte at offset %zu", what, start);
    }
    return rc;
}

static ch_type *new_type(ch_kind kind)
{
    ch_type *t = xcalloc(1, sizeof *t);
    t->kind = kind;
    return t;
}

static void add_child(ch_type *t, ch_type *child, char *name)
{
    size_t n = t->nchildren + 1;
    t->children = xrealloc(t->children, n, sizeof *t->children);
    t->children[t->nchildren] = child;
    if (name) {
        if (!t->names) t->names = xcalloc(n, sizeof *t->names);
        t->names = xrealloc(t->names, n, sizeof *t->names);
        t->names[t->nchildren] = name;
    }
    t->nchildren = n;
}

void ch_type_free(ch_type *t)
{
    if (!t) return;
    for (size_t i = 0; i < t->nchildren; i++) {
        ch_type_free(t->children[i]);
        if (t->names) free(t->names[i]);
    }
    free(t->children);
    free(t->names);
    for (size_t i = 0; i < t->nitems; i++)
        free(t->items[i].name);
    free(t->items);
    free(t->timezone);
    free(t);
}

static int parse_type(parser *p, ch_type **out);

/* The names that need no arguments, and their kinds. */
static const struct {
    const char *name;
    ch_kind kind;
} simple_types[] = {
    {"Int8", CH_INT8},       {"Int16", CH_INT16},     {"Int32", CH_INT32},
    {"Int64", CH_INT64},     {"Int128", CH_INT128},   {"Int256", CH_INT256},
    {"UInt8", CH_UINT8},     {"UInt16", CH_UINT16},   {"UInt32", CH_UINT32},
    {"UInt64", CH_UINT64},   {"UInt128", CH_UINT128}, {"UInt256", CH_UINT256},
    {"Float32", CH_FLOAT32}, {"Float64", CH_FLOAT64}, {"Bool", CH_BOOL},
    {"String", CH_STRING},   {"Date", CH_DATE},       {"Date32", CH_DATE32},
    {"UUID", CH_UUID},       {"IPv4", CH_IPV4},       {"IPv6", CH_IPV6},
};

static bool name_is(const char *name, size_t len, const char *want)
{
    return strlen(want) == len && memcmp(name, want, len) == 0;
}

/* Decimal's byte width for a precision. */
static unsigned decimal_size(unsigned precision)
{
    return precision <= 9 ? 4 : precision <= 18 ? 8 : precision <= 38 ? 16 : 32;
}

/* Decimal(P[, S]) after the name; Decimal32(S) and friends when fixed_precision is not 0. */
static int parse_decimal(parser *p, ch_type *t, unsigned fixed_precision)
{
    int rc = expect(p, '(');
    if (rc) return rc;
    if (fixed_precision) {
        t->precision = fixed_precision;
        rc = read_uint(p, fixed_precision, &t->scale, "a Decimal scale");
        if (rc) return rc;
    } else {
        rc = read_uint(p, 76, &t->precision, "a Decimal precision");
        if (rc) return rc;
        if (t->precision == 0) return fail(p, CH_TYPE_INVALID, "Decimal precision 0");
        if (accept(p, ',')) {
            rc = read_uint(p, t->precision, &t->scale, "a Decimal scale");
            if (rc) return rc;
        }
    }
    t->size = decimal_size(t->precision);
    return expect(p, ')');
}

/* Enum8/Enum16( 'name' = value, … ) after the name. */
static int parse_enum(parser *p, ch_type *t)
{
    int lo = t->kind == CH_ENUM8 ? -128 : -32768, hi = t->kind == CH_ENUM8 ? 127 : 32767;
    int rc = expect(p, '(');
    if (rc) return rc;
    do {
        ch_enum_item item = {0};
        rc = read_quoted(p, '\'', &item.name, &item.name_len, "an Enum name");
        if (rc) return rc;
        t->items = xrealloc(t->items, t->nitems + 1, sizeof *t->items);
        t->items[t->nitems++] = item; /* owned by t from here on, freed with it */
        rc = expect(p, '=');
        if (rc) return rc;
        bool negative = accept(p, '-');
        unsigned magnitude;
        rc = read_uint(p, 32768, &magnitude, "an Enum value");
        if (rc) return rc;
        int value = negative ? -(int)magnitude : (int)magnitude;
        if (value < lo || value > hi)
            return fail(p, CH_TYPE_INVALID, "Enum value %d outside %d..%d", value, lo, hi);
        t->items[t->nitems - 1].value = value;
    } while (accept(p, ','));
    return expect(p, ')');
}

/* One element of a Tuple or Nested: `T` or `name T` (name an identifier or `back-quoted`).
 * *name is set to a new string for a named element, NULL otherwise. */
static int parse_element(parser *p, char **name, ch_type **child)
{
    *name = NULL;
    skip_space(p);
    size_t start = p->pos;
    if (p->pos < p->len && p->s[p->pos] == '`') {
        int rc = read_name(p, '`', name, "an element name");
        if (rc) return rc;
    } else {
        const char *ident;
        size_t n = read_ident(p, &ident);
        skip_space(p);
        /* an identifier followed by another identifier is a name; otherwise it was the type */
        if (n > 0 && p->pos < p->len && is_ident_start(p->s[p->pos]))
            *name = xstrndup(ident, n);
        else
            p->pos = start;
    }
    int rc = parse_type(p, child);
    if (rc) {
        free(*name);
        *name = NULL;
    }
    return rc;
}

/* Tuple(…) or Nested(…) after the name; Nested needs names. */
static int parse_tuple(parser *p, ch_type *t, bool nested)
{
    int rc = expect(p, '(');
    if (rc) return rc;
    if (!nested && accept(p, ')')) return CH_TYPE_OK; /* Tuple(): no elements */
    do {
        size_t at = p->pos;
        char *name;
        ch_type *child;
        rc = parse_element(p, &name, &child);
        if (rc) return rc;
        bool named = name != NULL;
        if ((t->nchildren > 0 && named != (t->names != NULL)) || (nested && !named)) {
            free(name);
            ch_type_free(child);
            p->pos = at;
            return fail(p, CH_TYPE_INVALID, "%s at offset %zu",
                        nested ? "Nested needs a name for every element"
                               : "a Tuple names all its elements or none",
                        at);
        }
        add_child(t, child, name);
    } while (accept(p, ','));
    return expect(p, ')');
}

/* A type name with what follows it; the type's node is *out (NULL on failure). */
static int parse_named(parser *p, const char *name, size_t n, ch_type **out)
{
    for (size_t i = 0; i < sizeof simple_types / sizeof simple_types[0]; i++)
        if (name_is(name, n, simple_types[i].name)) {
            *out = new_type(simple_types[i].kind);
            return CH_TYPE_OK;
        }

    ch_type *t = NULL;
    int rc = CH_TYPE_OK;
    if (name_is(name, n, "FixedString")) {
        t = new_type(CH_FIXED_STRING);
        rc = expect(p, '(');
        if (!rc) rc = read_uint(p, 0xFFFFFF, &t->size, "a FixedString length");
        if (!rc && t->size == 0) rc = fail(p, CH_TYPE_INVALID, "FixedString(0)");
        if (!rc) rc = expect(p, ')');
    } else if (name_is(name, n, "DateTime")) {
        t = new_type(CH_DATETIME);
        if (accept(p, '(')) {
            rc = read_name(p, '\'', &t->timezone, "a time zone");
            if (!rc) rc = expect(p, ')');
        }
    } else if (name_is(name, n, "DateTime64")) {
        t = new_type(CH_DATETIME64);
        rc = expect(p, '(');
        if (!rc) rc = read_uint(p, 9, &t->scale, "a DateTime64 precision");
        if (!rc && accept(p, ',')) rc = read_name(p, '\'', &t->timezone, "a time zone");
        if (!rc) rc = expect(p, ')');
    } else if (name_is(name, n, "Decimal")) {
        t = new_type(CH_DECIMAL);
        rc = parse_decimal(p, t, 0);
    } else if (name_is(name, n, "Decimal32")) {
        t = new_type(CH_DECIMAL);
        rc = parse_decimal(p, t, 9);
    } else if (name_is(name, n, "Decimal64")) {
        t = new_type(CH_DECIMAL);
        rc = parse_decimal(p, t, 18);
    } else if (name_is(name, n, "Decimal128")) {
        t = new_type(CH_DECIMAL);
        rc = parse_decimal(p, t, 38);
    } else if (name_is(name, n, "Decimal256")) {
        t = new_type(CH_DECIMAL);
        rc = parse_decimal(p, t, 76);
    } else if (name_is(name, n, "Enum8") || name_is(name, n, "Enum16")) {
        t = new_type(n == 5 ? CH_ENUM8 : CH_ENUM16);
        rc = parse_enum(p, t);
    } else if (name_is(name, n, "Nullable") || name_is(name, n, "LowCardinality") ||
               name_is(name, n, "Array")) {
        t = new_type(name[0] == 'N' ? CH_NULLABLE : name[0] == 'L' ? CH_LOW_CARDINALITY : CH_ARRAY);
        ch_type *child = NULL;
        rc = expect(p, '(');
        if (!rc) rc = parse_type(p, &child);
        if (!rc) add_child(t, child, NULL);
        if (!rc) rc = expect(p, ')');
    } else if (name_is(name, n, "Map")) {
        t = new_type(CH_MAP);
        ch_type *child = NULL;
        rc = expect(p, '(');
        if (!rc) rc = parse_type(p, &child);
        if (!rc) add_child(t, child, NULL);
        if (!rc) rc = expect(p, ',');
        if (!rc) rc = parse_type(p, &child);
        if (!rc) add_child(t, child, NULL);
        if (!rc) rc = expect(p, ')');
    } else if (name_is(name, n, "Tuple")) {
        t = new_type(CH_TUPLE);
        rc = parse_tuple(p, t, false);
    } else if (name_is(name, n, "Nested")) {
        ch_type *tuple = new_type(CH_TUPLE);
        t = new_type(CH_ARRAY);
        add_child(t, tuple, NULL);
        rc = parse_tuple(p, tuple, true);
    } else {
        p->pos -= n;
        return fail(p, CH_TYPE_UNSUPPORTED, "%.*s is not covered by the RowBinary encoder", (int)n,
                    name);
    }
    if (rc) {
        ch_type_free(t);
        return rc;
    }
    *out = t;
    return CH_TYPE_OK;
}

static int parse_type(parser *p, ch_type **out)
{
    *out = NULL;
    if (++p->depth > CH_TYPE_MAX_DEPTH)
        return fail(p, CH_TYPE_INVALID, "nested deeper than %d levels", CH_TYPE_MAX_DEPTH);
    const char *name;
    size_t n = read_ident(p, &name);
    int rc = n == 0 ? fail(p, CH_TYPE_INVALID, "a type name expected at offset %zu", p->pos)
                    : parse_named(p, name, n, out);
    p->depth--;
    return rc;
}

int ch_type_parse(const char *text, size_t len, ch_type **out, char *err, size_t errlen)
{
    parser p = {.s = text, .len = len};
    *out = NULL;
    int rc = parse_type(&p, out);
    if (rc == CH_TYPE_OK) {
        skip_space(&p);
        if (p.pos < p.len) {
            ch_type_free(*out);
            *out = NULL;
            rc = fail(&p, CH_TYPE_INVALID, "unexpected text at offset %zu", p.pos);
        }
    }
    if (rc != CH_TYPE_OK) {
        /* the type text as shown: at most 200 bytes, non-printable bytes as '?' */
        char shown[204];
        size_t n = len < 200 ? len : 200;
        for (size_t i = 0; i < n; i++)
            shown[i] =
                (unsigned char)text[i] >= 0x20 && (unsigned char)text[i] < 0x7f ? text[i] : '?';
        memcpy(shown + n, len > n ? "..." : "", len > n ? 4 : 1);
        errbuf_set(err, errlen, "%s ClickHouse type \"%s\": %s",
                   rc == CH_TYPE_UNSUPPORTED ? "unsupported" : "invalid", shown, p.why);
    }
    return rc;
}

/* ---- canonical text ---- */

/* Appends s[0..len) between quotes, escaping the quote, backslashes and control bytes. */
static void format_quoted(strbuf *out, char quote, const char *s, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    strbuf_putc(out, quote);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == (unsigned char)quote || c == '\\') {
            strbuf_putc(out, '\\');
            strbuf_putc(out, (char)c);
        } else if (c < 0x20 || c == 0x7f) {
            char esc[4] = {'\\', 'x', hex[c >> 4], hex[c & 15]};
            strbuf_append(out, esc, 4);
        } else {
            strbuf_putc(out, (char)c);
        }
    }
    strbuf_putc(out, quote);
}

static bool is_plain_ident(const char *s)
{
    if (!is_ident_start(s[0])) return false;
    for (size_t i = 1; s[i]; i++)
        if (!is_ident_char(s[i])) return false;
    return true;
}

void ch_type_format(const ch_type *t, strbuf *out)
{
    for (size_t i = 0; i < sizeof simple_types / sizeof simple_types[0]; i++)
        if (simple_types[i].kind == t->kind) {
            strbuf_puts(out, simple_types[i].name);
            return;
        }
    switch (t->kind) {
    case CH_FIXED_STRING:
        strbuf_printf(out, "FixedString(%u)", t->size);
        return;
    case CH_DATETIME:
        strbuf_puts(out, "DateTime");
        if (t->timezone) {
            strbuf_putc(out, '(');
            format_quoted(out, '\'', t->timezone, strlen(t->timezone));
            strbuf_putc(out, ')');
        }
        return;
    case CH_DATETIME64:
        strbuf_printf(out, "DateTime64(%u", t->scale);
        if (t->timezone) {
            strbuf_puts(out, ", ");
            format_quoted(out, '\'', t->timezone, strlen(t->timezone));
        }
        strbuf_putc(out, ')');
        return;
    case CH_DECIMAL:
        strbuf_printf(out, "Decimal(%u, %u)", t->precision, t->scale);
        return;
    case CH_ENUM8:
    case CH_ENUM16:
        strbuf_puts(out, t->kind == CH_ENUM8 ? "Enum8(" : "Enum16(");
        for (size_t i = 0; i < t->nitems; i++) {
            if (i) strbuf_puts(out, ", ");
            format_quoted(out, '\'', t->items[i].name, t->items[i].name_len);
            strbuf_printf(out, " = %d", t->items[i].value);
        }
        strbuf_putc(out, ')');
        return;
    case CH_LOW_CARDINALITY:
    case CH_NULLABLE:
    case CH_ARRAY:
    case CH_MAP:
    case CH_TUPLE:
        strbuf_puts(out, t->kind == CH_LOW_CARDINALITY ? "LowCardinality("
                         : t->kind == CH_NULLABLE      ? "Nullable("
                         : t->kind == CH_ARRAY         ? "Array("
                         : t->kind == CH_MAP           ? "Map("
                                                       : "Tuple(");
        for (size_t i = 0; i < t->nchildren; i++) {
            if (i) strbuf_puts(out, ", ");
            if (t->names) {
                if (is_plain_ident(t->names[i]))
                    strbuf_puts(out, t->names[i]);
                else
                    format_quoted(out, '`', t->names[i], strlen(t->names[i]));
                strbuf_putc(out, ' ');
            }
            ch_type_format(t->children[i], out);
        }
        strbuf_putc(out, ')');
        return;
    default:
        strbuf_puts(out, "?"); /* every kind is handled above */
        return;
    }
}
