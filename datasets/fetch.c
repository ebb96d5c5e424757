// fetch: the download protocol over libcurl, verification and unpacking of registry files.
// See fetch.h. One transfer = one curl_easy_perform; a file = mirrors in order, each tried up to
// 1 + retries times while its failures are transient (timeouts, dropped connections, 408, 429,
// 5xx); a permanent failure (404, an HTML page, wrong bytes) moves on to the next mirror at once.
// A .part is resumed only with the validator of its first response (datasets/resume.h).
#include "datasets/fetch.h"
#include "datasets/resume.h"
#include "base/version.h"
#include "datasets/unpack.h"
#include "base/util.h"
#include "datasets/verify.h"
#include <curl/curl.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

// ---- options ----

static int env_long(const char *name, long lo, long hi, long *out) {
  const char *s = getenv(name);
  if (!s || !*s) return 0;
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || *end || v < lo || v > hi)
    return igpt_err("environment variable %s=%s: expected an integer in [%ld, %ld]", name, s, lo, hi);
  *out = v;
  return 0;
}

static int env_double(const char *name, double lo, double hi, double *out) {
  const char *s = getenv(name);
  if (!s || !*s) return 0;
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || *end || !(v >= lo && v <= hi))
    return igpt_err("environment variable %s=%s: expected a number in [%g, %g]", name, s, lo, hi);
  *out = v;
  return 0;
}

int fetch_opts_init(fetch_opts *o) {
  memset(o, 0, sizeof *o);
  const char *d = getenv("IGPT_DATA");
  o->data_dir = xstrdup(d && *d ? d : "data");
  o->progress = -1;
  o->connect_timeout_s = 30;
  o->low_speed_limit = 1024;
  o->low_speed_time_s = 60;
  o->retries = 4;
  o->backoff_s = 2;
  o->backoff_max_s = 60;
  o->retry_after_max_s = 300;
  o->max_unknown_size = FETCH_MAX_UNKNOWN_SIZE;
  long r = o->retries;
  if (env_long("IGPT_FETCH_CONNECT_TIMEOUT", 1, 3600, &o->connect_timeout_s) ||
      env_long("IGPT_FETCH_LOW_SPEED_LIMIT", 0, 1L << 40, &o->low_speed_limit) ||
      env_long("IGPT_FETCH_LOW_SPEED_TIME", 0, 86400, &o->low_speed_time_s) ||
      env_long("IGPT_FETCH_RETRIES", 0, 100, &r) || env_double("IGPT_FETCH_BACKOFF", 0, 3600, &o->backoff_s) ||
      env_double("IGPT_FETCH_BACKOFF_MAX", 0, 86400, &o->backoff_max_s) ||
      env_double("IGPT_FETCH_RETRY_AFTER_MAX", 0, 86400, &o->retry_after_max_s) ||
      env_long("IGPT_FETCH_MAX_UNKNOWN_SIZE", 1, 0x7fffffffffffffffL, &o->max_unknown_size)) {
    fetch_opts_free(o);
    return -1;
  }
  o->retries = (int)r;
  return 0;
}

void fetch_opts_free(fetch_opts *o) {
  free(o->data_dir);
  o->data_dir = NULL;
}

char *fetch_set_dir(const fetch_opts *o, const char *set) { return xasprintf("%s/downloads/%s", o->data_dir, set); }

// ---- one transfer ----

typedef struct {
  const reg_file *f;
  const char *url;
  const char *vpath;    // the .part's validator file (resume.h)
  const char *if_range; // the validator sent with the Range request (NULL: none, a fresh start)
  bool if_range_etag;   // if_range is an ETag (else a Last-Modified date)
  part_validator got;   // the validators of the response being received
  int64_t range_start;  // a 206's Content-Range start, -1 when absent
  int64_t cap;          // the most bytes the file may have: its size, else the registry's or fetch's cap
  const char *cap_what; // where cap comes from, for messages
  bool drop_part;       // the .part holds bytes known to be wrong: deleted after the transfer
  bool again_from_0;    // the file changed under a resume: retry at once from byte 0
  CURL *h;
  FILE *fp;
  bool is_file_url;
  int64_t offset;       // bytes of the .part kept when this transfer started
  int64_t written;      // bytes written by this transfer
  bool started;         // first body byte seen
  bool restarted;       // the server ignored Range: the .part was truncated to 0
  long code;            // HTTP status of the body being received
  double retry_after;   // seconds from the last response's Retry-After, -1 when absent
  char abort_why[1024]; // set when the write callback stops the transfer
  // progress
  int bar;              // 1 a carriage-return bar, 0 plain lines
  double t0, t_last;
  const char *label;
} xfer;

static size_t on_header(char *buf, size_t size, size_t n, void *ud) {
  xfer *x = ud;
  size_t len = size * n;
  if (len >= 5 && !strncmp(buf, "HTTP/", 5)) {  // a new response (redirects)
    x->retry_after = -1;
    x->range_start = -1;
    memset(&x->got, 0, sizeof x->got);
  } else if (len > 20 && !strncasecmp(buf, "Content-Range: bytes ", 21)) {
    x->range_start = strtoll(buf + 21, NULL, 10);
  } else if (len > 5 && (!strncasecmp(buf, "ETag:", 5) || !strncasecmp(buf, "Last-Modified:", 14))) {
    validator_from_header(&x->got, buf, len);
  } else if (len > 12 && !strncasecmp(buf, "Retry-After:", 12)) {
    char v[128];
    size_t k = len - 12 < sizeof v - 1 ? len - 12 : sizeof v - 1;
    memcpy(v, buf + 12, k);
    v[k] = 0;
    char *s = v;
    while (*s == ' ' || *s == '\t') s++;
    s[strcspn(s, "\r\n")] = 0;
    char *end;
    double secs = strtod(s, &end);
    if (end != s && *end == 0 && secs >= 0) x->retry_after = secs;
    else {
      time_t when = curl_getdate(s, NULL);  // the HTTP-date form
      if (when >= 0) x->retry_after = difftime(when, time(NULL)) > 0 ? difftime(when, time(NULL)) : 0;
    }
  }
  return len;
}

static size_t stop(xfer *x, const char *fmt, ...) IGPT_PRINTF(2, 3);
static size_t stop(xfer *x, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(x->abort_why, sizeof x->abort_why, fmt, ap);
  va_end(ap);
  return 0;  // fewer bytes than given: libcurl aborts with CURLE_WRITE_ERROR
}

// A 206 must be the rest of the version the .part holds: the server repeats the validator sent
// in If-Range (a server that ignores If-Range but honours Range would otherwise splice) and
// starts where the .part ends. 1 when it is; else stop()'s 0, with the reason.
static size_t check_resume(xfer *x) {
  const char *now = x->if_range_etag ? x->got.etag : x->got.last_modified;
  x->drop_part = x->again_from_0 = true;
  if (strcmp(now, x->if_range))
    return stop(x, "resumed at byte %lld of the version with %s %s, but the answer is of %s%s: the file changed; "
                "starting again from byte 0", (long long)x->offset, x->if_range_etag ? "ETag" : "Last-Modified",
                x->if_range, now[0] ? "version " : "an unnamed version", now);
  if (x->range_start != x->offset)
    return stop(x, "asked for the bytes from %lld, the server sent them from %lld (Content-Range)", (long long)x->offset,
                (long long)x->range_start);
  x->drop_part = x->again_from_0 = false;
  return 1;
}

static size_t on_body(char *buf, size_t size, size_t n, void *ud) {
  xfer *x = ud;
  size_t len = size * n;
  if (!x->started) {
    x->started = true;
    curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &x->code);
    if (!x->is_file_url) {
      if (x->code >= 300) return len;  // an error body: discarded, the status is judged after
      if (x->code == 206 && x->offset > 0 && !check_resume(x)) return 0;
      if (x->code == 200 && x->offset > 0) {
        log_info("%s: the whole file came back (200, not 206: the Range request was ignored or the file changed "
                 "since the first %lld bytes): restarting from byte 0", x->url, (long long)x->offset);
        if (ftruncate(fileno(x->fp), 0) != 0 || fseek(x->fp, 0, SEEK_SET) != 0)
          return stop(x, "cannot truncate the .part file: %s", strerror(errno));
        x->offset = 0;
        x->restarted = true;
      }
      if (x->offset == 0) {  // a fresh start: its validator goes beside the .part before any byte
        snprintf(x->got.url, sizeof x->got.url, "%s", x->url);
        if (validator_write(x->vpath, &x->got) != 0) return stop(x, "%s", igpt_errmsg());
      }
      char *ct = NULL;
      curl_easy_getinfo(x->h, CURLINFO_CONTENT_TYPE, &ct);
      if (ct && !strncasecmp(ct, "text/html", 9))
        return stop(x, "got an HTML page (Content-Type: %s) where %s data was expected", ct, reg_format_name(x->f->format));
    }
    if (x->offset == 0 && looks_like_html(buf, len))
    {
      char start[41];
      size_t k = len < 40 ? len : 40;
      for (size_t i = 0; i < k; i++) start[i] = buf[i] >= 32 && buf[i] < 127 ? buf[i] : ' ';
      start[k] = 0;
      return stop(x, "got an HTML page where %s data was expected (it starts \"%s\")", reg_format_name(x->f->format), start);
    }
    if (!x->is_file_url) {
      curl_off_t cl = -1;
      curl_easy_getinfo(x->h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
      if (x->f->want.size >= 0 && cl >= 0 && x->offset + cl != x->f->want.size)
        return stop(x, "the server announces %lld bytes%s, expected %lld", (long long)(x->offset + cl),
                    x->offset ? " in all" : "", (long long)x->f->want.size);
      if (x->f->want.size < 0 && cl >= 0 && x->offset + cl > x->cap) {
        x->drop_part = true;
        return stop(x, "the server announces %lld bytes, more than the %lld bytes allowed for a file of unknown size (%s)",
                    (long long)(x->offset + cl), (long long)x->cap, x->cap_what);
      }
    }
  }
  if (!x->is_file_url && x->code >= 300) return len;
  if (x->offset + x->written + (int64_t)len > x->cap) {
    x->drop_part = true;
    if (x->f->want.size >= 0) return stop(x, "more bytes than the expected %lld", (long long)x->f->want.size);
    return stop(x, "more than the %lld bytes allowed for a file of unknown size (%s); stopped", (long long)x->cap,
                x->cap_what);
  }
  if (fwrite(buf, 1, len, x->fp) != len) return stop(x, "cannot write the .part file: %s (disk full?)", strerror(errno));
  x->written += (int64_t)len;
  return len;
}

static void human(double b, char *out, size_t n) {
  const char *u[] = {"B", "kB", "MB", "GB", "TB"};
  int i = 0;
  while (b >= 1000 && i < 4) { b /= 1000; i++; }
  snprintf(out, n, i ? "%.1f %s" : "%.0f %s", b, u[i]);
}

static void show_progress(xfer *x, curl_off_t dltotal, curl_off_t dlnow, bool force) {
  if (igpt_log_level < 1 || (!x->is_file_url && x->code >= 300)) return;
  double t = now_seconds();
  if (!force && t - x->t_last < (x->bar ? 0.25 : 10.0)) return;
  x->t_last = t;
  double rate = dlnow / fmax(t - x->t0, 1e-3);
  double total = dltotal > 0 ? (double)(x->offset + dltotal) : x->f->want.size >= 0 ? (double)x->f->want.size : -1;
  double have = (double)(x->offset + dlnow);
  char hv[32], tv[32], rv[32], eta[32] = "";
  human(have, hv, sizeof hv);
  human(total, tv, sizeof tv);
  human(rate, rv, sizeof rv);
  if (total > 0 && rate > 0) snprintf(eta, sizeof eta, ", ETA %.0f s", (total - have) / rate);
  if (x->bar) {
    char bar[31];
    int fill = total > 0 ? (int)(30 * have / total) : 0;
    for (int i = 0; i < 30; i++) bar[i] = i < fill ? '#' : '.';
    bar[30] = 0;
    if (total > 0)
      fprintf(stderr, "\r%s [%s] %3.0f%% %s / %s, %s/s%s   ", x->label, bar, 100 * have / total, hv, tv, rv, eta);
    else
      fprintf(stderr, "\r%s %s, %s/s   ", x->label, hv, rv);
  } else if (total > 0)
    fprintf(stderr, "%s: %s of %s (%.0f%%), %s/s%s\n", x->label, hv, tv, 100 * have / total, rv, eta);
  else
    fprintf(stderr, "%s: %s, %s/s\n", x->label, hv, rv);
}

static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ul, curl_off_t un) {
  (void)ul; (void)un;
  show_progress(ud, dltotal, dlnow, false);
  return 0;
}

typedef enum { T_OK, T_RETRY, T_NEXT_MIRROR } outcome;

// Removes a .part and its validator.
static void drop_part(const char *part, const char *vpath) {
  unlink(part);
  unlink(vpath);
}

// One transfer of url into part (resumed from its current size unless a file:// URL). On failure
// sets the error (URL, expected, got) and says whether retrying the mirror may help.
static outcome transfer(const reg_file *f, const char *url, const char *part, const char *vpath, const fetch_opts *o,
                        double *retry_after, bool *resumed) {
  xfer x = {.f = f, .url = url, .vpath = vpath, .retry_after = -1, .range_start = -1};
  x.is_file_url = !strncmp(url, "file://", 7);
  x.cap = f->want.size >= 0 ? f->want.size : f->max_size >= 0 ? f->max_size : o->max_unknown_size;
  x.cap_what = f->max_size >= 0 ? "the registry's max_size" : "fetch's default cap; the registry's \"max_size\" raises it";
  struct stat st;
  int64_t have = stat(part, &st) == 0 ? st.st_size : 0;
  if (x.is_file_url || (f->want.size >= 0 && have >= f->want.size)) have = 0;  // local copies restart; a full .part failed
  part_validator v;
  int vr = validator_read(vpath, &v);
  if (vr < 0) log_warn("%s; restarting from byte 0", igpt_errmsg());
  x.if_range = vr == 1 ? validator_if_range(&v, url) : NULL;
  x.if_range_etag = x.if_range && x.if_range == v.etag;
  if (have && !x.if_range) {
    log_info("%s: %lld bytes kept from an earlier download, but %s: restarting from byte 0", url, (long long)have,
             vr == 1 ? "their validator cannot name them here (a weak ETag, or a Last-Modified date of another mirror)" :
                       "without a validator (ETag or Last-Modified) a resume could join two versions of the file");
    have = 0;
  }
  x.fp = fopen(part, have ? "ab" : "wb");
  if (!x.fp) {
    igpt_err("%s: cannot create: %s", part, strerror(errno));
    return T_NEXT_MIRROR;
  }
  x.offset = have;
  *resumed = have > 0;
  x.h = curl_easy_init();
  CURL *h = x.h;
  char errbuf[CURL_ERROR_SIZE] = "";
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https,file");
  curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");  // a redirect never reaches local files
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(h, CURLOPT_MAXREDIRS, 10L);
  char agent[96];
  snprintf(agent, sizeof agent, "igpt-suite/%s", IGPT_VERSION);
  curl_easy_setopt(h, CURLOPT_USERAGENT, agent);  // libcurl copies it
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, o->connect_timeout_s);
  curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, o->low_speed_limit);
  curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, o->low_speed_time_s);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &x);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &x);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "identity");  // the bytes as stored, never re-encoded
  // CURLOPT_RANGE rather than RESUME_FROM: libcurl then leaves a 200 (Range ignored) to on_body,
  // which restarts the .part from byte 0 instead of failing the transfer.
  char range[32];
  snprintf(range, sizeof range, "%lld-", (long long)have);
  struct curl_slist *hdrs = NULL;
  if (have) {
    char *ir = xasprintf("If-Range: %s", x.if_range);
    hdrs = curl_slist_append(hdrs, ir);
    free(ir);
    curl_easy_setopt(h, CURLOPT_RANGE, range);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
  }
  x.bar = o->progress >= 0 ? o->progress : isatty(2);
  x.label = f->name;
  x.t0 = x.t_last = now_seconds();
  curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(h, CURLOPT_XFERINFODATA, &x);
  if (have) log_info("%s: resuming from byte %lld (If-Range: %s)", url, (long long)have, x.if_range);
  CURLcode rc = curl_easy_perform(h);
  if (x.bar && igpt_log_level >= 1 && x.written) {  // the bar's final state, then end its line
    show_progress(&x, 0, x.written, true);
    fputc('\n', stderr);
  }
  long code = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
  curl_easy_cleanup(h);
  curl_slist_free_all(hdrs);
  bool closed_ok = fclose(x.fp) == 0;
  *retry_after = x.retry_after;
  if (x.restarted) *resumed = false;
  if (x.drop_part) drop_part(part, vpath);
  if (rc == CURLE_WRITE_ERROR && x.abort_why[0]) {
    igpt_err("%s: %s", url, x.abort_why);
    return x.again_from_0 ? T_RETRY : T_NEXT_MIRROR;
  }
  if (rc == CURLE_OK && !closed_ok) {
    igpt_err("%s: cannot write %s: %s", url, part, strerror(errno));
    return T_NEXT_MIRROR;
  }
  if (rc == CURLE_OK && !x.is_file_url) {
    if (code == 200 || code == 206) return T_OK;
    if (code == 416) {  // the .part is not a prefix the server recognises: start again
      igpt_err("%s: HTTP 416 (range not satisfiable) resuming at byte %lld: restarting from 0", url, (long long)have);
      drop_part(part, vpath);
      return T_RETRY;
    }
    bool transient = code == 408 || code == 429 || code >= 500;
    igpt_err("%s: HTTP %ld%s, expected 200 with the bytes of %s%s", url, code,
             code == 404 ? " (not found)" : code == 403 ? " (forbidden)" : code == 429 ? " (too many requests)" :
             code == 503 ? " (service unavailable)" : "", f->name,
             x.retry_after >= 0 ? " (the server asks to retry later)" : "");
    return transient ? T_RETRY : T_NEXT_MIRROR;
  }
  if (rc == CURLE_OK) return T_OK;
  const char *msg = errbuf[0] ? errbuf : curl_easy_strerror(rc);
  switch (rc) {
  case CURLE_OPERATION_TIMEDOUT:
    igpt_err("%s: timed out (%s) after %lld bytes of %s (a stalled server: below %ld bytes/s for %ld s)", url, msg,
             (long long)(x.offset + x.written), f->name, o->low_speed_limit, o->low_speed_time_s);
    return T_RETRY;
  case CURLE_PARTIAL_FILE:
  case CURLE_RECV_ERROR:
  case CURLE_SEND_ERROR:
  case CURLE_GOT_NOTHING:
  case CURLE_HTTP2:
  case CURLE_HTTP2_STREAM:
    igpt_err("%s: the connection broke after %lld bytes (%s); expected %s%lld bytes", url, (long long)(x.offset + x.written),
             msg, f->want.size >= 0 ? "" : "more than ", (long long)(f->want.size >= 0 ? f->want.size : x.offset + x.written));
    return T_RETRY;
  default:
    igpt_err("%s: %s (curl error %d)", url, msg, (int)rc);
    return T_NEXT_MIRROR;
  }
}

static void sleep_s(double s) {
  if (s <= 0) return;
  struct timespec ts = {(time_t)s, (long)((s - floor(s)) * 1e9)};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

// ---- a file ----

static json_t *file_json(const reg_file *f, const char *path, const char *status, const verify_info *vi, const char *url) {
  json_t *j = json_pack("{s:s, s:s, s:s}", "name", f->name, "path", path, "status", status);
  if (vi) {
    json_object_set_new(j, "size", json_integer(vi->size));
    json_object_set_new(j, "sha256", json_string(vi->sha256));
    json_object_set_new(j, "verified_by", json_string(vi->how));
  }
  if (url) json_object_set_new(j, "url", json_string(url));
  return j;
}

// Unpacks (when the file is an archive) unless the unpacked members already check out.
static int ensure_unpacked(const reg_file *f, const char *dir, const char *path, bool offline, json_t *j) {
  if (!f->unpack) return 0;
  char *top = xasprintf("%s/%s", dir, f->unpack);
  int rc = 0;
  if (path_exists(top) && unpack_check_members(dir, f->members, f->n_members) == 0) {
    log_debug("%s: already unpacked and checked", top);
  } else if (offline && path_exists(top)) {
    rc = igpt_err_prefix("%s: unpacked members fail their checks", top);
  } else {
    log_info("%s: unpacking into %s", f->name, top);
    rc = unpack_archive(path, dir, f->unpack, f->members, f->n_members, NULL);
  }
  if (rc == 0 && j) json_object_set_new(j, "unpacked", json_string(top));
  free(top);
  return rc;
}

int fetch_file(const reg_dataset *ds, const reg_file *f, const fetch_opts *o, json_t *files_out) {
  char *dir = fetch_set_dir(o, ds->name);
  char *path = xasprintf("%s/%s", dir, f->name);
  char *part = xasprintf("%s.part", path), *vpath = xasprintf("%s.part.validator", path);
  char *aside = xasprintf("%s.unverified", path);  // a cached copy that failed, until its replacement verifies
  char *pin = xasprintf("%s.sha256", path);
  char *lock = xasprintf("%s/.%s.lock", dir, f->name);
  int rc = -1, lock_fd = -1;
  verify_info vi;
  json_t *j = NULL;
  if (mkdir_p(dir)) goto out;
  // One fetch of a file at a time: a second process waits, then finds the file verified.
  lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd < 0) { igpt_err("%s: cannot create the lock file: %s", lock, strerror(errno)); goto out; }
  if (flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
    log_info("%s: another igpt fetch holds %s; waiting", f->name, lock);
    if (flock(lock_fd, LOCK_EX) != 0) { igpt_err("%s: cannot lock: %s", lock, strerror(errno)); goto out; }
  }
  if (path_exists(path)) {
    if (verify_file(f, path, NULL, pin, true, &vi) == 0) {
      log_info("%s: cached and verified (%s)", path, vi.how);
      j = file_json(f, path, "cached", &vi, NULL);
      rc = ensure_unpacked(f, dir, path, o->offline, j);
      goto out;
    }
    if (o->offline) { igpt_err_prefix("--offline: the cached file fails verification"); goto out; }
    if (ds->kind == REG_MANUAL) { igpt_err_prefix("%s (a manual download, left as it is)", ds->name); goto out; }
    log_warn("%s; moving it aside to %s and fetching again", igpt_errmsg(), aside);
    if (rename(path, aside) != 0) { igpt_err("%s: cannot move aside to %s: %s", path, aside, strerror(errno)); goto out; }
  }
  if (o->offline) {
    igpt_err("%s: not in the cache and --offline fetches nothing (first mirror: %s)", path,
             f->n_mirrors ? f->mirrors[0] : "none: manual download");
    goto out;
  }
  if (ds->kind == REG_MANUAL) {
    igpt_err("%s: missing; %s is a manual download: %s", path, ds->name, ds->instructions);
    goto out;
  }
  // Each mirror in order; a mirror is retried while its failures are transient.
  char *errors = xstrdup("");
  for (int m = 0; m < f->n_mirrors && rc != 0; m++) {
    const char *url = f->mirrors[m];
    bool fresh_tried = false;
    for (int attempt = 0;; attempt++) {
      double retry_after;
      bool resumed;
      log_info("%s: fetching %s%s", f->name, url, attempt ? " (retry)" : "");
      outcome t = transfer(f, url, part, vpath, o, &retry_after, &resumed);
      if (t == T_OK) {
        if (verify_file(f, part, url, pin, true, &vi) == 0) {
          if (rename(part, path) != 0) {
            igpt_err("%s: cannot rename into place: %s", path, strerror(errno));
            break;
          }
          unlink(vpath);
          if (unlink(aside) == 0) log_info("%s: removed the copy that failed verification", aside);
          log_info("%s: verified (%s)", path, vi.how);
          j = file_json(f, path, "downloaded", &vi, url);
          rc = ensure_unpacked(f, dir, path, false, j);
          break;
        }
        // Short but otherwise plausible: the server closed early; resume it.
        struct stat st;
        bool is_short = f->want.size >= 0 && stat(part, &st) == 0 && st.st_size < f->want.size &&
                        strstr(igpt_errmsg(), "truncated") && strncmp(url, "file://", 7);
        if (!is_short) {
          drop_part(part, vpath);  // never keep bytes that failed their checksum
          if (resumed && !fresh_tried) {  // the kept prefix may be the bad part: once more from 0
            fresh_tried = true;
            log_warn("%s; the download was resumed, so trying once more from byte 0", igpt_errmsg());
            continue;
          }
          t = T_NEXT_MIRROR;
        } else
          t = T_RETRY;
      }
      if (t == T_NEXT_MIRROR || attempt >= o->retries) {
        char *e = xasprintf("%s\n  %s%s", errors, igpt_errmsg(), t == T_RETRY ? " (retries exhausted)" : "");
        free(errors);
        errors = e;
        if (m + 1 < f->n_mirrors) log_warn("%s; trying the next mirror", igpt_errmsg());
        break;
      }
      double delay = fmin(o->backoff_s * pow(2, attempt), o->backoff_max_s);
      if (retry_after >= 0) delay = fmax(delay, fmin(retry_after, o->retry_after_max_s));
      log_warn("%s; retrying in %.1f s (%d of %d)", igpt_errmsg(), delay, attempt + 1, o->retries);
      sleep_s(delay);
    }
  }
  if (rc != 0 && !j) {
    // What a rerun can resume is kept: bytes with a validator, short of a known size.
    struct stat st;
    part_validator v;
    bool keep = stat(part, &st) == 0 && st.st_size > 0 && (f->want.size < 0 || st.st_size < f->want.size) &&
                validator_read(vpath, &v) == 1;
    char kept[1024] = "nothing was kept";
    if (keep)
      snprintf(kept, sizeof kept, "kept the %lld bytes received so far in %s (with their validator), so a rerun "
               "resumes", (long long)st.st_size, part);
    else drop_part(part, vpath);
    char *moved = path_exists(aside) ? xasprintf("; the cached copy that failed verification is kept as %s", aside)
                                     : xstrdup("");
    if (f->n_mirrors == 0) igpt_err("%s: no mirror to fetch from%s", f->name, moved);
    else igpt_err("%s: every mirror failed (%d); %s%s:%s", f->name, f->n_mirrors, kept, moved, errors);
    free(moved);
  }
  free(errors);
out:
  if (j && files_out) json_array_append(files_out, j);
  json_decref(j);
  if (lock_fd >= 0) close(lock_fd);  // releases the lock
  free(lock);
  free(dir);
  free(path);
  free(part);
  free(vpath);
  free(aside);
  free(pin);
  return rc;
}

int fetch_dataset(const reg_dataset *ds, const fetch_opts *o, json_t *files_out) {
  if (ds->kind == REG_EMBEDDED) {
    log_info("%s: embedded in igpt (%s); nothing to fetch", ds->name, ds->description);
    return 0;
  }
  static bool curl_ready = false;
  if (!curl_ready) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    curl_ready = true;
  }
  for (int i = 0; i < ds->n_files; i++)
    if (fetch_file(ds, &ds->files[i], o, files_out)) return igpt_err_prefix("fetch %s", ds->name);
  return 0;
}

int verify_dataset(const reg_dataset *ds, const fetch_opts *o, json_t *files_out) {
  if (ds->kind == REG_EMBEDDED) return 0;
  char *dir = fetch_set_dir(o, ds->name);
  int rc = 0;
  for (int i = 0; i < ds->n_files && rc == 0; i++) {
    const reg_file *f = &ds->files[i];
    char *path = xasprintf("%s/%s", dir, f->name), *pin = xasprintf("%s.sha256", path);
    verify_info vi;
    if (!path_exists(path))
      rc = igpt_err("%s: missing (run 'igpt fetch %s')", path, ds->name);
    else if (verify_file(f, path, NULL, pin, false, &vi))
      rc = -1;
    else {
      json_t *j = file_json(f, path, "verified", &vi, NULL);
      if (f->unpack) {
        char *top = xasprintf("%s/%s", dir, f->unpack);
        if (!path_exists(top)) rc = igpt_err("%s: not unpacked (run 'igpt fetch %s')", top, ds->name);
        else if (unpack_check_members(dir, f->members, f->n_members)) rc = -1;
        else json_object_set_new(j, "unpacked", json_string(top));
        free(top);
      }
      if (rc == 0) log_info("%s: verified (%s)", path, vi.how);
      if (files_out) json_array_append(files_out, j);
      json_decref(j);
    }
    free(path);
    free(pin);
  }
  free(dir);
  return rc ? igpt_err_prefix("verify %s", ds->name) : 0;
}
