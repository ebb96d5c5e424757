// logreg: the objective (fused forward/backward per block of rows), prediction; see logreg.h.
// The fit is in logreg_fit.c.
#include "logreg.h"
#include "util.h"
#include <cblas.h>
#include <float.h>
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
} lr_work;

static void work_init(lr_work *w, const logreg_data *data, double C) {
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
}

static void work_free(lr_work *w) {
  free(w->wf); free(w->z); free(w->gf); free(w->gd); free(w->gb);
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
        // classes more than 50 below the top count as 0 (p < 2e-22): no float denormals in
        // p - onehot, which would slow the gradient's sgemm a hundredfold
        for (int c = 0; c < k; c++) { e[c] = e[c] - mx > -50 ? expf((float)(e[c] - mx)) : 0; s += e[c]; }
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
  return f;
}

double logreg_objective(const logreg_data *data, double C, const double *theta, double *grad,
                        double *loss_sum) {
  lr_work w;
  work_init(&w, data, C);
  double f = evaluate(&w, theta, grad, loss_sum);
  work_free(&w);
  return f;
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
