/*
 * lag — how far the consumer group is behind: per partition the group's committed offset, the
 * high watermark and their difference, asked of the brokers with a Kafka client of its own (never
 * the pipeline's consumer, which it neither blocks nor slows).
 *
 *   The lag monitor: a thread that, every LAG_INTERVAL_MS, asks for the partitions assigned to
 *   this member (metrics_each_assigned) and publishes cdcpipe_consumer_lag and friends
 *   (metrics_set_lag). Its requests wait (up to LAG_TIMEOUT_MS each) in its own thread only.
 *   `cdcpipe lag pipeline.lua`: the same figures for every partition of the topics, and the
 *   group's members with what each is assigned (command_lag).
 *
 * Lag = high watermark − committed offset; with no committed offset yet, high watermark − low
 * watermark (everything still in the log is to be consumed). It is what the brokers know: offsets
 * are committed after each flush, so a healthy pipeline shows up to a batch of lag.
 */
#ifndef CDCPIPE_LAG_H
#define CDCPIPE_LAG_H

#include <librdkafka/rdkafka.h>
#include <stdio.h>

#include "cdcpipe/config.h"
#include "cdcpipe/metrics.h"

#define LAG_INTERVAL_MS 2000
#define LAG_TIMEOUT_MS  5000

typedef struct lag_monitor lag_monitor;

/* A consumer of cfg's group that never joins it (no subscription): committed offsets and
 * watermarks only. Returns NULL with err. @locality: any thread. */
rd_kafka_t *lag_client_open(const config *cfg, char *err, size_t errlen);

/* For each partition in list: elems[i].offset = the group's committed offset (negative: none),
 * high[i] and low[i] the watermarks (-1 when unknown; elems[i].err says why). Returns 0, or -1
 * with err when the committed offsets cannot be had at all. Blocks up to timeout_ms per request.
 */
int lag_query(rd_kafka_t *rk, rd_kafka_topic_partition_list_t *list, int64_t *low, int64_t *high,
              int timeout_ms, char *err, size_t errlen);

/* The lag of one partition from lag_query's figures (-1: unknown). */
int64_t lag_of(int64_t committed, int64_t low, int64_t high);

/* Starts the monitor thread. Returns NULL with err when the client cannot be created. */
lag_monitor *lag_monitor_start(const config *cfg, metrics *m, char *err, size_t errlen);
/* Stops the thread (at most one request's timeout later) and frees. NULL: nothing. */
void lag_monitor_stop(lag_monitor *lm);

/* `cdcpipe lag`: prints the table and the members to out. Returns the exit status: 0, or 1 when
 * the brokers cannot be asked (logged). */
int command_lag(const config *cfg, FILE *out);

#endif
