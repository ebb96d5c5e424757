// sample: autoregressive sampling from an iGPT model on the CPU, with a KV cache (one position
// per step for a batch of sequences, each layer's keys and values kept) or, for comparison,
// without one (a full forward over the prefix at every step). Unconditional samples start from
// sos; half-image completions feed the given tokens through the cache and sample the rest.
// Uses the model's weights (model.h) and the ops of kernels/ops.h; the attention over the cache
// is written here because the cached keys are not in the [B,T,3C] layout attention_forward takes.
#pragma once
#include "model.h"
#include "rng.h"
#include <stdbool.h>
#include <stdint.h>

// The cache: k and v [L, B, NH, n_ctx, hd], plus one step's scratch. Allocated for B sequences.
typedef struct {
  model *m;         // borrowed
  int B, len;       // sequences; positions already cached (the next step's position)
  float *k, *v;
  float *x, *ln, *qkv, *atty, *proj, *fch, *fchg, *rstd, *scores, *logits;
} kv_cache;

int kv_new(kv_cache *kv, model *m, int B);  // -1 for a BERT model (no causal order to sample)
void kv_free(kv_cache *kv);
void kv_reset(kv_cache *kv);
// One position t = kv->len for all B sequences: input sos (t = 0) or prev[b] (the token at
// t - 1). Returns the logits [B, V] predicting token t (valid until the next step); -1 / NULL
// when the context is full or a token is outside the palette.
const float *kv_step(kv_cache *kv, const uint16_t *prev);

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
