/*
 * commands — what cdcpipe prints for people rather than does to data:
 *   check: the script loads, its config resolves, ddl() returns SQL → print the DDL (offline).
 *   test:  transform over one JSON event per line → print "table TAB row-json" per row (offline).
 *   show:  after a run, the last rows of the tables written (--show N).
 */
#ifndef CDCPIPE_COMMANDS_H
#define CDCPIPE_COMMANDS_H

#include <stdio.h>

#include "cdcpipe/clickhouse.h"
#include "cdcpipe/config.h"
#include "cdcpipe/script.h"

/* Returns the exit status: 0, or 2 when ddl() fails. */
int command_check(const config *cfg, script *s, FILE *out);

/* Reads events from input (one JSON value per line, with or without the {schema, payload}
 * envelope; blank lines skipped). Meta is topic "test", partition 0, offset = line number - 1.
 * Errors go to stderr with the line number. Returns 0 when every event succeeded, 1 otherwise. */
int command_test(const config *cfg, script *s, FILE *input, FILE *out);

/* --show N: prints the last n rows (in each table's sort order) of tables[0..ntables) in
 * `database` to stdout, control bytes escaped as in log lines; a failing query is logged and the
 * next table shown. */
void command_show(ch_client *ch, const char *database, long n, const char *const *tables,
                  size_t ntables);

#endif
