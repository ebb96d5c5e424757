// unpack: extracts a verified archive (libarchive: tar, tar.gz, zip) safely. Everything is
// written into a temporary directory beside the destination, then renamed into place, so the
// unpacked directory exists only complete. Refused: absolute paths, "..", entries outside the
// expected top directory, symbolic links that point outside it, hard links, device files, fifos
// and sockets. Members listed in the registry are checked (size, then sha256) before the rename.
#pragma once
#include "registry.h"

// Unpacks archive so that parent/top holds the archive's top directory "top". Every entry must
// lie under top/. Returns 0, or -1 with a message naming the archive and the entry.
int unpack_archive(const char *archive, const char *parent, const char *top, const reg_member *members,
                   int n_members);
// Checks the members of an unpacked directory (paths relative to parent). 0 or -1.
int unpack_check_members(const char *parent, const reg_member *members, int n_members);
