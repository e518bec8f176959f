/*
 * signals — SIGINT, SIGTERM, SIGHUP as flags for the main loop (see include/cdcpipe/signals.h).
 */
#include "cdcpipe/signals.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "cdcpipe/clock.h"

volatile sig_atomic_t signals_stop_requested = 0;
volatile sig_atomic_t signals_reload_requested = 0;

static _Atomic int64_t grace_deadline_ms = -1;

bool signals_grace_expired(long timeout_s)
{
    if (!signals_stop_requested) return false;
    int64_t deadline = atomic_load(&grace_deadline_ms);
    if (deadline < 0) {
        int64_t mine = clock_ms() + (int64_t)timeout_s * 1000;
        deadline =
            atomic_compare_exchange_strong(&grace_deadline_ms, &deadline, mine) ? mine : deadline;
    }
    return clock_ms() >= deadline;
}

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

void signals_block(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
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
