// adamw, schedule, clipping: against closed forms computed here in double precision.
#include "testutil.h"
#include "engine/adamw.h"
#include "engine/schedule.h"
#include "base/rng.h"
#include <omp.h>

#define N 1000
#define STEPS 5

// The AdamW recurrence in double, written from the paper's formulas (not from adamw.c).
static void adamw_ref(double *p, const double *g, double *m, double *v, int n, long t, double lr,
                      double wd) {
  for (int i = 0; i < n; i++) {
    m[i] = 0.9 * m[i] + 0.1 * g[i];
    v[i] = 0.95 * v[i] + 0.05 * g[i] * g[i];
    double mh = m[i] / (1 - pow(0.9, t)), vh = v[i] / (1 - pow(0.95, t));
    p[i] = p[i] - lr * wd * p[i] - lr * mh / (sqrt(vh) + 1e-8);
  }
}

static void check_adamw(double wd) {
  static float p[N], g[N], m[N], v[N];
  static double pd[N], gd[N], md[N], vd[N];
  rng_t r;
  rng_seed(&r, 7);
  for (int i = 0; i < N; i++) { p[i] = rng_normal(&r); pd[i] = p[i]; m[i] = v[i] = 0; md[i] = vd[i] = 0; }
  adamw_opts o = adamw_defaults();
  double lr = 1e-2;
  for (long t = 1; t <= STEPS; t++) {
    // Gradients of order 1 (and exactly representable in float) so the update is well
    // conditioned: |g| >= 0.1 keeps sqrt(v) far above eps.
    for (int i = 0; i < N; i++) {
      float x = rng_normal(&r);
      g[i] = x >= 0 ? x + 0.1f : x - 0.1f;
      gd[i] = g[i];
    }
    adamw_update(p, g, m, v, N, t, lr, wd, &o);
    adamw_ref(pd, gd, md, vd, N, t, lr, wd);
  }
  // Tolerance: each step rounds about ten float operations per element, each within 2^-24
  // relative, on an update of size <= lr * sqrt(1/(1-b2)) (Adam's ratio m/sqrt(v) is bounded by
  // (1-b1)/sqrt(1-b2) ~ 0.45 times its bias-corrected scale, < 5 here) plus the parameter's own
  // rounding (|p| 2^-24). So per step |err| <= 10 * 2^-24 * (5 lr + |p|); summed over STEPS.
  for (int i = 0; i < N; i++) {
    double tol = STEPS * 10 * 0x1p-24 * (5 * lr + fabs(pd[i]));
    cr_assert(fabs(p[i] - pd[i]) <= tol, "p[%d] = %.9g, double reference %.9g (tol %.3g), wd %g",
              i, p[i], pd[i], tol, wd);
    cr_assert(fabs(m[i] - md[i]) <= STEPS * 4 * 0x1p-24 * (fabs(md[i]) + 1), "m[%d]", i);
  }
}

Test(adamw, matches_closed_form) { check_adamw(0.0); }
Test(adamw, decoupled_weight_decay) { check_adamw(0.1); }

Test(adamw, first_step_is_signed_lr) {
  // At t = 1 the bias-corrected ratio is g/|g| exactly (up to eps): every parameter moves by lr.
  float p[4] = {0, 0, 0, 0}, g[4] = {1, -2, 0.5f, -1e-3f}, m[4] = {0}, v[4] = {0};
  adamw_opts o = adamw_defaults();
  adamw_update(p, g, m, v, 4, 1, 0.1, 0, &o);
  for (int i = 0; i < 4; i++) {
    double want = g[i] > 0 ? -0.1 : 0.1;
    // eps/|g| <= 1e-5 relative for |g| >= 1e-3, plus float rounding.
    cr_assert(fabs(p[i] - want) <= 0.1 * (1e-5 + 1e-6), "p[%d] = %g, want %g", i, p[i], want);
  }
}

Test(schedule, warmup_then_cosine_to_zero) {
  lr_schedule s = {.lr = 0.5, .warmup = 4, .total = 14};
  for (long t = 0; t < 4; t++)
    cr_assert_float_eq(lr_at(&s, t), 0.5 * (t + 1) / 4.0, 1e-15);
  cr_assert_float_eq(lr_at(&s, 4), 0.5, 1e-15);               // peak right after warmup
  cr_assert_float_eq(lr_at(&s, 9), 0.25, 1e-15);              // half way: cos(pi/2) = 0
  cr_assert_float_eq(lr_at(&s, 13), 0.25 * (1 + cos(M_PI * 0.9)), 1e-15);
  cr_assert_eq(lr_at(&s, 14), 0.0);
  for (long t = 4; t < 13; t++) cr_assert(lr_at(&s, t + 1) < lr_at(&s, t), "not decreasing at %ld", t);
  lr_schedule nw = {.lr = 1, .warmup = 0, .total = 10};
  cr_assert_float_eq(lr_at(&nw, 0), 1.0, 1e-15);
}

Test(clip, global_norm_and_scaling) {
  enum { M = 200000 };  // several norm chunks
  float *g = xmalloc(M * sizeof *g);
  double ss = 0;
  for (int i = 0; i < M; i++) { g[i] = (float)((i % 7) - 3) * 0.25f; ss += (double)g[i] * g[i]; }
  // The values and their squares are exact in float and double, so the norm is exact.
  cr_assert_eq(grad_global_norm(g, M), sqrt(ss));
  double before = grad_clip(g, M, 1.0);
  cr_assert_eq(before, sqrt(ss));
  // After clipping: norm = 1 / (1 + 1e-6 / norm) within float rounding of the scale (2^-24).
  double after = grad_global_norm(g, M);
  cr_assert(fabs(after - 1.0 / (1.0 + 1e-6 / before)) < 2e-7, "norm after clipping %.9g", after);
  // Below the threshold nothing changes.
  float keep = g[5];
  grad_clip(g, M, 10.0);
  cr_assert_eq(g[5], keep);
  free(g);
}

Test(clip, norm_is_thread_count_independent) {
  enum { M = 300001 };
  float *g = xmalloc(M * sizeof *g);
  rng_t r;
  rng_seed(&r, 3);
  for (int i = 0; i < M; i++) g[i] = rng_normal(&r);
  omp_set_num_threads(1);
  double a = grad_global_norm(g, M);
  omp_set_num_threads(3);
  double b = grad_global_norm(g, M);
  cr_assert_eq(memcmp(&a, &b, sizeof a), 0, "%.17g vs %.17g", a, b);
  free(g);
}

Test(accumulation, scaled_sum_is_mean) {
  // Accumulation sums micro-batch gradients then scales by 1/k: for k = 4 (a power of two) the
  // scaling is exact, so the result equals the mean exactly.
  float acc[3] = {0};
  float micro[4][3] = {{1, 2, 3}, {0.5f, -1, 2}, {4, 0, -3}, {-0.5f, 1, 6}};
  for (int k = 0; k < 4; k++)
    for (int i = 0; i < 3; i++) acc[i] += micro[k][i];
  grad_scale(acc, 3, 1.0f / 4);
  cr_assert_eq(acc[0], 1.25f);
  cr_assert_eq(acc[1], 0.5f);
  cr_assert_eq(acc[2], 2.0f);
}
