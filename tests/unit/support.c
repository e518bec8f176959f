/*
 * support — the fixtures and checks the unit tests share (see support.h): temporary directories
 * and files, the synthesized Debezium fixtures, a pipeline.lua in a temporary directory, and the
 * "formatted text or exact error" check.
 */
#include "support.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <dirent.h>
#include <errno.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "cdcpipe/strbuf.h"

/* ---- files ---- */

int tmpdir_create(char *dir, size_t len)
{
    const char *run = getenv("CDCPIPE_TEST_RUN_DIR");
    if (!run || !*run) run = "/tmp";
    if (snprintf(dir, len, "%s/cdcpipe-test-XXXXXX", run) >= (int)len) return -1;
    for (char *slash = strchr(dir + 1, '/'); slash; slash = strchr(slash + 1, '/')) {
        *slash = '\0'; /* mkdir -p the run directory */
        int rc = mkdir(dir, 0755);
        *slash = '/';
        if (rc != 0 && errno != EEXIST) return -1;
    }
    return mkdtemp(dir) ? 0 : -1;
}

void tmpdir_remove(const char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        char path[1024];
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            unlink(path);
        }
        closedir(d);
    }
    rmdir(dir);
}

void write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    if (!fp) fail_msg("cannot write %s", path);
    fputs(text, fp);
    fclose(fp);
}

const char *source_dir(void)
{
    const char *root = getenv("CDCPIPE_SOURCE_DIR");
    if (!root) fail_msg("CDCPIPE_SOURCE_DIR is not set (run through ctest)");
    return root;
}

char *read_fixture(const char *name, size_t *len)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/fixtures/debezium/handwritten/%s", source_dir(), name);
    FILE *fp = fopen(path, "rb");
    if (!fp) fail_msg("cannot open %s", path);
    strbuf b = {0};
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, fp)) > 0)
        strbuf_append(&b, chunk, n);
    fclose(fp);
    *len = b.len;
    return b.data;
}

/* ---- a pipeline.lua in a temporary directory ---- */

int script_fixture_setup(void **state)
{
    script_fixture *f = calloc(1, sizeof *f);
    if (!f) return -1;
    if (tmpdir_create(f->dir, sizeof f->dir) != 0) {
        free(f);
        return -1;
    }
    snprintf(f->path, sizeof f->path, "%s/pipeline.lua", f->dir);
    *state = f;
    return 0;
}

int script_fixture_teardown(void **state)
{
    script_fixture *f = *state;
    script_close(f->s);
    tmpdir_remove(f->dir);
    free(f);
    return 0;
}

script *script_fixture_open(script_fixture *f, const char *text, size_t memory_limit)
{
    write_file(f->path, text);
    char err[1024];
    script_close(f->s);
    f->s = script_open(f->path, memory_limit, err, sizeof err);
    if (!f->s) fail_msg("script_open: %s", err);
    return f->s;
}

/* ---- checks ---- */

void expect_text_or_error(int rc, const char *out, const char *err, const char *want,
                          const char *want_err, const char *fmt, ...)
{
    const int ok =
        want ? rc == 0 && out && strcmp(out, want) == 0 : rc == -1 && strcmp(err, want_err) == 0;
    if (!ok) {
        char what[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(what, sizeof what, fmt, ap);
        va_end(ap);
        if (rc == 0)
            print_error("%s: rc 0 out \"%s\"\n", what, out ? out : "(null)");
        else if (rc == -1)
            print_error("%s: rc -1 err \"%s\"\n", what, err);
        else
            print_error("%s: rc %d\n", what, rc);
    }
    if (want) {
        assert_int_equal(rc, 0);
        assert_string_equal(out, want);
    } else {
        assert_int_equal(rc, -1);
        assert_string_equal(err, want_err);
    }
}
