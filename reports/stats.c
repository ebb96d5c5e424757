// stats: mean and std, McNemar and t-tests over GSL's distributions. See stats.h.
#include "reports/stats.h"
#include "base/util.h"
#include <gsl/gsl_cdf.h>
#include <math.h>
#include <string.h>

void stats_mean_std(const double *x, int n, double *mean, double *std) {
  double s = 0, ss = 0;
  for (int i = 0; i < n; i++) s += x[i];
  double m = n ? s / n : NAN;
  for (int i = 0; i < n; i++) ss += (x[i] - m) * (x[i] - m);
  *mean = m;
  *std = n > 1 ? sqrt(ss / (n - 1)) : 0;
}

int stats_mcnemar(const char *a_hex, const char *b_hex, int64_t n, mcnemar_result *r) {
  memset(r, 0, sizeof *r);
  r->n = n;
  for (int64_t i = 0; i < n; i++) {
    int a = correct_bit(a_hex, i), b = correct_bit(b_hex, i);
    if (a < 0 || b < 0)
      return igpt_err("per-image results end or break at image %lld of %lld (the two runs were not "
                      "scored on the same test images)", (long long)i, (long long)n);
    r->b += a && !b;
    r->c += b && !a;
  }
  int64_t m = r->b + r->c, k = r->b < r->c ? r->b : r->c;
  // exact: twice the smaller tail of Binomial(m, 1/2), capped at 1
  r->p = m ? fmin(1.0, 2 * gsl_cdf_binomial_P((unsigned)k, 0.5, (unsigned)m)) : 1.0;
  return 0;
}

int64_t stats_mcnemar_min_gap(int64_t m, double alpha) {
  // p(k) = 2 P(X <= k), X ~ Binomial(m, 1/2), grows with the smaller count k; the widest split
  // (k = 0) is the most significant, so find the largest k with p(k) < alpha by bisection.
  if (m <= 0 || !(2 * gsl_cdf_binomial_P(0, 0.5, (unsigned)m) < alpha)) return -1;
  int64_t lo = 0, hi = m / 2;  // p(lo) < alpha; p(hi) may be
  while (lo < hi) {
    int64_t mid = (lo + hi + 1) / 2;
    if (2 * gsl_cdf_binomial_P((unsigned)mid, 0.5, (unsigned)m) < alpha) lo = mid;
    else hi = mid - 1;
  }
  return m - 2 * lo;
}

int stats_mcnemar_interval(int64_t b, int64_t c, int64_t n, double alpha, double *lo, double *hi) {
  int64_t m = b + c;
  if (m <= 0 || n <= 0) { *lo = *hi = NAN; return -1; }
  // Clopper-Pearson: the beta quantiles at which b's upper and lower binomial tails are alpha / 2
  double pl = b ? gsl_cdf_beta_Pinv(alpha / 2, (double)b, (double)c + 1) : 0;
  double pu = c ? gsl_cdf_beta_Qinv(alpha / 2, (double)b + 1, (double)c) : 1;
  *lo = (2 * pl - 1) * (double)m / (double)n;
  *hi = (2 * pu - 1) * (double)m / (double)n;
  return 0;
}

double stats_paired_t_min_difference(double sd, int n, double alpha) {
  if (n < 2) return NAN;
  return gsl_cdf_tdist_Qinv(alpha / 2, n - 1) * sd / sqrt(n);
}

double stats_paired_t(const double *d, int n, double *t) {
  double m, s;
  stats_mean_std(d, n, &m, &s);
  if (n < 2) { *t = NAN; return NAN; }
  if (!(s > 0)) { *t = m != 0 ? copysign(INFINITY, m) : 0; return m != 0 ? 0 : 1; }
  *t = m / (s / sqrt(n));
  return 2 * gsl_cdf_tdist_Q(fabs(*t), n - 1);
}

double stats_welch_t(const double *a, int na, const double *b, int nb, double *t) {
  double ma, sa, mb, sb;
  stats_mean_std(a, na, &ma, &sa);
  stats_mean_std(b, nb, &mb, &sb);
  if (na < 2 || nb < 2) { *t = NAN; return NAN; }
  double va = sa * sa / na, vb = sb * sb / nb, se = sqrt(va + vb);
  if (!(se > 0)) { *t = ma != mb ? copysign(INFINITY, ma - mb) : 0; return ma != mb ? 0 : 1; }
  *t = (ma - mb) / se;
  // Welch-Satterthwaite degrees of freedom
  double df = (va + vb) * (va + vb) / (va * va / (na - 1) + vb * vb / (nb - 1));
  return 2 * gsl_cdf_tdist_Q(fabs(*t), df);
}
