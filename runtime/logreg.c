// logreg: multinomial logistic regression, L2, L-BFGS (liblbfgs); see logreg.h.
#include "logreg.h"
#include "util.h"
#include <cblas.h>
#include <float.h>
#include <lbfgs.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

logreg_opts logreg_defaults(double C) {
  // tol: sklearn's LogisticRegression default; ftol: scipy's L-BFGS-B default factr 1e7 times
  // the double machine epsilon; m: scipy's maxcor. max_iter 1000: sklearn's default of 100
  // leaves probes on 50000 images unconverged for the larger C values.
  return (logreg_opts){.C = C, .tol = 1e-4, .ftol = 1e7 * DBL_EPSILON, .max_iter = 1000, .m = 10};
}

// Work split: each OpenMP thread takes a contiguous block of rows and runs the whole evaluation
// on it (its own single-threaded sgemm for the logits, softmax, its own sgemm for its share of the
// gradient); the blocks' gradients are summed at the end. OpenBLAS' own threads are switched off
// meanwhile, so the two thread pools never compete for the cores.
static int blas_threads_off(void) {
  int nb = openblas_get_num_threads();
  openblas_set_num_threads(1);
  return nb;
}

// Scratch for one data set: float copies of W, the logits (then p - onehot), per-thread gradients.
typedef struct {
  const logreg_data *data;
  double C;
  int nt;         // threads
  float *wf;      // [k, d]
  float *z;       // [n, k]
  float *gf;      // [nt, k, d] one block's gradient
  double *gd;     // [nt, k, d] a thread's gradient
  int64_t block;  // rows per block
  double *gb;     // [nt, k] bias gradient
  // one-entry cache: L-BFGS asks again for the starting point we already evaluated
  double *cache_x, *cache_g, cache_f, cache_loss;
  int cache_valid;
  int evaluations;
} lr_work;

static void work_init(lr_work *w, const logreg_data *data, double C) {
  int64_t np = logreg_nparams(data->d, data->k);
  w->data = data;
  w->C = C;
  w->nt = omp_get_max_threads();
  w->wf = xmalloc(sizeof(float) * data->k * data->d);
  w->z = xmalloc(sizeof(float) * data->n * data->k);
  w->gf = xmalloc(sizeof(float) * w->nt * data->k * data->d);
  w->gd = xmalloc(sizeof(double) * w->nt * data->k * data->d);
  // Bytes of X per block: small when k is small (the sgemm calls are bound by memory and X should
  // stay in L2 between them), larger as k grows (bound by arithmetic, sgemm wants tall blocks).
  // Measured on the dev machine's EPYC (AVX-512): 128 KiB best at k 10, 1-2 MiB at k 100.
  const char *bs = getenv("IGPT_LOGREG_BLOCK_KB");  // tuning knob
  int64_t kb = bs ? atol(bs) : 128 * (data->k < 10 ? 1 : data->k > 160 ? 16 : data->k / 10);
  w->block = (kb << 10) / ((int64_t)data->d * 4);
  if (w->block < 32) w->block = 32;
  w->gb = xmalloc(sizeof(double) * w->nt * data->k);
  w->cache_x = xmalloc(sizeof(double) * np);
  w->cache_g = xmalloc(sizeof(double) * np);
  w->cache_valid = 0;
  w->evaluations = 0;
}

static void work_free(lr_work *w) {
  free(w->wf); free(w->z); free(w->gf); free(w->gd); free(w->gb); free(w->cache_x); free(w->cache_g);
}

// Logits z = X W^T (float; the bias is added in double by the caller).
static void logits_forward(float *z, const float *wf, const float *x, int64_t n, int d, int k) {
  if (n > 0) cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, k, d, 1.0f, x, d, wf, d, 0.0f, z, k);
}

// Evaluates F and its gradient at theta. In z: logits, then p - onehot(y) for the gradient sgemm.
static double evaluate(lr_work *w, const double *theta, double *grad, double *loss_out) {
  const logreg_data *D = w->data;
  const int d = D->d, k = D->k;
  const int64_t n = D->n, nw = (int64_t)k * d;
  const double *b = theta + nw;
  for (int64_t j = 0; j < nw; j++) w->wf[j] = (float)theta[j];
  double loss = 0;
  // small problems run on one thread: a parallel region costs more than it saves there
  int bad_label = 0, nt = n * (int64_t)k * d < (1 << 20) ? 1 : w->nt;
  int nb = blas_threads_off(), used = 1;
#pragma omp parallel num_threads(nt) reduction(+ : loss) reduction(| : bad_label)
  {
    int t = omp_get_thread_num(), T = omp_get_num_threads();
    if (t == 0) used = T;  // the runtime may give fewer threads than asked
    int64_t r0 = n * t / T, r1 = n * (t + 1) / T;
    double *e = xmalloc(sizeof(double) * k), *gb = w->gb + (int64_t)t * k;
    double *gd = w->gd + (int64_t)t * nw;
    float *gblk = w->gf + (int64_t)t * nw;
    memset(gb, 0, sizeof(double) * k);
    if (grad) memset(gd, 0, sizeof(double) * nw);
    // blocks of rows small enough to stay in cache between the two sgemm calls: X is read from
    // memory once per evaluation
    for (int64_t i0 = r0; i0 < r1; i0 += w->block) {
      int64_t m = r1 - i0 < w->block ? r1 - i0 : w->block;
      float *z = w->z + i0 * k;
      const float *xb = D->x + i0 * d;
      logits_forward(z, w->wf, xb, m, d, k);
      for (int64_t i = i0; i < i0 + m; i++) {
        float *zi = w->z + i * k;
        int yi = D->y[i];
        if (yi < 0 || yi >= k) { bad_label = 1; yi = 0; }
        double mx = -INFINITY;
        for (int c = 0; c < k; c++) { e[c] = (double)zi[c] + b[c]; if (e[c] > mx) mx = e[c]; }
        double s = 0, zy = e[yi];
        // expf: p is rounded to float for the gradient sgemm anyway; s and the loss sum in double
        for (int c = 0; c < k; c++) { e[c] = expf((float)(e[c] - mx)); s += e[c]; }
        loss += log(s) + mx - zy;
        if (grad) {
          double inv = 1.0 / s;
          for (int c = 0; c < k; c++) {
            double r = e[c] * inv - (c == yi);
            zi[c] = (float)r;
            gb[c] += r;
          }
        }
      }
      if (grad) {
        // this block's share of (P - Y)^T X, summed in double across blocks
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, k, d, (int)m, 1.0f, z, k, xb, d, 0.0f,
                    gblk, d);
        for (int64_t j = 0; j < nw; j++) gd[j] += gblk[j];
      }
    }
    free(e);
  }
  openblas_set_num_threads(nb);
  if (bad_label) log_warn("logreg: a label outside [0, %d) was treated as class 0", k);
  double reg = 0;
  for (int64_t j = 0; j < nw; j++) reg += theta[j] * theta[j];
  double f = loss + reg / (2 * w->C);
  if (grad) {
    // dF/dW = (P - Y)^T X + W / C ; dF/db = sum_i (p_i - y_i)
    for (int64_t j = 0; j < nw; j++) {
      double g = theta[j] / w->C;
      for (int t = 0; t < used; t++) g += w->gd[(int64_t)t * nw + j];
      grad[j] = g;
    }
    for (int c = 0; c < k; c++) {
      double g = 0;
      for (int t = 0; t < used; t++) g += w->gb[(int64_t)t * k + c];
      grad[nw + c] = g;
    }
  }
  if (loss_out) *loss_out = loss;
  w->evaluations++;
  return f;
}

static double max_abs(const double *g, int64_t n) {
  double m = 0;
  for (int64_t j = 0; j < n; j++) m = fmax(m, fabs(g[j]));
  return m;
}

double logreg_objective(const logreg_data *data, double C, const double *theta, double *grad,
                        double *loss_sum) {
  lr_work w;
  work_init(&w, data, C);
  double f = evaluate(&w, theta, grad, loss_sum);
  work_free(&w);
  return f;
}

// State shared with liblbfgs' callbacks.
typedef struct {
  lr_work w;
  const logreg_opts *o;
  int64_t np;
  double f_prev;       // F at the last accepted point
  double gmax_best;    // max |gradient| there
  int iterations;
  const char *stop;
} lr_fit;

static lbfgsfloatval_t cb_evaluate(void *inst, const lbfgsfloatval_t *x, lbfgsfloatval_t *g,
                                   const int n, const lbfgsfloatval_t step) {
  (void)step;
  lr_fit *s = inst;
  lr_work *w = &s->w;
  if (w->cache_valid && !memcmp(x, w->cache_x, sizeof(double) * n)) {
    memcpy(g, w->cache_g, sizeof(double) * n);
    return w->cache_f;
  }
  double loss;
  double f = evaluate(w, x, g, &loss);
  memcpy(w->cache_x, x, sizeof(double) * n);
  memcpy(w->cache_g, g, sizeof(double) * n);
  w->cache_f = f;
  w->cache_loss = loss;
  w->cache_valid = 1;
  return f;
}

// Called after each accepted step: sklearn's (scipy's) stopping rules.
static int cb_progress(void *inst, const lbfgsfloatval_t *x, const lbfgsfloatval_t *g,
                       const lbfgsfloatval_t fx, const lbfgsfloatval_t xnorm,
                       const lbfgsfloatval_t gnorm, const lbfgsfloatval_t step, int n, int k,
                       int ls) {
  (void)x; (void)xnorm; (void)gnorm; (void)step; (void)ls;
  lr_fit *s = inst;
  s->iterations = k;
  s->gmax_best = max_abs(g, n);
  double fprev = s->f_prev;
  s->f_prev = fx;
  if (s->gmax_best <= s->o->tol) { s->stop = "gtol"; return 1; }
  if ((fprev - fx) / fmax(fmax(fabs(fprev), fabs(fx)), 1.0) <= s->o->ftol) {
    s->stop = "ftol";
    return 1;
  }
  return 0;
}

static const char *lbfgs_reason(int rc) {
  switch (rc) {
    case LBFGSERR_MAXIMUMITERATION: return "max_iter";
    case LBFGSERR_ROUNDING_ERROR: return "precision";
    case LBFGSERR_MINIMUMSTEP: return "line search: step below minimum";
    case LBFGSERR_MAXIMUMSTEP: return "line search: step above maximum";
    case LBFGSERR_MAXIMUMLINESEARCH: return "line search: too many evaluations";
    case LBFGSERR_WIDTHTOOSMALL: return "line search: interval too small";
    case LBFGSERR_INCORRECT_TMINMAX: return "line search: bad interval";
    case LBFGSERR_INVALIDPARAMETERS: return "line search: invalid parameters (non-finite values?)";
    case LBFGSERR_INCREASEGRADIENT: return "line search: not a descent direction";
    default: return NULL;
  }
}

int logreg_fit(const logreg_data *data, const logreg_opts *opts, double *theta, logreg_result *res) {
  double t0 = now_seconds();
  memset(res, 0, sizeof *res);
  if (!(opts->C > 0) || data->n < 1 || data->d < 1 || data->k < 2)
    return igpt_err("logreg: needs C > 0, n >= 1, d >= 1, k >= 2 (got C=%g n=%lld d=%d k=%d)",
                    opts->C, (long long)data->n, data->d, data->k);
  lr_fit s = {.o = opts, .np = logreg_nparams(data->d, data->k)};
  work_init(&s.w, data, opts->C);
  lbfgsfloatval_t *x = lbfgs_malloc((int)s.np);
  memcpy(x, theta, sizeof(double) * s.np);
  // scipy tests the starting point before iterating: a warm start may already be converged.
  lbfgsfloatval_t fx = cb_evaluate(&s, x, s.w.cache_g, (int)s.np, 0);
  s.f_prev = fx;
  s.gmax_best = max_abs(s.w.cache_g, s.np);
  int rc = 0;
  if (!isfinite(fx)) {
    rc = igpt_err("logreg: the objective is not finite at the start (non-finite features?)");
  } else if (s.gmax_best <= opts->tol) {
    s.stop = "gtol";
  } else {
    lbfgs_parameter_t p;
    lbfgs_parameter_init(&p);
    p.m = opts->m;
    p.epsilon = 0;  // our own gtol/ftol tests run in cb_progress
    p.past = 0;
    p.max_iterations = opts->max_iter;
    p.max_linesearch = 20;  // scipy L-BFGS-B's maxls: a line search in float32 noise gives up sooner
    p.linesearch = LBFGS_LINESEARCH_MORETHUENTE;
    int lr = lbfgs((int)s.np, x, &fx, cb_evaluate, cb_progress, &s, &p);
    if (lr == LBFGS_STOP) {
      // stop set by cb_progress
    } else if (lbfgs_reason(lr)) {
      s.stop = lbfgs_reason(lr);
    } else if (lr == LBFGS_SUCCESS || lr == LBFGS_ALREADY_MINIMIZED) {
      s.stop = "gtol";
    } else {
      rc = igpt_err("logreg: liblbfgs failed with code %d at C=%g", lr, opts->C);
    }
  }
  if (rc == 0) {
    memcpy(theta, x, sizeof(double) * s.np);
    // The objective and loss at the returned point: from the cache when it holds that point.
    double loss;
    double f = (s.w.cache_valid && !memcmp(x, s.w.cache_x, sizeof(double) * s.np))
                   ? (loss = s.w.cache_loss, s.w.cache_f)
                   : evaluate(&s.w, x, NULL, &loss);
    res->iterations = s.iterations;
    res->evaluations = s.w.evaluations;
    res->objective = f * opts->C;
    res->loss_sum = loss;
    res->grad_max = s.gmax_best;
    res->stop = s.stop;
    // "precision": the line search finds no decrease any more because F itself is rounded
    // (float32 logits); that is where a float32 objective converges, as scipy's double one ends
    // on ftol.
    res->converged = !strcmp(s.stop, "gtol") || !strcmp(s.stop, "ftol") || !strcmp(s.stop, "precision");
  }
  lbfgs_free(x);
  work_free(&s.w);
  res->seconds = now_seconds() - t0;
  return rc;
}

void logreg_predict(const double *theta, int d, int k, const float *x, int64_t n, int32_t *pred,
                    float *logits) {
  const int64_t nw = (int64_t)k * d;
  float *wf = xmalloc(sizeof(float) * nw);
  for (int64_t j = 0; j < nw; j++) wf[j] = (float)theta[j];
  int nb = blas_threads_off();
#pragma omp parallel if (n * (int64_t)k * d >= (1 << 20))
  {
    // per thread, blocks of rows small enough that their logits stay in cache
    int t = omp_get_thread_num(), T = omp_get_num_threads();
    int64_t r0 = n * t / T, r1 = n * (t + 1) / T;
    const int64_t chunk = 1024;
    float *z = logits ? NULL : xmalloc(sizeof(float) * chunk * k);
    for (int64_t i0 = r0; i0 < r1; i0 += chunk) {
      int64_t m = r1 - i0 < chunk ? r1 - i0 : chunk;
      float *zc = logits ? logits + i0 * k : z;
      logits_forward(zc, wf, x + i0 * d, m, d, k);
      for (int64_t i = 0; i < m; i++) {
        float *zi = zc + i * k;
        int best = 0;
        double bv = -INFINITY;
        for (int c = 0; c < k; c++) {
          double v = (double)zi[c] + theta[nw + c];
          zi[c] = (float)v;
          if (v > bv) { bv = v; best = c; }
        }
        pred[i0 + i] = best;
      }
    }
    free(z);
  }
  openblas_set_num_threads(nb);
  free(wf);
}

double logreg_accuracy(const double *theta, const logreg_data *data) {
  if (data->n < 1) return 0;
  int32_t *pred = xmalloc(sizeof(int32_t) * data->n);
  logreg_predict(theta, data->d, data->k, data->x, data->n, pred, NULL);
  int64_t right = 0;
  for (int64_t i = 0; i < data->n; i++) right += pred[i] == data->y[i];
  free(pred);
  return (double)right / (double)data->n;
}
