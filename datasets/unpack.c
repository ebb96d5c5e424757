// unpack: safe extraction with libarchive into a temporary directory, then rename. See unpack.h.
// Entries are vetted before anything is written: the path must be relative, free of "..", and
// under the expected top directory; only directories, regular files and symbolic links whose
// target stays inside the top directory are accepted. Files are written through libarchive's
// disk writer with its own secure flags (no "..", no writing through symlinks) as a second line
// of defence; its no-absolute-paths flag cannot be used, the vetted paths are made absolute here.
#include "datasets/unpack.h"
#include "base/util.h"
#include "datasets/verify.h"
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

// Normalises a member path (drops "./" and empty components); NULL when it is absolute or climbs.
static char *clean_path(const char *p) {
  if (!p || !*p || p[0] == '/') return NULL;
  char *out = xmalloc(strlen(p) + 1);
  size_t o = 0;
  for (const char *s = p; *s;) {
    const char *e = strchr(s, '/');
    size_t n = e ? (size_t)(e - s) : strlen(s);
    if (n == 2 && s[0] == '.' && s[1] == '.') { free(out); return NULL; }
    if (n && !(n == 1 && s[0] == '.')) {
      if (o) out[o++] = '/';
      memcpy(out + o, s, n);
      o += n;
    }
    s += n + (e ? 1 : 0);
  }
  out[o] = 0;
  if (!o) { free(out); return NULL; }
  return out;
}

// Does a symlink at entry path "link" with target "target" resolve inside top/? Resolved lexically
// (the members written so far are vetted the same way, so no earlier link can redirect it).
static bool link_stays_inside(const char *link, const char *target, const char *top) {
  if (!target || !*target || target[0] == '/') return false;
  // Start from the link's directory, as components.
  char *buf = xasprintf("%s", link);
  char *slash = strrchr(buf, '/');
  if (slash) *slash = 0; else buf[0] = 0;
  char *joined = xasprintf("%s%s%s", buf, buf[0] ? "/" : "", target);
  free(buf);
  // Walk components with a depth counter; ".." below depth 0 escapes.
  char *stack[512];
  int depth = 0;
  bool ok = true;
  char *save = NULL;
  for (char *c = strtok_r(joined, "/", &save); c && ok; c = strtok_r(NULL, "/", &save)) {
    if (!strcmp(c, ".")) continue;
    if (!strcmp(c, "..")) { if (depth == 0) ok = false; else depth--; continue; }
    if (depth == 512) { ok = false; break; }
    stack[depth++] = c;
  }
  if (ok) ok = depth >= 1 && !strcmp(stack[0], top);
  free(joined);
  return ok;
}

static const char *type_name(mode_t t) {
  switch (t) {
  case AE_IFCHR: return "a character device";
  case AE_IFBLK: return "a block device";
  case AE_IFIFO: return "a fifo";
  case AE_IFSOCK: return "a socket";
  default: return "an unsupported entry type";
  }
}

static int copy_data(struct archive *in, struct archive *out) {
  const void *buf;
  size_t n;
  la_int64_t off;
  for (;;) {
    int r = archive_read_data_block(in, &buf, &n, &off);
    if (r == ARCHIVE_EOF) return ARCHIVE_OK;
    if (r < ARCHIVE_OK) return r;
    if (archive_write_data_block(out, buf, n, off) < ARCHIVE_OK) return ARCHIVE_FATAL;
  }
}

int unpack_check_members(const char *parent, const reg_member *members, int n_members) {
  for (int i = 0; i < n_members; i++) {
    char *p = xasprintf("%s/%s", parent, members[i].path);
    int rc = verify_bytes_file(&members[i].want, p);
    free(p);
    if (rc) return igpt_err_prefix("unpacked member %s", members[i].path);
  }
  return 0;
}

int unpack_archive(const char *archive, const char *parent, const char *top, const reg_member *members,
                   int n_members) {
  char *tmp = xasprintf("%s/.unpack-XXXXXX", parent);
  if (mkdir_p(parent) || !mkdtemp(tmp)) {
    int rc = igpt_err("%s: cannot create a temporary directory: %s", tmp, strerror(errno));
    free(tmp);
    return rc;
  }
  struct archive *in = archive_read_new(), *out = archive_write_disk_new();
  archive_read_support_filter_all(in);
  archive_read_support_format_all(in);
  archive_write_disk_set_options(out, ARCHIVE_EXTRACT_SECURE_NODOTDOT | ARCHIVE_EXTRACT_SECURE_SYMLINKS |
                                          ARCHIVE_EXTRACT_NO_OVERWRITE |
                                          ARCHIVE_EXTRACT_TIME);
  int rc = -1;
  long n_entries = 0;
  char *dest = NULL, *old = NULL;
  if (archive_read_open_filename(in, archive, 1 << 16) != ARCHIVE_OK) {
    igpt_err("%s: cannot open as an archive: %s", archive, archive_error_string(in));
    goto out;
  }
  struct archive_entry *e;
  int r;
  while ((r = archive_read_next_header(in, &e)) == ARCHIVE_OK) {
    n_entries++;
    char name[1024];  // a copy: setting the pathname below invalidates libarchive's string
    snprintf(name, sizeof name, "%s", archive_entry_pathname(e) ? archive_entry_pathname(e) : "");
    char *clean = clean_path(name);
    if (!clean) {
      igpt_err("%s: refused entry '%s': %s", archive, name,
               name[0] == '/' ? "an absolute path" : "a path with '..' (or empty)");
      goto out;
    }
    size_t tl = strlen(top);
    if (strncmp(clean, top, tl) || (clean[tl] != '/' && clean[tl] != 0)) {
      igpt_err("%s: refused entry '%s': outside the expected top directory '%s/'", archive, name, top);
      free(clean);
      goto out;
    }
    if (archive_entry_hardlink(e)) {
      igpt_err("%s: refused entry '%s': a hard link (to '%s')", archive, name, archive_entry_hardlink(e));
      free(clean);
      goto out;
    }
    mode_t t = archive_entry_filetype(e);
    if (t == AE_IFLNK) {
      const char *target = archive_entry_symlink(e);
      if (!link_stays_inside(clean, target, top)) {
        igpt_err("%s: refused entry '%s': a symbolic link to '%s', outside '%s/'", archive, name, target ? target : "",
                 top);
        free(clean);
        goto out;
      }
    } else if (t != AE_IFREG && t != AE_IFDIR) {
      igpt_err("%s: refused entry '%s': %s", archive, name, type_name(t));
      free(clean);
      goto out;
    }
    char *full = xasprintf("%s/%s", tmp, clean);
    archive_entry_set_pathname(e, full);
    archive_entry_set_perm(e, t == AE_IFDIR ? 0755 : 0644);  // no setuid bits, always readable
    free(full);
    free(clean);
    if (archive_write_header(out, e) != ARCHIVE_OK) {
      igpt_err("%s: cannot write entry '%s': %s", archive, name, archive_error_string(out));
      goto out;
    }
    if (t == AE_IFREG && archive_entry_size(e) > 0 && copy_data(in, out) != ARCHIVE_OK) {
      igpt_err("%s: entry '%s': %s", archive, name,
               archive_error_string(in) ? archive_error_string(in) : archive_error_string(out));
      goto out;
    }
    if (archive_write_finish_entry(out) != ARCHIVE_OK) {
      igpt_err("%s: entry '%s': %s", archive, name, archive_error_string(out));
      goto out;
    }
  }
  if (r != ARCHIVE_EOF) {
    igpt_err("%s: corrupt archive after %ld entries: %s", archive, n_entries, archive_error_string(in));
    goto out;
  }
  if (archive_write_close(out) != ARCHIVE_OK) {
    igpt_err("%s: %s", archive, archive_error_string(out));
    goto out;
  }
  char *tmp_top = xasprintf("%s/%s", tmp, top);
  bool has_top = path_exists(tmp_top);
  free(tmp_top);
  if (!has_top) {
    igpt_err("%s: holds no '%s/' directory (%ld entries)", archive, top, n_entries);
    goto out;
  }
  if (unpack_check_members(tmp, members, n_members)) {
    igpt_err_prefix("%s", archive);
    goto out;
  }
  // Into place: the old copy (if any) is moved aside first, then removed.
  dest = xasprintf("%s/%s", parent, top);
  char *src = xasprintf("%s/%s", tmp, top);
  if (path_exists(dest)) {
    old = xasprintf("%s/.old-%s-%d", parent, top, (int)getpid());
    rm_rf(old);
    if (rename(dest, old) != 0) {
      igpt_err("%s: cannot move the old copy aside: %s", dest, strerror(errno));
      free(src);
      goto out;
    }
  }
  if (rename(src, dest) != 0) {
    igpt_err("%s: cannot rename into place: %s", dest, strerror(errno));
    if (old) rename(old, dest);
    free(src);
    goto out;
  }
  free(src);
  if (old) rm_rf(old);
  rc = 0;
out:
  archive_read_free(in);
  archive_write_free(out);
  rm_rf(tmp);
  free(tmp);
  free(dest);
  free(old);
  return rc;
}
