/*
 * dead_letter — where events go that cdcpipe cannot turn into rows: bad JSON, a Lua error, a
 * row ClickHouse rejects. Nothing is dropped silently: each dead letter is logged and written to
 * a Kafka topic (default "<source topic>.dlq") and/or a JSONL file.
 *
 * A Kafka dead letter keeps the original key, value (cut at --dlq-max-bytes, marked) and headers
 * and adds headers cdcpipe.source.topic/.partition/.offset, cdcpipe.stage (decode | lua |
 * clickhouse), cdcpipe.reason (cut at 4 KiB) and cdcpipe.clickhouse.code; the whole record is
 * kept within the producer's message.max.bytes, the key cut and original headers left out when
 * needed (marked: cdcpipe.key.truncated.from, cdcpipe.headers.dropped). A file dead letter is
 * one JSON object per line with the same facts (key and value as text when valid UTF-8, base64
 * otherwise; each cut at --dlq-max-bytes), in a file created 0600 and never opened through a
 * symbolic link; lines are written whole.
 * dl_flush waits until every dead letter is acknowledged by Kafka and on disk: the pipeline calls
 * it before committing offsets.
 *
 * @locality: any thread; one sink is shared by every worker.
 * @locks: the sink's own mutex, inside dl_send, dl_flush and dl_count (dl_flush holds it while it
 * waits for Kafka: a worker dead-lettering meanwhile waits too).
 */
#ifndef CDCPIPE_DEAD_LETTER_H
#define CDCPIPE_DEAD_LETTER_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdint.h>

#include "cdcpipe/config.h"
#include "cdcpipe/metrics.h"

typedef struct dl_sink dl_sink;

typedef enum { DL_DECODE, DL_LUA, DL_CLICKHOUSE } dl_stage;

typedef struct {
    const rd_kafka_message_t *msg; /* the original record, or NULL when it could not be read
                                    * again: then topic, partition and offset say where it is */
    dl_stage stage;
    const char *reason;
    int clickhouse_code; /* 0: none */
    const char *topic;   /* msg == NULL only */
    int32_t partition;
    int64_t offset;
} dead_letter;

/* Opens the sinks cfg asks for (cfg->dlq_topic: "" = "<source>.dlq", "none" = no topic;
 * cfg->dlq_file: "" = no file). In a dry run nothing is written, only logged. Returns NULL with
 * err when the file cannot be opened or the producer cannot be created. */
dl_sink *dl_open(const config *cfg, char *err, size_t errlen);

/* Logs and queues one dead letter. Returns 0, or -1 with err when it cannot even be queued. */
int dl_send(dl_sink *s, const dead_letter *d, char *err, size_t errlen);

/* dl_send for a worker: counts the dead letter (metrics.h) and sends it; when it cannot be
 * queued, logs why ("... stopping without committing") and returns -1: the caller must commit
 * nothing more. @locality: any worker thread (@locks the sink's mutex). */
int dl_deliver(dl_sink *s, metrics *n, const dead_letter *d);

/* Waits until everything sent is acknowledged (Kafka) and written (file). Returns 0, or -1 with
 * err: then offsets must not be committed. */
int dl_flush(dl_sink *s, char *err, size_t errlen);

/* Dead letters sent since the sink was opened. */
unsigned long long dl_count(dl_sink *s);

void dl_close(dl_sink *s);

const char *dl_stage_name(dl_stage stage);

#endif
