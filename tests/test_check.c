// check: `igpt check` against baselines and published numbers. No baseline says so and passes;
// a baseline update needs a reason and validates; a result moved past tolerance in the worse
// direction fails (exit 1), one moved inside passes, one moved past it in the better direction
// passes and says the baseline may move; the published numbers judge only judged scales.
#include "testutil.h"
#include <jansson.h>

typedef struct { char *dir, *results, *base, *out; } env_t;

static json_t *fixture(void) {
  char *p = repo_path("tests/fixtures/reports/linear-probe-smoke/results.json");
  json_error_t e;
  json_t *r = json_load_file(p, 0, &e);
  cr_assert_not_null(r, "%s", e.text);
  free(p);
  return r;
}

// Writes the fixture with every run of every row set to base + row index + delta.
static void write_shifted(env_t *t, const char *scale, double delta) {
  json_t *res = fixture();
  json_object_set_new(res, "scale", json_string(scale));
  json_t *row, *run;
  size_t i, j;
  json_array_foreach(json_object_get(res, "rows"), i, row) {
    json_object_set_new(json_object_get(row, "published"), "value", json_real(50.0 + i));
    json_array_foreach(json_object_get(row, "runs"), j, run)
      json_object_set_new(run, "value", json_real(50.0 + i + delta + 0.1 * (double)j));  // std 0.1
  }
  char *d = xasprintf("%s/linear-probe/%s", t->results, scale);
  cr_assert_eq(mkdir_p(d), 0);
  char *p = xasprintf("%s/results.json", d);
  cr_assert_eq(json_dump_file(res, p, 0), 0);
  free(p); free(d);
  json_decref(res);
}

static int igpt_check(env_t *t, const char *args) {
  char *bin = igpt_bin();
  char *cmd = xasprintf("'%s' check --results '%s' --baselines '%s' %s >'%s' 2>&1", bin, t->results,
                        t->base, args, t->out);
  int rc = run_cmd(cmd);
  free(cmd); free(bin);
  return rc;
}

static bool output_has(env_t *t, const char *s) {
  uint8_t *d;
  size_t n;
  cr_assert_eq(file_read_all(t->out, &d, &n), 0);
  d = xrealloc(d, n + 1);
  d[n] = 0;
  bool found = strstr((char *)d, s) != NULL;
  if (!found) fprintf(stderr, "---- output without '%s':\n%s----\n", s, (char *)d);
  free(d);
  return found;
}

static env_t setup(void) {
  env_t t;
  t.dir = test_tmpdir("check");
  t.results = xasprintf("%s/results", t.dir);
  t.base = xasprintf("%s/baselines", t.dir);
  t.out = xasprintf("%s/out.txt", t.dir);
  return t;
}

static void teardown(env_t *t) {
  rm_rf(t->dir);
  free(t->dir); free(t->results); free(t->base); free(t->out);
}

Test(check, no_baseline_says_so) {
  env_t t = setup();
  write_shifted(&t, "smoke", 0);
  cr_assert_eq(igpt_check(&t, "--against baseline"), 0);
  cr_assert(output_has(&t, "no baseline"));
  teardown(&t);
}

Test(check, update_needs_reason_and_validates) {
  env_t t = setup();
  write_shifted(&t, "smoke", 0);
  cr_assert_eq(igpt_check(&t, "--update-baseline"), 2, "an update without a reason must be a usage error");
  cr_assert_eq(igpt_check(&t, "--update-baseline --reason 'reference run <1>' --rule absolute:1"), 0);
  char *bp = xasprintf("%s/smoke.json", t.base);
  json_error_t e;
  json_t *b = json_load_file(bp, 0, &e);
  cr_assert_not_null(b, "%s", e.text);
  json_t *h = json_array_get(json_object_get(b, "history"), 0);
  cr_assert_str_eq(json_string_value(json_object_get(h, "reason")), "reference run <1>");
  json_t *e0 = json_object_get(json_object_get(json_object_get(b, "tables"), "linear-probe"), "cifar10");
  cr_assert_float_eq(json_number_value(json_object_get(e0, "mean")), 50.1, 1e-9);  // 50, 50.1, 50.2
  cr_assert_float_eq(json_number_value(json_object_get(e0, "std")), 0.1, 1e-9);
  json_decref(b);
  if (run_cmd("/usr/bin/python3 -c 'import jsonschema' >/dev/null 2>&1") == 0) {
    char *py = repo_path("ci/validate-json.py"), *sc = repo_path("reports/baseline.schema.json");
    char *cmd = xasprintf("/usr/bin/python3 '%s' '%s' '%s' >/dev/null", py, sc, bp);
    cr_assert_eq(run_cmd(cmd), 0, "the baseline written does not validate");
    free(cmd); free(py); free(sc);
  }
  free(bp);
  teardown(&t);
}

Test(check, tolerance_is_direction_aware) {
  env_t t = setup();
  write_shifted(&t, "smoke", 0);
  cr_assert_eq(igpt_check(&t, "--update-baseline --reason reference --rule absolute:1"), 0);
  write_shifted(&t, "smoke", -0.9);  // worse, inside ±1
  cr_assert_eq(igpt_check(&t, "--against baseline"), 0);
  cr_assert(output_has(&t, "pass"));
  write_shifted(&t, "smoke", -1.2);  // worse, beyond ±1
  cr_assert_eq(igpt_check(&t, "--against baseline"), 1, "a regression must exit 1");
  cr_assert(output_has(&t, "REGRESSION"));
  write_shifted(&t, "smoke", +1.2);  // better, beyond ±1
  cr_assert_eq(igpt_check(&t, "--against baseline"), 0);
  cr_assert(output_has(&t, "baseline may move"));
  teardown(&t);
}

Test(check, published_judged_only_at_judged_scales) {
  env_t t = setup();
  write_shifted(&t, "smoke", -30);  // far below the published values, but smoke
  cr_assert_eq(igpt_check(&t, "--scale smoke --against published"), 0);
  cr_assert(output_has(&t, "not-judged"));
  write_shifted(&t, "paper", -30);  // the fixture's rule: absolute ±1
  cr_assert_eq(igpt_check(&t, "--scale paper --against published"), 1);
  write_shifted(&t, "paper", -0.5);
  cr_assert_eq(igpt_check(&t, "--scale paper --against published"), 0);
  teardown(&t);
}

Test(check, missing_results_is_an_error) {
  env_t t = setup();
  cr_assert_eq(igpt_check(&t, ""), 1);
  cr_assert(output_has(&t, "no results for scale smoke"));
  teardown(&t);
}

// Sets every row's "dataset" (the data set that ran) in the results written for scale.
static void set_dataset(env_t *t, const char *scale, const char *ds) {
  char *p = xasprintf("%s/linear-probe/%s/results.json", t->results, scale);
  json_error_t e;
  json_t *res = json_load_file(p, 0, &e);
  cr_assert_not_null(res, "%s", e.text);
  size_t i; json_t *row;
  json_array_foreach(json_object_get(res, "rows"), i, row) json_object_set_new(row, "dataset", json_string(ds));
  cr_assert_eq(json_dump_file(res, p, 0), 0);
  json_decref(res);
  free(p);
}

// A baseline remembers the data set each row ran on; results from a stand-in data set (the
// smoke scale's synthetic fallback) are not judged against it, whatever their value, and say why.
Test(check, baseline_on_other_data_is_not_judged) {
  env_t t = setup();
  write_shifted(&t, "smoke", 0);
  set_dataset(&t, "smoke", "fashion-mnist");
  cr_assert_eq(igpt_check(&t, "--update-baseline --reason reference --rule absolute:1"), 0);
  write_shifted(&t, "smoke", -30);  // far worse, but on other data
  set_dataset(&t, "smoke", "synthetic");
  cr_assert_eq(igpt_check(&t, "--against baseline"), 0, "results on other data must not fail the check");
  cr_assert(output_has(&t, "not comparable: the baseline ran on fashion-mnist, these results on synthetic"));
  set_dataset(&t, "smoke", "fashion-mnist");  // the same data: judged again
  cr_assert_eq(igpt_check(&t, "--against baseline"), 1);
  cr_assert(output_has(&t, "REGRESSION"));
  teardown(&t);
}

// --rule given with --update-baseline replaces a row's rule; without it the row keeps its own.
Test(check, explicit_rule_replaces_the_rows_rule) {
  env_t t = setup();
  write_shifted(&t, "smoke", 0);
  cr_assert_eq(igpt_check(&t, "--update-baseline --reason first --rule absolute:1"), 0);
  cr_assert_eq(igpt_check(&t, "--update-baseline --reason kept"), 0);
  write_shifted(&t, "smoke", -2);
  cr_assert_eq(igpt_check(&t, "--against baseline"), 1, "absolute:1 kept: -2 is a regression");
  write_shifted(&t, "smoke", 0);
  cr_assert_eq(igpt_check(&t, "--update-baseline --reason wider --rule absolute:3"), 0);
  write_shifted(&t, "smoke", -2);
  cr_assert_eq(igpt_check(&t, "--against baseline"), 0, "absolute:3 replaced it: -2 passes");
  teardown(&t);
}
