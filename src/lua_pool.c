/*
 * lua_pool — size-class free lists for a Lua state's small blocks (see include/cdcpipe/lua_pool.h).
 */
#include "cdcpipe/lua_pool.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SANITIZE_ADDRESS__)
#define POOL_BYPASS 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define POOL_BYPASS 1
#endif
#endif
#ifndef POOL_BYPASS
#define POOL_BYPASS 0
#endif

#define CLASS_SIZE 16
#define NCLASSES   (LUA_POOL_MAX_BLOCK / CLASS_SIZE)
#define SLAB_SIZE  (64 * 1024)

typedef struct free_block {
    struct free_block *next;
} free_block;

typedef struct slab {
    struct slab *prev;
    max_align_t align[]; /* blocks are carved from here on */
} slab;

struct lua_pool {
    free_block *free[NCLASSES]; /* class c holds blocks of (c + 1) * CLASS_SIZE bytes */
    slab *slabs;                /* newest first */
    unsigned char *bump, *bump_end;
};

lua_pool *lua_pool_new(void)
{
    return calloc(1, sizeof(lua_pool));
}

void lua_pool_free(lua_pool *p)
{
    if (!p) return;
    while (p->slabs) {
        slab *prev = p->slabs->prev;
        free(p->slabs);
        p->slabs = prev;
    }
    free(p);
}

/* The class of a small size (1..LUA_POOL_MAX_BLOCK). */
static size_t class_of(size_t size)
{
    return (size - 1) / CLASS_SIZE;
}

static void *pool_alloc(lua_pool *p, size_t size)
{
    size_t c = class_of(size);
    free_block *b = p->free[c];
    if (b) {
        p->free[c] = b->next;
        return b;
    }
    size_t bytes = (c + 1) * CLASS_SIZE;
    if ((size_t)(p->bump_end - p->bump) < bytes) {
        slab *s = malloc(sizeof(slab) + SLAB_SIZE);
        if (!s) return NULL;
        s->prev = p->slabs;
        p->slabs = s;
        p->bump = (unsigned char *)s->align;
        p->bump_end = p->bump + SLAB_SIZE;
    }
    void *block = p->bump;
    p->bump += bytes;
    return block;
}

static void pool_release(lua_pool *p, void *ptr, size_t size)
{
    free_block *b = ptr;
    size_t c = class_of(size);
    b->next = p->free[c];
    p->free[c] = b;
}

/* Everything but the two usual cases lua_pool_realloc takes first. */
static __attribute__((noinline)) void *pool_realloc_slow(lua_pool *p, void *ptr, size_t osize,
                                                         size_t nsize)
{
    bool old_small = ptr && osize <= LUA_POOL_MAX_BLOCK;
    if (nsize > LUA_POOL_MAX_BLOCK) {
        if (!old_small) return realloc(ptr, nsize);
        void *fresh = malloc(nsize);
        if (!fresh) return NULL;
        memcpy(fresh, ptr, osize);
        pool_release(p, ptr, osize);
        return fresh;
    }
    if (old_small && class_of(osize) == class_of(nsize)) return ptr;
    void *fresh = pool_alloc(p, nsize);
    if (!fresh) return NULL;
    if (ptr) {
        memcpy(fresh, ptr, osize < nsize ? osize : nsize);
        if (old_small)
            pool_release(p, ptr, osize);
        else
            free(ptr);
    }
    return fresh;
}

void *lua_pool_realloc(lua_pool *p, void *ptr, size_t osize, size_t nsize)
{
    if (POOL_BYPASS) {
        if (nsize == 0) {
            free(ptr);
            return NULL;
        }
        return realloc(ptr, nsize);
    }
    if (nsize == 0) {
        if (!ptr) return NULL; /* Lua frees empty parts this way too */
        if (osize <= LUA_POOL_MAX_BLOCK)
            pool_release(p, ptr, osize);
        else
            free(ptr);
        return NULL;
    }
    if (!ptr && nsize <= LUA_POOL_MAX_BLOCK) { /* a new small block (osize: the object's type) */
        free_block *b = p->free[class_of(nsize)];
        if (b) {
            p->free[class_of(nsize)] = b->next;
            return b;
        }
    }
    return pool_realloc_slow(p, ptr, osize, nsize);
}
