/*
 * support — the fixtures and checks the unit tests share (tests/unit/support.c, linked into every
 * test_*.c executable as the unit_support library): temporary directories and files, the
 * synthesized Debezium fixtures, a pipeline.lua opened from a temporary directory, and the
 * "formatted text or exact error" check of the conversion tables.
 *
 * The helpers fail the running cmocka test (fail_msg / assert_*) rather than return an error,
 * except those made for a setup function (tmpdir_create, script_fixture_setup), which return 0
 * or -1 as cmocka expects of a setup.
 */
#ifndef CDCPIPE_TESTS_SUPPORT_H
#define CDCPIPE_TESTS_SUPPORT_H

#include <stddef.h>

#include "cdcpipe/script.h"

/* ---- files ---- */

/* Makes a fresh directory $CDCPIPE_TEST_RUN_DIR/cdcpipe-test-XXXXXX (ctest sets the run
 * directory, created here if missing; /tmp when unset) and writes its path into dir (len bytes).
 * Returns 0, or -1 when it cannot. */
int tmpdir_create(char *dir, size_t len);

/* Removes every file in dir, then dir itself (a test's directory holds no subdirectories). */
void tmpdir_remove(const char *dir);

/* Writes text to path, creating or truncating the file. */
void write_file(const char *path, const char *text);

/* $CDCPIPE_SOURCE_DIR, the source tree (ctest sets it). */
const char *source_dir(void);

/* The hand-written Debezium event <name> from
 * $CDCPIPE_SOURCE_DIR/tests/fixtures/debezium/handwritten/, whole (files end with a newline, which
 * JSON allows as trailing whitespace) and NUL-terminated; *len is its length. The caller frees it.
 */
char *read_fixture(const char *name, size_t *len);

/* ---- a pipeline.lua in a temporary directory ---- */

typedef struct {
    char dir[512];
    char path[600]; /* dir/pipeline.lua */
    script *s;      /* the script opened last, or NULL; closed by the next open and by teardown */
} script_fixture;

/* cmocka setup: *state is a new script_fixture in a fresh temporary directory, no script open. */
int script_fixture_setup(void **state);

/* cmocka teardown: closes the script, removes the directory and every file in it, frees. */
int script_fixture_teardown(void **state);

/* A cmocka test case whose state is a fresh script_fixture. */
#define script_fixture_test(fn)                                                                    \
    cmocka_unit_test_setup_teardown(fn, script_fixture_setup, script_fixture_teardown)

/* Writes text as f->path and opens it (memory_limit as for script_open) in place of f->s.
 * Returns the new f->s; fails the test when script_open does. */
script *script_fixture_open(script_fixture *f, const char *text, size_t memory_limit);

/* ---- checks ---- */

/* A conversion's result: with want, rc must be 0 and out equal want; without (NULL), rc must be
 * -1 and err equal want_err. On a mismatch the case (printf-style fmt) is printed with what it
 * gave before the failing assertion. out is read only when rc is 0, err only when rc is -1. */
void expect_text_or_error(int rc, const char *out, const char *err, const char *want,
                          const char *want_err, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

#endif
