// batcher: the training data stream. Opens a tokens file (`tokens` U16 [N, T], DESIGN.md),
// checks every token against the vocabulary, and hands out batches of rows in a fresh random
// order each epoch. Its whole position (epoch, row within the epoch, the order's RNG state at
// the epoch's start) is three numbers a checkpoint saves, so a resumed run sees the same rows.
// BERT masks come from their own RNG stream so they never shift the row order.
#pragma once
#include <stdint.h>
#include <stddef.h>
#include "base/rng.h"
#include "base/safetensors.h"

typedef struct {
  uint64_t epoch;      // epochs completed
  uint64_t pos;        // rows of the current epoch already handed out
  rng_t order_rng;     // the order stream's state before this epoch's shuffle
  rng_t mask_rng;      // the BERT mask stream's state now
} batcher_state;

typedef struct {
  st_file file;
  const uint16_t *tokens;  // [N, T] in the mapped file
  int64_t N, T;
  uint32_t *order;         // [N] this epoch's permutation of the rows
  batcher_state st;
  rng_t next_order_rng;    // the order stream after this epoch's shuffle (the next epoch's start)
} batcher;

// Opens path and checks it: a `tokens` tensor of dtype U16 and shape [N, T] with N >= 1,
// T == n_ctx and every value < n_vocab (the error names the row and column of the first bad
// one). seed starts the order and mask streams.
// A `labels` tensor, when the file has one, must be I32 [N] (one per row).
int batcher_open(batcher *b, const char *path, int64_t n_ctx, int64_t n_vocab, uint64_t seed);
// A tokens file's labels, when present, are I32 [n]: one per row of `tokens`. 0, or -1 naming the
// file and both shapes. (train, loss and features read tokens files through this check.)
int tokens_check_labels(const st_file *f, int64_t n);
void batcher_close(batcher *b);
// Copies the next `rows` rows into out [rows, T], in this epoch's order, starting a new epoch
// (a new shuffle) when the current one is used up.
void batcher_next(batcher *b, uint16_t *out, int64_t rows);
// BERT masks for `n` positions: mask[i] = 1 with probability p, from the mask stream.
void batcher_mask(batcher *b, uint8_t *mask, size_t n, double p);
// Data parallel (comm.h): rank r of w reads rows [r n/w, (r+1) n/w) of each n-row global batch
// and passes over the others with these, which advance the streams exactly as batcher_next and
// batcher_mask would: every rank stays at the global position, so a checkpoint is the same for
// any world size and each rank's rows are the ones one process would have read there.
void batcher_skip(batcher *b, int64_t rows);
void batcher_mask_skip(batcher *b, size_t n);
// Restores a saved position (after batcher_open with the same file and seed).
int batcher_restore(batcher *b, const batcher_state *st);
