/*
 * cli — command line parsing and configuration assembly (see include/cdcpipe/cli.h).
 */
#include "cdcpipe/cli.h"

#include <ctype.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cdcpipe/log.h"
#include "cdcpipe/xalloc.h"
#include "cdcpipe/errbuf.h"

const char cli_usage[] =
    "Usage: cdcpipe [options] pipeline.lua            stream Debezium events from Kafka into "
    "ClickHouse\n"
    "       cdcpipe check [options] pipeline.lua      load the script, print its DDL\n"
    "       cdcpipe test [options] pipeline.lua FILE|-  run transform over one JSON event per "
    "line\n"
    "       cdcpipe verify [options] pipeline.lua     gaps and overlaps the insert ledger shows\n"
    "       cdcpipe rewind [options] pipeline.lua --to POS  move the group back (unix-ms, -1h,\n"
    "                                                 P:O,...), recorded in the ledger\n"
    "       cdcpipe lag [options] pipeline.lua        per partition: committed offset, end, lag; "
    "the group's members\n"
    "\n"
    "Options (each also CDCPIPE_<NAME> in the environment or .env, and config in "
    "pipeline.lua):\n"
    "  -b, --brokers HOSTS        Kafka bootstrap servers            (CDCPIPE_BROKERS)\n"
    "  -t, --topic TOPIC          topic to consume, or ^regex; repeatable (CDCPIPE_TOPICS, "
    "comma-separated)\n"
    "  -g, --group ID             consumer group                      (CDCPIPE_GROUP)\n"
    "      --clickhouse URL       ClickHouse HTTP URL                 (CDCPIPE_CLICKHOUSE_URL)\n"
    "      --clickhouse-user U    ClickHouse user                     (CDCPIPE_CLICKHOUSE_USER)\n"
    "      --clickhouse-password P  shows in ps: prefer the file or env "
    "(CDCPIPE_CLICKHOUSE_PASSWORD)\n"
    "      --clickhouse-password-file PATH  read the password from PATH "
    "(CDCPIPE_CLICKHOUSE_PASSWORD_FILE)\n"
    "      --clickhouse-ca FILE   CA certificates for an https:// URL (CDCPIPE_CLICKHOUSE_CA)\n"
    "      --clickhouse-insecure  https:// without verifying the certificate (tests only)\n"
    "      --clickhouse-timeout S give up on a ClickHouse request after S s and retry it (120)\n"
    "      --clickhouse-compression M  compress INSERT bodies: none (default), gzip, zstd, lz4\n"
    "                             (CDCPIPE_CLICKHOUSE_COMPRESSION)\n"
    "      --format F             insert as auto (default), rowbinary or json (JSONEachRow) "
    "(CDCPIPE_FORMAT)\n"
    "      --database DB          database for inserts and ddl()      (CDCPIPE_DATABASE)\n"
    "      --table NAME           target of rows transform returns    (CDCPIPE_TABLE)\n"
    "      --ledger TABLE         insert ledger (exactly-once; default cdcpipe_ledger; none: "
    "at-least-once)\n"
    "      --batch-rows N         insert when a batch has N rows      (CDCPIPE_BATCH_ROWS, max "
    "1000000)\n"
    "      --batch-bytes N        ... or N bytes                      (CDCPIPE_BATCH_BYTES)\n"
    "      --batch-ms N           ... or its oldest row is N ms old   (CDCPIPE_BATCH_MS)\n"
    "      --once                 exit when caught up with the end offsets seen at start\n"
    "      --from POS             committed (default), beginning, end, <unix-ms>, -<N>s\n"
    "      --input FORMAT         debezium (default: other records are dead-lettered) or json\n"
    "      --dry-run              print rows (table TAB json) instead of inserting; commit "
    "nothing\n"
    "      --show N               at the end, print the last N rows of each target table\n"
    "  -X NAME=VALUE              librdkafka property (as in kcat); repeatable\n"
    "      --env-file PATH        read settings from PATH instead of ./.env\n"
    "      --lua-memory-mb N      cap the Lua state's memory           (CDCPIPE_LUA_MEMORY_MB)\n"
    "      --lua-instructions N   per-event budget of Lua instructions (CDCPIPE_LUA_INSTRUCTIONS)\n"
    "      --lua-timeout MS       per-event time limit, milliseconds  (CDCPIPE_LUA_TIMEOUT, 1000)\n"
    "      --dlq-topic NAME       dead letters to NAME; default <topic>.dlq; none: no topic\n"
    "      --dlq-file PATH        also append dead letters to PATH (JSON lines)\n"
    "      --dlq-max-bytes N      cut dead-letter values at N bytes (default 900 KiB)\n"
    "      --max-event-bytes N    dead-letter events whose value or key is over N bytes (8 MiB)\n"
    "      --shutdown-timeout S   after SIGINT/SIGTERM or a revoke, retry inserts S more seconds "
    "(10)\n"
    "      --workers N            partition worker threads (CDCPIPE_WORKERS; default: one per "
    "CPU)\n"
    "      --stats-interval S     log the counters every S seconds (60; 0: only at the end)\n"
    "      --metrics ADDR:PORT    serve /metrics, /healthz, /readyz there (CDCPIPE_METRICS; off)\n"
    "      --log-format F         text (default) or json: one JSON object per log line\n"
    "  -v, --verbose              more log lines (debug)\n"
    "  -q, --quiet                fewer log lines (warnings and errors only; -qq: errors)\n"
    "  -h, --help                 this text\n"
    "  -V, --version              print the version\n"
    "\n"
    "Exit status: 0 ok, 1 runtime failure, 2 usage or configuration error.\n";

static void add_setting(cli_args *a, const char *key, const char *value, const char *origin)
{
    cli_setting *s = xrealloc(a->settings, a->nsettings + 1, sizeof *s);
    a->settings = s;
    s = &a->settings[a->nsettings++];
    s->key = key;
    s->value = xstrdup(value);
    size_t n = strnlen(origin, sizeof s->origin - 1); /* a longer flag is cut in messages */
    memcpy(s->origin, origin, n);
    s->origin[n] = '\0';
}

/* -t may repeat: the values join into one comma-separated list. */
static void add_topic(cli_args *a, const char *topic)
{
    for (size_t i = 0; i < a->nsettings; i++) {
        if (strcmp(a->settings[i].key, "topics") == 0) {
            size_t len = strlen(a->settings[i].value) + strlen(topic) + 2;
            char *joined = xmalloc(len);
            snprintf(joined, len, "%s,%s", a->settings[i].value, topic);
            free(a->settings[i].value);
            a->settings[i].value = joined;
            return;
        }
    }
    add_setting(a, "topics", topic, "-t/--topic");
}

enum { OPT_ENV_FILE = 1000, OPT_SETTING, OPT_TO };

/* The option getopt_long refused, for the message: a long option up to its '=', never the value
 * (a misspelled --clickhouse-passwd=S3cret), else the short option's letter. before: optind
 * before the call; a short option refused inside a group (-vZq) leaves optind where it was, so
 * argv[optind - 1] is then an earlier argument, perhaps a password. */
static void refused_option(char *out, size_t len, char **argv, int before)
{
    const char *arg = optind > before ? argv[optind - 1] : NULL;
    if (arg && strncmp(arg, "--", 2) == 0)
        snprintf(out, len, "%.*s", (int)strcspn(arg, "="), arg);
    else if (optopt > 0 && optopt < 128 && isgraph(optopt))
        snprintf(out, len, "-%c", optopt);
    else
        snprintf(out, len, "(an option)");
}

int cli_parse(int argc, char **argv, cli_args *a, char *err, size_t errlen)
{
    static const struct option options[] = {
        {"brokers", required_argument, NULL, 'b'},
        {"topic", required_argument, NULL, 't'},
        {"group", required_argument, NULL, 'g'},
        {"clickhouse", required_argument, NULL, OPT_SETTING},
        {"clickhouse-user", required_argument, NULL, OPT_SETTING},
        {"clickhouse-password", required_argument, NULL, OPT_SETTING},
        {"clickhouse-password-file", required_argument, NULL, OPT_SETTING},
        {"clickhouse-ca", required_argument, NULL, OPT_SETTING},
        {"clickhouse-insecure", no_argument, NULL, OPT_SETTING},
        {"clickhouse-timeout", required_argument, NULL, OPT_SETTING},
        {"clickhouse-compression", required_argument, NULL, OPT_SETTING},
        {"format", required_argument, NULL, OPT_SETTING},
        {"database", required_argument, NULL, OPT_SETTING},
        {"table", required_argument, NULL, OPT_SETTING},
        {"ledger", required_argument, NULL, OPT_SETTING},
        {"to", required_argument, NULL, OPT_TO},
        {"batch-rows", required_argument, NULL, OPT_SETTING},
        {"batch-bytes", required_argument, NULL, OPT_SETTING},
        {"batch-ms", required_argument, NULL, OPT_SETTING},
        {"once", no_argument, NULL, OPT_SETTING},
        {"from", required_argument, NULL, OPT_SETTING},
        {"input", required_argument, NULL, OPT_SETTING},
        {"dry-run", no_argument, NULL, OPT_SETTING},
        {"show", required_argument, NULL, OPT_SETTING},
        {"log-level", required_argument, NULL, OPT_SETTING},
        {"log-format", required_argument, NULL, OPT_SETTING},
        {"metrics", required_argument, NULL, OPT_SETTING},
        {"lua-memory-mb", required_argument, NULL, OPT_SETTING},
        {"lua-instructions", required_argument, NULL, OPT_SETTING},
        {"lua-timeout", required_argument, NULL, OPT_SETTING},
        {"dlq-topic", required_argument, NULL, OPT_SETTING},
        {"dlq-file", required_argument, NULL, OPT_SETTING},
        {"dlq-max-bytes", required_argument, NULL, OPT_SETTING},
        {"max-event-bytes", required_argument, NULL, OPT_SETTING},
        {"shutdown-timeout", required_argument, NULL, OPT_SETTING},
        {"stats-interval", required_argument, NULL, OPT_SETTING},
        {"workers", required_argument, NULL, OPT_SETTING},
        {"env-file", required_argument, NULL, OPT_ENV_FILE},
        {"verbose", no_argument, NULL, 'v'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    memset(a, 0, sizeof *a);
    int first = 1;
    if (argc > 1 && strcmp(argv[1], "check") == 0) {
        a->command = CMD_CHECK;
        first = 2;
    } else if (argc > 1 && strcmp(argv[1], "test") == 0) {
        a->command = CMD_TEST;
        first = 2;
    } else if (argc > 1 && strcmp(argv[1], "verify") == 0) {
        a->command = CMD_VERIFY;
        first = 2;
    } else if (argc > 1 && strcmp(argv[1], "rewind") == 0) {
        a->command = CMD_REWIND;
        first = 2;
    } else if (argc > 1 && strcmp(argv[1], "lag") == 0) {
        a->command = CMD_LAG;
        first = 2;
    }
    int verbosity = 0;
    char origin[64];
    /* The subcommand becomes getopt's argv[0]. optind = 0 makes glibc's getopt start afresh:
     * with optind = 1 it kept a pointer into the previous argv (the rest of the last short
     * option), so a second cli_parse in one process read that memory, freed or not. */
    argc -= first - 1;
    argv += first - 1;
    optind = 0;
    opterr = 0;
    int c, index = -1, before = optind;
    char refused[128];
    while ((c = getopt_long(argc, argv, ":b:t:g:X:vqhV", options, &index)) != -1) {
        switch (c) {
        case 'b':
            add_setting(a, "brokers", optarg, "-b/--brokers");
            break;
        case 't':
            add_topic(a, optarg);
            break;
        case 'g':
            add_setting(a, "group", optarg, "-g/--group");
            break;
        case 'X': {
            if (!strchr(optarg, '=') || optarg[0] == '=') {
                /* the name only: what follows may be the value (-X sasl.password:S3cret) */
                int name =
                    (int)strspn(optarg, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                        "0123456789._-");
                errbuf_set(err, errlen, "-X %.*s%s: expected -X name=value (a librdkafka property)",
                           name, optarg,
                           name == 0      ? "(no name)"
                           : optarg[name] ? "…"
                                          : "");
                return -1;
            }
            char **props = xrealloc(a->kafka_props, a->nkafka + 1, sizeof *props);
            a->kafka_props = props;
            a->kafka_props[a->nkafka++] = optarg;
            break;
        }
        case 'v':
            verbosity++;
            break;
        case 'q':
            verbosity--;
            break;
        case 'h':
            a->help = true;
            return 0;
        case 'V':
            a->version = true;
            return 0;
        case OPT_ENV_FILE:
            a->env_file = optarg;
            break;
        case OPT_TO:
            a->rewind_to = optarg;
            break;
        case OPT_SETTING: {
            const char *name = options[index].name;
            snprintf(origin, sizeof origin, "--%s", name);
            add_setting(a, config_key_for_flag(name), optarg ? optarg : "true", origin);
            break;
        }
        case ':':
            refused_option(refused, sizeof refused, argv, before);
            errbuf_set(err, errlen, "option %s needs a value (see cdcpipe --help)", refused);
            return -1;
        default:
            refused_option(refused, sizeof refused, argv, before);
            /* getopt_long names the option in optopt when it exists but takes no value */
            errbuf_set(err, errlen, "%s %s%s (see cdcpipe --help)",
                       optopt && refused[1] == '-' ? "option" : "unknown option", refused,
                       optopt && refused[1] == '-' ? " takes no value" : "");
            return -1;
        }
        index = -1;
        before = optind;
    }
    if (verbosity != 0)
        add_setting(a, "log_level",
                    verbosity > 0     ? "debug"
                    : verbosity == -1 ? "warn"
                                      : "error",
                    "-v/-q");
    int positional = argc - optind;
    int wanted = a->command == CMD_TEST ? 2 : 1;
    if (positional != wanted) {
        errbuf_set(err, errlen, "%s (see cdcpipe --help)",
                   positional < wanted
                       ? (a->command == CMD_TEST ? "expected a pipeline script and an events file "
                                                   "(or - for stdin)"
                                                 : "expected a pipeline script, e.g. pipeline.lua")
                       : "too many arguments");
        return -1;
    }
    if ((a->command == CMD_REWIND) != (a->rewind_to != NULL)) {
        errbuf_set(err, errlen, "%s (see cdcpipe --help)",
                   a->rewind_to ? "--to is for cdcpipe rewind only"
                                : "cdcpipe rewind needs --to POS (unix-ms, -1h, or P:O,...)");
        return -1;
    }
    a->script_path = argv[optind];
    if (a->command == CMD_TEST) a->test_input = argv[optind + 1];
    return 0;
}

void cli_free(cli_args *a)
{
    for (size_t i = 0; i < a->nsettings; i++)
        free(a->settings[i].value);
    free(a->settings);
    free(a->kafka_props);
    memset(a, 0, sizeof *a);
}

/* Everything above pipeline.lua in precedence: .env, environment, command line. */
static int apply_overrides(const cli_args *a, config *cfg, char *err, size_t errlen)
{
    if (config_apply_env_file(cfg, a->env_file ? a->env_file : ".env", a->env_file != NULL, err,
                              errlen) != 0)
        return -1;
    if (config_apply_environment(cfg, err, errlen) != 0) return -1;
    for (size_t i = 0; i < a->nsettings; i++)
        if (config_set(cfg, a->settings[i].key, a->settings[i].value, a->settings[i].origin, err,
                       errlen) != 0)
            return -1;
    for (size_t i = 0; i < a->nkafka; i++) {
        char *eq = strchr(a->kafka_props[i], '=');
        *eq = '\0';
        config_set_kafka(cfg, a->kafka_props[i], eq + 1);
        *eq = '=';
    }
    log_level level;
    if (log_parse_level(cfg->log_level, &level) != 0) {
        errbuf_set(err, errlen, "log level \"%s\" is not one of error, warn, info, debug",
                   cfg->log_level);
        return -1;
    }
    log_set_level(level);
    log_set_json(strcmp(cfg->log_format, "json") == 0);
    return 0;
}

int cli_configure(const cli_args *a, config *cfg, script **out, char *err, size_t errlen)
{
    *out = NULL;
    /* First pass without the script: log level and the Lua memory cap are needed to load it. */
    config_init(cfg);
    int rc = apply_overrides(a, cfg, err, errlen);
    size_t memory = (size_t)cfg->lua_memory_mb * 1024 * 1024;
    config_free(cfg);
    if (rc != 0) return -1;

    script *s = script_open(a->script_path, memory, err, errlen);
    if (!s) return -1;
    config_init(cfg);
    if (config_apply_lua(cfg, script_lua(s), a->script_path, err, errlen) != 0 ||
        apply_overrides(a, cfg, err, errlen) != 0) {
        script_close(s);
        config_free(cfg);
        return -1;
    }
    script_apply_config(s, cfg);
    if (cfg->env_warning[0]) log_warn("%s", cfg->env_warning);
    *out = s;
    return 0;
}
