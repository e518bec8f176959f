/*
 * group_offsets — a group's offsets from outside it (see include/cdcpipe/group_offsets.h).
 */
#include "cdcpipe/group_offsets.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cdcpipe/errbuf.h"
#include "cdcpipe/kafka.h"
#include "cdcpipe/xalloc.h"

#define TIMEOUT_MS 10000

static void add(group_offsets *g, const char *topic, int32_t partition)
{
    g->parts = xrealloc(g->parts, g->count + 1, sizeof *g->parts);
    g->parts[g->count++] = (group_partition){xstrdup(topic), partition, -1, -1, -1};
}

int group_offsets_open(group_offsets *g, const config *cfg, char *err, size_t errlen)
{
    memset(g, 0, sizeof *g);
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    kafka_route_logs(conf, true);
    const char *names[] = {"bootstrap.servers", "group.id", "enable.auto.commit"};
    const char *values[] = {cfg->brokers, cfg->group, "false"};
    for (size_t i = 0; i < 3; i++)
        rd_kafka_conf_set(conf, names[i], values[i], errstr, sizeof errstr);
    for (size_t i = 0; i < cfg->kafka_count; i++)
        if (rd_kafka_conf_set(conf, cfg->kafka_names[i], cfg->kafka_values[i], errstr,
                              sizeof errstr) != RD_KAFKA_CONF_OK) {
            errbuf_set(err, errlen, "-X %s: %s", cfg->kafka_names[i], errstr);
            rd_kafka_conf_destroy(conf);
            return -1;
        }
    g->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
    if (!g->rk) {
        errbuf_set(err, errlen, "cannot create a Kafka client: %s", errstr);
        rd_kafka_conf_destroy(conf);
        return -1;
    }
    char *topics = xstrdup(cfg->topics);
    int rc = 0;
    for (char *save = NULL, *t = strtok_r(topics, ",", &save); t && rc == 0;
         t = strtok_r(NULL, ",", &save)) {
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(g->rk, t, NULL);
        const rd_kafka_metadata_t *md = NULL;
        rd_kafka_resp_err_t e = rd_kafka_metadata(g->rk, 0, rkt, &md, TIMEOUT_MS);
        if (!e && md->topic_cnt == 1 && md->topics[0].err) e = md->topics[0].err;
        if (e) {
            errbuf_set(err, errlen, "cannot read the partitions of topic %s from %s: %s", t,
                       cfg->brokers, rd_kafka_err2str(e));
            rc = -1;
        } else {
            for (int p = 0; p < md->topics[0].partition_cnt; p++)
                add(g, t, md->topics[0].partitions[p].id);
        }
        if (md) rd_kafka_metadata_destroy(md);
        rd_kafka_topic_destroy(rkt);
    }
    free(topics);
    if (rc != 0) return -1;
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new((int)g->count);
    for (size_t i = 0; i < g->count; i++)
        rd_kafka_topic_partition_list_add(list, g->parts[i].topic, g->parts[i].partition);
    rd_kafka_resp_err_t e = rd_kafka_committed(g->rk, list, TIMEOUT_MS);
    if (e) {
        errbuf_set(err, errlen, "cannot read the committed offsets of group %s: %s", cfg->group,
                   rd_kafka_err2str(e));
        rc = -1;
    }
    for (size_t i = 0; rc == 0 && i < g->count; i++) {
        group_partition *p = &g->parts[i];
        p->committed = list->elems[i].offset >= 0 ? list->elems[i].offset : -1;
        e = rd_kafka_query_watermark_offsets(g->rk, p->topic, p->partition, &p->low, &p->high,
                                             TIMEOUT_MS);
        if (e) {
            errbuf_set(err, errlen, "cannot read the offsets of %s [%d]: %s", p->topic,
                       (int)p->partition, rd_kafka_err2str(e));
            rc = -1;
        }
    }
    rd_kafka_topic_partition_list_destroy(list);
    return rc;
}

void group_offsets_close(group_offsets *g)
{
    for (size_t i = 0; i < g->count; i++)
        free(g->parts[i].topic);
    free(g->parts);
    if (g->rk) rd_kafka_destroy(g->rk);
    memset(g, 0, sizeof *g);
}

int group_offsets_members(group_offsets *g, const char *group, char *err, size_t errlen)
{
    const struct rd_kafka_group_list *gl = NULL;
    rd_kafka_resp_err_t e = rd_kafka_list_groups(g->rk, group, &gl, TIMEOUT_MS);
    if (e) {
        errbuf_set(err, errlen, "cannot describe group %s: %s", group, rd_kafka_err2str(e));
        return -1;
    }
    int members = 0;
    for (int i = 0; i < gl->group_cnt; i++)
        if (strcmp(gl->groups[i].group, group) == 0) members += gl->groups[i].member_cnt;
    rd_kafka_group_list_destroy(gl);
    return members;
}

int group_offsets_commit(group_offsets *g, rd_kafka_topic_partition_list_t *list, char *err,
                         size_t errlen)
{
    rd_kafka_resp_err_t e = rd_kafka_commit(g->rk, list, 0);
    for (int i = 0; !e && i < list->cnt; i++)
        e = list->elems[i].err;
    if (e) {
        errbuf_set(err, errlen, "committing the offsets failed: %s", rd_kafka_err2str(e));
        return -1;
    }
    return 0;
}
