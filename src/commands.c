/*
 * commands — `cdcpipe check` and `cdcpipe test` (see include/cdcpipe/commands.h).
 */
#include "cdcpipe/commands.h"

#include <stdlib.h>
#include <string.h>

#include "cdcpipe/log.h"
#include "cdcpipe/log.h"
#include "cdcpipe/row_json.h"
#include "cdcpipe/strbuf.h"

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

int command_test(const config *cfg, script *s, FILE *input, FILE *out)
{
    strbuf rows = {0}, text = {0};
    char *line = NULL, err[2048];
    size_t cap = 0;
    ssize_t len;
    long lineno = 0, failures = 0;
    while ((len = getline(&line, &cap, input)) != -1) {
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (strspn(line, " \t") == (size_t)len) continue;
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
    free(line);
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
