/*
 * compress — an HTTP request body compressed for a `Content-Encoding` (--clickhouse-compression):
 * gzip (zlib, level 1), zstd (libzstd, level 3, one frame) or lz4 (liblz4's LZ4 frame format,
 * what the `lz4` tool writes; not ClickHouse's own block framing of `decompress=1`).
 *
 * A body is compressed in pieces (compress_add per span, no copy of the whole body first) into a
 * strbuf the caller owns and reuses. compress_body_decode is the inverse, for tests and the fuzz
 * target. Errors return -1 with a message in the caller's err buffer; they only come from the
 * libraries (out of memory, a corrupt input to decode).
 */
#ifndef CDCPIPE_COMPRESS_H
#define CDCPIPE_COMPRESS_H

#include <stddef.h>

#include "cdcpipe/strbuf.h"

typedef enum {
    COMPRESS_NONE = 0,
    COMPRESS_GZIP,
    COMPRESS_ZSTD,
    COMPRESS_LZ4,
} compress_method;

/* "none", "gzip", "zstd", "lz4" → the method; -1 for anything else. */
int compress_parse(const char *name, compress_method *m);
/* The method's name, which is also its Content-Encoding token ("none" for COMPRESS_NONE). */
const char *compress_name(compress_method m);

typedef struct {
    compress_method method;
    void *state; /* the library's stream */
    strbuf *out;
} compress_stream;

/* Starts a body in `method` (not COMPRESS_NONE); out is reset and receives the compressed
 * bytes. Every successful begin needs a compress_end (which also frees the stream). */
int compress_begin(compress_stream *s, compress_method method, strbuf *out, char *err,
                   size_t errlen);
int compress_add(compress_stream *s, const void *data, size_t len, char *err, size_t errlen);
/* Finishes the body (out then holds it whole) and frees the stream; called after a failed add
 * too (then it only frees). Returns 0 or -1. */
int compress_end(compress_stream *s, char *err, size_t errlen);

/* Decompresses data[0..len) of `method` and appends the result to out, refusing to produce more
 * than max_out bytes. Returns 0, or -1 with err for corrupt or truncated input. */
int compress_body_decode(compress_method method, const void *data, size_t len, size_t max_out,
                         strbuf *out, char *err, size_t errlen);

#endif
