/*
 * compress — request bodies for a Content-Encoding (see include/cdcpipe/compress.h).
 *
 * Each method streams into the caller's strbuf, growing it by at least OUT_STEP bytes at a time;
 * nothing else is kept between calls but the library's stream state.
 */
#include "cdcpipe/compress.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <lz4frame.h>
#include <zlib.h>
#include <zstd.h>

#include "cdcpipe/errbuf.h"
#include "cdcpipe/xalloc.h"

#define OUT_STEP   (64 * 1024)
#define GZIP_LEVEL 1 /* zlib's fastest: gzip is for old servers, not for ratio */
#define ZSTD_LEVEL 3 /* zstd's default: faster than gzip -1 and smaller */

static const char *const names[] = {"none", "gzip", "zstd", "lz4"};

int compress_parse(const char *name, compress_method *m)
{
    for (size_t i = 0; name && i < sizeof names / sizeof names[0]; i++) {
        if (strcmp(name, names[i]) == 0) {
            *m = (compress_method)i;
            return 0;
        }
    }
    return -1;
}

const char *compress_name(compress_method m)
{
    return (size_t)m < sizeof names / sizeof names[0] ? names[m] : "?";
}

/* Room for at least `want` more bytes at out->data + out->len. */
static size_t room(strbuf *out, size_t want)
{
    strbuf_reserve(out, want > OUT_STEP ? want : OUT_STEP);
    return out->cap - out->len - 1; /* the strbuf keeps a byte for its NUL */
}

/* ---- gzip ---- */

static int gzip_run(compress_stream *s, const void *data, size_t len, int flush, char *err,
                    size_t errlen)
{
    z_stream *z = s->state;
    z->next_in = (Bytef *)(uintptr_t)data;
    z->avail_in = 0;
    size_t left = len;
    int rc;
    do {
        if (z->avail_in == 0 && left) { /* avail_in is 32 bits: feed at most 1 GiB at a time */
            const size_t n = left > (1u << 30) ? (1u << 30) : left;
            z->avail_in = (uInt)n;
            left -= n;
        }
        const size_t r = room(s->out, 0);
        const uInt avail = r > (1u << 30) ? (1u << 30) : (uInt)r;
        z->next_out = (Bytef *)s->out->data + s->out->len;
        z->avail_out = avail;
        rc = deflate(z, left ? Z_NO_FLUSH : flush);
        s->out->len += avail - z->avail_out;
        if (rc == Z_STREAM_ERROR) {
            errbuf_set(err, errlen, "gzip: %s", z->msg ? z->msg : "deflate failed");
            return -1;
        }
    } while (left || z->avail_in || (flush == Z_FINISH ? rc != Z_STREAM_END : z->avail_out == 0));
    return 0;
}

/* ---- zstd ---- */

static int zstd_run(compress_stream *s, const void *data, size_t len, ZSTD_EndDirective mode,
                    char *err, size_t errlen)
{
    ZSTD_inBuffer in = {data, len, 0};
    size_t remaining;
    do {
        const size_t r = room(s->out, ZSTD_CStreamOutSize());
        ZSTD_outBuffer out = {s->out->data + s->out->len, r, 0};
        remaining = ZSTD_compressStream2(s->state, &out, &in, mode);
        if (ZSTD_isError(remaining)) {
            errbuf_set(err, errlen, "zstd: %s", ZSTD_getErrorName(remaining));
            return -1;
        }
        s->out->len += out.pos;
    } while (mode == ZSTD_e_end ? remaining != 0 : in.pos < in.size);
    return 0;
}

/* ---- lz4 ---- */

static const LZ4F_preferences_t lz4_prefs = {.frameInfo = {.blockSizeID = LZ4F_max4MB}};

/* LZ4F_compressUpdate wants room for the worst case of what it is given: feed 4 MiB at most. */
#define LZ4_PIECE (4u << 20)

static int lz4_check(size_t rc, char *err, size_t errlen)
{
    if (!LZ4F_isError(rc)) return 0;
    errbuf_set(err, errlen, "lz4: %s", LZ4F_getErrorName(rc));
    return -1;
}

/* ---- the stream ---- */

int compress_begin(compress_stream *s, compress_method method, strbuf *out, char *err,
                   size_t errlen)
{
    *s = (compress_stream){method, NULL, out};
    strbuf_reset(out);
    switch (method) {
    case COMPRESS_GZIP: {
        z_stream *z = xcalloc(1, sizeof *z);
        /* windowBits 15 + 16: a gzip header and trailer, not a bare zlib stream */
        if (deflateInit2(z, GZIP_LEVEL, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
            free(z);
            errbuf_set(err, errlen, "gzip: cannot start a stream (out of memory)");
            return -1;
        }
        s->state = z;
        return 0;
    }
    case COMPRESS_ZSTD: {
        ZSTD_CCtx *z = ZSTD_createCCtx();
        if (!z) abort(); /* out of memory, as xalloc would */
        ZSTD_CCtx_setParameter(z, ZSTD_c_compressionLevel, ZSTD_LEVEL);
        s->state = z;
        return 0;
    }
    case COMPRESS_LZ4: {
        LZ4F_cctx *z = NULL;
        if (lz4_check(LZ4F_createCompressionContext(&z, LZ4F_VERSION), err, errlen) != 0) return -1;
        s->state = z;
        const size_t r = room(out, LZ4F_HEADER_SIZE_MAX);
        const size_t n = LZ4F_compressBegin(z, out->data + out->len, r, &lz4_prefs);
        if (lz4_check(n, err, errlen) != 0) return -1;
        out->len += n;
        return 0;
    }
    case COMPRESS_NONE:
        break;
    }
    errbuf_set(err, errlen, "no compression method %d", (int)method);
    return -1;
}

int compress_add(compress_stream *s, const void *data, size_t len, char *err, size_t errlen)
{
    if (!s->state) {
        errbuf_set(err, errlen, "%s: the stream was not started", compress_name(s->method));
        return -1;
    }
    switch (s->method) {
    case COMPRESS_GZIP:
        return gzip_run(s, data, len, Z_NO_FLUSH, err, errlen);
    case COMPRESS_ZSTD:
        return zstd_run(s, data, len, ZSTD_e_continue, err, errlen);
    case COMPRESS_LZ4:
        for (size_t off = 0; off < len;) {
            const size_t n = len - off > LZ4_PIECE ? LZ4_PIECE : len - off;
            const size_t r = room(s->out, LZ4F_compressBound(n, &lz4_prefs));
            const size_t w = LZ4F_compressUpdate(s->state, s->out->data + s->out->len, r,
                                                 (const char *)data + off, n, NULL);
            if (lz4_check(w, err, errlen) != 0) return -1;
            s->out->len += w;
            off += n;
        }
        return 0;
    case COMPRESS_NONE:
        break;
    }
    return -1;
}

int compress_end(compress_stream *s, char *err, size_t errlen)
{
    int rc = -1;
    if (!s->state) {
        errbuf_set(err, errlen, "%s: the stream was not started", compress_name(s->method));
        return -1;
    }
    switch (s->method) {
    case COMPRESS_GZIP:
        rc = gzip_run(s, NULL, 0, Z_FINISH, err, errlen);
        deflateEnd(s->state);
        free(s->state);
        break;
    case COMPRESS_ZSTD:
        rc = zstd_run(s, NULL, 0, ZSTD_e_end, err, errlen);
        ZSTD_freeCCtx(s->state);
        break;
    case COMPRESS_LZ4: {
        const size_t r = room(s->out, LZ4F_compressBound(0, &lz4_prefs));
        const size_t w = LZ4F_compressEnd(s->state, s->out->data + s->out->len, r, NULL);
        rc = lz4_check(w, err, errlen);
        if (rc == 0) s->out->len += w;
        LZ4F_freeCompressionContext(s->state);
        break;
    }
    case COMPRESS_NONE:
        break;
    }
    s->state = NULL;
    if (s->out->data) s->out->data[s->out->len] = '\0';
    return rc;
}

/* ---- decoding (tests, fuzzing) ---- */

static int too_big(size_t max_out, char *err, size_t errlen)
{
    errbuf_set(err, errlen, "the decompressed body is larger than %zu bytes", max_out);
    return -1;
}

int compress_body_decode(compress_method method, const void *data, size_t len, size_t max_out,
                         strbuf *out, char *err, size_t errlen)
{
    const size_t start = out->len;
    int rc = -1;
    switch (method) {
    case COMPRESS_GZIP: {
        z_stream z = {0};
        if (inflateInit2(&z, 15 + 16) != Z_OK) abort();
        z.next_in = (Bytef *)(uintptr_t)data;
        z.avail_in = len > (1u << 30) ? (1u << 30) : (uInt)len;
        int zr = Z_OK;
        while (zr == Z_OK) {
            if (out->len - start > max_out) break;
            const size_t r = room(out, 0);
            z.next_out = (Bytef *)out->data + out->len;
            z.avail_out = r > (1u << 30) ? (1u << 30) : (uInt)r;
            const uInt before = z.avail_out;
            zr = inflate(&z, Z_NO_FLUSH);
            out->len += before - z.avail_out;
            if (zr == Z_BUF_ERROR) break; /* no progress with room to spare: truncated */
        }
        if (out->len - start > max_out)
            rc = too_big(max_out, err, errlen);
        else if (zr != Z_STREAM_END || z.avail_in != 0)
            errbuf_set(err, errlen, "gzip: %s",
                       zr == Z_STREAM_END ? "data after the end of the stream"
                       : z.msg            ? z.msg
                                          : "truncated");
        else
            rc = 0;
        inflateEnd(&z);
        break;
    }
    case COMPRESS_ZSTD: {
        ZSTD_DCtx *z = ZSTD_createDCtx();
        if (!z) abort();
        ZSTD_inBuffer in = {data, len, 0};
        size_t zr = 1;
        while (in.pos < in.size || zr != 0) {
            if (out->len - start > max_out) break;
            const size_t r = room(out, ZSTD_DStreamOutSize());
            ZSTD_outBuffer o = {out->data + out->len, r, 0};
            const size_t before_in = in.pos;
            zr = ZSTD_decompressStream(z, &o, &in);
            if (ZSTD_isError(zr)) break;
            out->len += o.pos;
            if (o.pos == 0 && in.pos == before_in) break; /* truncated: no progress */
        }
        if (out->len - start > max_out)
            rc = too_big(max_out, err, errlen);
        else if (ZSTD_isError(zr))
            errbuf_set(err, errlen, "zstd: %s", ZSTD_getErrorName(zr));
        else if (zr != 0)
            errbuf_set(err, errlen, "zstd: truncated");
        else
            rc = 0;
        ZSTD_freeDCtx(z);
        break;
    }
    case COMPRESS_LZ4: {
        LZ4F_dctx *z = NULL;
        if (LZ4F_isError(LZ4F_createDecompressionContext(&z, LZ4F_VERSION))) abort();
        size_t pos = 0, hint = 1;
        while (pos < len && hint != 0) {
            if (out->len - start > max_out) break;
            size_t r = room(out, 0), in = len - pos;
            hint =
                LZ4F_decompress(z, out->data + out->len, &r, (const char *)data + pos, &in, NULL);
            if (LZ4F_isError(hint)) break;
            out->len += r;
            pos += in;
            if (r == 0 && in == 0) break;
        }
        if (out->len - start > max_out)
            rc = too_big(max_out, err, errlen);
        else if (LZ4F_isError(hint))
            errbuf_set(err, errlen, "lz4: %s", LZ4F_getErrorName(hint));
        else if (hint != 0)
            errbuf_set(err, errlen, "lz4: truncated");
        else if (pos != len)
            errbuf_set(err, errlen, "lz4: data after the end of the frame");
        else
            rc = 0;
        LZ4F_freeDecompressionContext(z);
        break;
    }
    case COMPRESS_NONE:
        strbuf_append(out, data, len);
        rc = len > max_out ? too_big(max_out, err, errlen) : 0;
        break;
    }
    if (rc != 0) strbuf_truncate(out, start);
    if (out->data) out->data[out->len] = '\0';
    return rc;
}
