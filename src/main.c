/*
 * cdcpipe — stream Debezium change events from Kafka into ClickHouse, per-event logic in Lua.
 *
 * main only dispatches: parse the command line, assemble the configuration, run the command.
 * Exit status: 0 ok, 1 runtime failure, 2 usage or configuration error.
 */
#include <stdio.h>
#include <string.h>

#include <curl/curl.h>

#include "cdcpipe/cli.h"
#include "cdcpipe/commands.h"
#include "cdcpipe/config.h"
#include "cdcpipe/lag.h"
#include "cdcpipe/log.h"
#include "cdcpipe/metrics_http.h"
#include "cdcpipe/pipeline.h"
#include "cdcpipe/script.h"
#include "cdcpipe/signals.h"
#include "cdcpipe/verify.h"

int main(int argc, char **argv)
{
    char err[2048];
    cli_args args;
    if (cli_parse(argc, argv, &args, err, sizeof err) != 0) {
        fprintf(stderr, "cdcpipe: %s\n", err);
        cli_free(&args);
        return 2;
    }
    if (args.help || args.version) {
        fputs(args.help ? cli_usage : "cdcpipe " CDCPIPE_VERSION "\n", stdout);
        cli_free(&args);
        return 0;
    }
    config cfg;
    script *s;
    if (cli_configure(&args, &cfg, &s, err, sizeof err) != 0) {
        fprintf(stderr, "cdcpipe: %s\n", err);
        cli_free(&args);
        return 2;
    }

    int rc;
    if (args.command == CMD_CHECK) {
        rc = command_check(&cfg, s, stdout);
    } else if (args.command == CMD_TEST) {
        FILE *in = strcmp(args.test_input, "-") == 0 ? stdin : fopen(args.test_input, "r");
        if (!in) {
            fprintf(stderr, "cdcpipe: cannot read events file %s (give a file or - for stdin)\n",
                    args.test_input);
            rc = 2;
        } else {
            rc = command_test(&cfg, s, in, stdout);
            if (in != stdin) fclose(in);
        }
    } else if (args.command == CMD_LAG) {
        rc = config_validate(&cfg, err, sizeof err) != 0 ? 2 : command_lag(&cfg, stdout);
        if (rc == 2) fprintf(stderr, "cdcpipe: %s\n", err);
    } else if (config_validate(&cfg, err, sizeof err) != 0) {
        fprintf(stderr, "cdcpipe: %s\n", err);
        rc = 2;
    } else if (args.command == CMD_VERIFY || args.command == CMD_REWIND) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        rc = args.command == CMD_VERIFY ? command_verify(&cfg, stdout)
                                        : command_rewind(&cfg, args.rewind_to, stdout);
        curl_global_cleanup();
    } else {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        signals_install();
        metrics counters;
        metrics_init(&counters);
        metrics_set_build_info(&counters, CDCPIPE_VERSION, args.script_path, cfg.format);
        metrics_server *server = NULL;
        lag_monitor *lag = NULL;
        if (cfg.metrics_listen[0]) {
            server = metrics_server_start(&counters, cfg.metrics_listen, err, sizeof err);
            lag = server ? lag_monitor_start(&cfg, &counters, err, sizeof err) : NULL;
        }
        if (cfg.metrics_listen[0] && !lag) {
            fprintf(stderr, "cdcpipe: %s\n", err);
            rc = 2;
        } else {
            rc = pipeline_run(&cfg, &s, &counters);
        }
        lag_monitor_stop(lag);
        metrics_server_stop(server);
        metrics_free(&counters);
        curl_global_cleanup();
    }
    script_close(s);
    config_free(&cfg);
    cli_free(&args);
    return rc;
}
