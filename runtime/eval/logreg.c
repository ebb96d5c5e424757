// logreg: the probe's logistic regression (see logreg.h): L-BFGS with the line search done on
// logits, the objective, prediction.
//
// Why not a general L-BFGS library: for a linear model the logits along a search direction p are
// z(α) = z + α·(X p), a line in logit space. One sgemm gives X p; after that every line-search
// trial point, with F(α), F'(α) and F''(α), costs O(n k) instead of the O(n k d) of a gradient,
// and the full gradient is computed once per iteration, at the accepted point. A library line
// search (liblbfgs, scipy) asks for the full gradient at every trial. Working along the line also
// makes F(α) a smooth function of α: logits are kept in double and updated by α·(X p) exactly as
// the parameters are, so the line search never sees float32 rounding in the logits (recomputed
// per trial, they make F noisy at about 1e-7 relative, above scipy's ftol of 2.2e-9).
//
// Two exact reformulations make the problem easier for L-BFGS without changing its solution:
// the features are centred (x - μ; the bias is not penalised, so b' = b + W μ absorbs the shift,
// and neither X nor its copy is touched: X p and Xᵀ r are corrected by μ afterwards), and the
// initial inverse Hessian of the two-loop recursion is diagonal, 1 / (h_c Σ_i (x_ij - μ_j)² + 1/C)
// with h_c the mean of p_c (1 - p_c) over rows, instead of a multiple of the identity. Features
// of very different scales (as a network's are) then cost far fewer iterations.
//
// Per iteration: one pass over X for X p (forward), one for the gradient Xᵀ(P - Y) (backward),
// both float32 sgemm over row blocks, each thread its own rows, block sums in double. At a stop
// the logits are recomputed from the parameters (and for a gtol stop the gradient checked again),
// so the reported objective is that of θ, not of the walked logits.
#include "eval/logreg.h"
#include "base/util.h"
#include <cblas.h>
#include <float.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  const logreg_data *D;
  const logreg_opts *o;
  int64_t np, nw;   // parameters, of which weights
  int nt;           // threads
  int64_t block;    // rows per sgemm block
  double *z;        // [n, k] logits at θ, bias included (double: updated along lines)
  float *zp;        // [n, k] X p_W for the current direction (bias part added per trial)
  float *r;         // [n, k] p - onehot(y) at the last trial point
  float *wf;        // [k, d] float copy of a weight matrix (direction, or θ on a refresh)
  float *gf;        // [nt, k, d] one block's gradient
  double *gd;       // [nt, k, d] a thread's gradient
  double *gb;       // [nt, k] a thread's bias gradient
  double *hb;       // [nt, k] a thread's Σ p (1 - p) per class
  double *mu;       // [d] feature means (the fit works on centred features)
  double *var;      // [d] Σ_i (x_ij - μ_j)²
  double *h;        // [k] mean p (1 - p) per class at the current point
  double *part;     // [nt * 4] per-thread partial sums, added in thread order (reproducible)
  int evaluations;  // line-search trial points evaluated (each O(n k))
  double t_fwd, t_bwd, t_line, t_dir;  // seconds in each part, for --verbose
  int bad_label;
} fit;

static int blas_threads_off(void) {
  int nb = openblas_get_num_threads();
  openblas_set_num_threads(1);
  return nb;
}

static int threads_for(const fit *s) {
  // small problems run on one thread: a parallel region costs more than it saves there
  return s->D->n * (int64_t)s->D->k * s->D->d < (1 << 20) ? 1 : s->nt;
}

// out[i, c] = (X wf^T)[i, c] for all rows, float32 sgemm per block of rows.
static void forward_pass(fit *s, float *out) {
  const logreg_data *D = s->D;
  double t0 = now_seconds();
  int nb = blas_threads_off();
#pragma omp parallel num_threads(threads_for(s))
  {
    int t = omp_get_thread_num(), T = omp_get_num_threads();
    int64_t r0 = D->n * t / T, r1 = D->n * (t + 1) / T;
    for (int64_t i0 = r0; i0 < r1; i0 += s->block) {
      int64_t m = r1 - i0 < s->block ? r1 - i0 : s->block;
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, D->k, D->d, 1.0f,
                  D->x + i0 * D->d, D->d, s->wf, D->d, 0.0f, out + i0 * D->k, D->k);
    }
  }
  openblas_set_num_threads(nb);
  s->t_fwd += now_seconds() - t0;
}

// g = Xᵀ r + W/C (weights), Σ_i r_i (biases), from s->r. Returns max |g|.
static double backward_pass(fit *s, const double *theta, double *g) {
  const logreg_data *D = s->D;
  const int d = D->d, k = D->k;
  const int64_t nw = s->nw;
  double t0 = now_seconds();
  int nb = blas_threads_off(), used = 1;
#pragma omp parallel num_threads(threads_for(s))
  {
    int t = omp_get_thread_num(), T = omp_get_num_threads();
    if (t == 0) used = T;  // the runtime may give fewer threads than asked
    int64_t r0 = D->n * t / T, r1 = D->n * (t + 1) / T;
    double *gd = s->gd + (int64_t)t * nw, *gb = s->gb + (int64_t)t * k, *hb = s->hb + (int64_t)t * k;
    float *gblk = s->gf + (int64_t)t * nw;
    memset(gd, 0, sizeof(double) * nw);
    memset(gb, 0, sizeof(double) * k);
    memset(hb, 0, sizeof(double) * k);
    for (int64_t i0 = r0; i0 < r1; i0 += s->block) {
      int64_t m = r1 - i0 < s->block ? r1 - i0 : s->block;
      const float *rb = s->r + i0 * k;
      // float32 sums over a block only; blocks add up in double (the gradient near the optimum
      // is a small difference of large sums)
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, k, d, (int)m, 1.0f, rb, k,
                  D->x + i0 * d, d, 0.0f, gblk, d);
      for (int64_t j = 0; j < nw; j++) gd[j] += gblk[j];
      for (int64_t i = 0; i < m; i++) {
        int y = D->y[i0 + i];
        for (int c = 0; c < k; c++) {
          double r = rb[i * k + c], p = r + (c == y);
          gb[c] += r;
          hb[c] += p * (1 - p);
        }
      }
    }
  }
  openblas_set_num_threads(nb);
  double gmax = 0;
  for (int c = 0; c < k; c++) {
    double v = 0, hc = 0;
    for (int t = 0; t < used; t++) {
      v += s->gb[(int64_t)t * k + c];
      hc += s->hb[(int64_t)t * k + c];
    }
    if (s->o->no_intercept) v = 0;  // the biases are held at 0: no gradient, no direction
    g[nw + c] = v;
    s->h[c] = hc / (double)D->n;
    gmax = fmax(gmax, fabs(v));
  }
  // (X - 1 μᵀ)ᵀ r = Xᵀ r - μ Σ_i r_i
  for (int c = 0; c < k; c++) {
    const double gbc = g[nw + c];
    for (int64_t j = c * (int64_t)d; j < (c + 1) * (int64_t)d; j++) {
      double v = theta[j] / s->o->C - s->mu[j - c * (int64_t)d] * gbc;
      for (int t = 0; t < used; t++) v += s->gd[(int64_t)t * nw + j];
      g[j] = v;
      gmax = fmax(gmax, fabs(v));
    }
  }
  s->t_bwd += now_seconds() - t0;
  return gmax;
}

// The data term along the line z + α (zp + pb): L(α) = Σ_i lse(u_i) - u_{i,y_i}, its first and
// second derivatives, and r = softmax(u) - onehot(y) at α. pb is the direction's bias part
// (NULL: the line is the point z itself, α ignored).
typedef struct { double f, d1, d2; } line_val;

static line_val line_eval(fit *s, const double *pb, double alpha) {
  const logreg_data *D = s->D;
  const int k = D->k;
  double t0 = now_seconds();
  int bad = 0, used = 1;
#pragma omp parallel num_threads(threads_for(s)) reduction(| : bad)
  {
    int t = omp_get_thread_num(), T = omp_get_num_threads();
    if (t == 0) used = T;
    int64_t r0 = D->n * t / T, r1 = D->n * (t + 1) / T;
    double f = 0, d1 = 0, d2 = 0;
    double *u = xmalloc(sizeof(double) * k * 2), *v = u + k;
    for (int64_t i = r0; i < r1; i++) {
      const double *zi = s->z + i * k;
      const float *zpi = s->zp + i * k;
      float *ri = s->r + i * k;
      int y = D->y[i];
      if (y < 0 || y >= k) { bad = 1; y = 0; }
      double mx = -INFINITY;
      for (int c = 0; c < k; c++) {
        v[c] = pb ? (double)zpi[c] + pb[c] : 0;
        u[c] = zi[c] + alpha * v[c];
        if (u[c] > mx) mx = u[c];
      }
      double sum = 0;
      // double exp: F(α) must be smooth well below the ftol of 2e-9 relative. Classes more than
      // 50 below the top (p < 2e-22, invisible next to the top's 1 in double) count as 0: at
      // large C most are, and their p would be float denormals in r, which cost the gradient's
      // sgemm a hundredfold (a C=1000 fit took 4 s a gradient instead of 0.2 s)
      for (int c = 0; c < k; c++) {
        u[c] = u[c] - mx > -50 ? exp(u[c] - mx) : 0;
        sum += u[c];
      }
      double inv = 1 / sum, pv = 0, pvv = 0;
      f += log(sum) + mx - (zi[y] + alpha * v[y]);
      for (int c = 0; c < k; c++) {
        double p = u[c] * inv;
        pv += p * v[c];
        pvv += p * v[c] * v[c];
        ri[c] = (float)(p - (c == y));
      }
      d1 += pv - v[y];
      d2 += pvv - pv * pv;
    }
    free(u);
    s->part[t * 4] = f, s->part[t * 4 + 1] = d1, s->part[t * 4 + 2] = d2;
  }
  line_val L = {0, 0, 0};
  for (int t = 0; t < used; t++) L.f += s->part[t * 4], L.d1 += s->part[t * 4 + 1], L.d2 += s->part[t * 4 + 2];
  s->bad_label |= bad;
  s->evaluations++;
  s->t_line += now_seconds() - t0;
  return L;
}

// out_c = b_c + sign Σ_j w_cj μ_j. sign -1: the bias that goes with the uncentred X for (w, b) on
// centred features; sign +1 the other way.
static void shift_bias(const fit *s, const double *w, const double *b, double sign, double *out) {
  const int64_t d = s->D->d;
  for (int c = 0; c < s->D->k; c++) {
    double v = 0;
    for (int64_t j = 0; j < d; j++) v += w[c * d + j] * s->mu[j];
    out[c] = b[c] + sign * v;
  }
}

// Logits from θ afresh (the accumulated ones drift by sgemm rounding, one step at a time).
static void refresh_logits(fit *s, const double *theta) {
  const int k = s->D->k;
  for (int64_t j = 0; j < s->nw; j++) s->wf[j] = (float)theta[j];
  forward_pass(s, s->zp);
  double *b = xmalloc(sizeof(double) * k);
  shift_bias(s, theta, theta + s->nw, -1, b);
#pragma omp parallel for num_threads(threads_for(s)) schedule(static)
  for (int64_t i = 0; i < s->D->n; i++)
    for (int c = 0; c < k; c++) s->z[i * k + c] = (double)s->zp[i * k + c] + b[c];
  free(b);
}

static double sq_norm_w(const double *a, int64_t nw) {
  double v = 0;
  for (int64_t j = 0; j < nw; j++) v += a[j] * a[j];
  return v;
}

// Vector operations on parameters (k d + k of them), serial: a few milliseconds an iteration, and
// a parallel region per operation costs more than it saves when the cores are shared.
static double dot(const double *a, const double *b, int64_t n) {
  double v = 0;
  for (int64_t j = 0; j < n; j++) v += a[j] * b[j];
  return v;
}

static void axpy(double alpha, const double *x, double *y, int64_t n) {
  for (int64_t j = 0; j < n; j++) y[j] += alpha * x[j];
}

// F at θ with fresh logits; r and the gradient follow. Returns F; *gmax gets max |g|.
// g NULL: F only (the gradient pass skipped).
static double evaluate_at(fit *s, const double *theta, double *g, double *loss, double *gmax) {
  refresh_logits(s, theta);
  line_val L = line_eval(s, NULL, 0);
  if (g) *gmax = backward_pass(s, theta, g);
  *loss = L.f;
  return L.f + sq_norm_w(theta, s->nw) / (2 * s->o->C);
}

// Line search for F(θ + α p) (pb: the direction's bias on the uncentred X): strong Wolfe (c1
// 1e-4, c2 0.9, as L-BFGS-B) by safeguarded Newton steps on F'(α), increasing as F is convex. F0 and dF0 = g·p at α = 0. On
// success *alpha and *fa hold the accepted point and s->r its residuals; returns the trials'
// count, or 0 when no point with a lower F was found (F cannot decrease further in double).
static int line_search(fit *s, const double *theta, const double *p, const double *pb, double F0,
                       double dF0, double alpha0, double *alpha, double *fa) {
  const double C = s->o->C, c1 = 1e-4, c2 = 0.9;
  const int64_t nw = s->nw;
  const double ww = sq_norm_w(theta, nw), wp = dot(theta, p, nw), pp = sq_norm_w(p, nw);
  double lo = 0, hi = INFINITY, a = alpha0, best_a = 0, best_f = F0;
  for (int trial = 1; trial <= 20; trial++) {
    line_val L = line_eval(s, pb, a);
    double f = L.f + (ww + 2 * a * wp + a * a * pp) / (2 * C);
    double d1 = L.d1 + (wp + a * pp) / C, d2 = L.d2 + pp / C;
    if (f <= F0 + c1 * a * dF0 && fabs(d1) <= c2 * fabs(dF0)) {
      *alpha = a;
      *fa = f;
      return trial;
    }
    if (f < best_f) { best_f = f; best_a = a; }
    if (d1 < 0 && f <= F0 + c1 * a * dF0) lo = a; else hi = a;
    double next = d2 > 0 ? a - d1 / d2 : NAN;  // Newton on F'
    double width = hi - lo;
    if (isinf(hi)) {
      if (!(next > a)) next = 2 * a;
      if (next > 64 * a) next = 64 * a;
    } else if (!(next > lo + 0.01 * width && next < hi - 0.01 * width)) {
      next = lo + 0.5 * width;  // bisect when Newton leaves the bracket
    }
    if (next == a || width <= DBL_EPSILON * fmax(hi, 1e-300)) break;
    a = next;
  }
  if (best_a == 0) return 0;
  // the best point seen, not the last: its residuals are needed for the gradient
  line_val L = line_eval(s, pb, best_a);
  (void)L;
  *alpha = best_a;
  *fa = best_f;
  return 21;
}

// The L-BFGS two-loop recursion: p = -H g with H from the last `have` pairs (s, y) (oldest first
// in ring order from `head`) and H0 = γ diag(1/dg), γ = sᵀy / yᵀ diag(1/dg) y of the newest pair
// (Nocedal and Wright's scaling, in the preconditioner's metric).
static void lbfgs_direction(const double *g, double *p, int64_t np, const double *dg,
                            double *const *S, double *const *Y, const double *rho, double *a, int m,
                            int head, int have) {
  for (int64_t j = 0; j < np; j++) p[j] = -g[j];
  for (int h = have - 1; h >= 0; h--) {
    int i = (head + h) % m;
    a[i] = rho[i] * dot(S[i], p, np);
    axpy(-a[i], Y[i], p, np);
  }
  double gamma = 1;
  if (have > 0) {
    const double *yv = Y[(head + have - 1) % m];
    double yhy = 0;
    for (int64_t j = 0; j < np; j++) yhy += yv[j] * yv[j] / dg[j];
    gamma = 1 / (rho[(head + have - 1) % m] * yhy);
  }
  for (int64_t j = 0; j < np; j++) p[j] *= gamma / dg[j];
  for (int h = 0; h < have; h++) {
    int i = (head + h) % m;
    double b = rho[i] * dot(Y[i], p, np);
    axpy(a[i] - b, S[i], p, np);
  }
}

// The diagonal of the preconditioner (an estimate of the Hessian's diagonal) from h and var.
static void precondition(const fit *s, double *dg) {
  const int64_t d = s->D->d, k = s->D->k, nw = s->nw;
  const double floor = 1 / s->o->C;
  for (int64_t c = 0; c < k; c++) {
    // h_c > 0 as long as p_c is not exactly 0 or 1; the floor keeps it so
    double hc = fmax(s->h[c], 1e-12);
    for (int64_t j = 0; j < d; j++) dg[c * d + j] = hc * s->var[j] + floor;
    dg[nw + c] = hc * (double)s->D->n + floor;
  }
}

// Feature means and centred sums of squares, in double, one pass over X.
static void feature_moments(fit *s) {
  const logreg_data *D = s->D;
  const int64_t d = D->d;
  double *acc = xcalloc((size_t)s->nt * 2 * d, sizeof(double));
  int used = 1;
#pragma omp parallel num_threads(threads_for(s))
  {
    int t = omp_get_thread_num(), T = omp_get_num_threads();
    if (t == 0) used = T;
    double *sx = acc + (int64_t)t * 2 * d, *sxx = sx + d;
    for (int64_t i = D->n * t / T; i < D->n * (t + 1) / T; i++) {
      const float *xi = D->x + i * d;
      for (int64_t j = 0; j < d; j++) { sx[j] += xi[j]; sxx[j] += (double)xi[j] * xi[j]; }
    }
  }
  for (int64_t j = 0; j < d; j++) {
    double sx = 0, sxx = 0;
    for (int t = 0; t < used; t++) { sx += acc[(int64_t)t * 2 * d + j]; sxx += acc[(int64_t)t * 2 * d + d + j]; }
    s->mu[j] = s->o->no_intercept ? 0 : sx / (double)D->n;  // no bias to absorb a centring
    s->var[j] = fmax(sxx - sx * s->mu[j], 0);
  }
  free(acc);
}

// Scratch for one fit on data: buffers of n k, per-thread gradients, the row blocks. μ starts at
// 0 (no centring) until feature_moments.
static void fit_init(fit *s, const logreg_data *data, const logreg_opts *opts) {
  const int64_t n = data->n, d = data->d, k = data->k, nw = k * d;
  *s = (fit){.D = data, .o = opts, .np = nw + k, .nw = nw, .nt = omp_get_max_threads()};
  // Rows per sgemm block, in bytes of X: small when k is small (the passes are bound by memory,
  // and OpenBLAS's packed copy of the block should stay in L2), larger as k grows (bound by
  // arithmetic, and W (k × d) is repacked per call). Measured on the 2-core Xeon (AVX-512):
  // 128 KiB best at k 10 (1.6x faster than 1.5 MiB), 1.3 MiB at k 100. The gradient's float32
  // sums run over one block only (blocks add up in double), so its rounding stays far below
  // sklearn's gtol of 1e-4.
  const char *bs = getenv("IGPT_LOGREG_BLOCK");  // tuning knob: rows
  int64_t kb = 128 * (k < 10 ? 1 : k > 160 ? 16 : k / 10);
  s->block = bs && atol(bs) > 0 ? atol(bs) : (kb << 10) / (d * 4);
  if (s->block < 32) s->block = 32;
  if (s->block > 4096) s->block = 4096;
  s->z = xmalloc(sizeof(double) * n * k);
  s->zp = xmalloc(sizeof(float) * n * k);
  s->r = xmalloc(sizeof(float) * n * k);
  s->wf = xmalloc(sizeof(float) * nw);
  s->gf = xmalloc(sizeof(float) * s->nt * nw);
  s->gd = xmalloc(sizeof(double) * s->nt * nw);
  s->gb = xmalloc(sizeof(double) * s->nt * k);
  s->hb = xmalloc(sizeof(double) * s->nt * k);
  s->mu = xcalloc(d, sizeof(double));
  s->var = xcalloc(d, sizeof(double));
  s->h = xmalloc(sizeof(double) * k);
  s->part = xmalloc(sizeof(double) * s->nt * 4);
}

static void fit_free(fit *s) {
  free(s->z); free(s->zp); free(s->r); free(s->wf); free(s->gf); free(s->gd); free(s->gb);
  free(s->hb); free(s->mu); free(s->var); free(s->h); free(s->part);
}

double logreg_objective(const logreg_data *data, double C, const double *theta, double *grad,
                        double *loss_sum) {
  logreg_opts o = logreg_defaults(C);
  fit s;
  fit_init(&s, data, &o);  // μ = 0: θ's own (uncentred) coordinates
  double loss, gmax, f = evaluate_at(&s, theta, grad, &loss, &gmax);
  fit_free(&s);
  if (loss_sum) *loss_sum = loss;
  return f;
}

int logreg_fit(const logreg_data *data, const logreg_opts *opts, double *theta, logreg_result *res) {
  double t0 = now_seconds();
  memset(res, 0, sizeof *res);
  if (!(opts->C > 0) || data->n < 1 || data->d < 1 || data->k < 2 || opts->m < 1)
    return igpt_err("logreg: needs C > 0, n >= 1, d >= 1, k >= 2 (got C=%g n=%lld d=%d k=%d)",
                    opts->C, (long long)data->n, data->d, data->k);
  const int64_t n = data->n, d = data->d, k = data->k, nw = k * d, np = nw + k;
  const int m = opts->m;
  fit s;
  fit_init(&s, data, opts);
  double *g = xmalloc(sizeof(double) * np), *p = xmalloc(sizeof(double) * np);
  double *dg = xmalloc(sizeof(double) * np), *pbz = xmalloc(sizeof(double) * k);
  double *gprev = xmalloc(sizeof(double) * np), *buf = xmalloc(sizeof(double) * 2 * m * np);
  double **S = xmalloc(sizeof(double *) * m), **Y = xmalloc(sizeof(double *) * m);
  double *rho = xmalloc(sizeof(double) * m), *a = xmalloc(sizeof(double) * m);
  for (int i = 0; i < m; i++) { S[i] = buf + (int64_t)i * np; Y[i] = buf + (int64_t)(m + i) * np; }

  if (opts->no_intercept) memset(theta + nw, 0, sizeof(double) * k);
  // to centred coordinates: b' = b + W μ
  feature_moments(&s);
  shift_bias(&s, theta, theta + nw, +1, pbz);
  memcpy(theta + nw, pbz, sizeof(double) * k);
  int head = 0, have = 0, it = 0, refreshes = 0, rc = 0, fresh = 1;  // fresh: F, loss from θ
  int path = opts->path_prev != NULL;
  const char *stop = NULL;
  double loss, gmax, F = evaluate_at(&s, theta, g, &loss, &gmax);
  if (!isfinite(F)) rc = igpt_err("logreg: the objective is not finite at the start (non-finite features?)");
  // scipy tests the starting point before iterating: a warm start may already be converged
  if (!rc && gmax <= opts->tol) stop = "gtol";
  while (!rc && !stop) {
    if (it >= opts->max_iter) { stop = "max_iter"; break; }
    double td = now_seconds();
    precondition(&s, dg);
    double alpha0 = 1;
    int on_path = path;
    if (path) {
      // first step along the path: p = θ - θ_prev, in the centred coordinates
      path = 0;
      shift_bias(&s, opts->path_prev, opts->path_prev + nw, +1, pbz);
      for (int64_t j = 0; j < nw; j++) p[j] = theta[j] - opts->path_prev[j];
      for (int64_t c = 0; c < k; c++) p[nw + c] = theta[nw + c] - pbz[c];
      alpha0 = opts->path_step > 0 ? opts->path_step : 1;
    } else {
      lbfgs_direction(g, p, np, dg, S, Y, rho, a, m, head, have);
    }
    // the direction's weights as the sgemm sees them (float), so θ and the logits move together
    for (int64_t j = 0; j < nw; j++) p[j] = (double)(s.wf[j] = (float)p[j]);
    double dF0 = dot(g, p, np);
    s.t_dir += now_seconds() - td;
    if (!(dF0 < 0)) {  // lost descent (rounding in the memory): restart from the preconditioned gradient
      if (on_path || have > 0) { have = 0; continue; }  // (or the path's line goes uphill)
      stop = "precision";
      break;
    }
    forward_pass(&s, s.zp);
    shift_bias(&s, p, p + nw, -1, pbz);
    // the first step's length comes from the line search's Newton steps; later ones start at 1
    // (the memory carries the scale)
    double alpha, Fa;
    if (!line_search(&s, theta, p, pbz, F, dF0, alpha0, &alpha, &Fa)) {
      if (on_path || have > 0) { have = 0; continue; }  // retry along the preconditioned gradient
      stop = "precision";
      break;
    }
    // accept: θ += α p, logits along, gradient at the new point
    int slot = (head + have) % m;
    if (have == m) { head = (head + 1) % m; slot = (head + m - 1) % m; } else have++;
    double *sv = S[slot], *yv = Y[slot];
    for (int64_t j = 0; j < np; j++) { sv[j] = alpha * p[j]; theta[j] += sv[j]; }
#pragma omp parallel for num_threads(threads_for(&s)) schedule(static)
    for (int64_t i = 0; i < n; i++)
      for (int c = 0; c < k; c++) s.z[i * k + c] += alpha * ((double)s.zp[i * k + c] + pbz[c]);
    memcpy(gprev, g, sizeof(double) * np);
    gmax = backward_pass(&s, theta, g);
    fresh = 0;
    it++;
    for (int64_t j = 0; j < np; j++) yv[j] = g[j] - gprev[j];
    double sy = dot(sv, yv, np);
    if (sy > 0) rho[slot] = 1 / sy;
    else have--;  // no curvature information (rounding): drop the pair
    double Fprev = F;
    F = Fa;
    if (gmax <= opts->tol) stop = "gtol";
    else if ((Fprev - F) / fmax(fmax(fabs(Fprev), fabs(F)), 1.0) <= opts->ftol) stop = "ftol";
    if (stop && refreshes < 3) {
      // confirm on logits recomputed from θ; go on when the fresh gradient disagrees
      refreshes++;
      // (an ftol stop needs F only: its gradient test is not what stopped it)
      int gstop = !strcmp(stop, "gtol");
      double Ff = evaluate_at(&s, theta, gstop ? g : NULL, &loss, &gmax);
      fresh = 1;
      if (gstop && gmax > opts->tol) { F = Ff; stop = NULL; }
    }
  }
  if (!rc) {
    // the reported F and loss are those of θ with fresh logits (and so is the gradient, but for
    // an ftol stop, where it comes from the walked logits)
    if (!fresh) F = evaluate_at(&s, theta, g, &loss, &gmax);
    else F = loss + sq_norm_w(theta, nw) / (2 * opts->C);
    if (s.bad_label) log_warn("logreg: a label outside [0, %d) was treated as class 0", (int)k);
    res->iterations = it;
    res->evaluations = s.evaluations;
    res->objective = F * opts->C;
    res->loss_sum = loss;
    res->grad_max = gmax;
    res->stop = stop;
    res->converged = !strcmp(stop, "gtol") || !strcmp(stop, "ftol") || !strcmp(stop, "precision");
    log_debug("logreg: C=%g %d it, %d evaluations, %s: forward %.2fs, backward %.2fs, line %.2fs, "
              "direction %.2fs, total %.2fs", opts->C, it, s.evaluations, stop, s.t_fwd, s.t_bwd,
              s.t_line, s.t_dir, now_seconds() - t0);
  }
  // back from centred coordinates: b = b' - W μ
  shift_bias(&s, theta, theta + nw, -1, pbz);
  memcpy(theta + nw, pbz, sizeof(double) * k);
  fit_free(&s);
  free(g); free(p); free(dg); free(pbz); free(gprev); free(buf); free(S); free(Y); free(rho); free(a);
  res->seconds = now_seconds() - t0;
  return rc;
}

logreg_opts logreg_defaults(double C) {
  // tol: sklearn's LogisticRegression default; ftol: scipy's L-BFGS-B default factr 1e7 times
  // the double machine epsilon; m: scipy's maxcor. max_iter 1000: sklearn's default of 100
  // leaves probes on 50000 images unconverged for the larger C values.
  return (logreg_opts){.C = C, .tol = 1e-4, .ftol = 1e7 * DBL_EPSILON, .max_iter = 1000, .m = 10};
}

// Logits z = X W^T (float; the bias is added in double by the caller).
static void logits_forward(float *z, const float *wf, const float *x, int64_t n, int d, int k) {
  if (n > 0) cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, k, d, 1.0f, x, d, wf, d, 0.0f, z, k);
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
