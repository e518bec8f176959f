/*
 * test_row_set — the row sets the pipeline narrows a rejected batch down with
 * (include/cdcpipe/row_set.h): adjacent ranges merge, positions map through the ranges (as
 * ClickHouse's "at row N" must), splits and removals keep every other row exactly once.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "cdcpipe/row_set.h"

/* "[a,b) [c,d) ... = n" */
static void expect_set(const row_set *s, const char *want)
{
    char got[512] = "";
    size_t used = 0;
    for (size_t i = 0; i < s->count; i++)
        used += (size_t)snprintf(got + used, sizeof got - used, "[%zu,%zu) ", s->ranges[i].from,
                                 s->ranges[i].to);
    snprintf(got + used, sizeof got - used, "= %zu", s->rows);
    if (strcmp(got, want) != 0) fail_msg("row set \"%s\", expected \"%s\"", got, want);
}

static void add_merges_adjacent_ranges(void **state)
{
    (void)state;
    row_set s = {0};
    row_set_add(&s, 0, 10);
    row_set_add(&s, 10, 12);
    row_set_add(&s, 12, 12); /* empty: nothing */
    row_set_add(&s, 20, 25);
    expect_set(&s, "[0,12) [20,25) = 17");
    row_set_free(&s);
    expect_set(&s, "= 0");
}

static void at_maps_positions_through_the_ranges(void **state)
{
    (void)state;
    row_set s = {0};
    row_set_add(&s, 5, 8);
    row_set_add(&s, 10, 11);
    row_set_add(&s, 40, 42);
    size_t want[] = {5, 6, 7, 10, 40, 41};
    for (size_t k = 0; k < sizeof want / sizeof want[0]; k++)
        assert_int_equal(row_set_at(&s, k), want[k]);
    row_set_free(&s);
}

static void split_keeps_every_row_once(void **state)
{
    (void)state;
    row_set s = {0}, a, b;
    row_set_add(&s, 0, 3);
    row_set_add(&s, 4, 9);
    row_set_split(&s, 4, &a, &b);
    expect_set(&a, "[0,3) [4,5) = 4");
    expect_set(&b, "[5,9) = 4");
    row_set_free(&a);
    row_set_free(&b);
    row_set_split(&s, 3, &a, &b);
    expect_set(&a, "[0,3) = 3");
    expect_set(&b, "[4,9) = 5");
    row_set_free(&a);
    row_set_free(&b);
    row_set_split(&s, 0, &a, &b);
    expect_set(&a, "= 0");
    expect_set(&b, "[0,3) [4,9) = 8");
    row_set_free(&a);
    row_set_free(&b);
    expect_set(&s, "[0,3) [4,9) = 8"); /* unchanged */
    row_set_free(&s);
}

static void remove_takes_one_row_out(void **state)
{
    (void)state;
    row_set s = {0};
    row_set_add(&s, 0, 1000);
    row_set_remove(&s, 99);
    expect_set(&s, "[0,99) [100,1000) = 999");
    row_set_remove(&s, row_set_at(&s, 398)); /* row 399: ClickHouse's "at row 399" of the rest */
    expect_set(&s, "[0,99) [100,399) [400,1000) = 998");
    row_set_remove(&s, 0);
    row_set_remove(&s, 999);
    row_set_remove(&s, 99); /* not in the set: nothing */
    expect_set(&s, "[1,99) [100,399) [400,999) = 996");
    row_set_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(add_merges_adjacent_ranges),
        cmocka_unit_test(at_maps_positions_through_the_ranges),
        cmocka_unit_test(split_keeps_every_row_once),
        cmocka_unit_test(remove_takes_one_row_out),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
