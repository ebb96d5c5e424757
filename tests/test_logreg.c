// logreg: gradient against central differences, convergence, warm starts, prediction.
#include "testutil.h"
#include "probe_fixture.h"
#include "logreg.h"

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
  cr_assert_leq(again.objective, res.objective * (1 + 1e-9));
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
