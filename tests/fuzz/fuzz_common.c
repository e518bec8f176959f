/*
 * fuzz_common — helpers shared by the libFuzzer targets (see fuzz_common.h).
 */
#include "fuzz_common.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

const char *__asan_default_options(void)
{
    return "quarantine_size_mb=64";
}

void fuzz_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("fuzz: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    abort();
}

fuzz_input fuzz_split(const uint8_t *data, size_t size)
{
    fuzz_input in = {(const char *)data, size, NULL, 0};
    const uint8_t *nul = size ? memchr(data, 0, size) : NULL;
    if (nul) {
        in.text_len = (size_t)(nul - data);
        in.tail = (const char *)nul + 1;
        in.tail_len = size - in.text_len - 1;
    }
    return in;
}

typedef struct {
    json_decoder *d;
    const char *text;
    size_t len;
    int flags;
    int rc;
    char *err;
    size_t errlen;
} decode_call;

/* Runs inside lua_pcall with the decode_call as its only argument. */
static int decode_protected(lua_State *L)
{
    decode_call *c = lua_touserdata(L, 1);
    lua_settop(L, 0);
    c->rc = json_decoder_push(c->d, L, c->text, c->len, c->flags, c->err, c->errlen);
    if (c->rc == 0 && lua_gettop(L) != 1)
        fuzz_fail("json_decoder_push returned 0 with %d values pushed", lua_gettop(L));
    if (c->rc == -1 && lua_gettop(L) != 0)
        fuzz_fail("json_decoder_push returned -1 but left %d values (%s)", lua_gettop(L), c->err);
    if (c->rc != 0 && c->rc != -1) fuzz_fail("json_decoder_push returned %d", c->rc);
    if (c->rc == -1 && c->err[0] == '\0') fuzz_fail("json_decoder_push failed without a message");
    return c->rc == 0 ? 1 : 0;
}

int fuzz_decode(json_decoder *d, lua_State *L, const char *text, size_t len, int flags, char *err,
                size_t errlen)
{
    static json_decoder *shared;
    if (!d) {
        if (!shared && !(shared = json_decoder_new())) fuzz_fail("out of memory");
        d = shared;
    }
    decode_call c = {d, text, len, flags, -1, err, errlen};
    int base = lua_gettop(L);
    err[0] = '\0';
    lua_pushcfunction(L, decode_protected);
    lua_pushlightuserdata(L, &c);
    if (lua_pcall(L, 1, LUA_MULTRET, 0) != LUA_OK)
        fuzz_fail("json_decoder_push raised a Lua error: %s", lua_tostring(L, -1));
    /* the protected function returns the value on success, nothing on failure */
    if (lua_gettop(L) != base + (c.rc == 0 ? 1 : 0))
        fuzz_fail("stack after json_decoder_push: %d, expected %d", lua_gettop(L),
                  base + (c.rc == 0 ? 1 : 0));
    return c.rc;
}

void fuzz_dump_bytes(strbuf *out, char tag, const char *s, size_t len)
{
    strbuf_printf(out, "%c%zu:", tag, len);
    strbuf_append(out, s, len);
}

typedef struct {
    strbuf text;   /* key dump then value dump */
    size_t keylen; /* bytes of text that are the key dump */
} dumped_pair;

static int compare_pairs(const void *a, const void *b)
{
    const dumped_pair *x = a, *y = b;
    size_t n = x->keylen < y->keylen ? x->keylen : y->keylen;
    int c = memcmp(x->text.data, y->text.data, n);
    if (c != 0) return c;
    return x->keylen < y->keylen ? -1 : x->keylen > y->keylen;
}

int fuzz_dump_pairs(strbuf *out, lua_State *L, int idx, int depth, fuzz_dump_fn key,
                    fuzz_dump_fn value, void *ud)
{
    idx = lua_absindex(L, idx);
    int base = lua_gettop(L);
    if (!lua_checkstack(L, 4)) fuzz_fail("Lua stack exhausted while dumping");
    dumped_pair *pairs = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        /* stack: ... key value */
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            pairs = realloc(pairs, cap * sizeof *pairs);
            if (!pairs) abort();
        }
        dumped_pair *p = &pairs[n];
        memset(p, 0, sizeof *p);
        int krc = key(&p->text, L, base + 1, depth + 1, ud);
        p->keylen = p->text.len;
        int vrc = krc == 0 ? value(&p->text, L, base + 2, depth + 1, ud) : krc;
        lua_pop(L, 1);
        if (krc < 0 || vrc < 0) {
            strbuf_free(&p->text);
            rc = -1;
            break;
        }
        if (krc > 0 || vrc > 0)
            strbuf_free(&p->text); /* left out */
        else
            n++;
    }
    lua_settop(L, base);
    if (rc == 0) {
        if (n > 1) qsort(pairs, n, sizeof *pairs, compare_pairs);
        strbuf_putc(out, '{');
        for (size_t i = 0; i < n; i++) {
            strbuf_append(out, pairs[i].text.data, pairs[i].text.len);
            strbuf_putc(out, ';');
        }
        strbuf_putc(out, '}');
    }
    for (size_t i = 0; i < n; i++)
        strbuf_free(&pairs[i].text);
    free(pairs);
    return rc;
}
