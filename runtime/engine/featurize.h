// featurize: every layer's pooled features of a model over a tokens set, in one forward pass per
// batch (no backward, no gradient buffers): for l < L the mean over positions of norm(h_l) (block
// l's first norm, gain included), for l = L the mean of the final norm's output (DESIGN.md).
// Raw features (optional) are the means of h_l itself, before any norm (l = L: h after the last
// block). For BERT models the evaluation masks are applied: K masks per image, each drawn from
// its own stream of (seed, mask, row), so the features do not depend on the batch size.
// The same forward can also give the generative loss (the output head on): what igpt loss
// measures, without a second pass over the set.
#pragma once
#include <stdint.h>
#include "engine/model.h"

typedef struct {
  int batch;          // images per forward pass
  int masks;          // K (BERT; 1 for AR)
  uint64_t seed;      // BERT masks
  int raw;            // also the un-normalised means (keeps every layer's activations: memory)
  int progress;       // progress lines on stderr
  int64_t row0;       // the row of tokens[0] in the whole set (a rank's slice): the BERT masks
  struct features_loss *loss;  // non-NULL: also the generative loss of the same forward, summed here
} features_opts;

// The generative loss over the set (AR: every position; BERT: the positions each mask masks,
// over all K masks): nats summed in double over `tokens` scored positions. Over all ranks in
// features_extract_ranks.
typedef struct features_loss {
  double nats;
  int64_t tokens;
} features_loss;

// Adds the last forward's per-position losses (those the objective weighs; the forward had its
// head on) of B sequences of T to l: what features --loss and igpt loss both sum. A non-finite
// loss is an error naming the sequence (row0 + its index in the batch) and the position.
int features_loss_add(features_loss *l, const model *m, int B, int T, int64_t row0);

// out: [L+1] arrays of [K, N, C] floats (allocated here, caller frees each and the array);
// raw (when o->raw): the same shape. tokens u16 [N, T]. 0, or -1 with igpt_err.
int features_extract(model *m, const uint16_t *tokens, int64_t N, int T, const features_opts *o,
                     float ***out, float ***raw);

// Data parallel (comm.h): each rank extracts its contiguous slice of the N images, then every
// rank gets the whole [L+1] x [K, N, C] (the slices broadcast in turn; rank 0 writes the file).
// The same numbers as features_extract over all N in one process. Same arguments and ownership.
int features_extract_ranks(model *m, const uint16_t *tokens, int64_t N, int T, const features_opts *o,
                           float ***out, float ***raw);

// The mask of image `row` under mask `k` (BERT), T positions: what features_extract applies.
void features_mask(uint64_t seed, int k, int64_t row, double p, uint8_t *mask, int T);
