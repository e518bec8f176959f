/*
 * log — levelled log lines on stderr (see include/cdcpipe/log.h).
 */
#include "cdcpipe/log.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static log_level current_level = LOG_INFO;
static bool json_lines;

static _Thread_local log_context context;

log_context log_get_context(void)
{
    return context;
}

void log_set_context(log_context ctx)
{
    context = ctx;
}

void log_context_event(const char *topic, int32_t partition, int64_t offset)
{
    context.topic = topic;
    context.partition = partition;
    context.offset = offset;
}

void log_context_table(const char *table)
{
    context.table = table;
}

void log_context_code(int code)
{
    context.code = code;
}

void log_set_json(bool json)
{
    json_lines = json;
}

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void log_set_level(log_level level)
{
    current_level = level;
}

log_level log_get_level(void)
{
    return current_level;
}

int log_parse_level(const char *name, log_level *level)
{
    for (int i = 0; i <= LOG_DEBUG; i++) {
        if (strcmp(name, level_names[i]) == 0) {
            *level = (log_level)i;
            return 0;
        }
    }
    return -1;
}

/* The escape of the character at s[0..len) (len > 0) into unit (at least 8 bytes, NUL-terminated
 * on return); returns how many bytes of s it stands for. */
static size_t escape_one(const unsigned char *s, size_t len, bool keep_newlines, char *unit)
{
    unsigned c = s[0];
    if (c == '\n' && keep_newlines) return snprintf(unit, 8, "\n"), 1;
    if (c == '\n' || c == '\r' || c == '\t')
        return snprintf(unit, 8, "\\%c", c == '\n' ? 'n' : c == '\r' ? 'r' : 't'), 1;
    if (c < 0x20 || c == 0x7f) return snprintf(unit, 8, "\\x%02x", c), 1;
    if (c < 0x80) return unit[0] = (char)c, unit[1] = '\0', 1;
    /* a UTF-8 sequence: kept when valid and not a C1 control (U+0080..U+009F) */
    size_t n = c >= 0xf0 ? 3 : c >= 0xe0 ? 2 : 1;
    uint32_t cp = c & (0x3fu >> n), min = n == 1 ? 0x80 : n == 2 ? 0x800 : 0x10000;
    bool ok = c >= 0xc2 && c < 0xf5 && len > n;
    for (size_t k = 1; ok && k <= n; k++) {
        ok = (s[k] & 0xc0) == 0x80;
        cp = cp << 6 | (s[k] & 0x3fu);
    }
    if (!ok || cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return snprintf(unit, 8, "\\x%02x", c), 1;
    if (cp <= 0x9f) return snprintf(unit, 8, "\\u%04x", (unsigned)cp), n + 1;
    memcpy(unit, s, n + 1);
    unit[n + 1] = '\0';
    return n + 1;
}

/* Escapes s[0..len) onto out[*used..cap) (keeping room for a NUL), whole characters and escapes
 * only; returns false when it did not fit. */
static bool escape_into(char *out, size_t *used, size_t cap, const char *s, size_t len,
                        bool keep_newlines)
{
    const unsigned char *p = (const unsigned char *)s;
    char unit[8];
    while (len > 0) {
        size_t took = escape_one(p, len, keep_newlines, unit), ulen = strlen(unit);
        if (*used + ulen + 1 > cap) return false;
        memcpy(out + *used, unit, ulen);
        *used += ulen;
        p += took;
        len -= took;
    }
    return true;
}

void log_escape(strbuf *out, const char *s, size_t len, bool keep_newlines)
{
    const unsigned char *p = (const unsigned char *)s;
    char unit[8];
    while (len > 0) {
        size_t took = escape_one(p, len, keep_newlines, unit);
        strbuf_puts(out, unit);
        p += took;
        len -= took;
    }
}

/* Escapes s[0..len) as the inside of a JSON string onto out[*used..cap) (keeping room for the
 * closing quote, brace, newline and NUL), whole characters only. */
static void json_escape_into(char *out, size_t *used, size_t cap, const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    char unit[8];
    while (len > 0) {
        size_t took = 1;
        unsigned c = p[0];
        if (c == '"' || c == '\\')
            snprintf(unit, sizeof unit, "\\%c", c);
        else if (c < 0x20)
            snprintf(unit, sizeof unit, "\\u%04x", c);
        else if (c < 0x80)
            unit[0] = (char)c, unit[1] = '\0';
        else {
            char esc[8];
            took = escape_one(p, len, false, esc); /* a valid character is copied as it is */
            if (esc[0] == '\\') {                  /* not UTF-8, or a C1 control */
                if (esc[1] == 'u')
                    snprintf(unit, sizeof unit, "%s", esc);
                else
                    snprintf(unit, sizeof unit, "\\ufffd");
            } else {
                snprintf(unit, sizeof unit, "%s", esc);
            }
        }
        size_t ulen = strlen(unit);
        if (*used + ulen + 4 > cap) return;
        memcpy(out + *used, unit, ulen);
        *used += ulen;
        p += took;
        len -= took;
    }
}

void log_msg(log_level level, const char *fmt, ...)
{
    if (level > current_level) return;
    char msg[4096], line[8192];
    struct timespec now;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    int n =
        snprintf(line, sizeof line,
                 json_lines ? "{\"time\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\",\"level\":\"%s\","
                              "\"message\":\""
                            : "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s ",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                 now.tv_nsec / 1000000, level_names[level]);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    size_t mlen = m < 0 ? 0 : (size_t)m < sizeof msg ? (size_t)m : sizeof msg - 1;
    size_t len = (size_t)n;
    if (json_lines) {
        /* the message leaves room for the context: each string escaped into 512 bytes at most */
        json_escape_into(line, &len, sizeof line - 2048, msg, mlen);
        line[len++] = '"';
        char esc[512];
        size_t elen = 0;
        if (context.topic) {
            json_escape_into(esc, &elen, sizeof esc, context.topic, strlen(context.topic));
            len += (size_t)snprintf(
                line + len, 640, ",\"topic\":\"%.*s\",\"partition\":%d,\"offset\":%lld", (int)elen,
                esc, (int)context.partition, (long long)context.offset);
        }
        if (context.table) {
            elen = 0;
            json_escape_into(esc, &elen, sizeof esc, context.table, strlen(context.table));
            len += (size_t)snprintf(line + len, 560, ",\"table\":\"%.*s\"", (int)elen, esc);
        }
        if (context.code) len += (size_t)snprintf(line + len, 24, ",\"code\":%d", context.code);
        memcpy(line + len, "}\n", 2);
        fwrite(line, 1, len + 2, stderr);
        return;
    }
    /* event data reaches log lines (decode and Lua errors, ClickHouse's messages): no control
     * character gets to the terminal or splits the line */
    escape_into(line, &len, sizeof line - 1, msg, mlen, false);
    line[len++] = '\n';
    fwrite(line, 1, len, stderr);
}
