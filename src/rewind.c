/*
 * rewind — move a group's committed offsets back, recorded in the ledger (see
 * include/cdcpipe/verify.h).
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "cdcpipe/clickhouse.h"
#include "cdcpipe/group_offsets.h"
#include "cdcpipe/ledger.h"
#include "cdcpipe/strbuf.h"
#include "cdcpipe/verify.h"
#include "cdcpipe/xalloc.h"

/* --to as a time: unix ms, or -<N>s|m|h|d before now. 0 with *ms, -1 when it is not a time. */
static int parse_time(const char *to, int64_t *ms)
{
    char *end;
    if (to[0] == '-') {
        long long n = strtoll(to + 1, &end, 10);
        if (end == to + 1 || n < 0 || end[1] != '\0') return -1;
        long long unit = *end == 's'   ? 1000
                         : *end == 'm' ? 60000
                         : *end == 'h' ? 3600000
                         : *end == 'd' ? 86400000
                                       : 0;
        if (!unit) return -1;
        struct timeval tv;
        gettimeofday(&tv, NULL);
        *ms = (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000 - n * unit;
        return 0;
    }
    long long v = strtoll(to, &end, 10);
    if (end == to || *end || v < 0) return -1;
    *ms = v;
    return 0;
}

/* --to as offsets: P:O or TOPIC:P:O, comma-separated, into the new offsets of g's partitions
 * (-1 untouched). 0, or -1 with err. */
static int parse_offsets(const char *to, group_offsets *g, int64_t *want, char *err, size_t errlen)
{
    char *copy = xstrdup(to);
    int rc = 0;
    for (char *save = NULL, *item = strtok_r(copy, ",", &save); item && rc == 0;
         item = strtok_r(NULL, ",", &save)) {
        char *last = strrchr(item, ':');
        if (!last) {
            rc = -1;
            break;
        }
        *last = '\0';
        char *mid = strrchr(item, ':');
        const char *topic = NULL, *part = item;
        if (mid) {
            *mid = '\0';
            topic = item;
            part = mid + 1;
        }
        char *end;
        long p = strtol(part, &end, 10);
        long long off = strtoll(last + 1, &end, 10);
        if (*end || off < 0) {
            rc = -1;
            break;
        }
        bool found = false;
        for (size_t i = 0; i < g->count; i++)
            if (g->parts[i].partition == p && (!topic || strcmp(topic, g->parts[i].topic) == 0)) {
                want[i] = off;
                found = true;
            }
        if (!found) {
            snprintf(err, errlen, "--to %s: no partition %s%s%ld in the topics", to,
                     topic ? topic : "", topic ? ":" : "", p);
            free(copy);
            return -1;
        }
    }
    free(copy);
    if (rc != 0)
        snprintf(err, errlen,
                 "--to \"%s\" is not a position: use a unix time in ms, -<N>s|m|h|d (before now) "
                 "or offsets PARTITION:OFFSET[,...] (or TOPIC:PARTITION:OFFSET)",
                 to);
    return rc;
}

int command_rewind(const config *cfg, const char *to, FILE *out)
{
    char err[1024];
    group_offsets g;
    if (group_offsets_open(&g, cfg, err, sizeof err) != 0) {
        fprintf(stderr, "cdcpipe: %s\n", err);
        group_offsets_close(&g);
        return 2;
    }
    int rc = 0;
    int64_t *want = xcalloc(g.count + 1, sizeof *want);
    for (size_t i = 0; i < g.count; i++)
        want[i] = -1;
    int64_t ms;
    if (parse_time(to, &ms) == 0) {
        rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new((int)g.count);
        for (size_t i = 0; i < g.count; i++)
            rd_kafka_topic_partition_list_add(list, g.parts[i].topic, g.parts[i].partition)
                ->offset = ms;
        rd_kafka_resp_err_t e = rd_kafka_offsets_for_times(g.rk, list, 10000);
        for (size_t i = 0; !e && i < g.count; i++)
            want[i] = list->elems[i].offset >= 0 ? list->elems[i].offset : g.parts[i].high;
        rd_kafka_topic_partition_list_destroy(list);
        if (e) {
            fprintf(stderr, "cdcpipe: cannot find the offsets for --to %s: %s\n", to,
                    rd_kafka_err2str(e));
            rc = 2;
        }
    } else if (parse_offsets(to, &g, want, err, sizeof err) != 0) {
        fprintf(stderr, "cdcpipe: %s\n", err);
        rc = 2;
    }
    int members = rc ? 0 : group_offsets_members(&g, cfg->group, err, sizeof err);
    if (rc == 0 && members != 0) {
        if (members < 0)
            fprintf(stderr, "cdcpipe: %s\n", err);
        else
            fprintf(stderr,
                    "cdcpipe: group %s has %d member%s running: stop every cdcpipe of the group "
                    "first (a member would commit over the rewind)\n",
                    cfg->group, members, members == 1 ? "" : "s");
        rc = 1;
    }
    rd_kafka_topic_partition_list_t *commit = rd_kafka_topic_partition_list_new((int)g.count);
    strbuf rows = {0};
    for (size_t i = 0; rc == 0 && i < g.count; i++) {
        group_partition *p = &g.parts[i];
        if (want[i] < 0) continue;
        if (want[i] < p->low) want[i] = p->low;
        if (p->committed >= 0 && want[i] >= p->committed) {
            fprintf(out, "%s [%d]: committed %lld, not after %lld: unchanged\n", p->topic,
                    (int)p->partition, (long long)p->committed, (long long)want[i]);
            continue;
        }
        rd_kafka_topic_partition_list_add(commit, p->topic, p->partition)->offset = want[i];
        fprintf(out, "%s [%d]: committed %lld -> %lld\n", p->topic, (int)p->partition,
                (long long)p->committed, (long long)want[i]);
        strbuf_puts(&rows, "(");
        ledger_sql_string(&rows, cfg->group);
        strbuf_puts(&rows, ", ");
        ledger_sql_string(&rows, p->topic);
        strbuf_printf(&rows, ", %d, %lld, %lld, 'rewind', ", (int)p->partition, (long long)want[i],
                      (long long)(p->committed >= 0 ? p->committed - 1 : p->high - 1));
        strbuf_printf(&rows, "'rewind-%s', ", ledger_instance());
        ledger_sql_string(&rows, ledger_instance());
        strbuf_puts(&rows, ", 0, 0, 0, 0, 0, 0, [], [])");
        strbuf_putc(&rows, ',');
    }
    if (rc == 0 && commit->cnt > 0 && ledger_enabled(cfg)) {
        ch_client *ch = ch_connect(cfg, err, sizeof err);
        strbuf sql = {0};
        if (ch) {
            ledger_create_sql(cfg, &sql);
            if (ch_exec(ch, sql.data, NULL, NULL, err, sizeof err) == CH_OK) {
                strbuf_reset(&sql);
                strbuf_puts(&sql, "INSERT INTO ");
                ch_quote_table(&sql, cfg->database, cfg->ledger);
                strbuf_puts(&sql, " (consumer_group, topic, partition, first_offset, "
                                  "last_offset, state, insert_id, instance, worker, inserted, "
                                  "filtered, dead_lettered, tombstones, skipped, tables, rows) "
                                  "VALUES ");
                strbuf_append(&sql, rows.data, rows.len - 1);
                if (ch_exec(ch, sql.data, NULL, NULL, err, sizeof err) != CH_OK)
                    ch = (ch_close(ch), NULL);
            } else {
                ch_close(ch);
                ch = NULL;
            }
        }
        if (!ch) {
            fprintf(stderr,
                    "cdcpipe: cannot write the rewind into the ledger %s: %s; nothing "
                    "was rewound\n",
                    cfg->ledger, err);
            rc = 1;
        }
        ch_close(ch);
        strbuf_free(&sql);
    }
    if (rc == 0 && commit->cnt > 0 && group_offsets_commit(&g, commit, err, sizeof err) != 0) {
        fprintf(stderr, "cdcpipe: %s\n", err);
        rc = 1;
    }
    if (rc == 0)
        fprintf(out, "rewind: %d partition%s of group %s moved back\n", commit->cnt,
                commit->cnt == 1 ? "" : "s", cfg->group);
    rd_kafka_topic_partition_list_destroy(commit);
    strbuf_free(&rows);
    free(want);
    group_offsets_close(&g);
    return rc;
}
