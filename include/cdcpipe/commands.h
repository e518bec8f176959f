/*
 * commands — the offline subcommands users test their edits with; no Kafka, no ClickHouse.
 *   check: the script loads, its config resolves, ddl() returns SQL → print the DDL.
 *   test:  transform over one JSON event per line → print "table TAB row-json" per row.
 */
#ifndef CDCPIPE_COMMANDS_H
#define CDCPIPE_COMMANDS_H

#include <stdio.h>

#include "cdcpipe/config.h"
#include "cdcpipe/script.h"

/* Returns the exit status: 0, or 2 when ddl() fails. */
int command_check(const config *cfg, script *s, FILE *out);

/* Reads events from input (one JSON value per line, with or without the {schema, payload}
 * envelope; blank lines skipped). Meta is topic "test", partition 0, offset = line number - 1.
 * Errors go to stderr with the line number. Returns 0 when every event succeeded, 1 otherwise. */
int command_test(const config *cfg, script *s, FILE *input, FILE *out);

#endif
