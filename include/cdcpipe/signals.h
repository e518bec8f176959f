/*
 * signals — what SIGINT, SIGTERM and SIGHUP ask of the running pipeline.
 *
 * The handlers only set flags; the main loop acts on them at its next turn (and a wait between
 * insert retries wakes early on a stop). A second SIGINT/SIGTERM exits at once with status 130,
 * committing nothing more. SIGPIPE is ignored (a closed socket is an error return, not a death).
 *
 * @locality: the flags are set from signal handlers on the consumer thread (the workers block
 * SIGINT, SIGTERM and SIGHUP) and read by the consumer thread and the workers (a stop ends every
 * loop and retry wait); volatile sig_atomic_t, no locks.
 */
#ifndef CDCPIPE_SIGNALS_H
#define CDCPIPE_SIGNALS_H

#include <signal.h>
#include <stdbool.h>

/* SIGINT/SIGTERM: stop consuming, flush, commit, leave the group. */
extern volatile sig_atomic_t signals_stop_requested;
/* SIGHUP: reload pipeline.lua at the next batch boundary (the loop clears it). */
extern volatile sig_atomic_t signals_reload_requested;

/* After SIGINT/SIGTERM, transient failures are retried for timeout_s seconds more (the
 * --shutdown-timeout grace, counted from the first call that sees the stop): whether that grace
 * is over. false before a stop. @locality: any thread (an atomic deadline). */
bool signals_grace_expired(long timeout_s);

/* Blocks SIGINT, SIGTERM and SIGHUP in the calling thread: they go to the consumer thread.
 * @locality: a worker or insert thread, first thing. */
void signals_block(void);

/* Installs the handlers (main thread, before any other thread starts). */
void signals_install(void);

#endif
