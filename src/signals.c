/*
 * signals — SIGINT, SIGTERM, SIGHUP as flags for the main loop (see include/cdcpipe/signals.h).
 */
#include "cdcpipe/signals.h"

#include <string.h>
#include <unistd.h>

volatile sig_atomic_t signals_stop_requested = 0;
volatile sig_atomic_t signals_reload_requested = 0;

static void on_hangup(int sig)
{
    (void)sig;
    signals_reload_requested = 1;
}

static void on_stop(int sig)
{
    (void)sig;
    if (signals_stop_requested) _exit(130); /* second signal: leave now, commit nothing more */
    signals_stop_requested = 1;
}

void signals_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sa.sa_handler = on_hangup;
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}
