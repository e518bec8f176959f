/*
 * prom_text — the Prometheus text exposition format 0.0.4, as pure functions onto a strbuf: the
 * # HELP and # TYPE lines, sample lines with their labels, label-value escaping and number
 * formatting. metrics.c renders /metrics with them; they hold no state and take no lock.
 *
 * Label values are written as the format asks (backslash, double quote and line feed escaped as
 * \\ \" \n); a byte that is not part of valid UTF-8 becomes U+FFFD, so a table or topic name
 * with bad bytes can never make Prometheus reject the whole scrape.
 *
 * @locality: any thread; @locks: none.
 */
#ifndef CDCPIPE_PROM_TEXT_H
#define CDCPIPE_PROM_TEXT_H

#include <stdbool.h>
#include <stddef.h>

#include "cdcpipe/strbuf.h"

/* The Content-Type of a page of this format. */
#define PROM_TEXT_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Appends s[0..len) escaped as a label value (without the surrounding quotes). */
void prom_label_value(strbuf *out, const char *s, size_t len);

/* Appends "# HELP name help\n# TYPE name type\n"; help is escaped (\\ and \n). */
void prom_header(strbuf *out, const char *name, const char *type, const char *help);

/* Appends a number as the format writes it: NaN, +Inf, -Inf, integers without a fraction, else
 * the shortest of %.15g / %.17g that reads back as the same double. */
void prom_value(strbuf *out, double v);

/* Appends one sample line: name suffix{names[0]="values[0]",...,le="le"} value\n. suffix
 * ("_bucket", "_sum", ...) and le may be NULL; with no label at all there are no braces. */
void prom_sample(strbuf *out, const char *name, const char *suffix, const char *const *names,
                 const char *const *values, size_t nlabels, const char *le, double value);

/* Reads back an escaped label value from in[0..len) up to its closing quote (not included in
 * the input given: in starts after the opening quote). Appends the value to out and returns how
 * many bytes of in it used, the closing quote included; -1 when in is not a well-formed escaped
 * value followed by a quote. For tests and the fuzz target. */
long prom_unescape_label_value(const char *in, size_t len, strbuf *out);

#endif
