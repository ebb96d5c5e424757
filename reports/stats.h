// stats: the statistics behind report numbers and claim verdicts: mean and sample std over
// seeds, McNemar's exact test on two classifiers' right/wrong answers for the same test images,
// Student's t-test on paired per-seed differences, and how far a comparison is from deciding (the
// smallest significant gap, the difference's interval). The distributions are GSL's.
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include "base/outcomes.h"  // correct_bit, correct_hex: the per-image outcomes compared

// Mean and sample standard deviation (n-1; 0 for n = 1) of n values; NAN mean for n = 0.
void stats_mean_std(const double *x, int n, double *mean, double *std);

typedef struct {
  int64_t n;      // images compared
  int64_t b, c;   // discordant pairs: only A right, only B right
  double p;       // two-sided exact p-value (binomial, 1/2, over b + c); 1 when b + c = 0
} mcnemar_result;

// McNemar's exact test of A against B on the same n test images. -1 (igpt_err) when a string
// is shorter than n or holds a non-hex digit.
int stats_mcnemar(const char *a_hex, const char *b_hex, int64_t n, mcnemar_result *r);

// The smallest gap |b - c| between the m discordant pairs that McNemar's exact test calls
// significant at alpha (two-sided); -1 when no split of m is (m too small: 2 * 2^-m >= alpha).
// Tells how far an inconclusive comparison is from deciding on these test images.
int64_t stats_mcnemar_min_gap(int64_t m, double alpha);

// The exact conditional interval, at confidence 1 - alpha, of A's accuracy minus B's as a fraction
// of the n images, from the discordant counts b (only A right) and c (only B right): given the
// m = b + c discordant images, b ~ Binomial(m, pi) and the difference is (2 pi - 1) m / n, so the
// Clopper-Pearson limits of pi bound it. It excludes 0 exactly when stats_mcnemar's p < alpha (both
// invert the same binomial tails). -1 when m = 0: no image separates A from B.
int stats_mcnemar_interval(int64_t b, int64_t c, int64_t n, double alpha, double *lo, double *hi);

// Two-sided p of the paired t-test on d[n] (per-seed differences), n >= 2; *t the statistic.
// A zero spread gives p 0 (all seeds agree on a non-zero difference) or 1 (no difference).
double stats_paired_t(const double *d, int n, double *t);
// The smallest |mean difference| the paired t-test over n >= 2 values of sample spread sd calls
// significant at alpha (two-sided): t_{1-alpha/2, n-1} sd / sqrt(n), the half-width of the mean
// difference's 1 - alpha interval. NAN for n < 2.
double stats_paired_t_min_difference(double sd, int n, double alpha);
// Welch's t-test for two independent samples (low-data subsets), each of n >= 2.
double stats_welch_t(const double *a, int na, const double *b, int nb, double *t);
