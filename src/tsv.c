/*
 * tsv — ClickHouse TabSeparated answers (see include/cdcpipe/tsv.h).
 */
#include "cdcpipe/tsv.h"

void tsv_unescape(char *s)
{
    char *out = s;
    for (; *s; s++) {
        if (*s != '\\' || !s[1]) {
            *out++ = *s;
            continue;
        }
        s++;
        switch (*s) {
        case 't':
            *out++ = '\t';
            break;
        case 'n':
            *out++ = '\n';
            break;
        case 'r':
            *out++ = '\r';
            break;
        case 'b':
            *out++ = '\b';
            break;
        case 'f':
            *out++ = '\f';
            break;
        case '0':
            *out++ = '\0';
            break;
        default:
            *out++ = *s;
            break;
        }
    }
    *out = '\0';
}
