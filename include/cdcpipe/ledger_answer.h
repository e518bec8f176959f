/*
 * ledger_answer — the insert ledger's rows (ledger.h) as ClickHouse answers them, parsed: the
 * TabSeparated answers of recovery's query (ledger.c) and of `cdcpipe verify` (verify.c). Pure
 * functions on text from outside the process (tests/fuzz/fuzz_tsv.c): a corrupt answer makes
 * rows skipped or wrong, never a crash.
 */
#ifndef CDCPIPE_LEDGER_ANSWER_H
#define CDCPIPE_LEDGER_ANSWER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The ledger rows of one flush for one segment of a partition (same insert_id and first offset),
 * from recovery's query: insert_id, state, first_offset, last_offset, toUnixTimestamp(time), k, t,
 * r (one line per INSERT k of the row, LEFT ARRAY JOIN tables AS t, rows AS r; k = 0: none). */
typedef struct {
    char *id;
    int64_t first, last, since;
    bool intent, done, recovered;
    /* per INSERT k (intent/done): table (NULL when no line named it) and rows of this partition */
    char **ktable;
    uint64_t *krows;
    size_t nk;
    /* the recovered row's landed tables */
    char **rtables;
    size_t nr;
} insert_group;

/* Parses recovery's answer (modified: split and unescaped in place) into *groups (*ngroups of
 * them, in order of first appearance; each freed with insert_group_free, then the array). Lines
 * that cannot be rows of the query are skipped: those without 8 fields, and those whose k is
 * larger than the answer's line count (an array of k tables takes k lines; such a k would size an
 * allocation). */
void ledger_parse_groups(char *answer, insert_group **groups, size_t *ngroups);
void insert_group_free(insert_group *g);

/* Whether name is one of names[0..n). */
bool ledger_names_have(char *const *names, size_t n, const char *name);

/* One (range, table) of a 'done' or 'recovered' row, from verify's query: topic, partition,
 * first_offset, last_offset, state, insert_id, t, r (table "" for a range without rows). The
 * strings point into the parsed answer. */
typedef struct {
    char *topic;
    int32_t partition;
    int64_t first, last;
    char *state, *insert_id, *table;
    uint64_t rows;
} ledger_piece;

/* Parses verify's answer (modified: split and unescaped in place; it must outlive the pieces)
 * into a new array of *npieces pieces (free() it), one per line; missing fields read as "" (0).
 */
ledger_piece *ledger_parse_pieces(char *answer, size_t *npieces);

#endif
