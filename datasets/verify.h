// verify: checks bytes on disk against what the registry knows of them. Owns the order of the
// checks (an HTML page is named as such; then the size; then the format's magic; then sha256, then
// md5), the content check of gzip files (the decompressed bytes are authoritative, so a copy
// re-compressed by a distribution verifies), the member checks after unpacking, and the pins of
// files nothing is published for (their sha256 recorded on first use in "<file>.sha256", in
// sha256sum's format, and required from then on).
#pragma once
#include "datasets/registry.h"
#include <stdbool.h>
#include <stddef.h>

typedef struct {
  int64_t size;          // bytes on disk
  char sha256[65];       // of the bytes on disk
  char how[160];         // what verified it: "sha256", "md5", "decompressed content sha256", "pinned sha256", ...
  bool pinned_now;       // nothing was known: the sha256 was recorded by this call
} verify_info;

// Verifies path as registry file f. origin (a URL or NULL) is named in error messages. pin_path
// (NULL: no pinning) is where the sha256 of a file nothing is known of is kept: compared when it
// exists, written when absent and write_pin is set. Returns 0 when verified, -1 with a message
// saying what was expected and what was found.
int verify_file(const reg_file *f, const char *path, const char *origin, const char *pin_path, bool write_pin,
                verify_info *info);
// Checks a digest description against a file (members after unpacking). 0 or -1 with a message.
int verify_bytes_file(const reg_digest *want, const char *path);
// True when the first bytes look like an HTML page (after whitespace and a BOM).
bool looks_like_html(const void *head, size_t n);
// Checks the format's magic number on the first bytes; -1 with "expected ... found ..." when wrong.
int check_magic(reg_format fmt, const void *head, size_t n, const char *what);
