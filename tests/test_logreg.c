// logreg: gradient against central differences, convergence, warm starts, prediction.
#include "testutil.h"
#include "probe_fixture.h"
#include "eval/logreg.h"

static logreg_data as_data(const fixture_set *s) {
  return (logreg_data){.n = s->n, .d = s->d, .k = s->k, .x = s->x, .y = s->y};
}

Test(logreg, gradient_matches_central_differences) {
  fixture_set s = fixture_draw(7, 0, 200, 6, 3, 0.8f);
  logreg_data D = as_data(&s);
  int64_t np = logreg_nparams(D.d, D.k);
  double *th = xmalloc(sizeof(double) * np), *g = xmalloc(sizeof(double) * np);
  rng_t r;
  rng_seed(&r, 3);
  for (int64_t j = 0; j < np; j++) th[j] = 0.3 * rng_normal(&r);
  const double C = 0.5;
  logreg_objective(&D, C, th, g, NULL);
  // The objective is computed from float32 logits, so a difference step h carries an error
  // of about eps_f32 * |F| / h: h = 1e-3 keeps both that and the O(h^2) truncation near 1e-4
  // relative to the gradient's size.
  const double h = 1e-3;
  double num = 0, den = 0;
  for (int64_t j = 0; j < np; j++) {
    double keep = th[j];
    th[j] = keep + h;
    double fp = logreg_objective(&D, C, th, NULL, NULL);
    th[j] = keep - h;
    double fm = logreg_objective(&D, C, th, NULL, NULL);
    th[j] = keep;
    double fd = (fp - fm) / (2 * h);
    num += (fd - g[j]) * (fd - g[j]);
    den += g[j] * g[j];
  }
  cr_assert_lt(sqrt(num / den), 1e-3, "relative gradient error %g", sqrt(num / den));
  free(th); free(g);
  fixture_free(&s);
}

Test(logreg, converges_and_warm_start_is_free) {
  fixture_set s = fixture_draw(11, 0, 1000, 16, 4, 0.4f);
  logreg_data D = as_data(&s);
  int64_t np = logreg_nparams(D.d, D.k);
  double *th = xcalloc(np, sizeof(double));
  logreg_opts o = logreg_defaults(1.0);
  logreg_result res;
  cr_assert_eq(logreg_fit(&D, &o, th, &res), 0, "%s", igpt_errmsg());
  cr_assert(res.converged, "stop: %s", res.stop);
  cr_assert_gt(res.iterations, 3);
  double acc = logreg_accuracy(th, &D);
  cr_assert_gt(acc, 0.6, "train accuracy %g (chance 0.25)", acc);
  // From its own solution a refit is already converged (or nearly): few iterations.
  logreg_result again;
  cr_assert_eq(logreg_fit(&D, &o, th, &again), 0);
  cr_assert_leq(again.iterations, 3, "warm refit took %d iterations", again.iterations);
  // Not higher, up to the rounding of a reported objective: it comes from float32 logits, each
  // rounded at about 6e-8 relative (float32 epsilon / 2); 1e-7 leaves room for their sum.
  cr_assert_leq(again.objective, res.objective * (1 + 1e-7), "%.12g vs %.12g (%d it, %s)",
                again.objective, res.objective, again.iterations, again.stop);
  free(th);
  fixture_free(&s);
}

Test(logreg, predict_matches_logits_argmax) {
  fixture_set s = fixture_draw(5, 0, 300, 8, 5, 0.5f);
  int64_t np = logreg_nparams(8, 5);
  double *th = xmalloc(sizeof(double) * np);
  rng_t r;
  rng_seed(&r, 9);
  for (int64_t j = 0; j < np; j++) th[j] = rng_normal(&r);
  int32_t *pred = xmalloc(sizeof(int32_t) * s.n);
  float *z = xmalloc(sizeof(float) * s.n * 5);
  logreg_predict(th, 8, 5, s.x, s.n, pred, z);
  for (int64_t i = 0; i < s.n; i++) {
    int best = 0;
    double bv = -1e300;
    for (int c = 0; c < 5; c++) {
      double v = th[40 + c];
      for (int j = 0; j < 8; j++) v += th[c * 8 + j] * s.x[i * 8 + j];
      if (v > bv) { bv = v; best = c; }
      cr_assert_float_eq(z[i * 5 + c], v, 1e-4 * (1 + fabs(v)));
    }
    cr_assert_eq(pred[i], best);
  }
  free(th); free(pred); free(z);
  fixture_free(&s);
}

Test(logreg, rejects_bad_arguments) {
  fixture_set s = fixture_draw(5, 0, 10, 2, 2, 1);
  logreg_data D = as_data(&s);
  double th[6] = {0};
  logreg_opts o = logreg_defaults(0);
  logreg_result res;
  cr_assert_eq(logreg_fit(&D, &o, th, &res), -1);
  cr_assert(strstr(igpt_errmsg(), "C > 0"), "%s", igpt_errmsg());
  fixture_free(&s);
}

// The fit walks the logits along each search line and reports the objective from logits
// recomputed from θ: that value must be the objective at θ as logreg_objective computes it.
Test(logreg, reported_objective_is_the_objective_at_theta) {
  fixture_set s = fixture_draw(13, 0, 2000, 24, 6, 0.3f);
  logreg_data D = as_data(&s);
  int64_t np = logreg_nparams(D.d, D.k);
  double *th = xcalloc(np, sizeof(double));
  logreg_opts o = logreg_defaults(10.0);
  logreg_result res;
  cr_assert_eq(logreg_fit(&D, &o, th, &res), 0, "%s", igpt_errmsg());
  double loss, f = logreg_objective(&D, o.C, th, NULL, &loss) * o.C;
  // both from float32 logits of the same θ, by different sgemm shapes: rounding, 6e-8 a logit
  cr_assert_float_eq(res.objective, f, 1e-7 * f, "reported %.12g, at theta %.12g", res.objective, f);
  cr_assert_float_eq(res.loss_sum, loss, 1e-7 * f);
  free(th);
  fixture_free(&s);
}

// Centring the features is an exact reformulation (the bias is not penalised): shifting every
// feature by a constant moves only the bias, so the optimum's objective is the same.
Test(logreg, shifted_features_give_the_same_optimum) {
  fixture_set s = fixture_draw(17, 0, 1500, 12, 4, 0.4f);
  logreg_data D = as_data(&s);
  int64_t np = logreg_nparams(D.d, D.k);
  double *a = xcalloc(np, sizeof(double)), *b = xcalloc(np, sizeof(double));
  logreg_opts o = logreg_defaults(3.0);
  logreg_result ra, rb;
  cr_assert_eq(logreg_fit(&D, &o, a, &ra), 0, "%s", igpt_errmsg());
  float *shifted = xmalloc(sizeof(float) * s.n * s.d);
  for (int64_t i = 0; i < s.n * s.d; i++) shifted[i] = s.x[i] + 4.0f + (float)(i % s.d);
  logreg_data E = D;
  E.x = shifted;
  cr_assert_eq(logreg_fit(&E, &o, b, &rb), 0, "%s", igpt_errmsg());
  // both stop within sklearn's ftol (2.2e-9 relative) of the optimum, and the objective is
  // evaluated from float32 logits (about 6e-8 relative each; the shifted logits are ~10x larger)
  cr_assert_float_eq(ra.objective, rb.objective, 1e-6 * ra.objective, "%.12g vs %.12g",
                     ra.objective, rb.objective);
  for (int64_t j = 0; j < (int64_t)s.k * s.d; j++)
    cr_assert_float_eq(a[j], b[j], 1e-3 * (1 + fabs(a[j])), "weight %lld: %g vs %g", (long long)j, a[j], b[j]);
  free(a); free(b); free(shifted);
  fixture_free(&s);
}

// A sweep's warm start along the path (θ_near + t (θ_near - θ_prev)) changes where the fit
// begins, not where it ends; and a fit is reproducible to the bit.
Test(logreg, path_start_reaches_the_cold_optimum_and_fits_are_reproducible) {
  fixture_set s = fixture_draw(19, 0, 2000, 16, 5, 0.3f);
  logreg_data D = as_data(&s);
  int64_t np = logreg_nparams(D.d, D.k);
  double *t1 = xcalloc(np, sizeof(double)), *t2 = xcalloc(np, sizeof(double));
  double *cold = xcalloc(np, sizeof(double)), *again = xcalloc(np, sizeof(double));
  logreg_result r;
  logreg_opts o = logreg_defaults(0.1);
  cr_assert_eq(logreg_fit(&D, &o, t1, &r), 0);
  memcpy(t2, t1, sizeof(double) * np);
  o = logreg_defaults(1.0);
  cr_assert_eq(logreg_fit(&D, &o, t2, &r), 0);
  double *path = xmalloc(sizeof(double) * np);
  memcpy(path, t2, sizeof(double) * np);
  o = logreg_defaults(10.0);
  o.path_prev = t1;
  o.path_step = 1;
  logreg_result rp, rc, rc2;
  cr_assert_eq(logreg_fit(&D, &o, path, &rp), 0, "%s", igpt_errmsg());
  logreg_opts oc = logreg_defaults(10.0);
  cr_assert_eq(logreg_fit(&D, &oc, cold, &rc), 0);
  cr_assert(rp.converged && rc.converged, "%s / %s", rp.stop, rc.stop);
  // both within ftol of the optimum; objective rounding from float32 logits as above
  cr_assert_float_eq(rp.objective, rc.objective, 1e-6 * rc.objective, "path %.12g, cold %.12g",
                     rp.objective, rc.objective);
  cr_assert_lt(rp.iterations, rc.iterations, "path start %d iterations, cold %d", rp.iterations,
               rc.iterations);
  cr_assert_eq(logreg_fit(&D, &oc, again, &rc2), 0);
  cr_assert_eq(memcmp(cold, again, sizeof(double) * np), 0, "two cold fits differ");
  free(t1); free(t2); free(cold); free(again); free(path);
  fixture_free(&s);
}

// fit_intercept=False (the fine-tune head has no bias): the biases stay exactly 0, the fit stops
// at the constrained optimum (the weights' part of the gradient vanishes there, the biases' does
// not on features with a non-zero mean), and it cannot beat the fit with biases.
Test(logreg, no_intercept_holds_the_biases_at_zero_and_reaches_its_optimum) {
  fixture_set s = fixture_draw(19, 0, 1200, 10, 3, 0.4f);
  float *shifted = xmalloc(sizeof(float) * s.n * s.d);
  for (int64_t i = 0; i < s.n * s.d; i++) shifted[i] = s.x[i] + 2.0f + 0.5f * (float)(i % s.d);
  logreg_data D = as_data(&s);
  D.x = shifted;
  int64_t np = logreg_nparams(D.d, D.k), nw = (int64_t)D.k * D.d;
  double *a = xcalloc(np, sizeof(double)), *b = xcalloc(np, sizeof(double)), *g = xmalloc(sizeof(double) * np);
  for (int c = 0; c < D.k; c++) b[nw + c] = 5.0 * (c + 1);  // a warm start's biases are dropped
  logreg_opts o = logreg_defaults(2.0);
  logreg_result ra, rb;
  cr_assert_eq(logreg_fit(&D, &o, a, &ra), 0, "%s", igpt_errmsg());
  o.no_intercept = 1;
  cr_assert_eq(logreg_fit(&D, &o, b, &rb), 0, "%s", igpt_errmsg());
  cr_assert(rb.converged, "stop: %s", rb.stop);
  for (int c = 0; c < D.k; c++) cr_assert_eq(b[nw + c], 0.0, "bias %d is %g", c, b[nw + c]);
  double *zero = xcalloc(np, sizeof(double)), g0 = 0;
  logreg_objective(&D, o.C, zero, g, NULL);
  for (int64_t j = 0; j < nw; j++) g0 = fmax(g0, fabs(g[j]));
  free(zero);
  logreg_objective(&D, o.C, b, g, NULL);
  double gw = 0, gb = 0;
  for (int64_t j = 0; j < nw; j++) gw = fmax(gw, fabs(g[j]));
  for (int c = 0; c < D.k; c++) gb = fmax(gb, fabs(g[nw + c]));
  // The fit stops as sklearn's does, on the relative decrease of F (ftol 2.2e-9) here, with the
  // weights' gradient small next to its size at the start (measured: 8e-4 of it; 5e-3 allowed),
  // while the biases' gradient stays of the order of the data term: the constraint binds.
  cr_log_info("with biases: %d it (%s); without: %d it (%s), |g_w| %g of %g at the start, |g_b| %g",
              ra.iterations, ra.stop, rb.iterations, rb.stop, gw, g0, gb);
  cr_assert_lt(gw, 5e-3 * g0, "weights' gradient %g at the no-intercept optimum (%g at the start)", gw, g0);
  cr_assert_gt(gb, 10 * gw, "the biases' gradient %g: the constraint should bind on shifted features", gb);
  cr_assert_geq(rb.objective, ra.objective * (1 - 1e-7), "%.10g below the fit with biases %.10g",
                rb.objective, ra.objective);
  free(a); free(b); free(g); free(shifted);
  fixture_free(&s);
}
