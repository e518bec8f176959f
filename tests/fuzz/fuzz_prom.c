/*
 * fuzz_prom — the Prometheus text encoder (prom_text.c) on arbitrary label values and numbers:
 * a sample line is always one line of valid UTF-8 whose label value reads back (the escapes
 * undone) as the input when the input is valid UTF-8, and parses up to its closing quote.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cdcpipe/prom_text.h"
#include "cdcpipe/utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    strbuf line = {0}, back = {0};
    strbuf_puts(&line, "m{l=\"");
    prom_label_value(&line, (const char *)data, size);
    strbuf_puts(&line, "\"} ");
    double v = 0;
    if (size >= sizeof v) memcpy(&v, data, sizeof v);
    prom_value(&line, v);
    strbuf_putc(&line, '\n');
    if (!utf8_valid(line.data, line.len)) abort();
    if (memchr(line.data, '\n', line.len) != line.data + line.len - 1) abort();
    long used = prom_unescape_label_value(line.data + 5, line.len - 5, &back);
    if (used < 0 || line.data[5 + used] != '}') abort();
    if (utf8_valid(data, size) &&
        (back.len != size || (size && memcmp(back.data, data, size) != 0)))
        abort();
    strbuf_free(&line);
    strbuf_free(&back);
    return 0;
}
