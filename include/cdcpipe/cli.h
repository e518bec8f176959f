/*
 * cli — the command line: subcommand, options, and assembling the final configuration from
 * every source in precedence order (defaults < pipeline.lua < .env < environment < CLI).
 *
 *   cdcpipe [options] pipeline.lua          run
 *   cdcpipe check [options] pipeline.lua    load, validate, print the DDL
 *   cdcpipe test [options] pipeline.lua FILE|-   transform events offline, print rows
 *   cdcpipe lag [options] pipeline.lua      the group's committed offsets, lag and members
 */
#ifndef CDCPIPE_CLI_H
#define CDCPIPE_CLI_H

#include <stdbool.h>
#include <stddef.h>

#include "cdcpipe/config.h"
#include "cdcpipe/script.h"

typedef enum { CMD_RUN, CMD_CHECK, CMD_TEST, CMD_LAG, CMD_VERIFY, CMD_REWIND } cli_command;

typedef struct {
    const char *key; /* config setting key */
    char *value;
    char origin[48]; /* the flag as typed, for error messages */
} cli_setting;

typedef struct {
    cli_command command;
    const char *script_path;
    const char *test_input; /* CMD_TEST: file name or "-" */
    const char *rewind_to;  /* CMD_REWIND: --to */
    const char *env_file;   /* --env-file, or NULL for ./.env if present */
    bool help;
    bool version;
    cli_setting *settings; /* in command-line order */
    size_t nsettings;
    char **kafka_props; /* -X name=value */
    size_t nkafka;
} cli_args;

/* Parses argv (argv[0] is the program). Returns 0, or -1 with err naming the bad option and
 * what to do. */
int cli_parse(int argc, char **argv, cli_args *args, char *err, size_t errlen);
void cli_free(cli_args *args);

/* Loads the script and resolves the configuration from all sources. On success *script is
 * open and cfg filled (caller frees both). Returns 0, or -1 with err (a usage/config error). */
int cli_configure(const cli_args *args, config *cfg, script **script, char *err, size_t errlen);

/* The --help text. */
extern const char cli_usage[];

#endif
