/*
 * sha256 — SHA-256 (FIPS 180-4) of a byte string or a file, as lowercase hex. For
 * cdcpipe_build_info's script_sha256: which pipeline.lua a running process has loaded.
 *
 * @locality: any thread; @locks: none.
 */
#ifndef CDCPIPE_SHA256_H
#define CDCPIPE_SHA256_H

#include <stddef.h>

#define SHA256_HEX_LEN 64

/* hex receives 64 hex digits and a NUL. */
void sha256_hex(const void *data, size_t len, char hex[SHA256_HEX_LEN + 1]);

/* The digest of the file at path into hex. Returns 0, or -1 (hex then "") when it cannot be
 * read. */
int sha256_file_hex(const char *path, char hex[SHA256_HEX_LEN + 1]);

#endif
