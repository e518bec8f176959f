/*
 * fuzz_compress — the request-body encoders (compress.c) on arbitrary bodies: the first byte picks
 * the method and how the body is cut into compress_add pieces; every body compresses without an
 * error and decodes back (compress_body_decode) to exactly the bytes added. The rest of the input
 * is also fed to the decoder as if it were a compressed body: corrupt input must fail cleanly.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cdcpipe/compress.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    static const compress_method methods[] = {COMPRESS_GZIP, COMPRESS_ZSTD, COMPRESS_LZ4};
    compress_method method = methods[data[0] % 3];
    size_t piece = (size_t)(data[0] >> 2) + 1; /* 1..64 bytes per compress_add */
    const uint8_t *body = data + 1;
    size_t len = size - 1;
    char err[256];
    strbuf out = {0}, back = {0};
    compress_stream s;
    if (compress_begin(&s, method, &out, err, sizeof err) != 0) abort();
    for (size_t at = 0; at < len; at += piece)
        if (compress_add(&s, body + at, len - at < piece ? len - at : piece, err, sizeof err) != 0)
            abort();
    if (compress_end(&s, err, sizeof err) != 0) abort();
    if (compress_body_decode(method, out.data, out.len, len, &back, err, sizeof err) != 0) abort();
    if (back.len != len || (len && memcmp(back.data, body, len) != 0)) abort();
    strbuf_reset(&back);
    (void)compress_body_decode(method, body, len, 1 << 20, &back, err, sizeof err);
    strbuf_free(&out);
    strbuf_free(&back);
    return 0;
}
