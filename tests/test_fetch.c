// fetch against the fault-injecting server (tests/http_server.py): each mode ends either with a
// verified file or a clear error naming the URL, and then no final file and no .part (unless a
// rerun can resume it: bytes with their validator). Resumes only with a validator (If-Range).
// Timeouts and backoff are shortened through fetch_opts so the binary stays well under 30 s.
#include "testutil.h"
#include "datasets/fetch.h"
#include "datasets/registry.h"
#include "datasets/verify.h"
#include <curl/curl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <zlib.h>

#define BLOB_SHA "5c34f691e37751b6f44d1c66b20fe7e3dc65f70530d6c58535aa58a5e7b1613c"
#define BLOB_SIZE 262144

static pid_t srv_pid;
static int srv_port;
static char *tmp, *base;
static registry reg;
static fetch_opts opts;

static void start_server(void) {
  int p[2];
  cr_assert_eq(pipe(p), 0);
  char parent[32];
  snprintf(parent, sizeof parent, "%d", (int)getpid());
  char *script = repo_path("tests/http_server.py");
  srv_pid = fork();
  cr_assert(srv_pid >= 0);
  if (srv_pid == 0) {
    dup2(p[1], 1);
    close(p[0]);
    execl("/usr/bin/python3", "python3", script, "--parent", parent, "--lifetime", "60", (char *)NULL);
    _exit(127);
  }
  free(script);
  close(p[1]);
  struct pollfd pf = {.fd = p[0], .events = POLLIN};
  char line[64] = {0};
  size_t n = 0;
  while (n < sizeof line - 1 && !strchr(line, '\n')) {
    cr_assert(poll(&pf, 1, 10000) == 1, "the fixture server did not start within 10 s");
    ssize_t k = read(p[0], line + n, sizeof line - 1 - n);
    cr_assert(k > 0, "the fixture server exited before printing its port");
    n += (size_t)k;
  }
  close(p[0]);
  cr_assert_eq(sscanf(line, "PORT %d", &srv_port), 1, "bad first line from the server: %s", line);
}

static void setup(void) {
  // The fixture server is local: a proxy from the environment must not be asked for it.
  setenv("no_proxy", "127.0.0.1,localhost", 1);
  setenv("NO_PROXY", "127.0.0.1,localhost", 1);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  start_server();
  tmp = test_tmpdir("fetch");
  base = xasprintf("http://127.0.0.1:%d", srv_port);
  // The fixture registry with {base} replaced by this server's address.
  char *fx = repo_path("tests/fixtures/fetch-registry.json");
  uint8_t *text;
  size_t len;
  cr_assert_eq(file_read_all(fx, &text, &len), 0, "%s", igpt_errmsg());
  size_t cap = len * 2 + 4096, o = 0;
  char *out = xmalloc(cap);
  for (const char *s = (const char *)text; *s;) {
    if (!strncmp(s, "{base}", 6)) { o += sprintf(out + o, "%s", base); s += 6; }
    else out[o++] = *s++;
  }
  out[o] = 0;
  char *rp = xasprintf("%s/registry.json", tmp);
  cr_assert_eq(file_write_atomic(rp, out, o), 0);
  cr_assert_eq(registry_load(&reg, rp), 0, "%s", igpt_errmsg());
  free(fx); free(text); free(out); free(rp);
  cr_assert_eq(fetch_opts_init(&opts), 0);
  free(opts.data_dir);
  opts.data_dir = xasprintf("%s/data", tmp);
  opts.retries = 3;
  opts.backoff_s = 0.05;
  opts.backoff_max_s = 0.2;
  opts.retry_after_max_s = 1.5;
  opts.low_speed_limit = 1000;
  opts.low_speed_time_s = 1;
  opts.connect_timeout_s = 5;
  opts.progress = 0;
}

static void teardown(void) {
  if (srv_pid > 0) {
    kill(srv_pid, SIGKILL);
    waitpid(srv_pid, NULL, 0);
    srv_pid = 0;
  }
  registry_free(&reg);
  fetch_opts_free(&opts);
  if (tmp) rm_rf(tmp);
  free(tmp); free(base);
  tmp = base = NULL;
}

TestSuite(fetch, .init = setup, .fini = teardown, .timeout = 30);

static size_t grow(char *p, size_t s, size_t n, void *ud) {
  char **buf = ud;
  size_t old = *buf ? strlen(*buf) : 0;
  *buf = xrealloc(*buf, old + s * n + 1);
  memcpy(*buf + old, p, s * n);
  (*buf)[old + s * n] = 0;
  return s * n;
}

// The headers (endpoint "hits": Range, "if-range": If-Range) of the requests the server saw for
// path (a JSON array; caller decrefs).
static json_t *seen_by_server(const char *endpoint, const char *path) {
  char *url = xasprintf("%s/%s", base, endpoint), *body = NULL;
  CURL *h = curl_easy_init();
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, grow);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
  cr_assert_eq(curl_easy_perform(h), CURLE_OK);
  curl_easy_cleanup(h);
  json_t *all = json_loads(body, 0, NULL);
  cr_assert_not_null(all);
  json_t *r = json_object_get(all, path);
  r = r ? json_incref(r) : json_array();
  json_decref(all);
  free(url); free(body);
  return r;
}
static json_t *hits(const char *path) { return seen_by_server("hits", path); }
static json_t *if_ranges(const char *path) { return seen_by_server("if-range", path); }

// The i-th header the server saw for path equals want.
static void saw(json_t *(*of)(const char *), const char *path, size_t i, const char *want) {
  json_t *h = of(path);
  cr_assert(json_array_size(h) > i, "%s: %zu requests, expected more than %zu", path, json_array_size(h), i);
  cr_assert_str_eq(json_string_value(json_array_get(h, i)), want, "%s: request %zu", path, i);
  json_decref(h);
}

// The served blob (tests/http_server.py --dump), and its ETag as the server names it.
static uint8_t *blob_bytes(size_t *n) {
  char cmd[1024], *p = xasprintf("%s/blob.bin", tmp);
  snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/tests/http_server.py --dump %s", test_root(), tmp);
  cr_assert_eq(run_cmd(cmd), 0);
  uint8_t *b;
  cr_assert_eq(file_read_all(p, &b, n), 0, "%s", igpt_errmsg());
  free(p);
  return b;
}
static void blob_etag(char out[19]) {
  snprintf(out, 19, "\"%.16s\"", BLOB_SHA);
}
#define LAST_MODIFIED "Wed, 21 Oct 2015 07:28:00 GMT"  // tests/http_server.py's

static int fetch_set(const char *name) {
  const reg_dataset *ds = registry_find(&reg, name);
  cr_assert_not_null(ds, "%s", igpt_errmsg());
  return fetch_dataset(ds, &opts, NULL);
}

static char *dl_path(const char *set, const char *file) { return xasprintf("%s/downloads/%s/%s", opts.data_dir, set, file); }

// Writes a validator beside downloads/set/blob.bin.part, as fetch writes it.
static void write_validator(const char *set, const char *mode, const char *etag) {
  char *v = dl_path(set, "blob.bin.part.validator"), *url = xasprintf("%s/%s/blob.bin", base, mode);
  json_t *j = json_pack("{s:s, s:s}", "url", url, "etag", etag);
  char *js = json_dumps(j, 0);
  cr_assert_eq(file_write_atomic(v, js, strlen(js)), 0);
  json_decref(j);
  free(js); free(url); free(v);
}

static void expect_verified(const char *set) {
  char *p = dl_path(set, "blob.bin"), *part = xasprintf("%s.part", p);
  char sha[65];
  cr_assert_eq(sha256_file(p, sha), 0, "%s", igpt_errmsg());
  cr_assert_str_eq(sha, BLOB_SHA);
  cr_assert(!path_exists(part), "a .part is left behind");
  free(p); free(part);
}

// Fetching set fails with a message holding every given fragment; no final file is left, and a
// .part (with its validator) only when keep_part says a rerun can resume it.
static void expect_failure(const char *set, bool keep_part, const char *const *frags) {
  igpt_err_clear();
  cr_assert_eq(fetch_set(set), -1, "set %s was accepted", set);
  const char *msg = igpt_errmsg();
  for (int i = 0; frags[i]; i++) cr_assert(strstr(msg, frags[i]), "no '%s' in: %s", frags[i], msg);
  char *p = dl_path(set, "blob.bin"), *part = xasprintf("%s.part", p), *v = xasprintf("%s.part.validator", p);
  cr_assert(!path_exists(p), "a final file exists after a failure");
  cr_assert_eq(path_exists(part), keep_part, "a .part is %s after a failure", keep_part ? "missing" : "left");
  cr_assert_eq(path_exists(v), keep_part, "a validator is %s after a failure", keep_part ? "missing" : "left");
  free(p); free(part); free(v);
}
#define FAILS(set, ...) expect_failure(set, false, (const char *const[]){__VA_ARGS__, NULL})
#define FAILS_KEEPING_PART(set, ...) expect_failure(set, true, (const char *const[]){__VA_ARGS__, NULL})

static char *url_of(const char *mode) { return xasprintf("%s/%s/blob.bin", base, mode); }

Test(fetch, ok) {
  cr_assert_eq(fetch_set("ok"), 0, "%s", igpt_errmsg());
  expect_verified("ok");
  // A second fetch uses the verified cache: no request.
  cr_assert_eq(fetch_set("ok"), 0, "%s", igpt_errmsg());
  json_t *h = hits("/ok/blob.bin");
  cr_assert_eq(json_array_size(h), 1);
  json_decref(h);
}

Test(fetch, truncated_then_resumed_with_range) {
  cr_assert_eq(fetch_set("trunc-once"), 0, "%s", igpt_errmsg());
  expect_verified("trunc-once");
  json_t *h = hits("/trunc-once/blob.bin");
  cr_assert_eq(json_array_size(h), 2);
  cr_assert_str_eq(json_string_value(json_array_get(h, 1)), "bytes=131072-");  // resumed after the first half
  json_decref(h);
}

Test(fetch, range_ignored_restarts_from_zero) {
  cr_assert_eq(fetch_set("trunc-norange"), 0, "%s", igpt_errmsg());
  expect_verified("trunc-norange");  // a 200 to a Range request: the .part was truncated, not appended to
  json_t *h = hits("/trunc-norange/blob.bin");
  cr_assert_eq(json_array_size(h), 2);
  cr_assert_str_eq(json_string_value(json_array_get(h, 1)), "bytes=131072-");
  json_decref(h);
}

Test(fetch, only_sha256_known_truncation_resumes) {
  cr_assert_eq(fetch_set("nosize-trunc"), 0, "%s", igpt_errmsg());
  expect_verified("nosize-trunc");
}

Test(fetch, stall_once_times_out_then_resumes) {
  double t0 = now_seconds();
  cr_assert_eq(fetch_set("stall-once"), 0, "%s", igpt_errmsg());
  expect_verified("stall-once");
  json_t *h = hits("/stall-once/blob.bin");
  cr_assert_eq(json_array_size(h), 2);
  cr_assert_str_eq(json_string_value(json_array_get(h, 1)), "bytes=512-");
  json_decref(h);
  // libcurl's speed is a ~5 s moving average, so a 1 s low-speed time acts within a few seconds.
  cr_assert(now_seconds() - t0 < 8, "the low-speed timeout did not cut the stalled transfer");
}

Test(fetch, stall_forever_fails_after_retries) {
  opts.retries = 1;
  char *u = url_of("stall");
  FAILS_KEEPING_PART("stall", u, "timed out", "retries exhausted", "every mirror failed", "kept the 512 bytes");
  free(u);
  json_t *h = hits("/stall/blob.bin");
  cr_assert_eq(json_array_size(h), 2);
  json_decref(h);
}

Test(fetch, not_found_is_permanent) {
  char *u = url_of("404");
  FAILS("404", u, "HTTP 404 (not found)", "expected 200 with the bytes of blob.bin");
  free(u);
  json_t *h = hits("/404/blob.bin");
  cr_assert_eq(json_array_size(h), 1, "a 404 was retried");
  json_decref(h);
}

Test(fetch, server_error_retried_with_exponential_backoff) {
  opts.backoff_s = 0.1;
  opts.backoff_max_s = 10;
  double t0 = now_seconds();
  char *u = url_of("500");
  FAILS("500", u, "HTTP 500", "retries exhausted");
  free(u);
  double waited = now_seconds() - t0;  // 0.1 + 0.2 + 0.4 s of backoff
  cr_assert(waited >= 0.7 && waited < 3, "backoff of 3 retries took %.2f s, expected 0.7 s", waited);
  json_t *h = hits("/500/blob.bin");
  cr_assert_eq((int)json_array_size(h), 1 + opts.retries);
  json_decref(h);
}

Test(fetch, unavailable_once_honours_retry_after) {
  double t0 = now_seconds();
  cr_assert_eq(fetch_set("503-once"), 0, "%s", igpt_errmsg());
  expect_verified("503-once");
  // Backoff alone would wait 0.05 s; the server's Retry-After: 1 must be honoured.
  cr_assert(now_seconds() - t0 >= 1.0, "Retry-After ignored (%.2f s)", now_seconds() - t0);
}

Test(fetch, too_many_requests_once_honours_retry_after) {
  double t0 = now_seconds();
  cr_assert_eq(fetch_set("429-once"), 0, "%s", igpt_errmsg());
  expect_verified("429-once");
  cr_assert(now_seconds() - t0 >= 1.0, "Retry-After ignored");
}

Test(fetch, retry_after_as_http_date) {
  double t0 = now_seconds();
  cr_assert_eq(fetch_set("503-date-once"), 0, "%s", igpt_errmsg());
  expect_verified("503-date-once");
  cr_assert(now_seconds() - t0 >= 1.0, "a Retry-After date 2 s ahead was ignored (%.2f s)", now_seconds() - t0);
}

Test(fetch, request_timeout_once_retried) {
  cr_assert_eq(fetch_set("408-once"), 0, "%s", igpt_errmsg());
  expect_verified("408-once");
}

Test(fetch, unavailable_always_retry_after_capped) {
  opts.retries = 2;
  opts.retry_after_max_s = 0.2;  // the server asks for 1 s; the cap wins
  double t0 = now_seconds();
  char *u = url_of("503");
  FAILS("503", u, "HTTP 503 (service unavailable)", "retry later", "retries exhausted");
  free(u);
  cr_assert(now_seconds() - t0 < 0.9 * 2, "Retry-After was not capped (%.2f s)", now_seconds() - t0);
  json_t *h = hits("/503/blob.bin");
  cr_assert_eq(json_array_size(h), 3);
  json_decref(h);
}

Test(fetch, html_page_named_by_content_type) {
  char *u = url_of("html");
  FAILS("html", u, "got an HTML page", "text/html", "binary data was expected");
  free(u);
}

Test(fetch, html_page_named_by_content) {
  char *u = url_of("html-octet");
  FAILS("html-octet", u, "got an HTML page", "<!DOCTYPE html>");
  free(u);
}

Test(fetch, wrong_bytes_rejected_by_sha256) {
  char *u = url_of("wrong");
  FAILS("wrong", u, "sha256 mismatch: expected " BLOB_SHA ", got ");
  free(u);
}

Test(fetch, size_checked_before_hash) {
  char *u = url_of("long");
  FAILS("long", u, "announces 262244 bytes, expected 262144");
  free(u);
  u = url_of("long");
  FAILS("nosize-long", u, "sha256 mismatch");
  free(u);
}

Test(fetch, redirect_followed) {
  cr_assert_eq(fetch_set("redirect"), 0, "%s", igpt_errmsg());
  expect_verified("redirect");
}

Test(fetch, redirect_to_local_file_refused) {
  char *u = url_of("redirect-file");
  FAILS("redirect-file", u, "curl error");
  free(u);
}

Test(fetch, redirect_loop_refused) {
  char *u = url_of("redirect-loop");
  FAILS("redirect-loop", u, "redirect");
  free(u);
}

Test(fetch, failover_to_next_mirror) {
  cr_assert_eq(fetch_set("failover"), 0, "%s", igpt_errmsg());
  expect_verified("failover");
  const char *modes[] = {"/404/blob.bin", "/html/blob.bin", "/wrong/blob.bin", "/ok/blob.bin"};
  for (int i = 0; i < 4; i++) {
    json_t *h = hits(modes[i]);
    cr_assert_eq(json_array_size(h), 1, "%s requested %zu times (a permanent failure is not retried)", modes[i],
                 json_array_size(h));
    json_decref(h);
  }
}

Test(fetch, every_mirror_failing_names_each) {
  char *a = url_of("404"), *b = url_of("html-octet"), *c = url_of("wrong");
  FAILS("all-bad", "every mirror failed (3)", a, b, c, "HTTP 404", "HTML page", "sha256 mismatch");
  free(a); free(b); free(c);
}

Test(fetch, md5_only) {
  cr_assert_eq(fetch_set("md5-only"), 0, "%s", igpt_errmsg());
  expect_verified("md5-only");
}

// A .part from an interrupted run is resumed with a Range request and If-Range holding the
// validator its first response gave.
Test(fetch, resumes_existing_part) {
  char *dir = xasprintf("%s/downloads/ok", opts.data_dir), *part = dl_path("ok", "blob.bin.part");
  cr_assert_eq(mkdir_p(dir), 0);
  size_t n;
  uint8_t *blob = blob_bytes(&n);
  char etag[19];
  blob_etag(etag);
  cr_assert_eq(file_write_atomic(part, blob, 100000), 0);
  write_validator("ok", "ok", etag);
  cr_assert_eq(fetch_set("ok"), 0, "%s", igpt_errmsg());
  expect_verified("ok");
  json_t *h = hits("/ok/blob.bin");
  cr_assert_eq(json_array_size(h), 1);
  json_decref(h);
  saw(hits, "/ok/blob.bin", 0, "bytes=100000-");
  saw(if_ranges, "/ok/blob.bin", 0, etag);
  char *v = dl_path("ok", "blob.bin.part.validator");
  cr_assert(!path_exists(v), "the validator outlived its .part");
  free(v); free(dir); free(part); free(blob);
}

// A .part without a validator cannot be told from another version's bytes: restarted from 0.
Test(fetch, part_without_validator_restarts_from_zero) {
  char *dir = xasprintf("%s/downloads/ok", opts.data_dir), *part = dl_path("ok", "blob.bin.part");
  cr_assert_eq(mkdir_p(dir), 0);
  size_t n;
  uint8_t *blob = blob_bytes(&n);
  cr_assert_eq(file_write_atomic(part, blob, 100000), 0);
  cr_assert_eq(fetch_set("ok"), 0, "%s", igpt_errmsg());
  expect_verified("ok");
  saw(hits, "/ok/blob.bin", 0, "");
  free(dir); free(part); free(blob);
}

// A .part with a corrupt prefix: the resumed file fails its sha256, is deleted, and one fresh
// download from byte 0 follows.
Test(fetch, corrupt_part_discarded) {
  char *dir = xasprintf("%s/downloads/ok", opts.data_dir), *part = dl_path("ok", "blob.bin.part");
  cr_assert_eq(mkdir_p(dir), 0);
  uint8_t junk[5000];
  memset(junk, 0x42, sizeof junk);
  cr_assert_eq(file_write_atomic(part, junk, sizeof junk), 0);
  char etag[19];
  blob_etag(etag);
  write_validator("ok", "ok", etag);  // the server vouches for the version, not for the bytes kept
  cr_assert_eq(fetch_set("ok"), 0, "%s", igpt_errmsg());
  expect_verified("ok");
  json_t *h = hits("/ok/blob.bin");
  cr_assert_eq(json_array_size(h), 2);
  cr_assert_str_eq(json_string_value(json_array_get(h, 0)), "bytes=5000-");
  cr_assert_str_eq(json_string_value(json_array_get(h, 1)), "");
  json_decref(h);
  free(dir); free(part);
}

// ---- resuming only with a validator (If-Range), never splicing two versions ----

// Out of retries: the bytes so far stay with their validator, and a rerun resumes them.
Test(fetch, retries_exhausted_keep_part_for_rerun) {
  opts.retries = 1;
  char *u = url_of("trunc-twice");
  FAILS_KEEPING_PART("trunc-twice", u, "retries exhausted", "kept the 131072 bytes", "so a rerun resumes");
  free(u);
  cr_assert_eq(fetch_set("trunc-twice"), 0, "%s", igpt_errmsg());
  expect_verified("trunc-twice");
  char etag[19];
  blob_etag(etag);
  saw(hits, "/trunc-twice/blob.bin", 2, "bytes=131072-");
  saw(if_ranges, "/trunc-twice/blob.bin", 2, etag);
}

Test(fetch, no_validator_restarts_from_zero) {
  cr_assert_eq(fetch_set("nv-trunc-once"), 0, "%s", igpt_errmsg());
  expect_verified("nv-trunc-once");
  saw(hits, "/nv-trunc-once/blob.bin", 1, "");  // the half it had could be of another version
}

Test(fetch, last_modified_resumes_from_the_same_url) {
  cr_assert_eq(fetch_set("lm-trunc-once"), 0, "%s", igpt_errmsg());
  expect_verified("lm-trunc-once");
  saw(hits, "/lm-trunc-once/blob.bin", 1, "bytes=131072-");
  saw(if_ranges, "/lm-trunc-once/blob.bin", 1, LAST_MODIFIED);
}

// Nothing is published, so the first download is pinned: a mirror that changed between the cut
// and the resume must not have half of each version pinned as the truth.
static void expect_not_spliced(const char *set) {
  cr_assert_eq(fetch_set(set), 0, "%s", igpt_errmsg());
  expect_verified(set);  // blob.bin whole, not half another version's bytes
  char *pin = dl_path(set, "blob.bin.sha256");
  uint8_t *text;
  size_t n;
  cr_assert_eq(file_read_all(pin, &text, &n), 0, "%s", igpt_errmsg());
  cr_assert(!strncmp((char *)text, BLOB_SHA, 64), "pinned %s", text);
  free(text); free(pin);
}

Test(fetch, changed_file_not_spliced_into_the_pin) {
  expect_not_spliced("changed-once");
  char *path = xasprintf("/%s/blob.bin", "changed-once");
  saw(hits, path, 1, "bytes=131072-");  // asked for the rest of the first version only,
  json_t *ir = if_ranges(path);         // naming it, so the server sent the new one whole
  cr_assert(strlen(json_string_value(json_array_get(ir, 1))) == 18, "no If-Range with the first ETag");
  json_decref(ir);
  free(path);
}

Test(fetch, server_ignoring_if_range_not_spliced) {
  expect_not_spliced("ignore-if-range");  // its 206 names another version: refused, from 0 again
  saw(hits, "/ignore-if-range/blob.bin", 2, "");
}

Test(fetch, no_resume_across_mirrors_without_validator) {
  opts.retries = 0;
  cr_assert_eq(fetch_set("mirrors-nv"), 0, "%s", igpt_errmsg());
  expect_verified("mirrors-nv");
  saw(hits, "/ok/blob.bin", 0, "");
}

Test(fetch, resume_across_mirrors_with_an_etag) {
  opts.retries = 0;
  cr_assert_eq(fetch_set("mirrors-etag"), 0, "%s", igpt_errmsg());
  expect_verified("mirrors-etag");
  char etag[19];
  blob_etag(etag);
  saw(hits, "/ok/blob.bin", 0, "bytes=131072-");  // a strong ETag names the entity on any server
  saw(if_ranges, "/ok/blob.bin", 0, etag);
}

Test(fetch, last_modified_not_across_mirrors) {
  opts.retries = 0;
  cr_assert_eq(fetch_set("mirrors-lm"), 0, "%s", igpt_errmsg());
  expect_verified("mirrors-lm");
  saw(hits, "/ok/blob.bin", 0, "");  // a date is one server's clock
}

Test(fetch, unknown_size_capped) {
  char *u = url_of("ok");
  FAILS("capped", u, "more than the 100000 bytes allowed for a file of unknown size", "max_size");
  free(u);
}

// A cached file that fails (here: a registry whose digest changed) is moved aside, not deleted,
// until its replacement verifies.
Test(fetch, cached_file_failing_moved_aside_until_replaced) {
  cr_assert_eq(fetch_set("ok"), 0, "%s", igpt_errmsg());
  reg_file *f = (reg_file *)&registry_find(&reg, "ok")->files[0];
  char *mirror = f->mirrors[0], *aside = dl_path("ok", "blob.bin.unverified");
  f->mirrors[0] = url_of("404");
  f->want.sha256[0] = f->want.sha256[0] == '0' ? '1' : '0';
  FAILS("ok", "HTTP 404", "the cached copy that failed verification is kept as", "blob.bin.unverified");
  char sha[65];
  cr_assert_eq(sha256_file(aside, sha), 0, "the failing copy was deleted: %s", igpt_errmsg());
  cr_assert_str_eq(sha, BLOB_SHA);
  free(f->mirrors[0]);
  f->mirrors[0] = mirror;
  memcpy(f->want.sha256, BLOB_SHA, 65);
  cr_assert_eq(fetch_set("ok"), 0, "%s", igpt_errmsg());
  expect_verified("ok");
  cr_assert(!path_exists(aside), "the copy moved aside outlived its verified replacement");
  free(aside);
}

Test(fetch, corrupt_cache_refetched_offline_refused) {
  cr_assert_eq(fetch_set("ok"), 0, "%s", igpt_errmsg());
  char *p = dl_path("ok", "blob.bin");
  FILE *f = fopen(p, "r+b");
  fputc('X', f);
  fclose(f);
  opts.offline = true;
  cr_assert_eq(fetch_set("ok"), -1);
  cr_assert(strstr(igpt_errmsg(), "--offline") && strstr(igpt_errmsg(), "sha256 mismatch"), "%s", igpt_errmsg());
  const reg_dataset *ds = registry_find(&reg, "ok");
  cr_assert_eq(verify_dataset(ds, &opts, NULL), -1);
  cr_assert(strstr(igpt_errmsg(), "sha256 mismatch"), "%s", igpt_errmsg());
  opts.offline = false;
  cr_assert_eq(fetch_set("ok"), 0, "%s", igpt_errmsg());  // the bad copy is replaced
  expect_verified("ok");
  cr_assert_eq(verify_dataset(ds, &opts, NULL), 0, "%s", igpt_errmsg());
  free(p);
}

Test(fetch, offline_fetches_nothing) {
  opts.offline = true;
  FAILS("ok", "not in the cache and --offline fetches nothing");
  json_t *h = hits("/ok/blob.bin");
  cr_assert_eq(json_array_size(h), 0);
  json_decref(h);
}

Test(fetch, archive_unpacked_with_members_checked_and_pinned) {
  cr_assert_eq(fetch_set("archive"), 0, "%s", igpt_errmsg());
  char *a = dl_path("archive", "top/a.bin"), *pin = dl_path("archive", "archive.tgz.sha256");
  char *link = dl_path("archive", "top/link"), *b = dl_path("archive", "top/sub/b.txt");
  cr_assert(path_exists(a) && path_exists(b) && path_exists(link));
  cr_assert(path_exists(pin), "no digest is published: the sha256 must be pinned");
  const reg_dataset *ds = registry_find(&reg, "archive");
  cr_assert_eq(verify_dataset(ds, &opts, NULL), 0, "%s", igpt_errmsg());
  FILE *f = fopen(b, "ab");
  fputs("tampered", f);
  fclose(f);
  cr_assert_eq(verify_dataset(ds, &opts, NULL), -1);
  cr_assert(strstr(igpt_errmsg(), "top/sub/b.txt") && strstr(igpt_errmsg(), "size 31 bytes, expected 23"), "%s",
            igpt_errmsg());
  // fetch repairs the unpacked copy from the verified archive without downloading again
  cr_assert_eq(fetch_set("archive"), 0, "%s", igpt_errmsg());
  cr_assert_eq(verify_dataset(ds, &opts, NULL), 0, "%s", igpt_errmsg());
  json_t *h = hits("/ok/archive.tgz");
  cr_assert_eq(json_array_size(h), 1);
  json_decref(h);
  free(a); free(pin); free(link); free(b);
}

Test(fetch, archive_member_mismatch_not_unpacked) {
  cr_assert_eq(fetch_set("archive-badmember"), -1);
  cr_assert(strstr(igpt_errmsg(), "top/a.bin") && strstr(igpt_errmsg(), "sha256 mismatch"), "%s", igpt_errmsg());
  char *top = dl_path("archive-badmember", "top");
  cr_assert(!path_exists(top), "a directory whose members failed was renamed into place");
  free(top);
}

// The command: --json on stdout, exit 1 with the URL on stderr, exit 2 on a usage error.
Test(fetch, command_line) {
  char *bin = igpt_bin(), *out = xasprintf("%s/out.json", tmp), *err = xasprintf("%s/err.txt", tmp);
  char *common = xasprintf("IGPT_FETCH_RETRIES=0 IGPT_FETCH_BACKOFF=0 %s fetch --registry %s/registry.json --data %s/cli "
                           "--no-progress", bin, tmp, tmp);
  char *cmd = xasprintf("%s ok redirect --json >%s 2>%s", common, out, err);
  cr_assert_eq(run_cmd(cmd), 0);
  uint8_t *text;
  size_t n;
  cr_assert_eq(file_read_all(out, &text, &n), 0);
  json_t *j = json_loads((char *)text, 0, NULL);
  cr_assert_not_null(j, "not JSON: %s", text);
  cr_assert(json_is_true(json_object_get(j, "ok")));
  json_t *files = json_object_get(json_object_get(json_object_get(j, "datasets"), "ok"), "files");
  cr_assert_str_eq(json_string_value(json_object_get(json_array_get(files, 0), "sha256")), BLOB_SHA);
  json_decref(j);
  free(text); free(cmd);
  cmd = xasprintf("%s 404 >%s 2>%s", common, out, err);
  cr_assert_eq(run_cmd(cmd), 1);
  cr_assert_eq(file_read_all(err, &text, &n), 0);
  cr_assert(strstr((char *)text, "igpt fetch: error:") && strstr((char *)text, "/404/blob.bin: HTTP 404"), "%s", text);
  free(text); free(cmd);
  cmd = xasprintf("%s no-such-set 2>%s", common, err);
  cr_assert_eq(run_cmd(cmd), 2);
  free(cmd);
  cmd = xasprintf("%s verify ok --registry %s/registry.json --data %s/cli >%s 2>%s", bin, tmp, tmp, out, err);
  cr_assert_eq(run_cmd(cmd), 0);
  free(cmd);
  cmd = xasprintf("%s verify --help >%s", bin, out);
  cr_assert_eq(run_cmd(cmd), 0);
  free(cmd); free(common); free(bin); free(out); free(err);
}

// ---- gzip content: two different compressions of the same bytes both verify ----

static void write_gz(const char *path, const char *mode, const void *data, size_t n) {
  gzFile g = gzopen(path, mode);
  cr_assert_not_null(g);
  cr_assert_eq(gzwrite(g, data, (unsigned)n), (int)n);
  cr_assert_eq(gzclose(g), Z_OK);
}

Test(fetch, gzip_content_accepts_any_compression) {
  size_t n = 300000;
  uint8_t *data = xmalloc(n);
  for (size_t i = 0; i < n; i++) data[i] = (uint8_t)((i * 7) ^ (i >> 9));
  char sha[65];
  sha256_hex(data, n, sha);
  char *fast = xasprintf("%s/fast.gz", tmp), *best = xasprintf("%s/best.gz", tmp), *cut = xasprintf("%s/cut.gz", tmp),
       *other = xasprintf("%s/other.gz", tmp);
  write_gz(fast, "wb1", data, n);
  write_gz(best, "wb9", data, n);
  data[1234] ^= 1;
  write_gz(other, "wb6", data, n);
  // a truncated copy of best.gz
  uint8_t *b;
  size_t bn;
  cr_assert_eq(file_read_all(best, &b, &bn), 0);
  cr_assert_eq(file_write_atomic(cut, b, bn / 2), 0);
  char fsha[65], bsha[65];
  sha256_file(fast, fsha);
  sha256_file(best, bsha);
  cr_assert_str_neq(fsha, bsha, "the two compressions should differ as bytes");
  reg_file f = {.name = "x.gz", .format = FMT_GZIP, .has_decompressed = true};
  f.want.size = -1;
  memcpy(f.want.sha256, bsha, 65);  // "published" digest of one encoding only
  f.decompressed.size = (int64_t)n;
  memcpy(f.decompressed.sha256, sha, 65);
  verify_info vi;
  cr_assert_eq(verify_file(&f, best, NULL, NULL, false, &vi), 0, "%s", igpt_errmsg());
  cr_assert(strstr(vi.how, "and the published file digest"), "%s", vi.how);
  cr_assert_eq(verify_file(&f, fast, NULL, NULL, false, &vi), 0, "%s", igpt_errmsg());
  cr_assert(strstr(vi.how, "re-compressed"), "%s", vi.how);
  cr_assert_eq(verify_file(&f, other, "file:///x", NULL, false, &vi), -1);
  cr_assert(strstr(igpt_errmsg(), "decompressed: sha256 mismatch") && strstr(igpt_errmsg(), "file:///x"), "%s",
            igpt_errmsg());
  cr_assert_eq(verify_file(&f, cut, NULL, NULL, false, &vi), -1);
  cr_assert(strstr(igpt_errmsg(), "truncated") || strstr(igpt_errmsg(), "corrupt"), "%s", igpt_errmsg());
  cr_assert_eq(verify_file(&f, repo_path("tests/http_server.py"), NULL, NULL, false, &vi), -1);
  cr_assert(strstr(igpt_errmsg(), "not a gzip file"), "%s", igpt_errmsg());
  // two members (gzip -d's rule: one stream) verify; bytes after the last one that start none do not
  data[1234] ^= 1;
  char *two = xasprintf("%s/two.gz", tmp);
  write_gz(two, "wb6", data, n / 2);
  write_gz(two, "ab6", data + n / 2, n - n / 2);
  cr_assert_eq(verify_file(&f, two, NULL, NULL, false, &vi), 0, "%s", igpt_errmsg());
  FILE *fp = fopen(two, "ab");
  fputs("junk", fp);
  fclose(fp);
  cr_assert_eq(verify_file(&f, two, NULL, NULL, false, &vi), -1);
  cr_assert(strstr(igpt_errmsg(), "trailing bytes after the last gzip member at byte offset"), "%s", igpt_errmsg());
  free(two);
  free(data); free(fast); free(best); free(cut); free(other); free(b);
}

// Two fetches of one file at once: the lock serialises them, the second finds the file verified.
Test(fetch, concurrent_fetches_download_once) {
  char *bin = igpt_bin();
  char *one = xasprintf("%s fetch ok --registry %s/registry.json --data %s/cc -q", bin, tmp, tmp);
  char *cmd = xasprintf("%s & p=$!; %s; s=$?; wait $p && exit $s", one, one);
  cr_assert_eq(run_cmd(cmd), 0);
  json_t *h = hits("/ok/blob.bin");
  cr_assert_eq(json_array_size(h), 1, "downloaded %zu times", json_array_size(h));
  json_decref(h);
  free(bin); free(one); free(cmd);
}
