// sample: autoregressive sampling from an iGPT model on the CPU, with a KV cache (one position
// per step for a batch of sequences, each layer's keys and values kept) or, for comparison,
// without one (a full forward over the prefix at every step). Unconditional samples start from
// sos; half-image completions feed the given tokens through the cache and sample the rest.
// The cache is the model's own (model_kv / model_decode in model.h).
#pragma once
#include "engine/model.h"
#include "base/rng.h"
#include <stdbool.h>
#include <stdint.h>

typedef struct {
  double temperature;  // > 0; 1 = the model's distribution
  int top_k;           // 0 = all V tokens
  uint64_t seed;
  bool use_cache;      // false: full forward over the prefix each step (reference, benchmark)
} sample_opts;

// One token from logits [V]: softmax(logits / temperature) restricted to the top_k largest.
uint16_t sample_token(const float *logits, int V, double temperature, int top_k, rng_t *rng);

// Fills tokens [B, T] (T <= n_ctx): positions [0, given) are read as given, [given, T) sampled.
// The same seed and options give the same tokens. progress (may be NULL) is called after each
// position with the number done. -1 on error (igpt_err).
int sample_tokens(model *m, uint16_t *tokens, int B, int T, int given, const sample_opts *o,
                  void (*progress)(int done, int total, void *ctx), void *ctx);
