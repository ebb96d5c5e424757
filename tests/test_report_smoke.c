// The smoke linear-probe table end to end, then its report read as a user would: no two rows from
// one job, the banner names the data set that ran (and no data set that did not), every probe row
// has its raw-pixel and untrained baselines with numbers, every claim row has a verdict, the rows
// the scale does not run are listed once and are not failures. Once with Fashion-MNIST (Debian's
// dataset-fashion-mnist; skipped when absent) and once with it absent (the registry's mirrors
// moved to an empty directory), when the synthetic stand-in must be named. The suite is the
// repository's with the smoke scale shrunk so a run takes seconds (3 seeds, checkpoints kept at
// steps 0, 2, 4 for the 'lower loss, better probe' claim).
#include "testutil.h"
#include <jansson.h>

// dir/registry.json: the real registry, Fashion-MNIST's mirrors moved into an empty directory.
static char *registry_without_fmnist(const char *dir) {
  char *src = repo_path("datasets/registry.json");
  json_error_t e;
  json_t *root = json_load_file(src, 0, &e);
  cr_assert_not_null(root, "%s: %s", src, e.text);
  json_t *fm = json_object_get(json_object_get(root, "datasets"), "fashion-mnist");
  size_t i; json_t *f;
  json_array_foreach(json_object_get(fm, "files"), i, f) {
    char *url = xasprintf("file://%s/absent/%s", dir, json_string_value(json_object_get(f, "name")));
    json_object_set_new(f, "mirrors", json_pack("[s]", url));
    free(url);
  }
  char *out = xasprintf("%s/registry.json", dir);
  cr_assert_eq(json_dump_file(root, out, JSON_INDENT(1)), 0);
  json_decref(root);
  free(src);
  return out;
}

static const char *str(const json_t *o, const char *k) { return json_string_value(json_object_get(o, k)); }

// Runs the table and checks its report; want is the data set that must run, title its name.
static void run_and_check(const char *tag, const char *registry, const char *want, const char *title) {
  char *dir = test_tmpdir(tag), *suite = xasprintf("%s/suite", dir), *bin = igpt_bin();
  shrunk_smoke_suite(suite, 200, 100, 4, 2, 3);  // 3 seeds: the claims take the paired-t path
  char *cmd = xasprintf("cd %s && %s%s IGPT_PLAIN=1 OMP_NUM_THREADS=1 %s run linear-probe --scale smoke --suite %s "
                        "--cache %s/cache --results %s/results --jobs 2 2> %s/run.err || { tail -n 30 %s/run.err; exit 1; }",
                        dir, registry ? "IGPT_REGISTRY=" : "", registry ? registry : "", bin, suite, dir, dir, dir, dir);
  cr_assert_eq(run_cmd(cmd), 0, "igpt run linear-probe failed (log above)");
  char *rp = xasprintf("%s/results/linear-probe/smoke/report.json", dir);
  json_error_t e;
  json_t *rep = json_load_file(rp, 0, &e);
  cr_assert_not_null(rep, "%s: %s", rp, e.text);

  // the banner: what ran, generated; nothing of the paper's data sets
  const char *banner = str(json_object_get(rep, "scale"), "meaning");
  cr_assert(banner && strstr(banner, title), "the banner does not name %s: %s", title, banner);
  cr_assert(!strstr(banner, "CIFAR") && !strstr(banner, "STL"), "the banner names a data set that did not run: %s", banner);

  // rows: what ran, one per job set; each probe row with both baselines, numbers in all
  json_t *rows = json_object_get(rep, "rows"), *row;
  cr_assert_eq(json_array_size(rows), 1, "one data set x one model ran: expected 1 row, found %zu", json_array_size(rows));
  json_t *seen = json_object();
  size_t i, k;
  json_array_foreach(rows, i, row) {
    json_t *key;
    json_array_foreach(json_object_get(row, "jobs"), k, key) {
      cr_assert_null(json_object_get(seen, json_string_value(key)), "rows %s and another come from one job %s", str(row, "id"),
                     json_string_value(key));
      json_object_set_new(seen, json_string_value(key), json_true());
    }
    cr_assert_str_eq(str(row, "dataset"), want);
    cr_assert(json_is_number(json_object_get(json_object_get(row, "ours"), "mean")), "row %s has no number", str(row, "id"));
    cr_assert(json_is_null(json_object_get(row, "published")), "a stand-in row is compared with a published number");
    const char *note = str(row, "note");
    cr_assert(note && strstr(note, "standing in for CIFAR-10, CIFAR-100 and STL-10"), "note: %s", note);
    const char *bl[] = {"pixels", "untrained"};
    for (int b = 0; b < 2; b++) {
      json_t *x = json_object_get(json_object_get(row, "baselines"), bl[b]);
      cr_assert(json_is_number(json_object_get(x, "mean")) && json_is_number(json_object_get(x, "gain")),
                "row %s: the %s baseline has no number", str(row, "id"), bl[b]);
    }
    cr_assert_str_neq(str(row, "verdict"), "no-result");
  }
  json_decref(seen);

  // the rows not run: once each, with a reason, none among the rows
  json_t *nr = json_object_get(rep, "not_run"), *x;
  cr_assert_eq(json_array_size(nr), 6, "the six ImageNet rows are not run at smoke (found %zu)", json_array_size(nr));
  json_array_foreach(nr, i, x) cr_assert(str(x, "reason") && *str(x, "reason"));

  // claims: every row has a verdict
  json_t *claims = json_object_get(rep, "claims"), *c;
  cr_assert_geq(json_array_size(claims), 4, "the linear-probe table lists at least four claims");
  const char *verdicts[] = {"holds", "does-not-hold", "inconclusive", "cannot-test"};
  json_array_foreach(claims, i, c) {
    const char *v = str(c, "verdict");
    bool ok = false;
    for (int q = 0; q < 4; q++) ok |= v && !strcmp(v, verdicts[q]);
    cr_assert(ok, "claim %s has verdict '%s'", str(c, "id"), v ? v : "(none)");
    cr_assert(str(c, "evidence") && *str(c, "evidence"), "claim %s gives no evidence", str(c, "id"));
  }
  // the kept checkpoints were probed: the loss-and-probe claim has its points, each with the test
  // loss its features pass measured (a point without one is left out of the evidence)
  json_array_foreach(claims, i, c)
    if (!strcmp(str(c, "id"), "lower-loss-better-probe"))
      for (int step = 0; step <= 4; step += 2) {
        char want[32];
        snprintf(want, sizeof want, "step %d: loss", step);
        cr_assert(strstr(str(c, "evidence"), want), "no checkpoint point '%s': %s", want, str(c, "evidence"));
      }
  // the page shows them
  char *hp = xasprintf("%s/results/linear-probe/smoke/report.html", dir);
  uint8_t *html;
  size_t len;
  cr_assert_eq(file_read_all(hp, &html, &len), 0);
  cr_assert(memmem(html, len, "The paper's claims", 18) && memmem(html, len, "Not run at this scale", 21));
  free(html);
  json_decref(rep);
  rm_rf(dir);
  free(hp); free(rp); free(cmd); free(bin); free(suite); free(dir);
}

Test(report_smoke, fashion_mnist_report_says_what_ran, .timeout = 300) {
  if (!path_exists("/usr/share/fashion-mnist") && run_cmd("dpkg -s dataset-fashion-mnist >/dev/null 2>&1"))
    cr_skip_test("Debian's dataset-fashion-mnist is not installed (make test-deps)");
  run_and_check("rsmoke-fm", NULL, "fashion-mnist", "Fashion-MNIST 16x16");
}

Test(report_smoke, synthetic_stand_in_is_named_when_fashion_mnist_is_absent, .timeout = 300) {
  char *dir = test_tmpdir("rsmoke-reg");
  char *reg = registry_without_fmnist(dir);
  run_and_check("rsmoke-syn", reg, "synthetic", "the embedded synthetic set");
  rm_rf(dir);
  free(reg); free(dir);
}
