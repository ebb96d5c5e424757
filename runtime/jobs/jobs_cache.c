// jobs_cache: the content-addressed cache of finished jobs, their digests and their locks.
// See jobs.h for the layout. A job counts as done only when DIR/<key>/done.json parses, names the
// job's key and every file it lists still has its SHA-256: a changed or missing output means the
// job is rebuilt.
#include "jobs/jobs.h"
#include "base/util.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

char *cache_job_dir(const runner_t *r, const job_t *j) { return xasprintf("%s/%s", r->dir, j->key); }
char *cache_work_dir(const runner_t *r, const job_t *j) { return xasprintf("%s/%s.work", r->dir, j->key); }

static void digest_into(const char *root, const char *rel, json_t *out) {
  char *path = rel[0] ? xasprintf("%s/%s", root, rel) : xstrdup(root);
  DIR *d = opendir(path);
  if (!d) { free(path); return; }
  struct dirent *e;
  while ((e = readdir(d))) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    char *r2 = rel[0] ? xasprintf("%s/%s", rel, e->d_name) : xstrdup(e->d_name);
    char *p2 = xasprintf("%s/%s", root, r2);
    struct stat st;
    if (lstat(p2, &st) == 0) {
      if (S_ISDIR(st.st_mode)) digest_into(root, r2, out);
      else if (S_ISREG(st.st_mode) && strcmp(r2, "done.json") && !atomic_tmp_name(e->d_name, NULL)) {
        char hex[65];
        if (sha256_file(p2, hex) == 0)
          json_object_set_new(out, r2, json_pack("{s:s, s:I}", "sha256", hex, "bytes", (json_int_t)st.st_size));
      }
    }
    free(r2); free(p2);
  }
  closedir(d);
  free(path);
}

json_t *cache_digest_dir(const char *dir) {
  json_t *out = json_object();
  digest_into(dir, "", out);
  return out;
}

int cache_verify(const runner_t *r, const job_t *j, json_t **done, char **why) {
  *done = NULL;
  *why = NULL;
  char *dir = cache_job_dir(r, j);
  char *path = xasprintf("%s/done.json", dir);
  int ok = 0;
  json_error_t e;
  json_t *d = NULL;
  if (!path_exists(dir)) *why = xstrdup("not built yet");
  else if (!(d = json_load_file(path, JSON_REJECT_DUPLICATES, &e))) *why = xasprintf("done.json unreadable (%s): rebuilding", e.text);
  else if (!json_is_string(json_object_get(d, "key")) || strcmp(json_string_value(json_object_get(d, "key")), j->key))
    *why = xstrdup("done.json names another key: rebuilding");
  else {
    json_t *outs = json_object_get(d, "outputs");
    ok = json_is_object(outs);
    if (!ok) *why = xstrdup("done.json has no outputs: rebuilding");
    const char *rel; json_t *o;
    json_object_foreach(outs, rel, o) {
      if (!ok) break;
      char *f = xasprintf("%s/%s", dir, rel);
      char hex[65];
      struct stat st;
      if (stat(f, &st) != 0) { *why = xasprintf("%s is missing: rebuilding", rel); ok = 0; }
      else if ((json_int_t)st.st_size != json_integer_value(json_object_get(o, "bytes"))) {
        *why = xasprintf("%s has %lld bytes, done.json says %lld: rebuilding", rel, (long long)st.st_size,
                         (long long)json_integer_value(json_object_get(o, "bytes")));
        ok = 0;
      } else if (sha256_file(f, hex) != 0 || strcmp(hex, json_string_value(json_object_get(o, "sha256")) ?: "")) {
        *why = xasprintf("%s digest mismatch (corrupted): rebuilding", rel);
        ok = 0;
      }
      free(f);
    }
  }
  if (ok) { *done = d; *why = xstrdup("done and verified"); }
  else json_decref(d);
  free(dir); free(path);
  return ok;
}

int cache_lock(const runner_t *r, job_t *j) {
  char *dir = xasprintf("%s/locks", r->dir);
  char *path = xasprintf("%s/%s.lock", dir, j->key);
  int rc = mkdir_p(dir);
  int fd = rc ? -1 : open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (rc == 0 && fd < 0) rc = igpt_err("%s: cannot open lock: %s", path, strerror(errno));
  if (fd >= 0) {
    if (flock(fd, LOCK_EX | LOCK_NB) == 0) { j->lock_fd = fd; rc = 1; }
    else if (errno == EWOULDBLOCK) { close(fd); rc = 0; }
    else { rc = igpt_err("%s: flock failed: %s", path, strerror(errno)); close(fd); }
  }
  free(dir); free(path);
  return rc;
}

void cache_unlock(job_t *j) {
  if (j->lock_fd >= 0) close(j->lock_fd);  // closing the last descriptor releases the flock
  j->lock_fd = -1;
}

void cache_event(const char *path, const char *event, json_t *fields) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  char when[64];
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
  json_t *e = json_pack("{s:s, s:s}", "time", when, "event", event);
  if (fields) json_object_update(e, fields);
  json_decref(fields);
  char *line = json_dumps(e, JSON_COMPACT | JSON_SORT_KEYS);
  json_decref(e);
  int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd >= 0) {
    size_t n = strlen(line);
    line[n] = '\n';  // replaces the terminator; write n+1 bytes in one append
    if (write(fd, line, n + 1) < 0) { /* best effort: the log is for people */ }
    close(fd);
  }
  free(line);
}

int runner_init(runner_t *r, const char *cache, int jobs, const char *gpus) {
  memset(r, 0, sizeof *r);
  const char *c = cache ? cache : getenv("IGPT_CACHE") ? getenv("IGPT_CACHE") : "cache";
  if (mkdir_p(c) != 0) return -1;
  r->dir = realpath(c, NULL);
  if (!r->dir) return igpt_err("%s: cannot resolve: %s", c, strerror(errno));
  r->jobs_cpu = jobs > 0 ? jobs : 1;
  const char *g = gpus ? gpus : getenv("CUDA_VISIBLE_DEVICES");
  if (g && *g) {
    char *copy = xstrdup(g), *save = NULL;
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
      if (!*t || !strcmp(t, "-1")) continue;
      r->gpus = xrealloc(r->gpus, (size_t)(r->n_gpus + 1) * sizeof *r->gpus);
      r->gpus[r->n_gpus++] = xstrdup(t);
    }
    free(copy);
  }
  if (!g) {  // no list given: the NVIDIA device nodes present, /dev/nvidia0, /dev/nvidia1, ...
    for (int i = 0; i < 64; i++) {
      char dev[32];
      snprintf(dev, sizeof dev, "/dev/nvidia%d", i);
      if (!path_exists(dev)) break;
      r->gpus = xrealloc(r->gpus, (size_t)(r->n_gpus + 1) * sizeof *r->gpus);
      r->gpus[r->n_gpus++] = xasprintf("%d", i);
    }
  }
  const char *bin = getenv("IGPT_BIN");
  static char self[4096];
  if (bin) snprintf(self, sizeof self, "%s", bin);
  else {
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    self[n > 0 ? n : 0] = 0;
    if (n <= 0) snprintf(self, sizeof self, "igpt");
  }
  r->igpt = self;
  r->backoff = getenv("IGPT_RETRY_BACKOFF") ? atof(getenv("IGPT_RETRY_BACKOFF")) : 2.0;
  return 0;
}

void runner_free(runner_t *r) {
  for (int i = 0; i < r->n_gpus; i++) free(r->gpus[i]);
  free(r->gpus);
  free(r->dir);
  memset(r, 0, sizeof *r);
}
