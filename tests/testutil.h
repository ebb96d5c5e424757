// testutil: paths and helpers shared by the Criterion tests (header-only).
// IGPT_ROOT is the checkout (set by ci/test.sh); the oracles live in ../shared/oracles beside it.
#pragma once
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
