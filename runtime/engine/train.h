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
  const char *config;       // the config file a "train" section came from, for messages (borrowed)
  unsigned from_config;     // TRAIN_OPT_* bits of the options whose value is the config's
  int64_t keep_every;       // also keep DIR/model-step<N>.safetensors every N steps (and step 0); 0: off
} train_opts;

// An option's bit in from_config: train_opts_from_json sets it, a command-line flag that
// overrides the value clears it, so a message names what the user wrote (--batch, or the
// config's train.batch).
enum { TRAIN_OPT_STEPS = 1, TRAIN_OPT_BATCH = 2, TRAIN_OPT_MICRO = 4, TRAIN_OPT_LR = 8, TRAIN_OPT_WARMUP = 16,
       TRAIN_OPT_CLIP = 32, TRAIN_OPT_WD = 64, TRAIN_OPT_CKPT = 128, TRAIN_OPT_LOGEV = 256 };

void train_opts_default(train_opts *o);
// Applies a config's "train" section (keys as the fields above) onto o; unknown keys and wrong
// types are errors naming `where` and the key.
int train_opts_from_json(const json_t *section, const char *where, train_opts *o);
// Fills derived values (warmup -1) and checks consistency (batch a multiple of micro_batch...).
// On a bad value an error naming the option as the user gave it (the flag, or the config file's
// train.KEY): -1 when every option named is a flag (a usage error), -2 when one is a config field.
int train_opts_finish(train_opts *o);

// Trains cfg on tokens_path into out_dir. With resume and a checkpoint in out_dir, continues it
// (refusing, with the option's name, when a fixed option differs); without resume, refuses to
// overwrite a checkpoint. On success *result (if not NULL) gets a summary object: step, loss,
// median_step_ms, tokens_per_s, resumed_from, out.
int train_run(const model_config *cfg, const train_opts *o, const char *tokens_path,
              const char *out_dir, bool resume, json_t **result);
