// testutil: paths and helpers shared by the Criterion tests (header-only).
// IGPT_ROOT is the checkout (set by ci/test.sh); the oracles live in ../shared/oracles beside it.
#pragma once
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <unistd.h>
#include "base/util.h"

static inline const char *test_root(void) {
  const char *r = getenv("IGPT_ROOT");
  return r ? r : ".";
}
// A path under the repository root; caller frees.
static inline char *repo_path(const char *rel) { return xasprintf("%s/%s", test_root(), rel); }
// A path under ../shared/oracles; caller frees.
static inline char *oracle_path(const char *rel) {
  const char *o = getenv("IGPT_ORACLES");
  return o ? xasprintf("%s/%s", o, rel) : xasprintf("%s/../shared/oracles/%s", test_root(), rel);
}
// The built command (IGPT_BIN, else build/igpt); caller frees.
static inline char *igpt_bin(void) {
  const char *b = getenv("IGPT_BIN");
  return b ? xstrdup(b) : repo_path("build/igpt");
}
// A fresh temporary directory; caller removes it with rm_rf and frees.
static inline char *test_tmpdir(const char *tag) {
  char *t = xasprintf("/tmp/igpt-test-%s-XXXXXX", tag);
  cr_assert(mkdtemp(t) != NULL, "mkdtemp failed");
  return t;
}
// Relative error ||a-b|| / ||b|| between a float32 result and a float64 reference.
static inline double rel_err_f32_f64(const float *a, const double *b, size_t n) {
  double num = 0, den = 0;
  for (size_t i = 0; i < n; i++) {
    double d = (double)a[i] - b[i];
    num += d * d;
    den += b[i] * b[i];
  }
  return den > 0 ? sqrt(num / den) : sqrt(num);
}
// Runs a shell command, returns its exit status (or -1).
static inline int run_cmd(const char *cmd) {
  int st = system(cmd);
  if (st == -1 || !WIFEXITED(st)) return -1;
  return WEXITSTATUS(st);
}
// Runs the built igpt with IGPT_DATA=dir; returns its exit status, stdout+stderr in *out (caller
// frees).
static inline int igpt_in(const char *dir, const char *args, char **out) {
  char *bin = igpt_bin(), *log = xasprintf("%s/log.txt", dir);
  char *cmd = xasprintf("IGPT_DATA=%s %s %s >%s 2>&1", dir, bin, args, log);
  int rc = run_cmd(cmd);
  size_t len;
  uint8_t *buf = NULL;
  if (file_read_all(log, &buf, &len) != 0) buf = (uint8_t *)xstrdup("");
  *out = (char *)buf;
  free(bin); free(log); free(cmd);
  return rc;
}
// The repository's suite/*.json copied into dst with the smoke scale shrunk to seconds: n_train
// and n_test images of its data sets, a 2-iteration palette, `steps` pretraining steps of batch
// 2 (a checkpoint kept every keep_every, 0: none), `seeds` seeds, a 1-block d 16 model, 10 labels
// per class at most, a 2-step fine-tune. The palette's k stays: the smoke model's n_vocab is its size.
#include <jansson.h>
static inline void shrunk_smoke_suite(const char *dst, int n_train, int n_test, int steps, int keep_every, int seeds) {
  char *src = repo_path("suite"), *cmd = xasprintf("mkdir -p %s && cp %s/*.json %s/", dst, src, dst);
  cr_assert_eq(run_cmd(cmd), 0);
  free(cmd);
  char *p = xasprintf("%s/scales.json", dst);
  json_error_t e;
  json_t *root = json_load_file(p, 0, &e);
  cr_assert_not_null(root, "%s", e.text);
  json_t *s = json_object_get(json_object_get(root, "scales"), "smoke");
  json_object_set_new(s, "prepare", json_pack("{s:{s:i, s:i}, s:{s:i, s:i}}", "synthetic", "n_train", n_train, "n_test",
                                              n_test, "fashion-mnist", "n_train", n_train, "n_test", n_test));
  json_t *pal = json_object_get(s, "palette");
  json_object_set_new(pal, "pixels", json_integer(20000));
  json_object_set_new(pal, "iters", json_integer(2));
  json_object_set_new(s, "pretrain", json_pack("{s:i, s:i, s:f, s:i, s:i}", "steps", steps, "batch", 2, "lr", 0.003,
                                               "warmup_steps", 1, "checkpoint_every", 2));
  if (keep_every) json_object_set_new(json_object_get(s, "pretrain"), "keep_every", json_integer(keep_every));
  json_object_set_new(s, "probe", json_pack("{s:i}", "max_labels_per_class", 10));
  json_object_set_new(s, "seeds", json_integer(seeds));
  json_object_set_new(s, "finetune", json_pack("{s:i, s:i, s:f, s:i}", "steps", 2, "batch", 2, "lr", 0.001, "eval_every", 1));
  cr_assert_eq(json_dump_file(root, p, JSON_INDENT(1)), 0);
  json_decref(root);
  free(p);
  p = xasprintf("%s/models.json", dst);
  root = json_load_file(p, 0, &e);
  cr_assert_not_null(root, "%s", e.text);
  json_t *m = json_object_get(json_object_get(root, "models"), "smoke");
  json_object_set_new(m, "n_layer", json_integer(1));
  json_object_set_new(m, "n_embd", json_integer(16));
  cr_assert_eq(json_dump_file(root, p, JSON_INDENT(1)), 0);
  json_decref(root);
  free(p);
  free(src);
}

// Every input kept under tests/fixtures/fuzz/<harness>/ (seeds and inputs that once crashed a
// reader) through the harness's entry point, as the libFuzzer harness calls it; returns how many.
// `one` aborts (fails the test) on a violated property; ASan (SAN=1) catches the rest.
static inline int fuzz_replay_dir(const char *harness, int (*one)(const uint8_t *, size_t)) {
  char *rel = xasprintf("tests/fixtures/fuzz/%s", harness), *dir = repo_path(rel);
  free(rel);
  DIR *d = opendir(dir);
  cr_assert_not_null(d, "%s: cannot open the fuzz fixtures", dir);
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    char *p = xasprintf("%s/%s", dir, e->d_name);
    uint8_t *buf;
    size_t len;
    cr_assert_eq(file_read_all(p, &buf, &len), 0, "%s", igpt_errmsg());
    one(buf, len);
    free(buf);
    free(p);
    n++;
  }
  closedir(d);
  free(dir);
  return n;
}
