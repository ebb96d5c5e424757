// unpack: extracts a verified archive (libarchive: tar, tar.gz, zip) safely. Everything is
// written into a temporary directory beside the destination, then renamed into place, so the
// unpacked directory exists only complete. Refused: absolute paths, "..", entries outside the
// expected top directory, symbolic links that resolve outside it (as the filesystem resolves
// them, through the links before them) or to nothing, a path that appears twice, hard links,
// device files, fifos and sockets. A member stops being written as soon as it passes its declared
// size (the registry's, else the archive header's); the entries and the bytes of the whole
// archive are capped. Members listed in the registry are checked (size, then sha256) before the
// rename.
#pragma once
#include "datasets/registry.h"
#include <stddef.h>
#include <stdint.h>

typedef struct {
  int64_t max_bytes;    // all members together
  int64_t max_entries;  // entries of every kind
} unpack_limits;
// STL-10, the largest archive the registry unpacks, holds 3.1 GB in 8 entries.
#define UNPACK_MAX_BYTES ((int64_t)16 << 30)
#define UNPACK_MAX_ENTRIES 100000

// Unpacks archive so that parent/top holds the archive's top directory "top". Every entry must
// lie under top/. lim NULL: UNPACK_MAX_BYTES and UNPACK_MAX_ENTRIES. Returns 0, or -1 with a
// message naming the archive and the entry.
int unpack_archive(const char *archive, const char *parent, const char *top, const reg_member *members,
                   int n_members, const unpack_limits *lim);
// Checks the members of an unpacked directory (paths relative to parent). 0 or -1.
int unpack_check_members(const char *parent, const reg_member *members, int n_members);
// Reads each regular-file member of archive whole into memory (at most max_len bytes) and calls
// fn with it; want (may be NULL) picks the members by path, the others are skipped unread.
// Stops at the first fn that fails. 0 or -1 (a message naming the archive and the member).
int unpack_each_member(const char *archive, size_t max_len, int (*want)(void *ctx, const char *entry),
                       int (*fn)(void *ctx, const char *entry, const uint8_t *buf, size_t len), void *ctx);
