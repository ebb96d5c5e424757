// rng: the suite's one random number generator (xoshiro256**, seeded through splitmix64).
// Its whole state is four words, so checkpoints save it and a resumed run draws the same numbers.
// Every random choice (init, BERT masks, batches, splits, k-means, sampling) goes through it.
#pragma once
#include <stdint.h>

typedef struct { uint64_t s[4]; } rng_t;

void rng_seed(rng_t *r, uint64_t seed);
uint64_t rng_u64(rng_t *r);
uint32_t rng_below(rng_t *r, uint32_t n);  // uniform in [0, n), unbiased
double rng_uniform(rng_t *r);              // uniform in [0, 1), 53 bits
float rng_normal(rng_t *r);                // standard normal (Box-Muller, one draw per call)
// An independent stream derived from a seed and a purpose, so that e.g. masks and batches
// do not shift when one of them draws more numbers.
void rng_seed_stream(rng_t *r, uint64_t seed, uint64_t stream);
