// The smoke scale's data: Fashion-MNIST where a local copy is present (Debian's
// dataset-fashion-mnist, a file:// mirror in the registry), else its stand-in, the embedded
// synthetic set (scales.json "fallback"), with a note on every row saying which ran and why.
// The registry is a copy of datasets/registry.json whose Fashion-MNIST mirrors point into a
// temporary directory, so both cases run whatever this machine has installed.
#include "testutil.h"
#include "jobs/jobs.h"
#include "jobs/suite.h"
#include <jansson.h>

// Writes dir/registry.json: the real registry with fashion-mnist's mirrors replaced by
// file://dir/fm/<file>; the files themselves exist only when `present`.
static char *registry_copy(const char *dir, bool present) {
  char *src = repo_path("datasets/registry.json");
  json_error_t e;
  json_t *root = json_load_file(src, 0, &e);
  cr_assert_not_null(root, "%s: %s", src, e.text);
  json_t *fm = json_object_get(json_object_get(root, "datasets"), "fashion-mnist");
  cr_assert_not_null(fm, "the registry has no fashion-mnist");
  char *fmdir = xasprintf("%s/fm", dir);
  cr_assert_eq(mkdir_p(fmdir), 0);
  size_t i; json_t *f;
  json_array_foreach(json_object_get(fm, "files"), i, f) {
    const char *name = json_string_value(json_object_get(f, "name"));
    char *p = xasprintf("%s/%s", fmdir, name), *url = xasprintf("file://%s", p);
    json_object_set_new(f, "mirrors", json_pack("[s]", url));
    if (present) cr_assert_eq(file_write_atomic(p, "x", 1), 0);
    free(p); free(url);
  }
  char *out = xasprintf("%s/registry-%s.json", dir, present ? "present" : "absent");
  cr_assert_eq(json_dump_file(root, out, JSON_INDENT(1)), 0);
  json_decref(root);
  free(fmdir); free(src);
  return out;
}

static bool has_label(const graph_t *g, const char *prefix) {
  for (int i = 0; i < g->n; i++)
    if (!strncmp(g->jobs[i]->label, prefix, strlen(prefix))) return true;
  return false;
}

// Expands the repository's linear-probe table at smoke with the given registry; checks which data
// set every row that runs ran and what its note says.
static void expect_smoke_data(const char *registry, const char *want, bool fell_back) {
  setenv("IGPT_REGISTRY", registry, 1);
  char *dir = repo_path("suite");
  suite_t s;
  cr_assert_eq(suite_load(&s, dir), 0, "%s", igpt_errmsg());
  json_t *fb = json_object_get(suite_scale(&s, "smoke"), "fallback");
  if (!json_is_string(json_object_get(fb, "fashion-mnist"))) {
    suite_free(&s);
    free(dir);
    unsetenv("IGPT_REGISTRY");
    cr_skip_test("suite/scales.json's smoke scale has no fashion-mnist fallback");
  }
  graph_t g;
  graph_init(&g, &s);
  cr_assert_eq(graph_expand(&g, "linear-probe", "smoke"), 0, "%s", igpt_errmsg());
  size_t i; json_t *row;
  int ran = 0;
  json_array_foreach(g.rows, i, row) {
    if (!strcmp(json_string_value(json_object_get(row, "status")), "skipped")) continue;
    ran++;
    cr_assert_str_eq(json_string_value(json_object_get(row, "dataset_run")), want);
    const char *note = json_string_value(json_object_get(row, "note"));
    if (fell_back) {
      cr_assert_not_null(note, "a row that ran the stand-in must say so");
      cr_assert(strstr(note, "synthetic ran instead of fashion-mnist") && strstr(note, "dataset-fashion-mnist"),
                "note: %s", note);
    } else {
      cr_assert(!note || !strstr(note, "instead of"), "note: %s", note);
    }
  }
  cr_assert_gt(ran, 0);
  char *prep = xasprintf("prepare %s ", want);
  cr_assert(has_label(&g, prep), "no job '%s...'", prep);  // pretraining data falls back too
  cr_assert(!has_label(&g, fell_back ? "prepare fashion-mnist" : "prepare synthetic"));
  cr_assert_eq(has_label(&g, "fetch fashion-mnist"), !fell_back);
  free(prep);
  graph_free(&g);
  suite_free(&s);
  free(dir);
  unsetenv("IGPT_REGISTRY");
}

Test(fallback, local_fashion_mnist_runs_when_present) {
  char *dir = test_tmpdir("fallback-present");
  char *reg = registry_copy(dir, true);
  expect_smoke_data(reg, "fashion-mnist", false);
  rm_rf(dir);
  free(reg); free(dir);
}

Test(fallback, synthetic_stands_in_when_absent_and_says_so) {
  char *dir = test_tmpdir("fallback-absent");
  char *reg = registry_copy(dir, false);
  expect_smoke_data(reg, "synthetic", true);
  rm_rf(dir);
  free(reg); free(dir);
}
