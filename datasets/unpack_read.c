// unpack_read: the members of an archive read straight into memory, one at a time, for the data
// sets whose archives are only ever decoded (the downsampled ImageNet zips: 3 to 16 GB unpacked,
// so not written to disk a second time). See unpack.h.
#include "datasets/unpack.h"
#include "base/util.h"
#include <archive.h>
#include <archive_entry.h>
#include <stdlib.h>

int unpack_each_member(const char *archive, size_t max_len, int (*want)(void *ctx, const char *entry),
                       int (*fn)(void *ctx, const char *entry, const uint8_t *buf, size_t len), void *ctx) {
  struct archive *a = archive_read_new();
  archive_read_support_filter_all(a);
  archive_read_support_format_all(a);
  int rc = -1;
  if (archive_read_open_filename(a, archive, 1 << 20) != ARCHIVE_OK) {
    igpt_err("%s: cannot open as an archive: %s", archive, archive_error_string(a));
    goto done;
  }
  struct archive_entry *e;
  int r;
  int64_t n_entries = 0;
  while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
    const char *name = archive_entry_pathname(e);
    if (++n_entries > UNPACK_MAX_ENTRIES) {
      igpt_err("%s: more than %d entries (the limit of one archive): not the expected archive", archive,
               UNPACK_MAX_ENTRIES);
      goto done;
    }
    if (archive_entry_filetype(e) != AE_IFREG || !name || (want && !want(ctx, name))) continue;
    int64_t declared = archive_entry_size_is_set(e) ? archive_entry_size(e) : -1;
    if (declared > (int64_t)max_len) {
      igpt_err("%s: member %s declares %lld bytes, more than the %zu expected", archive, name, (long long)declared, max_len);
      goto done;
    }
    size_t cap = declared >= 0 ? (size_t)declared + 1 : 1 << 20, len = 0;
    uint8_t *buf = xmalloc(cap);
    for (;;) {
      if (len == cap) {
        if (cap > max_len) {
          free(buf);
          igpt_err("%s: member %s holds more than the %zu bytes expected", archive, name, max_len);
          goto done;
        }
        cap *= 2;
        buf = xrealloc(buf, cap);
      }
      la_ssize_t got = archive_read_data(a, buf + len, cap - len);
      if (got < 0) {
        igpt_err("%s: member %s: cannot read at byte %zu: %s (the archive is damaged; fetch it again)", archive,
                 name, len, archive_error_string(a));
        free(buf);
        goto done;
      }
      if (got == 0) break;
      len += (size_t)got;
    }
    int frc = fn(ctx, name, buf, len);
    free(buf);
    if (frc != 0) goto done;
  }
  if (r != ARCHIVE_EOF) {
    igpt_err("%s: cannot read the next entry: %s (the archive is damaged; fetch it again)", archive, archive_error_string(a));
    goto done;
  }
  rc = 0;
done:
  archive_read_free(a);
  return rc;
}
