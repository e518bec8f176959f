/*
 * support — what the in-process integration tests share (see support.h).
 */
#include "support.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cdcpipe/errbuf.h"
#include "cdcpipe/xalloc.h"

char *services_clickhouse_url(char *err, size_t errlen)
{
    const char *path = getenv("CDCPIPE_SERVICES_ENV");
    if (!path || !*path) {
        errbuf_set(err, errlen,
                   "CDCPIPE_SERVICES_ENV is not set: run scripts/test.sh, which starts ClickHouse "
                   "and names its address in services.env (or set it to a running one's "
                   "services.env)");
        return NULL;
    }
    FILE *f = fopen(path, "r");
    if (!f) {
        errbuf_set(err, errlen, "cannot read CDCPIPE_SERVICES_ENV=%s: %s", path, strerror(errno));
        return NULL;
    }
    char line[1024], *url = NULL;
    while (!url && fgets(line, sizeof line, f)) {
        const char *s = line;
        if (strncmp(s, "export ", 7) == 0) s += 7;
        if (strncmp(s, "CLICKHOUSE_URL=", 15) != 0) continue;
        s += 15;
        size_t len = strcspn(s, "\r\n");
        if (len >= 2 && (s[0] == '"' || s[0] == '\'') && s[len - 1] == s[0]) {
            s++;
            len -= 2;
        }
        while (len > 0 && s[len - 1] == '/')
            len--;
        url = xstrndup(s, len);
    }
    fclose(f);
    if (!url || !*url) {
        free(url);
        errbuf_set(err, errlen, "%s has no CLICKHOUSE_URL= line", path);
        return NULL;
    }
    return url;
}
