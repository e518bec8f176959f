/*
 * config — every setting, where it can come from, and the order in which sources win:
 *   built-in defaults < `config` in pipeline.lua < .env file < environment (CDCPIPE_*) < CLI.
 *
 * One table (src/config.c) lists each setting once with its CLI flag, environment name and
 * pipeline.lua path; every source goes through config_set, so validation and error messages are
 * the same whichever source the value came from. Messages name the source so the user knows
 * which file, variable or flag to fix.
 */
#ifndef CDCPIPE_CONFIG_H
#define CDCPIPE_CONFIG_H

typedef struct lua_State lua_State; /* <lua.h>: only config_apply_lua needs it */
#include <stdbool.h>
#include <stddef.h>

/* The ClickHouse HTTP interface takes at most this many rows per INSERT from us. */
#define CONFIG_MAX_BATCH_ROWS 1000000L
/* The smallest --lua-instructions: one step of the count hook (script.c). */
#define CONFIG_MIN_LUA_INSTRUCTIONS 1000

typedef struct {
    char *brokers;
    char *topics; /* comma-separated */
    char *group;
    char *clickhouse_url;
    char *clickhouse_user;
    char *clickhouse_password;
    char *clickhouse_password_file; /* "" = none; else its text became clickhouse_password */
    char *clickhouse_ca;            /* CA file for https://, "" = the system's */
    bool clickhouse_insecure;       /* https:// without certificate verification */
    long clickhouse_timeout;        /* seconds: the overall deadline of one ClickHouse request */
    char *clickhouse_compression;   /* INSERT bodies: "none", "gzip", "zstd" or "lz4" */
    char *format; /* insert format: "auto", "rowbinary" (RowBinary where the table's types
                   * allow, else JSONEachRow) or "json" (JSONEachRow always) */
    char *database;
    char *table;
    char *ledger; /* the insert ledger table ("t" or "db.t"; ledger.h), "none": no ledger */
    long batch_rows;
    long batch_bytes;
    long batch_ms;
    bool once;
    char *from;
    char *input; /* "debezium": change events only (others dead-lettered); "json": any object */
    bool dry_run;
    long show;
    char *log_level;
    char *log_format;     /* "text" or "json" (one JSON object per line) */
    char *metrics_listen; /* --metrics ADDR:PORT: serve /metrics, /healthz, /readyz; "" = off */
    long lua_memory_mb;
    long lua_instructions; /* per event; a transform running longer is stopped */
    long lua_timeout_ms;   /* per event, wall clock; an event running longer is stopped */
    char *dlq_topic;       /* "" = "<source topic>.dlq", "none" = no Kafka dead letters */
    char *dlq_file;        /* "" = no file */
    long dlq_max_bytes;
    long max_event_bytes;
    long shutdown_timeout; /* seconds to keep retrying inserts after SIGINT/SIGTERM or a revoke */
    long workers;          /* --workers: partition worker threads; 0: one per CPU available */
    long stats_interval;   /* seconds between "progress:" log lines with the counters; 0: none */
    /* config_apply_env_file: a warning for the user (a password readable by others), "" none */
    char env_warning[640];
    /* librdkafka properties, applied after cdcpipe's own: names[i] = values[i] */
    char **kafka_names;
    char **kafka_values;
    size_t kafka_count;
} config;

/* Fills cfg with the built-in defaults. */
void config_init(config *cfg);
void config_free(config *cfg);

/* Sets the setting named `key` ("brokers", "batch_rows", ... as in the table) from text.
 * origin names the source for error messages ("--batch-rows", "CDCPIPE_BATCH_ROWS", ...).
 * Returns 0, or -1 with err naming origin, the value and what is expected. */
int config_set(config *cfg, const char *key, const char *value, const char *origin, char *err,
               size_t errlen);

/* Maps a CLI long option name ("batch-rows") or environment name ("CDCPIPE_BATCH_ROWS") to the
 * setting key; NULL when unknown. */
const char *config_key_for_flag(const char *flag);
const char *config_key_for_env(const char *env);

/* Adds or replaces a librdkafka property. */
void config_set_kafka(config *cfg, const char *name, const char *value);

/* Applies the global table `config` of the script's state (absent: nothing to do). Unknown
 * sections or keys are errors naming the script. Returns 0 or -1. */
int config_apply_lua(config *cfg, lua_State *L, const char *script_path, char *err, size_t errlen);

/* Applies a .env file: lines NAME=VALUE of any length, `export` and a space or tab before NAME
 * allowed, # comment lines. A value in '…' or "…" is what lies between the quotes (no escapes);
 * an unquoted one ends at a '#' after a space or tab. Only CDCPIPE_* names are read; an unknown
 * CDCPIPE_ name, a line without '=', an unbalanced quote are errors naming file and line (never
 * the value). A missing file is an error only when `required`. When the file holds a password
 * (a name with PASSWORD) and group or others may read it, cfg->env_warning says so. */
int config_apply_env_file(config *cfg, const char *path, bool required, char *err, size_t errlen);

/* Applies every known CDCPIPE_* variable of the process environment. */
int config_apply_environment(config *cfg, char *err, size_t errlen);

/* Checks the combination (topics present, --from parses, ...). Returns 0 or -1. */
int config_validate(const config *cfg, char *err, size_t errlen);

#endif
