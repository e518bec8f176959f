/*
 * script — the user's pipeline.lua: one Lua state, its ddl() and transform(event, meta).
 *
 * script_open loads and runs the file once (defining `config`, `ddl`, `transform`), with the
 * built-in module available as require "cdcpipe". transform and ddl are looked up once and kept
 * as registry references. Per event, script_process runs decode → transform → row delivery inside
 * one protected call with a traceback handler, so any failure (bad JSON, Lua error, bad row) comes
 * back as a result code plus message and the state stays usable.
 */
#ifndef CDCPIPE_SCRIPT_H
#define CDCPIPE_SCRIPT_H

#include <lua.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cdcpipe/config.h"
#include "cdcpipe/strbuf.h"

typedef struct script script;

struct rd_kafka_headers_s; /* librdkafka's rd_kafka_headers_t */

/* One Kafka record as the pipeline hands it over. value == NULL is a tombstone. Everything is
 * borrowed for the duration of script_process. */
typedef struct {
    const char *topic;
    int32_t partition;
    int64_t offset;
    int64_t timestamp_ms; /* -1 when the record has none */
    const char *key;
    size_t key_len;
    const char *value;
    size_t value_len;
    /* the record's headers (rd_kafka_message_headers), NULL when it has none: meta.headers */
    struct rd_kafka_headers_s *headers;
} script_event;

typedef enum {
    SCRIPT_ROWS,         /* transform produced >= 1 row, all delivered */
    SCRIPT_FILTERED,     /* transform returned nil/false or {} and emitted nothing */
    SCRIPT_TOMBSTONE,    /* null value, skipped: the script defines no tombstone(meta) */
    SCRIPT_DECODE_ERROR, /* the value is not a JSON object / not valid JSON */
    SCRIPT_LUA_ERROR,    /* transform raised, or returned something that is not rows */
    SCRIPT_ABORTED,      /* the host gave the event up (cdc.ddl/cdc.columns answered
                          * SCRIPT_HOST_ABORT): it was not handled and must be consumed again,
                          * or the run stops; never dead-lettered */
} script_result;

/* What the running pipeline offers transform beyond rows (cdc.ddl, cdc.columns,
 * cdc.clickhouse_version, cdc.query). Without a host (a dry run, cdcpipe test) cdc.ddl logs the
 * statement and does nothing, cdc.columns, cdc.clickhouse_version and cdc.query return nil. */
typedef enum {
    SCRIPT_HOST_OK,
    SCRIPT_HOST_REJECTED, /* err says why: raised as a Lua error (pcall can catch it) */
    SCRIPT_HOST_ABORT,    /* the event is given up: script_process returns SCRIPT_ABORTED */
} script_host_result;

typedef struct {
    /* cdc.ddl(sql): runs the statement now, after every row of earlier events is inserted. */
    script_host_result (*ddl)(void *ud, const char *sql, char *err, size_t errlen);
    /* cdc.columns(table): on SCRIPT_HOST_OK pushes a table {name = type, ...} of the target
     * table's insertable columns, or nil when the table does not exist. */
    script_host_result (*columns)(void *ud, const char *table, lua_State *L, char *err,
                                  size_t errlen);
    /* "major.minor..." of the ClickHouse server, or NULL when not known. */
    const char *(*clickhouse_version)(void *ud);
    /* cdc.query(sql): runs the SELECT now, after every row of earlier events is inserted; on
     * SCRIPT_HOST_OK appends the answer (FORMAT JSONEachRow: one object per line) to out. */
    script_host_result (*query)(void *ud, const char *sql, strbuf *out, char *err, size_t errlen);
    void *ud;
} script_host;

/* Sets (or with NULL clears) the host; it must outlive the script or the next call. */
void script_set_host(script *s, const script_host *host);

/* Receives each row: the target table and the row table at stack index idx. Returns 0, or -1
 * with err (e.g. the row cannot be serialized); that fails the event (SCRIPT_LUA_ERROR). */
typedef int (*script_row_fn)(void *ud, const char *table, lua_State *L, int idx, char *err,
                             size_t errlen);

/* Loads path. Returns NULL with err naming the file (and line, for syntax and runtime errors)
 * when it cannot be read, fails to run, or lacks a transform function. memory_limit caps the
 * Lua state's memory in bytes (0: no cap). */
script *script_open(const char *path, size_t memory_limit, char *err, size_t errlen);
void script_close(script *s);

/* Caps the Lua instructions one event's transform may run (0: no cap); past it the event fails
 * with SCRIPT_LUA_ERROR and the state stays usable. */
void script_set_instruction_limit(script *s, long instructions);

/* Limits the wall-clock time of one event — decoding, transform and its rows — to ms (0: no
 * limit); past it the event fails with SCRIPT_LUA_ERROR and the state stays usable. Lua code
 * stops at its next instruction, string.find/match/gmatch/gsub within a few thousand steps of
 * matching (lua_patterns.h), other C functions when they return. Enforced by a watchdog thread
 * that signals (SIGURG) the thread processing events: a script's events must all be processed on
 * one thread, the one that processes the first event with a limit. */
void script_set_timeout(script *s, long ms);

/* For a row callback (script_row_fn) about to wait on something that is not the event's doing (a
 * ClickHouse round trip): script_pause_timeout stops the event's clock, script_resume_timeout
 * restarts it with the whole limit. Call both, in that order, from the callback only. */
void script_pause_timeout(script *s);
void script_resume_timeout(script *s);

/* --input debezium (on) or json (off, the default of a fresh script): when on, a value that is
 * not a Debezium change event (no "op" code c u d r t m after the schemas envelope) fails with
 * SCRIPT_DECODE_ERROR before transform sees it. */
void script_set_debezium_only(script *s, bool on);

/* Caps the record key (bytes; 0: no cap, the default of a fresh script): a larger key is not
 * decoded and the event fails with SCRIPT_DECODE_ERROR. --max-event-bytes sets it. */
void script_set_max_key_bytes(script *s, size_t bytes);

/* Applies cfg's per-event settings (--lua-instructions, --lua-timeout, --input, --max-event-bytes
 * for the key) to a script just opened: the one place the CLI and a SIGHUP reload set them. */
void script_apply_config(script *s, const config *cfg);

/* The source.ts_ms (the source database's commit time, unix ms) of the Debezium event the last
 * script_process decoded, read before transform ran; -1 when it had none (a tombstone, --input
 * json, a decode error). For the end-to-end latency (metrics.h). */
int64_t script_source_ts_ms(const script *s);

/* The per-event limit the last script_process ran into (same order as metrics_limit). */
typedef enum {
    SCRIPT_LIMIT_NONE,
    SCRIPT_LIMIT_INSTRUCTIONS, /* --lua-instructions */
    SCRIPT_LIMIT_TIME,         /* --lua-timeout */
    SCRIPT_LIMIT_MEMORY,       /* --lua-memory-mb */
} script_limit;
script_limit script_last_limit(const script *s);

lua_State *script_lua(script *s);
const char *script_path(const script *s);

/* Calls ddl() if the script defines it. On success *stmts is a NULL-terminated array of SQL
 * strings (free with script_free_ddl; empty when there is no ddl). Returns 0, or -1 with err. */
int script_ddl(script *s, char ***stmts, char *err, size_t errlen);
void script_free_ddl(char **stmts);

/* Runs one event: decode key and value, call transform(event, meta) — meta is { topic,
 * partition, offset, timestamp (when the record has one), key, headers (when it has any) } —
 * and deliver rows returned (to default_table) and emitted with cdc.emit (to their table). A
 * tombstone (NULL value) goes to tombstone(meta) the same way when the script defines it. On
 * any error err describes it; rows already delivered for this event must be discarded by the
 * caller. *rows counts delivered rows. */
script_result script_process(script *s, const script_event *ev, const char *default_table,
                             script_row_fn on_row, void *ud, size_t *rows, char *err,
                             size_t errlen);

#endif
