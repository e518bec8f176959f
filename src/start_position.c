/*
 * start_position — parsing --from (see include/cdcpipe/start_position.h).
 */
#include "cdcpipe/start_position.h"
#include "cdcpipe/errbuf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int start_position_parse(const char *text, start_position *pos, char *err, size_t errlen)
{
    pos->timestamp_ms = 0;
    if (strcmp(text, "committed") == 0) {
        pos->kind = START_COMMITTED;
        return 0;
    }
    if (strcmp(text, "beginning") == 0) {
        pos->kind = START_BEGINNING;
        return 0;
    }
    if (strcmp(text, "end") == 0) {
        pos->kind = START_END;
        return 0;
    }
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno == 0 && end != text && text[0] != '+') {
        if (*end == '\0' && v >= 0) {
            pos->kind = START_TIMESTAMP;
            pos->timestamp_ms = v;
            return 0;
        }
        long long unit = 0;
        if (strcmp(end, "s") == 0)
            unit = 1000;
        else if (strcmp(end, "m") == 0)
            unit = 60 * 1000;
        else if (strcmp(end, "h") == 0)
            unit = 3600 * 1000;
        if (text[0] == '-' && unit && v < 0 && -v < 100LL * 365 * 24 * 3600) {
            struct timespec now;
            clock_gettime(CLOCK_REALTIME, &now);
            pos->kind = START_TIMESTAMP;
            pos->timestamp_ms =
                (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000 + (int64_t)(v * unit);
            return 0;
        }
    }
    errbuf_set(err, errlen,
               "--from \"%s\" is not a start position: use committed, beginning, end, a unix time "
               "in milliseconds, or -<N>s / -<N>m / -<N>h for N seconds/minutes/hours ago",
               text);
    return -1;
}
