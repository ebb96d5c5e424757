// End to end: every paper table at a shrunken smoke scale with the real verbs (prepare synthetic,
// palette, tokenize, train, features, probe, finetune, report), then a rerun that does no work.
// The suite is the repository's, with scales.json's smoke entry shrunk so the four tables take
// seconds; skipped when this build lacks one of the verbs (before the branches are merged).
#include "testutil.h"
#include <jansson.h>

// The built command has every verb the tables run (asked with --help: the test binary itself
// links only what it references).
static bool have_verbs(void) {
  const char *verbs[] = {"prepare", "palette", "tokenize", "train", "features", "probe", "finetune"};
  char *bin = igpt_bin();
  bool ok = true;
  for (size_t i = 0; i < sizeof verbs / sizeof verbs[0] && ok; i++) {
    char *cmd = xasprintf("%s %s --help >/dev/null 2>&1", bin, verbs[i]);
    ok = run_cmd(cmd) == 0;
    free(cmd);
  }
  free(bin);
  return ok;
}

Test(reproduce, all_tables_at_tiny_smoke_then_rerun_does_no_work, .timeout = 300) {
  if (!have_verbs()) cr_skip_test("this build lacks some of prepare/palette/tokenize/train/features/probe/finetune");
  char *dir = test_tmpdir("reproduce");
  shrunk_smoke_suite(dir, 200, 60, 3, 0, 1);
  char *bin = igpt_bin();
  char *cmd = xasprintf("cd %s && IGPT_PLAIN=1 OMP_NUM_THREADS=1 %s run all --suite %s --cache %s/cache --results %s/results "
                        "--jobs 2 2> %s/run1.err", dir, bin, dir, dir, dir, dir);
  int rc = run_cmd(cmd);
  if (rc != 0) {
    char *log = xasprintf("tail -n 30 %s/run1.err", dir);
    run_cmd(log);
    free(log);
  }
  cr_assert_eq(rc, 0, "igpt run all failed: see the log above");
  const char *tables[] = {"linear-probe", "fine-tune", "low-data-cifar", "bert-comparison"};
  for (int t = 0; t < 4; t++) {
    char *p = xasprintf("%s/results/%s/smoke/results.json", dir, tables[t]);
    json_error_t e;
    json_t *r = json_load_file(p, 0, &e);
    cr_assert_not_null(r, "%s: %s", p, e.text);
    int runs = 0;
    size_t i; json_t *row;
    json_array_foreach(json_object_get(r, "rows"), i, row) {
      size_t k; json_t *run;
      json_array_foreach(json_object_get(row, "runs"), k, run) {
        cr_assert(json_is_number(json_object_get(run, "value")), "%s row %zu has a run without a value", p, i);
        double v = json_number_value(json_object_get(run, "value"));
        cr_assert(v >= 0 && v <= 100, "%s: accuracy %g outside [0, 100]", p, v);
        // a low-data row's runs are label subsets of the seed, said as such (not as seeds)
        if (t == 2) cr_assert(json_is_integer(json_object_get(run, "subset")), "%s row %zu: a run without its subset", p, i);
        runs++;
      }
    }
    cr_assert_gt(runs, 0, "%s: no row ran", p);
    json_decref(r);
    free(p);
  }
  {  // bert-comparison: the row one job stands in for twice keeps the protocol both share in its label,
     // and its note each part once; the gap claim finds its four rows and tests them
    char *p = xasprintf("%s/results/bert-comparison/smoke/results.json", dir);
    json_t *r = json_load_file(p, 0, NULL);
    size_t i; json_t *row;
    int merged = 0;
    json_array_foreach(json_object_get(r, "rows"), i, row) {
      if (json_array_size(json_object_get(row, "stands_in_for")) != 2) continue;
      merged++;
      const char *label = json_string_value(json_object_get(row, "label")), *note = json_string_value(json_object_get(row, "note"));
      cr_assert(label && strstr(label, "(CIFAR-10, BERT fine-tune)"), "label: %s", label);
      const char *once = note ? strstr(note, "fine-tuned for at most") : NULL;
      cr_assert(once && !strstr(once + 1, "fine-tuned for at most"), "note: %s", note);
    }
    cr_assert_eq(merged, 1, "one row stands in for the BERT fine-tune with and without ensembling");
    json_decref(r);
    free(p);
    p = xasprintf("%s/results/bert-comparison/smoke/report.json", dir);
    r = json_load_file(p, 0, NULL);
    json_t *c;
    const char *gap = NULL;
    json_array_foreach(json_object_get(r, "claims"), i, c)
      if (!strcmp(json_string_value(json_object_get(c, "id")), "finetune-closes-bert-gap"))
        gap = json_string_value(json_object_get(c, "verdict"));
    cr_assert(gap && strcmp(gap, "cannot-test"), "finetune-closes-bert-gap: %s", gap ? gap : "(absent)");
    json_decref(r);
    free(p);
  }
  {
    char *html = xasprintf("grep -q 'label subsets' %s/results/low-data-cifar/smoke/report.html", dir);
    cr_assert_eq(run_cmd(html), 0, "the low-data report does not say its runs are label subsets");
    free(html);
  }
  // the second run: everything cached, nothing started
  free(cmd);
  cmd = xasprintf("cd %s && IGPT_PLAIN=1 %s run all --suite %s --cache %s/cache --results %s/results 2> %s/run2.err", dir,
                  bin, dir, dir, dir, dir);
  double t0 = now_seconds();
  cr_assert_eq(run_cmd(cmd), 0);
  double secs = now_seconds() - t0;
  free(cmd);
  cmd = xasprintf("grep -c '^start' %s/run2.err >/dev/null", dir);
  cr_assert_neq(run_cmd(cmd), 0, "the rerun started jobs");  // grep -c exits 1 when it counts none
  cr_assert_lt(secs, 30, "the rerun took %.1f s", secs);
  free(cmd);
  rm_rf(dir);
  free(dir); free(bin);
}
