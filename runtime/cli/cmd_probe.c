// igpt probe: the linear probe (probe.h) from features files to the paper's numbers.
#include "cli/cli.h"
#include "eval/probe.h"
#include "base/outcomes.h"
#include "base/util.h"
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *VERB = "probe";

static void usage(FILE *out) {
  fprintf(out,
    "usage: igpt probe --train F --val F --test F [options]\n"
    "Linear probe: multinomial logistic regression (L2, L-BFGS; scikit-learn's C convention:\n"
    "minimise 1/2|W|^2 + C*sum(loss), bias not penalised) on features files (layer_<l> F32 [N,d],\n"
    "labels I32 [N]). Per layer a log-spaced C sweep on validation (decades upward with warm starts,\n"
    "stopped after the validation accuracy falls twice, refined by half and quarter decades around\n"
    "the best); the best layer and C by validation accuracy (a tie goes to the lowest layer); refit\n"
    "on train+val; accuracy on test.\n\n"
    "  --train F, --val F, --test F  features files (same layers and widths)\n"
    "  --layers all|none|l,m,...     layers to probe one by one (default all; none: only the\n"
    "                                 --concat layers, given as a..b or blocks)\n"
    "  --concat K | a..b | blocks     also probe a concatenation: K layers centred on the best\n"
    "                                 (the paper: 5), the layers a..b, or every block's output\n"
    "                                 (layers 1..L: all but the embedding, layer 0)\n"
    "  --C c                          fit at this C only (no sweep)\n"
    "  --c-min c, --c-max c           the sweep's bounds (default 1e-5 .. 1e2): the decades between\n"
    "                                 them, refined inside them\n"
    "  --Cs c1,c2,...                 fit exactly these C values (ascending, each warm-started\n"
    "                                 from the previous), no refinement\n"
    "  --max-iter N                   L-BFGS iterations per fit (default 1000)\n"
    "  --no-refit                     keep the train-only fit for test (comparisons)\n"
    "  --standardize | --no-standardize  features standardised per column with the fit set's\n"
    "                                 mean and std (default: standardised)\n"
    "  --labels-per-class N           low-data: fit on S class-balanced subsets of N labels per\n"
    "  --subsets S  --seed S          class of train (default 5 subsets, seed 0); layer and C on\n"
    "                                 validation, no refit; mean and std (n-1) of test accuracy\n"
    "  --json                         results as JSON on stdout: per layer its validation and test\n"
    "                                 accuracy (each layer refit at its own C; the test side is\n"
    "                                 measured after the choice, never used for it) and each test\n"
    "                                 image's outcome as hex (test_correct) for paired tests\n"
    "  -v, --verbose                  every fit of the sweep on stderr\n"
    "BERT features with K masks ([K,N,d]) are fitted on mask 0 and scored by the modal prediction\n"
    "over the K masks, ties broken at random from --seed.\n");
}

typedef struct {
  features_file tr, va, te;
  int k;                 // classes
  int standardize, refit;
  sweep_opts so;
  uint64_t seed;
} probe_ctx;

// Data of a set of layers on the rows given (NULL: all), standardised with stats fitted on the
// first set (fit) and applied to the others.
typedef struct { float *x; int64_t n; int K; int d; } mat;

static mat gather(const features_file *ff, const int *ls, int nl, int first_only, const int64_t *rows,
                  int64_t nrows) {
  mat m;
  m.x = features_gather(ff, ls, nl, first_only, rows, nrows, &m.d);
  m.n = rows ? nrows : ff->n;
  m.K = first_only ? 1 : ff->masks;
  return m;
}

static void standardize_pair(int on, mat *fit, mat *others[], int nothers) {
  if (!on) return;
  double *mu = xmalloc(sizeof(double) * fit->d), *sd = xmalloc(sizeof(double) * fit->d);
  standardize_fit(fit->x, fit->n, fit->d, mu, sd);
  standardize_apply(fit->x, fit->n * fit->K, fit->d, mu, sd);
  for (int i = 0; i < nothers; i++)
    standardize_apply(others[i]->x, others[i]->n * others[i]->K, others[i]->d, mu, sd);
  free(mu);
  free(sd);
}

static json_t *sweep_json(const sweep_result *sr) {
  json_t *a = json_array();
  for (int i = 0; i < sr->n_fits; i++) {
    const probe_fit *f = &sr->fits[i];
    json_array_append_new(a, json_pack("{s:f,s:f,s:f,s:i,s:i,s:f,s:s}", "C", f->C, "val_acc", f->val_acc,
                                       "objective", f->objective, "iterations", f->iterations,
                                       "evaluations", f->evaluations, "seconds", f->seconds, "stop", f->stop));
  }
  return a;
}

// A fit stopped by --max-iter is not converged: say so on stderr (the JSON's "stop" says it too).
static void warn_capped(const char *what, double C, const char *stop, int max_iter) {
  if (stop && !strcmp(stop, "max_iter"))
    log_warn("probe: %s, C=%.3g: the fit stopped at the iteration cap (--max-iter %d) before converging; "
             "raise --max-iter", what, C, max_iter);
}

static void warn_capped_sweep(const sweep_result *sr, const int *ls, int nl, int max_iter) {
  char what[64];
  if (nl == 1) snprintf(what, sizeof what, "layer %d", ls[0]);
  else snprintf(what, sizeof what, "layers %d..%d", ls[0], ls[nl - 1]);
  for (int i = 0; i < sr->n_fits; i++) warn_capped(what, sr->fits[i].C, sr->fits[i].stop, max_iter);
}

// Sweeps one set of layers: train rows (NULL = all) against val. Fills sr.
static int sweep_layers(probe_ctx *c, const int *ls, int nl, const int64_t *rows, int64_t nrows,
                        sweep_result *sr) {
  mat tr = gather(&c->tr, ls, nl, 1, rows, nrows);
  mat va = gather(&c->va, ls, nl, 0, NULL, 0);
  mat *o[] = {&va};
  standardize_pair(c->standardize, &tr, o, 1);
  const int32_t *y = c->tr.labels;
  int32_t *ysub = NULL;
  if (rows) {
    ysub = xmalloc(sizeof(int32_t) * nrows);
    for (int64_t i = 0; i < nrows; i++) ysub[i] = c->tr.labels[rows[i]];
    y = ysub;
  }
  logreg_data D = {.n = tr.n, .d = tr.d, .k = c->k, .x = tr.x, .y = y};
  int rc = probe_sweep(&D, va.x, va.K, va.n, c->va.labels, &c->so, sr);
  if (!rc) warn_capped_sweep(sr, ls, nl, c->so.max_iter);
  free(tr.x); free(va.x); free(ysub);
  return rc;
}

// Test accuracy at C for a set of layers: refit on train+val (warm start theta), or the train fit.
static int test_layers(probe_ctx *c, const int *ls, int nl, const int64_t *rows, int64_t nrows,
                       double C, const double *theta, int refit, json_t *out) {
  mat te = gather(&c->te, ls, nl, 0, NULL, 0);
  int64_t np = logreg_nparams(te.d, c->k);
  double *th = xmalloc(sizeof(double) * np);
  memcpy(th, theta, sizeof(double) * np);
  int rc = 0;
  if (refit) {
    mat tr = gather(&c->tr, ls, nl, 1, rows, nrows);
    mat va = gather(&c->va, ls, nl, 1, NULL, 0);
    mat tv = {xmalloc(sizeof(float) * (tr.n + va.n) * tr.d), tr.n + va.n, 1, tr.d};
    memcpy(tv.x, tr.x, sizeof(float) * tr.n * tr.d);
    memcpy(tv.x + tr.n * tr.d, va.x, sizeof(float) * va.n * va.d);
    free(tr.x); free(va.x);
    int32_t *y = xmalloc(sizeof(int32_t) * tv.n);
    for (int64_t i = 0; i < tr.n; i++) y[i] = c->tr.labels[rows ? rows[i] : i];
    memcpy(y + tr.n, c->va.labels, sizeof(int32_t) * va.n);
    mat *o[] = {&te};
    standardize_pair(c->standardize, &tv, o, 1);
    logreg_data D = {.n = tv.n, .d = tv.d, .k = c->k, .x = tv.x, .y = y};
    logreg_opts lo = logreg_defaults(C);
    lo.max_iter = c->so.max_iter;
    logreg_result lr;
    rc = logreg_fit(&D, &lo, th, &lr);
    if (!rc) {
      char what[64];
      if (nl == 1) snprintf(what, sizeof what, "refit of layer %d on train+val", ls[0]);
      else snprintf(what, sizeof what, "refit of layers %d..%d on train+val", ls[0], ls[nl - 1]);
      warn_capped(what, C, lr.stop, lo.max_iter);
    }
    if (!rc)
      json_object_set_new(out, "refit_fit", json_pack("{s:i,s:f,s:f,s:s,s:I}", "iterations", lr.iterations,
                                                  "seconds", lr.seconds, "objective", lr.objective,
                                                  "stop", lr.stop, "n", (json_int_t)tv.n));
    free(tv.x); free(y);
  } else {
    mat tr = gather(&c->tr, ls, nl, 1, rows, nrows);
    mat *o[] = {&te};
    standardize_pair(c->standardize, &tr, o, 1);
    free(tr.x);
  }
  if (!rc) {  // the accuracy and each test image's outcome (for paired tests between probes)
    uint8_t *right = xmalloc((size_t)te.n);
    char *hex = xmalloc((size_t)(te.n + 3) / 4 + 1);
    double acc = probe_correct(th, te.d, c->k, te.x, te.K, te.n, c->te.labels, c->seed, right);
    correct_hex(right, te.n, hex);
    json_object_set_new(out, "test_acc", json_real(acc));
    json_object_set_new(out, "test_correct", json_string(hex));
    free(right);
    free(hex);
  }
  free(te.x); free(th);
  return rc;
}

static int parse_layers(const char *s, int n_layers, int **out, int *n) {
  *n = 0;
  *out = xmalloc(sizeof(int) * n_layers);
  if (!strcmp(s, "all")) {
    for (int l = 0; l < n_layers; l++) (*out)[(*n)++] = l;
    return 0;
  }
  if (!strcmp(s, "none")) return 0;  // the concatenation alone (checked by the caller)
  char *dup = xstrdup(s), *save = NULL;
  for (char *t = strtok_r(dup, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
    char *end;
    long l = strtol(t, &end, 10);
    if (*end || end == t || l < 0 || l >= n_layers || *n >= n_layers) {
      igpt_err("--layers: '%s' is not a layer in 0..%d", t, n_layers - 1);
      free(dup);
      return -1;
    }
    (*out)[(*n)++] = (int)l;
  }
  free(dup);
  return *n ? 0 : igpt_err("--layers: empty list");
}

static int check_compatible(probe_ctx *c, const char *const paths[3]) {
  features_file *f[3] = {&c->tr, &c->va, &c->te};
  for (int i = 1; i < 3; i++) {
    if (f[i]->n_layers != f[0]->n_layers)
      return igpt_err("%s has %d layers, %s has %d", paths[i], f[i]->n_layers, paths[0], f[0]->n_layers);
    for (int l = 0; l < f[0]->n_layers; l++)
      if (f[i]->dims[l] != f[0]->dims[l])
        return igpt_err("%s: layer_%d has width %d, %s has %d", paths[i], l, f[i]->dims[l], paths[0],
                        f[0]->dims[l]);
  }
  c->k = 0;
  for (int64_t i = 0; i < c->tr.n; i++)
    if (c->tr.labels[i] + 1 > c->k) c->k = c->tr.labels[i] + 1;
  if (c->k < 2) return igpt_err("%s: labels hold a single class; nothing to probe", paths[0]);
  for (int i = 1; i < 3; i++)
    for (int64_t r = 0; r < f[i]->n; r++)
      if (f[i]->labels[r] >= c->k)
        return igpt_err("%s: labels[%lld] = %d, but %s has only classes 0..%d", paths[i], (long long)r,
                        f[i]->labels[r], paths[0], c->k - 1);
  return 0;
}

// Probes every layer asked on the rows given; the best layer's index into ls, and each layer's
// result into layers_json (may be NULL). Fills best (owned theta).
static int probe_each_layer(probe_ctx *c, const int *ls, int nl, const int64_t *rows, int64_t nrows,
                            json_t *layers_json, int *best_i, sweep_result *best, int *iters) {
  *best_i = -1;
  for (int i = 0; i < nl; i++) {
    sweep_result sr;
    if (sweep_layers(c, &ls[i], 1, rows, nrows, &sr)) return igpt_err_prefix("layer %d", ls[i]);
    *iters += sr.iterations;
    log_info("probe: layer %2d (%d/%d): val %.4f at C=%.3g  (%d fits, %d it, %.1f s)", ls[i], i + 1,
             nl, sr.best_val_acc, sr.best_C, sr.n_fits, sr.iterations, sr.seconds);
    if (layers_json) {
      json_t *lj = json_pack("{s:i,s:i,s:f,s:f,s:i,s:f,s:o}", "layer", ls[i], "d", c->tr.dims[ls[i]], "val_acc",
                             sr.best_val_acc, "C", sr.best_C, "iterations", sr.iterations, "seconds",
                             sr.seconds, "sweep", sweep_json(&sr));
      json_array_append_new(layers_json, lj);
      // every layer's test accuracy at its own C, as the best layer's is measured: reported for the
      // depth curve, never read by the choice below (which sees validation only)
      if (test_layers(c, &ls[i], 1, rows, nrows, sr.best_C, sr.best_theta, c->refit, lj)) {
        sweep_result_free(&sr);
        return igpt_err_prefix("layer %d (test)", ls[i]);
      }
      json_object_del(lj, "refit_fit");
    }
    if (*best_i < 0 || sr.best_val_acc > best->best_val_acc) {  // a tie keeps the earlier (lower) layer
      if (*best_i >= 0) sweep_result_free(best);
      *best = sr;
      *best_i = i;
    } else {
      sweep_result_free(&sr);
    }
  }
  return 0;
}

int cmd_probe(int argc, char **argv) {
  static const struct option opts[] = {
    {"train", 1, 0, 't'}, {"val", 1, 0, 'a'}, {"test", 1, 0, 'e'}, {"layers", 1, 0, 'l'},
    {"concat", 1, 0, 'c'}, {"C", 1, 0, 'C'}, {"c-min", 1, 0, 'm'}, {"c-max", 1, 0, 'M'},
    {"max-iter", 1, 0, 'i'}, {"Cs", 1, 0, 'L'}, {"no-refit", 0, 0, 'R'}, {"standardize", 0, 0, 's'},
    {"no-standardize", 0, 0, 'S'}, {"labels-per-class", 1, 0, 'n'}, {"subsets", 1, 0, 'u'},
    {"seed", 1, 0, 'd'}, {"json", 0, 0, 'j'}, {"verbose", 0, 0, 'v'}, {"help", 0, 0, 'h'}, {0}};
  const char *paths[3] = {0}, *layers_s = "all", *concat_s = NULL;
  probe_ctx c = {.standardize = 1, .refit = 1, .so = sweep_defaults()};
  long per_class = 0, subsets = 5, seed = 0, max_iter = 1000;
  double C = 0, Cs[64];
  int json = 0, o, n_Cs = 0;
  optind = 1;
  while ((o = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
    switch (o) {
      case 't': paths[0] = optarg; break;
      case 'a': paths[1] = optarg; break;
      case 'e': paths[2] = optarg; break;
      case 'l': layers_s = optarg; break;
      case 'c': concat_s = optarg; break;
      case 'C': if (parse_double(VERB, "--C", optarg, 1e-12, 1e12, &C)) return EXIT_USAGE; break;
      case 'm': if (parse_double(VERB, "--c-min", optarg, 1e-12, 1e12, &c.so.c_min)) return EXIT_USAGE; break;
      case 'M': if (parse_double(VERB, "--c-max", optarg, 1e-12, 1e12, &c.so.c_max)) return EXIT_USAGE; break;
      case 'i': if (parse_long(VERB, "--max-iter", optarg, 1, 1000000, &max_iter)) return EXIT_USAGE; break;
      case 'L': {
        char *dup = xstrdup(optarg), *save = NULL;
        for (char *t = strtok_r(dup, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
          double v;
          if (n_Cs >= 64 || parse_double(VERB, "--Cs", t, 1e-12, 1e12, &v)) { free(dup); return EXIT_USAGE; }
          if (n_Cs && v <= Cs[n_Cs - 1]) { free(dup); return usage_error(VERB, "--Cs must be ascending"); }
          Cs[n_Cs++] = v;
        }
        free(dup);
        break;
      }
      case 'R': c.refit = 0; break;
      case 's': c.standardize = 1; break;
      case 'S': c.standardize = 0; break;
      case 'n': if (parse_long(VERB, "--labels-per-class", optarg, 1, 1 << 30, &per_class)) return EXIT_USAGE; break;
      case 'u': if (parse_long(VERB, "--subsets", optarg, 1, 10000, &subsets)) return EXIT_USAGE; break;
      case 'd': if (parse_long(VERB, "--seed", optarg, 0, 0x7fffffffffffffffL, &seed)) return EXIT_USAGE; break;
      case 'j': json = 1; break;
      case 'v': igpt_log_level = 2; break;
      case 'h': usage(stdout); return 0;
      default: return usage_error(VERB, "unknown option");
    }
  }
  if (optind < argc) return usage_error(VERB, "unexpected argument '%s'", argv[optind]);
  if (!paths[0] || !paths[1] || !paths[2]) return usage_error(VERB, "--train, --val and --test are required");
  if (c.so.c_min > c.so.c_max) return usage_error(VERB, "--c-min is above --c-max");
  if (per_class && concat_s) return usage_error(VERB, "--concat and --labels-per-class do not combine");
  int concat_k = 0, concat_a = -1, concat_b = -1, concat_blocks = 0;
  if (concat_s) {
    char *end;
    if (!strcmp(concat_s, "blocks")) {
      concat_blocks = 1;  // 1..L once the files say L
    } else if (strstr(concat_s, "..")) {
      concat_a = (int)strtol(concat_s, &end, 10);
      if (end == concat_s || strncmp(end, "..", 2)) return usage_error(VERB, "--concat wants K or a..b, got '%s'", concat_s);
      const char *b = end + 2;
      concat_b = (int)strtol(b, &end, 10);
      if (end == b || *end || concat_a < 0 || concat_b < concat_a)
        return usage_error(VERB, "--concat wants K or a..b with 0 <= a <= b, got '%s'", concat_s);
    } else {
      concat_k = (int)strtol(concat_s, &end, 10);
      if (end == concat_s || *end || concat_k < 1 || concat_k > 1000)
        return usage_error(VERB, "--concat wants K, a..b or blocks, got '%s'", concat_s);
    }
  }
  bool no_layers = !strcmp(layers_s, "none");
  if (no_layers && (!concat_s || concat_k))  // (--concat already excludes --labels-per-class)
    return usage_error(VERB, "--layers none probes only a concatenation of known layers: it needs --concat a..b or "
                             "--concat blocks (K layers centred on the best need the layers one by one)");
  if (C > 0 && n_Cs) return usage_error(VERB, "--C and --Cs exclude each other");
  c.so.fixed_C = C;
  c.so.Cs = Cs;
  c.so.n_Cs = n_Cs;
  c.so.max_iter = (int)max_iter;
  c.so.seed = c.seed = (uint64_t)seed;

  double t0 = now_seconds();
  int rc = 1, nl = 0, *ls = NULL, iters = 0;
  json_t *res = json_object();
  for (int i = 0; i < 3; i++) {
    static const char *const split[3] = {"train", "val", "test"};
    features_file *f = i == 0 ? &c.tr : i == 1 ? &c.va : &c.te;
    if (features_open(f, paths[i]) || features_check_finite(f, split[i])) { fail(VERB); goto done; }
  }
  if (check_compatible(&c, paths) || parse_layers(layers_s, c.tr.n_layers, &ls, &nl)) {
    if (strstr(igpt_errmsg(), "--layers")) { rc = usage_error(VERB, "%s", igpt_errmsg()); goto done; }
    fail(VERB);
    goto done;
  }
  if (concat_blocks) {
    if (c.tr.n_layers < 2) {
      rc = usage_error(VERB, "--concat blocks: %s has only layer 0 (no block outputs)", paths[0]);
      goto done;
    }
    concat_a = 1;
    concat_b = c.tr.n_layers - 1;
  }
  if (concat_a >= 0 && concat_b >= c.tr.n_layers) {
    rc = usage_error(VERB, "--concat %s: the files have layers 0..%d", concat_s, c.tr.n_layers - 1);
    goto done;
  }
  json_object_set_new(res, "standardized", json_boolean(c.standardize));
  json_object_set_new(res, "classes", json_integer(c.k));
  json_object_set_new(res, "n", json_pack("{s:I,s:I,s:I}", "train", (json_int_t)c.tr.n, "val",
                                          (json_int_t)c.va.n, "test", (json_int_t)c.te.n));
  json_object_set_new(res, "masks", json_pack("{s:i,s:i,s:i}", "train", c.tr.masks, "val", c.va.masks,
                                              "test", c.te.masks));
  json_object_set_new(res, "seed", json_integer(seed));
  json_t *cs_j = json_array();
  for (int i = 0; i < n_Cs; i++) json_array_append_new(cs_j, json_real(Cs[i]));
  json_object_set_new(res, "sweep", C > 0 ? json_pack("{s:f}", "fixed_C", C) : n_Cs ? json_pack("{s:o}", "Cs", cs_j)
                                          : json_pack("{s:f,s:f,s:b}", "c_min", c.so.c_min, "c_max",
                                                      c.so.c_max, "refine", c.so.refine));
  if (!n_Cs) json_decref(cs_j);

  if (per_class) {
    // Low-data: per subset, layer and C on validation, the subset's own fit scored on test.
    json_t *subs = json_array(), *accs = json_array();
    double sum = 0, sum2 = 0;
    int64_t nrows = per_class * c.k;
    int64_t *rows = xmalloc(sizeof(int64_t) * nrows);
    for (long s = 0; s < subsets; s++) {
      rng_t r;
      rng_seed_stream(&r, (uint64_t)seed, 0x737562 /* "sub" */ + (uint64_t)s);
      if (balanced_subset(c.tr.labels, c.tr.n, c.k, (int)per_class, &r, rows)) {
        igpt_err_prefix("%s", paths[0]);
        fail(VERB);
        free(rows);
        json_decref(subs); json_decref(accs);
        goto done;
      }
      int bi;
      sweep_result best;
      if (probe_each_layer(&c, ls, nl, rows, nrows, NULL, &bi, &best, &iters)) {
        fail(VERB); free(rows); json_decref(subs); json_decref(accs); goto done;
      }
      json_t *sj = json_pack("{s:i,s:i,s:f,s:f}", "subset", (int)s, "layer", ls[bi], "C", best.best_C,
                             "val_acc", best.best_val_acc);
      if (test_layers(&c, &ls[bi], 1, rows, nrows, best.best_C, best.best_theta, 0, sj)) {
        fail(VERB); sweep_result_free(&best); free(rows); json_decref(sj); json_decref(subs);
        json_decref(accs); goto done;
      }
      double a = json_real_value(json_object_get(sj, "test_acc"));
      log_info("probe: subset %ld/%ld (%ld per class): layer %d, C=%.3g, test %.4f", s + 1, subsets,
               per_class, ls[bi], best.best_C, a);
      sum += a; sum2 += a * a;
      json_array_append_new(accs, json_real(a));
      json_array_append_new(subs, sj);
      sweep_result_free(&best);
    }
    free(rows);
    double mean = sum / subsets;
    double sd = subsets > 1 ? sqrt(fmax(0, (sum2 - subsets * mean * mean) / (subsets - 1))) : 0;
    json_object_set_new(res, "low_data",
                        json_pack("{s:i,s:i,s:I,s:o,s:o,s:f,s:f,s:s}", "labels_per_class", (int)per_class,
                                  "subsets", (int)subsets, "seed", (json_int_t)seed, "test_acc", accs,
                                  "per_subset", subs, "mean", mean, "std", sd, "std_is", "sample (n-1)"));
    if (!json) printf("low-data %ld per class, %ld subsets: test accuracy %.2f ± %.2f\n", per_class,
                      subsets, 100 * mean, 100 * sd);
  } else {
    json_t *lj = json_array();
    int bi, best_layer = -1, trc;
    sweep_result best;
    json_object_set_new(res, "layers", lj);
    if (nl) {  // each layer alone, then the best (none with --layers none: the concatenation alone)
      if (probe_each_layer(&c, ls, nl, NULL, 0, lj, &bi, &best, &iters)) { fail(VERB); goto done; }
      json_t *bj = json_pack("{s:i,s:f,s:f,s:b}", "layer", ls[bi], "C", best.best_C, "val_acc",
                             best.best_val_acc, "refit", c.refit);
      json_object_set_new(res, "best", bj);
      json_object_set_new(res, "layer_choice",
                          json_string("the highest validation accuracy; a tie goes to the lowest layer. Each "
                                      "layer's test_acc is measured after the choice and never used for it"));
      trc = test_layers(&c, &ls[bi], 1, NULL, 0, best.best_C, best.best_theta, c.refit, bj);
      best_layer = ls[bi];
      sweep_result_free(&best);
      if (trc) { fail(VERB); goto done; }
      if (!json) printf("best layer %d: C=%.4g, val %.2f, test %.2f%s\n", best_layer,
                        json_real_value(json_object_get(bj, "C")),
                        100 * json_real_value(json_object_get(bj, "val_acc")),
                        100 * json_real_value(json_object_get(bj, "test_acc")), c.refit ? " (refit on train+val)" : "");
    }
    if (concat_s) {
      if (concat_k) {
        // K layers centred on the best, shifted to stay inside 0..L
        concat_a = best_layer - concat_k / 2;
        if (concat_a + concat_k > c.tr.n_layers) concat_a = c.tr.n_layers - concat_k;
        if (concat_a < 0) concat_a = 0;
        concat_b = concat_a + concat_k - 1;
        if (concat_b >= c.tr.n_layers) concat_b = c.tr.n_layers - 1;
      }
      int ncl = concat_b - concat_a + 1, *cl = xmalloc(sizeof(int) * ncl);
      for (int i = 0; i < ncl; i++) cl[i] = concat_a + i;
      sweep_result sr;
      if (sweep_layers(&c, cl, ncl, NULL, 0, &sr)) { free(cl); fail(VERB); goto done; }
      iters += sr.iterations;
      json_t *layers_a = json_array();
      for (int i = 0; i < ncl; i++) json_array_append_new(layers_a, json_integer(cl[i]));
      json_t *cj = json_pack("{s:o,s:f,s:f,s:b,s:i,s:f,s:o}", "layers", layers_a, "C", sr.best_C,
                             "val_acc", sr.best_val_acc, "refit", c.refit, "iterations", sr.iterations,
                             "seconds", sr.seconds, "sweep", sweep_json(&sr));
      json_object_set_new(res, "concat", cj);
      trc = test_layers(&c, cl, ncl, NULL, 0, sr.best_C, sr.best_theta, c.refit, cj);
      log_info("probe: layers %d..%d concatenated: val %.4f at C=%.3g", concat_a, concat_b, sr.best_val_acc, sr.best_C);
      sweep_result_free(&sr);
      free(cl);
      if (trc) { fail(VERB); goto done; }
      if (!json) printf("layers %d..%d concatenated: C=%.4g, val %.2f, test %.2f\n", concat_a, concat_b,
                        json_real_value(json_object_get(cj, "C")),
                        100 * json_real_value(json_object_get(cj, "val_acc")),
                        100 * json_real_value(json_object_get(cj, "test_acc")));
    }
  }
  json_object_set_new(res, "iterations", json_integer(iters));
  json_object_set_new(res, "seconds", json_real(now_seconds() - t0));
  if (json) { print_json(res); res = NULL; }
  rc = 0;
done:
  json_decref(res);
  free(ls);
  features_close(&c.tr);
  features_close(&c.va);
  features_close(&c.te);
  return rc;
}
