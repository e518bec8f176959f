/*
 * record_fetch — reads one Kafka record again (see include/cdcpipe/record_fetch.h).
 */
#include "cdcpipe/record_fetch.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cdcpipe/clock.h"
#include "cdcpipe/kafka.h"
#include "cdcpipe/log.h"
#include "cdcpipe/xalloc.h"
#include "cdcpipe/errbuf.h"

#define FETCH_TIMEOUT_MS 30000

struct record_fetcher {
    const config *cfg;
    rd_kafka_t *rk; /* a consumer without a group: assign, read on, unassign when released */
    char *topic;    /* the partition assigned, or NULL */
    int32_t partition;
    int64_t next; /* the offset that partition returns next */
};

record_fetcher *record_fetcher_new(const config *cfg)
{
    record_fetcher *f = xcalloc(1, sizeof *f);
    f->cfg = cfg;
    return f;
}

void record_fetch_release(record_fetcher *f)
{
    if (!f || !f->topic) return;
    rd_kafka_assign(f->rk, NULL);
    free(f->topic);
    f->topic = NULL;
}

void record_fetcher_free(record_fetcher *f)
{
    if (!f) return;
    record_fetch_release(f);
    if (f->rk) {
        rd_kafka_consumer_close(f->rk);
        rd_kafka_destroy(f->rk);
    }
    free(f);
}

static int open_consumer(record_fetcher *f, char *err, size_t errlen)
{
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    /* -X settings (security, SASL, ...) first; ours must not be overridden */
    for (size_t i = 0; i < f->cfg->kafka_count; i++)
        rd_kafka_conf_set(conf, f->cfg->kafka_names[i], f->cfg->kafka_values[i], errstr,
                          sizeof errstr);
    /* auto.offset.reset=error: an offset no longer in the log (retention, DeleteRecords) is
     * reported at once instead of silently reading from elsewhere until the timeout. */
    const char *names[] = {
        "bootstrap.servers", "enable.auto.commit", "enable.partition.eof",      "client.id",
        "group.id",          "auto.offset.reset",  "queued.max.messages.kbytes"};
    const char *values[] = {f->cfg->brokers,          "false", "false", "cdcpipe-refetch",
                            "cdcpipe-refetch-unused", "error", "4096"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (rd_kafka_conf_set(conf, names[i], values[i], errstr, sizeof errstr)) {
            errbuf_set(err, errlen, "record fetcher %s: %s", names[i], errstr);
            rd_kafka_conf_destroy(conf);
            return -1;
        }
    }
    kafka_route_logs(conf, true);
    f->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
    if (!f->rk) {
        errbuf_set(err, errlen, "cannot create the record fetcher: %s", errstr);
        return -1;
    }
    rd_kafka_poll_set_consumer(f->rk);
    return 0;
}

rd_kafka_message_t *record_fetch(record_fetcher *f, const char *topic, int32_t partition,
                                 int64_t offset, char *err, size_t errlen)
{
    if (!f->rk && open_consumer(f, err, errlen) != 0) return NULL;
    /* Records asked for in offset order (a batch's dead letters) are read on from the last one;
     * anything else starts a new assignment there. */
    if (!f->topic || strcmp(f->topic, topic) != 0 || f->partition != partition ||
        offset < f->next) {
        record_fetch_release(f);
        rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(list, topic, partition)->offset = offset;
        rd_kafka_resp_err_t e = rd_kafka_assign(f->rk, list);
        rd_kafka_topic_partition_list_destroy(list);
        if (e) {
            errbuf_set(err, errlen, "cannot read %s [%d] offset %lld again: %s", topic,
                       (int)partition, (long long)offset, rd_kafka_err2str(e));
            return NULL;
        }
        f->topic = xstrdup(topic);
        f->partition = partition;
        f->next = offset;
    }
    rd_kafka_message_t *found = NULL;
    char gone[256] = "";
    int64_t deadline = clock_ms() + FETCH_TIMEOUT_MS;
    while (!found && !gone[0] && clock_ms() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(f->rk, 100);
        if (!m) continue;
        bool ours =
            m->rkt && m->partition == partition && strcmp(rd_kafka_topic_name(m->rkt), topic) == 0;
        if (!m->err && ours) f->next = m->offset + 1;
        if (!m->err && ours && m->offset == offset) {
            found = m;
            continue;
        }
        if (m->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET ||
            m->err == RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE)
            snprintf(gone, sizeof gone, "it is no longer in the topic (%s)",
                     rd_kafka_message_errstr(m));
        else if (!m->err && ours && m->offset > offset)
            snprintf(gone, sizeof gone,
                     "it is no longer in the topic (the next record there is at offset %lld: "
                     "compacted away?)",
                     (long long)m->offset);
        else if (m->err)
            log_debug("record fetcher: %s", rd_kafka_message_errstr(m));
        rd_kafka_message_destroy(m);
    }
    if (!found) record_fetch_release(f); /* start afresh next time */
    if (!found && gone[0])
        errbuf_set(err, errlen, "cannot read %s [%d] offset %lld again: %s", topic, (int)partition,
                   (long long)offset, gone);
    else if (!found)
        errbuf_set(err, errlen, "cannot read %s [%d] offset %lld again within %d s", topic,
                   (int)partition, (long long)offset, FETCH_TIMEOUT_MS / 1000);
    return found;
}
