/*
 * test_mock_faults — the pipeline under Kafka faults, on librdkafka's mock cluster, writing to a
 * real ClickHouse.
 *
 * In-process: the test calls config_init/config_set, script_open on the default pipeline.lua and
 * pipeline_run (--once, --from committed) the way main does, against a 3-broker mock cluster
 * (rdkafka_mock.h) owned by a producer handle. The topic has 4 partitions with fixed leaders and
 * the group's coordinator is fixed, so every fault is pushed onto a known broker's error stack
 * and the test checks afterwards that it was really hit (the stack is empty again).
 *   A. Fetch, ListOffsets, OffsetFetch and OffsetCommit answer with errors (some late): those
 *      librdkafka retries itself, and two non-retriable commit errors that make kafka_commit
 *      fail. Exit 0, every event in ClickHouse, the group's offsets committed up to the end.
 *   B. The leader of two partitions is down when the run starts and comes back 3 s after the
 *      consumer got its assignment (from a second thread): the run waits for it, loses nothing,
 *      commits everything and returns (watchdog: 120 s per run).
 *   C. A run in the same group consumes nothing and inserts nothing: everything was committed.
 * Each run's join takes ~3-5 s: the mock coordinator's rebalance delays (see session.timeout.ms
 * below). Relies on: CDCPIPE_SERVICES_ENV (services.env with CLICKHOUSE_URL=, from
 * scripts/test.sh) and CDCPIPE_SOURCE_DIR (for pipeline.lua). Works in its own database
 * t_mock_<pid>, dropped at the end. Prints "ok - ..." per assertion; any failure prints
 * "FAIL: ..." and exits 1.
 */
#include <curl/curl.h>
#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cdcpipe/clickhouse.h"
#include "cdcpipe/config.h"
#include "cdcpipe/pipeline.h"
#include "cdcpipe/script.h"
#include "cdcpipe/strbuf.h"

#include "support.h"

#define TEST_NAME  "test_mock_faults"
#define EVENTS     2000 /* per produce round */
#define PARTITIONS 4
#define BATCH_ROWS "300"
#define WATCHDOG_S 120
#define DOWN_MS    3000

/* Kafka protocol ApiKeys */
#define API_FETCH         1
#define API_LIST_OFFSETS  2
#define API_OFFSET_COMMIT 8
#define API_OFFSET_FETCH  9
#define API_SYNC_GROUP    14

/* Fixed placement: partitions 0 and 3 on broker 1, 1 on broker 2, 2 on broker 3; the group's
 * coordinator is broker 2. Scenario B takes broker 1 down. */
static const int32_t leader_of[PARTITIONS] = {1, 2, 3, 1};
#define COORDINATOR 2
#define DOWN_BROKER 1

static int passed;
static ch_client *ch;
static char database[64];

/* Prints the failure, drops the test database if it exists, exits 1. */
static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("FAIL: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    if (ch && database[0]) {
        char sql[128], err[512];
        snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s", database);
        ch_exec(ch, sql, NULL, NULL, err, sizeof err);
    }
    exit(1);
}

static void pass(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void pass(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("ok - ", stdout);
    vprintf(fmt, ap);
    putchar('\n');
    fflush(stdout);
    va_end(ap);
    passed++;
}

static void check_u64(const char *what, unsigned long long want, unsigned long long got)
{
    if (want != got) fail("%s: expected %llu, got %llu", what, want, got);
    pass("%s = %llu", what, got);
}

/* Async-signal-safe: a stalled pipeline_run fails the test instead of hanging ctest. */
static void on_watchdog(int sig)
{
    (void)sig;
    static const char msg[] =
        "FAIL: pipeline_run did not return within the watchdog time (stall)\n";
    ssize_t n = write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)n;
    _exit(1);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

/* ---- environment ---- */

/* CLICKHOUSE_URL from services.env, or the test fails saying what is missing. */
static char *clickhouse_url_from_services_env(void)
{
    char err[512];
    char *url = services_clickhouse_url(err, sizeof err);
    if (!url) fail("%s", err);
    return url;
}

/* Works in CDCPIPE_TEST_RUN_DIR like the shell tests (nothing is written there yet). */
static void enter_run_dir(void)
{
    const char *dir = getenv("CDCPIPE_TEST_RUN_DIR");
    if (!dir || !*dir) return;
    char path[4096];
    snprintf(path, sizeof path, "%s", dir);
    for (char *p = path + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        mkdir(path, 0777);
        *p = '/';
    }
    mkdir(path, 0777);
    if (chdir(path) != 0) fail("cannot enter CDCPIPE_TEST_RUN_DIR=%s: %s", path, strerror(errno));
}

/* ---- ClickHouse ---- */

static void ch_run(const char *sql, strbuf *out)
{
    char err[1024];
    if (ch_exec(ch, sql, out, NULL, err, sizeof err) != CH_OK) fail("ClickHouse: %s: %s", sql, err);
}

/* uniqExact(id) and count() of the pipeline's table. */
static void table_counts(unsigned long long *uniq, unsigned long long *count)
{
    char sql[256];
    strbuf out = {0};
    snprintf(sql, sizeof sql, "SELECT uniqExact(id), count() FROM %s.changes", database);
    ch_run(sql, &out);
    if (!out.data || sscanf(out.data, "%llu\t%llu", uniq, count) != 2)
        fail("unexpected answer to %s: %s", sql, out.data ? out.data : "(empty)");
    strbuf_free(&out);
}

/* ---- the mock cluster and the producer that owns it ---- */

typedef struct {
    rd_kafka_t *rk;
    rd_kafka_mock_cluster_t *mc;
    int delivery_failures; /* written by the delivery report callback (in rd_kafka_poll/flush) */
} mock_kafka;

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    mock_kafka *mk = opaque;
    if (m->err) {
        mk->delivery_failures++;
        fprintf(stderr, "delivery failed: %s\n", rd_kafka_err2str(m->err));
    }
}

static void kafka_set(rd_kafka_conf_t *conf, const char *name, const char *value)
{
    char errstr[512];
    if (rd_kafka_conf_set(conf, name, value, errstr, sizeof errstr) != RD_KAFKA_CONF_OK)
        fail("Kafka property %s=%s: %s", name, value, errstr);
}

/* A producer with `test.mock.num.brokers=3`: librdkafka creates the mock cluster, owned by this
 * handle and destroyed with it. */
static void mock_open(mock_kafka *mk)
{
    memset(mk, 0, sizeof *mk);
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    kafka_set(conf, "test.mock.num.brokers", "3");
    kafka_set(conf, "linger.ms", "5");
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_opaque(conf, mk);
    char errstr[512];
    mk->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!mk->rk) {
        rd_kafka_conf_destroy(conf);
        fail("cannot create the mock cluster's producer: %s", errstr);
    }
    conf = NULL; /* owned by rk now */
    mk->mc = rd_kafka_handle_mock_cluster(mk->rk);
    if (!mk->mc) fail("test.mock.num.brokers did not create a mock cluster");
}

static void mock_create_topic(mock_kafka *mk, const char *topic, const char *group)
{
    rd_kafka_resp_err_t e = rd_kafka_mock_topic_create(mk->mc, topic, PARTITIONS, 3);
    if (e) fail("mock topic %s: %s", topic, rd_kafka_err2str(e));
    for (int32_t p = 0; p < PARTITIONS; p++)
        if ((e = rd_kafka_mock_partition_set_leader(mk->mc, topic, p, leader_of[p])))
            fail("mock leader of %s [%d]: %s", topic, (int)p, rd_kafka_err2str(e));
    if ((e = rd_kafka_mock_coordinator_set(mk->mc, "group", group, COORDINATOR)))
        fail("mock coordinator of %s: %s", group, rd_kafka_err2str(e));
}

/* Produces Debezium update events for ids first..first+n-1 (key {"id":i}) and waits for every
 * delivery. */
static void produce_updates(mock_kafka *mk, const char *topic, int first, int n)
{
    for (int i = first; i < first + n; i++) {
        char key[64], value[256];
        int klen = snprintf(key, sizeof key, "{\"id\":%d}", i);
        int vlen =
            snprintf(value, sizeof value,
                     "{\"before\":null,\"after\":{\"id\":%d,\"name\":\"n%d\","
                     "\"created_at\":1700000000123456},\"op\":\"u\",\"ts_ms\":1700000000000}",
                     i, i);
        for (;;) {
            rd_kafka_resp_err_t e = rd_kafka_producev(
                mk->rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, (size_t)klen),
                RD_KAFKA_V_VALUE(value, (size_t)vlen), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                RD_KAFKA_V_END);
            if (e == RD_KAFKA_RESP_ERR_NO_ERROR) break;
            if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) fail("produce: %s", rd_kafka_err2str(e));
            rd_kafka_poll(mk->rk, 100);
        }
    }
    rd_kafka_resp_err_t e = rd_kafka_flush(mk->rk, 30000);
    if (e || rd_kafka_outq_len(mk->rk) > 0)
        fail("flush: %s (%d still queued)", rd_kafka_err2str(e), rd_kafka_outq_len(mk->rk));
    if (mk->delivery_failures) fail("%d events were not delivered", mk->delivery_failures);
    pass("produced %d update events (ids %d..%d) to %s", n, first, first + n - 1, topic);
}

typedef struct {
    rd_kafka_resp_err_t err; /* NO_ERROR: a normal answer (a marker, or just a delay) */
    int rtt_ms;              /* response delay */
} fault;

/* Appends faults to one broker's stack for api: its next requests of that ApiKey get them, in
 * order, one each. */
static void inject(mock_kafka *mk, int32_t broker, int16_t api, const fault *faults, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        rd_kafka_resp_err_t e = rd_kafka_mock_broker_push_request_error_rtts(
            mk->mc, broker, api, 1, faults[i].err, faults[i].rtt_ms);
        if (e)
            fail("injecting a fault for ApiKey %d on broker %d: %s", api, broker,
                 rd_kafka_err2str(e));
    }
}
#define INJECT(mk, broker, api, ...)                                                               \
    inject(mk, broker, api, (const fault[]){__VA_ARGS__},                                          \
           sizeof((const fault[]){__VA_ARGS__}) / sizeof(fault))

/* Asserts that every error injected for api on broker was consumed by a request. */
static void check_injected_hit(mock_kafka *mk, int32_t broker, int16_t api, const char *what)
{
    size_t left = 0;
    rd_kafka_resp_err_t e = rd_kafka_mock_broker_error_stack_cnt(mk->mc, broker, api, &left);
    if (e) fail("error stack of broker %d: %s", broker, rd_kafka_err2str(e));
    if (left != 0)
        fail("%zu injected %s error(s) on broker %d were never hit: the fault was not exercised",
             left, what, broker);
    pass("all injected %s errors on broker %d were hit", what, (int)broker);
}

/* Asserts that the group's committed offset of every partition is the partition's end: all
 * events were committed, whatever commits failed on the way. Uses its own consumer handle that
 * never joins the group (rd_kafka_committed only sends OffsetFetch to the coordinator). */
static void check_committed_at_end(mock_kafka *mk, const char *topic, const char *group,
                                   const char *scenario)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    kafka_set(conf, "bootstrap.servers", rd_kafka_mock_cluster_bootstraps(mk->mc));
    kafka_set(conf, "group.id", group);
    char errstr[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        fail("cannot create the offset-checking consumer: %s", errstr);
    }
    conf = NULL; /* owned by rk now */
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(PARTITIONS);
    for (int32_t p = 0; p < PARTITIONS; p++)
        rd_kafka_topic_partition_list_add(list, topic, p);
    rd_kafka_resp_err_t e = rd_kafka_committed(rk, list, 10000);
    if (e) fail("%s: reading the committed offsets: %s", scenario, rd_kafka_err2str(e));
    for (int i = 0; i < list->cnt; i++) {
        const rd_kafka_topic_partition_t *tp = &list->elems[i];
        int64_t low = 0, high = -1;
        if ((e = rd_kafka_query_watermark_offsets(rk, topic, tp->partition, &low, &high, 10000)))
            fail("%s: end offset of [%d]: %s", scenario, (int)tp->partition, rd_kafka_err2str(e));
        if (tp->err || tp->offset != high)
            fail("%s: committed offset of [%d] is %lld (%s), its end is %lld", scenario,
                 (int)tp->partition, (long long)tp->offset, rd_kafka_err2str(tp->err),
                 (long long)high);
    }
    rd_kafka_topic_partition_list_destroy(list);
    rd_kafka_destroy(rk);
    pass("%s: committed offsets of all %d partitions are at their end", scenario, PARTITIONS);
}

/* ---- scenario B's fault timing ---- */

typedef struct {
    rd_kafka_mock_cluster_t *mc;
    int32_t broker;
    double synced_at; /* now_s() when the consumer's SyncGroup reached the coordinator, or 0 */
    double up_requested_at; /* now_s() just before the broker was brought back */
} broker_revival;

/* Thread body: waits until the consumer has synced with the group (its assignment arrives while
 * the broker is down), then DOWN_MS more, then brings the broker back. The SyncGroup is observed
 * through a marker on the coordinator's error stack: one NO_ERROR entry, which the SyncGroup
 * request consumes without effect. Gives up waiting after WATCHDOG_S / 2 (the test then fails).
 * Fault timing only: it shares nothing with the pipeline. */
static void *revive_broker(void *arg)
{
    broker_revival *r = arg;
    double give_up = now_s() + WATCHDOG_S / 2;
    while (now_s() < give_up) {
        size_t left = 1;
        rd_kafka_mock_broker_error_stack_cnt(r->mc, COORDINATOR, API_SYNC_GROUP, &left);
        if (left == 0) {
            r->synced_at = now_s();
            break;
        }
        sleep_ms(20);
    }
    sleep_ms(DOWN_MS);
    r->up_requested_at = now_s();
    rd_kafka_resp_err_t e = rd_kafka_mock_broker_set_up(r->mc, r->broker);
    if (e) fprintf(stderr, "broker %d set up: %s\n", (int)r->broker, rd_kafka_err2str(e));
    return NULL;
}

/* ---- the pipeline ---- */

static void set(config *cfg, const char *key, const char *value)
{
    char err[1024];
    if (config_set(cfg, key, value, TEST_NAME, err, sizeof err) != 0) fail("config: %s", err);
}

/* pipeline_run under the watchdog; returns its exit status, *seconds its duration. */
static int run_pipeline(const config *cfg, script *s, metrics *c, double *seconds)
{
    double t0 = now_s();
    alarm(WATCHDOG_S);
    int rc = pipeline_run(cfg, &s, c);
    alarm(0);
    *seconds = now_s() - t0;
    return rc;
}

static void check_run(const char *scenario, int rc, const metrics *c, double seconds)
{
    if (rc != 0) fail("%s: pipeline_run returned %d, expected 0", scenario, rc);
    pass("%s: pipeline_run returned 0 in %.1f s (consumed=%llu inserted=%llu retries=%llu)",
         scenario, seconds, (unsigned long long)c->consumed, (unsigned long long)c->events_inserted,
         (unsigned long long)c->retries);
    if (c->dead_lettered || c->filtered || c->tombstones)
        fail("%s: unexpected skips: dead_lettered=%llu filtered=%llu tombstones=%llu", scenario,
             (unsigned long long)c->dead_lettered, (unsigned long long)c->filtered,
             (unsigned long long)c->tombstones);
    if (c->events_inserted != c->consumed)
        fail("%s: consumed %llu events but inserted %llu", scenario,
             (unsigned long long)c->consumed, (unsigned long long)c->events_inserted);
    pass("%s: every consumed event was inserted", scenario);
}

int main(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_watchdog;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);

    const char *src = getenv("CDCPIPE_SOURCE_DIR");
    if (!src || !*src) fail("CDCPIPE_SOURCE_DIR is not set: run the test through ctest");
    char *clickhouse_url = clickhouse_url_from_services_env();
    enter_run_dir();
    curl_global_init(CURL_GLOBAL_DEFAULT);

    char err[2048], topic[64], group[64], script_file[4096];
    int pid = (int)getpid();
    snprintf(database, sizeof database, "t_mock_%d", pid);
    snprintf(topic, sizeof topic, "mock_faults_%d", pid);
    snprintf(group, sizeof group, "g_mock_faults_%d", pid);
    snprintf(script_file, sizeof script_file, "%s/pipeline.lua", src);

    ch = ch_open(clickhouse_url, NULL, NULL, "default", err, sizeof err);
    if (!ch) fail("ClickHouse %s: %s", clickhouse_url, err);
    {
        char sql[128];
        snprintf(sql, sizeof sql, "CREATE DATABASE %s", database);
        ch_run(sql, NULL);
    }

    mock_kafka mk;
    mock_open(&mk);
    mock_create_topic(&mk, topic, group);
    produce_updates(&mk, topic, 1, EVENTS);

    script *s = script_open(script_file, 256u * 1024 * 1024, err, sizeof err);
    if (!s) fail("%s", err);
    config cfg;
    config_init(&cfg);
    if (config_apply_lua(&cfg, script_lua(s), script_file, err, sizeof err) != 0) fail("%s", err);
    set(&cfg, "brokers", rd_kafka_mock_cluster_bootstraps(mk.mc));
    set(&cfg, "topics", topic);
    set(&cfg, "group", group);
    set(&cfg, "clickhouse_url", clickhouse_url);
    set(&cfg, "database", database);
    set(&cfg, "batch_rows", BATCH_ROWS);
    set(&cfg, "once", "true");
    set(&cfg, "from", "committed");
    /* tests/CMakeLists.txt runs this test with 1 and with 4 partition workers */
    const char *workers = getenv("CDCPIPE_TEST_WORKERS");
    if (workers && *workers) set(&cfg, "workers", workers);
    /* The mock coordinator (2.0.2) keeps a group whose last member left in "rebalancing" for
     * session.timeout.ms - 1 s before a new member's join completes: a short session timeout
     * keeps each restart in the same group at ~5 s instead of ~44 s. */
    config_set_kafka(&cfg, "session.timeout.ms", "6000");
    config_set_kafka(&cfg, "heartbeat.interval.ms", "1000");
    if (config_validate(&cfg, err, sizeof err) != 0) fail("config: %s", err);

    metrics c;
    metrics_init(&c); /* the counters every thread shares, as main sets them up */
    double seconds;
    unsigned long long uniq, count;

    /* A: transient request errors on every kind of request the consumer depends on. Errors on
     * a broker's stack answer its next requests of that ApiKey, in order. */
    INJECT(&mk, 1, API_FETCH, {RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION, 0},
           {RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT, 300});
    INJECT(&mk, 3, API_FETCH, {RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT, 0});
    INJECT(&mk, 3, API_LIST_OFFSETS, {RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT, 0});
    INJECT(&mk, COORDINATOR, API_OFFSET_FETCH, {RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS, 0});
    /* Commits: librdkafka retries the first two itself; the two non-retriable ones make two
     * kafka_commit calls fail, whose offsets the following flushes must commit. */
    INJECT(&mk, COORDINATOR, API_OFFSET_COMMIT, {RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT, 200},
           {RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE, 0},
           {RD_KAFKA_RESP_ERR_OFFSET_METADATA_TOO_LARGE, 0},
           {RD_KAFKA_RESP_ERR_OFFSET_METADATA_TOO_LARGE, 0});
    int rc = run_pipeline(&cfg, s, &c, &seconds);
    check_run("A (request errors)", rc, &c, seconds);
    check_injected_hit(&mk, 1, API_FETCH, "Fetch");
    check_injected_hit(&mk, 3, API_FETCH, "Fetch");
    check_injected_hit(&mk, 3, API_LIST_OFFSETS, "ListOffsets");
    check_injected_hit(&mk, COORDINATOR, API_OFFSET_FETCH, "OffsetFetch");
    check_injected_hit(&mk, COORDINATOR, API_OFFSET_COMMIT, "OffsetCommit");
    table_counts(&uniq, &count);
    check_u64("A: uniqExact(id) in ClickHouse (no event lost)", EVENTS, uniq);
    if (count < EVENTS) fail("A: count() = %llu < %d", count, EVENTS);
    pass("A: count() = %llu >= %d (duplicates allowed: at-least-once)", count, EVENTS);
    check_committed_at_end(&mk, topic, group, "A");

    /* B: the leader of partitions 0 and 3 is down when the run starts and stays down until
     * DOWN_MS after the consumer got its assignment. */
    produce_updates(&mk, topic, EVENTS + 1, EVENTS);
    rd_kafka_resp_err_t e = rd_kafka_mock_broker_set_down(mk.mc, DOWN_BROKER);
    if (e) fail("broker %d set down: %s", DOWN_BROKER, rd_kafka_err2str(e));
    INJECT(&mk, COORDINATOR, API_SYNC_GROUP, {RD_KAFKA_RESP_ERR_NO_ERROR, 0}); /* marker */
    broker_revival revival = {mk.mc, DOWN_BROKER, 0, 0};
    pthread_t thread;
    double t0 = now_s();
    if (pthread_create(&thread, NULL, revive_broker, &revival) != 0) fail("pthread_create");
    rc = run_pipeline(&cfg, s, &c, &seconds);
    double ended = now_s();
    pthread_join(thread, NULL);
    check_run("B (leader down)", rc, &c, seconds);
    if (revival.synced_at == 0) fail("B: the consumer never sent SyncGroup to the coordinator");
    pass("B: the consumer joined the group %.1f s after the start while broker %d was down",
         revival.synced_at - t0, DOWN_BROKER);
    /* Half the events live on the down broker: a run that ends before it is back has not read
     * them (and would be caught below), one that never ends is caught by the watchdog. */
    if (ended < revival.up_requested_at)
        fail("B: the run ended %.1f s after the start, before broker %d was back (%.1f s)",
             ended - t0, DOWN_BROKER, revival.up_requested_at - t0);
    pass("B: the run waited for broker %d (back after %.1f s) and ended %.1f s after the start",
         DOWN_BROKER, revival.up_requested_at - t0, ended - t0);
    table_counts(&uniq, &count);
    check_u64("B: uniqExact(id) in ClickHouse (no event lost)", 2 * EVENTS, uniq);
    if (count < 2 * EVENTS) fail("B: count() = %llu < %d", count, 2 * EVENTS);
    pass("B: count() = %llu >= %d", count, 2 * EVENTS);
    check_committed_at_end(&mk, topic, group, "B");

    /* C: nothing queued any more (checked per broker in A; the cluster-wide stacks were never
     * used, cleared anyway): the same group finds everything committed. */
    static const int16_t apis[] = {API_FETCH, API_LIST_OFFSETS, API_OFFSET_COMMIT, API_OFFSET_FETCH,
                                   API_SYNC_GROUP};
    for (size_t i = 0; i < sizeof apis / sizeof apis[0]; i++) {
        rd_kafka_mock_clear_request_errors(mk.mc, apis[i]);
        for (int32_t b = 1; b <= 3; b++) {
            size_t left = 0;
            rd_kafka_mock_broker_error_stack_cnt(mk.mc, b, apis[i], &left);
            if (left)
                fail("C: %zu errors still queued for ApiKey %d on broker %d", left, apis[i], b);
        }
    }
    unsigned long long count_before = count;
    rc = run_pipeline(&cfg, s, &c, &seconds);
    check_run("C (restart in the same group)", rc, &c, seconds);
    check_u64("C: events consumed again (all committed)", 0, c.consumed);
    table_counts(&uniq, &count);
    check_u64("C: count() unchanged", count_before, count);

    /* D (last: a broker's error stack cannot be cleared): every commit fails with a
     * non-retriable error, more of them than the run makes commits. The rows are inserted, but
     * the run must not report success: the events will be consumed again. */
    produce_updates(&mk, topic, 2 * EVENTS + 1, 100);
    for (int i = 0; i < 64; i++)
        INJECT(&mk, COORDINATOR, API_OFFSET_COMMIT,
               {RD_KAFKA_RESP_ERR_OFFSET_METADATA_TOO_LARGE, 0});
    rc = run_pipeline(&cfg, s, &c, &seconds);
    check_u64("D: exit status when no commit succeeds", 1, (unsigned long long)rc);
    table_counts(&uniq, &count);
    check_u64("D: the rows were inserted all the same", 2 * EVENTS + 100, uniq);

    {
        char sql[128];
        snprintf(sql, sizeof sql, "DROP DATABASE %s", database);
        ch_run(sql, NULL);
        database[0] = '\0';
    }
    config_free(&cfg);
    metrics_free(&c);
    script_close(s);
    rd_kafka_destroy(mk.rk); /* destroys the mock cluster too */
    ch_close(ch);
    ch = NULL;
    free(clickhouse_url);
    curl_global_cleanup();
    printf("%s: %d passed, 0 failed\n", TEST_NAME, passed);
    return 0;
}
