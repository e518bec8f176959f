/*
 * commands — `cdcpipe check` and `cdcpipe test` (see include/cdcpipe/commands.h).
 */
#include "cdcpipe/commands.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cdcpipe/log.h"
#include "cdcpipe/log.h"
#include "cdcpipe/row_json.h"
#include "cdcpipe/strbuf.h"
#include "cdcpipe/xalloc.h"

int command_check(const config *cfg, script *s, FILE *out)
{
    char **stmts, err[1024];
    if (script_ddl(s, &stmts, err, sizeof err) != 0) {
        fprintf(stderr, "cdcpipe: %s\n", err);
        script_free_ddl(stmts);
        return 2;
    }
    fprintf(out, "-- %s: ok; rows go to %s.%s; topics %s\n", script_path(s), cfg->database,
            cfg->table, cfg->topics[0] ? cfg->topics : "(none set)");
    for (char **sql = stmts; *sql; sql++)
        fprintf(out, "%s;\n", *sql);
    script_free_ddl(stmts);
    return 0;
}

/* The lines of `cdcpipe test`'s input, read in blocks and handed out in place (getline copies
 * each one): with read(2) where the stream has a descriptor, so that a pipe's lines are
 * processed as they arrive, as with getline. */
typedef struct {
    FILE *in;
    int fd;    /* -1: fread */
    char *buf; /* unread bytes: buf[start..end); end < cap */
    size_t cap, start, end;
    bool eof;
} line_reader;

/* The next line without its '\n' (NUL-terminated in place, *len bytes, NUL bytes inside kept),
 * or NULL at the end of the input. A last line without '\n' counts. */
static char *next_line(line_reader *r, size_t *len)
{
    for (;;) {
        char *line = r->buf + r->start;
        char *nl = memchr(line, '\n', r->end - r->start);
        if (nl || (r->eof && r->end > r->start)) {
            size_t n = nl ? (size_t)(nl - line) : r->end - r->start;
            line[n] = '\0';
            r->start += n + (nl != NULL);
            *len = n;
            return line;
        }
        if (r->eof) return NULL;
        if (r->start > 0) {
            memmove(r->buf, r->buf + r->start, r->end - r->start);
            r->end -= r->start;
            r->start = 0;
        }
        if (r->cap - r->end < 2) {
            r->cap *= 2;
            r->buf = xrealloc(r->buf, r->cap, 1);
        }
        size_t want = r->cap - r->end - 1;
        ssize_t got;
        if (r->fd >= 0) {
            do
                got = read(r->fd, r->buf + r->end, want);
            while (got < 0 && errno == EINTR);
        } else {
            got = (ssize_t)fread(r->buf + r->end, 1, want, r->in);
        }
        if (got <= 0)
            r->eof = true; /* the end, or a read error: what getline did with either */
        else
            r->end += (size_t)got;
    }
}

int command_test(const config *cfg, script *s, FILE *input, FILE *out)
{
    strbuf rows = {0}, text = {0};
    char *line, err[2048];
    size_t len;
    long lineno = 0, failures = 0;
    line_reader in = {.in = input, .fd = fileno(input), .cap = 1 << 16};
    in.buf = xmalloc(in.cap);
    while ((line = next_line(&in, &len)) != NULL) {
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (strspn(line, " \t") == len) continue;
        script_event ev = {"test", 0, lineno - 1, -1, NULL, 0, line, (size_t)len, NULL};
        size_t nrows;
        strbuf_reset(&rows);
        script_result r = script_process(s, &ev, cfg->table, row_json_append_line, &rows, &nrows,
                                         err, sizeof err);
        if (r == SCRIPT_DECODE_ERROR || r == SCRIPT_LUA_ERROR) {
            strbuf_reset(&text); /* the error may quote the event: no control bytes to stderr */
            log_escape(&text, err, strlen(err), false);
            fprintf(stderr, "line %ld: %s error: %s\n", lineno,
                    r == SCRIPT_DECODE_ERROR ? "decode" : "lua", text.data ? text.data : "");
            failures++;
        } else if (rows.len) {
            fwrite(rows.data, 1, rows.len, out);
        }
    }
    free(in.buf);
    strbuf_free(&rows);
    strbuf_free(&text);
    fflush(out);
    return failures ? 1 : 0;
}

void command_show(ch_client *ch, const char *database, long n, const char *const *tables,
                  size_t ntables)
{
    char err[1024];
    for (size_t i = 0; i < ntables; i++) {
        const char *table = tables[i];
        strbuf sql = {0}, out = {0};
        strbuf_puts(&sql, "SELECT count() FROM ");
        ch_quote_table(&sql, database, table);
        if (ch_exec(ch, sql.data, &out, NULL, err, sizeof err) == CH_OK) {
            long long total = atoll(out.data ? out.data : "0");
            long long skip = total > n ? total - n : 0;
            strbuf_reset(&sql);
            strbuf_reset(&out);
            strbuf_puts(&sql, "SELECT * FROM ");
            ch_quote_table(&sql, database, table);
            strbuf_printf(&sql, " LIMIT %lld, %ld FORMAT PrettyCompactNoEscapes", skip, n);
        }
        if (ch_exec(ch, sql.data, &out, NULL, err, sizeof err) == CH_OK) {
            /* rows hold event data: control bytes escaped, not sent to the terminal (every
             * Pretty format passes them through; PrettyCompact adds the server's own ANSI) */
            strbuf shown = {0};
            log_escape(&shown, out.data ? out.data : "", out.len, true);
            printf("%s (last %ld rows):\n%s", table, n, shown.data ? shown.data : "");
            fflush(stdout);
            strbuf_free(&shown);
        } else {
            log_error("--show: %s", err);
        }
        strbuf_free(&sql);
        strbuf_free(&out);
    }
}
