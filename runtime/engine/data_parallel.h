// data_parallel: what train and finetune share to run as data-parallel ranks (comm.h): each
// rank's shard of a global batch, the gradient average after backward, and the check at every
// checkpoint that all ranks still hold the same weights and optimizer state. In a world of one
// the shard is the whole batch and the rest does nothing.
#pragma once
#include <stdint.h>
#include "engine/checkpoint.h"
#include "engine/model.h"

typedef struct {
  int rank, size;  // this rank, the world size
  int first, rows; // this rank reads rows [first, first + rows) of every global batch
} dp_shard;

// Joins the world (comm_init) and splits a global batch of `batch` rows (the option `flag`) into
// equal contiguous shards; -1 with an error naming the flag when the world size does not divide it.
int dp_shard_of(int batch, const char *flag, dp_shard *s);
// The all-reduce hook after backward: every rank's gradients become the mean over ranks.
int dp_average_grads(model *m);
// Averages n doubles over ranks in place (losses, counts, a stop flag).
int dp_average(double *v, int n);
// At a checkpoint: the weights and Adam moments of every rank equal rank 0's, else -1 with an
// error naming the step (the run stops; the previous checkpoint is intact).
int dp_check_identical(const model *m, const train_state *st, int64_t step);
