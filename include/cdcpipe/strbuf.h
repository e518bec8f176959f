/*
 * strbuf — a growable byte buffer. The one place that grows memory for text we build
 * (rows, URLs, SQL). Buffers are reused: strbuf_reset keeps the capacity.
 */
#ifndef CDCPIPE_STRBUF_H
#define CDCPIPE_STRBUF_H

#include <stdbool.h>
#include <stddef.h>

typedef struct {
    char *data; /* always NUL-terminated once anything was appended */
    size_t len;
    size_t cap;
} strbuf;

/* Ensures room for `extra` more bytes plus a NUL. Aborts the process when out of memory: a
 * row that cannot be buffered cannot be handled any other safe way. */
void strbuf_reserve(strbuf *b, size_t extra);
void strbuf_append(strbuf *b, const char *s, size_t len);
void strbuf_puts(strbuf *b, const char *s);
void strbuf_putc(strbuf *b, char c);
void strbuf_printf(strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Drops everything after the first `len` bytes. */
void strbuf_truncate(strbuf *b, size_t len);
void strbuf_reset(strbuf *b);
void strbuf_free(strbuf *b);

#endif
