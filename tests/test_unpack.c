// unpack: hostile archives, crafted here with libarchive's writer, are refused with the entry
// named and nothing left behind; a good tar.gz unpacks with its members checked.
#include "testutil.h"
#include "datasets/unpack.h"
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

typedef struct {
  const char *path;
  mode_t type;        // AE_IFREG, AE_IFDIR, AE_IFLNK, AE_IFCHR, AE_IFIFO
  const char *data;   // regular files
  const char *link;   // symlink target, or hard link target when hard
  bool hard;
} entry;

// Writes a tar.gz of the entries at path.
static void write_tgz(const char *path, const entry *es, int n) {
  struct archive *a = archive_write_new();
  archive_write_add_filter_gzip(a);
  archive_write_set_format_pax_restricted(a);
  cr_assert_eq(archive_write_open_filename(a, path), ARCHIVE_OK);
  for (int i = 0; i < n; i++) {
    struct archive_entry *e = archive_entry_new();
    archive_entry_set_pathname(e, es[i].path);
    archive_entry_set_filetype(e, es[i].type);
    archive_entry_set_perm(e, es[i].type == AE_IFDIR ? 0755 : 0644);
    archive_entry_set_mtime(e, 1600000000, 0);
    if (es[i].hard) archive_entry_set_hardlink(e, es[i].link);
    else if (es[i].type == AE_IFLNK) archive_entry_set_symlink(e, es[i].link);
    if (es[i].type == AE_IFCHR) archive_entry_set_rdev(e, makedev(1, 3));
    size_t len = es[i].data ? strlen(es[i].data) : 0;
    archive_entry_set_size(e, (la_int64_t)len);
    cr_assert_eq(archive_write_header(a, e), ARCHIVE_OK, "%s", archive_error_string(a));
    if (len) cr_assert_eq(archive_write_data(a, es[i].data, len), (la_ssize_t)len);
    archive_entry_free(e);
  }
  cr_assert_eq(archive_write_close(a), ARCHIVE_OK);
  archive_write_free(a);
}

static char *tmp;
static void setup(void) { tmp = test_tmpdir("unpack"); }
static void teardown(void) {
  rm_rf(tmp);
  free(tmp);
}
TestSuite(unpack, .init = setup, .fini = teardown, .timeout = 30);

// No entry of dir other than the allowed names (no temporary directory, no escaped file).
static void expect_only(const char *dir, const char *const *allowed) {
  DIR *d = opendir(dir);
  cr_assert_not_null(d);
  struct dirent *de;
  while ((de = readdir(d))) {
    if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
    bool ok = false;
    for (int i = 0; allowed[i]; i++) ok |= !strcmp(de->d_name, allowed[i]);
    cr_assert(ok, "unexpected '%s' left in %s", de->d_name, dir);
  }
  closedir(d);
}

// The archive of the given entries is refused (with members and limits, each may be NULL) with a
// message holding the fragments, and nothing is left behind.
static void refused_with(const entry *es, int n, const reg_member *m, int n_m, const unpack_limits *lim,
                         const char *frag1, const char *frag2) {
  char *arc = xasprintf("%s/bad.tar.gz", tmp), *parent = xasprintf("%s/out/inner", tmp);
  write_tgz(arc, es, n);
  cr_assert_eq(mkdir_p(parent), 0);
  igpt_err_clear();
  cr_assert_eq(unpack_archive(arc, parent, "top", m, n_m, lim), -1, "a hostile archive was unpacked");
  cr_assert(strstr(igpt_errmsg(), "bad.tar.gz: refused entry"), "%s", igpt_errmsg());
  cr_assert(strstr(igpt_errmsg(), frag1) && strstr(igpt_errmsg(), frag2), "%s", igpt_errmsg());
  expect_only(parent, (const char *const[]){NULL});
  char *outer = xasprintf("%s/out", tmp);
  expect_only(outer, (const char *const[]){"inner", NULL});
  expect_only(tmp, (const char *const[]){"bad.tar.gz", "out", NULL});
  free(outer);
  rm_rf(parent);
  free(arc);
  free(parent);
}
static void refused(const entry *es, int n, const char *frag1, const char *frag2) {
  refused_with(es, n, NULL, 0, NULL, frag1, frag2);
}

#define DIRE(p) {p, AE_IFDIR, NULL, NULL, false}
#define FILEE(p, d) {p, AE_IFREG, d, NULL, false}

Test(unpack, absolute_path_refused) {
  char *abs = xasprintf("%s/escaped", tmp);
  entry es[] = {DIRE("top"), FILEE(abs, "x")};
  refused(es, 2, abs, "an absolute path");
  free(abs);
}

Test(unpack, dotdot_refused) {
  entry es[] = {DIRE("top"), FILEE("top/../../escaped", "x")};
  refused(es, 2, "top/../../escaped", "'..'");
}

Test(unpack, outside_top_refused) {
  entry es[] = {DIRE("top"), FILEE("other/file", "x")};
  refused(es, 2, "other/file", "outside the expected top directory");
}

Test(unpack, symlink_escape_refused) {
  entry rel[] = {DIRE("top"), {"top/link", AE_IFLNK, NULL, "../../..", false}, FILEE("top/link/escaped", "x")};
  refused(rel, 3, "top/link", "a symbolic link to '../../..'");
  entry abs[] = {DIRE("top"), {"top/passwd", AE_IFLNK, NULL, "/etc/passwd", false}};
  refused(abs, 2, "top/passwd", "outside 'top/'");
  entry side[] = {DIRE("top"), {"top/sub/l", AE_IFLNK, NULL, "../../top2/x", false}};
  refused(side, 2, "top/sub/l", "symbolic link");
}

// Each link reads as staying inside top/, but "up" points at an ancestor directory, so the path
// through it climbs 24 levels more than it reads: with the second link, /etc/passwd.
Test(unpack, symlink_chain_through_an_ancestor_link_refused) {
  enum { DEPTH = 24 };
  entry es[DEPTH + 3];
  char *paths[DEPTH + 3], *inner = xstrdup(""), *up = xstrdup("..");
  es[0] = (entry)DIRE("top");
  for (int i = 1; i <= DEPTH; i++) {
    char *in = xasprintf("%s%sa%d", inner, i > 1 ? "/" : "", i);
    free(inner);
    inner = in;
    paths[i] = xasprintf("top/%s", inner);
    es[i] = (entry)DIRE(paths[i]);
    if (i > 1) {
      char *u = xasprintf("%s/..", up);
      free(up);
      up = u;
    }
  }
  paths[DEPTH + 1] = xasprintf("top/%s/up", inner);  // -> top/, lexically and on disk
  es[DEPTH + 1] = (entry){paths[DEPTH + 1], AE_IFLNK, NULL, up, false};
  char *climb = xstrdup("");
  for (int i = 0; i <= DEPTH; i++) {
    char *c = xasprintf("%s../", climb);
    free(climb);
    climb = c;
  }
  char *target = xasprintf("%s/up/%setc/passwd", inner, climb);  // lexically top/etc/passwd
  es[DEPTH + 2] = (entry){"top/passwd", AE_IFLNK, NULL, target, false};
  refused(es, DEPTH + 3, "top/passwd", "outside 'top/'");
  // The first link alone points inside: accepted, so the refusal above is the second link's.
  char *arc = xasprintf("%s/up.tar.gz", tmp), *parent = xasprintf("%s/up", tmp);
  write_tgz(arc, es, DEPTH + 2);
  cr_assert_eq(unpack_archive(arc, parent, "top", NULL, 0, NULL), 0, "%s", igpt_errmsg());
  free(arc); free(parent);
  for (int i = 1; i <= DEPTH + 1; i++) free(paths[i]);
  free(inner); free(up); free(climb); free(target);
}

// libarchive's no-overwrite flag keeps the first copy silently: which one is meant is ambiguous.
Test(unpack, same_member_twice_refused) {
  entry es[] = {DIRE("top"), FILEE("top/a.bin", "first"), FILEE("top/a.bin", "second")};
  refused(es, 3, "top/a.bin", "holds 'top/a.bin' twice");
  entry link[] = {DIRE("top"), FILEE("top/a.bin", "first"), {"./top/a.bin", AE_IFLNK, NULL, "b", false}};
  refused(link, 3, "./top/a.bin", "twice");
  entry dirs[] = {DIRE("top"), DIRE("top/d"), DIRE("top/d/"), FILEE("top/d/x", "x")};  // a repeated directory is harmless
  char *arc = xasprintf("%s/dirs.tar.gz", tmp), *parent = xasprintf("%s/dirs", tmp);
  write_tgz(arc, dirs, 4);
  cr_assert_eq(unpack_archive(arc, parent, "top", NULL, 0, NULL), 0, "%s", igpt_errmsg());
  free(arc); free(parent);
}

Test(unpack, dangling_link_refused) {
  entry es[] = {DIRE("top"), {"top/l", AE_IFLNK, NULL, "nothing-here", false}};
  refused(es, 2, "top/l", "resolves to nothing");
}

// A member stops at the size the registry gives it, before the rest is written.
Test(unpack, member_past_its_registry_size_stopped) {
  static char big[5001];
  memset(big, 'x', 5000);
  entry es[] = {DIRE("top"), FILEE("top/a.bin", big)};
  reg_member m = {.path = "top/a.bin", .want = {.size = 10}};
  refused_with(es, 2, &m, 1, NULL, "top/a.bin", "declares 5000 bytes, the registry expects 10");
}

Test(unpack, total_bytes_and_entries_capped) {
  entry es[] = {DIRE("top"), FILEE("top/a", "0123456789012345678901234567890123456789"),
                FILEE("top/b", "0123456789012345678901234567890123456789"), DIRE("top/c")};
  unpack_limits bytes = {.max_bytes = 60, .max_entries = 100};
  refused_with(es, 4, NULL, 0, &bytes, "top/b", "unpacks to more than 60 bytes");
  unpack_limits entries = {.max_bytes = 1000, .max_entries = 3};
  refused_with(es, 4, NULL, 0, &entries, "top/c", "more than 3 entries");
}

// A write that fails (here: past the file size limit, as a full disk would) says why.
Test(unpack, write_error_names_the_errno) {
  static char big[20001];
  memset(big, 'y', 20000);
  entry es[] = {DIRE("top"), FILEE("top/big.bin", big)};
  char *arc = xasprintf("%s/w.tar.gz", tmp), *parent = xasprintf("%s/w", tmp);
  write_tgz(arc, es, 2);
  signal(SIGXFSZ, SIG_IGN);
  struct rlimit old, small = {.rlim_cur = 4096, .rlim_max = RLIM_INFINITY};
  getrlimit(RLIMIT_FSIZE, &old);
  small.rlim_max = old.rlim_max;
  cr_assert_eq(setrlimit(RLIMIT_FSIZE, &small), 0);
  int rc = unpack_archive(arc, parent, "top", NULL, 0, NULL);
  setrlimit(RLIMIT_FSIZE, &old);
  cr_assert_eq(rc, -1, "a write past the file size limit succeeded");
  cr_assert(strstr(igpt_errmsg(), "top/big.bin") && strstr(igpt_errmsg(), strerror(EFBIG)), "%s", igpt_errmsg());
  expect_only(parent, (const char *const[]){NULL});
  free(arc); free(parent);
}

// A tree unpacked before links were judged on the resolved path: its members are not read
// through a link that leads out (fetch and verify check the members before using them).
Test(unpack, check_members_refuses_a_member_outside) {
  char *top = xasprintf("%s/old/top", tmp), *m = xasprintf("%s/m", top);
  cr_assert_eq(mkdir_p(top), 0);
  cr_assert_eq(symlink("/etc/passwd", m), 0);
  reg_member mem = {.path = "top/m", .want = {.size = -1}};
  char *parent = xasprintf("%s/old", tmp);
  cr_assert_eq(unpack_check_members(parent, &mem, 1), -1, "a member outside its directory was read");
  cr_assert(strstr(igpt_errmsg(), "top/m") && strstr(igpt_errmsg(), "outside"), "%s", igpt_errmsg());
  free(top); free(m); free(parent);
}

Test(unpack, hard_link_refused) {
  entry es[] = {DIRE("top"), FILEE("top/a", "data"), {"top/h", AE_IFREG, NULL, "top/a", true}};
  refused(es, 3, "top/h", "a hard link");
}

Test(unpack, device_and_fifo_refused) {
  entry dev[] = {DIRE("top"), {"top/null", AE_IFCHR, NULL, NULL, false}};
  refused(dev, 2, "top/null", "a character device");
  entry fifo[] = {DIRE("top"), {"top/pipe", AE_IFIFO, NULL, NULL, false}};
  refused(fifo, 2, "top/pipe", "a fifo");
}

static const char *A = "alpha\n", *B = "bravo bravo\n";

Test(unpack, good_archive_with_checked_members) {
  entry es[] = {DIRE("top"), FILEE("top/a.txt", A), DIRE("top/sub"), FILEE("./top/sub/b.txt", B),
                {"top/sub/link", AE_IFLNK, NULL, "../a.txt", false}};
  char *arc = xasprintf("%s/good.tar.gz", tmp), *parent = xasprintf("%s/data", tmp);
  write_tgz(arc, es, 5);
  reg_member m[2] = {{.path = "top/a.txt"}, {.path = "top/sub/b.txt"}};
  m[0].want.size = (int64_t)strlen(A);
  sha256_hex(A, strlen(A), m[0].want.sha256);
  m[1].want.size = (int64_t)strlen(B);
  sha256_hex(B, strlen(B), m[1].want.sha256);
  cr_assert_eq(unpack_archive(arc, parent, "top", m, 2, NULL), 0, "%s", igpt_errmsg());
  char *b = xasprintf("%s/top/sub/b.txt", parent), *l = xasprintf("%s/top/sub/link", parent);
  uint8_t *text;
  size_t n;
  cr_assert_eq(file_read_all(b, &text, &n), 0);
  cr_assert_str_eq((char *)text, B);
  free(text);
  cr_assert_eq(file_read_all(l, &text, &n), 0);  // the inside link resolves
  cr_assert_str_eq((char *)text, A);
  free(text);
  expect_only(parent, (const char *const[]){"top", NULL});
  cr_assert_eq(unpack_check_members(parent, m, 2), 0, "%s", igpt_errmsg());
  // Unpacking again replaces the old copy in one rename.
  cr_assert_eq(unpack_archive(arc, parent, "top", m, 2, NULL), 0, "%s", igpt_errmsg());
  expect_only(parent, (const char *const[]){"top", NULL});
  // A member that does not match the registry: refused, the old copy untouched, no temporary left.
  m[1].want.sha256[0] = m[1].want.sha256[0] == '0' ? '1' : '0';
  cr_assert_eq(unpack_archive(arc, parent, "top", m, 2, NULL), -1);
  cr_assert(strstr(igpt_errmsg(), "top/sub/b.txt") && strstr(igpt_errmsg(), "sha256 mismatch"), "%s", igpt_errmsg());
  expect_only(parent, (const char *const[]){"top", NULL});
  m[1].want.sha256[0] = 0;
  m[1].want.size = 99;
  cr_assert_eq(unpack_archive(arc, parent, "top", m, 2, NULL), -1);
  cr_assert(strstr(igpt_errmsg(), "size 12 bytes, expected 99"), "%s", igpt_errmsg());
  reg_member missing = {.path = "top/none.bin", .want = {.size = -1}};
  cr_assert_eq(unpack_archive(arc, parent, "top", &missing, 1, NULL), -1);
  cr_assert(strstr(igpt_errmsg(), "top/none.bin") && strstr(igpt_errmsg(), "missing"), "%s", igpt_errmsg());
  free(arc); free(parent); free(b); free(l);
}

Test(unpack, corrupt_and_wrong_archives) {
  entry es[] = {DIRE("top"), FILEE("top/a.txt", A)};
  char *arc = xasprintf("%s/c.tar.gz", tmp), *cut = xasprintf("%s/cut.tar.gz", tmp), *parent = xasprintf("%s/d", tmp);
  write_tgz(arc, es, 2);
  uint8_t *buf;
  size_t n;
  cr_assert_eq(file_read_all(arc, &buf, &n), 0);
  cr_assert_eq(file_write_atomic(cut, buf, n / 2), 0);
  cr_assert_eq(unpack_archive(cut, parent, "top", NULL, 0, NULL), -1);
  cr_assert(strstr(igpt_errmsg(), "cut.tar.gz"), "%s", igpt_errmsg());
  cr_assert_eq(unpack_archive(arc, parent, "elsewhere", NULL, 0, NULL), -1);
  cr_assert(strstr(igpt_errmsg(), "outside the expected top directory 'elsewhere/'"), "%s", igpt_errmsg());
  expect_only(parent, (const char *const[]){NULL});
  free(buf); free(arc); free(cut); free(parent);
}
