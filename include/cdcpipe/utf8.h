/*
 * utf8 — strict UTF-8 validation (RFC 3629: no overlong forms, no surrogates, nothing above
 * U+10FFFF). Used by the JSON decoder for strings and by the dead-letter sink to decide whether
 * a payload can be written as text.
 */
#ifndef CDCPIPE_UTF8_H
#define CDCPIPE_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* true when s[0..len) is valid UTF-8. */
bool utf8_valid(const void *s, size_t len);

#endif
