/*
 * test_config — configuration from every source, through the real entry points: cli_parse +
 * cli_configure (include/cdcpipe/cli.h) over src/config.c.
 *
 * Precedence: built-in defaults < `config` in pipeline.lua < .env file < environment < CLI.
 * Each test writes its pipeline.lua and .env into a fresh directory under /tmp and always passes
 * --env-file (cli_configure would read ./.env otherwise), except the test that chdir()s there on
 * purpose. Every CDCPIPE_* setting variable is unset before each test and after it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "cdcpipe/cli.h"
#include "cdcpipe/config.h"
#include "cdcpipe/script.h"
#include "cdcpipe/strbuf.h"

#include "support.h"

static const char *const setting_vars[] = {
    "CDCPIPE_BROKERS",
    "CDCPIPE_TOPICS",
    "CDCPIPE_GROUP",
    "CDCPIPE_FROM",
    "CDCPIPE_CLICKHOUSE_URL",
    "CDCPIPE_CLICKHOUSE_USER",
    "CDCPIPE_CLICKHOUSE_PASSWORD",
    "CDCPIPE_CLICKHOUSE_PASSWORD_FILE",
    "CDCPIPE_DATABASE",
    "CDCPIPE_TABLE",
    "CDCPIPE_BATCH_ROWS",
    "CDCPIPE_BATCH_BYTES",
    "CDCPIPE_BATCH_MS",
    "CDCPIPE_ONCE",
    "CDCPIPE_DRY_RUN",
    "CDCPIPE_SHOW",
    "CDCPIPE_LOG_LEVEL",
    "CDCPIPE_LUA_MEMORY_MB",
    "CDCPIPE_LUA_TIMEOUT",
};

static void unset_setting_vars(void)
{
    for (size_t i = 0; i < sizeof setting_vars / sizeof setting_vars[0]; i++)
        unsetenv(setting_vars[i]);
}

typedef struct {
    char dir[512];
    char script[600]; /* dir/pipeline.lua */
    char env[600];    /* dir/.env */
} tmp;

static int setup(void **state)
{
    unset_setting_vars();
    tmp *t = calloc(1, sizeof *t);
    if (!t) return -1;
    if (tmpdir_create(t->dir, sizeof t->dir) != 0) {
        free(t);
        return -1;
    }
    snprintf(t->script, sizeof t->script, "%s/pipeline.lua", t->dir);
    snprintf(t->env, sizeof t->env, "%s/.env", t->dir);
    *state = t;
    return 0;
}

static int teardown(void **state)
{
    tmp *t = *state;
    unset_setting_vars();
    tmpdir_remove(t->dir);
    free(t);
    return 0;
}

#define MINIMAL_SCRIPT_LINE "function transform(event, meta) return event end\n"
static const char minimal_script[] = MINIMAL_SCRIPT_LINE;

/* Runs cli_parse and, when it succeeds, cli_configure on a copy of args (writable, as argv is;
 * -X values are edited in place). args: NULL-terminated, without argv[0]. On success cfg is
 * filled and the script closed; the caller frees cfg. Returns the failing step's -1, or 0. */
static int configure(const char *const *args, config *cfg, char *err, size_t errlen)
{
    char *argv[40];
    int argc = 0;
    argv[argc++] = strdup("cdcpipe");
    for (; *args; args++) {
        assert_true(argc < 39);
        argv[argc++] = strdup(*args);
    }
    argv[argc] = NULL;
    char *copies[40];
    memcpy(copies, argv, sizeof argv); /* getopt may permute argv */
    cli_args a;
    err[0] = '\0';
    int rc = cli_parse(argc, argv, &a, err, errlen);
    if (rc == 0) {
        script *s = NULL;
        rc = cli_configure(&a, cfg, &s, err, errlen);
        if (rc == 0) {
            assert_non_null(s);
            script_close(s);
        } else {
            assert_null(s);
        }
    }
    cli_free(&a);
    for (int i = 0; i < argc; i++)
        free(copies[i]);
    return rc;
}

/* A setting as text, for table-driven comparisons. */
static void field_text(const config *c, const char *name, char *out, size_t len)
{
    const struct {
        const char *name;
        const char *s;
        long n;
        int kind; /* 0 string, 1 long, 2 bool */
    } fields[] = {
        {"brokers", c->brokers, 0, 0},
        {"topics", c->topics, 0, 0},
        {"group", c->group, 0, 0},
        {"from", c->from, 0, 0},
        {"clickhouse_url", c->clickhouse_url, 0, 0},
        {"clickhouse_user", c->clickhouse_user, 0, 0},
        {"clickhouse_password", c->clickhouse_password, 0, 0},
        {"database", c->database, 0, 0},
        {"table", c->table, 0, 0},
        {"log_level", c->log_level, 0, 0},
        {"batch_rows", NULL, c->batch_rows, 1},
        {"batch_bytes", NULL, c->batch_bytes, 1},
        {"batch_ms", NULL, c->batch_ms, 1},
        {"show", NULL, c->show, 1},
        {"lua_memory_mb", NULL, c->lua_memory_mb, 1},
        {"lua_timeout_ms", NULL, c->lua_timeout_ms, 1},
        {"once", NULL, c->once, 2},
        {"dry_run", NULL, c->dry_run, 2},
    };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        if (strcmp(fields[i].name, name) != 0) continue;
        if (fields[i].kind == 0)
            snprintf(out, len, "%s", fields[i].s ? fields[i].s : "(null)");
        else if (fields[i].kind == 1)
            snprintf(out, len, "%ld", fields[i].n);
        else
            snprintf(out, len, "%s", fields[i].n ? "true" : "false");
        return;
    }
    fail_msg("unknown field %s", name);
}

typedef struct {
    const char *field;
    const char *want;
    const char *layer; /* which source must have won, for the failure message */
} field_want;

static void check_fields(const config *cfg, const field_want *w, size_t n)
{
    int failures = 0;
    for (size_t i = 0; i < n; i++) {
        char got[256];
        field_text(cfg, w[i].field, got, sizeof got);
        if (strcmp(got, w[i].want) != 0) {
            print_error("%s: got \"%s\", want \"%s\" (from %s)\n", w[i].field, got, w[i].want,
                        w[i].layer);
            failures++;
        }
    }
    assert_int_equal(failures, 0);
}

static const char *kafka_value(const config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->kafka_count; i++)
        if (strcmp(cfg->kafka_names[i], name) == 0) return cfg->kafka_values[i];
    return NULL;
}

/* ---- defaults ---- */

static void test_defaults(void **state)
{
    tmp *t = *state;
    write_file(t->script, minimal_script);
    write_file(t->env, "# nothing set here\n\n");
    config cfg;
    char err[512];
    const char *args[] = {"--env-file", t->env, t->script, NULL};
    assert_int_equal(configure(args, &cfg, err, sizeof err), 0);
    static const field_want want[] = {
        {"brokers", "localhost:9092", "default"},
        {"topics", "", "default"},
        {"group", "cdcpipe", "default"},
        {"from", "committed", "default"},
        {"clickhouse_url", "http://localhost:8123", "default"},
        {"clickhouse_user", "", "default"},
        {"clickhouse_password", "", "default"},
        {"database", "default", "default"},
        {"table", "changes", "default"},
        {"log_level", "info", "default"},
        {"batch_rows", "50000", "default"},
        {"batch_bytes", "16777216", "default"},
        {"batch_ms", "1000", "default"},
        {"show", "0", "default"},
        {"lua_memory_mb", "256", "default"},
        {"lua_timeout_ms", "1000", "default"},
        {"once", "false", "default"},
        {"dry_run", "false", "default"},
    };
    check_fields(&cfg, want, sizeof want / sizeof want[0]);
    assert_int_equal(cfg.kafka_count, 0);
    config_free(&cfg);
}

/* ---- precedence: every layer wins exactly where it is the highest one setting a field ---- */

static void test_precedence(void **state)
{
    tmp *t = *state;
    write_file(t->script,
               "config = {\n"
               "  kafka = { brokers = 'lua-broker:9092', group = 'lua-group',\n"
               "            topics = { 'lua.t1', 'lua.t2' }, from = 'beginning',\n"
               "            properties = { ['fetch.max.bytes'] = 1048576,\n"
               "                           ['client.id'] = 'lua-client',\n"
               "                           ['socket.keepalive.enable'] = 'true' } },\n"
               "  clickhouse = { table = 'lua_table', user = 'lua_user', database = 'lua_db',\n"
               "                 url = 'http://lua:8123' },\n"
               "  batch = { max_rows = 1234, max_bytes = 2048, max_ms = 500 },\n"
               "  lua = { memory_mb = 32, timeout_ms = 250 },\n"
               "}\n"
               "function transform(event, meta) return event end\n");
    write_file(t->env, "# .env for the precedence test\n"
                       "CDCPIPE_GROUP=envfile-group\n"
                       "export CDCPIPE_TOPICS=\"envfile.topic\"\n"
                       "CDCPIPE_TABLE='envfile_table'\n"
                       "CDCPIPE_CLICKHOUSE_USER = envfile_user\n"
                       "CDCPIPE_BATCH_MS=250\r\n"
                       "CDCPIPE_LUA_MEMORY_MB=64\n"
                       "CDCPIPE_BROKERS=envfile-broker:9092\n"
                       "CDCPIPE_DRY_RUN=true\n"
                       "OTHER_VARIABLE=ignored\n");
    setenv("CDCPIPE_GROUP", "environ-group", 1);
    setenv("CDCPIPE_BROKERS", "environ-broker:9092", 1);
    setenv("CDCPIPE_LUA_MEMORY_MB", "128", 1);
    setenv("CDCPIPE_CLICKHOUSE_URL", "http://environ:8123", 1);
    setenv("CDCPIPE_ONCE", "yes", 1);
    setenv("CDCPIPE_SHOW", "3", 1);
    setenv("CDCPIPE_LUA_TIMEOUT", "400", 1);
    config cfg;
    char err[512];
    const char *args[] = {
        "-b",   "cli-broker:9092", "--table",    "cli_table", "--batch-bytes",
        "4096", "--show",          "7",          "-X",        "client.id=cli-client",
        "-X",   "acks=all",        "--env-file", t->env,      "--lua-timeout",
        "600",  t->script,         NULL};
    if (configure(args, &cfg, err, sizeof err) != 0) fail_msg("%s", err);
    static const field_want want[] = {
        {"brokers", "cli-broker:9092", "CLI over environment, .env, pipeline.lua"},
        {"table", "cli_table", "CLI over .env, pipeline.lua"},
        {"batch_bytes", "4096", "CLI over pipeline.lua"},
        {"show", "7", "CLI over environment"},
        {"lua_timeout_ms", "600", "CLI over environment, pipeline.lua"},
        {"group", "environ-group", "environment over .env, pipeline.lua"},
        {"lua_memory_mb", "128", "environment over .env, pipeline.lua"},
        {"clickhouse_url", "http://environ:8123", "environment over pipeline.lua"},
        {"once", "true", "environment"},
        {"topics", "envfile.topic", ".env over pipeline.lua"},
        {"clickhouse_user", "envfile_user", ".env over pipeline.lua"},
        {"batch_ms", "250", ".env over pipeline.lua"},
        {"dry_run", "true", ".env"},
        {"database", "lua_db", "pipeline.lua over default"},
        {"batch_rows", "1234", "pipeline.lua over default"},
        {"from", "beginning", "pipeline.lua over default"},
        {"clickhouse_password", "", "default"},
        {"log_level", "info", "default"},
    };
    check_fields(&cfg, want, sizeof want / sizeof want[0]);
    /* librdkafka properties: pipeline.lua's, with -X replacing and adding */
    assert_int_equal(cfg.kafka_count, 4);
    assert_string_equal(kafka_value(&cfg, "client.id"), "cli-client");
    assert_string_equal(kafka_value(&cfg, "acks"), "all");
    assert_string_equal(kafka_value(&cfg, "fetch.max.bytes"), "1048576");
    assert_string_equal(kafka_value(&cfg, "socket.keepalive.enable"), "true");
    assert_string_equal(cfg.kafka_names[3], "acks"); /* added after the script's */
    config_free(&cfg);

    /* without the CLI flags the environment wins those fields; without it the .env */
    const char *no_cli[] = {"--env-file", t->env, t->script, NULL};
    assert_int_equal(configure(no_cli, &cfg, err, sizeof err), 0);
    static const field_want want_no_cli[] = {
        {"brokers", "environ-broker:9092", "environment"},
        {"table", "envfile_table", ".env"},
        {"batch_bytes", "2048", "pipeline.lua"},
        {"show", "3", "environment"},
        {"lua_timeout_ms", "400", "environment over pipeline.lua"},
    };
    check_fields(&cfg, want_no_cli, sizeof want_no_cli / sizeof want_no_cli[0]);
    assert_string_equal(kafka_value(&cfg, "client.id"), "lua-client");
    assert_null(kafka_value(&cfg, "acks"));
    assert_int_equal(cfg.kafka_count, 3);
    config_free(&cfg);

    unset_setting_vars();
    assert_int_equal(configure(no_cli, &cfg, err, sizeof err), 0);
    static const field_want want_files[] = {
        {"brokers", "envfile-broker:9092", ".env"},
        {"group", "envfile-group", ".env"},
        {"lua_memory_mb", "64", ".env"},
        {"clickhouse_url", "http://lua:8123", "pipeline.lua"},
        {"once", "false", "default"},
        {"show", "0", "default"},
    };
    check_fields(&cfg, want_files, sizeof want_files / sizeof want_files[0]);
    config_free(&cfg);

    /* and without the .env, pipeline.lua */
    write_file(t->env, "");
    assert_int_equal(configure(no_cli, &cfg, err, sizeof err), 0);
    static const field_want want_lua[] = {
        {"brokers", "lua-broker:9092", "pipeline.lua"},
        {"group", "lua-group", "pipeline.lua"},
        {"topics", "lua.t1,lua.t2", "pipeline.lua (a list joined with commas)"},
        {"table", "lua_table", "pipeline.lua"},
        {"clickhouse_user", "lua_user", "pipeline.lua"},
        {"batch_ms", "500", "pipeline.lua"},
        {"lua_memory_mb", "32", "pipeline.lua"},
        {"lua_timeout_ms", "250", "pipeline.lua"},
        {"dry_run", "false", "default"},
    };
    check_fields(&cfg, want_lua, sizeof want_lua / sizeof want_lua[0]);
    config_free(&cfg);
}

/* -t repeats into one comma-separated list, which beats CDCPIPE_TOPICS. */
static void test_topics_joined(void **state)
{
    tmp *t = *state;
    write_file(t->script, minimal_script);
    write_file(t->env, "CDCPIPE_TOPICS=envfile.topic\n");
    setenv("CDCPIPE_TOPICS", "environ.topic", 1);
    config cfg;
    char err[512];
    const char *args[] = {"-t",      "a.one",      "--topic", "b.two",   "-t",
                          "c.three", "--env-file", t->env,    t->script, NULL};
    assert_int_equal(configure(args, &cfg, err, sizeof err), 0);
    assert_string_equal(cfg.topics, "a.one,b.two,c.three");
    config_free(&cfg);
    const char *one[] = {"--env-file", t->env, "-t", "solo", t->script, NULL};
    assert_int_equal(configure(one, &cfg, err, sizeof err), 0);
    assert_string_equal(cfg.topics, "solo");
    config_free(&cfg);
}

/* ---- errors, table-driven: script, .env, environment, arguments → exact error ---- */

typedef struct {
    const char *script; /* pipeline.lua text */
    const char *env;    /* .env text */
    const char *var;    /* NAME=VALUE put in the environment, or NULL */
    const char *args[8];
    const char *err; /* exact; "%S" stands for the script path, "%E" for the .env path */
} error_case;

static const error_case error_cases[] = {
    /* pipeline.lua `config` */
    {"config = { kafka = { brokres = 'x' } }\n" MINIMAL_SCRIPT_LINE,
     "",
     NULL,
     {NULL},
     "%S: config.kafka.brokres is not a known setting (see README)"},
    {"config = { kafka2 = {} }\n" MINIMAL_SCRIPT_LINE,
     "",
     NULL,
     {NULL},
     "%S: config.kafka2 is not a known section (expected kafka, clickhouse, batch, lua, "
     "dead_letters, metrics)"},
    {"config = 5\n" MINIMAL_SCRIPT_LINE,
     "",
     NULL,
     {NULL},
     "%S: config must be a table, not a number"},
    {"config = { batch = 7 }\n" MINIMAL_SCRIPT_LINE,
     "",
     NULL,
     {NULL},
     "%S: config.batch must be a table"},
    {"config = { batch = { max_rows = 1000001 } }\n" MINIMAL_SCRIPT_LINE,
     "",
     NULL,
     {NULL},
     "%S: config.batch.max_rows: \"1000001\" is not a whole number from 1 to 1000000"},
    {"config = { batch = { max_rows = 'many' } }\n" MINIMAL_SCRIPT_LINE,
     "",
     NULL,
     {NULL},
     "%S: config.batch.max_rows: \"many\" is not a whole number from 1 to 1000000"},
    {"config = { clickhouse = { table = print } }\n" MINIMAL_SCRIPT_LINE,
     "",
     NULL,
     {NULL},
     "%S: config.clickhouse.table must be a string, number or list of strings"},
    {"config = { kafka = { topics = { 'a', 2 } } }\n" MINIMAL_SCRIPT_LINE,
     "",
     NULL,
     {NULL},
     "%S: config.kafka.topics must be a string, number or list of strings"},
    /* the script itself */
    {"config = {}\n\nlocal x = = 1\n" MINIMAL_SCRIPT_LINE,
     "",
     NULL,
     {NULL},
     "%S:3: unexpected symbol near '='"},
    {"function ddl() return 'x' end\n",
     "",
     NULL,
     {NULL},
     "%S does not define a global function transform(event, meta) (found a nil)"},
    {"transform = 'not a function'\n",
     "",
     NULL,
     {NULL},
     "%S does not define a global function transform(event, meta) (found a string)"},
    /* .env: file and line */
    {MINIMAL_SCRIPT_LINE,
     "# settings\nCDCPIPE_GROUP=g\nCDCPIPE_BATCH_ROWS=lots\n",
     NULL,
     {NULL},
     "%E:3: CDCPIPE_BATCH_ROWS: \"lots\" is not a whole number from 1 to 1000000"},
    {MINIMAL_SCRIPT_LINE,
     "\n\n\n\nCDCPIPE_BATCH_ROWS=2000000\n",
     NULL,
     {NULL},
     "%E:5: CDCPIPE_BATCH_ROWS: \"2000000\" is not a whole number from 1 to 1000000"},
    {MINIMAL_SCRIPT_LINE,
     "CDCPIPE_GROUP=g\nCDCPIPE_BROKRES=x\n",
     NULL,
     {NULL},
     "%E:2: CDCPIPE_BROKRES is not a known setting (see README)"},
    {MINIMAL_SCRIPT_LINE,
     "CDCPIPE_GROUP=g\njust words\n",
     NULL,
     {NULL},
     "%E:2: expected NAME=VALUE"},
    {MINIMAL_SCRIPT_LINE,
     "CDCPIPE_GROUP=g\nCDCPIPE_GROUP=\"mismatched'\n",
     NULL,
     {NULL},
     "%E:2: CDCPIPE_GROUP: the value opens a double quote that the line never closes (close it "
     "at the end of the value)"},
    {MINIMAL_SCRIPT_LINE,
     "CDCPIPE_CLICKHOUSE_PASSWORD='s3cret\n",
     NULL,
     {NULL},
     "%E:1: CDCPIPE_CLICKHOUSE_PASSWORD: the value opens a single quote that the line never "
     "closes (close it at the end of the value)"},
    {MINIMAL_SCRIPT_LINE,
     "CDCPIPE_GROUP=\"a\" b\n",
     NULL,
     {NULL},
     "%E:1: CDCPIPE_GROUP: text after the closing double quote (quote the whole value; a comment "
     "after it starts with #)"},
    {MINIMAL_SCRIPT_LINE,
     "\nCDCPIPE_GROUP=abc'\n",
     NULL,
     {NULL},
     "%E:2: CDCPIPE_GROUP: the value ends with a quote but does not start with one (quote the "
     "whole value or neither end)"},
    {MINIMAL_SCRIPT_LINE,
     "CDCPIPE_ONCE=maybe\n",
     NULL,
     {NULL},
     "%E:1: CDCPIPE_ONCE: \"maybe\" is not a boolean (use true or false)"},
    /* environment */
    {MINIMAL_SCRIPT_LINE,
     "",
     "CDCPIPE_BATCH_ROWS=1000001",
     {NULL},
     "CDCPIPE_BATCH_ROWS: \"1000001\" is not a whole number from 1 to 1000000"},
    {MINIMAL_SCRIPT_LINE,
     "",
     "CDCPIPE_BATCH_MS=12ms",
     {NULL},
     "CDCPIPE_BATCH_MS: \"12ms\" is not a whole number from 1 to 3600000"},
    {MINIMAL_SCRIPT_LINE,
     "",
     "CDCPIPE_DRY_RUN=2",
     {NULL},
     "CDCPIPE_DRY_RUN: \"2\" is not a boolean (use true or false)"},
    {MINIMAL_SCRIPT_LINE,
     "",
     "CDCPIPE_LOG_LEVEL=loud",
     {NULL},
     "log level \"loud\" is not one of error, warn, info, debug"},
    /* command line values */
    {MINIMAL_SCRIPT_LINE,
     "",
     NULL,
     {"--batch-rows", "abc"},
     "--batch-rows: \"abc\" is not a whole number from 1 to 1000000"},
    {MINIMAL_SCRIPT_LINE,
     "",
     NULL,
     {"--batch-rows", "1000001"},
     "--batch-rows: \"1000001\" is not a whole number from 1 to 1000000"},
    {MINIMAL_SCRIPT_LINE,
     "",
     NULL,
     {"--batch-rows", "0"},
     "--batch-rows: \"0\" is not a whole number from 1 to 1000000"},
    {MINIMAL_SCRIPT_LINE,
     "",
     NULL,
     {"--batch-rows", "-5"},
     "--batch-rows: \"-5\" is not a whole number from 1 to 1000000"},
    {MINIMAL_SCRIPT_LINE,
     "",
     NULL,
     {"--batch-rows", "99999999999999999999"},
     "--batch-rows: \"99999999999999999999\" is not a whole number from 1 to 1000000"},
    {MINIMAL_SCRIPT_LINE,
     "",
     NULL,
     {"--batch-bytes", "1023"},
     "--batch-bytes: \"1023\" is not a whole number from 1024 to 2147483648"},
    {MINIMAL_SCRIPT_LINE,
     "",
     NULL,
     {"--lua-timeout", "5"},
     "--lua-timeout: \"5\" is not a whole number from 10 to 3600000"},
    {MINIMAL_SCRIPT_LINE,
     "",
     NULL,
     {"--lua-instructions", "999"},
     "--lua-instructions: \"999\" is not a whole number from 1000 to 2000000000"},
    {MINIMAL_SCRIPT_LINE,
     "",
     NULL,
     {"--log-level", "loud"},
     "log level \"loud\" is not one of error, warn, info, debug"},
    {MINIMAL_SCRIPT_LINE,
     "",
     NULL,
     {"--input", "avro"},
     "--input: \"avro\" is not one of debezium, json (debezium: change events only, anything else "
     "is dead-lettered; json: every JSON object goes to transform)"},
    {"config = { kafka = { input = \"JSON\" } }\n" MINIMAL_SCRIPT_LINE,
     "",
     NULL,
     {NULL},
     "%S: config.kafka.input: \"JSON\" is not one of debezium, json (debezium: change events "
     "only, anything else is dead-lettered; json: every JSON object goes to transform)"},
    {MINIMAL_SCRIPT_LINE,
     "",
     NULL,
     {"--format", "native"},
     "--format: \"native\" is not one of auto, rowbinary, json (auto: RowBinary for every table "
     "whose column types the encoder covers, JSONEachRow for the others; rowbinary: the same, with "
     "a warning for each table that falls back; json: JSONEachRow always)"},
    {"config = { clickhouse = { format = \"RowBinary\" } }\n" MINIMAL_SCRIPT_LINE,
     "",
     NULL,
     {NULL},
     "%S: config.clickhouse.format: \"RowBinary\" is not one of auto, rowbinary, json (auto: "
     "RowBinary for every table whose column types the encoder covers, JSONEachRow for the "
     "others; rowbinary: the same, with a warning for each table that falls back; json: "
     "JSONEachRow always)"},
    {MINIMAL_SCRIPT_LINE,
     "CDCPIPE_FORMAT=binary\n",
     NULL,
     {NULL},
     "%E:1: CDCPIPE_FORMAT: \"binary\" is not one of auto, rowbinary, json (auto: RowBinary "
     "for every table whose column types the encoder covers, JSONEachRow for the others; "
     "rowbinary: the same, with a warning for each table that falls back; json: JSONEachRow "
     "always)"},
    /* a CLI error wins over nothing: the CLI value is checked even when others are fine */
    {"config = { batch = { max_rows = 10 } }\n" MINIMAL_SCRIPT_LINE,
     "CDCPIPE_BATCH_ROWS=20\n",
     "CDCPIPE_BATCH_ROWS=30",
     {"--batch-rows", "1e3"},
     "--batch-rows: \"1e3\" is not a whole number from 1 to 1000000"},
};

static void expand(char *out, size_t len, const char *pattern, const tmp *t)
{
    size_t n = 0;
    for (const char *p = pattern; *p && n + 1 < len; p++) {
        const char *sub = NULL;
        if (p[0] == '%' && p[1] == 'S') sub = t->script;
        if (p[0] == '%' && p[1] == 'E') sub = t->env;
        if (sub) {
            n += (size_t)snprintf(out + n, len - n, "%s", sub);
            p++;
        } else {
            out[n++] = *p;
        }
    }
    out[n < len ? n : len - 1] = '\0';
}

static void test_error_cases(void **state)
{
    tmp *t = *state;
    int failures = 0;
    for (size_t i = 0; i < sizeof error_cases / sizeof error_cases[0]; i++) {
        const error_case *c = &error_cases[i];
        unset_setting_vars();
        write_file(t->script, c->script);
        write_file(t->env, c->env);
        if (c->var) {
            char name[64];
            const char *eq = strchr(c->var, '=');
            snprintf(name, sizeof name, "%.*s", (int)(eq - c->var), c->var);
            setenv(name, eq + 1, 1);
        }
        const char *args[16];
        size_t n = 0;
        for (size_t k = 0; c->args[k]; k++)
            args[n++] = c->args[k];
        args[n++] = "--env-file";
        args[n++] = t->env;
        args[n++] = t->script;
        args[n] = NULL;
        config cfg;
        char err[1024], want[1024];
        int rc = configure(args, &cfg, err, sizeof err);
        expand(want, sizeof want, c->err, t);
        if (rc == 0) {
            print_error("case %zu: no error, want %s\n", i, want);
            config_free(&cfg);
            failures++;
        } else if (strcmp(err, want) != 0) {
            print_error("case %zu:\n got  %s\n want %s\n", i, err, want);
            failures++;
        }
    }
    assert_int_equal(failures, 0);
}

/* The limits themselves are accepted, from every source. */
static void test_limits_accepted(void **state)
{
    tmp *t = *state;
    write_file(t->script, "config = { batch = { max_rows = 1000000, max_bytes = 1024 } }\n"
                          "function transform(e) return e end\n");
    write_file(t->env, "CDCPIPE_BATCH_MS=3600000\n");
    setenv("CDCPIPE_SHOW", "100000", 1);
    config cfg;
    char err[512];
    const char *args[] = {"--env-file", t->env, "--lua-memory-mb", "1", t->script, NULL};
    if (configure(args, &cfg, err, sizeof err) != 0) fail_msg("%s", err);
    assert_int_equal(cfg.batch_rows, CONFIG_MAX_BATCH_ROWS);
    assert_int_equal(cfg.batch_bytes, 1024);
    assert_int_equal(cfg.batch_ms, 3600000);
    assert_int_equal(cfg.show, 100000);
    assert_int_equal(cfg.lua_memory_mb, 1);
    config_free(&cfg);
    const char *one[] = {"--env-file", t->env, "--batch-rows", "1", t->script, NULL};
    assert_int_equal(configure(one, &cfg, err, sizeof err), 0);
    assert_int_equal(cfg.batch_rows, 1);
    config_free(&cfg);
}

/* --clickhouse-password-file: the file's text less one trailing newline is the password; between
 * it and --clickhouse-password the source of higher precedence wins; an unreadable file is an
 * error naming it. */
static void test_password_file(void **state)
{
    tmp *t = *state;
    char pw[700], err[1024], want[1024];
    snprintf(pw, sizeof pw, "%s/pw", t->dir);
    write_file(t->script,
               "config = { clickhouse = { password = 'from-lua' } }\n" MINIMAL_SCRIPT_LINE);
    write_file(t->env, "CDCPIPE_CLICKHOUSE_PASSWORD=from-env-file\n");
    assert_int_equal(chmod(t->env, 0600), 0); /* no warning about it */
    static const struct {
        const char *text, *want;
    } texts[] = {
        {"s3cret\n", "s3cret"},
        {"s3cret\r\n", "s3cret"},
        {"s3cret", "s3cret"},
        {" two\nlines \n\n", " two\nlines \n"},
        {"\n", ""},
    };
    config cfg;
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        write_file(pw, texts[i].text);
        const char *args[] = {"--env-file", t->env,    "--clickhouse-password-file",
                              pw,           t->script, NULL};
        if (configure(args, &cfg, err, sizeof err) != 0) fail_msg("%s", err);
        assert_string_equal(cfg.clickhouse_password, texts[i].want);
        config_free(&cfg);
    }
    /* the environment's file over the .env's password; the command line's password over both */
    write_file(pw, "from-file\n");
    setenv("CDCPIPE_CLICKHOUSE_PASSWORD_FILE", pw, 1);
    const char *env_only[] = {"--env-file", t->env, t->script, NULL};
    assert_int_equal(configure(env_only, &cfg, err, sizeof err), 0);
    assert_string_equal(cfg.clickhouse_password, "from-file");
    config_free(&cfg);
    const char *cli[] = {"--env-file", t->env,    "--clickhouse-password",
                         "from-cli",   t->script, NULL};
    assert_int_equal(configure(cli, &cfg, err, sizeof err), 0);
    assert_string_equal(cfg.clickhouse_password, "from-cli");
    config_free(&cfg);
    unsetenv("CDCPIPE_CLICKHOUSE_PASSWORD_FILE");
    /* pipeline.lua's file under the .env's password */
    char text[1024];
    snprintf(text, sizeof text, "config = { clickhouse = { password_file = '%s' } }\n%s", pw,
             MINIMAL_SCRIPT_LINE);
    write_file(t->script, text);
    assert_int_equal(configure(env_only, &cfg, err, sizeof err), 0);
    assert_string_equal(cfg.clickhouse_password, "from-env-file");
    config_free(&cfg);
    write_file(t->env, "");
    assert_int_equal(configure(env_only, &cfg, err, sizeof err), 0);
    assert_string_equal(cfg.clickhouse_password, "from-file");
    config_free(&cfg);
    /* files that cannot be the password */
    const char *missing[] = {"--env-file",      t->env,    "--clickhouse-password-file",
                             "/nonexistent/pw", t->script, NULL};
    assert_int_equal(configure(missing, &cfg, err, sizeof err), -1);
    assert_string_equal(err, "--clickhouse-password-file: cannot read the password file "
                             "/nonexistent/pw: No such file or directory");
    const char *dir[] = {"--env-file", t->env,    "--clickhouse-password-file",
                         t->dir,       t->script, NULL};
    assert_int_equal(configure(dir, &cfg, err, sizeof err), -1);
    snprintf(want, sizeof want,
             "--clickhouse-password-file: cannot read the password file %s: Is a directory",
             t->dir);
    assert_string_equal(err, want);
    char big[5000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    write_file(pw, big);
    const char *large[] = {"--env-file", t->env, "--clickhouse-password-file", pw, t->script, NULL};
    assert_int_equal(configure(large, &cfg, err, sizeof err), -1);
    snprintf(want, sizeof want,
             "--clickhouse-password-file: %s is not a password file (larger than 4 KiB)", pw);
    assert_string_equal(err, want);
}

/* A runtime error while the script loads: file, line and traceback on one line. */
static void test_script_runtime_error(void **state)
{
    tmp *t = *state;
    write_file(t->script, "local cdc = require 'cdcpipe'\nerror('boom at load')\n");
    write_file(t->env, "");
    config cfg;
    char err[1024], want[2048];
    const char *args[] = {"--env-file", t->env, t->script, NULL};
    assert_int_equal(configure(args, &cfg, err, sizeof err), -1);
    snprintf(want, sizeof want, "%s:2: boom at load|stack traceback:|", t->script);
    if (strncmp(err, want, strlen(want)) != 0) fail_msg("got %s", err);
    assert_null(strchr(err, '\n'));

    /* a missing script names the path */
    char missing[700];
    snprintf(missing, sizeof missing, "%s/missing.lua", t->dir);
    const char *args2[] = {"--env-file", t->env, missing, NULL};
    assert_int_equal(configure(args2, &cfg, err, sizeof err), -1);
    snprintf(want, sizeof want,
             "cannot open %s: No such file or directory (check the pipeline script path)", missing);
    assert_string_equal(err, want);

    /* as does a missing --env-file */
    write_file(t->script, minimal_script);
    char noenv[700];
    snprintf(noenv, sizeof noenv, "%s/other.env", t->dir);
    const char *args3[] = {"--env-file", noenv, t->script, NULL};
    assert_int_equal(configure(args3, &cfg, err, sizeof err), -1);
    snprintf(want, sizeof want, "cannot read env file %s: No such file or directory", noenv);
    assert_string_equal(err, want);
}

/* .env syntax, table-driven through config_apply_env_file. */
typedef struct {
    const char *text;
    const char *field;
    const char *want;
} env_case;

static const env_case env_cases[] = {
    {"CDCPIPE_GROUP=plain\n", "group", "plain"},
    {"CDCPIPE_GROUP=no-newline-at-end", "group", "no-newline-at-end"},
    {"export CDCPIPE_GROUP=exported\n", "group", "exported"},
    {"  CDCPIPE_GROUP  =  spaced  \n", "group", "spaced"},
    {"CDCPIPE_GROUP=\"double quoted\"\n", "group", "double quoted"},
    {"CDCPIPE_GROUP='single quoted'\n", "group", "single quoted"},
    {"export\tCDCPIPE_GROUP=tab\n", "group", "tab"},
    {"export   CDCPIPE_GROUP=spaces\n", "group", "spaces"},
    {"exportCDCPIPE_GROUP=not-an-export\n", "group", "cdcpipe"},
    {"CDCPIPE_GROUP=value # a comment\n", "group", "value"},
    {"CDCPIPE_GROUP=value\t# a comment\n", "group", "value"},
    {"CDCPIPE_GROUP=pass#word\n", "group", "pass#word"},
    {"CDCPIPE_GROUP=#first\n", "group", "#first"},
    {"CDCPIPE_GROUP= # only a comment\n", "group", ""},
    {"CDCPIPE_GROUP=\"in quotes # stays\" # a comment\n", "group", "in quotes # stays"},
    {"CDCPIPE_GROUP='say \"hi\"'\n", "group", "say \"hi\""},
    {"CDCPIPE_GROUP=\"\"\n", "group", ""},
    {"CDCPIPE_GROUP=mid\"quote\n", "group", "mid\"quote"},
    {"CDCPIPE_GROUP=crlf\r\n", "group", "crlf"},
    {"CDCPIPE_CLICKHOUSE_PASSWORD=a=b=c\n", "clickhouse_password", "a=b=c"},
    {"CDCPIPE_GROUP=\n", "group", ""},
    {"# CDCPIPE_GROUP=commented\n", "group", "cdcpipe"},
    {"   # indented comment\n\n\t\n", "group", "cdcpipe"},
    {"PATH=/bin\nHOME=/root\nCDCPIPE=x\n", "group", "cdcpipe"},
    {"CDCPIPE_GROUP=first\nCDCPIPE_GROUP=second\n", "group", "second"},
    {"CDCPIPE_ONCE=on\n", "once", "true"},
    {"CDCPIPE_ONCE=1\n", "once", "true"},
    {"CDCPIPE_ONCE=off\n", "once", "false"},
    {"CDCPIPE_BATCH_ROWS=\"42\"\n", "batch_rows", "42"},
};

static void test_env_file_syntax(void **state)
{
    tmp *t = *state;
    int failures = 0;
    for (size_t i = 0; i < sizeof env_cases / sizeof env_cases[0]; i++) {
        write_file(t->env, env_cases[i].text);
        config cfg;
        config_init(&cfg);
        char err[512], got[256];
        if (config_apply_env_file(&cfg, t->env, true, err, sizeof err) != 0) {
            print_error("case %zu: %s\n", i, err);
            failures++;
        } else {
            field_text(&cfg, env_cases[i].field, got, sizeof got);
            if (strcmp(got, env_cases[i].want) != 0) {
                print_error("case %zu: got \"%s\" want \"%s\"\n", i, got, env_cases[i].want);
                failures++;
            }
        }
        config_free(&cfg);
    }
    assert_int_equal(failures, 0);
}

/* A line is read whole, however long: a 4 KiB buffer used to cut a long value and read its
 * tail as a line of its own, so a value could set another setting. */
static void test_env_long_line(void **state)
{
    tmp *t = *state;
    strbuf text = {0}, want = {0};
    strbuf_puts(&text, "CDCPIPE_GROUP=");
    for (size_t i = text.len; i < 4095; i++)
        strbuf_putc(&want, 'g');
    strbuf_puts(&want, "CDCPIPE_TABLE=injected");
    strbuf_append(&text, want.data, want.len);
    strbuf_puts(&text, "\nCDCPIPE_BATCH_ROWS=7\n");
    write_file(t->env, text.data);
    config cfg;
    config_init(&cfg);
    char err[512];
    if (config_apply_env_file(&cfg, t->env, true, err, sizeof err) != 0) fail_msg("%s", err);
    assert_string_equal(cfg.group, want.data);
    assert_string_equal(cfg.table, "changes");
    assert_int_equal(cfg.batch_rows, 7);
    config_free(&cfg);
    strbuf_free(&text);
    strbuf_free(&want);
}

/* A .env that holds a password and that group or others may read: a warning saying how to fix
 * it; none at mode 600, none without a password (a *_PASSWORD_FILE names a file, no secret). */
static void test_env_file_mode(void **state)
{
    tmp *t = *state;
    static const struct {
        const char *text;
        mode_t mode;
        const char *holds; /* NULL: no warning */
    } cases[] = {
        {"CDCPIPE_CLICKHOUSE_PASSWORD=s3cret\n", 0644, "CDCPIPE_CLICKHOUSE_PASSWORD"},
        {"CDCPIPE_CLICKHOUSE_PASSWORD=s3cret\n", 0640, "CDCPIPE_CLICKHOUSE_PASSWORD"},
        {"CDCPIPE_GROUP=g\nexport PG_PASSWORD=\"pg\"\n", 0604, "PG_PASSWORD"},
        {"CDCPIPE_CLICKHOUSE_PASSWORD=s3cret\n", 0600, NULL},
        {"CDCPIPE_CLICKHOUSE_PASSWORD=s3cret\n", 0400, NULL},
        {"CDCPIPE_CLICKHOUSE_PASSWORD=\n", 0644, NULL},
        {"CDCPIPE_GROUP=g\n", 0644, NULL},
        {"CDCPIPE_CLICKHOUSE_PASSWORD_FILE=/etc/hostname\n", 0644, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_file(t->env, cases[i].text);
        assert_int_equal(chmod(t->env, cases[i].mode), 0);
        config cfg;
        config_init(&cfg);
        char err[512], want[2048] = "";
        if (config_apply_env_file(&cfg, t->env, true, err, sizeof err) != 0) fail_msg("%s", err);
        if (cases[i].holds)
            snprintf(want, sizeof want,
                     "%s holds %s but group or others may read it (mode %04o): chmod 600 %s",
                     t->env, cases[i].holds, (unsigned)cases[i].mode, t->env);
        if (strcmp(cfg.env_warning, want) != 0)
            fail_msg("case %zu: warning \"%s\", want \"%s\"", i, cfg.env_warning, want);
        config_free(&cfg);
    }
}

/* Without --env-file, ./.env is read when present and skipped when absent. */
static void test_default_env_file(void **state)
{
    tmp *t = *state;
    char cwd[4096];
    assert_non_null(getcwd(cwd, sizeof cwd));
    write_file(t->script, minimal_script);
    write_file(t->env, "CDCPIPE_GROUP=from-dot-env\n");
    char path[5000]; /* t->script may be relative to the directory we leave */
    snprintf(path, sizeof path, "%s%s%s", t->script[0] == '/' ? "" : cwd,
             t->script[0] == '/' ? "" : "/", t->script);
    assert_int_equal(chdir(t->dir), 0);
    config cfg;
    char err[512];
    const char *args[] = {path, NULL};
    int rc = configure(args, &cfg, err, sizeof err);
    if (rc == 0) {
        assert_string_equal(cfg.group, "from-dot-env");
        config_free(&cfg);
    }
    unlink(".env"); /* the one in t->dir, where we are now */
    int rc2 = configure(args, &cfg, err, sizeof err);
    if (rc2 == 0) {
        assert_string_equal(cfg.group, "cdcpipe");
        config_free(&cfg);
    }
    assert_int_equal(chdir(cwd), 0);
    assert_int_equal(rc, 0);
    assert_int_equal(rc2, 0);
}

/* ---- cli_parse alone ---- */

typedef struct {
    const char *args[10];
    const char *err; /* exact error, or NULL for success */
} parse_case;

static const parse_case parse_cases[] = {
    {{"--bogus", "p.lua"}, "unknown option --bogus (see cdcpipe --help)"},
    {{"p.lua", "-Z"}, "unknown option -Z (see cdcpipe --help)"},
    {{"p.lua", "-b"}, "option -b needs a value (see cdcpipe --help)"},
    {{"p.lua", "--batch-rows"}, "option --batch-rows needs a value (see cdcpipe --help)"},
    {{NULL}, "expected a pipeline script, e.g. pipeline.lua (see cdcpipe --help)"},
    {{"a.lua", "b.lua"}, "too many arguments (see cdcpipe --help)"},
    {{"test", "p.lua"},
     "expected a pipeline script and an events file (or - for stdin) (see cdcpipe --help)"},
    {{"-X", "novalue", "p.lua"}, "-X novalue: expected -X name=value (a librdkafka property)"},
    {{"-X", "=x", "p.lua"}, "-X (no name): expected -X name=value (a librdkafka property)"},
    /* a bad argument is shown up to its '=' only: what follows may be a secret */
    {{"--clickhouse-passwd=S3cret", "p.lua"},
     "unknown option --clickhouse-passwd (see cdcpipe --help)"},
    {{"-X", "sasl.password:S3cret", "p.lua"},
     "-X sasl.password…: expected -X name=value (a librdkafka property)"},
    {{"--clickhouse-password", "S3cret", "-vZq", "p.lua"},
     "unknown option -Z (see cdcpipe --help)"},
    {{"--once=S3cret", "p.lua"}, "option --once takes no value (see cdcpipe --help)"},
    {{"p.lua", "--clickhouse-password"},
     "option --clickhouse-password needs a value (see cdcpipe --help)"},
    {{"p.lua", "-b", "h:1"}, NULL},
    {{"check", "p.lua"}, NULL},
    {{"test", "p.lua", "-"}, NULL},
};

static int parse(const char *const *args, cli_args *a, char *err, size_t errlen, char **copies,
                 int *ncopies)
{
    int argc = 0;
    copies[argc++] = strdup("cdcpipe");
    for (; *args; args++)
        copies[argc++] = strdup(*args);
    *ncopies = argc;
    static char *argv[16];
    memcpy(argv, copies, (size_t)argc * sizeof *argv);
    argv[argc] = NULL;
    return cli_parse(argc, argv, a, err, errlen);
}

static void test_parse_cases(void **state)
{
    (void)state;
    int failures = 0;
    for (size_t i = 0; i < sizeof parse_cases / sizeof parse_cases[0]; i++) {
        cli_args a;
        char err[512] = "", *copies[16];
        int n;
        int rc = parse(parse_cases[i].args, &a, err, sizeof err, copies, &n);
        if (parse_cases[i].err ? rc != -1 || strcmp(err, parse_cases[i].err) != 0 : rc != 0) {
            print_error("case %zu: rc %d err \"%s\", want %s\n", i, rc, err,
                        parse_cases[i].err ? parse_cases[i].err : "success");
            failures++;
        }
        cli_free(&a);
        for (int k = 0; k < n; k++)
            free(copies[k]);
    }
    assert_int_equal(failures, 0);
}

static void test_parse_fields(void **state)
{
    (void)state;
    cli_args a;
    char err[512], *copies[16];
    int n;

    /* options after the script are fine (argv is permuted) */
    const char *run[] = {"pipeline.lua", "-g", "grp", "--once", "-v", "-X", "a.b=c=d", NULL};
    assert_int_equal(parse(run, &a, err, sizeof err, copies, &n), 0);
    assert_int_equal(a.command, CMD_RUN);
    assert_string_equal(a.script_path, "pipeline.lua");
    assert_null(a.env_file);
    assert_int_equal(a.nsettings, 3);
    assert_string_equal(a.settings[0].key, "group");
    assert_string_equal(a.settings[0].value, "grp");
    assert_string_equal(a.settings[0].origin, "-g/--group");
    assert_string_equal(a.settings[1].key, "once");
    assert_string_equal(a.settings[1].value, "true");
    assert_string_equal(a.settings[1].origin, "--once");
    assert_string_equal(a.settings[2].key, "log_level");
    assert_string_equal(a.settings[2].value, "debug");
    assert_int_equal(a.nkafka, 1);
    assert_string_equal(a.kafka_props[0], "a.b=c=d");
    cli_free(&a);
    for (int k = 0; k < n; k++)
        free(copies[k]);

    const char *test[] = {"test", "-qq", "--env-file", "x.env", "p.lua", "events.jsonl", NULL};
    assert_int_equal(parse(test, &a, err, sizeof err, copies, &n), 0);
    assert_int_equal(a.command, CMD_TEST);
    assert_string_equal(a.script_path, "p.lua");
    assert_string_equal(a.test_input, "events.jsonl");
    assert_string_equal(a.env_file, "x.env");
    assert_int_equal(a.nsettings, 1);
    assert_string_equal(a.settings[0].value, "error");
    cli_free(&a);
    for (int k = 0; k < n; k++)
        free(copies[k]);

    const char *quiet[] = {"check", "-q", "p.lua", NULL};
    assert_int_equal(parse(quiet, &a, err, sizeof err, copies, &n), 0);
    assert_int_equal(a.command, CMD_CHECK);
    assert_string_equal(a.settings[0].value, "warn");
    cli_free(&a);
    for (int k = 0; k < n; k++)
        free(copies[k]);

    const char *help[] = {"--help", NULL};
    assert_int_equal(parse(help, &a, err, sizeof err, copies, &n), 0);
    assert_true(a.help);
    cli_free(&a);
    for (int k = 0; k < n; k++)
        free(copies[k]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_precedence, setup, teardown),
        cmocka_unit_test_setup_teardown(test_topics_joined, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_cases, setup, teardown),
        cmocka_unit_test_setup_teardown(test_limits_accepted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_script_runtime_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_password_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_env_file_syntax, setup, teardown),
        cmocka_unit_test_setup_teardown(test_env_long_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_env_file_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_default_env_file, setup, teardown),
        cmocka_unit_test(test_parse_cases),
        cmocka_unit_test(test_parse_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
