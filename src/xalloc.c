/*
 * xalloc — allocate or abort (see include/cdcpipe/xalloc.h).
 */
#include "cdcpipe/xalloc.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Noreturn void out_of_memory(size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size)
        fprintf(stderr, "cdcpipe: out of memory (%zu × %zu bytes)\n", n, size);
    else
        fprintf(stderr, "cdcpipe: out of memory (%zu bytes)\n", n * size);
    abort();
}

void *xrealloc(void *p, size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size) out_of_memory(n, size);
    size_t bytes = n * size;
    void *q = realloc(p, bytes ? bytes : 1);
    if (!q) out_of_memory(n, size);
    return q;
}

void *xmalloc(size_t size)
{
    return xrealloc(NULL, 1, size);
}

void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) out_of_memory(n, size);
    return p;
}

char *xstrndup(const char *s, size_t len)
{
    char *copy = xmalloc(len + 1);
    memcpy(copy, s, len);
    copy[len] = '\0';
    return copy;
}

char *xstrdup(const char *s)
{
    return xstrndup(s, strlen(s));
}

void cdc_assert_failed(const char *file, int line, const char *what)
{
    fprintf(stderr, "cdcpipe: internal error at %s:%d: %s does not hold\n", file, line, what);
    abort();
}
