/*
 * lag — committed offsets, watermarks and lag, for /metrics and `cdcpipe lag` (see
 * include/cdcpipe/lag.h).
 */
#include "cdcpipe/lag.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cdcpipe/clock.h"
#include "cdcpipe/errbuf.h"
#include "cdcpipe/kafka.h"
#include "cdcpipe/log.h"
#include "cdcpipe/xalloc.h"

struct lag_monitor {
    rd_kafka_t *rk;
    metrics *m;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stop;
};

rd_kafka_t *lag_client_open(const config *cfg, char *err, size_t errlen)
{
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    /* -X settings (security, SASL, ...) first; ours must not be overridden */
    for (size_t i = 0; i < cfg->kafka_count; i++)
        rd_kafka_conf_set(conf, cfg->kafka_names[i], cfg->kafka_values[i], errstr, sizeof errstr);
    const char *names[] = {"bootstrap.servers", "group.id", "enable.auto.commit", "client.id"};
    const char *values[] = {cfg->brokers, cfg->group, "false", "cdcpipe-lag"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (rd_kafka_conf_set(conf, names[i], values[i], errstr, sizeof errstr)) {
            errbuf_set(err, errlen, "lag client %s: %s", names[i], errstr);
            rd_kafka_conf_destroy(conf);
            return NULL;
        }
    kafka_route_logs(conf, true);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
    if (!rk) errbuf_set(err, errlen, "cannot create the lag client: %s", errstr);
    return rk;
}

int lag_query(rd_kafka_t *rk, rd_kafka_topic_partition_list_t *list, int64_t *low, int64_t *high,
              int timeout_ms, char *err, size_t errlen)
{
    for (int i = 0; i < list->cnt; i++) {
        rd_kafka_topic_partition_t *tp = &list->elems[i];
        low[i] = high[i] = -1;
        rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(rk, tp->topic, tp->partition,
                                                                 &low[i], &high[i], timeout_ms);
        if (e) low[i] = high[i] = -1;
    }
    rd_kafka_resp_err_t e = rd_kafka_committed(rk, list, timeout_ms);
    if (e) {
        errbuf_set(err, errlen, "cannot read the group's committed offsets: %s",
                   rd_kafka_err2str(e));
        return -1;
    }
    return 0;
}

int64_t lag_of(int64_t committed, int64_t low, int64_t high)
{
    if (high < 0) return -1;
    int64_t from = committed >= 0 ? committed : low;
    if (from < 0) return -1;
    return high > from ? high - from : 0;
}

static void add_partition(void *ud, const char *topic, int32_t partition)
{
    rd_kafka_topic_partition_list_add(ud, topic, partition);
}

/* @locality: the monitor's own thread. */
static void *monitor(void *arg)
{
    lag_monitor *lm = arg;
    char err[512];
    pthread_mutex_lock(&lm->lock);
    while (!lm->stop) {
        pthread_mutex_unlock(&lm->lock);
        rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(8);
        metrics_each_assigned(lm->m, add_partition, list);
        if (list->cnt > 0) {
            int64_t *low = xcalloc((size_t)list->cnt, sizeof *low);
            int64_t *high = xcalloc((size_t)list->cnt, sizeof *high);
            if (lag_query(lm->rk, list, low, high, LAG_TIMEOUT_MS, err, sizeof err) == 0) {
                for (int i = 0; i < list->cnt; i++) {
                    rd_kafka_topic_partition_t *tp = &list->elems[i];
                    int64_t committed = tp->err ? -1 : tp->offset < 0 ? -1 : tp->offset;
                    int64_t lag = lag_of(committed, low[i], high[i]);
                    if (lag >= 0)
                        metrics_set_lag(lm->m, tp->topic, tp->partition, committed, high[i], lag);
                }
            } else {
                log_debug("lag monitor: %s", err);
            }
            free(low);
            free(high);
        }
        rd_kafka_topic_partition_list_destroy(list);
        pthread_mutex_lock(&lm->lock);
        struct timespec until = clock_deadline(LAG_INTERVAL_MS);
        if (!lm->stop) pthread_cond_timedwait(&lm->wake, &lm->lock, &until);
    }
    pthread_mutex_unlock(&lm->lock);
    return NULL;
}

lag_monitor *lag_monitor_start(const config *cfg, metrics *m, char *err, size_t errlen)
{
    rd_kafka_t *rk = lag_client_open(cfg, err, errlen);
    if (!rk) return NULL;
    lag_monitor *lm = xcalloc(1, sizeof *lm);
    lm->rk = rk;
    lm->m = m;
    pthread_mutex_init(&lm->lock, NULL);
    pthread_cond_init(&lm->wake, NULL);
    if (pthread_create(&lm->thread, NULL, monitor, lm) != 0) {
        errbuf_set(err, errlen, "cannot start the lag monitor thread");
        rd_kafka_destroy(rk);
        free(lm);
        return NULL;
    }
    return lm;
}

void lag_monitor_stop(lag_monitor *lm)
{
    if (!lm) return;
    pthread_mutex_lock(&lm->lock);
    lm->stop = true;
    pthread_cond_signal(&lm->wake);
    pthread_mutex_unlock(&lm->lock);
    pthread_join(lm->thread, NULL);
    pthread_cond_destroy(&lm->wake);
    pthread_mutex_destroy(&lm->lock);
    rd_kafka_destroy(lm->rk);
    free(lm);
}

/* ---- cdcpipe lag ---- */

/* Reads a big-endian int16/int32/string of the consumer protocol's assignment at *p. */
static bool read_int(const unsigned char **p, const unsigned char *end, int bytes, int32_t *out)
{
    if (end - *p < bytes) return false;
    uint32_t v = 0;
    for (int i = 0; i < bytes; i++)
        v = v << 8 | (*p)[i];
    *p += bytes;
    *out = bytes == 2 ? (int16_t)v : (int32_t)v;
    return true;
}

/* Prints a member's assignment (Kafka's ConsumerProtocolAssignment) as "topic[0,1] ...". */
static void print_assignment(FILE *out, const void *data, int size)
{
    const unsigned char *p = data, *end = p + (size > 0 ? size : 0);
    int32_t version, ntopics;
    if (!read_int(&p, end, 2, &version) || !read_int(&p, end, 4, &ntopics) || ntopics < 0) {
        fputs(" (none)", out);
        return;
    }
    for (int32_t t = 0; t < ntopics; t++) {
        int32_t len, nparts, part;
        if (!read_int(&p, end, 2, &len) || len < 0 || end - p < len) return;
        fprintf(out, " %.*s[", (int)len, (const char *)p);
        p += len;
        if (!read_int(&p, end, 4, &nparts)) return;
        for (int32_t i = 0; i < nparts && read_int(&p, end, 4, &part); i++)
            fprintf(out, "%s%d", i ? "," : "", (int)part);
        fputc(']', out);
    }
}

int command_lag(const config *cfg, FILE *out)
{
    char err[512];
    rd_kafka_t *rk = lag_client_open(cfg, err, sizeof err);
    if (!rk) {
        log_error("%s", err);
        return 1;
    }
    int rc = 0;
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(8);
    char *topics = xstrdup(cfg->topics), *save = NULL;
    for (char *t = strtok_r(topics, ",", &save); t && rc == 0; t = strtok_r(NULL, ",", &save)) {
        while (*t == ' ')
            t++;
        if (!*t) continue;
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, t, NULL);
        const rd_kafka_metadata_t *md = NULL;
        rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, rkt, &md, LAG_TIMEOUT_MS);
        if (e || md->topic_cnt != 1 || md->topics[0].err) {
            log_error("cannot read the partitions of topic %s from %s: %s", t, cfg->brokers,
                      rd_kafka_err2str(e               ? e
                                       : md->topic_cnt ? md->topics[0].err
                                                       : e));
            rc = 1;
        } else {
            for (int i = 0; i < md->topics[0].partition_cnt; i++)
                rd_kafka_topic_partition_list_add(list, t, md->topics[0].partitions[i].id);
        }
        if (md) rd_kafka_metadata_destroy(md);
        rd_kafka_topic_destroy(rkt);
    }
    free(topics);
    if (rc == 0) {
        rd_kafka_topic_partition_list_sort(list, NULL, NULL);
        int64_t *low = xcalloc((size_t)list->cnt + 1, sizeof *low);
        int64_t *high = xcalloc((size_t)list->cnt + 1, sizeof *high);
        if (lag_query(rk, list, low, high, LAG_TIMEOUT_MS, err, sizeof err) != 0) {
            log_error("%s (group %s at %s)", err, cfg->group, cfg->brokers);
            rc = 1;
        } else {
            int64_t total = 0;
            fprintf(out, "%-32s %9s %14s %14s %12s\n", "TOPIC", "PARTITION", "COMMITTED", "END",
                    "LAG");
            for (int i = 0; i < list->cnt; i++) {
                rd_kafka_topic_partition_t *tp = &list->elems[i];
                int64_t committed = tp->offset >= 0 ? tp->offset : -1;
                int64_t lag = lag_of(committed, low[i], high[i]);
                char c[24] = "-", h[24] = "?", l[24] = "?";
                if (committed >= 0) snprintf(c, sizeof c, "%lld", (long long)committed);
                if (high[i] >= 0) snprintf(h, sizeof h, "%lld", (long long)high[i]);
                if (lag >= 0) snprintf(l, sizeof l, "%lld", (long long)lag);
                if (lag > 0) total += lag;
                fprintf(out, "%-32s %9d %14s %14s %12s\n", tp->topic, (int)tp->partition, c, h, l);
            }
            fprintf(out, "total lag %lld of group %s\n", (long long)total, cfg->group);
        }
        free(low);
        free(high);
    }
    rd_kafka_topic_partition_list_destroy(list);
    const struct rd_kafka_group_list *groups = NULL;
    if (rc == 0 && rd_kafka_list_groups(rk, cfg->group, &groups, LAG_TIMEOUT_MS) == 0 &&
        groups->group_cnt == 1) {
        const struct rd_kafka_group_info *g = &groups->groups[0];
        fprintf(out, "group %s: %s, %d member%s\n", g->group, g->state[0] ? g->state : "unknown",
                g->member_cnt, g->member_cnt == 1 ? "" : "s");
        for (int i = 0; i < g->member_cnt; i++) {
            const struct rd_kafka_group_member_info *mi = &g->members[i];
            fprintf(out, "  %s %s %s:", mi->client_id, mi->client_host, mi->member_id);
            print_assignment(out, mi->member_assignment, mi->member_assignment_size);
            fputc('\n', out);
        }
    } else if (rc == 0) {
        fprintf(out, "group %s: members unknown (the brokers did not describe it)\n", cfg->group);
    }
    if (groups) rd_kafka_group_list_destroy(groups);
    rd_kafka_destroy(rk);
    return rc;
}
