// probe: agreement with scikit-learn's lbfgs LogisticRegression on fixed synthetic features,
// low-data subsets (class-balanced, reproducible), BERT mask ensembling (the mode), the verb.
#include "testutil.h"
#include "probe_fixture.h"
#include "eval/logreg.h"
#include "eval/probe.h"
#include "base/safetensors.h"
#include <jansson.h>

#define SKLEARN_PY "/usr/bin/python3"

static int have_sklearn(void) {
  return run_cmd(SKLEARN_PY " -c 'import sklearn, numpy' >/dev/null 2>&1") == 0;
}

// Fits ours at C, runs tests/sklearn_logreg.py on the same features and compares.
static void agree_with_sklearn(double C) {
  if (!have_sklearn()) cr_skip_test("scikit-learn missing: apt-get install python3-sklearn");
  const int d = 32, k = 5;
  fixture_set tr = fixture_draw(21, 0, 3000, d, k, 0.25f);
  fixture_set te = fixture_draw(21, 1, 4000, d, k, 0.25f);
  logreg_data D = {.n = tr.n, .d = d, .k = k, .x = tr.x, .y = tr.y};
  logreg_data T = {.n = te.n, .d = d, .k = k, .x = te.x, .y = te.y};
  int64_t np = logreg_nparams(d, k);
  double *th = xcalloc(np, sizeof(double));
  logreg_opts o = logreg_defaults(C);
  logreg_result res;
  cr_assert_eq(logreg_fit(&D, &o, th, &res), 0, "%s", igpt_errmsg());
  double acc = logreg_accuracy(th, &T);

  char *dir = test_tmpdir("probe-sk");
  char *data = xasprintf("%s/data.safetensors", dir), *thp = xasprintf("%s/theta.safetensors", dir);
  st_writer *w = st_writer_new();
  st_writer_add(w, "x_train", ST_F32, 2, (int64_t[]){tr.n, d}, tr.x);
  st_writer_add(w, "y_train", ST_I32, 1, (int64_t[]){tr.n}, tr.y);
  st_writer_add(w, "x_test", ST_F32, 2, (int64_t[]){te.n, d}, te.x);
  st_writer_add(w, "y_test", ST_I32, 1, (int64_t[]){te.n}, te.y);
  cr_assert_eq(st_writer_save(w, data), 0, "%s", igpt_errmsg());
  st_writer_free(w);
  w = st_writer_new();
  st_writer_add(w, "theta", ST_F64, 1, (int64_t[]){np}, th);
  cr_assert_eq(st_writer_save(w, thp), 0, "%s", igpt_errmsg());
  st_writer_free(w);

  char *script = repo_path("tests/sklearn_logreg.py");
  char *out = xasprintf("%s/out.json", dir);
  char *cmd = xasprintf("OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 "
                        SKLEARN_PY " %s %s %.17g %s > %s", script, data, C, thp, out);
  cr_assert_eq(run_cmd(cmd), 0, "failed: %s", cmd);
  json_error_t je;
  json_t *j = json_load_file(out, 0, &je);
  cr_assert_not_null(j, "%s: %s", out, je.text);
  double sk_obj = json_real_value(json_object_get(j, "sk_objective"));
  double our_obj = json_real_value(json_object_get(j, "our_objective"));
  double sk_acc = json_real_value(json_object_get(j, "sk_test_acc"));
  double our_acc_py = json_real_value(json_object_get(j, "our_test_acc"));
  cr_log_info("C=%g: ours obj %.9g (self-reported %.9g, %d it, %s) acc %.4f; sklearn obj %.9g "
              "acc %.4f (%lld it)", C, our_obj, res.objective, res.iterations, res.stop, acc,
              sk_obj, sk_acc, (long long)json_integer_value(json_object_get(j, "sk_n_iter")));
  // The bar: objective within 1e-4 relative, test accuracy within 0.1 points.
  cr_assert_lt(fabs(our_obj - sk_obj) / fabs(sk_obj), 1e-4, "objective %.9g vs sklearn %.9g",
               our_obj, sk_obj);
  cr_assert_lt(fabs(acc - sk_acc), 0.001 + 1e-12, "test accuracy %.4f vs sklearn %.4f", acc, sk_acc);
  // Our float32 evaluation agrees with numpy's float64 one on our own solution.
  cr_assert_lt(fabs(res.objective - our_obj) / fabs(our_obj), 1e-6);
  cr_assert_lt(fabs(acc - our_acc_py), 0.001 + 1e-12);
  json_decref(j);
  rm_rf(dir);
  free(cmd); free(out); free(script); free(data); free(thp); free(dir); free(th);
  fixture_free(&tr);
  fixture_free(&te);
}

Test(probe, agrees_with_sklearn_strong_regularisation) { agree_with_sklearn(0.003); }
Test(probe, agrees_with_sklearn_weak_regularisation) { agree_with_sklearn(10.0); }

// ---------------------------------------------------------------- subsets and ensembling

Test(probe, subsets_are_balanced_and_reproducible) {
  fixture_set s = fixture_draw(3, 0, 500, 1, 4, 1);
  int64_t a[40], b[40], c[40];
  rng_t r;
  rng_seed_stream(&r, 42, 1);
  cr_assert_eq(balanced_subset(s.y, s.n, 4, 10, &r, a), 0, "%s", igpt_errmsg());
  rng_seed_stream(&r, 42, 1);
  cr_assert_eq(balanced_subset(s.y, s.n, 4, 10, &r, b), 0);
  rng_seed_stream(&r, 43, 1);
  cr_assert_eq(balanced_subset(s.y, s.n, 4, 10, &r, c), 0);
  cr_assert_eq(memcmp(a, b, sizeof a), 0, "same seed, different subset");
  cr_assert_neq(memcmp(a, c, sizeof a), 0, "another seed drew the same subset");
  int count[4] = {0};
  for (int i = 0; i < 40; i++) {
    cr_assert(a[i] >= 0 && a[i] < s.n);
    if (i) cr_assert_gt(a[i], a[i - 1], "rows repeat or are unsorted");
    count[s.y[a[i]]]++;
  }
  for (int k = 0; k < 4; k++) cr_assert_eq(count[k], 10, "class %d has %d rows", k, count[k]);
  int64_t big[4 * 200];
  cr_assert_eq(balanced_subset(s.y, s.n, 4, 200, &r, big), -1);
  cr_assert(strstr(igpt_errmsg(), "fewer than"), "%s", igpt_errmsg());
  fixture_free(&s);
}

Test(probe, ensembled_prediction_is_the_mode) {
  // 3 masks, 6 classes; rows with a clear mode, and 2-way and 3-way ties.
  enum { K = 3, N = 3000 };
  static int32_t pred[K * N], out[N], out2[N];
  rng_t g;
  rng_seed(&g, 5);
  for (int i = 0; i < K * N; i++) pred[i] = (int32_t)rng_below(&g, 6);
  rng_t r;
  rng_seed(&r, 77);
  ensemble_mode(pred, K, N, 6, &r, out);
  rng_seed(&r, 77);
  ensemble_mode(pred, K, N, 6, &r, out2);
  cr_assert_eq(memcmp(out, out2, sizeof out), 0, "ties not reproducible from the seed");
  int ties3 = 0, picked[3] = {0};
  for (int i = 0; i < N; i++) {
    int v[6] = {0}, top = 0;
    for (int m = 0; m < K; m++) top = ++v[pred[m * N + i]] > top ? v[pred[m * N + i]] : top;
    cr_assert_eq(v[out[i]], top, "row %d: %d is not a modal class", i, out[i]);
    if (top == 1) {  // all three differ: which of them was picked
      ties3++;
      for (int m = 0; m < K; m++) picked[m] += out[i] == pred[m * N + i];
    }
  }
  // ties broken uniformly: each mask's class picked about a third of the time (5 sigma bound)
  for (int m = 0; m < K; m++) {
    double p = (double)picked[m] / ties3, sd = sqrt(1.0 / 3 * 2.0 / 3 / ties3);
    cr_assert_lt(fabs(p - 1.0 / 3), 5 * sd, "mask %d picked %.3f of %d ties", m, p, ties3);
  }
}

Test(probe, ensembled_accuracy_uses_the_mode) {
  // 2 classes, d 1, theta: class 1 when x > 0. Three masks: mask votes decide per row.
  double th[4] = {-1, 1, 0, 0};
  float x[3 * 4] = {1, 1, -1, -1,   1, -1, -1, 1,   -1, 1, -1, 1};
  int32_t y[4] = {1, 1, 0, 1};
  // modes per row: (1,1,0)->1, (1,0,1)->1, (0,0,0)->0, (0,1,1)->1: all right
  cr_assert_float_eq(probe_accuracy(th, 1, 2, x, 3, 4, y, 0), 1.0, 1e-12);
  cr_assert_float_eq(probe_accuracy(th, 1, 2, x, 1, 4, y, 0), 0.75, 1e-12);  // mask 0 alone
}

// ---------------------------------------------------------------- the verb

// A features file of 3 layers over the same labels: layer 0 noise, 1 informative, 2 weakly so.
static void write_features(const char *path, uint64_t stream, int64_t n, int masks) {
  const int d = 8, k = 3;
  const float sep[3] = {0, 0.9f, 0.3f};
  fixture_set s[3];
  float *x[3];
  st_writer *w = st_writer_new();
  for (int l = 0; l < 3; l++) {
    s[l] = fixture_draw(9, stream, n, d, k, sep[l]);
    x[l] = xmalloc(sizeof(float) * masks * n * d);
    for (int m = 0; m < masks; m++) {  // masks: the same features with mask-specific noise
      rng_t r;
      rng_seed_stream(&r, 1000 + l, m);
      for (int64_t i = 0; i < n * d; i++) x[l][m * n * d + i] = s[l].x[i] + (m ? 0.5f * rng_normal(&r) : 0);
    }
    char name[32];
    snprintf(name, sizeof name, "layer_%d", l);
    if (masks > 1) st_writer_add(w, name, ST_F32, 3, (int64_t[]){masks, n, d}, x[l]);
    else st_writer_add(w, name, ST_F32, 2, (int64_t[]){n, d}, x[l]);
  }
  st_writer_add(w, "labels", ST_I32, 1, (int64_t[]){n}, s[0].y);
  cr_assert_eq(st_writer_save(w, path), 0, "%s", igpt_errmsg());
  st_writer_free(w);
  for (int l = 0; l < 3; l++) { fixture_free(&s[l]); free(x[l]); }
}

static json_t *run_probe(const char *dir, const char *extra) {
  char *bin = igpt_bin();
  char *cmd = xasprintf("%s probe --train %s/tr.st --val %s/va.st --test %s/te.st --json %s > %s/out.json "
                        "2>%s/err.txt", bin, dir, dir, dir, extra, dir, dir);
  int rc = run_cmd(cmd);
  char *out = xasprintf("%s/out.json", dir);
  cr_assert_eq(rc, 0, "%s exited %d", cmd, rc);
  json_error_t je;
  json_t *j = json_load_file(out, 0, &je);
  cr_assert_not_null(j, "%s: %s", out, je.text);
  free(bin); free(cmd); free(out);
  return j;
}

static char *make_files(int masks) {
  char *dir = test_tmpdir("probe-verb");
  char *p[3] = {xasprintf("%s/tr.st", dir), xasprintf("%s/va.st", dir), xasprintf("%s/te.st", dir)};
  write_features(p[0], 0, 900, 1);
  write_features(p[1], 1, 300, masks);
  write_features(p[2], 2, 600, masks);
  for (int i = 0; i < 3; i++) free(p[i]);
  return dir;
}

Test(probe, verb_picks_the_informative_layer_and_concatenates) {
  char *dir = make_files(1);
  json_t *j = run_probe(dir, "--concat 3");
  json_t *best = json_object_get(j, "best");
  cr_assert_eq(json_integer_value(json_object_get(best, "layer")), 1);
  double test = json_real_value(json_object_get(best, "test_acc"));
  cr_assert_gt(test, 0.6, "test accuracy %g (chance 1/3)", test);
  cr_assert(json_is_true(json_object_get(j, "standardized")));
  cr_assert(json_is_true(json_object_get(best, "refit")));
  cr_assert_not_null(json_object_get(best, "refit_fit"));
  json_t *layers = json_object_get(j, "layers");
  cr_assert_eq(json_array_size(layers), 3);
  double noise = json_real_value(json_object_get(json_array_get(layers, 0), "val_acc"));
  cr_assert_lt(noise, 0.45, "noise layer validation accuracy %g", noise);
  json_t *cat = json_object_get(j, "concat");
  cr_assert_eq(json_array_size(json_object_get(cat, "layers")), 3);
  cr_assert_gt(json_real_value(json_object_get(cat, "test_acc")), 0.6);
  cr_assert_gt(json_integer_value(json_object_get(j, "iterations")), 0);
  json_decref(j);
  rm_rf(dir);
  free(dir);
}

// --concat blocks is layers 1..L (the embedding, layer 0, left out); with --layers none it is the
// only probe, and its number is the one the full probe gives for the same layers (same sweep, same
// refit), so a baseline can skip the layer-by-layer sweep. --layers none without fixed layers is refused.
Test(probe, verb_probes_the_blocks_alone) {
  char *dir = make_files(1);
  json_t *full = run_probe(dir, "--concat 1..2"), *alone = run_probe(dir, "--layers none --concat blocks");
  json_t *cf = json_object_get(full, "concat"), *ca = json_object_get(alone, "concat");
  cr_assert(json_equal(json_object_get(ca, "layers"), json_pack("[i,i]", 1, 2)), "blocks = 1..L");
  cr_assert_eq(json_array_size(json_object_get(alone, "layers")), 0, "no layer probed alone");
  cr_assert_null(json_object_get(alone, "best"));
  cr_assert_float_eq(json_real_value(json_object_get(ca, "test_acc")), json_real_value(json_object_get(cf, "test_acc")), 1e-12);
  cr_assert_str_eq(json_string_value(json_object_get(ca, "test_correct")), json_string_value(json_object_get(cf, "test_correct")));
  json_decref(full);
  json_decref(alone);
  char *bin = igpt_bin();
  const char *bad[] = {"--layers none", "--layers none --concat 2", "--layers none --labels-per-class 5"};
  for (int i = 0; i < 3; i++) {
    char *cmd = xasprintf("%s probe --train %s/tr.st --val %s/va.st --test %s/te.st %s 2>%s/err.txt", bin, dir, dir, dir,
                          bad[i], dir);
    cr_assert_eq(run_cmd(cmd), 2, "%s", bad[i]);
    char *err = xasprintf("%s/err.txt", dir);
    uint8_t *msg = NULL;
    size_t len = 0;
    cr_assert_eq(file_read_all(err, &msg, &len), 0);
    msg = xrealloc(msg, len + 1);
    msg[len] = 0;
    cr_assert(strstr((char *)msg, "--layers none"), "%s: %s", bad[i], (char *)msg);
    free(msg); free(err); free(cmd);
  }
  free(bin);
  rm_rf(dir);
  free(dir);
}

Test(probe, verb_low_data_is_reproducible) {
  char *dir = make_files(1);
  json_t *a = run_probe(dir, "--labels-per-class 10 --subsets 3 --seed 4 --layers 1,2");
  json_t *b = run_probe(dir, "--labels-per-class 10 --subsets 3 --seed 4 --layers 1,2");
  json_t *la = json_object_get(a, "low_data"), *lb = json_object_get(b, "low_data");
  cr_assert_eq(json_array_size(json_object_get(la, "test_acc")), 3);
  cr_assert(json_equal(json_object_get(la, "test_acc"), json_object_get(lb, "test_acc")));
  double mean = json_real_value(json_object_get(la, "mean"));
  cr_assert_gt(mean, 0.45, "30 labels should beat chance (1/3): %g", mean);
  cr_assert_geq(json_real_value(json_object_get(la, "std")), 0);
  json_decref(a);
  json_decref(b);
  rm_rf(dir);
  free(dir);
}

Test(probe, verb_ensembles_masks_and_rejects_bad_input) {
  char *dir = make_files(3);
  json_t *j = run_probe(dir, "--layers 1 --C 0.1 --no-refit");
  cr_assert_eq(json_integer_value(json_object_get(json_object_get(j, "masks"), "test")), 3);
  cr_assert_gt(json_real_value(json_object_get(json_object_get(j, "best"), "test_acc")), 0.6);
  json_decref(j);
  char *bin = igpt_bin();
  char *cmd = xasprintf("%s probe --train %s/tr.st --val %s/va.st --test /nonexistent 2>/dev/null", bin, dir, dir);
  cr_assert_eq(run_cmd(cmd), 1);
  free(cmd);
  cmd = xasprintf("%s probe --train %s/tr.st --val %s/va.st --test %s/te.st --layers 7 2>/dev/null", bin, dir, dir, dir);
  cr_assert_eq(run_cmd(cmd), 2);
  free(cmd);
  cmd = xasprintf("%s probe --help >/dev/null", bin);
  cr_assert_eq(run_cmd(cmd), 0);
  free(cmd);
  free(bin);
  rm_rf(dir);
  free(dir);
}

// Malformed features files are refused with a message naming the file and the tensor.
Test(probe, rejects_malformed_features_files) {
  char *dir = test_tmpdir("probe-bad");
  char *p = xasprintf("%s/f.st", dir);
  float x[12] = {0};
  int32_t y[3] = {0, 1, -1}, y2[3] = {0, 1, 1};
  struct { const char *what, *expect; } cases[] = {
    {"no labels", "labels"}, {"negative label", "labels[2]"}, {"gap", "layer_1"},
    {"rows", "layer_0"}, {"dtype", "layer_0"}, {"masks", "masks"}, {"none", "no 'layer_"}};
  for (int c = 0; c < 7; c++) {
    st_writer *w = st_writer_new();
    switch (c) {
      case 0: st_writer_add(w, "layer_0", ST_F32, 2, (int64_t[]){3, 4}, x); break;
      case 1: st_writer_add(w, "layer_0", ST_F32, 2, (int64_t[]){3, 4}, x);
              st_writer_add(w, "labels", ST_I32, 1, (int64_t[]){3}, y); break;
      case 2: st_writer_add(w, "layer_0", ST_F32, 2, (int64_t[]){3, 4}, x);
              st_writer_add(w, "layer_2", ST_F32, 2, (int64_t[]){3, 4}, x);
              st_writer_add(w, "labels", ST_I32, 1, (int64_t[]){3}, y2); break;
      case 3: st_writer_add(w, "layer_0", ST_F32, 2, (int64_t[]){4, 3}, x);
              st_writer_add(w, "labels", ST_I32, 1, (int64_t[]){3}, y2); break;
      case 4: st_writer_add(w, "layer_0", ST_I32, 2, (int64_t[]){3, 4}, x);
              st_writer_add(w, "labels", ST_I32, 1, (int64_t[]){3}, y2); break;
      case 5: st_writer_add(w, "layer_0", ST_F32, 3, (int64_t[]){2, 3, 2}, x);
              st_writer_add(w, "layer_1", ST_F32, 2, (int64_t[]){3, 4}, x);
              st_writer_add(w, "labels", ST_I32, 1, (int64_t[]){3}, y2); break;
      case 6: st_writer_add(w, "labels", ST_I32, 1, (int64_t[]){3}, y2); break;
    }
    cr_assert_eq(st_writer_save(w, p), 0);
    st_writer_free(w);
    features_file ff;
    cr_assert_eq(features_open(&ff, p), -1, "%s accepted", cases[c].what);
    cr_assert(strstr(igpt_errmsg(), cases[c].expect) && strstr(igpt_errmsg(), p), "%s: %s", cases[c].what,
              igpt_errmsg());
  }
  rm_rf(dir);
  free(dir);
  free(p);
}

// ---------------------------------------------------------------- issue 15

// Rewrites the features file at path with one value of layer_<layer> (row `row`, column 2) set to v.
static void poison(const char *path, int layer, int64_t row, float v) {
  st_file f;
  cr_assert_eq(st_open(&f, path), 0, "%s", igpt_errmsg());
  st_writer *w = st_writer_new();
  void *copies[16];
  char name[32];
  snprintf(name, sizeof name, "layer_%d", layer);
  cr_assert_leq(f.n, 16);
  for (int i = 0; i < f.n; i++) {
    const st_tensor *t = &f.tensors[i];
    size_t bytes = st_numel(t) * st_dtype_size(t->dtype);
    copies[i] = xmalloc(bytes);
    memcpy(copies[i], t->data, bytes);
    if (!strcmp(t->name, name)) ((float *)copies[i])[row * t->shape[t->ndim - 1] + 2] = v;
    st_writer_add(w, t->name, t->dtype, t->ndim, t->shape, copies[i]);
  }
  st_close(&f);
  cr_assert_eq(st_writer_save(w, path), 0, "%s", igpt_errmsg());
  st_writer_free(w);
  for (int i = 0; i < f.n; i++) free(copies[i]);
}

// Runs the probe on dir's files with extra flags; exit status, stderr in *err (caller frees).
static int probe_status(const char *dir, const char *extra, char **err) {
  char *bin = igpt_bin();
  char *cmd = xasprintf("%s probe --train %s/tr.st --val %s/va.st --test %s/te.st --json %s > %s/out.json 2>%s/err.txt",
                        bin, dir, dir, dir, extra, dir, dir);
  int rc = run_cmd(cmd);
  char *ep = xasprintf("%s/err.txt", dir);
  uint8_t *buf;
  size_t n;
  cr_assert_eq(file_read_all(ep, &buf, &n), 0);
  *err = (char *)buf;
  free(bin); free(cmd); free(ep);
  return rc;
}

// A NaN or inf feature in any split is refused, naming the split, the layer and the row: it used
// to be refused in the fit set only, while NaN validation or test features got an accuracy.
Test(probe, verb_refuses_nonfinite_features_in_every_split) {
  const char *files[3] = {"tr.st", "va.st", "te.st"}, *splits[3] = {"train", "val", "test"};
  for (int s = 0; s < 3; s++) {
    char *dir = make_files(1), *p = xasprintf("%s/%s", dir, files[s]), *err;
    poison(p, 1, 7, s == 1 ? INFINITY : NAN);
    cr_assert_eq(probe_status(dir, "--layers 0,1 --C 0.1", &err), 1, "%s split: %s", splits[s], err);
    char *want = xasprintf("%s features %s: layer_1 row 7", splits[s], p);
    cr_assert(strstr(err, want), "no '%s' in: %s", want, err);
    free(want); free(err); free(p);
    rm_rf(dir);
    free(dir);
  }
}

// A fit that stops at --max-iter says so on stderr with its layer and C.
Test(probe, verb_says_when_a_fit_stops_at_the_iteration_cap) {
  char *dir = make_files(1), *err;
  cr_assert_eq(probe_status(dir, "--layers 1 --C 0.5 --max-iter 2", &err), 0, "%s", err);
  cr_assert(strstr(err, "layer 1, C=0.5: the fit stopped at the iteration cap (--max-iter 2)"), "%s", err);
  cr_assert(strstr(err, "refit of layer 1 on train+val, C=0.5"), "%s", err);
  free(err);
  rm_rf(dir);
  free(dir);
}

// Every C the sweep fits lies in [--c-min, --c-max]: the refinement around a best at the edge used
// to step past it (C of 178, 316 and 562 with --c-max 100).
Test(probe, sweep_stays_inside_c_min_and_c_max) {
  char *dir = make_files(1);
  const char *ranges[3][2] = {{"1e-3", "1e-2"}, {"0.3", "30"}, {"2", "5"}};
  for (int r = 0; r < 3; r++) {
    char *extra = xasprintf("--layers 1,2 --c-min %s --c-max %s", ranges[r][0], ranges[r][1]);
    json_t *j = run_probe(dir, extra);
    double lo = atof(ranges[r][0]), hi = atof(ranges[r][1]);
    size_t i, k; json_t *layer, *fit;
    int fits = 0;
    json_array_foreach(json_object_get(j, "layers"), i, layer)
      json_array_foreach(json_object_get(layer, "sweep"), k, fit) {
        double C = json_real_value(json_object_get(fit, "C"));
        cr_assert(C >= lo * (1 - 1e-9) && C <= hi * (1 + 1e-9), "%s: fitted C=%g", extra, C);
        fits++;
      }
    cr_assert_geq(fits, 2 * 2, "%s: %d fits over 2 layers", extra, fits);
    if (r == 2) {  // no decade inside [2, 5]: both ends are fitted
      json_t *sw = json_object_get(json_array_get(json_object_get(j, "layers"), 0), "sweep");
      cr_assert_float_eq(json_real_value(json_object_get(json_array_get(sw, 0), "C")), 2, 1e-12);
      cr_assert_float_eq(json_real_value(json_object_get(json_array_get(sw, 1), "C")), 5, 1e-12);
    }
    json_decref(j);
    free(extra);
  }
  rm_rf(dir);
  free(dir);
}
