/*
 * utf8 — strict UTF-8 validation (see include/cdcpipe/utf8.h).
 */
#include "cdcpipe/utf8.h"

#include <stdint.h>

bool utf8_valid(const void *data, size_t len)
{
    const unsigned char *s = data;
    for (size_t i = 0; i < len;) {
        unsigned c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t n = c >= 0xf0 ? 3 : c >= 0xe0 ? 2 : 1;
        uint32_t cp = c & (0x3f >> n), min = n == 1 ? 0x80 : n == 2 ? 0x800 : 0x10000;
        bool ok = c >= 0xc0 && c < 0xf8 && len - i > n;
        for (size_t k = 1; ok && k <= n; k++) {
            ok = (s[i + k] & 0xc0) == 0x80;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        if (!ok || cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
        i += n + 1;
    }
    return true;
}
