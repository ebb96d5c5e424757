// probe: features files, standardisation, the C sweep, subsets, ensembling; see probe.h.
#include "eval/probe.h"
#include "base/util.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

// ---------------------------------------------------------------- features files

// "layer_<digits>" -> l, else -1.
static int layer_index(const char *name) {
  if (strncmp(name, "layer_", 6)) return -1;
  const char *p = name + 6;
  if (!*p || strlen(p) > 6) return -1;
  for (const char *q = p; *q; q++)
    if (*q < '0' || *q > '9') return -1;
  return atoi(p);
}

int features_open(features_file *ff, const char *path) {
  memset(ff, 0, sizeof *ff);
  if (st_open(&ff->st, path)) return -1;
  const st_tensor *lab = st_expect(&ff->st, "labels", ST_I32, 1, NULL);
  if (!lab) goto fail;
  ff->n = lab->shape[0];
  ff->labels = lab->data;
  if (ff->n < 1) { igpt_err("%s: 'labels' is empty", path); goto fail; }
  for (int64_t i = 0; i < ff->n; i++)
    if (ff->labels[i] < 0) {
      igpt_err("%s: labels[%lld] = %d: features without labels cannot be probed", path,
               (long long)i, ff->labels[i]);
      goto fail;
    }
  int max_l = -1;
  for (int i = 0; i < ff->st.n; i++) {
    int l = layer_index(ff->st.tensors[i].name);
    if (l > max_l) max_l = l;
  }
  if (max_l < 0) { igpt_err("%s: no 'layer_<l>' tensors: not a features file", path); goto fail; }
  ff->n_layers = max_l + 1;
  ff->dims = xcalloc(ff->n_layers, sizeof(int));
  ff->layer = xcalloc(ff->n_layers, sizeof(float *));
  ff->masks = 0;
  for (int l = 0; l < ff->n_layers; l++) {
    char name[32];
    snprintf(name, sizeof name, "layer_%d", l);
    const st_tensor *t = st_get(&ff->st, name);
    if (!t) { igpt_err("%s: '%s' missing (layers must run 0..%d)", path, name, max_l); goto fail; }
    if (t->dtype != ST_F32 || (t->ndim != 2 && t->ndim != 3)) {
      igpt_err("%s: '%s' must be F32 [N, d] or [K, N, d], found %s with %d dims", path, name,
               st_dtype_name(t->dtype), t->ndim);
      goto fail;
    }
    int K = t->ndim == 3 ? (int)t->shape[0] : 1;
    int64_t n = t->shape[t->ndim - 2], d = t->shape[t->ndim - 1];
    if (n != ff->n || d < 1 || d > (1 << 20) || K < 1 || K > 1024) {
      igpt_err("%s: '%s' has shape [%s%lld, %lld]; expected N = %lld rows (as 'labels') and "
               "1 <= d <= 2^20", path, name, t->ndim == 3 ? "K, " : "", (long long)n,
               (long long)d, (long long)ff->n);
      goto fail;
    }
    if (ff->masks && K != ff->masks) {
      igpt_err("%s: '%s' has %d masks, layer_0 has %d", path, name, K, ff->masks);
      goto fail;
    }
    ff->masks = K;
    ff->dims[l] = (int)d;
    ff->layer[l] = t->data;
  }
  return 0;
fail:
  features_close(ff);
  return -1;
}

int features_check_finite(const features_file *ff, const char *split) {
  for (int l = 0; l < ff->n_layers; l++) {
    const float *x = ff->layer[l];
    int64_t n = (int64_t)ff->masks * ff->n * ff->dims[l], bad = n;
#pragma omp parallel for reduction(min : bad) schedule(static)
    for (int64_t i = 0; i < n; i++)
      if (!isfinite(x[i]) && i < bad) bad = i;
    if (bad == n) continue;
    int64_t row = bad / ff->dims[l];
    char mask[32] = "";
    if (ff->masks > 1) snprintf(mask, sizeof mask, " (mask %lld)", (long long)(row / ff->n));
    return igpt_err("%s features %s: layer_%d row %lld%s holds %g: the features are not finite (a diverged "
                    "model?); recompute them with igpt features", split, ff->st.path ? ff->st.path : "(buffer)", l,
                    (long long)(row % ff->n), mask, (double)x[bad]);
  }
  return 0;
}

void features_close(features_file *ff) {
  free(ff->dims);
  free(ff->layer);
  st_close(&ff->st);
  memset(ff, 0, sizeof *ff);
}

float *features_gather(const features_file *ff, const int *layers, int n_layers, int first_mask_only,
                       const int64_t *rows, int64_t n_rows, int *d_out) {
  int D = 0;
  for (int i = 0; i < n_layers; i++) D += ff->dims[layers[i]];
  int K = first_mask_only ? 1 : ff->masks;
  int64_t n = rows ? n_rows : ff->n;
  float *x = xmalloc(sizeof(float) * K * n * D);
  for (int m = 0; m < K; m++) {
    int off = 0;
    for (int i = 0; i < n_layers; i++) {
      int l = layers[i], d = ff->dims[l];
      const float *src = ff->layer[l] + (int64_t)m * ff->n * d;
#pragma omp parallel for schedule(static)
      for (int64_t r = 0; r < n; r++) {
        int64_t s = rows ? rows[r] : r;
        memcpy(x + ((int64_t)m * n + r) * D + off, src + s * d, sizeof(float) * d);
      }
      off += d;
    }
  }
  *d_out = D;
  return x;
}

// ---------------------------------------------------------------- standardisation

void standardize_fit(const float *x, int64_t n, int d, double *mean, double *scale) {
  memset(mean, 0, sizeof(double) * d);
  memset(scale, 0, sizeof(double) * d);
  // two passes in double: the features' means can be large against their spread
  for (int64_t i = 0; i < n; i++)
    for (int j = 0; j < d; j++) mean[j] += x[i * d + j];
  for (int j = 0; j < d; j++) mean[j] /= (double)n;
  for (int64_t i = 0; i < n; i++)
    for (int j = 0; j < d; j++) {
      double c = x[i * d + j] - mean[j];
      scale[j] += c * c;
    }
  for (int j = 0; j < d; j++) {
    scale[j] = sqrt(scale[j] / (double)n);
    if (!(scale[j] > 0)) scale[j] = 1;
  }
}

void standardize_apply(float *x, int64_t n, int d, const double *mean, const double *scale) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; i++)
    for (int j = 0; j < d; j++) x[i * d + j] = (float)((x[i * d + j] - mean[j]) / scale[j]);
}

// ---------------------------------------------------------------- ensembling, subsets

void ensemble_mode(const int32_t *pred, int K, int64_t n, int k, rng_t *r, int32_t *out) {
  int *votes = xcalloc(k, sizeof(int));
  for (int64_t i = 0; i < n; i++) {
    memset(votes, 0, sizeof(int) * k);
    int top = 0;
    for (int m = 0; m < K; m++) {
      int c = pred[(int64_t)m * n + i];
      if (++votes[c] > top) top = votes[c];
    }
    int ties = 0;
    for (int c = 0; c < k; c++) ties += votes[c] == top;
    uint32_t pick = ties > 1 ? rng_below(r, (uint32_t)ties) : 0;
    for (int c = 0; c < k; c++)
      if (votes[c] == top && pick-- == 0) { out[i] = c; break; }
  }
  free(votes);
}

double probe_accuracy(const double *theta, int d, int k, const float *x, int K, int64_t n,
                      const int32_t *y, uint64_t seed) {
  return probe_correct(theta, d, k, x, K, n, y, seed, NULL);
}

double probe_correct(const double *theta, int d, int k, const float *x, int K, int64_t n,
                     const int32_t *y, uint64_t seed, uint8_t *right_out) {
  int32_t *pred = xmalloc(sizeof(int32_t) * K * n), *mode = xmalloc(sizeof(int32_t) * n);
  for (int m = 0; m < K; m++) logreg_predict(theta, d, k, x + (int64_t)m * n * d, n, pred + (int64_t)m * n, NULL);
  rng_t r;
  rng_seed_stream(&r, seed, 0x656e73 /* "ens" */);
  if (K > 1) ensemble_mode(pred, K, n, k, &r, mode);
  else memcpy(mode, pred, sizeof(int32_t) * n);
  int64_t right = 0;
  for (int64_t i = 0; i < n; i++) {
    right += mode[i] == y[i];
    if (right_out) right_out[i] = mode[i] == y[i];
  }
  free(pred);
  free(mode);
  return (double)right / (double)n;
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

int balanced_subset(const int32_t *y, int64_t n, int k, int per_class, rng_t *r, int64_t *rows) {
  int64_t *count = xcalloc(k, sizeof(int64_t));
  for (int64_t i = 0; i < n; i++)
    if (y[i] >= 0 && y[i] < k) count[y[i]]++;
  int64_t *idx = xmalloc(sizeof(int64_t) * n);
  int64_t out = 0;
  for (int c = 0; c < k; c++) {
    if (count[c] < per_class) {
      igpt_err("class %d has %lld examples, fewer than the %d per class asked for", c,
               (long long)count[c], per_class);
      free(count); free(idx);
      return -1;
    }
    int64_t m = 0;
    for (int64_t i = 0; i < n; i++)
      if (y[i] == c) idx[m++] = i;
    // partial Fisher-Yates: the first per_class entries are a uniform sample without replacement
    for (int64_t i = 0; i < per_class; i++) {
      int64_t j = i + rng_below(r, (uint32_t)(m - i));
      int64_t t = idx[i]; idx[i] = idx[j]; idx[j] = t;
      rows[out++] = idx[i];
    }
  }
  qsort(rows, out, sizeof(int64_t), cmp_i64);
  free(count);
  free(idx);
  return 0;
}

// ---------------------------------------------------------------- the C sweep

sweep_opts sweep_defaults(void) {
  return (sweep_opts){.c_min = 1e-5, .c_max = 1e2, .fixed_C = 0, .refine = 1, .patience = 2,
                      .max_iter = 1000, .seed = 0};
}

typedef struct { double C; double *theta; double acc; } sweep_point;

void sweep_result_free(sweep_result *res) {
  free(res->fits);
  free(res->best_theta);
  memset(res, 0, sizeof *res);
}

// Fits at C, warm-started from the solution of the nearest C already fitted (at or below C when
// there is one: a more regularised solution is the better start), scores on val.
static int sweep_fit(const logreg_data *tr, const float *xv, int Kv, int64_t nv, const int32_t *yv,
                     const sweep_opts *o, double C, sweep_point *pts, int *npts, sweep_result *res) {
  int64_t np = logreg_nparams(tr->d, tr->k);
  double *th = xcalloc(np, sizeof(double));
  int near = -1;
  for (int i = 0; i < *npts; i++) {
    double dist = fabs(log(pts[i].C / C)) + (pts[i].C > C ? 1e-9 : 0);
    if (near < 0 || dist < fabs(log(pts[near].C / C)) + (pts[near].C > C ? 1e-9 : 0)) near = i;
  }
  if (near >= 0) memcpy(th, pts[near].theta, sizeof(double) * np);
  logreg_opts lo = logreg_defaults(C);
  // going up the path (the nearest fit below C): the fit begins along the line through the
  // nearest fit and the one below it
  int prev = -1;
  for (int i = 0; near >= 0 && pts[near].C < C && i < *npts; i++)
    if (pts[i].C < pts[near].C && (prev < 0 || pts[i].C > pts[prev].C)) prev = i;
  if (prev >= 0) {
    lo.path_prev = pts[prev].theta;
    lo.path_step = log(C / pts[near].C) / log(pts[near].C / pts[prev].C);
  }
  lo.max_iter = o->max_iter;
  lo.no_intercept = o->no_intercept;
  logreg_result lr;
  if (logreg_fit(tr, &lo, th, &lr)) { free(th); return -1; }
  double acc = probe_accuracy(th, tr->d, tr->k, xv, Kv, nv, yv, o->seed);
  res->fits = xrealloc(res->fits, sizeof(probe_fit) * (res->n_fits + 1));
  res->fits[res->n_fits++] = (probe_fit){C, acc, lr.objective, lr.iterations, lr.evaluations, lr.seconds, lr.stop};
  res->iterations += lr.iterations;
  log_debug("probe: C=%-9.3g val %.4f  %4d it  %.2fs  %s", C, acc, lr.iterations, lr.seconds, lr.stop);
  pts[*npts] = (sweep_point){C, th, acc};
  (*npts)++;
  return 0;
}

static int have_C(const sweep_point *pts, int n, double C) {
  for (int i = 0; i < n; i++)
    if (fabs(log(pts[i].C / C)) < 1e-9) return 1;
  return 0;
}

int probe_sweep(const logreg_data *tr, const float *xv, int Kv, int64_t nv, const int32_t *yv,
                const sweep_opts *o, sweep_result *res) {
  double t0 = now_seconds();
  memset(res, 0, sizeof *res);
  enum { MAXPTS = 64 };
  sweep_point pts[MAXPTS];
  int npts = 0, rc = 0;
  if (o->fixed_C > 0) {
    rc = sweep_fit(tr, xv, Kv, nv, yv, o, o->fixed_C, pts, &npts, res);
  } else if (o->n_Cs > 0) {
    for (int i = 0; i < o->n_Cs && i < MAXPTS && !rc; i++)
      rc = sweep_fit(tr, xv, Kv, nv, yv, o, o->Cs[i], pts, &npts, res);
  } else {
    // coarse: decades upward (weaker regularisation) so each fit starts from the previous one
    int falls = 0;
    double best = -1;
    for (double e = ceil(log10(o->c_min) - 1e-9); e <= log10(o->c_max) + 1e-9 && !rc; e += 1) {
      if (npts >= MAXPTS - 8) break;
      rc = sweep_fit(tr, xv, Kv, nv, yv, o, pow(10, e), pts, &npts, res);
      if (rc) break;
      double a = pts[npts - 1].acc;
      if (a > best) { best = a; falls = 0; }
      else if (++falls >= o->patience) break;
    }
    // a range inside one decade has no decade in it: its ends are the grid
    bool no_decade = npts == 0;
    for (int j = 0; no_decade && j < 2 && !rc; j++)
      if (j == 0 || o->c_max > o->c_min) rc = sweep_fit(tr, xv, Kv, nv, yv, o, j ? o->c_max : o->c_min, pts, &npts, res);
    // refine: half a decade, then a quarter, on both sides of the best so far, inside
    // [c_min, c_max] (a best at the edge is refined on its inner side only)
    for (int step = 0; o->refine && step < 2 && !rc; step++) {
      int b = 0;
      for (int i = 1; i < npts; i++)
        if (pts[i].acc > pts[b].acc || (pts[i].acc == pts[b].acc && pts[i].C < pts[b].C)) b = i;
      double cb = pts[b].C, f = pow(10, step == 0 ? 0.5 : 0.25);
      double cand[2] = {cb / f, cb * f};
      for (int j = 0; j < 2 && !rc; j++)
        if (cand[j] >= o->c_min * (1 - 1e-9) && cand[j] <= o->c_max * (1 + 1e-9) && !have_C(pts, npts, cand[j]) &&
            npts < MAXPTS)
          rc = sweep_fit(tr, xv, Kv, nv, yv, o, cand[j], pts, &npts, res);
    }
  }
  if (!rc) {
    // best on validation; ties go to the smaller C (the more regularised model)
    int b = 0;
    for (int i = 1; i < npts; i++)
      if (pts[i].acc > pts[b].acc || (pts[i].acc == pts[b].acc && pts[i].C < pts[b].C)) b = i;
    res->best_C = pts[b].C;
    res->best_val_acc = pts[b].acc;
    int64_t np = logreg_nparams(tr->d, tr->k);
    res->best_theta = xmalloc(sizeof(double) * np);
    memcpy(res->best_theta, pts[b].theta, sizeof(double) * np);
  }
  for (int i = 0; i < npts; i++) free(pts[i].theta);
  res->seconds = now_seconds() - t0;
  return rc;
}
