/*
 * test_metrics — the Prometheus text encoder (src/prom_text.c), SHA-256 (src/sha256.c), the
 * shared metrics (src/metrics.c: counters right with several threads updating while another
 * renders, histograms whose _count is their +Inf bucket, readiness) and the HTTP endpoint
 * (src/metrics_http.c: status codes, methods, a client that never reads does not hold the others
 * up).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "cdcpipe/batch.h"
#include "cdcpipe/metrics.h"
#include "cdcpipe/metrics_http.h"
#include "cdcpipe/prom_text.h"
#include "cdcpipe/sha256.h"
#include "cdcpipe/strbuf.h"

static char *escaped(const char *s, size_t len)
{
    strbuf b = {0};
    prom_label_value(&b, s, len);
    strbuf_puts(&b, "");
    return b.data;
}

static void test_label_escaping(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        size_t len;
        const char *want;
    } cases[] = {
        {"plain_table", 0, "plain_table"},
        {"a\"b\\c\nd", 0, "a\\\"b\\\\c\\nd"},
        {"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 0,
         "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"},
        {"bad \xff\xc3", 0, "bad \xef\xbf\xbd\xef\xbf\xbd"},
        {"surrogate \xed\xa0\x80", 0, "surrogate \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
        {"nul\0x", 5, "nul\0x"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t len = cases[i].len ? cases[i].len : strlen(cases[i].in);
        char *got = escaped(cases[i].in, len);
        assert_memory_equal(got, cases[i].want, len ? strlen(cases[i].want) : 0);
        /* read back: the value itself when it was valid UTF-8 */
        if (i < 3) {
            strbuf quoted = {0}, back = {0};
            strbuf_printf(&quoted, "%s\"", got);
            assert_int_equal(prom_unescape_label_value(quoted.data, quoted.len, &back),
                             (long)quoted.len);
            assert_string_equal(back.data, cases[i].in);
            strbuf_free(&quoted);
            strbuf_free(&back);
        }
        free(got);
    }
}

static void test_values_and_samples(void **state)
{
    (void)state;
    strbuf b = {0};
    const double values[] = {0, 42, -3, 0.1, 1e300, 1.0 / 0.0, -1.0 / 0.0, 0.0 / 0.0, 2.5e-7};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        prom_value(&b, values[i]);
        strbuf_putc(&b, ' ');
    }
    assert_string_equal(b.data, "0 42 -3 0.1 1e+300 +Inf -Inf NaN 2.5e-07 ");
    strbuf_reset(&b);
    const char *names[] = {"table", "stage"}, *vals[] = {"t\"1", "lua"};
    prom_sample(&b, "x_total", NULL, names, vals, 2, NULL, 7);
    prom_sample(&b, "h", "_bucket", names, vals, 1, "+Inf", 3);
    prom_sample(&b, "g", NULL, NULL, NULL, 0, NULL, 1.5);
    prom_header(&b, "g", "gauge", "a\\b\nc");
    assert_string_equal(b.data, "x_total{table=\"t\\\"1\",stage=\"lua\"} 7\n"
                                "h_bucket{table=\"t\\\"1\",le=\"+Inf\"} 3\n"
                                "g 1.5\n"
                                "# HELP g a\\\\b\\nc\n# TYPE g gauge\n");
    strbuf_free(&b);
}

static void test_sha256(void **state)
{
    (void)state;
    char hex[SHA256_HEX_LEN + 1];
    sha256_hex("", 0, hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    sha256_hex("abc", 3, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    sha256_hex(two, strlen(two), hex);
    assert_string_equal(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

/* The value of the sample line that starts with `line` (name and labels) in page, or -1. */
static double sample(const char *page, const char *line)
{
    size_t len = strlen(line);
    for (const char *p = page; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (strncmp(p, line, len) == 0 && p[len] == ' ') return strtod(p + len + 1, NULL);
    return -1;
}

#define THREADS 4
#define ROUNDS  20000

static metrics shared;
static atomic_bool done;

static void *writer(void *arg)
{
    const char *topic = (uintptr_t)arg % 2 ? "odd" : "even";
    char table[16];
    snprintf(table, sizeof table, "t%d", (int)(uintptr_t)arg);
    for (int i = 0; i < ROUNDS; i++) {
        metrics_consumed(&shared, topic);
        metrics_rows_inserted(&shared, table, 2);
        metrics_latency lat = metrics_latency_for(&shared, "all");
        metrics_latency_observe(&lat, 10000, 10000 - i % 700, -1);
        metrics_retry(&shared, METRICS_RETRY_TRANSIENT);
    }
    return NULL;
}

static void *scraper(void *arg)
{
    (void)arg;
    while (!atomic_load(&done)) {
        strbuf page = {0};
        metrics_render(&shared, &page);
        /* a histogram read while it moves is still whole: _count is its +Inf bucket */
        double inf = sample(page.data, "cdcpipe_end_to_end_latency_seconds_bucket{table=\"all\","
                                       "le=\"+Inf\"}"),
               count = sample(page.data, "cdcpipe_end_to_end_latency_seconds_count{table=\"all\"}");
        if (inf != count) fail_msg("+Inf bucket %f, count %f", inf, count);
        strbuf_free(&page);
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    metrics_init(&shared);
    pthread_t w[THREADS], s;
    atomic_store(&done, false);
    pthread_create(&s, NULL, scraper, NULL);
    for (uintptr_t i = 0; i < THREADS; i++)
        pthread_create(&w[i], NULL, writer, (void *)i);
    for (int i = 0; i < THREADS; i++)
        pthread_join(w[i], NULL);
    atomic_store(&done, true);
    pthread_join(s, NULL);
    strbuf page = {0};
    metrics_render(&shared, &page);
    assert_int_equal(shared.consumed, THREADS * ROUNDS);
    assert_int_equal(shared.rows_inserted, 2 * THREADS * ROUNDS);
    assert_int_equal(shared.retries, THREADS * ROUNDS);
    assert_true(sample(page.data, "cdcpipe_events_consumed_total{topic=\"odd\"}") ==
                THREADS / 2 * ROUNDS);
    assert_true(sample(page.data, "cdcpipe_rows_inserted_total{table=\"t3\"}") == 2 * ROUNDS);
    assert_true(sample(page.data, "cdcpipe_retries_total{class=\"transient\"}") ==
                THREADS * ROUNDS);
    assert_true(sample(page.data, "cdcpipe_end_to_end_latency_seconds_count{table=\"all\"}") ==
                THREADS * ROUNDS);
    /* delays 0..699 ms: the 0.5 s bucket holds 501 of every 700 */
    double half = sample(page.data, "cdcpipe_end_to_end_latency_seconds_bucket{table=\"all\","
                                    "le=\"0.5\"}");
    assert_true(half > 0 && half < THREADS * ROUNDS);
    metrics_reset(&shared);
    assert_int_equal(shared.consumed, 0);
    strbuf_free(&page);
    metrics_free(&shared);
}

static void test_readiness_and_partitions(void **state)
{
    (void)state;
    metrics m;
    const char *reason;
    metrics_init(&m);
    assert_false(metrics_ready(&m, &reason));
    assert_non_null(strstr(reason, "starting"));
    metrics_set_phase(&m, METRICS_RUNNING);
    assert_false(metrics_ready(&m, &reason));
    assert_non_null(strstr(reason, "no partitions"));
    metrics_partition_assigned(&m, "t", 0, true);
    metrics_partition_assigned(&m, "t", 1, true);
    assert_true(metrics_ready(&m, &reason));
    metrics_insert_attempt(&m, "x", 10, 100, CH_TRANSIENT, 5);
    assert_false(metrics_ready(&m, &reason));
    assert_non_null(strstr(reason, "ClickHouse"));
    metrics_insert_attempt(&m, "x", 10, 100, CH_OK, 5);
    assert_true(metrics_ready(&m, &reason));

    /* lag shows once known, and only while assigned */
    strbuf page = {0};
    metrics_render(&m, &page);
    assert_null(strstr(page.data, "cdcpipe_consumer_lag{"));
    metrics_set_lag(&m, "t", 1, 5, 12, 7);
    metrics_partition_assigned(&m, "t", 0, false);
    metrics_set_lag(&m, "t", 0, 5, 12, 7); /* revoked meanwhile */
    strbuf_reset(&page);
    metrics_render(&m, &page);
    assert_true(sample(page.data, "cdcpipe_consumer_lag{topic=\"t\",partition=\"1\"}") == 7);
    assert_null(strstr(page.data, "partition=\"0\""));
    assert_true(sample(page.data, "cdcpipe_partitions_assigned") == 1);

    /* rows waiting: a snapshot of the batches, a table gone from them goes to 0 */
    batch_set set = {0};
    batch b = {.table = "waiting", .nrows = 3};
    b.rows.len = 30;
    set.items = &b;
    set.count = 1;
    metrics_tick(&m, 0, &set, NULL);
    metrics_tick(&m, 0, &set, NULL); /* within 500 ms: nothing */
    metrics_set_waiting(&m, 1, "waiting", 4, 40);
    metrics_set_waiting(&m, 0, "waiting", 3, 30);
    strbuf_reset(&page);
    metrics_render(&m, &page);
    assert_true(sample(page.data, "cdcpipe_rows_waiting{table=\"waiting\"}") == 7);
    assert_true(sample(page.data, "cdcpipe_bytes_waiting{table=\"waiting\"}") == 70);
    metrics_set_phase(&m, METRICS_FAILED);
    assert_false(metrics_ready(&m, &reason));
    unsigned stalled = 99;
    assert_true(metrics_healthy(&m, 30000, &stalled));
    strbuf_free(&page);
    metrics_free(&m);
}

/* /healthz watches the consumer thread and every worker; a thread waiting on purpose for another
 * is not held against it. (stall_ms -1: every beat counts as too old.) */
static void test_health_per_thread(void **state)
{
    (void)state;
    metrics m;
    unsigned stalled = 99;
    metrics_init(&m);
    metrics_set_workers(&m, 2);
    assert_true(metrics_healthy(&m, 30000, &stalled));
    assert_false(metrics_healthy(&m, -1, &stalled));
    assert_int_equal(stalled, 0);
    metrics_thread_waiting(&m, 0, true); /* parked during a reload */
    assert_false(metrics_healthy(&m, -1, &stalled));
    assert_int_equal(stalled, 1);
    metrics_thread_waiting(&m, 1, true);
    assert_false(metrics_healthy(&m, -1, &stalled));
    assert_int_equal(stalled, METRICS_CONSUMER);
    metrics_thread_waiting(&m, METRICS_CONSUMER, true); /* in a revoke */
    assert_true(metrics_healthy(&m, -1, &stalled));
    metrics_thread_waiting(&m, 1, false);
    assert_false(metrics_healthy(&m, -1, &stalled));
    assert_int_equal(stalled, 1);
    metrics_heartbeat(&m, 1);
    assert_true(metrics_healthy(&m, 30000, &stalled));
    metrics_set_paused(&m, 2);
    strbuf page = {0};
    metrics_render(&m, &page);
    assert_true(sample(page.data, "cdcpipe_paused") == 2);
    assert_true(sample(page.data, "cdcpipe_workers") == 2);
    strbuf_free(&page);
    metrics_free(&m);
}

static void test_parse_listen(void **state)
{
    (void)state;
    char host[64], port[8], err[256];
    assert_int_equal(metrics_http_parse_listen("127.0.0.1:9187", host, sizeof host, port,
                                               sizeof port, err, sizeof err),
                     0);
    assert_string_equal(host, "127.0.0.1");
    assert_string_equal(port, "9187");
    assert_int_equal(
        metrics_http_parse_listen(":0", host, sizeof host, port, sizeof port, err, sizeof err), 0);
    assert_string_equal(host, "");
    assert_int_equal(metrics_http_parse_listen("[::1]:80", host, sizeof host, port, sizeof port,
                                               err, sizeof err),
                     0);
    assert_string_equal(host, "::1");
    const char *bad[] = {"9187", "host:", "host:port", "::1:80", "h:99999", "[::1:80"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(metrics_http_parse_listen(bad[i], host, sizeof host, port, sizeof port,
                                                   err, sizeof err),
                         -1);
        assert_non_null(strstr(err, "expected HOST:PORT"));
    }
}

/* Sends request to 127.0.0.1:port and returns the status line's code (0: no answer). */
static int http_status(int port, const char *request)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return 0;
    }
    size_t len = strlen(request);
    if (write(fd, request, len) != (ssize_t)len) {
        close(fd);
        return 0;
    }
    char answer[64] = "";
    ssize_t n = read(fd, answer, sizeof answer - 1);
    close(fd);
    int code = 0;
    if (n > 0) sscanf(answer, "HTTP/1.%*d %d", &code);
    return code;
}

static void test_http(void **state)
{
    (void)state;
    metrics m;
    char err[256];
    metrics_init(&m);
    metrics_server *s = metrics_server_start(&m, "127.0.0.1:0", err, sizeof err);
    assert_non_null(s);
    int port = metrics_server_port(s);
    assert_true(port > 0);
    assert_null(metrics_server_start(&m, "nohost.invalid:1", err, sizeof err));
    char busy[32];
    snprintf(busy, sizeof busy, "127.0.0.1:%d", port);
    assert_null(metrics_server_start(&m, busy, err, sizeof err));
    assert_non_null(strstr(err, "in use"));

    /* clients that connect and never send, or send and never read: they hold nobody up */
    int idle[4];
    for (int i = 0; i < 4; i++) {
        idle[i] = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        assert_int_equal(connect(idle[i], (struct sockaddr *)&a, sizeof a), 0);
        if (i % 2) assert_true(write(idle[i], "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", 34) > 0);
    }
    assert_int_equal(http_status(port, "GET /metrics HTTP/1.0\r\n\r\n"), 200);
    assert_int_equal(http_status(port, "HEAD /healthz HTTP/1.0\r\n\r\n"), 200);
    assert_int_equal(http_status(port, "GET /readyz HTTP/1.0\r\n\r\n"), 503);
    assert_int_equal(http_status(port, "GET /nothing HTTP/1.0\r\n\r\n"), 404);
    assert_int_equal(http_status(port, "POST /metrics HTTP/1.0\r\nContent-Length: 2\r\n\r\nab"),
                     405);
    assert_int_equal(http_status(port, "DELETE /readyz HTTP/1.0\r\n\r\n"), 405);
    /* a request line longer than the connection's memory is refused, not buffered */
    size_t huge = 100000;
    char *request = malloc(huge + 32);
    memcpy(request, "GET /", 5);
    memset(request + 5, 'a', huge);
    strcpy(request + 5 + huge, " HTTP/1.0\r\n\r\n");
    int code = http_status(port, request);
    assert_true(code == 414 || code == 431 || code == 0);
    free(request);
    assert_int_equal(http_status(port, "GET /metrics HTTP/1.0\r\n\r\n"), 200);
    for (int i = 0; i < 4; i++)
        close(idle[i]);
    metrics_server_stop(s);
    metrics_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_label_escaping),
        cmocka_unit_test(test_values_and_samples),
        cmocka_unit_test(test_sha256),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_readiness_and_partitions),
        cmocka_unit_test(test_health_per_thread),
        cmocka_unit_test(test_parse_listen),
        cmocka_unit_test(test_http),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
