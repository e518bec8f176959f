/*
 * dead_letter — the dead-letter sinks: a Kafka topic and/or a JSONL file
 * (see include/cdcpipe/dead_letter.h).
 *
 * Whoever writes to the source topic chooses the key, the value and the headers, so a dead
 * letter is cut to fit, never refused for its size: the value at --dlq-max-bytes, then the key
 * and the original headers so that the whole record stays within the producer's
 * message.max.bytes (--dlq-max-bytes is checked against it at start). A record the broker still
 * refuses as too large (its topic's max.message.bytes is smaller) is sent again with cdcpipe's
 * headers only.
 */
#include "cdcpipe/dead_letter.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cdcpipe/base64.h"
#include "cdcpipe/errbuf.h"
#include "cdcpipe/kafka.h"
#include "cdcpipe/log.h"
#include "cdcpipe/row_json.h"
#include "cdcpipe/strbuf.h"
#include "cdcpipe/xalloc.h"
#include "cdcpipe/utf8.h"

#define FLUSH_TIMEOUT_MS 30000
/* A reason longer than this is cut (a Lua traceback, a server message quoting event data). */
#define MAX_REASON 4096
/* librdkafka's per-record overhead is at most 36 bytes (v2); a header costs its name, its value
 * and two varints. Generous, so that a record we fit is never refused by librdkafka. */
#define RECORD_OVERHEAD 256
#define HEADER_OVERHEAD 12
/* What --dlq-max-bytes must leave of message.max.bytes for key, headers and cdcpipe's own. */
#define ROOM_BESIDES_VALUE 16384
/* msg_opaque of a record sent again with cdcpipe's headers only: not retried once more. */
#define RETRY_OPAQUE ((void *)1)

struct dl_sink {
    /* workers dead-letter concurrently: dl_send, dl_flush and dl_count hold it (dead letters are
     * rare; no hot path waits on it) */
    pthread_mutex_t lock;
    rd_kafka_t *producer; /* NULL: no Kafka sink */
    char *topic;          /* fixed topic, or NULL for "<source>.dlq" */
    int fd;               /* -1: no file sink */
    char *file_path;
    size_t max_bytes;  /* --dlq-max-bytes */
    size_t max_record; /* the producer's message.max.bytes */
    bool dry_run;
    unsigned long long sent;
    unsigned long long failed; /* delivery failures since the last dl_flush */
    unsigned long long resent; /* records sent again with cdcpipe's headers only */
    char last_error[256];
    strbuf line; /* reused for file lines */
};

const char *dl_stage_name(dl_stage stage)
{
    static const char *const names[] = {"decode", "lua", "clickhouse"};
    return names[stage];
}

/* The length of s[0..len) cut to at most max bytes without splitting a UTF-8 sequence (when s
 * is text; bytes are cut anywhere). */
static size_t cut_length(const char *s, size_t len, size_t max)
{
    if (len <= max) return len;
    size_t n = max;
    if (utf8_valid(s, len))
        while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
            n--;
    return n;
}

/* The reason as written: at most MAX_REASON bytes, marked when cut. Points to reason or buf. */
static const char *capped_reason(const char *reason, char *buf, size_t buflen)
{
    size_t len = strlen(reason);
    if (len <= MAX_REASON) return reason;
    size_t n = cut_length(reason, len, MAX_REASON);
    snprintf(buf, buflen, "%.*s... (reason cut at %d of %zu bytes)", (int)n, reason, MAX_REASON,
             len);
    return buf;
}

static size_t header_cost(const char *name, size_t value_len)
{
    return strlen(name) + value_len + HEADER_OVERHEAD;
}

/* Sends a record that the broker refused as too large again, with cdcpipe's headers only: no
 * key, value or original headers, each absence marked. Called from the delivery report. */
static void resend_headers_only(dl_sink *s, const rd_kafka_message_t *m)
{
    rd_kafka_headers_t *had = NULL, *hdrs = rd_kafka_headers_new(12);
    (void)rd_kafka_message_headers(m, &had);
    const char *name;
    const void *value;
    size_t size, dropped = 0;
    bool value_mark = false, key_mark = false;
    for (size_t i = 0; had && rd_kafka_header_get_all(had, i, &name, &value, &size) == 0; i++) {
        if (strncmp(name, "cdcpipe.", 8) != 0) {
            dropped++;
        } else if (strcmp(name, "cdcpipe.headers.dropped") == 0) {
            char count[32] = "";
            if (value && size < sizeof count) memcpy(count, value, size);
            count[size < sizeof count ? size : 0] = '\0';
            dropped += strtoull(count, NULL, 10);
        } else {
            rd_kafka_header_add(hdrs, name, -1, value, (ssize_t)size);
            value_mark |= strcmp(name, "cdcpipe.truncated.from") == 0;
            key_mark |= strcmp(name, "cdcpipe.key.truncated.from") == 0;
        }
    }
    char number[32];
    if (m->payload && !value_mark) {
        snprintf(number, sizeof number, "%zu", m->len);
        rd_kafka_header_add(hdrs, "cdcpipe.truncated.from", -1, number, -1);
    }
    if (m->key && !key_mark) {
        snprintf(number, sizeof number, "%zu", m->key_len);
        rd_kafka_header_add(hdrs, "cdcpipe.key.truncated.from", -1, number, -1);
    }
    if (dropped) {
        snprintf(number, sizeof number, "%zu", dropped);
        rd_kafka_header_add(hdrs, "cdcpipe.headers.dropped", -1, number, -1);
    }
    rd_kafka_resp_err_t e = rd_kafka_producev(
        s->producer, RD_KAFKA_V_TOPIC(rd_kafka_topic_name(m->rkt)), RD_KAFKA_V_HEADERS(hdrs),
        RD_KAFKA_V_OPAQUE(RETRY_OPAQUE), RD_KAFKA_V_END);
    if (e) {
        rd_kafka_headers_destroy(hdrs);
        s->failed++;
        snprintf(s->last_error, sizeof s->last_error, "%s: %s", rd_kafka_topic_name(m->rkt),
                 rd_kafka_err2str(e));
        return;
    }
    log_warn("a dead letter for %s was refused by the broker as too large (%zu bytes of value, "
             "%zu of key); sent again with cdcpipe's headers only (raise the topic's "
             "max.message.bytes or lower --dlq-max-bytes to keep the payloads)",
             rd_kafka_topic_name(m->rkt), m->len, m->key_len);
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    dl_sink *s = opaque;
    if (m->err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE && m->_private != RETRY_OPAQUE) {
        resend_headers_only(s, m);
    } else if (m->err) {
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
            errbuf_set(err, errlen, "dead-letter producer %s: %s", names[i], errstr);
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
    char max[32];
    size_t maxlen = sizeof max;
    s->max_record = rd_kafka_conf_get(conf, "message.max.bytes", max, &maxlen) == RD_KAFKA_CONF_OK
                        ? (size_t)strtoull(max, NULL, 10)
                        : 1000000;
    if (s->max_bytes + ROOM_BESIDES_VALUE > s->max_record) {
        errbuf_set(err, errlen,
                   "--dlq-max-bytes %zu (CDCPIPE_DLQ_MAX_BYTES, dead_letters.max_bytes) leaves "
                   "less than %d bytes of the dead-letter producer's message.max.bytes %zu for "
                   "the key and headers: use at most %zu, or raise -X message.max.bytes",
                   s->max_bytes, ROOM_BESIDES_VALUE, s->max_record,
                   s->max_record > ROOM_BESIDES_VALUE ? s->max_record - ROOM_BESIDES_VALUE : 0);
        rd_kafka_conf_destroy(conf);
        return -1;
    }
    rd_kafka_conf_set_opaque(conf, s);
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    kafka_route_logs(conf, true);
    s->producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!s->producer) {
        errbuf_set(err, errlen, "cannot create the dead-letter producer: %s", errstr);
        return -1;
    }
    return 0;
}

/* The dead-letter file: created 0600 (payloads are private), never through a symbolic link,
 * not inherited by child processes; appended to. */
static int open_file(dl_sink *s, const char *path, char *err, size_t errlen)
{
    s->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, 0600);
    if (s->fd < 0) {
        int e = errno;
        errbuf_set(err, errlen, "cannot open dead-letter file %s for appending (--dlq-file): %s",
                   path, e == ELOOP ? "it is a symbolic link (give the real path)" : strerror(e));
        return -1;
    }
    struct stat st;
    if (fstat(s->fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        errbuf_set(err, errlen, "dead-letter file %s (--dlq-file) is not a regular file", path);
        return -1;
    }
    fcntl(s->fd, F_SETFL, O_APPEND); /* O_NONBLOCK only kept a FIFO from blocking the open */
    return 0;
}

dl_sink *dl_open(const config *cfg, char *err, size_t errlen)
{
    dl_sink *s = xcalloc(1, sizeof *s);
    pthread_mutex_init(&s->lock, NULL);
    s->fd = -1;
    s->dry_run = cfg->dry_run;
    s->max_bytes = (size_t)cfg->dlq_max_bytes;
    if (s->dry_run) return s;
    if (cfg->dlq_topic[0] && strcmp(cfg->dlq_topic, "none") != 0) {
        s->topic = xstrdup(cfg->dlq_topic);
    }
    if (strcmp(cfg->dlq_topic, "none") != 0 && open_producer(s, cfg, err, errlen) != 0) {
        dl_close(s);
        return NULL;
    }
    if (cfg->dlq_file[0]) {
        if (open_file(s, cfg->dlq_file, err, errlen) != 0) {
            dl_close(s);
            return NULL;
        }
        s->file_path = xstrdup(cfg->dlq_file);
    }
    return s;
}

/* "name":"text" or "name":"base64", "name_encoding":"base64"; null when absent; cut at max
 * bytes, then "name_truncated_from": the original length. */
static void append_payload(strbuf *out, const char *name, const void *p, size_t len, size_t max)
{
    strbuf_printf(out, ",\"%s\":", name);
    if (!p) {
        strbuf_puts(out, "null");
        return;
    }
    size_t n = cut_length(p, len, max);
    if (utf8_valid(p, n)) {
        row_json_string(out, p, n);
    } else {
        strbuf_putc(out, '"');
        base64_encode(p, n, false, out);
        strbuf_printf(out, "\",\"%s_encoding\":\"base64\"", name);
    }
    if (n < len) strbuf_printf(out, ",\"%s_truncated_from\":%zu", name, len);
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

/* One JSON line, written whole with one write on the O_APPEND descriptor; a write that fails
 * part-way (ENOSPC) is undone, so the file never holds half a line. */
static int write_file_line(dl_sink *s, const dead_letter *d, const char *reason, char *err,
                           size_t errlen)
{
    const rd_kafka_message_t *m = d->msg;
    strbuf *l = &s->line;
    strbuf_reset(l);
    strbuf_puts(l, "{\"topic\":");
    row_json_string(l, source_topic(d), strlen(source_topic(d)));
    strbuf_printf(l, ",\"partition\":%d,\"offset\":%lld,\"stage\":\"%s\"", (int)source_partition(d),
                  (long long)source_offset(d), dl_stage_name(d->stage));
    strbuf_puts(l, ",\"reason\":");
    row_json_string(l, reason, strlen(reason));
    if (d->clickhouse_code) strbuf_printf(l, ",\"clickhouse_code\":%d", d->clickhouse_code);
    append_payload(l, "key", m ? m->key : NULL, m ? m->key_len : 0, s->max_bytes);
    append_payload(l, "value", m ? m->payload : NULL, m ? m->len : 0, s->max_bytes);
    strbuf_puts(l, "}\n");
    struct stat st;
    off_t before = fstat(s->fd, &st) == 0 ? st.st_size : -1;
    size_t done = 0;
    while (done < l->len) {
        ssize_t n = write(s->fd, l->data + done, l->len - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            int e = n < 0 ? errno : ENOSPC;
            if (done && before >= 0 && ftruncate(s->fd, before) != 0)
                log_error("dead-letter file %s: cannot remove a partly written line: %s",
                          s->file_path, strerror(errno));
            errbuf_set(err, errlen, "cannot write dead-letter file %s: %s", s->file_path,
                       strerror(e));
            return -1;
        }
        done += (size_t)n;
    }
    return 0;
}

static int produce(dl_sink *s, const dead_letter *d, const char *reason, char *err, size_t errlen)
{
    const rd_kafka_message_t *m = d->msg;
    const char *source = source_topic(d);
    char topic[512], partition[32], offset[32], code[32], number[32];
    snprintf(topic, sizeof topic, "%s", s->topic ? s->topic : source);
    if (!s->topic) strncat(topic, ".dlq", sizeof topic - strlen(topic) - 1);
    snprintf(partition, sizeof partition, "%d", (int)source_partition(d));
    snprintf(offset, sizeof offset, "%lld", (long long)source_offset(d));
    snprintf(code, sizeof code, "%d", d->clickhouse_code);

    /* What the record may hold besides cdcpipe's headers (and room for the three marks). */
    size_t own = RECORD_OVERHEAD + header_cost("cdcpipe.source.topic", strlen(source)) +
                 header_cost("cdcpipe.source.partition", strlen(partition)) +
                 header_cost("cdcpipe.source.offset", strlen(offset)) +
                 header_cost("cdcpipe.stage", strlen(dl_stage_name(d->stage))) +
                 header_cost("cdcpipe.reason", strlen(reason)) +
                 header_cost("cdcpipe.clickhouse.code", strlen(code)) +
                 header_cost("cdcpipe.key.truncated.from", 20) +
                 header_cost("cdcpipe.truncated.from", 20) +
                 header_cost("cdcpipe.headers.dropped", 20);
    size_t room = s->max_record > own ? s->max_record - own : 0;
    size_t value_len = m && m->payload ? m->len : 0;
    if (value_len > s->max_bytes) value_len = s->max_bytes;
    if (value_len > room) value_len = room;
    room -= value_len;
    size_t key_len = m && m->key ? m->key_len : 0;
    if (key_len > room) key_len = room;
    room -= key_len;

    rd_kafka_headers_t *original = NULL, *hdrs = rd_kafka_headers_new(16);
    size_t dropped = 0;
    if (m && rd_kafka_message_headers(m, &original) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        const char *name;
        const void *value;
        size_t size;
        for (size_t i = 0; rd_kafka_header_get_all(original, i, &name, &value, &size) == 0; i++) {
            size_t cost = header_cost(name, size);
            if (cost > room) {
                dropped++;
                continue;
            }
            room -= cost;
            rd_kafka_header_add(hdrs, name, -1, value, value ? (ssize_t)size : 0);
        }
    }
    rd_kafka_header_add(hdrs, "cdcpipe.source.topic", -1, source, -1);
    rd_kafka_header_add(hdrs, "cdcpipe.source.partition", -1, partition, -1);
    rd_kafka_header_add(hdrs, "cdcpipe.source.offset", -1, offset, -1);
    rd_kafka_header_add(hdrs, "cdcpipe.stage", -1, dl_stage_name(d->stage), -1);
    rd_kafka_header_add(hdrs, "cdcpipe.reason", -1, reason, -1);
    if (d->clickhouse_code) rd_kafka_header_add(hdrs, "cdcpipe.clickhouse.code", -1, code, -1);
    if (m && m->payload && value_len < m->len) {
        snprintf(number, sizeof number, "%zu", m->len);
        rd_kafka_header_add(hdrs, "cdcpipe.truncated.from", -1, number, -1);
    }
    if (m && m->key && key_len < m->key_len) {
        snprintf(number, sizeof number, "%zu", m->key_len);
        rd_kafka_header_add(hdrs, "cdcpipe.key.truncated.from", -1, number, -1);
    }
    if (dropped) {
        snprintf(number, sizeof number, "%zu", dropped);
        rd_kafka_header_add(hdrs, "cdcpipe.headers.dropped", -1, number, -1);
    }
    rd_kafka_resp_err_t e;
    do {
        e = rd_kafka_producev(
            s->producer, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(m ? m->key : NULL, key_len),
            RD_KAFKA_V_VALUE(m ? m->payload : NULL, value_len),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_END);
        if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) rd_kafka_poll(s->producer, 100);
    } while (e == RD_KAFKA_RESP_ERR__QUEUE_FULL);
    if (e) {
        rd_kafka_headers_destroy(hdrs);
        errbuf_set(err, errlen, "cannot queue a dead letter for %s: %s", topic,
                   rd_kafka_err2str(e));
        return -1;
    }
    rd_kafka_poll(s->producer, 0); /* serve delivery reports */
    return 0;
}

static int send_locked(dl_sink *s, const dead_letter *d, char *err, size_t errlen)
{
    char cut[MAX_REASON + 128];
    const char *reason = capped_reason(d->reason, cut, sizeof cut);
    log_error("%s [%d] offset %lld: %s error: %s%s", source_topic(d), (int)source_partition(d),
              (long long)source_offset(d), dl_stage_name(d->stage), reason,
              s->dry_run ? " (dry run: not written)" : " (dead-lettered)");
    s->sent++;
    if (s->dry_run) return 0;
    if (s->producer && produce(s, d, reason, err, errlen) != 0) return -1;
    if (s->fd >= 0 && write_file_line(s, d, reason, err, errlen) != 0) return -1;
    return 0;
}

int dl_deliver(dl_sink *s, metrics *n, const dead_letter *d)
{
    char err[512];
    metrics_dead_lettered(n, dl_stage_name(d->stage));
    if (dl_send(s, d, err, sizeof err) == 0) return 0;
    log_error("%s; stopping without committing", err);
    return -1;
}

int dl_send(dl_sink *s, const dead_letter *d, char *err, size_t errlen)
{
    pthread_mutex_lock(&s->lock);
    int rc = send_locked(s, d, err, errlen);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static int flush_locked(dl_sink *s, char *err, size_t errlen)
{
    if (s->fd >= 0 && fsync(s->fd) != 0) {
        errbuf_set(err, errlen, "cannot write dead-letter file %s: %s", s->file_path,
                   strerror(errno));
        return -1;
    }
    if (!s->producer) return 0;
    rd_kafka_resp_err_t e = rd_kafka_flush(s->producer, FLUSH_TIMEOUT_MS);
    if (e) {
        errbuf_set(err, errlen, "dead letters not acknowledged by Kafka within %d s: %s",
                   FLUSH_TIMEOUT_MS / 1000, rd_kafka_err2str(e));
        return -1;
    }
    if (s->failed) {
        errbuf_set(err, errlen, "%llu dead letter(s) could not be written to Kafka (%s)", s->failed,
                   s->last_error);
        s->failed = 0;
        return -1;
    }
    return 0;
}

int dl_flush(dl_sink *s, char *err, size_t errlen)
{
    pthread_mutex_lock(&s->lock);
    int rc = flush_locked(s, err, errlen);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

unsigned long long dl_count(dl_sink *s)
{
    pthread_mutex_lock(&s->lock);
    unsigned long long n = s->sent;
    pthread_mutex_unlock(&s->lock);
    return n;
}

void dl_close(dl_sink *s)
{
    if (!s) return;
    if (s->producer) {
        rd_kafka_flush(s->producer, 5000);
        rd_kafka_destroy(s->producer);
    }
    if (s->fd >= 0) close(s->fd);
    free(s->file_path);
    free(s->topic);
    strbuf_free(&s->line);
    pthread_mutex_destroy(&s->lock);
    free(s);
}
