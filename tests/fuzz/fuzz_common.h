/*
 * fuzz_common — what the libFuzzer targets in tests/fuzz share: splitting an input into its
 * parts, json_decoder_push under lua_pcall with its stack contract checked, and an
 * order-independent text dump of a Lua table (sorted key/value pairs) to compare values by.
 *
 * Everything here aborts (fuzz_fail) when a contract is broken, so libFuzzer records the input.
 */
#ifndef CDCPIPE_FUZZ_COMMON_H
#define CDCPIPE_FUZZ_COMMON_H

#include <lua.h>
#include <stddef.h>
#include <stdint.h>

#include "cdcpipe/json_lua.h"
#include "cdcpipe/strbuf.h"

/* libFuzzer's entry points (declared here for -Wmissing-prototypes). */
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* AddressSanitizer's defaults for every target (ASAN_OPTIONS still overrides them): a 64 MiB
 * quarantine instead of 256 MiB, so that -rss_limit_mb measures the code under test rather than
 * freed memory ASan holds back. */
const char *__asan_default_options(void);

/* Prints "fuzz: <message>" on stderr and aborts: the input is a finding. */
void fuzz_fail(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

/* An input is JSON text, optionally followed by a NUL byte and a tail (JSON text holds no raw
 * NUL, so the seed corpus of plain .json files is all text and no tail). tail is NULL when
 * there is no NUL. */
typedef struct {
    const char *text;
    size_t text_len;
    const char *tail;
    size_t tail_len;
} fuzz_input;

fuzz_input fuzz_split(const uint8_t *data, size_t size);

/* json_decoder_push(d, L, text, len, flags) inside lua_pcall. Returns its result; on 0 exactly
 * one value was pushed, on -1 the stack is unchanged and err is not empty (otherwise aborts).
 * d == NULL: one decoder shared by the target, made on first use. */
int fuzz_decode(json_decoder *d, lua_State *L, const char *text, size_t len, int flags, char *err,
                size_t errlen);

/* Dumps one Lua value at idx (absolute or relative) into out. Returns 0 when written, 1 when the
 * value is to be left out of its table (a map value only), -1 when it cannot be dumped. */
typedef int (*fuzz_dump_fn)(strbuf *out, lua_State *L, int idx, int depth, void *ud);

/* Writes the table at idx as "{" pair* "}" where each pair is key-dump value-dump ";", sorted
 * by the key dumps' bytes (so the text does not depend on table order). key and value are
 * called with depth + 1. Returns 0, or -1 as soon as a dumper does. Leaves the stack as it was. */
int fuzz_dump_pairs(strbuf *out, lua_State *L, int idx, int depth, fuzz_dump_fn key,
                    fuzz_dump_fn value, void *ud);

/* Appends len:bytes (self-delimiting). */
void fuzz_dump_bytes(strbuf *out, char tag, const char *s, size_t len);

#endif
