/*
 * record_fetch — reads one Kafka record again, by topic, partition and offset.
 *
 * The pipeline does not keep the records whose rows wait in its batches (holding librdkafka
 * messages pins their whole fetch buffers: hundreds of MiB for a full batch). When ClickHouse
 * rejects a row, the record it came from is read again here so that the dead letter carries the
 * original key, value and headers. A rare path: the group-less consumer behind it is created on
 * first use.
 */
#ifndef CDCPIPE_RECORD_FETCH_H
#define CDCPIPE_RECORD_FETCH_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdint.h>

#include "cdcpipe/config.h"

typedef struct record_fetcher record_fetcher;

/* Nothing is connected until the first record_fetch. */
record_fetcher *record_fetcher_new(const config *cfg);
void record_fetcher_free(record_fetcher *f);

/* The record at topic/partition/offset, or NULL with err (no longer in the topic: removed by
 * retention or compaction; or not readable within 30 s). Records of one partition asked for in
 * offset order are read in one pass. The caller destroys it with rd_kafka_message_destroy before
 * record_fetcher_free. */
rd_kafka_message_t *record_fetch(record_fetcher *f, const char *topic, int32_t partition,
                                 int64_t offset, char *err, size_t errlen);

/* Ends the pass: the partition is unassigned and its prefetched records dropped. */
void record_fetch_release(record_fetcher *f);

#endif
