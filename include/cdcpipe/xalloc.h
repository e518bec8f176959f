/*
 * xalloc — the one allocate-or-abort helper, and an invariant check that names where it broke.
 *
 * cdcpipe does not try to carry on without memory: a buffer it cannot grow holds an event it
 * cannot handle safely. These report the size asked for on stderr and abort (no log call: the
 * logger may itself need memory). Sizes that cannot be represented (n * size overflowing) are
 * treated as out of memory.
 *
 * CDC_ASSERT(cond) checks an invariant of the code (never of the input: bad input gets an error
 * naming it). A broken one reports "internal error at FILE:LINE: cond" and aborts, in every
 * build type (unlike assert(), it does not vanish with NDEBUG).
 */
#ifndef CDCPIPE_XALLOC_H
#define CDCPIPE_XALLOC_H

#include <stddef.h>

/* realloc(p, n * size) or abort; n * size == 0 allocates one byte (never returns NULL). */
void *xrealloc(void *p, size_t n, size_t size);
void *xmalloc(size_t size);
void *xcalloc(size_t n, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t len);

_Noreturn void cdc_assert_failed(const char *file, int line, const char *what);

#define CDC_ASSERT(cond) ((cond) ? (void)0 : cdc_assert_failed(__FILE__, __LINE__, #cond))

#endif
