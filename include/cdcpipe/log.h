/*
 * log — levelled log lines on stderr. Rows and reports go to stdout, never through here.
 *
 * Callers must never pass secrets (passwords, credentials in URLs): use ch_redact_url() first.
 */
#ifndef CDCPIPE_LOG_H
#define CDCPIPE_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cdcpipe/strbuf.h"

typedef enum { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 } log_level;

/* Lines above this level are dropped. Default LOG_INFO. */
void log_set_level(log_level level);
log_level log_get_level(void);

/* --log-format json (true): every line is one JSON object {"time": "…Z", "level": "…",
 * "message": "…"}, the message escaped as JSON (bytes that are not UTF-8 become U+FFFD), plus
 * the logging thread's context where it has one (below): "topic", "partition", "offset" of the
 * event it handles, "table" of the insert it sends, "code" of ClickHouse's last error; false (the
 * default): the text lines below (the context is in their messages already). */
void log_set_json(bool json);

/* The logging thread's context (thread-local: each worker has its own). The strings must stay
 * valid until replaced or cleared. topic NULL: no event. */
typedef struct {
    const char *topic;
    int32_t partition;
    int64_t offset;
    const char *table; /* NULL: none */
    int code;          /* 0: none */
} log_context;

/* The current context, to put back after a nested one (log_set_context). */
log_context log_get_context(void);
void log_set_context(log_context ctx);
void log_context_event(const char *topic, int32_t partition, int64_t offset);
void log_context_table(const char *table);
void log_context_code(int code);

/* Parses "error", "warn", "info", "debug". Returns 0, or -1 for anything else. */
int log_parse_level(const char *name, log_level *level);

/* Writes "YYYY-MM-DDThh:mm:ssZ LEVEL message\n" to stderr in one write. The message is escaped
 * as log_escape does (newlines too): one call, one line, no terminal control sequence. */
void log_msg(log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Appends s[0..len) to out with control characters made visible: \n \r \t as those escapes,
 * other C0 controls and DEL as \xHH, C1 controls (U+0080..U+009F) as \u00HH, bytes that are not
 * valid UTF-8 as \xHH; valid UTF-8 stays as it is. keep_newlines: '\n' is copied as it is. For
 * text from events or servers that goes to a terminal. */
void log_escape(strbuf *out, const char *s, size_t len, bool keep_newlines);

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
