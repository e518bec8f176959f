/*
 * group_offsets — the consumer group's committed offsets from outside the group, for
 * `cdcpipe verify` and `cdcpipe rewind` (verify.h): the topics' partitions, their committed
 * offsets and watermarks, whether the group has members, and committing offsets for an empty
 * group. A plain librdkafka consumer handle with cfg's group.id and -X properties that never
 * subscribes.
 * @locality: the main thread of those commands.
 */
#ifndef CDCPIPE_GROUP_OFFSETS_H
#define CDCPIPE_GROUP_OFFSETS_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdint.h>

#include "cdcpipe/config.h"

typedef struct {
    char *topic;
    int32_t partition;
    int64_t committed; /* -1: none */
    int64_t low, high; /* watermarks */
} group_partition;

typedef struct {
    rd_kafka_t *rk;
    group_partition *parts;
    size_t count;
} group_offsets;

/* Opens the handle and reads every partition of cfg->topics with its committed offset and
 * watermarks. 0, or -1 with err. */
int group_offsets_open(group_offsets *g, const config *cfg, char *err, size_t errlen);
void group_offsets_close(group_offsets *g);

/* Members of the group now (-1 with err when the broker cannot tell). */
int group_offsets_members(group_offsets *g, const char *group, char *err, size_t errlen);

/* Commits list's offsets for the group (no member may be running). 0, or -1 with err. */
int group_offsets_commit(group_offsets *g, rd_kafka_topic_partition_list_t *list, char *err,
                         size_t errlen);

#endif
