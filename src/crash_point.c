/*
 * crash_point — SIGKILL at a named point for the crash tests (see include/cdcpipe/crash_point.h).
 */
#include "cdcpipe/crash_point.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cdcpipe/log.h"

static pthread_once_t once = PTHREAD_ONCE_INIT;
static char point[64];     /* "" when CDCPIPE_TEST_CRASH is unset */
static long at_pass = 1;   /* the pass that kills */
static atomic_long passes; /* passes through `point` so far */

static void read_setting(void)
{
    const char *v = getenv("CDCPIPE_TEST_CRASH");
    if (!v || !*v) return;
    size_t len = strcspn(v, ":");
    if (len >= sizeof point) len = sizeof point - 1;
    memcpy(point, v, len);
    point[len] = '\0';
    if (v[len] == ':') at_pass = strtol(v + len + 1, NULL, 10);
    if (at_pass < 1) at_pass = 1;
    log_warn("CDCPIPE_TEST_CRASH: this process kills itself at pass %ld through %s (tests only)",
             at_pass, point);
}

void crash_point(const char *name)
{
    pthread_once(&once, read_setting);
    if (!point[0] || strcmp(point, name) != 0) return;
    if (atomic_fetch_add(&passes, 1) + 1 != at_pass) return;
    fprintf(stderr, "cdcpipe: CDCPIPE_TEST_CRASH: SIGKILL at %s\n", name);
    raise(SIGKILL);
}
