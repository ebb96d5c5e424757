// train: pretraining (autoregressive or BERT) on a tokens file: the step loop (micro-batches with
// gradient accumulation, global-norm clipping, AdamW with the warmup + cosine schedule), progress
// on stderr, the loss log DIR/log.jsonl, checkpoints and bit-identical resume (checkpoint.h).
#pragma once
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include "engine/model.h"

typedef struct {
  int64_t steps;            // optimizer steps in the run (the schedule's length)
  int batch;                // sequences per step
  int micro_batch;          // sequences per forward/backward; batch / micro_batch are accumulated
  double lr;                // peak learning rate
  int64_t warmup;           // linear warmup steps; -1: 5% of steps
  double clip;              // global gradient-norm clip; 0: off
  double weight_decay;      // AdamW decoupled decay on matrices (ndim >= 2); 0: off (the paper)
  uint64_t seed;            // init, data order and BERT masks (separate streams)
  int64_t checkpoint_every; // steps between checkpoints; 0: only at the end
  int64_t log_every;        // progress line every N steps when stderr is not a terminal
  int64_t keep_every;       // also keep DIR/model-step<N>.safetensors every N steps (and step 0); 0: off
} train_opts;

void train_opts_default(train_opts *o);
// Applies a config's "train" section (keys as the fields above) onto o; unknown keys and wrong
// types are errors naming `where` and the key.
int train_opts_from_json(const json_t *section, const char *where, train_opts *o);
// Fills derived values (warmup -1) and checks consistency (batch a multiple of micro_batch...).
// -1 with an error naming the option.
int train_opts_finish(train_opts *o);

// Trains cfg on tokens_path into out_dir. With resume and a checkpoint in out_dir, continues it
// (refusing, with the option's name, when a fixed option differs); without resume, refuses to
// overwrite a checkpoint. On success *result (if not NULL) gets a summary object: step, loss,
// median_step_ms, tokens_per_s, resumed_from, out.
int train_run(const model_config *cfg, const train_opts *o, const char *tokens_path,
              const char *out_dir, bool resume, json_t **result);
