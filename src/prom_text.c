/*
 * prom_text — Prometheus text format 0.0.4 (see include/cdcpipe/prom_text.h).
 */
#include "cdcpipe/prom_text.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cdcpipe/utf8.h"

/* The length of the valid UTF-8 sequence at s[0..len), or 0 when the byte there starts none. */
static size_t utf8_sequence(const unsigned char *s, size_t len)
{
    size_t n = s[0] < 0x80 ? 1 : s[0] >= 0xf0 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc0 ? 2 : 0;
    if (n == 0 || n > len || !utf8_valid(s, n)) return 0;
    return n;
}

void prom_label_value(strbuf *out, const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        size_t run = i; /* plain bytes are copied in runs */
        while (run < len && p[run] >= 0x20 && p[run] < 0x80 && p[run] != '\\' && p[run] != '"')
            run++;
        if (run > i) {
            strbuf_append(out, s + i, run - i);
            i = run;
            continue;
        }
        unsigned char c = p[i];
        if (c == '\\' || c == '"') {
            strbuf_putc(out, '\\');
            strbuf_putc(out, (char)c);
            i++;
        } else if (c == '\n') {
            strbuf_puts(out, "\\n");
            i++;
        } else if (c < 0x80) { /* other controls are legal in a label value */
            strbuf_putc(out, (char)c);
            i++;
        } else {
            size_t n = utf8_sequence(p + i, len - i);
            if (n) {
                strbuf_append(out, s + i, n);
                i += n;
            } else {
                strbuf_puts(out, "\xef\xbf\xbd"); /* U+FFFD */
                i++;
            }
        }
    }
}

void prom_header(strbuf *out, const char *name, const char *type, const char *help)
{
    strbuf_printf(out, "# HELP %s ", name);
    for (const char *c = help; *c; c++) {
        if (*c == '\\')
            strbuf_puts(out, "\\\\");
        else if (*c == '\n')
            strbuf_puts(out, "\\n");
        else
            strbuf_putc(out, *c);
    }
    strbuf_printf(out, "\n# TYPE %s %s\n", name, type);
}

void prom_value(strbuf *out, double v)
{
    if (isnan(v)) {
        strbuf_puts(out, "NaN");
        return;
    }
    if (isinf(v)) {
        strbuf_puts(out, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    if (v == floor(v) && fabs(v) < 1e15) {
        strbuf_printf(out, "%.0f", v);
        return;
    }
    char text[40];
    snprintf(text, sizeof text, "%.15g", v);
    if (strtod(text, NULL) != v) snprintf(text, sizeof text, "%.17g", v);
    strbuf_puts(out, text);
}

void prom_sample(strbuf *out, const char *name, const char *suffix, const char *const *names,
                 const char *const *values, size_t nlabels, const char *le, double value)
{
    strbuf_puts(out, name);
    if (suffix) strbuf_puts(out, suffix);
    if (nlabels || le) {
        strbuf_putc(out, '{');
        for (size_t i = 0; i < nlabels; i++) {
            strbuf_printf(out, "%s%s=\"", i ? "," : "", names[i]);
            prom_label_value(out, values[i], strlen(values[i]));
            strbuf_putc(out, '"');
        }
        if (le) strbuf_printf(out, "%sle=\"%s\"", nlabels ? "," : "", le);
        strbuf_putc(out, '}');
    }
    strbuf_putc(out, ' ');
    prom_value(out, value);
    strbuf_putc(out, '\n');
}

long prom_unescape_label_value(const char *in, size_t len, strbuf *out)
{
    for (size_t i = 0; i < len; i++) {
        char c = in[i];
        if (c == '"') return (long)i + 1;
        if (c == '\n') return -1;
        if (c != '\\') {
            strbuf_putc(out, c);
            continue;
        }
        if (++i == len) return -1;
        if (in[i] == 'n')
            strbuf_putc(out, '\n');
        else if (in[i] == '\\' || in[i] == '"')
            strbuf_putc(out, in[i]);
        else
            return -1;
    }
    return -1;
}
