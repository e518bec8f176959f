/*
 * lua_pool — small blocks for a Lua state's allocator, kept on free lists by size class.
 *
 * A Lua state allocates and frees many small objects per event (tables, their nodes, strings,
 * closures); glibc's malloc and free cost about as much as building the values. Blocks up to
 * LUA_POOL_MAX_BLOCK bytes come from 64 KiB slabs instead, in classes of 16 bytes, and a freed
 * block goes back on its class's list: a few instructions each way. Larger blocks go to malloc.
 * Slabs are returned to the system only by lua_pool_free (after lua_close), so the pool holds
 * the peak of small blocks the state ever used; the state's cap (--lua-memory-mb) counts bytes
 * requested as before. Built with AddressSanitizer, every block goes to malloc so that the
 * sanitizer still sees each one.
 */
#ifndef CDCPIPE_LUA_POOL_H
#define CDCPIPE_LUA_POOL_H

#include <stddef.h>

/* 1 KiB: the copy of a usual event's text that its lazy tables keep (json_fast.h) fits */
#define LUA_POOL_MAX_BLOCK 1024

typedef struct lua_pool lua_pool;

/* Returns a new pool, or NULL when out of memory. */
lua_pool *lua_pool_new(void);
/* Frees every slab; call after lua_close of the state it served. NULL is fine. */
void lua_pool_free(lua_pool *p);

/* A lua_Alloc's work (ptr and osize as Lua passes them): nsize 0 frees ptr and returns NULL;
 * otherwise returns a block of nsize bytes holding the first min(osize, nsize) bytes of ptr,
 * or NULL (ptr untouched) when memory cannot be had. */
void *lua_pool_realloc(lua_pool *p, void *ptr, size_t osize, size_t nsize);

#endif
