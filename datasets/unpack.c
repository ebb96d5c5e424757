// unpack: safe extraction with libarchive into a temporary directory, then rename. See unpack.h.
// Entries are vetted before anything is written: the path must be relative, free of "..", under
// the expected top directory and new (an archive naming a path twice is ambiguous); only
// directories, regular files and symbolic links whose target stays inside the top directory are
// accepted. Files are written through libarchive's disk writer with its own secure flags (no
// "..", no writing through symlinks) as a second line of defence; its no-absolute-paths flag
// cannot be used, the vetted paths are made absolute here.
// Links are judged twice: lexically when their entry is read (a clear early refusal), then, once
// every entry is on disk, by realpath(3): a link resolves through the links before it (a link to
// an ancestor directory turns a lexically harmless "a/b/up/../../x" into an escape), so only the
// kernel's own resolution of the finished tree decides. Nothing reads through a link before then.
#include "datasets/unpack.h"
#include "base/util.h"
#include "datasets/verify.h"
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <limits.h>
#include <search.h>
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

// Does a symlink at entry path "link" with target "target" stay inside top/ when read lexically?
// The early check only: earlier links can still redirect it (links_resolve_inside decides).
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

// libarchive's message for the disk writer, with the errno text when it has one ("Write failed:
// No space left on device"); the reader's errno values are libarchive's own codes, not errno.
static const char *write_error(struct archive *out, char *buf, size_t n) {
  const char *s = archive_error_string(out) ? archive_error_string(out) : "write error";
  int e = archive_errno(out);
  if (e > 0 && !strstr(s, strerror(e))) snprintf(buf, n, "%s: %s", s, strerror(e));
  else snprintf(buf, n, "%s", s);
  return buf;
}

// Copies one member's data, stopping as soon as it passes its declared size (limit, -1: none)
// or the archive passes lim->max_bytes (*total counts every member so far).
static int copy_data(struct archive *in, struct archive *out, const char *archive, const char *name, int64_t limit,
                     const char *limit_what, int64_t *total, const unpack_limits *lim) {
  const void *buf;
  size_t n;
  la_int64_t off;
  int64_t end = 0;
  for (;;) {
    int r = archive_read_data_block(in, &buf, &n, &off);
    if (r == ARCHIVE_EOF) return 0;
    if (r < ARCHIVE_OK) return igpt_err("%s: entry '%s': %s", archive, name, archive_error_string(in));
    if (off + (int64_t)n > end) {
      *total += off + (int64_t)n - end;
      end = off + (int64_t)n;
    }
    if (limit >= 0 && end > limit)
      return igpt_err("%s: refused entry '%s': more than its declared %lld bytes (%s); stopped at %lld", archive, name,
                      (long long)limit, limit_what, (long long)end);
    if (*total > lim->max_bytes)
      return igpt_err("%s: refused entry '%s': the archive unpacks to more than %lld bytes (the limit of one "
                      "archive); stopped", archive, name, (long long)lim->max_bytes);
    char why[512];
    if (archive_write_data_block(out, buf, n, off) < ARCHIVE_OK)
      return igpt_err("%s: entry '%s': cannot write: %s", archive, name, write_error(out, why, sizeof why));
  }
}

// The registry's member at clean path p, or NULL.
static const reg_member *find_member(const reg_member *members, int n, const char *p) {
  for (int i = 0; i < n; i++)
    if (!strcmp(members[i].path, p)) return &members[i];
  return NULL;
}

// Every path seen so far (a hash table of the clean paths; the strings are kept in paths[]),
// so a second entry for one path is refused instead of silently skipped by libarchive.
typedef struct {
  struct hsearch_data tab;
  char **paths;
  size_t n;
} seen_set;

// 1 when p was seen before (*was_dir tells whether as a directory), 0 when new (now recorded).
static int seen_before(seen_set *s, const char *p, bool is_dir, bool *was_dir) {
  ENTRY q = {.key = (char *)p}, *found = NULL;
  if (hsearch_r(q, FIND, &found, &s->tab) && found) {
    *was_dir = found->data != NULL;
    return 1;
  }
  s->paths = xrealloc(s->paths, (s->n + 1) * sizeof *s->paths);
  q.key = s->paths[s->n++] = xstrdup(p);
  q.data = is_dir ? (void *)1 : NULL;
  if (!hsearch_r(q, ENTER, &found, &s->tab)) igpt_die("unpack: the path table is full");  // sized for max_entries
  return 0;
}

// After extraction: every link of links[] (clean paths under tmp) must resolve, as the kernel
// resolves it, to something inside tmp/top.
static int links_resolve_inside(const char *archive, const char *tmp, const char *top, char **links, size_t n) {
  char *top_path = xasprintf("%s/%s", tmp, top), root[PATH_MAX], got[PATH_MAX];
  int rc = 0;
  if (!realpath(top_path, root)) rc = igpt_err("%s: %s: cannot resolve: %s", archive, top_path, strerror(errno));
  size_t rl = strlen(root);
  for (size_t i = 0; i < n && rc == 0; i++) {
    char *p = xasprintf("%s/%s", tmp, links[i]), target[PATH_MAX] = "";
    ssize_t tl = readlink(p, target, sizeof target - 1);
    if (tl >= 0) target[tl] = 0;
    if (!realpath(p, got))
      rc = igpt_err("%s: refused entry '%s': a symbolic link to '%s' that resolves to nothing (%s)", archive, links[i],
                    target, strerror(errno));
    else if (strncmp(got, root, rl) || (got[rl] != '/' && got[rl] != 0))
      rc = igpt_err("%s: refused entry '%s': a symbolic link to '%s' that resolves to %s through the links before it, "
                    "outside '%s/'", archive, links[i], target, got, top);
    free(p);
  }
  free(top_path);
  return rc;
}

// A member is read only where it really lies inside its top directory (a tree unpacked before
// links were judged on the resolved path may hold one that leads out).
static int member_inside(const char *parent, const char *member) {
  char *top = xasprintf("%s/%.*s", parent, (int)strcspn(member, "/"), member), *p = xasprintf("%s/%s", parent, member);
  char root[PATH_MAX], got[PATH_MAX];
  int rc = 0;
  if (realpath(top, root) && realpath(p, got)) {
    size_t rl = strlen(root);
    if (strncmp(got, root, rl) || got[rl] != '/')
      rc = igpt_err("%s: resolves to %s, outside %s: a link leads out of the unpacked directory; remove %s and "
                    "fetch again", p, got, root, top);
  }  // a missing member: verify_bytes_file says so
  free(top);
  free(p);
  return rc;
}

int unpack_check_members(const char *parent, const reg_member *members, int n_members) {
  for (int i = 0; i < n_members; i++) {
    char *p = xasprintf("%s/%s", parent, members[i].path);
    int rc = member_inside(parent, members[i].path);
    if (rc == 0) rc = verify_bytes_file(&members[i].want, p);
    free(p);
    if (rc) return igpt_err_prefix("unpacked member %s", members[i].path);
  }
  return 0;
}

int unpack_archive(const char *archive, const char *parent, const char *top, const reg_member *members,
                   int n_members, const unpack_limits *lim) {
  static const unpack_limits defaults = {UNPACK_MAX_BYTES, UNPACK_MAX_ENTRIES};
  if (!lim) lim = &defaults;
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
  int64_t total = 0;
  char *dest = NULL, *old = NULL, why[512];
  seen_set seen = {0};
  char **links = NULL;
  size_t n_links = 0;
  if (!hcreate_r((size_t)lim->max_entries + lim->max_entries / 4 + 16, &seen.tab)) igpt_die("unpack: out of memory");
  if (archive_read_open_filename(in, archive, 1 << 16) != ARCHIVE_OK) {
    igpt_err("%s: cannot open as an archive: %s", archive, archive_error_string(in));
    goto out;
  }
  struct archive_entry *e;
  int r;
  while ((r = archive_read_next_header(in, &e)) == ARCHIVE_OK) {
    char name[1024];  // a copy: setting the pathname below invalidates libarchive's string
    snprintf(name, sizeof name, "%s", archive_entry_pathname(e) ? archive_entry_pathname(e) : "");
    if (++n_entries > lim->max_entries) {
      igpt_err("%s: refused entry '%s': more than %lld entries (the limit of one archive)", archive, name,
               (long long)lim->max_entries);
      goto out;
    }
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
    bool was_dir;
    if (seen_before(&seen, clean, t == AE_IFDIR, &was_dir) && !(was_dir && t == AE_IFDIR)) {
      igpt_err("%s: refused entry '%s': the archive holds '%s' twice (which copy is meant is ambiguous)", archive, name,
               clean);
      free(clean);
      goto out;
    }
    if (t == AE_IFLNK) {
      const char *target = archive_entry_symlink(e);
      if (!link_stays_inside(clean, target, top)) {
        igpt_err("%s: refused entry '%s': a symbolic link to '%s', outside '%s/'", archive, name, target ? target : "",
                 top);
        free(clean);
        goto out;
      }
      links = xrealloc(links, (n_links + 1) * sizeof *links);
      links[n_links++] = xstrdup(clean);
    } else if (t != AE_IFREG && t != AE_IFDIR) {
      igpt_err("%s: refused entry '%s': %s", archive, name, type_name(t));
      free(clean);
      goto out;
    }
    // The size it may have: the registry's for a listed member, else its header's.
    const reg_member *m = t == AE_IFREG ? find_member(members, n_members, clean) : NULL;
    int64_t limit = archive_entry_size_is_set(e) ? archive_entry_size(e) : -1;
    const char *limit_what = "the archive header";
    if (m && m->want.size >= 0) {
      if (limit > m->want.size) {
        igpt_err("%s: refused entry '%s': declares %lld bytes, the registry expects %lld", archive, name,
                 (long long)limit, (long long)m->want.size);
        free(clean);
        goto out;
      }
      limit = m->want.size;
      limit_what = "the registry";
    }
    char *full = xasprintf("%s/%s", tmp, clean);
    archive_entry_set_pathname(e, full);
    archive_entry_set_perm(e, t == AE_IFDIR ? 0755 : 0644);  // no setuid bits, always readable
    free(full);
    free(clean);
    if (archive_write_header(out, e) != ARCHIVE_OK) {
      igpt_err("%s: cannot write entry '%s': %s", archive, name, write_error(out, why, sizeof why));
      goto out;
    }
    if (t == AE_IFREG && copy_data(in, out, archive, name, limit, limit_what, &total, lim) != 0) goto out;
    if (archive_write_finish_entry(out) != ARCHIVE_OK) {
      igpt_err("%s: entry '%s': %s", archive, name, write_error(out, why, sizeof why));
      goto out;
    }
  }
  if (r != ARCHIVE_EOF) {
    igpt_err("%s: corrupt archive after %ld entries: %s", archive, n_entries, archive_error_string(in));
    goto out;
  }
  if (archive_write_close(out) != ARCHIVE_OK) {
    igpt_err("%s: %s", archive, write_error(out, why, sizeof why));
    goto out;
  }
  char *tmp_top = xasprintf("%s/%s", tmp, top);
  bool has_top = path_exists(tmp_top);
  free(tmp_top);
  if (!has_top) {
    igpt_err("%s: holds no '%s/' directory (%ld entries)", archive, top, n_entries);
    goto out;
  }
  if (links_resolve_inside(archive, tmp, top, links, n_links)) goto out;
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
  hdestroy_r(&seen.tab);
  for (size_t i = 0; i < seen.n; i++) free(seen.paths[i]);
  free(seen.paths);
  for (size_t i = 0; i < n_links; i++) free(links[i]);
  free(links);
  rm_rf(tmp);
  free(tmp);
  free(dest);
  free(old);
  return rc;
}
