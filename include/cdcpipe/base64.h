/*
 * base64 — encoding bytes as base64 text (RFC 4648, padded; the URL-safe alphabet on request).
 * Used for binary dead-letter payloads and Debezium's binary placeholders.
 */
#ifndef CDCPIPE_BASE64_H
#define CDCPIPE_BASE64_H

#include <stdbool.h>
#include <stddef.h>

#include "cdcpipe/strbuf.h"

/* Appends the base64 text of b[0..n) to out; url selects '-' and '_' for '+' and '/'. */
void base64_encode(const void *b, size_t n, bool url, strbuf *out);

#endif
