/*
 * errbuf — the project's error convention: functions return a code and describe the failure in a
 * caller-owned buffer (char *err, size_t errlen). errbuf_set formats into it.
 */
#ifndef CDCPIPE_ERRBUF_H
#define CDCPIPE_ERRBUF_H

#include <stddef.h>

/* Formats the message into err (cut to errlen bytes); does nothing when err is NULL or errlen 0. */
void errbuf_set(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
