// split: the deterministic, class-stratified validation split (REFERENCE.md section 3: 10% of
// train for CIFAR and STL-10, 4% for ImageNet). Each class gives round(frac * count) images, picked
// by a seeded partial Fisher-Yates shuffle on its own rng stream, so the split depends only on the
// labels, the fraction and the seed.
#include "datasets/decode.h"
#include "base/util.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SPLIT_STREAM 0x76616c2d73706c74ull  // "val-splt"

void split_stratified(const image_set *all, double frac, uint64_t seed, image_set *train,
                      image_set *val) {
  int K = all->n_classes + 1;  // slot K-1 holds label -1
  int64_t *count = xcalloc((size_t)K, sizeof(int64_t));
  for (int64_t i = 0; i < all->n; i++) count[all->labels[i] < 0 ? K - 1 : all->labels[i]]++;
  uint8_t *is_val = xcalloc((size_t)all->n + 1, 1);
  int64_t *idx = xmalloc(sizeof(int64_t) * ((size_t)all->n + 1));
  int64_t *start = xcalloc((size_t)K + 1, sizeof(int64_t));  // bucket the indices by class
  for (int k = 0; k < K; k++) start[k + 1] = start[k] + count[k];
  int64_t *fill = xmalloc(sizeof(int64_t) * (size_t)K);
  memcpy(fill, start, sizeof(int64_t) * (size_t)K);
  for (int64_t i = 0; i < all->n; i++) idx[fill[all->labels[i] < 0 ? K - 1 : all->labels[i]]++] = i;
  int64_t n_val = 0;
  for (int k = 0; k < K; k++) {
    int64_t *cls = idx + start[k], m = count[k];
    int64_t take = (int64_t)floor(frac * (double)m + 0.5);
    rng_t r;
    rng_seed_stream(&r, seed, SPLIT_STREAM + (uint64_t)k);
    for (int64_t j = 0; j < take; j++) {  // the first `take` of a uniform shuffle
      int64_t p = j + (int64_t)rng_below(&r, (uint32_t)(m - j));
      int64_t t = cls[j]; cls[j] = cls[p]; cls[p] = t;
      is_val[cls[j]] = 1;
    }
    n_val += take;
  }
  free(start);
  free(fill);
  size_t px = (size_t)all->h * all->w * 3;
  image_set_alloc(train, all->n - n_val, all->h, all->w, all->n_classes);
  image_set_alloc(val, n_val, all->h, all->w, all->n_classes);
  int64_t a = 0, b = 0;
  for (int64_t i = 0; i < all->n; i++) {
    image_set *d = is_val[i] ? val : train;
    int64_t *at = is_val[i] ? &b : &a;
    memcpy(d->pixels + (size_t)*at * px, all->pixels + (size_t)i * px, px);
    d->labels[(*at)++] = all->labels[i];
  }
  free(count);
  free(is_val);
  free(idx);
}
