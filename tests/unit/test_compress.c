/*
 * test_compress — request bodies for --clickhouse-compression (include/cdcpipe/compress.h):
 * every method round-trips bodies given in pieces of any size (empty, one byte, 20 MB of rows
 * spread over many spans) through its own decoder and through the standard tools' format
 * (gzip -d, zstd -d, lz4 -d read what we write); names parse; corrupt or truncated input and an
 * output past the limit are refused.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cdcpipe/compress.h"

#include "support.h"

static const compress_method methods[] = {COMPRESS_GZIP, COMPRESS_ZSTD, COMPRESS_LZ4};

/* Compresses body[0..len) given in pieces of `piece` bytes (0: one piece) into out. */
static void compress_in_pieces(compress_method m, const char *body, size_t len, size_t piece,
                               strbuf *out)
{
    char err[256] = "";
    compress_stream z;
    if (compress_begin(&z, m, out, err, sizeof err) != 0)
        fail_msg("%s: begin: %s", compress_name(m), err);
    for (size_t off = 0; off < len || (off == 0 && len == 0);) {
        size_t n = piece && len - off > piece ? piece : len - off;
        if (compress_add(&z, body + off, n, err, sizeof err) != 0)
            fail_msg("%s: add: %s", compress_name(m), err);
        off += n;
        if (len == 0) break;
    }
    if (compress_end(&z, err, sizeof err) != 0) fail_msg("%s: end: %s", compress_name(m), err);
}

static void round_trip(compress_method m, const char *body, size_t len, size_t piece)
{
    strbuf z = {0}, back = {0};
    char err[256] = "";
    compress_in_pieces(m, body, len, piece, &z);
    if (compress_body_decode(m, z.data, z.len, len + 1, &back, err, sizeof err) != 0)
        fail_msg("%s (%zu bytes in pieces of %zu): decode: %s", compress_name(m), len, piece, err);
    if (back.len != len || (len && memcmp(back.data, body, len) != 0))
        fail_msg("%s (%zu bytes in pieces of %zu): %zu bytes came back, not the same",
                 compress_name(m), len, piece, back.len);
    strbuf_free(&z);
    strbuf_free(&back);
}

/* 20 MB of JSON-ish rows: compressible, larger than every internal step. */
static char *rows_body(size_t *len)
{
    strbuf b = {0};
    for (unsigned i = 0; b.len < 20u << 20; i++)
        strbuf_printf(&b, "{\"id\":%u,\"name\":\"name-%u\",\"score\":%u.5,\"pad\":\"%08x\"}\n", i,
                      i * 7919u % 100003u, i % 97, i * 2654435761u);
    *len = b.len;
    return b.data;
}

static void every_method_round_trips(void **state)
{
    (void)state;
    size_t big_len;
    char *big = rows_body(&big_len);
    const char one[] = "x";
    char noise[100000];
    for (size_t i = 0; i < sizeof noise; i++) /* incompressible: output larger than input */
        noise[i] = (char)((i * 2654435761u) >> 13);
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
        round_trip(methods[i], "", 0, 0);
        round_trip(methods[i], one, 1, 0);
        round_trip(methods[i], noise, sizeof noise, 0);
        round_trip(methods[i], noise, sizeof noise, 7);
        round_trip(methods[i], big, big_len, 0);
        round_trip(methods[i], big, big_len, 300); /* a row per span, as ch_insert gives them */
    }
    free(big);
}

/* The standard command-line tools read what cdcpipe writes (the Content-Encoding formats). */
static void the_standard_tools_read_it(void **state)
{
    (void)state;
    static const char *const tools[] = {"gzip -dc", "zstd -dcq", "lz4 -dcq"};
    const char body[] = "INSERT INTO t (id) FORMAT JSONEachRow\n{\"id\":1}\n{\"id\":2}\n";
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
        strbuf z = {0};
        compress_in_pieces(methods[i], body, sizeof body - 1, 10, &z);
        char path[64], cmd[160], got[256] = "";
        snprintf(path, sizeof path, "body.%s", compress_name(methods[i]));
        FILE *f = fopen(path, "wb");
        assert_non_null(f);
        assert_int_equal(fwrite(z.data, 1, z.len, f), z.len);
        fclose(f);
        snprintf(cmd, sizeof cmd, "%s %s", tools[i], path);
        FILE *p = popen(cmd, "r");
        assert_non_null(p);
        size_t n = fread(got, 1, sizeof got - 1, p);
        int rc = pclose(p);
        if (rc != 0 || n != sizeof body - 1 || memcmp(got, body, n) != 0)
            fail_msg("%s could not read cdcpipe's %s body (exit %d, %zu bytes)", tools[i],
                     compress_name(methods[i]), rc, n);
        strbuf_free(&z);
    }
}

static void names_parse(void **state)
{
    (void)state;
    compress_method m;
    static const char *const names[] = {"none", "gzip", "zstd", "lz4"};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(compress_parse(names[i], &m), 0);
        assert_int_equal((int)m, i);
        assert_string_equal(compress_name(m), names[i]);
    }
    assert_int_equal(compress_parse("deflate", &m), -1);
    assert_int_equal(compress_parse("GZIP", &m), -1);
    assert_int_equal(compress_parse(NULL, &m), -1);
}

static void bad_input_is_refused(void **state)
{
    (void)state;
    const char body[] = "a body long enough to be worth compressing, a body long enough";
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
        const compress_method m = methods[i];
        strbuf z = {0}, out = {0};
        char err[256] = "";
        compress_in_pieces(m, body, sizeof body - 1, 0, &z);
        if (compress_body_decode(m, z.data, z.len - 3, 1 << 20, &out, err, sizeof err) == 0)
            fail_msg("%s: a truncated body decoded", compress_name(m));
        assert_int_equal(out.len, 0);
        if (compress_body_decode(m, z.data, z.len, 10, &out, err, sizeof err) == 0)
            fail_msg("%s: a body past the output limit decoded", compress_name(m));
        assert_non_null(strstr(err, "larger than 10 bytes"));
        if (compress_body_decode(m, "not compressed at all", 21, 1 << 20, &out, err, sizeof err) ==
            0)
            fail_msg("%s: plain text decoded", compress_name(m));
        assert_int_equal(out.len, 0);
        strbuf_free(&z);
        strbuf_free(&out);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_method_round_trips),
        cmocka_unit_test(the_standard_tools_read_it),
        cmocka_unit_test(names_parse),
        cmocka_unit_test(bad_input_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
