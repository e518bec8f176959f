/*
 * support — what the in-process integration tests (tests/integration/test_*.c) share.
 */
#ifndef CDCPIPE_TEST_INTEGRATION_SUPPORT_H
#define CDCPIPE_TEST_INTEGRATION_SUPPORT_H

#include <stddef.h>

/* CLICKHOUSE_URL from the services.env named by CDCPIPE_SERVICES_ENV (written by
 * scripts/services.sh), without quotes or trailing slashes; malloc'ed. NULL with err when the
 * variable, the file or the line is missing. */
char *services_clickhouse_url(char *err, size_t errlen);

#endif
