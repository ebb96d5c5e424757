// util: errors, logging, allocation, atomic files, digests. See util.h.
#include "base/util.h"
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <ftw.h>
#include <openssl/evp.h>

static _Thread_local char err_buf[4096];
int igpt_log_level = 1;

int igpt_err(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err_buf, sizeof err_buf, fmt, ap);
  va_end(ap);
  return -1;
}

int igpt_err_prefix(const char *fmt, ...) {
  char prefix[1024], old[sizeof err_buf];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(prefix, sizeof prefix, fmt, ap);
  va_end(ap);
  memcpy(old, err_buf, sizeof old);
  size_t k = strlen(prefix);
  if (k > sizeof err_buf - 3) k = sizeof err_buf - 3;
  memcpy(err_buf, prefix, k);
  memcpy(err_buf + k, ": ", 2);
  size_t rest = sizeof err_buf - k - 3;
  strncpy(err_buf + k + 2, old, rest);
  err_buf[sizeof err_buf - 1] = 0;
  return -1;
}

const char *igpt_errmsg(void) { return err_buf[0] ? err_buf : "unknown error"; }
void igpt_err_clear(void) { err_buf[0] = 0; }

static void vlog(const char *tag, const char *fmt, va_list ap) {
  fprintf(stderr, "%s", tag);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
}
void log_info(const char *fmt, ...) {
  if (igpt_log_level < 1) return;
  va_list ap; va_start(ap, fmt); vlog("", fmt, ap); va_end(ap);
}
void log_debug(const char *fmt, ...) {
  if (igpt_log_level < 2) return;
  va_list ap; va_start(ap, fmt); vlog("debug: ", fmt, ap); va_end(ap);
}
void log_warn(const char *fmt, ...) {
  va_list ap; va_start(ap, fmt); vlog("warning: ", fmt, ap); va_end(ap);
}
void igpt_die(const char *fmt, ...) {
  va_list ap; va_start(ap, fmt); vlog("igpt: error: ", fmt, ap); va_end(ap);
  exit(1);
}

void *xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p) igpt_die("out of memory allocating %zu bytes", n);
  return p;
}
void *xcalloc(size_t n, size_t size) {
  void *p = calloc(n ? n : 1, size ? size : 1);
  if (!p) igpt_die("out of memory allocating %zu x %zu bytes", n, size);
  return p;
}
void *xrealloc(void *p, size_t n) {
  p = realloc(p, n ? n : 1);
  if (!p) igpt_die("out of memory reallocating to %zu bytes", n);
  return p;
}
char *xstrdup(const char *s) {
  char *p = strdup(s);
  if (!p) igpt_die("out of memory");
  return p;
}
char *xstrndup(const char *s, size_t n) {
  char *p = strndup(s, n);
  if (!p) igpt_die("out of memory");
  return p;
}
char *xasprintf(const char *fmt, ...) {
  va_list ap;
  char *s = NULL;
  va_start(ap, fmt);
  int n = vasprintf(&s, fmt, ap);
  va_end(ap);
  if (n < 0) igpt_die("out of memory");
  return s;
}

int file_read_all(const char *path, uint8_t **data, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return igpt_err("%s: cannot open: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fileno(f), &st) != 0) { fclose(f); return igpt_err("%s: cannot stat: %s", path, strerror(errno)); }
  if (S_ISDIR(st.st_mode)) { fclose(f); return igpt_err("%s: a directory, expected a file", path); }
  size_t n = (size_t)st.st_size;
  uint8_t *buf = xmalloc(n + 1);
  if (n && fread(buf, 1, n, f) != n) {
    free(buf); fclose(f);
    return igpt_err("%s: short read (expected %zu bytes)", path, n);
  }
  buf[n] = 0;
  fclose(f);
  *data = buf;
  *len = n;
  return 0;
}

static int fsync_dir_of(const char *path) {
  char *copy = xstrdup(path);
  int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY);
  free(copy);
  if (fd < 0) return 0;  // best effort: some filesystems refuse
  fsync(fd);
  close(fd);
  return 0;
}

bool atomic_tmp_name(const char *name, long *pid) {
  const char *t = strstr(name, ".tmp.");
  if (!t) return false;
  while (strstr(t + 1, ".tmp.")) t = strstr(t + 1, ".tmp.");  // the last one: "a.tmp.b.tmp.12"
  const char *d = t + 5;
  if (!*d || t == name || strspn(d, "0123456789") != strlen(d) || strlen(d) > 9) return false;
  if (pid) *pid = atol(d);
  return true;
}

// The process that wrote a temporary is gone (no such PID here).
static bool writer_gone(long pid) {
  return pid > 0 && pid != (long)getpid() && kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

// Removes PATH.tmp.PID files of processes that are gone: what a kill -9 mid-write left.
static void remove_stale_temporaries(const char *path) {
  char *copy = xstrdup(path), *copy2 = xstrdup(path);
  const char *dir = dirname(copy), *base = basename(copy2);
  size_t bl = strlen(base);
  DIR *d = opendir(dir);
  struct dirent *e;
  long pid;
  while (d && (e = readdir(d)))
    if (!strncmp(e->d_name, base, bl) && !strncmp(e->d_name + bl, ".tmp.", 5) && atomic_tmp_name(e->d_name, &pid) &&
        strchr(e->d_name + bl + 5, '.') == NULL && writer_gone(pid)) {
      char *p = xasprintf("%s/%s", dir, e->d_name);
      if (unlink(p) == 0) log_debug("removed %s, left by process %ld", p, pid);
      free(p);
    }
  if (d) closedir(d);
  free(copy);
  free(copy2);
}

int atomic_sweep_dir(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return 0;
  int n = 0;
  struct dirent *e;
  long pid;
  while ((e = readdir(d))) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    char *p = xasprintf("%s/%s", dir, e->d_name);
    struct stat st;
    if (lstat(p, &st) == 0) {
      if (S_ISDIR(st.st_mode)) n += atomic_sweep_dir(p);
      else if (S_ISREG(st.st_mode) && atomic_tmp_name(e->d_name, &pid) && writer_gone(pid) && unlink(p) == 0) {
        log_debug("removed %s, left by process %ld", p, pid);
        n++;
      }
    }
    free(p);
  }
  closedir(d);
  return n;
}

int atomic_open(atomic_file *a, const char *path) {
  remove_stale_temporaries(path);
  a->path = xstrdup(path);
  a->tmp = xasprintf("%s.tmp.%d", path, (int)getpid());
  a->f = fopen(a->tmp, "wb");
  if (!a->f) {
    int rc = igpt_err("%s: cannot create: %s", path, strerror(errno));  // the name asked for, not the temporary
    free(a->path); free(a->tmp); a->path = a->tmp = NULL;
    return rc;
  }
  return 0;
}

int atomic_commit(atomic_file *a) {
  int rc = 0;
  if (fflush(a->f) != 0 || fsync(fileno(a->f)) != 0)
    rc = igpt_err("%s: write failed: %s (disk full?)", a->tmp, strerror(errno));
  if (fclose(a->f) != 0 && rc == 0) rc = igpt_err("%s: close failed: %s", a->tmp, strerror(errno));
  a->f = NULL;
  if (rc == 0 && rename(a->tmp, a->path) != 0)
    rc = igpt_err("%s: cannot rename into place: %s", a->path, strerror(errno));
  if (rc != 0) unlink(a->tmp);
  else fsync_dir_of(a->path);
  free(a->path); free(a->tmp); a->path = a->tmp = NULL;
  return rc;
}

void atomic_abort(atomic_file *a) {
  if (a->f) fclose(a->f);
  if (a->tmp) unlink(a->tmp);
  free(a->path); free(a->tmp);
  a->f = NULL; a->path = a->tmp = NULL;
}

int file_write_atomic(const char *path, const void *data, size_t len) {
  atomic_file a;
  if (atomic_open(&a, path) != 0) return -1;
  if (len && fwrite(data, 1, len, a.f) != len) {
    int rc = igpt_err("%s: write failed: %s (disk full?)", path, strerror(errno));
    atomic_abort(&a);
    return rc;
  }
  return atomic_commit(&a);
}

int mkdir_p(const char *path) {
  char *p = xstrdup(path);
  for (char *s = p + 1; *s; s++) {
    if (*s != '/') continue;
    *s = 0;
    if (mkdir(p, 0755) != 0 && errno != EEXIST) {
      int rc = igpt_err("%s: cannot create directory: %s", p, strerror(errno));
      free(p);
      return rc;
    }
    *s = '/';
  }
  int rc = 0;
  if (mkdir(p, 0755) != 0 && errno != EEXIST) rc = igpt_err("%s: cannot create directory: %s", p, strerror(errno));
  free(p);
  return rc;
}

bool path_exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0;
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb; (void)flag; (void)ftw;
  return remove(p);
}
int rm_rf(const char *path) {
  if (!path_exists(path)) return 0;
  if (nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS) != 0)
    return igpt_err("%s: cannot remove: %s", path, strerror(errno));
  return 0;
}

static void to_hex(const unsigned char *d, unsigned n, char *out) {
  static const char hx[] = "0123456789abcdef";
  for (unsigned i = 0; i < n; i++) { out[2 * i] = hx[d[i] >> 4]; out[2 * i + 1] = hx[d[i] & 15]; }
  out[2 * n] = 0;
}

void sha256_hex(const void *data, size_t len, char out[65]) {
  unsigned char d[EVP_MAX_MD_SIZE];
  unsigned n = 0;
  EVP_Digest(data, len, d, &n, EVP_sha256(), NULL);
  to_hex(d, n, out);
}

static int digest_file(const char *path, const EVP_MD *md, char *out) {
  FILE *f = fopen(path, "rb");
  if (!f) return igpt_err("%s: cannot open: %s", path, strerror(errno));
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, md, NULL);
  static _Thread_local unsigned char buf[1 << 16];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) EVP_DigestUpdate(ctx, buf, n);
  int bad = ferror(f);
  fclose(f);
  unsigned char d[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  EVP_DigestFinal_ex(ctx, d, &len);
  EVP_MD_CTX_free(ctx);
  if (bad) return igpt_err("%s: read error", path);
  to_hex(d, len, out);
  return 0;
}
int sha256_file(const char *path, char out[65]) { return digest_file(path, EVP_sha256(), out); }
int md5_file(const char *path, char out[33]) { return digest_file(path, EVP_md5(), out); }

double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
