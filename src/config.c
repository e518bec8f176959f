/*
 * config — settings, their sources and precedence (see include/cdcpipe/config.h).
 */
#include "cdcpipe/config.h"

#include <errno.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "cdcpipe/start_position.h"
#include "cdcpipe/xalloc.h"
#include "cdcpipe/errbuf.h"

typedef enum { T_STRING, T_LONG, T_BOOL } setting_type;

typedef struct {
    const char *key;         /* setting name, also the CLI long flag with '_' → '-' */
    const char *flag;        /* CLI long option */
    const char *env;         /* environment / .env name */
    const char *lua_section; /* config.<section>.<name> in pipeline.lua, or NULL */
    const char *lua_name;
    setting_type type;
    size_t offset;
    long min, max;
    const char *fallback; /* built-in default as text */
} setting;

#define S(field) offsetof(config, field)
static const setting settings[] = {
    {"brokers", "brokers", "CDCPIPE_BROKERS", "kafka", "brokers", T_STRING, S(brokers), 0, 0,
     "localhost:9092"},
    {"topics", "topic", "CDCPIPE_TOPICS", "kafka", "topics", T_STRING, S(topics), 0, 0, ""},
    {"group", "group", "CDCPIPE_GROUP", "kafka", "group", T_STRING, S(group), 0, 0, "cdcpipe"},
    {"from", "from", "CDCPIPE_FROM", "kafka", "from", T_STRING, S(from), 0, 0, "committed"},
    {"input", "input", "CDCPIPE_INPUT", "kafka", "input", T_STRING, S(input), 0, 0, "debezium"},
    {"clickhouse_url", "clickhouse", "CDCPIPE_CLICKHOUSE_URL", "clickhouse", "url", T_STRING,
     S(clickhouse_url), 0, 0, "http://localhost:8123"},
    {"clickhouse_user", "clickhouse-user", "CDCPIPE_CLICKHOUSE_USER", "clickhouse", "user",
     T_STRING, S(clickhouse_user), 0, 0, ""},
    {"clickhouse_password", "clickhouse-password", "CDCPIPE_CLICKHOUSE_PASSWORD", "clickhouse",
     "password", T_STRING, S(clickhouse_password), 0, 0, ""},
    {"clickhouse_password_file", "clickhouse-password-file", "CDCPIPE_CLICKHOUSE_PASSWORD_FILE",
     "clickhouse", "password_file", T_STRING, S(clickhouse_password_file), 0, 0, ""},
    {"clickhouse_ca", "clickhouse-ca", "CDCPIPE_CLICKHOUSE_CA", "clickhouse", "ca", T_STRING,
     S(clickhouse_ca), 0, 0, ""},
    {"clickhouse_insecure", "clickhouse-insecure", "CDCPIPE_CLICKHOUSE_INSECURE", "clickhouse",
     "insecure", T_BOOL, S(clickhouse_insecure), 0, 0, "false"},
    {"clickhouse_timeout", "clickhouse-timeout", "CDCPIPE_CLICKHOUSE_TIMEOUT", "clickhouse",
     "timeout", T_LONG, S(clickhouse_timeout), 1, 86400, "120"},
    {"clickhouse_compression", "clickhouse-compression", "CDCPIPE_CLICKHOUSE_COMPRESSION",
     "clickhouse", "compression", T_STRING, S(clickhouse_compression), 0, 0, "none"},
    {"format", "format", "CDCPIPE_FORMAT", "clickhouse", "format", T_STRING, S(format), 0, 0,
     "auto"},
    {"database", "database", "CDCPIPE_DATABASE", "clickhouse", "database", T_STRING, S(database), 0,
     0, "default"},
    {"table", "table", "CDCPIPE_TABLE", "clickhouse", "table", T_STRING, S(table), 0, 0, "changes"},
    {"ledger", "ledger", "CDCPIPE_LEDGER", "clickhouse", "ledger", T_STRING, S(ledger), 0, 0,
     "cdcpipe_ledger"},
    {"batch_rows", "batch-rows", "CDCPIPE_BATCH_ROWS", "batch", "max_rows", T_LONG, S(batch_rows),
     1, CONFIG_MAX_BATCH_ROWS, "50000"},
    {"batch_bytes", "batch-bytes", "CDCPIPE_BATCH_BYTES", "batch", "max_bytes", T_LONG,
     S(batch_bytes), 1024, 1L << 31, "16777216"},
    {"batch_ms", "batch-ms", "CDCPIPE_BATCH_MS", "batch", "max_ms", T_LONG, S(batch_ms), 1, 3600000,
     "1000"},
    {"once", "once", "CDCPIPE_ONCE", NULL, NULL, T_BOOL, S(once), 0, 0, "false"},
    {"dry_run", "dry-run", "CDCPIPE_DRY_RUN", NULL, NULL, T_BOOL, S(dry_run), 0, 0, "false"},
    {"show", "show", "CDCPIPE_SHOW", NULL, NULL, T_LONG, S(show), 0, 100000, "0"},
    {"log_level", "log-level", "CDCPIPE_LOG_LEVEL", NULL, NULL, T_STRING, S(log_level), 0, 0,
     "info"},
    {"log_format", "log-format", "CDCPIPE_LOG_FORMAT", NULL, NULL, T_STRING, S(log_format), 0, 0,
     "text"},
    {"metrics_listen", "metrics", "CDCPIPE_METRICS", "metrics", "listen", T_STRING,
     S(metrics_listen), 0, 0, ""},
    {"lua_memory_mb", "lua-memory-mb", "CDCPIPE_LUA_MEMORY_MB", "lua", "memory_mb", T_LONG,
     S(lua_memory_mb), 1, 1 << 20, "256"},
    {"lua_instructions", "lua-instructions", "CDCPIPE_LUA_INSTRUCTIONS", "lua", "instructions",
     T_LONG, S(lua_instructions), CONFIG_MIN_LUA_INSTRUCTIONS, 2000000000L, "10000000"},
    {"lua_timeout_ms", "lua-timeout", "CDCPIPE_LUA_TIMEOUT", "lua", "timeout_ms", T_LONG,
     S(lua_timeout_ms), 10, 3600000, "1000"},
    {"dlq_topic", "dlq-topic", "CDCPIPE_DLQ_TOPIC", "dead_letters", "topic", T_STRING, S(dlq_topic),
     0, 0, ""},
    {"dlq_file", "dlq-file", "CDCPIPE_DLQ_FILE", "dead_letters", "file", T_STRING, S(dlq_file), 0,
     0, ""},
    {"dlq_max_bytes", "dlq-max-bytes", "CDCPIPE_DLQ_MAX_BYTES", "dead_letters", "max_bytes", T_LONG,
     S(dlq_max_bytes), 1024, 100L << 20, "921600"},
    {"max_event_bytes", "max-event-bytes", "CDCPIPE_MAX_EVENT_BYTES", "kafka", "max_event_bytes",
     T_LONG, S(max_event_bytes), 1024, 1L << 30, "8388608"},
    {"shutdown_timeout", "shutdown-timeout", "CDCPIPE_SHUTDOWN_TIMEOUT", NULL, NULL, T_LONG,
     S(shutdown_timeout), 0, 3600, "10"},
    {"workers", "workers", "CDCPIPE_WORKERS", "kafka", "workers", T_LONG, S(workers), 0, 64, "0"},
    {"stats_interval", "stats-interval", "CDCPIPE_STATS_INTERVAL", NULL, NULL, T_LONG,
     S(stats_interval), 0, 86400, "60"},
};
#define NSETTINGS (sizeof settings / sizeof settings[0])

/* String settings that take one of a few words. */
static const struct {
    const char *key;
    const char *words[5]; /* NULL-terminated */
    const char *meaning;  /* said in the error */
} choices[] = {
    {"input",
     {"debezium", "json", NULL},
     "debezium: change events only, anything else is dead-lettered; json: every JSON object goes "
     "to transform"},
    {"log_format",
     {"text", "json", NULL},
     "text: one line per message for people; json: one JSON object per line for log shippers"},
    {"format",
     {"auto", "rowbinary", "json", NULL},
     "auto: RowBinary for every table whose column types the encoder covers, JSONEachRow for the "
     "others; rowbinary: the same, with a warning for each table that falls back; json: "
     "JSONEachRow always"},
    {"clickhouse_compression",
     {"none", "gzip", "zstd", "lz4", NULL},
     "the Content-Encoding of INSERT bodies: gzip works with every ClickHouse version, zstd needs "
     "21.1 or newer, lz4 a newer server still; none sends them as they are"},
};

/* 0 when value is allowed for key (any value for a setting without choices), else -1 with err. */
static int check_choice(const char *key, const char *value, const char *origin, char *err,
                        size_t errlen)
{
    for (size_t i = 0; i < sizeof choices / sizeof choices[0]; i++) {
        if (strcmp(choices[i].key, key) != 0) continue;
        char list[128] = "";
        for (const char *const *w = choices[i].words; *w; w++) {
            if (strcmp(*w, value) == 0) return 0;
            size_t used = strlen(list);
            snprintf(list + used, sizeof list - used, "%s%s", used ? ", " : "", *w);
        }
        errbuf_set(err, errlen, "%s: \"%s\" is not one of %s (%s)", origin, value, list,
                   choices[i].meaning);
        return -1;
    }
    return 0;
}

static const setting *find_by_key(const char *key)
{
    for (size_t i = 0; i < NSETTINGS; i++)
        if (strcmp(settings[i].key, key) == 0) return &settings[i];
    return NULL;
}

const char *config_key_for_flag(const char *flag)
{
    for (size_t i = 0; i < NSETTINGS; i++)
        if (strcmp(settings[i].flag, flag) == 0) return settings[i].key;
    return NULL;
}

const char *config_key_for_env(const char *env)
{
    for (size_t i = 0; i < NSETTINGS; i++)
        if (strcmp(settings[i].env, env) == 0) return settings[i].key;
    return NULL;
}

void config_init(config *cfg)
{
    char err[256];
    memset(cfg, 0, sizeof *cfg);
    for (size_t i = 0; i < NSETTINGS; i++)
        if (config_set(cfg, settings[i].key, settings[i].fallback, "default", err, sizeof err))
            cdc_assert_failed(__FILE__, __LINE__, "the built-in defaults are valid settings");
}

void config_free(config *cfg)
{
    for (size_t i = 0; i < NSETTINGS; i++)
        if (settings[i].type == T_STRING) free(*(char **)((char *)cfg + settings[i].offset));
    for (size_t i = 0; i < cfg->kafka_count; i++) {
        free(cfg->kafka_names[i]);
        free(cfg->kafka_values[i]);
    }
    free(cfg->kafka_names);
    free(cfg->kafka_values);
    memset(cfg, 0, sizeof *cfg);
}

static int parse_bool(const char *v, bool *out)
{
    static const char *const yes[] = {"1", "true", "yes", "on"};
    static const char *const no[] = {"0", "false", "no", "off", ""};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
        if (strcmp(v, yes[i]) == 0) return *out = true, 0;
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        if (strcmp(v, no[i]) == 0) return *out = false, 0;
    return -1;
}

/* The password in path: the whole file but one trailing newline (LF or CRLF). Errors name origin
 * and path, never the content. */
static int read_password_file(const char *path, const char *origin, char **password, char *err,
                              size_t errlen)
{
    char buf[4097];
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, sizeof buf, f) : 0;
    if (!f || ferror(f)) {
        errbuf_set(err, errlen, "%s: cannot read the password file %s: %s", origin, path,
                   strerror(errno));
        if (f) fclose(f);
        return -1;
    }
    fclose(f);
    if (n == sizeof buf || memchr(buf, '\0', n)) {
        errbuf_set(err, errlen, "%s: %s is not a password file (%s)", origin, path,
                   n == sizeof buf ? "larger than 4 KiB" : "it holds a NUL byte");
        return -1;
    }
    if (n > 0 && buf[n - 1] == '\n') n--;
    if (n > 0 && buf[n - 1] == '\r') n--;
    buf[n] = '\0';
    free(*password);
    *password = xstrdup(buf);
    memset(buf, 0, sizeof buf);
    return 0;
}

int config_set(config *cfg, const char *key, const char *value, const char *origin, char *err,
               size_t errlen)
{
    const setting *s = find_by_key(key);
    if (!s) {
        errbuf_set(err, errlen, "%s: unknown setting \"%s\"", origin, key);
        return -1;
    }
    void *field = (char *)cfg + s->offset;
    switch (s->type) {
    case T_STRING:
        if (check_choice(key, value, origin, err, errlen) != 0) return -1;
        /* the file's text is the password, replacing one from a source of lower precedence */
        if (strcmp(key, "clickhouse_password_file") == 0 && value[0] &&
            read_password_file(value, origin, &cfg->clickhouse_password, err, errlen) != 0)
            return -1;
        free(*(char **)field);
        *(char **)field = xstrdup(value);
        return 0;
    case T_BOOL:
        if (parse_bool(value, field) != 0) {
            errbuf_set(err, errlen, "%s: \"%s\" is not a boolean (use true or false)", origin,
                       value);
            return -1;
        }
        return 0;
    case T_LONG: {
        char *end;
        errno = 0;
        long v = strtol(value, &end, 10);
        if (errno || end == value || *end || v < s->min || v > s->max) {
            errbuf_set(err, errlen, "%s: \"%s\" is not a whole number from %ld to %ld", origin,
                       value, s->min, s->max);
            return -1;
        }
        *(long *)field = v;
        return 0;
    }
    }
    return -1;
}

void config_set_kafka(config *cfg, const char *name, const char *value)
{
    for (size_t i = 0; i < cfg->kafka_count; i++) {
        if (strcmp(cfg->kafka_names[i], name) == 0) {
            free(cfg->kafka_values[i]);
            cfg->kafka_values[i] = xstrdup(value);
            return;
        }
    }
    size_t n = cfg->kafka_count + 1;
    char **names = xrealloc(cfg->kafka_names, n, sizeof *names);
    cfg->kafka_names = names;
    char **values = xrealloc(cfg->kafka_values, n, sizeof *values);
    cfg->kafka_values = values;
    cfg->kafka_names[n - 1] = xstrdup(name);
    cfg->kafka_values[n - 1] = xstrdup(value);
    cfg->kafka_count = n;
}

/* ---- pipeline.lua ---- */

/* Converts the value on top of the stack to setting text (a list of strings is comma-joined).
 * Returns a Lua string on the stack top (replacing the value) or NULL when the type is wrong. */
static const char *lua_setting_text(lua_State *L)
{
    switch (lua_type(L, -1)) {
    case LUA_TSTRING:
        return lua_tostring(L, -1);
    case LUA_TNUMBER:
        lua_pushstring(L, lua_tostring(L, -1)); /* copy: converting in place confuses lua_next */
        lua_remove(L, -2);
        return lua_tostring(L, -1);
    case LUA_TBOOLEAN:
        lua_pushstring(L, lua_toboolean(L, -1) ? "true" : "false");
        lua_remove(L, -2);
        return lua_tostring(L, -1);
    case LUA_TTABLE: {
        luaL_Buffer b;
        lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
        int list = lua_gettop(L);
        luaL_buffinit(L, &b);
        for (lua_Integer i = 1; i <= n; i++) {
            if (lua_rawgeti(L, list, i) != LUA_TSTRING) return NULL;
            if (i > 1) luaL_addchar(&b, ',');
            luaL_addvalue(&b);
        }
        luaL_pushresult(&b);
        lua_remove(L, list);
        return lua_tostring(L, -1);
    }
    default:
        return NULL;
    }
}

static int apply_lua_section(config *cfg, lua_State *L, const char *section, const char *path,
                             char *err, size_t errlen)
{
    int tbl = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, tbl) != 0) {
        lua_pop(L, 1);
        if (lua_type(L, -1) != LUA_TSTRING) {
            errbuf_set(err, errlen, "%s: config.%s has a key that is not a name", path, section);
            return -1;
        }
        const char *name = lua_tostring(L, -1);
        if (strcmp(section, "kafka") == 0 && strcmp(name, "properties") == 0) continue;
        const setting *s = NULL;
        for (size_t i = 0; i < NSETTINGS && !s; i++)
            if (settings[i].lua_section && strcmp(settings[i].lua_section, section) == 0 &&
                strcmp(settings[i].lua_name, name) == 0)
                s = &settings[i];
        if (!s) {
            errbuf_set(err, errlen, "%s: config.%s.%s is not a known setting (see README)", path,
                       section, name);
            return -1;
        }
        char origin[256];
        snprintf(origin, sizeof origin, "%s: config.%s.%s", path, section, name);
        lua_getfield(L, tbl, name);
        const char *text = lua_setting_text(L);
        if (!text) {
            errbuf_set(err, errlen, "%s must be a string, number or list of strings", origin);
            return -1;
        }
        if (config_set(cfg, s->key, text, origin, err, errlen) != 0) return -1;
        lua_pop(L, 1);
    }
    /* config.kafka.properties = { ["fetch.max.bytes"] = 1048576, ... } */
    if (strcmp(section, "kafka") == 0 && lua_getfield(L, tbl, "properties") == LUA_TTABLE) {
        int props = lua_gettop(L);
        lua_pushnil(L);
        while (lua_next(L, props) != 0) {
            const char *text = lua_type(L, -2) == LUA_TSTRING ? lua_setting_text(L) : NULL;
            if (!text) {
                errbuf_set(err, errlen,
                           "%s: config.kafka.properties must map property names to strings or "
                           "numbers",
                           path);
                return -1;
            }
            config_set_kafka(cfg, lua_tostring(L, -2), text);
            lua_pop(L, 1);
        }
    }
    return 0;
}

int config_apply_lua(config *cfg, lua_State *L, const char *path, char *err, size_t errlen)
{
    static const char *const sections[] = {"kafka", "clickhouse",   "batch",
                                           "lua",   "dead_letters", "metrics"};
    int base = lua_gettop(L);
    int rc = 0;
    int type = lua_getglobal(L, "config");
    if (type == LUA_TNIL) goto done;
    if (type != LUA_TTABLE) {
        errbuf_set(err, errlen, "%s: config must be a table, not a %s", path,
                   lua_typename(L, type));
        rc = -1;
        goto done;
    }
    int tbl = lua_gettop(L);
    lua_pushnil(L);
    while (rc == 0 && lua_next(L, tbl) != 0) {
        lua_pop(L, 1);
        const char *name = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "?";
        size_t i = 0;
        while (i < sizeof sections / sizeof sections[0] && strcmp(sections[i], name) != 0)
            i++;
        if (i == sizeof sections / sizeof sections[0]) {
            errbuf_set(err, errlen,
                       "%s: config.%s is not a known section (expected kafka, clickhouse, batch, "
                       "lua, dead_letters, metrics)",
                       path, name);
            rc = -1;
            break;
        }
        int key = lua_gettop(L);
        if (lua_getfield(L, tbl, name) != LUA_TTABLE) {
            errbuf_set(err, errlen, "%s: config.%s must be a table", path, name);
            rc = -1;
            break;
        }
        rc = apply_lua_section(cfg, L, name, path, err, errlen);
        lua_settop(L, key);
    }
done:
    lua_settop(L, base);
    return rc;
}

/* ---- .env and environment ---- */

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    char *end = s + strlen(s);
    while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\n' || end[-1] == '\r'))
        *--end = '\0';
    return s;
}

/* A .env value: the text after '='. Quoted ('…' or "…"), it is what lies between the quotes, and
 * only a comment may follow; unquoted, it ends at a '#' that follows a space or tab (a comment)
 * and is trimmed. Returns it, or NULL with err (naming where, never the value) for an unclosed
 * quote, text after the closing one, or a quote at the end only. */
static char *env_value(char *raw, const char *where, char *err, size_t errlen)
{
    char *v = trim(raw);
    if (*v == '"' || *v == '\'') {
        const char *kind = *v == '"' ? "double" : "single";
        char *close = strchr(v + 1, *v);
        if (!close) {
            errbuf_set(err, errlen,
                       "%s: the value opens a %s quote that the line never closes (close it at the "
                       "end of the value)",
                       where, kind);
            return NULL;
        }
        char *rest = close + 1;
        rest += strspn(rest, " \t");
        if (*rest && *rest != '#') {
            errbuf_set(err, errlen,
                       "%s: text after the closing %s quote (quote the whole value; a comment "
                       "after it starts with #)",
                       where, kind);
            return NULL;
        }
        *close = '\0';
        return v + 1;
    }
    for (char *p = raw; *p; p++)
        if (*p == '#' && p > raw && (p[-1] == ' ' || p[-1] == '\t')) {
            *p = '\0';
            break;
        }
    v = trim(raw);
    size_t len = strlen(v);
    if (len > 0 && (v[len - 1] == '"' || v[len - 1] == '\'')) {
        errbuf_set(err, errlen,
                   "%s: the value ends with a quote but does not start with one (quote the whole "
                   "value or neither end)",
                   where);
        return NULL;
    }
    return v;
}

/* A name that looks like it holds a secret (not the name of a file that does). */
static bool secret_name(const char *name)
{
    size_t len = strlen(name);
    return strstr(name, "PASSWORD") && !(len > 5 && strcmp(name + len - 5, "_FILE") == 0);
}

int config_apply_env_file(config *cfg, const char *path, bool required, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        if (!required && errno == ENOENT) return 0;
        errbuf_set(err, errlen, "cannot read env file %s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    bool exposed = fstat(fileno(f), &st) == 0 && (st.st_mode & (S_IRGRP | S_IROTH));
    char *line = NULL, *secret = NULL;
    size_t cap = 0;
    ssize_t len;
    int lineno = 0, rc = 0;
    while (rc == 0 && (len = getline(&line, &cap, f)) != -1) {
        lineno++;
        char where[512];
        if (memchr(line, '\0', (size_t)len)) {
            errbuf_set(err, errlen, "%s:%d: a NUL byte (not a text file?)", path, lineno);
            rc = -1;
            break;
        }
        char *s = trim(line);
        if (*s == '\0' || *s == '#') continue;
        if (strncmp(s, "export", 6) == 0 && (s[6] == ' ' || s[6] == '\t')) s = trim(s + 6);
        char *eq = strchr(s, '=');
        if (!eq) {
            errbuf_set(err, errlen, "%s:%d: expected NAME=VALUE", path, lineno);
            rc = -1;
            break;
        }
        *eq = '\0';
        char *name = trim(s);
        snprintf(where, sizeof where, "%s:%d: %s", path, lineno, name);
        char *value = env_value(eq + 1, where, err, errlen);
        if (!value) {
            rc = -1;
            break;
        }
        if (exposed && !secret && value[0] && secret_name(name)) secret = strdup(name);
        if (strncmp(name, "CDCPIPE_", 8) != 0) continue;
        const char *key = config_key_for_env(name);
        if (!key) {
            errbuf_set(err, errlen, "%s is not a known setting (see README)", where);
            rc = -1;
            break;
        }
        rc = config_set(cfg, key, value, where, err, errlen);
    }
    if (line) memset(line, 0, cap); /* it held the values, secrets among them */
    free(line);
    fclose(f);
    if (rc == 0 && secret)
        snprintf(cfg->env_warning, sizeof cfg->env_warning,
                 "%s holds %s but group or others may read it (mode %04o): chmod 600 %s", path,
                 secret, (unsigned)(st.st_mode & 07777), path);
    free(secret);
    return rc;
}

int config_apply_environment(config *cfg, char *err, size_t errlen)
{
    for (size_t i = 0; i < NSETTINGS; i++) {
        const char *value = getenv(settings[i].env);
        if (value && config_set(cfg, settings[i].key, value, settings[i].env, err, errlen) != 0)
            return -1;
    }
    return 0;
}

int config_validate(const config *cfg, char *err, size_t errlen)
{
    if (cfg->topics[0] == '\0') {
        errbuf_set(
            err, errlen,
            "no Kafka topic to consume: give -t TOPIC, CDCPIPE_TOPICS or config.kafka.topics "
            "in pipeline.lua");
        return -1;
    }
    if (cfg->brokers[0] == '\0') {
        errbuf_set(err, errlen, "no Kafka brokers: give -b HOST:PORT or CDCPIPE_BROKERS");
        return -1;
    }
    if (strcmp(cfg->dlq_topic, "none") == 0 && cfg->dlq_file[0] == '\0') {
        errbuf_set(err, errlen,
                   "--dlq-topic none leaves bad events nowhere to go: also give --dlq-file PATH");
        return -1;
    }
    start_position pos;
    if (start_position_parse(cfg->from, &pos, err, errlen) != 0) return -1;
    return 0;
}
