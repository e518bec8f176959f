/*
 * kafka — the librdkafka consumer (see include/cdcpipe/kafka.h).
 */
#include "cdcpipe/kafka.h"

#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cdcpipe/clock.h"
#include "cdcpipe/log.h"
#include "cdcpipe/metrics.h"
#include "cdcpipe/xalloc.h"
#include "cdcpipe/errbuf.h"

#define STR_(x) #x
#define STR(x)  STR_(x)

struct kafka_consumer {
    rd_kafka_t *rk;
    partition_table *parts;
    start_position from;
    bool track_end;
    bool no_commit;
    kafka_rebalance_hooks hooks;
    char **missing; /* subscribed topics reported missing, until one of their partitions arrives */
    size_t nmissing;
    /* -t entries: names, and patterns (starting with ^, librdkafka's regular expressions) */
    char **names;
    size_t nnames;
    bool patterns;
    char *dlq_topic; /* --dlq-topic when fixed, else NULL */
    char **excluded; /* topics a pattern matched that are never consumed (logged once each) */
    size_t nexcluded;
    int64_t last_message_ms; /* clock_ms() when kafka_poll last returned a message */
    int64_t nudged_ms;       /* clock_ms() of the last wake_fetcher, 0 if none since a message */
    int64_t nudge_wait_ms;   /* how long the queue must stay empty before the next wake_fetcher */
    metrics *metrics;        /* kafka_set_metrics (before the workers start; NULL: none) */
    rd_kafka_topic_t **handles; /* the subscribed topics by name (hold_topics) */
    size_t nhandles;
};

/* Seconds between metadata refreshes (topic.metadata.refresh.interval.ms, cdcpipe's default): how
 * soon a topic created after the start, or a partition added to a topic, is consumed. */
#define METADATA_REFRESH_S 5

/* wake_fetcher's wait for an empty queue, at first and at most */
#define NUDGE_MIN_MS 20
#define NUDGE_MAX_MS 1000

/* Remembers that `topic` was reported missing; true the first time (the caller warns once). */
static bool note_missing(kafka_consumer *k, const char *topic)
{
    for (size_t i = 0; i < k->nmissing; i++)
        if (strcmp(k->missing[i], topic) == 0) return false;
    k->missing = xrealloc(k->missing, k->nmissing + 1, sizeof *k->missing);
    k->missing[k->nmissing++] = xstrdup(topic);
    return true;
}

/* A partition of `topic` was assigned: if it had been reported missing, say it is here now. */
static void note_present(kafka_consumer *k, const char *topic)
{
    for (size_t i = 0; i < k->nmissing; i++) {
        if (strcmp(k->missing[i], topic) != 0) continue;
        log_info("topic %s exists now; consuming it", topic);
        free(k->missing[i]);
        k->missing[i] = k->missing[--k->nmissing];
        return;
    }
}

/* Whether a topic a pattern matched is cdcpipe's own dead-letter topic, which is never consumed
 * back: "<topic>.dlq" (the default --dlq-topic) or the fixed --dlq-topic. A topic named in -t
 * itself is always consumed (to re-process dead letters on purpose). Logged once per topic. */
static bool excluded(kafka_consumer *k, const char *topic)
{
    if (!k->patterns) return false;
    for (size_t i = 0; i < k->nnames; i++)
        if (strcmp(k->names[i], topic) == 0) return false;
    size_t len = strlen(topic);
    bool dlq = (len > 4 && strcmp(topic + len - 4, ".dlq") == 0) ||
               (k->dlq_topic && strcmp(k->dlq_topic, topic) == 0);
    if (!dlq) return false;
    for (size_t i = 0; i < k->nexcluded; i++)
        if (strcmp(k->excluded[i], topic) == 0) return true;
    k->excluded = xrealloc(k->excluded, k->nexcluded + 1, sizeof *k->excluded);
    k->excluded[k->nexcluded++] = xstrdup(topic);
    log_info("topic %s matches the -t pattern but holds dead letters: never consumed (name it "
             "in -t to consume it on purpose)",
             topic);
    return true;
}

/* A copy of list without the partitions of excluded topics (the group assigned them to this
 * member; they are simply never fetched). */
static rd_kafka_topic_partition_list_t *
without_excluded(kafka_consumer *k, const rd_kafka_topic_partition_list_t *list)
{
    rd_kafka_topic_partition_list_t *out = rd_kafka_topic_partition_list_new(list->cnt + 1);
    for (int i = 0; i < list->cnt; i++)
        if (!excluded(k, list->elems[i].topic))
            rd_kafka_topic_partition_list_add(out, list->elems[i].topic, list->elems[i].partition)
                ->offset = list->elems[i].offset;
    return out;
}

/* Applies --from to partitions this process has not owned before; marks them assigned. */
static void prepare_assignment(kafka_consumer *k, rd_kafka_topic_partition_list_t *list)
{
    rd_kafka_topic_partition_list_t *by_time = NULL;
    for (int i = 0; i < list->cnt; i++) {
        rd_kafka_topic_partition_t *tp = &list->elems[i];
        bool known = partitions_find(k->parts, tp->topic, tp->partition, false) != NULL;
        partition_state *p = partitions_find(k->parts, tp->topic, tp->partition, true);
        p->assigned = true;
        p->paused = false;
        p->eof_at = -1;
        p->dispatched = -1;
        atomic_store(&p->handled, -1); /* the worker has handled nothing of this assignment */
        p->end_at_assign = -1;         /* learnt from the first fetch: learn_end_offsets */
        if (known) continue;           /* after a rebalance, continue from the committed offset */
        switch (k->from.kind) {
        case START_COMMITTED:
            break; /* auto.offset.reset=earliest covers "no committed offset" */
        case START_BEGINNING:
            tp->offset = RD_KAFKA_OFFSET_BEGINNING;
            break;
        case START_END:
            tp->offset = RD_KAFKA_OFFSET_END;
            break;
        case START_TIMESTAMP:
            if (!by_time) by_time = rd_kafka_topic_partition_list_new(list->cnt);
            rd_kafka_topic_partition_list_add(by_time, tp->topic, tp->partition)->offset =
                k->from.timestamp_ms;
            break;
        }
    }
    if (!by_time) return;
    rd_kafka_resp_err_t e = rd_kafka_offsets_for_times(k->rk, by_time, 10000);
    for (int i = 0; i < by_time->cnt; i++) {
        rd_kafka_topic_partition_t *found = &by_time->elems[i];
        rd_kafka_topic_partition_t *tp =
            rd_kafka_topic_partition_list_find(list, found->topic, found->partition);
        if (e || found->err) {
            log_error("cannot find offsets for --from time in %s [%d]: %s; starting from the "
                      "committed offset",
                      found->topic, (int)found->partition, rd_kafka_err2str(e ? e : found->err));
            continue;
        }
        /* -1: no event at or after that time: start at the end. */
        tp->offset = found->offset >= 0 ? found->offset : RD_KAFKA_OFFSET_END;
        log_info("%s [%d]: starting at offset %lld (--from)", tp->topic, (int)tp->partition,
                 (long long)found->offset);
    }
    rd_kafka_topic_partition_list_destroy(by_time);
}

/* The table's states of the partitions in list (created when new). The caller frees the array. */
static partition_state **states_of(kafka_consumer *k, const rd_kafka_topic_partition_list_t *list)
{
    partition_state **ps = xcalloc((size_t)list->cnt + 1, sizeof *ps);
    for (int i = 0; i < list->cnt; i++)
        ps[i] = partitions_find(k->parts, list->elems[i].topic, list->elems[i].partition, true);
    return ps;
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *given, void *opaque)
{
    kafka_consumer *k = opaque;
    rd_kafka_topic_partition_list_t *list = without_excluded(k, given);
    bool cooperative = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    rd_kafka_error_t *error = NULL;
    rd_kafka_resp_err_t ret = RD_KAFKA_RESP_ERR_NO_ERROR;

    size_t n = (size_t)list->cnt;
    partition_state **ps = NULL;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        prepare_assignment(k, list); /* first: it tells partitions owned before from new ones */
        ps = states_of(k, list);
        for (int i = 0; i < list->cnt; i++) {
            note_present(k, list->elems[i].topic);
            log_info("assigned %s [%d]", list->elems[i].topic, (int)list->elems[i].partition);
            metrics_partition_assigned(k->metrics, list->elems[i].topic, list->elems[i].partition,
                                       true);
        }
        /* workers learn of them before any of their messages is polled (after this callback) */
        k->hooks.assigned(k->hooks.ud, ps, n);
        if (cooperative)
            error = rd_kafka_incremental_assign(rk, list);
        else
            ret = rd_kafka_assign(rk, list);
        /* A worker retrying an insert has its partitions paused: partitions gained meanwhile
         * wait too (the pipeline marked them paused). */
        if (!error && !ret) {
            for (size_t i = 0; i < n; i++)
                if (ps[i]->paused) {
                    ps[i]->paused = false;
                    kafka_pause(k, &ps[i], 1, true);
                }
        }
    } else {
        ps = states_of(k, list);
        /* Everything consumed so far is flushed and committed while we still own it. */
        k->hooks.revoking(k->hooks.ud, ps, n);
        /* librdkafka keeps a partition's pause across assignments: never hand one over paused. */
        kafka_pause(k, ps, n, false);
        for (size_t i = 0; i < n; i++) {
            ps[i]->assigned = false;
            log_info("revoked %s [%d]", ps[i]->topic, (int)ps[i]->partition);
            metrics_partition_assigned(k->metrics, ps[i]->topic, ps[i]->partition, false);
        }
        if (cooperative)
            error = rd_kafka_incremental_unassign(rk, list);
        else
            ret = rd_kafka_assign(rk, NULL);
    }
    free(ps);
    rd_kafka_topic_partition_list_destroy(list);
    if (error) {
        log_error("rebalance: %s", rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
    } else if (ret) {
        log_error("rebalance: %s", rd_kafka_err2str(ret));
    }
}

static void route_log(const rd_kafka_t *rk, int level, const char *facility, const char *line,
                      bool helper)
{
    /* syslog levels: 0-3 errors, 4 warnings, 5-6 notices and info, 7 debug */
    log_level ours = level <= 3   ? LOG_ERROR
                     : level == 4 ? LOG_WARN
                     : level <= 6 ? LOG_INFO
                                  : LOG_DEBUG;
    if (helper && strcmp(facility, "CONFWARN") == 0) ours = LOG_DEBUG;
    log_msg(ours, "librdkafka %s %s: %s", rd_kafka_name(rk), facility, line);
}

static void log_main(const rd_kafka_t *rk, int level, const char *facility, const char *line)
{
    route_log(rk, level, facility, line, false);
}

static void log_helper(const rd_kafka_t *rk, int level, const char *facility, const char *line)
{
    route_log(rk, level, facility, line, true);
}

void kafka_route_logs(rd_kafka_conf_t *conf, bool helper)
{
    rd_kafka_conf_set_log_cb(conf, helper ? log_helper : log_main);
}

static int set_property(rd_kafka_conf_t *conf, const char *name, const char *value,
                        const char *origin, char *err, size_t errlen)
{
    char errstr[512];
    if (rd_kafka_conf_set(conf, name, value, errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
        errbuf_set(err, errlen, "Kafka property %s (%s): %s", name, origin, errstr);
        return -1;
    }
    return 0;
}

static void free_topic_lists(kafka_consumer *k)
{
    for (size_t i = 0; i < k->nnames; i++)
        free(k->names[i]);
    free(k->names);
    for (size_t i = 0; i < k->nexcluded; i++)
        free(k->excluded[i]);
    free(k->excluded);
    free(k->dlq_topic);
}

/* A -t pattern ("^…"): checked as a POSIX extended regular expression (librdkafka's own engine
 * takes the same common syntax). With --once (track_end) the brokers' topics are listed once and
 * a pattern that matches none of them (dead-letter topics aside) is an error: the run could never
 * catch up. Returns 0, or -1 with err. */
static int check_pattern(kafka_consumer *k, const char *pattern, bool track_end, char *err,
                         size_t errlen)
{
    regex_t re;
    int rc = regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB);
    if (rc != 0) {
        char why[256];
        regerror(rc, &re, why, sizeof why);
        errbuf_set(err, errlen,
                   "-t %s: not a regular expression (%s); a topic entry starting with ^ is a "
                   "pattern",
                   pattern, why);
        return -1;
    }
    if (!track_end) {
        regfree(&re);
        return 0;
    }
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e = rd_kafka_metadata(k->rk, 1, NULL, &md, 10000);
    bool any = false;
    if (!e) {
        for (int i = 0; i < md->topic_cnt && !any; i++) {
            const char *name = md->topics[i].topic;
            size_t len = strlen(name);
            bool dlq = (len > 4 && strcmp(name + len - 4, ".dlq") == 0) ||
                       (k->dlq_topic && strcmp(k->dlq_topic, name) == 0);
            any = !dlq && strncmp(name, "__", 2) != 0 && regexec(&re, name, 0, NULL, 0) == 0;
        }
        rd_kafka_metadata_destroy(md);
    }
    regfree(&re);
    if (e) {
        errbuf_set(err, errlen, "--once with -t %s: cannot list the topics: %s", pattern,
                   rd_kafka_err2str(e));
        return -1;
    }
    if (!any) {
        errbuf_set(err, errlen,
                   "--once with -t %s: the pattern matches no topic on the brokers (dead-letter "
                   "topics aside), so there is nothing to catch up with",
                   pattern);
        return -1;
    }
    return 0;
}

/* Holds a topic handle per subscribed topic name (not the ^regex ones) for the consumer's life.
 * A handle makes librdkafka apply every metadata answer about the topic to its partitions, so
 * each partition knows its leader before it is assigned. Without one the partitions are created
 * by the assignment itself; when --from asks for a logical offset (beginning, end) before the
 * leader is attached, librdkafka 2.0.2 retries the offset query after a fixed 500 ms
 * (rd_kafka_toppar_offset_request: "no current leader for partition"), which half the starts
 * ran into: half a second before the first event, whatever the topic holds. */
static void hold_topics(kafka_consumer *k, const rd_kafka_topic_partition_list_t *topics)
{
    k->handles = xcalloc((size_t)topics->cnt + 1, sizeof *k->handles);
    for (int i = 0; i < topics->cnt; i++)
        if (topics->elems[i].topic[0] != '^') {
            rd_kafka_topic_t *rkt = rd_kafka_topic_new(k->rk, topics->elems[i].topic, NULL);
            if (rkt) k->handles[k->nhandles++] = rkt;
        }
}

kafka_consumer *kafka_open(const config *cfg, const start_position *from, bool track_end,
                           partition_table *parts, kafka_rebalance_hooks hooks, char *err,
                           size_t errlen)
{
    kafka_consumer *k = xcalloc(1, sizeof *k);
    k->parts = parts;
    k->from = *from;
    k->track_end = track_end;
    k->no_commit = cfg->dry_run;
    k->hooks = hooks;
    k->nudge_wait_ms = NUDGE_MIN_MS;

    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    struct {
        const char *name, *value;
    } defaults[] = {
        {"bootstrap.servers", cfg->brokers},
        {"group.id", cfg->group},
        {"enable.auto.commit", "false"},
        {"enable.auto.offset.store", "false"},
        {"auto.offset.reset", from->kind == START_END ? "latest" : "earliest"},
        {"enable.partition.eof", "true"},
        {"client.id", "cdcpipe"},
        {"log_level", log_get_level() >= LOG_DEBUG ? "7" : "4"},
        /* While ClickHouse is down the loop keeps polling with its partitions paused, but one
         * insert of a big batch into a slow server, or the flush before a revoke, does not
         * poll; heartbeats (a background thread) keep the membership, and this keeps such a
         * stall from costing the assignment. Pass -X max.poll.interval.ms=... to change it. */
        {"max.poll.interval.ms", "86400000"},
        /* The prefetch queue, the main term of cdcpipe's memory (README: Memory). librdkafka's
         * 64 MiB is needed only because its fetcher idles a second when the queue was full;
         * wake_fetcher ends that idling, and 12 MiB keeps a backlog draining at full speed (1 M
         * bare events, --workers 1, median of 3: 5.03 s at 12 MiB, 4.95 s at 16 MiB, 5.45 s at
         * 8 MiB; peak RSS 49.5, 55.7, 42.8 MB). One fetch response may add up to
         * fetch.max.bytes on top. */
        {"queued.max.messages.kbytes", "12288"},
        {"fetch.max.bytes", "16777216"},
        /* A topic created after the start (Debezium creates a table's topic at its first change)
         * and partitions added to a topic are found at the next metadata refresh: every 5 s
         * instead of librdkafka's 5 min. One small metadata request per refresh. */
        {"topic.metadata.refresh.interval.ms", STR(METADATA_REFRESH_S) "000"},
        /* A member that crashed (kill -9, a lost host) holds its partitions until its session
         * times out; librdkafka's 45 s default stalls a restarted instance that long. 6 s is the
         * brokers' default minimum (group.min.session.timeout.ms). Heartbeats come from
         * librdkafka's own thread, so long inserts or Lua work never cost the membership; only a
         * process frozen (or a network cut) for 6 s does, and then the group rebalances. Clean
         * shutdowns leave the group at once whatever this says. */
        {"session.timeout.ms", "6000"},
        {"heartbeat.interval.ms", "2000"},
    };
    for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i++)
        if (set_property(conf, defaults[i].name, defaults[i].value, "cdcpipe default", err,
                         errlen) != 0)
            goto fail;
    for (size_t i = 0; i < cfg->kafka_count; i++)
        if (set_property(conf, cfg->kafka_names[i], cfg->kafka_values[i], "-X", err, errlen) != 0)
            goto fail;
    rd_kafka_conf_set_opaque(conf, k);
    rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
    kafka_route_logs(conf, false);

    char errstr[512];
    k->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
    if (!k->rk) {
        errbuf_set(err, errlen, "cannot create the Kafka consumer: %s", errstr);
        goto fail;
    }
    conf = NULL; /* owned by rk now */
    rd_kafka_poll_set_consumer(k->rk);

    if (cfg->dlq_topic[0] && strcmp(cfg->dlq_topic, "none") != 0)
        k->dlq_topic = xstrdup(cfg->dlq_topic);
    rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(4);
    char *list = xstrdup(cfg->topics), *save = NULL;
    for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        while (*t == ' ')
            t++;
        if (!*t) continue;
        if (t[0] == '^') {
            if (check_pattern(k, t, track_end, err, errlen) != 0) {
                free(list);
                rd_kafka_topic_partition_list_destroy(topics);
                goto fail;
            }
            k->patterns = true;
        } else {
            k->names = xrealloc(k->names, k->nnames + 1, sizeof *k->names);
            k->names[k->nnames++] = xstrdup(t);
        }
        rd_kafka_topic_partition_list_add(topics, t, RD_KAFKA_PARTITION_UA);
    }
    free(list);
    hold_topics(k, topics);
    rd_kafka_resp_err_t e = rd_kafka_subscribe(k->rk, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (e) {
        errbuf_set(err, errlen, "cannot subscribe to %s: %s", cfg->topics, rd_kafka_err2str(e));
        goto fail;
    }
    return k;
fail:
    if (conf) rd_kafka_conf_destroy(conf);
    for (size_t i = 0; i < k->nhandles; i++)
        rd_kafka_topic_destroy(k->handles[i]);
    free(k->handles);
    if (k->rk) rd_kafka_destroy(k->rk);
    free_topic_lists(k);
    free(k);
    return NULL;
}

/* --once: records each assigned partition's end offset the first time librdkafka knows it (from a
 * fetch response; no request of our own). A blocking watermark query here would stall every
 * partition while one leader is unreachable (librdkafka 2.0.2 ignores its timeout then). */
static void learn_end_offsets(kafka_consumer *k)
{
    for (size_t i = 0; i < k->parts->count; i++) {
        partition_state *p = k->parts->items[i];
        int64_t low, high;
        if (!p->assigned || p->end_at_assign >= 0) continue;
        if (rd_kafka_get_watermark_offsets(k->rk, p->topic, p->partition, &low, &high) ==
                RD_KAFKA_RESP_ERR_NO_ERROR &&
            high >= 0)
            p->end_at_assign = high;
    }
}

/* The fetcher sleeps a whole second whenever the prefetch queue was full at its last look
 * (librdkafka before 2.2 has no fetch.queue.backoff.ms), so a queue smaller than a second of
 * consumption starves the pipeline while a backlog waits on the broker. When the queue has been
 * empty for nudge_wait_ms while some assigned partition is behind its high watermark, a seek to
 * the current position (nothing is queued: nothing is lost) makes the fetcher start at once. The
 * wait doubles after each nudge that brought nothing (a slow network: the fetch was in flight)
 * and starts again from the minimum once messages arrive. */
static void wake_fetcher(kafka_consumer *k)
{
    int64_t now = clock_ms();
    if (now - k->last_message_ms < k->nudge_wait_ms || now - k->nudged_ms < k->nudge_wait_ms)
        return;
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(4);
    for (size_t i = 0; i < k->parts->count; i++)
        if (k->parts->items[i]->assigned && !k->parts->items[i]->paused)
            rd_kafka_topic_partition_list_add(list, k->parts->items[i]->topic,
                                              k->parts->items[i]->partition);
    rd_kafka_topic_partition_list_t *behind = rd_kafka_topic_partition_list_new(4);
    if (list->cnt > 0 && rd_kafka_position(k->rk, list) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        for (int i = 0; i < list->cnt; i++) {
            rd_kafka_topic_partition_t *tp = &list->elems[i];
            int64_t low, high;
            if (tp->offset >= 0 &&
                rd_kafka_get_watermark_offsets(k->rk, tp->topic, tp->partition, &low, &high) ==
                    RD_KAFKA_RESP_ERR_NO_ERROR &&
                high > tp->offset)
                rd_kafka_topic_partition_list_add(behind, tp->topic, tp->partition)->offset =
                    tp->offset;
        }
    }
    if (behind->cnt > 0) {
        rd_kafka_error_t *error = rd_kafka_seek_partitions(k->rk, behind, 0); /* asynchronous */
        if (error) {
            log_debug("waking the fetcher: %s", rd_kafka_error_string(error));
            rd_kafka_error_destroy(error);
        }
        if (k->nudged_ms && k->nudge_wait_ms < NUDGE_MAX_MS) k->nudge_wait_ms *= 2;
        k->nudged_ms = now;
    }
    rd_kafka_topic_partition_list_destroy(behind);
    rd_kafka_topic_partition_list_destroy(list);
}

rd_kafka_message_t *kafka_poll(kafka_consumer *k, int timeout_ms, bool *fatal, char *err,
                               size_t errlen)
{
    *fatal = false;
    if (k->track_end) learn_end_offsets(k);
    rd_kafka_message_t *m = rd_kafka_consumer_poll(k->rk, 0);
    if (!m) {
        wake_fetcher(k);
        m = rd_kafka_consumer_poll(k->rk, timeout_ms < NUDGE_MIN_MS ? timeout_ms : NUDGE_MIN_MS);
    }
    if (m && !m->err) {
        k->last_message_ms = clock_ms();
        k->nudged_ms = 0;
        k->nudge_wait_ms = NUDGE_MIN_MS;
    }
    if (!m || !m->err) return m;
    const char *topic = m->rkt ? rd_kafka_topic_name(m->rkt) : "";
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        partition_state *p = partitions_find(k->parts, topic, m->partition, false);
        if (p && p->assigned) p->eof_at = m->offset;
        log_debug("%s [%d]: reached the end at offset %lld", topic, (int)m->partition,
                  (long long)m->offset);
    } else if (m->err == RD_KAFKA_RESP_ERR__FATAL) {
        char reason[512];
        rd_kafka_fatal_error(k->rk, reason, sizeof reason);
        errbuf_set(err, errlen, "Kafka consumer failed: %s", reason);
        *fatal = true;
    } else if (m->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
               m->err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC) {
        const char *name = topic[0] ? topic : rd_kafka_message_errstr(m);
        errbuf_set(err, errlen, "topic %s does not exist on the brokers (check -t/CDCPIPE_TOPICS)",
                   name);
        if (k->track_end)
            *fatal = true; /* --once cannot ever finish */
        else if (note_missing(k, name))
            log_warn("%s; waiting for it without a time limit: the brokers are asked again "
                     "every %d s and it is consumed as soon as it is created",
                     err, METADATA_REFRESH_S);
    } else {
        log_warn("Kafka: %s%s%s", topic, topic[0] ? ": " : "", rd_kafka_message_errstr(m));
    }
    rd_kafka_message_destroy(m);
    return NULL;
}

int kafka_commit(kafka_consumer *k, const kafka_commit_point *pts, size_t n)
{
    if (k->no_commit) return 0;
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(4);
    partition_state **committing = xcalloc(n + 1, sizeof *committing);
    for (size_t i = 0; i < n; i++) {
        partition_state *p = pts[i].ps;
        if (pts[i].next >= 0 && pts[i].next != p->committed) {
            committing[list->cnt] = p;
            rd_kafka_topic_partition_list_add(list, p->topic, p->partition)->offset = pts[i].next;
        }
    }
    int rc = 0;
    if (list->cnt > 0) {
        rd_kafka_resp_err_t e = rd_kafka_commit(k->rk, list, 0);
        if (e) {
            log_warn("committing offsets failed: %s (the events will be consumed again)",
                     rd_kafka_err2str(e));
            rc = -1;
        } else {
            for (int i = 0; i < list->cnt; i++) {
                partition_state *p = committing[i]; /* librdkafka keeps the list's order */
                CDC_ASSERT(p->partition == list->elems[i].partition);
                if (list->elems[i].err) {
                    log_warn("committing %s [%d] failed: %s", p->topic, (int)p->partition,
                             rd_kafka_err2str(list->elems[i].err));
                    rc = -1;
                } else {
                    p->committed = list->elems[i].offset;
                    log_debug("committed %s [%d] at %lld", p->topic, (int)p->partition,
                              (long long)p->committed);
                }
            }
        }
    }
    if (list->cnt > 0) metrics_commit(k->metrics, rc == 0); /* atomic: from any worker */
    free(committing);
    rd_kafka_topic_partition_list_destroy(list);
    return rc;
}

void kafka_pause(kafka_consumer *k, partition_state *const *ps, size_t n, bool pause)
{
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(4);
    for (size_t i = 0; i < n; i++) {
        if (!ps[i]->assigned || ps[i]->paused == pause) continue;
        rd_kafka_topic_partition_list_add(list, ps[i]->topic, ps[i]->partition);
        ps[i]->paused = pause;
    }
    if (list->cnt > 0) {
        rd_kafka_resp_err_t e = pause ? rd_kafka_pause_partitions(k->rk, list)
                                      : rd_kafka_resume_partitions(k->rk, list);
        if (e)
            log_warn("%s the partitions: %s", pause ? "pausing" : "resuming", rd_kafka_err2str(e));
    }
    rd_kafka_topic_partition_list_destroy(list);
}

int kafka_rewind(kafka_consumer *k, partition_state *ps, int64_t offset)
{
    /* first: resuming restarts the fetch at the last message returned */
    kafka_pause(k, &ps, 1, false);
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(list, ps->topic, ps->partition)->offset = offset;
    int rc = 0;
    /* With a timeout the seek also discards messages fetched from the old position. */
    rd_kafka_error_t *error = rd_kafka_seek_partitions(k->rk, list, 10000);
    rd_kafka_topic_partition_t *tp = &list->elems[0];
    if (error) {
        log_error("rewinding %s [%d] to offset %lld: %s", ps->topic, (int)ps->partition,
                  (long long)offset, rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
        rc = -1;
    } else if (tp->err) {
        log_error("rewinding %s [%d] to offset %lld: %s", ps->topic, (int)ps->partition,
                  (long long)offset, rd_kafka_err2str(tp->err));
        rc = -1;
    } else {
        log_info("%s [%d]: consuming again from offset %lld", ps->topic, (int)ps->partition,
                 (long long)offset);
    }
    rd_kafka_topic_partition_list_destroy(list);
    return rc;
}

void kafka_set_metrics(kafka_consumer *k, metrics *m)
{
    k->metrics = m;
}

void kafka_close(kafka_consumer *k)
{
    if (!k) return;
    rd_kafka_resp_err_t e = rd_kafka_consumer_close(k->rk);
    if (e) log_warn("leaving the consumer group: %s", rd_kafka_err2str(e));
    for (size_t i = 0; i < k->nhandles; i++)
        rd_kafka_topic_destroy(k->handles[i]);
    free(k->handles);
    rd_kafka_destroy(k->rk);
    for (size_t i = 0; i < k->nmissing; i++)
        free(k->missing[i]);
    free(k->missing);
    free_topic_lists(k);
    free(k);
}
