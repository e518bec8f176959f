/*
 * script — the user's pipeline.lua in one Lua state (see include/cdcpipe/script.h).
 *
 * Registry references kept for the life of the state: transform, ddl (optional), the traceback
 * handler and the table that collects cdc.emit calls during one event. While transform runs,
 * the schema unit (schema.h) knows the event table and the span of its record's schema, so the
 * schema-aware cdc.* functions work on that event only; nothing of the schema is parsed unless
 * the script asks.
 */
#include "cdcpipe/script.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <librdkafka/rdkafka.h>
#include <lualib.h>

#include "cdcpipe/json_lua.h"
#include "cdcpipe/json_fast.h"
#include "cdcpipe/lua_module.h"
#include "cdcpipe/lua_pool.h"
#include "cdcpipe/log.h"
#include "cdcpipe/lua_patterns.h"
#include "cdcpipe/schema.h"
#include "cdcpipe/xalloc.h"
#include "cdcpipe/errbuf.h"

struct script {
    lua_State *L;
    char *path;
    size_t memory_used;
    size_t memory_limit;
    lua_pool *pool; /* the Lua state's small blocks */
    json_decoder *decoder;
    json_decoder *answers; /* cdc.query's answers (not the event's decoder: its lazy tables live) */
    schema_cache *schemas; /* cdc.schema, cdc.field_type, cdc.auto: the current event's schema */
    int ref_transform;
    int ref_ddl;       /* LUA_NOREF when the script has no ddl() */
    int ref_tombstone; /* tombstone(meta), LUA_NOREF when absent: tombstones are skipped */
    int ref_traceback;
    int ref_emits;           /* array: table name, row, table name, row, ... */
    int ref_meta_keys;       /* array: the meta table's key strings (META_*), the topic's string */
    char *meta_topic;        /* the topic whose string is at META_LAST_TOPIC; NULL: none yet */
    lua_Integer nemits;      /* entries in use in the emits array (2 per row) */
    bool in_event;           /* cdc.emit is only valid inside transform */
    const script_host *host; /* cdc.ddl, cdc.columns; NULL: none */
    bool aborted;            /* the host gave the current event up */
    long instruction_limit;  /* per event; 0: none */
    long instructions_left;
    size_t max_key_bytes;        /* --max-event-bytes for the record key; 0: none */
    bool metering;               /* script_process runs: the hook charges the budget */
    volatile sig_atomic_t spent; /* a SPENT_ code: the event fails whatever the script does */
    bool debezium_only;          /* --input debezium: values must be change events (an "op" code) */
    int64_t source_ts_ms;        /* the last event's source.ts_ms, -1: none */
    script_limit last_limit;     /* the limit the last event ran into */
    /* --lua-timeout: the watchdog thread, started by the first event that has a time limit */
    atomic_long timeout_ms;     /* per event; 0: none */
    atomic_uint_fast64_t event; /* serial number of the event being processed; 0 between events */
    atomic_uint_fast64_t stop;  /* the event the watchdog found past the time limit */
    uint_fast64_t events;       /* events processed: the serial numbers */
    bool watchdog_running;
    bool watchdog_quit;
    pthread_t watchdog;
    pthread_t event_thread; /* the thread that processes events: the one to interrupt */
    pthread_mutex_t watchdog_lock;
    pthread_cond_t watchdog_wake;
};

/* The entries of the ref_meta_keys array: meta's keys, made once, and the last topic. */
enum { META_TOPIC = 1, META_PARTITION, META_OFFSET, META_TIMESTAMP, META_KEY, META_LAST_TOPIC };
static const char *const meta_keys[] = {"topic", "partition", "offset", "timestamp", "key"};

/* ---- the per-event limits ----
 *
 * The count hook is set on the main Lua thread for the life of the state, so every coroutine
 * inherits it (lua_newthread copies the hook), and the script cannot remove it: the debug library
 * is reduced to debug.traceback. During an event it charges the budget with the instructions run
 * since its last call. Once a limit is spent the event is lost whatever the script does: the hook
 * raises again at every instruction (pcall cannot swallow it for long) and script_process fails
 * the event after the call even if the script caught every error and returned rows. */

/* Lua instructions between two calls of the hook: the budget is charged in these steps, so the
 * smallest budget allowed is one step. */
#define HOOK_STEP 1000
_Static_assert(HOOK_STEP <= CONFIG_MIN_LUA_INSTRUCTIONS,
               "the smallest --lua-instructions must be at least one hook step");

enum { SPENT_NONE, SPENT_BUDGET, SPENT_TIME };

/* The error for the limit that was spent. */
static void spent_message(const script *s, char *out, size_t len)
{
    if (s->spent == SPENT_TIME)
        snprintf(out, len, "transform ran past its time limit of %ld ms (--lua-timeout)",
                 atomic_load(&s->timeout_ms));
    else
        snprintf(out, len,
                 "transform used up its budget of %ld Lua instructions (--lua-instructions)",
                 s->instruction_limit);
}

static void budget_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    script *s = *(script **)lua_getextraspace(L);
    int count = lua_gethookcount(L);
    if (s->metering && !s->spent && s->instruction_limit > 0) {
        s->instructions_left -= count;
        if (s->instructions_left <= 0) s->spent = SPENT_BUDGET;
    }
    if (s->metering && s->spent) {
        char msg[160];
        spent_message(s, msg, sizeof msg);
        if (count != 1) lua_sethook(L, budget_hook, LUA_MASKCOUNT, 1);
        luaL_error(L, "%s", msg);
    }
    if (count != HOOK_STEP) lua_sethook(L, budget_hook, LUA_MASKCOUNT, HOOK_STEP);
}

/* string.find/match/gmatch/gsub's check (lua_patterns.h): stops a match once the event's limit is
 * spent, which the watchdog signals while the match runs. */
static int check_spent(lua_State *L)
{
    script *s = *(script **)lua_getextraspace(L);
    if (s->metering && s->spent) {
        char msg[160];
        spent_message(s, msg, sizeof msg);
        luaL_error(L, "%s", msg);
    }
    return 0;
}

/* ---- the time limit: a watchdog thread and a signal ----
 *
 * The event thread only numbers its events (two atomic stores per event, no system call). The
 * watchdog wakes every tenth of the limit (5 to 100 ms) and, when the same event has been
 * running for the whole limit, sends WATCHDOG_SIGNAL to the event thread. The handler, on that
 * thread, checks that this event still runs, marks it spent and sets the count hook to fire at
 * the very next instruction — lua_sethook is meant to be called from a signal handler (lua.c
 * stops a script on Ctrl-C that way). Lua code stops at its next instruction; pattern matching
 * within LUA_PATTERNS_CHECK_STEPS steps (check_spent); other C functions, whose time is linear in
 * input bounded by --max-event-bytes and --lua-memory-mb, when they return. */

#define WATCHDOG_SIGNAL SIGURG /* ignored by default: one arriving late does no harm */

static _Thread_local script *volatile event_script; /* the script running an event here */

static void on_watchdog_signal(int sig)
{
    (void)sig;
    script *s = event_script;
    if (!s) return;
    uint_fast64_t running = atomic_load(&s->event);
    if (running == 0 || running != atomic_load(&s->stop)) return; /* that event is over */
    if (!s->spent) s->spent = SPENT_TIME;
    lua_sethook(s->L, budget_hook, LUA_MASKCOUNT, 1);
}

static void install_watchdog_handler(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_watchdog_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(WATCHDOG_SIGNAL, &sa, NULL);
}

static int64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *watchdog_main(void *arg)
{
    script *s = arg;
    uint_fast64_t seen = 0, signalled = 0;
    int64_t seen_since = 0;
    pthread_mutex_lock(&s->watchdog_lock);
    while (!s->watchdog_quit) {
        long limit = atomic_load(&s->timeout_ms);
        long tick = limit / 10 < 5 ? 5 : limit / 10 > 100 ? 100 : limit / 10;
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_nsec += tick * 1000000L;
        until.tv_sec += until.tv_nsec / 1000000000L;
        until.tv_nsec %= 1000000000L;
        int rc = pthread_cond_timedwait(&s->watchdog_wake, &s->watchdog_lock, &until);
        if (rc != 0 && rc != ETIMEDOUT) break;
        uint_fast64_t running = atomic_load(&s->event);
        int64_t now = monotonic_ms();
        if (running != seen) { /* a new event, or none: the clock starts now */
            seen = running;
            seen_since = now;
        } else if (running != 0 && running != signalled && limit > 0 && now - seen_since >= limit) {
            atomic_store(&s->stop, running);
            signalled = running;
            pthread_kill(s->event_thread, WATCHDOG_SIGNAL);
        }
    }
    pthread_mutex_unlock(&s->watchdog_lock);
    return NULL;
}

/* Starts the watchdog for events processed on the calling thread. Aborts when it cannot (as when
 * memory runs out): events would run without their time limit. */
static void watchdog_start(script *s)
{
    static pthread_once_t handler_once = PTHREAD_ONCE_INIT;
    pthread_once(&handler_once, install_watchdog_handler);
    pthread_condattr_t attr;
    if (pthread_condattr_init(&attr) != 0 ||
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) != 0 ||
        pthread_cond_init(&s->watchdog_wake, &attr) != 0 ||
        pthread_mutex_init(&s->watchdog_lock, NULL) != 0)
        abort();
    pthread_condattr_destroy(&attr);
    s->event_thread = pthread_self();
    /* the watchdog takes no signals: SIGINT, SIGTERM, SIGHUP stay with the other threads */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&s->watchdog, NULL, watchdog_main, s);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        fprintf(stderr, "cdcpipe: cannot start the --lua-timeout watchdog thread: %s\n",
                strerror(rc));
        abort();
    }
    s->watchdog_running = true;
}

static void watchdog_stop(script *s)
{
    if (!s->watchdog_running) return;
    pthread_mutex_lock(&s->watchdog_lock);
    s->watchdog_quit = true;
    pthread_cond_signal(&s->watchdog_wake);
    pthread_mutex_unlock(&s->watchdog_lock);
    pthread_join(s->watchdog, NULL);
    pthread_cond_destroy(&s->watchdog_wake);
    pthread_mutex_destroy(&s->watchdog_lock);
    s->watchdog_running = false;
}

/* xpcall's message handler, wrapped (upvalue 1: the script's handler): once the event's limit is
 * spent the error passes unchanged. The limit's error is raised by the hook, and Lua runs the
 * handler of an error raised by a hook with hooks off: a handler that loops could not be stopped.
 */
static int guarded_handler(lua_State *L)
{
    script *s = *(script **)lua_getextraspace(L);
    if (s->metering && s->spent) return 1;
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, 1);
    return 1;
}

/* xpcall(f, msgh, ...): Lua's (upvalue 1) with msgh wrapped by guarded_handler. */
static int guarded_xpcall(lua_State *L)
{
    int n = lua_gettop(L);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_pushvalue(L, 2);
    lua_pushcclosure(L, guarded_handler, 1);
    lua_replace(L, 2);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, n, LUA_MULTRET);
    return lua_gettop(L);
}

/* Of the debug library only debug.traceback stays. The rest reaches past what Lua code can
 * otherwise touch and breaks what the C code relies on: sethook removes the budget's hook,
 * getregistry/getinfo/getupvalue/getlocal hand out internal tables and C functions, setupvalue,
 * setlocal and setuservalue replace values C code reads back as its own (an io.stderr in place of
 * cdc.decimal's buffers aborted the process), setmetatable changes every string, number or nil. */
static void restrict_debug(lua_State *L)
{
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    lua_getfield(L, -1, LUA_DBLIBNAME);
    lua_createtable(L, 0, 1);
    lua_getfield(L, -2, "traceback");
    lua_setfield(L, -2, "traceback");
    lua_pushvalue(L, -1);
    lua_setfield(L, -4, LUA_DBLIBNAME); /* require "debug" */
    lua_setglobal(L, LUA_DBLIBNAME);
    lua_pop(L, 2);
}

/* load(chunk, name, mode, env) with mode forced to "t": precompiled chunks are not checked by
 * Lua and can crash the VM, and a script that load()s text from an event would let whoever
 * writes to the topic hand it one. Text chunks behave as before. */
static int load_text_only(lua_State *L)
{
    int n = lua_gettop(L) < 3 ? 3 : lua_gettop(L); /* an absent env must stay absent */
    lua_settop(L, n);
    lua_pushliteral(L, "t");
    lua_replace(L, 3);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, n, LUA_MULTRET);
    return lua_gettop(L);
}

void script_set_instruction_limit(script *s, long instructions)
{
    s->instruction_limit = instructions;
}

void script_set_timeout(script *s, long ms)
{
    atomic_store(&s->timeout_ms, ms);
}

/* The watchdog times an event by its number; 0 means none runs (and makes a signal already on its
 * way a no-op: on_watchdog_signal checks the number). A new number starts a new clock. */
void script_pause_timeout(script *s)
{
    atomic_store(&s->event, 0);
}

void script_resume_timeout(script *s)
{
    atomic_store(&s->event, ++s->events);
}

void script_set_debezium_only(script *s, bool on)
{
    s->debezium_only = on;
}

void script_set_max_key_bytes(script *s, size_t bytes)
{
    s->max_key_bytes = bytes;
}

void script_apply_config(script *s, const config *cfg)
{
    script_set_instruction_limit(s, cfg->lua_instructions);
    script_set_max_key_bytes(s, cfg->max_event_bytes > 0 ? (size_t)cfg->max_event_bytes : 0);
    script_set_timeout(s, cfg->lua_timeout_ms);
    script_set_debezium_only(s, strcmp(cfg->input, "debezium") == 0);
}

/* --input debezium: the decoded value at idx must be a change event, i.e. carry one of
 * Debezium's op codes (c u d r t m). Returns 0, or -1 with err saying what the record is
 * instead and which setting accepts it. */
static int check_debezium_event(lua_State *L, int idx, char *err, size_t errlen)
{
    static const char hint[] = "; records of the unwrap SMT (ExtractNewRecordState), heartbeats, "
                               "transaction metadata and other JSON need --input json";
    int type = lua_getfield(L, idx, "op");
    size_t len = 0;
    const char *op = type == LUA_TSTRING ? lua_tolstring(L, -1, &len) : NULL;
    bool ok = op && len == 1 && op[0] && strchr("cudrtm", op[0]);
    if (!ok && op) {
        errbuf_set(err, errlen,
                   "not a Debezium change event: \"op\" is \"%.40s\", not one of c u d r t m%s", op,
                   hint);
    } else if (!ok && type != LUA_TNIL) {
        errbuf_set(err, errlen, "not a Debezium change event: \"op\" is a %s, not a string%s",
                   luaL_typename(L, -1), hint);
    } else if (!ok) {
        char fields[160] = "";
        size_t used = 0;
        int n = 0;
        lua_pushnil(L);
        while (lua_next(L, idx) != 0) {
            lua_pop(L, 1);
            if (lua_type(L, -1) != LUA_TSTRING || used >= sizeof fields - 8) continue;
            int w = snprintf(fields + used, sizeof fields - used, "%s%.30s", n++ ? ", " : "",
                             lua_tostring(L, -1));
            used = w < 0 || (size_t)w >= sizeof fields - used ? sizeof fields : used + (size_t)w;
        }
        errbuf_set(err, errlen, "not a Debezium change event: no \"op\" field (it has %s)%s",
                   n ? fields : "no fields", hint);
    }
    lua_pop(L, 1);
    return ok ? 0 : -1;
}

/* ---- allocator with a cap (the cap itself is enforced by returning NULL) ---- */

static void *script_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    script *s = ud;
    size_t old = ptr ? osize : 0;
    if (nsize == 0) {
        s->memory_used -= old;
        return lua_pool_realloc(s->pool, ptr, osize, 0);
    }
    if (s->memory_limit && nsize > old && s->memory_used + (nsize - old) > s->memory_limit)
        return NULL;
    void *fresh = lua_pool_realloc(s->pool, ptr, osize, nsize);
    if (fresh) s->memory_used = s->memory_used - old + nsize;
    return fresh;
}

/* Message handler: error message plus traceback, as lua.c does. */
static int traceback(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    if (!msg) {
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) return 1;
        msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
    luaL_traceback(L, L, msg, 1);
    return 1;
}

/* cdc.emit(table, row): queue a row for another table; delivered after transform returns. */
static int l_emit(lua_State *L)
{
    script *s = lua_touserdata(L, lua_upvalueindex(1));
    luaL_checkstring(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    if (!s->in_event) return luaL_error(L, "cdc.emit can only be called while transform runs");
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->ref_emits);
    lua_pushvalue(L, 1);
    lua_rawseti(L, -2, ++s->nemits);
    lua_pushvalue(L, 2);
    lua_rawseti(L, -2, ++s->nemits);
    return 0;
}

void script_set_host(script *s, const script_host *host)
{
    s->host = host;
}

/* Runs a host call with the event's clock stopped; a host that gives the event up makes every
 * later host call of the event give it up too, whatever the script catches. */
static int host_outcome(lua_State *L, script *s, script_host_result r, const char *what,
                        const char *err)
{
    if (r == SCRIPT_HOST_OK) return 0;
    if (r == SCRIPT_HOST_ABORT) s->aborted = true;
    if (s->aborted)
        return luaL_error(L, "%s: the event was given up (it is consumed again, or the run stops)",
                          what);
    return luaL_error(L, "%s: %s", what, err);
}

/* cdc.ddl(sql): one statement, run before any row of this event or a later one is inserted. */
static int l_ddl(lua_State *L)
{
    script *s = lua_touserdata(L, lua_upvalueindex(1));
    const char *sql = luaL_checkstring(L, 1);
    if (!s->in_event) return luaL_error(L, "cdc.ddl can only be called while transform runs");
    if (s->aborted) return host_outcome(L, s, SCRIPT_HOST_ABORT, "cdc.ddl", "");
    if (!s->host || !s->host->ddl) {
        log_info("cdc.ddl (not run: no ClickHouse in this run): %s", sql);
        lua_pushboolean(L, 1);
        return 1;
    }
    char err[1024] = "";
    script_pause_timeout(s);
    script_host_result r = s->host->ddl(s->host->ud, sql, err, sizeof err);
    script_resume_timeout(s);
    host_outcome(L, s, r, "cdc.ddl", err);
    lua_pushboolean(L, 1);
    return 1;
}

/* cdc.columns(table): {name = type} of the target table, or nil when it does not exist. */
static int l_columns(lua_State *L)
{
    script *s = lua_touserdata(L, lua_upvalueindex(1));
    const char *table = luaL_checkstring(L, 1);
    if (!s->in_event) return luaL_error(L, "cdc.columns can only be called while transform runs");
    if (s->aborted) return host_outcome(L, s, SCRIPT_HOST_ABORT, "cdc.columns", "");
    if (!s->host || !s->host->columns) {
        lua_pushnil(L);
        return 1;
    }
    char err[1024] = "";
    int top = lua_gettop(L);
    script_pause_timeout(s);
    script_host_result r = s->host->columns(s->host->ud, table, L, err, sizeof err);
    script_resume_timeout(s);
    if (r != SCRIPT_HOST_OK) lua_settop(L, top);
    host_outcome(L, s, r, "cdc.columns", err);
    CDC_ASSERT(lua_gettop(L) == top + 1);
    return 1;
}

/* cdc.query(sql): the rows of a SELECT run at this event's place in the stream (every row of
 * earlier events inserted first), as a sequence of {column = value} tables decoded from
 * JSONEachRow; nil without ClickHouse (a dry run). */
static int l_query(lua_State *L)
{
    script *s = lua_touserdata(L, lua_upvalueindex(1));
    const char *sql = luaL_checkstring(L, 1);
    if (!s->in_event) return luaL_error(L, "cdc.query can only be called while transform runs");
    if (s->aborted) return host_outcome(L, s, SCRIPT_HOST_ABORT, "cdc.query", "");
    if (!s->host || !s->host->query) {
        lua_pushnil(L);
        return 1;
    }
    char err[1024] = "";
    strbuf out = {0};
    script_pause_timeout(s);
    script_host_result r = s->host->query(s->host->ud, sql, &out, err, sizeof err);
    script_resume_timeout(s);
    if (r == SCRIPT_HOST_OK) lua_pushlstring(L, out.data ? out.data : "", out.len);
    strbuf_free(&out); /* before anything below may raise */
    host_outcome(L, s, r, "cdc.query", err);
    size_t len;
    const char *text = lua_tolstring(L, -1, &len), *end = text + len;
    lua_newtable(L);
    lua_Integer n = 0;
    for (const char *line = text; line < end;) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        size_t linelen = nl ? (size_t)(nl - line) : (size_t)(end - line);
        if (linelen > 0) {
            if (json_decoder_push(s->answers, L, line, linelen, JSON_OBJECT_ONLY, err,
                                  sizeof err) != 0)
                return luaL_error(L, "cdc.query: row %d of the answer to \"%.200s\": %s",
                                  (int)n + 1, sql, err);
            lua_rawseti(L, -2, ++n);
        }
        line += linelen + 1;
    }
    return 1;
}

/* cdc.clickhouse_version(): the server's version text, or nil. */
static int l_clickhouse_version(lua_State *L)
{
    script *s = lua_touserdata(L, lua_upvalueindex(1));
    const char *v =
        s->host && s->host->clickhouse_version ? s->host->clickhouse_version(s->host->ud) : NULL;
    if (v)
        lua_pushstring(L, v);
    else
        lua_pushnil(L);
    return 1;
}

/* src/lua/mirror.lua, built in (CMakeLists.txt generates the array) */
extern const unsigned char cdcpipe_mirror_lua[];
extern const size_t cdcpipe_mirror_lua_len;

/* package.preload["cdcpipe.mirror"] */
static int open_mirror(lua_State *L)
{
    if (luaL_loadbufferx(L, (const char *)cdcpipe_mirror_lua, cdcpipe_mirror_lua_len,
                         "=cdcpipe.mirror", "t") != LUA_OK)
        return lua_error(L);
    lua_call(L, 0, 1);
    return 1;
}

/* package.preload.cdcpipe */
static int open_cdcpipe(lua_State *L)
{
    script *s = lua_touserdata(L, lua_upvalueindex(1));
    lua_module_push(L);
    lua_pushlightuserdata(L, s);
    lua_pushcclosure(L, l_emit, 1);
    lua_setfield(L, -2, "emit");
    lua_pushlightuserdata(L, s);
    lua_pushcclosure(L, l_ddl, 1);
    lua_setfield(L, -2, "ddl");
    lua_pushlightuserdata(L, s);
    lua_pushcclosure(L, l_columns, 1);
    lua_setfield(L, -2, "columns");
    lua_pushlightuserdata(L, s);
    lua_pushcclosure(L, l_clickhouse_version, 1);
    lua_setfield(L, -2, "clickhouse_version");
    lua_pushlightuserdata(L, s);
    lua_pushcclosure(L, l_query, 1);
    lua_setfield(L, -2, "query");
    schema_add_functions(L, s->schemas);
    return 1;
}

/* Flattens a traceback onto one line so a log line stays one line. */
static void one_line(char *s)
{
    for (char *p = s; *p; p++)
        if (*p == '\n' || *p == '\t') *p = *p == '\n' ? '|' : ' ';
}

/* Keeps only the absolute templates of package[field] (Lua's defaults and LUA_PATH/LUA_CPATH):
 * "./?.lua", "./?.so" and any other relative one would load a module file from whatever
 * directory cdcpipe was started in before the installed one. */
static void drop_relative_templates(lua_State *L, int package, const char *field)
{
    luaL_Buffer b;
    lua_getfield(L, package, field);
    const char *p = lua_tostring(L, -1);
    bool first = true;
    luaL_buffinit(L, &b);
    while (p && *p) {
        size_t len = strcspn(p, ";");
        if (len > 0 && p[0] == '/') {
            if (!first) luaL_addchar(&b, ';');
            luaL_addlstring(&b, p, len);
            first = false;
        }
        p += len + (p[len] == ';');
    }
    luaL_pushresult(&b);
    lua_setfield(L, package, field);
    lua_pop(L, 1);
}

/* Looks up the optional global function `name`: *ref is its registry reference, or LUA_NOREF
 * when the script does not define it. Returns 0, or -1 with err when it is something else. */
static int optional_function(script *s, const char *name, const char *what, int *ref, char *err,
                             size_t errlen)
{
    lua_State *L = s->L;
    int type = lua_getglobal(L, name);
    if (type == LUA_TFUNCTION) {
        *ref = luaL_ref(L, LUA_REGISTRYINDEX);
        return 0;
    }
    lua_pop(L, 1);
    *ref = LUA_NOREF;
    if (type == LUA_TNIL) return 0;
    errbuf_set(err, errlen, "%s: %s must be a function %s, found a %s", s->path, name, what,
               lua_typename(L, type));
    return -1;
}

script *script_open(const char *path, size_t memory_limit, char *err, size_t errlen)
{
    script *s = xcalloc(1, sizeof *s);
    s->memory_limit = memory_limit;
    atomic_init(&s->timeout_ms, 0);
    atomic_init(&s->event, 0);
    atomic_init(&s->stop, 0);
    s->path = xstrdup(path);
    s->decoder = json_decoder_new();
    s->answers = json_decoder_new();
    s->schemas = schema_cache_new();
    s->pool = lua_pool_new();
    s->L = s->pool ? lua_newstate(script_alloc, s) : NULL;
    if (!s->decoder || !s->answers || !s->schemas || !s->L) {
        errbuf_set(err, errlen, "out of memory creating the Lua state");
        script_close(s);
        return NULL;
    }
    *(script **)lua_getextraspace(s->L) = s; /* for budget_hook; copied into every coroutine */
    lua_State *L = s->L;
    luaL_openlibs(L);
    /* a collection cycle starts when the heap has grown to 4x what the last one kept (Lua's
     * default: 2x): per event the collector then works half as often, and the heap, small
     * next to the cap, may be a few hundred KB larger (callgrind: -1,900 instructions an
     * event of the default pipeline). Not the generational mode: Lua 5.4.4, Debian 12's, has a
     * known bug in it after full collections. */
    lua_gc(L, LUA_GCINC, 400, 0, 0);
    json_lazy_install(L); /* next, rawget, ... see the event's lazy tables as plain ones */
    restrict_debug(L);
    lua_getglobal(L, "load");
    lua_pushcclosure(L, load_text_only, 1);
    lua_setglobal(L, "load");
    lua_getglobal(L, "xpcall");
    lua_pushcclosure(L, guarded_xpcall, 1);
    lua_setglobal(L, "xpcall");
    lua_sethook(L, budget_hook, LUA_MASKCOUNT, HOOK_STEP);
    lua_patterns_install(L, check_spent);

    lua_pushcfunction(L, traceback);
    s->ref_traceback = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_newtable(L);
    s->ref_emits = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_createtable(L, META_LAST_TOPIC, 0);
    for (int i = 0; i < (int)(sizeof meta_keys / sizeof meta_keys[0]); i++) {
        lua_pushstring(L, meta_keys[i]);
        lua_rawseti(L, -2, i + 1);
    }
    lua_pushboolean(L, 0);
    lua_rawseti(L, -2, META_LAST_TOPIC); /* in the array part from the start */
    s->ref_meta_keys = luaL_ref(L, LUA_REGISTRYINDEX);

    /* require "cdcpipe" */
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
    lua_pushlightuserdata(L, s);
    lua_pushcclosure(L, open_cdcpipe, 1);
    lua_setfield(L, -2, "cdcpipe");
    lua_pushcfunction(L, open_mirror);
    lua_setfield(L, -2, "cdcpipe.mirror");
    lua_pop(L, 1);

    /* Modules next to pipeline.lua can be required; none from the working directory. */
    const char *slash = strrchr(path, '/');
    lua_getglobal(L, "package");
    drop_relative_templates(L, lua_gettop(L), "path");
    drop_relative_templates(L, lua_gettop(L), "cpath");
    if (slash)
        lua_pushlstring(L, path, (size_t)(slash - path));
    else
        lua_pushliteral(L, ".");
    lua_pushliteral(L, "/?.lua;");
    lua_getfield(L, -3, "path");
    lua_concat(L, 3);
    lua_setfield(L, -2, "path");
    lua_pop(L, 1);

    lua_rawgeti(L, LUA_REGISTRYINDEX, s->ref_traceback);
    int rc = luaL_loadfilex(L, path, "t");
    if (rc == LUA_OK) rc = lua_pcall(L, 0, 0, -2);
    if (rc != LUA_OK) {
        const char *msg = lua_tostring(L, -1);
        if (rc == LUA_ERRFILE)
            errbuf_set(err, errlen, "%s (check the pipeline script path)", msg ? msg : path);
        else
            errbuf_set(err, errlen, "%s", msg ? msg : "unknown Lua error");
        one_line(err);
        script_close(s);
        return NULL;
    }
    lua_pop(L, 1);

    if (lua_getglobal(L, "transform") != LUA_TFUNCTION) {
        errbuf_set(err, errlen,
                   "%s does not define a global function transform(event, meta) (found a %s)", path,
                   luaL_typename(L, -1));
        script_close(s);
        return NULL;
    }
    s->ref_transform = luaL_ref(L, LUA_REGISTRYINDEX);
    if (optional_function(s, "ddl", "returning SQL", &s->ref_ddl, err, errlen) != 0 ||
        optional_function(s, "tombstone", "(meta) returning rows", &s->ref_tombstone, err,
                          errlen) != 0) {
        script_close(s);
        return NULL;
    }
    return s;
}

void script_close(script *s)
{
    if (!s) return;
    watchdog_stop(s);
    if (s->L) lua_close(s->L);
    lua_pool_free(s->pool);        /* after lua_close: it held the state's blocks */
    schema_cache_free(s->schemas); /* after lua_close: its tables live in that state */
    json_decoder_free(s->decoder);
    json_decoder_free(s->answers);
    free(s->meta_topic);
    free(s->path);
    free(s);
}

lua_State *script_lua(script *s)
{
    return s->L;
}

const char *script_path(const script *s)
{
    return s->path;
}

int script_ddl(script *s, char ***stmts, char *err, size_t errlen)
{
    lua_State *L = s->L;
    int base = lua_gettop(L);
    *stmts = xcalloc(1, sizeof(char *));
    if (s->ref_ddl == LUA_NOREF) return 0;
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->ref_traceback);
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->ref_ddl);
    if (lua_pcall(L, 0, 1, base + 1) != LUA_OK) {
        errbuf_set(err, errlen, "%s: ddl() failed: %s", s->path, lua_tostring(L, -1));
        one_line(err);
        lua_settop(L, base);
        return -1;
    }
    /* stack: traceback result */
    size_t n = 0;
    if (lua_type(L, -1) == LUA_TSTRING) {
        *stmts = xrealloc(*stmts, 2, sizeof(char *));
        (*stmts)[n++] = xstrdup(lua_tostring(L, -1));
    } else if (lua_type(L, -1) == LUA_TTABLE) {
        lua_Integer count = (lua_Integer)lua_rawlen(L, -1);
        *stmts = xrealloc(*stmts, (size_t)count + 1, sizeof(char *));
        for (lua_Integer i = 1; i <= count; i++) {
            if (lua_rawgeti(L, -1, i) != LUA_TSTRING) {
                errbuf_set(err, errlen,
                           "%s: ddl() returned a list whose item %lld is a %s, not SQL", s->path,
                           (long long)i, luaL_typename(L, -1));
                (*stmts)[n] = NULL;
                lua_settop(L, base);
                return -1;
            }
            (*stmts)[n++] = xstrdup(lua_tostring(L, -1));
            lua_pop(L, 1);
        }
    } else if (!lua_isnil(L, -1)) {
        errbuf_set(err, errlen, "%s: ddl() must return a SQL string or a list of them, not a %s",
                   s->path, luaL_typename(L, -1));
        lua_settop(L, base);
        return -1;
    }
    (*stmts)[n] = NULL;
    lua_settop(L, base);
    return 0;
}

void script_free_ddl(char **stmts)
{
    if (!stmts) return;
    for (char **p = stmts; *p; p++)
        free(*p);
    free(stmts);
}

/* ---- per event ---- */

typedef struct {
    script *s;
    const script_event *ev;
    const char *default_table;
    script_row_fn on_row;
    void *ud;
    size_t rows;
    script_result result;
    char *err;
    size_t errlen;
    bool null_value; /* the value is JSON text null: a tombstone */
} event_call;

/* Delivers the row at idx; on failure records the error. Returns 0 or -1. */
static int deliver(event_call *c, lua_State *L, const char *table, int idx)
{
    if (lua_type(L, idx) != LUA_TTABLE) {
        snprintf(c->err, c->errlen, "transform produced a row for %s that is a %s, not a table",
                 table, luaL_typename(L, idx));
        c->result = SCRIPT_LUA_ERROR;
        return -1;
    }
    if (c->on_row(c->ud, table, L, idx, c->err, c->errlen) != 0) {
        c->result = SCRIPT_LUA_ERROR;
        return -1;
    }
    c->rows++;
    return 0;
}

/* Pushes the key: decoded JSON when it parses, the raw bytes otherwise, nil when absent.
 * Returns 0, or -1 with the event's error set when the key is larger than --max-event-bytes (it
 * is not decoded then). */
static int push_key(event_call *c, lua_State *L)
{
    char ignored[256];
    if (!c->ev->key) {
        lua_pushnil(L);
        return 0;
    }
    if (c->s->max_key_bytes && c->ev->key_len > c->s->max_key_bytes) {
        snprintf(c->err, c->errlen,
                 "key of %zu bytes is larger than --max-event-bytes %zu (the limit applies to the "
                 "key and to the value)",
                 c->ev->key_len, c->s->max_key_bytes);
        c->result = SCRIPT_DECODE_ERROR;
        return -1;
    }
    if (json_decoder_push(c->s->decoder, L, c->ev->key, c->ev->key_len, JSON_UNWRAP_ENVELOPE,
                          ignored, sizeof ignored) != 0)
        lua_pushlstring(L, c->ev->key, c->ev->key_len);
    return 0;
}

/* Pushes meta.headers: header name → value string (false for a header without a value; the
 * last of repeated names), or nothing and returns false when the record has no headers. */
static bool push_headers(lua_State *L, rd_kafka_headers_t *hdrs)
{
    const char *name;
    const void *value;
    size_t size;
    if (!hdrs || rd_kafka_header_cnt(hdrs) == 0) return false;
    lua_createtable(L, 0, (int)rd_kafka_header_cnt(hdrs));
    for (size_t i = 0; rd_kafka_header_get_all(hdrs, i, &name, &value, &size) == 0; i++) {
        if (value)
            lua_pushlstring(L, value, size);
        else
            lua_pushboolean(L, 0);
        lua_setfield(L, -2, name);
    }
    return true;
}

/* event.source.ts_ms of the event at idx just decoded by d, or -1: what the decoder found while
 * it skipped a lazy source object, else read raw from the table (no metamethod runs). */
static int64_t source_ts_ms(lua_State *L, int idx, const json_decoder *d)
{
    int64_t ts;
    int state = json_decoder_source_ts_ms(d, &ts);
    if (state == JSON_SOURCE_TS_FOUND) return ts;
    ts = -1;
    lua_pushliteral(L, "source");
    if (lua_rawget(L, idx) == LUA_TTABLE) {
        if (state == JSON_SOURCE_TS_BUILD) json_lazy_fill(L, -1);
        lua_pushliteral(L, "ts_ms");
        if (lua_rawget(L, -2) == LUA_TNUMBER && lua_isinteger(L, -1)) ts = lua_tointeger(L, -1);
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    return ts;
}

/* True when a value is JSON text `null` (whitespace around it allowed): what JsonConverter writes
 * without schemas for a record whose value is null but whose value schema is not, as the unwrap
 * SMT makes of a delete with delete.handling.mode=none or delete.tombstone.handling.mode=tombstone
 * (docs/debezium-format.md §7). Not Kafka-null, but a tombstone all the same. */
static bool is_json_null(const char *v, size_t len)
{
    size_t i = 0;
    static const char space[] = " \t\n\v\f\r"; /* what the JSON parser (yajl) skips */
    while (i < len && v[i] && strchr(space, v[i]))
        i++;
    if (len - i < 4 || memcmp(v + i, "null", 4) != 0) return false;
    for (i += 4; i < len; i++)
        if (!v[i] || !strchr(space, v[i])) return false;
    return true;
}

/* The same record with schemas: {"schema":{...},"payload":null}, which the envelope decoder
 * refuses (its payload is not an object). Asked only then: decoded again without unwrapping,
 * the null member is left out, so it is the one key "schema", an object; the text must name
 * "payload" (an envelope without it stays an error). Leaves the stack as it was. */
static bool is_null_envelope(script *s, lua_State *L, const script_event *ev)
{
    char ignored[64];
    static const char member[] = "\"payload\"";
    bool named = false;
    for (size_t i = 0; !named && i + sizeof member - 1 <= ev->value_len; i++)
        named = memcmp(ev->value + i, member, sizeof member - 1) == 0;
    if (!named || json_decoder_push(s->decoder, L, ev->value, ev->value_len, JSON_OBJECT_ONLY,
                                    ignored, sizeof ignored) != 0)
        return false;
    const int t = lua_gettop(L);
    bool only_schema = false;
    lua_pushnil(L);
    if (lua_next(L, t) != 0) {
        only_schema = lua_type(L, -2) == LUA_TSTRING &&
                      strcmp(lua_tostring(L, -2), "schema") == 0 && lua_type(L, -1) == LUA_TTABLE;
        lua_pop(L, 1);
        if (lua_next(L, t) != 0) only_schema = false; /* another member */
    }
    lua_settop(L, t - 1);
    return only_schema;
}

/* Runs inside lua_pcall: decode, transform, deliver. Lua errors raised here reach the traceback
 * handler; everything else is recorded in the event_call. */
static int process_protected(lua_State *L)
{
    event_call *c = lua_touserdata(L, 1);
    script *s = c->s;
    const script_event *ev = c->ev;
    lua_settop(L, 0);

    /* 1: event (nil for a tombstone: then tombstone(meta) runs instead of transform) */
    const char *schema = NULL; /* in ev->value; the key's decoding replaces the decoder's span */
    size_t schema_len = 0;
    bool tombstone = !ev->value || c->null_value;
    if (tombstone) {
        lua_pushnil(L);
    } else if (json_decoder_push(s->decoder, L, ev->value, ev->value_len,
                                 JSON_UNWRAP_ENVELOPE | JSON_OBJECT_ONLY | JSON_LAZY, c->err,
                                 c->errlen) != 0) {
        lua_settop(L, 0);
        if (!is_null_envelope(s, L, ev)) {
            c->result = SCRIPT_DECODE_ERROR;
            return 0;
        }
        c->err[0] = '\0';
        if (s->ref_tombstone == LUA_NOREF) {
            c->result = SCRIPT_TOMBSTONE;
            return 0;
        }
        tombstone = true;
        lua_pushnil(L);
    } else {
        json_decoder_schema_span(s->decoder, &schema, &schema_len);
    }
    /* the decoder guarantees an object: the value itself or the envelope's payload */
    if (!tombstone && s->debezium_only && check_debezium_event(L, 1, c->err, c->errlen) != 0) {
        c->result = SCRIPT_DECODE_ERROR;
        return 0;
    }
    if (!tombstone) s->source_ts_ms = source_ts_ms(L, 1, s->decoder);
    /* 2: meta; its keys are strings made once (3 while it is built), the topic's string is
     * made again only when the topic changes */
    lua_createtable(L, 0,
                    3 + (ev->timestamp_ms >= 0) + (ev->key != NULL) +
                        (ev->headers && rd_kafka_header_cnt(ev->headers) > 0));
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->ref_meta_keys);
    const int keys = 3;
    lua_rawgeti(L, keys, META_TOPIC);
    if (s->meta_topic && strcmp(s->meta_topic, ev->topic) == 0) {
        lua_rawgeti(L, keys, META_LAST_TOPIC);
    } else {
        lua_pushstring(L, ev->topic);
        lua_pushvalue(L, -1);
        lua_rawseti(L, keys, META_LAST_TOPIC);
        free(s->meta_topic);
        s->meta_topic = xstrdup(ev->topic);
    }
    lua_rawset(L, 2);
    lua_rawgeti(L, keys, META_PARTITION);
    lua_pushinteger(L, ev->partition);
    lua_rawset(L, 2);
    lua_rawgeti(L, keys, META_OFFSET);
    lua_pushinteger(L, ev->offset);
    lua_rawset(L, 2);
    if (ev->timestamp_ms >= 0) {
        lua_rawgeti(L, keys, META_TIMESTAMP);
        lua_pushinteger(L, ev->timestamp_ms);
        lua_rawset(L, 2);
    }
    lua_rawgeti(L, keys, META_KEY);
    if (push_key(c, L) != 0) return 0;
    if (lua_isnil(L, -1))
        lua_pop(L, 2); /* no key: meta.key is nil as it is */
    else
        lua_rawset(L, 2);
    lua_settop(L, 2);
    if (push_headers(L, ev->headers)) lua_setfield(L, 2, "headers");

    /* 3: result of transform(event, meta), or of tombstone(meta) */
    c->result = SCRIPT_LUA_ERROR; /* if transform raises */
    s->in_event = true;
    if (!tombstone) {
        schema_begin_event(s->schemas, lua_topointer(L, 1), schema, schema_len);
        lua_rawgeti(L, LUA_REGISTRYINDEX, s->ref_transform);
        lua_insert(L, 1);
        lua_call(L, 2, 1);
    } else {
        lua_remove(L, 1);
        lua_rawgeti(L, LUA_REGISTRYINDEX, s->ref_tombstone);
        lua_insert(L, 1);
        lua_call(L, 1, 1);
    }
    s->in_event = false;
    schema_end_event(s->schemas);
    if (s->aborted) return 0; /* no row of a given-up event is delivered */

    int type = lua_type(L, 1);
    if (type == LUA_TTABLE) {
        json_lazy_fill(L, 1); /* transform returned (part of) the event */
        lua_rawgeti(L, 1, 1);
        bool list = lua_type(L, -1) == LUA_TTABLE;
        lua_pop(L, 1);
        lua_pushnil(L);
        if (lua_next(L, 1) != 0)
            lua_pop(L, 2);
        else
            list = true; /* {} is an empty list of rows, not a row of defaults */
        if (!list) {
            if (deliver(c, L, c->default_table, 1) != 0) return 0;
        } else {
            lua_Integer n = (lua_Integer)lua_rawlen(L, 1);
            for (lua_Integer i = 1; i <= n; i++) {
                lua_rawgeti(L, 1, i);
                if (deliver(c, L, c->default_table, lua_gettop(L)) != 0) return 0;
                lua_pop(L, 1);
            }
        }
    } else if (type != LUA_TNIL && !(type == LUA_TBOOLEAN && !lua_toboolean(L, 1))) {
        snprintf(c->err, c->errlen,
                 "%s must return a row table, a list of row tables, nil or false; it returned a %s",
                 tombstone ? "tombstone" : "transform", luaL_typename(L, 1));
        return 0;
    }

    /* rows queued with cdc.emit */
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->ref_emits);
    int emits = lua_gettop(L);
    for (lua_Integer i = 1; i < s->nemits; i += 2) {
        lua_rawgeti(L, emits, i);
        lua_rawgeti(L, emits, i + 1);
        if (deliver(c, L, lua_tostring(L, -2), lua_gettop(L)) != 0) return 0;
        lua_pop(L, 2);
    }
    c->result = c->rows ? SCRIPT_ROWS : SCRIPT_FILTERED;
    return 0;
}

/* Drops the rows queued by cdc.emit so they can be collected. */
static void clear_emits(script *s)
{
    if (s->nemits == 0) return;
    lua_State *L = s->L;
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->ref_emits);
    for (lua_Integer i = 1; i <= s->nemits; i++) {
        lua_pushnil(L);
        lua_rawseti(L, -2, i);
    }
    lua_pop(L, 1);
    s->nemits = 0;
}

script_result script_process(script *s, const script_event *ev, const char *default_table,
                             script_row_fn on_row, void *ud, size_t *rows, char *err, size_t errlen)
{
    *rows = 0;
    err[0] = '\0';
    s->source_ts_ms = -1;
    s->last_limit = SCRIPT_LIMIT_NONE;
    const bool null_value = ev->value && is_json_null(ev->value, ev->value_len);
    if ((!ev->value || null_value) && s->ref_tombstone == LUA_NOREF) return SCRIPT_TOMBSTONE;
    lua_State *L = s->L;
    int base = lua_gettop(L);
    event_call c = {s, ev, default_table, on_row, ud, 0, SCRIPT_LUA_ERROR, err, errlen, null_value};
    err[0] = '\0';
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->ref_traceback);
    lua_pushcfunction(L, process_protected);
    lua_pushlightuserdata(L, &c);
    s->instructions_left = s->instruction_limit;
    s->spent = SPENT_NONE;
    s->aborted = false;
    if (lua_gethookcount(L) != HOOK_STEP) lua_sethook(L, budget_hook, LUA_MASKCOUNT, HOOK_STEP);
    s->metering = true;
    if (atomic_load(&s->timeout_ms) > 0 && !s->watchdog_running) watchdog_start(s);
    event_script = s;
    atomic_store(&s->event, ++s->events);
    int rc = lua_pcall(L, 1, 0, base + 1);
    CDC_ASSERT(lua_gettop(L) == base + 1 + (rc != LUA_OK)); /* traceback [+ error] */
    atomic_store(&s->event, 0);
    event_script = NULL;
    s->metering = false;
    s->in_event = false;
    schema_end_event(s->schemas);
    if (s->spent) {
        /* the hook's error with its traceback, unless the script caught it and went on */
        char limit[160];
        spent_message(s, limit, sizeof limit);
        const char *msg = rc != LUA_OK ? lua_tostring(L, -1) : NULL;
        if (msg && strstr(msg, limit))
            errbuf_set(err, errlen, "%s", msg);
        else
            errbuf_set(err, errlen, "%s; the script caught the error and went on, the event fails",
                       limit);
        one_line(err);
        c.result = SCRIPT_LUA_ERROR;
        s->last_limit = s->spent == SPENT_TIME ? SCRIPT_LIMIT_TIME : SCRIPT_LIMIT_INSTRUCTIONS;
    } else if (rc == LUA_ERRMEM) {
        s->last_limit = SCRIPT_LIMIT_MEMORY;
        errbuf_set(err, errlen,
                   "out of memory while decoding or transforming the event: the Lua state may use "
                   "%zu MiB (--lua-memory-mb)",
                   s->memory_limit >> 20);
        c.result = SCRIPT_LUA_ERROR;
    } else if (rc != LUA_OK) {
        errbuf_set(err, errlen, "%s", lua_tostring(L, -1) ? lua_tostring(L, -1) : "Lua error");
        one_line(err);
    }
    if (s->aborted) { /* whatever the script made of it: nothing of the event counts */
        errbuf_set(err, errlen, "the event was given up by cdc.ddl/cdc.columns");
        c.result = SCRIPT_ABORTED;
    }
    lua_settop(L, base);
    clear_emits(s);
    if (rc == LUA_ERRMEM) lua_gc(L, LUA_GCCOLLECT); /* give the next event the whole cap */
    *rows = c.rows;
    return c.result;
}

int64_t script_source_ts_ms(const script *s)
{
    return s->source_ts_ms;
}

script_limit script_last_limit(const script *s)
{
    return s->last_limit;
}
