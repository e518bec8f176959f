/*
 * tsv — ClickHouse TabSeparated answers (see include/cdcpipe/tsv.h).
 */
#include "cdcpipe/tsv.h"

#include <stddef.h>
#include <string.h>

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

char *tsv_line(char **p)
{
    char *line = *p;
    if (!line || !*line) return NULL;
    char *end = strchr(line, '\n');
    if (end) *end = '\0';
    *p = end ? end + 1 : NULL;
    return line;
}

char *tsv_field(char **p)
{
    char *s = *p, *tab = strchr(s, '\t');
    if (tab) {
        *tab = '\0';
        *p = tab + 1;
    } else {
        *p = s + strlen(s);
    }
    return s;
}
