// probe_fixture: deterministic synthetic features for the logreg/probe tests (header-only).
// Gaussian classes: x = mu_y + noise, mu_c ~ N(0, sep^2) per feature, noise ~ N(0, 1), so the
// classes overlap (a finite optimum) and accuracy is well below 100% for small sep.
#pragma once
#include <stdint.h>
#include "base/rng.h"
#include "base/util.h"

typedef struct { int64_t n; int d, k; float *x; int32_t *y; } fixture_set;

// Class means for (seed, d, k): the same means for every split drawn with the same seed.
static inline float *fixture_means(uint64_t seed, int d, int k, float sep) {
  rng_t r;
  rng_seed_stream(&r, seed, 1);
  float *mu = xmalloc(sizeof(float) * d * k);
  for (int i = 0; i < d * k; i++) mu[i] = sep * rng_normal(&r);
  return mu;
}

// n samples, labels cycling 0..k-1 then shuffled by the stream, features around the means.
static inline fixture_set fixture_draw(uint64_t seed, uint64_t stream, int64_t n, int d, int k,
                                       float sep) {
  fixture_set s = {n, d, k, xmalloc(sizeof(float) * n * d), xmalloc(sizeof(int32_t) * n)};
  float *mu = fixture_means(seed, d, k, sep);
  rng_t r;
  rng_seed_stream(&r, seed, 100 + stream);
  for (int64_t i = 0; i < n; i++) s.y[i] = (int32_t)(i % k);
  for (int64_t i = n - 1; i > 0; i--) {
    int64_t j = rng_below(&r, (uint32_t)(i + 1));
    int32_t t = s.y[i]; s.y[i] = s.y[j]; s.y[j] = t;
  }
  for (int64_t i = 0; i < n; i++)
    for (int j = 0; j < d; j++) s.x[i * d + j] = mu[s.y[i] * d + j] + rng_normal(&r);
  free(mu);
  return s;
}

static inline void fixture_free(fixture_set *s) { free(s->x); free(s->y); }
