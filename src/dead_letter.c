/*
 * dead_letter — the dead-letter sinks: a Kafka topic and/or a JSONL file
 * (see include/cdcpipe/dead_letter.h).
 */
#include "cdcpipe/dead_letter.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cdcpipe/base64.h"
#include "cdcpipe/kafka.h"
#include "cdcpipe/log.h"
#include "cdcpipe/row_json.h"
#include "cdcpipe/strbuf.h"
#include "cdcpipe/utf8.h"

#define FLUSH_TIMEOUT_MS 30000

struct dl_sink {
    rd_kafka_t *producer; /* NULL: no Kafka sink */
    char *topic;          /* fixed topic, or NULL for "<source>.dlq" */
    FILE *file;           /* NULL: no file sink */
    char *file_path;
    size_t max_bytes;
    bool dry_run;
    unsigned long long sent;
    unsigned long long failed; /* delivery failures since the last dl_flush */
    char last_error[256];
    strbuf line; /* reused for file lines and header values */
};

const char *dl_stage_name(dl_stage stage)
{
    static const char *const names[] = {"decode", "lua", "clickhouse"};
    return names[stage];
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    dl_sink *s = opaque;
    if (m->err) {
        s->failed++;
        snprintf(s->last_error, sizeof s->last_error, "%s: %s", rd_kafka_topic_name(m->rkt),
                 rd_kafka_err2str(m->err));
    }
}

static int open_producer(dl_sink *s, const config *cfg, char *err, size_t errlen)
{
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    const char *names[] = {"bootstrap.servers", "acks", "enable.idempotence", "client.id"};
    const char *values[] = {cfg->brokers, "all", "true", "cdcpipe-dlq"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (rd_kafka_conf_set(conf, names[i], values[i], errstr, sizeof errstr)) {
            snprintf(err, errlen, "dead-letter producer %s: %s", names[i], errstr);
            rd_kafka_conf_destroy(conf);
            return -1;
        }
    }
    /* Connection settings given with -X (security, SASL, ...) apply to the producer too;
     * consumer-only ones are ignored by it (its warnings about them: kafka_route_logs). */
    for (size_t i = 0; i < cfg->kafka_count; i++)
        if (rd_kafka_conf_set(conf, cfg->kafka_names[i], cfg->kafka_values[i], errstr,
                              sizeof errstr) != RD_KAFKA_CONF_OK)
            log_debug("dead-letter producer ignores -X %s: %s", cfg->kafka_names[i], errstr);
    rd_kafka_conf_set_opaque(conf, s);
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    kafka_route_logs(conf, true);
    s->producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!s->producer) {
        snprintf(err, errlen, "cannot create the dead-letter producer: %s", errstr);
        return -1;
    }
    return 0;
}

dl_sink *dl_open(const config *cfg, char *err, size_t errlen)
{
    dl_sink *s = calloc(1, sizeof *s);
    if (!s) abort();
    s->dry_run = cfg->dry_run;
    s->max_bytes = (size_t)cfg->dlq_max_bytes;
    if (s->dry_run) return s;
    if (cfg->dlq_topic[0] && strcmp(cfg->dlq_topic, "none") != 0) {
        s->topic = strdup(cfg->dlq_topic);
        if (!s->topic) abort();
    }
    if (strcmp(cfg->dlq_topic, "none") != 0 && open_producer(s, cfg, err, errlen) != 0) {
        dl_close(s);
        return NULL;
    }
    if (cfg->dlq_file[0]) {
        s->file = fopen(cfg->dlq_file, "a");
        if (!s->file) {
            snprintf(err, errlen, "cannot open dead-letter file %s for appending (--dlq-file): %s",
                     cfg->dlq_file, strerror(errno));
            dl_close(s);
            return NULL;
        }
        s->file_path = strdup(cfg->dlq_file);
        if (!s->file_path) abort();
    }
    return s;
}

/* "name":"text" or "name":"base64", "name_encoding":"base64"; null when absent. */
static void append_payload(strbuf *out, const char *name, const void *p, size_t len)
{
    strbuf_printf(out, ",\"%s\":", name);
    if (!p) {
        strbuf_puts(out, "null");
    } else if (utf8_valid(p, len)) {
        row_json_string(out, p, len);
    } else {
        strbuf_putc(out, '"');
        base64_encode(p, len, false, out);
        strbuf_printf(out, "\",\"%s_encoding\":\"base64\"", name);
    }
}

/* Source of a dead letter: the record's, or what is known when it could not be read again. */
static const char *source_topic(const dead_letter *d)
{
    return d->msg ? rd_kafka_topic_name(d->msg->rkt) : d->topic;
}

static int32_t source_partition(const dead_letter *d)
{
    return d->msg ? d->msg->partition : d->partition;
}

static int64_t source_offset(const dead_letter *d)
{
    return d->msg ? d->msg->offset : d->offset;
}

static int write_file_line(dl_sink *s, const dead_letter *d, char *err, size_t errlen)
{
    const rd_kafka_message_t *m = d->msg;
    strbuf *l = &s->line;
    strbuf_reset(l);
    strbuf_puts(l, "{\"topic\":");
    row_json_string(l, source_topic(d), strlen(source_topic(d)));
    strbuf_printf(l, ",\"partition\":%d,\"offset\":%lld,\"stage\":\"%s\"", (int)source_partition(d),
                  (long long)source_offset(d), dl_stage_name(d->stage));
    strbuf_puts(l, ",\"reason\":");
    row_json_string(l, d->reason, strlen(d->reason));
    if (d->clickhouse_code) strbuf_printf(l, ",\"clickhouse_code\":%d", d->clickhouse_code);
    append_payload(l, "key", m ? m->key : NULL, m ? m->key_len : 0);
    append_payload(l, "value", m ? m->payload : NULL, m ? m->len : 0);
    strbuf_puts(l, "}\n");
    if (fwrite(l->data, 1, l->len, s->file) != l->len) {
        snprintf(err, errlen, "cannot write dead-letter file %s: %s", s->file_path,
                 strerror(errno));
        return -1;
    }
    return 0;
}

static int produce(dl_sink *s, const dead_letter *d, char *err, size_t errlen)
{
    const rd_kafka_message_t *m = d->msg;
    const char *source = source_topic(d);
    char topic[512], number[32];
    snprintf(topic, sizeof topic, "%s", s->topic ? s->topic : source);
    if (!s->topic) strncat(topic, ".dlq", sizeof topic - strlen(topic) - 1);

    rd_kafka_headers_t *original = NULL, *hdrs;
    if (m && rd_kafka_message_headers(m, &original) == RD_KAFKA_RESP_ERR_NO_ERROR)
        hdrs = rd_kafka_headers_copy(original);
    else
        hdrs = rd_kafka_headers_new(8);
    rd_kafka_header_add(hdrs, "cdcpipe.source.topic", -1, source, -1);
    snprintf(number, sizeof number, "%d", (int)source_partition(d));
    rd_kafka_header_add(hdrs, "cdcpipe.source.partition", -1, number, -1);
    snprintf(number, sizeof number, "%lld", (long long)source_offset(d));
    rd_kafka_header_add(hdrs, "cdcpipe.source.offset", -1, number, -1);
    rd_kafka_header_add(hdrs, "cdcpipe.stage", -1, dl_stage_name(d->stage), -1);
    rd_kafka_header_add(hdrs, "cdcpipe.reason", -1, d->reason, -1);
    if (d->clickhouse_code) {
        snprintf(number, sizeof number, "%d", d->clickhouse_code);
        rd_kafka_header_add(hdrs, "cdcpipe.clickhouse.code", -1, number, -1);
    }
    size_t len = m ? m->len : 0;
    if (m && m->payload && len > s->max_bytes) {
        snprintf(number, sizeof number, "%zu", len);
        rd_kafka_header_add(hdrs, "cdcpipe.truncated.from", -1, number, -1);
        len = s->max_bytes;
    }
    rd_kafka_resp_err_t e;
    do {
        e = rd_kafka_producev(s->producer, RD_KAFKA_V_TOPIC(topic),
                              RD_KAFKA_V_KEY(m ? m->key : NULL, m ? m->key_len : 0),
                              RD_KAFKA_V_VALUE(m ? m->payload : NULL, m && m->payload ? len : 0),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(hdrs),
                              RD_KAFKA_V_END);
        if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) rd_kafka_poll(s->producer, 100);
    } while (e == RD_KAFKA_RESP_ERR__QUEUE_FULL);
    if (e) {
        rd_kafka_headers_destroy(hdrs);
        snprintf(err, errlen, "cannot queue a dead letter for %s: %s", topic, rd_kafka_err2str(e));
        return -1;
    }
    rd_kafka_poll(s->producer, 0); /* serve delivery reports */
    return 0;
}

int dl_send(dl_sink *s, const dead_letter *d, char *err, size_t errlen)
{
    log_error("%s [%d] offset %lld: %s error: %s%s", source_topic(d), (int)source_partition(d),
              (long long)source_offset(d), dl_stage_name(d->stage), d->reason,
              s->dry_run ? " (dry run: not written)" : " (dead-lettered)");
    s->sent++;
    if (s->dry_run) return 0;
    if (s->producer && produce(s, d, err, errlen) != 0) return -1;
    if (s->file && write_file_line(s, d, err, errlen) != 0) return -1;
    return 0;
}

int dl_flush(dl_sink *s, char *err, size_t errlen)
{
    if (s->file && (fflush(s->file) != 0 || fsync(fileno(s->file)) != 0)) {
        snprintf(err, errlen, "cannot write dead-letter file %s: %s", s->file_path,
                 strerror(errno));
        return -1;
    }
    if (!s->producer) return 0;
    rd_kafka_resp_err_t e = rd_kafka_flush(s->producer, FLUSH_TIMEOUT_MS);
    if (e) {
        snprintf(err, errlen, "dead letters not acknowledged by Kafka within %d s: %s",
                 FLUSH_TIMEOUT_MS / 1000, rd_kafka_err2str(e));
        return -1;
    }
    if (s->failed) {
        snprintf(err, errlen, "%llu dead letter(s) could not be written to Kafka (%s)", s->failed,
                 s->last_error);
        s->failed = 0;
        return -1;
    }
    return 0;
}

unsigned long long dl_count(const dl_sink *s)
{
    return s->sent;
}

void dl_close(dl_sink *s)
{
    if (!s) return;
    if (s->producer) {
        rd_kafka_flush(s->producer, 5000);
        rd_kafka_destroy(s->producer);
    }
    if (s->file) fclose(s->file);
    free(s->file_path);
    free(s->topic);
    strbuf_free(&s->line);
    free(s);
}
